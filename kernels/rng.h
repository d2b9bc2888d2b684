/* Counter-based random numbers (Philox4x32-10 from Random123): element i of any stream is a pure
 * function of (seed, stream, offset + i), so CPU and GPU, and any thread count, draw the same. */
#ifndef RB_RNG_H
#define RB_RNG_H

#include <stddef.h>
#include <stdint.h>

/* One Philox4x32-10 block: key = seed, counter = (block lo, block hi, stream lo, stream hi). */
void rb_philox4x32(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]);

/* Fill out[0..n) with element offset+i of the stream. Layouts (fixed, the GPU copies them):
 *   bits:       u32 lane (i % 4) of block i / 4
 *   uniform32:  ((bits >> 8) + 0.5) * 2^-24, in (0, 1)
 *   uniform64:  lanes 2j, 2j+1 of block i / 2 (j = i % 2) as a 64-bit word w,
 *               ((w >> 11) + 0.5) * 2^-53, in (0, 1)
 *   normal64:   Box-Muller on the two uniform64 of block i / 2: r = sqrt(-2 ln u0),
 *               element 2p = r cos(2 pi u1), element 2p+1 = r sin(2 pi u1)
 *   normal32:   normal64 rounded to float
 *   rademacher: bit (i % 32) of lane (i % 128) / 32 of block i / 128; 0 -> +1, 1 -> -1 */
void rb_rng_bits(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, uint32_t *out);
void rb_rng_uniform_f32(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
void rb_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double *out);
void rb_rng_normal_f32(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
void rb_rng_normal_f64(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double *out);
void rb_rng_rademacher_f32(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);

/* Derives an independent 64-bit seed from a base seed and a list of labels (cell index, repeat,
 * purpose), so that every cell and every use inside it gets its own stream of numbers. */
uint64_t rb_seed_derive(uint64_t base, uint64_t a, uint64_t b);

#endif
