/* rtn: the round-to-nearest baseline codec. Per vector (or per group of a vector) asymmetric
 * min-max integer quantization, optionally after a rotation; scale and zero point stored as fp32
 * (symmetric: the scale alone, its zero point being 0).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/codec_blocks.h"
#include "methods/method.h"

static const rb_param_def rtn_params[] = {
    RB_PARAM_INT("bits", "4", 1, 8, "bits per coordinate of the payload"),
    RB_PARAM_ENUM("rotation", "none", RB_ROTATION_CHOICES, "rotation applied before quantizing"),
    RB_PARAM_INT("group", "0", 0, 1 << 24,
                 "coordinates per scale (and zero point); 0 = the vector"),
    RB_PARAM_FLOAT("clip", "1", 0.05, 1, "range multiplier (clip ratio)"),
    RB_PARAM_BOOL("sym", "false", "symmetric (zero point 0) instead of asymmetric"),
};

typedef struct rtn {
    size_t dim, group, ngroups, payload_bytes;
    rb_quant_spec spec;
    rb_rotation rot;
    float *work, *scales, *zeros; /* grown to the largest batch seen */
    uint8_t *codes;
    size_t cap;
    /* Blocked path (every rotation but the dense ones): per-slot scratch of block_rows rows. */
    int blocked;
    size_t block_rows;
    float *bw, *bs, *bz;
    uint8_t *bq;
} rtn;

static void rtn_destroy(void *state) {
    rtn *c = state;
    if (!c) return;
    rb_rotation_free(&c->rot);
    free(c->work);
    free(c->scales);
    free(c->zeros);
    free(c->codes);
    free(c->bw);
    free(c->bs);
    free(c->bz);
    free(c->bq);
    free(c);
}

/* The quantizer's spec for vectors of length dim (a group of 0 or beyond dim is the whole row). */
static rb_quant_spec rtn_spec(const rb_params *p, size_t dim) {
    size_t g = (size_t) rb_params_int(p, "group");
    return (rb_quant_spec){.bits = (int) rb_params_int(p, "bits"),
                           .asym = !rb_params_bool(p, "sym"),
                           .gran = RB_QUANT_PER_GROUP,
                           .group = g == 0 || g > dim ? dim : g,
                           .clip = (float) rb_params_float(p, "clip")};
}

static int rtn_check(const rb_params *p, size_t dim) {
    if (dim == 0) return rb_error_set(RB_ESIZE, "rtn: vectors of dimension 0");
    rb_quant_spec spec = rtn_spec(p, dim);
    int rc = rb_quant_spec_check(&spec);
    return rc ? rc : rb_rotation_check_name(rb_params_str(p, "rotation"), dim);
}

static int rtn_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    int checked = rtn_check(p, dim);
    if (checked) return checked;
    rtn *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "rtn: no memory");
    c->dim = dim;
    c->spec = rtn_spec(p, dim);
    c->group = c->spec.group;
    c->ngroups = (dim + c->group - 1) / c->group;
    c->payload_bytes = rb_pack_bytes(dim, c->spec.bits);
    rb_rotation_kind kind = RB_ROT_NONE;
    int rc = rb_rotation_kind_parse(rb_params_str(p, "rotation"), &kind);
    if (!rc) rc = rb_rotation_init(&c->rot, kind, dim, seed);
    /* Dense rotations keep the whole-batch GEMM; the rest runs in cache-sized blocks over the pool
     * (the same bits: every stage is per row, through the same dispatched ops). */
    if (!rc && !rb_rotation_is_dense(kind)) {
        c->blocked = 1;
        c->block_rows = rb_codec_block_rows(dim);
        size_t rows = c->block_rows * RB_CODEC_SLOTS;
        c->bw = malloc(rows * dim * sizeof *c->bw);
        c->bs = malloc(rows * c->ngroups * sizeof *c->bs);
        c->bz = malloc(rows * c->ngroups * sizeof *c->bz);
        c->bq = malloc(rows * dim);
        if (!c->bw || !c->bs || !c->bz || !c->bq) rc = rb_error_set(RB_ENOMEM, "rtn: no memory");
    }
    if (rc) {
        rtn_destroy(c);
        return rc;
    }
    *state = c;
    return RB_OK;
}

