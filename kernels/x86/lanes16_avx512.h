/* One row's reduction in rb_lanes16_sum's order (kernels/vecops.h) in AVX-512 registers: the 16
 * partial sums are the lanes of two zmm of doubles (lanes 0-7 from the low halves of the fp32
 * vectors, 8-15 from the high halves), so a row needs no transposes. Shared by the row
 * reductions (rowcodec_avx512.c) and the fused codec's norms (rhtcodec_*avx512.c). */
#ifndef RB_X86_LANES16_AVX512_H
#define RB_X86_LANES16_AVX512_H

#include <immintrin.h>
#include <stddef.h>

/* p_lo, p_hi += the exact double products of a and b's 16 elements (FMA = multiply + add here,
 * as a float product is exact in double). Masked-off elements load as +0 and add +0. */
static inline __attribute__((always_inline)) void rb_lanes16_fma(__m512 a, __m512 b, __m512d *p_lo,
                                                                 __m512d *p_hi) {
    *p_lo = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)),
                            _mm512_cvtps_pd(_mm512_castps512_ps256(b)), *p_lo);
    *p_hi = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)),
                            _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)), *p_hi);
}

/* The halving tree of rb_lanes16_sum: ((p_l + p_l+8) + (.. + p_l+12)) down to one double. */
static inline __attribute__((always_inline)) double rb_lanes16_reduce(__m512d p_lo, __m512d p_hi) {
    __m512d q = _mm512_add_pd(p_lo, p_hi);
    __m256d r = _mm256_add_pd(_mm512_castpd512_pd256(q), _mm512_extractf64x4_pd(q, 1));
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(r), _mm256_extractf128_pd(r, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

/* The same from memory: each half loads straight into its conversion, which saves the
 * extract (a shuffle, the port the codecs' butterflies and searches queue on: the d = 128
 * encode about 4% faster in cache). */
static inline __attribute__((always_inline)) void rb_lanes16_fma_mem(const float *a, const float *b,
                                                                     __m512d *p_lo, __m512d *p_hi) {
    *p_lo = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a)),
                            _mm512_cvtps_pd(_mm256_loadu_ps(b)), *p_lo);
    *p_hi = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a + 8)),
                            _mm512_cvtps_pd(_mm256_loadu_ps(b + 8)), *p_hi);
}

/* sum_j a_j b_j of one row of n elements (b = a for the squared norm), in that order. */
static inline __attribute__((always_inline)) double rb_lanes16_dot(const float *a, const float *b,
                                                                   size_t n) {
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    size_t j = 0;
    for (; j + 16 <= n; j += 16) rb_lanes16_fma_mem(a + j, b + j, &lo, &hi);
    if (j < n) {
        __mmask16 m = (__mmask16) ((1u << (n - j)) - 1);
        rb_lanes16_fma(_mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j), &lo, &hi);
    }
    return rb_lanes16_reduce(lo, hi);
}

#endif
