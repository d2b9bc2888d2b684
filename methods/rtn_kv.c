/* rtn_kv: the plain KV baseline: per token, per head, groups of g channels along head_dim,
 * asymmetric min-max INT-b with round to nearest even (rb_quant_f32), no rotation, no window;
 * scale and zero point stored at scale_bits. At 16 bits the quantizer stores both in fp16 and
 * chooses the codes against the stored pair (rb_quant_spec.side_f16), as a cache that keeps them
 * in fp16 dequantizes; a scale or zero point beyond fp16's range is an RB_ENUMERIC error naming
 * the token, head and group. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods/kv_touch.h"
#include "methods/method.h"

static const rb_param_def rtn_kv_params[] = {
    RB_PARAM_INT("bits", "4", 1, 8, "bits per element of the codes"),
    RB_PARAM_INT("group", "0", 0, 1 << 16, "channels per (scale, zero) pair; 0 = head_dim"),
    RB_PARAM_FLOAT("clip", "1", 0.05, 1, "range multiplier (clip ratio)"),
    RB_PARAM_INT_OF("scale_bits", "16", "16|32",
                    "stored width of each scale and zero point: 16 (fp16) or 32 (fp32), no other"),
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
    int sb = rb_params_is(p, "scale_bits", "16") ? 16 : 32; /* the table allows no other */
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
                              .clip = (float) rb_params_float(p, "clip"),
                              .side_f16 = sb == 16};
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

/* A failed quantization named in the cache's terms. The quantizer names rows and groups of its
 * own call; this finds the first group (token-major, as the quantizer scans) holding a NaN or
 * Inf, or whose pair rb_quant_params refuses by the same rule, and names its token, head and
 * key or value. A pair that fp32 would hold was refused for fp16: scale_bits 32 stores it. */
static int place_error(const rtn_kv *c, int rc, const char *what, const float *x, size_t rows) {
    size_t D = c->dim, G = c->group;
    for (size_t r = 0; r < rows; r++)
        for (size_t g0 = 0; g0 < D; g0 += G) {
            const float *v = x + r * D + g0;
            size_t n = D - g0 < G ? D - g0 : G;
            float mn = INFINITY, mx = -INFINITY, s, z;
            for (size_t j = 0; j < n; j++) {
                if (!isfinite(v[j]))
                    return rb_error_set(
                        RB_ENUMERIC, "rtn_kv: token %zu, head %zu, %s channel %zu is %g",
                        c->tokens + r / c->heads, r % c->heads, what, g0 + j, (double) v[j]);
                mn = v[j] < mn ? v[j] : mn;
                mx = v[j] > mx ? v[j] : mx;
            }
            if (rb_quant_params(&c->spec, mn, mx, &s, &z) == RB_OK) continue;
            char why[256];
            const char *d = rb_error_detail();
            snprintf(why, sizeof why, "%s", strncmp(d, "quant: ", 7) ? d : d + 7);
            rb_quant_spec wide = c->spec;
            wide.side_f16 = 0;
            int fp32_holds = rb_quant_params(&wide, mn, mx, &s, &z) == RB_OK;
            return rb_error_set(RB_ENUMERIC, "rtn_kv: token %zu, head %zu, %s group %zu: %s%s",
                                c->tokens + r / c->heads, r % c->heads, what, g0 / G, why,
                                fp32_holds ? "; use scale_bits: 32" : "");
        }
    return rc; /* not a group's fault: the quantizer's own message stands */
}

static int quant_rows(rtn_kv *c, const char *what, const float *x, size_t rows, uint8_t *codes,
                      float *s, float *z) {
    int rc = rb_quant_f32(&c->spec, x, rows, c->dim, c->dim, codes, s, z);
    return rc == RB_ENUMERIC ? place_error(c, rc, what, x, rows) : rc;
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
