/* Integer quantizers and bit packing: hand vectors, error bounds, clipping, stochastic rounding,
 * packing layouts, and every optimized variant bit-identical to the reference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static rb_quant_spec spec_of(int bits, int asym, rb_quant_gran gran, size_t group) {
    rb_quant_spec s;
    memset(&s, 0, sizeof s);
    s.bits = bits, s.asym = asym, s.gran = gran, s.group = group;
    return s;
}

Test(quant, hand_asym_int4_1234) {
    const float x[4] = {1, 2, 3, 4};
    rb_quant_spec s = spec_of(4, 1, RB_QUANT_PER_ROW, 0);
    uint8_t q[4];
    float sc, z, y[4];
    cr_assert_eq(rb_quant_f32(&s, x, 1, 4, 4, q, &sc, &z), 0);
    cr_assert_eq(sc, 3.0f / 15.0f);
    cr_assert(fabsf(sc - 0.2f) < 1e-7f);
    cr_assert_eq(z, -5.0f);
    const uint8_t want[4] = {0, 5, 10, 15};
    cr_assert_arr_eq(q, want, 4);
    cr_assert_eq(rb_dequant_f32(&s, q, 1, 4, &sc, &z, y, 4), 0);
    for (int i = 0; i < 4; i++) cr_assert(fabsf(y[i] - x[i]) < 1e-6f, "y[%d] = %g", i, y[i]);
    /* Forcing 0 into the range (QuaRot per-token) gives [0, 4]: scale 4/15, zero 0. */
    s.zero_in_range = 1;
    cr_assert_eq(rb_quant_f32(&s, x, 1, 4, 4, q, &sc, &z), 0);
    cr_assert_eq(sc, 4.0f / 15.0f);
    cr_assert_eq(z, 0.0f);
    /* fp32(4/15) is rounded up, so 2 / s = 7.4999995 rounds to 7, not to the tie 8. */
    const uint8_t want0[4] = {4, 7, 11, 15};
    cr_assert_arr_eq(q, want0, 4);
}

Test(quant, hand_sym_int4_and_clip) {
    float x[15];
    for (int i = 0; i < 15; i++) x[i] = (float) (i - 7);
    rb_quant_spec s = spec_of(4, 0, RB_QUANT_PER_TENSOR, 0);
    uint8_t q[15];
    float sc;
    cr_assert_eq(rb_quant_f32(&s, x, 1, 15, 15, q, &sc, NULL), 0);
    cr_assert_eq(sc, 1.0f);
    for (int i = 0; i < 15; i++) cr_assert_eq((int8_t) q[i], i - 7);
    /* clip 0.5: scale 0.5, codes saturate at -8 and 7 (the grid is asymmetric). */
    s.clip = 0.5f;
    float y[15];
    cr_assert_eq(rb_quant_f32(&s, x, 1, 15, 15, q, &sc, NULL), 0);
    cr_assert_eq(sc, 0.5f);
    cr_assert_eq((int8_t) q[0], -8);
    cr_assert_eq((int8_t) q[14], 7);
    cr_assert_eq((int8_t) q[9], 4); /* x = 2 -> 4 */
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, 15, 15, y, 15, &sc, NULL), 0);
    cr_assert_eq(y[0], -4.0f);
    cr_assert_eq(y[14], 3.5f);
    cr_assert_eq(y[8], 1.0f);
    /* x = -8 with amax 8: scale 8/7, -8 / (8/7) = -7; -8 is never produced without clipping. */
    x[0] = -8;
    s.clip = 0;
    cr_assert_eq(rb_quant_f32(&s, x, 1, 15, 15, q, &sc, NULL), 0);
    cr_assert_eq(sc, 8.0f / 7.0f);
    cr_assert_eq((int8_t) q[0], -7);
}

