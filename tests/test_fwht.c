/* FWHT: every variant against the reference (bit for bit), dispatch, the dense Sylvester matrix,
 * involution, Parseval, accuracy against fp64, sequency order, argument errors and thread
 * determinism. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

Test(fwht, dense_sylvester_matrix_up_to_4096) {
    for (size_t n = 1; n <= 4096; n *= 2) {
        double *x = rbt_normal_f64(n, 11, n);
        double *y = malloc(n * sizeof *y);
        memcpy(y, x, n * sizeof *y);
        cr_assert_eq(rb_fwht_f64(y, n, 1, n, RB_NORM_NONE, RB_ORDER_NATURAL), 0);
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < n; j++) s += (__builtin_popcountll(i & j) & 1 ? -x[j] : x[j]);
            cr_assert(fabs(s - y[i]) <= 1e-9 * sqrt((double) n), "n=%zu i=%zu", n, i);
        }
        free(x);
        free(y);
    }
}

/* A batch laid out as the kernels see it: `count` rows of `stride` floats starting `offset`
 * floats into a random buffer (so the gaps between rows are random too and must survive). */
struct batch {
    float *buf, *data;
    size_t len;
};

static struct batch batch_new(size_t n, size_t count, size_t stride, size_t offset, uint64_t seed,
                              uint64_t stream) {
    struct batch b;
    b.len = offset + (count ? (count - 1) * stride + n : 0) + 5;
    b.buf = rbt_normal_f32(b.len, seed, stream);
    b.data = b.buf + offset;
    return b;
}

static struct batch batch_copy(const struct batch *a) {
    struct batch b = *a;
    b.buf = malloc(a->len * sizeof *b.buf);
    memcpy(b.buf, a->buf, a->len * sizeof *b.buf);
    b.data = b.buf + (a->data - a->buf);
    return b;
}

/* Runs variant v on a copy of `in` and the reference on another copy; the whole buffers (rows,
 * gaps and the slack around them) must be identical. Returns 0 when v declined. */
static int check_variant(const rb_variant *v, const struct batch *in, size_t n, size_t count,
                         size_t stride, float scale, uint64_t seed) {
    struct batch want = batch_copy(in), got = batch_copy(in);
    cr_assert_eq(rb_fwht_f32_ref(want.data, n, count, stride, scale), 0);
    int rc = ((rb_fwht_f32_fn) v->fn)(got.data, n, count, stride, scale);
    if (rc == RB_EDECLINE) {
        cr_assert(n < 16, "%s declined n=%zu", v->name, n);
        cr_assert(memcmp(got.buf, in->buf, in->len * sizeof *in->buf) == 0,
                  "%s declined but wrote (n=%zu)", v->name, n);
    } else {
        cr_assert_eq(rc, 0, "%s n=%zu rc=%d", v->name, n, rc);
        size_t bad = 0;
        while (bad < in->len && memcmp(&got.buf[bad], &want.buf[bad], sizeof(float)) == 0) bad++;
        cr_assert(bad == in->len,
                  "%s differs from ref: n=%zu count=%zu stride=%zu offset=%td scale=%g, first at "
                  "buffer[%zu]: %.9g vs %.9g, seed=%llu",
                  v->name, n, count, stride, in->data - in->buf, (double) scale, bad,
                  bad < in->len ? (double) got.buf[bad] : 0.0,
                  bad < in->len ? (double) want.buf[bad] : 0.0, (unsigned long long) seed);
    }
    free(want.buf);
    free(got.buf);
    return rc != RB_EDECLINE;
}

/* Every fast variant this CPU runs, at every size 2^0..2^22, odd batch counts, unaligned strides
 * and base pointers, scale 1 and 1/sqrt(n). */
