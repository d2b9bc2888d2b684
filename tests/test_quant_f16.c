/* Quantizers with fp16-stored scales and zero points (rb_quant_spec.side_f16): every granularity,
 * both signs and roundings, bits 2..8 against a plain-C oracle; out-of-range parameters named by
 * row and group; fast variants, dispatch and the CUDA offload decline; fake quant and pack4 agree
 * with quant then dequant / pack. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/half.h"
#include "kernels/kernels.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

static size_t param_of(const rb_quant_spec *s, size_t r, size_t c, size_t cols) {
    switch (s->gran) {
    case RB_QUANT_PER_TENSOR:
        return 0;
    case RB_QUANT_PER_ROW:
        return r;
    case RB_QUANT_PER_COL:
        return c;
    case RB_QUANT_PER_GROUP:
        return r * ((cols + s->group - 1) / s->group) + c / s->group;
    }
    return 0;
}

/* The oracle: each pair from the fp32 rule (rb_quant_params with side_f16 off, checked against
 * hand values in test_quant.c), then the fp16 store written out here: range check, rounding, and
 * every code chosen against the rounded pair. Returns the first out-of-range parameter + 1, or
 * 0. y receives s16 * (code - z16). */
static size_t oracle(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols, size_t ld,
                     uint8_t *codes, float *sc, float *zr, float *y) {
    rb_quant_spec s32 = *spec;
    s32.side_f16 = 0;
    size_t np = rb_quant_nparams(spec, rows, cols);
    float *mn = malloc(np * sizeof *mn), *mx = malloc(np * sizeof *mx);
    for (size_t p = 0; p < np; p++) mn[p] = INFINITY, mx[p] = -INFINITY;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t p = param_of(spec, r, c, cols);
            mn[p] = fminf(mn[p], x[r * ld + c]);
            mx[p] = fmaxf(mx[p], x[r * ld + c]);
        }
    size_t bad = 0;
    for (size_t p = 0; p < np && !bad; p++) {
        float s, z;
        cr_assert_eq(rb_quant_params(&s32, mn[p], mx[p], &s, &z), 0);
        if (fabsf(s) > 65504.0f || fabsf(z) > 65504.0f) bad = p + 1;
        sc[p] = rb_f16_round(s);
        zr[p] = rb_f16_round(z);
    }
    free(mn);
    free(mx);
    if (bad) return bad;
    int b = spec->bits;
    float lo = spec->asym ? 0.0f : (float) -(1 << (b - 1));
    float hi = spec->asym ? (float) ((1 << b) - 1) : (float) ((1 << (b - 1)) - 1);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t p = param_of(spec, r, c, cols);
            float s = sc[p], z = spec->asym ? zr[p] : 0.0f, v = x[r * ld + c], q = 0.0f;
            if (s > 0) { /* s16 == 0: a scale below fp16's subnormals, the group decodes to 0 */
                float t = v / s;
                if (spec->round == RB_ROUND_STOCHASTIC) {
                    float u;
                    rb_rng_uniform_f32(spec->seed, spec->stream, r * cols + c, 1, &u);
                    q = floorf(t) + (u < t - floorf(t) ? 1.0f : 0.0f);
                } else {
                    q = rintf(t);
                }
                q += z;
            }
            q = q < lo ? lo : q > hi ? hi : q;
            codes[r * cols + c] = (uint8_t) (int) q;
            y[r * cols + c] = s * (q - z);
        }
    return 0;
}

/* Rows of five kinds (r % 5): normal at a random magnitude; far from zero, x = +-k / maxq plus a
 * ramp of width 1 in each group (|zero point| = k, 2100..30000 code units, where fp16 holds it to
 * a multiple of 2..16); tiny (scale rounds to fp16 0); small (scale an fp16 subnormal); exact
 * half-integers (ties). */
