/* Parameterizations of directions used by codecs: the octahedral map of S^2 onto the square
 * [-1, 1]^2 (OCTOPUS) and the recursive polar transform of a 2^L block (PolarQuant). */
#ifndef RB_SPHERE_MAPS_H
#define RB_SPHERE_MAPS_H

#include <stddef.h>

#include "kernels/dispatch.h"

/* Octahedral map (Cigolle et al., JCGT 2014): p = v / |v|_1; (xi, eta) = (p_x, p_y) when
 * p_z >= 0, else the lower half folded out: (sgn p_x (1 - |p_y|), sgn p_y (1 - |p_x|)) with
 * sgn 0 = +1. v = 0 maps to (0, 0) (the direction +z). The map is a bijection from S^2 onto the
 * square, not equal-area. */
void rb_octa_encode(const double v[3], double *xi, double *eta);
/* Inverse: z = 1 - |xi| - |eta|; when z < 0 the same fold gives (x, y); out = unit vector. */
void rb_octa_decode(double xi, double eta, double out[3]);

/* Recursive polar transform of blocks of B = 2^levels coordinates (levels 1..10), in double:
 *   level 1: pairs (x_2i, x_2i+1) -> r_i = |pair|, theta_i = atan2(x_2i+1, x_2i) in [0, 2 pi);
 *   level l >= 2: pairs of level l-1 radii (r_2i, r_2i+1) -> |pair| and
 *                 psi_i = atan2(r_2i+1, r_2i) in [0, pi/2];
 *   the block's radius is the last level's |pair| (= the block's Euclidean norm).
 * x is nblocks x B contiguous; angles is nblocks x (B - 1): per block the B/2 level-1 angles, then
 * B/4 level-2 angles, ..., then the single level-L angle; radius has nblocks entries. A zero pair
 * gives angle 0. For a Gaussian (or rotation-invariant) block the angles are independent, theta
 * uniform and psi at level l has density proportional to sin(2 psi)^(2^(l-1) - 1). */
/* Both name themselves in the kernel trace ("polar_forward_f64=ref", "polar_inverse_f64=ref"). */
extern const rb_op rb_op_polar_forward_f64;
extern const rb_op rb_op_polar_inverse_f64;
void rb_polar_forward(const double *x, size_t nblocks, int levels, double *radius, double *angles);
/* Inverse: x from (radius, angles) in the same layout; scratch of B doubles. */
void rb_polar_inverse(const double *radius, const double *angles, size_t nblocks, int levels,
                      double *x, double *scratch);

#endif
