/* AVX2 MXFP4 / NVFP4 codecs, bit-identical to the references in kernels/fpformats.c: the
 * AVX-512 variants' method on 8 lanes (compare results summed as -1s, values by vpermps on the
 * magnitude with the sign or'ed in, nibbles packed with pack/permute). */
#include <immintrin.h>
#include <string.h>

#include "kernels/fpformats_variants.h"

/* Blocks whose scales are computed together, one per lane. */
enum { CHUNK = 8 };

static const float e2m1_mags[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

static inline __m256i abs_bits(__m256 v) {
    return _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7FFFFFFF));
}

static inline uint32_t hmax_epu32(__m256i m) {
    __m128i a = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    a = _mm_max_epu32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(1, 0, 3, 2)));
    a = _mm_max_epu32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1)));
    return (uint32_t) _mm_cvtsi128_si32(a);
}

/* Largest |x| bit pattern of x[0, n): >= 0x7F800000 exactly when some element is NaN or Inf. */
static uint32_t amax_bits(const float *x, size_t n) {
    __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_epu32(m0, abs_bits(_mm256_loadu_ps(x + i)));
        m1 = _mm256_max_epu32(m1, abs_bits(_mm256_loadu_ps(x + i + 8)));
        m2 = _mm256_max_epu32(m2, abs_bits(_mm256_loadu_ps(x + i + 16)));
        m3 = _mm256_max_epu32(m3, abs_bits(_mm256_loadu_ps(x + i + 24)));
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_epu32(m0, abs_bits(_mm256_loadu_ps(x + i)));
    uint32_t m = hmax_epu32(_mm256_max_epu32(_mm256_max_epu32(m0, m1), _mm256_max_epu32(m2, m3)));
    for (; i < n; i++) {
        uint32_t a;
        memcpy(&a, x + i, sizeof a);
        a &= 0x7FFFFFFFu;
        m = a > m ? a : m;
    }
    return m;
}

/* E2M1 codes of v, as the AVX-512 variant's e2m1_codes: each true compare is -1, so
 * subtracting the masks counts the midpoints below |v|; NaN lanes get no sign. */
static inline __m256i e2m1_codes(__m256 v, int nan_possible) {
    __m256 a = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
    __m256i c = _mm256_setzero_si256();
#define MIDPOINT(t, pred) \
    c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(t), pred)))
    MIDPOINT(0.25f, _CMP_GT_OQ);
    MIDPOINT(0.75f, _CMP_GE_OQ);
    MIDPOINT(1.25f, _CMP_GT_OQ);
    MIDPOINT(1.75f, _CMP_GE_OQ);
    MIDPOINT(2.5f, _CMP_GT_OQ);
    MIDPOINT(3.5f, _CMP_GE_OQ);
    MIDPOINT(5.0f, _CMP_GT_OQ);
#undef MIDPOINT
    __m256i s = _mm256_castps_si256(v);
    if (nan_possible) s = _mm256_and_si256(s, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_ORD_Q)));
    return _mm256_or_si256(c, _mm256_and_si256(_mm256_srli_epi32(s, 28), _mm256_set1_epi32(8)));
}

/* Values of codes: vpermps reads the low 3 index bits (the magnitude); bit 3 becomes the sign. */
static inline __m256 e2m1_values(__m256i c) {
    __m256 v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(e2m1_mags), c);
    __m256i sign = _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(8)), 28);
    return _mm256_or_ps(v, _mm256_castsi256_ps(sign));
}

/* Codes of 16 elements (c0: 0..7, c1: 8..15) to 8 bytes, element 2i in the low nibble of byte i. */
static inline __m128i pack16(__m256i c0, __m256i c1) {
    __m256i w = _mm256_packs_epi32(c0, c1);                   /* words: 0-3, 8-11 | 4-7, 12-15 */
    w = _mm256_permute4x64_epi64(w, _MM_SHUFFLE(3, 1, 2, 0)); /* 0-15 in order */
    /* Dword i holds codes 2i (low) and 2i + 1 (bits 16..19): join them into its low byte. */
    __m256i d =
        _mm256_and_si256(_mm256_or_si256(w, _mm256_srli_epi32(w, 12)), _mm256_set1_epi32(0xFF));
    __m256i p = _mm256_packus_epi32(d, d); /* words: bytes 0-3 twice | 4-7 twice */
    p = _mm256_packus_epi16(p, p);
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
}

/* 8 bytes of nibbles to 16 codes: elements 0..7 in *c0, 8..15 in *c1. */
static inline void unpack16(__m128i b, __m256i *c0, __m256i *c1) {
    const __m128i low = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_and_si128(b, low), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
    __m128i c = _mm_unpacklo_epi8(lo, hi);
    *c0 = _mm256_cvtepu8_epi32(c);
    *c1 = _mm256_cvtepu8_epi32(_mm_srli_si128(c, 8));
}

