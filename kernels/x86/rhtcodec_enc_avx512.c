/* AVX-512 row-major encode of the fused RHT + codebook codec (kernels/rhtcodec.h) for d = 32 ..
 * 256 (one whole row in registers) and d = K * 2^m (K > 1, 2^m = 16 .. 256, one block of signs:
 * block by block, then the H_K mix), bits 1..4, bit-identical to the reference.
 *
 * Per row: the squared norm as 16 lane sums (the order kernels/vecops.h defines, so no
 * transposes; 16 rows first), |x| and rb_unit_factors' inv, the signs applied
 * as a sign-bit xor while the norm is still in flight, then * inv, the FWHT's stages 1..8 inside
 * each vector and 16.. between vectors (with a second block of signs, * 1 / sqrt(d), its signs
 * and FWHT), and the codebook search, on the unscaled values against thresholds moved to their
 * units, as a binary search whose step s compares against thresholds[n + 2^s - 1] (a vpermps of a
 * shifted table, a blend for the second step): the mask of step s is bit s of the 16 codes, so
 * packing is one pdep per step into the row's bit stream, with no shuffles of codes. For d <= 256
 * the rows of a group the fast path takes whole are software-pipelined: the next row's load and
 * rotation beside this row's search (encode_group).
 *
 * Exactness. Each element gets the reference's operations in its order: u = x * inv (pre = 1),
 * u * d1, the butterflies stage by stage from stride 1, * scale (rb_rows_unit_f32, rb_rht_f32).
 * (x * d1) * inv equals (x * inv) * d1 when d1 is +-1 (round to nearest is symmetric in sign),
 * and x * d1 is then the sign-bit xor; so the signs are checked once per call and other sign
 * vectors decline. An in-vector stage is one exact FMA (kernels/x86/fwht_reg_avx512.h). The
 * search counts the thresholds below v as the reference does, since thresholds ascend (+Inf
 * past k - 1); the reference's last product v * scale is not formed: t < RN(v * scale) exactly
 * when u <= v for u = rb_codebook_unscaled_threshold(t, scale), as rounding is monotone (in cache
 * on a Zen 4: d = 128 b2 39.3 -> 36.5 ns a row, b4 54.6 -> 52.3, d = 1536 b4 755 -> 732). Rows
 * whose norm is not finite, exceeds FLT_MAX or is below 2^-64 (the exact pre-scale) go through the
 * reference one row at a time: it writes them or names the bad one.
 *
 * K > 1 (encode_mixed below): per row, each 2^m block gets * inv, * d1 (in the reference's order,
 * so the signs need not be +-1) and its FWHT in registers, into a row scratch; then for each
 * column vector j the H_K mix of the K blocks' vectors j, summed in k order from +0 as
 * rb_hadamard_f32_ref does, the search (1 / sqrt(d) in its thresholds), and the 16 B code bits
 * stored at their place in the payload (2 B whole bytes per vector, so the mix's order is no
 * constraint). */
#include <immintrin.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/hadamard.h"
#include "kernels/quant.h"
#include "kernels/rhtcodec.h"
#include "kernels/rowcodec.h"
#include "kernels/x86/fwht_reg_avx512.h"
#include "kernels/x86/hmix_avx512.h"
#include "kernels/x86/lanes16_avx512.h"
#include "kernels/x86/simd_util.h"

/* DMAX: the longest row kept in registers; BMAX: the widest code a 64-bit pdep holds for 16
 * elements. */
enum { DMAX = 256, BMAX = 4 };

/* The unnormalized FWHT of a row of nv vectors (one block of 16 nv). */
RB_AI void fwht_row(__m512 *v, const rb_fwht16_signs *s, const int nv) {
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) v[i] = rb_fwht16_stages(v[i], 16 * (size_t) nv, s);
    rb_fwht_cross_stages(v, nv, 16 * (size_t) nv, 0);
}

/* What every row of a call shares, in registers where they fit. */
typedef struct enck {
    rb_fwht16_signs s;
    __m512 scale;
    __m512 thr[BMAX];       /* step s: thresholds + 2^s - 1 (s = B - 1: its first, broadcast) */
    __m512i step[BMAX];     /* step s: 2^s */
    __m512 pair[2];         /* step B - 2's two thresholds, each broadcast */
    const float *sg1, *sg2; /* sign bits of d1, d2 (sg2 NULL: one block) */
} enck;

