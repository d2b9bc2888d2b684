/* CUDA plumbing against the CPU: buffers and copies, dtype conversion, Philox streams, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "tests/cuda_util.h"
#include "tests/testutil.h"

Test(cuda_device, ops_table_is_complete_or_cleanly_absent) {
    const rb_cuda_ops *cu = NULL;
    int rc = rb_cuda_ops_get(&cu);
    if (rc) {
        cr_assert_null(cu);
        cr_assert(rc == RB_ENODEV || rc == RB_ECUDA, "rc = %d", rc);
        cr_assert_neq(rb_error_detail()[0], '\0');
        cr_skip_test("no CUDA device, GPU test skipped: %s", rb_error_detail());
    }
    /* Every slot must be filled: a NULL would crash a caller instead of returning an error. */
    const void *const *slot = (const void *const *) cu;
    for (size_t i = 0; i < sizeof *cu / sizeof(void *); i++)
        cr_assert_not_null(slot[i], "rb_cuda_ops slot %zu is NULL", i);
}

Test(cuda_device, copies_round_trip_on_streams) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    size_t n = 1000003;
    float *x = rbt_normal_f32(n, seed, 1);
    void *s = NULL;
    RBT_CU_OK(cu->stream_create(&s));
    float *a = rbt_cu_alloc(cu, n * 4), *b = rbt_cu_alloc(cu, n * 4);
    RBT_CU_OK(cu->memcpy_h2d(a, x, n * 4, s));
    RBT_CU_OK(cu->memcpy_d2d(b, a, n * 4, s));
    RBT_CU_OK(cu->stream_sync(s));
    float *y = rbt_cu_download(cu, b, n * 4);
    cr_assert(!memcmp(x, y, n * 4), "seed %llu", (unsigned long long) seed);
    RBT_CU_OK(cu->stream_destroy(s));
    rbt_cu_free(cu, a);
    rbt_cu_free(cu, b);
    free(x);
    free(y);
}

Test(cuda_device, convert_rounds_like_the_cpu) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    size_t n = 4099;
    float *x = rbt_normal_f32(n, seed, 2);
    for (size_t i = 0; i < n; i += 7) x[i] *= 1e4f;   /* exercise fp16 overflow and large bf16 */
    for (size_t i = 3; i < n; i += 11) x[i] *= 1e-6f; /* and fp16 subnormals */
    float *dx = rbt_cu_upload(cu, x, n * 4);
    void *h = rbt_cu_alloc(cu, n * 2), *back = rbt_cu_alloc(cu, n * 4);
    for (int t = RB_DT_F16; t <= RB_DT_BF16; t++) {
        RBT_CU_OK(cu->convert(dx, RB_DT_F32, h, (rb_dtype) t, n, NULL));
        RBT_CU_OK(cu->convert(h, (rb_dtype) t, back, RB_DT_F32, n, NULL));
        float *y = rbt_cu_download(cu, back, n * 4);
        for (size_t i = 0; i < n; i++) {
            float want = t == RB_DT_F16 ? rb_f16_round(x[i]) : rb_bf16_round(x[i]);
            cr_assert(memcmp(&want, &y[i], 4) == 0, "%s: x[%zu] = %a gives %a, want %a (seed %llu)",
                      rb_dtype_name((rb_dtype) t), i, x[i], y[i], want, (unsigned long long) seed);
        }
        free(y);
    }
    RBT_CU_FREE(cu, dx, h, back);
    free(x);
}

Test(cuda_device, philox_streams_equal_the_cpu) {
    RBT_CUDA_OPS(cu);
    uint64_t seed = rbt_seed();
    /* Offsets and lengths that start and end inside a Philox block and a 128-sign block. */
    static const size_t offs[] = {0, 1, 127, 128, 1000001};
    static const size_t lens[] = {1, 3, 129, 4096, 70001};
    for (size_t k = 0; k < 5; k++) {
        size_t n = lens[k];
        float *want = malloc(n * 4), *d = rbt_cu_alloc(cu, n * 4);
        uint32_t *wbits = malloc(n * 4), *db = rbt_cu_alloc(cu, n * 4);
        rb_rng_rademacher_f32(seed, RB_STREAM_RHT_D1, offs[k], n, want);
        rb_rng_bits(seed, 77, offs[k], n, wbits);
        RBT_CU_OK(cu->rng_rademacher_f32(seed, RB_STREAM_RHT_D1, offs[k], n, d, NULL));
        RBT_CU_OK(cu->rng_bits(seed, 77, offs[k], n, db, NULL));
        float *got = rbt_cu_download(cu, d, n * 4);
        uint32_t *gbits = rbt_cu_download(cu, db, n * 4);
        cr_assert(!memcmp(want, got, n * 4), "signs differ: offset %zu n %zu seed %llu", offs[k], n,
                  (unsigned long long) seed);
        cr_assert(!memcmp(wbits, gbits, n * 4), "bits differ: offset %zu n %zu seed %llu", offs[k],
                  n, (unsigned long long) seed);
        RBT_FREE(want, wbits, got, gbits);
        rbt_cu_free(cu, d);
        rbt_cu_free(cu, db);
    }
}

Test(cuda_device, errors_are_statuses_not_aborts) {
    RBT_CUDA_OPS(cu);
    void *p = (void *) 1;
    /* Far more memory than any card has: a clean RB_ENOMEM, and the context stays usable. */
    int rc = cu->malloc(&p, (size_t) 1 << 50);
    cr_assert_eq(rc, RB_ENOMEM, "rc = %d (%s)", rc, rb_error_detail());
    cr_assert_null(p);
    float *ok = rbt_cu_alloc(cu, 64);
    rbt_cu_free(cu, ok);
}

Test(cuda_device, copy_bandwidth_is_measured) {
    RBT_CUDA_OPS(cu);
    double bw = 0;
    RBT_CU_OK(rb_cuda_copy_bandwidth((size_t) 64 << 20, 5, &bw));
    /* Any CUDA GPU copies faster than 10 GB/s and slower than 100 TB/s; outside that the
     * measurement is broken (e.g. events not waited for). */
    cr_assert(bw > 1e10 && bw < 1e14, "copy bandwidth %g B/s", bw);
    cr_log_info("device-to-device copy: %.0f GB/s (read + write)", bw / 1e9);
}
