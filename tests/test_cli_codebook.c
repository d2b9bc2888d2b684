/* `rotabench codebook`: runs the built binary (RB_TEST_BIN) and parses its JSON with jansson. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static double num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "key %s", key);
    return json_number_value(v);
}

Test(cli_codebook, sphere_matches_library_exactly) {
    json_t *o = rbt_cli_json("codebook --dist sphere --dim 128 --bits 4");
    const rb_lloyd_max *cb;
    cr_assert_eq(rb_lloyd_codebook(RB_LLOYD_SPHERE, 128, 4, &cb), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "dist")), "sphere");
    cr_assert_eq(json_integer_value(json_object_get(o, "dim")), 128);
    cr_assert_eq(json_integer_value(json_object_get(o, "bits")), 4);
    json_t *c = json_object_get(o, "centroids"), *t = json_object_get(o, "thresholds");
    cr_assert_eq(json_array_size(c), 16);
    cr_assert_eq(json_array_size(t), 15);
    /* 17 significant digits round-trip the doubles exactly */
    for (size_t i = 0; i < 16; i++)
        cr_assert_eq(json_real_value(json_array_get(c, i)), cb->centroids[i], "c%zu", i);
    for (size_t i = 0; i < 15; i++)
        cr_assert_eq(json_real_value(json_array_get(t, i)), cb->thresholds[i], "t%zu", i);
    cr_assert_eq(num(o, "mse"), cb->mse);
    cr_assert_eq(num(o, "d_mse"), cb->d_mse);
    cr_assert(fabs(num(o, "d_mse") - 0.009315) <= 2e-4);
    cr_assert_eq(num(o, "entropy"), cb->entropy);
    cr_assert(json_is_integer(json_object_get(o, "iterations")));
    cr_assert_geq(json_integer_value(json_object_get(o, "iterations")), 1);
    json_decref(o);
}

Test(cli_codebook, gaussian_fields) {
    json_t *o = rbt_cli_json("codebook --dist=gaussian --bits=1");
    cr_assert(json_is_null(json_object_get(o, "dim")));
    cr_assert_null(json_object_get(o, "d_mse"), "d_mse is for the sphere only");
    json_t *c = json_object_get(o, "centroids");
    cr_assert_eq(json_array_size(c), 2);
    cr_assert(fabs(json_real_value(json_array_get(c, 1)) - sqrt(2 / M_PI)) <= 1e-15);
    cr_assert(fabs(num(o, "mse") - (1 - 2 / M_PI)) <= 1e-15);
    json_decref(o);
}

Test(cli_codebook, help_and_bad_arguments) {
    char *out, *err;
    cr_assert_eq(rbt_run_cli("codebook --help", &out, &err), 0);
    cr_assert(strstr(out, "usage: rotabench codebook"), "%s", out);
    free(out);
    free(err);
    static const struct {
        const char *args, *word;
    } bad[] = {
        {"codebook", "--dist is required"},
        {"codebook --dist cauchy --bits 2", "'cauchy' is not one of"},
        {"codebook --dist gaussian", "--bits is required"},
        {"codebook --dist gaussian --bits 0", "--bits '0'"},
        {"codebook --dist gaussian --bits 9", "--bits '9'"},
        {"codebook --dist gaussian --bits 2x", "--bits '2x'"},
        {"codebook --dist sphere --bits 2", "needs --dim"},
        {"codebook --dist sphere --dim 1 --bits 2", "--dim '1'"},
        {"codebook --dist sphere --dim 99999999999 --bits 2", "--dim '99999999999'"},
        {"codebook --dist gaussian --dim 8 --bits 2", "applies only to --dist sphere"},
        {"codebook --dist gaussian --bits 2 --frobnicate", "unknown option '--frobnicate'"},
        {"codebook --dist gaussian --bits", "needs a value"},
        {"codebook --dist gaussian --bits 2 --bits 3", "given twice"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int st = rbt_run_cli(bad[k].args, &out, &err);
        cr_assert_eq(st, 2, "%s: exit %d", bad[k].args, st);
        cr_assert_str_empty(out, "%s: stdout must be empty: %s", bad[k].args, out);
        cr_assert(strstr(err, bad[k].word), "%s: stderr lacks '%s': %s", bad[k].args, bad[k].word,
                  err);
        free(out);
        free(err);
    }
}
