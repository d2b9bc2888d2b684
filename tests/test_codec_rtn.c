/* The rtn codec through its registry entry: round trips, exact code size and bits, edge inputs,
 * rotations, determinism, and the codec evaluator's metrics on it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/eval.h"
#include "methods/method.h"
#include "tests/testutil.h"

static void *make(const char *bits, const char *rotation, const char *group, size_t dim,
                  uint64_t seed, const rb_method **m) {
    *m = rb_method_find("rtn");
    cr_assert_not_null(*m);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, (*m)->params, (*m)->nparams), 0);
    cr_assert_eq(rb_params_set(&p, "bits", bits), 0);
    cr_assert_eq(rb_params_set(&p, "rotation", rotation), 0);
    cr_assert_eq(rb_params_set(&p, "group", group), 0);
    void *st = NULL;
    int rc = (*m)->codec->create(&p, dim, seed, &st);
    cr_assert_eq(rc, 0, "create: %s", rb_error_detail());
    return st;
}

static double roundtrip_vnmse(const rb_method *m, void *st, const float *x, size_t count,
                              size_t d) {
    size_t cb = m->codec->code_bytes(st);
    uint8_t *codes = malloc(count * cb);
    float *y = malloc(count * d * sizeof *y);
    cr_assert_eq(m->codec->encode(st, x, count, codes), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->decode(st, codes, count, y), 0, "%s", rb_error_detail());
    double e = 0;
    for (size_t i = 0; i < count; i++) {
        double num = 0, den = 0;
        for (size_t j = 0; j < d; j++) {
            double diff = (double) x[i * d + j] - y[i * d + j];
            num += diff * diff;
            den += (double) x[i * d + j] * x[i * d + j];
        }
        e += num / den;
    }
    free(codes);
    free(y);
    return e / (double) count;
}

/* Uniform b-bit quantization of a range R has error R^2 / (12 (2^b - 1)^2) per coordinate, so
 * going from b-1 to b bits divides the vNMSE by ((2^b - 1) / (2^(b-1) - 1))^2 (5.4 at b = 3,
 * about 4 for large b); the rotations must not change that rate. */
Test(codec_rtn, error_falls_with_the_uniform_step_size_for_every_rotation) {
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 512;
    float *x = rbt_normal_f32(count * d, seed, 1);
    const char *rots[] = {"none", "rht", "rht2", "haar"};
    for (size_t r = 0; r < 4; r++) {
        double prev = 0;
        for (int b = 2; b <= 8; b++) {
            char bits[4];
            snprintf(bits, sizeof bits, "%d", b);
            const rb_method *m;
            void *st = make(bits, rots[r], "0", d, seed, &m);
            double e = roundtrip_vnmse(m, st, x, count, d);
            double ratio = ((1 << b) - 1.0) / ((1 << (b - 1)) - 1.0);
            if (prev > 0)
                cr_assert(fabs(prev / e / (ratio * ratio) - 1.0) < 0.2,
                          "rot %s b=%d: %g after %g (seed %llu)", rots[r], b, e, prev,
                          (unsigned long long) seed);
            prev = e;
            m->codec->destroy(st);
        }
    }
    free(x);
}

Test(codec_rtn, code_size_and_bits_are_exact) {
    const rb_method *m;
    void *st = make("3", "none", "32", 100, 1, &m);
    /* 100 coordinates at 3 bits = 300 bits = 38 bytes, plus 4 groups x (scale, zero) fp32. */
    cr_assert_eq(m->codec->code_bytes(st), 38 + 4 * 8);
    cr_assert_float_eq(m->codec->bits(st), 3.0 + 4 * 64.0 / 100.0, 1e-12);
    m->codec->destroy(st);
    /* Symmetric: the zero point is 0 and not stored, one fp32 scale per group. */
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    rb_params_set(&p, "bits", "3");
    rb_params_set(&p, "group", "32");
    rb_params_set(&p, "sym", "true");
    cr_assert_eq(m->codec->create(&p, 100, 1, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->code_bytes(st), 38 + 4 * 4);
    cr_assert_float_eq(m->codec->bits(st), 3.0 + 4 * 32.0 / 100.0, 1e-12);
    m->codec->destroy(st);
}

Test(codec_rtn, edge_inputs_give_finite_results) {
    const rb_method *m;
    size_t d = 64;
    void *st = make("4", "rht", "0", d, 3, &m);
    float x[3 * 64] = {0};
    for (size_t j = 0; j < d; j++) {
        x[d + j] = 1e30f * (j % 2 ? 1 : -1);
        x[2 * d + j] = 1e-30f * (float) j;
    }
    size_t cb = m->codec->code_bytes(st);
    uint8_t *codes = malloc(3 * cb);
    float y[3 * 64];
    cr_assert_eq(m->codec->encode(st, x, 3, codes), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->decode(st, codes, 3, y), 0);
    for (size_t j = 0; j < d; j++) cr_assert_eq(y[j], 0.0f, "zero vector decodes to zero");
    for (size_t j = d; j < 3 * d; j++) cr_assert(isfinite(y[j]), "element %zu", j);
    free(codes);
    m->codec->destroy(st);
}

Test(codec_rtn, rht_needs_a_hadamard_order_and_says_which) {
    const rb_method *m = rb_method_find("rtn");
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    rb_params_set(&p, "rotation", "rht");
    void *st = NULL;
    cr_assert_eq(m->codec->create(&p, 100, 1, &st), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "96") && strstr(rb_error_detail(), "104"), "%s",
              rb_error_detail());
    rb_params_set(&p, "rotation", "haar");
    cr_assert_eq(m->codec->create(&p, 100, 1, &st), 0);
    m->codec->destroy(st);
}

