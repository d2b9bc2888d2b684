/* Dataset registry, tensor bookkeeping and content hashes. */
#include "datasets/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/kinds.h"

static const rb_dataset_kind *const kinds[] = {
#define RB_DATASET_KIND_ENTRY_(sym) &sym,
    RB_DATASET_KINDS(RB_DATASET_KIND_ENTRY_)
#undef RB_DATASET_KIND_ENTRY_
};

const rb_dataset_kind *const *rb_dataset_kinds_all(size_t *count) {
    *count = sizeof kinds / sizeof kinds[0];
    return kinds;
}

const rb_dataset_kind *rb_dataset_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

size_t rb_tensor_numel(const rb_tensor *t) {
    size_t n = 1;
    for (size_t i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int rb_dataset_add(rb_dataset *ds, const char *name, size_t ndim, const size_t *shape,
                   rb_tensor **t) {
    if (ds->ntensors == RB_DATASET_TENSORS_MAX)
        return rb_error_set(RB_EINVAL, "dataset: more than %d tensors", RB_DATASET_TENSORS_MAX);
    if (ndim > RB_TENSOR_NDIM_MAX || strlen(name) >= sizeof ds->tensors[0].name)
        return rb_error_set(RB_EINVAL, "dataset: tensor '%s' has a bad name or rank", name);
    rb_tensor *nt = &ds->tensors[ds->ntensors];
    memset(nt, 0, sizeof *nt);
    strcpy(nt->name, name);
    nt->ndim = ndim;
    size_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] && numel > SIZE_MAX / sizeof(float) / shape[i])
            return rb_error_set(RB_EINVAL, "dataset: tensor '%s' is too large", name);
        nt->shape[i] = shape[i];
        numel *= shape[i];
    }
    nt->data = calloc(numel ? numel : 1, sizeof(float));
    if (!nt->data)
        return rb_error_set(RB_ENOMEM, "dataset: no memory for tensor '%s' (%zu floats)", name,
                            numel);
    ds->ntensors++;
    if (t) *t = nt;
    return RB_OK;
}

const rb_tensor *rb_dataset_tensor(const rb_dataset *ds, const char *name) {
    for (size_t i = 0; i < ds->ntensors; i++)
        if (strcmp(ds->tensors[i].name, name) == 0) return &ds->tensors[i];
    return NULL;
}

void rb_dataset_hash(rb_dataset *ds) {
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    for (size_t i = 0; i < ds->ntensors; i++) {
        const rb_tensor *t = &ds->tensors[i];
        uint64_t dims[RB_TENSOR_NDIM_MAX + 1] = {t->ndim};
        for (size_t d = 0; d < t->ndim; d++) dims[d + 1] = t->shape[d];
        sha256_update(&ctx, sizeof t->name, (const uint8_t *) t->name);
        sha256_update(&ctx, sizeof dims, (const uint8_t *) dims);
        sha256_update(&ctx, rb_tensor_numel(t) * sizeof(float), (const uint8_t *) t->data);
    }
    sha256_digest(&ctx, sizeof digest, digest);
    for (size_t i = 0; i < sizeof digest; i++) sprintf(ds->hash + 2 * i, "%02x", digest[i]);
}

void rb_dataset_free(rb_dataset *ds) {
    for (size_t i = 0; i < ds->ntensors; i++) free(ds->tensors[i].data);
    if (ds->signal_free) ds->signal_free(ds->signal);
    memset(ds, 0, sizeof *ds);
}

FILE *rb_open_regular(const char *path, const char **why) {
    /* O_NONBLOCK: open() of a FIFO would wait for a writer, a hang instead of an error; the
     * flag means nothing to a regular file. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *why = strerror(errno);
        close(fd);
        return NULL;
    }
    /* The readers take a file's size from fstat: a directory, pipe or device has none. */
    *why = S_ISDIR(st.st_mode)    ? "it is a directory"
           : S_ISFIFO(st.st_mode) ? "it is a FIFO (named pipe), not a regular file"
           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "it is a device, not a regular file"
           : !S_ISREG(st.st_mode)                       ? "it is not a regular file"
                                                        : NULL;
    if (*why) {
        close(fd);
        errno = 0; /* not a failed call: no errno for the caller to read */
        return NULL;
    }
    FILE *f = NULL;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0) f = fdopen(fd, "rb");
    if (!f) {
        *why = strerror(errno);
        close(fd);
    }
    return f;
}

FILE *rb_data_open(const char *path) {
    const char *why;
    FILE *f = rb_open_regular(path, &why);
    if (f) return f;
    int e = errno;
    char cwd[1024] = "";
    if (e == ENOENT && path[0] != '/' && getcwd(cwd, sizeof cwd))
        rb_error_set(RB_EIO,
                     "%s: cannot open: %s (a relative path is read from the current directory, "
                     "%s)",
                     path, why, cwd);
    else
        rb_error_set(RB_EIO, "%s: cannot open: %s", path, why);
    return NULL;
}
