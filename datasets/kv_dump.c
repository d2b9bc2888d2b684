/* KV-cache dump loaders (kv_npy, kv_safetensors): real K, V, Q tensors of shape (tokens, heads,
 * head_dim), optionally with a leading layer axis, split into evaluation and calibration tokens
 * and stored as the tensors harness/eval_kv.c reads (K, V, Q, K_calib, V_calib, kv_meta).
 *
 * Calibration tokens are either separate files/tensors (k_calib/v_calib) or `calib_tokens` taken
 * from the dump itself. The split defaults to the END of the dump (calib_from: end): the evaluated
 * cache then starts at position 0 and keeps the dump's first tokens (attention sinks), which a
 * prefix split would move into the calibration set.
 * kv_meta records the position of the first token of each split (evaluation: 0 or C;
 * calibration: T - C or 0; separate calibration files: 0), so a RoPE-aware method (rope_base > 0)
 * undoes RoPE at each token's true position whichever end the split takes.
 *
 * rope_base defaults to 0, which means "none or unknown": a dump does not say whether its keys
 * were taken before or after RoPE. rotatekv (which rotates pre-RoPE keys) then uses the keys as
 * they are, which on post-RoPE dumps measures something other than RotateKV. This stays a
 * warning (harness/runner.c, rb_run_warn_rope, while the config leaves rope_base unset), not an
 * error: pre-RoPE dumps and models without RoPE are legitimate inputs, and every other KV method
 * ignores rope_base, so a dump config without it is fine for them.
 *
 * The shape hook stages only the files' headers and runs the same checks on them (plan), so a
 * run finds a missing file, K and V of different shapes or an impossible split before its first
 * cell. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/kinds.h"

/* Where each staged tensor sits in the staging dataset. */
enum { ST_K, ST_V, ST_Q, ST_KC, ST_VC, ST_COUNT };
static const char *const stage_names[ST_COUNT] = {"K", "V", "Q", "K_calib", "V_calib"};

/* The common parameters of both loaders. prefill stops at 2^24, as positions do: the evaluator
 * reads it back from the fp32 kv_meta tensor. */
#define KV_SPLIT_PARAMS                                                                           \
    RB_PARAM_INT("calib_tokens", "0", 0, 1L << 30,                                                \
                 "calibration tokens taken from the dump itself (see calib_from); 0 = none, "     \
                 "or the separate calibration tensors when given"),                               \
        RB_PARAM_ENUM("calib_from", "end", "end|start",                                           \
                      "which end of the dump calib_tokens come from (end keeps the evaluated "    \
                      "cache at the dump's positions 0.., with its sink tokens)"),                \
        RB_PARAM_INT("tokens", "0", 0, 1L << 30,                                                  \
                     "evaluate the first N tokens left after the calibration split (0 = all)"),   \
        RB_PARAM_INT("prefill", "0", 0, 1L << 24,                                                 \
                     "tokens the KV evaluator appends in the prefill; the rest are single-token " \
                     "decode steps (0 = all tokens in the prefill)"),                             \
        RB_PARAM_FLOAT("rope_base", "0", 0, 1e12,                                                 \
                       "RoPE base the keys were rotated with, for methods that undo it (0 = "     \
                       "none or unknown: rotatekv then takes post-RoPE keys as pre-RoPE; the "    \
                       "run warns while it is unset, write 0 for keys without RoPE)")

static const rb_param_def kv_npy_params[] = {
    RB_PARAM_STRING("k_path", NULL, "keys .npy: (tokens, heads, head_dim) or (layers, ...)"),
    RB_PARAM_STRING("v_path", NULL, "values .npy, the same shape as the keys"),
    RB_PARAM_STRING("q_path", "",
                    "queries .npy (queries, q_heads, head_dim), or (layers, ...) when the keys "
                    "have the layer axis; q_heads a multiple of heads; needed by the attention "
                    "metrics"),
    RB_PARAM_STRING("k_calib_path", "", "separate calibration keys .npy (same layout)"),
    RB_PARAM_STRING("v_calib_path", "", "separate calibration values .npy (with k_calib_path)"),
    RB_PARAM_BOOL("v2_as_bf16", "false", "read void 2-byte data ('<V2') as bfloat16"),
    KV_SPLIT_PARAMS,
};

