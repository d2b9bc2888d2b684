/* The eden and drive codecs through their registry entries: the per-vector scale identities,
 * unbiasedness over rotations, DRIVE = EDEN at b = 1, exact code sizes (padding included), edge
 * inputs, scale equivariance, determinism across seeds and thread counts, and bad parameters. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/method.h"
#include "tests/testutil.h"

static void *make(const char *name, const char *bits, const char *rotation, const char *scale,
                  size_t dim, uint64_t seed) {
    const rb_method *m = rb_method_find(name);
    cr_assert_not_null(m);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    if (bits) cr_assert_eq(rb_params_set(&p, "bits", bits), 0);
    cr_assert_eq(rb_params_set(&p, "rotation", rotation), 0);
    cr_assert_eq(rb_params_set(&p, "scale", scale), 0);
    void *st = NULL;
    int rc = m->codec->create(&p, dim, seed, &st);
    cr_assert_eq(rc, 0, "%s create: %s", name, rb_error_detail());
    return st;
}

static const rb_codec_ops *ops(const char *name) {
    return rb_method_find(name)->codec;
}

static void roundtrip(const char *name, void *st, const float *x, size_t count, uint8_t **codes,
                      float **y, size_t d) {
    const rb_codec_ops *o = ops(name);
    size_t cb = o->code_bytes(st);
    *codes = malloc(count * cb);
    *y = malloc(count * d * sizeof **y);
    cr_assert_eq(o->encode(st, x, count, *codes), 0, "%s", rb_error_detail());
    cr_assert_eq(o->decode(st, *codes, count, *y), 0, "%s", rb_error_detail());
}

static float stored_scale(const uint8_t *code, size_t cb) {
    float s;
    memcpy(&s, code + cb - sizeof s, sizeof s);
    return s;
}

/* The defining identities (codecs.md section 4), per vector, with y = R x recomputed here from the
 * same seeded rotation and q the centroid vector read back from the code:
 *   biased   S = <y,q>/|q|^2, vNMSE = 1 - cos^2(y,q)
 *   unbiased S = |y|^2/<y,q>, vNMSE = 1/cos^2(y,q) - 1. */
Test(codec_eden, per_vector_scale_identities) {
    uint64_t seed = rbt_seed();
    size_t d = 128, count = 200;
    float *x = rbt_normal_f32(count * d, seed, 1);
    const char *rots[] = {"rht", "haar"};
    const rb_rotation_kind kinds[] = {RB_ROT_RHT, RB_ROT_HAAR};
    float *y = malloc(count * d * sizeof *y);
    for (int r = 0; r < 2; r++) {
        rb_rotation rot;
        cr_assert_eq(rb_rotation_init(&rot, kinds[r], d, seed), 0);
        memcpy(y, x, count * d * sizeof *x);
        cr_assert_eq(rb_rotation_apply(&rot, y, count, d, RB_FORWARD), 0);
        rb_rotation_free(&rot);
        for (int b = 1; b <= 4; b++) {
            const rb_lloyd_max *lm;
            cr_assert_eq(rb_lloyd_codebook(RB_LLOYD_GAUSSIAN, 0, b, &lm), 0);
            for (int unb = 0; unb < 2; unb++) {
                char bits[4];
                snprintf(bits, sizeof bits, "%d", b);
                void *st = make("eden", bits, rots[r], unb ? "unbiased" : "biased", d, seed);
                size_t cb = ops("eden")->code_bytes(st);
                uint8_t *codes, idx[128];
                float *xh;
                roundtrip("eden", st, x, count, &codes, &xh, d);
                for (size_t i = 0; i < count; i++) {
                    cr_assert_eq(rb_unpack_bits(codes + i * cb, d, b, idx), 0);
                    double yq = 0, yy = 0, qq = 0, xx = 0, err = 0;
                    for (size_t j = 0; j < d; j++) {
                        double q = (float) lm->centroids[idx[j]], yj = y[i * d + j];
                        double xj = x[i * d + j], e = xj - xh[i * d + j];
                        yq += yj * q, yy += yj * yj, qq += q * q, xx += xj * xj, err += e * e;
                    }
                    double s = stored_scale(codes + i * cb, cb), cos2 = yq * yq / (yy * qq);
                    double want_s = unb ? yy / yq : yq / qq;
                    double want_v = unb ? 1.0 / cos2 - 1.0 : 1.0 - cos2, v = err / xx;
                    cr_assert(fabs(s / want_s - 1) < 1e-5,
                              "%s b=%d %s vector %zu: S %.9g vs %.9g (seed %llu)", rots[r], b,
                              unb ? "unbiased" : "biased", i, s, want_s, (unsigned long long) seed);
                    cr_assert(fabs(v / want_v - 1) < 1e-4,
                              "%s b=%d %s vector %zu: vNMSE %.9g vs identity %.9g (seed %llu)",
                              rots[r], b, unb ? "unbiased" : "biased", i, v, want_v,
                              (unsigned long long) seed);
                    /* The code is the nearest centroid of the normalized rotated coordinates. */
                    size_t bad = 0;
                    for (size_t j = 0; j < d; j++)
                        bad += idx[j] != rb_lloyd_index(lm, y[i * d + j] * sqrt((double) d / yy));
                    cr_assert(bad <= 1, "%zu coordinates off their nearest centroid", bad);
                }
                free(codes);
                free(xh);
                ops("eden")->destroy(st);
            }
        }
    }
    free(y);
    free(x);
}

