/* context.json: build, host, GPU and run provenance gathered from the libraries that know it. */
#include "harness/context.h"
#include "harness/gbench.h"

#include <cblas.h>
#include <gsl/gsl_version.h>
#include <hwloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "harness/harness.h"
#include "harness/record.h"
#include "kernels/kernels.h"

/* Google Benchmark's build facts, from the wrapper: a debug library or an unoptimized build of
 * ours distorts every latency number, so the context says which it was. */
static json_t *gbench_info(void) {
    rb_gb_report r;
    rb_gb_context(&r);
    return json_pack("{s:b, s:b, s:i, s:i, s:f}", "library_debug", r.library_debug,
                     "build_optimized", r.build_optimized, "cpu_scaling", r.cpu_scaling, "num_cpus",
                     r.num_cpus, "cpu_mhz", r.cpu_mhz);
}

static json_t *libraries(void) {
    json_t *o = json_object();
    json_object_set_new(o, "libyaml", json_string(yaml_get_version_string()));
    char buf[64];
    unsigned hv = hwloc_get_api_version();
    snprintf(buf, sizeof buf, "%u.%u.%u (built against %u.%u.%u)", hv >> 16, (hv >> 8) & 0xff,
             hv & 0xff, HWLOC_API_VERSION >> 16, (HWLOC_API_VERSION >> 8) & 0xff,
             HWLOC_API_VERSION & 0xff);
    json_object_set_new(o, "hwloc", json_string(buf));
    json_object_set_new(o, "jansson", json_string(JANSSON_VERSION));
    json_object_set_new(o, "gsl", json_string(gsl_version));
    const char *ob = openblas_get_config();
    json_object_set_new(o, "openblas", ob ? json_string(ob) : json_null());
    json_t *gb = gbench_info();
    json_object_set_new(o, "google_benchmark", gb ? gb : json_null());
    return o;
}

json_t *rb_context_build_section(void) {
    json_t *o = json_object();
    json_object_set_new(o, "git_sha", json_string(rb_git_sha()));
    json_object_set_new(o, "dirty", json_boolean(rb_git_dirty()));
#ifdef __clang__
    json_object_set_new(o, "compiler", json_string("clang " __clang_version__));
#else
    json_object_set_new(o, "compiler", json_string("gcc " __VERSION__));
#endif
    json_object_set_new(o, "flags", json_string(rb_build_flags()));
    json_object_set_new(o, "cuda_built", json_boolean(rb_cuda_built()));
    json_t *arch = json_array();
    /* The -gencode list as separate entries: "arch=compute_90a,code=sm_90a", ... */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", rb_cuda_arch());
    char *save = NULL;
    for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
        if (strcmp(t, "-gencode") != 0) json_array_append_new(arch, json_string(t));
    json_object_set_new(o, "cuda_arch", arch);
    json_object_set_new(o, "libraries", libraries());
    return o;
}

static json_t *cache_info(hwloc_topology_t topo, hwloc_obj_type_t type) {
    int n = hwloc_get_nbobjs_by_type(topo, type);
    if (n <= 0) return json_null();
    hwloc_obj_t c = hwloc_get_obj_by_type(topo, type, 0);
    return json_pack("{s:I,s:i}", "size_bytes", (json_int_t) c->attr->cache.size, "count", n);
}

json_t *rb_context_host_section(json_t *limits) {
    json_t *o = json_object();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_object_set_new(o, "hostname", json_string(host));
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) == 0 && hwloc_topology_load(topo) == 0) {
        hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
        const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
        /* Some firmware pads the model string with spaces. */
        char mbuf[256] = "";
        if (model) snprintf(mbuf, sizeof mbuf, "%s", model);
        for (size_t n = strlen(mbuf); n > 0 && mbuf[n - 1] == ' ';) mbuf[--n] = '\0';
        json_object_set_new(o, "cpu_model", model ? json_string(mbuf) : json_null());
        json_object_set_new(o, "packages",
                            json_integer(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE)));
        json_object_set_new(o, "cores",
                            json_integer(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE)));
        json_object_set_new(o, "pus", json_integer(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU)));
        json_object_set_new(o, "numa_nodes",
                            json_integer(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE)));
        json_t *caches = json_object();
        json_object_set_new(caches, "l1d", cache_info(topo, HWLOC_OBJ_L1CACHE));
        json_object_set_new(caches, "l2", cache_info(topo, HWLOC_OBJ_L2CACHE));
        json_object_set_new(caches, "l3", cache_info(topo, HWLOC_OBJ_L3CACHE));
        json_object_set_new(o, "caches", caches);
        hwloc_topology_destroy(topo);
    } else {
        json_object_set_new(o, "cpu_model", json_null());
        json_object_set_new(o, "topology_error", json_string("hwloc could not load the topology"));
    }
    json_t *feat = json_array();
    unsigned isa = rb_cpu_isa();
    if (isa & RB_ISA_AVX2) json_array_append_new(feat, json_string("avx2+fma"));
    if (isa & RB_ISA_AVX512) json_array_append_new(feat, json_string("avx512f+bw+dq+vl"));
    json_object_set_new(o, "features", feat);
    /* the BLAS's kernels are chosen by CPU at load, like ours: what ran here, and a note if they
     * are older than the CPU (kernels/linalg.h) */
    const char *core = rb_blas_core(),
               *note = getenv("OPENBLAS_CORETYPE")
                           ? NULL
                           : rb_blas_core_note(core, isa, rb_blas_dynamic());
    json_object_set_new(o, "blas_core", core ? json_string(core) : json_null());
    if (note) json_object_set_new(o, "blas_note", json_string(note));
    json_object_set_new(o, "kernels", json_string(rb_kernels_selection()));
    json_object_set_new(o, "threads", json_integer(rb_threads_get()));
    json_object_set_new(o, "binding", json_string(rb_pool_binding()));
    json_object_set(o, "limits", limits ? limits : json_null());
    return o;
}

