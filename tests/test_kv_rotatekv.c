/* rotatekv: the quantizer (clip, zero rounding, the released INT3 scale bug), the transform
 * algebra (H_G H_G = I, P^-1 = argsort(order), the calibrated order, pre-RoPE rotation recovered
 * exactly without quantization), sinks in fp16, the ablation ordering on outlier keys, bits. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/synth.h"
#include "harness/config.h"
#include "kernels/half.h"
#include "methods/method.h"
#include "methods/rotatekv.h"
#include "tests/testutil.h"

static const rb_method *rkv(void) {
    const rb_method *m = rb_method_find("rotatekv");
    cr_assert_not_null(m);
    cr_assert_not_null(m->kv);
    return m;
}

/* params: "name=value" pairs, NULL-terminated. */
static int make_at(const char *const *kv, size_t H, size_t D, size_t cap, double rope, size_t pos0,
                   size_t calib_pos0, void **st) {
    const rb_method *m = rkv();
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    for (size_t i = 0; kv && kv[i]; i += 2)
        cr_assert_eq(rb_params_set(&p, kv[i], kv[i + 1]), 0, "%s", kv[i]);
    rb_kv_geom g = {.heads = H,
                    .head_dim = D,
                    .capacity = cap,
                    .rope_base = rope,
                    .pos0 = pos0,
                    .calib_pos0 = calib_pos0};
    *st = NULL;
    return m->kv->create(&p, &g, 1, st);
}

static int make(const char *const *kv, size_t H, size_t D, size_t cap, double rope, void **st) {
    return make_at(kv, H, D, cap, rope, 0, 0, st);
}

/* Keys like kv_cache.md section 5: N(0, 1) with 4 outlier channels per head (mean +-5..10,
 * sigma 2..4), the same channels for every token; optional RoPE at position offset + t. */
static float *outlier_keys(size_t T, size_t H, size_t D, uint64_t seed, uint64_t stream,
                           double rope, size_t offset) {
    float *K = rbt_normal_f32(T * H * D, seed, stream);
    for (size_t h = 0; h < H; h++)
        for (size_t j = 0; j < 4; j++) {
            size_t c = (h * 37 + j * 29 + 3) % D;
            double mean = (j & 1 ? -1 : 1) * (5.0 + (double) j), sd = 2.0 + 0.5 * (double) j;
            for (size_t t = 0; t < T; t++) {
                float *k = &K[(t * H + h) * D + c];
                *k = (float) (mean + sd * *k);
            }
        }
    for (size_t t = 0; rope > 0 && t < T; t++)
        for (size_t h = 0; h < H; h++)
            rb_rope_apply(&K[(t * H + h) * D], D, (double) (offset + t), rope);
    return K;
}

Test(kv_rotatekv, int3_scale_bug_is_mirrored_behind_the_flag) {
    float x[9];
    uint8_t q[9];
    float s, z;
    for (int i = 0; i < 9; i++) x[i] = (float) i;
    cr_assert_eq(rb_rotatekv_quant(x, 9, 3, 1.0f, 1, 1, q, &s, &z), RB_OK);
    cr_assert_eq(s, 1.0f, "INT3 bug: step (max - min) / 8, got %g", s);
    cr_assert_eq(z, 0.0f);
    for (int i = 0; i < 8; i++) cr_assert_eq(q[i], i);
    cr_assert_eq(q[8], 7, "the clamp stays at 2^3 - 1");
    cr_assert_eq(rb_rotatekv_quant(x, 9, 3, 1.0f, 0, 0, q, &s, &z), RB_OK);
    cr_assert_eq(s, 8.0f / 7.0f);
    cr_assert_eq(q[8], 7);
    /* At 2 and 4 bits the bug changes nothing. */
    for (int b = 2; b <= 4; b += 2) {
        float s1, z1, s2, z2;
        uint8_t q1[9], q2[9];
        cr_assert_eq(rb_rotatekv_quant(x, 9, b, 1.0f, 1, 0, q1, &s1, &z1), RB_OK);
        cr_assert_eq(rb_rotatekv_quant(x, 9, b, 1.0f, 0, 0, q2, &s2, &z2), RB_OK);
        cr_assert(s1 == s2 && z1 == z2 && memcmp(q1, q2, 9) == 0, "bits %d", b);
    }
}

