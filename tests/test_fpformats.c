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

/* ---- every dispatched variant against the reference ---- */

static const float e2m1_ties[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};

/* Input kinds that reach every branch of the block codecs. */
enum {
    K_GAUSS, /* N(0, 1) */
    K_HEAVY, /* Gaussian times e^(1.5 N(0, 1)): Laplace-like and heavier tails */
    K_TIES,  /* per 32-block: an amax planted in [4, 8) * 2^e (incl. 6, 6+, 3 + d), E2M1 ties,
              * their fp32 neighbours at both the floor and the ceil scale, zero blocks */
    K_TINY,  /* subnormals and zeros */
    K_HUGE,  /* up to near FLT_MAX */
    K_WIDE,  /* each 16-block in a random binade of the whole fp32 range */
    K_ZEROS, /* +0 and -0 only */
    K_NKINDS
};

static float rnd_sign(uint32_t r, float v) {
    return (r & 1) ? -v : v;
}

static void fill_kind(float *x, size_t n, int kind, uint64_t seed, uint64_t stream) {
    float *g = malloc((2 * n + 1) * sizeof *g);
    uint32_t *r = malloc((2 * n + 1) * sizeof *r);
    rb_rng_normal_f32(seed, stream, 0, 2 * n, g);
    rb_rng_bits(seed, stream + 1000, 0, 2 * n, r);
    for (size_t i = 0; i < n; i++) {
        float v = g[i];
        size_t blk = i / 32, pos = i % 32;
        uint32_t rb = r[n + blk]; /* one draw per block */
        switch (kind) {
        case K_GAUSS:
            break;
        case K_HEAVY:
            v = g[i] * expf(1.5f * g[n + i]);
            break;
        case K_TIES: {
            int e = (int) (rb % 270) - 145; /* block binade 2^-145 .. 2^124 */
            /* 4, 5 (a tie), 6, 6 + ulp (ceil moves up), 8 - ulp, 3 + d (ceil wastes a binade) */
            static const float amaxes[] = {4.0f, 5.0f, 6.0f, 0x1.800002p+2f, 0x1.fffffep+2f, 3.01f};
            if (rb % 11 == 0) { /* all-zero block, signs mixed */
                v = rnd_sign(r[i], 0.0f);
                break;
            }
            if (pos == rb % 32) {
                v = rnd_sign(r[i], ldexpf(amaxes[(rb >> 8) % 6], e));
                break;
            }
            float t = e2m1_ties[r[i] % 7];
            int which = (int) ((r[i] >> 3) % 4); /* the tie, its neighbours, at e or e + 1 */
            float base = which == 3 ? ldexpf(t, e + 1) : ldexpf(t, e);
            if (which == 1) base = nextafterf(base, 0);
            if (which == 2) base = nextafterf(base, INFINITY);
            v = rnd_sign(r[i] >> 8, base);
            break;
        }
        case K_TINY:
            v = r[i] % 5 == 0 ? rnd_sign(r[i] >> 4, 0.0f) : ldexpf(g[i], -140 + (int) (rb % 12));
            break;
        case K_HUGE:
            v = r[i] % 17 == 0 ? rnd_sign(r[i] >> 5, FLT_MAX) : ldexpf(g[i], 100 + (int) (rb % 24));
            break;
        case K_WIDE:
            v = ldexpf(g[i] / 4, (int) (r[n + i / 16] % 276) - 149);
            break;
        case K_ZEROS:
            v = rnd_sign(r[i], 0.0f);
            break;
        }
        x[i] = v;
    }
    free(g);
    free(r);
}

/* Buffers with slack, filled with a pattern, so that writes past the end or where nothing should
 * be written show up in the byte comparison. */
enum { SLACK = 64 };
typedef struct outs {
    uint8_t *packed, *scales;
    float *y, ts;
} outs;

static void outs_init(outs *o, size_t n, size_t block) {
    o->packed = malloc(n / 2 + 1 + SLACK);
    o->scales = malloc(n / block + 1 + SLACK);
    o->y = malloc((n + SLACK) * sizeof(float));
    memset(o->packed, 0xA5, n / 2 + 1 + SLACK);
    memset(o->scales, 0x5A, n / block + 1 + SLACK);
    memset(o->y, 0xC3, (n + SLACK) * sizeof(float));
    o->ts = -1;
}

static void outs_free(outs *o) {
    free(o->packed), free(o->scales), free(o->y);
}

