/* Rotations: orthogonality, inverses, determinism and documented streams of the randomized
 * Hadamard; block-diagonal Hadamard; Haar QR with the sign fix; dense and Kronecker applies. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

/* Rows of M are the images of the unit vectors (M[j] = Q e_j, the columns of Q); returns
 * max |M M^T - I|, which is max |Q^T Q - I| = max |Q Q^T - I| for a square Q. */
static double gram_err_f32(const float *M, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t k = 0; k < n; k++) s += (double) M[i * n + k] * M[j * n + k];
            e = fmax(e, fabs(s - (i == j)));
        }
    return e;
}

static float *identity_f32(size_t n) {
    float *m = calloc(n * n, sizeof *m);
    for (size_t i = 0; i < n; i++) m[i * n + i] = 1;
    return m;
}

Test(rotate, rht_is_orthogonal_and_inverts) {
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 12, 64, 40, 172 * 2, 28 * 16};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (int blocks = 1; blocks <= 2; blocks++) {
            size_t n = ns[t];
            rb_rht r;
            cr_assert_eq(rb_rht_init(&r, n, blocks, seed), 0);
            float *Q = identity_f32(n);
            cr_assert_eq(rb_rht_apply_f32(&r, Q, n, n, RB_FORWARD), 0);
            double e = gram_err_f32(Q, n);
            cr_assert(e < 1e-6, "n=%zu blocks=%d |QQ^T-I| = %g seed=%llu", n, blocks, e,
                      (unsigned long long) seed);
            cr_assert_eq(rb_rht_apply_f32(&r, Q, n, n, RB_INVERSE), 0);
            for (size_t i = 0; i < n * n; i++)
                cr_assert(fabs(Q[i] - (i % (n + 1) == 0)) < 1e-6, "n=%zu round trip", n);
            /* fp64 round trip on a padded batch */
            size_t count = 3, stride = n + 5;
            double *x = rbt_normal_f64(count * stride, seed, n), *y = malloc(count * stride * 8);
            memcpy(y, x, count * stride * sizeof *y);
            cr_assert_eq(rb_rht_apply_f64(&r, y, count, stride, RB_FORWARD), 0);
            cr_assert_eq(rb_rht_apply_f64(&r, y, count, stride, RB_INVERSE), 0);
            for (size_t i = 0; i < count * stride; i++)
                cr_assert(fabs(y[i] - x[i]) < 1e-12, "n=%zu f64 i=%zu", n, i);
            free(x);
            free(y);
            free(Q);
            rb_rht_free(&r);
        }
}

/* The documented streams, so the GPU backend can reproduce the signs; and the definition
 * y = H D2 H D1 x spelled out with the Hadamard. */
Test(rotate, rht_uses_documented_streams_and_definition) {
    uint64_t seed = rbt_seed();
    size_t n = 688;
    rb_rht r;
    cr_assert_eq(rb_rht_init(&r, n, 2, seed), 0);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, n, a);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, n, b);
    cr_assert(memcmp(a, r.d1, n * sizeof *a) == 0 && memcmp(b, r.d2, n * sizeof *b) == 0);
    float *x = rbt_normal_f32(n, seed, 9), *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    cr_assert_eq(rb_rht_apply_f32(&r, y, 1, n, RB_FORWARD), 0);
    for (size_t i = 0; i < n; i++) x[i] *= a[i];
    rb_hadamard_f32(x, n, 1, n, RB_FORWARD);
    for (size_t i = 0; i < n; i++) x[i] *= b[i];
    rb_hadamard_f32(x, n, 1, n, RB_FORWARD);
    cr_assert(memcmp(x, y, n * sizeof *x) == 0, "seed=%llu", (unsigned long long) seed);
    free(a);
    free(b);
    free(x);
    free(y);
    rb_rht_free(&r);
}

