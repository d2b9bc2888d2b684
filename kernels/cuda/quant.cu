/* Quantizers on the device: integer row/group quantization, bit packing, MXFP4 / NVFP4 blocks,
 * FP8 casts and scalar codebooks, each bit-identical to its CPU reference on finite input. The
 * scalar rules are shared with the host in kernels/cuda/quant_formats.cuh.
 *
 * Where the CPU twin returns an error that only the data can reveal, these asynchronous slots
 * cannot; they take finite input and write instead:
 *   NaN/Inf input (RB_ENUMERIC on the CPU): not reported, outputs unspecified (FP8 applies
 *   the scalar encoders' NaN/Inf rules);
 *   an integer scale that overflows fp32 (RB_ENUMERIC): the Inf scale is stored;
 *   an MXFP4 scale 0xFF or an NVFP4 NaN block scale (RB_ENUMERIC): NaN values;
 *   a codebook index >= k (RB_EINVAL): NaN.
 * Argument errors (bits, group, strides, NULL pointers, rules) are checked as on the CPU. */
#include <float.h>
#include <math.h>
#include <mutex>
#include <string.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/quant_formats.cuh"

extern "C" {
#include "kernels/fpformats_variants.h"
#include "kernels/rowcodec.h"
}

/* Threads per block of the element-wise kernels. */
enum { QT = 256 };

/* A grid-stride loop over [0, n). */
#define RB_CU_FOR(i, n)                                                      \
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < (n); \
         i += (size_t) gridDim.x * blockDim.x)

/* ======================= integer quantization (kernels/quant.c) ======================= */

/* rb_rng_uniform_f32 element e: ((bits >> 8) + 0.5) * 2^-24 in double, rounded to float. */
__device__ __forceinline__ float q_uniform(uint64_t seed, uint64_t stream, uint64_t e) {
    uint4 r = rb_cu_philox(seed, stream, e / 4);
    unsigned w = (unsigned) (e % 4);
    uint32_t b = w == 0 ? r.x : w == 1 ? r.y : w == 2 ? r.z : r.w;
    return (float) (((double) (b >> 8) + 0.5) * 0x1p-24);
}

__device__ __forceinline__ float warp_min(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w < v ? w : v;
    }
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
}

/* Pass 1: one warp per (row, group): min and max, then the parameters. Every lane runs the
 * whole loop (the trip count is uniform per warp) so the shuffles see full warps. The min/max
 * order does not matter: rb_quant_params gives the same (s, z) whichever zero sign wins. */
__global__ void qrows_params_kernel(rbq_spec q, const float *x, size_t rows, size_t cols, size_t ld,
                                    size_t group, float *scales, float *zeros) {
    size_t ng = (cols + group - 1) / group, np = rows * ng;
    unsigned lane = threadIdx.x % 32;
    size_t warp = (blockIdx.x * (size_t) blockDim.x + threadIdx.x) / 32;
    size_t nwarps = (size_t) gridDim.x * blockDim.x / 32;
    for (size_t p = warp; p < np; p += nwarps) {
        size_t r = p / ng, c0 = (p % ng) * group;
        size_t c1 = c0 + group < cols ? c0 + group : cols;
        const float *row = x + r * ld;
        float mn = INFINITY, mx = -INFINITY;
        for (size_t c = c0 + lane; c < c1; c += 32) {
            float v = row[c];
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        mn = warp_min(mn);
        mx = warp_max(mx);
        if (lane == 0) {
            float s, z;
            rbq_params(q, mn, mx, &s, &z);
            scales[p] = s;
            if (zeros) zeros[p] = z;
        }
    }
}

/* Pass 2, codes or fake quantization: one thread per element (FAKE may run in place: each
 * element is read and written by the same thread). */
__global__ void qrows_elem_kernel(rbq_spec q, const float *x, size_t rows, size_t cols, size_t ld,
                                  size_t group, void *out, size_t ldo, int fake,
                                  const float *scales, const float *zeros) {
    size_t ng = (cols + group - 1) / group;
    RB_CU_FOR(i, rows * cols) {
        size_t r = i / cols, c = i % cols, p = r * ng + c / group;
        float s = scales[p], z = q.asym ? zeros[p] : 0.0f;
        float u = q.stochastic ? q_uniform(q.seed, q.stream, i) : 0.0f;
        float v = x[r * ld + c];
        float c_ = rbq_code(q, v, s, z, u);
        if (fake)
            ((float *) out)[r * ldo + c] = s * (c_ - z);
        else
            ((uint8_t *) out)[r * ldo + c] = (uint8_t) (int) c_;
    }
}

/* Pass 2, 4-bit nibbles: one thread per output byte (elements 2j and 2j + 1; each uses its own
 * group's parameters, since an odd group size puts a group boundary inside a byte). */
__global__ void qrows_pack4_kernel(rbq_spec q, const float *x, size_t rows, size_t cols, size_t ld,
                                   size_t group, uint8_t *out, size_t ldo, const float *scales,
                                   const float *zeros) {
    size_t ng = (cols + group - 1) / group, nb = (cols + 1) / 2;
    RB_CU_FOR(i, rows * nb) {
        size_t r = i / nb, j = i % nb;
        unsigned byte = 0;
        for (int h = 0; h < 2; h++) {
            size_t c = 2 * j + (size_t) h;
            if (c >= cols) break;
            size_t p = r * ng + c / group;
            float s = scales[p], z = q.asym ? zeros[p] : 0.0f;
            float u = q.stochastic ? q_uniform(q.seed, q.stream, r * cols + c) : 0.0f;
            float c_ = rbq_code(q, x[r * ld + c], s, z, u);
            byte |= (unsigned) ((int) c_ & 0xF) << (4 * h);
        }
        out[r * ldo + j] = (uint8_t) byte;
    }
}

/* ---- fused paths: one pass over x (parameters and codes from the same load) ---- */

/* Writes element c of row r given its code; PACK4 pairs are handled by the callers. */
template <int MODE>
__device__ __forceinline__ void q_store(void *out, size_t r, size_t ldo, size_t c, float code,
                                        float s, float z) {
    if (MODE == RB_QOUT_FAKE)
        ((float *) out)[r * ldo + c] = s * (code - z);
    else
        ((uint8_t *) out)[r * ldo + c] = (uint8_t) (int) code;
}

/* One warp per group of at most 32 K elements, lane l holding elements l + 32 j in registers
 * (coalesced 128-byte rows). PACK4 needs every group to start at an even column (even group, or
 * one group per row): even lanes then pair their nibble with the odd neighbour's. The loops over
 * groups and j are warp-uniform, so the shuffles always see full warps. */
template <int K, int MODE>
__global__ void __launch_bounds__(256)
    qrows_warp_kernel(rbq_spec q, const float *x, size_t rows, size_t cols, size_t ld, size_t group,
                      void *out, size_t ldo, float *scales, float *zeros) {
    size_t ng = (cols + group - 1) / group, np = rows * ng;
    unsigned lane = threadIdx.x % 32;
    size_t warp = (blockIdx.x * (size_t) blockDim.x + threadIdx.x) / 32;
    size_t nwarps = (size_t) gridDim.x * blockDim.x / 32;
    for (size_t p = warp; p < np; p += nwarps) {
        size_t r = p / ng, c0 = (p % ng) * group;
        size_t len = cols - c0 < group ? cols - c0 : group;
        const float *src = x + r * ld + c0;
        float v[K];
        float mn = INFINITY, mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < K; j++) {
            size_t i = lane + 32 * (size_t) j;
            v[j] = i < len ? src[i] : 0.0f;
            if (i < len) {
                mn = v[j] < mn ? v[j] : mn;
                mx = v[j] > mx ? v[j] : mx;
            }
        }
        mn = warp_min(mn);
        mx = warp_max(mx);
        float s, z;
        rbq_params(q, mn, mx, &s, &z); /* every lane: the same inputs, the same result */
        if (lane == 0) {
            scales[p] = s;
            if (zeros) zeros[p] = z;
        }
#pragma unroll
        for (int j = 0; j < K; j++) {
            size_t i = lane + 32 * (size_t) j;
            bool in = i < len;
            float u = q.stochastic && in ? q_uniform(q.seed, q.stream, r * cols + c0 + i) : 0.0f;
            float code = rbq_code(q, v[j], s, z, u);
            if (MODE == RB_QOUT_PACK4) {
                unsigned nib = (unsigned) ((int) code & 0xF);
                unsigned hi = __shfl_down_sync(0xffffffffu, nib, 1);
                if (in && lane % 2 == 0)
                    ((uint8_t *) out)[r * ldo + (c0 + i) / 2] =
                        (uint8_t) (nib | (i + 1 < len ? hi << 4 : 0u));
            } else if (in) {
                q_store<MODE>(out, r, ldo, c0 + i, code, s, z);
            }
        }
    }
}

