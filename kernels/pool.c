/* Persistent worker threads, one per core, bound with hwloc; chunks are handed out with an atomic
 * counter. The pool is rebuilt when the thread count changes. */
#include "kernels/pool.h"

#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/error.h"

struct job {
    rb_task_fn fn;
    void *ctx;
    size_t n, grain, nchunks;
    atomic_size_t next;
    atomic_size_t done;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    pthread_t threads[RB_THREADS_MAX];
    int nworkers;      /* threads other than the caller */
    unsigned long gen; /* incremented per job so sleeping workers see new work */
    struct job *job;
    int active; /* workers inside run_chunks; the caller's job must outlive them */
    int quit;
    hwloc_topology_t topo;
    int topo_ok;
    char binding[256];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .idle = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t api_mu = PTHREAD_MUTEX_INITIALIZER; /* serializes parallel_for callers */
static int threads_wanted = -1;
static _Thread_local int in_task;

static int ncores(void) {
    if (!pool.topo_ok) {
        if (hwloc_topology_init(&pool.topo) == 0 && hwloc_topology_load(pool.topo) == 0)
            pool.topo_ok = 1;
    }
    if (!pool.topo_ok) return 1;
    int n = hwloc_get_nbobjs_by_type(pool.topo, HWLOC_OBJ_CORE);
    return n > 0 ? n : 1;
}

/* Binds the calling thread to core `index` (mod the core count), one PU of it. */
static void bind_to_core(int index) {
    if (!pool.topo_ok) return;
    int n = hwloc_get_nbobjs_by_type(pool.topo, HWLOC_OBJ_CORE);
    if (n <= 0) return;
    hwloc_obj_t core = hwloc_get_obj_by_type(pool.topo, HWLOC_OBJ_CORE, (unsigned) (index % n));
    if (!core) return;
    hwloc_bitmap_t set = hwloc_bitmap_dup(core->cpuset);
    hwloc_bitmap_singlify(set);
    hwloc_set_cpubind(pool.topo, set, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(set);
}

static void run_chunks(struct job *job) {
    in_task = 1;
    for (;;) {
        size_t c = atomic_fetch_add(&job->next, 1);
        if (c >= job->nchunks) break;
        size_t begin = c * job->grain, end = begin + job->grain;
        job->fn(job->ctx, begin, end < job->n ? end : job->n);
        atomic_fetch_add(&job->done, 1);
    }
    in_task = 0;
}

static void *worker_main(void *arg) {
    bind_to_core((int) (size_t) arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.quit && pool.gen == seen) pthread_cond_wait(&pool.wake, &pool.mu);
        if (pool.quit) break;
        seen = pool.gen;
        struct job *job = pool.job;
        if (!job) continue; /* woke after the job finished */
        pool.active++;
        pthread_mutex_unlock(&pool.mu);
        run_chunks(job);
        pthread_mutex_lock(&pool.mu);
        pool.active--;
        pthread_cond_broadcast(&pool.idle);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

static void pool_stop(void) {
    pthread_mutex_lock(&pool.mu);
    pool.quit = 1;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < pool.nworkers; i++) pthread_join(pool.threads[i], NULL);
    pool.nworkers = 0;
    pool.quit = 0;
}

static void pool_start(int nthreads) {
    if (pool.nworkers) pool_stop();
    if (nthreads > 1) bind_to_core(0);
    int started = 0;
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&pool.threads[started], NULL, worker_main, (void *) (size_t) i) != 0)
            break; /* run with fewer threads; results do not depend on the count */
        started++;
    }
    pool.nworkers = started;
    if (started == 0)
        snprintf(pool.binding, sizeof pool.binding, "1 thread, unbound");
    else
        snprintf(pool.binding, sizeof pool.binding, "%d threads, one per core, bound with hwloc",
                 started + 1);
}

int rb_threads_set(int n) {
    if (n < 0 || n > RB_THREADS_MAX)
        return rb_error_set(RB_EINVAL, "threads = %d is outside 0..%d", n, RB_THREADS_MAX);
    pthread_mutex_lock(&api_mu);
    threads_wanted = n == 0 ? ncores() : n;
    pthread_mutex_unlock(&api_mu);
    return RB_OK;
}

static int threads_locked(void) {
    if (threads_wanted < 0) {
        const char *env = getenv("RB_THREADS");
        int n = env ? atoi(env) : 1;
        threads_wanted =
            n == 0 ? ncores() : (n < 1 ? 1 : (n > RB_THREADS_MAX ? RB_THREADS_MAX : n));
    }
    return threads_wanted;
}

int rb_threads_get(void) {
    pthread_mutex_lock(&api_mu);
    int n = threads_locked();
    pthread_mutex_unlock(&api_mu);
    return n;
}

void rb_parallel_for(size_t n, size_t grain, rb_task_fn fn, void *ctx) {
    if (n == 0) return;
    if (grain == 0) grain = 1;
    size_t nchunks = (n + grain - 1) / grain;
    if (in_task || nchunks == 1) {
        for (size_t b = 0; b < n; b += grain) fn(ctx, b, b + grain < n ? b + grain : n);
        return;
    }
    pthread_mutex_lock(&api_mu);
    int want = threads_locked();
    if (want > 1 && pool.nworkers != want - 1) {
        ncores(); /* loads the topology before workers bind */
        pool_start(want);
    } else if (want <= 1 && pool.nworkers) {
        pool_stop();
    }
    if (pool.nworkers == 0) {
        pthread_mutex_unlock(&api_mu);
        for (size_t b = 0; b < n; b += grain) fn(ctx, b, b + grain < n ? b + grain : n);
        return;
    }
    struct job job = {.fn = fn, .ctx = ctx, .n = n, .grain = grain, .nchunks = nchunks};
    atomic_init(&job.next, 0);
    atomic_init(&job.done, 0);
    pthread_mutex_lock(&pool.mu);
    pool.job = &job;
    pool.gen++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    run_chunks(&job);
    pthread_mutex_lock(&pool.mu);
    while (atomic_load(&job.done) < nchunks || pool.active > 0)
        pthread_cond_wait(&pool.idle, &pool.mu);
    pool.job = NULL;
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&api_mu);
}

const char *rb_pool_binding(void) {
    if (!pool.binding[0]) snprintf(pool.binding, sizeof pool.binding, "1 thread, unbound");
    return pool.binding;
}
