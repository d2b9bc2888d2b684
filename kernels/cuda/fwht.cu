/* Transforms on the device: FWHT, Hadamard K * 2^m, randomized Hadamard and block Hadamard, each
 * the bit-exact twin of its CPU reference (kernels/fwht.c, hadamard.c, rotate.c).
 *
 * One fused kernel (fw_tile_kernel) covers every row whose fp32 tile fits in shared memory
 * (n <= 2^15 for K = 1): rows are loaded with 16-byte loads into registers, the first 5 index
 * bits are butterflied there, the tile goes to padded shared memory, further 5-bit register passes
 * run over it, the H_K mix (K > 1) reads it column by column, and the store pass writes
 * contiguous 16-byte chunks. The sign multiplies of the RHT happen in the load / between rounds /
 * in the store. Longer rows run in passes over an fp32 scratch the backend owns (big_path). */
#include <map>
#include <new>
#include <math.h>
#include <mutex>
#include <utility>
#include <vector>

#include "kernels/cuda/fwht_tile.cuh"

extern "C" {
#include "kernels/fwht.h"
#include "kernels/hadamard.h"
}

/* ---- the H_K sign tables ---- */

static int hk_table(size_t K, rb_dir dir, const uint32_t **table) {
    static std::mutex mu;
    static std::map<std::pair<size_t, int>, uint32_t *> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto key = std::make_pair(K, (int) dir);
    auto it = cache.find(key);
    if (it != cache.end()) {
        *table = it->second;
        return RB_OK;
    }
    const int8_t *h = rb_hadamard_matrix(K);
    if (!h) return rb_error_set(RB_EINVAL, "hadamard: no table for K = %zu", K);
    size_t nib = (K + 31) / 32;
    std::vector<uint32_t> w(K * nib, 0u);
    for (size_t i = 0; i < K; i++)
        for (size_t k = 0; k < K; k++) {
            int8_t s = dir == RB_INVERSE ? h[k * K + i] : h[i * K + k];
            if (s < 0) w[k * nib + i / 32] |= 1u << (i % 32);
        }
    uint32_t *d = NULL;
    int rc = rb_cu_status(cudaMalloc((void **) &d, w.size() * sizeof(uint32_t)), "cudaMalloc");
    if (rc) return rc;
    rc = rb_cu_status(cudaMemcpy(d, w.data(), w.size() * sizeof(uint32_t), cudaMemcpyHostToDevice),
                      "cudaMemcpy (H_K table)");
    if (rc) {
        cudaFree(d);
        return rc;
    }
    try {
        cache[key] = d;
    } catch (...) {
        cudaFree(d);
        throw;
    }
    *table = d;
    return RB_OK;
}

/* The host containers may throw std::bad_alloc; no exception may reach the C callers. */
int rb_fw_hk_table(size_t K, rb_dir dir, const uint32_t **table) {
    try {
        return hk_table(K, dir, table);
    } catch (const std::bad_alloc &) {
        return rb_error_set(RB_ENOMEM, "hadamard: no host memory for the K = %zu sign table", K);
    }
}

/* ---- the fused tile kernel ---- */

/* What a call does to each row of n = K 2^m elements:
 *   round 0: x *= pre0 (if any); FWHT of each of the K sub-rows; K > 1: H_K mix times scale
 *   round 1 (nround == 2): K == 1 and scale_on: x *= scale; x *= pre1; the same transform
 *   store: K == 1 and scale_on: x *= scale; x *= post (if any).
 * Rows: row R starts at (R / grp) * stride + (R % grp) * gstride (grp = 1 for plain rows). */
struct fw_plan {
    int m, K, n, rb; /* rb rows per block */
    int nround;
    const float *pre0, *pre1, *post;
    const uint32_t *hb;
    int nib;
    float scale;
    int scale_on;
    size_t grp, gstride;
};

__device__ __forceinline__ size_t fw_row_off(const fw_plan &p, size_t R, size_t stride) {
    return p.grp == 1 ? R * stride : (R / p.grp) * stride + (R % p.grp) * p.gstride;
}

/* Round 0's first pass straight from global memory: each thread loads 2^W contiguous elements
 * of one sub-row, applies the signs, butterflies bits 0..W-1 and writes the tile. Rows past
 * the end are zeros (so that the whole tile is defined). */
/* The epilogue of the last stage when K = 1: the scale, then the signs of the store. */
__device__ __forceinline__ float fw_epi(float v, int col, const fw_plan &p) {
    if (p.scale_on) v = __fmul_rn(v, p.scale);
    if (p.post) v = __fmul_rn(v, __ldg(p.post + col));
    return v;
}

