/* AVX-512 SAW-INT4 encode (block FWHT + bf16 + min/max + INT4 + pack) and decode, bit-identical
 * to the references: the same butterflies in the same order, the same scalar scale/zero
 * arithmetic, IEEE division per element. */
#include <immintrin.h>
#include <math.h>

#include "kernels/half.h"
#include "kernels/kv_quant.h"
#include "kernels/kv_quant_variants.h"
#include "kernels/x86/fwht_reg_avx512.h"
#include "kernels/x86/simd_util.h"

/* Loops over the vectors of a row (a constant count after inlining) must unroll completely so
 * that the row stays in registers; gcc -O2 does not do it on its own: RB_UNROLL(16). */

/* u + 0x7FFF + (bit 16 of u), low half cleared: the reference's rounding, with the bit-16 test
 * as a mask on the second add (one operation fewer than shift + and + add). */
RB_AI __m512 bf16_round16(__m512 x) {
    __m512i u = _mm512_castps_si512(x), one = _mm512_set1_epi32(1);
    __mmask16 odd = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000));
    __m512i r = _mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF));
    r = _mm512_mask_add_epi32(r, odd, r, one);
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int) 0xFFFF0000u)));
}

/* The code of quotient q = v / scale: (q + z + 0.5) truncated, clamped to [0, 15] as the
 * reference (NaN -> 0: max_ps returns its second operand). */
RB_AI __m512i code_clamped(__m512 q, __m512 vz) {
    __m512 f = _mm512_add_ps(_mm512_add_ps(q, vz), _mm512_set1_ps(0.5f));
    f = _mm512_max_ps(f, _mm512_setzero_ps());
    f = _mm512_min_ps(f, _mm512_set1_ps(15.0f));
    return _mm512_cvttps_epi32(f);
}

RB_AI __m512i code16(__m512 v, __m512 vs, __m512 vz) {
    return code_clamped(_mm512_div_ps(v, vs), vz);
}

/* The same code without the clamps, for the register path: for rows of finite values f =
 * v / scale + z + 0.5 lies in [0.5, 16) (v >= mn and z = -(mn / scale) exactly, v <= mx), so the
 * clamps never act; the one non-finite case (a constant row of huge values: v / scale = inf, z
 * = -inf, f = NaN, which the reference clamps to code 0) converts to 0x80000000, and the
 * packing below saturates that to 0 as well. */
RB_AI __m512i code_fast(__m512 q, __m512 vz) {
    return _mm512_cvttps_epi32(_mm512_add_ps(_mm512_add_ps(q, vz), _mm512_set1_ps(0.5f)));
}

/* 64 packed bytes from four low-half and four high-half code vectors (lo[i], hi[i] hold codes of
 * elements 16 i .. 16 i + 15 of their half): unsigned-saturating packs (INT_MIN -> 0) to 16
 * bits, the high nibble shifted there (32 lanes per shift), a pack to bytes, and a dword
 * transpose that undoes the packs' per-128-bit-lane interleave. */
RB_AI void pack64(const __m512i *lo, const __m512i *hi, uint8_t *out) {
    const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i b01 = _mm512_or_si512(_mm512_packus_epi32(lo[0], lo[1]),
                                  _mm512_slli_epi16(_mm512_packus_epi32(hi[0], hi[1]), 4));
    __m512i b23 = _mm512_or_si512(_mm512_packus_epi32(lo[2], lo[3]),
                                  _mm512_slli_epi16(_mm512_packus_epi32(hi[2], hi[3]), 4));
    _mm512_storeu_si512(out, _mm512_permutexvar_epi32(tr, _mm512_packus_epi16(b01, b23)));
}

/* Lane r of the result: the minimum (max = 0) or maximum (max = 1) over the 16 lanes of a[r],
 * for 16 vectors: a transposing tree that halves the vector count and the lanes per row at each
 * level (45 operations for the 16 rows instead of 8 per row), then one permute into row order.
 * The order of the comparisons differs from the reference's scan, which only decides which of
 * two equal values wins, +0 or -0, and no output depends on that (z = (0 - mn) / scale is +0
 * either way, and range = mx - mn is the same or below 1e-8). */