static void outs_same(const outs *a, const outs *b, size_t n, size_t block, const char *what,
                      const char *var, uint64_t seed, int kind) {
    cr_assert(memcmp(a->packed, b->packed, n / 2 + 1 + SLACK) == 0,
              "%s %s codes differ: seed %llu kind %d n %zu", var, what, (unsigned long long) seed,
              kind, n);
    cr_assert(memcmp(a->scales, b->scales, n / block + 1 + SLACK) == 0,
              "%s %s scales differ: seed %llu kind %d n %zu", var, what, (unsigned long long) seed,
              kind, n);
    size_t bad = n + SLACK;
    for (size_t i = 0; i < n + SLACK && bad == n + SLACK; i++)
        if (memcmp(&a->y[i], &b->y[i], sizeof(float)) != 0) bad = i;
    cr_assert(bad == n + SLACK,
              "%s %s values differ at %zu (%a vs ref %a): seed %llu kind %d n %zu", var, what, bad,
              (double) a->y[bad], (double) b->y[bad], (unsigned long long) seed, kind, n);
    cr_assert(memcmp(&a->ts, &b->ts, sizeof a->ts) == 0, "%s %s tensor scale: seed %llu", var, what,
              (unsigned long long) seed);
}

#define REF_FN(op, type) ((type) (op).variants[(op).count - 1].fn)

static const size_t variant_ns[] = {0,  1,    15,   16,       17,     31,     32,
                                    33, 4096, 4097, 3 * 4097, 5 * 33, 7 * 17, 9 * 4096};

static int variants_tested(const rb_op *op) {
    int k = 0;
    for (size_t v = 0; v + 1 < op->count; v++) k += rb_variant_enabled(&op->variants[v]);
    return k;
}

/* Quantize with (codes + scales + values), (codes + scales), (values) and in place, then
 * decode the reference's codes, each variant against the reference. */
static void mx_compare(const rb_variant *v, const float *x, size_t n, uint64_t seed, int kind) {
    const rb_variant *ref = &rb_op_mxfp4_quant_f32.variants[rb_op_mxfp4_quant_f32.count - 1];
    rb_mxfp4_quant_fn fv = (rb_mxfp4_quant_fn) v->fn, fr = (rb_mxfp4_quant_fn) ref->fn;
    rb_mxfp4_dequant_fn dv = NULL, dr = (rb_mxfp4_dequant_fn) rb_op_mxfp4_dequant_f32
                                            .variants[rb_op_mxfp4_dequant_f32.count - 1]
                                            .fn;
    for (size_t d = 0; d + 1 < rb_op_mxfp4_dequant_f32.count; d++)
        if (strcmp(rb_op_mxfp4_dequant_f32.variants[d].name, v->name) == 0)
            dv = (rb_mxfp4_dequant_fn) rb_op_mxfp4_dequant_f32.variants[d].fn;
    for (int rule = 0; rule <= 1; rule++) {
        outs a, b;
        for (int mode = 0; mode < 4; mode++) {
            outs_init(&a, n, 32), outs_init(&b, n, 32);
            if (mode == 3) { /* in place: y is x */
                memcpy(a.y, x, n * sizeof *x);
                memcpy(b.y, x, n * sizeof *x);
                cr_assert_eq(fv(a.y, n, (rb_mx_rule) rule, NULL, NULL, a.y), 0);
                cr_assert_eq(fr(b.y, n, (rb_mx_rule) rule, NULL, NULL, b.y), 0);
            } else {
                uint8_t *pa = mode == 2 ? NULL : a.packed, *pb = mode == 2 ? NULL : b.packed;
                uint8_t *sa = mode == 2 ? NULL : a.scales, *sb = mode == 2 ? NULL : b.scales;
                float *ya = mode == 1 ? NULL : a.y, *yb = mode == 1 ? NULL : b.y;
                cr_assert_eq(fv(x, n, (rb_mx_rule) rule, pa, sa, ya), 0, "%s: %s", v->name,
                             rb_error_detail());
                cr_assert_eq(fr(x, n, (rb_mx_rule) rule, pb, sb, yb), 0);
            }
            outs_same(&a, &b, n, 32, rule ? "mxfp4 ceil" : "mxfp4 floor", v->name, seed, kind);
            if (mode == 0 && dv) { /* decode the codes just made */
                memset(a.y, 0xC3, (n + SLACK) * sizeof(float));
                memset(b.y, 0xC3, (n + SLACK) * sizeof(float));
                cr_assert_eq(dv(b.packed, b.scales, n, a.y), 0);
                cr_assert_eq(dr(b.packed, b.scales, n, b.y), 0);
                outs_same(&a, &b, n, 32, "mxfp4 decode", v->name, seed, kind);
            }
            outs_free(&a), outs_free(&b);
        }
    }
}

