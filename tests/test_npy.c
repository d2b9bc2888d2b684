/* .npy I/O: round trips, files written byte by byte (v1/v2/v3 headers, f2, bfloat16), every
 * rejection with its message, and the NaN/Inf check. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

static char dir[64];

static void setup(void) {
    strcpy(dir, "/tmp/rbtest_npy_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(npy, .init = setup, .fini = teardown);

static const char *tmp(const char *name) {
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* A file built by hand: magic, version major.0, the header length in 2 (v1) or 4 bytes, the
 * dict padded with spaces to a 64-byte boundary and '\n', then the data bytes. */
static void write_npy(const char *path, int major, const char *dict, const void *data, size_t n) {
    unsigned char buf[4096];
    size_t lb = major == 1 ? 2 : 4, pre = 8 + lb, len = strlen(dict);
    size_t hlen = len + 1;
    while ((pre + hlen) % 64) hlen++;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char) major;
    buf[7] = 0;
    for (size_t i = 0; i < lb; i++) buf[8 + i] = (unsigned char) (hlen >> (8 * i));
    memcpy(buf + pre, dict, len);
    memset(buf + pre + len, ' ', hlen - len - 1);
    buf[pre + hlen - 1] = '\n';
    cr_assert_leq(pre + hlen + n, sizeof buf);
    if (n) memcpy(buf + pre + hlen, data, n);
    write_bytes(path, buf, pre + hlen + n);
}

/* rb_npy_read fails with code and a message naming the file with w1 (and w2). The header reader
 * gives the same error, word for word, for every defect but those only the data show (NaN, Inf,
 * float32 overflow: RB_ENUMERIC), where it succeeds. */
static void expect_fail(const char *path, int code, unsigned flags, const char *w1,
                        const char *w2) {
    rb_npy_array a, h;
    int rc = rb_npy_read(path, RB_NPY_F32, flags, &a);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rb_error_detail());
    cr_assert_eq(rc, code, "%s: got %s (%s)", path, rb_errname(rc), msg);
    cr_assert_null(a.data);
    cr_assert(strstr(msg, path), "message must name the file: %s", msg);
    cr_assert(strstr(msg, w1), "message lacks '%s': %s", w1, msg);
    if (w2) cr_assert(strstr(msg, w2), "message lacks '%s': %s", w2, msg);
    rb_error_clear();
    rc = rb_npy_read_header(path, flags, &h);
    cr_assert_null(h.data);
    if (code == RB_ENUMERIC) {
        cr_assert_eq(rc, 0, "%s: the header reader saw a data defect: %s", path, rb_error_detail());
        return;
    }
    cr_assert_eq(rc, code, "%s: header: got %s (%s)", path, rb_errname(rc), rb_error_detail());
    cr_assert_str_eq(rb_error_detail(), msg);
    cr_assert_eq(h.ndim, 0, "zeroed on failure");
}

/* The header reader and the full read agree on ndim, shape, count and descr. */
static void expect_same_header(const char *path, unsigned flags) {
    rb_npy_array a, h;
    cr_assert_eq(rb_npy_read(path, RB_NPY_F32, flags, &a), 0, "%s", rb_error_detail());
    cr_assert_eq(rb_npy_read_header(path, flags, &h), 0, "%s", rb_error_detail());
    cr_assert_null(h.data);
    cr_assert_eq(h.ndim, a.ndim, "%s", path);
    cr_assert_eq(h.count, a.count, "%s", path);
    cr_assert_str_eq(h.descr, a.descr);
    for (int i = 0; i < a.ndim; i++) cr_assert_eq(h.shape[i], a.shape[i], "%s axis %d", path, i);
    rb_npy_free(&a);
}

