/* AVX2 FWHT variant: 8-lane vectors, in-register stages by lane permutes, radix-8 passes. */
#include <immintrin.h>

#define FV       __m256
#define FW       8
#define FW_LOG   3
#define FR       3
#define fv_load  _mm256_loadu_ps
#define fv_store _mm256_storeu_ps
#define fv_add   _mm256_add_ps
#define fv_sub   _mm256_sub_ps
#define fv_mul   _mm256_mul_ps
#define fv_set1  _mm256_set1_ps

/* Stage h inside a vector: y swaps lanes i and i ^ h; the FMA x * (+-1) + y rounds the exact
 * y +- x once, bit for bit the reference's fl(a + b) or fl(a - b). */
static inline __attribute__((always_inline)) __m256 fv_inreg(__m256 x) {
    const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    x = _mm256_fmadd_ps(x, s1, _mm256_permute_ps(x, 0xB1));
    x = _mm256_fmadd_ps(x, s2, _mm256_permute_ps(x, 0x4E));
    x = _mm256_fmadd_ps(x, s4, _mm256_permute2f128_ps(x, x, 0x01));
    return x;
}

#define FWHT_VARIANT rb_fwht_f32_avx2
#include "kernels/x86/fwht_simd.h"
