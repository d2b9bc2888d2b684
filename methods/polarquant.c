/* polarquant (arXiv:2502.02617, reference/codecs.md section 7): random preconditioning, then the
 * recursive polar transform of every block of 16 coordinates (kernels/sphere_maps.h): 8 level-1
 * angles theta in [0, 2 pi), 4 + 2 + 1 angles psi in [0, pi/2] at levels 2..4, and the block's
 * radius. Angles are quantized with per-level codebooks, the radius is stored as fp16; there is no
 * scale or zero point.
 *
 * Codebooks: after a random rotation a block's direction is uniform on S^15 (exactly for haar,
 * approximately for rht), so the angles are independent, theta is uniform and psi at level l has
 * density proportional to sin(2 psi)^(2^(l-1) - 1). codebook: lloyd (default) is the Lloyd-Max
 * quantizer of each level's density (solved on a fine grid, kernels/lloyd1d.h; for the uniform
 * theta it is the uniform quantizer with centroids at the cell midpoints); uniform puts every
 * level's centroids at the midpoints of equal cells of its range. Bits: `bits` for level 1 (the
 * paper: 4), `upper_bits` for levels 2..4 (the paper: 2): 8 * 4 + 7 * 2 = 46 bits + a 16-bit
 * radius per 16 coordinates = 3.875 bits per coordinate (radius: fp32 gives 4.875).
 *
 * d must be a multiple of 16 (the paper's block; no padding is described, so other d are
 * rejected with RB_ESIZE naming the nearest multiples). rotation: haar by default (the paper's
 * random preconditioning; with haar the angle laws above hold for every input); rht needs a
 * supported Hadamard order. A block radius beyond the fp16 range (65504) is RB_ENUMERIC naming
 * the vector and block (use radius: fp32); radii below the fp16 range decode as 0 (subnormals as
 * such). A zero vector decodes to zero.
 *
 * Code layout (rb_pack_bits streams, then side information): [d/2 level-1 indices of `bits`
 * bits, block by block] [7 d/16 indices of `upper_bits` bits: per block its 4 level-2, 2 level-3
 * and 1 level-4 angles] [d/16 radii, fp16 or fp32, unaligned]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "kernels/lloyd1d.h"
#include "kernels/sphere_maps.h"
#include "methods/method.h"

static const rb_param_def pq_params[] = {
    RB_PARAM_INT("bits", "4", 1, 8, "bits of each level-1 angle (8 per block of 16)"),
    RB_PARAM_INT("upper_bits", "2", 1, 8, "bits of each angle of levels 2..4 (7 per block)"),
    RB_PARAM_ENUM("rotation", "haar", RB_ROTATION_CHOICES,
                  "random preconditioning before the polar transform"),
    RB_PARAM_ENUM("codebook", "lloyd", "lloyd|uniform",
                  "angle codebooks: Lloyd-Max of each level's density, or uniform cells"),
    RB_PARAM_ENUM("radius", "fp16", "fp16|fp32", "storage of the block radius"),
};

enum { LEVELS = 4, BLOCK = 1 << LEVELS, NANG = BLOCK - 1, GRID = 1 << 16 };

typedef struct pq {
    size_t dim, nb; /* nb = dim / 16 blocks */
    int b1, bu, fp32;
    size_t l1_bytes, up_bytes, code_bytes;
    rb_codebook cb[LEVELS]; /* level l + 1's codebook */
    rb_rotation rot;
    /* Scratch for one vector (encode and decode work vector by vector) and a rotated batch. */
    double *xd, *ang, *rad;
    uint8_t *i1, *iu;
    float *y;
    size_t cap;
} pq;

static void pq_destroy(void *state) {
    pq *c = state;
    if (!c) return;
    rb_rotation_free(&c->rot);
    free(c->xd);
    free(c->ang);
    free(c->rad);
    free(c->i1);
    free(c->iu);
    free(c->y);
    free(c);
}

/* log of sin(2 psi)^(k - 1), the level-l density with k = 2^(l-1) coordinates per child. */
static double psi_logpdf(double psi, const void *ctx) {
    double k = *(const double *) ctx, s = sin(2 * psi);
    return s > 0 ? (k - 1) * log(s) : -INFINITY;
}

