/* `rotabench codebook`: solves one Lloyd-Max codebook and prints it as JSON. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "kernels/kernels.h"

static void codebook_usage(FILE *f) {
    fprintf(f,
            "usage: rotabench codebook --dist gaussian|sphere [--dim D] --bits B\n"
            "\n"
            "Prints the Lloyd-Max codebook as JSON: centroids and thresholds (ascending, in the\n"
            "units of the source: N(0,1), or one coordinate of a uniform point on S^(D-1)),\n"
            "mse, d_mse (= D * mse, sphere only), index entropy in bits, iterations.\n"
            "\n"
            "  --dist gaussian|sphere   source distribution\n"
            "  --dim D                  sphere dimension, 2..%d (sphere only, required)\n"
            "  --bits B                 bits per coordinate, 1..%d\n"
            "  --help                   this text\n",
            RB_LLOYD_MAX_DIM, RB_LLOYD_MAX_BITS);
}

/* Whole-string decimal integer in [lo, hi]. */
static int parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int) v;
    return 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rotabench codebook: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(rotabench codebook --help for usage)\n");
    va_end(ap);
    return 2;
}

int rb_cmd_codebook(int argc, char **argv) {
    const char *dist_s = NULL, *dim_s = NULL, *bits_s = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            codebook_usage(stdout);
            return 0;
        }
        const char **slot = !strncmp(a, "--dist", 6)   ? &dist_s
                            : !strncmp(a, "--dim", 5)  ? &dim_s
                            : !strncmp(a, "--bits", 6) ? &bits_s
                                                       : NULL;
        size_t klen = slot == &dist_s ? 6 : slot == &dim_s ? 5 : 6;
        if (!slot || (a[klen] != '\0' && a[klen] != '='))
            return usage_error("unknown option '%s'", a);
        if (a[klen] == '=')
            val = a + klen + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return usage_error("option '%s' needs a value", a);
        if (*slot) return usage_error("option '%s' given twice", a);
        *slot = val;
    }

    enum rb_lloyd_dist dist;
    if (!dist_s) return usage_error("--dist is required (gaussian or sphere)");
    if (!strcmp(dist_s, "gaussian"))
        dist = RB_LLOYD_GAUSSIAN;
    else if (!strcmp(dist_s, "sphere"))
        dist = RB_LLOYD_SPHERE;
    else
        return usage_error("--dist '%s' is not one of: gaussian, sphere", dist_s);
    int bits = 0, dim = 0;
    if (!bits_s) return usage_error("--bits is required");
    if (parse_int(bits_s, 1, RB_LLOYD_MAX_BITS, &bits))
        return usage_error("--bits '%s' is not an integer in 1..%d", bits_s, RB_LLOYD_MAX_BITS);
    if (dist == RB_LLOYD_SPHERE) {
        if (!dim_s) return usage_error("--dist sphere needs --dim D");
        if (parse_int(dim_s, 2, RB_LLOYD_MAX_DIM, &dim))
            return usage_error("--dim '%s' is not an integer in 2..%d", dim_s, RB_LLOYD_MAX_DIM);
    } else if (dim_s) {
        return usage_error("--dim '%s' applies only to --dist sphere", dim_s);
    }

    const rb_lloyd_max *cb;
    int rc = rb_lloyd_codebook(dist, dim, bits, &cb);
    if (rc) {
        fprintf(stderr, "rotabench codebook: %s: %s\n", rb_strerror(rc), rb_error_detail());
        return 1;
    }

    json_t *o = json_object(), *c = json_array(), *t = json_array();
    for (size_t i = 0; i < cb->levels; i++) json_array_append_new(c, json_real(cb->centroids[i]));
    for (size_t i = 0; i + 1 < cb->levels; i++)
        json_array_append_new(t, json_real(cb->thresholds[i]));
    json_object_set_new(o, "dist", json_string(rb_lloyd_dist_name(dist)));
    json_object_set_new(o, "dim", dist == RB_LLOYD_SPHERE ? json_integer(dim) : json_null());
    json_object_set_new(o, "bits", json_integer(bits));
    json_object_set_new(o, "centroids", c);
    json_object_set_new(o, "thresholds", t);
    json_object_set_new(o, "mse", json_real(cb->mse));
    if (dist == RB_LLOYD_SPHERE) json_object_set_new(o, "d_mse", json_real(cb->d_mse));
    json_object_set_new(o, "entropy", json_real(cb->entropy));
    json_object_set_new(o, "iterations", json_integer(cb->iterations));
    json_object_set_new(o, "newton_steps", json_integer(cb->newton_steps));
    /* 17 significant digits: the doubles round-trip exactly. */
    int err = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (err || fputc('\n', stdout) == EOF || fflush(stdout)) {
        fprintf(stderr, "rotabench codebook: cannot write the output\n");
        return 1;
    }
    return 0;
}
