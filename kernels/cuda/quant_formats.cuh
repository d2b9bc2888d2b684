/* The scalar rules of the quant area as __host__ __device__ functions (fp32 bit formulas that
 * reproduce kernels/quant.c and kernels/fpformats.c exactly), so that the host can check them
 * against the CPU references exhaustively and the kernels use the very same code. */
#ifndef RB_CUDA_QUANT_FORMATS_CUH
#define RB_CUDA_QUANT_FORMATS_CUH

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define RB_HD __host__ __device__ __forceinline__

RB_HD uint32_t rbq_f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
RB_HD float rbq_u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- integer quantization (kernels/quant.c) ---- */

/* The fields of rb_quant_spec the kernels need, passed by value. */
struct rbq_spec {
    int bits, asym, zero_in_range, stochastic;
    float clip, range_min, lo, hi;
    uint64_t seed, stream;
};

/* rb_quant_params, operation for operation (fp32, IEEE division, rintf = RNE). The CPU reports
 * an overflowing scale (Inf) with RB_ENUMERIC; here the Inf scale is stored as is. */
RB_HD void rbq_params(const rbq_spec &q, float mn, float mx, float *scale, float *zero) {
    if (q.zero_in_range) {
        if (mn > 0) mn = 0;
        if (mx < 0) mx = 0;
    }
    float clip = q.clip == 0 ? 1.0f : q.clip;
    mn *= clip;
    mx *= clip;
    float s, z = 0;
    if (!q.asym) {
        float maxq = (float) ((1 << (q.bits - 1)) - 1);
        float a = -mn > mx ? -mn : mx;
        if (q.range_min > a) a = q.range_min;
        s = a / maxq;
        if (!(s > 0)) s = 1;
    } else {
        float maxq = (float) ((1 << q.bits) - 1);
        float w = mx - mn;
        if (q.range_min > w) w = q.range_min;
        s = w / maxq;
        if (!(s > 0)) {
            float m = fabsf(mn) > 1 ? fabsf(mn) : 1;
            mn -= m;
            mx += m;
            s = (mx - mn) / maxq;
        }
        z = rintf(-mn / s);
        if (z == 0) z = 0.0f; /* the CPU's "+ 0.0f": a -0 zero point becomes +0 */
    }
    *scale = s;
    *zero = z;
}

/* code_of in kernels/quant.c: t = x / s, rounded (RNE, or stochastically with uniform u), plus
 * z, clamped to [lo, hi]. */
RB_HD float rbq_code(const rbq_spec &q, float v, float s, float z, float u) {
    float t = v / s, r;
    if (q.stochastic) {
        float f = floorf(t);
        r = f + (u < t - f ? 1.0f : 0.0f);
    } else {
        r = rintf(t);
    }
    float c = r + z;
    c = c < q.lo ? q.lo : c;
    c = c > q.hi ? q.hi : c;
    return c;
}

/* ---- E2M1, MXFP4, NVFP4 (kernels/fpformats.c) ---- */

/* E2M1 code of a float ("scalar" variant's formula, equal to the reference's double one): ties
 * to the even code, saturation above 5, sign of zero kept, NaN -> 0. */
RB_HD unsigned rbq_e2m1_code(float v) {
    float a = fabsf(v);
    unsigned mag = (unsigned) ((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) +
                               (a > 2.5f) + (a >= 3.5f) + (a > 5.0f));
    return v != v ? 0u : ((rbq_f2u(v) >> 28) & 8u) | mag;
}

/* The value of an E2M1 code (low 4 bits) without a table: twice the magnitudes 0, .5, 1, 1.5,
 * 2, 3, 4, 6 are the nibbles of 0xC8643210; code 8 is -0. */
RB_HD float rbq_e2m1_value(unsigned c) {
    float m = (float) ((0xC8643210u >> (4 * (c & 7u))) & 15u) * 0.5f;
    return c & 8u ? -m : m;
}

/* rb_mx_scale_code / rb_mx_down / rb_mx_up (kernels/fpformats_variants.h). */
RB_HD int rbq_mx_scale_code(uint32_t amax_bits, int ceil_rule) {
    int sc = (int) (amax_bits >> 23) - 2 + (ceil_rule && (amax_bits & 0x7FFFFFu) > 0x400000u);
    return sc < 0 ? 0 : sc;
}
RB_HD float rbq_mx_down(int sc) {
    return rbq_u2f((uint32_t) (254 - sc) << 23);
}
RB_HD float rbq_mx_up(int sc) {
    return rbq_u2f(sc ? (uint32_t) sc << 23 : 0x00400000u);
}

