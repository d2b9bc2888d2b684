/* `rotabench bench --cuda`: the CUDA kernels timed with CUDA events (Google Benchmark's manual
 * time), their GB/s and GFLOP/s, and the fraction of the device-to-device copy bandwidth measured
 * in the same run on the same amount of data. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/bench.h"
#include "harness/context.h"
#include "harness/gbench.h"
#include "harness/harness.h"
#include "harness/record.h"
#include "kernels/kernels.h"
#include "kernels/kv_quant.h"

/* Every instance's input is at least this large (the "batches of at least 256 MB"), so
 * that it streams from HBM and not from the 50 MB L2; entries with a fixed row count (issue 4's
 * and 7's shapes) take what their issue names, at least 128 MiB. */
#define INPUT_BYTES ((size_t) 256 << 20)
enum { MAXN = 16, FILL = 1 << 20 };

struct cu_inst;

typedef struct cu_entry {
    const char *name;
    /* Allocates the op's buffers beyond x (rows x n of dtype, filled) and fixes cost. */
    int (*setup)(struct cu_inst *b);
    int (*call)(struct cu_inst *b);
    rb_dtype dtypes[3]; /* the first ndtypes (RB_DT_F32 is 0: no terminator) */
    size_t ndtypes;
    size_t n[MAXN]; /* zero-terminated */
    int param;      /* entry-specific: bits, m divisor, ... */
    size_t rows;    /* rows of every instance; 0: INPUT_BYTES of input */
} cu_entry;

typedef struct cu_inst {
    const cu_entry *e;
    const rb_cuda_ops *cu;
    char name[RB_BENCH_NAME_MAX];
    rb_dtype dt;
    size_t n, rows;
    int run; /* matches the filter, or is the copy */
    void *x, *y, *z;
    float *d1, *d2;
    rb_codebook cb;
    rb_quant_spec spec;
    void *ev0, *ev1;
    rb_cost cost;
} cu_inst;

/* ---- the ops ---- */

static int alloc(cu_inst *b, void **p, size_t bytes) {
    return b->cu->malloc(p, bytes);
}

static int setup_copy(cu_inst *b) {
    b->cost = (rb_cost){0, 2.0 * (double) (b->rows * b->n * rb_dtype_size(b->dt))};
    return alloc(b, &b->y, b->rows * b->n * rb_dtype_size(b->dt));
}
static int call_copy(cu_inst *b) {
    return b->cu->memcpy_d2d(b->y, b->x, b->rows * b->n * rb_dtype_size(b->dt), NULL);
}

/* The transforms run in place and orthonormal, so repeated calls keep the data's scale. */
static int setup_fwht(cu_inst *b) {
    b->cost = rb_fwht_cost(b->n, b->rows, rb_dtype_size(b->dt));
    return RB_OK;
}
static int call_fwht(cu_inst *b) {
    return b->cu->fwht(b->x, b->dt, b->n, b->rows, b->n, (float) (1.0 / sqrt((double) b->n)), NULL);
}

static int setup_hadamard(cu_inst *b) {
    b->cost = rb_hadamard_cost(b->n, b->rows, rb_dtype_size(b->dt));
    return RB_OK;
}
static int call_hadamard(cu_inst *b) {
    return b->cu->hadamard(b->x, b->dt, b->n, b->rows, b->n, RB_FORWARD, NULL);
}

static int setup_rht2(cu_inst *b) {
    rb_cost h = rb_hadamard_cost(b->n, b->rows, rb_dtype_size(b->dt));
    b->cost = (rb_cost){2.0 * h.flops + 2.0 * (double) (b->rows * b->n), h.bytes};
    int rc = alloc(b, (void **) &b->d1, b->n * 4);
    if (!rc) rc = alloc(b, (void **) &b->d2, b->n * 4);
    if (!rc) rc = b->cu->rng_rademacher_f32(1, RB_STREAM_RHT_D1, 0, b->n, b->d1, NULL);
    if (!rc) rc = b->cu->rng_rademacher_f32(1, RB_STREAM_RHT_D2, 0, b->n, b->d2, NULL);
    return rc;
}
static int call_rht2(cu_inst *b) {
    return b->cu->rht(b->x, b->dt, b->n, b->rows, b->n, b->d1, b->d2, RB_FORWARD, NULL);
}

