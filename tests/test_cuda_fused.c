/* GPU fused kernels (KV INT4 encode/decode, RHT + codebook encode) against their CPU twins, bit
 * for bit: packed codes, (scale, zero) pairs, norms and decoded rows. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kv_quant.h"
#include "kernels/rotate.h"
#include "kernels/rowcodec.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

/* ---- kv_int4 ---- */

/* rows x d at `stride`: normal rows, with an all-zero row (mn = 0 and the 1e-8 scale floor), a
 * constant row and a row of large values among them. */
static float *kv_input(size_t rows, size_t d, size_t stride, uint64_t seed, uint64_t sid) {
    float *x = rbt_normal_f32(rows * stride, seed, sid);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            float *v = &x[r * stride + j];
            if (r % 5 == 1) *v = 0;
            if (r % 5 == 2) *v = -1.75f;
            if (r % 5 == 3) *v *= 300.0f;
        }
    return x;
}

static void kv_case(const rb_cuda_ops *cu, uint64_t seed, size_t d, size_t m, size_t rows,
                    unsigned flags, rb_dtype t) {
    size_t stride = rows == 1 ? d : d + 8, half = d / 2, ld = d + 5;
    float *x = kv_input(rows, d, stride, seed, d * 16 + m);
    float *wide = malloc(rows * stride * 4);
    void *dx = rbt_cu_upload_dtype(cu, x, rows * stride, t, wide);
    uint8_t *wp = malloc(rows * half);
    float *wsz = malloc(rows * 2 * 4);
    cr_assert_eq(rb_kv_int4_encode_f32_ref(wide, rows, d, stride, m, flags, wp, wsz), RB_OK);
    uint8_t *dp = rbt_cu_alloc(cu, rows * half);
    float *dsz = rbt_cu_alloc(cu, rows * 2 * 4);
    char what[160];
    snprintf(what, sizeof what, "kv_int4_encode d %zu m %zu rows %zu stride %zu %s%s", d, m, rows,
             stride, rb_dtype_name(t), flags & RB_KV_BF16 ? " bf16-rounded" : "");
    int rc = cu->kv_int4_encode(dx, t, rows, d, stride, m, flags, dp, dsz, NULL);
    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
    float *gsz = rbt_cu_download(cu, dsz, rows * 2 * 4);
    uint8_t *gp = rbt_cu_download(cu, dp, rows * half);
    RBT_ASSERT_F32_BITS(gsz, wsz, rows * 2, seed, "%s: sz (scale, zero) pairs", what);
    RBT_ASSERT_U8_EQ(gp, wp, rows * half, seed, "%s: packed codes", what);
    /* Decode the CPU's codes; columns past d stay untouched. */
    if (t == RB_DT_F32) {
        float *wy = malloc(rows * ld * 4);
        memset(wy, 0xFF, rows * ld * 4);
        cr_assert_eq(rb_kv_int4_decode_f32_ref(wp, wsz, rows, d, m, wy, ld), RB_OK);
        uint8_t *up = rbt_cu_upload(cu, wp, rows * half);
        float *usz = rbt_cu_upload(cu, wsz, rows * 2 * 4), *dy = rbt_cu_alloc(cu, rows * ld * 4);
        rc = cu->kv_int4_decode(up, usz, rows, d, m, dy, ld, NULL);
        cr_assert_eq(rc, RB_OK, "kv_int4_decode: %s: %s", rb_errname(rc), rb_error_detail());
        float *gy = rbt_cu_download(cu, dy, rows * ld * 4);
        RBT_ASSERT_F32_BITS(gy, wy, rows * ld, seed, "kv_int4_decode d %zu m %zu rows %zu ld %zu",
                            d, m, rows, ld);
        free(wy);
        free(gy);
        rbt_cu_free(cu, up);
        rbt_cu_free(cu, usz);
        rbt_cu_free(cu, dy);
    }
    free(x);
    free(wide);
    free(wp);
    free(wsz);
    free(gsz);
    free(gp);
    rbt_cu_free(cu, dx);
    rbt_cu_free(cu, dp);
    rbt_cu_free(cu, dsz);
}

static void kv_sweep(rb_dtype t) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kv_int4_encode);
    RBT_NEED(cu, kv_int4_decode);
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {2, 64, 128, 256, 4096};
    for (size_t di = 0; di < 5; di++) {
        size_t d = ds[di];
        size_t ms[4] = {1, 2, d / 4, d};
        for (size_t mi = 0; mi < 4; mi++) {
            size_t m = ms[mi];
            if (m == 0 || d % m || (mi > 0 && m == ms[mi - 1]) || (mi == 3 && m == ms[1])) continue;
            size_t rowss[3] = {1, 3, d > 256 ? 33 : 257};
            for (size_t ri = 0; ri < 3; ri++)
                for (unsigned flags = 0; flags <= RB_KV_BF16; flags++)
                    kv_case(cu, seed, d, m, rowss[ri], flags, t);
        }
    }
}

