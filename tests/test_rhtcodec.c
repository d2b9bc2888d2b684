/* Fused RHT + codebook codec (kernels/rhtcodec.h): every variant the CPU runs against the
 * reference and against the per-row multi-pass pipeline written out with the reference kernels,
 * bit for bit, at and around the fast paths (d = 2^k, 12 * 128), with declines, odd row counts,
 * zero / tiny / huge rows, NaN rows named by the error, and 1 and 2 threads through the codec. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/x86/simd_util.h"
#include "methods/method.h"
#include "tests/testutil.h"

#define COUNT(a) (sizeof(a) / sizeof(a)[0])

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

/* One codec configuration: signs, a codebook of k sorted normal centroids / sqrt(d). */
typedef struct fixture {
    rb_rhtcodec p;
    rb_codebook cb;
    float *d1, *d2;
    void *scratch;
} fixture;

static void fixture_init(fixture *f, size_t d, int bits, size_t k, int blocks, uint64_t seed) {
    f->d1 = malloc(d * sizeof *f->d1);
    f->d2 = malloc(d * sizeof *f->d2);
    cr_assert(f->d1 && f->d2);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, d, f->d1);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, d, f->d2);
    float *c = rbt_normal_f32(k, seed, 500 + k);
    for (size_t i = 0; i < k; i++) c[i] /= sqrtf((float) d);
    qsort(c, k, sizeof *c, cmp_float);
    cr_assert_eq(rb_codebook_init(&f->cb, c, k), RB_OK);
    free(c);
    f->p = (rb_rhtcodec){d, f->d1, blocks == 2 ? f->d2 : NULL, &f->cb, bits, "test"};
    f->scratch = malloc(rb_rhtcodec_scratch_bytes(d) + 3);
    cr_assert_not_null(f->scratch);
}

static void fixture_free(fixture *f) {
    free(f->d1);
    free(f->d2);
    free(f->scratch);
}

/* Normal rows of stride ldx with a zero row, tiny, subnormal and huge rows among them. */
static float *inputs(size_t rows, size_t d, size_t ldx, uint64_t seed, uint64_t stream) {
    float *x = rbt_normal_f32(rows * ldx + 1, seed, stream);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            float *v = &x[r * ldx + j];
            if (r % 11 == 2) *v = 0;
            if (r % 11 == 5) *v *= 1e-30f;
            if (r % 11 == 7) *v *= 1e30f;
            if (r % 11 == 9) *v *= 1e-40f; /* subnormal: 1 / |x| is beyond FLT_MAX */
        }
    return x;
}

/* The multi-pass pipeline of methods/turboquant.c before the fused kernel, row by row with the
 * reference kernels (the oracle the fused op must reproduce); its first stages are
 * rbt_rhtcodec_rotate. */
static void encode_oracle(const fixture *f, const float *x, size_t rows, size_t ldx, uint8_t *codes,
                          size_t ldc) {
    size_t d = f->p.d, payload = rb_pack_bytes(d, f->p.bits);
    float *u = malloc(d * sizeof *u);
    uint8_t *idx = malloc(d);
    for (size_t r = 0; r < rows; r++) {
        float nf = rbt_rhtcodec_rotate(&f->p, x + r * ldx, u);
        memcpy(codes + r * ldc + payload, &nf, sizeof nf);
        cr_assert_eq(rb_codebook_quant_f32_ref(&f->cb, u, 1, d, d, idx), RB_OK);
        cr_assert_eq(rb_pack_rows_ref(idx, 1, d, f->p.bits, codes + r * ldc, ldc), RB_OK);
    }
    free(u);
    free(idx);
}

static void decode_oracle(const fixture *f, const uint8_t *codes, size_t ldc, size_t rows, float *y,
                          size_t ldy) {
    size_t d = f->p.d, payload = rb_pack_bytes(d, f->p.bits);
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * ldy, nf;
        cr_assert_eq(
            rb_codebook_decode_rows_f32_ref(&f->cb, codes + r * ldc, ldc, 1, d, f->p.bits, yr, d),
            RB_OK);
        cr_assert_eq(rb_rht_f32(yr, d, 1, d, f->p.d1, f->p.d2, RB_INVERSE), RB_OK);
        memcpy(&nf, codes + r * ldc + payload, sizeof nf);
        rb_rows_scale_f32_ref(yr, 1, d, d, &nf);
    }
}

/* Whether the fused AVX-512 encode must take (d, bits, blocks): the row-major kernel takes d =
 * 32 .. 256 (powers of two) at bits 1..4 with one or two blocks, and d = K * 2^m (K > 1, 2^m =
 * 16 .. 256) at bits 1..4 with one block; the transposed one takes one block, d = K * 2^m, 2^m >=
 * 16, d a multiple of 32 (every K is a multiple of 4, so that covers the row-major K > 1). */
static int fast_shape(size_t d, int bits, int blocks) {
    size_t K;
    int m;
    if (d >= 32 && d <= 256 && !(d & (d - 1)) && bits <= 4) return 1;
    if (blocks != 1 || rb_hadamard_lookup(d, &K, &m)) return 0;
    return ((size_t) 1 << m) >= 16 && d % 32 == 0;
}

