/* The KV-cache evaluator: runs a KV method (rb_kv_ops: calibrate, prefill, single-token decode
 * steps, read) or a plain vector codec (each head_dim row of K and V one vector) on a KV dataset
 * and computes the attention-level metrics of kv_cache.md section 5. No timing here.
 *
 * Dataset tensors (datasets/kv_cache.c and the kv_npy / kv_safetensors loaders):
 *   K, V        tokens x heads x head_dim, or layers x tokens x heads x head_dim
 *   Q           queries x q_heads x head_dim (same optional layer axis); q_heads a multiple of
 *               heads (GQA: query head j reads KV head j / (q_heads / heads))
 *   K_calib,    optional calibration tokens (disjoint from K, V; same layout), given to the
 *   V_calib     method's calibrate; a KV method's calibrate is called only when they exist (a
 *               vector codec's calibrate sees the evaluation rows otherwise, as in eval_codec.c)
 *   kv_meta     optional floats: prefill (tokens in the first append; 0 = all of them, no
 *               decode steps), rope_base (0 = no RoPE), and optionally the positions of the
 *               first evaluated and the first calibration token (0 when absent), passed to the
 *               method's geometry (pos0, calib_pos0).
 * Queries sit after the cache (position pos0 + tokens + j) and attend to every cached token.
 *
 * Metrics (pooled over layers, heads and queries unless stated; s = q.k, s_hat = q.k_hat):
 *   logit_err      sqrt(sum (s - s_hat)^2 / sum s^2)
 *   logit_err_max  the largest logit_err of one (layer, query head): the worst head
 *   rel_mse_k/_v   sum |k - k_hat|^2 / sum |k|^2 (and V)
 *   attn_kl        mean over query rows of KL(softmax(s / sqrt d) || softmax(s_hat / sqrt d))
 *   attn_out_err   |A V - A_hat V_hat|_F^2 / |A V|_F^2
 *   attn_out_err_k the same with V_hat = V (the key error alone)
 *   topk_agree@k   mean over query rows of |top_k(s) & top_k(s_hat)| / k (ties to the lower
 *                  token index; k capped at the token count)
 *   bits           KV methods: their bits() after the last decode step (mean over layers);
 *                  vector codecs: the codec's bits.
 *   NAME/head      for NAME in logit_err, rel_mse_k, rel_mse_v, attn_kl, attn_out_err and
 *                  topk_agree@k (named "topk_agree@8/head"): one row per (layer, KV head) with
 *                  slice "layer=L,head=H" (L = 0 without a layer axis), the same formula over
 *                  that slice's tokens and queries; the query heads of a GQA group pool into
 *                  their KV head. There are no separate per-layer rows: the layer is part of
 *                  every slice, so a per-layer view is the head rows of one layer. Asked for
 *                  separately (NAME/head alone does not emit NAME), so pooled rows and small
 *                  outputs stay the default.
 * A vector codec with its own inner-product estimator (QJL, TurboQuant-prod) scores s_hat with
 * it; its rel_mse_k and attention outputs use the decoded keys. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/eval.h"

enum { BATCH = 4096 };

/* The k of a metric named "topk_agree@k" (or "topk_agree@k/head" when per_head), or 0 for any
 * other name. */
static size_t topk_k(const char *name, int per_head) {
    static const char pre[] = "topk_agree@";
    if (strncmp(name, pre, sizeof pre - 1) != 0) return 0;
    char *end;
    unsigned long k = strtoul(name + sizeof pre - 1, &end, 10);
    return strcmp(end, per_head ? "/head" : "") == 0 ? (size_t) k : 0;
}

/* The shape of the cache and where each layer's slices start. */
typedef struct kv_shape {
    size_t layers, tokens, heads, dim, nq, qheads, calib;
    size_t prefill;
    rb_kv_geom geom; /* rope_base and positions from kv_meta */
    const rb_tensor *K, *V, *Q, *Kc, *Vc;
} kv_shape;

/* A KV tensor: 3-d (tokens, heads, dim) or 4-d with a leading layer axis. Writes its layers and
 * the other three axes. */
static int kv_axes(const rb_tensor *t, const char *mname, size_t *layers, size_t *rows,
                   size_t *heads, size_t *dim) {
    if (t->ndim == 3) {
        *layers = 1;
        *rows = t->shape[0];
        *heads = t->shape[1];
        *dim = t->shape[2];
        return RB_OK;
    }
    if (t->ndim == 4) {
        *layers = t->shape[0];
        *rows = t->shape[1];
        *heads = t->shape[2];
        *dim = t->shape[3];
        return RB_OK;
    }
    return rb_error_set(RB_EINVAL,
                        "%s: KV tensor '%s' must be tokens x heads x head_dim, optionally with a "
                        "leading layer axis (got %zu axes)",
                        mname, t->name, t->ndim);
}

