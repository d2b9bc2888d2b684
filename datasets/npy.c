/* .npy reader (versions 1.0/2.0/3.0; f4, f8, f2, bfloat16 -> float32/float64) and writer. */
#include "datasets/dataset.h"
#include "datasets/elem.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads little-endian data by memcpy and assumes a little-endian host"
#endif

/* Header limits: NumPy's own reader refuses headers above 10000 bytes unless told otherwise;
 * this allows far more but stops a corrupt length from asking for gigabytes. */
#define MAX_HEADER (1u << 20)

/* ---- header dict parser: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } ---- */

typedef struct parser {
    const char *s, *end, *path;
} parser;

static void skip_ws(parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int bad(const parser *p, const char *what) {
    return rb_error_set(RB_EFORMAT, "%s: malformed .npy header: %s (at \"%.20s\")", p->path, what,
                        p->s < p->end ? p->s : "<end>");
}

/* A Python string literal in single or double quotes (no escapes: none occur in valid descrs). */
static int parse_str(parser *p, char *buf, size_t cap) {
    if (p->s >= p->end || (*p->s != '\'' && *p->s != '"')) return bad(p, "expected a string");
    char q = *p->s;
    const char *close = memchr(p->s + 1, q, (size_t) (p->end - p->s - 1));
    if (!close) return bad(p, "unterminated string");
    size_t n = (size_t) (close - p->s - 1);
    if (n + 1 > cap) return bad(p, "string too long");
    memcpy(buf, p->s + 1, n);
    buf[n] = '\0';
    p->s = close + 1;
    return 0;
}

/* The Python keyword w at p (True, False), not the start of a longer name (Truex). */
static int keyword(const parser *p, const char *w) {
    size_t n = strlen(w);
    if ((size_t) (p->end - p->s) < n || strncmp(p->s, w, n)) return 0;
    if (p->s + n == p->end) return 1;
    char c = p->s[n];
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_');
}

static int parse_shape(parser *p, rb_npy_array *a) {
    if (p->s >= p->end || *p->s != '(') return bad(p, "shape must be a tuple");
    p->s++;
    a->ndim = 0;
    for (;;) {
        skip_ws(p);
        if (p->s < p->end && *p->s == ')') break;
        if (p->s < p->end && *p->s == '-')
            return rb_error_set(RB_EFORMAT, "%s: negative dimension in shape", p->path);
        if (p->s >= p->end || *p->s < '0' || *p->s > '9') return bad(p, "expected a dimension");
        if (a->ndim == RB_NPY_MAX_DIMS)
            return rb_error_set(RB_EFORMAT, "%s: more than %d dimensions", p->path,
                                RB_NPY_MAX_DIMS);
        uint64_t v = 0;
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
            unsigned dgt = (unsigned) (*p->s++ - '0');
            if (v > (UINT64_MAX - dgt) / 10 || v * 10 + dgt > SIZE_MAX)
                return rb_error_set(RB_EFORMAT, "%s: absurd shape: a dimension overflows", p->path);
            v = v * 10 + dgt;
        }
        if (p->s < p->end && (*p->s == 'L' || *p->s == 'l')) p->s++; /* Python 2 long */
        a->shape[a->ndim++] = (size_t) v;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == ')') break;
        return bad(p, "expected ',' or ')' in shape");
    }
    p->s++; /* NumPy writes (5,); the non-tuple (5) is accepted as the same shape */
    return 0;
}

