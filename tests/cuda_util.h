/* Helpers for the CUDA tests: the op table or a clean skip, device buffers that fail the test
 * instead of returning codes, and poisoning so that an unwritten output never passes. */
#ifndef RB_TEST_CUDA_UTIL_H
#define RB_TEST_CUDA_UTIL_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/kernels.h"

/* Declares `const rb_cuda_ops *var` and skips the test, with the reason, when this binary has no
 * CUDA or no device is visible. With RBT_CUDA_EMULATE=1 in the environment the GPU suites run
 * instead on a CPU stand-in (tests/cuda_emul.c: host memory, every op its CPU twin), which checks
 * the tests themselves on a machine without a GPU; it proves nothing about the CUDA kernels.
 * Run it on the area suites only, every cuda_ suite but cuda_device (whose bandwidth probe needs
 * the real device), e.g. with --filter and the pattern cuda_[!d]* for the suite.
 * RBT_CUDA_EMULATE=mut:<name> plants one known bug (list in tests/cuda_emul.c). */
#define RBT_CUDA_OPS(var)                                                            \
    const rb_cuda_ops *var = NULL;                                                   \
    do {                                                                             \
        if (rbt_cuda_emulated())                                                     \
            var = rbt_cuda_emul_ops();                                               \
        else if (rb_cuda_ops_get(&var))                                              \
            cr_skip_test("no CUDA device, GPU test skipped: %s", rb_error_detail()); \
    } while (0)

/* RBT_CUDA_EMULATE is set (and not "0"), and the CPU stand-in table. */
int rbt_cuda_emulated(void);
const rb_cuda_ops *rbt_cuda_emul_ops(void);

/* Fails the test (instead of crashing it) when an op's slot is still empty. */
#define RBT_NEED(cu, slot)                                                                  \
    do {                                                                                    \
        if (!(cu)->slot) cr_assert_fail("rb_cuda_ops." #slot " is NULL (not implemented)"); \
    } while (0)

/* Asserts that an rb status is RB_OK, printing the detail message. */
#define RBT_CU_OK(call)                                                                    \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        cr_assert_eq(rc_, RB_OK, "%s: %s: %s", #call, rb_errname(rc_), rb_error_detail()); \
    } while (0)

/* A device buffer of `bytes`, filled with 0xFF bytes (NaN as floats, 255 as codes). This, the
 * upload and the poisoning below synchronize the default stream before returning, so that an op
 * launched next on a created (non-blocking) stream sees their bytes. */
void *rbt_cu_alloc(const rb_cuda_ops *cu, size_t bytes);
/* A device copy of `bytes` of host memory. */
void *rbt_cu_upload(const rb_cuda_ops *cu, const void *host, size_t bytes);
/* A malloc'd host copy of `bytes` of device memory (synchronizes the default stream first and
 * checks for errors of earlier launches). */
void *rbt_cu_download(const rb_cuda_ops *cu, const void *dev, size_t bytes);
void rbt_cu_free(const rb_cuda_ops *cu, void *dev);
/* Frees a list of device (RBT_CU_FREE) or host (RBT_FREE) buffers; NULL entries are skipped,
 * so a list may hold buffers a test did not allocate. */
#define RBT_CU_FREE(cu, ...)                                                         \
    do {                                                                             \
        void *rbt_p_[] = {__VA_ARGS__};                                              \
        for (size_t rbt_i_ = 0; rbt_i_ < sizeof rbt_p_ / sizeof rbt_p_[0]; rbt_i_++) \
            rbt_cu_free((cu), rbt_p_[rbt_i_]);                                       \
    } while (0)
#define RBT_FREE(...)                                                                \
    do {                                                                             \
        void *rbt_p_[] = {__VA_ARGS__};                                              \
        for (size_t rbt_i_ = 0; rbt_i_ < sizeof rbt_p_ / sizeof rbt_p_[0]; rbt_i_++) \
            free(rbt_p_[rbt_i_]);                                                    \
    } while (0)
