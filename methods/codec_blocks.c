/* Block scheduling for the codecs' encode/decode pipelines (methods/codec_blocks.h). */
#include "methods/codec_blocks.h"

#include "kernels/pool.h"

typedef struct blocks_job {
    rb_codec_block_fn fn;
    void *ctx;
    size_t count, block_rows, blocks, per_slot;
} blocks_job;

/* Slot s runs blocks s * per_slot .. (s + 1) * per_slot - 1 in order, with its own scratch, and
 * stops at its first failure: the lowest failing slot holds the lowest failing block. */
static void blocks_task(void *ctx, size_t begin, size_t end) {
    blocks_job *j = ctx;
    for (size_t slot = begin; slot < end; slot++)
        for (size_t b = slot * j->per_slot; b < (slot + 1) * j->per_slot && b < j->blocks; b++) {
            size_t r0 = b * j->block_rows;
            size_t rows = j->count - r0 < j->block_rows ? j->count - r0 : j->block_rows;
            int rc = j->fn(j->ctx, slot, r0, rows);
            if (rc) {
                rb_task_fail(rc);
                return;
            }
        }
}

/* One parallel call for the whole batch, each slot a contiguous run of blocks. One call per 16
 * blocks (a block a slot) cost a wake-up and a join of every thread per 16 blocks of ~10 us
 * each: at 16 threads the 1M x 128 decode ran slower than at 4 (15.6 vs 14.6 ms on a lent
 * 16-core Xeon). The balance over threads is the same: 16 tasks per call either way. */
int rb_codec_blocks(size_t count, size_t block_rows, rb_codec_block_fn fn, void *ctx) {
    size_t blocks = (count + block_rows - 1) / block_rows;
    if (!blocks) return 0;
    size_t per = (blocks + RB_CODEC_SLOTS - 1) / RB_CODEC_SLOTS;
    blocks_job j = {fn, ctx, count, block_rows, blocks, per};
    return rb_parallel_for((blocks + per - 1) / per, 1, blocks_task, &j);
}

size_t rb_codec_block_rows(size_t n) {
    size_t rows = ((size_t) 1 << 14) / (n ? n : 1) / 32 * 32;
    return rows < 32 ? 32 : rows;
}
