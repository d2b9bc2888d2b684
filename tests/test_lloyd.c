/* Lloyd-Max codebooks: published tables, exact special cases, bounds, monotonicity, independent
 * quadrature and Monte Carlo checks, plain Lloyd vs Newton, the cache and argument errors. */
#include <criterion/criterion.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static const rb_lloyd_max *get(enum rb_lloyd_dist dist, int d, int b) {
    const rb_lloyd_max *cb = NULL;
    int rc = rb_lloyd_codebook(dist, d, b, &cb);
    cr_assert_eq(rc, 0, "%s d=%d b=%d: %s (%s)", rb_lloyd_dist_name(dist), d, b, rb_errname(rc),
                 rb_error_detail());
    cr_assert_not_null(cb);
    return cb;
}

/* Positive-half centroid i in z units. */
static double zc(const rb_lloyd_max *cb, size_t i) {
    return cb->centroids[cb->levels / 2 + i] * cb->z_scale;
}

/* codecs.md 2.1 (EDEN opt_hn_centroids). */
static const double gauss_c[4][8] = {
    {0.797885},
    {0.452780, 1.510418},
    {0.245094, 0.756005, 1.343909, 2.151946},
    {0.128395, 0.388048, 0.656759, 0.942340, 1.256231, 1.618046, 2.069017, 2.732589},
};
static const double gauss_t[4][7] = {
    {0},
    {0.9816},
    {0.5005, 1.0500, 1.7479},
    {0.2582, 0.5224, 0.7995, 1.0993, 1.4371, 1.8435, 2.4008},
};
static const double gauss_mse[8] = {0.363380,  0.117482, 0.034548, 0.009501,
                                    2.5047e-3, 6.442e-4, 1.635e-4, 4.119e-5};
static const double gauss_ent[4] = {1.000, 1.911, 2.825, 3.765};

Test(lloyd, gaussian_tables_b1_to_4) {
    for (int b = 1; b <= 4; b++) {
        const rb_lloyd_max *cb = get(RB_LLOYD_GAUSSIAN, 0, b);
        size_t K = cb->levels / 2;
        cr_assert_eq(cb->levels, (size_t) 1 << b);
        cr_assert(fabs(cb->mse - gauss_mse[b - 1]) <= 1e-5, "b=%d mse %.8f", b, cb->mse);
        cr_assert_eq(cb->mse, cb->d_mse);
        cr_assert(fabs(cb->entropy - gauss_ent[b - 1]) <= 0.01, "b=%d H %.4f", b, cb->entropy);
        for (size_t i = 0; i < K; i++)
            cr_assert(fabs(zc(cb, i) - gauss_c[b - 1][i]) <= 1e-4, "b=%d c%zu %.7f", b, i,
                      zc(cb, i));
        cr_assert_eq(cb->thresholds[K - 1], 0.0);
        for (size_t j = 1; j < K; j++)
            cr_assert(fabs(cb->thresholds[K - 1 + j] - gauss_t[b - 1][j - 1]) <= 1e-4,
                      "b=%d t%zu %.7f", b, j, cb->thresholds[K - 1 + j]);
    }
}

Test(lloyd, gaussian_b4_entropy_and_high_bits) {
    cr_assert(fabs(get(RB_LLOYD_GAUSSIAN, 0, 4)->entropy - 3.765) <= 0.01);
    for (int b = 5; b <= 8; b++) {
        const rb_lloyd_max *cb = get(RB_LLOYD_GAUSSIAN, 0, b);
        cr_assert(fabs(cb->mse / gauss_mse[b - 1] - 1) <= 0.01, "b=%d mse %.6g", b, cb->mse);
    }
}

Test(lloyd, gaussian_b1_closed_form) {
    const rb_lloyd_max *cb = get(RB_LLOYD_GAUSSIAN, 0, 1);
    cr_assert(fabs(cb->centroids[1] - sqrt(2 / M_PI)) <= 1e-14);
    cr_assert(fabs(cb->mse - (1 - 2 / M_PI)) <= 1e-14);
    cr_assert(fabs(cb->entropy - 1) <= 1e-14);
}

