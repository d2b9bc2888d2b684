/* `rotabench bench`: measure the machine's limits, run the kernel benchmarks, print a table and
 * optionally write everything (raw samples included) as JSON. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/bench.h"
#include "harness/context.h"
#include "harness/gbench.h"
#include "harness/harness.h"
#include "harness/limits.h"
#include "harness/record.h"
#include "kernels/kernels.h"

enum { MAX_THREADS_LIST = 8 };

struct bench_opts {
    const char *filter, *json;
    double min_time;
    int repetitions, list, copy_mib, cuda;
    int threads[MAX_THREADS_LIST];
    size_t nthreads;
    size_t shape_rows, shape_n; /* --shape; 0: the table's */
};

static void usage(FILE *f) {
    fprintf(f, "usage: rotabench bench [FILTER] [--json FILE] [--min-time S] [--repetitions R]\n"
               "                       [--threads N[,N...]] [--shape [ROWSx]N] [--copy-mib M]\n"
               "                       [--cuda] [--list]\n\n"
               "Measures the machine's limits (copy bandwidth, peak fp32 add; 1 thread, all cores\n"
               "and every thread count benchmarked), then runs the kernel benchmarks whose name\n"
               "matches the regex FILTER ('-' in front excludes), measures the limits again, and\n"
               "prints median time, GFLOP/s, GB/s and their fractions of the measured limits at\n"
               "the same thread count (each the better of its two measurements; a warning when\n"
               "the copy moved by more than 20%% between them).\n\n"
               "  --json FILE        write limits, results, raw samples and warnings as JSON (a\n"
               "                     path that cannot be written is refused before measuring)\n"
               "  --min-time S       seconds per repetition (default 0.1)\n"
               "  --repetitions R    samples per benchmark (default 5); the median is reported\n"
               "  --threads N,...    pool thread counts to run instead of each benchmark's own\n"
               "  --shape [ROWSx]N   run the selected benchmarks at vector length N (and ROWS\n"
               "                     rows where the benchmark has a rows axis) instead of the\n"
               "                     table's sizes, e.g. 4096x8192; a kernel that does not take\n"
               "                     the shape says why in its row\n"
               "  --copy-mib M       copy-bandwidth buffer size (default 256; keep it well above\n"
               "                     the last-level cache)\n"
               "  --list             print the benchmark names (after FILTER) and exit\n"
               "  --cuda             the CUDA kernels on device 0 instead (CUDA events; the\n"
               "                     limit is a device-to-device copy of 256 MiB, same run)\n\n"
               "Environment: RB_KERNELS selects the CPU variants (" RB_KERNELS_NAMES ";\n"
               "default auto; any other value is refused).\n"
               "Before timing, each benchmark's output is compared with the reference variants'\n"
               "(RB_KERNELS=ref) on the same input; a difference is flagged MISMATCH and the exit\n"
               "status is 1.\n");
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -1000000 || v > 1000000) return -1;
    *out = (int) v;
    return 0;
}

static int parse_threads(const char *s, struct bench_opts *o) {
    size_t len = strlen(s);
    if (!len || s[0] == ',' || s[len - 1] == ',' || strstr(s, ",,")) return -1; /* empty item */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    o->nthreads = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int t;
        if (o->nthreads == MAX_THREADS_LIST || parse_int(tok, &t) || t < 1 || t > RB_THREADS_MAX)
            return -1;
        o->threads[o->nthreads++] = t;
    }
    return o->nthreads ? 0 : -1;
}

/* "N" or "ROWSxN", positive, at most 2^32 elements in all (16 GiB of fp32 input). */
static int parse_shape(const char *s, struct bench_opts *o) {
    unsigned long long rows = 0, n;
    char *end;
    if (!isdigit((unsigned char) *s)) return -1; /* strtoull would take a sign or spaces */
    errno = 0;
    n = strtoull(s, &end, 10);
    if (*end == 'x' || *end == 'X') {
        const char *t = end + 1;
        if (n < 1 || !isdigit((unsigned char) *t)) return -1;
        rows = n;
        n = strtoull(t, &end, 10);
    }
    if (errno || *end || n < 1 || n > (1ull << 32) || (rows && rows > (1ull << 32) / n)) return -1;
    o->shape_rows = (size_t) rows;
    o->shape_n = (size_t) n;
    return 0;
}