Test(codec_rtn, same_seed_same_codes_across_thread_counts) {
    uint64_t seed = rbt_seed();
    size_t d = 256, count = 300;
    float *x = rbt_normal_f32(count * d, seed, 2);
    uint8_t *codes[2];
    for (int t = 0; t < 2; t++) {
        rb_threads_set(t + 1);
        const rb_method *m;
        void *st = make("4", "rht", "0", d, seed, &m);
        size_t cb = m->codec->code_bytes(st);
        codes[t] = malloc(count * cb);
        cr_assert_eq(m->codec->encode(st, x, count, codes[t]), 0);
        if (t) cr_assert_eq(memcmp(codes[0], codes[1], count * cb), 0);
        m->codec->destroy(st);
    }
    rb_threads_set(1);
    free(codes[0]);
    free(codes[1]);
    free(x);
}

static int collect(void *ctx, const rb_metric_value *v) {
    double *out = ctx;
    if (!strcmp(v->metric->name, "vnmse")) out[0] = v->value;
    if (!strcmp(v->metric->name, "ip_slope")) out[1] = v->value;
    if (!strcmp(v->metric->name, "d_dprod")) out[2] = v->value;
    if (!strcmp(v->metric->name, "bits")) out[3] = v->value;
    return 0;
}

/* For a decoder whose error is small and roughly isotropic, d * D_prod is close to the vNMSE and
 * the slope is close to 1; the evaluator's vNMSE equals the one computed here by hand. */
Test(codec_rtn, evaluator_metrics_agree_with_direct_computation) {
    const rb_method *m = rb_method_find("rtn");
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    rb_params_set(&p, "bits", "4");
    rb_params_set(&p, "rotation", "rht");
    const rb_dataset_kind *k = rb_dataset_kind_find("sphere");
    rb_params dp;
    rb_params_init(&dp, k->params, k->nparams);
    rb_params_set(&dp, "dim", "128");
    rb_params_set(&dp, "count", "2000");
    rb_params_set(&dp, "queries", "200");
    rb_dataset ds = {0};
    cr_assert_eq(k->load(&dp, 5, &ds), 0);
    const char *metrics[] = {"vnmse", "ip_slope", "d_dprod", "bits"};
    double got[4] = {NAN, NAN, NAN, NAN};
    cr_assert_eq(rb_eval_codec(m, &p, &ds, 9, metrics, 4, collect, got), 0, "%s",
                 rb_error_detail());
    void *st = NULL;
    m->codec->create(&p, 128, 9, &st);
    double direct = roundtrip_vnmse(m, st, rb_dataset_tensor(&ds, "x")->data, 2000, 128);
    cr_assert_float_eq(got[0], direct, 1e-12 * direct);
    cr_assert(fabs(got[1] - 1.0) < 0.02, "slope %g", got[1]);
    cr_assert(fabs(got[2] / got[0] - 1.0) < 0.15, "d_dprod %g vs vnmse %g", got[2], got[0]);
    cr_assert_float_eq(got[3], 4.0 + 64.0 / 128.0, 1e-12);
    m->codec->destroy(st);
    rb_dataset_free(&ds);
}

Test(codec_rtn, dimension_zero_is_an_error) {
    const rb_method *m = rb_method_find("rtn");
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    void *st = NULL;
    cr_assert_eq(m->codec->create(&p, 0, 1, &st), RB_ESIZE);
    cr_assert_null(st);
}

