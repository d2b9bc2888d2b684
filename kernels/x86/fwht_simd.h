/* The register-, L1- and cache-blocked FWHT shared by the AVX2 and AVX-512 variants; included
 * once by kernels/x86/fwht_avx2.c and fwht_avx512.c after they define the vector operations. */
/* The includer defines:
 *   FV, FW, FW_LOG   vector type, lanes, log2(lanes)
 *   FR               log2 of the vectors one cross-vector pass keeps in registers
 *   fv_load, fv_store, fv_add, fv_sub, fv_mul, fv_set1   unaligned load/store and arithmetic
 *   fv_inreg(v)      the in-register stages of strides 1 .. FW/2, in ascending order
 *   FWHT_VARIANT     the name of the variant function to define
 *
 * Why every variant matches the reference bit for bit: the reference applies the stage of stride
 * h = 1, 2, 4, ... to every element in turn, and each output of a stage is fl(a + b) or fl(a - b)
 * of its two inputs from the previous stage. Blocking only regroups which butterflies run
 * together; any element still sees its stages in ascending order with the same operands, so the
 * roundings are the same. The scale is one multiply per element after the last stage, as in the
 * reference (skipped when scale == 1).
 *
 * Structure, for one row of n = 2^k floats:
 *   k <= L1_LOG: in L1. A leaf loads 2^FR vectors, does the in-register stages on each and FR
 *     cross-vector stages; then radix-2^FR passes over the row do the remaining stages.
 *   larger k: the low s stages run on contiguous blocks of 2^s floats (recursively), then one
 *     register pass does the k - s <= FR high stages over all columns, with the scale fused.
 *     Up to 2^16 the blocks are L1 blocks and the row stays in L2; beyond, s = k - FR, so at
 *     2^24 the row is read from memory twice by passes that stream (2^16-float L2 blocks, then
 *     the 16-way pass at stride 2^20) plus one 16-way pass within each 4 MiB (L3) block.
 *     A gather of 256 one-line columns into an L1 scratch (a literal two-pass scheme) measured
 *     three times slower here: the lines are 4 KiB-multiples apart, so they share cache sets
 *     and defeat the prefetchers. */
#include <stddef.h>
#include <stdint.h>

#include "kernels/error.h"
#include "kernels/fwht.h"
#include "kernels/pool.h"

#include "kernels/x86/simd_util.h" /* RB_UNROLL(n): full unrolling of fixed-trip loops */

#define FWHT_INLINE static inline __attribute__((always_inline))

enum {
    L1_LOG = 13,         /* a block of 2^13 floats (32 KiB of 48) stays in L1 for all its stages */
    L2_LOG = 16,         /* a block of 2^16 floats (256 KiB) stays in L2 */
    PAR_ROW_LOG = 17,    /* rows at least this long are split across threads internally */
    ROWS_GRAIN_LOG = 16, /* a batch task holds about 2^16 floats of rows */
    ROW_PAR_CHUNKS = 16  /* each phase of a threaded row: this many contiguous tasks */
};

/* One butterfly: a, b -> a + b, a - b (the reference's order of operands). */
#define FV_BFLY(a, b)         \
    do {                      \
        FV t_ = fv_add(a, b); \
        (b) = fv_sub(a, b);   \
        (a) = t_;             \
    } while (0)

/* R cross-vector stages on v[0 .. 2^R), vector strides 1, 2, ..., 2^(R-1). */
FWHT_INLINE void cross_stages(FV *v, int r) {
    RB_UNROLL(8)
    for (int s = 0; s < r; s++) {
        RB_UNROLL(16)
        for (int i = 0; i < (1 << r); i++)
            if (!(i & (1 << s))) FV_BFLY(v[i], v[i + (1 << s)]);
    }
}

/* One radix-2^r pass over a vector array (vector j at src + j * ss, written to dst + j * ds;
 * src may equal dst): the stages of vector strides h, 2h, ..., 2^(r-1) h, for the butterfly
 * groups whose first vector c lies in [c0, c1), all within one span of h * 2^r vectors. */