RB_AI __m512 mm(__m512 a, __m512 b, const int max) {
    return max ? _mm512_max_ps(a, b) : _mm512_min_ps(a, b);
}

RB_AI __m512 reduce16(const __m512 *a, const int max) {
    __m512 t[8], u[4], w[2];
    RB_UNROLL(16)
    for (int i = 0; i < 8; i++) /* row i in quarters 0-1, row i + 8 in quarters 2-3 */
        t[i] = mm(_mm512_shuffle_f32x4(a[i], a[i + 8], 0x44),
                  _mm512_shuffle_f32x4(a[i], a[i + 8], 0xEE), max);
    RB_UNROLL(16)
    for (int i = 0; i < 4; i++) /* quarters: rows i, i + 8, i + 4, i + 12 */
        u[i] = mm(_mm512_shuffle_f32x4(t[i], t[i + 4], 0x88),
                  _mm512_shuffle_f32x4(t[i], t[i + 4], 0xDD), max);
    RB_UNROLL(16)
    for (int i = 0; i < 2; i++) /* lane pairs: quarter k's row of u[i], then of u[i + 2] */
        w[i] = mm(_mm512_shuffle_ps(u[i], u[i + 2], 0x44), _mm512_shuffle_ps(u[i], u[i + 2], 0xEE),
                  max);
    /* lanes: rows 0 2 1 3 | 8 10 9 11 | 4 6 5 7 | 12 14 13 15 */
    __m512 r = mm(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD), max);
    return _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15), r);
}

/* Pass 1 of encode_block for R rows (interleaved: independent chains side by side for the
 * out-of-order window): load, rotate, bf16, the rotated rows into buf (row stride 256 floats),
 * and each row's min and max down to one vector. */
RB_AI void rotate_rows(const float *x, size_t stride, size_t m, unsigned flags, float *buf,
                       __m512 *vmn, __m512 *vmx, const int nv, const int R) {
    const rb_fwht16_signs sg = rb_fwht16_signs_make();
    const __m512 vinv = _mm512_set1_ps((float) (1.0 / sqrt((double) m)));
    __m512 v[2][16];
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) {
        RB_UNROLL(16)
        for (int r = 0; r < R; r++) {
            v[r][i] = _mm512_loadu_ps(x + (size_t) r * stride + 16 * i);
            if (m > 1) v[r][i] = rb_fwht16_stages(_mm512_mul_ps(v[r][i], vinv), m, &sg);
        }
    }
    RB_UNROLL(16)
    for (int r = 0; r < R; r++) {
        rb_fwht_cross_stages(v[r], nv, m, 0);
    }
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) {
        RB_UNROLL(16)
        for (int r = 0; r < R; r++) {
            if (flags & RB_KV_BF16) v[r][i] = bf16_round16(v[r][i]);
            _mm512_store_ps(buf + 256 * r + 16 * i, v[r][i]);
        }
    }
    RB_UNROLL(16)
    for (int r = 0; r < R; r++) {
        __m512 a[8], b[8];
        /* pairwise trees: 3 levels of latency instead of a chain of 7 */
        RB_UNROLL(16)
        for (int i = 0; i < nv / 2; i++) {
            a[i] = _mm512_min_ps(v[r][i], v[r][i + nv / 2]);
            b[i] = _mm512_max_ps(v[r][i], v[r][i + nv / 2]);
        }
        RB_UNROLL(16)
        for (int w = nv / 4; w >= 1; w /= 2) {
            RB_UNROLL(16)
            for (int i = 0; i < w; i++) {
                a[i] = _mm512_min_ps(a[i], a[i + w]);
                b[i] = _mm512_max_ps(b[i], b[i + w]);
            }
        }
        vmn[r] = a[0];
        vmx[r] = b[0];
    }
}

/* How far ahead encode_block prefetches its input: two blocks. */
enum { PREFETCH_ROWS = 32 };

