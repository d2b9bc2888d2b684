/* The safetensors loader: one tensor, by name, from a .safetensors file (8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then
 * the data section; offsets are relative to the data section). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/elem.h"
#include "datasets/kinds.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data by memcpy and assumes a little-endian host"
#endif

/* The format's own reader refuses headers above 100 MB. */
#define MAX_HEADER (100u << 20)

static const rb_param_def st_params[] = {
    RB_PARAM_STRING("path", NULL, ".safetensors file"),
    RB_PARAM_STRING("tensor", NULL, "name of the tensor in the file (F32, F16, BF16 or F64)"),
    RB_PARAM_STRING("as", "x", "tensor name to store it as"),
};

enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_F64 };
static const char *const st_names[] = {"F32", "F16", "BF16", "F64"};
static const rb_elem st_elem[] = {RB_ELEM_F32, RB_ELEM_F16, RB_ELEM_BF16, RB_ELEM_F64};

/* "a, b, c" of the tensor names in the header (without __metadata__), cut at cap. */
static void list_names(json_t *root, char *buf, size_t cap) {
    const char *key;
    json_t *val;
    size_t n = 0;
    buf[0] = '\0';
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        if (n + strlen(key) + 8 >= cap) {
            snprintf(buf + n, cap - n, "%s...", n ? ", " : "");
            return;
        }
        n += (size_t) snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", key);
    }
    if (!n) snprintf(buf, cap, "none");
}

static int get_u64(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t) json_integer_value(v);
    return 0;
}

/* The index of a dtype name in st_names, or -1. */
static int dtype_index(const char *dt) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(dt, st_names[i])) return i;
    return -1;
}

/* One tensor's byte range in the data section, for the tiling check. */
typedef struct st_span {
    uint64_t begin, end;
    const char *name;
} st_span;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The format requires the tensors' data_offsets to tile the data section: no hole, no overlap,
 * no bytes past the last tensor (its own reader fails such files with InvalidOffset or
 * MetadataIncompleteBuffer; a file that breaks it is corrupt or a polyglot). Every tensor entry
 * of the header is checked, not only the one read. */
static int check_tiling(json_t *root, const char *path, uint64_t data_size) {
    size_t n = json_object_size(root), k = 0;
    st_span *sp = malloc((n + 1) * sizeof *sp);
    if (!sp) return rb_error_set(RB_ENOMEM, "%s: no memory for the header", path);
    const char *key;
    json_t *ent;
    int rc = RB_OK;
    json_object_foreach(root, key, ent) {
        if (!strcmp(key, "__metadata__")) continue;
        if (!json_is_object(ent)) {
            rc = rb_error_set(RB_EFORMAT, "%s: tensor '%s': its entry is not a JSON object", path,
                              key);
            goto done;
        }
        json_t *jo = json_object_get(ent, "data_offsets");
        uint64_t b, e;
        if (!json_is_array(jo) || json_array_size(jo) != 2 || get_u64(json_array_get(jo, 0), &b) ||
            get_u64(json_array_get(jo, 1), &e) || b > e) {
            rc = rb_error_set(RB_EFORMAT,
                              "%s: tensor '%s': data_offsets must be [begin, end], integers 0 <= "
                              "begin <= end",
                              path, key);
            goto done;
        }
        sp[k++] = (st_span){b, e, key};
    }
    qsort(sp, k, sizeof *sp, cmp_span);
    uint64_t at = 0;
    for (size_t i = 0; i < k; i++) {
        if (sp[i].begin != at) {
            if (i && sp[i].begin < at)
                rc = rb_error_set(RB_EFORMAT,
                                  "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor "
                                  "'%s' [%llu, %llu]",
                                  path, sp[i].name, (unsigned long long) sp[i].begin,
                                  (unsigned long long) sp[i].end, sp[i - 1].name,
                                  (unsigned long long) sp[i - 1].begin,
                                  (unsigned long long) sp[i - 1].end);
            else
                rc = rb_error_set(RB_EFORMAT,
                                  "%s: tensor '%s': data_offsets [%llu, %llu] leave bytes %llu .. "
                                  "%llu of the data section unused (the tensors must tile it)",
                                  path, sp[i].name, (unsigned long long) sp[i].begin,
                                  (unsigned long long) sp[i].end, (unsigned long long) at,
                                  (unsigned long long) sp[i].begin - 1);
            goto done;
        }
        at = sp[i].end;
    }
    if (at != data_size)
        rc = rb_error_set(RB_EFORMAT,
                          "%s: the data section has %llu bytes but its tensors end at byte %llu "
                          "(the tensors must tile it: trailing bytes, or a truncated file)",
                          path, (unsigned long long) data_size, (unsigned long long) at);
done:
    free(sp);
    return rc;
}

/* Reads the header of the open file f and checks the entry of tensor `name` (see
 * rb_safetensors_read_header). */
