/* CUDA plumbing: device queries, buffers, copies, streams, events, dtype conversion, the copy
 * bandwidth probe, and the table that collects every area's ops. Every runtime call is checked
 * and turned into an rb status; nothing here aborts. */
#include <algorithm>
#include <mutex>
#include <stdio.h>
#include <string.h>
#include <new>
#include <vector>

#include "kernels/cuda/common.cuh"

extern "C" {
#include "kernels/backend.h"
int rb_cuda_device_count_impl(int *count);
int rb_cuda_device_info_impl(int device, rb_cuda_device_info *info);
int rb_cuda_ops_impl(const rb_cuda_ops **ops);
int rb_cuda_copy_bandwidth_impl(size_t bytes, int reps, double *bytes_per_s);
}

int rb_cu_status(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return RB_OK;
    int code = (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? RB_ENODEV : RB_ECUDA;
    /* A failed call leaves its error as the "last error" too; clear it so that the next
     * launch check reports that launch, not this call. Sticky errors stay regardless. */
    (void) cudaGetLastError();
    return rb_error_set(code, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int rb_cu_sm_count(void) {
    static int sms = 0;
    if (!sms) {
        int dev = 0, v = 0;
        if (cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess && v > 0)
            sms = v;
        else
            sms = 132;
        (void) cudaGetLastError();
    }
    return sms;
}

int rb_cuda_device_count_impl(int *count) {
    *count = 0;
    int rc = rb_cu_status(cudaGetDeviceCount(count), "cudaGetDeviceCount");
    if (rc) {
        *count = 0;
        return rc;
    }
    if (*count == 0) return rb_error_set(RB_ENODEV, "no CUDA device is visible");
    return RB_OK;
}

int rb_cuda_device_info_impl(int device, rb_cuda_device_info *info) {
    cudaDeviceProp p;
    int rc = rb_cu_status(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    if (rc) return rc;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->sm_count = p.multiProcessorCount;
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->total_mem = p.totalGlobalMem;
    info->l2_bytes = (size_t) p.l2CacheSize;
    info->smem_per_block_optin = p.sharedMemPerBlockOptin;
    int clock_khz = 0, bus_bits = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device);
    cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device);
    (void) cudaGetLastError();
    /* Double data rate: two transfers per clock. */
    info->mem_bw_theoretical = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0);
    if ((rc = rb_cu_status(cudaDriverGetVersion(&info->driver_version), "cudaDriverGetVersion")))
        return rc;
    return rb_cu_status(cudaRuntimeGetVersion(&info->runtime_version), "cudaRuntimeGetVersion");
}

/* ---- buffers, copies, streams, events ---- */

static int cu_set_device(int device) {
    return rb_cu_status(cudaSetDevice(device), "cudaSetDevice");
}
static int cu_malloc(void **ptr, size_t bytes) {
    *ptr = NULL;
    cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void) cudaGetLastError();
        return rb_error_set(RB_ENOMEM, "cudaMalloc: no device memory for %zu bytes", bytes);
    }
    return rb_cu_status(e, "cudaMalloc");
}
static int cu_free(void *ptr) {
    return ptr ? rb_cu_status(cudaFree(ptr), "cudaFree") : RB_OK;
}
static int cu_copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, void *s,
                   const char *what) {
    if (!bytes) return RB_OK;
    return rb_cu_status(cudaMemcpyAsync(dst, src, bytes, kind, rb_cu_stream(s)), what);
}
static int cu_h2d(void *dst, const void *src, size_t bytes, void *s) {
    return cu_copy(dst, src, bytes, cudaMemcpyHostToDevice, s, "cudaMemcpyAsync (host to device)");
}
static int cu_d2h(void *dst, const void *src, size_t bytes, void *s) {
    return cu_copy(dst, src, bytes, cudaMemcpyDeviceToHost, s, "cudaMemcpyAsync (device to host)");
}
static int cu_d2d(void *dst, const void *src, size_t bytes, void *s) {
    return cu_copy(dst, src, bytes, cudaMemcpyDeviceToDevice, s,
                   "cudaMemcpyAsync (device to device)");
}
static int cu_memset(void *dst, int byte, size_t bytes, void *s) {
    if (!bytes) return RB_OK;
    return rb_cu_status(cudaMemsetAsync(dst, byte, bytes, rb_cu_stream(s)), "cudaMemsetAsync");
}
static int cu_stream_create(void **s) {
    cudaStream_t st = NULL;
    int rc = rb_cu_status(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking),
                          "cudaStreamCreateWithFlags");
    *s = rc ? NULL : (void *) st;
    return rc;
}
static int cu_stream_destroy(void *s) {
    return s ? rb_cu_status(cudaStreamDestroy(rb_cu_stream(s)), "cudaStreamDestroy") : RB_OK;
}
static int cu_stream_sync(void *s) {
    return rb_cu_status(cudaStreamSynchronize(rb_cu_stream(s)), "cudaStreamSynchronize");
}
static int cu_event_create(void **e) {
    cudaEvent_t ev = NULL;
    int rc = rb_cu_status(cudaEventCreate(&ev), "cudaEventCreate");
    *e = rc ? NULL : (void *) ev;
    return rc;
}
static int cu_event_destroy(void *e) {
    return e ? rb_cu_status(cudaEventDestroy((cudaEvent_t) e), "cudaEventDestroy") : RB_OK;
}
static int cu_event_record(void *e, void *s) {
    return rb_cu_status(cudaEventRecord((cudaEvent_t) e, rb_cu_stream(s)), "cudaEventRecord");
}
static int cu_event_elapsed(void *a, void *b, float *ms) {
    int rc = rb_cu_status(cudaEventSynchronize((cudaEvent_t) b), "cudaEventSynchronize");
    if (rc) return rc;
    return rb_cu_status(cudaEventElapsedTime(ms, (cudaEvent_t) a, (cudaEvent_t) b),
                        "cudaEventElapsedTime");
}