/* Unbiasedness is over the rotation: averaging the decodes of one x under K independent Haar
 * rotations converges to x at rate vNMSE / K; the biased scale stays off by its shrinkage. */
Test(codec_eden, unbiased_scale_averages_to_the_input_over_rotations) {
    uint64_t seed = rbt_seed();
    size_t d = 32, K = 2000;
    float *x = rbt_normal_f32(d, seed, 2);
    double xx = 0;
    for (size_t j = 0; j < d; j++) xx += (double) x[j] * x[j];
    for (int unb = 0; unb < 2; unb++) {
        double mean[32] = {0}, vn = 0;
        for (size_t k = 0; k < K; k++) {
            void *st = make("eden", "2", "haar", unb ? "unbiased" : "biased", d, seed + k);
            uint8_t *codes;
            float *xh;
            roundtrip("eden", st, x, 1, &codes, &xh, d);
            for (size_t j = 0; j < d; j++) {
                mean[j] += xh[j] / (double) K;
                vn += (xh[j] - x[j]) * (double) (xh[j] - x[j]) / xx / (double) K;
            }
            free(codes);
            free(xh);
            ops("eden")->destroy(st);
        }
        double e = 0;
        for (size_t j = 0; j < d; j++) e += (mean[j] - x[j]) * (mean[j] - x[j]) / xx;
        /* E[e] = vn / K for an unbiased decoder (a chi-square-like sum over d = 32 coordinates:
         * 3x its mean is many standard deviations out). */
        if (unb)
            cr_assert(e < 3 * vn / (double) K,
                      "unbiased: |mean - x|^2/|x|^2 = %g, vn/K = %g (seed %llu)", e,
                      vn / (double) K, (unsigned long long) seed);
        else
            cr_assert(e > 10 * vn / (double) K, "biased: %g should show the shrinkage (seed %llu)",
                      e, (unsigned long long) seed);
    }
    free(x);
}

/* DRIVE is EDEN at b = 1: the same sign payload, and S q identical up to fp32 rounding of S
 * (DRIVE keeps q = +-1, EDEN q = +-sqrt(2/pi)); DRIVE's S is |y|_1/d (biased) or |y|^2/|y|_1. */
