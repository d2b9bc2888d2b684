/* Small float formats: E2M1 ties and saturation, FP8 E4M3/E5M2 exhaustive tables and RNE at every
 * midpoint, UE8M0, and the MXFP4 (floor and ceil rules) and NVFP4 block codecs. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static const float e2m1_grid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};

Test(e2m1, table_ties_saturation_zero) {
    for (uint8_t c = 0; c < 16; c++) {
        float v = rb_e2m1_decode(c);
        cr_assert_eq(fabsf(v), e2m1_grid[c & 7]);
        cr_assert_eq(signbit(v) != 0, (c & 8) != 0);
        cr_assert_eq(rb_e2m1_encode(v), c, "code %u", c);
    }
    const float in[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    const float out[] = {0, 1, 1, 2, 2, 4, 4};
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(rb_e2m1_decode(rb_e2m1_encode(in[i])), out[i], "%g", in[i]);
        cr_assert_eq(rb_e2m1_decode(rb_e2m1_encode(-in[i])), -out[i]);
    }
    cr_assert_eq(rb_e2m1_encode(6.9f), 7);
    cr_assert_eq(rb_e2m1_encode(7.0f), 7);
    cr_assert_eq(rb_e2m1_encode(1e30f), 7);
    cr_assert_eq(rb_e2m1_encode(-1e30f), 15);
    cr_assert_eq(rb_e2m1_encode(INFINITY), 7);
    cr_assert_eq(rb_e2m1_encode(0.0f), 0);
    cr_assert_eq(rb_e2m1_encode(-0.0f), 8);
    cr_assert_eq(rb_e2m1_encode(-0.1f), 8);
    cr_assert(signbit(rb_e2m1_decode(8)));
    cr_assert_eq(rb_e2m1_decode(8), 0.0f);
}

/* Brute-force nearest grid point with ties to the even code, the definition of E2M1 RNE. */
static uint8_t e2m1_brute(double v) {
    double a = fabs(v);
    int best = 0;
    for (int i = 1; i < 8; i++) {
        double d = fabs(a - e2m1_grid[i]), db = fabs(a - e2m1_grid[best]);
        if (d < db || (d == db && i % 2 == 0)) best = i;
    }
    return (uint8_t) (best | (signbit(v) ? 8 : 0));
}

Test(e2m1, random_against_brute_force) {
    uint64_t seed = rbt_seed();
    enum { N = 20000 };
    float *x = rbt_normal_f32(N, seed, 1);
    for (int i = 0; i < N; i++) {
        float v = x[i] * 3;
        cr_assert_eq(rb_e2m1_encode(v), e2m1_brute(v), "seed %llu x %a", (unsigned long long) seed,
                     v);
    }
    free(x);
}

/* Independent restatement of the two FP8 decode rules. */
static double e4m3_formula(unsigned c) {
    unsigned s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) return NAN;
    double v = e == 0 ? m / 8.0 * pow(2, -6) : (1 + m / 8.0) * pow(2, (int) e - 7);
    return s ? -v : v;
}

static double e5m2_formula(unsigned c) {
    unsigned s = c >> 7, e = (c >> 2) & 31, m = c & 3;
    double v = e == 31  ? (m ? NAN : INFINITY)
               : e == 0 ? m / 4.0 * pow(2, -14)
                        : (1 + m / 4.0) * pow(2, (int) e - 15);
    return s ? -v : v;
}

typedef uint8_t (*enc_fn)(float, rb_fp8_overflow);
typedef float (*dec_fn)(uint8_t);

static void fp8_exhaustive(const char *name, enc_fn enc, dec_fn dec, double (*formula)(unsigned),
                           uint8_t maxc) {
    int nans = 0;
    for (unsigned c = 0; c < 256; c++) {
        float v = dec((uint8_t) c);
        double f = formula(c);
        if (isnan(f)) {
            cr_assert(isnan(v));
            nans++;
            continue;
        }
        cr_assert_eq((double) v, f, "%s code %u", name, c);
        if (isinf(v)) continue;
        cr_assert_eq(enc(v, RB_FP8_SATURATE), c, "%s encode(decode(%u))", name, c);
        cr_assert_eq(enc(v, RB_FP8_SPECIAL), c);
    }
    cr_log_info("%s: %d NaN codes", name, nans);
    /* Every adjacent positive pair: the midpoint goes to the even code, its neighbours round
     * the nearest way; the same mirrored. */
    for (unsigned c = 0; c < maxc; c++) {
        float a = dec((uint8_t) c), b = dec((uint8_t) (c + 1));
        float m = (float) (((double) a + b) / 2); /* exact: FP8 midpoints fit in fp32 */
        cr_assert_eq((double) m, ((double) a + b) / 2);
        uint8_t even = c % 2 == 0 ? (uint8_t) c : (uint8_t) (c + 1);
        cr_assert_eq(enc(m, RB_FP8_SATURATE), even, "%s midpoint of %u and %u", name, c, c + 1);
        cr_assert_eq(enc(-m, RB_FP8_SATURATE), even | 0x80);
        cr_assert_eq(enc(nextafterf(m, 0), RB_FP8_SATURATE), c);
        cr_assert_eq(enc(nextafterf(m, INFINITY), RB_FP8_SATURATE), c + 1);
    }
}

