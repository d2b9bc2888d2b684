/* The polarquant codec through its registry entry: exact sizes and the 3.875-bit rate, edge inputs
 * (fp16 radius range), determinism, the distortion predicted from the angle laws, rejected sizes
 * and parameters. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/lloyd1d.h"
#include "methods/method.h"
#include "tests/testutil.h"

static int make(const char *const *kv, size_t dim, uint64_t seed, void **st) {
    const rb_method *m = rb_method_find("polarquant");
    cr_assert_not_null(m);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    for (size_t i = 0; kv && kv[i]; i += 2)
        cr_assert_eq(rb_params_set(&p, kv[i], kv[i + 1]), 0, "%s=%s", kv[i], kv[i + 1]);
    *st = NULL;
    return m->codec->create(&p, dim, seed, st);
}

static const rb_codec_ops *ops(void) {
    return rb_method_find("polarquant")->codec;
}

Test(codec_polarquant, code_size_and_rate_are_exact) {
    void *st;
    cr_assert_eq(make(NULL, 128, 1, &st), 0, "%s", rb_error_detail());
    /* 64 level-1 angles x 4 bits (32 bytes), 56 upper angles x 2 bits (14 bytes), 8 fp16 radii. */
    cr_assert_eq(ops()->code_bytes(st), 32 + 14 + 16);
    cr_assert_eq(ops()->bits(st), 3.875);
    ops()->destroy(st);
    const char *kv[] = {"bits", "3", "upper_bits", "1", "radius", "fp32", NULL};
    cr_assert_eq(make(kv, 48, 1, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(ops()->code_bytes(st), 9 + 3 + 12); /* 72 bits, 21 bits, 3 fp32 */
    cr_assert_eq(ops()->bits(st), (8.0 * 3 + 7 + 32) / 16);
    ops()->destroy(st);
}

Test(codec_polarquant, edge_inputs_and_the_fp16_radius_range) {
    size_t d = 32;
    void *st;
    cr_assert_eq(make(NULL, d, 3, &st), 0, "%s", rb_error_detail());
    float x[3 * 32] = {0}, y[3 * 32];
    for (size_t j = 0; j < d; j++) {
        x[d + j] = 1e-30f * (float) (j + 1);          /* radius underflows fp16: decodes to 0 */
        x[2 * d + j] = 1e3f * (j % 3 ? 1.0f : -2.0f); /* block radius ~ 6e3: inside fp16 */
    }
    uint8_t *codes = malloc(3 * ops()->code_bytes(st));
    cr_assert_eq(ops()->encode(st, x, 3, codes), 0, "%s", rb_error_detail());
    cr_assert_eq(ops()->decode(st, codes, 3, y), 0);
    for (size_t j = 0; j < 2 * d; j++) cr_assert(fabs(y[j]) < 1e-6f, "y[%zu] = %g", j, y[j]);
    double num = 0, den = 0;
    for (size_t j = 0; j < d; j++) {
        double e = (double) x[2 * d + j] - y[2 * d + j];
        num += e * e;
        den += (double) x[2 * d + j] * x[2 * d + j];
    }
    cr_assert(num / den < 0.1, "relative error %g", num / den);
    /* Beyond 65504 the fp16 radius cannot hold the block: a named error, and fp32 takes it. */
    for (size_t j = 0; j < d; j++) x[j] = 1e30f;
    cr_assert_eq(ops()->encode(st, x, 1, codes), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "fp16"), "%s", rb_error_detail());
    x[3] = NAN;
    cr_assert_eq(ops()->encode(st, x, 1, codes), RB_ENUMERIC);
    ops()->destroy(st);
    const char *kv[] = {"radius", "fp32", NULL};
    cr_assert_eq(make(kv, d, 3, &st), 0);
    x[3] = 1e30f;
    cr_assert_eq(ops()->encode(st, x, 1, codes), 0, "%s", rb_error_detail());
    cr_assert_eq(ops()->decode(st, codes, 1, y), 0);
    for (size_t j = 0; j < d; j++) cr_assert(fabs(y[j] / 1e30f - 1) < 0.5f, "y[%zu] %g", j, y[j]);
    ops()->destroy(st);
    free(codes);
}

Test(codec_polarquant, same_seed_same_codes_across_thread_counts) {
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 257;
    float *x = rbt_normal_f32(count * d, seed, 2);
    uint8_t *codes[2];
    for (int t = 0; t < 2; t++) {
        rb_threads_set(t + 1);
        void *st;
        cr_assert_eq(make(NULL, d, seed, &st), 0, "%s", rb_error_detail());
        codes[t] = malloc(count * ops()->code_bytes(st));
        cr_assert_eq(ops()->encode(st, x, count, codes[t]), 0);
        if (t) cr_assert_eq(memcmp(codes[0], codes[1], count * ops()->code_bytes(st)), 0);
        ops()->destroy(st);
    }
    rb_threads_set(1);
    free(codes[0]);
    free(codes[1]);
    free(x);
}

