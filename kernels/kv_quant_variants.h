/* The optimized KV INT4 encode variants (kernels/x86/kv_quant_*.c), best first, for the dispatch
 * table. Internal to the kernel layer: callers use rb_kv_int4_encode_f32. */
#ifndef RB_KV_QUANT_VARIANTS_H
#define RB_KV_QUANT_VARIANTS_H

#include <stddef.h>
#include <stdint.h>

/* Both decline d that is not a multiple of twice their vector width (32 and 16 floats): the two
 * halves of a row are then whole vectors. */
int rb_kv_int4_encode_f32_avx512(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                                 unsigned flags, uint8_t *packed, float *sz);
int rb_kv_int4_encode_f32_avx2(const float *x, size_t rows, size_t d, size_t stride, size_t m,
                               unsigned flags, uint8_t *packed, float *sz);

/* Decode: rows of d = 32, 64, 128, 256 only (declines the rest). */
int rb_kv_int4_decode_f32_avx512(const uint8_t *packed, const float *sz, size_t rows, size_t d,
                                 size_t m, float *xhat, size_t ld);

#define RB_KV_INT4_DECODE_FAST_VARIANTS \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_kv_int4_decode_f32_avx512),

#define RB_KV_INT4_ENCODE_FAST_VARIANTS                                \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_kv_int4_encode_f32_avx512), \
        RB_VARIANT("avx2", RB_ISA_AVX2, rb_kv_int4_encode_f32_avx2),

#endif