static int read_entry(FILE *f, const char *path, const char *name, rb_safetensors_entry *e) {
    int rc = RB_OK;
    char *hdr = NULL;
    json_t *root = NULL;
    memset(e, 0, sizeof *e);
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return rb_error_set(RB_EIO, "%s: cannot stat: %s", path, strerror(errno));
    uint64_t fsize = (uint64_t) st.st_size;
    unsigned char lenb[8];
    if (fread(lenb, 1, 8, f) != 8)
        return rb_error_set(RB_EFORMAT, "%s: %llu bytes, too short for the 8-byte header length",
                            path, (unsigned long long) fsize);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen < 2 || hlen > MAX_HEADER)
        return rb_error_set(RB_EFORMAT, "%s: header length %llu is not sane (2 .. %u bytes)", path,
                            (unsigned long long) hlen, MAX_HEADER);
    if (8 + hlen > fsize)
        return rb_error_set(RB_EFORMAT,
                            "%s: header length %llu runs past the end of the file (%llu "
                            "bytes)",
                            path, (unsigned long long) hlen, (unsigned long long) fsize);
    hdr = malloc(hlen);
    if (!hdr) return rb_error_set(RB_ENOMEM, "%s: no memory for the header", path);
    if (fread(hdr, 1, hlen, f) != hlen) {
        rc = rb_error_set(RB_EIO, "%s: read error in the header", path);
        goto done;
    }
    json_error_t jerr;
    root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = rb_error_set(RB_EFORMAT, "%s: header is not valid JSON (column %d: %s)", path,
                          jerr.column, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = rb_error_set(RB_EFORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta && !json_is_object(meta)) {
        rc = rb_error_set(RB_EFORMAT, "%s: __metadata__ is not an object", path);
        goto done;
    }
    json_t *ent = strcmp(name, "__metadata__") ? json_object_get(root, name) : NULL;
    if (!ent) {
        char names[512];
        list_names(root, names, sizeof names);
        rc = rb_error_set(RB_EINVAL, "%s: no tensor '%s' (available: %s)", path, name, names);
        goto done;
    }
    json_t *jd = json_object_get(ent, "dtype"), *js = json_object_get(ent, "shape"),
           *jo = json_object_get(ent, "data_offsets");
    if (!json_is_object(ent) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
        json_array_size(jo) != 2) {
        rc = rb_error_set(RB_EFORMAT,
                          "%s: tensor '%s' needs dtype (string), shape (array) and data_offsets "
                          "([begin, end])",
                          path, name);
        goto done;
    }
    const char *dt = json_string_value(jd);
    int t = dtype_index(dt);
    if (t < 0) {
        rc =
            rb_error_set(RB_ENOTSUP, "%s: tensor '%s' has dtype %s; supported: F32, F16, BF16, F64",
                         path, name, dt);
        goto done;
    }
    snprintf(e->dtype, sizeof e->dtype, "%s", st_names[t]);
    e->ndim = json_array_size(js);
    if (e->ndim > RB_TENSOR_NDIM_MAX) {
        rc =
            rb_error_set(RB_EINVAL, "%s: tensor '%s' has %zu axes; a dataset tensor has at most %d",
                         path, name, e->ndim, RB_TENSOR_NDIM_MAX);
        goto done;
    }
    uint64_t numel = 1, begin, end;
    for (size_t d = 0; d < e->ndim; d++) {
        uint64_t v;
        if (get_u64(json_array_get(js, d), &v)) {
            rc = rb_error_set(RB_EFORMAT,
                              "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                              name, d);
            goto done;
        }
        if (v && numel > (UINT64_C(1) << 40) / v) {
            rc = rb_error_set(RB_EFORMAT, "%s: tensor '%s': shape is too large", path, name);
            goto done;
        }
        e->shape[d] = (size_t) v;
        numel *= v;
    }
    if (get_u64(json_array_get(jo, 0), &begin) || get_u64(json_array_get(jo, 1), &end) ||
        begin > end) {
        rc = rb_error_set(RB_EFORMAT,
                          "%s: tensor '%s': data_offsets must be integers 0 <= begin <= "
                          "end",
                          path, name);
        goto done;
    }
    uint64_t data_size = fsize - 8 - hlen, nbytes = numel * rb_elem_size(st_elem[t]);
    if (end > data_size) {
        rc = rb_error_set(RB_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] run past the data section "
                          "(%llu bytes)",
                          path, name, (unsigned long long) begin, (unsigned long long) end,
                          (unsigned long long) data_size);
        goto done;
    }
    if (end - begin != nbytes) {
        rc = rb_error_set(RB_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape "
                          "and dtype %s need %llu",
                          path, name, (unsigned long long) begin, (unsigned long long) end,
                          (unsigned long long) (end - begin), dt, (unsigned long long) nbytes);
        goto done;
    }
    /* after the tensor's own checks, whose messages are the more specific */
    if ((rc = check_tiling(root, path, data_size))) goto done;
    e->numel = numel;
    e->offset = 8 + hlen + begin;
    e->nbytes = nbytes;
done:
    json_decref(root);
    free(hdr);
    return rc;
}