/* SAW-INT4 / QuaRot activations: block Hadamard over the whole head (m = d). */
static int setup_kv_int4(cu_inst *b) {
    b->cost = rb_kv_int4_encode_cost(b->n, b->rows, rb_dtype_size(b->dt));
    int rc = alloc(b, &b->y, b->rows * b->n / 2);
    if (!rc) rc = alloc(b, &b->z, b->rows * 2 * sizeof(float));
    return rc;
}
/* param: the encode's flags (RB_KV_BF16: saw_int4's bf16 step). */
static int call_kv_int4(cu_inst *b) {
    return b->cu->kv_int4_encode(b->x, b->dt, b->rows, b->n, b->n, b->n, (unsigned) b->e->param,
                                 b->y, b->z, NULL);
}

/* A 2^bits-level codebook on N(0, 1/d) (evenly spaced; the values do not change the cost). */
static int init_codebook(cu_inst *b, int bits, double sd) {
    float c[RB_CODEBOOK_MAX];
    size_t k = (size_t) 1 << bits;
    for (size_t i = 0; i < k; i++)
        c[i] = (float) (sd * (-2.5 + 5.0 * (double) i / (double) (k - 1)));
    return rb_codebook_init(&b->cb, c, k);
}

/* TurboQuant-mse's codec (turboquant_mse's rht: one block of signs): the rows' codes in y and
 * norms in z. The decode decodes codes made by one encode in setup back into x. */
static int setup_tq(cu_inst *b) {
    int bits = b->e->param;
    b->cost = rb_rhtcodec_cost(b->n, bits, b->rows);
    int rc = init_codebook(b, bits, 1.0 / sqrt((double) b->n));
    if (!rc) rc = alloc(b, &b->y, b->rows * rb_pack_bytes(b->n, bits));
    if (!rc) rc = alloc(b, &b->z, b->rows * sizeof(float));
    if (!rc) rc = alloc(b, (void **) &b->d1, b->n * 4);
    if (!rc) rc = b->cu->rng_rademacher_f32(1, RB_STREAM_RHT_D1, 0, b->n, b->d1, NULL);
    return rc;
}
static int call_tq(cu_inst *b) {
    return b->cu->rht_codebook_encode(b->x, b->rows, b->n, b->d1, NULL, &b->cb, b->e->param, b->y,
                                      rb_pack_bytes(b->n, b->e->param), b->z, NULL);
}
static int setup_tq_decode(cu_inst *b) {
    int rc = setup_tq(b);
    return rc ? rc : call_tq(b);
}
static int call_tq_decode(cu_inst *b) {
    return b->cu->rht_codebook_decode(b->y, rb_pack_bytes(b->n, b->e->param), b->z, b->rows, b->n,
                                      b->d1, NULL, &b->cb, b->e->param, b->x, b->n, NULL);
}

/* INT4 asymmetric, groups of 128 along the row, packed: the QuaRot / GPTQ weight layout. */
static int setup_int4(cu_inst *b) {
    b->spec = (rb_quant_spec){.bits = 4, .asym = 1, .gran = RB_QUANT_PER_GROUP, .group = 128};
    size_t np = b->rows * ((b->n + 127) / 128);
    b->cost = rb_quant_cost(b->rows, b->n, np, 0.5);
    int rc = alloc(b, &b->y, b->rows * b->n / 2);
    if (!rc) rc = alloc(b, &b->z, 2 * np * sizeof(float));
    return rc;
}
static int call_int4(cu_inst *b) {
    size_t np = b->rows * ((b->n + 127) / 128);
    float *s = b->z;
    return b->cu->quant_rows_f32(&b->spec, b->x, b->rows, b->n, b->n, 128, b->y, b->n / 2,
                                 RB_QOUT_PACK4, s, s + np, NULL);
}

