/* Config loader: each bad config gives its message at the right FILE:LINE:COL; good configs
 * load, merge includes, expand sweeps in order with content-derived seeds, hash stably. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/config.h"
#include "harness/eval.h"

/* ---- a test dataset kind and test methods, supplied through the hooks ---- */

static const rb_param_def tvec_params[] = {
    RB_PARAM_INT("dim", "64", 1, 4096, "vector length"),
    RB_PARAM_INT("count", "100", 1, 1000000, "vectors"),
};
static const rb_dataset_kind tvec = {"tvec", "test vectors", RB_PARAMS_OF(tvec_params), NULL, NULL};
static const rb_dataset_kind *const test_kinds[] = {&tvec};

static const rb_param_def tq_params[] = {
    RB_PARAM_INT("bits", "4", 1, 8, "bits per coordinate"),
    RB_PARAM_ENUM("rotation", "rht", "rht|haar|none", "rotation"),
    RB_PARAM_FLOAT("clip", "1.0", 0.05, 1.0, "clip ratio"),
};
static const rb_method tq = {.name = "tq",
                             .family = RB_FAMILY_CODEC,
                             .paper = "test",
                             .summary = "test codec",
                             .version = 1,
                             .params = tq_params,
                             .nparams = sizeof tq_params / sizeof tq_params[0]};
static const rb_method tq2 = {.name = "tq2",
                              .family = RB_FAMILY_CODEC,
                              .paper = "test",
                              .summary = "second test codec",
                              .version = 1,
                              .params = tq_params,
                              .nparams = sizeof tq_params / sizeof tq_params[0]};
static const rb_method *const test_methods[] = {&tq, &tq2};

static const rb_method *const *methods_all(size_t *n) {
    *n = 2;
    return test_methods;
}
static const rb_dataset_kind *const *kinds_all(size_t *n) {
    *n = 1;
    return test_kinds;
}
static const rb_config_hooks hooks = {methods_all, kinds_all, rb_metric_known};

/* ---- a temporary directory per test ---- */

static char dir[64];

