/* The configured rotation of a method: dispatches to the RHT or a dense matrix (Haar, or QR without
 * the sign fix). */
#include "kernels/rotation.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

static const char *const kind_names[] = {"none", "rht", "rht2", "haar", "qr"};

int rb_rotation_kind_parse(const char *name, rb_rotation_kind *kind) {
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (rb_rotation_kind) i;
            return RB_OK;
        }
    return rb_error_set(RB_EINVAL, "rotation '%s' is not one of %s", name, RB_ROTATION_CHOICES);
}

int rb_rotation_check(rb_rotation_kind kind, size_t n) {
    if (kind != RB_ROT_RHT && kind != RB_ROT_RHT2) return RB_OK;
    int rc = rb_hadamard_lookup(n, NULL, NULL);
    if (rc == RB_ESIZE) /* the user's way out, after the sizes the RHT takes */
        return rb_error_set(rc, "%s; rotation: haar, qr or none takes any dimension",
                            rb_error_detail());
    return rc;
}

int rb_rotation_check_name(const char *name, size_t n) {
    rb_rotation_kind kind = RB_ROT_NONE;
    int rc = rb_rotation_kind_parse(name, &kind);
    return rc ? rc : rb_rotation_check(kind, n);
}

int rb_rotation_init(rb_rotation *r, rb_rotation_kind kind, size_t n, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->n = n;
    int rc = rb_rotation_check(kind, n);
    if (rc) return rc;
    if (kind == RB_ROT_RHT || kind == RB_ROT_RHT2)
        return rb_rht_init(&r->rht, n, kind == RB_ROT_RHT ? 1 : 2, seed);
    if (!rb_rotation_is_dense(kind)) return RB_OK;
    double *Q = malloc(n * n * sizeof *Q);
    r->Q = malloc(n * n * sizeof *r->Q);
    if (!Q || !r->Q) {
        free(Q);
        rb_rotation_free(r);
        return rb_error_set(RB_ENOMEM, "rotation: no memory for a %zu x %zu matrix", n, n);
    }
    rc = kind == RB_ROT_HAAR ? rb_haar_f64(Q, n, seed) : rb_qr_gaussian_f64(Q, n, seed);
    for (size_t i = 0; rc == 0 && i < n * n; i++) r->Q[i] = (float) Q[i];
    free(Q);
    if (rc) rb_rotation_free(r);
    return rc;
}

int rb_rotation_apply(rb_rotation *r, float *data, size_t count, size_t stride, rb_dir dir) {
    switch (r->kind) {
    case RB_ROT_NONE:
        return RB_OK;
    case RB_ROT_RHT:
    case RB_ROT_RHT2:
        return rb_rht_apply_f32(&r->rht, data, count, stride, dir);
    case RB_ROT_HAAR:
    case RB_ROT_QR:
        break;
    }
    if (count > r->scratch_rows) {
        float *s = realloc(r->scratch, count * r->n * sizeof *s);
        if (!s) return rb_error_set(RB_ENOMEM, "rotation: no memory for %zu rows", count);
        r->scratch = s;
        r->scratch_rows = count;
    }
    int rc = rb_rotate_dense_f32(r->Q, r->n, data, count, stride, r->scratch, r->n, dir);
    for (size_t i = 0; rc == 0 && i < count; i++)
        memcpy(data + i * stride, r->scratch + i * r->n, r->n * sizeof *data);
    return rc;
}

void rb_rotation_free(rb_rotation *r) {
    rb_rht_free(&r->rht);
    free(r->Q);
    free(r->scratch);
    memset(r, 0, sizeof *r);
}

int rb_rotation_overflow_error(const char *who, const float *x, size_t d, size_t index) {
    double nrm = 0;
    for (size_t j = 0; j < d; j++) nrm += (double) x[j] * x[j];
    if (!isfinite(nrm))
        return rb_error_set(RB_ENUMERIC, "%s: vector %zu has a NaN or infinite coordinate", who,
                            index);
    return rb_error_set(RB_ENUMERIC,
                        "%s: vector %zu (norm %.3g) overflows fp32 in the rotation: its norm is "
                        "too close to the fp32 limit (%.3g)",
                        who, index, sqrt(nrm), (double) FLT_MAX);
}
