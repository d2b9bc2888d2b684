/* GPU transforms (fwht, hadamard, rht, hadamard_block) against their CPU twins, bit for bit. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "kernels/rotate.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

/* The CPU twin of a transform on a whole buffer (gaps included, which it must leave alone). */
typedef int (*cpu_fn)(float *buf, size_t count, size_t stride, const void *arg);
/* The GPU call on a device buffer of dtype t. */
typedef int (*gpu_fn)(const rb_cuda_ops *cu, void *buf, rb_dtype t, size_t count, size_t stride,
                      const void *arg);

/* The stream the GPU wrappers below launch on (NULL: the default stream), and an offset in
 * elements of the rows from the start of the device allocation (1: a base pointer that is not
 * 16-byte aligned). Set by the tests that need them, reset after. */
static void *g_stream;
static size_t g_off;

/* Runs one transform on `count` rows of n at stride `stride` (the whole buffer of count * stride
 * elements is random, so the gaps are their own sentinels) in dtype t and compares every element
 * of the buffer, gaps included, bit for bit with the CPU twin on the widened buffer, rounded to t
 * once at the end. With g_off > 0 the rows start g_off elements into the allocation and the
 * elements before them must stay untouched too. */
static void check_transform(const rb_cuda_ops *cu, const char *what, size_t n, size_t count,
                            size_t stride, rb_dtype t, uint64_t seed, uint64_t sid, cpu_fn cpu,
                            gpu_fn gpu, const void *arg) {
    size_t off = g_off, len = count * stride + off, es = rb_dtype_size(t);
    float *x = rbt_normal_f32(len, seed, sid);
    float *want = malloc(len * 4);
    cr_assert(want);
    char *d = rbt_cu_upload_dtype(cu, x, len, t, want);
    int rc = cpu(want + off, count, stride, arg);
    cr_assert_eq(rc, RB_OK, "%s: the CPU twin failed: %s", what, rb_error_detail());
    for (size_t i = 0; i < len; i++) want[i] = rbt_dtype_round(want[i], t);
    rc = gpu(cu, d + off * es, t, count, stride, arg);
    cr_assert_eq(rc, RB_OK, "%s n %zu count %zu stride %zu %s: %s: %s", what, n, count, stride,
                 rb_dtype_name(t), rb_errname(rc), rb_error_detail());
    if (g_stream) RBT_CU_OK(cu->stream_sync(g_stream));
    float *got = rbt_cu_download_dtype(cu, d, len, t);
    size_t i = rbt_first_diff(got, want, len, 4);
    if (i != SIZE_MAX) {
        size_t j = i < off ? 0 : i - off;
        cr_assert_fail("%s n %zu count %zu stride %zu offset %zu %s%s: element %zu (row %zu col "
                       "%zu%s) is %a, want %a (seed %llu)",
                       what, n, count, stride, off, rb_dtype_name(t),
                       g_stream ? " on a created stream" : "", j, j / stride, j % stride,
                       i < off || j % stride >= n ? ", outside the rows: must stay untouched" : "",
                       (double) got[i], (double) want[i], (unsigned long long) seed);
    }
    RBT_FREE(got, x, want);
    rbt_cu_free(cu, d);
}

/* ---- fwht ---- */

typedef struct {
    size_t n;
    float scale;
} fwht_arg;

static int fwht_cpu(float *buf, size_t count, size_t stride, const void *arg) {
    const fwht_arg *a = arg;
    return rb_fwht_f32_ref(buf, a->n, count, stride, a->scale);
}

static int fwht_gpu(const rb_cuda_ops *cu, void *buf, rb_dtype t, size_t count, size_t stride,
                    const void *arg) {
    RBT_NEED(cu, fwht);
    const fwht_arg *a = arg;
    return cu->fwht(buf, t, a->n, count, stride, a->scale, g_stream);
}

/* Every n = 2^k of the one-kernel range, counts 1, 3, 7, 64 (fewer rows for large n to bound
 * the CPU reference), strides n, n + 8 and n + 1 (unaligned rows), scales 1 and 1/sqrt(n). */
