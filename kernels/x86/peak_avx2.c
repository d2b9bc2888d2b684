/* AVX2 limit probes: peak fp32 add throughput in registers, and a non-temporal copy. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/peak.h"

/* 8 independent ymm chains (64 adds per step): add latency (2-4 cycles) times two ports, with
 * the 16 ymm registers leaving room for the step operand. */
int rb_peak_add_f32_avx2(uint64_t n, float step, float *sum) {
    __m256 s = _mm256_set1_ps(step);
    /* Unknown starting values (see the AVX-512 version): keeps the 8 chains distinct. */
    const volatile float *z = rb_peak_zeros;
    __m256 a0 = _mm256_set1_ps(z[0]), a1 = _mm256_set1_ps(z[1]), a2 = _mm256_set1_ps(z[2]),
           a3 = _mm256_set1_ps(z[3]), a4 = _mm256_set1_ps(z[4]), a5 = _mm256_set1_ps(z[5]),
           a6 = _mm256_set1_ps(z[6]), a7 = _mm256_set1_ps(z[7]);
    for (uint64_t i = 0; i < n; i += 64) {
        a0 = _mm256_add_ps(a0, s);
        a1 = _mm256_add_ps(a1, s);
        a2 = _mm256_add_ps(a2, s);
        a3 = _mm256_add_ps(a3, s);
        a4 = _mm256_add_ps(a4, s);
        a5 = _mm256_add_ps(a5, s);
        a6 = _mm256_add_ps(a6, s);
        a7 = _mm256_add_ps(a7, s);
    }
    __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    *sum = _mm_cvtss_f32(h);
    return RB_OK;
}

/* As the AVX-512 version, with 32-byte lines. */
int rb_copy_stream_avx2(void *dst, const void *src, size_t bytes) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    size_t head = (32 - ((uintptr_t) d & 31)) & 31;
    if (head > bytes) head = bytes;
    if (head) memcpy(d, s, head);
    d += head, s += head, bytes -= head;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        __m256i v0 = _mm256_loadu_si256((const __m256i *) (s + i));
        __m256i v1 = _mm256_loadu_si256((const __m256i *) (s + i + 32));
        __m256i v2 = _mm256_loadu_si256((const __m256i *) (s + i + 64));
        __m256i v3 = _mm256_loadu_si256((const __m256i *) (s + i + 96));
        _mm256_stream_si256((__m256i *) (d + i), v0);
        _mm256_stream_si256((__m256i *) (d + i + 32), v1);
        _mm256_stream_si256((__m256i *) (d + i + 64), v2);
        _mm256_stream_si256((__m256i *) (d + i + 96), v3);
    }
    for (; i + 32 <= bytes; i += 32)
        _mm256_stream_si256((__m256i *) (d + i), _mm256_loadu_si256((const __m256i *) (s + i)));
    if (i < bytes) memcpy(d + i, s + i, bytes - i);
    _mm_sfence();
    return RB_OK;
}

/* As the AVX-512 version, with 32-byte lines. */
int rb_fill_stream_avx2(void *dst, int value, size_t bytes) {
    unsigned char *d = dst;
    size_t head = (32 - ((uintptr_t) d & 31)) & 31;
    if (head > bytes) head = bytes;
    if (head) memset(d, value, head);
    d += head, bytes -= head;
    const __m256i v = _mm256_set1_epi8((char) value);
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        _mm256_stream_si256((__m256i *) (d + i), v);
        _mm256_stream_si256((__m256i *) (d + i + 32), v);
        _mm256_stream_si256((__m256i *) (d + i + 64), v);
        _mm256_stream_si256((__m256i *) (d + i + 96), v);
    }
    for (; i + 32 <= bytes; i += 32) _mm256_stream_si256((__m256i *) (d + i), v);
    if (i < bytes) memset(d + i, value, bytes - i);
    _mm_sfence();
    return RB_OK;
}