/* Every variant's encode and decode against the oracle: codes byte for byte (the bytes past each
 * code row must survive), decodes bit for bit (and the floats past each row). */
static void check_case(size_t d, int bits, size_t k, int blocks, size_t rows, uint64_t seed) {
    fixture f;
    fixture_init(&f, d, bits, k, blocks, seed);
    size_t ldx = d + 3, ldc = rb_rhtcodec_row_bytes(&f.p) + 5, ldy = d + 5;
    float *x = inputs(rows, d, ldx, seed, d * 16 + (size_t) bits);
    uint8_t *want = malloc(rows * ldc), *got = malloc(rows * ldc);
    float *ywant = malloc(rows * ldy * sizeof *ywant), *ygot = malloc(rows * ldy * sizeof *ygot);
    cr_assert(want && got && ywant && ygot);
    memset(want, 0xA5, rows * ldc);
    memset(ywant, 0x5A, rows * ldy * sizeof *ywant);
    encode_oracle(&f, x, rows, ldx, want, ldc);
    decode_oracle(&f, want, ldc, rows, ywant, ldy);
    const rb_op *enc = &rb_op_rhtcodec_encode_f32, *dec = &rb_op_rhtcodec_decode_f32;
    for (size_t v = 0; v < enc->count; v++) {
        const rb_variant *ev = &enc->variants[v], *dv = &dec->variants[v];
        if (!rb_variant_enabled(ev)) continue;
        char *scr = (char *) f.scratch + (v & 1) * 3; /* the scratch need not be aligned */
        memset(got, 0xA5, rows * ldc);
        int rc = ((rb_rhtcodec_encode_fn) ev->fn)(&f.p, x, rows, ldx, got, ldc, 0, scr);
        int fast = strcmp(ev->name, "ref") != 0;
        if (fast && !fast_shape(d, bits, blocks)) {
            cr_assert_eq(rc, RB_EDECLINE, "%s should decline d=%zu blocks=%d", ev->name, d, blocks);
            /* The decode may still take it (the row-major kernel does two blocks): same bits. */
            memset(ygot, 0x5A, rows * ldy * sizeof *ygot);
            rc = ((rb_rhtcodec_decode_fn) dv->fn)(&f.p, want, ldc, rows, ygot, ldy, 0, scr);
            cr_assert(rc == RB_EDECLINE || rc == RB_OK, "decode %s: %s", dv->name, rb_errname(rc));
            cr_assert(rc || memcmp(ygot, ywant, rows * ldy * sizeof *ygot) == 0,
                      "decode %s: d=%zu blocks=%d seed=%llu", dv->name, d, blocks,
                      (unsigned long long) seed);
            continue;
        }
        cr_assert_eq(rc, RB_OK, "encode %s d=%zu bits=%d: %s", ev->name, d, bits,
                     rb_error_detail());
        cr_assert_eq(memcmp(got, want, rows * ldc), 0,
                     "encode %s: d=%zu bits=%d k=%zu blocks=%d rows=%zu seed=%llu", ev->name, d,
                     bits, k, blocks, rows, (unsigned long long) seed);
        cr_assert_str_eq(dv->name, ev->name);
        for (unsigned flags = 0; flags <= RB_RHTCODEC_STREAM; flags++) {
            memset(ygot, 0x5A, rows * ldy * sizeof *ygot);
            rc = ((rb_rhtcodec_decode_fn) dv->fn)(&f.p, want, ldc, rows, ygot, ldy, flags, scr);
            cr_assert_eq(rc, RB_OK, "decode %s: %s", dv->name, rb_error_detail());
            cr_assert_eq(memcmp(ygot, ywant, rows * ldy * sizeof *ygot), 0,
                         "decode %s: d=%zu bits=%d k=%zu blocks=%d rows=%zu flags=%u seed=%llu",
                         dv->name, d, bits, k, blocks, rows, flags, (unsigned long long) seed);
        }
    }
    /* The public entry points (whatever dispatch picks), streaming into an aligned buffer. */
    float *ya = aligned_alloc(64, (rows * d * sizeof *ya + 63) / 64 * 64);
    cr_assert_not_null(ya);
    memset(got, 0xA5, rows * ldc);
    cr_assert_eq(rb_rhtcodec_encode_f32(&f.p, x, rows, ldx, got, ldc, 0, f.scratch), RB_OK);
    cr_assert_eq(memcmp(got, want, rows * ldc), 0, "encode (dispatch) d=%zu seed=%llu", d,
                 (unsigned long long) seed);
    cr_assert_eq(
        rb_rhtcodec_decode_f32(&f.p, want, ldc, rows, ya, d, RB_RHTCODEC_STREAM, f.scratch), RB_OK);
    for (size_t r = 0; r < rows; r++)
        cr_assert_eq(memcmp(ya + r * d, ywant + r * ldy, d * sizeof *ya), 0,
                     "decode (dispatch, streamed) d=%zu row %zu seed=%llu", d, r,
                     (unsigned long long) seed);
    free(ya);
    free(x), free(want), free(got), free(ywant), free(ygot);
    fixture_free(&f);
}