/* codecs.md 2.2. */
static const int sphere_dims[4] = {64, 128, 256, 1536};
static const double sphere_dmse[4][4] = {
    {0.35839, 0.11453, 0.03339, 0.00913},
    {0.36089, 0.11600, 0.03397, 0.009315},
    {0.36214, 0.11674, 0.03426, 0.00941},
    {0.36317, 0.11736, 0.03450, 0.00949},
};
static const double sphere128_c[4][8] = {
    {0.7994},
    {0.4525, 1.5052},
    {0.2444, 0.7533, 1.3366, 2.1315},
    {0.1279, 0.3864, 0.6536, 0.9371, 1.2478, 1.6043, 2.0459, 2.6889},
};

Test(lloyd, sphere_d128_table) {
    for (int b = 1; b <= 4; b++) {
        const rb_lloyd_max *cb = get(RB_LLOYD_SPHERE, 128, b);
        cr_assert_eq(cb->dim, 128);
        cr_assert(fabs(cb->z_scale - sqrt(128.0)) <= 1e-15);
        cr_assert(fabs(cb->d_mse - 128 * cb->mse) <= 1e-15 * cb->d_mse);
        cr_assert(fabs(cb->d_mse - sphere_dmse[1][b - 1]) <= 2e-4, "b=%d D_mse %.7f", b, cb->d_mse);
        for (size_t i = 0; i < cb->levels / 2; i++)
            cr_assert(fabs(zc(cb, i) - sphere128_c[b - 1][i]) <= 1e-3, "b=%d c%zu %.6f", b, i,
                      zc(cb, i));
    }
}

Test(lloyd, sphere_dimension_rows) {
    for (int k = 0; k < 4; k++)
        for (int b = 1; b <= 4; b++) {
            const rb_lloyd_max *cb = get(RB_LLOYD_SPHERE, sphere_dims[k], b);
            cr_assert(fabs(cb->d_mse / sphere_dmse[k][b - 1] - 1) <= 0.01, "d=%d b=%d %.6f",
                      sphere_dims[k], b, cb->d_mse);
        }
}

Test(lloyd, monotone_in_bits_and_dimension_with_bounds) {
    static const int dims[] = {2, 3, 8, 64, 128, 256, 1536, 3072, 65536};
    const size_t nd = sizeof dims / sizeof dims[0];
    for (int b = 1; b <= 8; b++) {
        const rb_lloyd_max *g = get(RB_LLOYD_GAUSSIAN, 0, b);
        double lower = pow(4.0, -b), upper = sqrt(3.0) * M_PI / 2 * lower;
        cr_assert(g->d_mse >= lower && g->d_mse <= upper, "gaussian b=%d", b);
        if (b > 1) cr_assert_lt(g->d_mse, get(RB_LLOYD_GAUSSIAN, 0, b - 1)->d_mse);
        double prev = 0;
        for (size_t k = 0; k < nd; k++) {
            const rb_lloyd_max *s = get(RB_LLOYD_SPHERE, dims[k], b);
            /* The lower bound 4^-b (TurboQuant Thm 3) is a Shannon-type bound that holds as d
             * grows; very small d fall below it (d = 2, b = 1 gives 0.189 < 0.25), so it is
             * checked from d = 64 on. */
            if (dims[k] >= 64) cr_assert(s->d_mse >= lower, "d=%d b=%d", dims[k], b);
            cr_assert(s->d_mse <= upper, "d=%d b=%d", dims[k], b);
            cr_assert_gt(s->d_mse, prev, "D_mse must grow with d: d=%d b=%d", dims[k], b);
            cr_assert_lt(s->d_mse, g->d_mse, "d=%d b=%d below the Gaussian", dims[k], b);
            if (b > 1) cr_assert_lt(s->d_mse, get(RB_LLOYD_SPHERE, dims[k], b - 1)->d_mse);
            prev = s->d_mse;
        }
        /* d = 65536 is within 1e-4 relative of the Gaussian limit. */
        cr_assert(fabs(prev / g->d_mse - 1) <= 1e-4, "b=%d", b);
    }
}