Test(quant, hand_per_group_and_per_col) {
    /* 2 x 6, groups of 4 along the row: the second group of each row has 2 elements. */
    const float x[12] = {1, -2, 3, -7, 7, 14, /**/ 0, 0, 0, 0, -7, 0.5f};
    rb_quant_spec s = spec_of(4, 0, RB_QUANT_PER_GROUP, 4);
    cr_assert_eq(rb_quant_nparams(&s, 2, 6), 4);
    uint8_t q[12];
    float sc[4];
    cr_assert_eq(rb_quant_f32(&s, x, 2, 6, 6, q, sc, NULL), 0);
    cr_assert_eq(sc[0], 1.0f);
    cr_assert_eq(sc[1], 2.0f);
    cr_assert_eq(sc[2], 1.0f); /* all-zero group */
    cr_assert_eq(sc[3], 1.0f);
    cr_assert_eq((int8_t) q[3], -7);
    cr_assert_eq((int8_t) q[4], 4); /* 3.5 -> 4 (even) */
    cr_assert_eq((int8_t) q[5], 7);
    cr_assert_eq(q[6], 0);
    cr_assert_eq((int8_t) q[10], -7);
    cr_assert_eq((int8_t) q[11], 0); /* 0.5 -> 0 (even) */
    /* Per column, asymmetric 2-bit: column c has range [min, max] over the two rows. */
    rb_quant_spec c = spec_of(2, 1, RB_QUANT_PER_COL, 0);
    float scc[6], zc[6];
    cr_assert_eq(rb_quant_f32(&c, x, 2, 6, 6, q, scc, zc), 0);
    cr_assert_eq(scc[0], 1.0f / 3.0f);
    cr_assert_eq(zc[0], 0.0f);
    cr_assert_eq(q[0], 3);
    cr_assert_eq(q[6], 0);
    cr_assert_eq(scc[3], 7.0f / 3.0f);
    cr_assert_eq(zc[3], 3.0f);
    cr_assert_eq(q[3], 0);
    cr_assert_eq(q[9], 3);
}

Test(quant, all_zero_and_constant_groups) {
    float x[8] = {0}, y[8], sc, z;
    uint8_t q[8];
    rb_quant_spec s = spec_of(4, 1, RB_QUANT_PER_ROW, 0);
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, &sc, &z), 0);
    cr_assert_eq(sc, 2.0f / 15.0f); /* QuaRot: the range becomes [-1, 1] */
    cr_assert_eq(z, 7.0f);          /* 1 / fp32(2/15) = 7.4999995 -> 7 */
    cr_assert_eq(q[0], 7);
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, 8, 8, y, 8, &sc, &z), 0);
    for (int i = 0; i < 8; i++) cr_assert_eq(y[i], 0.0f);
    s.asym = 0;
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, &sc, NULL), 0);
    cr_assert_eq(sc, 1.0f);
    /* A constant nonzero group is widened by max(1, |c|) each side and reconstructed to s/2. */
    for (int i = 0; i < 8; i++) x[i] = 5.0f;
    s.asym = 1;
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, 8, 8, y, 8, &sc, &z), 0);
    cr_assert_eq(sc, 10.0f / 15.0f);
    for (int i = 0; i < 8; i++) cr_assert(fabsf(y[i] - 5.0f) <= sc / 2 * 1.0001f);
}

/* |fake_quant(x) - x| <= s/2 for every bits, mode and granularity when nothing is clipped. */
Test(quant, error_bounded_by_half_scale) {
    uint64_t seed = rbt_seed();
    const size_t rows = 5, cols = 77, ld = 80;
    float *x = rbt_normal_f32(rows * ld, seed, 1);
    float *y = malloc(rows * ld * sizeof *y);
    float sc[rows * cols], zr[rows * cols];
    for (int bits = 1; bits <= 8; bits++)
        for (int asym = 0; asym <= 1; asym++)
            for (int g = 0; g <= 3; g++)
                for (int zin = 0; zin <= 1; zin++) {
                    if (!asym && bits == 1) continue;
                    rb_quant_spec s = spec_of(bits, asym, (rb_quant_gran) g, 16);
                    s.zero_in_range = zin;
                    cr_assert_eq(rb_fake_quant_f32(&s, x, rows, cols, ld, y, ld, sc, zr), 0);
                    for (size_t r = 0; r < rows; r++)
                        for (size_t c = 0; c < cols; c++) {
                            size_t p = g == 0 ? 0 : g == 1 ? r : g == 2 ? c : r * 5 + c / 16;
                            float e = fabsf(y[r * ld + c] - x[r * ld + c]);
                            cr_assert(e <= sc[p] * 0.5f * (1 + 1e-5f) + 1e-6f,
                                      "seed %llu bits %d asym %d gran %d: err %g > s/2 = %g",
                                      (unsigned long long) seed, bits, asym, g, e, sc[p] / 2);
                        }
                }
    free(x);
    free(y);
}