template <typename T, int W, bool OUT>
__device__ void fw_first_pass(float *s, T *data, size_t row0, int rows_here, size_t stride,
                              const fw_plan &p) {
    const int rest_bits = p.m - W;
    const int ngroups = (p.rb * p.K) << rest_bits;
    for (int g = threadIdx.x; g < ngroups; g += blockDim.x) {
        int q = g >> rest_bits, rest = g & ((1 << rest_bits) - 1);
        int r = q / p.K, k = q - r * p.K;
        int col = (k << p.m) + (rest << W);
        float v[1 << W];
        if (r < rows_here) {
            rb_fw_load<T, (1 << W)>(data + fw_row_off(p, row0 + r, stride) + col, v);
            if (p.pre0) {
#pragma unroll
                for (int c = 0; c < (1 << W); c += (W >= 2 ? 4 : 1)) {
                    float d[W >= 2 ? 4 : 1];
                    rb_fw_load<float, (W >= 2 ? 4 : 1)>(p.pre0 + col + c, d);
#pragma unroll
                    for (int i = 0; i < (W >= 2 ? 4 : 1); i++) v[c + i] = __fmul_rn(v[c + i], d[i]);
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < (1 << W); i++) v[i] = 0.0f;
        }
        rb_fw_bfly<W>(v);
        if (OUT) {
            if (r < rows_here) {
#pragma unroll
                for (int i = 0; i < (1 << W); i++) v[i] = fw_epi(v[i], col + i, p);
                rb_fw_store<T, (1 << W)>(data + fw_row_off(p, row0 + r, stride) + col, v);
            }
        } else {
            float *xs = s + rb_fw_pad(g << W); /* 2^W <= 32 elements inside one padded run */
#pragma unroll
            for (int i = 0; i < (1 << W); i++) xs[i] = v[i];
        }
    }
}

template <typename T, bool OUT>
__device__ __forceinline__ void fw_first(float *s, T *data, size_t row0, int rows_here,
                                         size_t stride, const fw_plan &p) {
    switch (p.m < RB_FW_LR ? p.m : RB_FW_LR) {
    case 0:
        fw_first_pass<T, 0, OUT>(s, data, row0, rows_here, stride, p);
        break;
    case 1:
        fw_first_pass<T, 1, OUT>(s, data, row0, rows_here, stride, p);
        break;
    case 2:
        fw_first_pass<T, 2, OUT>(s, data, row0, rows_here, stride, p);
        break;
    case 3:
        fw_first_pass<T, 3, OUT>(s, data, row0, rows_here, stride, p);
        break;
    case 4:
        fw_first_pass<T, 4, OUT>(s, data, row0, rows_here, stride, p);
        break;
    default:
        fw_first_pass<T, 5, OUT>(s, data, row0, rows_here, stride, p);
        break;
    }
}

/* The last register pass (bits [b0, m), K = 1) from shared memory straight to global memory with
 * the epilogue: contiguous 2^W elements when b0 = 0, else one element per lane per store, the
 * lanes of a warp on consecutive elements (b0 >= 5). */
template <typename T, int W>
__device__ void fw_last_pass(const float *s, T *data, size_t row0, int rows_here, size_t stride,
                             const fw_plan &p, int b0) {
    const int m = p.m, rest_bits = m - W;
    const int ngroups = p.rb << rest_bits;
    for (int g = threadIdx.x; g < ngroups; g += blockDim.x) {
        int q = g >> rest_bits, rest = g & ((1 << rest_bits) - 1);
        int low = rest & ((1 << b0) - 1), high = rest >> b0;
        int e0 = low + (high << (b0 + W));
        int base = (q << m) + e0;
        const float *xs = s + rb_fw_pad(base);
        int sp = rb_fw_pad_step(b0);
        asm("" : "+r"(sp)); /* opaque per group: keeps the 32 offsets from being hoisted */
        float v[1 << W];
#pragma unroll
        for (int i = 0; i < (1 << W); i++) v[i] = xs[i * sp];
        rb_fw_bfly<W>(v);
        if (q >= rows_here) continue;
        T *x = data + fw_row_off(p, row0 + q, stride) + e0;
#pragma unroll
        for (int i = 0; i < (1 << W); i++) v[i] = fw_epi(v[i], e0 + (i << b0), p);
        if (b0 == 0) {
            rb_fw_store<T, (1 << W)>(x, v);
        } else {
            int step = 1 << b0;
            asm("" : "+r"(step)); /* as sp above */
#pragma unroll
            for (int i = 0; i < (1 << W); i++) x[i * step] = rb_cu_store<T>(v[i]);
        }
    }
}

/* Passes over bits b0 .. m-1 of the tile (a barrier after each); with OUT (K = 1) the last one
 * writes the rows instead of the tile. */
template <typename T, bool OUT>
__device__ void fw_rest(float *s, T *data, size_t row0, int rows_here, size_t stride,
                        const fw_plan &p, int b0) {
    const int nsub = p.rb * p.K, m = p.m;
    while (b0 < m) {
        int w = m - b0 < RB_FW_LR ? m - b0 : RB_FW_LR;
        if (OUT && b0 + w == m) {
            switch (w) {
            case 1:
                fw_last_pass<T, 1>(s, data, row0, rows_here, stride, p, b0);
                break;
            case 2:
                fw_last_pass<T, 2>(s, data, row0, rows_here, stride, p, b0);
                break;
            case 3:
                fw_last_pass<T, 3>(s, data, row0, rows_here, stride, p, b0);
                break;
            case 4:
                fw_last_pass<T, 4>(s, data, row0, rows_here, stride, p, b0);
                break;
            default:
                fw_last_pass<T, 5>(s, data, row0, rows_here, stride, p, b0);
                break;
            }
            return;
        }
        rb_fw_pass_smem_w(s, nsub, m, b0, w);
        __syncthreads();
        b0 += w;
    }
}

/* The store pass: 16-byte chunks of each row (scalar at a ragged end or misalignment). */
template <typename T>
__device__ void fw_store_pass(const float *s, T *data, size_t row0, int rows_here, size_t stride,
                              const fw_plan &p) {
    constexpr int V = 16 / (int) sizeof(T);
    const int nch = (p.n + V - 1) / V;
    const int items = rows_here * nch;
    const bool sc = p.K == 1 && p.scale_on;
    for (int it = threadIdx.x; it < items; it += blockDim.x) {
        int r = it / nch, c = it - r * nch;
        int col0 = c * V;
        T *dst = data + fw_row_off(p, row0 + r, stride) + col0;
        float v[V];
#pragma unroll
        for (int i = 0; i < V; i++) {
            int col = col0 + i < p.n ? col0 + i : p.n - 1;
            v[i] = s[rb_fw_pad(r * p.n + col)];
            if (sc) v[i] = __fmul_rn(v[i], p.scale);
            if (p.post) v[i] = __fmul_rn(v[i], p.post[col]);
        }
        if (col0 + V <= p.n) {
            rb_fw_store<T, V>(dst, v);
        } else {
#pragma unroll
            for (int i = 0; i < V; i++)
                if (col0 + i < p.n) dst[i] = rb_cu_store<T>(v[i]);
        }
    }
}

/* The general kernel: any n = K 2^m whose tile fits, one or two rounds. MIX: K > 1 (the H_K mix,
 * then the store pass); without it (K = 1: n <= 32 here, or shapes the fixed kernel does not
 * take) the last butterfly pass writes the rows directly. */
template <typename T, bool MIX>
__global__ void __launch_bounds__(512, 1)
    fw_tile_kernel(T *data, size_t count, size_t stride, fw_plan p, int padlen) {
    extern __shared__ float fw_smem[];
    const size_t nblk = (count + p.rb - 1) / p.rb;
    const int nsub = p.rb * p.K;
    const int w0 = p.m < RB_FW_LR ? p.m : RB_FW_LR;
    for (size_t blk = blockIdx.x; blk < nblk; blk += gridDim.x) {
        float *a = fw_smem, *b = fw_smem + padlen;
        size_t row0 = blk * p.rb;
        int rows_here = count - row0 < (size_t) p.rb ? (int) (count - row0) : p.rb;
        if (!MIX) {
            if (p.nround == 1 && p.m <= RB_FW_LR) {
                /* the whole row in one thread's registers: no shared memory at all */
                fw_first<T, true>(a, data, row0, rows_here, stride, p);
                continue;
            }
            fw_first<T, false>(a, data, row0, rows_here, stride, p);
            __syncthreads();
            if (p.nround == 1) {
                fw_rest<T, true>(a, data, row0, rows_here, stride, p, w0);
            } else {
                fw_rest<T, false>(a, data, row0, rows_here, stride, p, w0);
                const int tile = p.rb * p.n;
                for (int e = threadIdx.x; e < tile; e += blockDim.x) {
                    float v = a[rb_fw_pad(e)];
                    if (p.scale_on) v = __fmul_rn(v, p.scale);
                    a[rb_fw_pad(e)] = __fmul_rn(v, __ldg(p.pre1 + e % p.n));
                }
                __syncthreads();
                if (p.m > 0)
                    fw_rest<T, true>(a, data, row0, rows_here, stride, p, 0);
                else /* n = 1: no pass left to do the store */
                    fw_store_pass<T>(a, data, row0, rows_here, stride, p);
            }
            __syncthreads(); /* the next tile overwrites shared memory */
            continue;
        }
        fw_first<T, false>(a, data, row0, rows_here, stride, p);
        __syncthreads();
        rb_fw_rest_smem(a, nsub, p.m, w0);
        rb_fw_mix_smem(a, b, p.rb, p.K, p.m, p.hb, p.nib, p.scale);
        __syncthreads();
        if (p.nround == 2) {
            const int tile = p.rb * p.n;
            for (int e = threadIdx.x; e < tile; e += blockDim.x)
                b[rb_fw_pad(e)] = __fmul_rn(b[rb_fw_pad(e)], __ldg(p.pre1 + e % p.n));
            __syncthreads();
            rb_fw_rest_smem(b, nsub, p.m, 0);
            rb_fw_mix_smem(b, a, p.rb, p.K, p.m, p.hb, p.nib, p.scale);
            __syncthreads();
            fw_store_pass<T>(a, data, row0, rows_here, stride, p);
        } else {
            fw_store_pass<T>(b, data, row0, rows_here, stride, p);
        }
        __syncthreads(); /* the next tile overwrites shared memory */
    }
}

/* ---- the K = 1 kernel with n = 2^M fixed at compile time (6 <= M <= 15) ----
 * The FWHT, the K = 1 Hadamard and the one- and two-block RHT with K = 1. Every pass, stride and
 * shared-memory offset is a constant: pass 1 loads 32 contiguous elements per thread (16-byte
 * loads, signs applied), bits 0-4 in registers, into the padded tile; then passes of <= 5 bits
 * in place (M <= 10: one, M = 11, 12: 3 + 3 or 4 + 3, M >= 13: 5 + (M - 10)); the last pass
 * goes from the tile to the rows, lane l on element l of a run (coalesced), with the scale and
 * the post signs. Two rounds: round 1 ends in the tile and round 2 starts there (scale, pre1). */
__host__ __device__ constexpr int fx_rb(int M) {
    return M >= 12 ? 1 : 1 << (12 - M);
}
/* Threads per block: one 32-element group each in the first pass, at most 256 so that two
 * 16K tiles share an SM (registers); 512 at 32K, where shared memory allows one block per SM
 * (1024 threads capped at 64 registers spilled and ran slower on the H100). */
__host__ __device__ constexpr int fx_threads(int M) {
    return M == 15 ? 512 : ((fx_rb(M) << M) / 32) > 256 ? 256 : (fx_rb(M) << M) / 32;
}
/* Index bits of the first pass (6 at M = 12 spills at 128 registers). */
__host__ __device__ constexpr int fx_w0(int M) {
    return M > 0 ? 5 : 5;
}

/* MODE: 0 back to the tile; 1 (B0 = 0 only) the same, the 32 inputs first times the scale
 * (scale_on) and pre1: the step between the two rounds of a two-block RHT, with contiguous sign
 * loads; 2 to the rows with the epilogue. */
template <typename T, int M, int B0, int W, int MODE>
__device__ __forceinline__ void fx_pass(float *s, T *data, size_t row0, int rows_here,
                                        size_t stride, const fw_plan &p) {
    constexpr int TILE = fx_rb(M) << M, NT = fx_threads(M);
    constexpr int SP = B0 == 0 ? 1 : (1 << B0) + (1 << (B0 - 5)); /* B0 = 0 or >= 5 */
    constexpr int G = TILE >> W;                                  /* groups of 2^W elements */
#pragma unroll
    for (int k = 0; k < (G + NT - 1) / NT; k++) {
        const int g = threadIdx.x + k * NT;
        if (G % NT != 0 && g >= G) break;
        const int q = g >> (M - W), rest = g & ((1 << (M - W)) - 1);
        const int low = rest & ((1 << B0) - 1), high = rest >> B0;
        const int e0 = low + (high << (B0 + W));
        float *xs = s + rb_fw_pad((q << M) + e0);
        float v[1 << W];
#pragma unroll
        for (int i = 0; i < (1 << W); i++) v[i] = xs[i * SP];
        if constexpr (MODE == 1) {
            static_assert(B0 == 0 && W >= 2, "the sign step runs on contiguous elements");
#pragma unroll
            for (int c = 0; c < (1 << W); c += 4) {
                float d[4];
                rb_fw_load<float, 4>(p.pre1 + e0 + c, d);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    float t = p.scale_on ? __fmul_rn(v[c + i], p.scale) : v[c + i];
                    v[c + i] = __fmul_rn(t, d[i]);
                }
            }
        }
        rb_fw_bfly<W>(v);
        if (MODE != 2) {
#pragma unroll
            for (int i = 0; i < (1 << W); i++) xs[i * SP] = v[i];
        } else if (q < rows_here) {
            T *x = data + fw_row_off(p, row0 + q, stride) + e0;
#pragma unroll
            for (int i = 0; i < (1 << W); i++)
                x[i << B0] = rb_cu_store<T>(fw_epi(v[i], e0 + (i << B0), p));
        }
    }
}