/* Bits s, s + B, s + 2B, ... of a 16-code group: where pdep puts step s's mask. */
RB_AI uint64_t plane(const int B, const int s) {
    /* 1 + 2^B + 2^2B + ... (16 terms) in closed form, so that it folds to a constant */
    uint64_t all = 16 * B == 64 ? ~0ull : (1ull << (16 * B)) - 1;
    return all / ((1ull << B) - 1) << s;
}

/* The packed 16 B bits of the codes of v (before the scale: the thresholds are unscaled, see
 * enck_init): the binary search's masks, bit s of each code from step s. Step B - 1 compares with
 * one threshold and step B - 2 with one of two (a blend on step B - 1's mask); the later steps'
 * thresholds are a vpermps of their table by the index so far. (The blend in place of a vpermps: b4
 * at d = 128, in cache, 56.5 -> 54.7 ns a row on a Zen 4; blends for step B - 3 as well gained
 * nothing more.) */
RB_AI uint64_t codes16(const enck *K, __m512 v, const int B) {
    __m512i n = _mm512_setzero_si512();
    __mmask16 top = 0;
    uint64_t w = 0;
    RB_UNROLL(4)
    for (int s = B - 1; s >= 0; s--) {
        __m512 t = s == B - 1   ? K->thr[s]
                   : s == B - 2 ? _mm512_mask_blend_ps(top, K->pair[0], K->pair[1])
                                : _mm512_permutexvar_ps(n, K->thr[s]);
        __mmask16 lt = _mm512_cmp_ps_mask(t, v, _CMP_LE_OQ);
        if (s == B - 1) top = lt;
        if (s) n = _mm512_mask_add_epi32(n, lt, n, K->step[s]);
        w |= _pdep_u64((uint64_t) lt, plane(B, s));
    }
    return w;
}

/* The payload of one row: nv groups of 16 B bits, little-endian, stored in 8-byte pieces and an
 * exact tail (bytes past the payload are the norm's, written after). */
RB_AI void put_codes(const enck *K, __m512 *v, uint8_t *out, const int nv, const int B) {
    uint64_t acc = 0;
    int fill = 0, at = 0;
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) {
        uint64_t w = codes16(K, v[i], B);
        acc |= w << fill; /* fill < 64 */
        fill += 16 * B;
        if (fill >= 64) {
            memcpy(out + at, &acc, 8);
            at += 8;
            fill -= 64;
            acc = fill ? w >> (16 * B - fill) : 0;
        }
    }
    if (fill) memcpy(out + at, &acc, (size_t) fill / 8);
}

/* Row x's vectors with the first signs applied (x * d1, exact: a sign-bit xor). */
RB_AI void load_row(const enck *K, const float *x, __m512 *v, const int nv) {
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++)
        v[i] = _mm512_xor_ps(_mm512_loadu_ps(x + 16 * i), _mm512_load_ps(K->sg1 + 16 * i));
}

/* The row's rotation after the first signs: * inv, FWHT (with a second block: * scale, its
 * signs, FWHT). */
RB_AI void rotate_row(const enck *K, __m512 *v, float inv, const int nv) {
    const __m512 vi = _mm512_set1_ps(inv);
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++) v[i] = _mm512_mul_ps(v[i], vi);
    fwht_row(v, &K->s, nv);
    if (K->sg2) {
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++)
            v[i] = _mm512_xor_ps(_mm512_mul_ps(v[i], K->scale), _mm512_load_ps(K->sg2 + 16 * i));
        fwht_row(v, &K->s, nv);
    }
}

/* A rotated row's payload (search, pack) and the norm after it. */
RB_AI void put_row(const enck *K, __m512 *v, float norm, uint8_t *out, const int nv, const int B) {
    put_codes(K, v, out, nv, B);
    memcpy(out + 2 * nv * B, &norm, sizeof norm);
}

typedef struct encc {
    const rb_rhtcodec *p;
    const float *sg1, *sg2;
    void *scratch;
} encc;

