/* Fused one-pass kernels: SAW-INT4 KV encode (1/sqrt(m), block FWHT, bf16, per-token min/max,
 * INT4, nibble packing) and its decode, and the TurboQuant / EDEN encode (norm, unit scaling, RHT,
 * codebook index, bit packing). Each block holds a tile of rows in fp32 shared memory (the layout
 * and passes of fwht_tile.cuh) and reproduces its CPU twin's arithmetic operation for operation. */
#include <float.h>
#include <math.h>

#include "kernels/cuda/fwht_tile.cuh"
#include "kernels/cuda/kv_quotient.cuh"

extern "C" {
#include "kernels/fwht.h"
#include "kernels/hadamard.h"
#include "kernels/kv_quant.h"
#include "kernels/quant.h"
#include "kernels/rowcodec.h"
}

/* Rows per block: about 4K elements per block. */
static int fu_rows_per_block(size_t d, size_t rows) {
    size_t rb = d >= 4096 ? 1 : 4096 / d;
    if (rb > rows) rb = rows;
    return (int) (rb ? rb : 1);
}

static unsigned fu_threads(size_t tile) {
    size_t t = (tile / 32 + 31) / 32 * 32;
    return (unsigned) (t < 128 ? 128 : t > 512 ? 512 : t);
}

static unsigned fu_grid(size_t nblk) {
    return (unsigned) (nblk > 65535u * 16 ? 65535u * 16 : nblk);
}

/* Blocks for the grid-stride warp kernels: enough for every SM several times over, few enough
 * that blocks live long (short blocks made the launch rate the limit). */
static unsigned fu_grid_resident(size_t nblk) {
    size_t cap = (size_t) rb_cu_sm_count() * 16;
    return (unsigned) (nblk < cap ? (nblk ? nblk : 1) : cap);
}

static int log2i(size_t m) {
    int k = 0;
    while (((size_t) 1 << k) < m) k++;
    return k;
}

/* First pass of a tile of rb rows of d from global memory: chunks of 2^W contiguous elements of
 * each sub-row of 2^lm, times mul (when mul_on), butterflies on bits 0..W-1, into shared memory.
 * Rows past rows_here are zeros. */
template <typename T, int W>
__device__ void fu_first_pass(float *s, const T *x, size_t row0, int rows_here, size_t stride,
                              int rb, int d, int lm, float mul, bool mul_on) {
    const int per_row = d >> W;
    const int ngroups = rb * per_row;
    for (int g = threadIdx.x; g < ngroups; g += blockDim.x) {
        int r = g / per_row, col = (g - r * per_row) << W;
        float v[1 << W];
        if (r < rows_here) {
            rb_fw_load<T, (1 << W)>(x + (row0 + r) * stride + col, v);
            if (mul_on) {
#pragma unroll
                for (int i = 0; i < (1 << W); i++) v[i] = __fmul_rn(v[i], mul);
            }
        } else {
#pragma unroll
            for (int i = 0; i < (1 << W); i++) v[i] = 0.0f;
        }
        rb_fw_bfly<W>(v);
        int base = r * d + col;
#pragma unroll
        for (int i = 0; i < (1 << W); i++) s[rb_fw_pad(base + i)] = v[i];
    }
    (void) lm;
}

template <typename T>
__device__ __forceinline__ int fu_first(float *s, const T *x, size_t row0, int rows_here,
                                        size_t stride, int rb, int d, int lm, float mul,
                                        bool mul_on) {
    int w = lm < RB_FW_LR ? lm : RB_FW_LR;
    switch (w) {
    case 0:
        fu_first_pass<T, 0>(s, x, row0, rows_here, stride, rb, d, lm, mul, mul_on);
        break;
    case 1:
        fu_first_pass<T, 1>(s, x, row0, rows_here, stride, rb, d, lm, mul, mul_on);
        break;
    case 2:
        fu_first_pass<T, 2>(s, x, row0, rows_here, stride, rb, d, lm, mul, mul_on);
        break;
    case 3:
        fu_first_pass<T, 3>(s, x, row0, rows_here, stride, rb, d, lm, mul, mul_on);
        break;
    case 4:
        fu_first_pass<T, 4>(s, x, row0, rows_here, stride, rb, d, lm, mul, mul_on);
        break;
    default:
        fu_first_pass<T, 5>(s, x, row0, rows_here, stride, rb, d, lm, mul, mul_on);
        break;
    }
    return w;
}

/* ---- KV INT4 encode ---- */

