/* The method registry: one line per method. */
#include <string.h>

#include "methods/method.h"

#define RB_METHODS(X)            \
    X(rb_method_rtn)             \
    X(rb_method_turboquant_mse)  \
    X(rb_method_turboquant_prod) \
    X(rb_method_eden)            \
    X(rb_method_drive)           \
    X(rb_method_qjl)             \
    X(rb_method_octopus)         \
    X(rb_method_polarquant)      \
    X(rb_method_rtn_kv)          \
    X(rb_method_saw_int4)        \
    X(rb_method_kivi)            \
    X(rb_method_rotatekv)        \
    X(rb_method_sparsefht)       \
    X(rb_method_spright)         \
    X(rb_method_fwht_full)

#define RB_METHOD_DECL_(sym) extern const rb_method sym;
RB_METHODS(RB_METHOD_DECL_)
#undef RB_METHOD_DECL_

static const rb_method *const methods[] = {
#define RB_METHOD_ENTRY_(sym) &sym,
    RB_METHODS(RB_METHOD_ENTRY_)
#undef RB_METHOD_ENTRY_
};

const rb_method *const *rb_methods_all(size_t *count) {
    *count = sizeof methods / sizeof methods[0];
    return methods;
}

const rb_method *rb_method_find(const char *name) {
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(methods[i]->name, name) == 0) return methods[i];
    return NULL;
}

const char *rb_family_name(rb_family f) {
    static const char *const names[] = {"codec", "layer", "adapter", "sparse"};
    return (unsigned) f < RB_FAMILY_COUNT ? names[f] : "?";
}
