// The Google Benchmark wrapper behind harness/gbench.h: registers C callbacks for one call, runs
// them through a reporter that hands every repetition back to C. The only C++ in the project.
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

// error.h is a C header without linkage guards; its own includes are already done above.
extern "C" {
#include "kernels/error.h"
}
#include "harness/gbench.h"

// What the body sees: the library's State plus the loop protocol's progress (so the wrapper can
// finish a loop the body left, which the library needs for its thread barriers) and the cost.
struct rb_gb_state {
    benchmark::State *st;
    bool finished;
    double bytes, flops, items;
};

namespace {

const char *const kCostBytes = "rb.bytes";
const char *const kCostFlops = "rb.flops";
const char *const kCostItems = "rb.items";

std::mutex run_mutex; // the library's registry is global: one run at a time
std::once_flag init_once;

void init_library() {
    // Initialize wants argv; a synthetic one leaves every flag at its default.
    static char arg0[] = "rotabench";
    static char *argv[] = {arg0, nullptr};
    int argc = 1;
    benchmark::Initialize(&argc, argv);
}

// Setup/teardown bookkeeping for one run: the library calls a benchmark's function several times
// (iteration estimate, repetitions), always contiguously, so "set up the one being run, tear down
// the previous" gives exactly one setup and one teardown per benchmark.
struct RunContext {
    const rb_gb_bench *benches = nullptr;
    std::mutex mu;
    long current = -1;
    std::vector<std::string> setup_error;

    void enter(size_t i) {
        if (current == (long) i) return;
        leave();
        const rb_gb_bench &b = benches[i];
        current = (long) i;
        if (b.setup) {
            rb_error_clear();
            int rc = b.setup(b.ctx);
            if (rc != 0) {
                const char *d = rb_error_detail();
                setup_error[i] = std::string("setup failed: ") + rb_errname(rc) +
                                 (d && *d ? std::string(": ") + d : std::string());
            }
        }
    }
    void leave() {
        if (current < 0) return;
        const rb_gb_bench &b = benches[current];
        if (b.teardown) b.teardown(b.ctx);
        current = -1;
    }
};

void run_body(RunContext *rc, size_t i, benchmark::State &state) {
    const rb_gb_bench &b = rc->benches[i];
    std::string err;
    {
        std::lock_guard<std::mutex> lock(rc->mu);
        rc->enter(i);
        err = rc->setup_error[i];
    }
    rb_gb_state st = {&state, false, b.opt.bytes, b.opt.flops, b.opt.items};
    if (err.empty()) {
        b.body(&st, b.ctx);
        if (!st.finished && !state.error_occurred())
            state.SkipWithError("the body returned before its benchmark loop finished");
    } else {
        state.SkipWithError(err.c_str());
    }
    // Complete the loop protocol (start and stop barriers) if the body did not.
    if (!st.finished)
        while (state.KeepRunning()) {}
    using benchmark::Counter;
    state.counters[kCostBytes] = Counter(st.bytes, Counter::kAvgThreads);
    state.counters[kCostFlops] = Counter(st.flops, Counter::kAvgThreads);
    state.counters[kCostItems] = Counter(st.items, Counter::kAvgThreads);
}

// Collects the per-repetition runs; aggregate runs (mean/median/stddev rows) are dropped because
// our statistics come from the raw samples.
class Collector : public benchmark::BenchmarkReporter {
  public:
    struct Item {
        std::vector<rb_gb_sample> samples;
        std::string error;
        double bytes = 0, flops = 0, items = 0;
        int threads = 1;
        bool seen = false;
    };
    std::map<std::string, size_t> index;
    std::vector<Item> items;

    bool ReportContext(const Context &) override { return true; }
    void ReportRuns(const std::vector<Run> &runs) override {
        for (const Run &r : runs) {
            if (r.run_type != Run::RT_Iteration) continue;
            auto it = index.find(r.run_name.function_name);
            if (it == index.end()) continue;
            Item &item = items[it->second];
            item.seen = true;
            item.threads = (int) r.threads;
            if (r.error_occurred) {
                if (item.error.empty()) item.error = r.error_message;
                continue;
            }
            item.samples.push_back(rb_gb_sample{r.GetAdjustedRealTime(), r.GetAdjustedCPUTime(),
                                                (int64_t) r.iterations});
            item.bytes = counter(r, kCostBytes);
            item.flops = counter(r, kCostFlops);
            item.items = counter(r, kCostItems);
        }
    }

