/* The runner: a config in, results.jsonl + context.json + expect.jsonl + a report out. */
#ifndef RB_RUNNER_H
#define RB_RUNNER_H

#include <stdio.h>

typedef struct rb_run_opts {
    const char *config;  /* path to the YAML */
    const char *out_dir; /* NULL: results/<run-id>/ and reports/<run-id>/; else both in out_dir */
    int resume;          /* skip cells complete in out_dir (requires out_dir) */
    const char *backend; /* NULL: the config's backends; else cpu|cuda|auto for every cell */
    int threads;         /* kernel threads; 0: one per physical core */
    int quick;           /* skip the latency pass */
    const char *only;    /* NULL, or a glob on the cell's label, method or key */
    int keep_going;      /* a failing cell is recorded and the run goes on (exit status 2) */
    int dry_run;         /* check and list the cells that would run; run and write nothing */
    /* stderr not a terminal (a CI log): a progress line as a cell starts, at most every this
     * many seconds; 0 before every cell, < 0 none (a terminal gets one line redrawn in place) */
    double progress_every;
    int argc; /* the command line, for context.json */
    char **argv;
} rb_run_opts;

/* Runs the sweep. Returns the process exit status: 0 every cell ran and every expectation
 * passed, 1 an expectation failed, 2 a config or runtime error (or an interrupt) — with the
 * message already printed on stderr. With dry_run: 0 when every cell that would run passes the
 * preflight (listed on stdout), else 2; nothing is run or written. Finished cells are never lost:
 * each is flushed to disk before the next starts, and an interrupted run can continue with
 * --resume. */
int rb_run(const rb_run_opts *opts);

struct rb_config;
struct rb_cell;
/* Writes to f one warning per (dataset entry, method entry) among the cells where a KV method
 * that transforms pre-RoPE keys (rb_kv_ops.keys_pre_rope: rotatekv) runs on a dataset kind with
 * a rope_base parameter (kv_npy, kv_safetensors) that the config left unset: 0 there means "none
 * or unknown", and the method then treats post-RoPE keys as pre-RoPE without a word. Writing
 * rope_base: 0 states that the keys have no RoPE applied and silences it. Returns the count.
 * rb_run calls it on stderr before the first cell. */
size_t rb_run_warn_rope(const struct rb_config *cfg, const struct rb_cell *cells, size_t ncells,
                        FILE *f);

#endif