static const rb_param_def kv_st_params[] = {
    RB_PARAM_STRING("path", NULL, ".safetensors file holding the KV dump"),
    RB_PARAM_STRING("k_tensor", "K", "keys: (tokens, heads, head_dim) or (layers, ...)"),
    RB_PARAM_STRING("v_tensor", "V", "values, the same shape as the keys"),
    RB_PARAM_STRING("q_tensor", "",
                    "queries (queries, q_heads, head_dim), or (layers, ...) when the keys have "
                    "the layer axis; q_heads a multiple of heads; \"\" = none"),
    RB_PARAM_STRING("k_calib_tensor", "", "separate calibration keys (same layout)"),
    RB_PARAM_STRING("v_calib_tensor", "", "separate calibration values"),
    KV_SPLIT_PARAMS,
};

/* "(a, b, c)" of a tensor's shape. */
static const char *shape_text(const rb_tensor *t, char *buf, size_t size) {
    size_t used = (size_t) snprintf(buf, size, "(");
    for (size_t i = 0; i < t->ndim && used < size; i++)
        used += (size_t) snprintf(buf + used, size - used, "%s%zu", i ? ", " : "", t->shape[i]);
    if (used < size) snprintf(buf + used, size - used, ")");
    return buf;
}

/* Layers, tokens, heads, head_dim of a 3-d or 4-d KV tensor. */
static void axes(const rb_tensor *t, size_t a[4]) {
    size_t o = t->ndim == 4;
    a[0] = o ? t->shape[0] : 1;
    a[1] = t->shape[o];
    a[2] = t->shape[o + 1];
    a[3] = t->shape[o + 2];
}

/* Copies tokens [t0, t0 + n) of every layer of src into a new tensor `name` of ds. */
static int take_tokens(rb_dataset *ds, const char *name, const rb_tensor *src, size_t t0,
                       size_t n) {
    size_t a[4], shape[4];
    axes(src, a);
    memcpy(shape, src->shape, sizeof shape);
    shape[src->ndim == 4] = n;
    rb_tensor *t;
    int rc = rb_dataset_add(ds, name, src->ndim, shape, &t);
    if (rc) return rc;
    size_t row = a[2] * a[3];
    for (size_t l = 0; l < a[0]; l++)
        if (n)
            memcpy(t->data + l * n * row, src->data + (l * a[1] + t0) * row,
                   n * row * sizeof(float));
    return RB_OK;
}

/* Where finish takes the evaluated and the calibration tokens from. */
typedef struct kv_split {
    size_t n;       /* evaluated tokens, from token e0 of the dump */
    size_t e0, c0;  /* the first token of each split in the dump (separate calibration: c0 = 0) */
    size_t calib;   /* calibration tokens: calib_tokens of the dump or the separate tensors' */
    size_t prefill; /* tokens the evaluator appends in the prefill */
} kv_split;

/* Validates the staged tensors (src[i] NULL when absent; file[i] names where each came from):
 * only their shapes and the parameters, so that it serves the headers as well as the data. */
