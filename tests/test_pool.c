/* Thread pool: every index once, chunk boundaries independent of the thread count, nested calls,
 * many back-to-back small jobs (the spin-then-sleep hand-off), and no CPU burnt while idle. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

enum { MAX_N = 4096 };

struct cover {
    atomic_int hits[MAX_N];
    size_t grain, n;
    atomic_int bad_chunk; /* a chunk whose bounds are not (c * grain, min(n, c * grain + grain)) */
};

static void cover_task(void *ctx, size_t begin, size_t end) {
    struct cover *c = ctx;
    if (begin % c->grain != 0 || end != (begin + c->grain < c->n ? begin + c->grain : c->n))
        atomic_store(&c->bad_chunk, 1);
    for (size_t i = begin; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
}

/* Runs one parallel_for over [0, n) and checks that each index ran once in its own chunk. */
static void check_cover(size_t n, size_t grain, int threads) {
    static struct cover c;
    memset(&c, 0, sizeof c);
    c.n = n;
    c.grain = grain;
    rb_parallel_for(n, grain, cover_task, &c);
    cr_assert(!atomic_load(&c.bad_chunk), "threads=%d n=%zu grain=%zu: chunk bounds moved", threads,
              n, grain);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&c.hits[i]), 1,
                     "threads=%d n=%zu grain=%zu: index %zu ran %d times", threads, n, grain, i,
                     atomic_load(&c.hits[i]));
}

/* More chunks than threads, fewer, one, and a last chunk shorter than the grain; 1 to 3 threads
 * (3 is more than this machine's cores: threads share them). */
Test(pool, every_index_once_in_fixed_chunks) {
    size_t shapes[][2] = {{1, 1}, {7, 3}, {64, 1}, {1000, 7}, {4096, 64}, {4095, 4096}, {5, 0}};
    for (int t = 1; t <= 3; t++) {
        cr_assert_eq(rb_threads_set(t), 0);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t grain = shapes[s][1] ? shapes[s][1] : 1; /* grain 0 means 1 */
            static struct cover c;
            memset(&c, 0, sizeof c);
            c.n = shapes[s][0];
            c.grain = grain;
            rb_parallel_for(shapes[s][0], shapes[s][1], cover_task, &c);
            cr_assert(!atomic_load(&c.bad_chunk), "threads=%d shape %zu: chunk bounds moved", t, s);
            for (size_t i = 0; i < c.n; i++)
                cr_assert_eq(atomic_load(&c.hits[i]), 1,
                             "threads=%d shape %zu: index %zu ran %d times", t, s, i,
                             atomic_load(&c.hits[i]));
        }
    }
    rb_threads_set(1);
}

/* Thousands of tiny jobs back to back: workers are caught while spinning, while going to sleep
 * and asleep; a lost job or a job collected while a worker is still in it shows up as a miss. */
Test(pool, back_to_back_small_jobs, .timeout = 60) {
    cr_assert_eq(rb_threads_set(2), 0);
    for (int j = 0; j < 3000; j++) {
        check_cover((size_t) (1 + j % 97), (size_t) (1 + j % 5), 2);
        if (j % 500 == 499) { /* let the workers fall asleep now and then */
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
    }
    rb_threads_set(1);
}

struct nested {
    atomic_int hits[64][64];
    atomic_int bad_chunk;
};

static void inner_task(void *ctx, size_t begin, size_t end) {
    atomic_int *row = ctx;
    for (size_t i = begin; i < end; i++) atomic_fetch_add(&row[i], 1);
}

static void outer_task(void *ctx, size_t begin, size_t end) {
    struct nested *p = ctx;
    for (size_t i = begin; i < end; i++) rb_parallel_for(64, 5, inner_task, p->hits[i]);
}

/* A task that calls rb_parallel_for runs the inner loop serially on its own thread. */
Test(pool, nested_calls_run_inline, .timeout = 30) {
    static struct nested p;
    cr_assert_eq(rb_threads_set(2), 0);
    for (int rep = 0; rep < 50; rep++) {
        memset(&p, 0, sizeof p);
        rb_parallel_for(64, 3, outer_task, &p);
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < 64; j++)
                cr_assert_eq(atomic_load(&p.hits[i][j]), 1, "rep %d: (%d, %d) ran %d times", rep, i,
                             j, atomic_load(&p.hits[i][j]));
    }
    rb_threads_set(1);
}