Test(lloyd, symmetry_and_order) {
    for (int b = 1; b <= 8; b++) {
        const rb_lloyd_max *cbs[2] = {get(RB_LLOYD_GAUSSIAN, 0, b), get(RB_LLOYD_SPHERE, 100, b)};
        for (int k = 0; k < 2; k++) {
            const rb_lloyd_max *cb = cbs[k];
            size_t N = cb->levels;
            for (size_t i = 0; i < N; i++) {
                cr_assert_eq(cb->centroids[i], -cb->centroids[N - 1 - i]);
                if (i + 1 < N) cr_assert_lt(cb->centroids[i], cb->centroids[i + 1]);
                if (i + 1 < N) {
                    /* thresholds are the midpoints and lie between their centroids */
                    double t = cb->thresholds[i];
                    cr_assert(fabs(t - 0.5 * (cb->centroids[i] + cb->centroids[i + 1])) <=
                              1e-11 * fmax(fabs(t), 1.0 / cb->z_scale));
                    cr_assert_eq(t, -cb->thresholds[N - 2 - i]);
                }
            }
            cr_assert_lt(cb->max_move, 1e-12);
        }
    }
}

/* d = 3: the marginal is uniform on [-1, 1] and the optimum is the uniform quantizer.
 * d = 2: the arcsine law, b = 1 centroid 2/pi and MSE 1/2 - 4/pi^2. */
Test(lloyd, exact_special_dimensions) {
    for (int b = 1; b <= 8; b++) {
        const rb_lloyd_max *cb = get(RB_LLOYD_SPHERE, 3, b);
        double N = (double) cb->levels;
        for (size_t i = 0; i < cb->levels; i++)
            cr_assert(fabs(cb->centroids[i] - ((2.0 * i + 1) / N - 1)) <= 1e-12, "b=%d i=%zu", b,
                      i);
        /* MSE = E[z^2] - sum m c^2 cancels: ~1e-16 / D_mse relative, 1e-11 at b = 8 */
        cr_assert(fabs(cb->mse * 3 * N * N - 1) <= 1e-10, "b=%d %.17g", b, cb->mse * 3 * N * N);
        cr_assert(fabs(cb->entropy - b) <= 1e-10, "b=%d H=%.17g", b, cb->entropy);
    }
    const rb_lloyd_max *a = get(RB_LLOYD_SPHERE, 2, 1);
    cr_assert(fabs(a->centroids[1] - 2 / M_PI) <= 1e-13);
    cr_assert(fabs(a->mse - (0.5 - 4 / (M_PI * M_PI))) <= 1e-13);
}

/* An independent check of the centroid condition: the test integrates the sphere density with
 * its closed-form normalization (lngamma is accurate at these d) and GSL quadrature, and the
 * masses with gsl_sf_beta_inc, and compares with the solver's centroids and entropy. */
typedef struct {
    double a, logc, moment;
} dens;
static double dens_fn(double x, void *p) {
    const dens *q = p;
    return pow(x, q->moment) * exp(q->logc + q->a * log1p(-x * x));
}

Test(lloyd, sphere_centroid_condition_by_quadrature) {
    gsl_set_error_handler_off();
    gsl_integration_workspace *w = gsl_integration_workspace_alloc(200);
    static const int dims[] = {5, 64, 128, 300};
    for (size_t k = 0; k < 4; k++)
        for (int b = 1; b <= 6; b++) {
            int d = dims[k];
            const rb_lloyd_max *cb = get(RB_LLOYD_SPHERE, d, b);
            dens q = {0.5 * (d - 3),
                      gsl_sf_lngamma(0.5 * d) - gsl_sf_lngamma(0.5 * (d - 1)) - 0.5 * log(M_PI), 0};
            gsl_function f = {dens_fn, &q};
            double ent = 0, tot = 0;
            for (size_t i = 0; i < cb->levels; i++) {
                double lo = i ? cb->thresholds[i - 1] : -1.0;
                double hi = i + 1 < cb->levels ? cb->thresholds[i] : 1.0;
                double m0, m1, err;
                q.moment = 0;
                cr_assert_eq(gsl_integration_qags(&f, lo, hi, 0, 1e-13, 200, w, &m0, &err), 0);
                q.moment = 1;
                cr_assert_eq(gsl_integration_qags(&f, lo, hi, 0, 1e-13, 200, w, &m1, &err), 0);
                double alpha = 0.5 * (d - 1);
                double mb = gsl_sf_beta_inc(alpha, alpha, 0.5 * (1 + hi)) -
                            gsl_sf_beta_inc(alpha, alpha, 0.5 * (1 + lo));
                cr_assert(fabs(mb - m0) <= 1e-11 * fmax(m0, 1e-3), "d=%d b=%d cell %zu", d, b, i);
                cr_assert(fabs(m1 / m0 - cb->centroids[i]) <= 1e-10 * fabs(cb->centroids[i]),
                          "d=%d b=%d cell %zu: quadrature %.15g solver %.15g", d, b, i, m1 / m0,
                          cb->centroids[i]);
                ent -= m0 * log2(m0);
                tot += m0;
            }
            cr_assert(fabs(tot - 1) <= 1e-11, "d=%d b=%d total mass %.15g", d, b, tot);
            cr_assert(fabs(ent - cb->entropy) <= 1e-10, "d=%d b=%d", d, b);
        }
    gsl_integration_workspace_free(w);
}

