/* One row's reduction in rb_lanes16_sum's order (kernels/vecops.h) in AVX-512 registers: the 16
 * partial sums are the lanes of two zmm of doubles (lanes 0-7 from the low halves of the fp32
 * vectors, 8-15 from the high halves), so a row needs no transposes. Shared by the row
 * reductions (rowcodec_avx512.c) and the fused codec's norms (rhtcodec_*avx512.c). */
#ifndef RB_X86_LANES16_AVX512_H
#define RB_X86_LANES16_AVX512_H

#include <immintrin.h>
#include <stddef.h>

/* p_lo += a_lo * b_lo and p_hi += a_hi * b_hi, the exact double products (FMA = multiply + add
 * here, as a float product is exact in double) of 16 elements given as two 8-float halves. The
 * callers load each half straight into its conversion: a zmm load and an extract would add a
 * shuffle, on the port the codecs' butterflies and searches queue on (the d = 128 encode was
 * about 4% slower in cache that way). */
static inline __attribute__((always_inline)) void
rb_lanes16_fma(__m256 a_lo, __m256 a_hi, __m256 b_lo, __m256 b_hi, __m512d *p_lo, __m512d *p_hi) {
    *p_lo = _mm512_fmadd_pd(_mm512_cvtps_pd(a_lo), _mm512_cvtps_pd(b_lo), *p_lo);
    *p_hi = _mm512_fmadd_pd(_mm512_cvtps_pd(a_hi), _mm512_cvtps_pd(b_hi), *p_hi);
}

/* The halving tree of rb_lanes16_sum: ((p_l + p_l+8) + (.. + p_l+12)) down to one double. */
static inline __attribute__((always_inline)) double rb_lanes16_reduce(__m512d p_lo, __m512d p_hi) {
    __m512d q = _mm512_add_pd(p_lo, p_hi);
    __m256d r = _mm256_add_pd(_mm512_castpd512_pd256(q), _mm512_extractf64x4_pd(q, 1));
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(r), _mm256_extractf128_pd(r, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

/* sum_j a_j b_j of one row of n elements (b = a for the squared norm), in that order. */
static inline __attribute__((always_inline)) double rb_lanes16_dot(const float *a, const float *b,
                                                                   size_t n) {
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    size_t j = 0;
    for (; j + 16 <= n; j += 16)
        rb_lanes16_fma(_mm256_loadu_ps(a + j), _mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j),
                       _mm256_loadu_ps(b + j + 8), &lo, &hi);
    if (j < n) { /* masked-off elements load as +0 and add +0 */
        unsigned m = (1u << (n - j)) - 1;
        __mmask8 ml = (__mmask8) m, mh = (__mmask8) (m >> 8);
        rb_lanes16_fma(_mm256_maskz_loadu_ps(ml, a + j), _mm256_maskz_loadu_ps(mh, a + j + 8),
                       _mm256_maskz_loadu_ps(ml, b + j), _mm256_maskz_loadu_ps(mh, b + j + 8), &lo,
                       &hi);
    }
    return rb_lanes16_reduce(lo, hi);
}

#endif