Test(codec_eden, drive_is_eden_at_one_bit) {
    uint64_t seed = rbt_seed();
    size_t d = 256, count = 300;
    float *x = rbt_normal_f32(count * d, seed, 3);
    float *y = malloc(count * d * sizeof *y);
    rb_rotation rot;
    cr_assert_eq(rb_rotation_init(&rot, RB_ROT_RHT, d, seed), 0);
    memcpy(y, x, count * d * sizeof *x);
    cr_assert_eq(rb_rotation_apply(&rot, y, count, d, RB_FORWARD), 0);
    rb_rotation_free(&rot);
    const char *scales[] = {"biased", "unbiased"};
    for (int s = 0; s < 2; s++) {
        void *e = make("eden", "1", "rht", scales[s], d, seed);
        void *v = make("drive", NULL, "rht", scales[s], d, seed);
        size_t cb = ops("eden")->code_bytes(e);
        cr_assert_eq(ops("drive")->code_bytes(v), cb);
        cr_assert_eq(ops("drive")->bits(v), ops("eden")->bits(e));
        uint8_t *ce, *cv;
        float *ye, *yv;
        roundtrip("eden", e, x, count, &ce, &ye, d);
        roundtrip("drive", v, x, count, &cv, &yv, d);
        for (size_t i = 0; i < count; i++) {
            cr_assert_eq(memcmp(ce + i * cb, cv + i * cb, cb - sizeof(float)), 0,
                         "%s: payload of vector %zu differs (seed %llu)", scales[s], i,
                         (unsigned long long) seed);
            double l1 = 0, l2 = 0;
            for (size_t j = 0; j < d; j++) {
                l1 += fabs(y[i * d + j]);
                l2 += (double) y[i * d + j] * y[i * d + j];
            }
            double want = s ? l2 / l1 : l1 / (double) d, got = stored_scale(cv + i * cb, cb);
            cr_assert(fabs(got / want - 1) < 1e-5, "%s: DRIVE S %.9g vs %.9g", scales[s], got,
                      want);
        }
        for (size_t i = 0; i < count; i++) {
            double diff = 0, norm = 0;
            for (size_t j = i * d; j < (i + 1) * d; j++) {
                diff += (double) (ye[j] - yv[j]) * (ye[j] - yv[j]);
                norm += (double) ye[j] * ye[j];
            }
            cr_assert(diff <= 1e-10 * norm,
                      "%s: vector %zu: |eden - drive|^2 = %g, |eden|^2 = %g (seed %llu)", scales[s],
                      i, diff, norm, (unsigned long long) seed);
        }
        free(ce);
        free(cv);
        free(ye);
        free(yv);
        ops("eden")->destroy(e);
        ops("drive")->destroy(v);
    }
    free(y);
    free(x);
}

Test(codec_eden, code_size_and_bits_are_exact_with_and_without_padding) {
    /* d = 128, b = 3: 384 bits = 48 bytes + fp32 S. */
    void *st = make("eden", "3", "rht", "unbiased", 128, 1);
    cr_assert_eq(ops("eden")->code_bytes(st), 48 + 4);
    cr_assert_float_eq(ops("eden")->bits(st), 3.0 + 32.0 / 128.0, 1e-12);
    ops("eden")->destroy(st);
    /* d = 1536 = 12 * 128 is a Hadamard order: no padding. */
    st = make("eden", "2", "rht", "unbiased", 1536, 1);
    cr_assert_eq(ops("eden")->code_bytes(st), 384 + 4);
    cr_assert_float_eq(ops("eden")->bits(st), 2.0 + 32.0 / 1536.0, 1e-12);
    ops("eden")->destroy(st);
    /* d = 100: RHT pads to 104 = 52 * 2 (208 bits = 26 bytes), Haar does not (200 bits). */
    st = make("eden", "2", "rht", "unbiased", 100, 1);
    cr_assert_eq(ops("eden")->code_bytes(st), 26 + 4);
    cr_assert_float_eq(ops("eden")->bits(st), (208.0 + 32.0) / 100.0, 1e-12);
    ops("eden")->destroy(st);
    st = make("eden", "2", "haar", "unbiased", 100, 1);
    cr_assert_eq(ops("eden")->code_bytes(st), 25 + 4);
    cr_assert_float_eq(ops("eden")->bits(st), 2.32, 1e-12);
    ops("eden")->destroy(st);
    st = make("drive", NULL, "none", "biased", 7, 1);
    cr_assert_eq(ops("drive")->code_bytes(st), 1 + 4);
    cr_assert_float_eq(ops("drive")->bits(st), (7.0 + 32.0) / 7.0, 1e-12);
    ops("drive")->destroy(st);
}

