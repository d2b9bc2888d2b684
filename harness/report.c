/* report.md from a results directory: provenance, per-family accuracy tables that show only the
 * columns that vary, expectation outcomes, latency, and gnuplot plots. */
#include "harness/report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/cpu_wait.h"
#include "harness/record.h"
#include "kernels/kernels.h"

enum { TXT = 512 };

/* ---- text helpers ---- */

/* A Markdown table cell: '|' escaped, line breaks flattened. */
static void md_cell(FILE *f, const char *s) {
    fputs("| ", f);
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    fputc(' ', f);
}

/* A table cell of code (a command line): a '|' would end the cell and a backtick the code span. */
static void md_code_cell(FILE *f, const char *s) {
    fputs("| `", f);
    for (; s && *s; s++) fputc(*s == '|' ? '/' : *s == '`' ? '\'' : *s, f);
    fputs("` ", f);
}

static void md_row_end(FILE *f) {
    fputs("|\n", f);
}

static void md_rule(FILE *f, size_t ncols) {
    for (size_t i = 0; i < ncols; i++) fputs("|---", f);
    fputs("|\n", f);
}

/* Four significant digits in fixed notation for ordinary magnitudes, the standard error at the
 * same number of decimals: "0.1160 ± 0.0004". */
static void value_text(double v, double se, char *buf, size_t size) {
    if (!isfinite(v)) {
        snprintf(buf, size, "%s", isnan(v) ? "—" : (v > 0 ? "inf" : "-inf"));
        return;
    }
    double a = fabs(v);
    int fixed = a == 0 || (a >= 1e-3 && a < 1e6);
    int dec = 0;
    if (fixed && a > 0) {
        dec = 3 - (int) floor(log10(a));
        if (dec < 0) dec = 0;
    } else if (a == 0) {
        dec = isfinite(se) && se > 0 ? 4 : 0;
    }
    int n = fixed ? snprintf(buf, size, "%.*f", dec, v) : snprintf(buf, size, "%.3e", v);
    /* An exactly reproducible value (se = 0, e.g. bits over repeats) needs no "± 0". */
    if (n < 0 || (size_t) n >= size || !isfinite(se) || se == 0) return;
    if (fixed)
        snprintf(buf + n, size - (size_t) n, " ± %.*f", dec, se);
    else
        snprintf(buf + n, size - (size_t) n, " ± %.1e", se);
}

/* Seconds per call with a readable unit, three significant digits. */
static void time_text(double s, char *buf, size_t size) {
    if (!isfinite(s)) {
        snprintf(buf, size, "—");
        return;
    }
    const char *unit = "s";
    double v = s;
    if (s < 1e-6) {
        v = s * 1e9;
        unit = "ns";
    } else if (s < 1e-3) {
        v = s * 1e6;
        unit = "µs";
    } else if (s < 1) {
        v = s * 1e3;
        unit = "ms";
    }
    snprintf(buf, size, "%.3g %s", v, unit);
}

/* "333 k vectors/s": a latency row's items per second with an SI prefix, or "—". */
static void rate_text(double v, const char *unit, char *buf, size_t size) {
    if (!isfinite(v) || v <= 0) {
        snprintf(buf, size, "—");
        return;
    }
    static const char *const prefix[] = {"", " k", " M", " G", " T"};
    size_t p = 0;
    while (v >= 1000 && p + 1 < sizeof prefix / sizeof prefix[0]) {
        v /= 1000;
        p++;
    }
    snprintf(buf, size, "%.3g%s %s/s", v, prefix[p], unit && *unit ? unit : "items");
}

static void bytes_text(json_int_t b, char *buf, size_t size) {
    if (b >= (1 << 20) && b % (1 << 20) == 0)
        snprintf(buf, size, "%lld MiB", (long long) (b >> 20));
    else if (b >= 1024)
        snprintf(buf, size, "%lld KiB", (long long) (b >> 10));
    else
        snprintf(buf, size, "%lld B", (long long) b);
}

/* ---- columns: what identifies a row besides its metric ---- */

/* The value of key in a row's slice ("layer=0,head=3": key "head" gives "3"); 0 if absent. */
static int slice_part(const json_t *row, const char *key, char *buf, size_t size) {
    const char *s = rb_row_str(row, "slice");
    size_t n = strlen(key);
    while (s && *s) {
        if (!strncmp(s, key, n) && s[n] == '=') {
            size_t len = strcspn(s + n + 1, ",");
            snprintf(buf, size, "%.*s", (int) len, s + n + 1);
            return 1;
        }
        s = strchr(s, ',');
        if (s) s++;
    }
    return 0;
}

/* Column names: "label", "method", "backend", "dataset", "p:<param>", "d:<dataset param>",
 * "s:<slice part>" (layer, head of a per-slice row). */
static void col_text(const json_t *row, const char *col, char *buf, size_t size) {
    buf[0] = '\0';
    json_t *v;
    if (!strncmp(col, "s:", 2)) {
        if (!slice_part(row, col + 2, buf, size)) snprintf(buf, size, "—");
        return;
    }
    if (!strncmp(col, "p:", 2))
        v = json_object_get(json_object_get(row, "params"), col + 2);
    else if (!strncmp(col, "d:", 2))
        v = json_object_get(json_object_get(row, "dparams"), col + 2);
    else
        v = json_object_get(row, col);
    if (!v) {
        snprintf(buf, size, "—");
        return;
    }
    rb_json_scalar_text(v, buf, size);
}

static const char *col_title(const char *col, char *buf, size_t size) {
    if (!strncmp(col, "p:", 2) || !strncmp(col, "s:", 2)) return col + 2;
    if (!strncmp(col, "d:", 2)) {
        snprintf(buf, size, "data.%s", col + 2);
        return buf;
    }
    return col;
}

/* Candidate columns over rows, in first-appearance order. */
static json_t *candidate_columns(json_t *rows, int with_dataset) {
    json_t *cols = json_array(), *seen = json_object();
    const char *fixed[] = {"method", "backend", "dataset"};
    for (size_t i = 0; i < 3; i++) {
        if (!with_dataset && !strcmp(fixed[i], "dataset")) continue;
        json_array_append_new(cols, json_string(fixed[i]));
    }
    const char *which[2] = {"params", "dparams"}, *prefix[2] = {"p:", "d:"};
    for (int w = 0; w < 2; w++) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(row, which[w]), k, v) {
                char name[TXT];
                snprintf(name, sizeof name, "%s%s", prefix[w], k);
                if (json_object_get(seen, name)) continue;
                json_object_set_new(seen, name, json_true());
                json_array_append_new(cols, json_string(name));
            }
        }
    }
    json_decref(seen);
    return cols;
}

/* parent[key], created as an empty object (or array) the first time. */
static json_t *child(json_t *parent, const char *key, int array) {
    json_t *c = json_object_get(parent, key);
    if (!c) {
        c = array ? json_array() : json_object();
        json_object_set_new(parent, key, c);
    }
    return c;
}

static int column_varies(json_t *rows, const char *col) {
    char first[TXT] = "", t[TXT] = "";
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        col_text(row, col, i ? t : first, TXT);
        if (i && strcmp(t, first)) return 1;
    }
    return 0;
}

/* Whether every row has a value for col (a method parameter is absent from another method's
 * rows). */
static int column_everywhere(json_t *rows, const char *col) {
    char t[TXT];
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        col_text(row, col, t, sizeof t);
        if (!strcmp(t, "—")) return 0;
    }
    return 1;
}

/* Whether col takes two values among the rows that have it; *first gets the first value. */
static int column_varies_where_set(json_t *rows, const char *col, char *first, size_t size) {
    char t[TXT];
    size_t i;
    json_t *row;
    first[0] = '\0';
    json_array_foreach(rows, i, row) {
        col_text(row, col, t, sizeof t);
        if (!strcmp(t, "—")) continue;
        if (!first[0])
            snprintf(first, size, "%s", t);
        else if (strcmp(t, first))
            return 1;
    }
    return 0;
}

static int varies_within(json_t *rows, const char *col, const char *series, json_t *xs);

/* Which columns a table shows (into shown), the method parameters it lists in one compact
 * `params` column (packed) and those stated once as "where set" (where_set); returns how many
 * dataset-parameter columns it leaves out. A column per parameter of every method and dataset
 * made tables of dozens of columns, most of them "—", so:
 * - a column that does not vary is in the Fixed line (fixed_line);
 * - a dataset parameter that the dataset name identifies (one value per dataset in these rows)
 *   is left out: the dataset column, or the table's own dataset, names it, and the dataset's
 *   accuracy section states it;
 * - a method parameter that every row has and that varies is a column of its own (bits);
 * - one that only some rows' methods have is in `params` when it varies among them
 *   (rotation=rht), else stated once "where set" (clip=1).
 * The method column is left out when skip_method. */
static size_t choose_columns(json_t *rows, json_t *cols, int skip_method, json_t *shown,
                             json_t *packed, json_t *where_set) {
    size_t dropped = 0, i;
    json_t *c;
    json_array_foreach(cols, i, c) {
        const char *col = json_string_value(c);
        char first[TXT];
        if (!column_varies(rows, col)) continue;
        if (!strcmp(col, "method") && skip_method) continue;
        if (!strncmp(col, "d:", 2) && !varies_within(rows, col, "dataset", NULL)) {
            dropped++;
            continue;
        }
        if (strncmp(col, "p:", 2) || column_everywhere(rows, col))
            json_array_append(shown, c);
        else if (column_varies_where_set(rows, col, first, sizeof first))
            json_array_append(packed, c);
        else
            json_array_append(where_set, c);
    }
    return dropped;
}

/* A row's `params` cell: "bits=2,rotation=rht" over the packed columns it has, or "—". */
static void packed_text(const json_t *row, json_t *packed, char *buf, size_t size) {
    size_t used = 0, i;
    json_t *c;
    buf[0] = '\0';
    json_array_foreach(packed, i, c) {
        char t[TXT];
        const char *col = json_string_value(c);
        col_text(row, col, t, sizeof t);
        if (!strcmp(t, "—") || used >= size) continue;
        used += (size_t) snprintf(buf + used, size - used, "%s%s=%s", used ? "," : "", col + 2, t);
    }
    if (!used) snprintf(buf, size, "—");
}

