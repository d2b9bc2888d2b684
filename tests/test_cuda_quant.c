/* GPU quantizers (integer rows/groups, bit packing, MXFP4/NVFP4, FP8, codebooks) against their
 * CPU twins: codes, packed streams, scales and decoded values bit for bit. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/rowcodec.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

/* ---- quant_rows_f32 ---- */

/* x: rows x cols at stride ld, normal values with a few special rows: an all-zero row, a
 * constant row, a tiny-range row and an all-positive row (the s == 0 widening, range_min and
 * zero_in_range branches). */
static float *quant_input(size_t rows, size_t cols, size_t ld, uint64_t seed, uint64_t sid) {
    float *x = rbt_normal_f32(rows * ld, seed, sid);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            float *v = &x[r * ld + c];
            switch (r % 8) {
            case 1:
                *v = 0;
                break;
            case 2:
                *v = 0.37f;
                break;
            case 3:
                *v *= 1e-3f;
                break;
            case 4:
                *v = fabsf(*v) + 0.25f;
                break;
            case 5:
                *v *= 40.0f;
                break;
            default:
                break;
            }
        }
    return x;
}

typedef struct {
    const char *name;
    float clip, range_min;
    int zero_in_range;
    rb_quant_round round;
} spec_variant;

static const spec_variant variants[] = {
    {"rne", 0, 0, 0, RB_ROUND_NEAREST_EVEN},
    {"clip 0.9", 0.9f, 0, 0, RB_ROUND_NEAREST_EVEN},
    {"range_min 0.5", 0, 0.5f, 0, RB_ROUND_NEAREST_EVEN},
    {"zero_in_range", 0, 0, 1, RB_ROUND_NEAREST_EVEN},
    {"stochastic", 0, 0, 0, RB_ROUND_STOCHASTIC},
    {"all", 0.75f, 1e-5f, 1, RB_ROUND_STOCHASTIC},
};

typedef struct {
    size_t cols, group;
    rb_quant_gran gran;
} quant_shape;

static void quant_rows_case(const rb_cuda_ops *cu, uint64_t seed, const quant_shape *sh,
                            size_t rows) {
    size_t cols = sh->cols, ld = cols + 3, group = sh->group;
    float *x = quant_input(rows, cols, ld, seed, rows * 1000 + cols);
    float *dx = rbt_cu_upload(cu, x, rows * ld * 4);
    size_t np = rows * ((cols + group - 1) / group);
    size_t out_bytes = rows * (cols + 5) * 4; /* the largest of the three modes */
    void *dout = rbt_cu_alloc(cu, out_bytes);
    float *ds = rbt_cu_alloc(cu, np * 4), *dz = rbt_cu_alloc(cu, np * 4);
    uint8_t *want = malloc(out_bytes);
    float *ws = malloc(np * 4), *wz = malloc(np * 4);
    for (size_t vi = 0; vi < sizeof variants / sizeof *variants; vi++)
        for (int asym = 0; asym <= 1; asym++)
            for (int bits = asym ? 1 : 2; bits <= 8; bits++)
                for (int mode = RB_QOUT_CODES; mode <= RB_QOUT_FAKE; mode++) {
                    if (mode == RB_QOUT_PACK4 && bits > 4) continue;
                    const spec_variant *v = &variants[vi];
                    rb_quant_spec spec = {.bits = bits,
                                          .asym = asym,
                                          .gran = sh->gran,
                                          .group = sh->gran == RB_QUANT_PER_GROUP ? group : 0,
                                          .clip = v->clip,
                                          .range_min = v->range_min,
                                          .zero_in_range = v->zero_in_range,
                                          .round = v->round,
                                          .seed = seed,
                                          .stream = 7};
                    size_t ldo = mode == RB_QOUT_CODES   ? cols + 5
                                 : mode == RB_QOUT_PACK4 ? (cols + 1) / 2 + 2
                                                         : cols + 2;
                    size_t bytes = rows * ldo * (mode == RB_QOUT_FAKE ? 4 : 1);
                    memset(want, 0xFF, bytes);
                    memset(ws, 0xFF, np * 4);
                    memset(wz, 0xFF, np * 4);
                    int rc = rb_quant_rows_f32_ref(&spec, x, rows, cols, ld, group, want, ldo,
                                                   (rb_quant_out) mode, ws, asym ? wz : NULL);
                    cr_assert_eq(rc, RB_OK, "CPU reference: %s", rb_error_detail());
                    rbt_cu_poison(cu, dout, bytes);
                    rbt_cu_poison(cu, ds, np * 4);
                    rbt_cu_poison(cu, dz, np * 4);
                    rc = cu->quant_rows_f32(&spec, dx, rows, cols, ld, group, dout, ldo,
                                            (rb_quant_out) mode, ds, asym ? dz : NULL, NULL);
                    char what[200];
                    snprintf(what, sizeof what,
                             "quant_rows %s bits %d %s rows %zu cols %zu group %zu mode %d",
                             v->name, bits, asym ? "asym" : "sym", rows, cols, group, mode);
                    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
                    uint8_t *got = rbt_cu_download(cu, dout, bytes);
                    float *gs = rbt_cu_download(cu, ds, np * 4);
                    RBT_ASSERT_F32_BITS(gs, ws, np, seed, "%s: scales", what);
                    if (asym) {
                        float *gz = rbt_cu_download(cu, dz, np * 4);
                        RBT_ASSERT_F32_BITS(gz, wz, np, seed, "%s: zeros", what);
                        free(gz);
                    }
                    if (mode == RB_QOUT_FAKE)
                        RBT_ASSERT_F32_BITS((float *) got, (float *) want, rows * ldo, seed,
                                            "%s: dequantized values (row stride %zu)", what, ldo);
                    else
                        RBT_ASSERT_U8_EQ(got, want, bytes, seed,
                                         "%s: output bytes (row stride %zu; bytes past a row "
                                         "stay untouched)",
                                         what, ldo);
                    free(got);
                    free(gs);
                }
    RBT_FREE(x, want, ws, wz);
    RBT_CU_FREE(cu, dx, dout, ds, dz);
}

static const quant_shape shapes[] = {
    {128, 32, RB_QUANT_PER_GROUP}, /* groups divide the row */
    {100, 32, RB_QUANT_PER_GROUP}, /* a short last group */
    {100, 100, RB_QUANT_PER_ROW},
    {7, 3, RB_QUANT_PER_GROUP},
};

Test(cuda_quant, rows_small_equal_cpu_bits) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, quant_rows_f32);
    uint64_t seed = rbt_seed();
    for (size_t i = 0; i < 4; i++) {
        quant_rows_case(cu, seed, &shapes[i], 1);
        quant_rows_case(cu, seed, &shapes[i], 5);
    }
}

Test(cuda_quant, rows_300_equal_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, quant_rows_f32);
    uint64_t seed = rbt_seed();
    for (size_t i = 0; i < 4; i++) quant_rows_case(cu, seed, &shapes[i], 300);
    quant_shape wide = {4096, 4096, RB_QUANT_PER_ROW}, wideg = {4096, 128, RB_QUANT_PER_GROUP};
    quant_rows_case(cu, seed, &wide, 3);
    quant_rows_case(cu, seed, &wideg, 3);
}

