/* Block scheduling for the codecs' encode/decode pipelines (methods/codec_blocks.h). */
#include "methods/codec_blocks.h"

#include "kernels/pool.h"

typedef struct blocks_job {
    rb_codec_block_fn fn;
    void *ctx;
    size_t row0, count, block_rows;
} blocks_job;

static void blocks_task(void *ctx, size_t begin, size_t end) {
    blocks_job *j = ctx;
    for (size_t slot = begin; slot < end; slot++) {
        size_t r0 = j->row0 + slot * j->block_rows;
        size_t rows = j->count - r0 < j->block_rows ? j->count - r0 : j->block_rows;
        int rc = j->fn(j->ctx, slot, r0, rows);
        if (rc) {
            rb_task_fail(rc);
            return;
        }
    }
}

int rb_codec_blocks(size_t count, size_t block_rows, rb_codec_block_fn fn, void *ctx) {
    size_t span = block_rows * RB_CODEC_SLOTS;
    for (size_t r0 = 0; r0 < count; r0 += span) {
        size_t left = count - r0, nb = ((left < span ? left : span) + block_rows - 1) / block_rows;
        blocks_job j = {fn, ctx, r0, count, block_rows};
        int rc = rb_parallel_for(nb, 1, blocks_task, &j);
        if (rc) return rc;
    }
    return 0;
}

size_t rb_codec_block_rows(size_t n) {
    size_t rows = ((size_t) 1 << 14) / (n ? n : 1) / 32 * 32;
    return rows < 32 ? 32 : rows;
}
