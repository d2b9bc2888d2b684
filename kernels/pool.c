/* Persistent worker threads, one per core, bound with hwloc. The pool is rebuilt when the thread
 * count changes.
 *
 * Chunks are scheduled statically with stealing: participant p (the caller is 0, worker i is i)
 * owns the contiguous chunk range [p * nchunks / T, (p + 1) * nchunks / T), takes its chunks from
 * the front, and when its range is empty takes other ranges' chunks from their back. Why not one
 * shared counter: the same thread then touches the same part of the data on every call (2048 rows
 * of 128 floats stay in the two cores' own L2 caches instead of crossing between cores, which
 * here are far apart: a cache line takes ~200 ns one way), each thread's chunks are contiguous
 * (prefetch friendly), and the threads do not contend for one counter's cache line per chunk.
 * Stealing keeps a late or descheduled worker from delaying the job. Chunk boundaries are still
 * fixed by n and grain, so results do not depend on the thread count or on who ran what.
 *
 * Waking a worker sleeping on a condition variable takes a futex round trip (tens of
 * microseconds in a loaded VM), which is as long as a whole small job (2048 rows of 128 floats:
 * 25 us on one core). So a worker that finishes a job first spins for a bounded time
 * (SPIN_NS, pause between polls of the job generation) and only then sleeps; the caller likewise
 * spins briefly for the workers to finish before sleeping. Back-to-back calls then find the
 * workers awake, and an idle pool costs no CPU after SPIN_NS. */
#include "kernels/pool.h"

#include <hwloc.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void) 0)
#endif

#include "kernels/dispatch.h"
#include "kernels/error.h"

/* One participant's remaining chunk range [front, back), packed in one word so that the owner
 * (front) and thieves (back) claim chunks with one compare-and-swap; on its own cache line. */
struct part {
    _Alignas(64) _Atomic uint64_t range; /* front << 32 | back */
};

struct job {
    rb_task_fn fn;
    void *ctx;
    size_t n, grain, nchunks;
    int nparts;
    struct part *parts;
    rb_trace *trace; /* the caller's kernel trace: workers' notes go there */
    /* The failure of the lowest-numbered failing chunk (rb_task_fail), so the error a caller sees
     * does not depend on which thread failed first. */
    pthread_mutex_t err_mu;
    size_t err_chunk;
    int err_code;
    char err_detail[1024];
    _Alignas(64) atomic_size_t done;
};

enum { SPIN_NS = 50000 }; /* how long a worker or the caller polls before sleeping */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    pthread_t threads[RB_THREADS_MAX];
    int nworkers; /* threads other than the caller */
    /* Incremented (under mu) per job and on quit, so spinning and sleeping workers see new work;
     * atomic so that spinning workers can poll it without the lock. */
    atomic_ulong gen;
    struct job *job;    /* under mu; NULL once the caller has collected the job */
    atomic_int active;  /* workers inside run_chunks (changed under mu); the job outlives them */
    int caller_waiting; /* under mu: the caller sleeps on idle */
    int quit;
    hwloc_bitmap_t caller_binding;     /* the caller's binding before the pool pinned it */
    struct part parts[RB_THREADS_MAX]; /* the current job's ranges (jobs are serialized) */
    hwloc_topology_t topo;
    int topo_ok;
    char binding[256];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .idle = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t api_mu = PTHREAD_MUTEX_INITIALIZER; /* serializes parallel_for callers */
static int threads_wanted = -1;
static _Thread_local int in_task;
/* The job and chunk this thread is running, for rb_task_fail. */
static _Thread_local struct job *cur_job;
static _Thread_local size_t cur_chunk;

