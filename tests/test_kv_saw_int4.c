/* SAW-INT4: the fused encode kernel's variants bit-identical to the reference on fresh inputs
 * around their fast-path shapes, the paper's packing test vector, rotation invariance, and the
 * saw_int4 method's round trip, bits and rejected shapes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "kernels/pool.h"
#include "methods/method.h"
#include "tests/testutil.h"

/* Every combination of the encode flags: bf16 round trip, fp16 scale and zero point. */
#define ALL_FLAGS (RB_KV_BF16 | RB_KV_SZ_F16)

/* kv_cache.md section 2 claim 1: D = 4, no rotation, fp32: x = [1, 2, 3, 4] gives scale 0.2,
 * z = -5, q = [0, 5, 10, 15], bytes {0xA0, 0xF5}, exact dequantization. */
Test(kv_saw_int4, packing_test_vector) {
    const float x[4] = {1, 2, 3, 4};
    uint8_t packed[2];
    float sz[2], y[4];
    cr_assert_eq(rb_kv_int4_encode_f32(x, 1, 4, 4, 1, 0, packed, sz), 0);
    cr_assert_eq(sz[0], (3.0f / 15.0f));
    cr_assert_float_eq(sz[0], 0.2f, 1e-7);
    cr_assert_float_eq(sz[1], -5.0f, 1e-6);
    cr_assert_eq(packed[0], 0xA0, "byte 0 = 0x%02x", packed[0]);
    cr_assert_eq(packed[1], 0xF5, "byte 1 = 0x%02x", packed[1]);
    cr_assert_eq(rb_kv_int4_decode_f32(packed, sz, 1, 4, 1, y, 4), 0);
    for (int j = 0; j < 4; j++) cr_assert_float_eq(y[j], x[j], 1e-6, "y[%d] = %g", j, y[j]);
}

/* Every variant this CPU runs against the reference, bit for bit: d at and around the vector
 * widths (16, 32: below, at, above), odd row counts, a row stride longer than d, every block
 * size, with and without the bf16 round trip and the fp16 (scale, z), plus rows with a constant
 * and with zeros. */
Test(kv_saw_int4, variants_match_the_reference_bit_for_bit) {
    uint64_t seed = rbt_seed();
    const size_t ds[] = {2, 4, 16, 32, 48, 64, 96, 128, 160, 192, 256, 512};
    const size_t rows = 37, stride_pad = 3;
    const rb_op *op = &rb_op_kv_int4_encode_f32;
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], stride = d + stride_pad;
        float *x = rbt_normal_f32(rows * stride, seed, di);
        for (size_t j = 0; j < d; j++) {
            x[j] = 0.75f;                         /* row 0 constant */
            x[stride + j] = j % 3 ? 0.0f : -0.0f; /* row 1 signed zeros */
        }
        for (size_t j = 0; j < d; j += 5) x[2 * stride + j] *= 40; /* outlier channels */
        uint8_t *pr = malloc(rows * d / 2), *pv = malloc(rows * d / 2);
        float *sr = malloc(rows * 2 * sizeof(float)), *sv = malloc(rows * 2 * sizeof(float));
        for (size_t m = 1; m <= d && d % m == 0; m *= 2)
            for (unsigned flags = 0; flags <= ALL_FLAGS; flags++) {
                rb_kv_int4_encode_f32_ref(x, rows, d, stride, m, flags, pr, sr);
                for (size_t v = 0; v + 1 < op->count; v++) {
                    if (!rb_variant_enabled(&op->variants[v])) continue;
                    rb_kv_int4_encode_fn fn = (rb_kv_int4_encode_fn) op->variants[v].fn;
                    memset(pv, 0xEE, rows * d / 2);
                    int rc = fn(x, rows, d, stride, m, flags, pv, sv);
                    if (rc == RB_EDECLINE) continue;
                    cr_assert_eq(rc, 0);
                    cr_assert_eq(memcmp(pr, pv, rows * d / 2), 0,
                                 "%s d %zu m %zu flags %u seed %llu", op->variants[v].name, d, m,
                                 flags, (unsigned long long) seed);
                    cr_assert_eq(memcmp(sr, sv, rows * 2 * sizeof(float)), 0,
                                 "%s scales d %zu m %zu seed %llu", op->variants[v].name, d, m,
                                 (unsigned long long) seed);
                }
            }
        /* The threaded entry point (whatever variant it picks) gives the same bytes. */
        size_t mm = d & (~d + 1); /* the largest power of two dividing d */
        cr_assert_eq(rb_kv_int4_encode_f32(x, rows, d, stride, mm, RB_KV_BF16, pv, sv), 0);
        rb_kv_int4_encode_f32_ref(x, rows, d, stride, mm, RB_KV_BF16, pr, sr);
        cr_assert_eq(memcmp(pr, pv, rows * d / 2), 0);
        free(x);
        free(pr);
        free(pv);
        free(sr);
        free(sv);
    }
}

