/* `rotabench apply`: every op through the binary against the library on the same input, and bad
 * files and arguments rejected with a message and exit status 2. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

static char dir[64];

/* A fresh scratch directory (a test may make one per case); the suite's .fini removes them all. */
static void make_dir(void) {
    snprintf(dir, sizeof dir, "%s", rbt_tmpdir_make("apply"));
}

TestSuite(cli_apply, .fini = rbt_tmpdir_remove);

static void path(char *buf, const char *name) {
    snprintf(buf, 256, "%s/%s", dir, name);
}

static void write_input(const char *name, size_t rows, size_t n, uint64_t seed, float **x) {
    char p[256];
    path(p, name);
    *x = rbt_normal_f32(rows * n, seed, 0);
    size_t shape[2] = {rows, n};
    cr_assert_eq(rb_npy_write(p, RB_NPY_F32, 2, shape, *x), 0, "%s", rb_error_detail());
}

static float *read_output(const char *name, size_t count) {
    char p[256];
    path(p, name);
    rb_npy_array a;
    cr_assert_eq(rb_npy_read(p, RB_NPY_F32, 0, &a), 0, "%s", rb_error_detail());
    cr_assert_eq(a.count, count);
    return a.data;
}

static void apply_ok(const char *args) {
    char *out, *err, cmd[1024];
    snprintf(cmd, sizeof cmd, "apply %s", args);
    int st = rbt_run_cli(cmd, &out, &err);
    cr_assert_eq(st, 0, "%s: exit %d: %s", cmd, st, err);
    free(out);
    free(err);
}

/* The binary's result equals the library call on the same data, bit for bit (same kernels). */
Test(cli_apply, ops_match_the_library) {
    make_dir();
    uint64_t seed = rbt_seed();
    size_t rows = 5, n = 384; /* 384 = 12 * 32: a Hadamard order that is not a power of two */
    float *x;
    write_input("x.npy", rows, n, seed, &x);
    char args[1024], in[256], out[256];
    path(in, "x.npy");
    path(out, "y.npy");
    float *ref = malloc(rows * n * sizeof *ref);

    snprintf(args, sizeof args, "hadamard --in %s --out %s", in, out);
    apply_ok(args);
    memcpy(ref, x, rows * n * sizeof *ref);
    rb_hadamard_f32(ref, n, rows, n, RB_FORWARD);
    float *y = read_output("y.npy", rows * n);
    cr_assert_eq(memcmp(y, ref, rows * n * sizeof *ref), 0, "hadamard (seed %llu)",
                 (unsigned long long) seed);
    free(y);

    snprintf(args, sizeof args, "rht --seed 11 --in %s --out %s", in, out);
    apply_ok(args);
    memcpy(ref, x, rows * n * sizeof *ref);
    rb_rht r;
    cr_assert_eq(rb_rht_init(&r, n, 1, 11), 0);
    rb_rht_apply_f32(&r, ref, rows, n, RB_FORWARD);
    rb_rht_free(&r);
    y = read_output("y.npy", rows * n);
    cr_assert_eq(memcmp(y, ref, rows * n * sizeof *ref), 0, "rht");
    free(y);
    /* The same seed written otherwise: a leading 0 is not octal (011 is eleven, as in a config),
     * 0x is hexadecimal. */
    const char *elevens[] = {"011", "0xb", "0X0B"};
    for (size_t i = 0; i < sizeof elevens / sizeof elevens[0]; i++) {
        snprintf(args, sizeof args, "rht --seed %s --in %s --out %s", elevens[i], in, out);
        apply_ok(args);
        y = read_output("y.npy", rows * n);
        cr_assert_eq(memcmp(y, ref, rows * n * sizeof *ref), 0, "rht --seed %s", elevens[i]);
        free(y);
    }

    snprintf(args, sizeof args, "block_hadamard --block 128 --in %s --out %s", in, out);
    apply_ok(args);
    memcpy(ref, x, rows * n * sizeof *ref);
    rb_hadamard_block_f32(ref, n, rows, n, 128, RB_FORWARD);
    y = read_output("y.npy", rows * n);
    cr_assert_eq(memcmp(y, ref, rows * n * sizeof *ref), 0, "block_hadamard");
    free(y);

    char codes[256];
    path(codes, "codes.bin");
    snprintf(args, sizeof args,
             "quantize --format int4 --asym --group 64 --in %s --out %s --codes %s", in, out,
             codes);
    apply_ok(args);
    rb_quant_spec spec = {.bits = 4, .asym = 1, .gran = RB_QUANT_PER_GROUP, .group = 64};
    float sc[5 * 6], ze[5 * 6];
    rb_fake_quant_f32(&spec, x, rows, n, n, ref, n, sc, ze);
    y = read_output("y.npy", rows * n);
    cr_assert_eq(memcmp(y, ref, rows * n * sizeof *ref), 0, "quantize int4");
    FILE *f = fopen(codes, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    cr_assert_eq(ftell(f), (long) (rows * n / 2), "two 4-bit codes per byte");
    fclose(f);
    free(y);

    snprintf(args, sizeof args, "quantize --format mxfp4 --in %s --out %s", in, out);
    apply_ok(args);
    for (size_t i = 0; i < rows; i++) rb_mxfp4_fake_quant(x + i * n, n, RB_MX_FLOOR, ref + i * n);
    y = read_output("y.npy", rows * n);
    cr_assert_eq(memcmp(y, ref, rows * n * sizeof *ref), 0, "quantize mxfp4");
    free(y);
    free(ref);
    free(x);
}

/* fwht in both orders and normalizations; the orthonormal natural transform is an involution
 * (checked through the binary twice), and the sequency output is a permutation of the natural. */
Test(cli_apply, fwht_options) {
    make_dir();
    float *x;
    size_t rows = 3, n = 64;
    write_input("x.npy", rows, n, rbt_seed(), &x);
    char in[256], y1[256], y2[256], args[1024];
    path(in, "x.npy");
    path(y1, "y1.npy");
    path(y2, "y2.npy");
    snprintf(args, sizeof args, "fwht --in %s --out %s", in, y1);
    apply_ok(args);
    snprintf(args, sizeof args, "fwht --in %s --out %s", y1, y2);
    apply_ok(args);
    float *back = read_output("y2.npy", rows * n);
    cr_assert(rbt_max_relerr_f32(back, x, rows * n) < 1e-5);
    free(back);
    snprintf(args, sizeof args, "fwht --norm none --order sequency --in %s --out %s", in, y2);
    apply_ok(args);
    float *seq = read_output("y2.npy", rows * n), *nat = read_output("y1.npy", rows * n);
    float s = sqrtf((float) n);
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < n; k++) {
            float want = nat[r * n + rb_sequency_to_natural(k, 6)] * s;
            cr_assert(fabsf(seq[r * n + k] - want) <= 1e-4f * fmaxf(1, fabsf(want)), "r %zu k %zu",
                      r, k);
        }
    free(seq);
    free(nat);
    free(x);
}