/* Refills `bytes` of device memory with 0xFF (an output that a call must overwrite). */
void rbt_cu_poison(const rb_cuda_ops *cu, void *dev, size_t bytes);

/* ---- dtypes on the host: f16 / bf16 storage as uint16_t bit patterns ---- */
/* x rounded to dtype t (RNE) and widened back to fp32: the value a device buffer of t holds. */
float rbt_dtype_round(float x, rb_dtype t);
/* Encodes n floats as dtype t into `out` (rb_dtype_size(t) * n bytes), rounding to nearest even. */
void rbt_encode_dtype(const float *x, size_t n, rb_dtype t, void *out);
/* Widens n elements of dtype t to fp32 (exact). */
void rbt_decode_dtype(const void *in, size_t n, rb_dtype t, float *out);
/* Device buffer holding x (n floats) as dtype t; `widened` (may be NULL) receives the exact
 * fp32 values the device holds. */
void *rbt_cu_upload_dtype(const rb_cuda_ops *cu, const float *x, size_t n, rb_dtype t,
                          float *widened);
/* Host fp32 copy (malloc'd) of n elements of dtype t on the device. */
float *rbt_cu_download_dtype(const rb_cuda_ops *cu, const void *dev, size_t n, rb_dtype t);

/* ---- comparisons ---- */
/* Index of the first element whose bits differ, or SIZE_MAX when all n are equal. */
size_t rbt_first_diff(const void *a, const void *b, size_t n, size_t elem_bytes);
/* Like rbt_first_diff on floats, but two NaNs (any payload) count as equal. */
size_t rbt_first_diff_f32_nan(const float *a, const float *b, size_t n);
/* ||a - b|| / ||b|| over n elements (0 when both are zero), in double. */
double rbt_normwise_relerr_f32(const float *a, const float *b, size_t n);

/* Asserts that n floats are bit-identical; on failure prints `what`, the first differing index
 * with both values and the seed. */
#define RBT_ASSERT_F32_BITS(got, want, n, seed, ...)                                    \
    do {                                                                                \
        size_t i_ = rbt_first_diff((got), (want), (n), 4);                              \
        if (i_ != (size_t) -1) {                                                        \
            char m_[512];                                                               \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                       \
            cr_assert_fail("%s: element %zu of %zu is %a, want %a (seed %llu)", m_, i_, \
                           (size_t) (n), (double) (got)[i_], (double) (want)[i_],       \
                           (unsigned long long) (seed));                                \
        }                                                                               \
    } while (0)
/* The same for byte arrays (codes, packed streams). */
#define RBT_ASSERT_U8_EQ(got, want, n, seed, ...)                                            \
    do {                                                                                     \
        size_t i_ = rbt_first_diff((got), (want), (n), 1);                                   \
        if (i_ != (size_t) -1) {                                                             \
            char m_[512];                                                                    \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                            \
            cr_assert_fail("%s: byte %zu of %zu is 0x%02x, want 0x%02x (seed %llu)", m_, i_, \
                           (size_t) (n), (unsigned) (got)[i_], (unsigned) (want)[i_],        \
                           (unsigned long long) (seed));                                     \
        }                                                                                    \
    } while (0)
/* And for uint16_t arrays (f16 / bf16 bit patterns). */
#define RBT_ASSERT_U16_EQ(got, want, n, seed, ...)                                              \
    do {                                                                                        \
        size_t i_ = rbt_first_diff((got), (want), (n), 2);                                      \
        if (i_ != (size_t) -1) {                                                                \
            char m_[512];                                                                       \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                               \
            cr_assert_fail("%s: element %zu of %zu is 0x%04x, want 0x%04x (seed %llu)", m_, i_, \
                           (size_t) (n), (unsigned) (got)[i_], (unsigned) (want)[i_],           \
                           (unsigned long long) (seed));                                        \
        }                                                                                       \
    } while (0)
/* The context must still work after an error: a small copy round trip. */
void rbt_cu_still_usable(const rb_cuda_ops *cu);

#endif
