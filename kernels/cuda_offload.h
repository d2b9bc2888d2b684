/* The CUDA backend's variants in the CPU dispatch tables: host pointers in, the op runs on the
 * GPU (kernels/gpu.h) over a staging copy, host pointers out. Enabled only while the CUDA backend
 * is the current one (rb_backend_use), so `--backend cuda` runs every method that goes through
 * these ops on the GPU with no method-specific code, and its accuracy records must equal the
 * CPU's bit for bit (the GPU ops reproduce their references). Their latency includes the
 * host-device copies of every call: device-resident speed is `rotabench bench --cuda`. */
#ifndef RB_CUDA_OFFLOAD_H
#define RB_CUDA_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/codebook.h"
#include "kernels/fpformats.h"
#include "kernels/hadamard.h"
#include "kernels/quant.h"
#include "kernels/rhtcodec.h"

/* Each has its op's slot signature. The quantizers and encoders (codebook, quant rows, KV INT4
 * encode, MXFP4, NVFP4) decline (RB_EDECLINE) input with NaN or Inf so that the reference
 * reports it, as the SIMD variants do; the transforms carry NaN and Inf through like their
 * references. */
int rb_fwht_f32_cuda(float *data, size_t n, size_t count, size_t stride, float scale);
int rb_hadamard_f32_cuda(float *data, size_t n, size_t count, size_t stride, size_t K,
                         const int8_t *hk, rb_dir dir);
int rb_codebook_quant_f32_cuda(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                               size_t ld, uint8_t *idx);
int rb_quant_rows_f32_cuda(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                           size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                           float *scales, float *zeros);
int rb_kv_int4_encode_f32_cuda(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                               unsigned flags, uint8_t *packed, float *sz);
int rb_kv_int4_decode_f32_cuda(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                               size_t m, float *xhat, size_t ld);
int rb_mxfp4_quant_f32_cuda(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                            uint8_t *scales, float *y);
int rb_nvfp4_quant_f32_cuda(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                            float *tensor_scale, float *y);

/* kernels/rhtcodec.h's slots (encode: contiguous rows only). */
int rb_rhtcodec_encode_f32_cuda(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                                uint8_t *codes, size_t ldc, size_t row0, void *scratch);
int rb_rhtcodec_decode_f32_cuda(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                                float *y, size_t ldy, unsigned flags, void *scratch);

/* The variant entry every table lists first. */
#define RB_CUDA_VARIANT(fn) RB_VARIANT("cuda", RB_ISA_CUDA, fn),

#endif
