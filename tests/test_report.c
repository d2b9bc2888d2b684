/* Tests for context.json, report.md generation (tables, expectations, plots) and the `report`
 * command. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/context.h"
#include "harness/record.h"
#include "harness/report.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

static const rb_param_def mdefs[] = {
    RB_PARAM_INT("bits", "2", 1, 8, "bits per coordinate"),
    RB_PARAM_ENUM("rotation", "rht", "rht|haar|none", "rotation"),
};
static const rb_param_def ddefs[] = {
    RB_PARAM_INT("dim", "128", 1, 4096, "dimension"),
    RB_PARAM_INT("count", "1000", 1, 1000000, "vectors"),
};

static char tmpdir[256];

static void mktmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rbtest_report_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

/* RB_TEST_KEEP=1 keeps the directories (to look at the report and plots). */
static void rmtmp(void) {
    const char *keep = getenv("RB_TEST_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        fprintf(stderr, "kept %s\n", tmpdir);
        return;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t) n + 1);
    size_t got = fread(s, 1, (size_t) n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

static int have_gnuplot(void) {
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static const char *config_json =
    "{\"name\": \"crafted\", \"seed\": 1,"
    " \"plots\": [{\"x\": \"bits\", \"y\": \"vnmse\", \"series\": \"label\", \"logy\": true,"
    "              \"title\": \"vNMSE by bit width\"},"
    "             {\"x\": \"bits\", \"y\": \"vnmse\", \"series\": \"method\", \"dataset\": "
    "\"nope\"}]}";

/* The fields every crafted codec row shares (dataset sphere128, backend cpu, n 1000, no
 * throughput); the caller sets metric, value and stderr_. */
static rb_record crafted_record(const char *method, const char *label, rb_params *dp, rb_params *p,
                                const char *key, int rep) {
    return (rb_record){.dataset = "sphere128",
                       .dparams = dp,
                       .family = "codec",
                       .method = method,
                       .label = label,
                       .method_version = 1,
                       .params = p,
                       .backend = "cpu",
                       .seed = 10 + (uint64_t) rep,
                       .repeat = rep,
                       .unit = "",
                       .n = 1000,
                       .items_per_s = NAN,
                       .gbps = NAN,
                       .gflops = NAN,
                       .frac_bw = NAN,
                       .frac_peak = NAN,
                       .cpu_wait = NAN,
                       .cell_key = key};
}

/* A results directory: context.json, two codecs x bits 1..4 (tq with two repeats), a latency
 * row, and expect.jsonl with 2 PASS, 1 FAIL, 1 MISSING. */
static void craft_with(const char *dir, const char *cfg_json) {
    char *argv[] = {"rotabench", "run", "crafted.yaml"};
    json_t *seeds = json_pack("{s:i}", "base", 1);
    json_t *ctx =
        rb_context_build(3, argv, "configs/crafted.yaml", cfg_json, "abc123", seeds, NULL);
    json_decref(seeds);
    cr_assert_not_null(ctx, "%s", rb_error_detail());
    cr_assert_eq(rb_context_write(dir, ctx), 0, "%s", rb_error_detail());
    json_decref(ctx);

    rb_results *res;
    cr_assert_eq(rb_results_open(dir, &res), 0, "%s", rb_error_detail());
    rb_params dp;
    cr_assert_eq(rb_params_init(&dp, RB_PARAMS_OF(ddefs)), 0);
    const char *labels[2] = {"tq", "eden-unbiased"}, *methods[2] = {"turboquant_mse", "eden"};
    for (int m = 0; m < 2; m++) {
        for (int bits = 1; bits <= 4; bits++) {
            for (int rep = 0; rep < (m == 0 ? 2 : 1); rep++) {
                rb_params p;
                cr_assert_eq(rb_params_init(&p, RB_PARAMS_OF(mdefs)), 0);
                char b[16], key[64];
                snprintf(b, sizeof b, "%d", bits);
                cr_assert_eq(rb_params_set(&p, "bits", b), 0);
                snprintf(key, sizeof key, "sphere|%s|bits=%d|cpu|%d", labels[m], bits, rep);
                rb_record r = crafted_record(methods[m], labels[m], &dp, &p, key, rep);
                /* tq bits=2 repeats: 0.1158 and 0.1162 (mean 0.1160), stderr 0.0004*sqrt(2). */
                double base = (m == 0 ? 0.36 : 0.40) * pow(0.3222, bits - 1);
                if (m == 0 && bits == 2) base = rep ? 0.1162 : 0.1158;
                r.metric = "vnmse";
                r.value = base;
                r.stderr_ = 0.0004 * sqrt(2.0);
                cr_assert_eq(rb_results_write(res, &r), 0);
                r.metric = "bits";
                r.value = bits + (m == 1 ? 0.25 : 0);
                r.stderr_ = NAN;
                cr_assert_eq(rb_results_write(res, &r), 0);
                if (bits == 4 && rep == 0) {
                    double samples[5] = {2e-6, 1e-6, 3e-6, 4e-6, 5e-6};
                    r.metric = "encode_latency";
                    r.unit = "s";
                    r.value = 3e-6;
                    r.samples = samples;
                    r.nsamples = 5;
                    r.items_per_s = 333e3;
                    r.items_unit = "vectors";
                    r.gbps = 12.5;
                    r.frac_bw = 0.42;
                    r.kernel_variants = "fwht_f32=avx512";
                    cr_assert_eq(rb_results_write(res, &r), 0);
                }
                cr_assert_eq(rb_results_end_cell(res, key), 0);
            }
        }
    }
    rb_results_close(res);

    char path[600];
    snprintf(path, sizeof path, "%s/expect.jsonl", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(
        "{\"method\":\"turboquant_mse\",\"label\":null,\"dataset\":\"sphere128\",\"backend\":null,"
        "\"params\":{\"bits\":2},\"metric\":\"vnmse\",\"op\":\"~=\",\"value\":0.116,"
        "\"target\":0.116,\"rtol\":0.02,\"atol\":0,\"status\":\"PASS\",\"source\":\"arXiv:2504."
        "19874 Theorem 1\"}\n",
        f);
    fputs("{\"method\":\"eden\",\"dataset\":\"sphere128\",\"params\":{\"bits\":1},\"metric\":"
          "\"vnmse\",\"op\":\"<=\",\"value\":0.4,\"target\":0.5,\"status\":\"PASS\",\"source\":"
          "\"EDEN paper\"}\n",
          f);
    fputs("{\"method\":\"eden\",\"dataset\":\"sphere128\",\"params\":{\"bits\":3},\"metric\":"
          "\"vnmse\",\"op\":\"~=\",\"value\":0.0415,\"target\":0.03,\"rtol\":0.01,\"status\":"
          "\"FAIL\",\"source\":\"made up\"}\n",
          f);
    fputs("{\"method\":\"qjl\",\"params\":{},\"metric\":\"vnmse\",\"op\":\"~=\",\"value\":null,"
          "\"target\":0.5,\"rtol\":0.01,\"status\":\"MISSING\",\"source\":\"QJL paper\"}\n",
          f);
    fclose(f);
}

/* Every test's run lives in tmpdir/run; a static buffer lets helpers hand the path back. */
static char run_dir[512];

/* A fresh tmpdir and its run directory's path, not yet written: bad_inputs reports on it first. */
static const char *new_run_dir(void) {
    mktmp();
    snprintf(run_dir, sizeof run_dir, "%s/run", tmpdir);
    return run_dir;
}

/* A fresh run directory crafted from cfg_json: how most tests start. */
static const char *crafted(const char *cfg_json) {
    const char *dir = new_run_dir();
    craft_with(dir, cfg_json);
    return dir;
}

/* The text of dir/name (the caller frees it); a missing file fails here, naming its path. */
static char *read_output(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = slurp(path);
    cr_assert_not_null(s, "%s is not written", path);
    return s;
}

/* Renders dir's report into dir, which must succeed, and returns report.md's text. */
static char *rendered_report(const char *dir) {
    cr_assert_eq(rb_report_write(dir, dir), 0, "%s", rb_error_detail());
    return read_output(dir, "report.md");
}

/* Renders dir's report into out with gnuplot made absent, so the outcome (RB_ENOTSUP, all but
 * the images written) does not depend on the machine. */
static void render_without_gnuplot(const char *dir, const char *out) {
    setenv("RB_GNUPLOT", "/nonexistent/gnuplot", 1);
    int rc = rb_report_write(dir, out);
    unsetenv("RB_GNUPLOT");
    cr_assert_eq(rc, RB_ENOTSUP, "rc %d: %s", rc, rb_error_detail());
}

/* Renders dir's report into out with whatever gnuplot the machine has: returns whether it has
 * one, having checked the status that implies. */
static int render_with_any_gnuplot(const char *dir, const char *out) {
    int gp = have_gnuplot();
    int rc = rb_report_write(dir, out);
    cr_assert_eq(rc, gp ? 0 : RB_ENOTSUP, "rc %d: %s", rc, rb_error_detail());
    return gp;
}

/* Writes (mode "w") or appends ("a") text to dir/name: tests plant their own expectations,
 * stale plots and bad lines before rendering. */
static void write_output(const char *dir, const char *name, const char *mode, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Removes dir/name, which craft_with wrote: a test that drops it must not pass by accident. */
static void remove_output(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(unlink(path), 0, "%s", path);
}

/* Tests edit dir's context.json for what craft_with does not set (limits, planned cells):
 * context_load, change, context_save (which frees it). */
static json_t *context_load(const char *dir) {
    char path[700];
    snprintf(path, sizeof path, "%s/context.json", dir);
    json_t *ctx = json_load_file(path, 0, NULL);
    cr_assert_not_null(ctx);
    return ctx;
}

static void context_save(const char *dir, json_t *ctx) {
    char path[700];
    snprintf(path, sizeof path, "%s/context.json", dir);
    cr_assert_eq(json_dump_file(ctx, path, 0), 0);
    json_decref(ctx);
}

Test(report, context_fields) {
    char *argv[] = {"rotabench", "run", "x.yaml"};
    json_t *ctx = rb_context_build(3, argv, "x.yaml", "{\"name\":\"x\"}", "ff", NULL, NULL);
    cr_assert_not_null(ctx);
    json_t *build = json_object_get(ctx, "build"), *host = json_object_get(ctx, "host");
    cr_assert_not_null(rb_row_str(build, "git_sha"));
    cr_assert(json_is_boolean(json_object_get(build, "dirty")));
    cr_assert_not_null(rb_row_str(json_object_get(build, "libraries"), "jansson"));
    cr_assert_not_null(rb_row_str(json_object_get(build, "libraries"), "libyaml"));
    json_t *gb = json_object_get(json_object_get(build, "libraries"), "google_benchmark");
    cr_assert(json_is_boolean(json_object_get(gb, "library_debug")), "the build type is recorded");
    cr_assert(json_is_boolean(json_object_get(gb, "build_optimized")));
    cr_assert_geq(rb_row_int(host, "cores", 0), 1);
    cr_assert_geq(rb_row_int(host, "pus", 0), rb_row_int(host, "cores", 0));
    cr_assert(json_is_array(json_object_get(json_object_get(ctx, "gpu"), "devices")));
    json_t *run = json_object_get(ctx, "run");
    cr_assert_str_eq(rb_row_str(json_object_get(run, "config"), "name"), "x");
    cr_assert_eq(json_array_size(json_object_get(run, "argv")), 3);
    const char *utc = rb_row_str(run, "utc");
    cr_assert(utc && strlen(utc) == 20 && utc[10] == 'T' && utc[19] == 'Z', "utc: %s", utc);
    json_decref(ctx);

    cr_assert_null(rb_context_build(3, argv, "x.yaml", "{broken", "ff", NULL, NULL));
    cr_assert_eq(strncmp(rb_error_detail(), "context:", 8), 0);

    char id[128];
    rb_run_id("paper/tq vs eden", id, sizeof id);
    cr_assert_eq(strlen(id), 15 + 1 + 16, "run id: %s", id);
    cr_assert_str_eq(id + 16, "paper_tq_vs_eden");
    cr_assert_eq(id[8], '-');
}

Test(report, crafted_run) {
    const char *dir = crafted(config_json);
    char out[600], path[700];
    snprintf(out, sizeof out, "%s/rep", tmpdir);
    int gp = render_with_any_gnuplot(dir, out);
    char *md = read_output(out, "report.md");

    /* Only varying columns: label, method, bits; rotation and backend are stated once. */
    cr_assert(strstr(md, "| label | method | bits | vnmse | bits (measured) |"), "%s", md);
    cr_assert(strstr(md, "Fixed: backend=cpu, rotation=rht; data: dim=128, count=1000"), "%s", md);
    cr_assert_null(strstr(md, "| rotation |"));
    cr_assert_null(strstr(md, "| backend |"));
    /* tq bits=2: mean of the repeats, stderr of the mean = sqrt(2 * 2 * 0.0004^2) / 2. */
    cr_assert(strstr(md, "| tq | turboquant_mse | 2 | 0.1160 ± 0.0004 | 2.000 |"), "%s", md);
    cr_assert(strstr(md, "| eden-unbiased | eden | 4 | "), "%s", md);
    cr_assert(strstr(md, "means over up to 2 repeats"));
    cr_assert(strstr(md, "## Accuracy: codec methods"));
    cr_assert(strstr(md, "### Dataset `sphere128`"));

    /* Expectations. */
    cr_assert(strstr(md, "**2 PASS, 1 FAIL, 1 MISSING** (of 4)"), "%s", md);
    cr_assert(strstr(md, "| label | dataset | params | metric | measured | target | tolerance | "
                         "status | source |"),
              "%s", md);
    cr_assert(strstr(md,
                     "| any (turboquant_mse) | sphere128 | bits=2 | vnmse | 0.1160 | ~= 0.116 | "
                     "±0.00232 (rtol 0.02, atol 0) | PASS | arXiv:2504.19874 Theorem 1 |"),
              "%s", md);
    cr_assert(strstr(md, "| **FAIL** | made up |"), "%s", md);
    cr_assert(strstr(md, "| any (qjl) | any | — | vnmse | — | ~= 0.5 | ±0.005 (rtol 0.01, atol 0) "
                         "| **MISSING** |"),
              "%s", md);

    /* Latency: median of {1..5} us is 3 us, IQR 2..4 us. */
    cr_assert(
        strstr(md,
               "| encode_latency | 3 µs | 2 µs..4 µs | 5 | 1 vectors | 333 k vectors/s | 12.50 | "
               "42% | — | fwht_f32=avx512 |"),
        "%s", md);

    /* Provenance. */
    cr_assert(strstr(md, "| revision |"));
    cr_assert(strstr(md, "| config | configs/crafted.yaml (sha256 abc123) |"), "%s", md);
    cr_assert(strstr(md, "| backends | cpu |"));

    /* Plots: the filtered-out one says so; the first is rendered when gnuplot exists. */
    cr_assert(strstr(md, "Plot 1 is not drawn: no accuracy rows have metric `vnmse` after the "
                         "filters."),
              "%s", md);
    char *csv = read_output(out, "plot_0.csv");
    cr_assert(strstr(csv, "series,x,y,stderr\r\ntq,1,0.36,"), "%s", csv);
    free(csv);
    char *gps = read_output(out, "plot_0.gp");
    cr_assert(strstr(gps, "set logscale y"));
    cr_assert(strstr(gps, "set xtics (1, 2, 3, 4)"));
    free(gps);
    if (gp) {
        cr_assert(strstr(md, "![vNMSE by bit width](plot_0.png)"), "%s", md);
        snprintf(path, sizeof path, "%s/plot_0.png", out);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "plot_0.png missing");
        unsigned char magic[8];
        cr_assert_eq(fread(magic, 1, 8, f), 8);
        fclose(f);
        cr_assert_eq(memcmp(magic, "\x89PNG\r\n\x1a\n", 8), 0);
        snprintf(path, sizeof path, "%s/plot_0.svg", out);
        cr_assert_eq(access(path, F_OK), 0);
    } else {
        cr_log_warn("gnuplot not installed: the PNG checks are skipped");
        cr_assert(strstr(md, "**Plot not rendered:** gnuplot not found"), "%s", md);
    }
    free(md);
    snprintf(path, sizeof path, "%s/results.csv", out);
    cr_assert_eq(access(path, F_OK), 0);
    rmtmp();
}

/* One more cell after craft_with: `label` (method eden) at bits = 4, one row of metric with
 * value and stderr se. */
static void append_metric(const char *dir, const char *label, const char *metric, double value,
                          double se) {
    rb_results *res;
    cr_assert_eq(rb_results_open(dir, &res), 0, "%s", rb_error_detail());
    rb_params dp, p;
    cr_assert_eq(rb_params_init(&dp, RB_PARAMS_OF(ddefs)), 0);
    cr_assert_eq(rb_params_init(&p, RB_PARAMS_OF(mdefs)), 0);
    cr_assert_eq(rb_params_set(&p, "bits", "4"), 0);
    char key[64];
    snprintf(key, sizeof key, "sphere|%s|bits=4|cpu|0", label);
    rb_record r = crafted_record("eden", label, &dp, &p, key, 0);
    r.metric = metric;
    r.value = value;
    r.stderr_ = se;
    cr_assert_eq(rb_results_write(res, &r), 0);
    cr_assert_eq(rb_results_end_cell(res, key), 0);
    rb_results_close(res);
}

/* One more cell after craft_with: `label` (method eden) at bits = 4, its bits metric = value. */
static void append_cell(const char *dir, const char *label, double value) {
    append_metric(dir, label, "bits", value, NAN);
}

/* One latency record (metric decode) of label `lat` (method eden, bits 4) at repeat rep: its
 * samples, its own median, rate, GB/s, fraction of the bandwidth and kernels, as a repeat's
 * record carries them. */
/* The cpu_wait the next append_latency writes (NaN: none). */
static double latency_wait = NAN;

static void append_latency(const char *dir, int rep, const double *samples, size_t n, double med,
                           double items_per_s, double gbps, double frac_bw, const char *kernels) {
    rb_results *res;
    cr_assert_eq(rb_results_open(dir, &res), 0, "%s", rb_error_detail());
    rb_params dp, p;
    cr_assert_eq(rb_params_init(&dp, RB_PARAMS_OF(ddefs)), 0);
    cr_assert_eq(rb_params_init(&p, RB_PARAMS_OF(mdefs)), 0);
    cr_assert_eq(rb_params_set(&p, "bits", "4"), 0);
    char key[64];
    snprintf(key, sizeof key, "sphere|lat|bits=4|cpu|%d", rep);
    rb_record r = crafted_record("eden", "lat", &dp, &p, key, rep);
    r.metric = "decode_latency";
    r.unit = "s";
    r.value = med;
    r.stderr_ = NAN;
    r.samples = samples;
    r.nsamples = n;
    r.items_per_s = items_per_s;
    r.items_unit = "vectors";
    r.gbps = gbps;
    r.frac_bw = frac_bw;
    r.kernel_variants = kernels;
    r.cpu_wait = latency_wait;
    cr_assert_eq(rb_results_write(res, &r), 0);
    cr_assert_eq(rb_results_end_cell(res, key), 0);
    rb_results_close(res);
}

/* A latency row pools its repeats' samples, and its rate, GB/s and fraction of the bandwidth
 * are at that pooled median (1000 vectors and 1e5 bytes per call, a 100 GB/s limit), not repeat
 * 0's; its kernels are the union over the repeats, its CPU wait the worst repeat's (over 5%: a
 * busy machine, said under the table). */
Test(report, latency_row_describes_the_pooled_repeats) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1}");
    static const double r0[3] = {1e-6, 2e-6, 3e-6}, r1[3] = {4e-6, 5e-6, 6e-6};
    latency_wait = 0.01;
    append_latency(dir, 0, r0, 3, 2e-6, 1000 / 2e-6, 1e5 / 2e-6 * 1e-9, 0.5, "fwht_f32=avx512");
    latency_wait = 0.3;
    append_latency(dir, 1, r1, 3, 5e-6, 1000 / 5e-6, 1e5 / 5e-6 * 1e-9, 0.2,
                   "fwht_f32=avx512,pack_rows=ref");
    latency_wait = NAN;
    char *md = rendered_report(dir);
    /* Pooled median of 1..6 us: 3.5 us; 1000 / 3.5 us = 286 M/s; 1e5 B / 3.5 us = 28.57 GB/s. */
    cr_assert(
        strstr(md,
               "| decode_latency | 3.5 µs | 2.25 µs..4.75 µs | 6 | 1000 vectors | 286 M vectors/s "
               "| 28.57 | 29% | 30% (busy) | fwht_f32=avx512,pack_rows=ref |"),
        "%s", md);
    cr_assert(strstr(md, "1 row was timed on a busy machine: the threads waited for a CPU up to "
                         "30% of the time"),
              "%s", md);
    free(md);
    rmtmp();
}

/* The latency section states the machine limits its fractions are relative to (context.json
 * host.limits), and "of BW" uses that limit: 12.5 GB/s over 50 GB/s. */
Test(report, latency_header_shows_the_limits) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1}");
    json_t *ctx = context_load(dir);
    json_t *host = json_object_get(ctx, "host");
    json_object_set_new(host, "threads", json_integer(2));
    json_object_set_new(host, "limits",
                        json_pack("[{s:i, s:f, s:f, s:I}]", "threads", 2, "copy_gbps", 50.0,
                                  "peak_add_gflops", 101.2, "copy_bytes", (json_int_t) 64 << 20));
    context_save(dir, ctx);
    char *md = rendered_report(dir);
    cr_assert(strstr(md, "Machine limits, measured once at the start of the run (fastest "
                         "repetition), copying a 64 MiB buffer: 2 threads: copy 50.0 GB/s, fp32 "
                         "add peak 101 GFLOP/s."),
              "%s", md);
    cr_assert(strstr(md, "can exceed 100%"), "%s", md);
    cr_assert(strstr(md, "| 12.50 | 25% | — | fwht_f32=avx512 |"), "%s", md);
    free(md);
    rmtmp();
}

