/* Dense linear algebra: thin row-major wrappers over OpenBLAS (cblas) and LAPACKE. */
#ifndef RB_LINALG_H
#define RB_LINALG_H

#include <stddef.h>

#include "kernels/dispatch.h"

/* Every matrix is row-major with a leading dimension (elements between consecutive rows) at
 * least its number of columns. Dimensions and leading dimensions must fit LAPACK's 32-bit int.
 * Errors: RB_EINVAL for bad shapes or NULL pointers (checked before any library call), RB_ELIB
 * with the LAPACK info in the message when the library fails (info < 0 also covers LAPACKE's
 * NaN check of its inputs), RB_ENOMEM when LAPACKE cannot allocate its workspace.
 *
 * The first call sets OpenBLAS to one thread (openblas_set_num_threads(1)), for two reasons:
 * OpenBLAS splits its work, and for some routines its reductions, by its own thread count,
 * so results would depend on the machine's core count rather than only on the inputs; and
 * parallelism belongs to rb_parallel_for, whose pinned threads would otherwise compete with
 * OpenBLAS's own pool for the same cores. */

typedef enum rb_trans { RB_NOTRANS = 0, RB_TRANS = 1 } rb_trans;

/* C = alpha op(A) op(B) + beta C with op(A) m x k, op(B) k x n, C m x n. A is stored m x k
 * (k x m when transposed), B k x n (n x k when transposed). The summation order is OpenBLAS's,
 * which depends on the shape: with Debian's 0.3.21 on a Zen 4 a row of C computed in a call of
 * fewer than 16 rows can differ in its last bits from the same row in a larger call (a review
 * found it in turboquant_prod's stored gamma and, rarely, a polarquant angle). So the dense
 * paths (Haar / QR rotations, QJL and turboquant_prod sketches) are bit-reproducible for the
 * same calls, as the evaluator makes them (fixed batches, one thread in BLAS), not across
 * different batchings of the same rows; the blocked paths (methods/codec_blocks.h) are. */
/* The operand checks of every wrapper here (shared with the cuBLAS twins): non-NULL, dimensions
 * that fit BLAS's int, ld >= max(1, cols); RB_EINVAL naming fn and the operand. */
int rb_linalg_check_mat(const char *fn, const char *name, const void *p, size_t rows, size_t cols,
                        size_t ld);
/* The trace entry "sgemm=openblas" (kernels/dispatch.h's RB_OP_SINGLE) of the fp32 GEMMs a
 * method's work runs on: rb_gemm_f32_traced notes it, then is rb_gemm_f32. Methods and the
 * rotations call the traced one; the harness's own scoring GEMMs call rb_gemm_f32, so that a
 * record's kernels are the method's. */
extern const rb_op rb_op_sgemm;
int rb_gemm_f32(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
int rb_gemm_f32_traced(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                       size_t ldc);
int rb_gemm_f64(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, double alpha,
                const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C,
                size_t ldc);

/* Thin QR (geqrf + orgqr) of A, m x n with m >= n >= 1: A is replaced by Q (m x n, orthonormal
 * columns); R (n x n, upper triangular with zeros below) is written when R is not NULL.
 * LAPACK's Householder convention: diag(R) may have either sign. */
int rb_qr_f64(double *A, size_t m, size_t n, size_t lda, double *R, size_t ldr);

/* Cholesky (potrf, lower) of a symmetric positive definite A (n x n, lower triangle read):
 * A = L L^T; A is replaced by L with zeros above the diagonal. Not positive definite: RB_ELIB
 * naming the order of the failing leading minor. */
int rb_cholesky_f64(double *A, size_t n, size_t lda);

/* Symmetric eigendecomposition (syevd, lower triangle read): w gets the n eigenvalues in
 * ascending order, and column j of A the unit eigenvector of w[j]. */
int rb_eigh_f64(double *A, size_t n, size_t lda, double *w);

/* Thin SVD (gesdd) of A (m x n, destroyed), k = min(m, n): A = U diag(s) Vt with U m x k,
 * s (k, descending, >= 0), Vt k x n. */
int rb_svd_f64(double *A, size_t m, size_t n, size_t lda, double *s, double *U, size_t ldu,
               double *Vt, size_t ldvt);

/* A X = B for a general A (gesv, partial pivoting; A is replaced by its LU factors) and for a
 * symmetric positive definite A (posv; A's lower triangle is replaced by its Cholesky factor).
 * B (n x nrhs) is replaced by X. Singular / not positive definite: RB_ELIB. */
int rb_solve_f64(double *A, size_t n, size_t lda, double *B, size_t nrhs, size_t ldb);
int rb_solve_spd_f64(double *A, size_t n, size_t lda, double *B, size_t nrhs, size_t ldb);

/* The kernel set OpenBLAS picked for this CPU when it loaded (openblas_get_corename: "Haswell",
 * "Zen", "SkylakeX", ...). The GEMMs' speed and their last bits depend on it, so results of the
 * GEMM-based methods (Haar rotations, QJL sketches) can differ in the last bits between machines.
 * NULL if the library does not say. */
const char *rb_blas_core(void);
/* A one-line note when that set predates AVX2 on a CPU that has it (isa: rb_cpu_isa()) in a
 * library that picks its set at load (dynamic: a DYNAMIC_ARCH build, whose
 * openblas_get_config() says so): what a library older than the CPU falls back to (Debian 12's
 * OpenBLAS 0.3.21 on a Zen 5 picks the generic "Prescott"), naming the OPENBLAS_CORETYPE to set;
 * NULL otherwise. The run context records it unless OPENBLAS_CORETYPE is set (the user chose). */
const char *rb_blas_core_note(const char *core, unsigned isa, int dynamic);
/* Whether this OpenBLAS picks its kernel set at load (DYNAMIC_ARCH). */
int rb_blas_dynamic(void);

#endif
