/* Bit-exact small floating-point formats: E2M1 (FP4), FP8 E4M3 / E5M2, UE8M0, MXFP4 and NVFP4. */
#ifndef RB_FPFORMATS_H
#define RB_FPFORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dispatch.h"

/* E2M1: sign (bit 3), 2 exponent bits, 1 mantissa bit, bias 1, no Inf or NaN. Codes 0..7 are
 * 0, 0.5, 1, 1.5, 2, 3, 4, 6; code | 8 is the negative. Encoding rounds to nearest, ties to the
 * even code (0.25 -> 0, 0.75 -> 1, 1.25 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4, 5 -> 4), saturates
 * at +-6 (and maps +-Inf there), keeps the sign of zero (-0 and tiny negatives give code 8,
 * which decodes to -0.0) and maps NaN to 0 (the array encoders reject NaN instead). */
uint8_t rb_e2m1_encode(float x);
float rb_e2m1_decode(uint8_t code); /* low 4 bits */

/* FP8 overflow: a finite value that rounds (RNE, on the grid extended past the top binade)
 * beyond the largest finite value either saturates to +-max (the default; NVFP4 block scales and
 * Transformer Engine casts do this) or becomes the format's special value: NaN for E4M3 (which
 * has no Inf, OCP non-saturating mode), Inf for E5M2 (IEEE). Inf inputs follow the same choice;
 * NaN inputs give NaN (sign | 0x7F in both formats). */
typedef enum rb_fp8_overflow { RB_FP8_SATURATE = 0, RB_FP8_SPECIAL = 1 } rb_fp8_overflow;

/* E4M3: bias 7, max 448 (S.1111.110), NaN = S.1111.111, no Inf, subnormal step 2^-9. */
uint8_t rb_fp8_e4m3_encode(float x, rb_fp8_overflow ov);
float rb_fp8_e4m3_decode(uint8_t code);
/* E5M2: bias 15, max 57344, Inf = S.11111.00, NaN = S.11111.{01,10,11}, subnormal step 2^-16. */
uint8_t rb_fp8_e5m2_encode(float x, rb_fp8_overflow ov);
float rb_fp8_e5m2_decode(uint8_t code);

/* Array casts: RB_ENUMERIC naming the first NaN or Inf element. */
int rb_fp8_e4m3_encode_f32(const float *x, size_t n, rb_fp8_overflow ov, uint8_t *out);
int rb_fp8_e5m2_encode_f32(const float *x, size_t n, rb_fp8_overflow ov, uint8_t *out);
void rb_fp8_e4m3_decode_f32(const uint8_t *in, size_t n, float *y);
void rb_fp8_e5m2_decode_f32(const uint8_t *in, size_t n, float *y);

/* UE8M0: 2^(e - 127) for codes e = 0..254, 0xFF = NaN. encode gives floor(log2 x) + 127 clamped
 * to 0..254 for finite x > 0 (exact for powers of two) and 0xFF otherwise. */
uint8_t rb_ue8m0_encode(float x);
float rb_ue8m0_decode(uint8_t code);

enum { RB_MXFP4_BLOCK = 32, RB_NVFP4_BLOCK = 16 };

/* MXFP4 shared-scale rule. FLOOR (OCP MX v1.0): shared_exp = floor(log2 amax) - 2, so the block
 * amax lands in [4, 8) and values above 6 saturate. CEIL (NVIDIA): shared_exp =
 * ceil(log2(amax / 6)), which never saturates but can waste up to a binade (amax = 3 + d leaves
 * +-4 and +-6 unused). Both clamp shared_exp to -127..127. An all-zero block gets shared_exp =
 * -127 (scale code 0, what log2(0) = -inf clamps to) and zero codes. */
typedef enum rb_mx_rule { RB_MX_FLOOR = 0, RB_MX_CEIL = 1 } rb_mx_rule;
const char *rb_mx_rule_name(rb_mx_rule rule); /* "floor" / "ceil", for the result record */