/* The machine table names OpenBLAS's kernel set and its note (context.json host.blas_core,
 * host.blas_note), and has no such row for a context from before the field. */
Test(report, machine_table_names_the_blas_kernels) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1}");
    json_t *ctx = context_load(dir);
    json_t *host = json_object_get(ctx, "host");
    json_object_set_new(host, "blas_core", json_string("Prescott"));
    json_object_set_new(host, "blas_note", json_string("set OPENBLAS_CORETYPE"));
    context_save(dir, ctx);
    char *md = rendered_report(dir);
    cr_assert(strstr(md, "| BLAS kernels | OpenBLAS Prescott; set OPENBLAS_CORETYPE |"), "%s", md);
    free(md);
    ctx = context_load(dir);
    host = json_object_get(ctx, "host");
    json_object_del(host, "blas_core");
    json_object_del(host, "blas_note");
    context_save(dir, ctx);
    md = rendered_report(dir);
    cr_assert_null(strstr(md, "BLAS kernels"), "%s", md);
    free(md);
    rmtmp();
}

/* A report of an unfinished run (context.json plans a cell that has no cell_done marker) says
 * PARTIAL near the top, and without expect.jsonl that the expectations were not graded. */
Test(report, partial_run_says_so) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1, \"expect\": [{\"metric\": "
                              "\"vnmse\", \"op\": \"<\", \"value\": 1, \"source\": \"x\"}]}");
    json_t *ctx = context_load(dir);
    json_object_set_new(json_object_get(ctx, "run"), "seeds",
                        json_pack("{s:i, s:[{s:s}, {s:s}, {s:s}]}", "base", 1, "cells", "cell",
                                  "sphere|tq|bits=1|cpu|0", "cell", "sphere|tq|bits=1|cpu|1",
                                  "cell", "sphere|tq|bits=9|cpu|0"));
    context_save(dir, ctx);
    remove_output(dir, "expect.jsonl");
    char *md = rendered_report(dir);
    const char *partial = strstr(md, "**PARTIAL: 2 of 3 cells** finished (the run was interrupted");
    cr_assert(partial && partial < strstr(md, "## Provenance"), "%s", md);
    cr_assert(strstr(md, "--resume` continues it"), "%s", md);
    cr_assert(strstr(md, "## Expectations\n\nNot graded: expectations are graded when a run "
                         "finishes, and this one is partial (2 of 3 cells"),
              "%s", md);
    free(md);
    rmtmp();
}