static int parse_header(parser *p, char *descr, size_t descr_cap, rb_npy_array *a) {
    int have_descr = 0, have_fo = 0, have_shape = 0, rc;
    skip_ws(p);
    if (p->s >= p->end || *p->s != '{') return bad(p, "expected '{'");
    p->s++;
    for (;;) {
        skip_ws(p);
        if (p->s < p->end && *p->s == '}') break;
        char key[32];
        if ((rc = parse_str(p, key, sizeof key))) return rc;
        skip_ws(p);
        if (p->s >= p->end || *p->s != ':') return bad(p, "expected ':'");
        p->s++;
        skip_ws(p);
        if (!strcmp(key, "descr")) {
            if (have_descr++) return bad(p, "duplicate key 'descr'");
            if (p->s < p->end && *p->s == '[')
                return rb_error_set(RB_EFORMAT,
                                    "%s: structured (record) dtypes are not supported; "
                                    "supported: '<f4', '<f8', '<f2'",
                                    p->path);
            if ((rc = parse_str(p, descr, descr_cap))) return rc;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fo++) return bad(p, "duplicate key 'fortran_order'");
            if (keyword(p, "True")) {
                return rb_error_set(RB_EFORMAT,
                                    "%s: fortran_order is True; only C-order arrays are "
                                    "supported (save np.ascontiguousarray(a))",
                                    p->path);
            } else if (keyword(p, "False")) {
                p->s += 5;
            } else {
                return bad(p, "fortran_order must be True or False");
            }
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return bad(p, "duplicate key 'shape'");
            if ((rc = parse_shape(p, a))) return rc;
        } else {
            return rb_error_set(RB_EFORMAT, "%s: malformed .npy header: unexpected key '%s'",
                                p->path, key);
        }
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == '}') break;
        return bad(p, "expected ',' or '}'");
    }
    p->s++;
    skip_ws(p);
    if (p->s != p->end) return bad(p, "text after the closing '}'");
    if (!have_descr || !have_fo || !have_shape)
        return rb_error_set(RB_EFORMAT, "%s: malformed .npy header: missing key '%s'", p->path,
                            !have_descr ? "descr"
                            : !have_fo  ? "fortran_order"
                                        : "shape");
    return 0;
}

static int map_descr(const char *path, const char *d, unsigned flags, rb_elem *t) {
    const char *supported = flags & RB_NPY_V2_KEY
                                ? "supported: '<f4', '<f8', '<f2', and bfloat16 as 'bfloat16' or "
                                  "as '<V2' with the dataset parameter v2_as_bf16: true"
                                : "supported: '<f4', '<f8', '<f2', and bfloat16 as 'bfloat16'";
    if (!strcmp(d, "bfloat16")) {
        *t = RB_ELEM_BF16;
        return 0;
    }
    if (strlen(d) == 3 && (d[0] == '<' || d[0] == '=' || d[0] == '|')) {
        if (!strcmp(d + 1, "f4") && d[0] != '|') return *t = RB_ELEM_F32, 0;
        if (!strcmp(d + 1, "f8") && d[0] != '|') return *t = RB_ELEM_F64, 0;
        if (!strcmp(d + 1, "f2") && d[0] != '|') return *t = RB_ELEM_F16, 0;
        if (!strcmp(d + 1, "V2")) {
            if (flags & RB_NPY_V2_AS_BF16) return *t = RB_ELEM_BF16, 0;
            return rb_error_set(RB_EFORMAT,
                                "%s: dtype '%s' is a raw 2-byte void type; ml_dtypes bfloat16 is "
                                "saved this way but so is any other V2 data, so it is read as "
                                "bfloat16 only %s (%s)",
                                path, d,
                                flags & RB_NPY_V2_KEY
                                    ? "with the dataset parameter v2_as_bf16: true"
                                    : "when saved with descr 'bfloat16' here",
                                supported);
        }
    }
    if (d[0] == '>' && strlen(d) == 3 && d[1] == 'f')
        return rb_error_set(RB_EFORMAT,
                            "%s: dtype '%s' is big-endian; only little-endian data is supported "
                            "(save a.astype(a.dtype.newbyteorder('<'))); %s",
                            path, d, supported);
    return rb_error_set(RB_EFORMAT, "%s: unsupported dtype '%s'; %s", path, d, supported);
}

static void shape_text(const rb_npy_array *a, char *buf, size_t cap) {
    size_t n = (size_t) snprintf(buf, cap, "(");
    for (int i = 0; i < a->ndim && n < cap; i++)
        n += (size_t) snprintf(buf + n, cap - n, "%zu%s", a->shape[i],
                               a->ndim == 1      ? ","
                               : i + 1 < a->ndim ? ", "
                                                 : "");
    if (n < cap) snprintf(buf + n, cap - n, ")");
}

