/* The runner: expands the config into cells, runs each (accuracy pass, then an optional latency
 * pass), appends records as cells finish, grades the expectations and writes the report. */
#include "harness/runner.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "harness/config.h"
#include "harness/context.h"
#include "harness/eval.h"
#include "harness/gbench.h"
#include "harness/limits.h"
#include "harness/record.h"
#include "harness/report.h"
#include "methods/method.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void) sig;
    interrupted = 1;
}

/* Everything one run holds; freed in one place. */
typedef struct run {
    const rb_run_opts *o;
    rb_config cfg;
    rb_cell *cells;
    size_t ncells;
    char results_dir[4096], report_dir[4096];
    rb_results *res;
    json_t *done; /* cell keys already complete (resume) */
    rb_limits limits;
    int have_limits;
    /* the dataset of the previous cell, reused while consecutive cells share it */
    rb_dataset ds;
    long ds_index;
    uint64_t ds_seed;
    char ds_params[RB_PARAMS_TEXT_MAX];
    double t0;
    size_t ran, skipped;
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
                       .gbps = NAN,
                       .gflops = NAN,
                       .frac_bw = NAN,
                       .frac_peak = NAN,
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

static int load_dataset(run *r, const rb_cell *c) {
    char text[RB_PARAMS_TEXT_MAX];
    rb_params_format(&c->dparams, 0, text, sizeof text);
    if (r->ds_index == (long) c->dataset && r->ds_seed == c->data_seed &&
        strcmp(text, r->ds_params) == 0)
        return RB_OK;
    rb_dataset_free(&r->ds);
    r->ds_index = -1;
    const rb_dataset_entry *de = &r->cfg.datasets[c->dataset];
    const rb_dataset_kind *k = rb_dataset_kind_find(de->kind);
    RB_ASSERT(k != NULL); /* the config loader checked the kind */
    int rc = k->load(&c->dparams, c->data_seed, &r->ds);
    if (rc) return rb_error_set(rc, "dataset '%s': %s", de->name, rb_error_detail());
    r->ds_index = (long) c->dataset;
    r->ds_seed = c->data_seed;
    snprintf(r->ds_params, sizeof r->ds_params, "%s", text);
    return RB_OK;
}

/* Runs the timed benchmarks of one cell and writes one latency row per benchmark (median,
 * raw samples, GB/s and the fraction of the copy bandwidth measured in this run). */
static int run_latency(run *r, cell_sink *cs, const rb_gb_bench *benches, const char *const *names,
                       size_t nb) {
    int rc = RB_OK;
    rb_gb_report rep = {0};
    if (nb) rc = rb_gb_run(benches, nb, NULL, &rep);
    const rb_limit *lim = r->have_limits ? rb_limits_find(&r->limits, rb_threads_get()) : NULL;
    for (size_t i = 0; !rc && i < rep.count; i++) {
        const rb_gb_result *res = &rep.results[i];
        if (!res->ok) {
            rc = rb_error_set(RB_EINVAL, "latency of %s: %s", res->name, res->error);
            break;
        }
        double *samples = malloc(res->nsamples * sizeof *samples);
        if (!samples) {
            rc = rb_error_set(RB_ENOMEM, "latency: no memory");
            break;
        }
        for (size_t s = 0; s < res->nsamples; s++) samples[s] = res->samples[s].real_ns * 1e-9;
        char variants[1024];
        rb_kernel_trace(variants, sizeof variants);
        rb_record rec = base_record(cs);
        rec.metric = names[res->index];
        rec.unit = "s";
        rec.value = res->real_ns.median * 1e-9;
        rec.n = res->nsamples;
        rec.samples = samples;
        rec.nsamples = res->nsamples;
        rec.gbps = res->gbps;
        rec.frac_bw = lim && lim->copy_gbps > 0 ? res->gbps / lim->copy_gbps : NAN;
        rec.kernel_variants = variants;
        rc = rb_results_write(r->res, &rec);
        free(samples);
    }
    rb_gb_report_free(&rep);
    return rc;
}

/* ---- latency pass (codec encode/decode through Google Benchmark) ---- */

typedef struct codec_bench {
    const rb_method *m;
    void *st;
    const float *x;
    float *xhat;
    uint8_t *codes;
    size_t batch, dim;
} codec_bench;

static void body_encode(rb_gb_state *st, void *ctx) {
    codec_bench *b = ctx;
    while (rb_gb_keep_running(st))
        if (b->m->codec->encode(b->st, b->x, b->batch, b->codes)) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
}

static void body_decode(rb_gb_state *st, void *ctx) {
    codec_bench *b = ctx;
    while (rb_gb_keep_running(st))
        if (b->m->codec->decode(b->st, b->codes, b->batch, b->xhat)) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
}

static int has_op(const rb_config *cfg, const char *op) {
    for (size_t i = 0; i < cfg->latency.nops; i++)
        if (strcmp(cfg->latency.ops[i], op) == 0) return 1;
    return 0;
}

static int latency_codec(run *r, cell_sink *cs) {
    const rb_method *m = cs->me->m;
    const rb_tensor *xt = rb_dataset_tensor(&r->ds, "x");
    if (!xt || xt->ndim != 2) return RB_OK; /* the accuracy pass already reported this */
    codec_bench b = {.m = m, .dim = xt->shape[1]};
    b.batch = r->cfg.latency.batch ? r->cfg.latency.batch : xt->shape[0];
    if (b.batch > xt->shape[0]) b.batch = xt->shape[0];
    int rc = m->codec->create(&cs->cell->mparams, b.dim, cs->cell->method_seed, &b.st);
    if (rc) return rc;
    size_t cb = m->codec->code_bytes(b.st);
    b.x = xt->data;
    b.codes = malloc(b.batch * cb + 1);
    /* Cache-line aligned, as a serving buffer would be: a decode streams large outputs with
     * non-temporal stores only to whole lines. */
    b.xhat = aligned_alloc(64, (b.batch * b.dim * sizeof(float) + 64) / 64 * 64);
    if (!b.codes || !b.xhat) rc = rb_error_set(RB_ENOMEM, "latency: no memory");
    /* Codes for the decode benchmark, and the variants the encode path uses. */
    if (!rc) rc = m->codec->encode(b.st, b.x, b.batch, b.codes);
    double in_bytes = (double) (b.batch * b.dim * sizeof(float)),
           code_bytes = (double) (b.batch * cb);
    rb_gb_bench benches[2];
    const char *names[2];
    size_t nb = 0;
    rb_gb_options opt = {.min_time = r->cfg.latency.min_time,
                         .repetitions = r->cfg.latency.repetitions,
                         .items = (double) b.batch};
    if (has_op(&r->cfg, "encode")) {
        opt.bytes = in_bytes + code_bytes;
        names[nb] = "encode_latency";
        benches[nb++] = (rb_gb_bench){"encode", body_encode, NULL, NULL, &b, opt};
    }
    if (has_op(&r->cfg, "decode")) {
        opt.bytes = in_bytes + code_bytes;
        names[nb] = "decode_latency";
        benches[nb++] = (rb_gb_bench){"decode", body_decode, NULL, NULL, &b, opt};
    }
    if (!rc) rc = run_latency(r, cs, benches, names, nb);
    free(b.codes);
    free(b.xhat);
    m->codec->destroy(b.st);
    return rc;
}

/* KV methods: encode = append of the whole cache to a fresh instance (create and destroy are
 * not timed), decode = read of every cached token. */
typedef struct kv_bench {
    const rb_method *m;
    const rb_params *p;
    rb_kv_geom g;
    uint64_t seed;
    const float *K, *V;
    const rb_tensor *Kc, *Vc; /* calibration tokens, or NULL */
    float *Kh, *Vh;
    void *st; /* the filled cache the decode benchmark reads */
} kv_bench;

/* A fresh instance as the accuracy pass makes it: created, then calibrated when the method
 * calibrates and the data have calibration tokens. */
static int kv_fresh(const kv_bench *b, void **inst) {
    int rc = b->m->kv->create(b->p, &b->g, b->seed, inst);
    if (!rc && b->m->kv->calibrate && b->Kc && b->Vc)
        rc = b->m->kv->calibrate(*inst, b->Kc->data, b->Vc->data, b->Kc->shape[0]);
    return rc;
}

static void body_kv_encode(rb_gb_state *st, void *ctx) {
    kv_bench *b = ctx;
    while (rb_gb_keep_running(st)) {
        void *inst = NULL;
        rb_gb_pause_timing(st);
        int rc = kv_fresh(b, &inst);
        rb_gb_resume_timing(st);
        if (!rc) rc = b->m->kv->append(inst, b->K, b->V, b->g.capacity);
        rb_gb_pause_timing(st);
        if (inst) b->m->kv->destroy(inst);
        rb_gb_resume_timing(st);
        if (rc) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
    }
}

static void body_kv_decode(rb_gb_state *st, void *ctx) {
    kv_bench *b = ctx;
    while (rb_gb_keep_running(st))
        if (b->m->kv->read(b->st, b->Kh, b->Vh)) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
}

static int latency_kv(run *r, cell_sink *cs) {
    const rb_method *m = cs->me->m;
    const rb_tensor *K = rb_dataset_tensor(&r->ds, "K"), *V = rb_dataset_tensor(&r->ds, "V");
    if (!K || !V || K->ndim != 3) return RB_OK; /* the accuracy pass reported it; layers: first */
    kv_bench b = {.m = m,
                  .p = &cs->cell->mparams,
                  .g = {.heads = K->shape[1], .head_dim = K->shape[2], .capacity = K->shape[0]},
                  .seed = cs->cell->method_seed,
                  .K = K->data,
                  .V = V->data,
                  .Kc = rb_dataset_tensor(&r->ds, "K_calib"),
                  .Vc = rb_dataset_tensor(&r->ds, "V_calib")};
    rb_kv_meta_read(&r->ds, K->shape[0], &b.g, NULL);
    size_t n = rb_tensor_numel(K);
    b.Kh = malloc(n * sizeof(float) + 1);
    b.Vh = malloc(n * sizeof(float) + 1);
    int rc = !b.Kh || !b.Vh ? rb_error_set(RB_ENOMEM, "latency: no memory") : RB_OK;
    if (!rc) rc = kv_fresh(&b, &b.st);
    if (!rc) rc = m->kv->append(b.st, b.K, b.V, b.g.capacity);
    double bytes = 2.0 * (double) n * (double) sizeof(float); /* K and V in fp32 */
    rb_gb_bench benches[2];
    const char *names[2];
    size_t nb = 0;
    rb_gb_options opt = {.min_time = r->cfg.latency.min_time,
                         .repetitions = r->cfg.latency.repetitions,
                         .items = (double) b.g.capacity,
                         .bytes = bytes};
    if (has_op(&r->cfg, "encode")) {
        names[nb] = "encode_latency";
        benches[nb++] = (rb_gb_bench){"encode", body_kv_encode, NULL, NULL, &b, opt};
    }
    if (has_op(&r->cfg, "decode")) {
        names[nb] = "decode_latency";
        benches[nb++] = (rb_gb_bench){"decode", body_kv_decode, NULL, NULL, &b, opt};
    }
    if (!rc) rc = run_latency(r, cs, benches, names, nb);
    if (b.st) m->kv->destroy(b.st);
    free(b.Kh);
    free(b.Vh);
    return rc;
}

/* A recall@K needs K <= the number of base vectors. The config loader checks the sizes a dataset's
 * `count` fixes; a loaded file's size is known only here, so the error names the metric's place
 * in the config. */
static int check_recall_sizes(const run *r, const rb_cell *c, const rb_method *m) {
    const rb_tensor *x = rb_dataset_tensor(&r->ds, "x");
    if (m->family != RB_FAMILY_CODEC || m->kv || !x || x->ndim != 2) return RB_OK;
    for (size_t i = 0; i < r->cfg.nmetrics; i++) {
        size_t k = rb_metric_recall_k(r->cfg.metrics[i]);
        if (k <= x->shape[0] || !rb_metric_find(r->cfg.metrics[i])) continue;
        const rb_srcpos *w = r->cfg.metric_pos ? &r->cfg.metric_pos[i] : NULL;
        return rb_error_set(RB_ECONFIG,
                            "%s:%d:%d: metric '%s' needs K <= the base size, but dataset '%s' "
                            "has %zu base vectors",
                            w ? w->file : r->cfg.path, w ? w->line : 0, w ? w->col : 0,
                            r->cfg.metrics[i], r->cfg.datasets[c->dataset].name, x->shape[0]);
    }
    return RB_OK;
}

static int run_cell(run *r, const rb_cell *c) {
    const rb_method_entry *me = &r->cfg.methods[c->method];
    cell_sink cs = {r, c, me, &r->cfg.datasets[c->dataset]};
    int rc = load_dataset(r, c);
    if (rc) return rc;
    const char **metrics = (const char **) r->cfg.metrics;
    rb_eval_fn eval = rb_family_evaluator(me->m->family);
    if (!eval)
        return rb_error_set(RB_ENOTSUP, "method '%s': the %s family has no evaluator yet",
                            me->m->name, rb_family_name(me->m->family));
    if ((rc = check_recall_sizes(r, c, me->m)))
        return rb_error_set(rc, "cell %s: %s", c->key, rb_error_detail());
    /* The cell's backend routes the kernel ops that have a CUDA variant to the GPU
     * (kernels/cuda_offload.h); the variants that ran are in every record. Every return from
     * here on goes back to the CPU first, so that the next cell starts from it. */
    if ((rc = rb_backend_use(strcmp(c->backend, "cuda") ? RB_BACKEND_CPU : RB_BACKEND_CUDA)))
        return rb_error_set(rc, "cell %s: %s", c->key, rb_error_detail());
    rb_kernel_trace_reset();
    rc = eval(me->m, &c->mparams, &r->ds, c->method_seed, metrics, r->cfg.nmetrics, write_metric,
              &cs);
    /* The latency pass runs after, never inside, the accuracy pass, with a fresh trace. */
    if (!rc && r->cfg.latency.enabled && !r->o->quick && me->m->family == RB_FAMILY_CODEC) {
        rb_kernel_trace_reset();
        rc = me->m->kv ? latency_kv(r, &cs) : latency_codec(r, &cs);
    }
    rb_backend_use(RB_BACKEND_CPU);
    if (rc) return rb_error_set(rc, "cell %s: %s", c->key, rb_error_detail());
    return rb_results_end_cell(r->res, c->key);
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
static int grade_expectations(run *r, size_t *passed, size_t *failed) {
    *passed = *failed = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/results.jsonl", r->results_dir);
    json_t *rows = NULL;
    int rc = rb_results_read(path, &rows);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/expect.jsonl", r->results_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        json_decref(rows);
        return rb_error_set(RB_EIO, "cannot write %s: %s", path, strerror(errno));
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
        else
            (*failed)++;
        json_t *params = json_object();
        for (size_t p = 0; p < e->nparams; p++)
            json_object_set_new(params, e->param_names[p], json_string(e->param_values[p]));
        json_t *out = json_pack(
            "{s:s?, s:s?, s:s?, s:o, s:s, s:s, s:o, s:o, s:f, s:f, s:i, s:s, "
            "s:s, s:i}",
            "method", e->method, "label", e->label, "dataset", e->dataset, "params", params,
            "metric", e->metric, "op", e->op, "value", rb_json_real_or_null(measured), "target",
            rb_json_real_or_null(target), "rtol", e->rtol, "atol", e->atol, "n", (int) n, "status",
            status, "source", e->source, "line", e->pos.line);
        if (out && e->than) {
            json_object_set_new(out, "than", json_string(than));
            json_object_set_new(out, "factor", json_real(e->factor));
        }
        char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
        if (text) fprintf(f, "%s\n", text);
        free(text);
        json_decref(out);
        if (strcmp(status, "PASS"))
            fprintf(stderr, "%s:%d: expectation %s: %s %s %s %g%s%s%s, measured %g (%s)\n",
                    e->pos.file, e->pos.line, status, e->label ? e->label : e->method, e->metric,
                    e->op, target, e->than ? " (" : "", than, e->than ? ")" : "", measured,
                    e->source);
    }
    json_decref(rows);
    if (fclose(f)) return rb_error_set(RB_EIO, "cannot write %s", path);
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

static void progress(run *r, size_t i) {
    if (!isatty(STDERR_FILENO)) return;
    double el = now_s() - r->t0;
    size_t done = r->ran + r->skipped;
    double left = r->ran ? el / (double) r->ran * (double) (r->ncells - done) : 0;
    fprintf(stderr, "\r\033[K[%zu/%zu] %.0fs elapsed, ~%.0fs left  %s", done, r->ncells, el, left,
            i < r->ncells ? r->cells[i].key : "");
    if (i >= r->ncells) fputc('\n', stderr);
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
        json_array_append_new(a, json_pack("{s:i, s:f, s:f}", "threads", l->threads, "copy_gbps",
                                           l->copy_gbps, "peak_add_gflops", l->peak_add_gflops));
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
        /* Nothing was run there yet: a plain run. */
        if (access(path, F_OK) != 0) return RB_OK;
        return rb_error_set(RB_EFORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    }
    const char *sha =
        json_string_value(json_object_get(json_object_get(old, "run"), "config_sha256"));
    int same = sha && strcmp(sha, r->cfg.sha256) == 0;
    char was[65] = "";
    if (sha) snprintf(was, sizeof was, "%s", sha);
    json_decref(old);
    if (!same)
        return rb_error_set(RB_ECONFIG,
                            "--resume: %s was run with another config (sha256 %.12s, now %.12s); "
                            "resume with the same config or write to a new directory",
                            r->results_dir, was[0] ? was : "?", r->cfg.sha256);
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
    int rc = rb_mkdir_p(r->results_dir);
    if (!rc) rc = rb_mkdir_p(r->report_dir);
    return rc;
}

int rb_run(const rb_run_opts *o) {
    run r = {.o = o, .ds_index = -1};
    int rc, status = 2;
    if (o->resume && !o->out_dir) {
        fprintf(stderr, "rotabench run: --resume needs -o DIR (the directory of the run to "
                        "continue)\n");
        return 2;
    }
    if ((rc = rb_config_load(o->config, &r.cfg))) {
        fprintf(stderr, "%s\n", rb_error_detail());
        return 2;
    }
    if ((rc = rb_threads_set(o->threads))) goto fail;
    if ((rc = rb_sweep_expand(&r.cfg, &r.cells, &r.ncells))) goto fail;
    if ((rc = resolve_backends(&r))) goto fail;
    if ((rc = setup_dirs(&r))) goto fail;
    if (o->resume && (rc = check_resume(&r))) goto fail;
    if (o->resume && (rc = rb_results_done_cells(r.results_dir, &r.done))) goto fail;
    if (r.cfg.latency.enabled && !o->quick) {
        int t = rb_threads_get();
        rb_limits_options lo = {.copy_bytes = 64u << 20, .min_time = 0.05, .repetitions = 3};
        if ((rc = rb_limits_measure(&t, 1, &lo, &r.limits))) goto fail;
        r.have_limits = 1;
    }
    json_t *seeds = seeds_json(&r), *limits = limits_json(&r); /* the context borrows them */
    json_t *ctx = rb_context_build(o->argc, o->argv, o->config, r.cfg.resolved_json, r.cfg.sha256,
                                   seeds, limits);
    json_decref(seeds);
    json_decref(limits);
    rc = ctx ? rb_context_write(r.results_dir, ctx) : rb_error_set(RB_ENOMEM, "context");
    json_decref(ctx);
    if (rc) goto fail;
    if ((rc = rb_results_open(r.results_dir, &r.res))) goto fail;

    /* The first SIGINT/SIGTERM stops the run after the current cell; SA_RESETHAND restores the
     * default action, so a second one ends it at once (finished cells are on disk either way). */
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    r.t0 = now_s();
    for (size_t i = 0; i < r.ncells && !rc && !interrupted; i++) {
        const rb_cell *c = &r.cells[i];
        if (!cell_selected(&r, c) || (r.done && json_object_get(r.done, c->key))) {
            r.skipped++;
            continue;
        }
        progress(&r, i);
        rc = run_cell(&r, c);
        r.ran++;
    }
    progress(&r, r.ncells);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    rb_results_close(r.res);
    r.res = NULL;
    if (rc) goto fail;
    if (interrupted) {
        fprintf(stderr,
                "rotabench run: interrupted after %zu cells; the finished cells are in %s; "
                "continue with: rotabench run %s -o %s --resume\n",
                r.ran, r.results_dir, o->config, r.results_dir);
        goto done;
    }
    size_t passed, failed;
    if ((rc = grade_expectations(&r, &passed, &failed))) goto fail;
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/results.csv", r.results_dir);
    json_t *rows = NULL;
    snprintf(csv, sizeof csv, "%s/results.jsonl", r.results_dir);
    if ((rc = rb_results_read(csv, &rows))) goto fail;
    snprintf(csv, sizeof csv, "%s/results.csv", r.results_dir);
    rc = rb_results_write_csv(csv, rows);
    json_decref(rows);
    if (rc) goto fail;
    if ((rc = rb_report_write(r.results_dir, r.report_dir))) goto fail;
    printf("results: %s/results.jsonl (%zu cells run, %zu skipped)\nreport:  %s/report.md\n",
           r.results_dir, r.ran, r.skipped, r.report_dir);
    if (r.cfg.nexpects) printf("expect:  %zu PASS, %zu FAIL\n", passed, failed);
    status = failed ? 1 : 0;
    goto done;
fail:
    fprintf(stderr, "rotabench run: %s\n",
            rb_error_detail()[0] ? rb_error_detail() : rb_strerror(rc));
    status = 2;
done:
    if (r.res) rb_results_close(r.res);
    json_decref(r.done);
    if (r.have_limits) rb_limits_free(&r.limits);
    rb_dataset_free(&r.ds);
    free(r.cells);
    rb_config_free(&r.cfg);
    return status;
}
