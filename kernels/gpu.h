/* The CUDA backend's kernel table: device buffers, streams, timing and every GPU op, each the
 * twin of a CPU reference named in its comment. Plain C; no CUDA types leak out. */
#ifndef RB_GPU_H
#define RB_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/codebook.h"
#include "kernels/dispatch.h"
#include "kernels/fpformats.h"
#include "kernels/hadamard.h"
#include "kernels/linalg.h"
#include "kernels/quant.h"

/* Element type of a device buffer. Arithmetic is always fp32; f16 and bf16 are storage only
 * (converted on load, rounded to nearest even on store). */
typedef enum rb_dtype { RB_DT_F32 = 0, RB_DT_F16 = 1, RB_DT_BF16 = 2 } rb_dtype;
size_t rb_dtype_size(rb_dtype t);
const char *rb_dtype_name(rb_dtype t); /* "f32", "f16", "bf16" */

/* A stream is a cudaStream_t passed as an opaque pointer; NULL is the device's default stream.
 * Every op is asynchronous on its stream; results are visible after stream_sync. Every pointer
 * an op takes is device memory unless its comment says host.
 *
 * Errors: every CUDA call is checked; a failure returns RB_ECUDA (RB_ENODEV when no device or
 * driver is present, RB_ENOMEM when device memory runs out: malloc and the fwht scratch) with the
 * CUDA error's name and the op in rb_error_detail(). Launch errors
 * are caught at the launch; errors inside a kernel surface at the next stream_sync. Arguments
 * are checked exactly as the CPU twin checks them (same codes). Nothing aborts. */
