/* The run's context.json: how the numbers were produced (build, host, GPU, run), written next to
 * results.jsonl so a report or a comparison can state and check its provenance. */
#ifndef RB_CONTEXT_H
#define RB_CONTEXT_H

#include <jansson.h>
#include <stddef.h>

/* Builds the context object:
 *   build: {git_sha, dirty, compiler, flags, cuda_built, cuda_arch,
 *           libraries: {libyaml, hwloc, jansson, gsl, openblas, google_benchmark}}
 *   host:  {hostname, cpu_model, packages, cores, pus, numa_nodes,
 *           caches: {l1d, l2, l3: {size_bytes, count}}, features: [..], kernels (selection),
 *           threads, binding, limits (the caller's measured-limits object, or null)}
 *   gpu:   {devices: [{name, sm_count, cc, total_mem_bytes, driver_version, runtime_version}],
 *           reason: null, or why the list is empty}
 *   run:   {utc, argv: [..], config_path, config_sha256, config (config_json parsed; null when
 *           config_json is NULL), seeds (the caller's object, or null)}
 * seeds and limits are borrowed (the context takes its own reference). Returns NULL with
 * rb_error_detail() set (RB_EFORMAT) when config_json is not valid JSON. */
json_t *rb_context_build(int argc, char **argv, const char *config_path, const char *config_json,
                         const char *config_sha256, json_t *seeds, json_t *limits);

/* The build and host sections of rb_context_build alone, for the records that are not a run's
 * context (`rotabench bench --json`), so that every record describes the machine the same way.
 * limits is borrowed, as in rb_context_build. */
json_t *rb_context_build_section(void);
json_t *rb_context_host_section(json_t *limits);

/* Writes dir/context.json (indented, creating dir and its parents). */
int rb_context_write(const char *dir, json_t *ctx);

/* "<UTC yyyymmdd-hhmmss>-<config name>" for results/<run-id>/; characters of the name other than
 * [A-Za-z0-9._-] become '_'. */
void rb_run_id(const char *config_name, char *buf, size_t size);

#endif
