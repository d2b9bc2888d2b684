/* The runner: expands the config into cells, runs each (accuracy pass, then an optional latency
 * pass), appends records as cells finish, grades the expectations and writes the report. */
#include "harness/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "harness/config.h"
#include "harness/context.h"
#include "harness/cpu_wait.h"
#include "harness/eval.h"
#include "harness/latency.h"
#include "harness/limits.h"
#include "harness/record.h"
#include "harness/report.h"
#include "methods/method.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void) sig;
    interrupted = 1;
}

/* The shape hook's answer for one (dataset entry, parameters): a file's header is read once
 * however many cells use it (a sweep may have thousands over one file). */
typedef struct shape_memo {
    long dataset;
    char params[RB_PARAMS_TEXT_MAX];
    int rc; /* RB_OK, or the dataset's error, in msg */
    rb_dataset_shape s;
    char msg[1024];
} shape_memo;

/* Everything one run holds; freed in one place. */
typedef struct run {
    const rb_run_opts *o;
    rb_config cfg;
    rb_cell *cells;
    size_t ncells;
    char results_dir[4096], report_dir[4096];
    rb_results *res;
    json_t *done;        /* cell keys already complete (resume) */
    json_t *done_data;   /* their data (resume): data_key -> dataset_hash */
    json_t *done_limits; /* the limits in the context of the run resumed, or NULL */
    json_t *earlier; /* the resumed run's sessions ({utc, argv, hostname, cpu_model}), or NULL */
    rb_limits limits;
    int have_limits;
    /* the dataset of the previous cell, reused while consecutive cells share it */
    rb_dataset ds;
    long ds_index;
    uint64_t ds_seed;
    char ds_params[RB_PARAMS_TEXT_MAX];
    /* the last dataset that failed to load, and its error: the cells after it that need the
     * same data fail with it at once instead of reading a bad file again */
    long bad_ds_index;
    char bad_ds_params[RB_PARAMS_TEXT_MAX];
    int bad_ds_rc;
    char bad_ds_msg[1024];
    shape_memo *shapes; /* every (dataset entry, parameters) whose shape was asked for */
    size_t nshapes, shapes_cap;
    int stopped_by_cell;      /* the run ended at a failing cell (no --keep-going) */
    int lock_fd;              /* the results directory, flock'ed while this run writes it, or -1 */
    double t0, next_progress; /* the run's start; when a log's next progress line is due */
    /* run here; done by an earlier run (--resume); not --only; failed (--keep-going) */
    size_t ran, skipped, filtered, failed;
    size_t todo; /* the cells this run is to run: selected, not done before */
    /* latency cells on vector data, and the dataset of the first on KV data (where the latency
     * batch key does not apply) */
    size_t lat_vec;
    const char *lat_kv_dataset;
    /* the first dataset with fewer vectors than the latency batch, and that count */
    const char *lat_short_dataset;
    size_t lat_short_rows;
} run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* ---- one cell ---- */

typedef struct cell_sink {
    run *r;
    const rb_cell *cell;
    const rb_method_entry *me;
    const rb_dataset_entry *de;
} cell_sink;

static rb_record base_record(const cell_sink *cs) {
    const rb_cell *c = cs->cell;
    return (rb_record){.dataset = cs->de->name,
                       .dataset_hash = cs->r->ds.hash,
                       .dparams = &c->dparams,
                       .method = cs->me->m->name,
                       .family = rb_family_name(cs->me->m->family),
                       .label = cs->me->label,
                       .method_version = cs->me->m->version,
                       .params = &c->mparams,
                       .backend = c->backend,
                       .seed = c->method_seed,
                       .repeat = c->repeat,
                       .stderr_ = NAN,
                       .items_per_s = NAN,
                       .gbps = NAN,
                       .gflops = NAN,
                       .frac_bw = NAN,
                       .frac_peak = NAN,
                       .cpu_wait = NAN,
                       .cell_key = c->key};
}

static int write_metric(void *ctx, const rb_metric_value *v) {
    cell_sink *cs = ctx;
    char variants[1024];
    rb_kernel_trace(variants, sizeof variants);
    rb_record rec = base_record(cs);
    rec.metric = v->metric->name;
    rec.slice = v->slice;
    rec.unit = v->metric->unit;
    rec.value = v->value;
    rec.stderr_ = v->stderr_;
    rec.n = v->n;
    rec.kernel_variants = variants;
    return rb_results_write(cs->r->res, &rec);
}

/* A dataset's error (a file's: missing, truncated, wrong dtype, NaN, each naming the file) at
 * the entry's place in the config, which says which entry named it. */
static int dataset_error(const run *r, size_t dataset, int rc) {
    const rb_dataset_entry *de = &r->cfg.datasets[dataset];
    return rb_error_set(rc, "%s:%d:%d: dataset '%s': %s", de->pos.file ? de->pos.file : r->cfg.path,
                        de->pos.line, de->pos.col, de->name, rb_error_detail());
}

/* The key of the data a row or cell ran on: dataset name, its parameters (sorted JSON) and the
 * repeat; NULL when the row lacks them or out of memory. */
