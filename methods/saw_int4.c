/* saw_int4: SAW-INT4 KV cache (arXiv 2604.19157, kv_cache.md section 2): post-RoPE keys (and
 * optionally values) go through a 1/sqrt(m)-scaled natural-order block FWHT of block m, a bf16
 * round trip, per token per head asymmetric INT4 over the whole head_dim (scale = max(mx - mn,
 * 1e-8) / 15, z = -mn / scale unrounded, q = (uint8)(v / scale + z + 0.5)), packed as byte j =
 * q[j] | q[j + D/2] << 4 with (scale, z) as two fp32, by the fused kernel
 * rb_kv_int4_encode_f32. read() dequantizes (q - z) scale and applies the block Hadamard again,
 * so keys come back in the data's basis: the same scores as rotating the query the paper's way,
 * since the block Hadamard is orthogonal. rotation: none is the naive per-token INT4 baseline
 * (the same kernel with m = 1). scale_bits: 16 stores the pair as fp16 values (RB_KV_SZ_F16: the
 * kernel rounds scale and z to fp16 and chooses the codes against the rounded pair), so the
 * 4.25 bits charged are what the decode sees; they sit in the same fp32 slots, the layout the
 * kernels share, each exactly an fp16 value. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/kv_touch.h"
#include "methods/method.h"

static const rb_param_def saw_params[] = {
    RB_PARAM_ENUM("rotation", "bdr", "bdr|none",
                  "bdr: block-diagonal Hadamard of block `block`; none: naive per-token INT4"),
    RB_PARAM_INT("block", "128", 2, 4096,
                 "Hadamard block m (HADAMARD_ORDER): a power of two dividing head_dim; the paper "
                 "runs 128 (= head_dim), the code's default is 16"),
    RB_PARAM_BOOL("rotate_v", "false", "rotate V as well (ROTATE_V=1); default K only"),
    RB_PARAM_BOOL("bf16", "true", "round the rotated row to bf16 and back before min/max"),
    RB_PARAM_INT_OF(
        "scale_bits", "32", "16|32",
        "stored width of each scale and zero point, 16 (fp16) or 32 (fp32): 32 is the "
        "reference kernel's fp32 pair (4 + 64/D bits); 16 rounds both to fp16 at encode "
        "(4 + 32/D: the 4.25 of OSCAR's accounting at D = 128)"),
};

typedef struct saw {
    size_t heads, dim, cap, tokens, mk, mv;
    unsigned flags;
    int scale_bits;
    uint8_t *kq, *vq; /* cap x heads x dim/2 */
    float *ksz, *vsz; /* cap x heads x 2 */
} saw;

static void saw_destroy(void *state) {
    saw *s = state;
    if (!s) return;
    free(s->kq);
    free(s->vq);
    free(s->ksz);
    free(s->vsz);
    free(s);
}

static int saw_check(const rb_params *p, const rb_kv_geom *g) {
    size_t D = g->head_dim, m = (size_t) rb_params_int(p, "block");
    int rotate = strcmp(rb_params_str(p, "rotation"), "bdr") == 0;
    if (D < 2 || D % 2 || D > RB_KV_INT4_DMAX)
        return rb_error_set(RB_ESIZE, "saw_int4: head_dim = %zu must be even and at most %d", D,
                            RB_KV_INT4_DMAX);
    if (rotate && (!rb_is_pow2(m) || D % m))
        return rb_error_set(
            RB_ESIZE, "saw_int4: block = %zu must be a power of two dividing head_dim = %zu", m, D);
    return RB_OK;
}

static int saw_create(const rb_params *p, const rb_kv_geom *g, uint64_t seed, void **state) {
    (void) seed; /* deterministic Sylvester Hadamard: nothing random */
    int rc = saw_check(p, g);
    if (rc) return rc;
    size_t D = g->head_dim, m = (size_t) rb_params_int(p, "block");
    int rotate = strcmp(rb_params_str(p, "rotation"), "bdr") == 0;
    int sb = rb_params_is(p, "scale_bits", "16") ? 16 : 32; /* the table allows no other */
    saw *s = calloc(1, sizeof *s);
    if (!s) return rb_error_set(RB_ENOMEM, "saw_int4: no memory");
    s->heads = g->heads;
    s->dim = D;
    s->cap = g->capacity;
    s->mk = rotate ? m : 1;
    s->mv = rotate && rb_params_bool(p, "rotate_v") ? m : 1;
    s->flags = (rb_params_bool(p, "bf16") ? RB_KV_BF16 : 0) | (sb == 16 ? RB_KV_SZ_F16 : 0);
    s->scale_bits = sb;
    size_t rows = s->cap * s->heads;
    s->kq = malloc(rows * D / 2 + 1);
    s->vq = malloc(rows * D / 2 + 1);
    s->ksz = malloc(rows * 2 * sizeof(float) + 1);
    s->vsz = malloc(rows * 2 * sizeof(float) + 1);
    if (!s->kq || !s->vq || !s->ksz || !s->vsz) {
        saw_destroy(s);
        return rb_error_set(RB_ENOMEM, "saw_int4: no memory for %zu tokens", g->capacity);
    }
    /* First touch now, not in append (on a VM the faults were ~400 ms of the 0.48 s latency-pass
     * encode of 32K x 8 x 128, ten times the kernel). */
    rb_kv_touch(s->kq, rows * D / 2);
    rb_kv_touch(s->vq, rows * D / 2);
    rb_kv_touch(s->ksz, rows * 2 * sizeof(float));
    rb_kv_touch(s->vsz, rows * 2 * sizeof(float));
    *state = s;
    return RB_OK;
}

