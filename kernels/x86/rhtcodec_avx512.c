/* AVX-512 fused RHT + codebook codec (kernels/rhtcodec.h), bit-identical to the references.
 *
 * Rows go 32 at a time through two transposed tiles: column j of 16 rows is one zmm, so every
 * stage after the norms (computed row by row first, kernels/x86/lanes16_avx512.h) is
 * lane-wise: the FWHT's butterflies pair whole registers (no shuffles), the H_K mix, the
 * codebook search and the packing work on columns, and only the packed code words (and the
 * decoded floats) are transposed back. Each element sees the reference's operations in the
 * reference's order: the norms' sums (FMA of an exact double product rounds where the add
 * does), the FWHT's stages from stride 1 up (pairs within a stage are independent), the mix
 * summed in k order from +0, multiplies by +-1 signs and by the scale where the reference has
 * them. */
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
#include "kernels/x86/cbsearch_avx512.h"
#include "kernels/x86/lanes16_avx512.h"
#include "kernels/x86/simd_util.h"

enum { LANES = 16, GROUP = 32 };

#define INLINE static inline __attribute__((always_inline))

/* r[c] <- column c of the 16 x 16 block of 32-bit words whose row i was r[i]. */
INLINE void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    RB_UNROLL(8)
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* u[4q + e], 128-bit lane L: element 4L + e of rows 4q .. 4q + 3. */
    RB_UNROLL(4)
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    RB_UNROLL(4)
    for (int e = 0; e < 4; e++) {
        __m512i a = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x44);
        __m512i b = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xEE);
        __m512i c = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x44);
        __m512i d = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xEE);
        r[e] = _mm512_shuffle_i32x4(a, c, 0x88);
        r[4 + e] = _mm512_shuffle_i32x4(a, c, 0xDD);
        r[8 + e] = _mm512_shuffle_i32x4(b, d, 0x88);
        r[12 + e] = _mm512_shuffle_i32x4(b, d, 0xDD);
    }
}

INLINE __mmask16 mask16(size_t n) {
    return n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << n) - 1);
}

static void mix12_forward(__m512 *T, size_t P, float scale);
static void mix12_inverse(__m512 *T, size_t P, float scale);

/* What one call needs, resolved once. */
typedef struct plan {
    size_t d, K, P; /* d = K * P, P = 2^m >= 16 */
    int bits;
    size_t W; /* payload words (d * bits / 32) */
    float scale;
    const float *d1;
    const rb_codebook *cb;
    const int8_t *hk;
    rb_dir dir;
    __m512 *T[2];  /* two tiles of d columns */
    __m512i *Q[2]; /* two tiles of W + 16 word columns (payload words, then the norm) */
    uint16_t *off; /* K > 1: index into the mix's [columns, negated columns] buffer */
    int h12;       /* K = 12 with the compile-time table */
} plan;

static int plan_init(plan *pl, const rb_rhtcodec *p, void *scratch, rb_dir dir) {
    size_t K;
    int m;
    if (p->d2 || rb_hadamard_lookup(p->d, &K, &m)) return RB_EDECLINE;
    size_t P = (size_t) 1 << m;
    if (P < 16 || p->d % 32 || K > RB_HADAMARD_KMAX) return RB_EDECLINE;
    pl->d = p->d;
    pl->K = K;
    pl->P = P;
    pl->bits = p->bits;
    pl->W = p->d * (size_t) p->bits / 32;
    pl->scale = (float) (1.0 / sqrt((double) p->d));
    pl->d1 = p->d1;
    pl->cb = p->cb;
    pl->dir = dir;
    pl->hk = rb_hadamard_matrix(K);
    pl->h12 = K == 12 && memcmp(pl->hk, rb_h12_paley, sizeof rb_h12_paley) == 0;
    char *s = (char *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63);
    pl->T[0] = (__m512 *) s;
    pl->T[1] = pl->T[0] + p->d;
    pl->Q[0] = (__m512i *) (pl->T[1] + p->d);
    pl->Q[1] = pl->Q[0] + p->d / 4 + 16;
    pl->off = (uint16_t *) (pl->Q[1] + p->d / 4 + 16);
    if (K > 1)
        for (size_t i = 0; i < K; i++)
            for (size_t k = 0; k < K; k++) {
                int8_t h = dir == RB_INVERSE ? pl->hk[k * K + i] : pl->hk[i * K + k];
                pl->off[i * K + k] = (uint16_t) (h < 0 ? K + k : k);
            }
    return RB_OK;
}

