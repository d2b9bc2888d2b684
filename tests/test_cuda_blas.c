/* GPU dense linear algebra (cuBLAS gemm, Kronecker apply) against the CPU twins, normwise
 * relative to the size of the terms. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/linalg.h"
#include "kernels/rotate.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

/* The errors are measured against the size of the terms, not of the result, so that a result
 * that cancels (a 1 x 1 x 1 product minus beta C) does not turn rounding into a failure:
 *   e = ||C - C_cpu|| / || |alpha| |op(A)| |op(B)| + |beta| |C0| ||   (Frobenius, m x n part),
 * the bound matrix computed by rb_gemm_f32 on absolute values. */
static float *abs_copy(const float *x, size_t n) {
    float *y = malloc(n * 4);
    cr_assert(y);
    for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
    return y;
}

static double gemm_err(const float *got, const float *want, const float *bound, size_t m, size_t n,
                       size_t ldc) {
    double num = 0, den = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double g = got[i * ldc + j], w = want[i * ldc + j], b = bound[i * ldc + j];
            num += (g - w) * (g - w);
            den += b * b;
        }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The same measure for kron_apply: the bound is |x| (|P1| kron |P2|) row by row. */
static double kron_err(const float *got, const float *want, const float *x, size_t n1, size_t n2,
                       size_t count, size_t stride, const float *P1, const float *P2) {
    size_t n = n1 * n2, len = count * stride;
    float *b = abs_copy(x, len), *a1 = abs_copy(P1, n1 * n1), *a2 = abs_copy(P2, n2 * n2);
    float *scratch = malloc(n * 4);
    cr_assert_eq(rb_kron_apply_f32(b, n1, n2, count, stride, a1, a2, scratch), RB_OK);
    double num = 0, den = 0;
    for (size_t r = 0; r < count; r++)
        for (size_t j = 0; j < n; j++) {
            double g = got[r * stride + j], w = want[r * stride + j], c = b[r * stride + j];
            num += (g - w) * (g - w);
            den += c * c;
        }
    RBT_FREE(b, a1, a2, scratch);
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Every transpose combination and shape from {1, 7, 65, 300}^3 with padded leading dimensions,
 * alpha = 0.75, beta = -0.5 on a random C (and once beta = 0 on a NaN-filled C, which BLAS must
 * not read). Within 1e-5 normwise of rb_gemm_f32; the padding columns of C stay untouched. */
Test(cuda_blas, gemm_equals_cpu_normwise, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, gemm_f32);
    uint64_t seed = rbt_seed();
    static const size_t sz[] = {1, 7, 65, 300};
    size_t maxe = 300 * 303;
    float *A = rbt_normal_f32(maxe, seed, 1), *B = rbt_normal_f32(maxe, seed, 2);
    float *C0 = rbt_normal_f32(maxe, seed, 3), *want = malloc(maxe * 4);
    float *aA = abs_copy(A, maxe), *aB = abs_copy(B, maxe), *aC = abs_copy(C0, maxe);
    float *bound = malloc(maxe * 4);
    float *dA = rbt_cu_upload(cu, A, maxe * 4), *dB = rbt_cu_upload(cu, B, maxe * 4);
    float *dC = rbt_cu_alloc(cu, maxe * 4);
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++)
            for (size_t mi = 0; mi < 4; mi++)
                for (size_t ni = 0; ni < 4; ni++)
                    for (size_t ki = 0; ki < 4; ki++)
                        for (int zero_beta = 0; zero_beta <= (mi == ni && ni == ki); zero_beta++) {
                            size_t m = sz[mi], n = sz[ni], k = sz[ki];
                            size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
                            size_t crows = m;
                            float alpha = 0.75f, beta = zero_beta ? 0.0f : -0.5f;
                            memcpy(want, C0, crows * ldc * 4);
                            if (zero_beta)
                                for (size_t i = 0; i < crows * ldc; i++) want[i] = NAN;
                            RBT_CU_OK(cu->memcpy_h2d(dC, want, crows * ldc * 4, NULL));
                            int rc = rb_gemm_f32((rb_trans) ta, (rb_trans) tb, m, n, k, alpha, A,
                                                 lda, B, ldb, beta, want, ldc);
                            cr_assert_eq(rc, RB_OK, "%s", rb_error_detail());
                            memcpy(bound, aC, crows * ldc * 4);
                            rc = rb_gemm_f32((rb_trans) ta, (rb_trans) tb, m, n, k, fabsf(alpha),
                                             aA, lda, aB, ldb, fabsf(beta), bound, ldc);
                            cr_assert_eq(rc, RB_OK, "%s", rb_error_detail());
                            rc = cu->gemm_f32((rb_trans) ta, (rb_trans) tb, m, n, k, alpha, dA, lda,
                                              dB, ldb, beta, dC, ldc, NULL);
                            cr_assert_eq(rc, RB_OK, "gemm: %s: %s", rb_errname(rc),
                                         rb_error_detail());
                            float *got = rbt_cu_download(cu, dC, crows * ldc * 4);
                            for (size_t i = 0; i < m; i++) {
                                for (size_t j = n; j < ldc; j++)
                                    cr_assert(!memcmp(&got[i * ldc + j], &want[i * ldc + j], 4),
                                              "gemm wrote C[%zu][%zu] past n = %zu", i, j, n);
                            }
                            double e = gemm_err(got, want, bound, m, n, ldc);
                            cr_assert(e <= 1e-5,
                                      "gemm %c%c m %zu n %zu k %zu beta %g: normwise error %g "
                                      "(seed %llu)",
                                      ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, (double) beta, e,
                                      (unsigned long long) seed);
                            free(got);
                        }
    RBT_FREE(A, B, C0, want, aA, aB, aC, bound);
    RBT_CU_FREE(cu, dA, dB, dC);
}

