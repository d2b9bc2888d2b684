/* Randomized / block Hadamard, Haar orthogonal, dense and Kronecker rotations of rows. */
#include "kernels/rotate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/linalg.h"
#include "kernels/pool.h"
#include "kernels/rng.h"
#include "kernels/rowcodec.h"

static int check_rows(const char *fn, const void *data, size_t n, size_t count, size_t stride) {
    if (!data && count) return rb_error_set(RB_EINVAL, "%s: data is NULL", fn);
    if (count > 1 && stride < n)
        return rb_error_set(RB_EINVAL, "%s: row stride %zu is shorter than n = %zu", fn, stride, n);
    return RB_OK;
}

/* ---- randomized Hadamard ---- */

/* x[i] *= d[i] over one double row. The fixed 8-wide inner loop (and restrict) is what gcc's -O2
 * "very cheap" vectorizer needs to emit SIMD multiplies; a plain loop stayed scalar and cost
 * twice the transform itself. */
static void scale_row_f64(double *restrict x, const float *restrict d, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++) x[i + j] *= d[i + j];
    for (; i < n; i++) x[i] *= d[i];
}

/* The RHT of a block of rows, each step on the whole block, so that the sign multiplies run on
 * rows the transform is about to read (or has just written) while they are in cache. */
/* The sign multiplies of a block of rows: float rows go through the rb_rows_mul_f32 kernel
 * (AVX-512 where available: this file is built without SIMD flags), double rows stay here. */
static void signs_rows_f32(float *data, size_t count, size_t stride, const float *d, size_t n) {
    rb_rows_mul_f32(data, count, n, stride, d);
}
static void signs_rows_f64(double *data, size_t count, size_t stride, const float *d, size_t n) {
    for (size_t r = 0; r < count; r++) scale_row_f64(data + r * stride, d, n);
}

#define RHT_ROWS(T, hadamard, signs_rows)                                                    \
    static int rht_rows_##T(T *data, size_t n, size_t count, size_t stride, const float *d1, \
                            const float *d2, rb_dir dir) {                                   \
        int rc = 0;                                                                          \
        if (dir == RB_FORWARD) {                                                             \
            signs_rows(data, count, stride, d1, n);                                          \
            rc = hadamard(data, n, count, stride, RB_FORWARD);                               \
            if (rc || !d2) return rc;                                                        \
            signs_rows(data, count, stride, d2, n);                                          \
            return hadamard(data, n, count, stride, RB_FORWARD);                             \
        }                                                                                    \
        rc = hadamard(data, n, count, stride, RB_INVERSE);                                   \
        if (rc) return rc;                                                                   \
        if (d2) {                                                                            \
            signs_rows(data, count, stride, d2, n);                                          \
            rc = hadamard(data, n, count, stride, RB_INVERSE);                               \
            if (rc) return rc;                                                               \
        }                                                                                    \
        signs_rows(data, count, stride, d1, n);                                              \
        return RB_OK;                                                                        \
    }
RHT_ROWS(float, rb_hadamard_f32, signs_rows_f32)
RHT_ROWS(double, rb_hadamard_f64, signs_rows_f64)

/* Rows are split into blocks of about RHT_BLOCK_ELEMS elements (fixed by the shape, so the bits
 * never depend on the thread count) and the blocks run on the pool; the transform inside a block
 * then runs on the worker's thread. Rows longer than that go whole through the transform, which
 * threads within a row itself. */
enum { RHT_BLOCK_ELEMS = 1 << 16 };

typedef struct rht_job {
    void *data;
    size_t n, stride;
    const float *d1, *d2;
    rb_dir dir;
    int f64;
} rht_job;

static void rht_task(void *ctx, size_t begin, size_t end) {
    rht_job *j = ctx;
    int rc = j->f64 ? rht_rows_double((double *) j->data + begin * j->stride, j->n, end - begin,
                                      j->stride, j->d1, j->d2, j->dir)
                    : rht_rows_float((float *) j->data + begin * j->stride, j->n, end - begin,
                                     j->stride, j->d1, j->d2, j->dir);
    if (rc) rb_task_fail(rc);
}

