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

/* A shape as "(a, b, c)", for messages. */
static void dims_text(size_t ndim, const size_t *shape, char *buf, size_t size) {
    size_t o = (size_t) snprintf(buf, size, "(");
    for (size_t j = 0; j < ndim && o < size; j++)
        o += (size_t) snprintf(buf + o, size - o, "%s%zu", j ? ", " : "", shape[j]);
    if (o < size) snprintf(buf + o, size - o, ")");
}

/* A file's array as a dataset tensor: 1 to RB_TENSOR_NDIM_MAX axes and at least one element.
 * Checked on the header, so the preflight (and a dry run) refuses what every method would. */
static int npy_as_tensor(const char *path, const rb_npy_array *a) {
    if (a->ndim > RB_TENSOR_NDIM_MAX)
        return rb_error_set(RB_EINVAL, "%s: %d axes; a dataset tensor has at most %d", path,
                            a->ndim, RB_TENSOR_NDIM_MAX);
    if (a->ndim == 0)
        return rb_error_set(RB_EINVAL,
                            "%s: a 0-d array (one number); a dataset tensor has 1 to %d "
                            "axes",
                            path, RB_TENSOR_NDIM_MAX);
    if (a->count == 0) { /* a zero in the shape */
        char dims[96];
        dims_text((size_t) a->ndim, a->shape, dims, sizeof dims);
        return rb_error_set(RB_EINVAL,
                            "%s: an empty array (shape %s); a dataset tensor needs at least one "
                            "element",
                            path, dims);
    }
    return RB_OK;
}

static int npy_into(rb_dataset *ds, const char *path, const char *name, unsigned flags) {
    rb_npy_array a;
    int rc = rb_npy_read(path, RB_NPY_F32, flags, &a);
    if (rc) return rc;
    if ((rc = npy_as_tensor(path, &a))) {
        rb_npy_free(&a);
        return rc;
    }
    rb_tensor *t;
    rc = rb_dataset_add(ds, name, (size_t) a.ndim, a.shape, &t);
    if (!rc && a.count) memcpy(t->data, a.data, a.count * sizeof(float));
    if (rc) rc = rb_error_set(rc, "%s: %s", path, rb_error_detail());
    rb_npy_free(&a);
    return rc;
}

/* The parameters of npy and fvecs that load and shape both read, with load's errors. */
static int file_args(const rb_params *p, const char *kind, const char **path, const char **as,
                     const char **qpath) {
    *as = rb_params_str(p, "as");
    *qpath = rb_params_str(p, "queries_path");
    int rc = need_str(p, kind, "path", path);
    if (rc) return rc;
    if (**qpath && !strcmp(*as, "queries"))
        return rb_error_set(RB_EINVAL, "%s: 'as: queries' clashes with queries_path", kind);
    return RB_OK;
}

static unsigned npy_flags(const rb_params *p) {
    return RB_NPY_CHECK_FINITE | RB_NPY_V2_KEY |
           (rb_params_bool(p, "v2_as_bf16") ? RB_NPY_V2_AS_BF16 : 0);
}

/* Queries are scored against the vectors x (rows x xdim): they must be (queries, xdim). Checked
 * where x is 2-d, by load and by the shape hook alike. */
static int queries_fit(const char *qpath, size_t qndim, const size_t *qshape, size_t xdim) {
    if (qndim == 2 && qshape[1] == xdim) return RB_OK;
    char dims[96];
    dims_text(qndim, qshape, dims, sizeof dims);
    return rb_error_set(RB_EINVAL,
                        "%s: queries of shape %s; with vectors x of dimension %zu they must be "
                        "(queries, %zu)",
                        qpath, dims, xdim, xdim);
}

/* load's check of the loaded tensors: x (when 2-d) against its queries. */
static int loaded_queries_fit(const rb_dataset *ds, const char *as, const char *qpath) {
    const rb_tensor *x = rb_dataset_tensor(ds, "x"), *q = rb_dataset_tensor(ds, "queries");
    if (!*qpath || strcmp(as, "x") || !x || x->ndim != 2 || !q) return RB_OK;
    return queries_fit(qpath, q->ndim, q->shape, x->shape[1]);
}

