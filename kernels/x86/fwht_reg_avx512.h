/* The FWHT of a row held in registers, for the AVX-512 kernels that keep a row of 16 nv floats in
 * nv zmm (kv_quant_avx512.c, rhtcodec_enc_avx512.c, rhtcodec_dec_avx512.c): stages h = 1, 2, 4, 8
 * inside each vector and stages h = 16 hv between vectors, in the reference's order (stride 1
 * upwards), bit for bit. Only for files compiled with AVX-512. */
#ifndef RB_X86_FWHT_REG_AVX512_H
#define RB_X86_FWHT_REG_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "kernels/x86/simd_util.h"

#define RB_FWHT_REG_AI static inline __attribute__((always_inline))

/* The +-1 lane signs of the in-vector stages: +1 on the low lanes of each pair (i & h == 0). */
typedef struct rb_fwht16_signs {
    __m512 s1, s2, s4, s8;
} rb_fwht16_signs;

RB_FWHT_REG_AI rb_fwht16_signs rb_fwht16_signs_make(void) {
    const float p = 1.0f, n = -1.0f;
    return (rb_fwht16_signs){
        _mm512_setr_ps(p, n, p, n, p, n, p, n, p, n, p, n, p, n, p, n),
        _mm512_setr_ps(p, p, n, n, p, p, n, n, p, p, n, n, p, p, n, n),
        _mm512_setr_ps(p, p, p, p, n, n, n, n, p, p, p, p, n, n, n, n),
        _mm512_setr_ps(p, p, p, p, p, p, p, p, n, n, n, n, n, n, n, n),
    };
}

/* Butterfly stage h < 16 inside one vector as one FMA: x * sign + partner, sign +1 on the low
 * lanes (x + partner, the reference's a + c) and -1 on the high lanes (partner - x, its a - c).
 * x * +-1 is exact and the FMA rounds once, so this is the add or the subtract bit for bit,
 * signed zeros included. */
RB_FWHT_REG_AI __m512 rb_fwht16_stage(__m512 x, __m512 partner, __m512 sign) {
    return _mm512_fmadd_ps(x, sign, partner);
}

/* Stages h = 1, 2, 4, 8 of one vector, those below the block size m (m >= 16: all four). */
RB_FWHT_REG_AI __m512 rb_fwht16_stages(__m512 x, size_t m, const rb_fwht16_signs *s) {
    if (m > 1) x = rb_fwht16_stage(x, _mm512_permute_ps(x, 0xB1), s->s1);
    if (m > 2) x = rb_fwht16_stage(x, _mm512_permute_ps(x, 0x4E), s->s2);
    if (m > 4) x = rb_fwht16_stage(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(2, 3, 0, 1)), s->s4);
    if (m > 8) x = rb_fwht16_stage(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(1, 0, 3, 2)), s->s8);
    return x;
}

/* Stage h = 16 hv between whole vectors: v[i] with v[i + hv]. The loop must unroll completely
 * (nv is a constant after inlining) so that the row stays in registers. fma_sub: each difference
 * as fma(c, -1, a), the same bits (the product is exact and the FMA rounds once), on the FMA
 * pipes instead of the FADD ones, for a caller whose other work leans on the FADD pipes. */
RB_FWHT_REG_AI void rb_fwht_cross_stage(__m512 *v, int nv, int hv, const int fma_sub) {
    if (hv >= nv) return; /* a block larger than the row: never asked, but not provable */
    RB_UNROLL(16)
    for (int i = 0; i < nv; i++)
        if (!(i & hv)) {
            __m512 a = v[i], c = v[i + hv];
            v[i] = _mm512_add_ps(a, c);
            v[i + hv] =
                fma_sub ? _mm512_fmadd_ps(c, _mm512_set1_ps(-1.0f), a) : _mm512_sub_ps(a, c);
        }
}

/* The stages between vectors of blocks of m = 32 .. 256 floats (none for m <= 16). */
RB_FWHT_REG_AI void rb_fwht_cross_stages(__m512 *v, int nv, size_t m, const int fma_sub) {
    if (m > 16) rb_fwht_cross_stage(v, nv, 1, fma_sub);
    if (m > 32) rb_fwht_cross_stage(v, nv, 2, fma_sub);
    if (m > 64) rb_fwht_cross_stage(v, nv, 4, fma_sub);
    if (m > 128) rb_fwht_cross_stage(v, nv, 8, fma_sub);
}

/* The RHT's signs times a factor, scale * sg[j], into out; 0 when a sign is not exactly +-1 (the
 * kernels fold the signs into a multiply or a sign-bit xor, which is exact only for +-1).
 * scale = 0 gives +0 / -0: the sign bits alone. */
static inline int rb_fold_signs(const float *sg, size_t d, float scale, float *out) {
    for (size_t j = 0; j < d; j++) {
        if (sg[j] != 1.0f && sg[j] != -1.0f) return 0;
        out[j] = sg[j] > 0 ? scale : -scale;
    }
    return 1;
}

#endif
