/* The codebook's nearest-centroid index, 16 lanes: the number of thresholds strictly below v by
 * binary search (the thresholds are sorted, so it is the count the reference takes by comparing
 * with every one). Step s tests thresholds[n + 2^s - 1] from a copy of the table shifted by
 * 2^s - 1, read by a vpermps (k <= 16), a two-table vpermt2ps (k <= 32) or a gather. Shared by
 * the codebook quantizer (quant_avx512.c) and the tiled RHT codec (rhtcodec_avx512.c); the
 * row-major codec (rhtcodec_enc_avx512.c) has its own search, which packs bits as it goes. */
#ifndef RB_X86_CBSEARCH_AVX512_H
#define RB_X86_CBSEARCH_AVX512_H

#include <immintrin.h>

#include "kernels/codebook.h"
#include "kernels/x86/simd_util.h"

typedef struct rb_cbsearch {
    int steps;           /* log2 of k rounded up */
    __m512 lo[8], hi[8]; /* step s: thresholds + 2^s - 1, entries 0..15 and 16..31 */
    const float *thr;    /* the codebook's table (padded with +Inf past k - 1) */
} rb_cbsearch;

static inline void rb_cbsearch_init(rb_cbsearch *q, const rb_codebook *cb) {
    q->steps = 0;
    while (((size_t) 1 << q->steps) < cb->k) q->steps++;
    q->thr = cb->thresholds;
    for (int s = 0; s < q->steps && s < 8; s++) {
        const float *t = cb->thresholds + ((1 << s) - 1);
        q->lo[s] = _mm512_loadu_ps(t);
        q->hi[s] = _mm512_loadu_ps(t + 16);
    }
}

/* steps = q->steps, a constant where the caller instantiates it, so that the loop unrolls. */
RB_AI __m512i rb_cbsearch16(const rb_cbsearch *q, __m512 v, int steps) {
    __m512i n = _mm512_setzero_si512();
    RB_UNROLL(8)
    for (int s = steps - 1; s >= 0; s--) {
        __m512 t = steps <= 4   ? _mm512_permutexvar_ps(n, q->lo[s])
                   : steps <= 5 ? _mm512_permutex2var_ps(q->lo[s], n, q->hi[s])
                                : _mm512_i32gather_ps(n, q->thr + ((1 << s) - 1), 4);
        __mmask16 lt = _mm512_cmp_ps_mask(t, v, _CMP_LT_OQ);
        n = _mm512_mask_add_epi32(n, lt, n, _mm512_set1_epi32(1 << s));
    }
    return n;
}

#endif