static void fwht_sweep(rb_dtype t, int kmin, int kmax) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    static const size_t counts[] = {1, 3, 7, 64};
    uint64_t sid = 0;
    for (int k = kmin; k <= kmax; k++) {
        size_t n = (size_t) 1 << k;
        for (size_t ci = 0; ci < 4; ci++) {
            size_t count = counts[ci];
            if (count > 1 && count * n > ((size_t) 1 << 18)) continue;
            size_t strides[3] = {n, n + 8, n + 1};
            for (size_t si = 0; si < 3; si++)
                for (int sc = 0; sc < 2; sc++) {
                    fwht_arg a = {n, sc ? (float) (1.0 / sqrt((double) n)) : 1.0f};
                    check_transform(cu, sc ? "fwht (scaled)" : "fwht", n, count, strides[si], t,
                                    seed, sid++, fwht_cpu, fwht_gpu, &a);
                }
        }
    }
}

Test(cuda_fwht, f32_small_n_equals_cpu_bits) {
    fwht_sweep(RB_DT_F32, 0, 10);
}
Test(cuda_fwht, f32_large_n_equals_cpu_bits, .timeout = 60) {
    fwht_sweep(RB_DT_F32, 11, 15);
}
Test(cuda_fwht, f16_equals_cpu_rounded_once, .timeout = 60) {
    fwht_sweep(RB_DT_F16, 0, 15);
}
Test(cuda_fwht, bf16_equals_cpu_rounded_once, .timeout = 60) {
    fwht_sweep(RB_DT_BF16, 0, 15);
}

/* Beyond one kernel (passes over the backend's scratch): 2^16, 2^17, 2^20. */
Test(cuda_fwht, multipass_equals_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    static const int ks[] = {16, 17, 20};
    uint64_t sid = 100;
    for (size_t ki = 0; ki < 3; ki++) {
        size_t n = (size_t) 1 << ks[ki];
        size_t count = ks[ki] == 20 ? 2 : 3;
        size_t strides[2] = {n, n + 1};
        for (size_t si = 0; si < 2; si++)
            for (int t = RB_DT_F32; t <= RB_DT_BF16; t++) {
                /* f16 without the scale would reach ~sqrt(n) * 4: still finite. */
                fwht_arg a = {n,
                              t == RB_DT_F32 && si == 0 ? 1.0f : (float) (1.0 / sqrt((double) n))};
                if (t != RB_DT_F32 && ks[ki] == 20 && si == 1) continue;
                check_transform(cu, "fwht multipass", n, t == RB_DT_F32 ? count : 1, strides[si],
                                (rb_dtype) t, seed, sid++, fwht_cpu, fwht_gpu, &a);
            }
    }
    /* One unscaled f32 run of the biggest size as well. */
    fwht_arg a = {(size_t) 1 << 17, 1.0f};
    check_transform(cu, "fwht multipass", a.n, 2, a.n + 8, RB_DT_F32, seed, sid++, fwht_cpu,
                    fwht_gpu, &a);
}

