/* report.md from a results directory: provenance, accuracy tables per family and dataset,
 * expectation outcomes, latency, and gnuplot plots (CSV + .gp rendered to PNG and SVG). */
#ifndef RB_REPORT_H
#define RB_REPORT_H

/* Inputs in results_dir:
 *   context.json   (required; harness/context.h). Plots come from run.config.plots: a list of
 *                  {x, y, series, title, dataset, method, logx, logy} (rb_plot's fields; x and
 *                  series name a param or dparam, or "method", "label", "dataset", "backend";
 *                  series defaults to "label"; dataset/method are filters, method matching the
 *                  row's method or label; logx/logy are booleans).
 *   results.jsonl  (required; harness/record.h; rows of completed cells only)
 *   expect.jsonl   (optional) the runner's grading of the config's expect: entries, one JSON
 *                  object per line, in config order. The contract with the runner:
 *     {"method": "turboquant_mse" | null,  "label": "tq-2bit" | null,   (null = any)
 *      "dataset": "sphere128" | null,      "backend": "cpu" | null,
 *      "params": {"bits": 2},              the subset the claim names (typed or strings)
 *      "metric": "vnmse",
 *      "op": "~=" | "<=" | ">=" | "<" | ">",
 *      "value": 0.1163 | null,             measured (mean over matching rows); null if MISSING
 *      "target": 0.1160, "rtol": 0.02, "atol": 0,   (rtol/atol used by "~=")
 *      "n": 3,                             optional: matching rows behind value
 *      "status": "PASS" | "FAIL" | "MISSING",
 *      "source": "arXiv:2504.19874 Theorem 1"}
 *     A line that is not such an object (missing metric/status/source, unknown status) is
 *     RB_EFORMAT "FILE:LINE: message".
 *
 * Outputs in report_dir (created with its parents; may equal results_dir): report.md,
 * results.csv, and for plot i: plot_<i>.csv (series,x,y,stderr), plot_<i>.gp (self-contained:
 * the data are inline datablocks) and, rendered by `gnuplot plot_<i>.gp` run in report_dir,
 * plot_<i>.png and plot_<i>.svg. The gnuplot executable is $RB_GNUPLOT, else "gnuplot".
 *
 * Returns 0; RB_EIO / RB_EFORMAT (detail names the file, and the line for JSONL) when an input is
 * missing or malformed, and then nothing is written. Plots are the one soft failure: when gnuplot
 * is missing (RB_ENOTSUP) or exits non-zero (RB_ELIB, its output kept in plot_<i>.log),
 * report.md is still written completely, says in place of each image why it is missing, and the
 * code is returned last so that `rotabench report` exits 2 while `rotabench run` may treat it as
 * a warning. */
int rb_report_write(const char *results_dir, const char *report_dir);

#endif