/* Every enabled variant against the reference on rows x (rows x d, row stride `stride`), codes
 * and (scale, z) bit for bit; `what` and the seed go into the failure message. */
static void check_encode_variants(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                                  unsigned flags, const char *what, uint64_t seed) {
    const rb_op *op = &rb_op_kv_int4_encode_f32;
    uint8_t *pr = malloc(rows * d / 2), *pv = malloc(rows * d / 2);
    float *sr = malloc(rows * 2 * sizeof(float)), *sv = malloc(rows * 2 * sizeof(float));
    rb_kv_int4_encode_f32_ref(x, rows, d, stride, m, flags, pr, sr);
    for (size_t v = 0; v + 1 < op->count; v++) {
        if (!rb_variant_enabled(&op->variants[v])) continue;
        rb_kv_int4_encode_fn fn = (rb_kv_int4_encode_fn) op->variants[v].fn;
        memset(pv, 0xEE, rows * d / 2);
        memset(sv, 0xEE, rows * 2 * sizeof(float));
        int rc = fn(x, rows, d, stride, m, flags, pv, sv);
        if (rc == RB_EDECLINE) continue;
        cr_assert_eq(rc, 0);
        for (size_t r = 0; r < rows; r++) {
            cr_assert_eq(memcmp(pr + r * d / 2, pv + r * d / 2, d / 2), 0,
                         "%s: %s codes of row %zu of %zu, d %zu m %zu flags %u seed %llu",
                         op->variants[v].name, what, r, rows, d, m, flags,
                         (unsigned long long) seed);
            cr_assert_eq(memcmp(sr + 2 * r, sv + 2 * r, 2 * sizeof(float)), 0,
                         "%s: %s scale/z of row %zu of %zu (%a %a vs %a %a), d %zu m %zu seed %llu",
                         op->variants[v].name, what, r, rows, sr[2 * r], sr[2 * r + 1], sv[2 * r],
                         sv[2 * r + 1], d, m, (unsigned long long) seed);
        }
    }
    free(pr);
    free(pv);
    free(sr);
    free(sv);
}

/* The AVX-512 kernel works on blocks of 16 rows (rows two at a time in its first pass, all 16
 * rows' reductions in one tree): row counts below, at and around one and two blocks, odd counts,
 * an unaligned row stride, every register-path d, and rows scaled over 2^-40 .. 2^40 so that
 * the per-row scales span many exponents within one block. */
Test(kv_saw_int4, encode_rows_across_block_boundaries) {
    uint64_t seed = rbt_seed();
    const size_t ds[] = {32, 64, 128, 256}, counts[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 50};
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], stride = d + 3, rows = 50;
        float *x = rbt_normal_f32(rows * stride, seed, 200 + di);
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < d; j++)
                x[r * stride + j] *= ldexpf(1.0f, (int) (r * 7 % 81) - 40);
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            size_t ms[] = {1, 4, 16, d};
            for (size_t mi = 0; mi < 4; mi++)
                for (unsigned flags = 0; flags <= ALL_FLAGS; flags++)
                    check_encode_variants(x, counts[ci], d, stride, ms[mi], flags, "scaled rows",
                                          seed);
            /* the same rows starting mid-block: a different row lands in each block slot */
            if (counts[ci] < rows)
                check_encode_variants(x + stride, counts[ci], d, stride, d, RB_KV_BF16,
                                      "shifted rows", seed);
        }
        free(x);
    }
}

