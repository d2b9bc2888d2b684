/* The run's latency pass end to end through the binary: inner-product estimation rows for codecs
 * with and without their own estimator, items per second on every latency row, vector codecs on
 * KV data, KV dumps with a leading layer axis, and loud errors where a row cannot be made. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/dataset.h"
#include "harness/record.h"
#include "tests/testutil.h"

static void setup(void) {
    rbt_tmpdir_make("latency");
}

TestSuite(latency, .init = setup, .fini = rbt_tmpdir_remove);

/* Writes yaml to a config file, runs it (its outputs in a fresh directory) and reads the rows
 * back into *rows when results.jsonl exists (else *rows = NULL). Returns the exit status. */
static int run_yaml(const char *tag, const char *yaml, json_t **rows, char **err) {
    char name[64], out[64], args[1200], *so;
    snprintf(name, sizeof name, "%s.yaml", tag);
    snprintf(out, sizeof out, "%s_out", tag);
    FILE *f = fopen(rbt_tmp(name), "w");
    cr_assert_not_null(f);
    fputs(yaml, f);
    fclose(f);
    char cfg[512], dir[512];
    snprintf(cfg, sizeof cfg, "%s", rbt_tmp(name));
    snprintf(dir, sizeof dir, "%s", rbt_tmp(out));
    snprintf(args, sizeof args, "run %s -o %s --threads 1", cfg, dir);
    int st = rbt_run_cli(args, &so, err);
    free(so);
    char path[600];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    *rows = NULL;
    FILE *r = fopen(path, "r");
    if (r) {
        fclose(r);
        cr_assert_eq(rb_results_read(path, rows), 0, "%s", rb_error_detail());
    }
    return st;
}

/* The latency row of (label, metric), or NULL. */
static json_t *find_row(json_t *rows, const char *label, const char *metric) {
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (rb_row_is_latency(row) && !strcmp(rb_row_str(row, "label"), label) &&
            !strcmp(rb_row_str(row, "metric"), metric))
            return row;
    }
    return NULL;
}

static size_t count_latency(json_t *rows) {
    size_t i, n = 0;
    json_t *row;
    json_array_foreach(rows, i, row) {
        n += rb_row_is_latency(row);
    }
    return n;
}

/* The row exists, and its rate is `items` items of `unit` per median time, with GB/s and the
 * fraction of the copy bandwidth set. Returns the row. */
static json_t *check_row(json_t *rows, const char *label, const char *metric, const char *unit,
                         double items) {
    json_t *row = find_row(rows, label, metric);
    cr_assert_not_null(row, "no %s row for %s", metric, label);
    double t = rb_row_double(row, "value"), rate = rb_row_double(row, "items_per_s");
    const char *u = rb_row_str(row, "items_unit");
    cr_assert(u && !strcmp(u, unit), "%s %s: items_unit %s, not %s", label, metric, u, unit);
    cr_assert(t > 0 && isfinite(rate) && rate > 0, "%s %s: %g s, %g items/s", label, metric, t,
              rate);
    cr_assert(fabs(rate * t - items) <= 1e-6 * items, "%s %s: %g items per call, not %g", label,
              metric, rate * t, items);
    cr_assert(rb_row_double(row, "gbps") > 0, "%s %s: GB/s", label, metric);
    cr_assert(isfinite(rb_row_double(row, "frac_bw")), "%s %s: fraction of bandwidth", label,
              metric);
    return row;
}

static const char *const ops3 =
    "latency: {ops: [encode, decode, inner_product], min_time: 0.001, repetitions: 2, "
    "batch: 200}\n";

/* inner_product gives a row for a codec with its own estimator (qjl) and for one scored as
 * <q, decode(x)> (rtn): batch x queries scores per call, with GFLOP/s; encode and decode give
 * vectors per second; the report shows the rate. */
