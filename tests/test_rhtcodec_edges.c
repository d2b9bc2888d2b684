/* Adversarial inputs for the row-major AVX-512 encode of the fused RHT + codebook codec, against
 * the reference and against an oracle written from the headers' text alone: norms at the 2^-64
 * pre-scale and FLT_MAX edges, subnormal and zero rows, codebooks whose thresholds sit exactly
 * on values of v (so a 1-ulp change of v or a <= for < moves a code), a bad row at every position
 * of a call, and a row whose fp32 norm shows the order of the norm's sum. (Written by a reviewer
 * who broke the kernel two ways the other tests missed: these catch both.) */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

#define COUNT(a) (sizeof(a) / sizeof(a)[0])

static int have_avx512(void) {
    const rb_op *op = &rb_op_rhtcodec_encode_f32;
    for (size_t v = 0; v < op->count; v++)
        if (!strcmp(op->variants[v].name, "avx512")) return rb_variant_enabled(&op->variants[v]);
    return 0;
}

/* ---- an oracle written from the headers only (vecops.h, rowcodec.h, codebook.h, quant.h) ---- */

static double hdr_sqnorm(const float *x, size_t n) {
    double p[16] = {0}, q[8], r[4], t[2];
    for (size_t j = 0; j < n; j++) {
        double v = (double) x[j];
        p[j % 16] = p[j % 16] + v * v;
    }
    for (int l = 0; l < 8; l++) q[l] = p[l] + p[l + 8];
    for (int l = 0; l < 4; l++) r[l] = q[l] + q[l + 4];
    for (int l = 0; l < 2; l++) t[l] = r[l] + r[l + 2];
    return t[0] + t[1];
}

/* natural-order FWHT, stride 1 first, then * (float) (1 / sqrt(n)) (fwht.c's documented order) */
static void hdr_fwht(float *x, size_t n) {
    for (size_t h = 1; h < n; h *= 2)
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    float sc = (float) (1.0 / sqrt((double) n));
    for (size_t i = 0; i < n; i++) x[i] *= sc;
}

/* One row to its code bytes (payload + norm) at out; -1 for a bad row. v_out (optional) gets v. */
static int hdr_encode_row(const rb_rhtcodec *p, const float *x, uint8_t *out, float *v_out) {
    size_t d = p->d, payload = rb_pack_bytes(d, p->bits);
    double s = sqrt(hdr_sqnorm(x, d));
    if (!(s <= FLT_MAX)) return -1;
    float pre = s < ldexp(1.0, -64) ? ldexpf(1.0f, 64) : 1.0f;
    float inv = s > 0 ? (float) (1.0 / (s * (double) pre)) : 0.0f;
    float v[256];
    for (size_t j = 0; j < d; j++) v[j] = ((x[j] * pre) * inv) * p->d1[j];
    hdr_fwht(v, d);
    if (p->d2) {
        for (size_t j = 0; j < d; j++) v[j] *= p->d2[j];
        hdr_fwht(v, d);
    }
    if (v_out) memcpy(v_out, v, d * sizeof *v);
    memset(out, 0, payload);
    for (size_t j = 0; j < d; j++) {
        unsigned idx = 0;
        for (size_t i = 0; i + 1 < p->cb->k; i++) idx += p->cb->thresholds[i] < v[j];
        for (int b = 0; b < p->bits; b++)
            if (idx >> b & 1) {
                size_t bit = j * (size_t) p->bits + (size_t) b;
                out[bit / 8] |= (uint8_t) (1u << (bit % 8));
            }
    }
    float sf = (float) s;
    memcpy(out + payload, &sf, sizeof sf);
    return 0;
}

/* ---- inputs ---- */

enum { NKINDS = 23 };

