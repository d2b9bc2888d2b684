/* Shared helpers for the tests. */
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kernels/rng.h"

uint64_t rbt_seed(void) {
    const char *env = getenv("RB_TEST_SEED");
    if (env) return strtoull(env, NULL, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return rb_seed_derive((uint64_t) ts.tv_nsec, (uint64_t) ts.tv_sec, (uint64_t) getpid());
}

float *rbt_normal_f32(size_t n, uint64_t seed, uint64_t stream) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    rb_rng_normal_f32(seed, stream, 0, n, x);
    return x;
}

double *rbt_normal_f64(size_t n, uint64_t seed, uint64_t stream) {
    double *x = malloc((n ? n : 1) * sizeof *x);
    rb_rng_normal_f64(seed, stream, 0, n, x);
    return x;
}

double rbt_max_relerr_f32(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double) a[i] - b[i]) / fmax(1.0, fabs((double) b[i]));
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}