static int ncores(void) {
    if (!pool.topo_ok) {
        if (hwloc_topology_init(&pool.topo) == 0 && hwloc_topology_load(pool.topo) == 0)
            pool.topo_ok = 1;
    }
    if (!pool.topo_ok) return 1;
    int n = hwloc_get_nbobjs_by_type(pool.topo, HWLOC_OBJ_CORE);
    return n < 1 ? 1 : n > RB_THREADS_MAX ? RB_THREADS_MAX : n;
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

/* Claims the next chunk of range p: from the front (own == 1) or the back. Returns 0 if empty. */
static int claim(struct part *p, int own, size_t *chunk) {
    uint64_t r = atomic_load_explicit(&p->range, memory_order_relaxed);
    for (;;) {
        uint64_t front = r >> 32, back = r & 0xffffffffu;
        if (front >= back) return 0;
        uint64_t next = own ? (front + 1) << 32 | back : front << 32 | (back - 1);
        if (atomic_compare_exchange_weak(&p->range, &r, next)) {
            *chunk = (size_t) (own ? front : back - 1);
            return 1;
        }
    }
}

static void run_chunk(struct job *job, size_t c) {
    size_t begin = c * job->grain, end = begin + job->grain;
    struct job *outer = cur_job;
    size_t outer_chunk = cur_chunk;
    cur_job = job;
    cur_chunk = c;
    job->fn(job->ctx, begin, end < job->n ? end : job->n);
    cur_job = outer;
    cur_chunk = outer_chunk;
    atomic_fetch_add(&job->done, 1);
}

int rb_task_fail(int code) {
    struct job *job = cur_job;
    if (!job || code == 0) return code;
    pthread_mutex_lock(&job->err_mu);
    if (!job->err_code || cur_chunk < job->err_chunk) {
        job->err_code = code;
        job->err_chunk = cur_chunk;
        snprintf(job->err_detail, sizeof job->err_detail, "%s", rb_error_detail());
    }
    pthread_mutex_unlock(&job->err_mu);
    return code;
}

/* The job's outcome on the calling thread: its first failure, with that chunk's message. */
static int job_result(struct job *job) {
    pthread_mutex_destroy(&job->err_mu);
    if (!job->err_code) return RB_OK;
    return rb_error_set(job->err_code, "%s", job->err_detail);
}

/* Participant `self` runs its own range, then steals from the others in turn. */
static void run_chunks(struct job *job, int self) {
    in_task = 1;
    rb_trace *own = self ? rb_kernel_trace_redirect(job->trace) : NULL;
    size_t c;
    while (claim(&job->parts[self], 1, &c)) run_chunk(job, c);
    for (int i = 1; i < job->nparts; i++) {
        struct part *victim = &job->parts[(self + i) % job->nparts];
        while (claim(victim, 0, &c)) run_chunk(job, c);
    }
    if (self) rb_kernel_trace_redirect(own);
    in_task = 0;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long) t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Polls cond(arg) with pause in between for at most SPIN_NS; returns its last value. The clock is
 * read every 64 polls only (a pause is tens of cycles, the clock about as much). */
static int spin_until(int (*cond)(const void *), const void *arg) {
    long long deadline = 0;
    for (unsigned i = 1;; i++) {
        if (cond(arg)) return 1;
        cpu_relax();
        if (i % 64 == 0) {
            long long t = now_ns();
            if (!deadline)
                deadline = t + SPIN_NS;
            else if (t > deadline)
                return cond(arg);
        }
    }
}

static int gen_moved(const void *seen) {
    return atomic_load_explicit(&pool.gen, memory_order_acquire) != *(const unsigned long *) seen;
}

static void *worker_main(void *arg) {
    int self = (int) (size_t) arg;
    /* Signals (Ctrl-C) go to the application's threads, never to a kernel worker. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    bind_to_core(self);
    unsigned long seen = 0;
    for (;;) {
        spin_until(gen_moved, &seen); /* bounded: then sleep below */
        pthread_mutex_lock(&pool.mu);
        while (!pool.quit && atomic_load(&pool.gen) == seen)
            pthread_cond_wait(&pool.wake, &pool.mu);
        if (pool.quit) {
            pthread_mutex_unlock(&pool.mu);
            break;
        }
        seen = atomic_load(&pool.gen);
        struct job *job = pool.job;
        if (!job) { /* the job was collected before this worker got to it */
            pthread_mutex_unlock(&pool.mu);
            continue;
        }
        atomic_fetch_add(&pool.active, 1);
        pthread_mutex_unlock(&pool.mu);
        if (self < job->nparts) run_chunks(job, self);
        pthread_mutex_lock(&pool.mu);
        atomic_fetch_sub(&pool.active, 1);
        if (pool.caller_waiting) pthread_cond_broadcast(&pool.idle);
        pthread_mutex_unlock(&pool.mu);
    }
    return NULL;
}