/* Edge rows, each in a block of random rows (slot r of 16) so that a special row shares its
 * reductions and vector scale/z with ordinary ones: zeros, signed zeros, constants (the range
 * floor 1e-8), a constant of huge values (v / scale = inf, z = -inf: code 0), near-constant rows
 * whose range is below 1e-8, subnormal values, tiny and huge magnitudes, one huge outlier among
 * ordinary values, values whose range overflows to inf (no rotation). */
Test(kv_saw_int4, encode_edge_rows_match_the_reference) {
    uint64_t seed = rbt_seed();
    const size_t ds[] = {32, 128, 256};
    enum { NEDGE = 13, ROWS = 3 * 16 + 5 };
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], stride = d;
        float *x = rbt_normal_f32(ROWS * stride, seed, 300 + di);
        float *u = rbt_normal_f32(NEDGE * d, seed, 400 + di);
        for (int e = 0; e < NEDGE; e++) {
            float *row = x + ((size_t) e * 4 + (size_t) e % 3) * stride; /* spread over slots */
            const float *g = u + (size_t) e * d;
            for (size_t j = 0; j < d; j++) {
                float f;
                switch (e) {
                case 0:
                    f = 0.0f;
                    break;
                case 1:
                    f = j % 2 ? -0.0f : 0.0f;
                    break;
                case 2:
                    f = 0.75f;
                    break;
                case 3:
                    f = 1e30f;
                    break;
                case 4:
                    f = -2.5e-30f;
                    break;
                case 5:
                    f = 1.0f + ldexpf(g[j], -30);
                    break; /* range far below 1e-8 */
                case 6:
                    f = g[j] * 1e-40f;
                    break; /* subnormal */
                case 7:
                    f = j == 3 ? 1e-39f : (j % 2 ? -0.0f : 0.0f);
                    break;
                case 8:
                    f = g[j] * 1e-33f;
                    break;
                case 9:
                    f = g[j] * 1e33f;
                    break;
                case 10:
                    f = j == 5 ? 1e30f : g[j];
                    break;
                case 11:
                    f = j == 7 ? -3e20f : g[j] * 1e-20f;
                    break;
                default:
                    f = g[j] > 0 ? 3e38f : -3e38f;
                    break; /* mx - mn = inf */
                }
                row[j] = f;
            }
        }
        const size_t ms[] = {1, 4, 16, d};
        for (size_t mi = 0; mi < 4; mi++) {
            /* Row 12 (+-3e38): without rotation range = inf, scale = inf, z = -0 / inf; with
             * rotation the butterflies give inf - inf = NaN, which is outside the bit-identity
             * (kv_quant.h), so from m = 4 on it holds ordinary values. */
            if (mi == 1)
                for (size_t j = 0; j < d; j++) x[(12 * 4 + 12 % 3) * stride + j] = u[12 * d + j];
            for (unsigned flags = 0; flags <= ALL_FLAGS; flags++)
                check_encode_variants(x, ROWS, d, stride, ms[mi], flags, "edge rows", seed);
        }
        free(x);
        free(u);
    }
}

/* Decode variants against the reference, bit for bit: random codes and (scale, z) pairs, every
 * block size, d at and around the register paths, odd row counts, an output stride longer than
 * d; and the threaded entry point on enough rows for several pool chunks. */