static void fill(float *x, size_t rows, size_t cols, size_t ld, size_t group, int bits,
                 uint64_t seed, uint64_t stream) {
    float maxq = (float) ((1 << bits) - 1);
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld, u[3];
        rb_rng_normal_f32(seed, stream, r * ld, cols, xr);
        rb_rng_uniform_f32(seed, stream + 1, 3 * r, 3, u);
        switch (r % 5) {
        case 0: {
            float m = powf(10.0f, 6.0f * u[0] - 3.0f);
            for (size_t c = 0; c < cols; c++) xr[c] *= m;
            break;
        }
        case 1: {
            float off = (2100.0f + 27900.0f * u[0]) / maxq * (u[1] < 0.5f ? -1.0f : 1.0f);
            for (size_t c = 0; c < cols; c++) {
                size_t j = c % group, len = cols - (c - j) < group ? cols - (c - j) : group;
                xr[c] = off + (len > 1 ? (float) j / (float) (len - 1) : 0.0f);
            }
            break;
        }
        case 2:
            for (size_t c = 0; c < cols; c++) xr[c] *= 1e-9f;
            break;
        case 3:
            for (size_t c = 0; c < cols; c++) xr[c] *= 1e-5f;
            break;
        default:
            for (size_t c = 0; c < cols; c++) xr[c] = (float) ((int) (c % 9) - 4) + 0.5f;
        }
    }
}

/* Whether the detail names parameter p of this spec ("row R, group G", "column C", "tensor"). */
static int names_param(const rb_quant_spec *s, size_t p, size_t cols, const char *d) {
    char want[64];
    size_t g = s->gran == RB_QUANT_PER_GROUP ? s->group : cols, ng = (cols + g - 1) / g;
    if (s->gran == RB_QUANT_PER_TENSOR)
        snprintf(want, sizeof want, "quant: tensor: ");
    else if (s->gran == RB_QUANT_PER_COL)
        snprintf(want, sizeof want, "quant: column %zu: ", p);
    else if (s->gran == RB_QUANT_PER_ROW)
        snprintf(want, sizeof want, "quant: row %zu, group 0: ", p);
    else
        snprintf(want, sizeof want, "quant: row %zu, group %zu: ", p / ng, p % ng);
    return strncmp(d, want, strlen(want)) == 0 && strstr(d, "65504") != NULL;
}

/* One spec on one input through quant, fake quant, dequant and pack4, against the oracle. */
static void check_one(const rb_quant_spec *s, const float *x, size_t rows, size_t cols, size_t ld,
                      uint64_t seed) {
    size_t np = rb_quant_nparams(s, rows, cols), n = rows * cols;
    uint8_t *c1 = malloc(n + 1), *c2 = malloc(n + 1), *p1 = malloc(n + 1), *p2 = malloc(n + 1);
    float *s1 = malloc(np * 4), *z1 = malloc(np * 4), *s2 = malloc(np * 4), *z2 = malloc(np * 4);
    float *y1 = malloc(n * 4 + 4), *y2 = malloc(n * 4 + 4), *y3 = malloc(n * 4 + 4);
    char ctx[160];
    snprintf(ctx, sizeof ctx,
             "seed %llu bits %d asym %d gran %d group %zu cols %zu clip %g zir %d "
             "round %d",
             (unsigned long long) seed, s->bits, s->asym, (int) s->gran, s->group, cols,
             (double) s->clip, s->zero_in_range, (int) s->round);
    size_t bad = oracle(s, x, rows, cols, ld, c1, s1, z1, y1);
    int rc = rb_quant_f32(s, x, rows, cols, ld, c2, s2, z2);
    if (bad) {
        cr_assert_eq(rc, RB_ENUMERIC, "%s: expected an fp16 range error", ctx);
        cr_assert(names_param(s, bad - 1, cols, rb_error_detail()), "%s: param %zu: %s", ctx,
                  bad - 1, rb_error_detail());
        cr_assert_eq(rb_fake_quant_f32(s, x, rows, cols, ld, y2, cols, s2, z2), RB_ENUMERIC);
        cr_assert(names_param(s, bad - 1, cols, rb_error_detail()), "%s", rb_error_detail());
    } else {
        cr_assert_eq(rc, 0, "%s: %s", ctx, rb_error_detail());
        cr_assert(memcmp(c1, c2, n) == 0, "%s: codes", ctx);
        cr_assert(memcmp(s1, s2, np * 4) == 0, "%s: scales", ctx);
        if (s->asym) cr_assert(memcmp(z1, z2, np * 4) == 0, "%s: zero points", ctx);
        for (size_t p = 0; p < np; p++)
            cr_assert_eq(rb_f16_round(s2[p]), s2[p], "%s: scale %zu is not an fp16 value", ctx, p);
        /* fake quant == oracle == dequant(quant), bit for bit (-0 included). */
        memset(s2, 0, np * 4);
        cr_assert_eq(rb_fake_quant_f32(s, x, rows, cols, ld, y2, cols, s2, z2), 0, "%s", ctx);
        cr_assert(memcmp(y1, y2, n * 4) == 0, "%s: fake quant", ctx);
        cr_assert(memcmp(s1, s2, np * 4) == 0, "%s: fake quant scales", ctx);
        cr_assert_eq(rb_dequant_f32(s, c2, rows, cols, s2, z2, y3, cols), 0);
        cr_assert(memcmp(y2, y3, n * 4) == 0, "%s: dequant(quant) != fake quant", ctx);
        if (s->bits <= 4) {
            size_t ldp = (cols + 1) / 2;
            memset(p1, 0, n + 1);
            for (size_t r = 0; r < rows; r++)
                cr_assert_eq(rb_pack_bits(c1 + r * cols, cols, 4, p1 + r * ldp), 0);
            cr_assert_eq(rb_quant_pack4_f32(s, x, rows, cols, ld, p2, ldp, s2, z2), 0);
            cr_assert(memcmp(p1, p2, rows * ldp) == 0, "%s: pack4", ctx);
        }
    }
    free(c1), free(c2), free(p1), free(p2), free(s1), free(z1), free(s2), free(z2);
    free(y1), free(y2), free(y3);
}