Test(cuda_quant, rows_bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, quant_rows_f32);
    size_t rows = 4, cols = 64;
    float host[4 * 64] = {0}, hs[4], hz[4];
    uint8_t hc[4 * 64];
    float *dx = rbt_cu_upload(cu, host, sizeof host), *ds = rbt_cu_alloc(cu, 64);
    float *dz = rbt_cu_alloc(cu, 64);
    uint8_t *dc = rbt_cu_alloc(cu, sizeof hc);
    static const int bad[][2] = {{0, 1}, {9, 1}, {0, 0}, {9, 0}, {1, 0}, {-3, 1}};
    for (size_t i = 0; i < 6; i++) {
        rb_quant_spec spec = {.bits = bad[i][0], .asym = bad[i][1], .gran = RB_QUANT_PER_ROW};
        int want = rb_quant_f32(&spec, host, rows, cols, cols, hc, hs, hz);
        cr_assert_eq(want, RB_EINVAL);
        int got = cu->quant_rows_f32(&spec, dx, rows, cols, cols, cols, dc, cols, RB_QOUT_CODES, ds,
                                     dz, NULL);
        cr_assert_eq(got, want, "quant bits %d asym %d: got %s, want %s", bad[i][0], bad[i][1],
                     rb_errname(got), rb_errname(want));
    }
    rb_quant_spec spec = {.bits = 4, .asym = 1, .gran = RB_QUANT_PER_ROW};
    int want = rb_quant_f32(&spec, host, rows, cols, cols - 1, hc, hs, hz);
    int got = cu->quant_rows_f32(&spec, dx, rows, cols, cols - 1, cols, dc, cols, RB_QOUT_CODES, ds,
                                 dz, NULL);
    cr_assert_eq(want, RB_EINVAL);
    cr_assert_eq(got, want, "quant ld < cols: got %s, want %s", rb_errname(got), rb_errname(want));
    /* An output stride shorter than a row. */
    got = cu->quant_rows_f32(&spec, dx, rows, cols, cols, cols, dc, cols - 1, RB_QOUT_CODES, ds, dz,
                             NULL);
    cr_assert_eq(got, RB_EINVAL, "quant ldo < cols: got %s", rb_errname(got));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    RBT_CU_OK(cu->quant_rows_f32(&spec, dx, rows, cols, cols, cols, dc, cols, RB_QOUT_CODES, ds, dz,
                                 NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    RBT_CU_FREE(cu, dx, ds, dz, dc);
}

/* ---- pack_rows / unpack_rows ---- */

Test(cuda_pack, pack_and_unpack_equal_cpu_bits) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, pack_rows);
    RBT_NEED(cu, unpack_rows);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 7, 13, 100, 1001};
    static const size_t rowss[] = {1, 5, 64};
    for (int bits = 1; bits <= 8; bits++)
        for (size_t ni = 0; ni < 5; ni++)
            for (size_t ri = 0; ri < 3; ri++)
                for (int full = 0; full <= 1; full++) {
                    size_t n = ns[ni], rows = rowss[ri], pb = rb_pack_bytes(n, bits);
                    size_t ldo = pb + 3, total = rows * ldo;
                    uint8_t *codes = malloc(rows * n);
                    uint32_t *rnd = malloc(rows * n * 4);
                    rb_rng_bits(seed, 1000 + bits, ni * 10 + ri, rows * n, rnd);
                    /* In-range codes, or full bytes whose high bits must be dropped. */
                    for (size_t i = 0; i < rows * n; i++)
                        codes[i] = (uint8_t) (full ? rnd[i] : rnd[i] & ((1u << bits) - 1));
                    uint8_t *want = malloc(total);
                    memset(want, 0xFF, total);
                    cr_assert_eq(rb_pack_rows_ref(codes, rows, n, bits, want, ldo), RB_OK);
                    uint8_t *dcodes = rbt_cu_upload(cu, codes, rows * n);
                    uint8_t *dpk = rbt_cu_alloc(cu, total);
                    int rc = cu->pack_rows(dcodes, rows, n, bits, dpk, ldo, NULL);
                    cr_assert_eq(rc, RB_OK, "pack_rows: %s", rb_error_detail());
                    uint8_t *got = rbt_cu_download(cu, dpk, total);
                    RBT_ASSERT_U8_EQ(got, want, total, seed,
                                     "pack_rows bits %d n %zu rows %zu ldo %zu%s (bytes past a "
                                     "packed row stay untouched)",
                                     bits, n, rows, ldo, full ? " full-byte codes" : "");
                    /* Unpack the CPU's stream (0xFF garbage in the gaps). */
                    uint8_t *wcodes = malloc(rows * n);
                    cr_assert_eq(rb_unpack_rows_ref(want, ldo, rows, n, bits, wcodes), RB_OK);
                    uint8_t *din = rbt_cu_upload(cu, want, total);
                    uint8_t *dun = rbt_cu_alloc(cu, rows * n);
                    rc = cu->unpack_rows(din, ldo, rows, n, bits, dun, NULL);
                    cr_assert_eq(rc, RB_OK, "unpack_rows: %s", rb_error_detail());
                    uint8_t *gcodes = rbt_cu_download(cu, dun, rows * n);
                    RBT_ASSERT_U8_EQ(gcodes, wcodes, rows * n, seed,
                                     "unpack_rows bits %d n %zu rows %zu ldi %zu", bits, n, rows,
                                     ldo);
                    RBT_FREE(codes, rnd, want, got, wcodes, gcodes);
                    RBT_CU_FREE(cu, dcodes, dpk, din, dun);
                }
}

Test(cuda_pack, bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, pack_rows);
    RBT_NEED(cu, unpack_rows);
    uint8_t hc[4 * 64] = {0}, hp[4 * 64] = {0};
    uint8_t *dc = rbt_cu_alloc(cu, sizeof hc), *dp = rbt_cu_alloc(cu, sizeof hp);
    static const int bad_bits[] = {0, 9, -1};
    for (size_t i = 0; i < 3; i++) {
        int want = rb_pack_rows(hc, 4, 64, bad_bits[i], hp, 64);
        int got = cu->pack_rows(dc, 4, 64, bad_bits[i], dp, 64, NULL);
        cr_assert_eq(want, RB_EINVAL);
        cr_assert_eq(got, want, "pack_rows bits %d: got %s", bad_bits[i], rb_errname(got));
        want = rb_unpack_rows(hp, 64, 4, 64, bad_bits[i], hc);
        got = cu->unpack_rows(dp, 64, 4, 64, bad_bits[i], dc, NULL);
        cr_assert_eq(got, want, "unpack_rows bits %d: got %s", bad_bits[i], rb_errname(got));
    }
    /* A row stride shorter than a packed row (64 codes of 3 bits = 24 bytes). */
    int want = rb_pack_rows(hc, 4, 64, 3, hp, 23);
    int got = cu->pack_rows(dc, 4, 64, 3, dp, 23, NULL);
    cr_assert_eq(want, RB_EINVAL);
    cr_assert_eq(got, want, "pack_rows short ldo: got %s", rb_errname(got));
    want = rb_unpack_rows(hp, 23, 4, 64, 3, hc);
    got = cu->unpack_rows(dp, 23, 4, 64, 3, dc, NULL);
    cr_assert_eq(got, want, "unpack_rows short ldi: got %s", rb_errname(got));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    rbt_cu_free(cu, dc);
    rbt_cu_free(cu, dp);
}

/* ---- MXFP4 / NVFP4 ---- */

/* n values in blocks of `block`: block b is normal times a factor from a list that includes
 * zero blocks, huge, tiny and subnormal magnitudes, and exact grid points. */
static float *fp4_input(size_t n, size_t block, uint64_t seed, uint64_t sid) {
    static const float factors[] = {1.0f, 0.0f,  1e30f,  1e-30f, 1e-40f, 3e38f, 0.01f,
                                    6.0f, -1.0f, 1e-45f, 448.0f, 1e20f,  2.5f,  1e-3f};
    size_t nf = sizeof factors / sizeof *factors;
    float *x = rbt_normal_f32(n, seed, sid);
    for (size_t i = 0; i < n; i++) {
        size_t b = i / block;
        float f = factors[b % nf];
        x[i] *= f;
        /* Exact E2M1 grid points and ties in every third block of ones. */
        if (f == 1.0f && b % 3 == 0) x[i] = (float) ((int) (i % 16) - 8) * 0.25f;
    }
    /* Saturation: 3e38 * N(0,1) can overflow to Inf: clamp to finite. */
    for (size_t i = 0; i < n; i++)
        if (isinf(x[i])) x[i] = copysignf(FLT_MAX, x[i]);
    return x;
}

