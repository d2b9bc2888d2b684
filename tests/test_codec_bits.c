/* Guard for codec speed work: the codes and decoded vectors of every codec on a fixed seed must
 * keep the exact bits they had before the fast paths (FNV-1a hashes recorded from the plain
 * implementation at git fe11347), with 1 and 2 threads. Set RB_PRINT_CODEC_HASHES=1 to print the
 * table instead of checking it (only when a method's version changes on purpose).
 *
 * Cases whose codec calls OpenBLAS's sgemm (Haar rotations, the QJL sketch) hold their recorded
 * bits only on the OpenBLAS core they were recorded with (RECORDED_CORE): the Debian library
 * picks its kernels by CPU at run time (DYNAMIC_ARCH), and each core type sums in its own order
 * (a Zen 4 gets Cooperlake, a Zen 5 the generic Prescott). On another core they are checked
 * against that core's recorded hashes (core_cases), and on a core with none against the same
 * case run once with the reference kernels (RB_KERNELS=ref, 1 thread) on this machine, which is
 * what the guard is for: our fast paths must not change the bits, at either thread count. An
 * sgemm case whose table hashes are 0 (its codec changed on purpose on a machine without
 * RECORDED_CORE) takes that reference run on RECORDED_CORE as well. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/linalg.h"
#include "methods/method.h"
#include "tests/testutil.h"

typedef struct bits_case {
    const char *method, *params; /* params: "name=value,name=value" */
    size_t dim, count;
    uint64_t code_hash, xhat_hash;
} bits_case;

static const uint64_t GUARD_SEED = 0x6775617264ull; /* "guard" */

static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Normal rows, with a zero row, a huge and a tiny one among them. */
static float *inputs(size_t count, size_t d) {
    float *x = rbt_normal_f32(count * d, GUARD_SEED, d);
    memset(x + 1 * d, 0, d * sizeof *x);
    for (size_t j = 0; j < d && count > 7; j++) {
        x[5 * d + j] *= 1e30f;
        x[7 * d + j] *= 1e-30f;
    }
    return x;
}

/* The OpenBLAS core (openblas_get_corename) the table's sgemm cases were recorded on. */
static const char RECORDED_CORE[] = "Prescott";

/* Runs case c: its hashes, and whether its codec called sgemm (the calling thread's kernel
 * trace, which the pool's workers report into). */
static void run_case(const bits_case *c, uint64_t *hc, uint64_t *hx, int *blas) {
    const rb_method *m = rb_method_find(c->method);
    cr_assert_not_null(m, "%s", c->method);
    rb_params p;
    cr_assert_eq(rb_params_init(&p, m->params, m->nparams), 0);
    cr_assert_eq(rb_params_set_spec(&p, c->params), 0, "%s", rb_error_detail());
    void *st = NULL;
    cr_assert_eq(m->codec->create(&p, c->dim, GUARD_SEED, &st), 0, "%s", rb_error_detail());
    size_t cb = m->codec->code_bytes(st);
    float *x = inputs(c->count, c->dim), *y = malloc(c->count * c->dim * sizeof *y);
    uint8_t *codes = malloc(c->count * cb);
    cr_assert(y && codes);
    rb_kernel_trace_reset();
    cr_assert_eq(m->codec->encode(st, x, c->count, codes), 0, "%s %s: %s", c->method, c->params,
                 rb_error_detail());
    cr_assert_eq(m->codec->decode(st, codes, c->count, y), 0, "%s", rb_error_detail());
    *hc = fnv1a(codes, c->count * cb, 0xcbf29ce484222325ull);
    *hx = fnv1a(y, c->count * c->dim * sizeof *y, 0xcbf29ce484222325ull);
    *blas = rb_kernel_last(&rb_op_sgemm) != NULL;
    m->codec->destroy(st);
    free(x);
    free(y);
    free(codes);
}

/* clang-format off */
static const bits_case cases[] = {
#include "tests/codec_bits_table.h"
};
/* clang-format on */

/* The sgemm cases' hashes on other OpenBLAS cores, printed by RB_PRINT_CODEC_HASHES=1 on such a
 * machine (the lines marked sgemm) where the test, with no hashes for that core, had matched
 * them against the reference kernels' run. */