Test(quant, codes_match_dequant_and_fake_quant) {
    uint64_t seed = rbt_seed();
    const size_t rows = 3, cols = 50;
    float *x = rbt_normal_f32(rows * cols, seed, 2);
    float y1[rows * cols], y2[rows * cols], sc[rows * cols], zr[rows * cols];
    uint8_t q[rows * cols];
    for (int g = 0; g <= 3; g++)
        for (int asym = 0; asym <= 1; asym++) {
            rb_quant_spec s = spec_of(3, asym, (rb_quant_gran) g, 8);
            s.clip = 0.8f;
            cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, zr), 0);
            cr_assert_eq(rb_dequant_f32(&s, q, rows, cols, sc, zr, y1, cols), 0);
            cr_assert_eq(rb_fake_quant_f32(&s, x, rows, cols, cols, y2, cols, sc, zr), 0);
            cr_assert(memcmp(y1, y2, sizeof y1) == 0, "seed %llu gran %d asym %d",
                      (unsigned long long) seed, g, asym);
            for (size_t i = 0; i < rows * cols; i++) {
                int v = asym ? q[i] : (int8_t) q[i];
                cr_assert(asym ? (v >= 0 && v <= 7) : (v >= -4 && v <= 3));
            }
        }
    /* In place. */
    rb_quant_spec s = spec_of(4, 1, RB_QUANT_PER_ROW, 0);
    cr_assert_eq(rb_fake_quant_f32(&s, x, rows, cols, cols, y1, cols, sc, zr), 0);
    cr_assert_eq(rb_fake_quant_f32(&s, x, rows, cols, cols, x, cols, sc, zr), 0);
    cr_assert(memcmp(x, y1, sizeof y1) == 0);
    free(x);
}

Test(quant, stochastic_rounding_unbiased_and_deterministic) {
    uint64_t seed = rbt_seed();
    enum { N = 16, SEEDS = 3000 };
    float x[N], y[N], y2[N], sc;
    rb_rng_uniform_f32(seed, 7, 0, N, x);
    for (int i = 0; i < N; i++) x[i] = x[i] * 14 - 7;
    x[0] = 7; /* scale 1 at INT4 symmetric */
    double mean[N] = {0};
    rb_quant_spec s = spec_of(4, 0, RB_QUANT_PER_TENSOR, 0);
    s.round = RB_ROUND_STOCHASTIC;
    for (int k = 0; k < SEEDS; k++) {
        s.seed = seed + (uint64_t) k;
        cr_assert_eq(rb_fake_quant_f32(&s, x, 1, N, N, y, N, &sc, NULL), 0);
        cr_assert_eq(sc, 1.0f);
        for (int i = 0; i < N; i++) {
            cr_assert(y[i] == floorf(x[i]) || y[i] == ceilf(x[i]));
            mean[i] += y[i] / SEEDS;
        }
    }
    /* Each draw has variance f(1-f) <= 1/4: the mean is within 6 standard errors. */
    for (int i = 0; i < N; i++)
        cr_assert(fabs(mean[i] - x[i]) <= 6 * 0.5 / sqrt(SEEDS), "seed %llu x %g mean %g",
                  (unsigned long long) seed, x[i], mean[i]);
    s.seed = seed;
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, N, N, y, N, &sc, NULL), 0);
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, N, N, y2, N, &sc, NULL), 0);
    cr_assert(memcmp(y, y2, sizeof y) == 0);
    /* The draw depends on the element index r * cols + c only, not on the row split. */
    float xx[2 * N], yy[2 * N], sc2[2];
    memcpy(xx, x, sizeof x);
    memcpy(xx + N, x, sizeof x);
    s.gran = RB_QUANT_PER_ROW;
    cr_assert_eq(rb_fake_quant_f32(&s, xx, 2, N, N, yy, N, sc2, NULL), 0);
    cr_assert(memcmp(yy, y, sizeof y) == 0);
    float u[N];
    rb_rng_uniform_f32(seed, 0, N, N, u);
    for (int i = 0; i < N; i++) {
        float f = floorf(x[i]);
        cr_assert_eq(yy[N + i], f + (u[i] < x[i] - f ? 1.0f : 0.0f));
    }
}