static rb_quant_spec f16_spec(int bits, int asym, rb_quant_gran gran, size_t group) {
    rb_quant_spec s;
    memset(&s, 0, sizeof s);
    s.bits = bits, s.asym = asym, s.gran = gran, s.group = group, s.side_f16 = 1;
    return s;
}

Test(quant_f16, matches_oracle_every_granularity) {
    uint64_t seed = rbt_seed();
    const size_t colsv[] = {1, 5, 33, 128}, groups[] = {1, 3, 8, 32};
    const size_t rows = 10;
    for (size_t ci = 0; ci < sizeof colsv / sizeof colsv[0]; ci++)
        for (int bits = 2; bits <= 8; bits++) {
            size_t cols = colsv[ci], ld = cols + (ci % 2); /* odd strides too */
            for (int asym = 0; asym <= 1; asym++)
                for (size_t gi = 0; gi < 3 + sizeof groups / sizeof groups[0]; gi++) {
                    /* per-row, per-tensor, per-column, then the groups */
                    rb_quant_gran gran = gi == 0   ? RB_QUANT_PER_ROW
                                         : gi == 1 ? RB_QUANT_PER_TENSOR
                                         : gi == 2 ? RB_QUANT_PER_COL
                                                   : RB_QUANT_PER_GROUP;
                    size_t group = gi >= 3 ? groups[gi - 3] : 0;
                    float *x = malloc((rows * ld + 1) * sizeof *x);
                    fill(x, rows, cols, ld, group ? group : cols, bits, seed,
                         (uint64_t) (ci * 64 + (size_t) bits * 4 + gi) * 2);
                    for (int var = 0; var < 4; var++) {
                        rb_quant_spec s = f16_spec(bits, asym, gran, group);
                        s.clip = var & 1 ? 0.9f : 0.0f;
                        s.zero_in_range = var == 3;
                        if (var == 2) {
                            s.round = RB_ROUND_STOCHASTIC;
                            s.seed = seed;
                            s.stream = 7;
                        }
                        check_one(&s, x, rows, cols, ld, seed);
                    }
                    free(x);
                }
        }
}

/* The far rows are where fp16 rounding of the zero point matters: the stored pair differs from
 * the fp32 one there, and so do codes (a test that could not tell the option from no option
 * would pass an implementation that ignored it). */
