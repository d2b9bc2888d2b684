/* rotabench apply: one kernel op on the last axis of a .npy array, written back as .npy. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/dataset.h"
#include "harness/harness.h"
#include "kernels/kernels.h"

static const char usage_text[] =
    "usage: rotabench apply OP --in X.npy --out Y.npy [options]\n"
    "\n"
    "Applies OP to every row (the last axis) of a C-order .npy array and writes the result\n"
    "as .npy of the same shape: float64 in, float64 out; float32, float16 or bfloat16 in,\n"
    "float32 out (the ops run in fp32).\n"
    "\n"
    "ops:\n"
    "  fwht            Walsh-Hadamard transform, n = 2^k   [--norm ortho|none] [--order "
    "natural|sequency]\n"
    "  hadamard        (H_K kron H_2^m) / sqrt(n), n = K 2^m, K in "
    "{1,12,20,28,36,40,44,52,60,108,\n"
    "                  140,156,172}                          [--inverse]\n"
    "  rht             randomized Hadamard H D x / sqrt(n)  [--seed S] [--inverse]\n"
    "  rht2            two blocks H D2 H D1 x / n           [--seed S] [--inverse]\n"
    "  block_hadamard  Hadamard on each block of B          --block B [--inverse]\n"
    "  haar            Haar-random orthogonal Q x           [--seed S] [--inverse]\n"
    "  quantize        quantize-dequantize; writes the dequantized values\n"
    "                  [--format int2|int4|int8|mxfp4|nvfp4|e4m3|e5m2] (default int4)\n"
    "                  [--sym|--asym] (default --sym) [--group G] [--clip C] [--codes FILE]\n"
    "\n"
    "options:\n"
    "  --seed S        seed of the random signs / matrix (default 0): decimal, or hexadecimal\n"
    "                  after 0x; the Philox streams are documented in kernels/rotate.h, so the\n"
    "                  GPU backend draws the same\n"
    "  --codes FILE    quantize: also write the packed codes, row after row (integer formats:\n"
    "                  b-bit little-endian bit stream per row; mxfp4/nvfp4: 4-bit codes, low\n"
    "                  nibble first; e4m3/e5m2: one byte per element); scales are not included\n"
    "\n"
    "Integer formats quantize per row unless --group G; mxfp4 and nvfp4 use their own blocks (32,\n"
    "16) along each row, nvfp4 with one FP32 scale per row; e4m3/e5m2 scale each row by\n"
    "amax / max_finite before the cast.\n";

typedef struct apply_opts {
    const char *op, *in, *out, *codes, *format;
    uint64_t seed;
    size_t block, group;
    double clip;
    int asym, inverse;
    rb_norm norm;
    rb_order order;
} apply_opts;

static int fail(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "rotabench apply: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 2;
}

/* An unsigned integer, the whole text, in base 10, or (hex = 1) in base 16 after a 0x prefix.
 * strtoull alone takes "-1" as 2^64 - 1 and clamps what overflows to it, each silently another
 * seed or size, and its base 0 reads a leading 0 as octal: 010 would be the seed 8 here and 10
 * in a config. */
