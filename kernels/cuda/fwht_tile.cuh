/* The shared-memory FWHT machinery of the transform and fused kernels: a block holds a tile of
 * rows in fp32 shared memory, butterflies run in registers on windows of 5 index bits (stride 1
 * first, exactly the CPU's stage order), a small dense H_K mix, dtype loads and stores. */
#ifndef RB_CUDA_FWHT_TILE_CUH
#define RB_CUDA_FWHT_TILE_CUH

#include "kernels/cuda/common.cuh"

/* Bits of the index handled per register pass: 32 values per thread. */
#define RB_FW_LR 5
/* Largest tile (fp32 elements in one block's shared memory) of the fused kernels. */
#define RB_FW_SMEM_MAX (200 * 1024)

/* Padded shared-memory address of tile element e: one pad word per 32, so that a thread's 32
 * contiguous elements (pass at stride 1) and 32 threads' elements at stride 2^b (b >= 5) both
 * fall in 32 distinct banks. */
__device__ __forceinline__ int rb_fw_pad(int e) {
    return e + (e >> 5);
}
/* Padded distance between elements 2^b0 apart, from an element at a multiple of 2^W (W <= 5):
 * b0 = 0 stays inside one 32-run (1), b0 >= 5 crosses whole runs (2^b0 + 2^(b0-5)). Passes only
 * use b0 = 0 or b0 >= 5. A constant step keeps the 32 addresses out of registers. */
__device__ __forceinline__ int rb_fw_pad_step(int b0) {
    return b0 == 0 ? 1 : (1 << b0) + (1 << (b0 - 5));
}
__host__ __device__ static inline size_t rb_fw_padlen(size_t n) {
    return n + n / 32 + 1;
}

/* Butterfly stages h = 1, 2, .., 2^(W-1) on v[0 .. 2^W), in that order: (a, b) -> (a + b, a - b),
 * a the lower index. Fully unrolled, so v stays in registers. */
template <int W> __device__ __forceinline__ void rb_fw_bfly(float *v) {
    /* constant trip counts (stage s, pair t), so that every index is a compile-time constant */
#pragma unroll
    for (int st = 0; st < W; st++)
#pragma unroll
        for (int t = 0; t < (1 << W) / 2; t++) {
            const int h = 1 << st;
            const int j = ((t >> st) << (st + 1)) | (t & (h - 1));
            float a = v[j], b = v[j + h];
            v[j] = __fadd_rn(a, b);
            v[j + h] = __fsub_rn(a, b);
        }
}

/* N elements p[0..N) widened to fp32 with the widest of 16-, 8- and 4-byte loads that N
 * elements fill and p's alignment allows, scalar loads otherwise. */
template <typename T, typename W, int N>
__device__ __forceinline__ bool rb_fw_load_w(const T *p, float *v) {
    constexpr int PER = (int) (sizeof(W) / sizeof(T));
    if constexpr (PER < 1 || N % PER != 0) {
        return false;
    } else {
        if (((uintptr_t) p % sizeof(W)) != 0) return false;
#pragma unroll
        for (int c = 0; c < N / PER; c++) {
            W w = __ldg(reinterpret_cast<const W *>(p) + c);
            const T *e = reinterpret_cast<const T *>(&w);
#pragma unroll
            for (int i = 0; i < PER; i++) v[c * PER + i] = rb_cu_load<T>(e[i]);
        }
        return true;
    }
}
template <typename T, int N> __device__ __forceinline__ void rb_fw_load(const T *p, float *v) {
    if (rb_fw_load_w<T, uint4, N>(p, v)) return;
    if (rb_fw_load_w<T, uint2, N>(p, v)) return;
    if (sizeof(T) < 4 && rb_fw_load_w<T, unsigned, N>(p, v)) return;
#pragma unroll
    for (int i = 0; i < N; i++) v[i] = rb_cu_load<T>(p[i]);
}

/* Stores v[0..N) narrowed to T, as rb_fw_load chooses the width. */
template <typename T, typename W, int N>
__device__ __forceinline__ bool rb_fw_store_w(T *p, const float *v) {
    constexpr int PER = (int) (sizeof(W) / sizeof(T));
    if constexpr (PER < 1 || N % PER != 0) {
        return false;
    } else {
        if (((uintptr_t) p % sizeof(W)) != 0) return false;
#pragma unroll
        for (int c = 0; c < N / PER; c++) {
            W w;
            T *e = reinterpret_cast<T *>(&w);
#pragma unroll
            for (int i = 0; i < PER; i++) e[i] = rb_cu_store<T>(v[c * PER + i]);
            reinterpret_cast<W *>(p)[c] = w;
        }
        return true;
    }
}
template <typename T, int N> __device__ __forceinline__ void rb_fw_store(T *p, const float *v) {
    if (rb_fw_store_w<T, uint4, N>(p, v)) return;
    if (rb_fw_store_w<T, uint2, N>(p, v)) return;
    if (sizeof(T) < 4 && rb_fw_store_w<T, unsigned, N>(p, v)) return;
#pragma unroll
    for (int i = 0; i < N; i++) p[i] = rb_cu_store<T>(v[i]);
}