Test(kv_saw_int4, decode_variants_match_the_reference_bit_for_bit) {
    uint64_t seed = rbt_seed();
    const size_t ds[] = {2, 16, 32, 48, 64, 96, 128, 256, 512};
    const size_t rows = 37, pad = 5;
    const rb_op *op = &rb_op_kv_int4_decode_f32;
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], ld = d + pad;
        float *u = rbt_normal_f32(rows * d / 2 + 2 * rows, seed, 100 + di);
        uint8_t *packed = malloc(rows * d / 2);
        float *sz = malloc(rows * 2 * sizeof(float));
        for (size_t i = 0; i < rows * d / 2; i++)
            packed[i] = (uint8_t) ((uint32_t) (fabsf(u[i]) * 1e6f) & 0xFF);
        for (size_t r = 0; r < rows; r++) {
            sz[2 * r] = 0.01f + fabsf(u[rows * d / 2 + 2 * r]);
            sz[2 * r + 1] = 7.5f * u[rows * d / 2 + 2 * r + 1];
        }
        float *xr = malloc(rows * ld * sizeof(float)), *xv = malloc(rows * ld * sizeof(float));
        for (size_t m = 1; m <= d && d % m == 0; m *= 2) {
            memset(xr, 0, rows * ld * sizeof(float));
            rb_kv_int4_decode_f32_ref(packed, sz, rows, d, m, xr, ld);
            for (size_t v = 0; v + 1 < op->count; v++) {
                if (!rb_variant_enabled(&op->variants[v])) continue;
                rb_kv_int4_decode_fn fn = (rb_kv_int4_decode_fn) op->variants[v].fn;
                memset(xv, 0, rows * ld * sizeof(float));
                int rc = fn(packed, sz, rows, d, m, xv, ld);
                if (rc == RB_EDECLINE) continue;
                cr_assert_eq(rc, 0);
                cr_assert_eq(memcmp(xr, xv, rows * ld * sizeof(float)), 0,
                             "%s d %zu m %zu seed %llu", op->variants[v].name, d, m,
                             (unsigned long long) seed);
            }
            memset(xv, 0, rows * ld * sizeof(float));
            cr_assert_eq(rb_kv_int4_decode_f32(packed, sz, rows, d, m, xv, ld), 0);
            cr_assert_eq(memcmp(xr, xv, rows * ld * sizeof(float)), 0, "entry d %zu m %zu", d, m);
        }
        free(u);
        free(packed);
        free(sz);
        free(xr);
        free(xv);
    }
}

/* The threaded entry points on enough rows of 128 for several pool chunks (rows not a multiple
 * of the chunk), with 1 and 2 threads: the same bytes as the reference. */
Test(kv_saw_int4, threaded_encode_and_decode_match_the_reference) {
    uint64_t seed = rbt_seed();
    const size_t rows = 1001, d = 128;
    float *x = rbt_normal_f32(rows * d, seed, 7);
    uint8_t *pr = malloc(rows * d / 2), *pv = malloc(rows * d / 2);
    float *sr = malloc(rows * 2 * sizeof(float)), *sv = malloc(rows * 2 * sizeof(float));
    float *yr = malloc(rows * d * sizeof(float)), *yv = malloc(rows * d * sizeof(float));
    rb_kv_int4_encode_f32_ref(x, rows, d, d, 128, RB_KV_BF16, pr, sr);
    rb_kv_int4_decode_f32_ref(pr, sr, rows, d, 128, yr, d);
    int saved = rb_threads_get();
    for (int t = 1; t <= 2; t++) {
        cr_assert_eq(rb_threads_set(t), 0);
        cr_assert_eq(rb_kv_int4_encode_f32(x, rows, d, d, 128, RB_KV_BF16, pv, sv), 0);
        cr_assert_eq(memcmp(pr, pv, rows * d / 2), 0, "threads %d seed %llu", t,
                     (unsigned long long) seed);
        cr_assert_eq(memcmp(sr, sv, rows * 2 * sizeof(float)), 0);
        cr_assert_eq(rb_kv_int4_decode_f32(pv, sv, rows, d, 128, yv, d), 0);
        cr_assert_eq(memcmp(yr, yv, rows * d * sizeof(float)), 0, "threads %d", t);
    }
    rb_threads_set(saved);
    free(x);
    free(pr);
    free(pv);
    free(sr);
    free(sv);
    free(yr);
    free(yv);
}

/* Claim 2: (H q / sqrt m) . (H k / sqrt m) = q . k in fp32 to 1e-6 (relative to |q||k|): the
 * block Hadamard the encoder applies, computed as the kernel does (scale, then butterflies). */
