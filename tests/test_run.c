/* `rotabench run` end to end through the binary: a small config's results, expectations and
 * report; exit statuses; nothing written on a config error; resume after an interrupted run
 * giving the same bits as an uninterrupted one. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "harness/record.h"
#include "tests/testutil.h"

static char dir[64];

/* A fresh scratch directory (a test may make one per case); the suite's .fini removes them all. */
static void make_dir(void) {
    snprintf(dir, sizeof dir, "%s", rbt_tmpdir_make("run"));
}

TestSuite(run, .fini = rbt_tmpdir_remove);

static void write_file(const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t) n + 1);
    s[fread(s, 1, (size_t) n, f)] = '\0';
    fclose(f);
    return s;
}

static int run(const char *args, char **err) {
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, "run %s", args);
    int st = rbt_run_cli(cmd, &out, err);
    free(out);
    return st;
}

/* Asserts that err holds the text fmt and its arguments make. */
static void assert_has(const char *err, const char *fmt, ...) {
    char want[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    cr_assert(strstr(err, want), "lacks '%s':\n%s", want, err);
}

/* Most tests write one config into dir and run it into dir/out; opts follows the -o (" --quick"
 * for most). The exit status; the caller frees *err. */
static int run_config(const char *name, const char *yaml, const char *opts, char **err) {
    char args[512];
    write_file(name, yaml);
    snprintf(args, sizeof args, "%s/%s -o %s/out%s", dir, name, dir, opts);
    return run(args, err);
}

/* The text of dir/out/name, or NULL where the run did not write it: each test asserts on it in
 * its own words. */
static char *slurp_out(const char *name) {
    char p[256];
    snprintf(p, sizeof p, "%s/out/%s", dir, name);
    return slurp(p);
}

/* Three sweeps x two repeats = 12 cells, each with four metrics. */
static const char *small_yaml =
    "name: small\n"
    "seed: 7\n"
    "repeats: 2\n"
    "datasets:\n"
    "  - {name: s64, kind: sphere, dim: 64, count: 300, queries: 20}\n"
    "methods:\n"
    "  - {method: rtn, params: {bits: [2, 4, 8], rotation: [none, rht]}}\n"
    "metrics: [vnmse, ip_slope, d_dprod, bits]\n"
    "expect:\n"
    "  - {method: rtn, params: {bits: 8, rotation: rht}, metric: vnmse, op: '<=', value: 0.001,\n"
    "     source: 'uniform quantizer, 8 bits'}\n"
    "plots:\n"
    "  - {x: bits, y: vnmse, series: rotation, logy: true}\n";

/* The values of every row, in file order, as one string: bit-exact comparison of two runs. */
static char *values_of(const char *results_dir) {
    char p[256];
    snprintf(p, sizeof p, "%s/results.jsonl", results_dir);
    json_t *rows;
    cr_assert_eq(rb_results_read(p, &rows), 0, "%s", rb_error_detail());
    size_t cap = 1 << 16, len = 0, i;
    char *s = calloc(cap, 1);
    json_t *row;
    json_array_foreach(rows, i, row) {
        char *key = rb_row_key(row);
        double v = rb_row_double(row, "value");
        len += (size_t) snprintf(s + len, cap - len, "%s|%a\n", key, v);
        free(key);
        cr_assert(len < cap);
    }
    json_decref(rows);
    return s;
}

Test(run, small_config_end_to_end) {
    make_dir();
    char *err, p[256];
    int st = run_config("small.yaml", small_yaml, " --threads 1", &err);
    cr_assert_eq(st, 0, "exit %d: %s", st, err);
    snprintf(p, sizeof p, "%s/out/results.jsonl", dir);
    json_t *rows;
    cr_assert_eq(rb_results_read(p, &rows), 0, "%s", rb_error_detail());
    cr_assert_eq(json_array_size(rows), 12 * 4, "one row per cell and metric");
    json_decref(rows);
    char *expect = slurp_out("expect.jsonl");
    cr_assert(expect && strstr(expect, "\"status\":\"PASS\""), "%s", expect);
    /* parameters as the config typed them; no tolerance on a one-sided claim */
    cr_assert(strstr(expect, "\"params\":{\"bits\":8,\"rotation\":\"rht\"}"), "%s", expect);
    cr_assert_null(strstr(expect, "\"rtol\""), "%s", expect);
    char *report = slurp_out("report.md");
    cr_assert(report && strstr(report, "1 PASS, 0 FAIL"), "report: %s", report);
    char *ctx = slurp_out("context.json");
    cr_assert(ctx && strstr(ctx, "\"config_sha256\""));
    snprintf(p, sizeof p, "%s/out/results.csv", dir);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    free(expect);
    free(report);
    free(ctx);
    free(err);
}

Test(run, failed_expectation_exits_1) {
    make_dir();
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s", small_yaml);
    /* 2-bit codes cannot reach a vNMSE of 1e-3. */
    char *v = strstr(yaml, "bits: 8, rotation: rht}");
    memcpy(v, "bits: 2", 7);
    char *err;
    int st = run_config("fail.yaml", yaml, " --quick", &err);
    cr_assert_eq(st, 1, "exit %d: %s", st, err);
    cr_assert(strstr(err, "expectation FAIL"), "%s", err);
    free(err);
}

/* A claim against another cell: 4-bit codes beat 2-bit ones (PASS) and 8-bit ones do not have
 * 1.5x the 2-bit error (FAIL): the run exits 1 and both gradings name the reference cell. */
Test(run, than_claims_compare_two_cells) {
    make_dir();
    char *err;
    int st =
        run_config("than.yaml",
                   "name: than\n"
                   "datasets:\n"
                   "  - {name: s64, kind: sphere, dim: 64, count: 300, queries: 20}\n"
                   "methods:\n"
                   "  - {method: rtn, params: {bits: [2, 4, 8], rotation: rht}}\n"
                   "metrics: [vnmse]\n"
                   "expect:\n"
                   "  - {method: rtn, params: {bits: 4}, metric: vnmse, op: '<',\n"
                   "     than: {method: rtn, params: {bits: 2}}, source: 'more bits'}\n"
                   "  - {method: rtn, params: {bits: 8}, metric: vnmse, op: '>',\n"
                   "     than: {method: rtn, params: {bits: 2}}, factor: 1.5, source: 'wrong'}\n",
                   " --quick", &err);
    cr_assert_eq(st, 1, "exit %d: %s", st, err);
    cr_assert(strstr(err, "expectation FAIL: rtn vnmse > "), "%s", err);
    cr_assert(strstr(err, "(rtn bits=2)"), "%s", err);
    char *text = slurp_out("expect.jsonl"), *nl = text ? strchr(text, '\n') : NULL;
    cr_assert(nl, "expect.jsonl: %s", text);
    json_t *pass = json_loadb(text, (size_t) (nl - text), 0, NULL),
           *fail = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
    free(text);
    cr_assert(pass && fail);
    cr_assert_str_eq(rb_row_str(pass, "status"), "PASS");
    cr_assert_str_eq(rb_row_str(fail, "status"), "FAIL");
    cr_assert_str_eq(rb_row_str(pass, "than"), "rtn bits=2");
    /* The target is the reference cell's measured value (times the factor). */
    double v2 = rb_row_double(pass, "target");
    cr_assert(v2 > rb_row_double(pass, "value") && v2 > 0.01, "%g", v2);
    cr_assert_float_eq(rb_row_double(fail, "target"), 1.5 * v2, 1e-12 * v2);
    json_decref(pass);
    json_decref(fail);
    char *report = slurp_out("report.md");
    cr_assert(report && strstr(report, "(1.5 x rtn bits=2)"), "%s", report);
    free(report);
    free(err);
}

/* A claim against a cell that did not run (--only left it out): the expectation is MISSING
 * with a null target, and the report is still written, showing it as MISSING. */
Test(run, than_claim_with_its_reference_missing_still_reports) {
    make_dir();
    char *err;
    int st = run_config("than.yaml",
                        "name: than\n"
                        "datasets:\n"
                        "  - {name: s64, kind: sphere, dim: 64, count: 300, queries: 20}\n"
                        "methods:\n"
                        "  - {method: rtn, params: {bits: [2, 4, 8], rotation: rht}}\n"
                        "metrics: [vnmse]\n"
                        "expect:\n"
                        "  - {method: rtn, params: {bits: 4}, metric: vnmse, op: '<',\n"
                        "     than: {method: rtn, params: {bits: 2}}, source: 'more bits'}\n",
                        " --quick --only '*bits=4*'", &err);
    cr_assert_eq(st, 1, "exit %d: %s", st, err);
    cr_assert(strstr(err, "expectation MISSING"), "%s", err);
    char *report = slurp_out("report.md");
    cr_assert(report, "no report: %s", err);
    cr_assert(strstr(report, "| < — (rtn bits=2) | — | **MISSING** | more bits |"), "%s", report);
    /* Two of the three cells were left out: the report says so, and how. */
    cr_assert(strstr(report, "**PARTIAL: 1 of 3 cells** finished (the run was limited with "
                             "`--only *bits=4*`)"),
              "%s", report);
    cr_assert(strstr(report, "Graded on a partial run (1 of 3 cells)"), "%s", report);
    free(report);
    free(err);
}

/* y: recall@k plots every computed recall@<number> against k (the number after '@'). */
Test(run, plot_of_a_metric_family_against_k) {
    make_dir();
    char *err;
    int st = run_config("k.yaml",
                        "name: k\n"
                        "datasets:\n"
                        "  - {name: s64, kind: sphere, dim: 64, count: 300, queries: 20}\n"
                        "methods:\n"
                        "  - {method: rtn, params: {bits: [2, 4], rotation: rht}}\n"
                        "metrics: [recall@1, recall@4, vnmse]\n"
                        "plots:\n"
                        "  - {x: k, y: recall@k, series: bits}\n",
                        " --quick", &err);
    cr_assert(st == 0 || st == 2, "exit %d: %s", st, err); /* 2: gnuplot missing */
    char *csv = slurp_out("plot_0.csv");
    cr_assert(csv, "no plot data: %s", err);
    /* Two series (bits=2, bits=4) with points at k = 1 and 4; vnmse rows are not in it. */
    size_t lines = 0;
    for (const char *c = csv; (c = strchr(c, '\n')); c++) lines++;
    cr_assert_eq(lines, 1 + 2 * 2, "%s", csv);
    cr_assert(strstr(csv, "\nbits=2,1,") && strstr(csv, "\nbits=2,4,") &&
                  strstr(csv, "\nbits=4,1,") && strstr(csv, "\nbits=4,4,"),
              "%s", csv);
    free(csv);
    free(err);
}

/* A dataset file's error (here a NaN) names the config entry that loads it (FILE:LINE:COL), the
 * dataset, the file and the element; the run exits 2. */
/* A config named `name` that runs rtn on a generated dataset s and on dataset d read from npy,
 * the fourth line of the file. */
static void npy_config(char *yaml, size_t size, const char *name, const char *npy) {
    snprintf(yaml, size,
             "name: %s\n"
             "datasets:\n"
             "  - {name: s, kind: sphere, dim: 8, count: 20}\n"
             "  - {name: d, kind: npy, path: %s}\n"
             "methods:\n"
             "  - {method: rtn}\n"
             "metrics: [vnmse]\n",
             name, npy);
}

Test(run, dataset_file_error_names_the_entry) {
    make_dir();
    float x[4 * 8];
    for (int i = 0; i < 32; i++) x[i] = (float) i;
    x[2 * 8 + 5] = NAN;
    char npy[256], yaml[1024], *err;
    snprintf(npy, sizeof npy, "%s/x_nan.npy", dir);
    size_t shape[2] = {4, 8};
    cr_assert_eq(rb_npy_write(npy, RB_NPY_F32, 2, shape, x), 0, "%s", rb_error_detail());
    npy_config(yaml, sizeof yaml, "nan", npy);
    int st = run_config("nan.yaml", yaml, " --quick", &err);
    cr_assert_neq(st, 0, "%s", err);
    char where[128];
    snprintf(where, sizeof where, "%s/nan.yaml:4:5: dataset 'd': ", dir);
    cr_assert(strstr(err, where) && strstr(err, "x_nan.npy") && strstr(err, "NaN"), "%s", err);
    free(err);
}

/* Every record names the kernels that did its method's work, dispatched or not: rtn with a Haar
 * rotation (the GEMM, and its pack / dequant through the dispatched row ops), polarquant (the
 * polar transform, whose default rotation is Haar) and kivi (its own fp16 loops) used to record
 * only quant_rows_f32, or nothing; eden and turboquant on their Haar paths, qjl, octopus and
 * rotatekv packed and unpacked through the untraced rb_pack_bits / rb_unpack_bits; rotatekv's
 * own quantizer went unnamed, and turboquant_prod unpacked its QJL signs in a loop of its own
 * (at bits 1 there is no codebook stage whose unpack could hide that). */
Test(run, kernel_variants_name_every_op) {
    make_dir();
    char *err, p[256];
    int st = run_config("k.yaml",
                        "name: kern\n"
                        "datasets:\n"
                        "  - {name: s, kind: sphere, dim: 64, count: 200, queries: 10}\n"
                        "  - {name: s3, kind: sphere, dim: 48, count: 200, queries: 10}\n"
                        "  - {name: kv, kind: kv_cache, tokens: 128, heads: 2, head_dim: 32,\n"
                        "     queries: 4, prefill: 120}\n"
                        "methods:\n"
                        "  - {method: rtn, params: {rotation: haar}, datasets: [s]}\n"
                        "  - {method: polarquant, datasets: [s]}\n"
                        "  - {method: kivi, params: {group: 32, residual: 32}, datasets: [kv]}\n"
                        "  - {method: eden, params: {rotation: haar}, datasets: [s]}\n"
                        "  - {method: turboquant_prod, params: {bits: 1}, datasets: [s]}\n"
                        "  - {method: qjl, datasets: [s]}\n"
                        "  - {method: octopus, params: {rotation: haar}, datasets: [s3]}\n"
                        "  - {method: rotatekv, params: {group: 32, head_group: 2, reorder: "
                        "false}, datasets: [kv]}\n"
                        "metrics: [vnmse, logit_err]\n",
                        " --quick", &err);
    cr_assert_eq(st, 0, "exit %d: %s", st, err);
    snprintf(p, sizeof p, "%s/out/results.jsonl", dir);
    json_t *rows;
    cr_assert_eq(rb_results_read(p, &rows), 0, "%s", rb_error_detail());
    static const struct {
        const char *method, *ops[6];
    } want[] = {
        {"rtn",
         {"sgemm=openblas", "quant_rows_f32=", "pack_rows=", "unpack_rows=", "dequant_rows_f32="}},
        {"polarquant",
         {"sgemm=openblas", "polar_forward_f64=ref",
          "pack_rows=", "unpack_rows=", "polar_inverse_f64=ref"}},
        {"kivi", {"kivi_quant_f16=ref", "kivi_dequant_f16=ref"}},
        {"eden", {"pack_rows=", "unpack_rows="}},
        {"turboquant_prod", {"sgemm=openblas", "pack_rows=", "unpack_rows="}}, /* the sketch */
        {"qjl", {"sgemm=openblas", "pack_rows=", "unpack_rows="}},
        {"octopus", {"pack_rows=", "unpack_rows="}},
        {"rotatekv", {"rotatekv_quant=ref", "pack_rows=", "unpack_rows=", "dequant_rows_f32="}},
    };
    enum { NM = sizeof want / sizeof want[0] };
    int seen[NM] = {0};
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *method = json_string_value(json_object_get(row, "method"));
        const char *kv = json_string_value(json_object_get(row, "kernel_variants"));
        for (int m = 0; m < NM; m++) {
            if (!method || strcmp(method, want[m].method)) continue;
            seen[m]++;
            for (int o = 0; o < 6 && want[m].ops[o]; o++) /* every lack reported */
                cr_expect(kv && strstr(kv, want[m].ops[o]), "%s: '%s' lacks %s", method,
                          kv ? kv : "(null)", want[m].ops[o]);
        }
    }
    for (int m = 0; m < NM; m++) cr_assert(seen[m], "no row of %s", want[m].method);
    json_decref(rows);
    free(err);
}

