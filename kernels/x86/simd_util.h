/* Macros shared by the x86 SIMD kernels: full unrolling of fixed-trip register loops. */
#ifndef RB_X86_SIMD_UTIL_H
#define RB_X86_SIMD_UTIL_H

/* UBSan's instrumentation makes gcc drop the annotation with a warning (which has no -Wno-
 * switch, so -Werror fails), so sanitizer builds (RB_SANITIZE) go without it; the results are
 * the same either way. */
#ifdef RB_SANITIZE
#define RB_UNROLL(n)
#else
#define RB_PRAGMA_(x) _Pragma(#x)
#define RB_UNROLL(n)  RB_PRAGMA_(GCC unroll n)
#endif

#endif
