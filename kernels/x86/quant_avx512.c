/* AVX-512 integer quantizer (row/group) and codebook quantizer, bit-identical to the references. */
#include <immintrin.h>
#include <math.h>

#include "kernels/quant_variants.h"
#include "kernels/x86/cbsearch_avx512.h"

/* Lanes [0, n) of a 16-lane tail. */
static inline __mmask16 tail16(size_t n) {
    return n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << n) - 1);
}

/* NaN (quiet or signalling) or +-Inf. */
#define NONFINITE_CLASS 0x99

/* The reference's element rule, 16 lanes: t = x / s, round to nearest even, + z, clamp. */
static inline __m512 code16(__m512 v, __m512 vs, __m512 vz, __m512 vlo, __m512 vhi) {
    __m512 t = _mm512_div_ps(v, vs);
    __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 q = _mm512_add_ps(r, vz);
    q = _mm512_max_ps(q, vlo);
    return _mm512_min_ps(q, vhi);
}

int rb_quant_rows_f32_avx512(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                             size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                             float *scales, float *zeros) {
    if (spec->round != RB_ROUND_NEAREST_EVEN || group == 0) return RB_EDECLINE;
    size_t ng = (cols + group - 1) / group;
    const __m512 vlo = _mm512_set1_ps(spec->asym ? 0.0f : (float) -(1 << (spec->bits - 1)));
    const __m512 vhi = _mm512_set1_ps(spec->asym ? (float) ((1 << spec->bits) - 1)
                                                 : (float) ((1 << (spec->bits - 1)) - 1));
    /* Even groups start on byte boundaries, so 16 codes become 8 whole bytes. */
    int pack_fast = group % 2 == 0;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        for (size_t j = 0; j < ng; j++) {
            size_t c0 = j * group, len = cols - c0 < group ? cols - c0 : group;
            __m512 vmn = _mm512_set1_ps(INFINITY), vmx = _mm512_set1_ps(-INFINITY);
            __mmask16 bad = 0;
            size_t i = 0;
            for (; i + 16 <= len; i += 16) {
                __m512 v = _mm512_loadu_ps(xr + c0 + i);
                bad |= _mm512_fpclass_ps_mask(v, NONFINITE_CLASS);
                vmn = _mm512_min_ps(vmn, v);
                vmx = _mm512_max_ps(vmx, v);
            }
            if (i < len) {
                __mmask16 m = tail16(len - i);
                __m512 v = _mm512_maskz_loadu_ps(m, xr + c0 + i);
                bad |= _mm512_mask_fpclass_ps_mask(m, v, NONFINITE_CLASS);
                vmn = _mm512_mask_min_ps(vmn, m, vmn, v);
                vmx = _mm512_mask_max_ps(vmx, m, vmx, v);
            }
            /* The reference names the offending element. */
            if (bad)
                return rb_quant_rows_f32_ref(spec, x, rows, cols, ld, group, out, ldo, mode, scales,
                                             zeros);
            float s, z;
            int rc =
                rb_quant_params(spec, _mm512_reduce_min_ps(vmn), _mm512_reduce_max_ps(vmx), &s, &z);
            /* A failed pair (the reference's message names row and group) or an fp16 scale
             * rounded to 0 (its group is all code 0, which code16's division does not give): the
             * reference redoes the call. */
            if (rc || !(s > 0))
                return rb_quant_rows_f32_ref(spec, x, rows, cols, ld, group, out, ldo, mode, scales,
                                             zeros);
            scales[r * ng + j] = s;
            if (zeros) zeros[r * ng + j] = z;
            const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(spec->asym ? z : 0.0f);
            for (i = 0; i < len; i += 16) {
                __mmask16 m = tail16(len - i);
                size_t c = c0 + i;
                __m512 xv =
                    len - i >= 16 ? _mm512_loadu_ps(xr + c) : _mm512_maskz_loadu_ps(m, xr + c);
                __m512 q = code16(xv, vs, vz, vlo, vhi);
                if (mode == RB_QOUT_FAKE) {
                    __m512 y = _mm512_mul_ps(vs, _mm512_sub_ps(q, vz));
                    if (m == 0xFFFF)
                        _mm512_storeu_ps((float *) out + r * ldo + c, y);
                    else
                        _mm512_mask_storeu_ps((float *) out + r * ldo + c, m, y);
                    continue;
                }
                __m512i qi = _mm512_maskz_mov_epi32(m, _mm512_cvtps_epi32(q));
                if (mode == RB_QOUT_CODES) {
                    _mm512_mask_cvtepi32_storeu_epi8((uint8_t *) out + r * ldo + c, m, qi);
                } else if (pack_fast) {
                    /* Each 64-bit lane holds codes 2p (low) and 2p+1 (high): fold the high
                     * nibble down next to the low one and keep the low byte. */
                    __m512i v = _mm512_and_si512(qi, _mm512_set1_epi32(0xF));
                    v = _mm512_or_si512(v, _mm512_srli_epi64(v, 28));
                    __mmask8 mb = (__mmask8) ((1u << ((len - i < 16 ? len - i : 16) + 1) / 2) - 1);
                    _mm512_mask_cvtepi64_storeu_epi8((uint8_t *) out + r * ldo + c / 2, mb, v);
                } else {
                    uint8_t tmp[16];
                    _mm_storeu_si128((__m128i *) tmp, _mm512_cvtepi32_epi8(qi));
                    uint8_t *b = (uint8_t *) out + r * ldo;
                    for (size_t k = 0; k < 16 && i + k < len; k++) {
                        uint8_t nib = tmp[k] & 0xF;
                        if ((c + k) % 2 == 0)
                            b[(c + k) / 2] = nib;
                        else
                            b[(c + k) / 2] |= (uint8_t) (nib << 4);
                    }
                }
            }
        }
    }
    return RB_OK;
}

/* The codebook quantizer: rb_cbsearch16 (kernels/x86/cbsearch_avx512.h) 16 lanes at a time; a
 * row with a NaN or Inf goes to the reference (which defines their index). */
int rb_codebook_quant_f32_avx512(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                                 size_t ld, uint8_t *idx) {
    rb_cbsearch q;
    rb_cbsearch_init(&q, cb);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        for (size_t c = 0; c < cols; c += 16) {
            __mmask16 m = tail16(cols - c);
            __m512 v = _mm512_maskz_loadu_ps(m, xr + c);
            if (_mm512_mask_fpclass_ps_mask(m, v, NONFINITE_CLASS))
                return rb_codebook_quant_f32_ref(cb, x, rows, cols, ld, idx);
            _mm512_mask_cvtepi32_storeu_epi8(idx + r * cols + c, m, rb_cbsearch16(&q, v, q.steps));
        }
    }
    return RB_OK;
}
