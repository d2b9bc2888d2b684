/* The kernel benchmark table and the lifecycle of one instance (setup, timed body, teardown). */
#include "harness/bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/gbench.h"
#include "kernels/kernels.h"
#include "methods/codec_blocks.h"
#include "methods/method.h"

#include <pthread.h>

/* ---- per-op adapters: the call through the public API and its cost ---- */

static const int bits2 = 2, bits4 = 4; /* entry args: a code width */

static int fwht_call(rb_bench_inst *b) {
    return rb_fwht_f32(b->x, b->args.n, b->args.rows, b->args.n, RB_NORM_ORTHO, RB_ORDER_NATURAL);
}

static int hadamard_call(rb_bench_inst *b) {
    return rb_hadamard_f32(b->x, b->args.n, b->args.rows, b->args.n, RB_FORWARD);
}

/* Randomized Hadamard: the signs are drawn in setup (aux holds the plan). */
static int rht_setup(rb_bench_inst *b) {
    rb_rht *r = calloc(1, sizeof *r);
    if (!r) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    b->aux = r;
    return rb_rht_init(r, b->args.n, 1, b->seed);
}
static void rht_teardown(rb_bench_inst *b) {
    rb_rht_free(b->aux);
    free(b->aux);
}
static int rht_call(rb_bench_inst *b) {
    return rb_rht_apply_f32(b->aux, b->x, b->args.rows, b->args.n, RB_FORWARD);
}
static rb_cost rht_cost(size_t n, size_t rows, size_t elem_bytes) {
    rb_cost c = rb_hadamard_cost(n, rows, elem_bytes);
    c.flops += (double) n * (double) rows; /* the sign multiply */
    return c;
}

/* INT4 asymmetric, groups of 128, straight to packed nibbles (QuaRot/KV activations). aux holds
 * the output buffers. */
enum { QGROUP = 128 };
static const rb_quant_spec int4_g128 = {
    .bits = 4, .asym = 1, .gran = RB_QUANT_PER_GROUP, .group = QGROUP};
typedef struct quant_out {
    uint8_t *packed;
    float *scales, *zeros;
} quant_out;
static void quant_teardown(rb_bench_inst *b) {
    quant_out *q = b->aux;
    free(q->packed);
    free(q->scales);
    free(q->zeros);
    free(q);
}
static int quant_setup(rb_bench_inst *b) {
    size_t groups = b->args.rows * ((b->args.n + QGROUP - 1) / QGROUP);
    quant_out *q = calloc(1, sizeof *q);
    if (!q) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    b->aux = q;
    q->packed = malloc(b->args.rows * ((b->args.n + 1) / 2));
    q->scales = malloc(groups * sizeof(float));
    q->zeros = malloc(groups * sizeof(float));
    return q->packed && q->scales && q->zeros ? RB_OK
                                              : rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
}
static int quant_pack4_call(rb_bench_inst *b) {
    quant_out *q = b->aux;
    return rb_quant_pack4_f32(&int4_g128, b->x, b->args.rows, b->args.n, b->args.n, q->packed,
                              (b->args.n + 1) / 2, q->scales, q->zeros);
}
static size_t quant_out_spans(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    const quant_out *q = b->aux;
    size_t groups = rows * ((b->args.n + QGROUP - 1) / QGROUP);
    s[0] = (rb_bench_span){q->packed, rows * ((b->args.n + 1) / 2)};
    s[1] = (rb_bench_span){q->scales, groups * sizeof(float)};
    s[2] = (rb_bench_span){q->zeros, groups * sizeof(float)};
    return 3;
}
static rb_cost quant_pack4_cost(size_t n, size_t rows, size_t elem_bytes) {
    return rb_quant_cost(rows, n, rows * ((n + QGROUP - 1) / QGROUP), 0.5);
}

/* MXFP4 (floor rule) quantize-dequantize in place: the FP4 path of a W4A4 forward. */
static int mxfp4_call(rb_bench_inst *b) {
    return rb_mxfp4_fake_quant(b->x, b->args.n * b->args.rows, RB_MX_FLOOR, b->x);
}
/* NVFP4 quantize-dequantize in place (the tensor scale from the whole call). */
static int nvfp4_call(rb_bench_inst *b) {
    return rb_nvfp4_fake_quant(b->x, b->args.n * b->args.rows, b->x);
}
static rb_cost mxfp4_cost(size_t n, size_t rows, size_t elem_bytes) {
    double elems = (double) n * (double) rows;
    return (rb_cost){4 * elems, 2 * elems * (double) elem_bytes};
}

/* 4-bit codebook quantization (16 Gaussian Lloyd-Max-like centroids): the TurboQuant/EDEN
 * inner step; aux holds the codebook and the indices. */
static int codebook_setup(rb_bench_inst *b) {
    rb_codebook *cb = malloc(sizeof *cb + b->args.n * b->args.rows);
    if (!cb) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    b->aux = cb;
    float c[16];
    for (int i = 0; i < 16; i++) c[i] = -2.7f + 0.36f * (float) i;
    return rb_codebook_init(cb, c, 16);
}
static void codebook_teardown(rb_bench_inst *b) {
    free(b->aux);
}
static int codebook_call(rb_bench_inst *b) {
    rb_codebook *cb = b->aux;
    return rb_codebook_quantize_f32(cb, b->x, b->args.rows, b->args.n, b->args.n,
                                    (uint8_t *) (cb + 1));
}
static size_t codebook_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    s[0] = (rb_bench_span){(const rb_codebook *) b->aux + 1, rows * b->args.n};
    return 1;
}
static rb_cost codebook_cost(size_t n, size_t rows, size_t elem_bytes) {
    double elems = (double) n * (double) rows;
    return (rb_cost){4 * elems, elems * ((double) elem_bytes + 1)};
}

/* SAW-INT4 encode of a KV block (rows = tokens x heads rows of head_dim n): block Hadamard of
 * n, bf16 round trip, INT4, packing (kernels/kv_quant.h). aux holds packed codes then (scale,
 * zero) pairs. */
static int kv_int4_setup(rb_bench_inst *b) {
    size_t rows = b->args.rows, n = b->args.n;
    b->aux = malloc(rows * (n / 2) + rows * 2 * sizeof(float));
    return b->aux ? RB_OK : rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
}
static void kv_int4_teardown(rb_bench_inst *b) {
    free(b->aux);
}
static int kv_int4_call(rb_bench_inst *b) {
    size_t rows = b->args.rows, n = b->args.n;
    uint8_t *packed = b->aux;
    return rb_kv_int4_encode_f32(b->x, rows, n, n, n, RB_KV_BF16, packed,
                                 (float *) (void *) (packed + rows * (n / 2)));
}

