/* Helpers for the CUDA tests (tests/cuda_util.h). */
#include "tests/cuda_util.h"

#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/half.h"
#include "kernels/kv_quant.h"

void *rbt_cu_alloc(const rb_cuda_ops *cu, size_t bytes) {
    void *p = NULL;
    RBT_CU_OK(cu->malloc(&p, bytes));
    RBT_CU_OK(cu->memset(p, 0xFF, bytes, NULL));
    /* Created streams do not wait for the default stream: finish before anyone launches on one. */
    RBT_CU_OK(cu->stream_sync(NULL));
    return p;
}

void *rbt_cu_upload(const rb_cuda_ops *cu, const void *host, size_t bytes) {
    void *p = NULL;
    RBT_CU_OK(cu->malloc(&p, bytes));
    RBT_CU_OK(cu->memcpy_h2d(p, host, bytes, NULL));
    RBT_CU_OK(cu->stream_sync(NULL)); /* see rbt_cu_alloc */
    return p;
}

void *rbt_cu_download(const rb_cuda_ops *cu, const void *dev, size_t bytes) {
    void *h = malloc(bytes ? bytes : 1);
    cr_assert(h);
    RBT_CU_OK(cu->stream_sync(NULL));
    RBT_CU_OK(cu->memcpy_d2h(h, dev, bytes, NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    return h;
}

void rbt_cu_free(const rb_cuda_ops *cu, void *dev) {
    RBT_CU_OK(cu->free(dev));
}

void rbt_cu_poison(const rb_cuda_ops *cu, void *dev, size_t bytes) {
    RBT_CU_OK(cu->memset(dev, 0xFF, bytes, NULL));
    RBT_CU_OK(cu->stream_sync(NULL)); /* see rbt_cu_alloc */
}

static uint16_t bf16_bits(float x) {
    float r = rb_bf16_round(x);
    uint32_t u;
    memcpy(&u, &r, 4);
    return (uint16_t) (u >> 16);
}

static float bf16_widen(uint16_t h) {
    uint32_t u = (uint32_t) h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float rbt_dtype_round(float x, rb_dtype t) {
    if (t == RB_DT_F16) return rb_f16_round(x);
    if (t == RB_DT_BF16) return bf16_widen(bf16_bits(x));
    return x;
}

void rbt_encode_dtype(const float *x, size_t n, rb_dtype t, void *out) {
    if (t == RB_DT_F32) {
        memcpy(out, x, n * 4);
        return;
    }
    uint16_t *o = out;
    for (size_t i = 0; i < n; i++) o[i] = t == RB_DT_F16 ? rb_f32_to_f16(x[i]) : bf16_bits(x[i]);
}

void rbt_decode_dtype(const void *in, size_t n, rb_dtype t, float *out) {
    if (t == RB_DT_F32) {
        memcpy(out, in, n * 4);
        return;
    }
    const uint16_t *h = in;
    for (size_t i = 0; i < n; i++) out[i] = t == RB_DT_F16 ? rb_f16_to_f32(h[i]) : bf16_widen(h[i]);
}

void *rbt_cu_upload_dtype(const rb_cuda_ops *cu, const float *x, size_t n, rb_dtype t,
                          float *widened) {
    size_t bytes = n * rb_dtype_size(t);
    void *h = malloc(bytes ? bytes : 1);
    cr_assert(h);
    rbt_encode_dtype(x, n, t, h);
    if (widened) rbt_decode_dtype(h, n, t, widened);
    void *d = rbt_cu_upload(cu, h, bytes);
    free(h);
    return d;
}

float *rbt_cu_download_dtype(const rb_cuda_ops *cu, const void *dev, size_t n, rb_dtype t) {
    void *h = rbt_cu_download(cu, dev, n * rb_dtype_size(t));
    float *f = malloc(n ? n * 4 : 1);
    cr_assert(f);
    rbt_decode_dtype(h, n, t, f);
    free(h);
    return f;
}

size_t rbt_first_diff(const void *a, const void *b, size_t n, size_t elem_bytes) {
    const unsigned char *pa = a, *pb = b;
    if (!memcmp(pa, pb, n * elem_bytes)) return SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (memcmp(pa + i * elem_bytes, pb + i * elem_bytes, elem_bytes)) return i;
    return SIZE_MAX;
}

size_t rbt_first_diff_f32_nan(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], 4)) return i;
    }
    return SIZE_MAX;
}

double rbt_normwise_relerr_f32(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double) a[i] - b[i];
        num += d * d;
        den += (double) b[i] * b[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

void rbt_cu_still_usable(const rb_cuda_ops *cu) {
    float x[5] = {1, -2, 3.5f, 0, 7};
    float *d = rbt_cu_upload(cu, x, sizeof x);
    float *y = rbt_cu_download(cu, d, sizeof x);
    cr_assert(!memcmp(x, y, sizeof x), "the CUDA context is broken after an error");
    free(y);
    rbt_cu_free(cu, d);
}

int rbt_cuda_emulated(void) {
    const char *e = getenv("RBT_CUDA_EMULATE");
    return e && *e && strcmp(e, "0") != 0;
}
