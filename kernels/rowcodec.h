/* Row-batched primitives of the vector codecs: bit packing of many rows into strided codes,
 * codebook decoding straight from packed codes, row norms and inner products that keep the
 * plain references' exact bits, and the codecs' normalization. One dispatch per batch, not per row.
 */
#ifndef RB_ROWCODEC_H
#define RB_ROWCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/codebook.h"
#include "kernels/dispatch.h"

/* Packs `rows` rows of n one-byte codes (row r at codes + r * n) into the rb_pack_bits stream of
 * each row at out + r * ldo (rb_pack_bytes(n, bits) bytes; bytes beyond them are untouched).
 * RB_EINVAL for bits outside 1..8 or ldo shorter than a packed row. */
/* The argument checks of rb_pack_rows / rb_unpack_rows (bits 1..8, ld >= a packed row), shared
 * with the CUDA twins so that both report the same codes and messages. */
int rb_pack_rows_check(const char *who, size_t rows, size_t n, int bits, size_t ld);
int rb_pack_rows(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out, size_t ldo);
/* The inverse: row r's stream at in + r * ldi to codes + r * n (values 0..2^bits - 1). */
int rb_unpack_rows(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits, uint8_t *codes);
/* y[r * ldy + j] = centroids[code j of the stream at in + r * ldi]: unpack and lookup in one pass.
 * RB_EINVAL names the first code >= k (possible when k < 2^bits). */
int rb_codebook_decode_rows_f32(const rb_codebook *cb, const uint8_t *in, size_t ldi, size_t rows,
                                size_t n, int bits, float *y, size_t ldy);

/* y[r * ldy + j] = (float) ((double) x[r * ldx + j] * s[r]): a per-row scale applied in double
 * and rounded once to fp32 (EDEN's scale). y may be x (same stride). */
void rb_rows_scale_f64_f32(const float *x, size_t rows, size_t n, size_t ldx, const double *s,
                           float *y, size_t ldy);

/* How the codecs take a row of norm s (a finite double >= 0) to unit norm, in fp32:
 *   u_j = (x_j * pre) * inv,  pre = 2^64 if s < 2^-64 else 1,  inv = (float) (1 / (s * pre))
 * (inv = 0 when s = 0). The pre-scale is exact (every |x_j| <= s < 2^-64, so x_j * 2^64 neither
 * rounds nor overflows) and keeps inv finite for rows of subnormal elements, where 1 / s would
 * exceed FLT_MAX; for every other row pre = 1 and u_j = x_j * inv, one fp32 multiply (the fused
 * kernels fold inv into the RHT's +-1 signs: x * (inv * d) = (x * inv) * d exactly). */
#define RB_UNIT_TINY     0x1p-64 /* norms below this are pre-scaled */
#define RB_UNIT_PRESCALE 0x1p64f
static inline void rb_unit_factors(double s, float *pre, float *inv) {
    *pre = s < RB_UNIT_TINY ? RB_UNIT_PRESCALE : 1.0f;
    *inv = s > 0 ? (float) (1.0 / (s * (double) *pre)) : 0.0f;
}
/* u[r * ldu + j] = x[r * ldx + j] normalized by rb_unit_factors(s[r]); u may be x (same stride). */
void rb_rows_unit_f32(const float *x, size_t rows, size_t n, size_t ldx, const double *s, float *u,
                      size_t ldu);

/* x[r * stride + j] *= d[j]: one vector of column factors for every row (the RHT's signs). */
void rb_rows_mul_f32(float *x, size_t rows, size_t n, size_t stride, const float *d);

/* Integer dequantization of row/group codes (rb_dequant_f32's rule for PER_ROW / PER_GROUP):
 * element c of row r uses pair p = r * ceil(n / group) + c / group and gives
 *   y[r * ldy + c] = scales[p] * (q - z),  q = code (asym) or (int8) code (sym), z = zeros[p]
 * or 0 (sym; zeros may then be NULL). */
void rb_dequant_rows_f32(const uint8_t *codes, size_t rows, size_t n, size_t group, int asym,
                         const float *scales, const float *zeros, float *y, size_t ldy);

/* Work and traffic of one call on n elements in all (kernels/dispatch.h's rb_cost), for the
 * benchmarks. Packing n codes: 1 byte in, bits / 8 out, no arithmetic; unpacking is the same
 * traffic the other way. */
rb_cost rb_pack_cost(size_t n, int bits);
/* Codebook decode of n codes: a lookup, no arithmetic; bits / 8 bytes in, an fp32 out. */
rb_cost rb_codebook_decode_rows_cost(size_t n, int bits);
/* rows_sqnorm (dot = 0) or rows_dot (dot = 1) of rows x n: a multiply and an add an element
 * (in double), one or two fp32 reads an element, one double written a row. */