Test(npy, round_trip_shapes) {
    static const int ndims[] = {0, 1, 2, 3, 1, 3};
    static const size_t shapes[][3] = {{0}, {7}, {3, 4}, {2, 3, 5}, {0}, {4, 0, 2}};
    uint64_t seed = rbt_seed();
    for (size_t k = 0; k < 6; k++) {
        size_t n = 1;
        for (int i = 0; i < ndims[k]; i++) n *= shapes[k][i];
        double *x = rbt_normal_f64(n, seed, k);
        float *xf = malloc((n ? n : 1) * sizeof *xf);
        for (size_t i = 0; i < n; i++) xf[i] = (float) x[i];

        /* float64 file */
        cr_assert_eq(rb_npy_write(tmp("a.npy"), RB_NPY_F64, ndims[k], shapes[k], x), 0);
        rb_npy_array a;
        cr_assert_eq(rb_npy_read(tmp("a.npy"), RB_NPY_F64, RB_NPY_CHECK_FINITE, &a), 0, "%s",
                     rb_error_detail());
        cr_assert_eq(a.ndim, ndims[k]);
        cr_assert_eq(a.count, n);
        cr_assert_str_eq(a.descr, "<f8");
        for (int i = 0; i < ndims[k]; i++) cr_assert_eq(a.shape[i], shapes[k][i]);
        if (n) cr_assert_eq(memcmp(a.data, x, n * 8), 0, "seed=%llu", (unsigned long long) seed);
        rb_npy_free(&a);
        cr_assert_eq(rb_npy_read(tmp("a.npy"), RB_NPY_F32, 0, &a), 0);
        cr_assert_eq(a.dtype, RB_NPY_F32);
        if (n) cr_assert_eq(memcmp(a.data, xf, n * 4), 0);
        rb_npy_free(&a);

        /* float32 file */
        cr_assert_eq(rb_npy_write(tmp("b.npy"), RB_NPY_F32, ndims[k], shapes[k], xf), 0);
        cr_assert_eq(rb_npy_read(tmp("b.npy"), RB_NPY_F32, 0, &a), 0);
        cr_assert_str_eq(a.descr, "<f4");
        if (n) cr_assert_eq(memcmp(a.data, xf, n * 4), 0);
        rb_npy_free(&a);
        cr_assert_eq(rb_npy_read(tmp("b.npy"), RB_NPY_F64, 0, &a), 0);
        for (size_t i = 0; i < n; i++) cr_assert_eq(((double *) a.data)[i], (double) xf[i]);
        rb_npy_free(&a);
        rb_npy_free(&a); /* idempotent */
        free(x);
        free(xf);
    }
}

/* The writer's bytes are what np.save writes: v1.0, 64-byte aligned, Python tuple syntax. */
Test(npy, writer_header_bytes) {
    static const struct {
        int ndim;
        size_t shape[3];
        const char *text;
    } cases[] = {
        {0, {0}, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
        {1, {7}, "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }"},
        {3, {2, 3, 5}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 5), }"},
    };
    float buf[30] = {0};
    for (size_t k = 0; k < 3; k++) {
        cr_assert_eq(rb_npy_write(tmp("w.npy"), RB_NPY_F32, cases[k].ndim, cases[k].shape, buf), 0);
        FILE *f = fopen(tmp("w.npy"), "rb");
        unsigned char b[256];
        size_t n = fread(b, 1, sizeof b, f);
        fclose(f);
        cr_assert_geq(n, 64);
        cr_assert_eq(memcmp(b, "\x93NUMPY\x01\x00", 8), 0);
        size_t hlen = b[8] | (size_t) b[9] << 8;
        cr_assert_eq((10 + hlen) % 64, 0);
        cr_assert_eq(b[10 + hlen - 1], '\n');
        cr_assert_eq(memcmp(b + 10, cases[k].text, strlen(cases[k].text)), 0, "%.*s", (int) hlen,
                     b + 10);
    }
}

