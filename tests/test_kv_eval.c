/* The KV evaluator on crafted caches with known answers: identical caches give zero error and
 * full top-k agreement, known scalings give the computed values, reversed scores give zero
 * overlap, per-head top-k rows single out the one reversed (layer, head), and a vector codec on
 * KV data matches the KV method with the same arithmetic; a non-finite reconstruction or score is
 * an error naming its place. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/eval.h"
#include "methods/method.h"
#include "tests/kv_fake.h"
#include "tests/testutil.h"

/* ---- a fake KV method: keeps K and V exactly and reads them back transformed ---- */
static float k_scale = 1, v_scale = 1;
static int k_reverse;      /* read token t's key as that of token T - 1 - t */
static long v_nan_at = -1; /* the element of V read back as NaN (-1: none) */

/* K scaled by k_scale (token t's key taken from token T - 1 - t when k_reverse), V by v_scale. */
static void distort(const rbt_kv_fake *f, float *K, float *V) {
    size_t row = f->g.heads * f->g.head_dim;
    for (size_t t = 0; t < f->tokens; t++) {
        size_t src = k_reverse ? f->tokens - 1 - t : t;
        for (size_t e = 0; e < row; e++) {
            K[t * row + e] = f->K[src * row + e] * k_scale;
            V[t * row + e] = f->V[t * row + e] * v_scale;
        }
    }
    if (v_nan_at >= 0) V[v_nan_at] = NAN;
}

/* ---- a sink that keeps values by name ---- */
typedef struct got {
    char name[16][32];
    double v[16];
    size_t n;
} got;
static int keep(void *ctx, const rb_metric_value *v) {
    got *g = ctx;
    snprintf(g->name[g->n], 32, "%s", v->metric->name);
    g->v[g->n++] = v->value;
    return 0;
}
static double value(const got *g, const char *name) {
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->name[i], name)) return g->v[i];
    cr_assert_fail("metric %s not reported", name);
    return NAN;
}

static const char *const all_metrics[] = {
    "logit_err",      "logit_err_max", "rel_mse_k",    "rel_mse_v",     "attn_kl", "attn_out_err",
    "attn_out_err_k", "topk_agree@1",  "topk_agree@8", "topk_agree@32", "bits"};
enum { NMETRICS = sizeof all_metrics / sizeof all_metrics[0] };

static void eval(const rb_method *m, const rb_params *p, const rb_dataset *ds, got *g) {
    memset(g, 0, sizeof *g);
    rbt_kv_fake_distort = distort;
    int rc = rb_eval_kv(m, p, ds, 7, all_metrics, NMETRICS, keep, g);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
}

/* A random cache: T tokens, H heads, D dims, nq queries of qh heads, optional prefill. */
static void random_cache(rb_dataset *ds, uint64_t seed, size_t T, size_t H, size_t D, size_t nq,
                         size_t qh, float prefill) {
    rb_tensor *K, *V, *Q, *meta;
    size_t ks[3] = {T, H, D}, qs[3] = {nq, qh, D}, ms[1] = {2};
    cr_assert_eq(rb_dataset_add(ds, "K", 3, ks, &K), 0);
    cr_assert_eq(rb_dataset_add(ds, "V", 3, ks, &V), 0);
    cr_assert_eq(rb_dataset_add(ds, "Q", 3, qs, &Q), 0);
    cr_assert_eq(rb_dataset_add(ds, "kv_meta", 1, ms, &meta), 0);
    rb_rng_normal_f32(seed, 1, 0, T * H * D, K->data);
    rb_rng_normal_f32(seed, 2, 0, T * H * D, V->data);
    rb_rng_normal_f32(seed, 3, 0, nq * qh * D, Q->data);
    meta->data[0] = prefill;
}