Test(quant_f16, far_rows_differ_from_fp32_params) {
    uint64_t seed = rbt_seed();
    size_t rows = 5 * 8, cols = 64, differ_z = 0, differ_codes = 0;
    float *x = malloc(rows * cols * sizeof *x), sa[40], za[40], sb[40], zb[40];
    uint8_t *ca = malloc(rows * cols), *cb = malloc(rows * cols);
    fill(x, rows, cols, cols, cols, 4, seed, 99);
    rb_quant_spec s = f16_spec(4, 1, RB_QUANT_PER_ROW, 0), t = s;
    t.side_f16 = 0;
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, ca, sa, za), 0, "%s", rb_error_detail());
    cr_assert_eq(rb_quant_f32(&t, x, rows, cols, cols, cb, sb, zb), 0, "%s", rb_error_detail());
    for (size_t r = 1; r < rows; r += 5) {
        cr_assert_gt(fabsf(zb[r]), 2048.0f, "seed %llu row %zu", (unsigned long long) seed, r);
        differ_z += za[r] != zb[r];
        differ_codes += memcmp(ca + r * cols, cb + r * cols, cols) != 0;
    }
    cr_assert_gt(differ_z, 0, "seed %llu", (unsigned long long) seed);
    cr_assert_gt(differ_codes, 0, "seed %llu", (unsigned long long) seed);
    free(x), free(ca), free(cb);
}

Test(quant_f16, out_of_range_names_row_and_group) {
    const size_t rows = 3, cols = 24;
    /* Parameters: 9 groups, 3 rows, 24 columns or 1 (the largest, per column, sizes them). */
    float x[3 * 24], sc[24], zr[24], y[3 * 24];
    uint8_t q[3 * 24], pk[3 * 12];
    rb_rng_normal_f32(rbt_seed(), 5, 0, rows * cols, x);
    /* Row 2, group 1 far from zero with a tiny range: zero point about -2e7 code units. */
    for (size_t j = 0; j < 8; j++) x[2 * cols + 8 + j] = 1e4f + 1e-3f * (float) j;
    rb_quant_spec s = f16_spec(4, 1, RB_QUANT_PER_GROUP, 8);
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, zr), RB_ENUMERIC);
    const char *d = rb_error_detail();
    cr_assert(strstr(d, "quant: row 2, group 1: zero point") && strstr(d, "65504"), "%s", d);
    cr_assert_eq(rb_fake_quant_f32(&s, x, rows, cols, cols, y, cols, sc, zr), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "row 2, group 1"), "%s", rb_error_detail());
    cr_assert_eq(rb_quant_pack4_f32(&s, x, rows, cols, cols, pk, 12, sc, zr), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "row 2, group 1"), "%s", rb_error_detail());
    s.side_f16 = 0; /* fp32 parameters hold it */
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, zr), 0, "%s", rb_error_detail());
    /* A symmetric scale beyond 65504: 1e7 / 127. */
    rb_rng_normal_f32(rbt_seed(), 6, 0, rows * cols, x);
    x[1 * cols + 17] = 1e7f;
    s = f16_spec(8, 0, RB_QUANT_PER_GROUP, 8);
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, NULL), RB_ENUMERIC);
    d = rb_error_detail();
    cr_assert(strstr(d, "quant: row 1, group 2: scale") && strstr(d, "65504"), "%s", d);
    s.gran = RB_QUANT_PER_ROW;
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, NULL), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "quant: row 1, group 0: scale"), "%s", rb_error_detail());
    s.gran = RB_QUANT_PER_COL;
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, NULL), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "quant: column 17: scale"), "%s", rb_error_detail());
    s.gran = RB_QUANT_PER_TENSOR;
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, NULL), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "quant: tensor: scale"), "%s", rb_error_detail());
    /* 65504 itself is an fp16 value: x = 65504 * 127 gives exactly that scale. */
    x[1 * cols + 17] = 65504.0f * 127.0f;
    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, q, sc, NULL), 0, "%s", rb_error_detail());
    cr_assert_eq(sc[0], 65504.0f);
}

Test(quant_f16, spec_check_validates_the_field) {
    rb_quant_spec s = f16_spec(4, 1, RB_QUANT_PER_ROW, 0);
    cr_assert_eq(rb_quant_spec_check(&s), 0);
    s.side_f16 = 2;
    cr_assert_eq(rb_quant_spec_check(&s), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "side_f16"), "%s", rb_error_detail());
    s.side_f16 = -1;
    cr_assert_eq(rb_quant_spec_check(&s), RB_EINVAL);
    float x[4] = {1, 2, 3, 4}, sc[1], zr[1];
    uint8_t q[4];
    cr_assert_eq(rb_quant_f32(&s, x, 1, 4, 4, q, sc, zr), RB_EINVAL);
}

/* Every enabled fast variant either declines the option or gives the reference's bits; every
 * kernel selection gives the oracle's bits through the public calls. */