static int parse_args(int argc, char **argv, struct bench_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--list")) {
            o->list = 1;
        } else if (!strcmp(a, "--cuda")) {
            o->cuda = 1;
        } else if (!strcmp(a, "--json") || !strcmp(a, "--min-time") ||
                   !strcmp(a, "--repetitions") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--copy-mib") || !strcmp(a, "--shape")) {
            if (!v) {
                fprintf(stderr, "rotabench bench: %s needs a value\n", a);
                return 2;
            }
            i++;
            int bad = 0;
            if (!strcmp(a, "--json"))
                o->json = v;
            else if (!strcmp(a, "--min-time"))
                bad = parse_double(v, &o->min_time) || !(o->min_time > 0 && o->min_time <= 60);
            else if (!strcmp(a, "--copy-mib"))
                bad = parse_int(v, &o->copy_mib) || o->copy_mib < 1 || o->copy_mib > 65536;
            else if (!strcmp(a, "--repetitions"))
                bad = parse_int(v, &o->repetitions) || o->repetitions < 1 || o->repetitions > 1000;
            else if (!strcmp(a, "--shape"))
                bad = parse_shape(v, o);
            else
                bad = parse_threads(v, o);
            if (bad) {
                fprintf(stderr, "rotabench bench: %s %s: expected %s\n", a, v,
                        !strcmp(a, "--min-time")      ? "seconds in (0, 60]"
                        : !strcmp(a, "--copy-mib")    ? "MiB in 1..65536"
                        : !strcmp(a, "--repetitions") ? "an integer 1..1000"
                        : !strcmp(a, "--shape")
                            ? "N or ROWSxN, positive, at most 2^32 elements (e.g. 4096x8192)"
                            : "thread counts like 1 or 1,2");
                return 2;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "rotabench bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (o->filter) {
            fprintf(stderr, "rotabench bench: only one FILTER ('%s' and '%s')\n", o->filter, a);
            return 2;
        } else {
            o->filter = a;
        }
    }
    return 0;
}

/* ---- output ---- */

/* One measurement's rows (lim itself before rb_limits_fold, or the later one). */
static void print_limits(const rb_limits *lim, const char *when) {
    printf("machine limits%s (fastest repetition; copy counts one read + one write of "
           "%zu MiB, write the streaming stores alone):\n",
           when, lim->copy_bytes >> 20);
    for (size_t i = 0; i < lim->count; i++) {
        const rb_limit *l = &lim->rows[i];
        printf("  threads:%-3d copy %7.1f GB/s (memcpy %.1f, stream/%s %.1f)   write %5.1f GB/s   "
               "peak add fp32 %8.1f GFLOP/s (%s)\n",
               l->threads, l->copy_gbps, l->copy_memcpy_gbps, l->stream_variant,
               l->copy_stream_gbps, l->write_gbps, l->peak_add_gflops, l->peak_variant);
    }
}

static void print_warnings(const rb_gb_report *ctx, FILE *f) {
    if (ctx->library_debug)
        fprintf(f, "warning: libbenchmark was built as DEBUG (asserts on): timings may be "
                   "affected\n");
    if (!ctx->build_optimized)
        fprintf(f, "warning: rotabench was built without optimization: timings are not "
                   "representative\n");
    if (ctx->cpu_scaling == 1)
        fprintf(f, "warning: CPU frequency scaling is enabled: timings may be noisy\n");
}

static double pct(double v, double limit) {
    return limit > 0 ? 100.0 * v / limit : 0.0;
}

