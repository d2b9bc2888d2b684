/* A CPU stand-in for the rb_cuda_ops table (RBT_CUDA_EMULATE=1): "device" memory is host memory
 * and every op calls its CPU twin, so the GPU suites can be run on a machine without a GPU to
 * check the tests themselves (buffer sizes, gaps, poisoning, CPU time). Not a GPU test. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/half.h"
#include "kernels/kv_quant.h"
#include "kernels/rotate.h"
#include "kernels/rowcodec.h"
#include "tests/cuda_util.h"

/* RBT_CUDA_EMULATE=mut:<name> plants one deliberate bug in the stand-in, to check that the tests
 * that should catch it fail. Names (and the suite that must fail): fwht_scale_first, fwht_gap
 * (cuda_fwht); quant_sr_index, quant_zero_in_range (cuda_quant); kv_f16_double_round
 * (cuda_kv_int4); rcb_float_norm, rcb_seq_norm, rcb_double_scale (cuda_rht_codebook);
 * gemm_tf32 (cuda_blas); fp8_ignore_ov
 * (cuda_fp8); mx_rule (cuda_fp4); cb_ties_up (cuda_codebook); pack_pad (cuda_pack). */
static int mut(const char *name) {
    const char *e = getenv("RBT_CUDA_EMULATE");
    return e && !strncmp(e, "mut:", 4) && !strcmp(e + 4, name);
}

static int e_set_device(int d) {
    (void) d;
    return RB_OK;
}
static int e_malloc(void **p, size_t bytes) {
    *p = NULL;
    if (bytes > ((size_t) 1 << 40)) return rb_error_set(RB_ENOMEM, "emul: %zu bytes", bytes);
    *p = malloc(bytes ? bytes : 1);
    return *p ? RB_OK : rb_error_set(RB_ENOMEM, "emul: malloc");
}
static int e_free(void *p) {
    free(p);
    return RB_OK;
}
static int e_copy(void *dst, const void *src, size_t bytes, void *s) {
    (void) s;
    memmove(dst, src, bytes);
    return RB_OK;
}
static int e_memset(void *dst, int byte, size_t bytes, void *s) {
    (void) s;
    memset(dst, byte, bytes);
    return RB_OK;
}
static int e_stream_create(void **s) {
    *s = malloc(1);
    return RB_OK;
}
static int e_stream_destroy(void *s) {
    free(s);
    return RB_OK;
}
static int e_stream_sync(void *s) {
    (void) s;
    return RB_OK;
}
static int e_event_record(void *e, void *s) {
    (void) e, (void) s;
    return RB_OK;
}
static int e_event_elapsed(void *a, void *b, float *ms) {
    (void) a, (void) b;
    *ms = 1;
    return RB_OK;
}
static int e_convert(const void *src, rb_dtype st, void *dst, rb_dtype dt, size_t n, void *s) {
    (void) s;
    float *tmp = malloc(n ? n * 4 : 4);
    rbt_decode_dtype(src, n, st, tmp);
    rbt_encode_dtype(tmp, n, dt, dst);
    free(tmp);
    return RB_OK;
}
static int e_rad(uint64_t seed, uint64_t sid, uint64_t off, size_t n, float *out, void *s) {
    (void) s;
    rb_rng_rademacher_f32(seed, sid, off, n, out);
    return RB_OK;
}
static int e_bits(uint64_t seed, uint64_t sid, uint64_t off, size_t n, uint32_t *out, void *s) {
    (void) s;
    rb_rng_bits(seed, sid, off, n, out);
    return RB_OK;
}

/* In-place row transforms in any dtype: widen the rows' extent, run the CPU twin, store the rows'
 * elements back rounded (the gaps are left alone). */
typedef struct {
    int kind; /* 0 fwht, 1 hadamard, 2 rht, 3 block */
    size_t n, b;
    float scale;
    const float *d1, *d2;
    rb_dir dir;
} xform;

