/* IEEE binary16 (fp16) conversions for the KV methods, whose caches, scales and windows live in
 * fp16 (the serving dtype): round-to-nearest-even from fp32 and exact widening back. Written out
 * in bits because clang 14 has no _Float16 on x86. */
#ifndef RB_HALF_H
#define RB_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* fp32 -> fp16 bits, round to nearest even; overflow gives +-Inf (|x| >= 65520), NaN stays NaN
 * (quiet), subnormals are rounded on the 2^-24 grid. */
static inline uint16_t rb_f16_from_f32(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t) ((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t) (sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) return (uint16_t) (sign | 0x7c00u); /* rounds past 65504 */
    if (ax < 0x38800000u) {                                    /* below 2^-14: subnormal */
        float a;
        memcpy(&a, &ax, sizeof a);
        /* a * 2^24 is exact; rintf rounds half to even (default mode). 1024 = the smallest
         * normal, which is the right encoding when a subnormal rounds up to it. */
        return (uint16_t) (sign | (uint16_t) rintf(a * 16777216.0f));
    }
    /* Normal: add half an ulp minus one plus the kept lsb (ties to even), carry may bump the
     * exponent, then rebias 127 -> 15. */
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u;
    return (uint16_t) (sign | (r >> 13));
}

/* fp16 bits -> fp32, exact. */
static inline float rb_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float f = ldexpf((float) m, -24);
        return sign ? -f : f;
    }
    uint32_t x = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112) << 23) | (m << 13));
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* x rounded to the nearest fp16 value, as fp32. For + - * / of two fp16 values, the fp32 result
 * rounded here equals the fp16 operation's result (fp32 has 24 >= 2 * 11 + 2 bits). */
static inline float rb_f16_round(float x) {
    return rb_f16_to_f32(rb_f16_from_f32(x));
}

#endif
