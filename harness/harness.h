/* The harness's public header: the CLI commands and the services they share. */
#ifndef RB_HARNESS_H
#define RB_HARNESS_H

/* Version text: "rotabench <version> (git <sha>[-dirty], <compiler flags>)". */
const char *rb_version_string(void);
const char *rb_git_sha(void);
int rb_git_dirty(void);
/* The build's compiler flags line (RB_BUILD_FLAGS) and the nvcc -gencode list ("" without CUDA). */
const char *rb_build_flags(void);
const char *rb_cuda_arch(void);

/* A subcommand: argv[0] is the subcommand's name. Returns the process exit status. */
typedef int (*rb_cmd_fn)(int argc, char **argv);

/* `rotabench bench`: kernel benchmarks against the machine's measured limits (cmd_bench.c). */
int rb_cmd_bench(int argc, char **argv);
/* rotabench codebook: print one Lloyd-Max codebook as JSON (harness/cmd_codebook.c). */
int rb_cmd_codebook(int argc, char **argv);
int rb_cmd_apply(int argc, char **argv);
/* `rotabench compare BASE NEW`: diff two results directories (harness/cmd_compare.c). */
int rb_cmd_compare(int argc, char **argv);
/* `rotabench report RUNDIR [--out DIR]` (harness/cmd_report.c). */
int rb_cmd_report(int argc, char **argv);

/* `rotabench run CONFIG` (harness/cmd_run.c), `list` (cmd_list.c), `hw` (cmd_hw.c). */
int rb_cmd_run(int argc, char **argv);
int rb_cmd_list(int argc, char **argv);
int rb_cmd_hw(int argc, char **argv);

#endif
