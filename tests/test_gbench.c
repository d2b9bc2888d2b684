/* The Google Benchmark wrapper: samples and statistics, manual time, the filter, counters,
 * setup/teardown, errors; and the limit probes' kernels (peak add count, streaming copy). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/bench.h"
#include "methods/method.h"
#include "harness/gbench.h"
#include "harness/limits.h"
#include "kernels/kernels.h"
#include "kernels/peak.h"
#include "tests/testutil.h"

static void spin_body(rb_gb_state *st, void *ctx) {
    volatile double *acc = ctx;
    while (rb_gb_keep_running(st))
        for (int i = 0; i < 100; i++) *acc = *acc + 1.0;
}

static rb_gb_options quick(int reps) {
    return (rb_gb_options){.min_time = 0.002, .repetitions = reps};
}

Test(gbench, samples_and_statistics_are_sane) {
    volatile double acc = 0;
    rb_gb_bench b = {.name = "spin", .body = spin_body, .ctx = (void *) &acc, .opt = quick(4)};
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(&b, 1, NULL, &rep), 0, "%s", rb_error_detail());
    cr_assert_eq(rep.count, 1);
    const rb_gb_result *r = &rep.results[0];
    cr_assert(r->ok, "%s", r->error ? r->error : "");
    cr_assert_str_eq(r->name, "spin");
    cr_assert_eq(r->nsamples, 4);
    cr_assert_gt(r->iterations, 0);
    int64_t total = 0;
    for (size_t i = 0; i < r->nsamples; i++) {
        cr_assert_gt(r->samples[i].iterations, 0);
        cr_assert_gt(r->samples[i].real_ns, 0.0);
        total += r->samples[i].iterations;
    }
    cr_assert_eq(total, r->iterations);
    cr_assert(r->real_ns.min <= r->real_ns.median && r->real_ns.median <= r->real_ns.max);
    cr_assert(r->real_ns.min <= r->real_ns.mean && r->real_ns.mean <= r->real_ns.max);
    cr_assert(r->cpu_ns.min <= r->cpu_ns.median && r->cpu_ns.median <= r->cpu_ns.max);
    cr_assert(acc > 0);
    cr_assert(rep.build_optimized == 0 || rep.build_optimized == 1);
    cr_assert(rep.library_debug == 0 || rep.library_debug == 1);
    rb_gb_report_free(&rep);
}

Test(gbench, stats_of_known_values) {
    double v[] = {5, 1, 4, 2, 3};
    rb_gb_stats s = rb_gb_stats_of(v, 5);
    cr_assert_eq(s.median, 3.0);
    cr_assert_eq(s.min, 1.0);
    cr_assert_eq(s.max, 5.0);
    cr_assert_eq(s.mean, 3.0);
    cr_assert_float_eq(s.stddev, sqrt(2.5), 1e-12);
    s = rb_gb_stats_of(v, 4); /* 5 1 4 2: median of an even count is the middle pair's mean */
    cr_assert_eq(s.median, 3.0);
    s = rb_gb_stats_of(v, 1);
    cr_assert_eq(s.stddev, 0.0);
}

/* Reports 1 ms per iteration without spending it; with 1e6 bytes per iteration that is exactly
 * 1 GB/s, and 2e6 flops per iteration 2 GFLOP/s. */
static void manual_body(rb_gb_state *st, void *ctx) {
    while (rb_gb_keep_running(st)) rb_gb_set_iteration_time(st, 1e-3);
}

Test(gbench, manual_time_and_rates) {
    rb_gb_bench b = {.name = "manual",
                     .body = manual_body,
                     .opt = {.min_time = 0.01,
                             .repetitions = 2,
                             .manual_time = 1,
                             .bytes = 1e6,
                             .flops = 2e6,
                             .items = 3}};
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(&b, 1, "", &rep), 0, "%s", rb_error_detail());
    const rb_gb_result *r = &rep.results[0];
    cr_assert(r->ok, "%s", r->error ? r->error : "");
    cr_assert(r->manual_time);
    cr_assert_float_eq(r->real_ns.median, 1e6, 1.0, "median %g ns", r->real_ns.median);
    cr_assert_float_eq(r->gbps, 1.0, 1e-6, "gbps %g", r->gbps);
    cr_assert_float_eq(r->gflops, 2.0, 1e-6, "gflops %g", r->gflops);
    cr_assert_float_eq(r->items_per_s, 3000.0, 1e-3, "items/s %g", r->items_per_s);
    cr_assert_eq(r->bytes, 1e6);
    rb_gb_report_free(&rep);
}

/* The body replaces the cost at run time (only setup knew the size). */
static void cost_body(rb_gb_state *st, void *ctx) {
    rb_gb_set_cost(st, 5e5, -1, -1);
    while (rb_gb_keep_running(st)) rb_gb_set_iteration_time(st, 1e-3);
}

Test(gbench, set_cost_overrides_options) {
    rb_gb_bench b = {.name = "cost",
                     .body = cost_body,
                     .opt = {.min_time = 0.005, .manual_time = 1, .bytes = 1e6, .flops = 7e6}};
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(&b, 1, NULL, &rep), 0, "%s", rb_error_detail());
    cr_assert_float_eq(rep.results[0].gbps, 0.5, 1e-6);
    cr_assert_float_eq(rep.results[0].gflops, 7.0, 1e-6);
    rb_gb_report_free(&rep);
}

static void count_body(rb_gb_state *st, void *ctx) {
    ++*(int *) ctx;
    while (rb_gb_keep_running(st)) {}
}

Test(gbench, filter_selects_and_negates) {
    int calls[3] = {0, 0, 0};
    rb_gb_bench b[3] = {
        {.name = "fwht/n:16", .body = count_body, .ctx = &calls[0], .opt = quick(1)},
        {.name = "fwht/n:1024", .body = count_body, .ctx = &calls[1], .opt = quick(1)},
        {.name = "copy/memcpy", .body = count_body, .ctx = &calls[2], .opt = quick(1)},
    };
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(b, 3, "^fwht/n:1024$", &rep), 0, "%s", rb_error_detail());
    cr_assert_eq(rep.count, 1);
    cr_assert_str_eq(rep.results[0].name, "fwht/n:1024");
    cr_assert_eq(rep.results[0].index, 1);
    cr_assert(calls[0] == 0 && calls[1] > 0 && calls[2] == 0);
    rb_gb_report_free(&rep);

    cr_assert_eq(rb_gb_run(b, 3, "-fwht", &rep), 0, "%s", rb_error_detail());
    cr_assert_eq(rep.count, 1);
    cr_assert_str_eq(rep.results[0].name, "copy/memcpy");
    rb_gb_report_free(&rep);

    cr_assert_eq(rb_gb_run(b, 3, "nothing-matches", &rep), 0);
    cr_assert_eq(rep.count, 0);
    rb_gb_report_free(&rep);

    cr_assert_eq(rb_gb_run(b, 3, "fwht(", &rep), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "not a valid regex"), "%s", rb_error_detail());
}

