/* AVX2 integer quantizer (row/group) and codebook quantizer, bit-identical to the references:
 * 8 lanes at a time, the tail in scalar code with the same fp32 operations. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/quant_variants.h"

/* The reference's element rule, 8 lanes and 1 lane: t = x / s, round to nearest even, + z,
 * clamp to [lo, hi]. */
static inline __m256 code8(__m256 v, __m256 vs, __m256 vz, __m256 vlo, __m256 vhi) {
    __m256 t = _mm256_div_ps(v, vs);
    __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 q = _mm256_add_ps(r, vz);
    q = _mm256_max_ps(q, vlo);
    return _mm256_min_ps(q, vhi);
}

static inline float code1(float v, float s, float z, float lo, float hi) {
    float q = rintf(v / s) + z;
    q = q < lo ? lo : q;
    return q > hi ? hi : q;
}

/* The low byte of each of the 8 int32 lanes, in order. */
static inline __m128i low_bytes8(__m256i q) {
    const __m256i pick =
        _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i b = _mm256_shuffle_epi8(q, pick);
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
    return _mm256_castsi256_si128(b);
}

/* Codes 2p and 2p+1 (one 64-bit lane) folded into byte p, for the 8 codes: 4 bytes. */
static inline uint32_t nibbles8(__m256i q) {
    __m256i v = _mm256_and_si256(q, _mm256_set1_epi32(0xF));
    v = _mm256_or_si256(v, _mm256_srli_epi64(v, 28));
    const __m256i pick =
        _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 8,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    v = _mm256_shuffle_epi8(v, pick);
    __m128i b = _mm_or_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return (uint32_t) _mm_cvtsi128_si32(b);
}

static inline void put_nibble(uint8_t *row, size_t c, int q) {
    uint8_t nib = (uint8_t) (q & 0xF);
    if (c % 2 == 0)
        row[c / 2] = nib;
    else
        row[c / 2] |= (uint8_t) (nib << 4);
}

int rb_quant_rows_f32_avx2(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                           size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                           float *scales, float *zeros) {
    if (spec->round != RB_ROUND_NEAREST_EVEN || group == 0) return RB_EDECLINE;
    size_t ng = (cols + group - 1) / group;
    float lo = spec->asym ? 0.0f : (float) -(1 << (spec->bits - 1));
    float hi = spec->asym ? (float) ((1 << spec->bits) - 1) : (float) ((1 << (spec->bits - 1)) - 1);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        for (size_t j = 0; j < ng; j++) {
            size_t c0 = j * group, len = cols - c0 < group ? cols - c0 : group, i = 0;
            __m256 vmn = _mm256_set1_ps(INFINITY), vmx = _mm256_set1_ps(-INFINITY);
            __m256 nonfinite = _mm256_setzero_ps();
            for (; i + 8 <= len; i += 8) {
                __m256 v = _mm256_loadu_ps(xr + c0 + i);
                /* v - v is NaN exactly when v is NaN or Inf. */
                __m256 d = _mm256_sub_ps(v, v);
                nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
                vmn = _mm256_min_ps(vmn, v);
                vmx = _mm256_max_ps(vmx, v);
            }
            float mn8[8], mx8[8];
            _mm256_storeu_ps(mn8, vmn);
            _mm256_storeu_ps(mx8, vmx);
            float mn = mn8[0], mx = mx8[0];
            for (int k = 1; k < 8; k++) {
                if (mn8[k] < mn) mn = mn8[k];
                if (mx8[k] > mx) mx = mx8[k];
            }
            int bad = _mm256_movemask_ps(nonfinite);
            for (; i < len; i++) {
                float v = xr[c0 + i];
                bad |= !isfinite(v);
                if (v < mn) mn = v;
                if (v > mx) mx = v;
            }
            /* The reference names the offending element. */
            if (bad)
                return rb_quant_rows_f32_ref(spec, x, rows, cols, ld, group, out, ldo, mode, scales,
                                             zeros);
            float s, z;
            int rc = rb_quant_params(spec, mn, mx, &s, &z);
            /* A failed pair (the reference's message names row and group) or an fp16 scale
             * rounded to 0 (its group is all code 0, which code16's division does not give): the
             * reference redoes the call. */
            if (rc || !(s > 0))
                return rb_quant_rows_f32_ref(spec, x, rows, cols, ld, group, out, ldo, mode, scales,
                                             zeros);
            scales[r * ng + j] = s;
            if (zeros) zeros[r * ng + j] = z;
            if (!spec->asym) z = 0.0f;
            const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
            uint8_t *orow = (uint8_t *) out + r * ldo;
            float *frow = (float *) out + r * ldo;
            for (i = 0; i + 8 <= len; i += 8) {
                size_t c = c0 + i;
                __m256 q = code8(_mm256_loadu_ps(xr + c), vs, vz, vlo, vhi);
                if (mode == RB_QOUT_FAKE) {
                    _mm256_storeu_ps(frow + c, _mm256_mul_ps(vs, _mm256_sub_ps(q, vz)));
                } else if (mode == RB_QOUT_CODES) {
                    _mm_storel_epi64((__m128i *) (orow + c), low_bytes8(_mm256_cvtps_epi32(q)));
                } else if (group % 2 == 0) {
                    /* c is even: 8 codes make 4 whole bytes. */
                    uint32_t four = nibbles8(_mm256_cvtps_epi32(q));
                    memcpy(orow + c / 2, &four, 4);
                } else {
                    int qi[8];
                    _mm256_storeu_si256((__m256i *) qi, _mm256_cvtps_epi32(q));
                    for (int k = 0; k < 8; k++) put_nibble(orow, c + (size_t) k, qi[k]);
                }
            }
            for (; i < len; i++) {
                size_t c = c0 + i;
                float q = code1(xr[c], s, z, lo, hi);
                if (mode == RB_QOUT_FAKE)
                    frow[c] = s * (q - z);
                else if (mode == RB_QOUT_CODES)
                    orow[c] = (uint8_t) (int) q;
                else
                    put_nibble(orow, c, (int) q);
            }
        }
    }
    return RB_OK;
}