int rb_eval_kv_no_cache(const rb_method *m) {
    return rb_error_set(RB_EINVAL, "%s: the dataset has no KV tensors 'K' and 'V'", m->name);
}

static int read_shape(const rb_method *m, const rb_dataset *ds, const char *const *metrics,
                      size_t nmetrics, kv_shape *s) {
    memset(s, 0, sizeof *s);
    s->K = rb_dataset_tensor(ds, "K");
    s->V = rb_dataset_tensor(ds, "V");
    s->Q = rb_dataset_tensor(ds, "Q");
    s->Kc = rb_dataset_tensor(ds, "K_calib");
    s->Vc = rb_dataset_tensor(ds, "V_calib");
    if (!s->K || !s->V) return rb_eval_kv_no_cache(m);
    size_t l2 = 0, t2 = 0, h2 = 0, d2 = 0;
    int rc = kv_axes(s->K, m->name, &s->layers, &s->tokens, &s->heads, &s->dim);
    if (!rc) rc = kv_axes(s->V, m->name, &l2, &t2, &h2, &d2);
    if (rc) return rc;
    if (s->K->ndim != s->V->ndim || l2 != s->layers || t2 != s->tokens || h2 != s->heads ||
        d2 != s->dim)
        return rb_error_set(RB_EINVAL, "%s: K and V have different shapes", m->name);
    if (!s->tokens || !s->heads || !s->dim)
        return rb_error_set(RB_EINVAL, "%s: the KV cache is empty (%zu tokens x %zu heads x %zu)",
                            m->name, s->tokens, s->heads, s->dim);
    if (s->Q) {
        rc = kv_axes(s->Q, m->name, &l2, &s->nq, &s->qheads, &d2);
        if (rc) return rc;
        if (s->Q->ndim != s->K->ndim || l2 != s->layers || d2 != s->dim || s->qheads % s->heads ||
            !s->qheads)
            return rb_error_set(RB_EINVAL,
                                "%s: Q must be queries x q_heads x %zu%s with q_heads a multiple "
                                "of the %zu KV heads",
                                m->name, s->dim, s->layers > 1 ? " per layer" : "", s->heads);
    }
    if ((rc = rb_eval_kv_check_queries(m, metrics, nmetrics, s->nq))) return rc;
    if ((s->Kc == NULL) != (s->Vc == NULL))
        return rb_error_set(RB_EINVAL, "%s: K_calib and V_calib come together", m->name);
    if (s->Kc) {
        rc = kv_axes(s->Kc, m->name, &l2, &s->calib, &h2, &d2);
        size_t l3 = 0, t3 = 0, h3 = 0, d3 = 0;
        if (!rc) rc = kv_axes(s->Vc, m->name, &l3, &t3, &h3, &d3);
        if (rc) return rc;
        if (s->Kc->ndim != s->K->ndim || l2 != s->layers || h2 != s->heads || d2 != s->dim ||
            l3 != l2 || t3 != s->calib || h3 != h2 || d3 != d2)
            return rb_error_set(RB_EINVAL, "%s: K_calib/V_calib do not match K's layout", m->name);
    }
    s->prefill = s->tokens;
    s->geom = (rb_kv_geom){
        .heads = s->heads, .head_dim = s->dim, .capacity = s->tokens, .calib_tokens = s->calib};
    rb_kv_meta_read(ds, s->tokens, &s->geom, &s->prefill);
    return RB_OK;
}

void rb_kv_meta_read(const rb_dataset *ds, size_t tokens, rb_kv_geom *g, size_t *prefill) {
    const rb_tensor *meta = rb_dataset_tensor(ds, "kv_meta");
    size_t n = meta ? rb_tensor_numel(meta) : 0;
    if (n >= 2) {
        double pf = meta->data[0];
        if (prefill && pf >= 1 && pf < (double) tokens) *prefill = (size_t) pf;
        g->rope_base = meta->data[1];
    }
    g->pos0 = n >= 3 && meta->data[2] > 0 ? (size_t) meta->data[2] : 0;
    g->calib_pos0 = n >= 4 && meta->data[3] > 0 ? (size_t) meta->data[3] : 0;
}

/* Accumulators over every (layer, head, query). */
typedef struct kv_acc {
    double k_err, k_norm, v_err, v_norm;
    double logit_num, logit_den, logit_max;
    double kl_sum, kl_sq;
    double out_num, out_num_k, out_den;
    size_t rows; /* query rows seen */
    size_t nk;   /* requested top-k values (pooled, per slice or both) */
    size_t *ks;
    unsigned char *k_pooled, *k_slice; /* per k: topk_agree@k / topk_agree@k/head requested */
    double *topk_sum, *topk_sq;
    double bits_sum;
} kv_acc;