static const rb_param_def cdefs[] = {
    RB_PARAM_INT("bits", "2", 1, 8, "bits per coordinate"),
    RB_PARAM_ENUM("codebook", "sphere", "sphere|lloyd", "codebook"),
};

/* One cell of one row (latency when samples): `method` with params defs/nd set to bits and, if
 * given, `name`=`value`, on `dataset` (dim `dim`). */
static void append_row(const char *dir, const char *method, const char *label,
                       const rb_param_def *defs, size_t nd, const char *bits, const char *name,
                       const char *value, const char *dataset, const char *dim, double v,
                       const double *samples) {
    rb_results *res;
    cr_assert_eq(rb_results_open(dir, &res), 0, "%s", rb_error_detail());
    rb_params dp, p;
    cr_assert_eq(rb_params_init(&dp, RB_PARAMS_OF(ddefs)), 0);
    cr_assert_eq(rb_params_set(&dp, "dim", dim), 0);
    cr_assert_eq(rb_params_init(&p, defs, nd), 0);
    cr_assert_eq(rb_params_set(&p, "bits", bits), 0);
    if (name) cr_assert_eq(rb_params_set(&p, name, value), 0);
    char key[128];
    snprintf(key, sizeof key, "%s|%s|%s|%s", dataset, label, bits, samples ? "lat" : "acc");
    rb_record r = crafted_record(method, label, &dp, &p, key, 0);
    r.dataset = dataset;
    r.metric = samples ? "encode_latency" : "vnmse";
    r.value = v;
    r.stderr_ = NAN;
    if (samples) {
        r.unit = "s";
        r.samples = samples;
        r.nsamples = 1;
    }
    cr_assert_eq(rb_results_write(res, &r), 0);
    cr_assert_eq(rb_results_end_cell(res, key), 0);
    rb_results_close(res);
}

