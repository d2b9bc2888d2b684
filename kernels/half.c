/* fp16 <-> fp32 by bit manipulation (see half.h). */
#include "kernels/half.h"

#include <string.h>

uint16_t rb_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t) ((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* Inf or NaN (NaN keeps a payload bit so it stays a NaN) */
        return (uint16_t) (sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
    if (abs >= 0x477ff000u) return (uint16_t) (sign | 0x7c00u); /* rounds above 65504 */
    if (abs < 0x38800000u) {                                    /* below 2^-14: subnormal or 0 */
        if (abs < 0x33000000u) return sign;                     /* below 2^-25 rounds to 0 */
        uint32_t e = abs >> 23, m = (abs & 0x7fffffu) | 0x800000u;
        unsigned shift = 126u - e; /* value = m 2^(e-150); fp16 subnormal unit 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t) (sign | q);
    }
    /* Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits; a carry
     * out of the mantissa correctly bumps the exponent. */
    uint32_t r = abs - 0x38000000u;
    uint32_t q = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
    return (uint16_t) (sign | q);
}

float rb_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0x1f)
        u = sign | 0x7f800000u | (m << 13);
    else if (e)
        u = sign | ((e + 112u) << 23) | (m << 13);
    else if (m == 0)
        u = sign;
    else { /* subnormal: normalize */
        e = 113;
        while (!(m & 0x400u)) {
            m <<= 1;
            e--;
        }
        u = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
