/* rotabench compare on crafted result pairs written to temporary directories: each exit code,
 * accuracy tolerances and directions, latency significance, threshold and blind rows,
 * measurements without samples, data that differ, incomparable inputs, malformed and torn files,
 * and the CLI through the binary (RB_TEST_BIN). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/compare.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The dataset_hash the next rows are written with (tests of data that differ change it; NULL
 * writes null, as a row from before the field). */
static const char *data_hash = "d474d474d474d474d474d474d474d474d474d474d474d474d474d474d474d474";
/* The kernel_variants the next rows are written with (tests of other kernels change it). */
static const char *kernel_variants = "fwht_f32=avx512";
/* The cpu_wait the next rows with samples carry (NaN: none, as results written before it). */
static double row_cpu_wait = NAN;

/* One results.jsonl line. value NaN is written as null; samples may be NULL. The unit is the
 * metric's, seconds for other metrics with samples. */
static void row(FILE *f, const char *method, int version, int bits, const char *metric,
                double value, const double *samples, size_t ns, int repeat) {
    json_t *s = json_array();
    for (size_t i = 0; i < ns; i++) json_array_append_new(s, json_real(samples[i]));
    /* Each row is its own completed cell (the reader keeps only rows of completed cells). */
    char key[128];
    snprintf(key, sizeof key, "%s|%d|%d|%d|%s", method, version, bits, repeat, metric);
    const rb_metric *m = rb_metric_find(metric);
    json_t *r = json_pack(
        "{s:s, s:s?, s:{s:i, s:i}, s:s, s:s, s:i, s:{s:i, s:s}, s:s, s:i, s:i,"
        " s:s, s:o, s:s, s:i, s:n, s:o, s:s, s:s}",
        "dataset", "sphere128", "dataset_hash", data_hash, "dparams", "dim", 128, "count", 1000,
        "method", method, "label", method, "method_version", version, "params", "bits", bits,
        "scale", "unbiased", "backend", "cpu", "seed", 7, "repeat", repeat, "metric", metric,
        "value", isnan(value) ? json_null() : json_real(value), "unit",
        m         ? m->unit
        : samples ? "s"
                  : "",
        "n", 1000, "stderr", "samples", s, "kernel_variants", kernel_variants, "cell_key", key);
    cr_assert(r);
    if (samples && !isnan(row_cpu_wait))
        json_object_set_new(r, "cpu_wait", json_real(row_cpu_wait));
    char *t = json_dumps(r, JSON_COMPACT);
    fprintf(f, "%s\n{\"cell_done\": \"%s\"}\n", t, key);
    free(t);
    json_decref(r);
}

/* A results directory with context.json (the text ctx) and results.jsonl (text). */
static char *results_dir_ctx(const char *ctx, const char *jsonl) {
    char tmpl[] = "/tmp/rbcmpXXXXXX";
    cr_assert(mkdtemp(tmpl));
    char path[64];
    snprintf(path, sizeof path, "%s/context.json", tmpl);
    FILE *f = fopen(path, "w");
    fputs(ctx, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/results.jsonl", tmpl);
    f = fopen(path, "w");
    fputs(jsonl, f);
    fclose(f);
    return strdup(tmpl);
}

/* A results directory whose context.json has only the config sha (and a git revision). */
static char *results_dir(const char *sha, const char *jsonl) {
    char ctx[256];
    snprintf(ctx, sizeof ctx,
             "{\"build\": {\"git_sha\": \"abc\"}, \"run\": {\"config_sha256\": \"%s\"}}\n", sha);
    return results_dir_ctx(ctx, jsonl);
}

static void remove_dir(char *dir) {
    char path[64];
    snprintf(path, sizeof path, "%s/context.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* Rows are built into memory streams, one per side. */
typedef struct pair {
    char *a, *b;
    size_t na, nb;
    FILE *fa, *fb;
} pair;

static void pair_open(pair *p) {
    memset(p, 0, sizeof *p);
    p->fa = open_memstream(&p->a, &p->na);
    p->fb = open_memstream(&p->b, &p->nb);
}

/* Runs rb_compare on the two sides, whose context.json are the texts ctx_a and ctx_b; returns its
 * status and the text it printed (*text, to free). */
static int run_pair_ctx(pair *p, const char *ctx_a, const char *ctx_b, const rb_compare_opts *o,
                        char **text) {
    fclose(p->fa);
    fclose(p->fb);
    char *da = results_dir_ctx(ctx_a, p->a), *db = results_dir_ctx(ctx_b, p->b);
    size_t n;
    FILE *out = open_memstream(text, &n);
    int rc = rb_compare(da, db, o, out);
    fclose(out);
    remove_dir(da);
    remove_dir(db);
    free(p->a);
    free(p->b);
    return rc;
}

/* run_pair_ctx with contexts that have only the config shas sha_a and sha_b. */
static int run_pair(pair *p, const char *sha_a, const char *sha_b, const rb_compare_opts *o,
                    char **text) {
    char ca[256], cb[256];
    snprintf(ca, sizeof ca,
             "{\"build\": {\"git_sha\": \"abc\"}, \"run\": {\"config_sha256\": \"%s\"}}\n", sha_a);
    snprintf(cb, sizeof cb,
             "{\"build\": {\"git_sha\": \"abc\"}, \"run\": {\"config_sha256\": \"%s\"}}\n", sha_b);
    return run_pair_ctx(p, ca, cb, o, text);
}

#define HAS(text, s)   cr_assert(strstr(text, s), "expected '%s' in:\n%s", s, text)
#define LACKS(text, s) cr_assert(!strstr(text, s), "unexpected '%s' in:\n%s", s, text)

/* A line of the output that contains both a and b (the row name and a column). */
static int line_has(const char *text, const char *a, const char *b) {
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t) (e - l) : strlen(l);
        char *line = strndup(l, len);
        int ok = strstr(line, a) && strstr(line, b);
        free(line);
        if (ok) return 1;
        l = e ? e + 1 : NULL;
    }
    return 0;
}

/* How many times s occurs in text. */
static size_t count_of(const char *text, const char *s) {
    size_t n = 0;
    for (const char *p = strstr(text, s); p; p = strstr(p + 1, s)) n++;
    return n;
}

/* The accuracy rows both sides share: eden bits 1..3, vnmse and bits. */
static void common_rows(pair *p) {
    for (int bits = 1; bits <= 3; bits++) {
        row(p->fa, "eden", 1, bits, "vnmse", 0.1 * bits, NULL, 0, 0);
        row(p->fb, "eden", 1, bits, "vnmse", 0.1 * bits, NULL, 0, 0);
        row(p->fa, "eden", 1, bits, "bits", bits + 0.25, NULL, 0, 0);
        row(p->fb, "eden", 1, bits, "bits", bits + 0.25, NULL, 0, 0);
    }
}

Test(compare, identical_results) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    double s[10];
    for (int i = 0; i < 10; i++) s[i] = 1e-5 * (1 + 0.01 * i);
    row(p.fa, "eden", 1, 2, "latency_encode", 1e-5, s, 10, 0);
    row(p.fb, "eden", 1, 2, "latency_encode", 1e-5, s, 10, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    HAS(t, "7 rows compared: 0 regressions, 0 improvements, 7 unchanged");
    cr_assert(line_has(t, "eden/sphere128/bits=2/cpu", "~"), "%s", t);
    LACKS(t, "REGRESSION");
    /* dparams and the fixed param scale do not vary: left out of the names */
    LACKS(t, "scale=");
    LACKS(t, "dim=");
    free(t);
}

Test(compare, accuracy_worse_beyond_tolerance) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.0100, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "vnmse", 0.0101, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    cr_assert(line_has(t, "bits=4/cpu", "+1.00%"), "%s", t);
    cr_assert(line_has(t, "bits=4/cpu", "REGRESSION"), "%s", t);
    HAS(t, "7 rows compared: 1 regressions, 0 improvements, 6 unchanged");
    free(t);
}