static json_t *gpu_info(void) {
    json_t *o = json_object(), *devs = json_array();
    int count = 0;
    int rc = rb_cuda_device_count(&count);
    if (rc) {
        json_object_set_new(o, "devices", devs);
        json_object_set_new(o, "reason", json_string(rb_error_detail()));
        return o;
    }
    for (int d = 0; d < count; d++) {
        rb_cuda_device_info info;
        if (rb_cuda_device_info_get(d, &info)) {
            json_array_append_new(devs,
                                  json_pack("{s:i,s:s}", "index", d, "error", rb_error_detail()));
            continue;
        }
        char cc[16];
        snprintf(cc, sizeof cc, "%d.%d", info.cc_major, info.cc_minor);
        json_array_append_new(devs, json_pack("{s:i,s:s,s:i,s:s,s:I,s:i,s:i}", "index", d, "name",
                                              info.name, "sm_count", info.sm_count, "cc", cc,
                                              "total_mem_bytes", (json_int_t) info.total_mem,
                                              "driver_version", info.driver_version,
                                              "runtime_version", info.runtime_version));
        json_t *dev = json_array_get(devs, json_array_size(devs) - 1);
        json_object_set_new(dev, "l2_bytes", json_integer((json_int_t) info.l2_bytes));
        json_object_set_new(dev, "mem_bw_theoretical_gbps",
                            json_real(info.mem_bw_theoretical / 1e9));
    }
    json_object_set_new(o, "devices", devs);
    json_object_set_new(o, "reason", count ? json_null() : json_string("no CUDA device visible"));
    return o;
}

json_t *rb_context_build(int argc, char **argv, const char *config_path, const char *config_json,
                         const char *config_sha256, json_t *seeds, json_t *limits) {
    json_t *config = json_null();
    if (config_json) {
        json_error_t err;
        config = json_loads(config_json, 0, &err);
        if (!config) {
            rb_error_set(RB_EFORMAT, "context: the resolved config is not valid JSON: %s (line %d)",
                         err.text, err.line);
            return NULL;
        }
    }
    json_t *run = json_object();
    char now[32];
    rb_utc_iso8601(now);
    json_object_set_new(run, "utc", json_string(now));
    json_t *args = json_array();
    for (int i = 0; i < argc; i++) json_array_append_new(args, json_string(argv[i]));
    json_object_set_new(run, "argv", args);
    json_object_set_new(run, "config_path", config_path ? json_string(config_path) : json_null());
    json_object_set_new(run, "config_sha256",
                        config_sha256 ? json_string(config_sha256) : json_null());
    json_object_set_new(run, "config", config);
    json_object_set(run, "seeds", seeds ? seeds : json_null());

    json_t *ctx = json_object();
    json_object_set_new(ctx, "build", rb_context_build_section());
    json_object_set_new(ctx, "host", rb_context_host_section(limits));
    json_object_set_new(ctx, "gpu", gpu_info());
    json_object_set_new(ctx, "run", run);
    rb_error_clear(); /* the GPU probe's "no device" detail is recorded, not an error */
    return ctx;
}

int rb_context_write(const char *dir, json_t *ctx) {
    int rc = rb_mkdir_p(dir);
    if (rc) return rc;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/context.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* Written whole then renamed, so a reader never sees half a context. */
    if (json_dump_file(ctx, tmp, JSON_INDENT(2)) != 0)
        return rb_error_set(RB_EIO, "%s: cannot write", tmp);
    if (rename(tmp, path) != 0) return rb_error_set(RB_EIO, "%s: rename failed", path);
    return RB_OK;
}

void rb_run_id(const char *config_name, char *buf, size_t size) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    int n = snprintf(buf, size, "%s-%s", stamp, config_name ? config_name : "run");
    size_t start = strlen(stamp) + 1;
    for (size_t i = start; n > 0 && i < (size_t) n && i < size && buf[i]; i++) {
        char c = buf[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) buf[i] = '_';
    }
}