/* ---- dtype conversion ---- */

template <typename S, typename D>
__global__ void convert_kernel(const S *__restrict__ src, D *__restrict__ dst, size_t n) {
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        dst[i] = rb_cu_store<D>(rb_cu_load<S>(src[i]));
}

template <typename S>
static int convert_from(const S *src, void *dst, rb_dtype dt, size_t n, cudaStream_t s) {
    unsigned g = rb_cu_blocks(n, 256);
    switch (dt) {
    case RB_DT_F32:
        convert_kernel<<<g, 256, 0, s>>>(src, (float *) dst, n);
        break;
    case RB_DT_F16:
        convert_kernel<<<g, 256, 0, s>>>(src, (__half *) dst, n);
        break;
    case RB_DT_BF16:
        convert_kernel<<<g, 256, 0, s>>>(src, (__nv_bfloat16 *) dst, n);
        break;
    default:
        return rb_error_set(RB_EINVAL, "convert: unknown destination dtype %d", (int) dt);
    }
    return RB_CU_LAUNCHED("convert");
}

static int cu_convert(const void *src, rb_dtype st, void *dst, rb_dtype dt, size_t n, void *s) {
    if (!n) return RB_OK;
    cudaStream_t cs = rb_cu_stream(s);
    switch (st) {
    case RB_DT_F32:
        return convert_from((const float *) src, dst, dt, n, cs);
    case RB_DT_F16:
        return convert_from((const __half *) src, dst, dt, n, cs);
    case RB_DT_BF16:
        return convert_from((const __nv_bfloat16 *) src, dst, dt, n, cs);
    }
    return rb_error_set(RB_EINVAL, "convert: unknown source dtype %d", (int) st);
}

/* ---- the table ---- */

static rb_cuda_ops table;
static int table_status = 1; /* 1: not yet tried */
static char table_error[512];
static std::mutex table_lock;

int rb_cuda_ops_impl(const rb_cuda_ops **ops) {
    std::lock_guard<std::mutex> guard(table_lock);
    if (table_status == 1) {
        int count = 0;
        table_status = rb_cuda_device_count_impl(&count);
        if (!table_status) table_status = cu_set_device(0);
        /* The first runtime call creates the context; do it here, once, so that no timed
         * region ever pays for it. */
        if (!table_status) table_status = rb_cu_status(cudaFree(0), "cudaFree(0)");
        if (table_status) {
            snprintf(table_error, sizeof table_error, "%s", rb_error_detail());
        } else {
            table.set_device = cu_set_device;
            table.malloc = cu_malloc;
            table.free = cu_free;
            table.memcpy_h2d = cu_h2d;
            table.memcpy_d2h = cu_d2h;
            table.memcpy_d2d = cu_d2d;
            table.memset = cu_memset;
            table.stream_create = cu_stream_create;
            table.stream_destroy = cu_stream_destroy;
            table.stream_sync = cu_stream_sync;
            table.event_create = cu_event_create;
            table.event_destroy = cu_event_destroy;
            table.event_record = cu_event_record;
            table.event_elapsed_ms = cu_event_elapsed;
            table.convert = cu_convert;
            rb_cu_register_rng(&table);
            rb_cu_register_fwht(&table);
            rb_cu_register_blas(&table);
            rb_cu_register_quant(&table);
            rb_cu_register_fused(&table);
            rb_cu_register_rhtcodec(&table);
        }
    }
    *ops = table_status ? NULL : &table;
    if (table_status) return rb_error_set(table_status, "%s", table_error);
    return RB_OK;
}

/* cudaMemcpyAsync device to device, the same engine path as any other copy kernel would be
 * measured against: the median of `reps` timed copies after one warm-up. */
int rb_cuda_copy_bandwidth_impl(size_t bytes, int reps, double *bytes_per_s) {
    const rb_cuda_ops *o;
    int rc = rb_cuda_ops_impl(&o);
    if (rc) return rc;
    void *a = NULL, *b = NULL, *e0 = NULL, *e1 = NULL;
    std::vector<float> ms;
    if (reps < 1) reps = 1;
    try {
        ms.reserve((size_t) reps); /* push_back below then never allocates (or throws) */
    } catch (const std::bad_alloc &) {
        return rb_error_set(RB_ENOMEM, "copy bandwidth: no host memory for %d timings", reps);
    }
    if ((rc = cu_malloc(&a, bytes)) || (rc = cu_malloc(&b, bytes))) goto done;
    if ((rc = cu_memset(a, 0x5a, bytes, NULL))) goto done;
    if ((rc = cu_event_create(&e0)) || (rc = cu_event_create(&e1))) goto done;
    if ((rc = cu_d2d(b, a, bytes, NULL)) || (rc = cu_stream_sync(NULL))) goto done;
    for (int i = 0; i < reps; i++) {
        float t = 0;
        if ((rc = cu_event_record(e0, NULL)) || (rc = cu_d2d(b, a, bytes, NULL)) ||
            (rc = cu_event_record(e1, NULL)) || (rc = cu_event_elapsed(e0, e1, &t)))
            goto done;
        ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    *bytes_per_s = 2.0 * (double) bytes / (ms[ms.size() / 2] * 1e-3);
done:
    cu_event_destroy(e0);
    cu_event_destroy(e1);
    cu_free(a);
    cu_free(b);
    return rc;
}