/* The FWHT's first stages (strides 1, 2, 4, 8; P >= 16) on 16 consecutive columns. */
INLINE void fwht16(__m512 v[16]) {
    RB_UNROLL(4)
    for (int h = 1; h < 16; h *= 2) {
        RB_UNROLL(16)
        for (int i = 0; i < 16; i++)
            if (!(i & h)) {
                __m512 a = v[i], b = v[i + h];
                v[i] = _mm512_add_ps(a, b);
                v[i + h] = _mm512_sub_ps(a, b);
            }
    }
}

/* Butterflies of stride h, 2h, .. (`stages` of them, 1..3) on registers w = 0 .. 2^stages - 1
 * holding columns j + w h. */
INLINE void radix(__m512 *v, int stages) {
    for (int s = 0; s < stages; s++) {
        RB_UNROLL(8)
        for (int w = 0; w < (1 << stages); w++)
            if (!(w & (1 << s))) {
                __m512 a = v[w], b = v[w + (1 << s)];
                v[w] = _mm512_add_ps(a, b);
                v[w + (1 << s)] = _mm512_sub_ps(a, b);
            }
    }
}

/* The remaining FWHT stages (strides 16 .. P / 2) of each of the K rows of P columns, three at a
 * time through registers. */
static void fwht_rest(__m512 *T, size_t K, size_t P) {
    for (size_t kr = 0; kr < K; kr++) {
        __m512 *base = T + kr * P;
        for (size_t h = 16; h < P; h *= 8) {
            int stages = h * 8 <= P ? 3 : h * 4 <= P ? 2 : 1;
            size_t span = h << stages;
            for (size_t b0 = 0; b0 < P; b0 += span)
                for (size_t j = 0; j < h; j++) {
                    __m512 v[8];
                    __m512 *col = base + b0 + j;
                    if (stages == 3) {
                        RB_UNROLL(8)
                        for (int w = 0; w < 8; w++) v[w] = col[w * h];
                        radix(v, 3);
                        RB_UNROLL(8)
                        for (int w = 0; w < 8; w++) col[w * h] = v[w];
                    } else if (stages == 2) {
                        RB_UNROLL(4)
                        for (int w = 0; w < 4; w++) v[w] = col[w * h];
                        radix(v, 2);
                        RB_UNROLL(4)
                        for (int w = 0; w < 4; w++) col[w * h] = v[w];
                    } else {
                        v[0] = col[0];
                        v[1] = col[h];
                        radix(v, 1);
                        col[0] = v[0];
                        col[h] = v[1];
                    }
                }
        }
    }
}

/* The H_K mix (K > 1) of a tile, scaled: column j + i P <- scale * sum_k h_ik (column j + k P),
 * summed from +0 in k order; -c is exact, and a + (-c) is a - c, so each term is one add. */
static void mix(const plan *pl, __m512 *T) {
    size_t K = pl->K, P = pl->P;
    if (pl->h12) {
        (pl->dir == RB_INVERSE ? mix12_inverse : mix12_forward)(T, P, pl->scale);
        return;
    }
    __m512 buf[2 * RB_HADAMARD_KMAX];
    const __m512 sc = _mm512_set1_ps(pl->scale);
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int) 0x80000000u));
    for (size_t j = 0; j < P; j++) {
        for (size_t k = 0; k < K; k++) {
            __m512 c = T[k * P + j];
            buf[k] = c;
            buf[K + k] = _mm512_xor_ps(c, sign);
        }
        /* Four outputs at a time (every K is a multiple of 4): four independent chains. */
        for (size_t i = 0; i < K; i += 4) {
            const uint16_t *o = pl->off + i * K;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t k = 0; k < K; k++) {
                a0 = _mm512_add_ps(a0, buf[o[k]]);
                a1 = _mm512_add_ps(a1, buf[o[K + k]]);
                a2 = _mm512_add_ps(a2, buf[o[2 * K + k]]);
                a3 = _mm512_add_ps(a3, buf[o[3 * K + k]]);
            }
            T[i * P + j] = _mm512_mul_ps(a0, sc);
            T[(i + 1) * P + j] = _mm512_mul_ps(a1, sc);
            T[(i + 2) * P + j] = _mm512_mul_ps(a2, sc);
            T[(i + 3) * P + j] = _mm512_mul_ps(a3, sc);
        }
    }
}

