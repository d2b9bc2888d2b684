/* Rotations applied to rows: randomized Hadamard (one and two blocks), block-diagonal Hadamard,
 * Haar-random orthogonal matrices, dense and Kronecker-factored transforms. */
#ifndef RB_ROTATE_H
#define RB_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/hadamard.h"

/* Philox streams of the random rotations (kernels/rng.h). The GPU backend draws from the same
 * (seed, stream, index), so it reproduces every sign and every Gaussian entry:
 *   D1 of the randomized Hadamard: d1[i] = rademacher(seed, RB_STREAM_RHT_D1, i), i = 0..n-1
 *   D2 of the two-block version:   d2[i] = rademacher(seed, RB_STREAM_RHT_D2, i)
 *   Haar: G[i][j] = normal64(seed, RB_STREAM_HAAR, i * n + j) (row-major n x n)
 * (rademacher: bit i % 32 of lane (i % 128) / 32 of Philox block i / 128, 0 -> +1, 1 -> -1;
 * normal64: Box-Muller, see rng.h). The values spell "RHT1", "RHT2" and "HAAR" in ASCII. */
#define RB_STREAM_RHT_D1 UINT64_C(0x52485431)
#define RB_STREAM_RHT_D2 UINT64_C(0x52485432)
#define RB_STREAM_HAAR   UINT64_C(0x48414152)

/* ---- randomized Hadamard ---- */

/* With H = H_K kron H_{2^m} (any order n that rb_hadamard_lookup accepts), per row x:
 *   one block (d2 == NULL): forward y = H D1 x / sqrt(n), inverse x = D1 H^T y / sqrt(n)
 *   two blocks:             forward y = H D2 H D1 x / n, inverse x = D1 H^T D2 H^T y / n
 * with D = diag(d), d[i] = +-1 given by the caller (any signs: fresh per-vector signs work too).
 * In place, batched like rb_hadamard_f32; the same bits as multiplying by the signs and then
 * calling rb_hadamard_f32. RB_ESIZE / RB_EINVAL as for the Hadamard. */
int rb_rht_f32(float *data, size_t n, size_t count, size_t stride, const float *d1, const float *d2,
               rb_dir dir);
int rb_rht_f64(double *data, size_t n, size_t count, size_t stride, const float *d1,
               const float *d2, rb_dir dir);

/* A randomized Hadamard with its signs drawn from the streams above. */
typedef struct rb_rht {
    size_t n;
    int blocks;     /* 1 or 2 */
    uint64_t seed;  /* as given, for the record */
    float *d1, *d2; /* d2 is NULL for one block */
} rb_rht;

/* Checks n (RB_ESIZE with the nearest sizes) and blocks (RB_EINVAL), allocates and draws the
 * signs. rb_rht_free releases them (safe on a zeroed or freed struct). */
int rb_rht_init(rb_rht *r, size_t n, int blocks, uint64_t seed);
void rb_rht_free(rb_rht *r);
int rb_rht_apply_f32(const rb_rht *r, float *data, size_t count, size_t stride, rb_dir dir);
int rb_rht_apply_f64(const rb_rht *r, double *data, size_t count, size_t stride, rb_dir dir);

/* ---- block-diagonal Hadamard ---- */

/* Each row (length n) is split into n / b blocks of b and every block gets rb_hadamard_f32
 * (H_b / sqrt(b), H_b^T for the inverse). b must be a supported order with 2 <= b <= n and b
 * dividing n (RB_ESIZE otherwise). */
int rb_hadamard_block_f32(float *data, size_t n, size_t count, size_t stride, size_t b, rb_dir dir);
int rb_hadamard_block_f64(double *data, size_t n, size_t count, size_t stride, size_t b,
                          rb_dir dir);

/* ---- Haar-random orthogonal and dense transforms ---- */

/* Q (n x n, row-major, ld n) uniform on O(n): QR of the Gaussian G above (LAPACK geqrf +
 * orgqr), then column j of Q times sign(R_jj) (+1 when R_jj = 0). Without that sign fix Q is
 * not Haar-distributed (TurboQuant's released code omits it). Allocates work space (setup, not
 * a hot path); RB_EINVAL for n == 0. */
int rb_haar_f64(double *Q, size_t n, uint64_t seed);
/* The same QR of the same G without the sign fix: rb_haar_f64's Q up to the signs of its
 * columns, and not Haar-distributed. TurboQuant's released code rotates with it (torch's QR is
 * the same Householder geqrf, so the same convention for the signs), hence rotation `qr`. */
int rb_qr_gaussian_f64(double *Q, size_t n, uint64_t seed);

/* For each of `count` rows x of X (stride ldx), the row of Y (stride ldy) is
 *   T x (RB_FORWARD, i.e. Y = X T^T)   or   T^T x (RB_INVERSE, Y = X T)
 * for a dense n x n T (row-major, ld n); for orthogonal T the two undo each other. One GEMM;
 * out of place (Y must not overlap X). */
int rb_rotate_dense_f32(const float *T, size_t n, const float *X, size_t count, size_t ldx,
                        float *Y, size_t ldy, rb_dir dir);
int rb_rotate_dense_f64(const double *T, size_t n, const double *X, size_t count, size_t ldx,
                        double *Y, size_t ldy, rb_dir dir);

/* ---- Kronecker-factored transform (FlatQuant) ---- */

/* In place, for each row x (length n1 n2): y = x (P1 kron P2) with x a row vector, computed as
 * Y = P1^T X P2 where X is the row viewed as n1 x n2 row-major. P1 is n1 x n1 and P2 n2 x n2
 * (row-major, any invertible matrices). scratch holds n1 n2 elements (caller-owned). Passing
 * the inverse factors (P1^-1, P2^-1) gives the inverse transform x = y (P1 kron P2)^-1; for
 * orthogonal factors those are P1^T and P2^T. */
int rb_kron_apply_f32(float *data, size_t n1, size_t n2, size_t count, size_t stride,
                      const float *P1, const float *P2, float *scratch);
int rb_kron_apply_f64(double *data, size_t n1, size_t n2, size_t count, size_t stride,
                      const double *P1, const double *P2, double *scratch);

#endif
