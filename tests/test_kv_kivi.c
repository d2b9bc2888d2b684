/* kivi through rb_kv_ops: KIVI's streaming invariants after any prefill and decode steps (whole
 * G-token key groups, keys quantized in steps of R, an R-token fp16 value window), the decode-time
 * key error regression, the fp16 arithmetic on hand-made groups, exact bits, fp16 conversions. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "methods/kivi.h"
#include "methods/method.h"
#include "tests/testutil.h"

static const rb_method *kivi_method(void) {
    const rb_method *m = rb_method_find("kivi");
    cr_assert_not_null(m);
    cr_assert_not_null(m->kv);
    return m;
}

static int make(int bits, size_t G, size_t R, size_t H, size_t D, size_t cap, void **st) {
    const rb_method *m = kivi_method();
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    char b[32];
    snprintf(b, sizeof b, "%d", bits);
    cr_assert_eq(rb_params_set(&p, "bits", b), 0);
    snprintf(b, sizeof b, "%zu", G);
    cr_assert_eq(rb_params_set(&p, "group", b), 0);
    snprintf(b, sizeof b, "%zu", R);
    cr_assert_eq(rb_params_set(&p, "residual", b), 0);
    rb_kv_geom g = {.heads = H, .head_dim = D, .capacity = cap};
    *st = NULL;
    return m->kv->create(&p, &g, 1, st);
}

/* After every step of a prefill of L tokens and single-token decode steps: quantized keys are
 * n - n mod R (so they grow only in steps of R), the value window is min(n, R) fp16 tokens, every
 * unquantized key and value is its input rounded to fp16, and every quantized key group covers
 * exactly G tokens: its smallest reconstruction is the fp16 minimum over those G tokens (code 0
 * decodes to the stored min), which would fail for groups spanning any other token set. */
static void check_stream(size_t L, size_t steps, size_t G, size_t R, uint64_t seed) {
    const rb_method *m = kivi_method();
    size_t H = 2, D = 64, HD = H * D, N = L + steps;
    float *K = rbt_normal_f32(N * HD, seed, 1), *V = rbt_normal_f32(N * HD, seed, 2);
    float *Kh = malloc(N * HD * sizeof *Kh), *Vh = malloc(N * HD * sizeof *Vh);
    void *st;
    cr_assert_eq(make(2, G, R, H, D, N, &st), 0, "%s", rb_error_detail());
    size_t prev_kq = 0;
    for (size_t step = 0; step <= steps; step++) {
        size_t n0 = step ? L + step - 1 : 0, add = step ? 1 : L;
        cr_assert_eq(m->kv->append(st, K + n0 * HD, V + n0 * HD, add), 0, "%s", rb_error_detail());
        size_t n = n0 + add;
        rb_kivi_info in;
        rb_kivi_info_get(st, &in);
        cr_assert_eq(in.tokens, n);
        cr_assert_eq(m->kv->tokens(st), n);
        cr_assert_eq(in.keys_quantized, n - n % R, "L %zu step %zu: %zu keys quantized", L, step,
                     in.keys_quantized);
        cr_assert(step == 0 || in.keys_quantized == prev_kq || in.keys_quantized == prev_kq + R,
                  "keys quantized jumped from %zu to %zu (R = %zu)", prev_kq, in.keys_quantized, R);
        prev_kq = in.keys_quantized;
        cr_assert_eq(in.values_fp16, n < R ? n : R, "L %zu step %zu: window %zu", L, step,
                     in.values_fp16);
        /* Reading the whole cache every step is quadratic: check a few steps fully. */
        if (step % 17 && step != steps) continue;
        cr_assert_eq(m->kv->read(st, Kh, Vh), 0);
        for (size_t t = in.keys_quantized; t < n; t++)
            for (size_t e = 0; e < HD; e++)
                cr_assert_eq(Kh[t * HD + e], rb_f16_round(K[t * HD + e]), "fp16 key t %zu", t);
        for (size_t t = in.values_quantized; t < n; t++)
            for (size_t e = 0; e < HD; e++)
                cr_assert_eq(Vh[t * HD + e], rb_f16_round(V[t * HD + e]), "fp16 value t %zu", t);
        for (size_t g0 = 0; g0 < in.keys_quantized; g0 += G)
            for (size_t e = 0; e < HD; e++) {
                float lo = INFINITY, lo_hat = INFINITY;
                for (size_t t = g0; t < g0 + G; t++) {
                    lo = fminf(lo, rb_f16_round(K[t * HD + e]));
                    lo_hat = fminf(lo_hat, Kh[t * HD + e]);
                }
                cr_assert_eq(lo_hat, lo, "seed %llu L %zu: key group at token %zu channel %zu",
                             (unsigned long long) seed, L, g0, e);
            }
    }
    m->kv->destroy(st);
    free(K);
    free(V);
    free(Kh);
    free(Vh);
}

