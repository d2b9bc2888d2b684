/* Result records: one row per (cell, metric), written as JSON lines (appended and flushed as each
 * cell finishes), CSV and Markdown from one field table, and read back for resume, report and
 * compare. */
#ifndef RB_RECORD_H
#define RB_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/kernels.h"

typedef struct rb_record {
    const char *dataset;      /* config name of the dataset entry */
    const char *dataset_hash; /* content hash of the data the cell used */
    const rb_params *dparams; /* dataset parameters (all values) */
    const char *family;       /* method family: "codec", "layer", "adapter", "sparse" */
    const char *method;       /* registry name */
    const char *label;        /* config label (defaults to the method name) */
    int method_version;
    const rb_params *params; /* method parameters (all values) */
    const char *backend;     /* "cpu" or "cuda" */
    uint64_t seed;           /* the method seed of the cell */
    int repeat;
    const char
        *metric;       /* accuracy metric name, or for latency rows OP_latency ("encode_latency") */
    const char *slice; /* NULL (null in JSON): pooled; else the part of the data the value
                        * describes, e.g. "layer=0,head=3" (KV NAME/head metrics) */
    double value;      /* latency rows: the median seconds per call */
    const char *unit;  /* "", "bits", "s", "vectors/s", ... */
    size_t n;          /* sample size behind value (vectors, queries, repetitions) */
    double stderr_;    /* standard error of value, NaN when not defined */
    const double *samples; /* raw samples (latency: seconds per call), or NULL */
    size_t nsamples;
    /* Latency rows: items processed per second at the median (NaN otherwise), and what one item
     * is: "vectors" (codec encode/decode), "tokens" (KV data: one position's K and V in every
     * head and layer) or "scores" (inner_product: one query-key inner product); NULL otherwise. */
    double items_per_s;
    const char *items_unit;
    double gbps, gflops;       /* latency rows: achieved rates at the median, NaN otherwise */
    double frac_bw, frac_peak; /* the same as fractions of the measured limits, NaN otherwise */
    /* Latency rows: the fraction of the time the process's threads wanted a CPU while the row was
     * measured that they waited for one (harness/cpu_wait.h): a busy machine, not slow code.
     * NaN otherwise or where the OS does not say. */
    double cpu_wait;
    const char *kernel_variants; /* "fwht_f32=avx512,..." as recorded by rb_kernel_trace */
    const char *cell_key;        /* required: rb_cell.key; ties the row to its done marker */
} rb_record;

/* The field table drives every writer: the order of columns, their names, which fields form the
 * row's identity for compare (key) and which appear in CSV/Markdown.
 *
 * Key fields: dataset, dparams, family, method, label, params, backend, metric, slice (a row
 * without the field, as written before slices existed, reads as null = pooled). `repeat` and
 * `seed` are deliberately not key fields: rows that differ only in the repeat are independent
 * samples of the same quantity, and compare/report pool them (report: mean of the repeats). */
typedef enum rb_field_type {
    RB_FIELD_STR,
    RB_FIELD_INT,
    RB_FIELD_U64,
    RB_FIELD_SIZE,
    RB_FIELD_DOUBLE,
    RB_FIELD_PARAMS,
    RB_FIELD_SAMPLES
} rb_field_type;

typedef struct rb_field {
    const char *name;
    rb_field_type type;
    size_t offset; /* offsetof(rb_record, ...) */
    int key;       /* part of the identity used to match rows in compare */
    int csv;       /* written to results.csv */
} rb_field;

const rb_field *rb_record_fields(size_t *count);

/* One record as a JSON object (the JSONL line), every field of the table present, in table order:
 * - params/dparams: objects in table order with typed values (INT -> integer, FLOAT -> real,
 *   BOOL -> true/false, ENUM/STRING -> string); a NULL rb_params is written as {}.
 * - doubles: NaN or +-Inf are written as null (read back as NaN by rb_row_double).
 * - seed: a JSON integer when it is <= INT64_MAX, otherwise its decimal digits as a string
 *   (jansson's integers are signed 64-bit); rb_row_u64 reads both forms.
 * - NULL strings and NULL samples are written as null.
 * The parsed object is what report and compare use (fields by name, with the rb_row_* helpers). */
json_t *rb_record_to_json(const rb_record *r);
json_t *rb_params_to_json(const rb_params *p); /* the typed object described above */
json_t *rb_json_real_or_null(double v);        /* null for NaN/Inf */