Test(compare, accuracy_within_tolerance) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.0100, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "vnmse", 0.0100 * (1 + 5e-7), NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "bits=4/cpu", "~"), "%s", t);
    LACKS(t, "REGRESSION");
    free(t);
    /* 1% worse passes with --rtol 0.02, and with --atol 2e-4 */
    for (int k = 0; k < 2; k++) {
        pair_open(&p);
        row(p.fa, "eden", 1, 4, "vnmse", 0.0100, NULL, 0, 0);
        row(p.fb, "eden", 1, 4, "vnmse", 0.0101, NULL, 0, 0);
        rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
        if (k == 0) o.rtol = 0.02;
        if (k == 1) o.atol = 2e-4;
        cr_assert_eq(run_pair(&p, SHA, SHA, &o, &t), RB_COMPARE_OK, "k=%d\n%s", k, t);
        cr_assert(line_has(t, "eden/sphere128", "~"), "%s", t);
        free(t);
    }
}

Test(compare, accuracy_better_is_an_improvement) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.0100, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "vnmse", 0.0090, NULL, 0, 0);
    row(p.fa, "eden", 1, 4, "recall@1@10", 0.80, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "recall@1@10", 0.90, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "bits=4/cpu", "-10.00%"), "%s", t);
    cr_assert(line_has(t, "0.8 ", "+12.50%"), "%s", t);
    HAS(t, "8 rows compared: 0 regressions, 2 improvements, 6 unchanged");
    free(t);
}

Test(compare, direction_decides_regressions) {
    /* recall down, bits (exact) down or up: all regressions, though fewer bits look "better" */
    pair p;
    pair_open(&p);
    row(p.fa, "eden", 1, 4, "recall@1@10", 0.90, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "recall@1@10", 0.80, NULL, 0, 0);
    row(p.fa, "eden", 1, 4, "bits", 4.25, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "bits", 4.0, NULL, 0, 0);
    row(p.fa, "eden", 1, 3, "bits", 3.25, NULL, 0, 0);
    row(p.fb, "eden", 1, 3, "bits", 3.5, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    HAS(t, "3 rows compared: 3 regressions, 0 improvements, 0 unchanged");
    free(t);
    cr_assert_eq(rb_metric_direction("vnmse"), RB_BETTER_LOWER);
    cr_assert_eq(rb_metric_direction("recall@1@10"), RB_BETTER_HIGHER);
    cr_assert_eq(rb_metric_direction("success_rate"), RB_BETTER_HIGHER);
    cr_assert_eq(rb_metric_direction("bits"), RB_BETTER_EXACT);
    cr_assert_eq(rb_metric_direction("ip_slope"), RB_BETTER_EXACT);
    cr_assert_eq(rb_metric_direction("d_dprod"), RB_BETTER_LOWER);
    cr_assert_eq(rb_metric_direction("attn_logit_err"), RB_BETTER_LOWER); /* fallback table */
    cr_assert_eq(rb_metric_direction("no_such_metric"), RB_BETTER_EXACT);
}

Test(compare, nan_and_null_values_are_reported) {
    pair p;
    pair_open(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.01, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "vnmse", NAN, NULL, 0, 0);
    row(p.fa, "eden", 1, 3, "vnmse", NAN, NULL, 0, 0);
    row(p.fb, "eden", 1, 3, "vnmse", NAN, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    cr_assert(line_has(t, "bits=4/cpu", "new value is NaN"), "%s", t);
    HAS(t, "2 rows compared: 1 regressions, 0 improvements, 1 unchanged");
    free(t);
    /* A NaN in one repeat on both sides must not hide a change in the other: the finite repeats'
     * means are compared. One more NaN repeat in new is a regression, one fewer an improvement. */
    static const struct {
        double a[2], b[2];
        int status;
        const char *verdict;
    } cases[] = {
        {{NAN, 0.165}, {NAN, 0.9}, RB_COMPARE_REGRESSION, "mean of the finite repeats"},
        {{NAN, 0.165}, {NAN, 0.165}, RB_COMPARE_OK, "~"},
        {{NAN, NAN}, {NAN, NAN}, RB_COMPARE_OK, "~"},
        {{NAN, 0.165}, {NAN, NAN}, RB_COMPARE_REGRESSION, "new value is NaN"},
        {{0.2, NAN}, {0.2, 0.3}, RB_COMPARE_OK, "old value was NaN"},
        /* as many NaNs, in other repeats: the finite ones are other seeds */
        {{NAN, 0.165}, {0.165, NAN}, RB_COMPARE_REGRESSION, "NaN/null in other repeats"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pair_open(&p);
        for (int r = 0; r < 2; r++) {
            row(p.fa, "eden", 1, 4, "vnmse", cases[i].a[r], NULL, 0, r);
            row(p.fb, "eden", 1, 4, "vnmse", cases[i].b[r], NULL, 0, r);
        }
        cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), cases[i].status, "case %zu:\n%s", i, t);
        cr_assert(line_has(t, "eden/sphere128/cpu", cases[i].verdict), "case %zu:\n%s", i, t);
        free(t);
    }
}

Test(compare, repeats_are_pooled) {
    /* accuracy: mean over repeats (0.1 and 0.3 vs 0.2); latency: samples pooled (n 20+20) */
    pair p;
    pair_open(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.1, NULL, 0, 0);
    row(p.fa, "eden", 1, 4, "vnmse", 0.3, NULL, 0, 1);
    row(p.fb, "eden", 1, 4, "vnmse", 0.2, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "vnmse", 0.2, NULL, 0, 1);
    double s[10], u[10];
    for (int i = 0; i < 10; i++) s[i] = 1e-3 * (1 + 0.01 * i), u[i] = 1.3e-3 * (1 + 0.01 * i);
    /* repeat 0 fast, repeat 1 slow, on both sides: pooled, the sides are the same */
    row(p.fa, "eden", 1, 4, "latency_encode", 1e-3, s, 10, 0);
    row(p.fa, "eden", 1, 4, "latency_encode", 1e-3, u, 10, 1);
    row(p.fb, "eden", 1, 4, "latency_encode", 1e-3, u, 10, 0);
    row(p.fb, "eden", 1, 4, "latency_encode", 1e-3, s, 10, 1);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "0.2 ", "2+2"), "%s", t);
    cr_assert(line_has(t, "ms", "20+20"), "%s", t);
    HAS(t, "2 rows compared: 0 regressions, 0 improvements, 2 unchanged");
    free(t);
}