Test(cuda_fwht, fwht_bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, fwht);
    float *d = rbt_cu_alloc(cu, 4096 * 4);
    float host[4096] = {0};
    static const size_t bad_n[] = {0, 3, 12, 100, 1000};
    for (size_t i = 0; i < 5; i++) {
        int want = rb_fwht_f32(host, bad_n[i], 1, 1024, RB_NORM_NONE, RB_ORDER_NATURAL);
        int got = cu->fwht(d, RB_DT_F32, bad_n[i], 1, 1024, 1.0f, NULL);
        cr_assert_eq(want, RB_ESIZE);
        cr_assert_eq(got, want, "fwht n = %zu: got %s, want %s", bad_n[i], rb_errname(got),
                     rb_errname(want));
        cr_assert_neq(rb_error_detail()[0], '\0');
    }
    /* A short stride with more than one row. */
    int want = rb_fwht_f32(host, 64, 2, 32, RB_NORM_NONE, RB_ORDER_NATURAL);
    int got = cu->fwht(d, RB_DT_F32, 64, 2, 32, 1.0f, NULL);
    cr_assert_eq(got, want, "fwht short stride: got %s, want %s", rb_errname(got),
                 rb_errname(want));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    /* And a good call after the errors still works. */
    RBT_CU_OK(cu->fwht(d, RB_DT_F32, 1024, 4, 1024, 1.0f, NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_free(cu, d);
}

/* ---- hadamard ---- */

typedef struct {
    size_t n;
    rb_dir dir;
} had_arg;

static int had_cpu(float *buf, size_t count, size_t stride, const void *arg) {
    const had_arg *a = arg;
    return rb_hadamard_f32(buf, a->n, count, stride, a->dir);
}

static int had_gpu(const rb_cuda_ops *cu, void *buf, rb_dtype t, size_t count, size_t stride,
                   const void *arg) {
    RBT_NEED(cu, hadamard);
    const had_arg *a = arg;
    return cu->hadamard(buf, t, a->n, count, stride, a->dir, g_stream);
}

/* Every K with a table times 2^0, 2^3, 2^7 and one size in 4096..16383 (QuaRot's 11008 =
 * 172 * 64 and 14336 = 28 * 512 among them), both directions, 1 and 5 rows. */
Test(cuda_hadamard, every_k_equals_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    uint64_t sid = 0;
    for (size_t ki = 0; ki < RB_HADAMARD_NK; ki++) {
        size_t K = rb_hadamard_ks[ki];
        size_t mbig = 0;
        while ((K << mbig) < 4096) mbig++;
        size_t ms[4] = {0, 3, 7, mbig};
        for (size_t mi = 0; mi < 4; mi++) {
            size_t n = K << ms[mi];
            for (int dir = 0; dir < 2; dir++)
                for (size_t count = 1; count <= 5; count += 4) {
                    had_arg a = {n, (rb_dir) dir};
                    size_t stride = count == 1 ? n : n + 3;
                    check_transform(cu, dir ? "hadamard inverse" : "hadamard forward", n, count,
                                    stride, RB_DT_F32, seed, sid++, had_cpu, had_gpu, &a);
                }
        }
    }
    static const size_t quarot[] = {11008, 14336, 1, 2, 1024};
    for (size_t i = 0; i < 5; i++)
        for (int dir = 0; dir < 2; dir++) {
            had_arg a = {quarot[i], (rb_dir) dir};
            check_transform(cu, "hadamard", quarot[i], 3, quarot[i] + 1, RB_DT_F32, seed, sid++,
                            had_cpu, had_gpu, &a);
        }
}

Test(cuda_hadamard, half_dtypes_equal_cpu_rounded_once) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {12, 172 * 8, 28 * 512, 4096};
    uint64_t sid = 0;
    for (int t = RB_DT_F16; t <= RB_DT_BF16; t++)
        for (size_t i = 0; i < 4; i++)
            for (int dir = 0; dir < 2; dir++) {
                had_arg a = {ns[i], (rb_dir) dir};
                check_transform(cu, "hadamard", ns[i], 3, ns[i] + 2, (rb_dtype) t, seed, sid++,
                                had_cpu, had_gpu, &a);
            }
}

Test(cuda_hadamard, bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, hadamard);
    float *d = rbt_cu_alloc(cu, 4096 * 4);
    float host[4096] = {0};
    static const size_t bad_n[] = {0, 100, 3, 172 * 3, 4095};
    for (size_t i = 0; i < 5; i++) {
        int want = rb_hadamard_f32(host, bad_n[i], 1, bad_n[i], RB_FORWARD);
        int got = cu->hadamard(d, RB_DT_F32, bad_n[i], 1, bad_n[i], RB_FORWARD, NULL);
        cr_assert_eq(want, RB_ESIZE);
        cr_assert_eq(got, want, "hadamard n = %zu: got %s, want %s", bad_n[i], rb_errname(got),
                     rb_errname(want));
    }
    int want = rb_hadamard_f32(host, 96, 2, 95, RB_FORWARD);
    int got = cu->hadamard(d, RB_DT_F32, 96, 2, 95, RB_FORWARD, NULL);
    cr_assert_eq(got, want, "hadamard short stride: got %s, want %s", rb_errname(got),
                 rb_errname(want));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, d);
}

/* ---- rht ---- */

typedef struct {
    size_t n;
    const float *d1, *d2;   /* host signs, for the CPU */
    const float *dd1, *dd2; /* device signs */
    rb_dir dir;
} rht_arg;

