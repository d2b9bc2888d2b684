/* Shared machinery of the sparse Walsh-Hadamard methods: GF(2) maps, subsampled-FWHT bin
 * observations and the peeling decoder (see methods/sparse_common.h). */
#include "methods/sparse_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parity(uint64_t v) {
    return __builtin_popcountll(v) & 1;
}

uint64_t rb_gf2_apply(const rb_gf2_mat *a, uint64_t v) {
    uint64_t r = 0;
    for (unsigned i = 0; i < a->n; i++)
        if (v >> i & 1) r ^= a->col[i];
    return r;
}

uint64_t rb_gf2_apply_t(const rb_gf2_mat *a, uint64_t v) {
    uint64_t r = 0;
    for (unsigned i = 0; i < a->n; i++) r |= (uint64_t) parity(a->col[i] & v) << i;
    return r;
}

void rb_gf2_transpose(const rb_gf2_mat *a, rb_gf2_mat *t) {
    rb_gf2_mat r = {.n = a->n};
    for (unsigned i = 0; i < a->n; i++)
        for (unsigned j = 0; j < a->n; j++)
            if (a->col[j] >> i & 1) r.col[i] |= UINT64_C(1) << j;
    *t = r;
}

/* Gauss-Jordan on the rows of [A | I]: row i of A is bit i of every column. */
int rb_gf2_inverse(const rb_gf2_mat *a, rb_gf2_mat *inv) {
    unsigned n = a->n;
    rb_gf2_mat t;
    rb_gf2_transpose(a, &t); /* t.col[i] = row i of A */
    uint64_t row[64] = {0}, id[64] = {0};
    for (unsigned i = 0; i < n; i++) {
        row[i] = t.col[i];
        id[i] = UINT64_C(1) << i;
    }
    for (unsigned c = 0; c < n; c++) {
        unsigned piv = c;
        while (piv < n && !(row[piv] >> c & 1)) piv++;
        if (piv == n) return -1;
        uint64_t tr = row[c], ti = id[c];
        row[c] = row[piv], id[c] = id[piv];
        row[piv] = tr, id[piv] = ti;
        for (unsigned r = 0; r < n; r++)
            if (r != c && (row[r] >> c & 1)) {
                row[r] ^= row[c];
                id[r] ^= id[c];
            }
    }
    /* id[i] is now row i of A^-1. */
    rb_gf2_mat rows = {.n = n};
    for (unsigned i = 0; i < n; i++) rows.col[i] = id[i];
    rb_gf2_transpose(&rows, inv);
    return 0;
}

void rb_gf2_rotation(unsigned n, unsigned shift, rb_gf2_mat *a) {
    a->n = n;
    for (unsigned i = 0; i < 64; i++) a->col[i] = i < n ? UINT64_C(1) << ((i + shift) % n) : 0;
}

void rb_gf2_random_invertible(uint64_t seed, uint64_t stream, unsigned n, rb_gf2_mat *a) {
    uint64_t mask = n == 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1;
    rb_gf2_mat inv;
    /* A random matrix is invertible with probability > 0.28, so a few draws suffice. */
    for (uint64_t draw = 0;; draw++) {
        a->n = n;
        for (unsigned i = 0; i < 64; i++) {
            uint32_t w[2] = {0, 0};
            if (i < n) rb_rng_bits(seed, stream, (draw * 64 + i) * 2, 2, w);
            a->col[i] = i < n ? ((uint64_t) w[1] << 32 | w[0]) & mask : 0;
        }
        if (rb_gf2_inverse(a, &inv) == 0) return;
    }
}

int rb_sparse_check(const char *who, unsigned n, unsigned b, unsigned stages) {
    if (b > n)
        return rb_error_set(RB_EINVAL,
                            "%s: B = 2^%u bins exceeds the signal length N = 2^%u; use b <= %u",
                            who, b, n, n);
    if (b > RB_SPARSE_LOG2B_MAX)
        return rb_error_set(RB_EINVAL, "%s: b = %u is above the largest supported %d", who, b,
                            RB_SPARSE_LOG2B_MAX);
    if (stages < 1 || stages > RB_SPARSE_STAGES_MAX)
        return rb_error_set(RB_EINVAL, "%s: stages = %u is outside 1..%d", who, stages,
                            RB_SPARSE_STAGES_MAX);
    return RB_OK;
}

