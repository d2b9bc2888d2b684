/* Tests for result records: JSON form, results.jsonl appender/reader with done markers, CSV. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/record.h"
#include "kernels/kernels.h"

static const rb_param_def defs[] = {
    RB_PARAM_INT("bits", "2", 1, 8, "bits per coordinate"),
    RB_PARAM_FLOAT("scale", "0.5", 0, 10, "scale"),
    RB_PARAM_BOOL("unbiased", "false", "unbiased"),
    RB_PARAM_ENUM("rotation", "rht", "rht|haar|none", "rotation"),
};

static char tmpdir[256];

static void mktmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rbtest_record_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rmtmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static rb_params mkparams(int bits, int unbiased) {
    rb_params p;
    cr_assert_eq(rb_params_init(&p, RB_PARAMS_OF(defs)), 0);
    char b[8];
    snprintf(b, sizeof b, "%d", bits);
    cr_assert_eq(rb_params_set(&p, "bits", b), 0);
    cr_assert_eq(rb_params_set(&p, "unbiased", unbiased ? "true" : "false"), 0);
    cr_assert_eq(rb_params_set(&p, "rotation", "haar"), 0);
    return p;
}

static rb_record mkrecord(const rb_params *p, const char *key, const char *metric, double v) {
    rb_record r = {0};
    r.dataset = "sphere128";
    r.dataset_hash = "abc";
    r.dparams = NULL;
    r.family = "codec";
    r.method = "turboquant_mse";
    r.label = "tq";
    r.method_version = 3;
    r.params = p;
    r.backend = "cpu";
    r.seed = 42;
    r.metric = metric;
    r.value = v;
    r.unit = "";
    r.n = 1000;
    r.stderr_ = NAN;
    r.items_per_s = r.gbps = r.gflops = r.frac_bw = r.frac_peak = r.cpu_wait = NAN;
    r.cell_key = key;
    return r;
}

static void write_file(const char *path, const char *text, const char *mode) {
    FILE *f = fopen(path, mode);
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(record, json_round_trip_typed) {
    rb_params p = mkparams(3, 1);
    rb_record r = mkrecord(&p, "k1", "vnmse", 0.0345);
    double samples[3] = {1e-3, 2e-3, NAN};
    r.samples = samples;
    r.nsamples = 3;
    r.seed = UINT64_MAX - 5; /* above INT64_MAX: written as a string */
    json_t *o = rb_record_to_json(&r);
    cr_assert_not_null(o);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    json_error_t err;
    json_t *back = json_loads(text, 0, &err);
    cr_assert_not_null(back, "reparse failed: %s in %s", err.text, text);

    /* Field order follows the table. */
    size_t nf;
    const rb_field *fields = rb_record_fields(&nf);
    const char *prev = text;
    for (size_t i = 0; i < nf; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\":", fields[i].name);
        const char *at = strstr(text, quoted);
        cr_assert_not_null(at, "field %s missing in %s", fields[i].name, text);
        cr_assert_geq(at, prev, "field %s out of order in %s", fields[i].name, text);
        prev = at;
    }

    json_t *params = json_object_get(back, "params");
    cr_assert(json_is_integer(json_object_get(params, "bits")));
    cr_assert_eq(json_integer_value(json_object_get(params, "bits")), 3);
    cr_assert(json_is_real(json_object_get(params, "scale")));
    cr_assert_float_eq(json_real_value(json_object_get(params, "scale")), 0.5, 0);
    cr_assert(json_is_true(json_object_get(params, "unbiased")));
    cr_assert_str_eq(json_string_value(json_object_get(params, "rotation")), "haar");
    cr_assert(json_is_object(json_object_get(back, "dparams")));
    cr_assert_eq(json_object_size(json_object_get(back, "dparams")), 0);

    cr_assert(json_is_null(json_object_get(back, "stderr")));
    cr_assert(isnan(rb_row_double(back, "stderr")));
    cr_assert_eq(rb_row_double(back, "value"), 0.0345); /* exact: 17 digits */
    cr_assert_str_eq(rb_row_str(back, "metric"), "vnmse");
    cr_assert_str_eq(rb_row_str(back, "family"), "codec");
    cr_assert_eq(rb_row_int(back, "method_version", -1), 3);
    cr_assert_eq(rb_row_int(back, "n", -1), 1000);
    uint64_t seed = 0;
    cr_assert_eq(rb_row_u64(back, "seed", &seed), 0);
    cr_assert_eq(seed, UINT64_MAX - 5);
    cr_assert(rb_row_is_latency(back));
    json_t *s = json_object_get(back, "samples");
    cr_assert_eq(json_array_size(s), 3);
    cr_assert(json_is_null(json_array_get(s, 2)));
    cr_assert(json_is_null(json_object_get(back, "kernel_variants")));

    /* Small seeds stay integers. */
    r.seed = 7;
    r.samples = NULL;
    json_t *o2 = rb_record_to_json(&r);
    cr_assert(json_is_integer(json_object_get(o2, "seed")));
    cr_assert(json_is_null(json_object_get(o2, "samples")));
    cr_assert_not(rb_row_is_latency(o2));
    char *k1 = rb_row_key(back), *k2 = rb_row_key(o2);
    cr_assert_str_eq(k1, k2); /* seed and samples are not part of the identity */
    free(k1);
    free(k2);
    json_decref(o2);
    free(text);
    json_decref(back);
}

