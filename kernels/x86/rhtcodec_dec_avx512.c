/* AVX-512 row-major decode of the fused RHT + codebook codec (kernels/rhtcodec.h) for d = 32 ..
 * 256 (one whole row in registers) and d = K * 2^m (K > 1, 2^m = 16 .. 256: block by block
 * through registers, then the H_K mix), bit-identical to the reference.
 *
 * A row stays in its own nv = d / 16 registers, so the two 16 x 16 transposes per 16 rows (in
 * and out) of the transposed kernel disappear (the encode does the same, rhtcodec_enc_avx512.c).
 * Per row: the payload in one to four masked
 * loads, each vector's 16 codes picked out with a dword permute and variable shifts (a code that
 * straddles two dwords takes a second permute), the centroid lookup as a permute (k <= 32) or a
 * gather, the FWHT's stages 1..8 inside each vector and 16.. between vectors, the scale folded
 * into the signs, the norm last.
 *
 * Exactness. Each element gets the reference's operations in its order: the butterflies stage by
 * stage from stride 1 (the pairs of a stage are independent), then * (1 / sqrt(d)), * d1, * |x|
 * (rb_fwht_f32, rb_rows_mul_f32, rb_rows_scale_f32). An in-vector stage is one FMA x * (+-1) +
 * partner: x * +-1 is exact and the FMA rounds once, so it is a + c or a - c bit for bit, signed
 * zeros included (kernels/x86/fwht_reg_avx512.h). (x * s) * d1 equals x * (s * d1) exactly when
 * d1 is +-1 (round to nearest is symmetric in sign), so the signs are checked once per call and
 * other sign vectors decline. Two blocks (d2): inverse FWHT, * s d2, inverse FWHT, * s d1. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/hadamard.h"
#include "kernels/quant.h"
#include "kernels/rhtcodec.h"
#include "kernels/x86/fwht_reg_avx512.h"
#include "kernels/x86/hmix_avx512.h"
#include "kernels/x86/simd_util.h"

/* DMAX: the longest row kept in registers; ZMAX: its payload, at most 256 * 8 bits, in zmm;
 * ROWS: rows decoded side by side for d <= 128 (two independent chains fill the registers). */
enum { DMAX = 256, ZMAX = 4, ROWS = 2 };

/* The whole unnormalized FWHT of a row of nv vectors (one block of 16 nv); fma_sub as
 * rb_fwht_cross_stage's. */
RB_AI void fwht_row(__m512 *v, const rb_fwht16_signs *s, const int nv, const int fma_sub) {
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) v[i] = rb_fwht16_stages(v[i], 16 * (size_t) nv, s);
    rb_fwht_cross_stages(v, nv, 16 * (size_t) nv, fma_sub);
}

/* Lane l of vector i holds code 16 i + l, at bit P(l) = 16 B i + l B of the payload: dword P / 32
 * (counted from zmm z = 16 B i / 512, the first of the permute's two sources) and shift P % 32.
 * Constant expressions where inlined with constant B, i. */
#define POS(l)  (16 * B * i + B * (l))
#define WIDX(l) ((POS(l) >> 5) - 16 * z + add)
#define LANES(F)                                                                                   \
    F(0), F(1), F(2), F(3), F(4), F(5), F(6), F(7), F(8), F(9), F(10), F(11), F(12), F(13), F(14), \
        F(15)
#define SHIFT(l) (POS(l) & 31)

RB_AI __m512i word_index(const int B, const int i, const int add) {
    const int z = 16 * B * i / 512;
    return (__m512i) (__v16si){LANES(WIDX)};
}

RB_AI __m512i shift_count(const int B, const int i) {
    return (__m512i) (__v16si){LANES(SHIFT)};
}

#define TIMES(l) (B * (l))
RB_AI __m512i lane_times(const int B) {
    return (__m512i) (__v16si){LANES(TIMES)};
}

/* The 16 codes of vector i, in the low B bits of each lane (higher bits: the next codes). */
RB_AI __m512i codes16(const __m512i *Z, const int B, const int i) {
    const int z = 16 * B * i / 512;
    __m512i sh = shift_count(B, i);
    __m512i t =
        _mm512_srlv_epi32(_mm512_permutex2var_epi32(Z[z], word_index(B, i, 0), Z[z + 1]), sh);
    if (32 % B) { /* codes that straddle a dword: the next dword's low bits (count 32 gives 0) */
        __m512i hi = _mm512_permutex2var_epi32(Z[z], word_index(B, i, 1), Z[z + 1]);
        t = _mm512_or_si512(t, _mm512_sllv_epi32(hi, _mm512_sub_epi32(_mm512_set1_epi32(32), sh)));
    }
    return t;
}