/* The codes and the (scale, zero) pairs (whose place depends on the whole block's rows, so the
 * check runs on all of them). */
static size_t kv_int4_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    size_t n = b->args.n;
    s[0] = (rb_bench_span){b->aux, rows * (n / 2) + rows * 2 * sizeof(float)};
    return 1;
}

/* The same block through the same kernel without the rotation or the bf16 step (block m = 1:
 * the papers' plain per-token INT4). Not a method of its own: it is the cheapest encode of the
 * same traffic, so the gap between it and the % of copy above shows how much of the rotating
 * encode's time is arithmetic and how much is the memory floor this machine gives that access
 * pattern. */
static int kv_int4_plain_call(rb_bench_inst *b) {
    size_t rows = b->args.rows, n = b->args.n;
    uint8_t *packed = b->aux;
    return rb_kv_int4_encode_f32(b->x, rows, n, n, 1, 0, packed,
                                 (float *) (void *) (packed + rows * (n / 2)));
}
static rb_cost kv_int4_plain_cost(size_t n, size_t rows, size_t elem_bytes) {
    rb_cost c = rb_kv_int4_encode_cost(n, rows, elem_bytes);
    c.flops = 6.0 * (double) n * (double) rows; /* no butterflies */
    return c;
}

/* Its decode: setup encodes the block once; aux holds the codes, the (scale, zero) pairs and
 * the fp32 output. Cost: read the codes and pairs, write fp32 rows. */
static int kv_int4_dec_setup(rb_bench_inst *b) {
    size_t rows = b->args.rows, n = b->args.n;
    size_t codes = (rows * (n / 2) + 63) / 64 * 64;
    b->aux = aligned_alloc(64, codes + rows * 2 * sizeof(float) + rows * n * sizeof(float));
    if (!b->aux) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    uint8_t *packed = b->aux;
    return rb_kv_int4_encode_f32(b->x, rows, n, n, n, RB_KV_BF16, packed,
                                 (float *) (void *) (packed + codes));
}
static int kv_int4_dec_call(rb_bench_inst *b) {
    size_t rows = b->args.rows, n = b->args.n;
    size_t codes = (rows * (n / 2) + 63) / 64 * 64;
    uint8_t *packed = b->aux;
    float *sz = (float *) (void *) (packed + codes);
    return rb_kv_int4_decode_f32(packed, sz, rows, n, n, sz + 2 * rows, n);
}
static size_t kv_int4_dec_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    size_t codes = (rows * (b->args.n / 2) + 63) / 64 * 64;
    const float *sz = (const float *) (const void *) ((const uint8_t *) b->aux + codes);
    s[0] = (rb_bench_span){sz + 2 * rows, rows * b->args.n * sizeof(float)};
    return 1;
}
static rb_cost kv_int4_dec_cost(size_t n, size_t rows, size_t elem_bytes) {
    rb_cost c = rb_kv_int4_encode_cost(n, rows, elem_bytes);
    c.flops -= (double) n * (double) rows * 2.0; /* no min/max */
    return c;
}

/* The fused RHT + codebook codec on its own (kernels/rhtcodec.h, turboquant_mse's rht path):
 * blocks of rows over the pool with per-slot scratch, as methods/turboquant.c runs it, and the
 * decode streaming its output as turboquant does past 64 MiB. A 2^bits-level Gaussian-like
 * codebook; arg points to bits. aux holds the signs, the codebook, scratch, codes, output. */
typedef struct rhtc_bench {
    rb_rhtcodec p;
    rb_codebook cb;
    float *d1;
    unsigned char *scratch;
    size_t scratch_bytes, block_rows, ldc;
    uint8_t *codes;
    float *y;
    unsigned flags;
} rhtc_bench;

static int rhtc_encode_call(rb_bench_inst *b);
static int rhtc_setup(rb_bench_inst *b) {
    rhtc_bench *h = calloc(1, sizeof *h);
    if (!h) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    b->aux = h;
    size_t n = b->args.n, rows = b->args.rows;
    int bits = *(const int *) b->entry->arg, k = 1 << bits;
    float c[16];
    /* evenly spread over +-2.5 standard deviations of a rotated unit vector's coordinates */
    for (int i = 0; i < k; i++)
        c[i] = (-1.0f + (2.0f * (float) i + 1.0f) / (float) k) * 2.5f / sqrtf((float) n);
    int rc = rb_codebook_init(&h->cb, c, (size_t) k);
    if (rc) return rc;
    h->d1 = malloc(n * sizeof *h->d1);
    h->block_rows = rb_codec_block_rows(n);
    h->scratch_bytes = (rb_rhtcodec_scratch_bytes(n) + 63) / 64 * 64;
    h->scratch = malloc(h->scratch_bytes * RB_CODEC_SLOTS);
    h->p = (rb_rhtcodec){n, h->d1, NULL, &h->cb, bits, b->name};
    h->ldc = rb_rhtcodec_row_bytes(&h->p);
    h->codes = malloc(rows * h->ldc);
    int encode = b->entry->call == rhtc_encode_call;
    size_t ybytes = (rows * n * sizeof(float) + 63) / 64 * 64;
    if (!encode) h->y = aligned_alloc(64, ybytes);
    if (!h->d1 || !h->scratch || !h->codes || (!encode && !h->y))
        return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    rb_rng_rademacher_f32(b->seed, RB_STREAM_RHT_D1, 0, n, h->d1);
    h->flags = rows * n * sizeof(float) > ((size_t) 64 << 20) ? RB_RHTCODEC_STREAM : 0;
    b->cost = rb_rhtcodec_cost(n, bits, rows);
    if (encode) return RB_OK;
    rc = rb_rhtcodec_encode_f32(&h->p, b->x, rows, n, h->codes, h->ldc, 0, h->scratch);
    free(b->x); /* the decode reads only the codes */
    b->x = NULL;
    return rc;
}
static void rhtc_teardown(rb_bench_inst *b) {
    rhtc_bench *h = b->aux;
    free(h->d1);
    free(h->scratch);
    free(h->codes);
    free(h->y);
    free(h);
}
typedef struct rhtc_job {
    rb_bench_inst *b;
    int decode;
} rhtc_job;
static int rhtc_block(void *ctx, size_t slot, size_t r0, size_t rows) {
    rhtc_job *j = ctx;
    rhtc_bench *h = j->b->aux;
    size_t n = j->b->args.n;
    void *scr = h->scratch + slot * h->scratch_bytes;
    if (j->decode)
        return rb_rhtcodec_decode_f32(&h->p, h->codes + r0 * h->ldc, h->ldc, rows, h->y + r0 * n, n,
                                      h->flags, scr);
    return rb_rhtcodec_encode_f32(&h->p, j->b->x + r0 * n, rows, n, h->codes + r0 * h->ldc, h->ldc,
                                  r0, scr);
}
static int rhtc_encode_call(rb_bench_inst *b) {
    rhtc_job j = {b, 0};
    return rb_codec_blocks(b->args.rows, ((rhtc_bench *) b->aux)->block_rows, rhtc_block, &j);
}
static int rhtc_decode_call(rb_bench_inst *b) {
    rhtc_job j = {b, 1};
    return rb_codec_blocks(b->args.rows, ((rhtc_bench *) b->aux)->block_rows, rhtc_block, &j);
}
/* Codes or decoded rows: row r at the same place whatever the rows, so a prefix compares. */
static size_t rhtc_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    const rhtc_bench *h = b->aux;
    if (b->entry->call == rhtc_encode_call)
        s[0] = (rb_bench_span){h->codes, rows * h->ldc};
    else
        s[0] = (rb_bench_span){h->y, rows * b->args.n * sizeof(float)};
    return 1;
}
/* Until setup knows bits: b = 2. */
static rb_cost rhtc_cost(size_t n, size_t rows, size_t elem_bytes) {
    (void) elem_bytes;
    return rb_rhtcodec_cost(n, 2, rows);
}

