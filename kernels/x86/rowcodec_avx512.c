/* AVX-512 row codec primitives, bit-identical to kernels/rowcodec.c's references: packing and
 * unpacking 64 codes per step (b = 1, 2, 4, 8 with byte shuffles and multiply-adds, other widths
 * with BMI2 pext/pdep on 8 codes), codebook lookups by permutes, and row norms and inner products
 * in rb_lanes16_sum's order (kernels/x86/lanes16_avx512.h). */
#include <immintrin.h>
#include <string.h>

#include "kernels/quant.h"
#include "kernels/rowcodec.h"
#include "kernels/x86/lanes16_avx512.h"

/* ---- packing ---- */

/* pext/pdep: BMI2 is part of the AVX-512 level (kernels/dispatch.c checks it). */

/* 64 codes (n >= 64) of one row to 8 * bits bytes. */
static inline void pack64(const uint8_t *c, int bits, uint8_t *o) {
    __m512i v = _mm512_loadu_si512(c);
    switch (bits) {
    case 1: {
        uint64_t m = _mm512_test_epi8_mask(v, _mm512_set1_epi8(1));
        memcpy(o, &m, 8);
        return;
    }
    case 2: {
        __m512i t = _mm512_maddubs_epi16(_mm512_and_si512(v, _mm512_set1_epi8(3)),
                                         _mm512_set1_epi16(0x0401));
        t = _mm512_madd_epi16(t, _mm512_set1_epi32(0x00100001));
        _mm_storeu_si128((__m128i *) o, _mm512_cvtepi32_epi8(t));
        return;
    }
    case 4: {
        __m512i t = _mm512_maddubs_epi16(_mm512_and_si512(v, _mm512_set1_epi8(15)),
                                         _mm512_set1_epi16(0x1001));
        _mm256_storeu_si256((__m256i *) o, _mm512_cvtepi16_epi8(t));
        return;
    }
    case 8:
        _mm512_storeu_si512(o, v);
        return;
    default: {
        /* 8 codes of b bits are b whole bytes. */
        uint64_t mask = 0x0101010101010101ull * ((1u << bits) - 1);
        for (int k = 0; k < 8; k++) {
            uint64_t w;
            memcpy(&w, c + 8 * k, 8);
            uint64_t p = _pext_u64(w, mask);
            memcpy(o + k * bits, &p, (size_t) bits);
        }
        return;
    }
    }
}

/* 8 * bits bytes of one stream to 64 codes. */
static inline void unpack64(const uint8_t *in, int bits, uint8_t *c) {
    switch (bits) {
    case 1: {
        uint64_t m;
        memcpy(&m, in, 8);
        _mm512_storeu_si512(c, _mm512_maskz_mov_epi8(m, _mm512_set1_epi8(1)));
        return;
    }
    case 2: {
        /* Byte k of a 32-bit lane holding byte B is (B >> 2k) & 3: B << 6k puts bits 2k..2k+1
         * at 8k. */
        __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) in));
        __m512i t =
            _mm512_or_si512(_mm512_or_si512(b, _mm512_slli_epi32(b, 6)),
                            _mm512_or_si512(_mm512_slli_epi32(b, 12), _mm512_slli_epi32(b, 18)));
        _mm512_storeu_si512(c, _mm512_and_si512(t, _mm512_set1_epi32(0x03030303)));
        return;
    }
    case 4: {
        __m512i b = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *) in));
        __m512i t =
            _mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi16(0x0F)),
                            _mm512_and_si512(_mm512_slli_epi16(b, 4), _mm512_set1_epi16(0x0F00)));
        _mm512_storeu_si512(c, t);
        return;
    }
    case 8:
        memcpy(c, in, 64);
        return;
    default: {
        uint64_t mask = 0x0101010101010101ull * ((1u << bits) - 1);
        for (int k = 0; k < 8; k++) {
            uint64_t w = 0;
            memcpy(&w, in + k * bits, (size_t) bits);
            uint64_t v = _pdep_u64(w, mask);
            memcpy(c + 8 * k, &v, 8);
        }
        return;
    }
    }
}

int rb_pack_rows_avx512(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                        size_t ldo) {
    size_t full = n / 64 * 64;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *c = codes + r * n;
        uint8_t *o = out + r * ldo;
        for (size_t j = 0; j < full; j += 64) pack64(c + j, bits, o + j / 8 * (size_t) bits);
        /* The tail starts on a byte boundary (64 codes are whole bytes). */
        if (full < n) rb_pack_bits(c + full, n - full, bits, o + full / 8 * (size_t) bits);
    }
    return RB_OK;
}

int rb_unpack_rows_avx512(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                          uint8_t *codes) {
    size_t full = n / 64 * 64;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *s = in + r * ldi;
        uint8_t *c = codes + r * n;
        for (size_t j = 0; j < full; j += 64) unpack64(s + j / 8 * (size_t) bits, bits, c + j);
        if (full < n) rb_unpack_bits(s + full / 8 * (size_t) bits, n - full, bits, c + full);
    }
    return RB_OK;
}

/* ---- codebook decoding ---- */

