/* The sgemm cases of codec_bits_table.h on other OpenBLAS cores: {core, method, params, d,
 * count, code hash, decode hash} (see test_codec_bits.c). Cooperlake: a Zen 4, 2026-11-24, where
 * the same cases matched the reference kernels' 1-thread run at 1 and 2 threads. */
{"Cooperlake", "turboquant_mse",      "bits=2,rotation=haar", 128,
 333,          0x38262f233835b2e0ull, 0x2966d3435a5ff4f9ull},
    {"Cooperlake",          "turboquant_prod",    "bits=3,mode=paper,rotation=rht", 128, 333,
     0xd8baa3f5b38f4cc9ull, 0x2e3d800b2cde6cc6ull},
    /* re-recorded 2026-11-24 (code mode's S without the sign fix, no gamma at b = 1), after
     * they matched the reference kernels' 1-thread run at 1 and 2 threads */
    {"Cooperlake",          "turboquant_prod",    "bits=3,mode=code,rotation=rht", 128, 333,
     0xef129c41c823c69dull, 0x2f902c146046f67aull},
    {"Cooperlake", "turboquant_prod",     "bits=1,rotation=haar", 128,
     333,          0x0399a1d1123bfae2ull, 0xb61be72ea83a8628ull},
    {"Cooperlake",         "qjl", "bits=1,norm_bits=32", 128, 333, 0x18bd7a6776934e2aull,
     0x6e7d25556864a775ull},
    {"Cooperlake",
     "qjl",
     "bits=2,projection=orthogonal,rotation=rht,norm_bits=32",
     128,
     333,
     0x696e8f270d9e1ac3ull,
     0x8e19a670c42f5cebull},
