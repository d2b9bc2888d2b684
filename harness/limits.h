/* The machine's measured limits (copy and write bandwidth, peak fp32 add), timed like every
 * benchmark. */
#ifndef RB_LIMITS_H
#define RB_LIMITS_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "harness/gbench.h"

enum { RB_LIMITS_MAX = 8 };

typedef struct rb_limits_options {
    size_t copy_bytes; /* buffer copied per iteration; 0 = 256 MiB */
    double min_time;   /* seconds per repetition; 0 = 0.1 */
    int repetitions;   /* 0 = 5 */
} rb_limits_options;

/* The limits at one thread count. Rates are from the fastest repetition: a limit is a ceiling,
 * and other load on the machine only lowers samples. */
typedef struct rb_limit {
    int threads;
    double copy_memcpy_gbps;    /* memcpy, in chunks over the pool */
    double copy_stream_gbps;    /* rb_copy_stream (non-temporal stores where available) */
    double copy_gbps;           /* the better of the two: the bandwidth limit */
    const char *stream_variant; /* the rb_copy_stream variant that ran */
    /* rb_fill_stream alone (bytes written): the ceiling of a kernel that mostly writes, which
     * can sit well below copy_gbps (read + write) on some machines */
    double write_gbps;
    double peak_add_gflops; /* rb_peak_add_f32 */
    const char *peak_variant;
    /* Each measurement's copy_gbps and peak_add_gflops: the one rb_limits_measure took, and the
     * one rb_limits_fold took in later (0 until then). The fields above are the better of them. */
    double copy_gbps_start, copy_gbps_end, peak_start, peak_end;
} rb_limit;

typedef struct rb_limits {
    size_t count;
    rb_limit rows[RB_LIMITS_MAX];
    size_t copy_bytes;
    rb_gb_report report; /* the underlying runs, samples included */
} rb_limits;

/* Benchmark names: limits/copy_memcpy/threads:T, limits/copy_stream/threads:T,
 * limits/fill_stream/threads:T, limits/peak_add_f32/threads:T. */

/* Measures the limits at each of the `count` thread counts (duplicates are measured once, at
 * most RB_LIMITS_MAX distinct). Uses the best variants the CPU has whatever RB_KERNELS selects,
 * since a limit belongs to the machine, and restores the pool's thread count and the kernel
 * selection afterwards. Free with rb_limits_free. */
int rb_limits_measure(const int *threads, size_t count, const rb_limits_options *opt,
                      rb_limits *out);
/* A second measurement of the same thread counts (say after the benchmarks) into lim: every rate
 * becomes the better of the two, as a limit is a ceiling that other load only lowers, and the
 * rows keep both copy and peak figures (copy_gbps_end, peak_end). A row without a match in
 * later keeps its figures and an end of 0. */
void rb_limits_fold(rb_limits *lim, const rb_limits *later);
/* The largest change of the copy bandwidth between the two measurements of a row, as a fraction
 * of the larger (0.3: the lower was 30% below), and that row's thread count (when threads is not
 * NULL); 0 when nothing was folded. A shared machine's copy can move by half within minutes, so
 * percentages of it move too while compute-bound timings do not. */
double rb_limits_copy_drift(const rb_limits *lim, int *threads);
/* A row as JSON: threads, copy_gbps, copy_memcpy_gbps, copy_stream_gbps, stream_variant,
 * write_gbps, peak_add_gflops, peak_variant (what `bench --json` and `hw --json` share). */
json_t *rb_limit_json(const rb_limit *l);
/* The row for `threads`, or NULL. */
const rb_limit *rb_limits_find(const rb_limits *lim, int threads);
void rb_limits_free(rb_limits *lim);

/* The number of physical cores the pool would use for "all threads". */
int rb_limits_cores(void);
/* When threads exceed the physical cores (rb_pool_cores), one warning on f from command `cmd`:
 * the pool binds thread i to core i mod cores, so `what` (timings, latencies) are not those of
 * that many cores. Returns whether it warned. */
int rb_limits_warn_shared_cores(FILE *f, const char *cmd, int threads, const char *what);

#endif