static int load_npy(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    const char *path, *as, *qpath;
    int rc = file_args(p, "npy", &path, &as, &qpath);
    if (rc) return rc;
    unsigned flags = npy_flags(p);
    rc = npy_into(ds, path, as, flags);
    if (!rc && *qpath) rc = npy_into(ds, qpath, "queries", flags);
    if (!rc) rc = loaded_queries_fit(ds, as, qpath);
    if (rc) {
        rb_dataset_free(ds);
        return rc;
    }
    rb_dataset_hash(ds);
    return RB_OK;
}

/* The shape of vectors stored as 'x' (rows x dim) with the nq queries of queries_path, when one
 * is given (queries_fit has checked them: (nq, dim)). */
static void vectors_shape(rb_dataset_shape *s, size_t rows, size_t dim, const char *qpath,
                          size_t nq) {
    s->dim = dim;
    s->rows = rows;
    s->queries = *qpath ? nq : 0;
}

/* rb_npy_read_header with npy_into's own rule. */
static int npy_head(const char *path, unsigned flags, rb_npy_array *a) {
    int rc = rb_npy_read_header(path, flags, a);
    return rc ? rc : npy_as_tensor(path, a);
}

/* The headers of the array and the queries; the row length of an array stored as 'x'. */
static int shape_npy(const rb_params *p, rb_dataset_shape *s) {
    const char *path, *as, *qpath;
    rb_npy_array a = {0}, q = {0};
    int rc = file_args(p, "npy", &path, &as, &qpath);
    if (!rc) rc = npy_head(path, npy_flags(p), &a);
    if (!rc && *qpath) rc = npy_head(qpath, npy_flags(p), &q);
    if (!rc && *qpath && !strcmp(as, "x") && a.ndim == 2)
        rc = queries_fit(qpath, (size_t) q.ndim, q.shape, a.shape[1]);
    if (!rc && !strcmp(as, "x") && a.ndim == 2)
        vectors_shape(s, a.shape[0], a.shape[1], qpath, q.ndim == 2 ? q.shape[0] : 0);
    return rc;
}

const rb_dataset_kind rb_dataset_npy = {
    "npy", "a tensor from a .npy file (stored as 'x' unless 'as' says otherwise), optional queries",
    RB_PARAMS_OF(npy_params), load_npy, shape_npy};

/* ---- fvecs ---- */

static const rb_param_def fvecs_params[] = {
    RB_PARAM_STRING("path", NULL, ".fvecs file: per vector int32 dim, then dim float32"),
    RB_PARAM_INT("count", "0", 0, 1L << 40, "read at most this many vectors (0 = all)"),
    RB_PARAM_STRING("as", "x", "tensor name to store the vectors as (count x dim)"),
    RB_PARAM_STRING("queries_path", "", "optional .fvecs file of queries (stored as 'queries')"),
};

/* An open .fvecs file: its size, the dimension of vector 0, and the vectors to read. */
typedef struct fvecs_file {
    FILE *f;
    uint64_t size;
    size_t dim;
    size_t n;     /* vectors to read: those the size holds (the last perhaps cut), at most limit */
    int complete; /* the size holds those n vectors whole */
} fvecs_file;

/* Opens path (v->f, which the caller closes, after an error too) and reads vector 0's dimension:
 * the .fvecs format has no other header. */
static int fvecs_open(const char *path, size_t limit, fvecs_file *v) {
    memset(v, 0, sizeof *v);
    v->f = rb_data_open(path);
    if (!v->f) return RB_EIO;
    struct stat st;
    if (fstat(fileno(v->f), &st) != 0)
        return rb_error_set(RB_EIO, "%s: cannot stat: %s", path, strerror(errno));
    v->size = (uint64_t) st.st_size;
    int32_t dim0 = 0;
    if (fread(&dim0, 1, 4, v->f) != 4)
        return rb_error_set(RB_EFORMAT, "%s: empty or truncated .fvecs file (no vector)", path);
    if (dim0 <= 0 || dim0 > (1 << 24))
        return rb_error_set(RB_EFORMAT, "%s: vector 0 has dimension %d (expected 1..%d)", path,
                            (int) dim0, 1 << 24);
    v->dim = (size_t) dim0;
    size_t rec = 4 + 4 * v->dim;
    v->n = (size_t) ((v->size + rec - 1) / rec);
    if (limit && limit < v->n) v->n = limit;
    v->complete = (uint64_t) v->n * rec <= v->size;
    return RB_OK;
}

