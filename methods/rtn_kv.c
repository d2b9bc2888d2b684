/* rtn_kv: the plain KV baseline: per token, per head, groups of g channels along head_dim,
 * asymmetric min-max INT-b with round to nearest even (rb_quant_f32), no rotation, no window;
 * scale and zero point stored at scale_bits. At 16 bits both are rounded to fp16 and the codes are
 * then chosen against the stored pair, code = clamp(rint(x / s16) + z16, 0, 2^b - 1), as a cache
 * that stores them in fp16 dequantizes s16 * (code - z16): the zero point is an integer in code
 * units that fp16 holds exactly only up to 2048, so for a row far from zero (|min| / scale large)
 * its rounding would otherwise shift every element by up to half an fp16 ulp of codes. A scale or
 * zero point beyond fp16's range is an RB_ENUMERIC error naming the token, head and group. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "methods/kv_touch.h"
#include "methods/method.h"

static const rb_param_def rtn_kv_params[] = {
    RB_PARAM_INT("bits", "4", 1, 8, "bits per element of the codes"),
    RB_PARAM_INT("group", "0", 0, 1 << 16, "channels per (scale, zero) pair; 0 = head_dim"),
    RB_PARAM_FLOAT("clip", "1", 0.05, 1, "range multiplier (clip ratio)"),
    RB_PARAM_INT("scale_bits", "16", 16, 32, "stored width of each scale and zero point: 16|32"),
};

typedef struct rtn_kv {
    size_t heads, dim, cap, tokens, group, ngroups;
    int scale_bits;
    rb_quant_spec spec;
    uint8_t *kc, *vc;         /* cap x heads x dim codes, one per byte (bits counted exactly) */
    float *ks, *kz, *vs, *vz; /* cap x heads x ngroups */
} rtn_kv;

static void rtn_kv_destroy(void *state) {
    rtn_kv *c = state;
    if (!c) return;
    free(c->kc);
    free(c->vc);
    free(c->ks);
    free(c->kz);
    free(c->vs);
    free(c->vz);
    free(c);
}

static int rtn_kv_create(const rb_params *p, const rb_kv_geom *g, uint64_t seed, void **state) {
    (void) seed;
    int sb = (int) rb_params_int(p, "scale_bits");
    if (sb != 16 && sb != 32)
        return rb_error_set(RB_EINVAL, "rtn_kv: scale_bits = %d; 16 or 32", sb);
    if (g->head_dim == 0 || g->heads == 0)
        return rb_error_set(RB_ESIZE, "rtn_kv: empty head geometry");
    rtn_kv *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "rtn_kv: no memory");
    c->heads = g->heads;
    c->dim = g->head_dim;
    c->cap = g->capacity;
    size_t gr = (size_t) rb_params_int(p, "group");
    c->group = gr == 0 || gr > c->dim ? c->dim : gr;
    c->ngroups = (c->dim + c->group - 1) / c->group;
    c->scale_bits = sb;
    c->spec = (rb_quant_spec){.bits = (int) rb_params_int(p, "bits"),
                              .asym = 1,
                              .gran = RB_QUANT_PER_GROUP,
                              .group = c->group,
                              .clip = (float) rb_params_float(p, "clip")};
    size_t rows = c->cap * c->heads, np = rows * c->ngroups * sizeof(float) + 1;
    c->kc = malloc(rows * c->dim + 1);
    c->vc = malloc(rows * c->dim + 1);
    c->ks = malloc(np);
    c->kz = malloc(np);
    c->vs = malloc(np);
    c->vz = malloc(np);
    int rc = rb_quant_spec_check(&c->spec);
    if (!rc && (!c->kc || !c->vc || !c->ks || !c->kz || !c->vs || !c->vz))
        rc = rb_error_set(RB_ENOMEM, "rtn_kv: no memory for %zu tokens", c->cap);
    if (rc) {
        rtn_kv_destroy(c);
        return rc;
    }
    rb_kv_touch(c->kc, rows * c->dim);
    rb_kv_touch(c->vc, rows * c->dim);
    rb_kv_touch(c->ks, np);
    rb_kv_touch(c->kz, np);
    rb_kv_touch(c->vs, np);
    rb_kv_touch(c->vz, np);
    *state = c;
    return RB_OK;
}