static int rht_cpu(float *buf, size_t count, size_t stride, const void *arg) {
    const rht_arg *a = arg;
    return rb_rht_f32(buf, a->n, count, stride, a->d1, a->d2, a->dir);
}

static int rht_gpu(const rb_cuda_ops *cu, void *buf, rb_dtype t, size_t count, size_t stride,
                   const void *arg) {
    RBT_NEED(cu, rht);
    const rht_arg *a = arg;
    return cu->rht(buf, t, a->n, count, stride, a->dd1, a->dd2, a->dir, g_stream);
}

Test(cuda_rht, one_and_two_blocks_equal_cpu_bits) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 256, 12 * 64, 11008};
    uint64_t sid = 0;
    for (size_t i = 0; i < 4; i++) {
        size_t n = ns[i];
        float *d1 = malloc(n * 4), *d2 = malloc(n * 4);
        rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, n, d1);
        rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, n, d2);
        /* Signs uploaded, and signs drawn on the device: the same signs, so the same bits. */
        float *up1 = rbt_cu_upload(cu, d1, n * 4), *up2 = rbt_cu_upload(cu, d2, n * 4);
        float *dv1 = rbt_cu_alloc(cu, n * 4), *dv2 = rbt_cu_alloc(cu, n * 4);
        RBT_CU_OK(cu->rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, n, dv1, NULL));
        RBT_CU_OK(cu->rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, n, dv2, NULL));
        for (int src = 0; src < 2; src++)
            for (int blocks = 1; blocks <= 2; blocks++)
                for (int dir = 0; dir < 2; dir++)
                    for (int t = RB_DT_F32; t <= RB_DT_BF16; t++) {
                        if (t != RB_DT_F32 && (src || n > 1024)) continue;
                        rht_arg a = {n,
                                     d1,
                                     blocks == 2 ? d2 : NULL,
                                     src ? dv1 : up1,
                                     blocks == 2 ? (src ? dv2 : up2) : NULL,
                                     (rb_dir) dir};
                        check_transform(cu, src ? "rht (device signs)" : "rht", n, 3, n + 5,
                                        (rb_dtype) t, seed, sid++, rht_cpu, rht_gpu, &a);
                    }
        RBT_CU_FREE(cu, up1, up2, dv1, dv2);
        free(d1);
        free(d2);
    }
}

Test(cuda_rht, forward_then_inverse_returns_the_input) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {64, 12 * 64, 14336};
    for (size_t i = 0; i < 3; i++)
        for (int blocks = 1; blocks <= 2; blocks++) {
            size_t n = ns[i], count = 4, len = count * n;
            float *x = rbt_normal_f32(len, seed, 10 + i);
            float *dd1 = rbt_cu_alloc(cu, n * 4), *dd2 = rbt_cu_alloc(cu, n * 4);
            RBT_CU_OK(cu->rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, n, dd1, NULL));
            RBT_CU_OK(cu->rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, n, dd2, NULL));
            float *d = rbt_cu_upload(cu, x, len * 4);
            float *p2 = blocks == 2 ? dd2 : NULL;
            RBT_CU_OK(cu->rht(d, RB_DT_F32, n, count, n, dd1, p2, RB_FORWARD, NULL));
            float *mid = rbt_cu_download(cu, d, len * 4);
            /* The forward transform must actually have changed the rows. */
            cr_assert(rbt_normwise_relerr_f32(mid, x, len) > 0.1, "rht forward left x unchanged");
            RBT_CU_OK(cu->rht(d, RB_DT_F32, n, count, n, dd1, p2, RB_INVERSE, NULL));
            float *y = rbt_cu_download(cu, d, len * 4);
            double e = rbt_normwise_relerr_f32(y, x, len);
            cr_assert(e < 1e-6, "rht n %zu blocks %d: round trip error %g (seed %llu)", n, blocks,
                      e, (unsigned long long) seed);
            RBT_FREE(x, mid, y);
            RBT_CU_FREE(cu, d, dd1, dd2);
        }
}