Test(kv_eval, identical_cache_gives_zero_error_and_full_agreement) {
    uint64_t seed = rbt_seed();
    rb_dataset ds = {0};
    random_cache(&ds, seed, 300, 2, 16, 5, 4, 100); /* GQA 2 query heads per KV head, decode */
    k_scale = v_scale = 1;
    k_reverse = 0;
    got g;
    eval(&rbt_kv_fake_method, NULL, &ds, &g);
    const char *zero[] = {"logit_err", "logit_err_max", "rel_mse_k",     "rel_mse_v",
                          "attn_kl",   "attn_out_err",  "attn_out_err_k"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        cr_assert_eq(value(&g, zero[i]), 0.0, "%s = %g (seed %llu)", zero[i], value(&g, zero[i]),
                     (unsigned long long) seed);
    cr_assert_eq(value(&g, "topk_agree@1"), 1.0);
    cr_assert_eq(value(&g, "topk_agree@8"), 1.0);
    cr_assert_eq(value(&g, "topk_agree@32"), 1.0);
    cr_assert_eq(value(&g, "bits"), 16.0);
    rb_dataset_free(&ds);
}

/* K_hat = (1 + e) K: logit_err = e and rel_mse_k = e^2; V exact: attn_out_err = attn_out_err_k.
 * V_hat = (1 + f) V with K exact: attn_out_err = f^2, attn_out_err_k = 0, KL = 0. The KL of the
 * scaled keys against a direct double-precision computation. */
Test(kv_eval, known_scalings_give_the_computed_values) {
    uint64_t seed = rbt_seed();
    size_t T = 200, H = 1, D = 8, nq = 3;
    rb_dataset ds = {0};
    random_cache(&ds, seed, T, H, D, nq, 1, 0);
    k_reverse = 0;
    k_scale = 1.25f;
    v_scale = 1;
    got g;
    eval(&rbt_kv_fake_method, NULL, &ds, &g);
    cr_assert_float_eq(value(&g, "logit_err"), 0.25, 1e-6, "seed %llu", (unsigned long long) seed);
    cr_assert_float_eq(value(&g, "rel_mse_k"), 0.0625, 1e-6);
    cr_assert_eq(value(&g, "rel_mse_v"), 0.0);
    cr_assert_float_eq(value(&g, "attn_out_err"), value(&g, "attn_out_err_k"), 1e-12);
    const rb_tensor *K = rb_dataset_tensor(&ds, "K"), *Q = rb_dataset_tensor(&ds, "Q");
    double kl = 0;
    for (size_t i = 0; i < nq; i++) {
        double s[200], mx = -INFINITY, mxh = -INFINITY, z = 0, zh = 0;
        for (size_t t = 0; t < T; t++) {
            s[t] = 0;
            for (size_t j = 0; j < D; j++) s[t] += (double) Q->data[i * D + j] * K->data[t * D + j];
            s[t] /= sqrt((double) D);
            mx = fmax(mx, s[t]);
            mxh = fmax(mxh, 1.25 * s[t]);
        }
        for (size_t t = 0; t < T; t++) {
            z += exp(s[t] - mx);
            zh += exp(1.25 * s[t] - mxh);
        }
        for (size_t t = 0; t < T; t++) {
            double lp = s[t] - mx - log(z), lph = 1.25 * s[t] - mxh - log(zh);
            kl += exp(lp) * (lp - lph);
        }
    }
    cr_assert_float_eq(value(&g, "attn_kl"), kl / (double) nq, 1e-5 * (1 + kl));
    cr_assert_gt(value(&g, "attn_kl"), 0.0);

    k_scale = 1;
    v_scale = 0.5f;
    eval(&rbt_kv_fake_method, NULL, &ds, &g);
    cr_assert_float_eq(value(&g, "attn_out_err"), 0.25, 1e-6);
    cr_assert_eq(value(&g, "attn_out_err_k"), 0.0);
    cr_assert_eq(value(&g, "attn_kl"), 0.0);
    cr_assert_float_eq(value(&g, "rel_mse_v"), 0.25, 1e-7);
    v_scale = 1;
    rb_dataset_free(&ds);
}

/* Scores t for token t (one query [1, 0]); reversed keys give scores T - 1 - t: the top 1 and
 * top 8 are disjoint, and top 32 of 16 tokens is every token. */
Test(kv_eval, reversed_scores_give_zero_topk_overlap) {
    size_t T = 16;
    rb_dataset ds = {0};
    rb_tensor *K, *V, *Q;
    size_t ks[3] = {T, 1, 2}, qs[3] = {1, 1, 2};
    cr_assert_eq(rb_dataset_add(&ds, "K", 3, ks, &K), 0);
    cr_assert_eq(rb_dataset_add(&ds, "V", 3, ks, &V), 0);
    cr_assert_eq(rb_dataset_add(&ds, "Q", 3, qs, &Q), 0);
    for (size_t t = 0; t < T; t++) {
        K->data[2 * t] = (float) t;
        V->data[2 * t] = 1;
    }
    Q->data[0] = 1;
    k_scale = v_scale = 1;
    k_reverse = 1;
    got g;
    eval(&rbt_kv_fake_method, NULL, &ds, &g);
    k_reverse = 0;
    cr_assert_eq(value(&g, "topk_agree@1"), 0.0);
    cr_assert_eq(value(&g, "topk_agree@8"), 0.0);
    cr_assert_eq(value(&g, "topk_agree@32"), 1.0);
    cr_assert_gt(value(&g, "logit_err"), 1.0);
    rb_dataset_free(&ds);
}

/* The vector codec rtn (fp32 scale and zero, no rotation) and the KV method rtn_kv at
 * scale_bits 32 do the same arithmetic per head row: the two paths give the same numbers. */
Test(kv_eval, vector_codec_on_kv_data_matches_rtn_kv) {
    uint64_t seed = rbt_seed();
    const rb_dataset_kind *k = rb_dataset_kind_find("kv_cache");
    rb_params dp, p1, p2;
    cr_assert_eq(rb_params_init(&dp, k->params, k->nparams), 0);
    cr_assert_eq(rb_params_set(&dp, "tokens", "257"), 0);
    cr_assert_eq(rb_params_set(&dp, "heads", "3"), 0);
    cr_assert_eq(rb_params_set(&dp, "head_dim", "64"), 0);
    cr_assert_eq(rb_params_set(&dp, "queries", "7"), 0);
    cr_assert_eq(rb_params_set(&dp, "prefill", "200"), 0);
    rb_dataset ds = {0};
    cr_assert_eq(k->load(&dp, seed, &ds), 0, "%s", rb_error_detail());
    const rb_method *rtn = rb_method_find("rtn"), *rkv = rb_method_find("rtn_kv");
    cr_assert_eq(rb_params_init(&p1, rtn->params, rtn->nparams), 0);
    cr_assert_eq(rb_params_init(&p2, rkv->params, rkv->nparams), 0);
    cr_assert_eq(rb_params_set(&p1, "bits", "3"), 0);
    cr_assert_eq(rb_params_set(&p2, "bits", "3"), 0);
    cr_assert_eq(rb_params_set(&p2, "scale_bits", "32"), 0);
    got a, b = {0};
    eval(rtn, &p1, &ds, &a);
    /* rb_eval_codec hands a KV method to the KV evaluator */
    cr_assert_eq(rb_eval_codec(rkv, &p2, &ds, 7, all_metrics, NMETRICS, keep, &b), 0);
    memset(&b, 0, sizeof b);
    eval(rkv, &p2, &ds, &b);
    for (size_t i = 0; i < NMETRICS; i++)
        cr_assert_eq(value(&a, all_metrics[i]), value(&b, all_metrics[i]),
                     "%s: %g vs %g (seed %llu)", all_metrics[i], value(&a, all_metrics[i]),
                     value(&b, all_metrics[i]), (unsigned long long) seed);
    cr_assert_gt(value(&a, "logit_err"), 0.01);
    rb_dataset_free(&ds);
}

Test(kv_eval, missing_queries_and_bad_shapes_are_named) {
    rb_dataset ds = {0};
    rb_tensor *K, *V;
    size_t ks[3] = {4, 1, 2}, vs[3] = {4, 1, 4};
    cr_assert_eq(rb_dataset_add(&ds, "K", 3, ks, &K), 0);
    cr_assert_eq(rb_dataset_add(&ds, "V", 3, ks, &V), 0);
    got g = {0};
    rbt_kv_fake_distort = distort;
    cr_assert_eq(rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, 1, all_metrics, NMETRICS, keep, &g),
                 RB_EINVAL);
    cr_assert_not_null(strstr(rb_error_detail(), "queries"), "%s", rb_error_detail());
    rb_dataset_free(&ds);
    cr_assert_eq(rb_dataset_add(&ds, "K", 3, ks, &K), 0);
    cr_assert_eq(rb_dataset_add(&ds, "V", 3, vs, &V), 0);
    const char *only[] = {"rel_mse_k"};
    cr_assert_eq(rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, 1, only, 1, keep, &g), RB_EINVAL);
    cr_assert_not_null(strstr(rb_error_detail(), "different shapes"), "%s", rb_error_detail());
    rb_dataset_free(&ds);
}

