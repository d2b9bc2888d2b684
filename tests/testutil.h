/* Shared helpers for the tests: fresh random inputs and comparisons. */
#ifndef RB_TESTUTIL_H
#define RB_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/dataset.h"

/* Fresh inputs: a new seed per call unless RB_TEST_SEED is set; the seed is printed on failure
 * by the tests that use rbt_seed(). */
uint64_t rbt_seed(void);
float *rbt_normal_f32(size_t n, uint64_t seed, uint64_t stream);
double *rbt_normal_f64(size_t n, uint64_t seed, uint64_t stream);
/* Largest |a - b| / max(1, |b|) over n elements. */
double rbt_max_relerr_f32(const float *a, const float *b, size_t n);

struct rb_rhtcodec;
/* The rhtcodec reference's first stages on row x (d = p->d floats): |x| (returned, in fp32) and
 * the rotated unit vector u whose codes the encode takes. For tests that set thresholds onto
 * the values themselves. */
float rbt_rhtcodec_rotate(const struct rb_rhtcodec *p, const float *x, float *u);

/* Runs `$RB_TEST_BIN args` through the shell (stdout into *out, stderr into *err, both
 * malloc'd) and returns the exit status; skips the test when RB_TEST_BIN is unset. */
int rbt_run_cli(const char *args, char **out, char **err);
/* rbt_run_cli that must exit 0 and print JSON on stdout: the parsed value (the caller decrefs);
 * a failure names the command and shows what it printed. */
struct json_t;
struct json_t *rbt_cli_json(const char *args);

/* Loads dataset `kind` with "name", "value", ..., NULL parameter overrides into *ds (zeroed
 * first); returns the first rb_params_set error or the load's code. */
int rbt_load_dataset(rb_dataset *ds, const char *kind, uint64_t seed, ...);
/* rbt_load_dataset for a kind with a shape hook, which it also calls with the same parameters
 * and holds to load: the same code and message where load fails (but for RB_ENUMERIC, what only
 * the data show, where the hook must succeed), and where load succeeds the shape the loaded
 * tensors have. Returns load's code, its message in rb_error_detail(). */
int rbt_load_and_shape(rb_dataset *ds, const char *kind, uint64_t seed, ...);

/* Scratch directories: rbt_tmpdir_make creates /tmp/rbtest_<tag>_XXXXXX and returns its path (in
 * a suite's .init, or in the test, once or per case), rbt_tmpdir_remove deletes every one this
 * test made, with its contents (the suite's .fini; RB_TEST_KEEP=1 keeps them for a post-mortem),
 * and rbt_tmp names a file inside the newest (8 rotating buffers, so a few paths can be live at
 * once). */
const char *rbt_tmpdir_make(const char *tag);
void rbt_tmpdir_remove(void);
const char *rbt_tmp(const char *name);

#endif
