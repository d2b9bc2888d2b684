/* Row-batched codec primitives: plain-C references and their dispatch (kernels/rowcodec.h). */
#include "kernels/rowcodec.h"

#include "kernels/error.h"
#include "kernels/quant.h"
#include "kernels/vecops.h"

int rb_pack_rows_ref(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                     size_t ldo) {
    for (size_t r = 0; r < rows; r++) {
        int rc = rb_pack_bits(codes + r * n, n, bits, out + r * ldo);
        if (rc) return rc;
    }
    return RB_OK;
}

int rb_unpack_rows_ref(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                       uint8_t *codes) {
    for (size_t r = 0; r < rows; r++) {
        int rc = rb_unpack_bits(in + r * ldi, n, bits, codes + r * n);
        if (rc) return rc;
    }
    return RB_OK;
}

int rb_codebook_decode_rows_f32_ref(const rb_codebook *cb, const uint8_t *in, size_t ldi,
                                    size_t rows, size_t n, int bits, float *y, size_t ldy) {
    enum { CHUNK = 64 }; /* 64 codes are a whole number of bytes at any width */
    uint8_t idx[CHUNK];
    for (size_t r = 0; r < rows; r++)
        for (size_t j0 = 0; j0 < n; j0 += CHUNK) {
            size_t len = n - j0 < CHUNK ? n - j0 : CHUNK;
            int rc = rb_unpack_bits(in + r * ldi + j0 / 8 * (size_t) bits, len, bits, idx);
            if (rc) return rc;
            for (size_t j = 0; j < len; j++) {
                if (idx[j] >= cb->k)
                    return rb_error_set(RB_EINVAL,
                                        "codebook: code %u of row %zu, element %zu is >= k = %zu",
                                        idx[j], r, j0 + j, cb->k);
                y[r * ldy + j0 + j] = cb->centroids[idx[j]];
            }
        }
    return RB_OK;
}

/* One row's reduction in rb_lanes16_sum's order (b == a for the squared norm). */
static double lanes16_dot(const float *a, const float *b, size_t n) {
    double p[16] = {0};
    for (size_t j = 0; j < n; j++) p[j % 16] += (double) a[j] * b[j];
    return rb_lanes16_sum(p);
}

int rb_rows_sqnorm_f32_ref(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                           double *out) {
    (void) b;
    for (size_t r = 0; r < rows; r++) out[r] = lanes16_dot(a + r * stride, a + r * stride, n);
    return RB_OK;
}

int rb_rows_dot_f32_ref(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                        double *out) {
    for (size_t r = 0; r < rows; r++) out[r] = lanes16_dot(a + r * stride, b + r * stride, n);
    return RB_OK;
}

void rb_rows_unit_f32(const float *x, size_t rows, size_t n, size_t ldx, const double *s, float *u,
                      size_t ldu) {
    for (size_t r = 0; r < rows; r++) {
        float pre, inv;
        rb_unit_factors(s[r], &pre, &inv);
        for (size_t j = 0; j < n; j++) u[r * ldu + j] = x[r * ldx + j] * pre * inv;
    }
}

int rb_rows_scale_f64_f32_ref(const float *x, size_t rows, size_t n, size_t ldx, const double *s,
                              float *y, size_t ldy) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) y[r * ldy + j] = (float) ((double) x[r * ldx + j] * s[r]);
    return RB_OK;
}

int rb_rows_scale_f32_ref(float *x, size_t rows, size_t n, size_t stride, const float *s) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) x[r * stride + j] *= s[r];
    return RB_OK;
}

int rb_rows_mul_f32_ref(float *x, size_t rows, size_t n, size_t stride, const float *d) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) x[r * stride + j] *= d[j];
    return RB_OK;
}

RB_OP_DEFINE(rb_op_rows_scale_f32, "rows_scale_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_rows_scale_f32_avx512),
             RB_VARIANT("ref", 0, rb_rows_scale_f32_ref));
RB_OP_DEFINE(rb_op_rows_mul_f32, "rows_mul_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_rows_mul_f32_avx512),
             RB_VARIANT("ref", 0, rb_rows_mul_f32_ref));

static int rows_scale_dispatch(const rb_op *op, float *x, size_t rows, size_t n, size_t stride,
                               const float *s) {
    RB_DISPATCH(*op, rb_rows_scale_fn, (x, rows, n, stride, s));
}

