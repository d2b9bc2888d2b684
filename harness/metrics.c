/* The table of metrics (name, family, unit, direction, deterministic or measured, a line of
 * documentation) and of the family evaluators that compute them. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness/eval.h"

static const rb_metric metrics[] = {
    {"vnmse", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "mean over vectors of |x - x_hat|^2 / |x|^2"},
    {"ip_slope", RB_FAMILY_CODEC, "", RB_BETTER_EXACT, RB_DETERMINISTIC,
     "least-squares slope (through 0) of the estimated <y,x> on the true one; 1 = unbiased "
     "(standard error over base vectors, a vector's pairs kept together)"},
    {"d_dprod", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "d * mean (<y,x> - est<y,x>)^2 over base x and queries y (unit vectors: d * D_prod)"},
    {"ip_bias", RB_FAMILY_CODEC, "", RB_BETTER_EXACT, RB_DETERMINISTIC,
     "relative signed error of the estimated <y,x> toward the true score's sign: sum (est - <y,x>)"
     " sign(<y,x>) / sum |<y,x>| over the d_dprod pairs, each scaled by 1/(|x||y|); 0 = unbiased,"
     " a - 1 when E[est | <y,x>] = a <y,x> (TurboQuant_mse b=1: 2/pi - 1)"},
    /* Recall@1@k: one row per k, named "recall@k" (harness/eval_codec.c reads k from the name).
     * These are the rows a plain `list metrics` shows; any other recall@K, K in
     * 1..RB_RECALL_K_MAX, is accepted too (rb_metric_find makes its row). */
    {"recall@1", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of queries whose true top-1 <y,x> base vector ranks first by estimated score"},
    {"recall@2", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 2"},
    {"recall@4", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 4"},
    {"recall@8", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 8"},
    {"recall@16", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 16"},
    {"recall@32", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 32"},
    {"recall@64", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 64"},
    /* KV caches (harness/eval_kv.c, kv_cache.md section 5); topk_agree@k reads k from the name
     * like recall@k. */
    {"logit_err", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: sqrt(sum (q.k - q.k_hat)^2 / sum (q.k)^2) over queries, tokens, heads and layers"},
    {"logit_err_max", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: the largest logit_err of one (layer, query head)"},
    {"rel_mse_k", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: sum |k - k_hat|^2 / sum |k|^2"},
    {"rel_mse_v", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: sum |v - v_hat|^2 / sum |v|^2"},
    {"attn_kl", RB_FAMILY_CODEC, "nats", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: mean over query rows of KL(softmax(q K^T / sqrt d) || softmax(q K_hat^T / sqrt d))"},
    {"attn_out_err", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: |A V - A_hat V_hat|_F^2 / |A V|_F^2 (A: softmax rows)"},
    {"attn_out_err_k", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: |A V - A_hat V|_F^2 / |A V|_F^2 (the key error alone)"},
    /* Per (layer, KV head) breakdowns: a "NAME/head" metric in a config adds one row per slice
     * (rb_metric_value.slice "layer=L,head=H"; query heads of a GQA group pool into their KV
     * head) beside the pooled NAME, which it does not replace. */
    {"logit_err/head", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: logit_err of each (layer, head)"},
    {"rel_mse_k/head", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: rel_mse_k of each (layer, head)"},
    {"rel_mse_v/head", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: rel_mse_v of each (layer, head)"},
    {"attn_kl/head", RB_FAMILY_CODEC, "nats", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: attn_kl of each (layer, head)"},
    {"attn_out_err/head", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "KV: attn_out_err of each (layer, head)"},
    {"topk_agree@1", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "KV: fraction of query rows whose most-attended token is the same"},
    {"topk_agree@8", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "KV: mean overlap of the 8 most-attended tokens, / 8"},
    {"topk_agree@32", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "KV: mean overlap of the 32 most-attended tokens, / 32"},
    /* topk_agree@k per (layer, KV head), like the NAME/head rows above: NAME is topk_agree@k. */
    {"topk_agree@1/head", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "KV: topk_agree@1 of each (layer, head)"},
    {"topk_agree@8/head", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "KV: topk_agree@8 of each (layer, head)"},
    {"topk_agree@32/head", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "KV: topk_agree@32 of each (layer, head)"},
    {"bits", RB_FAMILY_CODEC, "bits", RB_BETTER_EXACT, RB_DETERMINISTIC,
     "exact bits per coordinate of a code (KV: per cached element), side information included"},
    {"encode_latency", RB_FAMILY_CODEC, "s", RB_BETTER_LOWER, RB_MEASURED_TIME,
     "median seconds to encode one batch, KV data: the whole cache (latency pass, Google "
     "Benchmark)"},
    {"decode_latency", RB_FAMILY_CODEC, "s", RB_BETTER_LOWER, RB_MEASURED_TIME,
     "median seconds to decode one batch, KV data: the whole cache (latency pass)"},
    {"inner_product_latency", RB_FAMILY_CODEC, "s", RB_BETTER_LOWER, RB_MEASURED_TIME,
     "median seconds to estimate the inner products of one batch of codes with every query, KV "
     "data: every query head against its cached keys (latency pass)"},
    {"success", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "fraction of trials with the exact support and every |X_hat - X| <= tol |X|"},
    {"success_lo", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "lower end of the 95% Wilson interval of success over the trials"},
    {"success_hi", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER, RB_DETERMINISTIC,
     "upper end of the 95% Wilson interval of success over the trials"},
    {"support_fp", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "mean recovered indices outside the true support, per trial"},
    {"support_fn", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "mean true support indices not recovered, per trial"},
    {"nmse", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "mean over trials of |X_hat - X|^2 / |X|^2 over the whole spectrum"},
    {"samples", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "mean signal samples queried per trial (repeats counted)"},
    {"samples_distinct", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER, RB_DETERMINISTIC,
     "mean distinct signal indices queried per trial"},
    {"time", RB_FAMILY_SPARSE, "s", RB_BETTER_LOWER, RB_MEASURED_TIME,
     "median wall seconds of one recovery (queries included) over the trials"},
    {"memory", RB_FAMILY_SPARSE, "MiB", RB_BETTER_LOWER, RB_MEASURED_MEMORY,
     "peak resident memory a recovery adds (largest over trials; Linux VmHWM after resetting it; "
     "includes the oracle's distinct-sample tracking when samples_distinct is computed)"},
    {"speedup", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER, RB_MEASURED_TIME,
     "fwht_full (fp32 kernel) time on the same signal / median recovery time (N <= 2^26)"},
};

const rb_metric *rb_metrics_all(size_t *count) {
    *count = sizeof metrics / sizeof metrics[0];
    return metrics;
}

size_t rb_metric_recall_k(const char *name) {
    static const char pre[] = "recall@";
    if (strncmp(name, pre, sizeof pre - 1) != 0) return 0;
    const char *k = name + sizeof pre - 1;
    size_t n = strlen(k);
    /* Digits only, no sign, space or leading zero: one K has one name, so rows match. */
    if (!n || strspn(k, "0123456789") != n || k[0] == '0') return 0;
    if (n > 9) return SIZE_MAX;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (size_t) (k[i] - '0');
    return v;
}

/* The rows of the recall@K the table does not list, made once, so that a metric row is always a
 * pointer into static storage (records keep v->metric->name) whichever thread asks first. */
static rb_metric recall_rows[RB_RECALL_K_MAX + 1];
static char recall_names[RB_RECALL_K_MAX + 1][sizeof "recall@" + 8];
static pthread_once_t recall_once = PTHREAD_ONCE_INIT;

static void recall_rows_make(void) {
    for (size_t k = 1; k <= RB_RECALL_K_MAX; k++) {
        snprintf(recall_names[k], sizeof recall_names[k], "recall@%zu", k);
        recall_rows[k] = (rb_metric){recall_names[k],
                                     RB_FAMILY_CODEC,
                                     "",
                                     RB_BETTER_HIGHER,
                                     RB_DETERMINISTIC,
                                     "fraction of queries whose true top-1 <y,x> base vector is in "
                                     "the estimated top K (K from the name)"};
    }
}

const rb_metric *rb_metric_find(const char *name) {
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        if (strcmp(metrics[i].name, name) == 0) return &metrics[i];
    size_t k = rb_metric_recall_k(name);
    if (k < 1 || k > RB_RECALL_K_MAX) return NULL;
    pthread_once(&recall_once, recall_rows_make);
    return &recall_rows[k];
}

static const rb_eval_fn evaluators[RB_FAMILY_COUNT] = {
    [RB_FAMILY_CODEC] = rb_eval_codec,
    [RB_FAMILY_SPARSE] = rb_eval_sparse,
};

rb_eval_fn rb_family_evaluator(rb_family f) {
    return (unsigned) f < RB_FAMILY_COUNT ? evaluators[f] : NULL;
}

int rb_eval_wants(const char *const *requested, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(requested[i], name) == 0) return 1;
    return 0;
}

int rb_eval_emit(rb_metric_sink sink, void *ctx, const char *name, double value, double se,
                 size_t n) {
    rb_metric_value v = {rb_metric_find(name), value, se, n, NULL};
    RB_ASSERT(v.metric != NULL);
    return sink(ctx, &v);
}

void rb_mean_se(const double *v, size_t n, double *mean, double *se) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    *mean = s / (double) n;
    for (size_t i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *se = n > 1 ? sqrt(s2 / (double) (n - 1) / (double) n) : NAN;
}
