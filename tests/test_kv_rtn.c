/* rtn_kv: per-token grouped asymmetric INT-b on KV caches: error falls with bits, groups help on
 * outlier channels, fp16 side information, streaming equals one append, exact bits. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/record.h"
#include "methods/method.h"
#include "tests/testutil.h"

static double run(const char *bits, const char *group, const char *scale_bits, const float *K,
                  size_t T, size_t H, size_t D, double *bpe) {
    const rb_method *m = rb_method_find("rtn_kv");
    cr_assert_not_null(m);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    cr_assert_eq(rb_params_set(&p, "bits", bits), 0);
    cr_assert_eq(rb_params_set(&p, "group", group), 0);
    cr_assert_eq(rb_params_set(&p, "scale_bits", scale_bits), 0);
    rb_kv_geom g = {.heads = H, .head_dim = D, .capacity = T};
    void *st;
    cr_assert_eq(m->kv->create(&p, &g, 1, &st), 0, "%s", rb_error_detail());
    size_t row = H * D;
    cr_assert_eq(m->kv->append(st, K, K, T / 2), 0);
    for (size_t t = T / 2; t < T; t++)
        cr_assert_eq(m->kv->append(st, K + t * row, K + t * row, 1), 0);
    float *Kh = malloc(T * row * sizeof(float)), *Vh = malloc(T * row * sizeof(float));
    cr_assert_eq(m->kv->read(st, Kh, Vh), 0);
    cr_assert_eq(memcmp(Kh, Vh, T * row * sizeof(float)), 0); /* same input, same arithmetic */
    double e = 0, n = 0;
    for (size_t i = 0; i < T * row; i++) {
        e += ((double) Kh[i] - K[i]) * ((double) Kh[i] - K[i]);
        n += (double) K[i] * K[i];
    }
    *bpe = m->kv->bits(st);
    m->kv->destroy(st);
    free(Kh);
    free(Vh);
    return e / n;
}

Test(kv_rtn, error_bits_groups_and_side_information) {
    uint64_t seed = rbt_seed();
    size_t T = 64, H = 2, D = 128;
    float *K = rbt_normal_f32(T * H * D, seed, 1);
    for (size_t t = 0; t < T * H; t++) K[t * D + 5] = 8 + K[t * D + 5]; /* an outlier channel */
    double b, prev = INFINITY;
    for (int bits = 2; bits <= 8; bits++) {
        char s[4];
        snprintf(s, sizeof s, "%d", bits);
        double e = run(s, "0", "32", K, T, H, D, &b);
        cr_assert_lt(e, prev * 0.5, "bits %d: %g after %g (seed %llu)", bits, e, prev,
                     (unsigned long long) seed);
        cr_assert_float_eq(b, bits + 64.0 / 128.0, 1e-12);
        prev = e;
    }
    double whole = run("2", "0", "16", K, T, H, D, &b);
    cr_assert_float_eq(b, 2.25, 1e-12);
    double g32 = run("2", "32", "16", K, T, H, D, &b);
    cr_assert_float_eq(b, 3.0, 1e-12); /* 2 + 2 * 16 * 4 / 128 */
    cr_assert_lt(g32, whole, "groups of 32 isolate the outlier: %g vs %g", g32, whole);
    /* fp16 side information changes the result a little, not much. */
    double e32 = run("4", "0", "32", K, T, H, D, &b), e16 = run("4", "0", "16", K, T, H, D, &b);
    cr_assert_neq(e32, e16);
    cr_assert_lt(fabs(e16 - e32), 0.05 * e32);
    free(K);
}

/* Rows far from zero (x = 300 + U(0, 1): zero point about -4500 codes, which fp16 holds only to
 * a multiple of 4): with fp16 side information every element whose code is not clamped still
 * decodes within half a stored step of its input, i.e. the codes are chosen against the stored
 * (s16, z16), not shifted by z's rounding. */