Test(latency, inner_product_rows_and_vectors_per_second) {
    char yaml[2048], *err;
    snprintf(yaml, sizeof yaml,
             "name: ip\n"
             "datasets:\n"
             "  - {name: s64, kind: sphere, dim: 64, count: 300, queries: 20}\n"
             "methods:\n"
             "  - {method: qjl, params: {bits: 1}}\n"
             "  - {method: rtn, params: {bits: 4, rotation: rht}}\n"
             "metrics: [vnmse]\n%s",
             ops3);
    json_t *rows;
    int st = run_yaml("ip", yaml, &rows, &err);
    cr_assert(st == 0 || (st == 2 && strstr(err, "gnuplot")), "exit %d: %s", st, err);
    cr_assert_not_null(rows, "%s", err);
    cr_assert_eq(count_latency(rows), 6, "three ops x two methods");
    const char *labels[2] = {"qjl", "rtn"};
    for (int m = 0; m < 2; m++) {
        check_row(rows, labels[m], "encode_latency", "vectors", 200);
        check_row(rows, labels[m], "decode_latency", "vectors", 200);
        json_t *ip = check_row(rows, labels[m], "inner_product_latency", "scores", 200 * 20);
        /* each op's row names its own kernels: rtn's encode quantizes and packs, its decode
         * unpacks and dequantizes (an encode row used to list the decode's kernels too) */
        if (m == 1) {
            const char *enc =
                           rb_row_str(find_row(rows, "rtn", "encode_latency"), "kernel_variants"),
                       *dec =
                           rb_row_str(find_row(rows, "rtn", "decode_latency"), "kernel_variants");
            cr_assert(enc && strstr(enc, "pack_rows=") && !strstr(enc, "unpack_rows") &&
                          !strstr(enc, "dequant_rows"),
                      "encode: %s", enc);
            cr_assert(dec && strstr(dec, "unpack_rows=") && strstr(dec, "dequant_rows") &&
                          !strstr(dec, ",pack_rows") && strncmp(dec, "pack_rows", 9),
                      "decode: %s", dec);
            /* rtn has no estimator: its inner product is decode + GEMM, and the GEMM, most of
             * the timed work, is in the list; its accuracy rows' scoring GEMM is not */
            const char *ipk = rb_row_str(ip, "kernel_variants");
            cr_assert(ipk && strstr(ipk, "sgemm=") && strstr(ipk, "dequant_rows"), "ip: %s", ipk);
            const char *acck = NULL;
            size_t i;
            json_t *r;
            json_array_foreach(rows, i, r) {
                if (!strcmp(rb_row_str(r, "label"), "rtn") &&
                    !strcmp(rb_row_str(r, "metric"), "vnmse"))
                    acck = rb_row_str(r, "kernel_variants");
            }
            cr_assert(acck && !strstr(acck, "sgemm="), "vnmse: %s", acck);
        }
        cr_assert(rb_row_double(ip, "gflops") > 0, "%s: GFLOP/s", labels[m]);
        cr_assert(isfinite(rb_row_double(ip, "frac_peak")), "%s: fraction of peak", labels[m]);
    }
    /* Accuracy rows carry no rate. */
    json_t *acc = json_array_get(rows, 0);
    cr_assert_str_eq(rb_row_str(acc, "metric"), "vnmse");
    cr_assert(isnan(rb_row_double(acc, "items_per_s")));
    cr_assert_null(rb_row_str(acc, "items_unit"));
    json_decref(rows);
    char path[600];
    snprintf(path, sizeof path, "%s/report.md", rbt_tmp("ip_out"));
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char text[1 << 15];
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    cr_assert(strstr(text, "| inner_product_latency |") && strstr(text, "vectors/s |") &&
                  strstr(text, "scores/s |"),
              "%s", text);
    snprintf(path, sizeof path, "%s/results.csv", rbt_tmp("ip_out"));
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(text, sizeof text, f));
    fclose(f);
    cr_assert(strstr(text, ",items_per_s,items_unit,"), "%s", text);
    cr_assert_null(strstr(err, "latency batch"), "batch applies to vector data: %s", err);
    free(err);
}

/* inner_product on data without queries is an error naming the dataset and the missing key,
 * not a missing row. */
Test(latency, inner_product_without_queries_fails) {
    char yaml[2048], *err;
    snprintf(yaml, sizeof yaml,
             "name: noq\n"
             "datasets:\n"
             "  - {name: s64, kind: sphere, dim: 64, count: 300}\n"
             "methods:\n"
             "  - {method: rtn, params: {bits: 4}}\n"
             "metrics: [vnmse]\n%s",
             ops3);
    json_t *rows;
    int st = run_yaml("noq", yaml, &rows, &err);
    cr_assert_eq(st, 2, "exit %d: %s", st, err);
    cr_assert(strstr(err, "inner_product") && strstr(err, "queries: N") &&
                  strstr(err, "dataset 's64'"),
              "%s", err);
    json_decref(rows);
    free(err);
}