Test(quant, rejects_nan_inf_and_bad_specs) {
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sc[8], z[8];
    uint8_t q[8];
    rb_quant_spec s = spec_of(4, 1, RB_QUANT_PER_ROW, 0);
    x[5] = NAN;
    cr_assert_eq(rb_quant_f32(&s, x, 2, 4, 4, q, sc, z), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "element 5 (row 1, column 1)"), "%s", rb_error_detail());
    x[5] = -INFINITY;
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, 8, 8, x, 8, sc, z), RB_ENUMERIC);
    s.gran = RB_QUANT_PER_COL;
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, sc, z), RB_ENUMERIC);
    x[5] = 0;
    s = spec_of(1, 0, RB_QUANT_PER_ROW, 0);
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, sc, z), RB_EINVAL);
    s = spec_of(9, 1, RB_QUANT_PER_ROW, 0);
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, sc, z), RB_EINVAL);
    s = spec_of(4, 1, RB_QUANT_PER_GROUP, 0);
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, sc, z), RB_EINVAL);
    s = spec_of(4, 1, RB_QUANT_PER_ROW, 0);
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, sc, NULL), RB_EINVAL); /* asym needs zeros */
    s.bits = 8;
    cr_assert_eq(rb_quant_pack4_f32(&s, x, 1, 8, 8, q, 4, sc, z), RB_EINVAL);
    /* asym 1-bit is fine: codes 0/1 */
    s.bits = 1;
    cr_assert_eq(rb_quant_f32(&s, x, 1, 8, 8, q, sc, z), 0);
    cr_assert_eq(q[0], 0);
    cr_assert_eq(q[7], 1);
}

Test(pack, layouts) {
    const uint8_t c4[3] = {1, 2, 3}, c2[5] = {1, 2, 3, 0, 1}, c1[9] = {1, 0, 1, 1, 0, 0, 0, 0, 1};
    const uint8_t c3[3] = {7, 0, 5};
    uint8_t out[4];
    cr_assert_eq(rb_pack_bits(c4, 3, 4, out), 0);
    cr_assert_eq(out[0], 0x21);
    cr_assert_eq(out[1], 0x03);
    cr_assert_eq(rb_pack_bits(c2, 5, 2, out), 0);
    cr_assert_eq(out[0], 0x39);
    cr_assert_eq(out[1], 0x01);
    cr_assert_eq(rb_pack_bits(c1, 9, 1, out), 0);
    cr_assert_eq(out[0], 0x0D);
    cr_assert_eq(out[1], 0x01);
    cr_assert_eq(rb_pack_bits(c3, 3, 3, out), 0);
    cr_assert_eq(out[0], 0x47);
    cr_assert_eq(out[1], 0x01);
    /* Symmetric INT4 -1 and -8 pack as two's complement nibbles (QuaRot pack_i4). */
    const uint8_t s4[2] = {(uint8_t) -1, (uint8_t) -8};
    cr_assert_eq(rb_pack_bits(s4, 2, 4, out), 0);
    cr_assert_eq(out[0], 0x8F);
    uint8_t back[2];
    cr_assert_eq(rb_unpack_bits(out, 2, 4, back), 0);
    cr_assert_eq(back[0], 0xF);
    rb_sign_extend(back, 2, 4);
    cr_assert_eq((int8_t) back[0], -1);
    cr_assert_eq((int8_t) back[1], -8);
    cr_assert_eq(rb_pack_bits(c4, 3, 0, out), RB_EINVAL);
    cr_assert_eq(rb_pack_bytes(9, 1), 2);
    cr_assert_eq(rb_pack_bytes(3, 3), 2);
}

