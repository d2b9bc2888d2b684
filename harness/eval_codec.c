/* The codec evaluator: encode and decode every base vector, then distortion and inner-product
 * metrics against the queries. No timing here: latency is a separate pass. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/eval.h"

enum { BATCH = 4096, IP_BLOCK = 512 };

static double sqnorm(const float *x, size_t d) {
    double s = 0;
    for (size_t j = 0; j < d; j++) s += (double) x[j] * x[j];
    return s;
}

/* A finite input whose reconstruction is not finite: inputs with norms close to FLT_MAX can
 * overflow in the decode (a norm times a centroid vector longer than 1, EDEN's scale 1 / cos),
 * which would otherwise surface only as a null vnmse. An error naming the vector instead. */
static int check_decoded(const char *name, const float *x, const float *xh, size_t count,
                         size_t d) {
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < d; j++) {
            if (isfinite(xh[i * d + j])) continue;
            double nrm = 0;
            for (size_t t = 0; t < d; t++) nrm += (double) x[i * d + t] * x[i * d + t];
            if (!isfinite(nrm))
                return rb_error_set(RB_ENUMERIC, "%s: vector %zu has a NaN or Inf coordinate", name,
                                    i);
            return rb_error_set(RB_ENUMERIC,
                                "%s: vector %zu (norm %.3g) decodes to %s at coordinate %zu: its "
                                "norm is too close to the fp32 limit (%.3g) for this codec",
                                name, i, sqrt(nrm), isnan(xh[i * d + j]) ? "NaN" : "inf", j,
                                (double) FLT_MAX);
        }
    return RB_OK;
}

/* vNMSE per vector: |x - x_hat|^2 / |x|^2 (a zero vector decoded exactly counts as 0). */
static int eval_vnmse(const float *x, const float *xh, size_t count, size_t d, rb_metric_sink sink,
                      void *ctx) {
    double *e = malloc(count * sizeof *e);
    if (!e) return rb_error_set(RB_ENOMEM, "vnmse: no memory");
    for (size_t i = 0; i < count; i++) {
        double num = 0, den = sqnorm(x + i * d, d);
        for (size_t j = 0; j < d; j++) {
            double diff = (double) x[i * d + j] - xh[i * d + j];
            num += diff * diff;
        }
        e[i] = den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
    }
    double mean, se;
    rb_mean_se(e, count, &mean, &se);
    free(e);
    return rb_eval_emit(sink, ctx, "vnmse", mean, se, count);
}

int rb_codec_scores(const rb_method *m, void *st, const uint8_t *codes, const float *xh,
                    size_t rows, size_t d, const float *q, size_t nq, float *out, int traced) {
    if (m->codec->inner_product) return m->codec->inner_product(st, codes, rows, q, nq, out);
    return (traced ? rb_gemm_f32_traced : rb_gemm_f32)(RB_NOTRANS, RB_TRANS, rows, nq, d, 1.0f, xh,
                                                       d, q, d, 0.0f, out, nq);
}

/* rb_codec_scores of base rows [b, b + rows) against every query (rows x nq). */
static int estimate_block(const rb_method *m, void *st, const float *xh, const uint8_t *codes,
                          size_t cb, size_t b, size_t rows, size_t d, const rb_tensor *q,
                          float *sh) {
    return rb_codec_scores(m, st, codes + b * cb, xh + b * d, rows, d, q->data, q->shape[0], sh, 0);
}

/* The ratio sum(a) / sum(b) of per-vector sums and its standard error over the vectors (the
 * delta method, pairs of one base vector kept together): sqrt(n / (n - 1) * sum (a_i - r b_i)^2)
 * / |sum b|. NaN when sum b is 0; the error is NaN for n < 2. */
static void ratio_se(const double *a, const double *b, size_t n, double *r, double *se) {
    double sa = 0, sb = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        sa += a[i];
        sb += b[i];
    }
    *r = sb != 0 ? sa / sb : NAN;
    for (size_t i = 0; i < n; i++) s2 += (a[i] - *r * b[i]) * (a[i] - *r * b[i]);
    *se = n > 1 && sb != 0 ? sqrt((double) n / (double) (n - 1) * s2) / fabs(sb) : NAN;
}

/* A score that is not finite would surface only as null ip metrics or a wrong recall: an error
 * naming the pair, for every metric that scores (ip_slope, d_dprod, ip_bias, recall@k). The true
 * <y, x> overflows fp32 only for norms whose product nears FLT_MAX; an estimate (from a finite
 * reconstruction, or the codec's estimator) where the codec's arithmetic did. */
