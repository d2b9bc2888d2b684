/* kivi (arXiv:2402.02750, reference code quant/new_pack.py, models/llama_kivi.py; kv_cache.md
 * section 1): keys quantized per channel over groups of G tokens, only in whole blocks of R
 * tokens (a key residual buffer of < R fp16 tokens), values per token in groups of G channels
 * behind a sliding fp16 window of the newest R tokens. Everything lives in fp16, the cache dtype:
 * inputs are rounded to fp16, min, max and scale are fp16 values and every arithmetic step rounds
 * to fp16 as torch does on half tensors:
 *   scale = ((mx - mn) / maxq),  q = round_half_even(clamp((x - mn) / scale, 0, maxq)),
 *   x_hat = q * scale + mn        (maxq = 2^b - 1, each operation rounded to fp16)
 * A group whose scale is 0 (constant, or a range below fp16's resolution) is defined here as
 * q = 0, x_hat = mn (the reference code divides by zero). Codes are packed floor(32 / b) per
 * int32, least-significant bits first, along tokens for keys and along channels for values.
 * Values beyond fp16's range (an input, a group's max - min or its top reconstruction) would be
 * Inf in the reference's cache and Inf or NaN after dequantization; here they are an RB_ENUMERIC
 * error naming the token, head and channel (an input error appends none of the call's tokens; a
 * group error leaves the cache unusable). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "methods/kivi.h"
#include "methods/kv_touch.h"
#include "methods/method.h"

static const rb_param_def kivi_params[] = {
    RB_PARAM_INT("bits", "2", 1, 8, "bits per code (keys and values)"),
    RB_PARAM_INT("group", "32", 1, 1 << 20,
                 "G: tokens per key group (per channel), channels per value group (per token)"),
    RB_PARAM_INT("residual", "128", 1, 1 << 24,
                 "R: key residual length and value window, fp16 tokens; a multiple of G"),
};

RB_OP_SINGLE(rb_op_kivi_quant_f16, "kivi_quant_f16", "ref");
RB_OP_SINGLE(rb_op_kivi_dequant_f16, "kivi_dequant_f16", "ref");

typedef struct kivi {
    size_t H, D, HD, cap, G, R, per_int, kwords, vwords, vgroups;
    int bits;
    unsigned maxq;
    size_t n, kq, vq; /* tokens cached, keys quantized, values quantized */
    int broken;       /* an append failed mid-token: n, kq and vq no longer agree */
    /* Quantized keys by block of R tokens: codes [block][h * D + c][kwords], fp16 scale and min
     * [block][h * D + c][R / G]. */
    uint32_t *kcode;
    uint16_t *kscale, *kmin;
    uint16_t *kbuf; /* R x HD fp16: keys kq..n-1 */
    /* Quantized values by token: codes [t][h][vwords], fp16 scale and min [t][h][D / G]. */
    uint32_t *vcode;
    uint16_t *vscale, *vmin;
    uint16_t *vring; /* (R + 1) x HD fp16: values vq..n-1 at slot t % (R + 1) */
    uint8_t *q;      /* scratch codes, max(R, D) */
} kivi;

static void kivi_destroy(void *state) {
    kivi *s = state;
    if (!s) return;
    free(s->kcode);
    free(s->kscale);
    free(s->kmin);
    free(s->kbuf);
    free(s->vcode);
    free(s->vscale);
    free(s->vmin);
    free(s->vring);
    free(s->q);
    free(s);
}

static int kivi_check(const rb_params *p, const rb_kv_geom *g) {
    size_t G = (size_t) rb_params_int(p, "group"), R = (size_t) rb_params_int(p, "residual");
    if (!g->heads || !g->head_dim || !g->capacity)
        return rb_error_set(RB_ESIZE,
                            "kivi: empty cache geometry (heads %zu, head_dim %zu, "
                            "capacity %zu)",
                            g->heads, g->head_dim, g->capacity);
    if (R % G)
        return rb_error_set(RB_EINVAL,
                            "kivi: residual R = %zu is not a multiple of group G = %zu (keys are "
                            "quantized in whole groups of G tokens)",
                            R, G);
    if (g->head_dim % G)
        return rb_error_set(RB_ESIZE,
                            "kivi: head_dim = %zu is not a multiple of group G = %zu (values are "
                            "grouped along head_dim)",
                            g->head_dim, G);
    return RB_OK;
}

