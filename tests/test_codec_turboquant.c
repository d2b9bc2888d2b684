/* turboquant_mse and turboquant_prod through their registry entries: edge inputs, exact code size
 * and bits, determinism, the distortion of the sphere codebook, the unbiased inner product of the
 * QJL stage, the estimator against the decoder, and rejected parameters. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/method.h"
#include "tests/testutil.h"

/* kv: "name=value" pairs, NULL-terminated. Returns the create status; *st is set on success. */
static int make_rc(const char *method, const char *const *kv, size_t dim, uint64_t seed,
                   const rb_method **m, void **st) {
    *m = rb_method_find(method);
    cr_assert_not_null(*m, "%s is registered", method);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, (*m)->params, (*m)->nparams), 0);
    for (size_t i = 0; kv && kv[i]; i += 2)
        cr_assert_eq(rb_params_set(&p, kv[i], kv[i + 1]), 0, "%s=%s", kv[i], kv[i + 1]);
    *st = NULL;
    return (*m)->codec->create(&p, dim, seed, st);
}

static void *make(const char *method, const char *const *kv, size_t dim, uint64_t seed,
                  const rb_method **m) {
    void *st;
    int rc = make_rc(method, kv, dim, seed, m, &st);
    cr_assert_eq(rc, 0, "create %s: %s", method, rb_error_detail());
    return st;
}

/* Every configuration the tests sweep: method and its parameters. */
typedef struct variant {
    const char *method;
    const char *kv[8];
} variant;

static const variant variants[] = {
    {"turboquant_mse", {"bits", "1", NULL}},
    {"turboquant_mse", {"bits", "3", "rotation", "rht", NULL}},
    {"turboquant_mse", {"bits", "4", "codebook", "gaussian", NULL}},
    {"turboquant_prod", {"bits", "1", NULL}},
    {"turboquant_prod", {"bits", "3", NULL}},
    {"turboquant_prod", {"bits", "2", "mode", "code", "rotation", "rht", NULL}},
    {"turboquant_prod", {"bits", "1", "mode", "code", NULL}},
};
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

static void encode_decode(const rb_method *m, void *st, const float *x, size_t count,
                          uint8_t **codes, float **y) {
    size_t cb = m->codec->code_bytes(st);
    *codes = malloc(count * cb);
    cr_assert_eq(m->codec->encode(st, x, count, *codes), 0, "%s", rb_error_detail());
    if (y) cr_assert_eq(m->codec->decode(st, *codes, count, *y), 0, "%s", rb_error_detail());
}

static double vnmse_of(const float *x, const float *y, size_t d) {
    double num = 0, den = 0;
    for (size_t j = 0; j < d; j++) {
        double e = (double) x[j] - y[j];
        num += e * e;
        den += (double) x[j] * x[j];
    }
    return num / den;
}

/* A zero vector decodes (and scores) to exactly zero; norms of 1e30 and 1e-30 scale out: the
 * relative error is the same as for the unit vector of that direction. */
Test(codec_turboquant, edge_inputs_scale_out_and_zero_stays_zero) {
    size_t d = 64;
    uint64_t seed = rbt_seed();
    float *base = rbt_normal_f32(d, seed, 1);
    float x[4 * 64] = {0};
    for (size_t j = 0; j < d; j++) {
        x[d + j] = base[j];
        x[2 * d + j] = base[j] * 1e30f;
        x[3 * d + j] = base[j] * 1e-30f;
    }
    for (size_t v = 0; v < NVARIANTS; v++) {
        const rb_method *m;
        void *st = make(variants[v].method, variants[v].kv, d, seed, &m);
        float y[4 * 64], ip[4];
        uint8_t *codes;
        float *yp = y;
        encode_decode(m, st, x, 4, &codes, &yp);
        for (size_t j = 0; j < d; j++) cr_assert_eq(y[j], 0.0f, "variant %zu: zero vector", v);
        double e1 = vnmse_of(x + d, y + d, d);
        cr_assert(e1 > 0 && e1 < 3, "variant %zu: vnmse %g (seed %llu)", v, e1,
                  (unsigned long long) seed);
        for (size_t r = 2; r < 4; r++) {
            double e = vnmse_of(x + r * d, y + r * d, d);
            cr_assert(fabs(e - e1) < 1e-4 * e1, "variant %zu row %zu: vnmse %g vs %g (seed %llu)",
                      v, r, e, e1, (unsigned long long) seed);
        }
        if (m->codec->inner_product) {
            cr_assert_eq(m->codec->inner_product(st, codes, 4, base, 1, ip), 0);
            cr_assert_eq(ip[0], 0.0f);
            for (size_t r = 1; r < 4; r++) cr_assert(isfinite(ip[r]), "variant %zu", v);
        }
        free(codes);
        m->codec->destroy(st);
    }
    free(base);
}