static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (!lstat(p, &st) && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(path);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/rbcfgXXXXXX");
    cr_assert(mkdtemp(dir), "mkdtemp");
}
static void teardown(void) {
    rm_tree(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

static void put_file(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    mkdir(p, 0700);
    *slash = '/';
    FILE *f = fopen(p, "w");
    cr_assert(f, "cannot write %s", p);
    fputs(text, f);
    fclose(f);
}

static int load(const char *name, rb_config *cfg) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return rb_config_load_with(p, &hooks, cfg);
}

/* Loads `text` as cfg.yaml and requires it to load. */
static void load_ok(const char *text, rb_config *cfg) {
    put_file("cfg.yaml", text);
    int rc = load("cfg.yaml", cfg);
    cr_assert_eq(rc, 0, "config failed to load: %s\n%s", rb_error_detail(), text);
}

/* Lines 1-6 of most bad cases; each case changes one thing. */
#define BASE                                     \
    "name: t\n"                                  \
    "datasets:\n"                                \
    "  - {name: d1, kind: tvec, dim: 64}\n"      \
    "methods:\n"                                 \
    "  - {method: tq, params: {bits: [2, 4]}}\n" \
    "metrics: [vnmse, bits]\n"

#define DS_ "name: t\ndatasets:\n"
#define MS_ "  - {name: d1, kind: tvec}\nmethods:\n"
#define MT_ "metrics: [vnmse, bits]\n"

/* ---- bad configs: one row per case, the message with its LINE:COL ---- */

static const struct bad_case {
    const char *what, *yaml;
    const char *msg;        /* substring of rb_error_detail() */
    const char *also;       /* a second substring, or NULL */
    const char *extra_name; /* a second file written next to cfg.yaml, or NULL */
    const char *extra_yaml;
    int rc; /* 0 means RB_ECONFIG */
} bad_cases[] = {
#define OPEN10  "[[[[[[[[[["
#define CLOSE10 "]]]]]]]]]]"
#define ROW(what, yaml, msg) \
    { what, yaml, msg, NULL, NULL, NULL, 0 }
    ROW("unknown top-level key", BASE "colour: red\n",
        "cfg.yaml:7:1: configuration: unknown key 'colour' (allowed: name, seed, repeats, "
        "backends, "
        "datasets, methods, metrics, latency, expect, plots, include)"),
    ROW("duplicate key", BASE "name: u\n",
        "cfg.yaml:7:1: configuration: duplicate key 'name' (first at line 1)"),
    ROW("duplicate key in a dataset entry", DS_ "  - {name: d1, kind: tvec, dim: 8, dim: 9}\n",
        "cfg.yaml:3:36: dataset: duplicate key 'dim' (first at line 3)"),
    ROW("scalar where a list is expected", "name: t\ndatasets: d1\n",
        "cfg.yaml:2:11: 'datasets' must be a list, not a scalar"),
    ROW("mapping where a list is expected", BASE "backends: {cpu: 1}\n",
        "cfg.yaml:7:11: 'backends' must be a list, not a mapping"),
    ROW("list where a scalar is expected", BASE "seed: [1, 2]\n",
        "cfg.yaml:7:7: seed must be a scalar, not a list"),
    ROW("mapping where a scalar is expected",
        "name: {a: 1}\ndatasets:\n" MS_ "  - {method: tq}\n" MT_,
        "cfg.yaml:1:7: 'name' must be a scalar, not a mapping"),
    ROW("dataset entry is a scalar", DS_ "  - d1\n",
        "cfg.yaml:3:5: each entry of 'datasets' must be a mapping"),
    ROW("seed negative", BASE "seed: -1\n",
        "cfg.yaml:7:7: seed: '-1' is not an integer in 0..18446744073709551615"),
    ROW("seed not a number", BASE "seed: abc\n", "cfg.yaml:7:7: seed: 'abc' is not an integer"),
    ROW("seed too large", BASE "seed: 18446744073709551616\n", "cfg.yaml:7:7: seed: '1844"),
    ROW("repeats 0", BASE "repeats: 0\n",
        "cfg.yaml:7:10: repeats: '0' is not an integer in 1..1000000"),
    ROW("unknown backend", BASE "backends: [cpu, tpu]\n",
        "cfg.yaml:7:17: unknown backend 'tpu' (allowed: cpu, cuda, auto)"),
    ROW("backend twice", BASE "backends: [cpu, cpu]\n",
        "cfg.yaml:7:17: backend 'cpu' appears twice"),
    ROW("missing name", "datasets:\n  - {name: d1, kind: tvec}\n",
        "cfg.yaml:1:1: 'name' is required"),
    ROW("missing datasets", "name: t\nmethods:\n  - {method: tq}\n" MT_,
        "cfg.yaml:1:1: 'datasets' is required and must not be empty"),
    ROW("missing metrics", DS_ MS_ "  - {method: tq}\n",
        "cfg.yaml:1:1: 'metrics' is required and must not be empty"),
    ROW("unknown dataset kind", DS_ "  - {name: d1, kind: nope}\n",
        "cfg.yaml:3:22: unknown dataset kind 'nope' (known: tvec)"),
    ROW("dataset without kind", DS_ "  - {name: d1}\n",
        "cfg.yaml:3:5: dataset 'd1': 'kind' is required"),
    ROW("unknown method", DS_ MS_ "  - {method: nosuch}\n" MT_,
        "cfg.yaml:5:14: unknown method 'nosuch' (known: tq, tq2)"),
    ROW("unknown key in a method entry", DS_ MS_ "  - {method: tq, parms: {bits: 2}}\n" MT_,
        "cfg.yaml:5:18: method entry: unknown key 'parms' (allowed: method, label, params, "
        "datasets)"),
    ROW("unknown metric", DS_ MS_ "  - {method: tq}\nmetrics: [vnmse, foo]\n",
        "cfg.yaml:6:18: unknown metric 'foo' for the codec methods of this config"),
    ROW("recall@0", DS_ MS_ "  - {method: tq}\nmetrics: [vnmse, recall@0]\n",
        "cfg.yaml:6:18: metric 'recall@0': K of recall@K must be a positive integer"),
    ROW("recall@ not a number", DS_ MS_ "  - {method: tq}\nmetrics: [vnmse, recall@ten]\n",
        "cfg.yaml:6:18: metric 'recall@ten': K of recall@K must be a positive integer"),
    ROW("recall@ with a leading zero", DS_ MS_ "  - {method: tq}\nmetrics: [recall@08]\n",
        "cfg.yaml:6:11: metric 'recall@08': K of recall@K must be a positive integer"),
    ROW("recall@ above the largest K", DS_ MS_ "  - {method: tq}\nmetrics: [vnmse, recall@2000]\n",
        "cfg.yaml:6:18: metric 'recall@2000': K of recall@K must be at most 1024"),
    {"recall@ above the default base size", DS_ MS_ "  - {method: tq}\nmetrics: [recall@101]\n",
     "cfg.yaml:6:11: metric 'recall@101': dataset 'd1' has only 100 base vectors (its default "
     "count; the dataset at ",
     "cfg.yaml:3:5); recall@K needs K <= the base size", NULL, NULL, 0},
    {"recall@ above one swept base size",
     DS_ "  - {name: d1, kind: tvec, count: [500, 50]}\nmethods:\n  - {method: tq}\n"
         "metrics: [recall@64]\n",
     "cfg.yaml:6:11: metric 'recall@64': dataset 'd1' has only 50 base vectors (count at ",
     "cfg.yaml:3:35)", NULL, NULL, 0},
    ROW("metric of another family", DS_ MS_ "  - {method: tq}\nmetrics: [kurtosis]\n",
        "cfg.yaml:6:11: unknown metric 'kurtosis' for the codec methods"),
    ROW("dataset param out of range", DS_ "  - {name: d1, kind: tvec, dim: 0}\n",
        "cfg.yaml:3:33: dataset 'd1': parameter 'dim': 0 is outside 1..4096"),
    ROW("dataset param out of range inside a sweep",
        DS_ "  - {name: d1, kind: tvec, dim: [64, 0]}\n",
        "cfg.yaml:3:38: dataset 'd1': parameter 'dim': 0 is outside 1..4096"),
    ROW("unknown dataset param", DS_ "  - {name: d1, kind: tvec, dims: 8}\n",
        "cfg.yaml:3:28: dataset 'd1': unknown parameter 'dims' (known: dim, count)"),
    ROW("duplicate dataset names", DS_ "  - {name: d1, kind: tvec}\n  - {name: d1, kind: tvec}\n",
        "cfg.yaml:4:12: duplicate dataset name 'd1' (first at line 3)"),
    ROW("'|' in a dataset name", DS_ "  - {name: a|b, kind: tvec}\n",
        "cfg.yaml:3:12: dataset name 'a|b' must not contain '|'"),
    ROW("escape sequence in the run name",
        "name: \"run\\e[31m\"\ndatasets:\n  - {name: d1, kind: tvec}\nmethods:\n  - {method: "
        "tq}\n" MT_,
        "cfg.yaml:1:7: 'name' must not contain control characters"),
    ROW("line break in a label", DS_ MS_ "  - {method: tq, label: \"a\\nb\"}\n" MT_,
        "cfg.yaml:5:25: label must not contain control characters (a line break, tab or "
        "escape)"),
    ROW("method param not an integer", DS_ MS_ "  - {method: tq, params: {bits: two}}\n" MT_,
        "cfg.yaml:5:33: method 'tq': parameter 'bits': 'two' is not an integer"),
    ROW("method param not a choice",
        DS_ MS_ "  - {method: tq, params: {rotation: [rht, dct]}}\n" MT_,
        "cfg.yaml:5:43: method 'tq': parameter 'rotation': 'dct' is not one of rht|haar|none"),
    ROW("value repeated in a sweep", DS_ MS_ "  - {method: tq, params: {clip: [0.5, 0.50]}}\n" MT_,
        "cfg.yaml:5:39: method 'tq': parameter 'clip': value 0.5 appears twice in the sweep"),
    ROW("empty sweep", DS_ MS_ "  - {method: tq, params: {bits: []}}\n" MT_,
        "cfg.yaml:5:33: method 'tq': parameter 'bits': empty list"),
    ROW("params not a mapping", DS_ MS_ "  - {method: tq, params: [bits]}\n" MT_,
        "cfg.yaml:5:26: 'params' must be a mapping, not a list"),
    ROW("duplicate labels", DS_ MS_ "  - {method: tq, label: x}\n  - {method: tq2, label: x}\n" MT_,
        "cfg.yaml:6:26: duplicate label 'x' (first at line 5)"),
    ROW("same method twice without labels", DS_ MS_ "  - {method: tq}\n  - {method: tq}\n" MT_,
        "cfg.yaml:6:14: method 'tq' appears twice without labels (first at line 5); give each "
        "entry "
        "a distinct 'label:'"),
    ROW("NUL in a scalar", DS_ "  - {name: \"d1\\0x\", kind: tvec}\n",
        "cfg.yaml:3:12: a scalar contains a NUL character (\\0)"),
    ROW("latency without ops", BASE "latency: {min_time: 0.1}\n",
        "cfg.yaml:7:10: latency: 'ops' is required"),
    ROW("latency min_time 0", BASE "latency: {ops: [encode], min_time: 0}\n",
        "cfg.yaml:7:36: latency: min_time must be in (0, 60] seconds, not 0"),
    ROW("latency min_time that would never end", BASE "latency: {ops: [encode], min_time: 1e300}\n",
        "cfg.yaml:7:36: latency: min_time must be in (0, 60] seconds, not 1e300"),
    ROW("latency unknown op", BASE "latency: {ops: [encode, zip]}\n",
        "cfg.yaml:7:25: latency: unknown op 'zip'"),
    ROW("latency op not timed", BASE "latency: {ops: [encode, create]}\n",
        "cfg.yaml:7:25: latency: op 'create' is not timed yet (timed: encode, decode, "
        "inner_product)"),
    ROW("latency unknown key", BASE "latency: {ops: [encode], reps: 3}\n",
        "cfg.yaml:7:26: latency: unknown key 'reps' (allowed: ops, min_time, repetitions, batch)"),
    ROW("expect over a sweep it does not pin",
        DS_ MS_ "  - {method: tq, params: {bits: [2, 4]}}\n" MT_
                "expect:\n  - {method: tq, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:5: expect: 'tq' sweeps parameter 'bits' (2 values); name one in 'params'"),
    ROW("expect over two entries of one method",
        DS_ MS_ "  - {method: tq, label: a}\n  - {method: tq, label: b}\n" MT_
                "expect:\n  - {method: tq, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:9:5: expect: method 'tq' has 2 entries in this config; name one with 'label'"),
    ROW("expect without a dataset when there are two",
        "name: t\ndatasets:\n  - {name: d1, kind: tvec}\n  - {name: d2, kind: tvec}\n"
        "methods:\n  - {method: tq}\n" MT_
        "expect:\n  - {method: tq, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:9:5: expect: 'tq' runs on 2 datasets; name one with 'dataset'"),
    ROW("method entry datasets naming an unknown dataset",
        DS_ MS_ "  - {method: tq, datasets: [d1, d9]}\n" MT_,
        "cfg.yaml:5:33: method 'tq': no dataset named 'd9' (datasets: d1)"),
    ROW("method entry datasets listing one twice",
        DS_ MS_ "  - {method: tq, datasets: [d1, d1]}\n" MT_,
        "cfg.yaml:5:33: method 'tq': dataset 'd1' is listed twice"),
    ROW("method entry datasets empty", DS_ MS_ "  - {method: tq, datasets: []}\n" MT_,
        "cfg.yaml:5:28: method 'tq': 'datasets' must not be empty"),
    ROW("expect on a dataset the entry does not run on",
        "name: t\ndatasets:\n  - {name: d1, kind: tvec}\n  - {name: d2, kind: tvec}\n"
        "methods:\n  - {method: tq, datasets: [d2]}\n" MT_
        "expect:\n  - {method: tq, dataset: d1, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:9:5: expect: 'tq' does not run on dataset 'd1' (see its 'datasets')"),
    ROW("expect on a swept dataset",
        "name: t\ndatasets:\n  - {name: d1, kind: tvec, dim: [8, 16]}\nmethods:\n"
        "  - {method: tq}\n" MT_
        "expect:\n  - {method: tq, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:5: expect: dataset 'd1' sweeps 'dim'; a claim needs one setting"),
    ROW("expect without source", BASE "expect:\n  - {method: tq, metric: vnmse, value: 0.1}\n",
        "cfg.yaml:8:5: expect: 'source' is required"),
    ROW("expect with an empty source",
        BASE "expect:\n  - {method: tq, metric: vnmse, value: 0.1, source: ' '}\n",
        "cfg.yaml:8:53: expect: 'source' is empty"),
    ROW("expect naming an unknown label",
        BASE "expect:\n  - {label: zz, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:13: expect: no method entry has label 'zz' (labels: tq)"),
    ROW("expect naming a method not in the config",
        BASE "expect:\n  - {method: tq2, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:14: expect: no method entry uses method 'tq2' (methods: tq)"),
    ROW("expect label and method disagree",
        BASE "expect:\n  - {method: tq2, label: tq, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:14: expect: label 'tq' is method 'tq', not 'tq2'"),
    ROW("expect param not in the table",
        BASE
        "expect:\n  - {method: tq, params: {depth: 2}, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:27: expect: method 'tq': unknown parameter 'depth' (known: bits, rotation, "
        "clip)"),
    ROW("expect param value no cell has",
        BASE "expect:\n  - {method: tq, params: {bits: 3}, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:26: expect: no cell of the sweep has bits=3"),
    ROW("expect param given as a list",
        BASE
        "expect:\n  - {method: tq, params: {bits: [2]}, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:33: expect: parameter 'bits' takes one value, not a list"),
    ROW("expect unknown dataset",
        BASE "expect:\n  - {method: tq, dataset: d9, metric: vnmse, value: 0.1, source: x}\n",
        "cfg.yaml:8:27: expect: no dataset named 'd9' (datasets: d1)"),
    ROW("expect metric not computed",
        BASE "expect:\n  - {method: tq, metric: ip_slope, value: 1, source: x}\n",
        "cfg.yaml:8:26: expect: metric 'ip_slope' is not computed: add it to 'metrics'"),
    ROW("expect on a per-head metric",
        "name: t\ndatasets:\n  - {name: d1, kind: tvec, dim: 8}\nmethods:\n  - {method: tq}\n"
        "metrics: [logit_err/head]\n"
        "expect:\n  - {method: tq, metric: logit_err/head, value: 0.1, source: x}\n",
        "cfg.yaml:8:26: expect: 'logit_err/head' has a row per (layer, head), and a claim grades "
        "one value; grade the pooled 'logit_err'"),
    ROW("expect tolerance with an inequality",
        BASE "expect:\n  - {method: tq, metric: bits, op: '<=', value: 4, rtol: 0.1, source: x}\n",
        "cfg.yaml:8:58: expect: rtol and atol apply to op ~= only, not <="),
    ROW("expect bad op",
        BASE "expect:\n  - {method: tq, metric: bits, op: '=', value: 4, source: x}\n",
        "cfg.yaml:8:36: expect: op '=' is not one of ~=, <=, >=, <, >"),
    ROW("expect without value", BASE "expect:\n  - {method: tq, metric: bits, source: x}\n",
        "cfg.yaml:8:5: expect: 'value' (a number) or 'than' (a cell) is required"),
    ROW("expect with both value and than",
        BASE "expect:\n  - {method: tq, params: {bits: 2}, metric: vnmse, op: '<', value: 1,\n"
             "     than: {method: tq, params: {bits: 4}}, source: x}\n",
        "cfg.yaml:8:68: expect: give 'value' or 'than', not both"),
    ROW("expect than over a sweep it does not pin",
        BASE "expect:\n  - {method: tq, params: {bits: 2}, metric: vnmse, op: '>',\n"
             "     than: {method: tq}, source: x}\n",
        "cfg.yaml:9:12: expect than: 'tq' sweeps parameter 'bits' (2 values); name one in "
        "'params'"),
    ROW("expect than naming an unknown label",
        BASE "expect:\n  - {method: tq, params: {bits: 2}, metric: vnmse, op: '>',\n"
             "     than: {label: zz}, source: x}\n",
        "cfg.yaml:9:20: expect than: no method entry has label 'zz' (labels: tq)"),
    ROW("expect than with an unknown key",
        BASE "expect:\n  - {method: tq, params: {bits: 2}, metric: vnmse, op: '>',\n"
             "     than: {method: tq, params: {bits: 4}, metric: bits}, source: x}\n",
        "cfg.yaml:9:44: expect than: unknown key 'metric'"),
    ROW("expect than not a mapping",
        BASE "expect:\n  - {method: tq, params: {bits: 2}, metric: vnmse, op: '>', than: tq,\n"
             "     source: x}\n",
        "cfg.yaml:8:67: expect: 'than' must be a mapping naming a cell"),
    ROW("expect factor without than",
        BASE "expect:\n  - {method: tq, params: {bits: 2}, metric: vnmse, op: '>', value: 1,\n"
             "     factor: 2, source: x}\n",
        "cfg.yaml:9:14: expect: 'factor' applies with 'than' only"),
    ROW("expect than with a non-positive factor",
        BASE "expect:\n  - {method: tq, params: {bits: 2}, metric: vnmse, op: '>',\n"
             "     than: {method: tq, params: {bits: 4}}, factor: 0, source: x}\n",
        "cfg.yaml:9:53: expect: factor must be a positive number"),
    ROW("plot y not a computed metric", BASE "plots:\n  - {x: bits, y: recall}\n",
        "cfg.yaml:8:18: plot: y 'recall' is not a metric the run computes (metrics: vnmse, bits)"),
    ROW("plot x k without a NAME@k y", BASE "plots:\n  - {x: k, y: vnmse}\n",
        "cfg.yaml:8:9: plot: x 'k' is not label, method, dataset, backend or a parameter"),
    ROW("plot y NAME@k with no such metric computed", BASE "plots:\n  - {x: k, y: recall@k}\n",
        "cfg.yaml:8:15: plot: y 'recall@k' is not a metric the run computes"),
    ROW("plot x unknown", BASE "plots:\n  - {x: depth, y: vnmse}\n",
        "cfg.yaml:8:9: plot: x 'depth' is not label, method, dataset, backend or a parameter"),
    ROW("plot x and x_metric both", BASE "plots:\n  - {x: bits, x_metric: bits, y: vnmse}\n",
        "cfg.yaml:8:25: plot: x and x_metric exclude each other"),
    ROW("plot x_metric not a computed metric", BASE "plots:\n  - {x_metric: ratio, y: vnmse}\n",
        "cfg.yaml:8:16: plot: x_metric 'ratio' is not a metric the run computes (metrics: vnmse, "
        "bits)"),
    ROW("plot x_metric a timing",
        BASE "latency: {ops: [encode]}\nplots:\n  - {x_metric: encode_latency, y: vnmse}\n",
        "cfg.yaml:9:16: plot: x_metric 'encode_latency' has no one value per cell (a timing's "
        "samples, or a value per head): use an accuracy metric such as bits"),
    ROW("expect on the timing of an op the latency pass does not run",
        BASE "latency: {ops: [encode]}\nexpect:\n  - {method: tq, params: {bits: 2}, metric: "
             "decode_latency, op: \"<\", value: 1, source: x}\n",
        "cfg.yaml:9:45: expect: metric 'decode_latency' is not computed: add its op to 'latency: "
        "{ops: [...]}'"),
    ROW("plot y the timing of an op the latency pass does not run",
        BASE "latency: {ops: [encode]}\nplots:\n  - {x: bits, y: decode_latency}\n",
        "cfg.yaml:9:18: plot: y 'decode_latency' is not a metric the run computes (metrics: vnmse, "
        "bits): add its op to 'latency: {ops: [...]}'"),
    ROW("plot with neither x nor x_metric", BASE "plots:\n  - {y: vnmse}\n",
        "cfg.yaml:8:5: plot: 'x' (or 'x_metric') is required"),
    ROW("plot logy not a bool", BASE "plots:\n  - {x: bits, y: vnmse, logy: maybe}\n",
        "cfg.yaml:8:31: plot logy: 'maybe' is not true or false"),
    ROW("plot baseline not a label",
        BASE "plots:\n  - {x: bits, y: vnmse, baselines: [tq, nope]}\n",
        "cfg.yaml:8:41: plot: baseline 'nope' is not the label of a method entry"),
    ROW("plot baselines not a list", BASE "plots:\n  - {x: bits, y: vnmse, baselines: tq}\n",
        "cfg.yaml:8:36: plot baselines must be a list, not a scalar"),
    {"include of a missing file", "include: nothere.yaml\n" BASE,
     "cfg.yaml:1:10: cannot read included file '", "nothere.yaml': No such file or directory", NULL,
     NULL, RB_EIO},
    {"include cycle", "include: b.yaml\n" BASE, "b.yaml:1:10: include cycle: ", "cfg.yaml -> ",
     "b.yaml", "include: cfg.yaml\n", 0},
    {"error inside an included file", "include: b.yaml\n" BASE,
     "b.yaml:2:1: configuration: unknown key 'sed'", NULL, "b.yaml", "name: base\nsed: 3\n", 0},
    ROW("YAML syntax error", "name: [t\nseed: 1\n",
        "cfg.yaml:2:5: YAML error: did not find expected ',' or ']' (while parsing a flow sequence "
        "at "
        "line 1, column 7)"),
    ROW("YAML syntax error: bad indentation", "name: t\n  seed: 1\n",
        "cfg.yaml:2:7: YAML error: mapping values are not allowed in this context"),
    ROW("two YAML documents", BASE "---\nname: u\n", "cfg.yaml:8:1: a second YAML document"),
    /* 70 levels: refused at the 65th (the top mapping is the first), before libyaml's scanner,
     * quadratic in the depth, gets to the rest. */
    ROW("nested deeper than 64 levels",
        "name: t\ndatasets: " OPEN10 OPEN10 OPEN10 OPEN10 OPEN10 OPEN10 OPEN10 CLOSE10 CLOSE10
            CLOSE10 CLOSE10 CLOSE10 CLOSE10 CLOSE10 "\n",
        "cfg.yaml:2:74: lists and mappings nested deeper than 64 levels"),
    ROW("empty file", "", "cfg.yaml:1:1: empty configuration"),
    ROW("only comments", "# nothing here\n", "cfg.yaml:1:1: empty configuration"),
    ROW("top level is a list", "- a\n- b\n", "cfg.yaml:1:1: a configuration must be a mapping"),
};

Test(config, bad_cases_name_file_line_and_column) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        put_file("cfg.yaml", c->yaml);
        if (c->extra_name) put_file(c->extra_name, c->extra_yaml);
        rb_config cfg;
        int rc = load("cfg.yaml", &cfg);
        const char *msg = rb_error_detail();
        cr_expect_eq(rc, c->rc ? c->rc : RB_ECONFIG, "[%s] rc %d: %s", c->what, rc, msg);
        cr_expect(strstr(msg, c->msg), "[%s]\n  got:    %s\n  wanted: ...%s", c->what, msg, c->msg);
        if (c->also)
            cr_expect(strstr(msg, c->also), "[%s] got %s, wanted ...%s", c->what, msg, c->also);
        cr_expect_null(cfg.name, "[%s] the config is left empty", c->what);
        cr_expect_eq(cfg.ndatasets, 0);
        if (c->extra_name) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, c->extra_name);
            unlink(p);
        }
    }
}