/* Up to 16 rows of d = 16 nv (nv = 2, 4, 8, 16: a constant after inlining) in two passes. Pass
 * 1 (rotate_rows): load, rotate in registers, bf16, the rotated rows into an L1 buffer, min/max
 * down to one vector per row. Then the 16 rows' horizontal reductions in one tree and their scale
 * and z lane-wise (two vector divisions per block instead of two scalar ones per row). Pass 2, row
 * by row: the quotients, codes and packing from the buffer, scale and z broadcast from memory.
 * Why: done start to end, one row is a dependency chain of ~130 cycles (butterflies, reductions,
 * the scalar divisions, the quotients) that the out-of-order window overlapped poorly with the
 * next row's; split this way, each pass is a run of short independent chains (in cache: 36.5 ->
 * about 27 ns a row at d = 128, PERFORMANCE.md). The buffer costs a store and a load per vector,
 * which the load/store ports absorb: the kernel is then bound by its ~190 vector operations a row
 * (about two 512-bit operations a cycle on this machine). */
RB_AI void encode_block(const float *x, size_t n, size_t stride, size_t m, unsigned flags,
                        uint8_t *packed, float *sz, const int nv) {
    const size_t half = (size_t) nv * 8;
    _Alignas(64) float buf[16][16 * 16], sc[16], zz[16];
    __m512 vmn[16], vmx[16];
    /* two rows at a time where two fit in the 32 registers */
    const int R = nv <= 8 ? 2 : 1;
    size_t r = 0;
    for (; r + (size_t) R <= n; r += (size_t) R) {
        /* Rows PREFETCH_ROWS ahead into L2: pass 2 issues no input loads, so without this
         * the out-of-order window stops running ahead into the next block and every block
         * starts with misses to DRAM (out of cache the split kernel was slower than the
         * one-row-at-a-time one, 50 against 39 ns a row). Into L2, not L1: with buf (16 KiB)
         * and the block in flight, a block prefetched into L1 evicts what pass 2 reads on a
         * 32 KiB L1 (Zen 4: 262144 x 128 from memory, 1 thread, 68-70 ns a row with the next
         * block into L1, 48 with rows 32 ahead into L2 only and 51-59 with 64-256, 101-109 with
         * none; PERFORMANCE.md). Past the caller's rows too (the pool's next task on this thread
         * usually starts there): a prefetch never faults, and the address is computed as an
         * integer so that no pointer leaves its array. */
        for (size_t k = r; k < r + (size_t) R; k++)
            for (int i = 0; i < nv; i++)
                _mm_prefetch((const char *) ((uintptr_t) x +
                                             ((PREFETCH_ROWS + k) * stride + 16 * (size_t) i) *
                                                 sizeof(float)),
                             _MM_HINT_T1);
        rotate_rows(x + r * stride, stride, m, flags, buf[r], vmn + r, vmx + r, nv, R);
    }
    for (; r < n; r++)
        rotate_rows(x + r * stride, stride, m, flags, buf[r], vmn + r, vmx + r, nv, 1);
    for (size_t i = n; i < 16; i++) vmn[i] = vmx[i] = _mm512_setzero_ps(); /* lanes not stored */
    __m512 mn = reduce16(vmn, 0), mx = reduce16(vmx, 1);
    /* The reference's scalar steps lane-wise: max_ps(range, c) is `range > c ? range : c`. */
    __m512 range = _mm512_sub_ps(mx, mn);
    __m512 scale =
        _mm512_div_ps(_mm512_max_ps(range, _mm512_set1_ps(1e-8f)), _mm512_set1_ps(15.0f));
    /* fp16 side values: the scale floor (rb_kv_scale_zero), scalar rounding of the 16 pairs
     * (rare flag; the kernel's cost is the ~190 vector operations a row, not these), and the
     * clamped codes below, since with the rounded pair f can leave [0.5, 16). */
    const int f16 = (flags & RB_KV_SZ_F16) != 0;
    if (f16) scale = _mm512_max_ps(scale, _mm512_set1_ps(RB_KV_F16_SCALE_MIN));
    __m512 z = _mm512_div_ps(_mm512_sub_ps(_mm512_setzero_ps(), mn), scale);
    _mm512_store_ps(sc, scale);
    _mm512_store_ps(zz, z);
    if (f16) {
        for (int i = 0; i < 16; i++) {
            sc[i] = rb_f16_round(sc[i]);
            zz[i] = rb_f16_round(zz[i]);
        }
        scale = _mm512_load_ps(sc);
        z = _mm512_load_ps(zz);
    }
    /* sz: scale, z pairs in row order (masked for a partial block) */
    __m512 lo = _mm512_unpacklo_ps(scale, z), hi = _mm512_unpackhi_ps(scale, z);
    __m512 p0 = _mm512_permutex2var_ps(
        lo, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23), hi);
    __m512 p1 = _mm512_permutex2var_ps(
        lo, _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31), hi);
    uint32_t k = n >= 16 ? 0xFFFFFFFFu : (uint32_t) ((1ull << (2 * n)) - 1);
    _mm512_mask_storeu_ps(sz, (__mmask16) k, p0);
    _mm512_mask_storeu_ps(sz + 16, (__mmask16) (k >> 16), p1);
    for (r = 0; r < n; r++) {
        const __m512 vs = _mm512_set1_ps(sc[r]), vz = _mm512_set1_ps(zz[r]);
        __m512 v[16];
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++) v[i] = _mm512_load_ps(buf[r] + 16 * i);
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++) v[i] = _mm512_div_ps(v[i], vs);
        uint8_t *out = packed + r * half;
        if (nv >= 8) {
            RB_UNROLL(16)
            for (int g = 0; g < nv / 2; g += 4) {
                __m512i lo4[4], hi4[4];
                RB_UNROLL(16)
                for (int i = 0; i < 4; i++) {
                    lo4[i] = f16 ? code_clamped(v[g + i], vz) : code_fast(v[g + i], vz);
                    hi4[i] = f16 ? code_clamped(v[g + i + nv / 2], vz)
                                 : code_fast(v[g + i + nv / 2], vz);
                }
                pack64(lo4, hi4, out + 16 * g);
            }
        } else {
            RB_UNROLL(16)
            for (int i = 0; i < nv / 2; i++) {
                __m512i cl = code_clamped(v[i], vz), ch = code_clamped(v[i + nv / 2], vz);
                __m512i bb = _mm512_or_si512(cl, _mm512_slli_epi32(ch, 4));
                _mm_storeu_si128((__m128i *) (out + 16 * i), _mm512_cvtepi32_epi8(bb));
            }
        }
    }
}

