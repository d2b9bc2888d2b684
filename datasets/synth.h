/* Helpers shared by the synthetic generators, their evaluators and tests: rotary position
 * embedding, deterministic distinct picks, and the sparse WHT ground truth's index encoding. */
#ifndef RB_SYNTH_H
#define RB_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/dataset.h"

/* RoPE, Llama convention (HF `rotate_half`, half-split pairs): for i < d/2 the pair
 * (x[i], x[i + d/2]) is rotated by the angle pos * base^(-2i/d):
 *   x[i]       <- x[i] cos - x[i + d/2] sin
 *   x[i + d/2] <- x[i + d/2] cos + x[i] sin
 * computed in double. head_dim must be even (RB_ASSERT). Then <R(m) q, R(n) k> depends on m - n
 * only, and every pair keeps its norm. */
void rb_rope_apply(float *x, size_t head_dim, double pos, double base);

/* m distinct values of [0, n) (m <= n), in draw order, by a partial Fisher-Yates shuffle whose
 * j-th swap uses element j of the uniform64 stream (seed, stream): floor(u * (n - j)), a bias
 * below 2^-29 for n <= 2^24. RB_EINVAL if m > n, RB_ENOMEM. */
int rb_pick_distinct(uint64_t seed, uint64_t stream, size_t n, size_t m, size_t *out);

/* sparse_wht ground truth: indices up to 2^62 do not fit a float32, so the tensor "support"
 * (k x RB_SPARSE_LIMBS, float32) holds each index as limbs of RB_SPARSE_LIMB_BITS bits, low limb
 * first (every limb < 2^21 is exact in float32): index = l0 + l1 2^21 + l2 2^42. The tensor
 * "coef" (k) holds the matching coefficients X[index]; both are sorted by ascending index, and
 * the coefficients are float32 values, exactly the ones the sampler uses. */
enum { RB_SPARSE_LIMB_BITS = 21, RB_SPARSE_LIMBS = 3 };
uint64_t rb_sparse_support_index(const rb_tensor *support, size_t j);
void rb_sparse_support_store(rb_tensor *support, size_t j, uint64_t index);

#endif