/* A shown column's cell: the `params` column, or col_text. */
static void shown_text(const json_t *row, const char *col, json_t *packed, char *buf, size_t size) {
    if (!strcmp(col, "params"))
        packed_text(row, packed, buf, size);
    else
        col_text(row, col, buf, size);
}

/* The methods of the rows that have col, "rtn, rotatekv" (first-appearance order). */
static void methods_with(json_t *rows, const char *col, char *buf, size_t size) {
    size_t used = 0, i;
    json_t *row;
    buf[0] = '\0';
    json_array_foreach(rows, i, row) {
        char t[TXT];
        col_text(row, col, t, sizeof t);
        const char *m = rb_row_str(row, "method");
        if (!strcmp(t, "—") || !m || used >= size) continue;
        int have = 0;
        for (const char *b = buf; *b;) {
            size_t len = strcspn(b, ",");
            if (len == strlen(m) && !strncmp(b, m, len)) have = 1;
            b += len + (b[len] == ',' ? 2 : 0);
        }
        if (!have) used += (size_t) snprintf(buf + used, size - used, "%s%s", used ? ", " : "", m);
    }
}

/* "backend=cpu; group=0, clip=1 (rtn); data: dim=128": the columns that do not vary (label
 * excluded), then the method parameters that do not vary where set, each run of them with the
 * methods that have them, then the dataset parameters that do not vary. */
static void fixed_line(FILE *f, json_t *rows, json_t *cols, json_t *where_set, const char *lead) {
    int any = 0;
    size_t i;
    json_t *c;
    char who[TXT] = "", next[TXT];
    for (int pass = 0; pass < 3; pass++) {
        int first_of_pass = 1;
        json_array_foreach(pass == 1 ? where_set : cols, i, c) {
            const char *col = json_string_value(c);
            int is_data = !strncmp(col, "d:", 2);
            char t[TXT];
            if (pass == 1) {
                column_varies_where_set(rows, col, t, sizeof t);
                methods_with(rows, col, next, sizeof next);
                /* A new run of methods: close the last with its methods. */
                if (!first_of_pass && strcmp(next, who)) fprintf(f, " (%s)", who);
                if (!any) fprintf(f, "%s", lead);
                fprintf(f, "%s",
                        first_of_pass       ? (any ? "; " : "")
                        : strcmp(next, who) ? "; "
                                            : ", ");
                snprintf(who, sizeof who, "%s", next);
            } else {
                if (is_data != (pass == 2) || column_varies(rows, col)) continue;
                col_text(json_array_get(rows, 0), col, t, sizeof t);
                if (!any) fprintf(f, "%s", lead);
                if (pass == 2 && first_of_pass)
                    fprintf(f, "%sdata: ", any ? "; " : "");
                else if (any)
                    fprintf(f, ", ");
            }
            fprintf(f, "%s=%s", col[1] == ':' ? col + 2 : col, t);
            any = 1;
            first_of_pass = 0;
        }
        if (pass == 1 && !first_of_pass) fprintf(f, " (%s)", who);
    }
    if (any) fputs("\n\n", f);
}

/* Identity of a row without metric and repeat (used to pool repeats and group metrics). */
static char *group_id(const json_t *row, int with_metric) {
    json_t *k = json_object();
    const char *names[] = {"dataset", "family",  "method", "label", "backend",
                           "params",  "dparams", "slice",  "metric"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] - (with_metric ? 0 : 1); i++) {
        json_t *v = json_object_get(row, names[i]);
        json_object_set(k, names[i], v ? v : json_null());
    }
    char *s = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(k);
    return s;
}

/* Mean over repeats and the standard error of that mean. With R >= 2 repeats: the larger of the
 * spread between them, sd / sqrt(R), which holds all that a seed changes (the data, a rotation,
 * a random sketch matrix), and the repeats' own errors, sqrt(sum se^2) / R (over vectors, within
 * one seed), which alone understate it wherever a seed draws a new random matrix (QJL and
 * TurboQuant-prod: 6-11x in the paper configs). One repeat: its own error, or NaN. */
static void pool(json_t *rows, double *mean, double *se) {
    size_t r = json_array_size(rows), i;
    json_t *row;
    double sum = 0, sse = 0;
    int all_se = 1;
    json_array_foreach(rows, i, row) {
        double s = rb_row_double(row, "stderr");
        sum += rb_row_double(row, "value");
        if (isfinite(s))
            sse += s * s;
        else
            all_se = 0;
    }
    *mean = r ? sum / (double) r : NAN;
    double within = all_se && r ? sqrt(sse) / (double) r : NAN, between = NAN;
    if (r >= 2) {
        double ss = 0;
        json_array_foreach(rows, i, row) {
            double d = rb_row_double(row, "value") - *mean;
            ss += d * d;
        }
        between = sqrt(ss / (double) (r - 1)) / sqrt((double) r);
    }
    *se = isnan(within) ? between : isnan(between) ? within : fmax(within, between);
}

/* ---- provenance ---- */

static void provenance(FILE *f, json_t *ctx, json_t *rows) {
    json_t *build = json_object_get(ctx, "build"), *host = json_object_get(ctx, "host"),
           *gpu = json_object_get(ctx, "gpu"), *run = json_object_get(ctx, "run");
    char t[2048];
    fputs("## Provenance\n\n| | |\n|---|---|\n", f);

    snprintf(t, sizeof t, "%s%s", rb_row_str(build, "git_sha") ? rb_row_str(build, "git_sha") : "?",
             json_is_true(json_object_get(build, "dirty")) ? " (dirty: uncommitted changes)" : "");
    md_cell(f, "revision");
    md_cell(f, t);
    md_row_end(f);
    snprintf(t, sizeof t, "%s; %s",
             rb_row_str(build, "compiler") ? rb_row_str(build, "compiler") : "?",
             rb_row_str(build, "flags") ? rb_row_str(build, "flags") : "?");
    md_cell(f, "compiler");
    md_cell(f, t);
    md_row_end(f);

    /* Kernel selection and the CPU features dispatch could use. */
    size_t used = (size_t) snprintf(
        t, sizeof t,
        "%s (cpu features:", rb_row_str(host, "kernels") ? rb_row_str(host, "kernels") : "?");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(host, "features"), i, v) {
        if (used < sizeof t)
            used += (size_t) snprintf(t + used, sizeof t - used, " %s", json_string_value(v));
    }
    if (used < sizeof t)
        snprintf(t + used, sizeof t - used, "%s)",
                 used && !json_array_size(json_object_get(host, "features")) ? " none" : "");
    md_cell(f, "kernels");
    md_cell(f, t);
    md_row_end(f);
    /* OpenBLAS's own kernel set (the GEMM-based methods' speed and last bits) */
    if (rb_row_str(host, "blas_core")) {
        snprintf(t, sizeof t, "OpenBLAS %s%s%s", rb_row_str(host, "blas_core"),
                 rb_row_str(host, "blas_note") ? "; " : "",
                 rb_row_str(host, "blas_note") ? rb_row_str(host, "blas_note") : "");
        md_cell(f, "BLAS kernels");
        md_cell(f, t);
        md_row_end(f);
    }

    /* Backends actually present in the results. */
    json_t *seen = json_object();
    t[0] = '\0';
    used = 0;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *b = rb_row_str(row, "backend");
        if (!b || json_object_get(seen, b)) continue;
        json_object_set_new(seen, b, json_true());
        if (used < sizeof t)
            used += (size_t) snprintf(t + used, sizeof t - used, "%s%s", used ? ", " : "", b);
    }
    json_decref(seen);
    md_cell(f, "backends");
    md_cell(f, used ? t : "—");
    md_row_end(f);

    char l1[32] = "?", l2[32] = "?", l3[32] = "?";
    json_t *caches = json_object_get(host, "caches");
    char *lv[3] = {l1, l2, l3};
    const char *ln[3] = {"l1d", "l2", "l3"};
    for (int c = 0; c < 3; c++) {
        json_t *cv = json_object_get(json_object_get(caches, ln[c]), "size_bytes");
        if (json_is_integer(cv)) bytes_text(json_integer_value(cv), lv[c], 32);
    }
    snprintf(t, sizeof t,
             "%s; %lld package(s), %lld cores, %lld PUs, %lld NUMA node(s); L1d %s, L2 %s, L3 %s",
             rb_row_str(host, "cpu_model") ? rb_row_str(host, "cpu_model") : "unknown model",
             rb_row_int(host, "packages", 0), rb_row_int(host, "cores", 0),
             rb_row_int(host, "pus", 0), rb_row_int(host, "numa_nodes", 0), l1, l2, l3);
    md_cell(f, "CPU");
    md_cell(f, t);
    md_row_end(f);
    snprintf(t, sizeof t, "%lld; %s", rb_row_int(host, "threads", 0),
             rb_row_str(host, "binding") ? rb_row_str(host, "binding") : "?");
    md_cell(f, "threads");
    md_cell(f, t);
    md_row_end(f);

    json_t *devs = json_object_get(gpu, "devices");
    if (json_array_size(devs)) {
        used = 0;
        json_array_foreach(devs, i, v) {
            char mem[32] = "?";
            json_t *mb = json_object_get(v, "total_mem_bytes");
            if (json_is_integer(mb))
                snprintf(mem, sizeof mem, "%.1f GiB", (double) json_integer_value(mb) / (1 << 30));
            if (used < sizeof t)
                used += (size_t) snprintf(
                    t + used, sizeof t - used, "%s%s (cc %s, %lld SMs, %s, driver %lld)",
                    used ? "; " : "", rb_row_str(v, "name") ? rb_row_str(v, "name") : "?",
                    rb_row_str(v, "cc") ? rb_row_str(v, "cc") : "?", rb_row_int(v, "sm_count", 0),
                    mem, rb_row_int(v, "driver_version", 0));
        }
    } else {
        snprintf(t, sizeof t, "none (%s)",
                 rb_row_str(gpu, "reason") ? rb_row_str(gpu, "reason") : "not probed");
    }
    md_cell(f, "GPU");
    md_cell(f, t);
    md_row_end(f);

    snprintf(t, sizeof t, "%s (sha256 %s)",
             rb_row_str(run, "config_path") ? rb_row_str(run, "config_path") : "?",
             rb_row_str(run, "config_sha256") ? rb_row_str(run, "config_sha256") : "?");
    md_cell(f, "config");
    md_cell(f, t);
    md_row_end(f);
    md_cell(f, "time (UTC)");
    md_cell(f, rb_row_str(run, "utc") ? rb_row_str(run, "utc") : "?");
    md_row_end(f);
    used = 0;
    t[0] = '\0';
    json_array_foreach(json_object_get(run, "argv"), i, v) {
        if (used < sizeof t)
            used += (size_t) snprintf(t + used, sizeof t - used, "%s%s", used ? " " : "",
                                      json_string_value(v));
    }
    md_cell(f, "command");
    md_code_cell(f, t);
    md_row_end(f);
    /* A resumed run: every earlier session, oldest first (context.json describes the last). */
    json_array_foreach(json_object_get(run, "earlier_sessions"), i, v) {
        size_t j;
        json_t *a;
        used = 0;
        t[0] = '\0';
        json_array_foreach(json_object_get(v, "argv"), j, a) {
            if (used < sizeof t)
                used += (size_t) snprintf(t + used, sizeof t - used, "%s%s", used ? " " : "",
                                          json_string_value(a) ? json_string_value(a) : "?");
        }
        char head[TXT];
        snprintf(head, sizeof head, "earlier session %zu (%s, %s)", i + 1,
                 rb_row_str(v, "utc") ? rb_row_str(v, "utc") : "?",
                 rb_row_str(v, "hostname") ? rb_row_str(v, "hostname") : "?");
        md_cell(f, head);
        md_code_cell(f, t);
        md_row_end(f);
    }
    fputc('\n', f);
}

