/* FWHT: every variant against the reference, the dense Sylvester matrix, involution, Parseval,
 * sequency order and argument errors. */
#include <criterion/criterion.h>
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
