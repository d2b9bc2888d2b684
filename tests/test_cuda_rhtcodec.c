/* The GPU TurboQuant / EDEN codec (gpu.h rht_codebook_encode's register kernels and
 * rht_codebook_decode, kernels/cuda/rhtcodec.cu) against the CPU codec's reference
 * (kernels/rhtcodec.h), bit for bit: code rows, norms and decoded rows, over every register
 * shape, both norm layouts, aligned and odd row strides, and the --backend cuda variants. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/kernels.h"
#include "kernels/rhtcodec.h"
#include "kernels/rotate.h"
#include "kernels/rowcodec.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

/* The register kernels' shapes, and one shape each side of them that the tile kernel takes. */
static const size_t fast_d[] = {32, 64, 128, 256, 512, 1024, 1536};
enum { NFAST = sizeof fast_d / sizeof fast_d[0] };

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

/* A codec of d with k sorted centroids (normal / sqrt(d)), signs d1 (and d2) of the seed. */
typedef struct codec {
    rb_rhtcodec p;
    rb_codebook cb;
    float *d1, *d2;
} codec;

static void codec_init(codec *c, uint64_t seed, size_t d, int bits, size_t k, int blocks) {
    c->d1 = malloc(d * 4);
    c->d2 = malloc(d * 4);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, d, c->d1);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, d, c->d2);
    float *cen = rbt_normal_f32(k, seed, 500 + k);
    for (size_t i = 0; i < k; i++) cen[i] /= sqrtf((float) d);
    qsort(cen, k, 4, cmp_float);
    cr_assert_eq(rb_codebook_init(&c->cb, cen, k), RB_OK);
    free(cen);
    c->p = (rb_rhtcodec){d, c->d1, blocks == 2 ? c->d2 : NULL, &c->cb, bits, "test"};
}

static void codec_free(codec *c) {
    RBT_FREE(c->d1, c->d2);
}

/* rows x d normals with, among them, a zero row, a tiny one (pre-scaled), a large one, and
 * (row 1) one whose fp32 norm shows the order of the norm's sum (2^24 + 2 in rb_lanes16_sum's
 * order, 2^24 in j order). */
static float *codec_input(size_t rows, size_t d, uint64_t seed) {
    float *x = rbt_normal_f32(rows * d, seed, 600 + d);
    for (size_t r = 2; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            float *v = &x[r * d + j];
            if (r % 8 == 3) *v = 0;
            if (r % 8 == 5) *v *= 1e-20f;
            if (r % 8 == 6) *v *= 1e15f;
        }
    if (rows > 1) {
        float *r1 = x + d;
        memset(r1, 0, d * 4);
        r1[0] = r1[1] = r1[2] = r1[3] = 0x1p23f;
        r1[4] = r1[5] = 0x1p12f;
        r1[6] = 1.0f;
        for (size_t j = 8; j < 16; j++) r1[j] = r1[j + 16] = 0.125f;
    }
    return x;
}

static void *scratch_for(size_t d) {
    return malloc(rb_rhtcodec_scratch_bytes(d));
}

/* The CPU codec's code rows (ldc apart, 0xFF between rows). */
static uint8_t *cpu_encode(const codec *c, const float *x, size_t rows, size_t ldc) {
    uint8_t *codes = malloc(rows * ldc);
    memset(codes, 0xFF, rows * ldc);
    void *scr = scratch_for(c->p.d);
    int rc = rb_rhtcodec_encode_f32_ref(&c->p, x, rows, c->p.d, codes, ldc, 0, scr);
    cr_assert_eq(rc, RB_OK, "cpu encode: %s", rb_error_detail());
    free(scr);
    return codes;
}

/* Layouts of one call: norms apart (aligned packed rows), in the code rows (the rhtcodec
 * layout), in code rows an odd number of bytes apart, and the buffer itself 1 byte off. */
