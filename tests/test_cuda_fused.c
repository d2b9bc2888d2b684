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
#include "tests/cuda_kv_quotient.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

/* ---- kv_int4 ---- */

/* rows x d at `stride`: normal rows, with among them an all-zero row (mn = 0 and the 1e-8 scale
 * floor), a constant row, a row of large values and tiny values (the quotient's residuals
 * underflow). With `extremes`, also the rows that test the encode's quotient at the ends of the
 * float range (rb_kv_quotient, kernels/cuda/kv_quotient.cuh, and its fallback to the division):
 * a huge constant (at m = 1 the quotients overflow), values near 5e36 (scales near 2^123; with
 * fp16 pairs an infinite scale) and a large offset with a small spread (quotients near 2^21,
 * whose codes need their last bits). Not for f16 input: they do not fit. */
static float *kv_input(size_t rows, size_t d, size_t stride, uint64_t seed, uint64_t sid,
                       int extremes) {
    float *x = rbt_normal_f32(rows * stride, seed, sid);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            float *v = &x[r * stride + j];
            switch (extremes || r % 9 < 6 ? r % 9 : 0) {
            case 1:
                *v = 0;
                break;
            case 2:
                *v = -1.75f;
                break;
            case 3:
                *v *= 300.0f;
                break;
            case 5:
                *v *= 1e-36f;
                break;
            case 6:
                *v = 3e30f;
                break;
            case 7:
                *v = j % 2 ? 5e36f : -5e36f;
                break; /* at m = 4096 one output is 64 x this */
            case 8:
                *v = 1e20f + *v * 1e14f;
                break;
            default:
                break;
            }
        }
    return x;
}

/* One encode (any dtype) and, for f32, one decode of the CPU's codes, with every pointer `off`
 * elements past its allocation's start (bytes before and after must stay untouched) on `st`. */
static void kv_case_at(const rb_cuda_ops *cu, uint64_t seed, size_t d, size_t m, size_t rows,
                       unsigned flags, rb_dtype t, size_t off, void *st) {
    size_t stride = rows == 1 ? d : d + 8, half = d / 2, ld = d + 5 + off;
    size_t nx = rows * stride + off, np = rows * half + off, nsz = rows * 2 + off;
    const int extremes = t != RB_DT_F16;
    float *x = kv_input(rows, d, stride, seed, d * 16 + m, extremes);
    x = realloc(x, nx * 4);
    memmove(x + off, x, rows * stride * 4);
    for (size_t i = 0; i < off; i++) x[i] = 1e30f; /* would change the first row's range */
    float *wide = malloc(nx * 4);
    char *dx = rbt_cu_upload_dtype(cu, x, nx, t, wide);
    uint8_t *wp = malloc(np);
    float *wsz = malloc(nsz * 4);
    memset(wp, 0xFF, np);
    memset(wsz, 0xFF, nsz * 4);
    cr_assert_eq(
        rb_kv_int4_encode_f32_ref(wide + off, rows, d, stride, m, flags, wp + off, wsz + off),
        RB_OK);
    uint8_t *dp = rbt_cu_alloc(cu, np);
    float *dsz = rbt_cu_alloc(cu, nsz * 4);
    char what[200];
    snprintf(what, sizeof what, "kv_int4_encode d %zu m %zu rows %zu stride %zu %s%s%s off %zu%s",
             d, m, rows, stride, rb_dtype_name(t), flags & RB_KV_BF16 ? " bf16-rounded" : "",
             flags & RB_KV_SZ_F16 ? " fp16-pair" : "", off, st ? " (created stream)" : "");
    int rc = cu->kv_int4_encode(dx + off * rb_dtype_size(t), t, rows, d, stride, m, flags, dp + off,
                                dsz + off, st);
    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
    if (st) RBT_CU_OK(cu->stream_sync(st));
    float *gsz = rbt_cu_download(cu, dsz, nsz * 4);
    uint8_t *gp = rbt_cu_download(cu, dp, np);
    RBT_ASSERT_F32_BITS(gsz, wsz, nsz, seed, "%s: sz (scale, zero) pairs", what);
    RBT_ASSERT_U8_EQ(gp, wp, np, seed, "%s: packed codes", what);
    /* Decode the CPU's codes; columns past d stay untouched. Not the extreme rows with fp16
     * pairs: their scale is inf, and 0 * inf is a NaN whose sign x86 and the GPU write
     * differently. */
    if (t == RB_DT_F32 && !(extremes && (flags & RB_KV_SZ_F16))) {
        size_t ny = rows * ld + off;
        float *wy = malloc(ny * 4);
        memset(wy, 0xFF, ny * 4);
        cr_assert_eq(rb_kv_int4_decode_f32_ref(wp + off, wsz + off, rows, d, m, wy + off, ld),
                     RB_OK);
        uint8_t *up = rbt_cu_upload(cu, wp, np);
        float *usz = rbt_cu_upload(cu, wsz, nsz * 4), *dy = rbt_cu_alloc(cu, ny * 4);
        rc = cu->kv_int4_decode(up + off, usz + off, rows, d, m, dy + off, ld, st);
        cr_assert_eq(rc, RB_OK, "kv_int4_decode: %s: %s", rb_errname(rc), rb_error_detail());
        if (st) RBT_CU_OK(cu->stream_sync(st));
        float *gy = rbt_cu_download(cu, dy, ny * 4);
        RBT_ASSERT_F32_BITS(gy, wy, ny, seed,
                            "kv_int4_decode d %zu m %zu rows %zu ld %zu off %zu%s", d, m, rows, ld,
                            off, st ? " (created stream)" : "");
        free(wy);
        free(gy);
        RBT_CU_FREE(cu, up, usz, dy);
    }
    RBT_FREE(x, wide, wp, wsz, gsz, gp);
    RBT_CU_FREE(cu, dx, dp, dsz);
}

