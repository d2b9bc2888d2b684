/* `rotabench compare`: reads two results directories, lists what differs in their contexts,
 * pools repeats per row identity, diffs accuracy rows against tolerances and latency rows with a
 * Mann-Whitney U test, shows measurements without samples ungraded, prints a benchstat-style
 * table per metric and decides the exit status. */
#include "harness/compare.h"
#include "harness/record.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
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

/* Whether a metric is a measurement of the machine (the metric registry's answer; names it does not
 * know are deterministic). */
static rb_measured metric_measured(const char *metric) {
    const rb_metric *m = rb_metric_find(metric);
    return m ? m->measured : RB_DETERMINISTIC;
}

static const char *measured_text(rb_measured k) {
    return k == RB_MEASURED_MEMORY ? "a memory measurement" : "a timing";
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
    double mean;     /* accuracy: running mean of the finite values (a sum of values near
                      * DBL_MAX would overflow: two equal sides would differ by inf - inf) */
    size_t nval;     /* values pooled (repeats) */
    size_t nnan;     /* values that were null or NaN */
    double *samples; /* latency: every repeat's samples, pooled */
    size_t ns, scap;
    int latency;      /* some row carried samples */
    double cpu_wait;  /* latency: the largest cpu_wait of its rows, NaN when none says */
    json_t *data;     /* repeat (decimal text) -> the dataset_hash of its rows */
    json_t *reps;     /* repeat (decimal text) -> whether its value is finite */
    long partner;     /* index of the matching group on the other side, or -1 */
    int skip;         /* matched but not comparable (method version, kind of row, repeats) */
    int data_differs; /* matched, but some repeat ran on other data than its partner's */
} group;

typedef struct side {
    const char *name; /* "BASE" / "NEW" */
    const char *dir;
    char *path; /* results.jsonl */
    char *sha;
    json_t *ctx; /* context.json */
    group *g;
    size_t ng, gcap;
    json_t *index; /* canonical key -> group index */
} side;