enum { L_APART, L_INROW, L_INROW_ODD, L_OFFSET, NLAYOUT };
static const char *const layout_name[] = {"norms apart", "norms in row", "odd stride",
                                          "offset buffer"};

static size_t layout_ldc(int layout, size_t row_bytes) {
    return layout == L_INROW_ODD ? row_bytes + 3 : layout == L_APART ? row_bytes + 12 : row_bytes;
}

static void encode_case(const rb_cuda_ops *cu, uint64_t seed, size_t d, int bits, size_t k,
                        int blocks, size_t rows, int layout) {
    codec c;
    codec_init(&c, seed, d, bits, k, blocks);
    size_t rb = rb_rhtcodec_row_bytes(&c.p), payload = rb - 4, ldc = layout_ldc(layout, rb);
    size_t off = layout == L_OFFSET ? 1 : 0;
    float *x = codec_input(rows, d, seed);
    uint8_t *want = cpu_encode(&c, x, rows, ldc);
    float *dx = rbt_cu_upload(cu, x, rows * d * 4);
    float *dd1 = rbt_cu_upload(cu, c.d1, d * 4), *dd2 = rbt_cu_upload(cu, c.d2, d * 4);
    uint8_t *dc = rbt_cu_alloc(cu, rows * ldc + off);
    float *dn = rbt_cu_alloc(cu, rows * 4);
    int apart = layout == L_APART;
    int rc = cu->rht_codebook_encode(dx, rows, d, dd1, blocks == 2 ? dd2 : NULL, &c.cb, bits,
                                     dc + off, ldc, apart ? dn : NULL, NULL);
    char what[160];
    snprintf(what, sizeof what, "encode d %zu bits %d k %zu blocks %d rows %zu (%s)", d, bits, k,
             blocks, rows, layout_name[layout]);
    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
    uint8_t *got = rbt_cu_download(cu, dc, rows * ldc + off);
    if (off) cr_assert_eq(got[0], 0xFF, "%s: wrote the byte before the buffer", what);
    if (apart) { /* the CPU's norms move out of its rows; the GPU leaves those bytes */
        float *gn = rbt_cu_download(cu, dn, rows * 4), *wn = malloc(rows * 4);
        for (size_t r = 0; r < rows; r++) {
            memcpy(&wn[r], want + r * ldc + payload, 4);
            memset(want + r * ldc + payload, 0xFF, 4);
        }
        RBT_ASSERT_F32_BITS(gn, wn, rows, seed, "%s: norms", what);
        RBT_FREE(gn, wn);
    }
    RBT_ASSERT_U8_EQ(got + off, want, rows * ldc, seed, "%s: code rows (stride %zu)", what, ldc);
    RBT_FREE(x, want, got);
    RBT_CU_FREE(cu, dx, dd1, dd2, dc, dn);
    codec_free(&c);
}

typedef void (*codec_case)(const rb_cuda_ops *cu, uint64_t seed, size_t d, int bits, size_t k,
                           int blocks, size_t rows, int layout);

/* Every register shape x bits 1..4 x one or two sign blocks x every layout, 9 rows (the last
 * pair half empty); the in-row layout with a codebook one short of 2^bits. */
static void sweep_register_shapes(const rb_cuda_ops *cu, uint64_t seed, codec_case run) {
    for (size_t di = 0; di < NFAST; di++)
        for (int bits = 1; bits <= 4; bits++)
            for (int blocks = 1; blocks <= 2; blocks++)
                for (int layout = 0; layout < NLAYOUT; layout++) {
                    size_t k = ((size_t) 1 << bits) - (size_t) (layout == L_INROW && bits > 1);
                    run(cu, seed, fast_d[di], bits, k, blocks, 9, layout);
                }
}

