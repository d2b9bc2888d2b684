/* The datasets layer's public header: named float tensors produced by generators and loaders,
 * the registry of dataset kinds with their parameter tables, and file readers. */
#ifndef RB_DATASET_H
#define RB_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

enum { RB_TENSOR_NDIM_MAX = 4, RB_DATASET_TENSORS_MAX = 8 };

/* A dense row-major float32 tensor owned by its dataset. */
typedef struct rb_tensor {
    char name[32]; /* "x", "queries", "W", "X", "K", "V", "Q", ... */
    size_t ndim;
    size_t shape[RB_TENSOR_NDIM_MAX];
    float *data;
} rb_tensor;

size_t rb_tensor_numel(const rb_tensor *t);

/* A dataset is a set of tensors; each method family reads the ones it needs (codecs: "x" = base
 * vectors count x dim, "queries" = nq x dim; layers: "W" out x in, "X" tokens x in; KV: "K", "V",
 * "Q" tokens x heads x head_dim). Sparse signals are too long to store: they are sampled through
 * `sample` (x[idx[i]] into out[i]) over N = 2^log2n. */
typedef struct rb_dataset {
    rb_tensor tensors[RB_DATASET_TENSORS_MAX];
    size_t ntensors;
    unsigned log2n;
    int (*sample)(const struct rb_dataset *ds, const uint64_t *idx, size_t count, double *out);
    void *signal; /* the sampler's state, freed by rb_dataset_free through signal_free */
    void (*signal_free)(void *signal);
    char
        hash[65]; /* sha256 (hex) of the tensors' shapes and bytes, or of the signal's definition */
} rb_dataset;

/* A generator or loader, with its declared parameters. `load` fills *ds deterministically from
 * (params, seed); loaders ignore the seed. Errors name the parameter or file. */
typedef struct rb_dataset_kind {
    const char *name;
    const char *summary;
    const rb_param_def *params;
    size_t nparams;
    int (*load)(const rb_params *p, uint64_t seed, rb_dataset *ds);
} rb_dataset_kind;

const rb_dataset_kind *const *rb_dataset_kinds_all(size_t *count);
const rb_dataset_kind *rb_dataset_kind_find(const char *name);

/* Adds a tensor of the given shape (allocated, zeroed) and returns it through *t. */
int rb_dataset_add(rb_dataset *ds, const char *name, size_t ndim, const size_t *shape,
                   rb_tensor **t);
const rb_tensor *rb_dataset_tensor(const rb_dataset *ds, const char *name);
/* Computes ds->hash over every tensor (name, shape, bytes) in order. */
void rb_dataset_hash(rb_dataset *ds);
void rb_dataset_free(rb_dataset *ds);

#endif
