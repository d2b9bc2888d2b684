/* The run configuration: YAML read with libyaml's document loader, includes merged, every value
 * validated against the registries and parameter tables, the resolved config as JSON + sha256,
 * and the sweep expansion into cells.
 *
 * ---- YAML schema (every error reads "FILE:LINE:COL: message", 1-based) ----
 *
 * Limits: lists and mappings nest at most 64 deep and hold at most 10000 items (also merged over
 * includes); a scalar holds no NUL (\0).
 *
 *   include: base.yaml   # optional; relative to this file. The included file is the base; this
 *                        # file's keys then apply: scalars (name, seed, repeats), backends and
 *                        # each latency key override; datasets, methods, expect, plots append;
 *                        # metrics union. Includes nest (depth <= 16); a cycle is an error that
 *                        # prints the chain.
 *   name: my-run         # required string
 *   seed: 1              # uint64, default 1: every cell derives its seeds from it
 *   repeats: 1           # int 1..1000000, default 1: independent seeds per cell
 *   backends: [cpu]      # list of cpu | cuda | auto, default [cpu], no repeats
 *   datasets:            # required, non-empty list of mappings
 *     - {name: sphere128, kind: sphere, dim: 128, count: [1000, 2000]}
 *       # name: unique, no '|'; kind: a dataset registry name; every other key is a parameter of
 *       # the kind's table (type, range, choices checked); a list value is a sweep axis.
 *   methods:             # required, non-empty list of mappings {method, label, params, datasets}
 *     - {method: rtn, label: rtn-rht, params: {bits: [2, 4], rotation: rht}}
 *       # method: a registry name; label: unique, no '|', defaults to the method name (two
 *       # entries of one method need labels); params: parameters of the method's table, a list
 *       # sweeps. Required parameters without a value are errors. datasets: optional list of
 *       # dataset names; the entry then runs on those datasets only (default: every dataset).
 *   metrics: [vnmse, bits]   # required, non-empty; each known for a family of the methods used
 *                            # (recall@K: any K in 1..1024, at most a dataset's `count` where it
 *                            # fixes the base size; a loaded set's size is checked by the runner)
 *   latency:             # optional mapping; present = the latency pass runs
 *     ops: [encode, decode]  # required, non-empty: encode decode inner_product (codec methods,
 *                            # rows encode_latency, decode_latency, inner_product_latency);
 *                            # create calibrate forward transform init recover are reserved
 *                            # and rejected as not timed yet
 *     min_time: 0.05     # seconds per benchmark run, in (0, 60] (default 0.05)
 *     repetitions: 5     # raw samples kept per op, 1..10000 (default 5)
 *     batch: 0           # vectors per timed call on vector data, 0 = the dataset's count
 *                        # (default 0); KV data are timed whole (every layer and token)
 *   expect:              # optional list of paper claims
 *     - {method: rtn, label: rtn-rht, dataset: sphere128, params: {bits: 2}, backend: cpu,
 *        metric: vnmse, value: 0.116, rtol: 0.02, atol: 0, source: "arXiv:... Table 1"}
 *       # method and/or label (at least one; must name an entry), dataset (optional, must
 *       # exist), params (optional subset of the method's table; single values only; some cell
 *       # of the sweep must have them), backend (optional, one of backends), metric (required,
 *       # in metrics, or OP_latency for an OP in latency.ops), op (~= default, or <= >= < >),
 *       # value (a number) or than (a cell: {label/method, params, dataset, backend}, the same
 *       # one-setting rules; the target is then factor (default 1) x that cell's value of the
 *       # same metric, for "A beats B" claims), rtol (default 0.01) / atol (default 0) for ~=
 *       # only, source (required,
 *       # non-empty: a claim without a source is an error). A claim grades one setting (the mean
 *       # over repeats of one cell): it must name a label when a method has several entries,
 *       # a value for every swept parameter, a dataset when there are several (and not a swept
 *       # one), and a backend when there are several.
 *   plots:               # optional list
 *     - {x: bits, y: vnmse, series: label, logx: false, logy: true, title: "...",
 *        dataset: sphere128, method: rtn}
 *       # x and series (default label): label | method | dataset | backend | a parameter of a
 *       # method or dataset kind in this config; y: a metric in metrics, or NAME@k for every
 *       # computed NAME@<number> (recall@k) with the axis k reading the number; dataset/method:
 * filters # (method matches a method name or a label); logx/logy: true | false. A y of a
 *       # per-slice KV metric NAME/head also takes x or series layer | head (the row's slice).
 *       # baselines: [LABEL, ...]: method entries drawn as dashed horizontal reference lines
 *       # (their y pooled over their rows) instead of points at x, for a baseline the x
 *       # parameter does not apply to (no rotation: no block size).
 *       # x_metric: NAME instead of x: each point at its cell's measured value of metric NAME
 *       # (a metric in metrics), e.g. x_metric: bits for a rate-distortion curve over the bits
 *       # a method really spends, side information included.
 *
 * Anything else is an error: unknown keys (the message lists the allowed ones), duplicate keys
 * (naming the first one's line), wrong types, out-of-range values, unknown names. A plain empty
 * value or ~/null counts as an empty list for datasets, methods, metrics, expect, plots and params.
 *
 * resolved_json: {backends, datasets: [{name, kind, PARAM: "text" | ["text", ...]}], expect,
 * latency (null when off), methods: [{label, method, params: {...}}], metrics, name, plots,
 * repeats, seed} with parameter values as written and top-level defaults filled in, dumped with
 * JSON_SORT_KEYS | JSON_COMPACT; sha256 is the hex digest of that text. */
#include "harness/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nettle/sha2.h>
#include <yaml.h>

#include "harness/eval.h"

enum { INCLUDE_DEPTH_MAX = 16, CONFIG_ITEMS_MAX = 10000 };
/* Collections nested deeper than this are refused before the document is built: a config needs
 * a handful of levels, and libyaml's scanner takes time quadratic in the depth (100000 '[' ran
 * for minutes). */
enum { NESTING_MAX = 64 };

/* A metric is known when the metric table (harness/metrics.c) has an evaluator for it in that
 * family: a config may not ask for a number nothing computes. */
int rb_metric_known(const char *name, rb_family f) {
    const rb_metric *m = rb_metric_find(name);
    return m && (f == RB_FAMILY_COUNT || m->family == f);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

int rb_metric_is_latency(const char *name) {
    return ends_with(name, "_latency");
}

int rb_metric_is_per_head(const char *name) {
    return ends_with(name, "/head");
}

static const rb_dataset_kind *const *default_kinds(size_t *count) {
    return rb_dataset_kinds_all(count);
}

const rb_config_hooks rb_config_default_hooks = {rb_methods_all, default_kinds, rb_metric_known};

/* ---- the loader's state: every parsed file stays alive until the config is built ---- */

typedef struct src {
    char *file;          /* path as opened: relative includes are joined onto the includer's dir */
    char *real;          /* realpath, for cycle detection */
    const char *cfgname; /* the copy in rb_config.files that positions point to */
    yaml_document_t doc;
    int has_doc;
    struct src *next;
} src;

/* A node and the file it came from. */
typedef struct ref {
    src *s;
    yaml_node_t *n;
} ref;

typedef struct refvec {
    ref *v;
    size_t n, cap;
} refvec;

typedef struct loader {
    const rb_config_hooks *h;
    src *srcs; /* most recently opened first */
    size_t nsrcs;
    ref top; /* root mapping of the top-level file, for "missing key" errors */
    ref name, seed, repeats, backends;
    ref latency, lat_ops, lat_min_time, lat_repetitions, lat_batch;
    refvec datasets, methods, metrics, expect, plots;
    src *chain[INCLUDE_DEPTH_MAX + 1]; /* files being loaded, outermost first */
    int depth;
} loader;

static const char *const top_keys[] = {"name",     "seed",    "repeats", "backends",
                                       "datasets", "methods", "metrics", "latency",
                                       "expect",   "plots",   "include", NULL};
static const char *const latency_keys[] = {"ops", "min_time", "repetitions", "batch", NULL};
static const char *const method_keys[] = {"method", "label", "params", "datasets", NULL};
static const char *const expect_keys[] = {"method", "label", "dataset", "params", "backend",
                                          "metric", "op",    "value",   "rtol",   "atol",
                                          "source", "than",  "factor",  NULL};
static const char *const plot_keys[] = {"x",     "x_metric", "y",      "series",    "logx", "logy",
                                        "title", "dataset",  "method", "baselines", NULL};
static const char *const backend_names[] = {"cpu", "cuda", "auto", NULL};
static const char *const latency_ops[] = {"encode",    "decode",  "inner_product", "create",
                                          "calibrate", "forward", "transform",     "init",
                                          "recover",   NULL};
/* The ops the runner times (codec methods, on vector and on KV data); the others are reserved
 * for the families' latency passes still to come and rejected, never silently dropped. */
static const char *const latency_ops_timed[] = {"encode", "decode", "inner_product", NULL};
static const char *const than_keys[] = {"method", "label", "dataset", "params", "backend", NULL};
static const char *const expect_ops[] = {"~=", "<=", ">=", "<", ">", NULL};

/* ---- errors ---- */

static int verr(int code, ref r, const char *fmt, va_list ap) {
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!r.n) return rb_error_set(code, "%s: %s", r.s->file, msg);
    return rb_error_set(code, "%s:%zu:%zu: %s", r.s->file, r.n->start_mark.line + 1,
                        r.n->start_mark.column + 1, msg);
}

__attribute__((format(printf, 2, 3))) static int err(ref r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = verr(RB_ECONFIG, r, fmt, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 3, 4))) static int err_code(int code, ref r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = verr(code, r, fmt, ap);
    va_end(ap);
    return rc;
}

static int oom(void) {
    return rb_error_set(RB_ENOMEM, "config: out of memory");
}

/* "a, b, c" from a NULL-terminated list. */
static const char *join(const char *const *list, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && used < size; i++)
        used += (size_t) snprintf(buf + used, size - used, "%s%s", i ? ", " : "", list[i]);
    return buf;
}

static int in_list(const char *const *list, const char *word) {
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], word) == 0) return 1;
    return 0;
}

static char *xstrdup(const char *s) {
    return s ? strdup(s) : NULL;
}

/* ---- nodes ---- */

static ref child(ref r, int id) {
    return (ref){r.s, yaml_document_get_node(&r.s->doc, id)};
}