static void side_free(side *s) {
    for (size_t i = 0; i < s->ng; i++) {
        json_decref(s->g[i].row);
        json_decref(s->g[i].data);
        json_decref(s->g[i].reps);
        free(s->g[i].samples);
    }
    free(s->g);
    free(s->path);
    free(s->sha);
    json_decref(s->ctx);
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
    json_t *ver = json_object_get(row, "method_version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 0 || json_integer_value(ver) > INT_MAX)
        return "method_version";
    json_t *h = json_object_get(row, "dataset_hash");
    if (h && !json_is_string(h) && !json_is_null(h)) return "dataset_hash";
    json_t *v = json_object_get(row, "value");
    if (!v || !(json_is_number(v) || json_is_null(v))) return "value";
    /* the fraction of the time the threads waited for a CPU */
    json_t *w = json_object_get(row, "cpu_wait");
    if (w && !json_is_null(w) && (!json_is_number(w) || !(json_number_value(w) >= 0)))
        return "cpu_wait";
    json_t *s = json_object_get(row, "samples"), *x;
    size_t i;
    if (s && !json_is_null(s)) {
        if (!json_is_array(s)) return "samples";
        /* seconds: a negative or non-finite one is no timing */
        json_array_foreach(s, i, x) if (!json_is_number(x) || !(json_number_value(x) >= 0) ||
                                        !isfinite(json_number_value(x))) return "samples";
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
        g->data = json_object();
        g->reps = json_object();
        g->line = line;
        g->version = (int) json_integer_value(json_object_get(row, "method_version"));
        g->partner = -1;
        g->cpu_wait = NAN;
        json_object_set_new(s->index, key, json_integer((json_int_t) s->ng));
        s->ng++;
    }
    free(key);
    key = NULL; /* nomem frees it */
    if (!g->data || !g->reps) goto nomem;
    /* Each repeat may have data of its own (generated data are seeded per repeat). */
    const char *hash = str_field(row, "dataset_hash");
    char rep[24];
    snprintf(rep, sizeof rep, "%lld", rb_row_int(row, "repeat", 0));
    if (hash && !json_object_get(g->data, rep))
        json_object_set_new(g->data, rep, json_string(hash));

    json_t *v = json_object_get(row, "value"), *samples = json_object_get(row, "samples"), *x;
    double val = json_is_number(v) ? json_number_value(v) : NAN;
    json_object_set_new(g->reps, rep, json_boolean(isfinite(val)));
    g->nval++;
    if (isfinite(val))
        g->mean += val / (double) (g->nval - g->nnan) - g->mean / (double) (g->nval - g->nnan);
    else
        g->nnan++;
    size_t i;
    if (json_array_size(samples) > 0) g->latency = 1;
    double w = rb_row_double(row, "cpu_wait");
    if (isfinite(w) && !(w <= g->cpu_wait)) g->cpu_wait = w; /* NaN: the first that says */
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
        s->ctx = json_incref(ctx);
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
        /* As the report writes values: reals at their shortest exact text (1e-05, not
         * jansson's 1.0000000000000001e-05); null and lists as JSON. */
        char t[64], *s = NULL;
        rb_json_scalar_text(v, t, sizeof t);
        if (json_is_string(v))
            fprintf(f, "%s%s=%s", first ? "" : ",", k, json_string_value(v)); /* any length */
        else {
            if (!*t) s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            fprintf(f, "%s%s=%s", first ? "" : ",", k, s ? s : t);
        }
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

/* A row's verdict. Blind: latency samples too few for the U test to ever reach alpha, so no
 * change could have been seen. Ungraded: shown with its change, but neither a regression nor an
 * improvement (a measurement without samples, or rows computed on different data). Busy: a
 * latency row timed while its threads waited for a CPU (a shared machine), shown, not graded. */
enum { V_SAME = 0, V_REGRESSION, V_IMPROVEMENT, V_BLIND, V_UNGRADED, V_BUSY, V_COUNT };

/* One compared row of a table, formatted. */
typedef struct line {
    char *name;
    char old[32], new_[32], delta[32], p[16], n[32];
    int verdict;
    const char *note;
    char *kernels;   /* timings whose kernel_variants differ: "op=old -> new, ..." (malloc'd) */
    size_t ns[2];    /* blind rows: the sample counts of base and new */
    double cpu_wait; /* busy rows: the larger of the two sides' cpu_wait */
    char note_buf[64];
} line;

/* The mean over the repeats of a group, NaN when any repeat's value was NaN or null. */
static double group_mean(const group *g) {
    return g->nnan ? NAN : g->mean;
}

/* The old, new, p and n columns of a row compared by its means over repeats (x and y); seconds
 * with an SI prefix when the unit is seconds. */
static void put_means(const group *a, const group *b, int seconds, line *l, double *x, double *y) {
    *x = group_mean(a);
    *y = group_mean(b);
    if (seconds) {
        fmt_seconds(l->old, sizeof l->old, *x);
        fmt_seconds(l->new_, sizeof l->new_, *y);
    } else {
        snprintf(l->old, sizeof l->old, "%.6g", *x);
        snprintf(l->new_, sizeof l->new_, "%.6g", *y);
    }
    if (isnan(*x)) snprintf(l->old, sizeof l->old, "NaN");
    if (isnan(*y)) snprintf(l->new_, sizeof l->new_, "NaN");
    snprintf(l->p, sizeof l->p, "-");
    snprintf(l->n, sizeof l->n, "%zu+%zu", a->nval, b->nval);
}

/* The relative change of y from x as "+1.23%" (absolute "+0.5" when x is 0). */
static void put_change(line *l, double x, double y) {
    if (x != 0)
        snprintf(l->delta, sizeof l->delta, "%+.2f%%", 100 * (y - x) / fabs(x));
    else
        snprintf(l->delta, sizeof l->delta, "%+.3g", y - x);
}

/* Accuracy: the mean over repeats on each side, then |new - old| against max(atol, rtol |old|),
 * the metric's direction deciding regression or improvement. A repeat whose value is NaN (or
 * null) on one side only is a change: a regression where new has it, an improvement where base
 * had it (RB_BETTER_EXACT: a regression either way), and a regression where both have NaNs but
 * in other repeats. With NaNs in the same repeats the finite repeats' means are compared (a NaN
 * in one repeat must not hide a change in the others); all NaN on both sides is unchanged. */
static void diff_accuracy(const group *a, const group *b, rb_better dir, const rb_compare_opts *o,
                          line *l) {
    double x, y;
    put_means(a, b, 0, l, &x, &y);
    if (a->nnan != b->nnan || !json_equal(a->reps, b->reps)) {
        snprintf(l->delta, sizeof l->delta, "?");
        int worse = dir == RB_BETTER_EXACT || b->nnan >= a->nnan;
        l->verdict = worse ? V_REGRESSION : V_IMPROVEMENT;
        l->note = a->nnan == b->nnan  ? "NaN/null in other repeats"
                  : b->nnan > a->nnan ? "new value is NaN/null"
                                      : "old value was NaN/null";
        return;
    }
    if (a->nnan == a->nval) {
        snprintf(l->delta, sizeof l->delta, "~");
        l->verdict = V_SAME;
        return;
    }
    if (a->nnan) {
        x = a->mean;
        y = b->mean;
        snprintf(l->old, sizeof l->old, "%.6g", x);
        snprintf(l->new_, sizeof l->new_, "%.6g", y);
        snprintf(l->note_buf, sizeof l->note_buf, "mean of the finite repeats (%zu NaN/null each)",
                 a->nnan);
        l->note = l->note_buf;
    }
    double d = y - x, tol = fmax(o->atol, o->rtol * fabs(x));
    if (fabs(d) <= tol) {
        snprintf(l->delta, sizeof l->delta, "~");
        l->verdict = V_SAME;
        return;
    }
    put_change(l, x, y);
    int worse = dir == RB_BETTER_EXACT || (dir == RB_BETTER_LOWER ? d > 0 : d < 0);
    l->verdict = worse ? V_REGRESSION : V_IMPROVEMENT;
}

/* A measurement without samples (one wall time, ratio of wall times or peak memory per repeat):
 * it differs between identical runs, and single values cannot be tested for significance, so
 * its change is shown and never graded. */
static void diff_measured(const group *a, const group *b, rb_measured kind, int seconds, line *l) {
    double x, y;
    put_means(a, b, seconds, l, &x, &y);
    if (x == y)
        snprintf(l->delta, sizeof l->delta, "~");
    else if (isnan(x) || isnan(y))
        snprintf(l->delta, sizeof l->delta, "?");
    else
        put_change(l, x, y);
    l->verdict = V_UNGRADED;
    l->note = kind == RB_MEASURED_MEMORY ? "memory: not graded" : "timing: not graded";
}

/* Latency: all samples pooled per side; a change when the U test rejects at alpha, and it counts
 * when the median moved by more than the threshold the wrong way for the metric's direction
 * (samples are seconds: lower is better unless the metric says otherwise). Samples too few to
 * ever reach alpha make the row blind rather than unchanged. */
static int diff_latency(const group *a, const group *b, rb_better dir, const rb_compare_opts *o,
                        line *l) {
    double ma = median(a->samples, a->ns), mb = median(b->samples, b->ns);
    fmt_seconds(l->old, sizeof l->old, ma);
    fmt_seconds(l->new_, sizeof l->new_, mb);
    snprintf(l->n, sizeof l->n, "%zu+%zu", a->ns, b->ns);
    rb_mwu_result r;
    if (rb_mwu_test(a->samples, a->ns, b->samples, b->ns, &r)) return -1;
    snprintf(l->p, sizeof l->p, r.p < 0.001 ? "%.1e" : "%.3f", r.p);
    double rel = mb / ma - 1;
    if (!(r.p < o->alpha)) {
        int blind = !(rb_mwu_min_p(a->ns, b->ns) < o->alpha);
        snprintf(l->delta, sizeof l->delta, blind ? "blind" : "~");
        l->verdict = blind ? V_BLIND : V_SAME;
        if (blind) {
            l->note = "too few samples to reach alpha";
            l->ns[0] = a->ns;
            l->ns[1] = b->ns;
        }
        return 0;
    }
    snprintf(l->delta, sizeof l->delta, "%+.2f%%", 100 * rel);
    if (dir == RB_BETTER_HIGHER) rel = -rel;
    l->verdict = rel > o->latency_threshold    ? V_REGRESSION
                 : rel < -o->latency_threshold ? V_IMPROVEMENT
                                               : V_SAME;
    if (l->verdict == V_SAME) l->note = "below threshold";
    return 0;
}

/* A latency row timed while its threads queued for a CPU beyond max_cpu_wait (on either side)
 * measured the machine's other users as much as the code: whatever the test said, it is shown
 * and not graded, neither a change nor "unchanged" (a busy base can hide a regression). Rows
 * that do not say (results written before cpu_wait existed) are graded as before. */
static void mark_busy(const group *a, const group *b, const rb_compare_opts *o, line *l) {
    double wa = a->cpu_wait, wb = b->cpu_wait;
    double worst = isnan(wa) ? wb : isnan(wb) ? wa : fmax(wa, wb);
    if (l->verdict == V_BLIND || !(worst > o->max_cpu_wait)) return;
    l->verdict = V_BUSY;
    l->cpu_wait = worst;
    snprintf(l->note_buf, sizeof l->note_buf, "busy: the %s run waited %.0f%% for a CPU",
             worst == wa ? "base" : "new", 100 * worst);
    l->note = l->note_buf;
}

/* What the tables found: rows by verdict, and the distinct sample counts of the blind rows (the
 * first few; more_sizes when there were others). */
typedef struct tally {
    size_t counts[V_COUNT];
    size_t blind_sizes[4][2], nsizes;
    int more_sizes;
    size_t other_kernels; /* timings whose two sides ran other kernel variants */
    double worst_wait;    /* busy rows: the largest cpu_wait */
} tally;

static void tally_line(tally *t, const line *l) {
    t->counts[l->verdict]++;
    if (l->kernels) t->other_kernels++;
    if (l->verdict == V_BUSY && l->cpu_wait > t->worst_wait) t->worst_wait = l->cpu_wait;
    if (l->verdict != V_BLIND) return;
    for (size_t i = 0; i < t->nsizes; i++)
        if (t->blind_sizes[i][0] == l->ns[0] && t->blind_sizes[i][1] == l->ns[1]) return;
    if (t->nsizes == sizeof t->blind_sizes / sizeof t->blind_sizes[0]) {
        t->more_sizes = 1;
        return;
    }
    t->blind_sizes[t->nsizes][0] = l->ns[0];
    t->blind_sizes[t->nsizes++][1] = l->ns[1];
}

/* The variants op ran as in a kernel_variants list ("op=variant,op=variant"), joined by '+' when
 * there are several; "(none)" when op did not run. */
static void op_variants(const char *list, const char *op, char *buf, size_t size) {
    size_t used = 0, oplen = strlen(op);
    buf[0] = '\0';
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t) (end - p) : strlen(p);
        if (len > oplen && !strncmp(p, op, oplen) && p[oplen] == '=') {
            int n = snprintf(buf + used, size - used, "%s%.*s", used ? "+" : "",
                             (int) (len - oplen - 1), p + oplen + 1);
            if (n > 0 && (size_t) n < size - used) used += (size_t) n;
        }
        p = end ? end + 1 : NULL;
    }
    if (!used) snprintf(buf, size, "(none)");
}

