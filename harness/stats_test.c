/* Two-sample hypothesis tests for compare: the two-sided Mann-Whitney U test, exact for small
 * untied samples and normal-approximated (tie and continuity corrected) otherwise. */
#include "harness/stats_test.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels/error.h"

/* Counts of the arrangements of m x's and n y's by their U: the coefficients of the Gaussian
 * binomial [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i). Each partial product is
 * itself a polynomial ([n + i choose i]_q), so multiplying by (1 - q^(n+i)) and then dividing by
 * (1 - q^i) as a power series stays exact in integers. c has m * n + 1 entries. */
static void mwu_counts(size_t m, size_t n, int64_t *c) {
    size_t deg = m * n;
    for (size_t k = 0; k <= deg; k++) c[k] = 0;
    c[0] = 1;
    for (size_t i = 1; i <= m; i++) {
        size_t s = n + i;
        for (size_t k = deg; k >= s; k--) c[k] -= c[k - s];
        for (size_t k = i; k <= deg; k++) c[k] += c[k - i];
    }
}

double rb_mwu_exact_sf(size_t m, size_t n, double u) {
    if (m == 0 || n == 0 || m > RB_MWU_EXACT_MAX || n > RB_MWU_EXACT_MAX) return NAN;
    int64_t c[RB_MWU_EXACT_MAX * RB_MWU_EXACT_MAX + 1];
    size_t deg = m * n;
    mwu_counts(m, n, c);
    if (u <= 0) return 1.0;
    if (u > (double) deg) return 0.0;
    size_t k0 = (size_t) ceil(u);
    int64_t total = 0, tail = 0;
    for (size_t k = 0; k <= deg; k++) {
        total += c[k];
        if (k >= k0) tail += c[k];
    }
    return (double) tail / (double) total;
}

/* The two-sided p of the larger of the two U statistics, umax, for samples of nx and ny values
 * whose ties give tie_term = sum(t^3 - t) over groups of t equal values: exact when there are no
 * ties and both samples are small, else the normal approximation. */
static double mwu_p(size_t nx, size_t ny, double umax, double tie_term, int *exact) {
    double n1 = (double) nx, n2 = (double) ny, p;
    *exact = tie_term == 0 && nx <= RB_MWU_EXACT_MAX && ny <= RB_MWU_EXACT_MAX;
    if (*exact) {
        p = 2 * rb_mwu_exact_sf(nx, ny, umax);
    } else {
        double nn = n1 + n2;
        double var = n1 * n2 / 12 * ((nn + 1) - tie_term / (nn * (nn - 1)));
        /* All values equal: no evidence of a difference at all. */
        p = var > 0 ? 2 * gsl_cdf_ugaussian_Q((umax - n1 * n2 / 2 - 0.5) / sqrt(var)) : 1.0;
    }
    return p > 1 ? 1 : p;
}

typedef struct {
    double v;
    int from_x;
} mwu_obs;

static int cmp_obs(const void *a, const void *b) {
    double x = ((const mwu_obs *) a)->v, y = ((const mwu_obs *) b)->v;
    return (x > y) - (x < y);
}

int rb_mwu_test(const double *x, size_t nx, const double *y, size_t ny, rb_mwu_result *r) {
    if (nx == 0 || ny == 0)
        return rb_error_set(RB_EINVAL, "mann-whitney: empty sample (%zu and %zu values)", nx, ny);
    size_t n = nx + ny;
    mwu_obs *o = malloc(n * sizeof *o);
    if (!o) return rb_error_set(RB_ENOMEM, "mann-whitney: %zu values", n);
    for (size_t i = 0; i < n; i++) {
        o[i].v = i < nx ? x[i] : y[i - nx];
        o[i].from_x = i < nx;
        if (isnan(o[i].v)) {
            free(o);
            return rb_error_set(RB_EINVAL, "mann-whitney: NaN in sample %s at index %zu",
                                i < nx ? "x" : "y", i < nx ? i : i - nx);
        }
    }
    qsort(o, n, sizeof *o, cmp_obs);
    /* Rank sum of x with midranks for ties; the tie term sum(t^3 - t) for the variance. */
    double r1 = 0, tie_term = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && o[j + 1].v == o[i].v) j++;
        double t = (double) (j - i + 1), midrank = 0.5 * (double) (i + j) + 1.0;
        for (size_t k = i; k <= j; k++)
            if (o[k].from_x) r1 += midrank;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    free(o);
    double n1 = (double) nx, n2 = (double) ny;
    double u1 = r1 - n1 * (n1 + 1) / 2, u2 = n1 * n2 - u1;
    r->u = u1;
    r->p = mwu_p(nx, ny, u1 > u2 ? u1 : u2, tie_term, &r->exact);
    return 0;
}

double rb_mwu_min_p(size_t nx, size_t ny) {
    int exact;
    if (nx == 0 || ny == 0) return 1.0;
    return mwu_p(nx, ny, (double) nx * (double) ny, 0, &exact);
}