/* ---- the codecs' row primitives (kernels/rowcodec.h) and the FP4 decoders ----
 * What the vector codecs run around their transforms (packing, unpacking, codebook decode, row
 * norms and inner products, per-row scales, the RHT's sign multiply, integer dequantization) and
 * the MXFP4 / NVFP4 decode of a W4A16 weight. None of these ops runs on the pool. aux holds the
 * buffers an op reads beyond x and the one it writes; arg points to the code width where the op
 * has one. Setup sets the cost from the kernel's own cost function, which needs that width. */
typedef struct rowop {
    uint8_t *codes;  /* rows x n one-byte codes, row stride n */
    uint8_t *packed; /* packed codes, row stride ld; or FP4 nibbles */
    size_t ld;
    float *y;        /* rows x n fp32: the output, or rows_dot's second operand */
    float *f;        /* fp32 factors: one a row or a column; dequant's scales, then its zeros */
    double *d;       /* one double a row: the reductions' output, rows_scale_f64's factors */
    uint8_t *scales; /* FP4 block scales */
    float tensor_scale;
    int bits;
    rb_codebook cb;
} rowop;
enum { ROWOP_GROUP = 128 }; /* dequant_rows: the INT4 g128 layout of rtn and the KV methods */
/* Philox streams of the inputs beyond x (x is stream 0 of the instance's seed). */
enum { STREAM_OPERAND = 1, STREAM_FACTORS = 2 };

static void fill_inputs(float *x, size_t elems, uint64_t seed);

static void rowop_teardown(rb_bench_inst *b) {
    rowop *o = b->aux;
    free(o->codes);
    free(o->packed);
    free(o->y);
    free(o->f);
    free(o->d);
    free(o->scales);
    free(o);
}
static int rowop_new(rb_bench_inst *b, rowop **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    b->aux = *out;
    (*out)->bits = b->entry->arg ? *(const int *) b->entry->arg : 0;
    return RB_OK;
}
/* 64-byte aligned like x: a fast variant may stream its output in whole cache lines. */
static void *alloc64(size_t bytes) {
    return aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64);
}
static int rowop_nomem(const rb_bench_inst *b) {
    return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
}

/* Codes uniform over 0..2^bits - 1, taken from the low mantissa bits of x (so still drawn from
 * the instance's seed), and optionally packed; x is freed, since the ops that take codes do
 * not read it. */
static int codes_setup(rb_bench_inst *b, rowop **out, int pack) {
    int rc = rowop_new(b, out);
    if (rc) return rc;
    rowop *o = *out;
    size_t rows = b->args.rows, n = b->args.n;
    int bits = o->bits ? o->bits : 4;
    o->ld = rb_pack_bytes(n, bits);
    o->codes = alloc64(rows * n);
    o->packed = alloc64(rows * o->ld);
    if (!o->codes || !o->packed) return rowop_nomem(b);
    for (size_t i = 0; i < rows * n; i++) {
        uint32_t u;
        memcpy(&u, &b->x[i], sizeof u);
        o->codes[i] = (uint8_t) (u & ((1u << bits) - 1));
    }
    free(b->x);
    b->x = NULL;
    return pack ? rb_pack_rows(o->codes, rows, n, bits, o->packed, o->ld) : RB_OK;
}
static int pack_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = codes_setup(b, &o, 0);
    b->cost = rb_pack_cost(b->args.rows * b->args.n, o ? o->bits : 4);
    return rc;
}
/* Unpacking moves the same bytes as packing, the other way. */
static int unpack_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = codes_setup(b, &o, 1);
    b->cost = rb_pack_cost(b->args.rows * b->args.n, o ? o->bits : 4);
    return rc;
}
static int pack_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    return rb_pack_rows(o->codes, b->args.rows, b->args.n, o->bits, o->packed, o->ld);
}
static int unpack_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    return rb_unpack_rows(o->packed, o->ld, b->args.rows, b->args.n, o->bits, o->codes);
}
static size_t packed_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    const rowop *o = b->aux;
    s[0] = (rb_bench_span){o->packed, rows * o->ld};
    return 1;
}
static size_t codes_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    s[0] = (rb_bench_span){((const rowop *) b->aux)->codes, rows * b->args.n};
    return 1;
}
static size_t y_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    s[0] = (rb_bench_span){((const rowop *) b->aux)->y, rows * b->args.n * sizeof(float)};
    return 1;
}
static size_t d_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    s[0] = (rb_bench_span){((const rowop *) b->aux)->d, rows * sizeof(double)};
    return 1;
}

/* Codebook decode of packed codes: 2^bits centroids spread evenly over (-1, 1). */
static int cbdec_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = codes_setup(b, &o, 1);
    if (rc) return rc;
    int k = 1 << o->bits;
    float c[RB_CODEBOOK_MAX];
    for (int i = 0; i < k; i++) c[i] = (2.0f * (float) i + 1.0f - (float) k) / (float) k;
    o->y = alloc64(b->args.rows * b->args.n * sizeof(float));
    if (!o->y) return rowop_nomem(b);
    b->cost = rb_codebook_decode_rows_cost(b->args.rows * b->args.n, o->bits);
    return rb_codebook_init(&o->cb, c, (size_t) k);
}
static int cbdec_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    return rb_codebook_decode_rows_f32(&o->cb, o->packed, o->ld, b->args.rows, b->args.n, o->bits,
                                       o->y, b->args.n);
}

/* Row norms and inner products (the codecs' norms, EDEN's <x, q>): the second operand of the
 * dot is another draw of normals. */
