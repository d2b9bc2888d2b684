/* Lloyd-Max on a weighted sorted point set (see lloyd1d.h): prefix sums make one iteration
 * O(k log n), so the ~k^2 iterations plain Lloyd needs at k = 256 stay cheap. */
#include "kernels/lloyd1d.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/error.h"

/* Number of x[0..n) that are <= t (x sorted): the first index of the cell above threshold t. */
static size_t count_le(const double *x, size_t n, double t) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Midpoints rounded down to fp32, as rb_codebook_init does, so that the partition computed here is
 * the one the codec's float quantizer applies to float inputs. */
static double threshold(double a, double b) {
    float t = (float) ((a + b) / 2);
    if ((double) t > (a + b) / 2) t = nextafterf(t, -INFINITY);
    return (double) t;
}

/* Mass and first moment of the piecewise-constant density (bin i: weight w[i] spread evenly over
 * [x_i - h/2, x_i + h/2], uniform grid) below t. */
static void below(const double *x, const long double *W, const long double *S, const double *w,
                  size_t n, double h, double t, long double *m, long double *s) {
    double lo0 = x[0] - h / 2;
    if (t <= lo0) {
        *m = *s = 0;
        return;
    }
    size_t i = (size_t) ((t - lo0) / h);
    if (i >= n) {
        *m = W[n];
        *s = S[n];
        return;
    }
    long double a = x[i] - h / 2, f = (t - a) / h;
    *m = W[i] + w[i] * f;
    *s = S[i] + w[i] * f * (a + (long double) t) / 2;
}

/* Lloyd on the piecewise-constant density of a weighted grid: partial bins make the problem
 * continuous, so the iteration converges to the density's quantizer instead of stalling at a
 * partition of the grid (the MSE is flat in the centroids: a stalled run can be off by many grid
 * steps). Stops when no centroid moves more than 1e-13 of the range. */
static int solve_bins(const double *x, const double *w, size_t n, double h, size_t k, long max_iter,
                      const long double *W, const long double *S, double *centroids) {
    double range = x[n - 1] - x[0] + h;
    for (long it = 0;; it++) {
        double move = 0;
        long double pm = 0, ps = 0;
        for (size_t j = 0; j < k; j++) {
            long double m, s;
            if (j + 1 < k)
                below(x, W, S, w, n, h, (centroids[j] + centroids[j + 1]) / 2, &m, &s);
            else {
                m = W[n];
                s = S[n];
            }
            long double cm = m - pm, cs = s - ps;
            pm = m;
            ps = s;
            if (!(cm > 0))
                return rb_error_set(RB_ENOCONV, "lloyd1d: cell %zu of %zu has no mass", j, k);
            double c = (double) (cs / cm);
            move = fmax(move, fabs(c - centroids[j]));
            centroids[j] = c;
        }
        if (move <= 1e-13 * range) return RB_OK;
        if (it + 1 >= max_iter)
            return rb_error_set(RB_ENOCONV, "lloyd1d: centroids still moving after %ld iterations",
                                max_iter);
    }
}

