/* octopus (arXiv:2605.21226, reference/codecs.md section 6): rotated coordinate triplets, each
 * stored as its norm and its direction's octahedral coordinates, all three Lloyd-Max quantized.
 *
 * Steps (codecs.md section 6; the paper's text beyond its abstract was not available, so the
 * details are those of the secondary notes there): gamma = |x| (fp32); u = R x / gamma; u is cut
 * into d/3 triplets t_i with norm rho_i and direction n_i in S^2; (xi, eta) = octahedral map of
 * n_i (kernels/sphere_maps.h). xi and eta are quantized with b + split bits each by the Lloyd-Max
 * codebook of their empirical marginal under uniform directions (the paper's "implementation-
 * matched marginals": 2^18 directions from a fixed Philox seed, so the codebook depends on the
 * bit width only); rho with b - split bits by the Lloyd-Max codebook of its exact density
 * (rho^2 ~ Beta(3/2, (d-3)/2) for a uniform point of S^(d-1); tabulated on a fine grid).
 * split = 1 is the (b+1, b-1) allocation of the notes. rounding: independent quantizes the three
 * numbers separately; joint tries the 3 x 3 neighbouring direction cells, keeps the decoded
 * direction n^ with the largest s = <t, n^> and quantizes s as the norm (the squared error
 * |t - r n^|^2 is smallest at r = s for that direction).
 *
 * Rate: a triplet costs 2 (b + split) + (b - split) = 3b + split bits, so bits per coordinate are
 * b + split/3 + 32/d (fp32 gamma): nominal b = 2 is really 2.333 + 32/d.
 * d must be a multiple of 3 (and >= 6): the paper's handling of leftover coordinates (e.g. d =
 * 128) is not known to us, so other d are rejected with RB_ESIZE naming the nearest multiples
 * rather than padded by a rule of our own. rotation: rht (the paper's H D with random signs) needs
 * a supported Hadamard order, which d = 126 is not; use haar there.
 *
 * Code layout (rb_pack_bits streams, then side information): [2 d/3 indices of (b + split) bits:
 * xi_0, eta_0, xi_1, ...] [d/3 norm indices of (b - split) bits] [gamma fp32, unaligned]. A zero
 * vector stores gamma = 0 and decodes to exactly zero. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/lloyd1d.h"
#include "kernels/sphere_maps.h"
#include "methods/method.h"

static const rb_param_def octopus_params[] = {
    RB_PARAM_INT("bits", "2", 1, 7,
                 "nominal bits b: b + split per octahedral coordinate, b - split for the triplet "
                 "norm (3b + split bits per triplet)"),
    RB_PARAM_INT("split", "1", 0, 3, "bits moved from the norm to each direction coordinate"),
    RB_PARAM_ENUM("rotation", "rht", RB_ROTATION_CHOICES,
                  "rotation before the triplets (the paper: H D, random signs)"),
    RB_PARAM_ENUM("rounding", "independent", "independent|joint",
                  "independent rounding of xi, eta, rho, or the joint 3 x 3 direction search"),
};

enum { DIR_SAMPLES = 1 << 18, NORM_GRID = 1 << 16, MAX_DIR_BITS = 8 };
/* Philox seed of the direction sample behind the xi/eta codebooks ("OCTP"): fixed, so that the
 * codebook is part of the format, not of the instance. */
#define DIR_SEED 0x4f435450u

typedef struct octopus {
    size_t dim, T; /* T = dim / 3 triplets */
    int bd, bn;    /* bits of each direction coordinate and of the norm */
    int joint;
    size_t dir_bytes, norm_bytes, code_bytes;
    size_t K;          /* 2^bd direction levels */
    rb_codebook cdir;  /* xi and eta (one marginal: the map is symmetric in x and y) */
    rb_codebook cnorm; /* rho, in the units of the rotated unit vector */
    float *dirtab;     /* K x K x 3: decoded unit direction of every (xi, eta) index pair */
    rb_rotation rot;
    /* Scratch, grown to the largest batch seen. */
    float *y, *xe, *rho, *gam;
    uint8_t *di, *ni;
    size_t cap;
} octopus;

