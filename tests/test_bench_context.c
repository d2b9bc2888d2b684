/* `rotabench bench --json` records the machine as `rotabench hw --json` and context.json do: the
 * same host and build sections, the UTC time and the measured limits (RB_TEST_BIN). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"

Test(cli_bench_context, json_carries_host_build_utc_and_limits) {
    char path[] = "/tmp/rbtest_benchctx_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char args[256], *out, *err;
    snprintf(args, sizeof args,
             "bench '^fwht_f32/n:16/threads:1$' --min-time 0.002 --repetitions 3 --copy-mib 8 "
             "--json %s",
             path);
    int st = rbt_run_cli(args, &out, &err);
    cr_assert_eq(st, 0, "exit %d\n%s%s", st, out, err);
    free(out);
    free(err);
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    unlink(path);
    cr_assert(root, "bad JSON: %s", e.text);
    json_t *ctx = json_object_get(root, "context");
    json_t *host = json_object_get(ctx, "host"), *build = json_object_get(ctx, "build");
    cr_assert(json_is_object(host), "no context.host");
    cr_assert(json_is_object(build), "no context.build");

    /* The fields the review found missing, and the ones already there. */
    static const char *host_keys[] = {"hostname", "cpu_model", "caches",  "features",
                                      "kernels",  "threads",   "binding", "blas_core"};
    for (size_t i = 0; i < sizeof host_keys / sizeof host_keys[0]; i++)
        cr_assert(json_object_get(host, host_keys[i]), "no context.host.%s", host_keys[i]);
    static const char *build_keys[] = {"git_sha", "compiler", "flags", "libraries"};
    for (size_t i = 0; i < sizeof build_keys / sizeof build_keys[0]; i++)
        cr_assert(json_object_get(build, build_keys[i]), "no context.build.%s", build_keys[i]);
    const char *utc = json_string_value(json_object_get(ctx, "utc"));
    cr_assert(utc && strlen(utc) == 20 && utc[10] == 'T' && utc[19] == 'Z', "utc %s",
              utc ? utc : "(none)");
    cr_assert(json_string_value(json_object_get(ctx, "version")), "version is kept");
    cr_assert(json_is_real(json_object_get(ctx, "min_time_s")), "min_time_s is kept");
    /* host.limits: the limits the file reports at its top level. */
    json_t *limits = json_object_get(root, "limits");
    cr_assert_geq(json_array_size(limits), 1);
    cr_assert(json_equal(json_object_get(host, "limits"), limits), "host.limits != limits");

    /* The same description of the machine as `rotabench hw --json`: the same code made both. */
    json_t *hw = rbt_cli_json("hw --json --no-limits");
    json_t *hw_host = json_object_get(hw, "host"), *hw_build = json_object_get(hw, "build");
    static const char *same_host[] = {"hostname", "cpu_model",  "packages", "cores",
                                      "pus",      "numa_nodes", "caches",   "features",
                                      "kernels",  "blas_core"};
    for (size_t i = 0; i < sizeof same_host / sizeof same_host[0]; i++)
        cr_assert(
            json_equal(json_object_get(host, same_host[i]), json_object_get(hw_host, same_host[i])),
            "host.%s differs from hw --json's", same_host[i]);
    static const char *same_build[] = {"git_sha", "dirty", "compiler", "flags", "cuda_built"};
    for (size_t i = 0; i < sizeof same_build / sizeof same_build[0]; i++)
        cr_assert(json_equal(json_object_get(build, same_build[i]),
                             json_object_get(hw_build, same_build[i])),
                  "build.%s differs from hw --json's", same_build[i]);
    json_decref(hw);
    json_decref(root);
}
