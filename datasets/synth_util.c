/* Helpers shared by the synthetic generators: RoPE, distinct picks, sparse index limbs. */
#include <math.h>
#include <stdlib.h>

#include "datasets/synth.h"

void rb_rope_apply(float *x, size_t head_dim, double pos, double base) {
    RB_ASSERT(head_dim % 2 == 0);
    size_t half = head_dim / 2;
    for (size_t i = 0; i < half; i++) {
        double theta = pos * pow(base, -2.0 * (double) i / (double) head_dim);
        double c = cos(theta), s = sin(theta), a = x[i], b = x[i + half];
        x[i] = (float) (a * c - b * s);
        x[i + half] = (float) (b * c + a * s);
    }
}

int rb_pick_distinct(uint64_t seed, uint64_t stream, size_t n, size_t m, size_t *out) {
    if (m > n) return rb_error_set(RB_EINVAL, "cannot pick %zu distinct values of %zu", m, n);
    if (!m) return RB_OK;
    size_t *perm = malloc(n * sizeof *perm);
    if (!perm) return rb_error_set(RB_ENOMEM, "no memory to pick %zu of %zu", m, n);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t j = 0; j < m; j++) {
        double u;
        rb_rng_uniform_f64(seed, stream, j, 1, &u);
        size_t r = j + (size_t) (u * (double) (n - j));
        if (r >= n) r = n - 1;
        size_t t = perm[j];
        perm[j] = perm[r];
        perm[r] = t;
        out[j] = perm[j];
    }
    free(perm);
    return RB_OK;
}

uint64_t rb_sparse_support_index(const rb_tensor *support, size_t j) {
    uint64_t v = 0;
    for (int l = RB_SPARSE_LIMBS - 1; l >= 0; l--)
        v = (v << RB_SPARSE_LIMB_BITS) | (uint64_t) support->data[j * RB_SPARSE_LIMBS + l];
    return v;
}

void rb_sparse_support_store(rb_tensor *support, size_t j, uint64_t index) {
    for (int l = 0; l < RB_SPARSE_LIMBS; l++) {
        support->data[j * RB_SPARSE_LIMBS + l] =
            (float) (index & ((UINT64_C(1) << RB_SPARSE_LIMB_BITS) - 1));
        index >>= RB_SPARSE_LIMB_BITS;
    }
}
