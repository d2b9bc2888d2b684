/* Hadamard K * 2^m: tables against the construction rules, the Kronecker apply against the dense
 * kron(H_K, H_{2^m}) / sqrt(n), variants against the reference, inverse, norms and the lookup. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static const size_t all_k[] = {1, 12, 20, 28, 36, 40, 44, 52, 60, 108, 140, 156, 172};
#define NALL (sizeof all_k / sizeof all_k[0])

/* Legendre symbol by Euler's criterion, a^((q-1)/2) mod q: a different route from the kernel's
 * table of squares. */
static int euler_chi(long a, long q) {
    a = ((a % q) + q) % q;
    if (a == 0) return 0;
    long r = 1, b = a, e = (q - 1) / 2;
    while (e) {
        if (e & 1) r = r * b % q;
        b = b * b % q;
        e >>= 1;
    }
    return r == 1 ? 1 : -1;
}

Test(hadamard, every_table_is_hadamard) {
    for (size_t t = 0; t < NALL; t++) {
        size_t K = all_k[t];
        const int8_t *h = rb_hadamard_matrix(K);
        cr_assert_not_null(h, "K=%zu", K);
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) {
                cr_assert(h[i * K + j] == 1 || h[i * K + j] == -1, "K=%zu (%zu,%zu)", K, i, j);
                long s = 0;
                for (size_t k = 0; k < K; k++) s += h[i * K + k] * h[j * K + k];
                cr_assert_eq(s, i == j ? (long) K : 0, "K=%zu H H^T (%zu,%zu) = %ld", K, i, j, s);
            }
    }
    cr_assert_null(rb_hadamard_matrix(0));
    cr_assert_null(rb_hadamard_matrix(24));
    cr_assert_null(rb_hadamard_matrix(148));
}

Test(hadamard, paley1_tables_follow_the_rule_and_are_skew) {
    static const size_t ks[] = {12, 20, 44, 60, 108, 140};
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        size_t K = ks[t];
        long q = (long) K - 1;
        const int8_t *h = rb_hadamard_matrix(K);
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) {
                int want;
                if (i == 0)
                    want = j == 0 ? 1 : -1;
                else if (j == 0)
                    want = 1;
                else
                    want = euler_chi((long) i - (long) j, q) + (i == j);
                cr_assert_eq(h[i * K + j], want, "K=%zu (%zu,%zu)", K, i, j);
                cr_assert_eq(h[i * K + j] + h[j * K + i], i == j ? 2 : 0, "K=%zu skew", K);
            }
    }
}

Test(hadamard, paley2_tables_follow_the_rule_and_are_symmetric) {
    static const size_t ks[] = {28, 36};
    for (size_t t = 0; t < 2; t++) {
        size_t K = ks[t], c = K / 2;
        long q = (long) c - 1;
        const int8_t *h = rb_hadamard_matrix(K);
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) {
                size_t a = i % c, b = j % c;
                int cv = (a == 0 && b == 0)   ? 0
                         : (a == 0 || b == 0) ? 1
                                              : euler_chi((long) b - (long) a, q);
                int d = a == b;
                int want = i < c && j < c ? cv + d : (i >= c && j >= c) ? -cv - d : cv - d;
                cr_assert_eq(h[i * K + j], want, "K=%zu (%zu,%zu)", K, i, j);
                cr_assert_eq(h[i * K + j], h[j * K + i], "K=%zu symmetric", K);
            }
    }
}

Test(hadamard, h40_doubles_h20) {
    const int8_t *h20 = rb_hadamard_matrix(20), *h40 = rb_hadamard_matrix(40);
    for (size_t i = 0; i < 40; i++)
        for (size_t j = 0; j < 40; j++) {
            int s = (i >= 20 && j >= 20) ? -1 : 1;
            cr_assert_eq(h40[i * 40 + j], s * h20[(i % 20) * 20 + j % 20], "(%zu,%zu)", i, j);
        }
}

/* Williamson: block (0,0) is the circulant A with the published first row; the 4 x 4 block
 * pattern holds (block (1,1) = A, block (1,0) = -B, block (0,1) = B). */
