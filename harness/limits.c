/* Machine limits: copy bandwidth (memcpy and streaming stores), the write bandwidth of streaming
 * stores alone and peak fp32 add throughput, at given thread counts, run through the Google
 * Benchmark wrapper like the kernel benchmarks. */
#include "harness/limits.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/peak.h"

/* Large enough that each pool task runs far longer than handing it out (tens of microseconds
 * at least), small enough that chunks balance over the threads. */
enum { COPY_CHUNK = 16u << 20, PEAK_CHUNKS_PER_THREAD = 4 };
#define PEAK_CHUNK_ADDS ((uint64_t) 1 << 25)

enum probe_kind { PROBE_MEMCPY, PROBE_STREAM, PROBE_FILL, PROBE_PEAK, NPROBES };

struct probe {
    enum probe_kind kind;
    int threads;
    unsigned char *dst;
    const unsigned char *src;
    size_t bytes;
    float *sinks; /* one per peak chunk, so the adds cannot be dropped */
    size_t nchunks;
    const char *variant;
    char name[64];
};

static void copy_task(void *ctx, size_t begin, size_t end) {
    struct probe *p = ctx;
    for (size_t c = begin; c < end; c++) {
        size_t off = c * (size_t) COPY_CHUNK;
        size_t len = p->bytes - off < COPY_CHUNK ? p->bytes - off : COPY_CHUNK;
        if (p->kind == PROBE_MEMCPY)
            memcpy(p->dst + off, p->src + off, len);
        else if (p->kind == PROBE_FILL)
            rb_fill_stream(p->dst + off, (int) (c & 0xff), len);
        else
            rb_copy_stream(p->dst + off, p->src + off, len);
    }
}

static void peak_task(void *ctx, size_t begin, size_t end) {
    struct probe *p = ctx;
    for (size_t c = begin; c < end; c++) rb_peak_add_f32(PEAK_CHUNK_ADDS, 1.0f, &p->sinks[c]);
}

static void noop_task(void *ctx, size_t begin, size_t end) {}

/* Outside timing: the thread count (and the pool started with it) and the variant that will
 * run, taken from one small call on this thread. */
static int probe_setup(void *ctx) {
    struct probe *p = ctx;
    int rc = rb_threads_set(p->threads);
    if (rc) return rc;
    rb_parallel_for((size_t) p->threads, 1, noop_task, NULL);
    if (p->kind == PROBE_STREAM) {
        rc = rb_copy_stream(p->dst, p->src, 4096);
        p->variant = rb_kernel_last(&rb_op_copy_stream);
    } else if (p->kind == PROBE_FILL) {
        rc = rb_fill_stream(p->dst, 0, 4096);
        p->variant = rb_kernel_last(&rb_op_fill_stream);
    } else if (p->kind == PROBE_PEAK) {
        rc = rb_peak_add_f32(RB_PEAK_ADD_QUANTUM, 1.0f, &p->sinks[0]);
        p->variant = rb_kernel_last(&rb_op_peak_add_f32);
    } else {
        p->variant = "memcpy";
    }
    return rc;
}

static void probe_body(rb_gb_state *st, void *ctx) {
    struct probe *p = ctx;
    size_t nchunks = p->kind == PROBE_PEAK ? p->nchunks : (p->bytes + COPY_CHUNK - 1) / COPY_CHUNK;
    rb_task_fn fn = p->kind == PROBE_PEAK ? peak_task : copy_task;
    while (rb_gb_keep_running(st)) rb_parallel_for(nchunks, 1, fn, p);
}

int rb_limits_cores(void) {
    int saved = rb_threads_get();
    rb_threads_set(0);
    int n = rb_threads_get();
    rb_threads_set(saved);
    return n;
}

const rb_limit *rb_limits_find(const rb_limits *lim, int threads) {
    for (size_t i = 0; i < lim->count; i++)
        if (lim->rows[i].threads == threads) return &lim->rows[i];
    return NULL;
}

