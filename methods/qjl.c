/* qjl: the Quantized Johnson-Lindenstrauss sign sketch (arXiv:2406.03482). A vector x is stored as
 * sign(S x) (m bits) and its norm (fp32); the inner product with an unquantized query q is
 * estimated by sqrt(pi/2)/m * |x| * <S q, sign(S x)>, which is unbiased.
 *
 * Parameters: `bits` is the sign bits per coordinate (m = bits * dim projections) unless `m` gives
 * the number of projections directly; giving both with m != bits * dim is an error. The default
 * m = dim is the setting of the paper's variance analysis (codecs.md section 5); the paper's
 * LongBench runs use bits = 2 at d = 128. `projection: gaussian` draws S with i.i.d. N(0,1)
 * entries; `orthogonal` stacks ceil(m / dim) independent Haar d x d blocks, each scaled by
 * sqrt(dim) so that rows have the Gaussian rows' norm and the same sqrt(pi/2)/m scale applies (the
 * reference code's rot=True; the last block is truncated when dim does not divide m). An optional
 * `rotation` is applied to keys and queries before the sketch (it changes nothing in distribution
 * for gaussian S; rht needs a supported Hadamard order, no padding).
 *
 * Code layout: m sign bits (bit k of the little-endian stream is 1 where (S x)_k < 0), then the
 * norm |x| at `norm_bits`: fp16 (the paper's, codecs.md sections 5 and 8: 1.125 bits per
 * coordinate at m = d = 128, 2.125 at m = 256) or fp32, counted at that width in `bits`. The fp16
 * norm is rounded to nearest even; one beyond fp16's 65504 is an RB_ENUMERIC error (use
 * norm_bits: 32), one below its subnormals stores 0. An fp32 norm that overflows fp32 saturates
 * at FLT_MAX. decode returns sqrt(pi/2)/m * |x| * S^T sign(S x), whose
 * inner product with q is exactly the estimator; inner_product computes it from S q. A zero
 * vector stores norm 0 and decodes to 0. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "methods/method.h"

enum { M_MAX = 1 << 20 };
#define SQRT_HALF_PI 1.2533141373155002512 /* sqrt(pi / 2) */

static const rb_param_def qjl_params[] = {
    RB_PARAM_INT("bits", "1", 1, 64, "sign bits per coordinate: m = bits * dim unless m is set"),
    RB_PARAM_INT("m", "0", 0, M_MAX, "projections (sign bits per vector); 0 = bits * dim"),
    RB_PARAM_ENUM("projection", "gaussian", "gaussian|orthogonal",
                  "S: i.i.d. N(0,1), or stacked Haar blocks scaled by sqrt(dim)"),
    RB_PARAM_ENUM("rotation", "none", RB_ROTATION_CHOICES, "rotation applied before the sketch"),
    RB_PARAM_INT_OF("norm_bits", "16", "16|32",
                    "stored width of |x|: 16 (fp16, the paper's) or 32 (fp32), no other"),
};

/* Seed labels for rb_seed_derive: the projection's randomness is independent of the rotation's. */
enum { SEED_GAUSS = 0x514a4c47, SEED_BLOCK = 0x514a4c42 };

typedef struct qjl {
    size_t dim, m, sign_bytes, norm_bytes; /* norm_bytes: 2 (fp16) or 4 (fp32) */
    float scale;                           /* sqrt(pi/2) / m */
    float *S;                              /* m x dim */
    rb_rotation rot;
    /* Grown on demand: work (rows x dim), proj (rows x m), codes (rows x m bytes), norms. */
    float *work, *proj, *fnorm;
    double *norms;
    uint8_t *codes;
    size_t cap;
} qjl;

static void qjl_destroy(void *state) {
    qjl *c = state;
    if (!c) return;
    rb_rotation_free(&c->rot);
    free(c->S);
    free(c->work);
    free(c->proj);
    free(c->fnorm);
    free(c->norms);
    free(c->codes);
    free(c);
}

static int param_set(const rb_params *p, const char *name) {
    return p->set[rb_params_def(p, name) - p->defs];
}

static int build_projection(qjl *c, int orthogonal, uint64_t seed) {
    size_t d = c->dim, m = c->m;
    if (!orthogonal) {
        rb_rng_normal_f32(rb_seed_derive(seed, SEED_GAUSS, 0), 0, 0, m * d, c->S);
        return RB_OK;
    }
    double *Q = malloc(d * d * sizeof *Q);
    if (!Q) return rb_error_set(RB_ENOMEM, "qjl: no memory for a %zu x %zu block", d, d);
    double s = sqrt((double) d);
    int rc = RB_OK;
    for (size_t b = 0; !rc && b * d < m; b++) {
        rc = rb_haar_f64(Q, d, rb_seed_derive(seed, SEED_BLOCK, b));
        size_t rows = m - b * d < d ? m - b * d : d;
        for (size_t i = 0; !rc && i < rows * d; i++) c->S[b * d * d + i] = (float) (s * Q[i]);
    }
    free(Q);
    return rc;
}

