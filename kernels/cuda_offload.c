/* The CUDA backend's dispatch variants (kernels/cuda_offload.h): stage, run on the GPU, copy
 * back. Each calling thread has its own stream and its own device staging area, grown on demand
 * and kept (pool workers offload concurrently without sharing either). */
#include "kernels/cuda_offload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/gpu.h"

typedef struct staging {
    const rb_cuda_ops *cu;
    void *stream;
    void *buf;
    size_t cap;
} staging;

static _Thread_local staging tl;

/* A staging area of at least `bytes` (256-byte aligned pieces are carved by the callers). */
static int stage(size_t bytes, staging **out) {
    staging *s = &tl;
    int rc;
    if (!s->cu && (rc = rb_cuda_ops_get(&s->cu))) return rc;
    if (!s->stream && (rc = s->cu->stream_create(&s->stream))) return rc;
    if (bytes > s->cap) {
        s->cu->free(s->buf);
        s->buf = NULL;
        s->cap = 0;
        size_t want = bytes + bytes / 4;
        if ((rc = s->cu->malloc(&s->buf, want))) return rc;
        s->cap = want;
    }
    *out = s;
    return RB_OK;
}

/* The staging area at byte offset `off`, untyped: each caller carves its pieces (256-byte
 * aligned) and names their types once. */
static void *at(const staging *s, size_t off) {
    return (char *) s->buf + off;
}

static size_t up256(size_t b) {
    return (b + 255) & ~(size_t) 255;
}

/* Elements a strided batch spans: (count - 1) * stride + n. */
static size_t span(size_t n, size_t count, size_t stride) {
    return count ? (count - 1) * stride + n : 0;
}

static int finite_rows(const float *x, size_t rows, size_t cols, size_t ld) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            if (!isfinite(x[r * ld + c])) return 0;
    return 1;
}

/* The in-place transforms: the rows' whole span up, the op, the span back. */
typedef struct inplace {
    int hadamard; /* 0: fwht with scale; 1: hadamard with dir */
    float scale;
    rb_dir dir;
} inplace;

static int transform_inplace(float *data, size_t n, size_t count, size_t stride, inplace op) {
    staging *s;
    size_t bytes = span(n, count, stride) * sizeof(float);
    int rc = stage(bytes, &s);
    if (rc) return rc;
    const rb_cuda_ops *cu = s->cu;
    if ((rc = cu->memcpy_h2d(s->buf, data, bytes, s->stream))) return rc;
    rc = op.hadamard ? cu->hadamard(s->buf, RB_DT_F32, n, count, stride, op.dir, s->stream)
                     : cu->fwht(s->buf, RB_DT_F32, n, count, stride, op.scale, s->stream);
    if (rc || (rc = cu->memcpy_d2h(data, s->buf, bytes, s->stream))) return rc;
    return cu->stream_sync(s->stream);
}

int rb_fwht_f32_cuda(float *data, size_t n, size_t count, size_t stride, float scale) {
    return transform_inplace(data, n, count, stride, (inplace){0, scale, RB_FORWARD});
}

/* K and hk are not needed: the GPU op looks the order up itself. */
int rb_hadamard_f32_cuda(float *data, size_t n, size_t count, size_t stride, size_t K,
                         const int8_t *hk, rb_dir dir) {
    (void) K;
    (void) hk;
    return transform_inplace(data, n, count, stride, (inplace){1, 1.0f, dir});
}

int rb_codebook_quant_f32_cuda(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                               size_t ld, uint8_t *idx) {
    if (!finite_rows(x, rows, cols, ld)) return RB_EDECLINE;
    staging *s;
    size_t in = span(cols, rows, ld) * sizeof(float), out = rows * cols;
    int rc = stage(up256(in) + out, &s);
    if (rc) return rc;
    const rb_cuda_ops *cu = s->cu;
    uint8_t *didx = at(s, up256(in));
    if ((rc = cu->memcpy_h2d(s->buf, x, in, s->stream)) ||
        (rc = cu->codebook_quant_f32(cb, s->buf, rows, cols, ld, didx, s->stream)) ||
        (rc = cu->memcpy_d2h(idx, didx, out, s->stream)))
        return rc;
    return cu->stream_sync(s->stream);
}

