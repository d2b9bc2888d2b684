/* AVX-512 SAW-INT4 encode (block FWHT + bf16 + min/max + INT4 + pack), bit-identical to the
 * reference: the same butterflies in the same order, the same scalar scale/zero arithmetic,
 * IEEE division per element. */
#include <immintrin.h>
#include <math.h>

#include "kernels/kv_quant.h"
#include "kernels/kv_quant_variants.h"

/* Butterfly stage h < 16 inside one vector: low lanes (i & h == 0) get x + partner, high lanes
 * partner - x, as the reference's a + c and a - c. */
static inline __m512 combine(__m512 x, __m512 t, __mmask16 hi) {
    return _mm512_mask_blend_ps(hi, _mm512_add_ps(x, t), _mm512_sub_ps(t, x));
}

/* Stages h = 1, 2, 4, 8 (those below m) of one vector. */
static inline __m512 stages16(__m512 x, size_t m) {
    if (m > 1) x = combine(x, _mm512_permute_ps(x, 0xB1), 0xAAAA);
    if (m > 2) x = combine(x, _mm512_permute_ps(x, 0x4E), 0xCCCC);
    if (m > 4) x = combine(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(2, 3, 0, 1)), 0xF0F0);
    if (m > 8) x = combine(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(1, 0, 3, 2)), 0xFF00);
    return x;
}

static inline __m512 bf16_round16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    u = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb);
    return _mm512_castsi512_ps(_mm512_and_si512(u, _mm512_set1_epi32((int) 0xFFFF0000u)));
}

static inline __m512i code16(__m512 v, __m512 vs, __m512 vz) {
    __m512 f = _mm512_add_ps(_mm512_add_ps(_mm512_div_ps(v, vs), vz), _mm512_set1_ps(0.5f));
    f = _mm512_max_ps(f, _mm512_setzero_ps()); /* NaN -> 0 (second operand), as the reference */
    f = _mm512_min_ps(f, _mm512_set1_ps(15.0f));
    return _mm512_cvttps_epi32(f);
}

int rb_kv_int4_encode_f32_avx512(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                                 unsigned flags, uint8_t *packed, float *sz) {
    if (d % 32) return RB_EDECLINE;
    _Alignas(64) float v[RB_KV_INT4_DMAX];
    const float inv = (float) (1.0 / sqrt((double) m));
    const __m512 vinv = _mm512_set1_ps(inv);
    size_t half = d / 2;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * stride;
        for (size_t j = 0; j < d; j += 16) {
            __m512 a = _mm512_loadu_ps(xr + j);
            if (m > 1) a = stages16(_mm512_mul_ps(a, vinv), m);
            _mm512_store_ps(v + j, a);
        }
        for (size_t h = 16; h < m; h *= 2)
            for (size_t i = 0; i < d; i += 2 * h)
                for (size_t j = i; j < i + h; j += 16) {
                    __m512 a = _mm512_load_ps(v + j), c = _mm512_load_ps(v + j + h);
                    _mm512_store_ps(v + j, _mm512_add_ps(a, c));
                    _mm512_store_ps(v + j + h, _mm512_sub_ps(a, c));
                }
        __m512 vmn = _mm512_set1_ps(INFINITY), vmx = _mm512_set1_ps(-INFINITY);
        for (size_t j = 0; j < d; j += 16) {
            __m512 a = _mm512_load_ps(v + j);
            if (flags & RB_KV_BF16) {
                a = bf16_round16(a);
                _mm512_store_ps(v + j, a);
            }
            vmn = _mm512_min_ps(vmn, a);
            vmx = _mm512_max_ps(vmx, a);
        }
        float mn = _mm512_reduce_min_ps(vmn), mx = _mm512_reduce_max_ps(vmx);
        float range = mx - mn;
        float scale = (range > 1e-8f ? range : 1e-8f) / 15.0f, z = (0.0f - mn) / scale;
        const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps(z);
        uint8_t *out = packed + r * half;
        for (size_t j = 0; j < half; j += 16) {
            __m512i lo = code16(_mm512_load_ps(v + j), vs, vz);
            __m512i hi = code16(_mm512_load_ps(v + j + half), vs, vz);
            __m512i b = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4));
            _mm_storeu_si128((__m128i *) (out + j), _mm512_cvtepi32_epi8(b));
        }
        sz[2 * r] = scale;
        sz[2 * r + 1] = z;
    }
    return RB_OK;
}