Test(cuda_rhtcodec, encode_equals_the_cpu_codec) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_encode);
    uint64_t seed = rbt_seed();
    sweep_register_shapes(cu, seed, encode_case);
    /* Many rows: every warp loops over several pairs; an even count; the tile kernel's side. */
    encode_case(cu, seed, 128, 2, 4, 1, 70001, L_INROW);
    encode_case(cu, seed, 1536, 4, 16, 1, 1002, L_APART);
    encode_case(cu, seed, 2048, 2, 4, 1, 9, L_INROW_ODD);
    encode_case(cu, seed, 128, 5, 32, 2, 9, L_INROW);
}

/* Codes change only where a rotated value crosses a threshold, so a kernel whose values are an
 * ulp off mostly gives the right codes. Here the thresholds sit on rotated values of the rows
 * themselves (v, or the float below v): the GPU compares the values before the last
 * * 1 / sqrt(d) with thresholds moved to those units (rc_encode_tab), which this pins to the
 * reference's rounding of the product. Every register shape x bits x one or two sign blocks. */
Test(cuda_rhtcodec, encode_knife_edge) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_encode);
    uint64_t seed = rbt_seed();
    enum { ROWS = 6, ROUNDS = 4 };
    for (size_t di = 0; di < NFAST; di++)
        for (int bits = 1; bits <= 4; bits++)
            for (int blocks = 1; blocks <= 2; blocks++) {
                size_t d = fast_d[di], k = (size_t) 1 << bits;
                codec c;
                codec_init(&c, seed, d, bits, k, blocks);
                size_t ldc = rb_rhtcodec_row_bytes(&c.p);
                float *x = rbt_normal_f32(ROWS * d, seed, 700 + d), *v = malloc(ROWS * d * 4);
                uint32_t *pick = malloc(ROUNDS * k * 4);
                for (size_t r = 0; r < ROWS; r++) rbt_rhtcodec_rotate(&c.p, x + r * d, v + r * d);
                rb_rng_bits(seed, 710 + d * 16 + (size_t) bits, 0, ROUNDS * k, pick);
                float *dx = rbt_cu_upload(cu, x, ROWS * d * 4);
                float *dd1 = rbt_cu_upload(cu, c.d1, d * 4), *dd2 = rbt_cu_upload(cu, c.d2, d * 4);
                uint8_t *dc = rbt_cu_alloc(cu, ROWS * ldc);
                for (int t = 0; t < ROUNDS; t++) {
                    float thr[16];
                    for (size_t i = 0; i + 1 < k; i++) thr[i] = v[pick[t * k + i] % (ROWS * d)];
                    qsort(thr, k - 1, sizeof *thr, cmp_float);
                    size_t used = 0; /* strictly ascending after the nudges down */
                    for (size_t i = 0; i + 1 < k; i++) {
                        float e = (i + (size_t) t) % 2 ? nextafterf(thr[i], -INFINITY) : thr[i];
                        if (used == 0 || e > c.cb.thresholds[used - 1]) c.cb.thresholds[used++] = e;
                    }
                    c.cb.k = used + 1;
                    for (size_t i = used; i < RB_CODEBOOK_MAX; i++) c.cb.thresholds[i] = INFINITY;
                    uint8_t *want = cpu_encode(&c, x, ROWS, ldc);
                    RBT_CU_OK(cu->rht_codebook_encode(dx, ROWS, d, dd1, blocks == 2 ? dd2 : NULL,
                                                      &c.cb, bits, dc, ldc, NULL, NULL));
                    uint8_t *got = rbt_cu_download(cu, dc, ROWS * ldc);
                    RBT_ASSERT_U8_EQ(got, want, ROWS * ldc, seed,
                                     "knife edge d %zu bits %d blocks %d round %d", d, bits, blocks,
                                     t);
                    RBT_FREE(want, got);
                }
                RBT_FREE(x, v, pick);
                RBT_CU_FREE(cu, dx, dd1, dd2, dc);
                codec_free(&c);
            }
}

