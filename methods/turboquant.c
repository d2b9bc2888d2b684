/* TurboQuant (arXiv:2504.19874): turboquant_mse (Alg. 1: rotation + per-coordinate Lloyd-Max
 * codebook of the sphere marginal, fp32 norm) and turboquant_prod (Alg. 2: (b-1)-bit
 * turboquant_mse + 1-bit QJL on the residual), the latter in the paper's and the released code's
 * conventions (reference/codecs.md section 3).
 *
 * Both quantize the unit vector u = x / |x| and store |x| as fp32 after the payload, so any norm
 * round-trips; a zero vector decodes to exactly zero. Code layout (little-endian bit streams of
 * rb_pack_bits, then side information, fp32 each, unaligned):
 *   mse:  [b*d bits: codebook indices of R u] [|x|]
 *   prod: [(b-1)*d bits: indices] [d bits: QJL signs, bit 1 = negative] [|x|] [gamma (paper mode,
 *         b >= 2: at b = 1 the residual is R u itself, whose norm is 1)]
 *
 * The QJL stage works on the rotated residual r' = R u - c[idx] rather than on r = u - R^T c[idx]
 * as the paper writes it: r' = R r, so S r = (S R^T) r'. The paper's Gaussian S has the law of
 * S R^T, so it is used as it is; the released code's S (QR without the sign fix, not Haar) is
 * rotated once at create into S R^T (tq_qjl_matrix). The estimator and the decoder are the
 * paper's with S R^T in place of S; this saves one rotation per vector in every operation. With
 * rotation: none the two coincide exactly. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/codec_blocks.h"
#include "methods/method.h"

static const rb_param_def mse_params[] = {
    RB_PARAM_INT("bits", "2", 1, RB_LLOYD_MAX_BITS, "bits per coordinate of the payload"),
    RB_PARAM_ENUM("rotation", "haar", RB_ROTATION_CHOICES,
                  "random rotation R (the paper: haar; the released code: qr, the same QR without "
                  "the sign fix)"),
    RB_PARAM_ENUM("codebook", "sphere", "sphere|gaussian",
                  "Lloyd-Max codebook: sphere = exact marginal of a coordinate of a uniform point "
                  "on S^(d-1) (the paper); gaussian = N(0,1) codebook / sqrt(d) (released code)"),
};

static const rb_param_def prod_params[] = {
    RB_PARAM_INT("bits", "3", 1, RB_LLOYD_MAX_BITS + 1,
                 "bits per coordinate of the payload: b - 1 for turboquant_mse, 1 for QJL"),
    RB_PARAM_ENUM("rotation", "haar", RB_ROTATION_CHOICES,
                  "random rotation R of the turboquant_mse stage (the paper: haar; the released "
                  "code: qr)"),
    RB_PARAM_ENUM("mode", "paper", "paper|code",
                  "paper: Gaussian S, scale sqrt(pi/2)/d, gamma = |r| stored (fp32; b >= 2); code "
                  "(released code): orthogonal S (QR without the sign fix), scale "
                  "sqrt(pi/2)/sqrt(d), constant gamma per b, Gaussian codebook / sqrt(d)"),
};

/* gamma of the released code for b = 1..5 (reference/codecs.md section 3: sqrt(m_(b-1)) with
 * m_0 = 1, as printed there); larger b use sqrt(m_(b-1)) of our Gaussian codebook. */
static const double code_gamma[] = {1.0, 0.60281, 0.3426687, 0.185758, 0.0974343};

/* Philox seed purpose of the QJL matrix ("QJL"); the rotation uses the create seed itself. */
enum { SEED_QJL = 0x514A4C };