typedef struct rb_cuda_ops {
    /* ---- plumbing (kernels/cuda/device.cu) ---- */
    int (*set_device)(int device); /* for the calling thread */
    int (*malloc)(void **ptr, size_t bytes);
    int (*free)(void *ptr); /* NULL is a no-op */
    int (*memcpy_h2d)(void *dst, const void *src, size_t bytes, void *stream);
    int (*memcpy_d2h)(void *dst, const void *src, size_t bytes, void *stream);
    int (*memcpy_d2d)(void *dst, const void *src, size_t bytes, void *stream);
    int (*memset)(void *dst, int byte, size_t bytes, void *stream);
    int (*stream_create)(void **stream); /* non-blocking with respect to the default stream */
    int (*stream_destroy)(void *stream);
    int (*stream_sync)(void *stream);
    /* Events for timing: record on a stream, then elapsed milliseconds between two records
     * (waits for the second). */
    int (*event_create)(void **event);
    int (*event_destroy)(void *event);
    int (*event_record)(void *event, void *stream);
    int (*event_elapsed_ms)(void *start, void *stop, float *ms);
    /* Converts n elements between dtypes on the device (RNE when narrowing). */
    int (*convert)(const void *src, rb_dtype src_t, void *dst, rb_dtype dst_t, size_t n,
                   void *stream);

    /* ---- random numbers (kernels/cuda/rng.cu): the same (seed, stream, offset) element for
     * element as kernels/rng.h ---- */
    int (*rng_rademacher_f32)(uint64_t seed, uint64_t stream_id, uint64_t offset, size_t n,
                              float *out, void *stream);
    int (*rng_bits)(uint64_t seed, uint64_t stream_id, uint64_t offset, size_t n, uint32_t *out,
                    void *stream);

    /* ---- transforms (kernels/cuda/fwht.cu), in place, `count` rows at data + r * stride
     * (elements), stride >= n when count > 1. fp32 results are bit-identical to the CPU twin
     * (the butterflies run in the same stage order); f16/bf16 rows equal the CPU twin on the
     * widened row, rounded once on store. ---- */
    /* rb_fwht_f32_ref(data, n, count, stride, scale): n = 2^k, k <= 30. One kernel for
     * n <= 2^15, passes over an fp32 scratch the backend owns beyond. */
    int (*fwht)(void *data, rb_dtype t, size_t n, size_t count, size_t stride, float scale,
                void *stream);
    /* rb_hadamard_f32(data, n, count, stride, dir): n = K 2^m (rb_hadamard_lookup). */
    int (*hadamard)(void *data, rb_dtype t, size_t n, size_t count, size_t stride, rb_dir dir,
                    void *stream);
    /* rb_rht_f32(data, n, count, stride, d1, d2, dir); d1, d2 device arrays of n signs, d2 NULL
     * for one block. */
    int (*rht)(void *data, rb_dtype t, size_t n, size_t count, size_t stride, const float *d1,
               const float *d2, rb_dir dir, void *stream);
    /* rb_hadamard_block_f32(data, n, count, stride, b, dir). */
    int (*hadamard_block)(void *data, rb_dtype t, size_t n, size_t count, size_t stride, size_t b,
                          rb_dir dir, void *stream);

    /* ---- dense linear algebra through cuBLAS (kernels/cuda/blas.cu), fp32, row-major ---- */
    /* rb_gemm_f32 (kernels/linalg.h) with device pointers. */
    int (*gemm_f32)(rb_trans ta, rb_trans tb, size_t m, size_t n, size_t k, float alpha,
                    const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                    size_t ldc, void *stream);
    /* rb_kron_apply_f32 (kernels/rotate.h); scratch holds count * n1 * n2 floats. */
    int (*kron_apply_f32)(float *data, size_t n1, size_t n2, size_t count, size_t stride,
                          const float *P1, const float *P2, float *scratch, void *stream);

    /* ---- quantizers (kernels/cuda/quant.cu): codes bit-identical to the CPU twin ---- */
    /* rb_quant_rows_f32_ref (kernels/quant.h): PER_ROW (group == cols) or PER_GROUP. *spec is
     * host memory. NaN/Inf is not reported here (the CPU twin reports it); finite input only. */
    int (*quant_rows_f32)(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                          size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                          float *scales, float *zeros, void *stream);
    /* rb_pack_rows / rb_unpack_rows (kernels/rowcodec.h). */
    int (*pack_rows)(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                     size_t ldo, void *stream);
    int (*unpack_rows)(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                       uint8_t *codes, void *stream);
    /* MXFP4 / NVFP4 blocks (kernels/fpformats.h's slots; y may be NULL). */
    int (*mxfp4_quant)(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed, uint8_t *scales,
                       float *y, void *stream);
    int (*mxfp4_dequant)(const uint8_t *packed, const uint8_t *scales, size_t n, float *y,
                         void *stream);
    /* tensor_scale: host pointer, written after the call returns (it syncs the stream). */
    int (*nvfp4_quant)(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                       float *tensor_scale, float *y, void *stream);
    int (*nvfp4_dequant)(const uint8_t *packed, const uint8_t *scales, float tensor_scale, size_t n,
                         float *y, void *stream);
    /* rb_fp8_e4m3_encode / rb_fp8_e5m2_encode element-wise (e5m2 = 1 picks E5M2), and back. */
    int (*fp8_encode)(const float *x, size_t n, int e5m2, rb_fp8_overflow ov, uint8_t *out,
                      void *stream);
    int (*fp8_decode)(const uint8_t *in, size_t n, int e5m2, float *y, void *stream);
    /* rb_codebook_quant_f32_ref / rb_codebook_dequantize_f32; *cb is host memory. */
    int (*codebook_quant_f32)(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                              size_t ld, uint8_t *idx, void *stream);
    int (*codebook_dequant_f32)(const rb_codebook *cb, const uint8_t *idx, size_t n, float *y,
                                void *stream);

    /* ---- fused kernels (kernels/cuda/fused.cu): one pass over the rows ---- */
    /* rb_kv_int4_encode_f32 / rb_kv_int4_decode_f32 (kernels/kv_quant.h): block Hadamard +
     * per-token asymmetric INT4 + nibble packing, x in any dtype (widened exactly), the same
     * codes and (scale, zero) bits as the CPU on the widened rows, for every flag
     * (RB_KV_BF16, RB_KV_SZ_F16). */
    int (*kv_int4_encode)(const void *x, rb_dtype t, size_t rows, size_t d, size_t stride, size_t m,
                          unsigned flags, uint8_t *packed, float *sz, void *stream);
    int (*kv_int4_decode)(const uint8_t *packed, const float *sz, size_t rows, size_t d, size_t m,
                          float *xhat, size_t ld, void *stream);
    /* TurboQuant-mse / EDEN-style encode of unit-normalized rows: per row
     *   nrm = sum_j x_j^2 (double, rb_lanes16_sum's order), |x| = sqrt(nrm) stored as fp32,
     *   u = x normalized in fp32 by rb_unit_factors(sqrt(nrm)) (kernels/rowcodec.h),
     *   v = rb_rht_f32(u, d1, d2, RB_FORWARD), idx = index(v) in cb, packed to `bits` bits
     * (rb_pack_rows layout, row r at packed + r * ldp); exactly rb_rhtcodec_encode_f32's rows
     * (kernels/rhtcodec.h), so the codes and norms equal the CPU codec's. |x| goes to norm[r],
     * or with norm NULL into the 4 bytes after each packed row (the rhtcodec code-row layout;
     * ldp then covers them). *cb is host memory. Rows with a NaN or Inf element or a norm
     * beyond FLT_MAX (the CPU codec's RB_ENUMERIC) get a NaN or +Inf norm and unspecified
     * codes, so a caller scans the norms. Rows are contiguous (row r at x + r d). Register
     * kernels (kernels/cuda/rhtcodec.cu) for d = 32 .. 1024 and 1536 at bits 1..4, a
     * shared-memory tile kernel (fused.cu) for the rest. */
    int (*rht_codebook_encode)(const float *x, size_t rows, size_t d, const float *d1,
                               const float *d2, const rb_codebook *cb, int bits, uint8_t *packed,
                               size_t ldp, float *norm, void *stream);
    /* Its inverse, rb_rhtcodec_decode_f32's rows: y = |x| * rb_rht_f32(c[idx], d1, d2,
     * RB_INVERSE), the product by the fp32 |x| last; |x| from norm[r], or with norm NULL from
     * the 4 bytes after each packed row. Codes >= k are not detected (the CPU codec's RB_EINVAL):
     * their values are unspecified. Only the register kernels' shapes (d = 32 .. 1024 and 1536,
     * bits 1..4); other valid shapes return RB_EDECLINE, as a kernel variant does. */
    int (*rht_codebook_decode)(const uint8_t *packed, size_t ldp, const float *norm, size_t rows,
                               size_t d, const float *d1, const float *d2, const rb_codebook *cb,
                               int bits, float *y, size_t ldy, void *stream);
} rb_cuda_ops;

/* The table, or RB_ENODEV (and *ops = NULL) when this binary has no CUDA or no device is
 * visible; the reason is in rb_error_detail(). Selects device 0 on first success. */
int rb_cuda_ops_get(const rb_cuda_ops **ops);

/* The measured device-to-device copy bandwidth (bytes read + written per second) on `bytes`
 * of data, median of `reps` timed copies, for the fraction-of-limit columns. */
int rb_cuda_copy_bandwidth(size_t bytes, int reps, double *bytes_per_s);

#endif