Test(hadamard, williamson_tables_have_the_block_structure) {
    static const size_t ks[] = {52, 156, 172};
    static const char *const a_rows[] = {"+-+--++++--+-", "+++--+-+-----+--++----++--+-----+-+--++",
                                         "+---++--++++-+-+++-++--++-+++-+-++++--++---"};
    for (size_t t = 0; t < 3; t++) {
        size_t K = ks[t], c = K / 4;
        const int8_t *h = rb_hadamard_matrix(K);
        for (size_t i = 0; i < c; i++)
            for (size_t j = 0; j < c; j++) {
                int a = a_rows[t][(j + c - i) % c] == '+' ? 1 : -1;
                cr_assert_eq(h[i * K + j], a, "K=%zu A(%zu,%zu)", K, i, j);
                cr_assert_eq(h[(c + i) * K + c + j], a, "K=%zu block (1,1)", K);
                cr_assert_eq(h[(c + i) * K + j], -h[i * K + c + j], "K=%zu -B", K);
                cr_assert_eq(h[i * K + j], h[j * K + i], "K=%zu A symmetric", K);
            }
    }
}

Test(hadamard, lookup_parity_with_get_hadk) {
    static const struct {
        size_t n, K;
        int m;
    } cases[] = {{688, 172, 2},   {11008, 172, 6}, {14336, 28, 9},  {13824, 108, 7},
                 {5120, 40, 7},   {3072, 12, 8},   {5632, 44, 7},   {1, 1, 0},
                 {4096, 1, 12},   {12, 12, 0},     {40, 40, 0},     {20, 20, 0},
                 {28672, 28, 10}, {1536, 12, 7},   {576, 36, 4},    {8192, 1, 13},
                 {60, 60, 0},     {120, 60, 1},    {52 * 8, 52, 3}, {156 * 2, 156, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t K = 0;
        int m = -1;
        cr_assert_eq(rb_hadamard_lookup(cases[i].n, &K, &m), 0, "n=%zu", cases[i].n);
        cr_assert_eq(K, cases[i].K, "n=%zu K=%zu", cases[i].n, K);
        cr_assert_eq(m, cases[i].m, "n=%zu m=%d", cases[i].n, m);
    }
}

Test(hadamard, lookup_rejects_with_neighbours) {
    size_t K = 99;
    rb_error_clear();
    cr_assert_eq(rb_hadamard_lookup(4864, &K, NULL), RB_ESIZE);
    cr_assert_eq(K, 99, "K must not be written on failure");
    cr_assert(strstr(rb_error_detail(), "n = 4864") != NULL, "%s", rb_error_detail());
    cr_assert(strstr(rb_error_detail(), "4608, 4992") != NULL, "%s", rb_error_detail());
    cr_assert_eq(rb_hadamard_lookup(0, NULL, NULL), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "none, 1") != NULL, "%s", rb_error_detail());
    /* 172 divides 516 first, and 3 is not a power of two: get_hadK asserts; so do we. */
    cr_assert_eq(rb_hadamard_lookup(516, NULL, NULL), RB_ESIZE);
    cr_assert_eq(rb_hadamard_lookup(100, NULL, NULL), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "96, 104") != NULL, "%s", rb_error_detail());
    cr_assert_eq(rb_hadamard_lookup(18944, NULL, NULL), RB_ESIZE); /* Qwen2.5-7B needs 148 */
    float x[100] = {0};
    cr_assert_eq(rb_hadamard_f32(x, 100, 1, 100, RB_FORWARD), RB_ESIZE);
    cr_assert_eq(rb_hadamard_f32(x, 12, 2, 11, RB_FORWARD), RB_EINVAL);
    double xd[26] = {0};
    cr_assert_eq(rb_hadamard_f64(xd, 26, 1, 26, RB_FORWARD), RB_ESIZE);
}

/* Entry (r, c) of kron(H_K, H_P) (without the scale), H_K transposed for the inverse. */
static double kron_entry(const int8_t *hk, size_t K, size_t P, size_t r, size_t c, rb_dir dir) {
    size_t a = r / P, b = c / P;
    double hkv = dir == RB_INVERSE ? hk[b * K + a] : hk[a * K + b];
    return __builtin_popcountll((r % P) & (c % P)) & 1 ? -hkv : hkv;
}