template <typename T>
__global__ void __launch_bounds__(512)
    fu_kv_encode_kernel(const T *x, size_t rows, int d, size_t stride, int lm, unsigned fl, int rb,
                        uint8_t *packed, float *sz) {
    extern __shared__ float fu_smem[];
    float *s = fu_smem;
    float *sc = fu_smem + rb_fw_padlen((size_t) rb * d) + 1; /* per-row scale, zero */
    const int m = 1 << lm, half = d / 2;
    const float inv = (float) (1.0 / sqrt((double) m));
    const size_t nblk = (rows + rb - 1) / rb;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    for (size_t blk = blockIdx.x; blk < nblk; blk += gridDim.x) {
        size_t row0 = blk * rb;
        int rows_here = rows - row0 < (size_t) rb ? (int) (rows - row0) : rb;
        int w0 = fu_first<T>(s, x, row0, rows_here, stride, rb, d, lm, inv, m > 1);
        __syncthreads();
        rb_fw_rest_smem(s, rb * (d >> lm), lm, w0);
        /* bf16 round trip, min / max per row (a warp per row; exact in any order) */
        for (int r = warp; r < rows_here; r += nwarp) {
            float mn = INFINITY, mx = -INFINITY;
            for (int j = lane; j < d; j += 32) {
                float v = s[rb_fw_pad(r * d + j)];
                if (fl & RB_KV_BF16) {
                    v = __bfloat162float(__float2bfloat16_rn(v));
                    s[rb_fw_pad(r * d + j)] = v;
                }
                mn = fminf(mn, v);
                mx = fmaxf(mx, v);
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            }
            if (lane == 0) {
                float range = __fsub_rn(mx, mn);
                float scale = __fdiv_rn(range > 1e-8f ? range : 1e-8f, 15.0f);
                if (fl & RB_KV_SZ_F16) /* the CPU's rb_kv_scale_zero */
                    scale = scale > RB_KV_F16_SCALE_MIN ? scale : RB_KV_F16_SCALE_MIN;
                float z = __fdiv_rn(__fsub_rn(0.0f, mn), scale);
                if (fl & RB_KV_SZ_F16) { /* the CPU's rb_f16_round: nearest even, inf beyond */
                    scale = __half2float(__float2half_rn(scale));
                    z = __half2float(__float2half_rn(z));
                }
                sc[2 * r] = scale;
                sc[2 * r + 1] = z;
                sz[2 * (row0 + r)] = scale;
                sz[2 * (row0 + r) + 1] = z;
            }
        }
        __syncthreads();
        /* quantize and pack: 4 output bytes per item */
        const int nq = (half + 3) / 4;
        const int items = rows_here * nq;
        for (int it = threadIdx.x; it < items; it += blockDim.x) {
            int r = it / nq, j0 = (it - r * nq) * 4;
            float scale = sc[2 * r], z = sc[2 * r + 1];
            uint32_t word = 0;
#pragma unroll
            for (int b = 0; b < 4; b++) {
                int j = j0 + b;
                if (j >= half) break;
                uint32_t q2[2];
#pragma unroll
                for (int k = 0; k < 2; k++) {
                    float v = s[rb_fw_pad(r * d + j + k * half)];
                    float f = __fadd_rn(__fadd_rn(__fdiv_rn(v, scale), z), 0.5f);
                    f = f > 0.0f ? f : 0.0f;
                    f = f < 15.0f ? f : 15.0f;
                    q2[k] = (uint32_t) f;
                }
                word |= (q2[0] | q2[1] << 4) << (8 * b);
            }
            uint8_t *out = packed + (row0 + r) * (size_t) half + j0;
            if (j0 + 4 <= half && ((uintptr_t) out & 3) == 0) {
                *reinterpret_cast<uint32_t *>(out) = word;
            } else {
                for (int b = 0; b < 4 && j0 + b < half; b++) out[b] = (uint8_t) (word >> (8 * b));
            }
        }
        __syncthreads();
    }
}

/* The encode for d = L E (E = 2^e, L lanes per row, 32 / L rows per warp): lane s of a row's
 * group holds elements [s E, s E + E) (RW rows per group at once). The butterflies on index bits
 * below e run in registers, the higher bits of a block of m through __shfl_xor_sync inside the
 * group, stage by stage in increasing stride like the CPU: the lower lane keeps own + other
 * (a + b), the upper lane other - own (a - b, a the lower element). min / max by shuffles (exact
 * in any order), and the upper half's codes come down from lane s + L/2 for the nibble packing.
 * Many elements per lane and few lanes per row keep the shuffles (the limit on the H100) few. */
