/* The GPU half of cuda_kv_int4::quotient_is_the_division (tests/test_cuda_fused.c): random
 * (v, scale) pairs through rb_kv_quotient and rb_kv_code (kernels/cuda/kv_quotient.cuh) against
 * __fdiv_rn, the IEEE division of the CPU reference. */
#include <cuda_runtime.h>

#include "kernels/cuda/kv_quotient.cuh"

extern "C" {
#include "tests/cuda_kv_quotient.h"
}

__device__ static uint64_t kvq_mix(uint64_t x) { /* splitmix64's finalizer */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A float with the given sign/mantissa bits and a biased exponent in [lo, lo + span). */
__device__ static float kvq_float(uint64_t bits, unsigned lo, unsigned span) {
    unsigned e = lo + (unsigned) ((bits >> 32) % span);
    return __uint_as_float(((unsigned) bits & 0x807fffffu) | (e << 23));
}

/* Kinds of pair (RBT_KVQ_*): ANY, v of any sign and exponent with scale in [2^-31, 2^126);
 * ROW, v = scale t with |t| <= 20, the kernel's own range (|v| <= 15 scale plus an offset);
 * RANGE, scale = range / 15 as the kernel makes it, v up to 2^40 times the range. Counts:
 * [0] pairs in the fast domain (rb_kv_fast_row), [1] quotients that differ from the division
 * where neither v nor the quotient is below 2^-100 (below, the FMA residuals may underflow),
 * [2] codes that differ, for a random zero point. */
__global__ void kvq_kernel(uint64_t seed, uint64_t n, int kind, unsigned long long *count) {
    unsigned long long fast = 0, badq = 0, badc = 0;
    for (uint64_t i = blockIdx.x * (uint64_t) blockDim.x + threadIdx.x; i < n;
         i += (uint64_t) gridDim.x * blockDim.x) {
        uint64_t a = kvq_mix(seed ^ (4 * i)), b = kvq_mix(seed ^ (4 * i + 1)),
                 c = kvq_mix(seed ^ (4 * i + 2));
        float v, scale;
        if (kind == RBT_KVQ_ANY) {
            scale = fabsf(kvq_float(b, 96, 157)); /* biased 96..252 */
            v = kvq_float(a, 1, 254);
        } else if (kind == RBT_KVQ_ROW) {
            scale = fabsf(kvq_float(b, 100, 60));
            float t = (float) ((int64_t) (a % 40000001u) - 20000000) * 1e-6f;
            v = __uint_as_float(__float_as_uint(__fmul_rn(scale, t)) ^ (unsigned) (c & 7u));
        } else {
            float range = fabsf(kvq_float(b, 80, 120));
            scale = __fdiv_rn(range, 15.0f);
            unsigned er = __float_as_uint(range) >> 23;
            v = kvq_float(a, er - 40, 80);
        }
        float rcp = __frcp_rn(scale);
        if (!rb_kv_fast_row(v, v, rcp)) continue;
        fast++;
        float want = __fdiv_rn(v, scale), got = rb_kv_quotient(v, scale, rcp);
        if (fabsf(v) >= 0x1p-100f && fabsf(want) >= 0x1p-100f &&
            __float_as_uint(want) != __float_as_uint(got))
            badq++;
        /* zero points of every size the kernel makes: -mn / scale, any sign */
        float z = kind == RBT_KVQ_ANY ? kvq_float(c, 100, 60) : -__fmul_rn(want, (float) (c % 3));
        z = kind == RBT_KVQ_RANGE ? __fadd_rn(z, (float) (c >> 60)) : z;
        float f = __fadd_rn(__fadd_rn(want, z), 0.5f);
        f = f > 0.0f ? f : 0.0f;
        f = f < 15.0f ? f : 15.0f;
        if ((uint32_t) f != rb_kv_code(got, z)) badc++;
    }
    atomicAdd(&count[0], fast);
    atomicAdd(&count[1], badq);
    atomicAdd(&count[2], badc);
}

extern "C" int rbt_cu_kv_quotient_check(uint64_t seed, uint64_t n, int kind,
                                        unsigned long long count[3]) {
    unsigned long long *d = NULL;
    cudaError_t e = cudaMalloc(&d, 3 * sizeof *d);
    if (e == cudaSuccess) e = cudaMemset(d, 0, 3 * sizeof *d);
    if (e == cudaSuccess) {
        kvq_kernel<<<1024, 256>>>(seed, n, kind, d);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpy(count, d, 3 * sizeof *d, cudaMemcpyDeviceToHost);
    cudaFree(d);
    return (int) e;
}