/* The first NaN/Inf of the source data, with its multi-index. */
static int check_finite(const char *path, const rb_npy_array *a, const unsigned char *buf,
                        rb_elem t) {
    for (size_t i = 0; i < a->count; i++) {
        double v = rb_elem_load(buf + i * rb_elem_size(t), t);
        if (isfinite(v)) continue;
        char idx[256];
        size_t n = 0, r = i;
        size_t sub[RB_NPY_MAX_DIMS] = {0};
        for (int k = a->ndim - 1; k >= 0; k--) {
            sub[k] = a->shape[k] ? r % a->shape[k] : 0;
            r = a->shape[k] ? r / a->shape[k] : 0;
        }
        n += (size_t) snprintf(idx, sizeof idx, "(");
        for (int k = 0; k < a->ndim && n < sizeof idx; k++)
            n += (size_t) snprintf(idx + n, sizeof idx - n, "%zu%s", sub[k],
                                   k + 1 < a->ndim ? ", " : "");
        if (n < sizeof idx) snprintf(idx + n, sizeof idx - n, ")");
        return rb_error_set(RB_ENUMERIC, "%s: element %zu (index %s) is %s", path, i, idx,
                            isnan(v) ? "NaN"
                            : v > 0  ? "+Inf"
                                     : "-Inf");
    }
    return 0;
}

/* Reads and checks the header of the open file f: everything rb_npy_read checks before it reads
 * the data (magic, version, the dict, the descr, the shape) and that the file holds exactly the
 * bytes the shape needs. Fills ndim, shape, count and descr of *out; *t is the file's element
 * type and *data_off where its data start. */
