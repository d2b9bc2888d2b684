/* sparse_npy: a stored signal for the sparse WHT methods (issue 5: "an npy signal is also accepted
 * for small N"). The methods sample it through the same counting oracle as sparse_wht; the truth
 * they are scored against is its own spectrum X = H x / sqrt(N), computed once with the full
 * transform and cut to the k largest coefficients (or to those above a relative threshold). */
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/kinds.h"
#include "datasets/synth.h"

/* The whole signal and its transform live in memory: keep N modest (2^26 doubles = 512 MiB). */
enum { NPY_SIGNAL_LOG2N_MAX = 26 };

static const rb_param_def sparse_npy_params[] = {
    RB_PARAM_STRING("path", NULL, ".npy file: a 1-d signal of length N = 2^n (float32/64)"),
    RB_PARAM_INT("k", "0", 0, 1L << 22,
                 "truth = the k largest |X| (0: every |X| above threshold * max |X|)"),
    RB_PARAM_FLOAT("threshold", "1e-6", 0, 1,
                   "with k = 0: keep |X| > threshold * max |X| as the truth support"),
};

typedef struct npy_signal {
    double *x;
    unsigned log2n;
} npy_signal;

static void signal_free(void *p) {
    npy_signal *s = p;
    if (!s) return;
    free(s->x);
    free(s);
}

static int sample(const rb_dataset *ds, const uint64_t *idx, size_t count, double *out) {
    const npy_signal *s = ds->signal;
    uint64_t n = UINT64_C(1) << s->log2n;
    for (size_t r = 0; r < count; r++) {
        if (idx[r] >= n)
            return rb_error_set(RB_EINVAL, "sparse_npy: sample %zu asks for index %llu >= N = 2^%u",
                                r, (unsigned long long) idx[r], s->log2n);
        out[r] = s->x[idx[r]];
    }
    return RB_OK;
}

typedef struct ranked {
    double mag;
    uint64_t index;
} ranked;

/* Largest magnitude first; ties by index, so the truth is a function of the file alone. */
static int by_magnitude(const void *a, const void *b) {
    const ranked *p = a, *q = b;
    if (p->mag != q->mag) return p->mag > q->mag ? -1 : 1;
    return (p->index > q->index) - (p->index < q->index);
}

static int by_index(const void *a, const void *b) {
    const ranked *p = a, *q = b;
    return (p->index > q->index) - (p->index < q->index);
}

/* sha256 over the parameters' text and the signal's bytes. */
static void content_hash(const rb_params *p, const double *x, size_t n, char hex[65]) {
    char text[2048];
    size_t len =
        (size_t) snprintf(text, sizeof text, "sparse_npy;k=%lld;threshold=%.17g;",
                          (long long) rb_params_int(p, "k"), rb_params_float(p, "threshold"));
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *) text);
    sha256_update(&ctx, n * sizeof *x, (const uint8_t *) x);
    sha256_digest(&ctx, sizeof d, d);
    for (size_t i = 0; i < sizeof d; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

/* What the file's header must say (read alone, before the data): a 1-d signal of a power-of-two
 * length in range, and k <= N. The shape hook's check, so that a dry run finds a wrong file
 * before the first cell, and load's, before it reads what may be gigabytes of the wrong file. */
static int signal_header(const rb_params *p, const char **path, size_t *n) {
    *path = rb_params_str(p, "path");
    if (!**path) return rb_error_set(RB_EINVAL, "sparse_npy: parameter 'path' is required");
    rb_npy_array a;
    int rc = rb_npy_read_header(*path, 0, &a);
    if (rc) return rc;
    *n = a.count;
    if (a.ndim != 1 || *n < 2 || !rb_is_pow2(*n) || *n > ((size_t) 1 << NPY_SIGNAL_LOG2N_MAX))
        return rb_error_set(RB_ESIZE,
                            "%s: a sparse_npy signal is 1-d of length N = 2^n, 2 <= N <= 2^%d "
                            "(got %d axes, %zu values)",
                            *path, NPY_SIGNAL_LOG2N_MAX, a.ndim, *n);
    size_t k = (size_t) rb_params_int(p, "k");
    if (k > *n) return rb_error_set(RB_EINVAL, "%s: k = %zu exceeds N = %zu", *path, k, *n);
    return RB_OK;
}

/* A signal fills none of the shape's vector or KV fields. */
static int shape_sparse_npy(const rb_params *p, rb_dataset_shape *s) {
    s->signal = 1;
    const char *path;
    size_t n;
    return signal_header(p, &path, &n);
}

static int load_sparse_npy(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    (void) seed; /* a file: nothing random */
    const char *path;
    size_t n;
    int rc = signal_header(p, &path, &n);
    if (rc) return rc;
    rb_npy_array a;
    if ((rc = rb_npy_read(path, RB_NPY_F64, RB_NPY_CHECK_FINITE, &a))) return rc;
    /* The file may have changed since its header was read. */
    if (a.ndim != 1 || a.count != n) {
        rb_npy_free(&a);
        return rb_error_set(RB_EIO, "%s: the file changed while it was read", path);
    }
    size_t k = (size_t) rb_params_int(p, "k");
    npy_signal *s = calloc(1, sizeof *s);
    double *X = malloc(n * sizeof *X);
    ranked *r = malloc(n * sizeof *r);
    if (!s || !X || !r) {
        rc = rb_error_set(RB_ENOMEM, "sparse_npy: no memory for N = %zu", n);
        goto fail;
    }
    s->x = a.data; /* the signal stays as read; the array's buffer changes owner */
    a.data = NULL;
    s->log2n = (unsigned) rb_log2_exact(n);
    memcpy(X, s->x, n * sizeof *X);
    if ((rc = rb_fwht_f64(X, n, 1, n, RB_NORM_ORTHO, RB_ORDER_NATURAL))) goto fail;
    double max = 0;
    for (size_t i = 0; i < n; i++) {
        r[i] = (ranked){fabs(X[i]), i};
        if (r[i].mag > max) max = r[i].mag;
    }
    qsort(r, n, sizeof *r, by_magnitude);
    if (!k) {
        double cut = rb_params_float(p, "threshold") * max;
        while (k < n && r[k].mag > cut) k++;
    }
    if (!k) {
        rc = rb_error_set(RB_EINVAL, "%s: the signal is zero: no Walsh coefficient to recover",
                          path);
        goto fail;
    }
    qsort(r, k, sizeof *r, by_index);
    rb_tensor *sup, *coef;
    size_t sshape[2] = {k, RB_SPARSE_LIMBS};
    if ((rc = rb_dataset_add(ds, "support", 2, sshape, &sup)) ||
        (rc = rb_dataset_add(ds, "coef", 1, &k, &coef)))
        goto fail;
    for (size_t j = 0; j < k; j++) {
        rb_sparse_support_store(sup, j, r[j].index);
        coef->data[j] = (float) X[r[j].index];
    }
    content_hash(p, s->x, n, ds->hash);
    ds->log2n = s->log2n;
    ds->sample = sample;
    ds->signal = s;
    ds->signal_free = signal_free;
    free(X);
    free(r);
    return RB_OK;
fail:
    rb_npy_free(&a);
    signal_free(s);
    free(X);
    free(r);
    rb_dataset_free(ds);
    return rc;
}

const rb_dataset_kind rb_dataset_sparse_npy = {
    "sparse_npy",
    "a stored signal of length 2^n (.npy) for sparse WHT recovery; truth = its own spectrum's k "
    "largest (or above-threshold) coefficients",
    RB_PARAMS_OF(sparse_npy_params), load_sparse_npy, shape_sparse_npy};
