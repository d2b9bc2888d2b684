/* The device side of cuda_kv_int4::quotient_is_the_division (tests/cuda_kv_quotient.cu), built
 * and linked only when nvcc is (RB_HAVE_CUDA). */
#ifndef RB_TEST_CUDA_KV_QUOTIENT_H
#define RB_TEST_CUDA_KV_QUOTIENT_H

#include <stdint.h>

/* Kinds of random (v, scale) pair; the .cu file says what each draws. */
enum { RBT_KVQ_ANY, RBT_KVQ_ROW, RBT_KVQ_RANGE, RBT_KVQ_KINDS };

/* Runs n pairs of one kind from seed on the current device; count[0] pairs in the fast domain,
 * count[1] quotients and count[2] codes that differ from the division's. Returns a
 * cudaError_t (0: success). */
int rbt_cu_kv_quotient_check(uint64_t seed, uint64_t n, int kind, unsigned long long count[3]);

#endif
