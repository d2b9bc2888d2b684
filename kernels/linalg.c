/* Row-major wrappers over cblas and LAPACKE with shape checks and error messages. */
#include "kernels/linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/error.h"

RB_OP_SINGLE(rb_op_sgemm, "sgemm", "openblas");

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* One OpenBLAS thread: see linalg.h (thread-count-independent results, no competing pools). */
static void blas_init(void) {
    openblas_set_num_threads(1);
}

const char *rb_blas_core(void) {
    return openblas_get_corename();
}

int rb_blas_dynamic(void) {
    const char *config = openblas_get_config();
    return config && strstr(config, "DYNAMIC_ARCH") != NULL;
}

const char *rb_blas_core_note(const char *core, unsigned isa, int dynamic) {
    /* OpenBLAS's x86-64 kernel sets written for AVX2 or later */
    static const char *const avx2_sets[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake",
                                            "SapphireRapids"};
    if (!core || !dynamic || !(isa & RB_ISA_AVX2)) return NULL;
    for (size_t i = 0; i < sizeof avx2_sets / sizeof avx2_sets[0]; i++)
        if (strcasecmp(core, avx2_sets[i]) == 0) return NULL;
#define NOTE(ISA, SET)                                                                            \
    "OpenBLAS runs its pre-AVX2 kernels on this " ISA " CPU (a library older than the CPU falls " \
    "back to them), so the GEMMs are slower than they could be; OPENBLAS_CORETYPE=" SET           \
    " in the environment selects " ISA " ones (their sums differ in the last bits)"
    return isa & RB_ISA_AVX512 ? NOTE("AVX-512", "SkylakeX") : NOTE("AVX2", "Haswell");
#undef NOTE
}

static int fits(size_t v) {
    return v <= (size_t) INT_MAX;
}

int rb_linalg_check_mat(const char *fn, const char *name, const void *p, size_t rows, size_t cols,
                        size_t ld) {
    if (!p) return rb_error_set(RB_EINVAL, "%s: %s is NULL", fn, name);
    if (!fits(rows) || !fits(cols) || !fits(ld))
        return rb_error_set(RB_EINVAL, "%s: %s is %zu x %zu (ld %zu), beyond BLAS's int", fn, name,
                            rows, cols, ld);
    if (ld < cols || ld < 1)
        return rb_error_set(RB_EINVAL, "%s: leading dimension of %s is %zu < its %zu columns", fn,
                            name, ld, cols);
    return RB_OK;
}

/* LAPACKE's info: < 0 an invalid argument (or, with NaN checking, a NaN in a matrix argument),
 * -1010/-1011 out of memory, > 0 a numerical failure described by `what`. */
static int lapack_fail(const char *fn, lapack_int info, const char *what) {
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        return rb_error_set(RB_ENOMEM, "%s: LAPACKE could not allocate its workspace (info %d)", fn,
                            (int) info);
    if (info < 0)
        return rb_error_set(RB_ELIB,
                            "%s: LAPACK info = %d: argument %d is invalid (a NaN in a matrix "
                            "argument is reported this way)",
                            fn, (int) info, (int) -info);
    return rb_error_set(RB_ELIB, "%s: LAPACK info = %d: %s", fn, (int) info, what);
}

#define CHECK(expr)          \
    do {                     \
        int rc_ = (expr);    \
        if (rc_) return rc_; \
    } while (0)

#define GEMM_BODY(fn, cblas_fn)                                                                   \
    do {                                                                                          \
        pthread_once(&blas_once, blas_init);                                                      \
        if (!fits(m) || !fits(n) || !fits(k))                                                     \
            return rb_error_set(RB_EINVAL, fn ": %zu x %zu x %zu is beyond BLAS's int", m, n, k); \
        CHECK(rb_linalg_check_mat(fn, "A", A, ta ? k : m, ta ? m : k, lda));                      \
        CHECK(rb_linalg_check_mat(fn, "B", B, tb ? n : k, tb ? k : n, ldb));                      \
        CHECK(rb_linalg_check_mat(fn, "C", C, m, n, ldc));                                        \
        if (m == 0 || n == 0) return RB_OK;                                                       \
        cblas_fn(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,   \
                 (int) m, (int) n, (int) k, alpha, A, (int) lda, B, (int) ldb, beta, C,           \
                 (int) ldc);                                                                      \
        return RB_OK;                                                                             \
    } while (0)

int rb_gemm_f32(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    GEMM_BODY("gemm_f32", cblas_sgemm);
}