Test(gbench, duplicate_names_are_refused) {
    int calls = 0;
    rb_gb_bench b[2] = {
        {.name = "same", .body = count_body, .ctx = &calls, .opt = quick(1)},
        {.name = "same", .body = count_body, .ctx = &calls, .opt = quick(1)},
    };
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(b, 2, NULL, &rep), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "twice"), "%s", rb_error_detail());
    cr_assert_eq(calls, 0);
}

/* setup runs once per benchmark before its first run, teardown once after its last, even though
 * the library calls the body several times (estimate + repetitions). */
struct lifecycle {
    int setups, teardowns, bodies, bad_state;
    int fail;
};

static int lc_setup(void *ctx) {
    struct lifecycle *l = ctx;
    l->setups++;
    if (l->fail) return rb_error_set(RB_ENOMEM, "no buffer today");
    return 0;
}

static void lc_teardown(void *ctx) {
    ((struct lifecycle *) ctx)->teardowns++;
}

static void lc_body(rb_gb_state *st, void *ctx) {
    struct lifecycle *l = ctx;
    l->bodies++;
    if (l->setups != l->teardowns + 1) l->bad_state++;
    while (rb_gb_keep_running(st)) {}
}

Test(gbench, setup_and_teardown_once_per_benchmark) {
    struct lifecycle a = {0}, c = {0}, f = {.fail = 1};
    rb_gb_bench b[3] = {
        {"a", lc_body, lc_setup, lc_teardown, &a, quick(3)},
        {"f", lc_body, lc_setup, lc_teardown, &f, quick(3)},
        {"c", lc_body, lc_setup, lc_teardown, &c, quick(3)},
    };
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(b, 3, NULL, &rep), 0, "%s", rb_error_detail());
    cr_assert_eq(rep.count, 3);
    cr_assert(a.setups == 1 && a.teardowns == 1 && a.bodies >= 3 && a.bad_state == 0,
              "a: %d setups %d teardowns %d bodies", a.setups, a.teardowns, a.bodies);
    cr_assert(c.setups == 1 && c.teardowns == 1 && c.bad_state == 0);
    /* the failing setup marks its benchmark failed, never calls its body, and the run goes on */
    cr_assert(f.setups == 1 && f.teardowns == 1 && f.bodies == 0);
    cr_assert(rep.results[0].ok && rep.results[2].ok);
    cr_assert(!rep.results[1].ok);
    cr_assert(strstr(rep.results[1].error, "no buffer today"), "%s", rep.results[1].error);
    cr_assert_eq(rep.results[1].nsamples, 0);
    rb_gb_report_free(&rep);
}

static void skip_body(rb_gb_state *st, void *ctx) {
    rb_gb_skip_with_error(st, "declined by the body");
}

static void early_return_body(rb_gb_state *st, void *ctx) {}

Test(gbench, body_errors_are_reported) {
    rb_gb_bench b[2] = {
        {.name = "skip", .body = skip_body, .opt = quick(2)},
        {.name = "early", .body = early_return_body, .opt = quick(2)},
    };
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(b, 2, NULL, &rep), 0, "%s", rb_error_detail());
    cr_assert(!rep.results[0].ok);
    cr_assert_str_eq(rep.results[0].error, "declined by the body");
    cr_assert(!rep.results[1].ok);
    cr_assert(strstr(rep.results[1].error, "returned before"), "%s", rep.results[1].error);
    rb_gb_report_free(&rep);
}

static void batch_body(rb_gb_state *st, void *ctx) {
    int64_t *calls = ctx;
    while (rb_gb_keep_running_batch(st, 64))
        for (int i = 0; i < 64; i++) ++*(volatile int64_t *) calls;
}

Test(gbench, batch_form_counts_every_iteration) {
    int64_t calls = 0;
    rb_gb_bench b = {.name = "batch", .body = batch_body, .ctx = &calls, .opt = quick(2)};
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(&b, 1, NULL, &rep), 0, "%s", rb_error_detail());
    cr_assert(rep.results[0].ok);
    /* every sample's iterations are whole batches, and they add up to the calls made */
    for (size_t i = 0; i < rep.results[0].nsamples; i++)
        cr_assert_eq(rep.results[0].samples[i].iterations % 64, 0);
    cr_assert_leq(rep.results[0].iterations, calls);
    rb_gb_report_free(&rep);
}

Test(gbench, library_threads_run_the_body_concurrently) {
    rb_gb_bench b = {.name = "threads",
                     .body = manual_body,
                     .opt = {.min_time = 0.005, .threads = 2, .manual_time = 1}};
    rb_gb_report rep;
    cr_assert_eq(rb_gb_run(&b, 1, NULL, &rep), 0, "%s", rb_error_detail());
    cr_assert(rep.results[0].ok, "%s", rep.results[0].error);
    cr_assert_eq(rep.results[0].threads, 2);
    cr_assert_gt(rep.results[0].iterations, 0);
    rb_gb_report_free(&rep);
}

/* The peak-add kernels must do exactly the additions they are credited with: with step 1 and
 * n <= 2^24 every accumulator lane counts exactly, so the returned sum is n. */
Test(peak, add_kernels_do_exactly_n_additions) {
    for (size_t v = 0; v < rb_op_peak_add_f32.count; v++) {
        const rb_variant *var = &rb_op_peak_add_f32.variants[v];
        if (!rb_variant_enabled(var)) continue;
        rb_peak_add_f32_fn fn = (rb_peak_add_f32_fn) var->fn;
        for (uint64_t n = RB_PEAK_ADD_QUANTUM; n <= (1u << 20); n *= 4) {
            float sum = -1;
            cr_assert_eq(fn(n, 1.0f, &sum), 0);
            cr_assert_eq(sum, (float) n, "%s: n=%llu sum=%g", var->name, (unsigned long long) n,
                         sum);
        }
    }
    float sum;
    cr_assert_eq(rb_peak_add_f32(RB_PEAK_ADD_QUANTUM + 1, 1.0f, &sum), RB_EINVAL);
    cr_assert_eq(rb_peak_add_f32(0, 1.0f, &sum), RB_EINVAL);
}