static int parse_u64(const char *s, int hex, uint64_t *out) {
    char *end;
    int base = 10;
    if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        base = 16;
        if (!isxdigit((unsigned char) *s)) return -1;
    } else if (*s < '0' || *s > '9') {
        return -1; /* no sign, no leading space */
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (*end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, size_t *out) {
    uint64_t v;
    if (parse_u64(s, 0, &v) || v > SIZE_MAX) return -1;
    *out = (size_t) v;
    return 0;
}

/* ---- the rotations, in fp32 or fp64 as the file is ---- */

static int rotate(const apply_opts *o, rb_npy_array *a, size_t n, size_t rows) {
    rb_dir dir = o->inverse ? RB_INVERSE : RB_FORWARD;
    int f64 = a->dtype == RB_NPY_F64;
    float *xf = a->data;
    double *xd = a->data;
    if (!strcmp(o->op, "fwht"))
        return f64 ? rb_fwht_f64(xd, n, rows, n, o->norm, o->order)
                   : rb_fwht_f32(xf, n, rows, n, o->norm, o->order);
    if (!strcmp(o->op, "hadamard"))
        return f64 ? rb_hadamard_f64(xd, n, rows, n, dir) : rb_hadamard_f32(xf, n, rows, n, dir);
    if (!strcmp(o->op, "block_hadamard"))
        return f64 ? rb_hadamard_block_f64(xd, n, rows, n, o->block, dir)
                   : rb_hadamard_block_f32(xf, n, rows, n, o->block, dir);
    if (!f64) {
        /* fp32: exactly the rotation object every method uses. */
        rb_rotation rot;
        rb_rotation_kind kind = !strcmp(o->op, "rht")    ? RB_ROT_RHT
                                : !strcmp(o->op, "rht2") ? RB_ROT_RHT2
                                                         : RB_ROT_HAAR;
        int rc = rb_rotation_init(&rot, kind, n, o->seed);
        if (!rc) rc = rb_rotation_apply(&rot, xf, rows, n, dir);
        rb_rotation_free(&rot);
        return rc;
    }
    if (strcmp(o->op, "haar")) {
        rb_rht r;
        int rc = rb_rht_init(&r, n, !strcmp(o->op, "rht") ? 1 : 2, o->seed);
        if (!rc) rc = rb_rht_apply_f64(&r, xd, rows, n, dir);
        rb_rht_free(&r);
        return rc;
    }
    /* haar in fp64: the same Q (QR of the same Philox Gaussian), applied out of place. */
    double *Q = malloc(n * n * sizeof *Q), *y = malloc(rows * n * sizeof *y + 1);
    int rc = (!Q || !y) ? rb_error_set(RB_ENOMEM, "haar: no memory for n = %zu", n)
                        : rb_haar_f64(Q, n, o->seed);
    if (!rc) rc = rb_rotate_dense_f64(Q, n, xd, rows, n, y, n, dir);
    if (!rc) memcpy(xd, y, rows * n * sizeof *y);
    free(Q);
    free(y);
    return rc;
}

/* ---- quantize: fp32 working copy, dequantized values back, optional packed codes ---- */

static int write_codes(const char *path, const uint8_t *codes, size_t bytes) {
    FILE *f = fopen(path, "wb");
    if (!f) return rb_error_set(RB_EIO, "cannot write %s", path);
    size_t w = fwrite(codes, 1, bytes, f);
    if (fclose(f) || w != bytes) return rb_error_set(RB_EIO, "cannot write %s", path);
    return RB_OK;
}

static int quant_int(const apply_opts *o, float *x, size_t n, size_t rows, int bits,
                     uint8_t **codes, size_t *code_bytes) {
    rb_quant_spec spec = {.bits = bits,
                          .asym = o->asym,
                          .gran = o->group ? RB_QUANT_PER_GROUP : RB_QUANT_PER_ROW,
                          .group = o->group,
                          .clip = (float) o->clip};
    int rc = rb_quant_spec_check(&spec);
    if (rc) return rc;
    size_t np = rb_quant_nparams(&spec, rows, n), row_bytes = rb_pack_bytes(n, bits);
    uint8_t *q = malloc(rows * n + 1);
    float *s = malloc(np * sizeof *s + 1), *z = malloc(np * sizeof *z + 1);
    *code_bytes = rows * row_bytes;
    *codes = malloc(*code_bytes + 1);
    if (!q || !s || !z || !*codes) rc = rb_error_set(RB_ENOMEM, "quantize: no memory");
    if (!rc) rc = rb_quant_f32(&spec, x, rows, n, n, q, s, z);
    if (!rc) rc = rb_dequant_f32(&spec, q, rows, n, s, z, x, n);
    for (size_t r = 0; !rc && r < rows; r++)
        rc = rb_pack_bits(q + r * n, n, bits, *codes + r * row_bytes);
    free(q);
    free(s);
    free(z);
    return rc;
}

static int quant_row_fp(const apply_opts *o, float *x, size_t n, size_t rows, uint8_t **codes,
                        size_t *code_bytes) {
    int mx = !strcmp(o->format, "mxfp4"), nv = !strcmp(o->format, "nvfp4");
    int e4 = !strcmp(o->format, "e4m3");
    size_t row_bytes = mx || nv ? rb_pack_bytes(n, 4) : n;
    size_t nscales =
        mx ? (n + RB_MXFP4_BLOCK - 1) / RB_MXFP4_BLOCK : (n + RB_NVFP4_BLOCK - 1) / RB_NVFP4_BLOCK;
    *code_bytes = rows * row_bytes;
    *codes = malloc(*code_bytes + 1);
    uint8_t *scales = malloc(nscales + 1);
    int rc = !*codes || !scales ? rb_error_set(RB_ENOMEM, "quantize: no memory") : 0;
    for (size_t r = 0; !rc && r < rows; r++) {
        float *row = x + r * n;
        uint8_t *c = *codes + r * row_bytes;
        if (mx) {
            rc = rb_mxfp4_encode(row, n, RB_MX_FLOOR, c, scales);
            if (!rc) rc = rb_mxfp4_decode(c, scales, n, row);
        } else if (nv) {
            float ts;
            rc = rb_nvfp4_encode(row, n, c, scales, &ts);
            if (!rc) rc = rb_nvfp4_decode(c, scales, ts, n, row);
        } else {
            /* Per-row scale so that the row's amax maps to the format's largest finite value. */
            float amax = 0, maxf = e4 ? 448.0f : 57344.0f;
            for (size_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(row[j]));
            /* In double: amax / max_finite underflows fp32 for denormal rows. */
            double sd = amax > 0 ? (double) amax / maxf : 1.0;
            float s = (float) sd > 0 ? (float) sd : 1.0f;
            for (size_t j = 0; j < n; j++) row[j] /= s;
            rc = e4 ? rb_fp8_e4m3_encode_f32(row, n, RB_FP8_SATURATE, c)
                    : rb_fp8_e5m2_encode_f32(row, n, RB_FP8_SATURATE, c);
            if (!rc) (e4 ? rb_fp8_e4m3_decode_f32 : rb_fp8_e5m2_decode_f32)(c, n, row);
            for (size_t j = 0; !rc && j < n; j++) row[j] *= s;
        }
    }
    free(scales);
    return rc;
}

static int quantize(const apply_opts *o, rb_npy_array *a, size_t n, size_t rows) {
    size_t count = n * rows;
    float *x = a->dtype == RB_NPY_F32 ? a->data : malloc(count * sizeof *x + 1);
    if (!x) return rb_error_set(RB_ENOMEM, "quantize: no memory");
    if (a->dtype == RB_NPY_F64)
        for (size_t i = 0; i < count; i++) x[i] = (float) ((double *) a->data)[i];
    uint8_t *codes = NULL;
    size_t code_bytes = 0;
    int rc;
    if (!strncmp(o->format, "int", 3))
        rc = quant_int(o, x, n, rows, atoi(o->format + 3), &codes, &code_bytes);
    else
        rc = quant_row_fp(o, x, n, rows, &codes, &code_bytes);
    if (!rc && o->codes) rc = write_codes(o->codes, codes, code_bytes);
    if (a->dtype == RB_NPY_F64) {
        for (size_t i = 0; i < count; i++) ((double *) a->data)[i] = x[i];
        free(x);
    }
    free(codes);
    return rc;
}

static int parse(int argc, char **argv, apply_opts *o) {
    static const struct option longs[] = {{"in", required_argument, 0, 'i'},
                                          {"out", required_argument, 0, 'o'},
                                          {"seed", required_argument, 0, 's'},
                                          {"block", required_argument, 0, 'b'},
                                          {"format", required_argument, 0, 'f'},
                                          {"sym", no_argument, 0, 'S'},
                                          {"asym", no_argument, 0, 'A'},
                                          {"group", required_argument, 0, 'g'},
                                          {"clip", required_argument, 0, 'c'},
                                          {"norm", required_argument, 0, 'n'},
                                          {"order", required_argument, 0, 'r'},
                                          {"codes", required_argument, 0, 'C'},
                                          {"inverse", no_argument, 0, 'I'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    *o = (apply_opts){.format = "int4", .clip = 1.0, .norm = RB_NORM_ORTHO};
    optind = 1;
    opterr = 0;
    int c;
    char *end, given[sizeof longs / sizeof longs[0]] = ""; /* the options' short codes */
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c != '?' && c != ':' && !strchr(given, c)) given[strlen(given)] = (char) c;
        switch (c) {
        case 'i':
            o->in = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'C':
            o->codes = optarg;
            break;
        case 'f':
            o->format = optarg;
            break;
        case 'S':
            o->asym = 0;
            break;
        case 'A':
            o->asym = 1;
            break;
        case 'I':
            o->inverse = 1;
            break;
        case 's':
            if (parse_u64(optarg, 1, &o->seed))
                return fail("--seed '%s' is not an integer in 0..2^64-1%s", optarg, "");
            break;
        case 'b':
            if (parse_size(optarg, &o->block) || o->block < 2)
                return fail("--block '%s' is not an integer >= 2%s", optarg, "");
            break;
        case 'g':
            if (parse_size(optarg, &o->group) || !o->group)
                return fail("--group '%s' is not a positive integer%s", optarg, "");
            break;
        case 'c':
            o->clip = strtod(optarg, &end);
            if (!*optarg || *end || !(o->clip > 0 && o->clip <= 1))
                return fail("--clip '%s' is not in (0, 1]%s", optarg, "");
            break;
        case 'n':
            if (strcmp(optarg, "ortho") && strcmp(optarg, "none"))
                return fail("--norm '%s' is not ortho or none%s", optarg, "");
            o->norm = !strcmp(optarg, "ortho") ? RB_NORM_ORTHO : RB_NORM_NONE;
            break;
        case 'r':
            if (strcmp(optarg, "natural") && strcmp(optarg, "sequency"))
                return fail("--order '%s' is not natural or sequency%s", optarg, "");
            o->order = !strcmp(optarg, "natural") ? RB_ORDER_NATURAL : RB_ORDER_SEQUENCY;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return fail("unknown or incomplete option '%s'%s", argv[optind - 1],
                        " (rotabench apply --help)");
        }
    }
    if (optind != argc - 1) return fail("give exactly one OP%s%s", "", " (rotabench apply --help)");
    o->op = argv[optind];
    static const char *const ops[] = {"fwht",     "haar",           "rht",     "rht2",
                                      "hadamard", "block_hadamard", "quantize"};
    int known = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) known |= !strcmp(o->op, ops[i]);
    if (!known) return fail("unknown op '%s'%s", o->op, " (rotabench apply --help)");
    static const char *const formats[] = {"int2", "int4", "int8", "mxfp4", "nvfp4", "e4m3", "e5m2"};
    known = 0;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        known |= !strcmp(o->format, formats[i]);
    if (!known)
        return fail("unknown --format '%s'%s", o->format,
                    " (int2|int4|int8|mxfp4|nvfp4|e4m3|e5m2)");
    if (!o->in || !o->out) return fail("--in and --out are required%s%s", "", "");
    if (!strcmp(o->op, "block_hadamard") && !o->block)
        return fail("block_hadamard needs --block B%s%s", "", "");
    /* An option the op does not read is an error, not silently ignored (--seed with fwht,
     * --group with mxfp4). */
    static const struct {
        char code;
        const char *name, *ops;
    } applies[] = {
        {'s', "--seed", " rht rht2 haar "},
        {'I', "--inverse", " hadamard rht rht2 block_hadamard haar "},
        {'b', "--block", " block_hadamard "},
        {'n', "--norm", " fwht "},
        {'r', "--order", " fwht "},
        {'f', "--format", " quantize "},
        {'C', "--codes", " quantize "},
        {'S', "--sym", " int "},
        {'A', "--asym", " int "},
        {'g', "--group", " int "},
        {'c', "--clip", " int "},
    };
    char op[40];
    int int_format = !strcmp(o->op, "quantize") && !strncmp(o->format, "int", 3);
    snprintf(op, sizeof op, " %s ", o->op);
    for (size_t i = 0; i < sizeof applies / sizeof applies[0]; i++) {
        if (!strchr(given, applies[i].code) || strstr(applies[i].ops, op) ||
            (int_format && strstr(applies[i].ops, " int ")))
            continue;
        if (!strcmp(applies[i].ops, " int "))
            return fail("%s applies to the integer formats (int2, int4, int8), not %s",
                        applies[i].name, !strcmp(o->op, "quantize") ? o->format : o->op);
        return fail("%s does not apply to %s (rotabench apply --help lists each op's options)",
                    applies[i].name, o->op);
    }
    return -1; /* parsed; go on */
}

