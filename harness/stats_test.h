/* Two-sample hypothesis tests for compare: the two-sided Mann-Whitney U (Wilcoxon rank-sum) test.
 */
#ifndef RB_STATS_TEST_H
#define RB_STATS_TEST_H

#include <stddef.h>

/* Samples up to this size (each side) without ties get the exact distribution of U; larger or
 * tied samples the normal approximation. 20 + 20 keeps the counts (C(40, 20) ~ 1.4e11) exact in
 * 64-bit integers and the table small. */
#define RB_MWU_EXACT_MAX 20

typedef struct rb_mwu_result {
    double u;  /* U of the first sample: #{(i, j): x_i > y_j} + #{x_i == y_j} / 2 (scipy's U1) */
    double p;  /* two-sided p-value */
    int exact; /* 1: exact distribution; 0: normal approximation, tie + continuity corrected */
} rb_mwu_result;

/* Two-sided Mann-Whitney U test of x (nx values) against y (ny values), matching
 * scipy.stats.mannwhitneyu(x, y, alternative='two-sided') with method='exact' for small untied
 * samples and method='asymptotic' (use_continuity=True) otherwise. Identical samples give p = 1.
 * RB_EINVAL for an empty sample or a NaN value; RB_ENOMEM. */
int rb_mwu_test(const double *x, size_t nx, const double *y, size_t ny, rb_mwu_result *r);

/* The smallest two-sided p the test can give for samples of nx and ny values without ties (every
 * x below every y): 2 / C(nx + ny, nx) in the exact range, so 1/3 for 2 + 2 and 0.0079 for 5 + 5.
 * When it is not below a significance level, no difference between such samples can be
 * significant. 1 for an empty sample. */
double rb_mwu_min_p(size_t nx, size_t ny);

/* P(U >= u) under the null for sample sizes m, n <= RB_MWU_EXACT_MAX (u an integer), from the
 * exact distribution; NaN when the sizes are out of range. Exposed for the tests. */
double rb_mwu_exact_sf(size_t m, size_t n, double u);

#endif
