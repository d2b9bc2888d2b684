/* Synthetic vectors with an independent query set drawn the same way: isotropic (Gaussian rows,
 * uniform points on the unit sphere) and heavy-tailed (Student-t, lognormal) i.i.d. entries. */
#include <gsl/gsl_cdf.h>
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

/* Every vector kind here names its row length "dim", its base size "count" and its queries
 * "queries". */
static int vector_shape(const rb_params *p, rb_dataset_shape *s) {
    s->dim = (size_t) rb_params_int(p, "dim");
    s->rows = (size_t) rb_params_int(p, "count");
    s->queries = (size_t) rb_params_int(p, "queries");
    return RB_OK;
}

const rb_dataset_kind rb_dataset_gaussian = {"gaussian", "i.i.d. N(0,1) vectors (x) and queries",
                                             RB_PARAMS_OF(vector_params), load_gaussian,
                                             vector_shape};
const rb_dataset_kind rb_dataset_sphere = {
    "sphere", "uniform points on the unit sphere S^(dim-1) (x) and queries",
    RB_PARAMS_OF(vector_params), load_sphere, vector_shape};

/* ---- heavy-tailed i.i.d. entries ------------------------------------------------------------
 *
 * Element e (= row * dim + column) of a tensor is a pure function of (seed, tensor tag, e): every
 * variate it needs comes from element e of its own Philox stream, stream = tensor tag | purpose
 * << 40 | attempt << 32, so the values depend neither on the thread count nor on the tensor's
 * size (the first rows of a larger dataset are the same rows). */

enum {
    P_Z = 1,       /* the Student-t numerator, the lognormal exponent */
    P_GN = 2,      /* Marsaglia-Tsang normal, one stream per attempt */
    P_GU = 3,      /* Marsaglia-Tsang acceptance uniform, one stream per attempt */
    P_BOOST = 4,   /* the U^(1/a) factor of the shape < 1 boost */
    P_SIGN = 5,    /* lognormal random signs */
    P_FALLBACK = 6 /* inversion fallback after every attempt failed */
};
enum { GAMMA_ATTEMPTS = 16, BLOCK = 256 };

static uint64_t stream_of(uint64_t tag, uint64_t purpose, uint64_t attempt) {
    return tag | purpose << 40 | attempt << 32;
}

/* Gamma(a, 1) for a >= 1 by Marsaglia and Tsang (2000), with the first attempt's normal x0 and
 * uniform u0 drawn in bulk by the caller. Attempt t draws element e of streams (P_GN, t) and
 * (P_GU, t). One attempt is accepted with probability >= 0.95, so all GAMMA_ATTEMPTS fail with
 * probability < 1e-20; then the exact inverse CDF of one more uniform keeps the draw exact. */
static double gamma_mt(uint64_t seed, uint64_t tag, uint64_t e, double a, double x0, double u0) {
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (uint64_t t = 0; t < GAMMA_ATTEMPTS; t++) {
        double x = x0, u = u0;
        if (t) {
            rb_rng_normal_f64(seed, stream_of(tag, P_GN, t), e, 1, &x);
            rb_rng_uniform_f64(seed, stream_of(tag, P_GU, t), e, 1, &u);
        }
        double v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) return d * v;
    }
    double u;
    rb_rng_uniform_f64(seed, stream_of(tag, P_FALLBACK, 0), e, 1, &u);
    return gsl_cdf_gamma_Pinv(u, a, 1.0);
}

typedef struct heavy_job {
    int kind; /* 0 Student-t, 1 lognormal */
    double nu, mu, sigma;
    int sign;
    uint64_t seed, tag;
    float *out;
} heavy_job;

/* Student-t with nu degrees of freedom: Z / sqrt(G / nu) with G ~ chi2(nu) = 2 Gamma(nu / 2).
 * For shape a = nu / 2 < 1 the Gamma draw is Gamma(a + 1) U^(1/a) (Marsaglia-Tsang's boost). */
static void student_block(const heavy_job *j, uint64_t e0, size_t n, float *out) {
    double z[BLOCK], gn[BLOCK], gu[BLOCK], ub[BLOCK];
    double a = j->nu / 2, ab = a < 1 ? a + 1 : a;
    rb_rng_normal_f64(j->seed, stream_of(j->tag, P_Z, 0), e0, n, z);
    rb_rng_normal_f64(j->seed, stream_of(j->tag, P_GN, 0), e0, n, gn);
    rb_rng_uniform_f64(j->seed, stream_of(j->tag, P_GU, 0), e0, n, gu);
    if (a < 1) rb_rng_uniform_f64(j->seed, stream_of(j->tag, P_BOOST, 0), e0, n, ub);
    for (size_t i = 0; i < n; i++) {
        double g = gamma_mt(j->seed, j->tag, e0 + i, ab, gn[i], gu[i]);
        if (a < 1) g *= pow(ub[i], 1.0 / a);
        out[i] = (float) (z[i] * sqrt(j->nu / (2.0 * g)));
    }
}