static void nv_compare(const rb_variant *v, const float *x, size_t n, uint64_t seed, int kind) {
    const rb_op *qop = &rb_op_nvfp4_quant_f32, *dop = &rb_op_nvfp4_dequant_f32;
    rb_nvfp4_quant_fn fv = (rb_nvfp4_quant_fn) v->fn,
                      fr = (rb_nvfp4_quant_fn) qop->variants[qop->count - 1].fn;
    rb_nvfp4_dequant_fn dv = NULL, dr = (rb_nvfp4_dequant_fn) dop->variants[dop->count - 1].fn;
    for (size_t d = 0; d + 1 < dop->count; d++)
        if (strcmp(dop->variants[d].name, v->name) == 0)
            dv = (rb_nvfp4_dequant_fn) dop->variants[d].fn;
    outs a, b;
    for (int mode = 0; mode < 4; mode++) {
        outs_init(&a, n, 16), outs_init(&b, n, 16);
        if (mode == 3) {
            memcpy(a.y, x, n * sizeof *x);
            memcpy(b.y, x, n * sizeof *x);
            cr_assert_eq(fv(a.y, n, NULL, NULL, NULL, a.y), 0);
            cr_assert_eq(fr(b.y, n, NULL, NULL, NULL, b.y), 0);
        } else {
            uint8_t *pa = mode == 2 ? NULL : a.packed, *pb = mode == 2 ? NULL : b.packed;
            uint8_t *sa = mode == 2 ? NULL : a.scales, *sb = mode == 2 ? NULL : b.scales;
            float *ya = mode == 1 ? NULL : a.y, *yb = mode == 1 ? NULL : b.y;
            cr_assert_eq(fv(x, n, pa, sa, mode == 2 ? NULL : &a.ts, ya), 0, "%s: %s", v->name,
                         rb_error_detail());
            cr_assert_eq(fr(x, n, pb, sb, mode == 2 ? NULL : &b.ts, yb), 0);
        }
        outs_same(&a, &b, n, 16, "nvfp4", v->name, seed, kind);
        if (mode == 0 && dv) {
            memset(a.y, 0xC3, (n + SLACK) * sizeof(float));
            memset(b.y, 0xC3, (n + SLACK) * sizeof(float));
            cr_assert_eq(dv(b.packed, b.scales, b.ts, n, a.y), 0);
            cr_assert_eq(dr(b.packed, b.scales, b.ts, n, b.y), 0);
            outs_same(&a, &b, n, 16, "nvfp4 decode", v->name, seed, kind);
        }
        outs_free(&a), outs_free(&b);
    }
}

/* NVFP4 ties need the block's multiplier s_enc / s_b: take it from the reference's encoding and
 * move elements below the block amax to fp32 values whose product with it is exactly a tie
 * (which keeps every amax, so the scales stay). */
static void nv_plant_ties(float *x, size_t n, uint64_t seed) {
    uint8_t *p = malloc(n / 2 + 1), *sc = malloc(n / 16 + 1);
    float ts;
    const rb_op *qop = &rb_op_nvfp4_quant_f32;
    cr_assert_eq(((rb_nvfp4_quant_fn) qop->variants[qop->count - 1].fn)(x, n, p, sc, &ts, NULL), 0);
    uint32_t *r = malloc((n + 1) * sizeof *r);
    rb_rng_bits(seed, 77, 0, n, r);
    for (size_t b0 = 0; b0 < n; b0 += 16) {
        size_t len = n - b0 < 16 ? n - b0 : 16;
        float s_b = rb_fp8_e4m3_decode(sc[b0 / 16]), amax = 0;
        if (!(s_b > 0)) continue;
        float mul = ts / s_b;
        for (size_t i = b0; i < b0 + len; i++) amax = fmaxf(amax, fabsf(x[i]));
        for (size_t i = b0; i < b0 + len; i++) {
            if (fabsf(x[i]) == amax || r[i] % 4 == 0) continue;
            float t = e2m1_ties[r[i] % 7], c = t / mul;
            float cands[3] = {c, nextafterf(c, 0), nextafterf(c, INFINITY)};
            for (int k = 0; k < 3; k++)
                if (cands[k] * mul == t && cands[k] < amax) {
                    x[i] = rnd_sign(r[i] >> 4, cands[k]);
                    break;
                }
        }
    }
    free(p), free(sc), free(r);
}

