/* eden and drive: rotate, quantize the normalized rotated vector with the N(0,1) Lloyd-Max
 * codebook, and store one fp32 scale S per vector; decode is R^T (S q). DRIVE (arXiv 2105.08339) is
 * the 1-bit case with q = sign(Rx) (EDEN arXiv 2108.08842; codecs.md section 4).
 *
 * Choices (documented here because the papers' own setting differs):
 * - One rotation per codec instance, derived from the create seed, shared by every vector. EDEN and
 *   DRIVE draw fresh signs per vector for distributed mean estimation; search and KV caches share
 *   one rotation because the query is rotated once (codecs.md section 1). On rotation-invariant
 *   data (sphere, Gaussian) the per-vector statistics are the same.
 * - RHT (the papers' default) needs a Hadamard order: d that is not one is zero-padded to the
 *   smallest order n = K * 2^m >= d before rotating, and decode truncates. The reference code
 *   (torch/hadamard.py) pads to the next power of two because it has only Sylvester matrices;
 *   rb_rotation also takes K * 2^m (1536 = 12 * 128 needs no padding, 200 pads to 208 = 52 * 4).
 *   The payload is then b * n bits for n > d, and bits() counts it; the decoded error is at most
 *   the padded vector's (truncation drops the error in the padding). Haar, qr and none never pad.
 * - Scales (q = centroid vector, y = R x): biased S = <y,q>/|q|^2 (minimizes |y - S q|, per-vector
 *   vNMSE 1 - cos^2(y,q)); unbiased S = |y|^2/<y,q> (<x, x_hat> = |x|^2, vNMSE 1/cos^2 - 1).
 *   S q does not depend on how q is scaled, so eden keeps q in N(0,1) units and drive in sign
 *   units (q = +-1), making drive's stored S exactly DRIVE's (|y|_1 / n or |y|^2 / |y|_1).
 * - A zero vector stores S = 0 and decodes to zero. A coordinate exactly 0 after rotation goes to
 *   the lower cell (-c), as rb_codebook breaks ties; it does not change <y,q>.
 * - Fractional bits (the reference code's EdenQuantization, torch/eden.py): b = 2.5 quantizes a
 *   random subset of the rotated coordinates with the ceil(b)-bit codebook and the rest with the
 *   floor(b)-bit one; q is the mixed centroid vector and both scales keep their formulas (they
 *   hold for any codeword q). Two choices differ from the reference, for the same reasons as the
 *   shared rotation: (1) one mask per codec instance (from the create seed, a stream of its own),
 *   not a fresh one per vector: the reference draws a seed per vector and ships it in the
 *   context, which a fixed-size code with a self-describing rate cannot do, and a shared rotation
 *   already makes every rotated coordinate look alike; (2) exactly k = round(frac(b) n) high
 *   coordinates (the k smallest of n Philox keys: a uniform k-subset), not an independent
 *   Bernoulli(frac) per coordinate, so the rate is exact and the same for every seed. That makes
 *   a baseline at another codec's exact rate possible (OCTOPUS at d = 126: b = 2.333 gives
 *   k = 42, 2 * 126 + 42 bits = OCTOPUS's 42 triplets of 7 bits). Each coordinate is still high
 *   with probability k/n. A fraction with k = 0 or k = n is an error (it would be an integer rate
 *   under a fractional name); b < 1 (the reference's random sparsification first) is not
 *   implemented: the parameter's range starts at 1. Code layout for fractional b: [the n - k
 *   low-width indices, in coordinate order][the k high-width ones, in coordinate order][fp32 S],
 *   two rb_pack_bits streams as in the reference's pair of assignment tensors; bits() counts
 *   (n - k) floor(b) + k ceil(b) + 32, not the byte padding between the streams. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/codec_blocks.h"
#include "methods/method.h"

#define SCALE_CHOICES "biased|unbiased"

static const rb_param_def eden_params[] = {
    RB_PARAM_INT_FRAC("bits", "4", 1, RB_LLOYD_MAX_BITS,
                      "bits per rotated coordinate; a fraction (2.5) puts round(frac n) seeded "
                      "coordinates at ceil(b) bits, the rest at floor(b)"),
    RB_PARAM_ENUM("rotation", "rht", RB_ROTATION_CHOICES,
                  "rotation before quantizing (rht pads to a power of two)"),
    RB_PARAM_ENUM("scale", "unbiased", SCALE_CHOICES,
                  "S = |y|^2/<y,q> (unbiased) or <y,q>/|q|^2 (biased, MSE-optimal)"),
};

static const rb_param_def drive_params[] = {
    RB_PARAM_INT("bits", "1", 1, 1, "DRIVE is a 1-bit code"),
    RB_PARAM_ENUM("rotation", "rht", RB_ROTATION_CHOICES,
                  "rotation before quantizing (rht pads to a power of two)"),
    RB_PARAM_ENUM("scale", "biased", SCALE_CHOICES,
                  "S = |y|_1/n (biased, MSE-optimal) or |y|^2/|y|_1 (unbiased)"),
};

/* Seed label for rb_seed_derive: the fractional-bits mask is independent of the rotation. */
enum { SEED_MASK = 0x4544464d };