static double psi_logpdf(double p, const void *ctx) {
    double k = *(const double *) ctx, s = sin(2 * p);
    return s > 0 ? (k - 1) * log(s) : -INFINITY;
}

/* E[cos(angle - its centroid)] at level l under the level's law, for 2^bits levels. */
static double mean_cos(int level, int bits, int lloyd) {
    size_t G = 1 << 16, K = (size_t) 1 << bits;
    if (level == 1) { /* uniform cells of width w: E cos(U(-w/2, w/2)) */
        double w = 2 * M_PI / (double) K;
        return sin(w / 2) / (w / 2);
    }
    double *x = malloc(G * sizeof *x), *wt = malloc(G * sizeof *wt), c[256], k = 1 << (level - 1);
    cr_assert_eq(rb_lloyd1d_grid(0, M_PI / 2, G, psi_logpdf, &k, x, wt), 0);
    for (size_t j = 0; j < K; j++) c[j] = ((double) j + 0.5) * M_PI / 2 / (double) K;
    if (lloyd) cr_assert_eq(rb_lloyd1d_solve(x, wt, G, M_PI / 2 / G, K, 0, c, NULL), 0);
    double num = 0, den = 0;
    size_t j = 0;
    for (size_t i = 0; i < G; i++) {
        while (j + 1 < K && x[i] > (c[j] + c[j + 1]) / 2) j++;
        num += wt[i] * cos(x[i] - c[j]);
        den += wt[i];
    }
    free(x);
    free(wt);
    return num / den;
}

/* The defining property: after a Haar rotation the 15 angles of a block are independent with the
 * level laws, and the block direction is a product of (cos, sin) factors, so
 *   E <a, a^> = prod_l E cos(delta_l)  and  vNMSE = 2 (1 - prod_l E cos(delta_l))
 * (radius exact up to fp16). 0.03208 for the Lloyd-Max codebooks, 0.05068 for uniform cells.
 * 4000 unit vectors at d = 128: standard error ~0.2%; tolerance 2%. */
Test(codec_polarquant, distortion_matches_the_angle_laws) {
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 4000;
    float *x = rbt_normal_f32(count * d, seed, 5), *y = malloc(count * d * sizeof *y);
    for (int lloyd = 0; lloyd < 2; lloyd++) {
        double g = mean_cos(1, 4, lloyd);
        for (int l = 2; l <= 4; l++) g *= mean_cos(l, 2, lloyd);
        double want = 2 * (1 - g);
        const char *kv[] = {"codebook", lloyd ? "lloyd" : "uniform", NULL};
        void *st;
        cr_assert_eq(make(kv, d, seed, &st), 0, "%s", rb_error_detail());
        uint8_t *codes = malloc(count * ops()->code_bytes(st));
        cr_assert_eq(ops()->encode(st, x, count, codes), 0);
        cr_assert_eq(ops()->decode(st, codes, count, y), 0);
        double e = 0;
        for (size_t i = 0; i < count; i++) {
            double num = 0, den = 0;
            for (size_t j = 0; j < d; j++) {
                double df = (double) x[i * d + j] - y[i * d + j];
                num += df * df;
                den += (double) x[i * d + j] * x[i * d + j];
            }
            e += num / den / (double) count;
        }
        cr_assert(fabs(e / want - 1) < 0.02, "%s: vnmse %g, predicted %g (seed %llu)", kv[1], e,
                  want, (unsigned long long) seed);
        free(codes);
        ops()->destroy(st);
    }
    free(x);
    free(y);
}

Test(codec_polarquant, rejected_sizes_and_parameters) {
    void *st;
    cr_assert_eq(make(NULL, 100, 1, &st), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "96") && strstr(rb_error_detail(), "112"), "%s",
              rb_error_detail());
    cr_assert_null(st);
    cr_assert_eq(make(NULL, 8, 1, &st), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "16"), "%s", rb_error_detail());
    const char *rht[] = {"rotation", "rht", NULL};
    cr_assert_eq(make(rht, 80, 1, &st), 0, "%s", rb_error_detail()); /* 80 = 20 x 4: an order */
    ops()->destroy(st);
    const rb_method *m = rb_method_find("polarquant");
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    cr_assert_neq(rb_params_set(&p, "radius", "bf16"), 0);
    cr_assert_neq(rb_params_set(&p, "bits", "9"), 0);
}