/* Up to 8 bytes to 8 int32 lanes (missing ones 0). */
static inline __m256i load_bytes(const uint8_t *p, size_t nb) {
    uint8_t b[8] = {0};
    memcpy(b, p, nb);
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *) b));
}

static inline void store_bytes(uint8_t *p, __m256i v, size_t nb) {
    int32_t t[CHUNK];
    _mm256_storeu_si256((__m256i *) t, v);
    for (size_t k = 0; k < nb; k++) p[k] = (uint8_t) t[k];
}

/* 2^shared_exp from MXFP4 scale codes (rb_mx_up): code 0 is the subnormal 2^-127. */
static inline __m256i mx_up_bits(__m256i sc) {
    return _mm256_blendv_epi8(_mm256_slli_epi32(sc, 23), _mm256_set1_epi32(0x00400000),
                              _mm256_cmpeq_epi32(sc, _mm256_setzero_si256()));
}

/* ---- MXFP4 ---- */

/* nb <= CHUNK whole blocks of 32. */
static void mx_chunk(const float *x, size_t nb, rb_mx_rule rule, uint8_t *packed, uint8_t *scales,
                     float *y) {
    uint32_t am[CHUNK] = {0};
    for (size_t k = 0; k < nb; k++) {
        const float *xb = x + 32 * k;
        __m256i m = _mm256_max_epu32(
            _mm256_max_epu32(abs_bits(_mm256_loadu_ps(xb)), abs_bits(_mm256_loadu_ps(xb + 8))),
            _mm256_max_epu32(abs_bits(_mm256_loadu_ps(xb + 16)),
                             abs_bits(_mm256_loadu_ps(xb + 24))));
        am[k] = hmax_epu32(m);
    }
    /* rb_mx_scale_code, rb_mx_down and rb_mx_up, one block per lane. */
    __m256i a = _mm256_loadu_si256((const __m256i *) am);
    __m256i sc = _mm256_sub_epi32(_mm256_srli_epi32(a, 23), _mm256_set1_epi32(2));
    if (rule == RB_MX_CEIL) /* the mantissa field is < 2^23, so the signed compare is fine */
        sc = _mm256_sub_epi32(sc,
                              _mm256_cmpgt_epi32(_mm256_and_si256(a, _mm256_set1_epi32(0x7FFFFF)),
                                                 _mm256_set1_epi32(0x400000)));
    sc = _mm256_max_epi32(sc, _mm256_setzero_si256());
    if (scales) store_bytes(scales, sc, nb);
    float down[CHUNK], up[CHUNK];
    _mm256_storeu_si256((__m256i *) down,
                        _mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(254), sc), 23));
    _mm256_storeu_si256((__m256i *) up, mx_up_bits(sc));
    for (size_t k = 0; k < nb; k++) {
        const float *xb = x + 32 * k;
        __m256 dn = _mm256_set1_ps(down[k]);
        __m256i c[4];
        for (int j = 0; j < 4; j++)
            c[j] = e2m1_codes(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * j), dn), 0);
        if (packed)
            _mm_storeu_si128((__m128i *) (packed + 16 * k),
                             _mm_unpacklo_epi64(pack16(c[0], c[1]), pack16(c[2], c[3])));
        if (y) {
            __m256 u = _mm256_set1_ps(up[k]);
            for (int j = 0; j < 4; j++)
                _mm256_storeu_ps(y + 32 * k + 8 * j, _mm256_mul_ps(e2m1_values(c[j]), u));
        }
    }
}

static void mx_dequant_chunk(const uint8_t *packed, const uint8_t *scales, size_t nb, float *y) {
    float up[CHUNK];
    _mm256_storeu_si256((__m256i *) up, mx_up_bits(load_bytes(scales, nb)));
    for (size_t k = 0; k < nb; k++) {
        __m128i b = _mm_loadu_si128((const __m128i *) (packed + 16 * k));
        __m256 u = _mm256_set1_ps(up[k]);
        __m256i c[4];
        unpack16(b, &c[0], &c[1]);
        unpack16(_mm_srli_si128(b, 8), &c[2], &c[3]);
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(y + 32 * k + 8 * j, _mm256_mul_ps(e2m1_values(c[j]), u));
    }
}

/* ---- NVFP4 ---- */

