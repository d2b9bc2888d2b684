/* FWHT: argument checks, the reference kernels, sequency reordering and the dispatch table. */
#include "kernels/fwht.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/fwht_variants.h"

int rb_is_pow2(size_t n) {
    return n && !(n & (n - 1));
}

int rb_log2_exact(size_t n) {
    if (!rb_is_pow2(n)) return -1;
    int k = 0;
    while ((size_t) 1 << k != n) k++;
    return k;
}

size_t rb_sequency_to_natural(size_t s, int k) {
    size_t g = s ^ (s >> 1), r = 0;
    for (int i = 0; i < k; i++) r |= ((g >> i) & 1) << (k - 1 - i);
    return r;
}

rb_cost rb_fwht_cost(size_t n, size_t count, size_t elem_bytes) {
    int k = rb_log2_exact(n);
    double rows = (double) count, len = (double) n;
    return (rb_cost){rows * len * (k > 0 ? k : 0), 2.0 * rows * len * (double) elem_bytes};
}

/* Reference: radix-2 stages, stride 1 first, then the scale. The order of the stages defines the
 * fp32 rounding that every optimized variant reproduces. */
int rb_fwht_f32_ref(float *data, size_t n, size_t count, size_t stride, float scale) {
    for (size_t r = 0; r < count; r++) {
        float *x = data + r * stride;
        for (size_t h = 1; h < n; h *= 2)
            for (size_t i = 0; i < n; i += 2 * h)
                for (size_t j = i; j < i + h; j++) {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
        if (scale != 1.0f)
            for (size_t i = 0; i < n; i++) x[i] *= scale;
    }
    return RB_OK;
}

RB_OP_DEFINE(rb_op_fwht_f32, "fwht_f32",
             RB_CUDA_VARIANT(rb_fwht_f32_cuda)
                 RB_FWHT_F32_FAST_VARIANTS RB_VARIANT("ref", 0, rb_fwht_f32_ref));

int rb_fwht_check(size_t n, size_t count, size_t stride) {
    int k = rb_log2_exact(n);
    if (k < 0 || k > RB_FWHT_LOG2_MAX)
        return rb_error_set(RB_ESIZE, "fwht: n = %zu is not a power of two 2^0..2^%d", n,
                            RB_FWHT_LOG2_MAX);
    if (count > 1 && stride < n)
        return rb_error_set(RB_EINVAL, "fwht: row stride %zu is shorter than n = %zu", stride, n);
    return RB_OK;
}

/* Sequency order: out[s] = natural[bitrev(gray(s))], through one row of scratch. */
#define PERMUTE_ROWS(T)                                                                           \
    do {                                                                                          \
        T *tmp = malloc(n * sizeof *tmp);                                                         \
        if (!tmp) return rb_error_set(RB_ENOMEM, "fwht: no memory for a sequency row of %zu", n); \
        int k = rb_log2_exact(n);                                                                 \
        for (size_t r = 0; r < count; r++) {                                                      \
            T *x = data + r * stride;                                                             \
            memcpy(tmp, x, n * sizeof *tmp);                                                      \
            for (size_t s = 0; s < n; s++) x[s] = tmp[rb_sequency_to_natural(s, k)];              \
        }                                                                                         \
        free(tmp);                                                                                \
    } while (0)

static int fwht_f32_dispatch(float *data, size_t n, size_t count, size_t stride, float scale) {
    RB_DISPATCH(rb_op_fwht_f32, rb_fwht_f32_fn, (data, n, count, stride, scale));
}

int rb_fwht_f32(float *data, size_t n, size_t count, size_t stride, rb_norm norm, rb_order order) {
    int rc = rb_fwht_check(n, count, stride);
    if (rc) return rc;
    if (count == 0) return RB_OK;
    float scale = norm == RB_NORM_ORTHO ? (float) (1.0 / sqrt((double) n)) : 1.0f;
    rc = fwht_f32_dispatch(data, n, count, stride, scale);
    if (rc == 0 && order == RB_ORDER_SEQUENCY) PERMUTE_ROWS(float);
    return rc;
}

int rb_fwht_f64(double *data, size_t n, size_t count, size_t stride, rb_norm norm, rb_order order) {
    int rc = rb_fwht_check(n, count, stride);
    if (rc) return rc;
    double scale = norm == RB_NORM_ORTHO ? 1.0 / sqrt((double) n) : 1.0;
    for (size_t r = 0; r < count; r++) {
        double *x = data + r * stride;
        for (size_t h = 1; h < n; h *= 2)
            for (size_t i = 0; i < n; i += 2 * h)
                for (size_t j = i; j < i + h; j++) {
                    double a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
        if (scale != 1.0)
            for (size_t i = 0; i < n; i++) x[i] *= scale;
    }
    if (order == RB_ORDER_SEQUENCY) PERMUTE_ROWS(double);
    return RB_OK;
}