/* Binary search over the power-of-two table of thresholds (padded with +Inf): the number of
 * thresholds strictly below x, as the reference counts it. Tables of up to 16 entries stay in
 * registers; larger ones are gathered. */
int rb_codebook_quant_f32_avx2(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                               size_t ld, uint8_t *idx) {
    int steps = 0;
    while (((size_t) 1 << steps) < cb->k) steps++;
    const __m256 t0 = _mm256_loadu_ps(cb->thresholds), t1 = _mm256_loadu_ps(cb->thresholds + 8);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 v = _mm256_loadu_ps(xr + c);
            __m256 d = _mm256_sub_ps(v, v);
            if (_mm256_movemask_ps(_mm256_cmp_ps(d, d, _CMP_UNORD_Q)))
                return rb_codebook_quant_f32_ref(cb, x, rows, cols, ld, idx);
            __m256i n = _mm256_setzero_si256();
            for (int st = steps - 1; st >= 0; st--) {
                __m256i step = _mm256_set1_epi32(1 << st);
                __m256i at = _mm256_add_epi32(n, _mm256_set1_epi32((1 << st) - 1));
                __m256 t;
                if (steps <= 3) {
                    t = _mm256_permutevar8x32_ps(t0, at);
                } else if (steps == 4) { /* two 8-entry tables, chosen by bit 3 of the index */
                    __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(at, 28));
                    t = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t0, at),
                                         _mm256_permutevar8x32_ps(t1, at), sel);
                } else {
                    t = _mm256_i32gather_ps(cb->thresholds, at, 4);
                }
                __m256i lt = _mm256_castps_si256(_mm256_cmp_ps(t, v, _CMP_LT_OQ));
                n = _mm256_add_epi32(n, _mm256_and_si256(lt, step));
            }
            _mm_storel_epi64((__m128i *) (idx + r * cols + c), low_bytes8(n));
        }
        for (; c < cols; c++) {
            float v = xr[c];
            if (!isfinite(v)) return rb_codebook_quant_f32_ref(cb, x, rows, cols, ld, idx);
            unsigned n = 0;
            for (size_t i = 0; i + 1 < cb->k; i++) n += cb->thresholds[i] < v;
            idx[r * cols + c] = (uint8_t) n;
        }
    }
    return RB_OK;
}
