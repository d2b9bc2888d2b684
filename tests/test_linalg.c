/* Linear algebra wrappers: hand-checkable problems, residuals on random inputs, shape errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

Test(linalg, gemm_small_by_hand_all_transposes) {
    const double A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8};
    const double want[4][4] = {
        {19, 22, 43, 50}, {17, 23, 39, 53}, {26, 30, 38, 44}, {23, 31, 34, 46}};
    for (int t = 0; t < 4; t++) {
        rb_trans ta = (rb_trans) (t >> 1), tb = (rb_trans) (t & 1);
        double C[4] = {1, 1, 1, 1};
        float Af[4], Bf[4], Cf[4] = {1, 1, 1, 1};
        for (int i = 0; i < 4; i++) Af[i] = (float) A[i], Bf[i] = (float) B[i];
        cr_assert_eq(rb_gemm_f64(ta, tb, 2, 2, 2, 1.0, A, 2, B, 2, 0.5, C, 2), 0);
        cr_assert_eq(rb_gemm_f32(ta, tb, 2, 2, 2, 1.0f, Af, 2, Bf, 2, 0.5f, Cf, 2), 0);
        for (int i = 0; i < 4; i++) {
            cr_assert_eq(C[i], want[t][i] + 0.5, "ta=%d tb=%d i=%d", ta, tb, i);
            cr_assert_eq(Cf[i], (float) (want[t][i] + 0.5), "f32 ta=%d tb=%d i=%d", ta, tb, i);
        }
    }
}

Test(linalg, gemm_random_padded_against_loops) {
    uint64_t seed = rbt_seed();
    size_t m = 13, n = 7, k = 9, lda = 17, ldb = 11, ldc = 10;
    for (int t = 0; t < 4; t++) {
        rb_trans ta = (rb_trans) (t >> 1), tb = (rb_trans) (t & 1);
        double *A = rbt_normal_f64(20 * lda, seed, 1), *B = rbt_normal_f64(20 * ldb, seed, 2);
        double *C = rbt_normal_f64(m * ldc, seed, 3), *C0 = malloc(m * ldc * sizeof *C0);
        memcpy(C0, C, m * ldc * sizeof *C0);
        cr_assert_eq(rb_gemm_f64(ta, tb, m, n, k, 1.5, A, lda, B, ldb, -0.25, C, ldc), 0);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < ldc; j++) {
                if (j >= n) {
                    cr_assert_eq(C[i * ldc + j], C0[i * ldc + j], "padding touched");
                    continue;
                }
                double s = 0;
                for (size_t p = 0; p < k; p++)
                    s += (ta ? A[p * lda + i] : A[i * lda + p]) *
                         (tb ? B[j * ldb + p] : B[p * ldb + j]);
                double want = 1.5 * s - 0.25 * C0[i * ldc + j];
                cr_assert(NEAR(C[i * ldc + j], want, 1e-12 * (1 + fabs(want))),
                          "t=%d (%zu,%zu) seed=%llu", t, i, j, (unsigned long long) seed);
            }
        free(A);
        free(B);
        free(C);
        free(C0);
    }
}

Test(linalg, qr_residual_orthonormal_and_upper) {
    uint64_t seed = rbt_seed();
    size_t m = 9, n = 5, lda = 6, ldr = 7;
    double *A = rbt_normal_f64(m * lda, seed, 4), *A0 = malloc(m * lda * sizeof *A0);
    double R[5 * 7];
    memcpy(A0, A, m * lda * sizeof *A0);
    cr_assert_eq(rb_qr_f64(A, m, n, lda, R, ldr), 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double qtq = 0;
            for (size_t p = 0; p < m; p++) qtq += A[p * lda + i] * A[p * lda + j];
            cr_assert(NEAR(qtq, i == j, 1e-13), "Q^T Q (%zu,%zu) seed=%llu", i, j,
                      (unsigned long long) seed);
            if (j < i) cr_assert_eq(R[i * ldr + j], 0.0);
        }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < n; p++) s += A[i * lda + p] * R[p * ldr + j];
            cr_assert(NEAR(s, A0[i * lda + j], 1e-12), "QR != A (%zu,%zu)", i, j);
        }
    free(A);
    free(A0);
}

Test(linalg, cholesky_by_hand_and_residual) {
    double A[4] = {4, 2, 2, 3};
    cr_assert_eq(rb_cholesky_f64(A, 2, 2), 0);
    cr_assert(NEAR(A[0], 2, 1e-15) && NEAR(A[2], 1, 1e-15) && NEAR(A[3], sqrt(2.0), 1e-15));
    cr_assert_eq(A[1], 0.0, "upper triangle must be cleared");

    uint64_t seed = rbt_seed();
    size_t n = 8;
    double *M = rbt_normal_f64(n * n, seed, 5), S[64], L[64];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = i == j ? (double) n : 0;
            for (size_t p = 0; p < n; p++) s += M[i * n + p] * M[j * n + p];
            S[i * n + j] = L[i * n + j] = s;
        }
    cr_assert_eq(rb_cholesky_f64(L, n, n), 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < n; p++) s += L[i * n + p] * L[j * n + p];
            cr_assert(NEAR(s, S[i * n + j], 1e-12 * n), "L L^T (%zu,%zu) seed=%llu", i, j,
                      (unsigned long long) seed);
        }
    free(M);

    double bad[4] = {1, 2, 2, 1};
    cr_assert_eq(rb_cholesky_f64(bad, 2, 2), RB_ELIB);
    cr_assert(strstr(rb_error_detail(), "info = 2") != NULL, "%s", rb_error_detail());
}

Test(linalg, eigh_by_hand_and_residual) {
    double A[4] = {2, 1, 1, 2}, w[2];
    cr_assert_eq(rb_eigh_f64(A, 2, 2, w), 0);
    cr_assert(NEAR(w[0], 1, 1e-14) && NEAR(w[1], 3, 1e-14), "%g %g", w[0], w[1]);

    uint64_t seed = rbt_seed();
    size_t n = 10, lda = 12;
    double *M = rbt_normal_f64(n * lda, seed, 6), S[120], V[120], ev[10];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            S[i * lda + j] = V[i * lda + j] = M[i * lda + j] + M[j * lda + i];
    cr_assert_eq(rb_eigh_f64(V, n, lda, ev), 0);
    for (size_t j = 0; j < n; j++) {
        if (j) cr_assert(ev[j] >= ev[j - 1], "ascending");
        for (size_t i = 0; i < n; i++) {
            double av = 0;
            for (size_t p = 0; p < n; p++) av += S[i * lda + p] * V[p * lda + j];
            cr_assert(NEAR(av, ev[j] * V[i * lda + j], 1e-12 * 10), "A v = l v j=%zu seed=%llu", j,
                      (unsigned long long) seed);
        }
    }
    free(M);
}

static void svd_check(size_t m, size_t n, uint64_t seed) {
    size_t k = m < n ? m : n;
    double *A = rbt_normal_f64(m * n, seed, m * 100 + n), *A0 = malloc(m * n * sizeof *A0);
    double *U = malloc(m * k * sizeof *U), *Vt = malloc(k * n * sizeof *Vt), s[16];
    memcpy(A0, A, m * n * sizeof *A0);
    cr_assert_eq(rb_svd_f64(A, m, n, n, s, U, k, Vt, n), 0);
    for (size_t i = 1; i < k; i++) cr_assert(s[i] <= s[i - 1] && s[i] >= 0);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double r = 0;
            for (size_t p = 0; p < k; p++) r += U[i * k + p] * s[p] * Vt[p * n + j];
            cr_assert(NEAR(r, A0[i * n + j], 1e-12), "U S Vt (%zu,%zu) %zux%zu seed=%llu", i, j, m,
                      n, (unsigned long long) seed);
        }
    free(A);
    free(A0);
    free(U);
    free(Vt);
}

Test(linalg, svd_by_hand_and_residual) {
    double A[4] = {3, 0, 0, -2}, s[2], U[4], Vt[4];
    cr_assert_eq(rb_svd_f64(A, 2, 2, 2, s, U, 2, Vt, 2), 0);
    cr_assert(NEAR(s[0], 3, 1e-15) && NEAR(s[1], 2, 1e-15), "%g %g", s[0], s[1]);
    uint64_t seed = rbt_seed();
    svd_check(7, 4, seed);
    svd_check(4, 7, seed);
    svd_check(6, 6, seed);
}

Test(linalg, solve_by_hand_and_residual) {
    double A[4] = {2, 1, 1, 3}, b[2] = {3, 5};
    double A2[4] = {2, 1, 1, 3}, b2[2] = {3, 5};
    cr_assert_eq(rb_solve_f64(A, 2, 2, b, 1, 1), 0);
    cr_assert(NEAR(b[0], 0.8, 1e-15) && NEAR(b[1], 1.4, 1e-15), "%g %g", b[0], b[1]);
    cr_assert_eq(rb_solve_spd_f64(A2, 2, 2, b2, 1, 1), 0);
    cr_assert(NEAR(b2[0], 0.8, 1e-15) && NEAR(b2[1], 1.4, 1e-15), "%g %g", b2[0], b2[1]);

    uint64_t seed = rbt_seed();
    size_t n = 9, nrhs = 3;
    double *M = rbt_normal_f64(n * n, seed, 7), *B = rbt_normal_f64(n * nrhs, seed, 8);
    double LU[81], X[27];
    memcpy(LU, M, sizeof LU);
    memcpy(X, B, sizeof X);
    cr_assert_eq(rb_solve_f64(LU, n, n, X, nrhs, nrhs), 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < nrhs; j++) {
            /* relative to the row's magnitudes: LU is backward stable, but x (and so the
             * absolute residual) grows without bound as a random A nears singularity (an
             * absolute 1e-10 failed about 1e-5 of the seeds); the worst of 2e6 seeds is 4e-15,
             * a wrong solve is O(1) */
            double s = 0, mag = fabs(B[i * nrhs + j]);
            for (size_t p = 0; p < n; p++) {
                s += M[i * n + p] * X[p * nrhs + j];
                mag += fabs(M[i * n + p] * X[p * nrhs + j]);
            }
            cr_assert(fabs(s - B[i * nrhs + j]) <= 1e-12 * mag,
                      "A x = b: residual %g of %g, seed=%llu", s - B[i * nrhs + j], mag,
                      (unsigned long long) seed);
        }
    free(M);
    free(B);

    double sing[4] = {1, 2, 2, 4}, rhs[2] = {1, 1};
    cr_assert_eq(rb_solve_f64(sing, 2, 2, rhs, 1, 1), RB_ELIB);
    cr_assert(strstr(rb_error_detail(), "singular") != NULL, "%s", rb_error_detail());
    double npd[4] = {1, 2, 2, 1}, rhs2[2] = {1, 1};
    cr_assert_eq(rb_solve_spd_f64(npd, 2, 2, rhs2, 1, 1), RB_ELIB);
}

