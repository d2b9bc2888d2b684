/* Lloyd-Max codebooks: exact cell masses and first moments (GSL special functions), Lloyd
 * iteration with Newton acceleration, symmetry, and a thread-safe per-(dist, d, b) cache. */
#include "kernels/lloyd.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_math.h>
#include <gsl/gsl_sf_erf.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

/* The solver works on the positive half-line in z units: both sources are symmetric, every
 * codebook has an even number of levels, so the middle threshold is exactly 0 and the negative
 * half mirrors the positive one. K = 2^(b-1) cells [t_{i-1}, t_i], t_0 = 0, t_K = upper. */
typedef struct src {
    int sphere;
    double d, alpha; /* sphere: d and the Beta parameter (d-1)/2 */
    double sqrt_d;
    double norm;  /* sphere: 1 / integral of sphere_kernel over the whole line (z units) */
    double upper; /* +inf for N(0,1), sqrt(d) for the sphere */
    gsl_integration_workspace *ws; /* sphere: quadrature workspace (QUAD_LIMIT intervals) */
} src;

#define QUAD_LIMIT 256

/* GSL's default error handler aborts the process; every GSL call here checks its status instead,
 * so the handler is switched off once (process-wide; GSL has no per-call handler). */
static pthread_once_t gsl_once = PTHREAD_ONCE_INIT;
static void gsl_quiet(void) {
    gsl_set_error_handler_off();
}

/* Unnormalized sphere density in z units, (1 - z^2/d)^((d-3)/2). */
static double sphere_kernel(double z, void *p) {
    const src *s = p;
    double x = z / s->sqrt_d;
    return x >= 1.0 ? 0.0 : exp(0.5 * (s->d - 3) * log1p(-x * x));
}

/* Mass of the cell [a, b], 0 <= a < b <= upper.
 * N(0,1): Q(a) - Q(b) with the upper-tail function, so tail cells keep relative accuracy.
 * Sphere: adaptive Gauss-Kronrod quadrature of the density over the cell. The closed form
 * I_x((d-1)/2, (d-1)/2) (gsl_sf_beta_inc) was the first choice, but its continued fraction loses
 * accuracy in proportion to d (relative error ~3e-14 at d = 128, 3e-12 at d = 3072, 4e-11 at
 * d = 65536, and up to 1e-10 in differences of two values), and that noise is above the 1e-12
 * convergence test, so Lloyd never settles at large d and b. Quadrature of the smooth integrand
 * over one cell has no cancellation and gives ~1e-15 for every d; the tests cross-check it against
 * the closed form where that is accurate. Beyond z = 60 the sphere density is below e^-500 for
 * every d >= 8 (and the support ends at sqrt(d) < 60 below that), so the tail cell stops there. */
static int src_mass(const src *s, double a, double b, double *out) {
    if (!s->sphere) {
        *out = gsl_sf_erf_Q(a) - (isinf(b) ? 0.0 : gsl_sf_erf_Q(b));
        return 0;
    }
    if (s->d == 2) {
        /* Arcsine law: the kernel (1 - x^2)^(-1/2) is infinite at x = 1, where quadrature is
         * noisy; its integral is asin, and asin(xb) - asin(xa) is taken as one asin of
         * xb sqrt(1 - xa^2) - xa sqrt(1 - xb^2) so narrow cells do not cancel. */
        double xa = a / s->sqrt_d, xb = fmin(b / s->sqrt_d, 1.0);
        double r = asin(xb * sqrt(1 - xa * xa) - xa * sqrt(1 - xb * xb));
        *out = s->norm * s->sqrt_d * r;
        return 0;
    }
    gsl_function f = {sphere_kernel, (void *) s};
    double r, err, hi = fmin(b, a + 60.0);
    int st = gsl_integration_qags(&f, a, hi, 0.0, 1e-13, QUAD_LIMIT, s->ws, &r, &err);
    if (st != GSL_SUCCESS && st != GSL_EROUND)
        return rb_error_set(RB_ELIB, "lloyd: quadrature of the d = %g density over [%g, %g]: %s",
                            s->d, a, hi, gsl_strerror(st));
    *out = s->norm * r;
    return 0;
}

