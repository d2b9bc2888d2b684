/* The run's latency pass (config `latency:`): one codec cell's encode, decode and inner-product
 * estimation timed through Google Benchmark, one record per op. The runner calls it after the
 * cell's accuracy pass; this file owns the timed bodies and what they need. */
#ifndef RB_LATENCY_H
#define RB_LATENCY_H

#include <stdint.h>

#include "datasets/dataset.h"
#include "harness/config.h"
#include "harness/limits.h"
#include "harness/record.h"
#include "methods/method.h"

/* One cell, as the runner hands it over. */
typedef struct rb_latency_cell {
    const rb_config *cfg;     /* its latency section: ops, batch, min_time, repetitions */
    const rb_limit *limit;    /* copy bandwidth and fp32 add peak measured in this run at this
                               * thread count, or NULL (then no fractions) */
    const rb_dataset *ds;     /* the cell's data */
    const rb_method *m;       /* a codec: a vector codec or a KV method */
    const rb_params *mparams; /* the cell's method parameters */
    uint64_t seed;            /* the cell's method seed (instances as the accuracy pass makes) */
    const char *dataset;      /* the dataset entry's name, for messages */
    rb_record base;           /* the cell's record; each row fills metric, value and rates */
    rb_results *res;          /* where the rows go */
} rb_latency_cell;

/* Times the ops the config names and writes one `<op>_latency` row per op: KV methods, and vector
 * codecs on KV data (K and V, no 'x'), through the KV path (one call covers the whole cache, all
 * layers), the rest on 'x' (`batch` vectors a call). An op that cannot be timed (inner_product
 * without queries) is an error naming the dataset, never a silent skip. */
int rb_latency_run(const rb_latency_cell *c);

/* RB_OK, or the error the pass gives when the config times inner_product (latency: ops) and the
 * cell's data have no queries it can use (have_queries 0): on the KV path (kv) tensor 'Q', else
 * queries of dimension dim. The pass and the run's preflight decide through this, so that a cell
 * is refused before the first runs with the words its own pass would use. */
int rb_latency_check_queries(const rb_config *cfg, int kv, size_t dim, const char *dataset,
                             int have_queries);

/* Whether the cell takes the KV path (a KV method, or a vector codec on K and V without 'x'),
 * where the latency `batch` key does not apply. */
int rb_latency_is_kv(const rb_method *m, const rb_dataset *ds);

#endif