int rb_quant_rows_f32_cuda(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                           size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                           float *scales, float *zeros) {
    /* fp16-stored parameters are the reference's alone (the device kernel does not round). */
    if (spec->side_f16 || !finite_rows(x, rows, cols, ld)) return RB_EDECLINE;
    staging *s;
    size_t np = rows * ((cols + group - 1) / group);
    size_t elem = mode == RB_QOUT_FAKE ? sizeof(float) : 1;
    size_t out_row = mode == RB_QOUT_PACK4 ? (cols + 1) / 2 : cols * elem;
    size_t in_bytes = span(cols, rows, ld) * sizeof(float);
    size_t out_bytes = rows ? (rows - 1) * ldo * elem + out_row : 0;
    size_t in_b = up256(in_bytes), out_b = up256(out_bytes), par_b = up256(np * sizeof(float));
    int rc = stage(in_b + out_b + 2 * par_b, &s);
    if (rc) return rc;
    const rb_cuda_ops *cu = s->cu;
    void *dout = at(s, in_b);
    float *dsc = at(s, in_b + out_b), *dz = at(s, in_b + out_b + par_b);
    /* The output's gaps between rows belong to the caller: copy them in so that copying the
     * whole span back leaves them as they were. */
    if ((rc = cu->memcpy_h2d(s->buf, x, in_bytes, s->stream)) ||
        (rc = cu->memcpy_h2d(dout, out, out_bytes, s->stream)) ||
        (rc = cu->quant_rows_f32(spec, s->buf, rows, cols, ld, group, dout, ldo, mode, dsc,
                                 zeros ? dz : NULL, s->stream)) ||
        (rc = cu->memcpy_d2h(out, dout, out_bytes, s->stream)) ||
        (rc = cu->memcpy_d2h(scales, dsc, np * sizeof(float), s->stream)) ||
        (zeros && (rc = cu->memcpy_d2h(zeros, dz, np * sizeof(float), s->stream))))
        return rc;
    return cu->stream_sync(s->stream);
}

int rb_kv_int4_encode_f32_cuda(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                               unsigned flags, uint8_t *packed, float *sz) {
    if (!finite_rows(x, rows, d, stride)) return RB_EDECLINE;
    staging *s;
    size_t in_bytes = span(d, rows, stride) * sizeof(float);
    size_t in_b = up256(in_bytes), pk_b = up256(rows * d / 2), sz_b = rows * 2 * sizeof(float);
    int rc = stage(in_b + pk_b + sz_b, &s);
    if (rc) return rc;
    const rb_cuda_ops *cu = s->cu;
    uint8_t *dp = at(s, in_b);
    float *dsz = at(s, in_b + pk_b);
    if ((rc = cu->memcpy_h2d(s->buf, x, in_bytes, s->stream)) ||
        (rc = cu->kv_int4_encode(s->buf, RB_DT_F32, rows, d, stride, m, flags, dp, dsz,
                                 s->stream)) ||
        (rc = cu->memcpy_d2h(packed, dp, rows * d / 2, s->stream)) ||
        (rc = cu->memcpy_d2h(sz, dsz, sz_b, s->stream)))
        return rc;
    return cu->stream_sync(s->stream);
}

int rb_kv_int4_decode_f32_cuda(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                               size_t m, float *xhat, size_t ld) {
    staging *s;
    size_t pk_b = up256(rows * d / 2), sz_b = up256(rows * 2 * sizeof(float));
    size_t out = span(d, rows, ld) * sizeof(float);
    int rc = stage(pk_b + sz_b + out, &s);
    if (rc) return rc;
    const rb_cuda_ops *cu = s->cu;
    float *dsz = at(s, pk_b), *dx = at(s, pk_b + sz_b);
    if ((rc = cu->memcpy_h2d(s->buf, packed, rows * d / 2, s->stream)) ||
        (rc = cu->memcpy_h2d(dsz, sz, rows * 2 * sizeof(float), s->stream)) ||
        (rc = cu->memcpy_h2d(dx, xhat, out, s->stream)) ||
        (rc = cu->kv_int4_decode(s->buf, dsz, rows, d, m, dx, ld, s->stream)) ||
        (rc = cu->memcpy_d2h(xhat, dx, out, s->stream)))
        return rc;
    return cu->stream_sync(s->stream);
}

/* MXFP4 and NVFP4: the same staging (x up; codes, scales and y back) around either op. */
static int fp4_quant(int nv, const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                     uint8_t *scales, float *tensor_scale, float *y) {
    if (!finite_rows(x, 1, n, n)) return RB_EDECLINE;
    staging *s;
    size_t block = nv ? RB_NVFP4_BLOCK : RB_MXFP4_BLOCK;
    size_t nb = (n + block - 1) / block, pk = (n + 1) / 2;
    size_t in_b = up256(n * sizeof(float)), pk_b = up256(pk), sc_b = up256(nb);
    int rc = stage(in_b + pk_b + sc_b + (y ? n * sizeof(float) : 0), &s);
    if (rc) return rc;
    const rb_cuda_ops *cu = s->cu;
    uint8_t *dp = at(s, in_b), *ds = at(s, in_b + pk_b);
    float *dx = s->buf, *dy = y ? at(s, in_b + pk_b + sc_b) : NULL;
    float ts = 0;
    if ((rc = cu->memcpy_h2d(dx, x, n * sizeof(float), s->stream)) ||
        (rc =
             nv ? cu->nvfp4_quant(dx, n, packed ? dp : NULL, scales ? ds : NULL, &ts, dy, s->stream)
                : cu->mxfp4_quant(dx, n, rule, packed ? dp : NULL, scales ? ds : NULL, dy,
                                  s->stream)) ||
        (packed && (rc = cu->memcpy_d2h(packed, dp, pk, s->stream))) ||
        (scales && (rc = cu->memcpy_d2h(scales, ds, nb, s->stream))) ||
        (y && (rc = cu->memcpy_d2h(y, dy, n * sizeof(float), s->stream))))
        return rc;
    if (tensor_scale) *tensor_scale = ts;
    return cu->stream_sync(s->stream);
}