/* Integral of z f(z) over [a, b], 0 <= a < b <= upper, in closed form. The difference of the
 * antiderivative is written with expm1/log1p so that narrow cells near 0 (b = 8 has cells 0.01
 * wide) keep full relative accuracy instead of cancelling. */
static double src_moment1(const src *s, double a, double b) {
    if (!s->sphere) {
        /* phi(a) - phi(b) = phi(a) (1 - exp(-(b - a)(b + a)/2)). */
        double pa = exp(-0.5 * a * a) / sqrt(2 * M_PI);
        if (isinf(b)) return pa;
        return pa * -expm1(-0.5 * (b - a) * (b + a));
    }
    /* int z (1 - z^2/d)^((d-3)/2) dz = -d/(2 alpha) G(z), G(z) = (1 - z^2/d)^alpha, and
     * G(a) - G(b) = G(a) (1 - ((d - b^2)/(d - a^2))^alpha). */
    double pre = s->norm * s->d / (2 * s->alpha) * exp(s->alpha * log1p(-a * a / s->d));
    if (b >= s->upper) return pre;
    return pre * -expm1(s->alpha * log1p(-(b - a) * (b + a) / (s->d - a * a)));
}

/* Density of z at an interior point (only used for Newton's Jacobian). */
static double src_pdf(const src *s, double z) {
    if (!s->sphere) return exp(-0.5 * z * z) / sqrt(2 * M_PI);
    return s->norm * sphere_kernel(z, (void *) s);
}

/* Masses m[1..K] and conditional means c[1..K] of the cells of t[0..K]. */
static int cells(const src *s, int K, const double *t, double *m, double *c) {
    for (int i = 1; i <= K; i++) {
        int rc = src_mass(s, t[i - 1], t[i], &m[i]);
        if (rc) return rc;
        if (!(m[i] > 0))
            return rb_error_set(RB_ENOCONV, "lloyd: cell [%g, %g] has mass %g", t[i - 1], t[i],
                                m[i]);
        c[i] = src_moment1(s, t[i - 1], t[i]) / m[i];
    }
    return 0;
}

/* Fixed-point residual F_j = (c_j + c_{j+1})/2 - t_j, j = 1..K-1; returns max |F_j|. */
static double residual(int K, const double *t, const double *c, double *F) {
    double n = 0;
    for (int j = 1; j < K; j++) {
        F[j] = 0.5 * (c[j] + c[j + 1]) - t[j];
        n = fmax(n, fabs(F[j]));
    }
    return n;
}

static int ordered(const src *s, int K, const double *t) {
    for (int j = 1; j < K; j++)
        if (!(t[j] > t[j - 1])) return 0;
    return K < 2 || t[K - 1] < s->upper;
}

/* Damped Newton on F(t) = 0. The Jacobian is tridiagonal: c_i depends on its own two ends with
 * dc/d(upper) = f(b)(b - c)/m and dc/d(lower) = f(a)(c - a)/m. Stops when a step no longer
 * reduces the residual (the noise floor of the special functions). Never fails: the Lloyd
 * iterations that follow decide convergence. */
