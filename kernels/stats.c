/* Kurtosis, per-row max / RMS and incoherence, in double with fixed summation order. */
#include "kernels/stats.h"

#include <math.h>

#include "kernels/error.h"

static int check(const char *fn, const float *X, size_t rows, size_t cols, size_t ld) {
    if (!X) return rb_error_set(RB_EINVAL, "%s: matrix is NULL", fn);
    if (rows == 0 || cols == 0)
        return rb_error_set(RB_EINVAL, "%s: empty matrix (%zu x %zu)", fn, rows, cols);
    if (rows > 1 && ld < cols)
        return rb_error_set(RB_EINVAL, "%s: leading dimension %zu < %zu columns", fn, ld, cols);
    return RB_OK;
}

/* Two passes (mean, then central moments) rather than raw power sums, which cancel badly when
 * the mean is large against the spread. */
static double kurtosis(const float *x, size_t n, int *constant) {
    *constant = 0;
    if (!x || n == 0) return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    double mean = s / (double) n, m2 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean, d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
    }
    m2 /= (double) n;
    m4 /= (double) n;
    if (m2 == 0) {
        *constant = 1;
        return NAN;
    }
    return m4 / (m2 * m2);
}

double rb_kurtosis_f32(const float *x, size_t n) {
    int constant;
    return kurtosis(x, n, &constant);
}

int rb_kurtosis_rows_f32(const float *X, size_t rows, size_t cols, size_t ld, double *per_row,
                         double *mean) {
    int rc = check("kurtosis", X, rows, cols, ld);
    if (rc) return rc;
    double sum = 0;
    size_t defined = 0;
    for (size_t r = 0; r < rows; r++) {
        int constant;
        double k = kurtosis(X + r * ld, cols, &constant);
        if (per_row) per_row[r] = k;
        if (!constant) { /* a NaN input propagates; only constant rows are skipped */
            sum += k;
            defined++;
        }
    }
    if (mean) *mean = defined ? sum / (double) defined : NAN;
    return RB_OK;
}

int rb_row_max_rms_f32(const float *X, size_t rows, size_t cols, size_t ld, double *maxabs,
                       double *rms) {
    int rc = check("row_max_rms", X, rows, cols, ld);
    if (rc) return rc;
    for (size_t r = 0; r < rows; r++) {
        const float *x = X + r * ld;
        double mx = 0, ss = 0;
        for (size_t i = 0; i < cols; i++) {
            double a = fabs((double) x[i]);
            mx = a > mx || isnan(a) ? a : mx;
            ss += a * a;
        }
        if (maxabs) maxabs[r] = mx;
        if (rms) rms[r] = sqrt(ss / (double) cols);
    }
    return RB_OK;
}

int rb_incoherence_f32(const float *W, size_t rows, size_t cols, size_t ld, double *mu) {
    int rc = check("incoherence", W, rows, cols, ld);
    if (rc) return rc;
    if (!mu) return rb_error_set(RB_EINVAL, "incoherence: mu is NULL");
    double mx = 0, ss = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < cols; i++) {
            double a = fabs((double) W[r * ld + i]);
            mx = a > mx || isnan(a) ? a : mx;
            ss += a * a;
        }
    *mu = ss > 0 ? mx * sqrt((double) rows * (double) cols) / sqrt(ss) : NAN;
    return RB_OK;
}
