/* KV dump loaders (datasets/kv_dump.c): kv_npy and kv_safetensors on small files written here,
 * the calibration split (end, start, separate files), the leading layer axis, and every
 * rejection naming the file and the problem. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "harness/config.h"
#include "harness/eval.h"
#include "harness/runner.h"
#include "kernels/kernels.h"
#include "methods/method.h"
#include "tests/testutil.h"

static void setup(void) {
    rbt_tmpdir_make("kvdump");
}

TestSuite(kv_dump, .init = setup, .fini = rbt_tmpdir_remove);

/* Element e of a test tensor: a value that encodes (tag, e) so misplaced copies show. */
static float val(int tag, size_t e) {
    return (float) tag * 1000.0f + (float) e * 0.25f;
}

static void write_npy(const char *name, int tag, int ndim, const size_t *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *x = malloc(n * sizeof *x + 1);
    for (size_t e = 0; e < n; e++) x[e] = val(tag, e);
    cr_assert_eq(rb_npy_write(rbt_tmp(name), RB_NPY_F32, ndim, shape, x), 0, "%s",
                 rb_error_detail());
    free(x);
}

static void expect_error(int rc, const char *a, const char *b) {
    cr_assert_neq(rc, 0, "expected an error mentioning '%s'", a);
    const char *d = rb_error_detail();
    cr_assert(strstr(d, a) != NULL, "error '%s' does not mention '%s'", d, a);
    if (b) cr_assert(strstr(d, b) != NULL, "error '%s' does not mention '%s'", d, b);
}

/* Token t of layer l in a (L, T, H, D) tensor of the given tag, as the file holds it. */
static float at(int tag, size_t T, size_t H, size_t D, size_t l, size_t t, size_t h, size_t j) {
    return val(tag, ((l * T + t) * H + h) * D + j);
}