/* Clip 0.8 at INT2 on [-5, 10]: mn = -4, mx = 8, scale 4, zero round(1) = 1; codes
 * clamp(round(x / 4) + 1, 0, 3), decoded 4 (q - 1). */
Test(kv_rotatekv, int2_clip_and_zero_point) {
    const float x[6] = {-5, -2, 0, 2.5f, 6, 10};
    const uint8_t want[6] = {0, 1, 1, 2, 3, 3};
    uint8_t q[6];
    float s, z;
    cr_assert_eq(rb_rotatekv_quant(x, 6, 2, 0.8f, 0, 1, q, &s, &z), RB_OK);
    cr_assert_eq(s, 4.0f);
    cr_assert_eq(z, 1.0f);
    for (int i = 0; i < 6; i++) cr_assert_eq(q[i], want[i], "x = %g: code %u", x[i], q[i]);
    /* A constant group is defined (scale 1), not a division by zero. */
    const float c[4] = {3, 3, 3, 3};
    cr_assert_eq(rb_rotatekv_quant(c, 4, 2, 1.0f, 0, 1, q, &s, &z), RB_OK);
    cr_assert_eq(s, 1.0f);
    for (int i = 0; i < 4; i++) cr_assert_eq(s * ((float) q[i] - z), 3.0f);
}

