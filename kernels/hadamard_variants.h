/* The SIMD Hadamard K * 2^m variants (kernels/x86/hadamard_*.c) and the +-1.0f coefficient
 * tables they read. Internal to the kernel layer: callers use rb_hadamard_f32. */
#ifndef RB_HADAMARD_VARIANTS_H
#define RB_HADAMARD_VARIANTS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/hadamard.h"

/* The mix of direction dir as floats, laid out for a broadcast per (input k, output i):
 * c[k * K + i] is the coefficient of input row k in output row i (H_K[i][k] forward,
 * H_K[k][i] inverse), so the coefficients of consecutive outputs for one input are adjacent.
 * Built with the int8 table (first use of K); NULL for K not in rb_hadamard_ks. */
const float *rb_hadamard_coef_f32(size_t K, rb_dir dir);

/* Both decline when hk is not the library's table for K (their coefficients come from
 * rb_hadamard_coef_f32) or K is not a multiple of 4 (every listed K is). */
int rb_hadamard_f32_avx512(float *data, size_t n, size_t count, size_t stride, size_t K,
                           const int8_t *hk, rb_dir dir);
int rb_hadamard_f32_avx2(float *data, size_t n, size_t count, size_t stride, size_t K,
                         const int8_t *hk, rb_dir dir);

#endif