Test(fp8, e4m3_exhaustive_and_rne) {
    fp8_exhaustive("e4m3", rb_fp8_e4m3_encode, rb_fp8_e4m3_decode, e4m3_formula, 0x7E);
    cr_assert_eq(rb_fp8_e4m3_decode(0x7E), 448.0f);
    cr_assert_eq(rb_fp8_e4m3_decode(0x01), 0x1p-9f);
    cr_assert_eq(rb_fp8_e4m3_decode(0x08), 0x1p-6f);
    cr_assert_eq(rb_fp8_e4m3_encode(0x1p-10f, RB_FP8_SATURATE), 0x00);  /* tie to even: 0 */
    cr_assert_eq(rb_fp8_e4m3_encode(0x1.8p-9f, RB_FP8_SATURATE), 0x02); /* 1.5 steps -> 2 */
    cr_assert_eq(rb_fp8_e4m3_encode(-0.0f, RB_FP8_SATURATE), 0x80);
    /* Above 448: 464 is the tie with the missing 480 and goes to 448 (even); beyond, saturate or
     * NaN. */
    cr_assert_eq(rb_fp8_e4m3_encode(464.0f, RB_FP8_SPECIAL), 0x7E);
    cr_assert_eq(rb_fp8_e4m3_encode(465.0f, RB_FP8_SATURATE), 0x7E);
    cr_assert_eq(rb_fp8_e4m3_encode(465.0f, RB_FP8_SPECIAL), 0x7F);
    cr_assert_eq(rb_fp8_e4m3_encode(-1e9f, RB_FP8_SATURATE), 0xFE);
    cr_assert_eq(rb_fp8_e4m3_encode(-1e9f, RB_FP8_SPECIAL), 0xFF);
    cr_assert_eq(rb_fp8_e4m3_encode(INFINITY, RB_FP8_SATURATE), 0x7E);
    cr_assert_eq(rb_fp8_e4m3_encode(INFINITY, RB_FP8_SPECIAL), 0x7F);
    cr_assert_eq(rb_fp8_e4m3_encode(NAN, RB_FP8_SATURATE), 0x7F);
    float x[3] = {1, NAN, 2};
    uint8_t o[3];
    cr_assert_eq(rb_fp8_e4m3_encode_f32(x, 3, RB_FP8_SATURATE, o), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "element 1"));
}

Test(fp8, e5m2_exhaustive_and_rne) {
    fp8_exhaustive("e5m2", rb_fp8_e5m2_encode, rb_fp8_e5m2_decode, e5m2_formula, 0x7B);
    cr_assert_eq(rb_fp8_e5m2_decode(0x7B), 57344.0f);
    cr_assert_eq(rb_fp8_e5m2_decode(0x7C), INFINITY);
    cr_assert_eq(rb_fp8_e5m2_decode(0xFC), -INFINITY);
    cr_assert_eq(rb_fp8_e5m2_decode(0x01), 0x1p-16f);
    cr_assert_eq(rb_fp8_e5m2_encode(INFINITY, RB_FP8_SPECIAL), 0x7C);
    cr_assert_eq(rb_fp8_e5m2_encode(INFINITY, RB_FP8_SATURATE), 0x7B);
    /* IEEE: the midpoint 61440 between the max and 2^16 rounds to even, i.e. overflows. */
    cr_assert_eq(rb_fp8_e5m2_encode(61440.0f, RB_FP8_SPECIAL), 0x7C);
    cr_assert_eq(rb_fp8_e5m2_encode(61439.0f, RB_FP8_SPECIAL), 0x7B);
    cr_assert_eq(rb_fp8_e5m2_encode(61440.0f, RB_FP8_SATURATE), 0x7B);
    cr_assert(isnan(rb_fp8_e5m2_decode(rb_fp8_e5m2_encode(NAN, RB_FP8_SATURATE))));
    cr_assert_eq(rb_fp8_e5m2_encode(0x1p-17f, RB_FP8_SATURATE), 0x00);
    cr_assert_eq(rb_fp8_e5m2_encode(0x1.8p-17f, RB_FP8_SATURATE), 0x01);
}