/* ---- accuracy tables ---- */

static void accuracy_table(FILE *f, json_t *rows, int sliced) {
    /* Groups: one table row per (label, method, backend, params, dparams); metrics as columns,
     * each pooled over repeats. */
    json_t *groups = json_object(), *reps = json_array(), *metrics = json_object();
    size_t i;
    json_t *row;
    int repeats = 1;
    json_array_foreach(rows, i, row) {
        char *gid = group_id(row, 0);
        json_t *g = json_object_get(groups, gid);
        if (!g) {
            g = json_object();
            json_object_set_new(groups, gid, g);
            json_array_append(reps, row);
        }
        const char *m = rb_row_str(row, "metric");
        json_t *list = child(g, m, 1);
        json_array_append(list, row);
        if ((int) json_array_size(list) > repeats) repeats = (int) json_array_size(list);
        if (!json_object_get(metrics, m)) {
            const char *u = rb_row_str(row, "unit");
            json_object_set_new(metrics, m, json_string(u ? u : ""));
        }
        free(gid);
    }
    json_t *cols = candidate_columns(reps, 0);
    /* The method column is redundant where every label is its method's name. */
    int labels_are_methods = 1;
    json_array_foreach(reps, i, row) {
        const char *l = rb_row_str(row, "label"), *m = rb_row_str(row, "method");
        if (!l || !m || strcmp(l, m)) labels_are_methods = 0;
    }
    json_t *shown = json_array(), *packed = json_array(), *where_set = json_array(), *c;
    if (sliced) { /* per-slice rows: which layer and head each row describes */
        json_array_append_new(shown, json_string("s:layer"));
        json_array_append_new(shown, json_string("s:head"));
    }
    choose_columns(reps, cols, labels_are_methods, shown, packed, where_set);
    if (json_array_size(packed)) json_array_append_new(shown, json_string("params"));
    fixed_line(f, reps, cols, where_set, "Fixed: ");
    if (repeats > 1)
        fprintf(f,
                "Values are means over up to %d repeats, ± the standard error of that mean: the "
                "spread between the repeats / √R, or the repeats' own error over vectors where "
                "that is larger.\n\n",
                repeats);
    char t[TXT], tb[TXT];
    md_cell(f, "label");
    json_array_foreach(shown, i, c) {
        md_cell(f, col_title(json_string_value(c), tb, sizeof tb));
    }
    const char *m;
    json_t *unit;
    json_object_foreach(metrics, m, unit) {
        /* A metric named like a shown parameter (bits) says that it is the measured one. */
        int clash = 0;
        json_array_foreach(shown, i, c) {
            if (!strcmp(col_title(json_string_value(c), tb, sizeof tb), m)) clash = 1;
        }
        if (json_string_length(unit) && strcmp(json_string_value(unit), m))
            snprintf(t, sizeof t, "%s [%s]", m, json_string_value(unit));
        else
            snprintf(t, sizeof t, "%s%s", m, clash ? " (measured)" : "");
        md_cell(f, t);
    }
    md_row_end(f);
    md_rule(f, 1 + json_array_size(shown) + json_object_size(metrics));
    const char *gid;
    json_t *g;
    size_t gi = 0;
    json_object_foreach(groups, gid, g) {
        json_t *rep = json_array_get(reps, gi++);
        md_cell(f, rb_row_str(rep, "label"));
        json_array_foreach(shown, i, c) {
            shown_text(rep, json_string_value(c), packed, t, sizeof t);
            md_cell(f, t);
        }
        json_object_foreach(metrics, m, unit) {
            json_t *list = json_object_get(g, m);
            if (!list) {
                md_cell(f, "—");
                continue;
            }
            double mean, se;
            pool(list, &mean, &se);
            value_text(mean, se, t, sizeof t);
            md_cell(f, t);
        }
        md_row_end(f);
    }
    fputc('\n', f);
    json_decref(shown);
    json_decref(packed);
    json_decref(where_set);
    json_decref(cols);
    json_decref(groups);
    json_decref(reps);
    json_decref(metrics);
}

static void accuracy_sections(FILE *f, json_t *rows) {
    /* family -> dataset -> rows, in first-appearance order. */
    json_t *fam = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (rb_row_is_latency(row)) continue;
        const char *fn = rb_row_str(row, "family") ? rb_row_str(row, "family") : "other";
        const char *dn = rb_row_str(row, "dataset") ? rb_row_str(row, "dataset") : "(none)";
        /* Per-slice rows (KV NAME/head metrics) get a table of their own after the pooled one. */
        char key[TXT];
        snprintf(key, sizeof key, "%s%s", rb_row_str(row, "slice") ? "\x01" : "", dn);
        json_array_append(child(child(fam, fn, 0), key, 1), row);
    }
    const char *fn, *dn;
    json_t *byds, *list;
    json_object_foreach(fam, fn, byds) {
        fprintf(f, "## Accuracy: %s methods\n\n", fn);
        json_object_foreach(byds, dn, list) {
            if (dn[0] == '\x01') continue;
            fprintf(f, "### Dataset `%s`\n\n", dn);
            accuracy_table(f, list, 0);
        }
        json_object_foreach(byds, dn, list) {
            if (dn[0] != '\x01') continue;
            fprintf(f, "### Dataset `%s`: per layer and head\n\n", dn + 1);
            accuracy_table(f, list, 1);
        }
    }
    json_decref(fam);
}

/* ---- expectations ---- */

static int read_expect(const char *path, json_t **out) {
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT) return RB_OK;
        return rb_error_set(RB_EIO, "%s: %s", path, strerror(errno));
    }
    json_t *list = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = RB_OK;
    while ((len = getline(&line, &cap, fp)) > 0) {
        lineno++;
        json_error_t err;
        json_t *o = json_loadb(line, (size_t) len, 0, &err);
        if (!o) {
            rc = rb_error_set(RB_EFORMAT, "%s:%ld: invalid JSON: %s", path, lineno, err.text);
            break;
        }
        const char *st = rb_row_str(o, "status");
        const char *why = NULL;
        if (!json_is_object(o))
            why = "expected a JSON object";
        else if (!rb_row_str(o, "metric"))
            why = "missing string \"metric\"";
        else if (!rb_row_str(o, "source"))
            why = "missing string \"source\"";
        else if (!st || (strcmp(st, "PASS") && strcmp(st, "FAIL") && strcmp(st, "MISSING")))
            why = "\"status\" must be PASS, FAIL or MISSING";
        /* A MISSING expectation may have no target: a relative one (`than:`) whose reference
         * cell did not run has nothing to multiply, and the runner writes null. */
        else if (!json_is_number(json_object_get(o, "target")) &&
                 !(!strcmp(st, "MISSING") && json_is_null(json_object_get(o, "target"))))
            why = "missing number \"target\" (null only for MISSING)";
        if (why) {
            json_decref(o);
            rc = rb_error_set(RB_EFORMAT, "%s:%ld: %s", path, lineno, why);
            break;
        }
        json_array_append_new(list, o);
    }
    free(line);
    fclose(fp);
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return RB_OK;
}

static void expect_counts(json_t *ex, int counts[3]) {
    counts[0] = counts[1] = counts[2] = 0;
    size_t i;
    json_t *e;
    json_array_foreach(ex, i, e) {
        const char *st = rb_row_str(e, "status");
        counts[!strcmp(st, "PASS") ? 0 : !strcmp(st, "FAIL") ? 1 : 2]++;
    }
}

/* The significant digits (4 at least, 17 at most) at which %g tells a and b apart; 4 when they
 * are equal or either is not finite. */
static int distinct_digits(double a, double b) {
    if (!isfinite(a) || !isfinite(b) || a == b) return 4;
    for (int p = 4; p < 17; p++) {
        char x[40], y[40];
        snprintf(x, sizeof x, "%.*g", p, a);
        snprintf(y, sizeof y, "%.*g", p, b);
        if (strcmp(x, y)) return p;
    }
    return 17;
}

