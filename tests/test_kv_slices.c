/* Per (layer, head) KV metrics: NAME/head rows on a crafted cache whose per-head errors are
 * known, pooled rows unchanged and alone by default, and slices through records (row key, JSONL
 * round trip) and compare (matched per slice; rows written before slices existed still match). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/compare.h"
#include "harness/config.h"
#include "harness/eval.h"
#include "harness/record.h"
#include "methods/method.h"
#include "tests/kv_fake.h"
#include "tests/testutil.h"

enum { L = 2, T = 50, H = 3, D = 8, NQ = 4, HQ = 6 };

/* Layer l, head h of the reconstruction: K scaled by 1 + keps, V by 1 + veps. */
static const double keps[L][H] = {{0, 0.1, -0.2}, {0.05, 0, 0.3}};
static const double veps[L][H] = {{0.1, 0, 0}, {0, 0.2, 0}};

static void distort(const rbt_kv_fake *f, float *K, float *V) {
    size_t row = f->g.heads * f->g.head_dim;
    for (size_t e = 0; e < f->tokens * row; e++) {
        size_t h = e % row / f->g.head_dim;
        K[e] = (float) (f->K[e] * (1 + keps[f->layer][h]));
        V[e] = (float) (f->V[e] * (1 + veps[f->layer][h]));
    }
}

typedef struct row_got {
    char name[32], slice[32];
    double v;
} row_got;
typedef struct got {
    row_got r[64];
    size_t n;
} got;
static int keep(void *ctx, const rb_metric_value *v) {
    got *g = ctx;
    cr_assert_lt(g->n, 64);
    row_got *r = &g->r[g->n++];
    snprintf(r->name, sizeof r->name, "%s", v->metric->name);
    snprintf(r->slice, sizeof r->slice, "%s", v->slice ? v->slice : "");
    r->v = v->value;
    return 0;
}
static double find(const got *g, const char *name, const char *slice) {
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->r[i].name, name) && !strcmp(g->r[i].slice, slice)) return g->r[i].v;
    cr_assert_fail("no row %s [%s]", name, slice);
    return NAN;
}

/* A 4-d cache (layers x tokens x heads x dim) with GQA queries and decode steps. */
static void make_cache(rb_dataset *ds, uint64_t seed) {
    rb_tensor *K, *V, *Q, *meta;
    size_t ks[4] = {L, T, H, D}, qs[4] = {L, NQ, HQ, D}, ms[1] = {2};
    memset(ds, 0, sizeof *ds);
    cr_assert_eq(rb_dataset_add(ds, "K", 4, ks, &K), 0);
    cr_assert_eq(rb_dataset_add(ds, "V", 4, ks, &V), 0);
    cr_assert_eq(rb_dataset_add(ds, "Q", 4, qs, &Q), 0);
    cr_assert_eq(rb_dataset_add(ds, "kv_meta", 1, ms, &meta), 0);
    rb_rng_normal_f32(seed, 1, 0, L * T * H * D, K->data);
    rb_rng_normal_f32(seed, 2, 0, L * T * H * D, V->data);
    rb_rng_normal_f32(seed, 3, 0, L * NQ * HQ * D, Q->data);
    meta->data[0] = 40;
}

/* sum over the query heads of KV head h, queries and tokens of (q.k)^2 in layer l. */
static double logit_energy(const rb_dataset *ds, size_t l, size_t h) {
    const float *K = rb_dataset_tensor(ds, "K")->data, *Q = rb_dataset_tensor(ds, "Q")->data;
    double e = 0;
    for (size_t jq = h * (HQ / H); jq < (h + 1) * (HQ / H); jq++)
        for (size_t i = 0; i < NQ; i++)
            for (size_t t = 0; t < T; t++) {
                double s = 0;
                for (size_t j = 0; j < D; j++)
                    s += (double) Q[((l * NQ + i) * HQ + jq) * D + j] *
                         K[((l * T + t) * H + h) * D + j];
                e += s * s;
            }
    return e;
}

