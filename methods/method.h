/* The methods layer's public header: method descriptors, the four family interfaces (codec,
 * layer, adapter, sparse) and the registry. A method is one file that fills one descriptor. */
#ifndef RB_METHOD_H
#define RB_METHOD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

typedef enum rb_family {
    RB_FAMILY_CODEC = 0, /* vectors and KV caches: encode -> packed code -> decode */
    RB_FAMILY_LAYER,     /* weight + activation PTQ of one linear layer */
    RB_FAMILY_ADAPTER,   /* quantization-aware adapter initialization */
    RB_FAMILY_SPARSE,    /* sparse Walsh-Hadamard spectrum recovery */
    RB_FAMILY_COUNT
} rb_family;

const char *rb_family_name(rb_family f);

/* ---- codec family ----
 * A codec instance is created for one vector dimension and one seed (its rotation and any random
 * projection derive from the seed) and then encodes batches of vectors into fixed-size packed
 * codes. Instances are used from one thread at a time; kernels parallelize inside a call. */
typedef struct rb_codec_ops {
    /* Builds the instance for vectors of length dim. RB_ESIZE for a dim the method cannot take
     * (with the reason), RB_EINVAL for parameter combinations the table cannot express. */
    int (*create)(const rb_params *p, size_t dim, uint64_t seed, void **state);
    /* Optional: create's rules on dim and the parameters alone, building nothing (create calls
     * it too). The runner checks every cell with it before the first cell runs, so that a
     * config's impossible combination is an error at once, not after hours of other cells. */
    int (*check)(const rb_params *p, size_t dim);
    /* Optional (NULL when the method needs no calibration): sees `count` sample vectors. */
    int (*calibrate)(void *state, const float *x, size_t count);
    /* Bytes of one packed code, and the exact bits per coordinate of a code including all side
     * information (norms, scales, gammas) at the width they are stored. */
    size_t (*code_bytes)(const void *state);
    double (*bits)(const void *state);
    /* Batched: x is count x dim (row stride dim), codes is count x code_bytes. */
    int (*encode)(void *state, const float *x, size_t count, uint8_t *codes);
    int (*decode)(void *state, const uint8_t *codes, size_t count, float *xhat);
    /* Optional: the method's own inner-product estimator <q_j, x_i> from codes, for methods whose
     * estimator is not <q, decode(code)> (QJL, TurboQuant-prod). out is count x nq. */
    int (*inner_product)(void *state, const uint8_t *codes, size_t count, const float *q, size_t nq,
                         float *out);
    void (*destroy)(void *state);
} rb_codec_ops;

/* ---- KV-cache codecs (codec family, cache-structured) ----
 * Codec-family methods that need the cache's structure (per-channel groups over tokens, windows
 * and sinks kept in full precision, rotations across heads, calibration) implement rb_kv_ops
 * instead of rb_codec_ops. An instance holds the cache of one layer: keys and values, tokens x
 * heads x head_dim, as the serving system writes them (post-RoPE when the data have RoPE, cached
 * token t at position pos0 + t). The KV evaluator (harness/eval_kv.c) appends a prefill and then
 * single-token decode steps, and reads back what attention sees. Vector codecs (rb_codec_ops) also
 * run on KV data: the evaluator codes each head_dim row of K and V as one vector. */
typedef struct rb_kv_geom {
    size_t heads, head_dim;
    size_t capacity;  /* most tokens the cache will hold */
    double rope_base; /* RoPE base of the keys (Llama half-split), 0 when the data have none */
    /* Token positions (what RoPE was applied at): the first appended token is at pos0 and
     * later ones follow; calibration token t is at calib_pos0 + t. Both 0 for a cache that
     * starts at the beginning of its sequence; a dump split into calibration and evaluation
     * tokens moves one of them (datasets/kv_dump.c). */
    size_t pos0, calib_pos0;
    /* Calibration tokens the caller will give calibrate (0: none). Only `check` reads it (a
     * method that cannot work uncalibrated says so before anything runs); create does not,
     * since a caller may create first and calibrate after. */
    size_t calib_tokens;
} rb_kv_geom;