Test(cuda_rht, bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht);
    float host[256] = {0}, signs[256];
    for (size_t i = 0; i < 256; i++) signs[i] = 1;
    float *d = rbt_cu_alloc(cu, 256 * 4), *dd1 = rbt_cu_upload(cu, signs, sizeof signs);
    int want = rb_rht_f32(host, 100, 1, 100, signs, NULL, RB_FORWARD);
    int got = cu->rht(d, RB_DT_F32, 100, 1, 100, dd1, NULL, RB_FORWARD, NULL);
    cr_assert_eq(got, want, "rht n = 100: got %s, want %s", rb_errname(got), rb_errname(want));
    want = rb_rht_f32(host, 64, 1, 64, NULL, NULL, RB_FORWARD);
    got = cu->rht(d, RB_DT_F32, 64, 1, 64, NULL, NULL, RB_FORWARD, NULL);
    cr_assert_eq(got, want, "rht d1 = NULL: got %s, want %s", rb_errname(got), rb_errname(want));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, d);
    rbt_cu_free(cu, dd1);
}

/* ---- hadamard_block ---- */

typedef struct {
    size_t n, b;
    rb_dir dir;
} blk_arg;

static int blk_cpu(float *buf, size_t count, size_t stride, const void *arg) {
    const blk_arg *a = arg;
    return rb_hadamard_block_f32(buf, a->n, count, stride, a->b, a->dir);
}

static int blk_gpu(const rb_cuda_ops *cu, void *buf, rb_dtype t, size_t count, size_t stride,
                   const void *arg) {
    RBT_NEED(cu, hadamard_block);
    const blk_arg *a = arg;
    return cu->hadamard_block(buf, t, a->n, count, stride, a->b, a->dir, g_stream);
}

Test(cuda_hadamard_block, equals_cpu_bits) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    static const size_t bs[] = {2, 4, 16, 128, 12, 112, 172};
    static const size_t mult[] = {1, 3, 8};
    uint64_t sid = 0;
    for (size_t bi = 0; bi < 7; bi++)
        for (size_t mi = 0; mi < 3; mi++)
            for (int dir = 0; dir < 2; dir++)
                for (int t = RB_DT_F32; t <= RB_DT_BF16; t++) {
                    size_t n = bs[bi] * mult[mi];
                    if (t != RB_DT_F32 && mi != 2) continue;
                    blk_arg a = {n, bs[bi], (rb_dir) dir};
                    check_transform(cu, "hadamard_block", n, 1, n, (rb_dtype) t, seed, sid++,
                                    blk_cpu, blk_gpu, &a);
                    check_transform(cu, "hadamard_block", n, 5, n, (rb_dtype) t, seed, sid++,
                                    blk_cpu, blk_gpu, &a);
                    check_transform(cu, "hadamard_block", n, 5, n + 3, (rb_dtype) t, seed, sid++,
                                    blk_cpu, blk_gpu, &a);
                }
}

Test(cuda_hadamard_block, bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, hadamard_block);
    float host[512] = {0};
    float *d = rbt_cu_alloc(cu, sizeof host);
    /* b not dividing n, b > n, b = 1, b unsupported. */
    static const size_t cases[][2] = {{96, 64}, {64, 128}, {64, 1}, {200, 100}, {64, 0}};
    for (size_t i = 0; i < 5; i++) {
        size_t n = cases[i][0], b = cases[i][1];
        int want = rb_hadamard_block_f32(host, n, 1, n, b, RB_FORWARD);
        int got = cu->hadamard_block(d, RB_DT_F32, n, 1, n, b, RB_FORWARD, NULL);
        cr_assert_neq(want, RB_OK);
        cr_assert_eq(got, want, "hadamard_block n %zu b %zu: got %s, want %s", n, b,
                     rb_errname(got), rb_errname(want));
    }
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, d);
}

/* ---- all four transforms: edges of the launch configuration ---- */