/* A config path that is no regular file is refused at once, naming it: a FIFO's open() would
 * otherwise wait for a writer forever (the timeout turns that hang into a failure). */
Test(config, unreadable_files_are_eio, .timeout = 20) {
    static const struct {
        const char *what, *name, *make, *include, *msg;
    } cases[] = {
        {"missing", "absent.yaml", NULL, NULL, "absent.yaml: cannot read: No such file"},
        {"directory", "adir", "dir", NULL, "adir: cannot read: it is a directory"},
        {"FIFO", "a.fifo", "fifo", NULL, "a.fifo: cannot read: it is a FIFO (named pipe)"},
        {"included FIFO", "top.yaml", "fifo", "b.fifo", "b.fifo': it is a FIFO (named pipe)"},
        {"included directory", "top.yaml", "dir", "bdir", "bdir': it is a directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[512];
        const char *made = cases[i].include ? cases[i].include : cases[i].name;
        snprintf(p, sizeof p, "%s/%s", dir, made);
        if (cases[i].make && !strcmp(cases[i].make, "dir"))
            cr_assert_eq(mkdir(p, 0700), 0, "[%s] mkdir %s", cases[i].what, p);
        if (cases[i].make && !strcmp(cases[i].make, "fifo"))
            cr_assert_eq(mkfifo(p, 0600), 0, "[%s] mkfifo %s", cases[i].what, p);
        if (cases[i].include) {
            char text[256];
            snprintf(text, sizeof text, "include: %s\nname: t\n", cases[i].include);
            put_file(cases[i].name, text);
        }
        rb_config cfg;
        cr_expect_eq(load(cases[i].name, &cfg), RB_EIO, "[%s] %s", cases[i].what,
                     rb_error_detail());
        cr_expect(strstr(rb_error_detail(), cases[i].msg), "[%s] got %s, wanted ...%s",
                  cases[i].what, rb_error_detail(), cases[i].msg);
    }
}

/* The default hooks consult the real registries. */
Test(config, default_hooks_use_the_registries) {
    put_file("cfg.yaml", "name: t\ndatasets:\n  - {name: s, kind: sphere, dim: 64, count: 10}\n"
                         "methods:\n  - {method: nosuch}\nmetrics: [vnmse]\n");
    char p[512];
    snprintf(p, sizeof p, "%s/cfg.yaml", dir);
    rb_config cfg;
    cr_assert_eq(rb_config_load(p, &cfg), RB_ECONFIG);
    cr_assert(strstr(rb_error_detail(), "cfg.yaml:5:14: unknown method 'nosuch' (known: "), "%s",
              rb_error_detail());
    cr_assert(strstr(rb_error_detail(), "rtn"), "%s", rb_error_detail());

    put_file("cfg.yaml", "name: t\ndatasets:\n  - {name: s, kind: sphere, dim: 64, count: 10}\n"
                         "methods:\n  - {method: rtn, params: {bits: [2, 3]}}\nmetrics: [vnmse]\n");
    cr_assert_eq(rb_config_load(p, &cfg), 0, "%s", rb_error_detail());
    cr_assert_eq(cfg.datasets[0].k, rb_dataset_kind_find("sphere"));
    cr_assert_eq(cfg.methods[0].m, rb_method_find("rtn"));
    rb_config_free(&cfg);
}

Test(config, metric_names) {
    cr_assert(rb_metric_known("vnmse", RB_FAMILY_CODEC));
    cr_assert(rb_metric_known("vnmse", RB_FAMILY_COUNT));
    cr_assert(!rb_metric_known("vnmse", RB_FAMILY_SPARSE));
    cr_assert(!rb_metric_known("nope", RB_FAMILY_COUNT));
    /* Exactly the metric table's entries, each in its own family: a config can only ask for
     * numbers an evaluator computes. */
    size_t n;
    const rb_metric *m = rb_metrics_all(&n);
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < RB_FAMILY_COUNT; f++)
            cr_assert_eq(rb_metric_known(m[i].name, (rb_family) f), (int) m[i].family == f, "%s",
                         m[i].name);
}

