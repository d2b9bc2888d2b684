/* Element types of the files the loaders read (.npy, .safetensors), and their conversion. */
#ifndef RB_ELEM_H
#define RB_ELEM_H

#include <stddef.h>

typedef enum rb_elem { RB_ELEM_F32, RB_ELEM_F64, RB_ELEM_F16, RB_ELEM_BF16 } rb_elem;

size_t rb_elem_size(rb_elem t);
/* One little-endian element at p as a double (exact for every type: f16 subnormals, Inf, NaN). */
double rb_elem_load(const unsigned char *p, rb_elem t);

#endif
