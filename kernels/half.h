/* IEEE binary16 (fp16) conversions for side information stored at half precision. */
#ifndef RB_HALF_H
#define RB_HALF_H

#include <stdint.h>

#define RB_F16_MAX 65504.0f

/* Round to nearest, ties to even; overflow gives +-Inf, underflow subnormals then +-0, NaN stays
 * a (quiet) NaN. Plain bit manipulation: no _Float16 (clang 14 lacks it on x86) and no F16C. */
uint16_t rb_f32_to_f16(float f);
/* Exact (every fp16 value is an fp32 value). */
float rb_f16_to_f32(uint16_t h);

/* x rounded to the nearest fp16 value, as fp32. For + - * / of two fp16 values, the fp32 result
 * rounded here equals the fp16 operation's result (fp32 has 24 >= 2 * 11 + 2 bits), which is how
 * the KV methods do fp16 arithmetic. */
static inline float rb_f16_round(float x) {
    return rb_f16_to_f32(rb_f32_to_f16(x));
}

#endif
