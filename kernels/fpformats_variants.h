/* The MXFP4 / NVFP4 codec variants (kernels/fpformats.c, kernels/x86/fpformats_*.c) and the bit
 * formulas they share. Internal to the kernel layer: callers use kernels/fpformats.h. */
#ifndef RB_FPFORMATS_VARIANTS_H
#define RB_FPFORMATS_VARIANTS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fpformats.h"

/* The references; the fast variants hand them the calls they cannot finish identically (NaN or
 * Inf input, a NaN scale, an unknown rule), so that the error and its message are the same. */
int rb_mxfp4_quant_f32_ref(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                           uint8_t *scales, float *y);
int rb_mxfp4_dequant_f32_ref(const uint8_t *packed, const uint8_t *scales, size_t n, float *y);
int rb_nvfp4_quant_f32_ref(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                           float *tensor_scale, float *y);
int rb_nvfp4_dequant_f32_ref(const uint8_t *packed, const uint8_t *scales, float tensor_scale,
                             size_t n, float *y);

/* NVFP4 tensor scale s_enc of a finite amax >= 0 (the formula of fpformats.h). */
float rb_nvfp4_tensor_scale(float amax);
/* E4M3 of s >= 0 (not NaN), saturating, and its value: the bit formulation of
 * rb_fp8_e4m3_encode(s, RB_FP8_SATURATE) and rb_fp8_e4m3_decode. */
uint8_t rb_e4m3_sat_pos(float s, float *value);

/* MXFP4 scale code (shared_exp + 127) of a block from the bit pattern of its amax. With E the
 * biased exponent field, floor(log2 amax) = E - 127 for normal amax, so shared_exp = E - 129;
 * the ceil rule adds 1 when amax / 2^shared_exp = 4 * 1.mantissa exceeds 6, i.e. the mantissa
 * field exceeds 0x400000 (1.5). Subnormal and zero amax (E = 0) land below -127 and clamp to it,
 * as the reference's frexp does; the largest float gives 253, so the top clamp never acts. */
static inline int rb_mx_scale_code(uint32_t amax_bits, rb_mx_rule rule) {
    int sc =
        (int) (amax_bits >> 23) - 2 + (rule == RB_MX_CEIL && (amax_bits & 0x7FFFFFu) > 0x400000u);
    return sc < 0 ? 0 : sc;
}

/* 2^-shared_exp for a scale code 0..253: a normal float (exponent field 254 - code). x times it
 * is exact unless it underflows below 2^-126, far under the first E2M1 threshold 0.25. */
static inline float rb_mx_down(int sc) {
    uint32_t u = (uint32_t) (254 - sc) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 2^shared_exp for a scale code 0..254; code 0 is the subnormal 2^-127. Every E2M1 value times it
 * is exact in fp32 or overflows to Inf, as the reference's double product rounded to fp32. */
static inline float rb_mx_up(int sc) {
    uint32_t u = sc ? (uint32_t) sc << 23 : 0x00400000u;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int rb_nvfp4_dequant_f32_avx2(const uint8_t *packed, const uint8_t *scales, float tensor_scale,
                              size_t n, float *y);

int rb_mxfp4_quant_f32_avx512(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                              uint8_t *scales, float *y);
int rb_mxfp4_quant_f32_avx2(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                            uint8_t *scales, float *y);
int rb_mxfp4_dequant_f32_avx512(const uint8_t *packed, const uint8_t *scales, size_t n, float *y);
int rb_mxfp4_dequant_f32_avx2(const uint8_t *packed, const uint8_t *scales, size_t n, float *y);
int rb_nvfp4_quant_f32_avx512(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                              float *tensor_scale, float *y);
int rb_nvfp4_quant_f32_avx2(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                            float *tensor_scale, float *y);
int rb_nvfp4_dequant_f32_avx512(const uint8_t *packed, const uint8_t *scales, float tensor_scale,
                                size_t n, float *y);
int rb_nvfp4_dequant_f32_avx2(const uint8_t *packed, const uint8_t *scales, float tensor_scale,
                              size_t n, float *y);

/* Each entry is RB_VARIANT(name, isa, fn), followed by a comma. */
#define RB_MXFP4_QUANT_F32_FAST_VARIANTS                            \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_mxfp4_quant_f32_avx512), \
        RB_VARIANT("avx2", RB_ISA_AVX2, rb_mxfp4_quant_f32_avx2),
#define RB_MXFP4_DEQUANT_F32_FAST_VARIANTS                            \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_mxfp4_dequant_f32_avx512), \
        RB_VARIANT("avx2", RB_ISA_AVX2, rb_mxfp4_dequant_f32_avx2),
#define RB_NVFP4_QUANT_F32_FAST_VARIANTS                            \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_nvfp4_quant_f32_avx512), \
        RB_VARIANT("avx2", RB_ISA_AVX2, rb_nvfp4_quant_f32_avx2),
#define RB_NVFP4_DEQUANT_F32_FAST_VARIANTS                            \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_nvfp4_dequant_f32_avx512), \
        RB_VARIANT("avx2", RB_ISA_AVX2, rb_nvfp4_dequant_f32_avx2),

#endif