Test(rotate, rht_same_seed_same_bits_other_seed_other_signs) {
    uint64_t seed = rbt_seed();
    size_t n = 5632;
    rb_rht r1, r2, r3;
    cr_assert_eq(rb_rht_init(&r1, n, 1, seed), 0);
    cr_assert_eq(rb_rht_init(&r2, n, 1, seed), 0);
    cr_assert_eq(rb_rht_init(&r3, n, 1, seed + 1), 0);
    float *x = rbt_normal_f32(n, seed, 3), *y = malloc(n * 4), *z = malloc(n * 4);
    memcpy(y, x, n * 4);
    memcpy(z, x, n * 4);
    rb_rht_apply_f32(&r1, x, 1, n, RB_FORWARD);
    rb_rht_apply_f32(&r2, y, 1, n, RB_FORWARD);
    rb_rht_apply_f32(&r3, z, 1, n, RB_FORWARD);
    cr_assert(memcmp(x, y, n * 4) == 0);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += r1.d1[i] != r3.d1[i];
    /* Binomial(5632, 1/2): far from 0 and from n */
    cr_assert(differ > n / 4 && differ < 3 * n / 4, "differ=%zu", differ);
    cr_assert(memcmp(x, z, n * 4) != 0);
    rb_rht_free(&r1);
    rb_rht_free(&r2);
    rb_rht_free(&r3);
    free(x);
    free(y);
    free(z);
}

Test(rotate, rht_errors) {
    rb_rht r;
    cr_assert_eq(rb_rht_init(&r, 100, 1, 1), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "96, 104") != NULL, "%s", rb_error_detail());
    cr_assert_null(r.d1);
    rb_rht_free(&r);
    cr_assert_eq(rb_rht_init(&r, 64, 3, 1), RB_EINVAL);
    float x[64] = {0};
    cr_assert_eq(rb_rht_f32(x, 64, 1, 64, NULL, NULL, RB_FORWARD), RB_EINVAL);
    cr_assert_eq(rb_rht_apply_f32(NULL, x, 1, 64, RB_FORWARD), RB_EINVAL);
    /* what a method's `rotation: rht` reports: the sizes, then the way out */
    rb_rotation rot;
    cr_assert_eq(rb_rotation_init(&rot, RB_ROT_RHT2, 100, 1), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "96, 104; rotation: haar, qr or none takes any dimension"),
              "%s", rb_error_detail());
    rb_rotation_free(&rot);
}