/* Row kind `kind` of d elements into x (r: a per-row salt). */
static void fill_row(float *x, size_t d, int kind, uint64_t seed, size_t r) {
    float *g = rbt_normal_f32(d, seed, 9000 + r);
    for (size_t j = 0; j < d; j++) x[j] = 0.0f;
    switch (kind) {
    case 0: /* plain normal */
    case 1:
        memcpy(x, g, d * sizeof *x);
        break;
    case 2: /* norm exactly 2^-64: the fast path's edge */
        x[r % d] = 0x1p-64f;
        break;
    case 3: /* norm one float below 2^-64: the pre-scale */
        x[r % d] = nextafterf(0x1p-64f, 0.0f);
        break;
    case 4: /* every element = 2^-64 / sqrt(d) when that is exact (d = 64, 256), else near */
        for (size_t j = 0; j < d; j++) x[j] = (j % 2 ? -1.0f : 1.0f) * 0x1p-64f / sqrtf((float) d);
        break;
    case 5: /* all subnormal, random */
        for (size_t j = 0; j < d; j++) x[j] = g[j] * 1e-40f;
        break;
    case 6: /* all the smallest subnormal, mixed signs */
        for (size_t j = 0; j < d; j++) x[j] = (g[j] < 0 ? -1.0f : 1.0f) * 0x1p-149f;
        break;
    case 7: /* one FLT_MAX element: norm = FLT_MAX exactly, inv subnormal */
        x[r % d] = -FLT_MAX;
        break;
    case 8: /* FLT_MAX and one huge partner whose square vanishes against FLT_MAX^2 */
        x[0] = FLT_MAX;
        x[d - 1] = 0x1p100f;
        break;
    case 9: /* every element near FLT_MAX / sqrt(d): norm just under FLT_MAX */
        for (size_t j = 0; j < d; j++)
            x[j] = (g[j] < 0 ? -1.0f : 1.0f) * (float) (FLT_MAX / sqrt((double) d) * 0.99999);
        break;
    case 10: /* a single huge element with tiny others */
        for (size_t j = 0; j < d; j++) x[j] = g[j] * 1e-30f;
        x[(r * 7) % d] = 1e30f;
        break;
    case 11: /* a single element with subnormal others */
        for (size_t j = 0; j < d; j++) x[j] = g[j] * 1e-42f;
        x[(r * 5) % d] = 1.0f;
        break;
    case 12: /* zero row */
        break;
    case 13: /* negative zero row */
        for (size_t j = 0; j < d; j++) x[j] = -0.0f;
        break;
    case 14: /* one subnormal among zeros */
        x[r % d] = -0x1p-140f;
        break;
    case 15: /* norm between FLT_MIN and 2^-64: pre-scaled though 1/|x| fits fp32 */
        for (size_t j = 0; j < d; j++) x[j] = g[j] * 1e-30f;
        break;
    case 16: /* norm just above 2^-64 */
        x[r % d] = nextafterf(0x1p-64f, 1.0f);
        break;
    case 17: /* constant row: v is one spike, the rest exact zeros */
        for (size_t j = 0; j < d; j++) x[j] = 1.0f;
        break;
    case 18: /* a basis vector: |v_j| = 1 / sqrt(d) in every element */
        x[(r * 3) % d] = 3.0f;
        break;
    case 19: /* large dynamic range */
        for (size_t j = 0; j < d; j++) x[j] = g[j] * ldexpf(1.0f, (int) (j % 60) - 30);
        break;
    case 20: /* norm 2^64 region: 1 / |x| exactly a power of two */
        x[r % d] = 0x1p64f;
        x[(r + 1) % d] = 0x1p40f;
        break;
    case 22: /* |x|^2 = (2^24 + 1)^2 + 1/4 in lanes16 order, (2^24 + 1)^2 in j order (the 1/64s
              * vanish against 2^48 there): fp32 norms 2^24 + 2 and 2^24 (a tie, to even) */
        x[0] = x[1] = x[2] = x[3] = 0x1p23f;
        x[4] = x[5] = 0x1p12f;
        x[6] = 1.0f;
        for (size_t j = 8; j < 16; j++) x[j] = x[j + 16] = 0.125f;
        break;
    default: /* integers: many exact ties in the butterflies */
        for (size_t j = 0; j < d; j++) x[j] = (float) ((int) (g[j] * 3));
        break;
    }
    free(g);
}