typedef struct eden {
    size_t dim, n;      /* input length, rotated (padded) length */
    int bits, unbiased; /* bits: floor(b), the width of every coordinate for integer b */
    size_t payload_bytes;
    rb_codebook cb;
    /* Fractional b (k > 0): k coordinates at bits + 1 with cb_hi. pos lists the n - k low-width
     * coordinates ascending, then the k high-width ones ascending; lo_bytes is the first
     * stream's length. */
    size_t k, lo_bytes;
    rb_codebook cb_hi;
    uint32_t *pos;
    rb_rotation rot;
    float *work, *q; /* count x n each, grown to the largest batch seen */
    uint8_t *idx;    /* count x n */
    double *sq, *dot;
    size_t cap;
    const char *name;
    /* Blocked path (every rotation but the dense ones): per-slot scratch of block_rows rows. */
    int blocked;
    size_t block_rows;
    float *bw, *bq;
    uint8_t *bidx;
    double *bd;
} eden;

static void eden_destroy(void *state) {
    eden *c = state;
    if (!c) return;
    rb_rotation_free(&c->rot);
    free(c->pos);
    free(c->work);
    free(c->q);
    free(c->idx);
    free(c->sq);
    free(c->dot);
    free(c->bw);
    free(c->bq);
    free(c->bidx);
    free(c->bd);
    free(c);
}

/* The smallest Hadamard order K * 2^m >= d that rb_hadamard_lookup accepts (it rejects none of
 * them), K = 1 or a tabled K. */
static size_t hadamard_order_at_least(size_t d) {
    size_t best = 1;
    while (best < d) best <<= 1;
    for (size_t i = 0; i < RB_HADAMARD_NK; i++) {
        size_t n = rb_hadamard_ks[i];
        while (n < d) n <<= 1;
        if (n < best) best = n;
    }
    return best;
}

/* The rotation, the rotated length n and the number k of high-width coordinates that the
 * parameters give for vectors of length dim; the errors create reports. */
static int eden_shape(const rb_params *p, size_t dim, const char *name, rb_rotation_kind *kind,
                      size_t *n, size_t *k) {
    if (dim == 0) return rb_error_set(RB_ESIZE, "%s: vectors of dimension 0", name);
    int rc = rb_rotation_kind_parse(rb_params_str(p, "rotation"), kind);
    if (rc) return rc;
    int rht = *kind == RB_ROT_RHT || *kind == RB_ROT_RHT2;
    *n = rht ? hadamard_order_at_least(dim) : dim;
    double b = rb_params_float(p, "bits"), frac = b - floor(b);
    *k = frac > 0 ? (size_t) floor(frac * (double) *n + 0.5) : 0;
    if (frac > 0 && (*k == 0 || *k == *n))
        return rb_error_set(RB_EINVAL,
                            "%s: bits %g puts round(%g * %zu) = %zu of the %zu rotated coordinates "
                            "at %d bits, an integer rate; give bits %d or %d, or a fraction in "
                            "[%.3g, %.3g]",
                            name, b, frac, *n, *k, *n, (int) b + 1, (int) b, (int) b + 1,
                            0.5 / (double) *n, 1 - 0.5 / (double) *n);
    return RB_OK;
}

