/* Fused RHT + codebook row codec (TurboQuant_mse's encode/decode): norm, normalization, random
 * Hadamard rotation, nearest centroid and bit packing in one pass per group of rows. */
#ifndef RB_RHTCODEC_H
#define RB_RHTCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/codebook.h"
#include "kernels/dispatch.h"

/* What is fixed per codec: rows of d floats (d a supported Hadamard order), the RHT's signs d1
 * (and d2 for two blocks, else NULL; kernels/rotate.h), a codebook of k <= 2^bits centroids in
 * the rotated unit vector's units, bits in 1..8. `who` names the caller in error messages. */
typedef struct rb_rhtcodec {
    size_t d;
    const float *d1, *d2;
    const rb_codebook *cb;
    int bits;
    const char *who;
} rb_rhtcodec;

/* A code row is [rb_pack_bytes(d, bits) bytes: the packed indices][fp32 |x|, unaligned]; rows
 * are ldc >= rb_rhtcodec_row_bytes apart and bytes past a row's end are never written. */
size_t rb_rhtcodec_row_bytes(const rb_rhtcodec *p);

/* Caller-owned scratch of every call (the kernels allocate nothing): rows are handled in chunks
 * of RB_RHTCODEC_CHUNK. */
enum { RB_RHTCODEC_CHUNK = 32 };
size_t rb_rhtcodec_scratch_bytes(size_t d);

/* Encode of `rows` rows x (row r at x + r * ldx), exactly methods/turboquant.c's multi-pass
 * block path (and gpu.h's rht_codebook_encode), per row:
 *   nrm = sum_j (double) x_j^2 in rb_lanes16_sum's order (kernels/vecops.h); |x| = sqrt(nrm)
 *   (double), stored as (float) |x|; u = x normalized in fp32 by rb_unit_factors(|x|)
 *   (kernels/rowcodec.h: u_j = x_j * (float) (1 / |x|) but for subnormal rows);
 *   v = rb_rht_f32(u, d1, d2, FORWARD)
 *   idx_j = rb_codebook index of v_j, packed with rb_pack_bits.
 * RB_ENUMERIC for a row with a NaN / Inf element or |x| > FLT_MAX, naming it as "<who>: vector
 * <row0 + r> ..." (the rows before it are written, the others not); RB_EINVAL / RB_ESIZE for bad
 * arguments. scratch: rb_rhtcodec_scratch_bytes(d) bytes, 64-byte alignment not required. */
int rb_rhtcodec_encode_f32(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                           uint8_t *codes, size_t ldc, size_t row0, void *scratch);

/* The inverse, per row: y = |x| * (rb_rht_f32(c[idx], d1, d2, INVERSE)) with the product by the
 * stored fp32 |x| last (rb_rows_scale_f32). RB_EINVAL names a code >= k. flags:
 * RB_RHTCODEC_STREAM asks for non-temporal stores of y (for outputs much larger than the cache,
 * where the write-allocate reads would cost a third of the traffic); the bits are the same. */
enum { RB_RHTCODEC_STREAM = 1 };
int rb_rhtcodec_decode_f32(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                           float *y, size_t ldy, unsigned flags, void *scratch);

/* Work per row (encode or decode): the Hadamard's flops plus 4 per element (norm, scale,
 * quantize); traffic: the fp32 row and its code row. */
rb_cost rb_rhtcodec_cost(size_t d, int bits, size_t rows);

/* Kernel slots, after the argument checks. The references run the existing kernels' public
 * entry points in sequence on chunks of RB_RHTCODEC_CHUNK rows (the multi-pass pipeline the
 * codec used before, so obviously the same function); the fused variants give the same bits and
 * decline shapes they do not handle. */
typedef int (*rb_rhtcodec_encode_fn)(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                                     uint8_t *codes, size_t ldc, size_t row0, void *scratch);
typedef int (*rb_rhtcodec_decode_fn)(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc,
                                     size_t rows, float *y, size_t ldy, unsigned flags,
                                     void *scratch);
extern const rb_op rb_op_rhtcodec_encode_f32;
extern const rb_op rb_op_rhtcodec_decode_f32;
int rb_rhtcodec_encode_f32_ref(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                               uint8_t *codes, size_t ldc, size_t row0, void *scratch);
int rb_rhtcodec_decode_f32_ref(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                               float *y, size_t ldy, unsigned flags, void *scratch);
/* AVX-512 (kernels/x86/rhtcodec_avx512.c): one block of signs, d = K * 2^m with 2^m >= 16 and
 * d a multiple of 32 (any K; K = 12 has a compile-time mix); declines the rest. Both first try
 * the row-major kernels below (d <= 256, two blocks too). */
int rb_rhtcodec_encode_f32_avx512(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                                  uint8_t *codes, size_t ldc, size_t row0, void *scratch);
int rb_rhtcodec_decode_f32_avx512(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc,
                                  size_t rows, float *y, size_t ldy, unsigned flags, void *scratch);
/* Its row-major encode and decode (kernels/x86/rhtcodec_enc_avx512.c, rhtcodec_dec_avx512.c),
 * which the AVX-512 variants try first: d = 32, 64, 128 or 256, one or two blocks of signs that
 * are all +-1, bits 1..4 (encode) or any (decode); both also take d = K * 2^m (K > 1, 2^m = 16
 * .. 256) with one block of signs at bits 1..4 (the encode any signs, the decode +-1); they
 * decline the rest. */
int rb_rhtcodec_encode_rows_f32_avx512(const rb_rhtcodec *p, const float *x, size_t rows,
                                       size_t ldx, uint8_t *codes, size_t ldc, size_t row0,
                                       void *scratch);
int rb_rhtcodec_decode_rows_f32_avx512(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc,
                                       size_t rows, float *y, size_t ldy, unsigned flags,
                                       void *scratch);

#endif
