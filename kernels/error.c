/* Names, messages and the per-thread detail text for the RB_ERRORS list. */
#include "kernels/error.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char detail[1024];

const char *rb_errname(int code) {
    switch (code) {
#define RB_ERROR_NAME_(name, value, msg) \
    case value:                          \
        return "RB_" #name;
        RB_ERRORS(RB_ERROR_NAME_)
#undef RB_ERROR_NAME_
    }
    return "RB_E?";
}

const char *rb_strerror(int code) {
    switch (code) {
#define RB_ERROR_MSG_(name, value, msg) \
    case value:                         \
        return msg;
        RB_ERRORS(RB_ERROR_MSG_)
#undef RB_ERROR_MSG_
    }
    return "unknown error";
}

/* Formats into a temporary first: callers often wrap the previous message,
 * rb_error_set(rc, "cell %s: %s", key, rb_error_detail()), and the arguments then point into the
 * buffer being written. */
int rb_error_set(int code, const char *fmt, ...) {
    char tmp[sizeof detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(detail, tmp, sizeof detail);
    return code;
}

const char *rb_error_detail(void) {
    return detail;
}

void rb_error_clear(void) {
    detail[0] = '\0';
}
