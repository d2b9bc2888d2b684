/* Codebook quantization: thresholds rounded down to fp32, the reference count and dispatch. */
#include "kernels/codebook.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/error.h"
#include "kernels/quant.h"
#include "kernels/quant_variants.h"

/* The largest float <= (a + b) / 2. TwoSum gives a + b = s + err exactly in double; the double
 * s / 2 rounds to the float t, which is stepped down when it lies above the true midpoint. */
static float midpoint_down(float a, float b) {
    double s = (double) a + (double) b, bb = s - a;
    double err = ((double) a - (s - bb)) + ((double) b - bb);
    double h = s * 0.5;
    float t = (float) h;
    if ((double) t > h || ((double) t == h && err < 0)) t = nextafterf(t, -INFINITY);
    return t;
}

int rb_codebook_init(rb_codebook *cb, const float *centroids, size_t k) {
    if (k < 1 || k > RB_CODEBOOK_MAX)
        return rb_error_set(RB_EINVAL, "codebook: k = %zu is outside 1..%d", k, RB_CODEBOOK_MAX);
    for (size_t i = 0; i < k; i++) {
        if (!isfinite(centroids[i]))
            return rb_error_set(RB_EINVAL, "codebook: centroid %zu is %g", i,
                                (double) centroids[i]);
        if (i && centroids[i] < centroids[i - 1])
            return rb_error_set(RB_EINVAL,
                                "codebook: centroids are not sorted (c[%zu] = %g < "
                                "c[%zu] = %g)",
                                i, (double) centroids[i], i - 1, (double) centroids[i - 1]);
    }
    cb->k = k;
    for (size_t i = 0; i < RB_CODEBOOK_MAX; i++) {
        cb->centroids[i] = i < k ? centroids[i] : 0.0f;
        cb->thresholds[i] = i + 1 < k ? midpoint_down(centroids[i], centroids[i + 1]) : INFINITY;
    }
    return RB_OK;
}

int rb_codebook_quant_f32_ref(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                              size_t ld, uint8_t *idx) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            float v = x[r * ld + c];
            if (!isfinite(v))
                return rb_error_set(RB_ENUMERIC,
                                    "codebook: element %zu (row %zu, column %zu) is %g; NaN and "
                                    "Inf are rejected",
                                    r * cols + c, r, c, (double) v);
            unsigned n = 0;
            for (size_t i = 0; i + 1 < cb->k; i++) n += cb->thresholds[i] < v;
            idx[r * cols + c] = (uint8_t) n;
        }
    return RB_OK;
}

RB_OP_DEFINE(rb_op_codebook_quant_f32, "codebook_quant_f32",
             RB_CUDA_VARIANT(rb_codebook_quant_f32_cuda)
                 RB_CODEBOOK_QUANT_F32_FAST_VARIANTS RB_VARIANT("ref", 0,
                                                                rb_codebook_quant_f32_ref));

static int codebook_dispatch(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                             size_t ld, uint8_t *idx) {
    RB_DISPATCH(rb_op_codebook_quant_f32, rb_codebook_quant_fn, (cb, x, rows, cols, ld, idx));
}

int rb_codebook_quantize_check(const rb_codebook *cb, size_t rows, size_t cols, size_t ld) {
    if (!cb || cb->k < 1 || cb->k > RB_CODEBOOK_MAX)
        return rb_error_set(RB_EINVAL, "codebook: not initialised");
    if (rows > 1 && ld < cols)
        return rb_error_set(RB_EINVAL, "codebook: row stride %zu is shorter than cols = %zu", ld,
                            cols);
    return RB_OK;
}

int rb_codebook_quantize_f32(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                             size_t ld, uint8_t *idx) {
    int rc = rb_codebook_quantize_check(cb, rows, cols, ld);
    if (rc || rows == 0 || cols == 0) return rc;
    return codebook_dispatch(cb, x, rows, cols, ld, idx);
}

int rb_codebook_dequantize_f32(const rb_codebook *cb, const uint8_t *idx, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) {
        if (idx[i] >= cb->k)
            return rb_error_set(RB_EINVAL, "codebook: index %u at element %zu is >= k = %zu",
                                idx[i], i, cb->k);
        y[i] = cb->centroids[idx[i]];
    }
    return RB_OK;
}

int rb_codebook_quantize_packed_f32(const rb_codebook *cb, const float *x, size_t n, int bits,
                                    uint8_t *packed) {
    if (bits < 1 || bits > 8 || cb->k > (1u << bits))
        return rb_error_set(RB_EINVAL, "codebook: k = %zu codes do not fit %d bits", cb->k, bits);
    for (size_t i = 0; i < n; i++) /* up front, so that the error names the element */
        if (!isfinite(x[i]))
            return rb_error_set(RB_ENUMERIC,
                                "codebook: element %zu is %g; NaN and Inf are rejected", i,
                                (double) x[i]);
    enum { CHUNK = 64 }; /* 64 * bits bits is a whole number of bytes */
    uint8_t idx[CHUNK];
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t len = n - i0 < CHUNK ? n - i0 : CHUNK;
        int rc = rb_codebook_quantize_f32(cb, x + i0, 1, len, len, idx);
        if (rc) return rc;
        rc = rb_pack_bits(idx, len, bits, packed + i0 / 8 * (size_t) bits);
        if (rc) return rc;
    }
    return RB_OK;
}

rb_cost rb_codebook_cost(size_t n, size_t k) {
    return (rb_cost){(double) n * (double) (k ? k - 1 : 0), 5.0 * (double) n};
}

/* nextafterf(u, +Inf) for finite u, without the libm call. */
static float next_up(float u) {
    if (u == 0.0f) return FLT_TRUE_MIN;
    uint32_t b;
    memcpy(&b, &u, sizeof b);
    b = u > 0.0f ? b + 1 : b - 1;
    memcpy(&u, &b, sizeof b);
    return u;
}

float rb_codebook_unscaled_threshold(float t, float scale) {
    if (!isfinite(t)) return t; /* +Inf padding (never below v), and a NaN compares as one */
    float u = t / scale;
    while (u * scale > t) u = -next_up(-u);
    while (!(u * scale > t)) u = next_up(u);
    return u;
}