/* Streaming copy variants against memcpy at odd lengths and misaligned ends. */
Test(peak, stream_copy_variants_copy_exactly) {
    uint64_t seed = rbt_seed();
    size_t cap = 1 << 16;
    unsigned char *src = malloc(cap + 128), *dst = malloc(cap + 128), *ref = malloc(cap + 128);
    uint32_t *bits = malloc((cap + 128) / 4 * sizeof *bits);
    rb_rng_bits(seed, 1, 0, (cap + 128) / 4, bits);
    memcpy(src, bits, cap + 128);
    size_t lens[] = {0, 1, 3, 63, 64, 65, 127, 255, 4096 + 17, 1 << 15, cap};
    size_t offs[] = {0, 1, 7, 32, 63};
    for (size_t v = 0; v < rb_op_copy_stream.count; v++) {
        const rb_variant *var = &rb_op_copy_stream.variants[v];
        if (!rb_variant_enabled(var)) continue;
        rb_copy_stream_fn fn = (rb_copy_stream_fn) var->fn;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t so = 0; so < 5; so++)
                for (size_t d = 0; d < 5; d++) {
                    memset(dst, 0xAB, cap + 128);
                    memset(ref, 0xAB, cap + 128);
                    memcpy(ref + offs[d], src + offs[so], lens[li]);
                    cr_assert_eq(fn(dst + offs[d], src + offs[so], lens[li]), 0);
                    cr_assert(memcmp(dst, ref, cap + 128) == 0,
                              "%s: len %zu src+%zu dst+%zu seed %llu", var->name, lens[li],
                              offs[so], offs[d], (unsigned long long) seed);
                }
    }
    free(src);
    free(dst);
    free(ref);
    free(bits);
}

/* Streaming fill variants against memset at lengths around their 64- and 256-byte steps and at
 * every misalignment of a line: nothing before or after the span changes. */
Test(peak, stream_fill_variants_fill_exactly) {
    size_t cap = 1 << 16;
    unsigned char *dst = malloc(cap + 128), *ref = malloc(cap + 128);
    size_t lens[] = {0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 257, 4096 + 17, cap};
    int value = (int) (rbt_seed() % 256);
    if (value == 0xAB) value = 0x5A; /* not the background */
    for (size_t v = 0; v < rb_op_fill_stream.count; v++) {
        const rb_variant *var = &rb_op_fill_stream.variants[v];
        if (!rb_variant_enabled(var)) continue;
        rb_fill_stream_fn fn = (rb_fill_stream_fn) var->fn;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t off = 0; off < 64; off++) {
                memset(dst, 0xAB, cap + 128);
                memset(ref, 0xAB, cap + 128);
                memset(ref + off, value, lens[li]);
                cr_assert_eq(fn(dst + off, value, lens[li]), 0);
                cr_assert(memcmp(dst, ref, cap + 128) == 0, "%s: len %zu dst+%zu value %d",
                          var->name, lens[li], off, value);
            }
    }
    free(dst);
    free(ref);
}

/* The CLI end to end on one tiny benchmark with a small copy buffer: exit status, the JSON's
 * shape (samples = repetitions, limits for 1 thread and all cores), and usage errors. */
static int run_cli(const char *args) {
    const char *bin = getenv("RB_TEST_BIN");
    if (!bin) bin = "build/rotabench";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s bench %s >/dev/null 2>&1", bin, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(cli_bench, runs_one_benchmark_and_writes_json) {
    char path[] = "/tmp/rbtest_bench_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char args[256];
    snprintf(args, sizeof args,
             "'^fwht_f32/n:16/threads:1$' --min-time 0.002 --repetitions 3 --copy-mib 8 --json %s",
             path);
    cr_assert_eq(run_cli(args), 0);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    unlink(path);
    cr_assert(root, "bad JSON: %s", err.text);
    json_t *benches = json_object_get(root, "benchmarks");
    cr_assert_eq(json_array_size(benches), 1);
    json_t *b = json_array_get(benches, 0);
    cr_assert_str_eq(json_string_value(json_object_get(b, "name")), "fwht_f32/n:16/threads:1");
    cr_assert(json_is_true(json_object_get(b, "ok")));
    cr_assert_eq(json_array_size(json_object_get(b, "samples")), 3);
    cr_assert(json_is_true(json_object_get(b, "verified")), "checked against the reference");
    double q = json_real_value(json_object_get(b, "cpu_real_ratio"));
    cr_assert(q > 0 && q < 2, "cpu_real_ratio %g", q);
    const char *variant = json_string_value(json_object_get(b, "variant"));
    int known = 0;
    for (size_t v = 0; variant && v < rb_op_fwht_f32.count; v++)
        known |= strcmp(variant, rb_op_fwht_f32.variants[v].name) == 0;
    cr_assert(known, "variant %s is not one of fwht_f32's", variant ? variant : "(null)");
    /* flops per call of an n = 16 FWHT: 16 * 4 */
    cr_assert_eq(json_real_value(json_object_get(b, "flops")), 64.0);
    cr_assert_geq(json_array_size(json_object_get(root, "limits")), 1);
    json_t *l0 = json_array_get(json_object_get(root, "limits"), 0);
    cr_assert_eq(json_integer_value(json_object_get(l0, "threads")), 1);
    cr_assert_gt(json_real_value(json_object_get(l0, "copy_gbps")), 0.0);
    cr_assert_gt(json_real_value(json_object_get(l0, "write_gbps")), 0.0);
    cr_assert_gt(json_real_value(json_object_get(l0, "peak_add_gflops")), 0.0);
    /* measured before and after the benchmarks; the limit is the better of the two */
    double c0 = json_real_value(json_object_get(l0, "copy_gbps_start")),
           c1 = json_real_value(json_object_get(l0, "copy_gbps_end")),
           p0 = json_real_value(json_object_get(l0, "peak_add_gflops_start")),
           p1 = json_real_value(json_object_get(l0, "peak_add_gflops_end"));
    cr_assert(c0 > 0 && c1 > 0 && p0 > 0 && p1 > 0, "copy %g, %g; peak %g, %g", c0, c1, p0, p1);
    cr_assert_eq(json_real_value(json_object_get(l0, "copy_gbps")), c0 > c1 ? c0 : c1);
    cr_assert_eq(json_real_value(json_object_get(l0, "peak_add_gflops")), p0 > p1 ? p0 : p1);
    cr_assert_eq(json_array_size(json_object_get(root, "limit_runs_end")),
                 json_array_size(json_object_get(root, "limit_runs")));
    cr_assert(json_is_array(json_object_get(root, "warnings")));
    json_decref(root);
}