Test(rhtcodec, variants_match_the_multipass_pipeline, .timeout = 120) {
    uint64_t seed = rbt_seed();
    /* At and around the fast paths: 2^k from 32 (64..256 in the tests of the codec too), 12 *
     * 128 = 1536, 20 * 128; declined: 16 (not a multiple of 32), 12 * 8 = 96 (2^m < 16), 40 * 16 =
     * 640 is taken, 28 (not a multiple of 32). */
    static const size_t ds[] = {16, 28, 32, 64, 128, 256, 512, 96, 640, 1536, 2560};
    static const size_t rows_list[] = {1, 16, 33, 70};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int bits = 1; bits <= 8; bits++) {
            size_t d = ds[di], rows = rows_list[(di + (size_t) bits) % COUNT(rows_list)];
            if (d > 512 && bits % 3 != 1) continue; /* keep the runtime modest */
            check_case(d, bits, (size_t) 1 << bits, 1, rows, seed);
            if (bits > 1) check_case(d, bits, ((size_t) 1 << bits) - 1, 1, rows + 2, seed);
        }
    check_case(128, 2, 4, 2, 17, seed);  /* two blocks of signs: the row-major encode */
    check_case(128, 5, 32, 2, 17, seed); /* two blocks at bits 5: the reference */
    check_case(128, 4, 16, 1, 1, seed);
    check_case(128, 8, 256, 1, 31, seed);
}

/* The AVX-512 kernels' compile-time H_12 (rb_h12_paley) must be the library's constructed one:
 * they check it per call and silently take their generic mix otherwise, which the bit tests
 * would not notice. */
Test(rhtcodec, compile_time_h12_is_the_library_table) {
    const int8_t *h = rb_hadamard_matrix(12);
    cr_assert_not_null(h);
    for (int i = 0; i < 144; i++)
        cr_assert_eq(h[i], rb_h12_paley[i], "H_12 entry (%d, %d)", i / 12, i % 12);
}

/* Whether this CPU runs the AVX-512 variant (the kernels below are called directly). */
static int have_avx512(void) {
    const rb_op *op = &rb_op_rhtcodec_decode_f32;
    for (size_t v = 0; v < op->count; v++)
        if (!strcmp(op->variants[v].name, "avx512")) return rb_variant_enabled(&op->variants[v]);
    return 0;
}

/* The row-major encode (d = 32 .. 256 in registers, or K * 2^m block by block; bits 1..4) against
 * the oracle, byte for byte:
 * rows with zero, tiny (the 2^64 pre-scale), subnormal and huge norms among normal ones (those
 * go through the reference alone, the rows around them through the kernel row by row), rows with
 * norms just above and below 2^-64 and FLT_MAX / 2, k = 2^bits, 2^bits - 1 and 1 (padding
 * thresholds of +Inf), one and two blocks, partial groups of rows and (at 40 rows) a whole group
 * of 16 the fast path takes, strided inputs, and code rows with a gap whose bytes must survive. */
static void check_enc_rows_case(size_t d, int bits, size_t k, int blocks, size_t rows,
                                uint64_t seed) {
    fixture f;
    fixture_init(&f, d, bits, k, blocks, seed);
    if (d > 256 && rows % 2) { /* K > 1 takes any signs (applied after * inv, in that order) */
        f.d1[5] = 0.5f;
        f.d1[d - 1] = -3.0f;
    }
    size_t ldx = d + (rows % 2 || rows >= 32 ? 5 : 0),
           ldc = rb_rhtcodec_row_bytes(&f.p) + (rows % 3);
    float *x = inputs(rows, d, ldx, seed, 5000 + d * 16 + (size_t) bits);
    if (rows >= 32) { /* rows 16 .. 31 all taken by the fast path: the d <= 256 whole-group path */
        float *g = rbt_normal_f32(16 * ldx, seed, 6000 + d * 16 + (size_t) bits);
        for (size_t j = 0; j < d; j++) { /* large and small norms the fast path still takes */
            g[7 * ldx + j] *= 1e30f;
            g[11 * ldx + j] *= 1e-15f;
        }
        memcpy(x + 16 * ldx, g, 16 * ldx * sizeof *x);
        free(g);
    }
    /* Norms at the pre-scale's edge and large, in rows 3, 4, 10 and 32, 33, 39 (none in 16 .. 31)
     */
    for (size_t r = 0; r < rows; r++) {
        float s = r % 29 == 3 ? 0x1p-64f : r % 29 == 4 ? 0x1p-68f : r % 29 == 10 ? 1e37f : 0;
        float e = d > 256 ? 2 * s / sqrtf((float) d) : s; /* long rows: |x| = sqrt(2) s */
        if (s != 0)
            for (size_t j = 0; j < d; j++) x[r * ldx + j] = j % 3 ? s / sqrtf((float) d) : -e;
    }
    uint8_t *want = malloc(rows * ldc + 1), *got = malloc(rows * ldc + 1);
    cr_assert(want && got);
    memset(want, 0xA5, rows * ldc + 1);
    encode_oracle(&f, x, rows, ldx, want, ldc);
    for (int via = 0; via < 2; via++) {
        memset(got, 0xA5, rows * ldc + 1);
        int rc =
            via ? rb_rhtcodec_encode_f32_avx512(&f.p, x, rows, ldx, got, ldc, 0, f.scratch)
                : rb_rhtcodec_encode_rows_f32_avx512(&f.p, x, rows, ldx, got, ldc, 0, f.scratch);
        cr_assert_eq(rc, RB_OK, "rows d=%zu bits=%d: %s", d, bits, rb_error_detail());
        for (size_t r = 0; r < rows; r++)
            cr_assert_eq(memcmp(got + r * ldc, want + r * ldc, ldc), 0,
                         "row-major encode d=%zu bits=%d k=%zu blocks=%d rows=%zu row %zu via=%d "
                         "seed=%llu",
                         d, bits, k, blocks, rows, r, via, (unsigned long long) seed);
        cr_assert_eq(got[rows * ldc], 0xA5, "the byte after the last row written");
    }
    free(x), free(want), free(got);
    fixture_free(&f);
}

