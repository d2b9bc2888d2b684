/* The table of every op the kernel layer registers, for listing, hw reports and benchmarks. */
#include "kernels/kernels.h"
#include "kernels/peak.h"

/* One op per line; the comment names the file that defines it (and keeps clang-format from
 * packing the list). */
static const rb_op *const all_ops[] = {
    &rb_op_fwht_f32,                 /* fwht.c */
    &rb_op_hadamard_f32,             /* hadamard.c */
    &rb_op_quant_rows_f32,           /* quant.c */
    &rb_op_kv_int4_encode_f32,       /* kv_quant.c */
    &rb_op_kv_int4_decode_f32,       /* kv_quant.c */
    &rb_op_codebook_quant_f32,       /* codebook.c */
    &rb_op_mxfp4_quant_f32,          /* fpformats.c */
    &rb_op_mxfp4_dequant_f32,        /* fpformats.c */
    &rb_op_nvfp4_quant_f32,          /* fpformats.c */
    &rb_op_nvfp4_dequant_f32,        /* fpformats.c */
    &rb_op_pack_rows,                /* rowcodec.c */
    &rb_op_unpack_rows,              /* rowcodec.c */
    &rb_op_codebook_decode_rows_f32, /* rowcodec.c */
    &rb_op_rows_sqnorm_f32,          /* rowcodec.c */
    &rb_op_rows_dot_f32,             /* rowcodec.c */
    &rb_op_rows_scale_f64_f32,       /* rowcodec.c */
    &rb_op_rows_scale_f32,           /* rowcodec.c */
    &rb_op_rows_mul_f32,             /* rowcodec.c */
    &rb_op_dequant_rows_f32,         /* rowcodec.c */
    &rb_op_rhtcodec_encode_f32,      /* rhtcodec.c */
    &rb_op_rhtcodec_decode_f32,      /* rhtcodec.c */
    &rb_op_peak_add_f32,             /* peak.c: machine limits */
    &rb_op_copy_stream,              /* peak.c: machine limits */
    &rb_op_fill_stream,              /* peak.c: machine limits */
};

const rb_op *const *rb_ops_all(size_t *count) {
    *count = sizeof all_ops / sizeof all_ops[0];
    return all_ops;
}