Test(kv_rtn, fp16_zero_point_far_from_zero) {
    const rb_method *m = rb_method_find("rtn_kv");
    size_t T = 64, H = 2, D = 32, row = H * D;
    float *K = malloc(T * row * sizeof *K), *Kh = malloc(T * row * sizeof *Kh),
          *Vh = malloc(T * row * sizeof *Vh);
    rb_rng_uniform_f32(rbt_seed(), 1, 0, T * row, K);
    for (size_t i = 0; i < T * row; i++) K[i] += 300.0f;
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    rb_kv_geom g = {.heads = H, .head_dim = D, .capacity = T};
    void *st;
    cr_assert_eq(m->kv->create(&p, &g, 1, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(m->kv->append(st, K, K, T), 0);
    cr_assert_eq(m->kv->read(st, Kh, Vh), 0);
    size_t interior = 0;
    for (size_t r = 0; r < T * H; r++) {
        const float *x = K + r * D, *y = Kh + r * D;
        float mn = x[0], mx = x[0], ymn = y[0], ymx = y[0];
        for (size_t j = 1; j < D; j++) {
            mn = fminf(mn, x[j]);
            mx = fmaxf(mx, x[j]);
            ymn = fminf(ymn, y[j]);
            ymx = fmaxf(ymx, y[j]);
        }
        double step = (mx - mn) / 15.0; /* within fp16 rounding of the stored scale */
        for (size_t j = 0; j < D; j++) {
            if (y[j] == ymn || y[j] == ymx) continue; /* possibly clamped */
            interior++;
            cr_assert_leq(fabs((double) y[j] - x[j]), 0.5 * step * 1.01 + 1e-4,
                          "row %zu elem %zu: %g decodes to %g (step %g)", r, j, (double) x[j],
                          (double) y[j], step);
        }
    }
    cr_assert_gt(interior, T * H * D / 2);
    m->kv->destroy(st);
    free(K);
    free(Kh);
    free(Vh);
}

/* Every refused append names its place in the cache (token, head, key or value, and the group
 * or channel), found from the data rather than from the quantizer's message; the fp16 hint only
 * where fp32 would hold the pair. */
Test(kv_rtn, refused_appends_name_token_head_and_group) {
    const rb_method *m = rb_method_find("rtn_kv");
    size_t T = 3, H = 2, D = 16, row = H * D;
    float *K = malloc(T * row * sizeof *K), *V = malloc(T * row * sizeof *V);
    /* In (token t, head h) of K or V: channel j set to a and j + 1 to b (groups of 8), or, with
     * far, the whole group of j at 1e4 + 1e-3 k, whose zero point is beyond fp16. */
    static const struct {
        const char *sb;
        int in_v, far;
        size_t t, h, j;
        float a, b;
        const char *want;
        int hint; /* the message ends with the scale_bits: 32 hint */
    } cases[] = {
        {"32", 1, 0, 2, 0, 5, NAN, 0, "token 2, head 0, value channel 5 is nan", 0},
        {"16", 0, 0, 1, 1, 9, INFINITY, 0, "token 1, head 1, key channel 9 is inf", 0},
        {"32", 0, 0, 1, 1, 8, -3e38f, 3e38f, "token 1, head 1, key group 1: range", 0},
        {"16", 1, 0, 0, 1, 0, -3e38f, 3e38f, "token 0, head 1, value group 0: range", 0},
        {"16", 1, 1, 2, 1, 14, 0, 0, "token 2, head 1, value group 1: zero point", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rb_rng_uniform_f32(rbt_seed(), 3, 0, T * row, K);
        rb_rng_uniform_f32(rbt_seed(), 4, 0, T * row, V);
        float *r = (cases[i].in_v ? V : K) + cases[i].t * row + cases[i].h * D;
        if (cases[i].far) {
            for (size_t k = cases[i].j / 8 * 8; k < cases[i].j / 8 * 8 + 8; k++)
                r[k] = 1e4f + 1e-3f * (float) k;
        } else {
            r[cases[i].j] = cases[i].a;
            r[cases[i].j + 1] = cases[i].b;
        }
        rb_params p;
        cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
        cr_assert_eq(rb_params_set(&p, "scale_bits", cases[i].sb), 0);
        cr_assert_eq(rb_params_set(&p, "group", "8"), 0);
        rb_kv_geom g = {.heads = H, .head_dim = D, .capacity = T};
        void *st;
        cr_assert_eq(m->kv->create(&p, &g, 1, &st), 0, "%s", rb_error_detail());
        cr_assert_eq(m->kv->append(st, K, V, T), RB_ENUMERIC, "case %zu", i);
        const char *d = rb_error_detail();
        cr_assert(strstr(d, cases[i].want), "case %zu: got '%s', want '%s'", i, d, cases[i].want);
        cr_assert_eq(strstr(d, "; use scale_bits: 32") != NULL, cases[i].hint, "case %zu: '%s'", i,
                     d);
        m->kv->destroy(st);
    }
    free(K);
    free(V);
}

/* A row so far from zero that its zero point (-min / scale code units) exceeds fp16 cannot be
 * stored at scale_bits 16: an error naming the place (it used to saturate, clamping every code);
 * scale_bits 32 stores it. */
Test(kv_rtn, fp16_side_values_out_of_range_are_errors) {
    const rb_method *m = rb_method_find("rtn_kv");
    size_t T = 4, H = 2, D = 16, row = H * D;
    float *K = malloc(T * row * sizeof *K);
    rb_rng_uniform_f32(rbt_seed(), 2, 0, T * row, K);
    for (size_t j = 0; j < D; j++) K[3 * row + 1 * D + j] = 1e4f + 1e-3f * (float) j;
    for (const char *sb = "16"; sb; sb = strcmp(sb, "16") == 0 ? "32" : NULL) {
        rb_params p;
        cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
        cr_assert_eq(rb_params_set(&p, "scale_bits", sb), 0);
        rb_kv_geom g = {.heads = H, .head_dim = D, .capacity = T};
        void *st;
        cr_assert_eq(m->kv->create(&p, &g, 1, &st), 0, "%s", rb_error_detail());
        int rc = m->kv->append(st, K, K, T);
        if (sb[0] == '1') {
            cr_assert_eq(rc, RB_ENUMERIC);
            const char *d = rb_error_detail();
            cr_assert(strstr(d, "token 3") && strstr(d, "head 1") && strstr(d, "zero point") &&
                          strstr(d, "scale_bits: 32"),
                      "%s", d);
        } else {
            cr_assert_eq(rc, 0, "%s", rb_error_detail());
        }
        m->kv->destroy(st);
    }
    free(K);
}

/* scale_bits takes 16 or 32 only, in every KV method that has it: another width is rejected when
 * the parameter is set (a config names its file:line), with a message saying which two are
 * allowed, and the table's choices (what `rotabench list` prints) read "16|32". */
Test(kv_rtn, scale_bits_is_16_or_32) {
    static const char *const names[] = {"rtn_kv", "saw_int4", "rotatekv"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const rb_method *m = rb_method_find(names[i]);
        cr_assert_not_null(m, "%s", names[i]);
        rb_params p;
        cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
        const rb_param_def *d = rb_params_def(&p, "scale_bits");
        /* rtn_kv and saw_int4 record it as a number, as they always have (rotatekv's was an
         * enum, a string in its records, from the start): records of older runs still match */
        cr_assert_eq(d->type, i < 2 ? RB_PT_INT : RB_PT_ENUM, "%s", names[i]);
        cr_assert_str_eq(d->choices, "16|32", "%s", names[i]);
        cr_assert(strstr(d->doc, "16") && strstr(d->doc, "32"), "%s: %s", names[i], d->doc);
        cr_assert_eq(rb_params_set(&p, "scale_bits", "24"), RB_EINVAL, "%s", names[i]);
        cr_assert(strstr(rb_error_detail(), "'24' is not one of 16|32"), "%s: %s", names[i],
                  rb_error_detail());
        cr_assert_eq(rb_params_set(&p, "scale_bits", "16"), 0);
        cr_assert_eq(rb_params_set(&p, "scale_bits", "32"), 0);
        json_t *o = rb_params_to_json(&p);
        json_t *v = json_object_get(o, "scale_bits");
        cr_assert(i < 2 ? json_is_integer(v) && json_integer_value(v) == 32 : json_is_string(v),
                  "%s", names[i]);
        json_decref(o);
    }
}