Test(fp8, array_round_trip) {
    uint64_t seed = rbt_seed();
    enum { N = 1000 };
    float *x = rbt_normal_f32(N, seed, 2), y[N];
    uint8_t c[N];
    cr_assert_eq(rb_fp8_e4m3_encode_f32(x, N, RB_FP8_SATURATE, c), 0);
    rb_fp8_e4m3_decode_f32(c, N, y);
    for (int i = 0; i < N; i++) /* 3 mantissa bits: relative error <= 2^-4 above 2^-6 */
        cr_assert(fabsf(y[i] - x[i]) <= fmaxf(fabsf(x[i]) * 0x1p-4f, 0x1p-10f), "seed %llu",
                  (unsigned long long) seed);
    cr_assert_eq(rb_fp8_e5m2_encode_f32(x, N, RB_FP8_SATURATE, c), 0);
    rb_fp8_e5m2_decode_f32(c, N, y);
    for (int i = 0; i < N; i++)
        cr_assert(fabsf(y[i] - x[i]) <= fmaxf(fabsf(x[i]) * 0x1p-3f, 0x1p-17f));
    free(x);
}

Test(ue8m0, codes) {
    cr_assert_eq(rb_ue8m0_decode(127), 1.0f);
    cr_assert_eq(rb_ue8m0_decode(0), 0x1p-127f);
    cr_assert_eq(rb_ue8m0_decode(254), 0x1p127f);
    cr_assert(isnan(rb_ue8m0_decode(255)));
    for (int e = -127; e <= 127; e++) cr_assert_eq(rb_ue8m0_encode(ldexpf(1, e)), e + 127);
    cr_assert_eq(rb_ue8m0_encode(3.0f), 128);
    cr_assert_eq(rb_ue8m0_encode(0.0f), 255);
    cr_assert_eq(rb_ue8m0_encode(NAN), 255);
}

static uint8_t nib(const uint8_t *p, size_t i) {
    return (p[i / 2] >> (4 * (i % 2))) & 0xF;
}

Test(mxfp4, floor_rule_saturates_amax_4_to_8) {
    uint64_t seed = rbt_seed();
    float x[32], y[32], y2[32];
    uint8_t p[16], sc[1];
    for (int t = 0; t < 50; t++) {
        rb_rng_uniform_f32(seed, (uint64_t) t, 0, 32, x);
        int e = t % 20 - 10;
        for (int i = 0; i < 32; i++) x[i] = ldexpf(x[i] * 8 - 4, e); /* |x| < 4 * 2^e */
        float amax = ldexpf(4.0f + 4.0f * (float) t / 50, e);        /* in [4, 8) * 2^e */
        x[t % 32] = (t % 2) ? -amax : amax;
        cr_assert_eq(rb_mxfp4_encode(x, 32, RB_MX_FLOOR, p, sc), 0);
        cr_assert_eq(sc[0], e + 127, "seed %llu t %d", (unsigned long long) seed, t);
        cr_assert_eq(rb_mxfp4_decode(p, sc, 32, y), 0);
        cr_assert_eq(rb_mxfp4_fake_quant(x, 32, RB_MX_FLOOR, y2), 0);
        cr_assert(memcmp(y, y2, sizeof y) == 0);
        for (int i = 0; i < 32; i++) /* element = nearest E2M1 of x / 2^e, saturating */
            cr_assert_eq(nib(p, (size_t) i), e2m1_brute(ldexp(x[i], -e)));
        if (amax > ldexpf(5, e)) cr_assert_eq(nib(p, (size_t) (t % 32)) & 7, 7); /* saturated */
    }
    cr_assert_str_eq(rb_mx_rule_name(RB_MX_FLOOR), "floor");
    cr_assert_str_eq(rb_mx_rule_name(RB_MX_CEIL), "ceil");
}

Test(mxfp4, ceil_rule_leaves_4_and_6_unused_at_3_plus_delta) {
    uint64_t seed = rbt_seed();
    float x[32], y[32];
    uint8_t p[16], sc[1];
    rb_rng_uniform_f32(seed, 1, 0, 32, x);
    for (int i = 0; i < 32; i++) x[i] = x[i] * 6 - 3;
    x[5] = 3.01f;
    cr_assert_eq(rb_mxfp4_encode(x, 32, RB_MX_CEIL, p, sc), 0);
    cr_assert_eq(sc[0], 127); /* 2^ceil(log2(3.01 / 6)) = 1 */
    for (size_t i = 0; i < 32; i++)
        cr_assert((nib(p, i) & 7) <= 5, "seed %llu", (unsigned long long) seed);
    /* The floor rule on the same block uses scale 1/2 and reaches 6. */
    cr_assert_eq(rb_mxfp4_encode(x, 32, RB_MX_FLOOR, p, sc), 0);
    cr_assert_eq(sc[0], 126);
    cr_assert_eq(nib(p, 5), 7);
    /* Ceil never saturates: every element within half a grid step of the scaled grid. */
    for (int t = 0; t < 20; t++) {
        float *z = rbt_normal_f32(70, seed, 10 + (uint64_t) t);
        for (int i = 0; i < 70; i++) z[i] = ldexpf(z[i], t - 10);
        uint8_t pp[35], ss[3];
        float yy[70];
        cr_assert_eq(rb_mxfp4_encode(z, 70, RB_MX_CEIL, pp, ss), 0);
        cr_assert_eq(rb_mxfp4_decode(pp, ss, 70, yy), 0);
        for (int i = 0; i < 70; i++) {
            float s = rb_ue8m0_decode(ss[i / 32]);
            cr_assert(fabsf(z[i]) <= 6 * s);
            cr_assert(fabsf(yy[i] - z[i]) <= s); /* half of the top grid step 2 */
        }
        free(z);
    }
    (void) y;
}