typedef struct tq {
    size_t dim;
    int bits;     /* b: payload bits per coordinate */
    int mse_bits; /* bits of the codebook stage: b (mse), b - 1 (prod; 0 = pure QJL) */
    int prod;     /* QJL stage present */
    int store_gamma;
    size_t payload_bytes, sign_bytes, code_bytes;
    double qjl_scale, gamma_const;
    rb_codebook cb; /* in units of the unit vector's rotated coordinates */
    rb_rotation rot;
    float *S; /* prod: d x d QJL matrix, row-major */
    /* Scratch, grown to the largest batch seen. */
    float *y, *u, *side;
    uint8_t *idx;
    size_t cap;
    float *qr, *qs, *t;
    size_t qcap, tcap;
    /* Blocked path (turboquant_mse with none/rht/rht2): per-slot scratch of block_rows rows. */
    int blocked;
    size_t block_rows;
    float *by;
    uint8_t *bidx;
    double *bd;
    /* rht / rht2: the fused kernel (kernels/rhtcodec.h) with per-slot scratch. */
    int fused;
    rb_rhtcodec fz;
    size_t fz_bytes;
    unsigned char *fz_scratch;
} tq;

static void tq_destroy(void *state) {
    tq *c = state;
    if (!c) return;
    rb_rotation_free(&c->rot);
    free(c->S);
    free(c->y);
    free(c->u);
    free(c->side);
    free(c->idx);
    free(c->qr);
    free(c->qs);
    free(c->t);
    free(c->by);
    free(c->bidx);
    free(c->bd);
    free(c->fz_scratch);
    free(c);
}

/* Codebook for the rotated coordinates of a unit vector: the sphere marginal's centroids are in
 * those units already; the Gaussian ones are in z = sqrt(d) x units. */
static int tq_codebook(tq *c, int gaussian) {
    const rb_lloyd_max *lm;
    int rc = rb_lloyd_codebook(gaussian ? RB_LLOYD_GAUSSIAN : RB_LLOYD_SPHERE,
                               gaussian ? 0 : (int) c->dim, c->mse_bits, &lm);
    if (rc) return rc;
    float cent[1 << RB_LLOYD_MAX_BITS];
    double s = gaussian ? 1.0 / sqrt((double) c->dim) : 1.0;
    for (size_t i = 0; i < lm->levels; i++) cent[i] = (float) (lm->centroids[i] * s);
    return rb_codebook_init(&c->cb, cent, lm->levels);
}

/* The matrix the QJL stage applies to the rotated residual r' = R r, from a seed derived from the
 * create seed. Paper: i.i.d. N(0,1) entries; S R^T has the law of S, so S itself serves. Released
 * code: the orthogonal Q of the QR of a Gaussian without the sign fix (rotation `qr`), which is
 * not Haar, so its law is not invariant: S' = S R^T exactly (each row of S rotated by R), and
 * sign(S' r') = sign(S r) as the released code computes it on the unrotated residual (reference
 * code, VectorDB-NTU/rabitq-turboquant-comparison accuracy/turbo_quant.py: both of its matrices
 * come from torch.linalg.qr of a Gaussian, and sign(residual @ rand_rot.T) takes the residual in
 * the input's coordinates). */
static int tq_qjl_matrix(tq *c, int code_mode, uint64_t seed) {
    size_t d = c->dim;
    uint64_t s = rb_seed_derive(seed, SEED_QJL, 0);
    if (!code_mode) {
        c->S = malloc(d * d * sizeof *c->S);
        if (!c->S) return rb_error_set(RB_ENOMEM, "turboquant_prod: no memory for S (%zu^2)", d);
        rb_rng_normal_f32(s, 0, 0, d * d, c->S);
        return RB_OK;
    }
    rb_rotation q;
    int rc = rb_rotation_init(&q, RB_ROT_QR, d, s);
    if (rc) return rc;
    c->S = q.Q; /* take the matrix over; the rest of q is empty */
    q.Q = NULL;
    rb_rotation_free(&q);
    return rb_rotation_apply(&c->rot, c->S, d, d, RB_FORWARD);
}

