/* Run-time kernel dispatch: CPU features, variant tables (reference last), RB_KERNELS, and the
 * record of which variant ran. Modelled on BLIS's context tables. */
#ifndef RB_DISPATCH_H
#define RB_DISPATCH_H

#include <stddef.h>

#include "kernels/error.h"

/* Instruction-set bits a variant may require. AVX2 implies FMA; AVX512 means F+BW+DQ+VL
 * (and BMI2). */
enum rb_isa {
    RB_ISA_AVX2 = 1u << 0,
    RB_ISA_AVX512 = 1u << 1,
    /* Not an instruction set: the variant runs on the CUDA backend (kernels/cuda_offload.h) and
     * is enabled only while that backend is the current one (rb_backend_use), whatever the CPU
     * selection (RB_KERNELS=ref included): choosing the backend chooses where the op runs. */
    RB_ISA_CUDA = 1u << 2,
};

unsigned rb_cpu_isa(void);     /* what cpuid reports on this machine */
unsigned rb_kernels_isa(void); /* what dispatch may use: cpuid capped by the selection */

/* Selection: "auto" (default: best the CPU has), "avx512", "avx2", "scalar" (portable C variants,
 * no SIMD) or "ref" (reference variants only). Read from RB_KERNELS at first use; this call
 * overrides it (the harness's config key and the tests use it). Returns RB_EINVAL for an
 * unknown name. */
int rb_kernels_select(const char *spec);
const char *rb_kernels_selection(void);
/* The valid selections, as "auto, avx512, avx2, scalar, ref" (for messages and --help). */
#define RB_KERNELS_NAMES "auto, avx512, avx2, scalar, ref"
/* RB_KERNELS unset, empty or one of the selections: RB_OK; otherwise RB_EINVAL with a message
 * listing the valid values. A library user with a bad value gets a warning and "auto" at first
 * use; the commands that time or record kernels (bench, run) call this and refuse it instead,
 * so that a typo (RB_KERNELS=AVX2) never measures a selection nobody asked for. */
int rb_kernels_env_check(void);

typedef void (*rb_fnptr)(void);

/* One implementation of an op. fn is cast back to the op's own function type by its dispatcher.
 * A variant returns RB_EDECLINE for arguments it does not handle; the next one is tried. */
typedef struct rb_variant {
    const char *name; /* "ref", "avx2", "avx512", "avx512_blocked", ... */
    unsigned isa;     /* RB_ISA_* bits it needs; 0 for portable C */
    rb_fnptr fn;
} rb_variant;

/* An op: its variants, best first, with the reference ("ref", never declines) last. */
typedef struct rb_op {
    const char *name;
    const rb_variant *variants;
    size_t count;
} rb_op;

#define RB_OP_DEFINE(sym, opname, ...)                         \
    static const rb_variant sym##_variants_[] = {__VA_ARGS__}; \
    const rb_op sym = {opname, sym##_variants_, sizeof sym##_variants_ / sizeof sym##_variants_[0]}

#define RB_VARIANT(name, isa, fn) \
    { (name), (isa), (rb_fnptr) (fn) }

/* Whether dispatch may call v now (its ISA is present and allowed by the selection). Tests use
 * this to run every variant the machine supports against the reference. */
int rb_variant_enabled(const rb_variant *v);

/* Records that variant v of op ran on this thread (dispatchers call it). */
void rb_kernel_note(const rb_op *op, const rb_variant *v);
/* Work with one implementation and no dispatch (a library call such as OpenBLAS's sgemm, a
 * plain-C loop that no variant replaces) names itself in the trace all the same, so that a
 * record lists every kernel that did its work: RB_OP_SINGLE defines such an op with the name of
 * its one implementation ("openblas", "ref" for plain C), and the function doing the work calls
 * rb_kernel_note_single. These ops are not in rb_ops_all: there is nothing to select or bench. */
#define RB_OP_SINGLE(sym, opname, implname) RB_OP_DEFINE(sym, opname, RB_VARIANT(implname, 0, NULL))
void rb_kernel_note_single(const rb_op *op);
/* The variant of op that last ran on this thread, or NULL. */
const char *rb_kernel_last(const rb_op *op);
/* Forget / list (as "op=variant,op=variant") the variants that ran on this thread since the last
 * reset; the harness records this string with every result row. */
void rb_kernel_trace_reset(void);
size_t rb_kernel_trace(char *buf, size_t size);

/* For the thread pool: the trace notes of this thread go to (current), and sending this thread's
 * notes to another thread's trace while it runs that thread's job (redirect; NULL restores its
 * own). Returns the previous redirection. */
typedef struct rb_trace rb_trace;
rb_trace *rb_kernel_trace_current(void);
rb_trace *rb_kernel_trace_redirect(rb_trace *to);
/* The owner of t marks it shared (+1) for the duration of a job whose workers write to it (-1
 * after), so that its own notes take the lock meanwhile. */
void rb_kernel_trace_share(rb_trace *t, int delta);

/* Tries the enabled variants of op in order with the argument list args; the first that does not
 * decline is recorded and its status returned. Use as the whole body of a dispatcher. */
#define RB_DISPATCH(op, fntype, args)                                             \
    do {                                                                          \
        for (size_t i_ = 0; i_ < (op).count; i_++) {                              \
            const rb_variant *v_ = &(op).variants[i_];                            \
            if (!rb_variant_enabled(v_)) continue;                                \
            int rc_ = ((fntype) v_->fn) args;                                     \
            if (rc_ != RB_EDECLINE) {                                             \
                rb_kernel_note(&(op), v_);                                        \
                return rc_;                                                       \
            }                                                                     \
        }                                                                         \
        return rb_error_set(RB_ENOTSUP, "%s: every variant declined", (op).name); \
    } while (0)

/* Work and minimum memory traffic of one call, for GFLOP/s, GB/s and fractions of the limit.
 * flops counts the arithmetic of the op's definition, one per add, subtract or multiply (an FMA
 * is 2): a Walsh-Hadamard transform of n = K 2^m its n m butterfly adds and n K adds of the K-point
 * mix, an RHT also its n sign multiplies, a quantizer its scale, round and clamp. A transform's
 * normalization (1/sqrt(n), one multiply an element that kernels fold into a butterfly or skip)
 * is counted in none, so that fwht, hadamard and rht of one size report comparable GFLOP/s. */
typedef struct rb_cost {
    double flops;
    double bytes;
} rb_cost;

/* Every op the kernel layer registers (for `rotabench list kernels`, `hw` and the benchmarks). */
const rb_op *const *rb_ops_all(size_t *count);

#endif