void rb_rows_scale_f32(float *x, size_t rows, size_t n, size_t stride, const float *s) {
    if (rows && n) rows_scale_dispatch(&rb_op_rows_scale_f32, x, rows, n, stride, s);
}

void rb_rows_mul_f32(float *x, size_t rows, size_t n, size_t stride, const float *d) {
    if (rows && n) rows_scale_dispatch(&rb_op_rows_mul_f32, x, rows, n, stride, d);
}

int rb_dequant_rows_f32_ref(const uint8_t *codes, size_t rows, size_t n, size_t group, int asym,
                            const float *scales, const float *zeros, float *y, size_t ldy) {
    size_t ng = (n + group - 1) / group;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < n; c++) {
            size_t p = r * ng + c / group;
            uint8_t b = codes[r * n + c];
            float q = asym ? (float) b : (float) (int8_t) b, z = asym ? zeros[p] : 0.0f;
            y[r * ldy + c] = scales[p] * (q - z);
        }
    return RB_OK;
}

RB_OP_DEFINE(rb_op_dequant_rows_f32, "dequant_rows_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_dequant_rows_f32_avx512),
             RB_VARIANT("ref", 0, rb_dequant_rows_f32_ref));

static int dequant_dispatch(const uint8_t *codes, size_t rows, size_t n, size_t group, int asym,
                            const float *scales, const float *zeros, float *y, size_t ldy) {
    RB_DISPATCH(rb_op_dequant_rows_f32, rb_dequant_rows_fn,
                (codes, rows, n, group, asym, scales, zeros, y, ldy));
}

void rb_dequant_rows_f32(const uint8_t *codes, size_t rows, size_t n, size_t group, int asym,
                         const float *scales, const float *zeros, float *y, size_t ldy) {
    if (rows && n && group) dequant_dispatch(codes, rows, n, group, asym, scales, zeros, y, ldy);
}

RB_OP_DEFINE(rb_op_pack_rows, "pack_rows", RB_VARIANT("avx512", RB_ISA_AVX512, rb_pack_rows_avx512),
             RB_VARIANT("ref", 0, rb_pack_rows_ref));
RB_OP_DEFINE(rb_op_unpack_rows, "unpack_rows",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_unpack_rows_avx512),
             RB_VARIANT("ref", 0, rb_unpack_rows_ref));
RB_OP_DEFINE(rb_op_codebook_decode_rows_f32, "codebook_decode_rows_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_codebook_decode_rows_f32_avx512),
             RB_VARIANT("ref", 0, rb_codebook_decode_rows_f32_ref));
RB_OP_DEFINE(rb_op_rows_sqnorm_f32, "rows_sqnorm_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_rows_sqnorm_f32_avx512),
             RB_VARIANT("ref", 0, rb_rows_sqnorm_f32_ref));
RB_OP_DEFINE(rb_op_rows_dot_f32, "rows_dot_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_rows_dot_f32_avx512),
             RB_VARIANT("ref", 0, rb_rows_dot_f32_ref));
RB_OP_DEFINE(rb_op_rows_scale_f64_f32, "rows_scale_f64_f32",
             RB_VARIANT("avx512", RB_ISA_AVX512, rb_rows_scale_f64_f32_avx512),
             RB_VARIANT("ref", 0, rb_rows_scale_f64_f32_ref));

int rb_pack_rows_check(const char *who, size_t rows, size_t n, int bits, size_t ld) {
    if (bits < 1 || bits > 8)
        return rb_error_set(RB_EINVAL, "%s: bits = %d is outside 1..8", who, bits);
    if (rows > 1 && ld < rb_pack_bytes(n, bits))
        return rb_error_set(RB_EINVAL, "%s: row stride %zu is shorter than a packed row (%zu)", who,
                            ld, rb_pack_bytes(n, bits));
    return RB_OK;
}

static int pack_dispatch(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out,
                         size_t ldo) {
    RB_DISPATCH(rb_op_pack_rows, rb_pack_rows_fn, (codes, rows, n, bits, out, ldo));
}

int rb_pack_rows(const uint8_t *codes, size_t rows, size_t n, int bits, uint8_t *out, size_t ldo) {
    int rc = rb_pack_rows_check("pack_rows", rows, n, bits, ldo);
    if (rc || rows == 0 || n == 0) return rc;
    return pack_dispatch(codes, rows, n, bits, out, ldo);
}