/* Runs every transform once in every dtype at the current g_stream / g_off. */
static void all_transforms(const rb_cuda_ops *cu, uint64_t seed, size_t n_pow2, size_t n_k,
                           size_t count, size_t stride_pad) {
    float *d1 = malloc(n_k * 4), *d2 = malloc(n_k * 4);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, n_k, d1);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, n_k, d2);
    float *dd1 = rbt_cu_upload(cu, d1, n_k * 4), *dd2 = rbt_cu_upload(cu, d2, n_k * 4);
    uint64_t sid = 500;
    for (int t = RB_DT_F32; t <= RB_DT_BF16; t++) {
        fwht_arg fa = {n_pow2, (float) (1.0 / sqrt((double) n_pow2))};
        check_transform(cu, "fwht", n_pow2, count, n_pow2 + stride_pad, (rb_dtype) t, seed, sid++,
                        fwht_cpu, fwht_gpu, &fa);
        had_arg ha = {n_k, RB_INVERSE};
        check_transform(cu, "hadamard", n_k, count, n_k + stride_pad, (rb_dtype) t, seed, sid++,
                        had_cpu, had_gpu, &ha);
        rht_arg ra = {n_k, d1, d2, dd1, dd2, RB_FORWARD};
        check_transform(cu, "rht", n_k, count, n_k + stride_pad, (rb_dtype) t, seed, sid++, rht_cpu,
                        rht_gpu, &ra);
        blk_arg ba = {n_k, 12, RB_FORWARD};
        check_transform(cu, "hadamard_block", n_k, count, n_k + stride_pad, (rb_dtype) t, seed,
                        sid++, blk_cpu, blk_gpu, &ba);
    }
    rbt_cu_free(cu, dd1);
    rbt_cu_free(cu, dd2);
    free(d1);
    free(d2);
}

/* Row 0 one element past a 16-byte boundary (the strides keep every row unaligned as well):
 * vectorized loads must not assume an aligned base pointer. */
Test(cuda_transforms, unaligned_base_pointers_equal_cpu_bits) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    g_off = 1;
    all_transforms(cu, seed, 1024, 12 * 64, 3, 0);
    all_transforms(cu, seed, 4096, 12 * 256, 2, 1);
    g_off = 3;
    all_transforms(cu, seed, 256, 24, 5, 0);
    g_off = 0;
}

/* More rows than a grid's y or z dimension holds (65535): the row index must not live there. */
Test(cuda_transforms, many_rows_equal_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    fwht_arg a1 = {1, 1.0f}, a2 = {2, 1.0f}, a16 = {16, 0.25f};
    check_transform(cu, "fwht", 1, 70001, 1, RB_DT_F32, seed, 1, fwht_cpu, fwht_gpu, &a1);
    check_transform(cu, "fwht", 2, 200003, 2, RB_DT_F32, seed, 2, fwht_cpu, fwht_gpu, &a2);
    check_transform(cu, "fwht", 16, 70001, 17, RB_DT_F16, seed, 3, fwht_cpu, fwht_gpu, &a16);
    all_transforms(cu, seed, 8, 12, 70001, 0);
}

Test(cuda_transforms, run_on_a_created_stream) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    RBT_CU_OK(cu->stream_create(&g_stream));
    all_transforms(cu, seed, 1 << 12, 12 * 64, 3, 1);
    fwht_arg big = {(size_t) 1 << 17, 1.0f}; /* the multi-pass path and its scratch */
    check_transform(cu, "fwht multipass", big.n, 2, big.n, RB_DT_F32, seed, 9, fwht_cpu, fwht_gpu,
                    &big);
    RBT_CU_OK(cu->stream_destroy(g_stream));
    g_stream = NULL;
}

/* count = 0 is a no-op that returns the CPU's status (RB_OK), not a launch of zero blocks (an
 * invalid configuration), and count = 1 takes any stride. */