static int rht_run(void *data, int f64, size_t n, size_t count, size_t stride, const float *d1,
                   const float *d2, rb_dir dir) {
    if (n >= RHT_BLOCK_ELEMS || count == 1)
        return f64 ? rht_rows_double(data, n, count, stride, d1, d2, dir)
                   : rht_rows_float(data, n, count, stride, d1, d2, dir);
    rht_job j = {data, n, stride, d1, d2, dir, f64};
    return rb_parallel_for(count, RHT_BLOCK_ELEMS / n, rht_task, &j);
}

#define RHT_BODY(fn, f64)                                                      \
    do {                                                                       \
        int rc = rb_hadamard_lookup(n, NULL, NULL);                            \
        if (rc) return rc;                                                     \
        rc = check_rows(fn, data, n, count, stride);                           \
        if (rc) return rc;                                                     \
        if (!d1) return rb_error_set(RB_EINVAL, fn ": the signs d1 are NULL"); \
        if (count == 0) return RB_OK;                                          \
        return rht_run(data, f64, n, count, stride, d1, d2, dir);              \
    } while (0)

int rb_rht_f32(float *data, size_t n, size_t count, size_t stride, const float *d1, const float *d2,
               rb_dir dir) {
    RHT_BODY("rht_f32", 0);
}

int rb_rht_f64(double *data, size_t n, size_t count, size_t stride, const float *d1,
               const float *d2, rb_dir dir) {
    RHT_BODY("rht_f64", 1);
}

int rb_rht_init(rb_rht *r, size_t n, int blocks, uint64_t seed) {
    memset(r, 0, sizeof *r);
    int rc = rb_hadamard_lookup(n, NULL, NULL);
    if (rc) return rc;
    if (blocks != 1 && blocks != 2)
        return rb_error_set(RB_EINVAL, "rht: blocks = %d (1 or 2)", blocks);
    r->d1 = malloc(n * sizeof *r->d1);
    r->d2 = blocks == 2 ? malloc(n * sizeof *r->d2) : NULL;
    if (!r->d1 || (blocks == 2 && !r->d2)) {
        rb_rht_free(r);
        return rb_error_set(RB_ENOMEM, "rht: no memory for %d x %zu signs", blocks, n);
    }
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, n, r->d1);
    if (r->d2) rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, n, r->d2);
    r->n = n;
    r->blocks = blocks;
    r->seed = seed;
    return RB_OK;
}

void rb_rht_free(rb_rht *r) {
    if (!r) return;
    free(r->d1);
    free(r->d2);
    memset(r, 0, sizeof *r);
}

int rb_rht_apply_f32(const rb_rht *r, float *data, size_t count, size_t stride, rb_dir dir) {
    if (!r || !r->d1) return rb_error_set(RB_EINVAL, "rht: plan not initialized");
    return rb_rht_f32(data, r->n, count, stride, r->d1, r->d2, dir);
}

int rb_rht_apply_f64(const rb_rht *r, double *data, size_t count, size_t stride, rb_dir dir) {
    if (!r || !r->d1) return rb_error_set(RB_EINVAL, "rht: plan not initialized");
    return rb_rht_f64(data, r->n, count, stride, r->d1, r->d2, dir);
}

/* ---- block-diagonal Hadamard ---- */

static int check_block(size_t n, size_t b) {
    int rc = rb_hadamard_lookup(b, NULL, NULL);
    if (rc) return rc;
    if (b < 2 || b > n || n % b)
        return rb_error_set(RB_ESIZE,
                            "hadamard_block: block %zu must satisfy 2 <= b <= n and divide "
                            "n = %zu",
                            b, n);
    return RB_OK;
}

/* Contiguous rows form one batch of count * n / b blocks; padded rows go one row at a time. */
#define BLOCK_BODY(fn, hadamard)                                                          \
    do {                                                                                  \
        int rc = check_block(n, b);                                                       \
        if (rc) return rc;                                                                \
        rc = check_rows(fn, data, n, count, stride);                                      \
        if (rc) return rc;                                                                \
        if (count <= 1 || stride == n) return hadamard(data, b, count * (n / b), b, dir); \
        for (size_t r = 0; r < count; r++) {                                              \
            rc = hadamard(data + r * stride, b, n / b, b, dir);                           \
            if (rc) return rc;                                                            \
        }                                                                                 \
        return RB_OK;                                                                     \
    } while (0)

int rb_hadamard_block_f32(float *data, size_t n, size_t count, size_t stride, size_t b,
                          rb_dir dir) {
    BLOCK_BODY("hadamard_block_f32", rb_hadamard_f32);
}

