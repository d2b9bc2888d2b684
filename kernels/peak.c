/* Limit probes: the portable peak-add, copy and fill references, their dispatch tables and
 * costs. */
#include "kernels/peak.h"

#include <string.h>

#include "kernels/error.h"

volatile float rb_peak_zeros[16];

/* Eight independent scalar chains: enough to cover add latency x ports on current cores, so the
 * reference measures the scalar add throughput rather than one chain's latency. */
int rb_peak_add_f32_ref(uint64_t n, float step, float *sum) {
    /* Zeros read through volatile: the compiler cannot prove the chains equal and merge them. */
    const volatile float *z = rb_peak_zeros;
    float a0 = z[0], a1 = z[1], a2 = z[2], a3 = z[3], a4 = z[4], a5 = z[5], a6 = z[6], a7 = z[7];
    for (uint64_t i = 0; i < n; i += 8) {
        a0 += step;
        a1 += step;
        a2 += step;
        a3 += step;
        a4 += step;
        a5 += step;
        a6 += step;
        a7 += step;
    }
    *sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    return RB_OK;
}

int rb_copy_stream_ref(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
    return RB_OK;
}

int rb_fill_stream_ref(void *dst, int value, size_t bytes) {
    if (bytes) memset(dst, value, bytes);
    return RB_OK;
}

RB_OP_DEFINE(rb_op_peak_add_f32, "peak_add_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_peak_add_f32_avx512),
             RB_VARIANT("avx2", RB_ISA_AVX2, rb_peak_add_f32_avx2),
             RB_VARIANT("ref", 0, rb_peak_add_f32_ref));

RB_OP_DEFINE(rb_op_copy_stream, "copy_stream",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_copy_stream_avx512),
             RB_VARIANT("avx2", RB_ISA_AVX2, rb_copy_stream_avx2),
             RB_VARIANT("ref", 0, rb_copy_stream_ref));

RB_OP_DEFINE(rb_op_fill_stream, "fill_stream",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_fill_stream_avx512),
             RB_VARIANT("avx2", RB_ISA_AVX2, rb_fill_stream_avx2),
             RB_VARIANT("ref", 0, rb_fill_stream_ref));

int rb_peak_add_f32(uint64_t n, float step, float *sum) {
    if (n == 0 || n % RB_PEAK_ADD_QUANTUM)
        return rb_error_set(RB_EINVAL, "peak_add_f32: n = %llu is not a positive multiple of %d",
                            (unsigned long long) n, RB_PEAK_ADD_QUANTUM);
    RB_DISPATCH(rb_op_peak_add_f32, rb_peak_add_f32_fn, (n, step, sum));
}

rb_cost rb_peak_add_cost(uint64_t n) {
    return (rb_cost){(double) n, 0.0};
}

int rb_copy_stream(void *dst, const void *src, size_t bytes) {
    RB_DISPATCH(rb_op_copy_stream, rb_copy_stream_fn, (dst, src, bytes));
}

rb_cost rb_copy_cost(size_t bytes) {
    return (rb_cost){0.0, 2.0 * (double) bytes};
}

int rb_fill_stream(void *dst, int value, size_t bytes) {
    RB_DISPATCH(rb_op_fill_stream, rb_fill_stream_fn, (dst, value, bytes));
}

rb_cost rb_fill_cost(size_t bytes) {
    return (rb_cost){0.0, (double) bytes};
}