static int setup_mxfp4(cu_inst *b) {
    size_t n = b->rows * b->n;
    b->cost = (rb_cost){8.0 * (double) n, (double) n * 4.5 + (double) (n / RB_MXFP4_BLOCK)};
    int rc = alloc(b, &b->y, n / 2);
    if (!rc) rc = alloc(b, &b->z, n / RB_MXFP4_BLOCK + 1);
    return rc;
}
static int call_mxfp4(cu_inst *b) {
    return b->cu->mxfp4_quant(b->x, b->rows * b->n, RB_MX_FLOOR, b->y, b->z, NULL, NULL);
}

static int setup_nvfp4(cu_inst *b) {
    size_t n = b->rows * b->n;
    /* Two passes over the input: the tensor amax, then the blocks. */
    b->cost = (rb_cost){9.0 * (double) n, (double) n * 8.5 + (double) (n / RB_NVFP4_BLOCK)};
    int rc = alloc(b, &b->y, n / 2);
    if (!rc) rc = alloc(b, &b->z, n / RB_NVFP4_BLOCK + 1);
    return rc;
}
static int call_nvfp4(cu_inst *b) {
    float ts;
    return b->cu->nvfp4_quant(b->x, b->rows * b->n, b->y, b->z, &ts, NULL, NULL);
}

static int setup_codebook(cu_inst *b) {
    b->cost = rb_codebook_cost(b->rows * b->n, (size_t) 1 << b->e->param);
    int rc = init_codebook(b, b->e->param, 1.0);
    if (!rc) rc = alloc(b, &b->y, b->rows * b->n);
    return rc;
}
static int call_codebook(cu_inst *b) {
    return b->cu->codebook_quant_f32(&b->cb, b->x, b->rows, b->n, b->n, b->y, NULL);
}

/* Square fp32 GEMM through cuBLAS: rows is the matrix order here (no 256 MB rule). */
static int setup_gemm(cu_inst *b) {
    double m = (double) b->n;
    b->cost = (rb_cost){2.0 * m * m * m, 3.0 * m * m * 4.0};
    int rc = alloc(b, &b->y, b->n * b->n * 4);
    if (!rc) rc = alloc(b, &b->z, b->n * b->n * 4);
    return rc;
}
static int call_gemm(cu_inst *b) {
    return b->cu->gemm_f32(RB_NOTRANS, RB_NOTRANS, b->n, b->n, b->n, 1.0f, b->x, b->n, b->y, b->n,
                           0.0f, b->z, b->n, NULL);
}

#define F16_BF16_F32 {RB_DT_F16, RB_DT_BF16, RB_DT_F32}, 3
#define F32_ONLY     {RB_DT_F32}, 1
#define FWHT_SIZES \
    { 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 1u << 20 }
static const cu_entry entries[] = {
    {"copy_d2d", setup_copy, call_copy, {RB_DT_F16}, 1, {1024}, 0, 0},
    {"fwht", setup_fwht, call_fwht, F16_BF16_F32, FWHT_SIZES, 0, 0},
    /* QuaRot's orders: 172 * 64 (Llama 7B MLP), 28 * 512 (Llama 3 8B MLP), 40 * 128. */
    {"hadamard", setup_hadamard, call_hadamard, {RB_DT_F16}, 1, {5120, 11008, 14336}, 0, 0},
    {"rht2", setup_rht2, call_rht2, {RB_DT_F16}, 1, {128, 4096}, 0, 0},
    {"kv_int4_encode",
     setup_kv_int4,
     call_kv_int4,
     {RB_DT_F16, RB_DT_BF16},
     2,
     {64, 128, 256, 1024, 4096},
     0,
     0},
    /* Issue 7's block: 32K tokens x 8 heads x 128, fp32 in, as saw_int4 encodes it (m = 128,
     * bf16 step). 128 MiB of input: more than the L2 holds. */
    {"kv_int4_encode_block", setup_kv_int4, call_kv_int4, F32_ONLY, {128}, RB_KV_BF16, 262144},
    /* Issue 4's sizes: 1M vectors of d = 128 and 1536. */
    {"tq_encode_b2", setup_tq, call_tq, F32_ONLY, {128, 1536}, 2, 1u << 20},
    {"tq_encode_b4", setup_tq, call_tq, F32_ONLY, {128, 1536}, 4, 1u << 20},
    {"tq_decode_b2", setup_tq_decode, call_tq_decode, F32_ONLY, {128, 1536}, 2, 1u << 20},
    {"tq_decode_b4", setup_tq_decode, call_tq_decode, F32_ONLY, {128, 1536}, 4, 1u << 20},
    {"quant_int4_g128", setup_int4, call_int4, F32_ONLY, {4096}, 0, 0},
    {"mxfp4_quant", setup_mxfp4, call_mxfp4, F32_ONLY, {4096}, 0, 0},
    {"nvfp4_quant", setup_nvfp4, call_nvfp4, F32_ONLY, {4096}, 0, 0},
    {"codebook_quant_b4", setup_codebook, call_codebook, F32_ONLY, {4096}, 4, 0},
    {"gemm_f32", setup_gemm, call_gemm, F32_ONLY, {4096}, 0, 0},
};

