/* The optimized quantizer and codebook variants (kernels/x86/quant_*.c), listed best first for
 * the dispatch tables. Internal to the kernel layer: callers use kernels/quant.h, codebook.h. */
#ifndef RB_QUANT_VARIANTS_H
#define RB_QUANT_VARIANTS_H

/* Each entry is RB_VARIANT(name, isa, fn), followed by a comma. */
#define RB_QUANT_ROWS_F32_FAST_VARIANTS
#define RB_CODEBOOK_QUANT_F32_FAST_VARIANTS

#endif