/* rb_limits_fold and rb_limits_copy_drift on made-up measurements: each rate the better of the
 * two, both copy figures kept, a thread count missing from the later measurement left alone,
 * and the drift the largest relative change, from either side. */
static rb_limit made_limit(int threads, double memcpy_gbps, double stream_gbps, double peak) {
    double copy = memcpy_gbps > stream_gbps ? memcpy_gbps : stream_gbps;
    return (rb_limit){.threads = threads,
                      .copy_memcpy_gbps = memcpy_gbps,
                      .copy_stream_gbps = stream_gbps,
                      .copy_gbps = copy,
                      .write_gbps = 0.7 * stream_gbps,
                      .peak_add_gflops = peak,
                      .copy_gbps_start = copy,
                      .peak_start = peak};
}

Test(limits, fold_keeps_the_better_of_two_measurements) {
    static const struct {
        double start[3], end[3]; /* memcpy, stream, peak */
        double copy, peak, drift;
    } rows[] = {
        {{20, 40, 100}, {25, 80, 90}, 80, 100, 0.5},   /* the copy doubled: drift 1 - 40/80 */
        {{30, 60, 100}, {35, 45, 110}, 60, 110, 0.25}, /* it fell: 1 - 45/60, the peak rose */
        {{30, 50, 100}, {52, 20, 100}, 52, 100, 1 - 50.0 / 52}, /* memcpy became the better */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        rb_limits lim = {.count = 2}, later = {.count = 1};
        lim.rows[0] = made_limit(2, rows[i].start[0], rows[i].start[1], rows[i].start[2]);
        lim.rows[1] = made_limit(1, 10, 10, 50); /* not measured again */
        later.rows[0] = made_limit(2, rows[i].end[0], rows[i].end[1], rows[i].end[2]);
        cr_assert_eq(rb_limits_copy_drift(&lim, NULL), 0.0, "row %zu: nothing folded yet", i);
        rb_limits_fold(&lim, &later);
        const rb_limit *l = rb_limits_find(&lim, 2);
        cr_assert_eq(l->copy_gbps, rows[i].copy, "row %zu", i);
        cr_assert_eq(l->peak_add_gflops, rows[i].peak, "row %zu", i);
        cr_assert_eq(l->copy_memcpy_gbps, fmax(rows[i].start[0], rows[i].end[0]), "row %zu", i);
        cr_assert_eq(l->copy_stream_gbps, fmax(rows[i].start[1], rows[i].end[1]), "row %zu", i);
        cr_assert_eq(l->write_gbps, 0.7 * fmax(rows[i].start[1], rows[i].end[1]), "row %zu", i);
        cr_assert_eq(l->copy_gbps_start, fmax(rows[i].start[0], rows[i].start[1]), "row %zu", i);
        cr_assert_eq(l->copy_gbps_end, fmax(rows[i].end[0], rows[i].end[1]), "row %zu", i);
        cr_assert_eq(l->peak_start, rows[i].start[2], "row %zu", i);
        cr_assert_eq(l->peak_end, rows[i].end[2], "row %zu", i);
        const rb_limit *one = rb_limits_find(&lim, 1);
        cr_assert(one->copy_gbps == 10 && one->copy_gbps_end == 0 && one->peak_end == 0,
                  "row %zu: the unmatched row is left alone", i);
        int t = 0;
        cr_assert_float_eq(rb_limits_copy_drift(&lim, &t), rows[i].drift, 1e-12, "row %zu", i);
        cr_assert_eq(t, 2, "row %zu", i);
    }
}

/* An output file that cannot be written is refused before anything is measured: exit 2 at once,
 * the message naming the path (a whole run would otherwise fail only at its end). */
Test(cli_bench, unwritable_json_fails_before_measuring) {
    static const char *const paths[] = {"/nonexistent/x.json", "/tmp"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char args[256], *out = NULL, *err = NULL;
        /* every fwht size: seconds of measuring if the path were checked only at the end */
        snprintf(args, sizeof args, "bench '^fwht_f32/' --min-time 0.05 --json %s", paths[i]);
        cr_assert_eq(rbt_run_cli(args, &out, &err), 2, "%s", paths[i]);
        cr_assert(strstr(err, paths[i]), "the message names the path: %s", err);
        cr_assert_null(strstr(out, "machine limits"), "nothing measured: %s", out);
        free(out);
        free(err);
    }
}

/* An RB_KERNELS that is not a selection (wrong case, a typo) is refused by bench and run with
 * exit 2 and the valid values, instead of measuring "auto" under a name nobody asked for. */
Test(cli_bench, unknown_rb_kernels_is_refused) {
    static const char *const cases[] = {
        ("RB_KERNELS=AVX2 ${RB_TEST_BIN} bench '^fwht_f32/n:16/threads:1$' --min-time 0.002 "
         "--repetitions 1 --copy-mib 8"), /* one string: parentheses say so to clang */
        "RB_KERNELS=avx3 ${RB_TEST_BIN} bench --list",
        /* would be a dry run of the default config (exit 0) if the value were taken as auto */
        "RB_KERNELS=Ref ${RB_TEST_BIN} run configs/default.yaml --dry-run -o /tmp/rbtest_kernels",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s 2>&1", cases[i]); /* with RB_KERNELS in front of it */
        if (!getenv("RB_TEST_BIN")) cr_skip_test("RB_TEST_BIN is not set");
        FILE *p = popen(cmd, "r");
        cr_assert(p);
        char out[8192];
        size_t len = fread(out, 1, sizeof out - 1, p);
        out[len] = 0;
        int st = pclose(p);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %d: %s", cases[i], st, out);
        cr_assert(strstr(out, "auto, avx512, avx2, scalar, ref"), "%s: %s", cases[i], out);
        cr_assert_null(strstr(out, "machine limits"), "%s: nothing measured: %s", cases[i], out);
    }
    cr_assert_eq(run_cli("--help | grep -q RB_KERNELS"), 0, "bench --help mentions RB_KERNELS");
}

