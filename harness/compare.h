/* `rotabench compare`: two results directories, rows matched on their identity, accuracy metrics
 * against tolerances, latency by a Mann-Whitney U test on raw samples plus a relative threshold,
 * measurements without samples shown but not graded, printed as a benchstat-style table. */
#ifndef RB_COMPARE_H
#define RB_COMPARE_H

#include <stdio.h>

#include "harness/cpu_wait.h"
#include "harness/eval.h"

typedef struct rb_compare_opts {
    double rtol;              /* accuracy: relative tolerance on |new - old| (of |old|) */
    double atol;              /* accuracy: absolute tolerance; the larger of the two applies */
    double latency_threshold; /* latency: relative change of the median that matters */
    double alpha;             /* latency: significance level of the two-sided U test */
    double max_cpu_wait;      /* latency: a row whose cpu_wait (harness/cpu_wait.h) exceeds this on
                               * either side was timed on a busy machine and is not graded */
    int strict; /* blind or busy latency rows (no change could be seen in them) fail: exit 2 */
    int changes_only; /* print only the rows that are not unchanged */
} rb_compare_opts;

/* Results are deterministic (same seed, same bits), so the accuracy tolerance is tight. */
#define RB_COMPARE_OPTS_DEFAULT                                            \
    {                                                                      \
        .rtol = 1e-6, .atol = 0, .latency_threshold = 0.10, .alpha = 0.01, \
        .max_cpu_wait = RB_CPU_WAIT_BUSY                                   \
    }

/* rb_compare's results, also the exit status of `rotabench compare`. */
enum {
    RB_COMPARE_OK = 0,           /* every row compared, no regression */
    RB_COMPARE_REGRESSION = 1,   /* at least one regression, everything else compared */
    RB_COMPARE_INCOMPARABLE = 2, /* missing or malformed files, different config sha256, method
                                    versions or data (dataset_hash) that differ, rows on one side
                                    only; with strict, blind or busy latency rows */
};

/* Which way a metric is better: the metric registry's answer (harness/eval.h) for registered
 * metrics; for other names (results written by another version) a fallback pattern table in
 * compare.c; RB_BETTER_EXACT (any change beyond the tolerance is a regression) when neither
 * knows the name. */
rb_better rb_metric_direction(const char *metric);

/* Compares base_dir against new_dir (each with context.json and results.jsonl) and prints the
 * context items that differ (machine, threads, kernel selection, build, GPU), the tables (a
 * timing row whose kernel_variants differ says which), the problems found and a summary line
 * to out. A context that differs changes no verdict. o may be NULL (defaults). Returns one of
 * RB_COMPARE_*; RB_COMPARE_INCOMPARABLE wins over RB_COMPARE_REGRESSION (the rows that could be
 * compared are still diffed and printed). */
int rb_compare(const char *base_dir, const char *new_dir, const rb_compare_opts *o, FILE *out);

#endif
