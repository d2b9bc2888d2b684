/* Sparse Walsh-Hadamard recovery (sparsefht, spright, fwht_full): exact recovery against a full
 * FWHT, peeling on crafted collisions, robust bin tests on crafted noisy bins, query counts,
 * determinism across seeds and thread counts, GF(2) maps, the evaluator, invalid parameters. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/dataset.h"
#include "datasets/synth.h"
#include "harness/eval.h"
#include "methods/method.h"
#include "methods/sparse_common.h"
#include "tests/testutil.h"

/* ---- helpers ---- */

/* Method parameters from name/value pairs ending in NULL. */
static const rb_method *method(const char *name, rb_params *p, ...) {
    const rb_method *m = rb_method_find(name);
    cr_assert_not_null(m, "method %s", name);
    cr_assert_eq(m->family, RB_FAMILY_SPARSE);
    cr_assert_eq(rb_params_init(p, m->params, m->nparams), 0);
    va_list ap;
    va_start(ap, p);
    for (const char *n; (n = va_arg(ap, const char *));)
        cr_assert_eq(rb_params_set(p, n, va_arg(ap, const char *)), 0, "%s", rb_error_detail());
    va_end(ap);
    return m;
}

static int ds_query(void *ctx, const uint64_t *idx, size_t count, double *out) {
    const rb_dataset *ds = ctx;
    return ds->sample(ds, idx, count, out);
}

/* A crafted signal: x[i] = sum_j c_j (-1)^<i, k_j> / sqrt(N) + noise_sigma z_i. */
typedef struct crafted {
    unsigned log2n;
    size_t k;
    uint64_t idx[8];
    double coef[8];
    double sigma;
    uint64_t seed;
} crafted;

static int crafted_query(void *ctx, const uint64_t *idx, size_t count, double *out) {
    const crafted *c = ctx;
    double s = 1 / sqrt(ldexp(1, (int) c->log2n));
    for (size_t r = 0; r < count; r++) {
        double acc = 0;
        for (size_t j = 0; j < c->k; j++)
            acc += (__builtin_popcountll(idx[r] & c->idx[j]) & 1) ? -c->coef[j] : c->coef[j];
        out[r] = acc * s;
        if (c->sigma > 0) {
            double z;
            rb_rng_normal_f64(c->seed, 7, idx[r], 1, &z);
            out[r] += c->sigma * z;
        }
    }
    return 0;
}

/* Runs m on an oracle; returns the number found (out has room for cap). */
static size_t run(const rb_method *m, const rb_params *p, rb_signal_oracle *o, uint64_t seed,
                  rb_sparse_coef *out, size_t cap) {
    size_t found = 0;
    int rc = m->sparse->recover(p, o, seed, out, cap, &found);
    cr_assert_eq(rc, 0, "%s: %s", m->name, rb_error_detail());
    cr_assert_leq(found, cap);
    for (size_t i = 1; i < found; i++) cr_assert_lt(out[i - 1].index, out[i].index);
    return found;
}

/* ---- GF(2) maps ---- */

Test(sparse, gf2_inverse_and_transpose) {
    uint64_t seed = rbt_seed();
    for (unsigned n = 1; n <= 64; n += 9) {
        rb_gf2_mat a, inv, t;
        rb_gf2_random_invertible(seed, n, n, &a);
        cr_assert_eq(rb_gf2_inverse(&a, &inv), 0, "seed %llu", (unsigned long long) seed);
        rb_gf2_transpose(&a, &t);
        uint64_t mask = n == 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1;
        for (int r = 0; r < 50; r++) {
            uint32_t w[2];
            rb_rng_bits(seed, 99, 2 * (uint64_t) r, 2, w);
            uint64_t v = ((uint64_t) w[1] << 32 | w[0]) & mask, u = (v * 0x9e3779b97f4a7c15) & mask;
            cr_assert_eq(rb_gf2_apply(&inv, rb_gf2_apply(&a, v)), v, "n %u seed %llu", n,
                         (unsigned long long) seed);
            /* <A v, u> = <v, A^T u> */
            cr_assert_eq(__builtin_popcountll(rb_gf2_apply(&a, v) & u) & 1,
                         __builtin_popcountll(v & rb_gf2_apply(&t, u)) & 1);
            cr_assert_eq(rb_gf2_apply_t(&a, u), rb_gf2_apply(&t, u));
        }
    }
    rb_gf2_mat rot, sing = {.n = 3, .col = {1, 2, 3}}, inv;
    rb_gf2_rotation(16, 5, &rot);
    cr_assert_eq(rb_gf2_apply(&rot, 0x8001), (0x8001u << 5 | 0x8001u >> 11) & 0xffff);
    cr_assert_eq(rb_gf2_inverse(&sing, &inv), -1);
}