/* One block per group of up to QB_SMEM floats (128 KB, within the opt-in shared memory of sm_80
 * and sm_90): the group is staged in shared memory, reduced across the block, then coded from
 * shared memory. PACK4 as in the warp kernel (groups start at even columns); thread t codes the
 * pair (2t, 2t + 1). */
enum { QB_THREADS = 256, QB_SMEM = 32768, QB_SMEM_DEFAULT = 12000 };

template <int MODE>
__global__ void __launch_bounds__(QB_THREADS)
    qrows_block_kernel(rbq_spec q, const float *x, size_t rows, size_t cols, size_t ld,
                       size_t group, void *out, size_t ldo, float *scales, float *zeros) {
    extern __shared__ float sx[];
    __shared__ float red_mn[QB_THREADS / 32], red_mx[QB_THREADS / 32], sh_s, sh_z;
    size_t ng = (cols + group - 1) / group, np = rows * ng;
    unsigned lane = threadIdx.x % 32, wid = threadIdx.x / 32;
    for (size_t p = blockIdx.x; p < np; p += gridDim.x) {
        size_t r = p / ng, c0 = (p % ng) * group;
        size_t len = cols - c0 < group ? cols - c0 : group;
        const float *src = x + r * ld + c0;
        float mn = INFINITY, mx = -INFINITY;
        for (size_t i = threadIdx.x; i < len; i += QB_THREADS) {
            float v = src[i];
            sx[i] = v;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        mn = warp_min(mn);
        mx = warp_max(mx);
        if (lane == 0) {
            red_mn[wid] = mn;
            red_mx[wid] = mx;
        }
        __syncthreads();
        if (wid == 0) {
            mn = lane < QB_THREADS / 32 ? red_mn[lane] : INFINITY;
            mx = lane < QB_THREADS / 32 ? red_mx[lane] : -INFINITY;
            mn = warp_min(mn);
            mx = warp_max(mx);
            if (lane == 0) {
                float s, z;
                rbq_params(q, mn, mx, &s, &z);
                scales[p] = s;
                if (zeros) zeros[p] = z;
                sh_s = s;
                sh_z = z;
            }
        }
        __syncthreads();
        float s = sh_s, z = sh_z;
        size_t e0 = r * cols + c0; /* stochastic rounding's element index of column c0 */
        if (MODE == RB_QOUT_PACK4) {
            for (size_t t = threadIdx.x; 2 * t < len; t += QB_THREADS) {
                unsigned byte = 0;
                for (int h = 0; h < 2; h++) {
                    size_t i = 2 * t + (size_t) h;
                    if (i >= len) break;
                    float u = q.stochastic ? q_uniform(q.seed, q.stream, e0 + i) : 0.0f;
                    byte |= (unsigned) ((int) rbq_code(q, sx[i], s, z, u) & 0xF) << (4 * h);
                }
                ((uint8_t *) out)[r * ldo + (c0 + 2 * t) / 2] = (uint8_t) byte;
            }
        } else {
            for (size_t i = threadIdx.x; i < len; i += QB_THREADS) {
                float u = q.stochastic ? q_uniform(q.seed, q.stream, e0 + i) : 0.0f;
                q_store<MODE>(out, r, ldo, c0 + i, rbq_code(q, sx[i], s, z, u), s, z);
            }
        }
        __syncthreads(); /* sx, red_* and sh_* are reused by the next group */
    }
}

/* Launches the fused kernel for this group size and mode; returns 1 when none applies (the
 * caller runs the two-pass path). */
template <int MODE>
static int qrows_fused(const rbq_spec &q, const float *x, size_t rows, size_t cols, size_t ld,
                       size_t group, void *out, size_t ldo, float *scales, float *zeros,
                       cudaStream_t st, int *rc) {
    size_t ng = (cols + group - 1) / group, np = rows * ng;
    size_t gmax = group < cols ? group : cols;
    if (MODE == RB_QOUT_PACK4 && ng > 1 && group % 2) return 1;
    size_t wb = (np + 7) / 8; /* 8 warps per block of 256 */
    unsigned wblocks = (unsigned) (wb > 65535u * 32 ? 65535u * 32 : wb);
    if (gmax <= 32)
        qrows_warp_kernel<1, MODE>
            <<<wblocks, 256, 0, st>>>(q, x, rows, cols, ld, group, out, ldo, scales, zeros);
    else if (gmax <= 64)
        qrows_warp_kernel<2, MODE>
            <<<wblocks, 256, 0, st>>>(q, x, rows, cols, ld, group, out, ldo, scales, zeros);
    else if (gmax <= 128)
        qrows_warp_kernel<4, MODE>
            <<<wblocks, 256, 0, st>>>(q, x, rows, cols, ld, group, out, ldo, scales, zeros);
    else if (gmax <= 256)
        qrows_warp_kernel<8, MODE>
            <<<wblocks, 256, 0, st>>>(q, x, rows, cols, ld, group, out, ldo, scales, zeros);
    else if (gmax <= QB_SMEM) {
        unsigned blocks = (unsigned) (np > 65535u * 32 ? 65535u * 32 : np);
        if (gmax > QB_SMEM_DEFAULT) { /* near 48 KB with the static reduction arrays */
            *rc = rb_cu_status(cudaFuncSetAttribute(qrows_block_kernel<MODE>,
                                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    (int) (QB_SMEM * sizeof(float))),
                               "quant_rows_f32 (shared memory)");
            if (*rc) return 0;
        }
        qrows_block_kernel<MODE><<<blocks, QB_THREADS, gmax * sizeof(float), st>>>(
            q, x, rows, cols, ld, group, out, ldo, scales, zeros);
    } else
        return 1;
    *rc = RB_CU_LAUNCHED("quant_rows_f32");
    return 0;
}

/* Warps-per-block launch over `items` warp tasks. */
static unsigned warp_blocks(size_t items) {
    size_t b = (items + 7) / 8; /* 8 warps of 256 threads */
    return (unsigned) (b == 0 ? 1 : b > 65535u * 32 ? 65535u * 32 : b);
}

static int cu_quant_rows_f32(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                             size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                             float *scales, float *zeros, void *stream) {
    if (!spec) return rb_error_set(RB_EINVAL, "quant: spec is NULL");
    /* The reference runs the spec as PER_GROUP with this group (PER_ROW is group == cols). */
    rb_quant_spec sp = *spec;
    sp.gran = RB_QUANT_PER_GROUP;
    /* An empty PER_ROW call arrives with group == cols == 0: still a valid spec. */
    sp.group = group || cols ? group : 1;
    int rc = rb_quant_spec_check(&sp);
    if (rc) return rc;
    if (sp.side_f16)
        return rb_error_set(RB_EDECLINE, "quant (cuda): side_f16 (fp16-stored scales and zero "
                                         "points) is implemented by the CPU reference only");
    if ((unsigned) mode > RB_QOUT_FAKE)
        return rb_error_set(RB_EINVAL, "quant: unknown output mode %d", (int) mode);
    if (rows == 0 || cols == 0) return RB_OK;
    if (!x || !out || !scales)
        return rb_error_set(RB_EINVAL, "quant: NULL input, output or scales");
    if (sp.asym && !zeros)
        return rb_error_set(RB_EINVAL, "quant: an asymmetric spec needs a zeros array");
    if (rows > 1 && ld < cols)
        return rb_error_set(RB_EINVAL, "quant: row stride %zu is shorter than cols = %zu", ld,
                            cols);
    size_t ldo_min = mode == RB_QOUT_PACK4 ? (cols + 1) / 2 : cols;
    if (rows > 1 && ldo < ldo_min)
        return rb_error_set(RB_EINVAL, "quant: output row stride %zu is shorter than %zu", ldo,
                            ldo_min);
    if (mode == RB_QOUT_PACK4 && sp.bits > 4)
        return rb_error_set(RB_EINVAL, "quant_pack4: bits = %d does not fit a nibble", sp.bits);
    if (mode == RB_QOUT_FAKE && (const void *) x == out && ldo != ld && rows > 1)
        return rb_error_set(RB_EINVAL, "fake_quant: in place needs ldy == ld (%zu != %zu)", ldo,
                            ld);

    rbq_spec q;
    q.bits = sp.bits;
    q.asym = sp.asym != 0;
    q.zero_in_range = sp.zero_in_range != 0;
    q.stochastic = sp.round == RB_ROUND_STOCHASTIC;
    q.clip = sp.clip;
    q.range_min = sp.range_min;
    q.lo = sp.asym ? 0.0f : (float) -(1 << (sp.bits - 1));
    q.hi = sp.asym ? (float) ((1 << sp.bits) - 1) : (float) ((1 << (sp.bits - 1)) - 1);
    q.seed = sp.seed;
    q.stream = sp.stream;
    cudaStream_t st = rb_cu_stream(stream);
    int done = 1;
    if (mode == RB_QOUT_CODES)
        done = !qrows_fused<RB_QOUT_CODES>(q, x, rows, cols, ld, group, out, ldo, scales, zeros, st,
                                           &rc);
    else if (mode == RB_QOUT_PACK4)
        done = !qrows_fused<RB_QOUT_PACK4>(q, x, rows, cols, ld, group, out, ldo, scales, zeros, st,
                                           &rc);
    else
        done = !qrows_fused<RB_QOUT_FAKE>(q, x, rows, cols, ld, group, out, ldo, scales, zeros, st,
                                          &rc);
    if (done) return rc;
    /* Groups too large for shared memory (or odd groups packed to nibbles): two passes. */
    size_t ng = (cols + group - 1) / group;
    qrows_params_kernel<<<warp_blocks(rows * ng), 256, 0, st>>>(q, x, rows, cols, ld, group, scales,
                                                                zeros);
    if ((rc = RB_CU_LAUNCHED("quant_rows_f32 (parameters)"))) return rc;
    if (mode == RB_QOUT_PACK4) {
        size_t nb = rows * ((cols + 1) / 2);
        qrows_pack4_kernel<<<rb_cu_blocks(nb, QT), QT, 0, st>>>(
            q, x, rows, cols, ld, group, (uint8_t *) out, ldo, scales, zeros);
    } else {
        qrows_elem_kernel<<<rb_cu_blocks(rows * cols, QT), QT, 0, st>>>(
            q, x, rows, cols, ld, group, out, ldo, mode == RB_QOUT_FAKE, scales, zeros);
    }
    return RB_CU_LAUNCHED("quant_rows_f32");
}

/* ======================= bit packing (kernels/rowcodec.c) ======================= */

/* One thread per 8 codes of a row = `bits` whole bytes of its stream: code k of the chunk sits
 * at bits [k*b, (k+1)*b) of a 64-bit word (little-endian stream, rb_pack_bits), codes past n
 * are zero (the unused high bits of the last byte), and bytes past the packed row are not
 * written. VEC (n % 8 == 0, codes 8-byte aligned): the 8 codes are one 8-byte access. */
template <bool VEC>
__global__ void pack_kernel(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                            size_t ldo) {
    size_t nch = (n + 7) / 8, nbytes = (n * (size_t) bits + 7) / 8;
    uint64_t mask = (1u << bits) - 1;
    RB_CU_FOR(i, rows * nch) {
        size_t r = i / nch, ch = i % nch;
        const uint8_t *src = codes + r * n + ch * 8;
        uint64_t w = 0;
        if (VEC) {
            uint2 c = *(const uint2 *) src;
            uint64_t all = (uint64_t) c.x | (uint64_t) c.y << 32;
#pragma unroll
            for (int k = 0; k < 8; k++) w |= ((all >> (8 * k)) & mask) << (k * bits);
        } else {
            size_t len = n - ch * 8 < 8 ? n - ch * 8 : 8;
            for (size_t k = 0; k < len; k++)
                w |= (uint64_t) (src[k] & mask) << (k * (unsigned) bits);
        }
        uint8_t *dst = out + r * ldo + ch * (size_t) bits;
        size_t nb = nbytes - ch * (size_t) bits < (size_t) bits ? nbytes - ch * (size_t) bits
                                                                : (size_t) bits;
        for (size_t b = 0; b < nb; b++) dst[b] = (uint8_t) (w >> (8 * b));
    }
}

template <bool VEC>
__global__ void unpack_kernel(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                              uint8_t *codes) {
    size_t nch = (n + 7) / 8, nbytes = (n * (size_t) bits + 7) / 8;
    uint64_t mask = (1u << bits) - 1;
    RB_CU_FOR(i, rows * nch) {
        size_t r = i / nch, ch = i % nch;
        const uint8_t *src = in + r * ldi + ch * (size_t) bits;
        size_t nb = nbytes - ch * (size_t) bits < (size_t) bits ? nbytes - ch * (size_t) bits
                                                                : (size_t) bits;
        uint64_t w = 0;
        for (size_t b = 0; b < nb; b++) w |= (uint64_t) src[b] << (8 * b);
        uint8_t *dst = codes + r * n + ch * 8;
        if (VEC) {
            uint64_t all = 0;
#pragma unroll
            for (int k = 0; k < 8; k++) all |= ((w >> (k * bits)) & mask) << (8 * k);
            *(uint2 *) dst = make_uint2((uint32_t) all, (uint32_t) (all >> 32));
        } else {
            size_t len = n - ch * 8 < 8 ? n - ch * 8 : 8;
            for (size_t k = 0; k < len; k++)
                dst[k] = (uint8_t) ((w >> (k * (unsigned) bits)) & mask);
        }
    }
}

static int cu_pack_rows(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                        size_t ldo, void *stream) {
    int rc = rb_pack_rows_check("pack_rows", rows, n, bits, ldo);
    if (rc || rows == 0 || n == 0) return rc;
    if (!codes || !out) return rb_error_set(RB_EINVAL, "pack_rows: NULL codes or output");
    size_t items = rows * ((n + 7) / 8);
    if (n % 8 == 0 && (uintptr_t) codes % 8 == 0)
        pack_kernel<true><<<rb_cu_blocks(items, QT), QT, 0, rb_cu_stream(stream)>>>(codes, rows, n,
                                                                                    bits, out, ldo);
    else
        pack_kernel<false><<<rb_cu_blocks(items, QT), QT, 0, rb_cu_stream(stream)>>>(
            codes, rows, n, bits, out, ldo);
    return RB_CU_LAUNCHED("pack_rows");
}

static int cu_unpack_rows(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                          uint8_t *codes, void *stream) {
    int rc = rb_pack_rows_check("unpack_rows", rows, n, bits, ldi);
    if (rc || rows == 0 || n == 0) return rc;
    if (!in || !codes) return rb_error_set(RB_EINVAL, "unpack_rows: NULL input or codes");
    size_t items = rows * ((n + 7) / 8);
    if (n % 8 == 0 && (uintptr_t) codes % 8 == 0)
        unpack_kernel<true><<<rb_cu_blocks(items, QT), QT, 0, rb_cu_stream(stream)>>>(
            in, ldi, rows, n, bits, codes);
    else
        unpack_kernel<false><<<rb_cu_blocks(items, QT), QT, 0, rb_cu_stream(stream)>>>(
            in, ldi, rows, n, bits, codes);
    return RB_CU_LAUNCHED("unpack_rows");
}

/* ======================= FP4 / FP8 formats (kernels/fpformats.c) ======================= */

__device__ __forceinline__ uint32_t warp_max_u32(uint32_t v, unsigned width) {
    for (unsigned o = width / 2; o > 0; o >>= 1) {
        uint32_t w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
}

static bool aligned(const void *p, size_t a) {
    return p == NULL || (uintptr_t) p % a == 0;
}

/* Eight elements from i0 (zeros past n): two 16-byte loads when VEC and the chunk is whole. */
template <bool VEC>
__device__ __forceinline__ void load8(const float *x, size_t i0, size_t n, float v[8]) {
    if (VEC && i0 + 8 <= n) {
        float4 a = *(const float4 *) (x + i0), b = *(const float4 *) (x + i0 + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z,
        v[7] = b.w;
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = i0 + k < n ? x[i0 + k] : 0.0f;
    }
}

template <bool VEC>
__device__ __forceinline__ void store8(float *y, size_t i0, size_t n, const float v[8]) {
    if (VEC && i0 + 8 <= n) {
        *(float4 *) (y + i0) = make_float4(v[0], v[1], v[2], v[3]);
        *(float4 *) (y + i0 + 4) = make_float4(v[4], v[5], v[6], v[7]);
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++)
            if (i0 + k < n) y[i0 + k] = v[k];
    }
}

/* The 4 bytes of eight nibbles (element 2j low, 2j + 1 high) at packed + 4 ch, only the bytes
 * of the rb_pack_bytes(n, 4) stream. */
template <bool VEC>
__device__ __forceinline__ void store_nibbles(uint8_t *packed, size_t ch, size_t n, uint32_t w) {
    if (VEC && ch * 8 + 8 <= n) {
        *(uint32_t *) (packed + 4 * ch) = w;
    } else {
        size_t nbytes = (n + 1) / 2;
        for (size_t b = 0; b < 4 && 4 * ch + b < nbytes; b++)
            packed[4 * ch + b] = (uint8_t) (w >> (8 * b));
    }
}

template <bool VEC>
__device__ __forceinline__ uint32_t load_nibbles(const uint8_t *packed, size_t ch, size_t n) {
    if (VEC && ch * 8 + 8 <= n) return *(const uint32_t *) (packed + 4 * ch);
    size_t nbytes = (n + 1) / 2;
    uint32_t w = 0;
    for (size_t b = 0; b < 4 && 4 * ch + b < nbytes; b++)
        w |= (uint32_t) packed[4 * ch + b] << (8 * b);
    return w;
}

/* One thread per 8 elements (a chunk), so a 32-element MX block is 4 neighbouring lanes (chunk
 * indices 4k..4k+3: each warp starts at a multiple of 32 chunks) and a 16-element NVFP4 block
 * 2 lanes; their amax is combined with xor shuffles inside the group. Every lane of a warp
 * runs the loop to the same bound (lanes past the end carry zeros and write nothing), so the
 * shuffles see full warps. Elements past n are zeros: they do not change a block's amax, and
 * their code 0 is the zero padding nibble of an odd n. */
#define RB_CHUNK_LOOP(ch, nch)                                                             \
    for (size_t base_ = blockIdx.x * (size_t) blockDim.x + threadIdx.x - threadIdx.x % 32, \
                ch = base_ + threadIdx.x % 32;                                             \
         base_ < (nch); base_ += (size_t) gridDim.x * blockDim.x, ch = base_ + threadIdx.x % 32)

template <bool VEC>
__global__ void mxfp4_quant_kernel(const float *x, size_t n, int ceil_rule, uint8_t *packed,
                                   uint8_t *scales, float *y) {
    size_t nch = (n + 7) / 8;
    RB_CHUNK_LOOP(ch, nch) {
        float v[8];
        load8<VEC>(x, ch * 8, n, v);
        uint32_t m = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t a = rbq_f2u(v[k]) & 0x7FFFFFFFu;
            m = a > m ? a : m;
        }
        m = warp_max_u32(m, 4);
        int sc = rbq_mx_scale_code(m, ceil_rule);
        float down = rbq_mx_down(sc), up = rbq_mx_up(sc);
        uint32_t w = 0;
        float yv[8];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            unsigned c = rbq_e2m1_code(v[k] * down);
            w |= c << (4 * k);
            yv[k] = rbq_e2m1_value(c) * up;
        }
        if (ch < nch) {
            if (scales && ch % 4 == 0) scales[ch / 4] = (uint8_t) sc;
            if (packed) store_nibbles<VEC>(packed, ch, n, w);
            if (y) store8<VEC>(y, ch * 8, n, yv);
        }
    }
}