int rb_lloyd1d_solve(const double *x, const double *w, size_t n, double h, size_t k, long max_iter,
                     double *centroids, double *mse) {
    if (!x || !centroids || k == 0 || n < k)
        return rb_error_set(RB_EINVAL, "lloyd1d: need n >= k >= 1 points (n = %zu, k = %zu)", n, k);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || (i && x[i] < x[i - 1]))
            return rb_error_set(RB_EINVAL, "lloyd1d: x[%zu] = %g is not finite or not sorted", i,
                                x[i]);
        if (w && !(w[i] >= 0 && isfinite(w[i])))
            return rb_error_set(RB_EINVAL, "lloyd1d: weight %zu = %g is not finite and >= 0", i,
                                w[i]);
    }
    if (max_iter <= 0) max_iter = 1000000;
    /* Prefix sums in long double: the cell sums are differences of prefix sums. */
    long double *W = malloc((n + 1) * sizeof *W), *S = malloc((n + 1) * sizeof *S),
                *Q = malloc((n + 1) * sizeof *Q);
    size_t *b = malloc((k + 1) * sizeof *b), *prev = malloc((k + 1) * sizeof *prev);
    int rc = RB_OK;
    if (!W || !S || !Q || !b || !prev) {
        rc = rb_error_set(RB_ENOMEM, "lloyd1d: no memory for %zu points", n);
        goto done;
    }
    W[0] = S[0] = Q[0] = 0;
    for (size_t i = 0; i < n; i++) {
        long double wi = w ? w[i] : 1.0L;
        W[i + 1] = W[i] + wi;
        S[i + 1] = S[i] + wi * x[i];
        Q[i + 1] = Q[i] + wi * x[i] * x[i];
    }
    if (!(W[n] > 0)) {
        rc = rb_error_set(RB_EINVAL, "lloyd1d: the weights sum to zero");
        goto done;
    }
    /* Start: the partition at the weighted quantiles (j + 1/2) / k. */
    b[0] = 0;
    b[k] = n;
    for (size_t j = 1; j < k; j++) {
        long double target = W[n] * (long double) j / (long double) k;
        size_t lo = b[j - 1] + 1, hi = n - (k - j);
        while (lo < hi) { /* first i with W[i] >= target, kept inside [b[j-1]+1, n-(k-j)] */
            size_t mid = lo + (hi - lo) / 2;
            if (W[mid] < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        b[j] = lo;
    }
    if (h > 0) {
        if (!w) {
            rc = rb_error_set(RB_EINVAL, "lloyd1d: a bin width needs grid weights");
            goto done;
        }
        /* Start from the means of the quantile partition. */
        for (size_t j = 0; j < k; j++)
            centroids[j] = (double) ((S[b[j + 1]] - S[b[j]]) / (W[b[j + 1]] - W[b[j]]));
        if ((rc = solve_bins(x, w, n, h, k, max_iter, W, S, centroids))) goto done;
        for (size_t j = 1; j < k; j++) b[j] = count_le(x, n, (centroids[j - 1] + centroids[j]) / 2);
        goto check;
    }
    for (long it = 0;; it++) {
        for (size_t j = 0; j < k; j++) {
            long double m = W[b[j + 1]] - W[b[j]];
            if (!(m > 0)) {
                rc = rb_error_set(RB_ENOCONV,
                                  "lloyd1d: cell %zu of %zu is empty (the distribution has too "
                                  "few distinct mass points for %zu levels)",
                                  j, k, k);
                goto done;
            }
            centroids[j] = (double) ((S[b[j + 1]] - S[b[j]]) / m);
        }
        for (size_t j = 0; j <= k; j++) prev[j] = b[j];
        for (size_t j = 1; j < k; j++)
            b[j] = count_le(x, n, threshold(centroids[j - 1], centroids[j]));
        int same = 1;
        for (size_t j = 1; j < k; j++) same &= b[j] == prev[j];
        if (same) break;
        if (it + 1 >= max_iter) {
            rc = rb_error_set(RB_ENOCONV, "lloyd1d: partition still moving after %ld iterations",
                              max_iter);
            goto done;
        }
    }
check:
    for (size_t j = 1; j < k; j++)
        if (!(centroids[j] > centroids[j - 1])) {
            rc = rb_error_set(RB_ENOCONV, "lloyd1d: centroids %zu and %zu coincide", j - 1, j);
            goto done;
        }
    if (mse) { /* of the grid's points (bins at their centres) and this partition */
        long double e = 0;
        for (size_t j = 0; j < k; j++) {
            long double s = S[b[j + 1]] - S[b[j]], m = W[b[j + 1]] - W[b[j]];
            long double c = centroids[j];
            e += (Q[b[j + 1]] - Q[b[j]]) - 2 * c * s + c * c * m;
        }
        *mse = (double) (e > 0 ? e / W[n] : 0);
    }
done:
    free(W);
    free(S);
    free(Q);
    free(b);
    free(prev);
    return rc;
}

int rb_lloyd1d_grid(double lo, double hi, size_t n, double (*logf)(double x, const void *ctx),
                    const void *ctx, double *x, double *w) {
    if (!(hi > lo) || n == 0 || !logf)
        return rb_error_set(RB_EINVAL, "lloyd1d_grid: need lo < hi and n > 0 (lo %g, hi %g, n %zu)",
                            lo, hi, n);
    double top = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        x[i] = lo + ((double) i + 0.5) * (hi - lo) / (double) n;
        w[i] = logf(x[i], ctx);
        if (w[i] > top) top = w[i];
    }
    if (!isfinite(top)) return rb_error_set(RB_EINVAL, "lloyd1d_grid: every weight is zero");
    for (size_t i = 0; i < n; i++) w[i] = exp(w[i] - top);
    return RB_OK;
}
