/* The runner checks every cell with its method's `check` before the first runs
 * (rb_codec_ops.check, rb_kv_ops.check). A check that accepts what create rejects lets a config
 * through the preflight to fail hours later; one that rejects what create accepts stops a run
 * that would have worked. So for every method that has one, on shapes at and around each rule
 * and on parameters that break the rules that are not about shape: check and create agree, to
 * the error code. */
#include <criterion/criterion.h>
#include <string.h>

#include "methods/method.h"

/* Parameter overrides tried on top of the defaults ("" = defaults), per method; the names must
 * be in the method's table (a typo fails the test, see set_all). */
static const struct {
    const char *method;
    const char *sets[6][2][2];
} overrides[] = {
    {"octopus", {{{"bits", "2"}, {"split", "2"}}, {{"bits", "4"}, {"split", "1"}}}},
    {"qjl", {{{"m", "100"}}, {{"bits", "2"}, {"m", "100"}}, {{"bits", "8"}}}},
    {"polarquant", {{{"rotation", "none"}}}},
    {"kivi", {{{"group", "32"}, {"residual", "48"}}, {{"group", "16"}, {"residual", "32"}}}},
    {"rotatekv",
     {{{"group", "32"}},
      {{"group", "32"}, {"rotation", "none"}},
      {{"group", "16"}, {"head_group", "2"}},
      {{"bits", "1"}, {"int3_bug", "true"}},
      {{"group", "32"}, {"rotate_v", "false"}}}},
    {"saw_int4", {{{"block", "16"}}, {{"block", "48"}}, {{"block", "256"}}}},
};

static void set_all(rb_params *p, const char *const (*set)[2], size_t n) {
    for (size_t i = 0; i < n && set[i][0]; i++)
        cr_assert_eq(rb_params_set(p, set[i][0], set[i][1]), RB_OK, "%s", rb_error_detail());
}

/* The parameter sets of method m: the defaults, then each override. */
static size_t param_sets(const rb_method *m, rb_params *out, size_t cap) {
    size_t n = 0;
    cr_assert_eq(rb_params_init(&out[n++], m->params, m->nparams), RB_OK);
    for (size_t o = 0; o < sizeof overrides / sizeof overrides[0]; o++) {
        if (strcmp(overrides[o].method, m->name)) continue;
        for (size_t s = 0; s < 6 && overrides[o].sets[s][0][0] && n < cap; s++) {
            cr_assert_eq(rb_params_init(&out[n], m->params, m->nparams), RB_OK);
            set_all(&out[n++], (const char *const(*)[2]) overrides[o].sets[s], 2);
        }
    }
    return n;
}

Test(method_check, codec_check_agrees_with_create) {
    static const size_t dims[] = {1, 2, 3, 5, 6, 15, 16, 17, 48, 64, 99, 100, 128, 192};
    size_t count, checked = 0;
    const rb_method *const *all = rb_methods_all(&count);
    for (size_t k = 0; k < count; k++) {
        const rb_method *m = all[k];
        if (!m->codec || !m->codec->check) continue;
        rb_params ps[8];
        size_t np = param_sets(m, ps, 8);
        for (size_t s = 0; s < np; s++)
            for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
                int want = m->codec->check(&ps[s], dims[d]);
                void *st = NULL;
                int got = m->codec->create(&ps[s], dims[d], 7, &st);
                if (!got) m->codec->destroy(st);
                cr_expect_eq(want, got,
                             "%s (parameter set %zu) at d = %zu: check %d, create %d (%s)", m->name,
                             s, dims[d], want, got, rb_error_detail());
                checked++;
            }
    }
    cr_assert_geq(checked, 5 * 14, "only %zu cases: methods lost their check", checked);
}

Test(method_check, kv_check_agrees_with_create) {
    static const size_t heads[] = {1, 2, 3, 8},
                        head_dims[] = {2, 16, 31, 32, 48, 64, 100, 128, 256};
    static const double ropes[] = {0, 10000};
    size_t count, checked = 0;
    const rb_method *const *all = rb_methods_all(&count);
    for (size_t k = 0; k < count; k++) {
        const rb_method *m = all[k];
        if (!m->kv || !m->kv->check) continue;
        rb_params ps[8];
        size_t np = param_sets(m, ps, 8);
        for (size_t s = 0; s < np; s++)
            for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++)
                for (size_t d = 0; d < sizeof head_dims / sizeof head_dims[0]; d++)
                    for (size_t r = 0; r < 2; r++) {
                        rb_kv_geom g = {.heads = heads[h],
                                        .head_dim = head_dims[d],
                                        .capacity = 64,
                                        .rope_base = ropes[r],
                                        .calib_tokens = 16};
                        int want = m->kv->check(&ps[s], &g);
                        void *st = NULL;
                        int got = m->kv->create(&ps[s], &g, 7, &st);
                        if (!got) m->kv->destroy(st);
                        cr_expect_eq(want, got,
                                     "%s (parameter set %zu), heads %zu x head_dim %zu, rope %g: "
                                     "check %d, create %d (%s)",
                                     m->name, s, heads[h], head_dims[d], ropes[r], want, got,
                                     rb_error_detail());
                        checked++;
                    }
    }
    cr_assert_geq(checked, 3 * 72, "only %zu cases: methods lost their check", checked);
}