Test(npy, hand_written_v1_v2_v3) {
    float f[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    double d[3] = {0.1, -1e300, 42};
    /* v1, keys in another order, double quotes, no trailing comma */
    write_npy(tmp("v1.npy"), 1, "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}",
              f, sizeof f);
    rb_npy_array a;
    cr_assert_eq(rb_npy_read(tmp("v1.npy"), RB_NPY_F32, RB_NPY_CHECK_FINITE, &a), 0, "%s",
                 rb_error_detail());
    cr_assert_eq(a.ndim, 2);
    cr_assert_eq(a.shape[0], 2);
    cr_assert_eq(a.shape[1], 3);
    cr_assert_eq(memcmp(a.data, f, sizeof f), 0);
    rb_npy_free(&a);
    /* v2 (4-byte header length) and v3 (utf8 header), Python 2 'L' suffix */
    for (int major = 2; major <= 3; major++) {
        write_npy(tmp("v2.npy"), major,
                  "{'descr': '<f8', 'fortran_order': False, 'shape': (3L,), }", d, sizeof d);
        cr_assert_eq(rb_npy_read(tmp("v2.npy"), RB_NPY_F64, 0, &a), 0, "%s", rb_error_detail());
        cr_assert_eq(a.ndim, 1);
        cr_assert_eq(a.shape[0], 3);
        cr_assert_eq(memcmp(a.data, d, sizeof d), 0);
        rb_npy_free(&a);
    }
    /* '=' (native) is little-endian here */
    write_npy(tmp("eq.npy"), 1, "{'descr': '=f4', 'fortran_order': False, 'shape': (6,), }", f,
              sizeof f);
    cr_assert_eq(rb_npy_read(tmp("eq.npy"), RB_NPY_F32, 0, &a), 0);
    rb_npy_free(&a);
}

/* The header alone gives the shape a full read gives: every version, every dtype read (bfloat16
 * as 'bfloat16' and as '<V2' with the flag), 0-d, empty and 4-d arrays, NumPy's own writer's
 * files; the data are never needed. */
Test(npy, header_agrees_with_the_full_read) {
    static const struct {
        const char *descr;
        size_t esize;
        unsigned flags;
    } dtypes[] = {{"<f4", 4, 0}, {"<f8", 8, 0},      {"<f2", 2, 0},
                  {"=f4", 4, 0}, {"bfloat16", 2, 0}, {"<V2", 2, RB_NPY_V2_AS_BF16}};
    static const struct {
        const char *text;
        size_t count;
    } shapes[] = {{"()", 1},        {"(5,)", 5},          {"(0,)", 0},    {"(2, 3)", 6},
                  {"(3, 0, 2)", 0}, {"(1, 2, 3, 2)", 12}, {"(4L, 2L)", 8}};
    unsigned char zero[8 * 12] = {0};
    for (int major = 1; major <= 3; major++)
        for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
            for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
                char dict[160];
                snprintf(dict, sizeof dict,
                         "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", dtypes[d].descr,
                         shapes[k].text);
                write_npy(tmp("h.npy"), major, dict, zero, shapes[k].count * dtypes[d].esize);
                expect_same_header(tmp("h.npy"), dtypes[d].flags);
                rb_npy_array h;
                cr_assert_eq(rb_npy_read_header(tmp("h.npy"), dtypes[d].flags, &h), 0);
                cr_assert_eq(h.count, shapes[k].count, "v%d %s %s", major, dtypes[d].descr,
                             shapes[k].text);
            }
    size_t s4[4] = {2, 1, 3, 2};
    float f[12] = {0};
    cr_assert_eq(rb_npy_write(tmp("w.npy"), RB_NPY_F32, 4, s4, f), 0);
    expect_same_header(tmp("w.npy"), 0);
    /* A header that says (2, 3) is read as that, not as a default. */
    rb_npy_array h;
    write_npy(tmp("h.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", zero,
              48);
    cr_assert_eq(rb_npy_read_header(tmp("h.npy"), 0, &h), 0);
    cr_assert(h.ndim == 2 && h.shape[0] == 2 && h.shape[1] == 3 && h.count == 6);
    cr_assert_str_eq(h.descr, "<f8");
}

Test(npy, float16_conversion) {
    /* 1, -2, 65504 (max), 2^-24 (smallest subnormal), 0x3555 = 0.333251953125, -0, 2^-14 */
    static const uint16_t h[7] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x8000, 0x0400};
    static const double want[7] = {1, -2, 65504, 0x1p-24, 0.333251953125, -0.0, 0x1p-14};
    write_npy(tmp("h.npy"), 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }", h,
              sizeof h);
    rb_npy_array a, b;
    cr_assert_eq(rb_npy_read(tmp("h.npy"), RB_NPY_F64, 0, &a), 0, "%s", rb_error_detail());
    cr_assert_eq(rb_npy_read(tmp("h.npy"), RB_NPY_F32, 0, &b), 0);
    cr_assert_str_eq(a.descr, "<f2");
    for (int i = 0; i < 7; i++) {
        double v = ((double *) a.data)[i];
        float fv = ((float *) b.data)[i];
        cr_assert(v == want[i] && signbit(v) == signbit(want[i]), "i=%d %g", i, v);
        cr_assert_eq(fv, (float) want[i]);
    }
    rb_npy_free(&a);
    rb_npy_free(&b);
    /* +Inf and NaN halves load without the check, and are reported with it */
    static const uint16_t hi[3] = {0x3c00, 0x7c00, 0x7e00};
    write_npy(tmp("hi.npy"), 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", hi,
              sizeof hi);
    cr_assert_eq(rb_npy_read(tmp("hi.npy"), RB_NPY_F32, 0, &a), 0);
    cr_assert(isinf(((float *) a.data)[1]) && isnan(((float *) a.data)[2]));
    rb_npy_free(&a);
    expect_fail(tmp("hi.npy"), RB_ENUMERIC, RB_NPY_CHECK_FINITE, "element 1 ", "+Inf");
}