/* The passes after the first (bits 5 .. M-1), the last one in mode LASTMODE. */
template <typename T, int M, int LASTMODE>
__device__ __forceinline__ void fx_rest(float *s, T *data, size_t row0, int rows_here,
                                        size_t stride, const fw_plan &p) {
    if constexpr (M <= 10) { /* 5 + (M - 5) */
        fx_pass<T, M, 5, M - 5, LASTMODE>(s, data, row0, rows_here, stride, p);
    } else if constexpr (M <= 12) { /* 5 + 3 + 3, 5 + 4 + 3: no tiny last pass */
        fx_pass<T, M, 5, M - 8, 0>(s, data, row0, rows_here, stride, p);
        __syncthreads();
        fx_pass<T, M, M - 3, 3, LASTMODE>(s, data, row0, rows_here, stride, p);
    } else {
        fx_pass<T, M, 5, 5, 0>(s, data, row0, rows_here, stride, p);
        __syncthreads();
        fx_pass<T, M, 10, M - 10, LASTMODE>(s, data, row0, rows_here, stride, p);
    }
}

/* NR rounds (2: the two-block RHT), a separate kernel so that the one-round kernel keeps its
 * registers (at most 80, or 64 at M = 15, for the occupancy that keeps loads in flight). */
template <typename T, int M, int NR>
__global__ void __launch_bounds__(fx_threads(M), NR == 2 || M == 15 ? 1
                                                 : M == 10          ? 5
                                                                    : 768 / fx_threads(M))
    fw_fixed_kernel(T *data, size_t count, size_t stride, fw_plan p) {
    extern __shared__ float fw_smem[];
    constexpr int RB = fx_rb(M), TILE = RB << M, NT = fx_threads(M);
    float *s = fw_smem;
    const size_t nblk = (count + RB - 1) / RB;
    for (size_t blk = blockIdx.x; blk < nblk; blk += gridDim.x) {
        const size_t row0 = blk * RB;
        const int rows_here = count - row0 < (size_t) RB ? (int) (count - row0) : RB;
        constexpr int W0 = fx_w0(M);
        constexpr int G0 = TILE >> W0;
#pragma unroll
        for (int k = 0; k < (G0 + NT - 1) / NT; k++) {
            const int g = threadIdx.x + k * NT;
            if (G0 % NT != 0 && g >= G0) break;
            const int r = g >> (M - W0), col = (g << W0) & ((1 << M) - 1);
            float v[1 << W0];
            if (r < rows_here) {
                rb_fw_load<T, (1 << W0)>(data + fw_row_off(p, row0 + r, stride) + col, v);
                if (p.pre0) {
#pragma unroll
                    for (int c = 0; c < (1 << W0); c += 4) {
                        float d[4];
                        rb_fw_load<float, 4>(p.pre0 + col + c, d);
#pragma unroll
                        for (int i = 0; i < 4; i++) v[c + i] = __fmul_rn(v[c + i], d[i]);
                    }
                }
            } else {
#pragma unroll
                for (int i = 0; i < (1 << W0); i++) v[i] = 0.0f;
            }
            rb_fw_bfly<W0>(v);
            /* 2^W0 contiguous elements from a multiple of 2^W0: one pad word per 32 */
            float *xs = s + rb_fw_pad(g << W0);
#pragma unroll
            for (int i = 0; i < (1 << W0); i++) xs[i + (i >> 5)] = v[i];
        }
        __syncthreads();
        if constexpr (NR == 1) {
            fx_rest<T, M, 2>(s, data, row0, rows_here, stride, p);
        } else { /* two-block RHT: round 1 ends in the tile, round 2 starts from it */
            fx_rest<T, M, 0>(s, data, row0, rows_here, stride, p);
            __syncthreads();
            fx_pass<T, M, 0, 5, 1>(s, data, row0, rows_here, stride, p);
            __syncthreads();
            fx_rest<T, M, 2>(s, data, row0, rows_here, stride, p);
        }
        __syncthreads(); /* the next tile overwrites shared memory */
    }
}