static int plan(const char *kind, const rb_params *p, const rb_tensor *const src[ST_COUNT],
                const char *const file[ST_COUNT], kv_split *sp) {
    const rb_tensor *K = src[ST_K], *V = src[ST_V], *Q = src[ST_Q];
    char s1[96], s2[96];
    size_t ka[4], a[4];
    if (K->ndim != 3 && K->ndim != 4)
        return rb_error_set(RB_EINVAL,
                            "%s: %s: keys have shape %s; expected (tokens, heads, head_dim), "
                            "optionally with a leading layer axis",
                            kind, file[ST_K], shape_text(K, s1, sizeof s1));
    axes(K, ka);
    if (V->ndim != K->ndim || memcmp(V->shape, K->shape, K->ndim * sizeof(size_t)))
        return rb_error_set(RB_EINVAL, "%s: shape mismatch: keys %s are %s but values %s are %s",
                            kind, file[ST_K], shape_text(K, s1, sizeof s1), file[ST_V],
                            shape_text(V, s2, sizeof s2));
    if (!ka[1] || !ka[2] || !ka[3] || !ka[0])
        return rb_error_set(RB_EINVAL, "%s: %s: the KV dump is empty (shape %s)", kind, file[ST_K],
                            shape_text(K, s1, sizeof s1));
    if (Q) {
        axes(Q, a);
        if (Q->ndim != K->ndim || a[0] != ka[0] || a[3] != ka[3]) {
            /* The expected shape spelled out: with a layer axis on the keys, the queries carry
             * the same one (one query set per layer). */
            char want[96];
            if (K->ndim == 4)
                snprintf(want, sizeof want, "(layers = %zu, queries, q_heads, head_dim = %zu)",
                         ka[0], ka[3]);
            else
                snprintf(want, sizeof want, "(queries, q_heads, head_dim = %zu)", ka[3]);
            return rb_error_set(
                RB_EINVAL, "%s: %s: queries have shape %s; with keys %s they must be %s", kind,
                file[ST_Q], shape_text(Q, s1, sizeof s1), shape_text(K, s2, sizeof s2), want);
        }
        if (!a[1])
            return rb_error_set(RB_EINVAL, "%s: %s: the queries have no tokens (shape %s)", kind,
                                file[ST_Q], shape_text(Q, s1, sizeof s1));
        if (!a[2] || a[2] % ka[2])
            return rb_error_set(RB_EINVAL,
                                "%s: %s: %zu query heads is not a multiple of the keys' %zu KV "
                                "heads (%s)",
                                kind, file[ST_Q], a[2], ka[2], file[ST_K]);
    }
    size_t C = (size_t) rb_params_int(p, "calib_tokens"), T = ka[1];
    size_t want = (size_t) rb_params_int(p, "tokens"),
           prefill = (size_t) rb_params_int(p, "prefill");
    int from_end = rb_params_is(p, "calib_from", "end");
    size_t calib = C; /* calibration tokens: the split's, or the separate tensors' */
    if ((src[ST_KC] == NULL) != (src[ST_VC] == NULL))
        return rb_error_set(RB_EINVAL, "%s: calibration keys and values come together (%s given)",
                            kind, src[ST_KC] ? file[ST_KC] : file[ST_VC]);
    if (src[ST_KC]) {
        const rb_tensor *Kc = src[ST_KC], *Vc = src[ST_VC];
        if (C)
            return rb_error_set(RB_EINVAL,
                                "%s: calib_tokens = %zu and separate calibration tensors (%s) "
                                "both given; choose one",
                                kind, C, file[ST_KC]);
        axes(Kc, a);
        calib = a[1];
        if (Kc->ndim != K->ndim || a[0] != ka[0] || a[2] != ka[2] || a[3] != ka[3])
            return rb_error_set(RB_EINVAL,
                                "%s: shape mismatch: calibration keys %s are %s, keys %s are %s "
                                "(all but the token axis must agree)",
                                kind, file[ST_KC], shape_text(Kc, s1, sizeof s1), file[ST_K],
                                shape_text(K, s2, sizeof s2));
        if (Vc->ndim != Kc->ndim || memcmp(Vc->shape, Kc->shape, Kc->ndim * sizeof(size_t)))
            return rb_error_set(RB_EINVAL,
                                "%s: shape mismatch: calibration keys %s are %s but calibration "
                                "values %s are %s",
                                kind, file[ST_KC], shape_text(Kc, s1, sizeof s1), file[ST_VC],
                                shape_text(Vc, s2, sizeof s2));
        if (!calib) /* not "no calibration": the files were given */
            return rb_error_set(RB_EINVAL, "%s: %s: the calibration keys have no tokens (shape %s)",
                                kind, file[ST_KC], shape_text(Kc, s1, sizeof s1));
    } else if (C >= T) {
        return rb_error_set(RB_EINVAL,
                            "%s: %s: too few tokens for the calibration split: calib_tokens = %zu "
                            "leaves none of its %zu tokens to evaluate",
                            kind, file[ST_K], C, T);
    }
    size_t avail = T - C, n = want ? want : avail;
    if (n > avail)
        return rb_error_set(RB_EINVAL,
                            "%s: %s: tokens = %zu but only %zu remain after %zu calibration tokens",
                            kind, file[ST_K], want, avail, C);
    if (prefill > n)
        return rb_error_set(RB_EINVAL, "%s: prefill = %zu exceeds the %zu evaluated tokens", kind,
                            prefill, n);
    size_t e0 = from_end ? 0 : C, c0 = from_end ? T - C : 0;
    if (!C || src[ST_KC]) c0 = 0; /* no split off this dump: nothing to place */
    if (rb_params_float(p, "rope_base") > 0 && (e0 > (1u << 24) || c0 > (1u << 24)))
        return rb_error_set(RB_EINVAL,
                            "%s: %s: a split starting at token %zu: positions above 2^24 are not "
                            "exact in kv_meta's fp32 (use separate calibration files)",
                            kind, file[ST_K], e0 > c0 ? e0 : c0);
    *sp = (kv_split){.n = n, .e0 = e0, .c0 = c0, .calib = calib, .prefill = prefill};
    return RB_OK;
}

