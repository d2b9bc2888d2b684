/* rotatekv (arXiv:2501.16383, reference code RotateKV_fake_quant; kv_cache.md section 3): 2-bit
 * KV cache through outlier-aware rotation. Keys: RoPE undone (the method rotates pre-RoPE; with
 * post-RoPE data and geom.rope_base it inverts RoPE at each token's position, an exact orthogonal
 * map, and re-applies it after dequantization), then the grouped-head Hadamard H_G (orthonormal
 * natural Sylvester over head_group consecutive heads, 4 x 128 = 512 by default), then the channel
 * permutation P over all heads x head_dim channels calibrated on separate tokens: the released
 * code's order, stored = P * H_G * k (rotate first, then permute, so P decides which rotated
 * channels share a quantization group; the paper's text reads the other way). Values: H_D per
 * head (in the model it is fused into W_v and cancels in W_o; read() undoes it so the values come
 * back in the data's basis). Both are quantized per token in groups of `group` channels with the
 * RotateKV quantizer (rb_rotatekv_quant: clip 0.8 at INT2, 1.0 at INT3/4; fp16 scale and int16
 * zero). Attention sinks: the released code keeps in fp16 the tokens holding the top-20 |h| of
 * the layer's input hidden state in the prefill; the cache has no hidden states, so this keeps
 * the `sinks` prefill tokens of largest key norm (all heads) instead. Decode has no sink check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/synth.h"
#include "kernels/half.h"
#include "methods/kv_touch.h"
#include "methods/method.h"
#include "methods/rotatekv.h"

static const rb_param_def rotatekv_params[] = {
    RB_PARAM_INT("bits", "2", 1, 8, "bits per code (keys and values)"),
    RB_PARAM_INT("group", "128", 1, 1 << 20,
                 "channels per (scale, zero) pair along each token's row; divides head_dim"),
    RB_PARAM_ENUM("rotation", "grouped", "grouped|head|none",
                  "key rotation: H over head_group heads (H_G), H_head_dim per head, or none"),
    RB_PARAM_INT("head_group", "4", 1, 1 << 16, "heads per grouped-head Hadamard block"),
    RB_PARAM_BOOL("reorder", "true",
                  "outlier-aware channel order P from calibration (needs calibration tokens)"),
    RB_PARAM_FLOAT("clip", "0", 0, 1,
                   "range multiplier; 0 = the paper's: 0.8 at INT2, else 1 (records print 0: "
                   "give it to see the clip in reports)"),
    RB_PARAM_INT("sinks", "20", 0, 1 << 20, "prefill tokens of largest key norm kept in fp16"),
    RB_PARAM_BOOL("rotate_v", "true", "values rotated by H_head_dim per head before quantizing"),
    RB_PARAM_BOOL("int3_bug", "false",
                  "the released code's scale divisor bits^2 - 1 (INT3: (max - min) / 8, clamp 7)"),
    RB_PARAM_ENUM("scale_bits", "16", "16|32",
                  "stored width of each scale and zero point, 16 or 32 (16: fp16 scale, int16 "
                  "zero; 32: fp32 both)"),
    RB_PARAM_BOOL("quantize", "true",
                  "false: store the transformed fp32 rows (checks the transform algebra)"),
};

typedef struct rotatekv {
    size_t H, D, HD, cap, group, ngroups, pbytes, hg, nsinks;
    int bits, int3_bug, half_scale, reorder, rotate_v, quantize;
    char rotation; /* 'g' grouped, 'h' head, 'n' none */
    float clip;
    double rope_base;
    size_t pos0, calib_pos0; /* positions of the first appended / calibration token */
    size_t n;
    size_t *order; /* NULL until calibrated */
    /* Per token: packed codes [t][K/V][ngroups][pbytes], scales and zeros [t][K/V][ngroups]
     * (fp32 arrays holding the fp16 / int16 values when half_scale). */
    uint8_t *codes;
    float *scale, *zero;
    float *raw;        /* quantize = false: [t][K/V][HD] transformed rows */
    uint16_t *sinkbuf; /* [slot][K/V][HD] fp16 transformed rows */
    size_t *sink_tok;  /* token of each sink slot */
    size_t sinks_used;
    float *row, *tmp;
    uint8_t *q;
} rotatekv;