Test(kv_saw_int4, block_rotation_preserves_inner_products) {
    uint64_t seed = rbt_seed();
    size_t d = 128;
    for (size_t m = 2; m <= d; m *= 2) {
        float *q = rbt_normal_f32(d, seed, m), *k = rbt_normal_f32(d, seed, m + 1000);
        double dot = 0, nq = 0, nk = 0, rdot = 0;
        for (size_t j = 0; j < d; j++) {
            dot += (double) q[j] * k[j];
            nq += (double) q[j] * q[j];
            nk += (double) k[j] * k[j];
        }
        float inv = (float) (1.0 / sqrt((double) m));
        for (size_t j = 0; j < d; j++) {
            q[j] *= inv;
            k[j] *= inv;
        }
        cr_assert_eq(rb_fwht_f32(q, m, d / m, m, RB_NORM_NONE, RB_ORDER_NATURAL), 0);
        cr_assert_eq(rb_fwht_f32(k, m, d / m, m, RB_NORM_NONE, RB_ORDER_NATURAL), 0);
        for (size_t j = 0; j < d; j++) rdot += (double) q[j] * k[j];
        cr_assert_lt(fabs(rdot - dot) / sqrt(nq * nk), 1e-6, "m %zu: %g vs %g (seed %llu)", m, rdot,
                     dot, (unsigned long long) seed);
        free(q);
        free(k);
    }
}

static void *make(const char *rotation, const char *block, const char *scale_bits, size_t heads,
                  size_t dim, size_t cap, int *rc) {
    const rb_method *m = rb_method_find("saw_int4");
    cr_assert_not_null(m);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    cr_assert_eq(rb_params_set(&p, "rotation", rotation), 0);
    cr_assert_eq(rb_params_set(&p, "block", block), 0);
    cr_assert_eq(rb_params_set(&p, "scale_bits", scale_bits), 0);
    rb_kv_geom g = {.heads = heads, .head_dim = dim, .capacity = cap};
    void *st = NULL;
    *rc = m->kv->create(&p, &g, 1, &st);
    return st;
}

/* Prefill then decode steps give the same cache as one append (fp32 and fp16 pairs alike); the
 * error is that of INT4 with BDR; bits are 4 + 2 * 32 / D (fp32 pair) or 4.25 at D = 128 with
 * the fp16 pair. */
Test(kv_saw_int4, method_streams_reads_back_and_counts_bits) {
    uint64_t seed = rbt_seed();
    const rb_method *m = rb_method_find("saw_int4");
    size_t H = 3, D = 128, T = 50, row = H * D;
    int rc;
    void *a = make("bdr", "64", "32", H, D, T, &rc), *b = make("bdr", "64", "32", H, D, T, &rc);
    cr_assert_eq(rc, 0);
    void *a16 = make("bdr", "64", "16", H, D, T, &rc), *b16 = make("bdr", "64", "16", H, D, T, &rc);
    cr_assert_eq(rc, 0);
    float *K = rbt_normal_f32(T * row, seed, 1), *V = rbt_normal_f32(T * row, seed, 2);
    float *Ka = malloc(T * row * sizeof(float)), *Va = malloc(T * row * sizeof(float));
    float *Kb = malloc(T * row * sizeof(float)), *Vb = malloc(T * row * sizeof(float));
    cr_assert_eq(m->kv->append(a, K, V, T), 0);
    cr_assert_eq(m->kv->append(b, K, V, 20), 0);
    for (size_t t = 20; t < T; t++) cr_assert_eq(m->kv->append(b, K + t * row, V + t * row, 1), 0);
    cr_assert_eq(m->kv->tokens(a), T);
    cr_assert_eq(m->kv->tokens(b), T);
    cr_assert_eq(m->kv->read(a, Ka, Va), 0);
    cr_assert_eq(m->kv->read(b, Kb, Vb), 0);
    cr_assert_eq(memcmp(Ka, Kb, T * row * sizeof(float)), 0);
    cr_assert_eq(memcmp(Va, Vb, T * row * sizeof(float)), 0);
    cr_assert_eq(m->kv->append(a16, K, V, T), 0);
    cr_assert_eq(m->kv->append(b16, K, V, 20), 0);
    for (size_t t = 20; t < T; t++)
        cr_assert_eq(m->kv->append(b16, K + t * row, V + t * row, 1), 0);
    cr_assert_eq(m->kv->read(a16, Ka, Va), 0);
    cr_assert_eq(m->kv->read(b16, Kb, Vb), 0);
    cr_assert_eq(memcmp(Ka, Kb, T * row * sizeof(float)), 0);
    cr_assert_eq(memcmp(Va, Vb, T * row * sizeof(float)), 0);
    cr_assert_eq(m->kv->read(a, Ka, Va), 0);
    double e = 0, n = 0;
    for (size_t i = 0; i < T * row; i++) {
        e += (Ka[i] - K[i]) * (Ka[i] - K[i]);
        n += K[i] * K[i];
    }
    /* Gaussian rows: INT4 over a range of about 5 sigma: relMSE near 0.009, far from 0 and 1. */
    cr_assert(e / n > 0.002 && e / n < 0.03, "relMSE %g (seed %llu)", e / n,
              (unsigned long long) seed);
    cr_assert_float_eq(m->kv->bits(a), 4.5, 1e-12);
    cr_assert_float_eq(m->kv->bits(a16), 4.25, 1e-12);
    cr_assert_eq(m->kv->append(a, K, V, 1), RB_ESIZE); /* past the capacity */
    m->kv->destroy(a);
    m->kv->destroy(b);
    m->kv->destroy(a16);
    m->kv->destroy(b16);
    make("bdr", "48", "32", H, D, T, &rc);
    cr_assert_eq(rc, RB_ESIZE);
    make("bdr", "256", "32", H, D, T, &rc);
    cr_assert_eq(rc, RB_ESIZE);
    /* scale_bits 24 is refused when the parameter is set (kv_rtn/scale_bits_is_16_or_32). */
    free(K);
    free(V);
    free(Ka);
    free(Va);
    free(Kb);
    free(Vb);
}