/* The KV latency pass builds each timed instance as the accuracy pass does: a method that needs
 * calibration (rotatekv's channel order) gets it, untimed. */
Test(run, kv_latency_pass_calibrates) {
    make_dir();
    char *err;
    int st = run_config("kv.yaml",
                        "name: kv\n"
                        "datasets:\n"
                        "  - {name: kv, kind: kv_cache, tokens: 256, heads: 4, head_dim: 32,\n"
                        "     queries: 4, calib_tokens: 64, prefill: 250}\n"
                        "methods:\n"
                        "  - {method: rotatekv, params: {bits: 2, reorder: true, group: 32}}\n"
                        "metrics: [logit_err]\n"
                        "latency: {ops: [encode, decode], min_time: 0.001, repetitions: 2}\n",
                        "", &err);
    cr_assert(st == 0 || (st == 2 && strstr(err, "gnuplot")), "exit %d: %s", st, err);
    char *res = slurp_out("results.jsonl");
    cr_assert(res && strstr(res, "\"encode_latency\"") && strstr(res, "\"decode_latency\""), "%s",
              res ? res : err);
    free(res);
    /* The report states the limits "of BW" is relative to, with the probe's buffer. */
    char *md = slurp_out("report.md");
    cr_assert(md && strstr(md, "MiB buffer:") && strstr(md, "Machine limits"), "%s", md ? md : err);
    free(md);
    free(err);
}

Test(run, config_error_exits_2_and_writes_nothing) {
    make_dir();
    char *err, p[256];
    int st = run_config("bad.yaml",
                        "name: bad\ndatasets:\n  - {name: s, kind: sphere, dim: 0}\n"
                        "methods:\n  - {method: rtn}\nmetrics: [vnmse]\n",
                        "", &err);
    cr_assert_eq(st, 2);
    cr_assert(strstr(err, "bad.yaml:3:") && strstr(err, "dim"), "%s", err);
    snprintf(p, sizeof p, "%s/out", dir);
    struct stat sb;
    cr_assert_neq(stat(p, &sb), 0, "no output directory after a config error");
    free(err);
    static const char *const usage[] = {"", "--resume x.yaml", "--threads 0 x.yaml",
                                        "--backend tpu x.yaml", "--bogus x.yaml"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        cr_assert_eq(run(usage[i], &err), 2, "'%s'", usage[i]);
        cr_assert_neq(err[0], '\0', "'%s' explains itself", usage[i]);
        free(err);
    }
}

/* --threads 0 and --threads 1000 say the same accepted range (0 once said "not a positive
 * integer", 1000 "outside 0..256"). */
Test(run, threads_out_of_range_say_the_range) {
    static const char *const bad[] = {"0", "1000", "-1", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[128], want[64], *err;
        snprintf(args, sizeof args, "--threads %s x.yaml", bad[i]);
        cr_assert_eq(run(args, &err), 2, "'%s'", args);
        snprintf(want, sizeof want, "--threads '%s' must be an integer in 1..256", bad[i]);
        cr_assert(strstr(err, want), "'%s': %s", args, err);
        free(err);
    }
}

/* The thread count: --threads, else RB_THREADS, else one per core; an RB_THREADS that is not a
 * count is refused (exit 2, naming it) instead of the library's quiet fallback to 1 thread. */