static int check_score(const char *name, float t, float e, size_t i, size_t j, double xn,
                       double yn) {
    if (!isfinite(t))
        return rb_error_set(RB_ENUMERIC,
                            "scores: the score <y, x> of base vector %zu and query %zu "
                            "overflows fp32 (|x| = %.3g, |y| = %.3g)",
                            i, j, sqrt(xn), sqrt(yn));
    if (!isfinite(e))
        return rb_error_set(RB_ENUMERIC,
                            "%s: its score estimate for base vector %zu and query %zu is %s "
                            "(|x| = %.3g, |y| = %.3g)",
                            name, i, j, isnan(e) ? "NaN" : "beyond fp32", sqrt(xn), sqrt(yn));
    return RB_OK;
}

/* Inner products against the queries, in blocks of base vectors: the true scores t by GEMM, the
 * estimates e by estimate_block; every (base vector, query) pair counts once.
 *
 * ip_slope: sum t e / sum t^2 (least squares through 0, raw scores). Its standard error is the
 * cluster-robust one over base vectors, sqrt(n / (n - 1) sum_i (sum_j t_ij r_ij)^2) / sum t^2
 * with r = e - slope t: the pairs of one base vector share its error (a codec's shrinkage
 * <x, x_hat> / |x|^2 varies from vector to vector), so the textbook OLS error, which takes the
 * count x nq pairs as independent, would understate it by up to sqrt(nq).
 *
 * d_dprod normalizes each squared error by |x|^2 |y|^2, so it is d * D_prod for unit vectors and
 * scale-free otherwise; its standard error is over base vectors.
 *
 * ip_bias: with t and e of each pair scaled by 1/(|x| |y|) (unit vectors, as d_dprod),
 * sum (e - t) sign(t) / sum |t|, with the same cluster-robust error (ratio_se). The plain mean
 * E[e - t] is 0 for any codec when the queries are independent of the base (y and -y are equally
 * likely), so the error is measured toward the sign of the true score: an estimator with
 * E[e | t] = a t scores a - 1 whatever the distribution of t, 0 when unbiased and 2/pi - 1 for
 * TurboQuant_mse at 1 bit; it is the mean signed error as a fraction of the mean |<y,x>|.
 *
 * When top is not NULL it also finds each query's true top-1 base vector (the lowest index among
 * equal scores) and that vector's estimated score, for the recall pass. */
static int eval_ip(const rb_method *m, void *st, const float *x, const float *xh,
                   const uint8_t *codes, size_t cb, size_t count, size_t d, const rb_tensor *q,
                   int want_slope, int want_dprod, int want_bias, size_t *top, float *top_est,
                   rb_metric_sink sink, void *ctx) {
    size_t nq = q->shape[0];
    float *s = malloc(IP_BLOCK * nq * sizeof *s), *sh = malloc(IP_BLOCK * nq * sizeof *sh);
    double *qn = malloc(nq * sizeof *qn), *per = malloc(count * sizeof *per);
    /* Per base vector: sum t e, sum t^2 (slope); sum (e - t) sign t, sum |t| (bias). */
    double *te = malloc(count * sizeof *te), *tt = malloc(count * sizeof *tt);
    double *bs = malloc(count * sizeof *bs), *ba = malloc(count * sizeof *ba);
    float *best = top ? malloc(nq * sizeof *best) : NULL;
    int rc = (!s || !sh || !qn || !per || !te || !tt || !bs || !ba || (top && !best))
                 ? rb_error_set(RB_ENOMEM, "ip metrics: no memory")
                 : 0;
    for (size_t j = 0; !rc && j < nq; j++) qn[j] = sqnorm(q->data + j * d, d);
    for (size_t b = 0; !rc && b < count; b += IP_BLOCK) {
        size_t rows = count - b < IP_BLOCK ? count - b : IP_BLOCK;
        rc = rb_gemm_f32(RB_NOTRANS, RB_TRANS, rows, nq, d, 1.0f, x + b * d, d, q->data, d, 0.0f, s,
                         nq);
        if (!rc) rc = estimate_block(m, st, xh, codes, cb, b, rows, d, q, sh);
        for (size_t i = 0; !rc && i < rows; i++) {
            double xn = sqnorm(x + (b + i) * d, d), acc = 0, sxy = 0, sxx = 0, bsum = 0, babs = 0;
            for (size_t j = 0; !rc && j < nq; j++) {
                double t = s[i * nq + j], e = sh[i * nq + j];
                if (!isfinite(t + e))
                    rc = check_score(m->name, s[i * nq + j], sh[i * nq + j], b + i, j, xn, qn[j]);
                sxy += t * e;
                sxx += t * t;
                double den = xn * qn[j];
                if (den > 0) {
                    acc += (t - e) * (t - e) / den;
                    double sc = 1.0 / sqrt(den), tu = t * sc, eu = e * sc;
                    bsum += tu > 0 ? eu - tu : tu < 0 ? tu - eu : 0.0;
                    babs += fabs(tu);
                }
                if (top && (b + i == 0 || s[i * nq + j] > best[j])) {
                    best[j] = s[i * nq + j];
                    top[j] = b + i;
                    top_est[j] = sh[i * nq + j];
                }
            }
            per[b + i] = (double) d * acc / (double) nq;
            te[b + i] = sxy;
            tt[b + i] = sxx;
            bs[b + i] = bsum;
            ba[b + i] = babs;
        }
    }
    if (!rc && want_slope) {
        double slope, se;
        /* sum_j t_ij r_ij = te_i - slope tt_i: the slope's error is the ratio's. */
        ratio_se(te, tt, count, &slope, &se);
        rc = rb_eval_emit(sink, ctx, "ip_slope", slope, se, count); /* se over vectors */
    }
    if (!rc && want_dprod) {
        double mean, se;
        rb_mean_se(per, count, &mean, &se);
        rc = rb_eval_emit(sink, ctx, "d_dprod", mean, se, count);
    }
    if (!rc && want_bias) {
        double bias, se;
        ratio_se(bs, ba, count, &bias, &se);
        rc = rb_eval_emit(sink, ctx, "ip_bias", bias, se, count);
    }
    free(s);
    free(sh);
    free(qn);
    free(per);
    free(te);
    free(tt);
    free(bs);
    free(ba);
    free(best);
    return rc;
}

