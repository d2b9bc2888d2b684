/* Error codes for every layer: one X-macro list gives the enum, the names and the messages. */
#ifndef RB_ERROR_H
#define RB_ERROR_H

#include <stdio.h>
#include <stdlib.h>

/* X(name, value, message). Functions that can fail return 0 or one of these negative codes. */
#define RB_ERRORS(X)                                           \
    X(OK, 0, "success")                                        \
    X(EINVAL, -1, "invalid argument")                          \
    X(ENOMEM, -2, "out of memory")                             \
    X(ESIZE, -3, "unsupported size")                           \
    X(EIO, -4, "input/output error")                           \
    X(EFORMAT, -5, "malformed input file")                     \
    X(ENOTSUP, -6, "not supported")                            \
    X(ENUMERIC, -7, "NaN or Inf in input")                     \
    X(EDECLINE, -8, "kernel variant declines these arguments") \
    X(ECONFIG, -9, "invalid configuration")                    \
    X(ECUDA, -10, "CUDA error")                                \
    X(ENODEV, -11, "no such device")                           \
    X(EINTR, -12, "interrupted")                               \
    X(ENOCONV, -13, "iteration did not converge")              \
    X(ELIB, -14, "library call failed")

enum rb_error {
#define RB_ERROR_ENUM_(name, value, msg) RB_##name = value,
    RB_ERRORS(RB_ERROR_ENUM_)
#undef RB_ERROR_ENUM_
};

/* "RB_EINVAL" and "invalid argument" for a code; unknown codes get a generic text. */
const char *rb_errname(int code);
const char *rb_strerror(int code);

/* Records a detail message for this thread (printf-style) and returns code, so that a failing
 * function can `return rb_error_set(RB_ESIZE, "n = %zu is not ...", n);`. The arguments may
 * include rb_error_detail() itself, to add context to the message a callee set. */
int rb_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last detail message set on this thread ("" if none), and a way to clear it. */
const char *rb_error_detail(void);
void rb_error_clear(void);

/* Programmer errors (broken invariants, not bad input): print file:line and abort. */
#define RB_ASSERT(cond)                                                                  \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
