/* Helpers for the CUDA tests (tests/cuda_util.h). */
#include "tests/cuda_util.h"

#include <stdlib.h>
#include <string.h>

void *rbt_cu_alloc(const rb_cuda_ops *cu, size_t bytes) {
    void *p = NULL;
    RBT_CU_OK(cu->malloc(&p, bytes));
    RBT_CU_OK(cu->memset(p, 0xFF, bytes, NULL));
    return p;
}

void *rbt_cu_upload(const rb_cuda_ops *cu, const void *host, size_t bytes) {
    void *p = NULL;
    RBT_CU_OK(cu->malloc(&p, bytes));
    RBT_CU_OK(cu->memcpy_h2d(p, host, bytes, NULL));
    return p;
}

void *rbt_cu_download(const rb_cuda_ops *cu, const void *dev, size_t bytes) {
    void *h = malloc(bytes ? bytes : 1);
    cr_assert(h);
    RBT_CU_OK(cu->stream_sync(NULL));
    RBT_CU_OK(cu->memcpy_d2h(h, dev, bytes, NULL));
    RBT_CU_OK(cu->stream_sync(NULL));
    return h;
}

void rbt_cu_free(const rb_cuda_ops *cu, void *dev) {
    RBT_CU_OK(cu->free(dev));
}
