/* Small floating-point formats: one generic round-to-nearest-even minifloat encoder in double
 * (exact for every input these formats see), the decoders, and the MXFP4 / NVFP4 block codecs. */
#include "kernels/fpformats.h"

#include <float.h>
#include <math.h>

#include "kernels/error.h"
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

/* E2M1 from a double (the block codecs scale in double so that nothing underflows). */
static uint8_t e2m1_code(double v) {
    uint8_t sign = signbit(v) ? 8 : 0;
    if (isnan(v)) return 0;
    double a = fabs(v);
    double q = isinf(a) ? 8 : mf_round(a, 1, 0);
    if (q > 6) q = 6;
    return (uint8_t) (sign | mf_bits(q, 1, 0, 1));
}

uint8_t rb_e2m1_encode(float x) {
    return e2m1_code((double) x);
}

float rb_e2m1_decode(uint8_t code) {
    float v = (float) mf_decode((code >> 1) & 3u, code & 1u, 1, 1);
    return code & 8 ? -v : v;
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

static int mx_shared_exp(const float *x, size_t len, rb_mx_rule rule) {
    double amax = 0;
    for (size_t i = 0; i < len; i++) amax = fmax(amax, fabs((double) x[i]));
    if (amax == 0) return -127;
    int e;
    frexp(amax, &e);
    int se = e - 1 - 2; /* floor(log2 amax) - 2: amax / 2^se in [4, 8) */
    if (rule == RB_MX_CEIL && ldexp(amax, -se) > 6) se++; /* smallest se with amax / 2^se <= 6 */
    return se < -127 ? -127 : se > 127 ? 127 : se;
}

/* One pass over the blocks; codes (nibble per element) and/or y (decoded values). */
static int mx_run(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed, uint8_t *scales,
                  float *y) {
    if (rule != RB_MX_FLOOR && rule != RB_MX_CEIL)
        return rb_error_set(RB_EINVAL, "mxfp4: unknown shared-scale rule %d", (int) rule);
    int rc = check_finite("mxfp4", x, n);
    if (rc) return rc;
    for (size_t b0 = 0; b0 < n; b0 += RB_MXFP4_BLOCK) {
        size_t len = n - b0 < RB_MXFP4_BLOCK ? n - b0 : RB_MXFP4_BLOCK;
        int se = mx_shared_exp(x + b0, len, rule);
        if (scales) scales[b0 / RB_MXFP4_BLOCK] = (uint8_t) (se + 127);
        for (size_t i = b0; i < b0 + len; i++) {
            uint8_t c = e2m1_code(ldexp((double) x[i], -se));
            if (packed) {
                if (i % 2 == 0)
                    packed[i / 2] = c;
                else
                    packed[i / 2] |= (uint8_t) (c << 4);
            }
            if (y) y[i] = (float) ldexp((double) rb_e2m1_decode(c), se);
        }
    }
    return RB_OK;
}

int rb_mxfp4_encode(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed, uint8_t *scales) {
    return mx_run(x, n, rule, packed, scales, NULL);
}

int rb_mxfp4_fake_quant(const float *x, size_t n, rb_mx_rule rule, float *y) {
    return mx_run(x, n, rule, NULL, NULL, y);
}

int rb_mxfp4_decode(const uint8_t *packed, const uint8_t *scales, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) {
        uint8_t sc = scales[i / RB_MXFP4_BLOCK];
        if (sc == 0xFF)
            return rb_error_set(RB_ENUMERIC, "mxfp4: block %zu has the NaN scale 0xFF",
                                i / RB_MXFP4_BLOCK);
        uint8_t c = (uint8_t) ((packed[i / 2] >> (4 * (i % 2))) & 0xF);
        y[i] = (float) ldexp((double) rb_e2m1_decode(c), (int) sc - 127);
    }
    return RB_OK;
}

static float nvfp4_tensor_scale(const float *x, size_t n) {
    float amax = 0;
    for (size_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    if (amax == 0) return 1.0f;
    float s = 6.0f * 448.0f / amax;
    return isinf(s) ? FLT_MAX : s;
}

static int nv_run(const float *x, size_t n, uint8_t *packed, uint8_t *scales, float *tensor_scale,
                  float *y) {
    int rc = check_finite("nvfp4", x, n);
    if (rc) return rc;
    float s_enc = nvfp4_tensor_scale(x, n);
    if (tensor_scale) *tensor_scale = s_enc;
    for (size_t b0 = 0; b0 < n; b0 += RB_NVFP4_BLOCK) {
        size_t len = n - b0 < RB_NVFP4_BLOCK ? n - b0 : RB_NVFP4_BLOCK;
        float amax = 0;
        for (size_t i = b0; i < b0 + len; i++) amax = fmaxf(amax, fabsf(x[i]));
        uint8_t sc = rb_fp8_e4m3_encode((amax / 6.0f) * s_enc, RB_FP8_SATURATE);
        float s_b = rb_fp8_e4m3_decode(sc);
        if (scales) scales[b0 / RB_NVFP4_BLOCK] = sc;
        float mul = s_b > 0 ? s_enc / s_b : 0.0f, dec = s_b / s_enc;
        for (size_t i = b0; i < b0 + len; i++) {
            uint8_t c = s_b > 0 ? e2m1_code((double) (x[i] * mul)) : 0;
            if (packed) {
                if (i % 2 == 0)
                    packed[i / 2] = c;
                else
                    packed[i / 2] |= (uint8_t) (c << 4);
            }
            if (y) y[i] = rb_e2m1_decode(c) * dec;
        }
    }
    return RB_OK;
}

int rb_nvfp4_encode(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                    float *tensor_scale) {
    return nv_run(x, n, packed, scales, tensor_scale, NULL);
}

int rb_nvfp4_fake_quant(const float *x, size_t n, float *y) {
    return nv_run(x, n, NULL, NULL, NULL, y);
}

int rb_nvfp4_decode(const uint8_t *packed, const uint8_t *scales, float tensor_scale, size_t n,
                    float *y) {
    if (!(tensor_scale > 0) || isinf(tensor_scale))
        return rb_error_set(RB_EINVAL, "nvfp4: tensor scale %g is not a positive finite number",
                            (double) tensor_scale);
    for (size_t i = 0; i < n; i++) {
        float s_b = rb_fp8_e4m3_decode(scales[i / RB_NVFP4_BLOCK]);
        if (isnan(s_b))
            return rb_error_set(RB_ENUMERIC, "nvfp4: block %zu has the NaN scale",
                                i / RB_NVFP4_BLOCK);
        uint8_t c = (uint8_t) ((packed[i / 2] >> (4 * (i % 2))) & 0xF);
        y[i] = rb_e2m1_decode(c) * (s_b / tensor_scale);
    }
    return RB_OK;
}

double rb_mxfp4_bits_per_element(void) {
    return 4.0 + 8.0 / RB_MXFP4_BLOCK;
}

double rb_nvfp4_bits_per_element(size_t n) {
    return 4.0 + 8.0 / RB_NVFP4_BLOCK + (n ? 32.0 / (double) n : 0.0);
}
