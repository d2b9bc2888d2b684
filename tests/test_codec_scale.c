/* Every codec against a power-of-two scale of its input: x * 2^k must decode to exactly
 * x_hat * 2^k, bit for bit, for k far into the tiny and the huge range (issue 4's "very large
 * and tiny norms"), as long as the stored side information holds the scaled norm or scale (fp16
 * side values only within fp16's range). A scale by 2^k is exact in fp32, and every operation of
 * an encode and decode (rotations, norms, codebook search on normalized values, stored scales)
 * commutes with it, so any difference is a step that rounds, flushes or saturates by magnitude:
 * normalizing after a rotation that underflowed, a norm squared in fp32, a fixed epsilon. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods/method.h"
#include "tests/testutil.h"

/* Scales tried: the side information in fp32 holds norms from 2^-126 to 2^128, fp16 only from
 * 2^-14 to 65504 (the rows' norms are about sqrt(d), up to 2^4). */
static const int wide[] = {-100, -37, 29, 100};
static const int narrow[] = {-6, 5};

static const struct {
    const char *method, *params;
    size_t dim;
    int fp16_side;
} cases[] = {
    {"turboquant_mse", "bits=2,rotation=rht", 128, 0},
    {"turboquant_mse", "bits=4,rotation=haar", 48, 0},
    {"turboquant_prod", "bits=3,rotation=rht,mode=paper", 64, 0},
    {"turboquant_prod", "bits=2,rotation=haar,mode=code", 48, 0},
    {"eden", "bits=2,rotation=rht,scale=unbiased", 48, 0},
    {"eden", "bits=2.5,rotation=haar,scale=biased", 40, 0},
    {"eden", "bits=3,rotation=rht,scale=biased", 100, 0}, /* padded to 104 */
    {"drive", "rotation=rht", 64, 0},
    {"qjl", "bits=2,norm_bits=32,projection=gaussian", 32, 0},
    {"qjl", "bits=1,norm_bits=32,projection=orthogonal,rotation=rht", 48, 0},
    {"qjl", "bits=1,norm_bits=16", 32, 1},
    {"rtn", "bits=4", 64, 0},
    {"rtn", "bits=3,rotation=rht,group=16", 64, 0},
    {"rtn", "bits=2,rotation=haar,clip=0.9", 48, 0},
    {"octopus", "bits=4,rotation=haar", 48, 0},
    {"octopus", "bits=2,rotation=none", 30, 0},
    {"polarquant", "radius=fp32,rotation=haar", 64, 0},
    {"polarquant", "rotation=none", 32, 1},
};

Test(codec_scale, power_of_two_scales_decode_exactly_scaled) {
    uint64_t seed = rbt_seed();
    size_t count = 24;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const rb_method *m = rb_method_find(cases[c].method);
        cr_assert_not_null(m, "%s", cases[c].method);
        rb_params p;
        cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
        cr_assert_eq(rb_params_set_spec(&p, cases[c].params), 0, "%s", rb_error_detail());
        size_t d = cases[c].dim;
        void *st = NULL;
        cr_assert_eq(m->codec->create(&p, d, seed, &st), 0, "%s %s: %s", cases[c].method,
                     cases[c].params, rb_error_detail());
        size_t cb = m->codec->code_bytes(st), n = count * d;
        float *x = rbt_normal_f32(n, seed, c), *xs = malloc(n * sizeof *xs),
              *y0 = malloc(n * sizeof *y0), *y = malloc(n * sizeof *y);
        uint8_t *codes = malloc(count * cb);
        cr_assert(xs && y0 && y && codes);
        cr_assert_eq(m->codec->encode(st, x, count, codes), 0, "%s", rb_error_detail());
        cr_assert_eq(m->codec->decode(st, codes, count, y0), 0, "%s", rb_error_detail());
        const int *ks = cases[c].fp16_side ? narrow : wide;
        size_t nk =
            cases[c].fp16_side ? sizeof narrow / sizeof *narrow : sizeof wide / sizeof *wide;
        for (size_t t = 0; t < nk; t++) {
            for (size_t i = 0; i < n; i++) xs[i] = ldexpf(x[i], ks[t]);
            cr_assert_eq(m->codec->encode(st, xs, count, codes), 0, "%s %s, 2^%d: %s",
                         cases[c].method, cases[c].params, ks[t], rb_error_detail());
            cr_assert_eq(m->codec->decode(st, codes, count, y), 0, "%s", rb_error_detail());
            for (size_t i = 0; i < n; i++) {
                /* Where the scaled value is subnormal, 2^k * x_hat rounds a second time: both
                 * are then within one subnormal step of the exact product. */
                float want = ldexpf(y0[i], ks[t]);
                int same = fabsf(want) < FLT_MIN ? fabsf(y[i] - want) <= 0x1p-149f
                                                 : memcmp(&y[i], &want, sizeof want) == 0;
                cr_assert(same,
                          "%s %s: x * 2^%d decodes to %a at row %zu, coordinate %zu, not "
                          "2^%d * %a (seed %llu)",
                          cases[c].method, cases[c].params, ks[t], (double) y[i], i / d, i % d,
                          ks[t], (double) y0[i], (unsigned long long) seed);
            }
        }
        m->codec->destroy(st);
        free(x);
        free(xs);
        free(y0);
        free(y);
        free(codes);
    }
}