static int kivi_create(const rb_params *p, const rb_kv_geom *g, uint64_t seed, void **state) {
    (void) seed; /* deterministic: nothing random */
    int rc = kivi_check(p, g);
    if (rc) return rc;
    size_t G = (size_t) rb_params_int(p, "group"), R = (size_t) rb_params_int(p, "residual");
    kivi *s = calloc(1, sizeof *s);
    if (!s) return rb_error_set(RB_ENOMEM, "kivi: no memory");
    s->H = g->heads;
    s->D = g->head_dim;
    s->HD = s->H * s->D;
    s->cap = g->capacity;
    s->G = G;
    s->R = R;
    s->bits = (int) rb_params_int(p, "bits");
    s->maxq = (1u << s->bits) - 1;
    s->per_int = 32 / (size_t) s->bits;
    s->kwords = (R + s->per_int - 1) / s->per_int;
    s->vwords = (s->D + s->per_int - 1) / s->per_int;
    s->vgroups = s->D / G;
    size_t nb = s->cap / R ? s->cap / R : 1; /* key blocks */
    s->kcode = malloc(nb * s->HD * s->kwords * sizeof *s->kcode);
    s->kscale = malloc(nb * s->HD * (R / G) * sizeof *s->kscale);
    s->kmin = malloc(nb * s->HD * (R / G) * sizeof *s->kmin);
    s->kbuf = malloc(R * s->HD * sizeof *s->kbuf);
    s->vcode = malloc(s->cap * s->H * s->vwords * sizeof *s->vcode);
    s->vscale = malloc(s->cap * s->H * s->vgroups * sizeof *s->vscale);
    s->vmin = malloc(s->cap * s->H * s->vgroups * sizeof *s->vmin);
    s->vring = malloc((R + 1) * s->HD * sizeof *s->vring);
    s->q = malloc(R > s->D ? R : s->D);
    if (!s->kcode || !s->kscale || !s->kmin || !s->kbuf || !s->vcode || !s->vscale || !s->vmin ||
        !s->vring || !s->q) {
        kivi_destroy(s);
        return rb_error_set(RB_ENOMEM, "kivi: no memory for a cache of %zu tokens x %zu x %zu",
                            g->capacity, g->heads, g->head_dim);
    }
    rb_kv_touch(s->kcode, nb * s->HD * s->kwords * sizeof *s->kcode);
    rb_kv_touch(s->kscale, nb * s->HD * (R / G) * sizeof *s->kscale);
    rb_kv_touch(s->kmin, nb * s->HD * (R / G) * sizeof *s->kmin);
    rb_kv_touch(s->kbuf, R * s->HD * sizeof *s->kbuf);
    rb_kv_touch(s->vcode, s->cap * s->H * s->vwords * sizeof *s->vcode);
    rb_kv_touch(s->vscale, s->cap * s->H * s->vgroups * sizeof *s->vscale);
    rb_kv_touch(s->vmin, s->cap * s->H * s->vgroups * sizeof *s->vmin);
    rb_kv_touch(s->vring, (R + 1) * s->HD * sizeof *s->vring);
    *state = s;
    return RB_OK;
}

/* One group of n fp16 values read with stride: fp16 (scale, min) and codes, KIVI's arithmetic.
 * Returns 0, or 1 (nothing written) when max - min, or the top code's reconstruction, overflows
 * fp16; *lo_hi gets min and max. */