/* The FWHT signs, the scale 1 / sqrt(n) (n = d, the whole row, also for K > 1) and the search
 * tables of B bits in the unscaled units (rb_codebook_unscaled_threshold), for both row-major
 * paths. */
RB_AI void enck_init(enck *K, const float *scaled_thr, size_t n, const int B) {
    K->s = rb_fwht16_signs_make();
    const float scale = (float) (1.0 / sqrt((double) n));
    K->scale = _mm512_set1_ps(scale);
    /* what the search reads: the tables of steps s <= B - 3 (2^s - 1 .. 2^s + 14), the pair
     * (2^(B-2) - 1 + 2^(B-1) at most) and thresholds[2^(B-1) - 1], +Inf past k - 1 */
    float thr[(1 << (BMAX - 3)) + 15];
    for (size_t i = 0; i < sizeof thr / sizeof thr[0]; i++)
        thr[i] = rb_codebook_unscaled_threshold(scaled_thr[i], scale);
    /* The first step (s = B - 1) compares every lane with one threshold: n = 0 there; step
     * B - 2 blends pair (below) and reads no table. */
    RB_UNROLL(4)
    for (int s = 0; s < B; s++)
        K->thr[s] = s == B - 1  ? _mm512_set1_ps(thr[(1 << s) - 1])
                    : s < B - 2 ? _mm512_loadu_ps(thr + (1 << s) - 1)
                                : _mm512_setzero_ps();
    RB_UNROLL(4)
    for (int s = 0; s < B; s++) K->step[s] = _mm512_set1_epi32(1 << s);
    if (B >= 2) {
        K->pair[0] = _mm512_set1_ps(thr[(1 << (B - 2)) - 1]);
        K->pair[1] = _mm512_set1_ps(thr[(1 << (B - 2)) - 1 + (1 << (B - 1))]);
    }
}

/* Rows are taken NORM_GROUP at a time: first their norms and factors (independent chains, so the
 * reductions' and the square roots' latencies overlap), then the rows themselves. */
enum { NORM_GROUP = 16 };

/* The group's |x| and inv for rows of d floats; the mask of rows the fast path takes: norm
 * finite, <= FLT_MAX and at least RB_UNIT_TINY (below it rb_unit_factors pre-scales; a zero row
 * is among those, cheaply). */
static uint32_t group_factors(const float *x, size_t n, size_t ldx, size_t d, float *inv,
                              float *norm) {
    _Alignas(64) double nrm[NORM_GROUP];
    /* One row at a time: interleaving 4 rows' chains (norms4, tried) was faster in cache but
     * slower from memory (1M x 128 b2: 47-48 against 37 ms; 64K x 1536: 41-43 against 33-35). */
    for (size_t q = 0; q < NORM_GROUP; q++)
        nrm[q] = q < n ? rb_lanes16_dot(x + q * ldx, x + q * ldx, d) : 1.0;
    /* sqrt, 1 / s and the checks 8 rows a vector (the same correctly rounded operations) */
    uint32_t fast = 0;
    RB_UNROLL(2)
    for (int h = 0; h < NORM_GROUP / 8; h++) {
        __m512d s = _mm512_sqrt_pd(_mm512_load_pd(nrm + 8 * h));
        __mmask8 ok = _mm512_cmp_pd_mask(s, _mm512_set1_pd(FLT_MAX), _CMP_LE_OQ) &
                      _mm512_cmp_pd_mask(s, _mm512_set1_pd(RB_UNIT_TINY), _CMP_GE_OQ);
        _mm256_storeu_ps(norm + 8 * h, _mm512_cvtpd_ps(s));
        _mm256_storeu_ps(inv + 8 * h, _mm512_cvtpd_ps(_mm512_div_pd(_mm512_set1_pd(1.0), s)));
        fast |= (uint32_t) ok << (8 * h);
    }
    return n == NORM_GROUP ? fast : fast & ((1u << n) - 1);
}

