/* The TurboQuant / EDEN row codec in registers: gpu.h's rht_codebook_encode (its fast path;
 * fused.cu keeps the shared-memory kernel for the other shapes) and rht_codebook_decode.
 *
 * Layout: a warp holds two rows, one per half-warp; lane l of a half holds elements
 * j = l + 16 i (i = 0 .. NI - 1, d = 16 NI). That is the order of the norm's definition
 * (rb_lanes16_sum, kernels/vecops.h: 16 sequential double sums over j = l mod 16, halved
 * pairwise), so each lane sums its own elements in order and four shuffles finish the norm,
 * bit for bit. The FWHT's stages on index bits 0..3 are xor shuffles between lanes, the stages
 * on bits 4.. run in registers, in the CPU's stage order (h = 1, 2, 4, ...); the H_12 mix of
 * d = 1536 = 12 x 128 is register adds with compile-time signs. Each step is the reference's
 * fp32 operation, so codes, norms and decoded rows equal the CPU codec's (kernels/rhtcodec.h).
 * Codes are packed by OR-reducing each lane's shifted code across the half-warp. */
#include <float.h>
#include <math.h>
#include <string.h>

#include <cuda_pipeline.h>

#include "kernels/cuda/common.cuh"

extern "C" {
#include "kernels/codebook.h"
#include "kernels/hadamard.h"
#include "kernels/rowcodec.h"
}

