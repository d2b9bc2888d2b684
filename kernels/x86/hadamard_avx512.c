/* AVX-512 Hadamard K * 2^m variant: the +-1 mix as FMAs by broadcast +-1.0f (and sign-flipped
 * adds) into 16 zmm accumulators (8 outputs x 32 columns) over a K x 32 tile in L1. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/hadamard_variants.h"

#define HK_W 32

/* Two ways to add h * x to an accumulator, both bit for bit the reference's fl(acc + fl(h x)):
 *  HK_STEP: the FMA x * (+-1) + acc, which rounds once the exact acc +- x (signed zeros
 *           included: IEEE gives the fused sum the sign rules of an add); the coefficient is a
 *           broadcast, loaded once per (k, output) for the two vectors;
 *  HK_XADD: acc + (x with its sign bit xored with the coefficient's), the flip being exact.
 * One FMA uop against a ternary-logic and an add: but Zen 4/5 run FMAs on two pipes and adds on
 * two others, so moving 2 of 8 outputs to HK_XADD keeps all four busy: the mix went from
 * 115 to 139 GFLOP/s on a hot tile (6:2 measured best of 8:0, 7:1, 6:2, 5:3, 4:4). The tile
 * row is loaded once per k and feeds 8 outputs; 16 independent chains cover the latencies. */
#define HK_DECL(r) __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = _mm512_setzero_ps()
#define HK_STEP(r)                                  \
    do {                                            \
        const __m512 s_ = _mm512_set1_ps(s[r]);     \
        a##r##0 = _mm512_fmadd_ps(x0, s_, a##r##0); \
        a##r##1 = _mm512_fmadd_ps(x1, s_, a##r##1); \
    } while (0)
/* 0x78 = A ^ (B & C): x ^ (sign bit & coefficient bits). */
#define HK_FLIP(v, c) \
    _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(v), sbit, c, 0x78))
#define HK_XADD(r)                                                    \
    do {                                                              \
        const __m512i c_ = _mm512_castps_si512(_mm512_set1_ps(s[r])); \
        a##r##0 = _mm512_add_ps(a##r##0, HK_FLIP(x0, c_));            \
        a##r##1 = _mm512_add_ps(a##r##1, HK_FLIP(x1, c_));            \
    } while (0)