/* A NaN scale (0xFF), which the CPU reports with RB_ENUMERIC, decodes to NaN here. */
template <bool VEC>
__global__ void mxfp4_dequant_kernel(const uint8_t *packed, const uint8_t *scales, size_t n,
                                     float *y) {
    size_t nch = (n + 7) / 8;
    RB_CU_FOR(ch, nch) {
        uint32_t w = load_nibbles<VEC>(packed, ch, n);
        unsigned sc = scales[ch / 4];
        float up = rbq_mx_up((int) sc), yv[8];
#pragma unroll
        for (int k = 0; k < 8; k++)
            yv[k] = sc == 0xFFu ? rbq_nan(0) : rbq_e2m1_value(w >> (4 * k)) * up;
        store8<VEC>(y, ch * 8, n, yv);
    }
}

static unsigned chunk_blocks(size_t nch) {
    return rb_cu_blocks(nch, QT);
}

static int cu_mxfp4_quant(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                          uint8_t *scales, float *y, void *stream) {
    if (rule != RB_MX_FLOOR && rule != RB_MX_CEIL)
        return rb_error_set(RB_EINVAL, "mxfp4: unknown shared-scale rule %d", (int) rule);
    if (n == 0) return RB_OK;
    if (!x) return rb_error_set(RB_EINVAL, "mxfp4: x is NULL");
    size_t nch = (n + 7) / 8;
    cudaStream_t st = rb_cu_stream(stream);
    if (aligned(x, 16) && aligned(y, 16) && aligned(packed, 4))
        mxfp4_quant_kernel<true>
            <<<chunk_blocks(nch), QT, 0, st>>>(x, n, rule == RB_MX_CEIL, packed, scales, y);
    else
        mxfp4_quant_kernel<false>
            <<<chunk_blocks(nch), QT, 0, st>>>(x, n, rule == RB_MX_CEIL, packed, scales, y);
    return RB_CU_LAUNCHED("mxfp4_quant");
}

