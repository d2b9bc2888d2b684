/* Result records: the field table, the JSON form of a record, results.jsonl (append, markers,
 * read back) and results.csv. */
#include "harness/record.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define F(name, type, member, key, csv) \
    { name, type, offsetof(rb_record, member), key, csv }
static const rb_field fields[] = {
    F("dataset", RB_FIELD_STR, dataset, 1, 1),
    F("dataset_hash", RB_FIELD_STR, dataset_hash, 0, 1),
    F("dparams", RB_FIELD_PARAMS, dparams, 1, 1),
    F("family", RB_FIELD_STR, family, 1, 1),
    F("method", RB_FIELD_STR, method, 1, 1),
    F("label", RB_FIELD_STR, label, 1, 1),
    F("method_version", RB_FIELD_INT, method_version, 0, 1),
    F("params", RB_FIELD_PARAMS, params, 1, 1),
    F("backend", RB_FIELD_STR, backend, 1, 1),
    F("seed", RB_FIELD_U64, seed, 0, 1),
    F("repeat", RB_FIELD_INT, repeat, 0, 1),
    F("metric", RB_FIELD_STR, metric, 1, 1),
    F("slice", RB_FIELD_STR, slice, 1, 1),
    F("value", RB_FIELD_DOUBLE, value, 0, 1),
    F("unit", RB_FIELD_STR, unit, 0, 1),
    F("n", RB_FIELD_SIZE, n, 0, 1),
    F("stderr", RB_FIELD_DOUBLE, stderr_, 0, 1),
    F("samples", RB_FIELD_SAMPLES, samples, 0, 0),
    F("items_per_s", RB_FIELD_DOUBLE, items_per_s, 0, 1),
    F("items_unit", RB_FIELD_STR, items_unit, 0, 1),
    F("gbps", RB_FIELD_DOUBLE, gbps, 0, 1),
    F("gflops", RB_FIELD_DOUBLE, gflops, 0, 1),
    F("frac_bw", RB_FIELD_DOUBLE, frac_bw, 0, 1),
    F("frac_peak", RB_FIELD_DOUBLE, frac_peak, 0, 1),
    F("cpu_wait", RB_FIELD_DOUBLE, cpu_wait, 0, 1),
    F("kernel_variants", RB_FIELD_STR, kernel_variants, 0, 1),
    F("cell_key", RB_FIELD_STR, cell_key, 0, 1),
};
#undef F

const rb_field *rb_record_fields(size_t *count) {
    *count = sizeof fields / sizeof fields[0];
    return fields;
}

/* ---- small shared helpers ---- */

