/* The MXFP4 / NVFP4 block drivers shared by the AVX2 and AVX-512 variants: included at the end
 * of kernels/x86/fpformats_<isa>.c after its chunk functions (amax_bits, mx_chunk,
 * mx_dequant_chunk, nv_chunk, nv_dequant_chunk) and CHUNK, with RB_FP_ISA(name) naming the
 * variant (name##avx2). A variant hands any non-finite input or NaN scale to the reference, so
 * errors and partial writes are exactly the reference's. */

int RB_FP_ISA(rb_mxfp4_quant_f32_)(const float *x, size_t n, rb_mx_rule rule, uint8_t *packed,
                                   uint8_t *scales, float *y) {
    /* All of x is checked before anything is written (y may be x). */
    if ((rule != RB_MX_FLOOR && rule != RB_MX_CEIL) || amax_bits(x, n) >= 0x7F800000u)
        return rb_mxfp4_quant_f32_ref(x, n, rule, packed, scales, y);
    size_t nfull = n / RB_MXFP4_BLOCK;
    for (size_t b = 0; b < nfull; b += CHUNK) {
        size_t nb = nfull - b < CHUNK ? nfull - b : CHUNK;
        mx_chunk(x + 32 * b, nb, rule, packed ? packed + 16 * b : NULL, scales ? scales + b : NULL,
                 y ? y + 32 * b : NULL);
    }
    size_t rem = n - 32 * nfull;
    if (rem) { /* the short last block, zero-padded: zeros change neither amax nor codes */
        float xb[32] = {0}, yb[32];
        uint8_t pb[16], sb[1];
        memcpy(xb, x + 32 * nfull, rem * sizeof *x);
        mx_chunk(xb, 1, rule, pb, sb, yb);
        if (scales) scales[nfull] = sb[0];
        if (packed) memcpy(packed + 16 * nfull, pb, (rem + 1) / 2);
        if (y) memcpy(y + 32 * nfull, yb, rem * sizeof *y);
    }
    return RB_OK;
}

int RB_FP_ISA(rb_mxfp4_dequant_f32_)(const uint8_t *packed, const uint8_t *scales, size_t n,
                                     float *y) {
    size_t nblocks = (n + RB_MXFP4_BLOCK - 1) / RB_MXFP4_BLOCK;
    for (size_t b = 0; b < nblocks; b++)
        if (scales[b] == 0xFF) return rb_mxfp4_dequant_f32_ref(packed, scales, n, y);
    size_t nfull = n / RB_MXFP4_BLOCK;
    for (size_t b = 0; b < nfull; b += CHUNK)
        mx_dequant_chunk(packed + 16 * b, scales + b, nfull - b < CHUNK ? nfull - b : CHUNK,
                         y + 32 * b);
    size_t rem = n - 32 * nfull;
    if (rem) {
        uint8_t pb[16] = {0};
        float yb[32];
        memcpy(pb, packed + 16 * nfull, (rem + 1) / 2);
        mx_dequant_chunk(pb, scales + nfull, 1, yb);
        memcpy(y + 32 * nfull, yb, rem * sizeof *y);
    }
    return RB_OK;
}

int RB_FP_ISA(rb_nvfp4_quant_f32_)(const float *x, size_t n, uint8_t *packed, uint8_t *scales,
                                   float *tensor_scale, float *y) {
    uint32_t at = amax_bits(x, n); /* the tensor amax, and the NaN/Inf check before any write */
    if (at >= 0x7F800000u) return rb_nvfp4_quant_f32_ref(x, n, packed, scales, tensor_scale, y);
    float amax_t;
    memcpy(&amax_t, &at, sizeof amax_t);
    float s_enc = rb_nvfp4_tensor_scale(amax_t);
    if (tensor_scale) *tensor_scale = s_enc;
    size_t nfull = n / RB_NVFP4_BLOCK;
    for (size_t b = 0; b < nfull; b += CHUNK) {
        size_t nb = nfull - b < CHUNK ? nfull - b : CHUNK;
        nv_chunk(x + 16 * b, nb, s_enc, packed ? packed + 8 * b : NULL, scales ? scales + b : NULL,
                 y ? y + 16 * b : NULL);
    }
    size_t rem = n - 16 * nfull;
    if (rem) {
        float xb[16] = {0}, yb[16];
        uint8_t pb[8], sb[1];
        memcpy(xb, x + 16 * nfull, rem * sizeof *x);
        nv_chunk(xb, 1, s_enc, pb, sb, yb);
        if (scales) scales[nfull] = sb[0];
        if (packed) memcpy(packed + 8 * nfull, pb, (rem + 1) / 2);
        if (y) memcpy(y + 16 * nfull, yb, rem * sizeof *y);
    }
    return RB_OK;
}

int RB_FP_ISA(rb_nvfp4_dequant_f32_)(const uint8_t *packed, const uint8_t *scales,
                                     float tensor_scale, size_t n, float *y) {
    size_t nblocks = (n + RB_NVFP4_BLOCK - 1) / RB_NVFP4_BLOCK;
    for (size_t b = 0; b < nblocks; b++)
        if ((scales[b] & 0x7F) == 0x7F)
            return rb_nvfp4_dequant_f32_ref(packed, scales, tensor_scale, n, y);
    size_t nfull = n / RB_NVFP4_BLOCK;
    for (size_t b = 0; b < nfull; b += CHUNK)
        nv_dequant_chunk(packed + 8 * b, scales + b, tensor_scale,
                         nfull - b < CHUNK ? nfull - b : CHUNK, y + 16 * b);
    size_t rem = n - 16 * nfull;
    if (rem) {
        uint8_t pb[8] = {0};
        float yb[16];
        memcpy(pb, packed + 8 * nfull, (rem + 1) / 2);
        nv_dequant_chunk(pb, scales + nfull, tensor_scale, 1, yb);
        memcpy(y + 16 * nfull, yb, rem * sizeof *y);
    }
    return RB_OK;
}
