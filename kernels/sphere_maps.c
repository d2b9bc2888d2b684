/* Octahedral map and recursive polar transform (see sphere_maps.h): plain C in double; codecs
 * call them once per triplet or block, so a reference is all they need. */
#include "kernels/sphere_maps.h"

#include <math.h>
#include <string.h>

static double sgn(double v) {
    return v < 0 ? -1.0 : 1.0; /* sgn 0 = +1, as the map requires */
}

void rb_octa_encode(const double v[3], double *xi, double *eta) {
    double l1 = fabs(v[0]) + fabs(v[1]) + fabs(v[2]);
    if (!(l1 > 0)) {
        *xi = *eta = 0;
        return;
    }
    double px = v[0] / l1, py = v[1] / l1, pz = v[2] / l1;
    if (pz >= 0) {
        *xi = px;
        *eta = py;
    } else {
        *xi = sgn(px) * (1 - fabs(py));
        *eta = sgn(py) * (1 - fabs(px));
    }
}

void rb_octa_decode(double xi, double eta, double out[3]) {
    double x = xi, y = eta, z = 1 - fabs(xi) - fabs(eta);
    if (z < 0) {
        x = sgn(xi) * (1 - fabs(eta));
        y = sgn(eta) * (1 - fabs(xi));
    }
    double n = sqrt(x * x + y * y + z * z); /* >= 1/sqrt(3) on the octahedron: never 0 */
    out[0] = x / n;
    out[1] = y / n;
    out[2] = z / n;
}

RB_OP_SINGLE(rb_op_polar_forward_f64, "polar_forward_f64", "ref");
RB_OP_SINGLE(rb_op_polar_inverse_f64, "polar_inverse_f64", "ref");

void rb_polar_forward(const double *x, size_t nblocks, int levels, double *radius, double *angles) {
    rb_kernel_note_single(&rb_op_polar_forward_f64);
    size_t B = (size_t) 1 << levels;
    for (size_t b = 0; b < nblocks; b++) {
        const double *xb = x + b * B;
        double *ab = angles + b * (B - 1);
        double r[1 << 9]; /* level radii, at most B/2 of them, overwritten level by level */
        size_t m = B / 2;
        for (size_t i = 0; i < m; i++) {
            double a = xb[2 * i], c = xb[2 * i + 1];
            double t = atan2(c, a);
            ab[i] = t < 0 ? t + 2 * M_PI : t;
            if (ab[i] >= 2 * M_PI) ab[i] = 0; /* atan2 of -0 pairs and rounding at 2 pi */
            r[i] = hypot(a, c);
        }
        ab += m;
        for (int l = 2; l <= levels; l++) {
            m /= 2;
            for (size_t i = 0; i < m; i++) {
                ab[i] = atan2(r[2 * i + 1], r[2 * i]);
                r[i] = hypot(r[2 * i], r[2 * i + 1]);
            }
            ab += m;
        }
        radius[b] = r[0];
    }
}

void rb_polar_inverse(const double *radius, const double *angles, size_t nblocks, int levels,
                      double *x, double *scratch) {
    rb_kernel_note_single(&rb_op_polar_inverse_f64);
    size_t B = (size_t) 1 << levels;
    for (size_t b = 0; b < nblocks; b++) {
        const double *ab = angles + b * (B - 1);
        double *r = scratch;
        r[0] = radius[b];
        /* Walk down from the top level: level l's angles start at offset B - 2^(L-l+1). */
        size_t m = 1;
        for (int l = levels; l >= 2; l--) {
            const double *al = ab + (B - 2 * m);
            for (size_t i = m; i-- > 0;) { /* backwards: r[i] is read before r[2i] overwrites */
                double ri = r[i];
                r[2 * i] = ri * cos(al[i]);
                r[2 * i + 1] = ri * sin(al[i]);
            }
            m *= 2;
        }
        double *xb = x + b * B;
        for (size_t i = 0; i < m; i++) {
            xb[2 * i] = r[i] * cos(ab[i]);
            xb[2 * i + 1] = r[i] * sin(ab[i]);
        }
    }
}