static const char *ntype(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static const char *text(ref r) {
    return (const char *) r.n->data.scalar.value;
}

static int is_null(ref r) {
    if (r.n->type != YAML_SCALAR_NODE || r.n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *t = text(r);
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

static size_t map_len(ref r) {
    return (size_t) (r.n->data.mapping.pairs.top - r.n->data.mapping.pairs.start);
}
static ref map_key(ref r, size_t i) {
    return child(r, r.n->data.mapping.pairs.start[i].key);
}
static ref map_val(ref r, size_t i) {
    return child(r, r.n->data.mapping.pairs.start[i].value);
}

static size_t seq_len(ref r) {
    return r.n->type == YAML_SEQUENCE_NODE
               ? (size_t) (r.n->data.sequence.items.top - r.n->data.sequence.items.start)
               : 0;
}
static ref seq_item(ref r, size_t i) {
    return child(r, r.n->data.sequence.items.start[i]);
}

/* The value of `key` in mapping r, or a ref with n == NULL. Keys are known to be unique scalars
 * (check_map ran first). */
static ref get(ref r, const char *key) {
    for (size_t i = 0; i < map_len(r); i++)
        if (strcmp(text(map_key(r, i)), key) == 0) return map_val(r, i);
    return (ref){r.s, NULL};
}

/* Every key a scalar, none twice, each one of `allowed` (NULL: any name). */
static int check_map(ref r, const char *const *allowed, const char *what) {
    for (size_t i = 0; i < map_len(r); i++) {
        ref k = map_key(r, i);
        if (k.n->type != YAML_SCALAR_NODE)
            return err(k, "%s: keys must be scalars, not %s", what, ntype(k.n));
        for (size_t j = 0; j < i; j++) {
            ref prev = map_key(r, j);
            if (prev.n->type == YAML_SCALAR_NODE && strcmp(text(prev), text(k)) == 0)
                return err(k, "%s: duplicate key '%s' (first at line %zu)", what, text(k),
                           prev.n->start_mark.line + 1);
        }
        if (allowed && !in_list(allowed, text(k))) {
            char buf[512];
            return err(k, "%s: unknown key '%s' (allowed: %s)", what, text(k),
                       join(allowed, buf, sizeof buf));
        }
    }
    return RB_OK;
}

static int want_map(ref r, const char *what) {
    if (r.n->type != YAML_MAPPING_NODE)
        return err(r, "%s must be a mapping, not %s", what, ntype(r.n));
    return RB_OK;
}

/* A list, or a null meaning an empty one. */
static int want_seq(ref r, const char *what) {
    if (r.n->type != YAML_SEQUENCE_NODE && !is_null(r))
        return err(r, "%s must be a list, not %s", what, ntype(r.n));
    return RB_OK;
}

static int want_string(ref r, const char *what, const char **out) {
    if (r.n->type != YAML_SCALAR_NODE)
        return err(r, "%s must be a scalar, not %s", what, ntype(r.n));
    if (is_null(r)) return err(r, "%s has no value", what);
    *out = text(r);
    return RB_OK;
}

/* Text that names things (the run, datasets, labels): a line break or an escape sequence in it
 * would garble the terminal, the report's tables and the plots. */
static int want_plain(ref r, const char *what, const char **out) {
    int rc = want_string(r, what, out);
    if (rc) return rc;
    if (rb_text_control_at(*out) >= 0)
        return err(r, "%s must not contain control characters (a line break, tab or escape)", what);
    return RB_OK;
}

/* A name that goes into cell keys: plain text, non-empty, no '|'. */
static int want_token(ref r, const char *what, const char **out) {
    int rc = want_plain(r, what, out);
    if (rc) return rc;
    if (strchr(*out, '|')) return err(r, "%s '%s' must not contain '|'", what, *out);
    return RB_OK;
}

static int want_u64(ref r, const char *what, uint64_t lo, uint64_t hi, uint64_t *out) {
    const char *t;
    int rc = want_string(r, what, &t);
    if (rc) return rc;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    if (t[0] < '0' || t[0] > '9' || *end || errno || v < lo || v > hi)
        return err(r, "%s: '%s' is not an integer in %llu..%llu", what, t, (unsigned long long) lo,
                   (unsigned long long) hi);
    *out = v;
    return RB_OK;
}

static int want_int(ref r, const char *what, int lo, int hi, int *out) {
    const char *t;
    int rc = want_string(r, what, &t);
    if (rc) return rc;
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (end == t || *end || errno || v < lo || v > hi)
        return err(r, "%s: '%s' is not an integer in %d..%d", what, t, lo, hi);
    *out = (int) v;
    return RB_OK;
}

static int want_double(ref r, const char *what, double *out) {
    const char *t;
    int rc = want_string(r, what, &t);
    if (rc) return rc;
    char *end;
    errno = 0;
    double v = strtod(t, &end);
    if (end == t || *end || errno || !isfinite(v))
        return err(r, "%s: '%s' is not a finite number", what, t);
    *out = v;
    return RB_OK;
}

static int want_bool(ref r, const char *what, int *out) {
    const char *t = NULL;
    int rc = want_string(r, what, &t);
    if (rc) return rc;
    if (rb_parse_bool(t, out)) return err(r, "%s: '%s' is not true or false", what, t);
    return RB_OK;
}

/* Appends r. The merged lists (metrics, datasets, ...) gather items over includes, so they are
 * bounded here as one file's lists are where they are read (CONFIG_ITEMS_MAX). */
static int push(refvec *v, ref r) {
    if (v->n == CONFIG_ITEMS_MAX)
        return err(r, "item %d of a list merged over includes; a config's lists hold at most %d",
                   CONFIG_ITEMS_MAX + 1, CONFIG_ITEMS_MAX);
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 8;
        ref *p = realloc(v->v, cap * sizeof *p);
        if (!p) return oom();
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = r;
    return RB_OK;
}

/* ---- reading files and merging includes ---- */

static int yaml_error(src *s, const yaml_parser_t *p) {
    const char *problem = p->problem ? p->problem : "unknown problem";
    char ctx[256] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s at line %zu, column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    if (p->error == YAML_READER_ERROR)
        return rb_error_set(RB_ECONFIG, "%s: YAML error: %s (at byte %zu)", s->file, problem,
                            p->problem_offset);
    return rb_error_set(RB_ECONFIG, "%s:%zu:%zu: YAML error: %s%s", s->file,
                        p->problem_mark.line + 1, p->problem_mark.column + 1, problem, ctx);
}

/* A first pass over f's events, stopped at the first collection nested deeper than NESTING_MAX
 * (or the first syntax error, which the load then reports); f is rewound for the load. */
static int check_nesting(src *s, FILE *f) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return oom();
    yaml_parser_set_input_file(&p, f);
    int depth = 0, rc = RB_OK;
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) break;
        yaml_event_type_t t = e.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) depth++;
        if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) depth--;
        if (depth > NESTING_MAX)
            rc = rb_error_set(RB_ECONFIG,
                              "%s:%zu:%zu: lists and mappings nested deeper than %d levels",
                              s->file, e.start_mark.line + 1, e.start_mark.column + 1, NESTING_MAX);
        yaml_event_delete(&e);
        if (rc || t == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&p);
    rewind(f);
    return rc;
}

static int load_file(loader *L, const char *file, ref from);

/* Applies one top-level key of a file over what its includes (and earlier keys) gave. */
static int merge_key(loader *L, ref k, ref v) {
    const char *key = text(k);
    int rc;
    if (!strcmp(key, "name")) {
        L->name = v;
    } else if (!strcmp(key, "seed")) {
        L->seed = v;
    } else if (!strcmp(key, "repeats")) {
        L->repeats = v;
    } else if (!strcmp(key, "backends")) {
        L->backends = v;
    } else if (!strcmp(key, "latency")) {
        if ((rc = want_map(v, "'latency'")) || (rc = check_map(v, latency_keys, "latency")))
            return rc;
        L->latency = v;
        ref x;
        if ((x = get(v, "ops")).n) L->lat_ops = x;
        if ((x = get(v, "min_time")).n) L->lat_min_time = x;
        if ((x = get(v, "repetitions")).n) L->lat_repetitions = x;
        if ((x = get(v, "batch")).n) L->lat_batch = x;
    } else if (!strcmp(key, "metrics")) {
        if ((rc = want_seq(v, "'metrics'"))) return rc;
        for (size_t i = 0; i < seq_len(v); i++) {
            ref it = seq_item(v, i);
            const char *name;
            if ((rc = want_string(it, "a metric", &name))) return rc;
            int seen = 0;
            for (size_t j = 0; j < L->metrics.n && !seen; j++)
                seen = !strcmp(text(L->metrics.v[j]), name);
            if (!seen && (rc = push(&L->metrics, it))) return rc;
        }
    } else if (strcmp(key, "include") != 0) {
        refvec *dst = !strcmp(key, "datasets")  ? &L->datasets
                      : !strcmp(key, "methods") ? &L->methods
                      : !strcmp(key, "expect")  ? &L->expect
                                                : &L->plots;
        char what[32];
        snprintf(what, sizeof what, "'%s'", key);
        if ((rc = want_seq(v, what))) return rc;
        for (size_t i = 0; i < seq_len(v); i++)
            if ((rc = push(dst, seq_item(v, i)))) return rc;
    }
    return RB_OK;
}

static int include(loader *L, src *s, ref v) {
    const char *inc;
    int rc = want_string(v, "'include'", &inc);
    if (rc) return rc;
    const char *slash = strrchr(s->file, '/');
    size_t dirlen = inc[0] == '/' || !slash ? 0 : (size_t) (slash - s->file) + 1;
    char *path = malloc(dirlen + strlen(inc) + 1);
    if (!path) return oom();
    memcpy(path, s->file, dirlen);
    strcpy(path + dirlen, inc);
    rc = load_file(L, path, v);
    free(path);
    return rc;
}

/* Reads one file (from = the include value that names it, n == NULL for the top file), loads its
 * includes first, then merges its keys. */