/* Tables show a column per method parameter only where every row has it (bits); a parameter of
 * some methods is in one `params` column when it varies among them (rotation), else stated once
 * in the Fixed line with its methods (codebook); dataset parameters the dataset name identifies
 * are not latency columns. */
Test(report, compact_parameter_columns) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1}");
    remove_output(dir, "results.jsonl");
    remove_output(dir, "expect.jsonl");
    static const double t1[1] = {1e-6}, t2[1] = {2e-6};
    append_row(dir, "rtn", "rtn-rht", RB_PARAMS_OF(mdefs), "2", "rotation", "rht", "sphere128",
               "128", 0.1, NULL);
    append_row(dir, "rtn", "rtn-haar", RB_PARAMS_OF(mdefs), "4", "rotation", "haar", "sphere128",
               "128", 0.01, NULL);
    append_row(dir, "cbq", "cb", RB_PARAMS_OF(cdefs), "2", NULL, NULL, "sphere128", "128", 0.2,
               NULL);
    append_row(dir, "rtn", "rtn-rht", RB_PARAMS_OF(mdefs), "2", "rotation", "rht", "sphere128",
               "128", 1e-6, t1);
    append_row(dir, "cbq", "cb", RB_PARAMS_OF(cdefs), "2", NULL, NULL, "small", "64", 2e-6, t2);
    char *md = rendered_report(dir);
    cr_assert(strstr(md, "Fixed: backend=cpu; codebook=sphere (cbq); data: dim=128, count=1000\n"),
              "%s", md);
    cr_assert(strstr(md, "| label | method | bits | params | vnmse |\n"), "%s", md);
    cr_assert(strstr(md, "| rtn-haar | rtn | 4 | rotation=haar | 0.01000 |"), "%s", md);
    cr_assert(strstr(md, "| cb | cbq | 2 | — | 0.2000 |"), "%s", md);
    /* Latency: the dataset column names the data; no data.dim; bits is fixed. */
    cr_assert(strstr(md, "Fixed: backend=cpu, bits=2; rotation=rht (rtn); codebook=sphere (cbq); "
                         "data: count=1000\n"),
              "%s", md);
    cr_assert(strstr(md, "| label | dataset | op | median |"), "%s", md);
    cr_assert(strstr(md, "| cb | small | encode_latency | 2 µs |"), "%s", md);
    cr_assert_null(strstr(md, "data.dim"), "%s", md);
    free(md);
    rmtmp();
}