/* The k of a recall@k metric the evaluator computes (1..RB_RECALL_K_MAX), or 0. */
static size_t recall_k(const char *name) {
    size_t k = rb_metric_recall_k(name);
    return k && rb_metric_find(name) ? k : 0;
}

int rb_eval_codec_needs_queries(const char *const *metrics, size_t nmetrics) {
    int need = rb_eval_wants(metrics, nmetrics, "ip_slope") ||
               rb_eval_wants(metrics, nmetrics, "d_dprod") ||
               rb_eval_wants(metrics, nmetrics, "ip_bias");
    for (size_t t = 0; t < nmetrics && !need; t++) need = recall_k(metrics[t]) != 0;
    return need;
}

int rb_eval_codec_check_queries(const rb_method *m, const char *const *metrics, size_t nmetrics,
                                size_t d, int have_queries) {
    if (have_queries || !rb_eval_codec_needs_queries(metrics, nmetrics)) return RB_OK;
    return rb_error_set(RB_EINVAL,
                        "%s: metrics ip_slope/d_dprod/ip_bias/recall@k need queries of "
                        "dimension %zu (set " RB_QUERIES_HINT ")",
                        m->name, d);
}

/* Recall@1@k: the fraction of queries whose true top-1 base vector (by exact inner product) is
 * among the k best by estimated score. Only the rank of that one vector matters: the number of
 * base vectors scored strictly higher, plus those scored equal at a lower index (ties go to the
 * lower index, as for the true top-1). Every estimate is finite (eval_ip, which runs first,
 * makes a non-finite one an error). The estimates are recomputed block by block, so memory stays
 * O(block x nq). Standard error: binomial, sqrt(p (1 - p) / nq). */
static int eval_recall(const rb_method *m, void *st, const float *xh, const uint8_t *codes,
                       size_t cb, size_t count, size_t d, const rb_tensor *q, const size_t *top,
                       const float *top_est, const char *const *metrics, size_t nmetrics,
                       rb_metric_sink sink, void *ctx) {
    size_t nq = q->shape[0];
    float *sh = malloc(IP_BLOCK * nq * sizeof *sh);
    size_t *rank = calloc(nq, sizeof *rank);
    int rc = (!sh || !rank) ? rb_error_set(RB_ENOMEM, "recall: no memory") : 0;
    for (size_t b = 0; !rc && b < count; b += IP_BLOCK) {
        size_t rows = count - b < IP_BLOCK ? count - b : IP_BLOCK;
        rc = estimate_block(m, st, xh, codes, cb, b, rows, d, q, sh);
        for (size_t i = 0; !rc && i < rows; i++)
            for (size_t j = 0; j < nq; j++) {
                float e = sh[i * nq + j], et = top_est[j];
                rank[j] += e > et || (e == et && b + i < top[j]);
            }
    }
    for (size_t t = 0; !rc && t < nmetrics; t++) {
        size_t k = recall_k(metrics[t]);
        if (!k) continue;
        size_t hits = 0;
        for (size_t j = 0; j < nq; j++) hits += rank[j] < k;
        double p = (double) hits / (double) nq;
        rc = rb_eval_emit(sink, ctx, metrics[t], p, sqrt(p * (1 - p) / (double) nq), nq);
    }
    free(sh);
    free(rank);
    return rc;
}

