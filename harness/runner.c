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
                       .items_per_s = NAN,
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

/* ---- latency pass (encode, decode and inner-product estimation through Google Benchmark) ---- */

enum { LAT_MAX_OPS = 3, LAT_IP_BLOCK = 512 };

/* The timed benchmarks of one cell, each with its row's metric and what one item of its rate is
 * ("vectors", "tokens" or "scores"). */
typedef struct lat_set {
    rb_gb_bench benches[LAT_MAX_OPS];
    const char *metrics[LAT_MAX_OPS];
    const char *units[LAT_MAX_OPS];
    size_t count;
} lat_set;

static int has_op(const rb_config *cfg, const char *op) {
    for (size_t i = 0; i < cfg->latency.nops; i++)
        if (strcmp(cfg->latency.ops[i], op) == 0) return 1;
    return 0;
}

/* Adds the benchmark of `op` (named op, its row's metric op_latency) when the config asks for it.
 */
static void lat_add(lat_set *s, const rb_config *cfg, const char *op, const char *metric,
                    rb_gb_body_fn body, void *ctx, rb_gb_options opt, const char *unit) {
    if (!has_op(cfg, op)) return;
    RB_ASSERT(s->count < LAT_MAX_OPS);
    s->metrics[s->count] = metric;
    s->units[s->count] = unit;
    s->benches[s->count++] = (rb_gb_bench){op, body, NULL, NULL, ctx, opt};
}

/* Runs the timed benchmarks of one cell and writes one latency row per benchmark: the median,
 * the raw samples, items per second, GB/s and the fraction of the copy bandwidth measured in
 * this run, and for benchmarks that declare flops GFLOP/s and the fraction of the measured
 * fp32 add peak. */
static int run_latency(run *r, cell_sink *cs, const lat_set *set) {
    int rc = RB_OK;
    rb_gb_report rep = {0};
    if (set->count) rc = rb_gb_run(set->benches, set->count, NULL, &rep);
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
        rec.metric = set->metrics[res->index];
        rec.unit = "s";
        rec.value = res->real_ns.median * 1e-9;
        rec.n = res->nsamples;
        rec.samples = samples;
        rec.nsamples = res->nsamples;
        rec.items_per_s = res->items_per_s > 0 ? res->items_per_s : NAN;
        rec.items_unit = set->units[res->index];
        rec.gbps = res->gbps;
        rec.frac_bw = lim && lim->copy_gbps > 0 ? res->gbps / lim->copy_gbps : NAN;
        if (res->gflops > 0) {
            rec.gflops = res->gflops;
            rec.frac_peak =
                lim && lim->peak_add_gflops > 0 ? res->gflops / lim->peak_add_gflops : NAN;
        }
        rec.kernel_variants = variants;
        rc = rb_results_write(r->res, &rec);
        free(samples);
    }
    rb_gb_report_free(&rep);
    return rc;
}

/* The estimated inner products of `count` coded vectors with nq queries, as the evaluators score
 * them (eval_codec.c, eval_kv.c): the codec's own estimator when it has one (QJL,
 * TurboQuant-prod), else <q, decode(code)> by decode and GEMM. Block by block, LAT_IP_BLOCK rows
 * of codes at a time into xh (decoded rows) and out (rows x nq scores), each block overwriting the
 * last: the timed work is the estimate, not a kept table. */
static int codec_scores(const rb_method *m, void *st, const uint8_t *codes, size_t cb, size_t count,
                        size_t d, const float *q, size_t nq, float *xh, float *out) {
    int rc = RB_OK;
    for (size_t b = 0; !rc && b < count; b += LAT_IP_BLOCK) {
        size_t rows = count - b < LAT_IP_BLOCK ? count - b : LAT_IP_BLOCK;
        if (m->codec->inner_product) {
            rc = m->codec->inner_product(st, codes + b * cb, rows, q, nq, out);
            continue;
        }
        rc = m->codec->decode(st, codes + b * cb, rows, xh);
        if (!rc)
            rc = rb_gemm_f32(RB_NOTRANS, RB_TRANS, rows, nq, d, 1.0f, xh, d, q, d, 0.0f, out, nq);
    }
    return rc;
}