Test(cuda_kv_int4, f32_equals_cpu_bits, .timeout = 60) {
    kv_sweep(RB_DT_F32);
}
Test(cuda_kv_int4, f16_equals_cpu_on_widened_rows, .timeout = 60) {
    kv_sweep(RB_DT_F16);
}
Test(cuda_kv_int4, bf16_equals_cpu_on_widened_rows, .timeout = 60) {
    kv_sweep(RB_DT_BF16);
}

Test(cuda_kv_int4, bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kv_int4_encode);
    RBT_NEED(cu, kv_int4_decode);
    static float host[2 * 8192];
    static uint8_t hp[8192];
    static float hsz[4];
    float *dx = rbt_cu_alloc(cu, sizeof host), *dsz = rbt_cu_alloc(cu, sizeof hsz);
    uint8_t *dp = rbt_cu_alloc(cu, sizeof hp);
    /* d odd, too small, too large; m not a power of two, 0, not dividing d; short stride. */
    static const size_t cases[][3] = {{63, 1, 63}, {0, 1, 0},     {4098, 2, 4098}, {64, 3, 64},
                                      {64, 0, 64}, {64, 128, 64}, {12, 8, 12},     {64, 4, 63}};
    for (size_t i = 0; i < 8; i++) {
        size_t d = cases[i][0], m = cases[i][1], stride = cases[i][2];
        int want = rb_kv_int4_encode_f32(host, 2, d, stride, m, 0, hp, hsz);
        int got = cu->kv_int4_encode(dx, RB_DT_F32, 2, d, stride, m, 0, dp, dsz, NULL);
        cr_assert_neq(want, RB_OK);
        cr_assert_eq(got, want, "kv_int4_encode d %zu m %zu stride %zu: got %s, want %s", d, m,
                     stride, rb_errname(got), rb_errname(want));
        want = rb_kv_int4_decode_f32(hp, hsz, 2, d, m, host, stride);
        got = cu->kv_int4_decode(dp, dsz, 2, d, m, dx, stride, NULL);
        cr_assert_eq(got, want, "kv_int4_decode d %zu m %zu ld %zu: got %s, want %s", d, m, stride,
                     rb_errname(got), rb_errname(want));
    }
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, dx);
    rbt_cu_free(cu, dsz);
    rbt_cu_free(cu, dp);
}

/* ---- rht_codebook_encode ---- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

/* The contract in gpu.h written out with the CPU pieces (methods/turboquant.c's block path):
 * norms, double scaling, the RHT, the codebook index and the packing into rows of ldp bytes
 * (pre-filled with 0xFF like the device buffer, so bytes past a packed row must stay). */
static void rht_codebook_cpu(const float *x, size_t rows, size_t d, const float *d1,
                             const float *d2, const rb_codebook *cb, int bits, uint8_t *packed,
                             size_t ldp, float *norm) {
    double *nrm = malloc(rows * sizeof *nrm);
    float *u = malloc(rows * d * 4);
    uint8_t *idx = malloc(rows * d);
    rb_rows_sqnorm_f32_ref(x, NULL, rows, d, d, nrm);
    for (size_t r = 0; r < rows; r++) {
        double n = sqrt(nrm[r]);
        norm[r] = (float) n;
        nrm[r] = n > 0 ? 1.0 / n : 0.0;
    }
    rb_rows_scale_f64_f32_ref(x, rows, d, d, nrm, u, d);
    cr_assert_eq(rb_rht_f32(u, d, rows, d, d1, d2, RB_FORWARD), RB_OK, "%s", rb_error_detail());
    cr_assert_eq(rb_codebook_quant_f32_ref(cb, u, rows, d, d, idx), RB_OK);
    memset(packed, 0xFF, rows * ldp);
    cr_assert_eq(rb_pack_rows_ref(idx, rows, d, bits, packed, ldp), RB_OK);
    free(nrm);
    free(u);
    free(idx);
}