/* ---- exact recovery against a full FWHT of the materialized signal ---- */

Test(sparse, noiseless_recovery_equals_the_full_fwht) {
    uint64_t seed = rbt_seed();
    unsigned n = 10;
    size_t N = (size_t) 1 << n;
    rb_dataset ds;
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", seed, "log2n", "10", "k", "8", "amplitude",
                                  "gaussian", "amp", "3", NULL),
                 0);
    double *x = malloc(N * sizeof *x);
    uint64_t *all = malloc(N * sizeof *all);
    for (size_t i = 0; i < N; i++) all[i] = i;
    cr_assert_eq(ds.sample(&ds, all, N, x), 0);
    cr_assert_eq(rb_fwht_f64(x, N, 1, N, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
    const char *cfg[][8] = {
        {"sparsefht", "b", "6", "stages", "4", "hashing", "random", NULL},
        {"sparsefht", "b", "6", "stages", "4", "hashing", "cyclic", NULL},
        {"spright", "b", "6", "stages", "4", "hashing", "random", NULL},
        {"spright", "b", "5", "stages", "3", "chains", "3", NULL},
        {"fwht_full", "k", "8", NULL},
    };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        rb_params p;
        const rb_method *m = cfg[c][3] ? method(cfg[c][0], &p, cfg[c][1], cfg[c][2], cfg[c][3],
                                                cfg[c][4], cfg[c][5], cfg[c][6], NULL)
                                       : method(cfg[c][0], &p, cfg[c][1], cfg[c][2], NULL);
        rb_signal_oracle o = {n, ds_query, &ds, 0};
        rb_sparse_coef out[64];
        size_t found = run(m, &p, &o, seed, out, 64);
        size_t nz = 0, must = 0;
        double xmax = 0;
        for (size_t i = 0; i < N; i++) xmax = fmax(xmax, fabs(x[i]));
        for (size_t i = 0; i < N; i++) nz += fabs(x[i]) > 1e-9, must += fabs(x[i]) >= 1e-3 * xmax;
        if (strcmp(m->name, "spright") == 0) {
            /* spright drops a single-ton below its amplitude floor, 1e-8 of the largest bin
             * energy (methods/spright.c), which is at most (8 max|X|)^2 for 8 coefficients: a
             * coefficient under 8e-4 max|X| need not be found (a Gaussian amplitude lands there
             * about once in 700 runs; seed 14605034290342887904 has X[800] = 8.1e-5 beside
             * max|X| = 6.07). Every one above 1e-3 max|X| must be. */
            cr_assert(found >= must && found <= nz,
                      "%s (config %zu): found %zu, %zu above 1e-3 max|X|, %zu nonzero, seed %llu",
                      m->name, c, found, must, nz, (unsigned long long) seed);
            size_t hit = 0;
            for (size_t i = 0; i < found; i++) hit += fabs(x[out[i].index]) >= 1e-3 * xmax;
            cr_assert_eq(hit, must, "%s (config %zu): %zu of the %zu above 1e-3 max|X|, seed %llu",
                         m->name, c, hit, must, (unsigned long long) seed);
        } else {
            cr_assert_eq(found, nz, "%s (config %zu): found %zu of %zu, seed %llu", m->name, c,
                         found, nz, (unsigned long long) seed);
        }
        for (size_t i = 0; i < found; i++)
            cr_assert(fabs(out[i].value - x[out[i].index]) <= 1e-9 * fabs(x[out[i].index]),
                      "%s: X[%llu] = %.17g, full FWHT %.17g, seed %llu", m->name,
                      (unsigned long long) out[i].index, out[i].value, x[out[i].index],
                      (unsigned long long) seed);
    }
    free(x);
    free(all);
    rb_dataset_free(&ds);
}