Test(kv_dump, npy_split_from_the_end_keeps_positions_and_layers) {
    size_t L = 2, T = 10, H = 2, D = 4, nq = 3, HQ = 4;
    size_t ks[4] = {L, T, H, D}, qs[4] = {L, nq, HQ, D};
    write_npy("k.npy", 1, 4, ks);
    write_npy("v.npy", 2, 4, ks);
    write_npy("q.npy", 3, 4, qs);
    rb_dataset ds;
    int rc = rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                rbt_tmp("v.npy"), "q_path", rbt_tmp("q.npy"), "calib_tokens", "3",
                                "prefill", "5", "rope_base", "500000", NULL);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    const rb_tensor *K = rb_dataset_tensor(&ds, "K"), *V = rb_dataset_tensor(&ds, "V"),
                    *Q = rb_dataset_tensor(&ds, "Q"), *Kc = rb_dataset_tensor(&ds, "K_calib"),
                    *Vc = rb_dataset_tensor(&ds, "V_calib"), *m = rb_dataset_tensor(&ds, "kv_meta");
    cr_assert(K && V && Q && Kc && Vc && m);
    cr_assert_eq(K->ndim, 4);
    cr_assert(K->shape[0] == L && K->shape[1] == T - 3 && K->shape[2] == H && K->shape[3] == D);
    cr_assert(Kc->shape[0] == L && Kc->shape[1] == 3);
    cr_assert(Q->shape[1] == nq && Q->shape[2] == HQ);
    /* Evaluation: tokens 0..6 at their own positions; calibration: the last 3. */
    for (size_t l = 0; l < L; l++)
        for (size_t t = 0; t < T - 3; t++)
            for (size_t e = 0; e < H * D; e++) {
                cr_assert_eq(K->data[(l * (T - 3) + t) * H * D + e],
                             at(1, T, H, D, l, t, e / D, e % D));
                cr_assert_eq(V->data[(l * (T - 3) + t) * H * D + e],
                             at(2, T, H, D, l, t, e / D, e % D));
            }
    for (size_t l = 0; l < L; l++)
        for (size_t t = 0; t < 3; t++)
            for (size_t e = 0; e < H * D; e++)
                cr_assert_eq(Kc->data[(l * 3 + t) * H * D + e],
                             at(1, T, H, D, l, T - 3 + t, e / D, e % D));
    cr_assert_eq(m->data[0], 5.0f);
    cr_assert_eq(m->data[1], 500000.0f);
    /* Positions of the splits' first tokens: evaluation at 0, calibration at T - 3. */
    cr_assert_eq(rb_tensor_numel(m), 4);
    cr_assert_eq(m->data[2], 0.0f);
    cr_assert_eq(m->data[3], (float) (T - 3));
    rb_kv_geom g = {0};
    size_t prefill = 99;
    rb_kv_meta_read(&ds, T - 3, &g, &prefill);
    cr_assert(g.pos0 == 0 && g.calib_pos0 == T - 3 && prefill == 5 && g.rope_base == 500000.0);
    char hash[65];
    memcpy(hash, ds.hash, sizeof hash);
    rb_dataset_free(&ds);
    /* A prefix split takes the first tokens; the hash sees the difference. */
    rc =
        rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path", rbt_tmp("v.npy"),
                           "calib_tokens", "3", "calib_from", "start", "tokens", "4", NULL);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    K = rb_dataset_tensor(&ds, "K");
    Kc = rb_dataset_tensor(&ds, "K_calib");
    cr_assert_eq(K->shape[1], 4);
    cr_assert_null(rb_dataset_tensor(&ds, "Q"));
    cr_assert_eq(K->data[0], at(1, T, H, D, 0, 3, 0, 0));
    cr_assert_eq(K->data[4 * H * D], at(1, T, H, D, 1, 3, 0, 0)); /* layer 1 starts at token 3 */
    cr_assert_eq(Kc->data[0], at(1, T, H, D, 0, 0, 0, 0));
    m = rb_dataset_tensor(&ds, "kv_meta");
    cr_assert(m->data[2] == 3.0f && m->data[3] == 0.0f, "prefix split: evaluation starts at 3");
    cr_assert_str_neq(hash, ds.hash);
    rb_dataset_free(&ds);
}

Test(kv_dump, npy_separate_calibration_files) {
    size_t ks[3] = {8, 2, 4}, cs[3] = {5, 2, 4};
    write_npy("k.npy", 1, 3, ks);
    write_npy("v.npy", 2, 3, ks);
    write_npy("kc.npy", 4, 3, cs);
    write_npy("vc.npy", 5, 3, cs);
    rb_dataset ds;
    int rc = rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                rbt_tmp("v.npy"), "k_calib_path", rbt_tmp("kc.npy"), "v_calib_path",
                                rbt_tmp("vc.npy"), NULL);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    const rb_tensor *K = rb_dataset_tensor(&ds, "K"), *Vc = rb_dataset_tensor(&ds, "V_calib");
    cr_assert_eq(K->shape[0], 8);
    cr_assert_eq(Vc->shape[0], 5);
    for (size_t e = 0; e < 5 * 8; e++) cr_assert_eq(Vc->data[e], val(5, e));
    rb_dataset_free(&ds);
}