/* Latency rows of eden bits=2: base samples a, new samples b (10 each, seconds). */
static int latency_pair(const double *a, const double *b, char **t) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "eden", 1, 2, "latency_encode", a[0], a, 10, 0);
    row(p.fb, "eden", 1, 2, "latency_encode", b[0], b, 10, 0);
    return run_pair(&p, SHA, SHA, NULL, t);
}

Test(compare, latency_slower_and_significant) {
    double a[10], b[10];
    for (int i = 0; i < 10; i++) a[i] = 1e-5 * (1 + 0.01 * i), b[i] = 1.3 * a[i];
    char *t;
    cr_assert_eq(latency_pair(a, b, &t), RB_COMPARE_REGRESSION, "%s", t);
    /* fully separated 10 vs 10: p = 2 / C(20, 10) = 1.1e-05 */
    cr_assert(line_has(t, "+30.00%", "1.1e-05"), "%s", t);
    cr_assert(line_has(t, "+30.00%", "REGRESSION"), "%s", t);
    cr_assert(line_has(t, "10.45us", "13.59us"), "%s", t);
    free(t);
    /* the same the other way round is an improvement, exit 0 */
    cr_assert_eq(latency_pair(b, a, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "-23.08%", "improvement"), "%s", t);
    free(t);
}

/* A latency row timed while its threads queued for a CPU (cpu_wait over --max-cpu-wait on either
 * side) is shown as busy and not graded, whatever the test says; rows without cpu_wait (older
 * results) are graded as before; --strict makes busy rows exit 2. */
Test(compare, latency_on_a_busy_machine_is_not_graded) {
    static const struct {
        double wait_a, wait_b, slower, max; /* max 0: the default */
        int strict, status;
        const char *has; /* in the output */
    } cases[] = {
        {NAN, NAN, 1.3, 0, 0, RB_COMPARE_REGRESSION, "REGRESSION"},
        {0.01, 0.02, 1.3, 0, 0, RB_COMPARE_REGRESSION, "REGRESSION"},
        {0.01, 0.30, 1.3, 0, 0, RB_COMPARE_OK, "busy: the new run waited 30% for a CPU"},
        {0.40, NAN, 1.3, 0, 0, RB_COMPARE_OK, "busy: the base run waited 40% for a CPU"},
        {0.01, 0.30, 1.0, 0, 0, RB_COMPARE_OK, "1 busy"}, /* not "unchanged" either */
        {0.01, 0.30, 1.3, 1, 0, RB_COMPARE_REGRESSION, "REGRESSION"},
        {0.01, 0.30, 1.3, 0.5, 0, RB_COMPARE_REGRESSION, "REGRESSION"},
        {0.01, 0.30, 1.3, 0, 1, RB_COMPARE_INCOMPARABLE, "--strict: exit 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double a[10], b[10];
        for (int k = 0; k < 10; k++) a[k] = 1e-5 * (1 + 0.01 * k), b[k] = cases[i].slower * a[k];
        rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
        if (cases[i].max > 0) o.max_cpu_wait = cases[i].max;
        o.strict = cases[i].strict;
        pair p;
        pair_open(&p);
        common_rows(&p);
        row_cpu_wait = cases[i].wait_a;
        row(p.fa, "eden", 1, 2, "latency_encode", a[0], a, 10, 0);
        row_cpu_wait = cases[i].wait_b;
        row(p.fb, "eden", 1, 2, "latency_encode", b[0], b, 10, 0);
        row_cpu_wait = NAN;
        char *t;
        cr_assert_eq(run_pair(&p, SHA, SHA, &o, &t), cases[i].status, "case %zu:\n%s", i, t);
        HAS(t, cases[i].has);
        if (cases[i].status != RB_COMPARE_REGRESSION) {
            LACKS(t, "REGRESSION");
            HAS(t, "not graded: timed on a busy machine");
        }
        free(t);
    }
}

Test(compare, latency_slower_but_not_significant) {
    /* medians 10 and 13 (+30%) but interleaved: U = 40, exact p = 0.45 */
    double a[10], b[10];
    const double bv[10] = {2, 4, 6, 8, 12, 14, 16, 18, 20, 22};
    for (int i = 0; i < 10; i++) a[i] = 1e-6 * (2 * i + 1), b[i] = 1e-6 * bv[i];
    char *t;
    cr_assert_eq(latency_pair(a, b, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "13us", "~"), "%s", t);
    cr_assert(line_has(t, "13us", "0.4"), "%s", t);
    LACKS(t, "REGRESSION");
    free(t);
}

Test(compare, latency_significant_but_below_threshold) {
    double a[10], b[10];
    for (int i = 0; i < 10; i++) a[i] = 1e-5 * (1 + 0.001 * i), b[i] = 1.05 * a[i];
    char *t;
    cr_assert_eq(latency_pair(a, b, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "+5.00%", "below threshold"), "%s", t);
    HAS(t, "0 regressions, 0 improvements, 7 unchanged");
    free(t);
    /* a 4% threshold makes it a regression */
    pair p;
    pair_open(&p);
    row(p.fa, "eden", 1, 2, "latency_encode", a[0], a, 10, 0);
    row(p.fb, "eden", 1, 2, "latency_encode", b[0], b, 10, 0);
    rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
    o.latency_threshold = 0.04;
    cr_assert_eq(run_pair(&p, SHA, SHA, &o, &t), RB_COMPARE_REGRESSION, "%s", t);
    free(t);
}

/* A real parameter is named at its shortest exact text, as the report writes it (1e-05), not
 * at jansson's 17 digits (1.0000000000000001e-05), which made row names unreadable. */
Test(compare, real_parameters_print_at_their_shortest_text) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    fputs("{\"dataset\": \"sphere128\", \"dparams\": {\"dim\": 128}, \"method\": \"rtn\", "
          "\"label\": \"rtn\", \"method_version\": 1, \"params\": {\"tol\": 1e-05, \"on\": null}, "
          "\"backend\": \"cpu\", \"repeat\": 0, \"metric\": \"vnmse\", \"value\": 0.5, "
          "\"cell_key\": \"tol\"}\n{\"cell_done\": \"tol\"}\n",
          p.fa);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "rtn/sphere128{dim=128}/tol=1e-05,on=null/cpu vnmse");
    free(t);
}