/* ---- peeling on crafted collisions ----
 * Cyclic hashing with n = 8, b = 2, C = 2 bins stage 0 on bits 0-1 and stage 1 on bits 4-5. */

Test(sparse, peeling_resolves_a_collision_through_the_other_stage) {
    /* 0x01 and 0x11 share stage 0's bin 1 but not stage 1's bins (0 and 1); 0x80 is alone. */
    crafted c = {8, 3, {0x01, 0x11, 0x80}, {1.5, -0.7, 2.0}, 0, 0};
    const char *names[] = {"sparsefht", "spright"};
    for (int t = 0; t < 2; t++) {
        rb_params p;
        const rb_method *m =
            method(names[t], &p, "b", "2", "stages", "2", "hashing", "cyclic", NULL);
        rb_signal_oracle o = {8, crafted_query, &c, 0};
        rb_sparse_coef out[8];
        size_t found = run(m, &p, &o, 1, out, 8);
        cr_assert_eq(found, 3, "%s found %zu", m->name, found);
        cr_assert(out[0].index == 0x01 && fabs(out[0].value - 1.5) < 1e-12);
        cr_assert(out[1].index == 0x11 && fabs(out[1].value + 0.7) < 1e-12);
        cr_assert(out[2].index == 0x80 && fabs(out[2].value - 2.0) < 1e-12);
    }
}

Test(sparse, peeling_stops_on_a_collision_in_every_stage_without_inventing_coefficients) {
    /* 0x01 and 0x05 share bin 1 in stage 0 and bin 0 in stage 1: a multi-ton everywhere. */
    crafted c = {8, 3, {0x01, 0x05, 0x80}, {1.5, -0.7, 2.0}, 0, 0};
    rb_params p;
    const rb_method *m =
        method("sparsefht", &p, "b", "2", "stages", "2", "hashing", "cyclic", NULL);
    rb_signal_oracle o = {8, crafted_query, &c, 0};
    rb_sparse_coef out[8];
    size_t found = run(m, &p, &o, 1, out, 8);
    cr_assert_eq(found, 1, "found %zu", found);
    cr_assert(out[0].index == 0x80 && fabs(out[0].value - 2.0) < 1e-12);
}

/* ---- robust bin detection on crafted noisy bins ---- */

/* spright on the crafted signal c (N = 2^12): 2 cyclic stages of 64 bins (bits 0-5 and 6-11),
 * 5 delay chains; *m and *p for further runs; returns the number found (out has room for 16). */
static size_t spright_2x64(crafted *c, const rb_method **m, rb_params *p, rb_sparse_coef *out) {
    *m = method("spright", p, "b", "6", "stages", "2", "chains", "5", "hashing", "cyclic", NULL);
    rb_signal_oracle o = {12, crafted_query, c, 0};
    return run(*m, p, &o, c->seed, out, 16);
}

Test(sparse, robust_bins_find_noisy_single_tons_and_reject_pure_noise) {
    uint64_t seed = rbt_seed();
    /* Per-bin noise: sigma^2 N / B = 1e-6 * 2^12 / 2^6 = 6.4e-5 against |X|^2 >= 1: 42 dB. The
     * ratio test of sparsefht (tolerance 1e-8) must refuse every one of these bins. */
    crafted c = {12, 3, {0x001, 0x0c2, 0xf83}, {1.0, -1.0, 1.2}, 1e-3, seed};
    /* Cyclic hashing: stage 0 bins by bits 0-5, where the three indices differ, so no two share
     * a bin in every stage. With random hashing two of them did in about 7e-4 of the seeds (3 x
     * (63 / 4095)^2), and no decoder can separate those. */
    rb_params p;
    const rb_method *m;
    rb_sparse_coef out[16];
    size_t found = spright_2x64(&c, &m, &p, out);
    cr_assert_eq(found, 3, "found %zu, seed %llu", found, (unsigned long long) seed);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(out[i].index, c.idx[i], "seed %llu", (unsigned long long) seed);
        cr_assert_lt(fabs(out[i].value - c.coef[i]), 0.05, "seed %llu", (unsigned long long) seed);
    }
    rb_params q;
    const rb_method *s = method("sparsefht", &q, "b", "6", "stages", "2", NULL);
    rb_signal_oracle o2 = {12, crafted_query, &c, 0};
    cr_assert_eq(run(s, &q, &o2, seed, out, 16), 0, "the noiseless test accepted a noisy bin");
    /* Noise alone: every bin is a zero-ton or a multi-ton, nothing is reported. */
    crafted z = {12, 0, {0}, {0}, 1e-3, seed};
    rb_signal_oracle o3 = {12, crafted_query, &z, 0};
    cr_assert_eq(run(m, &p, &o3, seed, out, 16), 0, "seed %llu", (unsigned long long) seed);
}