Test(cuda_fp4, mxfp4_equals_cpu_bits) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, mxfp4_quant);
    RBT_NEED(cu, mxfp4_dequant);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 31, 32, 33, 100, 4099, 1 << 16};
    for (size_t ni = 0; ni < 7; ni++)
        for (int rule = RB_MX_FLOOR; rule <= RB_MX_CEIL; rule++) {
            size_t n = ns[ni], pb = rb_pack_bytes(n, 4), nb = (n + 31) / 32;
            float *x = fp4_input(n, 32, seed, ni);
            uint8_t *wp = malloc(pb), *ws = malloc(nb);
            float *wy = malloc(n * 4);
            int rc = rb_mxfp4_encode(x, n, (rb_mx_rule) rule, wp, ws);
            cr_assert_eq(rc, RB_OK, "%s", rb_error_detail());
            cr_assert_eq(rb_mxfp4_decode(wp, ws, n, wy), RB_OK);
            float *dx = rbt_cu_upload(cu, x, n * 4), *dy = rbt_cu_alloc(cu, n * 4);
            uint8_t *dp = rbt_cu_alloc(cu, pb), *ds = rbt_cu_alloc(cu, nb);
            for (int with_y = 0; with_y <= 1; with_y++) {
                rbt_cu_poison(cu, dp, pb);
                rbt_cu_poison(cu, ds, nb);
                rc = cu->mxfp4_quant(dx, n, (rb_mx_rule) rule, dp, ds, with_y ? dy : NULL, NULL);
                cr_assert_eq(rc, RB_OK, "mxfp4_quant: %s: %s", rb_errname(rc), rb_error_detail());
                uint8_t *gp = rbt_cu_download(cu, dp, pb), *gs = rbt_cu_download(cu, ds, nb);
                RBT_ASSERT_U8_EQ(gs, ws, nb, seed, "mxfp4 %s n %zu: scales", rb_mx_rule_name(rule),
                                 n);
                RBT_ASSERT_U8_EQ(gp, wp, pb, seed, "mxfp4 %s n %zu: packed codes",
                                 rb_mx_rule_name(rule), n);
                free(gp);
                free(gs);
            }
            float *gy = rbt_cu_download(cu, dy, n * 4);
            RBT_ASSERT_F32_BITS(gy, wy, n, seed, "mxfp4 %s n %zu: decoded y", rb_mx_rule_name(rule),
                                n);
            /* Dequantize the CPU's blocks. */
            uint8_t *up = rbt_cu_upload(cu, wp, pb), *us = rbt_cu_upload(cu, ws, nb);
            rbt_cu_poison(cu, dy, n * 4);
            RBT_CU_OK(cu->mxfp4_dequant(up, us, n, dy, NULL));
            float *gy2 = rbt_cu_download(cu, dy, n * 4);
            RBT_ASSERT_F32_BITS(gy2, wy, n, seed, "mxfp4_dequant %s n %zu", rb_mx_rule_name(rule),
                                n);
            RBT_FREE(x, wp, ws, wy, gy, gy2);
            RBT_CU_FREE(cu, dx, dy, dp, ds, up, us);
        }
}

/* Random packed codes and every finite scale code, including scales whose products overflow
 * fp32 (6 * 2^127 -> Inf) and the smallest ones. */
Test(cuda_fp4, dequant_of_random_blocks_equals_cpu_bits) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, mxfp4_dequant);
    RBT_NEED(cu, nvfp4_dequant);
    uint64_t seed = rbt_seed();
    size_t n = 255 * 32 + 17, pb = rb_pack_bytes(n, 4);
    size_t nbm = (n + 31) / 32, nbn = (n + 15) / 16;
    uint32_t *rnd = malloc((pb + nbn) * 4);
    rb_rng_bits(seed, 55, 0, pb + nbn, rnd);
    uint8_t *packed = malloc(pb), *sm = malloc(nbm), *sn = malloc(nbn);
    for (size_t i = 0; i < pb; i++) packed[i] = (uint8_t) rnd[i];
    if (n % 2) packed[pb - 1] &= 0x0F;
    for (size_t i = 0; i < nbm; i++) sm[i] = (uint8_t) (i % 255); /* every UE8M0 code but NaN */
    for (size_t i = 0; i < nbn; i++) {
        uint8_t c = (uint8_t) (rnd[pb + i] & 0x7F); /* E4M3 scales are positive */
        sn[i] = c == 0x7F ? 0x7E : c;
    }
    float *wm = malloc(n * 4), *wn = malloc(n * 4);
    cr_assert_eq(rb_mxfp4_decode(packed, sm, n, wm), RB_OK, "%s", rb_error_detail());
    static const float ts[] = {1.0f, 2.5f, 1e-20f, FLT_MAX, 6.0f * 448.0f / 3.0f};
    uint8_t *dp = rbt_cu_upload(cu, packed, pb), *dsm = rbt_cu_upload(cu, sm, nbm),
            *dsn = rbt_cu_upload(cu, sn, nbn);
    float *dy = rbt_cu_alloc(cu, n * 4);
    RBT_CU_OK(cu->mxfp4_dequant(dp, dsm, n, dy, NULL));
    float *gm = rbt_cu_download(cu, dy, n * 4);
    RBT_ASSERT_F32_BITS(gm, wm, n, seed, "mxfp4_dequant of random blocks");
    for (size_t t = 0; t < 5; t++) {
        cr_assert_eq(rb_nvfp4_decode(packed, sn, ts[t], n, wn), RB_OK, "%s", rb_error_detail());
        rbt_cu_poison(cu, dy, n * 4);
        RBT_CU_OK(cu->nvfp4_dequant(dp, dsn, ts[t], n, dy, NULL));
        float *gn = rbt_cu_download(cu, dy, n * 4);
        RBT_ASSERT_F32_BITS(gn, wn, n, seed, "nvfp4_dequant of random blocks, tensor scale %a",
                            (double) ts[t]);
        free(gn);
    }
    RBT_FREE(rnd, packed, sm, sn, wm, wn, gm);
    RBT_CU_FREE(cu, dp, dsm, dsn, dy);
}

