/* Philox streams on the device: the same numbers, element for element, as kernels/rng.c. */
#include "kernels/cuda/common.cuh"

__global__ void rademacher_kernel(uint64_t seed, uint64_t sid, uint64_t offset, size_t n,
                                  float *out) {
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        out[i] = rb_cu_rademacher(seed, sid, offset + i);
}

__global__ void bits_kernel(uint64_t seed, uint64_t sid, uint64_t offset, size_t n, uint32_t *out) {
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x) {
        uint64_t e = offset + i;
        uint4 r = rb_cu_philox(seed, sid, e / 4);
        unsigned w = (unsigned) (e % 4);
        out[i] = w == 0 ? r.x : w == 1 ? r.y : w == 2 ? r.z : r.w;
    }
}

static int cu_rademacher(uint64_t seed, uint64_t sid, uint64_t offset, size_t n, float *out,
                         void *s) {
    if (!n) return RB_OK;
    rademacher_kernel<<<rb_cu_blocks(n, 256), 256, 0, rb_cu_stream(s)>>>(seed, sid, offset, n, out);
    return RB_CU_LAUNCHED("rng_rademacher_f32");
}

static int cu_bits(uint64_t seed, uint64_t sid, uint64_t offset, size_t n, uint32_t *out, void *s) {
    if (!n) return RB_OK;
    bits_kernel<<<rb_cu_blocks(n, 256), 256, 0, rb_cu_stream(s)>>>(seed, sid, offset, n, out);
    return RB_CU_LAUNCHED("rng_bits");
}

void rb_cu_register_rng(rb_cuda_ops *ops) {
    ops->rng_rademacher_f32 = cu_rademacher;
    ops->rng_bits = cu_bits;
}