/* More threads than physical cores: one warning on stderr naming the count and the cores, for
 * bench (the run goes on) and for run. */
Test(cli_bench, threads_above_the_cores_warn) {
    int t = rb_pool_cores() + 1;
    char args[512], *out = NULL, *err = NULL, want[64];
    snprintf(want, sizeof want, "%d physical core", t - 1);
    snprintf(args, sizeof args,
             "bench '^fwht_f32/n:16/' --threads %d --min-time 0.002 --repetitions 1 "
             "--copy-mib 8",
             t);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, want) && strstr(err, "share cores"), "%s", err);
    cr_assert_null(strstr(strstr(err, "share cores") + 1, "share cores"), "once: %s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "run configs/default.yaml --dry-run --threads %d -o /tmp/rbtest_t",
             t);
    rbt_run_cli(args, &out, &err);
    cr_assert(strstr(err, want) && strstr(err, "share cores"), "%s", err);
    free(out);
    free(err);
}

Test(cli_bench, usage_errors) {
    cr_assert_eq(run_cli("--help"), 0);
    cr_assert_eq(run_cli("--min-time -1"), 2);
    cr_assert_eq(run_cli("--repetitions"), 2);
    cr_assert_eq(run_cli("--threads 0"), 2);
    cr_assert_eq(run_cli("--threads 1,,2 --list"), 2); /* an empty item is not skipped */
    cr_assert_eq(run_cli("--threads 1, --list"), 2);
    static const char *const bad_shapes[] = {
        "0",          "x5", "5x", "0x5", "-4", "4x-5", "1e3", "4x4x4", "99999999999999999999",
        "65536x65537"}; /* 2^32 + 65536 elements */
    for (size_t i = 0; i < sizeof bad_shapes / sizeof bad_shapes[0]; i++) {
        char a[96];
        snprintf(a, sizeof a, "--shape %s --list", bad_shapes[i]);
        cr_assert_eq(run_cli(a), 2, "%s", a);
    }
    cr_assert_eq(run_cli("--shape 65536x65536 --list"), 0, "2^32 elements are allowed");
    cr_assert_eq(run_cli("--bogus"), 2);
    cr_assert_eq(run_cli("no-such-benchmark"), 2);
    cr_assert_eq(run_cli("'fwht(' --list"), 2);
}

/* The registry expands its table: every FWHT size 2^4..2^24 and both LLM batches at 1 and 2
 * threads, unique names, costs from rb_fwht_cost; --threads replaces the thread lists. */
Test(bench_registry, expands_the_table) {
    rb_bench_inst *inst;
    size_t n;
    cr_assert_eq(rb_bench_instances(NULL, 0, &inst, &n), 0);
    int single[25][3] = {{0}};
    int batch128 = 0, batch4096 = 0;
    size_t nfwht = 0, nhad = 0, shapes = 0, ncodec = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) cr_assert_str_neq(inst[i].name, inst[j].name);
        const rb_bench_args *a = &inst[i].args;
        cr_assert(a->threads == 1 || a->threads == 2, "%s", inst[i].name);
        rb_cost own = inst[i].entry->cost(a->n, a->rows, 4);
        cr_assert(own.flops >= 0 && own.bytes > 0 && inst[i].cost.flops == own.flops, "%s",
                  inst[i].name);
        ncodec += strncmp(inst[i].name, "codec_", 6) == 0;
        nhad += strncmp(inst[i].name, "hadamard_f32/rows:2048/", 23) == 0;
        shapes += a->threads == 1; /* every entry runs at 1 thread */
        if (strcmp(inst[i].entry->name, "fwht_f32")) continue;
        nfwht++;
        rb_cost c = rb_fwht_cost(a->n, a->rows, 4);
        cr_assert_eq(inst[i].cost.flops, c.flops);
        cr_assert_eq(inst[i].cost.bytes, c.bytes);
        cr_assert_geq(inst[i].batch, 1);
        if (a->rows == 1) {
            int k = rb_log2_exact(a->n);
            cr_assert(k >= 4 && k <= 24, "%s", inst[i].name);
            single[k][a->threads]++;
        } else {
            cr_assert_eq(a->rows, 2048);
            batch128 += a->n == 128;
            batch4096 += a->n == 4096;
        }
    }
    for (int k = 4; k <= 24; k++) cr_assert(single[k][1] == 1 && single[k][2] == 1, "k=%d", k);
    cr_assert(batch128 == 2 && batch4096 == 2);
    cr_assert_eq(nfwht, 21 * 2 + 4);
    cr_assert_eq(nhad, 3 * 2, "the LLM sizes 3072, 11008 and 14336 at 1 and 2 threads");
    size_t nm, ncodecs = 0;
    const rb_method *const *m = rb_methods_all(&nm);
    for (size_t i = 0; i < nm; i++) ncodecs += m[i]->family == RB_FAMILY_CODEC && m[i]->codec;
    cr_assert_eq(ncodec, ncodecs * 2 * 2,
                 "every vector codec (not KV methods): encode and decode at d = 128 and 1536");
    rb_bench_instances_free(inst, n);

    int four = 4;
    cr_assert_eq(rb_bench_instances(&four, 1, &inst, &n), 0);
    cr_assert_eq(n, shapes, "an override keeps one instance per shape");
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(inst[i].args.threads, 4);
        cr_assert(strstr(inst[i].name, "/threads:4"), "%s", inst[i].name);
    }
    rb_bench_instances_free(inst, n);
}

/* --shape: every instance takes n; those with rows take rows and one-vector ones stay one vector;
 * an entry's table shapes collapse onto one instance per (shape, threads); the cost, seed and
 * name follow the new shape. */