Test(kv_dump, npy_rejections_name_the_file_and_problem) {
    size_t ks[3] = {8, 2, 4}, vs[3] = {8, 2, 8}, qbad[3] = {3, 3, 4}, kc[3] = {4, 3, 4},
           k2[2] = {8, 8};
    write_npy("k.npy", 1, 3, ks);
    write_npy("v.npy", 2, 3, ks);
    write_npy("vbad.npy", 2, 3, vs);
    write_npy("qbad.npy", 3, 3, qbad);
    write_npy("kcbad.npy", 4, 3, kc);
    write_npy("k2.npy", 1, 2, k2);
    size_t qdim[3] = {3, 2, 8}, q4[4] = {2, 3, 2, 4}, k4[4] = {2, 8, 2, 4}, q3[3] = {3, 2, 4},
           q4l3[4] = {3, 3, 2, 4};
    write_npy("qdim.npy", 3, 3, qdim);
    write_npy("q4.npy", 3, 4, q4);
    write_npy("k4.npy", 1, 4, k4);
    write_npy("q3.npy", 3, 3, q3);
    write_npy("q4l3.npy", 3, 4, q4l3);
    rb_dataset ds;
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("vbad.npy"), NULL),
                 "shape mismatch", "vbad.npy");
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "q_path", rbt_tmp("qbad.npy"), NULL),
                 "qbad.npy", "3 query heads is not a multiple of the keys' 2 KV heads");
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "q_path", rbt_tmp("qdim.npy"), NULL),
                 "qdim.npy: queries have shape (3, 2, 8); with keys (8, 2, 4) they must be "
                 "(queries, q_heads, head_dim = 4)",
                 NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "q_path", rbt_tmp("q4.npy"), NULL),
                 "q4.npy: queries have shape (2, 3, 2, 4); with keys (8, 2, 4) they must be "
                 "(queries, q_heads, head_dim = 4)",
                 NULL);
    /* Keys with a layer axis: the queries need it too, with the same number of layers. */
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k4.npy"), "v_path",
                                    rbt_tmp("k4.npy"), "q_path", rbt_tmp("q3.npy"), NULL),
                 "q3.npy: queries have shape (3, 2, 4); with keys (2, 8, 2, 4) they must be "
                 "(layers = 2, queries, q_heads, head_dim = 4)",
                 NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k4.npy"), "v_path",
                                    rbt_tmp("k4.npy"), "q_path", rbt_tmp("q4l3.npy"), NULL),
                 "queries have shape (3, 3, 2, 4); with keys (2, 8, 2, 4) they must be "
                 "(layers = 2, queries, q_heads, head_dim = 4)",
                 NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "calib_tokens", "8", NULL),
                 "too few tokens for the calibration split", "k.npy");
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "calib_tokens", "2", "tokens", "7", NULL),
                 "only 6 remain", NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "prefill", "9", NULL),
                 "prefill = 9", NULL);
    /* kv_meta holds it in fp32, exact to 2^24 (2^24 + 1 would read back as 2^24) */
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "prefill", "16777217", NULL),
                 "'prefill': 16777217 is outside 0..16777216", NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "k_calib_path", rbt_tmp("kcbad.npy"),
                                    "v_calib_path", rbt_tmp("kcbad.npy"), NULL),
                 "kcbad.npy", "all but the token axis");
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "k_calib_path", rbt_tmp("k.npy"), NULL),
                 "calibration keys and values come together", NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k2.npy"), "v_path",
                                    rbt_tmp("v.npy"), NULL),
                 "k2.npy", "2 axes");
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("nope.npy"), "v_path",
                                    rbt_tmp("v.npy"), NULL),
                 "nope.npy", NULL);
    /* Files that are given but empty are errors, not "none given". */
    size_t q0[3] = {0, 2, 4};
    cr_assert_eq(rb_npy_write(rbt_tmp("q0.npy"), RB_NPY_F32, 3, q0, NULL), 0, "%s",
                 rb_error_detail());
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "q_path", rbt_tmp("q0.npy"), NULL),
                 "q0.npy: the queries have no tokens (shape (0, 2, 4))", NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("v.npy"), "k_calib_path", rbt_tmp("q0.npy"),
                                    "v_calib_path", rbt_tmp("q0.npy"), NULL),
                 "q0.npy: the calibration keys have no tokens", NULL);
    /* NaN in the values: the npy reader names the file and the index. */
    float x[8 * 2 * 4];
    for (size_t e = 0; e < 64; e++) x[e] = 1.0f;
    x[37] = NAN;
    cr_assert_eq(rb_npy_write(rbt_tmp("vnan.npy"), RB_NPY_F32, 3, ks, x), 0);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path",
                                    rbt_tmp("vnan.npy"), NULL),
                 "vnan.npy", "37");
}

