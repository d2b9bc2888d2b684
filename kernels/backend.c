/* Backend availability: the one place where the CUDA build option is tested. */
#include "kernels/backend.h"

#include "kernels/error.h"

#include "kernels/gpu.h"

#ifdef RB_HAVE_CUDA
/* Implemented in kernels/cuda/device.cu. */
int rb_cuda_device_count_impl(int *count);
int rb_cuda_device_info_impl(int device, rb_cuda_device_info *info);
int rb_cuda_ops_impl(const rb_cuda_ops **ops);
int rb_cuda_copy_bandwidth_impl(size_t bytes, int reps, double *bytes_per_s);
#endif

static _Atomic int current = RB_BACKEND_CPU;

int rb_backend_use(rb_backend b) {
    if (b == RB_BACKEND_CUDA) {
        const rb_cuda_ops *ops;
        int rc = rb_cuda_ops_get(&ops);
        if (rc) return rc;
    } else if (b != RB_BACKEND_CPU) {
        return rb_error_set(RB_EINVAL, "unknown backend %d", (int) b);
    }
    current = b;
    return RB_OK;
}

rb_backend rb_backend_current(void) {
    return (rb_backend) current;
}

const char *rb_backend_name(rb_backend b) {
    return b == RB_BACKEND_CUDA ? "cuda" : "cpu";
}

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

int rb_cuda_ops_get(const rb_cuda_ops **ops) {
    *ops = NULL;
#ifdef RB_HAVE_CUDA
    return rb_cuda_ops_impl(ops);
#else
    return rb_error_set(RB_ENODEV,
                        "this rotabench was built without CUDA (nvcc not found or CUDA=0)");
#endif
}

int rb_cuda_copy_bandwidth(size_t bytes, int reps, double *bytes_per_s) {
    *bytes_per_s = 0;
#ifdef RB_HAVE_CUDA
    return rb_cuda_copy_bandwidth_impl(bytes, reps, bytes_per_s);
#else
    (void) bytes;
    (void) reps;
    return rb_error_set(RB_ENODEV, "this rotabench was built without CUDA");
#endif
}

size_t rb_dtype_size(rb_dtype t) {
    return t == RB_DT_F32 ? 4 : 2;
}

const char *rb_dtype_name(rb_dtype t) {
    switch (t) {
    case RB_DT_F32:
        return "f32";
    case RB_DT_F16:
        return "f16";
    case RB_DT_BF16:
        return "bf16";
    }
    return "?";
}