/* RB_KV_SZ_F16: every stored scale and zero point is an fp16 value, and it is the fp32 pair
 * rounded to fp16 (the same rows encoded without the flag); the codes are chosen against the
 * rounded pair, code = clamp((uint8)(v / s16 + z16 + 0.5), 0, 15), checked here from the fp32
 * run's pair recomputed, not from the kernel's own arithmetic. */
Test(kv_saw_int4, fp16_pair_is_rounded_and_the_codes_use_it) {
    uint64_t seed = rbt_seed();
    const size_t rows = 64, d = 128;
    float *x = rbt_normal_f32(rows * d, seed, 11);
    for (size_t r = 0; r < rows; r++) /* scales over many exponents, offsets far from 0 */
        for (size_t j = 0; j < d; j++)
            x[r * d + j] = x[r * d + j] * ldexpf(1.0f, (int) (r % 13) - 6) + (float) (r % 5);
    uint8_t *p32 = malloc(rows * d / 2), *p16 = malloc(rows * d / 2);
    float *s32 = malloc(rows * 2 * sizeof(float)), *s16 = malloc(rows * 2 * sizeof(float));
    cr_assert_eq(rb_kv_int4_encode_f32_ref(x, rows, d, d, 1, 0, p32, s32), 0);
    cr_assert_eq(rb_kv_int4_encode_f32(x, rows, d, d, 1, RB_KV_SZ_F16, p16, s16), 0);
    size_t differ = 0;
    for (size_t r = 0; r < rows; r++) {
        float sc = s16[2 * r], z = s16[2 * r + 1];
        cr_assert_eq(sc, rb_f16_round(s32[2 * r]), "row %zu scale %a vs %a", r, sc, s32[2 * r]);
        cr_assert_eq(z, rb_f16_round(s32[2 * r + 1]), "row %zu z %a vs %a", r, z, s32[2 * r + 1]);
        differ += sc != s32[2 * r] || z != s32[2 * r + 1];
        for (size_t j = 0; j < d; j++) {
            float f = x[r * d + j] / sc + z + 0.5f;
            f = f > 0.0f ? f : 0.0f;
            f = f < 15.0f ? f : 15.0f;
            uint8_t b = p16[r * d / 2 + j % (d / 2)];
            cr_assert_eq(j < d / 2 ? b & 15 : b >> 4, (uint8_t) f, "row %zu element %zu", r, j);
        }
    }
    cr_assert_gt(differ, rows / 2, "only %zu of %zu pairs changed by the rounding", differ, rows);
    free(x);
    free(p32);
    free(p16);
    free(s32);
    free(s16);
}

/* RB_KV_SZ_F16 on rows whose fp32 scale is below the least fp16 value: a scale rounded to 0
 * decoded a tiny row to 0 and a constant row to NaN ((q - inf) * 0). The stored scale is at
 * least 2^-24, a tiny row decodes to within one step of itself, and no row decodes to NaN; in
 * every variant (16 copies of each row, so the AVX-512 kernel's blocks of 16 see them too). */