/* ---- good configs ---- */

static const char *full_yaml =
    "# a config that uses every key\n"
    "name: full\n"
    "seed: 42\n"
    "repeats: 2\n"
    "backends: [cpu, auto]\n"
    "datasets:\n"
    "  - {name: d1, kind: tvec, dim: [32, 64], count: 10}\n"
    "  - name: d2\n"
    "    kind: tvec\n"
    "methods:\n"
    "  - method: tq\n"
    "    params: {bits: [1, 2, 3], rotation: [rht, none]}\n"
    "  - {method: tq2, label: b, params: {clip: 0.50}}\n"
    "metrics: [vnmse, bits]\n"
    "latency: {ops: [encode, decode], repetitions: 3}\n"
    "expect:\n"
    "  - {method: tq, dataset: d2, backend: cpu, params: {bits: 2, rotation: none},\n"
    "     metric: vnmse, value: 0.116, rtol: 0.02, source: 'arXiv:2504.19874 Theorem 1'}\n"
    "  - {label: b, dataset: d2, backend: auto, metric: bits, op: '<=', value: 4,\n"
    "     source: 'by construction'}\n"
    "  - {label: b, dataset: d2, backend: cpu, params: {clip: 0.5}, metric: encode_latency,\n"
    "     op: '<', value: 1, source: x}\n"
    "plots:\n"
    "  - {x: bits, y: vnmse, logy: True, title: 'MSE vs bits', dataset: d1, method: tq}\n"
    "  - {x: dim, y: bits, series: method, logx: FALSE, logy: yes}\n";