static void print_table(const rb_gb_report *rep, const rb_bench_inst *inst, const rb_limits *lim) {
    int w = 9; /* the name column fits the longest name */
    for (size_t i = 0; i < rep->count; i++)
        if ((int) strlen(rep->results[i].name) > w) w = (int) strlen(rep->results[i].name);
    printf("\n%-*s %-8s %14s %9s %8s %7s %7s %3s\n", w, "benchmark", "variant", "median ns",
           "GFLOP/s", "GB/s", "%peak", "%copy", "n");
    for (size_t i = 0; i < rep->count; i++) {
        const rb_gb_result *r = &rep->results[i];
        const rb_bench_inst *b = &inst[r->index];
        if (!r->ok) {
            printf("%-*s FAILED: %s\n", w, r->name, r->error);
            continue;
        }
        const rb_limit *l = rb_limits_find(lim, b->args.threads);
        printf("%-*s %-8s %14.1f %9.2f %8.2f %7.1f %7.1f %3zu\n", w, r->name,
               b->variant ? b->variant : "?", r->real_ns.median, r->gflops, r->gbps,
               l ? pct(r->gflops, l->peak_add_gflops) : 0.0, l ? pct(r->gbps, l->copy_gbps) : 0.0,
               r->nsamples);
        if (b->verified == 0) printf("%-*s   MISMATCH: %s\n", w, "", b->verify_note);
    }
}

static json_t *stats_json(const rb_gb_stats *s) {
    return json_pack("{s:f, s:f, s:f, s:f, s:f}", "median", s->median, "mean", s->mean, "stddev",
                     s->stddev, "min", s->min, "max", s->max);
}

json_t *rb_bench_result_json(const rb_gb_result *r) {
    json_t *o =
        json_pack("{s:s, s:b, s:i, s:i, s:I}", "name", r->name, "ok", r->ok, "threads", r->threads,
                  "manual_time", r->manual_time, "iterations", (json_int_t) r->iterations);
    if (!r->ok) json_object_set_new(o, "error", json_string(r->error));
    json_object_set_new(o, "real_ns", stats_json(&r->real_ns));
    json_object_set_new(o, "cpu_ns", stats_json(&r->cpu_ns));
    json_t *samples = json_array();
    for (size_t i = 0; i < r->nsamples; i++)
        json_array_append_new(samples,
                              json_pack("{s:f, s:f, s:I}", "real_ns", r->samples[i].real_ns,
                                        "cpu_ns", r->samples[i].cpu_ns, "iterations",
                                        (json_int_t) r->samples[i].iterations));
    json_object_set_new(o, "samples", samples);
    json_object_set_new(o, "bytes", json_real(r->bytes));
    json_object_set_new(o, "flops", json_real(r->flops));
    json_object_set_new(o, "gbps", json_real(r->gbps));
    json_object_set_new(o, "gflops", json_real(r->gflops));
    json_object_set_new(o, "items", json_real(r->items));
    json_object_set_new(o, "items_per_s", json_real(r->items_per_s));
    return o;
}

/* The busy-machine warning, or NULL: one line for the table and the JSON's warnings. */
static const char *busy_warning(const rb_gb_report *rep, const rb_bench_inst *inst, char *buf,
                                size_t size) {
    double worst;
    size_t n = rb_bench_busy(rep, inst, &worst);
    if (!n) return NULL;
    snprintf(buf, size,
             "%zu one-thread benchmark(s) had CPU time / real time below %.2f (worst %.2f): the "
             "machine was busy: timings include time the benchmark thread was not running",
             n, RB_BENCH_BUSY_RATIO, worst);
    return buf;
}

/* When the copy bandwidth moved by more than DRIFT_PERCENT% between the limits measured before
 * and after the benchmarks: one line for the output and the JSON's warnings, else NULL. */
enum { DRIFT_PERCENT = 20 };
static const char *drift_warning(const rb_limits *lim, char *buf, size_t size) {
    int t = 0;
    double drift = rb_limits_copy_drift(lim, &t);
    if (drift * 100 <= DRIFT_PERCENT) return NULL;
    const rb_limit *l = rb_limits_find(lim, t);
    snprintf(buf, size,
             "the copy bandwidth at %d thread(s) was %.1f GB/s before the benchmarks and %.1f "
             "after (other load on a shared machine?): %%copy is against the better, and "
             "fractions of a copy this unsteady move from run to run",
             t, l->copy_gbps_start, l->copy_gbps_end);
    return buf;
}