Test(cuda_blas, gemm_bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, gemm_f32);
    static float h[64 * 64];
    float *d = rbt_cu_alloc(cu, sizeof h), *dc = rbt_cu_alloc(cu, sizeof h);
    /* lda, ldb, ldc shorter than a stored row. */
    static const size_t cases[][3] = {{7, 8, 8}, {8, 7, 8}, {8, 8, 7}};
    for (size_t i = 0; i < 3; i++) {
        int want = rb_gemm_f32(RB_NOTRANS, RB_NOTRANS, 8, 8, 8, 1, h, cases[i][0], h, cases[i][1],
                               0, h + 2048, cases[i][2]);
        int got = cu->gemm_f32(RB_NOTRANS, RB_NOTRANS, 8, 8, 8, 1, d, cases[i][0], d, cases[i][1],
                               0, dc, cases[i][2], NULL);
        cr_assert_neq(want, RB_OK);
        cr_assert_eq(got, want, "gemm ld case %zu: got %s, want %s", i, rb_errname(got),
                     rb_errname(want));
    }
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, d);
    rbt_cu_free(cu, dc);
}

/* Rows x (P1 kron P2) for n1, n2 in {1, 4, 12, 64}, 5 rows with padded stride: within 1e-5
 * normwise of rb_kron_apply_f32, the gaps between rows untouched. */
Test(cuda_blas, kron_apply_equals_cpu_normwise) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kron_apply_f32);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 4, 12, 64};
    for (size_t i1 = 0; i1 < 4; i1++)
        for (size_t i2 = 0; i2 < 4; i2++)
            for (size_t count = 1; count <= 5; count += 4) {
                size_t n1 = ns[i1], n2 = ns[i2], n = n1 * n2, stride = n + 3;
                size_t len = count * stride;
                float *x = rbt_normal_f32(len, seed, 10 + i1 * 4 + i2);
                float *P1 = rbt_normal_f32(n1 * n1, seed, 30 + i1);
                float *P2 = rbt_normal_f32(n2 * n2, seed, 40 + i2);
                float *scratch = malloc(n * 4), *want = malloc(len * 4);
                memcpy(want, x, len * 4);
                cr_assert_eq(rb_kron_apply_f32(want, n1, n2, count, stride, P1, P2, scratch), RB_OK,
                             "%s", rb_error_detail());
                float *dx = rbt_cu_upload(cu, x, len * 4);
                float *dP1 = rbt_cu_upload(cu, P1, n1 * n1 * 4);
                float *dP2 = rbt_cu_upload(cu, P2, n2 * n2 * 4);
                float *ds = rbt_cu_alloc(cu, count * n * 4);
                int rc = cu->kron_apply_f32(dx, n1, n2, count, stride, dP1, dP2, ds, NULL);
                cr_assert_eq(rc, RB_OK, "kron_apply: %s: %s", rb_errname(rc), rb_error_detail());
                float *got = rbt_cu_download(cu, dx, len * 4);
                for (size_t r = 0; r < count; r++) {
                    for (size_t j = n; j < stride; j++)
                        cr_assert(!memcmp(&got[r * stride + j], &x[r * stride + j], 4),
                                  "kron_apply wrote the gap at row %zu col %zu", r, j);
                }
                double e = kron_err(got, want, x, n1, n2, count, stride, P1, P2);
                cr_assert(e <= 1e-5,
                          "kron_apply n1 %zu n2 %zu count %zu: normwise error %g (seed %llu)", n1,
                          n2, count, e, (unsigned long long) seed);
                RBT_FREE(x, P1, P2, scratch, want, got);
                RBT_CU_FREE(cu, dx, dP1, dP2, ds);
            }
}

