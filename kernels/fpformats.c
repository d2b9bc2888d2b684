/* Small floating-point formats: one generic round-to-nearest-even minifloat encoder in double
 * (exact for every input these formats see), the decoders, and the MXFP4 / NVFP4 block codecs:
 * their references, the portable "scalar" variants (the same results from float bit formulas) and
 * the dispatch tables (the SIMD variants are in kernels/x86/fpformats_*.c). */
#include "kernels/fpformats.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/error.h"
#include "kernels/fpformats_variants.h"
#include "kernels/quant.h"

/* |v| rounded to nearest even on the grid of a format with mbits mantissa bits and smallest
 * normal exponent emin, with an unbounded top (the caller handles overflow). Division and
 * multiplication by the power-of-two quantum are exact in double for every input here. */
static double mf_round(double a, int mbits, int emin) {
    if (a == 0) return 0;
    int e;
    frexp(a, &e);
    e -= 1; /* a = m * 2^e, m in [1, 2) */
    if (e < emin) e = emin;
    double quantum = ldexp(1.0, e - mbits);
    return rint(a / quantum) * quantum;
}

/* Exponent and mantissa fields of a representable magnitude q. */
static unsigned mf_bits(double q, int mbits, int emin, int bias) {
    if (q == 0) return 0;
    int e;
    frexp(q, &e);
    e -= 1;
    if (e < emin) return (unsigned) (q / ldexp(1.0, emin - mbits)); /* subnormal, exponent 0 */
    unsigned m = (unsigned) (q / ldexp(1.0, e - mbits)) - (1u << mbits);
    return ((unsigned) (e + bias) << mbits) | m;
}

static double mf_decode(unsigned e, unsigned m, int mbits, int bias) {
    if (e == 0) return ldexp((double) m, 1 - bias - mbits);
    return ldexp((double) ((1u << mbits) | m), (int) e - bias - mbits);
}

/* E2M1 magnitude code of a >= 0: how many of the 7 midpoints between neighbouring grid values
 * a lies above. A midpoint itself counts for its even neighbour, so the ties at 0.25, 1.25, 2.5
 * and 5 go down (to codes 0, 2, 4, 6) and those at 0.75, 1.75 and 3.5 go up (to 2, 4, 6). Values
 * above 5 saturate to code 7 (6.0); NaN compares false everywhere and gives 0. */
static unsigned e2m1_mag(double a) {
    return (unsigned) ((a > 0.25) + (a >= 0.75) + (a > 1.25) + (a >= 1.75) + (a > 2.5) +
                       (a >= 3.5) + (a > 5));
}

/* E2M1 from a double (the block codecs scale in double so that nothing underflows). */
static uint8_t e2m1_code(double v) {
    if (isnan(v)) return 0;
    return (uint8_t) ((signbit(v) ? 8 : 0) | e2m1_mag(fabs(v)));
}

uint8_t rb_e2m1_encode(float x) {
    return e2m1_code((double) x);
}

/* Codes 0..15 with their signs (code 8 is -0). */
static const float e2m1_values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                      -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

float rb_e2m1_decode(uint8_t code) {
    return e2m1_values[code & 15];
}

static uint8_t fp8_encode(float x, rb_fp8_overflow ov, int mbits, int bias, double maxval,
                          uint8_t max_code, uint8_t over_code) {
    uint8_t sign = signbit(x) ? 0x80 : 0;
    if (isnan(x)) return sign | 0x7F;
    double a = fabs((double) x);
    double q = isinf(a) ? INFINITY : mf_round(a, mbits, 1 - bias);
    if (q > maxval) return sign | (ov == RB_FP8_SATURATE ? max_code : over_code);
    return (uint8_t) (sign | mf_bits(q, mbits, 1 - bias, bias));
}

uint8_t rb_fp8_e4m3_encode(float x, rb_fp8_overflow ov) {
    return fp8_encode(x, ov, 3, 7, 448.0, 0x7E, 0x7F);
}