template <typename T, int E, int L, int RW>
__global__ void __launch_bounds__(256)
    fu_kv_encode_warp(const T *x, size_t rows, size_t stride, int lm, unsigned fl, uint8_t *packed,
                      float *sz) {
    constexpr int LE = E == 1    ? 0
                       : E == 2  ? 1
                       : E == 4  ? 2
                       : E == 8  ? 3
                       : E == 16 ? 4
                       : E == 32 ? 5
                                 : 6;
    constexpr int NW = (E + 7) / 8; /* 32-bit words of E nibbles */
    constexpr size_t half = L * E / 2;
    constexpr int GR = 32 / L; /* row groups per warp */
    const int lane = threadIdx.x & 31, sub = lane & (L - 1), grp = lane / L;
    const float inv = (float) (1.0 / sqrt((double) (1 << lm)));
    const size_t wpb = blockDim.x >> 5;
    const size_t nwarps = gridDim.x * wpb;
    for (size_t r0 = (blockIdx.x * wpb + (threadIdx.x >> 5)) * RW * GR; r0 < rows;
         r0 += nwarps * RW * GR) {
        float v[RW][E];
#pragma unroll
        for (int q = 0; q < RW; q++) {
            const size_t r = r0 + (size_t) q * GR + grp;
            if (r < rows)
                rb_fw_load<T, E>(x + r * stride + (size_t) sub * E, v[q]);
            else
#pragma unroll
                for (int i = 0; i < E; i++) v[q][i] = 0.0f;
        }
#pragma unroll
        for (int q = 0; q < RW; q++) {
            if (lm > 0)
#pragma unroll
                for (int i = 0; i < E; i++) v[q][i] = __fmul_rn(v[q][i], inv);
#pragma unroll
            for (int st = 0; st < LE; st++) {
                if (st < lm) {
                    const int h = 1 << st;
#pragma unroll
                    for (int t = 0; t < E / 2; t++) {
                        const int j = ((t >> st) << (st + 1)) | (t & (h - 1));
                        float a = v[q][j], b = v[q][j + h];
                        v[q][j] = __fadd_rn(a, b);
                        v[q][j + h] = __fsub_rn(a, b);
                    }
                }
            }
            for (int st = LE; st < lm; st++) {
                const int lb = 1 << (st - LE);
                const bool upper = (lane & lb) != 0;
#pragma unroll
                for (int i = 0; i < E; i++) {
                    float o = __shfl_xor_sync(0xffffffffu, v[q][i], lb);
                    v[q][i] = upper ? __fsub_rn(o, v[q][i]) : __fadd_rn(v[q][i], o);
                }
            }
            float mn = INFINITY, mx = -INFINITY;
#pragma unroll
            for (int i = 0; i < E; i++) {
                if (fl & RB_KV_BF16) v[q][i] = __bfloat162float(__float2bfloat16_rn(v[q][i]));
                mn = fminf(mn, v[q][i]);
                mx = fmaxf(mx, v[q][i]);
            }
#pragma unroll
            for (int o = L / 2; o > 0; o >>= 1) {
                mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            }
            const float range = __fsub_rn(mx, mn);
            float scale = __fdiv_rn(range > 1e-8f ? range : 1e-8f, 15.0f);
            if (fl & RB_KV_SZ_F16)
                scale = scale > RB_KV_F16_SCALE_MIN ? scale : RB_KV_F16_SCALE_MIN;
            float z = __fdiv_rn(__fsub_rn(0.0f, mn), scale);
            if (fl & RB_KV_SZ_F16) { /* as in fu_kv_encode_kernel */
                scale = __half2float(__float2half_rn(scale));
                z = __half2float(__float2half_rn(z));
            }
            uint32_t w[NW];
#pragma unroll
            for (int k = 0; k < NW; k++) w[k] = 0;
            const float rcp = __frcp_rn(scale);
            if (rb_kv_fast_row(mn, mx, rcp)) {
#pragma unroll
                for (int i = 0; i < E; i++)
                    w[i / 8] |= rb_kv_code(rb_kv_quotient(v[q][i], scale, rcp), z) << (4 * (i % 8));
            } else {
#pragma unroll
                for (int i = 0; i < E; i++)
                    w[i / 8] |= rb_kv_code(__fdiv_rn(v[q][i], scale), z) << (4 * (i % 8));
            }
            uint32_t hw[NW];
#pragma unroll
            for (int k = 0; k < NW; k++) hw[k] = __shfl_down_sync(0xffffffffu, w[k], L / 2);
            const size_t r = r0 + (size_t) q * GR + grp;
            if (r < rows && sub < L / 2) {
                /* bytes s E + i: low nibble from this lane's code i, high from lane s + L/2's */
                constexpr int NB = (E + 3) / 4;
                uint32_t ob[NB];
#pragma unroll
                for (int k = 0; k < NB; k++) ob[k] = 0;
#pragma unroll
                for (int i = 0; i < E; i++) {
                    uint32_t lo = (w[i / 8] >> (4 * (i % 8))) & 15u;
                    uint32_t hi = (hw[i / 8] >> (4 * (i % 8))) & 15u;
                    ob[i / 4] |= (lo | hi << 4) << (8 * (i % 4));
                }
                uint8_t *out = packed + r * half + (size_t) sub * E;
                if (E >= 16 && ((uintptr_t) out & 15) == 0) {
#pragma unroll
                    for (int k = 0; k < (E >= 16 ? NB / 4 : 0); k++)
                        reinterpret_cast<uint4 *>(out)[k] =
                            make_uint4(ob[4 * k], ob[4 * k + 1], ob[4 * k + 2], ob[4 * k + 3]);
                } else if (E == 8 && ((uintptr_t) out & 7) == 0) {
                    *reinterpret_cast<uint2 *>(out) = make_uint2(ob[0], ob[NB > 1 ? 1 : 0]);
                } else if (E >= 4 && ((uintptr_t) out & 3) == 0) {
#pragma unroll
                    for (int k = 0; k < NB; k++) reinterpret_cast<uint32_t *>(out)[k] = ob[k];
                } else {
#pragma unroll
                    for (int i = 0; i < E; i++) out[i] = (uint8_t) (ob[i / 4] >> (8 * (i % 4)));
                }
                if (sub == 0) {
                    sz[2 * r] = scale;
                    sz[2 * r + 1] = z;
                }
            }
        }
    }
}