int rb_cmd_apply(int argc, char **argv) {
    apply_opts o;
    int st = parse(argc, argv, &o);
    if (st >= 0) return st;
    /* Read in fp64 (exact for every input dtype), then keep fp64 only for fp64 files: the ops
     * run in the precision the data came in. */
    rb_npy_array a;
    int rc = rb_npy_read(o.in, RB_NPY_F64, RB_NPY_CHECK_FINITE, &a);
    if (rc == RB_OK && strcmp(a.descr, "<f8") && strcmp(a.descr, "=f8")) {
        float *f = malloc(a.count * sizeof *f + 1);
        if (!f) {
            rb_npy_free(&a);
            rc = rb_error_set(RB_ENOMEM, "%s: no memory for %zu values", o.in, a.count);
        } else {
            for (size_t i = 0; i < a.count; i++) f[i] = (float) ((double *) a.data)[i];
            free(a.data);
            a.data = f;
            a.dtype = RB_NPY_F32;
        }
    }
    if (rc) {
        fprintf(stderr, "rotabench apply: %s\n", rb_error_detail());
        return 2;
    }
    size_t n = a.ndim ? a.shape[a.ndim - 1] : 0, rows = n ? a.count / n : 0;
    if (a.ndim == 0 || n == 0) {
        fprintf(stderr,
                "rotabench apply: %s: the array needs a non-empty last axis (shape has %d "
                "axes)\n",
                o.in, a.ndim);
        rb_npy_free(&a);
        return 2;
    }
    /* Before the kernel, whose message would name only the block ("n = 100 is not supported"). */
    if (!strcmp(o.op, "block_hadamard") && n % o.block) {
        fprintf(stderr,
                "rotabench apply block_hadamard: --block %zu does not divide the row length "
                "n = %zu of %s\n",
                o.block, n, o.in);
        rb_npy_free(&a);
        return 2;
    }
    rc = strcmp(o.op, "quantize") ? rotate(&o, &a, n, rows) : quantize(&o, &a, n, rows);
    if (!rc) rc = rb_npy_write(o.out, a.dtype, a.ndim, a.shape, a.data);
    if (rc) fprintf(stderr, "rotabench apply %s: %s\n", o.op, rb_error_detail());
    rb_npy_free(&a);
    return rc ? 2 : 0;
}