template <typename T, int M>
static int fx_launch(T *data, size_t count, size_t stride, const fw_plan &p, cudaStream_t st,
                     const char *what) {
    constexpr int RB = fx_rb(M), TILE = RB << M;
    const size_t bytes = rb_fw_padlen(TILE) * sizeof(float);
    size_t nblk = (count + RB - 1) / RB;
    unsigned grid = (unsigned) (nblk > 65535u * 16 ? 65535u * 16 : nblk);
    if (p.nround == 2) {
        if (bytes > 48 * 1024)
            RB_CU_TRY(cudaFuncSetAttribute(fw_fixed_kernel<T, M, 2>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int) bytes),
                      what);
        fw_fixed_kernel<T, M, 2><<<grid, fx_threads(M), bytes, st>>>(data, count, stride, p);
    } else {
        if (bytes > 48 * 1024)
            RB_CU_TRY(cudaFuncSetAttribute(fw_fixed_kernel<T, M, 1>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int) bytes),
                      what);
        fw_fixed_kernel<T, M, 1><<<grid, fx_threads(M), bytes, st>>>(data, count, stride, p);
    }
    return RB_CU_LAUNCHED(what);
}

template <typename T>
static int fx_dispatch(T *data, size_t count, size_t stride, const fw_plan &p, cudaStream_t st,
                       const char *what) {
    switch (p.m) {
    case 6:
        return fx_launch<T, 6>(data, count, stride, p, st, what);
    case 7:
        return fx_launch<T, 7>(data, count, stride, p, st, what);
    case 8:
        return fx_launch<T, 8>(data, count, stride, p, st, what);
    case 9:
        return fx_launch<T, 9>(data, count, stride, p, st, what);
    case 10:
        return fx_launch<T, 10>(data, count, stride, p, st, what);
    case 11:
        return fx_launch<T, 11>(data, count, stride, p, st, what);
    case 12:
        return fx_launch<T, 12>(data, count, stride, p, st, what);
    case 13:
        return fx_launch<T, 13>(data, count, stride, p, st, what);
    case 14:
        return fx_launch<T, 14>(data, count, stride, p, st, what);
    default:
        return fx_launch<T, 15>(data, count, stride, p, st, what);
    }
}