/* "op=old -> new, ..." for the ops whose variants differ between the kernel_variants lists a
 * and b, in the order they first appear; NULL when none differs (the same variants in another
 * order) or on no memory. */
static char *kernels_differ(const char *a, const char *b) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t *seen = json_object();
    int any = 0;
    const char *lists[2] = {a, b};
    for (int k = 0; f && seen && k < 2; k++)
        for (const char *p = lists[k]; p && *p;) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t) (end - p) : strlen(p);
            char op[128], va[256], vb[256];
            snprintf(op, sizeof op, "%.*s", (int) (n < sizeof op ? n : sizeof op - 1), p);
            op[strcspn(op, "=")] = '\0';
            p = end ? end + 1 : NULL;
            if (json_object_get(seen, op)) continue;
            json_object_set_new(seen, op, json_true());
            op_variants(a, op, va, sizeof va);
            op_variants(b, op, vb, sizeof vb);
            if (!strcmp(va, vb)) continue;
            fprintf(f, "%s%s=%s -> %s", any ? ", " : "", op, va, vb);
            any = 1;
        }
    json_decref(seen);
    if (f) fclose(f);
    if (any && f) return buf;
    free(buf);
    return NULL;
}

/* Prints the table of one metric: rows of base (in file order) that matched. Adds to t. */
static int print_table(const side *a, const side *b, const char *metric, const rb_compare_opts *o,
                       FILE *out, tally *t) {
    /* which dparams/params vary within the table: only those go into the names */
    json_t *dfirst = json_object(), *pfirst = json_object();
    json_t *dvary = json_object(), *pvary = json_object(), *empty = json_object();
    size_t nrows = 0, latency = 0;
    rb_measured measured = metric_measured(metric);
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
        memset(l, 0, sizeof *l); /* a row left out of the table leaves its slot to the next */
        const group *h = &b->g[g->partner];
        const char *unit = str_field(g->row, "unit");
        if (g->latency && h->latency) {
            rc = diff_latency(g, h, rb_metric_direction(metric), o, l);
            if (!rc) mark_busy(g, h, o, l);
        } else if (measured || g->latency || h->latency) /* samples on one side: not testable */
            diff_measured(g, h, measured, unit && !strcmp(unit, "s"), l);
        else
            diff_accuracy(g, h, rb_metric_direction(metric), o, l);
        if (g->data_differs) {
            /* Not a change of the method: the rows ran on other data (reported above). A blind
             * row stays blind: its samples are too few whatever the data. */
            if (l->verdict != V_BLIND) l->verdict = V_UNGRADED;
            l->note = "other data: not graded";
        }
        /* A timing made by other kernels changed for that reason, not the code's: say which
         * (accuracy rows are bit-identical whichever variant ran). The verdict stands. */
        if (g->latency || h->latency || measured) {
            const char *ka = str_field(g->row, "kernel_variants");
            const char *kb = str_field(h->row, "kernel_variants");
            if (ka && kb && strcmp(ka, kb)) l->kernels = kernels_differ(ka, kb);
        }
        if (o->changes_only && l->verdict == V_SAME) {
            tally_line(t, l);
            free(l->kernels);
            nl--;
            continue;
        }
        l->name = row_name(g->row, dvary, pvary);
        if (l->name && strlen(l->name) > wname) wname = strlen(l->name);
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
        else if (measured)
            fprintf(out,
                    "%s with one value per repeat and no samples: shown, not graded (it differs "
                    "between identical runs, and single values cannot be tested for "
                    "significance)\n",
                    measured_text(measured));
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
            if (l->kernels) fprintf(out, "  (kernels differ: %s)", l->kernels);
            fputc('\n', out);
            tally_line(t, l);
        }
    }
    if (rc) fprintf(out, "compare: %s: %s\n", metric, rb_error_detail());
    for (size_t i = 0; i < nl; i++) {
        free(ls[i].name);
        free(ls[i].kernels);
    }
    free(ls);
    json_decref(dvary);
    json_decref(pvary);
    return rc;
}