/* Values past RB_KV_ABS_MAX (2^48) are refused at load, named by file, tensor, layer, token,
 * head and channel; 2^48 itself and values of every other tensor are accepted. */
Test(kv_dump, values_beyond_the_kv_range_are_named) {
    size_t ks[3] = {8, 2, 4}, k4[4] = {2, 8, 2, 4};
    float x[2 * 8 * 2 * 4];
    for (size_t e = 0; e < 128; e++) x[e] = e % 2 ? -0x1p48f : 0x1p48f; /* at the bound */
    cr_assert_eq(rb_npy_write(rbt_tmp("edge.npy"), RB_NPY_F32, 3, ks, x), 0);
    rb_dataset ds;
    int rc = rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("edge.npy"), "v_path",
                                rbt_tmp("edge.npy"), NULL);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    rb_dataset_free(&ds);
    /* token 5, head 1, channel 2 = element (5 * 2 + 1) * 4 + 2 = 46: the float above 2^48 */
    x[46] = -nextafterf(0x1p48f, INFINITY);
    cr_assert_eq(rb_npy_write(rbt_tmp("vbig.npy"), RB_NPY_F32, 3, ks, x), 0);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("edge.npy"), "v_path",
                                    rbt_tmp("vbig.npy"), NULL),
                 "vbig.npy: V at token 5, head 1, channel 2 is -2.81475e+14, beyond", "2^48");
    /* The same element in layer 1 of a 4-d query tensor (64 elements a layer). */
    x[46] = 0x1p48f;
    x[64 + 46] = 3e38f;
    size_t q4[4] = {2, 8, 2, 4};
    cr_assert_eq(rb_npy_write(rbt_tmp("k4.npy"), RB_NPY_F32, 4, k4, x), 0);
    x[64 + 46] = 0x1p48f;
    cr_assert_eq(rb_npy_write(rbt_tmp("k4ok.npy"), RB_NPY_F32, 4, k4, x), 0);
    x[64 + 46] = 3e38f;
    cr_assert_eq(rb_npy_write(rbt_tmp("q4.npy"), RB_NPY_F32, 4, q4, x), 0);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k4ok.npy"), "v_path",
                                    rbt_tmp("k4ok.npy"), "q_path", rbt_tmp("q4.npy"), NULL),
                 "q4.npy: Q at layer 1, token 5, head 1, channel 2 is 3e+38", NULL);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k4.npy"), "v_path",
                                    rbt_tmp("k4ok.npy"), NULL),
                 "k4.npy: K at layer 1, token 5, head 1, channel 2", NULL);
    /* A tensor of the wrong rank is named for its shape first, whatever its values. */
    size_t k2[2] = {16, 8};
    cr_assert_eq(rb_npy_write(rbt_tmp("k2big.npy"), RB_NPY_F32, 2, k2, x), 0);
    expect_error(rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k2big.npy"), "v_path",
                                    rbt_tmp("k2big.npy"), NULL),
                 "k2big.npy", "2 axes");
}

/* ---- safetensors ---- */

typedef struct st_entry {
    const char *name;
    size_t ndim, shape[4];
    int tag;
} st_entry;

/* Writes a .safetensors file of F32 tensors filled with val(tag, e). */
static void write_st(const char *path, const st_entry *t, size_t n) {
    char hdr[2048];
    size_t used = (size_t) snprintf(hdr, sizeof hdr, "{"), off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        used +=
            (size_t) snprintf(hdr + used, sizeof hdr - used,
                              "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", i ? "," : "", t[i].name);
        for (size_t d = 0; d < t[i].ndim; d++) {
            numel *= t[i].shape[d];
            used += (size_t) snprintf(hdr + used, sizeof hdr - used, "%s%zu", d ? "," : "",
                                      t[i].shape[d]);
        }
        used += (size_t) snprintf(hdr + used, sizeof hdr - used, "],\"data_offsets\":[%zu,%zu]}",
                                  off, off + 4 * numel);
        off += 4 * numel;
    }
    used += (size_t) snprintf(hdr + used, sizeof hdr - used, "}");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t hl = used;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char) (hl >> (8 * i));
    fwrite(lb, 1, 8, f);
    fwrite(hdr, 1, used, f);
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        for (size_t d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        for (size_t e = 0; e < numel; e++) {
            float v = val(t[i].tag, e);
            fwrite(&v, 4, 1, f);
        }
    }
    fclose(f);
}

