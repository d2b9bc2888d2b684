/* rotabench run: the command-line front of the runner. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/limits.h"
#include "kernels/dispatch.h"
#include "kernels/pool.h"
#include "harness/runner.h"

static const char usage_text[] =
    "usage: rotabench run CONFIG [-o DIR] [--resume] [--backend cpu|cuda|auto] [--threads N]\n"
    "                     [--quick] [--only GLOB] [-k|--keep-going] [-n|--dry-run]\n"
    "\n"
    "Runs every cell of CONFIG (datasets x methods x parameter sweeps x backends x repeats),\n"
    "appending results as each cell finishes, then grades the config's expect: entries and\n"
    "writes the report.\n"
    "\n"
    "  -o, --out DIR     write results and report into DIR, new or without a run in it\n"
    "                    (default: results/<run-id>/ and reports/<run-id>/, run-id = UTC\n"
    "                    time + config name)\n"
    "  --resume          continue the run in DIR: skip the cells already complete there\n"
    "                    (needs -o DIR)\n"
    "  --backend B       run every cell on B instead of the config's backends\n"
    "  --threads N       kernel threads (default: RB_THREADS if set, else one per physical core)\n"
    "  --quick           skip the latency pass\n"
    "  --only GLOB       run only cells whose label, method or cell key matches GLOB\n"
    "  -k, --keep-going  a cell that fails is recorded (error on stderr and in the report)\n"
    "                    and the run goes on with the next; the exit status is then 2\n"
    "                    (default: the first failing cell stops the run)\n"
    "  -n, --dry-run     check the config and every cell that would run (the preflight:\n"
    "                    data files' headers, parameters, metrics the data can give), list\n"
    "                    their keys and what the run would do; run and write nothing\n"
    "                    (exit 0 when all pass, 2 with every error found)\n"
    "\n"
    "environment: RB_THREADS (--threads when that is not given; 0: the default),\n"
    "RB_KERNELS (" RB_KERNELS_NAMES "),\n"
    "RB_PROGRESS_EVERY=S (stderr not a terminal, e.g. a CI log: a progress line at most\n"
    "every S seconds, as a cell starts; default 60, 0 before every cell, off for none)\n"
    "\n"
    "exit status: 0 all cells ran and every expectation passed; 1 an expectation failed;\n"
    "2 a config or runtime error, a failed cell, or an interrupt (finished cells are kept:\n"
    "rerun with --resume -o DIR to continue; it runs failed cells again).\n";

/* RB_PROGRESS_EVERY: seconds between a log's progress lines (unset: 60; "off": none). */
static int progress_env(double *every) {
    const char *e = getenv("RB_PROGRESS_EVERY");
    *every = 60;
    if (!e) return 0;
    if (!strcmp(e, "off")) {
        *every = -1;
        return 0;
    }
    char *end;
    double v = strtod(e, &end);
    if (!*e || *end || !(v >= 0 && v <= 1e9)) {
        fprintf(stderr,
                "rotabench run: RB_PROGRESS_EVERY='%s' must be a number of seconds >= 0, or "
                "off\n",
                e);
        return 1;
    }
    *every = v;
    return 0;
}

int rb_cmd_run(int argc, char **argv) {
    static const struct option longs[] = {
        {"out", required_argument, 0, 'o'},     {"resume", no_argument, 0, 'r'},
        {"backend", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"quick", no_argument, 0, 'q'},         {"only", required_argument, 0, 'g'},
        {"keep-going", no_argument, 0, 'k'},    {"dry-run", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    rb_run_opts o = {.argc = argc, .argv = argv};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:knh", longs, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'o':
            o.out_dir = optarg;
            break;
        case 'r':
            o.resume = 1;
            break;
        case 'b':
            if (strcmp(optarg, "cpu") && strcmp(optarg, "cuda") && strcmp(optarg, "auto")) {
                fprintf(stderr, "rotabench run: --backend '%s' is not cpu, cuda or auto\n", optarg);
                return 2;
            }
            o.backend = optarg;
            break;
        case 't': {
            /* 0 and too many get the same message, the range a user may give (leaving the
             * option out means the pool's default, one thread per physical core). */
            long t = strtol(optarg, &end, 10);
            if (!*optarg || *end || t < 1 || t > RB_THREADS_MAX) {
                fprintf(stderr, "rotabench run: --threads '%s' must be an integer in 1..%d\n",
                        optarg, RB_THREADS_MAX);
                return 2;
            }
            o.threads = (int) t;
            break;
        }
        case 'q':
            o.quick = 1;
            break;
        case 'g':
            o.only = optarg;
            break;
        case 'k':
            o.keep_going = 1;
            break;
        case 'n':
            o.dry_run = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr,
                    "rotabench run: unknown or incomplete option '%s' (rotabench run "
                    "--help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "rotabench run: give exactly one CONFIG (rotabench run --help)\n");
        return 2;
    }
    o.config = argv[optind];
    if (progress_env(&o.progress_every)) return 2;
    if (rb_kernels_env_check() || rb_threads_env_check()) {
        fprintf(stderr, "rotabench run: %s\n", rb_error_detail());
        return 2;
    }
    return rb_run(&o);
}