/* The fp64 apply against the dense kron product, every output for the small n and a sample of
 * outputs for the large ones; the fp32 apply against the fp64 one. */
static void check_dense(size_t n, size_t rows_checked, uint64_t seed) {
    size_t K;
    int m;
    cr_assert_eq(rb_hadamard_lookup(n, &K, &m), 0);
    const int8_t *hk = rb_hadamard_matrix(K);
    size_t P = n / K;
    for (int d = 0; d < 2; d++) {
        rb_dir dir = d ? RB_INVERSE : RB_FORWARD;
        double *x = rbt_normal_f64(n, seed, n * 2 + d);
        double *y = malloc(n * sizeof *y);
        float *yf = malloc(n * sizeof *yf);
        memcpy(y, x, n * sizeof *y);
        for (size_t i = 0; i < n; i++) yf[i] = (float) x[i];
        cr_assert_eq(rb_hadamard_f64(y, n, 1, n, dir), 0);
        cr_assert_eq(rb_hadamard_f32(yf, n, 1, n, dir), 0);
        size_t step = rows_checked >= n ? 1 : n / rows_checked;
        for (size_t r = (seed % step); r < n; r += step) {
            double s = 0;
            for (size_t c = 0; c < n; c++) s += kron_entry(hk, K, P, r, c, dir) * x[c];
            s /= sqrt((double) n);
            cr_assert(fabs(s - y[r]) < 1e-12 * sqrt((double) n), "n=%zu dir=%d r=%zu seed=%llu", n,
                      d, r, (unsigned long long) seed);
        }
        float *yd = malloc(n * sizeof *yd);
        for (size_t i = 0; i < n; i++) yd[i] = (float) y[i];
        double err = rbt_max_relerr_f32(yf, yd, n);
        cr_assert(err < 2e-5, "n=%zu fp32 vs fp64 err %g seed=%llu", n, err,
                  (unsigned long long) seed);
        free(x);
        free(y);
        free(yf);
        free(yd);
    }
}

Test(hadamard, equals_dense_kron_small) {
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 2, 12, 20, 40, 48, 688, 5632, 36 * 8, 52 * 4, 156, 140 * 2};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) check_dense(ns[i], ns[i], seed);
}

Test(hadamard, equals_dense_kron_large_sampled) {
    uint64_t seed = rbt_seed();
    check_dense(11008, 48, seed);
    check_dense(14336, 48, seed);
    check_dense(13824, 32, seed);
}

/* Every enabled variant gives the reference's bits: odd counts, padded strides, tails of the
 * 32-column tile (P = 1, 2, 31, 32, 33-ish through the sizes below). */
Test(hadamard, variants_match_reference_bits) {
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {12, 24, 40, 28 * 16, 44 * 32, 172 * 64, 20 * 128, 60 * 4, 108 * 2};
    static const size_t counts[] = {1, 3, 7};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < 3; b++)
            for (int d = 0; d < 2; d++) {
                size_t n = ns[a], count = counts[b], stride = n + (b == 1 ? 3 : 0);
                size_t K;
                cr_assert_eq(rb_hadamard_lookup(n, &K, NULL), 0);
                size_t len = (count - 1) * stride + n;
                float *x = rbt_normal_f32(len, seed, n * 8 + b * 2 + (size_t) d);
                float *ref = malloc(len * sizeof *ref);
                float *got = malloc(len * sizeof *got);
                memcpy(ref, x, len * sizeof *ref);
                rb_hadamard_f32_ref(ref, n, count, stride, K, rb_hadamard_matrix(K), (rb_dir) d);
                for (size_t v = 0; v < rb_op_hadamard_f32.count; v++) {
                    const rb_variant *var = &rb_op_hadamard_f32.variants[v];
                    if (!rb_variant_enabled(var)) continue;
                    memcpy(got, x, len * sizeof *got);
                    int rc = ((rb_hadamard_f32_fn) var->fn)(got, n, count, stride, K,
                                                            rb_hadamard_matrix(K), (rb_dir) d);
                    cr_assert_eq(rc, 0);
                    cr_assert(memcmp(got, ref, len * sizeof *got) == 0,
                              "variant %s n=%zu count=%zu stride=%zu dir=%d seed=%llu", var->name,
                              n, count, stride, d, (unsigned long long) seed);
                }
                /* and the public entry: padding between rows untouched */
                memcpy(got, x, len * sizeof *got);
                cr_assert_eq(rb_hadamard_f32(got, n, count, stride, (rb_dir) d), 0);
                cr_assert(memcmp(got, ref, len * sizeof *got) == 0, "public n=%zu", n);
                free(x);
                free(ref);
                free(got);
            }
}