static void rotatekv_destroy(void *state) {
    rotatekv *s = state;
    if (!s) return;
    free(s->order);
    free(s->codes);
    free(s->scale);
    free(s->zero);
    free(s->raw);
    free(s->sinkbuf);
    free(s->sink_tok);
    free(s->row);
    free(s->tmp);
    free(s->q);
    free(s);
}

/* create's rules. */
static int shape_check(const rb_params *p, const rb_kv_geom *g) {
    size_t H = g->heads, D = g->head_dim, group = (size_t) rb_params_int(p, "group"),
           hg = (size_t) rb_params_int(p, "head_group");
    int bits = (int) rb_params_int(p, "bits");
    const char *rot = rb_params_str(p, "rotation");
    int rotate_v = rb_params_bool(p, "rotate_v"), int3_bug = rb_params_bool(p, "int3_bug");
    if (!H || !D || !g->capacity)
        return rb_error_set(RB_ESIZE,
                            "rotatekv: empty cache geometry (heads %zu, head_dim %zu, capacity "
                            "%zu)",
                            H, D, g->capacity);
    if (D % group)
        return rb_error_set(RB_ESIZE, "rotatekv: head_dim = %zu is not a multiple of group = %zu",
                            D, group);
    if (rot[0] == 'g' && H % hg)
        return rb_error_set(RB_ESIZE,
                            "rotatekv: heads = %zu is not a multiple of head_group = %zu (the "
                            "grouped-head Hadamard covers head_group consecutive heads)",
                            H, hg);
    if (rot[0] == 'g' && !rb_is_pow2(hg * D))
        return rb_error_set(RB_ESIZE,
                            "rotatekv: head_group x head_dim = %zu is not a power of two (the "
                            "grouped Hadamard is Sylvester)",
                            hg * D);
    if ((rot[0] == 'h' || rotate_v) && !rb_is_pow2(D))
        return rb_error_set(RB_ESIZE,
                            "rotatekv: head_dim = %zu is not a power of two (per-head Hadamard; "
                            "set rotation: none and rotate_v: false)",
                            D);
    if (g->rope_base > 0 && D % 2)
        return rb_error_set(RB_ESIZE, "rotatekv: RoPE needs an even head_dim (got %zu)", D);
    if (int3_bug && bits < 2)
        return rb_error_set(RB_EINVAL, "rotatekv: int3_bug needs bits >= 2 (divisor bits^2 - 1)");
    return RB_OK;
}

/* The preflight's: create's, and the channel order's need for calibration tokens (the error that
 * append would give at the prefill). */
static int rotatekv_check(const rb_params *p, const rb_kv_geom *g) {
    int rc = shape_check(p, g);
    if (!rc && rb_params_bool(p, "reorder") && !g->calib_tokens)
        rc = rb_error_set(RB_EINVAL, "rotatekv: reorder needs calibration tokens (calib_tokens on "
                                     "the dataset), or set reorder: false");
    return rc;
}