/* Codebooks: mode 0 random normal / sqrt(d); 1: thresholds exactly on v values of the inputs
 * (duplicated centroids at v and nextdown(v), so a 1-ulp change of v either way moves a code);
 * 2: all centroids equal (every threshold the same); 3: exactly representable midpoints on a
 * 1/16 grid (the integer rows' v land on them). */
static void make_codebook(rb_codebook *cb, size_t k, int mode, const float *vals, size_t nvals,
                          size_t d, uint64_t seed) {
    float c[256];
    if (mode == 0 || (mode == 1 && nvals == 0)) {
        float *g = rbt_normal_f32(k, seed, 777 + k);
        for (size_t i = 0; i < k; i++) c[i] = g[i] / sqrtf((float) d);
        free(g);
    } else if (mode == 1) {
        /* groups (nextdown(v), v, v): thresholds nextdown(v) and v exactly; k = 2: (v, v) */
        size_t m = k / 3 ? k / 3 : 1, i = 0;
        for (size_t t = 0; t < m && i < k; t++) {
            float v = vals[(t * 2 + 1) * nvals / (2 * m)];
            if (k > 2) c[i++] = nextafterf(v, -INFINITY);
            if (i < k) c[i++] = v;
            if (i < k) c[i++] = v;
        }
        while (i < k) c[i] = c[i - 1], i++;
    } else if (mode == 2) {
        for (size_t i = 0; i < k; i++) c[i] = 0.0f;
    } else {
        for (size_t i = 0; i < k; i++) c[i] = ((float) i - (float) k / 2) / 16.0f;
    }
    for (size_t i = 1; i < k; i++) /* sort */
        for (size_t j = i; j > 0 && c[j - 1] > c[j]; j--) {
            float t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
    cr_assert_eq(rb_codebook_init(cb, c, k), RB_OK, "codebook: %s", rb_error_detail());
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

typedef struct cfg {
    size_t d, k, rows, ldx, ldc, xoff, coff;
    int bits, blocks, cbmode;
} cfg;

static long n_cases;

static void run_case(const cfg *c, uint64_t seed) {
    size_t d = c->d;
    float *d1 = malloc(d * sizeof *d1), *d2 = malloc(d * sizeof *d2);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, d, d1);
    rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, d, d2);
    rb_codebook cb;
    rb_rhtcodec p = {d, d1, c->blocks == 2 ? d2 : NULL, &cb, c->bits, "adv"};
    size_t xlen = c->rows * c->ldx + d + c->xoff;
    float *xb = calloc(xlen, sizeof *xb), *x = xb + c->xoff;
    for (size_t r = 0; r < c->rows; r++)
        fill_row(x + r * c->ldx, d, (int) ((r + seed) % NKINDS), seed, r);
    /* fill the gaps between rows with NaN: a kernel reading past d would trip */
    for (size_t r = 0; r + 1 < c->rows; r++)
        for (size_t j = d; j < c->ldx; j++) x[r * c->ldx + j] = NAN;
    /* v values of every row for the threshold codebook (first a provisional codebook) */
    make_codebook(&cb, c->k, 0, NULL, 0, d, seed);
    float *vals = malloc(c->rows * d * sizeof *vals);
    size_t nv = 0;
    uint8_t tmp[1100];
    for (size_t r = 0; r < c->rows; r++)
        if (!hdr_encode_row(&p, x + r * c->ldx, tmp, vals + nv)) nv += d;
    qsort(vals, nv, sizeof *vals, cmp_f);
    make_codebook(&cb, c->k, c->cbmode, vals, nv, d, seed);
    free(vals);

    size_t rowb = rb_rhtcodec_row_bytes(&p), clen = c->rows * c->ldc + 64 + c->coff;
    uint8_t *want = malloc(clen), *got = malloc(clen), *hdr = malloc(clen);
    memset(want, 0xA5, clen);
    memset(got, 0xA5, clen);
    memset(hdr, 0xA5, clen);
    void *scr = malloc(rb_rhtcodec_scratch_bytes(d) + 1);
    int rw = rb_rhtcodec_encode_f32_ref(&p, x, c->rows, c->ldx, want + c->coff, c->ldc, 0, scr);
    int rg = rb_rhtcodec_encode_rows_f32_avx512(&p, x, c->rows, c->ldx, got + c->coff, c->ldc, 0,
                                                (char *) scr + 1);
    for (size_t r = 0; r < c->rows; r++) {
        int bad = hdr_encode_row(&p, x + r * c->ldx, hdr + c->coff + r * c->ldc, NULL);
        cr_assert_eq(bad, 0, "no bad rows expected");
    }
    char where[256];
    snprintf(where, sizeof where,
             "d=%zu bits=%d k=%zu blocks=%d rows=%zu ldx=%zu ldc=%zu (row %zu) xoff=%zu coff=%zu "
             "cb=%d seed=%llu",
             d, c->bits, c->k, c->blocks, c->rows, c->ldx, c->ldc, rowb, c->xoff, c->coff,
             c->cbmode, (unsigned long long) seed);
    cr_assert_eq(rw, RB_OK, "ref: %s (%s)", rb_error_detail(), where);
    cr_assert_eq(rg, RB_OK, "rows kernel: %s (%s)", rb_error_detail(), where);
    for (size_t i = 0; i < clen; i++) {
        size_t o = i < c->coff ? 0 : i - c->coff;
        cr_assert(want[i] == got[i],
                  "kernel vs ref: byte %zu (row %zu, offset %zu) %02x != %02x; %s", i, o / c->ldc,
                  o % c->ldc, got[i], want[i], where);
        cr_assert(want[i] == hdr[i],
                  "ref vs header oracle: byte %zu (row %zu, offset %zu) %02x != %02x; %s", i,
                  o / c->ldc, o % c->ldc, want[i], hdr[i], where);
    }
    n_cases++;
    free(xb), free(want), free(got), free(hdr), free(scr), free(d1), free(d2);
}