/* Rows of d = 16 nv in registers, 16 at a time. */
RB_AI void encode_rows_reg(const float *x, size_t rows, size_t stride, size_t m, unsigned flags,
                           uint8_t *packed, float *sz, const int nv) {
    const size_t half = (size_t) nv * 8;
    for (size_t r = 0; r < rows; r += 16)
        encode_block(x + r * stride, rows - r < 16 ? rows - r : 16, stride, m, flags,
                     packed + r * half, sz + 2 * r, nv);
}

/* Any d that is a multiple of 32: the row goes through an aligned stack copy. */
static void encode_rows_mem(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                            unsigned flags, uint8_t *packed, float *sz) {
    _Alignas(64) float v[RB_KV_INT4_DMAX];
    const rb_fwht16_signs sg = rb_fwht16_signs_make();
    const __m512 vinv = _mm512_set1_ps((float) (1.0 / sqrt((double) m)));
    size_t half = d / 2;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * stride;
        for (size_t j = 0; j < d; j += 16) {
            __m512 a = _mm512_loadu_ps(xr + j);
            if (m > 1) a = rb_fwht16_stages(_mm512_mul_ps(a, vinv), m, &sg);
            _mm512_store_ps(v + j, a);
        }
        for (size_t h = 16; h < m; h *= 2)
            for (size_t i = 0; i < d; i += 2 * h)
                for (size_t j = i; j < i + h; j += 16) {
                    __m512 a = _mm512_load_ps(v + j), c = _mm512_load_ps(v + j + h);
                    _mm512_store_ps(v + j, _mm512_add_ps(a, c));
                    _mm512_store_ps(v + j + h, _mm512_sub_ps(a, c));
                }
        __m512 vmn = _mm512_set1_ps(INFINITY), vmx = _mm512_set1_ps(-INFINITY);
        for (size_t j = 0; j < d; j += 16) {
            __m512 a = _mm512_load_ps(v + j);
            if (flags & RB_KV_BF16) {
                a = bf16_round16(a);
                _mm512_store_ps(v + j, a);
            }
            vmn = _mm512_min_ps(vmn, a);
            vmx = _mm512_max_ps(vmx, a);
        }
        float mn = _mm512_reduce_min_ps(vmn), mx = _mm512_reduce_max_ps(vmx);
        float scale, z;
        rb_kv_scale_zero(mn, mx, flags, &scale, &z);
        const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps(z);
        uint8_t *out = packed + r * half;
        for (size_t j = 0; j < half; j += 16) {
            __m512i lo = code16(_mm512_load_ps(v + j), vs, vz);
            __m512i hi = code16(_mm512_load_ps(v + j + half), vs, vz);
            __m512i b = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4));
            _mm_storeu_si128((__m128i *) (out + j), _mm512_cvtepi32_epi8(b));
        }
        sz[2 * r] = scale;
        sz[2 * r + 1] = z;
    }
}