/* What every row of a call shares. */
typedef struct rowc {
    const rb_codebook *cb;
    const float *sd1, *sd2; /* scale * d1, scale * d2 (NULL: one block) */
    int check_k;            /* k < 2^bits: codes >= k are possible and an error */
    int stream;
} rowc;

/* The constants of a call, in registers (copied out of rowc: the stores to y could alias it). */
typedef struct rowk {
    rb_fwht16_signs s;
    __m512 c0, c1;
    __m512i bmask, kk;
    const float *cent, *sd1, *sd2;
    size_t k;
    int check_k, stream;
} rowk;

RB_AI rowk rowk_make(const rowc *rc, const int B) {
    return (rowk){rb_fwht16_signs_make(),
                  _mm512_loadu_ps(rc->cb->centroids),
                  _mm512_loadu_ps(rc->cb->centroids + 16),
                  _mm512_set1_epi32((1 << B) - 1),
                  _mm512_set1_epi32((int) rc->cb->k),
                  rc->cb->centroids,
                  rc->sd1,
                  rc->sd2,
                  rc->cb->k,
                  rc->check_k,
                  rc->stream};
}

/* Unpacks row `in` and looks its centroids up into v; the mask of codes >= k. */
RB_AI __mmask16 load_row(const rowk *K, const uint8_t *in, __m512 *v, const int nv, const int B) {
    const int payload = 2 * nv * B;
    __m512i Z[ZMAX + 1];
    RB_UNROLL(5)
    for (int zz = 0; zz <= ZMAX; zz++) {
        /* only the permute path reads Z (B >= 3) */
        int left = B <= 2 ? 0 : payload - 64 * zz;
        Z[zz] = left >= 64 ? _mm512_loadu_si512(in + 64 * zz)
                : left > 0 ? _mm512_maskz_loadu_epi8((__mmask64) ((1ull << left) - 1), in + 64 * zz)
                           : _mm512_setzero_si512();
    }
    __mmask16 big = 0;
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) {
        __m512i t;
        if (B <= 2) { /* 16 codes in the 2 B bytes at 2 B i: a broadcast load, no shuffle */
            uint32_t w;
            memcpy(&w, in + 2 * B * i, sizeof w);
            t = _mm512_srlv_epi32(_mm512_set1_epi32((int) w), lane_times(B));
        } else {
            t = codes16(Z, B, i);
        }
        /* B = 4 with k = 16: vpermps reads only the low 4 bits, no mask needed */
        if (B != 4 || K->check_k) t = _mm512_and_si512(t, K->bmask);
        if (K->check_k) big |= _mm512_cmpge_epu32_mask(t, K->kk);
        v[i] = B <= 4 || K->k <= 16   ? _mm512_permutexvar_ps(t, K->c0)
               : B <= 5 || K->k <= 32 ? _mm512_permutex2var_ps(K->c0, t, K->c1)
                                      : _mm512_i32gather_ps(t, K->cent, 4);
    }
    return big;
}

/* Output vector `at` (floats from o) of a row: acc, the transform's sum before the reference's
 * * (1 / sqrt(d)), times scale * d1 (folded) and the norm, streamed or stored. */
RB_AI void put_out(const rowk *K, __m512 acc, __m512 norm, float *o, size_t at) {
    __m512 w = _mm512_mul_ps(_mm512_mul_ps(acc, _mm512_load_ps(K->sd1 + at)), norm);
    if (K->stream)
        _mm512_stream_ps(o + at, w);
    else
        _mm512_storeu_ps(o + at, w);
}

/* The inverse RHT of v, times the norm stored after the payload, into o. */
RB_AI void finish_row(const rowk *K, const uint8_t *in, __m512 *v, float *o, const int nv,
                      const int B) {
    fwht_row(v, &K->s, nv, 0);
    if (K->sd2) {
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++) v[i] = _mm512_mul_ps(v[i], _mm512_load_ps(K->sd2 + 16 * i));
        fwht_row(v, &K->s, nv, 0);
    }
    float nf;
    memcpy(&nf, in + 2 * nv * B, sizeof nf);
    const __m512 norm = _mm512_set1_ps(nf);
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) put_out(K, v[i], norm, o, 16 * (size_t) i);
}

/* Rows of d = 16 nv at B bits (both constants where inlined), R at a time where R rows fit the
 * registers (independent chains side by side). Returns 1 at the first group of rows that holds a
 * code >= k (before storing it), else 0. */
