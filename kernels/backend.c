/* Backend availability: the one place where the CUDA build option is tested. */
#include "kernels/backend.h"

#include "kernels/error.h"

#ifdef RB_HAVE_CUDA
/* Implemented in kernels/cuda/device.cu. */
int rb_cuda_device_count_impl(int *count);
int rb_cuda_device_info_impl(int device, rb_cuda_device_info *info);
#endif

int rb_cuda_built(void) {
#ifdef RB_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int rb_cuda_device_count(int *count) {
    *count = 0;
#ifdef RB_HAVE_CUDA
    return rb_cuda_device_count_impl(count);
#else
    return rb_error_set(RB_ENODEV,
                        "this rotabench was built without CUDA (nvcc not found or CUDA=0)");
#endif
}

int rb_cuda_device_info_get(int device, rb_cuda_device_info *info) {
#ifdef RB_HAVE_CUDA
    return rb_cuda_device_info_impl(device, info);
#else
    (void) info;
    return rb_error_set(RB_ENODEV, "device %d: this rotabench was built without CUDA", device);
#endif
}