Test(kv_dump, safetensors_by_name_with_calibration_tensors) {
    st_entry t[] = {{"k", 3, {6, 2, 4, 0}, 1},  {"v", 3, {6, 2, 4, 0}, 2},
                    {"q", 3, {2, 4, 4, 0}, 3},  {"kc", 3, {3, 2, 4, 0}, 4},
                    {"vc", 3, {3, 2, 4, 0}, 5}, {"vbad", 3, {5, 2, 4, 0}, 6}};
    write_st(rbt_tmp("kv.safetensors"), t, 6);
    rb_dataset ds;
    int rc = rbt_load_and_shape(&ds, "kv_safetensors", 0, "path", rbt_tmp("kv.safetensors"),
                                "k_tensor", "k", "v_tensor", "v", "q_tensor", "q", "k_calib_tensor",
                                "kc", "v_calib_tensor", "vc", "prefill", "2", NULL);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    const rb_tensor *K = rb_dataset_tensor(&ds, "K"), *Q = rb_dataset_tensor(&ds, "Q"),
                    *Kc = rb_dataset_tensor(&ds, "K_calib");
    cr_assert(K && Q && Kc);
    cr_assert_eq(K->shape[0], 6);
    cr_assert_eq(Q->shape[1], 4);
    for (size_t e = 0; e < 48; e++) cr_assert_eq(K->data[e], val(1, e));
    for (size_t e = 0; e < 24; e++) cr_assert_eq(Kc->data[e], val(4, e));
    cr_assert_eq(rb_dataset_tensor(&ds, "kv_meta")->data[0], 2.0f);
    rb_dataset_free(&ds);
    expect_error(rbt_load_and_shape(&ds, "kv_safetensors", 0, "path", rbt_tmp("kv.safetensors"),
                                    "k_tensor", "k", "v_tensor", "vbad", NULL),
                 "shape mismatch", "kv.safetensors['vbad']");
    expect_error(rbt_load_and_shape(&ds, "kv_safetensors", 0, "path", rbt_tmp("kv.safetensors"),
                                    "k_tensor", "k", "v_tensor", "missing", NULL),
                 "no tensor 'missing'", "kv.safetensors");
}

static int keep2(void *ctx, const rb_metric_value *v) {
    double *got = ctx;
    got[strcmp(v->metric->name, "logit_err") ? 1 : 0] = v->value;
    return 0;
}

/* The loaded dump runs through the KV evaluator: a vector codec at high precision gives small
 * errors on every metric (the tensors are where the evaluator looks for them). */