/* ---- topk_agree@k/head: per (layer, KV head) top-k overlap ---- */

enum { TK_L = 2, TK_T = 16, TK_H = 2 };

/* Reverses the keys of layer 1, head 0 only: that slice's top tokens become its bottom ones. */
static void reverse_one_slice(const rbt_kv_fake *f, float *K, float *V) {
    size_t D = f->g.head_dim, row = f->g.heads * D;
    memcpy(K, f->K, f->tokens * row * sizeof *K);
    memcpy(V, f->V, f->tokens * row * sizeof *V);
    if (f->layer != 1) return;
    for (size_t t = 0; t < f->tokens; t++)
        memcpy(K + t * row, f->K + (f->tokens - 1 - t) * row, D * sizeof *K);
}

typedef struct slice_row {
    char name[32], slice[32];
    double v;
} slice_row;
typedef struct slice_got {
    slice_row r[32];
    size_t n;
} slice_got;
static int keep_slices(void *ctx, const rb_metric_value *v) {
    slice_got *g = ctx;
    cr_assert_lt(g->n, 32);
    slice_row *r = &g->r[g->n++];
    snprintf(r->name, sizeof r->name, "%s", v->metric->name);
    snprintf(r->slice, sizeof r->slice, "%s", v->slice ? v->slice : "");
    r->v = v->value;
    return 0;
}
static double slice_value(const slice_got *g, const char *name, const char *slice) {
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->r[i].name, name) && !strcmp(g->r[i].slice, slice)) return g->r[i].v;
    cr_assert_fail("no row %s [%s]", name, slice);
    return NAN;
}