Test(quant_f16, variants_and_selections_agree) {
    uint64_t seed = rbt_seed();
    const size_t rows = 10, cols = 48;
    float *x = malloc(rows * cols * sizeof *x), s1[160], z1[160], s2[160], z2[160];
    float *y1 = malloc(rows * cols * 4), *y2 = malloc(rows * cols * 4);
    uint8_t *c1 = malloc(rows * cols), *c2 = malloc(rows * cols);
    const rb_op *op = &rb_op_quant_rows_f32;
    for (int bits = 2; bits <= 8; bits += 3)
        for (int asym = 0; asym <= 1; asym++)
            for (size_t group = 3; group <= cols; group *= 4) {
                fill(x, rows, cols, cols, group, bits, seed, (uint64_t) (bits * 100 + group));
                rb_quant_spec s = f16_spec(bits, asym, RB_QUANT_PER_GROUP, group);
                size_t np = rb_quant_nparams(&s, rows, cols);
                cr_assert_eq(oracle(&s, x, rows, cols, cols, c1, s1, z1, y1), 0);
                for (size_t vi = 0; vi < op->count; vi++) {
                    const rb_variant *v = &op->variants[vi];
                    if (strcmp(v->name, "ref") == 0 || !rb_variant_enabled(v)) continue;
                    rb_quant_rows_fn fn = (rb_quant_rows_fn) v->fn;
                    memset(c2, 0x5A, rows * cols);
                    int rc = fn(&s, x, rows, cols, cols, group, c2, cols, RB_QOUT_CODES, s2, z2);
                    if (rc == RB_EDECLINE) continue;
                    cr_assert_eq(rc, 0, "%s: %s", v->name, rb_error_detail());
                    cr_assert(memcmp(c1, c2, rows * cols) == 0 && memcmp(s1, s2, np * 4) == 0,
                              "%s ignores side_f16: seed %llu bits %d asym %d group %zu", v->name,
                              (unsigned long long) seed, bits, asym, group);
                }
                const char *sel[] = {"auto", "avx512", "avx2", "scalar", "ref"};
                for (size_t k = 0; k < 5; k++) {
                    cr_assert_eq(rb_kernels_select(sel[k]), 0);
                    cr_assert_eq(rb_quant_f32(&s, x, rows, cols, cols, c2, s2, z2), 0);
                    cr_assert(memcmp(c1, c2, rows * cols) == 0 && memcmp(s1, s2, np * 4) == 0,
                              "%s: seed %llu bits %d asym %d group %zu", sel[k],
                              (unsigned long long) seed, bits, asym, group);
                    cr_assert_eq(rb_fake_quant_f32(&s, x, rows, cols, cols, y2, cols, s2, z2), 0);
                    cr_assert(memcmp(y1, y2, rows * cols * 4) == 0, "%s: fake quant", sel[k]);
                }
                cr_assert_eq(rb_kernels_select("auto"), 0);
            }
    free(x), free(y1), free(y2), free(c1), free(c2);
}

/* The CUDA offload variant declines before it stages anything (no device is needed to see it),
 * and the device op itself refuses rather than ignores the option. */
Test(quant_f16, cuda_offload_declines) {
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sc[1], zr[1];
    uint8_t q[8];
    rb_quant_spec s = f16_spec(4, 1, RB_QUANT_PER_GROUP, 8);
    cr_assert_eq(rb_quant_rows_f32_cuda(&s, x, 1, 8, 8, 8, q, 8, RB_QOUT_CODES, sc, zr),
                 RB_EDECLINE);
}

Test(cuda_quant, side_f16_is_declined) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, quant_rows_f32);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float *dx = rbt_cu_upload(cu, x, sizeof x), *ds = rbt_cu_alloc(cu, 4),
          *dz = rbt_cu_alloc(cu, 4);
    uint8_t *dq = rbt_cu_alloc(cu, 8);
    rb_quant_spec s = f16_spec(4, 1, RB_QUANT_PER_GROUP, 8);
    cr_assert_eq(cu->quant_rows_f32(&s, dx, 1, 8, 8, 8, dq, 8, RB_QOUT_CODES, ds, dz, NULL),
                 RB_EDECLINE, "%s", rb_error_detail());
    rbt_cu_free(cu, dx), rbt_cu_free(cu, ds), rbt_cu_free(cu, dz), rbt_cu_free(cu, dq);
}