Test(pack, round_trip_every_width_and_length) {
    uint64_t seed = rbt_seed();
    uint32_t r[300];
    uint8_t codes[300], packed[300 + 1], back[300];
    for (int bits = 1; bits <= 8; bits++)
        for (size_t n = 0; n < 300; n += n < 40 ? 1 : 37) {
            rb_rng_bits(seed, (uint64_t) bits, 0, n, r);
            for (size_t i = 0; i < n; i++) codes[i] = (uint8_t) (r[i] & ((1u << bits) - 1));
            size_t nb = rb_pack_bytes(n, bits);
            packed[nb] = 0xAA; /* a guard byte that must stay untouched */
            cr_assert_eq(rb_pack_bits(codes, n, bits, packed), 0);
            cr_assert_eq(packed[nb], 0xAA);
            if (n * bits % 8) cr_assert_eq(packed[nb - 1] >> (n * bits % 8), 0, "padding bits");
            cr_assert_eq(rb_unpack_bits(packed, n, bits, back), 0);
            cr_assert(memcmp(codes, back, n) == 0, "seed %llu bits %d n %zu",
                      (unsigned long long) seed, bits, n);
            if (bits == 8) cr_assert(memcmp(codes, packed, n) == 0);
        }
}

Test(quant, pack4_matches_codes_then_pack) {
    uint64_t seed = rbt_seed();
    const size_t rows = 3, cols = 37, ldp = 20;
    float *x = rbt_normal_f32(rows * cols, seed, 3);
    uint8_t q[rows * cols], p1[rows * ldp], p2[rows * ldp];
    float sc[rows * cols], zr[rows * cols];
    for (int g = 0; g <= 3; g++)
        for (int asym = 0; asym <= 1; asym++) {
            rb_quant_spec s = spec_of(4, asym, (rb_quant_gran) g, 8);
            memset(p1, 0, sizeof p1);
            memset(p2, 0, sizeof p2);
            cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, zr), 0);
            for (size_t r = 0; r < rows; r++)
                cr_assert_eq(rb_pack_bits(q + r * cols, cols, 4, p1 + r * ldp), 0);
            cr_assert_eq(rb_quant_pack4_f32(&s, x, rows, cols, cols, p2, ldp, sc, zr), 0);
            cr_assert(memcmp(p1, p2, sizeof p1) == 0, "seed %llu gran %d asym %d",
                      (unsigned long long) seed, g, asym);
        }
    free(x);
}

/* Every fast variant against the reference, bit for bit, at and around the vector widths. */
static void fill_specials(float *x, size_t rows, size_t ld, size_t cols) {
    /* Row 0 all zero (with a -0), row 1 constant, a few exact ties x = (k + 0.5) s. */
    if (rows > 2) {
        for (size_t c = 0; c < cols; c++) x[c] = 0.0f, x[ld + c] = 3.25f;
        x[cols / 2] = -0.0f;
    }
    if (rows > 3)
        for (size_t c = 0; c < cols; c++) x[2 * ld + c] = (float) ((int) (c % 16) - 8) + 0.5f;
}

