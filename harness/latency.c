/* The latency pass (harness/latency.h): Google Benchmark bodies for a codec cell's encode,
 * decode and inner-product estimation, on vector data and on KV caches. */
#include "harness/latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cpu_wait.h"
#include "harness/eval.h"
#include "harness/gbench.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/linalg.h"
#include "kernels/rng.h"

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

int rb_latency_check_queries(const rb_config *cfg, int kv, size_t dim, const char *dataset,
                             int have_queries) {
    if (have_queries || !has_op(cfg, "inner_product")) return RB_OK;
    if (kv)
        return rb_error_set(RB_EINVAL,
                            "latency: op inner_product (latency: ops) on KV data needs queries "
                            "(tensor 'Q') on dataset '%s': set " RB_QUERIES_HINT,
                            dataset);
    return rb_error_set(RB_EINVAL,
                        "latency: op inner_product (latency: ops) needs queries of dimension "
                        "%zu on dataset '%s': set " RB_QUERIES_HINT,
                        dim, dataset);
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

/* Op k of the set: its benchmark run alone and its row written. */
static int run_one_latency(const rb_latency_cell *c, const lat_set *set, size_t k) {
    rb_gb_report rep = {0};
    rb_cpu_wait w0, w1;
    rb_cpu_wait_now(&w0);
    int rc = rb_gb_run(&set->benches[k], 1, NULL, &rep);
    rb_cpu_wait_now(&w1);
    const rb_limit *lim = c->limit;
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
        rb_record rec = c->base;
        rec.metric = set->metrics[k];
        rec.unit = "s";
        rec.value = res->real_ns.median * 1e-9;
        rec.n = res->nsamples;
        rec.samples = samples;
        rec.nsamples = res->nsamples;
        rec.items_per_s = res->items_per_s > 0 ? res->items_per_s : NAN;
        rec.items_unit = set->units[k];
        rec.gbps = res->gbps;
        rec.frac_bw = lim && lim->copy_gbps > 0 ? res->gbps / lim->copy_gbps : NAN;
        if (res->gflops > 0) {
            rec.gflops = res->gflops;
            rec.frac_peak =
                lim && lim->peak_add_gflops > 0 ? res->gflops / lim->peak_add_gflops : NAN;
        }
        rec.cpu_wait = rb_cpu_wait_fraction(&w0, &w1);
        rec.kernel_variants = variants;
        rc = rb_results_write(c->res, &rec);
        free(samples);
    }
    rb_gb_report_free(&rep);
    return rc;
}

/* Runs the timed benchmarks of one cell and writes one latency row per benchmark: the median,
 * the raw samples, items per second, GB/s and the fraction of the copy bandwidth measured in
 * this run, and for benchmarks that declare flops GFLOP/s and the fraction of the measured
 * fp32 add peak. Each op runs on its own, from a fresh kernel trace, so that its row names the
 * kernels of that op only (an encode row used to list the decode's as well). */
static int run_latency(const rb_latency_cell *c, const lat_set *set) {
    int rc = RB_OK;
    for (size_t k = 0; !rc && k < set->count; k++) {
        rb_kernel_trace_reset();
        rc = run_one_latency(c, set, k);
    }
    return rc;
}

/* The estimated inner products of `count` coded vectors with nq queries, as the evaluators score
 * them (rb_codec_scores, harness/eval.h): the codec's own estimator when it has one (QJL,
 * TurboQuant-prod), else <q, decode(code)> by decode and GEMM. Block by block, LAT_IP_BLOCK rows
 * of codes at a time into xh (decoded rows) and out (rows x nq scores), each block overwriting the
 * last: the timed work is the estimate, not a kept table. */