static int cu_mxfp4_dequant(const uint8_t *packed, const uint8_t *scales, size_t n, float *y,
                            void *stream) {
    if (n == 0) return RB_OK;
    if (!packed || !scales || !y)
        return rb_error_set(RB_EINVAL, "mxfp4: NULL packed, scales or output");
    size_t nch = (n + 7) / 8;
    cudaStream_t st = rb_cu_stream(stream);
    if (aligned(packed, 4) && aligned(y, 16))
        mxfp4_dequant_kernel<true><<<chunk_blocks(nch), QT, 0, st>>>(packed, scales, n, y);
    else
        mxfp4_dequant_kernel<false><<<chunk_blocks(nch), QT, 0, st>>>(packed, scales, n, y);
    return RB_CU_LAUNCHED("mxfp4_dequant");
}

/* The tensor amax of nvfp4_quant as the bit pattern of a non-negative float (atomicMax on the
 * bits is the float max). One per device (module globals are per context); calls are
 * serialized by nv_mutex and the stream is synced before it is released. */
__device__ uint32_t nv_amax_slot;
static std::mutex nv_mutex;

template <bool VEC> __global__ void nv_amax_kernel(const float *x, size_t n) {
    uint32_t m = 0;
    RB_CU_FOR(ch, (n + 7) / 8) {
        float v[8];
        load8<VEC>(x, ch * 8, n, v);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t a = rbq_f2u(v[k]) & 0x7FFFFFFFu;
            m = a > m ? a : m;
        }
    }
    m = warp_max_u32(m, 32);
    if (threadIdx.x % 32 == 0) atomicMax(&nv_amax_slot, m);
}

