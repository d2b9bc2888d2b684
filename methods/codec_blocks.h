/* Runs a codec's per-block pipeline over a batch: fixed blocks of rows (cache-sized, so every
 * stage works on data in L1/L2) spread over the kernel pool. Each row's result depends only on
 * that row, so the bits never depend on the block size or the thread count. */
#ifndef RB_CODEC_BLOCKS_H
#define RB_CODEC_BLOCKS_H

#include <stddef.h>

/* Blocks in flight at once; a codec keeps scratch for this many blocks (slot 0..SLOTS-1), and a
 * batch is split into this many runs of consecutive blocks, one task each. */
enum { RB_CODEC_SLOTS = 16 };

/* fn(ctx, slot, row0, rows) handles rows [row0, row0 + rows) with the scratch of `slot`; it
 * returns 0 or an error (after rb_error_set). The error of the lowest failing block is returned. */
typedef int (*rb_codec_block_fn)(void *ctx, size_t slot, size_t row0, size_t rows);
int rb_codec_blocks(size_t count, size_t block_rows, rb_codec_block_fn fn, void *ctx);

/* Rows per block for vectors of n floats: about 64 KiB of fp32, a multiple of 32 (the row
 * reductions take 32 rows at a time), at least 32. */
size_t rb_codec_block_rows(size_t n);

#endif