/* No 10x jump between the sorted bin energies separates the noise from the signal when the
 * amplitudes step up gradually: per-bin energies about 1 (noise), 3.5, 25 and 200 times the
 * noise. Averaging every bin then took the signal for noise (about 11 times the true level) and
 * the amplitude floor (10 x the estimate) dropped the coefficients at 25; the median bin, a
 * zero-ton here, keeps them. The two at 3.5 lie below the floor by design. */
Test(sparse, spright_noise_estimate_without_a_jump_keeps_the_medium_coefficients) {
    uint64_t seed = rbt_seed();
    /* Per-bin noise sigma^2 N / B = 1e-6 * 2^12 / 2^6 = 6.4e-5; |X|^2 = 3.5, 25, 200 times it. */
    const double weak = sqrt(3.5 * 6.4e-5), medium = sqrt(25 * 6.4e-5), strong = sqrt(200 * 6.4e-5);
    /* Bits 0-5 and bits 6-11 (the two cyclic stages' bins) differ between every pair. */
    crafted c = {12,
                 8,
                 {0x041, 0x0c2, 0x143, 0x1c4, 0x245, 0x2c6, 0x347, 0x3c8},
                 {weak, -weak, medium, -medium, medium, strong, -strong, strong},
                 1e-3,
                 seed};
    rb_params p;
    const rb_method *m;
    rb_sparse_coef out[16];
    size_t found = spright_2x64(&c, &m, &p, out);
    for (size_t j = 2; j < 8; j++) {
        size_t i = 0;
        while (i < found && out[i].index != c.idx[j]) i++;
        cr_assert_lt(i, found, "coefficient %zu (%g at %#llx) not found; %zu found, seed %llu", j,
                     c.coef[j], (unsigned long long) c.idx[j], found, (unsigned long long) seed);
        cr_assert_gt(out[i].value * c.coef[j], 0, "sign of coefficient %zu, seed %llu", j,
                     (unsigned long long) seed);
    }
    for (size_t i = 0; i < found; i++) {
        size_t j = 0;
        while (j < 8 && out[i].index != c.idx[j]) j++;
        cr_assert_lt(j, 8, "reported %#llx, not in the signal (seed %llu)",
                     (unsigned long long) out[i].index, (unsigned long long) seed);
    }
}

/* ---- query counts ---- */

Test(sparse, query_counts_are_exact) {
    crafted c = {14, 2, {3, 77}, {1, 1}, 0, 0};
    struct {
        const char *m, *b, *stages, *chains;
        uint64_t want;
    } cases[] = {
        {"sparsefht", "4", "3", NULL, 3 * 16 * (14 - 4 + 1)},
        {"sparsefht", "14", "1", NULL, 1 * 16384 * 1},
        {"spright", "6", "3", "1", 3 * 64 * 15},
        {"spright", "5", "2", "4", 2 * 32 * 4 * 15},
        {"fwht_full", NULL, NULL, NULL, 16384},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rb_params p;
        const rb_method *m =
            !cases[i].b ? method(cases[i].m, &p, NULL)
            : !cases[i].chains
                ? method(cases[i].m, &p, "b", cases[i].b, "stages", cases[i].stages, NULL)
                : method(cases[i].m, &p, "b", cases[i].b, "stages", cases[i].stages, "chains",
                         cases[i].chains, NULL);
        rb_signal_oracle o = {14, crafted_query, &c, 0};
        rb_sparse_coef out[16];
        size_t found = run(m, &p, &o, 5, out, 16);
        cr_assert_eq(o.queries, cases[i].want, "case %zu: %llu queries", i,
                     (unsigned long long) o.queries);
        cr_assert_eq(found, 2, "case %zu", i);
    }
}

/* ---- determinism ---- */

