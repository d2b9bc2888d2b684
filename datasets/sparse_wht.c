/* sparse_wht: a signal oracle for sparse Walsh-Hadamard recovery (sparse_and_adapters.md
 * section 1): x = H X / sqrt(N) with a k-sparse spectrum X over N = 2^log2n, sampled on demand,
 * optionally with white Gaussian noise. Nothing of length N is ever stored. */
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/kinds.h"
#include "datasets/synth.h"

/* Philox streams (ASCII tags). Support draw w uses lanes 2w, 2w + 1 of STREAM_SUPP (or element w
 * of its uniform64 layout for the shuffle); coefficient j (in ascending index order) uses
 * element j of STREAM_AMP and STREAM_SIGN; the noise of sample index i is element i of
 * STREAM_NOISE's normal64 layout. */
enum {
    STREAM_SUPP = 0x53555050,  /* "SUPP" */
    STREAM_AMP = 0x414d504c,   /* "AMPL" */
    STREAM_SIGN = 0x5349474e,  /* "SIGN" */
    STREAM_NOISE = 0x4e4f4953, /* "NOIS" */
    STREAM_TRIAL = 0x54524941  /* "TRIA": seed of trial t = rb_seed_derive(seed, STREAM_TRIAL, t) */
};

/* The dense sampling path (sample_dense): signals up to 2^DENSE_LOG2N_MAX, requests costing more
 * than DENSE_FACTOR N log2 N in direct sums. */
enum { DENSE_LOG2N_MAX = 24, DENSE_FACTOR = 1 };

static const rb_param_def sparse_params[] = {
    RB_PARAM_INT("log2n", "16", 1, 62, "signal length N = 2^log2n"),
    RB_PARAM_INT("k", "16", 1, 1L << 22, "nonzero Walsh coefficients (1 <= k <= N)"),
    RB_PARAM_ENUM("amplitude", "fixed", "fixed|uniform|gaussian",
                  "coefficient law: fixed = +-amp, uniform = +-U[amp_min, amp_max], gaussian = "
                  "N(0, amp^2)"),
    RB_PARAM_FLOAT("amp", "1", 1e-30, 1e30, "magnitude (fixed) or standard deviation (gaussian)"),
    RB_PARAM_FLOAT("amp_min", "0.5", 0, 1e30, "uniform law: smallest magnitude"),
    RB_PARAM_FLOAT("amp_max", "1.5", 0, 1e30, "uniform law: largest magnitude"),
    RB_PARAM_BOOL("noise", "false", "add white Gaussian noise to every sample (at snr_db)"),
    RB_PARAM_FLOAT("snr_db", "20", -100, 300,
                   "with noise: 10 log10(mean X_k^2 over the support / sigma^2), the "
                   "per-coefficient SNR"),
};

typedef struct sparse_signal {
    unsigned log2n;
    size_t k;
    uint64_t *support; /* ascending */
    double *coef;      /* float32 values, as stored in the "coef" tensor */
    double inv_sqrt_n, sigma;
    uint64_t seed;
    rb_params params; /* the definition, for redraw */
} sparse_signal;

static void signal_free(void *p) {
    sparse_signal *s = p;
    if (!s) return;
    free(s->support);
    free(s->coef);
    free(s);
}

typedef struct sample_job {
    const sparse_signal *s;
    const uint64_t *idx;
    double *out;
} sample_job;

/* x[i] = sum_j X_j (-1)^popcount(i & k_j) / sqrt(N) + sigma z_i, summed in support order. The
 * sign goes into the sign bit (exact, branch-free: the signs are random, so a branch mispredicts
 * half the time); the body is compiled twice, with and without the POPCNT instruction, and the
 * CPU picks (the results are identical). */
#define SAMPLE_BODY                                                                 \
    const sample_job *j = ctx;                                                      \
    const sparse_signal *s = j->s;                                                  \
    for (size_t r = begin; r < end; r++) {                                          \
        uint64_t i = j->idx[r];                                                     \
        double acc = 0;                                                             \
        for (size_t c = 0; c < s->k; c++) {                                         \
            uint64_t bits;                                                          \
            memcpy(&bits, &s->coef[c], sizeof bits);                                \
            bits ^= (uint64_t) (__builtin_popcountll(i & s->support[c]) & 1) << 63; \
            double v;                                                               \
            memcpy(&v, &bits, sizeof v);                                            \
            acc += v;                                                               \
        }                                                                           \
        double v = acc * s->inv_sqrt_n;                                             \
        if (s->sigma > 0) {                                                         \
            double z;                                                               \
            rb_rng_normal_f64(s->seed, STREAM_NOISE, i, 1, &z);                     \
            v += s->sigma * z;                                                      \
        }                                                                           \
        j->out[r] = v;                                                              \
    }

static void sample_task_generic(void *ctx, size_t begin, size_t end) {
    SAMPLE_BODY
}

#if defined(__x86_64__)
__attribute__((target("popcnt"))) static void sample_task_popcnt(void *ctx, size_t begin,
                                                                 size_t end) {
    SAMPLE_BODY
}
#endif