/* The Expectations section; note (or NULL) is a paragraph under the title. */
static void expect_section(FILE *f, json_t *ex, const char *note) {
    fputs("## Expectations\n\n", f);
    if (note) fprintf(f, "%s\n\n", note);
    int n[3];
    expect_counts(ex, n);
    fprintf(f, "**%d PASS, %d FAIL, %d MISSING** (of %zu)\n\n", n[0], n[1], n[2],
            json_array_size(ex));
    fputs("| label | dataset | params | metric | measured | target | tolerance | status | source "
          "|\n",
          f);
    md_rule(f, 9);
    size_t i;
    json_t *e;
    char t[TXT];
    json_array_foreach(ex, i, e) {
        /* The selector: a label, with its method where the entry names a different one; a
         * method alone selects every label of that method. */
        const char *lab = rb_row_str(e, "label"), *meth = rb_row_str(e, "method");
        if (lab && meth && strcmp(lab, meth))
            snprintf(t, sizeof t, "%s (%s)", lab, meth);
        else if (lab)
            snprintf(t, sizeof t, "%s", lab);
        else if (meth)
            snprintf(t, sizeof t, "any (%s)", meth);
        else
            snprintf(t, sizeof t, "any");
        md_cell(f, t);
        md_cell(f, rb_row_str(e, "dataset") ? rb_row_str(e, "dataset") : "any");
        size_t used = 0;
        t[0] = '\0';
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(e, "params"), k, v) {
            char vt[128];
            rb_json_scalar_text(v, vt, sizeof vt);
            if (used < sizeof t)
                used += (size_t) snprintf(t + used, sizeof t - used, "%s%s=%s", used ? ", " : "", k,
                                          vt);
        }
        md_cell(f, used ? t : "—");
        md_cell(f, rb_row_str(e, "metric"));
        /* Measured and target at 4 significant digits, or as many more as it takes to tell
         * them apart: "0.2529 < 0.2529 PASS" (0.252895 against 0.2529) reads as a
         * contradiction. */
        double mv = rb_row_double(e, "value"), tg = rb_row_double(e, "target");
        int digits = distinct_digits(mv, tg);
        if (digits > 4)
            snprintf(t, sizeof t, "%.*g", digits, mv);
        else
            value_text(mv, NAN, t, sizeof t);
        md_cell(f, t);
        const char *op = rb_row_str(e, "op") ? rb_row_str(e, "op") : "~=";
        char tv[64];
        rb_fmt_double(tv, sizeof tv, rb_row_double(e, "target"));
        const char *than = rb_row_str(e, "than");
        double factor = rb_row_double(e, "factor");
        char fv[32] = "";
        if (than && isfinite(factor) && factor != 1) {
            rb_fmt_double(fv, sizeof fv, factor);
            strcat(fv, " x ");
        }
        if (!isfinite(rb_row_double(e, "target"))) /* MISSING: the reference did not run */
            snprintf(t, sizeof t, "%s —%s%s%s%s", op, than ? " (" : "", fv, than ? than : "",
                     than ? ")" : "");
        else if (than) /* a measured target: as many digits as the measured column */
            snprintf(t, sizeof t, "%s %.*g (%s%s)", op, digits, tg, fv, than);
        else
            snprintf(t, sizeof t, "%s %s", op, tv);
        md_cell(f, t);
        /* ~= passes within max(atol, rtol |target|) (the runner's expect_holds): both
         * tolerances and that bound are shown. The one-sided ops compare with no tolerance. */
        if (!strcmp(op, "~=")) {
            double rt = rb_row_double(e, "rtol"), at = rb_row_double(e, "atol");
            if (!isfinite(rt)) rt = 0;
            if (!isfinite(at)) at = 0;
            char a[32], b[32];
            rb_fmt_double(a, sizeof a, rt);
            rb_fmt_double(b, sizeof b, at);
            double bound = isfinite(tg) ? fmax(at, rt * fabs(tg)) : NAN;
            if (rt == 0 && at == 0)
                snprintf(t, sizeof t, "exact");
            else if (isfinite(bound))
                snprintf(t, sizeof t, "±%.3g (rtol %s, atol %s)", bound, a, b);
            else
                snprintf(t, sizeof t, "rtol %s, atol %s", a, b);
        } else {
            snprintf(t, sizeof t, "—");
        }
        md_cell(f, t);
        const char *st = rb_row_str(e, "status");
        snprintf(t, sizeof t, strcmp(st, "PASS") ? "**%s**" : "%s", st);
        md_cell(f, t);
        md_cell(f, rb_row_str(e, "source"));
        md_row_end(f);
    }
    fputc('\n', f);
}

/* ---- latency ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* Linear-interpolation quantile of sorted x (the usual "type 7"). */
static double quantile(const double *x, size_t n, double q) {
    double h = (double) (n - 1) * q;
    size_t lo = (size_t) floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return x[lo] + (h - (double) lo) * (x[hi] - x[lo]);
}

/* The copy bandwidth context.json's limits give for the run's thread count (the only row when
 * there is one), or NaN: the limit the latency fractions are relative to. */
static double context_copy_gbps(json_t *ctx) {
    json_t *host = json_object_get(ctx, "host"), *lims = json_object_get(host, "limits"), *l;
    long long threads = rb_row_int(host, "threads", 0);
    size_t i;
    json_array_foreach(lims, i, l) {
        if (rb_row_int(l, "threads", 0) == threads || json_array_size(lims) == 1)
            return rb_row_double(l, "copy_gbps");
    }
    return NAN;
}

/* The machine limits the fractions are relative to, as context.json has them, with what they
 * are: without them "of BW" cannot be read, and a value above 100% looks like an error. */
static void limits_note(FILE *f, json_t *ctx) {
    json_t *lims = json_object_get(json_object_get(ctx, "host"), "limits"), *l;
    if (!json_array_size(lims)) return;
    json_int_t buf = 0;
    size_t i;
    fputs("Machine limits, measured once at the start of the run (fastest repetition)", f);
    json_array_foreach(lims, i, l) {
        if (json_is_integer(json_object_get(l, "copy_bytes")))
            buf = json_integer_value(json_object_get(l, "copy_bytes"));
    }
    if (buf > 0) {
        char b[32];
        bytes_text(buf, b, sizeof b);
        fprintf(f, ", copying a %s buffer", b);
    }
    fputs(":", f);
    json_array_foreach(lims, i, l) {
        char c[32] = "—", p[32] = "—";
        double cg = rb_row_double(l, "copy_gbps"), pk = rb_row_double(l, "peak_add_gflops");
        if (isfinite(cg)) snprintf(c, sizeof c, "%.1f GB/s", cg);
        if (isfinite(pk)) snprintf(p, sizeof p, "%.0f GFLOP/s", pk);
        long long th = rb_row_int(l, "threads", 0);
        fprintf(f, "%s %lld thread%s: copy %s, fp32 add peak %s", i ? ";" : "", th,
                th == 1 ? "" : "s", c, p);
    }
    fputs(". \"of BW\" is a row's GB/s over that copy bandwidth. Sizes that fit in cache can "
          "exceed 100%, and the probe is one short measurement on a possibly shared machine: "
          "read the fractions as rough.\n\n",
          f);
}

/* Appends each comma-separated entry of list that out (a comma-separated list) lacks. */
static void union_list(char *out, size_t size, const char *list) {
    while (list && *list) {
        size_t len = strcspn(list, ",");
        int have = 0;
        for (const char *o = out; *o;) {
            size_t ol = strcspn(o, ",");
            if (ol == len && !strncmp(o, list, len)) have = 1;
            o += ol + (o[ol] == ',');
        }
        size_t used = strlen(out);
        if (!have && len && used + len + 2 < size)
            snprintf(out + used, size - used, "%s%.*s", used ? "," : "", (int) len, list);
        list += len + (list[len] == ',');
    }
}