/* The NaN bits the CPU produces (NAN, and -NAN as a sign flip). */
RB_HD float rbq_nan(unsigned neg) {
    return rbq_u2f(neg ? 0xFFC00000u : 0x7FC00000u);
}

/* rb_nvfp4_tensor_scale. */
RB_HD float rbq_nv_tensor_scale(float amax) {
    if (amax == 0) return 1.0f;
    float s = 6.0f * 448.0f / amax;
    return isinf(s) ? FLT_MAX : s;
}

/* rb_e4m3_sat_pos: E4M3 of s >= 0 (not NaN), saturating, and its value. */
RB_HD unsigned rbq_e4m3_sat_pos(float s, float *value) {
    if (!(s < 448.0f)) {
        *value = 448.0f;
        return 0x7Eu;
    }
    if (s < 0x1p-6f) { /* subnormal: the fp32 add rounds to a multiple of 2^-9 (ulp of 2^14) */
        float r = s + 16384.0f;
        *value = r - 16384.0f;
        return rbq_f2u(r) - rbq_f2u(16384.0f);
    }
    uint32_t b = rbq_f2u(s);
    b = (b + 0x7FFFFu + ((b >> 20) & 1u)) & 0xFFF00000u;
    *value = rbq_u2f(b);
    return (b - (120u << 23)) >> 20;
}

/* ---- FP8 E4M3 / E5M2 (kernels/fpformats.c's fp8_encode, from the float bits) ----
 * |x| is rounded to nearest even on the format's grid extended past the top binade: below the
 * smallest normal 2^emin by one fp32 add of 2^(emin - M + 23) (whose ulp is the subnormal step,
 * so the add rounds exactly there, and the count of steps is the code, 2^M meaning the smallest
 * normal), above it by rounding the 23 mantissa bits to M (a carry bumps the exponent). A
 * rounded value above the largest finite one saturates or becomes the special code. */
RB_HD unsigned rbq_fp8_encode(float x, int e5m2, int special) {
    uint32_t bits = rbq_f2u(x), sign = (bits >> 24) & 0x80u, a = bits & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7Fu; /* NaN */
    const int M = e5m2 ? 2 : 3;
    const uint32_t min_normal = e5m2 ? 0x38800000u /* 2^-14 */ : 0x3C800000u /* 2^-6 */;
    const uint32_t max_bits = e5m2 ? 0x47600000u /* 57344 */ : 0x43E00000u /* 448 */;
    const unsigned max_code = e5m2 ? 0x7Bu : 0x7Eu, over_code = e5m2 ? 0x7Cu : 0x7Fu;
    if (a < min_normal) {
        float c = e5m2 ? 128.0f : 16384.0f; /* ulp 2^-16 / 2^-9 */
        float r = rbq_u2f(a) + c;
        return sign | (rbq_f2u(r) - rbq_f2u(c));
    }
    unsigned sh = 23u - (unsigned) M;
    uint32_t b = (a + ((1u << (sh - 1)) - 1u) + ((a >> sh) & 1u)) & ~((1u << sh) - 1u);
    if (b > max_bits) return sign | (special ? over_code : max_code); /* Inf lands here too */
    uint32_t ebias = e5m2 ? 112u : 120u;                              /* 127 - format bias */
    return sign | ((b - (ebias << 23)) >> sh);
}

RB_HD float rbq_fp8_decode(unsigned code, int e5m2) {
    unsigned neg = code & 0x80u;
    float v;
    if (e5m2) {
        unsigned e = (code >> 2) & 31u, m = code & 3u;
        if (e == 31) return m ? rbq_nan(neg) : (neg ? -INFINITY : INFINITY);
        v = e ? rbq_u2f(((e + 112u) << 23) | (m << 21)) : (float) m * 0x1p-16f;
    } else {
        unsigned e = (code >> 3) & 15u, m = code & 7u;
        if (e == 15 && m == 7) return rbq_nan(neg);
        v = e ? rbq_u2f(((e + 120u) << 23) | (m << 20)) : (float) m * 0x1p-9f;
    }
    return neg ? -v : v;
}

#endif