Test(cuda_fp4, nvfp4_equals_cpu_bits) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, nvfp4_quant);
    RBT_NEED(cu, nvfp4_dequant);
    uint64_t seed = rbt_seed();
    static const size_t ns[] = {1, 15, 16, 17, 100, 4099, 1 << 16};
    /* Tensors: the mixed blocks; ordinary values; all zero; all tiny (s_enc overflows to
     * FLT_MAX); ordinary values plus one huge element (blocks whose scale rounds to 0). */
    for (size_t ni = 0; ni < 7; ni++)
        for (int kind = 0; kind < 5; kind++) {
            size_t n = ns[ni], pb = rb_pack_bytes(n, 4), nb = (n + 15) / 16;
            float *x =
                kind == 0 ? fp4_input(n, 16, seed, 50 + ni) : rbt_normal_f32(n, seed, 60 + ni);
            for (size_t i = 0; i < n; i++) {
                if (kind == 2) x[i] = 0;
                if (kind == 3) x[i] *= 1e-40f;
            }
            if (kind == 4) x[n / 2] = 1e30f;
            uint8_t *wp = malloc(pb), *ws = malloc(nb);
            float *wy = malloc(n * 4), wts = 0;
            int rc = rb_nvfp4_encode(x, n, wp, ws, &wts);
            cr_assert_eq(rc, RB_OK, "%s", rb_error_detail());
            cr_assert_eq(rb_nvfp4_decode(wp, ws, wts, n, wy), RB_OK);
            float *dx = rbt_cu_upload(cu, x, n * 4), *dy = rbt_cu_alloc(cu, n * 4);
            uint8_t *dp = rbt_cu_alloc(cu, pb), *ds = rbt_cu_alloc(cu, nb);
            for (int with_y = 0; with_y <= 1; with_y++) {
                rbt_cu_poison(cu, dp, pb);
                rbt_cu_poison(cu, ds, nb);
                float gts = NAN;
                rc = cu->nvfp4_quant(dx, n, dp, ds, &gts, with_y ? dy : NULL, NULL);
                cr_assert_eq(rc, RB_OK, "nvfp4_quant: %s: %s", rb_errname(rc), rb_error_detail());
                cr_assert(!memcmp(&gts, &wts, 4),
                          "nvfp4 n %zu kind %d: tensor scale %a, want %a (seed %llu)", n, kind,
                          (double) gts, (double) wts, (unsigned long long) seed);
                uint8_t *gp = rbt_cu_download(cu, dp, pb), *gs = rbt_cu_download(cu, ds, nb);
                RBT_ASSERT_U8_EQ(gs, ws, nb, seed, "nvfp4 n %zu kind %d: block scales", n, kind);
                RBT_ASSERT_U8_EQ(gp, wp, pb, seed, "nvfp4 n %zu kind %d: packed codes", n, kind);
                free(gp);
                free(gs);
            }
            float *gy = rbt_cu_download(cu, dy, n * 4);
            RBT_ASSERT_F32_BITS(gy, wy, n, seed, "nvfp4 n %zu kind %d: decoded y", n, kind);
            uint8_t *up = rbt_cu_upload(cu, wp, pb), *us = rbt_cu_upload(cu, ws, nb);
            rbt_cu_poison(cu, dy, n * 4);
            RBT_CU_OK(cu->nvfp4_dequant(up, us, wts, n, dy, NULL));
            float *gy2 = rbt_cu_download(cu, dy, n * 4);
            RBT_ASSERT_F32_BITS(gy2, wy, n, seed, "nvfp4_dequant n %zu kind %d", n, kind);
            RBT_FREE(x, wp, ws, wy, gy, gy2);
            RBT_CU_FREE(cu, dx, dy, dp, ds, up, us);
        }
}

Test(cuda_fp4, bad_rule_returns_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, mxfp4_quant);
    float host[64] = {0};
    uint8_t hp[32], hs[2];
    float *dx = rbt_cu_upload(cu, host, sizeof host); /* finite: only the rule is wrong */
    uint8_t *dp = rbt_cu_alloc(cu, 32), *ds = rbt_cu_alloc(cu, 2);
    int want = rb_mxfp4_encode(host, 64, (rb_mx_rule) 7, hp, hs);
    int got = cu->mxfp4_quant(dx, 64, (rb_mx_rule) 7, dp, ds, NULL, NULL);
    cr_assert_eq(want, RB_EINVAL);
    cr_assert_eq(got, want, "mxfp4 rule 7: got %s", rb_errname(got));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    RBT_CU_FREE(cu, dx, dp, ds);
}

/* ---- FP8 ---- */

static uint8_t fp8_cpu(float x, int e5m2, rb_fp8_overflow ov) {
    return e5m2 ? rb_fp8_e5m2_encode(x, ov) : rb_fp8_e4m3_encode(x, ov);
}

/* Finite test values: a scan over the fp32 bit patterns (every exponent, subnormals included)
 * and the edges of both formats with their neighbours. */
static float *fp8_values(size_t *n_out) {
    static const float edges[] = {
        448.0f,    464.0f,   465.0f,   479.0f,     480.0f,   496.0f,   500.0f,     1e6f,
        416.0f,    432.0f,   57344.0f, 61440.0f,   61439.0f, 65536.0f, 1e9f,       49152.0f,
        53248.0f,  0x1p-9f,  0x1p-10f, 0x1.8p-10f, 0x1p-11f, 0x1p-6f,  0x1.cp-7f,  0x1.ep-7f,
        0x1.fp-7f, 0x1p-16f, 0x1p-17f, 0x1.8p-17f, 0x1p-18f, 0x1p-14f, 0x1.8p-15f, 0x1.cp-15f,
        0.0f,      1.0f,     1.0625f,  1.125f,     1.1875f,  1.25f,    0.3f,       FLT_MAX,
        FLT_MIN,   1e-45f,   3.0f};
    size_t ne = sizeof edges / sizeof *edges, scan = (size_t) 1 << 20;
    float *v = malloc((scan + 6 * ne) * 4);
    size_t n = 0;
    for (size_t i = 0; i < scan; i++) {
        uint32_t u = (uint32_t) (i * 2654435761u);
        float f;
        memcpy(&f, &u, 4);
        if (isfinite(f)) v[n++] = f;
    }
    for (size_t i = 0; i < ne; i++) {
        float e = edges[i];
        float c[3] = {e, nextafterf(e, INFINITY), nextafterf(e, 0)};
        for (int j = 0; j < 3; j++)
            if (isfinite(c[j])) {
                v[n++] = c[j];
                v[n++] = -c[j];
            }
    }
    *n_out = n;
    return v;
}

Test(cuda_fp8, encode_equals_the_cpu_scalars) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, fp8_encode);
    size_t n;
    float *x = fp8_values(&n);
    float *dx = rbt_cu_upload(cu, x, n * 4);
    uint8_t *dout = rbt_cu_alloc(cu, n), *want = malloc(n);
    for (int e5m2 = 0; e5m2 <= 1; e5m2++)
        for (int ov = RB_FP8_SATURATE; ov <= RB_FP8_SPECIAL; ov++) {
            for (size_t i = 0; i < n; i++) want[i] = fp8_cpu(x[i], e5m2, (rb_fp8_overflow) ov);
            rbt_cu_poison(cu, dout, n);
            RBT_CU_OK(cu->fp8_encode(dx, n, e5m2, (rb_fp8_overflow) ov, dout, NULL));
            uint8_t *got = rbt_cu_download(cu, dout, n);
            size_t i = rbt_first_diff(got, want, n, 1);
            cr_assert(i == SIZE_MAX, "fp8 %s %s: x[%zu] = %a encodes to 0x%02x, want 0x%02x",
                      e5m2 ? "e5m2" : "e4m3", ov ? "special" : "saturate", i,
                      (double) x[i == SIZE_MAX ? 0 : i], got[i == SIZE_MAX ? 0 : i],
                      want[i == SIZE_MAX ? 0 : i]);
            free(got);
        }
    free(x);
    free(want);
    rbt_cu_free(cu, dx);
    rbt_cu_free(cu, dout);
}

/* Inf and NaN element-wise as the scalar functions treat them (the slot's contract is the
 * scalar encoder, not the array cast that rejects them). */
Test(cuda_fp8, encode_inf_and_nan_like_the_cpu_scalars) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, fp8_encode);
    float x[6] = {INFINITY, -INFINITY, NAN, -NAN, 1.0f, -448.0f};
    size_t n = 6;
    float *dx = rbt_cu_upload(cu, x, sizeof x);
    uint8_t *dout = rbt_cu_alloc(cu, n);
    for (int e5m2 = 0; e5m2 <= 1; e5m2++)
        for (int ov = RB_FP8_SATURATE; ov <= RB_FP8_SPECIAL; ov++) {
            RBT_CU_OK(cu->fp8_encode(dx, n, e5m2, (rb_fp8_overflow) ov, dout, NULL));
            uint8_t *got = rbt_cu_download(cu, dout, n);
            for (size_t i = 0; i < n; i++) {
                uint8_t w = fp8_cpu(x[i], e5m2, (rb_fp8_overflow) ov);
                float gd = e5m2 ? rb_fp8_e5m2_decode(got[i]) : rb_fp8_e4m3_decode(got[i]);
                if (isnan(x[i])) /* any NaN code will do, the payload is not specified */
                    cr_assert(isnan(gd), "fp8 %s: NaN encodes to 0x%02x, not a NaN",
                              e5m2 ? "e5m2" : "e4m3", got[i]);
                else
                    cr_assert_eq(got[i], w, "fp8 %s %s: %a encodes to 0x%02x, want 0x%02x",
                                 e5m2 ? "e5m2" : "e4m3", ov ? "special" : "saturate", (double) x[i],
                                 got[i], w);
            }
            free(got);
        }
    rbt_cu_free(cu, dx);
    rbt_cu_free(cu, dout);
}