Test(rotate, block_diagonal_equals_hadamard_per_block) {
    uint64_t seed = rbt_seed();
    static const struct {
        size_t n, b;
    } cases[] = {{256, 16}, {688, 172}, {688, 4}, {5120, 40}, {96, 12}, {64, 64}, {120, 2}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
        for (int d = 0; d < 2; d++) {
            size_t n = cases[t].n, b = cases[t].b, count = 3;
            for (size_t stride = n; stride <= n + 3; stride += 3) {
                float *x = rbt_normal_f32(count * stride, seed, t * 4 + (size_t) d);
                float *y = malloc(count * stride * sizeof *y);
                memcpy(y, x, count * stride * sizeof *y);
                cr_assert_eq(rb_hadamard_block_f32(y, n, count, stride, b, (rb_dir) d), 0);
                for (size_t r = 0; r < count; r++)
                    for (size_t k = 0; k < n / b; k++)
                        rb_hadamard_f32(x + r * stride + k * b, b, 1, b, (rb_dir) d);
                cr_assert(memcmp(x, y, count * stride * sizeof *x) == 0,
                          "n=%zu b=%zu stride=%zu seed=%llu", n, b, stride,
                          (unsigned long long) seed);
                free(x);
                free(y);
            }
        }
    /* a unit vector stays inside its block */
    double e[688] = {0};
    e[200] = 1;
    cr_assert_eq(rb_hadamard_block_f64(e, 688, 1, 688, 172, RB_FORWARD), 0);
    for (size_t i = 0; i < 688; i++)
        cr_assert(i / 172 == 1 ? fabs(fabs(e[i]) - 1 / sqrt(172.0)) < 1e-15 : e[i] == 0, "i=%zu",
                  i);
    float f[100];
    cr_assert_eq(rb_hadamard_block_f32(f, 96, 1, 96, 1, RB_FORWARD), RB_ESIZE);
    cr_assert_eq(rb_hadamard_block_f32(f, 96, 1, 96, 64, RB_FORWARD), RB_ESIZE);
    cr_assert_eq(rb_hadamard_block_f32(f, 96, 1, 96, 192, RB_FORWARD), RB_ESIZE);
    cr_assert_eq(rb_hadamard_block_f32(f, 100, 1, 100, 10, RB_FORWARD), RB_ESIZE);
}

Test(rotate, haar_orthogonal_sign_fixed_deterministic) {
    uint64_t seed = rbt_seed();
    size_t n = 48;
    double *Q = malloc(n * n * sizeof *Q), *Q2 = malloc(n * n * sizeof *Q2);
    double *Q3 = malloc(n * n * sizeof *Q3), *G = malloc(n * n * sizeof *G);
    cr_assert_eq(rb_haar_f64(Q, n, seed), 0);
    cr_assert_eq(rb_haar_f64(Q2, n, seed), 0);
    cr_assert_eq(rb_haar_f64(Q3, n, seed ^ 1), 0);
    cr_assert(memcmp(Q, Q2, n * n * sizeof *Q) == 0, "not deterministic");
    cr_assert(memcmp(Q, Q3, n * n * sizeof *Q) != 0);
    rb_rng_normal_f64(seed, RB_STREAM_HAAR, 0, n * n, G);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double qtq = 0, r = 0; /* Q^T Q and R = Q^T G */
            for (size_t k = 0; k < n; k++) {
                qtq += Q[k * n + i] * Q[k * n + j];
                r += Q[k * n + i] * G[k * n + j];
            }
            cr_assert(fabs(qtq - (i == j)) < 1e-12, "Q^T Q (%zu,%zu) seed=%llu", i, j,
                      (unsigned long long) seed);
            if (i > j) cr_assert(fabs(r) < 1e-10, "R not upper (%zu,%zu)", i, j);
            if (i == j) cr_assert(r > 0, "diag(R)[%zu] = %g: sign fix missing", i, r);
        }
    double one;
    cr_assert_eq(rb_haar_f64(&one, 1, seed), 0);
    /* O(1) = {+1, -1}: with R > 0, Q = sign(G) */
    cr_assert_eq(one, G[0] > 0 ? 1.0 : -1.0, "Q = %g G = %g", one, G[0]);
    cr_assert_eq(rb_haar_f64(Q, 0, seed), RB_EINVAL);
    free(Q);
    free(Q2);
    free(Q3);
    free(G);
}

/* rotation `qr` (TurboQuant's released code): the QR of the same G without the sign fix, so
 * rb_haar_f64's Q with the columns where diag(R) < 0 negated, bit for bit; and, through
 * rb_rotation, a dense rotation of any length that undoes itself. */