static void write_bytes(const char *name, const void *bytes, size_t len) {
    char p[256];
    path(p, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    fwrite(bytes, 1, len, f);
    fclose(f);
}

/* A .npy v1.0 file with the given header dict and payload. */
static void write_npy(const char *name, const char *dict, const void *data, size_t len) {
    char buf[4096];
    size_t hl = strlen(dict);
    size_t pad = 64 - (10 + hl + 1) % 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char) ((hl + pad + 1) & 0xff);
    buf[9] = (char) ((hl + pad + 1) >> 8);
    memcpy(buf + 10, dict, hl);
    memset(buf + 10 + hl, ' ', pad);
    buf[10 + hl + pad] = '\n';
    memcpy(buf + 11 + hl + pad, data, len);
    write_bytes(name, buf, 11 + hl + pad + len);
}

Test(cli_apply, bad_inputs_exit_2_with_a_message) {
    make_dir();
    float four[4] = {1, 2, 3, 4}, nan4[4] = {1, NAN, 3, 4};
    write_npy("trunc.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", four,
              sizeof four);
    write_npy("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four,
              sizeof four);
    write_npy("int.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", four,
              sizeof four);
    write_npy("nan.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", nan4,
              sizeof nan4);
    write_npy("ok.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", four,
              sizeof four);
    write_npy("odd.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", four, 12);
    write_bytes("garbage.npy", "hello world", 11);
    static const struct {
        const char *args, *msg;
    } cases[] = {
        {"fwht --in D/trunc.npy --out D/o.npy", "trunc.npy"},
        {"fwht --in D/fortran.npy --out D/o.npy", "fortran"},
        {"fwht --in D/int.npy --out D/o.npy", "<i4"},
        {"fwht --in D/nan.npy --out D/o.npy", "NaN"},
        {"fwht --in D/garbage.npy --out D/o.npy", "garbage.npy"},
        {"fwht --in D/missing.npy --out D/o.npy", "missing.npy"},
        {"fwht --in D/odd.npy --out D/o.npy", "n = 3 is not a power of two"},
        {"hadamard --in D/odd.npy --out D/o.npy", "nearest supported sizes"},
        {"spin --in D/ok.npy --out D/o.npy", "unknown op 'spin'"},
        {"fwht --in D/ok.npy", "--in and --out are required"},
        {"fwht --norm half --in D/ok.npy --out D/o.npy", "--norm 'half'"},
        {"quantize --format int3 --in D/ok.npy --out D/o.npy", "unknown --format 'int3'"},
        {"quantize --clip 2 --in D/ok.npy --out D/o.npy", "--clip '2'"},
        {"block_hadamard --in D/ok.npy --out D/o.npy", "needs --block"},
        {"block_hadamard --block 3 --in D/ok.npy --out D/o.npy",
         "--block 3 does not divide the row length n = 4"},
        {"fwht --codes D/c.bin --in D/ok.npy --out D/o.npy", "--codes does not apply to fwht"},
        {"fwht --seed 3 --in D/ok.npy --out D/o.npy", "--seed does not apply to fwht"},
        {"hadamard --norm none --in D/ok.npy --out D/o.npy", "--norm does not apply to hadamard"},
        {"rht --block 2 --in D/ok.npy --out D/o.npy", "--block does not apply to rht"},
        {"fwht --inverse --in D/ok.npy --out D/o.npy", "--inverse does not apply to fwht"},
        {"quantize --format mxfp4 --group 2 --in D/ok.npy --out D/o.npy",
         "--group applies to the integer formats (int2, int4, int8), not mxfp4"},
        {"quantize --format e4m3 --asym --in D/ok.npy --out D/o.npy",
         "--asym applies to the integer formats"},
        {"haar --format int8 --in D/ok.npy --out D/o.npy", "--format does not apply to haar"},
        {"fwht --bogus --in D/ok.npy --out D/o.npy", "unknown or incomplete option"},
        /* Numbers strtoull would wrap or clamp into another seed or size without a word. */
        {"rht --seed -1 --in D/ok.npy --out D/o.npy", "--seed '-1' is not an integer"},
        {"rht --seed 18446744073709551616 --in D/ok.npy --out D/o.npy",
         "--seed '18446744073709551616' is not an integer in 0..2^64-1"},
        {"rht --seed ' 5' --in D/ok.npy --out D/o.npy", "--seed ' 5' is not an integer"},
        {"rht --seed 0x --in D/ok.npy --out D/o.npy", "--seed '0x' is not an integer"},
        {"rht --seed 0x-1 --in D/ok.npy --out D/o.npy", "--seed '0x-1' is not an integer"},
        {"rht --seed 0x1g --in D/ok.npy --out D/o.npy", "--seed '0x1g' is not an integer"},
        {"rht --seed 0x10000000000000000 --in D/ok.npy --out D/o.npy",
         "--seed '0x10000000000000000' is not an integer in 0..2^64-1"},
        {"quantize --group 0x10 --in D/ok.npy --out D/o.npy", "--group '0x10' is not a positive"},
        {"quantize --group 99999999999999999999 --in D/ok.npy --out D/o.npy",
         "--group '99999999999999999999' is not a positive integer"},
        {"block_hadamard --block -2 --in D/ok.npy --out D/o.npy", "--block '-2' is not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024], *out, *err;
        /* Substitute the temp dir for D. */
        const char *a = cases[i].args;
        size_t k = 0;
        k += (size_t) snprintf(args, sizeof args, "apply ");
        for (; *a && k < sizeof args - 80; a++) {
            if (*a == 'D' && a[1] == '/')
                k += (size_t) snprintf(args + k, sizeof args - k, "%s", dir);
            else
                args[k++] = *a;
        }
        args[k] = '\0';
        int st = rbt_run_cli(args, &out, &err);
        cr_assert_eq(st, 2, "case %zu (%s): exit %d", i, args, st);
        cr_assert(strstr(err, cases[i].msg), "case %zu: stderr '%s' lacks '%s'", i, err,
                  cases[i].msg);
        free(out);
        free(err);
    }
}

/* float64 files stay float64 end to end (values beyond the float32 range included), and FP8 of a
 * row of denormals is finite (its per-row scale must not underflow). */
Test(cli_apply, float64_and_tiny_rows) {
    make_dir();
    char in[256], out[256], args[1024];
    path(in, "big.npy");
    path(out, "o.npy");
    double big[2 * 12];
    for (int i = 0; i < 24; i++) big[i] = (i % 3 - 1) * 1e300 + i;
    size_t shape[2] = {2, 12};
    cr_assert_eq(rb_npy_write(in, RB_NPY_F64, 2, shape, big), 0);
    snprintf(args, sizeof args, "hadamard --in %s --out %s", in, out);
    apply_ok(args);
    rb_npy_array a;
    cr_assert_eq(rb_npy_read(out, RB_NPY_F64, RB_NPY_CHECK_FINITE, &a), 0, "%s", rb_error_detail());
    cr_assert_str_eq(a.descr, "<f8");
    double want[24];
    memcpy(want, big, sizeof want);
    rb_hadamard_f64(want, 12, 2, 12, RB_FORWARD);
    cr_assert_eq(memcmp(a.data, want, sizeof want), 0);
    rb_npy_free(&a);

    float tiny[16];
    for (int i = 0; i < 16; i++) tiny[i] = (i % 2 ? 1 : -1) * 1e-45f * (float) (i + 1);
    size_t s1[2] = {1, 16};
    path(in, "tiny.npy");
    cr_assert_eq(rb_npy_write(in, RB_NPY_F32, 2, s1, tiny), 0);
    for (int f = 0; f < 2; f++) {
        snprintf(args, sizeof args, "quantize --format %s --in %s --out %s", f ? "e5m2" : "e4m3",
                 in, out);
        apply_ok(args);
        float *y = read_output("o.npy", 16);
        for (int i = 0; i < 16; i++) cr_assert(isfinite(y[i]), "element %d", i);
        free(y);
    }
}