static void kv_case(const rb_cuda_ops *cu, uint64_t seed, size_t d, size_t m, size_t rows,
                    unsigned flags, rb_dtype t) {
    kv_case_at(cu, seed, d, m, rows, flags, t, 0, NULL);
}

static void kv_sweep(rb_dtype t) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kv_int4_encode);
    RBT_NEED(cu, kv_int4_decode);
    uint64_t seed = rbt_seed();
    /* every warp-kernel shape (32 .. 2048) and the tile kernel's either side */
    static const size_t ds[] = {2, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di];
        size_t ms[6] = {1, 2, 8, d / 4, d / 2, d};
        for (size_t mi = 0; mi < 6; mi++) {
            size_t m = ms[mi];
            int dup = 0;
            for (size_t q = 0; q < mi; q++) dup |= ms[q] == m;
            if (m == 0 || d % m || dup || (d > 256 && mi == 4)) continue;
            size_t rowss[3] = {1, 3, d > 256 ? 33 : 257};
            for (size_t ri = 0; ri < 3; ri++)
                for (unsigned flags = 0; flags <= (RB_KV_BF16 | RB_KV_SZ_F16); flags++)
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

/* The encode's quotient without a division (kernels/cuda/kv_quotient.cuh) against the IEEE
 * division, on 2^26 fresh random pairs of each kind: not one quotient (where no residual can
 * underflow) or code may differ. */
Test(cuda_kv_int4, quotient_is_the_division, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    (void) cu;
#if RB_HAVE_CUDA
    if (rbt_cuda_emulated()) cr_skip_test("a device kernel: not emulated");
    uint64_t seed = rbt_seed();
    static const char *names[] = {"any", "row", "range"};
    for (int kind = 0; kind < RBT_KVQ_KINDS; kind++) {
        unsigned long long count[3];
        uint64_t n = (uint64_t) 1 << 26;
        cr_assert_eq(rbt_cu_kv_quotient_check(seed + (uint64_t) kind, n, kind, count), 0,
                     "%s: CUDA error", names[kind]);
        cr_assert_gt(count[0], n / 2, "%s: %llu of %llu pairs in the fast domain", names[kind],
                     count[0], (unsigned long long) n);
        cr_assert_eq(count[1], 0, "%s: %llu quotients differ from __fdiv_rn (seed %llu)",
                     names[kind], count[1], (unsigned long long) seed);
        cr_assert_eq(count[2], 0, "%s: %llu codes differ (seed %llu)", names[kind], count[2],
                     (unsigned long long) seed);
    }
#else
    cr_skip_test("built without nvcc");
#endif
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
    RBT_CU_FREE(cu, dx, dsz, dp);
}

Test(cuda_kv_int4, unaligned_many_rows_and_streams_equal_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kv_int4_encode);
    RBT_NEED(cu, kv_int4_decode);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    for (int t = RB_DT_F32; t <= RB_DT_BF16; t++) {
        kv_case_at(cu, seed, 128, 128, 5, 0, (rb_dtype) t, 1, NULL);
        kv_case_at(cu, seed, 4096, 64, 3, RB_KV_BF16, (rb_dtype) t, 3, NULL);
        kv_case_at(cu, seed, 2, 2, 70001, 0, (rb_dtype) t, 0, NULL);
        kv_case_at(cu, seed, 256, 16, 33, 0, (rb_dtype) t, 1, s);
    }
    kv_case_at(cu, seed, 16, 16, 70001, 0, RB_DT_F32, 0, NULL);
    RBT_CU_OK(cu->stream_destroy(s));
}