static void latency_section(FILE *f, json_t *rows, json_t *ctx) {
    json_t *groups = json_object(), *reps = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (!rb_row_is_latency(row)) continue;
        char *gid = group_id(row, 1);
        json_t *g = json_object_get(groups, gid);
        if (!g) {
            g = json_array();
            json_object_set_new(groups, gid, g);
            json_array_append(reps, row);
        }
        json_array_append(g, row);
        free(gid);
    }
    if (!json_array_size(reps)) goto done;
    fputs("## Latency\n\n", f);
    /* A debug Google Benchmark or an unoptimized build of ours distorts every number below. */
    json_t *gbench = json_object_get(json_object_get(json_object_get(ctx, "build"), "libraries"),
                                     "google_benchmark");
    if (json_is_true(json_object_get(gbench, "library_debug")))
        fputs("> **Warning:** the Google Benchmark library was built in debug mode (asserts on); "
              "its own overhead may inflate the shortest timings.\n\n",
              f);
    if (json_is_false(json_object_get(gbench, "build_optimized")))
        fputs("> **Warning:** rotabench was built without optimization; these timings do not "
              "represent the kernels.\n\n",
              f);
    limits_note(f, ctx);
    double copy_gbps = context_copy_gbps(ctx);
    json_t *cols = candidate_columns(reps, 1);
    json_t *shown = json_array(), *packed = json_array(), *where_set = json_array(), *c;
    size_t data_left_out = choose_columns(reps, cols, 1, shown, packed, where_set);
    if (json_array_size(packed)) json_array_append_new(shown, json_string("params"));
    fixed_line(f, reps, cols, where_set, "Fixed: ");
    fprintf(f,
            "Median seconds per call over the raw samples; spread is the interquartile range "
            "(min..max below 4 samples); per call is what one timed call covers; the rate "
            "(vectors, KV tokens or inner-product scores "
            "per second), GB/s and the fraction of the measured bandwidth are at that median "
            "(repeats pooled); CPU wait is the share of the time the threads wanted a CPU that "
            "they queued for one (the worst repeat).%s\n\n",
            data_left_out ? " Each dataset's parameters are in its accuracy section." : "");
    char t[TXT], tb[TXT];
    md_cell(f, "label");
    json_array_foreach(shown, i, c) {
        md_cell(f, col_title(json_string_value(c), tb, sizeof tb));
    }
    const char *heads[] = {"op",   "median", "spread", "n",        "per call",
                           "rate", "GB/s",   "of BW",  "CPU wait", "kernels"};
    const size_t nheads = sizeof heads / sizeof heads[0];
    for (size_t h = 0; h < nheads; h++) md_cell(f, heads[h]);
    md_row_end(f);
    md_rule(f, 1 + nheads + json_array_size(shown));
    const char *gid;
    json_t *g;
    size_t gi = 0, busy = 0;
    double worst_wait = 0;
    json_object_foreach(groups, gid, g) {
        json_t *rep = json_array_get(reps, gi++);
        /* Repeats pool their raw samples. */
        size_t n = 0, k;
        json_t *r;
        json_array_foreach(g, k, r) {
            n += json_array_size(json_object_get(r, "samples"));
        }
        double *x = malloc((n ? n : 1) * sizeof *x);
        size_t m = 0;
        json_array_foreach(g, k, r) {
            size_t j;
            json_t *s;
            json_array_foreach(json_object_get(r, "samples"), j, s) {
                if (json_is_number(s)) x[m++] = json_number_value(s);
            }
        }
        qsort(x, m, sizeof *x, cmp_double);
        /* Every number in the row describes the pooled samples. A record's rate and GB/s are at
         * its own repeat's median, so they are turned back into items and bytes per call (rate x
         * median: fixed by the cell's batch, the same in every repeat) and divided by the pooled
         * median shown in this row; repeat 0's rate beside a median over all repeats would
         * describe two different things. The fraction is that GB/s over the copy bandwidth the
         * section header shows (context.json), or where the context has none, over the limit
         * the records were graded against (gbps / frac_bw). Kernels are the union over the
         * repeats (the same list in each, unless dispatch changed between sessions of a resumed
         * run). */
        double med = m ? quantile(x, m, 0.5) : NAN, items = 0, bytes = 0, lim = 0, wait = NAN;
        size_t ni = 0, nb = 0, nl = 0;
        char kv[2048] = "";
        json_array_foreach(g, k, r) {
            double v = rb_row_double(r, "value"), ips = rb_row_double(r, "items_per_s"),
                   gbr = rb_row_double(r, "gbps"), fbr = rb_row_double(r, "frac_bw");
            if (isfinite(v) && v > 0 && isfinite(ips) && ips > 0) {
                items += ips * v;
                ni++;
            }
            if (isfinite(v) && v > 0 && isfinite(gbr) && gbr > 0) {
                bytes += gbr * 1e9 * v;
                nb++;
            }
            if (isfinite(gbr) && isfinite(fbr) && fbr > 0) {
                lim += gbr / fbr;
                nl++;
            }
            union_list(kv, sizeof kv, rb_row_str(r, "kernel_variants"));
            double w = rb_row_double(r, "cpu_wait"); /* the worst repeat speaks for the row */
            if (isfinite(w) && !(w <= wait)) wait = w;
        }
        int ok = isfinite(med) && med > 0;
        double rate = ok && ni ? items / (double) ni / med : NAN;
        double gb = ok && nb ? bytes / (double) nb / med * 1e-9 : NAN;
        double limit = isfinite(copy_gbps) ? copy_gbps : nl ? lim / (double) nl : NAN;
        double fb = isfinite(limit) && limit > 0 ? gb / limit : NAN;
        md_cell(f, rb_row_str(rep, "label"));
        json_array_foreach(shown, k, c) {
            shown_text(rep, json_string_value(c), packed, t, sizeof t);
            md_cell(f, t);
        }
        md_cell(f, rb_row_str(rep, "metric"));
        time_text(med, t, sizeof t);
        md_cell(f, t);
        char a[64], b[64];
        time_text(m ? (m >= 4 ? quantile(x, m, 0.25) : x[0]) : NAN, a, sizeof a);
        time_text(m ? (m >= 4 ? quantile(x, m, 0.75) : x[m - 1]) : NAN, b, sizeof b);
        snprintf(t, sizeof t, "%s..%s%s", a, b, m >= 4 ? "" : " (min..max)");
        md_cell(f, t);
        snprintf(t, sizeof t, "%zu", m);
        md_cell(f, t);
        /* What one call covers (the latency batch, or the whole cache on KV data): the median
         * is per call, so without it the time has no denominator. */
        if (ni)
            snprintf(t, sizeof t, "%.0f %s", items / (double) ni,
                     rb_row_str(rep, "items_unit") ? rb_row_str(rep, "items_unit") : "items");
        else
            snprintf(t, sizeof t, "—");
        md_cell(f, t);
        rate_text(rate, rb_row_str(rep, "items_unit"), t, sizeof t);
        md_cell(f, t);
        if (isfinite(gb))
            snprintf(t, sizeof t, "%.2f", gb);
        else
            snprintf(t, sizeof t, "—");
        md_cell(f, t);
        if (isfinite(fb))
            snprintf(t, sizeof t, "%.0f%%", 100 * fb);
        else
            snprintf(t, sizeof t, "—");
        md_cell(f, t);
        if (isfinite(wait))
            snprintf(t, sizeof t, "%.0f%%%s", 100 * wait, wait > RB_CPU_WAIT_BUSY ? " (busy)" : "");
        else
            snprintf(t, sizeof t, "—");
        md_cell(f, t);
        if (wait > RB_CPU_WAIT_BUSY) {
            busy++;
            worst_wait = fmax(worst_wait, wait);
        }
        md_cell(f, *kv ? kv : "—");
        md_row_end(f);
        free(x);
    }
    fputc('\n', f);
    /* CPU wait: of the time the threads wanted a CPU while the row was timed, the share they
     * queued behind other processes or lost to the hypervisor (harness/cpu_wait.h). */
    if (busy)
        fprintf(f,
                "> **Warning:** %zu row%s timed on a busy machine: the threads waited for a CPU "
                "up to %.0f%% of the time (CPU wait over %.0f%%), so %s time%s include other "
                "processes' work; `rotabench compare` does not grade %s.\n\n",
                busy, busy == 1 ? " was" : "s were", 100 * worst_wait, 100 * RB_CPU_WAIT_BUSY,
                busy == 1 ? "its" : "their", busy == 1 ? "" : "s", busy == 1 ? "it" : "them");
    json_decref(shown);
    json_decref(packed);
    json_decref(where_set);
    json_decref(cols);
done:
    json_decref(groups);
    json_decref(reps);
}

/* ---- plots ---- */

/* x and series values: a field or a param (method params first, then dataset params). */
/* Whether a row's metric is the plot's y: the same name, or for y "NAME@k" any NAME@<number>. */
static int metric_is_y(const char *metric, const char *y) {
    size_t n = strlen(y);
    if (n >= 3 && !strcmp(y + n - 2, "@k"))
        return !strncmp(metric, y, n - 1) && metric[n - 1] &&
               strspn(metric + n - 1, "0123456789") == strlen(metric + n - 1);
    return !strcmp(metric, y);
}

static void axis_text(const json_t *row, const char *name, char *buf, size_t size) {
    if (!strcmp(name, "k")) { /* the number of a NAME@k metric (plots with y NAME@k) */
        const char *m = rb_row_str(row, "metric"), *at = m ? strrchr(m, '@') : NULL;
        snprintf(buf, size, "%s", at ? at + 1 : "?");
        return;
    }
    if (!strcmp(name, "method") || !strcmp(name, "label") || !strcmp(name, "dataset") ||
        !strcmp(name, "backend") || !strcmp(name, "family")) {
        col_text(row, name, buf, size);
        return;
    }
    /* layer / head of a per-slice row (plots of NAME/head metrics over x: head or layer) */
    if ((!strcmp(name, "layer") || !strcmp(name, "head")) && slice_part(row, name, buf, size))
        return;
    char col[TXT];
    snprintf(col, sizeof col, "p:%s", name);
    if (json_object_get(json_object_get(row, "params"), name)) {
        col_text(row, col, buf, size);
        return;
    }
    snprintf(col, sizeof col, "d:%s", name);
    col_text(row, col, buf, size);
}

/* Whether col takes two values within one series of rows (xs NULL), or within one point
 * (series, x), xs holding each row's x text: under an x_metric a column that only moves with x
 * (the bits parameter under measured bits) names no other configuration. */
static int varies_within(json_t *rows, const char *col, const char *series, json_t *xs) {
    json_t *first = json_object(); /* series [\x1f x] -> col text of its first row */
    size_t i;
    json_t *row;
    int varies = 0;
    json_array_foreach(rows, i, row) {
        char sv[TXT], key[2 * TXT + 2], t[TXT];
        axis_text(row, series, sv, sizeof sv);
        if (xs)
            snprintf(key, sizeof key, "%s\x1f%s", sv, json_string_value(json_array_get(xs, i)));
        else
            snprintf(key, sizeof key, "%s", sv);
        col_text(row, col, t, sizeof t);
        json_t *seen = json_object_get(first, key);
        if (!seen)
            json_object_set_new(first, key, json_string(t));
        else if (strcmp(json_string_value(seen), t)) {
            varies = 1;
            break;
        }
    }
    json_decref(first);
    return varies;
}

static int is_number(const char *s, double *v) {
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0';
}

/* A gnuplot single-quoted string, the one kind gnuplot runs no command substitution (`...`) or
 * macro (@name) in: quotes doubled, and control characters, a line break above all (it would end
 * the string and start a command), written as spaces. Config text (labels, titles, metric and
 * series names) goes into the script only this way. */
static void gp_str(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '\'') fputc('\'', f);
        fputc(rb_is_control(c) ? ' ' : c, f);
    }
    fputc('\'', f);
}

typedef struct plot_point {
    double x, y, se;
    int xi; /* categorical index */
} plot_point;

static int cmp_point(const void *a, const void *b) {
    const plot_point *p = a, *q = b;
    return (p->x > q->x) - (p->x < q->x);
}