/* Plain Lloyd (the definition) reaches the Newton-accelerated fixed point. Plain Lloyd stops
 * when one step moves < 1e-12 but still sits ~1e-12 * (number of iterations to contract)
 * away, which is exactly the codecs.md pitfall; 1e-9 is that distance with margin. */
Test(lloyd, plain_lloyd_matches_newton) {
    for (int k = 0; k < 2; k++)
        for (int b = 1; b <= 5; b++) {
            enum rb_lloyd_dist dist = k ? RB_LLOYD_SPHERE : RB_LLOYD_GAUSSIAN;
            rb_lloyd_opts o = rb_lloyd_opts_default();
            o.newton = 0;
            rb_lloyd_max plain;
            cr_assert_eq(rb_lloyd_solve(dist, 128, b, &o, &plain), 0, "%s", rb_error_detail());
            cr_assert_eq(plain.newton_steps, 0);
            if (b >= 3) cr_assert_gt(plain.iterations, 100, "b=%d", b);
            const rb_lloyd_max *nw = get(dist, 128, b);
            for (size_t i = 0; i < nw->levels; i++)
                cr_assert(fabs(plain.centroids[i] - nw->centroids[i]) * nw->z_scale <= 1e-9,
                          "k=%d b=%d i=%zu", k, b, i);
            cr_assert(fabs(plain.d_mse - nw->d_mse) <= 1e-13, "k=%d b=%d", k, b);
        }
}

/* Independent Monte Carlo: quantize Philox samples with the codebook and compare the sample
 * MSE with the computed one, within 4.5 standard errors: with a fresh seed every run, 3 SE
 * failed CI about once in 200 runs, 4.5 SE about once in 70000, while a codebook 2% off still
 * lands about 14 SE away. The seed is printed to reproduce. */
Test(lloyd, monte_carlo_mse) {
    uint64_t seed = rbt_seed();
    /* N(0,1), b = 3, one million samples. */
    {
        const rb_lloyd_max *cb = get(RB_LLOYD_GAUSSIAN, 0, 3);
        size_t n = (size_t) 1 << 20;
        double *x = rbt_normal_f64(n, seed, 1);
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) {
            double e = x[i] - cb->centroids[rb_lloyd_index(cb, x[i])];
            s += e * e;
            s2 += e * e * e * e;
        }
        double mean = s / n, se = sqrt((s2 / n - mean * mean) / (n - 1));
        cr_assert(fabs(mean - cb->mse) <= 6 * se, "seed=%llu gaussian: MC %.6g +- %.2g vs %.6g",
                  (unsigned long long) seed, mean, se, cb->mse);
        free(x);
    }
    /* Sphere d = 128, b = 4: 8192 uniform unit vectors (normalized Gaussians); the standard
     * error is taken over vectors because coordinates of one vector are dependent. */
    {
        const int d = 128;
        const size_t nv = 8192;
        const rb_lloyd_max *cb = get(RB_LLOYD_SPHERE, d, 4);
        double *x = rbt_normal_f64(nv * d, seed, 2);
        double s = 0, s2 = 0;
        for (size_t v = 0; v < nv; v++) {
            double *y = x + v * d, nrm = 0, ev = 0;
            for (int j = 0; j < d; j++) nrm += y[j] * y[j];
            nrm = sqrt(nrm);
            for (int j = 0; j < d; j++) {
                double u = y[j] / nrm, e = u - cb->centroids[rb_lloyd_index(cb, u)];
                ev += e * e;
            }
            s += ev; /* ||x - Q(x)||^2 of one unit vector = D_mse estimate */
            s2 += ev * ev;
        }
        double mean = s / nv, se = sqrt((s2 / nv - mean * mean) / (nv - 1));
        cr_assert(fabs(mean - cb->d_mse) <= 6 * se, "seed=%llu sphere: MC %.6g +- %.2g vs %.6g",
                  (unsigned long long) seed, mean, se, cb->d_mse);
        free(x);
    }
}