static int run_xform(const xform *f, float *x, size_t count, size_t stride) {
    switch (f->kind) {
    case 0: {
        int k = rb_log2_exact(f->n);
        if (k < 0 || k > 30) return rb_error_set(RB_ESIZE, "fwht: n = %zu", f->n);
        if (count > 1 && stride < f->n) return rb_error_set(RB_EINVAL, "fwht: stride");
        if (mut("fwht_scale_first")) {
            for (size_t r = 0; r < count; r++)
                for (size_t i = 0; i < f->n; i++) x[r * stride + i] *= f->scale;
            return rb_fwht_f32_ref(x, f->n, count, stride, 1.0f);
        }
        if (mut("fwht_gap") && count > 1 && stride > f->n) x[f->n] = 0;
        return rb_fwht_f32_ref(x, f->n, count, stride, f->scale);
    }
    case 1:
        return rb_hadamard_f32(x, f->n, count, stride, f->dir);
    case 2:
        return rb_rht_f32(x, f->n, count, stride, f->d1, f->d2, f->dir);
    default:
        return rb_hadamard_block_f32(x, f->n, count, stride, f->b, f->dir);
    }
}

static int xform_dtype(const xform *f, void *data, rb_dtype t, size_t count, size_t stride) {
    if (t == RB_DT_F32) return run_xform(f, data, count, stride);
    float probe[1];
    int rc = run_xform(f, probe, 0, stride); /* argument errors first */
    if (rc) return rc;
    size_t ext = count ? (count - 1) * stride + f->n : 0;
    float *w = malloc(ext ? ext * 4 : 4);
    rbt_decode_dtype(data, ext, t, w);
    rc = run_xform(f, w, count, stride);
    uint16_t *h = data;
    for (size_t r = 0; r < count && !rc; r++)
        rbt_encode_dtype(w + r * stride, f->n, t, h + r * stride);
    free(w);
    return rc;
}

