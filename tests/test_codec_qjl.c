/* The qjl codec through its registry entry: exact code size and bits, edge inputs, decode agreeing
 * with the estimator, determinism, bad parameters, and the estimator's unbiasedness and variance
 * ((pi/2 - rho^2)/m Gaussian, (pi/2 - 1)/d orthogonal at rho = 0) over fresh projections. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "methods/method.h"
#include "tests/testutil.h"

static const rb_method *qjl_method(void) {
    const rb_method *m = rb_method_find("qjl");
    cr_assert_not_null(m);
    return m;
}

/* params: NULL-terminated name, value pairs. */
static int try_make(const char *const *kv, size_t dim, uint64_t seed, void **st) {
    const rb_method *m = qjl_method();
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    for (size_t i = 0; kv && kv[i]; i += 2)
        cr_assert_eq(rb_params_set(&p, kv[i], kv[i + 1]), 0, "%s", rb_error_detail());
    *st = NULL;
    return m->codec->create(&p, dim, seed, st);
}

static void *make(const char *const *kv, size_t dim, uint64_t seed) {
    void *st;
    int rc = try_make(kv, dim, seed, &st);
    cr_assert_eq(rc, 0, "create: %s", rb_error_detail());
    return st;
}

Test(codec_qjl, code_size_and_bits_are_exact) {
    const rb_method *m = qjl_method();
    void *st = make(NULL, 128, 1);
    /* m = d = 128 sign bits = 16 bytes, then the paper's fp16 norm: 1.125 bits (codecs.md sec.
     * 5 and 8). */
    cr_assert_eq(m->codec->code_bytes(st), 16 + 2);
    cr_assert_float_eq(m->codec->bits(st), 1.125, 1e-15);
    m->codec->destroy(st);
    st = make((const char *[]){"bits", "2", NULL}, 128, 1); /* codecs.md sec. 8: 2.125 */
    cr_assert_eq(m->codec->code_bytes(st), 32 + 2);
    cr_assert_float_eq(m->codec->bits(st), 2.125, 1e-15);
    m->codec->destroy(st);
    st = make((const char *[]){"norm_bits", "32", NULL}, 128, 1); /* an fp32 norm */
    cr_assert_eq(m->codec->code_bytes(st), 16 + 4);
    cr_assert_float_eq(m->codec->bits(st), 160.0 / 128.0, 1e-15);
    m->codec->destroy(st);
    st = make((const char *[]){"m", "100", NULL}, 64, 1);
    cr_assert_eq(m->codec->code_bytes(st), 13 + 2);
    cr_assert_float_eq(m->codec->bits(st), 116.0 / 64.0, 1e-15);
    m->codec->destroy(st);
    st = make((const char *[]){"bits", "3", "projection", "orthogonal", "norm_bits", "32", NULL},
              40, 1);
    cr_assert_eq(m->codec->code_bytes(st), 15 + 4);
    cr_assert_float_eq(m->codec->bits(st), 152.0 / 40.0, 1e-15);
    m->codec->destroy(st);
}

Test(codec_qjl, bad_parameters_are_rejected_with_a_reason) {
    void *st;
    cr_assert_eq(try_make((const char *[]){"bits", "2", "m", "100", NULL}, 64, 1, &st), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "disagree"), "%s", rb_error_detail());
    cr_assert_null(st);
    /* Both given and consistent is fine. */
    cr_assert_eq(try_make((const char *[]){"bits", "2", "m", "128", NULL}, 64, 1, &st), 0);
    qjl_method()->codec->destroy(st);
    cr_assert_eq(try_make((const char *[]){"rotation", "rht", NULL}, 100, 1, &st), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "96") && strstr(rb_error_detail(), "104"), "%s",
              rb_error_detail());
    cr_assert_eq(try_make(NULL, 0, 1, &st), RB_ESIZE);
    const rb_method *m = qjl_method();
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    cr_assert_eq(rb_params_set(&p, "projection", "sparse"), RB_EINVAL);
    cr_assert_eq(rb_params_set(&p, "bits", "0"), RB_EINVAL);
    cr_assert_eq(rb_params_set(&p, "norm_bits", "24"), RB_EINVAL);
}