Test(kv_slices, per_head_values_match_the_known_errors) {
    uint64_t seed = rbt_seed();
    rb_dataset ds;
    make_cache(&ds, seed);
    const char *metrics[] = {"logit_err",      "logit_err/head", "rel_mse_k/head",
                             "rel_mse_v/head", "attn_kl/head",   "attn_out_err/head"};
    got g = {0};
    rbt_kv_fake_created = 0;
    rbt_kv_fake_distort = distort;
    int rc = rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, seed, metrics, 6, keep, &g);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    cr_assert_eq(g.n, 1 + 5 * L * H, "%zu rows", g.n);
    double num = 0, den = 0;
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            char sl[32];
            snprintf(sl, sizeof sl, "layer=%zu,head=%zu", l, h);
            double ke = keps[l][h], ve = veps[l][h];
            double le = find(&g, "logit_err/head", sl);
            cr_assert(fabs(le - fabs(ke)) <= 1e-5 + 1e-4 * fabs(ke),
                      "%s logit_err %g vs %g (seed %llu)", sl, le, fabs(ke),
                      (unsigned long long) seed);
            double rk = find(&g, "rel_mse_k/head", sl), rv = find(&g, "rel_mse_v/head", sl);
            cr_assert(fabs(rk - ke * ke) <= 1e-6 + 1e-4 * ke * ke, "%s rel_mse_k %g", sl, rk);
            cr_assert(fabs(rv - ve * ve) <= 1e-6 + 1e-4 * ve * ve, "%s rel_mse_v %g", sl, rv);
            double kl = find(&g, "attn_kl/head", sl), oe = find(&g, "attn_out_err/head", sl);
            if (ke == 0) {
                /* Exact keys: identical scores, so no KL, and the output error is V's alone. */
                cr_assert_eq(kl, 0.0, "%s attn_kl %g", sl, kl);
                cr_assert(fabs(oe - ve * ve) <= 1e-6 + 1e-4 * ve * ve, "%s out %g", sl, oe);
            } else {
                cr_assert_gt(kl, 0.0, "%s attn_kl %g (seed %llu)", sl, kl,
                             (unsigned long long) seed);
            }
            double e = logit_energy(&ds, l, h);
            num += ke * ke * e;
            den += e;
        }
    /* The pooled row is still there and pools the slices energy-weighted. */
    double pooled = find(&g, "logit_err", ""), want = sqrt(num / den);
    cr_assert(fabs(pooled - want) <= 1e-4 * want, "pooled %g vs %g (seed %llu)", pooled, want,
              (unsigned long long) seed);
    rb_dataset_free(&ds);
}

Test(kv_slices, no_slice_rows_unless_asked) {
    uint64_t seed = rbt_seed();
    rb_dataset ds;
    make_cache(&ds, seed);
    const char *metrics[] = {"logit_err", "rel_mse_k", "attn_kl"};
    got g = {0};
    rbt_kv_fake_created = 0;
    rbt_kv_fake_distort = distort;
    cr_assert_eq(rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, seed, metrics, 3, keep, &g), 0, "%s",
                 rb_error_detail());
    cr_assert_eq(g.n, 3);
    for (size_t i = 0; i < g.n; i++) cr_assert_str_empty(g.r[i].slice);
    rb_dataset_free(&ds);
}

/* Asking for slices leaves the pooled values bit-identical (results from before slices existed
 * still compare exactly). */
Test(kv_slices, pooled_values_do_not_depend_on_slices) {
    uint64_t seed = rbt_seed();
    rb_dataset ds;
    make_cache(&ds, seed);
    const char *metrics[] = {"logit_err",      "logit_err_max",    "attn_kl",      "attn_out_err",
                             "topk_agree@8",   "logit_err/head",   "attn_kl/head", "rel_mse_k/head",
                             "rel_mse_v/head", "attn_out_err/head"};
    got a = {0}, b = {0};
    rbt_kv_fake_created = 0;
    rbt_kv_fake_distort = distort;
    cr_assert_eq(rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, seed, metrics, 5, keep, &a), 0, "%s",
                 rb_error_detail());
    rbt_kv_fake_created = 0;
    rbt_kv_fake_distort = distort;
    cr_assert_eq(rb_eval_kv(&rbt_kv_fake_method, NULL, &ds, seed, metrics, 10, keep, &b), 0, "%s",
                 rb_error_detail());
    cr_assert_eq(a.n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(find(&b, a.r[i].name, ""), a.r[i].v, "%s (seed %llu)", a.r[i].name,
                     (unsigned long long) seed);
    rb_dataset_free(&ds);
}

/* ---- records and compare ---- */

static rb_record base(const char *metric, const char *slice, double value) {
    return (rb_record){.dataset = "kv",
                       .dataset_hash = "abc",
                       .family = "codec",
                       .method = "rtn_kv",
                       .label = "rtn_kv",
                       .method_version = 1,
                       .backend = "cpu",
                       .seed = 1,
                       .metric = metric,
                       .slice = slice,
                       .value = value,
                       .unit = "",
                       .n = 10,
                       .stderr_ = NAN,
                       .gbps = NAN,
                       .gflops = NAN,
                       .frac_bw = NAN,
                       .frac_peak = NAN,
                       .cpu_wait = NAN,
                       .cell_key = "cell"};
}