static int sqnorm_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = rowop_new(b, &o);
    if (rc) return rc;
    o->d = malloc(b->args.rows * sizeof(double));
    b->cost = rb_rows_reduce_cost(b->args.rows, b->args.n, 0);
    return o->d ? RB_OK : rowop_nomem(b);
}
static int dot_setup(rb_bench_inst *b) {
    int rc = sqnorm_setup(b);
    if (rc) return rc;
    rowop *o = b->aux;
    size_t elems = b->args.rows * b->args.n;
    o->y = alloc64(elems * sizeof(float));
    if (!o->y) return rowop_nomem(b);
    fill_inputs(o->y, elems, rb_seed_derive(b->seed, STREAM_OPERAND, 0));
    b->cost = rb_rows_reduce_cost(b->args.rows, b->args.n, 1);
    return RB_OK;
}
static int sqnorm_call(rb_bench_inst *b) {
    rb_rows_sqnorm_f32(b->x, b->args.rows, b->args.n, b->args.n, ((rowop *) b->aux)->d);
    return RB_OK;
}
static int dot_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    rb_rows_dot_f32(b->x, o->y, b->args.rows, b->args.n, b->args.n, o->d);
    return RB_OK;
}

/* Per-row scales in place (a decode's norms) and per-column factors in place (the RHT's D1).
 * The factors are +-1: the timed calls keep scaling the same rows, and factors of any other
 * magnitude would take them to Inf or to subnormals, which some cores handle in microcode and
 * the benchmark would time instead of the kernel. The multiply costs the same for any value. */
static int scale_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = rowop_new(b, &o);
    if (rc) return rc;
    o->f = malloc(b->args.rows * sizeof(float));
    if (!o->f) return rowop_nomem(b);
    rb_rng_rademacher_f32(b->seed, STREAM_FACTORS, 0, b->args.rows, o->f);
    b->cost = rb_rows_scale_cost(b->args.rows, b->args.n, b->args.rows, sizeof(float));
    return RB_OK;
}
static int mul_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = rowop_new(b, &o);
    if (rc) return rc;
    o->f = malloc(b->args.n * sizeof(float));
    if (!o->f) return rowop_nomem(b);
    rb_rng_rademacher_f32(b->seed, RB_STREAM_RHT_D1, 0, b->args.n, o->f);
    b->cost = rb_rows_scale_cost(b->args.rows, b->args.n, b->args.n, sizeof(float));
    return RB_OK;
}
static int scale_call(rb_bench_inst *b) {
    rb_rows_scale_f32(b->x, b->args.rows, b->args.n, b->args.n, ((rowop *) b->aux)->f);
    return RB_OK;
}
static int mul_call(rb_bench_inst *b) {
    rb_rows_mul_f32(b->x, b->args.rows, b->args.n, b->args.n, ((rowop *) b->aux)->f);
    return RB_OK;
}
/* EDEN's scale in double, out of place (factors in [0.5, 1.5)). */
static int scale64_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = rowop_new(b, &o);
    if (rc) return rc;
    o->d = malloc(b->args.rows * sizeof(double));
    o->y = alloc64(b->args.rows * b->args.n * sizeof(float));
    if (!o->d || !o->y) return rowop_nomem(b);
    rb_rng_uniform_f64(b->seed, STREAM_FACTORS, 0, b->args.rows, o->d);
    for (size_t r = 0; r < b->args.rows; r++) o->d[r] += 0.5;
    b->cost = rb_rows_scale_cost(b->args.rows, b->args.n, b->args.rows, sizeof(double));
    return RB_OK;
}
static int scale64_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    rb_rows_scale_f64_f32(b->x, b->args.rows, b->args.n, b->args.n, o->d, o->y, b->args.n);
    return RB_OK;
}

/* INT4 asymmetric codes in groups of 128 back to fp32 (rtn's and RotateKV's decode): scales in
 * (0, 0.1), zeros on the code grid 0..15. */
static int dequant_setup(rb_bench_inst *b) {
    rowop *o;
    int rc = codes_setup(b, &o, 0);
    if (rc) return rc;
    size_t groups = b->args.rows * ((b->args.n + ROWOP_GROUP - 1) / ROWOP_GROUP);
    o->f = malloc(2 * groups * sizeof(float));
    o->y = alloc64(b->args.rows * b->args.n * sizeof(float));
    if (!o->f || !o->y) return rowop_nomem(b);
    rb_rng_uniform_f32(b->seed, STREAM_FACTORS, 0, 2 * groups, o->f);
    for (size_t g = 0; g < groups; g++) {
        o->f[g] *= 0.1f;
        o->f[groups + g] = floorf(o->f[groups + g] * 16.0f);
    }
    b->cost = rb_dequant_rows_cost(b->args.rows, b->args.n, ROWOP_GROUP, 1);
    return RB_OK;
}
static int dequant_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    size_t groups = b->args.rows * ((b->args.n + ROWOP_GROUP - 1) / ROWOP_GROUP);
    rb_dequant_rows_f32(o->codes, b->args.rows, b->args.n, ROWOP_GROUP, 1, o->f, o->f + groups,
                        o->y, b->args.n);
    return RB_OK;
}

/* MXFP4 (floor rule) and NVFP4 decode of the rows x n elements as one tensor, encoded from x in
 * setup (x is then freed: the decode reads only nibbles and scales). */
static int fp4_setup(rb_bench_inst *b, int nv) {
    rowop *o;
    int rc = rowop_new(b, &o);
    if (rc) return rc;
    size_t elems = b->args.rows * b->args.n;
    size_t block = nv ? RB_NVFP4_BLOCK : RB_MXFP4_BLOCK;
    o->packed = alloc64(rb_pack_bytes(elems, 4));
    o->scales = malloc((elems + block - 1) / block);
    o->y = alloc64(elems * sizeof(float));
    if (!o->packed || !o->scales || !o->y) return rowop_nomem(b);
    rc = nv ? rb_nvfp4_encode(b->x, elems, o->packed, o->scales, &o->tensor_scale)
            : rb_mxfp4_encode(b->x, elems, RB_MX_FLOOR, o->packed, o->scales);
    free(b->x);
    b->x = NULL;
    b->cost = nv ? rb_nvfp4_dequant_cost(elems) : rb_mxfp4_dequant_cost(elems);
    return rc;
}
static int mx_dec_setup(rb_bench_inst *b) {
    return fp4_setup(b, 0);
}
static int nv_dec_setup(rb_bench_inst *b) {
    return fp4_setup(b, 1);
}
static int mx_dec_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    return rb_mxfp4_decode(o->packed, o->scales, b->args.rows * b->args.n, o->y);
}
static int nv_dec_call(rb_bench_inst *b) {
    rowop *o = b->aux;
    return rb_nvfp4_decode(o->packed, o->scales, o->tensor_scale, b->args.rows * b->args.n, o->y);
}
/* Until setup computes it (the kernel's cost function needs the op's code width): a read and a
 * write of the fp32 rows. */
