/* Driver shared by the SIMD Hadamard K * 2^m variants (included by hadamard_avx512.c and
 * hadamard_avx2.c): FWHT of the K rows, then the +-1 mix on K x HK_W column tiles.
 *
 * The including file defines, before the include:
 *   HK_W          tile width in floats (a power of 2)
 *   HK_VARIANT    the variant's function name
 *   hk_mix(in, K, coef, scale, out, os): out[i * os + t] = scale * sum_k coef[k K + i] in[k][t]
 *                 for i < K, t < HK_W, the sum in k order from 0 starting at +0.0f, in being a
 *                 64-byte aligned K x HK_W block (the reference's additions, so its bits);
 *   hk_copy(dst, src, len): copies len floats (any len), unaligned;
 *   hk_fwht_tile(in, K, P): the FWHT (unnormalized, the reference's stages) of every aligned
 *                 group of P lanes of the K x HK_W tile, for the P < HK_W that reach it. */
#ifndef RB_HADAMARD_SIMD_H
#define RB_HADAMARD_SIMD_H

#include <math.h>

#include "kernels/error.h"
#include "kernels/fwht.h"
#include "kernels/hadamard_variants.h"
#include "kernels/pool.h"

typedef struct hk_ctx {
    float *data;
    size_t n, stride, K;
    const float *coef;
} hk_ctx;

/* Copies len floats of every row k of a tile column block (tile + k * HK_W) from or to the data
 * (x + k * P). The common lengths (a whole short row: P = 1, 2, 4, 8, 16) get their own loop,
 * so hk_copy's mask or tail logic is settled once, outside the loop over k. */
static inline __attribute__((always_inline)) void hk_copy_rows(float *tile, float *x, size_t P,
                                                               size_t K, size_t len, int to_tile) {
#define HK_COPY_LOOP(LEN)                                                            \
    do {                                                                             \
        if (to_tile)                                                                 \
            for (size_t k = 0; k < K; k++) hk_copy(tile + k * HK_W, x + k * P, LEN); \
        else                                                                         \
            for (size_t k = 0; k < K; k++) hk_copy(x + k * P, tile + k * HK_W, LEN); \
    } while (0)
    switch (len) {
    case 1:
        HK_COPY_LOOP(1);
        break;
    case 2:
        HK_COPY_LOOP(2);
        break;
    case 4:
        HK_COPY_LOOP(4);
        break;
    case 8:
        HK_COPY_LOOP(8);
        break;
    case 16:
        HK_COPY_LOOP(16);
        break;
    default:
        HK_COPY_LOOP(len);
        break;
    }
#undef HK_COPY_LOOP
}

/* Copies columns g0 .. g0 + T of the chunk starting at row `row` (column g of the chunk is column
 * g % P of row row + g / P) between the rows and a K x HK_W tile (P < HK_W only). */
static void hk_copy_tile(const hk_ctx *c, size_t row, size_t g0, size_t T, float *tile,
                         int to_tile) {
    size_t P = c->n / c->K, r = row + g0 / P, j = g0 % P;
    for (size_t t = 0; t < T; r++, j = 0) {
        size_t len = P - j < T - t ? P - j : T - t;
        hk_copy_rows(tile + t, c->data + r * c->stride + j, P, c->K, len, to_tile);
        t += len;
    }
}

static void hk_rows(void *vctx, size_t begin, size_t end) {
    hk_ctx *c = vctx;
    size_t K = c->K, P = c->n / K;
    float scale = (float) (1.0 / sqrt((double) c->n));
    _Alignas(64) float in[RB_HADAMARD_KMAX * HK_W];
    if (P % HK_W == 0) {
        /* Each tile is HK_W columns of one row: mix it right after that row's FWHT, while the
         * row is in L1/L2, and store the results straight into the row. */
        for (size_t r = begin; r < end; r++) {
            float *x = c->data + r * c->stride;
            int rc = rb_fwht_f32(x, P, K, P, RB_NORM_NONE, RB_ORDER_NATURAL);
            if (rc) {
                rb_task_fail(rc); /* cannot happen for a validated n; kept so it is not silent */
                return;
            }
            for (size_t j0 = 0; j0 < P; j0 += HK_W) {
                hk_copy_rows(in, x + j0, P, K, HK_W, 1);
                hk_mix(in, K, c->coef, scale, x + j0, P);
            }
        }
        return;
    }
    /* P < HK_W: a tile gathers the columns of several rows; a row's P columns lie in one
     * vector, so its FWHT runs in registers on the tile (a call per short row costs more than
     * the mix at P = 4). */
    _Alignas(64) float out[RB_HADAMARD_KMAX * HK_W];
    size_t total = (end - begin) * P;
    for (size_t g0 = 0; g0 < total; g0 += HK_W) {
        size_t T = total - g0 < HK_W ? total - g0 : HK_W;
        hk_copy_tile(c, begin, g0, T, in, 1);
        if (T < HK_W) /* the unused columns are computed and dropped; keep them finite */
            for (size_t k = 0; k < K; k++) memset(in + k * HK_W + T, 0, (HK_W - T) * sizeof *in);
        hk_fwht_tile(in, K, P);
        hk_mix(in, K, c->coef, scale, out, HK_W);
        hk_copy_tile(c, begin, g0, T, out, 0);
    }
}

int HK_VARIANT(float *data, size_t n, size_t count, size_t stride, size_t K, const int8_t *hk,
               rb_dir dir) {
    /* The coefficient blocks of 8 and 12 cover K = 0 or 4 mod 8, K >= 8: every listed K. */
    if (K % 4 != 0 || K < 8 || hk != rb_hadamard_matrix(K)) return RB_EDECLINE;
    const float *coef = rb_hadamard_coef_f32(K, dir);
    if (!coef) return RB_EDECLINE;
    hk_ctx c = {data, n, stride, K, coef};
    /* Rows are independent (and a gathered tile's columns too), so any split gives the same
     * bits. A chunk is the power of 2 of rows nearest below 2^20 flops of mix (n K per row,
     * ~8 us): small enough that 256 rows of n = 688 make 32 chunks for the threads to share
     * evenly (a 64K-element grain made 3), large enough that the pool's per-task cost stays
     * small; a power of 2 so that gathered tiles of short rows fill up. */
    size_t grain = 1;
    while (grain * 2 * n * K <= ((size_t) 1 << 20)) grain *= 2;
    return rb_parallel_for(count, grain, hk_rows, &c);
}

#endif