namespace {

constexpr unsigned kFull = 0xffffffffu;
/* Warps per block: 4 keeps the granularity of residency fine for the register-heavy d = 1536. */
constexpr int RC_WARPS = 4;

/* What every call passes by value: the signs, 1/sqrt(d), and a table of 2^BITS floats
 * (encode: the thresholds, +Inf past k - 1; decode: the centroids, NaN past k). */
struct rc_args {
    const float *d1, *d2;
    float scale;
    int scale_on; /* scale != 1: the K = 1 transform multiplies (the mix always does) */
    float tab[16];
};

__host__ __device__ constexpr int h12(int i, int k) {
    constexpr signed char t[144] = {RB_H12_PALEY_SIGNS};
    return t[i * 12 + k];
}

/* The Hadamard H_K (x) H_P of one row (forward, or its transpose for the inverse) without the
 * K = 1 scale: FWHT stages h = 1 .. 8 across the half-warp, then h = 16 .. P / 2 in registers
 * (sub-block k holds i in [k PI, (k + 1) PI)), then for K = 12 the mix times scale, k ascending
 * from 0.0f like rb_hadamard_f32_ref. */
template <int NI, int K, bool UNSCALED = false>
__device__ __forceinline__ void rc_hadamard(float (&v)[NI], int l, bool inverse, float scale) {
    constexpr int PI = NI / K;
#pragma unroll
    for (int b = 0; b < 4; b++) {
        /* lower lane: a + b = v + o; upper lane: a - b = o - v; fma(-1, v, o) rounds once */
        const float sg = (l >> b) & 1 ? -1.0f : 1.0f;
#pragma unroll
        for (int i = 0; i < NI; i++) {
            float o = __shfl_xor_sync(kFull, v[i], 1 << b, 16);
            v[i] = __fmaf_rn(sg, v[i], o);
        }
    }
#pragma unroll
    for (int h = 1; h < PI; h *= 2)
#pragma unroll
        for (int i = 0; i < NI; i++)
            if (!(i & h)) {
                float a = v[i], b = v[i + h];
                v[i] = __fadd_rn(a, b);
                v[i + h] = __fsub_rn(a, b);
            }
    if constexpr (K == 12) {
#pragma unroll
        for (int c = 0; c < PI; c++) {
            float col[K];
#pragma unroll
            for (int k = 0; k < K; k++) col[k] = v[k * PI + c];
#pragma unroll
            for (int i = 0; i < K; i++) {
                float acc = 0.0f;
#pragma unroll
                for (int k = 0; k < K; k++) {
                    const int s = inverse ? h12(k, i) : h12(i, k);
                    acc = s > 0 ? __fadd_rn(acc, col[k]) : __fsub_rn(acc, col[k]);
                }
                v[i * PI + c] = UNSCALED ? acc : __fmul_rn(acc, scale);
            }
        }
    }
}

/* The RHT's sign multiply (any floats, as rb_rows_mul_f32). */
template <int NI>
__device__ __forceinline__ void rc_signs(float (&v)[NI], const float *__restrict__ s, int l) {
#pragma unroll
    for (int i = 0; i < NI; i++) v[i] = __fmul_rn(v[i], __ldg(s + 16 * i + l));
}

/* UNSCALED: without the last multiply by scale (the encode's thresholds are in those units). */
template <int NI, int K, bool UNSCALED = false>
__device__ __forceinline__ void rc_transform(float (&v)[NI], int l, bool inverse, float scale,
                                             bool scale_on) {
    rc_hadamard<NI, K, UNSCALED>(v, l, inverse, scale);
    if (K == 1 && scale_on && !UNSCALED) {
#pragma unroll
        for (int i = 0; i < NI; i++) v[i] = __fmul_rn(v[i], scale);
    }
}

/* Segment i of a packed row: codes 16 i .. 16 i + 15, 2 BITS bytes at byte 2 BITS i. Loaded and
 * stored with the widest accesses the address allows (rows may be any bytes apart). */
template <int BITS> __device__ __forceinline__ uint64_t rc_load_seg(const uint8_t *p) {
    constexpr int NB = 2 * BITS;
    const uintptr_t a = (uintptr_t) p;
    uint64_t s = 0;
    if (NB % 8 == 0 && a % 8 == 0) return __ldg(reinterpret_cast<const unsigned long long *>(p));
    if (NB % 4 == 0 && a % 4 == 0) {
#pragma unroll
        for (int w = 0; w < NB / 4; w++)
            s |= (uint64_t) __ldg(reinterpret_cast<const unsigned *>(p) + w) << (32 * w);
        return s;
    }
    if (a % 2 == 0) {
#pragma unroll
        for (int w = 0; w < NB / 2; w++)
            s |= (uint64_t) __ldg(reinterpret_cast<const unsigned short *>(p) + w) << (16 * w);
        return s;
    }
#pragma unroll
    for (int w = 0; w < NB; w++) s |= (uint64_t) __ldg(p + w) << (8 * w);
    return s;
}

__device__ __forceinline__ void rc_store_bytes(uint8_t *p, uint64_t s, int nb) {
    const uintptr_t a = (uintptr_t) p;
    if (nb == 8 && a % 8 == 0) {
        *reinterpret_cast<unsigned long long *>(p) = s;
    } else if (nb % 4 == 0 && a % 4 == 0) {
        for (int w = 0; w < nb / 4; w++)
            reinterpret_cast<unsigned *>(p)[w] = (unsigned) (s >> (32 * w));
    } else if (nb % 2 == 0 && a % 2 == 0) {
        for (int w = 0; w < nb / 2; w++)
            reinterpret_cast<unsigned short *>(p)[w] = (unsigned short) (s >> (16 * w));
    } else {
        for (int w = 0; w < nb; w++) p[w] = (uint8_t) (s >> (8 * w));
    }
}

__device__ __forceinline__ float rc_load_f32(const uint8_t *p) {
    if ((uintptr_t) p % 4 == 0) return __ldg(reinterpret_cast<const float *>(p));
    unsigned u = 0;
    for (int w = 0; w < 4; w++) u |= (unsigned) __ldg(p + w) << (8 * w);
    return __uint_as_float(u);
}

/* Two rows per warp, grid-stride over row pairs; a half past the last row works on a copy of
 * its partner's row (the shuffles need every lane) and stores nothing. */
/* The codebook index of v, the number of thresholds t[0 .. 2^BITS - 2] strictly below it
 * (sorted, +Inf past k - 1), as a binary search whose probes are selects between compile-time
 * entries: no memory access, so no latency chain (a shared-memory table made each probe wait
 * for its load). At BITS = 4 the last two probes read ts, the same table in shared memory: their
 * 3 + 7 selects kept all 15 thresholds in registers (255 a thread at d = 1536) and cost more
 * than the load, which the other 95 elements' work hides (d = 1536: 6.4 -> 4.8 ms). NaN
 * compares false throughout: index 0, as the count gives. */
template <int BITS>
__device__ __forceinline__ unsigned rc_search(float v, const float (&t)[16], const float *ts) {
    if constexpr (BITS == 1) {
        return t[0] < v;
    } else if constexpr (BITS == 2) {
        const bool p1 = t[1] < v;
        const bool p2 = (p1 ? t[2] : t[0]) < v;
        return 2u * p1 + p2;
    } else if constexpr (BITS == 3) {
        const bool p1 = t[3] < v;
        const bool p2 = (p1 ? t[5] : t[1]) < v;
        const bool p3 = (p1 ? (p2 ? t[6] : t[4]) : (p2 ? t[2] : t[0])) < v;
        return 4u * p1 + 2u * p2 + p3;
    } else {
        const bool p1 = t[7] < v;
        const bool p2 = (p1 ? t[11] : t[3]) < v;
        const unsigned i = 8u * p1 + 4u * p2, j = i + 2u * (ts[i + 1] < v);
        return j + (ts[j] < v);
    }
}

/* One stage of the transpose on a word of BITS-bit elements: lanes with bit b clear take their
 * partner's elements t - b into positions t with bit b set (mask m), lanes with it set take
 * elements t + b into the positions with it clear. */
template <int BITS>
__device__ __forceinline__ unsigned rc_tstage(unsigned x, int l, int b, unsigned m) {
    const unsigned y = __shfl_xor_sync(kFull, x, b, 16);
    return (l & b) ? (x & m) | ((y >> (BITS * b)) & ~m) : (x & ~m) | ((y << (BITS * b)) & m);
}

/* Lane l holds elements t = 0..15 (BITS bits each; lo holds the first 32 bits, hi the rest at
 * BITS = 4); afterwards lane t holds element t of every lane l at position l. */
template <int BITS>
__device__ __forceinline__ void rc_transpose16(unsigned &lo, unsigned &hi, int l) {
    if constexpr (BITS == 4) {
        /* b = 8 swaps whole words: the clear lane's hi with the set lane's lo */
        const unsigned y = __shfl_xor_sync(kFull, (l & 8) ? lo : hi, 8, 16);
        if (l & 8)
            lo = y;
        else
            hi = y;
        lo = rc_tstage<4>(lo, l, 4, 0xFFFF0000u);
        hi = rc_tstage<4>(hi, l, 4, 0xFFFF0000u);
        lo = rc_tstage<4>(lo, l, 2, 0xFF00FF00u);
        hi = rc_tstage<4>(hi, l, 2, 0xFF00FF00u);
        lo = rc_tstage<4>(lo, l, 1, 0xF0F0F0F0u);
        hi = rc_tstage<4>(hi, l, 1, 0xF0F0F0F0u);
    } else if constexpr (BITS == 2) {
        lo = rc_tstage<2>(lo, l, 8, 0xFFFF0000u);
        lo = rc_tstage<2>(lo, l, 4, 0xFF00FF00u);
        lo = rc_tstage<2>(lo, l, 2, 0xF0F0F0F0u);
        lo = rc_tstage<2>(lo, l, 1, 0xCCCCCCCCu);
    } else {
        lo = rc_tstage<1>(lo, l, 8, 0xFF00u);
        lo = rc_tstage<1>(lo, l, 4, 0xF0F0u);
        lo = rc_tstage<1>(lo, l, 2, 0xCCCCu);
        lo = rc_tstage<1>(lo, l, 1, 0xAAAAu);
    }
}

/* Per warp, with ASYNC: a row pair in shared memory (the second row 16 floats further, so that
 * the halves read distinct banks). The warp copies it into registers, then queues the next
 * pair's cp.async into the same buffer: the loads stay in flight while the pair is computed
 * (d = 1536 keeps few warps an SM resident). One stage, not two: half the shared memory, so
 * more blocks fit (d = 128 b4: 0.37 -> 0.35 ms; d = 1536 unchanged). */
template <int NI> __host__ __device__ constexpr int rc_stage_floats() {
    return 2 * 16 * NI + 16;
}
template <int NI> constexpr size_t rc_async_smem() {
    return (size_t) RC_WARPS * rc_stage_floats<NI>() * sizeof(float);
}

/* Queues the rows of pair pr (those below `rows`) into stage buffer buf: 16-byte pieces, every
 * lane a share; x and rows of 16 NI floats are 16-byte aligned (the launch checks). */
template <int NI>
__device__ __forceinline__ void rc_prefetch(float *buf, const float *x, size_t pr, size_t rows,
                                            int lane) {
    constexpr int D = 16 * NI, PIECES = D / 4;
    for (int h = 0; h < 2; h++) {
        size_t row = 2 * pr + h;
        if (row >= rows) break;
        const float *src = x + row * D;
        float *dst = buf + h * (D + 16);
        for (int q = lane; q < PIECES; q += 32)
            __pipeline_memcpy_async(dst + 4 * q, src + 4 * q, 16);
    }
    __pipeline_commit();
}

template <int NI, int K, int BITS, bool ASYNC>
__global__ void __launch_bounds__(RC_WARPS * 32)
    rc_encode_kernel(const float *__restrict__ x, size_t rows, rc_args a, uint8_t *packed,
                     size_t ldp, float *norm) {
    constexpr int D = 16 * NI, PAYLOAD = D * BITS / 8;
    extern __shared__ float rc_stages[];
    __shared__ float tab[16]; /* rc_search's table at BITS = 4 */
    if constexpr (BITS == 4) {
        if (threadIdx.x == 0) { /* constant indices: a stays in the parameter space */
#pragma unroll
            for (int i = 0; i < 16; i++) tab[i] = a.tab[i];
        }
        __syncthreads();
    }
    const int lane = threadIdx.x & 31, l = lane & 15, half = lane >> 4;
    const size_t pairs = (rows + 1) / 2;
    const size_t nwarps = ((size_t) gridDim.x * blockDim.x) >> 5;
    const size_t first = ((size_t) blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    float *stage = rc_stages + (threadIdx.x >> 5) * rc_stage_floats<NI>();
    if constexpr (ASYNC) {
        if (first < pairs) rc_prefetch<NI>(stage, x, first, rows, lane);
    }
    for (size_t pr = first; pr < pairs; pr += nwarps) {
        const size_t row = 2 * pr + half;
        const bool live = row < rows;
        float v[NI];
        if constexpr (ASYNC) {
            __pipeline_wait_prior(0);
            __syncwarp();
            /* a half past the last row reads its partner's row */
            const float *b = stage + (live ? half : 0) * (D + 16) + l;
#pragma unroll
            for (int i = 0; i < NI; i++) v[i] = b[16 * i];
            __syncwarp(); /* every lane has its row before the buffer is refilled */
            if (pr + nwarps < pairs) rc_prefetch<NI>(stage, x, pr + nwarps, rows, lane);
        } else {
            const float *xr = x + (live ? row : row - 1) * D + l;
#pragma unroll
            for (int i = 0; i < NI; i++) v[i] = __ldcs(xr + 16 * i);
        }
        /* |x|^2 in rb_lanes16_sum's order; a float's square is exact in double, so the fma's one
         * rounding is the reference's s + t * t */
        double s = 0.0;
#pragma unroll
        for (int i = 0; i < NI; i++) {
            double t = (double) v[i];
            s = __fma_rn(t, t, s);
        }
        s = __dadd_rn(s, __shfl_down_sync(kFull, s, 8, 16));
        s = __dadd_rn(s, __shfl_down_sync(kFull, s, 4, 16));
        s = __dadd_rn(s, __shfl_down_sync(kFull, s, 2, 16));
        s = __dadd_rn(s, __shfl_down_sync(kFull, s, 1, 16));
        const double n = sqrt(__shfl_sync(kFull, s, 0, 16));
        /* rb_unit_factors (kernels/rowcodec.h) */
        const float pre = n < RB_UNIT_TINY ? RB_UNIT_PRESCALE : 1.0f;
        const float inv =
            n > 0 ? __double2float_rn(__ddiv_rn(1.0, __dmul_rn(n, (double) pre))) : 0.0f;
        uint8_t *pk = packed + row * ldp;
        if (live && l == 0) {
            /* +Inf marks a norm beyond the fp32 range (the CPU codec's error) */
            const float nf = n > (double) FLT_MAX ? INFINITY : (float) n;
            if (norm)
                norm[row] = nf;
            else
                rc_store_bytes(pk + PAYLOAD, __float_as_uint(nf), 4);
        }
        if (pre == 1.0f) { /* v * 1 is v: one multiply an element fewer on all but tiny rows */
#pragma unroll
            for (int i = 0; i < NI; i++) v[i] = __fmul_rn(v[i], inv);
        } else {
#pragma unroll
            for (int i = 0; i < NI; i++) v[i] = __fmul_rn(__fmul_rn(v[i], pre), inv);
        }
        /* the last transform leaves out its * scale: a.tab is in unscaled units (rc_encode_tab) */
        rc_signs<NI>(v, a.d1, l);
        if (a.d2) {
            rc_transform<NI, K>(v, l, false, a.scale, a.scale_on);
            rc_signs<NI>(v, a.d2, l);
        }
        rc_transform<NI, K, true>(v, l, false, a.scale, a.scale_on);
        if constexpr (BITS == 3) {
#pragma unroll
            for (int i = 0; i < NI; i++) {
                uint64_t w = (uint64_t) rc_search<3>(v[i], a.tab, tab) << (3 * l);
#pragma unroll
                for (int m = 1; m < 16; m *= 2) w |= __shfl_xor_sync(kFull, w, m, 16);
                if (live && l == 0) rc_store_bytes(pk + 6 * i, w, 6);
            }
        } else {
            /* blocks of 16 i: each lane packs its 16 codes, a 16 x 16 transpose of BITS-bit
             * elements across the half-warp makes lane t hold segment 16 m + t */
#pragma unroll
            for (int m = 0; m < (NI + 15) / 16; m++) {
                unsigned lo = 0, hi = 0;
#pragma unroll
                for (int t = 0; t < 16 && 16 * m + t < NI; t++) {
                    unsigned c = rc_search<BITS>(v[16 * m + t], a.tab, tab);
                    if (BITS * t < 32)
                        lo |= c << (BITS * t);
                    else
                        hi |= c << (BITS * t - 32);
                }
                rc_transpose16<BITS>(lo, hi, l);
                const int i = 16 * m + l;
                if (live && i < NI) {
                    if constexpr (BITS == 4)
                        rc_store_bytes(pk + 8 * i, (uint64_t) lo | (uint64_t) hi << 32, 8);
                    else
                        rc_store_bytes(pk + 2 * BITS * i, lo, 2 * BITS);
                }
            }
        }
    }
}

/* A lane's share of a packed row read as 32-bit words (WORDS: bits 1, 2 or 4 and 4-byte aligned
 * rows): word q + 16 s in slot s of lane q, so that the word holding code 16 i + l sits in a
 * compile-time slot and one shuffle fetches it. The next pair's words load while this one is
 * computed. */
template <int NI, int BITS> struct rc_words {
    static constexpr int N = 16 * NI * BITS / 32, PER = (N + 15) / 16;
    unsigned w[PER];
    float nf;
    __device__ __forceinline__ void load(const uint8_t *pk, const float *norm, size_t row, int l) {
        const unsigned *pw = reinterpret_cast<const unsigned *>(pk);
#pragma unroll
        for (int t = 0; t < PER; t++) w[t] = l + 16 * t < N ? __ldg(pw + l + 16 * t) : 0u;
        nf = norm ? __ldg(norm + row) : rc_load_f32(pk + 16 * NI * BITS / 8);
    }
    __device__ __forceinline__ unsigned code(int i, int l) const {
        if constexpr (BITS == 4) {
            unsigned x = __shfl_sync(kFull, w[i / 8], (2 * i + (l >> 3)) & 15, 16);
            return (x >> (4 * (l & 7))) & 15u;
        } else if constexpr (BITS == 2) {
            return (__shfl_sync(kFull, w[i / 16], i % 16, 16) >> (2 * l)) & 3u;
        } else {
            return (__shfl_sync(kFull, w[i / 32], (i / 2) % 16, 16) >> (l + 16 * (i & 1))) & 1u;
        }
    }
};

template <int NI, int K, int BITS, bool WORDS>
__global__ void __launch_bounds__(RC_WARPS * 32)
    rc_decode_kernel(const uint8_t *__restrict__ packed, size_t ldp, const float *__restrict__ norm,
                     size_t rows, rc_args a, float *y, size_t ldy) {
    constexpr int D = 16 * NI, PAYLOAD = D * BITS / 8;
    __shared__ float cen[16];
    if (threadIdx.x == 0) { /* constant indices: a stays in the parameter space */
#pragma unroll
        for (int i = 0; i < 16; i++) cen[i] = a.tab[i];
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, l = lane & 15, half = lane >> 4;
    const size_t pairs = (rows + 1) / 2;
    const size_t nwarps = ((size_t) gridDim.x * blockDim.x) >> 5;
    const size_t first = ((size_t) blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    /* a half past the last row reads its partner's row */
    auto src_row = [&](size_t pr) { return 2 * pr + half < rows ? 2 * pr + half : 2 * pr; };
    rc_words<NI, (WORDS ? BITS : 1)> cw, nw;
    if constexpr (WORDS) {
        if (first < pairs) cw.load(packed + src_row(first) * ldp, norm, src_row(first), l);
    }
    for (size_t pr = first; pr < pairs; pr += nwarps) {
        const size_t row = 2 * pr + half;
        const bool live = row < rows;
        const size_t sr = src_row(pr);
        float v[NI], nf;
        if constexpr (WORDS) {
            if (pr + nwarps < pairs)
                nw.load(packed + src_row(pr + nwarps) * ldp, norm, src_row(pr + nwarps), l);
#pragma unroll
            for (int i = 0; i < NI; i++) v[i] = cen[cw.code(i, l)];
            nf = cw.nf;
            cw = nw;
        } else {
            const uint8_t *pk = packed + sr * ldp;
            nf = norm ? __ldg(norm + sr) : rc_load_f32(pk + PAYLOAD);
#pragma unroll
            for (int i = 0; i < NI; i++) {
                uint64_t sg = rc_load_seg<BITS>(pk + 2 * BITS * i);
                v[i] = cen[(unsigned) (sg >> (BITS * l)) & ((1u << BITS) - 1)];
            }
        }
        rc_transform<NI, K>(v, l, true, a.scale, a.scale_on);
        if (a.d2) {
            rc_signs<NI>(v, a.d2, l);
            rc_transform<NI, K>(v, l, true, a.scale, a.scale_on);
        }
        rc_signs<NI>(v, a.d1, l);
        if (live) {
            float *yr = y + row * ldy + l;
#pragma unroll
            for (int i = 0; i < NI; i++) __stcs(yr + 16 * i, __fmul_rn(v[i], nf));
        }
    }
}

typedef void (*rc_enc_fn)(const float *, size_t, rc_args, uint8_t *, size_t, float *);
typedef void (*rc_dec_fn)(const uint8_t *, size_t, const float *, size_t, rc_args, float *, size_t);

/* The shapes with a kernel: d = 32 .. 1024 (K = 1) and 1536 = 12 x 128, bits 1 .. 4; encode
 * with and without the cp.async stages, decode with and without word loads (none at bits 3). */
struct rc_shape {
    size_t d;
    size_t async_smem;
    rc_enc_fn enc[4][2];
    rc_dec_fn dec[4][2];
};
#define RC_ENC(NI, K, B) \
    { rc_encode_kernel<NI, K, B, false>, rc_encode_kernel<NI, K, B, true> }
#define RC_DEC(NI, K, B) \
    { rc_decode_kernel<NI, K, B, false>, rc_decode_kernel<NI, K, B, B != 3> }
#define RC_SHAPE(NI, K)                                                                 \
    {                                                                                   \
        16 * (NI), rc_async_smem<NI>(),                                                 \
            {RC_ENC(NI, K, 1), RC_ENC(NI, K, 2), RC_ENC(NI, K, 3), RC_ENC(NI, K, 4)}, { \
            RC_DEC(NI, K, 1), RC_DEC(NI, K, 2), RC_DEC(NI, K, 3), RC_DEC(NI, K, 4)      \
        }                                                                               \
    }
const rc_shape rc_shapes[] = {RC_SHAPE(2, 1),  RC_SHAPE(4, 1),  RC_SHAPE(8, 1),  RC_SHAPE(16, 1),
                              RC_SHAPE(32, 1), RC_SHAPE(64, 1), RC_SHAPE(96, 12)};

const rc_shape *rc_find(size_t d, int bits) {
    if (bits < 1 || bits > 4) return NULL;
    for (const rc_shape &s : rc_shapes)
        if (s.d == d) {
            if (d != 1536) return &s;
            /* the compile-time H_12 must be the library's */
            const int8_t *hk = rb_hadamard_matrix(12);
            for (int i = 0; hk && i < 144; i++)
                if (hk[i] != h12(i / 12, i % 12)) return NULL;
            return hk ? &s : NULL;
        }
    return NULL;
}

unsigned rc_grid(const void *kernel, size_t rows, size_t smem) {
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, RC_WARPS * 32, smem) !=
            cudaSuccess ||
        per_sm < 1) {
        (void) cudaGetLastError();
        per_sm = 1;
    }
    size_t need = ((rows + 1) / 2 + RC_WARPS - 1) / RC_WARPS,
           cap = (size_t) rb_cu_sm_count() * (size_t) per_sm;
    return (unsigned) (need < cap ? (need ? need : 1) : cap);
}

rc_args rc_make_args(size_t d, const float *d1, const float *d2) {
    rc_args a = {};
    a.d1 = d1;
    a.d2 = d2;
    a.scale = (float) (1.0 / sqrt((double) d));
    a.scale_on = a.scale != 1.0f;
    return a;
}

/* The encode's thresholds for a search on the last transform's values before its * scale (the
 * K = 1 multiply, or the H_12 mix's): the reference's t < RN(v * scale) is u <= v for
 * u = rb_codebook_unscaled_threshold(t, scale), and rc_search's strict test needs the float
 * below u. */
void rc_encode_tab(rc_args *a, const rb_codebook *cb) {
    for (int i = 0; i < 16; i++) {
        float u = i + 1 < (int) cb->k ? rb_codebook_unscaled_threshold(cb->thresholds[i], a->scale)
                                      : INFINITY;
        a->tab[i] = isfinite(u) ? nextafterf(u, -INFINITY) : u;
    }
}

} // namespace

int rb_cu_rc_check(const char *op, size_t d, const rb_codebook *cb, int bits, size_t rows,
                   const void *data, const void *packed, const float *d1, size_t ldp,
                   int norm_in_row) {
    int rc = rb_hadamard_lookup(d, NULL, NULL);
    if (rc) return rc;
    if (!cb || cb->k < 1 || cb->k > RB_CODEBOOK_MAX)
        return rb_error_set(RB_EINVAL, "codebook: not initialised");
    if (bits < 1 || bits > 8 || cb->k > (1u << bits))
        return rb_error_set(RB_EINVAL, "codebook: k = %zu codes do not fit %d bits", cb->k, bits);
    if (rows == 0) return RB_OK;
    if (!data || !packed || !d1) return rb_error_set(RB_EINVAL, "%s: NULL argument", op);
    size_t pb = rb_pack_bytes(d, bits) + (norm_in_row ? sizeof(float) : 0);
    if (rows > 1 && ldp < pb)
        return rb_error_set(RB_EINVAL, "%s: row stride %zu is shorter than a code row (%zu)", op,
                            ldp, pb);
    return RB_OK;
}

/* gpu.h rht_codebook_encode's fast path (arguments already checked): RB_EDECLINE for shapes
 * without a kernel. */
int rb_cu_rc_encode(const float *x, size_t rows, size_t d, const float *d1, const float *d2,
                    const rb_codebook *cb, int bits, uint8_t *packed, size_t ldp, float *norm,
                    void *stream) {
    const rc_shape *s = rc_find(d, bits);
    if (!s) return RB_EDECLINE;
    rc_args a = rc_make_args(d, d1, d2);
    rc_encode_tab(&a, cb);
    /* the cp.async stages take 16-byte pieces: x must be 16-byte aligned (rows are then too) */
    const int async = (uintptr_t) x % 16 == 0;
    rc_enc_fn f = s->enc[bits - 1][async];
    size_t smem = async ? s->async_smem : 0;
    if (smem > 48 * 1024)
        RB_CU_TRY(cudaFuncSetAttribute((const void *) f,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int) smem),
                  "rht_codebook_encode");
    f<<<rc_grid((const void *) f, rows, smem), RC_WARPS * 32, smem, rb_cu_stream(stream)>>>(
        x, rows, a, packed, ldp, norm);
    return RB_CU_LAUNCHED("rht_codebook_encode");
}

