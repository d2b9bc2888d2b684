/* Shared machinery of the sparse Walsh-Hadamard methods (sparsefht, spright): GF(2) index maps,
 * bin observations through subsampled FWHTs, and the peeling decoder (sparse_and_adapters.md
 * section 1). Private to methods/; the evaluator-level parameters every sparse method carries. */
#ifndef RB_SPARSE_COMMON_H
#define RB_SPARSE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "methods/method.h"

enum { RB_SPARSE_STAGES_MAX = 16, RB_SPARSE_LOG2B_MAX = 24 };

/* The parameters the sparse evaluator (harness/eval_sparse.c) reads from every sparse method's
 * table: the evaluator has no table of its own, and these belong to the cell. */
#define RB_SPARSE_EVAL_PARAMS                                                                     \
    RB_PARAM_INT("trials", "1", 1, 1000000,                                                       \
                 "evaluator: independent trials, each with a fresh signal seed and method seed; " \
                 "success is their fraction, with a Wilson interval"),                            \
        RB_PARAM_FLOAT("tol", "0.1", 0, 1e30,                                                     \
                       "evaluator: a trial succeeds when the support is exact and every "         \
                       "|X_hat - X| <= tol |X| on it")

/* ---- GF(2) maps on n-bit indices (n <= 64): column i is the image of e_i ---- */
typedef struct rb_gf2_mat {
    unsigned n;
    uint64_t col[64];
} rb_gf2_mat;

uint64_t rb_gf2_apply(const rb_gf2_mat *a, uint64_t v);   /* A v */
uint64_t rb_gf2_apply_t(const rb_gf2_mat *a, uint64_t v); /* A^T v */
/* inv = A^-1; returns 0, or -1 when A is singular. */
int rb_gf2_inverse(const rb_gf2_mat *a, rb_gf2_mat *inv);
void rb_gf2_transpose(const rb_gf2_mat *a, rb_gf2_mat *t);
/* A v = rotl_n(v, shift): the deterministic cyclic hashing of SparseFHT's det_opt. */
void rb_gf2_rotation(unsigned n, unsigned shift, rb_gf2_mat *a);
/* A uniformly random invertible matrix (rejection: draw, keep the first nonsingular one), from
 * Philox stream `stream` of seed. */
void rb_gf2_random_invertible(uint64_t seed, uint64_t stream, unsigned n, rb_gf2_mat *a);

/* ---- a hashing plan: C stages of B = 2^b bins and P delays ----
 * Stage c reads x[A_c (l ^ d_{c,p})] for l in [0, B) (l in the low b bits) and p < P: one
 * B-point FWHT per delay gives U_c[j][p] = sum over k' = A_c^T k with low bits j of
 * X[k] (-1)^<d_{c,p}, k'>. So in the k' coordinates the bin is the low b bits and the delays
 * reveal the other bits; k = A_c^-T k'. */
typedef struct rb_sparse_plan {
    unsigned n, b, stages, delays; /* log2 N, log2 B, C, P */
    size_t bins;                   /* B */
    rb_gf2_mat A[RB_SPARSE_STAGES_MAX], At[RB_SPARSE_STAGES_MAX], Ainv_t[RB_SPARSE_STAGES_MAX];
    uint64_t *delay;     /* stages x delays, in k' coordinates */
    double *U;           /* stages x bins x delays */
    unsigned char *done; /* stages x bins: the bin is resolved (zero-ton or peeled) */
} rb_sparse_plan;

/* Allocates delays (zeroed), observations and flags; the caller then sets A[c] and delays. */
int rb_sparse_plan_init(rb_sparse_plan *pl, const char *who, unsigned n, unsigned b,
                        unsigned stages, unsigned delays);
void rb_sparse_plan_free(rb_sparse_plan *pl);
/* Computes A^T and A^-T of every stage (RB_EINVAL if some A is singular: a programmer error). */
int rb_sparse_plan_maps(rb_sparse_plan *pl);
/* Queries C * B * P samples (one oracle call per stage) and fills U with B-point FWHTs
 * (rb_fwht_f64, batched over the delays), scaled by sqrt(N) / B. */
int rb_sparse_observe(rb_sparse_plan *pl, rb_signal_oracle *o);
/* Bin of frequency k in stage c, and the sign exponent <d_{c,p}, A_c^T k> (0 or 1). */
size_t rb_sparse_bin(const rb_sparse_plan *pl, unsigned c, uint64_t k);
int rb_sparse_parity(const rb_sparse_plan *pl, unsigned c, unsigned p, uint64_t k);

typedef enum rb_bin_kind { RB_BIN_ZERO, RB_BIN_SINGLE, RB_BIN_MULTI } rb_bin_kind;

/* A bin test: looks at u = U_c[j][0..P) and says what the bin holds; for a single-ton, its k'
 * (the low b bits equal to j) and amplitude. */
typedef rb_bin_kind (*rb_bin_test)(void *ctx, const rb_sparse_plan *pl, unsigned c, size_t j,
                                   const double *u, uint64_t *kprime, double *alpha);

/* A growing set of recovered coefficients keyed by index (found twice: the values add). */
typedef struct rb_sparse_found {
    rb_sparse_coef *v;
    size_t count, cap;
    size_t *slot; /* open-addressing table of v indices + 1 */
    size_t slots;
} rb_sparse_found;

void rb_sparse_found_free(rb_sparse_found *f);

/* Peeling: up to max_iter passes over every unresolved bin of every stage; each single-ton
 * (k, alpha) is recorded and alpha (-1)^<d_p, A^T k> subtracted from its bin in every stage
 * (its own bin included, which leaves it zero). Stops after a pass that finds no single-ton.
 * *unresolved = bins neither zero-tons nor peeled at the end. */
int rb_sparse_peel(rb_sparse_plan *pl, rb_bin_test test, void *ctx, unsigned max_iter,
                   rb_sparse_found *found, size_t *unresolved);

/* Copies the found coefficients with |value| > zero to out in ascending index order, at most
 * cap of them (the largest magnitudes when there are more); *nfound = how many were written.
 * zero is the bin test's own zero level: a wrong single-ton (a multi-ton that the delays cannot
 * tell from one) is later cancelled by peeling its ghost, and with noise the two estimates leave
 * a residue that is not a coefficient. */
int rb_sparse_emit(rb_sparse_found *f, double zero, rb_sparse_coef *out, size_t cap,
                   size_t *nfound);

/* Keeps the cap largest |value| of v[0..m) (ties: lower index first) and sorts the kept ones by
 * index, in place; returns how many were kept. */
size_t rb_sparse_keep(rb_sparse_coef *v, size_t m, size_t cap);

/* The common parameter checks: B = 2^b <= N, stages in range. Errors name the method. */
int rb_sparse_check(const char *who, unsigned n, unsigned b, unsigned stages);

#endif