static int rotatekv_create(const rb_params *p, const rb_kv_geom *g, uint64_t seed, void **state) {
    (void) seed; /* deterministic Sylvester Hadamard, calibrated order */
    int rc = shape_check(p, g);
    if (rc) return rc;
    size_t H = g->heads, D = g->head_dim, group = (size_t) rb_params_int(p, "group"),
           hg = (size_t) rb_params_int(p, "head_group");
    int bits = (int) rb_params_int(p, "bits");
    const char *rot = rb_params_str(p, "rotation");
    int rotate_v = rb_params_bool(p, "rotate_v"), int3_bug = rb_params_bool(p, "int3_bug");
    rotatekv *s = calloc(1, sizeof *s);
    if (!s) return rb_error_set(RB_ENOMEM, "rotatekv: no memory");
    s->H = H;
    s->D = D;
    s->HD = H * D;
    s->cap = g->capacity;
    s->group = group;
    s->ngroups = s->HD / group;
    s->bits = bits;
    s->pbytes = rb_pack_bytes(group, bits);
    s->hg = hg;
    s->rotation = rot[0];
    s->reorder = rb_params_bool(p, "reorder");
    s->rotate_v = rotate_v;
    s->int3_bug = int3_bug;
    s->half_scale = rb_params_is(p, "scale_bits", "16");
    s->quantize = rb_params_bool(p, "quantize");
    double clip = rb_params_float(p, "clip");
    s->clip = clip > 0 ? (float) clip : bits == 2 ? 0.8f : 1.0f;
    s->rope_base = g->rope_base;
    s->pos0 = g->pos0;
    s->calib_pos0 = g->calib_pos0;
    s->nsinks = (size_t) rb_params_int(p, "sinks");
    if (s->nsinks > s->cap) s->nsinks = s->cap;
    size_t HD = s->HD, ng2 = 2 * s->ngroups;
    int ok = 1;
    if (s->quantize) {
        ok &= !!(s->codes = malloc(s->cap * ng2 * s->pbytes));
        ok &= !!(s->scale = malloc(s->cap * ng2 * sizeof *s->scale));
        ok &= !!(s->zero = malloc(s->cap * ng2 * sizeof *s->zero));
    } else {
        ok &= !!(s->raw = malloc(s->cap * 2 * HD * sizeof *s->raw));
    }
    ok &= !!(s->sinkbuf = malloc((s->nsinks ? s->nsinks : 1) * 2 * HD * sizeof *s->sinkbuf));
    ok &= !!(s->sink_tok = malloc((s->nsinks ? s->nsinks : 1) * sizeof *s->sink_tok));
    ok &= !!(s->row = malloc(HD * sizeof *s->row));
    ok &= !!(s->tmp = malloc(HD * sizeof *s->tmp));
    ok &= !!(s->q = malloc(HD)); /* a row's codes, group by group */
    if (!ok) {
        rotatekv_destroy(s);
        return rb_error_set(RB_ENOMEM, "rotatekv: no memory for a cache of %zu tokens x %zu x %zu",
                            g->capacity, H, D);
    }
    if (s->quantize) {
        rb_kv_touch(s->codes, s->cap * ng2 * s->pbytes);
        rb_kv_touch(s->scale, s->cap * ng2 * sizeof *s->scale);
        rb_kv_touch(s->zero, s->cap * ng2 * sizeof *s->zero);
    } else {
        rb_kv_touch(s->raw, s->cap * 2 * HD * sizeof *s->raw);
    }
    rb_kv_touch(s->sinkbuf, (s->nsinks ? s->nsinks : 1) * 2 * HD * sizeof *s->sinkbuf);
    *state = s;
    return RB_OK;
}

int rb_rotatekv_quant(const float *x, size_t n, int bits, float clip, int int3_bug, int half_scale,
                      uint8_t *q, float *scale, float *zero) {
    RB_ASSERT(n > 0 && bits >= 1 && bits <= 8 && (!int3_bug || bits >= 2));
    float mn = x[0], mx = x[0];
    for (size_t i = 1; i < n; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    mn *= clip;
    mx *= clip;
    float maxq = (float) ((1u << bits) - 1), div = int3_bug ? (float) (bits * bits - 1) : maxq;
    float s = (mx - mn) / div;
    if (half_scale && isfinite(s) && isinf(rb_f16_round(s)))
        return rb_error_set(RB_ENUMERIC,
                            "the group spans %g .. %g: its scale %g overflows the fp16 it is "
                            "stored in (65504)",
                            (double) mn, (double) mx, (double) s);
    if (half_scale) s = rb_f16_round(s);
    if (!(s > 0) || !isfinite(s)) s = 1; /* constant group: the reference divides by zero */
    float z = rintf(-mn / s);
    if (half_scale) z = z < -32768.0f ? -32768.0f : z > 32767.0f ? 32767.0f : z;
    for (size_t i = 0; i < n; i++) {
        float c = rintf(x[i] / s) + z;
        c = c < 0 ? 0 : c > maxq ? maxq : c;
        q[i] = (uint8_t) c;
    }
    *scale = s;
    *zero = z;
    return RB_OK;
}

/* The Hadamard part of the key transform (self-inverse: orthonormal symmetric Sylvester). */
static int key_hadamard(const rotatekv *s, float *row) {
    if (s->rotation == 'g')
        return rb_fwht_f32(row, s->hg * s->D, s->H / s->hg, s->hg * s->D, RB_NORM_ORTHO,
                           RB_ORDER_NATURAL);
    if (s->rotation == 'h')
        return rb_fwht_f32(row, s->D, s->H, s->D, RB_NORM_ORTHO, RB_ORDER_NATURAL);
    return RB_OK;
}

static void rope(const rotatekv *s, float *row, double pos) {
    if (s->rope_base > 0)
        for (size_t h = 0; h < s->H; h++) rb_rope_apply(row + h * s->D, s->D, pos, s->rope_base);
}

int rb_rotatekv_key_transform(void *state, float *row, size_t pos, rb_dir dir) {
    rotatekv *s = state;
    int rc;
    if (dir == RB_FORWARD) {
        rope(s, row, -(double) pos);
        if ((rc = key_hadamard(s, row))) return rc;
        if (s->order) {
            for (size_t j = 0; j < s->HD; j++) s->tmp[j] = row[s->order[j]];
            memcpy(row, s->tmp, s->HD * sizeof *row);
        }
        return RB_OK;
    }
    if (s->order) { /* P^-1: a scatter, i.e. a gather with argsort(order) */
        for (size_t j = 0; j < s->HD; j++) s->tmp[s->order[j]] = row[j];
        memcpy(row, s->tmp, s->HD * sizeof *row);
    }
    if ((rc = key_hadamard(s, row))) return rc;
    rope(s, row, (double) pos);
    return RB_OK;
}

static int value_transform(const rotatekv *s, float *row) {
    if (!s->rotate_v) return RB_OK;
    return rb_fwht_f32(row, s->D, s->H, s->D, RB_NORM_ORTHO, RB_ORDER_NATURAL);
}

const size_t *rb_rotatekv_order(const void *state) {
    return ((const rotatekv *) state)->order;
}

typedef struct keyed {
    double sum;
    size_t index;
} keyed;

static int by_sum(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->sum != y->sum) return x->sum < y->sum ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index; /* stable argsort */
}

