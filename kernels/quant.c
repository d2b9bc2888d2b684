/* Integer quantizers: argument checks, the reference kernels, bit packing and the dispatch table.
 */
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

#include "kernels/cuda_offload.h"
#include "kernels/half.h"
#include "kernels/quant_variants.h"
#include "kernels/rng.h"
#include "kernels/rowcodec.h"

int rb_quant_spec_check(const rb_quant_spec *spec) {
    if (!spec) return rb_error_set(RB_EINVAL, "quant: spec is NULL");
    if (spec->bits < 1 || spec->bits > 8)
        return rb_error_set(RB_EINVAL, "quant: bits = %d is outside 1..8", spec->bits);
    if (!spec->asym && spec->bits == 1)
        return rb_error_set(RB_EINVAL, "quant: symmetric 1-bit has maxq = 2^0 - 1 = 0 and no "
                                       "scale; use asymmetric 1-bit or a codebook");
    if ((unsigned) spec->gran > RB_QUANT_PER_GROUP)
        return rb_error_set(RB_EINVAL, "quant: unknown granularity %d", (int) spec->gran);
    if (spec->gran == RB_QUANT_PER_GROUP && spec->group == 0)
        return rb_error_set(RB_EINVAL, "quant: per-group granularity needs group >= 1");
    if (!(spec->clip >= 0) || isinf(spec->clip))
        return rb_error_set(RB_EINVAL, "quant: clip = %g must be finite and > 0 (0 means 1)",
                            (double) spec->clip);
    if (!(spec->range_min >= 0) || isinf(spec->range_min))
        return rb_error_set(RB_EINVAL, "quant: range_min = %g must be finite and >= 0",
                            (double) spec->range_min);
    if ((unsigned) spec->round > RB_ROUND_STOCHASTIC)
        return rb_error_set(RB_EINVAL, "quant: unknown rounding %d", (int) spec->round);
    if (spec->side_f16 != 0 && spec->side_f16 != 1)
        return rb_error_set(RB_EINVAL, "quant: side_f16 = %d must be 0 or 1", spec->side_f16);
    return RB_OK;
}

size_t rb_quant_nparams(const rb_quant_spec *spec, size_t rows, size_t cols) {
    switch (spec->gran) {
    case RB_QUANT_PER_TENSOR:
        return 1;
    case RB_QUANT_PER_ROW:
        return rows;
    case RB_QUANT_PER_COL:
        return cols;
    case RB_QUANT_PER_GROUP:
        return spec->group ? rows * ((cols + spec->group - 1) / spec->group) : 0;
    }
    return 0;
}

int rb_quant_params(const rb_quant_spec *spec, float mn, float mx, float *scale, float *zero) {
    if (spec->zero_in_range) {
        if (mn > 0) mn = 0;
        if (mx < 0) mx = 0;
    }
    float clip = spec->clip == 0 ? 1.0f : spec->clip;
    mn *= clip;
    mx *= clip;
    float s, z = 0;
    if (!spec->asym) {
        float maxq = (float) ((1 << (spec->bits - 1)) - 1);
        float a = -mn > mx ? -mn : mx;
        if (spec->range_min > a) a = spec->range_min;
        s = a / maxq;
        if (!(s > 0)) s = 1; /* all-zero group */
    } else {
        float maxq = (float) ((1 << spec->bits) - 1);
        float w = mx - mn;
        if (spec->range_min > w) w = spec->range_min;
        s = w / maxq;
        if (!(s > 0)) { /* constant group: widen so that it is representable */
            float m = fabsf(mn) > 1 ? fabsf(mn) : 1;
            mn -= m;
            mx += m;
            s = (mx - mn) / maxq;
        }
        /* + 0 turns a -0 zero point into +0, so that the sign of a zero min never shows. */
        z = rintf(-mn / s) + 0.0f;
    }
    if (isinf(s))
        return rb_error_set(RB_ENUMERIC, "quant: range [%g, %g] overflows the fp32 scale",
                            (double) mn, (double) mx);
    if (spec->side_f16) {
        if (fabsf(s) > RB_F16_MAX || fabsf(z) > RB_F16_MAX)
            return rb_error_set(RB_ENUMERIC,
                                "quant: %s %g is beyond the fp16 it is stored in (65504)",
                                fabsf(s) > RB_F16_MAX ? "scale" : "zero point (code units)",
                                (double) (fabsf(s) > RB_F16_MAX ? s : z));
        s = rb_f16_round(s);
        z = rb_f16_round(z);
    }
    *scale = s;
    *zero = z;
    return RB_OK;
}

