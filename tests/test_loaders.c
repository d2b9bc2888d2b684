/* File loaders as dataset kinds: .npy round trips, .safetensors and .fvecs files written byte by
 * byte (good files and every rejection with its message), NaN/Inf checks and content hashes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

static void setup(void) {
    rbt_tmpdir_make("loaders");
}

TestSuite(loaders, .init = setup, .fini = rbt_tmpdir_remove);

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (n) cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void expect_error(int rc, int code, const char *a, const char *b) {
    cr_assert_eq(rc, code, "rc %d (%s), want %d", rc, rb_error_detail(), code);
    cr_assert(strstr(rb_error_detail(), a), "'%s' lacks '%s'", rb_error_detail(), a);
    if (b) cr_assert(strstr(rb_error_detail(), b), "'%s' lacks '%s'", rb_error_detail(), b);
}

/* ---- npy ---- */

Test(loaders, npy_round_trip) {
    uint64_t seed = rbt_seed();
    size_t shape[2] = {17, 9}, qshape[2] = {3, 9};
    float *x = rbt_normal_f32(17 * 9, seed, 1), *q = rbt_normal_f32(27, seed, 2);
    double *w = rbt_normal_f64(4 * 5 * 6, seed, 3);
    size_t wshape[3] = {4, 5, 6};
    const char *px = rbt_tmp("x.npy"), *pq = rbt_tmp("q.npy"), *pw = rbt_tmp("w.npy");
    cr_assert_eq(rb_npy_write(px, RB_NPY_F32, 2, shape, x), 0);
    cr_assert_eq(rb_npy_write(pq, RB_NPY_F32, 2, qshape, q), 0);
    cr_assert_eq(rb_npy_write(pw, RB_NPY_F64, 3, wshape, w), 0);

    rb_dataset ds, again;
    cr_assert_eq(rbt_load_and_shape(&ds, "npy", 0, "path", px, "queries_path", pq, NULL), 0, "%s",
                 rb_error_detail());
    const rb_tensor *t = rb_dataset_tensor(&ds, "x"), *tq = rb_dataset_tensor(&ds, "queries");
    cr_assert(t && t->ndim == 2 && t->shape[0] == 17 && t->shape[1] == 9);
    cr_assert(tq && tq->shape[0] == 3 && tq->shape[1] == 9);
    cr_assert_eq(memcmp(t->data, x, sizeof(float) * 17 * 9), 0);
    cr_assert_eq(memcmp(tq->data, q, sizeof(float) * 27), 0);
    cr_assert_eq(strlen(ds.hash), 64);
    cr_assert_eq(rbt_load_and_shape(&again, "npy", 0, "path", px, "queries_path", pq, NULL), 0);
    cr_assert_str_eq(ds.hash, again.hash);
    rb_dataset_free(&again);

    /* float64 converted to float32, stored under another name; another content, another hash. */
    cr_assert_eq(rbt_load_and_shape(&again, "npy", 0, "path", pw, "as", "W", NULL), 0);
    t = rb_dataset_tensor(&again, "W");
    cr_assert(t && t->ndim == 3 && t->shape[2] == 6 && !rb_dataset_tensor(&again, "x"));
    for (size_t i = 0; i < 120; i++) cr_assert_eq(t->data[i], (float) w[i]);
    cr_assert_str_neq(ds.hash, again.hash);
    rb_dataset_free(&again);
    rb_dataset_free(&ds);
    free(x);
    free(q);
    free(w);
}