static rb_cost rowop_cost(size_t n, size_t rows, size_t elem_bytes) {
    return (rb_cost){0, 2.0 * (double) n * (double) rows * (double) elem_bytes};
}

/* ---- every registered codec: encode and decode of a batch, default parameters ----
 * These lines are made from the method registry, so a new codec is benchmarked without an edit
 * here. aux holds the instance, its codes and a decode buffer; the cost (read the vectors, write
 * the codes, or the reverse) is known only once the instance says its code size. */
typedef struct codec_bench {
    const rb_method *m;
    void *st;
    uint8_t *codes;
    float *xhat;
} codec_bench;

/* What a codec entry runs: the method and its non-default parameters ("name=value,..."). */
typedef struct codec_cfg {
    const char *method, *params;
    const rb_method *m;
} codec_cfg;

static int codec_encode_call(rb_bench_inst *b);
static int codec_decode_call(rb_bench_inst *b);

static int codec_params(const codec_cfg *cfg, rb_params *p, const char *who) {
    int rc = rb_params_init(p, cfg->m->params, cfg->m->nparams);
    if (!rc && cfg->params && (rc = rb_params_set_spec(p, cfg->params)))
        rb_error_set(rc, "%s: %s", who, rb_error_detail());
    return rc;
}

/* Only the buffers the timed call needs: encode reads x and writes codes; decode reads codes
 * (made here from x, which is then freed) and writes xhat. One vector-sized buffer at a time
 * keeps 1M x 1536 (6 GiB) runs within memory. */
static int codec_setup(rb_bench_inst *b) {
    codec_bench *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    b->aux = c;
    const codec_cfg *cfg = b->entry->arg;
    c->m = cfg->m;
    rb_params p;
    int rc = codec_params(cfg, &p, b->name);
    if (!rc) rc = c->m->codec->create(&p, b->args.n, b->seed, &c->st);
    if (rc) return rc;
    size_t cb = c->m->codec->code_bytes(c->st);
    int decode = b->entry->call == codec_decode_call;
    c->codes = malloc(b->args.rows * cb + 1);
    /* 64-byte aligned like the input (bench setup): a decode may stream its output with
     * non-temporal stores only to whole cache lines. */
    size_t xbytes = (b->args.rows * b->args.n * sizeof(float) + 63) / 64 * 64;
    if (decode) c->xhat = aligned_alloc(64, xbytes ? xbytes : 64);
    if (!c->codes || (decode && !c->xhat)) return rb_error_set(RB_ENOMEM, "%s: no memory", b->name);
    b->cost = (rb_cost){0, (double) (b->args.rows * (b->args.n * sizeof(float) + cb))};
    if (!decode) return RB_OK;
    rc = c->m->codec->encode(c->st, b->x, b->args.rows, c->codes);
    free(b->x);
    b->x = NULL;
    return rc;
}
static void codec_teardown(rb_bench_inst *b) {
    codec_bench *c = b->aux;
    if (c->st) c->m->codec->destroy(c->st);
    free(c->codes);
    free(c->xhat);
    free(c);
}
static int codec_encode_call(rb_bench_inst *b) {
    codec_bench *c = b->aux;
    return c->m->codec->encode(c->st, b->x, b->args.rows, c->codes);
}
static int codec_decode_call(rb_bench_inst *b) {
    codec_bench *c = b->aux;
    return c->m->codec->decode(c->st, c->codes, b->args.rows, c->xhat);
}
static size_t codec_out(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    const codec_bench *c = b->aux;
    if (b->entry->call == codec_encode_call)
        s[0] = (rb_bench_span){c->codes, rows * c->m->codec->code_bytes(c->st)};
    else
        s[0] = (rb_bench_span){c->xhat, rows * b->args.n * sizeof(float)};
    return 1;
}
/* Until setup knows the code size: the vectors' own bytes. */
static rb_cost codec_cost(size_t n, size_t rows, size_t elem_bytes) {
    return (rb_cost){0, (double) (n * rows * elem_bytes)};
}

/* The codec throughput set (issue 4): 1M vectors through the paths meant to run at memory
 * speed, b = 2 and 4 ("codecperf_<method>_<label>_encode"), and the dense-matrix paths (Haar
 * rotation, the QJL sketches) at 16K vectors, which are bound by their d x d GEMMs instead. */
static codec_cfg perf_cfgs[] = {
    {"turboquant_mse", "bits=2,rotation=rht", NULL},
    {"turboquant_mse", "bits=4,rotation=rht", NULL},
    {"eden", "bits=2", NULL},
    {"eden", "bits=4", NULL},
    {"rtn", "bits=2,rotation=rht", NULL},
    {"rtn", "bits=4,rotation=rht", NULL},
    {"turboquant_mse", "bits=2", NULL},
    {"turboquant_mse", "bits=4", NULL},
    {"turboquant_prod", "bits=2", NULL},
    {"turboquant_prod", "bits=4", NULL},
    {"qjl", "bits=1", NULL},
};
enum { PERF_DENSE_FIRST = 6, PERF_ROWS = 1 << 20, PERF_DENSE_ROWS = 1 << 14 };

enum { CODEC_BENCH_MAX = 128 };
/* The reference check of codec entries runs on this many first rows: the plain-C references of
 * a 1M-row batch would take longer than the benchmark (rows are encoded independently, so the
 * first rows of the whole batch's output are the prefix's output). */
enum { VERIFY_ROWS = 1 << 14 };
static rb_bench_entry codec_entries[CODEC_BENCH_MAX];
static char codec_names[CODEC_BENCH_MAX][RB_BENCH_NAME_MAX];
static codec_cfg default_cfgs[CODEC_BENCH_MAX];
static size_t n_codec_entries;

static void add_codec_entries(const codec_cfg *cfg, const char *prefix, const char *label,
                              size_t rows) {
    for (int op = 0; op < 2 && n_codec_entries < CODEC_BENCH_MAX; op++) {
        rb_bench_entry *e = &codec_entries[n_codec_entries];
        char *name = codec_names[n_codec_entries++];
        snprintf(name, RB_BENCH_NAME_MAX, "%s_%s%s_%s", prefix, cfg->m->name, label,
                 op ? "decode" : "encode");
        *e = (rb_bench_entry){name,
                              NULL,
                              op ? codec_decode_call : codec_encode_call,
                              codec_cost,
                              codec_setup,
                              codec_teardown,
                              .n = {128, 1536},
                              .rows = {rows},
                              .threads = {1},
                              .arg = cfg,
                              .out = codec_out,
                              .verify_rows = VERIFY_ROWS};
    }
}