static int quant_group(const kivi *s, const uint16_t *x, size_t n, size_t stride, uint16_t *scale,
                       uint16_t *mn, uint8_t *q, float lo_hi[2]) {
    float lo = rb_f16_to_f32(x[0]), hi = lo;
    for (size_t i = 1; i < n; i++) {
        float v = rb_f16_to_f32(x[i * stride]);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    lo_hi[0] = lo;
    lo_hi[1] = hi;
    if (isinf(rb_f16_round(hi - lo))) return 1;
    float sc = rb_f16_round(rb_f16_round(hi - lo) / (float) s->maxq);
    /* The top code decodes to f16(f16(maxq * scale) + min), which can round past 65504 even
     * when max - min fits (e.g. 0 .. 65504 at 2 bits). */
    if (isinf(rb_f16_round(rb_f16_round((float) s->maxq * sc) + lo))) return 1;
    *scale = rb_f32_to_f16(sc);
    *mn = rb_f32_to_f16(lo);
    for (size_t i = 0; i < n; i++) {
        if (sc == 0) {
            q[i] = 0;
            continue;
        }
        float t = rb_f16_round(rb_f16_round(rb_f16_to_f32(x[i * stride]) - lo) / sc);
        t = t < 0 ? 0 : t > (float) s->maxq ? (float) s->maxq : t;
        q[i] = (uint8_t) rintf(t);
    }
    return 0;
}

static int range_error(const char *what, size_t token0, size_t token1, size_t hc, const kivi *s,
                       const float lo_hi[2]) {
    return rb_error_set(RB_ENUMERIC,
                        "kivi: %s group of head %zu, channel %zu, tokens %zu..%zu spans %g .. %g: "
                        "its range overflows fp16 (65504), the dtype KIVI computes in",
                        what, hc / s->D, hc % s->D, token0, token1, (double) lo_hi[0],
                        (double) lo_hi[1]);
}

static float dequant(uint8_t q, uint16_t scale, uint16_t mn) {
    return rb_f16_round(rb_f16_round((float) q * rb_f16_to_f32(scale)) + rb_f16_to_f32(mn));
}

static void pack(const kivi *s, const uint8_t *q, size_t n, uint32_t *words, size_t nwords) {
    memset(words, 0, nwords * sizeof *words);
    for (size_t i = 0; i < n; i++)
        words[i / s->per_int] |= (uint32_t) q[i] << ((i % s->per_int) * (size_t) s->bits);
}

static uint8_t unpack(const kivi *s, const uint32_t *words, size_t i) {
    return (uint8_t) ((words[i / s->per_int] >> ((i % s->per_int) * (size_t) s->bits)) & s->maxq);
}

/* The key buffer holds exactly R tokens: quantize it as block kq / R, per channel over tokens. */
static int flush_keys(kivi *s) {
    size_t b = s->kq / s->R, ng = s->R / s->G;
    float lo_hi[2];
    rb_kernel_note_single(&rb_op_kivi_quant_f16);
    for (size_t hc = 0; hc < s->HD; hc++) {
        size_t at = b * s->HD + hc;
        for (size_t g = 0; g < ng; g++)
            if (quant_group(s, s->kbuf + g * s->G * s->HD + hc, s->G, s->HD,
                            &s->kscale[at * ng + g], &s->kmin[at * ng + g], s->q + g * s->G, lo_hi))
                return range_error("key", s->kq + g * s->G, s->kq + (g + 1) * s->G - 1, hc, s,
                                   lo_hi);
        pack(s, s->q, s->R, s->kcode + at * s->kwords, s->kwords);
    }
    s->kq += s->R;
    return RB_OK;
}

/* The window holds R + 1 tokens: quantize the oldest (token vq) per token, groups of G channels. */
static int evict_value(kivi *s) {
    const uint16_t *row = s->vring + (s->vq % (s->R + 1)) * s->HD;
    float lo_hi[2];
    rb_kernel_note_single(&rb_op_kivi_quant_f16);
    for (size_t h = 0; h < s->H; h++) {
        size_t at = s->vq * s->H + h;
        for (size_t g = 0; g < s->vgroups; g++)
            if (quant_group(s, row + h * s->D + g * s->G, s->G, 1, &s->vscale[at * s->vgroups + g],
                            &s->vmin[at * s->vgroups + g], s->q + g * s->G, lo_hi))
                return range_error("value", s->vq, s->vq, h * s->D + g * s->G, s, lo_hi);
        pack(s, s->q, s->D, s->vcode + at * s->vwords, s->vwords);
    }
    s->vq++;
    return RB_OK;
}

/* Token by token, which is exactly KIVI's prefill (L - L mod R keys quantized, all but the last R
 * values quantized) and its decode step (flush at R buffered keys, evict at R + 1 values). */
static int unusable(void) {
    return rb_error_set(RB_EINVAL, "kivi: the cache is unusable after an earlier append error");
}

static int kivi_append(void *state, const float *K, const float *V, size_t tokens) {
    kivi *s = state;
    if (s->broken) return unusable();
    if (tokens > s->cap - s->n)
        return rb_error_set(RB_ESIZE, "kivi: appending %zu tokens to %zu exceeds capacity %zu",
                            tokens, s->n, s->cap);
    /* Every input first, so that a bad one appends none of the call's tokens. */
    for (size_t i = 0; i < 2 * tokens * s->HD; i++) {
        int key = i < tokens * s->HD;
        size_t e = key ? i : i - tokens * s->HD;
        float x = (key ? K : V)[e];
        if (!isfinite(rb_f16_round(x)))
            return rb_error_set(RB_ENUMERIC,
                                "kivi: token %zu, head %zu, channel %zu: %s %g is %s fp16's range "
                                "(65504), the cache's dtype",
                                s->n + e / s->HD, e % s->HD / s->D, e % s->D, key ? "key" : "value",
                                (double) x, isfinite(x) ? "beyond" : "not a number in");
    }
    for (size_t t = 0; t < tokens; t++) {
        uint16_t *kb = s->kbuf + (s->n - s->kq) * s->HD;
        uint16_t *vb = s->vring + (s->n % (s->R + 1)) * s->HD;
        for (size_t e = 0; e < s->HD; e++) {
            kb[e] = rb_f32_to_f16(K[t * s->HD + e]);
            vb[e] = rb_f32_to_f16(V[t * s->HD + e]);
        }
        s->n++;
        int rc = s->n - s->kq == s->R ? flush_keys(s) : RB_OK;
        if (!rc && s->n - s->vq > s->R) rc = evict_value(s);
        if (rc) {
            s->broken = 1;
            return rc;
        }
    }
    return RB_OK;
}

static int kivi_read(void *state, float *K, float *V) {
    kivi *s = state;
    if (s->broken) return unusable();
    size_t ng = s->R / s->G;
    if (s->kq || s->vq) rb_kernel_note_single(&rb_op_kivi_dequant_f16);
    for (size_t t = 0; t < s->n; t++) {
        float *k = K + t * s->HD, *v = V + t * s->HD;
        if (t < s->kq) {
            size_t b = t / s->R, i = t % s->R;
            for (size_t hc = 0; hc < s->HD; hc++) {
                size_t at = (b * s->HD + hc) * ng + i / s->G;
                k[hc] = dequant(unpack(s, s->kcode + (b * s->HD + hc) * s->kwords, i),
                                s->kscale[at], s->kmin[at]);
            }
        } else {
            const uint16_t *kb = s->kbuf + (t - s->kq) * s->HD;
            for (size_t e = 0; e < s->HD; e++) k[e] = rb_f16_to_f32(kb[e]);
        }
        if (t < s->vq) {
            for (size_t h = 0; h < s->H; h++) {
                size_t at = t * s->H + h;
                for (size_t c = 0; c < s->D; c++) {
                    size_t gi = at * s->vgroups + c / s->G;
                    v[h * s->D + c] = dequant(unpack(s, s->vcode + at * s->vwords, c),
                                              s->vscale[gi], s->vmin[gi]);
                }
            }
        } else {
            const uint16_t *vb = s->vring + (t % (s->R + 1)) * s->HD;
            for (size_t e = 0; e < s->HD; e++) v[e] = rb_f16_to_f32(vb[e]);
        }
    }
    return RB_OK;
}

static size_t kivi_tokens(const void *state) {
    return ((const kivi *) state)->n;
}

/* Stored bits: key blocks (packed words along tokens + fp16 scale and min per G tokens of a
 * channel), the fp16 key buffer, quantized values (packed words along channels + fp16 scale and
 * min per G channels), the fp16 value window; over the 2 n H D cached elements. */
static double kivi_bits(const void *state) {
    const kivi *s = state;
    if (!s->n) return 0;
    double kb = (double) (s->kq / s->R) * (double) s->HD *
                (32.0 * (double) s->kwords + 32.0 * (double) (s->R / s->G));
    kb += 16.0 * (double) ((s->n - s->kq) * s->HD);
    double vb = (double) (s->vq * s->H) * (32.0 * (double) s->vwords + 32.0 * (double) s->vgroups);
    vb += 16.0 * (double) ((s->n - s->vq) * s->HD);
    return (kb + vb) / (2.0 * (double) (s->n * s->HD));
}

void rb_kivi_info_get(const void *state, rb_kivi_info *out) {
    const kivi *s = state;
    *out = (rb_kivi_info){.tokens = s->n,
                          .keys_quantized = s->kq,
                          .keys_fp16 = s->n - s->kq,
                          .values_quantized = s->vq,
                          .values_fp16 = s->n - s->vq,
                          .group = s->G,
                          .residual = s->R};
}

static const rb_kv_ops kivi_ops = {
    .create = kivi_create,
    .check = kivi_check,
    .append = kivi_append,
    .read = kivi_read,
    .tokens = kivi_tokens,
    .bits = kivi_bits,
    .destroy = kivi_destroy,
};

const rb_method rb_method_kivi = {
    .name = "kivi",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2402.02750",
    .summary =
        "KIVI KV cache: keys per channel over G-token groups in whole R-token blocks, values "
        "per token behind an fp16 window of R",
    .version = 1,
    .params = kivi_params,
    .nparams = sizeof kivi_params / sizeof kivi_params[0],
    .kv = &kivi_ops,
};