Test(bench_registry, reshape_sets_the_shape_once_per_entry) {
    rb_bench_inst *inst;
    size_t n, before;
    cr_assert_eq(rb_bench_instances(NULL, 0, &inst, &n), 0);
    before = n;
    rb_bench_reshape(inst, &n, 4096, 8192);
    cr_assert(n > 0 && n < before);
    size_t fwht_one = 0, fwht_rows = 0;
    for (size_t i = 0; i < n; i++) {
        const rb_bench_inst *b = &inst[i];
        cr_assert_eq(b->args.n, 8192, "%s", b->name);
        cr_assert(b->args.rows == 1 || b->args.rows == 4096, "%s", b->name);
        for (size_t j = 0; j < i; j++) cr_assert_str_neq(inst[j].name, b->name);
        char want[RB_BENCH_NAME_MAX];
        if (b->args.rows > 1)
            snprintf(want, sizeof want, "%s/rows:4096/n:8192/threads:%d", b->entry->name,
                     b->args.threads);
        else
            snprintf(want, sizeof want, "%s/n:8192/threads:%d", b->entry->name, b->args.threads);
        cr_assert_str_eq(b->name, want);
        rb_cost c = b->entry->cost(8192, b->args.rows, sizeof(float));
        cr_assert(c.bytes == b->cost.bytes && c.flops == b->cost.flops, "%s", b->name);
        if (!strcmp(b->entry->name, "fwht_f32")) {
            fwht_one += b->args.rows == 1;
            fwht_rows += b->args.rows == 4096;
        }
    }
    cr_assert_eq(fwht_one, 2, "the 21 one-vector sizes collapse to one, at 1 and 2 threads");
    cr_assert_eq(fwht_rows, 2, "the two batched sizes collapse to one, at 1 and 2 threads");
    rb_bench_instances_free(inst, n);
    /* n only: the rows stay the table's */
    cr_assert_eq(rb_bench_instances(NULL, 0, &inst, &n), 0);
    rb_bench_reshape(inst, &n, 0, 256);
    int kept_rows = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(inst[i].args.n, 256, "%s", inst[i].name);
        kept_rows |= inst[i].args.rows == 262144;
    }
    cr_assert(kept_rows, "a rows axis keeps its table values when only n is given");
    rb_bench_instances_free(inst, n);
}

/* A shape a kernel does not take fails that benchmark's setup with the kernel's reason, and the
 * command exits 1; the others still run. */
Test(cli_bench, shape_a_kernel_refuses_says_why) {
    char *out, *err;
    int st = rbt_run_cli("bench --shape 64x100 '^(fwht_f32/rows|rows_sqnorm_f32/)' --min-time "
                         "0.002 --repetitions 1 --copy-mib 8",
                         &out, &err);
    cr_assert_eq(st, 1, "%s%s", out, err);
    cr_assert(strstr(out, "fwht_f32/rows:64/n:100/threads:1") && strstr(out, "not a power of two"),
              "%s", out);
    cr_assert(strstr(out, "rows_sqnorm_f32/rows:64/n:100/threads:1"), "%s", out);
    free(out);
    free(err);
}

/* Setup fills the inputs with the instance's Philox normals, sets the pool's threads and records
 * the variant; teardown frees and restores the thread count. */
