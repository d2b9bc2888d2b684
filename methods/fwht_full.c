/* fwht_full: the dense baseline of the sparse family: read all N samples from the oracle, one
 * full-length FWHT through the kernel layer, keep the k largest coefficients (or those above a
 * threshold). Needs O(N) memory, so N is limited to 2^FULL_LOG2N_MAX. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/sparse_common.h"

enum { FULL_LOG2N_MAX = 28, CHUNK = 1 << 16 };

static const rb_param_def full_params[] = {
    RB_PARAM_INT("k", "0", 0, 1L << 30, "keep the k largest |X| (0: keep every |X| > threshold)"),
    RB_PARAM_FLOAT("threshold", "1e-6", 0, 1e30, "with k = 0: keep the coefficients above this"),
    RB_PARAM_ENUM("precision", "f64", "f64|f32",
                  "f64: the fp64 reference FWHT; f32: the fastest fp32 kernel (dispatch)"),
    RB_SPARSE_EVAL_PARAMS,
};

/* Min-heap on |value| (ties: the larger index is smaller, so the lower index survives). */
static int heap_less(const rb_sparse_coef *a, const rb_sparse_coef *b) {
    double x = fabs(a->value), y = fabs(b->value);
    return x < y || (x == y && a->index > b->index);
}

static void heap_down(rb_sparse_coef *h, size_t m, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, s = i;
        if (l < m && heap_less(&h[l], &h[s])) s = l;
        if (l + 1 < m && heap_less(&h[l + 1], &h[s])) s = l + 1;
        if (s == i) return;
        rb_sparse_coef t = h[i];
        h[i] = h[s], h[s] = t;
        i = s;
    }
}

static int full_recover(const rb_params *p, rb_signal_oracle *o, uint64_t seed, rb_sparse_coef *out,
                        size_t cap, size_t *found) {
    (void) seed;
    *found = 0;
    unsigned n = o->log2n;
    if (n > FULL_LOG2N_MAX)
        return rb_error_set(RB_ESIZE,
                            "fwht_full: N = 2^%u does not fit in memory (the dense baseline stores "
                            "all N samples; at most 2^%d)",
                            n, FULL_LOG2N_MAX);
    size_t N = (size_t) 1 << n, k = (size_t) rb_params_int(p, "k");
    int f32 = rb_params_is(p, "precision", "f32");
    double *x = f32 ? NULL : malloc(N * sizeof *x);
    float *xf = f32 ? malloc(N * sizeof *xf) : NULL;
    uint64_t *idx = malloc(CHUNK * sizeof *idx);
    double *v = malloc(CHUNK * sizeof *v);
    size_t keep = k ? (k < cap ? k : cap) : 0, m = 0, mcap = keep ? keep : 64;
    rb_sparse_coef *sel = malloc(mcap * sizeof *sel);
    int rc = ((!x && !xf) || !idx || !v || !sel)
                 ? rb_error_set(RB_ENOMEM, "fwht_full: no memory for N = 2^%u samples", n)
                 : 0;
    /* Chunks of the index range, so that no N-long index array is needed. */
    for (size_t b = 0; !rc && b < N; b += CHUNK) {
        size_t cnt = N - b < CHUNK ? N - b : CHUNK;
        for (size_t i = 0; i < cnt; i++) idx[i] = b + i;
        double *dst = f32 ? v : x + b;
        rc = rb_oracle_query(o, idx, cnt, dst);
        if (f32)
            for (size_t i = 0; !rc && i < cnt; i++) xf[b + i] = (float) v[i];
    }
    if (!rc)
        rc = f32 ? rb_fwht_f32(xf, N, 1, N, RB_NORM_ORTHO, RB_ORDER_NATURAL)
                 : rb_fwht_f64(x, N, 1, N, RB_NORM_ORTHO, RB_ORDER_NATURAL);
    double thr = rb_params_float(p, "threshold");
    for (size_t i = 0; !rc && i < N; i++) {
        rb_sparse_coef c = {i, f32 ? (double) xf[i] : x[i]};
        if (keep) {
            /* The k largest through a min-heap of size k. */
            if (m < keep) {
                sel[m++] = c;
                if (m == keep)
                    for (size_t s = keep / 2 + 1; s-- > 0;) heap_down(sel, m, s);
            } else if (heap_less(&sel[0], &c)) {
                sel[0] = c;
                heap_down(sel, m, 0);
            }
        } else if (!k && fabs(c.value) > thr) {
            if (m == mcap) {
                rb_sparse_coef *t = realloc(sel, 2 * mcap * sizeof *t);
                if (!t) {
                    rc = rb_error_set(RB_ENOMEM, "fwht_full: no memory");
                    break;
                }
                sel = t, mcap *= 2;
            }
            sel[m++] = c;
        }
    }
    if (!rc) {
        m = rb_sparse_keep(sel, m, cap);
        memcpy(out, sel, m * sizeof *out);
        *found = m;
    }
    free(x);
    free(xf);
    free(idx);
    free(v);
    free(sel);
    return rc;
}

static const rb_sparse_ops full_ops = {full_recover};

const rb_method rb_method_fwht_full = {
    .name = "fwht_full",
    .family = RB_FAMILY_SPARSE,
    .paper = "baseline",
    .summary = "dense baseline: all N samples, one full FWHT, keep the k largest coefficients",
    .version = 1,
    .params = full_params,
    .nparams = sizeof full_params / sizeof full_params[0],
    .sparse = &full_ops,
};