Test(mxfp4, all_zero_block_odd_length_and_errors) {
    float x[40] = {0}, y[40];
    uint8_t p[20], sc[2];
    x[35] = 1.0f;
    for (int rule = 0; rule <= 1; rule++) {
        cr_assert_eq(rb_mxfp4_encode(x, 37, (rb_mx_rule) rule, p, sc), 0);
        cr_assert_eq(sc[0], 0); /* all-zero block: 2^-127 */
        for (size_t i = 0; i < 32; i++) cr_assert_eq(nib(p, i), 0);
        cr_assert_eq(rb_mxfp4_decode(p, sc, 37, y), 0);
        for (int i = 0; i < 37; i++) cr_assert_eq(y[i], x[i]);
        cr_assert_eq(p[18] >> 4, 0); /* padding nibble */
    }
    x[3] = INFINITY;
    cr_assert_eq(rb_mxfp4_encode(x, 37, RB_MX_FLOOR, p, sc), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "element 3"));
    x[3] = 0;
    cr_assert_eq(rb_mxfp4_encode(x, 37, (rb_mx_rule) 5, p, sc), RB_EINVAL);
    cr_assert_eq(rb_mxfp4_bits_per_element(), 4.25);
    cr_assert_eq(rb_nvfp4_bits_per_element(0), 4.5);
    cr_assert_eq(rb_nvfp4_bits_per_element(64), 5.0);
}

Test(nvfp4, hand_block) {
    const float x[4] = {1, 2, 3, -6};
    uint8_t p[2], sc[1];
    float ts, y[4];
    cr_assert_eq(rb_nvfp4_encode(x, 4, p, sc, &ts), 0);
    cr_assert_eq(ts, 448.0f); /* 6 * 448 / 6 */
    cr_assert_eq(rb_fp8_e4m3_decode(sc[0]), 448.0f);
    cr_assert_eq(p[0], 0x42);
    cr_assert_eq(p[1], 0xF5);
    cr_assert_eq(rb_nvfp4_decode(p, sc, ts, 4, y), 0);
    for (int i = 0; i < 4; i++) cr_assert_eq(y[i], x[i]);
}

Test(nvfp4, round_trip_error_bounds) {
    uint64_t seed = rbt_seed();
    const size_t ns[] = {1, 15, 16, 17, 256, 1001};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        float *x = rbt_normal_f32(n, seed, k), *y = malloc(n * 4), *y2 = malloc(n * 4);
        uint8_t *p = malloc(n / 2 + 1), *sc = malloc(n / 16 + 1);
        float ts;
        cr_assert_eq(rb_nvfp4_encode(x, n, p, sc, &ts), 0);
        cr_assert_eq(rb_nvfp4_decode(p, sc, ts, n, y), 0);
        cr_assert_eq(rb_nvfp4_fake_quant(x, n, y2), 0);
        cr_assert(memcmp(y, y2, n * 4) == 0);
        float amax = 0;
        for (size_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
        cr_assert_eq(ts, 6.0f * 448.0f / amax);
        for (size_t i = 0; i < n; i++) {
            float s_b = rb_fp8_e4m3_decode(sc[i / 16]);
            cr_assert(s_b <= 448.0f);
            float dec = s_b / ts;
            /* Half the top grid step (1) or the saturation loss of an E4M3 scale rounded down by
             * at most 1/16 (0.4), in units of the block's decode scale. */
            cr_assert(fabsf(y[i] - x[i]) <= dec * (1 + 1e-5f) + 1e-30f,
                      "seed %llu n %zu i %zu x %g y %g", (unsigned long long) seed, n, i, x[i],
                      y[i]);
        }
        free(x), free(y), free(y2), free(p), free(sc);
    }
    float z[20] = {0}, yz[20];
    cr_assert_eq(rb_nvfp4_fake_quant(z, 20, yz), 0);
    for (int i = 0; i < 20; i++) cr_assert_eq(yz[i], 0.0f);
    z[7] = NAN;
    cr_assert_eq(rb_nvfp4_fake_quant(z, 20, yz), RB_ENUMERIC);
}
