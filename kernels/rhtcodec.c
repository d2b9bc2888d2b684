/* Fused RHT + codebook row codec: argument checks, the references (the multi-pass pipeline of
 * the existing kernels, chunk by chunk) and the dispatch (kernels/rhtcodec.h). */
#include "kernels/rhtcodec.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/error.h"
#include "kernels/hadamard.h"
#include "kernels/quant.h"
#include "kernels/rotate.h"
#include "kernels/rowcodec.h"
#include "kernels/vecops.h"

size_t rb_rhtcodec_row_bytes(const rb_rhtcodec *p) {
    return rb_pack_bytes(p->d, p->bits) + sizeof(float);
}

size_t rb_rhtcodec_scratch_bytes(size_t d) {
    size_t K = 1;
    if (rb_hadamard_lookup(d, &K, NULL)) rb_error_clear();
    /* Reference: a chunk of fp32 rows, their byte indices and double norms. AVX-512: two
     * transposed 16-row tiles, two tiles of packed words (d / 4 + 16 columns) and the mix's
     * offset table (K x K uint16). */
    size_t ref = RB_RHTCODEC_CHUNK * (5 * d + sizeof(double));
    size_t fast = 2 * 64 * d + 2 * 64 * (d / 4 + 16) + 2 * K * K;
    return (ref > fast ? ref : fast) + 64;
}

/* 64-byte aligned start of the caller's scratch (it reserves the slack). */
static void *align64(void *scratch) {
    return (void *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63);
}

static const char *who_of(const rb_rhtcodec *p) {
    return p->who ? p->who : "rhtcodec";
}

/* ---- references ---- */

int rb_rhtcodec_encode_f32_ref(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                               uint8_t *codes, size_t ldc, size_t row0, void *scratch) {
    size_t d = p->d, payload = rb_pack_bytes(d, p->bits);
    /* Carved from untyped bytes: [CHUNK doubles][CHUNK x d floats][CHUNK x d bytes]. */
    unsigned char *base = align64(scratch);
    double *nrm = (void *) base;
    float *u = (void *) (base + RB_RHTCODEC_CHUNK * sizeof(double));
    uint8_t *idx = base + RB_RHTCODEC_CHUNK * (sizeof(double) + d * sizeof(float));
    for (size_t c0 = 0; c0 < rows; c0 += RB_RHTCODEC_CHUNK) {
        size_t n = rows - c0 < RB_RHTCODEC_CHUNK ? rows - c0 : RB_RHTCODEC_CHUNK, bad = n;
        const float *xc = x + c0 * ldx;
        uint8_t *cc = codes + c0 * ldc;
        rb_rows_sqnorm_f32(xc, n, d, ldx, nrm);
        for (size_t i = 0; i < n; i++) {
            double s = sqrt(nrm[i]);
            if (!isfinite(s) || s > FLT_MAX) {
                bad = i;
                break;
            }
            float sf = (float) s;
            memcpy(cc + i * ldc + payload, &sf, sizeof sf);
            nrm[i] = s;
        }
        /* The rows before a bad one are finished; then the error names it. */
        if (bad) {
            rb_rows_unit_f32(xc, bad, d, ldx, nrm, u, d);
            int rc = rb_rht_f32(u, d, bad, d, p->d1, p->d2, RB_FORWARD);
            if (!rc) rc = rb_codebook_quantize_f32(p->cb, u, bad, d, d, idx);
            if (!rc) rc = rb_pack_rows(idx, bad, d, p->bits, cc, ldc);
            if (rc) return rc;
        }
        if (bad < n) {
            double s = sqrt(nrm[bad]);
            return rb_error_set(RB_ENUMERIC, "%s: vector %zu %s", who_of(p), row0 + c0 + bad,
                                isfinite(s) ? "has a norm beyond the fp32 range"
                                            : "has a NaN or infinite element");
        }
    }
    return RB_OK;
}

int rb_rhtcodec_decode_f32_ref(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                               float *y, size_t ldy, unsigned flags, void *scratch) {
    (void) flags;
    (void) scratch;
    size_t d = p->d, payload = rb_pack_bytes(d, p->bits);
    float nrm[RB_RHTCODEC_CHUNK];
    for (size_t c0 = 0; c0 < rows; c0 += RB_RHTCODEC_CHUNK) {
        size_t n = rows - c0 < RB_RHTCODEC_CHUNK ? rows - c0 : RB_RHTCODEC_CHUNK;
        const uint8_t *cc = codes + c0 * ldc;
        float *yc = y + c0 * ldy;
        int rc = rb_codebook_decode_rows_f32(p->cb, cc, ldc, n, d, p->bits, yc, ldy);
        if (!rc) rc = rb_rht_f32(yc, d, n, ldy, p->d1, p->d2, RB_INVERSE);
        if (rc) return rc;
        for (size_t i = 0; i < n; i++) memcpy(&nrm[i], cc + i * ldc + payload, sizeof(float));
        rb_rows_scale_f32(yc, n, d, ldy, nrm);
    }
    return RB_OK;
}