static int tq_check(const rb_params *p, size_t dim, int prod) {
    const char *name = prod ? "turboquant_prod" : "turboquant_mse";
    if (dim < 2)
        return rb_error_set(
            RB_ESIZE, "%s: d = %zu is not supported (the sphere S^(d-1) needs d >= 2)", name, dim);
    if (dim > RB_LLOYD_MAX_DIM)
        return rb_error_set(RB_ESIZE, "%s: d = %zu exceeds the codebook limit %d", name, dim,
                            RB_LLOYD_MAX_DIM);
    return rb_rotation_check_name(rb_params_str(p, "rotation"), dim);
}

static int tq_check_mse(const rb_params *p, size_t dim) {
    return tq_check(p, dim, 0);
}

static int tq_check_prod(const rb_params *p, size_t dim) {
    return tq_check(p, dim, 1);
}

static int tq_create(const rb_params *p, size_t dim, uint64_t seed, void **state, int prod) {
    const char *name = prod ? "turboquant_prod" : "turboquant_mse";
    int checked = tq_check(p, dim, prod);
    if (checked) return checked;
    tq *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "%s: no memory", name);
    c->dim = dim;
    c->prod = prod;
    c->bits = (int) rb_params_int(p, "bits");
    c->mse_bits = prod ? c->bits - 1 : c->bits;
    int code_mode = prod && rb_params_is(p, "mode", "code");
    int gaussian = prod ? code_mode : rb_params_is(p, "codebook", "gaussian");
    /* At b = 1 there is no codebook stage: the residual is R u, of norm 1 up to rounding, so
     * gamma is 1 and not stored (the paper's pure QJL with m = d, one norm of side information). */
    c->store_gamma = prod && !code_mode && c->mse_bits > 0;
    c->payload_bytes = c->mse_bits ? rb_pack_bytes(dim, c->mse_bits) : 0;
    c->sign_bytes = prod ? rb_pack_bytes(dim, 1) : 0;
    c->code_bytes =
        c->payload_bytes + c->sign_bytes + sizeof(float) * (1 + (size_t) c->store_gamma);
    if (prod) {
        /* For a row s with |s| ~ sqrt(d) (Gaussian), E[<s, q> sign(<s, r>)] = sqrt(2/pi) <q, r>/|r|
         * per row, so d rows need sqrt(pi/2)/d; unit rows (orthogonal) give 1/sqrt(d) of that. */
        c->qjl_scale = sqrt(M_PI / 2) / (code_mode ? sqrt((double) dim) : (double) dim);
        if (!code_mode)
            c->gamma_const = 1.0; /* used only at b = 1, where gamma is not stored */
        else if (c->bits <= (int) (sizeof code_gamma / sizeof code_gamma[0]))
            c->gamma_const = code_gamma[c->bits - 1];
        else {
            const rb_lloyd_max *lm;
            int rc = rb_lloyd_codebook(RB_LLOYD_GAUSSIAN, 0, c->mse_bits, &lm);
            if (rc) {
                tq_destroy(c);
                return rc;
            }
            c->gamma_const = sqrt(lm->mse);
        }
    }
    rb_rotation_kind kind = RB_ROT_NONE;
    int rc = rb_rotation_kind_parse(rb_params_str(p, "rotation"), &kind);
    if (!rc) rc = rb_rotation_init(&c->rot, kind, dim, seed);
    if (!rc && c->mse_bits) rc = tq_codebook(c, gaussian);
    if (!rc && prod) rc = tq_qjl_matrix(c, code_mode, seed);
    /* The dense paths (Haar rotation, the QJL GEMMs) keep whole-batch calls; the rest runs in
     * cache-sized blocks over the pool (same bits: every stage is per row). */
    if (!rc && !prod && !rb_rotation_is_dense(kind)) {
        c->blocked = 1;
        c->block_rows = rb_codec_block_rows(dim);
        c->fused = kind == RB_ROT_RHT || kind == RB_ROT_RHT2;
    }
    if (!rc && c->fused) {
        c->fz = (rb_rhtcodec){dim, c->rot.rht.d1, c->rot.rht.d2, &c->cb, c->mse_bits, "turboquant"};
        c->fz_bytes = rb_rhtcodec_scratch_bytes(dim);
        c->fz_scratch = malloc(c->fz_bytes * RB_CODEC_SLOTS);
        if (!c->fz_scratch) rc = rb_error_set(RB_ENOMEM, "%s: no memory", name);
    } else if (!rc && c->blocked) { /* rotation: none, multi-pass blocks */
        size_t rows = c->block_rows * RB_CODEC_SLOTS;
        c->by = malloc(rows * dim * sizeof *c->by);
        c->bidx = malloc(rows * dim);
        c->bd = malloc(rows * sizeof *c->bd);
        if (!c->by || !c->bidx || !c->bd) rc = rb_error_set(RB_ENOMEM, "%s: no memory", name);
    }
    if (rc) {
        tq_destroy(c);
        return rc;
    }
    *state = c;
    return RB_OK;
}

