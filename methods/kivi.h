/* KIVI's streaming state, exposed for tests and reports (the method itself is rb_method_kivi). */
#ifndef RB_KIVI_H
#define RB_KIVI_H

#include <stddef.h>

#include "kernels/dispatch.h"

typedef struct rb_kivi_info {
    size_t tokens;           /* cached */
    size_t keys_quantized;   /* always a multiple of residual */
    size_t keys_fp16;        /* key residual buffer: tokens - keys_quantized < residual */
    size_t values_quantized; /* tokens - values_fp16 */
    size_t values_fp16;      /* sliding window: min(tokens, residual) */
    size_t group, residual;  /* G and R */
} rb_kivi_info;

/* KIVI's fp16 group quantization (with its packing) and dequantization are the method's own
 * plain-C loops; they name themselves in the kernel trace as "kivi_quant_f16=ref" and
 * "kivi_dequant_f16=ref". */
extern const rb_op rb_op_kivi_quant_f16;
extern const rb_op rb_op_kivi_dequant_f16;

/* The counts of a kivi instance (state from rb_method_kivi.kv->create). */
void rb_kivi_info_get(const void *state, rb_kivi_info *out);

#endif
