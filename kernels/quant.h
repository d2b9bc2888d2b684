/* Integer quantizers (QuaRot conventions), fake quantization and b-bit packing. */
#ifndef RB_QUANT_H
#define RB_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dispatch.h"

/* Which elements share one (scale, zero) pair. A matrix is rows x cols, row-major with a row
 * stride ld (in elements). PER_GROUP: contiguous groups of `group` elements along each row; the
 * last group of a row is shorter when group does not divide cols. */
typedef enum rb_quant_gran {
    RB_QUANT_PER_TENSOR = 0,
    RB_QUANT_PER_ROW = 1,
    RB_QUANT_PER_COL = 2,
    RB_QUANT_PER_GROUP = 3,
} rb_quant_gran;

typedef enum rb_quant_round {
    RB_ROUND_NEAREST_EVEN = 0, /* rintf in the default rounding mode (torch.round) */
    RB_ROUND_STOCHASTIC = 1,   /* floor(t) + (u < t - floor(t)), u Philox uniform32 */
} rb_quant_round;

/* One quantizer. A zero-initialised spec with bits set is QuaRot's symmetric per-tensor RNE.
 *
 * For each group with raw minimum mn and maximum mx (in this order):
 *   zero_in_range: mn = min(mn, 0), mx = max(mx, 0)   (QuaRot per-token path; its group path
 *                  and the hand example asym INT4 [1,2,3,4] -> scale 0.2, zero -5, codes
 *                  [0,5,10,15] leave it off)
 *   clip:          mn *= clip, mx *= clip              (clip == 0 means 1)
 *   symmetric:     maxq = 2^(b-1) - 1, a = max(-mn, mx, range_min), s = a / maxq;
 *                  s == 0 (an all-zero group) gives s = 1; z = 0;
 *                  code = clamp(round(x / s), -(maxq+1), maxq), stored as an int8 byte
 *   asymmetric:    maxq = 2^b - 1, s = max(mx - mn, range_min) / maxq; if s == 0 (a constant
 *                  group, or a range that underflows) the range is widened to
 *                  [mn - m, mx + m] with m = max(1, |mn|), which is QuaRot's [-1, 1] for an
 *                  all-zero group; z = round(-mn / s) (a float holding an integer, not
 *                  clamped, so it may lie outside 0..maxq); code = clamp(round(x/s) + z, 0, maxq)
 *   dequant:       s * (code - z)
 * All arithmetic is fp32 in exactly this order; every variant reproduces it bit for bit.
 * Symmetric 1-bit (maxq = 0) is rejected; use asymmetric 1-bit or a codebook. */
typedef struct rb_quant_spec {
    int bits; /* 1..8 */
    int asym; /* 0 symmetric, 1 asymmetric */
    rb_quant_gran gran;
    size_t group;      /* PER_GROUP only, >= 1 */
    float clip;        /* range multiplier in (0, inf); 0 means 1 */
    float range_min;   /* floor on a (symmetric) or mx - mn (asymmetric); QuaRot weights: 1e-5 */
    int zero_in_range; /* 1: the range is forced to contain 0 */
    rb_quant_round round;
    uint64_t seed, stream; /* stochastic rounding: element (r, c) draws uniform r * cols + c */
    /* 1: scales and zero points are stored in fp16. rb_quant_params computes them as above, then
     * rounds each to the nearest fp16 value (rb_f16_round), or fails with RB_ENUMERIC if |s| or
     * |z| is beyond fp16's 65504 (the quantizers' detail then begins "quant: row R, group G: "
     * for row and group granularity, PER_ROW being group 0; "quant: column C: ", "quant:
     * tensor: " for the others); the codes are then chosen against the rounded pair, code =
     * clamp(round(x / s16) + z16), so that s16 * (code - z16) is what a store of fp16 side values
     * decodes. A scale that rounds to 0 (below fp16's subnormals) gives code 0 for every element of
     * its group. The zero point matters: it is an integer in code units that fp16 holds exactly
     * only up to 2048, so rounding it after choosing the codes would shift a group far from zero.
     * The row/group kernels' AVX-512 and AVX2 variants implement it (a group whose pair fails or
     * whose scale rounds to 0 sends the call to the reference); the others and CUDA decline. */
    int side_f16;
} rb_quant_spec;

/* Number of (scale, zero) pairs: 1, rows, cols or rows * ceil(cols / group). scales[p] and
 * zeros[p] are indexed by row (PER_ROW), column (PER_COL) or r * ceil(cols / group) + c / group. */