Test(record, key_pools_repeats) {
    rb_params p = mkparams(2, 0), q = mkparams(3, 0);
    rb_record a = mkrecord(&p, "k1", "vnmse", 0.1), b = a, c = a;
    b.repeat = 1;
    b.seed = 99;
    b.value = 0.2;
    c.params = &q;
    json_t *ja = rb_record_to_json(&a), *jb = rb_record_to_json(&b), *jc = rb_record_to_json(&c);
    char *ka = rb_row_key(ja), *kb = rb_row_key(jb), *kc = rb_row_key(jc);
    cr_assert_str_eq(ka, kb, "repeats must share a key: %s vs %s", ka, kb);
    cr_assert_str_neq(ka, kc);
    free(ka);
    free(kb);
    free(kc);
    json_decref(ja);
    json_decref(jb);
    json_decref(jc);
}

Test(record, appender_markers_and_resume) {
    mktmp();
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/a/b/run", tmpdir); /* parents are created */
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    rb_params p = mkparams(2, 0);

    rb_results *res;
    cr_assert_eq(rb_results_open(dir, &res), 0, "%s", rb_error_detail());
    rb_record r1 = mkrecord(&p, "cell1", "vnmse", 0.1), r2 = mkrecord(&p, "cell1", "bits", 2);
    cr_assert_eq(rb_results_write(res, &r1), 0);
    cr_assert_eq(rb_results_write(res, &r2), 0);
    cr_assert_eq(rb_results_end_cell(res, "cell1"), 0);
    /* cell2 starts but is interrupted (no marker). */
    rb_record r3 = mkrecord(&p, "cell2", "vnmse", 0.3);
    cr_assert_eq(rb_results_write(res, &r3), 0);
    rb_record nokey = mkrecord(&p, NULL, "vnmse", 0.3);
    cr_assert_eq(rb_results_write(res, &nokey), RB_EINVAL);
    rb_results_close(res);

    json_t *done, *rows;
    cr_assert_eq(rb_results_done_cells(dir, &done), 0);
    cr_assert_eq(json_object_size(done), 1);
    cr_assert(json_is_true(json_object_get(done, "cell1")));
    json_decref(done);
    cr_assert_eq(rb_results_read(path, &rows), 0);
    cr_assert_eq(json_array_size(rows), 2);
    cr_assert_str_eq(rb_row_str(json_array_get(rows, 0), "metric"), "vnmse");
    cr_assert_str_eq(rb_row_str(json_array_get(rows, 1), "metric"), "bits");
    json_decref(rows);

    /* A torn last line (killed mid-write). */
    write_file(path, "{\"dataset\":\"sphere128\",\"metr", "a");
    cr_assert_eq(rb_results_read(path, &rows), 0); /* warning on stderr, not an error */
    cr_assert_eq(json_array_size(rows), 2);
    json_decref(rows);

    /* Resume: a new session rewrites cell2 completely; the stale cell2 row is not duplicated
     * and the torn tail is cut off before appending. */
    cr_assert_eq(rb_results_open(dir, &res), 0, "%s", rb_error_detail());
    rb_record r4 = mkrecord(&p, "cell2", "vnmse", 0.4), r5 = mkrecord(&p, "cell2", "bits", 2);
    cr_assert_eq(rb_results_write(res, &r4), 0);
    cr_assert_eq(rb_results_write(res, &r5), 0);
    cr_assert_eq(rb_results_end_cell(res, "cell2"), 0);
    rb_results_close(res);
    cr_assert_eq(rb_results_read(path, &rows), 0, "%s", rb_error_detail());
    cr_assert_eq(json_array_size(rows), 4);
    json_t *row = json_array_get(rows, 2);
    cr_assert_str_eq(rb_row_str(row, "cell_key"), "cell2");
    cr_assert_eq(rb_row_double(row, "value"), 0.4);
    json_decref(rows);
    cr_assert_eq(rb_results_done_cells(dir, &done), 0);
    cr_assert_eq(json_object_size(done), 2);
    json_decref(done);

    /* A cell done twice: the later rows replace the earlier ones. */
    cr_assert_eq(rb_results_open(dir, &res), 0);
    rb_record r6 = mkrecord(&p, "cell1", "vnmse", 0.6);
    cr_assert_eq(rb_results_write(res, &r6), 0);
    cr_assert_eq(rb_results_end_cell(res, "cell1"), 0);
    rb_results_close(res);
    cr_assert_eq(rb_results_read(path, &rows), 0);
    cr_assert_eq(json_array_size(rows), 3);
    cr_assert_eq(rb_row_double(json_array_get(rows, 0), "value"), 0.6);
    json_decref(rows);
    rmtmp();
}