Test(compare, missing_rows_are_listed) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.01, NULL, 0, 0);
    row(p.fb, "qjl", 1, 4, "vnmse", 0.02, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "rows only in base (1):");
    HAS(t, "eden/sphere128{dim=128,count=1000}/bits=4,scale=unbiased/cpu vnmse");
    HAS(t, "rows only in new (1):");
    HAS(t, "qjl/sphere128{dim=128,count=1000}/bits=4,scale=unbiased/cpu vnmse");
    HAS(t, "(row 7 of "); /* base: 6 common rows, then this one */
    /* the rows both have are still diffed */
    HAS(t, "6 rows compared: 0 regressions, 0 improvements, 6 unchanged");
    free(t);
}

Test(compare, different_config_sha) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    char *t;
    const char *other = "ffff456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    cr_assert_eq(run_pair(&p, SHA, other, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "the configs differ");
    HAS(t, SHA);
    HAS(t, other);
    free(t);
}

Test(compare, different_method_version) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "qjl", 1, 4, "vnmse", 0.01, NULL, 0, 0);
    row(p.fb, "qjl", 2, 4, "vnmse", 0.05, NULL, 0, 0);
    row(p.fa, "qjl", 1, 4, "bits", 4, NULL, 0, 0);
    row(p.fb, "qjl", 2, 4, "bits", 4, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "cannot compare method qjl: method_version 1 in base, 2 in new");
    HAS(t, "qjl: 2 row(s) not compared");
    LACKS(t, "qjl/sphere128");
    LACKS(t, "REGRESSION"); /* the qjl rows are not diffed */
    HAS(t, "6 rows compared");
    free(t);
}

Test(compare, malformed_line_names_file_and_line) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    fputs("{\"dataset\": \"sphere128\", oops}\n", p.fb);
    row(p.fb, "eden", 1, 4, "vnmse", 0.01, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "results.jsonl:13: invalid JSON");
    LACKS(t, "rows compared");
    free(t);
    /* a row missing a field */
    pair_open(&p);
    common_rows(&p);
    fputs("{\"dataset\": \"sphere128\", \"method\": \"eden\", \"metric\": \"vnmse\", "
          "\"cell_key\": \"x\"}\n{\"cell_done\": \"x\"}\n",
          p.fa);
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "results.jsonl: row 7: missing or invalid field 'label'");
    free(t);
    /* a line that is JSON but not a record */
    pair_open(&p);
    common_rows(&p);
    fputs("{\"dataset\": \"sphere128\"}\n", p.fa);
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "results.jsonl:13: a record needs");
    free(t);
}

/* A method_version past int (4294967298 read as 2 would compare as the base's 2) and a negative
 * or non-finite latency sample are malformed rows; values near DBL_MAX, pooled over repeats,
 * leave two equal sides equal (a sum over repeats overflowed to inf, and inf - inf graded them a
 * regression). */
Test(compare, out_of_range_fields_and_huge_values) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    /* a row of version 7, its version rewritten as 2^32 + 2 */
    char *one = NULL;
    size_t n1 = 0;
    FILE *f1 = open_memstream(&one, &n1);
    row(f1, "eden", 7, 4, "vnmse", 0.01, NULL, 0, 0);
    fclose(f1);
    char *v = strstr(one, "\"method_version\":7");
    cr_assert(v, "%s", one);
    v += strlen("\"method_version\":");
    fprintf(p.fb, "%.*s4294967298%s", (int) (v - one), one, v + 1);
    free(one);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "missing or invalid field 'method_version'");
    free(t);

    double neg[10];
    for (int i = 0; i < 10; i++) neg[i] = 1e-3 * (1 + 0.01 * i);
    neg[3] = -1e-3;
    pair_open(&p);
    common_rows(&p);
    row(p.fb, "eden", 1, 2, "latency_encode", 1e-3, neg, 10, 0);
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "missing or invalid field 'samples'");
    free(t);
    /* a negative cpu_wait would never mark a row busy */
    neg[3] = 1.5e-3;
    row_cpu_wait = -0.5;
    pair_open(&p);
    common_rows(&p);
    row(p.fb, "eden", 1, 2, "latency_encode", 1e-3, neg, 10, 0);
    row_cpu_wait = NAN;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "missing or invalid field 'cpu_wait'");
    free(t);

    pair_open(&p);
    for (int r = 0; r < 2; r++) {
        row(p.fa, "eden", 1, 4, "vnmse", 1.5e308, NULL, 0, r);
        row(p.fb, "eden", 1, 4, "vnmse", 1.5e308, NULL, 0, r);
    }
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    HAS(t, "1 rows compared: 0 regressions, 0 improvements, 1 unchanged");
    free(t);
}

Test(compare, torn_last_line_is_ignored) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    fputs("{\"dataset\": \"sphere128\", \"method\": \"ed", p.fb); /* killed mid-write */
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    /* The reader drops the torn line with a warning on stderr; the comparison goes on. */
    HAS(t, "6 rows compared: 0 regressions");
    free(t);
}