static int check_finite(const char *who, const float *x, size_t rows, size_t cols, size_t ld) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            if (!isfinite(x[r * ld + c]))
                return rb_error_set(RB_ENUMERIC,
                                    "%s: element %zu (row %zu, column %zu) is %g; NaN and Inf "
                                    "cannot be quantized",
                                    who, r * cols + c, r, c, (double) x[r * ld + c]);
    return RB_OK;
}

/* The rectangle [r0, r1) x [c0, c1) of elements that share parameter p. */
static void param_rect(const rb_quant_spec *spec, size_t g, size_t p, size_t rows, size_t cols,
                       size_t rect[4]) {
    size_t ng = (cols + g - 1) / g;
    switch (spec->gran) {
    case RB_QUANT_PER_TENSOR:
        rect[0] = 0, rect[1] = rows, rect[2] = 0, rect[3] = cols;
        break;
    case RB_QUANT_PER_ROW:
        rect[0] = p, rect[1] = p + 1, rect[2] = 0, rect[3] = cols;
        break;
    case RB_QUANT_PER_COL:
        rect[0] = 0, rect[1] = rows, rect[2] = p, rect[3] = p + 1;
        break;
    case RB_QUANT_PER_GROUP:
        rect[0] = p / ng, rect[1] = p / ng + 1, rect[2] = (p % ng) * g;
        rect[3] = rect[2] + g < cols ? rect[2] + g : cols;
        break;
    }
}

static size_t param_index(const rb_quant_spec *spec, size_t g, size_t r, size_t c, size_t cols) {
    switch (spec->gran) {
    case RB_QUANT_PER_TENSOR:
        return 0;
    case RB_QUANT_PER_ROW:
        return r;
    case RB_QUANT_PER_COL:
        return c;
    case RB_QUANT_PER_GROUP:
        return r * ((cols + g - 1) / g) + c / g;
    }
    return 0;
}

/* One element: t = x / s, rounded, plus z, clamped. The order of these fp32 operations is the
 * definition every variant reproduces. s is positive except for an fp16-stored scale that
 * rounded to 0 (side_f16), whose group decodes to 0 whatever the code: code 0. */
static float code_of(float v, float s, float z, float lo, float hi, int stochastic, float u) {
    if (!(s > 0)) return 0.0f;
    float t = v / s, r;
    if (stochastic) {
        float f = floorf(t);
        r = f + (u < t - f ? 1.0f : 0.0f);
    } else {
        r = rintf(t);
    }
    float q = r + z;
    q = q < lo ? lo : q;
    q = q > hi ? hi : q;
    return q;
}

/* rb_quant_params's message with the place of parameter p put after its "quant: ":
 * "quant: row R, group G: ...", the rows and groups of this call. */
static int param_error(int rc, const rb_quant_spec *spec, size_t g, size_t p, size_t cols) {
    const char *d = rb_error_detail();
    if (strncmp(d, "quant: ", 7) == 0) d += 7;
    size_t ng = (cols + g - 1) / g;
    switch (spec->gran) {
    case RB_QUANT_PER_TENSOR:
        return rb_error_set(rc, "quant: tensor: %s", d);
    case RB_QUANT_PER_COL:
        return rb_error_set(rc, "quant: column %zu: %s", p, d);
    case RB_QUANT_PER_ROW:
    case RB_QUANT_PER_GROUP:
        break;
    }
    return rb_error_set(rc, "quant: row %zu, group %zu: %s", p / ng, p % ng, d);
}

/* Every granularity, every output mode, both roundings: first all parameters, then all elements
 * (so y may alias x). */