Test(linalg, bad_shapes_are_errors) {
    double A[16] = {0}, B[16] = {0}, C[16] = {0}, w[4], R[16];
    float Af[16] = {0};
    cr_assert_eq(rb_gemm_f64(RB_NOTRANS, RB_NOTRANS, 2, 2, 3, 1, A, 2, B, 2, 0, C, 2), RB_EINVAL);
    cr_assert_eq(rb_gemm_f64(RB_TRANS, RB_NOTRANS, 3, 2, 2, 1, A, 2, B, 2, 0, C, 2), RB_EINVAL);
    cr_assert_eq(rb_gemm_f32(RB_NOTRANS, RB_NOTRANS, 2, 2, 2, 1, Af, 2, NULL, 2, 0, Af, 2),
                 RB_EINVAL);
    cr_assert_eq(rb_gemm_f64(RB_NOTRANS, RB_NOTRANS, 2, 2, 2, 1, A, 2, B, 2, 0, C, 1), RB_EINVAL);
    cr_assert_eq(rb_qr_f64(A, 2, 3, 3, R, 3), RB_EINVAL); /* m < n */
    cr_assert_eq(rb_qr_f64(A, 3, 2, 1, R, 2), RB_EINVAL); /* lda < n */
    cr_assert_eq(rb_qr_f64(A, 3, 2, 2, R, 1), RB_EINVAL); /* ldr < n */
    cr_assert_eq(rb_cholesky_f64(A, 3, 2), RB_EINVAL);
    cr_assert_eq(rb_eigh_f64(A, 2, 2, NULL), RB_EINVAL);
    cr_assert_eq(rb_eigh_f64(A, 4, 3, w), RB_EINVAL);
    cr_assert_eq(rb_svd_f64(A, 3, 2, 2, w, B, 1, C, 2), RB_EINVAL); /* ldu < k */
    cr_assert_eq(rb_svd_f64(A, 0, 2, 2, w, B, 1, C, 2), RB_EINVAL);
    cr_assert_eq(rb_solve_f64(A, 2, 2, B, 3, 2), RB_EINVAL); /* ldb < nrhs */
    cr_assert_eq(rb_solve_spd_f64(A, 2, 1, B, 1, 1), RB_EINVAL);
    cr_assert_eq(
        rb_gemm_f64(RB_NOTRANS, RB_NOTRANS, (size_t) 1 << 32, 1, 1, 1, A, 1, B, 1, 0, C, 1),
        RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "int") != NULL, "%s", rb_error_detail());
}