Test(kv_dump, loaded_dump_evaluates) {
    uint64_t seed = rbt_seed();
    size_t L = 2, T = 40, H = 2, D = 8, ks[4] = {L, T, H, D}, qs[4] = {L, 4, 4, D};
    float *k = malloc(L * T * H * D * sizeof *k), *v = malloc(L * T * H * D * sizeof *v),
          *q = malloc(L * 16 * D * sizeof *q);
    rb_rng_normal_f32(seed, 1, 0, L * T * H * D, k);
    rb_rng_normal_f32(seed, 2, 0, L * T * H * D, v);
    rb_rng_normal_f32(seed, 3, 0, L * 16 * D, q);
    cr_assert_eq(rb_npy_write(rbt_tmp("k.npy"), RB_NPY_F32, 4, ks, k), 0);
    cr_assert_eq(rb_npy_write(rbt_tmp("v.npy"), RB_NPY_F32, 4, ks, v), 0);
    cr_assert_eq(rb_npy_write(rbt_tmp("q.npy"), RB_NPY_F32, 4, qs, q), 0);
    free(k);
    free(v);
    free(q);
    rb_dataset ds;
    int rc =
        rbt_load_and_shape(&ds, "kv_npy", 0, "k_path", rbt_tmp("k.npy"), "v_path", rbt_tmp("v.npy"),
                           "q_path", rbt_tmp("q.npy"), "calib_tokens", "8", NULL);
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    const rb_method *m = rb_method_find("rtn_kv");
    cr_assert_not_null(m);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    cr_assert_eq(rb_params_set(&p, "bits", "8"), 0, "%s", rb_error_detail());
    const char *metrics[] = {"logit_err", "rel_mse_k"};
    double got[2] = {NAN, NAN};
    rc = rb_eval_kv(m, &p, &ds, seed, metrics, 2, keep2, got);
    cr_assert_eq(rc, 0, "%s (seed %llu)", rb_error_detail(), (unsigned long long) seed);
    /* 8-bit per-token codes of N(0,1) rows: relative errors around 1e-4, far from 0 and 1. */
    for (int i = 0; i < 2; i++)
        cr_assert(got[i] > 1e-7 && got[i] < 1e-2, "%s = %g (seed %llu)", metrics[i], got[i],
                  (unsigned long long) seed);
    rb_dataset_free(&ds);
}

/* rotatekv on a dump whose rope_base the config left unset: one warning naming the dataset, its
 * kind, the method and its label; none once rope_base is written (0 included: "no RoPE"), and
 * none for a method that does not transform pre-RoPE keys. */
static size_t rope_warnings(const char *dataset_extra, const char *method, char *text,
                            size_t size) {
    const char *path = rbt_tmp("rope.yaml");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "name: t\ndatasets:\n"
            "  - {name: dump, kind: kv_npy, k_path: k.npy, v_path: v.npy%s}\n"
            "  - {name: gen, kind: kv_cache, tokens: 64, heads: 4, head_dim: 128}\n"
            "methods:\n  - {method: %s, label: mine}\n  - {method: rtn_kv}\n"
            "metrics: [bits]\n",
            dataset_extra, method);
    fclose(f);
    rb_config cfg;
    cr_assert_eq(rb_config_load(path, &cfg), 0, "%s", rb_error_detail());
    rb_cell *cells;
    size_t n;
    cr_assert_eq(rb_sweep_expand(&cfg, &cells, &n), 0, "%s", rb_error_detail());
    FILE *out = tmpfile();
    cr_assert_not_null(out);
    size_t w = rb_run_warn_rope(&cfg, cells, n, out);
    rewind(out);
    size_t got = fread(text, 1, size - 1, out);
    text[got] = '\0';
    fclose(out);
    free(cells);
    rb_config_free(&cfg);
    return w;
}

Test(kv_dump, rotatekv_on_a_dump_without_rope_base_warns) {
    char text[2048];
    cr_assert_eq(rope_warnings("", "rotatekv", text, sizeof text), 1, "%s", text);
    cr_assert(strstr(text, "warning: dataset 'dump' (kv_npy) leaves rope_base unset"), "%s", text);
    cr_assert(strstr(text, "method 'rotatekv' (label 'mine') takes its keys as pre-RoPE"), "%s",
              text);
    cr_assert(strstr(text, "rope_base: 0 explicitly"), "%s", text);
    cr_assert_eq(rope_warnings(", rope_base: 0", "rotatekv", text, sizeof text), 0, "%s", text);
    cr_assert_eq(rope_warnings(", rope_base: 10000", "rotatekv", text, sizeof text), 0, "%s", text);
    cr_assert_eq(rope_warnings("", "kivi", text, sizeof text), 0, "%s", text);
    cr_assert_eq(text[0], '\0');
}
