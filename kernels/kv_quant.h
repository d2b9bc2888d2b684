/* KV-cache INT4 encode (SAW-INT4, kv_cache.md section 2): block Hadamard + per-row asymmetric
 * INT4 + half-split nibble packing fused in one pass over each token row, and its decode. */
#ifndef RB_KV_QUANT_H
#define RB_KV_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dispatch.h"
#include "kernels/half.h"

enum { RB_KV_INT4_DMAX = 4096 }; /* longest row (head_dim) the kernels take */

/* Flags of rb_kv_int4_encode_f32. */
enum {
    RB_KV_BF16 = 1u << 0,   /* round the rotated row to bfloat16 (nearest even) and back */
    RB_KV_SZ_F16 = 1u << 1, /* store scale and z as fp16 values; the codes use the rounded pair */
};

/* For each of `rows` rows x (d floats, row stride `stride`), exactly the SAW-INT4 kernel:
 *   v = x * (1/sqrt(m)) (fp32 multiply, before the butterflies), then an unnormalized
 *   natural-order FWHT on each contiguous block of m (m = 1: no rotation), then (RB_KV_BF16)
 *   bf16 round trip; mn, mx over the row; scale = max(mx - mn, 1e-8) / 15; z = (0 - mn) / scale
 *   (fp32, unrounded; 0 - mn so that mn = -0 gives z = +0 whichever order found it);
 *   q = (uint8)(v / scale + z + 0.5) (round half up), clamped to [0, 15] (never active for
 *   finite rows, it keeps the float-to-integer conversion defined); packed byte j of the row
 *   (0 <= j < d/2) = q[j] | q[j + d/2] << 4; sz[2 r] = scale, sz[2 r + 1] = z.
 * RB_KV_SZ_F16 (a cache that keeps the pair in fp16): scale and z are rounded to the nearest
 *   fp16 value (rb_f16_round: ties to even, beyond 65504 to +-inf, as a cast to fp16) right
 *   after they are computed, and the codes use the rounded pair, q = (uint8)(v / s16 + z16 +
 *   0.5) clamped to [0, 15] (the clamps can act here: s16 may be below scale), so that the
 *   decode's (q - z16) s16 is what the stored pair gives. The scale is first raised to
 *   RB_KV_F16_SCALE_MIN, the least fp16 step, and z computed with it: a scale that rounded to
 *   0 would decode every row to 0, or to NaN where z overflowed (a constant row). The pair is
 *   not checked: a caller that can meet a zero point beyond fp16 (a row whose values are far
 *   from 0 against their range) checks sz for inf.
 * packed is rows x d/2 bytes (row stride d/2), sz rows x 2 floats. d even, 2 <= d <=
 * RB_KV_INT4_DMAX, m a power of two dividing d; inputs finite. Bit-identical in every variant
 * and for any thread count (rows are independent; the pool splits rows), except on rows whose
 * butterflies overflow into inf - inf = NaN (|x| near FLT_MAX): the reference's scan keeps a NaN
 * in v[0] and skips the others, the vector min/max do not (so since the first AVX-512 kernel).
 * Callers see such rows by a pair that is not finite (methods/saw_int4.c makes it an error) in
 * all but the rare row whose infinities all meet NaNs; the KV loaders keep data below
 * RB_KV_ABS_MAX, where nothing overflows. */
int rb_kv_int4_encode_f32(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                          unsigned flags, uint8_t *packed, float *sz);

/* The inverse: x_hat = (q - z) * scale, then (m > 1) the block Hadamard again: the unnormalized
 * natural-order butterflies, then a multiply by 1/sqrt(m) (fp32), as rb_fwht_f32 with
 * RB_NORM_ORTHO does (H_m / sqrt(m) is its own inverse), into xhat (rows x d, row stride ld).
 * Bit-identical in every variant and for any thread count. */
int rb_kv_int4_decode_f32(const uint8_t *packed, const float *sz, size_t rows, size_t d, size_t m,
                          float *xhat, size_t ld);

/* The argument checks of both (shared with the CUDA twins, same codes and messages): d even in
 * 2..RB_KV_INT4_DMAX and m a power of two dividing d (RB_ESIZE), then, when rows > 0, the
 * buffers non-NULL (have_buffers) and ld >= d for more than one row (RB_EINVAL). */
int rb_kv_int4_check(const char *who, size_t rows, size_t d, size_t m, size_t ld, int have_buffers);

/* Work (butterflies, min/max, quantize) and traffic (read fp32 rows, write codes and sz). */
rb_cost rb_kv_int4_encode_cost(size_t d, size_t rows, size_t elem_bytes);

/* The kernel slot every variant fills: rows already checked, no threading inside. */
typedef int (*rb_kv_int4_encode_fn)(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                                    unsigned flags, uint8_t *packed, float *sz);
extern const rb_op rb_op_kv_int4_encode_f32;
int rb_kv_int4_encode_f32_ref(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                              unsigned flags, uint8_t *packed, float *sz);

/* The decode slot: rows already checked, no threading inside. */
typedef int (*rb_kv_int4_decode_fn)(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                                    size_t m, float *xhat, size_t ld);
extern const rb_op rb_op_kv_int4_decode_f32;
int rb_kv_int4_decode_f32_ref(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                              size_t m, float *xhat, size_t ld);

/* RB_KV_SZ_F16: the least scale stored, 2^-24 (the least positive fp16 value). */
#define RB_KV_F16_SCALE_MIN 0x1p-24f

/* A row's (scale, z) from its min and max, as every CPU variant computes them (above). */
static inline void rb_kv_scale_zero(float mn, float mx, unsigned flags, float *scale, float *z) {
    float range = mx - mn, s = (range > 1e-8f ? range : 1e-8f) / 15.0f;
    if (flags & RB_KV_SZ_F16) s = s > RB_KV_F16_SCALE_MIN ? s : RB_KV_F16_SCALE_MIN;
    float zz = (0.0f - mn) / s;
    if (flags & RB_KV_SZ_F16) {
        s = rb_f16_round(s);
        zz = rb_f16_round(zz);
    }
    *scale = s;
    *z = zz;
}

/* fp32 -> bf16 -> fp32, round to nearest even (finite inputs), as torch's .to(bfloat16). */
static inline float rb_bf16_round(float f) {
    union {
        float f;
        uint32_t u;
    } v = {f};
    v.u = (v.u + 0x7FFFu + ((v.u >> 16) & 1u)) & 0xFFFF0000u;
    return v.f;
}

#endif
