/* sparsefht: noiseless sparse Walsh-Hadamard recovery (Scheibler, Haghighatshoar, Vetterli, IEEE
 * T-IT 2015): C stages of B = 2^b bins by subsampled FWHTs, one unmodulated hash plus one delay
 * per bit outside the bin index (P = n - b + 1), the ratio ("OFDM trick") bin test, and
 * peeling. Exactly C B (n - b + 1) queries. Reimplemented from sparse_and_adapters.md 1.1-1.4. */
#include <math.h>

#include "methods/sparse_common.h"

enum { STREAM_HASH = 0x53464854 }; /* "SFHT": stage c draws its map from stream STREAM_HASH + c */

static const rb_param_def sfht_params[] = {
    RB_PARAM_INT("b", "6", 1, RB_SPARSE_LOG2B_MAX, "B = 2^b bins per stage (B <= N)"),
    RB_PARAM_INT("stages", "3", 1, RB_SPARSE_STAGES_MAX, "C: hashing stages"),
    RB_PARAM_ENUM("hashing", "random", "random|cyclic",
                  "random: a uniform invertible GF(2) map per stage (sfht_random); cyclic: stage "
                  "c bins on bits [a_c, a_c + b) with a_c = round(c n / C) (sfht_det_opt)"),
    RB_PARAM_INT("max_iter", "20", 1, 100000, "peeling passes at most"),
    RB_PARAM_FLOAT("zero_tol", "1e-5", 0, 1e30, "zero-ton: every |U_p| below this"),
    RB_PARAM_FLOAT("ratio_tol", "1e-8", 0, 1, "single-ton: every ||U_p / U_0| - 1| below this"),
    RB_SPARSE_EVAL_PARAMS,
};

typedef struct sfht_test {
    double zero_tol, ratio_tol;
} sfht_test;

/* Zero-ton when every delay is (near) zero; single-ton when every ratio to the unmodulated bin
 * is +-1, the sign of ratio 1 + i giving bit b + i of k'; anything else is a multi-ton. */
static rb_bin_kind ratio_test(void *ctx, const rb_sparse_plan *pl, unsigned c, size_t j,
                              const double *u, uint64_t *kprime, double *alpha) {
    (void) c;
    const sfht_test *t = ctx;
    int zero = 1;
    for (unsigned p = 0; p < pl->delays; p++)
        if (fabs(u[p]) >= t->zero_tol) zero = 0;
    if (zero) return RB_BIN_ZERO;
    if (fabs(u[0]) < t->zero_tol) return RB_BIN_MULTI;
    uint64_t k = j;
    for (unsigned p = 1; p < pl->delays; p++) {
        double r = u[p] / u[0];
        if (fabs(fabs(r) - 1) >= t->ratio_tol) return RB_BIN_MULTI;
        if (r < 0) k |= UINT64_C(1) << (pl->b + p - 1);
    }
    *kprime = k;
    *alpha = u[0];
    return RB_BIN_SINGLE;
}

static int sfht_recover(const rb_params *p, rb_signal_oracle *o, uint64_t seed, rb_sparse_coef *out,
                        size_t cap, size_t *found) {
    unsigned n = o->log2n, b = (unsigned) rb_params_int(p, "b"),
             C = (unsigned) rb_params_int(p, "stages");
    *found = 0;
    rb_sparse_plan pl;
    int rc = rb_sparse_plan_init(&pl, "sparsefht", n, b, C, n - b + 1);
    if (rc) return rc;
    int cyclic = rb_params_is(p, "hashing", "cyclic");
    for (unsigned c = 0; c < C; c++) {
        if (cyclic)
            rb_gf2_rotation(n, (2 * c * n + C) / (2 * C) % n, &pl.A[c]);
        else
            rb_gf2_random_invertible(seed, STREAM_HASH + c, n, &pl.A[c]);
        for (unsigned i = 0; i + b < n; i++)
            pl.delay[c * pl.delays + 1 + i] = UINT64_C(1) << (b + i);
    }
    sfht_test t = {rb_params_float(p, "zero_tol"), rb_params_float(p, "ratio_tol")};
    rb_sparse_found f = {0};
    size_t left;
    rc = rb_sparse_plan_maps(&pl);
    if (!rc) rc = rb_sparse_observe(&pl, o);
    if (!rc)
        rc =
            rb_sparse_peel(&pl, ratio_test, &t, (unsigned) rb_params_int(p, "max_iter"), &f, &left);
    if (!rc) rc = rb_sparse_emit(&f, t.zero_tol, out, cap, found);
    rb_sparse_found_free(&f);
    rb_sparse_plan_free(&pl);
    return rc;
}

static const rb_sparse_ops sfht_ops = {sfht_recover};

const rb_method rb_method_sparsefht = {
    .name = "sparsefht",
    .family = RB_FAMILY_SPARSE,
    .paper = "IEEE T-IT 61(4):2115 (2015), arXiv:1402.2587",
    .summary = "noiseless sparse FWHT: C stages x 2^b bins, n - b + 1 delays, ratio bin test, "
               "peeling",
    .version = 2,
    .params = sfht_params,
    .nparams = sizeof sfht_params / sizeof sfht_params[0],
    .sparse = &sfht_ops,
};