uint8_t rb_fp8_e5m2_encode(float x, rb_fp8_overflow ov) {
    return fp8_encode(x, ov, 2, 15, 57344.0, 0x7B, 0x7C);
}

float rb_fp8_e4m3_decode(uint8_t code) {
    unsigned e = (code >> 3) & 15u, m = code & 7u;
    float v = (e == 15 && m == 7) ? NAN : (float) mf_decode(e, m, 3, 7);
    return code & 0x80 ? -v : v;
}

float rb_fp8_e5m2_decode(uint8_t code) {
    unsigned e = (code >> 2) & 31u, m = code & 3u;
    float v = e == 31 ? (m ? NAN : INFINITY) : (float) mf_decode(e, m, 2, 15);
    return code & 0x80 ? -v : v;
}

static int check_finite(const char *who, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return rb_error_set(RB_ENUMERIC, "%s: element %zu is %g; NaN and Inf are rejected", who,
                                i, (double) x[i]);
    return RB_OK;
}

int rb_fp8_e4m3_encode_f32(const float *x, size_t n, rb_fp8_overflow ov, uint8_t *out) {
    int rc = check_finite("fp8_e4m3", x, n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) out[i] = rb_fp8_e4m3_encode(x[i], ov);
    return RB_OK;
}

int rb_fp8_e5m2_encode_f32(const float *x, size_t n, rb_fp8_overflow ov, uint8_t *out) {
    int rc = check_finite("fp8_e5m2", x, n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) out[i] = rb_fp8_e5m2_encode(x[i], ov);
    return RB_OK;
}

void rb_fp8_e4m3_decode_f32(const uint8_t *in, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = rb_fp8_e4m3_decode(in[i]);
}

void rb_fp8_e5m2_decode_f32(const uint8_t *in, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = rb_fp8_e5m2_decode(in[i]);
}

uint8_t rb_ue8m0_encode(float x) {
    if (!(x > 0) || isinf(x)) return 0xFF;
    int e;
    frexp((double) x, &e);
    e -= 1;
    if (e < -127) e = -127;
    if (e > 127) e = 127;
    return (uint8_t) (e + 127);
}

float rb_ue8m0_decode(uint8_t code) {
    return code == 0xFF ? NAN : (float) ldexp(1.0, (int) code - 127);
}

const char *rb_mx_rule_name(rb_mx_rule rule) {
    return rule == RB_MX_FLOOR ? "floor" : rule == RB_MX_CEIL ? "ceil" : "unknown";
}

/* ---- MXFP4 and NVFP4: the references ---- */

static void put_nibble(uint8_t *packed, size_t i, uint8_t c) {
    if (i % 2 == 0)
        packed[i / 2] = c; /* also clears the high nibble, the padding of an odd n */
    else
        packed[i / 2] |= (uint8_t) (c << 4);
}

static uint8_t get_nibble(const uint8_t *packed, size_t i) {
    return (uint8_t) ((packed[i / 2] >> (4 * (i % 2))) & 0xF);
}