/* H_12 (Paley I, kernels/hadamard.c) as a compile-time table: with the signs known, the d =
 * 12 * 2^m mix is 144 register adds / subtracts per column. plan_init checks it against the
 * library's table (and falls back to the generic mix if it ever differs). */
INLINE void mix12_dir(__m512 *T, size_t P, float scale, int inverse) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (size_t j = 0; j < P; j++) {
        __m512 c[12];
        RB_UNROLL(12)
        for (int k = 0; k < 12; k++) c[k] = T[k * P + j];
        RB_UNROLL(12)
        for (int i = 0; i < 12; i++) {
            __m512 acc = _mm512_setzero_ps();
            RB_UNROLL(12)
            for (int k = 0; k < 12; k++) {
                int h = inverse ? rb_h12_paley[k * 12 + i] : rb_h12_paley[i * 12 + k];
                acc = h > 0 ? _mm512_add_ps(acc, c[k]) : _mm512_sub_ps(acc, c[k]);
            }
            T[i * P + j] = _mm512_mul_ps(acc, sc);
        }
    }
}

static void mix12_forward(__m512 *T, size_t P, float scale) {
    mix12_dir(T, P, scale, 0);
}
static void mix12_inverse(__m512 *T, size_t P, float scale) {
    mix12_dir(T, P, scale, 1);
}

/* ---- encode ---- */

/* Quantize (after the scale when K = 1) and pack a tile: word w of the packed row holds bits
 * [32 w, 32 w + 32), code j at bit j * bits. B and STEPS are constants in each instance. */
INLINE void quant_pack(const plan *pl, const rb_cbsearch *q, const __m512 *T, __m512i *Q, int B,
                       int STEPS) {
    const __m512 sc = _mm512_set1_ps(pl->scale);
    int scale = pl->K == 1;
    if (32 % B == 0) {
        for (size_t w = 0; w < pl->W; w++) {
            __m512i acc = _mm512_setzero_si512();
            const __m512 *col = T + w * (size_t) (32 / B);
            RB_UNROLL(32)
            for (int i = 0; i < 32 / B; i++) {
                __m512 v = scale ? _mm512_mul_ps(col[i], sc) : col[i];
                __m512i n = rb_cbsearch16(q, v, STEPS);
                acc = _mm512_or_si512(acc, _mm512_sllv_epi32(n, _mm512_set1_epi32(i * B)));
            }
            Q[w] = acc;
        }
        return;
    }
    for (size_t w = 0; w < pl->W; w++) Q[w] = _mm512_setzero_si512();
    for (size_t j = 0; j < pl->d; j++) {
        __m512 v = scale ? _mm512_mul_ps(T[j], sc) : T[j];
        __m512i n = rb_cbsearch16(q, v, STEPS);
        size_t bit = j * (size_t) B, w = bit / 32, sh = bit % 32;
        Q[w] = _mm512_or_si512(Q[w], _mm512_sllv_epi32(n, _mm512_set1_epi32((int) sh)));
        if (sh + (size_t) B > 32)
            Q[w + 1] =
                _mm512_or_si512(Q[w + 1], _mm512_srlv_epi32(n, _mm512_set1_epi32((int) (32 - sh))));
    }
}