static void make_codec_entries(void) {
    size_t nm;
    const rb_method *const *m = rb_methods_all(&nm);
    for (size_t i = 0; i < nm && i < CODEC_BENCH_MAX; i++) {
        if (m[i]->family != RB_FAMILY_CODEC || !m[i]->codec) continue;
        default_cfgs[i] = (codec_cfg){m[i]->name, NULL, m[i]};
        add_codec_entries(&default_cfgs[i], "codec", "", 4096);
    }
    static char labels[sizeof perf_cfgs / sizeof perf_cfgs[0]][32];
    for (size_t i = 0; i < sizeof perf_cfgs / sizeof perf_cfgs[0]; i++) {
        perf_cfgs[i].m = rb_method_find(perf_cfgs[i].method);
        if (!perf_cfgs[i].m) continue;
        /* "_b2_rht" from "bits=2,rotation=rht"; default parameters are not named. */
        const char *rot = strstr(perf_cfgs[i].params, "rotation=");
        snprintf(labels[i], sizeof labels[i], "_b%c%s%s", perf_cfgs[i].params[5], rot ? "_" : "",
                 rot ? rot + 9 : "");
        add_codec_entries(&perf_cfgs[i], "codecperf", labels[i],
                          i < PERF_DENSE_FIRST ? PERF_ROWS : PERF_DENSE_ROWS);
    }
}

/* ---- the table: one line per benchmark family ---- */
static const rb_bench_entry table[] = {
    {"fwht_f32", &rb_op_fwht_f32, fwht_call, rb_fwht_cost, .log2_min = 4, .log2_max = 24,
     .rows = {1}, .threads = {1, 2}},
    {"fwht_f32", &rb_op_fwht_f32, fwht_call, rb_fwht_cost, .n = {128, 4096}, .rows = {2048},
     .threads = {1, 2}},
    {"hadamard_f32", &rb_op_hadamard_f32, hadamard_call, rb_hadamard_cost,
     .n = {3072, 11008, 14336}, .rows = {2048}, .threads = {1, 2}},
    {"rht_f32", &rb_op_fwht_f32, rht_call, rht_cost, rht_setup, rht_teardown, .n = {128, 4096},
     .rows = {2048}, .threads = {1, 2}},
    {"quant_int4_g128_pack", &rb_op_quant_rows_f32, quant_pack4_call, quant_pack4_cost, quant_setup,
     quant_teardown, .n = {128, 4096}, .rows = {2048}, .threads = {1}, .out = quant_out_spans},
    {"mxfp4_fake_quant", &rb_op_mxfp4_quant_f32, mxfp4_call, mxfp4_cost, .n = {4096},
     .rows = {2048}, .threads = {1}},
    {"nvfp4_fake_quant", &rb_op_nvfp4_quant_f32, nvfp4_call, mxfp4_cost, .n = {4096},
     .rows = {2048}, .threads = {1}},
/* 32K tokens x 8 heads of 128: the KV block of the performance target; and 1024 rows
 * (512 KiB, in cache, one thread), the kernel's compute rate without memory. */
/* clang-format off */
#define KV_ENTRIES(name, op, call, cost, setup, outf)                                            \
    {name, &op, call, cost, setup, kv_int4_teardown, .n = {128}, .rows = {262144},              \
     .threads = {1, 2}, .out = outf},                                                            \
    {name, &op, call, cost, setup, kv_int4_teardown, .n = {128}, .rows = {1024}, .threads = {1}, \
     .out = outf}
    KV_ENTRIES("kv_int4_encode", rb_op_kv_int4_encode_f32, kv_int4_call, rb_kv_int4_encode_cost,
               kv_int4_setup, kv_int4_out),
    KV_ENTRIES("kv_int4_encode_plain", rb_op_kv_int4_encode_f32, kv_int4_plain_call,
               kv_int4_plain_cost, kv_int4_setup, kv_int4_out),
    KV_ENTRIES("kv_int4_decode", rb_op_kv_int4_decode_f32, kv_int4_dec_call, kv_int4_dec_cost,
               kv_int4_dec_setup, kv_int4_dec_out),
#undef KV_ENTRIES
    /* clang-format on */
    {"codebook4_quant", &rb_op_codebook_quant_f32, codebook_call, codebook_cost, codebook_setup,
     codebook_teardown, .n = {128}, .rows = {8192}, .threads = {1}, .out = codebook_out},
/* The fused turboquant_mse codec alone: 1M rows of 128 (512 MiB of fp32) and 64K rows of
 * 1536 (384 MiB), b = 2 and 4 (entry arg: bits); and 1024 rows of 128 / 64 of 1536 (512 / 384
 * KiB, in cache, one thread), the kernel's compute rate without memory. n, rows and threads are
 * crossed within an entry, so each shape is an entry of its own. */
/* clang-format off */
#define RHTC_ENTRY(name, op, call, d, nrows, bits)                                       \
    {name, &op, call, rhtc_cost, rhtc_setup, rhtc_teardown, .n = {d}, .rows = {nrows}, \
     .threads = {1, 2}, .arg = &bits, .out = rhtc_out, .verify_rows = VERIFY_ROWS}
#define RHTC_CACHED(name, op, call, d, nrows, bits)                                      \
    {name, &op, call, rhtc_cost, rhtc_setup, rhtc_teardown, .n = {d}, .rows = {nrows}, \
     .threads = {1}, .arg = &bits, .out = rhtc_out, .verify_rows = VERIFY_ROWS}
#define RHTC_ENTRIES(name, op, call, bits)                  \
    RHTC_ENTRY(name, op, call, 128, 1 << 20, bits),         \
    RHTC_CACHED(name, op, call, 128, 1024, bits),           \
    RHTC_ENTRY(name, op, call, 1536, 1 << 16, bits),        \
    RHTC_CACHED(name, op, call, 1536, 64, bits)
    RHTC_ENTRIES("rhtcodec_encode_b2", rb_op_rhtcodec_encode_f32, rhtc_encode_call, bits2),
    RHTC_ENTRIES("rhtcodec_encode_b4", rb_op_rhtcodec_encode_f32, rhtc_encode_call, bits4),
    RHTC_ENTRIES("rhtcodec_decode_b2", rb_op_rhtcodec_decode_f32, rhtc_decode_call, bits2),
    RHTC_ENTRIES("rhtcodec_decode_b4", rb_op_rhtcodec_decode_f32, rhtc_decode_call, bits4),
/* clang-format on */
#undef RHTC_ENTRIES
#undef RHTC_ENTRY
#undef RHTC_CACHED
/* The codecs' row primitives at the KV block above (262144 rows of 128: 128 MiB of fp32, 32 MiB
 * of byte codes, past the last-level cache) and at 1024 rows (512 KiB of fp32, in cache); the
 * FP4 decode of a Llama-3-8B MLP weight (14336 x 4096: 224 MiB out) and of 32 of its rows (512
 * KiB). These ops do not use the pool, so one thread. */
/* clang-format off */
#define ROWOP_ENTRY(name, op, call, setup, outf, bits)               \
    {name, &op, call, rowop_cost, setup, rowop_teardown, .n = {128}, \
     .rows = {262144, 1024}, .threads = {1}, .arg = bits, .out = outf}
    ROWOP_ENTRY("pack_rows_b2", rb_op_pack_rows, pack_call, pack_setup, packed_out, &bits2),
    ROWOP_ENTRY("pack_rows_b4", rb_op_pack_rows, pack_call, pack_setup, packed_out, &bits4),
    ROWOP_ENTRY("unpack_rows_b2", rb_op_unpack_rows, unpack_call, unpack_setup, codes_out, &bits2),
    ROWOP_ENTRY("unpack_rows_b4", rb_op_unpack_rows, unpack_call, unpack_setup, codes_out, &bits4),
    ROWOP_ENTRY("codebook_decode_rows_b2", rb_op_codebook_decode_rows_f32, cbdec_call, cbdec_setup,
                y_out, &bits2),
    ROWOP_ENTRY("codebook_decode_rows_b4", rb_op_codebook_decode_rows_f32, cbdec_call, cbdec_setup,
                y_out, &bits4),
    ROWOP_ENTRY("rows_sqnorm_f32", rb_op_rows_sqnorm_f32, sqnorm_call, sqnorm_setup, d_out, NULL),
    ROWOP_ENTRY("rows_dot_f32", rb_op_rows_dot_f32, dot_call, dot_setup, d_out, NULL),
    ROWOP_ENTRY("rows_scale_f32", rb_op_rows_scale_f32, scale_call, scale_setup, NULL, NULL),
    ROWOP_ENTRY("rows_scale_f64_f32", rb_op_rows_scale_f64_f32, scale64_call, scale64_setup, y_out,
                NULL),
    ROWOP_ENTRY("rows_mul_f32", rb_op_rows_mul_f32, mul_call, mul_setup, NULL, NULL),
    ROWOP_ENTRY("dequant_rows_int4_g128", rb_op_dequant_rows_f32, dequant_call, dequant_setup, y_out,
                NULL),
#define FP4_DEC_ENTRY(name, op, call, setup)                                               \
    {name, &op, call, rowop_cost, setup, rowop_teardown, .n = {4096}, .rows = {14336, 32}, \
     .threads = {1}, .out = y_out}
    FP4_DEC_ENTRY("mxfp4_dequant", rb_op_mxfp4_dequant_f32, mx_dec_call, mx_dec_setup),
    FP4_DEC_ENTRY("nvfp4_dequant", rb_op_nvfp4_dequant_f32, nv_dec_call, nv_dec_setup),
/* clang-format on */
#undef ROWOP_ENTRY
#undef FP4_DEC_ENTRY
};