static int newton(const src *s, int K, double *t, double *m, double *c, int *steps) {
    int n = K - 1, rc = 0;
    double *w = malloc(sizeof(double) * (size_t) (9 * (K + 1)));
    if (!w) return rb_error_set(RB_ENOMEM, "lloyd: out of memory");
    double *F = w, *lo = w + (K + 1), *di = w + 2 * (K + 1), *up = w + 3 * (K + 1);
    double *dx = w + 4 * (K + 1), *tn = w + 5 * (K + 1), *mn = w + 6 * (K + 1);
    double *cn = w + 7 * (K + 1), *Fn = w + 8 * (K + 1);
    if ((rc = cells(s, K, t, m, c))) goto done;
    double norm = residual(K, t, c, F);
    for (int it = 0; it < 100 && n > 0; it++) {
        /* dcu[i] = dc_i/dt_i, dcl[i] = dc_i/dt_{i-1} */
        for (int j = 1; j <= n; j++) {
            double f = src_pdf(s, t[j]);
            double dcu = f * (t[j] - c[j]) / m[j];         /* cell j, upper end t_j */
            double dcl = f * (c[j + 1] - t[j]) / m[j + 1]; /* cell j+1, lower end t_j */
            di[j] = 0.5 * (dcu + dcl) - 1.0;
            if (j > 1) lo[j] = 0.5 * src_pdf(s, t[j - 1]) * (c[j] - t[j - 1]) / m[j];
            if (j < n) up[j] = 0.5 * src_pdf(s, t[j + 1]) * (t[j + 1] - c[j + 1]) / m[j + 1];
        }
        /* Thomas algorithm on J dx = -F (diagonally dominant: |di| ~ 1, off-diagonals small). */
        for (int j = 1; j <= n; j++) dx[j] = -F[j];
        for (int j = 2; j <= n; j++) {
            double r = lo[j] / di[j - 1];
            di[j] -= r * up[j - 1];
            dx[j] -= r * dx[j - 1];
        }
        dx[n] /= di[n];
        for (int j = n - 1; j >= 1; j--) dx[j] = (dx[j] - up[j] * dx[j + 1]) / di[j];

        double lam = 1.0, nn = INFINITY;
        for (int h = 0; h < 40; h++, lam *= 0.5) {
            tn[0] = t[0];
            tn[K] = t[K];
            for (int j = 1; j <= n; j++) tn[j] = t[j] + lam * dx[j];
            if (!ordered(s, K, tn)) continue;
            if (cells(s, K, tn, mn, cn)) continue;
            nn = residual(K, tn, cn, Fn);
            if (nn < norm) break;
        }
        if (!(nn < norm)) break;
        memcpy(t, tn, sizeof(double) * (size_t) (K + 1));
        memcpy(m, mn, sizeof(double) * (size_t) (K + 1));
        memcpy(c, cn, sizeof(double) * (size_t) (K + 1));
        memcpy(F, Fn, sizeof(double) * (size_t) (K + 1));
        norm = nn;
        ++*steps;
    }
done:
    free(w);
    return rc;
}

rb_lloyd_opts rb_lloyd_opts_default(void) {
    return (rb_lloyd_opts){.tol = 1e-12, .max_iter = 200000, .newton = 1};
}

const char *rb_lloyd_dist_name(enum rb_lloyd_dist dist) {
    return dist == RB_LLOYD_GAUSSIAN ? "gaussian" : dist == RB_LLOYD_SPHERE ? "sphere" : "?";
}