/* Field access on parsed rows. Missing or null fields read as NULL / NaN / the default. */
const char *rb_row_str(const json_t *row, const char *name);
double rb_row_double(const json_t *row, const char *name);
long long rb_row_int(const json_t *row, const char *name, long long dflt);
int rb_row_u64(const json_t *row, const char *name, uint64_t *out); /* 0, or RB_EFORMAT */
/* A latency row is one with raw samples (a non-empty "samples" array); others are accuracy rows. */
int rb_row_is_latency(const json_t *row);
/* The row's identity for compare: the key fields as compact JSON with sorted keys (malloc'd). */
char *rb_row_key(const json_t *row);

/* results.jsonl: open for appending (creating the directory and its parents), write one record
 * per line and flush + fsync at cell boundaries so an interrupted run keeps every finished cell.
 *
 * File format, one JSON object per line (the writer's lines, in order):
 *   {"opened": "2025-06-01T12:00:00Z"}  session marker, written by every rb_results_open
 *   {"dataset": ..., "metric": ..., ...} a record (rb_record_to_json)
 *   {"cell_done": "<cell key>"}          written by rb_results_end_cell, then fflush + fsync
 *   {"cell_failed": "<cell key>", "error": "..."}   rb_results_fail_cell, flushed the same way
 * A cell's rows are the record lines between the previous marker (any kind) and its
 * cell_done marker whose cell_key equals the marker's key. Rows with no such marker (a cell cut
 * off by a kill, or whose session ended) are not part of the results: the reader drops them, and
 * a resumed run (which opens a new session) writes the cell again, so duplicates never appear.
 * If a cell is done twice (a run appended to a directory without --resume), the later rows
 * replace the earlier ones. rb_results_open also cuts off a torn last line (no final newline)
 * left by a kill, so the next line starts cleanly. */
typedef struct rb_results rb_results;
int rb_results_open(const char *dir, rb_results **out);
/* RB_EINVAL when r->cell_key or r->metric is NULL. */
int rb_results_write(rb_results *res, const rb_record *r);
int rb_results_end_cell(rb_results *res, const char *cell_key); /* flushes; marks the cell done */
/* Marks a cell failed, flushed like cell_done: {"cell_failed": "<cell key>", "error": "..."}.
 * The rows the cell wrote before it failed are not part of the results (no cell_done follows
 * them), and the cell is not done, so --resume runs it again; rb_results_failed_cells lists it
 * until a later cell_done for its key. */
int rb_results_fail_cell(rb_results *res, const char *cell_key, const char *error);
void rb_results_close(rb_results *res);

/* Reads a results.jsonl into a JSON array of the rows of completed cells (in the order the cells
 * completed). A last line without its newline (a run killed while writing) is dropped with a
 * warning on stderr; any other malformed line (not JSON, not an object, a record without a string
 * "metric" and "cell_key", a marker of the wrong type) is RB_EFORMAT "FILE:LINE: message". */
int rb_results_read(const char *path, json_t **rows);
/* The set of cell keys completed in a results directory (for --resume), as a JSON object used as
 * a set (keys -> true). A directory without results.jsonl gives an empty set. */
int rb_results_done_cells(const char *dir, json_t **done);
/* The cells of a results directory whose last word is a failure (and that were never done), as a
 * JSON object: key -> the error message (string), in the order they first failed. */
int rb_results_failed_cells(const char *dir, json_t **failed);

/* results.csv from the JSON rows, columns from the field table's csv flag (samples omitted).
 * RFC 4180: fields containing a comma, quote, CR or LF are quoted, quotes doubled; lines end with
 * CRLF. params/dparams are flattened as "k=v;k=v"; null values are empty fields. */
int rb_results_write_csv(const char *path, json_t *rows);
/* One RFC 4180 CSV field (quoted when it holds a comma, quote or line break). */
void rb_csv_field(FILE *f, const char *s);

/* Shared helpers for the writers. */
int rb_mkdir_p(const char *path); /* mkdir -p; RB_EIO naming the path */
/* "2025-06-01T12:00:00Z" for the current time. */
void rb_utc_iso8601(char buf[32]);
/* A scalar JSON value as text: strings raw, integers, reals via rb_fmt_double, true/false; ""
 * for null and for arrays/objects. */
void rb_json_scalar_text(const json_t *v, char *buf, size_t size);

#endif