static int tq_create_mse(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    return tq_create(p, dim, seed, state, 0);
}

static int tq_create_prod(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    return tq_create(p, dim, seed, state, 1);
}

static size_t tq_code_bytes(const void *state) {
    return ((const tq *) state)->code_bytes;
}

/* Exact: b payload bits per coordinate plus the fp32 norm (and the fp32 gamma in paper mode at
 * b >= 2); byte padding of the stream is not counted. */
static double tq_bits(const void *state) {
    const tq *c = state;
    return (double) c->bits + 32.0 * (1 + c->store_gamma) / (double) c->dim;
}

static int reserve(tq *c, size_t count) {
    if (count <= c->cap) return RB_OK;
    size_t d = c->dim;
    float *y = realloc(c->y, count * d * sizeof *y);
    if (y) c->y = y;
    float *u = realloc(c->u, count * d * sizeof *u);
    if (u) c->u = u;
    float *s = realloc(c->side, count * 2 * sizeof *s);
    if (s) c->side = s;
    uint8_t *q = realloc(c->idx, count * d);
    if (q) c->idx = q;
    if (!y || !u || !s || !q)
        return rb_error_set(RB_ENOMEM, "turboquant: no memory for %zu vectors", count);
    c->cap = count;
    return RB_OK;
}

typedef struct tq_job {
    tq *c;
    const float *x;
    uint8_t *codes;
    const uint8_t *in;
    float *xhat;
    unsigned flags; /* decode: rb_rhtcodec_decode_f32's flags */
} tq_job;

/* turboquant_mse on rows [r0, r0 + rows): norms, u = x / |x| (in fp32, rb_unit_factors), R u,
 * nearest centroids, packed, |x| after the payload. The same operations as the whole-batch path
 * below, row for row. */
static int tq_encode_block(void *ctx, size_t slot, size_t r0, size_t rows) {
    tq_job *j = ctx;
    tq *c = j->c;
    size_t d = c->dim, B = c->block_rows;
    const float *x = j->x + r0 * d;
    if (c->fused)
        return rb_rhtcodec_encode_f32(&c->fz, x, rows, d, j->codes + r0 * c->code_bytes,
                                      c->code_bytes, r0, c->fz_scratch + slot * c->fz_bytes);
    float *y = c->by + slot * B * d;
    uint8_t *idx = c->bidx + slot * B * d;
    double *nrm = c->bd + slot * B;
    rb_rows_sqnorm_f32(x, rows, d, d, nrm);
    for (size_t i = 0; i < rows; i++) {
        double n = sqrt(nrm[i]);
        if (!isfinite(n) || n > FLT_MAX)
            return rb_error_set(RB_ENUMERIC, "turboquant: vector %zu %s", r0 + i,
                                isfinite(n) ? "has a norm beyond the fp32 range"
                                            : "has a NaN or infinite element");
        float nf = (float) n;
        memcpy(j->codes + (r0 + i) * c->code_bytes + c->payload_bytes, &nf, sizeof nf);
        nrm[i] = n;
    }
    rb_rows_unit_f32(x, rows, d, d, nrm, y, d);
    int rc = rb_rotation_apply(&c->rot, y, rows, d, RB_FORWARD);
    if (!rc) rc = rb_codebook_quantize_f32(&c->cb, y, rows, d, d, idx);
    if (!rc)
        rc = rb_pack_rows(idx, rows, d, c->mse_bits, j->codes + r0 * c->code_bytes, c->code_bytes);
    return rc;
}

