/* Mann-Whitney U: the exact null distribution against brute-force enumeration, p-values worked
 * out by hand (scipy.stats.mannwhitneyu conventions), ties, the normal approximation, bad input. */
#include <criterion/criterion.h>
#include <math.h>

#include "harness/stats_test.h"
#include "kernels/kernels.h"

/* P(U >= u) by enumerating every way to pick which m of the m + n ranks belong to x. */
static double brute_sf(size_t m, size_t n, double u) {
    size_t N = m + n, total = 0, tail = 0;
    for (uint32_t mask = 0; mask < (1u << N); mask++) {
        if ((size_t) __builtin_popcount(mask) != m) continue;
        /* U of x = #(x rank > y rank) */
        size_t U = 0;
        for (size_t i = 0; i < N; i++)
            if (mask >> i & 1)
                for (size_t j = 0; j < i; j++) U += !(mask >> j & 1);
        total++;
        tail += (double) U >= u;
    }
    return (double) tail / (double) total;
}

Test(mwu, exact_distribution_3_by_3) {
    /* arrangements of 3 + 3 by U = 0..9: 1 1 2 3 3 3 3 2 1 1 (20 in all) */
    const int counts[10] = {1, 1, 2, 3, 3, 3, 3, 2, 1, 1};
    for (int u = 0; u <= 10; u++) {
        int tail = 0;
        for (int k = u; k < 10; k++) tail += counts[k];
        cr_assert_float_eq(rb_mwu_exact_sf(3, 3, u), tail / 20.0, 1e-15, "u=%d", u);
    }
}

Test(mwu, exact_distribution_matches_enumeration) {
    const size_t sizes[][2] = {{1, 1}, {1, 4}, {2, 5}, {5, 5}, {4, 7}, {7, 3}, {6, 8}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t m = sizes[s][0], n = sizes[s][1];
        for (size_t u = 0; u <= m * n + 1; u++)
            cr_assert_float_eq(rb_mwu_exact_sf(m, n, (double) u), brute_sf(m, n, (double) u), 1e-14,
                               "m=%zu n=%zu u=%zu", m, n, u);
    }
    cr_assert(isnan(rb_mwu_exact_sf(RB_MWU_EXACT_MAX + 1, 3, 1)));
    /* 20 + 20: the largest table; a fully separated sample has probability 1 / C(40, 20) */
    cr_assert_float_eq(rb_mwu_exact_sf(20, 20, 400), 1.0 / 137846528820.0, 1e-25);
}

static rb_mwu_result mwu(const double *x, size_t nx, const double *y, size_t ny) {
    rb_mwu_result r;
    cr_assert_eq(rb_mwu_test(x, nx, y, ny, &r), 0, "%s", rb_error_detail());
    return r;
}

Test(mwu, small_exact_p_values) {
    /* 3 vs 3 (p = 2 * P(U >= max(U1, U2)) from the table above) */
    double a[] = {1, 2, 3}, b[] = {4, 5, 6};
    rb_mwu_result r = mwu(a, 3, b, 3);
    cr_assert(r.exact);
    cr_assert_float_eq(r.u, 0, 0);
    cr_assert_float_eq(r.p, 0.1, 1e-15);
    r = mwu(b, 3, a, 3);
    cr_assert_float_eq(r.u, 9, 0);
    cr_assert_float_eq(r.p, 0.1, 1e-15);
    double c[] = {4, 1, 2}, d[] = {6, 3, 5}; /* U1 = 1 (4 > 3), max 8: 2 * 2/20 */
    r = mwu(c, 3, d, 3);
    cr_assert_float_eq(r.u, 1, 0);
    cr_assert_float_eq(r.p, 0.2, 1e-15);
    double e[] = {1, 3, 5}, f[] = {2, 4, 6}; /* U1 = 3, max 6: 2 * 7/20 */
    r = mwu(e, 3, f, 3);
    cr_assert_float_eq(r.u, 3, 0);
    cr_assert_float_eq(r.p, 0.7, 1e-15);
    /* fully separated 5 vs 5: 2 / C(10, 5) = 2/252 */
    double g[] = {1.5, 1.1, 1.3, 1.2, 1.4}, h[] = {2.1, 2.5, 2.2, 2.4, 2.3};
    r = mwu(g, 5, h, 5);
    cr_assert(r.exact);
    cr_assert_float_eq(r.p, 2.0 / 252.0, 1e-15);
    cr_assert_float_eq(r.p, 0.0079365, 1e-7);
    /* 10 vs 10 separated: 2 / C(20, 10) */
    double x[10], y[10];
    for (int i = 0; i < 10; i++) x[i] = 1.0 + 0.01 * i, y[i] = 1.3 + 0.01 * i;
    r = mwu(x, 10, y, 10);
    cr_assert_float_eq(r.p, 2.0 / 184756.0, 1e-18);
    /* 1 vs 1: p = 1 whatever the order */
    r = mwu(x, 1, y, 1);
    cr_assert_float_eq(r.p, 1.0, 0);
}

