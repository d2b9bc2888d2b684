/* Row norms, dots and scaling against direct sums on fresh inputs, including n = 0 and strides. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

Test(vecops, against_direct_sums) {
    uint64_t seed = rbt_seed();
    size_t rows = 7, n = 131, stride = 140;
    float *a = rbt_normal_f32(rows * stride, seed, 1), *b = rbt_normal_f32(rows * stride, seed, 2);
    double nrm[7], dot[7];
    rb_rows_sqnorm_f32(a, rows, n, stride, nrm);
    rb_rows_dot_f32(a, b, rows, n, stride, dot);
    for (size_t r = 0; r < rows; r++) {
        /* The documented order written out: 16 strided partial sums, then halved pairwise. */
        double pn[16] = {0}, pd[16] = {0};
        for (size_t j = 0; j < n; j++) {
            pn[j % 16] += (double) a[r * stride + j] * a[r * stride + j];
            pd[j % 16] += (double) a[r * stride + j] * b[r * stride + j];
        }
        for (int h = 8; h >= 1; h /= 2)
            for (int l = 0; l < h; l++) pn[l] += pn[l + h], pd[l] += pd[l + h];
        cr_assert_eq(nrm[r], pn[0], "row %zu (seed %llu)", r, (unsigned long long) seed);
        cr_assert_eq(dot[r], pd[0], "row %zu", r);
        double seq = 0; /* and a plain sum agrees to rounding */
        for (size_t j = 0; j < n; j++) seq += (double) a[r * stride + j] * a[r * stride + j];
        cr_assert(fabs(seq - nrm[r]) <= 1e-13 * seq);
    }
    float s[7] = {2, -1, 0, 0.5f, 3, 1, -2};
    float keep = a[0 * stride + n]; /* the gap between rows is not touched */
    rb_rows_scale_f32(a, rows, n, stride, s);
    double after[7];
    rb_rows_sqnorm_f32(a, rows, n, stride, after);
    for (size_t r = 0; r < rows; r++)
        cr_assert(fabs(after[r] - nrm[r] * s[r] * s[r]) <= 1e-5 * (nrm[r] * s[r] * s[r] + 1));
    cr_assert_eq(a[n], keep);
    rb_rows_sqnorm_f32(a, rows, 0, stride, after);
    for (size_t r = 0; r < rows; r++) cr_assert_eq(after[r], 0.0);
    free(a);
    free(b);
}