/* Whether some repeat of a ran on other data than the same repeat of b: *ha and *hb get the two
 * dataset hashes. Repeats on one side only, and rows without a hash, are not compared. */
static int data_differ(const group *a, const group *b, const char **ha, const char **hb) {
    const char *rep;
    json_t *h;
    json_object_foreach(a->data, rep, h) {
        json_t *o = json_object_get(b->data, rep);
        if (o && strcmp(json_string_value(h), json_string_value(o))) {
            *ha = json_string_value(h);
            *hb = json_string_value(o);
            return 1;
        }
    }
    return 0;
}

/* The first time a dataset's data are seen to differ (seen: the pairs of hashes reported), says
 * so the way a config sha256 difference is reported, with the hashes in their short form. */
static void report_data_differ(const char *dataset, const char *ha, const char *hb, json_t *seen,
                               FILE *out) {
    char key[512];
    snprintf(key, sizeof key, "%s %.64s %.64s", dataset, ha, hb);
    if (json_object_get(seen, key)) return;
    json_object_set_new(seen, key, json_true());
    fprintf(out,
            "cannot compare dataset %s: the data differ (its rows are shown, not graded)\n"
            "  base dataset_hash %.12s\n  new  dataset_hash %.12s\n",
            dataset, ha, hb);
}