/* A failed cell's marker ends its rows without making them results; the cell stays listed as
 * failed until a later cell_done for it, and a failure never takes back a cell done before. */
Test(record, failed_cells) {
    mktmp();
    char path[600];
    snprintf(path, sizeof path, "%s/results.jsonl", tmpdir);
    rb_params p = mkparams(4, 0);
    rb_results *res;
    cr_assert_eq(rb_results_open(tmpdir, &res), 0, "%s", rb_error_detail());
    rb_record a = mkrecord(&p, "a", "vnmse", 0.1), b = mkrecord(&p, "b", "vnmse", 0.2),
              c = mkrecord(&p, "c", "vnmse", 0.3);
    cr_assert_eq(rb_results_write(res, &a), 0);
    cr_assert_eq(rb_results_end_cell(res, "a"), 0);
    cr_assert_eq(rb_results_write(res, &b), 0); /* b's row, then b fails */
    cr_assert_eq(rb_results_fail_cell(res, "b", "b: out of range"), 0);
    cr_assert_eq(rb_results_fail_cell(res, "c", "c: first"), 0);
    cr_assert_eq(rb_results_fail_cell(res, "a", "a: a later failure"), 0);
    rb_results_close(res);

    json_t *rows, *failed, *done;
    cr_assert_eq(rb_results_read(path, &rows), 0, "%s", rb_error_detail());
    cr_assert_eq(json_array_size(rows), 1);
    cr_assert_str_eq(rb_row_str(json_array_get(rows, 0), "cell_key"), "a");
    json_decref(rows);
    cr_assert_eq(rb_results_failed_cells(tmpdir, &failed), 0, "%s", rb_error_detail());
    cr_assert_eq(json_object_size(failed), 2);
    cr_assert_str_eq(json_string_value(json_object_get(failed, "b")), "b: out of range");
    cr_assert_str_eq(json_string_value(json_object_get(failed, "c")), "c: first");
    json_decref(failed);
    cr_assert_eq(rb_results_done_cells(tmpdir, &done), 0);
    cr_assert_eq(json_object_size(done), 1);
    json_decref(done);

    /* A resumed session: b succeeds, c fails again with another message. */
    cr_assert_eq(rb_results_open(tmpdir, &res), 0);
    cr_assert_eq(rb_results_write(res, &b), 0);
    cr_assert_eq(rb_results_end_cell(res, "b"), 0);
    cr_assert_eq(rb_results_write(res, &c), 0);
    cr_assert_eq(rb_results_fail_cell(res, "c", "c: second"), 0);
    rb_results_close(res);
    cr_assert_eq(rb_results_failed_cells(tmpdir, &failed), 0);
    cr_assert_eq(json_object_size(failed), 1);
    cr_assert_str_eq(json_string_value(json_object_get(failed, "c")), "c: second");
    json_decref(failed);
    cr_assert_eq(rb_results_read(path, &rows), 0);
    cr_assert_eq(json_array_size(rows), 2);
    json_decref(rows);
    cr_assert_eq(rb_results_failed_cells("/nonexistent", &failed), 0);
    cr_assert_eq(json_object_size(failed), 0);
    json_decref(failed);
    rmtmp();
}

