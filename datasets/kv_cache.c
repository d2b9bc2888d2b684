/* Synthetic KV cache (kv_cache.md section 5): keys with persistent per-head outlier channels,
 * plain Gaussian values and queries, optional RoPE and attention sinks. */
#include <math.h>
#include <stdlib.h>

#include "datasets/kinds.h"
#include "datasets/synth.h"

/* Philox streams (ASCII tags); element index = (token * heads + head) * head_dim + channel. The
 * outlier choice of head h uses stream STREAM_PICK + (h << 32), its parameters element
 * h * head_dim + j of STREAM_OPAR (j-th outlier channel: mean magnitude, sigma, sign at 3 e,
 * 3 e + 1, 3 e + 2). */
enum {
    STREAM_K = 0x4b564b4b,    /* "KVKK" */
    STREAM_V = 0x4b565656,    /* "KVVV" */
    STREAM_QQ = 0x4b565151,   /* "KVQQ" */
    STREAM_PICK = 0x4b565043, /* "KVPC" */
    STREAM_OPAR = 0x4b56504d  /* "KVPM" */
};

static const rb_param_def kv_params[] = {
    RB_PARAM_INT("tokens", "4096", 1, 1L << 24, "cached tokens (rows of K and V)"),
    RB_PARAM_INT("heads", "4", 1, 1024, "attention heads"),
    RB_PARAM_INT("head_dim", "128", 1, 1 << 16, "channels per head"),
    RB_PARAM_INT("queries", "64", 0, 1L << 24, "query tokens (Q)"),
    RB_PARAM_INT("outlier_channels", "4", 0, 1 << 16,
                 "persistent key outlier channels per head: mean +-U(5,10), sigma U(2,4)"),
    RB_PARAM_BOOL("rope", "false",
                  "rotary embedding on K and Q (Llama half-split convention; K token t at "
                  "position t, query j at position tokens + j)"),
    RB_PARAM_FLOAT("rope_base", "10000", 1, 1e12, "RoPE base (theta)"),
    RB_PARAM_INT("sinks", "0", 0, 1L << 24, "attention-sink tokens at the start"),
    RB_PARAM_FLOAT("sink_scale", "10", 0, 1e6, "factor on the key norm of the sink tokens"),
    RB_PARAM_INT("calib_tokens", "0", 0, 1L << 24,
                 "calibration tokens K_calib, V_calib: a separate sequence (positions from 0, "
                 "same outlier channels and sinks), independent draws"),
    RB_PARAM_INT("prefill", "0", 0, 1L << 24,
                 "tokens the KV evaluator appends in the prefill; the rest are single-token "
                 "decode steps (0 = all tokens in the prefill)"),
};

/* Keys and values of tokens [0, n) of one sequence whose random draws start at element e0 of the
 * streams: outlier channels (pick, par: nout per head), sinks, RoPE at position t. */
static void fill_kv(uint64_t seed, size_t e0, size_t n, size_t H, size_t D, const size_t *pick,
                    const double *par, size_t nout, size_t sinks, double sink_scale, int rope,
                    double base, float *K, float *V) {
    rb_rng_normal_f32(seed, STREAM_K, e0, n * H * D, K);
    rb_rng_normal_f32(seed, STREAM_V, e0, n * H * D, V);
    for (size_t h = 0; h < H; h++)
        for (size_t j = 0; j < nout; j++) {
            const double *pj = par + 3 * (h * nout + j);
            double m = 5 + 5 * pj[0], s = 2 + 2 * pj[1];
            if (pj[2] < 0.5) m = -m;
            for (size_t t = 0; t < n; t++) {
                float *k = &K[(t * H + h) * D + pick[h * nout + j]];
                *k = (float) (m + s * *k);
            }
        }
    if (sinks > n) sinks = n;
    for (size_t e = 0; e < sinks * H * D; e++) K[e] = (float) (K[e] * sink_scale);
    if (rope)
        for (size_t t = 0; t < n; t++)
            for (size_t h = 0; h < H; h++) rb_rope_apply(&K[(t * H + h) * D], D, (double) t, base);
}

/* The parameters that must go together, for load and the shape hook alike: a dry run finds
 * them before the first cell, not when the cell's data are drawn. */
static int kv_check(const rb_params *p) {
    size_t T = (size_t) rb_params_int(p, "tokens"), D = (size_t) rb_params_int(p, "head_dim"),
           nout = (size_t) rb_params_int(p, "outlier_channels"),
           sinks = (size_t) rb_params_int(p, "sinks"),
           prefill = (size_t) rb_params_int(p, "prefill");
    if (nout > D)
        return rb_error_set(RB_EINVAL, "kv_cache: outlier_channels = %zu exceeds head_dim = %zu",
                            nout, D);
    if (sinks > T)
        return rb_error_set(RB_EINVAL, "kv_cache: sinks = %zu exceeds tokens = %zu", sinks, T);
    if (prefill > T)
        return rb_error_set(RB_EINVAL, "kv_cache: prefill = %zu exceeds tokens = %zu", prefill, T);
    if (rb_params_bool(p, "rope") && D % 2)
        return rb_error_set(RB_EINVAL, "kv_cache: rope needs an even head_dim (got %zu)", D);
    return RB_OK;
}

