/* The optimized FWHT variants (kernels/x86/fwht_*.c), listed best first for the dispatch table.
 * Internal to the kernel layer: callers use rb_fwht_f32. */
#ifndef RB_FWHT_VARIANTS_H
#define RB_FWHT_VARIANTS_H

#include <stddef.h>

/* Each entry is RB_VARIANT(name, isa, fn), followed by a comma. */
#define RB_FWHT_F32_FAST_VARIANTS

#endif