Test(hadamard, norm_preserved_and_inverse_undoes_forward) {
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 12, 688, 5120, 5632, 11008, 14336};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = ns[i], count = 3;
        double *x = rbt_normal_f64(n * count, seed, n);
        double *y = malloc(n * count * sizeof *y);
        float *yf = malloc(n * count * sizeof *yf);
        memcpy(y, x, n * count * sizeof *y);
        for (size_t j = 0; j < n * count; j++) yf[j] = (float) x[j];
        cr_assert_eq(rb_hadamard_f64(y, n, count, n, RB_FORWARD), 0);
        cr_assert_eq(rb_hadamard_f32(yf, n, count, n, RB_FORWARD), 0);
        for (size_t r = 0; r < count; r++) {
            double nx = 0, ny = 0, nf = 0;
            for (size_t j = 0; j < n; j++) {
                nx += x[r * n + j] * x[r * n + j];
                ny += y[r * n + j] * y[r * n + j];
                nf += (double) yf[r * n + j] * yf[r * n + j];
            }
            cr_assert(fabs(ny - nx) < 1e-12 * nx, "n=%zu norm f64 seed=%llu", n,
                      (unsigned long long) seed);
            cr_assert(fabs(nf - nx) < 1e-5 * nx, "n=%zu norm f32 seed=%llu", n,
                      (unsigned long long) seed);
        }
        cr_assert_eq(rb_hadamard_f64(y, n, count, n, RB_INVERSE), 0);
        cr_assert_eq(rb_hadamard_f32(yf, n, count, n, RB_INVERSE), 0);
        for (size_t j = 0; j < n * count; j++) {
            cr_assert(fabs(y[j] - x[j]) < 1e-12, "n=%zu f64 round trip seed=%llu", n,
                      (unsigned long long) seed);
            cr_assert(fabs(yf[j] - x[j]) < 2e-5 * fmax(1.0, fabs(x[j])), "n=%zu f32 round trip", n);
        }
        free(x);
        free(y);
        free(yf);
    }
}

Test(hadamard, same_bits_with_one_or_two_threads) {
    uint64_t seed = rbt_seed();
    size_t n = 688, count = 200;
    float *x = rbt_normal_f32(n * count, seed, 1);
    float *y = malloc(n * count * sizeof *y);
    memcpy(y, x, n * count * sizeof *y);
    cr_assert_eq(rb_threads_set(1), 0);
    cr_assert_eq(rb_hadamard_f32(x, n, count, n, RB_FORWARD), 0);
    cr_assert_eq(rb_threads_set(2), 0);
    cr_assert_eq(rb_hadamard_f32(y, n, count, n, RB_FORWARD), 0);
    rb_threads_set(1);
    cr_assert(memcmp(x, y, n * count * sizeof *x) == 0, "seed=%llu", (unsigned long long) seed);
    free(x);
    free(y);
}

Test(hadamard, cost_counts_fwht_and_mix) {
    rb_cost c = rb_hadamard_cost(688, 2, 4);
    cr_assert_eq(c.flops, 2.0 * 688 * (2 + 172)); /* butterflies and mix, no normalization */
    /* a power of two costs what the FWHT does: the two entry points report one GFLOP/s */
    cr_assert_eq(rb_hadamard_cost(4096, 3, 4).flops, rb_fwht_cost(4096, 3, 4).flops);
    cr_assert_eq(c.bytes, 2.0 * 2 * 688 * 4);
    cr_assert_eq(rb_hadamard_cost(100, 1, 4).flops, 0.0);
}

