/* The run configuration: a YAML file read with libyaml's document loader, validated against the
 * method and dataset parameter tables, and expanded into cells. */
#ifndef RB_CONFIG_H
#define RB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/dataset.h"
#include "kernels/kernels.h"
#include "methods/method.h"

/* Where a value came from, for `FILE:LINE:COL: message` errors (1-based line and column). */
typedef struct rb_srcpos {
    const char *file; /* one of rb_config.files: valid while the config lives */
    int line, col;
} rb_srcpos;

/* One parameter of a method or dataset entry: a scalar or a list (a sweep axis). Values are the
 * YAML scalars' text, validated against the owner's rb_param_def table at load time. */
typedef struct rb_sweep_param {
    char *name;
    char **values;
    size_t nvalues;
    int is_list; /* written as a list in YAML (a one-element list still sweeps over one value) */
    rb_srcpos pos;
} rb_sweep_param;

typedef struct rb_dataset_entry {
    char *name; /* unique within the config; cells and records refer to it; no '|' */
    char *kind; /* generator or loader name in the dataset registry */
    const rb_dataset_kind *k;
    rb_sweep_param *params;
    size_t nparams;
    rb_srcpos pos;
} rb_dataset_entry;

typedef struct rb_method_entry {
    char *method; /* registry name */
    char *label;  /* defaults to the method name; unique within the config; no '|' */
    const rb_method *m;
    rb_sweep_param *params;
    size_t nparams;
    char **datasets; /* the datasets it runs on (config key `datasets`); ndatasets 0 = all */
    size_t ndatasets;
    rb_srcpos pos;
} rb_method_entry;

/* Whether a method entry runs on the named dataset (every dataset unless it lists some). */
int rb_entry_runs_on(const rb_method_entry *e, const char *dataset);

/* A paper claim: the cell(s) matching method/label, dataset and the given params (a subset) must
 * have `metric` within tolerance of `value` (op "~="), or satisfy op "<=", ">=", "<", ">". With
 * `than`, the target is not a number but factor times the same metric of another cell (selected
 * by the same fields), for claims like "2-bit EDEN beats 3-bit TurboQuant_prod". */
typedef struct rb_expect {
    char *method, *label, *dataset; /* NULL = any (at least one of method and label is set) */
    /* A subset of the method's params; values in canonical text (rb_params text), so they
     * compare equal to a cell's mparams.text[...] with strcmp. */
    char **param_names, **param_values;
    size_t nparams;
    char *backend; /* NULL = any */
    char *metric;
    char op[3]; /* "~=", "<=", ">=", "<", ">" */
    double value;
    double rtol, atol;      /* for "~="; defaults rtol 0.01, atol 0 */
    char *source;           /* required: where the claim comes from */
    struct rb_expect *than; /* NULL, or the reference cell (selector fields only) */
    double factor;          /* with than: target = factor * the reference's value (default 1) */
    rb_srcpos pos;
} rb_expect;

typedef struct rb_plot {
    char *x, *y,
        *series;    /* a param name or "method"/"label"/"dataset" for x and series; y a metric */
    char *x_metric; /* instead of x: a metric, each point at its cell's measured value */
    char *title;
    char *dataset, *method; /* optional filters */
    char **baselines;       /* labels drawn as horizontal reference lines, not points at x */
    size_t nbaselines;
    int logx, logy;
    rb_srcpos pos;
} rb_plot;

typedef struct rb_latency {
    int enabled;
    char **ops; /* e.g. encode, decode, inner_product */
    size_t nops;
    double min_time; /* seconds per Google Benchmark run */
    int repetitions; /* raw samples kept per op */
    size_t batch;    /* vectors per timed call (0 = the dataset's count) */
} rb_latency;

