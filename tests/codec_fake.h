/* A fake vector codec for the evaluator tests: its code is the vector itself (dim floats), so a
 * test's decode or inner_product can make every metric's answer known. The tests fill the rest of
 * an rb_codec_ops with these and their own decode (and inner_product). */
#ifndef RB_TESTS_CODEC_FAKE_H
#define RB_TESTS_CODEC_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "methods/method.h"

typedef struct rbt_codec_fake {
    size_t dim;
    int mode; /* rbt_codec_fake_mode when created: what the test's decode should do */
} rbt_codec_fake;

extern int rbt_codec_fake_mode;

int rbt_codec_fake_create(const rb_params *p, size_t dim, uint64_t seed, void **state);
size_t rbt_codec_fake_code_bytes(const void *state);
double rbt_codec_fake_bits(const void *state); /* 32: the vector in fp32 */
int rbt_codec_fake_encode(void *state, const float *x, size_t count, uint8_t *codes);
void rbt_codec_fake_destroy(void *state);

#define RBT_CODEC_FAKE_OPS                                                    \
    .create = rbt_codec_fake_create, .code_bytes = rbt_codec_fake_code_bytes, \
    .bits = rbt_codec_fake_bits, .encode = rbt_codec_fake_encode,             \
    .destroy = rbt_codec_fake_destroy

#endif