static void pool_stop(void) {
    pthread_mutex_lock(&pool.mu);
    pool.quit = 1;
    atomic_fetch_add(&pool.gen, 1); /* ends the spin of a worker that just finished a job */
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < pool.nworkers; i++) pthread_join(pool.threads[i], NULL);
    pool.nworkers = 0;
    pool.quit = 0;
    snprintf(pool.binding, sizeof pool.binding, "1 thread, unbound");
    /* Give the caller back the binding it had, so later single-thread work runs as it would in a
     * fresh process. */
    if (pool.caller_binding) {
        hwloc_set_cpubind(pool.topo, pool.caller_binding, HWLOC_CPUBIND_THREAD);
        hwloc_bitmap_free(pool.caller_binding);
        pool.caller_binding = NULL;
    }
}

static void pool_start(int nthreads) {
    if (pool.nworkers) pool_stop();
    if (nthreads > 1 && pool.topo_ok) {
        pool.caller_binding = hwloc_bitmap_alloc();
        if (pool.caller_binding &&
            hwloc_get_cpubind(pool.topo, pool.caller_binding, HWLOC_CPUBIND_THREAD) != 0) {
            hwloc_bitmap_free(pool.caller_binding);
            pool.caller_binding = NULL;
        }
        bind_to_core(0);
    }
    int started = 0;
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&pool.threads[started], NULL, worker_main, (void *) (size_t) i) != 0)
            break; /* run with fewer threads; results do not depend on the count */
        started++;
    }
    pool.nworkers = started;
    int total = started + 1, cores = pool.topo_ok ? ncores() : 0;
    if (started == 0)
        snprintf(pool.binding, sizeof pool.binding, "1 thread, unbound");
    else if (!pool.topo_ok)
        snprintf(pool.binding, sizeof pool.binding, "%d threads, unbound (no hwloc topology)",
                 total);
    else if (total <= cores)
        snprintf(pool.binding, sizeof pool.binding, "%d threads, one per core, bound with hwloc",
                 total);
    else /* bind_to_core(i % cores): some cores run two or more of the threads */
        snprintf(pool.binding, sizeof pool.binding,
                 "%d threads on %d cores (%s%d per core), bound with hwloc", total, cores,
                 total % cores ? "up to " : "", (total + cores - 1) / cores);
}

int rb_threads_set(int n) {
    if (n < 0 || n > RB_THREADS_MAX)
        return rb_error_set(RB_EINVAL, "threads = %d is outside 0..%d", n, RB_THREADS_MAX);
    pthread_mutex_lock(&api_mu);
    threads_wanted = n == 0 ? ncores() : n;
    pthread_mutex_unlock(&api_mu);
    return RB_OK;
}

/* RB_THREADS as a count (0 = one per core), 1 when unset or empty, -1 when it is not 0..max. */
static long threads_env(void) {
    const char *env = getenv("RB_THREADS");
    if (!env || !*env) return 1;
    char *end = NULL;
    long n = strtol(env, &end, 10);
    return *end || n < 0 || n > RB_THREADS_MAX ? -1 : n;
}

int rb_threads_env_check(void) {
    if (threads_env() >= 0) return RB_OK;
    return rb_error_set(RB_EINVAL, "RB_THREADS=%s is not an integer in 0..%d (0: one per core)",
                        getenv("RB_THREADS"), RB_THREADS_MAX);
}