int rb_sparse_plan_init(rb_sparse_plan *pl, const char *who, unsigned n, unsigned b,
                        unsigned stages, unsigned delays) {
    memset(pl, 0, sizeof *pl);
    int rc = rb_sparse_check(who, n, b, stages);
    if (rc) return rc;
    pl->n = n, pl->b = b, pl->stages = stages, pl->delays = delays;
    pl->bins = (size_t) 1 << b;
    pl->delay = calloc((size_t) stages * delays, sizeof *pl->delay);
    pl->U = calloc((size_t) stages * pl->bins * delays, sizeof *pl->U);
    pl->done = calloc((size_t) stages * pl->bins, 1);
    if (!pl->delay || !pl->U || !pl->done) {
        rb_sparse_plan_free(pl);
        return rb_error_set(RB_ENOMEM, "%s: no memory for %u x %zu x %u bins", who, stages,
                            (size_t) 1 << b, delays);
    }
    return RB_OK;
}

void rb_sparse_plan_free(rb_sparse_plan *pl) {
    free(pl->delay);
    free(pl->U);
    free(pl->done);
    pl->delay = NULL, pl->U = NULL, pl->done = NULL;
}

int rb_sparse_plan_maps(rb_sparse_plan *pl) {
    for (unsigned c = 0; c < pl->stages; c++) {
        rb_gf2_mat inv;
        if (rb_gf2_inverse(&pl->A[c], &inv))
            return rb_error_set(RB_EINVAL, "sparse plan: stage %u's index map is singular", c);
        rb_gf2_transpose(&pl->A[c], &pl->At[c]);
        rb_gf2_transpose(&inv, &pl->Ainv_t[c]);
    }
    return RB_OK;
}

int rb_sparse_observe(rb_sparse_plan *pl, rb_signal_oracle *o) {
    size_t B = pl->bins, P = pl->delays;
    uint64_t *idx = malloc(B * P * sizeof *idx);
    uint64_t *al = malloc(B * sizeof *al);
    double *v = malloc(B * P * sizeof *v);
    int rc = (!idx || !al || !v) ? rb_error_set(RB_ENOMEM, "sparse: no memory for samples") : 0;
    double scale = sqrt(ldexp(1.0, (int) pl->n)) / (double) B;
    for (unsigned c = 0; !rc && c < pl->stages; c++) {
        const rb_gf2_mat *A = &pl->A[c];
        /* A l by Gray-code steps: l and l ^ (lowest set bit of l) differ in one column. */
        al[0] = 0;
        for (size_t l = 1; l < B; l++) al[l] = al[l & (l - 1)] ^ A->col[__builtin_ctzll(l)];
        for (size_t p = 0; p < P; p++) {
            uint64_t ad = rb_gf2_apply(A, pl->delay[c * P + p]);
            for (size_t l = 0; l < B; l++) idx[p * B + l] = al[l] ^ ad;
        }
        rc = rb_oracle_query(o, idx, B * P, v);
        if (!rc) rc = rb_fwht_f64(v, B, P, B, RB_NORM_NONE, RB_ORDER_NATURAL);
        double *U = pl->U + (size_t) c * B * P;
        for (size_t p = 0; !rc && p < P; p++)
            for (size_t j = 0; j < B; j++) U[j * P + p] = v[p * B + j] * scale;
    }
    free(idx);
    free(al);
    free(v);
    return rc;
}

size_t rb_sparse_bin(const rb_sparse_plan *pl, unsigned c, uint64_t k) {
    const rb_gf2_mat *A = &pl->A[c];
    size_t j = 0;
    for (unsigned i = 0; i < pl->b; i++) j |= (size_t) parity(A->col[i] & k) << i;
    return j;
}

int rb_sparse_parity(const rb_sparse_plan *pl, unsigned c, unsigned p, uint64_t k) {
    /* <A d, k> = <d, A^T k> */
    return parity(rb_gf2_apply(&pl->A[c], pl->delay[c * pl->delays + p]) & k);
}

void rb_sparse_found_free(rb_sparse_found *f) {
    free(f->v);
    free(f->slot);
    memset(f, 0, sizeof *f);
}

static size_t hash_slot(uint64_t k, size_t slots) {
    return (size_t) ((k * UINT64_C(0x9e3779b97f4a7c15)) >> 17) & (slots - 1);
}

static int found_add(rb_sparse_found *f, uint64_t k, double alpha) {
    if (2 * (f->count + 1) > f->slots) {
        size_t ns = f->slots ? 2 * f->slots : 64;
        size_t *slot = calloc(ns, sizeof *slot);
        if (!slot) return rb_error_set(RB_ENOMEM, "sparse: no memory for found coefficients");
        for (size_t i = 0; i < f->count; i++) {
            size_t h = hash_slot(f->v[i].index, ns);
            while (slot[h]) h = (h + 1) & (ns - 1);
            slot[h] = i + 1;
        }
        free(f->slot);
        f->slot = slot, f->slots = ns;
    }
    size_t h = hash_slot(k, f->slots);
    while (f->slot[h] && f->v[f->slot[h] - 1].index != k) h = (h + 1) & (f->slots - 1);
    if (f->slot[h]) {
        f->v[f->slot[h] - 1].value += alpha;
        return RB_OK;
    }
    if (f->count == f->cap) {
        size_t nc = f->cap ? 2 * f->cap : 32;
        rb_sparse_coef *v = realloc(f->v, nc * sizeof *v);
        if (!v) return rb_error_set(RB_ENOMEM, "sparse: no memory for found coefficients");
        f->v = v, f->cap = nc;
    }
    f->v[f->count] = (rb_sparse_coef){k, alpha};
    f->slot[h] = ++f->count;
    return RB_OK;
}

