/* The table of metrics (name, family, unit, direction, a line of documentation) and of the
 * family evaluators that compute them. */
#include <string.h>

#include "harness/eval.h"

static const rb_metric metrics[] = {
    {"vnmse", RB_FAMILY_CODEC, "", RB_BETTER_LOWER, "mean over vectors of |x - x_hat|^2 / |x|^2"},
    {"ip_slope", RB_FAMILY_CODEC, "", RB_BETTER_EXACT,
     "least-squares slope (through 0) of the estimated <y,x> on the true one; 1 = unbiased"},
    {"d_dprod", RB_FAMILY_CODEC, "", RB_BETTER_LOWER,
     "d * mean (<y,x> - est<y,x>)^2 over base x and queries y (unit vectors: d * D_prod)"},
    /* Recall@1@k: one row per k, named "recall@k" (harness/eval_codec.c reads k from the name,
     * so another k is one more line here). */
    {"recall@1", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector ranks first by estimated score"},
    {"recall@2", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 2"},
    {"recall@4", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 4"},
    {"recall@8", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 8"},
    {"recall@16", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 16"},
    {"recall@32", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 32"},
    {"recall@64", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 64"},
    {"bits", RB_FAMILY_CODEC, "bits", RB_BETTER_EXACT,
     "exact bits per coordinate of a code, side information included"},
    {"encode_latency", RB_FAMILY_CODEC, "s", RB_BETTER_LOWER,
     "median seconds to encode one batch (latency pass, Google Benchmark)"},
    {"decode_latency", RB_FAMILY_CODEC, "s", RB_BETTER_LOWER,
     "median seconds to decode one batch (latency pass, Google Benchmark)"},
};

const rb_metric *rb_metrics_all(size_t *count) {
    *count = sizeof metrics / sizeof metrics[0];
    return metrics;
}

const rb_metric *rb_metric_find(const char *name) {
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        if (strcmp(metrics[i].name, name) == 0) return &metrics[i];
    return NULL;
}

static const rb_eval_fn evaluators[RB_FAMILY_COUNT] = {
    [RB_FAMILY_CODEC] = rb_eval_codec,
};

rb_eval_fn rb_family_evaluator(rb_family f) {
    return (unsigned) f < RB_FAMILY_COUNT ? evaluators[f] : NULL;
}