static int cu_rht_codebook_decode(const uint8_t *packed, size_t ldp, const float *norm, size_t rows,
                                  size_t d, const float *d1, const float *d2, const rb_codebook *cb,
                                  int bits, float *y, size_t ldy, void *stream) {
    int rc = rb_cu_rc_check("rht_codebook_decode", d, cb, bits, rows, y, packed, d1, ldp, !norm);
    if (rc || rows == 0) return rc;
    if (rows > 1 && ldy < d)
        return rb_error_set(RB_EINVAL,
                            "rht_codebook_decode: row stride %zu is shorter than d = %zu", ldy, d);
    const rc_shape *s = rc_find(d, bits);
    if (!s) return RB_EDECLINE;
    rc_args a = rc_make_args(d, d1, d2);
    for (int i = 0; i < 16; i++) a.tab[i] = i < (int) cb->k ? cb->centroids[i] : NAN;
    /* word loads need 4-byte aligned code rows (and norms in them) */
    const int words = (uintptr_t) packed % 4 == 0 && (rows == 1 || ldp % 4 == 0);
    rc_dec_fn f = s->dec[bits - 1][words];
    f<<<rc_grid((const void *) f, rows, 0), RC_WARPS * 32, 0, rb_cu_stream(stream)>>>(
        packed, ldp, norm, rows, a, y, ldy);
    return RB_CU_LAUNCHED("rht_codebook_decode");
}

void rb_cu_register_rhtcodec(rb_cuda_ops *ops) {
    ops->rht_codebook_decode = cu_rht_codebook_decode;
}
