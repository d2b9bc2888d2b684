/* fp16 conversions (kernels/half.h): exhaustive round trips, rounding ties, overflow, NaN, and
 * agreement with the loaders' fp16 decoder. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "datasets/elem.h"
#include "kernels/half.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

/* Every fp16 value converts to fp32 and back unchanged (NaNs stay NaN). */
Test(half, every_fp16_value_round_trips) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rb_f16_to_f32((uint16_t) h);
        if (isnan(f)) {
            cr_assert((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu), "h %04x", h);
            cr_assert(isnan(rb_f16_to_f32(rb_f32_to_f16(f))));
            continue;
        }
        cr_assert_eq(rb_f32_to_f16(f), h, "h %04x -> %g -> %04x", h, f, rb_f32_to_f16(f));
    }
}

/* Random fp32 values go to the nearest fp16 value (ties to even checked at known points). */
Test(half, rounding_is_to_nearest_even) {
    uint64_t seed = rbt_seed();
    size_t n = 100000;
    uint32_t *bits = malloc(n * sizeof *bits);
    rb_rng_bits(seed, 9, 0, n, bits);
    for (size_t i = 0; i < n; i++) {
        float f;
        uint32_t u = (bits[i] & 0x8fffffffu) | 0x30000000u; /* |f| in [2^-31, 2^17): all cases */
        memcpy(&f, &u, sizeof f);
        uint16_t h = rb_f32_to_f16(f);
        double g = rb_f16_to_f32(h), e = fabs((double) f - g);
        if (isinf(g)) {
            cr_assert(fabs(f) >= 65520.0f, "%g -> inf", f);
            continue;
        }
        for (int s = -1; s <= 1; s += 2) {
            uint16_t nb = (uint16_t) (h + s);
            if ((h & 0x7fffu) == 0 && s < 0) continue;
            double gn = rb_f16_to_f32(nb);
            if (isfinite(gn) && (gn < 0) == (g < 0))
                cr_assert(e <= fabs((double) f - gn), "%.9g -> %g, %g is nearer (seed %llu)", f, g,
                          gn, (unsigned long long) seed);
        }
    }
    free(bits);
    cr_assert_eq(rb_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie: stays at even 1.0 */
    cr_assert_eq(rb_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie: up to even */
    cr_assert_eq(rb_f32_to_f16(65519.0f), 0x7bff);
    cr_assert_eq(rb_f32_to_f16(65520.0f), 0x7c00);
    cr_assert_eq(rb_f32_to_f16(0x1p-25f), 0);       /* tie between 0 and 2^-24: 0 */
    cr_assert_eq(rb_f32_to_f16(0x1.8p-25f), 1);     /* above the tie: 2^-24 */
    cr_assert_eq(rb_f32_to_f16(-0x1p-14f), 0x8400); /* smallest normal */
}

/* fp16 conversions: every finite half decodes as the loaders' decoder does and re-encodes to
 * itself; midpoints between neighbours round to the even one; overflow and NaN. */
Test(half, agrees_with_the_loaders_decoder) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        unsigned char b[2] = {(unsigned char) (h & 0xff), (unsigned char) (h >> 8)};
        double want = rb_elem_load(b, RB_ELEM_F16);
        float f = rb_f16_to_f32((uint16_t) h);
        if (isnan(want)) {
            cr_assert(isnan(f));
            cr_assert(isnan(rb_f16_to_f32(rb_f32_to_f16(f))));
            continue;
        }
        cr_assert_eq((double) f, want, "half 0x%04x", h);
        cr_assert_eq(rb_f32_to_f16(f), (uint16_t) h, "half 0x%04x", h);
        if ((h & 0x7fff) < 0x7bff) { /* the midpoint to the next magnitude */
            float up = rb_f16_to_f32((uint16_t) (h + 1));
            float mid = (float) (((double) f + up) / 2);
            uint16_t even = (h & 1) ? (uint16_t) (h + 1) : (uint16_t) h;
            cr_assert_eq(rb_f32_to_f16(mid), even, "midpoint above 0x%04x", h);
        }
    }
    cr_assert_eq(rb_f32_to_f16(65519.0f), 0x7bff);
    cr_assert_eq(rb_f32_to_f16(65520.0f), 0x7c00);
    cr_assert_eq(rb_f32_to_f16(-1e9f), 0xfc00);
}