/* Any recall@K up to the base size loads, and every metric keeps where it was written. */
Test(config, recall_any_k_loads) {
    rb_config cfg;
    load_ok("name: t\n"
            "datasets:\n"
            "  - {name: d1, kind: tvec, count: [100, 200]}\n"
            "methods:\n"
            "  - {method: tq}\n"
            "metrics: [recall@10, recall@100, vnmse]\n",
            &cfg);
    cr_assert_eq(cfg.nmetrics, 3);
    cr_assert_str_eq(cfg.metrics[1], "recall@100");
    cr_assert_not_null(cfg.metric_pos);
    cr_assert_eq(cfg.metric_pos[1].line, 6);
    cr_assert_eq(cfg.metric_pos[1].col, 22);
    cr_assert(strstr(cfg.metric_pos[1].file, "cfg.yaml"), "%s", cfg.metric_pos[1].file);
    rb_config_free(&cfg);
}

Test(config, full_config_loads) {
    rb_config cfg;
    load_ok(full_yaml, &cfg);
    cr_assert_str_eq(cfg.name, "full");
    cr_assert_eq(cfg.seed, 42);
    cr_assert_eq(cfg.repeats, 2);
    cr_assert_eq(cfg.nbackends, 2);
    cr_assert_str_eq(cfg.backends[1], "auto");
    cr_assert_eq(cfg.nfiles, 1);
    cr_assert(strstr(cfg.files[0], "/cfg.yaml"));

    cr_assert_eq(cfg.ndatasets, 2);
    rb_dataset_entry *d = &cfg.datasets[0];
    cr_assert_str_eq(d->name, "d1");
    cr_assert_eq(d->k, &tvec);
    cr_assert_eq(d->nparams, 2);
    cr_assert_str_eq(d->params[0].name, "dim");
    cr_assert(d->params[0].is_list);
    cr_assert_eq(d->params[0].nvalues, 2);
    cr_assert_str_eq(d->params[0].values[1], "64");
    cr_assert_eq(d->params[0].pos.line, 7);
    cr_assert_eq(d->params[0].pos.col, 33);
    cr_assert_eq(d->params[0].pos.file, cfg.files[0]);
    cr_assert(!d->params[1].is_list);
    cr_assert_eq(cfg.datasets[1].nparams, 0);
    cr_assert_eq(cfg.datasets[1].pos.line, 8);
    cr_assert_eq(cfg.datasets[1].pos.col, 5);

    cr_assert_eq(cfg.nmethods, 2);
    cr_assert_str_eq(cfg.methods[0].label, "tq", "the label defaults to the method name");
    cr_assert_eq(cfg.methods[0].m, &tq);
    cr_assert_str_eq(cfg.methods[1].label, "b");
    cr_assert_str_eq(cfg.methods[1].params[0].values[0], "0.50", "values are kept as written");

    cr_assert_eq(cfg.nmetrics, 2);
    cr_assert(cfg.latency.enabled);
    cr_assert_eq(cfg.latency.nops, 2);
    cr_assert_eq(cfg.latency.min_time, 0.05);
    cr_assert_eq(cfg.latency.repetitions, 3);
    cr_assert_eq(cfg.latency.batch, 0);

    cr_assert_eq(cfg.nexpects, 3);
    rb_expect *x = &cfg.expects[0];
    cr_assert_str_eq(x->method, "tq");
    cr_assert_null(x->label);
    cr_assert_str_eq(x->dataset, "d2");
    cr_assert_eq(x->nparams, 2);
    cr_assert_str_eq(x->param_names[1], "rotation");
    cr_assert_str_eq(x->param_values[0], "2");
    cr_assert_str_eq(x->op, "~=");
    cr_assert_eq(x->value, 0.116);
    cr_assert_eq(x->rtol, 0.02);
    cr_assert_eq(x->atol, 0);
    cr_assert_str_eq(x->source, "arXiv:2504.19874 Theorem 1");
    cr_assert_eq(x->pos.line, 17);
    x = &cfg.expects[1];
    cr_assert_str_eq(x->op, "<=");
    cr_assert_str_eq(x->backend, "auto");
    cr_assert_eq(x->rtol, 0.01, "default rtol");
    cr_assert_str_eq(cfg.expects[2].param_values[0], "0.5", "expect values are canonical");

    cr_assert_eq(cfg.nplots, 2);
    cr_assert_str_eq(cfg.plots[0].series, "label");
    cr_assert(cfg.plots[0].logy && !cfg.plots[0].logx);
    cr_assert_str_eq(cfg.plots[0].title, "MSE vs bits");
    cr_assert_str_eq(cfg.plots[1].series, "method");
    cr_assert_null(cfg.plots[1].dataset);
    cr_assert(cfg.plots[1].logy && !cfg.plots[1].logx, "YAML's other spellings of a bool");

    cr_assert_eq(strlen(cfg.sha256), 64);
    rb_config_free(&cfg);
    cr_assert_null(cfg.name);
}

