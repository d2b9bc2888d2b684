/* The sparse evaluator: runs a sparse recovery method on `trials` independent signals (the
 * method's `trials` parameter; trial 0 is the cell's dataset, trial t > 0 its redraw(t), each
 * with method seed rb_seed_derive(seed, TRIAL, t)), through a counting oracle, and scores the
 * recovered spectrum against the truth tensors "support" and "coef". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datasets/synth.h"
#include "harness/eval.h"

enum {
    STREAM_TRIAL = 0x54524941, /* "TRIA" */
    BITMAP_LOG2N_MAX = 27,     /* distinct samples in a bitmap up to N = 2^27 (16 MiB) */
    SPEEDUP_LOG2N_MAX = 26     /* fwht_full runs for the speedup up to N = 2^26 */
};

/* A /proc/self/status field in kB, or -1. */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (kb < 0 && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* Starts a peak-memory window: resets the kernel's resident-set high-water mark (writing 5 to
 * /proc/self/clear_refs, Linux >= 4.0) and returns the resident set now (kB), or -1 when the
 * platform cannot say. */
static long peak_window_open(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    if (fclose(f) != 0 || !ok) return -1;
    return status_kb("VmRSS");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* ---- the counting oracle: the dataset's sampler, plus the set of distinct indices ---- */

typedef struct counting {
    const rb_dataset *ds;
    int track;
    uint64_t *bits; /* bitmap over N (small N) */
    uint64_t *set;  /* else open addressing of index + 1 */
    size_t slots, distinct;
} counting;

static size_t slot_of(uint64_t v, size_t slots) {
    return (size_t) ((v * UINT64_C(0x9e3779b97f4a7c15)) >> 17) & (slots - 1);
}

static int set_insert(counting *c, uint64_t v) {
    if (2 * (c->distinct + 1) > c->slots) {
        size_t ns = c->slots ? 2 * c->slots : 1024;
        uint64_t *t = calloc(ns, sizeof *t);
        if (!t) return rb_error_set(RB_ENOMEM, "sparse evaluator: no memory for distinct samples");
        for (size_t i = 0; i < c->slots; i++)
            if (c->set[i]) {
                size_t h = slot_of(c->set[i] - 1, ns);
                while (t[h]) h = (h + 1) & (ns - 1);
                t[h] = c->set[i];
            }
        free(c->set);
        c->set = t, c->slots = ns;
    }
    size_t h = slot_of(v, c->slots);
    while (c->set[h] && c->set[h] != v + 1) h = (h + 1) & (c->slots - 1);
    if (!c->set[h]) c->set[h] = v + 1, c->distinct++;
    return RB_OK;
}

static int counting_query(void *ctx, const uint64_t *idx, size_t count, double *out) {
    counting *c = ctx;
    int rc = c->ds->sample(c->ds, idx, count, out);
    if (rc || !c->track) return rc;
    uint64_t n = UINT64_C(1) << c->ds->log2n;
    for (size_t i = 0; i < count; i++) {
        if (idx[i] >= n) continue; /* the sampler already refused it */
        if (c->bits) {
            uint64_t w = idx[i] >> 6, m = UINT64_C(1) << (idx[i] & 63);
            c->distinct += !(c->bits[w] & m);
            c->bits[w] |= m;
        } else if ((rc = set_insert(c, idx[i]))) {
            return rc;
        }
    }
    return RB_OK;
}

static int counting_init(counting *c, const rb_dataset *ds, int track) {
    memset(c, 0, sizeof *c);
    c->ds = ds;
    c->track = track;
    if (track && ds->log2n <= BITMAP_LOG2N_MAX) {
        c->bits = calloc(((size_t) 1 << ds->log2n) / 64 + 1, sizeof *c->bits);
        if (!c->bits) return rb_error_set(RB_ENOMEM, "sparse evaluator: no memory");
    }
    return RB_OK;
}

static void counting_free(counting *c) {
    free(c->bits);
    free(c->set);
}

/* ---- scoring one trial ---- */

typedef struct score {
    int success;
    size_t fp, fn;
    double nmse;
} score;

/* Both lists are in ascending index order (the dataset's support is sorted; methods emit sorted).
 */
static score score_trial(const rb_tensor *sup, const rb_tensor *coef, const rb_sparse_coef *got,
                         size_t nfound, double tol) {
    size_t K = coef->shape[0], i = 0, j = 0;
    score s = {1, 0, 0, 0};
    double err = 0, pow = 0;
    while (i < K || j < nfound) {
        uint64_t ti = i < K ? rb_sparse_support_index(sup, i) : UINT64_MAX;
        if (j < nfound && (i == K || got[j].index < ti)) {
            s.fp++;
            err += got[j].value * got[j].value;
            j++;
        } else if (j == nfound || got[j].index > ti) {
            double x = coef->data[i];
            s.fn++;
            err += x * x, pow += x * x;
            i++;
        } else {
            double x = coef->data[i], d = got[j].value - x;
            if (fabs(d) > tol * fabs(x)) s.success = 0;
            err += d * d, pow += x * x;
            i++, j++;
        }
    }
    if (s.fp || s.fn) s.success = 0;
    s.nmse = pow > 0 ? err / pow : (err > 0 ? INFINITY : 0);
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void rb_wilson_interval(size_t successes, size_t n, double z, double *lo, double *hi) {
    if (n == 0) {
        *lo = 0, *hi = 1;
        return;
    }
    double p = (double) successes / (double) n, nn = (double) n, z2 = z * z;
    double den = 1 + z2 / nn, center = (p + z2 / (2 * nn)) / den;
    double half = z / den * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    /* Exact at the ends (the formula leaves rounding residue there). */
    *lo = successes == 0 ? 0 : fmax(0, center - half);
    *hi = successes == n ? 1 : fmin(1, center + half);
}

/* fwht_full (fastest kernel, fp32, keeping K) on the cell's signal: the median of up to three
 * runs' wall times. */
static int full_time(const rb_dataset *ds, size_t K, size_t runs, double *t) {
    const rb_method *full = rb_method_find("fwht_full");
    RB_ASSERT(full != NULL);
    rb_params fp;
    char kt[32];
    snprintf(kt, sizeof kt, "%zu", K);
    int rc = rb_params_init(&fp, full->params, full->nparams);
    if (!rc) rc = rb_params_set(&fp, "precision", "f32");
    if (!rc) rc = rb_params_set(&fp, "k", kt);
    rb_sparse_coef *out = malloc((K + 1) * sizeof *out);
    if (!rc && !out) rc = rb_error_set(RB_ENOMEM, "speedup: no memory");
    double ts[3];
    for (size_t r = 0; !rc && r < runs; r++) {
        counting c;
        rc = counting_init(&c, ds, 0);
        rb_signal_oracle o = {ds->log2n, counting_query, &c, 0};
        size_t found;
        double t0 = now_s();
        if (!rc) rc = full->sparse->recover(&fp, &o, 0, out, K + 1, &found);
        ts[r] = now_s() - t0;
        counting_free(&c);
    }
    free(out);
    if (!rc) *t = median(ts, runs);
    return rc;
}

int rb_eval_sparse_no_signal(const rb_method *m) {
    return rb_error_set(RB_EINVAL,
                        "%s: the dataset has no signal oracle (sparse methods need a sampled "
                        "signal: kind sparse_wht or sparse_npy)",
                        m->name);
}

int rb_eval_sparse(const rb_method *m, const rb_params *p, const rb_dataset *ds, uint64_t seed,
                   const char *const *metrics, size_t nmetrics, rb_metric_sink sink, void *ctx) {
    if (!ds->sample) return rb_eval_sparse_no_signal(m);
    const rb_tensor *sup0 = rb_dataset_tensor(ds, "support"),
                    *coef0 = rb_dataset_tensor(ds, "coef");
    if (!sup0 || !coef0 || coef0->ndim != 1 || sup0->shape[0] != coef0->shape[0])
        return rb_error_set(RB_EINVAL,
                            "%s: the dataset has no truth tensors 'support' and 'coef' to score "
                            "against",
                            m->name);
    size_t trials = (size_t) rb_params_int(p, "trials");
    double tol = rb_params_float(p, "tol");
    if (trials > 1 && !ds->redraw)
        return rb_error_set(RB_EINVAL,
                            "%s: trials = %zu needs a dataset that can draw fresh signals "
                            "(generated kinds such as sparse_wht)",
                            m->name, trials);
    double *t_rec = malloc(trials * sizeof *t_rec), *fp = malloc(trials * sizeof *fp),
           *fn = malloc(trials * sizeof *fn), *nm = malloc(trials * sizeof *nm),
           *smp = malloc(trials * sizeof *smp), *dst = malloc(trials * sizeof *dst);
    int rc = (!t_rec || !fp || !fn || !nm || !smp || !dst)
                 ? rb_error_set(RB_ENOMEM, "%s: no memory for %zu trials", m->name, trials)
                 : 0;
    int track = rb_eval_wants(metrics, nmetrics, "samples_distinct"),
        mem = rb_eval_wants(metrics, nmetrics, "memory");
    double mem_mib = mem ? 0 : NAN; /* the largest window over the trials */
    size_t wins = 0, K0 = coef0->shape[0];
    for (size_t t = 0; !rc && t < trials; t++) {
        rb_dataset tds = {0};
        const rb_dataset *cur = ds;
        if (t > 0) {
            rc = ds->redraw(ds, t, &tds);
            if (rc) break;
            cur = &tds;
        }
        const rb_tensor *sup = rb_dataset_tensor(cur, "support"),
                        *coef = rb_dataset_tensor(cur, "coef");
        size_t K = coef->shape[0], cap = 4 * K + 64, found = 0;
        rb_sparse_coef *out = malloc(cap * sizeof *out);
        counting c;
        rc =
            out ? counting_init(&c, cur, track) : rb_error_set(RB_ENOMEM, "%s: no memory", m->name);
        if (!rc) {
            rb_signal_oracle o = {cur->log2n, counting_query, &c, 0};
            long rss0 = mem ? peak_window_open() : -1;
            double t0 = now_s();
            rc = m->sparse->recover(p, &o, rb_seed_derive(seed, STREAM_TRIAL, t), out, cap, &found);
            t_rec[t] = now_s() - t0;
            long hwm = rss0 >= 0 ? status_kb("VmHWM") : -1;
            if (mem)
                mem_mib = rss0 < 0 || hwm < 0 ? NAN : fmax(mem_mib, (double) (hwm - rss0) / 1024);
            if (rc) rc = rb_error_set(rc, "%s (trial %zu): %s", m->name, t, rb_error_detail());
            score s = score_trial(sup, coef, out, found, tol);
            wins += !rc && s.success;
            fp[t] = (double) s.fp, fn[t] = (double) s.fn, nm[t] = s.nmse;
            smp[t] = (double) o.queries, dst[t] = (double) c.distinct;
            counting_free(&c);
        }
        free(out);
        rb_dataset_free(&tds);
    }
    double mean, se;
    if (!rc && rb_eval_wants(metrics, nmetrics, "success")) {
        double ph = (double) wins / (double) trials;
        rc = rb_eval_emit(sink, ctx, "success", ph, sqrt(ph * (1 - ph) / (double) trials), trials);
    }
    if (!rc && (rb_eval_wants(metrics, nmetrics, "success_lo") ||
                rb_eval_wants(metrics, nmetrics, "success_hi"))) {
        double lo, hi;
        rb_wilson_interval(wins, trials, 1.959963984540054, &lo, &hi);
        if (rb_eval_wants(metrics, nmetrics, "success_lo"))
            rc = rb_eval_emit(sink, ctx, "success_lo", lo, NAN, trials);
        if (!rc && rb_eval_wants(metrics, nmetrics, "success_hi"))
            rc = rb_eval_emit(sink, ctx, "success_hi", hi, NAN, trials);
    }
    const struct {
        const char *name;
        const double *v;
    } means[] = {{"support_fp", fp},
                 {"support_fn", fn},
                 {"nmse", nm},
                 {"samples", smp},
                 {"samples_distinct", dst}};
    for (size_t i = 0; !rc && i < sizeof means / sizeof means[0]; i++)
        if (rb_eval_wants(metrics, nmetrics, means[i].name)) {
            rb_mean_se(means[i].v, trials, &mean, &se);
            rc = rb_eval_emit(sink, ctx, means[i].name, mean, se, trials);
        }
    double t_med = rc ? 0 : median(t_rec, trials);
    if (!rc && rb_eval_wants(metrics, nmetrics, "time"))
        rc = rb_eval_emit(sink, ctx, "time", t_med, NAN, trials);
    if (!rc && mem) rc = rb_eval_emit(sink, ctx, "memory", mem_mib, NAN, trials);
    /* The speedup needs the dense baseline on the same signal, so only where N fits. */
    if (!rc && rb_eval_wants(metrics, nmetrics, "speedup") && ds->log2n <= SPEEDUP_LOG2N_MAX &&
        strcmp(m->name, "fwht_full") != 0) {
        double tf;
        rc = full_time(ds, K0, ds->log2n <= 20 ? 3 : 1, &tf);
        if (!rc) rc = rb_eval_emit(sink, ctx, "speedup", t_med > 0 ? tf / t_med : NAN, NAN, trials);
    }
    free(t_rec);
    free(fp);
    free(fn);
    free(nm);
    free(smp);
    free(dst);
    return rc;
}
