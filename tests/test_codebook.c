/* Codebook quantization: brute-force nearest centroid with ties to the lower index, exact
 * midpoints, packing, errors, and every optimized variant bit-identical to the reference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

/* Sorted random centroids (normal, so spacing varies), k of them. */
static void make_codebook(rb_codebook *cb, size_t k, uint64_t seed, uint64_t stream) {
    float c[RB_CODEBOOK_MAX];
    rb_rng_normal_f32(seed, stream, 0, k, c);
    qsort(c, k, sizeof c[0], cmp_float);
    cr_assert_eq(rb_codebook_init(cb, c, k), 0);
}

/* Nearest centroid in exact arithmetic (float differences are exact in double here), the first
 * (lowest) index on a tie. */
static uint8_t brute_nearest(const rb_codebook *cb, float x) {
    size_t best = 0;
    for (size_t i = 1; i < cb->k; i++)
        if (fabs((double) x - cb->centroids[i]) < fabs((double) x - cb->centroids[best])) best = i;
    return (uint8_t) best;
}

Test(codebook, matches_brute_force_nearest) {
    uint64_t seed = rbt_seed();
    const size_t ks[] = {1, 2, 3, 4, 8, 16, 17, 32, 256};
    enum { N = 3000 };
    uint8_t idx[N];
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        rb_codebook cb;
        make_codebook(&cb, ks[t], seed, t);
        float *x = rbt_normal_f32(N, seed, 100 + t);
        /* Plant exact thresholds, centroids and their neighbours. */
        for (size_t i = 0; i + 1 < cb.k && 4 * i + 3 < N; i++) {
            x[4 * i] = cb.thresholds[i];
            x[4 * i + 1] = nextafterf(cb.thresholds[i], INFINITY);
            x[4 * i + 2] = cb.centroids[i];
            x[4 * i + 3] = nextafterf(cb.thresholds[i], -INFINITY);
        }
        cr_assert_eq(rb_codebook_quantize_f32(&cb, x, 1, N, N, idx), 0);
        for (size_t i = 0; i < N; i++)
            cr_assert_eq(idx[i], brute_nearest(&cb, x[i]), "seed %llu k %zu x %a",
                         (unsigned long long) seed, cb.k, x[i]);
        free(x);
    }
}

Test(codebook, exact_midpoints_go_to_the_lower_index) {
    const float c[4] = {-3, -1, 1, 3};
    rb_codebook cb;
    cr_assert_eq(rb_codebook_init(&cb, c, 4), 0);
    const float x[7] = {-2, 0, 2, -2.0001f, 0.0001f, 2.0001f, -0.0f};
    const uint8_t want[7] = {0, 1, 2, 0, 2, 3, 1};
    uint8_t idx[7];
    cr_assert_eq(rb_codebook_quantize_f32(&cb, x, 1, 7, 7, idx), 0);
    cr_assert_arr_eq(idx, want, 7);
    /* A midpoint that is not a float: 1 and 1 + 2^-23 have the midpoint 1 + 2^-24; x = 1 + 2^-23
     * is exactly the upper centroid, x = 1 the lower, and the threshold is rounded down to 1. */
    const float c2[2] = {1.0f, 1.0f + 0x1p-23f};
    cr_assert_eq(rb_codebook_init(&cb, c2, 2), 0);
    cr_assert_eq(cb.thresholds[0], 1.0f);
    const float x2[2] = {1.0f, 1.0f + 0x1p-23f};
    cr_assert_eq(rb_codebook_quantize_f32(&cb, x2, 1, 2, 2, idx), 0);
    cr_assert_eq(idx[0], 0);
    cr_assert_eq(idx[1], 1);
    /* Duplicate centroids: the lower index wins. */
    const float c3[3] = {0, 1, 1};
    cr_assert_eq(rb_codebook_init(&cb, c3, 3), 0);
    const float x3[1] = {1};
    cr_assert_eq(rb_codebook_quantize_f32(&cb, x3, 1, 1, 1, idx), 0);
    cr_assert_eq(idx[0], 1);
}

Test(codebook, dequantize_pack_and_errors) {
    uint64_t seed = rbt_seed();
    rb_codebook cb;
    make_codebook(&cb, 8, seed, 1);
    enum { N = 203 };
    float *x = rbt_normal_f32(N, seed, 2), y[N];
    uint8_t idx[N], packed[N], p2[N], back[N];
    cr_assert_eq(rb_codebook_quantize_f32(&cb, x, 1, N, N, idx), 0);
    cr_assert_eq(rb_codebook_dequantize_f32(&cb, idx, N, y), 0);
    for (int i = 0; i < N; i++) cr_assert_eq(y[i], cb.centroids[idx[i]]);
    for (int bits = 3; bits <= 8; bits++) {
        memset(packed, 0, sizeof packed);
        cr_assert_eq(rb_codebook_quantize_packed_f32(&cb, x, N, bits, packed), 0);
        cr_assert_eq(rb_pack_bits(idx, N, bits, p2), 0);
        cr_assert(memcmp(packed, p2, rb_pack_bytes(N, bits)) == 0, "bits %d", bits);
        cr_assert_eq(rb_unpack_bits(packed, N, bits, back), 0);
        cr_assert(memcmp(back, idx, N) == 0);
    }
    cr_assert_eq(rb_codebook_quantize_packed_f32(&cb, x, N, 2, packed), RB_EINVAL);
    idx[7] = 8;
    cr_assert_eq(rb_codebook_dequantize_f32(&cb, idx, N, y), RB_EINVAL);
    x[100] = NAN;
    cr_assert_eq(rb_codebook_quantize_f32(&cb, x, 1, N, N, idx), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "element 100"), "%s", rb_error_detail());
    cr_assert_eq(rb_codebook_quantize_packed_f32(&cb, x, N, 3, packed), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "element 100"), "%s", rb_error_detail());
    const float bad[3] = {0, 2, 1};
    cr_assert_eq(rb_codebook_init(&cb, bad, 3), RB_EINVAL);
    cr_assert_eq(rb_codebook_init(&cb, bad, 0), RB_EINVAL);
    cr_assert_eq(rb_codebook_init(&cb, bad, 257), RB_EINVAL);
    const float inf[2] = {0, INFINITY};
    cr_assert_eq(rb_codebook_init(&cb, inf, 2), RB_EINVAL);
    free(x);
}