template <typename T, int E, int L>
static int kv_warp_launch(const T *x, size_t rows, size_t stride, int lm, unsigned fl,
                          uint8_t *packed, float *sz, cudaStream_t st) {
    constexpr int RW = 1;
    size_t warps = (rows + RW * (32 / L) - 1) / (RW * (32 / L));
    size_t blocks = (warps + 7) / 8;
    fu_kv_encode_warp<T, E, L, RW>
        <<<fu_grid_resident(blocks), 256, 0, st>>>(x, rows, stride, lm, fl, packed, sz);
    return RB_CU_LAUNCHED("kv_int4_encode");
}

template <typename T>
static int kv_encode_t(const T *x, size_t rows, size_t d, size_t stride, size_t m, unsigned flags,
                       uint8_t *packed, float *sz, cudaStream_t st) {
    const int lm = log2i(m);
    const unsigned fl = flags & (RB_KV_BF16 | RB_KV_SZ_F16); /* the flags the kernels read */
    switch (d) { /* d = L E: L lanes per row, 32 (16) elements per lane */
    case 32:
        return kv_warp_launch<T, 16, 2>(x, rows, stride, lm, fl, packed, sz, st);
    case 64:
        return kv_warp_launch<T, 32, 2>(x, rows, stride, lm, fl, packed, sz, st);
    case 128:
        return kv_warp_launch<T, 32, 4>(x, rows, stride, lm, fl, packed, sz, st);
    case 256:
        return kv_warp_launch<T, 32, 8>(x, rows, stride, lm, fl, packed, sz, st);
    case 512:
        return kv_warp_launch<T, 32, 16>(x, rows, stride, lm, fl, packed, sz, st);
    case 1024:
        return kv_warp_launch<T, 32, 32>(x, rows, stride, lm, fl, packed, sz, st);
    case 2048:
        return kv_warp_launch<T, 64, 32>(x, rows, stride, lm, fl, packed, sz, st);
    default:
        break;
    }
    int rb = fu_rows_per_block(d, rows);
    size_t tile = (size_t) rb * d;
    size_t bytes = (rb_fw_padlen(tile) + 1 + 2 * (size_t) rb) * sizeof(float);
    size_t nblk = (rows + rb - 1) / rb;
    if (bytes > 48 * 1024)
        RB_CU_TRY(cudaFuncSetAttribute(fu_kv_encode_kernel<T>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int) bytes),
                  "kv_int4_encode");
    fu_kv_encode_kernel<T><<<fu_grid(nblk), fu_threads(tile), bytes, st>>>(
        x, rows, (int) d, stride, log2i(m), fl, rb, packed, sz);
    return RB_CU_LAUNCHED("kv_int4_encode");
}

