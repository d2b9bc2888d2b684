/* `rotabench compare`: reads two results directories, pools repeats per row identity, diffs
 * accuracy rows against tolerances and latency rows with a Mann-Whitney U test, prints a
 * benchstat-style table per metric and decides the exit status. */
#include "harness/compare.h"
#include "harness/record.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/stats_test.h"
#include "kernels/error.h"

/* Which way is better for metrics the registry does not know (fnmatch patterns, first match
 * wins). Anything else is RB_BETTER_EXACT: a change beyond the tolerance is a regression whichever
 * way it goes, the safe default for deterministic results. */
static const struct {
    const char *pattern;
    rb_better dir;
} fallback_dirs[] = {
    {"bits*", RB_BETTER_EXACT},    {"*nmse", RB_BETTER_LOWER},     {"mse", RB_BETTER_LOWER},
    {"d_dprod", RB_BETTER_LOWER},  {"*_err", RB_BETTER_LOWER},     {"*_error", RB_BETTER_LOWER},
    {"*kl", RB_BETTER_LOWER},      {"kurtosis*", RB_BETTER_LOWER}, {"incoherence", RB_BETTER_LOWER},
    {"recall*", RB_BETTER_HIGHER}, {"success*", RB_BETTER_HIGHER}, {"sqnr*", RB_BETTER_HIGHER},
    {"*qsur", RB_BETTER_HIGHER},
};

rb_better rb_metric_direction(const char *metric) {
    const rb_metric *m = rb_metric_find(metric);
    if (m) return m->better;
    for (size_t i = 0; i < sizeof fallback_dirs / sizeof fallback_dirs[0]; i++)
        if (!fnmatch(fallback_dirs[i].pattern, metric, 0)) return fallback_dirs[i].dir;
    return RB_BETTER_EXACT;
}

static const char *dir_text(rb_better d) {
    return d == RB_BETTER_LOWER    ? "lower is better"
           : d == RB_BETTER_HIGHER ? "higher is better"
                                   : "any change counts";
}

/* The sha256 of the resolved config in a parsed context.json: the one place that knows the
 * field's path. */
#define CONTEXT_SHA_FIELD "run.config_sha256"
static const char *context_config_sha(json_t *ctx) {
    return json_string_value(json_object_get(json_object_get(ctx, "run"), "config_sha256"));
}

/* The rows of completed cells, through the same reader as report and resume (it skips marker
 * lines, drops a torn last line with a warning and names FILE:LINE for any other bad line). */
static int read_rows(const char *path, json_t **rows_out, FILE *out) {
    if (rb_results_read(path, rows_out) == RB_OK) return 0;
    fprintf(out, "compare: %s\n", rb_error_detail());
    return -1;
}

/* All the rows of one side with the same identity: repeats pooled. */
typedef struct group {
    json_t *row;     /* the first row (identity fields for display) */
    size_t line;     /* its line in results.jsonl */
    int version;     /* method_version */
    double sum;      /* accuracy: sum of the finite values */
    size_t nval;     /* values pooled (repeats) */
    size_t nnan;     /* values that were null or NaN */
    double *samples; /* latency: every repeat's samples, pooled */
    size_t ns, scap;
    int latency;  /* some row carried samples */
    long partner; /* index of the matching group on the other side, or -1 */
    int skip;     /* matched but not comparable (method version, kind of row) */
} group;

typedef struct side {
    const char *name; /* "BASE" / "NEW" */
    const char *dir;
    char *path; /* results.jsonl */
    char *sha;
    group *g;
    size_t ng, gcap;
    json_t *index; /* canonical key -> group index */
} side;

static void side_free(side *s) {
    for (size_t i = 0; i < s->ng; i++) {
        json_decref(s->g[i].row);
        free(s->g[i].samples);
    }
    free(s->g);
    free(s->path);
    free(s->sha);
    json_decref(s->index);
}