Test(codebook, variants_bit_identical_to_reference) {
    uint64_t seed = rbt_seed();
    const size_t ns[] = {1, 15, 16, 17, 31, 32, 33, 127, 128, 129, 4096};
    const size_t ks[] = {1, 2, 4, 7, 8, 16, 17, 32, 64, 256};
    const rb_op *op = &rb_op_codebook_quant_f32;
    int tested = 0;
    for (size_t vi = 0; vi < op->count; vi++) {
        const rb_variant *v = &op->variants[vi];
        if (strcmp(v->name, "ref") == 0 || !rb_variant_enabled(v)) continue;
        tested++;
        rb_codebook_quant_fn fn = (rb_codebook_quant_fn) v->fn;
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            rb_codebook cb;
            make_codebook(&cb, ks[ki], seed, 1000 + ki);
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
                for (size_t rows = 1; rows <= 3; rows += 2) {
                    size_t n = ns[ni], ld = n + (rows > 1 ? 5 : 0);
                    float *x = rbt_normal_f32(rows * ld + 1, seed, ni * 16 + ki);
                    float *xo = x + 1;
                    for (size_t i = 0; i + 1 < cb.k && 2 * i + 1 < n; i++) {
                        xo[2 * i] = cb.thresholds[i]; /* ties */
                        xo[2 * i + 1] = nextafterf(cb.thresholds[i], INFINITY);
                    }
                    uint8_t *a = malloc(rows * n + 16), *b = malloc(rows * n + 16);
                    memset(a, 0x77, rows * n + 16);
                    memset(b, 0x77, rows * n + 16);
                    cr_assert_eq(rb_codebook_quant_f32_ref(&cb, xo, rows, n, ld, a), 0);
                    int rc = fn(&cb, xo, rows, n, ld, b);
                    if (rc == RB_EDECLINE) {
                        free(a), free(b), free(x);
                        continue;
                    }
                    cr_assert_eq(rc, 0);
                    cr_assert(memcmp(a, b, rows * n + 16) == 0,
                              "%s differs: seed %llu k %zu n %zu rows %zu", v->name,
                              (unsigned long long) seed, cb.k, n, rows);
                    free(a), free(b), free(x);
                }
        }
        rb_codebook cb;
        make_codebook(&cb, 16, seed, 1);
        float bad[40] = {0};
        bad[37] = -INFINITY;
        uint8_t o[40];
        cr_assert_eq(fn(&cb, bad, 1, 40, 40, o), RB_ENUMERIC);
        cr_assert(strstr(rb_error_detail(), "element 37"), "%s", rb_error_detail());
    }
    cr_log_info("codebook_quant_f32: %d fast variants tested", tested);
}

/* rb_codebook_unscaled_threshold(t, s) must be the least float u with RN(u s) > t: checked at u
 * and the float below it, for thresholds of every magnitude and sign (zeros, subnormals, the
 * codec's own sizes, huge) and the codecs' scales 1 / sqrt(d) besides random ones below and
 * above 1. */
Test(codebook, unscaled_threshold_is_the_least_crossing) {
    uint64_t seed = rbt_seed();
    enum { N = 1 << 16 };
    float *t = rbt_normal_f32(N, seed, 1), *s = rbt_normal_f32(N, seed, 2);
    for (size_t i = 0; i < N; i++) {
        static const float mag[] = {1.0f, 1e-3f, 1e-30f, 1e-40f, 1e20f, 1e37f};
        t[i] *= mag[i % 6];
        if (i % 97 == 0) t[i] = i % 2 ? -0.0f : 0.0f;
        static const double dims[] = {128, 1536, 12, 4096, 3};
        s[i] = i % 2 ? fabsf(s[i]) * (i % 4 == 1 ? 1.0f : 1e3f) + 0x1p-20f
                     : (float) (1.0 / sqrt(dims[(i / 2) % 5]));
    }
    for (size_t i = 0; i < N; i++) {
        float u = rb_codebook_unscaled_threshold(t[i], s[i]), below = nextafterf(u, -INFINITY);
        cr_assert(u * s[i] > t[i], "t %a s %a: u %a does not cross (seed %llu)", t[i], s[i], u,
                  (unsigned long long) seed);
        cr_assert(!(below * s[i] > t[i]), "t %a s %a: u %a is not the least (seed %llu)", t[i],
                  s[i], u, (unsigned long long) seed);
    }
    cr_assert(isinf(rb_codebook_unscaled_threshold(INFINITY, 0.5f)));
    cr_assert(isnan(rb_codebook_unscaled_threshold(NAN, 0.5f)));
    free(t);
    free(s);
}