/* A plot's baselines: the label's rows (one cell and its repeats) become one dashed horizontal
 * line at their pooled value (CSV row with an empty x), not points at their x; the other series
 * are unchanged. A baseline whose rows are several cells (eden-unbiased sweeps bits) is not
 * drawn at their mean: the report says why. */
Test(report, baseline_is_a_reference_line) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1, \"plots\": [{\"x\": "
                              "\"bits\", \"y\": \"bits\", \"series\": \"label\", \"baselines\": "
                              "[\"naive\", \"eden-unbiased\"]}]}");
    append_cell(dir, "naive", 2.5);
    render_without_gnuplot(dir, dir);
    char *csv = read_output(dir, "plot_0.csv");
    cr_assert(strstr(csv, "\r\nnaive (baseline),,2.5,"), "%s", csv);
    cr_assert_null(strstr(csv, "\r\nnaive,"), "%s", csv);
    cr_assert_null(strstr(csv, "eden-unbiased"), "%s", csv);
    cr_assert(strstr(csv, "\r\ntq,4,4,"), "%s", csv);
    free(csv);
    char *gps = read_output(dir, "plot_0.gp");
    cr_assert(strstr(gps, "$s0 using 1:2 with linespoints lw 2 dt 1 lc rgb '#1f77b4' pt 7 ps 1.3 "
                          "title 'tq', \\\n"
                          "  2.5 with lines dt 2 lw 2 lc rgb '#404040' title "
                          "'naive (baseline)'\n"),
              "%s", gps);
    cr_assert_null(strstr(gps, "$s1"), "%s", gps);
    free(gps);
    char *md = read_output(dir, "report.md");
    cr_assert(strstr(md, "Baseline `eden-unbiased` is not drawn: its rows differ in dataset or "
                         "parameters"),
              "%s", md);
    free(md);
    rmtmp();
}

/* Every series of a plot has its own colour and its own (colour, point type) pair from a fixed
 * palette of more than gnuplot's 8 default colours, so series with equal values (s0..s9 all at
 * bits = 4, bits = 2.5) stay apart; every point is drawn at its true x. */