/* Rows the CPU codec rejects get a NaN or +Inf norm; the rows around them are still right. */
Test(cuda_rhtcodec, rejected_rows_are_marked_in_the_norm) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_encode);
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {128, 1536, 768};
    for (size_t di = 0; di < 3; di++) {
        size_t d = ds[di], rows = 6;
        codec c;
        codec_init(&c, seed, d, 2, 4, 1);
        float *x = codec_input(rows, d, seed);
        for (size_t j = 0; j < d; j++) x[2 * d + j] = 3e38f; /* |x| beyond FLT_MAX */
        x[3 * d + 5] = NAN;
        x[4 * d + 7] = INFINITY;
        float *dx = rbt_cu_upload(cu, x, rows * d * 4), *dd1 = rbt_cu_upload(cu, c.d1, d * 4);
        size_t pb = rb_pack_bytes(d, 2);
        uint8_t *dc = rbt_cu_alloc(cu, rows * pb);
        float *dn = rbt_cu_alloc(cu, rows * 4);
        RBT_CU_OK(cu->rht_codebook_encode(dx, rows, d, dd1, NULL, &c.cb, 2, dc, pb, dn, NULL));
        float *gn = rbt_cu_download(cu, dn, rows * 4);
        uint8_t *gc = rbt_cu_download(cu, dc, rows * pb);
        cr_assert(isinf(gn[2]) && gn[2] > 0, "d %zu: a norm beyond FLT_MAX gave %a", d,
                  (double) gn[2]);
        cr_assert(isnan(gn[3]), "d %zu: a NaN row gave norm %a", d, (double) gn[3]);
        cr_assert(!isfinite(gn[4]), "d %zu: an Inf row gave norm %a", d, (double) gn[4]);
        /* rows 0, 1 and 5 as the CPU codes them on their own */
        static const size_t good[] = {0, 1, 5};
        for (size_t g = 0; g < 3; g++) {
            size_t r = good[g], rb = pb + 4;
            uint8_t *want = cpu_encode(&c, x + r * d, 1, rb);
            float wn;
            memcpy(&wn, want + pb, 4);
            RBT_ASSERT_F32_BITS(&gn[r], &wn, 1, seed, "d %zu: norm of row %zu", d, r);
            RBT_ASSERT_U8_EQ(gc + r * pb, want, pb, seed, "d %zu: codes of row %zu", d, r);
            free(want);
        }
        RBT_FREE(x, gn, gc);
        RBT_CU_FREE(cu, dx, dd1, dc, dn);
        codec_free(&c);
    }
}