Test(cuda_rht_codebook, encode_equals_the_cpu_pipeline) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_encode);
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {64, 128, 256, 768, 1024};
    size_t rows = 7;
    for (size_t di = 0; di < 5; di++)
        for (int bits = 1; bits <= 4; bits++)
            for (int blocks = 1; blocks <= 2; blocks++)
                for (int short_cb = 0; short_cb <= (bits > 1); short_cb++) {
                    size_t d = ds[di], k = ((size_t) 1 << bits) - (size_t) short_cb;
                    size_t ldp = rb_pack_bytes(d, bits) + 4;
                    float *x = rbt_normal_f32(rows * d, seed, 300 + d);
                    for (size_t j = 0; j < d; j++) {
                        x[3 * d + j] = 0;       /* a zero row: norm 0, u = 0 */
                        x[5 * d + j] *= 1e-20f; /* tiny: the double scaling keeps it exact */
                        x[6 * d + j] *= 1e15f;  /* large */
                    }
                    float *c = rbt_normal_f32(k, seed, 400 + k);
                    for (size_t i = 0; i < k; i++) c[i] /= sqrtf((float) d);
                    qsort(c, k, 4, cmp_float);
                    rb_codebook cb;
                    cr_assert_eq(rb_codebook_init(&cb, c, k), RB_OK);
                    float *d1 = malloc(d * 4), *d2 = malloc(d * 4);
                    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, d, d1);
                    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, d, d2);
                    uint8_t *wp = malloc(rows * ldp);
                    float *wn = malloc(rows * 4);
                    rht_codebook_cpu(x, rows, d, d1, blocks == 2 ? d2 : NULL, &cb, bits, wp, ldp,
                                     wn);
                    float *dx = rbt_cu_upload(cu, x, rows * d * 4);
                    float *dd1 = rbt_cu_upload(cu, d1, d * 4), *dd2 = rbt_cu_upload(cu, d2, d * 4);
                    uint8_t *dp = rbt_cu_alloc(cu, rows * ldp);
                    float *dn = rbt_cu_alloc(cu, rows * 4);
                    int rc = cu->rht_codebook_encode(dx, rows, d, dd1, blocks == 2 ? dd2 : NULL,
                                                     &cb, bits, dp, ldp, dn, NULL);
                    char what[128];
                    snprintf(what, sizeof what, "rht_codebook_encode d %zu bits %d k %zu blocks %d",
                             d, bits, k, blocks);
                    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
                    float *gn = rbt_cu_download(cu, dn, rows * 4);
                    uint8_t *gp = rbt_cu_download(cu, dp, rows * ldp);
                    RBT_ASSERT_F32_BITS(gn, wn, rows, seed, "%s: norms", what);
                    RBT_ASSERT_U8_EQ(gp, wp, rows * ldp, seed,
                                     "%s: packed rows (stride %zu; bytes past a row untouched)",
                                     what, ldp);
                    free(x);
                    free(c);
                    free(d1);
                    free(d2);
                    free(wp);
                    free(wn);
                    free(gn);
                    free(gp);
                    rbt_cu_free(cu, dx);
                    rbt_cu_free(cu, dd1);
                    rbt_cu_free(cu, dd2);
                    rbt_cu_free(cu, dp);
                    rbt_cu_free(cu, dn);
                }
}

Test(cuda_rht_codebook, bad_arguments_are_errors) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_encode);
    float c[4] = {-1, -0.3f, 0.3f, 1};
    rb_codebook cb;
    cr_assert_eq(rb_codebook_init(&cb, c, 4), RB_OK);
    float ones[128];
    for (size_t i = 0; i < 128; i++) ones[i] = 1;
    float *dx = rbt_cu_alloc(cu, 4 * 128 * 4), *dd = rbt_cu_upload(cu, ones, sizeof ones);
    float *dn = rbt_cu_alloc(cu, 16);
    uint8_t *dp = rbt_cu_alloc(cu, 4 * 128);
    /* d = 100 has no Hadamard matrix: the RHT's code. */
    float host[100] = {0};
    int want = rb_rht_f32(host, 100, 1, 100, ones, NULL, RB_FORWARD);
    int got = cu->rht_codebook_encode(dx, 2, 100, dd, NULL, &cb, 2, dp, 100, dn, NULL);
    cr_assert_eq(want, RB_ESIZE);
    cr_assert_eq(got, want, "rht_codebook_encode d = 100: got %s", rb_errname(got));
    /* bits outside 1..8: the packing's code. */
    static const int bad_bits[] = {0, 9};
    for (size_t i = 0; i < 2; i++) {
        uint8_t codes[4] = {0}, out[8];
        want = rb_pack_rows(codes, 1, 4, bad_bits[i], out, 8);
        got = cu->rht_codebook_encode(dx, 2, 128, dd, NULL, &cb, bad_bits[i], dp, 128, dn, NULL);
        cr_assert_eq(got, want, "rht_codebook_encode bits %d: got %s, want %s", bad_bits[i],
                     rb_errname(got), rb_errname(want));
    }
    /* A packed row stride shorter than a packed row (128 codes of 2 bits = 32 bytes). */
    got = cu->rht_codebook_encode(dx, 2, 128, dd, NULL, &cb, 2, dp, 31, dn, NULL);
    cr_assert_eq(got, RB_EINVAL, "rht_codebook_encode ldp 31: got %s", rb_errname(got));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, dx);
    rbt_cu_free(cu, dd);
    rbt_cu_free(cu, dn);
    rbt_cu_free(cu, dp);
}