/* ---- instance lifecycle ---- */

static void teardown(void *ctx) {
    cu_inst *b = ctx;
    const rb_cuda_ops *cu = b->cu;
    cu->free(b->x);
    cu->free(b->y);
    cu->free(b->z);
    cu->free(b->d1);
    cu->free(b->d2);
    cu->event_destroy(b->ev0);
    cu->event_destroy(b->ev1);
    b->x = b->y = b->z = NULL;
    b->d1 = b->d2 = NULL;
    b->ev0 = b->ev1 = NULL;
}

/* x: rows x n of the instance's dtype, Philox normals (a 1M-element block repeated: the values
 * are real data, never zeros, and filling 256 MB stays cheap). */
static int fill_input(cu_inst *b) {
    static float *host;
    const rb_cuda_ops *cu = b->cu;
    if (!host) {
        if (!(host = malloc(FILL * sizeof *host)))
            return rb_error_set(RB_ENOMEM, "bench: no memory");
        rb_rng_normal_f32(0x5eed, 1, 0, FILL, host);
    }
    size_t total = b->rows * b->n, es = rb_dtype_size(b->dt);
    float *stage = NULL;
    int rc = cu->malloc((void **) &stage, FILL * sizeof *stage);
    if (!rc) rc = cu->memcpy_h2d(stage, host, FILL * sizeof *stage, NULL);
    for (size_t off = 0; !rc && off < total; off += FILL) {
        size_t m = total - off < FILL ? total - off : FILL;
        rc = cu->convert(stage, RB_DT_F32, (char *) b->x + off * es, b->dt, m, NULL);
    }
    if (!rc) rc = cu->stream_sync(NULL);
    cu->free(stage);
    return rc;
}

static int setup(void *ctx) {
    cu_inst *b = ctx;
    int rc = alloc(b, &b->x, b->rows * b->n * rb_dtype_size(b->dt));
    if (!rc) rc = fill_input(b);
    if (!rc) rc = b->e->setup(b);
    if (!rc) rc = b->cu->event_create(&b->ev0);
    if (!rc) rc = b->cu->event_create(&b->ev1);
    /* One untimed call: module load and lazy handles stay out of the samples, and a failing op
     * fails here with its message. Unlike the CPU benchmarks (harness/bench.c,
     * verify_reference), the output is not yet compared with a reference: a session with a GPU
     * should copy the call's output to the host (the in-place ops refilled with fill_input
     * first), run the CPU reference (RB_KERNELS=ref) on the same input converted to fp32, compare
     * with the tolerance tests/test_cuda_*.c use for that op and dtype, and record the result
     * as the CPU JSON's "verified" (null until then). */
    if (!rc) rc = b->e->call(b);
    if (!rc) rc = b->cu->stream_sync(NULL);
    return rc;
}

static void body(rb_gb_state *st, void *ctx) {
    cu_inst *b = ctx;
    rb_gb_set_cost(st, b->cost.bytes, b->cost.flops, (double) b->rows);
    while (rb_gb_keep_running(st)) {
        float ms = 0;
        int rc = b->cu->event_record(b->ev0, NULL);
        if (!rc) rc = b->e->call(b);
        if (!rc) rc = b->cu->event_record(b->ev1, NULL);
        if (!rc) rc = b->cu->event_elapsed_ms(b->ev0, b->ev1, &ms);
        if (rc) {
            rb_gb_skip_with_error(st, rb_error_detail());
            return;
        }
        rb_gb_set_iteration_time(st, ms * 1e-3);
    }
}