static int mx_shared_exp(const float *x, size_t len, rb_mx_rule rule) {
    float amax = 0;
    for (size_t i = 0; i < len; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    if (amax == 0) return -127;
    int e;
    float m = frexpf(amax, &e); /* amax = m * 2^e, m in [0.5, 1), subnormals included */
    int se = e - 3;             /* floor(log2 amax) - 2: amax / 2^se = 8m in [4, 8) */
    if (rule == RB_MX_CEIL && 8 * m > 6) se++; /* smallest se with amax / 2^se <= 6 */
    return se < -127 ? -127 : se > 127 ? 127 : se;
}

int rb_mxfp4_quant_f32_ref(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                           uint8_t *scales, float *y) {
    if (rule != RB_MX_FLOOR && rule != RB_MX_CEIL)
        return rb_error_set(RB_EINVAL, "mxfp4: unknown shared-scale rule %d", (int) rule);
    int rc = check_finite("mxfp4", x, n);
    if (rc) return rc;
    for (size_t b0 = 0; b0 < n; b0 += RB_MXFP4_BLOCK) {
        size_t len = n - b0 < RB_MXFP4_BLOCK ? n - b0 : RB_MXFP4_BLOCK;
        int se = mx_shared_exp(x + b0, len, rule);
        if (scales) scales[b0 / RB_MXFP4_BLOCK] = (uint8_t) (se + 127);
        /* Powers of two in double: scaling by them is exact for every float. */
        double down = ldexp(1.0, -se), up = ldexp(1.0, se);
        for (size_t i = b0; i < b0 + len; i++) {
            uint8_t c = e2m1_code((double) x[i] * down);
            if (packed) put_nibble(packed, i, c);
            if (y) y[i] = (float) ((double) e2m1_values[c] * up);
        }
    }
    return RB_OK;
}

int rb_mxfp4_dequant_f32_ref(const uint8_t *packed, const uint8_t *scales, size_t n, float *y) {
    for (size_t b0 = 0; b0 < n; b0 += RB_MXFP4_BLOCK) {
        size_t len = n - b0 < RB_MXFP4_BLOCK ? n - b0 : RB_MXFP4_BLOCK;
        uint8_t sc = scales[b0 / RB_MXFP4_BLOCK];
        if (sc == 0xFF)
            return rb_error_set(RB_ENUMERIC, "mxfp4: block %zu has the NaN scale 0xFF",
                                b0 / RB_MXFP4_BLOCK);
        double up = ldexp(1.0, (int) sc - 127);
        for (size_t i = b0; i < b0 + len; i++)
            y[i] = (float) ((double) e2m1_values[get_nibble(packed, i)] * up);
    }
    return RB_OK;
}

float rb_nvfp4_tensor_scale(float amax) {
    if (amax == 0) return 1.0f;
    float s = 6.0f * 448.0f / amax;
    return isinf(s) ? FLT_MAX : s;
}

int rb_nvfp4_quant_f32_ref(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                           float *tensor_scale, float *y) {
    int rc = check_finite("nvfp4", x, n);
    if (rc) return rc;
    float amax_t = 0;
    for (size_t i = 0; i < n; i++) amax_t = fabsf(x[i]) > amax_t ? fabsf(x[i]) : amax_t;
    float s_enc = rb_nvfp4_tensor_scale(amax_t);
    if (tensor_scale) *tensor_scale = s_enc;
    for (size_t b0 = 0; b0 < n; b0 += RB_NVFP4_BLOCK) {
        size_t len = n - b0 < RB_NVFP4_BLOCK ? n - b0 : RB_NVFP4_BLOCK;
        float amax = 0;
        for (size_t i = b0; i < b0 + len; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        uint8_t sc = rb_fp8_e4m3_encode((amax / 6.0f) * s_enc, RB_FP8_SATURATE);
        float s_b = rb_fp8_e4m3_decode(sc);
        if (scales) scales[b0 / RB_NVFP4_BLOCK] = sc;
        float mul = s_b > 0 ? s_enc / s_b : 0.0f, dec = s_b / s_enc;
        for (size_t i = b0; i < b0 + len; i++) {
            uint8_t c = s_b > 0 ? e2m1_code((double) (x[i] * mul)) : 0;
            if (packed) put_nibble(packed, i, c);
            if (y) y[i] = e2m1_values[c] * dec;
        }
    }
    return RB_OK;
}

int rb_nvfp4_dequant_f32_ref(const uint8_t *packed, const uint8_t *scales, float tensor_scale,
                             size_t n, float *y) {
    for (size_t b0 = 0; b0 < n; b0 += RB_NVFP4_BLOCK) {
        size_t len = n - b0 < RB_NVFP4_BLOCK ? n - b0 : RB_NVFP4_BLOCK;
        float s_b = rb_fp8_e4m3_decode(scales[b0 / RB_NVFP4_BLOCK]);
        if (isnan(s_b))
            return rb_error_set(RB_ENUMERIC, "nvfp4: block %zu has the NaN scale",
                                b0 / RB_NVFP4_BLOCK);
        float dec = s_b / tensor_scale;
        for (size_t i = b0; i < b0 + len; i++) y[i] = e2m1_values[get_nibble(packed, i)] * dec;
    }
    return RB_OK;
}

/* ---- portable fast variants ("scalar"): the same results from the float bits ---- */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Largest |x| as a bit pattern: for non-negative floats the integer order is the float order,
 * and the result is >= 0x7F800000 exactly when some element is NaN or Inf. */
static uint32_t amax_bits(const float *x, size_t n) {
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t a = f2u(x[i]) & 0x7FFFFFFFu;
        m = a > m ? a : m;
    }
    return m;
}

/* E2M1 code of a float; NaN (only NVFP4's 0 * Inf reaches it) gives 0 like the reference. */
static inline uint8_t e2m1_code_f(float v) {
    float a = fabsf(v);
    unsigned mag = (unsigned) ((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) +
                               (a > 2.5f) + (a >= 3.5f) + (a > 5.0f));
    return (uint8_t) (v != v ? 0 : ((f2u(v) >> 28) & 8) | mag);
}

static void put_codes(uint8_t *packed, const uint8_t *c, size_t len) {
    for (size_t i = 0; i + 1 < len; i += 2) packed[i / 2] = (uint8_t) (c[i] | c[i + 1] << 4);
    if (len % 2) packed[len / 2] = c[len - 1];
}

static int mxfp4_quant_f32_scalar(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                                  uint8_t *scales, float *y) {
    if ((rule != RB_MX_FLOOR && rule != RB_MX_CEIL) || amax_bits(x, n) >= 0x7F800000u)
        return rb_mxfp4_quant_f32_ref(x, n, rule, packed, scales, y);
    for (size_t b0 = 0; b0 < n; b0 += RB_MXFP4_BLOCK) {
        size_t len = n - b0 < RB_MXFP4_BLOCK ? n - b0 : RB_MXFP4_BLOCK;
        uint32_t amax = amax_bits(x + b0, len);
        int sc = rb_mx_scale_code(amax, rule);
        float down = rb_mx_down(sc), up = rb_mx_up(sc);
        uint8_t c[RB_MXFP4_BLOCK];
        for (size_t i = 0; i < len; i++) c[i] = e2m1_code_f(x[b0 + i] * down);
        if (scales) scales[b0 / RB_MXFP4_BLOCK] = (uint8_t) sc;
        if (packed) put_codes(packed + b0 / 2, c, len);
        if (y)
            for (size_t i = 0; i < len; i++) y[b0 + i] = e2m1_values[c[i]] * up;
    }
    return RB_OK;
}

static int mxfp4_dequant_f32_scalar(const uint8_t *packed, const uint8_t *scales, size_t n,
                                    float *y) {
    size_t nb = (n + RB_MXFP4_BLOCK - 1) / RB_MXFP4_BLOCK;
    for (size_t b = 0; b < nb; b++)
        if (scales[b] == 0xFF) return rb_mxfp4_dequant_f32_ref(packed, scales, n, y);
    for (size_t i = 0; i < n; i++)
        y[i] = e2m1_values[get_nibble(packed, i)] * rb_mx_up(scales[i / RB_MXFP4_BLOCK]);
    return RB_OK;
}

uint8_t rb_e4m3_sat_pos(float s, float *value) {
    if (!(s < 448.0f)) {
        *value = 448.0f;
        return 0x7E;
    }
    if (s < 0x1p-6f) { /* subnormal: the fp32 add rounds to a multiple of 2^-9 (ulp of 2^14) */
        float r = s + 16384.0f;
        *value = r - 16384.0f;
        return (uint8_t) (f2u(r) - f2u(16384.0f));
    }
    /* Normal: round the 23 mantissa bits to 3, to nearest even; a carry bumps the exponent. */
    uint32_t b = f2u(s);
    b = (b + 0x7FFFFu + ((b >> 20) & 1u)) & 0xFFF00000u;
    *value = u2f(b);
    return (uint8_t) ((b - (120u << 23)) >> 20);
}

static float e4m3_decode_fast(uint8_t code) {
    uint32_t e = (code >> 3) & 15u, m = code & 7u;
    float v = e ? u2f(((e + 120u) << 23) | (m << 20)) : (float) m * 0x1p-9f;
    return code & 0x80 ? -v : v;
}

static int nvfp4_quant_f32_scalar(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                                  float *tensor_scale, float *y) {
    uint32_t amax_t = amax_bits(x, n);
    if (amax_t >= 0x7F800000u) return rb_nvfp4_quant_f32_ref(x, n, packed, scales, tensor_scale, y);
    float s_enc = rb_nvfp4_tensor_scale(u2f(amax_t));
    if (tensor_scale) *tensor_scale = s_enc;
    for (size_t b0 = 0; b0 < n; b0 += RB_NVFP4_BLOCK) {
        size_t len = n - b0 < RB_NVFP4_BLOCK ? n - b0 : RB_NVFP4_BLOCK;
        float s_b, amax = u2f(amax_bits(x + b0, len));
        uint8_t sc = rb_e4m3_sat_pos((amax / 6.0f) * s_enc, &s_b);
        float mul = s_b > 0 ? s_enc / s_b : 0.0f, dec = s_b / s_enc;
        uint8_t c[RB_NVFP4_BLOCK] = {0};
        if (s_b > 0)
            for (size_t i = 0; i < len; i++) c[i] = e2m1_code_f(x[b0 + i] * mul);
        if (scales) scales[b0 / RB_NVFP4_BLOCK] = sc;
        if (packed) put_codes(packed + b0 / 2, c, len);
        if (y)
            for (size_t i = 0; i < len; i++) y[b0 + i] = e2m1_values[c[i]] * dec;
    }
    return RB_OK;
}

static int nvfp4_dequant_f32_scalar(const uint8_t *packed, const uint8_t *scales,
                                    float tensor_scale, size_t n, float *y) {
    size_t nb = (n + RB_NVFP4_BLOCK - 1) / RB_NVFP4_BLOCK;
    for (size_t b = 0; b < nb; b++)
        if ((scales[b] & 0x7F) == 0x7F)
            return rb_nvfp4_dequant_f32_ref(packed, scales, tensor_scale, n, y);
    for (size_t b0 = 0; b0 < n; b0 += RB_NVFP4_BLOCK) {
        size_t len = n - b0 < RB_NVFP4_BLOCK ? n - b0 : RB_NVFP4_BLOCK;
        float dec = e4m3_decode_fast(scales[b0 / RB_NVFP4_BLOCK]) / tensor_scale;
        for (size_t i = b0; i < b0 + len; i++) y[i] = e2m1_values[get_nibble(packed, i)] * dec;
    }
    return RB_OK;
}

/* ---- dispatch and the public entry points ---- */

RB_OP_DEFINE(rb_op_mxfp4_quant_f32, "mxfp4_quant_f32",
             RB_CUDA_VARIANT(rb_mxfp4_quant_f32_cuda)
                 RB_MXFP4_QUANT_F32_FAST_VARIANTS RB_VARIANT("scalar", 0, mxfp4_quant_f32_scalar),
             RB_VARIANT("ref", 0, rb_mxfp4_quant_f32_ref));
RB_OP_DEFINE(rb_op_mxfp4_dequant_f32, "mxfp4_dequant_f32",
             RB_MXFP4_DEQUANT_F32_FAST_VARIANTS RB_VARIANT("scalar", 0, mxfp4_dequant_f32_scalar),
             RB_VARIANT("ref", 0, rb_mxfp4_dequant_f32_ref));
RB_OP_DEFINE(rb_op_nvfp4_quant_f32, "nvfp4_quant_f32",
             RB_CUDA_VARIANT(rb_nvfp4_quant_f32_cuda)
                 RB_NVFP4_QUANT_F32_FAST_VARIANTS RB_VARIANT("scalar", 0, nvfp4_quant_f32_scalar),
             RB_VARIANT("ref", 0, rb_nvfp4_quant_f32_ref));
RB_OP_DEFINE(rb_op_nvfp4_dequant_f32, "nvfp4_dequant_f32",
             RB_NVFP4_DEQUANT_F32_FAST_VARIANTS RB_VARIANT("scalar", 0, nvfp4_dequant_f32_scalar),
             RB_VARIANT("ref", 0, rb_nvfp4_dequant_f32_ref));

static int mx_quant(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed, uint8_t *scales,
                    float *y) {
    if (rule != RB_MX_FLOOR && rule != RB_MX_CEIL)
        return rb_error_set(RB_EINVAL, "mxfp4: unknown shared-scale rule %d", (int) rule);
    RB_DISPATCH(rb_op_mxfp4_quant_f32, rb_mxfp4_quant_fn, (x, n, rule, packed, scales, y));
}

int rb_mxfp4_encode(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed, uint8_t *scales) {
    return mx_quant(x, n, rule, packed, scales, NULL);
}

int rb_mxfp4_fake_quant(const float *x, size_t n, rb_mx_rule rule, float *y) {
    return mx_quant(x, n, rule, NULL, NULL, y);
}

int rb_mxfp4_decode(const uint8_t *packed, const uint8_t *scales, size_t n, float *y) {
    RB_DISPATCH(rb_op_mxfp4_dequant_f32, rb_mxfp4_dequant_fn, (packed, scales, n, y));
}

static int nv_quant(const float *x, size_t n, uint8_t *packed, uint8_t *scales, float *tensor_scale,
                    float *y) {
    RB_DISPATCH(rb_op_nvfp4_quant_f32, rb_nvfp4_quant_fn, (x, n, packed, scales, tensor_scale, y));
}

int rb_nvfp4_encode(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                    float *tensor_scale) {
    return nv_quant(x, n, packed, scales, tensor_scale, NULL);
}

int rb_nvfp4_fake_quant(const float *x, size_t n, float *y) {
    return nv_quant(x, n, NULL, NULL, NULL, y);
}

static int nv_dequant(const uint8_t *packed, const uint8_t *scales, float tensor_scale, size_t n,
                      float *y) {
    RB_DISPATCH(rb_op_nvfp4_dequant_f32, rb_nvfp4_dequant_fn, (packed, scales, tensor_scale, n, y));
}

int rb_nvfp4_decode(const uint8_t *packed, const uint8_t *scales, float tensor_scale, size_t n,
                    float *y) {
    if (!(tensor_scale > 0) || isinf(tensor_scale))
        return rb_error_set(RB_EINVAL, "nvfp4: tensor scale %g is not a positive finite number",
                            (double) tensor_scale);
    return nv_dequant(packed, scales, tensor_scale, n, y);
}

rb_cost rb_mxfp4_dequant_cost(size_t n) {
    double blocks = (double) ((n + RB_MXFP4_BLOCK - 1) / RB_MXFP4_BLOCK);
    return (rb_cost){(double) n, (double) n * (0.5 + sizeof(float)) + blocks};
}

rb_cost rb_nvfp4_dequant_cost(size_t n) {
    double blocks = (double) ((n + RB_NVFP4_BLOCK - 1) / RB_NVFP4_BLOCK);
    return (rb_cost){(double) n + blocks, (double) n * (0.5 + sizeof(float)) + blocks};
}

double rb_mxfp4_bits_per_element(void) {
    return 4.0 + 8.0 / RB_MXFP4_BLOCK;
}

double rb_nvfp4_bits_per_element(size_t n) {
    return 4.0 + 8.0 / RB_NVFP4_BLOCK + (n ? 32.0 / (double) n : 0.0);
}
