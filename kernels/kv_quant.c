/* KV-cache INT4 encode/decode (SAW-INT4): the reference kernel, the dispatch table, the threaded
 * public entry point and the decode. */
#include "kernels/kv_quant.h"

#include <math.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/fwht.h"
#include "kernels/kv_quant_variants.h"
#include "kernels/pool.h"

int rb_kv_int4_encode_f32_ref(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                              unsigned flags, uint8_t *packed, float *sz) {
    float v[RB_KV_INT4_DMAX];
    const float inv = (float) (1.0 / sqrt((double) m));
    size_t half = d / 2;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * stride;
        for (size_t j = 0; j < d; j++) v[j] = m > 1 ? xr[j] * inv : xr[j];
        for (size_t b = 0; b < d; b += m)
            for (size_t h = 1; h < m; h *= 2)
                for (size_t i = b; i < b + m; i += 2 * h)
                    for (size_t j = i; j < i + h; j++) {
                        float a = v[j], c = v[j + h];
                        v[j] = a + c;
                        v[j + h] = a - c;
                    }
        if (flags & RB_KV_BF16)
            for (size_t j = 0; j < d; j++) v[j] = rb_bf16_round(v[j]);
        float mn = v[0], mx = v[0];
        for (size_t j = 1; j < d; j++) {
            mn = v[j] < mn ? v[j] : mn;
            mx = v[j] > mx ? v[j] : mx;
        }
        float scale, z;
        rb_kv_scale_zero(mn, mx, flags, &scale, &z);
        uint8_t *out = packed + r * half;
        for (size_t j = 0; j < half; j++) {
            uint8_t q[2];
            for (int k = 0; k < 2; k++) {
                float f = v[j + (size_t) k * half] / scale + z + 0.5f;
                f = f > 0.0f ? f : 0.0f; /* NaN -> 0, as max_ps(f, 0) */
                f = f < 15.0f ? f : 15.0f;
                q[k] = (uint8_t) f;
            }
            out[j] = (uint8_t) (q[0] | q[1] << 4);
        }
        sz[2 * r] = scale;
        sz[2 * r + 1] = z;
    }
    return RB_OK;
}

RB_OP_DEFINE(rb_op_kv_int4_encode_f32, "kv_int4_encode_f32",
             RB_CUDA_VARIANT(rb_kv_int4_encode_f32_cuda)
                 RB_KV_INT4_ENCODE_FAST_VARIANTS RB_VARIANT("ref", 0, rb_kv_int4_encode_f32_ref));

static int encode_dispatch(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                           unsigned flags, uint8_t *packed, float *sz) {
    RB_DISPATCH(rb_op_kv_int4_encode_f32, rb_kv_int4_encode_fn,
                (x, rows, d, stride, m, flags, packed, sz));
}

typedef struct encode_job {
    const float *x;
    size_t d, stride, m;
    unsigned flags;
    uint8_t *packed;
    float *sz;
} encode_job;

static void encode_task(void *ctx, size_t begin, size_t end) {
    const encode_job *j = ctx;
    int rc = encode_dispatch(j->x + begin * j->stride, end - begin, j->d, j->stride, j->m, j->flags,
                             j->packed + begin * (j->d / 2), j->sz + 2 * begin);
    if (rc) rb_task_fail(rc);
}

int rb_kv_int4_check(const char *who, size_t rows, size_t d, size_t m, size_t ld,
                     int have_buffers) {
    if (d < 2 || d % 2 || d > RB_KV_INT4_DMAX)
        return rb_error_set(RB_ESIZE, "%s: row length d = %zu must be even, 2..%d", who, d,
                            RB_KV_INT4_DMAX);
    if (m == 0 || !rb_is_pow2(m) || d % m)
        return rb_error_set(RB_ESIZE,
                            "%s: block m = %zu must be a power of two dividing d = %zu "
                            "(1 = no rotation)",
                            who, m, d);
    if (rows == 0) return RB_OK;
    if (!have_buffers) return rb_error_set(RB_EINVAL, "%s: NULL argument", who);
    if (rows > 1 && ld < d)
        return rb_error_set(RB_EINVAL, "%s: row stride %zu is shorter than d = %zu", who, ld, d);
    return RB_OK;
}