/* The repeats of a group as "0, 1" (in the order first seen). */
static void put_repeats(FILE *out, const group *g) {
    const char *rep;
    json_t *v;
    int first = 1;
    json_object_foreach(g->reps, rep, v) {
        fprintf(out, "%s%s", first ? "" : ", ", rep);
        first = 0;
    }
}

/* Whether two groups have rows for the same repeats. */
static int same_repeats(const group *a, const group *b) {
    const char *rep;
    json_t *v;
    if (json_object_size(a->reps) != json_object_size(b->reps)) return 0;
    json_object_foreach(a->reps, rep, v) {
        if (!json_object_get(b->reps, rep)) return 0;
    }
    return 1;
}

/* A cell whose repeats differ between the sides (an interrupted run, a failed repeat's cell,
 * --only on one side) cannot be graded: the means would pool different seeds. Said once per
 * cell (seen: the names reported). */
static void report_partial(const group *a, const group *b, json_t *seen, FILE *out) {
    json_t *cell = json_copy(a->row);
    if (cell) json_object_del(cell, "slice");
    char *name = cell ? row_name(cell, NULL, NULL) : NULL;
    json_decref(cell);
    if (name && json_object_get(seen, name)) {
        free(name);
        return;
    }
    if (name) json_object_set_new(seen, name, json_true());
    fprintf(out, "cannot compare %s: repeats ", name ? name : "?");
    put_repeats(out, a);
    fprintf(out, " in base, ");
    put_repeats(out, b);
    fprintf(out, " in new (a repeat is missing on one side: an interrupted run, a failed cell or "
                 "--only)\n");
    free(name);
}