/* Runs every enabled variant on a copy of x (len floats: count rows of n at stride) and checks
 * that it leaves the reference's bits everywhere (padding between rows included). */
static void check_variants(const float *x, size_t len, size_t n, size_t count, size_t stride,
                           rb_dir dir, uint64_t seed) {
    size_t K;
    cr_assert_eq(rb_hadamard_lookup(n, &K, NULL), 0);
    float *ref = malloc(len * sizeof *ref);
    float *got = malloc(len * sizeof *got);
    memcpy(ref, x, len * sizeof *ref);
    cr_assert_eq(rb_hadamard_f32_ref(ref, n, count, stride, K, rb_hadamard_matrix(K), dir), 0);
    for (size_t v = 0; v < rb_op_hadamard_f32.count; v++) {
        const rb_variant *var = &rb_op_hadamard_f32.variants[v];
        if (!rb_variant_enabled(var)) continue;
        memcpy(got, x, len * sizeof *got);
        int rc =
            ((rb_hadamard_f32_fn) var->fn)(got, n, count, stride, K, rb_hadamard_matrix(K), dir);
        cr_assert_eq(rc, 0, "variant %s declined n=%zu", var->name, n);
        cr_assert(memcmp(got, ref, len * sizeof *got) == 0,
                  "variant %s n=%zu (K=%zu) count=%zu stride=%zu dir=%d seed=%llu", var->name, n, K,
                  count, stride, (int) dir, (unsigned long long) seed);
    }
    free(ref);
    free(got);
}

/* Every K of the list with m = 0..7 (P = 1 .. 128: the SIMD variants' in-register FWHT of short
 * rows on tiles gathered across rows for P below the tile width, whole-row tiles above), one
 * row, an odd count at an odd stride (unaligned rows), and 37 rows of the small sizes (several
 * gathered tiles and a partial last one), both directions. */
Test(hadamard, variants_match_reference_bits_every_k_and_m) {
    uint64_t seed = rbt_seed();
    for (int a = 0; a < RB_HADAMARD_NK; a++)
        for (int m = 0; m <= 7; m++)
            for (int b = 0; b < 3; b++) {
                size_t n = rb_hadamard_ks[a] << m;
                size_t count = b == 0 ? 1 : b == 1 ? 5 : 37, stride = n + (b == 1 ? 3 : 0);
                if (b == 2 && n > 2048) continue;
                size_t len = (count - 1) * stride + n;
                float *x = rbt_normal_f32(len, seed, 1000 + (size_t) (a * 64 + m * 4 + b));
                for (int d = 0; d < 2; d++)
                    check_variants(x, len, n, count, stride, (rb_dir) d, seed);
                free(x);
            }
}

/* The LLM sizes: 11008 = 172 * 64 and 14336 = 28 * 512, three rows at a padded stride. */
Test(hadamard, variants_match_reference_bits_llm_sizes) {
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {11008, 14336};
    for (size_t i = 0; i < 2; i++) {
        size_t n = ns[i], count = 3, stride = n + 5, len = (count - 1) * stride + n;
        float *x = rbt_normal_f32(len, seed, 77 + i);
        for (int d = 0; d < 2; d++) check_variants(x, len, n, count, stride, (rb_dir) d, seed);
        free(x);
    }
}

/* Each enabled variant, 1 and 2 threads, with counts spanning several chunks (grain 65536 / n
 * rows): the same bits, equal to the reference's. */
