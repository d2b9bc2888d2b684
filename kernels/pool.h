/* A small thread pool pinned with hwloc: the only way kernels use more than one core. */
#ifndef RB_POOL_H
#define RB_POOL_H

#include <stddef.h>

enum { RB_THREADS_MAX = 256 };

/* Number of threads kernels may use (the caller counts as one). 0 means one per physical core
 * that hwloc reports. The default is 1 unless RB_THREADS is set, so a library call never
 * surprises a caller with threads. Returns RB_EINVAL outside 0..RB_THREADS_MAX. */
int rb_threads_set(int n);
int rb_threads_get(void);
/* RB_OK when RB_THREADS is unset, empty or 0..RB_THREADS_MAX; otherwise RB_EINVAL with a message
 * naming it, for commands that refuse it instead of the library's fallback to 1 thread. */
int rb_threads_env_check(void);

/* Runs fn(ctx, begin, end) over [0, n) in chunks of `grain` items (the last may be shorter) and
 * returns when all are done. Chunk boundaries depend only on n and grain, never on the thread
 * count, so a kernel whose chunks are independent gives the same bits with any number of threads.
 * Nested calls (from inside a task) run serially on the calling thread. */
typedef void (*rb_task_fn)(void *ctx, size_t begin, size_t end);
/* Returns RB_OK, or the failure a task reported with rb_task_fail: that of the lowest-numbered
 * failing chunk (whatever thread ran it), with its rb_error_detail() message copied to the
 * calling thread. Kernel variants that run inside tasks are recorded in the caller's trace. */
int rb_parallel_for(size_t n, size_t grain, rb_task_fn fn, void *ctx);
/* Inside a task: reports that this chunk failed with `code` (after rb_error_set); returns code.
 * Outside a task it only returns code. */
int rb_task_fail(int code);

/* How the pool's threads are bound, for the run's context record, e.g. "3 threads, one per core,
 * bound with hwloc", "4 threads on 2 cores (2 per core), bound with hwloc" (more threads than
 * cores: thread i runs on core i mod cores) or "1 thread, unbound": the pool at the current
 * thread count (started here if no parallel call has started it yet). */
const char *rb_pool_binding(void);

/* The physical cores hwloc reports (1 when it reports none): more threads than this share cores,
 * which the commands that take --threads warn about. */
int rb_pool_cores(void);

#endif