Test(rotate, qr_is_haar_without_the_sign_fix) {
    uint64_t seed = rbt_seed();
    size_t n = 40;
    double *H = malloc(n * n * sizeof *H), *Q = malloc(n * n * sizeof *Q);
    double *G = malloc(n * n * sizeof *G);
    cr_assert_eq(rb_haar_f64(H, n, seed), 0);
    cr_assert_eq(rb_qr_gaussian_f64(Q, n, seed), 0);
    rb_rng_normal_f64(seed, RB_STREAM_HAAR, 0, n * n, G);
    size_t flipped = 0;
    for (size_t j = 0; j < n; j++) {
        double r = 0; /* R_jj of this Q: (Q^T G)_jj */
        for (size_t k = 0; k < n; k++) r += Q[k * n + j] * G[k * n + j];
        double s = r < 0 ? -1.0 : 1.0;
        flipped += r < 0;
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(Q[i * n + j] * s, H[i * n + j], "column %zu row %zu seed=%llu", j, i,
                         (unsigned long long) seed);
    }
    /* Householder QR leaves about half the diagonal negative: the fix must have had work to do */
    cr_assert(flipped > 0 && flipped < n, "%zu of %zu columns flipped (seed %llu)", flipped, n,
              (unsigned long long) seed);
    cr_assert_eq(rb_qr_gaussian_f64(Q, 0, seed), RB_EINVAL);

    rb_rotation_kind kind;
    cr_assert_eq(rb_rotation_kind_parse("qr", &kind), 0);
    cr_assert_eq(kind, RB_ROT_QR);
    cr_assert(rb_rotation_is_dense(kind) && rb_rotation_is_dense(RB_ROT_HAAR) &&
              !rb_rotation_is_dense(RB_ROT_RHT));
    rb_rotation rot;
    size_t m = 100, count = 3; /* not a Hadamard order */
    cr_assert_eq(rb_rotation_init(&rot, RB_ROT_QR, m, seed), 0, "%s", rb_error_detail());
    double *Qm = malloc(m * m * sizeof *Qm);
    cr_assert_eq(rb_qr_gaussian_f64(Qm, m, seed), 0);
    for (size_t i = 0; i < m * m; i++) cr_assert_eq(rot.Q[i], (float) Qm[i], "entry %zu", i);
    float *x = rbt_normal_f32(count * m, seed, 7), *y = malloc(count * m * sizeof *y);
    memcpy(y, x, count * m * sizeof *y);
    cr_assert_eq(rb_rotation_apply(&rot, y, count, m, RB_FORWARD), 0);
    cr_assert_eq(rb_rotation_apply(&rot, y, count, m, RB_INVERSE), 0);
    for (size_t i = 0; i < count * m; i++)
        cr_assert(fabsf(y[i] - x[i]) < 1e-5f, "round trip %zu", i);
    rb_rotation_free(&rot);
    free(H);
    free(Q);
    free(G);
    free(Qm);
    free(x);
    free(y);
}

Test(rotate, dense_apply_rows) {
    uint64_t seed = rbt_seed();
    size_t n = 20, count = 5, ldx = 23, ldy = 21;
    double *T = malloc(n * n * sizeof *T);
    cr_assert_eq(rb_haar_f64(T, n, seed), 0);
    float *Tf = malloc(n * n * sizeof *Tf);
    for (size_t i = 0; i < n * n; i++) Tf[i] = (float) T[i];
    float *X = rbt_normal_f32(count * ldx, seed, 1), *Y = calloc(count * ldy, 4),
          *Z = calloc(count * ldx, 4);
    double *Xd = rbt_normal_f64(count * ldx, seed, 2), *Yd = calloc(count * ldy, 8);
    cr_assert_eq(rb_rotate_dense_f32(Tf, n, X, count, ldx, Y, ldy, RB_FORWARD), 0);
    cr_assert_eq(rb_rotate_dense_f64(T, n, Xd, count, ldx, Yd, ldy, RB_FORWARD), 0);
    for (size_t r = 0; r < count; r++)
        for (size_t i = 0; i < n; i++) {
            double s = 0, sd = 0;
            for (size_t k = 0; k < n; k++) {
                s += T[i * n + k] * X[r * ldx + k];
                sd += T[i * n + k] * Xd[r * ldx + k];
            }
            cr_assert(fabs(s - Y[r * ldy + i]) < 1e-5, "T x row %zu", r);
            cr_assert(fabs(sd - Yd[r * ldy + i]) < 1e-13, "T x f64 row %zu", r);
        }
    cr_assert_eq(rb_rotate_dense_f32(Tf, n, Y, count, ldy, Z, ldx, RB_INVERSE), 0);
    for (size_t r = 0; r < count; r++)
        for (size_t i = 0; i < n; i++)
            cr_assert(fabs(Z[r * ldx + i] - X[r * ldx + i]) < 1e-5, "round trip");
    cr_assert_eq(rb_rotate_dense_f32(Tf, n, X, count, 19, Y, ldy, RB_FORWARD), RB_EINVAL);
    free(T);
    free(Tf);
    free(X);
    free(Y);
    free(Z);
    free(Xd);
    free(Yd);
}

/* y = x (P1 kron P2) against the dense Kronecker product, with general (non-orthogonal)
 * factors so that a transposed factor would show; then the inverse factors undo it. */