static void octopus_destroy(void *state) {
    octopus *c = state;
    if (!c) return;
    rb_rotation_free(&c->rot);
    free(c->dirtab);
    free(c->y);
    free(c->xe);
    free(c->rho);
    free(c->gam);
    free(c->di);
    free(c->ni);
    free(c);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* The xi/eta codebooks depend only on the bit width: solved once per process and cached. */
static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static double *dir_cache[MAX_DIR_BITS + 1];

static int dir_codebook_solve(int bits, double *cent) {
    size_t n = DIR_SAMPLES;
    double *g = malloc(3 * n * sizeof *g), *v = malloc(2 * n * sizeof *v);
    int rc = RB_OK;
    if (!g || !v) {
        rc = rb_error_set(RB_ENOMEM, "octopus: no memory for the direction sample");
        goto done;
    }
    /* A Gaussian triple's direction is uniform on S^2: the directions of rotated triplets. */
    rb_rng_normal_f64(DIR_SEED, 0, 0, 3 * n, g);
    for (size_t i = 0; i < n; i++) rb_octa_encode(g + 3 * i, v + 2 * i, v + 2 * i + 1);
    qsort(v, 2 * n, sizeof *v, cmp_double);
    rc = rb_lloyd1d_solve(v, NULL, 2 * n, 0.0, (size_t) 1 << bits, 0, cent, NULL);
done:
    free(g);
    free(v);
    return rc;
}

static int dir_codebook(int bits, rb_codebook *cb) {
    pthread_mutex_lock(&dir_lock);
    int rc = RB_OK;
    if (!dir_cache[bits]) {
        double *cent = malloc(((size_t) 1 << bits) * sizeof *cent);
        if (!cent)
            rc = rb_error_set(RB_ENOMEM, "octopus: no memory");
        else if ((rc = dir_codebook_solve(bits, cent)))
            free(cent);
        else
            dir_cache[bits] = cent; /* kept for the process lifetime, like rb_lloyd_codebook */
    }
    pthread_mutex_unlock(&dir_lock);
    if (rc) return rc;
    float f[1 << MAX_DIR_BITS];
    size_t k = (size_t) 1 << bits;
    for (size_t i = 0; i < k; i++) f[i] = (float) dir_cache[bits][i];
    return rb_codebook_init(cb, f, k);
}

/* log density of rho = |triplet| of a uniform point of S^(d-1), up to a constant:
 * rho^2 ~ Beta(3/2, (d-3)/2) gives f(r) ~ r^2 (1 - r^2)^((d-5)/2) on [0, 1]. */
static double rho_logpdf(double r, const void *ctx) {
    double d = *(const double *) ctx;
    if (r <= 0 || r >= 1) return -INFINITY;
    return 2 * log(r) + (d - 5) / 2 * log1p(-r * r);
}

static int norm_codebook(size_t dim, int bits, rb_codebook *cb) {
    double d = (double) dim;
    /* rho^2 is about chi^2_3 / d: P(chi^2_3 > 60) ~ 1e-12, so the grid covers [0, sqrt(60/d)]. */
    double hi = fmin(1.0, sqrt(60.0 / d));
    size_t k = (size_t) 1 << bits;
    double *x = malloc(NORM_GRID * sizeof *x), *w = malloc(NORM_GRID * sizeof *w), cent[256];
    int rc = (!x || !w) ? rb_error_set(RB_ENOMEM, "octopus: no memory for the norm grid") : RB_OK;
    if (!rc) rc = rb_lloyd1d_grid(0.0, hi, NORM_GRID, rho_logpdf, &d, x, w);
    if (!rc) rc = rb_lloyd1d_solve(x, w, NORM_GRID, hi / NORM_GRID, k, 0, cent, NULL);
    free(x);
    free(w);
    if (rc) return rc;
    float f[256];
    for (size_t i = 0; i < k; i++) f[i] = (float) cent[i];
    return rb_codebook_init(cb, f, k);
}

static int octopus_check(const rb_params *p, size_t dim) {
    if (dim < 6 || dim % 3) {
        size_t lo = dim / 3 * 3, up = dim < 6 ? 6 : lo + 3;
        if (lo < 6)
            return rb_error_set(RB_ESIZE,
                                "octopus: d = %zu is not supported: the codec needs whole "
                                "triplets and at least two; nearest supported size: 6",
                                dim);
        return rb_error_set(RB_ESIZE,
                            "octopus: d = %zu is not supported: the codec needs a multiple of 3 "
                            "(whole triplets; leftover coordinates are not padded); nearest "
                            "supported sizes: %zu, %zu",
                            dim, lo, up);
    }
    int b = (int) rb_params_int(p, "bits"), s = (int) rb_params_int(p, "split");
    if (b - s < 1 || b + s > MAX_DIR_BITS)
        return rb_error_set(RB_EINVAL,
                            "octopus: bits = %d with split = %d gives %d direction and %d norm "
                            "bits; need norm bits >= 1 and direction bits <= %d",
                            b, s, b + s, b - s, MAX_DIR_BITS);
    return rb_rotation_check_name(rb_params_str(p, "rotation"), dim);
}

static int octopus_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    int rc = octopus_check(p, dim);
    if (rc) return rc;
    int b = (int) rb_params_int(p, "bits"), s = (int) rb_params_int(p, "split");
    octopus *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "octopus: no memory");
    c->dim = dim;
    c->T = dim / 3;
    c->bd = b + s;
    c->bn = b - s;
    c->K = (size_t) 1 << c->bd;
    c->joint = rb_params_is(p, "rounding", "joint");
    c->dir_bytes = rb_pack_bytes(2 * c->T, c->bd);
    c->norm_bytes = rb_pack_bytes(c->T, c->bn);
    c->code_bytes = c->dir_bytes + c->norm_bytes + sizeof(float);
    rb_rotation_kind kind;
    rc = rb_rotation_kind_parse(rb_params_str(p, "rotation"), &kind);
    if (!rc) rc = rb_rotation_init(&c->rot, kind, dim, seed);
    if (!rc) rc = dir_codebook(c->bd, &c->cdir);
    if (!rc) rc = norm_codebook(dim, c->bn, &c->cnorm);
    if (!rc && !(c->dirtab = malloc(c->K * c->K * 3 * sizeof *c->dirtab)))
        rc = rb_error_set(RB_ENOMEM, "octopus: no memory for the direction table");
    if (rc) {
        octopus_destroy(c);
        return rc;
    }
    for (size_t i = 0; i < c->K; i++)
        for (size_t j = 0; j < c->K; j++) {
            double n[3];
            rb_octa_decode(c->cdir.centroids[i], c->cdir.centroids[j], n);
            for (int a = 0; a < 3; a++) c->dirtab[(i * c->K + j) * 3 + a] = (float) n[a];
        }
    *state = c;
    return RB_OK;
}