Test(run, rb_threads_sets_the_count_and_a_bad_one_is_refused) {
    static const struct {
        const char *env, *opts;
        int status, threads; /* threads recorded in context.json when status is 0 */
    } cases[] = {
        {"3", " --quick", 0, 3},
        {"3", " --quick --threads 1", 0, 1},
        {"1", " --quick", 0, 1},
        {"x", " --quick", 2, 0},
        {"-1", " --quick", 2, 0},
        {"1000", " --quick", 2, 0},
        {"2x", " --quick --threads 1", 2, 0}, /* refused even where --threads wins */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_dir();
        setenv("RB_THREADS", cases[i].env, 1);
        char *err;
        int st = run_config("t.yaml", small_yaml, cases[i].opts, &err);
        unsetenv("RB_THREADS");
        cr_assert_eq(st, cases[i].status, "RB_THREADS=%s%s: %s", cases[i].env, cases[i].opts, err);
        if (st) {
            assert_has(err, "RB_THREADS=%s is not an integer in 0..256", cases[i].env);
        } else {
            char p[256];
            snprintf(p, sizeof p, "%s/out/context.json", dir);
            json_t *ctx = json_load_file(p, 0, NULL);
            cr_assert_not_null(ctx, "RB_THREADS=%s: no context.json", cases[i].env);
            json_t *t = json_object_get(json_object_get(ctx, "host"), "threads");
            cr_assert_eq(json_integer_value(t), cases[i].threads, "RB_THREADS=%s%s", cases[i].env,
                         cases[i].opts);
            json_decref(ctx);
        }
        free(err);
    }
}

/* Lines of text that start with prefix. */
static int count_lines(const char *text, const char *prefix) {
    int n = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += !strncmp(p, prefix, strlen(prefix));
    return n;
}

/* Progress where stderr is a log (here a file, not a terminal): RB_PROGRESS_EVERY=0 gives a line
 * before every cell, naming it; the default (60 s) none in a run this short; "off" none; a value
 * that is not a number of seconds is refused (exit 2, naming it) before anything runs. */
Test(run, progress_lines_in_a_log) {
    static const struct {
        const char *env; /* NULL: unset */
        int status, lines;
    } cases[] = {
        {"0", 0, 12}, {NULL, 0, 0}, {"off", 0, 0}, {"x", 2, 0}, {"-1", 2, 0}, {"", 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_dir();
        const char *env = cases[i].env;
        if (env) setenv("RB_PROGRESS_EVERY", env, 1);
        char *err;
        int st = run_config("p.yaml", small_yaml, " --quick --threads 1", &err);
        unsetenv("RB_PROGRESS_EVERY");
        cr_assert_eq(st, cases[i].status, "RB_PROGRESS_EVERY=%s: %s", env ? env : "(unset)", err);
        cr_assert_eq(count_lines(err, "rotabench run: ["), cases[i].lines,
                     "RB_PROGRESS_EVERY=%s:\n%s", env ? env : "(unset)", err);
        if (cases[i].lines) {
            assert_has(err, "rotabench run: [0/12] ");
            assert_has(err, "rotabench run: [11/12] ");
            assert_has(err, "|rtn|bits=8,rotation=rht,");
        }
        if (st) {
            assert_has(err, "RB_PROGRESS_EVERY='%s' must be a number of seconds", env);
            char p[256];
            snprintf(p, sizeof p, "%s/out/results.jsonl", dir);
            cr_assert(access(p, F_OK) != 0, "RB_PROGRESS_EVERY=%s: a run was written", env);
        }
        free(err);
    }
}

/* Writes dir/NAME, n vectors of dimension 4 in .fvecs ({i, 1, -1, tag / 2} for vector i). */
static void write_fvecs(const char *name, int n, int tag) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) {
        int32_t dim = 4;
        float v[4] = {(float) i, 1, -1, 0.5f * (float) tag};
        fwrite(&dim, sizeof dim, 1, f);
        fwrite(v, sizeof v, 1, f);
    }
    fclose(f);
}

/* A recall@K above the size of a loaded base set (fvecs, count 0 = all: unknown when the config
 * is read) stops the run before its first cell (the preflight reads the file's size) with the
 * metric's place in the config; K = the size runs. */
Test(run, recall_k_above_a_loaded_base_size_names_the_metric) {
    make_dir();
    write_fvecs("base.fvecs", 5, 0);
    write_fvecs("q.fvecs", 3, 1);
    char yaml[1024], args[512], *err;
    for (int k = 5; k <= 6; k++) {
        snprintf(yaml, sizeof yaml,
                 "name: r\ndatasets:\n  - {name: b5, kind: fvecs, path: %s/base.fvecs,\n"
                 "     queries_path: %s/q.fvecs}\nmethods:\n  - {method: rtn}\n"
                 "metrics: [vnmse, recall@%d]\n",
                 dir, dir, k);
        write_file("r.yaml", yaml);
        snprintf(args, sizeof args, "%s/r.yaml -o %s/out%d", dir, dir, k);
        int st = run(args, &err);
        if (k == 5) {
            cr_assert_eq(st, 0, "%s", err);
        } else {
            cr_assert_eq(st, 2, "%s", err);
            cr_assert(strstr(err, "r.yaml:7:18: metric 'recall@6' needs K <= the base size, but "
                                  "dataset 'b5' has 5 base vectors"),
                      "%s", err);
        }
        free(err);
    }
}

/* Keeps the lines of results.jsonl up to and including the k-th cell_done marker, plus a torn
 * half line: what a run killed during cell k+1 leaves. */
static void truncate_after_cells(const char *results_dir, int k) {
    char p[512];
    snprintf(p, sizeof p, "%s/results.jsonl", results_dir);
    char *s = slurp(p);
    char *cut = s;
    for (int done = 0; done < k;) {
        cut = strstr(cut, "{\"cell_done\"");
        cr_assert_not_null(cut);
        cut = strchr(cut, '\n') + 1;
        done++;
    }
    FILE *f = fopen(p, "w");
    fwrite(s, 1, (size_t) (cut - s), f);
    fputs("{\"dataset\":\"s64\",\"val", f); /* torn */
    fclose(f);
    free(s);
}

Test(run, resume_after_interruption_gives_identical_results) {
    make_dir();
    write_file("small.yaml", small_yaml);
    char args[512], *err, a[256], b[256];
    snprintf(a, sizeof a, "%s/full", dir);
    snprintf(b, sizeof b, "%s/cut", dir);
    snprintf(args, sizeof args, "%s/small.yaml -o %s --quick --threads 2", dir, a);
    cr_assert_eq(run(args, &err), 0, "%s", err);
    free(err);
    snprintf(args, sizeof args, "%s/small.yaml -o %s --quick --threads 1", dir, b);
    cr_assert_eq(run(args, &err), 0, "%s", err);
    free(err);
    truncate_after_cells(b, 5);
    snprintf(args, sizeof args, "%s/small.yaml -o %s --quick --threads 1 --resume", dir, b);
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, "run %s", args);
    cr_assert_eq(rbt_run_cli(cmd, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "7 cells run, 5 done before (--resume))"), "%s", out);
    /* context.json describes the resuming session; the first one's command stays on record,
     * and the report lists it. */
    char p[600];
    snprintf(p, sizeof p, "%s/context.json", b);
    json_t *ctx = json_load_file(p, 0, NULL);
    json_t *earlier = json_object_get(json_object_get(ctx, "run"), "earlier_sessions");
    cr_assert_eq(json_array_size(earlier), 1, "%s", p);
    char *first = json_dumps(json_array_get(earlier, 0), 0);
    cr_assert(first && strstr(first, "\"--quick\", \"--threads\", \"1\"") &&
                  !strstr(first, "--resume") && strstr(first, "\"utc\": \"20"),
              "the first session's argv and utc: %s", first);
    free(first);
    json_decref(ctx);
    snprintf(p, sizeof p, "%s/report.md", b);
    char *md = slurp(p);
    const char *row = md ? strstr(md, "| earlier session 1 (") : NULL;
    cr_assert_not_null(row, "%s", md ? md : "");
    const char *end = strchr(row, '\n'), *opts = strstr(row, "--quick --threads 1 "),
               *res = strstr(row, "--resume");
    cr_assert(opts && opts < end && (!res || res > end), "%.*s", (int) (end - row), row);
    free(md);
    char *va = values_of(a), *vb = values_of(b);
    /* Different thread counts and an interruption: the same bits. */
    cr_assert_str_eq(va, vb);
    /* And compare, on the real files (session and done markers included), finds no change. */
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "compare %s %s", a, b);
    cr_assert_eq(rbt_run_cli(cmd, &out, &err), 0, "%s%s", out, err);
    cr_assert(strstr(out, "0 regressions"), "%s", out);
    free(va);
    free(vb);
    free(out);
    free(err);
}

/* Writes dir/k.npy and dir/v.npy, a (64, 2, 64) KV dump, K scaled by k_scale. */
static void write_kv(float k_scale) {
    size_t shape[3] = {64, 2, 64}, n = 64 * 2 * 64;
    float *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (float) ((i * 7919) % 23) / 11.0f - 1.0f;
    for (size_t i = 0; i < n; i++) k[i] = k_scale * v[(i * 31) % n]; /* every v written first */
    char p[256];
    snprintf(p, sizeof p, "%s/k.npy", dir);
    cr_assert_eq(rb_npy_write(p, RB_NPY_F32, 3, shape, k), 0, "%s", rb_error_detail());
    snprintf(p, sizeof p, "%s/v.npy", dir);
    cr_assert_eq(rb_npy_write(p, RB_NPY_F32, 3, shape, v), 0, "%s", rb_error_detail());
    free(k);
    free(v);
}

/* compare on real runs: identical reruns compare clean though wall times (time, speedup) differ
 * between them; a rerun on a data file that changed names the dataset and grades none of its
 * rows (exit 2), where it used to report them as regressions. */