static int load_file(loader *L, const char *file, ref from) {
    const char *why;
    FILE *f = rb_open_regular(file, &why);
    if (!f) {
        if (from.n) return err_code(RB_EIO, from, "cannot read included file '%s': %s", file, why);
        return rb_error_set(RB_EIO, "%s: cannot read: %s", file, why);
    }
    src *s = calloc(1, sizeof *s);
    if (!s) {
        fclose(f);
        return oom();
    }
    s->next = L->srcs;
    L->srcs = s;
    L->nsrcs++;
    s->file = strdup(file);
    s->real = realpath(file, NULL);
    if (!s->file || !s->real) {
        fclose(f);
        return s->file ? rb_error_set(RB_EIO, "%s: cannot resolve path: %s", file, strerror(errno))
                       : oom();
    }
    for (int i = 0; i < L->depth; i++) {
        if (strcmp(L->chain[i]->real, s->real) != 0) continue;
        char chain[768];
        size_t used = 0;
        for (int j = i; j < L->depth && used < sizeof chain; j++)
            used +=
                (size_t) snprintf(chain + used, sizeof chain - used, "%s -> ", L->chain[j]->file);
        if (used < sizeof chain) snprintf(chain + used, sizeof chain - used, "%s", file);
        fclose(f);
        return err(from, "include cycle: %s", chain);
    }
    if (L->depth >= INCLUDE_DEPTH_MAX) {
        fclose(f);
        return err(from, "includes nested deeper than %d files", INCLUDE_DEPTH_MAX);
    }

    int rc = check_nesting(s, f);
    if (rc) {
        fclose(f);
        return rc;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return oom();
    }
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &s->doc)) {
        rc = yaml_error(s, &p);
    } else {
        s->has_doc = 1;
        yaml_node_t *root = yaml_document_get_root_node(&s->doc);
        if (!root || (root->type == YAML_SCALAR_NODE && is_null((ref){s, root}))) {
            rc = rb_error_set(RB_ECONFIG,
                              "%s:1:1: empty configuration (expected a mapping with name, "
                              "datasets, methods and metrics)",
                              s->file);
        } else {
            /* A second document would be silently ignored: refuse it. */
            yaml_document_t extra;
            if (!yaml_parser_load(&p, &extra)) {
                rc = yaml_error(s, &p);
            } else {
                yaml_node_t *r2 = yaml_document_get_root_node(&extra);
                if (r2)
                    rc = rb_error_set(RB_ECONFIG,
                                      "%s:%zu:%zu: a second YAML document; a config "
                                      "file holds exactly one",
                                      s->file, r2->start_mark.line + 1, r2->start_mark.column + 1);
                yaml_document_delete(&extra);
            }
        }
    }
    yaml_parser_delete(&p);
    fclose(f);
    if (rc) return rc;

    /* An escaped NUL ("\0") would cut every C string the config becomes at that byte: a path
     * would name another file, a label another series. And the checks that names are unique
     * compare pairs: a list or mapping of 60000 items took a minute; a config is written by
     * hand, and CONFIG_ITEMS_MAX items is far past any real one. */
    for (yaml_node_t *n = s->doc.nodes.start; n < s->doc.nodes.top; n++) {
        if (n->type == YAML_SCALAR_NODE &&
            strlen((const char *) n->data.scalar.value) != n->data.scalar.length)
            return err((ref){s, n}, "a scalar contains a NUL character (\\0)");
        size_t items = n->type == YAML_SEQUENCE_NODE
                           ? (size_t) (n->data.sequence.items.top - n->data.sequence.items.start)
                       : n->type == YAML_MAPPING_NODE
                           ? (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start)
                           : 0;
        if (items > CONFIG_ITEMS_MAX)
            return err((ref){s, n},
                       "%s of %zu items; a config's lists and mappings hold at most %d", ntype(n),
                       items, CONFIG_ITEMS_MAX);
    }
    ref root = {s, yaml_document_get_root_node(&s->doc)};
    if (root.n->type != YAML_MAPPING_NODE)
        return err(root, "a configuration must be a mapping (name, datasets, ...), not %s",
                   ntype(root.n));
    if ((rc = check_map(root, top_keys, "configuration"))) return rc;
    if (!from.n) L->top = root;

    L->chain[L->depth++] = s;
    ref inc = get(root, "include");
    if (inc.n && (rc = include(L, s, inc))) return rc;
    L->depth--;
    for (size_t i = 0; i < map_len(root); i++)
        if ((rc = merge_key(L, map_key(root, i), map_val(root, i)))) return rc;
    return RB_OK;
}

/* ---- building the validated config ---- */

static rb_srcpos pos(ref r) {
    return (rb_srcpos){r.s->cfgname, (int) r.n->start_mark.line + 1,
                       (int) r.n->start_mark.column + 1};
}

static int table_has(const rb_param_def *defs, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(defs[i].name, name)) return 1;
    return 0;
}

/* One parameter of a dataset or method entry: a scalar or a list (a sweep axis), each value
 * checked against the owner's table through `scratch`. */
static int parse_sweep(ref k, ref v, rb_params *scratch, const char *owner, rb_sweep_param *out) {
    const char *name = text(k);
    int rc;
    if (!(out->name = strdup(name))) return oom();
    out->pos = pos(v);
    if (!table_has(scratch->defs, scratch->count, name)) {
        rb_params_set(scratch, name, ""); /* for its message listing the known names */
        return err(k, "%s: %s", owner, rb_error_detail());
    }
    size_t n = 1;
    if (v.n->type == YAML_SEQUENCE_NODE) {
        out->is_list = 1;
        n = seq_len(v);
        if (!n) return err(v, "%s: parameter '%s': empty list", owner, name);
    } else if (v.n->type != YAML_SCALAR_NODE) {
        return err(v, "%s: parameter '%s' must be a scalar or a list of scalars (a sweep), not %s",
                   owner, name, ntype(v.n));
    }
    if (!(out->values = calloc(n, sizeof *out->values))) return oom();
    char(*canon)[RB_PARAM_TEXT_MAX] = malloc(n * sizeof *canon);
    if (!canon) return oom();
    for (size_t i = 0; i < n; i++) {
        ref it = out->is_list ? seq_item(v, i) : v;
        if (it.n->type != YAML_SCALAR_NODE) {
            rc = err(it, "%s: parameter '%s': a sweep holds scalars, not %s", owner, name,
                     ntype(it.n));
            goto done;
        }
        if (is_null(it)) {
            rc = err(it, "%s: parameter '%s' has no value", owner, name);
            goto done;
        }
        const char *t = text(it);
        if ((rc = rb_params_set(scratch, name, t))) {
            rc = err(it, "%s: %s", owner, rb_error_detail());
            goto done;
        }
        if (strchr(t, '|')) {
            rc = err(it, "%s: parameter '%s': value '%s' must not contain '|'", owner, name, t);
            goto done;
        }
        size_t idx = (size_t) (rb_params_def(scratch, name) - scratch->defs);
        memcpy(canon[i], scratch->text[idx], RB_PARAM_TEXT_MAX);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(canon[j], canon[i])) {
                rc = err(it, "%s: parameter '%s': value %s appears twice in the sweep", owner, name,
                         canon[i]);
                goto done;
            }
        if (!(out->values[i] = strdup(t))) {
            rc = oom();
            goto done;
        }
        out->nvalues = i + 1;
    }
    rc = RB_OK;
done:
    free(canon);
    return rc;
}

static int build_dataset(loader *L, rb_config *cfg, ref item) {
    int rc;
    if (item.n->type != YAML_MAPPING_NODE)
        return err(item,
                   "each entry of 'datasets' must be a mapping {name, kind, params...}, not %s",
                   ntype(item.n));
    if ((rc = check_map(item, NULL, "dataset"))) return rc;
    rb_dataset_entry *e = &cfg->datasets[cfg->ndatasets++];
    e->pos = pos(item);
    ref nv = get(item, "name"), kv = get(item, "kind");
    const char *name, *kind;
    if (!nv.n) return err(item, "dataset: 'name' is required");
    if ((rc = want_token(nv, "dataset name", &name))) return rc;
    for (size_t i = 0; i + 1 < cfg->ndatasets; i++)
        if (!strcmp(cfg->datasets[i].name, name))
            return err(nv, "duplicate dataset name '%s' (first at line %d)", name,
                       cfg->datasets[i].pos.line);
    if (!(e->name = strdup(name))) return oom();
    if (!kv.n) return err(item, "dataset '%s': 'kind' is required", name);
    if ((rc = want_string(kv, "dataset kind", &kind))) return rc;
    size_t nk;
    const rb_dataset_kind *const *kinds = L->h->dataset_kinds_all(&nk);
    for (size_t i = 0; i < nk && !e->k; i++)
        if (!strcmp(kinds[i]->name, kind)) e->k = kinds[i];
    if (!e->k) {
        char known[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < nk && used < sizeof known; i++)
            used += (size_t) snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                      kinds[i]->name);
        return err(kv, "unknown dataset kind '%s' (known: %s)", kind, nk ? known : "none");
    }
    if (!(e->kind = strdup(kind))) return oom();
    rb_params scratch;
    if (rb_params_init(&scratch, e->k->params, e->k->nparams))
        return err(kv, "dataset kind '%s': %s", kind, rb_error_detail());
    if (!(e->params = calloc(map_len(item), sizeof *e->params))) return oom();
    char owner[128];
    snprintf(owner, sizeof owner, "dataset '%s'", name);
    for (size_t i = 0; i < map_len(item); i++) {
        ref k = map_key(item, i);
        if (!strcmp(text(k), "name") || !strcmp(text(k), "kind")) continue;
        if ((rc = parse_sweep(k, map_val(item, i), &scratch, owner, &e->params[e->nparams++])))
            return rc;
    }
    if (rb_params_check_required(&scratch)) return err(item, "%s: %s", owner, rb_error_detail());
    return RB_OK;
}

static int dataset_index(const rb_config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->ndatasets; i++)
        if (!strcmp(cfg->datasets[i].name, name)) return (int) i;
    return -1;
}

static const char *names_of(char *const *list, size_t n, size_t stride, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t) snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                                  *(char *const *) ((const char *) list + i * stride));
    return buf;
}