FWHT_INLINE void cols_r(const float *src, size_t ss, float *dst, size_t ds, size_t h, size_t c0,
                        size_t c1, int r, float scale, int do_scale) {
    FV v[1 << FR];
    const FV sc = fv_set1(scale);
    for (size_t c = c0; c < c1; c++) {
        /* 2^r streams 64 KiB or more apart outrun the hardware prefetchers (and share L1
         * sets): fetch each stream a few vectors ahead. Measured: 2^24 in 9.6 ms, not 11 (for
         * r = 2 too, since the radix-16 high passes became two radix-4 sweeps). Streams 256 KiB
         * or more apart come from L3 or memory: fetch them 32 vectors (half a strip) ahead.
         * Measured at 2^24, best of 12, ms, distance 4 -> 32: the L3 passes of the 4 MiB blocks
         * 1.83 -> 1.5, the final pass from memory 3.5 -> 3.0; 2^18 rows (in L2) are 3% faster
         * with 4, and a 2^20 row (in L3) measured the same within noise. */
        if (h >= 1024) {
            const size_t pf = h >= 4096 ? 32 : 4;
            RB_UNROLL(16)
            for (int i = 0; i < (1 << r); i++)
                _mm_prefetch((const char *) (src + (c + pf + (size_t) i * h) * ss), _MM_HINT_T0);
        }
        RB_UNROLL(16)
        for (int i = 0; i < (1 << r); i++) v[i] = fv_load(src + (c + (size_t) i * h) * ss);
        cross_stages(v, r);
        if (do_scale) {
            RB_UNROLL(16)
            for (int i = 0; i < (1 << r); i++) v[i] = fv_mul(v[i], sc);
        }
        RB_UNROLL(16)
        for (int i = 0; i < (1 << r); i++) fv_store(dst + (c + (size_t) i * h) * ds, v[i]);
    }
}

/* The whole pass over m vectors: every span of h * 2^r vectors, columns [b, b + h) of each. */
FWHT_INLINE void pass_r(const float *src, size_t ss, float *dst, size_t ds, size_t m, size_t h,
                        int r, float scale, int do_scale) {
    for (size_t b = 0; b < m; b += h << r)
        cols_r(src, ss, dst, ds, h, b, b + h, r, scale, do_scale);
}

/* pass_r with r a run-time value 1..FR: one specialization per radix, so v stays in registers. */
static void pass(const float *src, size_t ss, float *dst, size_t ds, size_t m, size_t h, int r,
                 float scale) {
    int sc = scale != 1.0f;
#define FWHT_CASE(R)                                     \
    case R:                                              \
        if (sc)                                          \
            pass_r(src, ss, dst, ds, m, h, R, scale, 1); \
        else                                             \
            pass_r(src, ss, dst, ds, m, h, R, 1.0f, 0);  \
        break;
    switch (r) {
        FWHT_CASE(1)
        FWHT_CASE(2)
        FWHT_CASE(3)
#if FR >= 4
        FWHT_CASE(4)
#endif
    default:
        break;
    }
#undef FWHT_CASE
}

/* The high r <= FR stages of a contiguous row of m vectors (span = m = h * 2^r), restricted to
 * the columns [c0, c1) of [0, h): the unit of work for threads. */
static void high_cols(float *x, size_t h, size_t c0, size_t c1, int r, float scale) {
    int sc = scale != 1.0f;
#define FWHT_CASE(R)                                      \
    case R:                                               \
        if (sc)                                           \
            cols_r(x, FW, x, FW, h, c0, c1, R, scale, 1); \
        else                                              \
            cols_r(x, FW, x, FW, h, c0, c1, R, 1.0f, 0);  \
        break;
    switch (r) {
        FWHT_CASE(1)
        FWHT_CASE(2)
        FWHT_CASE(3)
#if FR >= 4
        FWHT_CASE(4)
#endif
    default:
        break;
    }
#undef FWHT_CASE
}