/* <q, decode(code)> is the estimator itself, so the two paths must agree to rounding. */
static void check_decode_matches_estimator(const char *const *kv, size_t d, uint64_t seed) {
    const rb_method *m = qjl_method();
    size_t count = 37, nq = 5;
    void *st = make(kv, d, seed);
    float *x = rbt_normal_f32(count * d, seed, 1), *q = rbt_normal_f32(nq * d, seed, 2);
    size_t cb = m->codec->code_bytes(st);
    uint8_t *codes = malloc(count * cb);
    float *xh = malloc(count * d * sizeof *xh), *est = malloc(count * nq * sizeof *est);
    cr_assert_eq(m->codec->encode(st, x, count, codes), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->decode(st, codes, count, xh), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->inner_product(st, codes, count, q, nq, est), 0, "%s", rb_error_detail());
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < nq; j++) {
            double dot = 0, xn = 0, qn = 0;
            for (size_t k = 0; k < d; k++) {
                dot += (double) xh[i * d + k] * q[j * d + k];
                xn += (double) x[i * d + k] * x[i * d + k];
                qn += (double) q[j * d + k] * q[j * d + k];
            }
            cr_assert(fabs(dot - est[i * nq + j]) < 1e-4 * sqrt(xn * qn), "%zu,%zu: %g vs %g", i, j,
                      dot, est[i * nq + j]);
        }
    free(x);
    free(q);
    free(codes);
    free(xh);
    free(est);
    m->codec->destroy(st);
}

Test(codec_qjl, decode_agrees_with_the_estimator) {
    uint64_t seed = rbt_seed();
    check_decode_matches_estimator(NULL, 64, seed);
    check_decode_matches_estimator((const char *[]){"m", "100", NULL}, 48, seed);
    check_decode_matches_estimator((const char *[]){"projection", "orthogonal", "m", "90", NULL},
                                   40, seed);
    check_decode_matches_estimator((const char *[]){"rotation", "rht", "bits", "2", NULL}, 64,
                                   seed);
    check_decode_matches_estimator((const char *[]){"rotation", "haar", NULL}, 1, seed);
}

/* The zero vector stores norm 0 and decodes to 0; with the fp32 norm, scaling x by 1e30 or
 * 1e-30 keeps the signs and scales the decoded vector by the same factor. */
Test(codec_qjl, edge_inputs_zero_huge_and_tiny_norms) {
    const rb_method *m = qjl_method();
    uint64_t seed = rbt_seed();
    size_t d = 64;
    void *st = make((const char *[]){"norm_bits", "32", NULL}, d, seed);
    float *g = rbt_normal_f32(d, seed, 1);
    float x[4 * 64] = {0};
    const float scales[3] = {1.0f, 1e30f, 1e-30f};
    for (size_t r = 0; r < 3; r++)
        for (size_t j = 0; j < d; j++) x[(r + 1) * d + j] = g[j] * scales[r];
    size_t cb = m->codec->code_bytes(st);
    uint8_t *codes = malloc(4 * cb);
    float y[4 * 64], est[4];
    cr_assert_eq(m->codec->encode(st, x, 4, codes), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->decode(st, codes, 4, y), 0);
    cr_assert_eq(m->codec->inner_product(st, codes, 4, g, 1, est), 0);
    for (size_t j = 0; j < d; j++) cr_assert_eq(y[j], 0.0f, "zero vector decodes to zero");
    cr_assert_eq(est[0], 0.0f);
    for (size_t r = 1; r < 3; r++) {
        cr_assert_eq(memcmp(codes + cb, codes + (r + 1) * cb, cb - 4), 0, "signs at scale %g",
                     scales[r]);
        for (size_t j = 0; j < d; j++) {
            float v = y[(r + 1) * d + j];
            cr_assert(isfinite(v));
            cr_assert(fabs(v / scales[r] - y[d + j]) <= 1e-5 * (fabs(y[d + j]) + 1e-3),
                      "scale %g element %zu: %g vs %g (seed %llu)", scales[r], j, v, y[d + j],
                      (unsigned long long) seed);
        }
    }
    x[5] = NAN;
    cr_assert_eq(m->codec->encode(st, x, 1, codes), RB_ENUMERIC);
    free(g);
    free(codes);
    m->codec->destroy(st);
}