Test(cuda_kv_int4, empty_inputs_are_no_ops) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kv_int4_encode);
    RBT_NEED(cu, kv_int4_decode);
    uint8_t *dp = rbt_cu_alloc(cu, 64);
    float *dx = rbt_cu_alloc(cu, 256), *dsz = rbt_cu_alloc(cu, 64);
    for (int t = RB_DT_F32; t <= RB_DT_BF16; t++)
        RBT_CU_OK(cu->kv_int4_encode(dx, (rb_dtype) t, 0, 64, 64, 8, 0, dp, dsz, NULL));
    RBT_CU_OK(cu->kv_int4_decode(dp, dsz, 0, 64, 8, dx, 64, NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    uint8_t *hp = rbt_cu_download(cu, dp, 64), *hs = rbt_cu_download(cu, dsz, 64);
    uint8_t *hx = rbt_cu_download(cu, dx, 256);
    for (size_t i = 0; i < 64; i++)
        cr_assert(hp[i] == 0xFF && hs[i] == 0xFF, "an empty call wrote byte %zu", i);
    for (size_t i = 0; i < 256; i++) cr_assert(hx[i] == 0xFF, "an empty decode wrote byte %zu", i);
    RBT_FREE(hp, hs, hx);
    RBT_CU_FREE(cu, dp, dx, dsz);
}

/* ---- rht_codebook_encode ---- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

/* The contract in gpu.h written out with the CPU pieces (methods/turboquant.c's block path):
 * norms, fp32 normalization (rb_unit_factors), the RHT, the codebook index and the packing into
 * rows of ldp bytes (pre-filled with 0xFF like the device buffer, so bytes past a packed row must
 * stay). */
static void rht_codebook_cpu(const float *x, size_t rows, size_t d, const float *d1,
                             const float *d2, const rb_codebook *cb, int bits, uint8_t *packed,
                             size_t ldp, float *norm) {
    double *nrm = malloc(rows * sizeof *nrm);
    float *u = malloc(rows * d * 4);
    uint8_t *idx = malloc(rows * d);
    rb_rows_sqnorm_f32_ref(x, NULL, rows, d, d, nrm);
    for (size_t r = 0; r < rows; r++) {
        nrm[r] = sqrt(nrm[r]);
        norm[r] = (float) nrm[r];
    }
    rb_rows_unit_f32(x, rows, d, d, nrm, u, d);
    cr_assert_eq(rb_rht_f32(u, d, rows, d, d1, d2, RB_FORWARD), RB_OK, "%s", rb_error_detail());
    cr_assert_eq(rb_codebook_quant_f32_ref(cb, u, rows, d, d, idx), RB_OK);
    memset(packed, 0xFF, rows * ldp);
    cr_assert_eq(rb_pack_rows_ref(idx, rows, d, bits, packed, ldp), RB_OK);
    RBT_FREE(nrm, u, idx);
}

/* Centroids whose thresholds sit exactly on values of v (the rotated unit rows): groups
 * (nextdown(v), v, v) give the thresholds nextdown(v) and v, so a 1-ulp difference in u or v, or
 * a tie sent the other way, moves a code (random centroids almost never see either). */
static void tie_centroids(const float *x, size_t rows, size_t d, const float *d1, const float *d2,
                          size_t k, float *c) {
    double *nrm = malloc(rows * sizeof *nrm);
    float *v = malloc(rows * d * 4);
    rb_rows_sqnorm_f32_ref(x, NULL, rows, d, d, nrm);
    for (size_t r = 0; r < rows; r++) nrm[r] = sqrt(nrm[r]);
    rb_rows_unit_f32(x, rows, d, d, nrm, v, d);
    cr_assert_eq(rb_rht_f32(v, d, rows, d, d1, d2, RB_FORWARD), RB_OK);
    qsort(v, rows * d, 4, cmp_float);
    size_t m = k / 3 ? k / 3 : 1, i = 0;
    for (size_t t = 0; t < m && i < k; t++) {
        float w = v[(2 * t + 1) * rows * d / (2 * m)];
        if (k > 2) c[i++] = nextafterf(w, -INFINITY);
        if (i < k) c[i++] = w;
        if (i < k) c[i++] = w;
    }
    for (; i < k; i++) c[i] = c[i - 1];
    qsort(c, k, 4, cmp_float);
    RBT_FREE(nrm, v);
}

/* One call: rows of d (row 1 one whose fp32 norm shows the order of the norm's sum, row 3 zero,
 * row 5 tiny, row 6 large), k sorted centroids (normal / sqrt(d), or on values of v: `ties`),
 * signs d1 (and d2 for two blocks), every device pointer `off` elements past its allocation's
 * start, packed rows of ldp = packed bytes + 4 (the tail and the bytes before stay untouched). */
static void rcb_case(const rb_cuda_ops *cu, uint64_t seed, size_t d, int bits, size_t k, int blocks,
                     size_t rows, size_t off, void *st, int ties) {
    size_t ldp = rb_pack_bytes(d, bits) + 4, npk = rows * ldp + off;
    float *x = rbt_normal_f32(rows * d + off, seed, 300 + d);
    for (size_t r = 3; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            float *v = &x[off + r * d + j];
            if (r % 8 == 3) *v = 0;       /* a zero row: norm 0, u = 0 */
            if (r % 8 == 5) *v *= 1e-20f; /* tiny: below 2^-64, pre-scaled */
            if (r % 8 == 6) *v *= 1e15f;  /* large */
        }
    if (rows > 1 && d >= 32) { /* |x|^2 = (2^24 + 1)^2 + 1/4 in lanes16 order: fp32 norm
                                * 2^24 + 2; (2^24 + 1)^2 in j order: 2^24 (a tie, to even) */
        float *r1 = x + off + d;
        memset(r1, 0, d * 4);
        r1[0] = r1[1] = r1[2] = r1[3] = 0x1p23f;
        r1[4] = r1[5] = 0x1p12f;
        r1[6] = 1.0f;
        for (size_t j = 8; j < 16; j++) r1[j] = r1[j + 16] = 0.125f;
    }
    float *d1 = malloc((d + off) * 4), *d2 = malloc((d + off) * 4);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, d + off, d1);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, d + off, d2);
    float *c = rbt_normal_f32(k, seed, 400 + k);
    for (size_t i = 0; i < k; i++) c[i] /= sqrtf((float) d);
    qsort(c, k, 4, cmp_float);
    if (ties)
        tie_centroids(x + off, rows < 64 ? rows : 64, d, d1 + off, blocks == 2 ? d2 + off : NULL, k,
                      c);
    rb_codebook cb;
    cr_assert_eq(rb_codebook_init(&cb, c, k), RB_OK);
    uint8_t *wp = malloc(npk);
    float *wn = malloc((rows + off) * 4);
    memset(wn, 0xFF, (rows + off) * 4);
    rht_codebook_cpu(x + off, rows, d, d1 + off, blocks == 2 ? d2 + off : NULL, &cb, bits, wp + off,
                     ldp, wn + off);
    memset(wp, 0xFF, off);
    float *dx = rbt_cu_upload(cu, x, (rows * d + off) * 4);
    float *dd1 = rbt_cu_upload(cu, d1, (d + off) * 4), *dd2 = rbt_cu_upload(cu, d2, (d + off) * 4);
    uint8_t *dp = rbt_cu_alloc(cu, npk);
    float *dn = rbt_cu_alloc(cu, (rows + off) * 4);
    int rc = cu->rht_codebook_encode(dx + off, rows, d, dd1 + off, blocks == 2 ? dd2 + off : NULL,
                                     &cb, bits, dp + off, ldp, dn + off, st);
    char what[160];
    snprintf(what, sizeof what,
             "rht_codebook_encode d %zu bits %d k %zu blocks %d rows %zu off %zu%s%s", d, bits, k,
             blocks, rows, off, st ? " (created stream)" : "", ties ? " (centroids on v)" : "");
    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
    if (st) RBT_CU_OK(cu->stream_sync(st));
    float *gn = rbt_cu_download(cu, dn, (rows + off) * 4);
    uint8_t *gp = rbt_cu_download(cu, dp, npk);
    RBT_ASSERT_F32_BITS(gn, wn, rows + off, seed, "%s: norms", what);
    RBT_ASSERT_U8_EQ(gp, wp, npk, seed, "%s: packed rows (stride %zu; bytes past a row untouched)",
                     what, ldp);
    RBT_FREE(x, c, d1, d2, wp, wn, gn, gp);
    RBT_CU_FREE(cu, dx, dd1, dd2, dp, dn);
}