/* A group of n >= 1 rows, all taken by the fast path, software-pipelined: row q + 1 is loaded and
 * rotated in the same iteration as row q is searched and packed, so the out-of-order window sees
 * two independent chains side by side (one row's butterflies, the other's compare -> permute
 * search steps) instead of one row's long chain after another's. In cache on a Zen 4, 1 thread,
 * ns a row (before: each row start to end, two side by side for d <= 128): d = 128 b2 36.4 -> 33.5,
 * b4 52.3 -> 45.3 (47.0 from memory against 53.9), d = 64 b4 29.0 -> 23.7, d = 256 b4 100.5
 * -> 96.1; b1 30.9 -> 31.4 at d = 128. (Two passes over the group instead, every row rotated into a
 * buffer, then every row searched: 47.1 in cache but 57.5 from memory at d = 128 b4.) */
RB_AI void encode_group(const enck *K, const float *x, size_t n, size_t ldx, const float *inv,
                        const float *norm, uint8_t *codes, size_t ldc, const int nv, const int B) {
    __m512 cur[16], next[16];
    load_row(K, x, cur, nv);
    rotate_row(K, cur, inv[0], nv);
    for (size_t q = 0; q + 1 < n; q++) {
        load_row(K, x + (q + 1) * ldx, next, nv);
        rotate_row(K, next, inv[q + 1], nv);
        put_row(K, cur, norm[q], codes + q * ldc, nv, B);
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++) cur[i] = next[i];
    }
    put_row(K, cur, norm[n - 1], codes + (n - 1) * ldc, nv, B);
}

/* Rows of d = 16 nv at B bits (constants where inlined), NORM_GROUP at a time: a group whose rows
 * the fast path all takes goes through encode_group; otherwise row by row, a row the fast path
 * does not take through the reference alone, in order (it writes the row or names it). */
RB_AI int encode_rows(const encc *c, const float *x, size_t rows, size_t ldx, uint8_t *codes,
                      size_t ldc, size_t row0, const int nv, const int B) {
    enck K;
    enck_init(&K, c->p->cb->thresholds, (size_t) (16 * nv), B);
    K.sg1 = c->sg1;
    K.sg2 = c->sg2;
    for (size_t g0 = 0; g0 < rows; g0 += NORM_GROUP) {
        size_t n = rows - g0 < NORM_GROUP ? rows - g0 : NORM_GROUP;
        const float *xg = x + g0 * ldx;
        uint8_t *cg = codes + g0 * ldc;
        float inv[NORM_GROUP], norm[NORM_GROUP];
        uint32_t fast = group_factors(xg, n, ldx, 16 * (size_t) nv, inv, norm);
        if (fast == (1u << n) - 1) {
            encode_group(&K, xg, n, ldx, inv, norm, cg, ldc, nv, B);
            continue;
        }
        for (size_t q = 0; q < n; q++) {
            if ((fast >> q) & 1) {
                __m512 v[16];
                load_row(&K, xg + q * ldx, v, nv);
                rotate_row(&K, v, inv[q], nv);
                put_row(&K, v, norm[q], cg + q * ldc, nv, B);
            } else {
                int rc = rb_rhtcodec_encode_f32_ref(c->p, xg + q * ldx, 1, ldx, cg + q * ldc, ldc,
                                                    row0 + g0 + q, c->scratch);
                if (rc) return rc;
            }
        }
    }
    return RB_OK;
}

typedef int (*rows_fn)(const encc *c, const float *x, size_t rows, size_t ldx, uint8_t *codes,
                       size_t ldc, size_t row0);

#define INST(NV, B)                                                                    \
    static int rows_##NV##_##B(const encc *c, const float *x, size_t rows, size_t ldx, \
                               uint8_t *codes, size_t ldc, size_t row0) {              \
        return encode_rows(c, x, rows, ldx, codes, ldc, row0, NV, B);                  \
    }