/* fp32 side values per group: scale and zero point, or the scale alone when symmetric. */
static size_t side_floats(const rtn *c) {
    return c->spec.asym ? 2 : 1;
}

static size_t rtn_code_bytes(const void *state) {
    const rtn *c = state;
    return c->payload_bytes + c->ngroups * side_floats(c) * sizeof(float);
}

static double rtn_bits(const void *state) {
    const rtn *c = state;
    return (double) c->spec.bits +
           32.0 * (double) side_floats(c) * (double) c->ngroups / (double) c->dim;
}

static int reserve(rtn *c, size_t count) {
    if (count <= c->cap) return RB_OK;
    float *w = realloc(c->work, count * c->dim * sizeof *w);
    if (w) c->work = w;
    float *s = realloc(c->scales, count * c->ngroups * sizeof *s);
    if (s) c->scales = s;
    float *z = realloc(c->zeros, count * c->ngroups * sizeof *z);
    if (z) c->zeros = z;
    uint8_t *q = realloc(c->codes, count * c->dim);
    if (q) c->codes = q;
    if (!w || !s || !z || !q)
        return rb_error_set(RB_ENOMEM, "rtn: no memory for %zu vectors", count);
    c->cap = count;
    return RB_OK;
}

typedef struct rtn_job {
    rtn *c;
    const float *x;
    uint8_t *codes;
    const uint8_t *in;
    float *xhat;
} rtn_job;

/* The side information of `rows` codes after their payloads: per group its scale, then its
 * zero point when asymmetric. */
static void side_put(const rtn *c, const float *scales, const float *zeros, size_t rows,
                     uint8_t *codes, size_t cb) {
    size_t n = side_floats(c);
    for (size_t i = 0; i < rows; i++)
        for (size_t g = 0; g < c->ngroups; g++) {
            float sz[2] = {scales[i * c->ngroups + g], n == 2 ? zeros[i * c->ngroups + g] : 0.0f};
            memcpy(codes + i * cb + c->payload_bytes + g * n * sizeof(float), sz,
                   n * sizeof(float));
        }
}

/* The inverse of side_put: scales and zero points (0 when symmetric) of `rows` codes. */
static void side_get(const rtn *c, const uint8_t *codes, size_t cb, size_t rows, float *scales,
                     float *zeros) {
    size_t n = side_floats(c);
    for (size_t i = 0; i < rows; i++)
        for (size_t g = 0; g < c->ngroups; g++) {
            float sz[2] = {0.0f, 0.0f};
            memcpy(sz, codes + i * cb + c->payload_bytes + g * n * sizeof(float),
                   n * sizeof(float));
            scales[i * c->ngroups + g] = sz[0];
            zeros[i * c->ngroups + g] = sz[1];
        }
}

/* The rotated rows w must be finite for the quantizer; where one is not, the error names the
 * input vector (x: the rows before the rotation) rather than a rotated element. */
static int rotated_finite(const float *w, size_t rows, size_t d, const float *x, size_t r0) {
    for (size_t i = 0; i < rows; i++)
        for (size_t t = 0; t < d; t++)
            if (!isfinite(w[i * d + t]))
                return rb_rotation_overflow_error("rtn", x + i * d, d, r0 + i);
    return RB_OK;
}

/* Encode of rows [r0, r0 + rows): the operations of the whole-batch path below, row for row. */
static int rtn_encode_block(void *ctx, size_t slot, size_t r0, size_t rows) {
    rtn_job *j = ctx;
    rtn *c = j->c;
    size_t d = c->dim, B = c->block_rows, cb = rtn_code_bytes(c);
    float *w = c->bw + slot * B * d, *sc = c->bs + slot * B * c->ngroups;
    float *ze = c->bz + slot * B * c->ngroups;
    uint8_t *q = c->bq + slot * B * d, *out = j->codes + r0 * cb;
    const float *src = j->x + r0 * d;
    int rc = RB_OK;
    if (c->rot.kind != RB_ROT_NONE) {
        memcpy(w, src, rows * d * sizeof *w);
        rc = rb_rotation_apply(&c->rot, w, rows, d, RB_FORWARD);
        if (!rc) rc = rotated_finite(w, rows, d, j->x + r0 * d, r0);
        src = w;
    }
    if (!rc) rc = rb_quant_f32(&c->spec, src, rows, d, d, q, sc, ze);
    if (!rc) rc = rb_pack_rows(q, rows, d, c->spec.bits, out, cb);
    if (!rc) side_put(c, sc, ze, rows, out, cb);
    return rc;
}