__global__ void nv_amax_reset_kernel(void) {
    nv_amax_slot = 0;
}

template <bool VEC>
__global__ void nvfp4_quant_kernel(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                                   float *y) {
    float s_enc = rbq_nv_tensor_scale(rbq_u2f(nv_amax_slot));
    size_t nch = (n + 7) / 8;
    RB_CHUNK_LOOP(ch, nch) {
        float v[8];
        load8<VEC>(x, ch * 8, n, v);
        uint32_t m = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t a = rbq_f2u(v[k]) & 0x7FFFFFFFu;
            m = a > m ? a : m;
        }
        m = warp_max_u32(m, 2);
        float s_b;
        unsigned sc = rbq_e4m3_sat_pos((rbq_u2f(m) / 6.0f) * s_enc, &s_b);
        float mul = s_b > 0 ? s_enc / s_b : 0.0f, dec = s_b / s_enc;
        uint32_t w = 0;
        float yv[8];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            unsigned c = s_b > 0 ? rbq_e2m1_code(v[k] * mul) : 0u;
            w |= c << (4 * k);
            yv[k] = rbq_e2m1_value(c) * dec;
        }
        if (ch < nch) {
            if (scales && ch % 2 == 0) scales[ch / 2] = (uint8_t) sc;
            if (packed) store_nibbles<VEC>(packed, ch, n, w);
            if (y) store8<VEC>(y, ch * 8, n, yv);
        }
    }
}

