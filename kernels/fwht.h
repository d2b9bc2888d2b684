/* Fast Walsh-Hadamard transform of power-of-two length, batched, in place. */
#ifndef RB_FWHT_H
#define RB_FWHT_H

#include <stddef.h>

#include "kernels/dispatch.h"

typedef enum rb_norm { RB_NORM_NONE = 0, RB_NORM_ORTHO = 1 } rb_norm;
typedef enum rb_order { RB_ORDER_NATURAL = 0, RB_ORDER_SEQUENCY = 1 } rb_order;

enum { RB_FWHT_LOG2_MAX = 30 };

/* y = H_n x for each of `count` rows x = data + r * stride (stride >= n, in elements), n = 2^k
 * with k = 0..30. H_n is the Sylvester matrix, H[i][j] = (-1)^popcount(i & j). RB_NORM_ORTHO
 * scales by 1/sqrt(n) (then the transform is its own inverse); RB_ORDER_SEQUENCY permutes the
 * output so that row s of the transform has s sign changes (allocates one row of scratch).
 * Every variant does the butterflies in the same order (stride 1 first) as the reference, so
 * all variants give bit-identical fp32 results. Returns RB_ESIZE if n is not a power of two. */
int rb_fwht_f32(float *data, size_t n, size_t count, size_t stride, rb_norm norm, rb_order order);
/* The argument checks of rb_fwht_f32/f64 (shared with the CUDA twin): n = 2^0..2^RB_FWHT_LOG2_MAX
 * (RB_ESIZE), stride >= n when count > 1 (RB_EINVAL). */
int rb_fwht_check(size_t n, size_t count, size_t stride);
/* The fp64 version: the reference only; the oracle for tests. */
int rb_fwht_f64(double *data, size_t n, size_t count, size_t stride, rb_norm norm, rb_order order);

/* Work: n log2 n additions per row (the normalization is not counted: the convention at
 * rb_cost); traffic: one read and one write of every element. */
rb_cost rb_fwht_cost(size_t n, size_t count, size_t elem_bytes);

/* The natural-order kernel slot every variant fills: butterflies on `count` rows, then a
 * multiply by `scale` (skipped when scale == 1). n is a power of two, checked by the caller. */
typedef int (*rb_fwht_f32_fn)(float *data, size_t n, size_t count, size_t stride, float scale);
extern const rb_op rb_op_fwht_f32;

int rb_fwht_f32_ref(float *data, size_t n, size_t count, size_t stride, float scale);

/* Index helpers shared with Hadamard, rotations and the sparse methods. */
int rb_is_pow2(size_t n);
int rb_log2_exact(size_t n); /* log2(n) if n is a power of two, else -1 */
/* Natural-order row index of sequency row s for n = 2^k: bitrev_k(s ^ (s >> 1)). */
size_t rb_sequency_to_natural(size_t s, int k);

#endif