/* Work buffers for one (layer, query head): scores, softmax rows and outputs. */
typedef struct kv_work {
    float *s, *sh, *p, *ph, *o, *oh, *ok, *qbuf, *est;
    struct scored *order;
    unsigned char *mark;
} kv_work;

typedef struct scored {
    float v;
    size_t i;
} scored;

/* Descending by score, ties to the lower index. NaN sorts last. */
static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    int xn = isnan(x->v), yn = isnan(y->v);
    if (xn != yn) return xn - yn;
    if (!xn && x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Softmax of row a (length T, scale applied) into p; returns its log-sum-exp. */
static double softmax_row(const float *a, size_t T, double scale, float *p) {
    double mx = -INFINITY;
    for (size_t t = 0; t < T; t++)
        if (a[t] * scale > mx) mx = a[t] * scale;
    double sum = 0;
    for (size_t t = 0; t < T; t++) sum += exp(a[t] * scale - mx);
    double lse = mx + log(fmax(sum, 1.0)); /* sum >= 1: the largest term is exp(0) */
    for (size_t t = 0; t < T; t++) p[t] = (float) exp(a[t] * scale - lse);
    return lse;
}

/* Top-k overlap of rows s and sh (length T) for every requested k, added to to[0..nto). */
static void topk_row(const float *s, const float *sh, size_t T, kv_acc *const *to, size_t nto,
                     kv_work *w) {
    const kv_acc *acc = to[0];
    for (size_t t = 0; t < T; t++) w->order[t] = (scored){s[t], t};
    qsort(w->order, T, sizeof *w->order, cmp_scored);
    scored *oh = w->order + T;
    for (size_t t = 0; t < T; t++) oh[t] = (scored){sh[t], t};
    qsort(oh, T, sizeof *oh, cmp_scored);
    for (size_t j = 0; j < acc->nk; j++) {
        size_t k = acc->ks[j] < T ? acc->ks[j] : T;
        memset(w->mark, 0, T);
        for (size_t r = 0; r < k; r++) w->mark[w->order[r].i] = 1;
        size_t hit = 0;
        for (size_t r = 0; r < k; r++) hit += w->mark[oh[r].i];
        double f = (double) hit / (double) k;
        for (size_t x = 0; x < nto; x++) {
            to[x]->topk_sum[j] += f;
            to[x]->topk_sq[j] += f * f;
        }
    }
}

/* " layer l," where the data have layers. */
static const char *layer_text(const kv_shape *s, size_t l, char *buf, size_t size) {
    if (s->layers > 1)
        snprintf(buf, size, " layer %zu,", l);
    else
        buf[0] = 0;
    return buf;
}

/* Scores (nq x T) that are not finite would surface only as null metrics: an error naming the
 * first one. The true ones overflow only on data past what the loaders accept (RB_KV_ABS_MAX);
 * reconstructed or estimated ones where a method's output is not finite. */
static int check_scores(const kv_shape *s, const float *sc, const char *what, size_t l, size_t jq) {
    char lay[48];
    for (size_t i = 0; i < s->nq; i++)
        for (size_t t = 0; t < s->tokens; t++) {
            float v = sc[i * s->tokens + t];
            if (isfinite(v)) continue;
            return rb_error_set(RB_ENUMERIC,
                                "eval_kv:%s query head %zu: the %sscore q.k of query %zu and "
                                "token %zu %s",
                                layer_text(s, l, lay, sizeof lay), jq, what, i, t,
                                isnan(v) ? "is NaN" : "overflows fp32");
        }
    return RB_OK;
}

/* A reconstructed cache (tokens x heads x dim of one layer) with a value that is not finite:
 * the method's error, named by token, head and channel, instead of null metrics. */
static int check_cache(const rb_method *m, const kv_shape *s, const float *x, const char *which,
                       size_t l) {
    char lay[48];
    size_t n = s->tokens * s->heads * s->dim;
    for (size_t e = 0; e < n; e++) {
        if (isfinite(x[e])) continue;
        return rb_error_set(RB_ENUMERIC,
                            "%s:%s the reconstructed %s at token %zu, head %zu, channel %zu is %s",
                            m->name, layer_text(s, l, lay, sizeof lay), which,
                            e / (s->heads * s->dim), e / s->dim % s->heads, e % s->dim,
                            isnan(x[e]) ? "NaN"
                            : x[e] > 0  ? "+Inf"
                                        : "-Inf");
    }
    return RB_OK;
}

/* The scores and attention of query head jq of one layer against the true (K, V) and the
 * reconstructed (Kh, Vh) caches. Ls: the row stride of K in floats (heads x dim); Qs of Q.
 * est, when not NULL, holds the method's own score estimates (T x nq) for this head. The sums
 * go to acc (pooled) and, when sl is not NULL, also to sl (the head's slice); each gets the same
 * additions in the same order, so the pooled values do not depend on whether slices are kept. */
static int attend_head(const kv_shape *sh_, const float *Q, const float *K, const float *V,
                       const float *Kh, const float *Vh, const float *est, size_t l, size_t jq,
                       kv_acc *acc, kv_acc *sl, kv_work *w) {
    kv_acc *const to[2] = {acc, sl};
    size_t nto = sl ? 2 : 1;
    size_t T = sh_->tokens, D = sh_->dim, H = sh_->heads, nq = sh_->nq, Hq = sh_->qheads;
    size_t h = jq / (Hq / H), ks = H * D, qs = Hq * D;
    int rc = rb_gemm_f32(RB_NOTRANS, RB_TRANS, nq, T, D, 1.0f, Q + jq * D, qs, K + h * D, ks, 0.0f,
                         w->s, T);
    if (!rc && est) {
        for (size_t i = 0; i < nq; i++)
            for (size_t t = 0; t < T; t++) w->sh[i * T + t] = est[t * nq + i];
    } else if (!rc) {
        rc = rb_gemm_f32(RB_NOTRANS, RB_TRANS, nq, T, D, 1.0f, Q + jq * D, qs, Kh + h * D, ks, 0.0f,
                         w->sh, T);
    }
    if (!rc) rc = check_scores(sh_, w->s, "", l, jq);
    if (!rc) rc = check_scores(sh_, w->sh, est ? "method's estimated " : "reconstructed ", l, jq);
    if (rc) return rc;
    double num = 0, den = 0, scale = 1.0 / sqrt((double) D);
    for (size_t i = 0; i < nq; i++) {
        const float *s = w->s + i * T, *sh = w->sh + i * T;
        for (size_t t = 0; t < T; t++) {
            double d = (double) s[t] - sh[t];
            num += d * d;
            den += (double) s[t] * s[t];
        }
        if (acc->nk) topk_row(s, sh, T, to, nto, w);
        double lse = softmax_row(s, T, scale, w->p + i * T);
        double lseh = softmax_row(sh, T, scale, w->ph + i * T);
        /* KL(p || ph) = sum p (log p - log ph), the logs taken from the scores directly. */
        double kl = 0;
        for (size_t t = 0; t < T; t++) {
            double lp = s[t] * scale - lse, lph = sh[t] * scale - lseh;
            kl += exp(lp) * (lp - lph);
        }
        for (size_t x = 0; x < nto; x++) {
            to[x]->kl_sum += kl;
            to[x]->kl_sq += kl * kl;
        }
    }
    double unit = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
    for (size_t x = 0; x < nto; x++) {
        to[x]->rows += nq;
        to[x]->logit_num += num;
        to[x]->logit_den += den;
        to[x]->logit_max = fmax(to[x]->logit_max, unit);
    }
    /* Outputs: A V, A_hat V_hat and A_hat V (nq x D each). */
    rc = rb_gemm_f32(RB_NOTRANS, RB_NOTRANS, nq, D, T, 1.0f, w->p, T, V + h * D, ks, 0.0f, w->o, D);
    if (!rc)
        rc = rb_gemm_f32(RB_NOTRANS, RB_NOTRANS, nq, D, T, 1.0f, w->ph, T, Vh + h * D, ks, 0.0f,
                         w->oh, D);
    if (!rc)
        rc = rb_gemm_f32(RB_NOTRANS, RB_NOTRANS, nq, D, T, 1.0f, w->ph, T, V + h * D, ks, 0.0f,
                         w->ok, D);
    for (size_t e = 0; !rc && e < nq * D; e++) {
        double a = w->o[e], b = w->oh[e], c = w->ok[e];
        for (size_t x = 0; x < nto; x++) {
            to[x]->out_num += (a - b) * (a - b);
            to[x]->out_num_k += (a - c) * (a - c);
            to[x]->out_den += a * a;
        }
    }
    return rc;
}

static void sq_err(const float *x, const float *y, size_t n, double *err, double *norm) {
    for (size_t i = 0; i < n; i++) {
        double d = (double) x[i] - y[i];
        *err += d * d;
        *norm += (double) x[i] * x[i];
    }
}

/* A KV method on one layer: calibrate, prefill, decode steps, read. */
static int run_kv_layer(const rb_method *m, const rb_params *p, const kv_shape *s, size_t l,
                        uint64_t seed, float *Kh, float *Vh, double *bits) {
    size_t row = s->heads * s->dim, lay = s->tokens * row;
    const float *K = s->K->data + l * lay, *V = s->V->data + l * lay;
    rb_kv_geom g = s->geom;
    void *st = NULL;
    int rc = m->kv->create(p, &g, seed, &st);
    if (rc) return rc;
    if (s->Kc && m->kv->calibrate) {
        size_t cl = s->calib * row;
        rc = m->kv->calibrate(st, s->Kc->data + l * cl, s->Vc->data + l * cl, s->calib);
    }
    if (!rc) rc = m->kv->append(st, K, V, s->prefill);
    for (size_t t = s->prefill; !rc && t < s->tokens; t++)
        rc = m->kv->append(st, K + t * row, V + t * row, 1);
    if (!rc && m->kv->tokens(st) != s->tokens)
        rc = rb_error_set(RB_EINVAL, "%s: the cache holds %zu tokens after %zu were appended",
                          m->name, m->kv->tokens(st), s->tokens);
    if (!rc) rc = m->kv->read(st, Kh, Vh);
    if (!rc) *bits = m->kv->bits(st);
    m->kv->destroy(st);
    return rc;
}

/* A vector codec on one layer: rows (tokens x heads) of K and of V, each its own instance. When
 * the codec has its own estimator, the K codes stay in *kcodes for the scores. */
static int run_codec_rows(const rb_method *m, const rb_params *p, uint64_t seed, const float *x,
                          const float *calib, size_t ncalib, size_t rows, size_t d, float *xh,
                          void **keep, uint8_t **keep_codes, double *bits) {
    void *st = NULL;
    int rc = m->codec->create(p, d, seed, &st);
    if (rc) return rc;
    if (m->codec->calibrate)
        rc = calib ? m->codec->calibrate(st, calib, ncalib) : m->codec->calibrate(st, x, rows);
    size_t cb = m->codec->code_bytes(st);
    uint8_t *codes = malloc((keep ? rows : BATCH) * cb + 1);
    if (!rc && !codes) rc = rb_error_set(RB_ENOMEM, "%s: no memory for codes", m->name);
    for (size_t b = 0; !rc && b < rows; b += BATCH) {
        size_t n = rows - b < BATCH ? rows - b : BATCH;
        uint8_t *c = keep ? codes + b * cb : codes;
        rc = m->codec->encode(st, x + b * d, n, c);
        if (!rc) rc = m->codec->decode(st, c, n, xh + b * d);
    }
    *bits = m->codec->bits(st);
    if (!rc && keep) {
        *keep = st;
        *keep_codes = codes;
        return RB_OK;
    }
    free(codes);
    m->codec->destroy(st);
    return rc;
}

/* The codec's own score estimates for query head jq: est (T x nq). */
static int codec_estimate(const rb_method *m, void *st, const uint8_t *codes, const kv_shape *s,
                          const float *Q, size_t jq, kv_work *w, uint8_t *hcodes) {
    size_t cb = m->codec->code_bytes(st), H = s->heads, h = jq / (s->qheads / H);
    for (size_t t = 0; t < s->tokens; t++) memcpy(hcodes + t * cb, codes + (t * H + h) * cb, cb);
    for (size_t i = 0; i < s->nq; i++)
        memcpy(w->qbuf + i * s->dim, Q + (i * s->qheads + jq) * s->dim, s->dim * sizeof(float));
    return m->codec->inner_product(st, hcodes, s->tokens, w->qbuf, s->nq, w->est);
}

static void work_free(kv_work *w) {
    free(w->s);
    free(w->sh);
    free(w->p);
    free(w->ph);
    free(w->o);
    free(w->oh);
    free(w->ok);
    free(w->qbuf);
    free(w->est);
    free(w->order);
    free(w->mark);
}

static int work_alloc(const kv_shape *s, kv_work *w) {
    size_t nt = s->nq * s->tokens, od = s->nq * s->dim;
    memset(w, 0, sizeof *w);
    w->s = malloc(nt * sizeof(float) + 1);
    w->sh = malloc(nt * sizeof(float) + 1);
    w->p = malloc(nt * sizeof(float) + 1);
    w->ph = malloc(nt * sizeof(float) + 1);
    w->est = malloc(nt * sizeof(float) + 1);
    w->o = malloc(od * sizeof(float) + 1);
    w->oh = malloc(od * sizeof(float) + 1);
    w->ok = malloc(od * sizeof(float) + 1);
    w->qbuf = malloc(od * sizeof(float) + 1);
    w->order = malloc(2 * s->tokens * sizeof(scored));
    w->mark = malloc(s->tokens);
    if (!w->s || !w->sh || !w->p || !w->ph || !w->est || !w->o || !w->oh || !w->ok || !w->qbuf ||
        !w->order || !w->mark) {
        work_free(w);
        return rb_error_set(RB_ENOMEM, "kv eval: no memory for %zu x %zu scores", s->nq, s->tokens);
    }
    return RB_OK;
}

static int emit_all(const kv_shape *s, const kv_acc *a, const char *const *metrics, size_t nmetrics,
                    rb_metric_sink sink, void *ctx) {
    size_t elems = s->layers * s->tokens * s->heads, rows = a->rows;
    int rc = RB_OK;
    if (!rc && rb_eval_wants(metrics, nmetrics, "rel_mse_k"))
        rc = rb_eval_emit(sink, ctx, "rel_mse_k", a->k_norm > 0 ? a->k_err / a->k_norm : NAN, NAN,
                          elems);
    if (!rc && rb_eval_wants(metrics, nmetrics, "rel_mse_v"))
        rc = rb_eval_emit(sink, ctx, "rel_mse_v", a->v_norm > 0 ? a->v_err / a->v_norm : NAN, NAN,
                          elems);
    if (!rc && rb_eval_wants(metrics, nmetrics, "logit_err"))
        rc = rb_eval_emit(sink, ctx, "logit_err",
                          a->logit_den > 0 ? sqrt(a->logit_num / a->logit_den) : NAN, NAN,
                          rows * s->tokens);
    if (!rc && rb_eval_wants(metrics, nmetrics, "logit_err_max"))
        rc = rb_eval_emit(sink, ctx, "logit_err_max", a->logit_max, NAN, s->layers * s->heads);
    if (!rc && rb_eval_wants(metrics, nmetrics, "attn_kl")) {
        double mean = a->kl_sum / (double) rows,
               var = rows > 1 ? (a->kl_sq - mean * a->kl_sum) / (double) (rows - 1) : NAN;
        rc = rb_eval_emit(sink, ctx, "attn_kl", mean, sqrt(fmax(var, 0) / (double) rows), rows);
    }
    if (!rc && rb_eval_wants(metrics, nmetrics, "attn_out_err"))
        rc = rb_eval_emit(sink, ctx, "attn_out_err", a->out_den > 0 ? a->out_num / a->out_den : NAN,
                          NAN, rows);
    if (!rc && rb_eval_wants(metrics, nmetrics, "attn_out_err_k"))
        rc = rb_eval_emit(sink, ctx, "attn_out_err_k",
                          a->out_den > 0 ? a->out_num_k / a->out_den : NAN, NAN, rows);
    for (size_t j = 0; !rc && j < a->nk; j++) {
        if (!a->k_pooled[j]) continue;
        char name[64];
        snprintf(name, sizeof name, "topk_agree@%zu", a->ks[j]);
        double mean = a->topk_sum[j] / (double) rows,
               var = rows > 1 ? (a->topk_sq[j] - mean * a->topk_sum[j]) / (double) (rows - 1) : NAN;
        rc = rb_eval_emit(sink, ctx, name, mean, sqrt(fmax(var, 0) / (double) rows), rows);
    }
    if (!rc && rb_eval_wants(metrics, nmetrics, "bits"))
        rc = rb_eval_emit(sink, ctx, "bits", a->bits_sum / (double) s->layers, NAN, 1);
    return rc;
}

/* The per-slice metrics: "NAME/head" for these NAMEs. */
static const char *const slice_bases[] = {"logit_err", "rel_mse_k", "rel_mse_v", "attn_kl",
                                          "attn_out_err"};
enum { NSLICE_BASES = sizeof slice_bases / sizeof slice_bases[0] };

/* One slice's rows: "NAME/head" for each requested NAME, slice "layer=L,head=H". */
static int emit_slice(const kv_shape *s, const kv_acc *a, size_t l, size_t h,
                      const int want[NSLICE_BASES], rb_metric_sink sink, void *ctx) {
    char slice[64], name[64];
    snprintf(slice, sizeof slice, "layer=%zu,head=%zu", l, h);
    int rc = RB_OK;
    for (int i = 0; !rc && i < NSLICE_BASES; i++) {
        if (!want[i]) continue;
        double v = NAN, se = NAN;
        size_t n = a->rows;
        switch (i) {
        case 0:
            v = a->logit_den > 0 ? sqrt(a->logit_num / a->logit_den) : NAN;
            n = a->rows * s->tokens;
            break;
        case 1:
            v = a->k_norm > 0 ? a->k_err / a->k_norm : NAN;
            n = s->tokens;
            break;
        case 2:
            v = a->v_norm > 0 ? a->v_err / a->v_norm : NAN;
            n = s->tokens;
            break;
        case 3: {
            double r = (double) a->rows;
            v = a->rows ? a->kl_sum / r : NAN;
            double var = a->rows > 1 ? (a->kl_sq - v * a->kl_sum) / (r - 1) : NAN;
            se = sqrt(fmax(var, 0) / r);
            break;
        }
        default:
            v = a->out_den > 0 ? a->out_num / a->out_den : NAN;
            break;
        }
        snprintf(name, sizeof name, "%s/head", slice_bases[i]);
        rb_metric_value mv = {rb_metric_find(name), v, se, n, slice};
        RB_ASSERT(mv.metric != NULL);
        rc = sink(ctx, &mv);
    }
    for (size_t j = 0; !rc && j < a->nk; j++) {
        if (!a->k_slice[j]) continue;
        double r = (double) a->rows, v = a->rows ? a->topk_sum[j] / r : NAN;
        double var = a->rows > 1 ? (a->topk_sq[j] - v * a->topk_sum[j]) / (r - 1) : NAN;
        snprintf(name, sizeof name, "topk_agree@%zu/head", a->ks[j]);
        rb_metric_value mv = {rb_metric_find(name), v, sqrt(fmax(var, 0) / r), a->rows, slice};
        RB_ASSERT(mv.metric != NULL);
        rc = sink(ctx, &mv);
    }
    return rc;
}

/* The attention metrics, pooled or per slice (logit_err, attn_kl and attn_out_err of the slice
 * bases), and topk_agree@k in either form score queries against the keys; rel_mse_k/_v and bits
 * do not. */
int rb_eval_kv_needs_queries(const char *const *metrics, size_t nmetrics) {
    static const char *const attn[] = {"logit_err",    "logit_err_max",    "attn_kl",
                                       "attn_out_err", "attn_out_err_k",   "logit_err/head",
                                       "attn_kl/head", "attn_out_err/head"};
    for (size_t i = 0; i < sizeof attn / sizeof attn[0]; i++)
        if (rb_eval_wants(metrics, nmetrics, attn[i])) return 1;
    for (size_t i = 0; i < nmetrics; i++)
        if ((topk_k(metrics[i], 0) || topk_k(metrics[i], 1)) && rb_metric_find(metrics[i]))
            return 1;
    return 0;
}

int rb_eval_kv_check_queries(const rb_method *m, const char *const *metrics, size_t nmetrics,
                             size_t nq) {
    if (nq || !rb_eval_kv_needs_queries(metrics, nmetrics)) return RB_OK;
    return rb_error_set(
        RB_EINVAL, "%s: the attention metrics need queries (tensor 'Q'; set " RB_QUERIES_HINT ")",
        m->name);
}

int rb_eval_kv(const rb_method *m, const rb_params *p, const rb_dataset *ds, uint64_t seed,
               const char *const *metrics, size_t nmetrics, rb_metric_sink sink, void *ctx) {
    int need_q = rb_eval_kv_needs_queries(metrics, nmetrics);
    kv_acc acc = {0};
    /* Every requested k once, whether asked pooled, per slice or both (a name the metric table
     * lacks is not computed: the config rejects it before a run). */
    size_t *kreq = malloc((nmetrics + 1) * sizeof *kreq);
    unsigned char *kp = calloc(nmetrics + 1, 1), *ksl = calloc(nmetrics + 1, 1);
    for (size_t i = 0; kreq && kp && ksl && i < nmetrics; i++) {
        int per_head = topk_k(metrics[i], 1) != 0;
        size_t k = topk_k(metrics[i], per_head), j = 0;
        if (!k || !rb_metric_find(metrics[i])) continue;
        while (j < acc.nk && kreq[j] != k) j++;
        if (j == acc.nk) kreq[acc.nk++] = k;
        if (per_head)
            ksl[j] = 1;
        else
            kp[j] = 1;
    }
    acc.ks = kreq;
    acc.k_pooled = kp;
    acc.k_slice = ksl;
    int want_slice[NSLICE_BASES], any_slice = 0;
    for (int i = 0; i < NSLICE_BASES; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s/head", slice_bases[i]);
        want_slice[i] = rb_eval_wants(metrics, nmetrics, name);
        any_slice |= want_slice[i];
    }
    for (size_t j = 0; j < acc.nk; j++) any_slice |= ksl[j];
    kv_shape s;
    int rc = RB_OK;
    if (!m->kv && !m->codec) rc = rb_error_set(RB_EINVAL, "%s: not a vector or KV codec", m->name);
    if (!rc) rc = read_shape(m, ds, metrics, nmetrics, &s);
    if (rc) {
        free(kreq);
        free(kp);
        free(ksl);
        return rc;
    }
    size_t row = s.heads * s.dim, lay = s.tokens * row;
    float *Kh = malloc(lay * sizeof(float)), *Vh = malloc(lay * sizeof(float));
    acc.topk_sum = calloc(acc.nk + 1, sizeof(double));
    acc.topk_sq = calloc(acc.nk + 1, sizeof(double));
    uint8_t *hcodes = NULL;
    kv_work w = {0};
    /* sl: the sums of each (layer, KV head) slice when NAME/head metrics are asked for. */
    size_t nslices = any_slice ? s.layers * s.heads : 0;
    kv_acc *sl = calloc(nslices + 1, sizeof *sl);
    double *sl_topk = calloc(2 * (acc.nk + 1) * (nslices + 1), sizeof(double));
    for (size_t i = 0; sl && sl_topk && i < nslices; i++) {
        sl[i].nk = acc.nk;
        sl[i].ks = acc.ks;
        sl[i].k_pooled = kp;
        sl[i].k_slice = ksl;
        sl[i].topk_sum = sl_topk + 2 * (acc.nk + 1) * i;
        sl[i].topk_sq = sl[i].topk_sum + acc.nk + 1;
    }
    if (!Kh || !Vh || !acc.ks || !acc.k_pooled || !acc.k_slice || !acc.topk_sum || !acc.topk_sq ||
        !sl || !sl_topk)
        rc = rb_error_set(RB_ENOMEM, "%s: no memory for the reconstructed cache", m->name);
    if (!rc && need_q) rc = work_alloc(&s, &w);
    int use_est = m->codec && m->codec->inner_product && need_q;
    for (size_t l = 0; !rc && l < s.layers; l++) {
        const float *K = s.K->data + l * lay, *V = s.V->data + l * lay;
        uint64_t lseed = s.layers > 1 ? rb_seed_derive(seed, 0x4b56, l) : seed;
        void *kst = NULL;
        uint8_t *kcodes = NULL;
        double bk = 0, bv = 0;
        if (m->kv) {
            rc = run_kv_layer(m, p, &s, l, lseed, Kh, Vh, &bk);
            bv = bk;
        } else {
            size_t cl = s.calib * row;
            rc =
                run_codec_rows(m, p, lseed, K, s.Kc ? s.Kc->data + l * cl : NULL, s.calib * s.heads,
                               s.tokens * s.heads, s.dim, Kh, use_est ? &kst : NULL, &kcodes, &bk);
            if (!rc)
                rc = run_codec_rows(m, p, lseed ^ 0x5656565656565656ull, V,
                                    s.Vc ? s.Vc->data + l * cl : NULL, s.calib * s.heads,
                                    s.tokens * s.heads, s.dim, Vh, NULL, NULL, &bv);
            if (!rc && use_est && !hcodes) {
                hcodes = malloc(s.tokens * m->codec->code_bytes(kst) + 1);
                if (!hcodes) rc = rb_error_set(RB_ENOMEM, "%s: no memory", m->name);
            }
        }
        acc.bits_sum += (bk + bv) / 2;
        if (!rc) rc = check_cache(m, &s, Kh, "key", l);
        if (!rc) rc = check_cache(m, &s, Vh, "value", l);
        if (!rc) {
            sq_err(K, Kh, lay, &acc.k_err, &acc.k_norm);
            sq_err(V, Vh, lay, &acc.v_err, &acc.v_norm);
        }
        for (size_t e = 0; !rc && e < s.tokens * s.heads && nslices; e++) {
            kv_acc *a = &sl[l * s.heads + e % s.heads];
            sq_err(K + e * s.dim, Kh + e * s.dim, s.dim, &a->k_err, &a->k_norm);
            sq_err(V + e * s.dim, Vh + e * s.dim, s.dim, &a->v_err, &a->v_norm);
        }
        const float *Q = need_q ? s.Q->data + l * s.nq * s.qheads * s.dim : NULL;
        for (size_t jq = 0; !rc && need_q && jq < s.qheads; jq++) {
            if (use_est) rc = codec_estimate(m, kst, kcodes, &s, Q, jq, &w, hcodes);
            kv_acc *slice = nslices ? &sl[l * s.heads + jq / (s.qheads / s.heads)] : NULL;
            if (!rc)
                rc = attend_head(&s, Q, K, V, Kh, Vh, use_est ? w.est : NULL, l, jq, &acc, slice,
                                 &w);
        }
        if (kst) m->codec->destroy(kst);
        free(kcodes);
    }
    if (!rc) rc = emit_all(&s, &acc, metrics, nmetrics, sink, ctx);
    for (size_t i = 0; !rc && i < nslices; i++)
        rc = emit_slice(&s, &sl[i], i / s.heads, i % s.heads, want_slice, sink, ctx);
    free(sl);
    free(sl_topk);
    work_free(&w);
    free(hcodes);
    free(Kh);
    free(Vh);
    free(acc.ks);
    free(acc.k_pooled);
    free(acc.k_slice);
    free(acc.topk_sum);
    free(acc.topk_sq);
    return rc;
}