/* Decode of rows [r0, r0 + rows) straight into xhat: centroids from the packed codes, R^T, |x|. */
static int tq_decode_block(void *ctx, size_t slot, size_t r0, size_t rows) {
    tq_job *j = ctx;
    tq *c = j->c;
    size_t d = c->dim;
    float *y = j->xhat + r0 * d;
    const uint8_t *in = j->in + r0 * c->code_bytes;
    if (c->fused)
        return rb_rhtcodec_decode_f32(&c->fz, in, c->code_bytes, rows, y, d, j->flags,
                                      c->fz_scratch + slot * c->fz_bytes);
    float *nrm = c->by + slot * c->block_rows * d;
    int rc = rb_codebook_decode_rows_f32(&c->cb, in, c->code_bytes, rows, d, c->mse_bits, y, d);
    if (!rc) rc = rb_rotation_apply(&c->rot, y, rows, d, RB_INVERSE);
    if (rc) return rc;
    for (size_t i = 0; i < rows; i++)
        memcpy(&nrm[i], in + i * c->code_bytes + c->payload_bytes, sizeof(float));
    rb_rows_scale_f32(y, rows, d, d, nrm);
    return RB_OK;
}

/* side[2i] = |x_i| (fp32), side[2i+1] = gamma_i; RB_ENUMERIC when a row is not finite or its norm
 * does not fit in fp32. */
static int tq_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    tq *c = state;
    size_t d = c->dim;
    if (c->blocked) {
        tq_job j = {c, x, codes, NULL, NULL, 0};
        return rb_codec_blocks(count, c->block_rows, tq_encode_block, &j);
    }
    int rc = reserve(c, count);
    if (rc) return rc;
    for (size_t i = 0; i < count; i++) {
        double n2;
        rb_rows_sqnorm_f32(x + i * d, 1, d, d, &n2);
        double n = sqrt(n2);
        if (!isfinite(n) || n > FLT_MAX)
            return rb_error_set(RB_ENUMERIC, "turboquant: vector %zu %s", i,
                                isfinite(n) ? "has a norm beyond the fp32 range"
                                            : "has a NaN or infinite element");
        c->side[2 * i] = (float) n;
        rb_rows_unit_f32(x + i * d, 1, d, d, &n, c->y + i * d, d);
    }
    if ((rc = rb_rotation_apply(&c->rot, c->y, count, d, RB_FORWARD))) return rc;
    if (c->mse_bits) {
        rc = rb_codebook_quantize_f32(&c->cb, c->y, count, d, d, c->idx);
        if (rc) return rc;
    }
    if (c->prod) {
        /* Rotated residual (in place), its norm gamma where it is stored, and the sketch S r'. */
        if (c->mse_bits) {
            rc = rb_codebook_dequantize_f32(&c->cb, c->idx, count * d, c->u);
            if (rc) return rc;
            for (size_t k = 0; k < count * d; k++) c->y[k] -= c->u[k];
        }
        for (size_t i = 0; c->store_gamma && i < count; i++) {
            double g2;
            rb_rows_sqnorm_f32(c->y + i * d, 1, d, d, &g2);
            c->side[2 * i + 1] = (float) sqrt(g2);
        }
        rc = rb_gemm_f32_traced(RB_NOTRANS, RB_TRANS, count, d, d, 1.0f, c->y, d, c->S, d, 0.0f,
                                c->u, d);
        if (rc) return rc;
    }
    /* The streams of the batch through the dispatched packer (each row's rb_pack_bits stream). */
    if (c->mse_bits && (rc = rb_pack_rows(c->idx, count, d, c->mse_bits, codes, c->code_bytes)))
        return rc;
    if (c->prod) {
        uint8_t *bitsbuf = (uint8_t *) c->y; /* y is free again: reuse as count x d bytes */
        for (size_t k = 0; k < count * d; k++) bitsbuf[k] = c->u[k] < 0.0f;
        rc = rb_pack_rows(bitsbuf, count, d, 1, codes + c->payload_bytes, c->code_bytes);
        if (rc) return rc;
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t *side = codes + i * c->code_bytes + c->payload_bytes + c->sign_bytes;
        memcpy(side, &c->side[2 * i], sizeof(float));
        if (c->store_gamma) memcpy(side + sizeof(float), &c->side[2 * i + 1], sizeof(float));
    }
    return RB_OK;
}