Test(kv_kivi, streaming_invariants_after_any_prefill_and_decode) {
    uint64_t seed = rbt_seed();
    const size_t Ls[] = {1, 31, 32, 33, 63, 64, 65, 100, 128, 129, 250};
    for (size_t i = 0; i < sizeof Ls / sizeof Ls[0]; i++) check_stream(Ls[i], 140, 32, 64, seed);
    check_stream(5, 70, 32, 32, seed); /* the reference example's G = R = 32 */
    check_stream(130, 10, 16, 128, seed);
}

/* The bug of kv_cache.md section 1: quantizing the decode key at every step gives 1-token groups
 * that store the keys exactly. With G = R = 32 the keys quantized during decode must carry
 * INT2 error comparable to the values'. */
Test(kv_kivi, decode_time_keys_are_quantized) {
    uint64_t seed = rbt_seed();
    const rb_method *m = kivi_method();
    size_t H = 2, D = 64, HD = H * D, L = 5, steps = 123, N = L + steps;
    float *K = rbt_normal_f32(N * HD, seed, 1), *V = rbt_normal_f32(N * HD, seed, 2);
    float *Kh = malloc(N * HD * sizeof *Kh), *Vh = malloc(N * HD * sizeof *Vh);
    void *st;
    cr_assert_eq(make(2, 32, 32, H, D, N, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(m->kv->append(st, K, V, L), 0);
    for (size_t t = L; t < N; t++) cr_assert_eq(m->kv->append(st, K + t * HD, V + t * HD, 1), 0);
    cr_assert_eq(m->kv->read(st, Kh, Vh), 0);
    double ek = 0, nk = 0, ev = 0, nv = 0;
    for (size_t t = 0; t < 96; t++) /* keys of tokens 0..95 were all quantized during decode */
        for (size_t e = 0; e < HD; e++) {
            size_t i = t * HD + e;
            ek += ((double) K[i] - Kh[i]) * ((double) K[i] - Kh[i]);
            nk += (double) K[i] * K[i];
            ev += ((double) V[i] - Vh[i]) * ((double) V[i] - Vh[i]);
            nv += (double) V[i] * V[i];
        }
    /* INT2 min-max of Gaussian groups: relative MSE around 0.1 either way. */
    cr_assert(ek / nk > 0.03 && ek / nk < 0.3, "seed %llu: decode key rel. MSE %g",
              (unsigned long long) seed, ek / nk);
    cr_assert(ev / nv > 0.03 && ev / nv < 0.3, "seed %llu: value rel. MSE %g",
              (unsigned long long) seed, ev / nv);
    m->kv->destroy(st);
    free(K);
    free(V);
    free(Kh);
    free(Vh);
}

/* One head of 4 channels, G = R = 4, INT2: the first value row is quantized when the fifth token
 * arrives. Rows with range 3 have scale exactly 1, so the codes are x - mn rounded half to even;
 * a constant row decodes to its min. */
Test(kv_kivi, hand_made_value_groups) {
    const rb_method *m = kivi_method();
    const float rows[][4] = {{1, 2, 3, 4}, {0, 0.5f, 2.5f, 3}, {7, 7, 7, 7}, {-3, -2.5f, -1.5f, 0}};
    const float want[][4] = {{1, 2, 3, 4}, {0, 0, 2, 3}, {7, 7, 7, 7}, {-3, -3, -1, 0}};
    for (size_t r = 0; r < 4; r++) {
        void *st;
        cr_assert_eq(make(2, 4, 4, 1, 4, 8, &st), 0, "%s", rb_error_detail());
        float K[5 * 4] = {0}, V[5 * 4] = {0}, Kh[5 * 4], Vh[5 * 4];
        memcpy(V, rows[r], sizeof rows[r]);
        for (size_t t = 1; t < 5; t++) K[t * 4] = V[t * 4] = (float) t;
        cr_assert_eq(m->kv->append(st, K, V, 5), 0);
        cr_assert_eq(m->kv->read(st, Kh, Vh), 0);
        for (size_t c = 0; c < 4; c++)
            cr_assert_eq(Vh[c], want[r][c], "row %zu channel %zu: %g, want %g", r, c, Vh[c],
                         want[r][c]);
        /* Keys 0..3 form one block; channel 0 holds 0, 1, 2, 3 over the tokens: exact. */
        for (size_t t = 0; t < 4; t++) cr_assert_eq(Kh[t * 4], (float) t);
        m->kv->destroy(st);
    }
}

/* Bits with fp16 scales and mins: KIVI-2 at G = 32 is 2 + 32 / 32 = 3 bits per quantized element;
 * after 1024 tokens at R = 128 the keys are all quantized and the values carry a 128-token fp16
 * window: K 3, V (896 * 3 + 128 * 16) / 1024 = 4.625, together 3.8125. */
Test(kv_kivi, bits_are_exact) {
    const rb_method *m = kivi_method();
    size_t H = 2, D = 128, HD = H * D, N = 1024;
    float *K = rbt_normal_f32(N * HD, 5, 1), *V = rbt_normal_f32(N * HD, 5, 2);
    void *st;
    cr_assert_eq(make(2, 32, 128, H, D, N, &st), 0);
    cr_assert_eq(m->kv->append(st, K, V, 1000), 0);
    for (size_t t = 1000; t < N; t++) cr_assert_eq(m->kv->append(st, K + t * HD, V + t * HD, 1), 0);
    cr_assert_float_eq(m->kv->bits(st), 3.8125, 1e-12, "bits %.17g", m->kv->bits(st));
    m->kv->destroy(st);
    /* 4 bits: 8 codes per int32; one token: everything fp16. */
    cr_assert_eq(make(4, 32, 128, H, D, N, &st), 0);
    cr_assert_eq(m->kv->append(st, K, V, 1), 0);
    cr_assert_float_eq(m->kv->bits(st), 16.0, 1e-12);
    cr_assert_eq(m->kv->append(st, K + HD, V + HD, 127), 0); /* 128: keys quantized, V window */
    cr_assert_float_eq(m->kv->bits(st), (5.0 + 16.0) / 2, 1e-12, "bits %.17g", m->kv->bits(st));
    m->kv->destroy(st);
    free(K);
    free(V);
}

Test(kv_kivi, rejects_bad_geometry) {
    void *st;
    cr_assert_eq(make(2, 32, 100, 1, 64, 10, &st), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "multiple of group"), "%s", rb_error_detail());
    cr_assert_eq(make(2, 32, 128, 1, 48, 10, &st), RB_ESIZE);
    cr_assert_eq(make(2, 32, 128, 1, 64, 4, &st), 0);
    float x[5 * 64] = {0};
    const rb_method *m = kivi_method();
    cr_assert_eq(m->kv->append(st, x, x, 5), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "capacity"), "%s", rb_error_detail());
    m->kv->destroy(st);
}

