/* Statistics on inputs with known values: kurtosis of signs, Gaussians and uniforms, max / RMS,
 * incoherence of constant and one-hot matrices, shape errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

Test(stats, kurtosis_known_values) {
    float pm[6] = {1, -1, 1, -1, -1, 1};
    cr_assert_float_eq(rb_kurtosis_f32(pm, 6), 1.0, 1e-15);
    /* shift and scale invariant */
    float sh[4] = {103, 97, 103, 97};
    cr_assert_float_eq(rb_kurtosis_f32(sh, 4), 1.0, 1e-15);
    /* {0, 0, 0, 2}: mean 0.5, m2 = 0.75, m4 = (3 * 0.0625 + 5.0625) / 4 = 1.3125 -> 7/3 */
    float sk[4] = {0, 0, 0, 2};
    cr_assert_float_eq(rb_kurtosis_f32(sk, 4), 7.0 / 3.0, 1e-14);
    float c[3] = {2, 2, 2};
    cr_assert(isnan(rb_kurtosis_f32(c, 3)));
    cr_assert(isnan(rb_kurtosis_f32(c, 0)));
}

Test(stats, kurtosis_of_gaussian_and_uniform_samples) {
    uint64_t seed = rbt_seed();
    size_t n = 1 << 18;
    float *g = rbt_normal_f32(n, seed, 1);
    float *u = malloc(n * sizeof *u);
    rb_rng_uniform_f32(seed, 2, 0, n, u);
    /* sd of the sample kurtosis ~ sqrt(24 / n) ~ 0.01 for the Gaussian */
    double kg = rb_kurtosis_f32(g, n), ku = rb_kurtosis_f32(u, n);
    cr_assert(fabs(kg - 3.0) < 0.06, "gaussian %g seed=%llu", kg, (unsigned long long) seed);
    cr_assert(fabs(ku - 1.8) < 0.02, "uniform %g seed=%llu", ku, (unsigned long long) seed);
    free(g);
    free(u);
}

Test(stats, kurtosis_rows_and_mean) {
    /* rows: signs (1), {0,0,0,2} (7/3), constant (skipped), padding column ignored */
    float X[3 * 5] = {1, -1, 1, -1, 99, 0, 0, 0, 2, 99, 5, 5, 5, 5, 99};
    double k[3], mean;
    cr_assert_eq(rb_kurtosis_rows_f32(X, 3, 4, 5, k, &mean), 0);
    cr_assert_float_eq(k[0], 1.0, 1e-15);
    cr_assert_float_eq(k[1], 7.0 / 3.0, 1e-14);
    cr_assert(isnan(k[2]));
    cr_assert_float_eq(mean, (1.0 + 7.0 / 3.0) / 2, 1e-14);
    X[1] = NAN;
    cr_assert_eq(rb_kurtosis_rows_f32(X, 3, 4, 5, NULL, &mean), 0);
    cr_assert(isnan(mean), "a NaN input must not be skipped");
    cr_assert_eq(rb_kurtosis_rows_f32(X, 0, 4, 5, k, &mean), RB_EINVAL);
    cr_assert_eq(rb_kurtosis_rows_f32(X, 2, 4, 3, k, &mean), RB_EINVAL);
    cr_assert_eq(rb_kurtosis_rows_f32(NULL, 2, 4, 4, k, &mean), RB_EINVAL);
}

Test(stats, row_max_rms) {
    float X[2 * 4] = {3, -4, 0, 7, -1, 1, -1, 1};
    double mx[2], rms[2];
    cr_assert_eq(rb_row_max_rms_f32(X, 2, 3, 4, mx, rms), 0);
    cr_assert_eq(mx[0], 4.0);
    cr_assert_float_eq(rms[0], sqrt(25.0 / 3.0), 1e-15);
    cr_assert_eq(mx[1], 1.0);
    cr_assert_float_eq(rms[1], 1.0, 1e-15);
    cr_assert_eq(rb_row_max_rms_f32(X, 2, 3, 2, mx, rms), RB_EINVAL);
}

Test(stats, incoherence_known_values) {
    float W[6 * 7];
    for (size_t i = 0; i < 42; i++) W[i] = (i % 3) ? -2.5f : 2.5f;
    double mu;
    cr_assert_eq(rb_incoherence_f32(W, 6, 7, 7, &mu), 0);
    cr_assert_float_eq(mu, 1.0, 1e-14);
    for (size_t i = 0; i < 42; i++) W[i] = 0;
    cr_assert_eq(rb_incoherence_f32(W, 6, 7, 7, &mu), 0);
    cr_assert(isnan(mu));
    W[17] = -3;
    cr_assert_eq(rb_incoherence_f32(W, 6, 7, 7, &mu), 0);
    cr_assert_float_eq(mu, sqrt(42.0), 1e-13);
    /* rows 0..2 of 7 columns with ld 14: the one-hot entry is in the viewed block */
    cr_assert_eq(rb_incoherence_f32(W, 2, 7, 14, &mu), 0);
    cr_assert_float_eq(mu, sqrt(14.0), 1e-13);
    cr_assert_eq(rb_incoherence_f32(W, 6, 7, 7, NULL), RB_EINVAL);
}

/* A Hadamard rotation spreads a one-hot row: mu drops from sqrt(n) to 1 and the kurtosis of the
 * signs is 1; ties the statistics to the rotations they measure. */
Test(stats, hadamard_flattens_a_spike) {
    size_t n = 688;
    float *x = calloc(n, sizeof *x);
    x[5] = 1;
    double mu;
    cr_assert_eq(rb_incoherence_f32(x, 1, n, n, &mu), 0);
    cr_assert_float_eq(mu, sqrt((double) n), 1e-12);
    cr_assert_eq(rb_hadamard_f32(x, n, 1, n, RB_FORWARD), 0);
    cr_assert_eq(rb_incoherence_f32(x, 1, n, n, &mu), 0);
    cr_assert_float_eq(mu, 1.0, 1e-6);
    cr_assert_float_eq(rb_kurtosis_f32(x, n), 1.0, 1e-3);
    free(x);
}