/* The warning under the tables when latency rows were blind: their sample counts, the smallest p
 * those allow, and how many samples a side alpha needs. */
static void print_blind_warning(const tally *t, const rb_compare_opts *o, FILE *out) {
    size_t n = t->counts[V_BLIND], need = 0;
    fprintf(out,
            "\nwarning: %zu latency row%s blind: the Mann-Whitney U test cannot reach p < %g with",
            n, n == 1 ? " is" : "s are", o->alpha);
    for (size_t i = 0; i < t->nsizes; i++)
        fprintf(out, "%s %zu+%zu samples (smallest possible p %.3g)", i ? "," : "",
                t->blind_sizes[i][0], t->blind_sizes[i][1],
                rb_mwu_min_p(t->blind_sizes[i][0], t->blind_sizes[i][1]));
    if (t->more_sizes) fprintf(out, " and others");
    /* The fewest equal samples a side whose smallest p is below alpha (none for alpha 0). */
    for (size_t k = 1; k <= 10000 && !need; k++)
        if (rb_mwu_min_p(k, k) < o->alpha) need = k;
    if (need)
        fprintf(out,
                "; reaching it needs %zu+%zu: raise `repetitions` in the config's latency block "
                "(samples are pooled over repeats) or pass a larger --alpha",
                need, need);
    else
        fprintf(out, "; pass a larger --alpha");
    fprintf(out, " (%s)\n", o->strict ? "--strict: exit 2" : "--strict makes this exit 2");
}

/* Reports a row of one side that the other lacks. */
static void print_only(const side *s, const group *g, FILE *out) {
    char *name = row_name(g->row, NULL, NULL);
    fprintf(out, "  %s %s  (row %zu of %s)\n", name ? name : "?", str_field(g->row, "metric"),
            g->line, s->path);
    free(name);
}

/* The context items that change what a timing measures, printed "old -> new" before the tables
 * when they differ: a run on another machine, with fewer threads or forced to other kernels is
 * slower for that reason, not the code's. The git revision usually differs on purpose (it is the
 * change under test), so it is informational: shown, not counted as a difference. */