static int quant_rows(rtn_kv *c, const char *what, const float *x, size_t rows, uint8_t *codes,
                      float *s, float *z) {
    int rc = rb_quant_f32(&c->spec, x, rows, c->dim, c->dim, codes, s, z);
    if (rc || c->scale_bits != 16) return rc;
    const float maxq = (float) ((1u << c->spec.bits) - 1);
    for (size_t r = 0; r < rows; r++)
        for (size_t gi = 0; gi < c->ngroups; gi++) {
            size_t p = r * c->ngroups + gi, c0 = gi * c->group;
            size_t c1 = c0 + c->group < c->dim ? c0 + c->group : c->dim;
            if (fabsf(s[p]) > RB_F16_MAX || fabsf(z[p]) > RB_F16_MAX)
                return rb_error_set(
                    RB_ENUMERIC,
                    "rtn_kv: token %zu, head %zu, %s group %zu: %s %g is beyond the "
                    "fp16 it is stored in (65504); use scale_bits: 32",
                    c->tokens + r / c->heads, r % c->heads, what, gi,
                    fabsf(s[p]) > RB_F16_MAX ? "scale" : "zero point (code units)",
                    (double) (fabsf(s[p]) > RB_F16_MAX ? s[p] : z[p]));
            s[p] = rb_f16_round(s[p]); /* within fp16's range: checked above */
            z[p] = rb_f16_round(z[p]);
            for (size_t j = c0; j < c1; j++) {
                /* s16 == 0 (a scale below fp16's subnormals): every element decodes to 0. */
                float q = s[p] > 0 ? rintf(x[r * c->dim + j] / s[p]) + z[p] : 0.0f;
                q = q < 0 ? 0 : q > maxq ? maxq : q;
                codes[r * c->dim + j] = (uint8_t) q;
            }
        }
    return RB_OK;
}

static int rtn_kv_append(void *state, const float *K, const float *V, size_t tokens) {
    rtn_kv *c = state;
    if (tokens > c->cap - c->tokens)
        return rb_error_set(RB_ESIZE, "rtn_kv: %zu more tokens exceed the capacity %zu", tokens,
                            c->cap);
    size_t r0 = c->tokens * c->heads, rows = tokens * c->heads, p0 = r0 * c->ngroups;
    int rc = quant_rows(c, "key", K, rows, c->kc + r0 * c->dim, c->ks + p0, c->kz + p0);
    if (!rc) rc = quant_rows(c, "value", V, rows, c->vc + r0 * c->dim, c->vs + p0, c->vz + p0);
    if (!rc) c->tokens += tokens;
    return rc;
}

static int rtn_kv_read(void *state, float *K, float *V) {
    rtn_kv *c = state;
    size_t rows = c->tokens * c->heads;
    int rc = rb_dequant_f32(&c->spec, c->kc, rows, c->dim, c->ks, c->kz, K, c->dim);
    if (!rc) rc = rb_dequant_f32(&c->spec, c->vc, rows, c->dim, c->vs, c->vz, V, c->dim);
    return rc;
}

static size_t rtn_kv_tokens(const void *state) {
    return ((const rtn_kv *) state)->tokens;
}

static double rtn_kv_bits(const void *state) {
    const rtn_kv *c = state;
    return (double) c->spec.bits + 2.0 * c->scale_bits * (double) c->ngroups / (double) c->dim;
}

static const rb_kv_ops rtn_kv_ops = {
    .create = rtn_kv_create,
    .append = rtn_kv_append,
    .read = rtn_kv_read,
    .tokens = rtn_kv_tokens,
    .bits = rtn_kv_bits,
    .destroy = rtn_kv_destroy,
};

const rb_method rb_method_rtn_kv = {
    .name = "rtn_kv",
    .family = RB_FAMILY_CODEC,
    .paper = "baseline",
    .summary = "KV baseline: per-token asymmetric INT-b in groups along head_dim, no rotation",
    .version = 1,
    .params = rtn_kv_params,
    .nparams = sizeof rtn_kv_params / sizeof rtn_kv_params[0],
    .kv = &rtn_kv_ops,
};
