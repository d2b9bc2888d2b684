/* Row-wise vector primitives the codecs share: norms, inner products, scaling. Accumulation is
 * in double in one fixed order (below), so results never depend on threads or SIMD width. */
#ifndef RB_VECOPS_H
#define RB_VECOPS_H

#include <stddef.h>

/* The order of every row reduction (these, and the fused codec kernels that compute norms): 16
 * partial sums in double, p_l = sum of the exact products of elements j = l, l + 16, l + 32, ...
 * in ascending j from +0, then halved pairwise: q_l = p_l + p_{l+8}, r_l = q_l + q_{l+4},
 * t_l = r_l + r_{l+2}, result t_0 + t_1. Why not one sum in j order: this is one zmm pair of
 * lanes per row, so a row's reduction runs in registers with no transposes; a float product is
 * exact in double, so an FMA gives the same bits as the multiply and add. */
static inline double rb_lanes16_sum(const double p[16]) {
    double q[8], r[4];
    for (int l = 0; l < 8; l++) q[l] = p[l] + p[l + 8];
    for (int l = 0; l < 4; l++) r[l] = q[l] + q[l + 4];
    return (r[0] + r[2]) + (r[1] + r[3]);
}

/* out[r] = sum_j x[r][j]^2 (squared L2 norm) for `rows` rows of length n, row stride `stride`. */
void rb_rows_sqnorm_f32(const float *x, size_t rows, size_t n, size_t stride, double *out);
/* out[r] = <a[r], b[r]> for paired rows. */
void rb_rows_dot_f32(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                     double *out);
/* x[r][j] *= s[r] (one scale per row). */
void rb_rows_scale_f32(float *x, size_t rows, size_t n, size_t stride, const float *s);

#endif
