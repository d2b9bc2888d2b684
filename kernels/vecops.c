/* Row-wise vector primitives: the plain-C references and their dispatch live in
 * kernels/rowcodec.c (rb_rows_sqnorm_f32, rb_rows_dot_f32, rb_rows_scale_f32). */
#include "kernels/vecops.h"
