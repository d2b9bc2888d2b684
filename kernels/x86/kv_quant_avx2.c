/* AVX2 SAW-INT4 encode (block FWHT + bf16 + min/max + INT4 + pack), bit-identical to the
 * reference: the same butterflies in the same order, the same scalar scale/zero arithmetic,
 * IEEE division per element. */
#include <immintrin.h>
#include <math.h>

#include "kernels/kv_quant.h"
#include "kernels/kv_quant_variants.h"

/* Butterfly stage h < 8 inside one vector: low lanes x + partner, high lanes partner - x. */
static inline __m256 stage8(__m256 x, int h) {
    __m256 t, add, sub;
    switch (h) {
    case 1:
        t = _mm256_permute_ps(x, 0xB1);
        add = _mm256_add_ps(x, t);
        sub = _mm256_sub_ps(t, x);
        return _mm256_blend_ps(add, sub, 0xAA);
    case 2:
        t = _mm256_permute_ps(x, 0x4E);
        add = _mm256_add_ps(x, t);
        sub = _mm256_sub_ps(t, x);
        return _mm256_blend_ps(add, sub, 0xCC);
    default:
        t = _mm256_permute2f128_ps(x, x, 0x01);
        add = _mm256_add_ps(x, t);
        sub = _mm256_sub_ps(t, x);
        return _mm256_blend_ps(add, sub, 0xF0);
    }
}

static inline __m256 bf16_round8(__m256 x) {
    __m256i u = _mm256_castps_si256(x);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    u = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb);
    return _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32((int) 0xFFFF0000u)));
}

static inline __m256i code8(__m256 v, __m256 vs, __m256 vz) {
    __m256 f = _mm256_add_ps(_mm256_add_ps(_mm256_div_ps(v, vs), vz), _mm256_set1_ps(0.5f));
    f = _mm256_max_ps(f, _mm256_setzero_ps()); /* NaN -> 0 (second operand), as the reference */
    f = _mm256_min_ps(f, _mm256_set1_ps(15.0f));
    return _mm256_cvttps_epi32(f);
}

static inline float hmin8(__m256 a) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline float hmax8(__m256 a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

int rb_kv_int4_encode_f32_avx2(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                               unsigned flags, uint8_t *packed, float *sz) {
    if (d % 16) return RB_EDECLINE;
    _Alignas(32) float v[RB_KV_INT4_DMAX];
    const float inv = (float) (1.0 / sqrt((double) m));
    const __m256 vinv = _mm256_set1_ps(inv);
    size_t half = d / 2, inner = m < 8 ? m : 8;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * stride;
        for (size_t j = 0; j < d; j += 8) {
            __m256 a = _mm256_loadu_ps(xr + j);
            if (m > 1) a = _mm256_mul_ps(a, vinv);
            for (size_t h = 1; h < inner; h *= 2) a = stage8(a, (int) h);
            _mm256_store_ps(v + j, a);
        }
        for (size_t h = 8; h < m; h *= 2)
            for (size_t i = 0; i < d; i += 2 * h)
                for (size_t j = i; j < i + h; j += 8) {
                    __m256 a = _mm256_load_ps(v + j), c = _mm256_load_ps(v + j + h);
                    _mm256_store_ps(v + j, _mm256_add_ps(a, c));
                    _mm256_store_ps(v + j + h, _mm256_sub_ps(a, c));
                }
        __m256 vmn = _mm256_set1_ps(INFINITY), vmx = _mm256_set1_ps(-INFINITY);
        for (size_t j = 0; j < d; j += 8) {
            __m256 a = _mm256_load_ps(v + j);
            if (flags & RB_KV_BF16) {
                a = bf16_round8(a);
                _mm256_store_ps(v + j, a);
            }
            vmn = _mm256_min_ps(vmn, a);
            vmx = _mm256_max_ps(vmx, a);
        }
        float mn = hmin8(vmn), mx = hmax8(vmx);
        float scale, z;
        rb_kv_scale_zero(mn, mx, flags, &scale, &z);
        const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(z);
        uint8_t *out = packed + r * half;
        for (size_t j = 0; j < half; j += 8) {
            __m256i lo = code8(_mm256_load_ps(v + j), vs, vz);
            __m256i hi = code8(_mm256_load_ps(v + j + half), vs, vz);
            __m256i b = _mm256_or_si256(lo, _mm256_slli_epi32(hi, 4));
            __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
            _mm_storel_epi64((__m128i *) (out + j), _mm_packus_epi16(w, w));
        }
        sz[2 * r] = scale;
        sz[2 * r + 1] = z;
    }
    return RB_OK;
}