Test(cuda_fp8, decode_of_all_256_codes_equals_cpu) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, fp8_decode);
    uint8_t codes[256];
    for (int i = 0; i < 256; i++) codes[i] = (uint8_t) i;
    uint8_t *dc = rbt_cu_upload(cu, codes, 256);
    float *dy = rbt_cu_alloc(cu, 256 * 4);
    for (int e5m2 = 0; e5m2 <= 1; e5m2++) {
        float want[256];
        for (int i = 0; i < 256; i++)
            want[i] = e5m2 ? rb_fp8_e5m2_decode(codes[i]) : rb_fp8_e4m3_decode(codes[i]);
        rbt_cu_poison(cu, dy, 256 * 4);
        RBT_CU_OK(cu->fp8_decode(dc, 256, e5m2, dy, NULL));
        float *got = rbt_cu_download(cu, dy, 256 * 4);
        size_t i = rbt_first_diff_f32_nan(got, want, 256);
        cr_assert(i == SIZE_MAX, "fp8 %s decode: code 0x%02zx gives %a, want %a",
                  e5m2 ? "e5m2" : "e4m3", i, (double) got[i & 255], (double) want[i & 255]);
        free(got);
    }
    /* An odd length that ends inside a vector. */
    RBT_CU_OK(cu->fp8_decode(dc + 1, 101, 0, dy, NULL));
    float *got = rbt_cu_download(cu, dy, 101 * 4);
    for (int i = 0; i < 101; i++) {
        float w = rb_fp8_e4m3_decode(codes[i + 1]);
        cr_assert(!memcmp(&got[i], &w, 4) || (isnan(w) && isnan(got[i])),
                  "fp8 e4m3 decode, unaligned: element %d", i);
    }
    free(got);
    rbt_cu_free(cu, dc);
    rbt_cu_free(cu, dy);
}

/* ---- codebooks ---- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

static void make_codebook(rb_codebook *cb, size_t k, uint64_t seed) {
    float *c = rbt_normal_f32(k, seed, 900 + k);
    qsort(c, k, 4, cmp_float);
    cr_assert_eq(rb_codebook_init(cb, c, k), RB_OK, "%s", rb_error_detail());
    free(c);
}

Test(cuda_codebook, quant_equals_cpu_including_thresholds) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, codebook_quant_f32);
    uint64_t seed = rbt_seed();
    static const size_t ks[] = {1, 2, 3, 16, 256};
    static const size_t rowss[] = {1, 5, 64};
    for (size_t ki = 0; ki < 5; ki++)
        for (size_t ri = 0; ri < 3; ri++) {
            size_t k = ks[ki], rows = rowss[ri], cols = 1000, ld = 1003;
            rb_codebook cb;
            make_codebook(&cb, k, seed);
            float *x = rbt_normal_f32(rows * ld, seed, 950 + ki);
            /* Exactly at thresholds (ties go to the lower index), one ulp either side, and at
             * the centroids. */
            for (size_t i = 0, j = 0; i < rows * ld; i += 3, j++) {
                size_t t = (j / 4) % k;
                switch (j % 4) {
                case 0:
                    x[i] = k > 1 ? cb.thresholds[t % (k - 1)] : 0;
                    break;
                case 1:
                    x[i] = k > 1 ? nextafterf(cb.thresholds[t % (k - 1)], INFINITY) : 1;
                    break;
                case 2:
                    x[i] = k > 1 ? nextafterf(cb.thresholds[t % (k - 1)], -INFINITY) : -1;
                    break;
                default:
                    x[i] = cb.centroids[t];
                    break;
                }
            }
            uint8_t *want = malloc(rows * cols);
            cr_assert_eq(rb_codebook_quant_f32_ref(&cb, x, rows, cols, ld, want), RB_OK);
            float *dx = rbt_cu_upload(cu, x, rows * ld * 4);
            uint8_t *didx = rbt_cu_alloc(cu, rows * cols);
            int rc = cu->codebook_quant_f32(&cb, dx, rows, cols, ld, didx, NULL);
            cr_assert_eq(rc, RB_OK, "codebook_quant: %s: %s", rb_errname(rc), rb_error_detail());
            uint8_t *got = rbt_cu_download(cu, didx, rows * cols);
            size_t i = rbt_first_diff(got, want, rows * cols, 1);
            cr_assert(i == SIZE_MAX,
                      "codebook_quant k %zu rows %zu: x[%zu] = %a gives %u, want %u (seed %llu)", k,
                      rows, i, i == SIZE_MAX ? 0.0 : (double) x[(i / cols) * ld + i % cols],
                      i == SIZE_MAX ? 0u : got[i], i == SIZE_MAX ? 0u : want[i],
                      (unsigned long long) seed);
            RBT_FREE(x, want, got);
            rbt_cu_free(cu, dx);
            rbt_cu_free(cu, didx);
        }
}

Test(cuda_codebook, dequant_equals_cpu) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, codebook_dequant_f32);
    uint64_t seed = rbt_seed();
    static const size_t ks[] = {1, 2, 3, 16, 256};
    size_t n = 10001;
    uint32_t *rnd = malloc(n * 4);
    uint8_t *idx = malloc(n);
    float *want = malloc(n * 4);
    for (size_t ki = 0; ki < 5; ki++) {
        size_t k = ks[ki];
        rb_codebook cb;
        make_codebook(&cb, k, seed);
        rb_rng_bits(seed, 77, ki * n, n, rnd);
        for (size_t i = 0; i < n; i++) idx[i] = (uint8_t) (rnd[i] % k);
        cr_assert_eq(rb_codebook_dequantize_f32(&cb, idx, n, want), RB_OK);
        uint8_t *didx = rbt_cu_upload(cu, idx, n);
        float *dy = rbt_cu_alloc(cu, n * 4);
        RBT_CU_OK(cu->codebook_dequant_f32(&cb, didx, n, dy, NULL));
        float *got = rbt_cu_download(cu, dy, n * 4);
        RBT_ASSERT_F32_BITS(got, want, n, seed, "codebook_dequant k %zu", k);
        free(got);
        rbt_cu_free(cu, didx);
        rbt_cu_free(cu, dy);
    }
    RBT_FREE(rnd, idx, want);
}

/* ---- launch edges: unaligned base pointers, many rows, empty inputs, created streams ---- */

/* One quant_rows_f32 call with every pointer `off` bytes/elements past its allocation's start,
 * on `stream`, against the reference: outputs, scales, zeros and the bytes before and after. */
