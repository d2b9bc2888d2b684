/* Hadamard K * 2^m: H_K constructions (Paley I/II, doubling, Williamson), lookup, apply kernels. */
#include "kernels/hadamard.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/error.h"
#include "kernels/fwht.h"
#include "kernels/hadamard_variants.h"
#include "kernels/pool.h"

const size_t rb_hadamard_ks[RB_HADAMARD_NK] = {12, 20, 28, 36, 40, 44, 52, 60, 108, 140, 156, 172};

/* QuaRot's get_hadK order (SpinQuant inserts 44 before 40); the first K dividing n wins. */
static const size_t lookup_order[RB_HADAMARD_NK] = {172, 156, 140, 108, 60, 52,
                                                    36,  28,  44,  40,  20, 12};

/* ---- constructions (layer_ptq.md 2.1; indices 0-based) ---- */

/* Williamson first rows of the circulants A, B, C, D for orders 13, 39, 43 (layer_ptq.md 2.1). */
static const char *const will13[4] = {"+-+--++++--+-", "+---++++++---", "++-+--++--+-+",
                                      "+----+--+----"};
static const char *const will39[4] = {
    "+++--+-+-----+--++----++--+-----+-+--++", "++++---+--++----+-+--+-+----++--+---+++",
    "+++--++-+---+-+--+----+--+-+---+-++--++", "+---++-+-+-----+++-++-+++-----+-+-++---"};
static const char *const will43[4] = {
    "+---++--++++-+-+++-++--++-+++-+-++++--++---", "++-++++++----+-+--++-++-++--+-+----++++++-+",
    "+++-+-++--+-+-++++-+----+-++++-+-+--++-+-++", "++---++++-+--+--++--------++--+--+-++++---+"};

/* Legendre symbol table mod prime q: chi[a] for a in 0..q-1, chi[0] = 0. */
static void legendre(int q, int *chi) {
    for (int a = 0; a < q; a++) chi[a] = -1;
    chi[0] = 0;
    for (int x = 1; x < q; x++) chi[(x * x) % q] = 1;
}

static int mod(int a, int q) {
    return ((a % q) + q) % q;
}

/* Paley I, K = q + 1: H[0][0] = 1, H[0][j] = -1, H[i][0] = 1, H[i][j] = chi(i - j) + delta_ij. */
static void build_paley1(int8_t *h, int K) {
    int q = K - 1, chi[RB_HADAMARD_KMAX];
    legendre(q, chi);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            int v;
            if (i == 0)
                v = j == 0 ? 1 : -1;
            else if (j == 0)
                v = 1;
            else
                v = chi[mod(i - j, q)] + (i == j);
            h[i * K + j] = (int8_t) v;
        }
}

/* Paley II, K = 2 (q + 1): conference matrix C (C[0][0] = 0, first row and column 1,
 * C[i][j] = chi(j - i)), H = [[C + I, C - I], [C - I, -C - I]]. */
static void build_paley2(int8_t *h, int K) {
    int c = K / 2, q = c - 1, chi[RB_HADAMARD_KMAX];
    legendre(q, chi);
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            int cv = (i == 0 && j == 0) ? 0 : (i == 0 || j == 0) ? 1 : chi[mod(j - i, q)];
            int d = i == j;
            h[i * K + j] = (int8_t) (cv + d);
            h[i * K + j + c] = (int8_t) (cv - d);
            h[(i + c) * K + j] = (int8_t) (cv - d);
            h[(i + c) * K + j + c] = (int8_t) (-cv - d);
        }
}

/* Doubling: H_2K = [[H, H], [H, -H]]. */
static void build_doubling(int8_t *h, int K, const int8_t *half) {
    int c = K / 2;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            int8_t v = half[i * c + j];
            h[i * K + j] = v;
            h[i * K + j + c] = v;
            h[(i + c) * K + j] = v;
            h[(i + c) * K + j + c] = (int8_t) -v;
        }
}

/* Williamson: H = [[A, B, C, D], [-B, A, -D, C], [-C, D, A, -B], [-D, -C, B, A]], circulants
 * M[i][j] = r[(j - i) mod c] from the first rows r. */
