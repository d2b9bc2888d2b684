/* Row-wise norms, inner products and scaling (plain C references). */
#include "kernels/vecops.h"

void rb_rows_sqnorm_f32(const float *x, size_t rows, size_t n, size_t stride, double *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *v = x + r * stride;
        double s = 0;
        for (size_t j = 0; j < n; j++) s += (double) v[j] * v[j];
        out[r] = s;
    }
}

void rb_rows_dot_f32(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                     double *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *u = a + r * stride, *v = b + r * stride;
        double s = 0;
        for (size_t j = 0; j < n; j++) s += (double) u[j] * v[j];
        out[r] = s;
    }
}

void rb_rows_scale_f32(float *x, size_t rows, size_t n, size_t stride, const float *s) {
    for (size_t r = 0; r < rows; r++) {
        float *v = x + r * stride;
        for (size_t j = 0; j < n; j++) v[j] *= s[r];
    }
}