Test(kv_saw_int4, fp16_pair_keeps_tiny_rows) {
    uint64_t seed = rbt_seed();
    const size_t d = 64, rows = 48;
    float *x = rbt_normal_f32(rows * d, seed, 12);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            float *v = &x[r * d + j];
            *v = r % 3 == 0 ? 1e-5f + 1e-8f * *v : r % 3 == 1 ? -1.75f : 0.0f;
        }
    check_encode_variants(x, rows, d, d, 1, RB_KV_SZ_F16, "tiny and constant rows", seed);
    uint8_t *q = malloc(rows * d / 2);
    float *sz = malloc(rows * 2 * sizeof(float)), *y = malloc(rows * d * sizeof(float));
    cr_assert_eq(rb_kv_int4_encode_f32(x, rows, d, d, 1, RB_KV_SZ_F16, q, sz), 0);
    cr_assert_eq(rb_kv_int4_decode_f32(q, sz, rows, d, 1, y, d), 0);
    for (size_t r = 0; r < rows; r++) {
        cr_assert_geq(sz[2 * r], 0x1p-24f, "row %zu: scale %a", r, sz[2 * r]);
        for (size_t j = 0; j < d; j++) {
            float v = x[r * d + j], w = y[r * d + j];
            cr_assert(!isnan(w), "row %zu element %zu decodes to NaN (seed %llu)", r, j,
                      (unsigned long long) seed);
            if (r % 3 == 0)
                cr_assert_leq(fabsf(w - v), sz[2 * r], "row %zu element %zu: %a for %a", r, j, w,
                              v);
            if (r % 3 == 2) cr_assert_eq(w, 0.0f, "row %zu element %zu", r, j);
        }
    }
    free(x);
    free(q);
    free(sz);
    free(y);
}

/* saw_int4 scale_bits 16 stores the pair in fp16: its cache is the kernel's RB_KV_SZ_F16
 * encode decoded (bit for bit), not the fp32 pair's (which it was while still billed 4.25
 * bits), and a zero point fp16 cannot hold is an error naming the token and head. */
Test(kv_saw_int4, method_scale_bits_16_stores_fp16) {
    uint64_t seed = rbt_seed();
    const rb_method *m = rb_method_find("saw_int4");
    size_t H = 2, D = 128, T = 40, rows = T * H;
    int rc;
    void *c16 = make("bdr", "128", "16", H, D, T, &rc);
    cr_assert_eq(rc, 0);
    void *c32 = make("bdr", "128", "32", H, D, T, &rc);
    cr_assert_eq(rc, 0);
    float *K = rbt_normal_f32(rows * D, seed, 21), *V = rbt_normal_f32(rows * D, seed, 22);
    float *K16 = malloc(rows * D * sizeof(float)), *V16 = malloc(rows * D * sizeof(float));
    float *K32 = malloc(rows * D * sizeof(float)), *V32 = malloc(rows * D * sizeof(float));
    float *Ke = malloc(rows * D * sizeof(float)), *sz = malloc(rows * 2 * sizeof(float));
    uint8_t *q = malloc(rows * D / 2);
    cr_assert_eq(m->kv->append(c16, K, V, T), 0);
    cr_assert_eq(m->kv->append(c32, K, V, T), 0);
    cr_assert_eq(m->kv->read(c16, K16, V16), 0);
    cr_assert_eq(m->kv->read(c32, K32, V32), 0);
    cr_assert_neq(memcmp(K16, K32, rows * D * sizeof(float)), 0, "16-bit pair decodes as fp32");
    cr_assert_neq(memcmp(V16, V32, rows * D * sizeof(float)), 0, "16-bit pair decodes as fp32");
    /* keys: BDR 128 with bf16; values: no rotation (K only by default) */
    cr_assert_eq(rb_kv_int4_encode_f32_ref(K, rows, D, D, 128, RB_KV_BF16 | RB_KV_SZ_F16, q, sz),
                 0);
    for (size_t r = 0; r < rows; r++)
        cr_assert(rb_f16_round(sz[2 * r]) == sz[2 * r] &&
                  rb_f16_round(sz[2 * r + 1]) == sz[2 * r + 1]);
    cr_assert_eq(rb_kv_int4_decode_f32_ref(q, sz, rows, D, 128, Ke, D), 0);
    cr_assert_eq(memcmp(Ke, K16, rows * D * sizeof(float)), 0);
    cr_assert_eq(rb_kv_int4_encode_f32_ref(V, rows, D, D, 1, RB_KV_BF16 | RB_KV_SZ_F16, q, sz), 0);
    cr_assert_eq(rb_kv_int4_decode_f32_ref(q, sz, rows, D, 1, Ke, D), 0);
    cr_assert_eq(memcmp(Ke, V16, rows * D * sizeof(float)), 0);
    m->kv->destroy(c16);
    m->kv->destroy(c32);
    /* A constant row of 0.75 without rotation: scale = 1e-8 / 15, z = -1.1e9, beyond fp16. */
    void *n16 = make("none", "128", "16", H, D, T, &rc);
    cr_assert_eq(rc, 0);
    for (size_t j = 0; j < D; j++) K[(2 * H + 1) * D + j] = 0.75f; /* token 2, head 1 */
    cr_assert_eq(m->kv->append(n16, K, V, 3), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "token 2, head 1, key") &&
                  strstr(rb_error_detail(), "scale_bits: 32"),
              "%s", rb_error_detail());
    m->kv->destroy(n16);
    void *n32 = make("none", "128", "32", H, D, T, &rc);
    cr_assert_eq(m->kv->append(n32, K, V, 3), 0);
    m->kv->destroy(n32);
    free(K);
    free(V);
    free(K16);
    free(V16);
    free(K32);
    free(V32);
    free(Ke);
    free(sz);
    free(q);
}