static void quant_one(const rb_cuda_ops *cu, uint64_t seed, size_t rows, size_t cols, size_t group,
                      int bits, int asym, rb_quant_out mode, size_t off, void *stream) {
    size_t ld = cols + (off ? 1 : 0), ng = (cols + group - 1) / group, np = rows * ng + off;
    size_t ldo = mode == RB_QOUT_PACK4 ? (cols + 1) / 2 + off : cols + off;
    size_t es = mode == RB_QOUT_FAKE ? 4 : 1, bytes = (rows * ldo + off) * es;
    rb_quant_spec spec = {.bits = bits,
                          .asym = asym,
                          .gran = RB_QUANT_PER_GROUP,
                          .group = group,
                          .round = RB_ROUND_STOCHASTIC,
                          .seed = seed,
                          .stream = 3};
    float *x = quant_input(rows, cols, ld, seed, 77);
    x = realloc(x, (rows * ld + off) * 4);
    memmove(x + off, x, rows * ld * 4);
    uint8_t *want = malloc(bytes);
    float *ws = malloc(np * 4), *wz = malloc(np * 4);
    memset(want, 0xFF, bytes);
    memset(ws, 0xFF, np * 4);
    memset(wz, 0xFF, np * 4);
    cr_assert_eq(rb_quant_rows_f32_ref(&spec, x + off, rows, cols, ld, group, want + off * es, ldo,
                                       mode, ws + off, asym ? wz + off : NULL),
                 RB_OK);
    float *dx = rbt_cu_upload(cu, x, (rows * ld + off) * 4);
    uint8_t *dout = rbt_cu_alloc(cu, bytes);
    float *ds = rbt_cu_alloc(cu, np * 4), *dz = rbt_cu_alloc(cu, np * 4);
    int rc = cu->quant_rows_f32(&spec, dx + off, rows, cols, ld, group, dout + off * es, ldo, mode,
                                ds + off, asym ? dz + off : NULL, stream);
    char what[160];
    snprintf(what, sizeof what,
             "quant_rows rows %zu cols %zu group %zu bits %d %s mode %d off %zu%s", rows, cols,
             group, bits, asym ? "asym" : "sym", (int) mode, off,
             stream ? " (created stream)" : "");
    cr_assert_eq(rc, RB_OK, "%s: %s: %s", what, rb_errname(rc), rb_error_detail());
    if (stream) RBT_CU_OK(cu->stream_sync(stream));
    uint8_t *got = rbt_cu_download(cu, dout, bytes);
    float *gs = rbt_cu_download(cu, ds, np * 4), *gz = rbt_cu_download(cu, dz, np * 4);
    RBT_ASSERT_F32_BITS(gs, ws, np, seed, "%s: scales", what);
    RBT_ASSERT_F32_BITS(gz, wz, np, seed, "%s: zeros", what);
    RBT_ASSERT_U8_EQ(got, want, bytes, seed, "%s: output bytes", what);
    RBT_FREE(x, want, ws, wz, got, gs, gz);
    RBT_CU_FREE(cu, dx, dout, ds, dz);
}

Test(cuda_quant, unaligned_many_rows_and_streams_equal_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, quant_rows_f32);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    for (int mode = RB_QOUT_CODES; mode <= RB_QOUT_FAKE; mode++) {
        quant_one(cu, seed, 5, 4096, 128, 4, 1, (rb_quant_out) mode, 1, NULL);
        quant_one(cu, seed, 5, 4096, 4096, 3, 0, (rb_quant_out) mode, 3, NULL);
        quant_one(cu, seed, 70001, 4, 2, 4, 1, (rb_quant_out) mode, 0, NULL);
        quant_one(cu, seed, 300, 1000, 64, 4, 1, (rb_quant_out) mode, 0, s);
    }
    RBT_CU_OK(cu->stream_destroy(s));
}

Test(cuda_pack, unaligned_many_rows_and_streams_equal_cpu_bits) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, pack_rows);
    RBT_NEED(cu, unpack_rows);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    static const size_t cases[][4] = {/* rows, n, off, on stream */
                                      {3, 4099, 1, 0},
                                      {70001, 3, 0, 0},
                                      {70001, 16, 3, 0},
                                      {64, 1000, 0, 1}};
    for (size_t ci = 0; ci < 4; ci++)
        for (int bits = 1; bits <= 8; bits++) {
            size_t rows = cases[ci][0], n = cases[ci][1], off = cases[ci][2];
            void *st = cases[ci][3] ? s : NULL;
            size_t ldo = rb_pack_bytes(n, bits) + off, total = rows * ldo + off;
            uint8_t *codes = malloc(rows * n + off);
            uint32_t *rnd = malloc((rows * n + off) * 4);
            rb_rng_bits(seed, 2000 + bits, ci, rows * n + off, rnd);
            for (size_t i = 0; i < rows * n + off; i++) codes[i] = (uint8_t) rnd[i];
            uint8_t *want = malloc(total);
            memset(want, 0xFF, total);
            cr_assert_eq(rb_pack_rows_ref(codes + off, rows, n, bits, want + off, ldo), RB_OK);
            uint8_t *dc = rbt_cu_upload(cu, codes, rows * n + off), *dp = rbt_cu_alloc(cu, total);
            RBT_CU_OK(cu->pack_rows(dc + off, rows, n, bits, dp + off, ldo, st));
            if (st) RBT_CU_OK(cu->stream_sync(st));
            uint8_t *got = rbt_cu_download(cu, dp, total);
            RBT_ASSERT_U8_EQ(got, want, total, seed, "pack_rows rows %zu n %zu bits %d off %zu%s",
                             rows, n, bits, off, st ? " (created stream)" : "");
            uint8_t *wc = malloc(rows * n + off);
            memset(wc, 0xFF, rows * n + off);
            cr_assert_eq(rb_unpack_rows_ref(want + off, ldo, rows, n, bits, wc + off), RB_OK);
            uint8_t *din = rbt_cu_upload(cu, want, total), *du = rbt_cu_alloc(cu, rows * n + off);
            RBT_CU_OK(cu->unpack_rows(din + off, ldo, rows, n, bits, du + off, st));
            if (st) RBT_CU_OK(cu->stream_sync(st));
            uint8_t *gc = rbt_cu_download(cu, du, rows * n + off);
            RBT_ASSERT_U8_EQ(gc, wc, rows * n + off, seed,
                             "unpack_rows rows %zu n %zu bits %d off %zu%s", rows, n, bits, off,
                             st ? " (created stream)" : "");
            RBT_FREE(codes, rnd, want, got, wc, gc);
            RBT_CU_FREE(cu, dc, dp, din, du);
        }
    RBT_CU_OK(cu->stream_destroy(s));
}

/* MXFP4, NVFP4, FP8 and codebooks with every pointer one element/byte past an aligned start,
 * long inputs (more blocks than a grid's y dimension) and a created stream. */
static void fp4_one(const rb_cuda_ops *cu, uint64_t seed, size_t n, size_t off, void *st) {
    size_t pb = rb_pack_bytes(n, 4) + off, nbm = (n + 31) / 32 + off, nbn = (n + 15) / 16 + off;
    float *x = fp4_input(n + off, 16, seed, 123);
    uint8_t *wp = malloc(pb), *ws = malloc(nbn);
    float *wy = malloc((n + off) * 4), wts = 0;
    char what[96];
    snprintf(what, sizeof what, "n %zu off %zu%s", n, off, st ? " (created stream)" : "");
    float *dx = rbt_cu_upload(cu, x, (n + off) * 4), *dy = rbt_cu_alloc(cu, (n + off) * 4);
    uint8_t *dp = rbt_cu_alloc(cu, pb), *ds = rbt_cu_alloc(cu, nbn);
    for (int fmt = 0; fmt < 3; fmt++) { /* mxfp4 floor, mxfp4 ceil, nvfp4 */
        size_t nb = fmt < 2 ? nbm : nbn;
        memset(wp, 0xFF, pb);
        memset(ws, 0xFF, nb);
        memset(wy, 0xFF, (n + off) * 4);
        rbt_cu_poison(cu, dp, pb);
        rbt_cu_poison(cu, ds, nb);
        rbt_cu_poison(cu, dy, (n + off) * 4);
        float gts = NAN;
        int rc;
        if (fmt < 2) {
            cr_assert_eq(rb_mxfp4_encode(x + off, n, (rb_mx_rule) fmt, wp + off, ws + off), RB_OK);
            cr_assert_eq(rb_mxfp4_decode(wp + off, ws + off, n, wy + off), RB_OK);
            rc = cu->mxfp4_quant(dx + off, n, (rb_mx_rule) fmt, dp + off, ds + off, dy + off, st);
        } else {
            cr_assert_eq(rb_nvfp4_encode(x + off, n, wp + off, ws + off, &wts), RB_OK);
            cr_assert_eq(rb_nvfp4_decode(wp + off, ws + off, wts, n, wy + off), RB_OK);
            rc = cu->nvfp4_quant(dx + off, n, dp + off, ds + off, &gts, dy + off, st);
            cr_assert(!memcmp(&gts, &wts, 4), "nvfp4 %s: tensor scale %a, want %a", what,
                      (double) gts, (double) wts);
        }
        cr_assert_eq(rc, RB_OK, "fp4 format %d %s: %s", fmt, what, rb_error_detail());
        if (st) RBT_CU_OK(cu->stream_sync(st));
        uint8_t *gp = rbt_cu_download(cu, dp, pb), *gs = rbt_cu_download(cu, ds, nb);
        float *gy = rbt_cu_download(cu, dy, (n + off) * 4);
        RBT_ASSERT_U8_EQ(gs, ws, nb, seed, "fp4 format %d %s: scales", fmt, what);
        RBT_ASSERT_U8_EQ(gp, wp, pb, seed, "fp4 format %d %s: packed", fmt, what);
        RBT_ASSERT_F32_BITS(gy, wy, n + off, seed, "fp4 format %d %s: y", fmt, what);
        /* And the decoders on the same unaligned buffers. */
        rbt_cu_poison(cu, dy, (n + off) * 4);
        if (fmt < 2)
            rc = cu->mxfp4_dequant(dp + off, ds + off, n, dy + off, st);
        else
            rc = cu->nvfp4_dequant(dp + off, ds + off, wts, n, dy + off, st);
        cr_assert_eq(rc, RB_OK, "fp4 dequant format %d %s: %s", fmt, what, rb_error_detail());
        if (st) RBT_CU_OK(cu->stream_sync(st));
        float *gy2 = rbt_cu_download(cu, dy, (n + off) * 4);
        RBT_ASSERT_F32_BITS(gy2, wy, n + off, seed, "fp4 dequant format %d %s", fmt, what);
        RBT_FREE(gp, gs, gy, gy2);
    }
    RBT_FREE(x, wp, ws, wy);
    RBT_CU_FREE(cu, dx, dy, dp, ds);
}