/* A (scale, zero point) pair that is not finite: at scale_bits 16 one beyond fp16 (65504), a
 * row whose values lie far from 0 against their range; at either width a row whose block
 * Hadamard or range (max - min) overflowed fp32, values near FLT_MAX (the KV loaders stop those
 * at RB_KV_ABS_MAX; this covers callers with data of their own), or at 32 a constant row beyond
 * about 2e29 (its range is floored at 1e-8, so z = -min / scale overflows). Say which. */
static int check_sz(const saw *s, const float *x, const float *sz, size_t r0, size_t rows, size_t m,
                    const char *what) {
    for (size_t r = 0; r < rows; r++) {
        if (isfinite(sz[2 * r]) && isfinite(sz[2 * r + 1])) continue;
        size_t tok = (r0 + r) / s->heads, head = (r0 + r) % s->heads;
        double big = 0;
        for (size_t j = 0; j < s->dim; j++) big = fmax(big, fabs((double) x[r * s->dim + j]));
        /* max - min <= 2 sqrt(m) max|x|: below FLT_MAX / (4 sqrt(m)) nothing overflowed */
        if (big > FLT_MAX / (4.0 * sqrt((double) m)))
            return rb_error_set(RB_ENUMERIC,
                                "saw_int4: token %zu, head %zu, %s: the rotated row or its range "
                                "overflows fp32 (|x| up to %g)",
                                tok, head, what, big);
        if (s->scale_bits == 32) /* a near-constant row far from 0: z = -min / scale */
            return rb_error_set(RB_ENUMERIC,
                                "saw_int4: token %zu, head %zu, %s: the zero point overflows fp32 "
                                "(values up to %g against a range of almost 0)",
                                tok, head, what, big);
        return rb_error_set(RB_ENUMERIC,
                            "saw_int4: token %zu, head %zu, %s: the %s is beyond the fp16 it is "
                            "stored in (65504); use scale_bits: 32",
                            tok, head, what,
                            isfinite(sz[2 * r]) ? "zero point (code units)" : "scale");
    }
    return RB_OK;
}

static int saw_append(void *state, const float *K, const float *V, size_t tokens) {
    saw *s = state;
    if (tokens > s->cap - s->tokens)
        return rb_error_set(RB_ESIZE, "saw_int4: %zu more tokens exceed the capacity %zu", tokens,
                            s->cap);
    size_t r0 = s->tokens * s->heads, rows = tokens * s->heads, half = s->dim / 2;
    int rc = rb_kv_int4_encode_f32(K, rows, s->dim, s->dim, s->mk, s->flags, s->kq + r0 * half,
                                   s->ksz + 2 * r0);
    if (!rc) rc = check_sz(s, K, s->ksz + 2 * r0, r0, rows, s->mk, "key");
    /* V is plain INT4 from the same kernel unless rotate_v; the bf16 round trip is the cache
     * dtype's, so it applies to V too. */
    if (!rc)
        rc = rb_kv_int4_encode_f32(V, rows, s->dim, s->dim, s->mv, s->flags, s->vq + r0 * half,
                                   s->vsz + 2 * r0);
    if (!rc) rc = check_sz(s, V, s->vsz + 2 * r0, r0, rows, s->mv, "value");
    if (!rc) s->tokens += tokens;
    return rc;
}

static int saw_read(void *state, float *K, float *V) {
    saw *s = state;
    size_t rows = s->tokens * s->heads;
    int rc = rb_kv_int4_decode_f32(s->kq, s->ksz, rows, s->dim, s->mk, K, s->dim);
    if (!rc) rc = rb_kv_int4_decode_f32(s->vq, s->vsz, rows, s->dim, s->mv, V, s->dim);
    return rc;
}

static size_t saw_tokens(const void *state) {
    return ((const saw *) state)->tokens;
}

/* 4-bit codes plus one (scale, zero) pair per token per head, K and V alike, at the width the
 * pair is stored in. */
static double saw_bits(const void *state) {
    const saw *s = state;
    return 4.0 + 2.0 * s->scale_bits / (double) s->dim;
}

static const rb_kv_ops saw_ops = {
    .create = saw_create,
    .check = saw_check,
    .append = saw_append,
    .read = saw_read,
    .tokens = saw_tokens,
    .bits = saw_bits,
    .destroy = saw_destroy,
};

const rb_method rb_method_saw_int4 = {
    .name = "saw_int4",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2604.19157",
    .summary = "SAW-INT4 KV cache: block Hadamard (BDR) + per-token INT4, half-split packing",
    .version = 3, /* 2: scale_bits 16 really stores fp16; 3: and floors its scale at 2^-24 */
    .params = saw_params,
    .nparams = sizeof saw_params / sizeof saw_params[0],
    .kv = &saw_ops,
};