/* The sketch length: m, or bits * dim when m is 0. */
static size_t sketch_rows(const rb_params *p, size_t dim) {
    size_t m = (size_t) rb_params_int(p, "m");
    return m ? m : (size_t) rb_params_int(p, "bits") * dim;
}

static int qjl_check(const rb_params *p, size_t dim) {
    if (dim == 0) return rb_error_set(RB_ESIZE, "qjl: vectors of dimension 0");
    size_t bits = (size_t) rb_params_int(p, "bits"), m = (size_t) rb_params_int(p, "m");
    if (m && param_set(p, "bits") && m != bits * dim)
        return rb_error_set(
            RB_EINVAL,
            "qjl: m = %zu and bits = %zu disagree at dim %zu (m = bits * dim = %zu); "
            "set only one of them",
            m, bits, dim, bits * dim);
    m = sketch_rows(p, dim);
    if (m > M_MAX)
        return rb_error_set(RB_ESIZE, "qjl: m = %zu projections exceed the limit %d", m, M_MAX);
    return rb_rotation_check_name(rb_params_str(p, "rotation"), dim);
}

static int qjl_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    int checked = qjl_check(p, dim);
    if (checked) return checked;
    size_t m = sketch_rows(p, dim);
    qjl *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "qjl: no memory");
    c->dim = dim;
    c->m = m;
    c->sign_bytes = rb_pack_bytes(m, 1);
    c->norm_bytes = rb_params_is(p, "norm_bits", "32") ? 4 : 2; /* the table allows no other */
    c->scale = (float) (SQRT_HALF_PI / (double) m);
    c->S = malloc(m * dim * sizeof *c->S);
    rb_rotation_kind kind;
    int rc =
        c->S ? RB_OK : rb_error_set(RB_ENOMEM, "qjl: no memory for a %zu x %zu sketch", m, dim);
    if (!rc) rc = build_projection(c, rb_params_is(p, "projection", "orthogonal"), seed);
    if (!rc) rc = rb_rotation_kind_parse(rb_params_str(p, "rotation"), &kind);
    if (!rc) rc = rb_rotation_init(&c->rot, kind, dim, seed);
    if (rc) {
        qjl_destroy(c);
        return rc;
    }
    *state = c;
    return RB_OK;
}

static size_t qjl_code_bytes(const void *state) {
    const qjl *c = state;
    return c->sign_bytes + c->norm_bytes;
}

static double qjl_bits(const void *state) {
    const qjl *c = state;
    return ((double) c->m + 8.0 * (double) c->norm_bytes) / (double) c->dim;
}

static int reserve(qjl *c, size_t count) {
    if (count <= c->cap) return RB_OK;
    float *w = realloc(c->work, count * c->dim * sizeof *w);
    if (w) c->work = w;
    float *pr = realloc(c->proj, count * c->m * sizeof *pr);
    if (pr) c->proj = pr;
    float *f = realloc(c->fnorm, count * sizeof *f);
    if (f) c->fnorm = f;
    double *n = realloc(c->norms, count * sizeof *n);
    if (n) c->norms = n;
    uint8_t *q = realloc(c->codes, count * c->m);
    if (q) c->codes = q;
    if (!w || !pr || !f || !n || !q)
        return rb_error_set(RB_ENOMEM, "qjl: no memory for %zu vectors", count);
    c->cap = count;
    return RB_OK;
}

static int qjl_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    qjl *c = state;
    size_t d = c->dim, m = c->m, cb = qjl_code_bytes(c);
    int rc = reserve(c, count);
    if (rc) return rc;
    memcpy(c->work, x, count * d * sizeof *x);
    if ((rc = rb_rotation_apply(&c->rot, c->work, count, d, RB_FORWARD))) return rc;
    rb_rows_sqnorm_f32(c->work, count, d, d, c->norms);
    for (size_t i = 0; i < count; i++) {
        double n = sqrt(c->norms[i]);
        if (!isfinite(n))
            return rb_error_set(RB_ENUMERIC, "qjl: vector %zu has a NaN or Inf coordinate", i);
        c->norms[i] = n;
        /* The signs do not depend on the scale; normalizing first keeps S x finite for any
         * finite x. Where 1/|x| itself is not representable the row is left as it is. */
        float inv = (float) (1.0 / n);
        c->fnorm[i] = n > 0 && isfinite(inv) ? inv : 1.0f;
    }
    rb_rows_scale_f32(c->work, count, d, d, c->fnorm);
    rc = rb_gemm_f32_traced(RB_NOTRANS, RB_TRANS, count, m, d, 1.0f, c->work, d, c->S, d, 0.0f,
                            c->proj, m);
    if (rc) return rc;
    for (size_t k = 0; k < count * m; k++) c->codes[k] = c->proj[k] < 0.0f;
    /* The sign rows through the dispatched packer (each row's rb_pack_bits stream). */
    if ((rc = rb_pack_rows(c->codes, count, m, 1, codes, cb))) return rc;
    for (size_t i = 0; i < count; i++) {
        uint8_t *out = codes + i * cb + c->sign_bytes;
        if (c->norm_bytes == 4) {
            float nf = c->norms[i] > FLT_MAX ? FLT_MAX : (float) c->norms[i];
            memcpy(out, &nf, sizeof nf);
            continue;
        }
        /* fp16, rounded from the fp32 value: the double rounding can only move an exact fp16
         * tie, which is harmless. */
        float nf = c->norms[i] > FLT_MAX ? FLT_MAX : (float) c->norms[i];
        uint16_t h = rb_f32_to_f16(nf);
        if (!isfinite(rb_f16_to_f32(h)))
            return rb_error_set(RB_ENUMERIC,
                                "qjl: vector %zu has norm %g, beyond the fp16 it is stored in "
                                "(65504); use norm_bits: 32",
                                i, c->norms[i]);
        memcpy(out, &h, sizeof h);
    }
    return RB_OK;
}

