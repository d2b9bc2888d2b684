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

/* Normal rows of stride ldx with a zero row, tiny and huge rows among them. */
static float *inputs(size_t rows, size_t d, size_t ldx, uint64_t seed, uint64_t stream) {
    float *x = rbt_normal_f32(rows * ldx + 1, seed, stream);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            float *v = &x[r * ldx + j];
            if (r % 11 == 2) *v = 0;
            if (r % 11 == 5) *v *= 1e-30f;
            if (r % 11 == 7) *v *= 1e30f;
        }
    return x;
}

/* The multi-pass pipeline of methods/turboquant.c before the fused kernel, row by row with the
 * reference kernels (the oracle the fused op must reproduce). */
static void encode_oracle(const fixture *f, const float *x, size_t rows, size_t ldx, uint8_t *codes,
                          size_t ldc) {
    size_t d = f->p.d, payload = rb_pack_bytes(d, f->p.bits);
    float *u = malloc(d * sizeof *u);
    uint8_t *idx = malloc(d);
    for (size_t r = 0; r < rows; r++) {
        double nrm;
        rb_rows_sqnorm_f32_ref(x + r * ldx, NULL, 1, d, d, &nrm);
        double n = sqrt(nrm);
        float nf = (float) n;
        memcpy(codes + r * ldc + payload, &nf, sizeof nf);
        double inv = n > 0 ? 1.0 / n : 0.0;
        rb_rows_scale_f64_f32_ref(x + r * ldx, 1, d, d, &inv, u, d);
        cr_assert_eq(rb_rht_f32(u, d, 1, d, f->p.d1, f->p.d2, RB_FORWARD), RB_OK);
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

/* Whether the fused AVX-512 variant must take (d, blocks): one block, d = K * 2^m, 2^m >= 16,
 * d a multiple of 32. */
static int fast_shape(size_t d, int blocks) {
    size_t K;
    int m;
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
        if (fast && !fast_shape(d, blocks)) {
            cr_assert_eq(rc, RB_EDECLINE, "%s should decline d=%zu blocks=%d", ev->name, d, blocks);
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
    check_case(128, 2, 4, 2, 17, seed); /* two blocks of signs: the reference */
    check_case(128, 4, 16, 1, 1, seed);
    check_case(128, 8, 256, 1, 31, seed);
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