Test(cuda_blas, kron_bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kron_apply_f32);
    static float h[256], s[256];
    float *d = rbt_cu_alloc(cu, sizeof h), *ds = rbt_cu_alloc(cu, sizeof h);
    static const size_t cases[][3] = {{0, 4, 4}, {4, 0, 4}, {4, 4, 15}};
    for (size_t i = 0; i < 3; i++) {
        size_t n1 = cases[i][0], n2 = cases[i][1], stride = cases[i][2];
        int want = rb_kron_apply_f32(h, n1, n2, 2, stride, h, h, s);
        int got = cu->kron_apply_f32(d, n1, n2, 2, stride, d, d, ds, NULL);
        cr_assert_neq(want, RB_OK);
        cr_assert_eq(got, want, "kron n1 %zu n2 %zu stride %zu: got %s, want %s", n1, n2, stride,
                     rb_errname(got), rb_errname(want));
    }
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, d);
    rbt_cu_free(cu, ds);
}

/* Unaligned A, B, C (one element past an aligned start), a created stream (the cuBLAS handle
 * must take the caller's stream), and zero-sized dimensions with the CPU's status and result. */
Test(cuda_blas, gemm_unaligned_streams_and_empty_dims) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, gemm_f32);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    static const size_t dims[][3] = {{65, 300, 7}, {300, 65, 300}, {0, 5, 5},
                                     {5, 0, 5},    {5, 5, 0},      {1, 1, 1}};
    size_t maxe = 301 * 304;
    float *A = rbt_normal_f32(maxe, seed, 11), *B = rbt_normal_f32(maxe, seed, 12);
    float *C0 = rbt_normal_f32(maxe, seed, 13), *want = malloc(maxe * 4);
    float *aA = abs_copy(A, maxe), *aB = abs_copy(B, maxe), *aC = abs_copy(C0, maxe);
    float *bound = malloc(maxe * 4);
    float *dA = rbt_cu_upload(cu, A, maxe * 4), *dB = rbt_cu_upload(cu, B, maxe * 4);
    float *dC = rbt_cu_alloc(cu, maxe * 4);
    for (size_t i = 0; i < 6; i++)
        for (int ta = 0; ta <= 1; ta++)
            for (int on_stream = 0; on_stream <= 1; on_stream++) {
                size_t m = dims[i][0], n = dims[i][1], k = dims[i][2], off = on_stream ? 0 : 1;
                size_t lda = (ta ? m : k) + 1, ldb = n + 2, ldc = n + 1;
                void *st = on_stream ? s : NULL;
                memcpy(want, C0, maxe * 4);
                int wrc = rb_gemm_f32((rb_trans) ta, RB_NOTRANS, m, n, k, 1.25f, A + off, lda,
                                      B + off, ldb, 0.5f, want + off, ldc);
                memcpy(bound, aC, maxe * 4);
                if (wrc == RB_OK)
                    cr_assert_eq(rb_gemm_f32((rb_trans) ta, RB_NOTRANS, m, n, k, 1.25f, aA + off,
                                             lda, aB + off, ldb, 0.5f, bound + off, ldc),
                                 RB_OK);
                RBT_CU_OK(cu->memcpy_h2d(dC, C0, maxe * 4, NULL));
                RBT_CU_OK(cu->stream_sync(NULL));
                int grc = cu->gemm_f32((rb_trans) ta, RB_NOTRANS, m, n, k, 1.25f, dA + off, lda,
                                       dB + off, ldb, 0.5f, dC + off, ldc, st);
                cr_assert_eq(grc, wrc, "gemm m %zu n %zu k %zu: got %s, want %s (%s)", m, n, k,
                             rb_errname(grc), rb_errname(wrc), rb_error_detail());
                if (st) RBT_CU_OK(cu->stream_sync(st));
                float *got = rbt_cu_download(cu, dC, maxe * 4);
                double e = gemm_err(got + off, want + off, bound + off, m, n, ldc);
                cr_assert(e <= 1e-5,
                          "gemm m %zu n %zu k %zu off %zu%s: normwise error %g (seed %llu)", m, n,
                          k, off, st ? " (created stream)" : "", e, (unsigned long long) seed);
                /* Everything outside C's m x n entries is untouched. */
                for (size_t q = 0; q < maxe; q++) {
                    size_t p = q < off ? SIZE_MAX : q - off;
                    int inside = p != SIZE_MAX && p / ldc < m && p % ldc < n;
                    if (!inside)
                        cr_assert(!memcmp(&got[q], &C0[q], 4),
                                  "gemm m %zu n %zu k %zu wrote element %zu outside C", m, n, k, q);
                }
                free(got);
            }
    RBT_FREE(A, B, C0, want, aA, aB, aC, bound);
    RBT_CU_FREE(cu, dA, dB, dC);
    RBT_CU_OK(cu->stream_destroy(s));
}