/* Rows per block so that a block moves a useful amount (about 4K elements). */
static int fw_rows_per_block(size_t n, size_t count) {
    size_t rb = n >= 4096 ? 1 : 4096 / n;
    if (rb > count) rb = count;
    return (int) (rb ? rb : 1);
}

static size_t fw_smem_bytes(size_t tile, int K) {
    return (K > 1 ? 2 : 1) * rb_fw_padlen(tile) * sizeof(float);
}

/* Whether rows of n = K 2^m fit the fused kernel (one row per block at least). */
static bool fw_fits(size_t n, int K) {
    return fw_smem_bytes(n, K) <= RB_FW_SMEM_MAX;
}

template <typename T>
static int launch_tile(T *data, size_t count, size_t stride, fw_plan p, cudaStream_t st,
                       const char *what) {
    if (p.K == 1 && p.m >= 6 && p.m <= 15) {
        p.rb = fx_rb(p.m);
        return fx_dispatch<T>(data, count, stride, p, st, what);
    }
    p.rb = fw_rows_per_block((size_t) p.n, count);
    size_t tile = (size_t) p.rb * p.n;
    size_t bytes = fw_smem_bytes(tile, p.K);
    int padlen = (int) rb_fw_padlen(tile);
    int w0 = p.m < RB_FW_LR ? p.m : RB_FW_LR;
    size_t groups = tile >> w0;
    unsigned threads = (unsigned) ((groups + 31) / 32 * 32);
    if (threads > 512) threads = 512;
    if (threads < 64) threads = 64;
    size_t nblk = (count + p.rb - 1) / p.rb;
    unsigned grid = (unsigned) (nblk > 65535u * 16 ? 65535u * 16 : nblk);
    if (p.K > 1) {
        if (bytes > 48 * 1024)
            RB_CU_TRY(cudaFuncSetAttribute(fw_tile_kernel<T, true>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int) bytes),
                      what);
        fw_tile_kernel<T, true><<<grid, threads, bytes, st>>>(data, count, stride, p, padlen);
    } else {
        if (bytes > 48 * 1024)
            RB_CU_TRY(cudaFuncSetAttribute(fw_tile_kernel<T, false>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int) bytes),
                      what);
        fw_tile_kernel<T, false><<<grid, threads, bytes, st>>>(data, count, stride, p, padlen);
    }
    return RB_CU_LAUNCHED(what);
}