int rb_kv_int4_encode_f32_avx512(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                                 unsigned flags, uint8_t *packed, float *sz) {
    switch (d) {
    case 32:
        encode_rows_reg(x, rows, stride, m, flags, packed, sz, 2);
        return RB_OK;
    case 64:
        encode_rows_reg(x, rows, stride, m, flags, packed, sz, 4);
        return RB_OK;
    case 128:
        encode_rows_reg(x, rows, stride, m, flags, packed, sz, 8);
        return RB_OK;
    case 256:
        encode_rows_reg(x, rows, stride, m, flags, packed, sz, 16);
        return RB_OK;
    default:
        break;
    }
    if (d % 32) return RB_EDECLINE;
    encode_rows_mem(x, rows, d, stride, m, flags, packed, sz);
    return RB_OK;
}

/* Decode of rows of d = 16 nv in registers: nibbles widened to int32, (q - z) * scale (two
 * roundings, no FMA, as the reference), the same butterflies as the encoder, then 1/sqrt(m). */
RB_AI void decode_rows_reg(const uint8_t *packed, const float *sz, size_t rows, size_t m,
                           float *xhat, size_t ld, const int nv) {
    const rb_fwht16_signs sg = rb_fwht16_signs_make();
    const __m512 vinv = _mm512_set1_ps((float) (1.0 / sqrt((double) m)));
    const __m512i nib = _mm512_set1_epi32(15);
    const size_t half = (size_t) nv * 8;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *in = packed + r * half;
        const __m512 vs = _mm512_set1_ps(sz[2 * r]), vz = _mm512_set1_ps(sz[2 * r + 1]);
        __m512 v[16];
        RB_UNROLL(16)
        for (int i = 0; i < nv / 2; i++) {
            __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (in + 16 * i)));
            __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(e, nib));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(e, 4));
            v[i] = _mm512_mul_ps(_mm512_sub_ps(lo, vz), vs);
            v[i + nv / 2] = _mm512_mul_ps(_mm512_sub_ps(hi, vz), vs);
        }
        if (m > 1) {
            RB_UNROLL(16)
            for (int i = 0; i < nv; i++) v[i] = rb_fwht16_stages(v[i], m, &sg);
            rb_fwht_cross_stages(v, nv, m, 0);
            RB_UNROLL(16)
            for (int i = 0; i < nv; i++) v[i] = _mm512_mul_ps(v[i], vinv);
        }
        float *o = xhat + r * ld;
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++) _mm512_storeu_ps(o + 16 * i, v[i]);
    }
}

int rb_kv_int4_decode_f32_avx512(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                                 size_t m, float *xhat, size_t ld) {
    switch (d) {
    case 32:
        decode_rows_reg(packed, sz, rows, m, xhat, ld, 2);
        return RB_OK;
    case 64:
        decode_rows_reg(packed, sz, rows, m, xhat, ld, 4);
        return RB_OK;
    case 128:
        decode_rows_reg(packed, sz, rows, m, xhat, ld, 8);
        return RB_OK;
    case 256:
        decode_rows_reg(packed, sz, rows, m, xhat, ld, 16);
        return RB_OK;
    default:
        return RB_EDECLINE;
    }
}
