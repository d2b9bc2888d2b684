/* The codec evaluator's inner-product metrics ip_slope and ip_bias: their standard errors cover
 * the true value of a synthetic codec whose shrinkage varies from vector to vector (the case a
 * per-pair error understates) and shrink as 1/sqrt(n); unbiased codecs give ip_bias within a few
 * standard errors of 0, TurboQuant_mse at 1 bit its computed shrinkage c1^2 - 1; scores that
 * are not finite are errors naming the pair. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/eval.h"
#include "methods/method.h"
#include "tests/codec_fake.h"
#include "tests/testutil.h"

/* ---- a synthetic codec: x_hat = a(x) x + noise(x), a(x) = A + W u(x), u uniform on [-1, 1] ----
 * The code is x itself; a and the noise come from a hash of its bits, so decode is a function of
 * the code. With unit x and y independent of x, E[<y,x_hat> | <y,x>] = A <y,x>: the slope is A
 * and ip_bias is A - 1. */
static double A = 0.7, W = 0.25, NOISE = 0.3; /* each test runs in a process of its own */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s) {
    return ((double) (splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
}
static int fake_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    size_t d = ((rbt_codec_fake *) state)->dim;
    for (size_t i = 0; i < count; i++) {
        const float *x = (const float *) (codes + i * rbt_codec_fake_code_bytes(state));
        uint64_t h = 1469598103934665603ull;
        for (size_t j = 0; j < d; j++) {
            uint32_t b;
            memcpy(&b, &x[j], sizeof b);
            h = (h ^ b) * 1099511628211ull;
        }
        double a = A + W * (2 * unif(&h) - 1);
        for (size_t j = 0; j < d; j++) {
            double g = sqrt(-2 * log(unif(&h))) * cos(2 * M_PI * unif(&h));
            xhat[i * d + j] = (float) (a * x[j] + NOISE / sqrt((double) d) * g);
        }
    }
    return 0;
}
static const rb_codec_ops fake_ops = {RBT_CODEC_FAKE_OPS, .decode = fake_decode};
static const rb_method fake_method = {
    .name = "fake", .family = RB_FAMILY_CODEC, .codec = &fake_ops};

/* ---- running the evaluator ---- */

typedef struct got {
    double slope, slope_se, bias, bias_se;
    size_t slope_n, bias_n;
} got;

static int collect(void *ctx, const rb_metric_value *v) {
    got *g = ctx;
    if (!strcmp(v->metric->name, "ip_slope")) {
        g->slope = v->value;
        g->slope_se = v->stderr_;
        g->slope_n = v->n;
    } else if (!strcmp(v->metric->name, "ip_bias")) {
        g->bias = v->value;
        g->bias_se = v->stderr_;
        g->bias_n = v->n;
    }
    return 0;
}

static got eval(const rb_method *m, const rb_params *p, size_t dim, size_t count, size_t nq,
                uint64_t seed) {
    rb_dataset ds;
    char dims[32], counts[32], nqs[32];
    snprintf(dims, sizeof dims, "%zu", dim);
    snprintf(counts, sizeof counts, "%zu", count);
    snprintf(nqs, sizeof nqs, "%zu", nq);
    cr_assert_eq(
        rbt_load_dataset(&ds, "sphere", seed, "dim", dims, "count", counts, "queries", nqs, NULL),
        0, "%s", rb_error_detail());
    static const char *const names[] = {"ip_slope", "ip_bias"};
    got g = {NAN, NAN, NAN, NAN, 0, 0};
    int rc = rb_eval_codec(m, p, &ds, seed + 1, names, 2, collect, &g);
    cr_assert_eq(rc, 0, "%s: %s", m->name, rb_error_detail());
    rb_dataset_free(&ds);
    return g;
}

static got eval_fake(size_t count, size_t nq, uint64_t seed) {
    rb_params p;
    rb_params_init(&p, NULL, 0);
    return eval(&fake_method, &p, 32, count, nq, seed);
}

/* ---- standard errors ---- */

/* Over 60 independent datasets the z-scores (value - truth) / stderr of both metrics have a mean
 * square near 1 (chi^2_60 / 60 lies outside [0.35, 2.2] with probability about 1e-6; [0.45, 1.75]
 * failed about once in 1400 runs; 25 runs of this test averaged 0.95). An error 2x too large
 * gives a mean square near 0.25, below 0.35 in 98% of the runs. The
 * vector-to-vector spread of a(x) dominates, so an error that took the 300 x 40 pairs as
 * independent would be about 4x too small and the mean square about 16. */
Test(eval_ip, stderr_covers_the_true_slope_and_bias) {
    enum { RUNS = 60 };
    uint64_t seed = rbt_seed();
    double z2s = 0, z2b = 0, zmax = 0;
    for (int r = 0; r < RUNS; r++) {
        got g = eval_fake(300, 40, seed + 1000 * (uint64_t) r);
        cr_assert(g.slope_se > 0 && g.bias_se > 0, "se %g %g", g.slope_se, g.bias_se);
        /* n counts what the error is over: the vectors, as d_dprod's */
        cr_assert_eq(g.slope_n, 300);
        cr_assert_eq(g.bias_n, 300);
        double zs = (g.slope - A) / g.slope_se, zb = (g.bias - (A - 1)) / g.bias_se;
        z2s += zs * zs / RUNS;
        z2b += zb * zb / RUNS;
        zmax = fmax(zmax, fmax(fabs(zs), fabs(zb)));
    }
    cr_assert(z2s > 0.35 && z2s < 2.2, "slope: mean z^2 %g (seed %llu)", z2s,
              (unsigned long long) seed);
    cr_assert(z2b > 0.35 && z2b < 2.2, "bias: mean z^2 %g (seed %llu)", z2b,
              (unsigned long long) seed);
    cr_assert(zmax < 6.5, "largest |z| %g (seed %llu)", zmax, (unsigned long long) seed);
}

/* Four times the base vectors halve both errors (the queries stay the same in number). */
Test(eval_ip, stderr_shrinks_as_one_over_sqrt_n) {
    uint64_t seed = rbt_seed();
    got small = eval_fake(500, 40, seed), big = eval_fake(2000, 40, seed + 7);
    double rs = small.slope_se / big.slope_se, rb = small.bias_se / big.bias_se;
    cr_assert(rs > 1.6 && rs < 2.5, "slope se %g -> %g (ratio %g)", small.slope_se, big.slope_se,
              rs);
    cr_assert(rb > 1.6 && rb < 2.5, "bias se %g -> %g (ratio %g)", small.bias_se, big.bias_se, rb);
}

/* An exact codec (a = 1, no noise): slope 1 and bias 0 with zero error, up to fp32 rounding. A
 * uniform shrinkage a = 0.5 gives slope 0.5 and bias -0.5 the same way. */
Test(eval_ip, exact_and_uniformly_shrunk_codecs) {
    W = NOISE = 0;
    for (A = 1; A > 0.4; A -= 0.5) {
        got g = eval_fake(400, 30, rbt_seed());
        cr_assert(fabs(g.slope - A) < 1e-6, "a %g: slope %g", A, g.slope);
        cr_assert(fabs(g.bias - (A - 1)) < 1e-6, "a %g: bias %g", A, g.bias);
        cr_assert(g.slope_se < 1e-6 && g.bias_se < 1e-6, "se %g %g", g.slope_se, g.bias_se);
    }
}

/* ---- real codecs ---- */

/* ip_bias of `method` with params over R seeds (a fresh dataset, rotation and sketch each): the
 * mean and its standard error over the seeds, which covers the sketch-to-sketch spread as well
 * as the vectors' (QJL is unbiased over its matrix S, not for each S). */
enum { R = 16 };
static void bias_over_seeds(const char *method, const char *const *kv, double *mean, double *se,
                            double *slope) {
    const rb_method *m = rb_method_find(method);
    cr_assert_not_null(m, "%s", method);
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    for (; *kv; kv += 2) cr_assert_eq(rb_params_set(&p, kv[0], kv[1]), 0, "%s", rb_error_detail());
    double v[R], s = 0;
    uint64_t seed = rbt_seed();
    *slope = 0;
    for (int r = 0; r < R; r++) {
        got g = eval(m, &p, 128, 1000, 100, seed + 100 * (uint64_t) r);
        v[r] = g.bias;
        *slope += g.slope / R;
    }
    rb_mean_se(v, R, mean, &s);
    *se = s;
}

static void expect_unbiased(const char *method, const char *const *kv) {
    double mean, se, slope;
    bias_over_seeds(method, kv, &mean, &se, &slope);
    /* 10 standard errors over R = 16 seeds: |t_15| > 10 has probability about 5e-8 (at 4 the
     * test failed about once in 900 runs); a biased method is hundreds of them off */
    cr_assert(se > 0 && fabs(mean) < 10 * se, "%s %s=%s: ip_bias %g +- %g", method, kv[0], kv[1],
              mean, se);
    cr_assert(fabs(slope - 1) < 0.03, "%s: slope %g", method, slope);
}

Test(eval_ip, eden_unbiased_has_no_bias) {
    expect_unbiased("eden", (const char *const[]){"bits", "2", "scale", "unbiased", NULL});
}

Test(eval_ip, turboquant_prod_paper_mode_has_no_bias) {
    expect_unbiased("turboquant_prod", (const char *const[]){"bits", "2", "mode", "paper", NULL});
}

Test(eval_ip, qjl_has_no_bias) {
    expect_unbiased("qjl", (const char *const[]){"bits", "1", NULL});
}

/* TurboQuant_mse at 1 bit decodes x_hat = c1 / sqrt(d) R^T sign(R x) with c1 = E|z| (the
 * centroid of a coordinate z = sqrt(d) x_j of a uniform point on the sphere), so for unit x
 * <x, x_hat> averages c1 E|z| = c1^2 for every rotation R, and ip_bias is c1^2 - 1 (2/pi - 1 as
 * d grows): -0.361 at d = 128, far from 0. */
Test(eval_ip, turboquant_mse_one_bit_has_the_computed_bias) {
    double d = 128;
    double c1 = sqrt(d) * exp(lgamma(d / 2) - lgamma((d + 1) / 2)) / sqrt(M_PI);
    double want = c1 * c1 - 1, mean, se, slope;
    bias_over_seeds("turboquant_mse", (const char *const[]){"bits", "1", NULL}, &mean, &se, &slope);
    cr_assert(fabs(mean - want) < 10 * se + 1e-4, "ip_bias %g +- %g, want %g", mean, se, want);
    cr_assert(fabs(mean) > 50 * se, "ip_bias %g +- %g is not clearly nonzero", mean, se);
    cr_assert(fabs(slope - (1 + want)) < 0.01, "slope %g, want %g", slope, 1 + want);
}

/* Which metrics need queries, as the evaluator and the run's preflight decide it. */
Test(eval_ip, which_metrics_need_queries) {
    const char *none[] = {"vnmse", "bits", "attn_kl", "recall@0"};
    cr_assert_not(rb_eval_codec_needs_queries(none, sizeof none / sizeof none[0]));
    const char *one[] = {"ip_slope", "d_dprod", "ip_bias", "recall@1", "recall@77"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        const char *m[] = {"vnmse", one[i]};
        cr_assert(rb_eval_codec_needs_queries(m, 2), "%s", one[i]);
        rb_method fake = {.name = "fake"};
        cr_assert_eq(rb_eval_codec_check_queries(&fake, m, 2, 16, 1), RB_OK);
        cr_assert_eq(rb_eval_codec_check_queries(&fake, m, 2, 16, 0), RB_EINVAL, "%s", one[i]);
        cr_assert(strstr(rb_error_detail(), "fake: metrics ip_slope/d_dprod/ip_bias/recall@k need "
                                            "queries of dimension 16"),
                  "%s", rb_error_detail());
    }
}

/* ---- scores that are not finite ---- */

/* An estimator that answers NaN for base vector 5 and query 2, else the exact score. */
static int nan_ip(void *state, const uint8_t *codes, size_t count, const float *q, size_t nq,
                  float *out) {
    size_t d = ((rbt_codec_fake *) state)->dim, cb = rbt_codec_fake_code_bytes(state);
    static size_t seen; /* rows scored so far: the evaluator asks block by block */
    for (size_t i = 0; i < count; i++) {
        const float *x = (const float *) (codes + i * cb);
        for (size_t j = 0; j < nq; j++) {
            double s = 0;
            for (size_t k = 0; k < d; k++) s += (double) x[k] * q[j * d + k];
            out[i * nq + j] = seen + i == 5 && j == 2 ? NAN : (float) s;
        }
    }
    seen += count;
    return 0;
}
static int exact_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    memcpy(xhat, codes, count * rbt_codec_fake_code_bytes(state));
    return 0;
}