/* A NaN block scale gives NaN (the CPU reports RB_ENUMERIC). */
template <bool VEC>
__global__ void nvfp4_dequant_kernel(const uint8_t *packed, const uint8_t *scales,
                                     float tensor_scale, size_t n, float *y) {
    size_t nch = (n + 7) / 8;
    RB_CU_FOR(ch, nch) {
        float dec = rbq_fp8_decode(scales[ch / 2], 0) / tensor_scale, yv[8];
        uint32_t w = load_nibbles<VEC>(packed, ch, n);
#pragma unroll
        for (int k = 0; k < 8; k++) yv[k] = rbq_e2m1_value(w >> (4 * k)) * dec;
        store8<VEC>(y, ch * 8, n, yv);
    }
}

static int cu_nvfp4_quant(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                          float *tensor_scale, float *y, void *stream) {
    if (n == 0) {
        if (tensor_scale) *tensor_scale = rb_nvfp4_tensor_scale(0.0f);
        return RB_OK;
    }
    if (!x) return rb_error_set(RB_EINVAL, "nvfp4: x is NULL");
    cudaStream_t st = rb_cu_stream(stream);
    size_t nch = (n + 7) / 8;
    bool vec = aligned(x, 16) && aligned(y, 16) && aligned(packed, 4);
    std::lock_guard<std::mutex> lock(nv_mutex);
    nv_amax_reset_kernel<<<1, 1, 0, st>>>();
    int rc = RB_CU_LAUNCHED("nvfp4_quant (reset)");
    if (rc) return rc;
    unsigned ab = chunk_blocks(nch) < 1024 ? chunk_blocks(nch) : 1024;
    if (aligned(x, 16))
        nv_amax_kernel<true><<<ab, QT, 0, st>>>(x, n);
    else
        nv_amax_kernel<false><<<ab, QT, 0, st>>>(x, n);
    if ((rc = RB_CU_LAUNCHED("nvfp4_quant (amax)"))) return rc;
    if (vec)
        nvfp4_quant_kernel<true><<<chunk_blocks(nch), QT, 0, st>>>(x, n, packed, scales, y);
    else
        nvfp4_quant_kernel<false><<<chunk_blocks(nch), QT, 0, st>>>(x, n, packed, scales, y);
    if ((rc = RB_CU_LAUNCHED("nvfp4_quant"))) return rc;
    uint32_t amax = 0;
    void *slot = NULL;
    RB_CU_TRY(cudaGetSymbolAddress(&slot, nv_amax_slot), "nvfp4_quant (slot)");
    RB_CU_TRY(cudaMemcpyAsync(&amax, slot, sizeof amax, cudaMemcpyDeviceToHost, st),
              "nvfp4_quant (amax copy)");
    RB_CU_TRY(cudaStreamSynchronize(st), "nvfp4_quant (sync)");
    float a;
    memcpy(&a, &amax, sizeof a);
    if (tensor_scale) *tensor_scale = rb_nvfp4_tensor_scale(a);
    return RB_OK;
}