#define HK_STORE(r)                                                       \
    do {                                                                  \
        _mm512_storeu_ps(out + (r) *os, _mm512_mul_ps(a##r##0, sc));      \
        _mm512_storeu_ps(out + (r) *os + 16, _mm512_mul_ps(a##r##1, sc)); \
    } while (0)

/* Outputs i .. i + 8 (c = the block at coef + i K, out = row i of the output). */
static void mix8(const float *in, size_t K, const float *c, __m512 sc, float *out, size_t os) {
    const __m512i sbit = _mm512_set1_epi32(INT32_MIN);
    HK_DECL(0);
    HK_DECL(1);
    HK_DECL(2);
    HK_DECL(3);
    HK_DECL(4);
    HK_DECL(5);
    HK_DECL(6);
    HK_DECL(7);
    for (size_t k = 0; k < K; k++) {
        const __m512 x0 = _mm512_load_ps(in + k * HK_W), x1 = _mm512_load_ps(in + k * HK_W + 16);
        const float *s = c + k * 8;
        HK_STEP(0);
        HK_STEP(1);
        HK_STEP(2);
        HK_STEP(3);
        HK_STEP(4);
        HK_STEP(5);
        HK_XADD(6);
        HK_XADD(7);
    }
    HK_STORE(0);
    HK_STORE(1);
    HK_STORE(2);
    HK_STORE(3);
    HK_STORE(4);
    HK_STORE(5);
    HK_STORE(6);
    HK_STORE(7);
}

/* Outputs i .. i + 12: the last block when K = 4 mod 8 (every listed K but 40). 24
 * accumulators, the two tile vectors, the sign bit and temporaries fill the 32 registers. */
static void mix12(const float *in, size_t K, const float *c, __m512 sc, float *out, size_t os) {
    const __m512i sbit = _mm512_set1_epi32(INT32_MIN);
    HK_DECL(0);
    HK_DECL(1);
    HK_DECL(2);
    HK_DECL(3);
    HK_DECL(4);
    HK_DECL(5);
    HK_DECL(6);
    HK_DECL(7);
    HK_DECL(8);
    HK_DECL(9);
    HK_DECL(10);
    HK_DECL(11);
    for (size_t k = 0; k < K; k++) {
        const __m512 x0 = _mm512_load_ps(in + k * HK_W), x1 = _mm512_load_ps(in + k * HK_W + 16);
        const float *s = c + k * 12;
        HK_STEP(0);
        HK_STEP(1);
        HK_STEP(2);
        HK_STEP(3);
        HK_STEP(4);
        HK_STEP(5);
        HK_STEP(6);
        HK_STEP(7);
        HK_STEP(8);
        HK_XADD(9);
        HK_XADD(10);
        HK_XADD(11);
    }
    HK_STORE(0);
    HK_STORE(1);
    HK_STORE(2);
    HK_STORE(3);
    HK_STORE(4);
    HK_STORE(5);
    HK_STORE(6);
    HK_STORE(7);
    HK_STORE(8);
    HK_STORE(9);
    HK_STORE(10);
    HK_STORE(11);
}

static void hk_mix(const float *in, size_t K, const float *coef, float scale, float *out,
                   size_t os) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (size_t i = 0, rb; i < K; i += rb) {
        rb = rb_hadamard_coef_block(K, i);
        if (rb == 12)
            mix12(in, K, coef + i * K, sc, out + i * os, os);
        else
            mix8(in, K, coef + i * K, sc, out + i * os, os);
    }
}

/* Plain loads and stores of 64, 32, 16 and 4 bytes: a masked store of a short row cost more
 * than the gather's other work (Zen 5), and with len a constant (hk_copy_rows) the steps fold. */
static inline void hk_copy(float *dst, const float *src, size_t len) {
    size_t t = 0;
    for (; t + 16 <= len; t += 16) _mm512_storeu_ps(dst + t, _mm512_loadu_ps(src + t));
    if (len - t >= 8) {
        _mm256_storeu_ps(dst + t, _mm256_loadu_ps(src + t));
        t += 8;
    }
    if (len - t >= 4) {
        _mm_storeu_ps(dst + t, _mm_loadu_ps(src + t));
        t += 4;
    }
    for (; t < len; t++) dst[t] = src[t];
}

/* One FWHT stage of distance h inside each vector: y swaps lanes i and i ^ h; lane i becomes
 * x_i + y_i where bit h of i is clear (a + b) and y_i - x_i where it is set (a - b), as the
 * FMA x * (+-1) + y, which rounds once the exact sum: the reference's bits (as in
 * fwht_avx512.c). */
static inline __attribute__((always_inline)) __m512 stage(__m512 x, __m512 y, __m512 sign) {
    return _mm512_fmadd_ps(x, sign, y);
}

/* The first log2 P <= 4 stages, in the reference's order (h = 1, 2, 4, 8), on every vector of
 * the tile. */
static void hk_fwht_tile(float *in, size_t K, size_t P) {
    const __m512 s1 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const __m512 s2 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
    const __m512 s4 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
    const __m512 s8 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    if (P < 2) return;
    for (size_t v = 0; v < K * HK_W; v += 16) {
        __m512 x = _mm512_load_ps(in + v);
        x = stage(x, _mm512_permute_ps(x, 0xB1), s1);
        if (P >= 4) x = stage(x, _mm512_permute_ps(x, 0x4E), s2);
        if (P >= 8) x = stage(x, _mm512_shuffle_f32x4(x, x, 0xB1), s4);
        if (P >= 16) x = stage(x, _mm512_shuffle_f32x4(x, x, 0x4E), s8);
        _mm512_store_ps(in + v, x);
    }
}

#define HK_VARIANT rb_hadamard_f32_avx512
#include "kernels/x86/hadamard_simd.h"