static int write_json(const char *path, const struct bench_opts *o, const rb_limits *lim,
                      const rb_limits *lim_end, const rb_gb_report *rep,
                      const rb_bench_inst *inst) {
    json_t *root = json_object();
    json_t *ctx = json_pack("{s:s, s:s, s:b, s:s, s:s, s:f, s:i}", "version", rb_version_string(),
                            "git_sha", rb_git_sha(), "git_dirty", rb_git_dirty(), "kernels",
                            rb_kernels_selection(), "filter", o->filter ? o->filter : "",
                            "min_time_s", o->min_time, "repetitions", o->repetitions);
    json_object_set_new(ctx, "library_debug", json_boolean(rep->library_debug));
    json_object_set_new(ctx, "build_optimized", json_boolean(rep->build_optimized));
    json_object_set_new(ctx, "cpu_scaling", json_integer(rep->cpu_scaling));
    json_object_set_new(ctx, "num_cpus", json_integer(rep->num_cpus));
    json_object_set_new(ctx, "cpu_mhz", json_real(rep->cpu_mhz));
    /* The host and build as context.json and `rotabench hw --json` describe them (CPU model,
     * features, caches, hostname, threads and binding; compiler, flags, libraries), so that two
     * files from different machines or builds say how they differ. host.limits is set below. */
    char now[32];
    rb_utc_iso8601(now);
    json_object_set_new(ctx, "utc", json_string(now));
    json_t *host = rb_context_host_section(NULL);
    json_object_set_new(ctx, "host", host);
    json_object_set_new(ctx, "build", rb_context_build_section());
    json_object_set_new(root, "context", ctx);

    json_t *warnings = json_array();
    if (rep->library_debug)
        json_array_append_new(warnings, json_string("libbenchmark was built as DEBUG"));
    if (!rep->build_optimized)
        json_array_append_new(warnings, json_string("rotabench was built without optimization"));
    if (rep->cpu_scaling == 1)
        json_array_append_new(warnings, json_string("CPU frequency scaling is enabled"));
    char line[256];
    if (busy_warning(rep, inst, line, sizeof line))
        json_array_append_new(warnings, json_string(line));
    if (drift_warning(lim, line, sizeof line)) json_array_append_new(warnings, json_string(line));
    json_object_set_new(root, "warnings", warnings);

    json_t *limits = json_array();
    for (size_t i = 0; i < lim->count; i++) {
        const rb_limit *l = &lim->rows[i];
        json_t *row = rb_limit_json(l);
        json_object_set_new(row, "copy_bytes", json_integer((json_int_t) lim->copy_bytes));
        json_object_set_new(row, "copy_gbps_start", json_real(l->copy_gbps_start));
        json_object_set_new(row, "copy_gbps_end", json_real(l->copy_gbps_end));
        json_object_set_new(row, "peak_add_gflops_start", json_real(l->peak_start));
        json_object_set_new(row, "peak_add_gflops_end", json_real(l->peak_end));
        json_array_append_new(limits, row);
    }
    json_object_set(host, "limits", limits);
    json_object_set_new(root, "limits", limits);
    json_t *limit_runs = json_array();
    for (size_t i = 0; i < lim->report.count; i++)
        json_array_append_new(limit_runs, rb_bench_result_json(&lim->report.results[i]));
    json_object_set_new(root, "limit_runs", limit_runs);
    json_t *limit_runs_end = json_array();
    for (size_t i = 0; i < lim_end->report.count; i++)
        json_array_append_new(limit_runs_end, rb_bench_result_json(&lim_end->report.results[i]));
    json_object_set_new(root, "limit_runs_end", limit_runs_end);

    json_t *benches = json_array();
    for (size_t i = 0; i < rep->count; i++) {
        const rb_gb_result *r = &rep->results[i];
        const rb_bench_inst *b = &inst[r->index];
        const rb_limit *l = rb_limits_find(lim, b->args.threads);
        json_t *j = rb_bench_result_json(r);
        json_object_set_new(j, "op",
                            json_string(b->entry->op ? b->entry->op->name : b->entry->name));
        json_object_set_new(j, "variant", b->variant ? json_string(b->variant) : json_null());
        json_object_set_new(j, "n", json_integer((json_int_t) b->args.n));
        json_object_set_new(j, "rows", json_integer((json_int_t) b->args.rows));
        json_object_set_new(j, "pool_threads", json_integer(b->args.threads));
        json_object_set_new(j, "binding", json_string(b->binding));
        char seed[24];
        snprintf(seed, sizeof seed, "0x%016llx", (unsigned long long) b->seed);
        json_object_set_new(j, "input_seed", json_string(seed));
        json_object_set_new(j, "calls_per_batch", json_integer((json_int_t) b->batch));
        /* true: the untimed call gave the reference variants' bits; null: not compared */
        json_object_set_new(j, "verified",
                            b->verified < 0 ? json_null() : json_boolean(b->verified));
        if (b->verified == 0) json_object_set_new(j, "verify_note", json_string(b->verify_note));
        /* the calling thread's CPU time over real time (medians): below 1 on one thread, the
         * thread was not running part of the time */
        double q = rb_bench_cpu_ratio(r);
        json_object_set_new(j, "cpu_real_ratio", q < 0 ? json_null() : json_real(q));
        if (l && r->ok) {
            json_object_set_new(j, "pct_peak_flops", json_real(pct(r->gflops, l->peak_add_gflops)));
            json_object_set_new(j, "pct_copy_bw", json_real(pct(r->gbps, l->copy_gbps)));
        }
        json_array_append_new(benches, j);
    }
    json_object_set_new(root, "benchmarks", benches);

    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (rc) return rb_error_set(RB_EIO, "bench: cannot write %s", path);
    return RB_OK;
}