static int rtn_decode_block(void *ctx, size_t slot, size_t r0, size_t rows) {
    rtn_job *j = ctx;
    rtn *c = j->c;
    size_t d = c->dim, B = c->block_rows, cb = rtn_code_bytes(c);
    float *sc = c->bs + slot * B * c->ngroups, *ze = c->bz + slot * B * c->ngroups;
    uint8_t *q = c->bq + slot * B * d;
    const uint8_t *in = j->in + r0 * cb;
    float *y = j->xhat + r0 * d;
    int rc = rb_unpack_rows(in, cb, rows, d, c->spec.bits, q);
    if (rc) return rc;
    if (!c->spec.asym) rb_sign_extend(q, rows * d, c->spec.bits);
    side_get(c, in, cb, rows, sc, ze);
    rb_dequant_rows_f32(q, rows, d, c->group, c->spec.asym, sc, ze, y, d);
    return rb_rotation_apply(&c->rot, y, rows, d, RB_INVERSE);
}

static int rtn_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    rtn *c = state;
    if (c->blocked) {
        rtn_job j = {c, x, codes, NULL, NULL};
        return rb_codec_blocks(count, c->block_rows, rtn_encode_block, &j);
    }
    int rc = reserve(c, count);
    if (rc) return rc;
    memcpy(c->work, x, count * c->dim * sizeof *x);
    if ((rc = rb_rotation_apply(&c->rot, c->work, count, c->dim, RB_FORWARD))) return rc;
    if (c->rot.kind != RB_ROT_NONE && (rc = rotated_finite(c->work, count, c->dim, x, 0)))
        return rc;
    rc = rb_quant_f32(&c->spec, c->work, count, c->dim, c->dim, c->codes, c->scales, c->zeros);
    size_t cb = rtn_code_bytes(c);
    if (!rc) rc = rb_pack_rows(c->codes, count, c->dim, c->spec.bits, codes, cb);
    if (!rc) side_put(c, c->scales, c->zeros, count, codes, cb);
    return rc;
}

static int rtn_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    rtn *c = state;
    if (c->blocked) {
        rtn_job j = {c, NULL, NULL, codes, xhat};
        return rb_codec_blocks(count, c->block_rows, rtn_decode_block, &j);
    }
    int rc = reserve(c, count);
    if (rc) return rc;
    size_t cb = rtn_code_bytes(c);
    if ((rc = rb_unpack_rows(codes, cb, count, c->dim, c->spec.bits, c->codes))) return rc;
    if (!c->spec.asym) rb_sign_extend(c->codes, count * c->dim, c->spec.bits);
    side_get(c, codes, cb, count, c->scales, c->zeros);
    rb_dequant_rows_f32(c->codes, count, c->dim, c->group, c->spec.asym, c->scales, c->zeros, xhat,
                        c->dim);
    return rb_rotation_apply(&c->rot, xhat, count, c->dim, RB_INVERSE);
}

static const rb_codec_ops rtn_ops = {
    .create = rtn_create,
    .check = rtn_check,
    .code_bytes = rtn_code_bytes,
    .bits = rtn_bits,
    .encode = rtn_encode,
    .decode = rtn_decode,
    .destroy = rtn_destroy,
};

const rb_method rb_method_rtn = {
    .name = "rtn",
    .family = RB_FAMILY_CODEC,
    .paper = "baseline",
    .summary = "round-to-nearest integer quantization per vector or group, optional rotation",
    .version = 2, /* 2: symmetric codes store the scale alone (no zero point) */
    .params = rtn_params,
    .nparams = sizeof rtn_params / sizeof rtn_params[0],
    .codec = &rtn_ops,
};