/* Runs gnuplot on report_dir/plot_<i>.gp; 0, RB_ENOTSUP (no gnuplot) or RB_ELIB (it failed). */
static int run_gnuplot(const char *dir, int idx) {
    const char *gp = getenv("RB_GNUPLOT");
    if (!gp || !*gp) gp = "gnuplot";
    char script[64], log[64];
    snprintf(script, sizeof script, "plot_%d.gp", idx);
    snprintf(log, sizeof log, "plot_%d.log", idx);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return rb_error_set(RB_ELIB, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        /* A terminal's Ctrl-C reaches the whole process group: `run` finishes its report after
         * the first one, so the plot it is drawing must survive it (ignored stays ignored across
         * exec). A second Ctrl-C ends rotabench; this plot then finishes on its own. */
        signal(SIGINT, SIG_IGN);
        if (chdir(dir) != 0) _exit(126);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp(gp, gp, script, (char *) NULL);
        fprintf(stderr, "cannot run %s: %s\n", gp, strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return rb_error_set(RB_ELIB, "waitpid failed: %s", strerror(errno));
    char logpath[4200];
    snprintf(logpath, sizeof logpath, "%s/%s", dir, log);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        /* Success: gnuplot's warnings (if any) go to our stderr; the log is not kept. */
        FILE *lf = fopen(logpath, "r");
        if (lf) {
            char buf[512];
            int first = 1;
            while (fgets(buf, sizeof buf, lf)) {
                if (first) fprintf(stderr, "gnuplot (plot_%d.gp):\n", idx);
                first = 0;
                fputs(buf, stderr);
            }
            fclose(lf);
        }
        unlink(logpath);
        return RB_OK;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return rb_error_set(RB_ENOTSUP, "gnuplot not found ('%s'; install gnuplot-nox)", gp);
    return rb_error_set(RB_ELIB, "gnuplot %s failed (%s %d); see %s", script,
                        WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), logpath);
}

/* Removes report_dir/plot_<idx>.{png,svg,csv,gp,log}; whether any was there. */
static int remove_plot_files(const char *dir, int idx) {
    static const char *const ext[] = {"png", "svg", "csv", "gp", "log"};
    int any = 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/plot_%d.%s", dir, idx, ext[i]);
        if (unlink(path) == 0) any = 1;
    }
    return any;
}

/* Writes plot_<idx>.csv and .gp, renders them; appends the Markdown for the plot to f.
 * Returns 0, or the soft rendering error. Hard I/O errors also come back as codes. */
/* x_metric plots: cell key -> the cell's value of metric name (accuracy rows, finite values). */
static json_t *metric_by_cell(json_t *rows, const char *name) {
    json_t *by = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *m = rb_row_str(row, "metric"), *key = rb_row_str(row, "cell_key");
        double v = rb_row_double(row, "value");
        if (rb_row_is_latency(row) || !m || !key || strcmp(m, name) || !isfinite(v)) continue;
        json_object_set_new(by, key, json_real(v));
    }
    return by;
}

