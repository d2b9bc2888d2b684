/* One object for "the rotation a method was configured with" (none, randomized Hadamard, two-block
 * randomized Hadamard, Haar, QR without the sign fix), so every method shares the same choice,
 * seeds and inverse. */
#ifndef RB_ROTATION_H
#define RB_ROTATION_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/rotate.h"

typedef enum rb_rotation_kind {
    RB_ROT_NONE = 0,
    RB_ROT_RHT,  /* H D x / sqrt(n), n any supported Hadamard order */
    RB_ROT_RHT2, /* H D2 H D1 x / n */
    RB_ROT_HAAR, /* dense Haar-random orthogonal (QR with the sign fix) */
    RB_ROT_QR, /* dense orthogonal, the same QR without the sign fix (TurboQuant's released code) */
} rb_rotation_kind;

/* The parameter choices every method's `rotation` takes, in enum order. */
#define RB_ROTATION_CHOICES "none|rht|rht2|haar|qr"

/* Whether the kind is a dense n x n matrix (applied by GEMM, any n). */
static inline int rb_rotation_is_dense(rb_rotation_kind kind) {
    return kind == RB_ROT_HAAR || kind == RB_ROT_QR;
}

typedef struct rb_rotation {
    rb_rotation_kind kind;
    size_t n;
    rb_rht rht;
    float *Q;       /* dense kinds: n x n row-major */
    float *scratch; /* dense kinds: rows x n, grown on demand (out-of-place GEMM) */
    size_t scratch_rows;
} rb_rotation;

/* Builds the rotation of length n from (kind, seed): RB_ESIZE when n is not a supported Hadamard
 * order for the RHT kinds (the message lists the nearest sizes). */
int rb_rotation_init(rb_rotation *r, rb_rotation_kind kind, size_t n, uint64_t seed);
/* rb_rotation_init's rule on n alone (its error and message), building nothing: for the
 * methods' `check` (methods/method.h). */
int rb_rotation_check(rb_rotation_kind kind, size_t n);
/* The same from a method's `rotation` parameter value (RB_EINVAL for an unknown name). */
int rb_rotation_check_name(const char *name, size_t n);
/* kind from its name ("none", "rht", "rht2", "haar", "qr"); RB_EINVAL otherwise. */
int rb_rotation_kind_parse(const char *name, rb_rotation_kind *kind);
/* In place on `count` rows of length n with row stride `stride`. */
int rb_rotation_apply(rb_rotation *r, float *data, size_t count, size_t stride, rb_dir dir);
void rb_rotation_free(rb_rotation *r);

/* The error for an input row x (d floats, finite or not) whose rotation came out non-finite:
 * RB_ENUMERIC naming "<who>: vector <index>" and the cause, a NaN / Inf coordinate of the input
 * or (a finite row) a norm too close to FLT_MAX for the transform's intermediate sums. Codecs call
 * it where they find the rotated row non-finite, so that the message is about the input. */
int rb_rotation_overflow_error(const char *who, const float *x, size_t d, size_t index);

#endif