/* 2 layers x 16 tokens x 2 heads x 2 dims, token t's key [t, 0] in every head, one query [1, 0]
 * per head: scores t. Reversing layer 1 head 0 gives that slice top-1 and top-8 overlap 0, every
 * other slice 1, top 32 (capped at 16 tokens) 1 everywhere. topk_agree@k/head alone adds no
 * pooled row; asked beside it, the pooled topk_agree@1 is the mean over the 4 query rows. */
Test(kv_eval, topk_agree_per_head_rows) {
    rb_dataset ds = {0};
    rb_tensor *K, *V, *Q;
    size_t ks[4] = {TK_L, TK_T, TK_H, 2}, qs[4] = {TK_L, 1, TK_H, 2};
    cr_assert_eq(rb_dataset_add(&ds, "K", 4, ks, &K), 0);
    cr_assert_eq(rb_dataset_add(&ds, "V", 4, ks, &V), 0);
    cr_assert_eq(rb_dataset_add(&ds, "Q", 4, qs, &Q), 0);
    for (size_t l = 0; l < TK_L; l++)
        for (size_t t = 0; t < TK_T; t++)
            for (size_t h = 0; h < TK_H; h++) {
                K->data[((l * TK_T + t) * TK_H + h) * 2] = (float) t;
                V->data[((l * TK_T + t) * TK_H + h) * 2] = 1;
            }
    for (size_t e = 0; e < TK_L * TK_H; e++) Q->data[2 * e] = 1;
    const char *metrics[] = {"topk_agree@8/head", "topk_agree@1/head", "topk_agree@32/head",
                             "topk_agree@1"};
    slice_got g = {0};
    rbt_kv_fake_created = 0;
    rbt_kv_fake_distort = reverse_one_slice;
    cr_assert_eq(rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, 1, metrics, 4, keep_slices, &g), 0,
                 "%s", rb_error_detail());
    cr_assert_eq(g.n, 1 + 3 * TK_L * TK_H, "%zu rows", g.n);
    cr_assert_eq(slice_value(&g, "topk_agree@1", ""), 0.75);
    for (size_t l = 0; l < TK_L; l++)
        for (size_t h = 0; h < TK_H; h++) {
            char sl[32];
            snprintf(sl, sizeof sl, "layer=%zu,head=%zu", l, h);
            double want = l == 1 && h == 0 ? 0.0 : 1.0;
            cr_assert_eq(slice_value(&g, "topk_agree@1/head", sl), want, "%s", sl);
            cr_assert_eq(slice_value(&g, "topk_agree@8/head", sl), want, "%s", sl);
            cr_assert_eq(slice_value(&g, "topk_agree@32/head", sl), 1.0, "%s", sl);
        }
    for (size_t i = 0; i < g.n; i++)
        cr_assert(strcmp(g.r[i].name, "topk_agree@8") && strcmp(g.r[i].name, "topk_agree@32"),
                  "pooled %s emitted though only its /head rows were asked for", g.r[i].name);
    rb_dataset_free(&ds);
}