Test(kv_rotatekv, grouped_hadamard_is_an_involution) {
    uint64_t seed = rbt_seed();
    float *x = rbt_normal_f32(3 * 512, seed, 1), *y = malloc(3 * 512 * sizeof *y);
    memcpy(y, x, 3 * 512 * sizeof *y);
    cr_assert_eq(rb_fwht_f32(y, 512, 3, 512, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
    cr_assert_eq(rb_fwht_f32(y, 512, 3, 512, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
    cr_assert_lt(rbt_max_relerr_f32(y, x, 3 * 512), 1e-6, "seed %llu", (unsigned long long) seed);
    free(x);
    free(y);
}

/* The calibrated order is argsort ascending of the signed channel sums of the pre-RoPE rotated
 * keys; the forward key transform equals RoPE^-1, H_G (fp64 oracle), gather by order; the inverse
 * is the gather by argsort(order) and recovers the key. */
/* Calibration tokens at positions c0 + t (a dump's tail split off for calibration): the order
 * is that of the channel sums with RoPE undone at those positions. */
static void check_calibrated_order(size_t c0) {
    uint64_t seed = rbt_seed();
    size_t H = 8, D = 64, HD = H * D, C = 300, hg = 4;
    double base = 10000;
    const char *const prm[] = {"head_group", "4", "group", "64", NULL};
    void *st;
    cr_assert_eq(make_at(prm, H, D, 16, base, 0, c0, &st), 0, "%s", rb_error_detail());
    cr_assert_null(rb_rotatekv_order(st));
    float *Kc = outlier_keys(C, H, D, seed, 3, base, c0);
    cr_assert_eq(rkv()->kv->calibrate(st, Kc, Kc, C), 0, "%s", rb_error_detail());
    const size_t *order = rb_rotatekv_order(st);
    cr_assert_not_null(order);
    /* Independent channel sums in fp64. */
    double *S = calloc(HD, sizeof *S), *row = malloc(HD * sizeof *row);
    float *f = malloc(HD * sizeof *f);
    for (size_t t = 0; t < C; t++) {
        memcpy(f, Kc + t * HD, HD * sizeof *f);
        for (size_t h = 0; h < H; h++) rb_rope_apply(f + h * D, D, -(double) (c0 + t), base);
        for (size_t e = 0; e < HD; e++) row[e] = f[e];
        cr_assert_eq(rb_fwht_f64(row, hg * D, H / hg, hg * D, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
        for (size_t e = 0; e < HD; e++) S[e] += row[e];
    }
    unsigned char *seen = calloc(HD, 1);
    for (size_t j = 0; j < HD; j++) {
        cr_assert_lt(order[j], HD);
        cr_assert(!seen[order[j]], "order is not a permutation");
        seen[order[j]] = 1;
        if (j) /* fp32 vs fp64 sums: allow a relative slack on near-ties */
            cr_assert(S[order[j - 1]] <= S[order[j]] + 1e-3 * (1 + fabs(S[order[j]])),
                      "seed %llu, calibration from position %zu: S not ascending at %zu",
                      (unsigned long long) seed, c0, j);
    }
    /* The outlier channels' energy lands at both ends of the order. */
    cr_assert_lt(S[order[0]], -1000.0);
    cr_assert_gt(S[order[HD - 1]], 1000.0);
    /* Forward against the oracle, inverse by argsort(order). */
    size_t *inv = malloc(HD * sizeof *inv);
    for (size_t j = 0; j < HD; j++) inv[order[j]] = j;
    float *k = outlier_keys(1, H, D, seed, 4, 0, 0), *x = malloc(HD * sizeof *x);
    size_t pos = 77;
    memcpy(x, k, HD * sizeof *x);
    cr_assert_eq(rb_rotatekv_key_transform(st, x, pos, RB_FORWARD), 0);
    memcpy(f, k, HD * sizeof *f);
    for (size_t h = 0; h < H; h++) rb_rope_apply(f + h * D, D, -(double) pos, base);
    for (size_t e = 0; e < HD; e++) row[e] = f[e];
    cr_assert_eq(rb_fwht_f64(row, hg * D, H / hg, hg * D, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
    for (size_t j = 0; j < HD; j++) {
        cr_assert(fabs(x[j] - row[order[j]]) < 1e-5 * (1 + fabs(row[order[j]])),
                  "seed %llu: stored[%zu]", (unsigned long long) seed, j);
        cr_assert_eq(x[inv[order[j]]], x[j]); /* argsort(order) undoes the gather */
    }
    cr_assert_eq(rb_rotatekv_key_transform(st, x, pos, RB_INVERSE), 0);
    cr_assert_lt(rbt_max_relerr_f32(x, k, HD), 1e-5, "seed %llu", (unsigned long long) seed);
    rkv()->kv->destroy(st);
    free(Kc);
    free(S);
    free(row);
    free(f);
    free(seen);
    free(inv);
    free(k);
    free(x);
}

Test(kv_rotatekv, transform_algebra_and_calibrated_order) {
    check_calibrated_order(0);
}

Test(kv_rotatekv, calibration_tokens_at_their_dump_positions) {
    check_calibrated_order(3000);
}

/* quantize: false stores the transformed fp32 rows: prefill + decode with RoPE, grouped rotation,
 * order and V rotation read back to < 1e-5 (sinks off: they are fp16). */
Test(kv_rotatekv, unquantized_path_recovers_keys_and_values) {
    uint64_t seed = rbt_seed();
    size_t H = 4, D = 128, HD = H * D, N = 70;
    const char *const prm[] = {"quantize", "false", "sinks", "0", NULL};
    void *st;
    cr_assert_eq(make(prm, H, D, N, 10000, &st), 0, "%s", rb_error_detail());
    float *Kc = outlier_keys(64, H, D, seed, 5, 10000, 0);
    float *K = outlier_keys(N, H, D, seed, 6, 10000, 0), *V = rbt_normal_f32(N * HD, seed, 7);
    float *Kh = malloc(N * HD * sizeof *Kh), *Vh = malloc(N * HD * sizeof *Vh);
    cr_assert_eq(rkv()->kv->calibrate(st, Kc, Kc, 64), 0);
    cr_assert_eq(rkv()->kv->append(st, K, V, 50), 0);
    for (size_t t = 50; t < N; t++)
        cr_assert_eq(rkv()->kv->append(st, K + t * HD, V + t * HD, 1), 0);
    cr_assert_eq(rkv()->kv->read(st, Kh, Vh), 0);
    cr_assert_lt(rbt_max_relerr_f32(Kh, K, N * HD), 1e-5, "seed %llu", (unsigned long long) seed);
    cr_assert_lt(rbt_max_relerr_f32(Vh, V, N * HD), 1e-5, "seed %llu", (unsigned long long) seed);
    cr_assert_float_eq(rkv()->kv->bits(st), 32.0, 1e-12);
    rkv()->kv->destroy(st);
    free(Kc);
    free(K);
    free(V);
    free(Kh);
    free(Vh);
}

static double rel_mse(const float *a, const float *b, size_t n) {
    double e = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
        d += (double) a[i] * a[i];
    }
    return e / d;
}

/* Key relative MSE at INT2 on outlier keys (no RoPE): each of RotateKV's pieces helps, as in the
 * kv_cache.md section 3 table (0.343 plain, 0.137 with H_128 and clip, 0.090 with P H_512 and
 * clip). Sinks off so that only the quantizer differs. */
static double key_mse(const char *rotation, const char *reorder, const char *clip, uint64_t seed) {
    size_t H = 4, D = 128, HD = H * D, N = 512;
    const char *const prm[] = {"rotation", rotation, "reorder", reorder, "clip",
                               clip,       "sinks",  "0",       NULL};
    void *st;
    cr_assert_eq(make(prm, H, D, N, 0, &st), 0, "%s", rb_error_detail());
    float *Kc = outlier_keys(512, H, D, seed, 8, 0, 0), *K = outlier_keys(N, H, D, seed, 9, 0, 0);
    float *V = rbt_normal_f32(N * HD, seed, 10);
    float *Kh = malloc(N * HD * sizeof *Kh), *Vh = malloc(N * HD * sizeof *Vh);
    cr_assert_eq(rkv()->kv->calibrate(st, Kc, V, 512), 0);
    cr_assert_eq(rkv()->kv->append(st, K, V, N), 0);
    cr_assert_eq(rkv()->kv->read(st, Kh, Vh), 0);
    double e = rel_mse(K, Kh, N * HD);
    rkv()->kv->destroy(st);
    free(Kc);
    free(K);
    free(V);
    free(Kh);
    free(Vh);
    return e;
}

Test(kv_rotatekv, each_piece_lowers_int2_key_error_on_outlier_keys) {
    uint64_t seed = rbt_seed();
    double plain = key_mse("none", "false", "1", seed),
           h128 = key_mse("head", "false", "0.8", seed),
           full = key_mse("grouped", "true", "0", seed);
    cr_assert(plain > 0.25 && plain < 0.45, "seed %llu: plain %g", (unsigned long long) seed,
              plain);
    cr_assert(h128 < 0.8 * plain, "seed %llu: H128 + clip %g vs plain %g",
              (unsigned long long) seed, h128, plain);
    cr_assert(full < 0.85 * h128, "seed %llu: P H512 + clip %g vs H128 + clip %g",
              (unsigned long long) seed, full, h128);
}

/* A prefill token with a huge key is a sink: read back at fp16 precision while the rest carry
 * INT2 error; bits (sinks x 16 + rest x 2.25) / tokens with 16-bit scale and zero, 2.5 with 32. */
Test(kv_rotatekv, sinks_stay_fp16_and_bits_are_exact) {
    uint64_t seed = rbt_seed();
    size_t H = 4, D = 128, HD = H * D, N = 200;
    float *K = rbt_normal_f32(N * HD, seed, 11), *V = rbt_normal_f32(N * HD, seed, 12);
    float *Kh = malloc(N * HD * sizeof *Kh), *Vh = malloc(N * HD * sizeof *Vh);
    for (size_t e = 0; e < HD; e++) K[37 * HD + e] *= 30;
    const char *const prm[] = {"reorder", "false", "sinks", "20", NULL};
    void *st;
    cr_assert_eq(make(prm, H, D, N, 10000, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(rkv()->kv->append(st, K, V, 150), 0);
    for (size_t t = 150; t < N; t++)
        cr_assert_eq(rkv()->kv->append(st, K + t * HD, V + t * HD, 1), 0);
    cr_assert(rb_rotatekv_is_sink(st, 37));
    size_t sinks = 0;
    for (size_t t = 0; t < N; t++) sinks += (size_t) rb_rotatekv_is_sink(st, t);
    cr_assert_eq(sinks, 20);
    for (size_t t = 150; t < N; t++) cr_assert(!rb_rotatekv_is_sink(st, t), "decode sink %zu", t);
    cr_assert_eq(rkv()->kv->read(st, Kh, Vh), 0);
    double e37 = rel_mse(K + 37 * HD, Kh + 37 * HD, HD),
           e0 = rel_mse(K + 150 * HD, Kh + 150 * HD, HD);
    cr_assert_lt(e37, 1e-6, "seed %llu: sink error %g", (unsigned long long) seed, e37);
    cr_assert_gt(e0, 0.01, "seed %llu: INT2 error %g", (unsigned long long) seed, e0);
    cr_assert_float_eq(rkv()->kv->bits(st), (20 * 16.0 + 180 * 2.25) / 200, 1e-12);
    rkv()->kv->destroy(st);
    const char *const p32[] = {"reorder", "false", "sinks", "0", "scale_bits", "32", NULL};
    cr_assert_eq(make(p32, H, D, N, 0, &st), 0);
    cr_assert_eq(rkv()->kv->append(st, K, V, 10), 0);
    cr_assert_float_eq(rkv()->kv->bits(st), 2.5, 1e-12);
    rkv()->kv->destroy(st);
    free(K);
    free(V);
    free(Kh);
    free(Vh);
}

Test(kv_rotatekv, rejects_bad_setups) {
    void *st;
    const char *const none[] = {NULL};
    cr_assert_eq(make(none, 6, 128, 8, 0, &st), RB_ESIZE); /* 6 heads, groups of 4 */
    cr_assert(strstr(rb_error_detail(), "head_group"), "%s", rb_error_detail());
    cr_assert_eq(make(none, 4, 96, 8, 0, &st), RB_ESIZE); /* 96 not a multiple of 128 */
    cr_assert_eq(make(none, 4, 128, 8, 0, &st), 0);
    float x[4 * 128] = {0};
    cr_assert_eq(rkv()->kv->append(st, x, x, 1), RB_EINVAL); /* reorder without calibration */
    cr_assert(strstr(rb_error_detail(), "calibration"), "%s", rb_error_detail());
    rkv()->kv->destroy(st);
    const char *const bug1[] = {"bits", "1", "int3_bug", "true", NULL};
    cr_assert_eq(make(bug1, 4, 128, 8, 0, &st), RB_EINVAL);
}

/* A cache whose first token sits at position P (an evaluation split after calibration tokens):
 * RoPE is undone at P + t, so the stored rows, and with them the codes, are those of the same
 * pre-RoPE keys cached from position 0. Compared in the pre-RoPE basis: the two read-backs agree
 * to roundoff (a code flipped by it would cost far less than the bound). */
Test(kv_rotatekv, appended_tokens_at_their_positions) {
    uint64_t seed = rbt_seed();
    size_t H = 2, D = 128, HD = H * D, N = 40, P = 5000;
    double base = 10000;
    const char *const prm[] = {"rotation", "none", "reorder", "false", "sinks", "0", NULL};
    float *K0 = outlier_keys(N, H, D, seed, 11, base, 0),
          *KP = outlier_keys(N, H, D, seed, 11, base, P);
    float *V = rbt_normal_f32(N * HD, seed, 12);
    float *A = malloc(N * HD * sizeof *A), *B = malloc(N * HD * sizeof *B),
          *Vh = malloc(N * HD * sizeof *Vh);
    void *s0, *sP;
    cr_assert_eq(make_at(prm, H, D, N, base, 0, 0, &s0), 0, "%s", rb_error_detail());
    cr_assert_eq(make_at(prm, H, D, N, base, P, 0, &sP), 0, "%s", rb_error_detail());
    cr_assert_eq(rkv()->kv->append(s0, K0, V, N), 0);
    cr_assert_eq(rkv()->kv->append(sP, KP, V, N), 0);
    cr_assert_eq(rkv()->kv->read(s0, A, Vh), 0);
    cr_assert_eq(rkv()->kv->read(sP, B, Vh), 0);
    for (size_t t = 0; t < N; t++)
        for (size_t h = 0; h < H; h++) {
            rb_rope_apply(A + (t * H + h) * D, D, -(double) t, base);
            rb_rope_apply(B + (t * H + h) * D, D, -(double) (P + t), base);
        }
    double e = rel_mse(A, B, N * HD);
    cr_assert_lt(e, 1e-4,
                 "seed %llu: read-backs differ by %g (RoPE undone at the wrong positions?)",
                 (unsigned long long) seed, e);
    rkv()->kv->destroy(s0);
    rkv()->kv->destroy(sP);
    free(K0);
    free(KP);
    free(V);
    free(A);
    free(B);
    free(Vh);
}

/* A group scale or a sink element beyond fp16 is an error naming the token and group (it was a
 * silent scale of 1 / an Inf sink); scale_bits: 32 stores the same group. */
Test(kv_rotatekv, fp16_overflow_is_an_error_naming_the_place) {
    size_t H = 4, D = 128, HD = H * D, N = 8;
    float *K = rbt_normal_f32(N * HD, rbt_seed(), 13), *V = rbt_normal_f32(N * HD, rbt_seed(), 14);
    V[5 * HD + 130] = 3e6f; /* token 5, value group 1 (group 128): scale ~1e6 at INT2 */
    const char *const p16[] = {"reorder", "false", "sinks", "0", NULL};
    void *st;
    cr_assert_eq(make(p16, H, D, N, 0, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(rkv()->kv->append(st, K, V, N), RB_ENUMERIC);
    const char *d = rb_error_detail();
    cr_assert(strstr(d, "token 5") && strstr(d, "value group 1") && strstr(d, "fp16") &&
                  strstr(d, "head 1, channels 0..127"),
              "%s", d);
    rkv()->kv->destroy(st);
    const char *const p32[] = {"reorder", "false", "sinks", "0", "scale_bits", "32", NULL};
    cr_assert_eq(make(p32, H, D, N, 0, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(rkv()->kv->append(st, K, V, N), 0, "%s", rb_error_detail());
    rkv()->kv->destroy(st);
    /* Sinks are fp16 rows: a key of 2e6 on the largest-norm token cannot be kept. */
    V[5 * HD + 130] = 0.5f;
    K[6 * HD + 7] = 2e6f; /* / sqrt(512) after the grouped Hadamard: 88000 */
    const char *const ps[] = {"reorder", "false", "sinks", "1", "scale_bits", "32", NULL};
    cr_assert_eq(make(ps, H, D, N, 0, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(rkv()->kv->append(st, K, V, N), RB_ENUMERIC);
    d = rb_error_detail();
    cr_assert(strstr(d, "sink token 6") && strstr(d, "key head 0, channel 0 "), "%s", d);
    rkv()->kv->destroy(st);
    free(K);
    free(V);
}

/* configs/paper/kv_int2.yaml names the clip every RotateKV cell uses: records print a parameter
 * as configured, and clip's default 0 ("the paper's for the width", 0.8 at INT2) printed as
 * clip=0 on rows that clip at 0.8. So each cell gives it explicitly, and clip-less ablation rows
 * (labels without "clip") use 1 and the others 0.8. */
Test(kv_rotatekv, kv_int2_config_shows_the_clip_it_uses) {
    rb_config cfg;
    cr_assert_eq(rb_config_load("configs/paper/kv_int2.yaml", &cfg), 0, "%s", rb_error_detail());
    rb_cell *cells;
    size_t n, seen = 0;
    cr_assert_eq(rb_sweep_expand(&cfg, &cells, &n), 0, "%s", rb_error_detail());
    for (size_t i = 0; i < n; i++) {
        const rb_method_entry *e = &cfg.methods[cells[i].method];
        if (strcmp(e->method, "rotatekv") != 0) continue;
        const rb_params *p = &cells[i].mparams;
        double clip = rb_params_float(p, "clip");
        cr_assert_gt(clip, 0, "%s: clip=0 (the implicit default) in the report", e->label);
        int clipped = strstr(e->label, "clip") || !strncmp(e->label, "rotatekv", 8);
        cr_assert_float_eq(clip, clipped ? 0.8 : 1.0, 1e-12, "%s: clip %g", e->label, clip);
        cr_assert_eq(rb_params_int(p, "bits"), 2);
        seen++;
    }
    cr_assert_eq(seen, 9, "rotatekv cells: %zu", seen);
    free(cells);
    rb_config_free(&cfg);
}