int rb_lloyd_solve(enum rb_lloyd_dist dist, int dim, int bits, const rb_lloyd_opts *opts,
                   rb_lloyd_max *out) {
    pthread_once(&gsl_once, gsl_quiet);
    rb_lloyd_opts o = opts ? *opts : rb_lloyd_opts_default();
    if (dist != RB_LLOYD_GAUSSIAN && dist != RB_LLOYD_SPHERE)
        return rb_error_set(RB_EINVAL, "lloyd: unknown distribution %d", (int) dist);
    if (bits < 1 || bits > RB_LLOYD_MAX_BITS)
        return rb_error_set(RB_EINVAL, "lloyd: bits = %d is not supported (1..%d)", bits,
                            RB_LLOYD_MAX_BITS);
    if (dist == RB_LLOYD_SPHERE && (dim < 2 || dim > RB_LLOYD_MAX_DIM))
        return rb_error_set(RB_EINVAL, "lloyd: sphere dimension d = %d is not supported (2..%d)",
                            dim, RB_LLOYD_MAX_DIM);
    if (!(o.tol > 0) || o.max_iter < 1)
        return rb_error_set(RB_EINVAL, "lloyd: tol = %g, max_iter = %d", o.tol, o.max_iter);

    int K = 1 << (bits - 1), rc = 0;
    double *t = NULL, *m = NULL, *c = NULL, *cprev = NULL;
    src s = {0};
    s.sphere = dist == RB_LLOYD_SPHERE;
    if (s.sphere) {
        s.d = dim;
        s.alpha = 0.5 * (dim - 1);
        s.sqrt_d = sqrt((double) dim);
        s.upper = s.sqrt_d;
        s.ws = gsl_integration_workspace_alloc(QUAD_LIMIT);
        /* The normalizer is integrated too, with the same rule as the cells, rather than taken
         * from Gamma(d/2)/(sqrt(pi d) Gamma((d-1)/2)): gsl_sf_lnpoch and lngamma differences
         * lose ~d * 1e-16 relative (8e-9 at d = 2^24), and this way the cell masses sum to 1/2
         * to quadrature accuracy for every d. Centroids do not depend on it at all (both the
         * mass and the first moment of a cell carry the factor). */
        s.norm = 1.0;
        if (s.ws) {
            double half;
            if ((rc = src_mass(&s, 0.0, s.upper, &half))) goto fail;
            s.norm = 0.5 / half;
        }
    } else {
        s.sqrt_d = 1;
        s.upper = INFINITY;
    }

    size_t sz = sizeof(double) * (size_t) (K + 1);
    t = malloc(sz);
    m = malloc(sz);
    c = malloc(sz);
    cprev = malloc(sz);
    if (!t || !m || !c || !cprev || (s.sphere && !s.ws)) {
        rc = rb_error_set(RB_ENOMEM, "lloyd: out of memory");
        goto fail;
    }

    /* Start: the high-rate (Panter-Dite) compander, thresholds at the quantiles of f^(1/3).
     * For N(0,1) that is N(0, 3); for the sphere, f^(1/3) ~ (1 - x^2)^((d-3)/6) is the same
     * family with Beta parameter (d + 3)/6, which stays inside [-1, 1] for small d; above
     * d = 256 the N(0, 3) start is used for both (the z density is close to N(0,1) there, and
     * its largest start threshold, 4.6, lies well inside sqrt(d)). */
    t[0] = 0;
    t[K] = s.upper;
    for (int j = 1; j < K; j++) {
        double q = 0.5 + 0.5 * (double) j / K;
        if (s.sphere && dim <= 256) { /* gsl_cdf_beta_Pinv fails for large parameters */
            double a3 = (dim + 3) / 6.0;
            t[j] = s.sqrt_d * (2 * gsl_cdf_beta_Pinv(q, a3, a3) - 1);
        } else {
            t[j] = sqrt(3.0) * gsl_cdf_ugaussian_Pinv(q);
        }
    }
    if (!ordered(&s, K, t)) {
        rc = rb_error_set(RB_ELIB, "lloyd: bad starting thresholds (d = %d, b = %d)", dim, bits);
        goto fail;
    }

    memset(out, 0, sizeof *out);
    if (o.newton && (rc = newton(&s, K, t, m, c, &out->newton_steps))) goto fail;

    /* Plain Lloyd: centroids = conditional means, thresholds = midpoints. Converged when every
     * centroid moves less than tol relative to itself (no absolute floor: the cell moments are
     * accurate to ~1e-15 relative even for the 0.01-wide cells next to 0 at b = 8). After the
     * Newton steps one such iteration normally suffices; without them (opts.newton = 0) plain
     * Lloyd needs ~600 iterations at b = 4 and ~7700 at b = 6. */
    if ((rc = cells(&s, K, t, m, c))) goto fail;
    int it = 0;
    double move = INFINITY;
    while (!(move < o.tol)) {
        if (it >= o.max_iter) {
            rc = rb_error_set(RB_ENOCONV,
                              "lloyd: %s d = %d b = %d not converged after %d iterations "
                              "(centroid movement %.3g, tolerance %.3g)",
                              rb_lloyd_dist_name(dist), dim, bits, it, move, o.tol);
            goto fail;
        }
        memcpy(cprev, c, sz);
        for (int j = 1; j < K; j++) t[j] = 0.5 * (c[j] + c[j + 1]);
        if ((rc = cells(&s, K, t, m, c))) goto fail;
        move = 0;
        for (int i = 1; i <= K; i++) move = fmax(move, fabs(c[i] - cprev[i]) / fabs(cprev[i]));
        it++;
    }

    double sum_m = 0, sum_m1c = 0, ent = 0;
    for (int i = 1; i <= K; i++) {
        sum_m += m[i];
        sum_m1c += m[i] * c[i] * c[i];
        ent -= m[i] * log2(m[i]);
    }
    RB_ASSERT(fabs(2 * sum_m - 1) < 1e-10);

    out->dist = dist;
    out->dim = s.sphere ? dim : 0;
    out->bits = bits;
    out->levels = (size_t) 2 * K;
    out->z_scale = s.sqrt_d;
    for (int i = 1; i <= K; i++) {
        out->centroids[K + i - 1] = c[i] / s.sqrt_d;
        out->centroids[K - i] = -c[i] / s.sqrt_d;
    }
    out->thresholds[K - 1] = 0;
    for (int j = 1; j < K; j++) {
        out->thresholds[K - 1 + j] = t[j] / s.sqrt_d;
        out->thresholds[K - 1 - j] = -t[j] / s.sqrt_d;
    }
    /* E[z^2] = 1 for both sources (E[x^2] = 1/d on the sphere); with c = conditional means the
     * MSE is E[z^2] - sum m c^2. */
    out->d_mse = 1.0 - 2 * sum_m1c;
    out->mse = out->d_mse / (s.sqrt_d * s.sqrt_d);
    out->entropy = 2 * ent;
    out->max_move = move;
    out->iterations = it;

fail:
    free(t);
    free(m);
    free(c);
    free(cprev);
    if (s.ws) gsl_integration_workspace_free(s.ws);
    return rc;
}