static size_t octopus_code_bytes(const void *state) {
    return ((const octopus *) state)->code_bytes;
}

/* Exact: 2 (b + split) + (b - split) bits per triplet and the fp32 gamma; byte padding of the
 * streams is not counted. */
static double octopus_bits(const void *state) {
    const octopus *c = state;
    return ((double) c->T * (2 * c->bd + c->bn) + 32.0) / (double) c->dim;
}

static int reserve(octopus *c, size_t count) {
    if (count <= c->cap) return RB_OK;
    size_t d = c->dim, T = c->T;
    float *y = realloc(c->y, count * d * sizeof *y);
    if (y) c->y = y;
    float *xe = realloc(c->xe, count * 2 * T * sizeof *xe);
    if (xe) c->xe = xe;
    float *r = realloc(c->rho, count * T * sizeof *r);
    if (r) c->rho = r;
    float *g = realloc(c->gam, count * sizeof *g);
    if (g) c->gam = g;
    uint8_t *di = realloc(c->di, count * 2 * T);
    if (di) c->di = di;
    uint8_t *ni = realloc(c->ni, count * T);
    if (ni) c->ni = ni;
    if (!y || !xe || !r || !g || !di || !ni)
        return rb_error_set(RB_ENOMEM, "octopus: no memory for %zu vectors", count);
    c->cap = count;
    return RB_OK;
}

/* Joint rounding of one triplet: among the direction cells next to (i, j), the decoded direction
 * closest to t (largest <t, n^>); returns that s and updates the indices. */
static float joint_round(const octopus *c, const float t[3], uint8_t *i, uint8_t *j) {
    int K = (int) c->K, bi = *i, bj = *j;
    float best = -INFINITY;
    for (int a = bi - 1; a <= bi + 1; a++)
        for (int e = bj - 1; e <= bj + 1; e++) {
            if (a < 0 || e < 0 || a >= K || e >= K) continue;
            const float *n = c->dirtab + ((size_t) a * c->K + (size_t) e) * 3;
            float s = t[0] * n[0] + t[1] * n[1] + t[2] * n[2];
            if (s > best) {
                best = s;
                *i = (uint8_t) a;
                *j = (uint8_t) e;
            }
        }
    return best > 0 ? best : 0.0f;
}