static int plot_one(FILE *f, const char *dir, int idx, json_t *spec, json_t *rows) {
    const char *x = rb_row_str(spec, "x"), *y = rb_row_str(spec, "y");
    const char *xmetric = rb_row_str(spec, "x_metric");
    if (xmetric) x = xmetric; /* the axis's name; the values come from the rows below */
    const char *series = rb_row_str(spec, "series") ? rb_row_str(spec, "series") : "label";
    const char *fds = rb_row_str(spec, "dataset"), *fm = rb_row_str(spec, "method");
    int logx = json_is_true(json_object_get(spec, "logx"));
    int logy = json_is_true(json_object_get(spec, "logy"));
    char title[TXT];
    if (rb_row_str(spec, "title"))
        snprintf(title, sizeof title, "%s", rb_row_str(spec, "title"));
    else
        snprintf(title, sizeof title, "%s vs %s%s%s%s%s", y ? y : "?", x ? x : "?",
                 xmetric ? " (measured)" : "", fds ? " (" : "", fds ? fds : "", fds ? ")" : "");
    /* one line: the heading, the script's first comment and the image's alt text */
    for (char *c = title; *c; c++)
        if (rb_is_control((unsigned char) *c)) *c = ' ';
    fprintf(f, "### Plot %d: %s\n\n", idx, title);
    /* An earlier render's files must not stand beside "not drawn" or "not rendered". */
    remove_plot_files(dir, idx);
    if (!x || !y) {
        fprintf(f, "Plot %d is not drawn: its entry needs both x and y.\n\n", idx);
        return RB_OK;
    }
    json_t *sel = json_array();
    /* Baselines (plot key `baselines`: labels): their rows become one horizontal reference line
     * each, not points at their x, so a method the x parameter does not apply to (no rotation
     * has no block size) is not drawn at its default x as if it had one. */
    json_t *blabels = json_object_get(spec, "baselines"), *base = json_object();
    json_t *xvals = xmetric ? metric_by_cell(rows, xmetric) : NULL;
    size_t i, no_x = 0;
    json_t *row;
    const char *unit = NULL;
    json_array_foreach(rows, i, row) {
        if (rb_row_is_latency(row) || !metric_is_y(rb_row_str(row, "metric"), y)) continue;
        if (fds && (!rb_row_str(row, "dataset") || strcmp(rb_row_str(row, "dataset"), fds)))
            continue;
        if (fm && !((rb_row_str(row, "method") && !strcmp(rb_row_str(row, "method"), fm)) ||
                    (rb_row_str(row, "label") && !strcmp(rb_row_str(row, "label"), fm))))
            continue;
        if (!unit) unit = rb_row_str(row, "unit");
        const char *lab = rb_row_str(row, "label");
        size_t b;
        json_t *bl;
        int is_base = 0;
        json_array_foreach(blabels, b, bl) {
            if (lab && json_is_string(bl) && !strcmp(json_string_value(bl), lab)) is_base = 1;
        }
        if (is_base)
            json_array_append(child(base, lab, 1), row);
        else if (xvals &&
                 !json_object_get(xvals,
                                  rb_row_str(row, "cell_key") ? rb_row_str(row, "cell_key") : ""))
            no_x++; /* its cell did not compute the x metric */
        else
            json_array_append(sel, row);
    }
    /* Each selected row's x text, in sel's order. */
    json_t *xtexts = json_array();
    json_array_foreach(sel, i, row) {
        char xt[TXT];
        if (xvals)
            rb_fmt_double(xt, sizeof xt,
                          json_real_value(json_object_get(xvals, rb_row_str(row, "cell_key"))));
        else
            axis_text(row, x, xt, sizeof xt);
        json_array_append_new(xtexts, json_string(xt));
    }
    json_decref(xvals);
    if (no_x)
        fprintf(f, "%zu row%s of `%s` left out: %s cell%s no `%s` value.\n\n", no_x,
                no_x == 1 ? "" : "s", y, no_x == 1 ? "its" : "their", no_x == 1 ? " has" : "s have",
                xmetric);
    if (!json_array_size(sel)) {
        fprintf(f, "Plot %d is not drawn: no accuracy rows have metric `%s`%s.\n\n", idx, y,
                fds || fm ? " after the filters" : "");
        json_decref(sel);
        json_decref(xtexts);
        json_decref(base);
        return RB_OK;
    }
    /* Series names carry every other column that varies within a series, so that no two
     * configurations are silently merged into one line (a column that is constant inside each
     * series, like the rotation of a label, adds nothing to the legend). */
    json_t *cols = candidate_columns(sel, 1), *extra = json_array(), *c;
    json_array_insert_new(cols, 0, json_string("label"));
    /* Per-slice rows: the slice part that is not the x axis splits series (one line per layer
     * when x is head) rather than being averaged in. */
    if (rb_row_str(json_array_get(sel, 0), "slice")) {
        json_array_append_new(cols, json_string("s:layer"));
        json_array_append_new(cols, json_string("s:head"));
    }
    json_array_foreach(cols, i, c) {
        const char *col = json_string_value(c);
        const char *bare = col[1] == ':' ? col + 2 : col;
        /* The x parameter is the axis; under x_metric a parameter of the metric's name is not
         * (varies_within decides, per point). */
        if ((!xmetric && !strcmp(bare, x)) || !strcmp(bare, series)) continue;
        if (!strcmp(col, "method")) continue; /* a label names one method entry */
        if (varies_within(sel, col, series, xmetric ? xtexts : NULL)) json_array_append(extra, c);
    }
    /* series -> x text -> rows (repeats pooled) */
    json_t *tree = json_object(), *xorder = json_object();
    int numeric = 1;
    json_array_foreach(sel, i, row) {
        char sname[TXT], xt[TXT];
        /* A parameter as the series reads "bits=2"; a name (label, method, ...) stands alone. */
        int named = !strcmp(series, "method") || !strcmp(series, "label") ||
                    !strcmp(series, "dataset") || !strcmp(series, "backend") ||
                    !strcmp(series, "family");
        char sv[TXT / 2];
        axis_text(row, series, sv, sizeof sv);
        snprintf(sname, sizeof sname, "%.64s%s%s", named ? "" : series, named ? "" : "=", sv);
        size_t used = strlen(sname);
        size_t k;
        json_array_foreach(extra, k, c) {
            char t[TXT];
            const char *col = json_string_value(c);
            col_text(row, col, t, sizeof t);
            if (used < sizeof sname)
                used += (size_t) snprintf(sname + used, sizeof sname - used, "%s%s=%s",
                                          k ? ", " : " (", col[1] == ':' ? col + 2 : col, t);
            if (k + 1 == json_array_size(extra) && used < sizeof sname)
                used += (size_t) snprintf(sname + used, sizeof sname - used, ")");
        }
        snprintf(xt, sizeof xt, "%s", json_string_value(json_array_get(xtexts, i)));
        double dv;
        if (!is_number(xt, &dv)) numeric = 0;
        if (!json_object_get(xorder, xt))
            json_object_set_new(xorder, xt, json_integer((json_int_t) json_object_size(xorder)));
        json_array_append(child(child(tree, sname, 0), xt, 1), row);
    }
    if (logx && !numeric) logx = 0;

    char path[4200];
    snprintf(path, sizeof path, "%s/plot_%d.csv", dir, idx);
    FILE *csv = fopen(path, "w");
    snprintf(path, sizeof path, "%s/plot_%d.gp", dir, idx);
    FILE *gp = fopen(path, "w");
    int rc = RB_OK;
    if (!csv || !gp) {
        rc = rb_error_set(RB_EIO, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    fputs("series,x,y,stderr\r\n", csv);
    fprintf(gp, "# rotabench plot %d: %s (data inline; rendered by: gnuplot plot_%d.gp)\n", idx,
            title, idx);
    fputs("set encoding utf8\nset datafile missing \"NaN\"\n", gp);
    /* Integer x values with few distinct points get exactly those tics (bits: 1 2 3 4). */
    int int_tics = numeric && json_object_size(xorder) <= 16;
    const char *xt;
    json_t *xv;
    json_object_foreach(xorder, xt, xv) {
        double dv;
        if (!is_number(xt, &dv) || dv != floor(dv)) int_tics = 0;
    }
    if (int_tics) {
        fputs("set xtics (", gp);
        int first = 1;
        json_object_foreach(xorder, xt, xv) {
            double dv;
            char num[32];
            is_number(xt, &dv); /* the number parsed, not the text (strtod skips white space) */
            rb_fmt_double(num, sizeof num, dv);
            fprintf(gp, "%s%s", first ? "" : ", ", num);
            first = 0;
        }
        fputs(")\n", gp);
    } else if (!numeric) {
        /* Categories at 0, 1, ... named once by explicit tics (not by xtic() on each series). */
        fputs("set xtics (", gp);
        int first = 1;
        json_object_foreach(xorder, xt, xv) {
            fputs(first ? "" : ", ", gp);
            gp_str(gp, xt);
            fprintf(gp, " %d", (int) json_integer_value(xv));
            first = 0;
        }
        fputs(")\n", gp);
    }
    const char *sname;
    json_t *s;
    json_t *list;
    /* Error bars on a log y axis stop at the bottom of the axis when they would reach 0 or below:
     * the decade under the smallest positive value or positive bar end, where gnuplot's log
     * autoscale puts the bottom anyway. */
    double ypos = INFINITY;
    json_object_foreach(tree, sname, s) {
        json_object_foreach(s, xt, list) {
            double m, se;
            pool(list, &m, &se);
            if (isfinite(m) && m > 0 && m < ypos) ypos = m;
            if (isfinite(m) && isfinite(se) && m - se > 0 && m - se < ypos) ypos = m - se;
        }
    }
    double yfloor = isfinite(ypos) ? pow(10, floor(log10(ypos))) : NAN;
    int si = 0;
    double xmin = INFINITY, xmax = -INFINITY;
    /* Which series have an error bar (a series with none gets no error bar layer, which gnuplot
     * would warn is empty). */
    char *barred = calloc(json_object_size(tree) + 1, 1);
    if (!barred) {
        rc = rb_error_set(RB_ENOMEM, "out of memory");
        goto out;
    }
    json_object_foreach(tree, sname, s) {
        size_t np = json_object_size(s), k = 0;
        plot_point *pts = calloc(np ? np : 1, sizeof *pts);
        json_object_foreach(s, xt, list) {
            plot_point *p = &pts[k++];
            p->xi = (int) json_integer_value(json_object_get(xorder, xt));
            if (numeric)
                is_number(xt, &p->x);
            else
                p->x = p->xi;
            pool(list, &p->y, &p->se);
            if (p->x < xmin) xmin = p->x;
            if (p->x > xmax) xmax = p->x;
        }
        qsort(pts, np, sizeof *pts, cmp_point);
        /* Columns: x, y, and the error bar's ends (y -/+ stderr; NaN where there is no stderr
         * or it is 0, which draws the point without a bar). */
        fprintf(gp, "$s%d << EOD\n", si);
        for (k = 0; k < np; k++) {
            char a[32], b[32], e[32], lo[32] = "NaN", hi[32] = "NaN";
            rb_fmt_double(a, sizeof a, pts[k].x);
            rb_fmt_double(b, sizeof b, pts[k].y);
            rb_fmt_double(e, sizeof e, pts[k].se);
            if (isfinite(pts[k].y) && isfinite(pts[k].se) && pts[k].se > 0) {
                double l = pts[k].y - pts[k].se;
                if (logy && !(l > 0)) l = yfloor;
                if (isfinite(l)) rb_fmt_double(lo, sizeof lo, l);
                rb_fmt_double(hi, sizeof hi, pts[k].y + pts[k].se);
                barred[si] = 1;
            }
            if (numeric)
                fprintf(gp, "%s", a);
            else
                fprintf(gp, "%d", pts[k].xi);
            fprintf(gp, " %s %s %s\n", isfinite(pts[k].y) ? b : "NaN", lo, hi);
            rb_csv_field(csv, sname);
            fputc(',', csv);
            if (numeric) {
                rb_csv_field(csv, a);
            } else {
                json_object_foreach(xorder, xt, xv) {
                    if (json_integer_value(xv) == pts[k].xi) rb_csv_field(csv, xt);
                }
            }
            fprintf(csv, ",%s,%s\r\n", isfinite(pts[k].y) ? b : "", isfinite(pts[k].se) ? e : "");
        }
        fputs("EOD\n", gp);
        free(pts);
        si++;
    }
    /* Baselines: one pooled value each, a CSV row with an empty x. */
    json_t *bvals = json_object(); /* label -> value, finite ones only (and > 0 on log y) */
    json_object_foreach(base, sname, s) {
        /* One line stands for one cell (its repeats): a label whose rows differ in dataset or
         * parameters would be drawn at the mean of unrelated cells, so it is left out, saying so.
         */
        json_t *r0 = json_array_get(s, 0), *rk;
        size_t k;
        int mixed = 0;
        json_array_foreach(s, k, rk) {
            const char *d0 = rb_row_str(r0, "dataset"), *dk = rb_row_str(rk, "dataset");
            if ((d0 && dk ? strcmp(d0, dk) != 0 : d0 != dk) ||
                !json_equal(json_object_get(r0, "params"), json_object_get(rk, "params")))
                mixed = 1;
        }
        if (mixed) {
            fprintf(f,
                    "Baseline `%s` is not drawn: its rows differ in dataset or parameters "
                    "(filter the plot with `dataset:`, or give the baseline entry one cell).\n\n",
                    sname);
            continue;
        }
        double by, bse;
        pool(s, &by, &bse);
        char b[32], e[32], bname[TXT];
        rb_fmt_double(b, sizeof b, by);
        rb_fmt_double(e, sizeof e, bse);
        snprintf(bname, sizeof bname, "%s (baseline)", sname);
        rb_csv_field(csv, bname);
        fprintf(csv, ",,%s,%s\r\n", isfinite(by) ? b : "", isfinite(bse) ? e : "");
        if (isfinite(by) && (!logy || by > 0)) json_object_set_new(bvals, sname, json_real(by));
    }
    /* Style: thick lines with filled points of distinct shapes (legible in greyscale too). */
    fputs(
        "set grid xtics ytics mytics lt 1 dt 1 lc rgb '#d0d0d0' lw 1, lt 1 dt 1 lc rgb '#ececec'\n"
        "set key outside right top box Left reverse spacing 1.3\nset border lw 1.2\n",
        gp);
    fputs("set title ", gp);
    gp_str(gp, title);
    fputs(" font ',15'\nset xlabel ", gp);
    char xlab[TXT];
    snprintf(xlab, sizeof xlab, "%s%s", x, xmetric ? " (measured)" : "");
    gp_str(gp, xlab);
    char ylab[TXT];
    snprintf(ylab, sizeof ylab, "%s%s%s%s", y, unit && *unit && strcmp(unit, y) ? " [" : "",
             unit && *unit && strcmp(unit, y) ? unit : "",
             unit && *unit && strcmp(unit, y) ? "]" : "");
    fputs("\nset ylabel ", gp);
    gp_str(gp, ylab);
    fputc('\n', gp);
    if (logx) fputs("set logscale x\nset format x \"%g\"\n", gp);
    /* Linear y: headroom so the top point is not drawn on the border (log y already rounds
     * out to whole decades). */
    fputs(logy ? "set logscale y\nset format y \"%g\"\n" : "set offsets 0, 0, graph 0.05, 0\n", gp);
    if (!numeric || (!logx && xmin == xmax)) {
        fprintf(gp, "set xrange [%g:%g]\n", xmin - 0.5, xmax + 0.5);
    } else if (!logx) {
        double pad = (xmax - xmin) * 0.04;
        fprintf(gp, "set xrange [%.17g:%.17g]\n", xmin - pad, xmax + pad);
    }
    /* Each series its own colour, point shape and dash pattern. The three cycle with coprime
     * periods (12, 7, 5), so no two of the first 84 series share a (colour, shape) pair; the
     * palette is a qualitative one that reads on white and leaves out the baselines' grey. */
    static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                          "#9467bd", "#8c564b", "#e377c2", "#17becf",
                                          "#bcbd22", "#000080", "#800000", "#008080"};
    static const int ptypes[] = {7, 5, 9, 11, 13, 15, 4};
    int ncol = (int) (sizeof colours / sizeof *colours);
    int npt = (int) (sizeof ptypes / sizeof *ptypes);
    fprintf(gp,
            "set terminal pngcairo size 1100,650 font 'Sans,12' noenhanced\n"
            "set output 'plot_%d.png'\nplot \\\n",
            idx);
    si = 0;
    json_object_foreach(tree, sname, s) {
        const char *lc = colours[si % ncol];
        /* Every point at its true x (no dodging: x is often a measured rate, e.g. bits with side
         * information); series with equal values stay apart by point shape, dash and colour. */
        const char *xs = "1";
        /* The error bars first, under the line and points. */
        if (barred[si])
            fprintf(
                gp,
                "  $s%d using %s:2:3:4 with yerrorbars lw 1.5 lc rgb '%s' pt 7 ps 0 notitle, \\\n",
                si, xs, lc);
        fprintf(gp, "  $s%d using %s:2 with linespoints lw 2 dt %d lc rgb '%s' pt %d ps 1.3 title ",
                si, xs, 1 + si % 5, lc, ptypes[si % npt]);
        gp_str(gp, sname);
        fputs(si + 1 < (int) (json_object_size(tree) + json_object_size(bvals)) ? ", \\\n" : "\n",
              gp);
        si++;
    }
    json_t *bv;
    int bi = 0;
    json_object_foreach(bvals, sname, bv) {
        char b[32], bname[TXT];
        rb_fmt_double(b, sizeof b, json_real_value(bv));
        snprintf(bname, sizeof bname, "%s (baseline)", sname);
        fprintf(gp, "  %s with lines dt %d lw 2 lc rgb '#404040' title ", b, 2 + bi % 4);
        gp_str(gp, bname);
        fputs(bi + 1 < (int) json_object_size(bvals) ? ", \\\n" : "\n", gp);
        bi++;
    }
    json_decref(bvals);
    free(barred);
    fputs("\n", gp);
    /* The same plot replayed for the SVG. */
    fprintf(gp,
            "set terminal svg size 1100,650 font 'Sans,12' noenhanced background '#ffffff'\n"
            "set output 'plot_%d.svg'\nreplot\nunset output\n",
            idx);
out:
    if (csv && fclose(csv) != 0 && !rc) rc = rb_error_set(RB_EIO, "plot_%d.csv: write failed", idx);
    if (gp && fclose(gp) != 0 && !rc) rc = rb_error_set(RB_EIO, "plot_%d.gp: write failed", idx);
    json_decref(tree);
    json_decref(base);
    json_decref(xorder);
    json_decref(extra);
    json_decref(cols);
    json_decref(sel);
    json_decref(xtexts);
    if (rc) return rc;
    rc = run_gnuplot(dir, idx);
    if (rc == RB_OK)
        fprintf(f,
                "![%s](plot_%d.png)\n\n[SVG](plot_%d.svg) · data: [plot_%d.csv](plot_%d.csv) · "
                "script: [plot_%d.gp](plot_%d.gp)\n\n",
                title, idx, idx, idx, idx, idx, idx);
    else
        fprintf(f,
                "**Plot not rendered:** %s. Data: [plot_%d.csv](plot_%d.csv), script: "
                "[plot_%d.gp](plot_%d.gp).\n\n",
                rb_error_detail(), idx, idx, idx, idx);
    return rc;
}

/* ---- the report ---- */

/* How many of the run's planned cells (context.json run.seeds.cells, one entry per cell of the
 * expanded config) have finished in results.jsonl; *planned = 0 when the context does not list
 * them. A cell counts once its cell_done marker is on disk, so one that wrote no rows counts. */
static int cells_finished(const char *results_dir, json_t *ctx, size_t *planned, size_t *done) {
    *planned = *done = 0;
    json_t *cells = json_object_get(json_object_get(json_object_get(ctx, "run"), "seeds"), "cells");
    if (!json_array_size(cells)) return RB_OK;
    json_t *finished;
    int rc = rb_results_done_cells(results_dir, &finished);
    if (rc) return rc;
    size_t i;
    json_t *c;
    json_array_foreach(cells, i, c) {
        const char *key = rb_row_str(c, "cell");
        (*planned)++;
        if (key && json_object_get(finished, key)) (*done)++;
    }
    json_decref(finished);
    return RB_OK;
}

/* The cells whose last word in results.jsonl is a failure, with the error as the run printed it
 * (it names the config entry, the dataset and the cell), verbatim in a code block: an error's
 * text is not Markdown. */
static void failed_section(FILE *f, json_t *failed) {
    size_t n = json_object_size(failed);
    if (!n) return;
    fprintf(f, "## Failed cells\n\n%zu cell%s failed; the error%s:\n\n```text\n", n,
            n == 1 ? "" : "s", n == 1 ? "" : "s");
    const char *key;
    json_t *err;
    json_object_foreach(failed, key, err) {
        fprintf(f, "%s\n", json_string_value(err));
    }
    fputs("```\n\n", f);
}

/* The --only GLOB of the run's command line, or NULL. */
static const char *only_glob(json_t *ctx) {
    json_t *argv = json_object_get(json_object_get(ctx, "run"), "argv");
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a) {
        const char *s = json_string_value(a);
        if (s && !strcmp(s, "--only")) return json_string_value(json_array_get(argv, i + 1));
        if (s && !strncmp(s, "--only=", 7)) return s + 7;
    }
    return NULL;
}