#define INST_NV(NV) INST(NV, 1) INST(NV, 2) INST(NV, 3) INST(NV, 4)
INST_NV(2)
INST_NV(4)
INST_NV(8)
INST_NV(16)
#define ROW_NV(NV) \
    { rows_##NV##_1, rows_##NV##_2, rows_##NV##_3, rows_##NV##_4 }
static const rows_fn row_fns[4][BMAX] = {ROW_NV(2), ROW_NV(4), ROW_NV(8), ROW_NV(16)};

/* ---- d = K * 16 nv, K > 1: blocks in registers, the H_K mix through a row scratch ---- */

/* What the rows of a K > 1 call share: the mix (kernels/x86/hmix_avx512.h) over the caller's
 * scratch, which a reference fallback reuses: the offset table is rebuilt after one (rare: bad or
 * tiny rows). */
typedef struct mixk {
    enck e; /* thresholds in the units before the mix's scale 1 / sqrt(d) */
    const float *d1;
    const int8_t *hk;
    rb_hmix h; /* h.T: the row after the block FWHTs */
} mixk;

/* Each 16 nv block of row x: u = x * inv, u * d1 (rb_rows_unit_f32 then the RHT's signs, in that
 * order, so any d1 gives the reference's bits), its unnormalized FWHT, into T. */
RB_AI void row_blocks(const mixk *M, const float *x, float inv, const int nv) {
    const __m512 vi = _mm512_set1_ps(inv);
    for (size_t k = 0; k < M->h.K; k++) {
        const float *xk = x + k * 16 * (size_t) nv, *dk = M->d1 + k * 16 * (size_t) nv;
        __m512 v[16];
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++)
            v[i] = _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(xk + 16 * i), vi),
                                 _mm512_loadu_ps(dk + 16 * i));
        fwht_row(v, &M->e.s, nv);
        RB_UNROLL(16)
        for (int i = 0; i < nv; i++) M->h.T[k * (size_t) nv + (size_t) i] = v[i];
    }
}

/* Output vector (i, j) of the mix, acc, searched (the scale is in the thresholds): its 16 B code
 * bits are bytes 2 B (i nv + j) .. of the payload (whole bytes, so the vectors are stored in any
 * order). */
RB_AI void put16(const enck *K, __m512 acc, uint8_t *out, size_t at, const int B) {
    uint64_t w = codes16(K, acc, B);
    memcpy(out + 2 * (size_t) B * at, &w, 2 * (size_t) B);
}

/* For each column vector j the H_K mix, then the search and the packing. */
RB_AI void mix_row(const mixk *M, uint8_t *out, const int nv, const int B, const int h12) {
    for (int j = 0; j < nv; j++) {
        if (h12) {
            __m512 c[12];
            rb_hmix12_load(M->h.T, nv, j, c);
            RB_UNROLL(12)
            for (int i = 0; i < 12; i++)
                put16(&M->e, rb_hmix12_out(c, i, 0), out, (size_t) (i * nv + j), B);
            continue;
        }
        rb_hmix_column(&M->h, (size_t) nv, (size_t) j);
        for (size_t i = 0; i < M->h.K; i++)
            put16(&M->e, M->h.out[i], out, i * (size_t) nv + (size_t) j, B);
    }
}

/* Rows of d = K * 16 nv at B bits: the norms of a group first (as encode_rows), then each row
 * through the blocks and the mix; rows the fast path does not take go through the reference. */
RB_AI int encode_rows_mix(const encc *c, mixk *M, const float *x, size_t rows, size_t ldx,
                          uint8_t *codes, size_t ldc, size_t row0, const int nv, const int B,
                          const int h12) {
    const size_t d = c->p->d, payload = 2 * (size_t) B * M->h.K * (size_t) nv;
    enck_init(&M->e, c->p->cb->thresholds, d, B);
    int fresh = 0; /* whether the offset table is intact */
    for (size_t g0 = 0; g0 < rows; g0 += NORM_GROUP) {
        size_t n = rows - g0 < NORM_GROUP ? rows - g0 : NORM_GROUP;
        const float *xg = x + g0 * ldx;
        uint8_t *cg = codes + g0 * ldc;
        float inv[NORM_GROUP], norm[NORM_GROUP];
        uint32_t fast = group_factors(xg, n, ldx, d, inv, norm);
        for (size_t q = 0; q < n; q++) {
            if ((fast >> q) & 1) {
                if (!h12 && !fresh) rb_hmix_signs(&M->h, M->hk, 0), fresh = 1;
                row_blocks(M, xg + q * ldx, inv[q], nv);
                mix_row(M, cg + q * ldc, nv, B, h12);
                memcpy(cg + q * ldc + payload, &norm[q], sizeof norm[q]);
            } else {
                int rc = rb_rhtcodec_encode_f32_ref(c->p, xg + q * ldx, 1, ldx, cg + q * ldc, ldc,
                                                    row0 + g0 + q, c->scratch);
                if (rc) return rc;
                fresh = 0;
            }
        }
    }
    return RB_OK;
}