static int octopus_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    octopus *c = state;
    size_t d = c->dim, T = c->T;
    int rc = reserve(c, count);
    if (rc) return rc;
    for (size_t i = 0; i < count; i++) {
        double n2;
        rb_rows_sqnorm_f32(x + i * d, 1, d, d, &n2);
        double n = sqrt(n2);
        if (!isfinite(n) || n > FLT_MAX)
            return rb_error_set(RB_ENUMERIC, "octopus: vector %zu %s", i,
                                isfinite(n) ? "has a norm beyond the fp32 range"
                                            : "has a NaN or infinite element");
        c->gam[i] = (float) n;
        double inv = n > 0 ? 1.0 / n : 0.0;
        for (size_t j = 0; j < d; j++) c->y[i * d + j] = (float) (x[i * d + j] * inv);
    }
    if ((rc = rb_rotation_apply(&c->rot, c->y, count, d, RB_FORWARD))) return rc;
    for (size_t k = 0; k < count * T; k++) {
        const float *t = c->y + 3 * k;
        double v[3] = {t[0], t[1], t[2]}, xi, eta;
        rb_octa_encode(v, &xi, &eta);
        c->xe[2 * k] = (float) xi;
        c->xe[2 * k + 1] = (float) eta;
        c->rho[k] = (float) sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    }
    if ((rc = rb_codebook_quantize_f32(&c->cdir, c->xe, 1, count * 2 * T, count * 2 * T, c->di)))
        return rc;
    if (c->joint)
        for (size_t k = 0; k < count * T; k++)
            c->rho[k] = joint_round(c, c->y + 3 * k, c->di + 2 * k, c->di + 2 * k + 1);
    if ((rc = rb_codebook_quantize_f32(&c->cnorm, c->rho, 1, count * T, count * T, c->ni)))
        return rc;
    /* Both streams of the batch through the dispatched packer (each row's rb_pack_bits stream). */
    if ((rc = rb_pack_rows(c->di, count, 2 * T, c->bd, codes, c->code_bytes))) return rc;
    if ((rc = rb_pack_rows(c->ni, count, T, c->bn, codes + c->dir_bytes, c->code_bytes))) return rc;
    for (size_t i = 0; i < count; i++)
        memcpy(codes + i * c->code_bytes + c->dir_bytes + c->norm_bytes, &c->gam[i], sizeof(float));
    return RB_OK;
}

static int octopus_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    octopus *c = state;
    size_t d = c->dim, T = c->T;
    int rc = reserve(c, count);
    if (rc) return rc;
    if ((rc = rb_unpack_rows(codes, c->code_bytes, count, 2 * T, c->bd, c->di))) return rc;
    if ((rc = rb_unpack_rows(codes + c->dir_bytes, c->code_bytes, count, T, c->bn, c->ni)))
        return rc;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *in = codes + i * c->code_bytes;
        const uint8_t *di = c->di + i * 2 * T, *ni = c->ni + i * T;
        memcpy(&c->gam[i], in + c->dir_bytes + c->norm_bytes, sizeof(float));
        for (size_t k = 0; k < T; k++) {
            const float *n = c->dirtab + ((size_t) di[2 * k] * c->K + di[2 * k + 1]) * 3;
            float r = c->cnorm.centroids[ni[k]];
            for (int a = 0; a < 3; a++) xhat[i * d + 3 * k + a] = r * n[a];
        }
    }
    if ((rc = rb_rotation_apply(&c->rot, xhat, count, d, RB_INVERSE))) return rc;
    rb_rows_scale_f32(xhat, count, d, d, c->gam);
    return RB_OK;
}

static const rb_codec_ops octopus_ops = {
    .create = octopus_create,
    .check = octopus_check,
    .code_bytes = octopus_code_bytes,
    .bits = octopus_bits,
    .encode = octopus_encode,
    .decode = octopus_decode,
    .destroy = octopus_destroy,
};

const rb_method rb_method_octopus = {
    .name = "octopus",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2605.21226",
    .summary = "rotated triplets: octahedral direction + norm, Lloyd-Max, (b+1, b-1) bit split",
    .version = 1,
    .params = octopus_params,
    .nparams = sizeof octopus_params / sizeof octopus_params[0],
    .codec = &octopus_ops,
};