static char *path_join(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static const char *str_field(json_t *row, const char *k) {
    return json_string_value(json_object_get(row, k));
}

/* Checks one row's fields; returns the problem or NULL. */
static const char *row_problem(json_t *row) {
    static const char *strs[] = {"dataset", "method", "label", "backend", "metric"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!json_is_string(json_object_get(row, strs[i]))) return strs[i];
    if (!json_is_object(json_object_get(row, "params"))) return "params";
    json_t *d = json_object_get(row, "dparams");
    if (d && !json_is_object(d)) return "dparams";
    if (!json_is_integer(json_object_get(row, "method_version"))) return "method_version";
    json_t *v = json_object_get(row, "value");
    if (!v || !(json_is_number(v) || json_is_null(v))) return "value";
    json_t *s = json_object_get(row, "samples"), *x;
    size_t i;
    if (s && !json_is_null(s)) {
        if (!json_is_array(s)) return "samples";
        json_array_foreach(s, i, x) if (!json_is_number(x)) return "samples";
    }
    return NULL;
}

static int group_add(side *s, json_t *row, size_t line, FILE *out) {
    char *key = rb_row_key(row);
    if (!key) goto nomem;
    json_t *idx = json_object_get(s->index, key);
    group *g;
    if (idx) {
        g = &s->g[json_integer_value(idx)];
    } else {
        if (s->ng == s->gcap) {
            size_t cap = s->gcap ? 2 * s->gcap : 64;
            group *ng = realloc(s->g, cap * sizeof *ng);
            if (!ng) goto nomem;
            s->g = ng;
            s->gcap = cap;
        }
        g = &s->g[s->ng];
        memset(g, 0, sizeof *g);
        g->row = json_incref(row);
        g->line = line;
        g->version = (int) json_integer_value(json_object_get(row, "method_version"));
        g->partner = -1;
        json_object_set_new(s->index, key, json_integer((json_int_t) s->ng));
        s->ng++;
    }
    free(key);
    json_t *v = json_object_get(row, "value"), *samples = json_object_get(row, "samples"), *x;
    double val = json_is_number(v) ? json_number_value(v) : NAN;
    g->nval++;
    if (isfinite(val))
        g->sum += val;
    else
        g->nnan++;
    size_t i;
    if (json_array_size(samples) > 0) g->latency = 1;
    json_array_foreach(samples, i, x) {
        if (g->ns == g->scap) {
            size_t cap = g->scap ? 2 * g->scap : 64;
            double *ns = realloc(g->samples, cap * sizeof *ns);
            if (!ns) goto nomem;
            g->samples = ns;
            g->scap = cap;
        }
        g->samples[g->ns++] = json_number_value(x);
    }
    return 0;
nomem:
    free(key);
    fprintf(out, "compare: out of memory\n");
    return -1;
}

/* Loads one side: context.json (config sha) and results.jsonl (grouped rows). */
static int side_load(side *s, FILE *out) {
    struct stat st;
    if (stat(s->dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(out, "compare: %s: %s is not a results directory\n", s->name, s->dir);
        return -1;
    }
    char *ctx_path = path_join(s->dir, "context.json");
    json_error_t err = {.line = -1, .text = "out of memory"};
    json_t *ctx = ctx_path ? json_load_file(ctx_path, 0, &err) : NULL;
    int rc = 0;
    if (!ctx) {
        fprintf(out, "compare: %s:%d: cannot read context.json: %s\n", ctx_path ? ctx_path : "?",
                err.line, err.text);
        rc = -1;
    } else if (!context_config_sha(ctx)) {
        fprintf(out, "compare: %s: no %s\n", ctx_path, CONTEXT_SHA_FIELD);
        rc = -1;
    } else {
        s->sha = strdup(context_config_sha(ctx));
    }
    json_decref(ctx);
    free(ctx_path);
    if (rc) return rc;

    s->path = path_join(s->dir, "results.jsonl");
    s->index = json_object();
    json_t *rows = NULL, *row;
    size_t i;
    if (read_rows(s->path, &rows, out)) return -1;
    json_array_foreach(rows, i, row) {
        const char *bad = row_problem(row);
        size_t line = i + 1; /* rows are numbered among the completed cells' rows */
        if (bad) {
            fprintf(out, "compare: %s: row %zu: missing or invalid field '%s'\n", s->path, line,
                    bad);
            rc = -1;
            break;
        }
        if ((rc = group_add(s, row, line, out))) break;
    }
    json_decref(rows);
    return rc;
}

/* Appends "k=v,k=v" for the keys of obj that are in keep (all when keep is NULL). */
static void put_params(FILE *f, json_t *obj, json_t *keep) {
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach(obj, k, v) {
        if (keep && !json_object_get(keep, k)) continue;
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fprintf(f, "%s%s=%s", first ? "" : ",", k, s ? s : json_string_value(v));
        free(s);
        first = 0;
    }
}

/* label/dataset{dparams}/params/backend, showing only the params in the keep sets (all when
 * NULL): a table only needs the ones that vary. */
static char *row_name(json_t *row, json_t *dkeep, json_t *pkeep) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fprintf(f, "%s/%s", str_field(row, "label"), str_field(row, "dataset"));
    json_t *d = json_object_get(row, "dparams"), *p = json_object_get(row, "params");
    if (d && (!dkeep || json_object_size(dkeep))) {
        fputc('{', f);
        put_params(f, d, dkeep);
        fputc('}', f);
    }
    if (!pkeep || json_object_size(pkeep)) {
        fputc('/', f);
        put_params(f, p, pkeep);
    }
    fprintf(f, "/%s", str_field(row, "backend"));
    if (str_field(row, "slice")) fprintf(f, "[%s]", str_field(row, "slice"));
    fclose(f);
    return buf;
}

/* Marks in vary the keys of obj whose value differs from the first one seen (kept in first), and
 * keys missing from some rows. */
static void note_variation(json_t *obj, json_t *first, json_t *vary, int is_first_row) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        json_t *f = json_object_get(first, k);
        if (!f) {
            if (!is_first_row) json_object_set_new(vary, k, json_true());
            json_object_set(first, k, v);
        } else if (!json_equal(f, v)) {
            json_object_set_new(vary, k, json_true());
        }
    }
    json_object_foreach(first, k, v) if (!json_object_get(obj, k))
        json_object_set_new(vary, k, json_true());
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static double median(const double *x, size_t n) {
    double *c = n ? malloc(n * sizeof *c) : NULL;
    if (!c) return NAN;
    memcpy(c, x, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* Seconds with an SI prefix, 4 significant digits. */
static void fmt_seconds(char *buf, size_t n, double s) {
    if (!isfinite(s))
        snprintf(buf, n, "NaN");
    else if (s < 1e-6)
        snprintf(buf, n, "%.4gns", s * 1e9);
    else if (s < 1e-3)
        snprintf(buf, n, "%.4gus", s * 1e6);
    else if (s < 1)
        snprintf(buf, n, "%.4gms", s * 1e3);
    else
        snprintf(buf, n, "%.4gs", s);
}

enum { V_SAME = 0, V_REGRESSION, V_IMPROVEMENT };

/* One compared row of a table, formatted. */
typedef struct line {
    char *name;
    char old[32], new_[32], delta[32], p[16], n[32];
    int verdict;
    const char *note;
} line;

/* Accuracy: the mean over repeats on each side, then |new - old| against max(atol, rtol |old|),
 * the metric's direction deciding regression or improvement. A NaN (or null) on the new side
 * only is a regression, on the old side only an improvement (RB_BETTER_EXACT: a regression). */
static void diff_accuracy(const group *a, const group *b, rb_better dir, const rb_compare_opts *o,
                          line *l) {
    double x = a->nnan ? NAN : a->sum / (double) a->nval;
    double y = b->nnan ? NAN : b->sum / (double) b->nval;
    snprintf(l->old, sizeof l->old, "%.6g", x);
    snprintf(l->new_, sizeof l->new_, "%.6g", y);
    if (isnan(x)) snprintf(l->old, sizeof l->old, "NaN");
    if (isnan(y)) snprintf(l->new_, sizeof l->new_, "NaN");
    snprintf(l->p, sizeof l->p, "-");
    snprintf(l->n, sizeof l->n, "%zu+%zu", a->nval, b->nval);
    if (isnan(x) || isnan(y)) {
        if (isnan(x) && isnan(y)) {
            snprintf(l->delta, sizeof l->delta, "~");
            l->verdict = V_SAME;
        } else {
            snprintf(l->delta, sizeof l->delta, "?");
            l->verdict = dir == RB_BETTER_EXACT || isnan(y) ? V_REGRESSION : V_IMPROVEMENT;
            l->note = isnan(y) ? "new value is NaN/null" : "old value was NaN/null";
        }
        return;
    }
    double d = y - x, tol = fmax(o->atol, o->rtol * fabs(x));
    if (fabs(d) <= tol) {
        snprintf(l->delta, sizeof l->delta, "~");
        l->verdict = V_SAME;
        return;
    }
    if (x != 0)
        snprintf(l->delta, sizeof l->delta, "%+.2f%%", 100 * d / fabs(x));
    else
        snprintf(l->delta, sizeof l->delta, "%+.3g", d);
    int worse = dir == RB_BETTER_EXACT || (dir == RB_BETTER_LOWER ? d > 0 : d < 0);
    l->verdict = worse ? V_REGRESSION : V_IMPROVEMENT;
}

/* Latency: all samples pooled per side; a change when the U test rejects at alpha, and it counts
 * when the median moved by more than the threshold. */
static int diff_latency(const group *a, const group *b, const rb_compare_opts *o, line *l) {
    double ma = median(a->samples, a->ns), mb = median(b->samples, b->ns);
    fmt_seconds(l->old, sizeof l->old, ma);
    fmt_seconds(l->new_, sizeof l->new_, mb);
    snprintf(l->n, sizeof l->n, "%zu+%zu", a->ns, b->ns);
    rb_mwu_result r;
    if (rb_mwu_test(a->samples, a->ns, b->samples, b->ns, &r)) return -1;
    snprintf(l->p, sizeof l->p, r.p < 0.001 ? "%.1e" : "%.3f", r.p);
    double rel = mb / ma - 1;
    if (!(r.p < o->alpha)) {
        snprintf(l->delta, sizeof l->delta, "~");
        l->verdict = V_SAME;
        return 0;
    }
    snprintf(l->delta, sizeof l->delta, "%+.2f%%", 100 * rel);
    l->verdict = rel > o->latency_threshold    ? V_REGRESSION
                 : rel < -o->latency_threshold ? V_IMPROVEMENT
                                               : V_SAME;
    if (l->verdict == V_SAME) l->note = "below threshold";
    return 0;
}

/* Prints the table of one metric: rows of base (in file order) that matched. Adds to counts. */
static int print_table(const side *a, const side *b, const char *metric, const rb_compare_opts *o,
                       FILE *out, size_t counts[3]) {
    /* which dparams/params vary within the table: only those go into the names */
    json_t *dfirst = json_object(), *pfirst = json_object();
    json_t *dvary = json_object(), *pvary = json_object(), *empty = json_object();
    size_t nrows = 0, latency = 0;
    for (size_t i = 0; i < a->ng; i++) {
        const group *g = &a->g[i];
        if (g->partner < 0 || g->skip || strcmp(str_field(g->row, "metric"), metric)) continue;
        json_t *d = json_object_get(g->row, "dparams");
        note_variation(d ? d : empty, dfirst, dvary, nrows == 0);
        note_variation(json_object_get(g->row, "params"), pfirst, pvary, nrows == 0);
        latency |= g->latency;
        nrows++;
    }
    json_decref(dfirst);
    json_decref(pfirst);
    json_decref(empty);
    int rc = 0;
    line *ls = calloc(nrows ? nrows : 1, sizeof *ls);
    size_t nl = 0, wname = 4;
    for (size_t i = 0; ls && i < a->ng && !rc; i++) {
        const group *g = &a->g[i];
        if (g->partner < 0 || g->skip || strcmp(str_field(g->row, "metric"), metric)) continue;
        line *l = &ls[nl++];
        l->name = row_name(g->row, dvary, pvary);
        if (l->name && strlen(l->name) > wname) wname = strlen(l->name);
        if (g->latency)
            rc = diff_latency(g, &b->g[g->partner], o, l);
        else
            diff_accuracy(g, &b->g[g->partner], rb_metric_direction(metric), o, l);
    }
    if (!ls) rc = -1;
    if (rc == 0 && nl) {
        const char *unit = NULL;
        for (size_t i = 0; i < a->ng && !unit; i++)
            if (!strcmp(str_field(a->g[i].row, "metric"), metric))
                unit = str_field(a->g[i].row, "unit");
        fprintf(out, "\n%s%s%s%s: ", metric, unit && *unit ? " [" : "", unit && *unit ? unit : "",
                unit && *unit ? "]" : "");
        if (latency)
            fprintf(out, "median of pooled samples; Mann-Whitney U, alpha %g, threshold %g%%\n",
                    o->alpha, 100 * o->latency_threshold);
        else
            fprintf(out, "%s; mean over repeats; tolerance max(atol %g, rtol %g * |old|)\n",
                    dir_text(rb_metric_direction(metric)), o->atol, o->rtol);
        fprintf(out, "%-*s  %12s  %12s  %9s  %7s  %9s\n", (int) wname, "name", "old", "new",
                "delta", "p", "n");
        for (size_t i = 0; i < nl; i++) {
            line *l = &ls[i];
            fprintf(out, "%-*s  %12s  %12s  %9s  %7s  %9s", (int) wname, l->name ? l->name : "?",
                    l->old, l->new_, l->delta, l->p, l->n);
            if (l->verdict == V_REGRESSION) fprintf(out, "  REGRESSION");
            if (l->verdict == V_IMPROVEMENT) fprintf(out, "  improvement");
            if (l->note) fprintf(out, "  (%s)", l->note);
            fputc('\n', out);
            counts[l->verdict]++;
        }
    }
    if (rc) fprintf(out, "compare: %s: %s\n", metric, rb_error_detail());
    for (size_t i = 0; i < nl; i++) free(ls[i].name);
    free(ls);
    json_decref(dvary);
    json_decref(pvary);
    return rc;
}

/* Reports a row of one side that the other lacks. */
static void print_only(const side *s, const group *g, FILE *out) {
    char *name = row_name(g->row, NULL, NULL);
    fprintf(out, "  %s %s  (row %zu of %s)\n", name ? name : "?", str_field(g->row, "metric"),
            g->line, s->path);
    free(name);
}

int rb_compare(const char *base_dir, const char *new_dir, const rb_compare_opts *opts, FILE *out) {
    rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
    if (opts) o = *opts;
    side a = {.name = "BASE", .dir = base_dir}, b = {.name = "NEW", .dir = new_dir};
    int la = side_load(&a, out), lb = side_load(&b, out);
    int status = RB_COMPARE_OK;
    json_t *skip = json_object(), *metrics = json_array(), *seen = json_object();
    if (la || lb) {
        status = RB_COMPARE_INCOMPARABLE;
        goto done;
    }
    fprintf(out, "base: %s  (config sha256 %.12s)\nnew:  %s  (config sha256 %.12s)\n", a.dir, a.sha,
            b.dir, b.sha);
    if (strcmp(a.sha, b.sha)) {
        fprintf(out,
                "cannot compare: the configs differ\n  base config sha256 %s\n  new  config "
                "sha256 %s\n",
                a.sha, b.sha);
        status = RB_COMPARE_INCOMPARABLE;
    }

    /* Match rows; methods whose version changed are reported once and their rows not diffed. */
    size_t only_a = 0, only_b = 0;
    for (size_t i = 0; i < a.ng; i++) {
        char *key = rb_row_key(a.g[i].row);
        json_t *idx = key ? json_object_get(b.index, key) : NULL;
        free(key);
        if (!idx) {
            only_a++;
            continue;
        }
        group *ga = &a.g[i], *gb = &b.g[json_integer_value(idx)];
        ga->partner = (long) json_integer_value(idx);
        gb->partner = (long) i;
        const char *method = str_field(ga->row, "method"), *metric = str_field(ga->row, "metric");
        if (ga->version != gb->version) {
            json_t *m = json_object_get(skip, method);
            if (!m) {
                fprintf(out, "cannot compare method %s: method_version %d in base, %d in new\n",
                        method, ga->version, gb->version);
                json_object_set_new(skip, method, json_integer(0));
                m = json_object_get(skip, method);
            }
            json_integer_set(m, json_integer_value(m) + 1);
            ga->skip = 1;
            status = RB_COMPARE_INCOMPARABLE;
            continue;
        }
        if (ga->latency != gb->latency) {
            char *name = row_name(ga->row, NULL, NULL);
            fprintf(out, "cannot compare %s %s: latency samples in %s only (row %zu of %s)\n",
                    name ? name : "?", metric, ga->latency ? "base" : "new",
                    ga->latency ? ga->line : gb->line, (ga->latency ? &a : &b)->path);
            free(name);
            ga->skip = 1;
            status = RB_COMPARE_INCOMPARABLE;
            continue;
        }
        if (!json_object_get(seen, metric)) {
            json_object_set_new(seen, metric, json_true());
            json_array_append_new(metrics, json_string(metric));
        }
    }
    const char *method;
    json_t *count;
    json_object_foreach(skip, method, count) fprintf(out, "  %s: %lld row(s) not compared\n",
                                                     method, (long long) json_integer_value(count));
    for (size_t i = 0; i < b.ng; i++) only_b += b.g[i].partner < 0;
    if (only_a) {
        fprintf(out, "rows only in base (%zu):\n", only_a);
        for (size_t i = 0; i < a.ng; i++)
            if (a.g[i].partner < 0) print_only(&a, &a.g[i], out);
    }
    if (only_b) {
        fprintf(out, "rows only in new (%zu):\n", only_b);
        for (size_t i = 0; i < b.ng; i++)
            if (b.g[i].partner < 0) print_only(&b, &b.g[i], out);
    }
    if (only_a || only_b) status = RB_COMPARE_INCOMPARABLE;
    /* Rows that are missing because their cell failed say so, with the failure's message. */
    if (only_a || only_b) {
        const char *dirs[2] = {base_dir, new_dir}, *names[2] = {"base", "new"};
        for (int k = 0; k < 2; k++) {
            json_t *failed;
            if (rb_results_failed_cells(dirs[k], &failed)) continue;
            if (json_object_size(failed))
                fprintf(out, "cells that failed in %s (%zu; their rows are missing):\n", names[k],
                        json_object_size(failed));
            const char *key;
            json_t *err;
            json_object_foreach(failed, key, err) fprintf(out, "  %s\n", json_string_value(err));
            json_decref(failed);
        }
    }

    size_t counts[3] = {0, 0, 0}, m;
    json_t *metric;
    json_array_foreach(metrics, m, metric) {
        if (print_table(&a, &b, json_string_value(metric), &o, out, counts)) {
            status = RB_COMPARE_INCOMPARABLE;
            goto done;
        }
    }
    fprintf(out, "\n%zu rows compared: %zu regressions, %zu improvements, %zu unchanged\n",
            counts[V_REGRESSION] + counts[V_IMPROVEMENT] + counts[V_SAME], counts[V_REGRESSION],
            counts[V_IMPROVEMENT], counts[V_SAME]);
    if (status == RB_COMPARE_INCOMPARABLE)
        fprintf(out, "could not compare everything (see above): exit 2\n");
    else if (counts[V_REGRESSION])
        status = RB_COMPARE_REGRESSION;
done:
    json_decref(skip);
    json_decref(metrics);
    json_decref(seen);
    side_free(&a);
    side_free(&b);
    return status;
}