static void decode_case(const rb_cuda_ops *cu, uint64_t seed, size_t d, int bits, size_t k,
                        int blocks, size_t rows, int layout) {
    codec c;
    codec_init(&c, seed, d, bits, k, blocks);
    size_t rb = rb_rhtcodec_row_bytes(&c.p), payload = rb - 4, ldc = layout_ldc(layout, rb);
    size_t off = layout == L_OFFSET ? 1 : 0, ldy = layout == L_INROW_ODD ? d + 3 : d;
    float *x = codec_input(rows, d, seed);
    uint8_t *codes = cpu_encode(&c, x, rows, ldc);
    /* norms the encode does not make: -0, subnormal, the largest float */
    static const float odd_norms[] = {-0.0f, 0x1p-140f, FLT_MAX};
    for (size_t i = 0; i < 3 && 2 + 2 * i < rows; i++)
        memcpy(codes + (2 + 2 * i) * ldc + payload, &odd_norms[i], 4);
    float *want = malloc(rows * ldy * 4);
    memset(want, 0xFF, rows * ldy * 4);
    void *scr = scratch_for(d);
    int rc = rb_rhtcodec_decode_f32_ref(&c.p, codes, ldc, rows, want, ldy, 0, scr);
    cr_assert_eq(rc, RB_OK, "cpu decode: %s", rb_error_detail());
    free(scr);
    uint8_t *up = malloc(rows * ldc + off);
    up[0] = 0xFF;
    memcpy(up + off, codes, rows * ldc);
    uint8_t *dc = rbt_cu_upload(cu, up, rows * ldc + off);
    float *dd1 = rbt_cu_upload(cu, c.d1, d * 4), *dd2 = rbt_cu_upload(cu, c.d2, d * 4);
    float *dy = rbt_cu_alloc(cu, rows * ldy * 4), *dn = NULL;
    if (layout == L_APART) { /* the norms apart, and garbage where they were */
        float *hn = malloc(rows * 4);
        for (size_t r = 0; r < rows; r++) memcpy(&hn[r], codes + r * ldc + payload, 4);
        dn = rbt_cu_upload(cu, hn, rows * 4);
        free(hn);
        for (size_t r = 0; r < rows; r++) memset(up + off + r * ldc + payload, 0x7F, 4);
        RBT_CU_OK(cu->memcpy_h2d(dc, up, rows * ldc + off, NULL));
    }
    rc = cu->rht_codebook_decode(dc + off, ldc, dn, rows, d, dd1, blocks == 2 ? dd2 : NULL, &c.cb,
                                 bits, dy, ldy, NULL);
    char what[160];
    snprintf(what, sizeof what, "decode d %zu bits %d k %zu blocks %d rows %zu (%s)", d, bits, k,
             blocks, rows, layout_name[layout]);
    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
    float *got = rbt_cu_download(cu, dy, rows * ldy * 4);
    RBT_ASSERT_F32_BITS(got, want, rows * ldy, seed, "%s: rows (stride %zu; gaps untouched)", what,
                        ldy);
    RBT_FREE(x, codes, want, up, got);
    RBT_CU_FREE(cu, dc, dd1, dd2, dy, dn);
    codec_free(&c);
}

Test(cuda_rhtcodec, decode_equals_the_cpu_codec) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_decode);
    uint64_t seed = rbt_seed();
    sweep_register_shapes(cu, seed, decode_case);
    decode_case(cu, seed, 128, 4, 16, 1, 70001, L_INROW);
    decode_case(cu, seed, 1536, 2, 4, 2, 1002, L_APART);
}

Test(cuda_rhtcodec, decode_declines_other_shapes_and_checks_arguments) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_decode);
    float c4[4] = {-1, -0.3f, 0.3f, 1};
    rb_codebook cb;
    cr_assert_eq(rb_codebook_init(&cb, c4, 4), RB_OK);
    float ones[2048];
    for (size_t i = 0; i < 2048; i++) ones[i] = 1;
    float *dd = rbt_cu_upload(cu, ones, sizeof ones), *dy = rbt_cu_alloc(cu, 4 * 2048 * 4);
    uint8_t *dc = rbt_cu_alloc(cu, 4 * 2048);
    struct {
        size_t d, ldp, ldy;
        int bits, want;
    } cases[] = {
        {768, 200, 768, 2, RB_EDECLINE},   /* 12 x 64: no register kernel */
        {2048, 600, 2048, 2, RB_EDECLINE}, /* past 1024 */
        {128, 100, 128, 5, RB_EDECLINE},   /* bits past 4 */
        {100, 100, 100, 2, RB_ESIZE},      /* no Hadamard matrix: the RHT's code */
        {128, 35, 128, 2, RB_EINVAL},      /* code rows shorter than 32 + 4 bytes */
        {128, 36, 127, 2, RB_EINVAL},      /* output rows shorter than d */
        {128, 36, 128, 9, RB_EINVAL},      /* bits outside 1..8 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = cu->rht_codebook_decode(dc, cases[i].ldp, NULL, 2, cases[i].d, dd, NULL, &cb,
                                          cases[i].bits, dy, cases[i].ldy, NULL);
        cr_assert_eq(got, cases[i].want, "decode d %zu bits %d ldp %zu ldy %zu: got %s, want %s",
                     cases[i].d, cases[i].bits, cases[i].ldp, cases[i].ldy, rb_errname(got),
                     rb_errname(cases[i].want));
    }
    /* No rows: nothing written. */
    RBT_CU_OK(cu->rht_codebook_decode(dc, 36, NULL, 0, 128, dd, NULL, &cb, 2, dy, 128, NULL));
    uint8_t *hy = rbt_cu_download(cu, dy, 64);
    for (size_t i = 0; i < 64; i++) cr_assert_eq(hy[i], 0xFF, "an empty decode wrote byte %zu", i);
    free(hy);
    rbt_cu_still_usable(cu);
    RBT_CU_FREE(cu, dd, dy, dc);
}