Test(hadamard, variants_same_bits_with_one_or_two_threads) {
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {24, 688, 11008, 14336};
    static const size_t counts[] = {6000, 200, 13, 9};
    for (size_t i = 0; i < 4; i++) {
        size_t n = ns[i], count = counts[i], len = n * count, K;
        cr_assert_eq(rb_hadamard_lookup(n, &K, NULL), 0);
        float *x = rbt_normal_f32(len, seed, 500 + i);
        float *ref = malloc(len * sizeof *ref);
        float *one = malloc(len * sizeof *one);
        float *two = malloc(len * sizeof *two);
        memcpy(ref, x, len * sizeof *ref);
        rb_hadamard_f32_ref(ref, n, count, n, K, rb_hadamard_matrix(K), RB_FORWARD);
        for (size_t v = 0; v < rb_op_hadamard_f32.count; v++) {
            const rb_variant *var = &rb_op_hadamard_f32.variants[v];
            if (!rb_variant_enabled(var)) continue;
            rb_hadamard_f32_fn fn = (rb_hadamard_f32_fn) var->fn;
            memcpy(one, x, len * sizeof *one);
            memcpy(two, x, len * sizeof *two);
            cr_assert_eq(rb_threads_set(1), 0);
            cr_assert_eq(fn(one, n, count, n, K, rb_hadamard_matrix(K), RB_FORWARD), 0);
            cr_assert_eq(rb_threads_set(2), 0);
            cr_assert_eq(fn(two, n, count, n, K, rb_hadamard_matrix(K), RB_FORWARD), 0);
            rb_threads_set(1);
            cr_assert(memcmp(one, two, len * sizeof *one) == 0, "variant %s n=%zu seed=%llu",
                      var->name, n, (unsigned long long) seed);
            cr_assert(memcmp(one, ref, len * sizeof *one) == 0, "variant %s n=%zu seed=%llu",
                      var->name, n, (unsigned long long) seed);
        }
        free(x);
        free(ref);
        free(one);
        free(two);
    }
}

/* The SIMD variants read their own coefficient tables, so they decline any other hk (the tiled
 * variant and the reference honour it); the public entry runs the best enabled variant. */
Test(hadamard, simd_variants_decline_foreign_tables) {
    size_t K = 44, n = 44 * 32;
    int8_t *hk = malloc(K * K);
    memcpy(hk, rb_hadamard_matrix(K), K * K);
    float *x = calloc(n, sizeof *x);
    const char *best = NULL;
    for (size_t v = 0; v < rb_op_hadamard_f32.count; v++) {
        const rb_variant *var = &rb_op_hadamard_f32.variants[v];
        if (!rb_variant_enabled(var)) continue;
        if (!best) best = var->name;
        int rc = ((rb_hadamard_f32_fn) var->fn)(x, n, 1, n, K, hk, RB_FORWARD);
        int simd = strcmp(var->name, "avx512") == 0 || strcmp(var->name, "avx2") == 0;
        cr_assert_eq(rc, simd ? RB_EDECLINE : 0, "variant %s", var->name);
    }
    cr_assert_eq(rb_hadamard_f32(x, n, 1, n, RB_FORWARD), 0);
    cr_assert_str_eq(rb_kernel_last(&rb_op_hadamard_f32), best);
    free(hk);
    free(x);
}

/* Inputs in {-1, -0, +0, 1} and rows of +-0 only: the sums cancel exactly all the time and sum
 * zeros of either sign, so the signs of zero the variants produce (FMA by -1, sign-flipped adds,
 * in-register FWHT, the +0 start of every sum) must follow the reference's adds; with normal
 * inputs a zero never occurs. */
Test(hadamard, variants_match_reference_signed_zeros) {
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {12 * 4, 40 * 16, 172 * 2, 28 * 64, 60 * 32};
    static const float vals[4] = {-1.0f, -0.0f, 0.0f, 1.0f};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = ns[i], count = 9, len = n * count;
        float *x = malloc(len * sizeof *x);
        uint32_t *bits = malloc(len * sizeof *bits);
        rb_rng_bits(seed, 900 + i, 0, len, bits);
        for (size_t j = 0; j < len; j++) /* every third row all +-0: zero sums of zeros */
            x[j] = (j / n) % 3 == 0 ? vals[1 + (bits[j] & 1)] : vals[bits[j] & 3];
        free(bits);
        for (int d = 0; d < 2; d++) check_variants(x, len, n, count, n, (rb_dir) d, seed);
        free(x);
    }
}