static int level_codebook(int level, int bits, int lloyd, rb_codebook *cb) {
    size_t K = (size_t) 1 << bits;
    double range = level == 1 ? 2 * M_PI : M_PI / 2, cent[256];
    /* Uniform cells: the Lloyd-Max solution of the uniform theta and the `uniform` option. */
    for (size_t j = 0; j < K; j++) cent[j] = ((double) j + 0.5) * range / (double) K;
    if (level > 1 && lloyd) {
        double k = (double) (1 << (level - 1));
        double *x = malloc(GRID * sizeof *x), *w = malloc(GRID * sizeof *w);
        int rc = (!x || !w) ? rb_error_set(RB_ENOMEM, "polarquant: no memory") : RB_OK;
        if (!rc) rc = rb_lloyd1d_grid(0.0, range, GRID, psi_logpdf, &k, x, w);
        if (!rc) rc = rb_lloyd1d_solve(x, w, GRID, range / GRID, K, 0, cent, NULL);
        free(x);
        free(w);
        if (rc) return rc;
    }
    float f[256];
    for (size_t j = 0; j < K; j++) f[j] = (float) cent[j];
    return rb_codebook_init(cb, f, K);
}

static int pq_check(const rb_params *p, size_t dim) {
    if (dim == 0 || dim % BLOCK) {
        size_t lo = dim / BLOCK * BLOCK, up = lo + BLOCK;
        if (lo == 0)
            return rb_error_set(RB_ESIZE,
                                "polarquant: d = %zu is not supported: the polar transform works "
                                "on blocks of %d coordinates; nearest supported size: %d",
                                dim, BLOCK, BLOCK);
        return rb_error_set(RB_ESIZE,
                            "polarquant: d = %zu is not supported: the polar transform works on "
                            "blocks of %d coordinates (no padding); nearest supported sizes: "
                            "%zu, %zu",
                            dim, BLOCK, lo, up);
    }
    return rb_rotation_check_name(rb_params_str(p, "rotation"), dim);
}

static int pq_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    int rc = pq_check(p, dim);
    if (rc) return rc;
    pq *c = calloc(1, sizeof *c);
    if (!c) return rb_error_set(RB_ENOMEM, "polarquant: no memory");
    c->dim = dim;
    c->nb = dim / BLOCK;
    c->b1 = (int) rb_params_int(p, "bits");
    c->bu = (int) rb_params_int(p, "upper_bits");
    c->fp32 = rb_params_is(p, "radius", "fp32");
    c->l1_bytes = rb_pack_bytes(c->nb * (BLOCK / 2), c->b1);
    c->up_bytes = rb_pack_bytes(c->nb * (BLOCK / 2 - 1), c->bu);
    c->code_bytes = c->l1_bytes + c->up_bytes + c->nb * (c->fp32 ? 4 : 2);
    int lloyd = rb_params_is(p, "codebook", "lloyd");
    rb_rotation_kind kind;
    rc = rb_rotation_kind_parse(rb_params_str(p, "rotation"), &kind);
    if (!rc) rc = rb_rotation_init(&c->rot, kind, dim, seed);
    for (int l = 1; l <= LEVELS && !rc; l++)
        rc = level_codebook(l, l == 1 ? c->b1 : c->bu, lloyd, &c->cb[l - 1]);
    if (!rc) {
        c->xd = malloc(dim * sizeof *c->xd);
        c->ang = malloc(c->nb * NANG * sizeof *c->ang);
        c->rad = malloc(c->nb * sizeof *c->rad);
        c->i1 = malloc(c->nb * (BLOCK / 2));
        c->iu = malloc(c->nb * (BLOCK / 2 - 1));
        if (!c->xd || !c->ang || !c->rad || !c->i1 || !c->iu)
            rc = rb_error_set(RB_ENOMEM, "polarquant: no memory");
    }
    if (rc) {
        pq_destroy(c);
        return rc;
    }
    *state = c;
    return RB_OK;
}

static size_t pq_code_bytes(const void *state) {
    return ((const pq *) state)->code_bytes;
}

/* Exact: per 16 coordinates 8 level-1 angles, 7 upper angles and one radius at its width. */
static double pq_bits(const void *state) {
    const pq *c = state;
    return (8.0 * c->b1 + 7.0 * c->bu + (c->fp32 ? 32.0 : 16.0)) / BLOCK;
}

static int reserve(pq *c, size_t count) {
    if (count <= c->cap) return RB_OK;
    float *y = realloc(c->y, count * c->dim * sizeof *y);
    if (!y) return rb_error_set(RB_ENOMEM, "polarquant: no memory for %zu vectors", count);
    c->y = y;
    c->cap = count;
    return RB_OK;
}

/* Cell of v under rb_codebook's rule: the number of thresholds strictly below v. */
static uint8_t cell(const rb_codebook *cb, double v) {
    float f = (float) v;
    size_t lo = 0, hi = cb->k - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cb->thresholds[mid] < f)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint8_t) lo;
}

/* Level (1-based) of angle a within a block's layout: 8 level-1, then 4, 2, 1. */
static int level_of(size_t a) {
    return a < 8 ? 1 : a < 12 ? 2 : a < 14 ? 3 : 4;
}

