/* The SIMD Hadamard K * 2^m variants (kernels/x86/hadamard_*.c) and the +-1.0f coefficient
 * tables they read. Internal to the kernel layer: callers use rb_hadamard_f32. */
#ifndef RB_HADAMARD_VARIANTS_H
#define RB_HADAMARD_VARIANTS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/hadamard.h"

/* The mix of direction dir as floats, laid out for one broadcast per (input k, output i) and
 * read sequentially: outputs in blocks of rb = rb_hadamard_coef_block(K, i0) (8, and 12 for the
 * last block when K = 4 mod 8), block i0 at c + i0 * K holding for each k its rb coefficients:
 * c[i0 * K + k * rb + r] is the coefficient of input row k in output row i0 + r (H_K[i][k]
 * forward, H_K[k][i] inverse). A block is 5.5 KB at K = 172 (the whole table 118 KB), so a
 * pass of one block over a tile streams 5.5 KB instead of touching a line per k of a K-strided
 * table. Built with the int8 table (first use of K); NULL for K not in rb_hadamard_ks. */
static inline size_t rb_hadamard_coef_block(size_t K, size_t i0) {
    return K % 8 == 4 && K - i0 == 12 ? 12 : 8;
}
const float *rb_hadamard_coef_f32(size_t K, rb_dir dir);

/* Both decline when hk is not the library's table for K (their coefficients come from
 * rb_hadamard_coef_f32). */
int rb_hadamard_f32_avx512(float *data, size_t n, size_t count, size_t stride, size_t K,
                           const int8_t *hk, rb_dir dir);
int rb_hadamard_f32_avx2(float *data, size_t n, size_t count, size_t stride, size_t K,
                         const int8_t *hk, rb_dir dir);

#endif