static void sample_task(void *ctx, size_t begin, size_t end) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("popcnt")) {
        sample_task_popcnt(ctx, begin, end);
        return;
    }
#endif
    sample_task_generic(ctx, begin, end);
}

/* Large requests on short signals (count k > DENSE_FACTOR N log2 N): the whole noiseless signal
 * by one FWHT of the spectrum (O(N log N) instead of O(count k)), then the requested samples and
 * their noise as in sample_task. The values agree with the direct sums to rounding (the sum runs
 * in another order); which path a request takes depends only on (count, k, N). */
static int sample_dense(const sparse_signal *s, const uint64_t *idx, size_t count, double *out) {
    size_t n = (size_t) 1 << s->log2n;
    double *x = calloc(n, sizeof *x);
    if (!x) return rb_error_set(RB_ENOMEM, "sparse_wht: no memory for 2^%u samples", s->log2n);
    for (size_t c = 0; c < s->k; c++) x[s->support[c]] = s->coef[c];
    int rc = rb_fwht_f64(x, n, 1, n, RB_NORM_NONE, RB_ORDER_NATURAL);
    for (size_t r = 0; !rc && r < count; r++) {
        double v = x[idx[r]] * s->inv_sqrt_n;
        if (s->sigma > 0) {
            double z;
            rb_rng_normal_f64(s->seed, STREAM_NOISE, idx[r], 1, &z);
            v += s->sigma * z;
        }
        out[r] = v;
    }
    free(x);
    return rc;
}