json_t *rb_limit_json(const rb_limit *l) {
    return json_pack("{s:i, s:f, s:f, s:f, s:s, s:f, s:f, s:s}", "threads", l->threads, "copy_gbps",
                     l->copy_gbps, "copy_memcpy_gbps", l->copy_memcpy_gbps, "copy_stream_gbps",
                     l->copy_stream_gbps, "stream_variant", l->stream_variant, "write_gbps",
                     l->write_gbps, "peak_add_gflops", l->peak_add_gflops, "peak_variant",
                     l->peak_variant);
}

void rb_limits_fold(rb_limits *lim, const rb_limits *later) {
    for (size_t i = 0; i < lim->count; i++) {
        rb_limit *l = &lim->rows[i];
        const rb_limit *e = rb_limits_find(later, l->threads);
        if (!e) continue;
        l->copy_gbps_end = e->copy_gbps;
        l->peak_end = e->peak_add_gflops;
        l->copy_memcpy_gbps = fmax(l->copy_memcpy_gbps, e->copy_memcpy_gbps);
        l->copy_stream_gbps = fmax(l->copy_stream_gbps, e->copy_stream_gbps);
        l->copy_gbps = fmax(l->copy_gbps, e->copy_gbps);
        l->write_gbps = fmax(l->write_gbps, e->write_gbps);
        l->peak_add_gflops = fmax(l->peak_add_gflops, e->peak_add_gflops);
    }
}

double rb_limits_copy_drift(const rb_limits *lim, int *threads) {
    double worst = 0;
    for (size_t i = 0; i < lim->count; i++) {
        const rb_limit *l = &lim->rows[i];
        double hi = fmax(l->copy_gbps_start, l->copy_gbps_end);
        double lo = fmin(l->copy_gbps_start, l->copy_gbps_end);
        if (l->copy_gbps_end <= 0 || hi <= 0 || 1 - lo / hi <= worst) continue;
        worst = 1 - lo / hi;
        if (threads) *threads = l->threads;
    }
    return worst;
}

void rb_limits_free(rb_limits *lim) {
    if (!lim) return;
    rb_gb_report_free(&lim->report);
    lim->count = 0;
}