  private:
    static double counter(const Run &r, const char *name) {
        auto it = r.counters.find(name);
        return it == r.counters.end() ? 0.0 : it->second.value;
    }
};

char *dup(const std::string &s) {
    char *p = (char *) malloc(s.size() + 1);
    if (!p) throw std::bad_alloc();
    memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

void fill_result(rb_gb_result *res, size_t i, const rb_gb_bench &b, const Collector::Item &item) {
    res->name = dup(b.name);
    res->index = i;
    res->manual_time = b.opt.manual_time != 0;
    res->threads = item.threads;
    res->ok = item.error.empty() && !item.samples.empty();
    if (!res->ok) res->error = dup(item.error.empty() ? "no samples were reported" : item.error);
    res->nsamples = item.samples.size();
    if (res->nsamples) {
        res->samples = (rb_gb_sample *) malloc(res->nsamples * sizeof *res->samples);
        if (!res->samples) throw std::bad_alloc();
        std::copy(item.samples.begin(), item.samples.end(), res->samples);
    }
    std::vector<double> real, cpu;
    for (const rb_gb_sample &s : item.samples) {
        real.push_back(s.real_ns);
        cpu.push_back(s.cpu_ns);
        res->iterations += s.iterations;
    }
    res->real_ns = rb_gb_stats_of(real.data(), real.size());
    res->cpu_ns = rb_gb_stats_of(cpu.data(), cpu.size());
    res->bytes = item.bytes;
    res->flops = item.flops;
    res->items = item.items;
    double t = res->real_ns.median;
    if (res->ok && t > 0) {
        res->gbps = item.bytes / t;   // bytes per ns = GB/s
        res->gflops = item.flops / t; // flops per ns = GFLOP/s
        res->items_per_s = item.items / t * 1e9;
    }
}

// Matches like --benchmark_filter: a search (not a full match) with a POSIX extended regex; '-'
// in front negates. (POSIX regcomp rather than std::regex: same dialect, and gcc 12 warns inside
// std::regex's headers under the sanitizer build.)
struct Filter {
    bool negate = false, all = true, compiled = false;
    regex_t re;
    Filter() = default;
    Filter(const Filter &) = delete;
    Filter &operator=(const Filter &) = delete;
    ~Filter() {
        if (compiled) regfree(&re);
    }
    int init(const char *spec) {
        std::string s = spec ? spec : "";
        if (!s.empty() && s[0] == '-') {
            negate = true;
            s.erase(0, 1);
        }
        if (s.empty() || s == "all") return RB_OK;
        int rc = regcomp(&re, s.c_str(), REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[256];
            regerror(rc, &re, msg, sizeof msg);
            return rb_error_set(RB_EINVAL, "benchmark filter '%s' is not a valid regex: %s", spec,
                                msg);
        }
        compiled = true;
        all = false;
        return RB_OK;
    }
    bool match(const char *name) const {
        bool m = all || regexec(&re, name, 0, nullptr, 0) == 0;
        return m != negate;
    }
};

int run_impl(const rb_gb_bench *benches, size_t count, const char *filter, rb_gb_report *out) {
    Filter f;
    int rc = f.init(filter);
    if (rc) return rc;
    std::map<std::string, size_t> names;
    for (size_t i = 0; i < count; i++) {
        if (!benches[i].name || !*benches[i].name || !benches[i].body)
            return rb_error_set(RB_EINVAL, "benchmark %zu has no name or no body", i);
        if (!names.emplace(benches[i].name, i).second)
            return rb_error_set(RB_EINVAL, "benchmark name '%s' is registered twice",
                                benches[i].name);
        if (benches[i].opt.min_time < 0 || benches[i].opt.repetitions < 0 ||
            benches[i].opt.threads < 0 || benches[i].opt.warmup_time < 0)
            return rb_error_set(RB_EINVAL, "benchmark '%s': negative option", benches[i].name);
    }

    std::call_once(init_once, init_library);
    std::lock_guard<std::mutex> lock(run_mutex);
    RunContext ctx;
    ctx.benches = benches;
    ctx.setup_error.resize(count);
    Collector col;
    std::vector<size_t> selected;
    for (size_t i = 0; i < count; i++) {
        if (!f.match(benches[i].name)) continue;
        col.index[benches[i].name] = selected.size();
        selected.push_back(i);
    }
    col.items.resize(selected.size());

    benchmark::ClearRegisteredBenchmarks();
    for (size_t i : selected) {
        const rb_gb_options &o = benches[i].opt;
        RunContext *pc = &ctx;
        auto *bm = benchmark::RegisterBenchmark(
            benches[i].name, [pc, i](benchmark::State &state) { run_body(pc, i, state); });
        bm->Unit(benchmark::kNanosecond);
        if (o.manual_time)
            bm->UseManualTime();
        else
            bm->UseRealTime(); // latency is wall time: the pool's threads work while we wait
        if (o.min_time > 0) bm->MinTime(o.min_time);
        if (o.warmup_time > 0) bm->MinWarmUpTime(o.warmup_time);
        bm->Repetitions(o.repetitions > 0 ? o.repetitions : 1);
        if (o.threads > 1) bm->Threads(o.threads);
    }
    // Our own filter chose the registrations; the library's must not drop any (its names carry
    // suffixes such as /min_time:0.100/real_time).
    if (!selected.empty()) benchmark::RunSpecifiedBenchmarks(&col, ".");
    ctx.leave();
    benchmark::ClearRegisteredBenchmarks();

    out->results =
        (rb_gb_result *) calloc(selected.size() ? selected.size() : 1, sizeof *out->results);
    if (!out->results) throw std::bad_alloc();
    out->count = selected.size();
    for (size_t k = 0; k < selected.size(); k++)
        fill_result(&out->results[k], selected[k], benches[selected[k]], col.items[k]);
    return RB_OK;
}

} // namespace

extern "C" {

int rb_gb_keep_running(rb_gb_state *st) {
    if (st->st->KeepRunning()) return 1;
    st->finished = true;
    return 0;
}

int rb_gb_keep_running_batch(rb_gb_state *st, int64_t batch) {
    RB_ASSERT(batch > 0);
    if (st->st->KeepRunningBatch((benchmark::IterationCount) batch)) return 1;
    st->finished = true;
    return 0;
}

void rb_gb_pause_timing(rb_gb_state *st) {
    st->st->PauseTiming();
}
void rb_gb_resume_timing(rb_gb_state *st) {
    st->st->ResumeTiming();
}
void rb_gb_set_iteration_time(rb_gb_state *st, double seconds) {
    st->st->SetIterationTime(seconds);
}

void rb_gb_set_cost(rb_gb_state *st, double bytes, double flops, double items) {
    if (bytes >= 0) st->bytes = bytes;
    if (flops >= 0) st->flops = flops;
    if (items >= 0) st->items = items;
}

void rb_gb_skip_with_error(rb_gb_state *st, const char *message) {
    if (!st->st->error_occurred()) st->st->SkipWithError(message);
}

int rb_gb_thread_index(const rb_gb_state *st) {
    return st->st->thread_index();
}
int64_t rb_gb_iterations(const rb_gb_state *st) {
    return (int64_t) st->st->iterations();
}

rb_gb_stats rb_gb_stats_of(const double *values, size_t n) {
    rb_gb_stats s = {0, 0, 0, 0, 0};
    if (n == 0) return s;
    std::vector<double> v(values, values + n);
    std::sort(v.begin(), v.end());
    s.min = v.front();
    s.max = v.back();
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    double sum = 0;
    for (double x : v) sum += x;
    s.mean = sum / (double) n;
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stddev = n > 1 ? std::sqrt(ss / (double) (n - 1)) : 0.0;
    return s;
}

int rb_gb_filter_matches(const char *filter, const char *name) {
    try {
        Filter f;
        int rc = f.init(filter);
        return rc ? rc : (int) f.match(name);
    } catch (const std::exception &e) {
        return rb_error_set(RB_ELIB, "benchmark filter: %s", e.what());
    }
}

void rb_gb_context(rb_gb_report *out) {
    // The library says it was built without NDEBUG only in the text of its basic context
    // ("***WARNING*** Library was built as DEBUG"); the JSON reporter's library_build_type
    // comes from the same #ifdef.
    benchmark::BenchmarkReporter::Context ctx;
    std::ostringstream os;
    benchmark::BenchmarkReporter::PrintBasicContext(&os, ctx);
    out->library_debug = os.str().find("built as DEBUG") != std::string::npos;
#ifdef __OPTIMIZE__
    out->build_optimized = 1;
#else
    out->build_optimized = 0;
#endif
    switch (ctx.cpu_info.scaling) {
    case benchmark::CPUInfo::ENABLED:
        out->cpu_scaling = 1;
        break;
    case benchmark::CPUInfo::DISABLED:
        out->cpu_scaling = 0;
        break;
    default:
        out->cpu_scaling = -1;
        break;
    }
    out->num_cpus = ctx.cpu_info.num_cpus;
    out->cpu_mhz = ctx.cpu_info.cycles_per_second / 1e6;
}

int rb_gb_run(const rb_gb_bench *benches, size_t count, const char *filter, rb_gb_report *out) {
    *out = rb_gb_report{};
    if (count && !benches) return rb_error_set(RB_EINVAL, "rb_gb_run: benches is NULL");
    try {
        rb_gb_context(out);
        int rc = run_impl(benches, count, filter, out);
        if (rc) rb_gb_report_free(out);
        return rc;
    } catch (const std::bad_alloc &) {
        rb_gb_report_free(out);
        return rb_error_set(RB_ENOMEM, "benchmark run: out of memory");
    } catch (const std::exception &e) {
        rb_gb_report_free(out);
        return rb_error_set(RB_ELIB, "benchmark run: %s", e.what());
    }
}

void rb_gb_report_free(rb_gb_report *report) {
    if (!report) return;
    for (size_t i = 0; i < report->count; i++) {
        free(report->results[i].name);
        free(report->results[i].error);
        free(report->results[i].samples);
    }
    free(report->results);
    report->results = nullptr;
    report->count = 0;
}

} // extern "C"
