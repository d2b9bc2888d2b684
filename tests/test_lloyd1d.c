/* Lloyd-Max on weighted point sets (kernels/lloyd1d.h) against known quantizers, and fp16
 * conversion (kernels/half.h) against exhaustive and nearest-value checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
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

/* Unweighted samples: the empirical 1-bit codebook of N(0,1) is +-E|X| = +-sqrt(2/pi) up to the
 * sampling error (sd 0.6 / sqrt(n / 2) per centroid; 5 sd allowed). */
Test(lloyd1d, samples_give_the_empirical_codebook) {
    uint64_t seed = rbt_seed();
    size_t n = 1 << 16;
    double *x = rbt_normal_f64(n, seed, 7), c[2];
    qsort(x, n, sizeof *x, cmp);
    cr_assert_eq(rb_lloyd1d_solve(x, NULL, n, 0, 2, 0, c, NULL), 0, "%s", rb_error_detail());
    double tol = 5 * 0.6 / sqrt(n / 2.0);
    cr_assert(fabs(c[1] - sqrt(2 / M_PI)) < tol && fabs(c[0] + sqrt(2 / M_PI)) < tol,
              "%g %g (seed %llu)", c[0], c[1], (unsigned long long) seed);
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

/* Every fp16 value converts to fp32 and back unchanged (NaNs stay NaN). */
Test(half, every_fp16_value_round_trips) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rb_f16_to_f32((uint16_t) h);
        if (isnan(f)) {
            cr_assert((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu), "h %04x", h);
            cr_assert(isnan(rb_f16_to_f32(rb_f32_to_f16(f))));
            continue;
        }
        cr_assert_eq(rb_f32_to_f16(f), h, "h %04x -> %g -> %04x", h, f, rb_f32_to_f16(f));
    }
}

/* Random fp32 values go to the nearest fp16 value (ties to even checked at known points). */
Test(half, rounding_is_to_nearest_even) {
    uint64_t seed = rbt_seed();
    size_t n = 100000;
    uint32_t *bits = malloc(n * sizeof *bits);
    rb_rng_bits(seed, 9, 0, n, bits);
    for (size_t i = 0; i < n; i++) {
        float f;
        uint32_t u = (bits[i] & 0x8fffffffu) | 0x30000000u; /* |f| in [2^-31, 2^17): all cases */
        memcpy(&f, &u, sizeof f);
        uint16_t h = rb_f32_to_f16(f);
        double g = rb_f16_to_f32(h), e = fabs((double) f - g);
        if (isinf(g)) {
            cr_assert(fabs(f) >= 65520.0f, "%g -> inf", f);
            continue;
        }
        for (int s = -1; s <= 1; s += 2) {
            uint16_t nb = (uint16_t) (h + s);
            if ((h & 0x7fffu) == 0 && s < 0) continue;
            double gn = rb_f16_to_f32(nb);
            if (isfinite(gn) && (gn < 0) == (g < 0))
                cr_assert(e <= fabs((double) f - gn), "%.9g -> %g, %g is nearer (seed %llu)", f, g,
                          gn, (unsigned long long) seed);
        }
    }
    free(bits);
    cr_assert_eq(rb_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie: stays at even 1.0 */
    cr_assert_eq(rb_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie: up to even */
    cr_assert_eq(rb_f32_to_f16(65519.0f), 0x7bff);
    cr_assert_eq(rb_f32_to_f16(65520.0f), 0x7c00);
    cr_assert_eq(rb_f32_to_f16(0x1p-25f), 0);       /* tie between 0 and 2^-24: 0 */
    cr_assert_eq(rb_f32_to_f16(0x1.8p-25f), 1);     /* above the tie: 2^-24 */
    cr_assert_eq(rb_f32_to_f16(-0x1p-14f), 0x8400); /* smallest normal */
}