Test(rhtcodec_edges, rows_encode_adversarial, .timeout = 600) {
    if (!have_avx512()) cr_skip_test("no AVX-512");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {32, 64, 128, 256};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int bits = 1; bits <= 4; bits++)
            for (int blocks = 1; blocks <= 2; blocks++)
                for (int cbmode = 0; cbmode < 4; cbmode++) {
                    size_t ks[] = {1, 2, ((size_t) 1 << bits) - 1, (size_t) 1 << bits};
                    for (size_t ki = 0; ki < COUNT(ks); ki++)
                        for (size_t rows = 1; rows <= 40; rows += (rows < 20 ? 1 : 7)) {
                            size_t d = ds[di], rb = (d * (size_t) bits + 7) / 8 + 4;
                            cfg c = {d,
                                     ks[ki],
                                     rows,
                                     d + (rows % 4 == 1 ? 0 : rows % 7),
                                     rb + (rows % 3) * 5,
                                     rows % 2,
                                     (rows / 2) % 3,
                                     bits,
                                     blocks,
                                     cbmode};
                            run_case(&c, seed + rows * 131 + ki);
                        }
                }
    cr_assert_gt(n_cases, 0);
}

/* A bad row at each position of an 18-row call: the rows before written (same bytes as the
 * reference), the rest untouched, the error names row0 + r. Kinds: NaN, +Inf, -Inf, norm just
 * above FLT_MAX. */