/* rb_e4m3_sat_pos on 8 lanes of s >= 0: the code and its value. */
static inline __m256i e4m3_sat(__m256 s, __m256 *value) {
    s = _mm256_min_ps(s, _mm256_set1_ps(448.0f));
    __m256 sub = _mm256_cmp_ps(s, _mm256_set1_ps(0x1p-6f), _CMP_LT_OQ);
    const __m256 magic = _mm256_set1_ps(16384.0f);
    __m256 r = _mm256_add_ps(s, magic);
    __m256 vsub = _mm256_sub_ps(r, magic);
    __m256i csub = _mm256_sub_epi32(_mm256_castps_si256(r), _mm256_castps_si256(magic));
    __m256i b = _mm256_castps_si256(s);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(b, 20), _mm256_set1_epi32(1));
    b = _mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7FFFF)), odd);
    b = _mm256_and_si256(b, _mm256_set1_epi32((int) 0xFFF00000u));
    __m256i cnorm = _mm256_srli_epi32(_mm256_sub_epi32(b, _mm256_set1_epi32(120 << 23)), 20);
    *value = _mm256_blendv_ps(_mm256_castsi256_ps(b), vsub, sub);
    return _mm256_blendv_epi8(cnorm, csub, _mm256_castps_si256(sub));
}

/* nb <= CHUNK whole blocks of 16. */
static void nv_chunk(const float *x, size_t nb, float s_enc, uint8_t *packed, uint8_t *scales,
                     float *y) {
    uint32_t am[CHUNK] = {0};
    for (size_t k = 0; k < nb; k++)
        am[k] = hmax_epu32(_mm256_max_epu32(abs_bits(_mm256_loadu_ps(x + 16 * k)),
                                            abs_bits(_mm256_loadu_ps(x + 16 * k + 8))));
    const __m256 venc = _mm256_set1_ps(s_enc);
    __m256 amax = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *) am)), s_b;
    __m256i sc = e4m3_sat(_mm256_mul_ps(_mm256_div_ps(amax, _mm256_set1_ps(6.0f)), venc), &s_b);
    __m256 pos = _mm256_cmp_ps(s_b, _mm256_setzero_ps(), _CMP_GT_OQ);
    float mul[CHUNK], dec[CHUNK];
    _mm256_storeu_ps(mul, _mm256_and_ps(_mm256_div_ps(venc, s_b), pos));
    _mm256_storeu_ps(dec, _mm256_div_ps(s_b, venc));
    if (scales) store_bytes(scales, sc, nb);
    int live = _mm256_movemask_ps(pos);
    for (size_t k = 0; k < nb; k++) {
        const float *xb = x + 16 * k;
        __m256i c0 = _mm256_setzero_si256(), c1 = c0; /* a block with scale 0 stores zero codes */
        if (live >> k & 1) {
            __m256 m = _mm256_set1_ps(mul[k]);
            c0 = e2m1_codes(_mm256_mul_ps(_mm256_loadu_ps(xb), m), 1);
            c1 = e2m1_codes(_mm256_mul_ps(_mm256_loadu_ps(xb + 8), m), 1);
        }
        if (packed) _mm_storel_epi64((__m128i *) (packed + 8 * k), pack16(c0, c1));
        if (y) {
            __m256 d = _mm256_set1_ps(dec[k]);
            _mm256_storeu_ps(y + 16 * k, _mm256_mul_ps(e2m1_values(c0), d));
            _mm256_storeu_ps(y + 16 * k + 8, _mm256_mul_ps(e2m1_values(c1), d));
        }
    }
}

/* E4M3 decode of 8 codes (no NaN among them), as the AVX-512 variant's e4m3_decode. */
static inline __m256 e4m3_decode(__m256i c) {
    __m256i mag = _mm256_and_si256(c, _mm256_set1_epi32(0x7F));
    __m256 normal = _mm256_castsi256_ps(
        _mm256_add_epi32(_mm256_slli_epi32(mag, 20), _mm256_set1_epi32(120 << 23)));
    __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(mag), _mm256_set1_ps(0x1p-9f));
    __m256 v = _mm256_blendv_ps(normal, sub,
                                _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), mag)));
    __m256i sign = _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), 24);
    return _mm256_or_ps(v, _mm256_castsi256_ps(sign));
}

static void nv_dequant_chunk(const uint8_t *packed, const uint8_t *scales, float ts, size_t nb,
                             float *y) {
    float dec[CHUNK];
    _mm256_storeu_ps(dec, _mm256_div_ps(e4m3_decode(load_bytes(scales, nb)), _mm256_set1_ps(ts)));
    for (size_t k = 0; k < nb; k++) {
        __m256i c0, c1;
        unpack16(_mm_loadl_epi64((const __m128i *) (packed + 8 * k)), &c0, &c1);
        __m256 d = _mm256_set1_ps(dec[k]);
        _mm256_storeu_ps(y + 16 * k, _mm256_mul_ps(e2m1_values(c0), d));
        _mm256_storeu_ps(y + 16 * k + 8, _mm256_mul_ps(e2m1_values(c1), d));
    }
}

/* The block drivers (argument checks, whole chunks, the short last block) are the same for every
 * instruction set: they call this file's chunk functions. */
#define RB_FP_ISA(name) name##avx2
#include "kernels/x86/fpformats_drivers.h"
