/* AVX2 Hadamard K * 2^m variant: the +-1 mix as FMAs by broadcast +-1.0f into 8 ymm accumulators
 * (4 outputs x 16 columns) over a K x 16 tile in L1. */
#include <immintrin.h>
#include <string.h>

#include "kernels/hadamard_variants.h"

#define HK_W 16

/* As in hadamard_avx512.c: x * (+-1) + acc is the reference's fl(acc + fl(h * x)). 8 chains
 * (of 16 ymm registers: 8 + 2 tile + broadcasts) cover 2 FMA pipes of latency 4. */
#define HK_DECL(r) __m256 a##r##0 = _mm256_setzero_ps(), a##r##1 = _mm256_setzero_ps()
#define HK_STEP(r)                                      \
    do {                                                \
        const __m256 s_ = _mm256_broadcast_ss(s + (r)); \
        a##r##0 = _mm256_fmadd_ps(x0, s_, a##r##0);     \
        a##r##1 = _mm256_fmadd_ps(x1, s_, a##r##1);     \
    } while (0)
#define HK_STORE(r)                                                      \
    do {                                                                 \
        _mm256_storeu_ps(out + (r) *os, _mm256_mul_ps(a##r##0, sc));     \
        _mm256_storeu_ps(out + (r) *os + 8, _mm256_mul_ps(a##r##1, sc)); \
    } while (0)

/* Outputs i .. i + 4 (c = coef + i, out = row i of the output). */
static void mix4(const float *in, size_t K, const float *c, __m256 sc, float *out, size_t os) {
    HK_DECL(0);
    HK_DECL(1);
    HK_DECL(2);
    HK_DECL(3);
    for (size_t k = 0; k < K; k++) {
        const __m256 x0 = _mm256_load_ps(in + k * HK_W), x1 = _mm256_load_ps(in + k * HK_W + 8);
        const float *s = c + k * K;
        HK_STEP(0);
        HK_STEP(1);
        HK_STEP(2);
        HK_STEP(3);
    }
    HK_STORE(0);
    HK_STORE(1);
    HK_STORE(2);
    HK_STORE(3);
}

static void hk_mix(const float *in, size_t K, const float *coef, float scale, float *out,
                   size_t os) {
    const __m256 sc = _mm256_set1_ps(scale);
    for (size_t i = 0; i < K; i += 4) mix4(in, K, coef + i, sc, out + i * os, os); /* K % 4 == 0 */
}

static inline void hk_copy(float *dst, const float *src, size_t len) {
    size_t t = 0;
    for (; t + 8 <= len; t += 8) _mm256_storeu_ps(dst + t, _mm256_loadu_ps(src + t));
    for (; t < len; t++) dst[t] = src[t];
}

#define HK_VARIANT rb_hadamard_f32_avx2
#include "kernels/x86/hadamard_simd.h"