Test(quant, variants_bit_identical_to_reference) {
    uint64_t seed = rbt_seed();
    const size_t ns[] = {1, 15, 16, 17, 31, 32, 33, 127, 128, 129, 4096};
    const size_t rowsv[] = {1, 5};
    const size_t groups[] = {0, 32, 64, 128, 16, 7};
    const int bitsv[] = {2, 3, 4, 8};
    const rb_op *op = &rb_op_quant_rows_f32;
    int tested = 0;
    for (size_t vi = 0; vi < op->count; vi++) {
        const rb_variant *v = &op->variants[vi];
        if (strcmp(v->name, "ref") == 0 || !rb_variant_enabled(v)) continue;
        tested++;
        rb_quant_rows_fn fn = (rb_quant_rows_fn) v->fn;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ri = 0; ri < 2; ri++) {
                size_t n = ns[ni], rows = rowsv[ri], ld = n + (ri ? 3 : 0);
                float *x = rbt_normal_f32(rows * ld + 1, seed, n * 8 + ri);
                float *xo = x + (ri ? 1 : 0); /* unaligned start */
                fill_specials(xo, rows, ld, n);
                size_t maxp = rows * n + 1;
                float *s1 = malloc(maxp * 4), *s2 = malloc(maxp * 4), *z1 = malloc(maxp * 4),
                      *z2 = malloc(maxp * 4);
                size_t ob = rows * ld * 4 + 64;
                uint8_t *o1 = malloc(ob), *o2 = malloc(ob);
                for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
                    for (size_t bi = 0; bi < 4; bi++)
                        for (int asym = 0; asym <= 1; asym++)
                            for (int mode = 0; mode <= 2; mode++)
                                for (int variant = 0; variant < 2; variant++) {
                                    int bits = bitsv[bi];
                                    if (mode == RB_QOUT_PACK4 && bits > 4) continue;
                                    size_t g = groups[gi] ? groups[gi] : n;
                                    rb_quant_spec s = spec_of(bits, asym, RB_QUANT_PER_GROUP, g);
                                    s.zero_in_range = variant;
                                    s.clip = variant ? 0.9f : 0;
                                    size_t ldo = mode == RB_QOUT_PACK4   ? (n + 1) / 2 + 1
                                                 : mode == RB_QOUT_CODES ? n + 2
                                                                         : ld;
                                    memset(o1, 0x5A, ob);
                                    memset(o2, 0x5A, ob);
                                    memset(s1, 0, maxp * 4);
                                    memset(s2, 0, maxp * 4);
                                    memset(z1, 0, maxp * 4);
                                    memset(z2, 0, maxp * 4);
                                    int rc1 = rb_quant_rows_f32_ref(&s, xo, rows, n, ld, g, o1, ldo,
                                                                    (rb_quant_out) mode, s1, z1);
                                    int rc2 = fn(&s, xo, rows, n, ld, g, o2, ldo,
                                                 (rb_quant_out) mode, s2, z2);
                                    cr_assert_eq(rc1, 0);
                                    cr_assert_eq(rc2, 0, "%s declined/failed n=%zu", v->name, n);
                                    size_t np = rows * ((n + g - 1) / g);
                                    cr_assert(memcmp(s1, s2, np * 4) == 0 &&
                                                  memcmp(z1, z2, np * 4) == 0 &&
                                                  memcmp(o1, o2, ob) == 0,
                                              "%s differs: seed %llu n %zu rows %zu g %zu bits %d "
                                              "asym %d mode %d var %d",
                                              v->name, (unsigned long long) seed, n, rows, g, bits,
                                              asym, mode, variant);
                                }
                free(s1), free(s2), free(z1), free(z2), free(o1), free(o2), free(x);
            }
        /* A NaN reaches the reference's message. */
        float bad[40] = {0};
        bad[33] = NAN;
        float s1[2], z1[2];
        uint8_t o[40];
        rb_quant_spec s = spec_of(4, 1, RB_QUANT_PER_GROUP, 40);
        cr_assert_eq(fn(&s, bad, 1, 40, 40, 40, o, 40, RB_QOUT_CODES, s1, z1), RB_ENUMERIC);
        cr_assert(strstr(rb_error_detail(), "element 33"), "%s", rb_error_detail());
        /* Stochastic rounding is the reference's alone. */
        s.round = RB_ROUND_STOCHASTIC;
        cr_assert_eq(fn(&s, bad, 1, 32, 40, 32, o, 40, RB_QOUT_CODES, s1, z1), RB_EDECLINE);
    }
    cr_log_info("quant_rows_f32: %d fast variants tested", tested);
}

Test(quant, dispatch_records_variant) {
    float x[64], y[64], sc[1];
    rb_rng_normal_f32(1, 2, 0, 64, x);
    rb_quant_spec s = spec_of(4, 0, RB_QUANT_PER_ROW, 0);
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, 64, 64, y, 64, sc, NULL), 0);
    const char *name = rb_kernel_last(&rb_op_quant_rows_f32);
    cr_assert(name != NULL);
    const rb_op *op = &rb_op_quant_rows_f32;
    size_t first = 0;
    while (!rb_variant_enabled(&op->variants[first])) first++;
    cr_assert_str_eq(name, op->variants[first].name); /* the best variant this CPU runs */
    if (rb_kernels_isa() & RB_ISA_AVX2) cr_assert_str_neq(name, "ref");
    cr_assert_eq(rb_kernels_select("ref"), 0);
    cr_assert_eq(rb_fake_quant_f32(&s, x, 1, 64, 64, y, 64, sc, NULL), 0);
    cr_assert_str_eq(rb_kernel_last(&rb_op_quant_rows_f32), "ref");
    cr_assert_eq(rb_kernels_select("auto"), 0);
}