Test(lloyd, index_matches_linear_scan) {
    uint64_t seed = rbt_seed();
    for (int b = 1; b <= 8; b++) {
        const rb_lloyd_max *cb = get(RB_LLOYD_SPHERE, 128, b);
        size_t n = 4096;
        double *x = rbt_normal_f64(n, seed, (uint64_t) b);
        for (size_t i = 0; i < n + cb->levels - 1; i++) {
            /* random points, then every threshold exactly (ties go to the upper cell) */
            double v = i < n ? x[i] * 0.15 : cb->thresholds[i - n];
            size_t want = 0;
            while (want + 1 < cb->levels && cb->thresholds[want] <= v) want++;
            cr_assert_eq(rb_lloyd_index(cb, v), want, "seed=%llu b=%d v=%g",
                         (unsigned long long) seed, b, v);
        }
        cr_assert_eq(rb_lloyd_index(cb, -INFINITY), 0);
        cr_assert_eq(rb_lloyd_index(cb, INFINITY), cb->levels - 1);
        free(x);
    }
}

static void *cache_worker(void *arg) {
    const rb_lloyd_max **out = arg;
    return (void *) (intptr_t) rb_lloyd_codebook(RB_LLOYD_SPHERE, 777, 7, out);
}

Test(lloyd, cache_shared_and_thread_safe) {
    pthread_t th[4];
    const rb_lloyd_max *got[4] = {0};
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, cache_worker, &got[i]);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        cr_assert_eq((intptr_t) rc, 0);
    }
    for (int i = 1; i < 4; i++) cr_assert_eq(got[i], got[0], "one entry per key");
    rb_lloyd_max fresh;
    cr_assert_eq(rb_lloyd_solve(RB_LLOYD_SPHERE, 777, 7, NULL, &fresh), 0);
    cr_assert_eq(memcmp(got[0]->centroids, fresh.centroids, sizeof fresh.centroids), 0,
                 "deterministic");
    /* the Gaussian ignores dim */
    cr_assert_eq(get(RB_LLOYD_GAUSSIAN, 0, 2), get(RB_LLOYD_GAUSSIAN, 99, 2));
    cr_assert_neq(get(RB_LLOYD_SPHERE, 64, 2), get(RB_LLOYD_SPHERE, 65, 2));
}

Test(lloyd, argument_errors) {
    rb_lloyd_max cb;
    const rb_lloyd_max *p;
    cr_assert_eq(rb_lloyd_solve(RB_LLOYD_GAUSSIAN, 0, 0, NULL, &cb), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "bits = 0"), "%s", rb_error_detail());
    cr_assert_eq(rb_lloyd_solve(RB_LLOYD_GAUSSIAN, 0, 9, NULL, &cb), RB_EINVAL);
    cr_assert_eq(rb_lloyd_codebook(RB_LLOYD_SPHERE, 1, 2, &p), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "d = 1"), "%s", rb_error_detail());
    cr_assert_eq(rb_lloyd_solve(RB_LLOYD_SPHERE, RB_LLOYD_MAX_DIM + 1, 2, NULL, &cb), RB_EINVAL);
    cr_assert_eq(rb_lloyd_solve((enum rb_lloyd_dist) 7, 10, 2, NULL, &cb), RB_EINVAL);
    rb_lloyd_opts o = rb_lloyd_opts_default();
    o.newton = 0;
    o.max_iter = 5;
    cr_assert_eq(rb_lloyd_solve(RB_LLOYD_GAUSSIAN, 0, 4, &o, &cb), RB_ENOCONV);
    cr_assert(strstr(rb_error_detail(), "not converged after 5 iterations"), "%s",
              rb_error_detail());
}