/* P: S_c = signed sum over calibration tokens of (H_G k_pre)_c, order = argsort(S) ascending. */
static int rotatekv_calibrate(void *state, const float *K, const float *V, size_t tokens) {
    (void) V;
    rotatekv *s = state;
    if (s->n)
        return rb_error_set(RB_EINVAL, "rotatekv: calibrate after %zu tokens were appended", s->n);
    if (!s->reorder) return RB_OK;
    keyed *S = calloc(s->HD, sizeof *S);
    size_t *order = malloc(s->HD * sizeof *order);
    int rc = !S || !order ? rb_error_set(RB_ENOMEM, "rotatekv: no memory to calibrate") : RB_OK;
    for (size_t t = 0; t < tokens && !rc; t++) {
        memcpy(s->row, K + t * s->HD, s->HD * sizeof *s->row);
        rope(s, s->row, -(double) (s->calib_pos0 + t));
        rc = key_hadamard(s, s->row);
        for (size_t c = 0; c < s->HD && !rc; c++) S[c].sum += s->row[c];
    }
    if (!rc) {
        for (size_t c = 0; c < s->HD; c++) S[c].index = c;
        qsort(S, s->HD, sizeof *S, by_sum);
        for (size_t c = 0; c < s->HD; c++) order[c] = S[c].index;
        free(s->order);
        s->order = order;
        order = NULL;
    }
    free(S);
    free(order);
    return rc;
}

int rb_rotatekv_is_sink(const void *state, size_t t) {
    const rotatekv *s = state;
    for (size_t i = 0; i < s->sinks_used; i++)
        if (s->sink_tok[i] == t) return 1;
    return 0;
}

/* Prefill: the nsinks tokens of largest key norm (ties: the earlier token). */
static void pick_sinks(rotatekv *s, const float *K, size_t tokens) {
    size_t want = s->nsinks < tokens ? s->nsinks : tokens;
    double *best = malloc((want ? want : 1) * sizeof *best);
    if (!best) return; /* checked by the caller through sinks_used */
    s->sinks_used = 0;
    for (size_t t = 0; t < tokens && want; t++) {
        double nrm = 0;
        for (size_t e = 0; e < s->HD; e++) nrm += (double) K[t * s->HD + e] * K[t * s->HD + e];
        size_t i = s->sinks_used;
        if (i == want && nrm <= best[want - 1]) continue;
        if (i == want) i--;
        while (i > 0 && best[i - 1] < nrm) { /* insertion into the descending list */
            best[i] = best[i - 1];
            s->sink_tok[i] = s->sink_tok[i - 1];
            i--;
        }
        best[i] = nrm;
        s->sink_tok[i] = t;
        if (s->sinks_used < want) s->sinks_used++;
    }
    free(best);
}

