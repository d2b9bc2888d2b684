/* The SAW-INT4 encode's per-element arithmetic on the GPU (kernels/cuda/fused.cu): the quotient
 * v / scale without a division, and the INT4 code of a quotient. Each gives, bit for bit, what
 * the CPU reference (kernels/kv_quant.c) computes with an IEEE division and a conversion. */
#ifndef RB_CUDA_KV_QUOTIENT_CUH
#define RB_CUDA_KV_QUOTIENT_CUH

#include <float.h>
#include <stdint.h>

/* v / scale rounded to nearest as __fdiv_rn gives it (but +0 for v = -0: the code is the same),
 * from rcp = RN(1 / scale) computed once a row: q0 = RN(v rcp) is within 2 ulp of v / scale; one
 * correction q1 = RN(q0 + RN(v - scale q0) rcp) is within 1 ulp (its error before rounding is
 * about 4 u^2 |q|, even where the first residual rounds); with q1 faithful, the residual
 * v - scale q1 is exact, and with rcp within half an ulp of 1 / scale, Markstein's theorem makes
 * the second correction the correctly rounded quotient. That residual is exact unless it
 * underflows, which needs |v| < 2^-100, so |q| < 2^-69 (scale >= 1e-8 / 15): then (q + z) + 0.5
 * and so the code do not depend on q's last bits. Five operations instead of the division's
 * reciprocal, refinement and range check per element. Callers use it only where no quotient can
 * overflow and rcp is normal (rb_kv_fast_row). Checked against __fdiv_rn on random pairs by
 * cuda_kv_int4::quotient_is_the_division (tests/cuda_kv_quotient.cu). */
__device__ __forceinline__ float rb_kv_quotient(float v, float scale, float rcp) {
    float q = __fmul_rn(v, rcp);
    q = __fmaf_rn(__fmaf_rn(-scale, q, v), rcp, q);
    return __fmaf_rn(__fmaf_rn(-scale, q, v), rcp, q);
}

/* Whether rb_kv_quotient's conditions hold for a whole row with extremes mn, mx: rcp normal (a
 * scale beyond 2^126 would make it subnormal, an infinite one 0) and no quotient near overflow
 * (NaN extremes: no). A finite row's scale is at most FLT_MAX / 15, so only quotients of huge
 * near-constant rows take the division. */
__device__ __forceinline__ bool rb_kv_fast_row(float mn, float mx, float rcp) {
    return rcp >= FLT_MIN && __fmul_rn(fmaxf(fabsf(mn), fabsf(mx)), rcp) < 0x1p126f;
}

/* The INT4 code of a quotient: the CPU's ((q + z) + 0.5) clamped to [0, 15] and truncated. The
 * truncation of f in [0, 15] is the low bits of f + 2^23 rounded down: one add on the FP32
 * pipe instead of a conversion at a quarter of its rate. */
__device__ __forceinline__ uint32_t rb_kv_code(float q, float z) {
    float f = __fadd_rn(__fadd_rn(q, z), 0.5f);
    f = f > 0.0f ? f : 0.0f;
    f = f < 15.0f ? f : 15.0f;
    return __float_as_uint(__fadd_rd(f, 0x1p23f)) & 15u;
}

#endif