static int build_method(loader *L, rb_config *cfg, ref item, unsigned char *label_given) {
    int rc;
    if (item.n->type != YAML_MAPPING_NODE)
        return err(
            item,
            "each entry of 'methods' must be a mapping {method, label, params, datasets}, not %s",
            ntype(item.n));
    if ((rc = check_map(item, method_keys, "method entry"))) return rc;
    size_t idx = cfg->nmethods++;
    rb_method_entry *e = &cfg->methods[idx];
    e->pos = pos(item);
    ref mv = get(item, "method"), lv = get(item, "label"), pv = get(item, "params"),
        dv = get(item, "datasets");
    const char *name, *label;
    if (!mv.n) return err(item, "method entry: 'method' is required");
    if ((rc = want_string(mv, "method", &name))) return rc;
    size_t nm;
    const rb_method *const *all = L->h->methods_all(&nm);
    for (size_t i = 0; i < nm && !e->m; i++)
        if (!strcmp(all[i]->name, name)) e->m = all[i];
    if (!e->m) {
        char known[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < nm && used < sizeof known; i++)
            used += (size_t) snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                      all[i]->name);
        return err(mv, "unknown method '%s' (known: %s)", name, nm ? known : "none registered");
    }
    if (!(e->method = strdup(name))) return oom();
    label_given[idx] = lv.n != NULL;
    if (lv.n) {
        if ((rc = want_token(lv, "label", &label))) return rc;
    } else {
        label = name;
        if (strchr(name, '|')) return err(mv, "method name '%s' contains '|'", name);
    }
    for (size_t i = 0; i < idx; i++) {
        if (strcmp(cfg->methods[i].label, label) != 0) continue;
        if (!label_given[idx] && !label_given[i])
            return err(mv,
                       "method '%s' appears twice without labels (first at line %d); give each "
                       "entry a distinct 'label:'",
                       name, cfg->methods[i].pos.line);
        return err(lv.n ? lv : mv, "duplicate label '%s' (first at line %d)", label,
                   cfg->methods[i].pos.line);
    }
    if (!(e->label = strdup(label))) return oom();
    rb_params scratch;
    if (rb_params_init(&scratch, e->m->params, e->m->nparams))
        return err(mv, "method '%s': %s", name, rb_error_detail());
    char owner[160];
    snprintf(owner, sizeof owner, "method '%s'", label);
    if (pv.n && !is_null(pv)) {
        if ((rc = want_map(pv, "'params'")) || (rc = check_map(pv, NULL, "params"))) return rc;
        if (!(e->params = calloc(map_len(pv), sizeof *e->params))) return oom();
        for (size_t i = 0; i < map_len(pv); i++)
            if ((rc = parse_sweep(map_key(pv, i), map_val(pv, i), &scratch, owner,
                                  &e->params[e->nparams++])))
                return rc;
    }
    if (rb_params_check_required(&scratch)) return err(item, "%s: %s", owner, rb_error_detail());
    if (dv.n && !is_null(dv)) {
        if ((rc = want_seq(dv, "method entry 'datasets'"))) return rc;
        if (!seq_len(dv)) return err(dv, "%s: 'datasets' must not be empty (leave it out)", owner);
        if (!(e->datasets = calloc(seq_len(dv), sizeof *e->datasets))) return oom();
        for (size_t i = 0; i < seq_len(dv); i++) {
            ref it = seq_item(dv, i);
            const char *ds;
            char buf[512];
            if ((rc = want_string(it, "a dataset name", &ds))) return rc;
            if (dataset_index(cfg, ds) < 0)
                return err(it, "%s: no dataset named '%s' (datasets: %s)", owner, ds,
                           names_of(&cfg->datasets[0].name, cfg->ndatasets, sizeof *cfg->datasets,
                                    buf, sizeof buf));
            if (rb_entry_runs_on(e, ds) && e->ndatasets)
                return err(it, "%s: dataset '%s' is listed twice", owner, ds);
            if (!(e->datasets[e->ndatasets++] = strdup(ds))) return oom();
        }
    }
    return RB_OK;
}

int rb_entry_runs_on(const rb_method_entry *e, const char *dataset) {
    for (size_t i = 0; i < e->ndatasets; i++)
        if (!strcmp(e->datasets[i], dataset)) return 1;
    return e->ndatasets == 0;
}

#define F_(f) (1u << (f))

/* The families of the methods in the config, as a bit mask. */
static unsigned families_of(const rb_config *cfg) {
    unsigned mask = 0;
    for (size_t i = 0; i < cfg->nmethods; i++) mask |= F_(cfg->methods[i].m->family);
    return mask;
}

static int metric_ok(loader *L, const char *name, unsigned families) {
    for (int f = 0; f < RB_FAMILY_COUNT; f++)
        if ((families & F_(f)) && L->h->metric_known(name, (rb_family) f)) return 1;
    return 0;
}

static const char *family_names(unsigned families, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int f = 0; f < RB_FAMILY_COUNT; f++)
        if (families & F_(f))
            used += (size_t) snprintf(buf + used, size > used ? size - used : 0, "%s%s",
                                      used ? "/" : "", rb_family_name((rb_family) f));
    return buf;
}

/* Why a recall@... name that no family knows is refused: a K that is not a positive integer, or
 * one above RB_RECALL_K_MAX. RB_OK when the name is not of that shape (the caller says unknown). */
static int recall_name_error(ref it, unsigned families) {
    const char *name = text(it);
    if (!(families & F_(RB_FAMILY_CODEC)) || strncmp(name, "recall@", 7) != 0) return RB_OK;
    size_t k = rb_metric_recall_k(name);
    if (!k)
        return err(it,
                   "metric '%s': K of recall@K must be a positive integer written without sign or "
                   "leading zeros (recall@1 .. recall@%d)",
                   name, RB_RECALL_K_MAX);
    if (k > RB_RECALL_K_MAX)
        return err(it, "metric '%s': K of recall@K must be at most %d", name, RB_RECALL_K_MAX);
    return RB_OK;
}

/* A recall@K needs at least K base vectors on every dataset a codec runs on. Where the dataset's
 * `count` fixes the base size (the synthetic kinds; a loader's count other than 0, which reads at
 * most that many) it is checked here, naming both places; other sizes are known only when the
 * data is loaded (the runner checks them there). */
static int check_recall_counts(const rb_config *cfg, ref it) {
    size_t k = rb_metric_recall_k(text(it));
    if (!k) return RB_OK;
    for (size_t i = 0; i < cfg->ndatasets; i++) {
        const rb_dataset_entry *de = &cfg->datasets[i];
        int coded = 0;
        for (size_t j = 0; j < cfg->nmethods && !coded; j++)
            coded = cfg->methods[j].m->family == RB_FAMILY_CODEC &&
                    rb_entry_runs_on(&cfg->methods[j], de->name);
        if (!coded || !table_has(de->k->params, de->k->nparams, "count")) continue;
        rb_params p;
        if (rb_params_init(&p, de->k->params, de->k->nparams)) continue;
        const rb_sweep_param *sp = NULL;
        for (size_t j = 0; j < de->nparams; j++)
            if (!strcmp(de->params[j].name, "count")) sp = &de->params[j];
        size_t nv = sp ? sp->nvalues : 1;
        for (size_t v = 0; v < nv; v++) {
            if (sp && rb_params_set(&p, "count", sp->values[v])) continue;
            long n = rb_params_int(&p, "count");
            if (n > 0 && (size_t) n < k) {
                rb_srcpos w = sp ? sp->pos : de->pos;
                return err(it,
                           "metric '%s': dataset '%s' has only %ld base vectors (%s at %s:%d:%d); "
                           "recall@K needs K <= the base size",
                           text(it), de->name, n, sp ? "count" : "its default count; the dataset",
                           w.file, w.line, w.col);
            }
        }
    }
    return RB_OK;
}

/* A metric the run computes: in `metrics`, or OP_latency for an op of the latency pass. */
static int metric_computed(const rb_config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->nmetrics; i++)
        if (!strcmp(cfg->metrics[i], name)) return 1;
    size_t n = strlen(name);
    for (size_t i = 0; cfg->latency.enabled && i < cfg->latency.nops; i++) {
        size_t k = strlen(cfg->latency.ops[i]);
        if (n == k + 8 && !strncmp(name, cfg->latency.ops[i], k) && !strcmp(name + k, "_latency"))
            return 1;
    }
    return 0;
}

/* What to add for metric `name` to be computed: "add it to 'metrics'", or for OP_latency the op
 * to the latency pass. */
static const char *how_computed(const char *name) {
    return rb_metric_is_latency(name) ? "add its op to 'latency: {ops: [...]}'"
                                      : "add it to 'metrics'";
}

/* A plot's y "NAME@k" stands for every computed metric NAME@<number> (recall@1, recall@4, ...),
 * and its axis "k" reads the number: Recall@1@k against k in one plot. */
static int metric_family_computed(const rb_config *cfg, const char *y) {
    size_t n = strlen(y);
    if (n < 3 || strcmp(y + n - 2, "@k") != 0) return 0;
    for (size_t i = 0; i < cfg->nmetrics; i++) {
        const char *m = cfg->metrics[i];
        if (!strncmp(m, y, n - 1) && m[n - 1] &&
            strspn(m + n - 1, "0123456789") == strlen(m + n - 1))
            return 1;
    }
    return 0;
}

/* Does method entry e have a cell where parameter `name` has canonical value `canon`? */
static int entry_has_value(const rb_method_entry *e, const char *name, const char *canon) {
    rb_params p;
    rb_params_init(&p, e->m->params, e->m->nparams);
    for (size_t i = 0; i < e->nparams; i++) {
        if (strcmp(e->params[i].name, name) != 0) continue;
        for (size_t j = 0; j < e->params[i].nvalues; j++) {
            rb_params_set(&p, name, e->params[i].values[j]);
            if (!strcmp(rb_params_str(&p, name), canon)) return 1;
        }
        return 0;
    }
    return !strcmp(rb_params_str(&p, name), canon); /* not written: the default */
}

/* The cell selector of a claim (or of its `than` reference): method and/or label, dataset,
 * backend, params, each checked against the config. `what` prefixes messages. */