/* The first element of a staged tensor beyond RB_KV_ABS_MAX, named by its file and its (layer,)
 * token, head and channel. Every token of every tensor is checked, those a `tokens:` limit
 * leaves out of the evaluation too: the file is what is wrong. After plan: the shapes are valid.
 * Only the data show it, so the shape hook (a dry run) cannot. */
static int check_range(const char *kind, const rb_tensor *const src[ST_COUNT],
                       const char *const file[ST_COUNT]) {
    for (int i = 0; i < ST_COUNT; i++) {
        const rb_tensor *t = src[i];
        if (!t) continue;
        size_t n = rb_tensor_numel(t), a[4];
        axes(t, a);
        for (size_t e = 0; e < n; e++) {
            if (fabs((double) t->data[e]) <= RB_KV_ABS_MAX) continue;
            size_t c = e % a[3], h = e / a[3] % a[2], tok = e / (a[3] * a[2]) % a[1],
                   l = e / (a[3] * a[2] * a[1]);
            char layer[48] = "";
            if (a[0] > 1) snprintf(layer, sizeof layer, "layer %zu, ", l);
            return rb_error_set(RB_ENUMERIC,
                                "%s: %s: %s at %stoken %zu, head %zu, channel %zu is %g, beyond "
                                "the +-2^48 (%.3g) that KV data may hold: past it fp32 overflows "
                                "in the scores q.k and in the methods' rotations (a corrupt or "
                                "mislabelled dump?)",
                                kind, file[i], stage_names[i], layer, tok, h, c,
                                (double) t->data[e], RB_KV_ABS_MAX);
        }
    }
    return RB_OK;
}

/* Fills ds from the staged tensors (see plan) with the evaluation and calibration splits and
 * kv_meta. */
static int finish(const char *kind, const rb_params *p, const rb_tensor *const src[ST_COUNT],
                  const char *const file[ST_COUNT], rb_dataset *ds) {
    const rb_tensor *K = src[ST_K], *V = src[ST_V], *Q = src[ST_Q];
    kv_split sp;
    size_t a[4];
    int rc = plan(kind, p, src, file, &sp);
    if (!rc) rc = check_range(kind, src, file);
    if (!rc) rc = take_tokens(ds, "K", K, sp.e0, sp.n);
    if (!rc) rc = take_tokens(ds, "V", V, sp.e0, sp.n);
    if (!rc && Q) {
        axes(Q, a);
        rc = take_tokens(ds, "Q", Q, 0, a[1]);
    }
    if (!rc && (src[ST_KC] || sp.calib)) {
        rc = take_tokens(ds, "K_calib", src[ST_KC] ? src[ST_KC] : K, sp.c0, sp.calib);
        if (!rc) rc = take_tokens(ds, "V_calib", src[ST_VC] ? src[ST_VC] : V, sp.c0, sp.calib);
    }
    rb_tensor *meta;
    size_t mshape[1] = {4};
    if (!rc) rc = rb_dataset_add(ds, "kv_meta", 1, mshape, &meta);
    if (rc) return rc;
    meta->data[0] = (float) sp.prefill;
    meta->data[1] = (float) rb_params_float(p, "rope_base");
    /* Where the two splits sit in the dump's sequence (separate calibration files start at 0). */
    meta->data[2] = (float) sp.e0;
    meta->data[3] = (float) sp.c0;
    rb_dataset_hash(ds);
    return RB_OK;
}