static int quant_generic(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                         size_t ld, void *out, size_t ldo, rb_quant_out mode, float *scales,
                         float *zeros) {
    int rc = check_finite("quant", x, rows, cols, ld);
    if (rc) return rc;
    if (rows == 0 || cols == 0) return RB_OK;
    size_t g = spec->gran == RB_QUANT_PER_GROUP ? spec->group : cols;
    size_t np = rb_quant_nparams(spec, rows, cols);
    for (size_t p = 0; p < np; p++) {
        size_t rect[4] = {0, 0, 0, 0};
        param_rect(spec, g, p, rows, cols, rect);
        float mn = INFINITY, mx = -INFINITY;
        for (size_t r = rect[0]; r < rect[1]; r++)
            for (size_t c = rect[2]; c < rect[3]; c++) {
                float v = x[r * ld + c];
                if (v < mn) mn = v;
                if (v > mx) mx = v;
            }
        float s, z;
        rc = rb_quant_params(spec, mn, mx, &s, &z);
        if (rc) return param_error(rc, spec, g, p, cols);
        scales[p] = s;
        if (zeros) zeros[p] = z;
    }
    float lo = spec->asym ? 0.0f : (float) -(1 << (spec->bits - 1));
    float hi = spec->asym ? (float) ((1 << spec->bits) - 1) : (float) ((1 << (spec->bits - 1)) - 1);
    int stochastic = spec->round == RB_ROUND_STOCHASTIC;
    enum { CHUNK = 64 };
    float u[CHUNK] = {0};
    for (size_t r = 0; r < rows; r++)
        for (size_t c0 = 0; c0 < cols; c0 += CHUNK) {
            size_t len = cols - c0 < CHUNK ? cols - c0 : CHUNK;
            if (stochastic) rb_rng_uniform_f32(spec->seed, spec->stream, r * cols + c0, len, u);
            for (size_t i = 0; i < len; i++) {
                size_t c = c0 + i, p = param_index(spec, g, r, c, cols);
                float s = scales[p], z = spec->asym ? zeros[p] : 0.0f;
                float q = code_of(x[r * ld + c], s, z, lo, hi, stochastic, u[i]);
                if (mode == RB_QOUT_CODES) {
                    ((uint8_t *) out)[r * ldo + c] = (uint8_t) (int) q;
                } else if (mode == RB_QOUT_PACK4) {
                    uint8_t *b = (uint8_t *) out + r * ldo + c / 2;
                    uint8_t nib = (uint8_t) ((int) q & 0xF);
                    if (c % 2 == 0)
                        *b = nib;
                    else
                        *b |= (uint8_t) (nib << 4);
                } else {
                    ((float *) out)[r * ldo + c] = s * (q - z);
                }
            }
        }
    return RB_OK;
}

int rb_quant_rows_f32_ref(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                          size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                          float *scales, float *zeros) {
    rb_quant_spec s = *spec;
    s.gran = RB_QUANT_PER_GROUP;
    s.group = group;
    return quant_generic(&s, x, rows, cols, ld, out, ldo, mode, scales, zeros);
}

RB_OP_DEFINE(rb_op_quant_rows_f32, "quant_rows_f32",
             RB_CUDA_VARIANT(rb_quant_rows_f32_cuda)
                 RB_VARIANT("avx512", RB_ISA_AVX512, rb_quant_rows_f32_avx512),
             RB_VARIANT("avx2", RB_ISA_AVX2, rb_quant_rows_f32_avx2),
             RB_VARIANT("ref", 0, rb_quant_rows_f32_ref));

static int quant_rows_dispatch(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                               size_t ld, size_t group, void *out, size_t ldo, rb_quant_out mode,
                               float *scales, float *zeros) {
    RB_DISPATCH(rb_op_quant_rows_f32, rb_quant_rows_fn,
                (spec, x, rows, cols, ld, group, out, ldo, mode, scales, zeros));
}

static int check_call(const char *who, const rb_quant_spec *spec, const void *x, size_t rows,
                      size_t cols, size_t ld, const void *out, size_t ldo, size_t ldo_min,
                      const float *scales, const float *zeros) {
    int rc = rb_quant_spec_check(spec);
    if (rc) return rc;
    if (rows && cols && (!x || !out || !scales))
        return rb_error_set(RB_EINVAL, "%s: NULL input, output or scales", who);
    if (rows && cols && spec->asym && !zeros)
        return rb_error_set(RB_EINVAL, "%s: an asymmetric spec needs a zeros array", who);
    if (rows > 1 && ld < cols)
        return rb_error_set(RB_EINVAL, "%s: row stride %zu is shorter than cols = %zu", who, ld,
                            cols);
    if (rows > 1 && ldo < ldo_min)
        return rb_error_set(RB_EINVAL, "%s: output row stride %zu is shorter than %zu", who, ldo,
                            ldo_min);
    return RB_OK;
}

/* Row and group granularity with nearest-even rounding go through the dispatch table; the rest
 * (and stochastic rounding, which the fast variants decline) run the reference directly. */
static int quant_run(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols, size_t ld,
                     void *out, size_t ldo, rb_quant_out mode, float *scales, float *zeros) {
    if (rows == 0 || cols == 0) return RB_OK;
    if (spec->gran == RB_QUANT_PER_ROW || spec->gran == RB_QUANT_PER_GROUP) {
        size_t g = spec->gran == RB_QUANT_PER_ROW ? cols : spec->group;
        return quant_rows_dispatch(spec, x, rows, cols, ld, g, out, ldo, mode, scales, zeros);
    }
    return quant_generic(spec, x, rows, cols, ld, out, ldo, mode, scales, zeros);
}

int rb_quant_f32(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols, size_t ld,
                 uint8_t *codes, float *scales, float *zeros) {
    int rc = check_call("quant", spec, x, rows, cols, ld, codes, cols, cols, scales, zeros);
    if (rc) return rc;
    return quant_run(spec, x, rows, cols, ld, codes, cols, RB_QOUT_CODES, scales, zeros);
}