static size_t recover_at(const char *name, int threads, uint64_t seed, rb_sparse_coef *out) {
    rb_dataset ds;
    /* spright on a noisy signal (per-bin SNR 31 dB) with random chain offsets; sparsefht
     * noiseless. */
    int noisy = !strcmp(name, "spright");
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", seed, "log2n", "20", "k", "40", "noise",
                                  noisy ? "true" : "false", "snr_db", "70", NULL),
                 0);
    rb_params p;
    const rb_method *m =
        noisy ? method(name, &p, "b", "7", "stages", "3", "hashing", "random", "chains", "3", NULL)
              : method(name, &p, "b", "7", "stages", "3", "hashing", "random", NULL);
    cr_assert_eq(rb_threads_set(threads), 0);
    rb_signal_oracle o = {20, ds_query, &ds, 0};
    size_t found = run(m, &p, &o, seed, out, 256);
    rb_dataset_free(&ds);
    return found;
}

Test(sparse, same_seed_same_bits_with_one_or_two_threads) {
    uint64_t seed = rbt_seed();
    const char *names[] = {"sparsefht", "spright"};
    for (int t = 0; t < 2; t++) {
        rb_sparse_coef a[256], b[256], c[256];
        size_t na = recover_at(names[t], 1, seed, a), nb = recover_at(names[t], 2, seed, b),
               nc = recover_at(names[t], 2, seed + 1, c);
        cr_assert_eq(na, nb, "%s seed %llu", names[t], (unsigned long long) seed);
        cr_assert_eq(memcmp(a, b, na * sizeof *a), 0, "%s seed %llu", names[t],
                     (unsigned long long) seed);
        cr_assert(nc != na || memcmp(a, c, na * sizeof *a) != 0, "another seed, the same result");
    }
    rb_threads_set(0);
}

/* ---- invalid parameters ---- */

Test(sparse, invalid_parameters_are_rejected_with_the_reason) {
    crafted c = {6, 1, {3}, {1}, 0, 0};
    rb_sparse_coef out[4];
    size_t found;
    rb_params p;
    const rb_method *m = method("sparsefht", &p, "b", "8", NULL);
    rb_signal_oracle o = {6, crafted_query, &c, 0};
    cr_assert_eq(m->sparse->recover(&p, &o, 1, out, 4, &found), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "exceeds the signal length"), "%s", rb_error_detail());
    cr_assert_eq(o.queries, 0);
    m = method("spright", &p, "b", "10", NULL);
    cr_assert_eq(m->sparse->recover(&p, &o, 1, out, 4, &found), RB_EINVAL);
    m = method("spright", &p, "b", "4", "ml", "true", NULL);
    rb_signal_oracle big = {40, crafted_query, &c, 0};
    cr_assert_eq(m->sparse->recover(&p, &big, 1, out, 4, &found), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "ml"), "%s", rb_error_detail());
    m = method("fwht_full", &p, NULL);
    cr_assert_eq(m->sparse->recover(&p, &big, 1, out, 4, &found), RB_ESIZE);
    cr_assert(strstr(rb_error_detail(), "does not fit"), "%s", rb_error_detail());
    /* Parameter tables: stages out of range; the dataset's K = 0, K > N and SNR out of range. */
    cr_assert_eq(rb_params_set(&p, "trials", "0"), RB_EINVAL);
    m = method("sparsefht", &p, NULL);
    cr_assert_eq(rb_params_set(&p, "stages", "17"), RB_EINVAL);
    rb_dataset ds;
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", 1, "k", "0", NULL), RB_EINVAL);
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", 1, "log2n", "3", "k", "9", NULL), RB_EINVAL);
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", 1, "noise", "true", "snr_db", "400", NULL),
                 RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "snr_db"), "%s", rb_error_detail());
}

/* ---- huge N: nothing of length N ---- */

Test(sparse, recovers_at_n_2_to_the_48) {
    uint64_t seed = rbt_seed();
    rb_dataset ds;
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", seed, "log2n", "48", "k", "10", NULL), 0);
    rb_params p;
    const rb_method *m = method("sparsefht", &p, "b", "6", "stages", "4", NULL);
    rb_signal_oracle o = {48, ds_query, &ds, 0};
    rb_sparse_coef out[64];
    size_t found = run(m, &p, &o, seed, out, 64);
    const rb_tensor *sup = rb_dataset_tensor(&ds, "support");
    cr_assert_eq(found, 10, "seed %llu", (unsigned long long) seed);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(out[i].index, rb_sparse_support_index(sup, i), "seed %llu",
                     (unsigned long long) seed);
    cr_assert_eq(o.queries, 4 * 64 * (48 - 6 + 1));
    rb_dataset_free(&ds);
}