static int cu_kv_int4_encode(const void *x, rb_dtype t, size_t rows, size_t d, size_t stride,
                             size_t m, unsigned flags, uint8_t *packed, float *sz, void *stream) {
    if (t != RB_DT_F32 && t != RB_DT_F16 && t != RB_DT_BF16)
        return rb_error_set(RB_EINVAL, "kv_int4_encode: unknown dtype %d", (int) t);
    int rc = rb_kv_int4_check("kv_int4_encode", rows, d, m, stride, x && packed && sz);
    if (rc || rows == 0) return rc;
    cudaStream_t st = rb_cu_stream(stream);
    switch (t) {
    case RB_DT_F16:
        return kv_encode_t<__half>((const __half *) x, rows, d, stride, m, flags, packed, sz, st);
    case RB_DT_BF16:
        return kv_encode_t<__nv_bfloat16>((const __nv_bfloat16 *) x, rows, d, stride, m, flags,
                                          packed, sz, st);
    default:
        return kv_encode_t<float>((const float *) x, rows, d, stride, m, flags, packed, sz, st);
    }
}

/* ---- KV INT4 decode ---- */

static __global__ void __launch_bounds__(512)
    fu_kv_decode_kernel(const uint8_t *packed, const float *sz, size_t rows, int d, int lm, int rb,
                        float *xhat, size_t ld) {
    extern __shared__ float fu_smem[];
    float *s = fu_smem;
    const int m = 1 << lm, half = d / 2;
    const float inv = (float) (1.0 / sqrt((double) m));
    const size_t nblk = (rows + rb - 1) / rb;
    for (size_t blk = blockIdx.x; blk < nblk; blk += gridDim.x) {
        size_t row0 = blk * rb;
        int rows_here = rows - row0 < (size_t) rb ? (int) (rows - row0) : rb;
        const int items = rb * half;
        for (int it = threadIdx.x; it < items; it += blockDim.x) {
            int r = it / half, j = it - r * half;
            float lo = 0.0f, hi = 0.0f;
            if (r < rows_here) {
                uint8_t b = packed[(row0 + r) * (size_t) half + j];
                float scale = __ldg(sz + 2 * (row0 + r)), z = __ldg(sz + 2 * (row0 + r) + 1);
                lo = __fmul_rn(__fsub_rn((float) (b & 15), z), scale);
                hi = __fmul_rn(__fsub_rn((float) (b >> 4), z), scale);
            }
            s[rb_fw_pad(r * d + j)] = lo;
            s[rb_fw_pad(r * d + j + half)] = hi;
        }
        __syncthreads();
        if (m > 1) rb_fw_rest_smem(s, rb * (d >> lm), lm, 0);
        const int nch = (d + 3) / 4;
        const int outs = rows_here * nch;
        for (int it = threadIdx.x; it < outs; it += blockDim.x) {
            int r = it / nch, c0 = (it - r * nch) * 4;
            float v[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int c = c0 + i < d ? c0 + i : d - 1;
                v[i] = s[rb_fw_pad(r * d + c)];
                if (m > 1) v[i] = __fmul_rn(v[i], inv);
            }
            float *o = xhat + (row0 + r) * ld + c0;
            if (c0 + 4 <= d) {
                rb_fw_store<float, 4>(o, v);
            } else {
                for (int i = 0; i < 4 && c0 + i < d; i++) o[i] = v[i];
            }
        }
        __syncthreads();
    }
}

/* The warp-per-row decode for d = 32 E: lanes 0-15 read E code bytes each, lane l + 16 gets the
 * high nibbles from lane l, so lane l holds elements [l E, l E + E); then the encode's
 * butterflies (registers, then shuffles) and the 1/sqrt(m) multiply, and E floats stored. */
