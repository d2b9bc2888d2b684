/* Row-wise scaling (plain C); the norms and inner products dispatch in kernels/rowcodec.c. */
#include "kernels/vecops.h"

/* The fixed 16-wide inner loop lets gcc's -O2 vectorizer emit SIMD multiplies (see
 * kernels/rotate.c); each element is one fp32 multiply either way, so the bits are the same. */
void rb_rows_scale_f32(float *x, size_t rows, size_t n, size_t stride, const float *s) {
    for (size_t r = 0; r < rows; r++) {
        float *restrict v = x + r * stride;
        const float f = s[r];
        size_t j = 0;
        for (; j + 16 <= n; j += 16)
            for (size_t k = 0; k < 16; k++) v[j + k] *= f;
        for (; j < n; j++) v[j] *= f;
    }
}
