/* The datasets layer's public header: named float tensors produced by generators and loaders,
 * the registry of dataset kinds with their parameter tables, and file readers. */
#ifndef RB_DATASET_H
#define RB_DATASET_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "kernels/kernels.h"

enum { RB_TENSOR_NDIM_MAX = 4, RB_DATASET_TENSORS_MAX = 8 };

/* A dense row-major float32 tensor owned by its dataset. */
typedef struct rb_tensor {
    char name[32]; /* "x", "queries", "W", "X", "K", "V", "Q", ... */
    size_t ndim;
    size_t shape[RB_TENSOR_NDIM_MAX];
    float *data;
} rb_tensor;

size_t rb_tensor_numel(const rb_tensor *t);

/* A dataset is a set of tensors; each method family reads the ones it needs (codecs: "x" = base
 * vectors count x dim, "queries" = nq x dim; layers: "W" out x in, "X" tokens x in; KV: "K", "V",
 * "Q" tokens x heads x head_dim). Sparse signals are too long to store: they are sampled through
 * `sample` (x[idx[i]] into out[i]) over N = 2^log2n. */
/* The largest magnitude the KV loaders (kv_npy, kv_safetensors) accept, 2^48 (2.8e14). KV
 * caches hold activations (fp16 ones are below 65504); a larger value is a corrupt or mislabelled
 * dump. Past it fp32 overflows silently: the evaluator's scores q.k (up to head_dim x |q| x |k|:
 * 2^16 x 2^96 here), and the methods' rotations (a gain of up to sqrt of the Hadamard's order)
 * and ranges (max - min) on the way to their scales. The kv_cache generator stays far below it
 * by its parameters' ranges. */
#define RB_KV_ABS_MAX 0x1p48

/* How a dataset gets queries, for the errors of metrics and ops that need them (the key differs
 * between generators and loaders). */
#define RB_QUERIES_HINT                                                                       \
    "'queries: N' on a generated dataset; 'queries_path' (npy, fvecs), 'q_path' (kv_npy) or " \
    "'q_tensor' (kv_safetensors) on a loaded one"

typedef struct rb_dataset {
    rb_tensor tensors[RB_DATASET_TENSORS_MAX];
    size_t ntensors;
    unsigned log2n;
    int (*sample)(const struct rb_dataset *ds, const uint64_t *idx, size_t count, double *out);
    void *signal; /* the sampler's state, freed by rb_dataset_free through signal_free */
    void (*signal_free)(void *signal);
    /* Optional, for generated signals: the same definition drawn again for trial `trial` (seed
     * rb_seed_derive(this seed, tag, trial)) into *out, which the caller frees. The sparse
     * evaluator draws a fresh signal per trial with it. */
    int (*redraw)(const struct rb_dataset *ds, uint64_t trial, struct rb_dataset *out);
    char
        hash[65]; /* sha256 (hex) of the tensors' shapes and bytes, or of the signal's definition */
} rb_dataset;

/* What a kind's parameters (and, for a file, its header) fix about its data before anything is
 * drawn or read: enough for the runner to check every cell's method and metrics against its data
 * before the first cell runs. 0 = not known or not applicable (a file stored under another name
 * than 'x'), except `queries`, where 0 says there are none. */
typedef struct rb_dataset_shape {
    size_t dim;  /* vectors (codec data): the length of a row of x */
    size_t rows; /* vectors: the rows of x (the base set of recall@K) */
    /* The queries the evaluators can use, or RB_SHAPE_UNKNOWN (what the runner sets before it
     * asks the hook): for vectors the rows of 'queries' (0 when there are none; a file of queries
     * that are not of x's dim is the hook's error, as it is load's); for KV data the query tokens
     * of Q (its token axis; 0 without Q). */
    size_t queries;
    size_t heads, head_dim, tokens; /* KV data: K and V are tokens x heads x head_dim */
    size_t calib_tokens;            /* KV data: calibration tokens K_calib, V_calib (0: none) */
    double rope_base;               /* KV data: the keys' RoPE base, 0 when they have none */
    int signal; /* 1: a sampled sparse signal (the sparse family's data: no vectors, no KV) */
} rb_dataset_shape;

#define RB_SHAPE_UNKNOWN SIZE_MAX

/* A generator or loader, with its declared parameters. `load` fills *ds deterministically from
 * (params, seed); loaders ignore the seed. Errors name the parameter or file. `shape` is
 * optional: generators fill it from their parameters and return the error load would give for
 * parameters that do not go together (sinks above tokens, ...); the file loaders read
 * only their files' headers and return the error load would give for every defect a header shows
 * (a missing file, a bad header or dtype, a size that does not match the shape, K and V of
 * different shapes, a calibration split the dump cannot give), so that a run finds them before
 * its first cell. What only the data show (NaN, Inf; KV values past RB_KV_ABS_MAX; an fvecs
 * vector of another dimension in a file whose size is a whole number of vector 0's records) is
 * still found by load. */
typedef struct rb_dataset_kind {
    const char *name;
    const char *summary;
    const rb_param_def *params;
    size_t nparams;
    int (*load)(const rb_params *p, uint64_t seed, rb_dataset *ds);
    int (*shape)(const rb_params *p, rb_dataset_shape *s);
} rb_dataset_kind;

const rb_dataset_kind *const *rb_dataset_kinds_all(size_t *count);
const rb_dataset_kind *rb_dataset_kind_find(const char *name);

/* Adds a tensor of the given shape (allocated, zeroed) and returns it through *t. */
int rb_dataset_add(rb_dataset *ds, const char *name, size_t ndim, const size_t *shape,
                   rb_tensor **t);
