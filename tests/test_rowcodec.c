/* Row codec kernels (kernels/rowcodec.h): every variant the CPU runs against the reference on fresh
 * random inputs, at, below and above the 64-code / 8-row / 16-row fast paths, every bit width;
 * results compared bit for bit. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static const size_t NS[] = {1, 7, 8, 9, 63, 64, 65, 128, 200, 1536};
static const size_t ROWS[] = {1, 3, 8, 17, 33};
#define COUNT(a) (sizeof(a) / sizeof(a)[0])

static uint8_t *random_bytes(size_t n, uint64_t seed, uint64_t stream) {
    uint8_t *b = malloc(n + 1);
    cr_assert_not_null(b);
    uint32_t *w = malloc((n / 4 + 1) * sizeof *w);
    cr_assert_not_null(w);
    rb_rng_bits(seed, stream, 0, n / 4 + 1, w);
    memcpy(b, w, n);
    free(w);
    return b;
}

Test(rowcodec, pack_and_unpack_variants_match_the_reference) {
    uint64_t seed = rbt_seed();
    for (size_t ni = 0; ni < COUNT(NS); ni++)
        for (size_t ri = 0; ri < COUNT(ROWS); ri++)
            for (int bits = 1; bits <= 8; bits++) {
                size_t n = NS[ni], rows = ROWS[ri], ld = rb_pack_bytes(n, bits) + 3;
                uint8_t *codes = random_bytes(rows * n, seed, ni * 100 + ri * 10 + (size_t) bits);
                uint8_t *ref = malloc(rows * ld), *got = malloc(rows * ld);
                uint8_t *back = malloc(rows * n), *back_ref = malloc(rows * n);
                memset(ref, 0xA5, rows * ld);
                cr_assert_eq(rb_pack_rows_ref(codes, rows, n, bits, ref, ld), 0);
                cr_assert_eq(rb_unpack_rows_ref(ref, ld, rows, n, bits, back_ref), 0);
                for (size_t r = 0; r < rows * n; r++)
                    cr_assert_eq(back_ref[r], codes[r] & ((1u << bits) - 1));
                const rb_op *ops[2] = {&rb_op_pack_rows, &rb_op_unpack_rows};
                for (size_t v = 0; v < ops[0]->count; v++) {
                    const rb_variant *pv = &ops[0]->variants[v];
                    if (!rb_variant_enabled(pv)) continue;
                    memset(got, 0xA5, rows * ld); /* the bytes past each row must survive */
                    cr_assert_eq(((rb_pack_rows_fn) pv->fn)(codes, rows, n, bits, got, ld), 0);
                    cr_assert_eq(memcmp(got, ref, rows * ld), 0,
                                 "pack %s: n=%zu rows=%zu bits=%d seed=%llu", pv->name, n, rows,
                                 bits, (unsigned long long) seed);
                }
                for (size_t v = 0; v < ops[1]->count; v++) {
                    const rb_variant *uv = &ops[1]->variants[v];
                    if (!rb_variant_enabled(uv)) continue;
                    cr_assert_eq(((rb_unpack_rows_fn) uv->fn)(ref, ld, rows, n, bits, back), 0);
                    cr_assert_eq(memcmp(back, back_ref, rows * n), 0,
                                 "unpack %s: n=%zu rows=%zu bits=%d seed=%llu", uv->name, n, rows,
                                 bits, (unsigned long long) seed);
                }
                free(codes), free(ref), free(got), free(back), free(back_ref);
            }
}