Test(npy, bfloat16) {
    /* bfloat16 of 1, -2.5, 3.140625 */
    static const uint16_t b[3] = {0x3f80, 0xc020, 0x4049};
    rb_npy_array a;
    write_npy(tmp("bf.npy"), 1, "{'descr': 'bfloat16', 'fortran_order': False, 'shape': (3,), }", b,
              sizeof b);
    cr_assert_eq(rb_npy_read(tmp("bf.npy"), RB_NPY_F32, 0, &a), 0, "%s", rb_error_detail());
    cr_assert_eq(((float *) a.data)[0], 1.0f);
    cr_assert_eq(((float *) a.data)[1], -2.5f);
    cr_assert_eq(((float *) a.data)[2], 3.140625f);
    rb_npy_free(&a);
    write_npy(tmp("v2.npy"), 1, "{'descr': '<V2', 'fortran_order': False, 'shape': (3,), }", b,
              sizeof b);
    /* The message names what the user can change, never the C flag: the dataset parameter
     * where the caller has it, else how to save the file. */
    expect_fail(tmp("v2.npy"), RB_EFORMAT, 0, "'<V2'", "saved with descr 'bfloat16'");
    cr_assert_null(strstr(rb_error_detail(), "RB_NPY"), "%s", rb_error_detail());
    expect_fail(tmp("v2.npy"), RB_EFORMAT, RB_NPY_V2_KEY, "'<V2'", "v2_as_bf16: true");
    cr_assert_null(strstr(rb_error_detail(), "RB_NPY"), "%s", rb_error_detail());
    cr_assert_eq(rb_npy_read(tmp("v2.npy"), RB_NPY_F64, RB_NPY_V2_AS_BF16, &a), 0);
    cr_assert_eq(((double *) a.data)[1], -2.5);
    rb_npy_free(&a);
}

