/* The codec evaluator's recall@k metrics on hand-made codecs whose recall is known: an exact codec
 * (recall 1), a negating decoder (the true top-1 ranks last: recall 0), and estimators that rank
 * base vectors by index (the true top-1 of query j ranks t_j), through both the inner_product
 * path and ties broken by index. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/eval.h"
#include "methods/method.h"
#include "tests/codec_fake.h"
#include "tests/testutil.h"

/* The fake codec's mode: 0 exact, 1 negate on decode, 2 score = -index, 3 score = 0. */
static int fake_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    rbt_codec_fake *f = state;
    memcpy(xhat, codes, count * rbt_codec_fake_code_bytes(state));
    if (f->mode == 1)
        for (size_t i = 0; i < count * f->dim; i++) xhat[i] = -xhat[i];
    return 0;
}
/* The base vectors are one-hot: the index of vector i is where its 1 is. */
static int fake_ip(void *state, const uint8_t *codes, size_t count, const float *q, size_t nq,
                   float *out) {
    rbt_codec_fake *f = state;
    (void) q;
    for (size_t i = 0; i < count; i++) {
        float x[2048];
        memcpy(x, codes + i * rbt_codec_fake_code_bytes(f), rbt_codec_fake_code_bytes(f));
        size_t idx = 0;
        while (x[idx] != 1.0f) idx++;
        for (size_t j = 0; j < nq; j++) out[i * nq + j] = f->mode == 2 ? -(float) idx : 0.0f;
    }
    return 0;
}
static const rb_codec_ops decode_ops = {RBT_CODEC_FAKE_OPS, .decode = fake_decode};
static const rb_codec_ops ip_ops = {RBT_CODEC_FAKE_OPS, .decode = fake_decode,
                                    .inner_product = fake_ip};

static const char *const recall_names[] = {"recall@1", "recall@4", "recall@16", "recall@64"};

typedef struct got {
    double v[4], se[4];
    size_t n[4], rows;
} got;

static int collect(void *ctx, const rb_metric_value *v) {
    got *g = ctx;
    g->rows++;
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(v->metric->name, recall_names[i])) {
            g->v[i] = v->value;
            g->se[i] = v->stderr_;
            g->n[i] = v->n;
        }
    return 0;
}

/* N one-hot base vectors e_0 .. e_{N-1} (d = N; N > the evaluator's block of 512) and queries
 * q_j = e_{t_j} (plus a little noise on other coordinates, below 1), so the true top-1 of query j
 * is t_j. */
enum { N = 1100 };
static const size_t targets[] = {0, 2, 3, 5, 10, 20, 40, 63, 64, 600, 1099};
enum { NQ = sizeof targets / sizeof targets[0] };

static void build(rb_dataset *ds, uint64_t seed) {
    memset(ds, 0, sizeof *ds);
    rb_tensor *x, *q;
    cr_assert_eq(rb_dataset_add(ds, "x", 2, (size_t[]){N, N}, &x), 0);
    cr_assert_eq(rb_dataset_add(ds, "queries", 2, (size_t[]){NQ, N}, &q), 0);
    for (size_t i = 0; i < N; i++) x->data[i * N + i] = 1.0f;
    float *noise = rbt_normal_f32(NQ * N, seed, 1);
    for (size_t j = 0; j < NQ; j++)
        for (size_t k = 0; k < N; k++)
            q->data[j * N + k] = k == targets[j] ? 1.0f : 0.1f * tanhf(noise[j * N + k]);
    free(noise);
}

static got run(const rb_codec_ops *ops, int mode, uint64_t seed) {
    rb_method m = {.name = "fake", .family = RB_FAMILY_CODEC, .codec = ops};
    rb_params p;
    cr_assert_eq(rb_params_init(&p, NULL, 0), 0);
    rb_dataset ds;
    build(&ds, seed);
    rbt_codec_fake_mode = mode;
    got g = {{NAN, NAN, NAN, NAN}, {NAN, NAN, NAN, NAN}, {0}, 0};
    int rc = rb_eval_codec(&m, &p, &ds, 1, recall_names, 4, collect, &g);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    rb_dataset_free(&ds);
    cr_assert_eq(g.rows, 4);
    return g;
}

static void expect(const got *g, const double *want, const char *what) {
    for (size_t i = 0; i < 4; i++) {
        cr_assert_float_eq(g->v[i], want[i], 1e-12, "%s %s: %g, want %g", what, recall_names[i],
                           g->v[i], want[i]);
        cr_assert_float_eq(g->se[i], sqrt(want[i] * (1 - want[i]) / NQ), 1e-12, "%s se", what);
        cr_assert_eq(g->n[i], NQ);
    }
}

Test(eval_recall, exact_codec_has_recall_one) {
    const double one[4] = {1, 1, 1, 1};
    got g = run(&decode_ops, 0, rbt_seed());
    expect(&g, one, "exact");
}

Test(eval_recall, reversed_ranking_has_recall_zero) {
    const double zero[4] = {0, 0, 0, 0};
    got g = run(&decode_ops, 1, rbt_seed());
    expect(&g, zero, "negated");
}

/* Estimated rank of base vector i is i, so query j hits at k iff t_j < k:
 * k = 1: {0}; 4: {0, 2, 3}; 16: {.., 5, 10}; 64: {.., 20, 40, 63} (64, 600, 1099 never). */
Test(eval_recall, ranking_by_index_gives_the_counted_recall) {
    const double want[4] = {1.0 / NQ, 3.0 / NQ, 5.0 / NQ, 8.0 / NQ};
    uint64_t seed = rbt_seed();
    got g = run(&ip_ops, 2, seed);
    expect(&g, want, "by index");
    /* All estimates equal: ties go to the lower index, the same ranking. */
    g = run(&ip_ops, 3, seed);
    expect(&g, want, "all tied");
}