int rb_mxfp4_quant_f32_cuda(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                            uint8_t *scales, float *y) {
    return fp4_quant(0, x, n, rule, packed, scales, NULL, y);
}

int rb_nvfp4_quant_f32_cuda(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                            float *tensor_scale, float *y) {
    return fp4_quant(1, x, n, RB_MX_FLOOR, packed, scales, tensor_scale, y);
}

/* The fused TurboQuant / EDEN codec (kernels/rhtcodec.h). Encode: rows and signs up, the code
 * rows back into a host staging copy, which is scanned for the rows the CPU codec rejects (a NaN
 * or +Inf norm) before anything reaches `codes`: then the variant declines and the next one
 * writes the rows before the bad one and names it. Rows must be contiguous (ldx = d). */
int rb_rhtcodec_encode_f32_cuda(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                                uint8_t *codes, size_t ldc, size_t row0, void *scratch) {
    (void) row0;
    (void) scratch;
    size_t d = p->d, rb = rb_rhtcodec_row_bytes(p), payload = rb - sizeof(float);
    if (rows > 1 && ldx != d) return RB_EDECLINE;
    staging *s;
    size_t in_b = up256(rows * d * sizeof(float)), sg_b = up256(d * sizeof(float));
    int rc = stage(in_b + 2 * sg_b + rows * rb, &s);
    if (rc) return rc;
    uint8_t *host = malloc(rows * rb);
    if (!host)
        return rb_error_set(RB_ENOMEM, "%s: no memory for %zu code rows",
                            p->who ? p->who : "rhtcodec", rows);
    const rb_cuda_ops *cu = s->cu;
    float *dd1 = at(s, in_b), *dd2 = p->d2 ? at(s, in_b + sg_b) : NULL;
    uint8_t *dc = at(s, in_b + 2 * sg_b);
    if (!(rc = cu->memcpy_h2d(s->buf, x, rows * d * sizeof(float), s->stream)) &&
        !(rc = cu->memcpy_h2d(dd1, p->d1, d * sizeof(float), s->stream)) &&
        !(rc = p->d2 ? cu->memcpy_h2d(dd2, p->d2, d * sizeof(float), s->stream) : RB_OK) &&
        !(rc = cu->rht_codebook_encode(s->buf, rows, d, dd1, dd2, p->cb, p->bits, dc, rb, NULL,
                                       s->stream)) &&
        !(rc = cu->memcpy_d2h(host, dc, rows * rb, s->stream)))
        rc = cu->stream_sync(s->stream);
    for (size_t r = 0; !rc && r < rows; r++) {
        float nrm;
        memcpy(&nrm, host + r * rb + payload, sizeof nrm);
        if (!isfinite(nrm)) rc = RB_EDECLINE;
    }
    for (size_t r = 0; !rc && r < rows; r++) memcpy(codes + r * ldc, host + r * rb, rb);
    free(host);
    return rc;
}

/* Decode: the code rows and signs up, y back (its span first up too when rows have gaps, so
 * that the gaps come back as they were). Declines codebooks with k < 2^bits, whose codes >= k
 * the CPU codec reports, and shapes without a GPU kernel. */
int rb_rhtcodec_decode_f32_cuda(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                                float *y, size_t ldy, unsigned flags, void *scratch) {
    (void) flags;
    (void) scratch;
    if (p->cb->k != ((size_t) 1 << p->bits)) return RB_EDECLINE;
    size_t d = p->d, cspan = (rows - 1) * ldc + rb_rhtcodec_row_bytes(p);
    size_t yspan = span(d, rows, ldy) * sizeof(float);
    staging *s;
    size_t c_b = up256(cspan), sg_b = up256(d * sizeof(float));
    int rc = stage(c_b + 2 * sg_b + yspan, &s);
    if (rc) return rc;
    const rb_cuda_ops *cu = s->cu;
    float *dd1 = at(s, c_b), *dd2 = p->d2 ? at(s, c_b + sg_b) : NULL, *dy = at(s, c_b + 2 * sg_b);
    if ((rc = cu->memcpy_h2d(s->buf, codes, cspan, s->stream)) ||
        (rc = cu->memcpy_h2d(dd1, p->d1, d * sizeof(float), s->stream)) ||
        (p->d2 && (rc = cu->memcpy_h2d(dd2, p->d2, d * sizeof(float), s->stream))) ||
        (rows > 1 && ldy > d && (rc = cu->memcpy_h2d(dy, y, yspan, s->stream))) ||
        (rc = cu->rht_codebook_decode(s->buf, ldc, NULL, rows, d, dd1, dd2, p->cb, p->bits, dy, ldy,
                                      s->stream)) ||
        (rc = cu->memcpy_d2h(y, dy, yspan, s->stream)))
        return rc;
    return cu->stream_sync(s->stream);
}
