/* Shared by the x86 SIMD kernels: full unrolling of fixed-trip register loops, forced inlining,
 * the H_12 sign table. */
#ifndef RB_X86_SIMD_UTIL_H
#define RB_X86_SIMD_UTIL_H

#include "kernels/hadamard.h"

/* UBSan's instrumentation makes gcc drop the annotation with a warning (which has no -Wno-
 * switch, so -Werror fails), so sanitizer builds (RB_SANITIZE) go without it; the results are
 * the same either way. */
#ifdef RB_SANITIZE
#define RB_UNROLL(n)
#else
#define RB_PRAGMA_(x) _Pragma(#x)
#define RB_UNROLL(n)  RB_PRAGMA_(GCC unroll n)
#endif

/* Forced inlining for the register kernels, whose constant shape arguments must fold. */
#define RB_AI static inline __attribute__((always_inline))

/* H_12 (Paley I, the table of kernels/hadamard.c) as compile-time signs for the AVX-512 codec
 * kernels' mixes (rhtcodec_avx512.c, and hmix_avx512.h for rhtcodec_enc_avx512.c and
 * rhtcodec_dec_avx512.c): with the signs known a mix is register adds, subtracts and +-1 FMAs
 * with no sign table. Users check it against rb_hadamard_matrix(12) once per call and take their
 * generic mix if it ever differs. */
static const signed char rb_h12_paley[144] = {RB_H12_PALEY_SIGNS};

#endif