/* They would surface as null ip metrics: an error naming the pair, the data's (a true score
 * <y, x> that overflows fp32) or the codec's (a NaN estimate). */
Test(eval_ip, non_finite_scores_are_named) {
    static const rb_codec_ops exact_ops = {RBT_CODEC_FAKE_OPS, .decode = exact_decode},
                              nan_ops = {RBT_CODEC_FAKE_OPS, .decode = exact_decode,
                                         .inner_product = nan_ip};
    const rb_method exact = {.name = "exact", .family = RB_FAMILY_CODEC, .codec = &exact_ops},
                    nan_m = {.name = "nanip", .family = RB_FAMILY_CODEC, .codec = &nan_ops};
    static const char *const names[] = {"ip_slope", "ip_bias"};
    rb_params p;
    rb_params_init(&p, NULL, 0);
    uint64_t seed = rbt_seed();
    rb_dataset ds;
    cr_assert_eq(
        rbt_load_dataset(&ds, "sphere", seed, "dim", "32", "count", "40", "queries", "4", NULL), 0,
        "%s", rb_error_detail());
    got g;
    cr_assert_eq(rb_eval_codec(&nan_m, &p, &ds, seed, names, 2, collect, &g), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(),
                     "nanip: its score estimate for base vector 5 and query 2 is NaN") != NULL,
              "%s", rb_error_detail());
    cr_assert_eq(rb_eval_codec(&exact, &p, &ds, seed, names, 2, collect, &g), RB_OK, "%s",
                 rb_error_detail());
    /* |x_7| = 1e30 and |y_3| = 1e20: the score 1e50 cos(x_7, y_3) overflows fp32 unless
     * |cos| < 3e-12 */
    float *x = NULL, *q = NULL;
    for (size_t i = 0; i < ds.ntensors; i++) {
        if (!strcmp(ds.tensors[i].name, "x")) x = ds.tensors[i].data;
        if (!strcmp(ds.tensors[i].name, "queries")) q = ds.tensors[i].data;
    }
    cr_assert(x && q);
    for (size_t k = 0; k < 32; k++) {
        x[7 * 32 + k] *= 1e30f;
        q[3 * 32 + k] *= 1e20f;
    }
    cr_assert_eq(rb_eval_codec(&exact, &p, &ds, seed, names, 2, collect, &g), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(),
                     "scores: the score <y, x> of base vector 7 and query 3 overflows fp32") !=
                  NULL,
              "%s", rb_error_detail());
    rb_dataset_free(&ds);
}