Test(record, malformed_lines_name_file_and_line) {
    mktmp();
    char path[600];
    snprintf(path, sizeof path, "%s/results.jsonl", tmpdir);
    json_t *rows = NULL;
    const char *cases[][2] = {
        {"{\"opened\":\"x\"}\n{not json}\n{\"cell_done\":\"a\"}\n", ":2: invalid JSON"},
        {"{\"opened\":\"x\"}\n[1,2]\n", ":2: expected a JSON object"},
        {"{\"opened\":\"x\"}\n{\"metric\":\"m\",\"cell_key\":\"a\"}\n{\"value\":1}\n"
         "{\"cell_done\":\"a\"}\n",
         ":3: a record needs"},
        {"{\"cell_done\":5}\n", ":1: \"cell_done\" must be a string"},
        {"{\"cell_failed\":[]}\n", ":1: \"cell_failed\" must be a string"},
        {"{\"cell_failed\":\"a\"}\n", ":1: \"error\" must be a string"},
    /* A field of the wrong type, which a reader would take as missing (a value as text, a
     * negative count): each field type of the record table once. */
#define TYPED(field) \
    "{\"opened\":\"x\"}\n{\"metric\":\"m\",\"cell_key\":\"a\"," field "}\n{\"cell_done\":\"a\"}\n"
        {TYPED("\"value\":\"0.5\""), ":2: field \"value\" must be a number or null"},
        {TYPED("\"label\":7"), ":2: field \"label\" must be a string or null"},
        {TYPED("\"repeat\":1.5"), ":2: field \"repeat\" must be an integer or null"},
        {TYPED("\"n\":-3"), ":2: field \"n\" must be a non-negative integer or null"},
        {TYPED("\"seed\":-5"), ":2: field \"seed\" must be an unsigned 64-bit integer"},
        {TYPED("\"seed\":\"12x\""), ":2: field \"seed\" must be an unsigned 64-bit integer"},
        {TYPED("\"params\":[1]"), ":2: field \"params\" must be an object or null"},
        {TYPED("\"samples\":[1,\"x\"]"), ":2: field \"samples\" must be an array of numbers"},
        {TYPED("\"samples\":{}"), ":2: field \"samples\" must be an array of numbers"},
        /* Control characters in text, which the config refuses and the report would print into
         * its tables and compare onto the terminal. */
        {TYPED("\"label\":\"a\\nb\""), ":2: field \"label\" must be text without control"},
        {TYPED("\"dataset\":\"\\u001b[2J\""), ":2: field \"dataset\" must be text without"},
        {TYPED("\"backend\":\"cpu\\t\""), ":2: field \"backend\" must be text without"},
        {TYPED("\"params\":{\"rotation\":\"rht\\r\"}"),
         ":2: field \"params\" must be an object of text without control"},
        {TYPED("\"dparams\":{\"a\\u007f\":1}"), ":2: field \"dparams\" must be an object of text"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i][0], "w");
        cr_assert_eq(rb_results_read(path, &rows), RB_EFORMAT, "case %zu", i);
        char want[700];
        snprintf(want, sizeof want, "%s%s", path, cases[i][1]);
        cr_assert(strstr(rb_error_detail(), want), "case %zu: got '%s', want '%s'", i,
                  rb_error_detail(), want);
    }
    /* What the writer itself writes passes: null for a non-finite number, a seed above
     * INT64_MAX as its decimal text, null among the samples. */
    write_file(path,
               TYPED("\"value\":null,\"seed\":\"18446744073709551615\",\"samples\":[1,null],"
                     "\"n\":0,\"params\":{}"),
               "w");
    cr_assert_eq(rb_results_read(path, &rows), 0, "%s", rb_error_detail());
    cr_assert_eq(json_array_size(rows), 1);
    json_decref(rows);
