/* CUDA device queries; every runtime call is checked and turned into an rb status. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "kernels/backend.h"
#include "kernels/error.h"
int rb_cuda_device_count_impl(int *count);
int rb_cuda_device_info_impl(int device, rb_cuda_device_info *info);
}

static int cuda_status(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return RB_OK;
    int code = (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? RB_ENODEV : RB_ECUDA;
    return rb_error_set(code, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int rb_cuda_device_count_impl(int *count) {
    *count = 0;
    int rc = cuda_status(cudaGetDeviceCount(count), "cudaGetDeviceCount");
    if (rc) {
        *count = 0;
        return rc;
    }
    if (*count == 0) return rb_error_set(RB_ENODEV, "no CUDA device is visible");
    return RB_OK;
}

int rb_cuda_device_info_impl(int device, rb_cuda_device_info *info) {
    cudaDeviceProp p;
    int rc = cuda_status(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    if (rc) return rc;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->sm_count = p.multiProcessorCount;
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->total_mem = p.totalGlobalMem;
    if ((rc = cuda_status(cudaDriverGetVersion(&info->driver_version), "cudaDriverGetVersion")))
        return rc;
    return cuda_status(cudaRuntimeGetVersion(&info->runtime_version), "cudaRuntimeGetVersion");
}