/* A padded RHT still round-trips: the error is at most the padded vector's, and the unbiased
 * scale keeps <x, x_hat> = |x|^2 after truncation only on average, so check the vNMSE band. */
Test(codec_eden, padded_dimension_round_trips) {
    uint64_t seed = rbt_seed();
    size_t d = 100, count = 2000;
    float *x = rbt_normal_f32(count * d, seed, 4);
    void *st = make("eden", "2", "rht", "unbiased", d, seed);
    uint8_t *codes;
    float *xh;
    roundtrip("eden", st, x, count, &codes, &xh, d);
    double v = 0;
    for (size_t i = 0; i < count; i++) {
        double num = 0, den = 0;
        for (size_t j = 0; j < d; j++) {
            double e = (double) x[i * d + j] - xh[i * d + j];
            num += e * e;
            den += (double) x[i * d + j] * x[i * d + j];
        }
        v += num / den / (double) count;
    }
    /* Unpadded EDEN-unbiased b = 2 is ~0.131; dropping 4 of 104 coordinates' error gives ~0.126. */
    cr_assert(v > 0.11 && v < 0.135, "vNMSE %g (seed %llu)", v, (unsigned long long) seed);
    free(codes);
    free(xh);
    ops("eden")->destroy(st);
    free(x);
}

/* Zero vectors decode to zero with S = 0; huge and tiny norms stay finite; scaling x by a power of
 * two scales the decode by it exactly (same payload, same relative error). */
Test(codec_eden, edge_inputs_and_scale_equivariance) {
    uint64_t seed = rbt_seed();
    size_t d = 64;
    float *g = rbt_normal_f32(d, seed, 5);
    float x[5 * 64] = {0};
    for (size_t j = 0; j < d; j++) {
        x[d + j] = 1e30f * (j % 2 ? 1 : -1);
        x[2 * d + j] = 1e-30f * (float) j;
        x[3 * d + j] = g[j];
        x[4 * d + j] = ldexpf(g[j], 90);
    }
    const char *names[] = {"eden", "drive"};
    for (int n = 0; n < 2; n++) {
        for (int unb = 0; unb < 2; unb++) {
            void *st = make(names[n], n ? NULL : "3", "rht", unb ? "unbiased" : "biased", d, seed);
            size_t cb = ops(names[n])->code_bytes(st);
            uint8_t *codes;
            float *y;
            roundtrip(names[n], st, x, 5, &codes, &y, d);
            cr_assert_eq(stored_scale(codes, cb), 0.0f);
            for (size_t j = 0; j < d; j++) cr_assert_eq(y[j], 0.0f, "zero vector decodes to 0");
            for (size_t j = d; j < 5 * d; j++) cr_assert(isfinite(y[j]), "element %zu", j);
            for (size_t j = 0; j < 3 * d; j++) cr_assert(fabsf(y[j]) <= 1e31f);
            for (size_t r = 1; r < 3; r++) {
                double nx = 0, ny = 0;
                for (size_t k = 0; k < d; k++) {
                    nx += (double) x[r * d + k] * x[r * d + k];
                    ny += (double) y[r * d + k] * y[r * d + k];
                }
                cr_assert(ny > 0.25 * nx && ny < 4 * nx, "%s: row %zu: |x|^2 %g, |x_hat|^2 %g",
                          names[n], r, nx, ny);
            }
            cr_assert_eq(memcmp(codes + 3 * cb, codes + 4 * cb, cb - 4), 0);
            for (size_t j = 0; j < d; j++)
                cr_assert(fabsf(ldexpf(y[3 * d + j], 90) - y[4 * d + j]) <=
                              1e-5f * fabsf(y[4 * d + j]) + 1e-30f,
                          "%s: x * 2^90 decodes to %g, not 2^90 * %g", names[n], y[4 * d + j],
                          y[3 * d + j]);
            free(codes);
            free(y);
            ops(names[n])->destroy(st);
        }
    }
    free(g);
}

