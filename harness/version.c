/* Build provenance baked in at compile time (git revision, dirty flag, compiler flags). */
#include "harness/harness.h"

#include <stdio.h>

#include "rb_version.h"

#define RB_VERSION "0.1.0"

const char *rb_git_sha(void) {
    return RB_GIT_SHA;
}
int rb_git_dirty(void) {
    return RB_GIT_DIRTY;
}

const char *rb_build_flags(void) {
    return RB_BUILD_FLAGS;
}

/* RB_CUDA_ARCH comes from the generated header when the Makefile provides it. */
const char *rb_cuda_arch(void) {
#ifdef RB_CUDA_ARCH
    return RB_CUDA_ARCH;
#else
    return "";
#endif
}

const char *rb_version_string(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "rotabench %s (git %s%s, %s, %s)", RB_VERSION, RB_GIT_SHA,
             RB_GIT_DIRTY ? "-dirty" : "", RB_BUILD_FLAGS, __VERSION__);
    return buf;
}