/* A worker that finishes its own range takes the rest of the caller's from the back: the caller's
 * first chunk waits (up to 5 s) until another thread has run one of the caller's chunks. Each index
 * still runs once. */
struct steal {
    pthread_t caller;
    atomic_int hits[64];
    atomic_int stolen; /* a chunk of the caller's range [0, 32) ran on another thread */
};

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
}

static void steal_task(void *ctx, size_t begin, size_t end) {
    struct steal *s = ctx;
    int on_caller = pthread_equal(pthread_self(), s->caller);
    for (size_t i = begin; i < end; i++) {
        atomic_fetch_add(&s->hits[i], 1);
        if (i < 32 && !on_caller) atomic_store(&s->stolen, 1);
    }
    if (begin == 0 && on_caller) {
        double deadline = mono_s() + 5;
        while (!atomic_load(&s->stolen) && mono_s() < deadline) {}
    }
}

Test(pool, idle_thread_steals_from_busy_one, .timeout = 30) {
    static struct steal s;
    cr_assert_eq(rb_threads_set(2), 0);
    for (int rep = 0; rep < 3; rep++) {
        memset(&s, 0, sizeof s);
        s.caller = pthread_self();
        rb_parallel_for(64, 1, steal_task, &s);
        cr_assert(atomic_load(&s.stolen), "rep %d: no chunk of the caller's range was stolen", rep);
        for (int i = 0; i < 64; i++)
            cr_assert_eq(atomic_load(&s.hits[i]), 1, "rep %d: index %d ran %d times", rep, i,
                         atomic_load(&s.hits[i]));
    }
    rb_threads_set(1);
}

/* Back-to-back small batched FWHTs with two threads give the reference's bits every time. */
Test(pool, back_to_back_fwht_same_bits, .timeout = 60) {
    uint64_t seed = rbt_seed();
    size_t n = 128, count = 2048, len = n * count;
    float *x = rbt_normal_f32(len, seed, 0), *want = malloc(len * sizeof *want),
          *y = malloc(len * sizeof *y);
    memcpy(want, x, len * sizeof *want);
    rb_fwht_f32_ref(want, n, count, n, (float) (1.0 / sqrt((double) n)));
    cr_assert_eq(rb_threads_set(2), 0);
    for (int rep = 0; rep < 200; rep++) {
        memcpy(y, x, len * sizeof *y);
        cr_assert_eq(rb_fwht_f32(y, n, count, n, RB_NORM_ORTHO, RB_ORDER_NATURAL), 0);
        cr_assert(memcmp(y, want, len * sizeof *y) == 0, "rep %d differs (seed=%llu)", rep,
                  (unsigned long long) seed);
    }
    rb_threads_set(1);
    free(x);
    free(want);
    free(y);
}

static double process_cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
}

/* After a job the workers spin only briefly (50 us): 0.5 s of idle time costs the process about
 * 1 ms of CPU. A spin of 1 s instead measured 0.12 s even on a machine loaded 5x (the spinning
 * worker gets a share of its core), so the bound below separates the two. */
Test(pool, idle_workers_sleep, .timeout = 30) {
    cr_assert_eq(rb_threads_set(2), 0);
    check_cover(100, 1, 2);
    double c0 = process_cpu_s();
    struct timespec ts = {0, 500000000};
    nanosleep(&ts, NULL);
    double used = process_cpu_s() - c0;
    rb_threads_set(1);
    cr_assert(used < 0.03, "idle pool used %.3f s of CPU in 0.5 s", used);
}

/* Chunks 3 and 7 fail; the caller sees chunk 3's code and message whatever the thread count and
 * whichever thread failed first. */
static void failing_task(void *ctx, size_t begin, size_t end) {
    (void) ctx;
    for (size_t i = begin; i < end; i++)
        if (i == 3 || i == 7) {
            rb_error_set(i == 3 ? RB_ESIZE : RB_EINVAL, "chunk %zu failed", i);
            rb_task_fail(i == 3 ? RB_ESIZE : RB_EINVAL);
        }
}

