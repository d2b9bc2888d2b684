/* Philox4x32-10 streams: bits, uniforms, normals and Rademacher signs, indexed by element. */
#include "kernels/rng.h"

#include <math.h>

#include <Random123/philox.h>

void rb_philox4x32(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    philox4x32_ctr_t c = {
        {(uint32_t) block, (uint32_t) (block >> 32), (uint32_t) stream, (uint32_t) (stream >> 32)}};
    philox4x32_key_t k = {{(uint32_t) seed, (uint32_t) (seed >> 32)}};
    philox4x32_ctr_t r = philox4x32(c, k);
    for (int i = 0; i < 4; i++) out[i] = r.v[i];
}

void rb_rng_bits(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, uint32_t *out) {
    uint32_t r[4];
    uint64_t have = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = offset + i;
        if (e / 4 != have) rb_philox4x32(seed, stream, have = e / 4, r);
        out[i] = r[e % 4];
    }
}

void rb_rng_uniform_f32(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    uint32_t r[4];
    uint64_t have = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = offset + i;
        if (e / 4 != have) rb_philox4x32(seed, stream, have = e / 4, r);
        out[i] = (float) (((double) (r[e % 4] >> 8) + 0.5) * 0x1p-24);
    }
}

static void uniform64_pair(uint64_t seed, uint64_t stream, uint64_t block, double u[2]) {
    uint32_t r[4];
    rb_philox4x32(seed, stream, block, r);
    for (int j = 0; j < 2; j++) {
        uint64_t w = ((uint64_t) r[2 * j + 1] << 32) | r[2 * j];
        u[j] = ((double) (w >> 11) + 0.5) * 0x1p-53;
    }
}

void rb_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double *out) {
    double u[2];
    uint64_t have = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = offset + i;
        if (e / 2 != have) uniform64_pair(seed, stream, have = e / 2, u);
        out[i] = u[e % 2];
    }
}

void rb_rng_normal_f64(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, double *out) {
    double z[2];
    uint64_t have = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = offset + i;
        if (e / 2 != have) {
            double u[2];
            uniform64_pair(seed, stream, have = e / 2, u);
            double r = sqrt(-2.0 * log(u[0])), t = 2.0 * M_PI * u[1];
            z[0] = r * cos(t);
            z[1] = r * sin(t);
        }
        out[i] = z[e % 2];
    }
}

void rb_rng_normal_f32(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    enum { CHUNK = 256 };
    double buf[CHUNK];
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        rb_rng_normal_f64(seed, stream, offset + i, m, buf);
        for (size_t j = 0; j < m; j++) out[i + j] = (float) buf[j];
    }
}

void rb_rng_rademacher_f32(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    uint32_t r[4];
    uint64_t have = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = offset + i;
        if (e / 128 != have) rb_philox4x32(seed, stream, have = e / 128, r);
        out[i] = (r[(e % 128) / 32] >> (e % 32)) & 1 ? -1.0f : 1.0f;
    }
}

/* splitmix64 finalizer: a bijective mix, so distinct (base, a, b) rarely collide. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rb_seed_derive(uint64_t base, uint64_t a, uint64_t b) {
    return mix64(mix64(mix64(base) ^ (a + 0x9e3779b97f4a7c15ULL)) ^ (b + 0x632be59bd9b4e019ULL));
}