int rb_eval_codec_no_vectors(const rb_method *m) {
    return rb_error_set(RB_EINVAL, "%s: the dataset has no 2-d tensor 'x' of base vectors",
                        m->name);
}

int rb_eval_codec(const rb_method *m, const rb_params *p, const rb_dataset *ds, uint64_t seed,
                  const char *const *metrics, size_t nmetrics, rb_metric_sink sink, void *ctx) {
    /* KV methods, and vector codecs on KV data (no 'x' but K and V), go to the KV evaluator. */
    if (m->kv || (!rb_dataset_tensor(ds, "x") && rb_dataset_tensor(ds, "K")))
        return rb_eval_kv(m, p, ds, seed, metrics, nmetrics, sink, ctx);
    const rb_tensor *xt = rb_dataset_tensor(ds, "x"), *q = rb_dataset_tensor(ds, "queries");
    if (!xt || xt->ndim != 2) return rb_eval_codec_no_vectors(m);
    size_t count = xt->shape[0], d = xt->shape[1];
    if (count == 0 || d == 0)
        return rb_error_set(RB_EINVAL, "%s: the dataset's 'x' is empty (%zu x %zu)", m->name, count,
                            d);
    int want_slope = rb_eval_wants(metrics, nmetrics, "ip_slope"),
        want_dprod = rb_eval_wants(metrics, nmetrics, "d_dprod"),
        want_bias = rb_eval_wants(metrics, nmetrics, "ip_bias"), want_recall = 0;
    for (size_t t = 0; t < nmetrics; t++) {
        size_t k = recall_k(metrics[t]);
        if (k > count)
            return rb_error_set(RB_EINVAL,
                                "%s: metric '%s' asks for the top %zu of a base set of %zu vectors",
                                m->name, metrics[t], k, count);
        if (k) want_recall = 1;
    }
    int want_ip = rb_eval_codec_needs_queries(metrics, nmetrics);
    int rc = rb_eval_codec_check_queries(m, metrics, nmetrics, d,
                                         q && q->ndim == 2 && q->shape[1] == d && q->shape[0]);
    if (rc) return rc;
    void *st = NULL;
    if ((rc = m->codec->create(p, d, seed, &st))) return rc;
    const rb_tensor *calib = rb_dataset_tensor(ds, "calib");
    if (calib && (calib->ndim != 2 || calib->shape[1] != d))
        rc = rb_error_set(RB_EINVAL, "%s: the calibration tensor 'calib' must be N x %zu", m->name,
                          d);
    if (!rc && m->codec->calibrate)
        rc = calib ? m->codec->calibrate(st, calib->data, calib->shape[0])
                   : m->codec->calibrate(st, xt->data, count);
    size_t cb = m->codec->code_bytes(st);
    uint8_t *codes = malloc(count * cb + 1);
    float *xh = malloc(count * d * sizeof *xh);
    if (!rc && (!codes || !xh)) rc = rb_error_set(RB_ENOMEM, "%s: no memory for codes", m->name);
    for (size_t b = 0; !rc && b < count; b += BATCH) {
        size_t n = count - b < BATCH ? count - b : BATCH;
        rc = m->codec->encode(st, xt->data + b * d, n, codes + b * cb);
        if (!rc) rc = m->codec->decode(st, codes + b * cb, n, xh + b * d);
        /* A codec numbers vectors within its call: say where the call starts. */
        if (rc && count > BATCH)
            rc = rb_error_set(rc, "%s (in the batch that starts at vector %zu of the dataset)",
                              rb_error_detail(), b);
    }
    if (!rc) rc = check_decoded(m->name, xt->data, xh, count, d);
    if (!rc && rb_eval_wants(metrics, nmetrics, "vnmse"))
        rc = eval_vnmse(xt->data, xh, count, d, sink, ctx);
    size_t *top = NULL;
    float *top_est = NULL;
    if (!rc && want_recall) {
        top = malloc(q->shape[0] * sizeof *top);
        top_est = malloc(q->shape[0] * sizeof *top_est);
        if (!top || !top_est) rc = rb_error_set(RB_ENOMEM, "%s: no memory for recall", m->name);
    }
    if (!rc && want_ip)
        rc = eval_ip(m, st, xt->data, xh, codes, cb, count, d, q, want_slope, want_dprod, want_bias,
                     top, top_est, sink, ctx);
    if (!rc && want_recall)
        rc = eval_recall(m, st, xh, codes, cb, count, d, q, top, top_est, metrics, nmetrics, sink,
                         ctx);
    free(top);
    free(top_est);
    if (!rc && rb_eval_wants(metrics, nmetrics, "bits"))
        rc = rb_eval_emit(sink, ctx, "bits", m->codec->bits(st), NAN, 1);
    free(codes);
    free(xh);
    m->codec->destroy(st);
    return rc;
}