/* Vector codecs on vector data ('x'): `batch` base vectors per timed call; inner_product scores
 * them against every query of the dataset. */
typedef struct codec_bench {
    const rb_method *m;
    void *st;
    const float *x, *q;
    float *xhat, *scores;
    uint8_t *codes;
    size_t batch, dim, cb, nq;
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

static void body_inner_product(rb_gb_state *st, void *ctx) {
    codec_bench *b = ctx;
    while (rb_gb_keep_running(st))
        if (codec_scores(b->m, b->st, b->codes, b->cb, b->batch, b->dim, b->q, b->nq, b->xhat,
                         b->scores)) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
}

static int latency_codec(run *r, cell_sink *cs) {
    const rb_method *m = cs->me->m;
    const rb_tensor *xt = rb_dataset_tensor(&r->ds, "x"),
                    *qt = rb_dataset_tensor(&r->ds, "queries"),
                    *calib = rb_dataset_tensor(&r->ds, "calib");
    if (!xt || xt->ndim != 2 || !xt->shape[0] || !xt->shape[1])
        return rb_error_set(RB_EINVAL,
                            "latency: dataset '%s' has neither a 2-d tensor 'x' of base vectors "
                            "nor KV tensors 'K' and 'V'",
                            cs->de->name);
    codec_bench b = {.m = m, .dim = xt->shape[1], .x = xt->data};
    b.batch = r->cfg.latency.batch ? r->cfg.latency.batch : xt->shape[0];
    if (b.batch > xt->shape[0]) b.batch = xt->shape[0];
    int want_ip = has_op(&r->cfg, "inner_product");
    if (want_ip && (!qt || qt->ndim != 2 || qt->shape[1] != b.dim || !qt->shape[0]))
        return rb_error_set(RB_EINVAL,
                            "latency: op inner_product (latency: ops) needs queries of dimension "
                            "%zu: set 'queries: N' on dataset '%s'",
                            b.dim, cs->de->name);
    if (want_ip) {
        b.q = qt->data;
        b.nq = qt->shape[0];
    }
    int rc = m->codec->create(&cs->cell->mparams, b.dim, cs->cell->method_seed, &b.st);
    if (rc) return rc;
    /* Calibrated as the accuracy pass calibrates it, untimed (which has already rejected a
     * calibration tensor of the wrong shape; the same error here, should this run alone). */
    if (calib && (calib->ndim != 2 || calib->shape[1] != b.dim))
        rc = rb_error_set(RB_EINVAL, "%s: the calibration tensor 'calib' must be N x %zu", m->name,
                          b.dim);
    else if (m->codec->calibrate)
        rc = calib ? m->codec->calibrate(b.st, calib->data, calib->shape[0])
                   : m->codec->calibrate(b.st, xt->data, xt->shape[0]);
    b.cb = m->codec->code_bytes(b.st);
    size_t ip_rows = b.batch < LAT_IP_BLOCK ? b.batch : LAT_IP_BLOCK;
    b.codes = malloc(b.batch * b.cb + 1);
    /* Cache-line aligned, as a serving buffer would be: a decode streams large outputs with
     * non-temporal stores only to whole lines. */
    b.xhat = aligned_alloc(64, (b.batch * b.dim * sizeof(float) + 64) / 64 * 64);
    b.scores = malloc(ip_rows * b.nq * sizeof(float) + 1);
    if (!rc && (!b.codes || !b.xhat || !b.scores))
        rc = rb_error_set(RB_ENOMEM, "latency: no memory");
    /* Codes for the decode and inner-product benchmarks, and the variants the encode path uses. */
    if (!rc) rc = m->codec->encode(b.st, b.x, b.batch, b.codes);
    double in_bytes = (double) (b.batch * b.dim * sizeof(float)),
           code_bytes = (double) (b.batch * b.cb), scores = (double) b.batch * (double) b.nq;
    rb_gb_options opt = {.min_time = r->cfg.latency.min_time,
                         .repetitions = r->cfg.latency.repetitions,
                         .items = (double) b.batch,
                         .bytes = in_bytes + code_bytes};
    lat_set set = {0};
    lat_add(&set, &r->cfg, "encode", "encode_latency", body_encode, &b, opt, "vectors");
    lat_add(&set, &r->cfg, "decode", "decode_latency", body_decode, &b, opt, "vectors");
    /* Inner products: the codes and the queries read, the scores written; 2 d flops a score. */
    opt.items = scores;
    opt.bytes = code_bytes + (double) (b.nq * b.dim * sizeof(float)) + scores * sizeof(float);
    opt.flops = 2.0 * scores * (double) b.dim;
    lat_add(&set, &r->cfg, "inner_product", "inner_product_latency", body_inner_product, &b, opt,
            "scores");
    if (!rc) rc = run_latency(r, cs, &set);
    free(b.codes);
    free(b.xhat);
    free(b.scores);
    m->codec->destroy(b.st);
    return rc;
}

/* KV data: K and V tokens x heads x head_dim, optionally with a leading layer axis. Every timed
 * call covers the whole cache, every layer and every token, so a layered dump gives one row per
 * op for all its layers (the layers have one shape, and a row per layer would multiply the pass's
 * time by their number); a token is then one position's K and V in every head of every layer.
 * The `batch` key does not apply.
 *
 * KV methods (rb_kv_ops): encode = append of each layer's whole cache to a fresh instance
 * (create, calibrate and destroy not timed); decode = read of every layer's filled cache;
 * inner_product = that read plus the GEMM of each query head against its KV head's keys, the
 * scores the KV evaluator computes (the interface has no estimator from codes).
 * Vector codecs: each head_dim row of K and of V one vector, one instance for K and one for V
 * per layer with the KV evaluator's seeds; encode and decode every row; inner_product = the
 * codec's scores (codec_scores) of each query head against the codes of its KV head's keys,
 * kept head by head (a layout choice made outside the timing). */
typedef struct kv_bench {
    const rb_method *m;
    const rb_params *p;
    rb_kv_geom g;
    uint64_t seed;
    size_t layers, tokens, heads, dim, calib, nq, group; /* group: query heads per KV head */
    const float *K, *V, *Kc, *Vc; /* layer l at l * (tokens or calib) * heads * dim */
    float *Qg;      /* per (layer, KV head): its group's queries, nq * group rows; or NULL */
    float *Kh, *Vh; /* one layer's decoded or read cache */
    float *scores;
    void **st;       /* KV methods: each layer's filled cache; vector codecs: K, V per layer */
    uint8_t *codes;  /* vector codecs: per layer the K codes then the V codes, token-major */
    uint8_t *hcodes; /* vector codecs: per (layer, KV head) the K codes of its tokens */
    size_t cb;
} kv_bench;

/* The seeds of layer l's instances, as the KV evaluator derives them. */
static uint64_t kv_layer_seed(const kv_bench *b, size_t l) {
    return b->layers > 1 ? rb_seed_derive(b->seed, 0x4b56, l) : b->seed;
}

/* A fresh KV-method instance for layer l as the accuracy pass makes it: created, then
 * calibrated when the method calibrates and the data have calibration tokens. */
static int kv_fresh(const kv_bench *b, size_t l, void **inst) {
    int rc = b->m->kv->create(b->p, &b->g, kv_layer_seed(b, l), inst);
    size_t cl = b->calib * b->heads * b->dim;
    if (!rc && b->m->kv->calibrate && b->Kc && b->Vc)
        rc = b->m->kv->calibrate(*inst, b->Kc + l * cl, b->Vc + l * cl, b->calib);
    return rc;
}

/* A vector-codec instance for layer l's keys (v = 0) or values (v = 1), calibrated as the KV
 * evaluator calibrates it. */
static int kv_codec_fresh(const kv_bench *b, size_t l, int v, void **inst) {
    uint64_t seed = kv_layer_seed(b, l) ^ (v ? 0x5656565656565656ull : 0);
    int rc = b->m->codec->create(b->p, b->dim, seed, inst);
    size_t row = b->heads * b->dim, cl = b->calib * row;
    const float *calib = v ? b->Vc : b->Kc, *x = (v ? b->V : b->K) + l * b->tokens * row;
    if (!rc && b->m->codec->calibrate)
        rc = calib ? b->m->codec->calibrate(*inst, calib + l * cl, b->calib * b->heads)
                   : b->m->codec->calibrate(*inst, x, b->tokens * b->heads);
    return rc;
}

/* A vector codec's encode of every row of K and V, every layer. */
static int kv_codec_encode_all(kv_bench *b) {
    size_t lay = b->tokens * b->heads * b->dim, rows = b->tokens * b->heads;
    int rc = RB_OK;
    for (size_t l = 0; !rc && l < b->layers; l++) {
        uint8_t *c = b->codes + 2 * l * rows * b->cb;
        rc = b->m->codec->encode(b->st[2 * l], b->K + l * lay, rows, c);
        if (!rc) rc = b->m->codec->encode(b->st[2 * l + 1], b->V + l * lay, rows, c + rows * b->cb);
    }
    return rc;
}

static int kv_encode_all(kv_bench *b, rb_gb_state *st) {
    if (b->m->codec) return kv_codec_encode_all(b);
    size_t lay = b->tokens * b->heads * b->dim;
    int rc = RB_OK;
    for (size_t l = 0; !rc && l < b->layers; l++) {
        void *inst = NULL;
        rb_gb_pause_timing(st);
        rc = kv_fresh(b, l, &inst);
        rb_gb_resume_timing(st);
        if (!rc) rc = b->m->kv->append(inst, b->K + l * lay, b->V + l * lay, b->tokens);
        rb_gb_pause_timing(st);
        if (inst) b->m->kv->destroy(inst);
        rb_gb_resume_timing(st);
    }
    return rc;
}

static int kv_decode_all(kv_bench *b) {
    size_t rows = b->tokens * b->heads;
    int rc = RB_OK;
    for (size_t l = 0; !rc && l < b->layers; l++) {
        if (b->m->kv) {
            rc = b->m->kv->read(b->st[l], b->Kh, b->Vh);
            continue;
        }
        const uint8_t *c = b->codes + 2 * l * rows * b->cb;
        rc = b->m->codec->decode(b->st[2 * l], c, rows, b->Kh);
        if (!rc) rc = b->m->codec->decode(b->st[2 * l + 1], c + rows * b->cb, rows, b->Vh);
    }
    return rc;
}

static int kv_scores_all(kv_bench *b) {
    size_t T = b->tokens, H = b->heads, D = b->dim, nqg = b->nq * b->group;
    int rc = RB_OK;
    for (size_t l = 0; !rc && l < b->layers; l++) {
        if (b->m->kv) rc = b->m->kv->read(b->st[l], b->Kh, b->Vh);
        for (size_t h = 0; !rc && h < H; h++) {
            const float *q = b->Qg + (l * H + h) * nqg * D;
            if (b->m->kv)
                rc = rb_gemm_f32(RB_NOTRANS, RB_TRANS, nqg, T, D, 1.0f, q, D, b->Kh + h * D, H * D,
                                 0.0f, b->scores, T);
            else
                rc = codec_scores(b->m, b->st[2 * l], b->hcodes + (l * H + h) * T * b->cb, b->cb, T,
                                  D, q, nqg, b->Kh, b->scores);
        }
    }
    return rc;
}

static void body_kv_encode(rb_gb_state *st, void *ctx) {
    while (rb_gb_keep_running(st))
        if (kv_encode_all(ctx, st)) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
}

static void body_kv_decode(rb_gb_state *st, void *ctx) {
    while (rb_gb_keep_running(st))
        if (kv_decode_all(ctx)) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
}

static void body_kv_inner_product(rb_gb_state *st, void *ctx) {
    while (rb_gb_keep_running(st))
        if (kv_scores_all(ctx)) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
}

/* Layers and the other three axes of a KV tensor (3-d, or 4-d with a leading layer axis). */
static int kv_lat_axes(const rb_tensor *t, size_t *layers, size_t *rows, size_t *heads,
                       size_t *dim) {
    if (t->ndim != 3 && t->ndim != 4) return -1;
    size_t o = t->ndim - 3;
    *layers = o ? t->shape[0] : 1;
    *rows = t->shape[o];
    *heads = t->shape[o + 1];
    *dim = t->shape[o + 2];
    return 0;
}

/* Fills b's instances, codes and regrouped queries outside the timing. */
static int kv_prepare(kv_bench *b, const rb_tensor *Q, int want_ip) {
    size_t L = b->layers, T = b->tokens, H = b->heads, D = b->dim, rows = T * H;
    size_t ninst = b->m->kv ? L : 2 * L;
    b->st = calloc(ninst, sizeof *b->st);
    b->Kh = malloc(rows * D * sizeof(float) + 1);
    b->Vh = malloc(rows * D * sizeof(float) + 1);
    if (!b->st || !b->Kh || !b->Vh) return rb_error_set(RB_ENOMEM, "latency: no memory");
    int rc = RB_OK;
    for (size_t i = 0; !rc && i < ninst; i++) {
        if (b->m->kv) {
            rc = kv_fresh(b, i, &b->st[i]);
            if (!rc) rc = b->m->kv->append(b->st[i], b->K + i * rows * D, b->V + i * rows * D, T);
        } else {
            rc = kv_codec_fresh(b, i / 2, (int) (i % 2), &b->st[i]);
        }
    }
    if (!rc && b->m->codec) {
        b->cb = b->m->codec->code_bytes(b->st[0]);
        b->codes = malloc(2 * L * rows * b->cb + 1);
        if (!b->codes) return rb_error_set(RB_ENOMEM, "latency: no memory for codes");
        rc = kv_codec_encode_all(b);
    }
    if (rc || !want_ip) return rc;
    /* Queries: Q is nq x (H * group) x D per layer; query head j reads KV head j / group. */
    size_t nq = b->nq, G = b->group, nqg = nq * G;
    b->Qg = malloc(L * H * nqg * D * sizeof(float) + 1);
    b->scores = malloc(nqg * T * sizeof(float) + 1);
    if (!b->Qg || !b->scores) return rb_error_set(RB_ENOMEM, "latency: no memory for queries");
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++)
            for (size_t g = 0; g < G; g++)
                for (size_t i = 0; i < nq; i++)
                    memcpy(b->Qg + (((l * H + h) * G + g) * nq + i) * D,
                           Q->data + ((l * nq + i) * H * G + h * G + g) * D, D * sizeof(float));
    if (b->m->kv) return RB_OK;
    b->hcodes = malloc(L * rows * b->cb + 1);
    if (!b->hcodes) return rb_error_set(RB_ENOMEM, "latency: no memory for codes");
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < T; t++)
                memcpy(b->hcodes + ((l * H + h) * T + t) * b->cb,
                       b->codes + (2 * l * rows + t * H + h) * b->cb, b->cb);
    return RB_OK;
}