Test(rhtcodec, rowmajor_encode_matches_the_oracle, .timeout = 120) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {32, 64, 128, 256};
    static const size_t rows_list[] = {1, 2, 3, 16, 17, 40};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int bits = 1; bits <= 4; bits++)
            for (size_t ri = 0; ri < COUNT(rows_list); ri++) {
                size_t full = (size_t) 1 << bits, rows = rows_list[ri];
                int blocks = ri % 2 ? 2 : 1;
                check_enc_rows_case(ds[di], bits, full, blocks, rows, seed);
                check_enc_rows_case(ds[di], bits, ri % 3 ? full - 1 : 1, 3 - blocks, rows, seed);
            }
}

/* d = K * 2^m (K > 1, one block of signs): 12 * 128 (the compile-time H_12 mix), 12 * 16 and 12
 * * 256 (the block sizes at the ends), 40 * 64 = 2560 and 28 * 128 (the generic mix); odd row
 * counts take signs that are not +-1. */
Test(rhtcodec, rowmajor_encode_mixed_matches_the_oracle, .timeout = 120) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {1536, 192, 3072, 2560, 3584};
    static const size_t rows_list[] = {1, 2, 17, 40};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int bits = 1; bits <= 4; bits++)
            for (size_t ri = 0; ri < COUNT(rows_list); ri++) {
                size_t full = (size_t) 1 << bits, rows = rows_list[ri], d = ds[di];
                if (d != 1536 && rows == 40) continue; /* keep the runtime modest */
                check_enc_rows_case(d, bits, full, 1, rows, seed);
                if (ri % 2) check_enc_rows_case(d, bits, ri % 3 ? full - 1 : 1, 1, rows, seed);
            }
}

/* Codes change only where a rotated value crosses a threshold, so a kernel whose values are off
 * by an ulp (a wrong summation order, a lost signed zero) mostly gives the right codes. Here the
 * thresholds are set onto rotated values of the rows themselves (v, or the float below v, so that
 * an ulp either way changes a code): k - 1 values picked at random from all the rows, many
 * codebooks in turn. The encode compares the values before the last * 1 / sqrt(d) with
 * thresholds moved to those units, which this pins to the reference's rounding of the product. */
static void check_knife_edge(size_t d, int bits, size_t rows, int rounds, int blocks,
                             uint64_t seed) {
    fixture f;
    fixture_init(&f, d, bits, (size_t) 1 << bits, blocks, seed);
    size_t ldc = rb_rhtcodec_row_bytes(&f.p), k = (size_t) 1 << bits;
    float *x = rbt_normal_f32(rows * d, seed, 7000 + d), *v = malloc(rows * d * sizeof *v);
    uint8_t *want = malloc(rows * ldc), *got = malloc(rows * ldc);
    uint32_t *pick = malloc((size_t) rounds * k * sizeof *pick);
    cr_assert(v && want && got && pick);
    for (size_t r = 0; r < rows; r++) rbt_rhtcodec_rotate(&f.p, x + r * d, v + r * d);
    rb_rng_bits(seed, 7100 + d * 16 + (size_t) bits, 0, (size_t) rounds * k, pick);
    for (int t = 0; t < rounds; t++) {
        float thr[RB_CODEBOOK_MAX];
        for (size_t i = 0; i + 1 < k; i++) thr[i] = v[pick[(size_t) t * k + i] % (rows * d)];
        qsort(thr, k - 1, sizeof *thr, cmp_float);
        size_t used = 0; /* strictly ascending after the nudges down */
        for (size_t i = 0; i + 1 < k; i++) {
            float e = i % 2 ? nextafterf(thr[i], -INFINITY) : thr[i];
            if (used == 0 || e > f.cb.thresholds[used - 1]) f.cb.thresholds[used++] = e;
        }
        f.cb.k = used + 1;
        for (size_t i = used; i < RB_CODEBOOK_MAX; i++) f.cb.thresholds[i] = INFINITY;
        encode_oracle(&f, x, rows, d, want, ldc);
        for (int via = 0; via < 2; via++) {
            memset(got, 0xA5, rows * ldc);
            int rc =
                via ? rb_rhtcodec_encode_f32_avx512(&f.p, x, rows, d, got, ldc, 0, f.scratch)
                    : rb_rhtcodec_encode_rows_f32_avx512(&f.p, x, rows, d, got, ldc, 0, f.scratch);
            cr_assert_eq(rc, RB_OK, "d=%zu bits=%d: %s", d, bits, rb_error_detail());
            cr_assert_eq(memcmp(got, want, rows * ldc), 0,
                         "knife edge d=%zu bits=%d blocks=%d round %d via=%d seed=%llu", d, bits,
                         blocks, t, via, (unsigned long long) seed);
        }
    }
    free(x), free(v), free(want), free(got), free(pick);
    fixture_free(&f);
}