/* ---- staging: the tensors of a dump, or only their headers ---- */

/* What a loader stages from its files: with `data` each tensor is read into `stage`; without, for
 * the shape hook, only its header's shape goes into head[i] (data NULL), which is all plan
 * reads. src[i] points at tensor i (NULL when absent), file[i] names where it came from. */
typedef struct kv_src {
    int data;
    rb_dataset stage;
    rb_tensor head[ST_COUNT];
    const rb_tensor *src[ST_COUNT];
    const char *file[ST_COUNT];
    char names[ST_COUNT][RB_PARAM_TEXT_MAX + 160]; /* kv_safetensors: "path['tensor']" */
} kv_src;

typedef int (*kv_stage_fn)(const rb_params *p, kv_src *s);

/* Tensor i's shape from its header. */
static void head_put(kv_src *s, int i, size_t ndim, const size_t *shape) {
    rb_tensor *t = &s->head[i];
    snprintf(t->name, sizeof t->name, "%s", stage_names[i]);
    t->ndim = ndim;
    memcpy(t->shape, shape, ndim * sizeof *shape);
    s->src[i] = t;
}

static int kv_load(const char *kind, kv_stage_fn stage, const rb_params *p, rb_dataset *ds) {
    kv_src s = {.data = 1};
    int rc = stage(p, &s);
    if (!rc) rc = finish(kind, p, s.src, s.file, ds);
    rb_dataset_free(&s.stage);
    if (rc) rb_dataset_free(ds);
    return rc;
}

/* The shape hook of both loaders: the headers through plan, so that every error load would give
 * before it copies a token is the same here, but for the values' range (check_range), which only
 * the data show; the shape is what load's tensors will be. */
static int kv_shape(const char *kind, kv_stage_fn stage, const rb_params *p, rb_dataset_shape *sh) {
    kv_src s = {.data = 0};
    kv_split sp;
    int rc = stage(p, &s);
    if (!rc) rc = plan(kind, p, s.src, s.file, &sp);
    if (rc) return rc;
    size_t a[4];
    axes(s.src[ST_K], a);
    sh->heads = a[2];
    sh->head_dim = a[3];
    sh->tokens = sp.n;
    sh->calib_tokens = sp.calib;
    /* Q's token axis: finish keeps every query token. */
    sh->queries = 0;
    if (s.src[ST_Q]) {
        axes(s.src[ST_Q], a);
        sh->queries = a[1];
    }
    sh->rope_base = rb_params_float(p, "rope_base");
    return RB_OK;
}

/* ---- kv_npy ---- */

/* Stages one .npy file as tensor i (its data, or only its header). */
static int npy_stage(kv_src *s, int i, const char *path, unsigned flags) {
    rb_npy_array a;
    int rc =
        s->data ? rb_npy_read(path, RB_NPY_F32, flags, &a) : rb_npy_read_header(path, flags, &a);
    if (rc) return rc; /* rb_npy_read's messages name the file */
    if (a.ndim != 3 && a.ndim != 4) {
        rc = rb_error_set(RB_EINVAL,
                          "%s: %d axes; a KV dump is (tokens, heads, head_dim), optionally with "
                          "a leading layer axis",
                          path, a.ndim);
    } else if (!s->data) {
        head_put(s, i, (size_t) a.ndim, a.shape);
    } else {
        rb_tensor *t;
        rc = rb_dataset_add(&s->stage, stage_names[i], (size_t) a.ndim, a.shape, &t);
        if (!rc && a.count) memcpy(t->data, a.data, a.count * sizeof(float));
        if (rc)
            rc = rb_error_set(rc, "%s: %s", path, rb_error_detail());
        else
            s->src[i] = t;
    }
    rb_npy_free(&a);
    return rc;
}