/* ---- passes over an fp32 scratch, for rows too long for one block ---- */

/* dst row r, column c = src's, times scale (scale_on) then sign[c] (if any). Rows of n. */
template <typename TI, typename TO>
__global__ void fw_ew_kernel(const TI *src, size_t count, size_t sstride, TO *dst, size_t dstride,
                             size_t n, float scale, int scale_on, const float *sign) {
    size_t total = count * n;
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total;
         i += (size_t) gridDim.x * blockDim.x) {
        size_t r = i / n, c = i - r * n;
        float v = rb_cu_load<TI>(src[r * sstride + c]);
        if (scale_on) v = __fmul_rn(v, scale);
        if (sign) v = __fmul_rn(v, sign[c]);
        dst[r * dstride + c] = rb_cu_store<TO>(v);
    }
}

/* Stages on bits [b0, b0 + W) of contiguous sub-rows of 2^m floats (b0 >= 5: coalesced). */
template <int W> __global__ void fw_bits_kernel(float *buf, size_t nsub, int m, int b0) {
    const int rest_bits = m - W;
    size_t ngroups = nsub << rest_bits;
    for (size_t g = blockIdx.x * (size_t) blockDim.x + threadIdx.x; g < ngroups;
         g += (size_t) gridDim.x * blockDim.x) {
        size_t q = g >> rest_bits, rest = g & (((size_t) 1 << rest_bits) - 1);
        size_t low = rest & (((size_t) 1 << b0) - 1), high = rest >> b0;
        float *x = buf + (q << m) + low + (high << (b0 + W));
        float v[1 << W];
#pragma unroll
        for (int i = 0; i < (1 << W); i++) v[i] = x[(size_t) i << b0];
        rb_fw_bfly<W>(v);
#pragma unroll
        for (int i = 0; i < (1 << W); i++) x[(size_t) i << b0] = v[i];
    }
}

/* The H_K mix between two contiguous buffers of rows K x 2^m (as rb_fw_mix_smem). */
static __global__ void fw_mix_kernel(const float *in, float *out, size_t rows, int K, int m,
                                     const uint32_t *hb, int nib, float scale) {
    const size_t P = (size_t) 1 << m;
    size_t items = rows * nib * P;
    for (size_t it = blockIdx.x * (size_t) blockDim.x + threadIdx.x; it < items;
         it += (size_t) gridDim.x * blockDim.x) {
        size_t j = it & (P - 1), t = it >> m;
        size_t ib = t % nib, r = t / nib;
        const float *x = in + r * K * P + j;
        float acc[32];
#pragma unroll
        for (int ii = 0; ii < 32; ii++) acc[ii] = 0.0f;
        for (int k = 0; k < K; k++) {
            float c = x[k * P];
            uint32_t w = __ldg(hb + k * nib + ib);
#pragma unroll
            for (int ii = 0; ii < 32; ii++)
                acc[ii] =
                    __fadd_rn(acc[ii], __int_as_float(__float_as_int(c) ^ (int) ((w >> ii) << 31)));
        }
        float *o = out + r * K * P + j;
#pragma unroll
        for (int ii = 0; ii < 32; ii++) {
            size_t i = ib * 32 + ii;
            if (i < (size_t) K) o[i * P] = __fmul_rn(acc[ii], scale);
        }
    }
}

/* Per-stream fp32 scratch for big_path: grown on demand, kept for the process (one device), so
 * that repeated calls do not allocate. Calls on one stream run in order, so one buffer per stream
 * is never used by two calls at once. */
static int fw_scratch_locked(cudaStream_t st, size_t floats, float **out) {
    static std::map<cudaStream_t, std::pair<float *, size_t>> bufs;
    auto &b = bufs[st];
    if (b.second < floats) {
        if (b.first) {
            /* the stream may still use the old buffer */
            int rc = rb_cu_status(cudaStreamSynchronize(st), "cudaStreamSynchronize (scratch)");
            if (rc) return rc;
            cudaFree(b.first);
            b.first = NULL;
            b.second = 0;
        }
        float *p = NULL;
        cudaError_t e = cudaMalloc((void **) &p, floats * sizeof(float));
        if (e == cudaErrorMemoryAllocation) {
            (void) cudaGetLastError();
            return rb_error_set(RB_ENOMEM, "fwht: no device memory for a %zu-float scratch",
                                floats);
        }
        int rc = rb_cu_status(e, "cudaMalloc (fwht scratch)");
        if (rc) return rc;
        b.first = p;
        b.second = floats;
    }
    *out = b.first;
    return RB_OK;
}