Test(rhtcodec, rowmajor_encode_knife_edge, .timeout = 60) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {128, 256, 1536, 192, 2560};
    for (size_t di = 0; di < COUNT(ds); di++) /* two blocks of signs: powers of two <= 256 */
        for (int blocks = 1; blocks <= (ds[di] <= 256 && !(ds[di] & (ds[di] - 1)) ? 2 : 1);
             blocks++) {
            for (int bits = 1; bits <= 4; bits++)
                check_knife_edge(ds[di], bits, 5, 8, blocks, seed);
        }
}

/* What the row-major encode declines: powers of two outside 32 .. 256, K * 2^m with 2^m < 16
 * (96 = 12 * 8) or two blocks of signs (K > 1), bits > 4, signs not +-1 (d <= 256). A bad row is
 * the reference's error (bad_rows_are_named). */
Test(rhtcodec, rowmajor_encode_declines) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    static const size_t ds[] = {16, 96, 512, 1536};
    float x[2 * 1536] = {0};
    uint8_t codes[2 * 400];
    for (size_t di = 0; di < COUNT(ds); di++) {
        fixture f;
        fixture_init(&f, ds[di], 2, 4, ds[di] == 1536 ? 2 : 1, 11);
        cr_assert_eq(
            rb_rhtcodec_encode_rows_f32_avx512(&f.p, x, 1, ds[di], codes, 400, 0, f.scratch),
            RB_EDECLINE, "d=%zu", ds[di]);
        fixture_free(&f);
    }
    fixture f;
    fixture_init(&f, 1536, 5, 32, 1, 11);
    cr_assert_eq(rb_rhtcodec_encode_rows_f32_avx512(&f.p, x, 1, 1536, codes, 400, 0, f.scratch),
                 RB_EDECLINE, "d=1536 bits 5");
    fixture_free(&f);
    fixture_init(&f, 128, 5, 32, 1, 11);
    cr_assert_eq(rb_rhtcodec_encode_rows_f32_avx512(&f.p, x, 1, 128, codes, 400, 0, f.scratch),
                 RB_EDECLINE, "bits 5");
    fixture_free(&f);
    fixture_init(&f, 128, 2, 4, 2, 11);
    f.d2[7] = 0.5f;
    cr_assert_eq(rb_rhtcodec_encode_rows_f32_avx512(&f.p, x, 1, 128, codes, 400, 0, f.scratch),
                 RB_EDECLINE, "signs not +-1");
    fixture_free(&f);
}

/* The row-major decode (d = 32 .. 256 in registers) against the oracle, bit for bit: codes from
 * the encoder and random codes within k with zero, signed-zero, subnormal, tiny and huge norms;
 * k = 2^bits and 2^bits - 1 (the check for codes >= k), every bits value (the permute, the
 * two-source permute and the gather lookups; codes within a dword and straddling two), row
 * counts around the 16-row groups, one and two blocks of signs, aligned and unaligned outputs,
 * streaming on and off. The floats between rows must survive. */