/* Whether --json FILE can be written, before minutes of measuring: opened for appending (an
 * existing file keeps its contents until the end) and removed again if this made it. */
static int json_path_check(const char *path) {
    struct stat sb;
    int existed = stat(path, &sb) == 0;
    FILE *f = existed && S_ISDIR(sb.st_mode) ? NULL : fopen(path, "a");
    if (!f) {
        fprintf(stderr, "rotabench bench: cannot write --json %s: %s\n", path,
                existed && S_ISDIR(sb.st_mode) ? "it is a directory" : strerror(errno));
        return 2;
    }
    fclose(f);
    if (!existed) unlink(path);
    return 0;
}

int rb_cmd_bench(int argc, char **argv) {
    struct bench_opts o = {.min_time = 0.1, .repetitions = 5};
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (rb_kernels_env_check()) {
        fprintf(stderr, "rotabench bench: %s\n", rb_error_detail());
        return 2;
    }
    if (o.json && !o.list && json_path_check(o.json)) return 2;
    if (o.cuda) return rb_bench_cuda(o.filter, o.min_time, o.repetitions, o.list, o.json);

    rb_bench_inst *inst = NULL;
    size_t ninst = 0;
    rb_gb_bench *gb = NULL;
    rb_limits lim = {0}, lim_end = {0};
    rb_gb_report rep = {0};
    int status = 1;

    rc = rb_bench_instances(o.nthreads ? o.threads : NULL, o.nthreads, &inst, &ninst);
    if (rc) goto fail;
    if (o.shape_n) rb_bench_reshape(inst, &ninst, o.shape_rows, o.shape_n);
    /* The thread counts to measure limits at: 1, all cores, and every selected benchmark's. */
    int tl[RB_LIMITS_MAX] = {1, rb_limits_cores()};
    size_t ntl = 2, selected = 0;
    for (size_t i = 0; i < ninst; i++) {
        int m = rb_gb_filter_matches(o.filter, inst[i].name);
        if (m < 0) {
            fprintf(stderr, "rotabench bench: %s\n", rb_error_detail());
            status = 2;
            goto done;
        }
        if (!m) continue;
        selected++;
        if (o.list) printf("%s\n", inst[i].name);
        int t = inst[i].args.threads, seen = 0;
        for (size_t k = 0; k < ntl; k++) seen |= tl[k] == t;
        if (!seen && ntl < RB_LIMITS_MAX) tl[ntl++] = t;
    }
    if (o.list) {
        status = 0;
        goto done;
    }
    if (!selected) {
        fprintf(stderr, "rotabench bench: no benchmark matches '%s' (see --list)\n", o.filter);
        status = 2;
        goto done;
    }
    /* Once, for the largest thread count selected: its timings are not those of that many
     * cores (the pool binds thread i to core i mod cores). */
    int tmax = 1;
    for (size_t k = 0; k < ntl; k++) tmax = tl[k] > tmax ? tl[k] : tmax;
    rb_limits_warn_shared_cores(stderr, "bench", tmax, "those timings");

    printf("%s\nkernels: %s   pool: up to %d cores\n", rb_version_string(), rb_kernels_selection(),
           rb_limits_cores());
    rb_gb_report ctx = {0};
    rb_gb_context(&ctx);
    print_warnings(&ctx, stdout);
    fflush(stdout);

    rb_limits_options lo = {.min_time = o.min_time,
                            .repetitions = o.repetitions,
                            .copy_bytes = (size_t) o.copy_mib << 20};
    rc = rb_limits_measure(tl, ntl, &lo, &lim);
    if (rc) goto fail;
    print_limits(&lim, "");
    fflush(stdout);

    gb = calloc(ninst, sizeof *gb);
    if (!gb) {
        rc = rb_error_set(RB_ENOMEM, "bench: no memory");
        goto fail;
    }
    for (size_t i = 0; i < ninst; i++)
        gb[i] = (rb_gb_bench){.name = inst[i].name,
                              .body = rb_bench_body,
                              .setup = rb_bench_setup,
                              .teardown = rb_bench_teardown,
                              .ctx = &inst[i],
                              .opt = {.min_time = o.min_time,
                                      .repetitions = o.repetitions,
                                      .bytes = inst[i].cost.bytes,
                                      .flops = inst[i].cost.flops,
                                      .items = (double) inst[i].args.rows}};
    rc = rb_gb_run(gb, ninst, o.filter, &rep);
    if (rc) goto fail;
    /* Again after the benchmarks: a shared machine's bandwidth changes within minutes, and the
     * better of two measurements that far apart is a truer ceiling than either. */
    rc = rb_limits_measure(tl, ntl, &lo, &lim_end);
    if (rc) goto fail;
    print_limits(&lim_end, " after the benchmarks");
    rb_limits_fold(&lim, &lim_end);
    print_table(&rep, inst, &lim);
    printf("\n%%peak: GFLOP/s over the measured peak fp32 add rate; %%copy: GB/s (one read + one "
           "write per element) over the measured copy bandwidth, same thread count; each limit "
           "the better of its measurements before and after the benchmarks. In-cache sizes can "
           "exceed 100%% of the DRAM copy bandwidth.\n");
    char line[256];
    if (busy_warning(&rep, inst, line, sizeof line)) printf("warning: %s\n", line);
    if (drift_warning(&lim, line, sizeof line)) printf("warning: %s\n", line);

    status = 0;
    size_t mismatches = 0;
    for (size_t i = 0; i < rep.count; i++) {
        if (!rep.results[i].ok) status = 1;
        mismatches += inst[rep.results[i].index].verified == 0;
    }
    if (o.json) {
        rc = write_json(o.json, &o, &lim, &lim_end, &rep, inst);
        if (rc) goto fail;
        printf("wrote %s\n", o.json);
    }
    /* Last, so that it is what a reader sees: timings of a kernel whose output is wrong. */
    if (mismatches) {
        fprintf(stderr,
                "rotabench bench: %zu benchmark(s) differ from the reference variants "
                "(their timings are of wrong outputs):",
                mismatches);
        for (size_t i = 0; i < rep.count; i++)
            if (inst[rep.results[i].index].verified == 0)
                fprintf(stderr, " %s", rep.results[i].name);
        fprintf(stderr, "\n");
        status = 1;
    }
    goto done;

fail:
    fprintf(stderr, "rotabench bench: %s: %s\n", rb_strerror(rc), rb_error_detail());
    status = 1;
done:
    rb_gb_report_free(&rep);
    rb_limits_free(&lim);
    rb_limits_free(&lim_end);
    free(gb);
    rb_bench_instances_free(inst, ninst);
    return status;
}