Test(report, plot_series_are_distinct) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1, \"plots\": [{\"x\": "
                              "\"bits\", \"y\": \"bits\", \"series\": \"label\"}]}");
    for (int i = 0; i < 10; i++) {
        char lab[8];
        snprintf(lab, sizeof lab, "s%d", i);
        append_cell(dir, lab, 2.5);
    }
    render_with_any_gnuplot(dir, dir);
    char *gps = read_output(dir, "plot_0.gp");
    /* The titled (line and point) element of each of the 12 series. */
    char colours[12][16], styles[12][48], xs[12][48];
    int n = 0;
    for (char *l = strstr(gps, "\nplot \\\n"); l && (l = strstr(l, "\n  $s")); l++) {
        char *eol = strchr(l + 1, '\n'), *lc = strstr(l, "lc rgb '"), *pt = strstr(l, " pt ");
        if (!strstr(l, " title '") || strstr(l, " title '") > eol) continue;
        cr_assert(lc && lc < eol && pt && pt < eol, "no colour or point type: %.*s",
                  (int) (eol - l), l);
        cr_assert_lt(n, 12, "%s", gps);
        cr_assert_eq(sscanf(lc, "lc rgb '%15[^']'", colours[n]), 1);
        int ptn = 0;
        cr_assert_eq(sscanf(pt, " pt %d", &ptn), 1);
        snprintf(styles[n], sizeof styles[n], "%s/%d", colours[n], ptn);
        cr_assert_eq(sscanf(l, "\n  $s%*d using %47[^:]", xs[n]), 1);
        n++;
    }
    cr_assert_eq(n, 12, "%s", gps);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) {
            cr_assert_str_neq(colours[i], colours[j], "series %d and %d share a colour", i, j);
            cr_assert_str_neq(styles[i], styles[j]);
            cr_assert_str_eq(xs[i], "1", "series %d is not drawn at its x", i);
        }
    free(gps);
    rmtmp();
}

/* Error bars: each point with a finite, non-zero stderr has y -/+ stderr as columns 3 and 4
 * and a yerrorbars layer; a point without one (tq's equal repeats of bits) has NaN there (no
 * bar, the point is still drawn). On a log y axis a bar that would reach 0 or below stops at the
 * decade under the smallest positive value (`wide`: 0.02 -/+ 0.03 on an axis whose lowest
 * value is tq's 0.012), and gnuplot renders it. */
Test(report, plot_error_bars) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1, \"plots\": [{\"x\": "
                              "\"bits\", \"y\": \"vnmse\", \"series\": \"label\", \"logy\": true}, "
                              "{\"x\": \"bits\", \"y\": \"bits\", \"series\": \"label\"}]}");
    append_metric(dir, "wide", "vnmse", 0.02, 0.03);
    int gp = render_with_any_gnuplot(dir, dir);
    char *gps = read_output(dir, "plot_0.gp");
    /* tq at bits = 2: mean 0.116, stderr 0.0004. */
    cr_assert(strstr(gps, "\n2 0.11599999999999999 0.1156 0.11639999999999999\n"), "%s", gps);
    cr_assert(strstr(gps, "\n4 0.02 0.01 0.05\n"), "%s", gps);
    cr_assert(strstr(gps, ":2:3:4 with yerrorbars "), "%s", gps);
    free(gps);
    gps = read_output(dir, "plot_1.gp");
    cr_assert(strstr(gps, "\n4 4.25 NaN NaN\n"), "%s", gps);
    cr_assert_null(strstr(gps, "yerrorbars"), "no layer of bars without bars: %s", gps);
    free(gps);
    if (gp) {
        char path[700];
        snprintf(path, sizeof path, "%s/plot_0.png", dir);
        cr_assert_eq(access(path, F_OK), 0, "plot_0.png not rendered");
    }
    rmtmp();
}

/* x_metric: each point at its cell's measured value of the metric (eden-unbiased's bits are
 * 1.25..4.25 here, tq's 1..4), one line per label: the bits parameter, which moves only with x,
 * does not split a label into one series per value. A cell without the x metric is left out
 * and the report says how many rows. */
Test(report, plot_x_metric_puts_points_at_measured_values) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1, \"plots\": [{\"x_metric\": "
                              "\"bits\", \"y\": \"vnmse\", \"series\": \"label\"}]}");
    append_metric(dir, "wide", "vnmse", 0.02, 0.03); /* a cell with no bits row */
    render_with_any_gnuplot(dir, dir);
    char *csv = read_output(dir, "plot_0.csv");
    cr_assert(strstr(csv, "\r\ntq,1,0.36,"), "%s", csv);
    cr_assert(strstr(csv, "\r\ntq,2,0.11599999999999999,"), "%s", csv);
    for (int b = 1; b <= 4; b++) {
        char want[64];
        snprintf(want, sizeof want, "\r\neden-unbiased,%d.25,", b);
        cr_assert(strstr(csv, want), "no %s in %s", want + 2, csv);
    }
    cr_assert_null(strstr(csv, "bits="), "a series per bits value: %s", csv);
    cr_assert_null(strstr(csv, "wide"), "%s", csv);
    free(csv);
    char *md = read_output(dir, "report.md");
    cr_assert(strstr(md, "1 row of `vnmse` left out: its cell has no `bits` value."), "%s", md);
    free(md);
    char *gps = read_output(dir, "plot_0.gp");
    cr_assert(strstr(gps, "set xlabel 'bits (measured)'"), "%s", gps);
    free(gps);
    rmtmp();
}

Test(report, gnuplot_missing_is_soft) {
    const char *dir = crafted(config_json);
    render_without_gnuplot(dir, dir);
    cr_assert(strstr(rb_error_detail(), "gnuplot not found"), "%s", rb_error_detail());
    char *md = read_output(dir, "report.md"); /* even without gnuplot */
    cr_assert(strstr(md, "**Plot not rendered:** gnuplot not found"), "%s", md);
    cr_assert(strstr(md, "**2 PASS, 1 FAIL, 1 MISSING**"));
    free(md);
    rmtmp();
}

/* A relative expectation whose reference cell did not run: the runner writes "target": null
 * (nothing to multiply); the report is still written, the row MISSING with no target. */