static int cu_nvfp4_dequant(const uint8_t *packed, const uint8_t *scales, float tensor_scale,
                            size_t n, float *y, void *stream) {
    if (!(tensor_scale > 0) || isinf(tensor_scale))
        return rb_error_set(RB_EINVAL, "nvfp4: tensor scale %g is not a positive finite number",
                            (double) tensor_scale);
    if (n == 0) return RB_OK;
    if (!packed || !scales || !y)
        return rb_error_set(RB_EINVAL, "nvfp4: NULL packed, scales or output");
    size_t nch = (n + 7) / 8;
    cudaStream_t st = rb_cu_stream(stream);
    if (aligned(packed, 4) && aligned(y, 16))
        nvfp4_dequant_kernel<true>
            <<<chunk_blocks(nch), QT, 0, st>>>(packed, scales, tensor_scale, n, y);
    else
        nvfp4_dequant_kernel<false>
            <<<chunk_blocks(nch), QT, 0, st>>>(packed, scales, tensor_scale, n, y);
    return RB_CU_LAUNCHED("nvfp4_dequant");
}

/* ---- FP8: four elements per thread (16-byte loads of x, 4-byte stores of codes) ---- */

template <bool VEC>
__global__ void fp8_encode_kernel(const float *x, size_t n, int e5m2, int special, uint8_t *out) {
    RB_CU_FOR(q, (n + 3) / 4) {
        size_t i0 = 4 * q;
        if (VEC && i0 + 4 <= n) {
            float4 v = *(const float4 *) (x + i0);
            uint32_t w =
                rbq_fp8_encode(v.x, e5m2, special) | rbq_fp8_encode(v.y, e5m2, special) << 8 |
                rbq_fp8_encode(v.z, e5m2, special) << 16 | rbq_fp8_encode(v.w, e5m2, special) << 24;
            *(uint32_t *) (out + i0) = w;
        } else {
            for (size_t i = i0; i < i0 + 4 && i < n; i++)
                out[i] = (uint8_t) rbq_fp8_encode(x[i], e5m2, special);
        }
    }
}

template <bool VEC>
__global__ void fp8_decode_kernel(const uint8_t *in, size_t n, int e5m2, float *y) {
    RB_CU_FOR(q, (n + 3) / 4) {
        size_t i0 = 4 * q;
        if (VEC && i0 + 4 <= n) {
            uint32_t w = *(const uint32_t *) (in + i0);
            *(float4 *) (y + i0) =
                make_float4(rbq_fp8_decode(w & 0xFFu, e5m2), rbq_fp8_decode((w >> 8) & 0xFFu, e5m2),
                            rbq_fp8_decode((w >> 16) & 0xFFu, e5m2), rbq_fp8_decode(w >> 24, e5m2));
        } else {
            for (size_t i = i0; i < i0 + 4 && i < n; i++) y[i] = rbq_fp8_decode(in[i], e5m2);
        }
    }
}

/* FP8 takes finite input like the CPU's array casts; NaN and Inf get the scalar encoders' codes
 * instead of RB_ENUMERIC. */
static int cu_fp8_encode(const float *x, size_t n, int e5m2, rb_fp8_overflow ov, uint8_t *out,
                         void *stream) {
    if (ov != RB_FP8_SATURATE && ov != RB_FP8_SPECIAL)
        return rb_error_set(RB_EINVAL, "fp8: unknown overflow mode %d", (int) ov);
    if (n == 0) return RB_OK;
    if (!x || !out) return rb_error_set(RB_EINVAL, "fp8: NULL input or output");
    unsigned blocks = rb_cu_blocks((n + 3) / 4, QT);
    cudaStream_t st = rb_cu_stream(stream);
    if (aligned(x, 16) && aligned(out, 4))
        fp8_encode_kernel<true><<<blocks, QT, 0, st>>>(x, n, e5m2 != 0, ov == RB_FP8_SPECIAL, out);
    else
        fp8_encode_kernel<false><<<blocks, QT, 0, st>>>(x, n, e5m2 != 0, ov == RB_FP8_SPECIAL, out);
    return RB_CU_LAUNCHED("fp8_encode");
}