Test(fp4_variants, bit_identical_to_reference) {
    uint64_t seed = rbt_seed();
    cr_log_info("variants: mxfp4 %d, nvfp4 %d (seed %llu)", variants_tested(&rb_op_mxfp4_quant_f32),
                variants_tested(&rb_op_nvfp4_quant_f32), (unsigned long long) seed);
    for (size_t ni = 0; ni < sizeof variant_ns / sizeof variant_ns[0]; ni++)
        for (int kind = 0; kind < K_NKINDS; kind++) {
            size_t n = variant_ns[ni];
            if (n > 4097 && kind != K_TIES && kind != K_WIDE && kind != K_GAUSS) continue;
            /* One float past the start, so that no variant can count on alignment. */
            float *buf = malloc((n + 2) * sizeof *buf), *x = buf + 1;
            fill_kind(x, n, kind, seed, ni * 64 + (uint64_t) kind);
            for (size_t vi = 0; vi + 1 < rb_op_mxfp4_quant_f32.count; vi++) {
                const rb_variant *v = &rb_op_mxfp4_quant_f32.variants[vi];
                if (rb_variant_enabled(v)) mx_compare(v, x, n, seed, kind);
            }
            int plant = n >= 16 && kind != K_ZEROS ? 1 : 0; /* a second pass with NVFP4 ties */
            for (int planted = 0; planted <= plant; planted++) {
                if (planted) nv_plant_ties(x, n, seed ^ ni);
                for (size_t vi = 0; vi + 1 < rb_op_nvfp4_quant_f32.count; vi++) {
                    const rb_variant *v = &rb_op_nvfp4_quant_f32.variants[vi];
                    if (rb_variant_enabled(v)) nv_compare(v, x, n, seed, kind + 100 * planted);
                }
            }
            free(buf);
        }
}

/* Decoders on arbitrary bytes: every code, every MXFP4 scale code but NaN (254 overflows 6 * 2^127
 * to Inf), every E4M3 scale code but NaN (negative ones included), odd tensor scales. */
Test(fp4_variants, decode_arbitrary_bytes) {
    uint64_t seed = rbt_seed();
    const size_t ns[] = {1, 15, 16, 17, 31, 32, 33, 4097};
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        size_t n = ns[ni], nbytes = n / 2 + 1;
        uint32_t *r = malloc((n + 4) * sizeof *r);
        rb_rng_bits(seed, 500 + ni, 0, n + 4, r);
        uint8_t *p = malloc(nbytes), *smx = malloc(n / 32 + 1), *snv = malloc(n / 16 + 1);
        for (size_t i = 0; i < nbytes; i++) p[i] = (uint8_t) r[i];
        for (size_t i = 0; i < n / 32 + 1; i++) smx[i] = (uint8_t) (r[i] >> 8) % 255;
        for (size_t i = 0; i < n / 16 + 1; i++) {
            snv[i] = (uint8_t) (r[i] >> 16);
            if ((snv[i] & 0x7F) == 0x7F) snv[i] ^= 1;
        }
        const float tss[] = {1.0f, 448.0f, 0x1p-100f, 3.7e37f, FLT_MAX, 0x1p-149f};
        outs a, b;
        for (size_t d = 0; d + 1 < rb_op_mxfp4_dequant_f32.count; d++) {
            const rb_variant *v = &rb_op_mxfp4_dequant_f32.variants[d];
            if (!rb_variant_enabled(v)) continue;
            outs_init(&a, n, 32), outs_init(&b, n, 32);
            cr_assert_eq(((rb_mxfp4_dequant_fn) v->fn)(p, smx, n, a.y), 0);
            cr_assert_eq(REF_FN(rb_op_mxfp4_dequant_f32, rb_mxfp4_dequant_fn)(p, smx, n, b.y), 0);
            outs_same(&a, &b, n, 32, "mxfp4 decode bytes", v->name, seed, 0);
            outs_free(&a), outs_free(&b);
        }
        for (size_t d = 0; d + 1 < rb_op_nvfp4_dequant_f32.count; d++) {
            const rb_variant *v = &rb_op_nvfp4_dequant_f32.variants[d];
            if (!rb_variant_enabled(v)) continue;
            for (size_t t = 0; t < sizeof tss / sizeof tss[0]; t++) {
                outs_init(&a, n, 16), outs_init(&b, n, 16);
                cr_assert_eq(((rb_nvfp4_dequant_fn) v->fn)(p, snv, tss[t], n, a.y), 0);
                cr_assert_eq(
                    REF_FN(rb_op_nvfp4_dequant_f32, rb_nvfp4_dequant_fn)(p, snv, tss[t], n, b.y),
                    0);
                outs_same(&a, &b, n, 16, "nvfp4 decode bytes", v->name, seed, (int) t);
                outs_free(&a), outs_free(&b);
            }
        }
        free(r), free(p), free(smx), free(snv);
    }
}

