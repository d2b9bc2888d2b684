/* Evaluators: the metrics of each method family, computed on a dataset outside any timed region. */
#ifndef RB_EVAL_H
#define RB_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/dataset.h"
#include "methods/method.h"

/* Whether a smaller value of a metric is better, a larger one, or neither (bits: any change
 * matters). compare uses this to tell regressions from improvements. */
typedef enum rb_better { RB_BETTER_LOWER, RB_BETTER_HIGHER, RB_BETTER_EXACT } rb_better;

/* Whether a metric's value is a function of the seed and the data alone (the same bits on every
 * run), or a measurement of the machine that differs between identical runs. The metric table is
 * the one place that says which metrics are measurements: compare grades deterministic values
 * against tight tolerances and measurements only by their raw samples (harness/compare.c). */
typedef enum rb_measured {
    RB_DETERMINISTIC = 0,
    RB_MEASURED_TIME,   /* a wall time, or a ratio of wall times */
    RB_MEASURED_MEMORY, /* resident memory */
} rb_measured;

typedef struct rb_metric {
    const char *name;
    rb_family family;
    const char *unit;
    rb_better better;
    rb_measured measured;
    const char *doc;
} rb_metric;

/* Every listed metric, in report order. */
const rb_metric *rb_metrics_all(size_t *count);
/* The row of a metric by name: a listed one, or recall@K for any K in 1..RB_RECALL_K_MAX (the
 * table lists a few K; the others get rows of their own). NULL for an unknown name. */
const rb_metric *rb_metric_find(const char *name);

/* The largest K of a recall@K metric; the evaluator also wants K <= the number of base vectors. */
#define RB_RECALL_K_MAX 1024
/* The K of a metric named "recall@K" with K in decimal (no sign, space or leading zero); 0 for
 * any other name, "recall@0" included; SIZE_MAX for a K too long to read. A K above
 * RB_RECALL_K_MAX comes back as it is, so that callers can say why it is refused. */
size_t rb_metric_recall_k(const char *name);

/* One computed value: the evaluator calls the sink once per metric it computed. */
typedef struct rb_metric_value {
    const rb_metric *metric;
    double value, stderr_; /* stderr_ NaN when not defined */
    size_t n;              /* sample size behind the value */
    const char *slice;     /* NULL: pooled; else the part of the data, "layer=0,head=3" */
} rb_metric_value;

typedef int (*rb_metric_sink)(void *ctx, const rb_metric_value *v);

/* A family's evaluator: runs method m (created with params p and seed) on dataset ds and reports
 * each requested metric of the family to sink; metrics of other families are skipped. Errors
 * name the cell's problem (missing tensor, dimension the method rejects). */
typedef int (*rb_eval_fn)(const rb_method *m, const rb_params *p, const rb_dataset *ds,
                          uint64_t seed, const char *const *metrics, size_t nmetrics,
                          rb_metric_sink sink, void *ctx);

int rb_eval_codec(const rb_method *m, const rb_params *p, const rb_dataset *ds, uint64_t seed,
                  const char *const *metrics, size_t nmetrics, rb_metric_sink sink, void *ctx);

/* Whether the codec evaluator needs queries for any of these metrics (ip_slope, d_dprod, ip_bias,
 * recall@K); and RB_OK, or its error when it does and the data have none of dimension d it can
 * use (have_queries 0). The evaluator and the run's preflight decide through these, so that a
 * cell is refused before the first runs with the words its evaluator would use. */
int rb_eval_codec_needs_queries(const char *const *metrics, size_t nmetrics);
int rb_eval_codec_check_queries(const rb_method *m, const char *const *metrics, size_t nmetrics,
                                size_t d, int have_queries);

/* KV caches (harness/eval_kv.c): KV methods and vector codecs on K/V/Q tensors, attention
 * metrics. rb_eval_codec hands these cells to it. */
int rb_eval_kv(const rb_method *m, const rb_params *p, const rb_dataset *ds, uint64_t seed,
               const char *const *metrics, size_t nmetrics, rb_metric_sink sink, void *ctx);
/* The same for the KV evaluator: whether the metrics need query tokens (the attention metrics
 * and topk_agree, pooled or per slice), and RB_OK or its error for nq query tokens. */
int rb_eval_kv_needs_queries(const char *const *metrics, size_t nmetrics);
int rb_eval_kv_check_queries(const rb_method *m, const char *const *metrics, size_t nmetrics,
                             size_t nq);
/* The KV evaluator's error for data without K and V (a KV method on vector data), which the
 * preflight gives too. */
int rb_eval_kv_no_cache(const rb_method *m);
/* The same for the vector codec evaluator (no 2-d 'x': a codec on a sparse signal) and the
 * sparse one (no signal oracle: a sparse method on vectors or a KV cache). */
int rb_eval_codec_no_vectors(const rb_method *m);
int rb_eval_sparse_no_signal(const rb_method *m);
/* The KV geometry's RoPE base and token positions from the dataset's optional kv_meta tensor
 * (layout in harness/eval_kv.c); *prefill (when not NULL) becomes its prefill when that is in
 * 1..tokens-1 and is left alone otherwise. heads, head_dim and capacity are the caller's. */
void rb_kv_meta_read(const rb_dataset *ds, size_t tokens, rb_kv_geom *g, size_t *prefill);
/* Sparse family (harness/eval_sparse.c): success (with Wilson bounds), support errors, spectrum
 * NMSE, samples, recovery time and speedup over fwht_full, over the method's `trials`. */
int rb_eval_sparse(const rb_method *m, const rb_params *p, const rb_dataset *ds, uint64_t seed,
                   const char *const *metrics, size_t nmetrics, rb_metric_sink sink, void *ctx);
/* Wilson score interval for a binomial proportion (z = 1.96 for 95%). */
void rb_wilson_interval(size_t successes, size_t n, double z, double *lo, double *hi);

/* Shared by the evaluators (harness/metrics.c): whether `name` is among the requested metrics;
 * one value to the sink (the metric must be in the table); mean and standard error of the mean
 * (NaN for n < 2). */
int rb_eval_wants(const char *const *metrics, size_t n, const char *name);
/* The estimated inner products of `rows` coded vectors with nq queries (rows x nq into out), as
 * the codec evaluator scores d*D_prod, ip_slope/ip_bias and recall and the latency pass times
 * them: the codec's own estimator when it has one (QJL, TurboQuant-prod), else <q, x_hat> by
 * GEMM on the decoded rows xh (rows x d; unused with an estimator). traced: the GEMM is the
 * timed op's work and goes into the row's kernel list (the latency pass), not the evaluator's
 * scoring (whose rows list the method's kernels). */
int rb_codec_scores(const rb_method *m, void *st, const uint8_t *codes, const float *xh,
                    size_t rows, size_t d, const float *q, size_t nq, float *out, int traced);

int rb_eval_emit(rb_metric_sink sink, void *ctx, const char *name, double value, double se,
                 size_t n);
void rb_mean_se(const double *v, size_t n, double *mean, double *se);

/* The evaluator of each family (NULL where none exists yet); a new family's evaluator is one
 * file and one entry here (harness/metrics.c). */
rb_eval_fn rb_family_evaluator(rb_family f);

#endif