static const struct {
    const char *label, *section, *field;
    int informational;
} context_items[] = {
    {"CPU model", "host", "cpu_model", 0},    {"hostname", "host", "hostname", 0},
    {"threads", "host", "threads", 0},        {"kernel selection", "host", "kernels", 0},
    {"BLAS kernels", "host", "blas_core", 0}, {"compiler", "build", "compiler", 0},
    {"build flags", "build", "flags", 0},     {"GPU", "gpu", "devices", 0},
    {"git revision", "build", "git_sha", 1},
};
enum { N_CONTEXT_ITEMS = sizeof context_items / sizeof context_items[0] };

/* One context item's value as text: the GPU as its devices' names ("none" for an empty list),
 * the git revision with "-dirty" for a tree with changes, "(not recorded)" for a field that is
 * absent or null (a context from before the field, a CPU whose model hwloc does not know). */
static void context_text(json_t *ctx, size_t item, char *buf, size_t size) {
    json_t *sec = json_object_get(ctx, context_items[item].section);
    json_t *v = json_object_get(sec, context_items[item].field);
    buf[0] = '\0';
    if (!v || json_is_null(v)) {
        snprintf(buf, size, "(not recorded)");
    } else if (json_is_array(v)) {
        size_t i, used = 0;
        json_t *d;
        json_array_foreach(v, i, d) {
            const char *name = str_field(d, "name");
            int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", name ? name : "?");
            if (n < 0 || (size_t) n >= size - used) break;
            used += (size_t) n;
        }
        if (!json_array_size(v)) snprintf(buf, size, "none");
    } else if (json_is_string(v)) {
        int dirty = !strcmp(context_items[item].field, "git_sha") &&
                    json_is_true(json_object_get(sec, "dirty"));
        snprintf(buf, size, "%s%s", json_string_value(v), dirty ? "-dirty" : "");
    } else {
        rb_json_scalar_text(v, buf, size);
        char *t = *buf ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (t) snprintf(buf, size, "%s", t);
        free(t);
    }
}

/* Prints the context items that differ between the two runs' context.json and returns how many
 * are not informational; their labels go into which (comma separated) for the summary line. */
static size_t print_context_diff(const side *a, const side *b, char *which, size_t wsize,
                                 FILE *out) {
    char va[N_CONTEXT_ITEMS][256], vb[N_CONTEXT_ITEMS][256];
    int differs[N_CONTEXT_ITEMS];
    size_t ndiff = 0, ninfo = 0, used = 0;
    which[0] = '\0';
    for (size_t i = 0; i < N_CONTEXT_ITEMS; i++) {
        context_text(a->ctx, i, va[i], sizeof va[i]);
        context_text(b->ctx, i, vb[i], sizeof vb[i]);
        differs[i] = strcmp(va[i], vb[i]) != 0;
        if (!differs[i]) continue;
        if (context_items[i].informational) {
            ninfo++;
            continue;
        }
        ndiff++;
        int n =
            snprintf(which + used, wsize - used, "%s%s", used ? ", " : "", context_items[i].label);
        if (n > 0 && (size_t) n < wsize - used) used += (size_t) n;
    }
    if (ndiff)
        fprintf(out, "context differs (a timing may change for these reasons, not the code's):\n");
    else if (ninfo)
        fprintf(out, "context: the same machine, threads, kernels and build\n");
    for (size_t i = 0; i < N_CONTEXT_ITEMS; i++)
        if (differs[i])
            fprintf(out, "  %-17s %s -> %s%s\n", context_items[i].label, va[i], vb[i],
                    context_items[i].informational ? "  (informational)" : "");
    return ndiff;
}