static int unpack_dispatch(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits,
                           uint8_t *codes) {
    RB_DISPATCH(rb_op_unpack_rows, rb_unpack_rows_fn, (in, ldi, rows, n, bits, codes));
}

int rb_unpack_rows(const uint8_t *in, size_t ldi, size_t rows, size_t n, int bits, uint8_t *codes) {
    int rc = rb_pack_rows_check("unpack_rows", rows, n, bits, ldi);
    if (rc || rows == 0 || n == 0) return rc;
    return unpack_dispatch(in, ldi, rows, n, bits, codes);
}

static int decode_dispatch(const rb_codebook *cb, const uint8_t *in, size_t ldi, size_t rows,
                           size_t n, int bits, float *y, size_t ldy) {
    RB_DISPATCH(rb_op_codebook_decode_rows_f32, rb_codebook_decode_rows_fn,
                (cb, in, ldi, rows, n, bits, y, ldy));
}

int rb_codebook_decode_rows_f32(const rb_codebook *cb, const uint8_t *in, size_t ldi, size_t rows,
                                size_t n, int bits, float *y, size_t ldy) {
    int rc = rb_pack_rows_check("codebook_decode_rows", rows, n, bits, ldi);
    if (rc) return rc;
    if (!cb || cb->k < 1 || cb->k > RB_CODEBOOK_MAX)
        return rb_error_set(RB_EINVAL, "codebook: not initialised");
    if (rows > 1 && ldy < n)
        return rb_error_set(RB_EINVAL, "codebook_decode_rows: output stride %zu < n = %zu", ldy, n);
    if (rows == 0 || n == 0) return RB_OK;
    return decode_dispatch(cb, in, ldi, rows, n, bits, y, ldy);
}

static int reduce_dispatch(const rb_op *op, const float *a, const float *b, size_t rows, size_t n,
                           size_t stride, double *out) {
    RB_DISPATCH(*op, rb_rows_reduce_fn, (a, b, rows, n, stride, out));
}

/* The public vecops entry points (kernels/vecops.h) run through these ops. */
void rb_rows_sqnorm_f32(const float *x, size_t rows, size_t n, size_t stride, double *out) {
    if (rows) reduce_dispatch(&rb_op_rows_sqnorm_f32, x, NULL, rows, n, stride, out);
}

void rb_rows_dot_f32(const float *a, const float *b, size_t rows, size_t n, size_t stride,
                     double *out) {
    if (rows) reduce_dispatch(&rb_op_rows_dot_f32, a, b, rows, n, stride, out);
}

static int scale_dispatch(const float *x, size_t rows, size_t n, size_t ldx, const double *s,
                          float *y, size_t ldy) {
    RB_DISPATCH(rb_op_rows_scale_f64_f32, rb_rows_scale_f64_fn, (x, rows, n, ldx, s, y, ldy));
}

void rb_rows_scale_f64_f32(const float *x, size_t rows, size_t n, size_t ldx, const double *s,
                           float *y, size_t ldy) {
    if (rows && n) scale_dispatch(x, rows, n, ldx, s, y, ldy);
}

rb_cost rb_pack_cost(size_t n, int bits) {
    return (rb_cost){0, (double) n * (1.0 + bits / 8.0)};
}

rb_cost rb_codebook_decode_rows_cost(size_t n, int bits) {
    return (rb_cost){0, (double) n * (bits / 8.0 + sizeof(float))};
}

rb_cost rb_rows_reduce_cost(size_t rows, size_t n, int dot) {
    double elems = (double) rows * (double) n;
    return (rb_cost){2.0 * elems, elems * sizeof(float) * (dot ? 2 : 1) + rows * sizeof(double)};
}

rb_cost rb_rows_scale_cost(size_t rows, size_t n, size_t nfactors, size_t factor_bytes) {
    double elems = (double) rows * (double) n;
    return (rb_cost){elems, 2.0 * elems * sizeof(float) + (double) (nfactors * factor_bytes)};
}

rb_cost rb_dequant_rows_cost(size_t rows, size_t n, size_t group, int asym) {
    double elems = (double) rows * (double) n;
    double groups = (double) rows * (double) ((n + group - 1) / (group ? group : 1));
    return (rb_cost){elems * (asym ? 2 : 1),
                     elems * (1 + sizeof(float)) + groups * sizeof(float) * (asym ? 2 : 1)};
}
