/* The runner: a config in, results.jsonl + context.json + expect.jsonl + a report out. */
#ifndef RB_RUNNER_H
#define RB_RUNNER_H

typedef struct rb_run_opts {
    const char *config;  /* path to the YAML */
    const char *out_dir; /* NULL: results/<run-id>/ and reports/<run-id>/; else both in out_dir */
    int resume;          /* skip cells complete in out_dir (requires out_dir) */
    const char *backend; /* NULL: the config's backends; else cpu|cuda|auto for every cell */
    int threads;         /* kernel threads; 0: one per physical core */
    int quick;           /* skip the latency pass */
    const char *only;    /* NULL, or a glob on the cell's label, method or key */
    int argc;            /* the command line, for context.json */
    char **argv;
} rb_run_opts;

/* Runs the sweep. Returns the process exit status: 0 every cell ran and every expectation
 * passed, 1 an expectation failed, 2 a config or runtime error (or an interrupt) — with the
 * message already printed on stderr. Finished cells are never lost: each is flushed to disk
 * before the next starts, and an interrupted run can continue with --resume. */
int rb_run(const rb_run_opts *opts);

#endif
