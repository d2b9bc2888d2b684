/* The fake vector codec of tests/codec_fake.h. */
#include "tests/codec_fake.h"

#include <stdlib.h>
#include <string.h>

int rbt_codec_fake_mode;

int rbt_codec_fake_create(const rb_params *p, size_t dim, uint64_t seed, void **state) {
    (void) p;
    (void) seed;
    rbt_codec_fake *f = malloc(sizeof *f);
    if (!f) return RB_ENOMEM;
    f->dim = dim;
    f->mode = rbt_codec_fake_mode;
    *state = f;
    return 0;
}

size_t rbt_codec_fake_code_bytes(const void *state) {
    return ((const rbt_codec_fake *) state)->dim * sizeof(float);
}

double rbt_codec_fake_bits(const void *state) {
    (void) state;
    return 32;
}

int rbt_codec_fake_encode(void *state, const float *x, size_t count, uint8_t *codes) {
    memcpy(codes, x, count * rbt_codec_fake_code_bytes(state));
    return 0;
}

void rbt_codec_fake_destroy(void *state) {
    free(state);
}