Test(mwu, identical_samples_give_p_one) {
    double a[] = {1, 2, 3};
    rb_mwu_result r = mwu(a, 3, a, 3);
    cr_assert(!r.exact); /* ties across the samples */
    cr_assert_float_eq(r.u, 4.5, 0);
    cr_assert_float_eq(r.p, 1.0, 0);
    double c[] = {2, 2, 2}, d[] = {2, 2};
    r = mwu(c, 3, d, 2);
    cr_assert_float_eq(r.u, 3, 0);
    cr_assert_float_eq(r.p, 1.0, 0);
}

Test(mwu, ties_use_midranks_and_tie_correction) {
    /* pooled: 1x 2x 2x 2y 3x 3y 4y 5y -> ranks 1, 3, 3, 3, 5.5, 5.5, 7, 8; R1 = 12.5, U1 = 2.5;
     * mu = 8, tie term 24 + 6 = 30, var = 16/12 * (9 - 30/56), z = (13.5 - 8 - 0.5) / sd */
    double x[] = {1, 2, 2, 3}, y[] = {2, 3, 4, 5};
    rb_mwu_result r = mwu(x, 4, y, 4);
    cr_assert(!r.exact);
    cr_assert_float_eq(r.u, 2.5, 0);
    cr_assert_float_eq(r.p, 0.13665824773814753, 1e-12, "p=%.17g", r.p);
}

Test(mwu, normal_approximation_for_large_samples) {
    /* 25 vs 25 interleaved: U1 = 300, max 325, mu 312.5, var = 625/12 * 51 */
    double x[30], y[30];
    for (int i = 0; i < 25; i++) x[i] = 2 * i, y[i] = 2 * i + 1;
    rb_mwu_result r = mwu(x, 25, y, 25);
    cr_assert(!r.exact);
    cr_assert_float_eq(r.u, 300, 0);
    cr_assert_float_eq(r.p, 0.8158901548607471, 1e-12, "p=%.17g", r.p);
    /* 30 vs 30 shifted by 10.5: U1 = 190, max 710, mu 450, var = 900/12 * 61 */
    for (int i = 0; i < 30; i++) x[i] = i, y[i] = i + 10.5;
    r = mwu(x, 30, y, 30);
    cr_assert_float_eq(r.u, 190, 0);
    cr_assert_float_eq(r.p, 0.00012477053789099963, 1e-15, "p=%.17g", r.p);
}

Test(mwu, smallest_attainable_p) {
    /* exact range: 2 / C(nx + ny, nx), the p of fully separated samples */
    cr_assert_float_eq(rb_mwu_min_p(2, 2), 1.0 / 3.0, 1e-15);
    cr_assert_float_eq(rb_mwu_min_p(5, 5), 2.0 / 252.0, 1e-15);
    cr_assert_float_eq(rb_mwu_min_p(3, 2), 0.2, 1e-15);
    cr_assert_float_eq(rb_mwu_min_p(1, 1), 1.0, 0);
    cr_assert_float_eq(rb_mwu_min_p(0, 4), 1.0, 0);
    /* it is what the test gives on separated samples, in and beyond the exact range */
    double x[30], y[30];
    for (int i = 0; i < 30; i++) x[i] = i, y[i] = 100 + i;
    const size_t sizes[][2] = {{2, 2}, {4, 7}, {10, 10}, {20, 20}, {21, 5}, {30, 30}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        rb_mwu_result r = mwu(x, sizes[k][0], y, sizes[k][1]);
        cr_assert_float_eq(rb_mwu_min_p(sizes[k][0], sizes[k][1]), r.p, 1e-15 * r.p, "%zu+%zu",
                           sizes[k][0], sizes[k][1]);
    }
    /* alpha 0.01: 4 + 4 cannot reach it (2/70), 5 + 5 can */
    cr_assert(rb_mwu_min_p(4, 4) > 0.01);
    cr_assert(rb_mwu_min_p(5, 5) < 0.01);
}

Test(mwu, bad_input) {
    double x[] = {1, NAN}, y[] = {2};
    rb_mwu_result r;
    cr_assert_eq(rb_mwu_test(x, 0, y, 1, &r), RB_EINVAL);
    cr_assert_eq(rb_mwu_test(x, 2, y, 1, &r), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "NaN"), "%s", rb_error_detail());
}
