/* The H_K mix of the row-major codec kernels (rhtcodec_enc_avx512.c, rhtcodec_dec_avx512.c),
 * which hold a row of d = K * 16 nv block by block: after each block's FWHT, block k's vector j
 * is T[k nv + j]. For one column vector j the mix gives out_i = sum_k h_ik c_k (h_ki for the
 * inverse, H_K transposed) with c_k = T[k nv + j], summed in k order from +0 like
 * rb_hadamard_f32_ref: acc - c is acc + (-c) bit for bit, and the +0 start turns a -0 sum into
 * +0 as the reference does. Only for files compiled with AVX-512. */
#ifndef RB_X86_HMIX_AVX512_H
#define RB_X86_HMIX_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/x86/simd_util.h"

/* A generic mix (any K that is a multiple of 4) over caller scratch: buf holds a column and its
 * negation (2 K vectors), out the K results, off[i K + k] the index into buf of +-c_k. */
typedef struct rb_hmix {
    size_t K;
    __m512 *T, *buf, *out;
    uint16_t *off;
} rb_hmix;

/* Fills off from H_K (K x K row-major, +-1), transposed for the inverse mix. */
static inline void rb_hmix_offsets(const rb_hmix *M, const int8_t *hk, int transposed) {
    const size_t K = M->K;
    for (size_t i = 0; i < K; i++)
        for (size_t k = 0; k < K; k++)
            M->off[i * K + k] =
                (uint16_t) ((transposed ? hk[k * K + i] : hk[i * K + k]) < 0 ? K + k : k);
}

/* Column j of the generic mix into M->out[0 .. K). */
RB_AI void rb_hmix_column(const rb_hmix *M, size_t nv, size_t j) {
    const size_t K = M->K;
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int) 0x80000000u));
    for (size_t k = 0; k < K; k++) {
        __m512 c = M->T[k * nv + j];
        M->buf[k] = c;
        M->buf[K + k] = _mm512_xor_ps(c, sign);
    }
    for (size_t i = 0; i < K; i += 4) { /* four independent chains; every K is a multiple of 4 */
        const uint16_t *o = M->off + i * K;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t k = 0; k < K; k++) {
            a0 = _mm512_add_ps(a0, M->buf[o[k]]);
            a1 = _mm512_add_ps(a1, M->buf[o[K + k]]);
            a2 = _mm512_add_ps(a2, M->buf[o[2 * K + k]]);
            a3 = _mm512_add_ps(a3, M->buf[o[3 * K + k]]);
        }
        M->out[i] = a0;
        M->out[i + 1] = a1;
        M->out[i + 2] = a2;
        M->out[i + 3] = a3;
    }
}

/* The mix by H_12 (rb_h12_paley: compile-time signs, so register adds and subtracts): load
 * column j's twelve vectors into c, then take output i from them. One output at a time, so that
 * a caller consuming each at once keeps only c and one sum live. */
RB_AI void rb_hmix12_load(const __m512 *T, const int nv, const int j, __m512 *c) {
    RB_UNROLL(12)
    for (int k = 0; k < 12; k++) c[k] = T[k * nv + j];
}

RB_AI __m512 rb_hmix12_out(const __m512 *c, const int i, const int transposed) {
    __m512 acc = _mm512_setzero_ps();
    RB_UNROLL(12)
    for (int k = 0; k < 12; k++) {
        int h = transposed ? rb_h12_paley[k * 12 + i] : rb_h12_paley[i * 12 + k];
        acc = h > 0 ? _mm512_add_ps(acc, c[k]) : _mm512_sub_ps(acc, c[k]);
    }
    return acc;
}

#endif
