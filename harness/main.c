/* rotabench: the command-line entry point; a table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "harness/harness.h"
#include "kernels/kernels.h"

/* In the order `rotabench --help` lists them: the everyday commands first. */
static const struct {
    const char *name;
    rb_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"run", rb_cmd_run, "run a config: sweep, results, expectations, report"},
    {"report", rb_cmd_report, "write report.md and plots from a results directory"},
    {"compare", rb_cmd_compare, "compare two results directories (exit 1 on a regression)"},
    {"list", rb_cmd_list, "list methods, datasets, metrics and kernel ops with their parameters"},
    {"hw", rb_cmd_hw, "detected hardware and measured machine limits"},
    {"bench", rb_cmd_bench, "kernel benchmarks with the machine's measured limits"},
    {"apply", rb_cmd_apply,
     "apply one kernel op (fwht, hadamard, rht, quantize, ...) to a .npy file"},
    {"codebook", rb_cmd_codebook, "print a Lloyd-Max codebook as JSON"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: rotabench <command> [options]   (rotabench <command> --help)\n\ncommands:\n");
    for (size_t i = 0; commands[i].name; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  --version  print the version and git revision\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("%s\n", rb_version_string());
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; commands[i].name; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "rotabench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