int rb_codebook_decode_rows_f32_avx512(const rb_codebook *cb, const uint8_t *in, size_t ldi,
                                       size_t rows, size_t n, int bits, float *y, size_t ldy) {
    const __m512 c0 = _mm512_loadu_ps(cb->centroids), c1 = _mm512_loadu_ps(cb->centroids + 16);
    const __m512i kmax = _mm512_set1_epi32((int) cb->k - 1);
    uint8_t idx[64];
    for (size_t r = 0; r < rows; r++)
        for (size_t j0 = 0; j0 < n; j0 += 64) {
            size_t len = n - j0 < 64 ? n - j0 : 64;
            const uint8_t *s = in + r * ldi + j0 / 8 * (size_t) bits;
            if (len == 64)
                unpack64(s, bits, idx);
            else
                rb_unpack_bits(s, len, bits, idx);
            float *yr = y + r * ldy + j0;
            for (size_t j = 0; j < len; j += 16) {
                __mmask16 m =
                    len - j >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (len - j)) - 1);
                __m512i q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, idx + j));
                if (_mm512_mask_cmpgt_epi32_mask(m, q, kmax))
                    return rb_codebook_decode_rows_f32_ref(cb, in, ldi, rows, n, bits, y, ldy);
                __m512 v = cb->k <= 16   ? _mm512_permutexvar_ps(q, c0)
                           : cb->k <= 32 ? _mm512_permutex2var_ps(c0, q, c1)
                                         : _mm512_i32gather_ps(q, cb->centroids, 4);
                _mm512_mask_storeu_ps(yr + j, m, v);
            }
        }
    return RB_OK;
}

/* ---- row reductions: one row at a time, its 16 partial sums in the lanes ---- */

int rb_rows_sqnorm_f32_avx512(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                              double *out) {
    (void) b;
    for (size_t r = 0; r < rows; r++) out[r] = rb_lanes16_dot(a + r * stride, a + r * stride, n);
    return RB_OK;
}

int rb_rows_dot_f32_avx512(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                           double *out) {
    for (size_t r = 0; r < rows; r++) out[r] = rb_lanes16_dot(a + r * stride, b + r * stride, n);
    return RB_OK;
}

int rb_rows_scale_f64_f32_avx512(const float *x, size_t rows, size_t n, size_t ldx, const double *s,
                                 float *y, size_t ldy) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        const __m512d vs = _mm512_set1_pd(s[r]);
        for (size_t j = 0; j < n; j += 8) {
            __mmask8 m = n - j >= 8 ? (__mmask8) 0xFF : (__mmask8) ((1u << (n - j)) - 1);
            __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, xr + j));
            _mm256_mask_storeu_ps(yr + j, m, _mm512_cvtpd_ps(_mm512_mul_pd(v, vs)));
        }
    }
    return RB_OK;
}

int rb_rows_scale_f32_avx512(float *x, size_t rows, size_t n, size_t stride, const float *s) {
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * stride;
        const __m512 vs = _mm512_set1_ps(s[r]);
        size_t j = 0;
        for (; j + 16 <= n; j += 16)
            _mm512_storeu_ps(xr + j, _mm512_mul_ps(_mm512_loadu_ps(xr + j), vs));
        if (j < n) {
            __mmask16 m = (__mmask16) ((1u << (n - j)) - 1);
            _mm512_mask_storeu_ps(xr + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + j), vs));
        }
    }
    return RB_OK;
}

int rb_rows_mul_f32_avx512(float *x, size_t rows, size_t n, size_t stride, const float *d) {
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * stride;
        size_t j = 0;
        for (; j + 16 <= n; j += 16)
            _mm512_storeu_ps(xr + j,
                             _mm512_mul_ps(_mm512_loadu_ps(xr + j), _mm512_loadu_ps(d + j)));
        if (j < n) {
            __mmask16 m = (__mmask16) ((1u << (n - j)) - 1);
            _mm512_mask_storeu_ps(
                xr + j, m,
                _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + j), _mm512_maskz_loadu_ps(m, d + j)));
        }
    }
    return RB_OK;
}

int rb_dequant_rows_f32_avx512(const uint8_t *codes, size_t rows, size_t n, size_t group, int asym,
                               const float *scales, const float *zeros, float *y, size_t ldy) {
    size_t ng = (n + group - 1) / group;
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < ng; g++) {
            size_t c0 = g * group, len = n - c0 < group ? n - c0 : group, p = r * ng + g;
            const __m512 vs = _mm512_set1_ps(scales[p]),
                         vz = _mm512_set1_ps(asym ? zeros[p] : 0.0f);
            const uint8_t *q = codes + r * n + c0;
            float *yr = y + r * ldy + c0;
            for (size_t j = 0; j < len; j += 16) {
                __mmask16 m =
                    len - j >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (len - j)) - 1);
                __m128i b = _mm_maskz_loadu_epi8(m, q + j);
                __m512i i = asym ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
                __m512 v = _mm512_mul_ps(vs, _mm512_sub_ps(_mm512_cvtepi32_ps(i), vz));
                _mm512_mask_storeu_ps(yr + j, m, v);
            }
        }
    return RB_OK;
}