/* Values the fp16 cache cannot hold are errors naming the place, not Inf / NaN read-backs: an
 * input beyond 65504, and a key group whose max - min overflows fp16 (both ends representable). */
Test(kv_kivi, fp16_overflow_is_an_error_naming_the_place) {
    const rb_method *m = kivi_method();
    size_t H = 2, D = 8, HD = H * D, G = 4, R = 4;
    float *K = rbt_normal_f32(R * HD, rbt_seed(), 3), *V = rbt_normal_f32(R * HD, rbt_seed(), 4);
    void *st;
    cr_assert_eq(make(2, G, R, H, D, R, &st), 0, "%s", rb_error_detail());
    V[2 * HD + 1 * D + 5] = 1e5f; /* token 2, head 1, channel 5 */
    int rc = m->kv->append(st, K, V, R);
    cr_assert_eq(rc, RB_ENUMERIC);
    const char *d = rb_error_detail();
    cr_assert(strstr(d, "token 2") && strstr(d, "head 1") && strstr(d, "channel 5") &&
                  strstr(d, "value") && strstr(d, "fp16"),
              "%s", d);
    cr_assert_eq(m->kv->tokens(st), 0, "a bad input appends none of the call's tokens");
    m->kv->destroy(st);
    V[2 * HD + 1 * D + 5] = 0.5f;
    K[1 * HD + 3] = 40000.0f; /* fits fp16, but a group with -40000 spans 80000 */
    K[3 * HD + 3] = -40000.0f;
    cr_assert_eq(make(2, G, R, H, D, R, &st), 0, "%s", rb_error_detail());
    rc = m->kv->append(st, K, V, R);
    cr_assert_eq(rc, RB_ENUMERIC);
    d = rb_error_detail();
    cr_assert(strstr(d, "key group") && strstr(d, "head 0") && strstr(d, "channel 3") &&
                  strstr(d, "tokens 0..3"),
              "%s", d);
    m->kv->destroy(st);
    /* 0 .. 65504 fits, but the top INT2 code decodes to f16(3 * 21840) = Inf. */
    K[1 * HD + 3] = 65504.0f;
    K[3 * HD + 3] = 0.0f;
    cr_assert_eq(make(2, G, R, H, D, R, &st), 0, "%s", rb_error_detail());
    cr_assert_eq(m->kv->append(st, K, V, R), RB_ENUMERIC);
    d = rb_error_detail();
    cr_assert(strstr(d, "channel 3") && strstr(d, "overflows fp16"), "%s", d);
    /* A failed flush leaves the buffers out of step: later calls are refused, not run. */
    cr_assert_eq(m->kv->append(st, K, V, 1), RB_EINVAL);
    float *Kh = malloc(R * HD * sizeof *Kh), *Vh = malloc(R * HD * sizeof *Vh);
    cr_assert_eq(m->kv->read(st, Kh, Vh), RB_EINVAL);
    free(Kh);
    free(Vh);
    m->kv->destroy(st);
    free(K);
    free(V);
}