static int eden_check(const rb_params *p, size_t dim) {
    rb_rotation_kind kind;
    size_t n, k;
    return eden_shape(p, dim, "eden", &kind, &n, &k);
}

/* The k coordinates at bits + 1: those holding the k smallest of n Philox keys (ties, which a
 * 32-bit key makes rare, to the lower index), a uniformly random k-subset. Sorting (key << 32 |
 * index) keeps the order total, so qsort's instability cannot matter. */
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

static int frac_mask_init(eden *c, uint64_t seed) {
    size_t n = c->n, k = c->k, lo = 0, hi = n - k;
    uint32_t *key = malloc(n * sizeof *key);
    uint64_t *order = malloc(n * sizeof *order);
    uint8_t *high = calloc(n, 1);
    c->pos = malloc(n * sizeof *c->pos);
    int rc = RB_OK;
    if (!key || !order || !high || !c->pos) {
        rc = rb_error_set(RB_ENOMEM, "%s: no memory for the bits mask (n = %zu)", c->name, n);
        goto done;
    }
    rb_rng_bits(rb_seed_derive(seed, SEED_MASK, 0), 0, 0, n, key);
    for (size_t j = 0; j < n; j++) order[j] = (uint64_t) key[j] << 32 | (uint64_t) j;
    qsort(order, n, sizeof *order, cmp_u64);
    for (size_t j = 0; j < k; j++) high[order[j] & 0xffffffffu] = 1;
    for (size_t j = 0; j < n; j++) c->pos[high[j] ? hi++ : lo++] = (uint32_t) j;
done:
    free(key);
    free(order);
    free(high);
    return rc;
}

/* The N(0,1) Lloyd-Max codebook of `bits` bits. */
static int gaussian_codebook(rb_codebook *cb, int bits) {
    float cent[1 << RB_LLOYD_MAX_BITS];
    const rb_lloyd_max *lm;
    int rc = rb_lloyd_codebook(RB_LLOYD_GAUSSIAN, 0, bits, &lm);
    if (rc) return rc;
    for (size_t i = 0; i < lm->levels; i++) cent[i] = (float) lm->centroids[i];
    return rb_codebook_init(cb, cent, lm->levels);
}

static int create_common(const rb_params *p, size_t dim, uint64_t seed, int drive, void **state) {
    const char *name = drive ? "drive" : "eden";
    rb_rotation_kind kind = RB_ROT_NONE;
    size_t n, k;
    int rc = eden_shape(p, dim, name, &kind, &n, &k);
    if (rc) return rc;
    eden *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "%s: no memory", name);
    c->name = name;
    c->dim = dim;
    c->n = n;
    c->k = k;
    c->bits = (int) floor(rb_params_float(p, "bits"));
    c->unbiased = strcmp(rb_params_str(p, "scale"), "unbiased") == 0;
    if (k) {
        c->lo_bytes = rb_pack_bytes(n - k, c->bits);
        c->payload_bytes = c->lo_bytes + rb_pack_bytes(k, c->bits + 1);
    } else {
        c->payload_bytes = rb_pack_bytes(n, c->bits);
    }
    rc = rb_rotation_init(&c->rot, kind, c->n, seed);
    if (!rc) {
        if (drive) {
            const float cent[2] = {-1.0f, 1.0f};
            rc = rb_codebook_init(&c->cb, cent, 2);
        } else {
            rc = gaussian_codebook(&c->cb, c->bits);
        }
    }
    if (!rc && k) rc = gaussian_codebook(&c->cb_hi, c->bits + 1);
    if (!rc && k) rc = frac_mask_init(c, seed);
    /* Dense rotations keep the whole-batch GEMM; the rest runs in cache-sized blocks over the pool
     * (the same bits: every stage is per row). */
    if (!rc && !rb_rotation_is_dense(kind)) {
        c->blocked = 1;
        c->block_rows = rb_codec_block_rows(c->n);
        size_t rows = c->block_rows * RB_CODEC_SLOTS;
        c->bw = malloc(rows * c->n * sizeof *c->bw);
        c->bq = malloc(rows * c->n * sizeof *c->bq);
        c->bidx = malloc(rows * c->n);
        c->bd = malloc(rows * 3 * sizeof *c->bd);
        if (!c->bw || !c->bq || !c->bidx || !c->bd)
            rc = rb_error_set(RB_ENOMEM, "%s: no memory", name);
    }
    if (rc) {
        eden_destroy(c);
        return rc;
    }
    *state = c;
    return RB_OK;
}