static int build_selector(loader *L, rb_config *cfg, ref item, rb_expect *x, const char *what,
                          const rb_method_entry **firstp) {
    (void) L;
    int rc;
    char buf[512];
    ref mv = get(item, "method"), lv = get(item, "label"), dv = get(item, "dataset"),
        pv = get(item, "params"), bv = get(item, "backend");
    const char *s;
    x->pos = pos(item);
    if (!mv.n && !lv.n) return err(item, "%s: give 'method' or 'label' (or both)", what);
    const rb_method_entry *first = NULL; /* an entry the claim refers to */
    if (lv.n) {
        if ((rc = want_string(lv, "expect label", &s))) return rc;
        for (size_t i = 0; i < cfg->nmethods && !first; i++)
            if (!strcmp(cfg->methods[i].label, s)) first = &cfg->methods[i];
        if (!first)
            return err(lv, "%s: no method entry has label '%s' (labels: %s)", what, s,
                       names_of(&cfg->methods[0].label, cfg->nmethods, sizeof *cfg->methods, buf,
                                sizeof buf));
        if (!(x->label = strdup(s))) return oom();
    }
    if (mv.n) {
        if ((rc = want_string(mv, "expect method", &s))) return rc;
        if (first && strcmp(first->method, s) != 0)
            return err(mv, "%s: label '%s' is method '%s', not '%s'", what, x->label, first->method,
                       s);
        for (size_t i = 0; i < cfg->nmethods && !first; i++)
            if (!strcmp(cfg->methods[i].method, s)) first = &cfg->methods[i];
        if (!first)
            return err(mv, "%s: no method entry uses method '%s' (methods: %s)", what, s,
                       names_of(&cfg->methods[0].method, cfg->nmethods, sizeof *cfg->methods, buf,
                                sizeof buf));
        if (!(x->method = strdup(s))) return oom();
    }
    *firstp = first;
    if (dv.n) {
        if ((rc = want_string(dv, "expect dataset", &s))) return rc;
        if (dataset_index(cfg, s) < 0)
            return err(dv, "%s: no dataset named '%s' (datasets: %s)", what, s,
                       names_of(&cfg->datasets[0].name, cfg->ndatasets, sizeof *cfg->datasets, buf,
                                sizeof buf));
        if (!(x->dataset = strdup(s))) return oom();
    }
    if (bv.n) {
        if ((rc = want_string(bv, "expect backend", &s))) return rc;
        size_t i = 0;
        while (i < cfg->nbackends && strcmp(cfg->backends[i], s) != 0) i++;
        if (i == cfg->nbackends)
            return err(
                bv, "%s: backend '%s' is not one of the config's backends (%s)", what, s,
                names_of(cfg->backends, cfg->nbackends, sizeof *cfg->backends, buf, sizeof buf));
        if (!(x->backend = strdup(s))) return oom();
    }
    if (pv.n && !is_null(pv)) {
        if ((rc = want_map(pv, "expect 'params'")) || (rc = check_map(pv, NULL, "expect params")))
            return rc;
        size_t n = map_len(pv);
        if (!(x->param_names = calloc(n, sizeof(char *))) ||
            !(x->param_values = calloc(n, sizeof(char *))))
            return oom();
        rb_params scratch;
        rb_params_init(&scratch, first->m->params, first->m->nparams);
        for (size_t i = 0; i < n; i++) {
            ref k = map_key(pv, i), v = map_val(pv, i);
            const char *name = text(k), *t;
            if (!table_has(scratch.defs, scratch.count, name)) {
                rb_params_set(&scratch, name, "");
                return err(k, "%s: method '%s': %s", what, first->method, rb_error_detail());
            }
            if (v.n->type == YAML_SEQUENCE_NODE)
                return err(v, "%s: parameter '%s' takes one value, not a list", what, name);
            if ((rc = want_string(v, "expect parameter", &t))) return rc;
            if (rb_params_set(&scratch, name, t))
                return err(v, "%s: method '%s': %s", what, first->method, rb_error_detail());
            x->nparams++;
            if (!(x->param_names[i] = strdup(name)) ||
                !(x->param_values[i] = strdup(rb_params_str(&scratch, name))))
                return oom();
        }
        /* Some entry the claim names must have a cell with all these values. */
        int matched = 0;
        for (size_t e = 0; e < cfg->nmethods && !matched; e++) {
            const rb_method_entry *me = &cfg->methods[e];
            if ((x->label && strcmp(me->label, x->label)) ||
                (x->method && strcmp(me->method, x->method)))
                continue;
            matched = 1;
            for (size_t i = 0; i < x->nparams && matched; i++)
                matched = entry_has_value(me, x->param_names[i], x->param_values[i]);
        }
        if (!matched) {
            rb_params_format(&scratch, 1, buf, sizeof buf);
            return err(pv, "%s: no cell of the sweep has %s", what, buf);
        }
    }
    return RB_OK;
}

/* A claim grades one setting: the mean over repeats of one cell, never a silent average across a
 * sweep, several entries, datasets or backends. */
static int check_one_setting(const rb_config *cfg, ref item, const rb_expect *x,
                             const rb_method_entry *first, const char *what) {
    size_t nentries = 0;
    for (size_t e = 0; e < cfg->nmethods; e++)
        nentries += (!x->label || !strcmp(cfg->methods[e].label, x->label)) &&
                    (!x->method || !strcmp(cfg->methods[e].method, x->method));
    if (nentries > 1)
        return err(item, "%s: method '%s' has %zu entries in this config; name one with 'label'",
                   what, first->method, nentries);
    for (size_t i = 0; i < first->nparams; i++) {
        const rb_sweep_param *sp = &first->params[i];
        if (sp->nvalues < 2) continue;
        int named = 0;
        for (size_t k = 0; k < x->nparams; k++) named |= !strcmp(x->param_names[k], sp->name);
        if (!named)
            return err(item, "%s: '%s' sweeps parameter '%s' (%zu values); name one in 'params'",
                       what, first->label, sp->name, sp->nvalues);
    }
    size_t nruns = 0, lastds = 0;
    for (size_t i = 0; i < cfg->ndatasets; i++)
        if (rb_entry_runs_on(first, cfg->datasets[i].name)) nruns++, lastds = i;
    if (x->dataset && !rb_entry_runs_on(first, x->dataset))
        return err(item, "%s: '%s' does not run on dataset '%s' (see its 'datasets')", what,
                   first->label, x->dataset);
    if (!x->dataset && nruns > 1)
        return err(item, "%s: '%s' runs on %zu datasets; name one with 'dataset'", what,
                   first->label, nruns);
    const rb_dataset_entry *de =
        &cfg->datasets[x->dataset ? (size_t) dataset_index(cfg, x->dataset) : lastds];
    for (size_t i = 0; i < de->nparams; i++)
        if (de->params[i].nvalues > 1)
            return err(item,
                       "%s: dataset '%s' sweeps '%s'; a claim needs one setting (split the "
                       "dataset into entries with one value each)",
                       what, de->name, de->params[i].name);
    if (!x->backend && cfg->nbackends > 1)
        return err(item, "%s: the config has %zu backends; name one with 'backend'", what,
                   cfg->nbackends);
    return RB_OK;
}

static int build_expect(loader *L, rb_config *cfg, ref item) {
    int rc;
    char buf[512];
    if (item.n->type != YAML_MAPPING_NODE)
        return err(item, "each entry of 'expect' must be a mapping, not %s", ntype(item.n));
    if ((rc = check_map(item, expect_keys, "expect"))) return rc;
    rb_expect *x = &cfg->expects[cfg->nexpects++];
    ref metv = get(item, "metric"), opv = get(item, "op"), vv = get(item, "value"),
        rv = get(item, "rtol"), av = get(item, "atol"), sv = get(item, "source"),
        tv = get(item, "than"), fv = get(item, "factor");
    const char *s;

    /* Source first: a claim without one is the error to report, whatever else is wrong. */
    if (!sv.n || (sv.n->type == YAML_SCALAR_NODE && is_null(sv)))
        return err(sv.n ? sv : item,
                   "expect: 'source' is required (where the claim comes from: paper, table, "
                   "equation)");
    if ((rc = want_string(sv, "expect source", &s))) return rc;
    if (strspn(s, " \t\r\n") == strlen(s)) return err(sv, "expect: 'source' is empty");
    if (!(x->source = strdup(s))) return oom();

    const rb_method_entry *first = NULL;
    if ((rc = build_selector(L, cfg, item, x, "expect", &first))) return rc;
    if (!metv.n) return err(item, "expect: 'metric' is required");
    if ((rc = want_string(metv, "expect metric", &s))) return rc;
    if (!L->h->metric_known(s, first->m->family))
        return err(metv, "expect: unknown metric '%s' for the %s family", s,
                   rb_family_name(first->m->family));
    if (!metric_computed(cfg, s))
        return err(metv, "expect: metric '%s' is not computed: %s", s, how_computed(s));
    /* A NAME/head metric has one row per (layer, head) slice: grading it would average them. */
    if (rb_metric_is_per_head(s))
        return err(metv,
                   "expect: '%s' has a row per (layer, head), and a claim grades one value; "
                   "grade the pooled '%.*s'",
                   s, (int) (strlen(s) - strlen("/head")), s);
    if (!(x->metric = strdup(s))) return oom();

    strcpy(x->op, "~=");
    if (opv.n) {
        if ((rc = want_string(opv, "expect op", &s))) return rc;
        if (!in_list(expect_ops, s))
            return err(opv, "expect: op '%s' is not one of %s", s,
                       join(expect_ops, buf, sizeof buf));
        snprintf(x->op, sizeof x->op, "%s", s);
    }
    x->factor = 1;
    if (tv.n) {
        if (vv.n) return err(vv, "expect: give 'value' or 'than', not both");
        if (tv.n->type != YAML_MAPPING_NODE)
            return err(tv, "expect: 'than' must be a mapping naming a cell, e.g. {label: tq, "
                           "params: {bits: 3}}");
        if ((rc = check_map(tv, than_keys, "expect than"))) return rc;
        if (!(x->than = calloc(1, sizeof *x->than))) return oom();
        const rb_method_entry *tfirst = NULL;
        if ((rc = build_selector(L, cfg, tv, x->than, "expect than", &tfirst)) ||
            (rc = check_one_setting(cfg, tv, x->than, tfirst, "expect than")))
            return rc;
        if (!L->h->metric_known(x->metric, tfirst->m->family))
            return err(tv, "expect than: metric '%s' is not one of the %s family's", x->metric,
                       rb_family_name(tfirst->m->family));
        if (fv.n && (rc = want_double(fv, "expect factor", &x->factor))) return rc;
        if (!(x->factor > 0) || !isfinite(x->factor))
            return err(fv, "expect: factor must be a positive number");
    } else {
        if (fv.n) return err(fv, "expect: 'factor' applies with 'than' only");
        if (!vv.n) return err(item, "expect: 'value' (a number) or 'than' (a cell) is required");
        if ((rc = want_double(vv, "expect value", &x->value))) return rc;
    }
    x->rtol = 0.01;
    x->atol = 0;
    if (strcmp(x->op, "~=") != 0 && (rv.n || av.n))
        return err(rv.n ? rv : av, "expect: rtol and atol apply to op ~= only, not %s", x->op);
    if (rv.n && (rc = want_double(rv, "expect rtol", &x->rtol))) return rc;
    if (av.n && (rc = want_double(av, "expect atol", &x->atol))) return rc;
    if (x->rtol < 0) return err(rv, "expect: rtol must be >= 0");
    if (x->atol < 0) return err(av, "expect: atol must be >= 0");
    return check_one_setting(cfg, item, x, first, "expect");
}

