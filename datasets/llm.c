/* LLM-like tensors: activations with persistent outlier channels and rare massive activations
 * (llm_activations), and a linear layer whose weight has outlier input columns (linear_layer),
 * after layer_ptq.md section 1 and section 3 claims 2-3. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/kinds.h"
#include "datasets/synth.h"

/* Philox streams (ASCII tags). Element index = row * channels + channel. */
enum {
    STREAM_X = 0x41435458,    /* "ACTX": activations */
    STREAM_Q = 0x41435451,    /* "ACTQ": activation queries */
    STREAM_PICK = 0x5049434b, /* "PICK": outlier (and massive) channel choice */
    STREAM_W = 0x57454947,    /* "WEIG": weights */
    STREAM_LX = 0x4c41594b    /* "LAYK": layer activations */
};

/* Gaussian rows with the picked channels multiplied by `scale`. */
static int gaussian_rows(rb_dataset *ds, const char *name, size_t rows, size_t cols, uint64_t seed,
                         uint64_t stream, double base_scale, const size_t *pick, size_t npick,
                         double scale, rb_tensor **out) {
    rb_tensor *t;
    size_t shape[2] = {rows, cols};
    int rc = rb_dataset_add(ds, name, 2, shape, &t);
    if (rc) return rc;
    rb_rng_normal_f32(seed, stream, 0, rows * cols, t->data);
    if (base_scale != 1)
        for (size_t e = 0; e < rows * cols; e++) t->data[e] = (float) (t->data[e] * base_scale);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < npick; j++) {
            float *v = &t->data[r * cols + pick[j]];
            *v = (float) (*v * scale);
        }
    if (out) *out = t;
    return RB_OK;
}

/* ---- llm_activations ---- */

static const rb_param_def act_params[] = {
    RB_PARAM_INT("tokens", "200", 1, 1L << 24, "rows (tokens)"),
    RB_PARAM_INT("channels", "256", 1, 1L << 24, "columns (hidden channels)"),
    RB_PARAM_INT("outlier_channels", "4", 0, 1L << 24,
                 "persistent outlier channels (distinct, chosen from the seed)"),
    RB_PARAM_FLOAT("outlier_scale", "20", 0, 1e6, "standard deviation of the outlier channels"),
    RB_PARAM_INT("massive_every", "50", 0, 1L << 24,
                 "a massive activation at every token t with t % massive_every == 0 (0 = none)"),
    RB_PARAM_FLOAT("massive_value", "400", -1e9, 1e9, "value of the massive activations"),
    RB_PARAM_INT("queries", "0", 0, 1L << 24,
                 "query rows: more tokens of the same model, without massive activations"),
};

/* The parameters that must go together, for load and the shape hook alike (a dry run finds
 * them before the first cell). */
static int activations_check(const rb_params *p) {
    size_t channels = (size_t) rb_params_int(p, "channels"),
           nout = (size_t) rb_params_int(p, "outlier_channels");
    if (nout > channels)
        return rb_error_set(RB_EINVAL,
                            "llm_activations: outlier_channels = %zu exceeds channels = %zu", nout,
                            channels);
    return RB_OK;
}

/* x[t, c] ~ N(0, 1), times outlier_scale in the outlier channels; x[t, m] = massive_value for
 * t = 0, E, 2E, ... (E = massive_every), in one channel m: the next channel of the same seeded
 * permutation after the outlier channels (so distinct from them), or the first outlier channel
 * when every channel is an outlier. Massive activations in real models sit in a few fixed
 * channels and at the first token, hence t % E == 0. */
static int load_activations(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    size_t tokens = (size_t) rb_params_int(p, "tokens"),
           channels = (size_t) rb_params_int(p, "channels"),
           nout = (size_t) rb_params_int(p, "outlier_channels"),
           every = (size_t) rb_params_int(p, "massive_every"),
           nq = (size_t) rb_params_int(p, "queries");
    double scale = rb_params_float(p, "outlier_scale"),
           massive = rb_params_float(p, "massive_value");
    int rc = activations_check(p);
    if (rc) return rc;
    size_t npick = nout < channels ? nout + 1 : nout;
    size_t *pick = malloc((npick ? npick : 1) * sizeof *pick);
    if (!pick) return rb_error_set(RB_ENOMEM, "llm_activations: no memory");
    rb_tensor *x;
    rc = rb_pick_distinct(seed, STREAM_PICK, channels, npick, pick);
    if (!rc)
        rc = gaussian_rows(ds, "x", tokens, channels, seed, STREAM_X, 1, pick, nout, scale, &x);
    if (!rc && every) {
        size_t m = nout < channels ? pick[nout] : pick[0];
        for (size_t t = 0; t < tokens; t += every) x->data[t * channels + m] = (float) massive;
    }
    if (!rc && nq)
        rc = gaussian_rows(ds, "queries", nq, channels, seed, STREAM_Q, 1, pick, nout, scale, NULL);
    free(pick);
    if (rc) {
        rb_dataset_free(ds);
        return rc;
    }
    rb_dataset_hash(ds);
    return RB_OK;
}