Test(fwht, variants_bit_identical_to_reference, .timeout = 120) {
    uint64_t seed = rbt_seed();
    int ran = 0;
    for (size_t vi = 0; vi < rb_op_fwht_f32.count; vi++) {
        const rb_variant *v = &rb_op_fwht_f32.variants[vi];
        if (strcmp(v->name, "ref") == 0 || !rb_variant_enabled(v)) continue;
        for (int k = 0; k <= 22; k++) {
            size_t n = (size_t) 1 << k;
            float ortho = (float) (1.0 / sqrt((double) n));
            /* Fewer rows for long ones; still several rows up to the batch-parallel limit. */
            size_t rows = k <= 12 ? 7 : (k <= 17 ? 3 : 1);
            struct {
                size_t count, stride, offset;
                float scale;
            } cases[] = {
                {rows, n + 1, 1, ortho}, /* odd stride, pointer off by one float */
                {k <= 16 ? 3 : 1, n + 3, 0, 1.0f},
                {1, n, 0, ortho}, /* one aligned row */
                {k <= 12 ? 1 : 0, n, 1, 1.0f},
            };
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                if (cases[c].count == 0) continue;
                struct batch in = batch_new(n, cases[c].count, cases[c].stride, cases[c].offset,
                                            seed, (uint64_t) (k * 16 + c));
                ran +=
                    check_variant(v, &in, n, cases[c].count, cases[c].stride, cases[c].scale, seed);
                free(in.buf);
            }
        }
    }
    if (rb_cpu_isa() & RB_ISA_AVX2) cr_assert(ran > 0, "no fast variant ran");
}

/* Past 2^24 the blocked code recurses on its low stages; one 2^25 row checks that path. */
Test(fwht, variants_bit_identical_at_2e25, .timeout = 120) {
    uint64_t seed = rbt_seed();
    size_t n = (size_t) 1 << 25;
    struct batch in = batch_new(n, 1, n, 1, seed, 1);
    for (size_t vi = 0; vi < rb_op_fwht_f32.count; vi++) {
        const rb_variant *v = &rb_op_fwht_f32.variants[vi];
        if (strcmp(v->name, "ref") == 0 || !rb_variant_enabled(v)) continue;
        check_variant(v, &in, n, 1, n, 1.0f / 4096 / sqrtf(2.0f), seed);
    }
    free(in.buf);
}