/* A results directory with one cell: pooled logit_err plus logit_err/head for 2 heads. */
static char *write_dir(double head1) {
    char tmpl[] = "/tmp/rbslicesXXXXXX";
    cr_assert(mkdtemp(tmpl));
    rb_results *res;
    cr_assert_eq(rb_results_open(tmpl, &res), 0, "%s", rb_error_detail());
    rb_record r = base("logit_err", NULL, 0.2);
    cr_assert_eq(rb_results_write(res, &r), 0);
    r = base("logit_err/head", "layer=0,head=0", 0.1);
    cr_assert_eq(rb_results_write(res, &r), 0);
    r = base("logit_err/head", "layer=0,head=1", head1);
    cr_assert_eq(rb_results_write(res, &r), 0);
    cr_assert_eq(rb_results_end_cell(res, "cell"), 0);
    rb_results_close(res);
    char path[128];
    snprintf(path, sizeof path, "%s/context.json", tmpl);
    FILE *f = fopen(path, "w");
    fputs("{\"build\": {\"git_sha\": \"abc\"}, \"run\": {\"config_sha256\": \"00\"}}\n", f);
    fclose(f);
    return strdup(tmpl);
}

static void remove_dir(char *dir) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(dir);
}

Test(kv_slices, records_round_trip_with_slices_in_the_key) {
    char *dir = write_dir(0.3);
    char path[128];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    json_t *rows;
    cr_assert_eq(rb_results_read(path, &rows), 0, "%s", rb_error_detail());
    cr_assert_eq(json_array_size(rows), 3);
    json_t *pooled = json_array_get(rows, 0), *h0 = json_array_get(rows, 1),
           *h1 = json_array_get(rows, 2);
    cr_assert(json_is_null(json_object_get(pooled, "slice")));
    cr_assert_str_eq(rb_row_str(h1, "slice"), "layer=0,head=1");
    char *k0 = rb_row_key(h0), *k1 = rb_row_key(h1), *kp = rb_row_key(pooled);
    cr_assert_str_neq(k0, k1);
    cr_assert(strstr(k1, "\"slice\":\"layer=0,head=1\""), "%s", k1);
    /* A pooled row written before slices existed (no field) has the pooled row's key. */
    json_t *old = json_deep_copy(pooled);
    json_object_del(old, "slice");
    char *ko = rb_row_key(old);
    cr_assert_str_eq(ko, kp);
    free(k0);
    free(k1);
    free(kp);
    free(ko);
    json_decref(old);
    /* CSV carries the slice column. */
    snprintf(path, sizeof path, "%s/results.csv", dir);
    cr_assert_eq(rb_results_write_csv(path, rows), 0);
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    cr_assert(strstr(buf, ",metric,slice,value,"), "%s", buf);
    cr_assert(strstr(buf, ",logit_err/head,\"layer=0,head=1\",0.3,"), "%s", buf);
    json_decref(rows);
    remove_dir(dir);
}

Test(kv_slices, compare_matches_each_slice) {
    char *a = write_dir(0.3), *same = write_dir(0.3), *worse = write_dir(0.33);
    char *text;
    size_t len;
    FILE *out = open_memstream(&text, &len);
    int rc = rb_compare(a, same, NULL, out);
    fclose(out);
    cr_assert_eq(rc, RB_COMPARE_OK, "%s", text);
    free(text);
    out = open_memstream(&text, &len);
    rc = rb_compare(a, worse, NULL, out);
    fclose(out);
    cr_assert_eq(rc, RB_COMPARE_REGRESSION, "%s", text);
    /* The regressed row is named with its slice; the other head is unchanged. */
    int found = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
        if (strstr(l, "[layer=0,head=1]") && strstr(l, "REGRESSION")) found = 1;
    cr_assert(found, "no regression line for head 1");
    free(text);
    remove_dir(a);
    remove_dir(same);
    remove_dir(worse);
}

/* configs/kv_attention.yaml (not run by CI) still loads; plot axes layer/head only with a
 * NAME/head y. */
Test(kv_slices, configs_accept_head_axis_only_for_sliced_metrics) {
    rb_config cfg;
    cr_assert_eq(rb_config_load("configs/kv_attention.yaml", &cfg), 0, "%s", rb_error_detail());
    rb_config_free(&cfg);
    char path[] = "/tmp/rbslicecfgXXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("name: t\ndatasets:\n  - {name: kv, kind: kv_cache, tokens: 64, heads: 2, head_dim: 16}\n"
          "methods:\n  - {method: rtn_kv}\nmetrics: [logit_err, logit_err/head]\n"
          "plots:\n  - {x: head, y: logit_err}\n",
          f);
    fclose(f);
    cr_assert_neq(rb_config_load(path, &cfg), 0);
    cr_assert(strstr(rb_error_detail(), "x 'head'"), "%s", rb_error_detail());
    unlink(path);
}