Test(compare, missing_directory_or_files) {
    size_t n;
    char *t;
    FILE *out = open_memstream(&t, &n);
    cr_assert_eq(rb_compare("/nonexistent/rb-base", "/nonexistent/rb-new", NULL, out),
                 RB_COMPARE_INCOMPARABLE);
    fclose(out);
    HAS(t, "BASE: /nonexistent/rb-base is not a results directory");
    HAS(t, "NEW: /nonexistent/rb-new is not a results directory");
    free(t);
    /* a directory without results.jsonl */
    char *d = results_dir(SHA, "");
    char path[64];
    snprintf(path, sizeof path, "%s/results.jsonl", d);
    unlink(path);
    out = open_memstream(&t, &n);
    cr_assert_eq(rb_compare(d, d, NULL, out), RB_COMPARE_INCOMPARABLE);
    fclose(out);
    HAS(t, "results.jsonl: No such file");
    HAS(t, "results.jsonl");
    free(t);
    remove_dir(d);
}

/* Wall times, their ratios and peak memory without samples differ between identical runs: shown
 * with their change, never graded (before, +0.74% on a recovery time was a REGRESSION). */
Test(compare, measured_without_samples_are_not_graded) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "spright", 1, 4, "time", 1e-4, NULL, 0, 0);
    row(p.fb, "spright", 1, 4, "time", 1.5e-4, NULL, 0, 0);
    row(p.fa, "spright", 1, 4, "speedup", 300, NULL, 0, 0);
    row(p.fb, "spright", 1, 4, "speedup", 200, NULL, 0, 0);
    row(p.fa, "spright", 1, 4, "memory", 2, NULL, 0, 0);
    row(p.fb, "spright", 1, 4, "memory", 2, NULL, 0, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    LACKS(t, "REGRESSION");
    LACKS(t, "  improvement");
    HAS(t, "time [s]: a timing with one value per repeat and no samples: shown, not graded");
    HAS(t, "memory [MiB]: a memory measurement with one value per repeat");
    cr_assert(line_has(t, "100us", "+50.00%  "), "%s", t);
    cr_assert(line_has(t, "+50.00%", "(timing: not graded)"), "%s", t);
    cr_assert(line_has(t, "-33.33%", "(timing: not graded)"), "%s", t);
    cr_assert(line_has(t, "~", "(memory: not graded)"), "%s", t);
    HAS(t, "9 rows compared: 0 regressions, 0 improvements, 6 unchanged, 3 not graded");
    free(t);
}

/* Every metric that is a wall time or derived from one is declared a measurement in the metric
 * table, so that compare never grades it as a deterministic value. */
Test(compare, timings_are_declared_measurements) {
    size_t n;
    const rb_metric *m = rb_metrics_all(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(m[i].unit, "s"))
            cr_assert_eq(m[i].measured, RB_MEASURED_TIME, "%s is in seconds", m[i].name);
    const char *timed[] = {"time", "speedup", "encode_latency", "decode_latency",
                           "inner_product_latency"};
    for (size_t i = 0; i < sizeof timed / sizeof timed[0]; i++)
        cr_assert_eq(rb_metric_find(timed[i])->measured, RB_MEASURED_TIME, "%s", timed[i]);
    cr_assert_eq(rb_metric_find("memory")->measured, RB_MEASURED_MEMORY);
    cr_assert_eq(rb_metric_find("vnmse")->measured, RB_DETERMINISTIC);
    cr_assert_eq(rb_metric_find("recall@100")->measured, RB_DETERMINISTIC);
}

/* A timing with raw samples is graded like a latency row, in its metric's direction: a speedup
 * 30% lower is a regression, a recovery time 30% lower an improvement. */
Test(compare, measured_with_samples_use_the_latency_rules) {
    pair p;
    pair_open(&p);
    double a[10], b[10], c[10], d[10];
    for (int i = 0; i < 10; i++)
        a[i] = 100 * (1 + 0.01 * i), b[i] = 0.7 * a[i], c[i] = 1e-4 * (1 + 0.01 * i),
        d[i] = 0.7 * c[i];
    row(p.fa, "spright", 1, 4, "speedup", a[0], a, 10, 0);
    row(p.fb, "spright", 1, 4, "speedup", b[0], b, 10, 0);
    row(p.fa, "spright", 1, 4, "time", c[0], c, 10, 0);
    row(p.fb, "spright", 1, 4, "time", d[0], d, 10, 0);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    HAS(t, "time [s]: median of pooled samples; Mann-Whitney U");
    cr_assert(line_has(t, "-30.00%", "REGRESSION"), "%s", t);
    cr_assert(line_has(t, "-30.00%", "improvement"), "%s", t);
    HAS(t, "2 rows compared: 1 regressions, 1 improvements, 0 unchanged");
    free(t);
}

/* Latency rows of eden bits=2 with n samples a side, new 30% slower and fully separated. */
static int blind_pair(size_t n, const rb_compare_opts *o, char **t) {
    double a[10], b[10];
    for (size_t i = 0; i < n; i++) a[i] = 1e-5 * (1 + 0.01 * (double) i), b[i] = 1.3 * a[i];
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "eden", 1, 2, "latency_encode", a[0], a, n, 0);
    row(p.fb, "eden", 1, 2, "latency_encode", b[0], b, n, 0);
    return run_pair(&p, SHA, SHA, o, t);
}

/* With 2 + 2 samples the U test's smallest p is 1/3: at alpha 0.01 no change can be seen. The
 * row says "blind", not "~", and one warning says why and what fixes it; --strict fails. */