Test(fwht, dispatch_follows_selection) {
    uint64_t seed = rbt_seed();
    unsigned isa = rb_cpu_isa();
    const char *sels[] = {"ref", "avx2", "avx512", "auto"};
    size_t sizes[] = {1, 4, 8, 16, 1024};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        float *x = rbt_normal_f32(3 * n, seed, n);
        float *want = malloc(3 * n * sizeof *want);
        memcpy(want, x, 3 * n * sizeof *want);
        rb_fwht_f32_ref(want, n, 3, n, (float) (1.0 / sqrt((double) n)));
        for (size_t s = 0; s < sizeof sels / sizeof sels[0]; s++) {
            cr_assert_eq(rb_kernels_select(sels[s]), 0);
            float *y = malloc(3 * n * sizeof *y);
            memcpy(y, x, 3 * n * sizeof *y);
            cr_assert_eq(rb_fwht_f32(y, n, 3, n, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
            cr_assert(memcmp(y, want, 3 * n * sizeof *y) == 0, "%s n=%zu seed=%llu", sels[s], n,
                      (unsigned long long) seed);
            const char *ran = rb_kernel_last(&rb_op_fwht_f32), *expect = "ref";
            int want512 = strcmp(sels[s], "avx2") != 0 && strcmp(sels[s], "ref") != 0;
            if (want512 && (isa & RB_ISA_AVX512) && n >= 16)
                expect = "avx512";
            else if (strcmp(sels[s], "ref") != 0 && (isa & RB_ISA_AVX2) && n >= 8)
                expect = "avx2";
            cr_assert(ran && strcmp(ran, expect) == 0, "selection %s n=%zu ran %s, expected %s",
                      sels[s], n, ran ? ran : "(none)", expect);
            free(y);
        }
        free(x);
        free(want);
    }
    cr_assert_eq(rb_kernels_select("auto"), 0);
    cr_assert_neq(rb_kernels_select("sse9"), 0);
}

Test(fwht, orthonormal_is_an_involution) {
    uint64_t seed = rbt_seed();
    for (int k = 0; k <= 16; k++) {
        size_t n = (size_t) 1 << k;
        double *x = rbt_normal_f64(n, seed, k), *y = malloc(n * sizeof *y);
        memcpy(y, x, n * sizeof *y);
        rb_fwht_f64(y, n, 1, n, RB_NORM_ORTHO, RB_ORDER_NATURAL);
        rb_fwht_f64(y, n, 1, n, RB_NORM_ORTHO, RB_ORDER_NATURAL);
        for (size_t i = 0; i < n; i++)
            cr_assert(fabs(y[i] - x[i]) <= 1e-12 * fmax(1.0, fabs(x[i])), "f64 n=%zu i=%zu", n, i);
        float *xf = rbt_normal_f32(n, seed, k), *yf = malloc(n * sizeof *yf);
        memcpy(yf, xf, n * sizeof *yf);
        rb_fwht_f32(yf, n, 1, n, RB_NORM_ORTHO, RB_ORDER_NATURAL);
        rb_fwht_f32(yf, n, 1, n, RB_NORM_ORTHO, RB_ORDER_NATURAL);
        double err = rbt_max_relerr_f32(yf, xf, n);
        cr_assert(err <= 8.0 * (k + 1) * FLT_EPSILON, "f32 n=%zu err=%g seed=%llu", n, err,
                  (unsigned long long) seed);
        free(x), free(y), free(xf), free(yf);
    }
}

Test(fwht, parseval_and_fp64_oracle) {
    uint64_t seed = rbt_seed();
    for (int k = 0; k <= 20; k++) {
        size_t n = (size_t) 1 << k;
        float *x = rbt_normal_f32(n, seed, k);
        double *y64 = malloc(n * sizeof *y64);
        for (size_t i = 0; i < n; i++) y64[i] = x[i];
        double in2 = 0, out2 = 0, diff2 = 0, ref2 = 0;
        for (size_t i = 0; i < n; i++) in2 += (double) x[i] * x[i];
        cr_assert_eq(rb_fwht_f32(x, n, 1, n, RB_NORM_NONE, RB_ORDER_NATURAL), 0);
        cr_assert_eq(rb_fwht_f64(y64, n, 1, n, RB_NORM_NONE, RB_ORDER_NATURAL), 0);
        for (size_t i = 0; i < n; i++) {
            out2 += (double) x[i] * x[i];
            diff2 += ((double) x[i] - y64[i]) * ((double) x[i] - y64[i]);
            ref2 += y64[i] * y64[i];
        }
        /* Parseval: ||H x||^2 = n ||x||^2 (exactly for fp64 up to rounding). */
        cr_assert(fabs(out2 - n * in2) <= 4.0 * (k + 1) * FLT_EPSILON * n * in2,
                  "parseval n=%zu: %g vs %g seed=%llu", n, out2, n * in2,
                  (unsigned long long) seed);
        cr_assert(fabs(ref2 - n * in2) <= 1e-12 * n * in2, "f64 parseval n=%zu", n);
        /* Each stage rounds every element once (relative error <= 2^-24) and the stages are
         * orthogonal up to a factor sqrt(2), so the normwise error is at most k * 2^-24. */
        double rel = sqrt(diff2 / (ref2 > 0 ? ref2 : 1));
        cr_assert(rel <= (k + 1) * FLT_EPSILON / 2, "oracle n=%zu rel=%g seed=%llu", n, rel,
                  (unsigned long long) seed);
        free(x);
        free(y64);
    }
}

/* Sign changes along row s of the sequency-ordered matrix, built by transforming unit vectors. */
Test(fwht, sequency_rows_have_s_sign_changes) {
    for (int k = 0; k <= 8; k++) {
        size_t n = (size_t) 1 << k;
        float *m = calloc(n * n, sizeof *m); /* column j = transform of e_j */
        for (size_t j = 0; j < n; j++) m[j * n + j] = 1.0f;
        cr_assert_eq(rb_fwht_f32(m, n, n, n, RB_NORM_NONE, RB_ORDER_SEQUENCY), 0);
        for (size_t s = 0; s < n; s++) {
            size_t changes = 0;
            for (size_t j = 1; j < n; j++) {
                float a = m[(j - 1) * n + s], b = m[j * n + s];
                cr_assert(fabsf(a) == 1.0f && fabsf(b) == 1.0f, "n=%zu entries are +-1", n);
                changes += (a > 0) != (b > 0);
            }
            cr_assert_eq(changes, s, "n=%zu row %zu has %zu sign changes", n, s, changes);
        }
        if (n == 4) {
            const size_t natural[4] = {0, 2, 3, 1};
            for (size_t s = 0; s < 4; s++)
                for (size_t j = 0; j < 4; j++) {
                    float h = __builtin_popcountll(natural[s] & j) & 1 ? -1.0f : 1.0f;
                    cr_assert_eq(m[j * n + s], h, "n=4 sequency row %zu col %zu", s, j);
                }
        }
        free(m);
    }
}

Test(fwht, argument_errors) {
    float x[8] = {0};
    double d[8] = {0};
    cr_assert_eq(rb_fwht_f32(x, 0, 1, 8, RB_NORM_NONE, RB_ORDER_NATURAL), RB_ESIZE);
    cr_assert_eq(rb_fwht_f32(x, 3, 1, 8, RB_NORM_NONE, RB_ORDER_NATURAL), RB_ESIZE);
    cr_assert_eq(
        rb_fwht_f32(x, (size_t) 1 << 31, 1, (size_t) 1 << 31, RB_NORM_NONE, RB_ORDER_NATURAL),
        RB_ESIZE);
    cr_assert_eq(rb_fwht_f32(x, 4, 2, 3, RB_NORM_NONE, RB_ORDER_NATURAL), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "stride") != NULL, "%s", rb_error_detail());
    cr_assert_eq(rb_fwht_f64(d, 0, 1, 8, RB_NORM_NONE, RB_ORDER_NATURAL), RB_ESIZE);
    cr_assert_eq(rb_fwht_f64(d, 6, 1, 8, RB_NORM_NONE, RB_ORDER_NATURAL), RB_ESIZE);
    cr_assert_eq(rb_fwht_f64(d, 4, 2, 3, RB_NORM_NONE, RB_ORDER_NATURAL), RB_EINVAL);
    /* A single row may have any stride; no rows is a no-op. */
    cr_assert_eq(rb_fwht_f32(x, 8, 1, 0, RB_NORM_NONE, RB_ORDER_NATURAL), 0);
    cr_assert_eq(rb_fwht_f32(x, 8, 0, 0, RB_NORM_NONE, RB_ORDER_NATURAL), 0);
}