/* The cache: a list of heap entries that are never freed, so returned pointers live as long as
 * the process. Solving happens under the lock (milliseconds), which keeps one solve per key. */
typedef struct cache_entry {
    struct cache_entry *next;
    rb_lloyd_max cb;
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache_head;

int rb_lloyd_codebook(enum rb_lloyd_dist dist, int dim, int bits, const rb_lloyd_max **out) {
    if (dist == RB_LLOYD_GAUSSIAN) dim = 0;
    int rc = 0;
    pthread_mutex_lock(&cache_lock);
    for (cache_entry *e = cache_head; e; e = e->next)
        if (e->cb.dist == dist && e->cb.dim == dim && e->cb.bits == bits) {
            *out = &e->cb;
            goto done;
        }
    cache_entry *e = malloc(sizeof *e);
    if (!e) {
        rc = rb_error_set(RB_ENOMEM, "lloyd: out of memory");
        goto done;
    }
    rb_lloyd_opts o = rb_lloyd_opts_default();
    if ((rc = rb_lloyd_solve(dist, dim, bits, &o, &e->cb))) {
        free(e);
        goto done;
    }
    e->next = cache_head;
    cache_head = e;
    *out = &e->cb;
done:
    pthread_mutex_unlock(&cache_lock);
    return rc;
}

size_t rb_lloyd_index(const rb_lloyd_max *cb, double x) {
    size_t lo = 0, hi = cb->levels - 1; /* answer in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2; /* is thresholds[mid] <= x? then answer > mid */
        if (cb->thresholds[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
