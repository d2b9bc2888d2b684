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

/* Outputs i .. i + 4 (their coefficient for input k at c[k * cs], out = row i of the output). */
static void mix4(const float *in, size_t K, const float *c, size_t cs, __m256 sc, float *out,
                 size_t os) {
    HK_DECL(0);
    HK_DECL(1);
    HK_DECL(2);
    HK_DECL(3);
    for (size_t k = 0; k < K; k++) {
        const __m256 x0 = _mm256_load_ps(in + k * HK_W), x1 = _mm256_load_ps(in + k * HK_W + 8);
        const float *s = c + k * cs;
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
    for (size_t i = 0, rb; i < K; i += rb) { /* the blocks of 8 or 12 of the coefficients */
        rb = rb_hadamard_coef_block(K, i);
        for (size_t j = 0; j < rb; j += 4)
            mix4(in, K, coef + i * K + j, rb, sc, out + (i + j) * os, os);
    }
}

static inline void hk_copy(float *dst, const float *src, size_t len) {
    size_t t = 0;
    for (; t + 8 <= len; t += 8) _mm256_storeu_ps(dst + t, _mm256_loadu_ps(src + t));
    if (len - t >= 4) {
        _mm_storeu_ps(dst + t, _mm_loadu_ps(src + t));
        t += 4;
    }
    for (; t < len; t++) dst[t] = src[t];
}

/* One FWHT stage of distance h inside each vector, as in hadamard_avx512.c: x * (+-1) + y is
 * the reference's a + b (bit h clear) or a - b (set). */
static inline __attribute__((always_inline)) __m256 stage(__m256 x, __m256 y, __m256 sign) {
    return _mm256_fmadd_ps(x, sign, y);
}

/* The first log2 P <= 3 stages (h = 1, 2, 4) on every vector of the tile. */
static void hk_fwht_tile(float *in, size_t K, size_t P) {
    const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    if (P < 2) return;
    for (size_t v = 0; v < K * HK_W; v += 8) {
        __m256 x = _mm256_load_ps(in + v);
        x = stage(x, _mm256_permute_ps(x, 0xB1), s1);
        if (P >= 4) x = stage(x, _mm256_permute_ps(x, 0x4E), s2);
        if (P >= 8) x = stage(x, _mm256_permute2f128_ps(x, x, 0x01), s4);
        _mm256_store_ps(in + v, x);
    }
}

#define HK_VARIANT rb_hadamard_f32_avx2
#include "kernels/x86/hadamard_simd.h"
