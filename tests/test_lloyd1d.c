/* Lloyd-Max on weighted point sets (kernels/lloyd1d.h) against known quantizers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/lloyd1d.h"
#include "tests/testutil.h"

static double flat(double x, const void *ctx) {
    (void) x;
    (void) ctx;
    return 0;
}

static double gauss(double x, const void *ctx) {
    (void) ctx;
    return -x * x / 2;
}

/* The uniform density's Lloyd-Max quantizer is the uniform one, MSE step^2 / 12. */
Test(lloyd1d, uniform_density_gives_the_uniform_quantizer) {
    size_t n = 1 << 16;
    double *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w), c[8], mse;
    cr_assert_eq(rb_lloyd1d_grid(0, 1, n, flat, NULL, x, w), 0);
    cr_assert_eq(rb_lloyd1d_solve(x, w, n, 1.0 / n, 8, 0, c, &mse), 0, "%s", rb_error_detail());
    for (int j = 0; j < 8; j++) cr_assert(fabs(c[j] - (j + 0.5) / 8) < 1e-4, "c[%d] = %g", j, c[j]);
    cr_assert(fabs(mse / (1.0 / (12 * 64)) - 1) < 1e-3, "mse %g", mse);
    free(x);
    free(w);
}

/* A tabulated N(0,1) gives the closed-form solver's Gaussian codebook (lloyd.h). */
Test(lloyd1d, gaussian_grid_matches_the_lloyd_max_table) {
    size_t n = 1 << 17;
    double *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w), c[16], mse;
    cr_assert_eq(rb_lloyd1d_grid(-9, 9, n, gauss, NULL, x, w), 0);
    for (int b = 1; b <= 4; b++) {
        const rb_lloyd_max *lm;
        cr_assert_eq(rb_lloyd_codebook(RB_LLOYD_GAUSSIAN, 0, b, &lm), 0);
        cr_assert_eq(rb_lloyd1d_solve(x, w, n, 18.0 / n, lm->levels, 0, c, &mse), 0, "%s",
                     rb_error_detail());
        for (size_t j = 0; j < lm->levels; j++)
            cr_assert(fabs(c[j] - lm->centroids[j]) < 1e-5, "b=%d c[%zu] %g vs %g", b, j, c[j],
                      lm->centroids[j]);
        cr_assert(fabs(mse / lm->mse - 1) < 1e-4, "b=%d mse %g vs %g", b, mse, lm->mse);
    }
    free(x);
    free(w);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* Unweighted samples: the 1-bit codebook is a fixed point of Lloyd's conditions on the sample
 * itself (each centroid the mean of the samples on its side of the midpoint), and its spread
 * c1 - c0 is 2 E|X| = 2 sqrt(2/pi) up to sampling error (each centroid sd 0.6 / sqrt(n / 2); 5 sd
 * of the difference allowed). The midpoint itself wanders with the sample (Lloyd's map moves it by
 * 0.64 per unit shift near 0, so noise is amplified ~2.8x): it is not compared with 0. */
Test(lloyd1d, samples_give_the_empirical_codebook) {
    uint64_t seed = rbt_seed();
    size_t n = 1 << 16;
    double *x = rbt_normal_f64(n, seed, 7), c[2];
    qsort(x, n, sizeof *x, cmp);
    cr_assert_eq(rb_lloyd1d_solve(x, NULL, n, 0, 2, 0, c, NULL), 0, "%s", rb_error_detail());
    double t = (c[0] + c[1]) / 2, lo = 0, hi = 0;
    size_t nlo = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] < t)
            lo += x[i], nlo++;
        else
            hi += x[i];
    }
    cr_assert(fabs(lo / (double) nlo - c[0]) < 1e-9 && fabs(hi / (double) (n - nlo) - c[1]) < 1e-9,
              "not a fixed point: %g %g vs side means %g %g (seed %llu)", c[0], c[1],
              lo / (double) nlo, hi / (double) (n - nlo), (unsigned long long) seed);
    double tol = 6 * 0.6 * sqrt(2.0) / sqrt(n / 2.0);
    cr_assert(fabs((c[1] - c[0]) - 2 * sqrt(2 / M_PI)) < tol, "%g %g (seed %llu)", c[0], c[1],
              (unsigned long long) seed);
    free(x);
}

Test(lloyd1d, bad_inputs_are_named) {
    double x[4] = {0, 1, 0.5, 2}, c[4];
    cr_assert_eq(rb_lloyd1d_solve(x, NULL, 4, 0, 2, 0, c, NULL), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "sorted"), "%s", rb_error_detail());
    cr_assert_eq(rb_lloyd1d_solve(x, NULL, 1, 0, 2, 0, c, NULL), RB_EINVAL);
    double same[4] = {1, 1, 1, 2};
    cr_assert_eq(rb_lloyd1d_solve(same, NULL, 4, 0, 3, 0, c, NULL), RB_ENOCONV);
    double w[4] = {0, 0, 0, 0}, y[4] = {0, 1, 2, 3};
    cr_assert_eq(rb_lloyd1d_solve(y, w, 4, 1.0, 2, 0, c, NULL), RB_EINVAL);
}