#if FR >= 4
/* The same four stages (r == 4) as two radix-4 sweeps, one strip of columns at a time so the
 * second sweep finds the strip in L1/L2. Why: the 16 vectors of a radix-16 column lie a
 * multiple of 4 KiB apart once h >= 64, so they share one L1 set (12 ways on Zen 5) and each
 * store misses; four vectors per set do not. Measured on a 256 KiB row held in L2: the four
 * stages at h = 256 take 2.4 ms per 2^24 floats as one radix-16 pass, 0.92 ms as two radix-4
 * sweeps. A strip (16 x 32 lines) stays in L1 between its sweeps, so rows from memory still
 * take one memory pass: one-thread best-of medians, in ms, radix-16 -> split: 2^17 0.034 ->
 * 0.025, 2^20 0.40 -> 0.28, 2^21 0.86 -> 0.59, 2^23 4.55 -> 4.07, 2^24 ~10.3 -> ~9.8 (noisy). */
static void high_cols_split(float *x, size_t h, size_t c0, size_t c1, float scale) {
    enum { STRIP = 32 };
    for (size_t a = c0; a < c1; a += STRIP) {
        size_t b = a + STRIP < c1 ? a + STRIP : c1;
        for (size_t g = 0; g < 4; g++)
            cols_r(x + g * 4 * h * FW, FW, x + g * 4 * h * FW, FW, h, a, b, 2, 1.0f, 0);
        if (scale != 1.0f) {
            for (size_t t = 0; t < 4; t++)
                cols_r(x, FW, x, FW, 4 * h, a + t * h, b + t * h, 2, scale, 1);
        } else {
            for (size_t t = 0; t < 4; t++)
                cols_r(x, FW, x, FW, 4 * h, a + t * h, b + t * h, 2, 1.0f, 0);
        }
    }
}
#endif

/* The high pass (see high_cols), as radix-16 or as two radix-4 sweeps. */
static void high_pass(float *x, size_t h, size_t c0, size_t c1, int r, float scale) {
#if FR >= 4
    if (r == 4 && h >= 64) { /* vectors 4 KiB or more apart */
        high_cols_split(x, h, c0, c1, scale);
        return;
    }
#endif
    high_cols(x, h, c0, c1, r, scale);
}

/* The leaf on contiguous x: chunks of 2^r vectors, in-register stages on each vector, then r
 * cross-vector stages. */
FWHT_INLINE void leaf_r(float *x, size_t m, int r, float scale, int do_scale) {
    FV v[1 << FR];
    const FV sc = fv_set1(scale);
    for (size_t b = 0; b < m; b += (size_t) 1 << r) {
        float *p = x + b * FW;
        RB_UNROLL(16)
        for (int i = 0; i < (1 << r); i++) v[i] = fv_inreg(fv_load(p + i * FW));
        cross_stages(v, r);
        if (do_scale) {
            RB_UNROLL(16)
            for (int i = 0; i < (1 << r); i++) v[i] = fv_mul(v[i], sc);
        }
        RB_UNROLL(16)
        for (int i = 0; i < (1 << r); i++) fv_store(p + i * FW, v[i]);
    }
}

static void leaf(float *x, size_t m, int r, float scale) {
    int sc = scale != 1.0f;
#define FWHT_CASE(R)                   \
    case R:                            \
        if (sc)                        \
            leaf_r(x, m, R, scale, 1); \
        else                           \
            leaf_r(x, m, R, 1.0f, 0);  \
        break;
    switch (r) {
        FWHT_CASE(0)
        FWHT_CASE(1)
        FWHT_CASE(2)
        FWHT_CASE(3)
#if FR >= 4
        FWHT_CASE(4)
#endif
    default:
        break;
    }
#undef FWHT_CASE
}

/* The radix of the next pass when `left` stages remain: at most FR, and balanced (5 -> 3 + 2,
 * not 4 + 1) so that no pass does a lone stage when the same number of passes avoids it. */
static int radix_next(int left) {
    if (left <= FR) return left;
    if (left < 2 * FR) return (left + 1) / 2;
    return FR;
}

/* All k stages of a contiguous L1-sized block (FW_LOG <= k <= L1_LOG). */
static void block_l1(float *x, int k, float scale) {
    int mlog = k - FW_LOG, r = mlog < FR ? mlog : FR;
    size_t m = (size_t) 1 << mlog;
    leaf(x, m, r, r == mlog ? scale : 1.0f);
    for (int done = r; done < mlog; done += r) {
        r = radix_next(mlog - done);
        pass(x, FW, x, FW, m, (size_t) 1 << done, r, done + r == mlog ? scale : 1.0f);
    }
}

