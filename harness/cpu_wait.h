/* How long the process's threads waited for a CPU while a timing ran: the share of a latency
 * measurement that says "the machine was busy", not "the code is slow". Linux reports, per
 * thread, the time it ran and the time it was runnable but queued (/proc/self/task/TID/schedstat),
 * and per machine the time the hypervisor took from its virtual CPUs (steal, /proc/stat). */
#ifndef RB_CPU_WAIT_H
#define RB_CPU_WAIT_H

#include <stdint.h>

typedef struct rb_cpu_wait {
    uint64_t run_ns, wait_ns; /* summed over the process's threads */
    uint64_t steal, total;    /* /proc/stat jiffies: stolen, and all of them */
    int ok;                   /* 0 where the files could not be read (not Linux, no procfs) */
} rb_cpu_wait;

/* A latency row whose threads waited longer than this share of the time they wanted a CPU was
 * measured on a busy machine: `run` warns about it and `compare` does not grade it (its default
 * --max-cpu-wait). 5%: an idle machine's rows wait well under 1%, and waits of 10% would by
 * themselves move a median by the default 10% latency threshold. */
#define RB_CPU_WAIT_BUSY 0.05

/* Reads the counters now. */
void rb_cpu_wait_now(rb_cpu_wait *s);

/* Of the time the process's threads wanted a CPU between `a` and `b`, the fraction they did not
 * get one: queued / (queued + running), combined with the machine's stolen share of the
 * interval as an independent loss (1 - (1 - queued share)(1 - stolen share)), in [0, 1]. NaN when
 * either reading failed, when no thread ran in between, or when the counters went backwards
 * (a thread that exited took its counts with it). */
double rb_cpu_wait_fraction(const rb_cpu_wait *a, const rb_cpu_wait *b);

#endif
