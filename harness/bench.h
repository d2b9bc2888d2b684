/* The kernel benchmark registry: a table of entries expanded into named instances. */
#ifndef RB_BENCH_H
#define RB_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dispatch.h"

enum { RB_BENCH_LIST_MAX = 8, RB_BENCH_NAME_MAX = 96, RB_BENCH_SPANS_MAX = 3 };

typedef struct rb_bench_args {
    size_t n, rows;
    int threads; /* pool threads (rb_threads_set) while the instance runs */
} rb_bench_args;

struct rb_bench_entry;

/* One expanded benchmark: "<entry>/[rows:R/]n:N/threads:T" and its buffers. */
typedef struct rb_bench_inst {
    const struct rb_bench_entry *entry;
    rb_bench_args args;
    char name[RB_BENCH_NAME_MAX];
    uint64_t seed;       /* Philox seed of the inputs (fixed per instance: same inputs every run) */
    float *x;            /* rows x n fp32 inputs, row stride n, 64-byte aligned (default setup) */
    void *aux;           /* anything a custom setup allocates */
    int64_t batch;       /* kernel calls per timing batch (tiny kernels amortize the loop) */
    rb_cost cost;        /* of one call */
    const char *variant; /* rb_kernel_last(entry->op) after the run */
    int saved_threads;
    /* Setup's check of the untimed call against the reference variants on the same input: 1 the
     * same bits, 0 different (verify_note says how), -1 not compared (setup failed first). */
    int verified;
    char verify_note[160];
    char binding[96]; /* rb_pool_binding() while it runs: how its threads share the cores */
} rb_bench_inst;

/* A piece of a call's output: the bytes the check against the reference compares. */
typedef struct rb_bench_span {
    const void *p;
    size_t bytes;
} rb_bench_span;

/* One table line. n is either the powers of two 2^log2_min..2^log2_max (when log2_max > 0) or
 * the zero-terminated list n[]; rows[] and threads[] are zero-terminated lists ({0}: {1}). */
typedef struct rb_bench_entry {
    const char *name;
    const rb_op *op;               /* its variant is recorded */
    int (*call)(rb_bench_inst *b); /* the timed call through the public kernel API */
    /* Work and traffic of one call on rows x n elements of elem_bytes: the kernel layer's own
     * cost functions (rb_fwht_cost, rb_hadamard_cost) plug in directly. */
    rb_cost (*cost)(size_t n, size_t rows, size_t elem_bytes);
    int (*setup)(rb_bench_inst *b);     /* NULL: x = rows x n Philox normals */
    void (*teardown)(rb_bench_inst *b); /* NULL: frees x */
    int log2_min, log2_max;
    size_t n[RB_BENCH_LIST_MAX];
    size_t rows[RB_BENCH_LIST_MAX];
    int threads[RB_BENCH_LIST_MAX];
    const void *arg; /* entry-specific (a codec entry's rb_method) */
    /* Where a call leaves its output for the first `rows` rows (at most RB_BENCH_SPANS_MAX
     * spans, returned count); NULL: in place in x, which setup refills before the reference. */
    size_t (*out)(const rb_bench_inst *b, size_t rows, rb_bench_span *spans);
    /* 0: the reference runs on all rows; otherwise on this many first rows (the slow reference
     * of a 1M-row codec would take longer than the benchmark itself). */
    size_t verify_rows;
} rb_bench_entry;

/* Expands the table into instances (buffers not yet allocated). threads_override, if count > 0,
 * replaces every entry's thread list. Free with rb_bench_instances_free. */
int rb_bench_instances(const int *threads_override, size_t count, rb_bench_inst **out,
                       size_t *n_out);

/* Replaces the shape of instances not yet set up: n (0: keep) everywhere, rows (0: keep) where
 * the instance has more than one row (one-vector instances stay one), then drops those whose new
 * name repeats an earlier one (an entry's table shapes collapse onto the one asked for).
 * Entries that do not support the shape refuse it in setup, with the reason. */
void rb_bench_reshape(rb_bench_inst *inst, size_t *count, size_t rows, size_t n);
void rb_bench_instances_free(rb_bench_inst *inst, size_t n);

/* Instance lifecycle for the benchmark wrapper (rb_gb_bench setup/body/teardown, ctx = inst):
 * setup sets the threads, allocates and fills, and makes one untimed call (which must succeed
 * and tells the variant), then the same call with the reference variants (RB_KERNELS=ref) on
 * the same input and compares the outputs bit for bit, the project's rule for every variant
 * (inst->verified; a mismatch is not a setup failure: the benchmark is timed and reported as
 * not verified); the body times batches of calls; teardown frees and restores. */
int rb_bench_setup(void *inst);
void rb_bench_teardown(void *inst);
struct rb_gb_state;
void rb_bench_body(struct rb_gb_state *st, void *inst);

/* CPU time over real time (medians) of a result, or -1 for a failed one. On one pool thread the
 * benchmark thread does all the work, so below 1 it was not running part of the time (other
 * processes had the core): the real time then includes waiting. */
struct rb_gb_result;
struct rb_gb_report;
double rb_bench_cpu_ratio(const struct rb_gb_result *r);
/* Below this ratio a one-thread benchmark counts as run on a busy machine. */
#define RB_BENCH_BUSY_RATIO 0.9
/* How many one-thread results of rep (inst: the instances rep's indices point into) ran below
 * RB_BENCH_BUSY_RATIO, and the lowest ratio among them in *worst (1 when none). */
size_t rb_bench_busy(const struct rb_gb_report *rep, const rb_bench_inst *inst, double *worst);

/* One benchmark result as JSON (name, samples, statistics, rates), shared by the CPU and CUDA
 * benchmark commands. */
struct json_t;
struct rb_gb_result;
struct json_t *rb_bench_result_json(const struct rb_gb_result *r);

/* `rotabench bench --cuda`: the CUDA benchmarks matching filter on device 0, with the
 * device-to-device copy limit measured first; exit status as rb_cmd_bench. */
int rb_bench_cuda(const char *filter, double min_time, int repetitions, int list,
                  const char *json_path);

#endif
