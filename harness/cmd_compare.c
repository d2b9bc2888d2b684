/* `rotabench compare BASE NEW [options]`: argument parsing around rb_compare. */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/compare.h"
#include "harness/harness.h"

static void compare_usage(FILE *f) {
    fprintf(f, "usage: rotabench compare BASE NEW [--rtol X] [--atol X] [--latency-threshold X]\n"
               "                                  [--alpha X] [--max-cpu-wait X] [--strict]\n"
               "                                  [--changes]\n"
               "\n"
               "Compares two results directories (context.json + results.jsonl) row by row.\n"
               "Deterministic metrics are graded against the tolerances; rows with raw samples\n"
               "(latency) by the U test and the threshold; timings and memory without samples\n"
               "are shown but not graded, as they differ between identical runs.\n"
               "Before the tables it lists what differs in the two context.json (CPU model,\n"
               "hostname, threads, kernel selection, compiler and flags, GPU; the git revision\n"
               "for information): timings change with those, not only with the code. A timing\n"
               "row whose kernel_variants differ says so (kernels differ: op=old -> new); the\n"
               "verdicts and exit status are the same, the summary line mentions both.\n"
               "  --rtol X               accuracy: relative tolerance (default 1e-6)\n"
               "  --atol X               accuracy: absolute tolerance (default 0)\n"
               "  --latency-threshold X  latency: relative change of the median that counts as\n"
               "                         a regression or improvement (default 0.1 = 10%%)\n"
               "  --alpha X              latency: significance level of the two-sided\n"
               "                         Mann-Whitney U test (default 0.01)\n"
               "  --max-cpu-wait X       latency: a row whose threads waited for a CPU more than\n"
               "                         this share of the time (cpu_wait, either run) was timed\n"
               "                         on a busy machine: shown as busy, not graded (default\n"
               "                         0.05; 1 grades every row)\n"
               "  --strict               exit 2 when latency rows are blind (too few samples for\n"
               "                         the U test to ever reach alpha: 2+2 samples give\n"
               "                         p >= 1/3) or busy: no change in them can be seen\n"
               "                         (default: a warning)\n"
               "  --changes              print only the rows that are not unchanged\n"
               "exit: 0 no regression, 1 regression, 2 could not compare (bad arguments, missing\n"
               "or malformed files, different config sha256, method versions or data\n"
               "(dataset_hash), unmatched rows; with --strict, blind or busy latency rows)\n");
}

/* Parses a finite number within [lo, hi] for option name; 0 on success. */
static int parse_num(const char *name, const char *s, double lo, double hi, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "rotabench compare: %s: '%s' is not a number in [%g, %g]\n", name, s, lo,
                hi);
        return -1;
    }
    *v = x;
    return 0;
}

int rb_cmd_compare(int argc, char **argv) {
    rb_compare_opts o = RB_COMPARE_OPTS_DEFAULT;
    const struct {
        const char *name;
        double *target;
        double lo, hi;
    } opts[] = {
        {"--rtol", &o.rtol, 0, HUGE_VAL},
        {"--atol", &o.atol, 0, HUGE_VAL},
        {"--latency-threshold", &o.latency_threshold, 0, HUGE_VAL},
        {"--alpha", &o.alpha, 0, 1},
        {"--max-cpu-wait", &o.max_cpu_wait, 0, 1},
    };
    const struct {
        const char *name;
        int *target;
    } flags[] = {{"--strict", &o.strict}, {"--changes", &o.changes_only}};
    const char *pos[2];
    size_t npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            compare_usage(stdout);
            return 0;
        }
        if (arg[0] == '-' && arg[1] == '-') {
            size_t f;
            for (f = 0; f < sizeof flags / sizeof flags[0]; f++)
                if (!strcmp(arg, flags[f].name)) break;
            if (f < sizeof flags / sizeof flags[0]) {
                *flags[f].target = 1;
                continue;
            }
            size_t k, nlen = strcspn(arg, "=");
            for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
                if (strlen(opts[k].name) == nlen && !strncmp(arg, opts[k].name, nlen)) break;
            if (k == sizeof opts / sizeof opts[0]) {
                fprintf(stderr, "rotabench compare: unknown option '%s'\n", arg);
                compare_usage(stderr);
                return 2;
            }
            const char *val = arg[nlen] == '=' ? arg + nlen + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val) {
                fprintf(stderr, "rotabench compare: %s needs a value\n", opts[k].name);
                return 2;
            }
            if (parse_num(opts[k].name, val, opts[k].lo, opts[k].hi, opts[k].target)) return 2;
            continue;
        }
        if (npos == 2) {
            fprintf(stderr, "rotabench compare: unexpected argument '%s'\n", arg);
            compare_usage(stderr);
            return 2;
        }
        pos[npos++] = arg;
    }
    if (npos != 2) {
        fprintf(stderr, "rotabench compare: needs two results directories, BASE and NEW\n");
        compare_usage(stderr);
        return 2;
    }
    return rb_compare(pos[0], pos[1], &o, stdout);
}