RB_AI int decode_rows(const rowc *rc, const uint8_t *codes, size_t ldc, size_t rows, float *y,
                      size_t ldy, const int nv, const int B) {
    const rowk K = rowk_make(rc, B);
    enum { R = ROWS };
    size_t r = 0;
    if (nv <= 8)
        for (; r + R <= rows; r += R) {
            __m512 v[R][16];
            __mmask16 big = 0;
            RB_UNROLL(4)
            for (int q = 0; q < R; q++) big |= load_row(&K, codes + (r + q) * ldc, v[q], nv, B);
            if (big) return 1;
            RB_UNROLL(4)
            for (int q = 0; q < R; q++)
                finish_row(&K, codes + (r + q) * ldc, v[q], y + (r + q) * ldy, nv, B);
        }
    for (; r < rows; r++) {
        __m512 v[16];
        if (load_row(&K, codes + r * ldc, v, nv, B)) return 1;
        finish_row(&K, codes + r * ldc, v, y + r * ldy, nv, B);
    }
    return 0;
}

typedef int (*rows_fn)(const rowc *rc, const uint8_t *codes, size_t ldc, size_t rows, float *y,
                       size_t ldy);

/* ---- d = K * 16 nv, K > 1: blocks through registers into a row scratch, then the H_K^T mix ----
 */

/* One row: each block's codes looked up and its unnormalized FWHT in registers, into M->T; then
 * for each column vector j the inverse mix (kernels/x86/hmix_avx512.h: H_K transposed, the
 * reference's RB_INVERSE), * scale d1, * |x|. Returns 1 if a code >= k was seen (before anything
 * of the row is stored). */
RB_AI int mixed_row(const rowk *K, const rb_hmix *M, const uint8_t *in, float *o, const int nv,
                    const int B, const int h12) {
    const size_t P = 16 * (size_t) nv;
    for (size_t k = 0; k < M->K; k++) {
        __m512 v[16];
        if (load_row(K, in + 2 * (size_t) nv * (size_t) B * k, v, nv, B)) return 1;
        /* H_12's mix that follows is half additions, on the busier pipes (the generic mix is
         * all FMAs): in cache, 1 thread, d = 1536 b2 470-471 -> 458-459 ns a row, b4 487-500 ->
         * 482-484 */
        fwht_row(v, &K->s, nv, h12);
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++) M->T[k * (size_t) nv + (size_t) i] = v[i];
    }
    float nf;
    memcpy(&nf, in + 2 * (size_t) nv * (size_t) B * M->K, sizeof nf);
    const __m512 norm = _mm512_set1_ps(nf);
    for (int j = 0; j < nv; j++) {
        if (h12) {
            __m512 c[12];
            rb_hmix12_load(M->T, nv, j, c);
            RB_UNROLL(12)
            for (int i = 0; i < 12; i++)
                put_out(K, rb_hmix12_out(c, i, 1), norm, o, (size_t) i * P + 16 * (size_t) j);
            continue;
        }
        rb_hmix_column(M, (size_t) nv, (size_t) j);
        for (size_t i = 0; i < M->K; i++) put_out(K, M->out[i], norm, o, i * P + 16 * (size_t) j);
    }
    return 0;
}

/* Rows of d = K * 16 nv at B bits. Returns 1 at the first row that holds a code >= k (the rows
 * before it are written), else 0. */
RB_AI int decode_rows_mixed(const rowc *rc, const rb_hmix *M, const uint8_t *codes, size_t ldc,
                            size_t rows, float *y, size_t ldy, const int nv, const int B,
                            const int h12) {
    const rowk K = rowk_make(rc, B);
    for (size_t r = 0; r < rows; r++)
        if (mixed_row(&K, M, codes + r * ldc, y + r * ldy, nv, B, h12)) return 1;
    return 0;
}

typedef int (*mixed_fn)(const rowc *rc, const rb_hmix *M, const uint8_t *codes, size_t ldc,
                        size_t rows, float *y, size_t ldy);
#define MINST(NV, B, H)                                                                       \
    static int mixed_##NV##_##B##_##H(const rowc *rc, const rb_hmix *M, const uint8_t *codes, \
                                      size_t ldc, size_t rows, float *y, size_t ldy) {        \
        return decode_rows_mixed(rc, M, codes, ldc, rows, y, ldy, NV, B, H);                  \
    }
#define MINST_B(NV, H) MINST(NV, 1, H) MINST(NV, 2, H) MINST(NV, 3, H) MINST(NV, 4, H)
#define MINST_NV(NV)   MINST_B(NV, 0) MINST_B(NV, 1)
MINST_NV(1)
MINST_NV(2)
MINST_NV(4)
MINST_NV(8)
MINST_NV(16)
#define MIXED_NV(NV)                                                                \
    {                                                                               \
        {mixed_##NV##_1_0, mixed_##NV##_2_0, mixed_##NV##_3_0, mixed_##NV##_4_0}, { \
            mixed_##NV##_1_1, mixed_##NV##_2_1, mixed_##NV##_3_1, mixed_##NV##_4_1  \
        }                                                                           \
    }
/* [log2 nv][h12][bits - 1] */
static const mixed_fn mixed_fns[5][2][4] = {MIXED_NV(1), MIXED_NV(2), MIXED_NV(4), MIXED_NV(8),
                                            MIXED_NV(16)};