enum { BATCH_ELEMS = 1 << 16 }; /* calls per batch: about this many elements processed */
static const uint64_t BENCH_SEED = 0x726f746162656e63ull; /* "rotabenc" */

static size_t list_len_sz(const size_t *v) {
    size_t k = 0;
    while (k < RB_BENCH_LIST_MAX && v[k]) k++;
    return k;
}

static size_t list_len_int(const int *v) {
    size_t k = 0;
    while (k < RB_BENCH_LIST_MAX && v[k]) k++;
    return k;
}

/* An instance's name, input seed, cost and batch, from its entry and args. */
static void inst_derive(rb_bench_inst *b) {
    const rb_bench_entry *en = b->entry;
    if (b->args.rows > 1)
        snprintf(b->name, sizeof b->name, "%s/rows:%zu/n:%zu/threads:%d", en->name, b->args.rows,
                 b->args.n, b->args.threads);
    else
        snprintf(b->name, sizeof b->name, "%s/n:%zu/threads:%d", en->name, b->args.n,
                 b->args.threads);
    /* Seeded by shape, not by position or thread count: same inputs for the 1- and 2-thread
     * runs of a shape, and in every run. */
    b->seed = rb_seed_derive(BENCH_SEED, b->args.n, b->args.rows);
    b->cost = en->cost(b->args.n, b->args.rows, sizeof(float));
    size_t elems = b->args.n * b->args.rows;
    b->batch = elems >= BATCH_ELEMS ? 1 : (int64_t) (BATCH_ELEMS / elems);
}

void rb_bench_reshape(rb_bench_inst *inst, size_t *count, size_t rows, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < *count; i++) {
        rb_bench_inst b = inst[i];
        if (n) b.args.n = n;
        if (rows && b.args.rows > 1) b.args.rows = rows; /* one-vector entries stay one vector */
        inst_derive(&b);
        int dup = 0; /* the entry's other table shapes collapse onto this one */
        for (size_t j = 0; j < k && !dup; j++) dup = !strcmp(inst[j].name, b.name);
        if (!dup) inst[k++] = b;
    }
    *count = k;
}

int rb_bench_instances(const int *threads_override, size_t count, rb_bench_inst **out,
                       size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, make_codec_entries);
        size_t ntable = sizeof table / sizeof table[0];
        for (size_t e = 0; e < ntable + n_codec_entries; e++) {
            const rb_bench_entry *en = e < ntable ? &table[e] : &codec_entries[e - ntable];
            size_t nn =
                en->log2_max > 0 ? (size_t) (en->log2_max - en->log2_min + 1) : list_len_sz(en->n);
            size_t nr = list_len_sz(en->rows), ntl = list_len_int(en->threads);
            static const size_t one_sz = 1;
            static const int one_int = 1;
            const size_t *rows = nr ? en->rows : &one_sz;
            const int *thr = count ? threads_override : ntl ? en->threads : &one_int;
            size_t nt = count ? count : ntl ? ntl : 1;
            nr = nr ? nr : 1;
            for (size_t r = 0; r < nr; r++)
                for (size_t i = 0; i < nn; i++)
                    for (size_t t = 0; t < nt; t++, k++) {
                        if (pass == 0) continue;
                        rb_bench_inst *b = &(*out)[k];
                        b->entry = en;
                        b->args.n =
                            en->log2_max > 0 ? (size_t) 1 << (en->log2_min + (int) i) : en->n[i];
                        b->args.rows = rows[r];
                        b->args.threads = thr[t];
                        inst_derive(b);
                    }
        }
        if (pass == 0) {
            total = k;
            *out = calloc(total ? total : 1, sizeof **out);
            if (!*out) return rb_error_set(RB_ENOMEM, "bench: no memory for %zu instances", total);
        }
    }
    *n_out = total;
    return RB_OK;
}