/* Same bits with one, two and three threads (and equal to the reference), for batches and for
 * single rows of 2^17 .. 2^22 (split across threads inside the row). */
Test(fwht, same_bits_with_one_and_two_threads, .timeout = 120) {
    uint64_t seed = rbt_seed();
    struct {
        size_t n, count;
    } shapes[] = {{1024, 513},           {(size_t) 1 << 16, 5}, {(size_t) 1 << 17, 1},
                  {(size_t) 1 << 18, 3}, {(size_t) 1 << 19, 1}, {(size_t) 1 << 20, 1},
                  {(size_t) 1 << 21, 1}, {(size_t) 1 << 22, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        size_t n = shapes[si].n, count = shapes[si].count, len = n * count;
        float *x = rbt_normal_f32(len, seed, si), *want = malloc(len * sizeof *want);
        memcpy(want, x, len * sizeof *want);
        rb_fwht_f32_ref(want, n, count, n, (float) (1.0 / sqrt((double) n)));
        for (int t = 1; t <= 3; t++) {
            cr_assert_eq(rb_threads_set(t), 0);
            float *y = malloc(len * sizeof *y);
            memcpy(y, x, len * sizeof *y);
            cr_assert_eq(rb_fwht_f32(y, n, count, n, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
            cr_assert(memcmp(y, want, len * sizeof *y) == 0,
                      "threads=%d n=%zu count=%zu differs (seed=%llu)", t, n, count,
                      (unsigned long long) seed);
            free(y);
        }
        rb_threads_set(1);
        free(x);
        free(want);
    }
}