static int codec_scores(const rb_method *m, void *st, const uint8_t *codes, size_t cb, size_t count,
                        size_t d, const float *q, size_t nq, float *xh, float *out) {
    int rc = RB_OK;
    for (size_t b = 0; !rc && b < count; b += LAT_IP_BLOCK) {
        size_t rows = count - b < LAT_IP_BLOCK ? count - b : LAT_IP_BLOCK;
        if (!m->codec->inner_product) rc = m->codec->decode(st, codes + b * cb, rows, xh);
        if (!rc) rc = rb_codec_scores(m, st, codes + b * cb, xh, rows, d, q, nq, out, 1);
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

static int latency_codec(const rb_latency_cell *c) {
    const rb_method *m = c->m;
    const rb_tensor *xt = rb_dataset_tensor(c->ds, "x"), *qt = rb_dataset_tensor(c->ds, "queries"),
                    *calib = rb_dataset_tensor(c->ds, "calib");
    if (!xt || xt->ndim != 2 || !xt->shape[0] || !xt->shape[1])
        return rb_error_set(RB_EINVAL,
                            "latency: dataset '%s' has neither a 2-d tensor 'x' of base vectors "
                            "nor KV tensors 'K' and 'V'",
                            c->dataset);
    codec_bench b = {.m = m, .dim = xt->shape[1], .x = xt->data};
    b.batch = c->cfg->latency.batch ? c->cfg->latency.batch : xt->shape[0];
    if (b.batch > xt->shape[0]) b.batch = xt->shape[0];
    int want_ip = has_op(c->cfg, "inner_product");
    int rc = rb_latency_check_queries(c->cfg, 0, b.dim, c->dataset,
                                      qt && qt->ndim == 2 && qt->shape[1] == b.dim && qt->shape[0]);
    if (rc) return rc;
    if (want_ip) {
        b.q = qt->data;
        b.nq = qt->shape[0];
    }
    if ((rc = m->codec->create(c->mparams, b.dim, c->seed, &b.st))) return rc;
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
    rb_gb_options opt = {.min_time = c->cfg->latency.min_time,
                         .repetitions = c->cfg->latency.repetitions,
                         .items = (double) b.batch,
                         .bytes = in_bytes + code_bytes};
    lat_set set = {0};
    lat_add(&set, c->cfg, "encode", "encode_latency", body_encode, &b, opt, "vectors");
    lat_add(&set, c->cfg, "decode", "decode_latency", body_decode, &b, opt, "vectors");
    /* Inner products: the codes and the queries read, the scores written; 2 d flops a score. */
    opt.items = scores;
    opt.bytes = code_bytes + (double) (b.nq * b.dim * sizeof(float)) + scores * sizeof(float);
    opt.flops = 2.0 * scores * (double) b.dim;
    lat_add(&set, c->cfg, "inner_product", "inner_product_latency", body_inner_product, &b, opt,
            "scores");
    if (!rc) rc = run_latency(c, &set);
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

static int latency_kv(const rb_latency_cell *c) {
    const rb_method *m = c->m;
    const rb_tensor *K = rb_dataset_tensor(c->ds, "K"), *V = rb_dataset_tensor(c->ds, "V"),
                    *Q = rb_dataset_tensor(c->ds, "Q"), *Kc = rb_dataset_tensor(c->ds, "K_calib"),
                    *Vc = rb_dataset_tensor(c->ds, "V_calib");
    kv_bench b = {.m = m, .p = c->mparams, .seed = c->seed};
    size_t l2, t2, h2, d2;
    /* The accuracy pass checked these layouts; the checks here keep the pass from reading past
     * a tensor whatever it did. */
    if (!K || !V || kv_lat_axes(K, &b.layers, &b.tokens, &b.heads, &b.dim) ||
        kv_lat_axes(V, &l2, &t2, &h2, &d2) || rb_tensor_numel(K) != rb_tensor_numel(V) ||
        !b.tokens || !b.heads || !b.dim)
        return rb_error_set(RB_EINVAL,
                            "latency: dataset '%s' has no KV tensors 'K' and 'V' of tokens x heads "
                            "x head_dim (optionally with a leading layer axis)",
                            c->dataset);
    int want_ip = has_op(c->cfg, "inner_product");
    size_t qheads = 0;
    /* Q's axes are read only for the op that uses them (b.nq stays 0 otherwise). */
    int have_q = want_ip && Q && Q->ndim == K->ndim && !kv_lat_axes(Q, &l2, &b.nq, &qheads, &d2) &&
                 l2 == b.layers && d2 == b.dim && b.nq && qheads && qheads % b.heads == 0;
    int rc = rb_latency_check_queries(c->cfg, 1, b.dim, c->dataset, have_q);
    if (rc) return rc;
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
    rb_kv_meta_read(c->ds, b.tokens, &b.g, NULL);
    rc = kv_prepare(&b, Q, want_ip);
    size_t L = b.layers, T = b.tokens, elems = L * T * b.heads * b.dim;
    double kv_bytes = 2.0 * (double) elems * (double) sizeof(float); /* K and V in fp32 */
    /* What encode writes and decode reads besides K and V: a vector codec's codes of K and V, a
     * KV method's whole stored cache at its exact bits (scales, sinks and windows included). */
    double code_bytes = m->codec ? 2.0 * (double) (L * T * b.heads * b.cb) : 0;
    for (size_t l = 0; !rc && m->kv && l < L; l++)
        code_bytes += m->kv->bits(b.st[l]) * 2.0 * (double) (T * b.heads * b.dim) / 8.0;
    rb_gb_options opt = {.min_time = c->cfg->latency.min_time,
                         .repetitions = c->cfg->latency.repetitions,
                         .items = (double) T,
                         .bytes = kv_bytes + code_bytes};
    lat_set set = {0};
    lat_add(&set, c->cfg, "encode", "encode_latency", body_kv_encode, &b, opt, "tokens");
    lat_add(&set, c->cfg, "decode", "decode_latency", body_kv_decode, &b, opt, "tokens");
    /* Scores: every query head against every cached token of every layer, 2 head_dim flops
     * each; read: the K codes (vector codecs) or the whole stored cache (a KV method's read
     * decodes K and V), plus the queries, and the scores written. */
    double scores = (double) (L * b.nq * qheads * T), stored = m->kv ? code_bytes : code_bytes / 2;
    opt.items = scores;
    opt.flops = 2.0 * scores * (double) b.dim;
    opt.bytes = stored + (double) (L * b.nq * qheads * b.dim * sizeof(float)) +
                scores * (double) sizeof(float);
    lat_add(&set, c->cfg, "inner_product", "inner_product_latency", body_kv_inner_product, &b, opt,
            "scores");
    if (!rc) rc = run_latency(c, &set);
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

int rb_latency_is_kv(const rb_method *m, const rb_dataset *ds) {
    /* routed as the evaluator routes the cell */
    return m->kv || (!rb_dataset_tensor(ds, "x") && rb_dataset_tensor(ds, "K"));
}

int rb_latency_run(const rb_latency_cell *c) {
    return rb_latency_is_kv(c->m, c->ds) ? latency_kv(c) : latency_codec(c);
}
