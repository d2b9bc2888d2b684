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
    {"recall@4", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 4"},
    {"recall@16", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 16"},
    {"recall@64", RB_FAMILY_CODEC, "", RB_BETTER_HIGHER,
     "fraction of queries whose true top-1 <y,x> base vector is in the estimated top 64"},
    {"bits", RB_FAMILY_CODEC, "bits", RB_BETTER_EXACT,
     "exact bits per coordinate of a code, side information included"},
    {"encode_latency", RB_FAMILY_CODEC, "s", RB_BETTER_LOWER,
     "median seconds to encode one batch (latency pass, Google Benchmark)"},
    {"decode_latency", RB_FAMILY_CODEC, "s", RB_BETTER_LOWER,
     "median seconds to decode one batch (latency pass, Google Benchmark)"},
    {"success", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER,
     "fraction of trials with the exact support and every |X_hat - X| <= tol |X|"},
    {"success_lo", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER,
     "lower end of the 95% Wilson interval of success over the trials"},
    {"success_hi", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER,
     "upper end of the 95% Wilson interval of success over the trials"},
    {"support_fp", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER,
     "mean recovered indices outside the true support, per trial"},
    {"support_fn", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER,
     "mean true support indices not recovered, per trial"},
    {"nmse", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER,
     "mean over trials of |X_hat - X|^2 / |X|^2 over the whole spectrum"},
    {"samples", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER,
     "mean signal samples queried per trial (repeats counted)"},
    {"samples_distinct", RB_FAMILY_SPARSE, "", RB_BETTER_LOWER,
     "mean distinct signal indices queried per trial"},
    {"time", RB_FAMILY_SPARSE, "s", RB_BETTER_LOWER,
     "median wall seconds of one recovery (queries included) over the trials"},
    {"speedup", RB_FAMILY_SPARSE, "", RB_BETTER_HIGHER,
     "fwht_full (fp32 kernel) time on the same signal / median recovery time (N <= 2^26)"},
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
    [RB_FAMILY_SPARSE] = rb_eval_sparse,
};

rb_eval_fn rb_family_evaluator(rb_family f) {
    return (unsigned) f < RB_FAMILY_COUNT ? evaluators[f] : NULL;
}
