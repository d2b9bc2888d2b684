/* A small C API over Google Benchmark: register C callbacks, run them, get every sample back. */
#ifndef RB_GBENCH_H
#define RB_GBENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The running benchmark, handed to the body; only the rb_gb_* calls below may touch it. */
typedef struct rb_gb_state rb_gb_state;

/* The timed body: it loops `while (rb_gb_keep_running(st)) { ... }` (or the batch form) and
 * does its one-time work before the loop, which is not timed. */
typedef void (*rb_gb_body_fn)(rb_gb_state *st, void *ctx);
/* Optional, outside all timing: setup runs once before the benchmark's first run, teardown once
 * after its last (before the next benchmark's setup). A nonzero setup return (an RB_E* code)
 * marks the benchmark failed with rb_error_detail() as its message; teardown still runs. */
typedef int (*rb_gb_setup_fn)(void *ctx);
typedef void (*rb_gb_teardown_fn)(void *ctx);

typedef struct rb_gb_options {
    double min_time;    /* seconds one repetition runs at least; 0 = the library's 0.5 s */
    double warmup_time; /* seconds run and discarded before the first repetition; 0 = none */
    int repetitions;    /* samples to keep; 0 = 1 */
    int threads;        /* Google Benchmark threads running the body concurrently; 0 = 1.
                           Kernel threads are the pool's (rb_threads_set), not these. */
    int manual_time;    /* the body reports each iteration's time with rb_gb_set_iteration_time */
    /* Work per iteration, for the rates: bytes -> GB/s, flops -> GFLOP/s, items -> items/s.
     * The body may replace them with rb_gb_set_cost (e.g. when only setup knows the size). */
    double bytes, flops, items;
} rb_gb_options;

/* One registered benchmark. The caller owns the array and everything it points to. */
typedef struct rb_gb_bench {
    const char *name; /* unique within a run; the filter regex is matched against it */
    rb_gb_body_fn body;
    rb_gb_setup_fn setup;       /* may be NULL */
    rb_gb_teardown_fn teardown; /* may be NULL */
    void *ctx;
    rb_gb_options opt;
} rb_gb_bench;

/* Inside the body. keep_running: one more iteration? keep_running_batch: `batch` more
 * iterations (the body runs that many before asking again), so per-call overhead is amortized
 * for kernels that take nanoseconds. */
int rb_gb_keep_running(rb_gb_state *st);
int rb_gb_keep_running_batch(rb_gb_state *st, int64_t batch);
void rb_gb_pause_timing(rb_gb_state *st);
void rb_gb_resume_timing(rb_gb_state *st);
/* Manual time: the seconds the iteration just finished took (e.g. from CUDA events). */
void rb_gb_set_iteration_time(rb_gb_state *st, double seconds);
/* Replaces the per-iteration work given in the options (negative leaves a value unchanged). */
void rb_gb_set_cost(rb_gb_state *st, double bytes, double flops, double items);
/* Marks the run failed; the body must then return without entering its loop again. */
void rb_gb_skip_with_error(rb_gb_state *st, const char *message);
int rb_gb_thread_index(const rb_gb_state *st);
int64_t rb_gb_iterations(const rb_gb_state *st);

/* Summary of a set of samples (sample standard deviation, n - 1; 0 for one sample). */
typedef struct rb_gb_stats {
    double median, mean, stddev, min, max;
} rb_gb_stats;

/* One repetition: time per iteration (nanoseconds) and the iterations it ran. Real time is wall
 * time (or the manual time); cpu time is the library's: the calling thread's only, so for a
 * kernel that uses the pool it undercounts. With library threads > 1, iterations add up over the
 * threads and the time is per iteration of all of them together (the library's convention). */
typedef struct rb_gb_sample {
    double real_ns, cpu_ns;
    int64_t iterations;
} rb_gb_sample;

typedef struct rb_gb_result {
    char *name;
    size_t index;             /* into the rb_gb_bench array given to rb_gb_run */
    int ok;                   /* 0: failed, see error */
    char *error;              /* NULL when ok */
    int manual_time, threads; /* threads: the library threads it ran with */
    int64_t iterations;       /* over all repetitions */
    size_t nsamples;
    rb_gb_sample *samples; /* every repetition, in order; aggregates are never mixed in */
    rb_gb_stats real_ns, cpu_ns;
    double bytes, flops, items;       /* per iteration */
    double gbps, gflops, items_per_s; /* per-iteration work / median real time; 0 if no work */
} rb_gb_result;

/* What a run returns: the results in registration order, and what may distort them. */
typedef struct rb_gb_report {
    rb_gb_result *results;
    size_t count;
    int library_debug;   /* libbenchmark was built without NDEBUG: timings may be affected */
    int build_optimized; /* this program was compiled with optimization (__OPTIMIZE__) */
    int cpu_scaling;     /* 1 frequency scaling enabled, 0 disabled, -1 unknown */
    int num_cpus;
    double cpu_mhz;
} rb_gb_report;

/* Runs the benchmarks whose name matches the POSIX extended regex `filter` (NULL or "" = all;
 * a leading '-' inverts it, as in --benchmark_filter) and fills *out, which the caller frees
 * with rb_gb_report_free. Registrations live only inside this call. Runs are serialized across
 * threads. Returns RB_EINVAL for a bad filter, a duplicate name or a missing body. A benchmark
 * that fails (setup error, skip_with_error) is reported with ok = 0; the run goes on. */
int rb_gb_run(const rb_gb_bench *benches, size_t count, const char *filter, rb_gb_report *out);
void rb_gb_report_free(rb_gb_report *report);

/* Whether `name` would be run under `filter` (same rules as rb_gb_run): 1 yes, 0 no, RB_EINVAL
 * for a bad regex. Lets callers see the selection before running anything. */
int rb_gb_filter_matches(const char *filter, const char *name);

/* The build-quality facts alone, without running anything (fills the four context fields). */
void rb_gb_context(rb_gb_report *out);

/* Statistics of n values (any order); used for the samples and usable by callers. */
rb_gb_stats rb_gb_stats_of(const double *values, size_t n);

#ifdef __cplusplus
}
#endif

#endif
