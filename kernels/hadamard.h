/* Hadamard transforms of order n = K * 2^m: the H_K tables, the QuaRot lookup and the batched
 * Kronecker apply (H_K kron H_{2^m}) / sqrt(n). */
#ifndef RB_HADAMARD_H
#define RB_HADAMARD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dispatch.h"

/* The K values with a table, ascending; K = 1 (Sylvester only) is not in the list. */
enum { RB_HADAMARD_NK = 12, RB_HADAMARD_KMAX = 172 };
extern const size_t rb_hadamard_ks[RB_HADAMARD_NK];

/* Transpose flag of the apply: forward uses H_K, inverse uses H_K^T (the FWHT part is symmetric),
 * so the inverse undoes the forward (the orthonormal transform is orthogonal). */
typedef enum rb_dir { RB_FORWARD = 0, RB_INVERSE = 1 } rb_dir;

/* The +-1 matrix H_K (row-major K x K, H_K H_K^T = K I) for K in rb_hadamard_ks or K = 1, else
 * NULL. Built on first use (thread-safe) by the rules of layer_ptq.md 2.1, which regenerate the
 * QuaRot / SpinQuant / FlatQuant tables element for element:
 *   Paley I (q = K-1 prime, 3 mod 4): 12, 20, 44, 60, 108, 140 (skew: H + H^T = 2I)
 *   Paley II (q = K/2-1 prime, 1 mod 4): 28, 36 (symmetric)
 *   doubling: 40 = [[H20, H20], [H20, -H20]]
 *   Williamson (circulant A, B, C, D of order K/4): 52, 156, 172.
 * The build verifies H H^T = K I and aborts if not (a programmer error). */
const int8_t *rb_hadamard_matrix(size_t K);

/* QuaRot's get_hadK (with SpinQuant's 44): the first K of 172, 156, 140, 108, 60, 52, 36, 28, 44,
 * 40, 20, 12 that divides n, else K = 1; n / K must then be 2^m (m <= 30). Sets *K and *m (either
 * may be NULL). n = 1 gives K = 1, m = 0. Any other n (0 included) is RB_ESIZE with a message
 * naming the nearest supported sizes below and above. With this order no valid K * 2^m is
 * rejected (the odd parts of the K are distinct except 20 and 40, and 40 is tried first). */
int rb_hadamard_lookup(size_t n, size_t *K, int *m);
/* The argument checks of rb_hadamard_f32/f64 (shared with the CUDA twin): rb_hadamard_lookup, then
 * stride >= n when count > 1 (RB_EINVAL). K and m as rb_hadamard_lookup (either may be NULL). */
int rb_hadamard_check(size_t n, size_t count, size_t stride, size_t *K, int *m);

/* In place, for each of `count` rows x = data + r * stride (stride >= n when count > 1):
 *   x <- (H_K kron H_{2^m}) x / sqrt(n)      (RB_FORWARD)
 *   x <- (H_K^T kron H_{2^m}) x / sqrt(n)    (RB_INVERSE, the exact inverse)
 * computed as QuaRot's matmul_hadU does: view x as K x 2^m row-major, FWHT every row
 * (unnormalized), left-multiply by H_K, then scale by 1/sqrt(n). K = 1 is the orthonormal FWHT.
 * O(n (m + K)) work, no allocation. Returns RB_ESIZE for an unsupported n (see the lookup),
 * RB_EINVAL for a short stride. Every variant gives the same bits as the reference. */
int rb_hadamard_f32(float *data, size_t n, size_t count, size_t stride, rb_dir dir);
/* The fp64 version (reference only): the oracle for tests. */
int rb_hadamard_f64(double *data, size_t n, size_t count, size_t stride, rb_dir dir);

/* Work per row: n m adds (FWHT) + n K adds (the +-1 mix, counted as adds); the normalization is
 * not counted (the convention at rb_cost); traffic: one read and one write of every element (the
 * mix runs on a tile in L1). */
rb_cost rb_hadamard_cost(size_t n, size_t count, size_t elem_bytes);

/* The kernel slot after argument checks: n = K * 2^m already validated, hk = rb_hadamard_matrix(K)
 * (transposed access when dir is RB_INVERSE), K > 1. */
typedef int (*rb_hadamard_f32_fn)(float *data, size_t n, size_t count, size_t stride, size_t K,
                                  const int8_t *hk, rb_dir dir);
extern const rb_op rb_op_hadamard_f32;
int rb_hadamard_f32_ref(float *data, size_t n, size_t count, size_t stride, size_t K,
                        const int8_t *hk, rb_dir dir);
int rb_hadamard_f32_tiled(float *data, size_t n, size_t count, size_t stride, size_t K,
                          const int8_t *hk, rb_dir dir);

/* H_12 as kernels/hadamard.c constructs it (Paley I), row-major, for kernels that want its signs
 * at compile time (the AVX-512 codec kernels, the CUDA codec kernels). Each user checks it against
 * rb_hadamard_matrix(12) and takes a generic mix if it ever differs. */
#define RB_H12_PALEY_SIGNS                                                                         \
    1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 1, -1, 1, -1, -1, -1, 1, 1, 1, -1, 1, 1, 1,  \
        1, -1, 1, -1, -1, -1, 1, 1, 1, -1, 1, -1, 1, 1, -1, 1, -1, -1, -1, 1, 1, 1, 1, 1, -1, 1,   \
        1, -1, 1, -1, -1, -1, 1, 1, 1, 1, 1, -1, 1, 1, -1, 1, -1, -1, -1, 1, 1, 1, 1, 1, -1, 1, 1, \
        -1, 1, -1, -1, -1, 1, -1, 1, 1, 1, -1, 1, 1, -1, 1, -1, -1, 1, -1, -1, 1, 1, 1, -1, 1, 1,  \
        -1, 1, -1, 1, -1, -1, -1, 1, 1, 1, -1, 1, 1, -1, 1, 1, 1, -1, -1, -1, 1, 1, 1, -1, 1, 1,   \
        -1, 1, -1, 1, -1, -1, -1, 1, 1, 1, -1, 1, 1

#endif
