/* rotabench list: every registered method, dataset kind, metric and kernel op, with parameters. */
#include <stdio.h>
#include <string.h>

#include "datasets/dataset.h"
#include "harness/eval.h"
#include "harness/harness.h"
#include "methods/method.h"

static void print_params(const rb_param_def *defs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const rb_param_def *d = &defs[i];
        char range[160] = "";
        if (d->type == RB_PT_INT && d->choices)
            snprintf(range, sizeof range, "%s", d->choices);
        else if (d->type == RB_PT_INT && d->frac)
            snprintf(range, sizeof range, "%g..%g, fractional", d->min, d->max);
        else if (d->type == RB_PT_INT)
            snprintf(range, sizeof range, "%.0f..%.0f", d->min, d->max);
        else if (d->type == RB_PT_FLOAT)
            snprintf(range, sizeof range, "%g..%g", d->min, d->max);
        else if (d->type == RB_PT_ENUM)
            snprintf(range, sizeof range, "%s", d->choices);
        printf("      %-14s %-6s default %-8s %-22s %s\n", d->name, rb_ptype_name(d->type),
               d->def ? d->def : "(required)", range, d->doc);
    }
}

static void list_methods(void) {
    size_t n;
    const rb_method *const *m = rb_methods_all(&n);
    printf("methods (%zu):\n", n);
    for (size_t i = 0; i < n; i++) {
        printf("  %-16s %-8s %-18s v%d  %s\n", m[i]->name, rb_family_name(m[i]->family),
               m[i]->paper, m[i]->version, m[i]->summary);
        print_params(m[i]->params, m[i]->nparams);
    }
}

static void list_datasets(void) {
    size_t n;
    const rb_dataset_kind *const *k = rb_dataset_kinds_all(&n);
    printf("datasets (%zu):\n", n);
    for (size_t i = 0; i < n; i++) {
        printf("  %-16s %s\n", k[i]->name, k[i]->summary);
        print_params(k[i]->params, k[i]->nparams);
    }
}

static void list_metrics(void) {
    size_t n;
    const rb_metric *m = rb_metrics_all(&n);
    static const char *const better[] = {"lower", "higher", "exact"};
    printf("metrics (%zu):\n", n);
    for (size_t i = 0; i < n; i++)
        printf("  %-16s %-8s %-5s %-6s better  %s\n", m[i].name, rb_family_name(m[i].family),
               m[i].unit[0] ? m[i].unit : "-", better[m[i].better], m[i].doc);
}

static void list_kernels(void) {
    size_t n;
    const rb_op *const *ops = rb_ops_all(&n);
    printf("kernel ops (%zu; selection %s; * = this machine can run it):\n", n,
           rb_kernels_selection());
    for (size_t i = 0; i < n; i++) {
        printf("  %-20s", ops[i]->name);
        for (size_t v = 0; v < ops[i]->count; v++)
            printf(" %s%s", ops[i]->variants[v].name,
                   rb_variant_enabled(&ops[i]->variants[v]) ? "*" : "");
        printf("\n");
    }
    printf("RB_KERNELS (environment) selects the variants: " RB_KERNELS_NAMES
           "; bench and run refuse any other value\n");
}

int rb_cmd_list(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "all";
    if (argc > 2 || !strcmp(what, "--help") || !strcmp(what, "-h")) {
        if (argc > 2)
            fprintf(stderr, "rotabench list: one of methods, datasets, metrics or kernels, not "
                            "several\n");
        fprintf(argc > 2 ? stderr : stdout,
                "usage: rotabench list [methods|datasets|metrics|kernels]\n\n"
                "Every registered name with its family, paper, summary and parameters (type,\n"
                "default, range or choices).\n");
        return argc > 2 ? 2 : 0;
    }
    int all = !strcmp(what, "all"), shown = 0;
    if (all || !strcmp(what, "methods")) list_methods(), shown = 1;
    if (all || !strcmp(what, "datasets")) list_datasets(), shown = 1;
    if (all || !strcmp(what, "metrics")) list_metrics(), shown = 1;
    if (all || !strcmp(what, "kernels")) list_kernels(), shown = 1;
    if (!shown) {
        fprintf(stderr, "rotabench list: '%s' is not methods, datasets, metrics or kernels\n",
                what);
        return 2;
    }
    return 0;
}
