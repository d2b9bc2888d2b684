/* Isotropic synthetic vectors: Gaussian rows and uniform points on the unit sphere, with an
 * independent query set drawn the same way. */
#include <math.h>
#include <string.h>

#include "datasets/kinds.h"

/* Philox streams of the generators (element index = row * dim + column). */
enum { STREAM_BASE = 0x42415345, STREAM_QUERIES = 0x51554552 }; /* "BASE", "QUER" */

static const rb_param_def vector_params[] = {
    RB_PARAM_INT("dim", "128", 1, 1 << 24, "vector length"),
    RB_PARAM_INT("count", "10000", 1, 1L << 31, "base vectors"),
    RB_PARAM_INT("queries", "0", 0, 1L << 31, "query vectors (drawn independently)"),
};

static int fill(rb_dataset *ds, const char *name, size_t rows, size_t dim, uint64_t seed,
                uint64_t stream, int unit) {
    rb_tensor *t;
    size_t shape[2] = {rows, dim};
    int rc = rb_dataset_add(ds, name, 2, shape, &t);
    if (rc) return rc;
    rb_rng_normal_f32(seed, stream, 0, rows * dim, t->data);
    if (!unit) return RB_OK;
    for (size_t r = 0; r < rows; r++) {
        float *x = t->data + r * dim;
        double s = 0;
        for (size_t j = 0; j < dim; j++) s += (double) x[j] * x[j];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
        for (size_t j = 0; j < dim; j++) x[j] = (float) (x[j] * inv);
    }
    return RB_OK;
}

static int load_vectors(const rb_params *p, uint64_t seed, rb_dataset *ds, int unit) {
    size_t dim = (size_t) rb_params_int(p, "dim"), count = (size_t) rb_params_int(p, "count"),
           nq = (size_t) rb_params_int(p, "queries");
    int rc = fill(ds, "x", count, dim, seed, STREAM_BASE, unit);
    if (!rc && nq) rc = fill(ds, "queries", nq, dim, seed, STREAM_QUERIES, unit);
    if (rc) return rc;
    rb_dataset_hash(ds);
    return RB_OK;
}

static int load_gaussian(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    return load_vectors(p, seed, ds, 0);
}

static int load_sphere(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    return load_vectors(p, seed, ds, 1);
}

const rb_dataset_kind rb_dataset_gaussian = {"gaussian", "i.i.d. N(0,1) vectors (x) and queries",
                                             RB_PARAMS_OF(vector_params), load_gaussian};
const rb_dataset_kind rb_dataset_sphere = {
    "sphere", "uniform points on the unit sphere S^(dim-1) (x) and queries",
    RB_PARAMS_OF(vector_params), load_sphere};