Test(cuda_rht_codebook, encode_equals_the_cpu_pipeline) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_encode);
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {64, 128, 256, 768, 1024};
    for (size_t di = 0; di < 5; di++)
        for (int bits = 1; bits <= 4; bits++)
            for (int blocks = 1; blocks <= 2; blocks++)
                for (int short_cb = 0; short_cb <= (bits > 1); short_cb++)
                    for (int ties = 0; ties <= 1; ties++)
                        rcb_case(cu, seed, ds[di], bits, ((size_t) 1 << bits) - (size_t) short_cb,
                                 blocks, 7, 0, NULL, ties);
    /* Wider codes than the issue needs, as the contract allows any 1..8. */
    rcb_case(cu, seed, 128, 8, 256, 2, 7, 0, NULL, 1);
    rcb_case(cu, seed, 128, 5, 32, 1, 7, 0, NULL, 0);
}

Test(cuda_rht_codebook, unaligned_many_rows_and_streams, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_encode);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    rcb_case(cu, seed, 256, 3, 8, 2, 9, 1, NULL, 1);
    rcb_case(cu, seed, 1024, 4, 16, 1, 5, 3, NULL, 0);
    rcb_case(cu, seed, 64, 2, 4, 2, 70001, 0, NULL, 1);
    rcb_case(cu, seed, 128, 4, 16, 2, 33, 1, s, 0);
    RBT_CU_OK(cu->stream_destroy(s));
    /* No rows: nothing written. */
    float c[2] = {-1, 1};
    rb_codebook cb;
    cr_assert_eq(rb_codebook_init(&cb, c, 2), RB_OK);
    float *dd = rbt_cu_alloc(cu, 64 * 4), *dn = rbt_cu_alloc(cu, 16);
    uint8_t *dp = rbt_cu_alloc(cu, 16);
    RBT_CU_OK(cu->rng_rademacher_f32(1, 2, 0, 64, dd, NULL));
    RBT_CU_OK(cu->rht_codebook_encode(dd, 0, 64, dd, NULL, &cb, 1, dp, 8, dn, NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    uint8_t *hp = rbt_cu_download(cu, dp, 16), *hn = rbt_cu_download(cu, dn, 16);
    for (size_t i = 0; i < 16; i++)
        cr_assert(hp[i] == 0xFF && hn[i] == 0xFF, "an empty call wrote byte %zu", i);
    free(hp);
    free(hn);
    RBT_CU_FREE(cu, dd, dn, dp);
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
    RBT_CU_FREE(cu, dx, dd, dn, dp);
}
