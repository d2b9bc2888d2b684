/* AVX-512 FWHT variant: 16-lane vectors, in-register stages by lane permutes, radix-16 passes. */
#include <immintrin.h>

#define FV       __m512
#define FW       16
#define FW_LOG   4
#define FR       4
#define fv_load  _mm512_loadu_ps
#define fv_store _mm512_storeu_ps
#define fv_add   _mm512_add_ps
#define fv_sub   _mm512_sub_ps
#define fv_mul   _mm512_mul_ps
#define fv_set1  _mm512_set1_ps

/* Stage h inside a vector: y swaps lanes i and i ^ h; lane i becomes x_i + y_i where bit h of i
 * is clear and y_i - x_i where it is set. The FMA x * (+-1) + y rounds once the exact value
 * y +- x, so it is bit for bit the reference's fl(a + b) or fl(a - b). */
static inline __attribute__((always_inline)) __m512 inreg_stage(__m512 x, __m512 y, __m512 sign) {
    return _mm512_fmadd_ps(x, sign, y);
}

static inline __attribute__((always_inline)) __m512 fv_inreg(__m512 x) {
    const __m512 s1 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const __m512 s2 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
    const __m512 s4 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
    const __m512 s8 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    x = inreg_stage(x, _mm512_permute_ps(x, 0xB1), s1);
    x = inreg_stage(x, _mm512_permute_ps(x, 0x4E), s2);
    x = inreg_stage(x, _mm512_shuffle_f32x4(x, x, 0xB1), s4);
    x = inreg_stage(x, _mm512_shuffle_f32x4(x, x, 0x4E), s8);
    return x;
}

#define FWHT_VARIANT rb_fwht_f32_avx512
#include "kernels/x86/fwht_simd.h"