Test(run, compare_grades_neither_timings_nor_other_data) {
    make_dir();
    char yaml[1024], cmd[512], *out, *err;
    write_kv(1);
    snprintf(yaml, sizeof yaml,
             "name: cmp\n"
             "datasets:\n"
             "  - {name: kv, kind: kv_npy, k_path: %s/k.npy, v_path: %s/v.npy, calib_tokens: 16}\n"
             "  - {name: wht, kind: sparse_wht, log2n: 12, k: 4}\n"
             "methods:\n"
             "  - {method: rtn_kv, params: {bits: 2}, datasets: [kv]}\n"
             "  - {method: sparsefht, params: {b: 4, stages: 3, trials: 3}, datasets: [wht]}\n"
             "metrics: [rel_mse_k, success, time, speedup]\n",
             dir, dir);
    write_file("cmp.yaml", yaml);
    const char *outs[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        if (i == 2) write_kv(1.5f);
        snprintf(cmd, sizeof cmd, "%s/cmp.yaml -o %s/%s --quick", dir, dir, outs[i]);
        cr_assert_eq(run(cmd, &err), 0, "%s", err);
        free(err);
    }
    snprintf(cmd, sizeof cmd, "compare %s/a %s/b", dir, dir);
    cr_assert_eq(rbt_run_cli(cmd, &out, &err), 0, "%s%s", out, err);
    cr_assert(strstr(out, "4 rows compared: 0 regressions, 0 improvements, 2 unchanged, 2 not "
                          "graded") &&
                  strstr(out, "(timing: not graded)"),
              "%s", out);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "compare %s/a %s/c", dir, dir);
    cr_assert_eq(rbt_run_cli(cmd, &out, &err), 2, "%s%s", out, err);
    cr_assert(strstr(out, "cannot compare dataset kv: the data differ") &&
                  strstr(out, "(other data: not graded)") && !strstr(out, "REGRESSION"),
              "%s", out);
    free(out);
    free(err);
}

/* Two cells with a short latency pass. */
static const char *lat_yaml = "name: lat\n"
                              "datasets:\n"
                              "  - {name: s, kind: sphere, dim: 32, count: 64}\n"
                              "methods:\n"
                              "  - {method: rtn, params: {bits: [2, 4]}}\n"
                              "metrics: [vnmse]\n"
                              "latency: {ops: [encode], min_time: 0.001, repetitions: 2}\n";

/* A resumed run's latency rows are fractions of the limits the run it continues measured (at the
 * same thread count), not of a second measurement: the report shows one limit per run. The test
 * plants an impossible copy bandwidth in the first run's context.json and reads it back from
 * the resumed rows' gbps / frac_bw. */