Test(cuda_fp4, unaligned_long_and_streams_equal_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, mxfp4_quant);
    RBT_NEED(cu, nvfp4_quant);
    RBT_NEED(cu, mxfp4_dequant);
    RBT_NEED(cu, nvfp4_dequant);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    fp4_one(cu, seed, 4099, 1, NULL);
    fp4_one(cu, seed, 4096 + 33, 3, NULL);
    fp4_one(cu, seed, ((size_t) 1 << 21) + 5, 0, NULL); /* 131073 NVFP4 blocks */
    fp4_one(cu, seed, 100003, 1, s);
    RBT_CU_OK(cu->stream_destroy(s));
}

Test(cuda_fp8, unaligned_long_and_streams_equal_cpu) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, fp8_encode);
    RBT_NEED(cu, fp8_decode);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    static const size_t cases[][3] = {{4099, 1, 0}, {(1 << 21) + 3, 3, 0}, {100003, 1, 1}};
    for (size_t ci = 0; ci < 3; ci++) {
        size_t n = cases[ci][0], off = cases[ci][1];
        void *st = cases[ci][2] ? s : NULL;
        float *x = rbt_normal_f32(n + off, seed, 60 + ci);
        for (size_t i = 0; i < n + off; i++) x[i] = ldexpf(x[i], (int) (i % 40) - 24);
        float *dx = rbt_cu_upload(cu, x, (n + off) * 4);
        uint8_t *dc = rbt_cu_alloc(cu, n + off), *want = malloc(n + off);
        float *dy = rbt_cu_alloc(cu, (n + off) * 4), *wy = malloc((n + off) * 4);
        for (int e5m2 = 0; e5m2 <= 1; e5m2++) {
            want[0] = 0xFF;
            memset(want, 0xFF, off);
            memset(wy, 0xFF, off * 4);
            for (size_t i = off; i < n + off; i++) {
                want[i] = fp8_cpu(x[i], e5m2, RB_FP8_SPECIAL);
                wy[i] = e5m2 ? rb_fp8_e5m2_decode(want[i]) : rb_fp8_e4m3_decode(want[i]);
            }
            rbt_cu_poison(cu, dc, n + off);
            rbt_cu_poison(cu, dy, (n + off) * 4);
            RBT_CU_OK(cu->fp8_encode(dx + off, n, e5m2, RB_FP8_SPECIAL, dc + off, st));
            RBT_CU_OK(cu->fp8_decode(dc + off, n, e5m2, dy + off, st));
            if (st) RBT_CU_OK(cu->stream_sync(st));
            uint8_t *gc = rbt_cu_download(cu, dc, n + off);
            float *gy = rbt_cu_download(cu, dy, (n + off) * 4);
            RBT_ASSERT_U8_EQ(gc, want, n + off, seed, "fp8 %s encode n %zu off %zu",
                             e5m2 ? "e5m2" : "e4m3", n, off);
            size_t i = rbt_first_diff_f32_nan(gy, wy, n + off);
            cr_assert(i == SIZE_MAX, "fp8 %s decode n %zu off %zu: element %zu",
                      e5m2 ? "e5m2" : "e4m3", n, off, i);
            free(gc);
            free(gy);
        }
        RBT_FREE(x, want, wy);
        RBT_CU_FREE(cu, dx, dc, dy);
    }
    RBT_CU_OK(cu->stream_destroy(s));
}

Test(cuda_codebook, unaligned_many_rows_and_streams_equal_cpu) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, codebook_quant_f32);
    RBT_NEED(cu, codebook_dequant_f32);
    uint64_t seed = rbt_seed();
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    static const size_t cases[][5] = {/* k, rows, cols, off, on stream */
                                      {16, 3, 4099, 1, 0},
                                      {256, 70001, 3, 3, 0},
                                      {3, 64, 1000, 1, 1}};
    for (size_t ci = 0; ci < 3; ci++) {
        size_t k = cases[ci][0], rows = cases[ci][1], cols = cases[ci][2], off = cases[ci][3];
        size_t ld = cols + off, n = rows * cols + off;
        void *st = cases[ci][4] ? s : NULL;
        rb_codebook cb;
        make_codebook(&cb, k, seed);
        float *x = rbt_normal_f32(rows * ld + off, seed, 70 + ci);
        uint8_t *want = malloc(n);
        memset(want, 0xFF, n);
        cr_assert_eq(rb_codebook_quant_f32_ref(&cb, x + off, rows, cols, ld, want + off), RB_OK);
        float *dx = rbt_cu_upload(cu, x, (rows * ld + off) * 4);
        uint8_t *di = rbt_cu_alloc(cu, n);
        RBT_CU_OK(cu->codebook_quant_f32(&cb, dx + off, rows, cols, ld, di + off, st));
        if (st) RBT_CU_OK(cu->stream_sync(st));
        uint8_t *got = rbt_cu_download(cu, di, n);
        RBT_ASSERT_U8_EQ(got, want, n, seed, "codebook_quant k %zu rows %zu cols %zu off %zu%s", k,
                         rows, cols, off, st ? " (created stream)" : "");
        float *wy = malloc(n * 4), *dy = rbt_cu_alloc(cu, n * 4);
        memset(wy, 0xFF, n * 4);
        cr_assert_eq(rb_codebook_dequantize_f32(&cb, want + off, n - off, wy + off), RB_OK);
        RBT_CU_OK(cu->codebook_dequant_f32(&cb, di + off, n - off, dy + off, st));
        if (st) RBT_CU_OK(cu->stream_sync(st));
        float *gy = rbt_cu_download(cu, dy, n * 4);
        RBT_ASSERT_F32_BITS(gy, wy, n, seed, "codebook_dequant k %zu n %zu off %zu", k, n - off,
                            off);
        RBT_FREE(x, want, got, wy, gy);
        RBT_CU_FREE(cu, dx, di, dy);
    }
    RBT_CU_OK(cu->stream_destroy(s));
}