Test(rhtcodec_edges, rows_encode_bad_row_each_position, .timeout = 120) {
    if (!have_avx512()) cr_skip_test("no AVX-512");
    uint64_t seed = rbt_seed();
    static const size_t ds[] = {32, 128, 256};
    for (size_t di = 0; di < COUNT(ds); di++)
        for (int kind = 0; kind < 4; kind++)
            for (size_t pos = 0; pos < 18; pos++) {
                size_t d = ds[di], rows = 18, ldx = d + 3, row0 = 1000 + pos;
                float *d1 = malloc(d * sizeof *d1), *d2 = malloc(d * sizeof *d2);
                rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, 0, d, d1);
                rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D2, 0, d, d2);
                rb_codebook cb;
                make_codebook(&cb, 8, 0, NULL, 0, d, seed);
                rb_rhtcodec p = {d, d1, kind % 2 ? d2 : NULL, &cb, 3, "adv"};
                size_t ldc = rb_rhtcodec_row_bytes(&p) + 2, clen = rows * ldc + 8;
                float *x = calloc(rows * ldx, sizeof *x);
                for (size_t r = 0; r < rows; r++)
                    fill_row(x + r * ldx, d, (int) ((r * 5 + pos) % NKINDS), seed, r);
                float *b = x + pos * ldx;
                if (kind == 0) b[pos % d] = NAN;
                if (kind == 1) b[d - 1] = INFINITY;
                if (kind == 2) b[0] = -INFINITY;
                if (kind == 3) { /* |x| = FLT_MAX * (1 + 2^-40) in double: > FLT_MAX */
                    memset(b, 0, d * sizeof *b);
                    b[0] = FLT_MAX;
                    b[1] = FLT_MAX * 0x1p-20f;
                }
                uint8_t *want = malloc(clen), *got = malloc(clen);
                memset(want, 0x3C, clen);
                memset(got, 0x3C, clen);
                void *scr = malloc(rb_rhtcodec_scratch_bytes(d));
                int rw = rb_rhtcodec_encode_f32_ref(&p, x, rows, ldx, want, ldc, row0, scr);
                char mw[256], mg[256];
                snprintf(mw, sizeof mw, "%s", rb_error_detail());
                rb_error_clear();
                int rg = rb_rhtcodec_encode_rows_f32_avx512(&p, x, rows, ldx, got, ldc, row0, scr);
                snprintf(mg, sizeof mg, "%s", rb_error_detail());
                char name[64];
                snprintf(name, sizeof name, "vector %zu ", row0 + pos);
                cr_assert_eq(rw, RB_ENUMERIC, "ref rc %d d=%zu kind=%d pos=%zu", rw, d, kind, pos);
                cr_assert_eq(rg, RB_ENUMERIC, "kernel rc %d d=%zu kind=%d pos=%zu", rg, d, kind,
                             pos);
                cr_assert_str_eq(mg, mw, "messages d=%zu kind=%d pos=%zu", d, kind, pos);
                cr_assert(strstr(mg, name) && strstr(mg, "adv:"), "'%s' should name '%s'", mg,
                          name);
                cr_assert(strstr(mg, kind == 3 ? "beyond the fp32 range" : "NaN or infinite"),
                          "'%s' kind %d", mg, kind);
                cr_assert_eq(memcmp(got, want, clen), 0, "bytes d=%zu kind=%d pos=%zu seed=%llu", d,
                             kind, pos, (unsigned long long) seed);
                for (size_t i = pos * ldc; i < clen; i++)
                    cr_assert_eq(got[i], 0x3C, "byte %zu past the bad row written (pos %zu)", i,
                                 pos);
                free(x), free(want), free(got), free(scr), free(d1), free(d2);
            }
}

/* The order of the norm is observable: one row (kind 22) whose fp32 norm differs between
 * rb_lanes16_sum's order and one sequential sum. A device kernel or emulator that summed in j
 * order would give 2^24 instead of 2^24 + 2. */
Test(rhtcodec_edges, lanes16_order_changes_the_fp32_norm) {
    float x[32];
    fill_row(x, 32, 22, 1, 0);
    double seq = 0, lanes;
    for (int j = 0; j < 32; j++) seq += (double) x[j] * x[j];
    rb_rows_sqnorm_f32_ref(x, NULL, 1, 32, 32, &lanes);
    cr_assert_eq((float) sqrt(seq), 16777216.0f, "sequential norm %.17g", sqrt(seq));
    cr_assert_eq((float) sqrt(lanes), 16777218.0f, "lanes16 norm %.17g", sqrt(lanes));
    double fast;
    rb_rows_sqnorm_f32(x, 1, 32, 32, &fast);
    cr_assert_eq(fast, lanes, "dispatched %s", rb_kernel_last(&rb_op_rows_sqnorm_f32));
}