void rb_bench_instances_free(rb_bench_inst *inst, size_t n) {
    for (size_t i = 0; i < n; i++) rb_bench_teardown(&inst[i]);
    free(inst);
}

static void noop_task(void *ctx, size_t begin, size_t end) {}

/* Philox normals; past INPUT_TILE elements the first INPUT_TILE repeat (64 MiB, far beyond the
 * caches, so the data still stream from memory): drawing 1.6G normals for a 1M x 1536 codec
 * input took about 40 s per instance. */
enum { INPUT_TILE = 1 << 24 };
static void fill_inputs(float *x, size_t elems, uint64_t seed) {
    if (elems <= 4 * (size_t) INPUT_TILE) {
        rb_rng_normal_f32(seed, 0, 0, elems, x);
        return;
    }
    rb_rng_normal_f32(seed, 0, 0, INPUT_TILE, x);
    for (size_t i = INPUT_TILE; i < elems; i += INPUT_TILE)
        memcpy(x + i, x, (elems - i < INPUT_TILE ? elems - i : INPUT_TILE) * sizeof *x);
}

/* FNV-1a over 8-byte words: the check keeps a hash of the untimed call's output instead of a
 * copy (a 1M-row decode writes 512 MiB). */
static uint64_t spans_hash(const rb_bench_span *s, size_t count) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = 0; k < count; k++) {
        const unsigned char *p = s[k].p;
        size_t i = 0;
        for (; i + 8 <= s[k].bytes; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            h = (h ^ w) * 0x100000001b3ull;
        }
        for (; i < s[k].bytes; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

static size_t out_spans(const rb_bench_inst *b, size_t rows, rb_bench_span *s) {
    if (b->entry->out) return b->entry->out(b, rows, s);
    s[0] = (rb_bench_span){b->x, rows * b->args.n * sizeof(float)};
    return 1;
}

/* The call again with only the reference variants, on the same input (refilled from the seed
 * where the op works in place) and, for entries with verify_rows, on the first rows only; its
 * output must have the bits of the untimed call's. One more call per instance, outside timing.
 * x is left with the reference's output (the timed calls do not care what it holds). */
static void verify_reference(rb_bench_inst *b) {
    size_t rows = b->args.rows, vr = b->entry->verify_rows;
    if (!vr || vr > rows) vr = rows;
    if (!b->entry->out && !b->x) {
        b->verified = 0;
        snprintf(b->verify_note, sizeof b->verify_note,
                 "the entry declares its output in place in x, which its setup freed");
        return;
    }
    rb_bench_span s[RB_BENCH_SPANS_MAX];
    size_t ns = out_spans(b, vr, s);
    uint64_t want = spans_hash(s, ns);
    if (!b->entry->out) fill_inputs(b->x, b->args.n * rows, b->seed);
    char saved[32];
    snprintf(saved, sizeof saved, "%s", rb_kernels_selection());
    rb_kernels_select("ref");
    b->args.rows = vr;
    int rc = b->entry->call(b);
    b->args.rows = rows;
    rb_kernels_select(saved);
    if (rc) {
        b->verified = 0;
        snprintf(b->verify_note, sizeof b->verify_note, "the reference failed: %s: %s",
                 rb_errname(rc), rb_error_detail());
        return;
    }
    ns = out_spans(b, vr, s); /* the same places: the reference wrote where the first call did */
    b->verified = spans_hash(s, ns) == want;
    if (!b->verified)
        snprintf(b->verify_note, sizeof b->verify_note,
                 "output of variant %s differs from the reference's (%zu of %zu rows compared)",
                 b->variant ? b->variant : "?", vr, rows);
}

int rb_bench_setup(void *ctx) {
    rb_bench_inst *b = ctx;
    b->verified = -1;
    b->verify_note[0] = 0;
    b->saved_threads = rb_threads_get();
    int rc = rb_threads_set(b->args.threads);
    if (rc) return rc;
    rb_parallel_for((size_t) b->args.threads, 1, noop_task, NULL); /* start the pool now */
    snprintf(b->binding, sizeof b->binding, "%s", rb_pool_binding());
    size_t elems = b->args.n * b->args.rows;
    size_t bytes = (elems * sizeof(float) + 63) / 64 * 64;
    b->x = aligned_alloc(64, bytes ? bytes : 64);
    if (!b->x)
        rc = rb_error_set(RB_ENOMEM, "%s: no memory for %zu inputs", b->name, elems);
    else
        fill_inputs(b->x, elems, b->seed);
    if (!rc && b->entry->setup) rc = b->entry->setup(b);
    if (rc) return rc;
    rb_kernel_trace_reset();
    rc = b->entry->call(b); /* untimed: faults pages in, and proves the call works */
    b->variant = b->entry->op ? rb_kernel_last(b->entry->op) : "-";
    if (!rc) verify_reference(b);
    return rc;
}

void rb_bench_teardown(void *ctx) {
    rb_bench_inst *b = ctx;
    if (b->entry && b->entry->teardown && b->aux) b->entry->teardown(b);
    b->aux = NULL;
    free(b->x);
    b->x = NULL;
    if (b->saved_threads > 0) rb_threads_set(b->saved_threads);
    b->saved_threads = 0;
}

double rb_bench_cpu_ratio(const rb_gb_result *r) {
    return r->ok && r->real_ns.median > 0 ? r->cpu_ns.median / r->real_ns.median : -1.0;
}

size_t rb_bench_busy(const rb_gb_report *rep, const rb_bench_inst *inst, double *worst) {
    size_t count = 0;
    *worst = 1.0;
    for (size_t i = 0; i < rep->count; i++) {
        const rb_gb_result *r = &rep->results[i];
        double q = rb_bench_cpu_ratio(r);
        /* the pool's threads (args.threads) and the library's (r->threads) both one */
        if (q < 0 || r->threads != 1 || inst[r->index].args.threads != 1 ||
            q >= RB_BENCH_BUSY_RATIO)
            continue;
        count++;
        if (q < *worst) *worst = q;
    }
    return count;
}

void rb_bench_body(struct rb_gb_state *st, void *ctx) {
    rb_bench_inst *b = ctx;
    int (*call)(rb_bench_inst *) = b->entry->call;
    int64_t batch = b->batch;
    int rc = 0;
    rb_gb_set_cost(st, b->cost.bytes, b->cost.flops, -1); /* setup may have refined it */
    while (rb_gb_keep_running_batch(st, batch))
        for (int64_t i = 0; i < batch; i++) rc |= call(b);
    if (rc) rb_gb_skip_with_error(st, rb_error_detail());
    const char *v = b->entry->op ? rb_kernel_last(b->entry->op) : "-";
    if (v) b->variant = v;
}