Test(loaders, npy_rejections) {
    rb_dataset ds;
    float v[6] = {1, 2, 3, 4, NAN, 6};
    size_t shape[2] = {2, 3};
    const char *pn = rbt_tmp("nan.npy"), *p5 = rbt_tmp("rank5.npy");
    cr_assert_eq(rb_npy_write(pn, RB_NPY_F32, 2, shape, v), 0);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", pn, NULL), RB_ENUMERIC, "nan.npy",
                 "element 4");
    cr_assert_eq(ds.ntensors, 0);
    v[4] = INFINITY;
    cr_assert_eq(rb_npy_write(pn, RB_NPY_F32, 2, shape, v), 0);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", pn, NULL), RB_ENUMERIC, "nan.npy",
                 "Inf");
    size_t s5[5] = {1, 1, 2, 1, 3};
    cr_assert_eq(rb_npy_write(p5, RB_NPY_F32, 5, s5, (float[6]){0}), 0);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", p5, NULL), RB_EINVAL, "rank5.npy",
                 "5 axes");
    /* No elements, or no axis: every method would refuse them, so the header does (a dry run). */
    const char *pe = rbt_tmp("empty.npy"), *p0 = rbt_tmp("scalar.npy");
    cr_assert_eq(rb_npy_write(pe, RB_NPY_F32, 2, (size_t[2]){4, 0}, NULL), 0);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", pe, NULL), RB_EINVAL, "empty.npy",
                 "an empty array (shape (4, 0))");
    cr_assert_eq(rb_npy_write(p0, RB_NPY_F32, 0, NULL, (float[1]){1}), 0);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", p0, NULL), RB_EINVAL, "scalar.npy",
                 "a 0-d array");
    const char *pg = rbt_tmp("good.npy");
    cr_assert_eq(rb_npy_write(pg, RB_NPY_F32, 2, shape, (float[6]){1, 2, 3, 4, 5, 6}), 0);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", pg, "queries_path", pe, NULL), RB_EINVAL,
                 "empty.npy", "an empty array");
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", rbt_tmp("missing.npy"), NULL), RB_EIO,
                 "missing.npy", NULL);
    cr_assert_null(strstr(rb_error_detail(), "relative"), "%s", rb_error_detail());
    /* A relative path that is not there says where it was looked for: the current directory,
     * which a config's paths are read from (not the config file's). */
    char cwd[1024], want[1100];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "(a relative path is read from the current directory, %s)", cwd);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", "no/such/x.npy", NULL), RB_EIO,
                 "no/such/x.npy: cannot open: No such file or directory", want);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, NULL), RB_EINVAL, "'path' is required", NULL);
    /* Queries that are not (queries, x's dim): the loader names the file and the shape. */
    cr_assert_eq(rb_npy_write(rbt_tmp("q3d.npy"), RB_NPY_F32, 3, (size_t[3]){1, 2, 3},
                              (float[6]){1, 2, 3, 4, 5, 6}),
                 0);
    expect_error(
        rbt_load_and_shape(&ds, "npy", 0, "path", pg, "queries_path", rbt_tmp("q3d.npy"), NULL),
        RB_EINVAL, "q3d.npy: queries of shape (1, 2, 3); with vectors x of dimension 3", NULL);
    /* A bad queries file fails the whole load and leaves nothing behind. */
    float ok[6] = {1, 2, 3, 4, 5, 6};
    cr_assert_eq(rb_npy_write(rbt_tmp("ok.npy"), RB_NPY_F32, 2, shape, ok), 0);
    expect_error(rbt_load_and_shape(&ds, "npy", 0, "path", rbt_tmp("ok.npy"), "queries_path",
                                    rbt_tmp("no.npy"), NULL),
                 RB_EIO, "no.npy", NULL);
    cr_assert_eq(ds.ntensors, 0);
}

/* Every file loader opens its files through rb_data_open, which refuses what is no regular file
 * at once: a FIFO's open() would wait for a writer forever (the timeout turns that hang into a
 * failure), and a directory or device has no size to check a header against. The shape hook
 * (the preflight) must say the same. */
