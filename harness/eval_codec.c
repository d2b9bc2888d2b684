/* The codec evaluator: encode and decode every base vector, then distortion and inner-product
 * metrics against the queries. No timing here: latency is a separate pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/eval.h"

enum { BATCH = 4096, IP_BLOCK = 512 };

static int wants(const char *const *metrics, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(metrics[i], name) == 0) return 1;
    return 0;
}

static int emit(rb_metric_sink sink, void *ctx, const char *name, double value, double se,
                size_t n) {
    rb_metric_value v = {rb_metric_find(name), value, se, n};
    RB_ASSERT(v.metric != NULL);
    return sink(ctx, &v);
}

/* Mean and standard error of the mean of per-item values. */
static void mean_se(const double *v, size_t n, double *mean, double *se) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    *mean = s / (double) n;
    for (size_t i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *se = n > 1 ? sqrt(s2 / (double) (n - 1) / (double) n) : NAN;
}

static double sqnorm(const float *x, size_t d) {
    double s = 0;
    for (size_t j = 0; j < d; j++) s += (double) x[j] * x[j];
    return s;
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
    mean_se(e, count, &mean, &se);
    free(e);
    return emit(sink, ctx, "vnmse", mean, se, count);
}

/* Inner products against the queries, in blocks of base vectors: the true scores by GEMM, the
 * estimates by the codec's own estimator when it has one, else by GEMM on the decoded vectors.
 * d_dprod normalizes each squared error by |x|^2 |y|^2, so it is d * D_prod for unit vectors and
 * scale-free otherwise. */
static int eval_ip(const rb_method *m, void *st, const float *x, const float *xh,
                   const uint8_t *codes, size_t cb, size_t count, size_t d, const rb_tensor *q,
                   int want_slope, int want_dprod, rb_metric_sink sink, void *ctx) {
    size_t nq = q->shape[0];
    float *s = malloc(IP_BLOCK * nq * sizeof *s), *sh = malloc(IP_BLOCK * nq * sizeof *sh);
    double *qn = malloc(nq * sizeof *qn), *per = malloc(count * sizeof *per);
    int rc = (!s || !sh || !qn || !per) ? rb_error_set(RB_ENOMEM, "ip metrics: no memory") : 0;
    for (size_t j = 0; !rc && j < nq; j++) qn[j] = sqnorm(q->data + j * d, d);
    double sxy = 0, sxx = 0;
    for (size_t b = 0; !rc && b < count; b += IP_BLOCK) {
        size_t rows = count - b < IP_BLOCK ? count - b : IP_BLOCK;
        rc = rb_gemm_f32(RB_NOTRANS, RB_TRANS, rows, nq, d, 1.0f, x + b * d, d, q->data, d, 0.0f, s,
                         nq);
        if (rc) break;
        if (m->codec->inner_product)
            rc = m->codec->inner_product(st, codes + b * cb, rows, q->data, nq, sh);
        else
            rc = rb_gemm_f32(RB_NOTRANS, RB_TRANS, rows, nq, d, 1.0f, xh + b * d, d, q->data, d,
                             0.0f, sh, nq);
        for (size_t i = 0; !rc && i < rows; i++) {
            double xn = sqnorm(x + (b + i) * d, d), acc = 0;
            for (size_t j = 0; j < nq; j++) {
                double t = s[i * nq + j], e = sh[i * nq + j];
                sxy += t * e;
                sxx += t * t;
                double den = xn * qn[j];
                acc += den > 0 ? (t - e) * (t - e) / den : 0.0;
            }
            per[b + i] = (double) d * acc / (double) nq;
        }
    }
    if (!rc && want_slope)
        rc = emit(sink, ctx, "ip_slope", sxx > 0 ? sxy / sxx : NAN, NAN, count * nq);
    if (!rc && want_dprod) {
        double mean, se;
        mean_se(per, count, &mean, &se);
        rc = emit(sink, ctx, "d_dprod", mean, se, count);
    }
    free(s);
    free(sh);
    free(qn);
    free(per);
    return rc;
}

int rb_eval_codec(const rb_method *m, const rb_params *p, const rb_dataset *ds, uint64_t seed,
                  const char *const *metrics, size_t nmetrics, rb_metric_sink sink, void *ctx) {
    const rb_tensor *xt = rb_dataset_tensor(ds, "x"), *q = rb_dataset_tensor(ds, "queries");
    if (!xt || xt->ndim != 2)
        return rb_error_set(RB_EINVAL, "%s: the dataset has no 2-d tensor 'x' of base vectors",
                            m->name);
    size_t count = xt->shape[0], d = xt->shape[1];
    if (count == 0 || d == 0)
        return rb_error_set(RB_EINVAL, "%s: the dataset's 'x' is empty (%zu x %zu)", m->name, count,
                            d);
    int want_slope = wants(metrics, nmetrics, "ip_slope"),
        want_dprod = wants(metrics, nmetrics, "d_dprod");
    if ((want_slope || want_dprod) && (!q || q->ndim != 2 || q->shape[1] != d || !q->shape[0]))
        return rb_error_set(RB_EINVAL,
                            "%s: metrics ip_slope/d_dprod need queries of dimension %zu (set "
                            "'queries: N' on the dataset)",
                            m->name, d);
    void *st = NULL;
    int rc = m->codec->create(p, d, seed, &st);
    if (rc) return rc;
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
    }
    if (!rc && wants(metrics, nmetrics, "vnmse"))
        rc = eval_vnmse(xt->data, xh, count, d, sink, ctx);
    if (!rc && (want_slope || want_dprod))
        rc =
            eval_ip(m, st, xt->data, xh, codes, cb, count, d, q, want_slope, want_dprod, sink, ctx);
    if (!rc && wants(metrics, nmetrics, "bits"))
        rc = emit(sink, ctx, "bits", m->codec->bits(st), NAN, 1);
    free(codes);
    free(xh);
    m->codec->destroy(st);
    return rc;
}