static char *data_key(const char *dataset, json_t *dparams, long long repeat) {
    char *dp = dataset && dparams ? json_dumps(dparams, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    char *key = NULL;
    if (dp && asprintf(&key, "%s\x1f%s\x1f%lld", dataset, dp, repeat) < 0) key = NULL;
    free(dp);
    return key;
}

/* On --resume: the data each finished cell ran on, from the rows already written. */
static int load_done_data(run *r) {
    char path[4200];
    snprintf(path, sizeof path, "%s/results.jsonl", r->results_dir);
    json_t *rows = NULL, *row;
    if (access(path, F_OK) != 0) return RB_OK;
    int rc = rb_results_read(path, &rows);
    if (rc) return rc;
    r->done_data = json_object();
    size_t i;
    json_array_foreach(rows, i, row) {
        const char *h = rb_row_str(row, "dataset_hash");
        char *key = data_key(rb_row_str(row, "dataset"), json_object_get(row, "dparams"),
                             rb_row_int(row, "repeat", -1));
        if (h && key) json_object_set_new(r->done_data, key, json_string(h));
        free(key);
    }
    json_decref(rows);
    return r->done_data ? RB_OK : rb_error_set(RB_ENOMEM, "resume: out of memory");
}

/* On --resume, the data just loaded for cell c must be those the finished cells of the same
 * dataset, parameters and repeat ran on: a data file rewritten between the sessions would leave
 * one run's rows on two datasets, which nothing downstream could tell apart. */
static int same_data_as_before(run *r, const rb_cell *c) {
    if (!r->done_data || !r->ds.hash[0]) return RB_OK;
    json_t *dp = rb_params_to_json(&c->dparams);
    char *key = data_key(r->cfg.datasets[c->dataset].name, dp, c->repeat);
    json_decref(dp);
    if (!key) return rb_error_set(RB_ENOMEM, "resume: out of memory");
    const char *h = json_string_value(json_object_get(r->done_data, key));
    free(key);
    if (!h || !strcmp(h, r->ds.hash)) return RB_OK;
    rb_error_set(RB_EINVAL,
                 "repeat %d: the data differ from those the finished cells in %s ran on "
                 "(dataset_hash %.12s now, %.12s then): a data file changed since; resume with "
                 "the same data, or run into a new directory",
                 c->repeat, r->results_dir, r->ds.hash, h);
    return dataset_error(r, c->dataset, RB_EINVAL);
}

static int load_dataset(run *r, const rb_cell *c) {
    char text[RB_PARAMS_TEXT_MAX];
    rb_params_format(&c->dparams, 0, text, sizeof text);
    if (r->ds_index == (long) c->dataset && r->ds_seed == c->data_seed &&
        strcmp(text, r->ds_params) == 0)
        return RB_OK;
    /* Not keyed on the seed: it changes with every repeat, loaders ignore it, and a generator
     * fails on its parameters (memory, ranges), not on its draw. */
    if (r->bad_ds_index == (long) c->dataset && strcmp(text, r->bad_ds_params) == 0)
        return rb_error_set(r->bad_ds_rc, "%s", r->bad_ds_msg);
    rb_dataset_free(&r->ds);
    r->ds_index = -1;
    const rb_dataset_kind *k = rb_dataset_kind_find(r->cfg.datasets[c->dataset].kind);
    RB_ASSERT(k != NULL); /* the config loader checked the kind */
    int rc = k->load(&c->dparams, c->data_seed, &r->ds);
    if (rc)
        dataset_error(r, c->dataset, rc);
    else if ((rc = same_data_as_before(r, c)))
        rb_dataset_free(&r->ds);
    if (rc) { /* every later cell on it says so too */
        r->bad_ds_index = (long) c->dataset;
        r->bad_ds_rc = rc;
        snprintf(r->bad_ds_params, sizeof r->bad_ds_params, "%s", text);
        snprintf(r->bad_ds_msg, sizeof r->bad_ds_msg, "%s", rb_error_detail());
        return rc;
    }
    r->ds_index = (long) c->dataset;
    r->ds_seed = c->data_seed;
    snprintf(r->ds_params, sizeof r->ds_params, "%s", text);
    return RB_OK;
}

/* A recall@K of a codec cell on `rows` base vectors needs K <= rows. The config loader checks the
 * sizes a dataset's `count` fixes; a file's size is known from its header (the preflight) or its
 * data, so the error names the metric's place in the config, with the cell key. */
static int check_recall_sizes(const run *r, const rb_cell *c, size_t rows) {
    for (size_t i = 0; i < r->cfg.nmetrics; i++) {
        size_t k = rb_metric_recall_k(r->cfg.metrics[i]);
        if (k <= rows || !rb_metric_find(r->cfg.metrics[i])) continue;
        const rb_srcpos *w = r->cfg.metric_pos ? &r->cfg.metric_pos[i] : NULL;
        return rb_error_set(RB_ECONFIG,
                            "%s:%d:%d: metric '%s' needs K <= the base size, but dataset '%s' "
                            "has %zu base vectors [cell %s]",
                            w ? w->file : r->cfg.path, w ? w->line : 0, w ? w->col : 0,
                            r->cfg.metrics[i], r->cfg.datasets[c->dataset].name, rows, c->key);
    }
    return RB_OK;
}

/* A cell's failure, at the method entry that made the cell (the cell key, last, for --only). */
static int cell_error(const run *r, const rb_cell *c, int rc) {
    const rb_method_entry *me = &r->cfg.methods[c->method];
    return rb_error_set(rc, "%s:%d:%d: method '%s' (label '%s') on dataset '%s': %s [cell %s]",
                        me->pos.file ? me->pos.file : r->cfg.path, me->pos.line, me->pos.col,
                        me->method, me->label, r->cfg.datasets[c->dataset].name, rb_error_detail(),
                        c->key);
}

/* What the cell's dataset kind says of its data before they are drawn or read (the shape hook:
 * a generator's parameters, a file's header), asked once per (dataset entry, parameters). A
 * hook's error is the dataset's, at the entry's place in the config. */
static int data_shape(run *r, const rb_cell *c, rb_dataset_shape *out) {
    char text[RB_PARAMS_TEXT_MAX];
    rb_params_format(&c->dparams, 0, text, sizeof text);
    shape_memo *m = NULL;
    for (size_t i = 0; i < r->nshapes && !m; i++)
        if (r->shapes[i].dataset == (long) c->dataset && !strcmp(r->shapes[i].params, text))
            m = &r->shapes[i];
    if (!m && r->nshapes == r->shapes_cap) {
        size_t cap = r->shapes_cap ? 2 * r->shapes_cap : 8;
        shape_memo *grown = realloc(r->shapes, cap * sizeof *grown);
        if (!grown) return rb_error_set(RB_ENOMEM, "no memory for the datasets' shapes");
        r->shapes = grown;
        r->shapes_cap = cap;
    }
    if (!m) {
        m = &r->shapes[r->nshapes++];
        memset(m, 0, sizeof *m);
        m->dataset = (long) c->dataset;
        m->s.queries = RB_SHAPE_UNKNOWN; /* a hook says 0 for none */
        snprintf(m->params, sizeof m->params, "%s", text);
        const rb_dataset_kind *k = rb_dataset_kind_find(r->cfg.datasets[c->dataset].kind);
        RB_ASSERT(k != NULL); /* the config loader checked the kind */
        if (k->shape && (m->rc = k->shape(&c->dparams, &m->s))) {
            dataset_error(r, c->dataset, m->rc);
            snprintf(m->msg, sizeof m->msg, "%s", rb_error_detail());
        }
    }
    if (m->rc) return rb_error_set(m->rc, "%s", m->msg);
    *out = m->s;
    return RB_OK;
}

/* A cell checked before its data are loaded: its dataset's shape (data_shape: a file that cannot
 * be read, or whose header is bad, fails every cell on it, whatever the method), then, where the
 * shape tells, what the cell's evaluator and latency pass would refuse, through their own
 * functions: data of another family (a codec on a sparse signal, a sparse method on vectors or a
 * KV cache), a KV method on vectors, the method's rules (rb_codec_ops.check, rb_kv_ops.check), a
 * recall@K above the base size, metrics or a timed inner_product that need queries the data lack.
 * RB_OK, or the error with the cell key (a dataset's error at the dataset entry, a recall's at the
 * metric, the others at the method entry, by cell_error). */
static int check_cell(run *r, const rb_cell *c) {
    rb_dataset_shape s;
    int rc = data_shape(r, c, &s);
    if (rc) return rb_error_set(rc, "%s [cell %s]", rb_error_detail(), c->key);
    const rb_method *m = r->cfg.methods[c->method].m;
    /* Every kind's shape hook says whether its data are a signal; a kind without one says
     * nothing, and its cells are left to the evaluator. */
    int told = rb_dataset_kind_find(r->cfg.datasets[c->dataset].kind)->shape != NULL;
    if (m->family == RB_FAMILY_SPARSE && told && !s.signal)
        return cell_error(r, c, rb_eval_sparse_no_signal(m));
    /* Every hook that gives vectors (a 2-d x) says their dim, and every one that gives a KV
     * cache its heads: data with neither (a 1-d or 3-d x, a layer's W) have nothing to code. */
    if (m->family == RB_FAMILY_CODEC && (s.signal || (told && !s.dim && !s.heads)))
        return cell_error(r, c, m->kv ? rb_eval_kv_no_cache(m) : rb_eval_codec_no_vectors(m));
    if (m->family != RB_FAMILY_CODEC) return RB_OK;
    const char *const *metrics = (const char *const *) r->cfg.metrics;
    size_t nm = r->cfg.nmetrics;
    /* Routed as the evaluator routes the cell: a KV method, or a vector codec on K and V. */
    int kv = m->kv || (!s.dim && s.heads);
    if (m->kv && s.dim && !s.heads) {
        rc = rb_eval_kv_no_cache(m);
    } else if (m->kv && m->kv->check && s.heads) {
        rb_kv_geom g = {.heads = s.heads,
                        .head_dim = s.head_dim,
                        .capacity = s.tokens,
                        .rope_base = s.rope_base,
                        .calib_tokens = s.calib_tokens};
        rc = m->kv->check(&c->mparams, &g);
    } else if (m->codec && m->codec->check && (s.dim || s.head_dim)) {
        /* On KV data a vector codec codes each head_dim row of K and V. */
        rc = m->codec->check(&c->mparams, s.dim ? s.dim : s.head_dim);
    }
    if (rc) return cell_error(r, c, rc);
    if (!kv && s.rows && (rc = check_recall_sizes(r, c, s.rows))) return rc;
    if (s.queries == RB_SHAPE_UNKNOWN || !(kv ? s.heads : s.dim)) return RB_OK;
    rc = kv ? rb_eval_kv_check_queries(m, metrics, nm, s.queries)
            : rb_eval_codec_check_queries(m, metrics, nm, s.dim, s.queries != 0);
    /* The latency pass runs after the accuracy pass, so its error comes second. */
    if (!rc && r->cfg.latency.enabled && !r->o->quick)
        rc = rb_latency_check_queries(&r->cfg, kv, s.dim, r->cfg.datasets[c->dataset].name,
                                      s.queries != 0);
    return rc ? cell_error(r, c, rc) : RB_OK;
}

static int run_cell(run *r, const rb_cell *c) {
    const rb_method_entry *me = &r->cfg.methods[c->method];
    cell_sink cs = {r, c, me, &r->cfg.datasets[c->dataset]};
    /* The preflight's check again, before the data are loaded: with --keep-going the cells it
     * found impossible fail here, at no cost (the shapes are remembered, no header is read
     * again). */
    int rc = check_cell(r, c);
    if (rc) return rc;
    rc = load_dataset(r, c);
    if (rc) return rb_error_set(rc, "%s [cell %s]", rb_error_detail(), c->key);
    const char **metrics = (const char **) r->cfg.metrics;
    rb_eval_fn eval = rb_family_evaluator(me->m->family);
    if (!eval)
        return rb_error_set(RB_ENOTSUP, "method '%s': the %s family has no evaluator yet",
                            me->m->name, rb_family_name(me->m->family));
    /* The base size again where the preflight could not read it. */
    const rb_tensor *x = rb_dataset_tensor(&r->ds, "x");
    if (me->m->family == RB_FAMILY_CODEC && !me->m->kv && x && x->ndim == 2 &&
        (rc = check_recall_sizes(r, c, x->shape[0])))
        return rc;
    /* The cell's backend routes the kernel ops that have a CUDA variant to the GPU
     * (kernels/cuda_offload.h); the variants that ran are in every record. Every return from
     * here on goes back to the CPU first, so that the next cell starts from it. */
    if ((rc = rb_backend_use(strcmp(c->backend, "cuda") ? RB_BACKEND_CPU : RB_BACKEND_CUDA)))
        return cell_error(r, c, rc);
    rb_kernel_trace_reset();
    rc = eval(me->m, &c->mparams, &r->ds, c->method_seed, metrics, r->cfg.nmetrics, write_metric,
              &cs);
    /* The latency pass runs after, never inside, the accuracy pass, with a fresh trace. */
    if (!rc && r->cfg.latency.enabled && !r->o->quick && me->m->family == RB_FAMILY_CODEC) {
        rb_kernel_trace_reset();
        if (!rb_latency_is_kv(me->m, &r->ds)) {
            r->lat_vec++;
            if (x && x->ndim == 2 && r->cfg.latency.batch > x->shape[0] && !r->lat_short_dataset) {
                r->lat_short_dataset = cs.de->name;
                r->lat_short_rows = x->shape[0];
            }
        } else if (!r->lat_kv_dataset) {
            r->lat_kv_dataset = cs.de->name;
        }
        rb_latency_cell lc = {.cfg = &r->cfg,
                              .limit = r->have_limits ? rb_limits_find(&r->limits, rb_threads_get())
                                                      : NULL,
                              .ds = &r->ds,
                              .m = me->m,
                              .mparams = &c->mparams,
                              .seed = c->method_seed,
                              .dataset = cs.de->name,
                              .base = base_record(&cs),
                              .res = r->res};
        rc = rb_latency_run(&lc);
    }
    rb_backend_use(RB_BACKEND_CPU);
    if (rc) return cell_error(r, c, rc);
    return rb_results_end_cell(r->res, c->key);
}

/* One warning for the latency rows (all of the results, resumed ones too) whose threads waited
 * for a CPU beyond RB_CPU_WAIT_BUSY while they were timed: what they measured is partly the other
 * users of the machine, and `compare` will not grade them. */
static void warn_cpu_wait(json_t *rows, FILE *f) {
    size_t i, n = 0, busy = 0;
    double worst = 0;
    json_t *row;
    json_array_foreach(rows, i, row) {
        double w = rb_row_double(row, "cpu_wait");
        if (!json_array_size(json_object_get(row, "samples"))) continue; /* latency rows */
        n++;
        if (!(w > RB_CPU_WAIT_BUSY)) continue;
        busy++;
        worst = fmax(worst, w);
    }
    if (busy)
        fprintf(f,
                "warning: %zu of %zu latency rows were timed on a busy machine: their threads "
                "waited for a CPU up to %.0f%% of the time (over %.0f%%, cpu_wait in the "
                "results); rotabench compare does not grade them\n",
                busy, n, 100 * worst, 100 * RB_CPU_WAIT_BUSY);
}

/* ---- expectations ---- */

/* Canonical text of a JSON parameter value, through the parameter's own table entry so that 2,
 * 2.0 and "2" compare as the table would parse them. */
static int canon_json(const rb_param_def *defs, size_t n, const char *name, json_t *v, char *out) {
    char text[RB_PARAM_TEXT_MAX];
    if (json_is_integer(v))
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(text, sizeof text, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(text, sizeof text, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_string(v))
        snprintf(text, sizeof text, "%s", json_string_value(v));
    else
        return -1;
    rb_params p;
    if (rb_params_init(&p, defs, n) || rb_params_set(&p, name, text)) return -1;
    snprintf(out, RB_PARAM_TEXT_MAX, "%s", rb_params_str(&p, name));
    return 0;
}

static int row_matches(json_t *row, const rb_expect *e, const char *want_metric,
                       const rb_method *m) {
    const char *label = json_string_value(json_object_get(row, "label"));
    const char *method = json_string_value(json_object_get(row, "method"));
    const char *dataset = json_string_value(json_object_get(row, "dataset"));
    const char *metric = json_string_value(json_object_get(row, "metric"));
    const char *backend = json_string_value(json_object_get(row, "backend"));
    if (!label || !method || !dataset || !metric || strcmp(metric, want_metric)) return 0;
    if (e->label && strcmp(e->label, label)) return 0;
    if (e->method && strcmp(e->method, method)) return 0;
    if (e->dataset && strcmp(e->dataset, dataset)) return 0;
    if (e->backend && (!backend || strcmp(e->backend, backend))) return 0;
    json_t *params = json_object_get(row, "params");
    for (size_t i = 0; i < e->nparams; i++) {
        char want[RB_PARAM_TEXT_MAX], got[RB_PARAM_TEXT_MAX];
        json_t *v = json_object_get(params, e->param_names[i]);
        json_t *w = json_string(e->param_values[i]);
        int ok = v && canon_json(m->params, m->nparams, e->param_names[i], v, got) == 0 &&
                 canon_json(m->params, m->nparams, e->param_names[i], w, want) == 0 &&
                 strcmp(got, want) == 0;
        json_decref(w);
        if (!ok) return 0;
    }
    return 1;
}

static const rb_method *expect_method(const rb_config *cfg, const rb_expect *e) {
    for (size_t i = 0; i < cfg->nmethods; i++)
        if ((e->label && !strcmp(e->label, cfg->methods[i].label)) ||
            (!e->label && e->method && !strcmp(e->method, cfg->methods[i].method)))
            return cfg->methods[i].m;
    return NULL;
}

static int expect_holds(const rb_expect *e, double v, double target) {
    if (isnan(v) || isnan(target)) return 0;
    if (!strcmp(e->op, "<=")) return v <= target;
    if (!strcmp(e->op, ">=")) return v >= target;
    if (!strcmp(e->op, "<")) return v < target;
    if (!strcmp(e->op, ">")) return v > target;
    double tol = fmax(e->atol, e->rtol * fabs(target));
    return fabs(v - target) <= tol;
}

/* The mean of `metric` over the rows (repeats) of the cell a selector picks; *n rows. */
static double selected_mean(const rb_config *cfg, json_t *rows, const rb_expect *sel,
                            const char *metric, size_t *n) {
    const rb_method *m = expect_method(cfg, sel);
    double sum = 0;
    size_t k;
    json_t *row;
    *n = 0;
    json_array_foreach(rows, k, row) if (m && row_matches(row, sel, metric, m)) {
        json_t *v = json_object_get(row, "value");
        sum += json_is_number(v) ? json_number_value(v) : NAN;
        (*n)++;
    }
    return *n ? sum / (double) *n : NAN;
}

/* "label p=v, ..." naming a selector's cell in expect.jsonl and messages. */
static void selector_text(const rb_expect *sel, char *out, size_t size) {
    size_t used = (size_t) snprintf(out, size, "%s", sel->label ? sel->label : sel->method);
    for (size_t i = 0; i < sel->nparams && used < size; i++)
        used += (size_t) snprintf(out + used, size - used, "%s%s=%s", i ? ", " : " ",
                                  sel->param_names[i], sel->param_values[i]);
    if (sel->dataset && used < size)
        used += (size_t) snprintf(out + used, size - used, " on %s", sel->dataset);
    if (sel->backend && used < size) snprintf(out + used, size - used, " (%s)", sel->backend);
}

/* Grades every expect against the rows on disk (so resumed cells count too); writes
 * expect.jsonl; *failed = number not PASS. */
/* The parameters an expectation names, typed by its method's parameter table as records type
 * them (rb_params_to_json: "bits": 8, not "8"); a name the table does not parse stays text. */
static json_t *expect_params_json(const rb_config *cfg, const rb_expect *e) {
    const rb_method *m = expect_method(cfg, e);
    json_t *typed = NULL, *out = json_object();
    rb_params p;
    if (m && rb_params_init(&p, m->params, m->nparams) == 0) {
        for (size_t i = 0; i < e->nparams; i++)
            rb_params_set(&p, e->param_names[i], e->param_values[i]);
        typed = rb_params_to_json(&p);
    }
    for (size_t i = 0; out && i < e->nparams; i++) {
        json_t *v = json_object_get(typed, e->param_names[i]);
        json_object_set_new(out, e->param_names[i],
                            v ? json_incref(v) : json_string(e->param_values[i]));
    }
    json_decref(typed);
    return out;
}

static int grade_expectations(run *r, size_t *passed, size_t *failed, size_t *missing) {
    *passed = *failed = *missing = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/results.jsonl", r->results_dir);
    json_t *rows = NULL;
    int rc = rb_results_read(path, &rows);
    if (rc) return rc;
    /* Written beside and renamed into place: a kill while grading leaves the old file or none,
     * never half of one (the report reads it). */
    char tmp[4300];
    snprintf(path, sizeof path, "%s/expect.jsonl", r->results_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        json_decref(rows);
        return rb_error_set(RB_EIO, "cannot write %s: %s", tmp, strerror(errno));
    }
    for (size_t i = 0; i < r->cfg.nexpects; i++) {
        const rb_expect *e = &r->cfg.expects[i];
        size_t n, nref = 1;
        double measured = selected_mean(&r->cfg, rows, e, e->metric, &n);
        double target = e->value;
        char than[256] = "";
        if (e->than) {
            target = e->factor * selected_mean(&r->cfg, rows, e->than, e->metric, &nref);
            selector_text(e->than, than, sizeof than);
        }
        const char *status = !n || !nref                         ? "MISSING"
                             : expect_holds(e, measured, target) ? "PASS"
                                                                 : "FAIL";
        if (!strcmp(status, "PASS"))
            (*passed)++;
        else if (!strcmp(status, "FAIL"))
            (*failed)++;
        else
            (*missing)++;
        json_t *params = expect_params_json(&r->cfg, e);
        json_t *out = json_pack(
            "{s:s?, s:s?, s:s?, s:o, s:s, s:s, s:o, s:o, s:i, s:s, s:s, s:i}", "method", e->method,
            "label", e->label, "dataset", e->dataset, "params", params, "metric", e->metric, "op",
            e->op, "value", rb_json_real_or_null(measured), "target", rb_json_real_or_null(target),
            "n", (int) n, "status", status, "source", e->source, "line", e->pos.line);
        if (out && !strcmp(e->op, "~=")) { /* the one-sided ops use no tolerance */
            json_object_set_new(out, "rtol", json_real(e->rtol));
            json_object_set_new(out, "atol", json_real(e->atol));
        }
        if (out && e->than) {
            json_object_set_new(out, "than", json_string(than));
            json_object_set_new(out, "factor", json_real(e->factor));
        }
        char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
        if (text) fprintf(f, "%s\n", text);
        free(text);
        json_decref(out);
        if (!strcmp(status, "FAIL"))
            fprintf(stderr, "%s:%d: expectation FAIL: %s %s %s %g%s%s%s, measured %g (%s)\n",
                    e->pos.file, e->pos.line, e->label ? e->label : e->method, e->metric, e->op,
                    target, e->than ? " (" : "", than, e->than ? ")" : "", measured, e->source);
        else if (!strcmp(status, "MISSING"))
            fprintf(stderr, "%s:%d: expectation MISSING: %s %s: no %s row%s%s in this run%s (%s)\n",
                    e->pos.file, e->pos.line, e->label ? e->label : e->method, e->metric, e->metric,
                    n ? " for the reference " : " for it", n ? than : "",
                    r->o->quick && rb_metric_is_latency(e->metric)
                        ? ": --quick skips the latency pass"
                        : "",
                    e->source);
    }
    json_decref(rows);
    if (fclose(f)) {
        remove(tmp);
        return rb_error_set(RB_EIO, "cannot write %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return rb_error_set(RB_EIO, "%s: rename failed: %s", path, strerror(errno));
    }
    return RB_OK;
}

/* ---- the run ---- */

static int cell_selected(const run *r, const rb_cell *c) {
    const char *only = r->o->only;
    if (!only) return 1;
    const rb_method_entry *me = &r->cfg.methods[c->method];
    return !fnmatch(only, me->label, 0) || !fnmatch(only, me->method, 0) ||
           !fnmatch(only, c->key, 0);
}

/* Warns about each metric of the config's list that no row of a whole run carries: known to a
 * family, but no cell here computes it (a KV metric in a config without KV data). Per-head rows,
 * NAME/..., count for NAME. */
static size_t warn_unproduced(const rb_config *cfg, json_t *rows, FILE *f) {
    size_t warned = 0;
    for (size_t m = 0; m < cfg->nmetrics; m++) {
        const char *want = cfg->metrics[m];
        size_t len = strlen(want), i;
        json_t *row;
        int seen = 0;
        json_array_foreach(rows, i, row) {
            const char *got = rb_row_str(row, "metric");
            if (got && !strncmp(got, want, len) && (got[len] == '\0' || got[len] == '/')) {
                seen = 1;
                break;
            }
        }
        if (seen) continue;
        fprintf(f,
                "warning: metric '%s' (metrics:) gave no row in this run: no cell computes it "
                "(KV metrics need KV data: kv_cache, kv_npy or kv_safetensors datasets; vector "
                "metrics need vector data; sparse metrics a sparse method)\n",
                want);
        warned++;
    }
    return warned;
}

/* Every selected cell checked before the first runs (check_cell), so that a file that cannot be
 * read or whose header is bad, or a combination a method cannot take, is an error at once, not
 * after hours of the cells before it. Without --keep-going any is an error: each distinct one
 * printed once, with its count (a bad file once per dataset entry, with the cells it fails), and
 * nothing is written. With it the run goes on, and run_cell's own check_cell records those cells
 * as failed. */
static int preflight(run *r) {
    json_t *seen = json_object(); /* message without the cell key -> count, in order */
    if (!seen) return rb_error_set(RB_ENOMEM, "preflight: out of memory");
    size_t bad = 0;
    int first_rc = RB_OK;
    for (size_t i = 0; i < r->ncells; i++) {
        const rb_cell *c = &r->cells[i];
        int rc;
        /* a cell done before (--resume) is not run again, so its data need not be there */
        if (!cell_selected(r, c) || (r->done && json_object_get(r->done, c->key)) ||
            !(rc = check_cell(r, c)))
            continue;
        bad++;
        if (!first_rc) first_rc = rc;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", rb_error_detail());
        char *key = strstr(msg, " [cell ");
        if (key) *key = '\0';
        json_t *n = json_object_get(seen, msg);
        json_object_set_new(seen, msg, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    const char *what = bad == 1 ? "cell cannot run with its" : "cells cannot run with their";
    if (!bad || (r->o->keep_going && !r->o->dry_run)) { /* a dry run shows every error */
        json_decref(seen);
        if (bad)
            fprintf(stderr,
                    "rotabench run: %zu %s data (checked before the first cell); they will be "
                    "recorded as failed (--keep-going)\n",
                    bad, what);
        return RB_OK;
    }
    const char *msg;
    json_t *n;
    json_object_foreach(seen, msg, n) {
        long long k = json_integer_value(n);
        fprintf(stderr, "rotabench run: %s (%lld cell%s)\n", msg, k, k == 1 ? "" : "s");
    }
    json_decref(seen);
    return rb_error_set(first_rc,
                        "%zu %s data (above); nothing was run (fix the config, or --keep-going "
                        "runs the others)",
                        bad, what);
}

/* --only that selects nothing is an error, not an empty green run (a typo in a CI job). */
static int check_only(const run *r) {
    if (!r->o->only) return RB_OK;
    for (size_t i = 0; i < r->ncells; i++)
        if (cell_selected(r, &r->cells[i])) return RB_OK;
    return rb_error_set(RB_ECONFIG,
                        "--only '%s' matches none of the %zu cells (it is a glob on a cell's "
                        "label, method or key, e.g. 'eden*' or '*bits=2*'; the keys are in "
                        "results.jsonl's cell_key)",
                        r->o->only, r->ncells);
}

/* Before cell i (i = ncells: the end). On a terminal one line, redrawn in place; otherwise (a
 * CI log, where a run that prints nothing for long may be killed as hung) a line of its own every
 * progress_every seconds, and none at the end (the summary follows). */
static void progress(run *r, size_t i) {
    int tty = isatty(STDERR_FILENO);
    double el = now_s() - r->t0;
    if (!tty && (i >= r->ncells || r->o->progress_every < 0 || el < r->next_progress)) return;
    if (!tty) r->next_progress = el + r->o->progress_every;
    /* counted among the cells this run runs (not those --only leaves out or --resume skips) */
    size_t tried = r->ran + r->failed;
    fprintf(stderr, "%s[%zu/%zu] %.0fs elapsed", tty ? "\r\033[K" : "rotabench run: ", tried,
            r->todo, el);
    if (tried) fprintf(stderr, ", ~%.0fs left", el / (double) tried * (double) (r->todo - tried));
    if (r->failed) fprintf(stderr, ", %zu failed", r->failed);
    fprintf(stderr, "  %s", i < r->ncells ? r->cells[i].key : "");
    if (!tty || i >= r->ncells) fputc('\n', stderr);
}

/* s as one word of a shell command line: as it is when it holds only characters no shell
 * treats specially, else in single quotes. */
static void shell_word(FILE *f, const char *s) {
    if (*s &&
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=,:+-@%") ==
            strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++) fputs(*s == '\'' ? "'\\''" : (char[2]){*s, 0}, f); /* close, \', reopen */
    fputc('\'', f);
}

/* The command that continues this run with the options it was started with (the ones that
 * decide which cells run and how), plus -k when keep_going: allocated (any path length), NULL
 * only without memory. */
static char *resume_command(const run *r, int keep_going) {
    const rb_run_opts *o = r->o;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("rotabench run ", f);
    shell_word(f, o->config);
    fputs(" -o ", f);
    shell_word(f, r->results_dir);
    fputs(" --resume", f);
    if (o->quick) fputs(" --quick", f);
    if (o->only) {
        fputs(" --only ", f);
        shell_word(f, o->only);
    }
    if (o->backend) fprintf(f, " --backend %s", o->backend);
    if (o->threads) fprintf(f, " --threads %d", o->threads);
    if (keep_going) fputs(" -k", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* A cell failed: its marker goes on disk (the report lists it, --resume runs it again). Returns
 * the error that ends the run: the cell's, or without --keep-going nothing, after saying so on
 * stderr; a marker that cannot be written (a full disk) ends it either way. */
static int cell_failed(run *r, const rb_cell *c, int rc) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", rb_error_detail()[0] ? rb_error_detail() : rb_strerror(rc));
    int wrc = rb_results_fail_cell(r->res, c->key, msg);
    if (wrc) return wrc;
    if (!r->o->keep_going) {
        r->stopped_by_cell = 1;
        return rb_error_set(rc, "%s", msg);
    }
    r->failed++;
    fprintf(stderr, "%srotabench run: %s\nrotabench run: continuing (--keep-going)\n",
            isatty(STDERR_FILENO) ? "\r\033[K" : "", msg);
    return RB_OK;
}

static int resolve_backends(run *r) {
    for (size_t i = 0; i < r->ncells; i++) {
        const char *b = r->o->backend ? r->o->backend : r->cells[i].backend;
        int count = 0;
        int cuda_ok = rb_cuda_device_count(&count) == RB_OK && count > 0;
        if (!strcmp(b, "auto")) b = cuda_ok ? "cuda" : "cpu";
        if (!strcmp(b, "cuda")) {
            /* Asked for by name: no device is an error, never a silent CPU run. */
            if (!cuda_ok) return rb_error_set(RB_ENODEV, "backend cuda: %s", rb_error_detail());
            r->cells[i].backend = "cuda";
            continue;
        }
        if (strcmp(b, "cpu"))
            return rb_error_set(RB_EINVAL, "backend '%s' is not cpu, cuda or auto", b);
        r->cells[i].backend = "cpu";
    }
    return RB_OK;
}

static json_t *seeds_json(const run *r) {
    /* Seeds are full 64-bit values: decimal strings, since JSON integers are signed here. */
    json_t *a = json_array();
    for (size_t i = 0; i < r->ncells; i++) {
        char ds[24], ms[24];
        snprintf(ds, sizeof ds, "%" PRIu64, r->cells[i].data_seed);
        snprintf(ms, sizeof ms, "%" PRIu64, r->cells[i].method_seed);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "cell", r->cells[i].key, "data_seed",
                                           ds, "method_seed", ms));
    }
    return json_pack("{s:I, s:o}", "base", (json_int_t) r->cfg.seed, "cells", a);
}

static json_t *limits_json(const run *r) {
    if (!r->have_limits) return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < r->limits.count; i++) {
        const rb_limit *l = &r->limits.rows[i];
        json_t *row = rb_limit_json(l);
        json_object_set_new(row, "copy_bytes", json_integer((json_int_t) r->limits.copy_bytes));
        json_array_append_new(a, row);
    }
    return a;
}

/* A resumed run must have the same resolved config (sha256) as the run it continues: cell keys
 * do not carry the base seed, metrics or latency settings, so a changed config would otherwise
 * mix two runs' numbers under one context. */
static int check_resume(run *r) {
    char path[4200];
    snprintf(path, sizeof path, "%s/context.json", r->results_dir);
    json_error_t jerr;
    json_t *old = json_load_file(path, 0, &jerr);
    if (!old) {
        if (access(path, F_OK) == 0)
            return rb_error_set(RB_EFORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
        /* Nothing was run there yet: a plain run. Results without the context a run writes
         * before its first cell came from elsewhere (a copy, a deleted file): which config made
         * them cannot be told, and their cells would count as done. */
        char res[4200];
        snprintf(res, sizeof res, "%s/results.jsonl", r->results_dir);
        struct stat st;
        if (stat(res, &st) == 0 && st.st_size > 0)
            return rb_error_set(RB_EINVAL,
                                "--resume: %s has results but no context.json, so the config "
                                "that made them is unknown; resume needs the directory a run "
                                "wrote (or move results.jsonl away)",
                                r->results_dir);
        return RB_OK;
    }
    const char *sha =
        json_string_value(json_object_get(json_object_get(old, "run"), "config_sha256"));
    int same = sha && strcmp(sha, r->cfg.sha256) == 0;
    char was[65] = "";
    if (sha) snprintf(was, sizeof was, "%s", sha);
    json_t *host = json_object_get(old, "host"), *oldrun = json_object_get(old, "run");
    json_t *lim = json_object_get(host, "limits");
    if (json_is_array(lim)) r->done_limits = json_incref(lim);
    /* context.json is rewritten for this session: the sessions before it stay on record. */
    json_t *prior = json_object_get(oldrun, "earlier_sessions");
    r->earlier = json_is_array(prior) ? json_deep_copy(prior) : json_array();
    json_array_append_new(r->earlier, json_pack("{s:O?, s:O?, s:O?, s:O?}", "utc",
                                                json_object_get(oldrun, "utc"), "argv",
                                                json_object_get(oldrun, "argv"), "hostname",
                                                json_object_get(host, "hostname"), "cpu_model",
                                                json_object_get(host, "cpu_model")));
    /* --quick is not in the config: recorded beside it (absent in runs from before it was). */
    json_t *quick = json_object_get(json_object_get(old, "run"), "quick");
    int was_quick = json_is_true(quick), quick_differs = json_is_boolean(quick) &&
                                                         r->cfg.latency.enabled &&
                                                         was_quick != !!r->o->quick;
    json_decref(old);
    if (!same)
        return rb_error_set(RB_ECONFIG,
                            "--resume: %s was run with another config (sha256 %.12s, now %.12s); "
                            "resume with the same config or write to a new directory",
                            r->results_dir, was[0] ? was : "?", r->cfg.sha256);
    /* Half the cells with latency rows and half without would make a report whose latency
     * tables silently cover some cells. */
    if (quick_differs)
        return rb_error_set(RB_ECONFIG,
                            "--resume: %s was run %s --quick, so its finished cells %s latency "
                            "rows; resume %s --quick, or write to a new directory",
                            r->results_dir, was_quick ? "with" : "without",
                            was_quick ? "have no" : "have their", was_quick ? "with" : "without");
    return RB_OK;
}

/* A resumed run takes the limits the run it continues measured at the same thread count, so
 * that every latency row's fraction is of one limit (the report shows one). Returns 1 when it
 * found them. */
static int reuse_limits(run *r, int threads) {
    size_t i;
    json_t *l;
    json_array_foreach(r->done_limits, i, l) {
        double copy = rb_row_double(l, "copy_gbps"), peak = rb_row_double(l, "peak_add_gflops");
        if (rb_row_int(l, "threads", 0) != threads || !(copy > 0) || !(peak > 0)) continue;
        memset(&r->limits, 0, sizeof r->limits);
        r->limits.count = 1;
        r->limits.copy_bytes = (size_t) rb_row_int(l, "copy_bytes", 0);
        r->limits.rows[0] =
            (rb_limit){.threads = threads, .copy_gbps = copy, .peak_add_gflops = peak};
        fprintf(stderr,
                "rotabench run: --resume: fractions of the limits the resumed run measured at "
                "%d threads (copy %.1f GB/s, fp32 add %.1f GFLOP/s)\n",
                threads, copy, peak);
        return 1;
    }
    return 0;
}

/* One run at a time writes a results directory: two appending to one results.jsonl interleave
 * their lines, and one's --resume cuts the other's line in progress as a torn tail, which loses
 * cells and leaves invalid JSON. An flock on the directory, held until rb_run returns; the kernel
 * drops it when the process ends however it ends, so a killed run leaves no stale lock. */
static int lock_results_dir(run *r) {
    int fd = open(r->results_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return rb_error_set(RB_EIO, "%s: cannot open: %s", r->results_dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return rb_error_set(RB_ECONFIG,
                                "%s: another rotabench run is writing there now; wait for it to "
                                "end (--resume then continues it) or write to another directory",
                                r->results_dir);
        return rb_error_set(RB_EIO, "%s: cannot lock: %s", r->results_dir, strerror(e));
    }
    r->lock_fd = fd;
    return RB_OK;
}

static int setup_dirs(run *r) {
    const rb_run_opts *o = r->o;
    if (o->out_dir) {
        snprintf(r->results_dir, sizeof r->results_dir, "%s", o->out_dir);
        snprintf(r->report_dir, sizeof r->report_dir, "%s", o->out_dir);
    } else {
        char id[256];
        rb_run_id(r->cfg.name, id, sizeof id);
        snprintf(r->results_dir, sizeof r->results_dir, "results/%s", id);
        snprintf(r->report_dir, sizeof r->report_dir, "reports/%s", id);
    }
    /* A directory that holds a run is continued only on request: appending a second run's rows
     * to the first's would mix them in one results file under the second's context. */
    char path[4200];
    snprintf(path, sizeof path, "%s/results.jsonl", r->results_dir);
    if (!o->resume && access(path, F_OK) == 0)
        return rb_error_set(RB_ECONFIG,
                            "%s already holds a run (results.jsonl): continue it with --resume, "
                            "or write to a new directory (-o), or remove it first",
                            r->results_dir);
    if (o->dry_run) return RB_OK;
    int rc = rb_mkdir_p(r->results_dir);
    if (!rc) rc = rb_mkdir_p(r->report_dir);
    return rc;
}

size_t rb_run_warn_rope(const rb_config *cfg, const rb_cell *cells, size_t ncells, FILE *f) {
    size_t warned = 0, nd = cfg->ndatasets, nm = cfg->nmethods;
    unsigned char *seen = calloc(nd * nm + 1, 1); /* (dataset, method) pairs already named */
    for (size_t i = 0; i < ncells; i++) {
        const rb_cell *c = &cells[i];
        const rb_method_entry *me = &cfg->methods[c->method];
        const rb_dataset_entry *de = &cfg->datasets[c->dataset];
        if (!me->m->kv || !me->m->kv->keys_pre_rope) continue;
        long j = -1;
        for (size_t q = 0; q < c->dparams.count; q++)
            if (!strcmp(c->dparams.defs[q].name, "rope_base")) j = (long) q;
        if (j < 0 || c->dparams.set[j] || c->dparams.num[j] != 0) continue;
        if (seen && seen[c->dataset * nm + c->method]++) continue;
        fprintf(f,
                "warning: dataset '%s' (%s) leaves rope_base unset (0: none or unknown), so "
                "method '%s' (label '%s') takes its keys as pre-RoPE: on post-RoPE keys its "
                "rotation and channel order mix RoPE-rotated channels and the results do not "
                "measure the method. Set rope_base to the model's RoPE base (e.g. 10000 for "
                "Llama-2, 500000 for Llama-3), or rope_base: 0 explicitly for keys without RoPE.\n",
                de->name, de->kind, me->m->name, me->label);
        warned++;
    }
    free(seen);
    return warned;
}

/* --dry-run: the cells that would run, one key a line, and what the run would do. Called after
 * the preflight passed for all of them. */
static void dry_run_plan(const run *r) {
    const rb_run_opts *o = r->o;
    size_t todo = 0, done = 0, filtered = 0;
    for (size_t i = 0; i < r->ncells; i++) {
        const rb_cell *c = &r->cells[i];
        if (!cell_selected(r, c))
            filtered++;
        else if (r->done && json_object_get(r->done, c->key))
            done++;
        else
            printf("%s\n", r->cells[i].key), todo++;
    }
    printf("dry run: %zu of %zu cells would run", todo, r->ncells);
    if (done) printf(", %zu done before (--resume)", done);
    if (filtered) printf(", %zu not selected by --only", filtered);
    printf("; every one passes the preflight (data headers, parameters, metrics)\n");
    const rb_latency *l = &r->cfg.latency;
    if (!l->enabled)
        printf("latency: off (the config has no latency: section)\n");
    else if (o->quick)
        printf("latency: skipped (--quick)\n");
    else {
        printf("latency: timed where a cell's method has the op:");
        for (size_t i = 0; i < l->nops; i++) printf(" %s", l->ops[i]);
        printf(" (min_time %g s, %d repetitions)\n", l->min_time, l->repetitions);
    }
    printf("expect:  %zu expectations graded after the run\n", r->cfg.nexpects);
    if (o->out_dir)
        printf("output:  %s (results and report)\n", r->results_dir);
    else
        printf("output:  results/<run-id>/ and reports/<run-id>/ (run-id: UTC time + '%s')\n",
               r->cfg.name);
    printf("nothing was run or written\n");
}

int rb_run(const rb_run_opts *o) {
    run r = {.o = o, .ds_index = -1, .bad_ds_index = -1, .lock_fd = -1};
    int rc, status = 2, handlers = 0;
    struct sigaction old_int, old_term;
    if (o->resume && !o->out_dir) {
        fprintf(stderr, "rotabench run: --resume needs -o DIR (the directory of the run to "
                        "continue)\n");
        return 2;
    }
    if ((rc = rb_config_load(o->config, &r.cfg))) {
        fprintf(stderr, "%s\n", rb_error_detail());
        return 2;
    }
    /* --threads, else RB_THREADS (checked by the command), else one thread per physical core */
    const char *env_threads = getenv("RB_THREADS");
    if ((o->threads || !env_threads || !*env_threads) && (rc = rb_threads_set(o->threads)))
        goto fail;
    rb_limits_warn_shared_cores(stderr, "run", rb_threads_get(), "latencies");
    if ((rc = rb_sweep_expand(&r.cfg, &r.cells, &r.ncells))) goto fail;
    rb_run_warn_rope(&r.cfg, r.cells, r.ncells, stderr);
    if ((rc = resolve_backends(&r))) goto fail;
    if ((rc = check_only(&r))) goto fail;
    if (o->resume) { /* first: the preflight does not check cells already done */
        snprintf(r.results_dir, sizeof r.results_dir, "%s", o->out_dir);
        struct stat st;
        if (!o->dry_run && stat(r.results_dir, &st) == 0 && (rc = lock_results_dir(&r))) goto fail;
        if ((rc = check_resume(&r))) goto fail;
        if ((rc = rb_results_done_cells(r.results_dir, &r.done))) goto fail;
        if ((rc = load_done_data(&r))) goto fail;
    }
    if ((rc = preflight(&r))) goto fail;
    if ((rc = setup_dirs(&r))) goto fail;
    if (!o->dry_run && r.lock_fd < 0) {
        if ((rc = lock_results_dir(&r))) goto fail;
        /* setup_dirs looked before the lock: a run may have started and ended there since. */
        char path[4200];
        snprintf(path, sizeof path, "%s/results.jsonl", r.results_dir);
        if (access(path, F_OK) == 0) {
            rc = rb_error_set(RB_ECONFIG,
                              "%s: another run wrote results.jsonl there while this one started; "
                              "continue it with --resume, or write to a new directory (-o)",
                              r.results_dir);
            goto fail;
        }
    }
    if (o->dry_run) {
        dry_run_plan(&r);
        status = 0;
        goto done;
    }
    if (r.cfg.latency.enabled && !o->quick) {
        int t = rb_threads_get();
        /* The copy on bench's buffer size (well above the last-level cache), so that a run's
         * fractions and `rotabench bench`'s are of the same limit; about 2 s (four probes). */
        rb_limits_options lo = {.copy_bytes = 256u << 20, .min_time = 0.05, .repetitions = 3};
        if (!reuse_limits(&r, t) && (rc = rb_limits_measure(&t, 1, &lo, &r.limits))) goto fail;
        r.have_limits = 1;
    }
    json_t *seeds = seeds_json(&r), *limits = limits_json(&r); /* the context borrows them */
    json_t *ctx = rb_context_build(o->argc, o->argv, o->config, r.cfg.resolved_json, r.cfg.sha256,
                                   seeds, limits);
    json_decref(seeds);
    json_decref(limits);
    if (ctx) json_object_set_new(json_object_get(ctx, "run"), "quick", json_boolean(o->quick));
    if (ctx && r.earlier)
        json_object_set(json_object_get(ctx, "run"), "earlier_sessions", r.earlier);
    rc = ctx ? rb_context_write(r.results_dir, ctx) : rb_error_set(RB_ENOMEM, "context");
    json_decref(ctx);
    if (rc) goto fail;
    if ((rc = rb_results_open(r.results_dir, &r.res))) goto fail;

    /* The first SIGINT/SIGTERM stops the run after the current cell, or, once the cells are
     * done, after the grading and the report (seconds; then exit 2, as any interrupt);
     * SA_RESETHAND restores the default action, so a second one ends it at once (finished cells
     * are on disk either way, and expect.jsonl and the report are replaced whole). */
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    handlers = 1;
    for (size_t i = 0; i < r.ncells; i++)
        r.todo +=
            cell_selected(&r, &r.cells[i]) && !(r.done && json_object_get(r.done, r.cells[i].key));
    r.t0 = now_s();
    r.next_progress = r.o->progress_every; /* the first line after one interval */
    for (size_t i = 0; i < r.ncells && !rc && !interrupted; i++) {
        const rb_cell *c = &r.cells[i];
        if (!cell_selected(&r, c)) {
            r.filtered++;
            continue;
        }
        if (r.done && json_object_get(r.done, c->key)) {
            r.skipped++;
            continue;
        }
        progress(&r, i);
        rc = run_cell(&r, c);
        if (!rc)
            r.ran++;
        else
            rc = cell_failed(&r, c, rc);
    }
    progress(&r, r.ncells);
    if (r.cfg.latency.batch && r.lat_kv_dataset && !r.lat_vec)
        fprintf(stderr,
                "warning: latency batch: %zu did not apply: it sets the vectors a timed call "
                "encodes on vector data, and every latency cell here was on KV data (dataset "
                "'%s', ...), where each call covers the whole cache\n",
                r.cfg.latency.batch, r.lat_kv_dataset);
    if (r.lat_short_dataset)
        fprintf(stderr,
                "warning: latency batch: %zu is more than the %zu vectors of dataset '%s' (and "
                "maybe others): a timed call there encodes all %zu (the report's \"per call\" "
                "column says how many each row covers)\n",
                r.cfg.latency.batch, r.lat_short_rows, r.lat_short_dataset, r.lat_short_rows);
    rb_results_close(r.res);
    r.res = NULL;
    if (rc) goto fail;
    if (interrupted) {
        char also[64] = "";
        if (r.failed) snprintf(also, sizeof also, " (and %zu that failed)", r.failed);
        char *cmd = resume_command(&r, o->keep_going);
        fprintf(stderr,
                "rotabench run: interrupted after %zu cells%s; the finished cells are in %s; "
                "continue with: %s\n",
                r.ran, also, r.results_dir, cmd ? cmd : "rotabench run ... --resume");
        free(cmd);
        goto done;
    }
    size_t passed, failed, missing;
    if ((rc = grade_expectations(&r, &passed, &failed, &missing))) goto fail;
    char csv[4200];
    json_t *rows = NULL;
    snprintf(csv, sizeof csv, "%s/results.jsonl", r.results_dir);
    if ((rc = rb_results_read(csv, &rows))) goto fail;
    /* The report writes results.csv beside report.md; the results directory gets its own copy
     * only when that is another directory (the default results/<id>/ and reports/<id>/). */
    if (strcmp(r.results_dir, r.report_dir)) {
        snprintf(csv, sizeof csv, "%s/results.csv", r.results_dir);
        rc = rb_results_write_csv(csv, rows);
    }
    if (!r.filtered && !r.failed) warn_unproduced(&r.cfg, rows, stderr);
    warn_cpu_wait(rows, stderr);
    json_decref(rows);
    if (rc) goto fail;
    /* Plots that could not be rendered do not undo a finished run: the report and its plot
     * data are written, and `rotabench report` renders them once gnuplot works. */
    rc = rb_report_write(r.results_dir, r.report_dir);
    if (rc == RB_ENOTSUP || rc == RB_ELIB) {
        char out[4200] = "";
        if (strcmp(r.results_dir, r.report_dir)) snprintf(out, sizeof out, " -o %s", r.report_dir);
        fprintf(stderr,
                "warning: %s; %s/report.md is written without its plots (their data and scripts "
                "are beside it; rotabench report %s%s renders them once gnuplot works)\n",
                rb_error_detail(), r.report_dir, r.results_dir, out);
        rc = RB_OK;
    }
    if (rc) goto fail;
    printf("results: %s/results.jsonl (%zu cells run", r.results_dir, r.ran);
    if (r.failed) printf(", %zu others failed", r.failed);
    if (r.skipped) printf(", %zu done before (--resume)", r.skipped);
    if (r.filtered) printf(", %zu not selected by --only", r.filtered);
    printf(")\nreport:  %s/report.md\n", r.report_dir);
    if (r.cfg.nexpects)
        printf("expect:  %zu PASS, %zu FAIL, %zu MISSING%s\n", passed, failed, missing,
               !missing                 ? ""
               : r.failed && r.filtered ? " (cells that failed or were not selected by --only)"
               : r.failed               ? " (cells that failed)"
               : r.filtered             ? " (cells not selected by --only)"
                                        : "");
    status = failed || missing ? 1 : 0; /* a claim not measured is not a claim that holds */
    if (r.failed) {
        char *cmd = resume_command(&r, 1);
        fprintf(stderr,
                "rotabench run: %zu cell%s failed (listed above and in the report); %s runs %s "
                "again (the config must be the same: after a change to it, run into a new "
                "directory)\n",
                r.failed, r.failed == 1 ? "" : "s", cmd ? cmd : "rotabench run ... --resume -k",
                r.failed == 1 ? "it" : "them");
        free(cmd);
        status = 2;
    }
    if (interrupted) { /* after the last cell: what was being written was finished first */
        fprintf(stderr, "rotabench run: interrupted after the cells; the grading and the report "
                        "were finished first\n");
        status = 2;
    }
    goto done;
fail:
    fprintf(stderr, "rotabench run: %s\n",
            rb_error_detail()[0] ? rb_error_detail() : rb_strerror(rc));
    if (r.ran)
        fprintf(stderr,
                "rotabench run: the %zu cell%s finished before it %s kept in %s; rotabench "
                "report %s renders them\n",
                r.ran, r.ran == 1 ? "" : "s", r.ran == 1 ? "is" : "are", r.results_dir,
                r.results_dir);
    if (r.stopped_by_cell) {
        char *cmd = resume_command(&r, 1);
        fprintf(stderr,
                "rotabench run: the failure is recorded in %s (rotabench report %s writes a "
                "report that lists it); %s goes on past failing cells\n",
                r.results_dir, r.results_dir, cmd ? cmd : "rotabench run ... --resume -k");
        free(cmd);
    }
    status = 2;
done:
    if (handlers) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (r.res) rb_results_close(r.res);
    if (r.lock_fd >= 0) close(r.lock_fd); /* after the results file is closed */
    json_decref(r.done);
    json_decref(r.done_data);
    json_decref(r.done_limits);
    json_decref(r.earlier);
    if (r.have_limits) rb_limits_free(&r.limits);
    rb_dataset_free(&r.ds);
    free(r.shapes);
    free(r.cells);
    rb_config_free(&r.cfg);
    return status;
}