Test(loaders, non_regular_files_refused, .timeout = 30) {
    const char *fifo = rbt_tmp("f.fifo"), *dir = rbt_tmp("d.npy");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(mkdir(dir, 0700), 0);
    static const struct {
        const char *kind, *param, *tensor;
    } kinds[] = {
        {"npy", "path", NULL},        {"safetensors", "path", "x"},  {"fvecs", "path", NULL},
        {"sparse_npy", "path", NULL}, {"npy", "queries_path", NULL},
    };
    const struct {
        const char *path, *why;
    } files[] = {
        {fifo, "cannot open: it is a FIFO (named pipe), not a regular file"},
        {dir, "cannot open: it is a directory"},
        {"/dev/null", "cannot open: it is a device, not a regular file"},
    };
    float ok[6] = {1, 2, 3, 4, 5, 6};
    size_t shape[2] = {2, 3};
    const char *good = rbt_tmp("good.npy");
    cr_assert_eq(rb_npy_write(good, RB_NPY_F32, 2, shape, ok), 0);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            rb_dataset ds;
            int q = !strcmp(kinds[k].param, "queries_path");
            int rc = kinds[k].tensor
                         ? rbt_load_and_shape(&ds, kinds[k].kind, 0, kinds[k].param, files[f].path,
                                              "tensor", kinds[k].tensor, NULL)
                     : q ? rbt_load_and_shape(&ds, kinds[k].kind, 0, "path", good, kinds[k].param,
                                              files[f].path, NULL)
                         : rbt_load_and_shape(&ds, kinds[k].kind, 0, kinds[k].param, files[f].path,
                                              NULL);
            cr_expect_eq(rc, RB_EIO, "[%s %s %s] rc %d: %s", kinds[k].kind, kinds[k].param,
                         files[f].path, rc, rb_error_detail());
            cr_expect(strstr(rb_error_detail(), files[f].why), "[%s %s] got '%s', wanted ...%s",
                      kinds[k].kind, files[f].path, rb_error_detail(), files[f].why);
            cr_expect_eq(ds.ntensors, 0);
        }
}

/* ---- safetensors ---- */

/* 8-byte little-endian header length (hlen_override if nonzero), the header, the data. */
static void write_st(const char *path, const char *header, uint64_t hlen_override, const void *data,
                     size_t n) {
    size_t h = strlen(header);
    unsigned char *buf = malloc(8 + h + n);
    uint64_t len = hlen_override ? hlen_override : h;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char) (len >> (8 * i));
    memcpy(buf + 8, header, h);
    if (n) memcpy(buf + 8 + h, data, n);
    write_bytes(path, buf, 8 + h + n);
    free(buf);
}

Test(loaders, safetensors_good_file) {
    /* a: F32 2x3; h: F16 [1, -2.5, 65504]; b: BF16 2 [1.5, -3]; d: F64 [0.1]; s: the same
     * bytes as a 0-d tensor (refused: a dataset tensor has an axis). */
    unsigned char data[24 + 6 + 4 + 8 + 8];
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    uint16_t h[3] = {0x3c00, 0xc100, 0x7bff}, b[2] = {0x3fc0, 0xc040};
    double d = 0.1;
    memcpy(data, a, 24);
    memcpy(data + 24, h, 6);
    memcpy(data + 30, b, 4);
    memcpy(data + 34, &d, 8);
    memcpy(data + 42, &d, 8);
    const char *hdr =
        "{\"__metadata__\": {\"format\": \"pt\"}, "
        "\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}, "
        "\"h\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [24, 30]}, "
        "\"b\": {\"dtype\": \"BF16\", \"shape\": [2, 1], \"data_offsets\": [30, 34]}, "
        "\"d\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [34, 42]}, "
        "\"s\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [42, 50]}}   ";
    const char *p = rbt_tmp("good.safetensors");
    write_st(p, hdr, 0, data, sizeof data);
    rb_dataset ds;
    cr_assert_eq(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL), 0, "%s",
                 rb_error_detail());
    const rb_tensor *t = rb_dataset_tensor(&ds, "x");
    cr_assert(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    cr_assert_eq(memcmp(t->data, a, 24), 0);
    cr_assert_eq(strlen(ds.hash), 64);
    char hash_a[65];
    strcpy(hash_a, ds.hash);
    rb_dataset_free(&ds);

    cr_assert_eq(
        rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "h", "as", "W", NULL), 0);
    t = rb_dataset_tensor(&ds, "W");
    cr_assert(t && t->ndim == 1 && t->data[0] == 1 && t->data[1] == -2.5f && t->data[2] == 65504);
    cr_assert_str_neq(ds.hash, hash_a);
    rb_dataset_free(&ds);
    cr_assert_eq(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "b", NULL), 0);
    t = rb_dataset_tensor(&ds, "x");
    cr_assert(t->ndim == 2 && t->shape[0] == 2 && t->data[0] == 1.5f && t->data[1] == -3);
    rb_dataset_free(&ds);
    cr_assert_eq(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "d", NULL), 0);
    t = rb_dataset_tensor(&ds, "x");
    cr_assert(t->ndim == 1 && t->shape[0] == 1 && t->data[0] == 0.1f);
    rb_dataset_free(&ds);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "s", NULL),
                 RB_EINVAL, "tensor 's' is 0-d", NULL);
    /* the same tensor again: the same hash */
    cr_assert_eq(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL), 0);
    cr_assert_str_eq(ds.hash, hash_a);
    rb_dataset_free(&ds);
}