/* Reads vectors [0, v->n) into rows, or with rows NULL only walks over them (their dimension
 * fields, and their floats by the file's size), so that a walk gives the errors a read gives:
 * a dimension other than vector 0's, a vector cut short. */
static int fvecs_rows(const char *path, fvecs_file *v, float *rows) {
    size_t dim = v->dim, rec = 4 + 4 * dim;
    for (size_t i = 0; i < v->n; i++) {
        if (i) {
            int32_t d;
            if (fread(&d, 1, 4, v->f) != 4)
                return rb_error_set(RB_EFORMAT,
                                    "%s: truncated: vector %zu ends inside its dimension", path, i);
            if (d != (int32_t) dim)
                return rb_error_set(RB_EFORMAT,
                                    "%s: vector %zu has dimension %d, vector 0 has %zu (all must "
                                    "be equal)",
                                    path, i, (int) d, dim);
        }
        uint64_t left = v->size - (uint64_t) i * rec - 4;
        size_t got = left / 4 < dim ? (size_t) (left / 4) : dim;
        if (rows)
            got = fread(rows + i * dim, sizeof(float), dim, v->f);
        else if (fseeko(v->f, (off_t) (4 * dim), SEEK_CUR) != 0)
            return rb_error_set(RB_EIO, "%s: cannot seek: %s", path, strerror(errno));
        if (got != dim)
            return rb_error_set(RB_EFORMAT, "%s: truncated: vector %zu has %zu of its %zu floats",
                                path, i, got, dim);
    }
    return RB_OK;
}

/* What fvecs_into checks before it reads the floats: the file opens, vector 0's dimension, and
 * (where the vectors to read are not whole) the walk that finds the first defect a read finds. */
static int fvecs_head(const char *path, size_t limit, size_t *dim, size_t *n) {
    fvecs_file v;
    int rc = fvecs_open(path, limit, &v);
    if (!rc && !v.complete) rc = fvecs_rows(path, &v, NULL);
    if (v.f) fclose(v.f);
    *dim = v.dim;
    *n = v.n;
    return rc;
}

static int fvecs_into(rb_dataset *ds, const char *path, size_t limit, const char *name) {
    float *rows = NULL;
    fvecs_file v;
    int rc = fvecs_open(path, limit, &v);
    if (rc) goto done;
    size_t n = v.n, dim = v.dim;
    rows = malloc(n * dim * sizeof *rows);
    if (!rows) {
        rc =
            rb_error_set(RB_ENOMEM, "%s: no memory for %zu vectors of dimension %zu", path, n, dim);
        goto done;
    }
    if ((rc = fvecs_rows(path, &v, rows))) goto done;
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
    if (v.f) fclose(v.f);
    return rc;
}

static int load_fvecs(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    const char *path, *as, *qpath;
    int rc = file_args(p, "fvecs", &path, &as, &qpath);
    if (rc) return rc;
    rc = fvecs_into(ds, path, (size_t) rb_params_int(p, "count"), as);
    if (!rc && *qpath) rc = fvecs_into(ds, qpath, 0, "queries");
    if (!rc) rc = loaded_queries_fit(ds, as, qpath);
    if (rc) {
        rb_dataset_free(ds);
        return rc;
    }
    rb_dataset_hash(ds);
    return RB_OK;
}

/* The vectors' dimension and count (when they are stored as 'x'), and the queries'. */
static int shape_fvecs(const rb_params *p, rb_dataset_shape *s) {
    const char *path, *as, *qpath;
    size_t dim = 0, n = 0, qdim = 0, nq = 0;
    int rc = file_args(p, "fvecs", &path, &as, &qpath);
    if (!rc) rc = fvecs_head(path, (size_t) rb_params_int(p, "count"), &dim, &n);
    if (!rc && *qpath) rc = fvecs_head(qpath, 0, &qdim, &nq);
    if (!rc && *qpath && !strcmp(as, "x")) rc = queries_fit(qpath, 2, (size_t[2]){nq, qdim}, dim);
    if (!rc && !strcmp(as, "x")) vectors_shape(s, n, dim, qpath, nq);
    return rc;
}

const rb_dataset_kind rb_dataset_fvecs = {
    "fvecs", "vectors from a .fvecs file (x: count x dim), optional queries from another",
    RB_PARAMS_OF(fvecs_params), load_fvecs, shape_fvecs};