const rb_tensor *rb_dataset_tensor(const rb_dataset *ds, const char *name);
/* Computes ds->hash over every tensor (name, shape, bytes) in order. */
void rb_dataset_hash(rb_dataset *ds);

/* path opened for reading, or NULL with RB_EIO set: "PATH: cannot open: REASON", and for a
 * relative path that does not exist, the directory it was looked for in (a config's data paths
 * are read from the current directory, not the config file's). */
FILE *rb_data_open(const char *path);
/* path opened for reading when it is a regular file, else NULL with *why saying what stopped it
 * (strerror, or that it is a directory, FIFO or device: those are refused without blocking, as a
 * FIFO's open would). The one opener of every input file: data files and configs. */
FILE *rb_open_regular(const char *path, const char **why);
void rb_dataset_free(rb_dataset *ds);

/* ---- .npy files (NumPy format versions 1.0, 2.0, 3.0) ----------------------------------------
 *
 * Read: dtypes '<f4', '<f8', '<f2' (and '=' for '<' on this little-endian host), converted to
 * float32 or float64 as the caller asks; C order only; any shape (0-d included, at most
 * RB_NPY_MAX_DIMS axes). bfloat16: NumPy has no bfloat16, and np.save of an ml_dtypes bfloat16
 * array writes descr '<V2' (or '|V2'), which is indistinguishable from any other 2-byte void type
 * (ml_dtypes issue #41), so it is read as bfloat16 only when the caller passes
 * RB_NPY_V2_AS_BF16; the explicit descr 'bfloat16' (written by the usual workaround that stores
 * str(dtype)) is always accepted. Everything else is RB_EFORMAT with a message naming the file
 * and the problem: bad magic, unsupported version, truncated header, malformed header dict,
 * unsupported or big-endian dtype, fortran_order True, shapes whose size overflows, data shorter
 * (or longer) than the shape says. Unreadable files are RB_EIO.
 *
 * Write: float32 / float64, version 1.0 header padded to a 64-byte boundary, as np.save does. */

#define RB_NPY_MAX_DIMS 32

enum rb_npy_dtype { RB_NPY_F32 = 0, RB_NPY_F64 = 1 };

enum rb_npy_flags {
    /* Reject NaN/Inf in the data (and float64 values that overflow float32 on conversion)
     * with RB_ENUMERIC naming the first flat index. Loaders for accuracy runs must set it. */
    RB_NPY_CHECK_FINITE = 1u << 0,
    /* Read '<V2' / '|V2' as bfloat16 (see above). */
    RB_NPY_V2_AS_BF16 = 1u << 1,
    /* The caller's config has the dataset parameter v2_as_bf16 (which sets RB_NPY_V2_AS_BF16):
     * the '<V2' error names it. Without this flag the error says only how to save the file so
     * that it is read as bfloat16, there being no option to name. */
    RB_NPY_V2_KEY = 1u << 2,
};

typedef struct rb_npy_array {
    int ndim;
    size_t shape[RB_NPY_MAX_DIMS];
    size_t count;            /* product of the shape (1 for 0-d) */
    enum rb_npy_dtype dtype; /* what data holds: the dtype the caller asked for */
    void *data;              /* count elements, C order; owned, release with rb_npy_free */
    char descr[16];          /* the file's dtype descr, e.g. "<f2" */
} rb_npy_array;

/* Reads path into *out (zeroed on failure). flags: enum rb_npy_flags. */
int rb_npy_read(const char *path, enum rb_npy_dtype want, unsigned flags, rb_npy_array *out);

/* Reads only the header of path: ndim, shape, count and descr of *out (data NULL, dtype unset;
 * zeroed on failure), after every check rb_npy_read makes before it reads the data, the file's
 * size against the shape included, with the same errors (both read the header through one
 * function). The data's own checks (RB_NPY_CHECK_FINITE) need the data and are not made. */
int rb_npy_read_header(const char *path, unsigned flags, rb_npy_array *out);

/* Frees out->data and zeroes *out; safe on a zeroed or already freed array. */
void rb_npy_free(rb_npy_array *a);

/* Writes a C-order array of count = prod(shape) elements (ndim = 0: one element). */
int rb_npy_write(const char *path, enum rb_npy_dtype dtype, int ndim, const size_t *shape,
                 const void *data);

/* ---- .safetensors files ------------------------------------------------------------------
 *
 * An 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, ...,
 * "__metadata__": {...}}, then the data section (offsets relative to it), which the tensors'
 * offsets must tile: no hole, no overlap, no trailing bytes, as the format requires. Tensors of
 * dtype F32, F16, BF16 or F64 and at most RB_TENSOR_NDIM_MAX axes are read. */

typedef struct rb_safetensors_entry {
    size_t ndim;
    size_t shape[RB_TENSOR_NDIM_MAX];
    uint64_t numel;
    char dtype[8];   /* "F32", "F16", "BF16" or "F64" */
    uint64_t offset; /* of the first byte in the file */
    uint64_t nbytes; /* numel times the dtype's size */
} rb_safetensors_entry;

/* Reads the header of path and checks the entry of `tensor`: its dtype, shape and data offsets,
 * within the file's size. The errors name the file and the tensor (RB_EIO unreadable, RB_EFORMAT
 * a malformed header or entry, RB_EINVAL no such tensor or too many axes, RB_ENOTSUP another
 * dtype); the safetensors kind's load reads the data after this check, so the two give the same
 * error for the same defect. */
int rb_safetensors_read_header(const char *path, const char *tensor, rb_safetensors_entry *out);

#endif