/* Many rows (70001, more than a grid's y dimension) and a created stream for kron_apply. */
Test(cuda_blas, kron_apply_many_rows_and_streams) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, kron_apply_f32);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    static const size_t cases[][4] = {{2, 2, 70001, 0}, {12, 64, 9, 1}, {64, 4, 3, 1}};
    for (size_t ci = 0; ci < 3; ci++) {
        size_t n1 = cases[ci][0], n2 = cases[ci][1], count = cases[ci][2], n = n1 * n2;
        size_t stride = n + 1, len = count * stride;
        void *st = cases[ci][3] ? s : NULL;
        float *x = rbt_normal_f32(len, seed, 20 + ci);
        float *P1 = rbt_normal_f32(n1 * n1, seed, 30 + ci),
              *P2 = rbt_normal_f32(n2 * n2, seed, 40 + ci);
        float *scratch = malloc(n * 4), *want = malloc(len * 4);
        memcpy(want, x, len * 4);
        cr_assert_eq(rb_kron_apply_f32(want, n1, n2, count, stride, P1, P2, scratch), RB_OK);
        float *dx = rbt_cu_upload(cu, x, len * 4), *dP1 = rbt_cu_upload(cu, P1, n1 * n1 * 4);
        float *dP2 = rbt_cu_upload(cu, P2, n2 * n2 * 4), *ds = rbt_cu_alloc(cu, count * n * 4);
        RBT_CU_OK(cu->kron_apply_f32(dx, n1, n2, count, stride, dP1, dP2, ds, st));
        if (st) RBT_CU_OK(cu->stream_sync(st));
        float *got = rbt_cu_download(cu, dx, len * 4);
        for (size_t r = 0; r < count; r++) {
            cr_assert(!memcmp(&got[r * stride + n], &x[r * stride + n], 4),
                      "kron_apply wrote the gap of row %zu", r);
        }
        double e = kron_err(got, want, x, n1, n2, count, stride, P1, P2);
        cr_assert(e <= 1e-5, "kron_apply n1 %zu n2 %zu count %zu%s: normwise error %g (seed %llu)",
                  n1, n2, count, st ? " (created stream)" : "", e, (unsigned long long) seed);
        RBT_FREE(x, P1, P2, scratch, want, got);
        RBT_CU_FREE(cu, dx, dP1, dP2, ds);
    }
    RBT_CU_OK(cu->stream_destroy(s));
}