/* A codec codes each token's row of channels. */
static int activations_shape(const rb_params *p, rb_dataset_shape *s) {
    s->dim = (size_t) rb_params_int(p, "channels");
    s->rows = (size_t) rb_params_int(p, "tokens");
    s->queries = (size_t) rb_params_int(p, "queries");
    return activations_check(p);
}

const rb_dataset_kind rb_dataset_llm_activations = {
    "llm_activations",
    "tokens x channels activations (x): Gaussian, persistent outlier channels, massive "
    "activations every N tokens; optional queries",
    RB_PARAMS_OF(act_params), load_activations, activations_shape};

/* ---- linear_layer ---- */

static const rb_param_def layer_params[] = {
    RB_PARAM_INT("out", "64", 1, 1L << 24, "output features (rows of W)"),
    RB_PARAM_INT("in", "256", 1, 1L << 24, "input features (columns of W, channels of X)"),
    RB_PARAM_INT("tokens", "200", 1, 1L << 24, "rows of X"),
    RB_PARAM_INT("outlier_columns", "4", 0, 1L << 24,
                 "outlier input channels (distinct, chosen from the seed)"),
    RB_PARAM_FLOAT("outlier_scale", "25", 0, 1e6, "factor on the outlier columns of W"),
    RB_PARAM_FLOAT("act_outlier_scale", "20", 0, 1e6,
                   "factor on the same channels of X (1 = no activation outliers)"),
};

/* The parameters that must go together, for load and the shape hook alike. */
static int layer_check(const rb_params *p) {
    size_t in = (size_t) rb_params_int(p, "in"),
           nout = (size_t) rb_params_int(p, "outlier_columns");
    if (nout > in)
        return rb_error_set(RB_EINVAL, "linear_layer: outlier_columns = %zu exceeds in = %zu", nout,
                            in);
    return RB_OK;
}

/* W and X are no vectors of a codec ('x') nor a KV cache: only the check. */
static int layer_shape(const rb_params *p, rb_dataset_shape *s) {
    (void) s;
    return layer_check(p);
}

/* W[o, i] ~ N(0, 1 / in), times outlier_scale in the outlier columns; X[t, i] ~ N(0, 1), times
 * act_outlier_scale in the same input channels. Defaults: layer_ptq.md section 3 claim 3
 * (64 x 256, 4 columns x 25) and the section 1 activation scale (x 20). */
static int load_layer(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    size_t out = (size_t) rb_params_int(p, "out"), in = (size_t) rb_params_int(p, "in"),
           tokens = (size_t) rb_params_int(p, "tokens"),
           nout = (size_t) rb_params_int(p, "outlier_columns");
    int rc = layer_check(p);
    if (rc) return rc;
    size_t *pick = malloc((nout ? nout : 1) * sizeof *pick);
    if (!pick) return rb_error_set(RB_ENOMEM, "linear_layer: no memory");
    rc = rb_pick_distinct(seed, STREAM_PICK, in, nout, pick);
    if (!rc)
        rc = gaussian_rows(ds, "W", out, in, seed, STREAM_W, 1.0 / sqrt((double) in), pick, nout,
                           rb_params_float(p, "outlier_scale"), NULL);
    if (!rc)
        rc = gaussian_rows(ds, "X", tokens, in, seed, STREAM_LX, 1, pick, nout,
                           rb_params_float(p, "act_outlier_scale"), NULL);
    free(pick);
    if (rc) {
        rb_dataset_free(ds);
        return rc;
    }
    rb_dataset_hash(ds);
    return RB_OK;
}

const rb_dataset_kind rb_dataset_linear_layer = {
    "linear_layer",
    "a linear layer: weight W (out x in, Gaussian / sqrt(in)) with outlier input columns, and "
    "activations X (tokens x in) with the same outlier channels",
    RB_PARAMS_OF(layer_params), load_layer, layer_shape};
