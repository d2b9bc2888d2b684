/* Little-endian float32/float64/float16/bfloat16 elements to double. */
#include "datasets/elem.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "elem.c reads little-endian data by memcpy and assumes a little-endian host"
#endif

size_t rb_elem_size(rb_elem t) {
    static const size_t size[] = {4, 8, 2, 2};
    return size[t];
}

static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m | 0x400, e - 25);
    return (h & 0x8000) ? -v : v;
}

double rb_elem_load(const unsigned char *p, rb_elem t) {
    switch (t) {
    case RB_ELEM_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case RB_ELEM_F64: {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    case RB_ELEM_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return half_to_double(h);
    }
    case RB_ELEM_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        uint32_t u = (uint32_t) h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    }
    return NAN;
}