Test(run, resume_keeps_the_limits_of_the_run_it_continues, .timeout = 120) {
    make_dir();
    write_file("lat.yaml", lat_yaml);
    char args[512], *err, *out, p[256];
    snprintf(args, sizeof args, "run %s/lat.yaml -o %s/out --threads 1", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/out", dir);
    truncate_after_cells(p, 1);
    snprintf(p, sizeof p, "%s/out/context.json", dir);
    json_t *ctx = json_load_file(p, 0, NULL);
    json_t *lim = json_array_get(json_object_get(json_object_get(ctx, "host"), "limits"), 0);
    cr_assert_not_null(lim, "no limits in context.json");
    json_object_set_new(lim, "copy_gbps", json_real(12345.0));
    cr_assert_eq(json_dump_file(ctx, p, 0), 0);
    json_decref(ctx);
    cr_assert_eq(rbt_run_cli(strcat(args, " --resume"), &out, &err), 0, "%s", err);
    cr_assert(strstr(err, "fractions of the limits the resumed run measured at 1 threads (copy "
                          "12345.0 GB/s"),
              "%s", err);
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/out/results.jsonl", dir);
    json_t *rows, *row;
    cr_assert_eq(rb_results_read(p, &rows), 0, "%s", rb_error_detail());
    size_t i, resumed = 0;
    json_array_foreach(rows, i, row) {
        if (!rb_row_is_latency(row) || i < 2) continue; /* the first cell's rows came first */
        double gbps = rb_row_double(row, "gbps"), frac = rb_row_double(row, "frac_bw");
        cr_assert(fabs(frac * 12345.0 - gbps) <= 1e-9 * gbps, "gbps %g, frac_bw %g", gbps, frac);
        resumed++;
    }
    cr_assert_eq(resumed, 1);
    json_decref(rows);
}

/* A real SIGINT in the middle of a run: exit 2 with the resume command, the finished cells on
 * disk; the resumed run completes. */
Test(run, sigint_keeps_finished_cells, .timeout = 120) {
    const char *bin = getenv("RB_TEST_BIN");
    if (!bin) cr_skip_test("RB_TEST_BIN is not set");
    make_dir();
    write_file("slow.yaml", "name: slow\nrepeats: 40\ndatasets:\n"
                            "  - {name: g, kind: gaussian, dim: 1024, count: 4000, queries: 50}\n"
                            "methods:\n  - {method: rtn, params: {rotation: haar}}\n"
                            "metrics: [vnmse, d_dprod]\n");
    char cfg[256], out[256], log[256], p[512];
    snprintf(cfg, sizeof cfg, "%s/slow.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    snprintf(p, sizeof p, "%s/results.jsonl", out);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        FILE *e = freopen(log, "w", stderr);
        (void) e;
        execl(bin, bin, "run", cfg, "-o", out, "--threads", "1", (char *) NULL);
        _exit(127);
    }
    /* Wait for two finished cells, then interrupt. */
    for (int tries = 0; tries < 6000; tries++) {
        char *s = slurp(p);
        int done = 0;
        for (char *c = s; c && (c = strstr(c, "cell_done")); c++) done++;
        free(s);
        if (done >= 2) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
    char *msg = slurp(log);
    cr_assert(msg && strstr(msg, "interrupted") && strstr(msg, " --resume --threads 1\n"), "%s",
              msg);
    json_t *done;
    cr_assert_eq(rb_results_done_cells(out, &done), 0);
    size_t ndone = json_object_size(done);
    cr_assert(ndone >= 2 && ndone < 40, "%zu cells kept", ndone);
    json_decref(done);
    free(msg);
}

/* --resume into a directory run with another config is refused (the cell keys do not carry the
 * base seed or the metrics, so the two runs' numbers would be mixed). */
Test(run, resume_refuses_a_changed_config) {
    make_dir();
    char *err, yaml[2048];
    cr_assert_eq(run_config("small.yaml", small_yaml, " --quick", &err), 0, "%s", err);
    free(err);
    snprintf(yaml, sizeof yaml, "%s", small_yaml);
    memcpy(strstr(yaml, "seed: 7"), "seed: 8", 7);
    cr_assert_eq(run_config("small.yaml", yaml, " --quick --resume", &err), 2);
    cr_assert(strstr(err, "was run with another config"), "%s", err);
    free(err);
    /* Results without their context.json (copied, or the file deleted): the config that made
     * them is unknown, so they are not taken as done cells of this one. */
    char p[256];
    snprintf(p, sizeof p, "%s/out/context.json", dir);
    cr_assert_eq(unlink(p), 0);
    cr_assert_eq(run_config("small.yaml", yaml, " --quick --resume", &err), 2);
    cr_assert(strstr(err, "has results but no context.json"), "%s", err);
    free(err);
}

/* A latency claim under --quick (which skips the latency pass) is MISSING, exit 1, and the
 * message says why. */
Test(run, quick_says_why_a_latency_claim_is_missing) {
    make_dir();
    char *err;
    cr_assert_eq(run_config("q.yaml",
                            "name: q\ndatasets:\n  - {name: s, kind: sphere, dim: 32, count: 100}\n"
                            "methods:\n  - {method: rtn, params: {bits: 4}}\nmetrics: [vnmse]\n"
                            "latency: {ops: [encode], min_time: 0.001, repetitions: 2}\n"
                            "expect:\n  - {method: rtn, metric: encode_latency, op: '<', value: 1, "
                            "source: x}\n",
                            " --quick", &err),
                 1, "%s", err);
    cr_assert(strstr(err, "expectation MISSING: rtn encode_latency: no encode_latency row for it "
                          "in this run: --quick skips the latency pass"),
              "%s", err);
    free(err);
}

/* --resume on data files rewritten since the finished cells ran: the cells left would run on
 * other data than the rows already there, under one context. Refused, naming the dataset and
 * both hashes; with the first data back the resume completes. */
Test(run, resume_refuses_changed_data) {
    make_dir();
    char npy[256], yaml[1024], *err;
    size_t shape[2] = {200, 16};
    snprintf(npy, sizeof npy, "%s/x.npy", dir);
    float *x = rbt_normal_f32(200 * 16, 1, 0), *y = rbt_normal_f32(200 * 16, 2, 0);
    cr_assert_eq(rb_npy_write(npy, RB_NPY_F32, 2, shape, x), 0, "%s", rb_error_detail());
    snprintf(yaml, sizeof yaml,
             "name: f\nseed: 1\ndatasets:\n  - {name: fx, kind: npy, path: '%s'}\n"
             "methods:\n  - {method: rtn, params: {bits: [2, 4]}}\nmetrics: [vnmse]\n",
             npy);
    cr_assert_eq(run_config("f.yaml", yaml, " --quick --only '*bits=2*'", &err), 0, "%s", err);
    free(err);
    cr_assert_eq(rb_npy_write(npy, RB_NPY_F32, 2, shape, y), 0, "%s", rb_error_detail());
    cr_assert_eq(run_config("f.yaml", yaml, " --quick --resume", &err), 2);
    cr_assert(strstr(err, "dataset 'fx': repeat 0: the data differ from those the finished cells"),
              "%s", err);
    free(err);
    cr_assert_eq(rb_npy_write(npy, RB_NPY_F32, 2, shape, x), 0, "%s", rb_error_detail());
    cr_assert_eq(run_config("f.yaml", yaml, " --quick --resume", &err), 0, "%s", err);
    free(err);
    free(x);
    free(y);
}

/* --quick is not part of the config, so it is checked apart: a run resumed with the other
 * setting would leave some cells with latency rows and some without. Both directions are
 * refused, and the same setting resumes. */
Test(run, resume_refuses_a_changed_quick_flag, .timeout = 120) {
    char *err;
    static const struct {
        const char *first, *then, *says;
    } cases[] = {
        {" --quick --threads 1", " --threads 1 --resume", "was run with --quick"},
        {" --threads 1", " --quick --threads 1 --resume", "was run without --quick"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        make_dir();
        cr_assert_eq(run_config("lat.yaml", lat_yaml, cases[k].first, &err), 0, "%s", err);
        free(err);
        char p[256];
        snprintf(p, sizeof p, "%s/out", dir);
        truncate_after_cells(p, 1);
        cr_assert_eq(run_config("lat.yaml", lat_yaml, cases[k].then, &err), 2, "case %zu", k);
        cr_assert(strstr(err, cases[k].says) && strstr(err, "write to a new directory"),
                  "case %zu: %s", k, err);
        free(err);
        /* Resumed the way it was run, it finishes. */
        char again[128];
        snprintf(again, sizeof again, "%s --resume", cases[k].first);
        cr_assert_eq(run_config("lat.yaml", lat_yaml, again, &err), 0, "case %zu: %s", k, err);
        free(err);
    }
}

/* Without gnuplot a finished run is still a finished run: the report is written without its
 * images, a warning says how to render them later, and the exit status is the grading's (0 here,
 * small.yaml's expectation passes), not a failure. */
Test(run, missing_gnuplot_is_a_warning_not_a_failed_run) {
    make_dir();
    char *err;
    setenv("RB_GNUPLOT", "/nonexistent/gnuplot", 1);
    int st = run_config("small.yaml", small_yaml, " --quick", &err);
    unsetenv("RB_GNUPLOT");
    cr_assert_eq(st, 0, "exit %d: %s", st, err);
    cr_assert(strstr(err, "warning: gnuplot not found") &&
                  strstr(err, "report.md is written without its plots") &&
                  strstr(err, "renders them once gnuplot works"),
              "%s", err);
    cr_assert_null(strstr(err, "finished before it"), "%s", err);
    free(err);
    char *md = slurp_out("report.md");
    cr_assert(md && strstr(md, "**Plot not rendered:** gnuplot not found"), "%s", md ? md : "");
    free(md);
}

/* A second run into a directory that holds one is refused without --resume (its rows would be
 * appended to the first run's under the second's context), and the first run's results stay
 * as they were; an empty existing directory is fine. */
Test(run, refuses_a_directory_that_holds_a_run) {
    make_dir();
    char args[512], path[600], *err;
    cr_assert_eq(run_config("small.yaml", small_yaml, " --quick", &err), 0, "%s", err);
    free(err);
    snprintf(path, sizeof path, "%s/out/results.jsonl", dir);
    json_t *before;
    cr_assert_eq(rb_results_read(path, &before), 0, "%s", rb_error_detail());
    cr_assert_eq(run_config("small.yaml", small_yaml, " --quick", &err), 2);
    cr_assert(strstr(err, "already holds a run") && strstr(err, "--resume"), "%s", err);
    free(err);
    json_t *after;
    cr_assert_eq(rb_results_read(path, &after), 0, "%s", rb_error_detail());
    cr_assert(json_equal(before, after), "the first run's rows are untouched");
    json_decref(before);
    json_decref(after);

    char empty[128];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    cr_assert_eq(mkdir(empty, 0755), 0);
    snprintf(args, sizeof args, "%s/small.yaml -o %s --quick", dir, empty);
    cr_assert_eq(run(args, &err), 0, "%s", err);
    free(err);
}

/* While another run writes the results directory (its flock held here, as a run holds it), a
 * second run into it stops before it writes anything there, fresh or --resume: two appending to
 * one results.jsonl mix their lines, and a --resume cuts the other's line in progress as a torn
 * tail. A dry run only reads. Once the holder is gone the directory is free again. */
Test(run, refuses_a_directory_another_run_is_writing) {
    make_dir();
    static const struct {
        const char *opts;
        int status;
        const char *msg;
    } cases[] = {
        {" --quick", 2, "out: another rotabench run is writing there now"},
        {" --quick --resume", 2, "out: another rotabench run is writing there now"},
        {" --quick --resume --dry-run", 0, NULL},
    };
    char out[128], path[256];
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(mkdir(out, 0755), 0);
    int fd = open(out, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        int st = run_config("small.yaml", small_yaml, cases[i].opts, &err);
        cr_expect_eq(st, cases[i].status, "[%s] exit %d:\n%s", cases[i].opts, st, err);
        if (cases[i].msg) cr_expect(strstr(err, cases[i].msg), "[%s] %s", cases[i].opts, err);
        free(err);
        static const char *const written[] = {"results.jsonl", "context.json"};
        for (size_t w = 0; w < 2; w++) {
            snprintf(path, sizeof path, "%s/%s", out, written[w]);
            cr_expect_neq(access(path, F_OK), 0, "[%s] wrote %s", cases[i].opts, written[w]);
        }
    }
    close(fd);
    char *err;
    cr_assert_eq(run_config("small.yaml", small_yaml, " --quick", &err), 0, "%s", err);
    free(err);
}

/* --only selects cells by glob; one that matches no cell is an error before anything is written,
 * and the summary tells cells left out by --only from cells done before. */
Test(run, only_that_matches_nothing_is_an_error) {
    make_dir();
    write_file("small.yaml", small_yaml);
    char args[512], cmd[600], path[600], *out, *err;
    snprintf(args, sizeof args, "%s/small.yaml -o %s/none --quick --only 'no-such*'", dir, dir);
    cr_assert_eq(run(args, &err), 2);
    cr_assert(strstr(err, "--only 'no-such*' matches none of the 12 cells"), "%s", err);
    free(err);
    snprintf(path, sizeof path, "%s/none/results.jsonl", dir);
    cr_assert_neq(access(path, F_OK), 0, "nothing written");
    snprintf(cmd, sizeof cmd, "run %s/small.yaml -o %s/some --quick --only '*bits=2*'", dir, dir);
    /* the config's claim is on bits = 8, left out: MISSING, which fails the run */
    cr_assert_eq(rbt_run_cli(cmd, &out, &err), 1, "%s", err);
    cr_assert(strstr(out, "4 cells run, 8 not selected by --only)"), "%s", out);
    cr_assert(strstr(out, "0 PASS, 0 FAIL, 1 MISSING (cells not selected by --only)"), "%s", out);
    cr_assert(strstr(err, "expectation MISSING: rtn vnmse: no vnmse row for it"), "%s", err);
    cr_assert_null(strstr(out, "--resume"), "%s", out);
    free(out);
    free(err);
}

/* A metric no cell computes (KV metrics on vector data only) gets a warning naming it after the
 * run; the metrics cells did compute get none. */
Test(run, warns_about_a_metric_no_cell_computes) {
    make_dir();
    char *err;
    cr_assert_eq(run_config("vec.yaml",
                            "name: vec\n"
                            "datasets:\n"
                            "  - {name: s64, kind: sphere, dim: 64, count: 300, queries: 20}\n"
                            "methods:\n"
                            "  - {method: rtn, params: {bits: 4}}\n"
                            "metrics: [vnmse, logit_err, recall@4]\n",
                            " --quick", &err),
                 0, "%s", err);
    cr_assert(strstr(err, "warning: metric 'logit_err' (metrics:) gave no row"), "%s", err);
    cr_assert_null(strstr(err, "metric 'vnmse'"), "%s", err);
    cr_assert_null(strstr(err, "metric 'recall@4'"), "%s", err);
    free(err);
}

/* A cell that fails at run time names the method entry's place in the config, the method, label
 * and dataset, and says where the cells finished before it are kept. The failure is one only the
 * data show, which the preflight (parameters and file headers) cannot see: one key of 1e6 makes
 * the 2-bit cell's group scale overflow the fp16 it is stored in, while the 4-bit cell before it,
 * with fp32 scales, runs. */
Test(run, a_failing_cell_names_its_config_entry) {
    make_dir();
    char want[256], yaml[1024], kp[256], vp[256], *err;
    size_t shape[3] = {64, 2, 64};
    float *kv = calloc(64 * 2 * 64, sizeof *kv);
    for (size_t i = 0; i < 64 * 2 * 64; i++) kv[i] = (float) (i % 13) - 6.0f;
    snprintf(kp, sizeof kp, "%s/k.npy", dir);
    snprintf(vp, sizeof vp, "%s/v.npy", dir);
    cr_assert_eq(rb_npy_write(vp, RB_NPY_F32, 3, shape, kv), 0, "%s", rb_error_detail());
    kv[5 * 2 * 64 + 64 + 7] = 1e6f; /* token 5, head 1, channel 7 */
    cr_assert_eq(rb_npy_write(kp, RB_NPY_F32, 3, shape, kv), 0, "%s", rb_error_detail());
    free(kv);
    snprintf(yaml, sizeof yaml,
             "name: bad\n"
             "datasets:\n"
             "  - {name: kv, kind: kv_npy, k_path: %s, v_path: %s}\n"
             "methods:\n"
             "  - {method: rtn_kv, params: {bits: 4, scale_bits: 32}}\n"
             "  - {method: rtn_kv, label: rk, params: {bits: 2}}\n"
             "metrics: [rel_mse_k]\n",
             kp, vp);
    cr_assert_eq(run_config("bad.yaml", yaml, " --quick --only '*'", &err), 2, "%s", err);
    snprintf(want, sizeof want,
             "%s/bad.yaml:6:5: method 'rtn_kv' (label 'rk') on dataset 'kv': ", dir);
    cr_assert(strstr(err, want) && strstr(err, "beyond the fp16 it is stored in (65504)"), "%s",
              err);
    cr_assert(strstr(err, "the 1 cell finished before it is kept in"), "%s", err);
    /* The command to go on repeats the options the run was started with, quoted for a shell. */
    cr_assert(strstr(err, " --resume --quick --only '*' -k goes on past failing cells"), "%s", err);
    free(err);
    /* The failure is on disk too: `rotabench report` on the stopped run lists it. */
    char out[128];
    snprintf(out, sizeof out, "%s/out", dir);
    json_t *failed;
    cr_assert_eq(rb_results_failed_cells(out, &failed), 0, "%s", rb_error_detail());
    cr_assert_eq(json_object_size(failed), 1);
    const char *key;
    json_t *msg;
    json_object_foreach(failed, key, msg) {
        cr_assert(strstr(key, "|rk|bits=2,"), "%s", key);
        cr_assert(strstr(json_string_value(msg), want), "%s", json_string_value(msg));
    }
    json_decref(failed);
}

/* A method's rules on its data (rb_codec_ops.check / rb_kv_ops.check) are applied to every cell
 * before the first runs: an impossible cell anywhere in the sweep is an error at once, each
 * distinct one printed once with its count, and nothing is written. */
Test(run, preflight_rejects_impossible_cells_before_any_runs) {
    make_dir();
    char p[256], *err;
    cr_assert_eq(
        run_config("bad.yaml",
                   "name: bad\n"
                   "datasets:\n"
                   "  - {name: kv, kind: kv_cache, tokens: 64, heads: 2, head_dim: 64}\n"
                   "  - {name: s, kind: sphere, dim: 100, count: 32}\n"
                   "methods:\n"
                   "  - {method: rtn, datasets: [s]}\n"
                   "  - {method: rtn_kv, params: {bits: 4}, datasets: [kv]}\n"
                   "  - {method: rotatekv, label: rk, params: {bits: [2, 4]}, "
                   "datasets: [kv]}\n"
                   "  - {method: rotatekv, label: rk32, params: {group: 32, head_group: 2}, "
                   "datasets: [kv]}\n"
                   "  - {method: octopus, datasets: [s]}\n"
                   "metrics: [rel_mse_k, vnmse]\n",
                   " --quick", &err),
        2, "%s", err);
    assert_has(err,
               "%s/bad.yaml:8:5: method 'rotatekv' (label 'rk') on dataset 'kv': rotatekv: "
               "head_dim = 64 is not a multiple of group = 128 (2 cells)",
               dir);
    assert_has(err,
               "%s/bad.yaml:10:5: method 'octopus' (label 'octopus') on dataset 's': octopus: d = "
               "100 is not supported",
               dir);
    /* Not a shape: rotatekv's channel order needs calibration tokens, which kv has none of. */
    assert_has(
        err,
        "%s/bad.yaml:9:5: method 'rotatekv' (label 'rk32') on dataset 'kv': rotatekv: reorder "
        "needs calibration tokens",
        dir);
    cr_assert(strstr(err, "4 cells cannot run with their data (above); nothing was run"), "%s",
              err);
    snprintf(p, sizeof p, "%s/out", dir);
    cr_assert_neq(access(p, F_OK), 0, "the run wrote %s", p);
    free(err);
}

/* The number of cells dir/out's results.jsonl lists as failed. */
static size_t failed_in_out(void) {
    char p[256];
    snprintf(p, sizeof p, "%s/out", dir);
    json_t *failed;
    cr_assert_eq(rb_results_failed_cells(p, &failed), 0, "%s", rb_error_detail());
    size_t n = json_object_size(failed);
    json_decref(failed);
    return n;
}

/* The values of `field` (method, dataset) of the rows in dir/out's results, each once, in order:
 * "rtn_kv,kivi,". */
static void rows_of(const char *field, char *buf, size_t size) {
    char p[256];
    snprintf(p, sizeof p, "%s/out/results.jsonl", dir);
    json_t *rows;
    cr_assert_eq(rb_results_read(p, &rows), 0, "%s", rb_error_detail());
    buf[0] = '\0';
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *m = rb_row_str(row, field);
        char item[64];
        snprintf(item, sizeof item, "%s,", m);
        if (!strstr(buf, item)) strncat(buf, item, size - strlen(buf) - 1);
    }
    json_decref(rows);
}

/* Writes dir/NAME, a (tokens, heads, head_dim) float32 KV dump of small integers. */
static void write_kv_npy(const char *name, size_t tokens, size_t heads, size_t head_dim) {
    size_t shape[3] = {tokens, heads, head_dim}, n = tokens * heads * head_dim;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float) (i % 13) - 6.0f;
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(rb_npy_write(p, RB_NPY_F32, 3, shape, x), 0, "%s", rb_error_detail());
    free(x);
}

/* The preflight reads the headers of file datasets: a KV dump's heads, head_dim and calibration
 * split check every cell's method as a generator's parameters do, and a dump whose keys and
 * values disagree is an error of its dataset entry, once, with the cells it fails. Nothing runs
 * and nothing is written. */
Test(run, preflight_reads_the_headers_of_file_datasets) {
    make_dir();
    write_kv_npy("k.npy", 64, 2, 64);
    write_kv_npy("v.npy", 64, 2, 64);
    write_kv_npy("v32.npy", 64, 2, 32);
    char yaml[2048], p[256], *err;
    snprintf(yaml, sizeof yaml,
             "name: bad\n"
             "datasets:\n"
             "  - {name: kv, kind: kv_npy, k_path: %s/k.npy, v_path: %s/v.npy}\n"
             "  - {name: kvc, kind: kv_npy, k_path: %s/k.npy, v_path: %s/v.npy, calib_tokens: 16}\n"
             "  - {name: kvbad, kind: kv_npy, k_path: %s/k.npy, v_path: %s/v32.npy}\n"
             "methods:\n"
             "  - {method: rtn_kv, params: {bits: 4}}\n"
             "  - {method: rotatekv, label: rk, params: {bits: [2, 4]}, datasets: [kv, kvc]}\n"
             "  - {method: rotatekv, label: rk64, params: {group: 64, head_group: 2}, "
             "datasets: [kv, kvc]}\n"
             "metrics: [rel_mse_k]\n",
             dir, dir, dir, dir, dir, dir);
    cr_assert_eq(run_config("bad.yaml", yaml, " --quick", &err), 2, "%s", err);
    assert_has(
        err,
        "%s/bad.yaml:5:5: dataset 'kvbad': kv_npy: shape mismatch: keys %s/k.npy are (64, 2, "
        "64) but values %s/v32.npy are (64, 2, 32) (1 cell)",
        dir, dir, dir);
    for (int d = 0; d < 2; d++) {
        assert_has(err,
                   "%s/bad.yaml:8:5: method 'rotatekv' (label 'rk') on dataset '%s': rotatekv: "
                   "head_dim = 64 is not a multiple of group = 128 (2 cells)",
                   dir, d ? "kvc" : "kv");
    }
    /* The split's calibration tokens reach the check: rk64 needs them, and kvc has 16. */
    assert_has(err,
               "%s/bad.yaml:9:5: method 'rotatekv' (label 'rk64') on dataset 'kv': rotatekv: "
               "reorder needs calibration tokens",
               dir);
    cr_assert_null(strstr(err, "(label 'rk64') on dataset 'kvc'"), "%s", err);
    cr_assert(strstr(err, "6 cells cannot run with their data (above); nothing was run"), "%s",
              err);
    snprintf(p, sizeof p, "%s/out", dir);
    cr_assert_neq(access(p, F_OK), 0, "the run wrote %s", p);
    free(err);
}

/* Runs dir/bad.yaml (yaml) without -k: exit 2, the preflight's total of nbad cells and nothing
 * written. The caller checks the messages in the stderr returned, and frees it. */
static char *rejected_before_running(const char *yaml, const char *opts, size_t nbad) {
    char *err, p[256];
    cr_assert_eq(run_config("bad.yaml", yaml, opts, &err), 2, "%s", err);
    assert_has(err, "%zu cell%s cannot run with %s data (above); nothing was run", nbad,
               nbad == 1 ? "" : "s", nbad == 1 ? "its" : "their");
    snprintf(p, sizeof p, "%s/out", dir);
    cr_assert_neq(access(p, F_OK), 0, "the run wrote %s", p);
    return err;
}

/* The same run with -k: the other cells run (the datasets of their rows, each once in order, are
 * `datasets`; their methods `methods`) and the nbad are recorded as failed. */
static void keep_going_past(const char *opts, size_t nbad, const char *datasets,
                            const char *methods) {
    char *err, args[512], seen[256];
    snprintf(args, sizeof args, "%s/bad.yaml -o %s/out%s -k", dir, dir, opts);
    cr_assert_eq(run(args, &err), 2, "%s", err);
    assert_has(err, "%zu cells cannot run with their data (checked before the first cell)", nbad);
    assert_has(err, "%zu cells failed", nbad);
    free(err);
    cr_assert_eq(failed_in_out(), nbad);
    rows_of("dataset", seen, sizeof seen);
    cr_assert_str_eq(seen, datasets);
    rows_of("method", seen, sizeof seen);
    cr_assert_str_eq(seen, methods);
}

/* Metrics that need queries, on data without them (a vector set and a KV cache generated with
 * queries: 0, a KV dump without Q, a .npy whose queries are not of its vectors' dimension), are
 * refused before the first cell, with the evaluators' own words (a file of queries of another
 * dimension with the loader's); the same metrics on the data with queries run. The impossible
 * cells come last. */
Test(run, preflight_finds_metrics_that_need_queries_the_data_lack) {
    make_dir();
    write_kv_npy("k.npy", 32, 2, 16);
    write_kv_npy("v.npy", 32, 2, 16);
    float x[6 * 16] = {0};
    size_t xs[2] = {6, 16}, qs[2] = {3, 8};
    char p[256], yaml[2048];
    snprintf(p, sizeof p, "%s/x.npy", dir);
    cr_assert_eq(rb_npy_write(p, RB_NPY_F32, 2, xs, x), 0, "%s", rb_error_detail());
    snprintf(p, sizeof p, "%s/q8.npy", dir);
    cr_assert_eq(rb_npy_write(p, RB_NPY_F32, 2, qs, x), 0, "%s", rb_error_detail());
    snprintf(yaml, sizeof yaml,
             "name: q\n"
             "datasets:\n"
             "  - {name: s, kind: sphere, dim: 16, count: 50, queries: 5}\n"
             "  - {name: kv, kind: kv_cache, tokens: 32, heads: 2, head_dim: 16, queries: 4}\n"
             "  - {name: s0, kind: sphere, dim: 16, count: 50}\n"
             "  - {name: kv0, kind: kv_cache, tokens: 32, heads: 2, head_dim: 16, queries: 0}\n"
             "  - {name: kvf, kind: kv_npy, k_path: %s/k.npy, v_path: %s/v.npy}\n"
             "  - {name: x8, kind: npy, path: %s/x.npy, queries_path: %s/q8.npy}\n"
             "methods:\n"
             "  - {method: rtn, params: {bits: [2, 4]}}\n"
             "metrics: [vnmse, ip_slope, recall@5, rel_mse_k, attn_kl]\n",
             dir, dir, dir, dir);
    char *err = rejected_before_running(yaml, " --quick", 8);
    const char *hint = "(set 'queries: N' on a generated dataset; 'queries_path' (npy, fvecs), "
                       "'q_path' (kv_npy) or 'q_tensor' (kv_safetensors) on a loaded one)";
    assert_has(err,
               "%s/bad.yaml:10:5: method 'rtn' (label 'rtn') on dataset 's0': rtn: metrics "
               "ip_slope/d_dprod/ip_bias/recall@k need queries of dimension 16 %s (2 cells)",
               dir, hint);
    /* queries of another dimension are the dataset's error, naming the file */
    assert_has(err,
               "%s/bad.yaml:8:5: dataset 'x8': %s/q8.npy: queries of shape (3, 8); with vectors x "
               "of dimension 16 they must be (queries, 16) (2 cells)",
               dir, dir);
    for (int i = 0; i < 2; i++) {
        const char *ds = i ? "kvf" : "kv0";
        assert_has(err,
                   "%s/bad.yaml:10:5: method 'rtn' (label 'rtn') on dataset '%s': rtn: the "
                   "attention metrics need queries (tensor 'Q'; set 'queries: N' on a generated "
                   "dataset; 'queries_path' (npy, fvecs), 'q_path' (kv_npy) or 'q_tensor' "
                   "(kv_safetensors) on a loaded one) (2 cells)",
                   dir, ds);
    }
    free(err);
    keep_going_past(" --quick", 8, "s,kv,", "rtn,");
}

/* The latency pass's inner_product needs queries too: without --quick a dataset without them is
 * refused before the first cell, on vectors and on KV data, in the pass's own words. */
Test(run, preflight_finds_a_timed_inner_product_without_queries, .timeout = 120) {
    make_dir();
    const char *yaml = "name: lat\n"
                       "datasets:\n"
                       "  - {name: s, kind: sphere, dim: 16, count: 50, queries: 5}\n"
                       "  - {name: s0, kind: sphere, dim: 16, count: 50}\n"
                       "  - {name: kv0, kind: kv_cache, tokens: 32, heads: 2, head_dim: 16, "
                       "queries: 0}\n"
                       "methods:\n"
                       "  - {method: rtn}\n"
                       "metrics: [vnmse, rel_mse_k]\n"
                       "latency: {ops: [encode, inner_product], min_time: 0.001, repetitions: 1}\n";
    char *err = rejected_before_running(yaml, "", 2);
    assert_has(err,
               "%s/bad.yaml:7:5: method 'rtn' (label 'rtn') on dataset 's0': latency: op "
               "inner_product (latency: ops) needs queries of dimension 16 on dataset 's0': set "
               "'queries: N' on a generated dataset;",
               dir);
    assert_has(err,
               "%s/bad.yaml:7:5: method 'rtn' (label 'rtn') on dataset 'kv0': latency: op "
               "inner_product (latency: ops) on KV data needs queries (tensor 'Q') on dataset "
               "'kv0': set 'queries: N'",
               dir);
    free(err);
    /* --quick skips the pass, and with it the check. */
    char args[512];
    snprintf(args, sizeof args, "%s/bad.yaml -o %s/quick --quick", dir, dir);
    cr_assert_eq(run(args, &err), 0, "%s", err);
    free(err);
    keep_going_past("", 2, "s,", "rtn,");
}

/* A KV method on vector data is refused before the first cell with the KV evaluator's error, at
 * the method's entry; a vector codec on KV data (each head_dim row a vector) is not. */
Test(run, preflight_finds_a_kv_method_on_vector_data) {
    make_dir();
    const char *yaml = "name: kvs\n"
                       "datasets:\n"
                       "  - {name: kv, kind: kv_cache, tokens: 32, heads: 2, head_dim: 16}\n"
                       "  - {name: s, kind: sphere, dim: 16, count: 50}\n"
                       "methods:\n"
                       "  - {method: rtn}\n"
                       "  - {method: rtn_kv, params: {bits: [2, 4]}}\n"
                       "metrics: [vnmse, rel_mse_k]\n";
    char *err = rejected_before_running(yaml, " --quick", 2);
    assert_has(err,
               "%s/bad.yaml:7:5: method 'rtn_kv' (label 'rtn_kv') on dataset 's': rtn_kv: the "
               "dataset has no KV tensors 'K' and 'V' (2 cells)",
               dir);
    cr_assert_null(strstr(err, "method 'rtn' (label 'rtn')"), "%s", err);
    free(err);
    keep_going_past(" --quick", 2, "kv,s,", "rtn,rtn_kv,");
}

/* A file whose 'x' is not 2-d holds no vectors to code: refused before the first cell (the
 * header says so), not after a dry run that passed it. */
Test(run, preflight_finds_an_x_that_is_not_2d) {
    make_dir();
    char path[128], yaml[512];
    snprintf(path, sizeof path, "%s/x1.npy", dir);
    float v[12] = {0};
    size_t shape[1] = {12};
    cr_assert_eq(rb_npy_write(path, RB_NPY_F32, 1, shape, v), 0, "%s", rb_error_detail());
    snprintf(yaml, sizeof yaml,
             "name: x1\ndatasets:\n  - {name: f, kind: npy, path: %s}\nmethods:\n"
             "  - {method: rtn}\nmetrics: [vnmse]\n",
             path);
    char *err = rejected_before_running(yaml, "", 1);
    assert_has(err,
               "%s/bad.yaml:5:5: method 'rtn' (label 'rtn') on dataset 'f': rtn: the dataset has "
               "no 2-d tensor 'x' of base vectors",
               dir);
    free(err);
}

/* Data of another family are refused before the first cell, with the evaluators' own words at
 * the method's entry: a vector codec and a KV method on a sparse signal, a sparse method on
 * vectors and on a KV cache. The cells on their own family's data run. */
Test(run, preflight_finds_methods_on_another_familys_data) {
    make_dir();
    const char *yaml = "name: fam\n"
                       "datasets:\n"
                       "  - {name: s, kind: sphere, dim: 16, count: 50}\n"
                       "  - {name: w, kind: sparse_wht, log2n: 8, k: 2}\n"
                       "  - {name: kv, kind: kv_cache, tokens: 32, heads: 2, head_dim: 16}\n"
                       "methods:\n"
                       "  - {method: rtn, datasets: [s, w]}\n"
                       "  - {method: rtn_kv, datasets: [kv, w]}\n"
                       "  - {method: fwht_full, params: {trials: 1}}\n"
                       "metrics: [vnmse, rel_mse_k, success]\n";
    char *err = rejected_before_running(yaml, " --quick", 4);
    assert_has(err,
               "%s/bad.yaml:7:5: method 'rtn' (label 'rtn') on dataset 'w': rtn: the dataset has "
               "no 2-d tensor 'x' of base vectors",
               dir);
    assert_has(err,
               "%s/bad.yaml:8:5: method 'rtn_kv' (label 'rtn_kv') on dataset 'w': rtn_kv: the "
               "dataset has no KV tensors 'K' and 'V'",
               dir);
    assert_has(err,
               "%s/bad.yaml:9:5: method 'fwht_full' (label 'fwht_full') on dataset 's': "
               "fwht_full: the dataset has no signal oracle (sparse methods need a sampled "
               "signal: kind sparse_wht or sparse_npy)",
               dir);
    assert_has(err, "method 'fwht_full' (label 'fwht_full') on dataset 'kv': fwht_full: the "
                    "dataset has no signal oracle");
    cr_assert_null(strstr(err, "on dataset 'w': fwht_full"), "%s", err);
    free(err);
    keep_going_past(" --quick", 4, "s,w,kv,", "rtn,fwht_full,rtn_kv,");
}

/* A recall@K above a file's base size is refused before the first cell (the preflight reads the
 * .fvecs file's size), at the metric's place in the config; the cells on a larger set run. */
Test(run, preflight_finds_recall_k_above_a_files_base_size) {
    make_dir();
    write_fvecs("base.fvecs", 5, 0);
    write_fvecs("q.fvecs", 3, 1);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "name: r\n"
             "datasets:\n"
             "  - {name: s, kind: sphere, dim: 4, count: 50, queries: 5}\n"
             "  - {name: b5, kind: fvecs, path: %s/base.fvecs, queries_path: %s/q.fvecs}\n"
             "methods:\n"
             "  - {method: rtn, params: {bits: [2, 4]}}\n"
             "metrics: [vnmse, recall@6]\n",
             dir, dir);
    char *err = rejected_before_running(yaml, " --quick", 2);
    assert_has(err,
               "%s/bad.yaml:7:18: metric 'recall@6' needs K <= the base size, but dataset 'b5' "
               "has 5 base vectors (2 cells)",
               dir);
    free(err);
    keep_going_past(" --quick", 2, "s,", "rtn,");
}