static int fw_scratch(cudaStream_t st, size_t floats, float **out) {
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    try {
        return fw_scratch_locked(st, floats, out);
    } catch (const std::bad_alloc &) { /* the map's node for a new stream */
        return rb_error_set(RB_ENOMEM, "fwht: no host memory to track a stream's scratch");
    }
}

static unsigned grid_for(size_t items, unsigned threads) {
    return rb_cu_blocks(items, threads);
}

/* The FWHT of `nsub` contiguous fp32 sub-rows of 2^m (no scale). */
static int fw_fwht_scratch(float *buf, size_t nsub, int m, cudaStream_t st, const char *what) {
    int m1 = m < 15 ? m : 15;
    fw_plan q = {};
    q.m = m1;
    q.K = 1;
    q.n = 1 << m1;
    q.nround = 1;
    q.grp = 1;
    q.scale = 1.0f;
    int rc = launch_tile<float>(buf, nsub << (m - m1), (size_t) 1 << m1, q, st, what);
    if (rc) return rc;
    for (int b0 = m1; b0 < m;) {
        int w = m - b0 < 5 ? m - b0 : 5;
        size_t groups = nsub << (m - w);
        unsigned g = grid_for(groups, 256);
        switch (w) {
        case 1:
            fw_bits_kernel<1><<<g, 256, 0, st>>>(buf, nsub, m, b0);
            break;
        case 2:
            fw_bits_kernel<2><<<g, 256, 0, st>>>(buf, nsub, m, b0);
            break;
        case 3:
            fw_bits_kernel<3><<<g, 256, 0, st>>>(buf, nsub, m, b0);
            break;
        case 4:
            fw_bits_kernel<4><<<g, 256, 0, st>>>(buf, nsub, m, b0);
            break;
        default:
            fw_bits_kernel<5><<<g, 256, 0, st>>>(buf, nsub, m, b0);
            break;
        }
        if ((rc = RB_CU_LAUNCHED(what))) return rc;
        b0 += w;
    }
    return RB_OK;
}

/* The plan p (plain rows, grp == 1) on rows too long for one block: widen into scratch, run the
 * steps there as separate kernels in the same order (so the same fp32 operations), narrow back
 * once. Rows go in chunks that keep the scratch at most 2^26 floats (or one row). */
template <typename T>
static int big_path(T *data, size_t count, size_t stride, const fw_plan &p, cudaStream_t st,
                    const char *what) {
    const size_t n = (size_t) p.n, P = (size_t) 1 << p.m;
    const int nbuf = p.K > 1 ? 2 : 1;
    size_t chunk = ((size_t) 1 << 26) / (n * nbuf);
    if (chunk < 1) chunk = 1;
    if (chunk > count) chunk = count;
    float *s = NULL;
    int rc = fw_scratch(st, chunk * n * nbuf, &s);
    if (rc) return rc;
    const unsigned th = 256;
    for (size_t r0 = 0; r0 < count; r0 += chunk) {
        size_t rows = count - r0 < chunk ? count - r0 : chunk;
        float *a = s, *b = s + chunk * n;
        for (int round = 0; round < p.nround; round++) {
            if (round == 0)
                fw_ew_kernel<T, float><<<grid_for(rows * n, th), th, 0, st>>>(
                    data + r0 * stride, rows, stride, a, n, n, 1.0f, 0, p.pre0);
            else
                fw_ew_kernel<float, float><<<grid_for(rows * n, th), th, 0, st>>>(
                    a, rows, n, a, n, n, p.scale, p.K == 1 && p.scale_on, p.pre1);
            if ((rc = RB_CU_LAUNCHED(what))) return rc;
            if ((rc = fw_fwht_scratch(a, rows * p.K, p.m, st, what))) return rc;
            if (p.K > 1) {
                fw_mix_kernel<<<grid_for(rows * p.nib * P, th), th, 0, st>>>(a, b, rows, p.K, p.m,
                                                                             p.hb, p.nib, p.scale);
                if ((rc = RB_CU_LAUNCHED(what))) return rc;
                float *t = a;
                a = b;
                b = t;
            }
        }
        fw_ew_kernel<float, T><<<grid_for(rows * n, th), th, 0, st>>>(
            a, rows, n, data + r0 * stride, stride, n, p.scale, p.K == 1 && p.scale_on, p.post);
        if ((rc = RB_CU_LAUNCHED(what))) return rc;
    }
    return RB_OK;
}

template <typename T>
static int run_plan_t(void *data, size_t count, size_t stride, fw_plan p, cudaStream_t st,
                      const char *what) {
    if (fw_fits((size_t) p.n, p.K)) return launch_tile<T>((T *) data, count, stride, p, st, what);
    if (p.grp != 1) {
        /* block-diagonal rows with a padded stride: one row (grp contiguous blocks) at a time */
        for (size_t g0 = 0; g0 < count; g0 += p.grp) {
            fw_plan q = p;
            q.grp = 1;
            int rc = big_path<T>((T *) data + (g0 / p.grp) * stride, p.grp, p.gstride, q, st, what);
            if (rc) return rc;
        }
        return RB_OK;
    }
    return big_path<T>((T *) data, count, stride, p, st, what);
}