static void noop(void *ctx, size_t begin, size_t end) {
    (void) ctx, (void) begin, (void) end;
}

Test(pool, first_failure_reaches_the_caller) {
    for (int t = 1; t <= 3; t++) {
        cr_assert_eq(rb_threads_set(t), 0);
        rb_error_clear();
        cr_assert_eq(rb_parallel_for(64, 1, failing_task, NULL), RB_ESIZE, "threads %d", t);
        cr_assert_str_eq(rb_error_detail(), "chunk 3 failed", "threads %d", t);
        cr_assert_eq(rb_parallel_for(64, 1, noop, NULL), RB_OK);
    }
    rb_threads_set(1);
}

/* Kernel variants dispatched inside tasks land in the calling thread's trace, so the record of a
 * result never depends on which thread ran which chunk. */
/* Only the upper half of the chunks dispatches, and the lower half (the caller's own range with
 * 2 threads) is slow: the worker runs every dispatching chunk, so before workers forwarded their
 * notes the caller's trace came out empty. */
static void fwht_task(void *ctx, size_t begin, size_t end) {
    float *x = ctx;
    if (begin >= 32) {
        rb_fwht_f32(x + begin * 64, 64, end - begin, 64, RB_NORM_NONE, RB_ORDER_NATURAL);
        return;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 20000);
}

Test(pool, workers_record_variants_in_the_callers_trace) {
    float *x = calloc(64 * 64, sizeof *x);
    for (int t = 1; t <= 2; t++) {
        cr_assert_eq(rb_threads_set(t), 0);
        for (int rep = 0; rep < 20; rep++) {
            rb_kernel_trace_reset();
            cr_assert_eq(rb_parallel_for(64, 1, fwht_task, x), RB_OK);
            char buf[256];
            rb_kernel_trace(buf, sizeof buf);
            cr_assert(strstr(buf, "fwht_f32="), "threads %d rep %d: trace '%s'", t, rep, buf);
        }
    }
    rb_threads_set(1);
    free(x);
}

/* The binding names the pool at the current thread count even before a parallel call has
 * started it (a run's context is written before its first kernel), and follows a change of
 * count either way. */
Test(pool, binding_before_the_first_parallel_call) {
    cr_assert_eq(rb_threads_set(3), 0);
    cr_assert(strstr(rb_pool_binding(), "3 threads"), "%s", rb_pool_binding());
    cr_assert_eq(rb_threads_set(1), 0);
    cr_assert_str_eq(rb_pool_binding(), "1 thread, unbound");
    cr_assert_eq(rb_threads_set(2), 0);
    cr_assert(strstr(rb_pool_binding(), "2 threads"), "%s", rb_pool_binding());
    rb_threads_set(1);
}

/* The binding says how the threads really share cores: one per core up to the core count, then
 * "N threads on C cores (K per core)" (thread i on core i mod C), never "one per core". */
Test(pool, binding_names_threads_sharing_cores) {
    int c = rb_pool_cores();
    cr_assert_geq(c, 1);
    static const struct {
        int times, plus; /* threads = times * cores + plus */
        const char *has;
    } cases[] = {
        {1, 0, "one per core"},
        {2, 0, "(2 per core)"},
        {1, 1, "(up to 2 per core)"},
        {3, 0, "(3 per core)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int t = cases[i].times * c + cases[i].plus;
        if (t < 2 || t > RB_THREADS_MAX || (c == 1 && cases[i].plus)) continue; /* 1: unbound */
        cr_assert_eq(rb_threads_set(t), 0);
        const char *b = rb_pool_binding();
        char want[64];
        snprintf(want, sizeof want, "%d threads", t);
        cr_assert(strstr(b, want), "%d threads on %d cores: %s", t, c, b);
        if (t > c) {
            snprintf(want, sizeof want, "on %d cores", c);
            cr_assert(strstr(b, want) && strstr(b, cases[i].has), "%d on %d: %s", t, c, b);
            cr_assert_null(strstr(b, "one per core"), "%s", b);
        } else {
            cr_assert(strstr(b, cases[i].has), "%d on %d: %s", t, c, b);
        }
    }
    rb_threads_set(1);
}
