/* CPU feature detection, the RB_KERNELS selection and the per-thread record of variants that ran.
 */
#include "kernels/dispatch.h"

#include "kernels/backend.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

enum sel { SEL_AUTO, SEL_AVX512, SEL_AVX2, SEL_SCALAR, SEL_REF };
static const char *const sel_names[] = {"auto", "avx512", "avx2", "scalar", "ref"};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static unsigned cpu_isa;
static enum sel selection = SEL_AUTO;

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t) hi << 32) | lo;
}

/* cpuid says what the core implements; xgetbv says whether the OS saves the wider registers. */
static unsigned detect_isa(void) {
    unsigned a, b, c, d, isa = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    /* F, DQ, BW, VL, and BMI2 (every AVX-512 core has it; the *_avx512.c files use pdep). */
    int avx512 =
        ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && ((b >> 8) & 1);
    if (avx2 && fma) isa |= RB_ISA_AVX2;
    if (avx512 && (isa & RB_ISA_AVX2) && (xcr0 & 0xe0) == 0xe0) isa |= RB_ISA_AVX512;
    return isa;
}

static int parse_sel(const char *s, enum sel *out) {
    for (size_t i = 0; i < sizeof sel_names / sizeof sel_names[0]; i++)
        if (strcmp(s, sel_names[i]) == 0) {
            *out = (enum sel) i;
            return 0;
        }
    return rb_error_set(RB_EINVAL, "unknown kernel selection '%s' (" RB_KERNELS_NAMES ")", s);
}

int rb_kernels_env_check(void) {
    const char *env = getenv("RB_KERNELS");
    enum sel s;
    if (!env || !*env || parse_sel(env, &s) == 0) return RB_OK;
    return rb_error_set(RB_EINVAL,
                        "RB_KERNELS=%s is not a kernel selection; valid values (lower case): "
                        "" RB_KERNELS_NAMES,
                        env);
}

static void init(void) {
    cpu_isa = detect_isa();
    const char *env = getenv("RB_KERNELS");
    if (env && *env && parse_sel(env, &selection) != 0) {
        fprintf(stderr, "rotabench: RB_KERNELS=%s is not one of " RB_KERNELS_NAMES "; using auto\n",
                env);
        selection = SEL_AUTO;
    }
}

unsigned rb_cpu_isa(void) {
    pthread_once(&init_once, init);
    return cpu_isa;
}

unsigned rb_kernels_isa(void) {
    pthread_once(&init_once, init);
    switch (selection) {
    case SEL_AUTO:
        return cpu_isa;
    case SEL_AVX512:
        return cpu_isa;
    case SEL_AVX2:
        return cpu_isa & RB_ISA_AVX2;
    default:
        return 0;
    }
}

int rb_kernels_select(const char *spec) {
    pthread_once(&init_once, init);
    enum sel s = SEL_AUTO;
    int rc = parse_sel(spec, &s);
    if (rc == 0) selection = s;
    return rc;
}

const char *rb_kernels_selection(void) {
    pthread_once(&init_once, init);
    return sel_names[selection];
}

int rb_variant_enabled(const rb_variant *v) {
    pthread_once(&init_once, init);
    if (v->isa & RB_ISA_CUDA) return rb_backend_current() == RB_BACKEND_CUDA;
    if (selection == SEL_REF) return strcmp(v->name, "ref") == 0;
    return (v->isa & ~rb_kernels_isa()) == 0;
}

/* The trace belongs to the thread that called into the kernel layer. Pool workers redirect their
 * notes to the trace of the thread whose job they run (rb_kernel_trace_redirect), so a record
 * never depends on which thread happened to run a chunk. A trace is locked only while it is
 * shared with workers (the owner marks that around each job): the common case, a dispatch on
 * the caller's own thread, costs no lock, which matters for 16-element transforms of 20 ns. */
enum { TRACE_MAX = 48 };
struct trace_entry {
    const rb_op *op;
    const rb_variant *v;
};
struct rb_trace {
    struct trace_entry e[TRACE_MAX];
    size_t len;
    int shared; /* jobs in flight whose workers may write here; changed by the owner only */
};
static _Thread_local struct rb_trace own_trace;
static _Thread_local struct rb_trace *redirect;
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;

static struct rb_trace *cur_trace(void) {
    return redirect ? redirect : &own_trace;
}

void rb_kernel_note(const rb_op *op, const rb_variant *v) {
    struct rb_trace *t = cur_trace();
    int lock = redirect || t->shared;
    if (lock) pthread_mutex_lock(&trace_mu);
    size_t i = 0;
    while (i < t->len && t->e[i].op != op) i++;
    if (i < t->len)
        t->e[i].v = v;
    else if (t->len < TRACE_MAX)
        t->e[t->len++] = (struct trace_entry){op, v};
    if (lock) pthread_mutex_unlock(&trace_mu);
}

void rb_kernel_note_single(const rb_op *op) {
    rb_kernel_note(op, &op->variants[0]);
}

const char *rb_kernel_last(const rb_op *op) {
    const char *name = NULL;
    pthread_mutex_lock(&trace_mu);
    struct rb_trace *t = cur_trace();
    for (size_t i = 0; i < t->len && !name; i++)
        if (t->e[i].op == op) name = t->e[i].v->name;
    pthread_mutex_unlock(&trace_mu);
    return name;
}

void rb_kernel_trace_reset(void) {
    pthread_mutex_lock(&trace_mu);
    cur_trace()->len = 0;
    pthread_mutex_unlock(&trace_mu);
}

size_t rb_kernel_trace(char *buf, size_t size) {
    size_t used = 0;
    if (size) buf[0] = '\0';
    pthread_mutex_lock(&trace_mu);
    struct rb_trace *t = cur_trace();
    for (size_t i = 0; i < t->len; i++) {
        int n = snprintf(used < size ? buf + used : NULL, used < size ? size - used : 0, "%s%s=%s",
                         i ? "," : "", t->e[i].op->name, t->e[i].v->name);
        if (n > 0) used += (size_t) n;
    }
    pthread_mutex_unlock(&trace_mu);
    return used;
}

rb_trace *rb_kernel_trace_current(void) {
    return cur_trace();
}

void rb_kernel_trace_share(rb_trace *t, int delta) {
    pthread_mutex_lock(&trace_mu);
    t->shared += delta;
    pthread_mutex_unlock(&trace_mu);
}

rb_trace *rb_kernel_trace_redirect(rb_trace *to) {
    rb_trace *old = redirect;
    redirect = to;
    return old;
}
