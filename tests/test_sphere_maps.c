/* The octahedral map and the recursive polar transform (kernels/sphere_maps.h): exact round trips,
 * ranges, and the angle laws PolarQuant relies on (Kolmogorov-Smirnov against the densities). */
#include <criterion/criterion.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/sphere_maps.h"
#include "tests/testutil.h"

Test(octa, round_trip_and_ranges) {
    uint64_t seed = rbt_seed();
    size_t n = 20000;
    double *g = rbt_normal_f64(3 * n, seed, 1);
    /* Axis points, folds and signed zeros too. */
    double fixed[][3] = {{0, 0, 1},  {0, 0, -1}, {1, 0, 0},     {-1, 0, 0},
                         {0, -1, 0}, {1, 1, -1}, {-0.0, 2, -3}, {3, -0.0, -1e-300}};
    for (size_t i = 0; i < n + 8; i++) {
        const double *v = i < n ? g + 3 * i : fixed[i - n];
        double xi, eta, out[3], nv = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        rb_octa_encode(v, &xi, &eta);
        cr_assert(fabs(xi) <= 1 && fabs(eta) <= 1, "(%g, %g)", xi, eta);
        if (v[2] >= 0) cr_assert(fabs(xi) + fabs(eta) <= 1 + 1e-15);
        rb_octa_decode(xi, eta, out);
        for (int a = 0; a < 3; a++)
            cr_assert(fabs(out[a] - v[a] / nv) < 1e-12, "i %zu axis %d: %g vs %g (seed %llu)", i, a,
                      out[a], v[a] / nv, (unsigned long long) seed);
    }
    double z[3] = {0, 0, 0}, xi = 1, eta = 1;
    rb_octa_encode(z, &xi, &eta);
    cr_assert(xi == 0 && eta == 0);
    free(g);
}

Test(polar, round_trip_radius_and_ranges) {
    uint64_t seed = rbt_seed();
    for (int L = 1; L <= 6; L++) {
        size_t B = (size_t) 1 << L, nb = 37;
        double *x = rbt_normal_f64(nb * B, seed, (uint64_t) L), *y = malloc(nb * B * sizeof *y);
        double *r = malloc(nb * sizeof *r), *a = malloc(nb * (B - 1) * sizeof *a), s[64];
        for (size_t j = 0; j < B; j++) x[j] = 0; /* a zero block */
        x[B] = -0.0;
        rb_polar_forward(x, nb, L, r, a);
        for (size_t b = 0; b < nb; b++) {
            double n2 = 0;
            for (size_t j = 0; j < B; j++) n2 += x[b * B + j] * x[b * B + j];
            cr_assert(fabs(r[b] - sqrt(n2)) <= 1e-13 * (1 + sqrt(n2)));
            for (size_t k = 0; k < B - 1; k++) {
                double hi = k < B / 2 ? 2 * M_PI : M_PI / 2;
                cr_assert(a[b * (B - 1) + k] >= 0 && a[b * (B - 1) + k] < hi + (k >= B / 2),
                          "L %d angle %zu = %g", L, k, a[b * (B - 1) + k]);
            }
        }
        rb_polar_inverse(r, a, nb, L, y, s);
        for (size_t j = 0; j < nb * B; j++)
            cr_assert(fabs(y[j] - x[j]) < 1e-12, "L %d j %zu: %g vs %g (seed %llu)", L, j, y[j],
                      x[j], (unsigned long long) seed);
        free(x);
        free(y);
        free(r);
        free(a);
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* Gaussian blocks of 16: theta is uniform on [0, 2 pi) and sin^2 psi at level l is
 * Beta(k/2, k/2) with k = 2^(l-1), i.e. psi has density ~ sin(2 psi)^(k-1) (PolarQuant's lemma,
 * codecs.md section 7). The KS statistic sqrt(n) D must stay below 3.2 (p about 2.5e-9 per
 * level; at 2.24, p = 1e-4 per level, the four levels failed about once in 3000 runs with fresh
 * seeds; a wrong density gives sqrt(n) D well above 10; the paper config's claim is p > 0.01). */
Test(polar, angles_follow_the_polarquant_densities) {
    uint64_t seed = rbt_seed();
    size_t nb = 20000;
    double *x = rbt_normal_f64(nb * 16, seed, 3), *r = malloc(nb * sizeof *r);
    double *a = malloc(nb * 15 * sizeof *a), *v = malloc(nb * 8 * sizeof *v);
    rb_polar_forward(x, nb, 4, r, a);
    size_t first[5] = {0, 0, 8, 12, 14}, count[5] = {0, 8, 4, 2, 1};
    for (int l = 1; l <= 4; l++) {
        size_t n = nb * count[l];
        for (size_t b = 0; b < nb; b++)
            for (size_t k = 0; k < count[l]; k++) v[b * count[l] + k] = a[b * 15 + first[l] + k];
        qsort(v, n, sizeof *v, cmp);
        double D = 0, half_k = (double) (1 << (l - 1)) / 2;
        for (size_t i = 0; i < n; i++) {
            double s = sin(v[i]);
            double F = l == 1 ? v[i] / (2 * M_PI) : gsl_cdf_beta_P(s * s, half_k, half_k);
            D = fmax(D, fmax(fabs(F - (double) i / n), fabs(F - (double) (i + 1) / n)));
        }
        /* Level-1 angles of one block are independent too, so n counts all of them. */
        cr_assert(sqrt((double) n) * D < 3.2, "level %d: sqrt(n) D = %g (seed %llu)", l,
                  sqrt((double) n) * D, (unsigned long long) seed);
    }
    free(x);
    free(r);
    free(a);
    free(v);
}