Test(compare, latency_with_too_few_samples_is_blind) {
    char *t;
    cr_assert_eq(blind_pair(2, NULL, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "2+2", "  blind  "), "%s", t);
    cr_assert(line_has(t, "2+2", "(too few samples to reach alpha)"), "%s", t);
    HAS(t, "warning: 1 latency row is blind: the Mann-Whitney U test cannot reach p < 0.01 with "
           "2+2 samples (smallest possible p 0.333); reaching it needs 5+5: raise `repetitions` in "
           "the "
           "config's latency block (samples are pooled over repeats) or pass a larger --alpha "
           "(--strict makes this exit 2)\n");
    HAS(t, "7 rows compared: 0 regressions, 0 improvements, 6 unchanged, 1 blind\n");
    LACKS(t, "could not compare");
    free(t);
    rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
    o.strict = 1;
    cr_assert_eq(blind_pair(2, &o, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "(--strict: exit 2)");
    HAS(t, "could not compare everything (see above): exit 2");
    free(t);
    /* 5 + 5 reaches alpha 0.01 (p = 2/252): a regression, also under --strict */
    cr_assert_eq(blind_pair(5, &o, &t), RB_COMPARE_REGRESSION, "%s", t);
    cr_assert(line_has(t, "+30.00%", "REGRESSION"), "%s", t);
    LACKS(t, "blind");
    free(t);
    /* but not alpha 0.005, which needs 6 + 6 (2/924) */
    o.strict = 0;
    o.alpha = 0.005;
    cr_assert_eq(blind_pair(5, &o, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "5+5", "  blind  "), "%s", t);
    HAS(t, "cannot reach p < 0.005 with 5+5 samples (smallest possible p 0.00794); reaching it "
           "needs 6+6");
    free(t);
}

/* One eden bits=4 row of a repeat on each side (values va and vb), each side's computed on the
 * data with its hash (NULL: a row without one). */
static void data_rows(pair *p, const char *metric, double va, double vb, int repeat, const char *ha,
                      const char *hb) {
    data_hash = ha;
    row(p->fa, "eden", 1, 4, metric, va, NULL, 0, repeat);
    data_hash = hb;
    row(p->fb, "eden", 1, 4, metric, vb, NULL, 0, repeat);
}

/* Rows of one cell computed on other data (dataset_hash) are not a change of the method: the
 * dataset is named with both hashes, as a config sha256 difference is, its rows are shown but not
 * graded, and the comparison is incomplete (exit 2). */
Test(compare, different_data_are_not_a_regression) {
    const char *ha = "aaaaaaaaaaaa1111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *hb = "bbbbbbbbbbbb2222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    pair p;
    pair_open(&p);
    common_rows(&p);
    data_rows(&p, "vnmse", 0.01, 0.0222, 0, ha, hb);
    data_rows(&p, "bits", 4.25, 4.25, 0, ha, hb);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "cannot compare dataset sphere128: the data differ (its rows are shown, not graded)\n"
           "  base dataset_hash aaaaaaaaaaaa\n"
           "  new  dataset_hash bbbbbbbbbbbb\n");
    cr_assert_eq(count_of(t, "cannot compare dataset"), 1, "reported once:\n%s", t);
    LACKS(t, "1111");
    LACKS(t, "REGRESSION");
    cr_assert(line_has(t, "+122.00%", "(other data: not graded)"), "%s", t);
    HAS(t, "8 rows compared: 0 regressions, 0 improvements, 6 unchanged, 2 not graded");
    HAS(t, "could not compare everything (see above): exit 2");
    free(t);
}

/* Repeats are matched with the same repeat: each may have data of its own (generated data are
 * seeded per repeat). Rows without a hash say nothing. */
Test(compare, data_are_compared_repeat_by_repeat) {
    const char *h0 = "0000000000000000000000000000000000000000000000000000000000000000";
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    pair p;
    pair_open(&p);
    data_rows(&p, "vnmse", 0.01, 0.01, 0, h0, h0);
    data_rows(&p, "vnmse", 0.01, 0.01, 1, h1, h1);
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    LACKS(t, "data differ");
    free(t);
    /* repeat 1 on other data in new */
    pair_open(&p);
    data_rows(&p, "vnmse", 0.01, 0.01, 0, h0, h0);
    data_rows(&p, "vnmse", 0.01, 0.01, 1, h1, h0);
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "  base dataset_hash 111111111111\n  new  dataset_hash 000000000000\n");
    free(t);
    /* rows written without a hash compare as before */
    pair_open(&p);
    data_rows(&p, "vnmse", 0.01, 0.01, 0, NULL, h1);
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_OK, "%s", t);
    free(t);
}

/* A cell with a repeat on one side only (an interrupted run, a failed repeat, --only '*|0') is
 * not graded: the means would pool different seeds, and made-up changes would pass or fail the
 * gate. It is named once with both repeat lists, the comparison is incomplete (exit 2), and the
 * cells that failed are listed. */
Test(compare, a_repeat_on_one_side_only_is_incomparable) {
    pair p;
    pair_open(&p);
    for (int r = 0; r < 2; r++) {
        row(p.fa, "eden", 1, 4, "vnmse", 0.01 + 0.01 * r, NULL, 0, r);
        row(p.fa, "eden", 1, 4, "bits", 4.25, NULL, 0, r);
        row(p.fa, "eden", 1, 3, "vnmse", 0.03, NULL, 0, r);
        row(p.fb, "eden", 1, 3, "vnmse", 0.03, NULL, 0, r);
    }
    row(p.fb, "eden", 1, 4, "vnmse", 0.01, NULL, 0, 0); /* new lacks repeat 1 of bits=4 */
    row(p.fb, "eden", 1, 4, "bits", 4.25, NULL, 0, 0);
    fprintf(p.fb, "{\"cell_failed\": \"eden|1|4|1\", \"error\": \"eden: out of memory\"}\n");
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, NULL, &t), RB_COMPARE_INCOMPARABLE, "%s", t);
    HAS(t, "cannot compare eden/sphere128{dim=128,count=1000}/bits=4,scale=unbiased/cpu: repeats "
           "0, 1 in base, 0 in new");
    const char *first = strstr(t, "cannot compare eden");
    cr_assert(first && !strstr(first + 1, "cannot compare eden"), "named once:\n%s", t);
    HAS(t, "cells that failed in new (1; their rows are missing):\n  eden: out of memory");
    HAS(t, "1 rows compared: 0 regressions, 0 improvements, 1 unchanged");
    LACKS(t, "REGRESSION");
    free(t);
}

/* changes_only leaves out the unchanged rows and the tables that have nothing else; the summary
 * still counts every row. */
Test(compare, changes_only_prints_rows_that_changed) {
    pair p;
    pair_open(&p);
    common_rows(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.0100, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "vnmse", 0.0101, NULL, 0, 0);
    rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
    o.changes_only = 1;
    char *t;
    cr_assert_eq(run_pair(&p, SHA, SHA, &o, &t), RB_COMPARE_REGRESSION, "%s", t);
    cr_assert(line_has(t, "bits=4/cpu", "REGRESSION"), "%s", t);
    LACKS(t, "bits=1");
    LACKS(t, "  ~  ");
    LACKS(t, "bits [bits]:"); /* no row of it changed */
    HAS(t, "7 rows compared: 1 regressions, 0 improvements, 6 unchanged");
    free(t);
}

