/* Every KV method touches its whole cache in create, so the latency pass's encode (append of the
 * whole cache to a fresh instance, create untimed) measures quantization, not first-touch page
 * faults. Counted with getrusage's minor faults around the append. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "methods/method.h"
#include "tests/testutil.h"

static long minor_faults(void) {
    struct rusage u;
    cr_assert_eq(getrusage(RUSAGE_SELF, &u), 0);
    return u.ru_minflt;
}

/* params: "name=value" pairs, NULL-terminated. */
static void *make(const rb_method *m, const char *const *kv, size_t cap) {
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    for (size_t i = 0; kv && kv[i]; i += 2)
        cr_assert_eq(rb_params_set(&p, kv[i], kv[i + 1]), 0, "%s", kv[i]);
    rb_kv_geom g = {.heads = 4, .head_dim = 128, .capacity = cap};
    void *st = NULL;
    cr_assert_eq(m->kv->create(&p, &g, 1, &st), 0, "%s: %s", m->name, rb_error_detail());
    return st;
}

static void check(const char *name, const char *const *kv) {
    const rb_method *m = rb_method_find(name);
    cr_assert_not_null(m);
    cr_assert_not_null(m->kv);
    size_t T = 4096, n = T * 4 * 128;
    uint64_t seed = rbt_seed();
    float *K = rbt_normal_f32(n, seed, 1), *V = rbt_normal_f32(n, seed, 2);
    /* A small warm-up instance: lazy one-time setup (dispatch, pool) faults outside the count. */
    void *st = make(m, kv, 300);
    cr_assert_eq(m->kv->append(st, K, V, 300), 0, "%s", rb_error_detail());
    m->kv->destroy(st);
    st = make(m, kv, T);
    long f0 = minor_faults();
    int rc = m->kv->append(st, K, V, T);
    long faults = minor_faults() - f0;
    cr_assert_eq(rc, 0, "%s", rb_error_detail());
    /* The cache is several MB (hundreds of 4 KB pages) for every method; a handful of faults is
     * stack or allocator noise. */
    cr_assert_lt(faults, 32, "%s: %ld page faults in append of %zu tokens (seed %llu)", name,
                 faults, T, (unsigned long long) seed);
    m->kv->destroy(st);
    free(K);
    free(V);
}

Test(kv_touch, saw_int4_append_takes_no_page_faults) {
    check("saw_int4", NULL);
}

Test(kv_touch, rtn_kv_append_takes_no_page_faults) {
    check("rtn_kv", NULL);
}

Test(kv_touch, kivi_append_takes_no_page_faults) {
    static const char *const kv[] = {"residual", "32", NULL};
    check("kivi", kv);
}

Test(kv_touch, rotatekv_append_takes_no_page_faults) {
    static const char *const kv[] = {"reorder", "false", NULL};
    check("rotatekv", kv);
    static const char *const raw[] = {"reorder", "false", "quantize", "false", NULL};
    check("rotatekv", raw);
}