static int pq_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    pq *c = state;
    size_t d = c->dim;
    int rc = reserve(c, count);
    if (rc) return rc;
    memcpy(c->y, x, count * d * sizeof *x);
    if ((rc = rb_rotation_apply(&c->rot, c->y, count, d, RB_FORWARD))) return rc;
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < d; j++) c->xd[j] = c->y[i * d + j];
        rb_polar_forward(c->xd, c->nb, LEVELS, c->rad, c->ang);
        uint8_t *out = codes + i * c->code_bytes;
        uint8_t *side = out + c->l1_bytes + c->up_bytes;
        for (size_t b = 0; b < c->nb; b++) {
            if (!isfinite(c->rad[b]))
                return rb_error_set(RB_ENUMERIC,
                                    "polarquant: vector %zu has a NaN or infinite "
                                    "element (or a block norm beyond double range)",
                                    i);
            for (size_t a = 0; a < NANG; a++) {
                int l = level_of(a);
                uint8_t q = cell(&c->cb[l - 1], c->ang[b * NANG + a]);
                if (l == 1)
                    c->i1[b * 8 + a] = q;
                else
                    c->iu[b * 7 + a - 8] = q;
            }
            float r = (float) c->rad[b];
            if (c->fp32) {
                if (!isfinite(r))
                    return rb_error_set(RB_ENUMERIC,
                                        "polarquant: block %zu of vector %zu has radius %g beyond "
                                        "the fp32 range",
                                        b, i, c->rad[b]);
                memcpy(side + 4 * b, &r, 4);
            } else {
                uint16_t h = rb_f32_to_f16(r);
                if (!isfinite(rb_f16_to_f32(h)))
                    return rb_error_set(RB_ENUMERIC,
                                        "polarquant: block %zu of vector %zu has radius %g beyond "
                                        "the fp16 range (max %g); use radius: fp32",
                                        b, i, c->rad[b], (double) RB_F16_MAX);
                memcpy(side + 2 * b, &h, 2);
            }
        }
        /* One row each: the dispatched packer, the rb_pack_bits stream. */
        rb_pack_rows(c->i1, 1, c->nb * 8, c->b1, out, c->l1_bytes);
        rb_pack_rows(c->iu, 1, c->nb * 7, c->bu, out + c->l1_bytes, c->up_bytes);
    }
    return RB_OK;
}

static int pq_decode(void *state, const uint8_t *codes, size_t count, float *xhat) {
    pq *c = state;
    size_t d = c->dim;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *in = codes + i * c->code_bytes;
        const uint8_t *side = in + c->l1_bytes + c->up_bytes;
        rb_unpack_rows(in, c->l1_bytes, 1, c->nb * 8, c->b1, c->i1);
        rb_unpack_rows(in + c->l1_bytes, c->up_bytes, 1, c->nb * 7, c->bu, c->iu);
        for (size_t b = 0; b < c->nb; b++) {
            for (size_t a = 0; a < NANG; a++) {
                int l = level_of(a);
                uint8_t q = l == 1 ? c->i1[b * 8 + a] : c->iu[b * 7 + a - 8];
                if (q >= c->cb[l - 1].k)
                    return rb_error_set(RB_EINVAL, "polarquant: code %zu has index %u >= %zu", i, q,
                                        c->cb[l - 1].k);
                c->ang[b * NANG + a] = c->cb[l - 1].centroids[q];
            }
            if (c->fp32) {
                float r;
                memcpy(&r, side + 4 * b, 4);
                c->rad[b] = r;
            } else {
                uint16_t h;
                memcpy(&h, side + 2 * b, 2);
                c->rad[b] = rb_f16_to_f32(h);
            }
        }
        double scratch[BLOCK];
        rb_polar_inverse(c->rad, c->ang, c->nb, LEVELS, c->xd, scratch);
        for (size_t j = 0; j < d; j++) xhat[i * d + j] = (float) c->xd[j];
    }
    return rb_rotation_apply(&c->rot, xhat, count, d, RB_INVERSE);
}

static const rb_codec_ops pq_ops = {
    .create = pq_create,
    .check = pq_check,
    .code_bytes = pq_code_bytes,
    .bits = pq_bits,
    .encode = pq_encode,
    .decode = pq_decode,
    .destroy = pq_destroy,
};

const rb_method rb_method_polarquant = {
    .name = "polarquant",
    .family = RB_FAMILY_CODEC,
    .paper = "arXiv:2502.02617",
    .summary = "recursive polar angles on 16-coordinate blocks, (4,2,2,2) bits + fp16 radius",
    .version = 1,
    .params = pq_params,
    .nparams = sizeof pq_params / sizeof pq_params[0],
    .codec = &pq_ops,
};