static int make_instances(const rb_cuda_ops *cu, cu_inst **out, size_t *count) {
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        for (size_t k = 0; k < MAXN && entries[i].n[k]; k++) cap += entries[i].ndtypes;
    cu_inst *v = calloc(cap, sizeof *v);
    if (!v) return rb_error_set(RB_ENOMEM, "bench: no memory");
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        const cu_entry *e = &entries[i];
        for (size_t t = 0; t < e->ndtypes; t++)
            for (size_t k = 0; k < MAXN && e->n[k]; k++) {
                cu_inst *b = &v[n++];
                b->e = e;
                b->cu = cu;
                b->dt = e->dtypes[t];
                b->n = e->n[k];
                b->rows = e->rows                ? e->rows
                          : e->call == call_gemm ? b->n
                                                 : INPUT_BYTES / (b->n * rb_dtype_size(b->dt));
                if (b->rows == 0) b->rows = 1;
                snprintf(b->name, sizeof b->name, "cuda/%s/%s/n:%zu", e->name, rb_dtype_name(b->dt),
                         b->n);
            }
    }
    *out = v;
    *count = n;
    return RB_OK;
}

/* ---- the command ---- */

static double pct(double v, double limit) {
    return limit > 0 ? 100.0 * v / limit : 0.0;
}

static json_t *device_json(const rb_cuda_device_info *info) {
    char cc[16];
    snprintf(cc, sizeof cc, "%d.%d", info->cc_major, info->cc_minor);
    return json_pack("{s:s, s:s, s:i, s:I, s:I, s:i, s:i, s:f}", "name", info->name, "cc", cc,
                     "sm_count", info->sm_count, "total_mem_bytes", (json_int_t) info->total_mem,
                     "l2_bytes", (json_int_t) info->l2_bytes, "driver_version",
                     info->driver_version, "runtime_version", info->runtime_version,
                     "mem_bw_theoretical_gbps", info->mem_bw_theoretical / 1e9);
}

