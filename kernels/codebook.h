/* Scalar codebook quantization (Lloyd-Max and friends): nearest sorted centroid, and back. */
#ifndef RB_CODEBOOK_H
#define RB_CODEBOOK_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dispatch.h"

enum { RB_CODEBOOK_MAX = 256 };

/* k sorted (non-decreasing), finite centroids and the k - 1 decision thresholds between them.
 * thresholds[i] is the midpoint (c[i] + c[i+1]) / 2 rounded DOWN to fp32, so that
 *   index(x) = number of thresholds strictly below x
 * is exactly the nearest centroid, ties (x exactly at a midpoint) going to the lower index.
 * Entries k-1 .. RB_CODEBOOK_MAX-2 of thresholds hold +Inf (padding for SIMD tables). */
typedef struct rb_codebook {
    size_t k;
    float centroids[RB_CODEBOOK_MAX];
    float thresholds[RB_CODEBOOK_MAX];
} rb_codebook;

/* RB_EINVAL for k outside 1..256, unsorted or non-finite centroids. */
int rb_codebook_init(rb_codebook *cb, const float *centroids, size_t k);

/* idx[r * cols + c] = index(x[r * ld + c]); RB_ENUMERIC names the first NaN/Inf element. */
int rb_codebook_quantize_f32(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                             size_t ld, uint8_t *idx);
/* The argument checks of rb_codebook_quantize_f32 (shared with the CUDA twin). */
int rb_codebook_quantize_check(const rb_codebook *cb, size_t rows, size_t cols, size_t ld);
/* y[i] = centroids[idx[i]]; RB_EINVAL names the first index >= k. */
int rb_codebook_dequantize_f32(const rb_codebook *cb, const uint8_t *idx, size_t n, float *y);
/* n contiguous elements straight to a `bits`-bit stream (rb_pack_bits layout, rb_pack_bytes(n,
 * bits) bytes; k <= 2^bits). Works in chunks of 64 elements on the stack, so it allocates
 * nothing. */
int rb_codebook_quantize_packed_f32(const rb_codebook *cb, const float *x, size_t n, int bits,
                                    uint8_t *packed);

/* The least float u with RN(u * scale) > t, for scale > 0 (t itself for t not finite). Rounding
 * is monotone, so t < RN(v * scale) exactly when u <= v: a search on rotated values that the
 * reference multiplies by scale last can compare v itself with u and skip the multiply (the
 * AVX-512 and CUDA codec encodes). +-0 give the same products' comparisons, so the float order's
 * u <= v is the right test for them too. */
float rb_codebook_unscaled_threshold(float t, float scale);

/* Work: k - 1 comparisons per element (the reference's count); traffic: 4 bytes in, 1 out. */
rb_cost rb_codebook_cost(size_t n, size_t k);

/* The kernel slot (dispatch op "codebook_quant_f32"). The reference reports NaN/Inf; a fast
 * variant that meets one hands the call to the reference. */
typedef int (*rb_codebook_quant_fn)(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                                    size_t ld, uint8_t *idx);
extern const rb_op rb_op_codebook_quant_f32;
int rb_codebook_quant_f32_ref(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                              size_t ld, uint8_t *idx);

#endif