int rb_kv_int4_encode_f32(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                          unsigned flags, uint8_t *packed, float *sz) {
    int rc = rb_kv_int4_check("kv_int4_encode", rows, d, m, stride, x && packed && sz);
    if (rc || rows == 0) return rc;
    encode_job j = {x, d, stride, m, flags, packed, sz};
    /* About 32K elements per chunk: enough to hide the pool's wake-up, and chunk bounds depend
     * only on rows and d. */
    size_t grain = (32768 + d - 1) / d;
    return rb_parallel_for(rows, grain, encode_task, &j);
}

int rb_kv_int4_decode_f32_ref(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                              size_t m, float *xhat, size_t ld) {
    const float inv = (float) (1.0 / sqrt((double) m));
    size_t half = d / 2;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *in = packed + r * half;
        float scale = sz[2 * r], z = sz[2 * r + 1], *o = xhat + r * ld;
        for (size_t j = 0; j < half; j++) {
            o[j] = ((float) (in[j] & 15) - z) * scale;
            o[j + half] = ((float) (in[j] >> 4) - z) * scale;
        }
        if (m == 1) continue;
        for (size_t b = 0; b < d; b += m)
            for (size_t h = 1; h < m; h *= 2)
                for (size_t i = b; i < b + m; i += 2 * h)
                    for (size_t j = i; j < i + h; j++) {
                        float a = o[j], c = o[j + h];
                        o[j] = a + c;
                        o[j + h] = a - c;
                    }
        for (size_t j = 0; j < d; j++) o[j] *= inv;
    }
    return RB_OK;
}

RB_OP_DEFINE(rb_op_kv_int4_decode_f32, "kv_int4_decode_f32",
             RB_CUDA_VARIANT(rb_kv_int4_decode_f32_cuda)
                 RB_KV_INT4_DECODE_FAST_VARIANTS RB_VARIANT("ref", 0, rb_kv_int4_decode_f32_ref));

static int decode_dispatch(const uint8_t *packed, const float *sz, size_t rows, size_t d, size_t m,
                           float *xhat, size_t ld) {
    RB_DISPATCH(rb_op_kv_int4_decode_f32, rb_kv_int4_decode_fn, (packed, sz, rows, d, m, xhat, ld));
}

typedef struct decode_job {
    const uint8_t *packed;
    const float *sz;
    size_t d, m, ld;
    float *xhat;
} decode_job;

static void decode_task(void *ctx, size_t begin, size_t end) {
    const decode_job *j = ctx;
    int rc = decode_dispatch(j->packed + begin * (j->d / 2), j->sz + 2 * begin, end - begin, j->d,
                             j->m, j->xhat + begin * j->ld, j->ld);
    if (rc) rb_task_fail(rc);
}

int rb_kv_int4_decode_f32(const uint8_t *packed, const float *sz, size_t rows, size_t d, size_t m,
                          float *xhat, size_t ld) {
    int rc = rb_kv_int4_check("kv_int4_decode", rows, d, m, ld, packed && sz && xhat);
    if (rc || rows == 0) return rc;
    decode_job j = {packed, sz, d, m, ld, xhat};
    return rb_parallel_for(rows, (32768 + d - 1) / d, decode_task, &j);
}

rb_cost rb_kv_int4_encode_cost(size_t d, size_t rows, size_t elem_bytes) {
    double n = (double) d * (double) rows;
    int lg = rb_log2_exact(d);
    return (rb_cost){n * ((lg > 0 ? lg : 0) + 6.0),
                     n * ((double) elem_bytes + 0.5) + 8.0 * (double) rows};
}
