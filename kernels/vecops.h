/* Row-wise vector primitives the codecs share: norms, inner products, scaling. Accumulation is
 * in double and in index order, so results never depend on threads or SIMD width. */
#ifndef RB_VECOPS_H
#define RB_VECOPS_H

#include <stddef.h>

/* out[r] = sum_j x[r][j]^2 (squared L2 norm) for `rows` rows of length n, row stride `stride`. */
void rb_rows_sqnorm_f32(const float *x, size_t rows, size_t n, size_t stride, double *out);
/* out[r] = <a[r], b[r]> for paired rows. */
void rb_rows_dot_f32(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                     double *out);
/* x[r][j] *= s[r] (one scale per row). */
void rb_rows_scale_f32(float *x, size_t rows, size_t n, size_t stride, const float *s);

#endif
