/* `rotabench report RUNDIR [--out DIR]`: regenerate report.md and plots from saved results. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/harness.h"
#include "harness/report.h"
#include "kernels/kernels.h"

static void usage(FILE *f) {
    fputs("usage: rotabench report RUNDIR [--out DIR]\n"
          "\n"
          "Writes report.md (provenance, accuracy tables, expectations, latency, plots),\n"
          "results.csv and plot_<i>.{csv,gp,png,svg} from RUNDIR/context.json,\n"
          "RUNDIR/results.jsonl and the optional RUNDIR/expect.jsonl.\n"
          "\n"
          "  --out DIR   write the report into DIR instead of RUNDIR\n"
          "  -h, --help  this text\n"
          "\n"
          "Plots are rendered with gnuplot ($RB_GNUPLOT, else gnuplot on the PATH).\n"
          "Exit status: 0 report written; 2 missing or malformed input, or the plots could not\n"
          "be rendered (report.md is then still written and says why).\n",
          f);
}

int rb_cmd_report(int argc, char **argv) {
    const char *rundir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "-o")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "rotabench report: %s needs a directory\n", argv[i]);
                return 2;
            }
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "rotabench report: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!rundir) {
            rundir = argv[i];
        } else {
            fprintf(stderr, "rotabench report: more than one RUNDIR ('%s', '%s')\n", rundir,
                    argv[i]);
            return 2;
        }
    }
    if (!rundir) {
        fprintf(stderr, "rotabench report: missing RUNDIR\n");
        usage(stderr);
        return 2;
    }
    if (!out) out = rundir;
    struct stat st;
    int missing = stat(rundir, &st) != 0;
    if (missing || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "rotabench report: %s: %s\n", rundir,
                !missing          ? "not a directory"
                : errno == ENOENT ? "no such directory (RUNDIR is a run's output directory, the "
                                    "-o of rotabench run)"
                                  : strerror(errno));
        return 2;
    }
    int rc = rb_report_write(rundir, out);
    if (rc == RB_ENOTSUP || rc == RB_ELIB) {
        fprintf(stderr, "rotabench report: %s\n", rb_error_detail());
        fprintf(stderr, "rotabench report: %s/report.md written without its plots\n", out);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "rotabench report: %s (%s)\n", rb_error_detail(), rb_strerror(rc));
        return 2;
    }
    printf("%s/report.md\n", out);
    return 0;
}