int rb_fake_quant_f32(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                      size_t ld, float *y, size_t ldy, float *scales, float *zeros) {
    int rc = check_call("fake_quant", spec, x, rows, cols, ld, y, ldy, cols, scales, zeros);
    if (rc) return rc;
    if ((const float *) x == y && ldy != ld && rows > 1)
        return rb_error_set(RB_EINVAL, "fake_quant: in place needs ldy == ld (%zu != %zu)", ldy,
                            ld);
    return quant_run(spec, x, rows, cols, ld, y, ldy, RB_QOUT_FAKE, scales, zeros);
}

int rb_quant_pack4_f32(const rb_quant_spec *spec, const float *x, size_t rows, size_t cols,
                       size_t ld, uint8_t *packed, size_t ldp, float *scales, float *zeros) {
    int rc = check_call("quant_pack4", spec, x, rows, cols, ld, packed, ldp, (cols + 1) / 2, scales,
                        zeros);
    if (rc) return rc;
    if (spec->bits > 4)
        return rb_error_set(RB_EINVAL, "quant_pack4: bits = %d does not fit a nibble", spec->bits);
    return quant_run(spec, x, rows, cols, ld, packed, ldp, RB_QOUT_PACK4, scales, zeros);
}

int rb_dequant_f32(const rb_quant_spec *spec, const uint8_t *codes, size_t rows, size_t cols,
                   const float *scales, const float *zeros, float *y, size_t ldy) {
    int rc = check_call("dequant", spec, codes, rows, cols, cols, y, ldy, cols, scales, zeros);
    if (rc) return rc;
    size_t g = spec->gran == RB_QUANT_PER_GROUP ? spec->group : cols;
    /* Row and group pairs: the dispatched op (the same arithmetic, and it names itself in the
     * trace). */
    if (spec->gran == RB_QUANT_PER_ROW || spec->gran == RB_QUANT_PER_GROUP) {
        rb_dequant_rows_f32(codes, rows, cols, g, spec->asym, scales, zeros, y, ldy);
        return RB_OK;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t p = param_index(spec, g, r, c, cols);
            uint8_t b = codes[r * cols + c];
            float q = spec->asym ? (float) b : (float) (int8_t) b;
            float z = spec->asym ? zeros[p] : 0.0f;
            y[r * ldy + c] = scales[p] * (q - z);
        }
    return RB_OK;
}

rb_cost rb_quant_cost(size_t rows, size_t cols, size_t nparams, double out_bytes) {
    double n = (double) rows * (double) cols;
    return (rb_cost){7.0 * n, n * (4.0 + out_bytes) + 8.0 * (double) nparams};
}

size_t rb_pack_bytes(size_t n, int bits) {
    return bits < 1 || bits > 8 ? 0 : (n * (size_t) bits + 7) / 8;
}

int rb_pack_bits(const uint8_t *codes, size_t n, int bits, uint8_t *out) {
    if (bits < 1 || bits > 8)
        return rb_error_set(RB_EINVAL, "pack: bits = %d is outside 1..8", bits);
    unsigned mask = (1u << bits) - 1;
    memset(out, 0, rb_pack_bytes(n, bits));
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * (size_t) bits, byte = bit / 8;
        unsigned sh = (unsigned) (bit % 8), v = codes[i] & mask;
        out[byte] |= (uint8_t) (v << sh);
        if (sh + (unsigned) bits > 8) out[byte + 1] |= (uint8_t) (v >> (8 - sh));
    }
    return RB_OK;
}

int rb_unpack_bits(const uint8_t *in, size_t n, int bits, uint8_t *codes) {
    if (bits < 1 || bits > 8)
        return rb_error_set(RB_EINVAL, "unpack: bits = %d is outside 1..8", bits);
    unsigned mask = (1u << bits) - 1;
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * (size_t) bits, byte = bit / 8;
        unsigned sh = (unsigned) (bit % 8), v = (unsigned) in[byte] >> sh;
        if (sh + (unsigned) bits > 8) v |= (unsigned) in[byte + 1] << (8 - sh);
        codes[i] = (uint8_t) (v & mask);
    }
    return RB_OK;
}

void rb_sign_extend(uint8_t *codes, size_t n, int bits) {
    if (bits < 1 || bits >= 8) return;
    unsigned sign = 1u << (bits - 1), ext = ~((1u << bits) - 1);
    for (size_t i = 0; i < n; i++)
        if (codes[i] & sign) codes[i] = (uint8_t) (codes[i] | ext);
}