static int e_fwht(void *data, rb_dtype t, size_t n, size_t count, size_t stride, float scale,
                  void *s) {
    (void) s;
    xform f = {0, n, 0, scale, NULL, NULL, RB_FORWARD};
    return xform_dtype(&f, data, t, count, stride);
}
static int e_hadamard(void *data, rb_dtype t, size_t n, size_t count, size_t stride, rb_dir dir,
                      void *s) {
    (void) s;
    xform f = {1, n, 0, 1, NULL, NULL, dir};
    return xform_dtype(&f, data, t, count, stride);
}
static int e_rht(void *data, rb_dtype t, size_t n, size_t count, size_t stride, const float *d1,
                 const float *d2, rb_dir dir, void *s) {
    (void) s;
    xform f = {2, n, 0, 1, d1, d2, dir};
    return xform_dtype(&f, data, t, count, stride);
}
static int e_block(void *data, rb_dtype t, size_t n, size_t count, size_t stride, size_t b,
                   rb_dir dir, void *s) {
    (void) s;
    xform f = {3, n, b, 1, NULL, NULL, dir};
    return xform_dtype(&f, data, t, count, stride);
}
static int e_gemm(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc, void *s) {
    (void) s;
    if (mut("gemm_tf32")) { /* inputs rounded to 10 mantissa bits, like TF32 tensor cores */
        size_t ra = ta ? k : m, rb = tb ? n : k, ca = ta ? m : k, cb = tb ? k : n;
        float *a = malloc(ra * lda * 4 + 4), *b = malloc(rb * ldb * 4 + 4);
        for (size_t i = 0; i < ra * lda; i++) a[i] = rb_f16_round(A[i] * 0x1p-10f) * 0x1p10f;
        for (size_t i = 0; i < rb * ldb; i++) b[i] = rb_f16_round(B[i] * 0x1p-10f) * 0x1p10f;
        (void) ca, (void) cb;
        int rc = rb_gemm_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, C, ldc);
        free(a);
        free(b);
        return rc;
    }
    return rb_gemm_f32(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
static int e_kron(float *data, size_t n1, size_t n2, size_t count, size_t stride, const float *P1,
                  const float *P2, float *scratch, void *s) {
    (void) s;
    return rb_kron_apply_f32(data, n1, n2, count, stride, P1, P2, scratch);
}
static int e_quant(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols, size_t ld,
                   size_t group, void *out, size_t ldo, rb_quant_out mode, float *scales,
                   float *zeros, void *s) {
    (void) s;
    int rc = rb_quant_spec_check(spec);
    if (rc) return rc;
    if (spec->side_f16) return rb_error_set(RB_EDECLINE, "quant (cuda): side_f16"); /* as the GPU */
    if (rows > 1 && ld < cols) return rb_error_set(RB_EINVAL, "quant: ld");
    size_t need = mode == RB_QOUT_PACK4 ? (cols + 1) / 2 : cols;
    if (rows > 1 && ldo < need) return rb_error_set(RB_EINVAL, "quant: ldo");
    if (mut("quant_sr_index") && spec->round == RB_ROUND_STOCHASTIC && rows > 1) {
        rb_quant_spec t = *spec;
        t.stream += 1;
        return rb_quant_rows_f32_ref(&t, x, rows, cols, ld, group, out, ldo, mode, scales, zeros);
    }
    if (mut("quant_zero_in_range") && spec->zero_in_range) {
        rb_quant_spec t = *spec;
        t.zero_in_range = 0;
        return rb_quant_rows_f32_ref(&t, x, rows, cols, ld, group, out, ldo, mode, scales, zeros);
    }
    return rb_quant_rows_f32_ref(spec, x, rows, cols, ld, group, out, ldo, mode, scales, zeros);
}
static int e_pack(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out, size_t ldo,
                  void *s) {
    (void) s;
    int rc = rb_pack_rows(codes, rows, n, bits, out, ldo);
    if (mut("pack_pad") && !rc && rows && n) out[rb_pack_bytes(n, bits)] = 0;
    return rc;
}
static int e_unpack(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits, uint8_t *codes,
                    void *s) {
    (void) s;
    return rb_unpack_rows(in, ldi, rows, n, bits, codes);
}
static int e_mxq(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed, uint8_t *scales,
                 float *y, void *s) {
    (void) s;
    int rc = rb_mxfp4_encode(x, n, mut("mx_rule") ? RB_MX_FLOOR : rule, packed, scales);
    if (!rc && y) rc = rb_mxfp4_decode(packed, scales, n, y);
    return rc;
}
static int e_mxd(const uint8_t *packed, const uint8_t *scales, size_t n, float *y, void *s) {
    (void) s;
    return rb_mxfp4_decode(packed, scales, n, y);
}
static int e_nvq(const float *x, size_t n, uint8_t *packed, uint8_t *scales, float *ts, float *y,
                 void *s) {
    (void) s;
    int rc = rb_nvfp4_encode(x, n, packed, scales, ts);
    if (!rc && y) rc = rb_nvfp4_decode(packed, scales, *ts, n, y);
    return rc;
}
static int e_nvd(const uint8_t *packed, const uint8_t *scales, float ts, size_t n, float *y,
                 void *s) {
    (void) s;
    return rb_nvfp4_decode(packed, scales, ts, n, y);
}
static int e_fp8e(const float *x, size_t n, int e5m2, rb_fp8_overflow ov, uint8_t *out, void *s) {
    (void) s;
    for (size_t i = 0; i < n; i++)
        out[i] = e5m2 ? rb_fp8_e5m2_encode(x[i], ov) : rb_fp8_e4m3_encode(x[i], ov);
    if (mut("fp8_ignore_ov"))
        for (size_t i = 0; i < n; i++)
            out[i] = e5m2 ? rb_fp8_e5m2_encode(x[i], RB_FP8_SATURATE)
                          : rb_fp8_e4m3_encode(x[i], RB_FP8_SATURATE);
    return RB_OK;
}
static int e_fp8d(const uint8_t *in, size_t n, int e5m2, float *y, void *s) {
    (void) s;
    for (size_t i = 0; i < n; i++)
        y[i] = e5m2 ? rb_fp8_e5m2_decode(in[i]) : rb_fp8_e4m3_decode(in[i]);
    return RB_OK;
}
static int e_cbq(const rb_codebook *cb, const float *x, size_t rows, size_t cols, size_t ld,
                 uint8_t *idx, void *s) {
    (void) s;
    int rc = rb_codebook_quantize_f32(cb, x, rows, cols, ld, idx);
    if (mut("cb_ties_up"))
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                for (size_t t = 0; t + 1 < cb->k; t++)
                    if (x[r * ld + c] == cb->thresholds[t]) idx[r * cols + c] = (uint8_t) (t + 1);
    return rc;
}
static int e_cbd(const rb_codebook *cb, const uint8_t *idx, size_t n, float *y, void *s) {
    (void) s;
    return rb_codebook_dequantize_f32(cb, idx, n, y);
}
static int e_kve(const void *x, rb_dtype t, size_t rows, size_t d, size_t stride, size_t m,
                 unsigned flags, uint8_t *packed, float *sz, void *s) {
    (void) s;
    if (t == RB_DT_F32) return rb_kv_int4_encode_f32(x, rows, d, stride, m, flags, packed, sz);
    size_t ext = rows ? (rows - 1) * stride + d : 0;
    float *w = malloc(ext ? ext * 4 : 4);
    rbt_decode_dtype(x, ext, t, w);
    if (mut("kv_f16_double_round"))
        for (size_t i = 0; i < ext; i++) w[i] = rb_bf16_round(w[i]);
    int rc = rb_kv_int4_encode_f32(w, rows, d, stride, m, flags, packed, sz);
    free(w);
    return rc;
}
static int e_kvd(const uint8_t *packed, const float *sz, size_t rows, size_t d, size_t m,
                 float *xhat, size_t ld, void *s) {
    (void) s;
    return rb_kv_int4_decode_f32(packed, sz, rows, d, m, xhat, ld);
}
static int e_rcb(const float *x, size_t rows, size_t d, const float *d1, const float *d2,
                 const rb_codebook *cb, int bits, uint8_t *packed, size_t ldp, float *norm,
                 void *s) {
    (void) s;
    int rc = rb_hadamard_lookup(d, NULL, NULL);
    if (rc) return rc;
    if (bits < 1 || bits > 8) return rb_error_set(RB_EINVAL, "rht_codebook: bits");
    size_t payload = rb_pack_bytes(d, bits);
    if (ldp < payload + (norm ? 0 : 4)) return rb_error_set(RB_EINVAL, "rht_codebook: ldp");
    double *nrm = malloc(rows * sizeof *nrm + 1);
    float *u = malloc(rows * d * 4 + 1);
    uint8_t *idx = malloc(rows * d + 1);
    rb_rows_sqnorm_f32_ref(x, NULL, rows, d, d, nrm);
    if (mut("rcb_seq_norm")) /* one sum in j order instead of rb_lanes16_sum's */
        for (size_t r = 0; r < rows; r++) {
            nrm[r] = 0;
            for (size_t j = 0; j < d; j++) nrm[r] += (double) x[r * d + j] * x[r * d + j];
        }
    for (size_t r = 0; r < rows; r++) {
        double n = sqrt(nrm[r]);
        float nf = mut("rcb_float_norm") ? sqrtf((float) nrm[r])
                   : n > FLT_MAX         ? INFINITY
                                         : (float) n;
        if (norm)
            norm[r] = nf;
        else
            memcpy(packed + r * ldp + payload, &nf, 4);
        nrm[r] = n;
    }
    rb_rows_unit_f32(x, rows, d, d, nrm, u, d);
    if (mut("rcb_double_scale"))
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < d; j++)
                u[r * d + j] = (float) ((double) x[r * d + j] * (nrm[r] > 0 ? 1.0 / nrm[r] : 0.0));
    rc = rb_rht_f32(u, d, rows, d, d1, d2, RB_FORWARD);
    for (size_t r = 0; r < rows; r++) /* rows with a NaN or +Inf norm: codes unspecified */
        if (!(nrm[r] <= FLT_MAX)) memset(u + r * d, 0, d * 4);
    if (!rc) rc = rb_codebook_quant_f32_ref(cb, u, rows, d, d, idx);
    if (!rc) rc = rb_pack_rows_ref(idx, rows, d, bits, packed, ldp);
    free(nrm);
    free(u);
    free(idx);
    return rc;
}