static void lognormal_block(const heavy_job *j, uint64_t e0, size_t n, float *out) {
    double z[BLOCK];
    float s[BLOCK];
    rb_rng_normal_f64(j->seed, stream_of(j->tag, P_Z, 0), e0, n, z);
    if (j->sign) rb_rng_rademacher_f32(j->seed, stream_of(j->tag, P_SIGN, 0), e0, n, s);
    for (size_t i = 0; i < n; i++) {
        double v = exp(j->mu + j->sigma * z[i]);
        out[i] = (float) (j->sign ? s[i] * v : v);
    }
}

static void heavy_task(void *ctx, size_t begin, size_t end) {
    const heavy_job *j = ctx;
    for (size_t e = begin; e < end; e += BLOCK) {
        size_t n = end - e < BLOCK ? end - e : BLOCK;
        if (j->kind == 0)
            student_block(j, e, n, j->out + e);
        else
            lognormal_block(j, e, n, j->out + e);
    }
}

static int fill_heavy(rb_dataset *ds, const char *name, size_t rows, size_t dim, heavy_job *j) {
    rb_tensor *t;
    size_t shape[2] = {rows, dim};
    int rc = rb_dataset_add(ds, name, 2, shape, &t);
    if (rc) return rc;
    j->out = t->data;
    rb_parallel_for(rows * dim, 1 << 14, heavy_task, j);
    /* Float32 overflow: nu >= 0.5 and sigma <= 5 keep it below 1e-19 per element, but check. */
    for (size_t e = 0; e < rows * dim; e++)
        if (!isfinite(t->data[e]))
            return rb_error_set(RB_ENUMERIC,
                                "%s: element %zu of '%s' overflows float32; use a larger nu or a "
                                "smaller sigma/mu",
                                j->kind ? "lognormal" : "student_t", e, name);
    return RB_OK;
}

static int load_heavy(const rb_params *p, uint64_t seed, rb_dataset *ds, heavy_job j) {
    size_t dim = (size_t) rb_params_int(p, "dim"), count = (size_t) rb_params_int(p, "count"),
           nq = (size_t) rb_params_int(p, "queries");
    j.seed = seed;
    j.tag = STREAM_BASE;
    int rc = fill_heavy(ds, "x", count, dim, &j);
    j.tag = STREAM_QUERIES;
    if (!rc && nq) rc = fill_heavy(ds, "queries", nq, dim, &j);
    if (rc) {
        rb_dataset_free(ds);
        return rc;
    }
    rb_dataset_hash(ds);
    return RB_OK;
}

static const rb_param_def student_params[] = {
    RB_PARAM_INT("dim", "128", 1, 1 << 24, "vector length"),
    RB_PARAM_INT("count", "10000", 1, 1L << 31, "base vectors"),
    RB_PARAM_INT("queries", "0", 0, 1L << 31, "query vectors (drawn independently)"),
    /* nu <= 2: infinite variance, nu <= 1: no mean; both allowed. Below 0.5 the tail
     * P(|t| > x) ~ x^-nu makes float32 overflow (x > 3.4e38) a realistic event. */
    RB_PARAM_FLOAT("nu", "5", 0.5, 1e6,
                   "degrees of freedom (>= 0.5; nu <= 2 has infinite variance, variance "
                   "nu/(nu-2) above)"),
};

static int load_student(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    return load_heavy(p, seed, ds, (heavy_job){.kind = 0, .nu = rb_params_float(p, "nu")});
}

static const rb_param_def lognormal_params[] = {
    RB_PARAM_INT("dim", "128", 1, 1 << 24, "vector length"),
    RB_PARAM_INT("count", "10000", 1, 1L << 31, "base vectors"),
    RB_PARAM_INT("queries", "0", 0, 1L << 31, "query vectors (drawn independently)"),
    RB_PARAM_FLOAT("mu", "0", -20, 20, "mean of log|x|"),
    RB_PARAM_FLOAT("sigma", "1", 0, 5, "standard deviation of log|x|"),
    RB_PARAM_BOOL("signed", "false", "random +-1 sign on every entry (else all positive)"),
};

static int load_lognormal(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    return load_heavy(p, seed, ds,
                      (heavy_job){.kind = 1,
                                  .mu = rb_params_float(p, "mu"),
                                  .sigma = rb_params_float(p, "sigma"),
                                  .sign = rb_params_bool(p, "signed")});
}

const rb_dataset_kind rb_dataset_student_t = {
    "student_t", "i.i.d. Student-t(nu) entries (x) and queries; heavy tails for nu small",
    RB_PARAMS_OF(student_params), load_student, vector_shape};
const rb_dataset_kind rb_dataset_lognormal = {
    "lognormal", "i.i.d. exp(N(mu, sigma^2)) entries, optionally with random signs (x), queries",
    RB_PARAMS_OF(lognormal_params), load_lognormal, vector_shape};
