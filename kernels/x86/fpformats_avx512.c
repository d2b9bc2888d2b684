/* AVX-512 MXFP4 / NVFP4 codecs, bit-identical to the references in kernels/fpformats.c: block
 * amax as integer max of |x| bits, scales by integer ops on the float bits, E2M1 by compare masks,
 * values by a 16-entry permute, nibbles packed with qword shifts and vpmovqb. */
#include <immintrin.h>
#include <string.h>

#include "kernels/fpformats_variants.h"

/* Blocks whose scales are computed together, one per lane. */
enum { CHUNK = 16 };

static const float e2m1_table[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                     -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

static inline __m512i abs_bits(__m512 v) {
    return _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF));
}

/* Largest |x| bit pattern of x[0, n): >= 0x7F800000 exactly when some element is NaN or Inf. */
static uint32_t amax_bits(const float *x, size_t n) {
    __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_epu32(m0, abs_bits(_mm512_loadu_ps(x + i)));
        m1 = _mm512_max_epu32(m1, abs_bits(_mm512_loadu_ps(x + i + 16)));
        m2 = _mm512_max_epu32(m2, abs_bits(_mm512_loadu_ps(x + i + 32)));
        m3 = _mm512_max_epu32(m3, abs_bits(_mm512_loadu_ps(x + i + 48)));
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n - i)) - 1);
        m0 = _mm512_max_epu32(m0, abs_bits(_mm512_maskz_loadu_ps(k, x + i)));
    }
    m0 = _mm512_max_epu32(_mm512_max_epu32(m0, m1), _mm512_max_epu32(m2, m3));
    return _mm512_reduce_max_epu32(m0);
}

/* E2M1 codes of v: the magnitude counts the midpoints below |v| (ties as in e2m1_mag of the
 * reference), the sign bit comes from v; a NaN lane (NVFP4's 0 * Inf) gives 0 like the
 * reference's e2m1_code. */
static inline __m512i e2m1_codes(__m512 v, int nan_possible) {
    __m512 a = _mm512_abs_ps(v);
    const __m512i one = _mm512_set1_epi32(1);
    __m512i c =
        _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.25f), _CMP_GT_OQ), one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.75f), _CMP_GE_OQ), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.25f), _CMP_GT_OQ), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.75f), _CMP_GE_OQ), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(2.5f), _CMP_GT_OQ), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.5f), _CMP_GE_OQ), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(5.0f), _CMP_GT_OQ), c, one);
    __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(v));
    if (nan_possible) neg &= _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
    return _mm512_mask_or_epi32(c, neg, c, _mm512_set1_epi32(8));
}

/* 16 codes (one per lane, < 16) to 8 bytes, element 2i in the low nibble of byte i. */
static inline __m128i pack16(__m512i c) {
    return _mm512_cvtepi64_epi8(_mm512_or_si512(c, _mm512_srli_epi64(c, 28)));
}

/* 8 bytes of nibbles to 16 codes, one per lane. */
static inline __m512i unpack16(__m128i b) {
    const __m128i low = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_and_si128(b, low), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
}

/* ---- MXFP4 ---- */