/* rht_codebook_decode: the CPU codec's pieces; declines what the GPU has no kernel for. */
static int e_rcd(const uint8_t *packed, size_t ldp, const float *norm, size_t rows, size_t d,
                 const float *d1, const float *d2, const rb_codebook *cb, int bits, float *y,
                 size_t ldy, void *s) {
    (void) s;
    int rc = rb_hadamard_lookup(d, NULL, NULL);
    if (rc) return rc;
    if (bits < 1 || bits > 8) return rb_error_set(RB_EINVAL, "rht_codebook: bits");
    size_t payload = rb_pack_bytes(d, bits);
    if (rows > 1 && ldp < payload + (norm ? 0 : 4))
        return rb_error_set(RB_EINVAL, "rht_codebook: ldp");
    if (rows == 0) return RB_OK;
    if (bits > 4 || (d != 1536 && (d < 32 || d > 1024 || (d & (d - 1))))) return RB_EDECLINE;
    float *nf = malloc(rows * 4 + 1);
    for (size_t r = 0; r < rows; r++) {
        if (norm)
            nf[r] = norm[r];
        else
            memcpy(&nf[r], packed + r * ldp + payload, 4);
    }
    rc = rb_codebook_decode_rows_f32(cb, packed, ldp, rows, d, bits, y, ldy);
    if (!rc) rc = rb_rht_f32(y, d, rows, ldy, d1, d2, RB_INVERSE);
    if (!rc) rb_rows_scale_f32(y, rows, d, ldy, nf);
    free(nf);
    return rc;
}