Test(rowcodec, codebook_decode_variants_match_and_reject_codes_beyond_k) {
    uint64_t seed = rbt_seed();
    for (int bits = 1; bits <= 8; bits++)
        for (size_t ni = 0; ni < COUNT(NS); ni++) {
            size_t n = NS[ni], rows = 5, ld = rb_pack_bytes(n, bits) + 1, k = (size_t) 1 << bits;
            float *cent = rbt_normal_f32(k, seed, (uint64_t) bits);
            for (size_t i = 1; i < k; i++) /* sorted */
                for (size_t j = i; j > 0 && cent[j] < cent[j - 1]; j--) {
                    float t = cent[j];
                    cent[j] = cent[j - 1], cent[j - 1] = t;
                }
            rb_codebook cb;
            cr_assert_eq(rb_codebook_init(&cb, cent, k), 0);
            uint8_t *codes = random_bytes(rows * n, seed, 1000 + ni), *packed = malloc(rows * ld);
            cr_assert_eq(rb_pack_rows_ref(codes, rows, n, bits, packed, ld), 0);
            float *ref = malloc(rows * (n + 2) * sizeof *ref), *got = malloc(rows * (n + 2) * 4);
            cr_assert_eq(
                rb_codebook_decode_rows_f32_ref(&cb, packed, ld, rows, n, bits, ref, n + 2), 0);
            for (size_t j = 0; j < n; j++) cr_assert_eq(ref[j], cent[codes[j] & (k - 1)]);
            const rb_op *op = &rb_op_codebook_decode_rows_f32;
            for (size_t v = 0; v < op->count; v++) {
                const rb_variant *dv = &op->variants[v];
                if (!rb_variant_enabled(dv)) continue;
                rb_codebook_decode_rows_fn fn = (rb_codebook_decode_rows_fn) dv->fn;
                memcpy(got, ref, rows * (n + 2) * sizeof *got);
                for (size_t r = 0; r < rows; r++)
                    for (size_t j = 0; j < n; j++) got[r * (n + 2) + j] = -1.0f;
                cr_assert_eq(fn(&cb, packed, ld, rows, n, bits, got, n + 2), 0);
                for (size_t r = 0; r < rows; r++)
                    cr_assert_eq(memcmp(got + r * (n + 2), ref + r * (n + 2), n * sizeof *got), 0,
                                 "%s bits=%d n=%zu seed=%llu", dv->name, bits, n,
                                 (unsigned long long) seed);
                if (bits > 1) { /* a codebook of k - 1 entries: the largest code is invalid */
                    rb_codebook small;
                    cr_assert_eq(rb_codebook_init(&small, cent, k - 1), 0);
                    int bad = 0;
                    for (size_t i = 0; i < rows * n; i++) bad |= (codes[i] & (k - 1)) == k - 1;
                    int rc = fn(&small, packed, ld, rows, n, bits, got, n + 2);
                    cr_assert_eq(rc, bad ? RB_EINVAL : 0, "%s bits=%d n=%zu", dv->name, bits, n);
                }
            }
            free(cent), free(codes), free(packed), free(ref), free(got);
        }
}