Test(codec_eden, same_seed_same_codes_across_thread_counts) {
    uint64_t seed = rbt_seed();
    size_t d = 512, count = 300;
    float *x = rbt_normal_f32(count * d, seed, 6);
    uint8_t *codes[3];
    size_t cb = 0;
    for (int t = 0; t < 3; t++) {
        rb_threads_set(t == 1 ? 2 : 1);
        void *st = make("eden", "4", "rht", "unbiased", d, t == 2 ? seed + 1 : seed);
        cb = ops("eden")->code_bytes(st);
        codes[t] = malloc(count * cb);
        cr_assert_eq(ops("eden")->encode(st, x, count, codes[t]), 0);
        ops("eden")->destroy(st);
    }
    rb_threads_set(1);
    cr_assert_eq(memcmp(codes[0], codes[1], count * cb), 0, "1 vs 2 threads (seed %llu)",
                 (unsigned long long) seed);
    cr_assert_neq(memcmp(codes[0], codes[2], count * cb), 0, "another seed, another rotation");
    for (int t = 0; t < 3; t++) free(codes[t]);
    free(x);
}

Test(codec_eden, bad_parameters_and_inputs_are_rejected) {
    const rb_method *m = rb_method_find("eden"), *dr = rb_method_find("drive");
    rb_params p, q;
    rb_params_init(&p, m->params, m->nparams);
    rb_params_init(&q, dr->params, dr->nparams);
    cr_assert_neq(rb_params_set(&p, "bits", "0"), 0);
    cr_assert_neq(rb_params_set(&p, "bits", "9"), 0);
    cr_assert_neq(rb_params_set(&p, "scale", "matched"), 0);
    cr_assert_neq(rb_params_set(&p, "rotation", "dct"), 0);
    cr_assert_neq(rb_params_set(&q, "bits", "2"), 0, "DRIVE is 1-bit");
    void *st = NULL;
    cr_assert_eq(m->codec->create(&p, 0, 1, &st), RB_ESIZE);
    cr_assert_null(st);
    cr_assert_eq(dr->codec->create(&q, 0, 1, &st), RB_ESIZE);
    cr_assert_null(st);
    cr_assert_eq(m->codec->create(&p, 64, 1, &st), 0);
    float x[2 * 64] = {0};
    x[64 + 5] = NAN;
    uint8_t codes[2 * 64];
    cr_assert_eq(m->codec->encode(st, x, 2, codes), RB_ENUMERIC);
    x[64 + 5] = INFINITY;
    cr_assert_eq(m->codec->encode(st, x, 2, codes), RB_ENUMERIC);
    cr_assert(strstr(rb_error_detail(), "eden: vector 1 has a NaN or infinite coordinate"), "%s",
              rb_error_detail());
    /* finite, but the rotation's sums overflow: named as such, with the input's norm */
    for (size_t j = 64; j < 128; j++) x[j] = 4e37f;
    cr_assert_eq(m->codec->encode(st, x, 2, codes), RB_ENUMERIC);
    cr_assert(
        strstr(rb_error_detail(), "eden: vector 1 (norm 3.2e+38) overflows fp32 in the rotation"),
        "%s", rb_error_detail());
    m->codec->destroy(st);
}