static int cu_fp8_decode(const uint8_t *in, size_t n, int e5m2, float *y, void *stream) {
    if (n == 0) return RB_OK;
    if (!in || !y) return rb_error_set(RB_EINVAL, "fp8: NULL input or output");
    unsigned blocks = rb_cu_blocks((n + 3) / 4, QT);
    cudaStream_t st = rb_cu_stream(stream);
    if (aligned(in, 4) && aligned(y, 16))
        fp8_decode_kernel<true><<<blocks, QT, 0, st>>>(in, n, e5m2 != 0, y);
    else
        fp8_decode_kernel<false><<<blocks, QT, 0, st>>>(in, n, e5m2 != 0, y);
    return RB_CU_LAUNCHED("fp8_decode");
}

/* ======================= scalar codebooks (kernels/codebook.c) ======================= */

/* The codebook by value (a 2 KB kernel parameter, under the 4 KB limit). */
struct cb_table {
    float v[RB_CODEBOOK_MAX];
    int k;
    int sorted;
};

/* index(x) = number of thresholds strictly below x. With sorted thresholds that is the first
 * position whose threshold is >= x (binary search); otherwise the reference's plain count. */
__global__ void codebook_quant_kernel(cb_table t, const float *x, size_t rows, size_t cols,
                                      size_t ld, uint8_t *idx) {
    __shared__ float th[RB_CODEBOOK_MAX];
    int nt = t.k - 1;
    for (int i = threadIdx.x; i < nt; i += blockDim.x) th[i] = t.v[i];
    __syncthreads();
    RB_CU_FOR(i, rows * cols) {
        size_t r = i / cols, c = i % cols;
        float v = x[r * ld + c];
        unsigned cnt = 0;
        if (t.sorted) {
            int lo = 0, hi = nt; /* th[j] < v for j < lo, th[j] >= v for j >= hi */
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (th[mid] < v)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            cnt = (unsigned) lo;
        } else {
            for (int j = 0; j < nt; j++) cnt += th[j] < v;
        }
        idx[i] = (uint8_t) cnt;
    }
}

/* An index >= k, which the CPU reports with RB_EINVAL, decodes to NaN here. */
__global__ void codebook_dequant_kernel(cb_table t, const uint8_t *idx, size_t n, float *y) {
    __shared__ float cen[RB_CODEBOOK_MAX];
    for (int i = threadIdx.x; i < t.k; i += blockDim.x) cen[i] = t.v[i];
    __syncthreads();
    RB_CU_FOR(i, n) {
        unsigned j = idx[i];
        y[i] = (int) j < t.k ? cen[j] : rbq_nan(0);
    }
}

static int cu_codebook_quant_f32(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                                 size_t ld, uint8_t *idx, void *stream) {
    int rc = rb_codebook_quantize_check(cb, rows, cols, ld);
    if (rc || rows == 0 || cols == 0) return rc;
    if (!x || !idx) return rb_error_set(RB_EINVAL, "codebook: NULL input or output");
    cb_table t;
    memset(&t, 0, sizeof t);
    t.k = (int) cb->k;
    t.sorted = 1;
    for (size_t i = 0; i + 1 < cb->k; i++) {
        t.v[i] = cb->thresholds[i];
        /* !(a <= b) also catches NaN, which the plain count handles as the CPU does. */
        if (i > 0 && !(t.v[i - 1] <= t.v[i])) t.sorted = 0;
    }
    codebook_quant_kernel<<<rb_cu_blocks(rows * cols, QT), QT, 0, rb_cu_stream(stream)>>>(
        t, x, rows, cols, ld, idx);
    return RB_CU_LAUNCHED("codebook_quant_f32");
}

static int cu_codebook_dequant_f32(const rb_codebook *cb, const uint8_t *idx, size_t n, float *y,
                                   void *stream) {
    if (!cb || cb->k < 1 || cb->k > RB_CODEBOOK_MAX)
        return rb_error_set(RB_EINVAL, "codebook: not initialised");
    if (n == 0) return RB_OK;
    if (!idx || !y) return rb_error_set(RB_EINVAL, "codebook: NULL input or output");
    cb_table t;
    memset(&t, 0, sizeof t);
    t.k = (int) cb->k;
    for (size_t i = 0; i < cb->k; i++) t.v[i] = cb->centroids[i];
    codebook_dequant_kernel<<<rb_cu_blocks(n, QT), QT, 0, rb_cu_stream(stream)>>>(t, idx, n, y);
    return RB_CU_LAUNCHED("codebook_dequant_f32");
}

void rb_cu_register_quant(rb_cuda_ops *ops) {
    ops->quant_rows_f32 = cu_quant_rows_f32;
    ops->pack_rows = cu_pack_rows;
    ops->unpack_rows = cu_unpack_rows;
    ops->mxfp4_quant = cu_mxfp4_quant;
    ops->mxfp4_dequant = cu_mxfp4_dequant;
    ops->nvfp4_quant = cu_nvfp4_quant;
    ops->nvfp4_dequant = cu_nvfp4_dequant;
    ops->fp8_encode = cu_fp8_encode;
    ops->fp8_decode = cu_fp8_decode;
    ops->codebook_quant_f32 = cu_codebook_quant_f32;
    ops->codebook_dequant_f32 = cu_codebook_dequant_f32;
}
