/* rotabench hw: the detected hardware and the machine limits, measured as the benchmarks do. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/context.h"
#include "harness/harness.h"
#include "harness/limits.h"
#include "kernels/kernels.h"
#include "kernels/pool.h"

static const char usage_text[] =
    "usage: rotabench hw [--no-limits] [--json]\n"
    "\n"
    "Prints the hardware rotabench detects (hwloc topology, CPU model and features, caches,\n"
    "kernel selection, thread binding, CUDA devices) and the machine limits (copy bandwidth,\n"
    "peak fp32 add) at 1 thread and at all cores, measured through Google Benchmark exactly as\n"
    "`rotabench bench` measures them. --no-limits skips the measurement; --json prints the\n"
    "same as JSON (the host, gpu and build sections of context.json).\n";

static void field(const char *label, json_t *v) {
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("  %-12s %s\n", label, text ? text : "?");
    free(text);
}

int rb_cmd_hw(int argc, char **argv) {
    int measure = 1, as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-limits")) {
            measure = 0;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else {
            fprintf(stderr, "rotabench hw: unknown option '%s' (rotabench hw --help)\n", argv[i]);
            return 2;
        }
    }
    /* threads and binding as `rotabench run` uses them by default: one thread per core */
    rb_threads_set(0);
    json_t *limits = json_null();
    rb_limits lim = {0};
    if (measure) {
        int threads[2] = {1, rb_limits_cores()};
        rb_limits_options lo = {0};
        if (rb_limits_measure(threads, 2, &lo, &lim)) {
            fprintf(stderr, "rotabench hw: measuring limits: %s\n", rb_error_detail());
            return 2;
        }
        limits = json_array();
        for (size_t i = 0; i < lim.count; i++) {
            const rb_limit *l = &lim.rows[i];
            json_array_append_new(limits, rb_limit_json(l));
        }
    }
    json_t *ctx = rb_context_build(argc, argv, NULL, NULL, NULL, NULL, limits);
    json_decref(limits);
    if (measure) rb_limits_free(&lim);
    if (!ctx) {
        fprintf(stderr, "rotabench hw: %s\n", rb_error_detail());
        return 2;
    }
    json_t *host = json_object_get(ctx, "host"), *gpu = json_object_get(ctx, "gpu");
    int ndev = 0;
    if (measure && rb_cuda_device_count(&ndev) == RB_OK && ndev > 0) {
        /* The GPU's limit: a device-to-device copy well above the L2 (median of 20). */
        double bw = 0;
        if (rb_cuda_copy_bandwidth((size_t) 1 << 30, 20, &bw) == RB_OK)
            json_object_set_new(gpu, "copy_d2d_gbps", json_real(bw / 1e9));
        else
            json_object_set_new(gpu, "copy_d2d_error", json_string(rb_error_detail()));
    }
    if (as_json) {
        json_t *out = json_pack("{s:O, s:O, s:O}", "build", json_object_get(ctx, "build"), "host",
                                host, "gpu", gpu);
        char *text = json_dumps(out, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(out);
        json_decref(ctx);
        return 0;
    }
    printf("host\n");
    const char *keys[] = {"hostname", "cpu_model", "packages", "cores",   "pus",     "numa_nodes",
                          "caches",   "features",  "kernels",  "threads", "binding", "blas_core"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        field(keys[i], json_object_get(host, keys[i]));
    json_t *note = json_object_get(host, "blas_note");
    if (note) printf("  note: %s\n", json_string_value(note));
    printf("gpu\n");
    field("devices", json_object_get(gpu, "devices"));
    if (json_object_get(gpu, "copy_d2d_gbps"))
        field("copy d2d", json_object_get(gpu, "copy_d2d_gbps"));
    if (!json_is_null(json_object_get(gpu, "reason")))
        field("reason", json_object_get(gpu, "reason"));
    printf("limits (fastest repetition; copy counts one read + one write, write the streaming "
           "stores alone)\n");
    json_t *l = json_object_get(host, "limits");
    size_t i;
    json_t *row;
    if (json_is_array(l)) json_array_foreach(l, i, row) {
            printf("  threads:%-3d copy %7.1f GB/s (memcpy %.1f, stream %.1f)   write %5.1f GB/s   "
                   "peak add fp32 %7.1f GFLOP/s (%s)\n",
                   (int) json_integer_value(json_object_get(row, "threads")),
                   json_real_value(json_object_get(row, "copy_gbps")),
                   json_real_value(json_object_get(row, "copy_memcpy_gbps")),
                   json_real_value(json_object_get(row, "copy_stream_gbps")),
                   json_real_value(json_object_get(row, "write_gbps")),
                   json_real_value(json_object_get(row, "peak_add_gflops")),
                   json_string_value(json_object_get(row, "peak_variant")));
        }
    else
        printf("  not measured (--no-limits)\n");
    json_decref(ctx);
    return 0;
}
