/* The optimized quantizer and codebook variants (kernels/x86/quant_*.c), listed best first for
 * the dispatch tables. Internal to the kernel layer: callers use kernels/quant.h, codebook.h. */
#ifndef RB_QUANT_VARIANTS_H
#define RB_QUANT_VARIANTS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/codebook.h"
#include "kernels/quant.h"

/* They do not implement spec->side_f16: the dispatch table (quant.c) wraps them to decline it. */
int rb_quant_rows_f32_avx512(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                             size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                             float *scales, float *zeros);
int rb_quant_rows_f32_avx2(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                           size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                           float *scales, float *zeros);
int rb_codebook_quant_f32_avx512(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                                 size_t ld, uint8_t *idx);
int rb_codebook_quant_f32_avx2(const rb_codebook *cb, const float *x, size_t rows, size_t cols,
                               size_t ld, uint8_t *idx);

/* Each entry is RB_VARIANT(name, isa, fn), followed by a comma. */
#define RB_CODEBOOK_QUANT_F32_FAST_VARIANTS                            \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_codebook_quant_f32_avx512), \
        RB_VARIANT("avx2", RB_ISA_AVX2, rb_codebook_quant_f32_avx2),

#endif