Test(cuda_transforms, zero_rows_and_any_stride_for_one_row) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, fwht);
    RBT_NEED(cu, hadamard);
    RBT_NEED(cu, rht);
    RBT_NEED(cu, hadamard_block);
    float host[96] = {0}, signs[96];
    for (size_t i = 0; i < 96; i++) signs[i] = 1;
    float *d = rbt_cu_alloc(cu, sizeof host), *dd = rbt_cu_upload(cu, signs, sizeof signs);
    for (int t = RB_DT_F32; t <= RB_DT_BF16; t++) {
        RBT_CU_OK(cu->fwht(d, (rb_dtype) t, 64, 0, 0, 1.0f, NULL));
        RBT_CU_OK(cu->hadamard(d, (rb_dtype) t, 96, 0, 0, RB_FORWARD, NULL));
        RBT_CU_OK(cu->rht(d, (rb_dtype) t, 96, 0, 0, dd, dd, RB_FORWARD, NULL));
        RBT_CU_OK(cu->hadamard_block(d, (rb_dtype) t, 96, 0, 0, 12, RB_FORWARD, NULL));
    }
    RBT_CU_OK(cu->stream_sync(NULL));
    /* Nothing was written: the poison is intact. */
    uint32_t *h = rbt_cu_download(cu, d, sizeof host);
    for (size_t i = 0; i < 96; i++) cr_assert_eq(h[i], 0xFFFFFFFFu, "element %zu written", i);
    free(h);
    /* One row with a stride smaller than n (ignored, as on the CPU). */
    cr_assert_eq(rb_fwht_f32(host, 64, 1, 3, RB_NORM_NONE, RB_ORDER_NATURAL), RB_OK);
    RBT_CU_OK(cu->fwht(d, RB_DT_F32, 64, 1, 3, 1.0f, NULL));
    RBT_CU_OK(cu->hadamard(d, RB_DT_F32, 96, 1, 0, RB_FORWARD, NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_free(cu, d);
    rbt_cu_free(cu, dd);
}

/* f16 results beyond 65504 round to Inf once on store, like the CPU result rounded to f16; and a
 * scale that is neither 1 nor 1/sqrt(n). */
Test(cuda_fwht, f16_overflow_and_other_scales) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    /* |x| ~ 2^12 * N(0,1): sums of 64 of them pass 65504 now and then. */
    size_t n = 64, count = 40, len = n * count;
    float *x = rbt_normal_f32(len, seed, 77);
    for (size_t i = 0; i < len; i++) x[i] *= 4096.0f;
    float *want = malloc(len * 4);
    void *d = rbt_cu_upload_dtype(cu, x, len, RB_DT_F16, want);
    rb_fwht_f32_ref(want, n, count, n, 1.0f);
    size_t infs = 0;
    for (size_t i = 0; i < len; i++) {
        want[i] = rb_f16_round(want[i]);
        infs += isinf(want[i]) != 0;
    }
    cr_assert(infs > 0, "the test input overflows nothing (seed %llu)", (unsigned long long) seed);
    RBT_NEED(cu, fwht);
    RBT_CU_OK(cu->fwht(d, RB_DT_F16, n, count, n, 1.0f, NULL));
    float *got = rbt_cu_download_dtype(cu, d, len, RB_DT_F16);
    RBT_ASSERT_F32_BITS(got, want, len, seed, "fwht f16 with overflow");
    RBT_FREE(got, want, x);
    rbt_cu_free(cu, d);
    static const float scales[] = {0.3f, -2.0f, 1e-3f};
    for (size_t i = 0; i < 3; i++) {
        fwht_arg a = {1024, scales[i]};
        check_transform(cu, "fwht (other scale)", 1024, 3, 1025, RB_DT_F32, seed, 80 + i, fwht_cpu,
                        fwht_gpu, &a);
        check_transform(cu, "fwht (other scale)", 1024, 3, 1024, RB_DT_BF16, seed, 90 + i, fwht_cpu,
                        fwht_gpu, &a);
    }
}

/* Sizes past one kernel for the K > 1 transforms too (n = K 2^m with m up to 15), and a longer
 * FWHT (2^22: more passes over the scratch). */