int rb_report_write(const char *results_dir, const char *report_dir) {
    char path[4200], tmp[4300];
    json_t *ctx = NULL, *rows = NULL, *ex = NULL, *failed = NULL;
    FILE *f = NULL;
    int rc, soft = RB_OK;
    char soft_detail[1024] = "";

    snprintf(path, sizeof path, "%s/context.json", results_dir);
    json_error_t err;
    ctx = json_load_file(path, 0, &err);
    if (!ctx) {
        rc = access(path, F_OK)
                 ? rb_error_set(RB_EIO, "%s: %s", path, strerror(ENOENT))
                 : rb_error_set(RB_EFORMAT, "%s:%d: invalid JSON: %s", path, err.line, err.text);
        goto fail;
    }
    if (!json_is_object(ctx)) {
        rc = rb_error_set(RB_EFORMAT, "%s: expected a JSON object", path);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/results.jsonl", results_dir);
    if ((rc = rb_results_read(path, &rows))) goto fail;
    snprintf(path, sizeof path, "%s/expect.jsonl", results_dir);
    if ((rc = read_expect(path, &ex))) goto fail;
    /* A config without expectations gets an empty expect.jsonl: no section, no "0 PASS". */
    if (ex && !json_array_size(ex)) {
        json_decref(ex);
        ex = NULL;
    }
    size_t planned, done;
    if ((rc = cells_finished(results_dir, ctx, &planned, &done))) goto fail;
    if ((rc = rb_results_failed_cells(results_dir, &failed))) goto fail;
    if ((rc = rb_mkdir_p(report_dir))) goto fail;

    snprintf(path, sizeof path, "%s/results.csv", report_dir);
    if ((rc = rb_results_write_csv(path, rows))) goto fail;

    snprintf(path, sizeof path, "%s/report.md", report_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) {
        rc = rb_error_set(RB_EIO, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    json_t *run = json_object_get(ctx, "run"), *config = json_object_get(run, "config");
    const char *name = rb_row_str(config, "name");
    fprintf(f, "# rotabench report: %s\n\n", name ? name : "(unnamed config)");
    fprintf(f, "%zu result rows from `%s`.", json_array_size(rows), results_dir);
    if (ex) {
        int n[3];
        expect_counts(ex, n);
        fprintf(f, " Expectations: **%d PASS, %d FAIL, %d MISSING**.", n[0], n[1], n[2]);
    }
    fputs("\n\n", f);
    /* A report of part of a run says so before any table: an interrupted run's tables look
     * complete otherwise. */
    const char *only = only_glob(ctx);
    const char *config_path = rb_row_str(run, "config_path");
    if (!config_path) config_path = "CONFIG";
    if (done < planned) {
        fprintf(f, "**PARTIAL: %zu of %zu cells** finished", done, planned);
        size_t nfailed = json_object_size(failed);
        size_t unrun = planned - done > nfailed ? planned - done - nfailed : 0;
        if (nfailed) {
            fprintf(f, "; **%zu failed** (see \"Failed cells\")", nfailed);
            if (unrun && only)
                fprintf(f,
                        "; %zu not run (not selected by `--only %s`, or left when the run "
                        "stopped)",
                        unrun, only);
            else if (unrun)
                fprintf(f,
                        "; %zu not run (the run stopped at a failure or was interrupted, or "
                        "is still going)",
                        unrun);
            fprintf(f,
                    ". `rotabench run %s -o %s --resume -k` runs the failed%s cells, with the "
                    "same config (after a change to it, run into a new directory).\n\n",
                    config_path, results_dir, unrun ? " and the other" : "");
        } else if (only)
            fprintf(f, " (the run was limited with `--only %s`).\n\n", only);
        else
            fprintf(f,
                    " (the run was interrupted, or is still going; `rotabench run %s -o %s "
                    "--resume` continues it).\n\n",
                    config_path, results_dir);
    }
    failed_section(f, failed);
    provenance(f, ctx, rows);
    accuracy_sections(f, rows);
    size_t nexpect = json_array_size(json_object_get(config, "expect"));
    if (ex) {
        char note[128];
        snprintf(note, sizeof note,
                 "Graded on a partial run (%zu of %zu cells): an expectation whose cell did not "
                 "run is MISSING.",
                 done, planned);
        expect_section(f, ex, done < planned ? note : NULL);
    } else if (done < planned && nexpect) {
        fprintf(f,
                "## Expectations\n\nNot graded: expectations are graded when a run finishes, "
                "and this one is partial (%zu of %zu cells; there is no expect.jsonl). The config "
                "has %zu.\n\n",
                done, planned, nexpect);
    }
    latency_section(f, rows, ctx);
    json_t *plots = json_object_get(config, "plots");
    if (json_array_size(plots)) {
        fputs("## Plots\n\n", f);
        size_t i;
        json_t *p;
        json_array_foreach(plots, i, p) {
            rc = plot_one(f, report_dir, (int) i, p, rows);
            if (rc == RB_ENOTSUP || rc == RB_ELIB) {
                if (!soft) {
                    soft = rc;
                    snprintf(soft_detail, sizeof soft_detail, "%s", rb_error_detail());
                }
            } else if (rc) {
                goto fail;
            }
        }
    }
    /* Plots beyond this config's count are an earlier render's (of a config with more). */
    int stale = (int) json_array_size(plots);
    while (remove_plot_files(report_dir, stale)) stale++;
    fputs("---\nGenerated by `rotabench report` from context.json and results.jsonl.\n", f);
    if (fclose(f) != 0) {
        f = NULL;
        rc = rb_error_set(RB_EIO, "%s: write failed", tmp);
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        rc = rb_error_set(RB_EIO, "%s: rename failed: %s", path, strerror(errno));
        goto fail;
    }
    rc = soft ? rb_error_set(soft, "%s", soft_detail) : RB_OK;
fail:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    json_decref(ctx);
    json_decref(rows);
    json_decref(ex);
    json_decref(failed);
    return rc;
}
