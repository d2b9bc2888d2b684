/* AVX-512 limit probes: peak fp32 add throughput in registers, and a non-temporal copy. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/peak.h"

/* 16 independent zmm chains (256 adds per step): covers add latency (2-4 cycles) times two add
 * ports with room to spare, while leaving registers for the step operand. */
int rb_peak_add_f32_avx512(uint64_t n, float step, float *sum) {
    __m512 s = _mm512_set1_ps(step);
    /* Starting values the compiler cannot see (zeros read through volatile): otherwise it
     * proves the 16 chains equal and keeps one. */
    const volatile float *z = rb_peak_zeros;
    __m512 a0 = _mm512_set1_ps(z[0]), a1 = _mm512_set1_ps(z[1]), a2 = _mm512_set1_ps(z[2]),
           a3 = _mm512_set1_ps(z[3]), a4 = _mm512_set1_ps(z[4]), a5 = _mm512_set1_ps(z[5]),
           a6 = _mm512_set1_ps(z[6]), a7 = _mm512_set1_ps(z[7]), a8 = _mm512_set1_ps(z[8]),
           a9 = _mm512_set1_ps(z[9]), a10 = _mm512_set1_ps(z[10]), a11 = _mm512_set1_ps(z[11]),
           a12 = _mm512_set1_ps(z[12]), a13 = _mm512_set1_ps(z[13]), a14 = _mm512_set1_ps(z[14]),
           a15 = _mm512_set1_ps(z[15]);
    for (uint64_t i = 0; i < n; i += 256) {
        a0 = _mm512_add_ps(a0, s);
        a1 = _mm512_add_ps(a1, s);
        a2 = _mm512_add_ps(a2, s);
        a3 = _mm512_add_ps(a3, s);
        a4 = _mm512_add_ps(a4, s);
        a5 = _mm512_add_ps(a5, s);
        a6 = _mm512_add_ps(a6, s);
        a7 = _mm512_add_ps(a7, s);
        a8 = _mm512_add_ps(a8, s);
        a9 = _mm512_add_ps(a9, s);
        a10 = _mm512_add_ps(a10, s);
        a11 = _mm512_add_ps(a11, s);
        a12 = _mm512_add_ps(a12, s);
        a13 = _mm512_add_ps(a13, s);
        a14 = _mm512_add_ps(a14, s);
        a15 = _mm512_add_ps(a15, s);
    }
    /* The reduction is outside the count and its order does not matter for exact sums. */
    __m512 t = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                      _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                      _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
    *sum = _mm512_reduce_add_ps(t);
    return RB_OK;
}

/* Head up to dst's 64-byte boundary and the tail with memcpy; the body with unaligned loads and
 * aligned streaming stores, four lines per step; sfence orders the weakly-ordered stores before
 * anyone reads dst. */
int rb_copy_stream_avx512(void *dst, const void *src, size_t bytes) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    size_t head = (64 - ((uintptr_t) d & 63)) & 63;
    if (head > bytes) head = bytes;
    if (head) memcpy(d, s, head);
    d += head, s += head, bytes -= head;
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        __m512i v0 = _mm512_loadu_si512((const void *) (s + i));
        __m512i v1 = _mm512_loadu_si512((const void *) (s + i + 64));
        __m512i v2 = _mm512_loadu_si512((const void *) (s + i + 128));
        __m512i v3 = _mm512_loadu_si512((const void *) (s + i + 192));
        _mm512_stream_si512((void *) (d + i), v0);
        _mm512_stream_si512((void *) (d + i + 64), v1);
        _mm512_stream_si512((void *) (d + i + 128), v2);
        _mm512_stream_si512((void *) (d + i + 192), v3);
    }
    for (; i + 64 <= bytes; i += 64)
        _mm512_stream_si512((void *) (d + i), _mm512_loadu_si512((const void *) (s + i)));
    if (i < bytes) memcpy(d + i, s + i, bytes - i);
    _mm_sfence();
    return RB_OK;
}

/* As rb_copy_stream_avx512 without the loads: memset for the head and tail, aligned streaming
 * stores of one register between, four lines per step. */
int rb_fill_stream_avx512(void *dst, int value, size_t bytes) {
    unsigned char *d = dst;
    size_t head = (64 - ((uintptr_t) d & 63)) & 63;
    if (head > bytes) head = bytes;
    if (head) memset(d, value, head);
    d += head, bytes -= head;
    const __m512i v = _mm512_set1_epi8((char) value);
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        _mm512_stream_si512((void *) (d + i), v);
        _mm512_stream_si512((void *) (d + i + 64), v);
        _mm512_stream_si512((void *) (d + i + 128), v);
        _mm512_stream_si512((void *) (d + i + 192), v);
    }
    for (; i + 64 <= bytes; i += 64) _mm512_stream_si512((void *) (d + i), v);
    if (i < bytes) memset(d + i, value, bytes - i);
    _mm_sfence();
    return RB_OK;
}