/* ---- the evaluator ---- */

typedef struct sink_rows {
    char name[16][32];
    double value[16];
    size_t n[16];
    size_t count;
} sink_rows;

static int collect(void *ctx, const rb_metric_value *v) {
    sink_rows *s = ctx;
    cr_assert_lt(s->count, 16);
    snprintf(s->name[s->count], 32, "%s", v->metric->name);
    s->value[s->count] = v->value;
    s->n[s->count++] = v->n;
    return 0;
}

static double row(const sink_rows *s, const char *name) {
    for (size_t i = 0; i < s->count; i++)
        if (!strcmp(s->name[i], name)) return s->value[i];
    cr_assert_fail("no metric %s", name);
    return NAN;
}

Test(sparse, evaluator_scores_trials) {
    uint64_t seed = rbt_seed();
    rb_dataset ds;
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", seed, "log2n", "16", "k", "8", NULL), 0);
    const char *metrics[] = {"success",    "success_lo", "success_hi", "support_fp",
                             "support_fn", "nmse",       "samples",    "samples_distinct",
                             "time",       "speedup"};
    rb_params p;
    const rb_method *m =
        method("sparsefht", &p, "b", "6", "stages", "4", "trials", "7", "hashing", "random", NULL);
    sink_rows s = {0};
    cr_assert_eq(rb_eval_sparse(m, &p, &ds, seed, metrics, 10, collect, &s), 0, "%s",
                 rb_error_detail());
    cr_assert_eq(s.count, 10);
    cr_assert_eq(row(&s, "samples"), 4 * 64 * 11);
    cr_assert_leq(row(&s, "samples_distinct"), 4 * 64 * 11);
    cr_assert_gt(row(&s, "samples_distinct"), 3 * 64 * 11);
    cr_assert_eq(row(&s, "success"), 1.0, "seed %llu", (unsigned long long) seed);
    cr_assert_eq(row(&s, "support_fp") + row(&s, "support_fn") + row(&s, "nmse"), 0);
    cr_assert(row(&s, "success_lo") > 0.5 && row(&s, "success_hi") == 1.0);
    cr_assert_gt(row(&s, "time"), 0);
    cr_assert_gt(row(&s, "speedup"), 0);
    cr_assert_eq(s.n[0], 7);
    /* One trial that finds nothing: every support index is a miss. */
    rb_params q;
    m = method("sparsefht", &q, "b", "6", "stages", "1", "zero_tol", "1e9", NULL);
    sink_rows t = {0};
    cr_assert_eq(rb_eval_sparse(m, &q, &ds, seed, metrics, 7, collect, &t), 0);
    cr_assert_eq(row(&t, "success"), 0);
    cr_assert_eq(row(&t, "support_fn"), 8);
    cr_assert_eq(row(&t, "nmse"), 1);
    rb_dataset_free(&ds);
}

Test(sparse, wilson_interval) {
    double lo, hi;
    rb_wilson_interval(0, 10, 1.959963984540054, &lo, &hi);
    cr_assert(lo == 0 && fabs(hi - 0.27753) < 1e-4, "%g %g", lo, hi);
    rb_wilson_interval(5, 10, 1.959963984540054, &lo, &hi);
    cr_assert(fabs(lo - 0.23659) < 1e-4 && fabs(hi - 0.76341) < 1e-4, "%g %g", lo, hi);
    rb_wilson_interval(200, 200, 1.959963984540054, &lo, &hi);
    cr_assert(fabs(lo - 0.98116) < 1e-4 && hi == 1, "%g %g", lo, hi);
}

/* ---- scale: the decoders' floors must follow the signal, not assume |X| ~ 1 ---- */