/* nb <= CHUNK whole blocks of 32. */
static void mx_chunk(const float *x, size_t nb, rb_mx_rule rule, uint8_t *packed, uint8_t *scales,
                     float *y) {
    uint32_t am[CHUNK] = {0};
    for (size_t k = 0; k < nb; k++) {
        __m512i m = _mm512_max_epu32(abs_bits(_mm512_loadu_ps(x + 32 * k)),
                                     abs_bits(_mm512_loadu_ps(x + 32 * k + 16)));
        am[k] = _mm512_reduce_max_epu32(m);
    }
    /* rb_mx_scale_code, rb_mx_down and rb_mx_up, one block per lane. */
    __m512i a = _mm512_loadu_si512(am);
    __m512i sc = _mm512_sub_epi32(_mm512_srli_epi32(a, 23), _mm512_set1_epi32(2));
    if (rule == RB_MX_CEIL) {
        __mmask16 up = _mm512_cmpgt_epu32_mask(_mm512_and_si512(a, _mm512_set1_epi32(0x7FFFFF)),
                                               _mm512_set1_epi32(0x400000));
        sc = _mm512_mask_add_epi32(sc, up, sc, _mm512_set1_epi32(1));
    }
    sc = _mm512_max_epi32(sc, _mm512_setzero_si512());
    __mmask16 live = (__mmask16) ((1u << nb) - 1);
    if (scales) _mm512_mask_cvtepi32_storeu_epi8(scales, live, sc);
    float down[CHUNK], upv[CHUNK];
    _mm512_storeu_si512(down, _mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(254), sc), 23));
    __m512i upb = _mm512_slli_epi32(sc, 23);
    upb = _mm512_mask_mov_epi32(upb, _mm512_cmpeq_epi32_mask(sc, _mm512_setzero_si512()),
                                _mm512_set1_epi32(0x00400000)); /* 2^-127 */
    _mm512_storeu_si512(upv, upb);
    const __m512 table = _mm512_loadu_ps(e2m1_table);
    for (size_t k = 0; k < nb; k++) {
        const float *xb = x + 32 * k;
        __m512 dn = _mm512_set1_ps(down[k]);
        __m512i c0 = e2m1_codes(_mm512_mul_ps(_mm512_loadu_ps(xb), dn), 0);
        __m512i c1 = e2m1_codes(_mm512_mul_ps(_mm512_loadu_ps(xb + 16), dn), 0);
        if (packed)
            _mm_storeu_si128((__m128i *) (packed + 16 * k),
                             _mm_unpacklo_epi64(pack16(c0), pack16(c1)));
        if (y) {
            __m512 u = _mm512_set1_ps(upv[k]);
            _mm512_storeu_ps(y + 32 * k, _mm512_mul_ps(_mm512_permutexvar_ps(c0, table), u));
            _mm512_storeu_ps(y + 32 * k + 16, _mm512_mul_ps(_mm512_permutexvar_ps(c1, table), u));
        }
    }
}

static void mx_dequant_chunk(const uint8_t *packed, const uint8_t *scales, size_t nb, float *y) {
    __m512i sc = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((__mmask16) ((1u << nb) - 1), scales));
    __m512i upb = _mm512_slli_epi32(sc, 23);
    upb = _mm512_mask_mov_epi32(upb, _mm512_cmpeq_epi32_mask(sc, _mm512_setzero_si512()),
                                _mm512_set1_epi32(0x00400000));
    float upv[CHUNK];
    _mm512_storeu_si512(upv, upb);
    const __m512 table = _mm512_loadu_ps(e2m1_table);
    for (size_t k = 0; k < nb; k++) {
        __m128i b = _mm_loadu_si128((const __m128i *) (packed + 16 * k));
        __m512 u = _mm512_set1_ps(upv[k]);
        __m512i c0 = unpack16(b), c1 = unpack16(_mm_srli_si128(b, 8));
        _mm512_storeu_ps(y + 32 * k, _mm512_mul_ps(_mm512_permutexvar_ps(c0, table), u));
        _mm512_storeu_ps(y + 32 * k + 16, _mm512_mul_ps(_mm512_permutexvar_ps(c1, table), u));
    }
}

/* ---- NVFP4 ---- */

/* rb_e4m3_sat_pos on 16 lanes of s >= 0: the code and its value. */
static inline __m512i e4m3_sat(__m512 s, __m512 *value) {
    s = _mm512_min_ps(s, _mm512_set1_ps(448.0f));
    __mmask16 sub = _mm512_cmp_ps_mask(s, _mm512_set1_ps(0x1p-6f), _CMP_LT_OQ);
    const __m512 magic = _mm512_set1_ps(16384.0f);
    __m512 r = _mm512_add_ps(s, magic);
    __m512 vsub = _mm512_sub_ps(r, magic);
    __m512i csub = _mm512_sub_epi32(_mm512_castps_si512(r), _mm512_castps_si512(magic));
    __m512i b = _mm512_castps_si512(s);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 20), _mm512_set1_epi32(1));
    b = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7FFFF)), odd);
    b = _mm512_and_si512(b, _mm512_set1_epi32((int) 0xFFF00000u));
    __m512i cnorm = _mm512_srli_epi32(_mm512_sub_epi32(b, _mm512_set1_epi32(120 << 23)), 20);
    *value = _mm512_mask_mov_ps(_mm512_castsi512_ps(b), sub, vsub);
    return _mm512_mask_mov_epi32(cnorm, sub, csub);
}