static void check_rows_case(size_t d, int bits, size_t k, int blocks, size_t rows, int random,
                            uint64_t seed) {
    fixture f;
    fixture_init(&f, d, bits, k, blocks, seed);
    size_t ldc = rb_rhtcodec_row_bytes(&f.p) + 3, payload = rb_pack_bytes(d, bits);
    uint8_t *codes = malloc(rows * ldc + 1);
    cr_assert_not_null(codes);
    memset(codes, 0xC3, rows * ldc + 1);
    if (random) {
        uint32_t *u = malloc(rows * (d + 1) * sizeof *u);
        uint8_t *idx = malloc(d);
        float *nrm = rbt_normal_f32(rows, seed, 4000 + d);
        rb_rng_bits(seed, 4100 + d * 16 + (size_t) bits, 0, rows * (d + 1), u);
        static const float special[] = {0.0f, -0.0f, 1e-40f, 1e-30f, 3e38f, FLT_MAX, 1.0f};
        for (size_t r = 0; r < rows; r++) {
            for (size_t j = 0; j < d; j++) idx[j] = (uint8_t) (u[r * (d + 1) + j] % k);
            cr_assert_eq(rb_pack_rows_ref(idx, 1, d, bits, codes + r * ldc, ldc), RB_OK);
            float n = r % 3 ? fabsf(nrm[r]) * 10.0f : special[(r / 3) % COUNT(special)];
            memcpy(codes + r * ldc + payload, &n, sizeof n);
        }
        free(u), free(idx), free(nrm);
    } else {
        float *x = inputs(rows, d, d, seed, 4200 + d);
        encode_oracle(&f, x, rows, d, codes, ldc);
        free(x);
    }
    size_t ldy = d + 3, total = rows * ldy + 16;
    size_t bytes = (total * sizeof(float) + 64 + 63) / 64 * 64; /* aligned_alloc: a multiple */
    float *want = malloc(total * sizeof *want), *buf = aligned_alloc(64, bytes);
    cr_assert(want && buf);
    memset(want, 0x5A, total * sizeof *want);
    decode_oracle(&f, codes, ldc, rows, want, ldy);
    /* layouts: (offset of y in buf, ldy): aligned rows (streamable), then y + 1 with ldy = d + 3 */
    for (int layout = 0; layout < 2; layout++)
        for (unsigned flags = 0; flags <= RB_RHTCODEC_STREAM; flags++)
            for (int via = 0; via < 2; via++) {
                size_t off = layout ? 1 : 0, ld = layout ? ldy : d;
                float *y = buf + off;
                memset(buf, 0x5A, bytes);
                int rc = via ? rb_rhtcodec_decode_f32_avx512(&f.p, codes, ldc, rows, y, ld, flags,
                                                             f.scratch)
                             : rb_rhtcodec_decode_rows_f32_avx512(&f.p, codes, ldc, rows, y, ld,
                                                                  flags, f.scratch);
                cr_assert_eq(rc, RB_OK, "rows d=%zu bits=%d: %s", d, bits, rb_errname(rc));
                for (size_t r = 0; r < rows; r++)
                    cr_assert_eq(memcmp(y + r * ld, want + r * ldy, d * sizeof *y), 0,
                                 "row-major decode d=%zu bits=%d k=%zu blocks=%d rows=%zu row %zu "
                                 "random=%d layout=%d flags=%u via=%d seed=%llu",
                                 d, bits, k, blocks, rows, r, random, layout, flags, via,
                                 (unsigned long long) seed);
                /* nothing written between the rows or after the last */
                uint32_t sentinel = 0x5A5A5A5Au, w;
                for (size_t r = 0; r < rows; r++)
                    for (size_t j = d; j < ld && r + 1 < rows; j++) {
                        memcpy(&w, y + r * ld + j, sizeof w);
                        cr_assert_eq(w, sentinel, "d=%zu row %zu: float %zu past the row written",
                                     d, r, j);
                    }
                memcpy(&w, y + rows * ld, sizeof w);
                cr_assert_eq(w, sentinel, "d=%zu: the float after the last row written", d);
            }
    free(codes), free(want), free(buf);
    fixture_free(&f);
}

Test(rhtcodec, rowmajor_decode_matches_the_oracle, .timeout = 120) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {32, 64, 128, 256};
    static const size_t rows_list[] = {1, 2, 15, 16, 17, 33};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int bits = 1; bits <= 8; bits++) {
            if (bits > 4 && bits != 5 + (int) di) continue; /* one larger bits per d: 5 .. 8 */
            for (size_t ri = 0; ri < COUNT(rows_list); ri++) {
                size_t rows = rows_list[ri], full = (size_t) 1 << bits;
                int blocks = ri == 2 ? 2 : 1;
                check_rows_case(ds[di], bits, full, blocks, rows, (int) (ri & 1), seed);
                if (bits > 1) /* k < 2^bits; and a k just above 16 and 32 (permute limits) */
                    check_rows_case(ds[di], bits,
                                    bits == 5   ? 17
                                    : bits >= 6 ? 33
                                                : full - 1,
                                    blocks, rows, (int) !(ri & 1), seed);
            }
        }
}

/* The row-major decode of d = K * 2^m (K > 1: 12 with its compile-time mix, 20 and 28 through the
 * generic one; 2^m = 16, 128, 256, i.e. one to sixteen vectors a block) against the oracle, as
 * above: every bits value it takes (1..4), k = 2^bits and 2^bits - 1, codes from the encoder and
 * random ones with special norms, aligned and unaligned outputs, streaming on and off. */
Test(rhtcodec, rowmajor_decode_mixed_matches_the_oracle, .timeout = 120) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {1536, 192, 3072, 2560, 3584};
    static const size_t rows_list[] = {1, 2, 17};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int bits = 1; bits <= 4; bits++)
            for (size_t ri = 0; ri < COUNT(rows_list); ri++) {
                size_t rows = rows_list[ri], full = (size_t) 1 << bits;
                if (ds[di] != 1536 && rows == 17) continue; /* keep the runtime modest */
                check_rows_case(ds[di], bits, full, 1, rows, (int) (ri & 1), seed);
                if (bits > 1)
                    check_rows_case(ds[di], bits, full - 1, 1, rows, (int) !(ri & 1), seed);
            }
}