static int threads_locked(void) {
    if (threads_wanted < 0) {
        long n = threads_env();
        if (n < 0) {
            fprintf(stderr, "rotabench: RB_THREADS=%s is not 0..%d; using 1 thread\n",
                    getenv("RB_THREADS"), RB_THREADS_MAX);
            n = 1;
        }
        threads_wanted = n == 0 ? ncores() : (int) n;
    }
    return threads_wanted;
}

int rb_threads_get(void) {
    pthread_mutex_lock(&api_mu);
    int n = threads_locked();
    pthread_mutex_unlock(&api_mu);
    return n;
}

static int job_finished(const void *arg) {
    const struct job *job = arg;
    return atomic_load(&job->done) == job->nchunks && atomic_load(&pool.active) == 0;
}

/* Runs every chunk on this thread, in order (no pool, or a nested call). */
static int run_serial(struct job *job) {
    for (size_t c = 0; c < job->nchunks; c++) run_chunk(job, c);
    return job_result(job);
}

/* Under api_mu: starts, restarts or stops the workers so that the pool has the wanted count. */
static void pool_match_locked(void) {
    int want = threads_locked();
    if (want > 1 && pool.nworkers != want - 1) {
        ncores(); /* loads the topology before workers bind */
        pool_start(want);
    } else if (want <= 1 && pool.nworkers) {
        pool_stop();
    }
}

int rb_parallel_for(size_t n, size_t grain, rb_task_fn fn, void *ctx) {
    if (n == 0) return RB_OK;
    if (grain == 0) grain = 1;
    size_t nchunks = (n + grain - 1) / grain;
    struct job job = {.fn = fn, .ctx = ctx, .n = n, .grain = grain, .nchunks = nchunks};
    pthread_mutex_init(&job.err_mu, NULL);
    atomic_init(&job.done, 0);
    if (in_task || nchunks == 1 || nchunks > UINT32_MAX) return run_serial(&job);
    pthread_mutex_lock(&api_mu);
    pool_match_locked();
    if (pool.nworkers == 0) {
        pthread_mutex_unlock(&api_mu);
        return run_serial(&job);
    }
    int nparts = pool.nworkers + 1;
    job.nparts = nparts;
    job.parts = pool.parts;
    job.trace = rb_kernel_trace_current();
    rb_kernel_trace_share(job.trace, +1);
    for (int p = 0; p < nparts; p++) {
        uint64_t front = (uint64_t) (nchunks * (size_t) p / (size_t) nparts),
                 back = (uint64_t) (nchunks * (size_t) (p + 1) / (size_t) nparts);
        atomic_store_explicit(&pool.parts[p].range, front << 32 | back, memory_order_relaxed);
    }
    pthread_mutex_lock(&pool.mu);
    pool.job = &job;
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake); /* cheap when every worker is still spinning */
    pthread_mutex_unlock(&pool.mu);
    run_chunks(&job, 0);
    /* The job lives on this stack: collect it (pool.job = NULL, under mu) only when every chunk
     * is done and no worker is inside it; a worker registers in active under mu and only while
     * pool.job is set, so none can start on it afterwards. */
    spin_until(job_finished, &job);
    pthread_mutex_lock(&pool.mu);
    pool.caller_waiting = 1;
    while (!job_finished(&job)) pthread_cond_wait(&pool.idle, &pool.mu);
    pool.caller_waiting = 0;
    pool.job = NULL;
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&api_mu);
    rb_kernel_trace_share(job.trace, -1);
    return job_result(&job);
}

int rb_pool_cores(void) {
    pthread_mutex_lock(&api_mu);
    int n = ncores();
    pthread_mutex_unlock(&api_mu);
    return n;
}

const char *rb_pool_binding(void) {
    /* The pool starts lazily, at the first parallel call; a record written before it (a run's
     * context) must still name the binding its kernels get, so the pool is matched here (not
     * from inside a task, whose caller holds api_mu and the pool as it is). */
    if (in_task) return pool.binding;
    pthread_mutex_lock(&api_mu);
    pool_match_locked();
    if (!pool.binding[0]) snprintf(pool.binding, sizeof pool.binding, "1 thread, unbound");
    pthread_mutex_unlock(&api_mu);
    return pool.binding;
}