json_t *rb_json_real_or_null(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

void rb_utc_iso8601(char buf[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int rb_mkdir_p(const char *path) {
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp) return rb_error_set(RB_EIO, "mkdir: bad path '%s'", path);
    memcpy(tmp, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return rb_error_set(RB_EIO, "mkdir %s: %s", tmp, strerror(errno));
        tmp[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return rb_error_set(RB_EIO, "%s: not a directory", path);
    return RB_OK;
}

/* ---- records as JSON ---- */

json_t *rb_params_to_json(const rb_params *p) {
    json_t *o = json_object();
    if (!o || !p) return o;
    for (size_t i = 0; i < p->count; i++) {
        const rb_param_def *d = &p->defs[i];
        json_t *v;
        switch (d->type) {
        case RB_PT_INT: /* fractional only where the table allows it (RB_PARAM_INT_FRAC) */
            v = p->num[i] == floor(p->num[i]) ? json_integer((json_int_t) p->num[i])
                                              : rb_json_real_or_null(p->num[i]);
            break;
        case RB_PT_FLOAT:
            v = rb_json_real_or_null(p->num[i]);
            break;
        case RB_PT_BOOL:
            v = json_boolean(p->num[i] != 0);
            break;
        default:
            v = json_string(p->text[i]);
            break;
        }
        if (json_object_set_new(o, d->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

json_t *rb_record_to_json(const rb_record *r) {
    json_t *o = json_object();
    if (!o) return NULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const rb_field *f = &fields[i];
        const char *at = (const char *) r + f->offset;
        json_t *v = NULL;
        /* Fields are read through memcpy: the table gives only an offset and a type. */
        switch (f->type) {
        case RB_FIELD_STR: {
            const char *s;
            memcpy(&s, at, sizeof s);
            v = str_or_null(s);
            break;
        }
        case RB_FIELD_INT: {
            int x;
            memcpy(&x, at, sizeof x);
            v = json_integer(x);
            break;
        }
        case RB_FIELD_SIZE: {
            size_t x;
            memcpy(&x, at, sizeof x);
            v = json_integer((json_int_t) x);
            break;
        }
        case RB_FIELD_DOUBLE: {
            double x;
            memcpy(&x, at, sizeof x);
            v = rb_json_real_or_null(x);
            break;
        }
        case RB_FIELD_PARAMS: {
            const rb_params *p;
            memcpy(&p, at, sizeof p);
            v = rb_params_to_json(p);
            break;
        }
        case RB_FIELD_U64: {
            uint64_t s;
            memcpy(&s, at, sizeof s);
            if (s <= (uint64_t) INT64_MAX) {
                v = json_integer((json_int_t) s);
            } else {
                char buf[24];
                snprintf(buf, sizeof buf, "%" PRIu64, s);
                v = json_string(buf);
            }
            break;
        }
        case RB_FIELD_SAMPLES:
            if (!r->samples) {
                v = json_null();
                break;
            }
            v = json_array();
            for (size_t k = 0; v && k < r->nsamples; k++)
                json_array_append_new(v, rb_json_real_or_null(r->samples[k]));
            break;
        }
        if (!v || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

const char *rb_row_str(const json_t *row, const char *name) {
    return json_string_value(json_object_get(row, name));
}

double rb_row_double(const json_t *row, const char *name) {
    json_t *v = json_object_get(row, name);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

long long rb_row_int(const json_t *row, const char *name, long long dflt) {
    json_t *v = json_object_get(row, name);
    return json_is_integer(v) ? (long long) json_integer_value(v) : dflt;
}

int rb_row_u64(const json_t *row, const char *name, uint64_t *out) {
    json_t *v = json_object_get(row, name);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t) json_integer_value(v);
        return RB_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (!errno && end != s && !*end && s[0] != '-') {
            *out = u;
            return RB_OK;
        }
    }
    return rb_error_set(RB_EFORMAT, "field '%s' is not an unsigned 64-bit integer", name);
}

int rb_row_is_latency(const json_t *row) {
    json_t *s = json_object_get(row, "samples");
    return json_is_array(s) && json_array_size(s) > 0;
}

char *rb_row_key(const json_t *row) {
    json_t *k = json_object();
    if (!k) return NULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!fields[i].key) continue;
        json_t *v = json_object_get(row, fields[i].name);
        json_object_set(k, fields[i].name, v ? v : json_null());
    }
    char *s = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(k);
    return s;
}

/* ---- results.jsonl ---- */

struct rb_results {
    FILE *f;
    char path[4096];
};

static int write_line(rb_results *res, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s) return rb_error_set(RB_ENOMEM, "%s: cannot serialize a line", res->path);
    int bad = fputs(s, res->f) < 0 || fputc('\n', res->f) == EOF;
    free(s);
    if (bad) return rb_error_set(RB_EIO, "%s: write failed: %s", res->path, strerror(errno));
    return RB_OK;
}

/* Cuts a torn last line (bytes after the last newline) off an existing file, so that appended
 * lines start on a line of their own. */
static int cut_torn_tail(FILE *f, const char *path) {
    if (fseek(f, 0, SEEK_END) != 0) return rb_error_set(RB_EIO, "%s: seek failed", path);
    long size = ftell(f);
    long keep = size;
    while (keep > 0) {
        if (fseek(f, keep - 1, SEEK_SET) != 0) return rb_error_set(RB_EIO, "%s: seek", path);
        int c = fgetc(f);
        if (c == '\n') break;
        keep--;
    }
    if (keep < size) {
        fprintf(stderr,
                "warning: %s: removing a torn last line (%ld bytes) left by an interrupted run\n",
                path, size - keep);
        if (ftruncate(fileno(f), keep) != 0)
            return rb_error_set(RB_EIO, "%s: truncate failed: %s", path, strerror(errno));
    }
    return fseek(f, 0, SEEK_END) == 0 ? RB_OK : rb_error_set(RB_EIO, "%s: seek failed", path);
}

int rb_results_open(const char *dir, rb_results **out) {
    *out = NULL;
    int rc = rb_mkdir_p(dir);
    if (rc) return rc;
    rb_results *res = calloc(1, sizeof *res);
    if (!res) return rb_error_set(RB_ENOMEM, "results: out of memory");
    snprintf(res->path, sizeof res->path, "%s/results.jsonl", dir);
    /* "a+" creates the file; reads are needed to find a torn tail, and appends always go to
     * the end whatever the read position. */
    res->f = fopen(res->path, "a+");
    if (!res->f) {
        rc = rb_error_set(RB_EIO, "%s: %s", res->path, strerror(errno));
        free(res);
        return rc;
    }
    rc = cut_torn_tail(res->f, res->path);
    if (!rc) {
        char now[32];
        rb_utc_iso8601(now);
        json_t *m = json_pack("{s:s}", "opened", now);
        rc = m ? write_line(res, m) : rb_error_set(RB_ENOMEM, "results: out of memory");
        json_decref(m);
    }
    if (!rc && fflush(res->f) != 0) rc = rb_error_set(RB_EIO, "%s: flush failed", res->path);
    if (rc) {
        rb_results_close(res);
        return rc;
    }
    *out = res;
    return RB_OK;
}

int rb_results_write(rb_results *res, const rb_record *r) {
    if (!r->cell_key || !r->metric)
        return rb_error_set(RB_EINVAL, "results: a record needs a cell_key and a metric");
    json_t *o = rb_record_to_json(r);
    if (!o) return rb_error_set(RB_ENOMEM, "results: cannot build the record");
    int rc = write_line(res, o);
    json_decref(o);
    return rc;
}

/* A marker line, flushed and synced: the cell's fate is on disk before the next cell starts. */
static int write_marker(rb_results *res, json_t *m) {
    if (!m) return rb_error_set(RB_ENOMEM, "results: out of memory");
    int rc = write_line(res, m);
    json_decref(m);
    if (rc) return rc;
    if (fflush(res->f) != 0 || fsync(fileno(res->f)) != 0)
        return rb_error_set(RB_EIO, "%s: flush failed: %s", res->path, strerror(errno));
    return RB_OK;
}

int rb_results_end_cell(rb_results *res, const char *cell_key) {
    return write_marker(res, json_pack("{s:s}", "cell_done", cell_key));
}

int rb_results_fail_cell(rb_results *res, const char *cell_key, const char *error) {
    return write_marker(res, json_pack("{s:s,s:s}", "cell_failed", cell_key, "error", error));
}

void rb_results_close(rb_results *res) {
    if (!res) return;
    if (res->f) {
        fflush(res->f);
        fsync(fileno(res->f));
        fclose(res->f);
    }
    free(res);
}

/* Text with no control character: what the config admits for names and labels. */
static int plain_text(const char *s) {
    return rb_text_control_at(s) < 0;
}

/* A params object whose string values are all plain text. */
static int plain_params(const json_t *v) {
    const char *k;
    json_t *x;
    json_object_foreach((json_t *) v, k, x) {
        if (!plain_text(k) || (json_is_string(x) && !plain_text(json_string_value(x)))) return 0;
    }
    return 1;
}

/* The first field of a record whose JSON type is not the one its table entry writes, and that
 * type's name; NULL when every field fits. Absent and null fields pass: runs from before a field
 * existed lack it, and non-finite numbers are written as null. Every reader (report, compare,
 * --resume, the expectations) then refuses a hand-edited or corrupted record at its line
 * instead of reading a string as a missing value. Text must be plain (no line break, tab or
 * escape, which the config refuses too): the report and compare print it into tables and onto
 * the terminal. */
static const char *field_problem(const json_t *o, const char **type) {
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const rb_field *f = &fields[i];
        json_t *v = json_object_get(o, f->name), *x;
        if (!v || json_is_null(v)) continue;
        int ok = 1;
        uint64_t u;
        size_t k;
        switch (f->type) {
        case RB_FIELD_STR:
            *type = json_is_string(v) ? "text without control characters" : "a string";
            ok = json_is_string(v) && plain_text(json_string_value(v));
            break;
        case RB_FIELD_INT:
            *type = "an integer";
            ok = json_is_integer(v);
            break;
        case RB_FIELD_SIZE:
            *type = "a non-negative integer";
            ok = json_is_integer(v) && json_integer_value(v) >= 0;
            break;
        case RB_FIELD_U64:
            *type = "an unsigned 64-bit integer (a number or its decimal text)";
            ok = rb_row_u64(o, f->name, &u) == RB_OK;
            break;
        case RB_FIELD_DOUBLE:
            *type = "a number";
            ok = json_is_number(v);
            break;
        case RB_FIELD_PARAMS:
            *type =
                json_is_object(v) ? "an object of text without control characters" : "an object";
            ok = json_is_object(v) && plain_params(v);
            break;
        case RB_FIELD_SAMPLES:
            *type = "an array of numbers";
            ok = json_is_array(v);
            json_array_foreach(v, k, x) ok = ok && (json_is_number(x) || json_is_null(x));
            break;
        }
        if (!ok) return f->name;
    }
    return NULL;
}

/* Reads every line into cells: key -> array of rows (insertion order = first completion; a cell
 * completed again replaces its rows), and, when failed_out is given, failed: key -> error text of
 * the cells whose last marker is a cell_failed. */
static int read_cells(const char *path, json_t **cells_out, json_t **failed_out) {
    *cells_out = NULL;
    if (failed_out) *failed_out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return rb_error_set(RB_EIO, "%s: %s", path, strerror(errno));
    json_t *cells = json_object(), *pending = json_array(), *failed = json_object();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = RB_OK;
    if (!cells || !pending || !failed) {
        rc = rb_error_set(RB_ENOMEM, "results: out of memory");
        goto done;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') {
            /* No newline: the writer was killed inside this line. A marker is only trusted
             * once its newline is on disk, so the line is dropped whatever it contains. */
            fprintf(stderr, "warning: %s:%ld: dropping a torn last line (interrupted run)\n", path,
                    lineno);
            break;
        }
        json_error_t err;
        json_t *o = json_loadb(line, (size_t) len, 0, &err);
        if (!o) {
            rc = rb_error_set(RB_EFORMAT, "%s:%ld: invalid JSON: %s", path, lineno, err.text);
            goto done;
        }
        if (!json_is_object(o)) {
            json_decref(o);
            rc = rb_error_set(RB_EFORMAT, "%s:%ld: expected a JSON object", path, lineno);
            goto done;
        }
        json_t *done_key = json_object_get(o, "cell_done");
        json_t *failed_key = json_object_get(o, "cell_failed");
        if (done_key || failed_key || json_object_get(o, "opened")) {
            const char *bad = done_key && !json_is_string(done_key)       ? "cell_done"
                              : failed_key && !json_is_string(failed_key) ? "cell_failed"
                              : failed_key && !json_is_string(json_object_get(o, "error")) ? "error"
                                                                                           : NULL;
            if (bad) {
                json_decref(o);
                rc = rb_error_set(RB_EFORMAT, "%s:%ld: \"%s\" must be a string", path, lineno, bad);
                goto done;
            }
            if (done_key) {
                const char *key = json_string_value(done_key);
                json_t *rows = json_array();
                size_t i;
                json_t *r;
                json_array_foreach(pending, i, r) {
                    if (!strcmp(rb_row_str(r, "cell_key"), key)) json_array_append(rows, r);
                }
                json_object_set_new(cells, key, rows);
                json_object_del(failed, key);
            }
            /* A failed cell's rows (those written before it failed) go with pending. A cell
             * done before keeps its rows and counts as done: a failure replaces no result. */
            if (failed_key && !json_object_get(cells, json_string_value(failed_key)))
                json_object_set(failed, json_string_value(failed_key), json_object_get(o, "error"));
            json_array_clear(pending);
            json_decref(o);
            continue;
        }
        if (!json_is_string(json_object_get(o, "metric")) ||
            !json_is_string(json_object_get(o, "cell_key"))) {
            json_decref(o);
            rc = rb_error_set(RB_EFORMAT,
                              "%s:%ld: a record needs string fields \"metric\" and \"cell_key\"",
                              path, lineno);
            goto done;
        }
        const char *type, *bad = field_problem(o, &type);
        if (bad) {
            json_decref(o);
            rc = rb_error_set(RB_EFORMAT, "%s:%ld: field \"%s\" must be %s or null", path, lineno,
                              bad, type);
            goto done;
        }
        json_array_append_new(pending, o);
    }
    if (ferror(f)) rc = rb_error_set(RB_EIO, "%s: read error", path);
done:
    free(line);
    fclose(f);
    json_decref(pending);
    if (rc) {
        json_decref(cells);
        json_decref(failed);
        return rc;
    }
    *cells_out = cells;
    if (failed_out)
        *failed_out = failed;
    else
        json_decref(failed);
    return RB_OK;
}

int rb_results_read(const char *path, json_t **rows) {
    *rows = NULL;
    json_t *cells;
    int rc = read_cells(path, &cells, NULL);
    if (rc) return rc;
    json_t *all = json_array();
    const char *key;
    json_t *cell;
    json_object_foreach(cells, key, cell) {
        json_array_extend(all, cell);
    }
    json_decref(cells);
    *rows = all;
    return RB_OK;
}

/* The cells of dir/results.jsonl as a set (key -> true), and the failed ones (key -> error). */
static int cell_sets(const char *dir, json_t **done, json_t **failed) {
    *done = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    if (access(path, F_OK) != 0) {
        *done = json_object();
        if (failed) *failed = json_object();
        return *done && (!failed || *failed) ? RB_OK
                                             : rb_error_set(RB_ENOMEM, "results: out of memory");
    }
    json_t *cells;
    int rc = read_cells(path, &cells, failed);
    if (rc) return rc;
    json_t *set = json_object();
    const char *key;
    json_t *cell;
    json_object_foreach(cells, key, cell) {
        json_object_set_new(set, key, json_true());
    }
    json_decref(cells);
    *done = set;
    return RB_OK;
}

int rb_results_done_cells(const char *dir, json_t **done) {
    return cell_sets(dir, done, NULL);
}

int rb_results_failed_cells(const char *dir, json_t **failed) {
    json_t *done;
    int rc = cell_sets(dir, &done, failed);
    json_decref(done);
    return rc;
}

/* ---- results.csv ---- */

void rb_csv_field(FILE *f, const char *s) {
    if (!s) return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void rb_json_scalar_text(const json_t *v, char *buf, size_t size) {
    buf[0] = '\0';
    if (json_is_string(v))
        snprintf(buf, size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long) json_integer_value(v));
    else if (json_is_real(v))
        rb_fmt_double(buf, size, json_real_value(v));
    else if (json_is_true(v))
        snprintf(buf, size, "true");
    else if (json_is_false(v))
        snprintf(buf, size, "false");
}

int rb_results_write_csv(const char *path, json_t *rows) {
    FILE *f = fopen(path, "w");
    if (!f) return rb_error_set(RB_EIO, "%s: %s", path, strerror(errno));
    size_t nf = sizeof fields / sizeof fields[0];
    int first = 1;
    for (size_t i = 0; i < nf; i++) {
        if (!fields[i].csv) continue;
        if (!first) fputc(',', f);
        rb_csv_field(f, fields[i].name);
        first = 0;
    }
    fputs("\r\n", f);
    size_t r;
    json_t *row;
    json_array_foreach(rows, r, row) {
        first = 1;
        for (size_t i = 0; i < nf; i++) {
            if (!fields[i].csv) continue;
            if (!first) fputc(',', f);
            first = 0;
            json_t *v = json_object_get(row, fields[i].name);
            char buf[4096];
            if (json_is_object(v)) {
                /* params flattened as k=v;k=v in the object's (table) order. */
                size_t used = 0;
                buf[0] = '\0';
                const char *k;
                json_t *pv;
                json_object_foreach(v, k, pv) {
                    char t[256];
                    rb_json_scalar_text(pv, t, sizeof t);
                    int n =
                        snprintf(buf + used, sizeof buf - used, "%s%s=%s", used ? ";" : "", k, t);
                    if (n < 0 || (size_t) n >= sizeof buf - used) break;
                    used += (size_t) n;
                }
            } else {
                rb_json_scalar_text(v, buf, sizeof buf);
            }
            rb_csv_field(f, buf);
        }
        fputs("\r\n", f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return rb_error_set(RB_EIO, "%s: write failed", path);
    return RB_OK;
}
