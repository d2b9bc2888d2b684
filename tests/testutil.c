/* Shared helpers for the tests. */
#include "tests/testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "kernels/rhtcodec.h"
#include "kernels/rng.h"
#include "kernels/rotate.h"
#include "kernels/rowcodec.h"

uint64_t rbt_seed(void) {
    const char *env = getenv("RB_TEST_SEED");
    if (env) return strtoull(env, NULL, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return rb_seed_derive((uint64_t) ts.tv_nsec, (uint64_t) ts.tv_sec, (uint64_t) getpid());
}

float *rbt_normal_f32(size_t n, uint64_t seed, uint64_t stream) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    rb_rng_normal_f32(seed, stream, 0, n, x);
    return x;
}

double *rbt_normal_f64(size_t n, uint64_t seed, uint64_t stream) {
    double *x = malloc((n ? n : 1) * sizeof *x);
    rb_rng_normal_f64(seed, stream, 0, n, x);
    return x;
}

double rbt_max_relerr_f32(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double) a[i] - b[i]) / fmax(1.0, fabs((double) b[i]));
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* Everything left in f, NUL-terminated (the caller frees it). */
static char *read_all(FILE *f) {
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    for (size_t k; (k = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (n + 1 == cap) s = realloc(s, cap *= 2);
    }
    s[n] = '\0';
    return s;
}

/* Runs `$RB_TEST_BIN args` (stderr to a separate buffer), returns the exit status. */
int rbt_run_cli(const char *args, char **out, char **err) {
    const char *bin = getenv("RB_TEST_BIN");
    if (!bin || !*bin)
        cr_skip_test("RB_TEST_BIN is not set (make test sets it); skipping CLI test");
    char errpath[] = "/tmp/rbtest_cli_XXXXXX";
    int fd = mkstemp(errpath);
    cr_assert_geq(fd, 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", bin, args, errpath);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    *out = read_all(p);
    int st = pclose(p);
    FILE *e = fdopen(fd, "r");
    *err = read_all(e);
    fclose(e);
    remove(errpath);
    cr_assert(WIFEXITED(st), "%s did not exit normally", cmd);
    return WEXITSTATUS(st);
}

/* Every directory this test process made, newest last: rbt_tmp names files in the newest, and
 * rbt_tmpdir_remove deletes them all (tests that make one per case in a loop leak none). */
enum { TMPDIRS_MAX = 16 };
static char tmpdirs[TMPDIRS_MAX][96];
static int ntmpdirs;
static const char *newest_tmpdir = tmpdirs[0];

const char *rbt_tmpdir_make(const char *tag) {
    cr_assert_lt(ntmpdirs, TMPDIRS_MAX, "more than %d scratch directories in one test",
                 TMPDIRS_MAX);
    char *d = tmpdirs[ntmpdirs];
    snprintf(d, sizeof tmpdirs[0], "/tmp/rbtest_%s_XXXXXX", tag);
    cr_assert_not_null(mkdtemp(d), "mkdtemp %s", d);
    ntmpdirs++;
    newest_tmpdir = d;
    return d;
}

/* Every directory is tried: a failed assert in a .fini only prints (the test stays passed) and
 * would end the loop, leaking the rest unseen. */
void rbt_tmpdir_remove(void) {
    const char *keep = getenv("RB_TEST_KEEP");
    for (; ntmpdirs > 0; ntmpdirs--) {
        const char *d = tmpdirs[ntmpdirs - 1];
        if (keep && *keep && strcmp(keep, "0") != 0) {
            fprintf(stderr, "kept %s\n", d);
            continue;
        }
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
        if (system(cmd) != 0) fprintf(stderr, "rbt_tmpdir_remove: '%s' failed\n", cmd);
    }
}

const char *rbt_tmp(const char *name) {
    static char path[8][256];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(path[slot], sizeof path[slot], "%s/%s", newest_tmpdir, name);
    return path[slot];
}

/* The kind's parameters with the "name", "value", ..., NULL overrides; the first rb_params_set
 * error. */
static int params_of(const rb_dataset_kind *k, rb_params *p, va_list ap) {
    cr_assert_eq(rb_params_init(p, k->params, k->nparams), 0, "%s", rb_error_detail());
    for (const char *n; (n = va_arg(ap, const char *));) {
        int rc = rb_params_set(p, n, va_arg(ap, const char *));
        if (rc) return rc;
    }
    return RB_OK;
}

/* The shape the loaded tensors have, as the kinds' shape hooks describe it. */
static void shape_of(const rb_dataset *ds, rb_dataset_shape *s) {
    memset(s, 0, sizeof *s);
    const rb_tensor *x = rb_dataset_tensor(ds, "x"), *K = rb_dataset_tensor(ds, "K"),
                    *Kc = rb_dataset_tensor(ds, "K_calib"),
                    *meta = rb_dataset_tensor(ds, "kv_meta"), *q = rb_dataset_tensor(ds, "queries"),
                    *Q = rb_dataset_tensor(ds, "Q");
    s->queries = RB_SHAPE_UNKNOWN;
    if (x && x->ndim == 2) {
        s->dim = x->shape[1];
        s->rows = x->shape[0];
        s->queries = q && q->ndim == 2 && q->shape[1] == s->dim ? q->shape[0] : 0;
    }
    if (K) {
        s->tokens = K->shape[K->ndim - 3];
        s->heads = K->shape[K->ndim - 2];
        s->head_dim = K->shape[K->ndim - 1];
        s->queries = Q ? Q->shape[Q->ndim - 3] : 0;
    }
    if (Kc) s->calib_tokens = Kc->shape[Kc->ndim - 3];
    if (meta) s->rope_base = meta->data[1];
}

/* The shape hook against load on the same parameters (see rbt_load_and_shape); load's code. */
static int load_against_shape(const rb_dataset_kind *k, const rb_params *p, uint64_t seed,
                              rb_dataset *ds) {
    const char *kind = k->name;
    cr_assert_not_null(k->shape, "kind %s has no shape hook", kind);
    rb_dataset_shape hs = {.queries = RB_SHAPE_UNKNOWN}, ls;
    int hrc = k->shape(p, &hs);
    char hmsg[2048];
    snprintf(hmsg, sizeof hmsg, "%s", rb_error_detail());
    rb_error_clear();
    int rc = k->load(p, seed, ds);
    if (rc == RB_ENUMERIC) {
        cr_assert_eq(hrc, 0, "%s: the shape hook saw what only the data show: %s", kind, hmsg);
    } else if (rc) {
        cr_assert_eq(hrc, rc, "%s: shape hook %s (%s), load %s (%s)", kind, rb_errname(hrc), hmsg,
                     rb_errname(rc), rb_error_detail());
        cr_assert_str_eq(hmsg, rb_error_detail(), "%s: the shape hook's error differs", kind);
    } else {
        cr_assert_eq(hrc, 0, "%s: the shape hook failed where load did not: %s", kind, hmsg);
        shape_of(ds, &ls);
        cr_assert(hs.dim == ls.dim && hs.heads == ls.heads && hs.head_dim == ls.head_dim &&
                      hs.tokens == ls.tokens && hs.calib_tokens == ls.calib_tokens &&
                      (float) hs.rope_base == (float) ls.rope_base && hs.rows == ls.rows &&
                      hs.queries == ls.queries,
                  "%s: shape hook dim %zu heads %zu head_dim %zu tokens %zu calib %zu rope %g "
                  "rows %zu queries %zu; loaded %zu %zu %zu %zu %zu %g %zu %zu",
                  kind, hs.dim, hs.heads, hs.head_dim, hs.tokens, hs.calib_tokens, hs.rope_base,
                  hs.rows, hs.queries, ls.dim, ls.heads, ls.head_dim, ls.tokens, ls.calib_tokens,
                  ls.rope_base, ls.rows, ls.queries);
    }
    return rc;
}

/* Both public loaders: load (against the shape hook when with_shape). */
static int load_v(rb_dataset *ds, const char *kind, uint64_t seed, int with_shape, va_list ap) {
    const rb_dataset_kind *k = rb_dataset_kind_find(kind);
    cr_assert_not_null(k, "kind %s", kind);
    rb_params p;
    memset(ds, 0, sizeof *ds);
    rb_error_clear();
    int rc = params_of(k, &p, ap);
    if (rc) return rc;
    return with_shape ? load_against_shape(k, &p, seed, ds) : k->load(&p, seed, ds);
}

int rbt_load_dataset(rb_dataset *ds, const char *kind, uint64_t seed, ...) {
    va_list ap;
    va_start(ap, seed);
    int rc = load_v(ds, kind, seed, 0, ap);
    va_end(ap);
    return rc;
}

int rbt_load_and_shape(rb_dataset *ds, const char *kind, uint64_t seed, ...) {
    va_list ap;
    va_start(ap, seed);
    int rc = load_v(ds, kind, seed, 1, ap);
    va_end(ap);
    return rc;
}

json_t *rbt_cli_json(const char *args) {
    char *out, *err;
    int st = rbt_run_cli(args, &out, &err);
    cr_assert_eq(st, 0, "rotabench %s: exit %d\n%s", args, st, err);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert(j, "rotabench %s: bad JSON (%s)\n%s", args, e.text, out);
    free(out);
    free(err);
    return j;
}

float rbt_rhtcodec_rotate(const rb_rhtcodec *p, const float *x, float *u) {
    size_t d = p->d;
    double nrm;
    rb_rows_sqnorm_f32_ref(x, NULL, 1, d, d, &nrm);
    double n = sqrt(nrm);
    /* fp32 normalization with the exact 2^64 pre-scale of tiny rows (rb_unit_factors) */
    float pre = n < 0x1p-64 ? 0x1p64f : 1.0f, inv = n > 0 ? (float) (1.0 / (n * pre)) : 0.0f;
    for (size_t j = 0; j < d; j++) u[j] = x[j] * pre * inv;
    cr_assert_eq(rb_rht_f32(u, d, 1, d, p->d1, p->d2, RB_FORWARD), RB_OK);
    return (float) n;
}