Test(npy, rejections) {
    float f[4] = {1, 2, 3, 4};
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";

    /* bad magic, empty file, a file that ends inside the magic or the version */
    write_bytes(tmp("magic.npy"), "\x93NUMPX\x01\x00\x10\x00", 10);
    expect_fail(tmp("magic.npy"), RB_EFORMAT, 0, "bad magic", NULL);
    write_bytes(tmp("empty.npy"), "", 0);
    expect_fail(tmp("empty.npy"), RB_EFORMAT, 0, "bad magic", NULL);
    write_bytes(tmp("short.npy"), "\x93NUM", 4);
    expect_fail(tmp("short.npy"), RB_EFORMAT, 0, "truncated header", NULL);
    write_bytes(tmp("short2.npy"), "\x93NUMPY\x01", 7);
    expect_fail(tmp("short2.npy"), RB_EFORMAT, 0, "truncated header", NULL);

    /* a keyword that only starts like True, a string with no closing quote, a string that
     * closes but is too long for its field */
    write_npy(tmp("fo.npy"), 1, "{'descr': '<f4', 'fortran_order': Truex, 'shape': (4,), }", f,
              sizeof f);
    expect_fail(tmp("fo.npy"), RB_EFORMAT, 0, "fortran_order must be True or False", NULL);
    write_npy(tmp("unterm.npy"), 1, "{'descr': '<f4                                 ", f, sizeof f);
    expect_fail(tmp("unterm.npy"), RB_EFORMAT, 0, "unterminated string", NULL);
    write_npy(tmp("long.npy"), 1,
              "{'descr': '<f4xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'fortran_order': False, "
              "'shape': (4,), }",
              f, sizeof f);
    expect_fail(tmp("long.npy"), RB_EFORMAT, 0, "string too long", NULL);
    /* 15 characters fill the 16-byte descr field exactly: read whole, then refused as a dtype */
    write_npy(tmp("d15.npy"), 1,
              "{'descr': '<f4xxxxxxxxxxxx', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
    expect_fail(tmp("d15.npy"), RB_EFORMAT, 0, "unsupported dtype '<f4xxxxxxxxxxxx'", NULL);

    /* unsupported version */
    write_npy(tmp("ver.npy"), 4, ok, f, sizeof f);
    expect_fail(tmp("ver.npy"), RB_EFORMAT, 0, "version 4.0", NULL);

    /* truncated header: cut the file inside the dict */
    write_npy(tmp("full.npy"), 1, ok, f, sizeof f);
    {
        FILE *in = fopen(tmp("full.npy"), "rb");
        unsigned char b[256];
        size_t n = fread(b, 1, sizeof b, in);
        fclose(in);
        cr_assert_gt(n, 40);
        write_bytes(tmp("trunch.npy"), b, 40);
        expect_fail(tmp("trunch.npy"), RB_EFORMAT, 0, "truncated header", NULL);
        write_bytes(tmp("truncl.npy"), b, 9); /* inside the length field */
        expect_fail(tmp("truncl.npy"), RB_EFORMAT, 0, "truncated header", NULL);
        /* truncated data: the last float cut in half */
        write_bytes(tmp("truncd.npy"), b, n - 2);
        expect_fail(tmp("truncd.npy"), RB_EFORMAT, 0, "truncated data", "needs 16 bytes");
    }
    /* trailing data */
    write_npy(tmp("trail.npy"), 1, ok, f, sizeof f);
    {
        FILE *app = fopen(tmp("trail.npy"), "ab");
        fputc(0, app);
        fclose(app);
        expect_fail(tmp("trail.npy"), RB_EFORMAT, 0, "trailing data", NULL);
    }

    /* dtypes: unsupported, big-endian, structured */
    write_npy(tmp("i4.npy"), 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", f,
              sizeof f);
    expect_fail(tmp("i4.npy"), RB_EFORMAT, 0, "unsupported dtype '<i4'", "supported: '<f4'");
    write_npy(tmp("be.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", f,
              sizeof f);
    expect_fail(tmp("be.npy"), RB_EFORMAT, 0, "'>f4' is big-endian", NULL);
    write_npy(tmp("rec.npy"), 1,
              "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
    expect_fail(tmp("rec.npy"), RB_EFORMAT, 0, "structured", NULL);

    /* fortran order */
    write_npy(tmp("fo.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f,
              sizeof f);
    expect_fail(tmp("fo.npy"), RB_EFORMAT, 0, "fortran_order is True", NULL);

    /* malformed dicts */
    static const struct {
        const char *dict, *word;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
        {"{'descr': '<f4', 'shape': (4,)}", "missing key 'fortran_order'"},
        {"'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", "expected '{'"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (4,)}", "malformed"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [4]}", "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", "unexpected key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", "duplicate"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} junk", "after the closing"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4 4)}", "expected ',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-4,)}", "negative"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (4,)}", "expected ',' or '}'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        write_npy(tmp("bad.npy"), 1, bad[k].dict, f, sizeof f);
        expect_fail(tmp("bad.npy"), RB_EFORMAT, 0, bad[k].word, NULL);
    }

    /* absurd shapes: a dimension beyond size_t, and a product that overflows */
    write_npy(tmp("big1.npy"), 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", f,
              sizeof f);
    expect_fail(tmp("big1.npy"), RB_EFORMAT, 0, "absurd shape", NULL);
    write_npy(tmp("big2.npy"), 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }", f,
              sizeof f);
    expect_fail(tmp("big2.npy"), RB_EFORMAT, 0, "absurd shape", "overflows");
    write_npy(tmp("big3.npy"), 1,
              "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }", f,
              sizeof f);
    expect_fail(tmp("big3.npy"), RB_EFORMAT, 0, "absurd shape", "overflows");

    /* a file that does not exist */
    expect_fail(tmp("nope.npy"), RB_EIO, 0, "cannot open", NULL);
}

Test(npy, nan_inf_reported_with_index) {
    float f[8] = {0, 1, 2, 3, 4, NAN, 6, INFINITY};
    size_t shape[2] = {2, 4};
    cr_assert_eq(rb_npy_write(tmp("n.npy"), RB_NPY_F32, 2, shape, f), 0);
    rb_npy_array a;
    cr_assert_eq(rb_npy_read(tmp("n.npy"), RB_NPY_F64, 0, &a), 0, "the check is an option");
    cr_assert(isnan(((double *) a.data)[5]));
    rb_npy_free(&a);
    expect_fail(tmp("n.npy"), RB_ENUMERIC, RB_NPY_CHECK_FINITE, "element 5 (index (1, 1)) is NaN",
                NULL);
    f[5] = 5;
    f[7] = -INFINITY;
    cr_assert_eq(rb_npy_write(tmp("n.npy"), RB_NPY_F32, 2, shape, f), 0);
    expect_fail(tmp("n.npy"), RB_ENUMERIC, RB_NPY_CHECK_FINITE, "element 7 (index (1, 3)) is -Inf",
                NULL);
    /* a finite float64 that overflows float32 is caught when converting */
    double d[3] = {1, 1e300, 2};
    size_t s1 = 3;
    cr_assert_eq(rb_npy_write(tmp("o.npy"), RB_NPY_F64, 1, &s1, d), 0);
    expect_fail(tmp("o.npy"), RB_ENUMERIC, RB_NPY_CHECK_FINITE, "element 1", "overflows float32");
    cr_assert_eq(rb_npy_read(tmp("o.npy"), RB_NPY_F64, RB_NPY_CHECK_FINITE, &a), 0);
    rb_npy_free(&a);
}

Test(npy, writer_errors) {
    size_t s = 2;
    float f[2] = {1, 2};
    cr_assert_eq(rb_npy_write("/nonexistent-dir/x.npy", RB_NPY_F32, 1, &s, f), RB_EIO);
    cr_assert(strstr(rb_error_detail(), "/nonexistent-dir/x.npy"));
    cr_assert_eq(rb_npy_write(tmp("x.npy"), RB_NPY_F32, RB_NPY_MAX_DIMS + 1, &s, f), RB_EINVAL);
    cr_assert_eq(rb_npy_write(tmp("x.npy"), (enum rb_npy_dtype) 5, 1, &s, f), RB_EINVAL);
}