static void build_williamson(int8_t *h, int K, const char *const rows[4]) {
    static const int blk[4][4] = {{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
    static const int sgn[4][4] = {{1, 1, 1, 1}, {-1, 1, -1, 1}, {-1, 1, 1, -1}, {-1, -1, 1, 1}};
    int c = K / 4;
    for (int a = 0; a < 4; a++) RB_ASSERT((int) strlen(rows[a]) == c);
    for (int bi = 0; bi < 4; bi++)
        for (int bj = 0; bj < 4; bj++) {
            const char *r = rows[blk[bi][bj]];
            for (int i = 0; i < c; i++)
                for (int j = 0; j < c; j++) {
                    int v = r[mod(j - i, c)] == '+' ? 1 : -1;
                    h[(bi * c + i) * K + bj * c + j] = (int8_t) (sgn[bi][bj] * v);
                }
        }
}

/* H H^T = K I, in exact integer arithmetic. */
static int check_orthogonal(const int8_t *h, int K) {
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            int s = 0;
            for (int k = 0; k < K; k++) s += h[i * K + k] * h[j * K + k];
            if (s != (i == j ? K : 0)) return 0;
        }
    return 1;
}

/* Storage for every table (about 98 KB of BSS, touched only for the K that are used). */
static int8_t h12[12 * 12], h20[20 * 20], h28[28 * 28], h36[36 * 36], h40[40 * 40], h44[44 * 44],
    h52[52 * 52], h60[60 * 60], h108[108 * 108], h140[140 * 140], h156[156 * 156], h172[172 * 172];
static int8_t *const tables[RB_HADAMARD_NK] = {h12, h20, h28,  h36,  h40,  h44,
                                               h52, h60, h108, h140, h156, h172};

/* The float coefficient tables of the SIMD variants, [dir][blocked by 8 or 12 outputs] (see
 * hadamard_variants.h): about 780 KB of BSS in all, touched only for the K that are used. */
static float c12[2][12 * 12], c20[2][20 * 20], c28[2][28 * 28], c36[2][36 * 36], c40[2][40 * 40],
    c44[2][44 * 44], c52[2][52 * 52], c60[2][60 * 60], c108[2][108 * 108], c140[2][140 * 140],
    c156[2][156 * 156], c172[2][172 * 172];
static float *const coefs[RB_HADAMARD_NK][2] = {
    {c12[0], c12[1]},   {c20[0], c20[1]},   {c28[0], c28[1]},   {c36[0], c36[1]},
    {c40[0], c40[1]},   {c44[0], c44[1]},   {c52[0], c52[1]},   {c60[0], c60[1]},
    {c108[0], c108[1]}, {c140[0], c140[1]}, {c156[0], c156[1]}, {c172[0], c172[1]}};

static void build(int idx) {
    int K = (int) rb_hadamard_ks[idx];
    int8_t *h = tables[idx];
    switch (K) {
    case 28:
    case 36:
        build_paley2(h, K);
        break;
    case 40:
        build_doubling(h, K, rb_hadamard_matrix(20));
        break;
    case 52:
        build_williamson(h, K, will13);
        break;
    case 156:
        build_williamson(h, K, will39);
        break;
    case 172:
        build_williamson(h, K, will43);
        break;
    default:
        build_paley1(h, K);
        break;
    }
    if (!check_orthogonal(h, K)) {
        fprintf(stderr, "hadamard: the constructed H_%d fails H H^T = K I\n", K);
        RB_ASSERT(0);
    }
    for (int i0 = 0, rb; i0 < K; i0 += rb) {
        rb = (int) rb_hadamard_coef_block((size_t) K, (size_t) i0);
        for (int k = 0; k < K; k++)
            for (int r = 0; r < rb; r++) {
                int i = i0 + r, at = i0 * K + k * rb + r;
                coefs[idx][RB_FORWARD][at] = (float) h[i * K + k];
                coefs[idx][RB_INVERSE][at] = (float) h[k * K + i];
            }
    }
}

/* One pthread_once per table, so that a table is built the first time it is asked for and
 * concurrent first uses wait for the one build. */
#define RB_HK_ONCE(i)                                   \
    static pthread_once_t once_##i = PTHREAD_ONCE_INIT; \
    static void build_##i(void) {                       \
        build(i);                                       \
    }
