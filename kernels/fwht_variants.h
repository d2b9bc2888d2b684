/* The optimized FWHT variants (kernels/x86/fwht_*.c), listed best first for the dispatch table.
 * Internal to the kernel layer: callers use rb_fwht_f32. */
#ifndef RB_FWHT_VARIANTS_H
#define RB_FWHT_VARIANTS_H

#include <stddef.h>

/* Both decline n below their vector width (16 and 8 floats); the reference takes those. */
int rb_fwht_f32_avx512(float *data, size_t n, size_t count, size_t stride, float scale);
int rb_fwht_f32_avx2(float *data, size_t n, size_t count, size_t stride, float scale);

/* Each entry is RB_VARIANT(name, isa, fn), followed by a comma. */
#define RB_FWHT_F32_FAST_VARIANTS                            \
    RB_VARIANT("avx512", RB_ISA_AVX512, rb_fwht_f32_avx512), \
        RB_VARIANT("avx2", RB_ISA_AVX2, rb_fwht_f32_avx2),

#endif
