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
    cr_assert_gt(json_real_value(json_object_get(l0, "peak_add_gflops")), 0.0);
    cr_assert(json_is_array(json_object_get(root, "warnings")));
    json_decref(root);
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

/* Setup checks the untimed call against the reference variants on the same input: every kind
 * of entry (in place, packed outputs, codes, decodes, the codec lines) at a small shape. */
static const char *const verified_cases[] = {
    "fwht_f32/n:1024/threads:1",
    "fwht_f32/rows:2048/n:128/threads:2",
    "hadamard_f32/rows:2048/n:3072/threads:1",
    "rht_f32/rows:2048/n:128/threads:1",
    "quant_int4_g128_pack/rows:2048/n:128/threads:1",
    "mxfp4_fake_quant/rows:2048/n:4096/threads:1",
    "nvfp4_fake_quant/rows:2048/n:4096/threads:1",
    "kv_int4_encode/rows:1024/n:128/threads:1",
    "kv_int4_encode_plain/rows:1024/n:128/threads:1",
    "kv_int4_decode/rows:1024/n:128/threads:1",
    "codebook4_quant/rows:8192/n:128/threads:1",
    "rhtcodec_encode_b2/rows:1024/n:128/threads:1",
    "rhtcodec_decode_b4/rows:64/n:1536/threads:1",
    "codec_", /* every codec_*_encode/decode at n = 128 */
};

Test(bench_registry, setup_verifies_against_the_reference, .timeout = 240) {
    rb_bench_inst *inst;
    size_t n;
    cr_assert_eq(rb_bench_instances(NULL, 0, &inst, &n), 0);
    const char *sel = rb_kernels_selection(); /* RB_KERNELS may set it */
    for (size_t c = 0; c < sizeof verified_cases / sizeof verified_cases[0]; c++) {
        const char *want = verified_cases[c];
        int prefix = want[strlen(want) - 1] == '_', seen = 0;
        for (size_t i = 0; i < n; i++) {
            rb_bench_inst *b = &inst[i];
            if (prefix ? strncmp(b->name, want, strlen(want)) || b->args.n != 128 ||
                             b->args.threads != 1
                       : strcmp(b->name, want))
                continue;
            seen++;
            int rc = rb_bench_setup(b);
            /* a codec that refuses the shape (octopus: d = 128) is not compared */
            cr_assert(!rc || prefix, "%s: %s", b->name, rb_error_detail());
            cr_expect_eq(b->verified, rc ? -1 : 1, "%s: %s", b->name, b->verify_note);
            cr_assert_str_eq(rb_kernels_selection(), sel, "%s: selection restored", b->name);
            rb_bench_teardown(b);
        }
        cr_assert(seen, "no instance %s", want);
    }
    rb_bench_instances_free(inst, n);
}

/* A call whose output depends on the selection (a wrong fast path) is reported, not failed:
 * setup succeeds, verified is 0 and the note names the variant; the untimed call's own error
 * still fails setup before any comparison (verified -1). */
static int wrong_fast_path(rb_bench_inst *b) {
    int rc = rb_fwht_f32(b->x, b->args.n, b->args.rows, b->args.n, RB_NORM_ORTHO, RB_ORDER_NATURAL);
    if (strcmp(rb_kernels_selection(), "ref")) b->x[b->args.n * b->args.rows - 1] += 1.0f;
    return rc;
}
static int failing_call(rb_bench_inst *b) {
    return rb_error_set(RB_EINVAL, "%s: refused", b->name);
}

Test(bench_registry, setup_reports_a_mismatch) {
    static const struct {
        int (*call)(rb_bench_inst *);
        int setup_rc, verified;
    } cases[] = {
        {wrong_fast_path, 0, 0},
        {failing_call, RB_EINVAL, -1},
    };
    cr_assert_eq(rb_kernels_select("auto"), 0); /* the fake's fast path is wrong under auto */
    const char *sel = rb_kernels_selection();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rb_bench_entry e = {
            .name = "fake", .op = &rb_op_fwht_f32, .call = cases[c].call, .cost = rb_fwht_cost};
        rb_bench_inst b = {.entry = &e, .args = {64, 3, 1}, .seed = 7, .batch = 1};
        snprintf(b.name, sizeof b.name, "fake/rows:3/n:64/threads:1");
        cr_assert_eq(rb_bench_setup(&b), cases[c].setup_rc, "case %zu", c);
        cr_assert_eq(b.verified, cases[c].verified, "case %zu", c);
        if (!cases[c].verified) cr_assert(strstr(b.verify_note, "differs"), "%s", b.verify_note);
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