/* What the row-major decode declines: d outside 32 .. 256 and not K * 2^m with K > 1 and 2^m =
 * 16 .. 256, K > 1 with two blocks of signs or bits above 4, signs not +-1; a code >= k is the
 * reference's error (also in a later block of a K > 1 row). */
Test(rhtcodec, rowmajor_decode_declines) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    static const size_t ds[] = {16, 96, 512, 1536, 1536};
    static const int bits[] = {2, 2, 2, 5, 2}, blocks[] = {1, 1, 1, 1, 2};
    for (size_t di = 0; di < COUNT(ds); di++) {
        fixture f;
        fixture_init(&f, ds[di], bits[di], 4, blocks[di], 11);
        uint8_t codes[64] = {0};
        float y[1536];
        cr_assert_eq(rb_rhtcodec_decode_rows_f32_avx512(&f.p, codes, 0, 1, y, ds[di], 0, f.scratch),
                     RB_EDECLINE, "d=%zu bits=%d blocks=%d", ds[di], bits[di], blocks[di]);
        fixture_free(&f);
    }
    {
        fixture f;
        fixture_init(&f, 1536, 2, 3, 1, 11);
        size_t ldc = rb_rhtcodec_row_bytes(&f.p);
        uint8_t *codes = calloc(2, ldc);
        float *y = malloc(2 * 1536 * sizeof *y);
        cr_assert(codes && y);
        codes[ldc + 5 * 32 + 3] = 0x0C; /* row 1, block 5: code 3 >= k = 3 */
        int rc = rb_rhtcodec_decode_rows_f32_avx512(&f.p, codes, ldc, 2, y, 1536, 0, f.scratch);
        cr_assert_eq(rc, RB_EINVAL, "%s", rb_errname(rc));
        cr_assert_not_null(strstr(rb_error_detail(), ">= k = 3"), "%s", rb_error_detail());
        free(codes), free(y);
        fixture_free(&f);
    }
    fixture f;
    fixture_init(&f, 128, 2, 3, 1, 11);
    uint8_t codes[2 * 36] = {0};
    float y[2 * 128];
    f.d1[5] = 0.5f;
    cr_assert_eq(rb_rhtcodec_decode_rows_f32_avx512(&f.p, codes, 36, 2, y, 128, 0, f.scratch),
                 RB_EDECLINE);
    f.d1[5] = 1.0f;
    codes[36 + 31] = 0x30; /* code 3 >= k = 3 in row 1 */
    int rc = rb_rhtcodec_decode_rows_f32_avx512(&f.p, codes, 36, 2, y, 128, 0, f.scratch);
    cr_assert_eq(rc, RB_EINVAL, "%s", rb_errname(rc));
    cr_assert_not_null(strstr(rb_error_detail(), ">= k = 3"), "%s", rb_error_detail());
    fixture_free(&f);
}

/* A NaN, an Inf and a norm beyond fp32: RB_ENUMERIC naming the vector (row0 + row), the rows
 * before it written as the oracle writes them. */
Test(rhtcodec, bad_rows_are_named) {
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {128, 1536, 96};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int kind = 0; kind < 3; kind++) {
            size_t d = ds[di], rows = 45, bad = kind == 1 ? 16 : 37, ldc;
            fixture f;
            fixture_init(&f, d, 2, 4, 1, seed);
            ldc = rb_rhtcodec_row_bytes(&f.p);
            float *x = inputs(rows, d, d, seed, 77);
            if (kind == 0) x[bad * d + 5] = NAN;
            if (kind == 1) x[bad * d + d - 1] = -INFINITY;
            if (kind == 2)
                for (size_t j = 0; j < d; j++) x[bad * d + j] = 3e38f;
            uint8_t *want = malloc(rows * ldc), *got = malloc(rows * ldc);
            memset(want, 0, rows * ldc);
            encode_oracle(&f, x, bad, d, want, ldc);
            const rb_op *enc = &rb_op_rhtcodec_encode_f32;
            for (size_t v = 0; v < enc->count; v++) {
                const rb_variant *ev = &enc->variants[v];
                if (!rb_variant_enabled(ev)) continue;
                memset(got, 0, rows * ldc);
                int rc =
                    ((rb_rhtcodec_encode_fn) ev->fn)(&f.p, x, rows, d, got, ldc, 1000, f.scratch);
                if (rc == RB_EDECLINE) continue;
                char name[64];
                snprintf(name, sizeof name, "test: vector %zu has a", 1000 + bad);
                cr_assert_eq(rc, RB_ENUMERIC, "%s d=%zu kind %d: %s", ev->name, d, kind,
                             rb_errname(rc));
                cr_assert_not_null(strstr(rb_error_detail(), name), "%s: '%s' lacks '%s'", ev->name,
                                   rb_error_detail(), name);
                cr_assert_not_null(strstr(rb_error_detail(),
                                          kind == 2 ? "beyond the fp32 range" : "NaN or infinite"),
                                   "%s: '%s'", ev->name, rb_error_detail());
                cr_assert_eq(memcmp(got, want, bad * ldc), 0,
                             "%s d=%zu: the rows before the bad one, seed=%llu", ev->name, d,
                             (unsigned long long) seed);
            }
            free(x), free(want), free(got);
            fixture_free(&f);
        }
}

