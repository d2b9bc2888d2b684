/* The sparse_npy dataset: a stored signal's truth is its own spectrum, the sparse methods recover
 * it through the oracle, and bad files are named. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "datasets/synth.h"
#include "harness/eval.h"
#include "methods/method.h"
#include "tests/testutil.h"

static void setup(void) {
    rbt_tmpdir_make("spnpy");
}

TestSuite(sparse_npy, .init = setup, .fini = rbt_tmpdir_remove);

/* A K-sparse spectrum at random distinct indices (amplitudes +-1..2) and its signal
 * x = H X / sqrt(N), written as float64 .npy; the support (sorted) and values are returned. */
static void write_signal(const char *path, unsigned log2n, size_t K, uint64_t seed, size_t *sup,
                         double *val) {
    size_t n = (size_t) 1 << log2n;
    double *x = calloc(n, sizeof *x);
    uint32_t bits[2];
    size_t got = 0;
    for (uint64_t w = 0; got < K; w++) {
        rb_rng_bits(seed, 1, 2 * w, 2, bits);
        size_t i = bits[0] & (n - 1), dup = 0;
        for (size_t j = 0; j < got; j++) dup |= sup[j] == i;
        if (dup) continue;
        sup[got++] = i;
    }
    for (size_t a = 0; a < K; a++) /* insertion sort: K is small */
        for (size_t b = a; b > 0 && sup[b - 1] > sup[b]; b--) {
            size_t t = sup[b];
            sup[b] = sup[b - 1];
            sup[b - 1] = t;
        }
    for (size_t j = 0; j < K; j++) {
        rb_rng_bits(seed, 2, j, 1, bits);
        val[j] = (bits[0] & 1 ? -1 : 1) * (1 + (bits[0] >> 8) / 16777216.0);
        x[sup[j]] = val[j];
    }
    cr_assert_eq(rb_fwht_f64(x, n, 1, n, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
    cr_assert_eq(rb_npy_write(path, RB_NPY_F64, 1, &n, x), 0, "%s", rb_error_detail());
    free(x);
}

static int load(const char *path, const char *k, rb_dataset *ds) {
    const rb_dataset_kind *kind = rb_dataset_kind_find("sparse_npy");
    cr_assert_not_null(kind);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, kind->params, kind->nparams), 0);
    cr_assert_eq(rb_params_set(&p, "path", path), 0);
    if (k) cr_assert_eq(rb_params_set(&p, "k", k), 0);
    memset(ds, 0, sizeof *ds);
    return kind->load(&p, 0, ds);
}

typedef struct sink_rows {
    const char *name[8];
    double value[8];
    size_t count;
} sink_rows;

static int collect(void *ctx, const rb_metric_value *v) {
    sink_rows *s = ctx;
    cr_assert_lt(s->count, 8);
    s->name[s->count] = v->metric->name;
    s->value[s->count++] = v->value;
    return 0;
}

Test(sparse_npy, truth_is_the_spectrum_and_methods_recover_it) {
    uint64_t seed = rbt_seed();
    const char *path = rbt_tmp("x.npy");
    size_t sup[12];
    double val[12];
    write_signal(path, 14, 12, seed, sup, val);
    rb_dataset ds;
    cr_assert_eq(load(path, NULL, &ds), 0, "%s", rb_error_detail());
    const rb_tensor *s = rb_dataset_tensor(&ds, "support"), *c = rb_dataset_tensor(&ds, "coef");
    cr_assert(s && c && s->shape[0] == 12, "the threshold keeps exactly the 12 nonzeros");
    for (size_t j = 0; j < 12; j++) {
        cr_assert_eq(rb_sparse_support_index(s, j), sup[j], "seed %llu", (unsigned long long) seed);
        cr_assert_float_eq(c->data[j], (float) val[j], 1e-6);
    }
    /* The oracle returns the stored samples. */
    uint64_t idx[3] = {0, 5, 16383};
    double out[3];
    cr_assert_eq(ds.sample(&ds, idx, 3, out), 0);
    uint64_t bad = 16384;
    cr_assert_eq(ds.sample(&ds, &bad, 1, out), RB_EINVAL);
    /* sparsefht and spright recover it exactly through the evaluator (one trial: a file). */
    const char *metrics[] = {"success", "support_fp", "support_fn"};
    const char *names[] = {"sparsefht", "spright"};
    for (int mi = 0; mi < 2; mi++) {
        const rb_method *m = rb_method_find(names[mi]);
        cr_assert_not_null(m);
        rb_params p;
        cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
        cr_assert_eq(rb_params_set(&p, "b", "6"), 0);
        cr_assert_eq(rb_params_set(&p, "stages", "4"), 0);
        sink_rows r = {0};
        cr_assert_eq(rb_eval_sparse(m, &p, &ds, seed, metrics, 3, collect, &r), 0, "%s",
                     rb_error_detail());
        cr_assert_eq(r.count, 3);
        cr_assert_eq(r.value[0], 1.0, "%s: success (seed %llu)", names[mi],
                     (unsigned long long) seed);
        /* Several trials of one stored signal would only repeat it: refused by name. */
        cr_assert_eq(rb_params_set(&p, "trials", "3"), 0);
        cr_assert_neq(rb_eval_sparse(m, &p, &ds, seed, metrics, 3, collect, &r), 0);
        cr_assert(strstr(rb_error_detail(), "fresh signals"), "%s", rb_error_detail());
    }
    rb_dataset_free(&ds);
    /* k keeps the k largest only. */
    cr_assert_eq(load(path, "5", &ds), 0, "%s", rb_error_detail());
    cr_assert_eq(rb_dataset_tensor(&ds, "support")->shape[0], 5);
    rb_dataset_free(&ds);
}

