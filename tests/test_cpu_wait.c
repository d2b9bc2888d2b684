/* harness/cpu_wait.c: the share of the time the process's threads waited for a CPU. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "harness/cpu_wait.h"

/* Counter pairs and the fraction they give (steal and total are machine jiffies). */
Test(cpu_wait, fraction_from_counters) {
    static const struct {
        rb_cpu_wait a, b;
        double want; /* NaN: no answer */
    } cases[] = {
        /* 3 s run, 1 s queued: 25%; no steal */
        {{0, 0, 0, 100, 1}, {3000000000u, 1000000000u, 0, 200, 1}, 0.25},
        /* never queued, no steal */
        {{5, 5, 0, 100, 1}, {1000000005u, 5, 0, 200, 1}, 0.0},
        /* not queued, but the hypervisor took 10% of the machine's time */
        {{0, 0, 10, 100, 1}, {1000000000u, 0, 20, 200, 1}, 0.10},
        /* both: 1 - (1 - 0.5)(1 - 0.2) */
        {{0, 0, 0, 0, 1}, {1000000000u, 1000000000u, 20, 100, 1}, 0.60},
        /* a reading that failed */
        {{0, 0, 0, 0, 0}, {1000, 1000, 0, 100, 1}, NAN},
        {{0, 0, 0, 0, 1}, {1000, 1000, 0, 100, 0}, NAN},
        /* nothing ran in between */
        {{7, 7, 0, 100, 1}, {7, 7, 0, 200, 1}, NAN},
        /* counters that went backwards: a thread exited with its counts */
        {{2000, 0, 0, 100, 1}, {1000, 500, 0, 200, 1}, NAN},
        {{0, 2000, 0, 100, 1}, {1000, 500, 0, 200, 1}, NAN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double f = rb_cpu_wait_fraction(&cases[i].a, &cases[i].b);
        if (isnan(cases[i].want))
            cr_assert(isnan(f), "case %zu: %g, expected NaN", i, f);
        else
            cr_assert(fabs(f - cases[i].want) < 1e-12, "case %zu: %g, expected %g", i, f,
                      cases[i].want);
    }
}

static atomic_int stop;

static void *spin(void *arg) {
    cpu_set_t *one = arg;
    pthread_setaffinity_np(pthread_self(), sizeof *one, one);
    while (!atomic_load(&stop)) {}
    return NULL;
}

/* Three threads on one CPU want it all the time: each gets about a third and waits for the rest,
 * so the process waited about two thirds of the time its threads wanted a CPU. Whatever else the
 * machine runs only adds waiting; a reading that misses the queueing reads near 0. */
Test(cpu_wait, three_threads_on_one_cpu_wait) {
    rb_cpu_wait a, b;
    rb_cpu_wait_now(&a);
    if (!a.ok) cr_skip_test("no /proc/self/task/*/schedstat or /proc/stat here");
    cpu_set_t one;
    CPU_ZERO(&one);
    cr_assert_eq(sched_getaffinity(0, sizeof one, &one), 0);
    int cpu = 0;
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &one)) cpu++;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    cr_assert_eq(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&t[i], NULL, spin, &one), 0);
    rb_cpu_wait_now(&a);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t1);
    while ((double) (t1.tv_sec - t0.tv_sec) + 1e-9 * (double) (t1.tv_nsec - t0.tv_nsec) < 0.4);
    rb_cpu_wait_now(&b);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    double f = rb_cpu_wait_fraction(&a, &b);
    cr_assert(f > 0.4 && f <= 1, "three threads on one CPU waited %g of the time", f);
}