static int run_plan(void *data, rb_dtype t, size_t count, size_t stride, const fw_plan &p,
                    void *stream, const char *what) {
    cudaStream_t st = rb_cu_stream(stream);
    switch (t) {
    case RB_DT_F32:
        return run_plan_t<float>(data, count, stride, p, st, what);
    case RB_DT_F16:
        return run_plan_t<__half>(data, count, stride, p, st, what);
    case RB_DT_BF16:
        return run_plan_t<__nv_bfloat16>(data, count, stride, p, st, what);
    }
    return rb_error_set(RB_EINVAL, "%s: unknown dtype %d", what, (int) t);
}

static int check_dtype(rb_dtype t, const char *what) {
    if (t != RB_DT_F32 && t != RB_DT_F16 && t != RB_DT_BF16)
        return rb_error_set(RB_EINVAL, "%s: unknown dtype %d", what, (int) t);
    return RB_OK;
}

/* A plan for H = H_K kron H_{2^m} of order n (validated), dir, rounds and signs. */
static int make_plan(size_t n, rb_dir dir, fw_plan *p) {
    size_t K;
    int m;
    int rc = rb_hadamard_lookup(n, &K, &m);
    if (rc) return rc;
    *p = fw_plan{};
    p->m = m;
    p->K = (int) K;
    p->n = (int) n;
    p->nround = 1;
    p->grp = 1;
    p->gstride = 0;
    p->scale = (float) (1.0 / sqrt((double) n));
    p->scale_on = p->scale != 1.0f;
    if (K > 1) {
        p->nib = (int) ((K + 31) / 32);
        if ((rc = rb_fw_hk_table(K, dir, &p->hb))) return rc;
    }
    return RB_OK;
}

/* ---- slots ---- */

static int cu_fwht(void *data, rb_dtype t, size_t n, size_t count, size_t stride, float scale,
                   void *stream) {
    int rc = check_dtype(t, "fwht");
    if (rc) return rc;
    if ((rc = rb_fwht_check(n, count, stride)) || count == 0) return rc;
    fw_plan p = {};
    p.m = rb_log2_exact(n);
    p.K = 1;
    p.n = (int) n;
    p.nround = 1;
    p.grp = 1;
    p.scale = scale;
    p.scale_on = scale != 1.0f;
    return run_plan(data, t, count, stride, p, stream, "fwht");
}

static int cu_hadamard(void *data, rb_dtype t, size_t n, size_t count, size_t stride, rb_dir dir,
                       void *stream) {
    int rc = check_dtype(t, "hadamard");
    if (rc) return rc;
    if ((rc = rb_hadamard_check(n, count, stride, NULL, NULL)) || count == 0) return rc;
    fw_plan p;
    if ((rc = make_plan(n, dir, &p))) return rc;
    return run_plan(data, t, count, stride, p, stream, "hadamard");
}

static int cu_rht(void *data, rb_dtype t, size_t n, size_t count, size_t stride, const float *d1,
                  const float *d2, rb_dir dir, void *stream) {
    int rc = check_dtype(t, "rht");
    if (rc) return rc;
    if ((rc = rb_hadamard_lookup(n, NULL, NULL))) return rc;
    if (!data && count) return rb_error_set(RB_EINVAL, "rht: data is NULL");
    if (count > 1 && stride < n)
        return rb_error_set(RB_EINVAL, "rht: row stride %zu is shorter than n = %zu", stride, n);
    if (!d1) return rb_error_set(RB_EINVAL, "rht: the signs d1 are NULL");
    if (count == 0) return RB_OK;
    fw_plan p;
    if ((rc = make_plan(n, dir, &p))) return rc;
    p.nround = d2 ? 2 : 1;
    if (dir == RB_FORWARD) {
        p.pre0 = d1;
        p.pre1 = d2;
    } else {
        p.pre1 = d2;
        p.post = d1;
    }
    return run_plan(data, t, count, stride, p, stream, "rht");
}

static int cu_hadamard_block(void *data, rb_dtype t, size_t n, size_t count, size_t stride,
                             size_t b, rb_dir dir, void *stream) {
    int rc = check_dtype(t, "hadamard_block");
    if (rc) return rc;
    if ((rc = rb_hadamard_lookup(b, NULL, NULL))) return rc;
    if (b < 2 || b > n || n % b)
        return rb_error_set(RB_ESIZE,
                            "hadamard_block: block %zu must satisfy 2 <= b <= n and divide "
                            "n = %zu",
                            b, n);
    if (!data && count) return rb_error_set(RB_EINVAL, "hadamard_block: data is NULL");
    if (count > 1 && stride < n)
        return rb_error_set(RB_EINVAL, "hadamard_block: row stride %zu is shorter than n = %zu",
                            stride, n);
    if (count == 0) return RB_OK;
    fw_plan p;
    if ((rc = make_plan(b, dir, &p))) return rc;
    size_t per = n / b;
    if (count <= 1 || stride == n)
        return run_plan(data, t, count * per, b, p, stream, "hadamard_block");
    p.grp = per;
    p.gstride = b;
    return run_plan(data, t, count * per, stride, p, stream, "hadamard_block");
}

void rb_cu_register_fwht(rb_cuda_ops *ops) {
    ops->fwht = cu_fwht;
    ops->hadamard = cu_hadamard;
    ops->rht = cu_rht;
    ops->hadamard_block = cu_hadamard_block;
}