/* How a row of 2^k floats (k > L1_LOG) splits: low stages on blocks of 2^s, then k - s high. */
static int split_low(int k) {
    if (k <= L2_LOG) return L1_LOG; /* L1 blocks, 1..3 high stages */
    return k - FR;                  /* recursively blocked low part, FR high stages */
}

/* The whole transform of one contiguous row of 2^k floats, on this thread. */
static void row_serial(float *x, int k, float scale) {
    if (k <= L1_LOG) {
        block_l1(x, k, scale);
        return;
    }
    int s = split_low(k), hi = k - s;
    size_t blk = (size_t) 1 << s, nblk = (size_t) 1 << hi;
    for (size_t b = 0; b < nblk; b++) row_serial(x + b * blk, s, 1.0f);
    high_pass(x, blk / FW, 0, blk / FW, hi, scale);
}

/* One long row across the pool: the low-stage blocks in parallel, then the column groups, each
 * phase as ROW_PAR_CHUNKS contiguous tasks. The pool gives each thread a contiguous range of
 * tasks (the same one on every call), so a thread's blocks and columns are contiguous spans that
 * the prefetchers follow, and only the exchange inherent in the transform (half of the data, once
 * per phase) crosses between cores. The old split (blocks of one task each and tasks of 16
 * columns, dealt out one at a time from a shared counter) interleaved the threads' columns 1 KiB
 * apart and moved most of the data between the cores on every phase: 2 threads were 2.5-4x
 * slower than one. Measured here now, 1 -> 2 threads, in us: 2^17 23 -> 13.6, 2^18 52 -> 29,
 * 2^20 229 -> 117. */
struct row_par {
    float *x;
    int k, s;
    float scale;
};

static void row_par_blocks(void *ctx, size_t begin, size_t end) {
    const struct row_par *p = ctx;
    for (size_t b = begin; b < end; b++) row_serial(p->x + (b << p->s), p->s, 1.0f);
}

static void row_par_cols(void *ctx, size_t begin, size_t end) {
    const struct row_par *p = ctx;
    size_t blk = (size_t) 1 << p->s;
    high_pass(p->x, blk / FW, begin, end, p->k - p->s, p->scale);
}

static void row_parallel(float *x, int k, float scale) {
    struct row_par p = {x, k, split_low(k), scale};
    size_t nblk = (size_t) 1 << (k - p.s), ncols = ((size_t) 1 << p.s) / FW;
    size_t gblk = nblk / ROW_PAR_CHUNKS, gcols = ncols / ROW_PAR_CHUNKS;
    rb_parallel_for(nblk, gblk ? gblk : 1, row_par_blocks, &p);
    rb_parallel_for(ncols, gcols ? gcols : 1, row_par_cols, &p);
}

/* A batch of shorter rows across the pool. */
struct rows_par {
    float *data;
    size_t stride;
    int k;
    float scale;
};

static void rows_task(void *ctx, size_t begin, size_t end) {
    const struct rows_par *p = ctx;
    for (size_t r = begin; r < end; r++) row_serial(p->data + r * p->stride, p->k, p->scale);
}

int FWHT_VARIANT(float *data, size_t n, size_t count, size_t stride, float scale);

int FWHT_VARIANT(float *data, size_t n, size_t count, size_t stride, float scale) {
    int k = rb_log2_exact(n);
    if (k < FW_LOG) return RB_EDECLINE; /* shorter than one vector: the next variant */
    if (k >= PAR_ROW_LOG) {
        for (size_t r = 0; r < count; r++) row_parallel(data + r * stride, k, scale);
        return RB_OK;
    }
    struct rows_par p = {data, stride, k, scale};
    size_t grain = k >= ROWS_GRAIN_LOG ? 1 : (size_t) 1 << (ROWS_GRAIN_LOG - k);
    if (count <= grain)
        rows_task(&p, 0, count); /* one task: skip the pool */
    else
        rb_parallel_for(count, grain, rows_task, &p);
    return RB_OK;
}