Test(rowcodec, row_reductions_and_scaling_match_the_reference_bits) {
    uint64_t seed = rbt_seed();
    for (size_t ni = 0; ni < COUNT(NS); ni++)
        for (size_t ri = 0; ri < COUNT(ROWS); ri++) {
            size_t n = NS[ni], rows = ROWS[ri] == 33 ? 35 : ROWS[ri];
            for (size_t pad = 0; pad <= 3; pad += 3) {
                size_t stride = n + pad;
                float *a = rbt_normal_f32(rows * stride, seed, 2 * ni + 1);
                float *b = rbt_normal_f32(rows * stride, seed, 2 * ni + 2);
                for (size_t i = 0; i < rows * stride; i += 5) a[i] *= 1e6f; /* make rounding bite */
                double ref[40], got[40], s[40];
                for (size_t r = 0; r < rows; r++) s[r] = 1.0 / (double) (r + 3) + 1e-9 * (double) r;
                const rb_op *ops[2] = {&rb_op_rows_sqnorm_f32, &rb_op_rows_dot_f32};
                for (int o = 0; o < 2; o++) {
                    rb_rows_reduce_fn rfn =
                        (rb_rows_reduce_fn) ops[o]->variants[ops[o]->count - 1].fn;
                    cr_assert_eq(rfn(a, o ? b : NULL, rows, n, stride, ref), 0);
                    for (size_t v = 0; v < ops[o]->count; v++) {
                        const rb_variant *var = &ops[o]->variants[v];
                        if (!rb_variant_enabled(var)) continue;
                        memset(got, 0, sizeof got);
                        cr_assert_eq(
                            ((rb_rows_reduce_fn) var->fn)(a, o ? b : NULL, rows, n, stride, got),
                            0);
                        cr_assert_eq(memcmp(got, ref, rows * sizeof *got), 0,
                                     "%s %s n=%zu rows=%zu stride=%zu seed=%llu", ops[o]->name,
                                     var->name, n, rows, stride, (unsigned long long) seed);
                    }
                }
                float *y_ref = malloc(rows * stride * sizeof *y_ref),
                      *y = malloc(rows * stride * 4);
                memcpy(y_ref, b, rows * stride * sizeof *y);
                rb_rows_scale_f64_f32_ref(a, rows, n, stride, s, y_ref, stride);
                const rb_op *op = &rb_op_rows_scale_f64_f32;
                for (size_t v = 0; v < op->count; v++) {
                    const rb_variant *var = &op->variants[v];
                    if (!rb_variant_enabled(var)) continue;
                    memcpy(y, b, rows * stride * sizeof *y);
                    ((rb_rows_scale_f64_fn) var->fn)(a, rows, n, stride, s, y, stride);
                    cr_assert_eq(memcmp(y, y_ref, rows * stride * sizeof *y), 0,
                                 "scale %s n=%zu rows=%zu seed=%llu", var->name, n, rows,
                                 (unsigned long long) seed);
                    memcpy(y, a, rows * stride * sizeof *y); /* in place */
                    ((rb_rows_scale_f64_fn) var->fn)(y, rows, n, stride, s, y, stride);
                    for (size_t r = 0; r < rows; r++)
                        cr_assert_eq(memcmp(y + r * stride, y_ref + r * stride, n * sizeof *y), 0);
                }
                /* Per-row and per-column fp32 factors (rows_scale_f32, rows_mul_f32). */
                const rb_op *fops[2] = {&rb_op_rows_scale_f32, &rb_op_rows_mul_f32};
                float *f = rbt_normal_f32(n > rows ? n : rows, seed, 77);
                for (int o = 0; o < 2; o++) {
                    memcpy(y_ref, a, rows * stride * sizeof *y);
                    ((rb_rows_scale_fn) fops[o]->variants[fops[o]->count - 1].fn)(y_ref, rows, n,
                                                                                  stride, f);
                    for (size_t v = 0; v < fops[o]->count; v++) {
                        const rb_variant *var = &fops[o]->variants[v];
                        if (!rb_variant_enabled(var)) continue;
                        memcpy(y, a, rows * stride * sizeof *y);
                        ((rb_rows_scale_fn) var->fn)(y, rows, n, stride, f);
                        cr_assert_eq(memcmp(y, y_ref, rows * stride * sizeof *y), 0,
                                     "%s %s n=%zu rows=%zu stride=%zu seed=%llu", fops[o]->name,
                                     var->name, n, rows, stride, (unsigned long long) seed);
                    }
                }
                free(f);
                free(a), free(b), free(y_ref), free(y);
            }
        }
}

Test(rowcodec, dequant_rows_variants_match_the_reference_for_every_group_and_sign) {
    uint64_t seed = rbt_seed();
    static const size_t groups[] = {1, 7, 16, 32, 100, 128, 2000};
    for (size_t ni = 0; ni < COUNT(NS); ni++)
        for (size_t gi = 0; gi < COUNT(groups); gi++)
            for (int asym = 0; asym <= 1; asym++) {
                size_t n = NS[ni], rows = 5, g = groups[gi], ng = (n + g - 1) / g, ld = n + 1;
                uint8_t *codes = random_bytes(rows * n, seed, 3000 + ni * 10 + gi);
                float *sc = rbt_normal_f32(rows * ng, seed, 4000 + ni),
                      *ze = rbt_normal_f32(rows * ng, seed, 5000 + gi);
                float *ref = malloc(rows * ld * sizeof *ref),
                      *got = malloc(rows * ld * sizeof *got);
                for (size_t i = 0; i < rows * ld; i++) ref[i] = got[i] = 7.0f;
                rb_dequant_rows_f32_ref(codes, rows, n, g, asym, sc, asym ? ze : NULL, ref, ld);
                const rb_op *op = &rb_op_dequant_rows_f32;
                for (size_t v = 0; v < op->count; v++) {
                    const rb_variant *var = &op->variants[v];
                    if (!rb_variant_enabled(var)) continue;
                    ((rb_dequant_rows_fn) var->fn)(codes, rows, n, g, asym, sc, asym ? ze : NULL,
                                                   got, ld);
                    cr_assert_eq(memcmp(got, ref, rows * ld * sizeof *got), 0,
                                 "%s n=%zu group=%zu asym=%d seed=%llu", var->name, n, g, asym,
                                 (unsigned long long) seed);
                }
                free(codes), free(sc), free(ze), free(ref), free(got);
            }
}