RB_HK_ONCE(0)
RB_HK_ONCE(1)
RB_HK_ONCE(2)
RB_HK_ONCE(3)
RB_HK_ONCE(4)
RB_HK_ONCE(5)
RB_HK_ONCE(6)
RB_HK_ONCE(7)
RB_HK_ONCE(8)
RB_HK_ONCE(9)
RB_HK_ONCE(10)
RB_HK_ONCE(11)
#undef RB_HK_ONCE
static pthread_once_t *const onces[RB_HADAMARD_NK] = {&once_0, &once_1, &once_2,  &once_3,
                                                      &once_4, &once_5, &once_6,  &once_7,
                                                      &once_8, &once_9, &once_10, &once_11};
static void (*const builders[RB_HADAMARD_NK])(void) = {build_0, build_1, build_2,  build_3,
                                                       build_4, build_5, build_6,  build_7,
                                                       build_8, build_9, build_10, build_11};

const int8_t *rb_hadamard_matrix(size_t K) {
    static const int8_t one[1] = {1};
    if (K == 1) return one;
    for (int i = 0; i < RB_HADAMARD_NK; i++)
        if (rb_hadamard_ks[i] == K) {
            pthread_once(onces[i], builders[i]);
            return tables[i];
        }
    return NULL;
}

const float *rb_hadamard_coef_f32(size_t K, rb_dir dir) {
    for (int i = 0; i < RB_HADAMARD_NK; i++)
        if (rb_hadamard_ks[i] == K) {
            pthread_once(onces[i], builders[i]);
            return coefs[i][dir == RB_INVERSE];
        }
    return NULL;
}

/* ---- lookup ---- */

/* Largest supported size below n and smallest above (0 if none), for the error message. */
static void neighbours(size_t n, size_t *below, size_t *above) {
    *below = 0;
    *above = 0;
    for (int i = -1; i < RB_HADAMARD_NK; i++) {
        size_t K = i < 0 ? 1 : rb_hadamard_ks[i];
        for (int m = 0; m <= RB_FWHT_LOG2_MAX; m++) {
            size_t s = K << m;
            if (s < n && s > *below) *below = s;
            if (s > n) {
                if (*above == 0 || s < *above) *above = s;
                break;
            }
        }
    }
}

int rb_hadamard_lookup(size_t n, size_t *K_out, int *m_out) {
    size_t K = 1;
    for (int i = 0; i < RB_HADAMARD_NK; i++)
        if (n % lookup_order[i] == 0 && n) {
            K = lookup_order[i];
            break;
        }
    int m = n ? rb_log2_exact(n / K) : -1;
    if (m < 0 || m > RB_FWHT_LOG2_MAX) {
        size_t below, above;
        neighbours(n, &below, &above);
        char lo[32] = "none", hi[32] = "none";
        if (below) snprintf(lo, sizeof lo, "%zu", below);
        if (above) snprintf(hi, sizeof hi, "%zu", above);
        return rb_error_set(RB_ESIZE,
                            "hadamard: n = %zu is not supported (n = K * 2^m, K in 1, 12, 20, 28, "
                            "36, 40, 44, 52, 60, 108, 140, 156, 172, m <= %d); nearest supported "
                            "sizes: %s, %s",
                            n, RB_FWHT_LOG2_MAX, lo, hi);
    }
    if (K_out) *K_out = K;
    if (m_out) *m_out = m;
    return RB_OK;
}

rb_cost rb_hadamard_cost(size_t n, size_t count, size_t elem_bytes) {
    size_t K = 1;
    int m = 0;
    if (rb_hadamard_lookup(n, &K, &m) != 0) {
        rb_error_clear();
        return (rb_cost){0, 0};
    }
    double len = (double) n, rows = (double) count;
    double mix = K > 1 ? (double) K : 0.0;
    return (rb_cost){rows * len * ((double) m + mix), 2.0 * rows * len * (double) elem_bytes};
}

/* ---- apply ---- */

int rb_hadamard_check(size_t n, size_t count, size_t stride, size_t *K, int *m) {
    int rc = rb_hadamard_lookup(n, K, m);
    if (rc) return rc;
    if (count > 1 && stride < n)
        return rb_error_set(RB_EINVAL, "hadamard: row stride %zu is shorter than n = %zu", stride,
                            n);
    return RB_OK;
}

/* Reference: per column j of the K x P view, copy the column, then x[i][j] = sum_k h_ik col[k]
 * with the sum in k order from 0, scaled once. The tiled variant sums in the same order. */