static void quant_pack_any(const plan *pl, const rb_cbsearch *q, const __m512 *T, __m512i *Q) {
    /* steps = ceil(log2 k) <= bits; the common (bits, steps) pairs get their own copy. */
#define QP(B, S)                                  \
    do {                                          \
        if (pl->bits == (B) && q->steps == (S)) { \
            quant_pack(pl, q, T, Q, B, S);        \
            return;                               \
        }                                         \
    } while (0)
    QP(1, 1);
    QP(2, 2);
    QP(3, 3);
    QP(4, 4);
    QP(5, 5);
    QP(6, 6);
    QP(7, 7);
    QP(8, 8);
#undef QP
    switch (pl->bits) { /* fewer levels than 2^bits */
    case 1:
        quant_pack(pl, q, T, Q, 1, q->steps);
        return;
    case 2:
        quant_pack(pl, q, T, Q, 2, q->steps);
        return;
    case 4:
        quant_pack(pl, q, T, Q, 4, q->steps);
        return;
    case 8:
        quant_pack(pl, q, T, Q, 8, q->steps);
        return;
    default:
        quant_pack(pl, q, T, Q, pl->bits, q->steps);
        return;
    }
}

/* Pass A for rows [0, n) of a group: the squared norms, row by row in rb_lanes16_sum's order
 * (nrm[i] for row i, 0 past n), then the rows transposed into the tiles. */
static void norms_and_transpose(const plan *pl, const float *x, size_t n, size_t ldx,
                                const float *next, size_t nnext, double nrm[GROUP]) {
    for (size_t i = 0; i < GROUP; i++)
        nrm[i] = i < n ? rb_lanes16_dot(x + i * ldx, x + i * ldx, pl->d) : 0;
    for (size_t c = 0; c < pl->d; c += 16)
        for (int s = 0; s < 2; s++) {
            __m512i r[16];
            RB_UNROLL(16)
            for (size_t i = 0; i < 16; i++) {
                size_t row = (size_t) s * 16 + i;
                r[i] = row < n ? _mm512_loadu_si512(x + row * ldx + c) : _mm512_setzero_si512();
                /* The strided rows defeat the hardware prefetchers: fetch the next group. */
                if (row < nnext) _mm_prefetch((const char *) (next + row * ldx + c), _MM_HINT_T0);
            }
            transpose16(r);
            RB_UNROLL(16)
            for (int i = 0; i < 16; i++) pl->T[s][c + i] = _mm512_castsi512_ps(r[i]);
        }
}

/* Pass B..F on one tile of 16 rows: normalize (rb_unit_factors' pre and inv, one per lane),
 * signs, FWHT, mix, quantize, pack; Q gets the packed words and, in column W, the fp32 norms. */
static void encode_tile(const plan *pl, const rb_cbsearch *q, int s, __m512 pre, int prescale,
                        __m512 inv, __m512 norm) {
    __m512 *T = pl->T[s];
    __m512i *Q = pl->Q[s];
    size_t d = pl->d, K = pl->K, P = pl->P;
    for (size_t c = 0; c < d; c += 16) {
        __m512 v[16];
        RB_UNROLL(16)
        for (int i = 0; i < 16; i++) {
            __m512 t = prescale ? _mm512_mul_ps(T[c + i], pre) : T[c + i];
            v[i] = _mm512_mul_ps(_mm512_mul_ps(t, inv), _mm512_set1_ps(pl->d1[c + i]));
        }
        fwht16(v);
        RB_UNROLL(16)
        for (int i = 0; i < 16; i++) T[c + i] = v[i];
    }
    fwht_rest(T, K, P);
    if (K > 1) mix(pl, T);
    quant_pack_any(pl, q, T, Q);
    Q[pl->W] = _mm512_castps_si512(norm);
}

/* Transposes the W + 1 word columns of Q back to rows and stores them (masked: bytes past a code
 * row stay untouched). */
