/* The fake KV method of tests/kv_fake.h. */
#include "tests/kv_fake.h"

#include <stdlib.h>
#include <string.h>

void (*rbt_kv_fake_distort)(const rbt_kv_fake *f, float *K, float *V);
size_t rbt_kv_fake_created;

static int fake_create(const rb_params *p, const rb_kv_geom *g, uint64_t seed, void **state) {
    (void) p;
    (void) seed;
    rbt_kv_fake *f = calloc(1, sizeof *f);
    size_t n = g->capacity * g->heads * g->head_dim;
    if (!f) return RB_ENOMEM;
    f->g = *g;
    f->layer = rbt_kv_fake_created++;
    f->K = malloc(n * sizeof(float) + 1);
    f->V = malloc(n * sizeof(float) + 1);
    *state = f;
    return f->K && f->V ? 0 : RB_ENOMEM;
}

static int fake_append(void *state, const float *K, const float *V, size_t tokens) {
    rbt_kv_fake *f = state;
    size_t row = f->g.heads * f->g.head_dim;
    memcpy(f->K + f->tokens * row, K, tokens * row * sizeof(float));
    memcpy(f->V + f->tokens * row, V, tokens * row * sizeof(float));
    f->tokens += tokens;
    return 0;
}

static int fake_read(void *state, float *K, float *V) {
    const rbt_kv_fake *f = state;
    if (rbt_kv_fake_distort) {
        rbt_kv_fake_distort(f, K, V);
    } else {
        size_t n = f->tokens * f->g.heads * f->g.head_dim;
        memcpy(K, f->K, n * sizeof(float));
        memcpy(V, f->V, n * sizeof(float));
    }
    return 0;
}

static size_t fake_tokens(const void *state) {
    return ((const rbt_kv_fake *) state)->tokens;
}

static double fake_bits(const void *state) {
    (void) state;
    return 16.0;
}

static void fake_destroy(void *state) {
    rbt_kv_fake *f = state;
    if (!f) return;
    free(f->K);
    free(f->V);
    free(f);
}

static const rb_kv_ops fake_ops = {.create = fake_create,
                                   .append = fake_append,
                                   .read = fake_read,
                                   .tokens = fake_tokens,
                                   .bits = fake_bits,
                                   .destroy = fake_destroy};

const rb_method rbt_kv_fake_method = {.name = "fake_kv",
                                      .family = RB_FAMILY_CODEC,
                                      .paper = "test",
                                      .summary = "test",
                                      .version = 1,
                                      .kv = &fake_ops};