/* A missing file in the second dataset entry stops the run before the first cell of the first:
 * one error at that entry's place, naming the file, with the count of the cells it fails. */
static const char *missing_yaml = "name: missing\n"
                                  "datasets:\n"
                                  "  - {name: s, kind: sphere, dim: 8, count: 20}\n"
                                  "  - {name: d, kind: npy, path: %s/nope.npy}\n"
                                  "methods:\n"
                                  "  - {method: rtn, params: {bits: [2, 4, 8]}}\n"
                                  "metrics: [vnmse]\n";

Test(run, preflight_finds_a_missing_file_before_the_first_cell) {
    make_dir();
    char yaml[1024], p[256], *err;
    snprintf(yaml, sizeof yaml, missing_yaml, dir);
    cr_assert_eq(run_config("missing.yaml", yaml, " --quick", &err), 2, "%s", err);
    assert_has(err,
               "rotabench run: %s/missing.yaml:4:5: dataset 'd': %s/nope.npy: cannot open: No such "
               "file or directory (3 cells)\n",
               dir, dir);
    size_t times = 0;
    for (const char *at = err; (at = strstr(at, "cannot open")); at++) times++;
    cr_assert_eq(times, 1, "the error is printed once: %s", err);
    cr_assert(strstr(err, "3 cells cannot run with their data (above); nothing was run"), "%s",
              err);
    snprintf(p, sizeof p, "%s/out", dir);
    cr_assert_neq(access(p, F_OK), 0, "the run wrote %s", p);
    free(err);
}