typedef int (*mix_fn)(const encc *c, mixk *M, const float *x, size_t rows, size_t ldx,
                      uint8_t *codes, size_t ldc, size_t row0);

#define MINST(NV, B, H)                                                                    \
    static int mix_##NV##_##B##_##H(const encc *c, mixk *M, const float *x, size_t rows,   \
                                    size_t ldx, uint8_t *codes, size_t ldc, size_t row0) { \
        return encode_rows_mix(c, M, x, rows, ldx, codes, ldc, row0, NV, B, H);            \
    }
#define MINST_NV(NV) \
    MINST(NV, 1, 0)  \
    MINST(NV, 2, 0)  \
    MINST(NV, 3, 0) MINST(NV, 4, 0) MINST(NV, 1, 1) MINST(NV, 2, 1) MINST(NV, 3, 1) MINST(NV, 4, 1)
MINST_NV(1)
MINST_NV(2)
MINST_NV(4)
MINST_NV(8)
MINST_NV(16)
#define MIX_NV(NV)                                                          \
    {                                                                       \
        {mix_##NV##_1_0, mix_##NV##_2_0, mix_##NV##_3_0, mix_##NV##_4_0}, { \
            mix_##NV##_1_1, mix_##NV##_2_1, mix_##NV##_3_1, mix_##NV##_4_1  \
        }                                                                   \
    }
/* [log2 nv][h12][bits - 1] */
static const mix_fn mix_fns[5][2][BMAX] = {MIX_NV(1), MIX_NV(2), MIX_NV(4), MIX_NV(8), MIX_NV(16)};

/* d = K * 2^m with K > 1 and 2^m = 16 .. 256, one block of signs, bits 1..4; else declines. */
static int encode_mixed(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                        uint8_t *codes, size_t ldc, size_t row0, void *scratch) {
    size_t K;
    int m;
    if (p->d2 || rb_hadamard_lookup(p->d, &K, &m)) return RB_EDECLINE;
    if (K == 1 || m < 4 || m > 8 || K > RB_HADAMARD_KMAX || K % 4) return RB_EDECLINE;
    mixk M;
    M.d1 = p->d1;
    M.hk = rb_hadamard_matrix(K);
    int h12 = K == 12 && memcmp(M.hk, rb_h12_paley, sizeof rb_h12_paley) == 0;
    /* [T: d floats][out: K vectors][sg: K x K floats], inside rb_rhtcodec_scratch_bytes(d)
     * (at least 160 d bytes) */
    __m512 *T = (__m512 *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63);
    M.h = (rb_hmix){K, T, T + p->d / 16, (float *) (T + p->d / 16 + K)};
    encc c = {p, NULL, NULL, scratch};
    return mix_fns[m - 4][h12][p->bits - 1](&c, &M, x, rows, ldx, codes, ldc, row0);
}

int rb_rhtcodec_encode_rows_f32_avx512(const rb_rhtcodec *p, const float *x, size_t rows,
                                       size_t ldx, uint8_t *codes, size_t ldc, size_t row0,
                                       void *scratch) {
    size_t d = p->d;
    if (p->bits < 1 || p->bits > BMAX) return RB_EDECLINE;
    if (d > DMAX || (d & (d - 1))) return encode_mixed(p, x, rows, ldx, codes, ldc, row0, scratch);
    if (d < 32) return RB_EDECLINE;
    _Alignas(64) float sg[2][DMAX];
    /* the signs as sign bits (+-0), applied by xor */
    if (!rb_fold_signs(p->d1, d, 0.0f, sg[0]) || (p->d2 && !rb_fold_signs(p->d2, d, 0.0f, sg[1])))
        return RB_EDECLINE;
    int lg = d == 32 ? 0 : d == 64 ? 1 : d == 128 ? 2 : 3;
    encc c = {p, sg[0], p->d2 ? sg[1] : NULL, scratch};
    return row_fns[lg][p->bits - 1](&c, x, rows, ldx, codes, ldc, row0);
}