/* One register pass over shared memory: the stages on index bits [b0, b0 + W) of every sub-row
 * (nsub sub-rows of 2^m contiguous elements, tile index q 2^m + j). Each group of 2^W elements
 * at stride 2^b0 belongs to one thread, so no two threads touch the same element. */
template <int W> __device__ void rb_fw_pass_smem(float *s, int nsub, int m, int b0) {
    const int rest_bits = m - W;
    const int ngroups = nsub << rest_bits;
    for (int g = threadIdx.x; g < ngroups; g += blockDim.x) {
        int q = g >> rest_bits, rest = g & ((1 << rest_bits) - 1);
        int low = rest & ((1 << b0) - 1), high = rest >> b0;
        int base = (q << m) + low + (high << (b0 + W));
        float *x = s + rb_fw_pad(base);
        int sp = rb_fw_pad_step(b0);
        asm("" : "+r"(sp)); /* opaque per group: keeps the 32 offsets from being hoisted */
        float v[1 << W];
#pragma unroll
        for (int i = 0; i < (1 << W); i++) v[i] = x[i * sp];
        rb_fw_bfly<W>(v);
#pragma unroll
        for (int i = 0; i < (1 << W); i++) x[i * sp] = v[i];
    }
}

/* rb_fw_pass_smem<w> for a run-time w in 1..RB_FW_LR (no barrier). */
__device__ __forceinline__ void rb_fw_pass_smem_w(float *s, int nsub, int m, int b0, int w) {
    switch (w) {
    case 1:
        rb_fw_pass_smem<1>(s, nsub, m, b0);
        break;
    case 2:
        rb_fw_pass_smem<2>(s, nsub, m, b0);
        break;
    case 3:
        rb_fw_pass_smem<3>(s, nsub, m, b0);
        break;
    case 4:
        rb_fw_pass_smem<4>(s, nsub, m, b0);
        break;
    default:
        rb_fw_pass_smem<5>(s, nsub, m, b0);
        break;
    }
}

/* The remaining stages (bits b0 .. m-1) of every sub-row, 5 bits per pass, a barrier after each
 * pass. Call with the tile written and a barrier passed. */
__device__ __forceinline__ void rb_fw_rest_smem(float *s, int nsub, int m, int b0) {
    while (b0 < m) {
        int w = m - b0 < RB_FW_LR ? m - b0 : RB_FW_LR;
        rb_fw_pass_smem_w(s, nsub, m, b0, w);
        __syncthreads();
        b0 += w;
    }
}

/* The H_K mix of a tile of `rows` rows, each a K x 2^m row-major block: out[i][j] =
 * scale * sum_k s_ik in[k][j], k ascending from 0.0f like rb_hadamard_f32_ref; s_ik = -1 where
 * bit i % 32 of hb[k * nib + i / 32] is set (the table already holds H_K or H_K^T). +-c is exact,
 * so the sums equal the reference's (float) h * c additions. in and out are distinct tiles. */
__device__ __forceinline__ void rb_fw_mix_smem(const float *in, float *out, int rows, int K, int m,
                                               const uint32_t *hb, int nib, float scale) {
    const int P = 1 << m;
    const int items = rows * nib * P;
    for (int it = threadIdx.x; it < items; it += blockDim.x) {
        int j = it & (P - 1), t = it >> m;
        int ib = t % nib, r = t / nib;
        const int base = r * K * P + j;
        float acc[32];
#pragma unroll
        for (int ii = 0; ii < 32; ii++) acc[ii] = 0.0f;
        for (int k = 0; k < K; k++) {
            float c = in[rb_fw_pad(base + k * P)];
            uint32_t w = __ldg(hb + k * nib + ib);
#pragma unroll
            for (int ii = 0; ii < 32; ii++) {
                float sc = __int_as_float(__float_as_int(c) ^ (int) ((w >> ii) << 31));
                acc[ii] = __fadd_rn(acc[ii], sc);
            }
        }
#pragma unroll
        for (int ii = 0; ii < 32; ii++) {
            int i = ib * 32 + ii;
            if (i < K) out[rb_fw_pad(base + i * P)] = __fmul_rn(acc[ii], scale);
        }
    }
}

/* The device sign-bit table of H_K (dir RB_FORWARD) or H_K^T (RB_INVERSE) for rb_fw_mix_smem:
 * built and uploaded once per (K, dir), kept for the process (one device). */
int rb_fw_hk_table(size_t K, rb_dir dir, const uint32_t **table);

#endif