Test(bench_registry, setup_fills_inputs_and_teardown_restores) {
    rb_bench_inst *inst;
    size_t n;
    cr_assert_eq(rb_bench_instances(NULL, 0, &inst, &n), 0);
    rb_bench_inst *b = NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(inst[i].name, "fwht_f32/n:1024/threads:2")) b = &inst[i];
    cr_assert(b);
    cr_assert_eq(rb_threads_set(1), 0);
    cr_assert_eq(rb_bench_setup(b), 0, "%s", rb_error_detail());
    cr_assert_eq(rb_threads_get(), 2);
    cr_assert(b->variant);
    /* setup made one untimed call: x is the orthonormal FWHT of the seeded normals */
    float *x = malloc(1024 * sizeof *x);
    rb_rng_normal_f32(b->seed, 0, 0, 1024, x);
    cr_assert_eq(rb_fwht_f32(x, 1024, 1, 1024, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
    cr_assert(memcmp(x, b->x, 1024 * sizeof *x) == 0);
    free(x);
    rb_bench_teardown(b);
    cr_assert_null(b->x);
    cr_assert_eq(rb_threads_get(), 1);
    rb_bench_instances_free(inst, n);
}

/* Whether the check against the reference has teeth for instance b, set up (so its declared
 * output holds the reference's): the call must write every byte of the output it declares
 * (entry->out, or x in place), and an in-place call must change x. An entry whose output is
 * elsewhere than it declares would compare bytes that neither call wrote, and always pass.
 * NULL, or what is wrong. */
static size_t declared_output(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    if (b->entry->out) return b->entry->out(b, rows, s);
    s[0] = (rb_bench_span){b->x, rows * b->args.n * sizeof(float)};
    return 1;
}
static int spans_equal(const rb_bench_span *s, size_t ns, const unsigned char *want) {
    for (size_t k = 0; k < ns; want += s[k].bytes, k++)
        if (memcmp(s[k].p, want, s[k].bytes)) return 0;
    return 1;
}
static const char *output_is_checked(rb_bench_inst *b) {
    size_t rows = b->args.rows, vr = b->entry->verify_rows;
    if (!vr || vr > rows) vr = rows;
    rb_bench_span s[RB_BENCH_SPANS_MAX];
    size_t ns = declared_output(b, vr, s), total = 0;
    for (size_t k = 0; k < ns; k++) total += s[k].bytes;
    if (!total) return "it declares no output";
    if (!b->entry->out && !b->x) return "its output is x (no entry->out), which setup freed";
    unsigned char *want = malloc(total), *p = want;
    cr_assert(want);
    for (size_t k = 0; k < ns; p += s[k].bytes, k++) memcpy(p, s[k].p, s[k].bytes);
    const char *why = NULL;
    if (b->entry->out) {
        for (size_t k = 0; k < ns; k++) memset((void *) s[k].p, 0xA5, s[k].bytes);
    } else {
        /* what setup's check refills x with (one Philox draw at these sizes) */
        rb_rng_normal_f32(b->seed, 0, 0, rows * b->args.n, b->x);
        if (spans_equal(s, ns, want)) why = "the call leaves x as it was: its output is elsewhere";
    }
    if (!why && b->entry->call(b)) why = rb_error_detail();
    if (!why && !spans_equal(s, ns, want))
        why = "the call does not write all of its declared output as the reference did";
    free(want);
    return why;
}

/* Every entry of the table, the codec lines included (none is listed here, so a new one is
 * checked without an edit): at each thread count its smallest shape, rows cut to at most
 * VERIFY_ELEMS elements (the same setup path: only the size changes), must set up, match the
 * reference bit for bit, and pass output_is_checked. An entry may refuse a shape (octopus:
 * d = 128) but not all of them. */
enum { VERIFY_ELEMS = 1 << 19 };
static size_t inst_elems(const rb_bench_inst *b) {
    return b->args.n * b->args.rows;
}

Test(bench_registry, every_entry_verifies_against_the_reference, .timeout = 480) {
    rb_bench_inst *inst;
    size_t n;
    cr_assert_eq(rb_bench_instances(NULL, 0, &inst, &n), 0);
    const char *sel = rb_kernels_selection(); /* RB_KERNELS may set it */
    for (size_t i = 0; i < n; i++) {
        size_t cap = VERIFY_ELEMS / inst[i].args.n;
        if (inst_elems(&inst[i]) > VERIFY_ELEMS) inst[i].args.rows = cap ? cap : 1;
    }
    size_t entries = 0, *order = malloc(n * sizeof *order);
    cr_assert(order);
    for (size_t i = 0; i < n; i++) {
        /* once per (entry, threads): the first instance of each pair does the work */
        int first = 1;
        for (size_t j = 0; j < i && first; j++)
            first = inst[j].entry != inst[i].entry || inst[j].args.threads != inst[i].args.threads;
        if (!first) continue;
        entries++;
        size_t m = 0; /* the pair's instances, smallest first */
        for (size_t j = i; j < n; j++) {
            if (inst[j].entry != inst[i].entry || inst[j].args.threads != inst[i].args.threads)
                continue;
            size_t k = m++;
            for (; k > 0 && inst_elems(&inst[order[k - 1]]) > inst_elems(&inst[j]); k--)
                order[k] = order[k - 1];
            order[k] = j;
        }
        int done = 0;
        for (size_t k = 0; k < m && !done; k++) {
            rb_bench_inst *b = &inst[order[k]];
            int rc = rb_bench_setup(b);
            cr_assert_str_eq(rb_kernels_selection(), sel, "%s: selection restored", b->name);
            if (rc) {
                cr_assert_eq(b->verified, -1, "%s", b->name);
            } else {
                cr_expect_eq(b->verified, 1, "%s: %s", b->name, b->verify_note);
                cr_expect(b->cost.bytes > 0 && b->cost.flops >= 0, "%s: cost", b->name);
                const char *why = output_is_checked(b);
                cr_expect_null(why, "%s: %s", b->name, why ? why : "");
                done = 1;
            }
            rb_bench_teardown(b);
        }
        cr_assert(done, "%s: no shape of the entry sets up: %s", inst[i].name, rb_error_detail());
    }
    free(order);
    cr_assert_geq(entries, 40, "the table and the codec lines");
    rb_bench_instances_free(inst, n);
}

/* output_is_checked catches what setup's check alone lets through: fakes that write 2 x to aux,
 * which declare no output (x is compared, and neither call touches it), or a span the call does
 * not write; the same fake declaring where it writes passes. Setup verifies all three. */
static int fake_setup(rb_bench_inst *b) {
    b->aux = calloc(2 * b->args.n * b->args.rows, sizeof(float));
    return b->aux ? RB_OK : RB_ENOMEM;
}
static void fake_teardown(rb_bench_inst *b) {
    free(b->aux);
}
static int fake_double(rb_bench_inst *b) {
    float *y = b->aux;
    for (size_t i = 0; i < b->args.n * b->args.rows; i++) y[i] = 2.0f * b->x[i];
    return RB_OK;
}
static size_t fake_out_written(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    s[0] = (rb_bench_span){b->aux, rows * b->args.n * sizeof(float)};
    return 1;
}
static size_t fake_out_unwritten(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    const float *y = b->aux;
    s[0] = (rb_bench_span){y + b->args.n * b->args.rows, rows * b->args.n * sizeof(float)};
    return 1;
}

Test(bench_registry, output_check_catches_vacuous_entries) {
    static const struct {
        size_t (*out)(const rb_bench_inst *, size_t, rb_bench_span *);
        const char *why; /* NULL: passes */
    } cases[] = {
        {NULL, "leaves x as it was"},
        {fake_out_unwritten, "does not write"},
        {fake_out_written, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rb_bench_entry e = {.name = "fake",
                            .call = fake_double,
                            .cost = rb_fwht_cost,
                            .setup = fake_setup,
                            .teardown = fake_teardown,
                            .out = cases[c].out};
        rb_bench_inst b = {.entry = &e, .args = {64, 3, 1}, .seed = 7, .batch = 1};
        snprintf(b.name, sizeof b.name, "fake/rows:3/n:64/threads:1");
        cr_assert_eq(rb_bench_setup(&b), 0, "case %zu", c);
        cr_assert_eq(b.verified, 1, "case %zu: setup's check alone passes it", c);
        const char *why = output_is_checked(&b);
        if (cases[c].why)
            cr_assert(why && strstr(why, cases[c].why), "case %zu: %s", c, why ? why : "(passed)");
        else
            cr_assert_null(why, "case %zu: %s", c, why ? why : "");
        rb_bench_teardown(&b);
    }
}

/* The new entries' kernel cost functions on small shapes, worked by hand from their definitions
 * (flops: one per add, subtract, multiply or divide; bytes: every input read and output written
 * once). */
Test(bench_registry, row_and_fp4_costs_count_the_definition) {
    static const struct {
        const char *what;
        int kind;
        size_t a, b, c, d;
        double flops, bytes;
    } cases[] = {
        /* 1024 codes: 1 byte in, 4 bits out */
        {"pack", 0, 1024, 4, 0, 0, 0, 1024 * 1.5},
        /* 2 bits in, 4 bytes out a code */
        {"codebook decode", 1, 1024, 2, 0, 0, 0, 1024 * 4.25},
        /* 4 x 128: a multiply and an add an element; 4 bytes (8 for the dot) in, 8 out a row */
        {"sqnorm", 2, 4, 128, 0, 0, 1024, 2048 + 32},
        {"dot", 2, 4, 128, 1, 0, 1024, 4096 + 32},
        /* a multiply an element, 8 bytes an element, the factors */
        {"scale f64", 3, 4, 128, 4, 8, 512, 4096 + 32},
        {"mul", 3, 4, 128, 128, 4, 512, 4096 + 512},
        /* 4 x 200 in groups of 128: 2 groups a row; asym 2 flops and 8 bytes a group, sym 1, 4 */
        {"dequant asym", 4, 4, 200, 128, 1, 1600, 800 * 5 + 8 * 8},
        {"dequant sym", 4, 4, 200, 128, 0, 800, 800 * 5 + 8 * 4},
        /* 100 elements: 4 blocks of 32 (a multiply an element), 7 of 16 (and a divide a block) */
        {"mxfp4", 5, 100, 0, 0, 0, 100, 50 + 400 + 4},
        {"nvfp4", 6, 100, 0, 0, 0, 107, 50 + 400 + 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t a = cases[i].a, b = cases[i].b, c = cases[i].c, d = cases[i].d;
        rb_cost got = cases[i].kind == 0   ? rb_pack_cost(a, (int) b)
                      : cases[i].kind == 1 ? rb_codebook_decode_rows_cost(a, (int) b)
                      : cases[i].kind == 2 ? rb_rows_reduce_cost(a, b, (int) c)
                      : cases[i].kind == 3 ? rb_rows_scale_cost(a, b, c, d)
                      : cases[i].kind == 4 ? rb_dequant_rows_cost(a, b, c, (int) d)
                      : cases[i].kind == 5 ? rb_mxfp4_dequant_cost(a)
                                           : rb_nvfp4_dequant_cost(a);
        cr_expect_eq(got.flops, cases[i].flops, "%s: flops %g", cases[i].what, got.flops);
        cr_expect_eq(got.bytes, cases[i].bytes, "%s: bytes %g", cases[i].what, got.bytes);
    }
}

/* Every op with an optimized CPU variant (one that is not the reference and not CUDA's) has a
 * benchmark, so that a new one cannot go unmeasured; the limit probes are measured by every
 * bench run before the table. */
Test(bench_registry, every_optimized_op_has_a_benchmark) {
    rb_bench_inst *inst;
    size_t n, nops;
    cr_assert_eq(rb_bench_instances(NULL, 0, &inst, &n), 0);
    const rb_op *const *ops = rb_ops_all(&nops);
    size_t checked = 0;
    for (size_t o = 0; o < nops; o++) {
        int fast = 0, seen = 0;
        for (size_t v = 0; v < ops[o]->count; v++)
            fast |=
                strcmp(ops[o]->variants[v].name, "ref") && !(ops[o]->variants[v].isa & RB_ISA_CUDA);
        if (!fast || ops[o] == &rb_op_peak_add_f32 || ops[o] == &rb_op_copy_stream ||
            ops[o] == &rb_op_fill_stream)
            continue;
        checked++;
        for (size_t i = 0; i < n && !seen; i++) seen = inst[i].entry->op == ops[o];
        cr_expect(seen, "op %s has optimized variants and no benchmark", ops[o]->name);
    }
    cr_assert_geq(checked, 19, "the ops with optimized variants");
    rb_bench_instances_free(inst, n);
}

/* A call whose output depends on the selection (a wrong fast path) is reported, not failed:
 * setup succeeds, verified is 0 and the note names the variant; so is an entry declaring its
 * output in x after its setup freed x (nothing to compare); the untimed call's own error still
 * fails setup before any comparison (verified -1). */
static int wrong_fast_path(rb_bench_inst *b) {
    int rc = rb_fwht_f32(b->x, b->args.n, b->args.rows, b->args.n, RB_NORM_ORTHO, RB_ORDER_NATURAL);
    if (strcmp(rb_kernels_selection(), "ref")) b->x[b->args.n * b->args.rows - 1] += 1.0f;
    return rc;
}
static int free_x(rb_bench_inst *b) {
    free(b->x);
    b->x = NULL;
    return RB_OK;
}
static int no_call(rb_bench_inst *b) {
    return RB_OK;
}
static int failing_call(rb_bench_inst *b) {
    return rb_error_set(RB_EINVAL, "%s: refused", b->name);
}

Test(bench_registry, setup_reports_a_mismatch) {
    static const struct {
        int (*call)(rb_bench_inst *);
        int (*setup)(rb_bench_inst *);
        int setup_rc, verified;
        const char *note;
    } cases[] = {
        {wrong_fast_path, NULL, 0, 0, "differs"},
        {no_call, free_x, 0, 0, "setup freed"},
        {failing_call, NULL, RB_EINVAL, -1, NULL},
    };
    cr_assert_eq(rb_kernels_select("auto"), 0); /* the fake's fast path is wrong under auto */
    const char *sel = rb_kernels_selection();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rb_bench_entry e = {.name = "fake",
                            .op = &rb_op_fwht_f32,
                            .call = cases[c].call,
                            .cost = rb_fwht_cost,
                            .setup = cases[c].setup};
        rb_bench_inst b = {.entry = &e, .args = {64, 3, 1}, .seed = 7, .batch = 1};
        snprintf(b.name, sizeof b.name, "fake/rows:3/n:64/threads:1");
        cr_assert_eq(rb_bench_setup(&b), cases[c].setup_rc, "case %zu", c);
        cr_assert_eq(b.verified, cases[c].verified, "case %zu", c);
        if (cases[c].note) cr_assert(strstr(b.verify_note, cases[c].note), "%s", b.verify_note);
        cr_assert_str_eq(rb_kernels_selection(), sel);
        rb_bench_teardown(&b);
    }
}

/* The busy-machine count: one-thread results (pool and library) under 0.9 CPU / real time, the
 * worst ratio among them; multi-thread and failed results do not count. */
Test(bench_registry, busy_counts_one_thread_results_below_the_ratio) {
    static const struct {
        double cpu[3];
        int pool[3], lib[3], ok[3];
        size_t count;
        double worst;
    } cases[] = {
        {{100, 95, 91}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 0, 1.0},
        {{100, 50, 91}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0.5},
        {{80, 50, 30}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 3, 0.3},
        {{50, 40, 30}, {2, 1, 1}, {1, 2, 1}, {1, 1, 0}, 0, 1.0}, /* threads, failed */
        {{89, 100, 100}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1, 0.89},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rb_gb_result res[3] = {{0}};
        rb_bench_inst inst[3] = {{0}};
        for (int i = 0; i < 3; i++) {
            res[i] = (rb_gb_result){
                .index = (size_t) i, .ok = cases[c].ok[i], .threads = cases[c].lib[i]};
            res[i].real_ns.median = 100;
            res[i].cpu_ns.median = cases[c].cpu[i];
            inst[i].args.threads = cases[c].pool[i];
        }
        rb_gb_report rep = {.results = res, .count = 3};
        double worst;
        cr_assert_eq(rb_bench_busy(&rep, inst, &worst), cases[c].count, "case %zu", c);
        cr_assert_float_eq(worst, cases[c].worst, 1e-12, "case %zu", c);
    }
}
