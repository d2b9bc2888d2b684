/* Lloyd-Max scalar codebooks for N(0,1) and for one coordinate of a uniform point on S^(d-1). */
#ifndef RB_LLOYD_H
#define RB_LLOYD_H

#include <stddef.h>

/* The sources a codebook is optimal for.
 *   RB_LLOYD_GAUSSIAN: N(0,1); `dim` is ignored (pass 0) and the "z" and "x" units coincide.
 *   RB_LLOYD_SPHERE:   x = one coordinate of a uniform point on S^(d-1), density
 *                      f(x) = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)) (1 - x^2)^((d-3)/2) on [-1, 1]
 *                      (x = 2B - 1, B ~ Beta((d-1)/2, (d-1)/2)). The solver works in z = sqrt(d) x,
 *                      where the variance is 1 for every d and the density tends to N(0,1).
 *                      d >= 2: d = 2 is the arcsine law (density infinite at +-1; the closed forms
 *                      below still hold, so it is handled, not rejected); d = 3 is uniform on
 *                      [-1, 1], whose optimum is the uniform quantizer. d <= RB_LLOYD_MAX_DIM. */
enum rb_lloyd_dist { RB_LLOYD_GAUSSIAN = 0, RB_LLOYD_SPHERE = 1 };

#define RB_LLOYD_MAX_BITS 8
#define RB_LLOYD_MAX_DIM  (1 << 24)

/* One solved codebook. Values in x units (the units of the source itself): quantize x with
 * `thresholds` (cell i is [thresholds[i-1], thresholds[i]) with -inf/+inf at the ends) and
 * reconstruct with centroids[i]. Multiply by `z_scale` (sqrt(d) for the sphere, 1 for N(0,1)) for
 * z units. */
typedef struct rb_lloyd_max {
    enum rb_lloyd_dist dist;
    int dim;       /* d for RB_LLOYD_SPHERE, 0 for RB_LLOYD_GAUSSIAN */
    int bits;      /* b in 1..RB_LLOYD_MAX_BITS */
    size_t levels; /* 2^b */
    double z_scale;
    double centroids[1 << RB_LLOYD_MAX_BITS];        /* sorted ascending, levels of them */
    double thresholds[(1 << RB_LLOYD_MAX_BITS) - 1]; /* levels - 1 midpoints, ascending */
    double mse;                                      /* E[(x - Q(x))^2] in x units */
    double d_mse;     /* the same in z units: d * mse for the sphere, mse for N(0,1) */
    double entropy;   /* -sum p_i log2 p_i of the cell index, bits */
    double max_move;  /* relative centroid movement of the last Lloyd iteration (< tol) */
    int iterations;   /* plain Lloyd iterations run (including the final confirming ones) */
    int newton_steps; /* Newton steps on the fixed-point equations (0 if disabled) */
} rb_lloyd_max;

/* Solver knobs; rb_lloyd_opts_default() gives the values the cached codebooks use. */
typedef struct rb_lloyd_opts {
    double tol;   /* stop when every centroid moves less than tol * |c| in one Lloyd step */
    int max_iter; /* bound on plain Lloyd iterations before RB_ENOCONV */
    int newton;   /* nonzero: accelerate with damped Newton steps on the fixed-point equations
                   * before the Lloyd iterations (plain Lloyd needs ~N^2 iterations at N levels);
                   * the result is still accepted only after a plain Lloyd step moves it < tol */
} rb_lloyd_opts;

rb_lloyd_opts rb_lloyd_opts_default(void);

/* Solves one codebook into *out (caller-owned), uncached. Errors: RB_EINVAL for a bad dist,
 * bits outside 1..8 or d outside 2..RB_LLOYD_MAX_DIM; RB_ENOCONV when not converged within
 * opts->max_iter Lloyd iterations; RB_ELIB when a GSL special function fails. */
int rb_lloyd_solve(enum rb_lloyd_dist dist, int dim, int bits, const rb_lloyd_opts *opts,
                   rb_lloyd_max *out);

/* The cached codebook for (dist, dim, bits), solved on first use with the default options.
 * Thread-safe. *out points into a process-lifetime cache: it stays valid and unchanged until the
 * process exits (entries are never evicted or freed), so callers may keep the pointer. For
 * RB_LLOYD_GAUSSIAN, dim is ignored. */
int rb_lloyd_codebook(enum rb_lloyd_dist dist, int dim, int bits, const rb_lloyd_max **out);

/* Index of the cell that holds x: the number of thresholds <= x (x on a threshold goes to the
 * upper cell). x is in the codebook's x units. Scalar helper for tests and tools, not a kernel. */
size_t rb_lloyd_index(const rb_lloyd_max *cb, double x);

/* "gaussian" / "sphere". */
const char *rb_lloyd_dist_name(enum rb_lloyd_dist dist);

#endif