/* Unpacks a batch in the rotated domain: y = c[idx] (zeros without a codebook stage), u = the
 * QJL signs as +-1 (prod), side[2i] = |x_i|, side[2i+1] = qjl_scale * gamma_i (prod). */
static int tq_unpack(tq *c, const uint8_t *codes, size_t count) {
    size_t d = c->dim;
    int rc = reserve(c, count);
    if (rc) return rc;
    if (c->mse_bits && (rc = rb_unpack_rows(codes, c->code_bytes, count, d, c->mse_bits, c->idx)))
        return rc;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *side = codes + i * c->code_bytes + c->payload_bytes + c->sign_bytes;
        memcpy(&c->side[2 * i], side, sizeof(float));
        if (c->prod) {
            float g = (float) c->gamma_const;
            if (c->store_gamma) memcpy(&g, side + sizeof(float), sizeof(float));
            c->side[2 * i + 1] = (float) (c->qjl_scale * g);
        }
    }
    if (c->mse_bits)
        rc = rb_codebook_dequantize_f32(&c->cb, c->idx, count * d, c->y);
    else
        memset(c->y, 0, count * d * sizeof *c->y);
    if (rc) return rc;
    if (!c->prod) return RB_OK;
    /* The sign stream is a 1-bit row stream at payload_bytes: through the dispatched unpacker
     * (the indices are spent, so their buffer takes the bits), then bit 1 = negative. */
    if ((rc = rb_unpack_rows(codes + c->payload_bytes, c->code_bytes, count, d, 1, c->idx)))
        return rc;
    for (size_t k = 0; k < count * d; k++) c->u[k] = c->idx[k] ? -1.0f : 1.0f;
    return RB_OK;
}

/* The paper's reconstruction: x~ = |x| R^T (c[idx] + sqrt(pi/2)/d gamma S'^T sign(S' r')), S' the
 * QJL matrix of tq_qjl_matrix (with the code mode's scale and gamma in that mode). */
static int tq_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    tq *c = state;
    size_t d = c->dim;
    if (c->blocked) {
        /* Outputs far beyond the last-level cache go around it (non-temporal stores). */
        unsigned flags = count * d * sizeof *xhat > ((size_t) 64 << 20) ? RB_RHTCODEC_STREAM : 0;
        tq_job j = {c, NULL, NULL, codes, xhat, flags};
        return rb_codec_blocks(count, c->block_rows, tq_decode_block, &j);
    }
    int rc = tq_unpack(c, codes, count);
    if (rc) return rc;
    memcpy(xhat, c->y, count * d * sizeof *xhat);
    if (c->prod) {
        /* xhat += coef_i * (signs S): beta = 1 accumulates onto the codebook part, after the
         * signs are scaled per row. */
        for (size_t i = 0; i < count; i++) {
            float coef = c->side[2 * i + 1];
            for (size_t j = 0; j < d; j++) c->u[i * d + j] *= coef;
        }
        rc = rb_gemm_f32_traced(RB_NOTRANS, RB_NOTRANS, count, d, d, 1.0f, c->u, d, c->S, d, 1.0f,
                                xhat, d);
        if (rc) return rc;
    }
    if ((rc = rb_rotation_apply(&c->rot, xhat, count, d, RB_INVERSE))) return rc;
    for (size_t i = 0; i < count; i++) {
        float n = c->side[2 * i];
        rb_rows_scale_f32(xhat + i * d, 1, d, d, &n);
    }
    return RB_OK;
}