Test(eval_recall, metrics_are_in_the_table_and_need_queries) {
    for (size_t i = 0; i < 4; i++) {
        const rb_metric *mt = rb_metric_find(recall_names[i]);
        cr_assert_not_null(mt, "%s", recall_names[i]);
        cr_assert_eq(mt->better, RB_BETTER_HIGHER);
        cr_assert_eq(mt->family, RB_FAMILY_CODEC);
    }
    rb_method m = {.name = "fake", .family = RB_FAMILY_CODEC, .codec = &decode_ops};
    rb_params p;
    rb_params_init(&p, NULL, 0);
    rb_dataset ds = {0};
    rb_tensor *x;
    cr_assert_eq(rb_dataset_add(&ds, "x", 2, (size_t[]){4, 8}, &x), 0);
    got g = {{0}, {0}, {0}, 0};
    cr_assert_eq(rb_eval_codec(&m, &p, &ds, 1, recall_names, 1, collect, &g), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "recall@k"), "%s", rb_error_detail());
    rb_dataset_free(&ds);
}

/* Any recall@K, not only the listed ones: the same counting by index at K = 3, 10, 600 and the
 * largest K. */
static const char *const any_names[] = {"recall@3", "recall@10", "recall@600", "recall@1024"};

typedef struct got_any {
    double v[4];
    size_t rows;
} got_any;

static int collect_any(void *ctx, const rb_metric_value *v) {
    got_any *g = ctx;
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(v->metric->name, any_names[i])) {
            g->v[i] = v->value;
            g->rows++;
        }
    return 0;
}

/* t_j < K: K = 3: {0, 2}; 10: {0, 2, 3, 5}; 600: all but 600 and 1099; 1024: all but 1099. */
Test(eval_recall, any_k_is_computed) {
    rb_method m = {.name = "fake", .family = RB_FAMILY_CODEC, .codec = &ip_ops};
    rb_params p;
    rb_params_init(&p, NULL, 0);
    rb_dataset ds;
    build(&ds, rbt_seed());
    rbt_codec_fake_mode = 2;
    got_any g = {{NAN, NAN, NAN, NAN}, 0};
    cr_assert_eq(rb_eval_codec(&m, &p, &ds, 1, any_names, 4, collect_any, &g), 0, "%s",
                 rb_error_detail());
    cr_assert_eq(g.rows, 4);
    const double want[4] = {2.0 / NQ, 4.0 / NQ, (NQ - 2.0) / NQ, (NQ - 1.0) / NQ};
    for (size_t i = 0; i < 4; i++)
        cr_assert_float_eq(g.v[i], want[i], 1e-12, "%s: %g, want %g", any_names[i], g.v[i],
                           want[i]);
    rb_dataset_free(&ds);
    /* K above the base size is an error naming the metric. */
    rb_tensor *x, *q;
    cr_assert_eq(rb_dataset_add(&ds, "x", 2, (size_t[]){4, 8}, &x), 0);
    cr_assert_eq(rb_dataset_add(&ds, "queries", 2, (size_t[]){2, 8}, &q), 0);
    for (size_t i = 0; i < 4; i++) x->data[i * 8 + i] = 1.0f;
    const char *const over[] = {"recall@4", "recall@5"};
    m.codec = &decode_ops;
    rbt_codec_fake_mode = 0;
    cr_assert_eq(rb_eval_codec(&m, &p, &ds, 1, over, 1, collect_any, &g), 0, "%s",
                 rb_error_detail());
    cr_assert_eq(rb_eval_codec(&m, &p, &ds, 1, over, 2, collect_any, &g), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "'recall@5'"), "%s", rb_error_detail());
    cr_assert(strstr(rb_error_detail(), "4 vectors"), "%s", rb_error_detail());
    rb_dataset_free(&ds);
}

/* recall@K names: any K in 1..RB_RECALL_K_MAX written plainly, one row per K (the listed ones
 * keep their table row), nothing else. */
Test(eval_recall, any_k_metric_rows) {
    const rb_metric *t = rb_metric_find("recall@10");
    cr_assert_not_null(t);
    cr_assert_str_eq(t->name, "recall@10");
    cr_assert_eq(t->better, RB_BETTER_HIGHER);
    cr_assert_eq(t->family, RB_FAMILY_CODEC);
    cr_assert_eq(rb_metric_find("recall@10"), t, "one row per K");
    char top[32];
    snprintf(top, sizeof top, "recall@%d", RB_RECALL_K_MAX);
    cr_assert_not_null(rb_metric_find(top));
    cr_assert_str_eq(rb_metric_find(top)->name, top);
    size_t n;
    const rb_metric *all = rb_metrics_all(&n);
    const rb_metric *r16 = rb_metric_find("recall@16");
    cr_assert(r16 >= all && r16 < all + n, "recall@16 is the table's row");
    cr_assert_eq(rb_metric_recall_k("recall@16"), 16);
    cr_assert_eq(rb_metric_recall_k("recall@5000"), 5000);
    cr_assert_eq(rb_metric_recall_k("recall@99999999999"), SIZE_MAX);
    snprintf(top, sizeof top, "recall@%d", RB_RECALL_K_MAX + 1);
    const char *const bad[] = {"recall@0",  "recall@",  "recall@01", "recall@+5", "recall@ 5",
                               "recall@5x", "recall@x", "recall@-1", top,         "recall@1@10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_null(rb_metric_find(bad[i]), "%s", bad[i]);
    cr_assert_eq(rb_metric_recall_k("recall@0"), 0);
    cr_assert_eq(rb_metric_recall_k("recall@01"), 0);
    cr_assert_eq(rb_metric_recall_k("vnmse"), 0);
}