/* A context.json as a run writes it (the fields compare reads), into buf. gpu is a device name
 * or NULL for none; blas the OpenBLAS kernel set (run_context: "Haswell"). */
static const char *run_context_blas(char *buf, size_t size, const char *cpu, const char *host,
                                    int threads, const char *kernels, const char *flags,
                                    const char *gpu, const char *git, const char *blas) {
    char devices[128] = "[]";
    if (gpu) snprintf(devices, sizeof devices, "[{\"index\": 0, \"name\": \"%s\"}]", gpu);
    snprintf(buf, size,
             "{\"build\": {\"git_sha\": \"%s\", \"dirty\": false, \"compiler\": \"gcc 12.2.0\", "
             "\"flags\": \"%s\"},\n"
             " \"host\": {\"hostname\": \"%s\", \"cpu_model\": \"%s\", \"kernels\": \"%s\", "
             "\"threads\": %d, \"binding\": \"bound\", \"blas_core\": \"%s\"},\n"
             " \"gpu\": {\"devices\": %s, \"reason\": null},\n"
             " \"run\": {\"config_sha256\": \"%s\"}}\n",
             git, flags, host, cpu, kernels, threads, blas, devices, SHA);
    return buf;
}

static const char *run_context(char *buf, size_t size, const char *cpu, const char *host,
                               int threads, const char *kernels, const char *flags, const char *gpu,
                               const char *git) {
    return run_context_blas(buf, size, cpu, host, threads, kernels, flags, gpu, git, "Haswell");
}

/* Latency rows of eden at 2 bits, base fast and new 30 times slower, with the kernel_variants
 * ka and kb; and the accuracy rows both share. */
static void slow_latency_rows(pair *p, const char *ka, const char *kb) {
    double s[10], u[10];
    for (int i = 0; i < 10; i++) {
        s[i] = 1e-6 * (1 + 0.01 * i);
        u[i] = 3e-5 * (1 + 0.01 * i);
    }
    common_rows(p);
    kernel_variants = ka;
    row(p->fa, "eden", 1, 2, "latency_encode", s[0], s, 10, 0);
    kernel_variants = kb;
    row(p->fb, "eden", 1, 2, "latency_encode", u[0], u, 10, 0);
    kernel_variants = "fwht_f32=avx512";
}

/* A run forced to other kernels with one thread on another host: the differing context items
 * are listed before the tables (old -> new), the slower latency row still counts as a
 * regression but names the kernels that changed, and the summary line says so. */