/* Values near FLT_MAX overflow the block Hadamard (or, unrotated, the range max - min): an
 * RB_ENUMERIC naming the token, head and K or V at both pair widths, not a NaN scale that would
 * decode to a NaN cache; at 16 bits not mistaken for a pair beyond fp16. */
Test(kv_saw_int4, method_names_rows_that_overflow_fp32) {
    uint64_t seed = rbt_seed();
    const rb_method *m = rb_method_find("saw_int4");
    size_t H = 2, D = 128, T = 4, rows = T * H;
    float *K = rbt_normal_f32(rows * D, seed, 31), *V = rbt_normal_f32(rows * D, seed, 32);
    static const struct {
        const char *rotation, *bits;
        int in_v;
    } cases[] = {{"bdr", "32", 0}, {"bdr", "16", 0}, {"none", "32", 1}, {"none", "16", 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *x = cases[c].in_v ? V : K, keep[16];
        size_t at = (3 * H + 0) * D; /* token 3, head 0 */
        memcpy(keep, x + at, sizeof keep);
        /* rotated: 16 x 3e38 / sqrt(128) overflows in the butterflies (two do not: that row is
         * encoded); unrotated, the range 3e38 - (-3e38) does */
        for (size_t j = 0; j < 16; j++) x[at + j] = cases[c].in_v && j % 2 ? -3e38f : 3e38f;
        int rc;
        void *st = make(cases[c].rotation, "128", cases[c].bits, H, D, T, &rc);
        cr_assert_eq(rc, 0);
        cr_assert_eq(m->kv->append(st, K, V, T), RB_ENUMERIC, "case %zu", c);
        const char *e = rb_error_detail();
        cr_assert(strstr(e, cases[c].in_v ? "token 3, head 0, value" : "token 3, head 0, key") &&
                      strstr(e, "overflows fp32") && !strstr(e, "scale_bits"),
                  "case %zu: %s", c, e);
        cr_assert_eq(m->kv->tokens(st), 0);
        m->kv->destroy(st);
        memcpy(x + at, keep, sizeof keep);
    }
    /* A constant row of 1e30, unrotated: its range floors at 1e-8, z = -1e30 / scale overflows
     * and the message says so (nothing near FLT_MAX was rotated). */
    for (size_t j = 0; j < D; j++) K[(1 * H + 1) * D + j] = 1e30f; /* token 1, head 1 */
    int rc;
    void *st = make("none", "128", "32", H, D, T, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(m->kv->append(st, K, V, T), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "token 1, head 1, key: the zero point overflows fp32"),
              "%s", rb_error_detail());
    m->kv->destroy(st);
    free(K);
    free(V);
}