static int eden_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    return create_common(p, dim, seed, 0, state);
}

static int drive_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    return create_common(p, dim, seed, 1, state);
}

static size_t eden_code_bytes(const void *state) {
    const eden *c = state;
    return c->payload_bytes + sizeof(float);
}

static double eden_bits(const void *state) {
    const eden *c = state;
    return ((double) c->bits * (double) (c->n - c->k) + (double) (c->bits + 1) * (double) c->k +
            32.0) /
           (double) c->dim;
}

static int reserve(eden *c, size_t count) {
    if (count <= c->cap) return RB_OK;
    float *w = realloc(c->work, count * c->n * sizeof *w);
    if (w) c->work = w;
    float *q = realloc(c->q, count * c->n * sizeof *q);
    if (q) c->q = q;
    uint8_t *idx = realloc(c->idx, count * c->n);
    if (idx) c->idx = idx;
    double *sq = realloc(c->sq, count * sizeof *sq);
    if (sq) c->sq = sq;
    double *dot = realloc(c->dot, count * sizeof *dot);
    if (dot) c->dot = dot;
    if (!w || !q || !idx || !sq || !dot)
        return rb_error_set(RB_ENOMEM, "%s: no memory for %zu vectors", c->name, count);
    c->cap = count;
    return RB_OK;
}

/* The rows of x, zero-padded to n, into work. */
static void load_padded(const eden *c, const float *x, size_t count) {
    if (c->n == c->dim) {
        memcpy(c->work, x, count * c->n * sizeof *x);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        memcpy(c->work + i * c->n, x + i * c->dim, c->dim * sizeof *x);
        memset(c->work + i * c->n + c->dim, 0, (c->n - c->dim) * sizeof *x);
    }
}

/* Fractional b, after the rows' normalization: w (rows x n, unit-variance coordinates, clobbered)
 * is gathered into g (rows x (n - k) low-width coordinates, then rows x k high-width ones), each
 * part quantized and packed into its stream, q read back from the packed codes (what the decoder
 * sees) into w's space, and S of the mixed q written. sq: |y|^2 per row; idx: rows x n bytes. */