/* K[t, h, :] ~ N(0, I) except the outlier channels c of head h, where K[t, h, c] = m + s z with
 * a per-(head, channel) mean m = +-U(5, 10) and sigma s = U(2, 4) shared by all tokens. Sink
 * tokens t < sinks have their whole key row (all heads) multiplied by sink_scale before RoPE, so
 * their key norms are sink_scale times those of the same draw without sinks (RoPE keeps norms);
 * their values are left alone. V and Q are N(0, I). */
static int load_kv(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    size_t T = (size_t) rb_params_int(p, "tokens"), H = (size_t) rb_params_int(p, "heads"),
           D = (size_t) rb_params_int(p, "head_dim"), nq = (size_t) rb_params_int(p, "queries"),
           nout = (size_t) rb_params_int(p, "outlier_channels"),
           sinks = (size_t) rb_params_int(p, "sinks"),
           C = (size_t) rb_params_int(p, "calib_tokens"),
           prefill = (size_t) rb_params_int(p, "prefill");
    int rope = rb_params_bool(p, "rope");
    double base = rb_params_float(p, "rope_base"), sink_scale = rb_params_float(p, "sink_scale");
    int rc = kv_check(p);
    if (rc) return rc;

    rb_tensor *K, *V, *Q = NULL, *Kc = NULL, *Vc = NULL, *meta;
    size_t shape[3] = {T, H, D}, qshape[3] = {nq, H, D}, cshape[3] = {C, H, D}, mshape[1] = {4};
    size_t *pick = malloc((nout ? H * nout : 1) * sizeof *pick);
    double *par = malloc((nout ? 3 * H * nout : 1) * sizeof *par);
    rc = !pick || !par ? rb_error_set(RB_ENOMEM, "kv_cache: no memory") : RB_OK;
    if (!rc) rc = rb_dataset_add(ds, "K", 3, shape, &K);
    if (!rc) rc = rb_dataset_add(ds, "V", 3, shape, &V);
    if (!rc && nq) rc = rb_dataset_add(ds, "Q", 3, qshape, &Q);
    if (!rc && C) rc = rb_dataset_add(ds, "K_calib", 3, cshape, &Kc);
    if (!rc && C) rc = rb_dataset_add(ds, "V_calib", 3, cshape, &Vc);
    if (!rc) rc = rb_dataset_add(ds, "kv_meta", 1, mshape, &meta);
    if (rc) goto fail;
    for (size_t h = 0; h < H && nout; h++) {
        rc = rb_pick_distinct(seed, STREAM_PICK + ((uint64_t) h << 32), D, nout, pick + h * nout);
        if (rc) goto fail;
        rb_rng_uniform_f64(seed, STREAM_OPAR, 3 * h * D, 3 * nout, par + 3 * h * nout);
    }
    fill_kv(seed, 0, T, H, D, pick, par, nout, sinks, sink_scale, rope, base, K->data, V->data);
    /* The calibration sequence draws the stream elements after the evaluation tokens'. */
    if (C)
        fill_kv(seed, T * H * D, C, H, D, pick, par, nout, sinks, sink_scale, rope, base, Kc->data,
                Vc->data);
    if (Q) {
        rb_rng_normal_f32(seed, STREAM_QQ, 0, nq * H * D, Q->data);
        for (size_t j = 0; rope && j < nq; j++)
            for (size_t h = 0; h < H; h++)
                rb_rope_apply(&Q->data[(j * H + h) * D], D, (double) (T + j), base);
    }
    meta->data[0] = (float) prefill;
    meta->data[1] = rope ? (float) base : 0.0f;
    meta->data[2] = meta->data[3] = 0.0f; /* both sequences start at position 0 */
    free(pick);
    free(par);
    rb_dataset_hash(ds);
    return RB_OK;
fail:
    free(pick);
    free(par);
    rb_dataset_free(ds);
    return rc;
}

static int kv_shape(const rb_params *p, rb_dataset_shape *s) {
    s->tokens = (size_t) rb_params_int(p, "tokens");
    s->heads = (size_t) rb_params_int(p, "heads");
    s->head_dim = (size_t) rb_params_int(p, "head_dim");
    s->calib_tokens = (size_t) rb_params_int(p, "calib_tokens");
    s->queries = (size_t) rb_params_int(p, "queries");
    s->rope_base = rb_params_bool(p, "rope") ? rb_params_float(p, "rope_base") : 0;
    return kv_check(p);
}

const rb_dataset_kind rb_dataset_kv_cache = {
    "kv_cache",
    "keys K and values V (tokens x heads x head_dim) with per-head key outlier channels, "
    "queries Q; optional RoPE, attention sinks and a calibration sequence",
    RB_PARAMS_OF(kv_params), load_kv, kv_shape};