typedef struct rb_config {
    char *path;
    char **files; /* the config file and every included file, as opened (paths for srcpos) */
    size_t nfiles;
    char *name;
    uint64_t seed;
    int repeats;
    char **backends; /* "cpu", "cuda", "auto" */
    size_t nbackends;
    rb_dataset_entry *datasets;
    size_t ndatasets;
    rb_method_entry *methods;
    size_t nmethods;
    char **metrics;
    rb_srcpos *metric_pos; /* where each of metrics was written (NULL in a hand-made config) */
    size_t nmetrics;
    rb_latency latency;
    rb_expect *expects;
    size_t nexpects;
    rb_plot *plots;
    size_t nplots;
    char *resolved_json; /* the resolved config (includes merged, defaults filled) as JSON text */
    char sha256[65];     /* hex sha256 of resolved_json */
} rb_config;

/* Loads and validates path (following `include:`). On error returns RB_ECONFIG (or RB_EIO for a
 * missing or unreadable file) with rb_error_detail() = "FILE:LINE:COL: message" ("FILE: message"
 * when the top-level file itself cannot be read); *cfg is then empty (zeroed). */
int rb_config_load(const char *path, rb_config *cfg);
void rb_config_free(rb_config *cfg);

/* Where the loader looks names up. rb_config_load uses rb_config_default_hooks (the method and
 * dataset registries and rb_metric_known); tests pass their own to load configs that name test
 * methods and datasets. The lists are scanned by name, and error messages print them. */
typedef struct rb_config_hooks {
    const rb_method *const *(*methods_all)(size_t *count);
    const rb_dataset_kind *const *(*dataset_kinds_all)(size_t *count);
    int (*metric_known)(const char *name, rb_family f);
} rb_config_hooks;

extern const rb_config_hooks rb_config_default_hooks;
int rb_config_load_with(const char *path, const rb_config_hooks *hooks, rb_config *cfg);

/* 1 if `name` is a metric the evaluators of family f produce (f = RB_FAMILY_COUNT: of any
 * family). The default metric_known hook; the metric table (harness/eval.h) is consulted too. */
int rb_metric_known(const char *name, rb_family f);
/* Metric name forms: OP_latency (a row of the latency pass) and NAME/head (a row per (layer,
 * head) slice beside the pooled NAME). */
int rb_metric_is_latency(const char *name);
int rb_metric_is_per_head(const char *name);

/* One unit of work: a dataset (with resolved params) x a method entry (with resolved params) x a
 * backend x a repeat. Seeds derive from the config seed, the dataset/method params and the repeat
 * (not from the cell's position), so adding a cell to a config never changes another's numbers. */
typedef struct rb_cell {
    size_t index;           /* position in the expansion, for progress lines */
    size_t dataset, method; /* indices into cfg->datasets / cfg->methods */
    rb_params dparams, mparams;
    const char *backend; /* points into cfg->backends */
    int repeat;          /* 0 .. repeats-1 */
    uint64_t data_seed, method_seed;
    /* "DATASET|LABEL|MPARAMS|DPARAMS|BACKEND|REPEAT", where MPARAMS and DPARAMS are every param
     * of the method's and the dataset kind's table (defaults included) as "k=v,k=v" in table
     * order and canonical text (rb_params_format(p, 0, ...)), REPEAT a decimal 0-based index.
     * E.g. "sphere128|rtn|bits=2,rotation=rht|dim=128,count=20000,queries=1000|cpu|0".
     * Unique within an expansion, stable across runs: used by --resume and results rows. */
    char key[512];
} rb_cell;

enum { RB_SWEEP_MAX_CELLS = 100000 };

/* Expands the sweeps into cells (*cells malloc'd, free() it). Order: datasets in file order, each
 * dataset's list-valued params (order written, last fastest), then methods in file order, each
 * method's params (order written, last fastest), then backends, then repeats (fastest).
 * data_seed = rb_seed_derive(seed, fnv1a("DATASET|DPARAMS"), repeat) and method_seed =
 * rb_seed_derive(seed, fnv1a("LABEL|MPARAMS|DATASET"), repeat): derived from content, never from
 * the position, so adding a cell never changes another cell's seeds; backends share seeds.
 * RB_ECONFIG when the expansion exceeds RB_SWEEP_MAX_CELLS or two cells get the same key. */
int rb_sweep_expand(const rb_config *cfg, rb_cell **cells, size_t *ncells);

#endif
