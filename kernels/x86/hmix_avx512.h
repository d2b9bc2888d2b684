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

/* A generic mix (any K that is a multiple of 4) over caller scratch: out holds the K results of
 * a column, sg the signs as floats in groups of four outputs: sg[4 K g + 4 k + t] = h of output
 * 4 g + t and term k. A term is fma(c_k, +-1, acc), which is acc + c_k or acc - c_k bit for bit
 * (the product is exact and the FMA rounds once), so each c_k is loaded once for eight outputs and
 * each sign is a broadcast operand, against two loads an add through an offset table into a
 * buffer of +-c_k (in cache d = 2560 = 20 x 128 decodes in 1540-1610 ns a row instead of
 * 2500-3170, d = 640 in 360 instead of 610). */
typedef struct rb_hmix {
    size_t K;
    __m512 *T, *out;
    float *sg;
} rb_hmix;

/* Fills sg from H_K (K x K row-major, +-1), transposed for the inverse mix. */
static inline void rb_hmix_signs(const rb_hmix *M, const int8_t *hk, int transposed) {
    const size_t K = M->K;
    for (size_t i = 0; i < K; i++)
        for (size_t k = 0; k < K; k++)
            M->sg[4 * K * (i / 4) + 4 * k + i % 4] =
                (float) (transposed ? hk[k * K + i] : hk[i * K + k]);
}

/* Outputs i .. i + 4 G of column j (G = 1 or 2 groups of four: eight independent chains cover the
 * FMA latency, four do not). */
RB_AI void rb_hmix_groups(const rb_hmix *M, size_t nv, size_t j, size_t i, const int G) {
    const size_t K = M->K;
    const float *s = M->sg + K * i;
    __m512 a[8];
    RB_UNROLL(8)
    for (int t = 0; t < 4 * G; t++) a[t] = _mm512_setzero_ps();
    for (size_t k = 0; k < K; k++) {
        __m512 c = M->T[k * nv + j];
        RB_UNROLL(8)
        for (int t = 0; t < 4 * G; t++)
            a[t] = _mm512_fmadd_ps(c, _mm512_set1_ps(s[4 * K * (size_t) (t / 4) + 4 * k + t % 4]),
                                   a[t]);
    }
    RB_UNROLL(8)
    for (int t = 0; t < 4 * G; t++) M->out[i + (size_t) t] = a[t];
}

/* Column j of the generic mix into M->out[0 .. K), each sum in k order from +0. */
RB_AI void rb_hmix_column(const rb_hmix *M, size_t nv, size_t j) {
    size_t i = 0;
    for (; i + 8 <= M->K; i += 8) rb_hmix_groups(M, nv, j, i, 2);
    if (i < M->K) rb_hmix_groups(M, nv, j, i, 1); /* every K is a multiple of 4 */
}

/* The mix by H_12 (rb_h12_paley: compile-time signs): load column j's twelve vectors into c, then
 * take output i from them. One output at a time, so that a caller consuming each at once keeps
 * only c and one sum live. The terms alternate between an add or subtract and fma(c_k, +-1, acc)
 * (the same bits, as in rb_hmix_groups): on a Zen 4 a zmm add issues at one a cycle on the FADD
 * pipes while the FMA pipes sat half idle, and the mix is most of a d = 1536 row's adds (in cache,
 * 1 thread, ns a row: decode b2 534 -> 473, b4 562 -> 490; encode b2 587 -> 549). */
RB_AI void rb_hmix12_load(const __m512 *T, const int nv, const int j, __m512 *c) {
    RB_UNROLL(12)
    for (int k = 0; k < 12; k++) c[k] = T[k * nv + j];
}

RB_AI __m512 rb_hmix12_out(const __m512 *c, const int i, const int transposed) {
    __m512 acc = _mm512_setzero_ps();
    RB_UNROLL(12)
    for (int k = 0; k < 12; k++) {
        int h = transposed ? rb_h12_paley[k * 12 + i] : rb_h12_paley[i * 12 + k];
        if (k % 2 == 0)
            acc = _mm512_fmadd_ps(c[k], _mm512_set1_ps(h > 0 ? 1.0f : -1.0f), acc);
        else
            acc = h > 0 ? _mm512_add_ps(acc, c[k]) : _mm512_sub_ps(acc, c[k]);
    }
    return acc;
}

#endif