/* d = K * 2^m with K > 1 and 2^m = 16 .. 256, one block of +-1 signs, bits 1..4; else declines.
 * sd: room for d floats, 64-byte aligned (scale * d1 goes there). */
static int decode_mixed(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                        float *y, size_t ldy, unsigned flags, void *scratch, int *big) {
    size_t K;
    int m;
    if (p->d2 || p->bits > 4 || rb_hadamard_lookup(p->d, &K, &m)) return RB_EDECLINE;
    if (K == 1 || m < 4 || m > 8 || K > RB_HADAMARD_KMAX || K % 4) return RB_EDECLINE;
    const int8_t *hk = rb_hadamard_matrix(K);
    int h12 = K == 12 && memcmp(hk, rb_h12_paley, sizeof rb_h12_paley) == 0;
    /* [T: d floats][sd: d floats][out: K vectors][sg: K x K floats], inside
     * rb_rhtcodec_scratch_bytes(d) (at least 160 d bytes) */
    __m512 *T = (__m512 *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63);
    float *sd = (float *) (T + p->d / 16);
    __m512 *out = (__m512 *) (sd + p->d);
    const rb_hmix M = {K, T, out, (float *) (out + K)};
    if (!rb_fold_signs(p->d1, p->d, (float) (1.0 / sqrt((double) p->d)), sd)) return RB_EDECLINE;
    if (!h12) rb_hmix_signs(&M, hk, 1);
    rowc rc = {p->cb, sd, NULL, p->cb->k < ((size_t) 1 << p->bits),
               (flags & RB_RHTCODEC_STREAM) && (uintptr_t) y % 64 == 0 && ldy % 16 == 0};
    *big = mixed_fns[m - 4][h12][p->bits - 1](&rc, &M, codes, ldc, rows, y, ldy);
    if (rc.stream) _mm_sfence();
    return RB_OK;
}

#define INST(NV, B)                                                                           \
    static int rows_##NV##_##B(const rowc *rc, const uint8_t *codes, size_t ldc, size_t rows, \
                               float *y, size_t ldy) {                                        \
        return decode_rows(rc, codes, ldc, rows, y, ldy, NV, B);                              \
    }
#define INST_NV(NV) \
    INST(NV, 1) INST(NV, 2) INST(NV, 3) INST(NV, 4) INST(NV, 5) INST(NV, 6) INST(NV, 7) INST(NV, 8)
INST_NV(2)
INST_NV(4)
INST_NV(8)
INST_NV(16)
#define ROW_NV(NV)                                                                                \
    {                                                                                             \
        rows_##NV##_1, rows_##NV##_2, rows_##NV##_3, rows_##NV##_4, rows_##NV##_5, rows_##NV##_6, \
            rows_##NV##_7, rows_##NV##_8                                                          \
    }
static const rows_fn row_fns[4][8] = {ROW_NV(2), ROW_NV(4), ROW_NV(8), ROW_NV(16)};

int rb_rhtcodec_decode_rows_f32_avx512(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc,
                                       size_t rows, float *y, size_t ldy, unsigned flags,
                                       void *scratch) {
    size_t d = p->d;
    if (d > DMAX || (d & (d - 1))) {
        int big = 0, rc = decode_mixed(p, codes, ldc, rows, y, ldy, flags, scratch, &big);
        /* A code >= k: the reference redoes the call and names the code. */
        if (rc == RB_OK && big)
            return rb_rhtcodec_decode_f32_ref(p, codes, ldc, rows, y, ldy, flags, scratch);
        return rc;
    }
    if (d < 32) return RB_EDECLINE;
    _Alignas(64) float sd[2][DMAX];
    float scale = (float) (1.0 / sqrt((double) d));
    if (!rb_fold_signs(p->d1, d, scale, sd[0]) || (p->d2 && !rb_fold_signs(p->d2, d, scale, sd[1])))
        return RB_EDECLINE;
    int lg = d == 32 ? 0 : d == 64 ? 1 : d == 128 ? 2 : 3;
    rowc rc = {p->cb, sd[0], p->d2 ? sd[1] : NULL, p->cb->k < ((size_t) 1 << p->bits),
               (flags & RB_RHTCODEC_STREAM) && (uintptr_t) y % 64 == 0 && ldy % 16 == 0};
    int big = row_fns[lg][p->bits - 1](&rc, codes, ldc, rows, y, ldy);
    if (rc.stream) _mm_sfence(); /* order the streamed rows before anything that follows */
    /* A code >= k: the reference redoes the call and names the code. */
    if (big) return rb_rhtcodec_decode_f32_ref(p, codes, ldc, rows, y, ldy, flags, scratch);
    return RB_OK;
}
