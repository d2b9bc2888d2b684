/* First touch of a KV cache's buffers at create (shared by the KV methods). */
#ifndef RB_KV_TOUCH_H
#define RB_KV_TOUCH_H

#include <stddef.h>

/* Writes one zero byte per 4 KB page of p[0..n), so a freshly allocated cache is faulted in now,
 * as a serving system's preallocated block pool is: first-touch page faults belong to allocation,
 * not to append (the latency pass times append alone; on a VM the faults were ten times the
 * kernel). The stores are volatile because compilers fold malloc + memset(0) into calloc, which
 * touches nothing; a page-stride store is also much cheaper than a memset of the whole cache. */
static inline void rb_kv_touch(void *p, size_t n) {
    volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i += 4096) b[i] = 0;
    if (n) b[n - 1] = 0;
}

#endif