/* Removes the contribution alpha (-1)^<d_p, A^T k> of coefficient k from its bin in every
 * stage. */
static void subtract(rb_sparse_plan *pl, uint64_t k, double alpha) {
    size_t B = pl->bins, P = pl->delays;
    for (unsigned c = 0; c < pl->stages; c++) {
        uint64_t kp = rb_gf2_apply(&pl->At[c], k); /* A^T k */
        size_t j = (size_t) (kp & (B - 1));
        double *u = pl->U + ((size_t) c * B + j) * P;
        for (size_t p = 0; p < P; p++) u[p] -= parity(pl->delay[c * P + p] & kp) ? -alpha : alpha;
        /* The bin changed: look at it again on the next pass. */
        pl->done[(size_t) c * B + j] = 0;
    }
}

int rb_sparse_peel(rb_sparse_plan *pl, rb_bin_test test, void *ctx, unsigned max_iter,
                   rb_sparse_found *found, size_t *unresolved) {
    size_t B = pl->bins, P = pl->delays;
    memset(pl->done, 0, (size_t) pl->stages * B);
    for (unsigned it = 0; it < max_iter; it++) {
        int progress = 0;
        for (unsigned c = 0; c < pl->stages; c++)
            for (size_t j = 0; j < B; j++) {
                if (pl->done[(size_t) c * B + j]) continue;
                uint64_t kp = 0;
                double alpha = 0;
                rb_bin_kind kind =
                    test(ctx, pl, c, j, pl->U + ((size_t) c * B + j) * P, &kp, &alpha);
                if (kind == RB_BIN_ZERO) pl->done[(size_t) c * B + j] = 1;
                if (kind != RB_BIN_SINGLE) continue;
                uint64_t k = rb_gf2_apply(&pl->Ainv_t[c], kp);
                int rc = found_add(found, k, alpha);
                if (rc) return rc;
                subtract(pl, k, alpha);
                pl->done[(size_t) c * B + j] = 1;
                progress = 1;
            }
        if (!progress) break;
    }
    size_t left = 0;
    for (unsigned c = 0; c < pl->stages; c++)
        for (size_t j = 0; j < B; j++) {
            if (pl->done[(size_t) c * B + j]) continue;
            uint64_t kp;
            double alpha;
            left +=
                test(ctx, pl, c, j, pl->U + ((size_t) c * B + j) * P, &kp, &alpha) != RB_BIN_ZERO;
        }
    *unresolved = left;
    return RB_OK;
}

static int by_magnitude(const void *a, const void *b) {
    double x = fabs(((const rb_sparse_coef *) a)->value),
           y = fabs(((const rb_sparse_coef *) b)->value);
    uint64_t i = ((const rb_sparse_coef *) a)->index, j = ((const rb_sparse_coef *) b)->index;
    return x > y ? -1 : x < y ? 1 : (i > j) - (i < j);
}

static int by_index(const void *a, const void *b) {
    uint64_t i = ((const rb_sparse_coef *) a)->index, j = ((const rb_sparse_coef *) b)->index;
    return (i > j) - (i < j);
}

int rb_sparse_emit(rb_sparse_found *f, double zero, rb_sparse_coef *out, size_t cap,
                   size_t *nfound) {
    size_t m = 0;
    for (size_t i = 0; i < f->count; i++)
        if (fabs(f->v[i].value) > zero) f->v[m++] = f->v[i];
    f->count = m; /* the hash table is stale from here on; the set is only read */
    size_t keep = rb_sparse_keep(f->v, m, cap);
    if (keep) memcpy(out, f->v, keep * sizeof *out);
    *nfound = keep;
    return RB_OK;
}

size_t rb_sparse_keep(rb_sparse_coef *v, size_t m, size_t cap) {
    if (m > cap) {
        qsort(v, m, sizeof *v, by_magnitude);
        m = cap;
    }
    if (m > 1) qsort(v, m, sizeof *v, by_index); /* v may be NULL when nothing was found */
    return m;
}