Test(config, defaults_and_null_lists) {
    rb_config cfg;
    load_ok("name: t\ndatasets:\n  - {name: d1, kind: tvec}\nmethods:\n  - method: tq\n"
            "    params:\nmetrics: [bits]\nexpect:\nplots: ~\n",
            &cfg);
    cr_assert_eq(cfg.seed, 1);
    cr_assert_eq(cfg.repeats, 1);
    cr_assert_eq(cfg.nbackends, 1);
    cr_assert_str_eq(cfg.backends[0], "cpu");
    cr_assert_eq(cfg.methods[0].nparams, 0);
    cr_assert_eq(cfg.nexpects, 0);
    cr_assert_eq(cfg.nplots, 0);
    cr_assert(!cfg.latency.enabled);
    cr_assert_str_eq(cfg.resolved_json,
                     "{\"backends\":[\"cpu\"],\"datasets\":[{\"kind\":\"tvec\",\"name\":\"d1\"}],"
                     "\"expect\":[],\"latency\":null,\"methods\":[{\"label\":\"tq\",\"method\":"
                     "\"tq\",\"params\":{}}],\"metrics\":[\"bits\"],\"name\":\"t\",\"plots\":[],"
                     "\"repeats\":1,\"seed\":1}");
    rb_config_free(&cfg);
}

/* Nested includes (one in a subdirectory, found relative to its includer): scalars override,
 * lists append, metrics union, latency keys override one by one. */
Test(config, includes_merge) {
    put_file("sub/base.yaml",
             "name: base\nseed: 7\nrepeats: 3\n"
             "datasets:\n  - {name: d1, kind: tvec, dim: 16}\n"
             "methods:\n  - {method: tq, params: {bits: 2}}\n"
             "metrics: [vnmse]\n"
             "latency: {ops: [encode], repetitions: 3}\n"
             "expect:\n  - {method: tq, dataset: d1, metric: vnmse, value: 0.1, source: a}\n"
             "plots:\n  - {x: bits, y: vnmse}\n");
    put_file("mid.yaml", "include: sub/base.yaml\nseed: 8\nbackends: [auto]\n"
                         "methods:\n  - {method: tq2}\nmetrics: [bits, vnmse]\n");
    put_file("cfg.yaml",
             "include: mid.yaml\nname: top\n"
             "datasets:\n  - {name: d2, kind: tvec}\n"
             "latency: {min_time: 0.1}\n"
             "expect:\n  - {method: tq2, dataset: d2, metric: bits, value: 4, source: b}\n");
    rb_config cfg;
    cr_assert_eq(load("cfg.yaml", &cfg), 0, "%s", rb_error_detail());
    cr_assert_str_eq(cfg.name, "top");
    cr_assert_eq(cfg.seed, 8, "mid overrides base");
    cr_assert_eq(cfg.repeats, 3, "base value kept");
    cr_assert_eq(cfg.nbackends, 1);
    cr_assert_str_eq(cfg.backends[0], "auto");
    cr_assert_eq(cfg.ndatasets, 2);
    cr_assert_str_eq(cfg.datasets[0].name, "d1");
    cr_assert_str_eq(cfg.datasets[1].name, "d2");
    cr_assert_eq(cfg.nmethods, 2);
    cr_assert_str_eq(cfg.methods[1].label, "tq2");
    cr_assert_eq(cfg.nmetrics, 2);
    cr_assert_str_eq(cfg.metrics[0], "vnmse");
    cr_assert_str_eq(cfg.metrics[1], "bits");
    cr_assert_eq(cfg.latency.nops, 1);
    cr_assert_eq(cfg.latency.repetitions, 3);
    cr_assert_eq(cfg.latency.min_time, 0.1);
    cr_assert_eq(cfg.nexpects, 2);
    cr_assert_str_eq(cfg.expects[1].source, "b");
    cr_assert_eq(cfg.nplots, 1);
    cr_assert_eq(cfg.nfiles, 3);
    cr_assert(strstr(cfg.files[0], "/cfg.yaml"));
    cr_assert(strstr(cfg.files[1], "/mid.yaml"));
    cr_assert(strstr(cfg.files[2], "/sub/base.yaml"));
    cr_assert_eq(cfg.datasets[0].pos.file, cfg.files[2], "positions name the included file");
    cr_assert_eq(cfg.datasets[0].pos.line, 5);
    cr_assert_eq(cfg.datasets[1].pos.file, cfg.files[0]);
    cr_assert_null(strstr(cfg.resolved_json, "include"), "the resolved config has no include");
    rb_config_free(&cfg);
}