#undef TYPED
    /* A torn last line that happens to be valid JSON (only its newline is missing) is still
     * dropped: markers count only once their newline is written. */
    write_file(path, "{\"metric\":\"m\",\"cell_key\":\"a\"}\n{\"cell_done\":\"a\"}", "w");
    cr_assert_eq(rb_results_read(path, &rows), 0);
    cr_assert_eq(json_array_size(rows), 0);
    json_decref(rows);
    cr_assert_eq(rb_results_read("/nonexistent/results.jsonl", &rows), RB_EIO);
    json_t *done;
    cr_assert_eq(rb_results_done_cells("/nonexistent", &done), 0);
    cr_assert_eq(json_object_size(done), 0);
    json_decref(done);
    rmtmp();
}

Test(record, csv_quoting) {
    mktmp();
    char path[600];
    snprintf(path, sizeof path, "%s/results.csv", tmpdir);
    rb_params p = mkparams(4, 1);
    rb_record r = mkrecord(&p, "k", "vnmse", 0.25);
    r.label = "eden, \"unbiased\"";
    r.kernel_variants = "fwht_f32=avx512,quant=avx2";
    double samples[2] = {1, 2};
    r.samples = samples;
    r.nsamples = 2;
    json_t *rows = json_array();
    json_array_append_new(rows, rb_record_to_json(&r));
    cr_assert_eq(rb_results_write_csv(path, rows), 0);
    json_decref(rows);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    const char *head =
        "dataset,dataset_hash,dparams,family,method,label,method_version,params,"
        "backend,seed,repeat,metric,slice,value,unit,n,stderr,items_per_s,items_unit,"
        "gbps,gflops,frac_bw,frac_peak,cpu_wait,kernel_variants,cell_key\r\n";
    cr_assert(!strncmp(buf, head, strlen(head)), "header: %s", buf);
    const char *row = buf + strlen(head);
    const char *want = "sphere128,abc,,codec,turboquant_mse,\"eden, \"\"unbiased\"\"\",3,"
                       "bits=4;scale=0.5;unbiased=true;rotation=haar,cpu,42,0,vnmse,,0.25,,1000,"
                       ",,,,,,,,\"fwht_f32=avx512,quant=avx2\",k\r\n";
    cr_assert_str_eq(row, want);
    rmtmp();
}

Test(record, fmt_double_shortest) {
    char b[32];
    rb_fmt_double(b, sizeof b, 0.1);
    cr_assert_str_eq(b, "0.1");
    rb_fmt_double(b, sizeof b, 1.0 / 3.0);
    cr_assert_eq(strtod(b, NULL), 1.0 / 3.0);
    rb_fmt_double(b, sizeof b, NAN);
    cr_assert_str_eq(b, "nan");
}
