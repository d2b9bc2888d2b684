/* rtn: the round-to-nearest baseline codec. Per vector (or per group of a vector) asymmetric
 * min-max integer quantization, optionally after a rotation; scale and zero point stored as fp32.
 */
#include <stdlib.h>
#include <string.h>

#include "methods/method.h"

static const rb_param_def rtn_params[] = {
    RB_PARAM_INT("bits", "4", 1, 8, "bits per coordinate of the payload"),
    RB_PARAM_ENUM("rotation", "none", RB_ROTATION_CHOICES, "rotation applied before quantizing"),
    RB_PARAM_INT("group", "0", 0, 1 << 24, "coordinates per (scale, zero) pair; 0 = the vector"),
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
} rtn;

static void rtn_destroy(void *state) {
    rtn *c = state;
    if (!c) return;
    rb_rotation_free(&c->rot);
    free(c->work);
    free(c->scales);
    free(c->zeros);
    free(c->codes);
    free(c);
}

static int rtn_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    if (dim == 0) return rb_error_set(RB_ESIZE, "rtn: vectors of dimension 0");
    rtn *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "rtn: no memory");
    c->dim = dim;
    size_t g = (size_t) rb_params_int(p, "group");
    c->group = g == 0 || g > dim ? dim : g;
    c->ngroups = (dim + c->group - 1) / c->group;
    c->spec = (rb_quant_spec){.bits = (int) rb_params_int(p, "bits"),
                              .asym = !rb_params_bool(p, "sym"),
                              .gran = RB_QUANT_PER_GROUP,
                              .group = c->group,
                              .clip = (float) rb_params_float(p, "clip")};
    c->payload_bytes = rb_pack_bytes(dim, c->spec.bits);
    rb_rotation_kind kind;
    int rc = rb_quant_spec_check(&c->spec);
    if (!rc) rc = rb_rotation_kind_parse(rb_params_str(p, "rotation"), &kind);
    if (!rc) rc = rb_rotation_init(&c->rot, kind, dim, seed);
    if (rc) {
        rtn_destroy(c);
        return rc;
    }
    *state = c;
    return RB_OK;
}

static size_t rtn_code_bytes(const void *state) {
    const rtn *c = state;
    return c->payload_bytes + c->ngroups * 2 * sizeof(float);
}

static double rtn_bits(const void *state) {
    const rtn *c = state;
    return (double) c->spec.bits + 64.0 * (double) c->ngroups / (double) c->dim;
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

static int rtn_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    rtn *c = state;
    int rc = reserve(c, count);
    if (rc) return rc;
    memcpy(c->work, x, count * c->dim * sizeof *x);
    if ((rc = rb_rotation_apply(&c->rot, c->work, count, c->dim, RB_FORWARD))) return rc;
    rc = rb_quant_f32(&c->spec, c->work, count, c->dim, c->dim, c->codes, c->scales, c->zeros);
    if (rc) return rc;
    size_t cb = rtn_code_bytes(c);
    for (size_t i = 0; i < count; i++) {
        uint8_t *out = codes + i * cb;
        rb_pack_bits(c->codes + i * c->dim, c->dim, c->spec.bits, out);
        /* Side information after the payload; memcpy because it need not be aligned. */
        uint8_t *side = out + c->payload_bytes;
        for (size_t g = 0; g < c->ngroups; g++) {
            float sz[2] = {c->scales[i * c->ngroups + g],
                           c->spec.asym ? c->zeros[i * c->ngroups + g] : 0.0f};
            memcpy(side + g * sizeof sz, sz, sizeof sz);
        }
    }
    return RB_OK;
}

static int rtn_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    rtn *c = state;
    int rc = reserve(c, count);
    if (rc) return rc;
    size_t cb = rtn_code_bytes(c);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *in = codes + i * cb;
        rb_unpack_bits(in, c->dim, c->spec.bits, c->codes + i * c->dim);
        if (!c->spec.asym) rb_sign_extend(c->codes + i * c->dim, c->dim, c->spec.bits);
        const uint8_t *side = in + c->payload_bytes;
        for (size_t g = 0; g < c->ngroups; g++) {
            float sz[2];
            memcpy(sz, side + g * sizeof sz, sizeof sz);
            c->scales[i * c->ngroups + g] = sz[0];
            c->zeros[i * c->ngroups + g] = sz[1];
        }
    }
    rc = rb_dequant_f32(&c->spec, c->codes, count, c->dim, c->scales, c->zeros, xhat, c->dim);
    if (rc) return rc;
    return rb_rotation_apply(&c->rot, xhat, count, c->dim, RB_INVERSE);
}

static const rb_codec_ops rtn_ops = {
    .create = rtn_create,
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
    .version = 1,
    .params = rtn_params,
    .nparams = sizeof rtn_params / sizeof rtn_params[0],
    .codec = &rtn_ops,
};