Test(rhtcodec, bad_arguments_and_codes) {
    fixture f;
    fixture_init(&f, 128, 2, 3, 1, 7);
    float x[2 * 128] = {0}, y[2 * 128];
    uint8_t codes[2 * 40];
    rb_rhtcodec p = f.p;
    p.d = 100;
    cr_assert_eq(rb_rhtcodec_encode_f32(&p, x, 2, 128, codes, 40, 0, f.scratch), RB_ESIZE);
    p = f.p;
    p.bits = 9;
    cr_assert_eq(rb_rhtcodec_encode_f32(&p, x, 2, 128, codes, 40, 0, f.scratch), RB_EINVAL);
    p.bits = 1; /* k = 3 > 2 */
    cr_assert_eq(rb_rhtcodec_decode_f32(&p, codes, 40, 2, y, 128, 0, f.scratch), RB_EINVAL);
    cr_assert_eq(rb_rhtcodec_encode_f32(&f.p, x, 2, 128, codes, 35, 0, f.scratch), RB_EINVAL);
    cr_assert_eq(rb_rhtcodec_encode_f32(&f.p, x, 2, 100, codes, 36, 0, f.scratch), RB_EINVAL);
    cr_assert_eq(rb_rhtcodec_encode_f32(&f.p, x, 2, 128, codes, 36, 0, NULL), RB_EINVAL);
    /* k = 3 < 2^2: the code 3 is an error in every variant. */
    memset(codes, 0, sizeof codes);
    codes[40 + 9] = 0xC0;
    const rb_op *dec = &rb_op_rhtcodec_decode_f32;
    for (size_t v = 0; v < dec->count; v++) {
        const rb_variant *dv = &dec->variants[v];
        if (!rb_variant_enabled(dv)) continue;
        int rc = ((rb_rhtcodec_decode_fn) dv->fn)(&f.p, codes, 40, 2, y, 128, 0, f.scratch);
        cr_assert_eq(rc, RB_EINVAL, "%s: %s", dv->name, rb_errname(rc));
        cr_assert_not_null(strstr(rb_error_detail(), ">= k = 3"), "%s", rb_error_detail());
    }
    fixture_free(&f);
}

/* Through the codec: the same codes and decodes with 1 and 2 threads, odd counts. */
Test(rhtcodec, turboquant_bits_do_not_depend_on_threads, .timeout = 60) {
    uint64_t seed = rbt_seed();
    const rb_method *m = rb_method_find("turboquant_mse");
    cr_assert_not_null(m);
    static const size_t ds[] = {64, 256, 1536};
    int saved = rb_threads_get();
    for (size_t di = 0; di < COUNT(ds); di++) {
        size_t d = ds[di], count = d > 256 ? 203 : 1001;
        rb_params p;
        cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
        cr_assert_eq(rb_params_set(&p, "rotation", "rht"), 0);
        cr_assert_eq(rb_params_set(&p, "bits", di == 1 ? "4" : "3"), 0);
        void *st;
        cr_assert_eq(m->codec->create(&p, d, seed, &st), 0, "%s", rb_error_detail());
        size_t cb = m->codec->code_bytes(st);
        float *x = inputs(count, d, d, seed, 900 + d);
        uint8_t *c[2] = {malloc(count * cb), malloc(count * cb)};
        float *y[2] = {malloc(count * d * 4), malloc(count * d * 4)};
        for (int t = 0; t < 2; t++) {
            cr_assert_eq(rb_threads_set(t + 1), 0);
            cr_assert_eq(m->codec->encode(st, x, count, c[t]), 0, "%s", rb_error_detail());
            cr_assert_eq(m->codec->decode(st, c[t], count, y[t]), 0, "%s", rb_error_detail());
        }
        cr_assert_eq(memcmp(c[0], c[1], count * cb), 0, "d=%zu codes, seed=%llu", d,
                     (unsigned long long) seed);
        cr_assert_eq(memcmp(y[0], y[1], count * d * 4), 0, "d=%zu decodes, seed=%llu", d,
                     (unsigned long long) seed);
        /* A NaN in vector 700 (or 150): the codec's error names it. */
        size_t bad = count > 700 ? 700 : 150;
        x[bad * d + 3] = NAN;
        char want[64];
        snprintf(want, sizeof want, "turboquant: vector %zu has a NaN", bad);
        cr_assert_eq(m->codec->encode(st, x, count, c[0]), RB_ENUMERIC);
        cr_assert_not_null(strstr(rb_error_detail(), want), "'%s'", rb_error_detail());
        m->codec->destroy(st);
        free(x), free(c[0]), free(c[1]), free(y[0]), free(y[1]);
    }
    rb_threads_set(saved);
}