int rb_hadamard_f32_ref(float *data, size_t n, size_t count, size_t stride, size_t K,
                        const int8_t *hk, rb_dir dir) {
    size_t P = n / K;
    float scale = (float) (1.0 / sqrt((double) n));
    float col[RB_HADAMARD_KMAX];
    for (size_t r = 0; r < count; r++) {
        float *x = data + r * stride;
        rb_fwht_f32_ref(x, P, K, P, 1.0f);
        for (size_t j = 0; j < P; j++) {
            for (size_t k = 0; k < K; k++) col[k] = x[k * P + j];
            for (size_t i = 0; i < K; i++) {
                float acc = 0.0f;
                for (size_t k = 0; k < K; k++)
                    acc += (float) (dir == RB_INVERSE ? hk[k * K + i] : hk[i * K + k]) * col[k];
                x[i * P + j] = acc * scale;
            }
        }
    }
    return RB_OK;
}

/* Columns per tile of the mix. A tile holds TILE columns of the K x P views of consecutive rows
 * (several rows when P < TILE), gathered into a contiguous K x TILE block: the mix then runs
 * on fixed-length contiguous rows whatever P is, and in + out (2 x 22 KB at K = 172) stay in
 * L1. */
enum { TILE = 32 };

/* Four floats in a register (GCC / clang vector extension; SSE2 on x86-64, no ISA flag). */
typedef float rb_v4f __attribute__((vector_size(16)));

/* out[i][t] = scale * sum_k h_ik in[k][t], k in order from 0 like the reference; in and out are
 * 16-byte aligned K x TILE blocks. The eight accumulators are named registers: written as a
 * plain loop over acc[TILE], gcc 12 -O2 vectorizes it but keeps acc in memory (3x slower);
 * clang does either well. Multiplying by +-1 is exact and every lane adds in the same order,
 * so the bits equal the reference's. */
static void mix_tile(const float *in, float *out, size_t K, const int8_t *hk, rb_dir dir,
                     float scale) {
    _Static_assert(TILE == 32, "mix_tile holds a tile in 8 x 4 lanes");
    const rb_v4f sc = {scale, scale, scale, scale};
    for (size_t i = 0; i < K; i++) {
        const int8_t *h = dir == RB_INVERSE ? hk + i : hk + i * K; /* row i of H_K or H_K^T */
        size_t hstep = dir == RB_INVERSE ? K : 1;
        rb_v4f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        for (size_t k = 0; k < K; k++) {
            float s = (float) h[k * hstep];
            const rb_v4f sv = {s, s, s, s};
            const rb_v4f *x = (const rb_v4f *) (in + k * TILE);
            a0 += sv * x[0];
            a1 += sv * x[1];
            a2 += sv * x[2];
            a3 += sv * x[3];
            a4 += sv * x[4];
            a5 += sv * x[5];
            a6 += sv * x[6];
            a7 += sv * x[7];
        }
        rb_v4f *o = (rb_v4f *) (out + i * TILE);
        o[0] = a0 * sc;
        o[1] = a1 * sc;
        o[2] = a2 * sc;
        o[3] = a3 * sc;
        o[4] = a4 * sc;
        o[5] = a5 * sc;
        o[6] = a6 * sc;
        o[7] = a7 * sc;
    }
}

typedef struct tiled_ctx {
    float *data;
    size_t n, stride, K;
    const int8_t *hk;
    rb_dir dir;
} tiled_ctx;

/* Copies columns g0 .. g0 + T of the chunk starting at row `row` (column g of the chunk is
 * column g % P of row row + g / P) between the rows and a K x TILE tile. */
static void copy_tile(const tiled_ctx *c, size_t row, size_t g0, size_t T, float *tile,
                      int to_tile) {
    size_t P = c->n / c->K, r = row + g0 / P, j = g0 % P;
    for (size_t t = 0; t < T; r++, j = 0) {
        size_t len = P - j < T - t ? P - j : T - t;
        float *x = c->data + r * c->stride + j;
        for (size_t k = 0; k < c->K; k++) {
            if (to_tile)
                memcpy(tile + k * TILE + t, x + k * P, len * sizeof *x);
            else
                memcpy(x + k * P, tile + k * TILE + t, len * sizeof *x);
        }
        t += len;
    }
}