/* A method entry with `datasets` gets cells on those datasets only, in the usual order. */
Test(config, method_entry_datasets_filter_cells) {
    rb_config cfg;
    load_ok("name: t\ndatasets:\n  - {name: d1, kind: tvec}\n  - {name: d2, kind: tvec}\n"
            "  - {name: d3, kind: tvec}\n"
            "methods:\n  - {method: tq, params: {bits: [2, 4]}, datasets: [d3, d1]}\n"
            "  - {method: tq2}\n" MT_
            "expect:\n  - {method: tq, dataset: d3, params: {bits: 2}, metric: vnmse, value: 0.1,"
            " source: x}\n",
            &cfg);
    rb_cell *cells;
    size_t n;
    cr_assert_eq(rb_sweep_expand(&cfg, &cells, &n), 0, "%s", rb_error_detail());
    cr_assert_eq(n, 2 * 2 + 3, "tq: 2 datasets x 2 bits; tq2: 3 datasets");
    static const char *const want[] = {"d1|tq|", "d1|tq|", "d1|tq2|", "d2|tq2|",
                                       "d3|tq|", "d3|tq|", "d3|tq2|"};
    for (size_t i = 0; i < n; i++)
        cr_assert(!strncmp(cells[i].key, want[i], strlen(want[i])), "cell %zu: %s", i,
                  cells[i].key);
    cr_assert(strstr(cfg.resolved_json, "\"datasets\":[\"d3\",\"d1\"]"), "%s", cfg.resolved_json);
    free(cells);
    rb_config_free(&cfg);
}

/* d1 sweeps dim over 2 values, d2 none; tq sweeps 3 x 2, b none; 2 backends, 2 repeats. */
Test(config, sweep_order_and_count) {
    rb_config cfg;
    load_ok(full_yaml, &cfg);
    rb_cell *cells;
    size_t n;
    cr_assert_eq(rb_sweep_expand(&cfg, &cells, &n), 0, "%s", rb_error_detail());
    cr_assert_eq(n, (2 + 1) * (6 + 1) * 2 * 2);
    static const char *const first[] = {
        "d1|tq|bits=1,rotation=rht,clip=1|dim=32,count=10|cpu|0",
        "d1|tq|bits=1,rotation=rht,clip=1|dim=32,count=10|cpu|1",
        "d1|tq|bits=1,rotation=rht,clip=1|dim=32,count=10|auto|0",
        "d1|tq|bits=1,rotation=rht,clip=1|dim=32,count=10|auto|1",
        "d1|tq|bits=1,rotation=none,clip=1|dim=32,count=10|cpu|0",
    };
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(cells[i].key, first[i], "cell %zu", i);
        cr_assert_eq(cells[i].index, i);
    }
    cr_assert_str_eq(cells[8].key, "d1|tq|bits=2,rotation=rht,clip=1|dim=32,count=10|cpu|0");
    cr_assert_str_eq(cells[24].key, "d1|b|bits=4,rotation=rht,clip=0.5|dim=32,count=10|cpu|0");
    cr_assert_str_eq(cells[28].key, "d1|tq|bits=1,rotation=rht,clip=1|dim=64,count=10|cpu|0");
    cr_assert_str_eq(cells[56].key, "d2|tq|bits=1,rotation=rht,clip=1|dim=64,count=100|cpu|0");
    cr_assert_str_eq(cells[n - 1].key, "d2|b|bits=4,rotation=rht,clip=0.5|dim=64,count=100|auto|1");
    /* Fields agree with the key. */
    rb_cell *c = &cells[28 + 16 + 3]; /* dim=64, bits=3, rotation=rht, auto, repeat 1 */
    cr_assert_eq(c->dataset, 0);
    cr_assert_eq(c->method, 0);
    cr_assert_eq(rb_params_int(&c->dparams, "dim"), 64);
    cr_assert_eq(rb_params_int(&c->mparams, "bits"), 3);
    cr_assert(rb_params_is(&c->mparams, "rotation", "rht"));
    cr_assert_str_eq(c->backend, "auto");
    cr_assert_eq(c->repeat, 1);
    cr_assert_eq(c->mparams.set[0], 1);
    cr_assert_eq(c->mparams.set[2], 0, "clip was not written for tq");

    /* Keys are unique, seeds differ across repeats and datasets, backends share seeds. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert_str_neq(cells[i].key, cells[j].key, "cells %zu and %zu", i, j);
    cr_assert_neq(cells[0].data_seed, cells[1].data_seed);
    cr_assert_neq(cells[0].method_seed, cells[1].method_seed);
    cr_assert_eq(cells[0].data_seed, cells[2].data_seed);
    cr_assert_eq(cells[0].method_seed, cells[2].method_seed);
    cr_assert_eq(cells[0].data_seed, cells[4].data_seed, "same data for every method");
    cr_assert_neq(cells[0].method_seed, cells[4].method_seed);
    cr_assert_neq(cells[0].data_seed, cells[28].data_seed);
    free(cells);
    rb_config_free(&cfg);
}

static const rb_cell *find_cell(const rb_cell *cells, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(cells[i].key, key)) return &cells[i];
    return NULL;
}

/* Inserting datasets, methods and sweep values before a cell leaves its seeds alone. */
Test(config, seeds_stable_when_cells_are_inserted) {
    rb_config a, b;
    load_ok("name: t\nseed: 5\ndatasets:\n  - {name: d1, kind: tvec}\n"
            "methods:\n  - {method: tq, params: {bits: [2, 4]}}\nmetrics: [vnmse]\n",
            &a);
    load_ok("name: t\nseed: 5\nrepeats: 2\ndatasets:\n  - {name: d0, kind: tvec}\n"
            "  - {name: d1, kind: tvec}\n"
            "methods:\n  - {method: tq2, label: z}\n  - {method: tq, params: {bits: [1, 2, 4]}}\n"
            "metrics: [vnmse]\n",
            &b);
    rb_cell *ca, *cb;
    size_t na, nb;
    cr_assert_eq(rb_sweep_expand(&a, &ca, &na), 0);
    cr_assert_eq(rb_sweep_expand(&b, &cb, &nb), 0);
    cr_assert_eq(na, 2);
    cr_assert_eq(nb, 2 * 4 * 2);
    const char *key = "d1|tq|bits=4,rotation=rht,clip=1|dim=64,count=100|cpu|0";
    const rb_cell *x = find_cell(ca, na, key), *y = find_cell(cb, nb, key);
    cr_assert(x && y);
    cr_assert_neq(x->index, y->index, "the cell moved");
    cr_assert_eq(x->data_seed, y->data_seed);
    cr_assert_eq(x->method_seed, y->method_seed);
    free(ca);
    free(cb);
    rb_config_free(&a);
    rb_config_free(&b);
}

