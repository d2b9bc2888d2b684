/* Lloyd-Max (1-D k-means) on a weighted sorted point set: empirical marginals and tabulated
 * densities, for codecs whose source distribution has no closed-form solver in lloyd.h. */
#ifndef RB_LLOYD1D_H
#define RB_LLOYD1D_H

#include <stddef.h>

/* Solves the k-level Lloyd-Max quantizer of the discrete distribution that puts weight w[i] on
 * x[i] (w == NULL: equal weights). x must be sorted ascending and finite, weights >= 0 with a
 * positive total, n >= k >= 1. A sample of a source gives its empirical codebook (h = 0: point
 * masses). A uniform grid of step h > 0 with weights f(x_i) (rb_lloyd1d_grid) gives the codebook
 * of the density f: each weight is then spread evenly over its bin, which makes the problem
 * continuous (a point-mass grid lets plain Lloyd stall several grid steps short of the optimum,
 * since the MSE is flat in the centroids); iteration stops when no centroid moves more than
 * 1e-13 of the range, and the thresholds are the exact midpoints.
 *
 * Point masses (h = 0): cells follow rb_codebook's rule (a point on a midpoint goes to the lower
 * cell), so the result is exactly a fixed point of the quantizer the codecs apply. Iterates from
 * the weighted quantiles (j + 1/2) / k until the partition stops changing (then the centroids are
 * the exact cell means), at most max_iter times (0 = 1000000). Output: centroids[k] ascending and,
 * when mse != NULL, the mean squared error of the final partition. Errors: RB_EINVAL for bad
 * arguments (named), RB_ENOCONV when the partition still changes after max_iter iterations or a
 * cell becomes empty (more levels than the distribution has distinct mass points). Allocates
 * O(n) scratch; a setup-time routine, not a kernel for hot paths. */
int rb_lloyd1d_solve(const double *x, const double *w, size_t n, double h, size_t k, long max_iter,
                     double *centroids, double *mse);

/* Uniform grid x_i = lo + (i + 1/2) (hi - lo) / n and weights logf(x_i), shifted so the largest
 * is 1 and exponentiated (log weights avoid underflow for sharply peaked densities; -INFINITY is a
 * zero weight). Fills x[n] and w[n]; RB_EINVAL when hi <= lo, n == 0 or every weight is zero. */
int rb_lloyd1d_grid(double lo, double hi, size_t n, double (*logf)(double x, const void *ctx),
                    const void *ctx, double *x, double *w);

#endif