typedef struct core_case {
    const char *core, *method, *params;
    size_t dim, count;
    uint64_t code_hash, xhat_hash;
} core_case;
/* clang-format off */
static const core_case core_cases[] = {
#include "tests/codec_bits_cores.h"
};
/* clang-format on */

static const core_case *core_hashes(const char *core, const bits_case *c) {
    for (size_t i = 0; core && i < sizeof core_cases / sizeof core_cases[0]; i++) {
        const core_case *k = &core_cases[i];
        if (!strcasecmp(k->core, core) && !strcmp(k->method, c->method) &&
            !strcmp(k->params, c->params) && k->dim == c->dim && k->count == c->count)
            return k;
    }
    return NULL;
}

Test(codec_bits, codes_and_decodes_keep_their_bits_with_1_and_2_threads, .timeout = 120) {
    enum { N = sizeof cases / sizeof cases[0] };
    int print = getenv("RB_PRINT_CODEC_HASHES") != NULL;
    int saved = rb_threads_get();
    const char *core = rb_blas_core(), *sel = rb_kernels_selection();
    int same_core = core && strcmp(core, RECORDED_CORE) == 0;
    if (print)
        printf("/* OpenBLAS core %s (the table's: %s) */\n", core ? core : "(unknown)",
               RECORDED_CORE);
    uint64_t ref_c[N], ref_x[N];
    int have_ref[N] = {0};
    size_t against_ref = 0, against_core = 0;
    for (int threads = 1; threads <= (print ? 1 : 2); threads++) {
        cr_assert_eq(rb_threads_set(threads), 0);
        for (size_t i = 0; i < N; i++) {
            const bits_case *c = &cases[i];
            uint64_t hc, hx, want_c = c->code_hash, want_x = c->xhat_hash;
            int blas;
            run_case(c, &hc, &hx, &blas);
            if (print) {
                printf("    {\"%s\", \"%s\", %zu, %zu, 0x%016llxull, 0x%016llxull},%s\n", c->method,
                       c->params, c->dim, c->count, (unsigned long long) hc,
                       (unsigned long long) hx, blas ? " /* sgemm */" : "");
                continue;
            }
            const char *against = "the recorded hash";
            int recorded = c->code_hash || c->xhat_hash;
            cr_assert(recorded || blas, "%s %s: no hashes, and no sgemm to excuse it", c->method,
                      c->params);
            const core_case *k = blas && !same_core ? core_hashes(core, c) : NULL;
            if (k) {
                want_c = k->code_hash, want_x = k->xhat_hash;
                against = "the hash recorded on this OpenBLAS core";
                against_core++;
            } else if (blas && (!same_core || !recorded)) { /* the reference kernels' run */
                if (!have_ref[i]) {
                    int b;
                    cr_assert_eq(rb_kernels_select("ref"), 0);
                    cr_assert_eq(rb_threads_set(1), 0);
                    run_case(c, &ref_c[i], &ref_x[i], &b);
                    cr_assert_eq(rb_threads_set(threads), 0);
                    cr_assert_eq(rb_kernels_select(sel), 0);
                    have_ref[i] = 1;
                }
                want_c = ref_c[i], want_x = ref_x[i];
                against = "the reference kernels' 1-thread run (no hashes for this OpenBLAS core)";
                against_ref++;
            }
            cr_expect_eq(hc, want_c, "%s %s d=%zu count=%zu threads=%d: codes changed (against %s)",
                         c->method, c->params, c->dim, c->count, threads, against);
            cr_expect_eq(hx, want_x,
                         "%s %s d=%zu count=%zu threads=%d: decode changed (against %s)", c->method,
                         c->params, c->dim, c->count, threads, against);
        }
    }
    rb_threads_set(saved);
    if (against_core || against_ref)
        cr_log_info("OpenBLAS core %s, the table's %s: %zu sgemm case runs checked against this "
                    "core's hashes, %zu against the reference kernels",
                    core ? core : "(unknown)", RECORDED_CORE, against_core, against_ref);
}