size_t rb_quant_nparams(const rb_quant_spec *spec, size_t rows, size_t cols);
/* Checks a spec; RB_EINVAL with the reason. */
int rb_quant_spec_check(const rb_quant_spec *spec);

/* Codes, one per element (codes[r * cols + c], contiguous): asymmetric 0..2^b-1; symmetric the
 * int8 value as a two's complement byte. zeros may be NULL for a symmetric spec (zero = 0).
 * NaN or Inf anywhere in x gives RB_ENUMERIC naming the first such element (row-major); outputs
 * are then unspecified. */
int rb_quant_f32(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols, size_t ld,
                 uint8_t *codes, float *scales, float *zeros);
/* y[r * ldy + c] = s * (code - z). */
int rb_dequant_f32(const rb_quant_spec *spec, const uint8_t *codes, size_t rows, size_t cols,
                   const float *scales, const float *zeros, float *y, size_t ldy);
/* Quantize-dequantize in one pass: bit-identical to rb_dequant_f32(rb_quant_f32(x)). y may be x
 * (same ld). scales (and zeros for asymmetric; NULL allowed for symmetric) receive the params. */
int rb_fake_quant_f32(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                      size_t ld, float *y, size_t ldy, float *scales, float *zeros);
/* Quantize straight to 4-bit nibbles (bits <= 4): row r starts at packed + r * ldp bytes
 * (ldp >= ceil(cols / 2)); element 2j is the low nibble of byte j, 2j+1 the high one; an odd
 * last element leaves a zero high nibble. Symmetric codes are two's complement nibbles (QuaRot
 * pack_i4). Every granularity is accepted. */
int rb_quant_pack4_f32(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                       size_t ld, uint8_t *packed, size_t ldp, float *scales, float *zeros);

/* Work per element: min/max (2), divide, round, add, clamp (2), and for fake quant a subtract and
 * a multiply; traffic: read x once, write the output once, write the params. out_bytes is the
 * output size per element (1 codes, 0.5 packed, 4 fake quant). */
rb_cost rb_quant_cost(size_t rows, size_t cols, size_t nparams, double out_bytes);

/* Bit packing. A little-endian bit stream: code i occupies bits [i*b, (i+1)*b) of the stream,
 * bit k of the stream being bit (k % 8) of byte k / 8. For b = 4 this is element 2j in the low
 * nibble, for b = 2 four per byte lowest bits first, for b = 1 eight per byte LSB first, for
 * b = 8 the identity. Only the low b bits of each code are stored; the unused high bits of the
 * last byte are zero. unpack returns the b-bit fields (0..2^b-1); rb_sign_extend turns
 * symmetric codes back into int8 bytes. Bits outside 1..8 give RB_EINVAL. */
size_t rb_pack_bytes(size_t n, int bits);
int rb_pack_bits(const uint8_t *codes, size_t n, int bits, uint8_t *out);
int rb_unpack_bits(const uint8_t *in, size_t n, int bits, uint8_t *codes);
void rb_sign_extend(uint8_t *codes, size_t n, int bits);

/* The row/group kernel slot every variant fills (dispatch op "quant_rows_f32"): granularity
 * PER_ROW (group == cols) or PER_GROUP, spec already checked, x finite or the variant hands the
 * call to the reference (which reports the element). mode selects the output: */
typedef enum rb_quant_out {
    RB_QOUT_CODES = 0, /* uint8 codes, row r at out + r * ldo bytes */
    RB_QOUT_PACK4 = 1, /* 4-bit nibbles, row r at out + r * ldo bytes */
    RB_QOUT_FAKE = 2,  /* float dequantized values, row r at out + r * ldo floats */
} rb_quant_out;
typedef int (*rb_quant_rows_fn)(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                                size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                                float *scales, float *zeros);
extern const rb_op rb_op_quant_rows_f32;
int rb_quant_rows_f32_ref(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                          size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                          float *scales, float *zeros);

/* The exact per-group parameter rule above, shared by every variant: from the raw min and max
 * of a group to (scale, zero), rounded to fp16 under side_f16. Returns RB_ENUMERIC if the scale
 * overflows fp32, or under side_f16 if the scale or zero point is beyond fp16's range. */
int rb_quant_params(const rb_quant_spec *spec, float mn, float mx, float *scale, float *zero);

#endif
