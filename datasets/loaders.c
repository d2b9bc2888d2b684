/* File loaders: .npy (through datasets/npy.c) and .fvecs (the TEXMER/ANN benchmark format:
 * per vector an int32 dimension then that many float32). Loaders ignore the seed; every error
 * names the file, and NaN/Inf is rejected naming the first bad index. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/kinds.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "loaders.c reads little-endian data by memcpy and assumes a little-endian host"
#endif

/* A string parameter that must be given (the config loader checks required parameters, but a
 * direct caller may not have). */
static int need_str(const rb_params *p, const char *kind, const char *name, const char **out) {
    *out = rb_params_str(p, name);
    if (!**out) return rb_error_set(RB_EINVAL, "%s: parameter '%s' is required", kind, name);
    return RB_OK;
}

/* ---- npy ---- */

static const rb_param_def npy_params[] = {
    RB_PARAM_STRING("path", NULL, ".npy file (float32/float16/bfloat16/float64, C order)"),
    RB_PARAM_STRING("as", "x", "tensor name to store the array as"),
    RB_PARAM_STRING("queries_path", "", "optional .npy file of queries (stored as 'queries')"),
    RB_PARAM_BOOL("v2_as_bf16", "false",
                  "read void 2-byte data ('<V2', what np.save writes for ml_dtypes bfloat16) as "
                  "bfloat16"),
};

static int npy_into(rb_dataset *ds, const char *path, const char *name, unsigned flags) {
    rb_npy_array a;
    int rc = rb_npy_read(path, RB_NPY_F32, flags, &a);
    if (rc) return rc;
    if (a.ndim > RB_TENSOR_NDIM_MAX) {
        int ndim = a.ndim;
        rb_npy_free(&a);
        return rb_error_set(RB_EINVAL, "%s: %d axes; a dataset tensor has at most %d", path, ndim,
                            RB_TENSOR_NDIM_MAX);
    }
    rb_tensor *t;
    rc = rb_dataset_add(ds, name, (size_t) a.ndim, a.shape, &t);
    if (!rc && a.count) memcpy(t->data, a.data, a.count * sizeof(float));
    if (rc) rc = rb_error_set(rc, "%s: %s", path, rb_error_detail());
    rb_npy_free(&a);
    return rc;
}

static int load_npy(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    const char *path, *as = rb_params_str(p, "as"), *qpath = rb_params_str(p, "queries_path");
    int rc = need_str(p, "npy", "path", &path);
    if (rc) return rc;
    if (*qpath && !strcmp(as, "queries"))
        return rb_error_set(RB_EINVAL, "npy: 'as: queries' clashes with queries_path");
    unsigned flags = RB_NPY_CHECK_FINITE | RB_NPY_V2_KEY |
                     (rb_params_bool(p, "v2_as_bf16") ? RB_NPY_V2_AS_BF16 : 0);
    rc = npy_into(ds, path, as, flags);
    if (!rc && *qpath) rc = npy_into(ds, qpath, "queries", flags);
    if (rc) {
        rb_dataset_free(ds);
        return rc;
    }
    rb_dataset_hash(ds);
    return RB_OK;
}

const rb_dataset_kind rb_dataset_npy = {
    "npy", "a tensor from a .npy file (stored as 'x' unless 'as' says otherwise), optional queries",
    RB_PARAMS_OF(npy_params), load_npy, NULL};

/* ---- fvecs ---- */

static const rb_param_def fvecs_params[] = {
    RB_PARAM_STRING("path", NULL, ".fvecs file: per vector int32 dim, then dim float32"),
    RB_PARAM_INT("count", "0", 0, 1L << 40, "read at most this many vectors (0 = all)"),
    RB_PARAM_STRING("as", "x", "tensor name to store the vectors as (count x dim)"),
    RB_PARAM_STRING("queries_path", "", "optional .fvecs file of queries (stored as 'queries')"),
};

static int fvecs_into(rb_dataset *ds, const char *path, size_t limit, const char *name) {
    int rc = RB_OK;
    float *rows = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return rb_error_set(RB_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = rb_error_set(RB_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    uint64_t fsize = (uint64_t) st.st_size;
    int32_t dim0 = 0;
    if (fread(&dim0, 1, 4, f) != 4) {
        rc = rb_error_set(RB_EFORMAT, "%s: empty or truncated .fvecs file (no vector)", path);
        goto done;
    }
    if (dim0 <= 0 || dim0 > (1 << 24)) {
        rc = rb_error_set(RB_EFORMAT, "%s: vector 0 has dimension %d (expected 1..%d)", path,
                          (int) dim0, 1 << 24);
        goto done;
    }
    size_t dim = (size_t) dim0, rec = 4 + 4 * dim;
    size_t n = (size_t) ((fsize + rec - 1) / rec);
    if (limit && limit < n) n = limit;
    rows = malloc(n * dim * sizeof *rows);
    if (!rows) {
        rc =
            rb_error_set(RB_ENOMEM, "%s: no memory for %zu vectors of dimension %zu", path, n, dim);
        goto done;
    }
    for (size_t v = 0; v < n; v++) {
        if (v) {
            int32_t d;
            size_t got = fread(&d, 1, 4, f);
            if (got != 4) {
                rc = rb_error_set(RB_EFORMAT, "%s: truncated: vector %zu ends inside its dimension",
                                  path, v);
                goto done;
            }
            if (d != dim0) {
                rc = rb_error_set(RB_EFORMAT,
                                  "%s: vector %zu has dimension %d, vector 0 has %d (all must be "
                                  "equal)",
                                  path, v, (int) d, (int) dim0);
                goto done;
            }
        }
        size_t got = fread(rows + v * dim, sizeof(float), dim, f);
        if (got != dim) {
            rc = rb_error_set(RB_EFORMAT, "%s: truncated: vector %zu has %zu of its %zu floats",
                              path, v, got, dim);
            goto done;
        }
    }
    for (size_t e = 0; e < n * dim; e++)
        if (!isfinite(rows[e])) {
            rc = rb_error_set(RB_ENUMERIC, "%s: vector %zu, component %zu is %s", path, e / dim,
                              e % dim,
                              isnan(rows[e]) ? "NaN"
                              : rows[e] > 0  ? "+Inf"
                                             : "-Inf");
            goto done;
        }
    rb_tensor *t;
    size_t shape[2] = {n, dim};
    rc = rb_dataset_add(ds, name, 2, shape, &t);
    if (rc) {
        rc = rb_error_set(rc, "%s: %s", path, rb_error_detail());
        goto done;
    }
    memcpy(t->data, rows, n * dim * sizeof *rows);
done:
    free(rows);
    fclose(f);
    return rc;
}

static int load_fvecs(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    const char *path, *as = rb_params_str(p, "as"), *qpath = rb_params_str(p, "queries_path");
    int rc = need_str(p, "fvecs", "path", &path);
    if (rc) return rc;
    if (*qpath && !strcmp(as, "queries"))
        return rb_error_set(RB_EINVAL, "fvecs: 'as: queries' clashes with queries_path");
    rc = fvecs_into(ds, path, (size_t) rb_params_int(p, "count"), as);
    if (!rc && *qpath) rc = fvecs_into(ds, qpath, 0, "queries");
    if (rc) {
        rb_dataset_free(ds);
        return rc;
    }
    rb_dataset_hash(ds);
    return RB_OK;
}

const rb_dataset_kind rb_dataset_fvecs = {
    "fvecs", "vectors from a .fvecs file (x: count x dim), optional queries from another",
    RB_PARAMS_OF(fvecs_params), load_fvecs, NULL};
