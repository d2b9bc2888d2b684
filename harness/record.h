/* Result records: one row per (cell, metric), written as JSON lines (appended and flushed as each
 * cell finishes), CSV and Markdown from one field table, and read back for resume, report and
 * compare. Also the run's context.json. */
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
    const char *method;       /* registry name */
    const char *label;        /* config label (defaults to the method name) */
    int method_version;
    const rb_params *params; /* method parameters (all values) */
    const char *backend;     /* "cpu" or "cuda" */
    uint64_t seed;           /* the method seed of the cell */
    int repeat;
    const char *metric;
    double value;
    const char *unit;      /* "", "bits", "s", "vectors/s", ... */
    size_t n;              /* sample size behind value (vectors, queries, repetitions) */
    double stderr_;        /* standard error of value, NaN when not defined */
    const double *samples; /* raw samples (latency: seconds per call), or NULL */
    size_t nsamples;
    double gbps, gflops;         /* latency rows: achieved rates at the median, NaN otherwise */
    double frac_bw, frac_peak;   /* the same as fractions of the measured limits, NaN otherwise */
    const char *kernel_variants; /* "fwht_f32=avx512,..." as recorded by rb_kernel_trace */
    const char *cell_key;
} rb_record;

/* The field table drives every writer: the order of columns, their names, which fields form the
 * row's identity for compare (key) and which appear in CSV/Markdown. */
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

/* One record as a JSON object (the JSONL line), and back: the parsed object is what report and
 * compare use (fields by name). */
json_t *rb_record_to_json(const rb_record *r);

/* results.jsonl: open for appending (creating the directory), write one record per line and
 * flush + fsync at cell boundaries so an interrupted run keeps every finished cell. */
typedef struct rb_results rb_results;
int rb_results_open(const char *dir, rb_results **out);
int rb_results_write(rb_results *res, const rb_record *r);
int rb_results_end_cell(rb_results *res, const char *cell_key); /* flushes; marks the cell done */
void rb_results_close(rb_results *res);

/* Reads a results.jsonl into an array of JSON objects. A truncated last line (a run killed while
 * writing) is dropped with a warning; any other malformed line is an error naming file:line. */
int rb_results_read(const char *path, json_t **rows);
/* The set of cell keys completed in a results directory (for --resume), as a JSON object used as
 * a set (keys -> true). Cells are complete when their end-of-cell marker line was written. */
int rb_results_done_cells(const char *dir, json_t **done);

/* results.csv from the JSON rows, columns from the field table. */
int rb_results_write_csv(const char *path, json_t *rows);

#endif