/* Stores one transformed row (K: which = 0, V: 1) of token t. RB_ENUMERIC, naming the place,
 * when a value the cache keeps in fp16 (a sink element, a group's scale) overflows it. */
static int store(rotatekv *s, size_t t, int which, const float *row, int sink_slot) {
    const char *kv = which ? "value" : "key";
    if (sink_slot >= 0) {
        uint16_t *dst = s->sinkbuf + ((size_t) sink_slot * 2 + (size_t) which) * s->HD;
        for (size_t e = 0; e < s->HD; e++) {
            dst[e] = rb_f32_to_f16(row[e]);
            if (!isinf(rb_f16_to_f32(dst[e])) || !isfinite(row[e])) continue;
            /* A key's stored element e is rotated coordinate order[e] (the channel reorder is
             * the last step); a value's rotation keeps every head's own coordinates. */
            size_t c = !which && s->order ? s->order[e] : e;
            return rb_error_set(RB_ENUMERIC,
                                "rotatekv: sink token %zu, %s head %zu, channel %zu (after the "
                                "rotation): %g is beyond fp16's range (65504), which sinks are "
                                "kept in",
                                t, kv, c / s->D, c % s->D, (double) row[e]);
        }
        return RB_OK;
    }
    if (!s->quantize) {
        memcpy(s->raw + (t * 2 + (size_t) which) * s->HD, row, s->HD * sizeof *row);
        return RB_OK;
    }
    size_t base = (t * 2 + (size_t) which) * s->ngroups;
    for (size_t gi = 0; gi < s->ngroups; gi++) {
        if (rb_rotatekv_quant(row + gi * s->group, s->group, s->bits, s->clip, s->int3_bug,
                              s->half_scale, s->q + gi * s->group, &s->scale[base + gi],
                              &s->zero[base + gi])) {
            char why[200];
            snprintf(why, sizeof why, "%s", rb_error_detail());
            /* Stored channel c is channel c % D of head c / D (after the rotation), but for
             * reordered keys, whose groups gather channels of any head. */
            size_t c0 = gi * s->group, c1 = c0 + s->group - 1;
            char heads[96];
            if (!which && s->order)
                snprintf(heads, sizeof heads, "stored channels %zu..%zu, reordered", c0, c1);
            else if (c0 / s->D == c1 / s->D)
                snprintf(heads, sizeof heads, "head %zu, channels %zu..%zu", c0 / s->D, c0 % s->D,
                         c1 % s->D);
            else
                snprintf(heads, sizeof heads, "heads %zu..%zu", c0 / s->D, c1 / s->D);
            return rb_error_set(RB_ENUMERIC,
                                "rotatekv: token %zu, %s group %zu (%s; after the rotation): %s "
                                "(use scale_bits: 32)",
                                t, kv, gi, heads, why);
        }
    }
    /* The row's groups, one packed stream each, through the dispatched packer. */
    return rb_pack_rows(s->q, s->ngroups, s->group, s->bits, s->codes + base * s->pbytes,
                        s->pbytes);
}

static void load(rotatekv *s, size_t t, int which, float *row, int sink_slot) {
    if (sink_slot >= 0) {
        const uint16_t *src = s->sinkbuf + ((size_t) sink_slot * 2 + (size_t) which) * s->HD;
        for (size_t e = 0; e < s->HD; e++) row[e] = rb_f16_to_f32(src[e]);
        return;
    }
    if (!s->quantize) {
        memcpy(row, s->raw + (t * 2 + (size_t) which) * s->HD, s->HD * sizeof *row);
        return;
    }
    size_t base = (t * 2 + (size_t) which) * s->ngroups;
    /* Unpack, then row = scale * (q - zero) per group: the dispatched row ops (asym pairs). */
    rb_unpack_rows(s->codes + base * s->pbytes, s->pbytes, s->ngroups, s->group, s->bits, s->q);
    rb_dequant_rows_f32(s->q, 1, s->HD, s->group, 1, &s->scale[base], &s->zero[base], row, s->HD);
}