Test(config, resolved_json_and_sha256) {
    rb_config a, b;
    load_ok(full_yaml, &a);
    load_ok(full_yaml, &b);
    cr_assert_str_eq(a.resolved_json, b.resolved_json);
    cr_assert_str_eq(a.sha256, b.sha256);
    rb_config_free(&b);

    /* The same config written differently (block style, comments, key order) hashes the same. */
    char *other = strdup(full_yaml);
    char *p = strstr(other, "  - {name: d1, kind: tvec, dim: [32, 64], count: 10}\n");
    cr_assert(p);
    const char *swap = "  - {kind: tvec, name: d1, count: 10, dim: [32, 64]}\n";
    memcpy(p, swap, strlen(swap));
    load_ok(other, &b);
    cr_assert_str_eq(a.sha256, b.sha256, "%s\n%s", a.resolved_json, b.resolved_json);
    rb_config_free(&b);

    /* One value changes: a different hash. */
    p = strstr(other, "seed: 42");
    p[7] = '3';
    load_ok(other, &b);
    cr_assert_str_neq(a.sha256, b.sha256);
    rb_config_free(&b);
    free(other);

    /* The JSON parses and carries values as written plus the filled-in defaults. */
    json_error_t je;
    json_t *root = json_loads(a.resolved_json, 0, &je);
    cr_assert(root, "%s", je.text);
    cr_assert_eq(json_integer_value(json_object_get(root, "seed")), 42);
    json_t *m1 = json_array_get(json_object_get(root, "methods"), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m1, "params"), "clip")),
                     "0.50");
    json_t *lat = json_object_get(root, "latency");
    cr_assert_eq(json_real_value(json_object_get(lat, "min_time")), 0.05);
    json_t *pl = json_array_get(json_object_get(root, "plots"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(pl, "series")), "label");
    json_decref(root);

    /* sha256 is the digest of exactly the JSON text: checked with coreutils' sha256sum. */
    put_file("resolved.json", a.resolved_json);
    char cmd[600], out[128] = "";
    snprintf(cmd, sizeof cmd, "sha256sum %s/resolved.json", dir);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    cr_assert(fgets(out, sizeof out, f));
    pclose(f);
    cr_assert_eq(strncmp(out, a.sha256, 64), 0, "sha256sum %.64s, config %s", out, a.sha256);
    rb_config_free(&a);
}

/* json_int_t is signed: a seed above INT64_MAX is kept exact as a string. */
Test(config, largest_seed) {
    rb_config cfg;
    load_ok(BASE "seed: 18446744073709551615\n", &cfg);
    cr_assert_eq(cfg.seed, UINT64_MAX);
    cr_assert(strstr(cfg.resolved_json, "\"seed\":\"18446744073709551615\""), "%s",
              cfg.resolved_json);
    rb_config_free(&cfg);
}

Test(config, sweep_limit_and_free_of_empty) {
    rb_config cfg;
    load_ok("name: t\ndatasets:\n  - {name: d1, kind: tvec, dim: [1,2,3,4,5,6,7,8,9,10], "
            "count: [1,2,3,4,5,6,7,8,9,10]}\n"
            "methods:\n  - {method: tq, params: {bits: [1,2,3,4,5,6,7,8], "
            "clip: [0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1]}}\nmetrics: [vnmse]\n"
            "repeats: 5\nbackends: [cpu, cuda, auto]\n",
            &cfg);
    rb_cell *cells = (rb_cell *) 1;
    size_t n = 99;
    cr_assert_eq(rb_sweep_expand(&cfg, &cells, &n), RB_ECONFIG);
    /* 10 x 10 dataset settings x 8 x 10 method settings x 3 backends x 5 repeats */
    cr_assert(strstr(rb_error_detail(), "more than 100000 cells (8000 (dataset, method) settings x "
                                        "3 backends x 5 repeats): lower the repeats"),
              "%s", rb_error_detail());
    cr_assert_null(cells);
    cr_assert_eq(n, 0);
    rb_config_free(&cfg);
    rb_config_free(&cfg); /* freeing twice (an emptied config) is harmless */
    /* A cell key past its buffer is reported at the entry whose text is the larger part: a
     * 600-character label, then a 600-character dataset name. */
    static const struct {
        const char *pre, *post, *at, *with, *advice;
    } keys[] = {
        {"name: t\ndatasets:\n  - {name: d1, kind: tvec}\nmethods:\n  - {method: tq, label: ",
         "}\nmetrics: [vnmse]\n", "cfg.yaml:5:5: method 'LLLL", "(with dataset 'd1')",
         "shorten the label"},
        {"name: t\ndatasets:\n  - {name: ",
         ", kind: tvec}\nmethods:\n  - {method: tq}\n"
         "metrics: [vnmse]\n",
         "cfg.yaml:3:5: dataset 'LLLL", "(with method 'tq')",
         "shorten the dataset's name or its parameter values"},
    };
    char yaml[2048], label[601];
    memset(label, 'L', 600);
    label[600] = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(yaml, sizeof yaml, "%s%s%s", keys[i].pre, label, keys[i].post);
        load_ok(yaml, &cfg);
        cr_assert_eq(rb_sweep_expand(&cfg, &cells, &n), RB_ECONFIG);
        const char *e = rb_error_detail();
        cr_assert(strstr(e, keys[i].at) && strstr(e, keys[i].with) && strstr(e, keys[i].advice) &&
                      strstr(e, "the cell key (names, label and parameter values) is longer "
                                "than 511 characters"),
                  "case %zu: %s", i, e);
        rb_config_free(&cfg);
    }
}

/* A list or mapping past CONFIG_ITEMS_MAX (10000) items is refused where it starts: the
 * uniqueness checks compare pairs, and 60000 took a minute. 10000 items load. */
Test(config, lists_and_mappings_are_bounded) {
    for (int over = 0; over < 2; over++) {
        size_t n = 10000 + (size_t) over, cap = 64 + 16 * n;
        char *yaml = malloc(cap);
        size_t used =
            (size_t) snprintf(yaml, cap, "name: t\ndatasets:\n  - {name: d1, kind: tvec, count: [");
        for (size_t i = 1; i <= n; i++)
            used += (size_t) snprintf(yaml + used, cap - used, "%s%zu", i > 1 ? ", " : "", i);
        snprintf(yaml + used, cap - used, "]}\n");
        put_file("cfg.yaml", yaml);
        free(yaml);
        rb_config cfg;
        int rc = load("cfg.yaml", &cfg);
        if (!over) {
            cr_assert_eq(rc, RB_ECONFIG); /* no methods: a later error, past the bound */
            cr_assert_null(strstr(rb_error_detail(), "items"), "%s", rb_error_detail());
            continue;
        }
        cr_assert_eq(rc, RB_ECONFIG);
        cr_assert(strstr(rb_error_detail(), "cfg.yaml:3:35: a list of 10001 items; a config's "
                                            "lists and mappings hold at most 10000"),
                  "%s", rb_error_detail());
    }
    /* the bound holds for lists merged over includes: 6000 metrics in each of two files */
    for (int f = 0; f < 2; f++) {
        size_t cap = 64 + 16 * 6000;
        char *yaml = malloc(cap);
        size_t used = (size_t) snprintf(yaml, cap, "%smetrics: [", f ? "" : "include: inc.yaml\n");
        for (int i = 0; i < 6000; i++)
            used += (size_t) snprintf(yaml + used, cap - used, "%sm%d_%d", i ? ", " : "", f, i);
        snprintf(yaml + used, cap - used, "]\n");
        put_file(f ? "inc.yaml" : "cfg.yaml", yaml);
        free(yaml);
    }
    rb_config cfg;
    cr_assert_eq(load("cfg.yaml", &cfg), RB_ECONFIG);
    cr_assert(strstr(rb_error_detail(), "item 10001 of a list merged over includes; a config's "
                                        "lists hold at most 10000"),
              "%s", rb_error_detail());
}