static int frac_encode_rows(const eden *c, float *w, float *g, uint8_t *idx, const double *sq,
                            size_t rows, uint8_t *out, size_t cbytes) {
    size_t n = c->n, k = c->k, nl = n - k;
    const uint32_t *ph = c->pos + nl;
    float *gl = g, *gh = g + rows * nl, *ql = w, *qh = w + rows * nl;
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < nl; j++) gl[i * nl + j] = w[i * n + c->pos[j]];
        for (size_t j = 0; j < k; j++) gh[i * k + j] = w[i * n + ph[j]];
    }
    int rc = rb_codebook_quantize_f32(&c->cb, gl, rows, nl, nl, idx);
    if (!rc) rc = rb_codebook_quantize_f32(&c->cb_hi, gh, rows, k, k, idx + rows * nl);
    if (!rc) rc = rb_pack_rows(idx, rows, nl, c->bits, out, cbytes);
    if (!rc) rc = rb_pack_rows(idx + rows * nl, rows, k, c->bits + 1, out + c->lo_bytes, cbytes);
    if (!rc) rc = rb_codebook_decode_rows_f32(&c->cb, out, cbytes, rows, nl, c->bits, ql, nl);
    if (!rc)
        rc = rb_codebook_decode_rows_f32(&c->cb_hi, out + c->lo_bytes, cbytes, rows, k, c->bits + 1,
                                         qh, k);
    if (rc) return rc;
    for (size_t i = 0; i < rows; i++) {
        /* <t,q> and |q|^2 over both parts, with the row kernels the integer path uses */
        double tl, th, ql2, qh2;
        rb_rows_dot_f32(gl + i * nl, ql + i * nl, 1, nl, nl, &tl);
        rb_rows_dot_f32(gh + i * k, qh + i * k, 1, k, k, &th);
        rb_rows_sqnorm_f32(ql + i * nl, 1, nl, nl, &ql2);
        rb_rows_sqnorm_f32(qh + i * k, 1, k, k, &qh2);
        double tq = tl + th, q2 = ql2 + qh2;
        /* The integer path's formulas: <y,q> = <t,q> |y|/sqrt(n). */
        double ny = sqrt(sq[i]), rn = sqrt((double) n), s = 0;
        if (ny > 0 && tq > 0) s = c->unbiased ? ny * rn / tq : tq * ny / (rn * q2);
        float sf = (float) s;
        memcpy(out + i * cbytes + c->payload_bytes, &sf, sizeof sf);
    }
    return RB_OK;
}

/* Fractional b: y (rows x n) = S q from the two streams, through tmp (rows x n floats). */
static int frac_decode_rows(const eden *c, const uint8_t *in, size_t cbytes, size_t rows,
                            float *tmp, float *y) {
    size_t n = c->n, k = c->k, nl = n - k;
    const uint32_t *ph = c->pos + nl;
    float *ql = tmp, *qh = tmp + rows * nl;
    int rc = rb_codebook_decode_rows_f32(&c->cb, in, cbytes, rows, nl, c->bits, ql, nl);
    if (!rc)
        rc = rb_codebook_decode_rows_f32(&c->cb_hi, in + c->lo_bytes, cbytes, rows, k, c->bits + 1,
                                         qh, k);
    if (rc) return rc;
    for (size_t i = 0; i < rows; i++) { /* scatter back to coordinate order */
        for (size_t j = 0; j < nl; j++) y[i * n + c->pos[j]] = ql[i * nl + j];
        for (size_t j = 0; j < k; j++) y[i * n + ph[j]] = qh[i * k + j];
    }
    /* tmp is free again: S per row, applied by the kernel the integer path uses */
    for (size_t i = 0; i < rows; i++)
        memcpy(&tmp[i], in + i * cbytes + c->payload_bytes, sizeof(float));
    rb_rows_scale_f32(y, rows, n, n, tmp);
    return RB_OK;
}

typedef struct eden_job {
    eden *c;
    const float *x;
    uint8_t *codes;
    const uint8_t *in;
    float *xhat;
} eden_job;

/* Encode of rows [r0, r0 + rows): the operations of the whole-batch path below, row for row.
 * The centroid vector q is decoded from the packed codes just written (the same values as
 * dequantizing the indices). */