/* The asymmetric estimator of Alg. 2 for every (code i, query j):
 *   <q_j, x~_i> = |x_i| (<R q_j, c[idx_i]> + coef_i <S R q_j, sign_i>)
 * with the query kept in full precision (rotated and sketched once per call). */
static int tq_inner_product(void *state, const uint8_t *codes, size_t count, const float *q,
                            size_t nq, float *out) {
    tq *c = state;
    size_t d = c->dim;
    int rc = tq_unpack(c, codes, count);
    if (rc) return rc;
    if (nq > c->qcap) {
        float *a = realloc(c->qr, nq * d * sizeof *a);
        if (a) c->qr = a;
        float *b = realloc(c->qs, nq * d * sizeof *b);
        if (b) c->qs = b;
        if (!a || !b) return rb_error_set(RB_ENOMEM, "turboquant: no memory for %zu queries", nq);
        c->qcap = nq;
    }
    if (count * nq > c->tcap) {
        float *t = realloc(c->t, count * nq * sizeof *t);
        if (!t) return rb_error_set(RB_ENOMEM, "turboquant: no memory for %zu scores", count * nq);
        c->t = t;
        c->tcap = count * nq;
    }
    memcpy(c->qr, q, nq * d * sizeof *q);
    if ((rc = rb_rotation_apply(&c->rot, c->qr, nq, d, RB_FORWARD))) return rc;
    rc = rb_gemm_f32_traced(RB_NOTRANS, RB_TRANS, count, nq, d, 1.0f, c->y, d, c->qr, d, 0.0f, out,
                            nq);
    if (!rc && c->prod) {
        rc = rb_gemm_f32_traced(RB_NOTRANS, RB_TRANS, nq, d, d, 1.0f, c->qr, d, c->S, d, 0.0f,
                                c->qs, d);
        if (!rc)
            rc = rb_gemm_f32_traced(RB_NOTRANS, RB_TRANS, count, nq, d, 1.0f, c->u, d, c->qs, d,
                                    0.0f, c->t, nq);
        for (size_t i = 0; !rc && i < count; i++)
            for (size_t j = 0; j < nq; j++)
                out[i * nq + j] += c->side[2 * i + 1] * c->t[i * nq + j];
    }
    for (size_t i = 0; !rc && i < count; i++)
        for (size_t j = 0; j < nq; j++) out[i * nq + j] *= c->side[2 * i];
    return rc;
}

static const rb_codec_ops mse_ops = {
    .create = tq_create_mse,
    .check = tq_check_mse,
    .code_bytes = tq_code_bytes,
    .bits = tq_bits,
    .encode = tq_encode,
    .decode = tq_decode,
    .destroy = tq_destroy,
};

static const rb_codec_ops prod_ops = {
    .create = tq_create_prod,
    .check = tq_check_prod,
    .code_bytes = tq_code_bytes,
    .bits = tq_bits,
    .encode = tq_encode,
    .decode = tq_decode,
    .inner_product = tq_inner_product,
    .destroy = tq_destroy,
};

const rb_method rb_method_turboquant_mse = {
    .name = "turboquant_mse",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2504.19874",
    .summary = "TurboQuant_mse: random rotation + Lloyd-Max codebook of the sphere marginal",
    .version = 2, /* 2: fp32 normalization (rb_unit_factors), lanes16 norms */
    .params = mse_params,
    .nparams = sizeof mse_params / sizeof mse_params[0],
    .codec = &mse_ops,
};

const rb_method rb_method_turboquant_prod = {
    .name = "turboquant_prod",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2504.19874",
    .summary = "TurboQuant_prod: (b-1)-bit TurboQuant_mse + 1-bit QJL residual, unbiased inner "
               "products",
    .version = 3, /* 2: fp32 normalization (rb_unit_factors), lanes16 norms; 3: no gamma at
                   * b = 1 (paper mode), code mode's S the released code's QR without sign fix */
    .params = prod_params,
    .nparams = sizeof prod_params / sizeof prod_params[0],
    .codec = &prod_ops,
};