Test(codec_turboquant, code_size_and_bits_are_exact) {
    const rb_method *m;
    /* mse: 100 x 3 bits = 300 bits = 38 bytes, then the fp32 norm. */
    const char *mse3[] = {"bits", "3", NULL};
    void *st = make("turboquant_mse", mse3, 100, 1, &m);
    cr_assert_eq(m->codec->code_bytes(st), 38 + 4);
    cr_assert_float_eq(m->codec->bits(st), 3.0 + 32.0 / 100.0, 1e-12);
    m->codec->destroy(st);
    /* prod paper: 100 x 2 bits (25 bytes) + 100 signs (13 bytes) + fp32 norm and gamma. */
    st = make("turboquant_prod", mse3, 100, 1, &m);
    cr_assert_eq(m->codec->code_bytes(st), 25 + 13 + 8);
    cr_assert_float_eq(m->codec->bits(st), 3.0 + 64.0 / 100.0, 1e-12);
    m->codec->destroy(st);
    /* prod code: gamma is a constant, not stored. */
    const char *code3[] = {"bits", "3", "mode", "code", NULL};
    st = make("turboquant_prod", code3, 100, 1, &m);
    cr_assert_eq(m->codec->code_bytes(st), 25 + 13 + 4);
    cr_assert_float_eq(m->codec->bits(st), 3.0 + 32.0 / 100.0, 1e-12);
    m->codec->destroy(st);
    /* prod at b = 1: pure QJL, no codebook payload, and no gamma (the residual is R u, norm 1). */
    const char *one[] = {"bits", "1", NULL};
    st = make("turboquant_prod", one, 128, 1, &m);
    cr_assert_eq(m->codec->code_bytes(st), 16 + 4);
    cr_assert_float_eq(m->codec->bits(st), 1.25, 1e-12);
    m->codec->destroy(st);
}

/* The released code (codecs.md section 3, code mode) applies its S to the unrotated residual; the
 * codec applies S R^T to the rotated one. At b = 1 the residual is u itself, so the sign bits
 * are sign(S u) whatever the rotation R: equal (up to products within rounding of 0) under none,
 * rht, haar and qr. An S not turned into S R^T, or turned into S R, gives other signs for about
 * half the bits; so does another seed (the control). */
Test(codec_turboquant, code_mode_signs_do_not_depend_on_the_rotation) {
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 100, nb = d / 8;
    float *x = rbt_normal_f32(count * d, seed, 5);
    static const char *const rots[] = {"none", "rht", "haar", "qr"};
    uint8_t *ref = NULL;
    for (size_t r = 0; r <= 4; r++) {
        const char *kv[] = {"bits", "1", "mode", "code", "rotation", rots[r % 4], NULL};
        const rb_method *m;
        void *st = make("turboquant_prod", kv, d, r < 4 ? seed : seed + 1, &m);
        uint8_t *codes;
        encode_decode(m, st, x, count, &codes, NULL);
        size_t cb = m->codec->code_bytes(st), differ = 0;
        cr_assert_eq(cb, nb + 4, "b = 1 code mode: the signs and |x|");
        if (!ref) {
            ref = codes;
            m->codec->destroy(st);
            continue;
        }
        for (size_t i = 0; i < count; i++)
            for (size_t k = 0; k < nb; k++)
                differ += (size_t) __builtin_popcount(codes[i * cb + k] ^ ref[i * cb + k]);
        double frac = (double) differ / (double) (count * d);
        if (r < 4)
            cr_assert(frac < 0.002, "rotation %s: %.4f of the signs differ from none's (seed %llu)",
                      rots[r], frac, (unsigned long long) seed);
        else
            cr_assert(frac > 0.4, "another seed: only %.4f of the signs differ", frac);
        free(codes);
        m->codec->destroy(st);
    }
    free(ref);
    free(x);
}