Test(sparse, spright_recovers_the_same_support_at_any_signal_scale) {
    uint64_t seed = rbt_seed();
    const char *amps[] = {"1e-6", "1", "1e6"};
    for (size_t a = 0; a < 3; a++) {
        rb_dataset ds;
        cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", seed, "log2n", "14", "k", "10", "amp",
                                      amps[a], NULL),
                     0);
        rb_params p;
        const rb_method *m = method("spright", &p, "b", "6", "stages", "3", NULL);
        rb_signal_oracle o = {14, ds_query, &ds, 0};
        rb_sparse_coef out[64];
        size_t found = run(m, &p, &o, seed, out, 64);
        const rb_tensor *sup = rb_dataset_tensor(&ds, "support"),
                        *coef = rb_dataset_tensor(&ds, "coef");
        cr_assert_eq(found, 10, "amp %s: found %zu, seed %llu", amps[a], found,
                     (unsigned long long) seed);
        for (size_t i = 0; i < 10; i++) {
            cr_assert_eq(out[i].index, rb_sparse_support_index(sup, i), "amp %s seed %llu", amps[a],
                         (unsigned long long) seed);
            cr_assert_leq(fabs(out[i].value - coef->data[i]), 1e-9 * fabs(coef->data[i]),
                          "amp %s seed %llu", amps[a], (unsigned long long) seed);
        }
        rb_dataset_free(&ds);
    }
}

/* A 3-ton that the single-bit delays cannot tell from a single-ton: k1, k2, k3 share stage 0's
 * bin, amplitudes +1, +1, -1, and no bit has k1 = k2 != k3, so every U[e_q] = +-1 as for one
 * coefficient at k1 ^ k2 ^ k3 = 0x21. Peeling recovers (stage 1 separates them and peels the
 * -1 ghost at 0x21), but with noise the +1 and -1 at 0x21 leave a residue of ~sigma, which must
 * not be reported as a coefficient. */
Test(sparse, a_cancelled_alias_is_not_reported) {
    uint64_t seed = rbt_seed();
    crafted c = {8, 3, {0x01, 0x11, 0x31}, {1.0, -1.0, 1.0}, 1e-9, seed};
    rb_params p;
    const rb_method *m = method("spright", &p, "b", "2", "stages", "2", "hashing", "cyclic", NULL);
    rb_signal_oracle o = {8, crafted_query, &c, 0};
    rb_sparse_coef out[8];
    size_t found = run(m, &p, &o, seed, out, 8);
    cr_assert_eq(found, 3, "found %zu (index %llu = %g), seed %llu", found,
                 (unsigned long long) out[found > 1 ? 1 : 0].index, out[found > 1 ? 1 : 0].value,
                 (unsigned long long) seed);
    for (size_t i = 0; i < 3; i++)
        cr_assert(out[i].index == c.idx[i] && fabs(out[i].value - c.coef[i]) < 1e-6, "seed %llu",
                  (unsigned long long) seed);
}

/* The memory metric sees what a recovery allocates: fwht_full holds the whole signal (2^22
 * doubles = 32 MiB), sparsefht a few C x B x P arrays (well under 8 MiB at 4 x 64 x 17). Linux
 * only (VmHWM); elsewhere the metric is NaN and the test says so. */
Test(sparse, memory_metric_separates_dense_from_sublinear) {
    uint64_t seed = rbt_seed();
    rb_dataset ds;
    cr_assert_eq(rbt_load_dataset(&ds, "sparse_wht", seed, "log2n", "22", "k", "8", NULL), 0);
    const char *metrics[] = {"memory"};
    rb_params p, q;
    const rb_method *full = method("fwht_full", &p, "k", "8", NULL);
    const rb_method *sub = method("sparsefht", &q, "b", "6", "stages", "4", NULL);
    sink_rows a = {0}, b = {0};
    cr_assert_eq(rb_eval_sparse(full, &p, &ds, seed, metrics, 1, collect, &a), 0, "%s",
                 rb_error_detail());
    cr_assert_eq(rb_eval_sparse(sub, &q, &ds, seed, metrics, 1, collect, &b), 0, "%s",
                 rb_error_detail());
    double dense = row(&a, "memory"), sparse = row(&b, "memory");
    if (isnan(dense)) {
        cr_log_warn("no /proc/self/clear_refs: the memory metric is NaN here");
        rb_dataset_free(&ds);
        return;
    }
    cr_assert_geq(dense, 30, "fwht_full holds 32 MiB of samples: %g MiB", dense);
    cr_assert_lt(sparse, 8, "sparsefht: %g MiB", sparse);
    rb_dataset_free(&ds);
}