static void store_codes(const plan *pl, int s, size_t n, uint8_t *codes, size_t ldc) {
    size_t words = pl->W + 1;
    for (size_t q0 = 0; q0 < words; q0 += 16) {
        __m512i r[16];
        size_t len = words - q0 < 16 ? words - q0 : 16;
        RB_UNROLL(16)
        for (size_t c = 0; c < 16; c++) r[c] = c < len ? pl->Q[s][q0 + c] : _mm512_setzero_si512();
        transpose16(r);
        __mmask16 m = mask16(len);
        for (size_t i = 0; i < n; i++) _mm512_mask_storeu_epi32(codes + i * ldc + 4 * q0, m, r[i]);
    }
}

static int bad_row(const rb_rhtcodec *p, double nrm, size_t row) {
    double s = sqrt(nrm);
    return rb_error_set(RB_ENUMERIC, "%s: vector %zu %s", p->who ? p->who : "rhtcodec", row,
                        isfinite(s) ? "has a norm beyond the fp32 range"
                                    : "has a NaN or infinite element");
}

int rb_rhtcodec_encode_f32_avx512(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                                  uint8_t *codes, size_t ldc, size_t row0, void *scratch) {
    /* d <= 256: a row fits in registers, no transposes (kernels/x86/rhtcodec_enc_avx512.c). */
    int rc = rb_rhtcodec_encode_rows_f32_avx512(p, x, rows, ldx, codes, ldc, row0, scratch);
    if (rc != RB_EDECLINE) return rc;
    plan pl;
    if (plan_init(&pl, p, scratch, RB_FORWARD)) return RB_EDECLINE;
    rb_cbsearch q;
    rb_cbsearch_init(&q, p->cb);
    for (size_t g0 = 0; g0 < rows; g0 += GROUP) {
        size_t n = rows - g0 < GROUP ? rows - g0 : GROUP;
        size_t nn = rows - g0 - n < GROUP ? rows - g0 - n : GROUP;
        const float *xg = x + g0 * ldx;
        double nrm[GROUP];
        norms_and_transpose(&pl, xg, n, ldx, xg + n * ldx, nn, nrm);
        /* |x| = sqrt(nrm) in double; a row is bad unless |x| <= FLT_MAX (NaN included). */
        float pre[GROUP], inv[GROUP], norm[GROUP];
        size_t ok = n;
        int prescale = 0;
        for (size_t i = 0; i < n; i++) {
            double s = sqrt(nrm[i]);
            if (!(s <= FLT_MAX)) {
                ok = i;
                break;
            }
            norm[i] = (float) s;
            rb_unit_factors(s, &pre[i], &inv[i]);
            prescale |= pre[i] != 1.0f;
        }
        for (size_t i = ok; i < GROUP; i++) pre[i] = 1.0f, inv[i] = norm[i] = 0.0f;
        for (int s = 0; s < 2 && (size_t) s * 16 < ok; s++) {
            encode_tile(&pl, &q, s, _mm512_loadu_ps(pre + 16 * s), prescale,
                        _mm512_loadu_ps(inv + 16 * s), _mm512_loadu_ps(norm + 16 * s));
            size_t ns = ok - (size_t) s * 16 < 16 ? ok - (size_t) s * 16 : 16;
            store_codes(&pl, s, ns, codes + (g0 + (size_t) s * 16) * ldc, ldc);
        }
        if (ok < n) return bad_row(p, nrm[ok], row0 + g0 + ok);
    }
    return RB_OK;
}

/* ---- decode ---- */

