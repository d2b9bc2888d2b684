/* RotateKV's pieces exposed for tests: the per-group quantizer (with the released code's INT3
 * scale bug behind a flag), the key transform and the calibrated channel order. */
#ifndef RB_ROTATEKV_H
#define RB_ROTATEKV_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/hadamard.h"

/* RotateKV's asymmetric quantizer on one group of n values (kv_cache.md sections 0 and 3.5):
 *   mn = clip * min(x), mx = clip * max(x)
 *   scale = (mx - mn) / d,  d = 2^bits - 1, or bits^2 - 1 with int3_bug (the released code:
 *           the same at 2 and 4 bits, (mx - mn) / 8 at 3 bits)
 *   scale rounded to fp16 when half_scale (it is stored at 16 bits); a scale that is 0 or not
 *   finite (constant group) becomes 1
 *   zero = round(-mn / scale) (half to even; clamped to int16 when half_scale, its stored width)
 *   q = clamp(round(x / scale) + zero, 0, 2^bits - 1),   x_hat = scale * (q - zero)
 * in fp32. bits 1..8 (int3_bug needs bits >= 2). RB_ENUMERIC (nothing written) when half_scale
 * and a finite scale overflows fp16. */
int rb_rotatekv_quant(const float *x, size_t n, int bits, float clip, int int3_bug, int half_scale,
                      uint8_t *q, float *scale, float *zero);

/* One key row (heads x head_dim) of token position pos, in place: RB_FORWARD maps the data's
 * basis to the stored one (inverse RoPE when the geometry has a RoPE base, then the Hadamard,
 * then the channel order P: stored[j] = rotated[order[j]]), RB_INVERSE maps back. */
int rb_rotatekv_key_transform(void *state, float *row, size_t pos, rb_dir dir);
/* The calibrated channel order (argsort ascending of the signed channel sums of the rotated
 * calibration keys) over all heads x head_dim channels, or NULL before calibration or when
 * reorder is off. */
const size_t *rb_rotatekv_order(const void *state);
/* Whether cached token t is an attention sink kept in fp16. */
int rb_rotatekv_is_sink(const void *state, size_t t);

#endif