static int eden_encode_block(void *ctx, size_t slot, size_t r0, size_t rows) {
    eden_job *j = ctx;
    eden *c = j->c;
    size_t n = c->n, B = c->block_rows, cbytes = c->payload_bytes + sizeof(float);
    float *w = c->bw + slot * B * n, *q = c->bq + slot * B * n;
    uint8_t *idx = c->bidx + slot * B * n, *out = j->codes + r0 * cbytes;
    double *sq = c->bd + slot * B * 3, *eta = sq + B, *dot = eta + B;
    if (n == c->dim)
        memcpy(w, j->x + r0 * n, rows * n * sizeof *w);
    else
        for (size_t i = 0; i < rows; i++) {
            memcpy(w + i * n, j->x + (r0 + i) * c->dim, c->dim * sizeof *w);
            memset(w + i * n + c->dim, 0, (n - c->dim) * sizeof *w);
        }
    int rc = rb_rotation_apply(&c->rot, w, rows, n, RB_FORWARD);
    if (rc) return rc;
    rb_rows_sqnorm_f32(w, rows, n, n, sq);
    for (size_t i = 0; i < rows; i++) {
        double ny = sqrt(sq[i]);
        if (!isfinite(ny))
            return rb_rotation_overflow_error(c->name, j->x + (r0 + i) * c->dim, c->dim, r0 + i);
        eta[i] = ny > 0 ? sqrt((double) n) / ny : 0.0;
    }
    rb_rows_scale_f64_f32(w, rows, n, n, eta, w, n);
    if (c->k) return frac_encode_rows(c, w, q, idx, sq, rows, out, cbytes);
    if ((rc = rb_codebook_quantize_f32(&c->cb, w, rows, n, n, idx))) return rc;
    if ((rc = rb_pack_rows(idx, rows, n, c->bits, out, cbytes))) return rc;
    if ((rc = rb_codebook_decode_rows_f32(&c->cb, out, cbytes, rows, n, c->bits, q, n))) return rc;
    rb_rows_dot_f32(w, q, rows, n, n, dot);
    if (!c->unbiased) rb_rows_sqnorm_f32(q, rows, n, n, eta); /* eta is free again: |q|^2 */
    for (size_t i = 0; i < rows; i++) {
        double ny = sqrt(sq[i]), rn = sqrt((double) n), tq = dot[i], s = 0;
        if (ny > 0 && tq > 0) s = c->unbiased ? ny * rn / tq : tq * ny / (rn * eta[i]);
        float sf = (float) s;
        memcpy(out + i * cbytes + c->payload_bytes, &sf, sizeof sf);
    }
    return RB_OK;
}

/* Decode of rows [r0, r0 + rows): centroids straight from the packed codes, times S, R^T. */
static int eden_decode_block(void *ctx, size_t slot, size_t r0, size_t rows) {
    eden_job *j = ctx;
    eden *c = j->c;
    size_t n = c->n, B = c->block_rows, cbytes = c->payload_bytes + sizeof(float);
    const uint8_t *in = j->in + r0 * cbytes;
    float *y = n == c->dim ? j->xhat + r0 * n : c->bw + slot * B * n, *s = c->bq + slot * B * n;
    int rc;
    if (c->k) {
        if ((rc = frac_decode_rows(c, in, cbytes, rows, s, y))) return rc;
    } else {
        if ((rc = rb_codebook_decode_rows_f32(&c->cb, in, cbytes, rows, n, c->bits, y, n)))
            return rc;
        for (size_t i = 0; i < rows; i++)
            memcpy(&s[i], in + i * cbytes + c->payload_bytes, sizeof(float));
        rb_rows_scale_f32(y, rows, n, n, s);
    }
    if ((rc = rb_rotation_apply(&c->rot, y, rows, n, RB_INVERSE))) return rc;
    if (n != c->dim)
        for (size_t i = 0; i < rows; i++)
            memcpy(j->xhat + (r0 + i) * c->dim, y + i * n, c->dim * sizeof *y);
    return RB_OK;
}

