/* `--backend cuda` end to end: the same config on the CPU and on the GPU gives the same accuracy
 * records bit for bit, and the GPU records say which ops ran there. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda_util.h"
#include "tests/testutil.h"

/* The records of a results.jsonl keyed by everything but the backend. */
static json_t *load_records(const char *path) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    json_t *all = json_object();
    char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert(o, "bad JSON line in %s", path);
        const char *metric = json_string_value(json_object_get(o, "metric"));
        if (!metric) { /* the header line */
            json_decref(o);
            continue;
        }
        /* The cell key names the backend; everything else identifies the record. */
        char *params = json_dumps(json_object_get(o, "params"), JSON_SORT_KEYS | JSON_COMPACT);
        char k[2048];
        const char *slice = json_string_value(json_object_get(o, "slice"));
        snprintf(k, sizeof k, "%s|%s|%s|%lld|%s|%s",
                 json_string_value(json_object_get(o, "dataset")),
                 json_string_value(json_object_get(o, "label")), params,
                 (long long) json_integer_value(json_object_get(o, "repeat")), metric,
                 slice ? slice : "");
        free(params);
        json_object_set_new(all, k, o);
    }
    fclose(f);
    return all;
}

/* KV (SAW-INT4: the fused Hadamard + INT4 kernel) and codecs (TurboQuant: randomized Hadamard
 * and codebook search) in one pass each. */
static void same_records_on_both_backends(const char *config) {
    RBT_CUDA_OPS(cu);
    (void) cu;
    rbt_tmpdir_make("cuda_runner");
    char cmd[1024], *out = NULL, *err = NULL;
    const char *be[2] = {"cpu", "cuda"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "run %s --quick --backend %s -o %s", config, be[i],
                 rbt_tmp(be[i]));
        int st = rbt_run_cli(cmd, &out, &err);
        cr_assert_eq(st, 0, "%s: exit %d\n%s%s", cmd, st, out, err);
        free(out);
        free(err);
    }
    char path[2][512];
    for (int i = 0; i < 2; i++)
        snprintf(path[i], sizeof path[i], "%s/results.jsonl", rbt_tmp(be[i]));
    json_t *cpu = load_records(path[0]), *gpu = load_records(path[1]);
    cr_assert_eq(json_object_size(cpu), json_object_size(gpu),
                 "%zu records on the CPU, %zu on cuda", json_object_size(cpu),
                 json_object_size(gpu));
    const char *k;
    json_t *c;
    size_t on_gpu = 0;
    json_object_foreach(cpu, k, c) {
        json_t *g = json_object_get(gpu, k);
        cr_assert(g, "record %s missing on cuda", k);
        cr_assert_str_eq(json_string_value(json_object_get(g, "backend")), "cuda");
        json_t *cv = json_object_get(c, "value"), *gv = json_object_get(g, "value");
        double a = json_number_value(cv), b = json_number_value(gv);
        cr_assert(json_equal(cv, gv) || memcmp(&a, &b, sizeof a) == 0, "%s: cpu %.17g, cuda %.17g",
                  k, a, b);
        const char *kv = json_string_value(json_object_get(g, "kernel_variants"));
        if (kv && strstr(kv, "=cuda")) on_gpu++;
    }
    cr_assert_gt(on_gpu, 0, "no record says an op ran on cuda");
    json_decref(cpu);
    json_decref(gpu);
    rbt_tmpdir_remove();
}

Test(cuda_runner, saw_int4_records_equal_the_cpu, .timeout = 300) {
    same_records_on_both_backends("configs/paper/saw_int4.yaml");
}

Test(cuda_runner, turboquant_records_equal_the_cpu, .timeout = 300) {
    same_records_on_both_backends("configs/paper/turboquant.yaml");
}