static int sample(const rb_dataset *ds, const uint64_t *idx, size_t count, double *out) {
    const sparse_signal *s = ds->signal;
    if (!s) return rb_error_set(RB_EINVAL, "sparse_wht: the dataset has no signal");
    uint64_t n = UINT64_C(1) << s->log2n;
    for (size_t r = 0; r < count; r++)
        if (idx[r] >= n)
            return rb_error_set(RB_EINVAL, "sparse_wht: sample %zu asks for index %llu >= N = 2^%u",
                                r, (unsigned long long) idx[r], s->log2n);
    if (s->log2n <= DENSE_LOG2N_MAX &&
        (double) count * (double) s->k > DENSE_FACTOR * (double) n * (double) s->log2n)
        return sample_dense(s, idx, count, out);
    sample_job j = {s, idx, out};
    size_t grain = 65536 / (s->k + 1) + 1;
    rb_parallel_for(count, grain, sample_task, &j);
    return RB_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

/* k distinct indices of [0, N), uniformly: by rejection (draw w: a 64-bit word masked to log2n
 * bits, kept unless already drawn) when k <= N / 2, else by a partial Fisher-Yates shuffle of
 * [0, N) (then N <= 2^23). Either way a sequential function of (seed, params). */
static int draw_support(uint64_t seed, unsigned log2n, size_t k, uint64_t *out) {
    uint64_t n = UINT64_C(1) << log2n;
    if ((uint64_t) k > n / 2) {
        size_t *pick = malloc(k * sizeof *pick);
        if (!pick) return rb_error_set(RB_ENOMEM, "sparse_wht: no memory for the support");
        int rc = rb_pick_distinct(seed, STREAM_SUPP, (size_t) n, k, pick);
        for (size_t j = 0; !rc && j < k; j++) out[j] = pick[j];
        free(pick);
        return rc;
    }
    size_t cap = 1;
    while (cap < 2 * k) cap <<= 1;
    uint64_t *table = calloc(cap, sizeof *table); /* value + 1; 0 = empty */
    if (!table) return rb_error_set(RB_ENOMEM, "sparse_wht: no memory for the support");
    size_t got = 0;
    for (uint64_t w = 0; got < k; w++) {
        uint32_t lanes[2];
        rb_rng_bits(seed, STREAM_SUPP, 2 * w, 2, lanes);
        uint64_t v = ((uint64_t) lanes[1] << 32 | lanes[0]) & (n - 1);
        size_t h = (size_t) ((v * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (cap - 1);
        while (table[h] && table[h] != v + 1) h = (h + 1) & (cap - 1);
        if (table[h]) continue;
        table[h] = v + 1;
        out[got++] = v;
    }
    free(table);
    return RB_OK;
}

/* The parameters that must go together, for load and the shape hook alike (a dry run finds
 * them before the first cell). */
static int sparse_check(const rb_params *p) {
    unsigned log2n = (unsigned) rb_params_int(p, "log2n");
    size_t k = (size_t) rb_params_int(p, "k");
    uint64_t n = UINT64_C(1) << log2n;
    double lo = rb_params_float(p, "amp_min"), hi = rb_params_float(p, "amp_max");
    if ((uint64_t) k > n)
        return rb_error_set(RB_EINVAL, "sparse_wht: k = %zu exceeds N = 2^%u = %llu", k, log2n,
                            (unsigned long long) n);
    if (rb_params_is(p, "amplitude", "uniform") && lo > hi)
        return rb_error_set(RB_EINVAL, "sparse_wht: amp_min = %g exceeds amp_max = %g", lo, hi);
    return RB_OK;
}

/* A sparse signal fills none of the shape's vector or KV fields. */
static int sparse_shape(const rb_params *p, rb_dataset_shape *s) {
    s->signal = 1;
    return sparse_check(p);
}

static int load_sparse(const rb_params *p, uint64_t seed, rb_dataset *ds);

static int redraw(const rb_dataset *ds, uint64_t trial, rb_dataset *out) {
    const sparse_signal *s = ds->signal;
    if (!s) return rb_error_set(RB_EINVAL, "sparse_wht: the dataset has no signal");
    memset(out, 0, sizeof *out);
    return load_sparse(&s->params, rb_seed_derive(s->seed, STREAM_TRIAL, trial), out);
}

/* sha256 of the definition: kind, every parameter in table order, seed. */
static void definition_hash(const rb_params *p, uint64_t seed, char hex[65]) {
    char text[2048];
    size_t n = (size_t) snprintf(text, sizeof text, "sparse_wht;");
    n += rb_params_format(p, 0, text + n, sizeof text - n);
    if (n < sizeof text)
        snprintf(text + n, sizeof text - n, ";seed=%llu", (unsigned long long) seed);
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, strlen(text), (const uint8_t *) text);
    sha256_digest(&ctx, sizeof d, d);
    for (size_t i = 0; i < sizeof d; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

/* Coefficients: fixed = +-amp; uniform = +-(amp_min + (amp_max - amp_min) u); gaussian =
 * amp z. Rounded to float32 so the "coef" tensor is the exact truth. With noise, sigma^2 =
 * (sum X_j^2 / k) 10^(-snr_db / 10): the SNR per coefficient, which is what decides detection
 * since the orthonormal transform maps white noise of variance sigma^2 per sample to variance
 * sigma^2 per coefficient (as SPRIGHT's experiments: |X| = 1, sigma = 10^(-SNR/20)). The SNR
 * per time sample is smaller by k / N. */
static int load_sparse(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    unsigned log2n = (unsigned) rb_params_int(p, "log2n");
    size_t k = (size_t) rb_params_int(p, "k");
    uint64_t n = UINT64_C(1) << log2n;
    double amp = rb_params_float(p, "amp"), lo = rb_params_float(p, "amp_min"),
           hi = rb_params_float(p, "amp_max");
    int rc = sparse_check(p);
    if (rc) return rc;

    rb_tensor *sup, *coef;
    size_t sshape[2] = {k, RB_SPARSE_LIMBS};
    sparse_signal *s = calloc(1, sizeof *s);
    rc = s ? RB_OK : rb_error_set(RB_ENOMEM, "sparse_wht: no memory");
    if (!rc) {
        s->support = malloc(k * sizeof *s->support);
        s->coef = malloc(k * sizeof *s->coef);
        if (!s->support || !s->coef) rc = rb_error_set(RB_ENOMEM, "sparse_wht: no memory");
    }
    if (!rc) rc = draw_support(seed, log2n, k, s->support);
    if (!rc) rc = rb_dataset_add(ds, "support", 2, sshape, &sup);
    if (!rc) rc = rb_dataset_add(ds, "coef", 1, &k, &coef);
    if (rc) {
        signal_free(s);
        rb_dataset_free(ds);
        return rc;
    }
    qsort(s->support, k, sizeof *s->support, cmp_u64);
    double power = 0;
    for (size_t j = 0; j < k; j++) {
        double u, z;
        float sign;
        rb_rng_uniform_f64(seed, STREAM_AMP, j, 1, &u);
        rb_rng_normal_f64(seed, STREAM_AMP, j, 1, &z);
        rb_rng_rademacher_f32(seed, STREAM_SIGN, j, 1, &sign);
        double c = rb_params_is(p, "amplitude", "fixed")     ? sign * amp
                   : rb_params_is(p, "amplitude", "uniform") ? sign * (lo + (hi - lo) * u)
                                                             : amp * z;
        s->coef[j] = (float) c;
        coef->data[j] = (float) c;
        rb_sparse_support_store(sup, j, s->support[j]);
        power += s->coef[j] * s->coef[j];
    }
    s->log2n = log2n;
    s->k = k;
    s->seed = seed;
    s->params = *p;
    s->inv_sqrt_n = 1.0 / sqrt((double) n);
    s->sigma = rb_params_bool(p, "noise")
                   ? sqrt(power / (double) k * pow(10.0, -rb_params_float(p, "snr_db") / 10))
                   : 0;
    ds->log2n = log2n;
    ds->sample = sample;
    ds->signal = s;
    ds->signal_free = signal_free;
    ds->redraw = redraw;
    definition_hash(p, seed, ds->hash);
    return RB_OK;
}

const rb_dataset_kind rb_dataset_sparse_wht = {
    "sparse_wht",
    "oracle for x = H X / sqrt(N), X k-sparse over N = 2^log2n (+ noise); truth in tensors "
    "support (k x 3 index limbs of 21 bits) and coef",
    RB_PARAMS_OF(sparse_params), load_sparse, sparse_shape};