Test(codec_qjl, same_seed_same_codes_across_thread_counts) {
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 300;
    float *x = rbt_normal_f32(count * d, seed, 2);
    const char *const *kvs[2] = {NULL, (const char *[]){"projection", "orthogonal", NULL}};
    for (size_t v = 0; v < 2; v++) {
        uint8_t *codes[3];
        size_t cb = 0;
        for (int t = 0; t < 3; t++) {
            rb_threads_set(t == 1 ? 2 : 1);
            const rb_method *m = qjl_method();
            void *st = make(kvs[v], d, t == 2 ? seed + 1 : seed);
            cb = m->codec->code_bytes(st);
            codes[t] = malloc(count * cb);
            cr_assert_eq(m->codec->encode(st, x, count, codes[t]), 0);
            m->codec->destroy(st);
        }
        rb_threads_set(1);
        cr_assert_eq(memcmp(codes[0], codes[1], count * cb), 0, "1 vs 2 threads");
        cr_assert_neq(memcmp(codes[0], codes[2], count * cb), 0, "another seed, another S");
        for (int t = 0; t < 3; t++) free(codes[t]);
    }
    free(x);
}

/* Mean and variance of (est - rho) for unit x, y with <x, y> = rho, over `draws` projections and
 * `pairs` pairs per projection. The mean's standard error comes from the draws' own means: the
 * pairs of one draw share its projection, and for rho != 0 the bias given S varies from draw to
 * draw, so the pairs are not independent (taken as independent, the error was about 20% too
 * small at rho = 0.6, and the 4-sigma bias check failed about once in 500 runs). */
static void estimator_moments(const char *const *kv, size_t d, double rho, uint64_t seed,
                              size_t draws, size_t pairs, double *mean, double *var,
                              double *mean_se, double *var_se) {
    const rb_method *m = qjl_method();
    double s1 = 0, s2 = 0, s4 = 0, dm1 = 0, dm2 = 0;
    size_t n = draws * pairs;
    float *x = malloc(pairs * d * sizeof *x), *y = malloc(pairs * d * sizeof *y);
    float *est = malloc(pairs * pairs * sizeof *est);
    for (size_t s = 0; s < draws; s++) {
        double *g = rbt_normal_f64(2 * pairs * d, seed, 100 + s);
        for (size_t i = 0; i < pairs; i++) {
            /* x = g1 / |g1|; y = rho x + sqrt(1 - rho^2) u, u the unit part of g2 orthogonal to x
             */
            double *a = g + 2 * i * d, *b = a + d, na = 0, ab = 0, nb = 0;
            for (size_t k = 0; k < d; k++) na += a[k] * a[k];
            for (size_t k = 0; k < d; k++) a[k] /= sqrt(na);
            for (size_t k = 0; k < d; k++) ab += a[k] * b[k];
            for (size_t k = 0; k < d; k++) b[k] -= ab * a[k];
            for (size_t k = 0; k < d; k++) nb += b[k] * b[k];
            for (size_t k = 0; k < d; k++) {
                x[i * d + k] = (float) a[k];
                y[i * d + k] = (float) (rho * a[k] + sqrt(1 - rho * rho) * b[k] / sqrt(nb));
            }
        }
        free(g);
        void *st = make(kv, d, seed ^ (0x9e3779b97f4a7c15ull * (s + 1)));
        size_t cb = m->codec->code_bytes(st);
        uint8_t *codes = malloc(pairs * cb);
        cr_assert_eq(m->codec->encode(st, x, pairs, codes), 0);
        cr_assert_eq(m->codec->inner_product(st, codes, pairs, y, pairs, est), 0);
        double ds = 0;
        for (size_t i = 0; i < pairs; i++) {
            double e = est[i * pairs + i] - rho;
            ds += e;
            s2 += e * e;
            s4 += e * e * e * e;
        }
        s1 += ds;
        dm1 += ds / (double) pairs;
        dm2 += (ds / (double) pairs) * (ds / (double) pairs);
        free(codes);
        m->codec->destroy(st);
    }
    *mean = s1 / (double) n;
    *var = s2 / (double) n; /* E[(est - rho)^2]: the variance of an unbiased estimator */
    double dmean = dm1 / (double) draws;
    *mean_se = sqrt((dm2 / (double) draws - dmean * dmean) / (double) (draws - 1));
    *var_se = sqrt((s4 / (double) n - *var * *var) / (double) n);
    free(x);
    free(y);
    free(est);
}