Test(loaders, safetensors_rejections) {
    rb_dataset ds;
    float a[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}; /* 4 bytes past good's 48 too */
    const char *good = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
                       " \"w\": {\"dtype\": \"F32\", \"shape\": [6], \"data_offsets\": [24, 48]}}";
    const char *p = rbt_tmp("bad.safetensors");

    write_st(p, good, 0, a, 48);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "missing", NULL),
                 RB_EINVAL, "no tensor 'missing'", "available: a, w");
    expect_error(
        rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "__metadata__", NULL),
        RB_EINVAL, "no tensor", NULL);

    write_st(p, "{\"e\": {\"dtype\": \"F32\", \"shape\": [3, 0], \"data_offsets\": [0, 0]}}", 0, a,
             0);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "e", NULL),
                 RB_EINVAL, "tensor 'e' is empty", NULL);

    write_st(p, good, UINT64_C(1) << 40, a, 48);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "bad.safetensors", "not sane");
    write_st(p, good, 1000, a, 48);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "header length 1000 runs past the end of the file", NULL);
    write_bytes(p, "\x10\0\0", 3);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "too short", NULL);

    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 0, a,
             24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "hold 20 bytes", "need 24");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [4, 28]}}", 0, a,
             24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "run past the data section", "24 bytes");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [24, 0]}}", 0, a,
             24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "begin <= end", NULL);
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, -3], \"data_offsets\": [0, 24]}}", 0,
             a, 24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "shape[1]", NULL);
    write_st(p, "{\"a\": {\"dtype\": \"I32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}}", 0, a,
             24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_ENOTSUP, "dtype I32", "F32, F16, BF16, F64");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3]}}", 0, a, 24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "data_offsets", NULL);
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]", 0, a,
             24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "not valid JSON", NULL);
    write_st(p, "[1, 2]", 0, a, 24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "not a JSON object", NULL);
    write_st(p, "{\"__metadata__\": 3, \"a\": {}}", 0, a, 24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "__metadata__", NULL);

    /* The tensors must tile the data section (the format's own reader refuses the rest): a
     * hole before a tensor, two on the same bytes, bytes past the last, and another tensor's
     * offsets, whichever tensor is read. */
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [8, 32]}}", 0, a,
             32);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "tensor 'a': data_offsets [8, 32] leave bytes 0 .. 7", "tile");
    write_st(p,
             "{\"a\": {\"dtype\": \"F32\", \"shape\": [6], \"data_offsets\": [0, 24]},"
             " \"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]}}",
             0, a, 24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "tensor 'w': data_offsets [16, 24] overlap tensor 'a' [0, 24]", NULL);
    write_st(p, good, 0, a, 48 + 4);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "w", NULL),
                 RB_EFORMAT, "the data section has 52 bytes but its tensors end at byte 48", NULL);
    write_st(p,
             "{\"a\": {\"dtype\": \"F32\", \"shape\": [6], \"data_offsets\": [0, 24]},"
             " \"z\": {\"dtype\": \"I8\", \"shape\": [2], \"data_offsets\": [26, 24]}}",
             0, a, 24);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_EFORMAT, "tensor 'z': data_offsets must be [begin, end]", NULL);

    a[4] = NAN;
    write_st(p, good, 0, a, 48);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_ENUMERIC, "element 4 is NaN", NULL);
    double big = 1e300;
    write_st(p, "{\"a\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 0, &big,
             8);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, "tensor", "a", NULL),
                 RB_ENUMERIC, "beyond the float32 range", NULL);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", rbt_tmp("none.safetensors"),
                                    "tensor", "a", NULL),
                 RB_EIO, "none.safetensors", NULL);
    expect_error(rbt_load_and_shape(&ds, "safetensors", 0, "path", p, NULL), RB_EINVAL,
                 "'tensor' is required", NULL);
    cr_assert_eq(ds.ntensors, 0);
}