int rb_limits_measure(const int *threads, size_t count, const rb_limits_options *opt,
                      rb_limits *out) {
    memset(out, 0, sizeof *out);
    size_t bytes = opt && opt->copy_bytes ? opt->copy_bytes : (size_t) 256 << 20;
    double min_time = opt && opt->min_time > 0 ? opt->min_time : 0.1;
    int reps = opt && opt->repetitions > 0 ? opt->repetitions : 5;
    int tlist[RB_LIMITS_MAX], nt = 0;
    for (size_t i = 0; i < count; i++) {
        int t = threads[i], dup = 0;
        if (t < 1 || t > RB_THREADS_MAX)
            return rb_error_set(RB_EINVAL, "limits: threads = %d is outside 1..%d", t,
                                RB_THREADS_MAX);
        for (int j = 0; j < nt; j++) dup |= tlist[j] == t;
        if (dup) continue;
        if (nt == RB_LIMITS_MAX)
            return rb_error_set(RB_EINVAL, "limits: more than %d thread counts", RB_LIMITS_MAX);
        tlist[nt++] = t;
    }

    int rc = RB_OK, saved_threads = rb_threads_get();
    char saved_sel[16];
    snprintf(saved_sel, sizeof saved_sel, "%s", rb_kernels_selection());
    size_t maxchunks = 0;
    for (int j = 0; j < nt; j++)
        if ((size_t) tlist[j] * PEAK_CHUNKS_PER_THREAD > maxchunks)
            maxchunks = (size_t) tlist[j] * PEAK_CHUNKS_PER_THREAD;
    size_t alloc = (bytes + 63) / 64 * 64;
    unsigned char *src = aligned_alloc(64, alloc), *dst = aligned_alloc(64, alloc);
    float *sinks = calloc(maxchunks ? maxchunks : 1, sizeof *sinks);
    struct probe *probes = calloc((size_t) nt * NPROBES, sizeof *probes);
    rb_gb_bench *benches = calloc((size_t) nt * NPROBES, sizeof *benches);
    if (!src || !dst || !sinks || !probes || !benches) {
        rc = rb_error_set(RB_ENOMEM, "limits: no memory for two copy buffers of %zu bytes", bytes);
        goto fail;
    }
    /* Touch every page before timing so page faults are not measured. */
    memset(src, 1, alloc);
    memset(dst, 0, alloc);

    for (int j = 0; j < nt; j++)
        for (int k = 0; k < NPROBES; k++) {
            struct probe *p = &probes[j * NPROBES + k];
            static const char *const names[NPROBES] = {"copy_memcpy", "copy_stream", "fill_stream",
                                                       "peak_add_f32"};
            p->kind = (enum probe_kind) k;
            p->threads = tlist[j];
            p->dst = dst;
            p->src = src;
            p->bytes = bytes;
            p->sinks = sinks;
            p->nchunks = (size_t) tlist[j] * PEAK_CHUNKS_PER_THREAD;
            snprintf(p->name, sizeof p->name, "limits/%s/threads:%d", names[k], tlist[j]);
            rb_cost cost = p->kind == PROBE_PEAK   ? rb_peak_add_cost(PEAK_CHUNK_ADDS * p->nchunks)
                           : p->kind == PROBE_FILL ? rb_fill_cost(bytes)
                                                   : rb_copy_cost(bytes);
            benches[j * NPROBES + k] = (rb_gb_bench){.name = p->name,
                                                     .body = probe_body,
                                                     .setup = probe_setup,
                                                     .ctx = p,
                                                     .opt = {.min_time = min_time,
                                                             .repetitions = reps,
                                                             .bytes = cost.bytes,
                                                             .flops = cost.flops}};
        }

    rb_kernels_select("auto");
    rc = rb_gb_run(benches, (size_t) nt * NPROBES, NULL, &out->report);
    rb_kernels_select(saved_sel);
    rb_threads_set(saved_threads);
    if (rc) goto fail;

    out->copy_bytes = bytes;
    for (size_t i = 0; i < out->report.count; i++) {
        const rb_gb_result *r = &out->report.results[i];
        if (!r->ok) {
            rc = rb_error_set(RB_ELIB, "limits: %s failed: %s", r->name, r->error);
            goto fail;
        }
    }
    /* A limit is a ceiling: anything else running on the machine only lowers a sample, so the
     * fastest repetition is the best estimate of it (as STREAM reports its best trial). */
    const rb_gb_result *res = out->report.results;
#define BEST_RATE(r, work) ((r).real_ns.min > 0 ? (r).work / (r).real_ns.min : 0.0)
    for (int j = 0; j < nt; j++) {
        rb_limit *l = &out->rows[j];
        l->threads = tlist[j];
        const rb_gb_result *r = res + j * NPROBES;
        l->copy_memcpy_gbps = BEST_RATE(r[PROBE_MEMCPY], bytes);
        l->copy_stream_gbps = BEST_RATE(r[PROBE_STREAM], bytes);
        l->copy_gbps =
            l->copy_memcpy_gbps > l->copy_stream_gbps ? l->copy_memcpy_gbps : l->copy_stream_gbps;
        l->stream_variant = probes[j * NPROBES + PROBE_STREAM].variant;
        l->write_gbps = BEST_RATE(r[PROBE_FILL], bytes);
        l->peak_add_gflops = BEST_RATE(r[PROBE_PEAK], flops);
        l->peak_variant = probes[j * NPROBES + PROBE_PEAK].variant;
        l->copy_gbps_start = l->copy_gbps;
        l->peak_start = l->peak_add_gflops;
    }
#undef BEST_RATE
    out->count = (size_t) nt;

fail:
    if (rc) rb_limits_free(out);
    free(src);
    free(dst);
    free(sinks);
    free(probes);
    free(benches);
    return rc;
}

int rb_limits_warn_shared_cores(FILE *f, const char *cmd, int threads, const char *what) {
    int cores = rb_pool_cores();
    if (threads <= cores) return 0;
    fprintf(f,
            "rotabench %s: warning: %d threads on this machine's %d physical core(s): threads "
            "share cores (up to %d per core), so %s are not those of %d cores\n",
            cmd, threads, cores, (threads + cores - 1) / cores, what, threads);
    return 1;
}