/* ---- dispatch ---- */

/* Under the CUDA backend the "cuda" variants (kernels/cuda_offload.c) run the GPU codec
 * (gpu.h rht_codebook_encode / _decode) on staged copies; they decline what it does not take. */
RB_OP_DEFINE(rb_op_rhtcodec_encode_f32, "rhtcodec_encode_f32",
             RB_CUDA_VARIANT(rb_rhtcodec_encode_f32_cuda)
                 RB_VARIANT("avx512", RB_ISA_AVX512, rb_rhtcodec_encode_f32_avx512),
             RB_VARIANT("ref", 0, rb_rhtcodec_encode_f32_ref));
RB_OP_DEFINE(rb_op_rhtcodec_decode_f32, "rhtcodec_decode_f32",
             RB_CUDA_VARIANT(rb_rhtcodec_decode_f32_cuda)
                 RB_VARIANT("avx512", RB_ISA_AVX512, rb_rhtcodec_decode_f32_avx512),
             RB_VARIANT("ref", 0, rb_rhtcodec_decode_f32_ref));

static int check(const char *fn, const rb_rhtcodec *p, size_t rows, size_t ldrow, size_t ldc,
                 const void *data, const void *codes, const void *scratch) {
    if (!p || !p->d1 || !p->cb || !data || !codes || !scratch)
        return rb_error_set(RB_EINVAL, "%s: NULL argument", fn);
    int rc = rb_hadamard_lookup(p->d, NULL, NULL);
    if (rc) return rc;
    if (p->bits < 1 || p->bits > 8)
        return rb_error_set(RB_EINVAL, "%s: bits = %d is outside 1..8", fn, p->bits);
    if (p->cb->k < 1 || p->cb->k > ((size_t) 1 << p->bits))
        return rb_error_set(RB_EINVAL, "%s: k = %zu centroids do not fit %d bits", fn, p->cb->k,
                            p->bits);
    if (rows > 1 && ldrow < p->d)
        return rb_error_set(RB_EINVAL, "%s: row stride %zu is shorter than d = %zu", fn, ldrow,
                            p->d);
    if (rows > 1 && ldc < rb_rhtcodec_row_bytes(p))
        return rb_error_set(RB_EINVAL, "%s: code stride %zu is shorter than a code row (%zu)", fn,
                            ldc, rb_rhtcodec_row_bytes(p));
    return RB_OK;
}

static int encode_dispatch(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                           uint8_t *codes, size_t ldc, size_t row0, void *scratch) {
    RB_DISPATCH(rb_op_rhtcodec_encode_f32, rb_rhtcodec_encode_fn,
                (p, x, rows, ldx, codes, ldc, row0, scratch));
}

int rb_rhtcodec_encode_f32(const rb_rhtcodec *p, const float *x, size_t rows, size_t ldx,
                           uint8_t *codes, size_t ldc, size_t row0, void *scratch) {
    int rc = check("rhtcodec_encode", p, rows, ldx, ldc, x, codes, scratch);
    if (rc || rows == 0) return rc;
    return encode_dispatch(p, x, rows, ldx, codes, ldc, row0, scratch);
}

static int decode_dispatch(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                           float *y, size_t ldy, unsigned flags, void *scratch) {
    RB_DISPATCH(rb_op_rhtcodec_decode_f32, rb_rhtcodec_decode_fn,
                (p, codes, ldc, rows, y, ldy, flags, scratch));
}

int rb_rhtcodec_decode_f32(const rb_rhtcodec *p, const uint8_t *codes, size_t ldc, size_t rows,
                           float *y, size_t ldy, unsigned flags, void *scratch) {
    int rc = check("rhtcodec_decode", p, rows, ldy, ldc, y, codes, scratch);
    if (rc || rows == 0) return rc;
    return decode_dispatch(p, codes, ldc, rows, y, ldy, flags, scratch);
}

rb_cost rb_rhtcodec_cost(size_t d, int bits, size_t rows) {
    rb_cost h = rb_hadamard_cost(d, rows, sizeof(float));
    double r = (double) rows, n = (double) d;
    return (rb_cost){h.flops + 4.0 * n * r, r * (4.0 * n + (double) rb_pack_bytes(d, bits) + 4.0)};
}