static int latency_kv(run *r, cell_sink *cs) {
    const rb_method *m = cs->me->m;
    const rb_tensor *K = rb_dataset_tensor(&r->ds, "K"), *V = rb_dataset_tensor(&r->ds, "V"),
                    *Q = rb_dataset_tensor(&r->ds, "Q"), *Kc = rb_dataset_tensor(&r->ds, "K_calib"),
                    *Vc = rb_dataset_tensor(&r->ds, "V_calib");
    kv_bench b = {.m = m, .p = &cs->cell->mparams, .seed = cs->cell->method_seed};
    size_t l2, t2, h2, d2;
    /* The accuracy pass checked these layouts; the checks here keep the pass from reading past
     * a tensor whatever it did. */
    if (!K || !V || kv_lat_axes(K, &b.layers, &b.tokens, &b.heads, &b.dim) ||
        kv_lat_axes(V, &l2, &t2, &h2, &d2) || rb_tensor_numel(K) != rb_tensor_numel(V) ||
        !b.tokens || !b.heads || !b.dim)
        return rb_error_set(RB_EINVAL,
                            "latency: dataset '%s' has no KV tensors 'K' and 'V' of tokens x heads "
                            "x head_dim (optionally with a leading layer axis)",
                            cs->de->name);
    int want_ip = has_op(&r->cfg, "inner_product");
    size_t qheads = 0;
    if (want_ip && (!Q || Q->ndim != K->ndim || kv_lat_axes(Q, &l2, &b.nq, &qheads, &d2) ||
                    l2 != b.layers || d2 != b.dim || !b.nq || !qheads || qheads % b.heads))
        return rb_error_set(RB_EINVAL,
                            "latency: op inner_product (latency: ops) on KV data needs queries "
                            "(tensor 'Q'): set 'queries: N' on dataset '%s'",
                            cs->de->name);
    b.group = want_ip ? qheads / b.heads : 0;
    if (!Kc != !Vc)
        return rb_error_set(RB_EINVAL, "%s: K_calib and V_calib come together", m->name);
    if (Kc) { /* the accuracy pass has checked this too; the same error should this run alone */
        if (kv_lat_axes(Kc, &l2, &b.calib, &h2, &d2) || Kc->ndim != K->ndim || l2 != b.layers ||
            h2 != b.heads || d2 != b.dim || rb_tensor_numel(Vc) != rb_tensor_numel(Kc))
            return rb_error_set(RB_EINVAL, "%s: K_calib/V_calib do not match K's layout", m->name);
        b.Kc = Kc->data;
        b.Vc = Vc->data;
    }
    b.K = K->data;
    b.V = V->data;
    b.g = (rb_kv_geom){.heads = b.heads, .head_dim = b.dim, .capacity = b.tokens};
    rb_kv_meta_read(&r->ds, b.tokens, &b.g, NULL);
    int rc = kv_prepare(&b, Q, want_ip);
    size_t L = b.layers, T = b.tokens, elems = L * T * b.heads * b.dim;
    double kv_bytes = 2.0 * (double) elems * (double) sizeof(float); /* K and V in fp32 */
    double code_bytes = m->codec ? 2.0 * (double) (L * T * b.heads * b.cb) : 0;
    rb_gb_options opt = {.min_time = r->cfg.latency.min_time,
                         .repetitions = r->cfg.latency.repetitions,
                         .items = (double) T,
                         .bytes = kv_bytes + code_bytes};
    lat_set set = {0};
    lat_add(&set, &r->cfg, "encode", "encode_latency", body_kv_encode, &b, opt, "tokens");
    lat_add(&set, &r->cfg, "decode", "decode_latency", body_kv_decode, &b, opt, "tokens");
    /* Scores: every query head against every cached token of every layer, 2 head_dim flops
     * each; read: the K codes (vector codecs) or the whole stored cache (a KV method's read
     * decodes K and V), plus the queries, and the scores written. */
    double scores = (double) (L * b.nq * qheads * T), stored = code_bytes / 2;
    for (size_t l = 0; !rc && m->kv && l < L; l++)
        stored += m->kv->bits(b.st[l]) * 2.0 * (double) (T * b.heads * b.dim) / 8.0;
    opt.items = scores;
    opt.flops = 2.0 * scores * (double) b.dim;
    opt.bytes = stored + (double) (L * b.nq * qheads * b.dim * sizeof(float)) +
                scores * (double) sizeof(float);
    lat_add(&set, &r->cfg, "inner_product", "inner_product_latency", body_kv_inner_product, &b, opt,
            "scores");
    if (!rc) rc = run_latency(r, cs, &set);
    for (size_t i = 0; b.st && i < (m->kv ? L : 2 * L); i++)
        if (b.st[i]) {
            if (m->kv)
                m->kv->destroy(b.st[i]);
            else
                m->codec->destroy(b.st[i]);
        }
    free(b.st);
    free(b.codes);
    free(b.hcodes);
    free(b.Qg);
    free(b.scores);
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
        /* Routed as the evaluator routes the cell: KV methods, and vector codecs on KV data
         * (no 'x' but K and V), to the KV pass. */
        int kv_data = !rb_dataset_tensor(&r->ds, "x") && rb_dataset_tensor(&r->ds, "K");
        rc = me->m->kv || kv_data ? latency_kv(r, &cs) : latency_codec(r, &cs);
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
    rb_run_warn_rope(&r.cfg, r.cells, r.ncells, stderr);
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