template <int E, int RW>
__global__ void __launch_bounds__(256)
    fu_kv_decode_warp(const uint8_t *packed, const float *sz, size_t rows, int lm, float *xhat,
                      size_t ld) {
    constexpr int LE = E == 1    ? 0
                       : E == 2  ? 1
                       : E == 4  ? 2
                       : E == 8  ? 3
                       : E == 16 ? 4
                       : E == 32 ? 5
                                 : 6;
    constexpr size_t half = 16 * E;
    const int lane = threadIdx.x & 31;
    const float inv = (float) (1.0 / sqrt((double) (1 << lm)));
    const size_t wpb = blockDim.x >> 5;
    const size_t nwarps = gridDim.x * wpb;
    for (size_t r0 = (blockIdx.x * wpb + (threadIdx.x >> 5)) * RW; r0 < rows; r0 += nwarps * RW) {
        constexpr int NB = (E + 3) / 4; /* code bytes packed in 32-bit words */
        uint32_t b[RW][NB];
        float scale[RW], z[RW];
#pragma unroll
        for (int q = 0; q < RW; q++) {
            size_t r = r0 + q < rows ? r0 + q : rows - 1;
            const uint8_t *in = packed + r * half + (size_t) (lane & 15) * E;
            if (E % 4 == 0 && ((uintptr_t) in & 3) == 0) {
#pragma unroll
                for (int k = 0; k < NB; k++)
                    b[q][k] = __ldg(reinterpret_cast<const uint32_t *>(in) + k);
            } else {
#pragma unroll
                for (int k = 0; k < NB; k++) b[q][k] = 0;
#pragma unroll
                for (int i = 0; i < E; i++)
                    b[q][i / 4] |= (uint32_t) __ldg(in + i) << (8 * (i % 4));
            }
            scale[q] = __ldg(sz + 2 * r);
            z[q] = __ldg(sz + 2 * r + 1);
        }
#pragma unroll
        for (int q = 0; q < RW; q++) {
            float v[E];
#pragma unroll
            for (int i = 0; i < E; i++) {
                unsigned byte = (b[q][i / 4] >> (8 * (i % 4))) & 255u;
                unsigned code = lane < 16 ? (byte & 15u) : byte >> 4;
                v[i] = __fmul_rn(__fsub_rn((float) code, z[q]), scale[q]);
            }
            if (lm > 0) {
#pragma unroll
                for (int st = 0; st < LE; st++) {
                    if (st < lm) {
                        const int h = 1 << st;
#pragma unroll
                        for (int t = 0; t < E / 2; t++) {
                            const int j = ((t >> st) << (st + 1)) | (t & (h - 1));
                            float a = v[j], c = v[j + h];
                            v[j] = __fadd_rn(a, c);
                            v[j + h] = __fsub_rn(a, c);
                        }
                    }
                }
                for (int st = LE; st < lm; st++) {
                    const int lb = 1 << (st - LE);
                    const bool upper = (lane & lb) != 0;
#pragma unroll
                    for (int i = 0; i < E; i++) {
                        float o = __shfl_xor_sync(0xffffffffu, v[i], lb);
                        v[i] = upper ? __fsub_rn(o, v[i]) : __fadd_rn(v[i], o);
                    }
                }
#pragma unroll
                for (int i = 0; i < E; i++) v[i] = __fmul_rn(v[i], inv);
            }
            if (r0 + q < rows) rb_fw_store<float, E>(xhat + (r0 + q) * ld + (size_t) lane * E, v);
        }
    }
}

template <int E>
static int kv_decode_warp_launch(const uint8_t *packed, const float *sz, size_t rows, int lm,
                                 float *xhat, size_t ld, cudaStream_t st) {
    constexpr int RW = E >= 8 ? 1 : 8 / E;
    size_t warps = (rows + RW - 1) / RW;
    fu_kv_decode_warp<E, RW>
        <<<fu_grid_resident((warps + 7) / 8), 256, 0, st>>>(packed, sz, rows, lm, xhat, ld);
    return RB_CU_LAUNCHED("kv_int4_decode");
}

static int cu_kv_int4_decode(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                             size_t m, float *xhat, size_t ld, void *stream) {
    int rc = rb_kv_int4_check("kv_int4_decode", rows, d, m, ld, packed && sz && xhat);
    if (rc || rows == 0) return rc;
    cudaStream_t st = rb_cu_stream(stream);
    const int lm = log2i(m);
    switch (d) { /* d = 32 E: one warp per row */
    case 32:
        return kv_decode_warp_launch<1>(packed, sz, rows, lm, xhat, ld, st);
    case 64:
        return kv_decode_warp_launch<2>(packed, sz, rows, lm, xhat, ld, st);
    case 128:
        return kv_decode_warp_launch<4>(packed, sz, rows, lm, xhat, ld, st);
    case 256:
        return kv_decode_warp_launch<8>(packed, sz, rows, lm, xhat, ld, st);
    case 512:
        return kv_decode_warp_launch<16>(packed, sz, rows, lm, xhat, ld, st);
    case 1024:
        return kv_decode_warp_launch<32>(packed, sz, rows, lm, xhat, ld, st);
    default:
        break;
    }
    int rb = fu_rows_per_block(d, rows);
    size_t tile = (size_t) rb * d;
    size_t bytes = rb_fw_padlen(tile) * sizeof(float);
    if (bytes > 48 * 1024)
        RB_CU_TRY(cudaFuncSetAttribute(fu_kv_decode_kernel,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int) bytes),
                  "kv_int4_decode");
    fu_kv_decode_kernel<<<fu_grid((rows + rb - 1) / rb), fu_threads(tile), bytes,
                          rb_cu_stream(stream)>>>(packed, sz, rows, (int) d, log2i(m), rb, xhat,
                                                  ld);
    return RB_CU_LAUNCHED("kv_int4_decode");
}