/* Unpacks count codes into +-1 rows (c->proj, count x m) and the per-row factor
 * sqrt(pi/2)/m * |x| (c->fnorm). */
static int unpack(qjl *c, const uint8_t *codes, size_t count) {
    size_t m = c->m, cb = qjl_code_bytes(c);
    int rc = reserve(c, count);
    if (!rc) rc = rb_unpack_rows(codes, cb, count, m, 1, c->codes);
    if (rc) return rc;
    for (size_t k = 0; k < count * m; k++) c->proj[k] = c->codes[k] ? -1.0f : 1.0f;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *in = codes + i * cb + c->sign_bytes;
        float nf;
        if (c->norm_bytes == 4) {
            memcpy(&nf, in, sizeof nf);
        } else {
            uint16_t h;
            memcpy(&h, in, sizeof h);
            nf = rb_f16_to_f32(h);
        }
        c->fnorm[i] = c->scale * nf;
    }
    return RB_OK;
}

static int qjl_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    qjl *c = state;
    size_t d = c->dim, m = c->m;
    int rc = unpack(c, codes, count);
    if (rc) return rc;
    rc = rb_gemm_f32_traced(RB_NOTRANS, RB_NOTRANS, count, d, m, 1.0f, c->proj, m, c->S, d, 0.0f,
                            xhat, d);
    if (rc) return rc;
    rb_rows_scale_f32(xhat, count, d, d, c->fnorm);
    return rb_rotation_apply(&c->rot, xhat, count, d, RB_INVERSE);
}

/* out[i][j] = sqrt(pi/2)/m * |x_i| * <S R q_j, sign(S R x_i)>. */
static int qjl_inner_product(void *state, const uint8_t *codes, size_t count, const float *q,
                             size_t nq, float *out) {
    qjl *c = state;
    size_t d = c->dim, m = c->m;
    float *qr = malloc(nq * d * sizeof *qr), *sq = malloc(nq * m * sizeof *sq);
    int rc = (!qr || !sq) ? rb_error_set(RB_ENOMEM, "qjl: no memory for %zu queries", nq) : 0;
    if (!rc) {
        memcpy(qr, q, nq * d * sizeof *q);
        rc = rb_rotation_apply(&c->rot, qr, nq, d, RB_FORWARD);
    }
    if (!rc)
        rc = rb_gemm_f32_traced(RB_NOTRANS, RB_TRANS, nq, m, d, 1.0f, qr, d, c->S, d, 0.0f, sq, m);
    if (!rc) rc = unpack(c, codes, count);
    if (!rc)
        rc = rb_gemm_f32_traced(RB_NOTRANS, RB_TRANS, count, nq, m, 1.0f, c->proj, m, sq, m, 0.0f,
                                out, nq);
    if (!rc) rb_rows_scale_f32(out, count, nq, nq, c->fnorm);
    free(qr);
    free(sq);
    return rc;
}

static const rb_codec_ops qjl_ops = {
    .create = qjl_create,
    .check = qjl_check,
    .code_bytes = qjl_code_bytes,
    .bits = qjl_bits,
    .encode = qjl_encode,
    .decode = qjl_decode,
    .inner_product = qjl_inner_product,
    .destroy = qjl_destroy,
};

const rb_method rb_method_qjl = {
    .name = "qjl",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2406.03482",
    .summary = "QJL: signs of a Gaussian or orthogonal JL sketch + norm, unbiased inner products",
    .version = 2, /* 2: the norm in fp16 by default (norm_bits) */
    .params = qjl_params,
    .nparams = sizeof qjl_params / sizeof qjl_params[0],
    .codec = &qjl_ops,
};