int rb_compare(const char *base_dir, const char *new_dir, const rb_compare_opts *opts, FILE *out) {
    rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
    if (opts) o = *opts;
    side a = {.name = "BASE", .dir = base_dir}, b = {.name = "NEW", .dir = new_dir};
    int la = side_load(&a, out), lb = side_load(&b, out);
    int status = RB_COMPARE_OK;
    json_t *skip = json_object(), *metrics = json_array(), *seen = json_object();
    json_t *data_seen = json_object(), *partial_seen = json_object();
    if (la || lb) {
        status = RB_COMPARE_INCOMPARABLE;
        goto done;
    }
    fprintf(out, "base: %s  (config sha256 %.12s)\nnew:  %s  (config sha256 %.12s)\n", a.dir, a.sha,
            b.dir, b.sha);
    char context_which[256];
    size_t context_ndiff = print_context_diff(&a, &b, context_which, sizeof context_which, out);
    if (strcmp(a.sha, b.sha)) {
        fprintf(out,
                "cannot compare: the configs differ\n  base config sha256 %s\n  new  config "
                "sha256 %s\n",
                a.sha, b.sha);
        status = RB_COMPARE_INCOMPARABLE;
    }

    /* Match rows; methods whose version changed are reported once and their rows not diffed. */
    size_t only_a = 0, only_b = 0, partial = 0;
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
        const char *ha, *hb;
        if (data_differ(ga, gb, &ha, &hb)) {
            report_data_differ(str_field(ga->row, "dataset"), ha, hb, data_seen, out);
            ga->data_differs = 1;
            status = RB_COMPARE_INCOMPARABLE;
        }
        if (!same_repeats(ga, gb)) {
            report_partial(ga, gb, partial_seen, out);
            ga->skip = 1;
            partial++;
            status = RB_COMPARE_INCOMPARABLE;
            continue;
        }
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
    if (only_a || only_b || partial) {
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

    tally t = {0};
    size_t m, total = 0;
    json_t *metric;
    json_array_foreach(metrics, m, metric) {
        if (print_table(&a, &b, json_string_value(metric), &o, out, &t)) {
            status = RB_COMPARE_INCOMPARABLE;
            goto done;
        }
    }
    if (t.counts[V_BLIND]) {
        print_blind_warning(&t, &o, out);
        if (o.strict) status = RB_COMPARE_INCOMPARABLE;
    }
    if (t.counts[V_BUSY]) {
        size_t n = t.counts[V_BUSY];
        fprintf(out,
                "\nwarning: %zu latency row%s not graded: timed on a busy machine, the threads "
                "waited for a CPU up to %.0f%% of the time (over --max-cpu-wait %g); rerun on an "
                "idle machine, or pass --max-cpu-wait 1 to grade them anyway (%s)\n",
                n, n == 1 ? " is" : "s are", 100 * t.worst_wait, o.max_cpu_wait,
                o.strict ? "--strict: exit 2" : "--strict makes this exit 2");
        if (o.strict) status = RB_COMPARE_INCOMPARABLE;
    }
    for (int v = 0; v < V_COUNT; v++) total += t.counts[v];
    fprintf(out, "\n%zu rows compared: %zu regressions, %zu improvements, %zu unchanged", total,
            t.counts[V_REGRESSION], t.counts[V_IMPROVEMENT], t.counts[V_SAME]);
    if (t.counts[V_BLIND]) fprintf(out, ", %zu blind", t.counts[V_BLIND]);
    if (t.counts[V_BUSY]) fprintf(out, ", %zu busy", t.counts[V_BUSY]);
    if (t.counts[V_UNGRADED]) fprintf(out, ", %zu not graded", t.counts[V_UNGRADED]);
    /* Regressions stay regressions; the line says what else changed between the runs. */
    if (context_ndiff) fprintf(out, "; context differs: %s", context_which);
    if (t.other_kernels)
        fprintf(out, "; %zu timing%s ran other kernels", t.other_kernels,
                t.other_kernels == 1 ? "" : "s");
    if (context_ndiff || t.other_kernels) fprintf(out, " (see above)");
    fputc('\n', out);
    if (status == RB_COMPARE_INCOMPARABLE)
        fprintf(out, "could not compare everything (see above): exit 2\n");
    else if (t.counts[V_REGRESSION])
        status = RB_COMPARE_REGRESSION;
done:
    json_decref(skip);
    json_decref(metrics);
    json_decref(seen);
    json_decref(data_seen);
    json_decref(partial_seen);
    side_free(&a);
    side_free(&b);
    return status;
}