/* Empty inputs: the CPU twin's status (RB_OK), nothing written, no zero-block launch. */
Test(cuda_quant, empty_inputs_are_no_ops) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, quant_rows_f32);
    RBT_NEED(cu, pack_rows);
    RBT_NEED(cu, unpack_rows);
    RBT_NEED(cu, mxfp4_quant);
    RBT_NEED(cu, mxfp4_dequant);
    RBT_NEED(cu, nvfp4_dequant);
    RBT_NEED(cu, fp8_encode);
    RBT_NEED(cu, fp8_decode);
    RBT_NEED(cu, codebook_quant_f32);
    RBT_NEED(cu, codebook_dequant_f32);
    float zeros[64] = {0};
    float *dx = rbt_cu_upload(cu, zeros, sizeof zeros);
    uint8_t *db = rbt_cu_alloc(cu, 256);
    float *df = rbt_cu_alloc(cu, 256), *dz = rbt_cu_alloc(cu, 256);
    rb_quant_spec spec = {.bits = 4, .asym = 1, .gran = RB_QUANT_PER_ROW};
    RBT_CU_OK(cu->quant_rows_f32(&spec, dx, 0, 64, 64, 64, db, 64, RB_QOUT_CODES, df, dz, NULL));
    /* PER_ROW passes group == cols, here 0: nothing may divide by it. */
    RBT_CU_OK(cu->quant_rows_f32(&spec, dx, 3, 0, 0, 0, db, 0, RB_QOUT_CODES, df, dz, NULL));
    RBT_CU_OK(cu->pack_rows(db, 0, 64, 3, db, 24, NULL));
    RBT_CU_OK(cu->pack_rows(db, 5, 0, 3, db, 0, NULL));
    RBT_CU_OK(cu->unpack_rows(db, 24, 0, 64, 3, db, NULL));
    RBT_CU_OK(cu->mxfp4_quant(dx, 0, RB_MX_FLOOR, db, db, df, NULL));
    RBT_CU_OK(cu->mxfp4_dequant(db, db, 0, df, NULL));
    RBT_CU_OK(cu->nvfp4_dequant(db, db, 1.0f, 0, df, NULL));
    RBT_CU_OK(cu->fp8_encode(dx, 0, 0, RB_FP8_SATURATE, db, NULL));
    RBT_CU_OK(cu->fp8_decode(db, 0, 1, df, NULL));
    rb_codebook cb;
    make_codebook(&cb, 4, 1);
    RBT_CU_OK(cu->codebook_quant_f32(&cb, dx, 0, 64, 64, db, NULL));
    RBT_CU_OK(cu->codebook_quant_f32(&cb, dx, 4, 0, 0, db, NULL));
    RBT_CU_OK(cu->codebook_dequant_f32(&cb, db, 0, df, NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    uint8_t *hb = rbt_cu_download(cu, db, 256), *hf = rbt_cu_download(cu, df, 256);
    uint8_t *hz = rbt_cu_download(cu, dz, 256);
    for (size_t i = 0; i < 256; i++)
        cr_assert(hb[i] == 0xFF && hf[i] == 0xFF && hz[i] == 0xFF,
                  "an empty call wrote byte %zu of an output", i);
    RBT_FREE(hb, hf, hz);
    RBT_CU_FREE(cu, dx, db, df, dz);
}

/* More argument errors with the CPU's codes: a NaN, zero, negative or infinite NVFP4 tensor
 * scale; a codebook row stride shorter than a row. */
Test(cuda_quant, more_bad_arguments_return_the_cpu_code) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, nvfp4_dequant);
    RBT_NEED(cu, codebook_quant_f32);
    uint8_t hb[64] = {0};
    float hy[128], hx[128] = {0};
    uint8_t *db = rbt_cu_upload(cu, hb, sizeof hb);
    float *dy = rbt_cu_alloc(cu, sizeof hy), *dx = rbt_cu_upload(cu, hx, sizeof hx);
    static const float bad_ts[] = {0.0f, -1.0f, NAN, INFINITY};
    for (size_t i = 0; i < 4; i++) {
        int want = rb_nvfp4_decode(hb, hb, bad_ts[i], 32, hy);
        int got = cu->nvfp4_dequant(db, db, bad_ts[i], 32, dy, NULL);
        cr_assert_eq(want, RB_EINVAL);
        cr_assert_eq(got, want, "nvfp4_dequant tensor scale %g: got %s", (double) bad_ts[i],
                     rb_errname(got));
    }
    rb_codebook cb;
    make_codebook(&cb, 4, 1);
    int want = rb_codebook_quantize_f32(&cb, hx, 4, 32, 31, hb);
    int got = cu->codebook_quant_f32(&cb, dx, 4, 32, 31, db, NULL);
    cr_assert_eq(want, RB_EINVAL);
    cr_assert_eq(got, want, "codebook_quant ld < cols: got %s", rb_errname(got));
    RBT_CU_OK(cu->stream_sync(NULL));
    rbt_cu_still_usable(cu);
    RBT_CU_FREE(cu, db, dy, dx);
}

/* Rows longer than any one block's share (2^20 + 3 elements): the min/max reduction and the
 * stochastic-rounding offsets across a long row; and long packed rows. */
Test(cuda_quant, long_rows_equal_cpu_bits, .timeout = 60) {
    RBT_CUDA_OPS(cu);
    RBT_NEED(cu, quant_rows_f32);
    RBT_NEED(cu, pack_rows);
    RBT_NEED(cu, codebook_quant_f32);
    uint64_t seed = rbt_seed();
    size_t cols = ((size_t) 1 << 20) + 3;
    quant_one(cu, seed, 2, cols, cols, 8, 1, RB_QOUT_CODES, 1, NULL);
    quant_one(cu, seed, 2, cols, cols, 4, 0, RB_QOUT_PACK4, 0, NULL);
    quant_one(cu, seed, 2, cols, 1000, 3, 1, RB_QOUT_FAKE, 0, NULL);
    /* Packing and codebook indices of the same length. */
    size_t rows = 2, pb = rb_pack_bytes(cols, 3), ldo = pb + 1;
    uint32_t *rnd = malloc(rows * cols * 4);
    uint8_t *codes = malloc(rows * cols), *want = malloc(rows * ldo);
    rb_rng_bits(seed, 4242, 0, rows * cols, rnd);
    for (size_t i = 0; i < rows * cols; i++) codes[i] = (uint8_t) (rnd[i] & 7);
    memset(want, 0xFF, rows * ldo);
    cr_assert_eq(rb_pack_rows_ref(codes, rows, cols, 3, want, ldo), RB_OK);
    uint8_t *dc = rbt_cu_upload(cu, codes, rows * cols), *dp = rbt_cu_alloc(cu, rows * ldo);
    RBT_CU_OK(cu->pack_rows(dc, rows, cols, 3, dp, ldo, NULL));
    uint8_t *got = rbt_cu_download(cu, dp, rows * ldo);
    RBT_ASSERT_U8_EQ(got, want, rows * ldo, seed, "pack_rows n %zu bits 3", cols);
    rb_codebook cb;
    make_codebook(&cb, 16, seed);
    float *x = rbt_normal_f32(rows * cols, seed, 4243);
    cr_assert_eq(rb_codebook_quant_f32_ref(&cb, x, rows, cols, cols, codes), RB_OK);
    float *dx = rbt_cu_upload(cu, x, rows * cols * 4);
    uint8_t *di = rbt_cu_alloc(cu, rows * cols);
    RBT_CU_OK(cu->codebook_quant_f32(&cb, dx, rows, cols, cols, di, NULL));
    uint8_t *gi = rbt_cu_download(cu, di, rows * cols);
    RBT_ASSERT_U8_EQ(gi, codes, rows * cols, seed, "codebook_quant cols %zu", cols);
    RBT_FREE(rnd, codes, want, got, x, gi);
    RBT_CU_FREE(cu, dc, dp, dx, di);
}
