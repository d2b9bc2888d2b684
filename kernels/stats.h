/* Distribution statistics for metrics: kurtosis, per-row max and RMS, incoherence. */
#ifndef RB_STATS_H
#define RB_STATS_H

#include <stddef.h>

/* Everything is computed in double with serial sums in index order, so a result depends only on
 * the input (never on threads). Matrices are row-major, rows x cols with leading dimension
 * ld >= cols; bad shapes or NULL inputs are RB_EINVAL. NaN or Inf inputs propagate. */

/* Pearson kurtosis of x[0..n): m4 / m2^2 with central population moments (divide by n): 3 for a
 * Gaussian, 1 for +-1 signs, 1.8 for a uniform. NaN when n == 0 or the row is constant. */
double rb_kurtosis_f32(const float *x, size_t n);

/* Kurtosis of every row into per_row (may be NULL) and, in *mean (may be NULL), the mean over the
 * rows where it is defined (constant rows are skipped; NaN if every row is constant). */
int rb_kurtosis_rows_f32(const float *X, size_t rows, size_t cols, size_t ld, double *per_row,
                         double *mean);

/* max |x| and RMS = sqrt(sum x^2 / cols) of every row; either output may be NULL. */
int rb_row_max_rms_f32(const float *X, size_t rows, size_t cols, size_t ld, double *maxabs,
                       double *rms);

/* Incoherence mu = max |W| sqrt(rows cols) / ||W||_F, between 1 (all entries of equal
 * magnitude) and sqrt(rows cols) (one nonzero entry); NaN for the zero matrix. */
int rb_incoherence_f32(const float *W, size_t rows, size_t cols, size_t ld, double *mu);

#endif