/* Symmetric codes (sign-extended nibbles) through the same packing and evaluator path. */
Test(codec_rtn, symmetric_round_trip) {
    const rb_method *m = rb_method_find("rtn");
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    rb_params_set(&p, "sym", "true");
    rb_params_set(&p, "bits", "4");
    size_t d = 64, count = 200;
    float *x = rbt_normal_f32(count * d, rbt_seed(), 3);
    void *st = NULL;
    cr_assert_eq(m->codec->create(&p, d, 1, &st), 0);
    double e = roundtrip_vnmse(m, st, x, count, d);
    /* 15 levels over [-amax, amax] instead of 16 over [min, max]: a little worse than asym. */
    cr_assert(e > 0.005 && e < 0.03, "vnmse %g", e);
    m->codec->destroy(st);
    /* Groups of 16 whose magnitudes differ by 10x: each group must come back with its own scale
     * (a scale read from another group's slot would be 10x off), so every group's own error is
     * small. */
    rb_params_set(&p, "group", "16");
    cr_assert_eq(m->codec->create(&p, d, 1, &st), 0);
    for (size_t i = 0; i < count * d; i++) x[i] *= powf(10.0f, (float) ((i % d) / 16));
    size_t cb = m->codec->code_bytes(st);
    cr_assert_eq(cb, rb_pack_bytes(d, 4) + 4 * sizeof(float), "one fp32 scale per group");
    uint8_t *codes = malloc(count * cb);
    float *y = malloc(count * d * sizeof *y);
    cr_assert_eq(m->codec->encode(st, x, count, codes), 0, "%s", rb_error_detail());
    cr_assert_eq(m->codec->decode(st, codes, count, y), 0, "%s", rb_error_detail());
    for (size_t g = 0; g < 4; g++) {
        double num = 0, den = 0;
        for (size_t r = 0; r < count; r++)
            for (size_t j = 16 * g; j < 16 * g + 16; j++) {
                double t = (double) x[r * d + j] - y[r * d + j];
                num += t * t;
                den += (double) x[r * d + j] * x[r * d + j];
            }
        cr_assert(num / den < 0.03, "group %zu: relative error %g", g, num / den);
    }
    m->codec->destroy(st);
    free(codes);
    free(y);
    free(x);
}

/* Finite rows too close to FLT_MAX: a row whose rotation overflows is an error naming the input
 * vector and the cause (not a rotated element), and a row that encodes but whose reconstruction
 * overflows is the evaluator's error naming the vector, not a silent null vNMSE. */
Test(codec_rtn, rows_near_the_fp32_limit_are_named_errors) {
    const rb_method *m = rb_method_find("rtn");
    rb_params p;
    rb_params_init(&p, m->params, m->nparams);
    rb_params_set(&p, "rotation", "rht");
    void *st = NULL;
    cr_assert_eq(m->codec->create(&p, 64, 1, &st), 0);
    float x[3 * 64];
    for (size_t j = 0; j < 3 * 64; j++) x[j] = j < 64 || j >= 128 ? 1.0f : 4e37f;
    uint8_t *codes = malloc(3 * m->codec->code_bytes(st));
    cr_assert_eq(m->codec->encode(st, x, 3, codes), RB_ENUMERIC);
    cr_assert(
        strstr(rb_error_detail(), "rtn: vector 1 (norm 3.2e+38) overflows fp32 in the rotation"),
        "%s", rb_error_detail());
    x[64 + 7] = NAN;
    cr_assert_eq(m->codec->encode(st, x, 3, codes), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "rtn: vector 1 has a NaN or infinite coordinate"), "%s",
              rb_error_detail());
    free(codes);
    m->codec->destroy(st);

    rb_dataset ds = {0};
    rb_tensor *t;
    cr_assert_eq(rb_dataset_add(&ds, "x", 2, (size_t[]){4, 128}, &t), 0);
    float *v = t->data;
    for (size_t j = 0; j < 4 * 128; j++) v[j] = (float) (j % 7) - 3.0f;
    v[2 * 128] = 3e38f; /* row 2: finite, norm 3e38, all of it in one coordinate */
    const char *metrics[] = {"vnmse"};
    double got[4] = {NAN, NAN, NAN, NAN};
    cr_assert_eq(rb_eval_codec(m, &p, &ds, 9, metrics, 1, collect, got), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "rtn: vector 2 (norm 3e+38) decodes to"), "%s",
              rb_error_detail());
    cr_assert(isnan(got[0]), "no vNMSE for a failed cell");
    v[2 * 128] = 3e30f; /* well inside the range: fine */
    cr_assert_eq(rb_eval_codec(m, &p, &ds, 9, metrics, 1, collect, got), 0, "%s",
                 rb_error_detail());
    cr_assert(isfinite(got[0]) && got[0] < 0.1, "vnmse %g", got[0]);
    rb_dataset_free(&ds);

    /* Past the evaluator's first batch (4096 vectors) the codec's own numbering is within its
     * call, so the message says where that call starts. */
    rb_dataset big = {0};
    cr_assert_eq(rb_dataset_add(&big, "x", 2, (size_t[]){5000, 64}, &t), 0);
    for (size_t j = 0; j < 5000 * 64; j++) t->data[j] = (float) (j % 5) - 2.0f;
    for (size_t j = 0; j < 64; j++) t->data[4100 * 64 + j] = 4e37f;
    cr_assert_eq(rb_eval_codec(m, &p, &big, 9, metrics, 1, collect, got), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "rtn: vector 4 (norm 3.2e+38) overflows fp32 in the "
                                        "rotation"),
              "%s", rb_error_detail());
    cr_assert(strstr(rb_error_detail(), "(in the batch that starts at vector 4096 of the dataset)"),
              "%s", rb_error_detail());
    rb_dataset_free(&big);
}