int rb_gemm_f32_traced(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                       size_t ldc) {
    rb_kernel_note_single(&rb_op_sgemm);
    return rb_gemm_f32(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

int rb_gemm_f64(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, double alpha,
                const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C,
                size_t ldc) {
    GEMM_BODY("gemm_f64", cblas_dgemm);
}

int rb_qr_f64(double *A, size_t m, size_t n, size_t lda, double *R, size_t ldr) {
    pthread_once(&blas_once, blas_init);
    CHECK(rb_linalg_check_mat("qr", "A", A, m, n, lda));
    if (n == 0 || m < n)
        return rb_error_set(RB_EINVAL, "qr: A is %zu x %zu; thin QR needs m >= n >= 1", m, n);
    if (R) CHECK(rb_linalg_check_mat("qr", "R", R, n, n, ldr));
    double *tau = malloc(n * sizeof *tau);
    if (!tau) return rb_error_set(RB_ENOMEM, "qr: no memory for %zu reflector scalars", n);
    int rc = RB_OK;
    lapack_int info =
        LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int) m, (lapack_int) n, A, (lapack_int) lda, tau);
    if (info) {
        rc = lapack_fail("qr (geqrf)", info, "unexpected");
        goto out;
    }
    if (R)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) R[i * ldr + j] = j >= i ? A[i * lda + j] : 0.0;
    info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int) m, (lapack_int) n, (lapack_int) n, A,
                          (lapack_int) lda, tau);
    if (info) rc = lapack_fail("qr (orgqr)", info, "unexpected");
out:
    free(tau);
    return rc;
}

int rb_cholesky_f64(double *A, size_t n, size_t lda) {
    pthread_once(&blas_once, blas_init);
    CHECK(rb_linalg_check_mat("cholesky", "A", A, n, n, lda));
    if (n == 0) return RB_OK;
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int) n, A, (lapack_int) lda);
    if (info > 0)
        return rb_error_set(RB_ELIB,
                            "cholesky: LAPACK info = %d: the leading minor of order %d is not "
                            "positive definite",
                            (int) info, (int) info);
    if (info) return lapack_fail("cholesky (potrf)", info, "");
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) A[i * lda + j] = 0.0;
    return RB_OK;
}

int rb_eigh_f64(double *A, size_t n, size_t lda, double *w) {
    pthread_once(&blas_once, blas_init);
    CHECK(rb_linalg_check_mat("eigh", "A", A, n, n, lda));
    if (!w) return rb_error_set(RB_EINVAL, "eigh: w is NULL");
    if (n == 0) return RB_OK;
    lapack_int info =
        LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int) n, A, (lapack_int) lda, w);
    if (info) return lapack_fail("eigh (syevd)", info, "the algorithm failed to converge");
    return RB_OK;
}

int rb_svd_f64(double *A, size_t m, size_t n, size_t lda, double *s, double *U, size_t ldu,
               double *Vt, size_t ldvt) {
    pthread_once(&blas_once, blas_init);
    size_t k = m < n ? m : n;
    CHECK(rb_linalg_check_mat("svd", "A", A, m, n, lda));
    if (k == 0) return rb_error_set(RB_EINVAL, "svd: A is %zu x %zu (empty)", m, n);
    if (!s) return rb_error_set(RB_EINVAL, "svd: s is NULL");
    CHECK(rb_linalg_check_mat("svd", "U", U, m, k, ldu));
    CHECK(rb_linalg_check_mat("svd", "Vt", Vt, k, n, ldvt));
    lapack_int info =
        LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int) m, (lapack_int) n, A, (lapack_int) lda,
                       s, U, (lapack_int) ldu, Vt, (lapack_int) ldvt);
    if (info) return lapack_fail("svd (gesdd)", info, "the bidiagonal SVD did not converge");
    return RB_OK;
}

static int check_solve(const char *fn, double *A, size_t n, size_t lda, double *B, size_t nrhs,
                       size_t ldb) {
    CHECK(rb_linalg_check_mat(fn, "A", A, n, n, lda));
    CHECK(rb_linalg_check_mat(fn, "B", B, n, nrhs, ldb));
    if (n == 0 || nrhs == 0)
        return rb_error_set(RB_EINVAL, "%s: empty system (n = %zu, nrhs = %zu)", fn, n, nrhs);
    return RB_OK;
}

int rb_solve_f64(double *A, size_t n, size_t lda, double *B, size_t nrhs, size_t ldb) {
    pthread_once(&blas_once, blas_init);
    CHECK(check_solve("solve", A, n, lda, B, nrhs, ldb));
    lapack_int *ipiv = malloc(n * sizeof *ipiv);
    if (!ipiv) return rb_error_set(RB_ENOMEM, "solve: no memory for %zu pivots", n);
    lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, (lapack_int) n, (lapack_int) nrhs, A,
                                    (lapack_int) lda, ipiv, B, (lapack_int) ldb);
    free(ipiv);
    if (info > 0)
        return rb_error_set(RB_ELIB,
                            "solve (gesv): LAPACK info = %d: U(%d,%d) is exactly zero, "
                            "A is singular",
                            (int) info, (int) info, (int) info);
    if (info) return lapack_fail("solve (gesv)", info, "");
    return RB_OK;
}

int rb_solve_spd_f64(double *A, size_t n, size_t lda, double *B, size_t nrhs, size_t ldb) {
    pthread_once(&blas_once, blas_init);
    CHECK(check_solve("solve_spd", A, n, lda, B, nrhs, ldb));
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', (lapack_int) n, (lapack_int) nrhs, A,
                                    (lapack_int) lda, B, (lapack_int) ldb);
    if (info > 0)
        return rb_error_set(RB_ELIB,
                            "solve_spd (posv): LAPACK info = %d: the leading minor of order %d "
                            "is not positive definite",
                            (int) info, (int) info);
    if (info) return lapack_fail("solve_spd (posv)", info, "");
    return RB_OK;
}