const rb_cuda_ops *rbt_cuda_emul_ops(void) {
    static rb_cuda_ops o;
    o.set_device = e_set_device;
    o.malloc = e_malloc;
    o.free = e_free;
    o.memcpy_h2d = e_copy;
    o.memcpy_d2h = e_copy;
    o.memcpy_d2d = e_copy;
    o.memset = e_memset;
    o.stream_create = e_stream_create;
    o.stream_destroy = e_stream_destroy;
    o.stream_sync = e_stream_sync;
    o.event_create = e_stream_create;
    o.event_destroy = e_stream_destroy;
    o.event_record = e_event_record;
    o.event_elapsed_ms = e_event_elapsed;
    o.convert = e_convert;
    o.rng_rademacher_f32 = e_rad;
    o.rng_bits = e_bits;
    o.fwht = e_fwht;
    o.hadamard = e_hadamard;
    o.rht = e_rht;
    o.hadamard_block = e_block;
    o.gemm_f32 = e_gemm;
    o.kron_apply_f32 = e_kron;
    o.quant_rows_f32 = e_quant;
    o.pack_rows = e_pack;
    o.unpack_rows = e_unpack;
    o.mxfp4_quant = e_mxq;
    o.mxfp4_dequant = e_mxd;
    o.nvfp4_quant = e_nvq;
    o.nvfp4_dequant = e_nvd;
    o.fp8_encode = e_fp8e;
    o.fp8_decode = e_fp8d;
    o.codebook_quant_f32 = e_cbq;
    o.codebook_dequant_f32 = e_cbd;
    o.kv_int4_encode = e_kve;
    o.kv_int4_decode = e_kvd;
    o.rht_codebook_encode = e_rcb;
    o.rht_codebook_decode = e_rcd;
    return &o;
}
