/* Helpers for the CUDA tests: the op table or a clean skip, device buffers that fail the test
 * instead of returning codes, and poisoning so that an unwritten output never passes. */
#ifndef RB_TEST_CUDA_UTIL_H
#define RB_TEST_CUDA_UTIL_H

#include <criterion/criterion.h>
#include <stddef.h>

#include "kernels/kernels.h"

/* Declares `const rb_cuda_ops *var` and skips the test, with the reason, when this binary has no
 * CUDA or no device is visible. */
#define RBT_CUDA_OPS(var)                                                            \
    const rb_cuda_ops *var = NULL;                                                   \
    do {                                                                             \
        if (rb_cuda_ops_get(&var))                                                   \
            cr_skip_test("no CUDA device, GPU test skipped: %s", rb_error_detail()); \
    } while (0)

/* Asserts that an rb status is RB_OK, printing the detail message. */
#define RBT_CU_OK(call)                                                                    \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        cr_assert_eq(rc_, RB_OK, "%s: %s: %s", #call, rb_errname(rc_), rb_error_detail()); \
    } while (0)

/* A device buffer of `bytes`, filled with 0xFF bytes (NaN as floats, 255 as codes). */
void *rbt_cu_alloc(const rb_cuda_ops *cu, size_t bytes);
/* A device copy of `bytes` of host memory. */
void *rbt_cu_upload(const rb_cuda_ops *cu, const void *host, size_t bytes);
/* A malloc'd host copy of `bytes` of device memory (synchronizes the default stream first and
 * checks for errors of earlier launches). */
void *rbt_cu_download(const rb_cuda_ops *cu, const void *dev, size_t bytes);
void rbt_cu_free(const rb_cuda_ops *cu, void *dev);

#endif