Test(compare, context_differences_are_listed) {
    char ca[1024], cb[1024];
    run_context(ca, sizeof ca, "Xeon 8480+", "box-a", 16, "auto", "cc -O2 CUDA=1", "NVIDIA H100",
                "abc123");
    run_context_blas(cb, sizeof cb, "Xeon 8480+", "box-b", 1, "avx2", "cc -O2 CUDA=0", NULL,
                     "def456", "Prescott");
    pair p;
    pair_open(&p);
    slow_latency_rows(&p, "fwht_f32=avx512,quant_f32=avx512", "fwht_f32=ref,quant_f32=avx512");
    char *t;
    cr_assert_eq(run_pair_ctx(&p, ca, cb, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    HAS(t, "context differs");
    cr_assert(line_has(t, "hostname", "box-a -> box-b"), "%s", t);
    cr_assert(line_has(t, "threads", "16 -> 1"), "%s", t);
    cr_assert(line_has(t, "kernel selection", "auto -> avx2"), "%s", t);
    cr_assert(line_has(t, "BLAS kernels", "Haswell -> Prescott"), "%s", t);
    cr_assert(line_has(t, "build flags", "cc -O2 CUDA=1 -> cc -O2 CUDA=0"), "%s", t);
    cr_assert(line_has(t, "GPU", "NVIDIA H100 -> none"), "%s", t);
    cr_assert(line_has(t, "git revision", "abc123 -> def456  (informational)"), "%s", t);
    LACKS(t, "CPU model"); /* the same on both sides */
    LACKS(t, "compiler");
    /* before the tables */
    cr_assert(strstr(t, "context differs") < strstr(t, "latency_encode"), "%s", t);
    cr_assert(line_has(t, "REGRESSION", "(kernels differ: fwht_f32=avx512 -> ref)"), "%s", t);
    LACKS(t, "quant_f32=avx512 ->"); /* the same variant on both sides */
    cr_assert(line_has(t, "1 regressions",
                       "; context differs: hostname, threads, kernel selection, BLAS kernels, "
                       "build flags, GPU; 1 timing ran other kernels (see above)"),
              "%s", t);
    /* accuracy rows are bit-identical whatever the kernels: not annotated */
    cr_assert_eq(count_of(t, "kernels differ"), 1, "%s", t);
    free(t);
}

/* The same context but the git revision (the change under test): shown for information, not a
 * context difference; the same kernels: no row annotated. Kernels that differ in a context that
 * does not still annotate the row and the summary. */
Test(compare, git_revision_alone_is_informational) {
    char ca[1024], cb[1024];
    run_context(ca, sizeof ca, "Xeon 8480+", "box-a", 16, "auto", "cc -O2", NULL, "abc123");
    run_context(cb, sizeof cb, "Xeon 8480+", "box-a", 16, "auto", "cc -O2", NULL, "def456");
    pair p;
    pair_open(&p);
    slow_latency_rows(&p, "fwht_f32=avx512", "fwht_f32=avx512");
    char *t;
    cr_assert_eq(run_pair_ctx(&p, ca, cb, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    LACKS(t, "context differs");
    LACKS(t, "kernels differ");
    LACKS(t, "ran other kernels");
    cr_assert(line_has(t, "git revision", "abc123 -> def456"), "%s", t);
    free(t);
    /* the same variants in another order are the same kernels */
    pair_open(&p);
    slow_latency_rows(&p, "a=x,b=y", "b=y,a=x");
    cr_assert_eq(run_pair_ctx(&p, ca, ca, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    LACKS(t, "kernels differ");
    LACKS(t, "context");
    free(t);
    pair_open(&p);
    slow_latency_rows(&p, "a=x,b=y", "a=x,c=z");
    cr_assert_eq(run_pair_ctx(&p, ca, ca, NULL, &t), RB_COMPARE_REGRESSION, "%s", t);
    cr_assert(line_has(t, "REGRESSION", "(kernels differ: b=y -> (none), c=(none) -> z)"), "%s", t);
    cr_assert(line_has(t, "1 regressions", "; 1 timing ran other kernels (see above)"), "%s", t);
    LACKS(t, "context differs");
    free(t);
}

/* A context.json from before the host section (only the config sha): nothing is listed when
 * neither side records the items; one that records them against one that does not says so. */
Test(compare, context_fields_not_recorded) {
    char ca[1024], cb[256];
    run_context(ca, sizeof ca, "Xeon 8480+", "box-a", 16, "auto", "cc -O2", NULL, "abc");
    snprintf(cb, sizeof cb,
             "{\"build\": {\"git_sha\": \"abc\"}, \"run\": {\"config_sha256\": \"%s\"}}\n", SHA);
    pair p;
    pair_open(&p);
    common_rows(&p);
    char *t;
    cr_assert_eq(run_pair_ctx(&p, cb, cb, NULL, &t), RB_COMPARE_OK, "%s", t);
    LACKS(t, "context");
    free(t);
    pair_open(&p);
    common_rows(&p);
    cr_assert_eq(run_pair_ctx(&p, cb, ca, NULL, &t), RB_COMPARE_OK, "%s", t);
    cr_assert(line_has(t, "CPU model", "(not recorded) -> Xeon 8480+"), "%s", t);
    cr_assert(line_has(t, "threads", "(not recorded) -> 16"), "%s", t);
    cr_assert(line_has(t, "6 rows compared", "; context differs: CPU model, hostname"), "%s", t);
    free(t);
}

/* The CLI through the binary (RB_TEST_BIN, set by make test): exit statuses and messages. */
static int run_bin(const char *args, const char *expect_out, const char *expect_err) {
    char cmd[512], *out, *err;
    snprintf(cmd, sizeof cmd, "compare %s", args);
    int st = rbt_run_cli(cmd, &out, &err);
    if (expect_out) cr_assert(strstr(out, expect_out), "%s: stdout:\n%s", cmd, out);
    if (expect_err) cr_assert(strstr(err, expect_err), "%s: stderr:\n%s", cmd, err);
    free(out);
    free(err);
    return st;
}

Test(compare, cli_exit_codes) {
    if (!getenv("RB_TEST_BIN")) cr_skip_test("RB_TEST_BIN is not set (make test sets it)");
    pair p;
    pair_open(&p);
    row(p.fa, "eden", 1, 4, "vnmse", 0.0100, NULL, 0, 0);
    row(p.fb, "eden", 1, 4, "vnmse", 0.0101, NULL, 0, 0);
    fclose(p.fa);
    fclose(p.fb);
    char *da = results_dir(SHA, p.a), *db = results_dir(SHA, p.b);
    char *dc = results_dir("different", p.b);
    free(p.a);
    free(p.b);
    char a[256];
    snprintf(a, sizeof a, "%s %s", da, da);
    cr_assert_eq(run_bin(a, "1 rows compared: 0 regressions", NULL), 0);
    snprintf(a, sizeof a, "%s %s", da, db);
    cr_assert_eq(run_bin(a, "REGRESSION", NULL), 1);
    snprintf(a, sizeof a, "%s %s --rtol 0.02", da, db);
    cr_assert_eq(run_bin(a, "tolerance max(atol 0, rtol 0.02 * |old|)", NULL), 0);
    snprintf(a, sizeof a, "--atol=2e-4 %s %s", da, db);
    cr_assert_eq(run_bin(a, NULL, NULL), 0);
    snprintf(a, sizeof a, "%s %s", da, dc);
    cr_assert_eq(run_bin(a, "the configs differ", NULL), 2);
    cr_assert_eq(run_bin("--help", "usage: rotabench compare BASE NEW", NULL), 0);
    cr_assert_eq(
        run_bin("--help", "  --strict               exit 2 when latency rows are blind", NULL), 0);
    cr_assert_eq(run_bin("--help", "kernels differ", NULL), 0);
    snprintf(a, sizeof a, "%s %s --changes", da, db);
    cr_assert_eq(run_bin(a, "1 rows compared: 1 regressions", NULL), 1);
    /* 2 + 2 latency samples: blind, a warning, exit 0; exit 2 with --strict */
    double s[2] = {1e-5, 1.01e-5}, u[2] = {1.3e-5, 1.31e-5};
    pair_open(&p);
    row(p.fa, "eden", 1, 2, "latency_encode", s[0], s, 2, 0);
    row(p.fb, "eden", 1, 2, "latency_encode", u[0], u, 2, 0);
    fclose(p.fa);
    fclose(p.fb);
    char *la = results_dir(SHA, p.a), *lb = results_dir(SHA, p.b);
    free(p.a);
    free(p.b);
    snprintf(a, sizeof a, "%s %s", la, lb);
    cr_assert_eq(run_bin(a, "warning: 1 latency row is blind", NULL), 0);
    snprintf(a, sizeof a, "%s %s --strict", la, lb);
    cr_assert_eq(run_bin(a, "(--strict: exit 2)", NULL), 2);
    remove_dir(la);
    remove_dir(lb);
    /* bad arguments */
    cr_assert_eq(run_bin("", NULL, "needs two results directories"), 2);
    cr_assert_eq(run_bin(da, NULL, "needs two results directories"), 2);
    snprintf(a, sizeof a, "%s %s --rtol", da, db);
    cr_assert_eq(run_bin(a, NULL, "--rtol needs a value"), 2);
    snprintf(a, sizeof a, "%s %s --rtol abc", da, db);
    cr_assert_eq(run_bin(a, NULL, "--rtol: 'abc' is not a number"), 2);
    snprintf(a, sizeof a, "%s %s --alpha 2", da, db);
    cr_assert_eq(run_bin(a, NULL, "--alpha: '2' is not a number in [0, 1]"), 2);
    snprintf(a, sizeof a, "%s %s --bogus 1", da, db);
    cr_assert_eq(run_bin(a, NULL, "unknown option '--bogus'"), 2);
    snprintf(a, sizeof a, "%s %s %s", da, db, dc);
    cr_assert_eq(run_bin(a, NULL, "unexpected argument"), 2);
    remove_dir(da);
    remove_dir(db);
    remove_dir(dc);
}