static int read_header(FILE *f, const char *path, unsigned flags, rb_npy_array *out, rb_elem *t,
                       uint64_t *data_off) {
    int rc = 0;
    char *hdr = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return rb_error_set(RB_EIO, "%s: cannot stat: %s", path, strerror(errno));
    uint64_t fsize = (uint64_t) st.st_size;

    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got == 0 || memcmp(pre, "\x93NUMPY", got < 6 ? got : 6) != 0)
        return rb_error_set(RB_EFORMAT, "%s: not a .npy file (bad magic; expected \\x93NUMPY)",
                            path);
    if (got < 8)
        return rb_error_set(RB_EFORMAT, "%s: truncated header (file ends inside the magic/version)",
                            path);
    int major = pre[6], minor = pre[7];
    if (!((major == 1 || major == 2 || major == 3) && minor == 0))
        return rb_error_set(RB_EFORMAT,
                            "%s: .npy format version %d.%d is not supported (1.0, 2.0, "
                            "3.0)",
                            path, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    if (got < 8 + lenbytes && fread(pre + got, 1, 8 + lenbytes - got, f) + got < 8 + lenbytes)
        return rb_error_set(RB_EFORMAT, "%s: truncated header (file ends in the header length)",
                            path);
    uint32_t hlen = major == 1 ? (uint32_t) pre[8] | (uint32_t) pre[9] << 8
                               : (uint32_t) pre[8] | (uint32_t) pre[9] << 8 |
                                     (uint32_t) pre[10] << 16 | (uint32_t) pre[11] << 24;
    *data_off = 8 + lenbytes + hlen;
    if (*data_off > fsize)
        return rb_error_set(RB_EFORMAT,
                            "%s: truncated header: header length %u needs %llu bytes, file has "
                            "%llu",
                            path, hlen, (unsigned long long) *data_off, (unsigned long long) fsize);
    if (hlen > MAX_HEADER)
        return rb_error_set(RB_EFORMAT, "%s: header length %u is absurd (limit %u)", path, hlen,
                            MAX_HEADER);
    fseek(f, (long) (8 + lenbytes), SEEK_SET);
    hdr = malloc(hlen + 1);
    if (!hdr) return rb_error_set(RB_ENOMEM, "%s: out of memory for the header", path);
    if (fread(hdr, 1, hlen, f) != hlen) {
        rc = rb_error_set(RB_EIO, "%s: read error in the header", path);
        goto fail;
    }
    hdr[hlen] = '\0';
    if (memchr(hdr, '\0', hlen)) {
        rc = rb_error_set(RB_EFORMAT, "%s: malformed .npy header: NUL byte in the header", path);
        goto fail;
    }

    parser p = {hdr, hdr + hlen, path};
    if ((rc = parse_header(&p, out->descr, sizeof out->descr, out))) goto fail;
    if ((rc = map_descr(path, out->descr, flags, t))) goto fail;

    /* Sizes, with overflow checks before anything is allocated. */
    size_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        if (out->shape[i] && count > SIZE_MAX / out->shape[i]) {
            char sh[512];
            shape_text(out, sh, sizeof sh);
            rc = rb_error_set(RB_EFORMAT, "%s: absurd shape %s: element count overflows", path, sh);
            goto fail;
        }
        count *= out->shape[i];
    }
    if (count > SIZE_MAX / 8 || count * rb_elem_size(*t) > (uint64_t) INT64_MAX) {
        char sh[512];
        shape_text(out, sh, sizeof sh);
        rc = rb_error_set(RB_EFORMAT, "%s: absurd shape %s: byte size overflows", path, sh);
        goto fail;
    }
    uint64_t need = (uint64_t) count * rb_elem_size(*t), have = fsize - *data_off;
    if (need != have) {
        char sh[512];
        shape_text(out, sh, sizeof sh);
        rc = rb_error_set(RB_EFORMAT,
                          need > have ? "%s: truncated data: shape %s of '%s' needs %llu bytes, "
                                        "the file has %llu after the header"
                                      : "%s: shape %s of '%s' needs %llu bytes but the file has "
                                        "%llu after the header (trailing data)",
                          path, sh, out->descr, (unsigned long long) need,
                          (unsigned long long) have);
        goto fail;
    }
    out->count = count;
fail:
    free(hdr);
    return rc;
}

int rb_npy_read_header(const char *path, unsigned flags, rb_npy_array *out) {
    memset(out, 0, sizeof *out);
    FILE *f = rb_data_open(path);
    if (!f) return RB_EIO;
    rb_elem t;
    uint64_t data_off;
    int rc = read_header(f, path, flags, out, &t, &data_off);
    fclose(f);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}

