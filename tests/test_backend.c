/* Backends: a CUDA build on a machine without a GPU reports itself unavailable, cleanly. */
#include <criterion/criterion.h>

#include "kernels/backend.h"
#include "kernels/error.h"

Test(backend, cuda_query_never_aborts) {
    int count = -1;
    int rc = rb_cuda_device_count(&count);
    if (rc == RB_OK) {
        cr_assert_gt(count, 0);
        rb_cuda_device_info info;
        cr_assert_eq(rb_cuda_device_info_get(0, &info), RB_OK, "%s", rb_error_detail());
        cr_assert_gt(info.sm_count, 0);
        cr_log_info("CUDA device 0: %s, %d SMs", info.name, info.sm_count);
    } else {
        cr_assert_eq(count, 0);
        cr_assert(rc == RB_ENODEV || rc == RB_ECUDA, "rc = %d", rc);
        cr_assert_neq(rb_error_detail()[0], '\0', "the reason must be given");
        cr_log_info("no CUDA device: %s (GPU tests skip)", rb_error_detail());
    }
}