Test(codec_qjl, gaussian_estimator_is_unbiased_with_variance_pi_over_2_minus_rho_squared) {
    uint64_t seed = rbt_seed();
    size_t d = 32;
    const double rhos[2] = {0.0, 0.6};
    for (size_t r = 0; r < 2; r++)
        for (size_t mult = 1; mult <= 2; mult++) {
            char bits[4];
            snprintf(bits, sizeof bits, "%zu", mult);
            double mean, var, mse, vse, rho = rhos[r];
            estimator_moments((const char *[]){"bits", bits, NULL}, d, rho, seed, 60, 100, &mean,
                              &var, &mse, &vse);
            double want = (M_PI / 2 - rho * rho) / (double) (mult * d);
            /* 6 standard errors: |t_59| > 6 has probability about 1e-7; a scale error (a
             * missing sqrt(pi / 2)) is a bias of about 50 of them at rho = 0.6 */
            cr_assert(fabs(mean) < 6 * mse, "rho %g m %zu: bias %g (se %g, seed %llu)", rho,
                      mult * d, mean, mse, (unsigned long long) seed);
            /* 5 standard errors of the sample variance plus 4% for the scatter between the 60
             * draws of S (about 1.5% per draw at m = 128, larger at m = 32). */
            cr_assert(fabs(var - want) < 5 * vse + 0.04 * want,
                      "rho %g m %zu: variance %g, want %g (se %g, seed %llu)", rho, mult * d, var,
                      want, vse, (unsigned long long) seed);
        }
}

/* With orthonormal rows scaled by sqrt(d) and m = d, the signs of one rotated vector are
 * negatively correlated; for rho = 0 this gives d Var = pi/2 - 1 exactly, at any d (E|z1 z2| =
 * 2/(pi d) on the sphere). */
Test(codec_qjl, orthogonal_blocks_have_variance_pi_over_2_minus_1_over_d) {
    uint64_t seed = rbt_seed();
    size_t d = 32;
    double mean, var, mse, vse;
    estimator_moments((const char *[]){"projection", "orthogonal", NULL}, d, 0.0, seed, 60, 100,
                      &mean, &var, &mse, &vse);
    double want = (M_PI / 2 - 1) / (double) d;
    cr_assert(fabs(mean) < 6 * mse, "bias %g (se %g, seed %llu)", mean, mse,
              (unsigned long long) seed);
    cr_assert(fabs(var - want) < 5 * vse + 0.04 * want, "variance %g, want %g (se %g, seed %llu)",
              var, want, vse, (unsigned long long) seed);
    /* and clearly below the Gaussian sketch's pi/2 / d */
    cr_assert(var < 0.5 * M_PI / 2 / (double) d);
}

/* norm_bits 16 (the default, the paper's) stores |x| rounded to fp16: the same signs as the fp32
 * norm on the same seed, the stored half is rb_f32_to_f16(|x|), and the decoded vector is the
 * fp32 one times fp16(|x|) / |x|, the estimator likewise. A norm beyond 65504 is an error naming
 * the vector; one below fp16's subnormals stores 0 and decodes to 0. */