int rb_npy_read(const char *path, enum rb_npy_dtype want, unsigned flags, rb_npy_array *out) {
    int rc = 0;
    FILE *f = NULL;
    unsigned char *buf = NULL;
    memset(out, 0, sizeof *out);
    if (want != RB_NPY_F32 && want != RB_NPY_F64)
        return rb_error_set(RB_EINVAL, "%s: requested dtype %d is not float32/float64", path,
                            (int) want);

    f = rb_data_open(path);
    if (!f) return RB_EIO;
    rb_elem t = RB_ELEM_F32;
    uint64_t data_off;
    if ((rc = read_header(f, path, flags, out, &t, &data_off))) goto fail;
    size_t count = out->count, dst_sz = want == RB_NPY_F32 ? 4 : 8;

    size_t src_bytes = count * rb_elem_size(t), dst_bytes = count * dst_sz;
    size_t cap = src_bytes > dst_bytes ? src_bytes : dst_bytes;
    buf = malloc(cap ? cap : 1);
    if (!buf) {
        rc = rb_error_set(RB_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
        goto fail;
    }
    fseek(f, (long) data_off, SEEK_SET);
    if (src_bytes && fread(buf, 1, src_bytes, f) != src_bytes) {
        rc = rb_error_set(RB_EIO, "%s: read error in the data", path);
        goto fail;
    }
    if ((flags & RB_NPY_CHECK_FINITE) && (rc = check_finite(path, out, buf, t))) goto fail;

    /* Convert in place: growing conversions run from the end, shrinking ones from the start,
     * so one buffer of max(source, destination) bytes suffices. */
    int same = (t == RB_ELEM_F32 && want == RB_NPY_F32) || (t == RB_ELEM_F64 && want == RB_NPY_F64);
    if (!same) {
        if (dst_sz > rb_elem_size(t)) {
            for (size_t i = count; i-- > 0;) {
                double v = rb_elem_load(buf + i * rb_elem_size(t), t);
                if (want == RB_NPY_F32) {
                    float fv = (float) v;
                    memcpy(buf + i * 4, &fv, 4);
                } else {
                    memcpy(buf + i * 8, &v, 8);
                }
            }
        } else { /* f8 -> f4 */
            for (size_t i = 0; i < count; i++) {
                double v = rb_elem_load(buf + i * 8, RB_ELEM_F64);
                float fv = (float) v;
                if ((flags & RB_NPY_CHECK_FINITE) && isinf(fv)) {
                    rc = rb_error_set(RB_ENUMERIC,
                                      "%s: element %zu (%.17g) overflows float32 on conversion",
                                      path, i, v);
                    goto fail;
                }
                memcpy(buf + i * 4, &fv, 4);
            }
        }
    }
    if (cap > dst_bytes && dst_bytes) {
        unsigned char *shrunk = realloc(buf, dst_bytes);
        if (shrunk) buf = shrunk;
    }
    out->dtype = want;
    out->data = buf;
    buf = NULL;

fail:
    if (f) fclose(f);
    free(buf);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}

void rb_npy_free(rb_npy_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int rb_npy_write(const char *path, enum rb_npy_dtype dtype, int ndim, const size_t *shape,
                 const void *data) {
    if (dtype != RB_NPY_F32 && dtype != RB_NPY_F64)
        return rb_error_set(RB_EINVAL, "%s: dtype %d is not float32/float64", path, (int) dtype);
    if (ndim < 0 || ndim > RB_NPY_MAX_DIMS || (ndim && !shape))
        return rb_error_set(RB_EINVAL, "%s: ndim = %d is not supported (0..%d)", path, ndim,
                            RB_NPY_MAX_DIMS);
    size_t count = 1, esz = dtype == RB_NPY_F32 ? 4 : 8;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && count > SIZE_MAX / esz / shape[i])
            return rb_error_set(RB_EINVAL, "%s: shape overflows", path);
        count *= shape[i];
    }
    if (count && !data) return rb_error_set(RB_EINVAL, "%s: data is NULL", path);

    char hdr[64 + RB_NPY_MAX_DIMS * 24];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     dtype == RB_NPY_F32 ? "<f4" : "<f8");
    for (int i = 0; i < ndim; i++)
        n += snprintf(hdr + n, sizeof hdr - (size_t) n, "%zu%s", shape[i],
                      ndim == 1      ? ","
                      : i + 1 < ndim ? ", "
                                     : "");
    n += snprintf(hdr + n, sizeof hdr - (size_t) n, "), }");
    /* Pad with spaces and end with '\n' so that magic + version + length + header is a multiple
     * of 64 bytes, which keeps the data aligned for memory mapping (what np.save does). */
    size_t total = 10 + (size_t) n + 1;
    size_t pad = (64 - total % 64) % 64;
    RB_ASSERT((size_t) n + pad + 1 < sizeof hdr);
    memset(hdr + n, ' ', pad);
    hdr[(size_t) n + pad] = '\n';
    size_t hlen = (size_t) n + pad + 1;

    FILE *f = fopen(path, "wb");
    if (!f) return rb_error_set(RB_EIO, "%s: cannot create: %s", path, strerror(errno));
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char) (hlen & 0xff),
                             (unsigned char) (hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, hlen, f) == hlen &&
             (count == 0 || fwrite(data, esz, count, f) == count);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return rb_error_set(RB_EIO, "%s: write failed: %s", path, strerror(errno));
    return 0;
}
