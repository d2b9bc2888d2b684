/* Guard for codec speed work: the codes and decoded vectors of every codec on a fixed seed must
 * keep the exact bits they had before the fast paths (FNV-1a hashes recorded from the plain
 * implementation at git fe11347), with 1 and 2 threads. Set RB_PRINT_CODEC_HASHES=1 to print the
 * table instead of checking it (only when a method's version changes on purpose).
 *
 * Cases whose codec calls OpenBLAS's sgemm (Haar rotations, the QJL sketch) hold their recorded
 * bits only on the OpenBLAS core they were recorded with (RECORDED_CORE): the Debian library
 * picks its kernels by CPU at run time (DYNAMIC_ARCH), and each core type sums in its own order
 * (a Zen 4 gets Cooperlake, a Zen 5 the generic Prescott). Elsewhere those cases are checked
 * against the same case run with the reference kernels (RB_KERNELS=ref) on this machine, which
 * is what the guard is for: our fast paths must not change the bits. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void set_params(rb_params *p, const char *spec) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq, "bad param spec '%s'", spec);
        *eq = 0;
        cr_assert_eq(rb_params_set(p, tok, eq + 1), 0, "%s", rb_error_detail());
    }
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
    set_params(&p, c->params);
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
    char trace[1024];
    rb_kernel_trace(trace, sizeof trace);
    *blas = strstr(trace, "sgemm=") != NULL;
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

Test(codec_bits, codes_and_decodes_keep_their_bits_with_1_and_2_threads, .timeout = 120) {
    int print = getenv("RB_PRINT_CODEC_HASHES") != NULL;
    int saved = rb_threads_get();
    const char *core = openblas_get_corename(), *sel = rb_kernels_selection();
    int same_core = core && strcmp(core, RECORDED_CORE) == 0;
    if (print && !same_core)
        fprintf(stderr, "note: OpenBLAS core %s, not %s: the sgemm cases' hashes are this core's\n",
                core ? core : "(unknown)", RECORDED_CORE);
    size_t against_ref = 0;
    for (int threads = 1; threads <= (print ? 1 : 2); threads++) {
        cr_assert_eq(rb_threads_set(threads), 0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const bits_case *c = &cases[i];
            uint64_t hc, hx, want_c = c->code_hash, want_x = c->xhat_hash;
            int blas;
            run_case(c, &hc, &hx, &blas);
            if (print) {
                printf("    {\"%s\", \"%s\", %zu, %zu, 0x%016llxull, 0x%016llxull},\n", c->method,
                       c->params, c->dim, c->count, (unsigned long long) hc,
                       (unsigned long long) hx);
                continue;
            }
            const char *against = "the recorded hash";
            if (blas && !same_core) { /* this machine's sums: the reference kernels' run */
                int b;
                cr_assert_eq(rb_kernels_select("ref"), 0);
                run_case(c, &want_c, &want_x, &b);
                cr_assert_eq(rb_kernels_select(sel), 0);
                against = "the reference kernels' run (OpenBLAS core differs)";
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
    if (against_ref)
        cr_log_info("OpenBLAS core %s, recorded on %s: %zu sgemm case runs checked against the "
                    "reference kernels instead of the table",
                    core ? core : "(unknown)", RECORDED_CORE, against_ref);
}