int rb_hadamard_block_f64(double *data, size_t n, size_t count, size_t stride, size_t b,
                          rb_dir dir) {
    BLOCK_BODY("hadamard_block_f64", rb_hadamard_f64);
}

/* ---- Haar and dense ---- */

/* Q of the QR of the Gaussian G (seed, RB_STREAM_HAAR), then with sign_fix column j times
 * sign(R_jj). */
static int gaussian_q(const char *who, double *Q, size_t n, uint64_t seed, int sign_fix) {
    if (!Q || n == 0) return rb_error_set(RB_EINVAL, "%s: need n >= 1 and an output matrix", who);
    if (n > (SIZE_MAX / sizeof(double)) / n)
        return rb_error_set(RB_EINVAL, "%s: n = %zu is too large", who, n);
    double *R = malloc(n * n * sizeof *R);
    if (!R) return rb_error_set(RB_ENOMEM, "%s: no memory for R (%zu x %zu)", who, n, n);
    rb_rng_normal_f64(seed, RB_STREAM_HAAR, 0, n * n, Q);
    int rc = rb_qr_f64(Q, n, n, n, R, n);
    if (rc == 0 && sign_fix)
        for (size_t j = 0; j < n; j++)
            if (R[j * n + j] < 0)
                for (size_t i = 0; i < n; i++) Q[i * n + j] = -Q[i * n + j];
    free(R);
    return rc;
}

int rb_haar_f64(double *Q, size_t n, uint64_t seed) {
    return gaussian_q("haar", Q, n, seed, 1);
}

int rb_qr_gaussian_f64(double *Q, size_t n, uint64_t seed) {
    return gaussian_q("qr", Q, n, seed, 0);
}

int rb_rotate_dense_f32(const float *T, size_t n, const float *X, size_t count, size_t ldx,
                        float *Y, size_t ldy, rb_dir dir) {
    return rb_gemm_f32_traced(RB_NOTRANS, dir == RB_FORWARD ? RB_TRANS : RB_NOTRANS, count, n, n,
                              1.0f, X, ldx, T, n, 0.0f, Y, ldy);
}

int rb_rotate_dense_f64(const double *T, size_t n, const double *X, size_t count, size_t ldx,
                        double *Y, size_t ldy, rb_dir dir) {
    return rb_gemm_f64(RB_NOTRANS, dir == RB_FORWARD ? RB_TRANS : RB_NOTRANS, count, n, n, 1.0, X,
                       ldx, T, n, 0.0, Y, ldy);
}

/* ---- Kronecker ---- */

/* Per row: scratch = X P2, then X = P1^T scratch (two GEMMs, the row is free after the first). */
#define KRON_BODY(fn, gemm)                                                                    \
    do {                                                                                       \
        if (n1 == 0 || n2 == 0)                                                                \
            return rb_error_set(RB_EINVAL, fn ": factor sizes %zu x %zu", n1, n2);             \
        if (!P1 || !P2 || !scratch)                                                            \
            return rb_error_set(RB_EINVAL, fn ": P1, P2 and scratch must be given");           \
        int rc = check_rows(fn, data, n1 * n2, count, stride);                                 \
        if (rc) return rc;                                                                     \
        for (size_t r = 0; r < count; r++) {                                                   \
            rc = gemm(RB_NOTRANS, RB_NOTRANS, n1, n2, n2, 1, data + r * stride, n2, P2, n2, 0, \
                      scratch, n2);                                                            \
            if (rc) return rc;                                                                 \
            rc = gemm(RB_TRANS, RB_NOTRANS, n1, n2, n1, 1, P1, n1, scratch, n2, 0,             \
                      data + r * stride, n2);                                                  \
            if (rc) return rc;                                                                 \
        }                                                                                      \
        return RB_OK;                                                                          \
    } while (0)

int rb_kron_apply_f32(float *data, size_t n1, size_t n2, size_t count, size_t stride,
                      const float *P1, const float *P2, float *scratch) {
    KRON_BODY("kron_apply_f32", rb_gemm_f32_traced);
}

int rb_kron_apply_f64(double *data, size_t n1, size_t n2, size_t count, size_t stride,
                      const double *P1, const double *P2, double *scratch) {
    KRON_BODY("kron_apply_f64", rb_gemm_f64);
}