/* The note on OpenBLAS's kernel set: only for a set older than AVX2 on a CPU that has AVX2, in
 * a library that picks its set at load, and it names the set to ask for (SkylakeX with
 * AVX-512, Haswell with AVX2 only). */
Test(linalg, blas_core_note) {
    static const struct {
        const char *core;
        unsigned isa;
        int dynamic;
        const char *names; /* NULL: no note */
    } cases[] = {
        {"Prescott", RB_ISA_AVX2 | RB_ISA_AVX512, 1, "OPENBLAS_CORETYPE=SkylakeX"},
        {"Prescott", RB_ISA_AVX2, 1, "OPENBLAS_CORETYPE=Haswell"},
        {"Nehalem", RB_ISA_AVX2, 1, "OPENBLAS_CORETYPE=Haswell"},
        {"Sandybridge", RB_ISA_AVX2 | RB_ISA_AVX512, 1, "OPENBLAS_CORETYPE=SkylakeX"},
        {"Prescott", RB_ISA_AVX2 | RB_ISA_AVX512, 0, NULL}, /* built for one set: env ignored */
        {"Prescott", 0, 1, NULL},                           /* a CPU without AVX2: it fits */
        {"Haswell", RB_ISA_AVX2, 1, NULL},
        {"Zen", RB_ISA_AVX2 | RB_ISA_AVX512, 1, NULL},
        {"SkylakeX", RB_ISA_AVX2 | RB_ISA_AVX512, 1, NULL},
        {"COOPERLAKE", RB_ISA_AVX2 | RB_ISA_AVX512, 1, NULL}, /* any case */
        {"SapphireRapids", RB_ISA_AVX2 | RB_ISA_AVX512, 1, NULL},
        {NULL, RB_ISA_AVX2, 1, NULL}, /* the library does not say */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *note = rb_blas_core_note(cases[i].core, cases[i].isa, cases[i].dynamic);
        if (!cases[i].names) {
            cr_expect_null(note, "%s isa %u: %s", cases[i].core, cases[i].isa, note);
            continue;
        }
        cr_expect(note && strstr(note, cases[i].names), "%s isa %u: %s", cases[i].core,
                  cases[i].isa, note ? note : "(none)");
    }
    const char *core = rb_blas_core(); /* what this machine's library picked */
    cr_expect(core && *core, "openblas_get_corename gave nothing");
}
