/* Shared by every CUDA file: status checks, dtype loads/stores, the Philox generator on the
 * device, and the per-area registration hooks that fill the rb_cuda_ops table. */
#ifndef RB_CUDA_COMMON_CUH
#define RB_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <Random123/philox.h>

extern "C" {
#include "kernels/error.h"
#include "kernels/gpu.h"
}

/* A CUDA status as an rb status naming the op; RB_ENODEV when there is no device or driver. */
int rb_cu_status(cudaError_t e, const char *what);
/* After a launch: the launch error (bad configuration, no kernel image), as rb_cu_status. */
#define RB_CU_LAUNCHED(what) rb_cu_status(cudaGetLastError(), (what))
#define RB_CU_TRY(call, what)                   \
    do {                                        \
        int rc_ = rb_cu_status((call), (what)); \
        if (rc_) return rc_;                    \
    } while (0)

static inline cudaStream_t rb_cu_stream(void *s) {
    return (cudaStream_t) s;
}

/* Blocks for a 1-D grid over n items with `threads` per block, capped so that a grid-stride
 * loop covers the rest (2^31 - 1 blocks is the x limit; 65535 keeps launches cheap). */
static inline unsigned rb_cu_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned) (b == 0 ? 1 : b > 65535u * 32 ? 65535u * 32 : b);
}

/* Storage types: widen to fp32 exactly, narrow with round to nearest even. */
template <typename T> __device__ __forceinline__ float rb_cu_load(T v);
template <> __device__ __forceinline__ float rb_cu_load<float>(float v) {
    return v;
}
template <> __device__ __forceinline__ float rb_cu_load<__half>(__half v) {
    return __half2float(v);
}
template <> __device__ __forceinline__ float rb_cu_load<__nv_bfloat16>(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
template <typename T> __device__ __forceinline__ T rb_cu_store(float v);
template <> __device__ __forceinline__ float rb_cu_store<float>(float v) {
    return v;
}
template <> __device__ __forceinline__ __half rb_cu_store<__half>(float v) {
    return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 rb_cu_store<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

/* Philox4x32-10 block `block` of (seed, stream): the same four words as rb_philox4x32. */
__device__ __forceinline__ uint4 rb_cu_philox(uint64_t seed, uint64_t stream, uint64_t block) {
    philox4x32_ctr_t c = {
        {(uint32_t) block, (uint32_t) (block >> 32), (uint32_t) stream, (uint32_t) (stream >> 32)}};
    philox4x32_key_t k = {{(uint32_t) seed, (uint32_t) (seed >> 32)}};
    philox4x32_ctr_t r = philox4x32(c, k);
    return make_uint4(r.v[0], r.v[1], r.v[2], r.v[3]);
}

/* Sign i of rb_rng_rademacher_f32(seed, stream, 0, ...): bit i % 32 of word (i % 128) / 32 of
 * block i / 128; a set bit is -1. */
__device__ __forceinline__ float rb_cu_rademacher(uint64_t seed, uint64_t stream, uint64_t i) {
    uint4 r = rb_cu_philox(seed, stream, i / 128);
    unsigned w = (unsigned) (i % 128) / 32;
    uint32_t word = w == 0 ? r.x : w == 1 ? r.y : w == 2 ? r.z : r.w;
    return (word >> (i % 32)) & 1u ? -1.0f : 1.0f;
}

/* Each area fills its slots of the table (kernels/cuda/<area>.cu). */
void rb_cu_register_rng(rb_cuda_ops *ops);
void rb_cu_register_fwht(rb_cuda_ops *ops);
void rb_cu_register_blas(rb_cuda_ops *ops);
void rb_cu_register_quant(rb_cuda_ops *ops);
void rb_cu_register_fused(rb_cuda_ops *ops);
void rb_cu_register_rhtcodec(rb_cuda_ops *ops);

/* Multiprocessors of the current device (132 if it cannot be read), read once: the grid-stride
 * kernels size their grids by it. */
int rb_cu_sm_count(void);

/* The argument checks of rht_codebook_encode / _decode (gpu.h), in their CPU twins' order: the
 * Hadamard order d, the codebook and bits, then (rows > 0) the pointers and the code-row stride
 * ldp, which holds the packed codes and, with norm_in_row, the fp32 norm after them. */
int rb_cu_rc_check(const char *op, size_t d, const rb_codebook *cb, int bits, size_t rows,
                   const void *data, const void *packed, const float *d1, size_t ldp,
                   int norm_in_row);

/* The register kernels of the TurboQuant / EDEN codec (kernels/cuda/rhtcodec.cu): the encode
 * for rht_codebook_encode, arguments checked, RB_EDECLINE for shapes it has no kernel for. */
int rb_cu_rc_encode(const float *x, size_t rows, size_t d, const float *d1, const float *d2,
                    const rb_codebook *cb, int bits, uint8_t *packed, size_t ldp, float *norm,
                    void *stream);

#endif