/* x and series of a plot: label/method/dataset/backend or a parameter of something in the
 * config. */
static int plot_axis_ok(const rb_config *cfg, const char *name) {
    static const char *const fixed[] = {"label", "method", "dataset", "backend", NULL};
    if (in_list(fixed, name)) return 1;
    for (size_t i = 0; i < cfg->nmethods; i++)
        if (table_has(cfg->methods[i].m->params, cfg->methods[i].m->nparams, name)) return 1;
    for (size_t i = 0; i < cfg->ndatasets; i++)
        if (table_has(cfg->datasets[i].k->params, cfg->datasets[i].k->nparams, name)) return 1;
    return 0;
}

static int build_plot(rb_config *cfg, ref item) {
    int rc;
    if (item.n->type != YAML_MAPPING_NODE)
        return err(item, "each entry of 'plots' must be a mapping, not %s", ntype(item.n));
    if ((rc = check_map(item, plot_keys, "plot"))) return rc;
    rb_plot *p = &cfg->plots[cfg->nplots++];
    p->pos = pos(item);
    ref xv = get(item, "x"), yv = get(item, "y"), sv = get(item, "series"), lx = get(item, "logx"),
        ly = get(item, "logy"), tv = get(item, "title"), dv = get(item, "dataset"),
        mv = get(item, "method"), xm = get(item, "x_metric");
    const char *s;
    if (xv.n && xm.n)
        return err(xm, "plot: x and x_metric exclude each other (x_metric puts each point at its "
                       "cell's value of a metric, x at a parameter or name)");
    if (!xv.n && !xm.n) return err(item, "plot: 'x' (or 'x_metric') is required");
    if (!yv.n) return err(item, "plot: 'y' is required");
    if ((rc = want_string(yv, "plot y", &s))) return rc;
    int kfamily = metric_family_computed(cfg, s);
    int sliced = rb_metric_is_per_head(s); /* per-slice rows: layer, head */
    if (!metric_computed(cfg, s) && !kfamily)
        return err(yv, "plot: y '%s' is not a metric the run computes (metrics: %s): %s", s,
                   names_of(cfg->metrics, cfg->nmetrics, sizeof *cfg->metrics, (char[512]){0}, 512),
                   how_computed(s));
    if (!(p->y = strdup(s))) return oom();
    if (xm.n) {
        if ((rc = want_string(xm, "plot x_metric", &s))) return rc;
        if (!metric_computed(cfg, s))
            return err(
                xm, "plot: x_metric '%s' is not a metric the run computes (metrics: %s): %s", s,
                names_of(cfg->metrics, cfg->nmetrics, sizeof *cfg->metrics, (char[512]){0}, 512),
                how_computed(s));
        if (kfamily || sliced)
            return err(xm, "plot: x_metric needs a y with one value per cell (not %s)", p->y);
        if (rb_metric_is_latency(s) || rb_metric_is_per_head(s))
            return err(xm,
                       "plot: x_metric '%s' has no one value per cell (a timing's samples, or a "
                       "value per head): use an accuracy metric such as bits",
                       s);
        if (!(p->x_metric = strdup(s))) return oom();
    } else {
        if ((rc = want_string(xv, "plot x", &s))) return rc;
        if (!plot_axis_ok(cfg, s) && !(kfamily && !strcmp(s, "k")) &&
            !(sliced && (!strcmp(s, "layer") || !strcmp(s, "head"))))
            return err(xv,
                       "plot: x '%s' is not label, method, dataset, backend or a parameter of a "
                       "method or dataset in this config%s",
                       s, kfamily ? " (or k, with this y)" : "");
        if (!(p->x = strdup(s))) return oom();
    }
    s = "label";
    if (sv.n && (rc = want_string(sv, "plot series", &s))) return rc;
    if (!plot_axis_ok(cfg, s) && !(kfamily && !strcmp(s, "k")) &&
        !(sliced && (!strcmp(s, "layer") || !strcmp(s, "head"))))
        return err(sv,
                   "plot: series '%s' is not label, method, dataset, backend or a parameter of a "
                   "method or dataset in this config",
                   s);
    if (!(p->series = strdup(s))) return oom();
    if (lx.n && (rc = want_bool(lx, "plot logx", &p->logx))) return rc;
    if (ly.n && (rc = want_bool(ly, "plot logy", &p->logy))) return rc;
    if (tv.n) {
        if ((rc = want_string(tv, "plot title", &s))) return rc;
        if (!(p->title = strdup(s))) return oom();
    }
    if (dv.n) {
        if ((rc = want_string(dv, "plot dataset", &s))) return rc;
        if (dataset_index(cfg, s) < 0) return err(dv, "plot: no dataset named '%s'", s);
        if (!(p->dataset = strdup(s))) return oom();
    }
    if (mv.n) {
        if ((rc = want_string(mv, "plot method", &s))) return rc;
        int found = 0;
        for (size_t i = 0; i < cfg->nmethods && !found; i++)
            found = !strcmp(cfg->methods[i].method, s) || !strcmp(cfg->methods[i].label, s);
        if (!found) return err(mv, "plot: no method entry has method or label '%s'", s);
        if (!(p->method = strdup(s))) return oom();
    }
    ref bv = get(item, "baselines");
    if (bv.n && (rc = want_seq(bv, "plot baselines"))) return rc;
    size_t nb = bv.n ? seq_len(bv) : 0;
    if (nb && !(p->baselines = calloc(nb, sizeof *p->baselines))) return oom();
    for (size_t i = 0; i < nb; i++) {
        ref b = seq_item(bv, i);
        if ((rc = want_string(b, "plot baseline", &s))) return rc;
        int found = 0;
        for (size_t j = 0; j < cfg->nmethods && !found; j++)
            found = !strcmp(cfg->methods[j].label, s);
        if (!found) return err(b, "plot: baseline '%s' is not the label of a method entry", s);
        if (!(p->baselines[p->nbaselines++] = strdup(s))) return oom();
    }
    return RB_OK;
}

static int build_latency(loader *L, rb_config *cfg) {
    rb_latency *l = &cfg->latency;
    l->min_time = 0.05;
    l->repetitions = 5;
    l->batch = 0;
    if (!L->latency.n) return RB_OK;
    l->enabled = 1;
    int rc;
    char buf[256];
    if (!L->lat_ops.n) return err(L->latency, "latency: 'ops' is required (e.g. [encode, decode])");
    ref ov = L->lat_ops;
    if ((rc = want_seq(ov, "latency ops"))) return rc;
    if (!seq_len(ov)) return err(ov, "latency: 'ops' must not be empty");
    if (!(l->ops = calloc(seq_len(ov), sizeof *l->ops))) return oom();
    for (size_t i = 0; i < seq_len(ov); i++) {
        ref it = seq_item(ov, i);
        const char *s;
        if ((rc = want_string(it, "a latency op", &s))) return rc;
        if (!in_list(latency_ops, s))
            return err(it, "latency: unknown op '%s' (known: %s)", s,
                       join(latency_ops, buf, sizeof buf));
        if (!in_list(latency_ops_timed, s))
            return err(it, "latency: op '%s' is not timed yet (timed: %s)", s,
                       join(latency_ops_timed, buf, sizeof buf));
        for (size_t j = 0; j < l->nops; j++)
            if (!strcmp(l->ops[j], s)) return err(it, "latency: op '%s' appears twice", s);
        if (!(l->ops[l->nops++] = strdup(s))) return oom();
    }
    if (L->lat_min_time.n) {
        if ((rc = want_double(L->lat_min_time, "latency min_time", &l->min_time))) return rc;
        /* bounded as `rotabench bench --min-time`: a huge value would never end the run */
        if (!(l->min_time > 0 && l->min_time <= 60))
            return err(L->lat_min_time, "latency: min_time must be in (0, 60] seconds, not %s",
                       text(L->lat_min_time));
    }
    if (L->lat_repetitions.n &&
        (rc = want_int(L->lat_repetitions, "latency repetitions", 1, 10000, &l->repetitions)))
        return rc;
    uint64_t batch = 0;
    if (L->lat_batch.n &&
        (rc = want_u64(L->lat_batch, "latency batch", 0, (uint64_t) 1 << 40, &batch)))
        return rc;
    l->batch = (size_t) batch;
    return RB_OK;
}

