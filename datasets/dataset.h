/* The datasets layer's public header: file loaders (.npy so far) and, later, the generators. */
#ifndef RB_DATASET_H
#define RB_DATASET_H

#include <stddef.h>

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

/* Frees out->data and zeroes *out; safe on a zeroed or already freed array. */
void rb_npy_free(rb_npy_array *a);

/* Writes a C-order array of count = prod(shape) elements (ndim = 0: one element). */
int rb_npy_write(const char *path, enum rb_npy_dtype dtype, int ndim, const size_t *shape,
                 const void *data);

#endif