static int eden_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    eden *c = state;
    size_t n = c->n, cbytes = eden_code_bytes(c);
    if (c->blocked) {
        eden_job j = {c, x, codes, NULL, NULL};
        return rb_codec_blocks(count, c->block_rows, eden_encode_block, &j);
    }
    int rc = reserve(c, count);
    if (rc) return rc;
    load_padded(c, x, count);
    if ((rc = rb_rotation_apply(&c->rot, c->work, count, n, RB_FORWARD))) return rc;
    rb_rows_sqnorm_f32(c->work, count, n, n, c->sq);
    /* Normalize each rotated row to unit-variance coordinates, t = y * sqrt(n)/|y|, in double so
     * that tiny and huge norms neither overflow nor flush to zero; |y| is kept for S. */
    for (size_t i = 0; i < count; i++) {
        double ny = sqrt(c->sq[i]);
        if (!isfinite(ny)) return rb_rotation_overflow_error(c->name, x + i * c->dim, c->dim, i);
        double eta = ny > 0 ? sqrt((double) n) / ny : 0.0;
        float *t = c->work + i * n;
        for (size_t j = 0; j < n; j++) t[j] = (float) ((double) t[j] * eta);
    }
    if (c->k) return frac_encode_rows(c, c->work, c->q, c->idx, c->sq, count, codes, cbytes);
    if ((rc = rb_codebook_quantize_f32(&c->cb, c->work, count, n, n, c->idx))) return rc;
    if ((rc = rb_codebook_dequantize_f32(&c->cb, c->idx, count * n, c->q))) return rc;
    rb_rows_dot_f32(c->work, c->q, count, n, n, c->dot);
    for (size_t i = 0; i < count; i++) {
        /* <y,q> = <t,q> |y|/sqrt(n). */
        double ny = sqrt(c->sq[i]), rn = sqrt((double) n), tq = c->dot[i], s = 0;
        if (ny > 0 && tq > 0) {
            if (c->unbiased) {
                s = ny * rn / tq; /* |y|^2 / <y,q> */
            } else {
                double q2;
                rb_rows_sqnorm_f32(c->q + i * n, 1, n, n, &q2);
                s = tq * ny / (rn * q2); /* <y,q> / |q|^2 */
            }
        }
        float sf = (float) s;
        memcpy(codes + i * cbytes + c->payload_bytes, &sf, sizeof sf); /* need not be aligned */
    }
    /* The payloads: one dispatched call for the batch (the rb_pack_bits stream of each row). */
    return rb_pack_rows(c->idx, count, n, c->bits, codes, cbytes);
}

static int eden_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    eden *c = state;
    size_t n = c->n, cbytes = eden_code_bytes(c);
    if (c->blocked) {
        eden_job j = {c, NULL, NULL, codes, xhat};
        return rb_codec_blocks(count, c->block_rows, eden_decode_block, &j);
    }
    int rc = reserve(c, count);
    if (rc) return rc;
    float *y = n == c->dim ? xhat : c->work;
    if (c->k) {
        if ((rc = frac_decode_rows(c, codes, cbytes, count, c->q, y))) return rc;
    } else {
        if ((rc = rb_unpack_rows(codes, cbytes, count, n, c->bits, c->idx))) return rc;
        for (size_t i = 0; i < count; i++) /* S into q[0..count) */
            memcpy(&c->q[i], codes + i * cbytes + c->payload_bytes, sizeof(float));
        if ((rc = rb_codebook_dequantize_f32(&c->cb, c->idx, count * n, y))) return rc;
        rb_rows_scale_f32(y, count, n, n, c->q);
    }
    if ((rc = rb_rotation_apply(&c->rot, y, count, n, RB_INVERSE))) return rc;
    if (y != xhat)
        for (size_t i = 0; i < count; i++)
            memcpy(xhat + i * c->dim, y + i * n, c->dim * sizeof *xhat);
    return RB_OK;
}

static const rb_codec_ops eden_ops = {
    .create = eden_create,
    .check = eden_check,
    .code_bytes = eden_code_bytes,
    .bits = eden_bits,
    .encode = eden_encode,
    .decode = eden_decode,
    .destroy = eden_destroy,
};

static const rb_codec_ops drive_ops = {
    .create = drive_create,
    .code_bytes = eden_code_bytes,
    .bits = eden_bits,
    .encode = eden_encode,
    .decode = eden_decode,
    .destroy = eden_destroy,
};

const rb_method rb_method_eden = {
    .name = "eden",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2108.08842",
    .summary = "EDEN: rotation + N(0,1) Lloyd-Max codebook + one fp32 scale (biased or unbiased)",
    .version = 1,
    .params = eden_params,
    .nparams = sizeof eden_params / sizeof eden_params[0],
    .codec = &eden_ops,
};

const rb_method rb_method_drive = {
    .name = "drive",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2105.08339",
    .summary = "DRIVE: 1-bit sign of the rotated vector + one fp32 scale (biased or unbiased)",
    .version = 1,
    .params = drive_params,
    .nparams = sizeof drive_params / sizeof drive_params[0],
    .codec = &drive_ops,
};