rb_cost rb_rows_reduce_cost(size_t rows, size_t n, int dot);
/* rows_scale_f32, rows_scale_f64_f32 and rows_mul_f32 of rows x n: a multiply an element, an
 * fp32 read and write an element, and the factors: nfactors of factor_bytes (one a row, or for
 * rows_mul one a column). */
rb_cost rb_rows_scale_cost(size_t rows, size_t n, size_t nfactors, size_t factor_bytes);
/* dequant_rows of rows x n: scale * (q - z) (asym, 2 an element) or scale * q (1); a code byte
 * in and an fp32 out an element, and a scale (and zero) read a group. */
rb_cost rb_dequant_rows_cost(size_t rows, size_t n, size_t group, int asym);

/* Kernel slots. The references are the loops of rb_pack_bits / rb_unpack_bits per row and plain
 * loops (the row reductions in rb_lanes16_sum's order); variants give the same bits and decline
 * nothing they can handle. */
typedef int (*rb_pack_rows_fn)(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                               size_t ldo);
typedef int (*rb_unpack_rows_fn)(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                                 uint8_t *codes);
typedef int (*rb_codebook_decode_rows_fn)(const rb_codebook *cb, const uint8_t *in, size_t ldi,
                                          size_t rows, size_t n, int bits, float *y, size_t ldy);
typedef int (*rb_rows_reduce_fn)(const float *a, const float *b, size_t rows, size_t n,
                                 size_t stride, double *out);
typedef int (*rb_rows_scale_f64_fn)(const float *x, size_t rows, size_t n, size_t ldx,
                                    const double *s, float *y, size_t ldy);
extern const rb_op rb_op_pack_rows;
extern const rb_op rb_op_unpack_rows;
extern const rb_op rb_op_codebook_decode_rows_f32;
extern const rb_op rb_op_rows_sqnorm_f32; /* b == NULL */
extern const rb_op rb_op_rows_dot_f32;
extern const rb_op rb_op_rows_scale_f64_f32;
extern const rb_op rb_op_rows_scale_f32; /* kernels/vecops.h's rb_rows_scale_f32 */
extern const rb_op rb_op_rows_mul_f32;
extern const rb_op rb_op_dequant_rows_f32;
typedef int (*rb_dequant_rows_fn)(const uint8_t *codes, size_t rows, size_t n, size_t group,
                                  int asym, const float *scales, const float *zeros, float *y,
                                  size_t ldy);
int rb_dequant_rows_f32_ref(const uint8_t *codes, size_t rows, size_t n, size_t group, int asym,
                            const float *scales, const float *zeros, float *y, size_t ldy);
int rb_dequant_rows_f32_avx512(const uint8_t *codes, size_t rows, size_t n, size_t group, int asym,
                               const float *scales, const float *zeros, float *y, size_t ldy);
typedef int (*rb_rows_scale_fn)(float *x, size_t rows, size_t n, size_t stride, const float *s);
int rb_rows_scale_f32_ref(float *x, size_t rows, size_t n, size_t stride, const float *s);
int rb_rows_mul_f32_ref(float *x, size_t rows, size_t n, size_t stride, const float *d);
int rb_rows_scale_f32_avx512(float *x, size_t rows, size_t n, size_t stride, const float *s);
int rb_rows_mul_f32_avx512(float *x, size_t rows, size_t n, size_t stride, const float *d);
int rb_pack_rows_ref(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                     size_t ldo);
int rb_unpack_rows_ref(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                       uint8_t *codes);
int rb_codebook_decode_rows_f32_ref(const rb_codebook *cb, const uint8_t *in, size_t ldi,
                                    size_t rows, size_t n, int bits, float *y, size_t ldy);
int rb_rows_sqnorm_f32_ref(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                           double *out);
int rb_rows_dot_f32_ref(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                        double *out);
int rb_rows_scale_f64_f32_ref(const float *x, size_t rows, size_t n, size_t ldx, const double *s,
                              float *y, size_t ldy);

/* AVX-512 variants (kernels/x86/rowcodec_avx512.c). */
int rb_pack_rows_avx512(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                        size_t ldo);
int rb_unpack_rows_avx512(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                          uint8_t *codes);
int rb_codebook_decode_rows_f32_avx512(const rb_codebook *cb, const uint8_t *in, size_t ldi,
                                       size_t rows, size_t n, int bits, float *y, size_t ldy);
int rb_rows_sqnorm_f32_avx512(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                              double *out);
int rb_rows_dot_f32_avx512(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                           double *out);
int rb_rows_scale_f64_f32_avx512(const float *x, size_t rows, size_t n, size_t ldx, const double *s,
                                 float *y, size_t ldy);

#endif