int rb_bench_cuda(const char *filter, double min_time, int repetitions, int list,
                  const char *json_path) {
    const rb_cuda_ops *cu;
    cu_inst *inst = NULL;
    size_t ninst = 0;
    rb_gb_bench *gb = NULL;
    rb_gb_report rep = {0};
    int status = 1, rc;
    if ((rc = rb_cuda_ops_get(&cu)) && !list) {
        fprintf(stderr, "rotabench bench --cuda: %s\n", rb_error_detail());
        return 2;
    }
    if ((rc = make_instances(cu, &inst, &ninst))) goto fail;
    size_t selected = 0;
    for (size_t i = 0; i < ninst; i++) {
        int m = rb_gb_filter_matches(filter, inst[i].name);
        if (m < 0) {
            fprintf(stderr, "rotabench bench: %s\n", rb_error_detail());
            status = 2;
            goto done;
        }
        /* The copy is the limit: it always runs, whatever the filter. */
        inst[i].run = m || inst[i].e->call == call_copy;
        selected += (size_t) m;
        if (list && m) printf("%s\n", inst[i].name);
    }
    if (list) {
        status = 0;
        goto done;
    }
    if (!selected) {
        fprintf(stderr, "rotabench bench: no CUDA benchmark matches '%s' (see --list)\n", filter);
        status = 2;
        goto done;
    }
    rb_cuda_device_info info;
    if ((rc = rb_cuda_device_info_get(0, &info))) goto fail;
    printf("%s\ndevice 0: %s (cc %d.%d, %d SMs, %.1f GiB, L2 %zu MiB), driver %d, runtime %d\n",
           rb_version_string(), info.name, info.cc_major, info.cc_minor, info.sm_count,
           (double) info.total_mem / (1 << 30), info.l2_bytes >> 20, info.driver_version,
           info.runtime_version);
    fflush(stdout);

    if (!(gb = calloc(ninst, sizeof *gb))) {
        rc = rb_error_set(RB_ENOMEM, "bench: no memory");
        goto fail;
    }
    size_t ng = 0;
    for (size_t i = 0; i < ninst; i++) {
        if (!inst[i].run) continue;
        gb[ng++] = (rb_gb_bench){
            .name = inst[i].name,
            .body = body,
            .setup = setup,
            .teardown = teardown,
            .ctx = &inst[i],
            .opt = {.min_time = min_time, .repetitions = repetitions, .manual_time = 1}};
    }
    if ((rc = rb_gb_run(gb, ng, NULL, &rep))) goto fail;

    double copy = 0;
    int w = 9;
    for (size_t i = 0; i < rep.count; i++) {
        const rb_gb_result *r = &rep.results[i];
        if (((cu_inst *) gb[r->index].ctx)->e->call == call_copy && r->ok) copy = r->gbps;
        if ((int) strlen(r->name) > w) w = (int) strlen(r->name);
    }
    printf("\n%-*s %10s %10s %9s %7s %9s %3s\n", w, "benchmark", "rows", "median us", "GB/s",
           "%copy", "GFLOP/s", "n");
    status = 0;
    for (size_t i = 0; i < rep.count; i++) {
        const rb_gb_result *r = &rep.results[i];
        const cu_inst *b = gb[r->index].ctx;
        if (!r->ok) {
            printf("%-*s FAILED: %s\n", w, r->name, r->error);
            status = 1;
            continue;
        }
        printf("%-*s %10zu %10.1f %9.1f %7.1f %9.1f %3zu\n", w, r->name, b->rows,
               r->real_ns.median / 1e3, r->gbps, pct(r->gbps, copy), r->gflops, r->nsamples);
    }
    printf("\nTimes are CUDA events around one call (median of the repetitions). GB/s counts the "
           "minimum traffic (every input read once, every output written once); %%copy is that "
           "over the device-to-device copy measured above on %zu MiB.\n",
           INPUT_BYTES >> 20);

    if (json_path) {
        json_t *root = json_object(), *benches = json_array();
        json_object_set_new(root, "context",
                            json_pack("{s:s, s:s, s:b, s:o, s:f, s:i, s:f}", "version",
                                      rb_version_string(), "git_sha", rb_git_sha(), "git_dirty",
                                      rb_git_dirty(), "device", device_json(&info), "min_time_s",
                                      min_time, "repetitions", repetitions, "copy_d2d_gbps", copy));
        /* The host and build as `rotabench bench --json` and context.json record them. */
        json_t *ctx = json_object_get(root, "context");
        char now[32];
        rb_utc_iso8601(now);
        json_object_set_new(ctx, "utc", json_string(now));
        json_object_set_new(ctx, "host", rb_context_host_section(NULL));
        json_object_set_new(ctx, "build", rb_context_build_section());
        for (size_t i = 0; i < rep.count; i++) {
            const rb_gb_result *r = &rep.results[i];
            const cu_inst *b = gb[r->index].ctx;
            json_t *j = rb_bench_result_json(r);
            json_object_set_new(j, "op", json_string(b->e->name));
            json_object_set_new(j, "dtype", json_string(rb_dtype_name(b->dt)));
            json_object_set_new(j, "n", json_integer((json_int_t) b->n));
            json_object_set_new(j, "rows", json_integer((json_int_t) b->rows));
            json_object_set_new(j, "verified", json_null()); /* not compared: see setup */
            if (r->ok) json_object_set_new(j, "pct_copy_bw", json_real(pct(r->gbps, copy)));
            json_array_append_new(benches, j);
        }
        json_object_set_new(root, "benchmarks", benches);
        int wrc = json_dump_file(root, json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        json_decref(root);
        if (wrc) {
            rc = rb_error_set(RB_EIO, "bench: cannot write %s", json_path);
            goto fail;
        }
        printf("wrote %s\n", json_path);
    }
    goto done;
fail:
    fprintf(stderr, "rotabench bench --cuda: %s: %s\n", rb_strerror(rc), rb_error_detail());
    status = 1;
done:
    rb_gb_report_free(&rep);
    free(gb);
    free(inst);
    return status;
}