/* --backend cuda: the codec's "cuda" variants (kernels/cuda_offload.c) give the CPU's bits, and
 * a row the CPU rejects is still named, with the rows before it written. */
Test(cuda_rhtcodec, backend_cuda_variants_equal_the_cpu_codec) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, rht_codebook_decode);
    if (rbt_cuda_emulated()) cr_skip_test("the backend switch needs a real device");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {128, 1536, 768};
    for (size_t di = 0; di < 3; di++) {
        size_t d = ds[di], rows = 37;
        codec c;
        codec_init(&c, seed, d, 4, 16, 1);
        size_t rb = rb_rhtcodec_row_bytes(&c.p), ldc = rb + 5, ldy = d + 1;
        float *x = codec_input(rows, d, seed);
        uint8_t *want = cpu_encode(&c, x, rows, ldc), *got = malloc(rows * ldc);
        memset(got, 0xFF, rows * ldc);
        void *scr = scratch_for(d);
        cr_assert_eq(rb_backend_use(RB_BACKEND_CUDA), RB_OK, "%s", rb_error_detail());
        int rc = rb_rhtcodec_encode_f32(&c.p, x, rows, d, got, ldc, 0, scr);
        float *yg = malloc(rows * ldy * 4), *yw = malloc(rows * ldy * 4);
        memset(yg, 0xFF, rows * ldy * 4);
        memset(yw, 0xFF, rows * ldy * 4);
        int rd = rb_rhtcodec_decode_f32(&c.p, want, ldc, rows, yg, ldy, 0, scr);
        /* a NaN in row 20: RB_ENUMERIC naming it; rows 0..19 written */
        x[20 * d + 3] = NAN;
        uint8_t *bad = malloc(rows * ldc);
        memset(bad, 0xFF, rows * ldc);
        int rn = rb_rhtcodec_encode_f32(&c.p, x, rows, d, bad, ldc, 100, scr);
        char msg[256];
        snprintf(msg, sizeof msg, "%s", rb_error_detail());
        rb_backend_use(RB_BACKEND_CPU);
        cr_assert_eq(rc, RB_OK, "d %zu: encode: %s", d, rb_error_detail());
        RBT_ASSERT_U8_EQ(got, want, rows * ldc, seed, "d %zu: --backend cuda code rows", d);
        cr_assert_eq(rd, RB_OK, "d %zu: decode: %s", d, rb_error_detail());
        cr_assert_eq(rb_rhtcodec_decode_f32_ref(&c.p, want, ldc, rows, yw, ldy, 0, scr), RB_OK);
        RBT_ASSERT_F32_BITS(yg, yw, rows * ldy, seed, "d %zu: --backend cuda decoded rows", d);
        cr_assert_eq(rn, RB_ENUMERIC, "d %zu: a NaN row gave %s", d, rb_errname(rn));
        cr_assert(strstr(msg, "vector 120"), "d %zu: the error does not name row 100 + 20: %s", d,
                  msg);
        RBT_ASSERT_U8_EQ(bad, want, 20 * ldc, seed, "d %zu: rows before the NaN row", d);
        RBT_FREE(x, want, got, scr, yg, yw, bad);
        codec_free(&c);
    }
}