/* nb <= CHUNK whole blocks of 16. */
static void nv_chunk(const float *x, size_t nb, float s_enc, uint8_t *packed, uint8_t *scales,
                     float *y) {
    uint32_t am[CHUNK] = {0};
    for (size_t k = 0; k < nb; k++)
        am[k] = _mm512_reduce_max_epu32(abs_bits(_mm512_loadu_ps(x + 16 * k)));
    const __m512 venc = _mm512_set1_ps(s_enc);
    __m512 amax = _mm512_castsi512_ps(_mm512_loadu_si512(am)), s_b;
    __m512i sc = e4m3_sat(_mm512_mul_ps(_mm512_div_ps(amax, _mm512_set1_ps(6.0f)), venc), &s_b);
    __mmask16 pos = _mm512_cmp_ps_mask(s_b, _mm512_setzero_ps(), _CMP_GT_OQ);
    float mul[CHUNK], dec[CHUNK];
    _mm512_storeu_ps(mul, _mm512_maskz_div_ps(pos, venc, s_b));
    _mm512_storeu_ps(dec, _mm512_div_ps(s_b, venc));
    if (scales) _mm512_mask_cvtepi32_storeu_epi8(scales, (__mmask16) ((1u << nb) - 1), sc);
    const __m512 table = _mm512_loadu_ps(e2m1_table);
    for (size_t k = 0; k < nb; k++) {
        __m512i c = _mm512_setzero_si512(); /* a block with scale 0 stores zero codes */
        if (pos >> k & 1)
            c = e2m1_codes(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * k), _mm512_set1_ps(mul[k])), 1);
        if (packed) _mm_storel_epi64((__m128i *) (packed + 8 * k), pack16(c));
        if (y)
            _mm512_storeu_ps(
                y + 16 * k, _mm512_mul_ps(_mm512_permutexvar_ps(c, table), _mm512_set1_ps(dec[k])));
    }
}

/* E4M3 decode of 16 codes (no NaN among them): normal codes move their exponent and mantissa
 * fields into place and rebias by 120; subnormals are m * 2^-9. */
static inline __m512 e4m3_decode(__m512i c) {
    __m512i mag = _mm512_and_si512(c, _mm512_set1_epi32(0x7F));
    __m512 normal = _mm512_castsi512_ps(
        _mm512_add_epi32(_mm512_slli_epi32(mag, 20), _mm512_set1_epi32(120 << 23)));
    __m512 sub = _mm512_mul_ps(_mm512_cvtepi32_ps(mag), _mm512_set1_ps(0x1p-9f));
    __m512 v = _mm512_mask_mov_ps(normal, _mm512_cmplt_epi32_mask(mag, _mm512_set1_epi32(8)), sub);
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x80)), 24);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), sign));
}

static void nv_dequant_chunk(const uint8_t *packed, const uint8_t *scales, float ts, size_t nb,
                             float *y) {
    __m512i sc = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((__mmask16) ((1u << nb) - 1), scales));
    float dec[CHUNK];
    _mm512_storeu_ps(dec, _mm512_div_ps(e4m3_decode(sc), _mm512_set1_ps(ts)));
    const __m512 table = _mm512_loadu_ps(e2m1_table);
    for (size_t k = 0; k < nb; k++) {
        __m512i c = unpack16(_mm_loadl_epi64((const __m128i *) (packed + 8 * k)));
        _mm512_storeu_ps(y + 16 * k,
                         _mm512_mul_ps(_mm512_permutexvar_ps(c, table), _mm512_set1_ps(dec[k])));
    }
}

/* The block drivers (argument checks, whole chunks, the short last block) are the same for every
 * instruction set: they call this file's chunk functions. */
#define RB_FP_ISA(name) name##avx512
#include "kernels/x86/fpformats_drivers.h"