static int build(loader *L, rb_config *cfg) {
    int rc;
    char buf[512];
    /* Files, outermost first, so every srcpos points into the config. */
    if (!(cfg->files = calloc(L->nsrcs, sizeof *cfg->files))) return oom();
    size_t fi = L->nsrcs;
    for (src *s = L->srcs; s; s = s->next) {
        if (!(cfg->files[--fi] = strdup(s->file))) return oom();
        cfg->nfiles++;
        s->cfgname = cfg->files[fi];
    }
    if (fi != 0) return oom(); /* not reached: nfiles counts every src */

    if (!L->name.n) return err(L->top, "'name' is required");
    const char *s;
    if ((rc = want_plain(L->name, "'name'", &s))) return rc;
    if (!(cfg->name = strdup(s))) return oom();
    cfg->seed = 1;
    if (L->seed.n && (rc = want_u64(L->seed, "seed", 0, UINT64_MAX, &cfg->seed))) return rc;
    cfg->repeats = 1;
    if (L->repeats.n && (rc = want_int(L->repeats, "repeats", 1, 1000000, &cfg->repeats)))
        return rc;

    if (L->backends.n) {
        ref bv = L->backends;
        if ((rc = want_seq(bv, "'backends'"))) return rc;
        if (!seq_len(bv)) return err(bv, "'backends' must not be empty");
        if (!(cfg->backends = calloc(seq_len(bv), sizeof *cfg->backends))) return oom();
        for (size_t i = 0; i < seq_len(bv); i++) {
            ref it = seq_item(bv, i);
            if ((rc = want_string(it, "a backend", &s))) return rc;
            if (!in_list(backend_names, s))
                return err(it, "unknown backend '%s' (allowed: %s)", s,
                           join(backend_names, buf, sizeof buf));
            for (size_t j = 0; j < cfg->nbackends; j++)
                if (!strcmp(cfg->backends[j], s)) return err(it, "backend '%s' appears twice", s);
            if (!(cfg->backends[cfg->nbackends++] = strdup(s))) return oom();
        }
    } else {
        if (!(cfg->backends = calloc(1, sizeof *cfg->backends)) ||
            !(cfg->backends[0] = strdup("cpu")))
            return oom();
        cfg->nbackends = 1;
    }

    if (!L->datasets.n) return err(L->top, "'datasets' is required and must not be empty");
    if (!(cfg->datasets = calloc(L->datasets.n, sizeof *cfg->datasets))) return oom();
    for (size_t i = 0; i < L->datasets.n; i++)
        if ((rc = build_dataset(L, cfg, L->datasets.v[i]))) return rc;

    if (!L->methods.n) return err(L->top, "'methods' is required and must not be empty");
    if (!(cfg->methods = calloc(L->methods.n, sizeof *cfg->methods))) return oom();
    unsigned char *label_given = calloc(L->methods.n, 1);
    if (!label_given) return oom();
    for (size_t i = 0; i < L->methods.n && !rc; i++)
        rc = build_method(L, cfg, L->methods.v[i], label_given);
    free(label_given);
    if (rc) return rc;

    if (!L->metrics.n) return err(L->top, "'metrics' is required and must not be empty");
    if (!(cfg->metrics = calloc(L->metrics.n, sizeof *cfg->metrics)) ||
        !(cfg->metric_pos = calloc(L->metrics.n, sizeof *cfg->metric_pos)))
        return oom();
    unsigned fam = families_of(cfg);
    for (size_t i = 0; i < L->metrics.n; i++) {
        ref it = L->metrics.v[i];
        if (!metric_ok(L, text(it), fam)) {
            if ((rc = recall_name_error(it, fam))) return rc;
            return err(it, "unknown metric '%s' for the %s methods of this config", text(it),
                       family_names(fam, buf, sizeof buf));
        }
        if ((rc = check_recall_counts(cfg, it))) return rc;
        cfg->metric_pos[cfg->nmetrics] = pos(it);
        if (!(cfg->metrics[cfg->nmetrics++] = strdup(text(it)))) return oom();
    }

    if ((rc = build_latency(L, cfg))) return rc;

    if (L->expect.n && !(cfg->expects = calloc(L->expect.n, sizeof *cfg->expects))) return oom();
    for (size_t i = 0; i < L->expect.n; i++)
        if ((rc = build_expect(L, cfg, L->expect.v[i]))) return rc;
    if (L->plots.n && !(cfg->plots = calloc(L->plots.n, sizeof *cfg->plots))) return oom();
    for (size_t i = 0; i < L->plots.n; i++)
        if ((rc = build_plot(cfg, L->plots.v[i]))) return rc;
    return RB_OK;
}

/* ---- the resolved config as JSON, and its sha256 ---- */

/* Adds v to object o (or appends it to array o when key is NULL); a NULL v (out of memory) marks
 * the whole document bad. */
static void put(json_t *o, const char *key, json_t *v, int *bad) {
    int rc = key ? json_object_set_new(o, key, v) : json_array_append_new(o, v);
    if (rc) *bad = 1;
}

static json_t *strings(char *const *list, size_t n, int *bad) {
    json_t *a = json_array();
    if (!a) *bad = 1;
    for (size_t i = 0; a && i < n; i++) put(a, NULL, json_string(list[i]), bad);
    return a;
}

static void put_sweep(json_t *o, const rb_sweep_param *p, int *bad) {
    put(o, p->name, p->is_list ? strings(p->values, p->nvalues, bad) : json_string(p->values[0]),
        bad);
}

/* {method, label, dataset, backend, params} of a claim's cell selector (absent fields left out). */
static json_t *selector_json(const rb_expect *x, int *bad) {
    json_t *o = json_object(), *p = json_object();
    if (!o || !p) {
        *bad = 1;
        json_decref(o);
        json_decref(p);
        return NULL;
    }
    if (x->method) put(o, "method", json_string(x->method), bad);
    if (x->label) put(o, "label", json_string(x->label), bad);
    if (x->dataset) put(o, "dataset", json_string(x->dataset), bad);
    if (x->backend) put(o, "backend", json_string(x->backend), bad);
    for (size_t j = 0; j < x->nparams; j++)
        put(p, x->param_names[j], json_string(x->param_values[j]), bad);
    put(o, "params", p, bad);
    return o;
}

static json_t *resolved(const rb_config *cfg, int *bad) {
    json_t *root = json_object();
    if (!root) {
        *bad = 1;
        return NULL;
    }
    put(root, "name", json_string(cfg->name), bad);
    /* json_int_t is signed: seeds above INT64_MAX are kept exact as text. */
    if (cfg->seed <= (uint64_t) INT64_MAX)
        put(root, "seed", json_integer((json_int_t) cfg->seed), bad);
    else {
        char t[32];
        snprintf(t, sizeof t, "%llu", (unsigned long long) cfg->seed);
        put(root, "seed", json_string(t), bad);
    }
    put(root, "repeats", json_integer(cfg->repeats), bad);
    put(root, "backends", strings(cfg->backends, cfg->nbackends, bad), bad);
    put(root, "metrics", strings(cfg->metrics, cfg->nmetrics, bad), bad);

    json_t *a = json_array();
    for (size_t i = 0; a && i < cfg->ndatasets; i++) {
        const rb_dataset_entry *d = &cfg->datasets[i];
        json_t *o = json_object();
        if (o) {
            put(o, "name", json_string(d->name), bad);
            put(o, "kind", json_string(d->kind), bad);
            for (size_t j = 0; j < d->nparams; j++) put_sweep(o, &d->params[j], bad);
        }
        put(a, NULL, o, bad);
    }
    put(root, "datasets", a, bad);

    a = json_array();
    for (size_t i = 0; a && i < cfg->nmethods; i++) {
        const rb_method_entry *m = &cfg->methods[i];
        json_t *o = json_object(), *p = json_object();
        if (o) {
            put(o, "method", json_string(m->method), bad);
            put(o, "label", json_string(m->label), bad);
            if (m->ndatasets) put(o, "datasets", strings(m->datasets, m->ndatasets, bad), bad);
        }
        for (size_t j = 0; p && j < m->nparams; j++) put_sweep(p, &m->params[j], bad);
        if (o)
            put(o, "params", p, bad);
        else
            json_decref(p);
        put(a, NULL, o, bad);
    }
    put(root, "methods", a, bad);

    if (cfg->latency.enabled) {
        json_t *o = json_object();
        if (o) {
            put(o, "ops", strings(cfg->latency.ops, cfg->latency.nops, bad), bad);
            put(o, "min_time", json_real(cfg->latency.min_time), bad);
            put(o, "repetitions", json_integer(cfg->latency.repetitions), bad);
            put(o, "batch", json_integer((json_int_t) cfg->latency.batch), bad);
        }
        put(root, "latency", o, bad);
    } else {
        put(root, "latency", json_null(), bad);
    }

    a = json_array();
    for (size_t i = 0; a && i < cfg->nexpects; i++) {
        const rb_expect *x = &cfg->expects[i];
        json_t *o = selector_json(x, bad);
        if (o) {
            put(o, "metric", json_string(x->metric), bad);
            put(o, "op", json_string(x->op), bad);
            if (!x->than) put(o, "value", json_real(x->value), bad);
            if (!strcmp(x->op, "~=")) {
                put(o, "rtol", json_real(x->rtol), bad);
                put(o, "atol", json_real(x->atol), bad);
            }
            put(o, "source", json_string(x->source), bad);
            if (x->than) {
                put(o, "than", selector_json(x->than, bad), bad);
                put(o, "factor", json_real(x->factor), bad);
            }
        }
        put(a, NULL, o, bad);
    }
    put(root, "expect", a, bad);

    a = json_array();
    for (size_t i = 0; a && i < cfg->nplots; i++) {
        const rb_plot *p = &cfg->plots[i];
        json_t *o = json_object();
        if (o) {
            /* one of the two; "x" absent with x_metric */
            if (p->x_metric)
                put(o, "x_metric", json_string(p->x_metric), bad);
            else
                put(o, "x", json_string(p->x), bad);
            put(o, "y", json_string(p->y), bad);
            put(o, "series", json_string(p->series), bad);
            put(o, "logx", json_boolean(p->logx), bad);
            put(o, "logy", json_boolean(p->logy), bad);
            if (p->title) put(o, "title", json_string(p->title), bad);
            if (p->dataset) put(o, "dataset", json_string(p->dataset), bad);
            if (p->method) put(o, "method", json_string(p->method), bad);
            if (p->nbaselines) { /* absent when empty: older configs keep their sha256 */
                json_t *b = json_array();
                for (size_t j = 0; b && j < p->nbaselines; j++)
                    put(b, NULL, json_string(p->baselines[j]), bad);
                put(o, "baselines", b, bad);
            }
        }
        put(a, NULL, o, bad);
    }
    put(root, "plots", a, bad);
    return root;
}

static int finish(rb_config *cfg) {
    int bad = 0;
    json_t *root = resolved(cfg, &bad);
    if (root && !bad) cfg->resolved_json = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(root);
    if (!cfg->resolved_json) return oom();
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, strlen(cfg->resolved_json), (const uint8_t *) cfg->resolved_json);
    sha256_digest(&c, sizeof d, d);
    for (size_t i = 0; i < sizeof d; i++) snprintf(cfg->sha256 + 2 * i, 3, "%02x", d[i]);
    return RB_OK;
}

/* ---- public entry points ---- */

static void free_sweep(rb_sweep_param *p, size_t n) {
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].name);
        for (size_t j = 0; j < p[i].nvalues; j++) free(p[i].values[j]);
        free(p[i].values);
    }
    free(p);
}

static void free_strings(char **list, size_t n) {
    for (size_t i = 0; list && i < n; i++) free(list[i]);
    free(list);
}

static void free_selector(rb_expect *x) {
    free(x->method);
    free(x->label);
    free(x->dataset);
    free_strings(x->param_names, x->nparams);
    free_strings(x->param_values, x->nparams);
    free(x->backend);
}