/* n elements in blocks of 32 (the last may be shorter), element i of block k encoded as
 * E2M1(x / 2^shared_exp_k) (computed exactly in double). packed: rb_pack_bytes(n, 4) bytes, low
 * nibble first; scales: ceil(n / 32) UE8M0 codes. NaN/Inf input: RB_ENUMERIC naming the element;
 * an unknown rule: RB_EINVAL. Decoded values are E2M1 * 2^shared_exp rounded to fp32. */
int rb_mxfp4_encode(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed, uint8_t *scales);
int rb_mxfp4_decode(const uint8_t *packed, const uint8_t *scales, size_t n, float *y);
/* decode(encode(x)) without the packed buffers; y may be x. */
int rb_mxfp4_fake_quant(const float *x, size_t n, rb_mx_rule rule, float *y);

/* NVFP4 over the n elements as one tensor, in blocks of 16 (the last may be shorter):
 *   amax_t = max |x|; s_enc = 6 * 448 / amax_t in fp32 (1 if amax_t = 0, FLT_MAX if it
 *   overflows); per block s_b = e4m3_sat((amax_b / 6) * s_enc) (RNE); a block whose s_b is 0
 *   stores zero codes; otherwise code = E2M1(x * (s_enc / s_b)) and the decoded value is
 *   E2M1 * (s_b / s_enc), every product and quotient in fp32 in that order.
 * packed: rb_pack_bytes(n, 4) bytes; scales: ceil(n / 16) E4M3 codes; *tensor_scale = s_enc. */
int rb_nvfp4_encode(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                    float *tensor_scale);
int rb_nvfp4_decode(const uint8_t *packed, const uint8_t *scales, float tensor_scale, size_t n,
                    float *y);
int rb_nvfp4_fake_quant(const float *x, size_t n, float *y);

/* The block codecs run through dispatch tables (reference, portable "scalar", AVX2, AVX-512;
 * every variant bit-identical to the reference). The public functions above check their
 * arguments and call these. Quantize: any of packed, scales, y (decoded values) may be NULL; y may
 * be x. Input with NaN or Inf fails with RB_ENUMERIC before anything is written. Dequantize: a
 * NaN block scale fails with RB_ENUMERIC after the blocks before it are written. */
typedef int (*rb_mxfp4_quant_fn)(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                                 uint8_t *scales, float *y);
typedef int (*rb_mxfp4_dequant_fn)(const uint8_t *packed, const uint8_t *scales, size_t n,
                                   float *y);
typedef int (*rb_nvfp4_quant_fn)(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                                 float *tensor_scale, float *y);
typedef int (*rb_nvfp4_dequant_fn)(const uint8_t *packed, const uint8_t *scales, float tensor_scale,
                                   size_t n, float *y);
extern const rb_op rb_op_mxfp4_quant_f32;
extern const rb_op rb_op_mxfp4_dequant_f32;
extern const rb_op rb_op_nvfp4_quant_f32;
extern const rb_op rb_op_nvfp4_dequant_f32;

/* Work and traffic of decoding n elements (kernels/dispatch.h's rb_cost), for the benchmarks:
 * MXFP4 one multiply an element (E2M1 times the block's 2^shared_exp), NVFP4 that and one divide
 * a block (s_b / s_enc); both read the packed nibbles and the block scales and write fp32. */
rb_cost rb_mxfp4_dequant_cost(size_t n);
rb_cost rb_nvfp4_dequant_cost(size_t n);

/* Storage in bits per element: MXFP4 4 + 8/32 = 4.25; NVFP4 4 + 8/16 = 4.5 plus the 32-bit
 * tensor scale spread over n elements (4.5 exactly when n = 0 is passed). */
double rb_mxfp4_bits_per_element(void);
double rb_nvfp4_bits_per_element(size_t n);

#endif