static void tiled_rows(void *vctx, size_t begin, size_t end) {
    tiled_ctx *c = vctx;
    size_t K = c->K, P = c->n / K;
    float scale = (float) (1.0 / sqrt((double) c->n));
    _Alignas(64) float in[RB_HADAMARD_KMAX * TILE];
    _Alignas(64) float out[RB_HADAMARD_KMAX * TILE];
    for (size_t r = begin; r < end; r++) {
        int rc = rb_fwht_f32(c->data + r * c->stride, P, K, P, RB_NORM_NONE, RB_ORDER_NATURAL);
        if (rc) {
            rb_task_fail(rc); /* cannot happen for a validated n; kept so a failure is not silent */
            return;
        }
    }
    size_t total = (end - begin) * P;
    for (size_t g0 = 0; g0 < total; g0 += TILE) {
        size_t T = total - g0 < TILE ? total - g0 : TILE;
        copy_tile(c, begin, g0, T, in, 1);
        if (T < TILE) /* the unused columns are computed and dropped; keep them finite */
            for (size_t k = 0; k < K; k++) memset(in + k * TILE + T, 0, (TILE - T) * sizeof *in);
        mix_tile(in, out, K, c->hk, c->dir, scale);
        copy_tile(c, begin, g0, T, out, 0);
    }
}

int rb_hadamard_f32_tiled(float *data, size_t n, size_t count, size_t stride, size_t K,
                          const int8_t *hk, rb_dir dir) {
    tiled_ctx c = {data, n, stride, K, hk, dir};
    /* Rows are independent, so any split gives the same bits; a chunk of ~64K elements keeps
     * the per-task overhead small. */
    size_t grain = n >= 65536 ? 1 : 65536 / n;
    return rb_parallel_for(count, grain, tiled_rows, &c);
}

RB_OP_DEFINE(rb_op_hadamard_f32, "hadamard_f32",
             RB_CUDA_VARIANT(rb_hadamard_f32_cuda)
                 RB_VARIANT("avx512", RB_ISA_AVX512, rb_hadamard_f32_avx512),
             RB_VARIANT("avx2", RB_ISA_AVX2, rb_hadamard_f32_avx2),
             RB_VARIANT("tiled", 0, rb_hadamard_f32_tiled),
             RB_VARIANT("ref", 0, rb_hadamard_f32_ref));

static int hadamard_f32_dispatch(float *data, size_t n, size_t count, size_t stride, size_t K,
                                 const int8_t *hk, rb_dir dir) {
    RB_DISPATCH(rb_op_hadamard_f32, rb_hadamard_f32_fn, (data, n, count, stride, K, hk, dir));
}

int rb_hadamard_f32(float *data, size_t n, size_t count, size_t stride, rb_dir dir) {
    size_t K;
    int m;
    int rc = rb_hadamard_check(n, count, stride, &K, &m);
    if (rc) return rc;
    if (count == 0) return RB_OK;
    if (K == 1) return rb_fwht_f32(data, n, count, stride, RB_NORM_ORTHO, RB_ORDER_NATURAL);
    return hadamard_f32_dispatch(data, n, count, stride, K, rb_hadamard_matrix(K), dir);
}

int rb_hadamard_f64(double *data, size_t n, size_t count, size_t stride, rb_dir dir) {
    size_t K;
    int m;
    int rc = rb_hadamard_check(n, count, stride, &K, &m);
    if (rc) return rc;
    if (count == 0) return RB_OK;
    if (K == 1) return rb_fwht_f64(data, n, count, stride, RB_NORM_ORTHO, RB_ORDER_NATURAL);
    const int8_t *hk = rb_hadamard_matrix(K);
    size_t P = n / K;
    double scale = 1.0 / sqrt((double) n);
    double col[RB_HADAMARD_KMAX];
    for (size_t r = 0; r < count; r++) {
        double *x = data + r * stride;
        rc = rb_fwht_f64(x, P, K, P, RB_NORM_NONE, RB_ORDER_NATURAL);
        if (rc) return rc;
        for (size_t j = 0; j < P; j++) {
            for (size_t k = 0; k < K; k++) col[k] = x[k * P + j];
            for (size_t i = 0; i < K; i++) {
                double acc = 0.0;
                for (size_t k = 0; k < K; k++)
                    acc += (double) (dir == RB_INVERSE ? hk[k * K + i] : hk[i * K + k]) * col[k];
                x[i * P + j] = acc * scale;
            }
        }
    }
    return RB_OK;
}
