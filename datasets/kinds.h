/* The registry list of dataset kinds: one X entry per generator or loader (datasets/<kind>.c). */
#ifndef RB_DATASET_KINDS_H
#define RB_DATASET_KINDS_H

#include "datasets/dataset.h"

#define RB_DATASET_KINDS(X)       \
    X(rb_dataset_gaussian)        \
    X(rb_dataset_sphere)          \
    X(rb_dataset_student_t)       \
    X(rb_dataset_lognormal)       \
    X(rb_dataset_llm_activations) \
    X(rb_dataset_linear_layer)    \
    X(rb_dataset_kv_cache)        \
    X(rb_dataset_sparse_wht)      \
    X(rb_dataset_sparse_npy)      \
    X(rb_dataset_npy)             \
    X(rb_dataset_safetensors)     \
    X(rb_dataset_kv_npy)          \
    X(rb_dataset_kv_safetensors)  \
    X(rb_dataset_fvecs)

#define RB_DATASET_KIND_DECL_(sym) extern const rb_dataset_kind sym;
RB_DATASET_KINDS(RB_DATASET_KIND_DECL_)
#undef RB_DATASET_KIND_DECL_

#endif