void rb_config_free(rb_config *cfg) {
    if (!cfg) return;
    free(cfg->path);
    free_strings(cfg->files, cfg->nfiles);
    free(cfg->name);
    free_strings(cfg->backends, cfg->nbackends);
    for (size_t i = 0; cfg->datasets && i < cfg->ndatasets; i++) {
        free(cfg->datasets[i].name);
        free(cfg->datasets[i].kind);
        free_sweep(cfg->datasets[i].params, cfg->datasets[i].nparams);
    }
    free(cfg->datasets);
    for (size_t i = 0; cfg->methods && i < cfg->nmethods; i++) {
        free(cfg->methods[i].method);
        free(cfg->methods[i].label);
        free_sweep(cfg->methods[i].params, cfg->methods[i].nparams);
        free_strings(cfg->methods[i].datasets, cfg->methods[i].ndatasets);
    }
    free(cfg->methods);
    free_strings(cfg->metrics, cfg->nmetrics);
    free(cfg->metric_pos);
    free_strings(cfg->latency.ops, cfg->latency.nops);
    for (size_t i = 0; cfg->expects && i < cfg->nexpects; i++) {
        rb_expect *x = &cfg->expects[i];
        free_selector(x);
        if (x->than) free_selector(x->than);
        free(x->than);
        free(x->metric);
        free(x->source);
    }
    free(cfg->expects);
    for (size_t i = 0; cfg->plots && i < cfg->nplots; i++) {
        rb_plot *p = &cfg->plots[i];
        free(p->x);
        free(p->x_metric);
        free(p->y);
        free(p->series);
        free(p->title);
        free(p->dataset);
        free(p->method);
        for (size_t j = 0; j < p->nbaselines; j++) free(p->baselines[j]);
        free(p->baselines);
    }
    free(cfg->plots);
    free(cfg->resolved_json);
    memset(cfg, 0, sizeof *cfg);
}

int rb_config_load_with(const char *path, const rb_config_hooks *hooks, rb_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    loader L;
    memset(&L, 0, sizeof L);
    L.h = hooks ? hooks : &rb_config_default_hooks;
    int rc = load_file(&L, path, (ref){NULL, NULL});
    if (!rc && !(cfg->path = xstrdup(path))) rc = oom();
    if (!rc) rc = build(&L, cfg);
    if (!rc) rc = finish(cfg);
    if (rc) rb_config_free(cfg);
    while (L.srcs) {
        src *s = L.srcs;
        L.srcs = s->next;
        if (s->has_doc) yaml_document_delete(&s->doc);
        free(s->file);
        free(s->real);
        free(s);
    }
    free(L.datasets.v);
    free(L.methods.v);
    free(L.metrics.v);
    free(L.expect.v);
    free(L.plots.v);
    return rc;
}

int rb_config_load(const char *path, rb_config *cfg) {
    return rb_config_load_with(path, &rb_config_default_hooks, cfg);
}

/* ---- sweep expansion ---- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char) *s) * 0x100000001b3ULL;
    return h;
}

/* Number of combinations of an entry's params; 0 on overflow past the cell limit. */
static size_t combos(const rb_sweep_param *p, size_t n) {
    size_t c = 1;
    for (size_t i = 0; i < n; i++) {
        if (p[i].nvalues > RB_SWEEP_MAX_CELLS / c) return 0;
        c *= p[i].nvalues;
    }
    return c;
}

/* Odometer over value indices, last parameter fastest; 0 when it wraps around. */
static int next_combo(size_t *idx, const rb_sweep_param *p, size_t n) {
    for (size_t k = n; k-- > 0;) {
        if (++idx[k] < p[k].nvalues) return 1;
        idx[k] = 0;
    }
    return 0;
}

static int set_combo(rb_params *out, const rb_param_def *defs, size_t ndefs,
                     const rb_sweep_param *p, size_t n, const size_t *idx) {
    int rc = rb_params_init(out, defs, ndefs);
    for (size_t k = 0; !rc && k < n; k++) rc = rb_params_set(out, p[k].name, p[k].values[idx[k]]);
    return rc;
}

static int cmp_key(const void *a, const void *b) {
    return strcmp((*(rb_cell *const *) a)->key, (*(rb_cell *const *) b)->key);
}

/* A cell key past its buffer: the error at the entry whose text is the larger part of it (the
 * dataset's name and parameter values, paths included, or the method's label and values). */
static int key_too_long(const rb_config *cfg, const rb_dataset_entry *d, const rb_method_entry *m,
                        const char *dtext, const char *mtext, size_t max) {
    int ds = strlen(d->name) + strlen(dtext) >= strlen(m->label) + strlen(mtext);
    const rb_srcpos *at = ds ? &d->pos : &m->pos;
    return rb_error_set(
        RB_ECONFIG,
        "%s:%d:%d: %s '%.60s' (with %s '%.60s'): the cell key (names, label and "
        "parameter values) is longer than %zu characters; shorten %s",
        at->file ? at->file : cfg->path, at->line, at->col, ds ? "dataset" : "method",
        ds ? d->name : m->label, ds ? "method" : "dataset", ds ? m->label : d->name, max,
        ds ? "the dataset's name or its parameter values (a relative path for a long "
             "absolute one)"
           : "the label or the method's parameter values");
}

int rb_sweep_expand(const rb_config *cfg, rb_cell **cells, size_t *ncells) {
    *cells = NULL;
    *ncells = 0;
    /* Cells: for each dataset setting, every setting of the entries that run on it, times the
     * backends and repeats; counted with saturation at RB_SWEEP_MAX_CELLS + 1. */
    const size_t cap = (size_t) RB_SWEEP_MAX_CELLS + 1;
    size_t per = cfg->nbackends * (size_t) cfg->repeats, pairs = 0;
    for (size_t i = 0; i < cfg->ndatasets; i++) {
        size_t nd = combos(cfg->datasets[i].params, cfg->datasets[i].nparams), nm = 0;
        for (size_t j = 0; j < cfg->nmethods; j++) {
            if (!rb_entry_runs_on(&cfg->methods[j], cfg->datasets[i].name)) continue;
            size_t c = combos(cfg->methods[j].params, cfg->methods[j].nparams);
            nm = !c || nm + c > cap ? cap : nm + c;
        }
        size_t p = !nd || nd > cap || (nm && nd > cap / nm) ? cap : nd * nm;
        pairs = pairs + p > cap ? cap : pairs + p;
    }
    if (pairs >= cap || (per && pairs > RB_SWEEP_MAX_CELLS / per)) {
        char n[48];
        if (pairs < cap)
            snprintf(n, sizeof n, "%zu", pairs);
        else
            snprintf(n, sizeof n, "more than %d", RB_SWEEP_MAX_CELLS);
        return rb_error_set(RB_ECONFIG,
                            "%s: the sweep has more than %d cells (%s (dataset, method) settings "
                            "x %zu backend%s x %d repeat%s): lower the repeats, the backends or "
                            "the swept values",
                            cfg->path, RB_SWEEP_MAX_CELLS, n, cfg->nbackends,
                            cfg->nbackends == 1 ? "" : "s", cfg->repeats,
                            cfg->repeats == 1 ? "" : "s");
    }
    size_t total = pairs * per;
    rb_cell *out = calloc(total ? total : 1, sizeof *out);
    rb_cell **order = malloc((total ? total : 1) * sizeof *order);
    if (!out || !order) {
        free(out);
        free(order);
        return oom();
    }
    size_t n = 0;
    int rc = RB_OK;
    char dtext[RB_PARAMS_MAX * RB_PARAM_TEXT_MAX], mtext[RB_PARAMS_MAX * RB_PARAM_TEXT_MAX];
    char buf[sizeof dtext + sizeof mtext + 512];
    for (size_t di = 0; di < cfg->ndatasets && !rc; di++) {
        const rb_dataset_entry *d = &cfg->datasets[di];
        size_t didx[RB_PARAMS_MAX] = {0};
        do {
            rb_params dp;
            if ((rc = set_combo(&dp, d->k->params, d->k->nparams, d->params, d->nparams, didx)))
                break;
            rb_params_format(&dp, 0, dtext, sizeof dtext);
            snprintf(buf, sizeof buf, "%s|%s", d->name, dtext);
            uint64_t dhash = fnv1a(buf);
            for (size_t mi = 0; mi < cfg->nmethods && !rc; mi++) {
                const rb_method_entry *m = &cfg->methods[mi];
                if (!rb_entry_runs_on(m, d->name)) continue;
                size_t midx[RB_PARAMS_MAX] = {0};
                do {
                    rb_params mp;
                    if ((rc = set_combo(&mp, m->m->params, m->m->nparams, m->params, m->nparams,
                                        midx)))
                        break;
                    rb_params_format(&mp, 0, mtext, sizeof mtext);
                    snprintf(buf, sizeof buf, "%s|%s|%s", m->label, mtext, d->name);
                    uint64_t mhash = fnv1a(buf);
                    for (size_t bi = 0; bi < cfg->nbackends; bi++)
                        for (int r = 0; r < cfg->repeats; r++) {
                            rb_cell *c = &out[n];
                            c->index = n;
                            c->dataset = di;
                            c->method = mi;
                            c->dparams = dp;
                            c->mparams = mp;
                            c->backend = cfg->backends[bi];
                            c->repeat = r;
                            c->data_seed = rb_seed_derive(cfg->seed, dhash, (uint64_t) r);
                            c->method_seed = rb_seed_derive(cfg->seed, mhash, (uint64_t) r);
                            int len = snprintf(c->key, sizeof c->key, "%s|%s|%s|%s|%s|%d", d->name,
                                               m->label, mtext, dtext, c->backend, r);
                            if (len < 0 || (size_t) len >= sizeof c->key) {
                                rc = key_too_long(cfg, d, m, dtext, mtext, sizeof c->key - 1);
                                break;
                            }
                            order[n] = c;
                            n++;
                        }
                } while (!rc && next_combo(midx, m->params, m->nparams));
            }
        } while (!rc && next_combo(didx, d->params, d->nparams));
    }
    if (rc) {
        /* rb_params_set cannot fail on a loaded config; a failure means it was edited by hand. */
        free(out);
        free(order);
        return rc < 0 && rc != RB_ECONFIG
                   ? rb_error_set(RB_ECONFIG, "%s: %s", cfg->path, rb_error_detail())
                   : rc;
    }
    RB_ASSERT(n == total);
    qsort(order, n, sizeof *order, cmp_key);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(order[i - 1]->key, order[i]->key)) {
            rc = rb_error_set(RB_ECONFIG, "%s: two cells have the same key '%s'", cfg->path,
                              order[i]->key);
            free(out);
            free(order);
            return rc;
        }
    free(order);
    *cells = out;
    *ncells = n;
    return RB_OK;
}