/* NaN or Inf anywhere: every variant fails like the reference, with its message, and writes
 * nothing; a NaN scale: the same error after the same partial output. */
Test(fp4_variants, errors_like_reference) {
    uint64_t seed = rbt_seed();
    const size_t ns[] = {1, 17, 33, 4097};
    const float bad[] = {NAN, INFINITY, -INFINITY};
    char msg[256];
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        size_t n = ns[ni];
        float *x = rbt_normal_f32(n, seed, 900 + ni);
        uint32_t pos[2];
        rb_rng_bits(seed, 950 + ni, 0, 2, pos);
        x[pos[0] % n] = bad[ni % 3];
        for (int nv = 0; nv <= 1; nv++) {
            const rb_op *q = nv ? &rb_op_nvfp4_quant_f32 : &rb_op_mxfp4_quant_f32;
            size_t blk = nv ? 16 : 32;
            outs b;
            outs_init(&b, n, blk);
            int rc_ref =
                nv ? REF_FN(*q, rb_nvfp4_quant_fn)(x, n, b.packed, b.scales, &b.ts, b.y)
                   : REF_FN(*q, rb_mxfp4_quant_fn)(x, n, RB_MX_CEIL, b.packed, b.scales, b.y);
            cr_assert_eq(rc_ref, RB_ENUMERIC);
            snprintf(msg, sizeof msg, "%s", rb_error_detail());
            cr_assert(strstr(msg, "element"), "%s", msg);
            for (size_t vi = 0; vi + 1 < q->count; vi++) {
                const rb_variant *v = &q->variants[vi];
                if (!rb_variant_enabled(v)) continue;
                outs a;
                outs_init(&a, n, blk);
                int rc =
                    nv ? ((rb_nvfp4_quant_fn) v->fn)(x, n, a.packed, a.scales, &a.ts, a.y)
                       : ((rb_mxfp4_quant_fn) v->fn)(x, n, RB_MX_CEIL, a.packed, a.scales, a.y);
                cr_assert_eq(rc, RB_ENUMERIC, "%s", v->name);
                cr_assert_str_eq(rb_error_detail(), msg, "%s", v->name);
                outs_same(&a, &b, n, blk, "error", v->name, seed, 0);
                outs_free(&a);
            }
            outs_free(&b);
        }
        /* A NaN scale code in the block of element pos[1]. */
        uint8_t *p = calloc(n / 2 + 1, 1), smx[200], snv[300];
        memset(smx, 127, sizeof smx);
        memset(snv, 0x38, sizeof snv);
        smx[pos[1] % n / 32] = 0xFF;
        snv[pos[1] % n / 16] = (pos[1] & 1) ? 0x7F : 0xFF;
        for (int nv = 0; nv <= 1; nv++) {
            const rb_op *d = nv ? &rb_op_nvfp4_dequant_f32 : &rb_op_mxfp4_dequant_f32;
            size_t blk = nv ? 16 : 32;
            outs b;
            outs_init(&b, n, blk);
            int rc_ref = nv ? REF_FN(*d, rb_nvfp4_dequant_fn)(p, snv, 2.0f, n, b.y)
                            : REF_FN(*d, rb_mxfp4_dequant_fn)(p, smx, n, b.y);
            cr_assert_eq(rc_ref, RB_ENUMERIC);
            snprintf(msg, sizeof msg, "%s", rb_error_detail());
            for (size_t vi = 0; vi + 1 < d->count; vi++) {
                const rb_variant *v = &d->variants[vi];
                if (!rb_variant_enabled(v)) continue;
                outs a;
                outs_init(&a, n, blk);
                int rc = nv ? ((rb_nvfp4_dequant_fn) v->fn)(p, snv, 2.0f, n, a.y)
                            : ((rb_mxfp4_dequant_fn) v->fn)(p, smx, n, a.y);
                cr_assert_eq(rc, RB_ENUMERIC, "%s", v->name);
                cr_assert_str_eq(rb_error_detail(), msg, "%s", v->name);
                outs_same(&a, &b, n, blk, "NaN scale", v->name, seed, 0);
                outs_free(&a);
            }
            outs_free(&b);
        }
        free(p);
        free(x);
    }
}