Test(codec_qjl, fp16_norm_is_rounded_stored_and_used) {
    const rb_method *m = qjl_method();
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 20;
    float *x = rbt_normal_f32(count * d, seed, 5), *q = rbt_normal_f32(d, seed, 6);
    for (size_t i = 0; i < count; i++) /* norms from about 0.01 to 1e4 */
        for (size_t j = 0; j < d; j++) x[i * d + j] *= ldexpf(1.0f, (int) i - 10);
    void *s16 = make(NULL, d, seed),
         *s32 = make((const char *[]){"norm_bits", "32", NULL}, d, seed);
    size_t cb16 = m->codec->code_bytes(s16), cb32 = m->codec->code_bytes(s32), sb = d / 8;
    cr_assert_eq(cb16, sb + 2);
    uint8_t *c16 = malloc(count * cb16), *c32 = malloc(count * cb32);
    float *y16 = malloc(count * d * sizeof(float)), *y32 = malloc(count * d * sizeof(float));
    float e16[20], e32[20];
    cr_assert_eq(m->codec->encode(s16, x, count, c16), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->encode(s32, x, count, c32), 0);
    cr_assert_eq(m->codec->decode(s16, c16, count, y16), 0);
    cr_assert_eq(m->codec->decode(s32, c32, count, y32), 0);
    cr_assert_eq(m->codec->inner_product(s16, c16, count, q, 1, e16), 0);
    cr_assert_eq(m->codec->inner_product(s32, c32, count, q, 1, e32), 0);
    size_t moved = 0;
    for (size_t i = 0; i < count; i++) {
        cr_assert_eq(memcmp(c16 + i * cb16, c32 + i * cb32, sb), 0, "signs of vector %zu", i);
        float n32;
        uint16_t h;
        memcpy(&n32, c32 + i * cb32 + sb, 4);
        memcpy(&h, c16 + i * cb16 + sb, 2);
        cr_assert_eq(h, rb_f32_to_f16(n32), "vector %zu: half 0x%04x for |x| = %a", i, h, n32);
        double ratio = rb_f16_to_f32(h) / (double) n32;
        moved += ratio != 1.0;
        cr_assert(fabs(ratio - 1) < 1.0 / 2048, "vector %zu: ratio %g", i, ratio);
        for (size_t j = 0; j < d; j++)
            cr_assert(fabs(y16[i * d + j] - ratio * y32[i * d + j]) <=
                          1e-6 * fabs(y32[i * d + j]) + 1e-30,
                      "vector %zu element %zu: %g vs %g x %g", i, j, y16[i * d + j], ratio,
                      y32[i * d + j]);
        cr_assert(fabs(e16[i] - ratio * e32[i]) <= 1e-6 * fabs(e32[i]) + 1e-30, "estimate %zu", i);
    }
    cr_assert_gt(moved, count / 2, "only %zu of %zu norms changed by fp16", moved, count);
    /* beyond fp16: an error naming the vector; below it: 0 */
    for (size_t j = 0; j < d; j++) {
        x[3 * d + j] = 1e4f;
        x[4 * d + j] = 1e-12f;
    }
    cr_assert_eq(m->codec->encode(s16, x, count, c16), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "vector 3") && strstr(rb_error_detail(), "norm_bits: 32"),
              "%s", rb_error_detail());
    cr_assert_eq(m->codec->encode(s16, x + 4 * d, 1, c16), 0);
    cr_assert_eq(m->codec->decode(s16, c16, 1, y16), 0);
    for (size_t j = 0; j < d; j++) cr_assert_eq(y16[j], 0.0f);
    m->codec->destroy(s16);
    m->codec->destroy(s32);
    free(x);
    free(q);
    free(c16);
    free(c32);
    free(y16);
    free(y32);
}