static void kron_case(size_t n1, size_t n2, uint64_t seed) {
    size_t n = n1 * n2, count = 3, stride = n + 1;
    double *P1 = rbt_normal_f64(n1 * n1, seed, 1), *P2 = rbt_normal_f64(n2 * n2, seed, 2);
    for (size_t i = 0; i < n1; i++) P1[i * n1 + i] += 3 * sqrt((double) n1);
    for (size_t i = 0; i < n2; i++) P2[i * n2 + i] += 3 * sqrt((double) n2);
    double *x = rbt_normal_f64(count * stride, seed, 3), *y = malloc(count * stride * 8);
    double *scratch = malloc(n * sizeof *scratch);
    memcpy(y, x, count * stride * 8);
    cr_assert_eq(rb_kron_apply_f64(y, n1, n2, count, stride, P1, P2, scratch), 0);
    for (size_t r = 0; r < count; r++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += x[r * stride + i] * P1[(i / n2) * n1 + j / n2] * P2[(i % n2) * n2 + j % n2];
            cr_assert(fabs(s - y[r * stride + j]) < 1e-10 * (1 + fabs(s)),
                      "%zux%zu row %zu col %zu seed=%llu", n1, n2, r, j, (unsigned long long) seed);
        }
        cr_assert_eq(y[r * stride + n], x[r * stride + n], "padding touched");
    }
    /* inverse factors via solve(P, I) */
    double *I1 = calloc(n1 * n1, 8), *I2 = calloc(n2 * n2, 8);
    double *L1 = malloc(n1 * n1 * 8), *L2 = malloc(n2 * n2 * 8);
    for (size_t i = 0; i < n1; i++) I1[i * n1 + i] = 1;
    for (size_t i = 0; i < n2; i++) I2[i * n2 + i] = 1;
    memcpy(L1, P1, n1 * n1 * 8);
    memcpy(L2, P2, n2 * n2 * 8);
    cr_assert_eq(rb_solve_f64(L1, n1, n1, I1, n1, n1), 0);
    cr_assert_eq(rb_solve_f64(L2, n2, n2, I2, n2, n2), 0);
    cr_assert_eq(rb_kron_apply_f64(y, n1, n2, count, stride, I1, I2, scratch), 0);
    for (size_t i = 0; i < count * stride; i++)
        cr_assert(fabs(y[i] - x[i]) < 1e-10, "inverse factors i=%zu", i);
    /* fp32 agrees with fp64 */
    float *P1f = malloc(n1 * n1 * 4), *P2f = malloc(n2 * n2 * 4), *yf = malloc(count * stride * 4);
    float *sf = malloc(n * 4);
    for (size_t i = 0; i < n1 * n1; i++) P1f[i] = (float) P1[i];
    for (size_t i = 0; i < n2 * n2; i++) P2f[i] = (float) P2[i];
    for (size_t i = 0; i < count * stride; i++) yf[i] = (float) x[i];
    memcpy(y, x, count * stride * 8);
    cr_assert_eq(rb_kron_apply_f32(yf, n1, n2, count, stride, P1f, P2f, sf), 0);
    cr_assert_eq(rb_kron_apply_f64(y, n1, n2, count, stride, P1, P2, scratch), 0);
    double scale = 0;
    for (size_t i = 0; i < count * stride; i++) scale = fmax(scale, fabs(y[i]));
    for (size_t i = 0; i < count * stride; i++)
        cr_assert(fabs(yf[i] - y[i]) < 1e-5 * scale, "f32 vs f64 i=%zu", i);
    cr_assert_eq(rb_kron_apply_f32(yf, n1, n2, 2, n - 1, P1f, P2f, sf), RB_EINVAL);
    cr_assert_eq(rb_kron_apply_f32(yf, n1, n2, 2, n, P1f, P2f, NULL), RB_EINVAL);
    free(P1);
    free(P2);
    free(x);
    free(y);
    free(scratch);
    free(I1);
    free(I2);
    free(L1);
    free(L2);
    free(P1f);
    free(P2f);
    free(yf);
    free(sf);
}

Test(rotate, kron_apply_equals_dense_kron_and_inverts) {
    uint64_t seed = rbt_seed();
    kron_case(3, 5, seed);
    kron_case(8, 86, seed);
    kron_case(1, 7, seed);
}