/* ---- RHT + codebook encode ---- */

struct cb_params {
    int nthr; /* k - 1 thresholds */
    float thr[RB_CODEBOOK_MAX];
};

struct rq_plan {
    int m, K, d, rb, nib, scale_on, two, bits;
    const float *d1, *d2;
    const uint32_t *hb;
    float scale;
};

/* One Hadamard of the RHT on the tile in a (K > 1: mixed into b, then the pointers swap). */
__device__ __forceinline__ void rq_hadamard(float *&a, float *&b, const rq_plan &p) {
    rb_fw_rest_smem(a, p.rb * p.K, p.m, 0);
    if (p.K > 1) {
        rb_fw_mix_smem(a, b, p.rb, p.K, p.m, p.hb, p.nib, p.scale);
        __syncthreads();
        float *t = a;
        a = b;
        b = t;
    }
}

static __global__ void __launch_bounds__(512)
    fu_rq_encode_kernel(const float *x, size_t rows, rq_plan p, cb_params cb, uint8_t *packed,
                        size_t ldp, float *norm, int padlen) {
    extern __shared__ float fu_smem[];
    float *pre = fu_smem, *inv = fu_smem + p.rb; /* rb_unit_factors of each row */
    float *base = fu_smem + 2 * p.rb;
    const int d = p.d, tile = p.rb * d;
    const size_t nblk = (rows + p.rb - 1) / p.rb;
    const int nbytes = (d * p.bits + 7) / 8;
    const unsigned mask = (1u << p.bits) - 1;
    for (size_t blk = blockIdx.x; blk < nblk; blk += gridDim.x) {
        float *a = base, *b = base + padlen;
        size_t row0 = blk * p.rb;
        int rows_here = rows - row0 < (size_t) p.rb ? (int) (rows - row0) : p.rb;
        /* the rows as they are (rows are contiguous: row r at x + r d) */
        for (int e = threadIdx.x; e < tile; e += blockDim.x) {
            int r = e / d;
            a[rb_fw_pad(e)] = r < rows_here ? __ldg(x + row0 * d + e) : 0.0f;
        }
        __syncthreads();
        /* the squared norm in double in rb_lanes16_sum's order (kernels/vecops.h): 16 partial
         * sums over j = l, l + 16, ..., halved pairwise; one thread per row */
        for (int r = threadIdx.x; r < p.rb; r += blockDim.x) {
            double part[16];
#pragma unroll
            for (int l = 0; l < 16; l++) part[l] = 0.0;
            for (int j0 = 0; j0 < d; j0 += 16) {
#pragma unroll
                for (int l = 0; l < 16; l++)
                    if (j0 + l < d) {
                        double v = (double) a[rb_fw_pad(r * d + j0 + l)];
                        part[l] = __dadd_rn(part[l], __dmul_rn(v, v));
                    }
            }
#pragma unroll
            for (int l = 0; l < 8; l++) part[l] = __dadd_rn(part[l], part[l + 8]);
#pragma unroll
            for (int l = 0; l < 4; l++) part[l] = __dadd_rn(part[l], part[l + 4]);
            double n = sqrt(__dadd_rn(__dadd_rn(part[0], part[2]), __dadd_rn(part[1], part[3])));
            if (r < rows_here) {
                /* +Inf marks a norm beyond the fp32 range (the CPU codec's error) */
                float nf = n > (double) FLT_MAX ? INFINITY : (float) n;
                if (norm) {
                    norm[row0 + r] = nf;
                } else {
                    unsigned u = __float_as_uint(nf);
                    uint8_t *q = packed + (row0 + r) * ldp + nbytes;
                    for (int w = 0; w < 4; w++) q[w] = (uint8_t) (u >> (8 * w));
                }
            }
            /* rb_unit_factors (kernels/rowcodec.h): an exact 2^64 pre-scale for tiny rows */
            float f = n < RB_UNIT_TINY ? RB_UNIT_PRESCALE : 1.0f;
            pre[r] = f;
            inv[r] = n > 0 ? __double2float_rn(__ddiv_rn(1.0, __dmul_rn(n, (double) f))) : 0.0f;
        }
        __syncthreads();
        /* unit scaling in fp32, then the first signs */
        for (int e = threadIdx.x; e < tile; e += blockDim.x) {
            int r = e / d, c = e - r * d;
            float u = __fmul_rn(__fmul_rn(a[rb_fw_pad(e)], pre[r]), inv[r]);
            a[rb_fw_pad(e)] = __fmul_rn(u, __ldg(p.d1 + c));
        }
        __syncthreads();
        rq_hadamard(a, b, p);
        if (p.two) {
            for (int e = threadIdx.x; e < tile; e += blockDim.x) {
                float v = a[rb_fw_pad(e)];
                if (p.K == 1 && p.scale_on) v = __fmul_rn(v, p.scale);
                a[rb_fw_pad(e)] = __fmul_rn(v, __ldg(p.d2 + e % d));
            }
            __syncthreads();
            rq_hadamard(a, b, p);
        }
        /* codebook index: the number of thresholds strictly below v */
        for (int e = threadIdx.x; e < tile; e += blockDim.x) {
            float v = a[rb_fw_pad(e)];
            if (p.K == 1 && p.scale_on) v = __fmul_rn(v, p.scale);
            int n = 0;
            for (int i = 0; i < cb.nthr; i++) n += cb.thr[i] < v;
            a[rb_fw_pad(e)] = (float) n;
        }
        __syncthreads();
        /* rb_pack_bits: code i at bits [i bits, (i + 1) bits) of a little-endian stream */
        const int items = rows_here * nbytes;
        for (int it = threadIdx.x; it < items; it += blockDim.x) {
            int r = it / nbytes, B = it - r * nbytes;
            int i0 = (8 * B) / p.bits, i1 = (8 * B + 7) / p.bits;
            if (i1 > d - 1) i1 = d - 1;
            unsigned byte = 0;
            for (int i = i0; i <= i1; i++) {
                unsigned v = (unsigned) a[rb_fw_pad(r * d + i)] & mask;
                int sh = i * p.bits - 8 * B;
                byte |= sh >= 0 ? v << sh : v >> -sh;
            }
            packed[(row0 + r) * ldp + B] = (uint8_t) byte;
        }
        __syncthreads();
    }
}