Test(cuda_transforms, large_n_equal_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {12 << 14, 28 << 15, 172 << 10};
    for (size_t i = 0; i < 3; i++)
        for (int t = RB_DT_F32; t <= (i ? RB_DT_F32 : RB_DT_F16); t++) {
            had_arg a = {ns[i], i == 1 ? RB_INVERSE : RB_FORWARD};
            check_transform(cu, "hadamard (large n)", ns[i], i ? 1 : 2, ns[i] + 1, (rb_dtype) t,
                            seed, 600 + i, had_cpu, had_gpu, &a);
        }
    size_t n = 12 << 14;
    float *d1 = malloc(n * 4), *d2 = malloc(n * 4);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, n, d1);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, n, d2);
    float *dd1 = rbt_cu_upload(cu, d1, n * 4), *dd2 = rbt_cu_upload(cu, d2, n * 4);
    rht_arg ra = {n, d1, d2, dd1, dd2, RB_INVERSE};
    check_transform(cu, "rht (large n)", n, 2, n, RB_DT_F32, seed, 610, rht_cpu, rht_gpu, &ra);
    blk_arg ba = {n, (size_t) 12 << 12, RB_FORWARD};
    check_transform(cu, "hadamard_block (large b)", n, 2, n + 3, RB_DT_F32, seed, 611, blk_cpu,
                    blk_gpu, &ba);
    rbt_cu_free(cu, dd1);
    rbt_cu_free(cu, dd2);
    free(d1);
    free(d2);
    fwht_arg fa = {(size_t) 1 << 22, 1.0f / 2048.0f};
    check_transform(cu, "fwht (2^22)", fa.n, 1, fa.n, RB_DT_F32, seed, 612, fwht_cpu, fwht_gpu,
                    &fa);
}

/* Two multi-pass transforms in flight at once on two created streams (the backend's scratch for
 * n > 2^15 must not be shared between them unsafely), each applied three times, against the CPU
 * applying it three times. */
Test(cuda_transforms, concurrent_streams_do_not_share_scratch, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, fwht);
    RBT_NEED(cu, hadamard);
    uint64_t seed = rbt_seed();
    void *s1 = NULL, *s2 = NULL;
    RBT_CU_OK(cu->stream_create(&s1));
    RBT_CU_OK(cu->stream_create(&s2));
    size_t na = (size_t) 1 << 17, nb = (size_t) 1 << 16, nh = (size_t) 12 << 13, count = 2;
    float *xa = rbt_normal_f32(na * count, seed, 700), *xb = rbt_normal_f32(nb * count, seed, 701);
    float *xh = rbt_normal_f32(nh * count, seed, 702);
    float *da = rbt_cu_upload(cu, xa, na * count * 4), *db = rbt_cu_upload(cu, xb, nb * count * 4);
    float *dh = rbt_cu_upload(cu, xh, nh * count * 4);
    float sa = (float) (1.0 / sqrt((double) na)), sb = 0.25f;
    for (int round = 0; round < 3; round++) {
        RBT_CU_OK(cu->fwht(da, RB_DT_F32, na, count, na, sa, s1));
        RBT_CU_OK(cu->fwht(db, RB_DT_F32, nb, count, nb, sb, s2));
        RBT_CU_OK(cu->hadamard(dh, RB_DT_F32, nh, count, nh, RB_FORWARD, round % 2 ? s1 : s2));
        /* The next round runs dh on the other stream: nothing orders two streams, so wait here
         * (the fwhts on both streams still overlap it). */
        RBT_CU_OK(cu->stream_sync(round % 2 ? s1 : s2));
        rb_fwht_f32_ref(xa, na, count, na, sa);
        rb_fwht_f32_ref(xb, nb, count, nb, sb);
        cr_assert_eq(rb_hadamard_f32(xh, nh, count, nh, RB_FORWARD), RB_OK);
    }
    RBT_CU_OK(cu->stream_sync(s1));
    RBT_CU_OK(cu->stream_sync(s2));
    float *ga = rbt_cu_download(cu, da, na * count * 4),
          *gb = rbt_cu_download(cu, db, nb * count * 4);
    float *gh = rbt_cu_download(cu, dh, nh * count * 4);
    RBT_ASSERT_F32_BITS(ga, xa, na * count, seed, "fwht 2^17 on stream 1 beside stream 2");
    RBT_ASSERT_F32_BITS(gb, xb, nb * count, seed, "fwht 2^16 on stream 2 beside stream 1");
    RBT_ASSERT_F32_BITS(gh, xh, nh * count, seed, "hadamard 12 * 2^13 alternating streams");
    RBT_FREE(xa, xb, xh, ga, gb, gh);
    RBT_CU_FREE(cu, da, db, dh);
    RBT_CU_OK(cu->stream_destroy(s1));
    RBT_CU_OK(cu->stream_destroy(s2));
}
