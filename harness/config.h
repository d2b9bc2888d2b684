/* The run configuration: a YAML file read with libyaml's document loader, validated against the
 * method and dataset parameter tables, and expanded into cells. */
#ifndef RB_CONFIG_H
#define RB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "methods/method.h"

/* Where a value came from, for `FILE:LINE:COL: message` errors (1-based line and column). */
typedef struct rb_srcpos {
    const char *file;
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
    char *name; /* unique within the config; cells and records refer to it */
    char *kind; /* generator or loader name in the dataset registry */
    rb_sweep_param *params;
    size_t nparams;
    rb_srcpos pos;
} rb_dataset_entry;

typedef struct rb_method_entry {
    char *method; /* registry name */
    char *label;  /* defaults to the method name; unique within the config */
    const rb_method *m;
    rb_sweep_param *params;
    size_t nparams;
    rb_srcpos pos;
} rb_method_entry;

/* A paper claim: the cell(s) matching method/label, dataset and the given params (a subset) must
 * have `metric` within tolerance of `value` (op "~="), or satisfy op "<=", ">=", "<", ">". */
typedef struct rb_expect {
    char *method, *label, *dataset; /* NULL = any */
    char **param_names, **param_values;
    size_t nparams;
    char *backend; /* NULL = any */
    char *metric;
    char op[3];
    double value;
    double rtol, atol; /* for "~="; defaults rtol 0.01, atol 0 */
    char *source;      /* required: where the claim comes from */
    rb_srcpos pos;
} rb_expect;

typedef struct rb_plot {
    char *x, *y,
        *series; /* a param name or "method"/"label"/"dataset" for x and series; y a metric */
    char *title;
    char *dataset, *method; /* optional filters */
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
 * missing file) with rb_error_detail() = "FILE:LINE:COL: message"; *cfg is then empty. */
int rb_config_load(const char *path, rb_config *cfg);
void rb_config_free(rb_config *cfg);

/* One unit of work: a dataset (with resolved params) x a method entry (with resolved params) x a
 * backend x a repeat. Seeds derive from the config seed, the dataset/method params and the repeat
 * (not from the cell's position), so adding a cell to a config never changes another's numbers. */
typedef struct rb_cell {
    size_t index;           /* position in the expansion, for progress lines */
    size_t dataset, method; /* indices into cfg->datasets / cfg->methods */
    rb_params dparams, mparams;
    const char *backend;
    int repeat;
    uint64_t data_seed, method_seed;
    char key[512]; /* "dataset|label|k=v,...|backend|repeat": unique, used by --resume */
} rb_cell;

/* Expands the sweeps (cartesian product of list-valued params, in file order) into cells. */
int rb_sweep_expand(const rb_config *cfg, rb_cell **cells, size_t *ncells);

#endif