typedef struct rb_kv_ops {
    int (*create)(const rb_params *p, const rb_kv_geom *g, uint64_t seed, void **state);
    /* Optional: create's rules on the geometry and the parameters alone (as rb_codec_ops.check),
     * and those that only the whole evaluation shows (calibration it needs: calib_tokens). */
    int (*check)(const rb_params *p, const rb_kv_geom *g);
    /* Optional: calibration keys and values (tokens x heads x head_dim, token t at position
     * calib_pos0 + t), tokens disjoint from those later appended. */
    int (*calibrate)(void *state, const float *K, const float *V, size_t tokens);
    /* Appends tokens (positions continue from pos0 + the cached count): the first call is the
     * prefill, later calls with tokens = 1 are decode steps. The method applies its own streaming
     * rule (KIVI's full groups and residual window, sinks, ...). */
    int (*append)(void *state, const float *K, const float *V, size_t tokens);
    /* The keys and values attention sees for every cached token, back in the data's basis
     * (inverse rotations applied, so queries need no transform): tokens x heads x head_dim. */
    int (*read)(void *state, float *K, float *V);
    /* Tokens cached so far, and the exact bits per cached element (K and V together) as stored
     * now: codes, scales and zero points at their stored width, full-precision tokens. */
    size_t (*tokens)(const void *state);
    double (*bits)(const void *state);
    void (*destroy)(void *state);
    /* 1 when the method transforms keys in the pre-RoPE basis (rotatekv): on post-RoPE data it
     * needs rb_kv_geom.rope_base to undo RoPE, and with rope_base 0 it takes the keys as they
     * are. The runner warns when such a method runs on a dataset whose rope_base parameter was
     * left unset (0: none or unknown), see rb_run_warn_rope. */
    int keys_pre_rope;
} rb_kv_ops;

/* ---- layer family ----
 * calibrate sees the weight W (out x in, row-major) and calibration activations X (tokens x in)
 * and produces a plan; forward computes Y = Q(X T) Q(W T^-T)^T (the quantized layer) for new
 * activations. */
typedef struct rb_layer_ops {
    int (*calibrate)(const rb_params *p, const float *W, size_t out, size_t in, const float *X,
                     size_t tokens, uint64_t seed, void **plan);
    int (*forward)(void *plan, const float *X, size_t tokens, float *Y);
    /* Optional: the activations after the method's online transform, for kurtosis, flatness and
     * QSUR metrics. Xt is tokens x in. */
    int (*transform)(void *plan, const float *X, size_t tokens, float *Xt);
    void (*destroy)(void *plan);
} rb_layer_ops;

/* ---- adapter family ----
 * init produces the adapter's initial delta (out x in, dense) for a quantized weight Wq of W,
 * given calibration activations and a parameter budget. */
typedef struct rb_adapter_ops {
    int (*init)(const rb_params *p, const float *W, const float *Wq, size_t out, size_t in,
                const float *X, size_t tokens, size_t budget, uint64_t seed, float *delta);
} rb_adapter_ops;

/* ---- sparse family ----
 * Methods never see the whole signal: they ask the oracle for samples and it counts them. */
typedef struct rb_signal_oracle {
    unsigned log2n; /* N = 2^log2n, up to 2^62 */
    /* out[i] = x[idx[i]]; returns 0 or an error. */
    int (*query)(void *ctx, const uint64_t *idx, size_t count, double *out);
    void *ctx;
    uint64_t queries; /* total samples asked for (maintained by rb_oracle_query) */
} rb_signal_oracle;

static inline int rb_oracle_query(rb_signal_oracle *o, const uint64_t *idx, size_t count,
                                  double *out) {
    o->queries += count;
    return o->query(o->ctx, idx, count, out);
}

typedef struct rb_sparse_coef {
    uint64_t index;
    double value;
} rb_sparse_coef;

typedef struct rb_sparse_ops {
    /* Recovers up to `cap` nonzero Walsh coefficients into out, their number in *found. */
    int (*recover)(const rb_params *p, rb_signal_oracle *oracle, uint64_t seed, rb_sparse_coef *out,
                   size_t cap, size_t *found);
} rb_sparse_ops;

/* ---- descriptors and registry ---- */

typedef struct rb_method {
    const char *name; /* registry name, e.g. "turboquant_mse" */
    rb_family family;
    const char *paper;   /* "arXiv:2504.19874" or "baseline" */
    const char *summary; /* one line for `rotabench list` */
    int version;         /* bumped when results change; compare refuses to diff across versions */
    const rb_param_def *params;
    size_t nparams;
    const rb_codec_ops *codec; /* exactly one of these is set, matching family (codec: codec */
    const rb_kv_ops *kv;       /* or kv) */
    const rb_layer_ops *layer;
    const rb_adapter_ops *adapter;
    const rb_sparse_ops *sparse;
} rb_method;

/* Every registered method, in registry order (methods/registry.c). */
const rb_method *const *rb_methods_all(size_t *count);
/* The method with this name, or NULL. */
const rb_method *rb_method_find(const char *name);

#endif