/* A batch larger than the data is capped at the data (a call encodes every vector), and the run
 * says so once, naming the dataset; a dataset at least as long as the batch is not named. */
Test(latency, batch_beyond_the_data_is_capped_with_a_warning) {
    char yaml[2048], *err;
    snprintf(yaml, sizeof yaml,
             "name: short\n"
             "datasets:\n"
             "  - {name: long, kind: sphere, dim: 32, count: 300}\n"
             "  - {name: short, kind: sphere, dim: 32, count: 50}\n"
             "methods:\n"
             "  - {method: rtn, params: {bits: 4}}\n"
             "metrics: [vnmse]\n"
             "latency: {ops: [encode], min_time: 0.001, repetitions: 2, batch: 200}\n");
    json_t *rows;
    int st = run_yaml("short", yaml, &rows, &err);
    cr_assert(st == 0 || (st == 2 && strstr(err, "gnuplot")), "exit %d: %s", st, err);
    cr_assert_not_null(rows, "%s", err);
    const char *w = strstr(err, "warning: latency batch: 200 is more than the 50 vectors of "
                                "dataset 'short'");
    cr_assert(w, "%s", err);
    cr_assert_null(strstr(w + 1, "warning: latency batch"), "once a run: %s", err);
    size_t i, seen = 0;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (!rb_row_is_latency(row)) continue;
        const char *ds = rb_row_str(row, "dataset");
        double per_call = rb_row_double(row, "items_per_s") * rb_row_double(row, "value");
        double want = ds && !strcmp(ds, "short") ? 50 : 200;
        cr_assert(fabs(per_call - want) <= 1e-6 * want, "%s: %g vectors a call", ds, per_call);
        seen++;
    }
    cr_assert_eq(seen, 2);
    json_decref(rows);
    free(err);
}

/* Vector codecs on the kv_cache generator get rows like KV methods: tokens per second for
 * encode and decode, scores for inner_product (queries x query heads x tokens); the `batch`
 * key, which does not apply to KV data, gets one warning when it applied to no cell. */
Test(latency, vector_codecs_on_kv_data) {
    char yaml[2048], *err;
    snprintf(yaml, sizeof yaml,
             "name: kvc\n"
             "datasets:\n"
             "  - {name: kv, kind: kv_cache, tokens: 64, heads: 2, head_dim: 32, queries: 3}\n"
             "methods:\n"
             "  - {method: turboquant_mse, params: {bits: 2}}\n"
             "  - {method: turboquant_prod, params: {bits: 2}}\n"
             "  - {method: eden, params: {bits: 2}}\n"
             "  - {method: qjl, params: {bits: 1}}\n"
             "  - {method: rtn_kv, params: {bits: 4}}\n"
             "metrics: [rel_mse_k]\n%s",
             ops3);
    json_t *rows;
    int st = run_yaml("kvc", yaml, &rows, &err);
    cr_assert(st == 0 || (st == 2 && strstr(err, "gnuplot")), "exit %d: %s", st, err);
    cr_assert_not_null(rows, "%s", err);
    cr_assert_eq(count_latency(rows), 15, "three ops x five methods");
    /* batch: 200 applied to no cell, and the run says so once, naming the dataset */
    const char *w = strstr(err, "warning: latency batch: 200 did not apply");
    cr_assert(w && strstr(w, "dataset 'kv'"), "%s", err);
    cr_assert_null(strstr(w + 1, "warning: latency batch"), "once a run: %s", err);
    const char *labels[] = {"turboquant_mse", "turboquant_prod", "eden", "qjl", "rtn_kv"};
    for (int m = 0; m < 5; m++) {
        check_row(rows, labels[m], "encode_latency", "tokens", 64);
        check_row(rows, labels[m], "decode_latency", "tokens", 64);
        check_row(rows, labels[m], "inner_product_latency", "scores", 3 * 2 * 64);
    }
    /* Bytes a call moves (GB/s x seconds): K and V in fp32 (2 x 64 x 2 x 32 x 4) and the stored
     * cache, which a KV method's encode writes and decode reads like a codec's codes: rtn_kv at 4
     * bits + an fp16 scale and zero per 32 channels is 5 bits an element, 5120 bytes. */
    const char *ops[2] = {"encode_latency", "decode_latency"};
    for (int o = 0; o < 2; o++) {
        json_t *r = find_row(rows, "rtn_kv", ops[o]);
        double bytes = rb_row_double(r, "gbps") * 1e9 * rb_row_double(r, "value");
        cr_assert(fabs(bytes - (32768 + 5120)) <= 1e-6 * bytes, "%s: %g bytes a call", ops[o],
                  bytes);
    }
    json_decref(rows);
    free(err);
}

