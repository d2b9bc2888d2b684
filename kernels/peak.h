/* Machine-limit probes as ops: peak fp32 add throughput, a streaming (non-temporal) copy and a
 * streaming fill (writes alone). */
#ifndef RB_PEAK_H
#define RB_PEAK_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dispatch.h"

/* n must be a positive multiple of this (every variant's unrolled step divides it). */
enum { RB_PEAK_ADD_QUANTUM = 1024 };

/* Performs exactly n fp32 additions `acc += step` on independent register accumulators that
 * start at 0, and stores the sum of the accumulators in *sum (so nothing is optimized away;
 * with step = 1 and n <= 2^24 the sum is exactly n, which the tests check). The measure of the
 * core's add throughput: the FWHT is nothing but adds and subtracts. Returns RB_EINVAL if n is
 * not a positive multiple of RB_PEAK_ADD_QUANTUM. */
int rb_peak_add_f32(uint64_t n, float step, float *sum);
/* Work: n flops, no memory traffic. */
rb_cost rb_peak_add_cost(uint64_t n);

/* Sixteen zeros the variants start their accumulators from (through volatile reads). */
extern volatile float rb_peak_zeros[16];

typedef int (*rb_peak_add_f32_fn)(uint64_t n, float step, float *sum);
extern const rb_op rb_op_peak_add_f32;
int rb_peak_add_f32_ref(uint64_t n, float step, float *sum);
int rb_peak_add_f32_avx2(uint64_t n, float step, float *sum);
int rb_peak_add_f32_avx512(uint64_t n, float step, float *sum);

/* Copies `bytes` from src to dst (no overlap) with non-temporal stores where the CPU has them
 * (the copy bypasses the caches and skips the read-for-ownership of dst); the reference is
 * memcpy. Any alignment and length. */
int rb_copy_stream(void *dst, const void *src, size_t bytes);
/* Traffic: one read and one write of every byte (the STREAM convention). */
rb_cost rb_copy_cost(size_t bytes);

/* Sets `bytes` at dst to the byte `value` with non-temporal stores where the CPU has them; the
 * reference is memset. Any alignment and length. Writes alone: what a kernel that writes far
 * more than it reads (a decode: 6 KiB out per 388 bytes in at d = 1536, b = 2) can reach, which
 * on some machines is well below the copy's read + write rate. */
int rb_fill_stream(void *dst, int value, size_t bytes);
/* Traffic: one write of every byte. */
rb_cost rb_fill_cost(size_t bytes);

typedef int (*rb_copy_stream_fn)(void *dst, const void *src, size_t bytes);
extern const rb_op rb_op_copy_stream;
int rb_copy_stream_ref(void *dst, const void *src, size_t bytes);
int rb_copy_stream_avx2(void *dst, const void *src, size_t bytes);
int rb_copy_stream_avx512(void *dst, const void *src, size_t bytes);

typedef int (*rb_fill_stream_fn)(void *dst, int value, size_t bytes);
extern const rb_op rb_op_fill_stream;
int rb_fill_stream_ref(void *dst, int value, size_t bytes);
int rb_fill_stream_avx2(void *dst, int value, size_t bytes);
int rb_fill_stream_avx512(void *dst, int value, size_t bytes);

#endif
