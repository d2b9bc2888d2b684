/* Compute backends (CPU, CUDA): which are built in, which devices are visible. */
#ifndef RB_BACKEND_H
#define RB_BACKEND_H

#include <stddef.h>

typedef enum rb_backend { RB_BACKEND_CPU = 0, RB_BACKEND_CUDA = 1 } rb_backend;

typedef struct rb_cuda_device_info {
    char name[256];
    int sm_count;
    int cc_major, cc_minor;
    size_t total_mem;
    int driver_version; /* e.g. 13000 for 13.0 */
    int runtime_version;
    size_t l2_bytes;
    size_t smem_per_block_optin; /* shared memory a block may opt in to */
    double mem_bw_theoretical;   /* bytes/s from the memory clock and bus width (datasheet) */
} rb_cuda_device_info;

/* The backend the kernel dispatch uses (process-wide; the runner sets it per cell): RB_BACKEND_CPU
 * by default; RB_BACKEND_CUDA enables the CUDA variants of the ops that have one
 * (kernels/cuda_offload.h), which then run before any CPU variant. Selecting CUDA fails with
 * RB_ENODEV (and the reason) when no device is usable. */
int rb_backend_use(rb_backend b);
rb_backend rb_backend_current(void);
const char *rb_backend_name(rb_backend b); /* "cpu", "cuda" */

/* 1 if this binary was compiled with nvcc (RB_HAVE_CUDA). */
int rb_cuda_built(void);
/* Number of visible CUDA devices in *count. RB_ENODEV (with a reason in rb_error_detail()) when
 * the binary has no CUDA or no device/driver is visible; never aborts. */
int rb_cuda_device_count(int *count);
int rb_cuda_device_info_get(int device, rb_cuda_device_info *info);

#endif
