/* A fake KV method for the evaluator tests: it keeps K and V exactly, and read() returns them
 * through a distortion the test chooses, so every metric has a known answer. */
#ifndef RB_TESTS_KV_FAKE_H
#define RB_TESTS_KV_FAKE_H

#include <stddef.h>

#include "methods/method.h"

typedef struct rbt_kv_fake {
    rb_kv_geom g;
    size_t tokens, layer; /* layer: creation order (the evaluator makes one per layer) */
    float *K, *V;         /* the appended cache, exact */
} rbt_kv_fake;

/* What read() returns: distort(f, K, V) fills K and V (tokens x heads x head_dim) from f; NULL
 * returns the cache unchanged. */
extern void (*rbt_kv_fake_distort)(const rbt_kv_fake *f, float *K, float *V);
/* Instances created so far; tests reset it to 0 before each evaluation. */
extern size_t rbt_kv_fake_created;
extern const rb_method rbt_kv_fake_method;

#endif