Test(report, missing_relative_expectation_has_null_target) {
    const char *dir = crafted(config_json);
    write_output(
        dir, "expect.jsonl", "a",
        "{\"label\":\"tq\",\"params\":{\"bits\":\"2\"},\"metric\":\"vnmse\",\"op\":\"<\","
        "\"value\":null,\"target\":null,\"rtol\":0.01,\"atol\":0,\"n\":2,\"status\":"
        "\"MISSING\",\"source\":\"relative\",\"than\":\"rtn-rht bits=2\",\"factor\":0.5}\n");
    render_without_gnuplot(dir, dir);
    char *md = read_output(dir, "report.md");
    cr_assert(strstr(md, "**2 PASS, 1 FAIL, 2 MISSING** (of 5)"), "%s", md);
    cr_assert(strstr(md, "| tq | any | bits=2 | vnmse | — | < — (0.5 x rtn-rht bits=2) | — | "
                         "**MISSING** | relative |"),
              "%s", md);
    free(md);
    /* A null target is not accepted for a graded expectation. */
    write_output(dir, "expect.jsonl", "a",
                 "{\"metric\":\"vnmse\",\"target\":null,\"status\":\"PASS\",\"source\":\"x\"}\n");
    cr_assert_eq(rb_report_write(dir, dir), RB_EFORMAT);
    cr_assert(strstr(rb_error_detail(), "expect.jsonl:6: missing number \"target\""), "%s",
              rb_error_detail());
    rmtmp();
}

/* A measured value that rounds to its target at 4 digits gets the digits that tell them apart
 * (0.252895 < 0.2529 is "0.25289 < 0.2529", not "0.2529 < 0.2529"), a measured target too; a config
 * without expectations (an empty expect.jsonl) gets no Expectations section. */
Test(report, expectation_digits_and_none) {
    const char *dir = crafted(config_json);
    write_output(
        dir, "expect.jsonl", "a",
        "{\"label\":\"tq\",\"metric\":\"vnmse\",\"op\":\"<\",\"value\":0.252895,"
        "\"target\":0.2529,\"status\":\"PASS\",\"source\":\"digits\"}\n"
        "{\"label\":\"tq\",\"metric\":\"vnmse\",\"op\":\"<\",\"value\":0.252895,"
        "\"target\":0.2528951,\"than\":\"rtn\",\"status\":\"PASS\",\"source\":\"than\"}\n");
    render_without_gnuplot(dir, dir);
    char *md = read_output(dir, "report.md");
    cr_assert(strstr(md, "| vnmse | 0.25289 | < 0.2529 | — | PASS | digits |"), "%s", md);
    cr_assert(strstr(md, "| vnmse | 0.25289 | < 0.2529 (rtn) | — | PASS | than |"), "%s", md);
    free(md);
    write_output(dir, "expect.jsonl", "w", "");
    render_without_gnuplot(dir, dir);
    md = read_output(dir, "report.md");
    cr_assert_null(strstr(md, "Expectations"), "%s", md);
    free(md);
    rmtmp();
}

/* The Expectations table's first column is the selector's label (with its method where that
 * differs; "any (method)" for a method alone); ~= shows rtol, atol and the bound they give
 * (max(atol, rtol |target|), as the runner grades), "exact" when both are 0; a one-sided op
 * shows no tolerance even where expect.jsonl carries one. */
Test(report, expectation_selector_and_tolerance) {
    const char *dir = crafted(config_json);
    write_output(
        dir, "expect.jsonl", "w",
        "{\"method\":\"eden\",\"label\":\"eden-unbiased\",\"metric\":\"vnmse\",\"op\":"
        "\"~=\",\"value\":0.41,\"target\":0.4,\"rtol\":0,\"atol\":0.05,\"status\":"
        "\"PASS\",\"source\":\"atol\"}\n"
        "{\"method\":\"eden\",\"label\":\"eden\",\"metric\":\"vnmse\",\"op\":\"~=\","
        "\"value\":0.4,\"target\":0.4,\"rtol\":0,\"atol\":0,\"status\":\"PASS\","
        "\"source\":\"exact\"}\n"
        "{\"label\":\"tq\",\"metric\":\"vnmse\",\"op\":\">=\",\"value\":0.4,\"target\":0.3,"
        "\"rtol\":0.01,\"atol\":0,\"status\":\"PASS\",\"source\":\"one-sided\"}\n");
    render_without_gnuplot(dir, dir);
    char *md = read_output(dir, "report.md");
    cr_assert(strstr(md, "| label | dataset | params |"), "%s", md);
    cr_assert(strstr(md, "| eden-unbiased (eden) | any | — | vnmse | 0.4100 | ~= 0.4 | "
                         "±0.05 (rtol 0, atol 0.05) | PASS | atol |"),
              "%s", md);
    cr_assert(strstr(md, "| eden | any | — | vnmse | 0.4000 | ~= 0.4 | exact | PASS | exact |"),
              "%s", md);
    cr_assert(strstr(md, "| tq | any | — | vnmse | 0.4000 | >= 0.3 | — | PASS | one-sided |"), "%s",
              md);
    free(md);
    rmtmp();
}

/* A render without gnuplot leaves no image of an earlier render beside "Plot not rendered",
 * nor beside a plot that is not drawn, nor of plots the config no longer has. */
Test(report, no_stale_plot_images) {
    const char *dir = crafted(config_json);
    static const char *const stale[] = {"plot_0.png", "plot_0.svg", "plot_1.png", "plot_2.png",
                                        "plot_2.csv"};
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
        write_output(dir, stale[i], "w", "old");
    render_without_gnuplot(dir, dir);
    char path[700];
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, stale[i]);
        cr_assert_neq(access(path, F_OK), 0, "%s is left over", stale[i]);
    }
    snprintf(path, sizeof path, "%s/plot_0.csv", dir);
    cr_assert_eq(access(path, F_OK), 0, "this render's data is kept");
    rmtmp();
}

Test(report, bad_inputs) {
    const char *dir = new_run_dir();
    cr_assert_eq(rb_report_write(dir, dir), RB_EIO);
    cr_assert(strstr(rb_error_detail(), "context.json"), "%s", rb_error_detail());
    craft_with(dir, config_json);
    write_output(dir, "expect.jsonl", "a",
                 "{\"metric\":\"vnmse\",\"target\":1,\"status\":\"MAYBE\",\"source\":\"x\"}\n");
    cr_assert_eq(rb_report_write(dir, dir), RB_EFORMAT);
    cr_assert(strstr(rb_error_detail(), "expect.jsonl:5: \"status\" must be"), "%s",
              rb_error_detail());
    char path[700];
    snprintf(path, sizeof path, "%s/report.md", dir);
    cr_assert_neq(access(path, F_OK), 0, "nothing is written for bad input");
    rmtmp();
}