int rb_rhtcodec_decode_f32_avx512(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc,
                                  size_t rows, float *y, size_t ldy, unsigned flags,
                                  void *scratch) {
    /* d <= 256: a row fits in registers, no transposes (kernels/x86/rhtcodec_dec_avx512.c). */
    int rc = rb_rhtcodec_decode_rows_f32_avx512(p, codes, ldc, rows, y, ldy, flags, scratch);
    if (rc != RB_EDECLINE) return rc;
    plan pl;
    if (plan_init(&pl, p, scratch, RB_INVERSE)) return RB_EDECLINE;
    size_t d = pl.d, K = pl.K, P = pl.P, W = pl.W, words = W + 1;
    int b = pl.bits;
    const rb_codebook *cb = p->cb;
    const __m512 c0 = _mm512_loadu_ps(cb->centroids), c1 = _mm512_loadu_ps(cb->centroids + 16);
    const __m512i kk = _mm512_set1_epi32((int) cb->k), bmask = _mm512_set1_epi32((1 << b) - 1);
    int check_k = cb->k < ((size_t) 1 << b);
    int stream = (flags & RB_RHTCODEC_STREAM) && (uintptr_t) y % 64 == 0 && ldy % 16 == 0;
    const __m512 sc = _mm512_set1_ps(pl.scale);
    __m512 *T = pl.T[0];
    __m512i *Q = pl.Q[0];
    for (size_t g0 = 0; g0 < rows; g0 += LANES) {
        size_t n = rows - g0 < LANES ? rows - g0 : LANES;
        const uint8_t *cg = codes + g0 * ldc;
        /* Code rows to word columns. */
        for (size_t q0 = 0; q0 < words; q0 += 16) {
            __mmask16 m = mask16(words - q0);
            __m512i r[16];
            RB_UNROLL(16)
            for (size_t i = 0; i < 16; i++)
                r[i] = i < n ? _mm512_maskz_loadu_epi32(m, cg + i * ldc + 4 * q0)
                             : _mm512_setzero_si512();
            transpose16(r);
            RB_UNROLL(16)
            for (int c = 0; c < 16; c++) Q[q0 + c] = r[c];
        }
        const __m512 norm = _mm512_castsi512_ps(Q[W]);
        /* Unpack, look up, first FWHT stages. */
        for (size_t c = 0; c < d; c += 16) {
            __m512 v[16];
            __mmask16 big = 0;
            RB_UNROLL(16)
            for (size_t i = 0; i < 16; i++) {
                size_t bit = (c + i) * (size_t) b, w = bit / 32, sh = bit % 32;
                __m512i t = _mm512_srlv_epi32(Q[w], _mm512_set1_epi32((int) sh));
                if (sh + (size_t) b > 32)
                    t = _mm512_or_si512(
                        t, _mm512_sllv_epi32(Q[w + 1], _mm512_set1_epi32((int) (32 - sh))));
                t = _mm512_and_si512(t, bmask);
                if (check_k) big |= _mm512_cmpge_epu32_mask(t, kk);
                v[i] = cb->k <= 16   ? _mm512_permutexvar_ps(t, c0)
                       : cb->k <= 32 ? _mm512_permutex2var_ps(c0, t, c1)
                                     : _mm512_i32gather_ps(t, cb->centroids, 4);
            }
            if (big) {                    /* the reference names the code */
                if (stream) _mm_sfence(); /* order the rows already streamed */
                return rb_rhtcodec_decode_f32_ref(p, codes, ldc, rows, y, ldy, flags, scratch);
            }
            fwht16(v);
            RB_UNROLL(16)
            for (int i = 0; i < 16; i++) T[c + i] = v[i];
        }
        fwht_rest(T, K, P);
        if (K > 1) mix(&pl, T);
        /* Scale (K = 1; the mix scaled already), signs, norms; back to rows. */
        for (size_t c = 0; c < d; c += 16) {
            __m512i r[16];
            RB_UNROLL(16)
            for (int i = 0; i < 16; i++) {
                __m512 v = T[c + i];
                if (K == 1) v = _mm512_mul_ps(v, sc);
                v = _mm512_mul_ps(v, _mm512_set1_ps(p->d1[c + i]));
                r[i] = _mm512_castps_si512(_mm512_mul_ps(v, norm));
            }
            transpose16(r);
            float *yg = y + g0 * ldy + c;
            if (stream && n == 16) {
                RB_UNROLL(16)
                for (int i = 0; i < 16; i++) _mm512_stream_si512((__m512i *) (yg + i * ldy), r[i]);
            } else {
                for (size_t i = 0; i < n; i++) _mm512_storeu_si512(yg + i * ldy, r[i]);
            }
        }
    }
    if (stream) _mm_sfence();
    return RB_OK;
}