/* Every defect named with the file. Those the header shows (axes, length, k above N, no file)
 * the shape hook finds too, with load's message, so that a dry run and the preflight report them
 * before the first cell; those only the data show (a zero signal, NaN) load alone. */
Test(sparse_npy, bad_files_are_named) {
    static const struct {
        const char *what;
        size_t n0, n1; /* shape (n0,) or (n0, n1); n0 == 0: no file */
        double fill;   /* every value; 0 gives the zero signal */
        const char *k;
        int rc, hook_sees;
        const char *msg;
    } cases[] = {
        {"length not a power of two", 12, 0, 1, NULL, RB_ESIZE, 1,
         "bad.npy: a sparse_npy signal is 1-d of length N = 2^n, 2 <= N <= 2^26 (got 1 axes, 12 "
         "values)"},
        {"two axes", 2, 4, 1, NULL, RB_ESIZE, 1, "(got 2 axes, 8 values)"},
        {"k above N", 8, 0, 1, "9", RB_EINVAL, 1, "bad.npy: k = 9 exceeds N = 8"},
        {"no file", 0, 0, 1, NULL, RB_EIO, 1, "bad.npy: cannot open: No such file"},
        {"zero signal", 8, 0, 0, NULL, RB_EINVAL, 0, "bad.npy: the signal is zero"},
        {"NaN", 8, 0, NAN, NULL, RB_ENUMERIC, 0, "bad.npy: element 0 (index (0)) is NaN"},
    };
    const char *path = rbt_tmp("bad.npy");
    const rb_dataset_kind *kind = rb_dataset_kind_find("sparse_npy");
    cr_assert(kind && kind->shape, "sparse_npy has a shape hook");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double x[16];
        for (size_t j = 0; j < 16; j++) x[j] = cases[i].fill;
        size_t shape[2] = {cases[i].n0, cases[i].n1};
        unlink(path);
        if (cases[i].n0)
            cr_assert_eq(rb_npy_write(path, RB_NPY_F64, cases[i].n1 ? 2 : 1, shape, x), 0);
        rb_params p;
        cr_assert_eq(rb_params_init(&p, kind->params, kind->nparams), 0);
        cr_assert_eq(rb_params_set(&p, "path", path), 0);
        if (cases[i].k) cr_assert_eq(rb_params_set(&p, "k", cases[i].k), 0);
        rb_dataset_shape sh = {.queries = RB_SHAPE_UNKNOWN};
        int hrc = kind->shape(&p, &sh);
        char hmsg[1024];
        snprintf(hmsg, sizeof hmsg, "%s", rb_error_detail());
        rb_dataset ds;
        memset(&ds, 0, sizeof ds);
        int rc = kind->load(&p, 0, &ds);
        cr_expect_eq(rc, cases[i].rc, "[%s] load rc %d: %s", cases[i].what, rc, rb_error_detail());
        cr_expect(strstr(rb_error_detail(), cases[i].msg), "[%s] load said '%s', wanted ...%s",
                  cases[i].what, rb_error_detail(), cases[i].msg);
        if (cases[i].hook_sees) {
            cr_expect_eq(hrc, rc, "[%s] shape hook rc %d: %s", cases[i].what, hrc, hmsg);
            cr_expect_str_eq(hmsg, rb_error_detail(), "[%s] the hook's message", cases[i].what);
        } else {
            cr_expect_eq(hrc, 0, "[%s] the hook cannot see the data: %s", cases[i].what, hmsg);
        }
    }
}