/* ---- fvecs ---- */

/* n vectors of dimension dims[i], values v0 + i * 10 + j. */
static void write_fvecs(const char *path, size_t n, const int32_t *dims, size_t cut) {
    unsigned char buf[1024];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + off, &dims[i], 4);
        off += 4;
        for (int32_t j = 0; j < dims[i]; j++) {
            float v = (float) (i * 10 + (size_t) j) + 0.5f;
            memcpy(buf + off, &v, 4);
            off += 4;
        }
    }
    write_bytes(path, buf, off - cut);
}

Test(loaders, fvecs) {
    rb_dataset ds;
    const char *p = rbt_tmp("v.fvecs"), *pq = rbt_tmp("q.fvecs");
    int32_t dims[3] = {4, 4, 4};
    write_fvecs(p, 3, dims, 0);
    write_fvecs(pq, 2, dims, 0);
    cr_assert_eq(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, "queries_path", pq, NULL), 0, "%s",
                 rb_error_detail());
    const rb_tensor *t = rb_dataset_tensor(&ds, "x"), *q = rb_dataset_tensor(&ds, "queries");
    cr_assert(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4);
    cr_assert(q && q->shape[0] == 2 && q->shape[1] == 4);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++)
            cr_assert_eq(t->data[i * 4 + j], (float) (i * 10 + j) + 0.5f);
    cr_assert_eq(strlen(ds.hash), 64);
    char h[65];
    strcpy(h, ds.hash);
    rb_dataset_free(&ds);
    cr_assert_eq(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, "count", "2", NULL), 0);
    cr_assert_eq(rb_dataset_tensor(&ds, "x")->shape[0], 2);
    cr_assert_str_neq(ds.hash, h);
    rb_dataset_free(&ds);

    write_fvecs(p, 3, dims, 2);
    expect_error(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, NULL), RB_EFORMAT,
                 "v.fvecs: truncated", "vector 2 has 3 of its 4 floats");
    write_fvecs(p, 3, dims, 18);
    expect_error(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, NULL), RB_EFORMAT, "truncated",
                 "vector 2 ends inside its dimension");
    /* the count limit stops before the damage */
    cr_assert_eq(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, "count", "2", NULL), 0);
    rb_dataset_free(&ds);
    /* queries of another dimension than the vectors' */
    int32_t d5[2] = {5, 5};
    write_fvecs(p, 3, dims, 0);
    write_fvecs(pq, 2, d5, 0);
    expect_error(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, "queries_path", pq, NULL),
                 RB_EINVAL, "q.fvecs: queries of shape (2, 5); with vectors x of dimension 4",
                 "(queries, 4)");
    int32_t bad[3] = {4, 4, 5};
    write_fvecs(p, 3, bad, 0);
    expect_error(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, NULL), RB_EFORMAT,
                 "vector 2 has dimension 5, vector 0 has 4", NULL);
    int32_t zero[1] = {0};
    write_fvecs(p, 1, zero, 0);
    expect_error(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, NULL), RB_EFORMAT,
                 "vector 0 has dimension 0", NULL);
    write_bytes(p, "", 0);
    expect_error(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, NULL), RB_EFORMAT, "empty", NULL);

    unsigned char buf[3 * 20];
    write_fvecs(p, 3, dims, 0);
    FILE *f = fopen(p, "rb");
    cr_assert_eq(fread(buf, 1, sizeof buf, f), sizeof buf);
    fclose(f);
    float inf = -INFINITY;
    memcpy(buf + 2 * 20 + 4 + 4, &inf, 4); /* vector 2, component 1 */
    write_bytes(p, buf, sizeof buf);
    expect_error(rbt_load_and_shape(&ds, "fvecs", 0, "path", p, NULL), RB_ENUMERIC,
                 "vector 2, component 1 is -Inf", NULL);
    cr_assert_eq(ds.ntensors, 0);
}