int rb_safetensors_read_header(const char *path, const char *tensor, rb_safetensors_entry *out) {
    memset(out, 0, sizeof *out);
    FILE *f = rb_data_open(path);
    if (!f) return RB_EIO;
    int rc = read_entry(f, path, tensor, out);
    fclose(f);
    return rc;
}

/* The parameters both load and shape need, with load's errors for missing ones. */
static int st_args(const rb_params *p, const char **path, const char **name) {
    *path = rb_params_str(p, "path");
    *name = rb_params_str(p, "tensor");
    if (!**path) return rb_error_set(RB_EINVAL, "safetensors: parameter 'path' is required");
    if (!**name) return rb_error_set(RB_EINVAL, "safetensors: parameter 'tensor' is required");
    return RB_OK;
}

/* The tensor as a dataset tensor: at least one axis and one element (as the npy kind's rule), on
 * the header, so that a dry run refuses what every method would. */
static int st_dataset_rule(const char *path, const char *name, const rb_safetensors_entry *e) {
    if (e->ndim == 0)
        return rb_error_set(RB_EINVAL,
                            "%s: tensor '%s' is 0-d (one number); a dataset tensor has "
                            "1 to %d axes",
                            path, name, RB_TENSOR_NDIM_MAX);
    if (e->numel == 0)
        return rb_error_set(RB_EINVAL,
                            "%s: tensor '%s' is empty (a zero in its shape); a dataset "
                            "tensor needs at least one element",
                            path, name);
    return RB_OK;
}

static int load_safetensors(const rb_params *p, uint64_t seed, rb_dataset *ds) {
    const char *path, *name, *as = rb_params_str(p, "as");
    int rc = st_args(p, &path, &name);
    if (rc) return rc;
    unsigned char *raw = NULL;
    FILE *f = rb_data_open(path);
    if (!f) return RB_EIO;
    rb_safetensors_entry e;
    if ((rc = read_entry(f, path, name, &e)) || (rc = st_dataset_rule(path, name, &e))) goto done;
    rb_elem t = st_elem[dtype_index(e.dtype)];
    raw = malloc(e.nbytes ? e.nbytes : 1);
    if (!raw) {
        rc = rb_error_set(RB_ENOMEM, "%s: no memory for tensor '%s'", path, name);
        goto done;
    }
    if (fseeko(f, (off_t) e.offset, SEEK_SET) != 0 || fread(raw, 1, e.nbytes, f) != e.nbytes) {
        rc = rb_error_set(RB_EIO, "%s: read error in tensor '%s'", path, name);
        goto done;
    }
    rb_tensor *out;
    rc = rb_dataset_add(ds, as, e.ndim, e.shape, &out);
    if (rc) {
        rc = rb_error_set(rc, "%s: %s", path, rb_error_detail());
        goto done;
    }
    for (uint64_t i = 0; i < e.numel; i++) {
        double v = rb_elem_load(raw + i * rb_elem_size(t), t);
        float fv = (float) v;
        if (!isfinite(fv)) {
            rc = rb_error_set(RB_ENUMERIC, "%s: tensor '%s': element %llu is %s", path, name,
                              (unsigned long long) i,
                              isnan(v)       ? "NaN"
                              : !isfinite(v) ? (v > 0 ? "+Inf" : "-Inf")
                                             : "beyond the float32 range");
            goto done;
        }
        out->data[i] = fv;
    }
    rb_dataset_hash(ds);
done:
    if (rc) rb_dataset_free(ds);
    free(raw);
    fclose(f);
    return rc;
}

/* The tensor's header; its row length and count when it is stored as 'x' (count x dim, what a
 * codec codes); this kind has no queries. */
static int shape_safetensors(const rb_params *p, rb_dataset_shape *s) {
    const char *path, *name;
    rb_safetensors_entry e = {0};
    int rc = st_args(p, &path, &name);
    if (!rc) rc = rb_safetensors_read_header(path, name, &e);
    if (!rc) rc = st_dataset_rule(path, name, &e);
    if (!rc && !strcmp(rb_params_str(p, "as"), "x") && e.ndim == 2) {
        s->dim = e.shape[1];
        s->rows = e.shape[0];
        s->queries = 0;
    }
    return rc;
}

const rb_dataset_kind rb_dataset_safetensors = {
    "safetensors", "one tensor, by name, from a .safetensors file (F32/F16/BF16/F64), as 'x'",
    RB_PARAMS_OF(st_params), load_safetensors, shape_safetensors};