static int sink_slot(const rotatekv *s, size_t t) {
    for (size_t i = 0; i < s->sinks_used; i++)
        if (s->sink_tok[i] == t) return (int) i;
    return -1;
}

/* The per-group quantizer above is the method's own loop, not a dispatched kernel: the trace
 * names it so that a record lists every kernel that did its work. */
RB_OP_SINGLE(rb_op_rotatekv_quant, "rotatekv_quant", "ref");

static int rotatekv_append(void *state, const float *K, const float *V, size_t tokens) {
    rotatekv *s = state;
    if (s->quantize && tokens) rb_kernel_note_single(&rb_op_rotatekv_quant);
    if (tokens > s->cap - s->n)
        return rb_error_set(RB_ESIZE, "rotatekv: appending %zu tokens to %zu exceeds capacity %zu",
                            tokens, s->n, s->cap);
    if (s->reorder && !s->order)
        return rb_error_set(RB_EINVAL,
                            "rotatekv: reorder needs calibration tokens before the prefill (give "
                            "the evaluator calibration tokens, or set reorder: false)");
    if (s->n == 0) {
        pick_sinks(s, K, tokens);
        if (s->sinks_used < (s->nsinks < tokens ? s->nsinks : tokens))
            return rb_error_set(RB_ENOMEM, "rotatekv: no memory to pick sinks");
    }
    for (size_t i = 0; i < tokens; i++) {
        size_t t = s->n + i;
        /* Sinks are prefill tokens: slot indices refer to prefill positions. */
        int slot = sink_slot(s, t);
        int rc;
        memcpy(s->row, K + i * s->HD, s->HD * sizeof *s->row);
        if ((rc = rb_rotatekv_key_transform(s, s->row, s->pos0 + t, RB_FORWARD))) return rc;
        if ((rc = store(s, t, 0, s->row, slot))) return rc;
        memcpy(s->row, V + i * s->HD, s->HD * sizeof *s->row);
        if ((rc = value_transform(s, s->row))) return rc;
        if ((rc = store(s, t, 1, s->row, slot))) return rc;
    }
    s->n += tokens;
    return RB_OK;
}

static int rotatekv_read(void *state, float *K, float *V) {
    rotatekv *s = state;
    for (size_t t = 0; t < s->n; t++) {
        int slot = sink_slot(s, t), rc;
        load(s, t, 0, K + t * s->HD, slot);
        if ((rc = rb_rotatekv_key_transform(s, K + t * s->HD, s->pos0 + t, RB_INVERSE))) return rc;
        load(s, t, 1, V + t * s->HD, slot);
        if ((rc = value_transform(s, V + t * s->HD))) return rc;
    }
    return RB_OK;
}

static size_t rotatekv_tokens(const void *state) {
    return ((const rotatekv *) state)->n;
}

/* Stored bits per element: quantized tokens carry packed codes plus a scale and a zero per group
 * at scale_bits each; sinks are fp16; quantize = false rows are fp32. */
static double rotatekv_bits(const void *state) {
    const rotatekv *s = state;
    if (!s->n) return 0;
    double per_row =
        s->quantize
            ? (double) s->ngroups * (8.0 * (double) s->pbytes + 2.0 * (s->half_scale ? 16.0 : 32.0))
            : 32.0 * (double) s->HD;
    double total = 2.0 * ((double) (s->n - s->sinks_used) * per_row +
                          (double) s->sinks_used * 16.0 * (double) s->HD);
    return total / (2.0 * (double) (s->n * s->HD));
}

static const rb_kv_ops rotatekv_ops = {
    .create = rotatekv_create,
    .check = rotatekv_check,
    .calibrate = rotatekv_calibrate,
    .append = rotatekv_append,
    .read = rotatekv_read,
    .tokens = rotatekv_tokens,
    .bits = rotatekv_bits,
    .destroy = rotatekv_destroy,
    .keys_pre_rope = 1,
};

const rb_method rb_method_rotatekv = {
    .name = "rotatekv",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2501.16383",
    .summary = "RotateKV: pre-RoPE grouped-head Hadamard + calibrated channel order, per-token "
               "INT2 groups with clip, fp16 attention sinks",
    .version = 1,
    .params = rotatekv_params,
    .nparams = sizeof rotatekv_params / sizeof rotatekv_params[0],
    .kv = &rotatekv_ops,
};