static int npy_stage_all(const rb_params *p, kv_src *s) {
    static const char *const keys[ST_COUNT] = {"k_path", "v_path", "q_path", "k_calib_path",
                                               "v_calib_path"};
    unsigned flags = RB_NPY_CHECK_FINITE | RB_NPY_V2_KEY |
                     (rb_params_bool(p, "v2_as_bf16") ? RB_NPY_V2_AS_BF16 : 0);
    int rc = RB_OK;
    for (int i = 0; i < ST_COUNT && !rc; i++) {
        s->file[i] = rb_params_str(p, keys[i]);
        if (!*s->file[i]) {
            if (i <= ST_V)
                rc = rb_error_set(RB_EINVAL, "kv_npy: parameter '%s' is required", keys[i]);
            continue;
        }
        rc = npy_stage(s, i, s->file[i], flags);
    }
    return rc;
}

static int load_kv_npy(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    (void) seed;
    return kv_load("kv_npy", npy_stage_all, p, ds);
}

static int shape_kv_npy(const rb_params *p, rb_dataset_shape *s) {
    return kv_shape("kv_npy", npy_stage_all, p, s);
}

const rb_dataset_kind rb_dataset_kv_npy = {
    "kv_npy",
    "a real KV cache from .npy dumps: K, V (tokens x heads x head_dim, optional leading layer "
    "axis), optional Q and calibration tokens (a split of the dump or separate files)",
    RB_PARAMS_OF(kv_npy_params), load_kv_npy, shape_kv_npy};

/* ---- kv_safetensors ---- */

/* Stages tensor `tensor` of path as tensor i: its data, read through the safetensors kind (its
 * checks and messages), or its header's entry. */
static int st_stage(kv_src *s, int i, const char *path, const char *tensor) {
    if (!s->data) {
        rb_safetensors_entry e;
        int rc = rb_safetensors_read_header(path, tensor, &e);
        if (!rc) head_put(s, i, e.ndim, e.shape);
        return rc;
    }
    rb_params sp;
    rb_dataset one = {0};
    int rc = rb_params_init(&sp, rb_dataset_safetensors.params, rb_dataset_safetensors.nparams);
    if (!rc) rc = rb_params_set(&sp, "path", path);
    if (!rc) rc = rb_params_set(&sp, "tensor", tensor);
    if (!rc) rc = rb_params_set(&sp, "as", stage_names[i]);
    if (!rc) rc = rb_dataset_safetensors.load(&sp, 0, &one);
    if (rc) return rc;
    if (s->stage.ntensors == RB_DATASET_TENSORS_MAX) {
        rb_dataset_free(&one);
        return rb_error_set(RB_EINVAL, "kv_safetensors: too many tensors");
    }
    /* Move the tensor (and its buffer) over. */
    s->stage.tensors[s->stage.ntensors] = one.tensors[0];
    s->src[i] = &s->stage.tensors[s->stage.ntensors++];
    one.ntensors = 0;
    rb_dataset_free(&one);
    return RB_OK;
}

static int st_stage_all(const rb_params *p, kv_src *s) {
    static const char *const keys[ST_COUNT] = {"k_tensor", "v_tensor", "q_tensor", "k_calib_tensor",
                                               "v_calib_tensor"};
    const char *path = rb_params_str(p, "path");
    if (!*path) return rb_error_set(RB_EINVAL, "kv_safetensors: parameter 'path' is required");
    int rc = RB_OK;
    for (int i = 0; i < ST_COUNT && !rc; i++) {
        const char *tn = rb_params_str(p, keys[i]);
        snprintf(s->names[i], sizeof s->names[i], "%s['%s']", path, tn);
        s->file[i] = s->names[i];
        if (!*tn) {
            if (i <= ST_V)
                rc = rb_error_set(RB_EINVAL, "kv_safetensors: parameter '%s' is required", keys[i]);
            continue;
        }
        rc = st_stage(s, i, path, tn);
    }
    return rc;
}

static int load_kv_st(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    (void) seed;
    return kv_load("kv_safetensors", st_stage_all, p, ds);
}

static int shape_kv_st(const rb_params *p, rb_dataset_shape *s) {
    return kv_shape("kv_safetensors", st_stage_all, p, s);
}

const rb_dataset_kind rb_dataset_kv_safetensors = {
    "kv_safetensors",
    "a real KV cache from one .safetensors file: tensors K, V (tokens x heads x head_dim, "
    "optional leading layer axis), optional Q and calibration tokens",
    RB_PARAMS_OF(kv_st_params), load_kv_st, shape_kv_st};