/* Writes a (L, T, H, D) or (L, nq, HQ, D) .npy of small normal values. */
static void write_npy(const char *name, const size_t shape[4], uint64_t stream) {
    size_t n = shape[0] * shape[1] * shape[2] * shape[3];
    float *x = rbt_normal_f32(n, 11, stream);
    cr_assert_eq(rb_npy_write(rbt_tmp(name), RB_NPY_F32, 4, shape, x), 0, "%s", rb_error_detail());
    free(x);
}

/* A KV dump with a leading layer axis (3 layers, GQA with 2 query heads per KV head): one row
 * per op covering every layer, for a KV method and a vector codec; a token counts once for all
 * layers, a score is one (layer, query, query head, token). */
Test(latency, layered_kv_dump) {
    size_t ks[4] = {3, 40, 2, 16}, qs[4] = {3, 5, 4, 16};
    write_npy("k.npy", ks, 1);
    write_npy("v.npy", ks, 2);
    write_npy("q.npy", qs, 3);
    char yaml[4096], *err;
    snprintf(yaml, sizeof yaml,
             "name: layered\n"
             "datasets:\n"
             "  - {name: dump, kind: kv_npy, k_path: '%s', v_path: '%s', q_path: '%s'}\n"
             "methods:\n"
             "  - {method: rtn_kv, params: {bits: 4}}\n"
             "  - {method: kivi, params: {bits: 2, group: 8, residual: 8}}\n"
             "  - {method: turboquant_prod, params: {bits: 2}}\n"
             "metrics: [logit_err]\n%s",
             rbt_tmp("k.npy"), rbt_tmp("v.npy"), rbt_tmp("q.npy"), ops3);
    json_t *rows;
    int st = run_yaml("layered", yaml, &rows, &err);
    cr_assert(st == 0 || (st == 2 && strstr(err, "gnuplot")), "exit %d: %s", st, err);
    cr_assert_not_null(rows, "%s", err);
    cr_assert_eq(count_latency(rows), 9, "three ops x three methods");
    const char *labels[] = {"rtn_kv", "kivi", "turboquant_prod"};
    for (int m = 0; m < 3; m++) {
        check_row(rows, labels[m], "encode_latency", "tokens", 40);
        check_row(rows, labels[m], "decode_latency", "tokens", 40);
        check_row(rows, labels[m], "inner_product_latency", "scores", 3 * 5 * 4 * 40);
    }
    json_decref(rows);
    free(err);
}

/* inner_product on KV data without queries fails naming the dataset. */
Test(latency, kv_inner_product_without_queries_fails) {
    char yaml[2048], *err;
    snprintf(yaml, sizeof yaml,
             "name: kvnoq\n"
             "datasets:\n"
             "  - {name: kvq0, kind: kv_cache, tokens: 64, heads: 2, head_dim: 32,\n"
             "     queries: 0}\n"
             "methods:\n"
             "  - {method: rtn_kv, params: {bits: 4}}\n"
             "metrics: [rel_mse_k]\n%s",
             ops3);
    json_t *rows;
    int st = run_yaml("kvnoq", yaml, &rows, &err);
    cr_assert_eq(st, 2, "exit %d: %s", st, err);
    cr_assert(strstr(err, "inner_product") && strstr(err, "dataset 'kvq0'"), "%s", err);
    json_decref(rows);
    free(err);
}
