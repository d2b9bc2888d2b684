/* Dense fp32 linear algebra through cuBLAS: row-major GEMM (rb_gemm_f32's contract) and the
 * batched Kronecker transform (rb_kron_apply_f32's). Default math mode, no TF32: true fp32. */
#include <cublas_v2.h>
#include <limits.h>

#include "kernels/cuda/common.cuh"

/* A cuBLAS status as an rb status naming the op. */
static int blas_status(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return RB_OK;
    (void) cudaGetLastError(); /* a failed launch inside cuBLAS leaves it as the last error */
    return rb_error_set(RB_ECUDA, "%s: cuBLAS %s (%s)", what, cublasGetStatusName(s),
                        cublasGetStatusString(s));
}

#define BLAS_TRY(call, what)                   \
    do {                                       \
        int rc_ = blas_status((call), (what)); \
        if (rc_) return rc_;                   \
    } while (0)

/* One handle per (thread, device), created on the first call from that thread on that device
 * and kept for the thread's life (never destroyed: destroying at exit can run after the CUDA
 * context is gone). A handle is used by one thread only, so it needs no lock; the stream is set
 * on every call. */
enum { MAX_DEVICES = 64 };
static thread_local cublasHandle_t tl_handles[MAX_DEVICES];

static int get_handle(void *stream, const char *who, cublasHandle_t *h) {
    int dev = 0;
    RB_CU_TRY(cudaGetDevice(&dev), who);
    if (dev < 0 || dev >= MAX_DEVICES)
        return rb_error_set(RB_ECUDA, "%s: device %d is beyond the %d this backend tracks", who,
                            dev, MAX_DEVICES);
    if (!tl_handles[dev]) {
        cublasHandle_t nh = NULL;
        BLAS_TRY(cublasCreate(&nh), who);
        cublasStatus_t s = cublasSetMathMode(nh, CUBLAS_DEFAULT_MATH); /* no TF32 */
        if (s != CUBLAS_STATUS_SUCCESS) {
            cublasDestroy(nh);
            return blas_status(s, who);
        }
        tl_handles[dev] = nh;
    }
    BLAS_TRY(cublasSetStream(tl_handles[dev], rb_cu_stream(stream)), who);
    *h = tl_handles[dev];
    return RB_OK;
}

static int fits(size_t v) {
    return v <= (size_t) INT_MAX;
}

#define CHECK(expr)          \
    do {                     \
        int rc_ = (expr);    \
        if (rc_) return rc_; \
    } while (0)

static cublasOperation_t op_of(rb_trans t) {
    return t == RB_TRANS ? CUBLAS_OP_T : CUBLAS_OP_N;
}

/* Row-major C = alpha op(A) op(B) + beta C is column-major C^T = alpha op(B)^T op(A)^T + beta
 * C^T, and a row-major matrix is its transpose in column-major: so swap the operands and the
 * dimensions m and n, keeping each operand's transpose flag. */
static int cu_gemm_f32(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                       size_t ldc, void *stream) {
    const char *fn = "gemm_f32";
    if (!fits(m) || !fits(n) || !fits(k))
        return rb_error_set(RB_EINVAL, "gemm_f32: %zu x %zu x %zu is beyond BLAS's int", m, n, k);
    CHECK(rb_linalg_check_mat(fn, "A", A, ta ? k : m, ta ? m : k, lda));
    CHECK(rb_linalg_check_mat(fn, "B", B, tb ? n : k, tb ? k : n, ldb));
    CHECK(rb_linalg_check_mat(fn, "C", C, m, n, ldc));
    if (m == 0 || n == 0) return RB_OK;
    cublasHandle_t h;
    CHECK(get_handle(stream, fn, &h));
    BLAS_TRY(cublasSgemm(h, op_of(tb), op_of(ta), (int) n, (int) m, (int) k, &alpha, B, (int) ldb,
                         A, (int) lda, &beta, C, (int) ldc),
             fn);
    return RB_OK;
}

/* Per row X (n1 x n2 row-major at data + r * stride): scratch_r = X P2, then X = P1^T
 * scratch_r. The first product is one GEMM over all count * n1 rows when the rows are packed
 * (stride == n1 n2, or one row), else a strided batch; the second is a strided batch over the
 * rows. In column-major terms (see cu_gemm_f32): S^T = P2^T X^T, Y^T = S^T P1. */
static int cu_kron_apply_f32(float *data, size_t n1, size_t n2, size_t count, size_t stride,
                             const float *P1, const float *P2, float *scratch, void *stream) {
    const char *fn = "kron_apply_f32";
    if (n1 == 0 || n2 == 0)
        return rb_error_set(RB_EINVAL, "kron_apply_f32: factor sizes %zu x %zu", n1, n2);
    if (!P1 || !P2 || !scratch)
        return rb_error_set(RB_EINVAL, "kron_apply_f32: P1, P2 and scratch must be given");
    size_t n = n1 * n2;
    if (!data && count) return rb_error_set(RB_EINVAL, "%s: data is NULL", fn);
    if (count > 1 && stride < n)
        return rb_error_set(RB_EINVAL, "%s: row stride %zu is shorter than n = %zu", fn, stride, n);
    if (count == 0) return RB_OK;
    if (!fits(n1) || !fits(n2) || !fits(count))
        return rb_error_set(RB_EINVAL, "%s: %zu rows of %zu x %zu are beyond BLAS's int", fn, count,
                            n1, n2);
    cublasHandle_t h;
    CHECK(get_handle(stream, fn, &h));
    const float one = 1.0f, zero = 0.0f;
    int i1 = (int) n1, i2 = (int) n2, ic = (int) count;
    long long sn = (long long) n, sd = count > 1 ? (long long) stride : (long long) n;
    if ((count == 1 || stride == n) && fits(count * n1)) {
        BLAS_TRY(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, i2, (int) (count * n1), i2, &one, P2, i2,
                             data, i2, &zero, scratch, i2),
                 fn);
    } else {
        BLAS_TRY(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, i2, i1, i2, &one, P2, i2, 0,
                                           data, i2, sd, &zero, scratch, i2, sn, ic),
                 fn);
    }
    BLAS_TRY(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, i2, i1, i1, &one, scratch, i2,
                                       sn, P1, i1, 0, &zero, data, i2, sd, ic),
             fn);
    return RB_OK;
}

void rb_cu_register_blas(rb_cuda_ops *ops) {
    ops->gemm_f32 = cu_gemm_f32;
    ops->kron_apply_f32 = cu_kron_apply_f32;
}