/* The lines of text that contain sub. */
static size_t lines_with(const char *text, const char *sub) {
    size_t n = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        const char *end = strchr(l, '\n'), *at = strstr(l, sub);
        if (at && (!end || at < end)) n++;
    }
    return n;
}

/* --dry-run: the preflight on every cell that would run (its errors shown even with -k), the
 * keys of those cells (the same keys the run then writes), nothing written; with --resume the
 * cells done before are counted, not listed. */
Test(run, dry_run_lists_the_cells_and_writes_nothing, .timeout = 120) {
    make_dir();
    char yaml[1024], p[256], args[512], *out, *err;
    snprintf(yaml, sizeof yaml, missing_yaml, dir);
    write_file("missing.yaml", yaml);
    snprintf(args, sizeof args, "run %s/missing.yaml -o %s/out -n -k", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 2, "%s%s", out, err);
    assert_has(err, "dataset 'd': %s/nope.npy: cannot open: No such file or directory (3 cells)",
               dir);
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/out", dir);
    cr_assert_neq(access(p, F_OK), 0, "the dry run wrote %s", p);

    write_file("small.yaml", small_yaml);
    snprintf(args, sizeof args, "run %s/small.yaml -o %s/out --dry-run", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s%s", out, err);
    cr_assert_eq(lines_with(out, "|rtn|"), 12, "%s", out);
    cr_assert(strstr(out, "dry run: 12 of 12 cells would run; every one passes"), "%s", out);
    cr_assert(strstr(out, "expect:  1 expectations"), "%s", out);
    cr_assert_neq(access(p, F_OK), 0, "the dry run wrote %s", p);
    char *listed = out;
    free(err);

    snprintf(args, sizeof args, "run %s/small.yaml -o %s/out -n --only '*bits=8*'", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s%s", out, err);
    cr_assert_eq(lines_with(out, "|bits=8,"), 4, "%s", out);
    cr_assert_eq(lines_with(out, "|rtn|"), 4, "%s", out);
    cr_assert(strstr(out, "4 of 12 cells would run, 8 not selected by --only"), "%s", out);
    free(out);
    free(err);

    /* The run writes the cells the dry run listed, in its order. */
    cr_assert_eq(run_config("small.yaml", small_yaml, " --quick", &err), 0, "%s", err);
    free(err);
    snprintf(p, sizeof p, "%s/out/results.jsonl", dir);
    json_t *rows;
    cr_assert_eq(rb_results_read(p, &rows), 0, "%s", rb_error_detail());
    char keys[8192] = "";
    const char *prev = "";
    size_t i, len = 0;
    json_t *row;
    json_array_foreach(rows, i, row) { /* a row per metric: each cell's key once */
        const char *k = rb_row_str(row, "cell_key");
        if (strcmp(prev, k)) len += (size_t) snprintf(keys + len, sizeof keys - len, "%s\n", k);
        prev = k;
        cr_assert(len < sizeof keys);
    }
    json_decref(rows);
    cr_assert(!strncmp(listed, keys, strlen(keys)), "listed:\n%s\nran:\n%s", listed, keys);
    free(listed);

    snprintf(args, sizeof args, "run %s/small.yaml -o %s/out -n", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 2, "%s%s", out, err);
    cr_assert(strstr(err, "already holds a run"), "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "run %s/small.yaml -o %s/out -n --resume --quick", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s%s", out, err);
    cr_assert(strstr(out, "dry run: 0 of 12 cells would run, 12 done before (--resume)"), "%s",
              out);
    cr_assert_eq(lines_with(out, "|rtn|"), 0, "%s", out);
    free(out);
    free(err);
}

/* With --keep-going the cells of the other dataset run and those of the missing file are recorded
 * as failed, each with the dataset entry's error. */
Test(run, keep_going_runs_the_cells_a_missing_file_does_not_stop) {
    make_dir();
    char yaml[1024], want[512], *err, methods[256];
    snprintf(yaml, sizeof yaml, missing_yaml, dir);
    cr_assert_eq(run_config("missing.yaml", yaml, " --quick -k", &err), 2, "%s", err);
    cr_assert(strstr(err, "3 cells cannot run with their data (checked before the first cell); "
                          "they will be recorded as failed (--keep-going)"),
              "%s", err);
    cr_assert(strstr(err, "3 cells failed"), "%s", err);
    free(err);
    rows_of("method", methods, sizeof methods);
    cr_assert_str_eq(methods, "rtn,");
    cr_assert_eq(failed_in_out(), 3);
    char p[256];
    snprintf(p, sizeof p, "%s/out", dir);
    json_t *failed;
    cr_assert_eq(rb_results_failed_cells(p, &failed), 0, "%s", rb_error_detail());
    snprintf(want, sizeof want, "%s/missing.yaml:4:5: dataset 'd': %s/nope.npy: cannot open", dir,
             dir);
    const char *key;
    json_t *msg;
    json_object_foreach(failed, key, msg) {
        cr_assert(!strncmp(key, "d|", 2), "%s", key);
        cr_assert(strstr(json_string_value(msg), want), "%s", json_string_value(msg));
    }
    json_decref(failed);
}

static const char *kv_mixed_yaml = "name: mixed\n"
                                   "datasets:\n"
                                   "  - {name: kv, kind: kv_cache, tokens: 64, heads: 2, "
                                   "head_dim: 64}\n"
                                   "methods:\n"
                                   "  - {method: rtn_kv, params: {bits: 4}}\n"
                                   "  - {method: rotatekv, label: rk, params: {bits: [2, 4]}}\n"
                                   "  - {method: kivi, params: {bits: 2}}\n"
                                   "metrics: [rel_mse_k]\n";

/* --keep-going: the cells after a failing one still run; the failures are on stderr, in
 * results.jsonl (not as rows) and in the report, and the exit status is 2 whatever the
 * expectations say. Without it the run stops at the first (the test above). */
Test(run, keep_going_runs_the_rest_and_lists_the_failures) {
    make_dir();
    char *err, methods[256];
    cr_assert_eq(run_config("mixed.yaml", kv_mixed_yaml, " --quick --keep-going", &err), 2, "%s",
                 err);
    cr_assert(strstr(err, "continuing (--keep-going)"), "%s", err);
    cr_assert(strstr(err, "2 cells failed"), "%s", err);
    free(err);
    rows_of("method", methods, sizeof methods);
    cr_assert_str_eq(methods, "rtn_kv,kivi,");
    char want[160];
    snprintf(want, sizeof want, "%s/mixed.yaml:6:5: method 'rotatekv' (label 'rk')", dir);
    cr_assert_eq(failed_in_out(), 2);
    char *report = slurp_out("report.md");
    cr_assert_not_null(report);
    cr_assert(strstr(report, "**PARTIAL: 2 of 4 cells** finished; **2 failed**"), "%s", report);
    char *section = strstr(report, "## Failed cells");
    cr_assert(section && strstr(section, want) && strstr(section, "not a multiple of group"), "%s",
              report);
    free(report);
}

/* A failed cell is not done: --resume runs it again, and once its cause (here a data file that
 * did not exist yet) is gone it succeeds, leaves the failed list and the run exits 0. */
Test(run, resume_runs_failed_cells_again) {
    make_dir();
    char npy[256], yaml[1024], *err, methods[256];
    snprintf(npy, sizeof npy, "%s/later.npy", dir);
    npy_config(yaml, sizeof yaml, "later", npy);
    cr_assert_eq(run_config("later.yaml", yaml, " --quick -k", &err), 2, "%s", err);
    free(err);
    rows_of("method", methods, sizeof methods);
    cr_assert_str_eq(methods, "rtn,");
    float x[4 * 8];
    for (int i = 0; i < 32; i++) x[i] = (float) (i % 7) - 3.0f;
    size_t shape[2] = {4, 8};
    cr_assert_eq(rb_npy_write(npy, RB_NPY_F32, 2, shape, x), 0, "%s", rb_error_detail());
    char args[512], *out;
    /* compare against a run that had the file: the missing rows are those of the failed cell. */
    snprintf(args, sizeof args, "run %s/later.yaml -o %s/full --quick", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "compare %s/full %s/out", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 2, "%s%s", out, err);
    cr_assert(strstr(out, "cells that failed in new (1; their rows are missing):\n  ") &&
                  strstr(out, "later.npy"),
              "%s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "run %s/later.yaml -o %s/out --quick --resume", dir, dir);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "(1 cells run, 1 done before (--resume))"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(failed_in_out(), 0);
    char *report = slurp_out("report.md");
    cr_assert(report && !strstr(report, "Failed cells") && !strstr(report, "PARTIAL"), "%s",
              report);
    free(report);
    /* The preflight checks only the cells still to run: with every cell done, the data file of
     * a finished one may be gone (moved, cleaned up) and --resume still renders the run. */
    cr_assert_eq(unlink(npy), 0);
    cr_assert_eq(rbt_run_cli(args, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "(0 cells run, 2 done before (--resume))"), "%s", out);
    free(out);
    free(err);
}