Test(codec_turboquant, same_seed_same_codes_across_thread_counts) {
    uint64_t seed = rbt_seed();
    size_t d = 256, count = 301;
    float *x = rbt_normal_f32(count * d, seed, 2);
    for (size_t v = 0; v < NVARIANTS; v++) {
        uint8_t *codes[3];
        float *y[3];
        size_t cb = 0;
        for (int t = 0; t < 3; t++) {
            rb_threads_set(t == 1 ? 2 : 1);
            const rb_method *m;
            void *st = make(variants[v].method, variants[v].kv, d, seed, &m);
            cb = m->codec->code_bytes(st);
            y[t] = malloc(count * d * sizeof *y[t]);
            encode_decode(m, st, x, count, &codes[t], &y[t]);
            m->codec->destroy(st);
        }
        rb_threads_set(1);
        for (int t = 1; t < 3; t++) {
            cr_assert_eq(memcmp(codes[0], codes[t], count * cb), 0, "variant %zu run %d", v, t);
            cr_assert_eq(memcmp(y[0], y[t], count * d * sizeof(float)), 0, "variant %zu", v);
        }
        /* A different seed draws a different rotation (and QJL matrix). */
        const rb_method *m;
        void *st = make(variants[v].method, variants[v].kv, d, seed + 1, &m);
        uint8_t *other;
        encode_decode(m, st, x, count, &other, NULL);
        cr_assert_neq(memcmp(codes[0], other, count * cb), 0, "variant %zu: seed ignored", v);
        m->codec->destroy(st);
        free(other);
        for (int t = 0; t < 3; t++) {
            free(codes[t]);
            free(y[t]);
        }
    }
    free(x);
}

/* Alg. 1's distortion: for unit vectors and a Haar rotation, every rotated coordinate has the
 * sphere marginal, so the vNMSE is d times the codebook's own MSE (the Lloyd solver's number). The
 * tolerance is 4 standard errors of the sample mean. */
Test(codec_turboquant, mse_distortion_is_the_codebook_mse) {
    uint64_t seed = rbt_seed();
    size_t d = 64, count = 3000;
    float *x = rbt_normal_f32(count * d, seed, 3);
    for (int b = 1; b <= 4; b++) {
        char bits[4];
        snprintf(bits, sizeof bits, "%d", b);
        const char *kv[] = {"bits", bits, NULL};
        const rb_method *m;
        void *st = make("turboquant_mse", kv, d, seed + (uint64_t) b, &m);
        float *y = malloc(count * d * sizeof *y);
        uint8_t *codes;
        encode_decode(m, st, x, count, &codes, &y);
        double s = 0, s2 = 0;
        for (size_t i = 0; i < count; i++) {
            double e = vnmse_of(x + i * d, y + i * d, d);
            s += e;
            s2 += e * e;
        }
        double mean = s / (double) count;
        double se = sqrt((s2 / (double) count - mean * mean) / (double) (count - 1));
        const rb_lloyd_max *lm;
        cr_assert_eq(rb_lloyd_codebook(RB_LLOYD_SPHERE, (int) d, b, &lm), 0);
        /* 6 standard errors: at 4, over four bit widths, it failed about once in 3000 runs */
        cr_assert(fabs(mean - lm->d_mse) < 6 * se, "b=%d: vnmse %g vs %g (se %g, seed %llu)", b,
                  mean, lm->d_mse, se, (unsigned long long) seed);
        /* Thm 3 and Thm 1 bracket it. */
        cr_assert(mean >= pow(4, -b) && mean <= 2.72 * pow(4, -b), "b=%d: %g", b, mean);
        free(codes);
        free(y);
        m->codec->destroy(st);
    }
    free(x);
}

/* The estimator of Alg. 2 is the inner product with the paper's reconstruction. */
Test(codec_turboquant, estimator_equals_inner_product_with_the_reconstruction) {
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 50, nq = 7;
    float *x = rbt_normal_f32(count * d, seed, 4);
    float *q = rbt_normal_f32(nq * d, seed, 5);
    for (size_t v = 0; v < NVARIANTS; v++) {
        const rb_method *m;
        void *st = make(variants[v].method, variants[v].kv, d, seed, &m);
        if (!m->codec->inner_product) {
            m->codec->destroy(st);
            continue;
        }
        float *y = malloc(count * d * sizeof *y), *ip = malloc(count * nq * sizeof *ip);
        uint8_t *codes;
        encode_decode(m, st, x, count, &codes, &y);
        cr_assert_eq(m->codec->inner_product(st, codes, count, q, nq, ip), 0, "%s",
                     rb_error_detail());
        for (size_t i = 0; i < count; i++)
            for (size_t j = 0; j < nq; j++) {
                double dot = 0, scale = 0;
                for (size_t k = 0; k < d; k++) {
                    dot += (double) y[i * d + k] * q[j * d + k];
                    scale += fabs((double) y[i * d + k] * q[j * d + k]);
                }
                cr_assert(fabs(ip[i * nq + j] - dot) < 1e-4 * scale,
                          "variant %zu (%zu, %zu): %g vs %g (seed %llu)", v, i, j, ip[i * nq + j],
                          dot, (unsigned long long) seed);
            }
        free(codes);
        free(y);
        free(ip);
        m->codec->destroy(st);
    }
    free(x);
    free(q);
}

/* Thm 2: for one fixed (x, q), the paper-mode estimate is unbiased over the draw of the rotation
 * and S; TurboQuant_mse at b = 1 is not (it shrinks by about 1 - D_mse). 1000 fresh instances,
 * 4 standard errors. */