static int cu_rht_codebook_encode(const float *x, size_t rows, size_t d, const float *d1,
                                  const float *d2, const rb_codebook *cb, int bits, uint8_t *packed,
                                  size_t ldp, float *norm, void *stream) {
    size_t K;
    int m;
    int rc = rb_cu_rc_check("rht_codebook_encode", d, cb, bits, rows, x, packed, d1, ldp, !norm);
    if (rc || rows == 0) return rc;
    rb_hadamard_lookup(d, &K, &m); /* checked above */
    if ((rc = rb_cu_rc_encode(x, rows, d, d1, d2, cb, bits, packed, ldp, norm, stream)) !=
        RB_EDECLINE)
        return rc;
    rq_plan p = {};
    p.m = m;
    p.K = (int) K;
    p.d = (int) d;
    p.rb = fu_rows_per_block(d, rows);
    p.two = d2 != NULL;
    p.bits = bits;
    p.d1 = d1;
    p.d2 = d2;
    p.scale = (float) (1.0 / sqrt((double) d));
    p.scale_on = p.scale != 1.0f;
    if (K > 1) {
        p.nib = (int) ((K + 31) / 32);
        if ((rc = rb_fw_hk_table(K, RB_FORWARD, &p.hb))) return rc;
    }
    size_t tile = (size_t) p.rb * d, padlen = rb_fw_padlen(tile);
    size_t bytes = (2 * (size_t) p.rb + (K > 1 ? 2 : 1) * padlen) * sizeof(float);
    if (bytes > RB_FW_SMEM_MAX)
        return rb_error_set(RB_ESIZE,
                            "rht_codebook_encode: d = %zu is too long for one block (at most "
                            "%d KB of fp32 tile)",
                            d, RB_FW_SMEM_MAX / 1024);
    cb_params c;
    c.nthr = (int) cb->k - 1;
    for (int i = 0; i < RB_CODEBOOK_MAX; i++) c.thr[i] = i < c.nthr ? cb->thresholds[i] : 0.0f;
    if (bytes > 48 * 1024)
        RB_CU_TRY(cudaFuncSetAttribute(fu_rq_encode_kernel,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int) bytes),
                  "rht_codebook_encode");
    fu_rq_encode_kernel<<<fu_grid((rows + p.rb - 1) / p.rb), fu_threads(tile), bytes,
                          rb_cu_stream(stream)>>>(x, rows, p, c, packed, ldp, norm, (int) padlen);
    return RB_CU_LAUNCHED("rht_codebook_encode");
}

void rb_cu_register_fused(rb_cuda_ops *ops) {
    ops->kv_int4_encode = cu_kv_int4_encode;
    ops->kv_int4_decode = cu_kv_int4_decode;
    ops->rht_codebook_encode = cu_rht_codebook_encode;
}