Test(report, cmd_report_binary) {
    char *out, *err;
    int st = rbt_run_cli("report /nonexistent/rundir", &out, &err);
    cr_assert_eq(st, 2);
    cr_assert(strstr(err, "/nonexistent/rundir: no such directory (RUNDIR is a run's output "
                          "directory"),
              "stderr: %s", err);
    free(out);
    free(err);
    cr_assert_eq(rbt_run_cli("report", &out, &err), 2);
    cr_assert(strstr(err, "missing RUNDIR"), "stderr: %s", err);
    free(out);
    free(err);
    cr_assert_eq(rbt_run_cli("report --help", &out, &err), 0);
    cr_assert(strstr(out, "usage: rotabench report RUNDIR"));
    free(out);
    free(err);

    const char *dir = crafted(config_json);
    char args[1200], path[700];
    snprintf(args, sizeof args, "report '%s' --out '%s/out'", dir, tmpdir);
    st = rbt_run_cli(args, &out, &err);
    cr_assert_eq(st, have_gnuplot() ? 0 : 2, "stderr: %s", err);
    snprintf(path, sizeof path, "%s/out/report.md", tmpdir);
    if (st == 0) cr_assert(strstr(out, path), "stdout: %s", out);
    cr_assert_eq(access(path, F_OK), 0);
    free(out);
    free(err);
    /* A malformed results.jsonl line in the middle: exit 2 naming file:line. */
    write_output(dir, "results.jsonl", "a", "garbage\n{\"cell_done\":\"x\"}\n");
    snprintf(args, sizeof args, "report '%s'", dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 2);
    cr_assert(strstr(err, "results.jsonl:"), "stderr: %s", err);
    cr_assert(strstr(err, "invalid JSON"), "stderr: %s", err);
    free(out);
    free(err);
    rmtmp();
}

/* The ± of a value pooled over repeats is the larger of the spread between them (sd / sqrt(R))
 * and their own errors: repeats with tiny errors over vectors but different values (a new random
 * matrix per seed) show the spread, 0.1 here, not sqrt(2 * 0.001^2) / 2 = 0.0007. */
Test(report, repeats_that_disagree_widen_the_standard_error) {
    const char *dir = crafted("{\"name\": \"crafted\", \"seed\": 1}");
    remove_output(dir, "results.jsonl");
    remove_output(dir, "expect.jsonl");
    rb_results *res;
    cr_assert_eq(rb_results_open(dir, &res), 0, "%s", rb_error_detail());
    rb_params dp, p;
    cr_assert_eq(rb_params_init(&dp, RB_PARAMS_OF(ddefs)), 0);
    cr_assert_eq(rb_params_init(&p, RB_PARAMS_OF(mdefs)), 0);
    const double values[2] = {1.0, 1.2}, ses[2] = {0.001, 0.001};
    for (int rep = 0; rep < 2; rep++) {
        char key[64];
        snprintf(key, sizeof key, "sphere|qjl|%d", rep);
        rb_record r = crafted_record("qjl", "qjl", &dp, &p, key, rep);
        r.metric = "d_dprod";
        r.value = values[rep];
        r.stderr_ = ses[rep];
        cr_assert_eq(rb_results_write(res, &r), 0);
        cr_assert_eq(rb_results_end_cell(res, key), 0);
    }
    rb_results_close(res);
    char *md = rendered_report(dir);
    cr_assert(strstr(md, "| 1.100 ± 0.100 |"), "%s", md);
    cr_assert(strstr(md, "the spread between the repeats / √R"), "%s", md);
    free(md);
    rmtmp();
}

/* Config text reaches the gnuplot script only as single-quoted strings, where gnuplot runs no
 * `command` substitution and no @macro; a line break in it would end the string and start a
 * command, so control characters become spaces (in the heading and the script's comment too).
 * With gnuplot installed the script is rendered, and the commands must not have run. */
Test(report, config_text_cannot_run_commands_in_gnuplot) {
    const char *dir = new_run_dir();
    char cfg[2048], marker[700], quoted[800];
    snprintf(marker, sizeof marker, "%s/ran", dir);
    snprintf(cfg, sizeof cfg,
             "{\"name\": \"crafted\", \"seed\": 1, \"plots\": [{\"x\": \"bits\", \"y\": \"bits\", "
             "\"series\": \"label\", \"title\": \"t `touch %s` @x\\n`touch %s` it's\"}]}",
             marker, marker);
    craft_with(dir, cfg);
    snprintf(quoted, sizeof quoted, "l `touch %s` 'q", marker);
    append_cell(dir, quoted, 2.5);
    append_cell(dir, "plain", 3.5);
    render_with_any_gnuplot(dir, dir);
    cr_assert_neq(access(marker, F_OK), 0, "gnuplot ran a command from the config's text");
    char *gps = read_output(dir, "plot_0.gp");
    char want[1600];
    snprintf(want, sizeof want, "set title 't `touch %s` @x `touch %s` it''s'", marker, marker);
    cr_assert(strstr(gps, want), "%s", gps);
    snprintf(want, sizeof want, "title 'l `touch %s` ''q'", marker);
    cr_assert(strstr(gps, want), "%s", gps);
    /* the first line is one comment line */
    cr_assert(strchr(gps, '\n') && strstr(gps, "\nset encoding") == strchr(gps, '\n'), "%s", gps);
    char *md = read_output(dir, "report.md");
    snprintf(want, sizeof want, "### Plot 0: t `touch %s` @x `touch %s` it's\n", marker, marker);
    cr_assert(strstr(md, want), "%s", md);
    free(md);
    free(gps);
    rmtmp();
    /* Labels that read as integers become numeric tics: written as the numbers parsed, not the
     * text (strtod skips the space before the digits). The plot renders. */
    dir = crafted("{\"name\": \"crafted\", \"seed\": 1, \"plots\": [{\"x\": \"label\", "
                  "\"y\": \"ip_slope\"}]}");
    append_metric(dir, " 1", "ip_slope", 0.9, NAN); /* the crafted cells have no ip_slope */
    append_metric(dir, " 2", "ip_slope", 0.8, NAN);
    render_with_any_gnuplot(dir, dir);
    gps = read_output(dir, "plot_0.gp");
    cr_assert(strstr(gps, "set xtics (1, 2)\n"), "%s", gps);
    free(gps);
    rmtmp();
}