Test(codec_turboquant, prod_is_unbiased_for_a_fixed_pair) {
    uint64_t seed = rbt_seed();
    size_t d = 32, n = 1000;
    float *x = rbt_normal_f32(d, seed, 6), *q = rbt_normal_f32(d, seed, 7);
    for (size_t j = 0; j < d; j++) q[j] = 0.5f * q[j] + 0.5f * x[j]; /* correlated: <q, x> != 0 */
    double truth = 0;
    for (size_t j = 0; j < d; j++) truth += (double) x[j] * q[j];
    /* b = 1 is pure QJL (any scale error is a bias of the same size); at b = 2 the QJL stage
     * removes the codebook stage's shrinkage; TurboQuant_mse at b = 1 keeps it. */
    const variant cases[] = {{"turboquant_prod", {"bits", "1", NULL}},
                             {"turboquant_prod", {"bits", "2", NULL}},
                             {"turboquant_mse", {"bits", "1", NULL}}};
    for (size_t c = 0; c < 3; c++) {
        double s = 0, s2 = 0;
        for (size_t t = 0; t < n; t++) {
            const rb_method *m;
            void *st = make(cases[c].method, cases[c].kv, d, rb_seed_derive(seed, 99 + c, t), &m);
            float y[32], est = 0;
            uint8_t *codes;
            float *yp = y;
            encode_decode(m, st, x, 1, &codes, &yp);
            if (m->codec->inner_product)
                cr_assert_eq(m->codec->inner_product(st, codes, 1, q, 1, &est), 0);
            else
                for (size_t j = 0; j < d; j++) est += y[j] * q[j];
            s += est;
            s2 += (double) est * est;
            free(codes);
            m->codec->destroy(st);
        }
        double mean = s / (double) n, se = sqrt((s2 / (double) n - mean * mean) / (double) (n - 1));
        if (c < 2)
            cr_assert(fabs(mean - truth) < 6 * se, /* at 4: about 1e-4 of the runs */
                      "prod case %zu: mean %g vs %g (se %g, seed %llu)", c, mean, truth, se,
                      (unsigned long long) seed);
        else
            cr_assert(fabs(mean - truth) > 4 * se && fabs(mean) < fabs(truth),
                      "mse b=1 should shrink: mean %g vs %g (se %g, seed %llu)", mean, truth, se,
                      (unsigned long long) seed);
    }
    free(x);
    free(q);
}

Test(codec_turboquant, bad_parameters_and_inputs_are_rejected) {
    const rb_method *mse = rb_method_find("turboquant_mse"),
                    *prod = rb_method_find("turboquant_prod");
    cr_assert_not_null(mse);
    cr_assert_not_null(prod);
    rb_params p;
    rb_params_init(&p, mse->params, mse->nparams);
    cr_assert_neq(rb_params_set(&p, "bits", "0"), 0);
    cr_assert_neq(rb_params_set(&p, "bits", "9"), 0);
    cr_assert_neq(rb_params_set(&p, "codebook", "uniform"), 0);
    cr_assert_neq(rb_params_set(&p, "rotation", "dct"), 0);
    rb_params_init(&p, prod->params, prod->nparams);
    cr_assert_neq(rb_params_set(&p, "bits", "10"), 0);
    cr_assert_eq(rb_params_set(&p, "bits", "9"), 0, "prod takes an 8-bit codebook stage");
    cr_assert_neq(rb_params_set(&p, "mode", "fast"), 0);

    void *st;
    const rb_method *m;
    cr_assert_eq(make_rc("turboquant_mse", NULL, 1, 1, &m, &st), RB_ESIZE);
    cr_assert_null(st);
    cr_assert_eq(make_rc("turboquant_prod", NULL, 0, 1, &m, &st), RB_ESIZE);
    const char *rht[] = {"rotation", "rht", NULL};
    cr_assert_eq(make_rc("turboquant_prod", rht, 100, 1, &m, &st), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "96") && strstr(rb_error_detail(), "104"), "%s",
              rb_error_detail());

    /* Non-finite elements and norms beyond fp32 are errors, not NaN codes. */
    st = make("turboquant_prod", NULL, 4, 1, &m);
    uint8_t codes[64];
    float nan4[4] = {0, NAN, 0, 0}, big[4] = {3e38f, 3e38f, 3e38f, 0};
    cr_assert_eq(m->codec->encode(st, nan4, 1, codes), RB_ENUMERIC);
    cr_assert_eq(m->codec->encode(st, big, 1, codes), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "fp32"), "%s", rb_error_detail());
    m->codec->destroy(st);
}
