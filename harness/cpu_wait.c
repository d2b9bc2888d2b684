/* CPU wait of the process over a measurement window, from procfs (see cpu_wait.h). */
#include "harness/cpu_wait.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Adds a thread's "run_ns wait_ns timeslices" to s; 0 on success. */
static int add_task(rb_cpu_wait *s, const char *tid) {
    char path[300]; /* a d_name is at most 255 bytes */
    snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    uint64_t run, wait;
    int n = fscanf(f, "%" SCNu64 " %" SCNu64, &run, &wait);
    fclose(f);
    if (n != 2) return -1;
    s->run_ns += run;
    s->wait_ns += wait;
    return 0;
}

/* The machine's steal and total jiffies from the "cpu" line of /proc/stat; 0 on success. */
static int read_steal(rb_cpu_wait *s) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    uint64_t v[8] = {0};
    int n = fscanf(f,
                   "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64 " %" SCNu64,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4) return -1;
    /* user nice system idle iowait irq softirq steal; guest time is already in user */
    s->steal = n == 8 ? v[7] : 0;
    s->total = 0;
    for (int i = 0; i < n; i++) s->total += v[i];
    return 0;
}

void rb_cpu_wait_now(rb_cpu_wait *s) {
    memset(s, 0, sizeof *s);
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    struct dirent *e;
    int ok = 1, tasks = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        /* a thread may exit between readdir and fopen: it no longer waits for anything */
        if (add_task(s, e->d_name) == 0) tasks++;
    }
    closedir(d);
    if (!tasks || read_steal(s)) ok = 0;
    s->ok = ok;
}

double rb_cpu_wait_fraction(const rb_cpu_wait *a, const rb_cpu_wait *b) {
    if (!a->ok || !b->ok || b->run_ns < a->run_ns || b->wait_ns < a->wait_ns ||
        b->total < a->total || b->steal < a->steal)
        return NAN;
    double run = (double) (b->run_ns - a->run_ns), wait = (double) (b->wait_ns - a->wait_ns);
    if (run + wait <= 0) return NAN;
    /* Steal is per machine, and a guest kernel that accounts it leaves it out of the threads'
     * run time, so it is a second, independent loss: the share of the machine's time the
     * hypervisor kept (it does not say which vCPU lost it when). */
    double dt = (double) (b->total - a->total);
    double steal = dt > 0 ? (double) (b->steal - a->steal) / dt : 0;
    double f = 1 - (1 - wait / (run + wait)) * (1 - steal);
    return f < 0 ? 0 : f > 1 ? 1 : f;
}