/* Which metrics need query tokens, as the evaluator and the run's preflight decide it: the
 * attention metrics and topk_agree, pooled or per slice; not the K/V errors or bits. */
Test(kv_eval, which_metrics_need_queries) {
    const char *none[] = {"rel_mse_k",      "rel_mse_v", "rel_mse_k/head",
                          "rel_mse_v/head", "bits",      "vnmse"};
    cr_assert_not(rb_eval_kv_needs_queries(none, sizeof none / sizeof none[0]));
    const char *one[] = {"logit_err",         "logit_err_max",    "attn_kl",      "attn_out_err",
                         "attn_out_err_k",    "logit_err/head",   "attn_kl/head", "topk_agree@8",
                         "attn_out_err/head", "topk_agree@8/head"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        const char *m[] = {"rel_mse_k", one[i]};
        cr_assert(rb_eval_kv_needs_queries(m, 2), "%s", one[i]);
        rb_method fake = {.name = "fake"};
        cr_assert_eq(rb_eval_kv_check_queries(&fake, m, 2, 3), RB_OK);
        cr_assert_eq(rb_eval_kv_check_queries(&fake, m, 2, 0), RB_EINVAL, "%s", one[i]);
        cr_assert(strstr(rb_error_detail(), "fake: the attention metrics need queries"), "%s",
                  rb_error_detail());
    }
}

/* What would surface only as null metrics is an error naming the place: a reconstructed cache
 * with a NaN or Inf (the method's fault), and true scores q.k that overflow fp32 (data past
 * what the KV loaders accept). */
Test(kv_eval, non_finite_caches_and_scores_are_named) {
    uint64_t seed = rbt_seed();
    size_t T = 20, H = 2, D = 8;
    rb_dataset ds = {0};
    random_cache(&ds, seed, T, H, D, 3, 2, 0);
    rbt_kv_fake_distort = distort;
    k_scale = v_scale = 1;
    k_reverse = 0;
    got g = {0};
    v_nan_at = (7 * (long) H + 1) * (long) D + 5; /* token 7, head 1, channel 5 */
    int rc = rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, 7, all_metrics, NMETRICS, keep, &g);
    v_nan_at = -1;
    cr_assert_eq(rc, RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(),
                     "the reconstructed value at token 7, head 1, channel 5 is NaN") != NULL,
              "%s", rb_error_detail());
    k_scale = INFINITY;
    memset(&g, 0, sizeof g);
    rc = rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, 7, all_metrics, NMETRICS, keep, &g);
    k_scale = 1;
    cr_assert_eq(rc, RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(),
                     "the reconstructed key at token 0, head 0, channel 0 is ") != NULL,
              "%s", rb_error_detail());
    /* token 4 of KV head 1 times query 2 of query head 1 (H = qh = 2: one query head a KV head) */
    float *K = ds.tensors[0].data, *Q = ds.tensors[2].data; /* random_cache's order */
    cr_assert(!strcmp(ds.tensors[0].name, "K") && !strcmp(ds.tensors[2].name, "Q"));
    for (size_t j = 0; j < D; j++) {
        K[(4 * H + 1) * D + j] = 1e30f;
        Q[(2 * 2 + 1) * D + j] = 1e20f;
    }
    memset(&g, 0, sizeof g);
    rc = rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, 7, all_metrics, NMETRICS, keep, &g);
    cr_assert_eq(rc, RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(),
                     "query head 1: the score q.k of query 2 and token 4 overflows fp32") != NULL,
              "%s", rb_error_detail());
    rb_dataset_free(&ds);
}
