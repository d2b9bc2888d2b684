/* Paper claims are tests: every YAML file in configs/paper runs through the binary (at the CI size
 * the config itself chooses, latency pass skipped) and must exit 0, i.e. every expect: PASSes. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"

TestSuite(paper, .fini = rbt_tmpdir_remove);

Test(paper, every_claim_config_passes, .timeout = 1200) {
    glob_t g;
    if (glob("configs/paper/*.yaml", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        globfree(&g);
        cr_skip_test("no configs/paper/*.yaml yet");
    }
    const char *dir = rbt_tmpdir_make("paper");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char args[1024], *out, *err;
        snprintf(args, sizeof args, "run %s -o %s/%zu --quick", g.gl_pathv[i], dir, i);
        int st = rbt_run_cli(args, &out, &err);
        cr_expect_eq(st, 0, "%s: exit %d\n%s%s", g.gl_pathv[i], st, out, err);
        free(out);
        free(err);
    }
    globfree(&g);
}

/* Every config the repository ships, examples included, passes the dry run: a config whose
 * parameters, data or metrics do not fit together fails here in seconds, not in a user's run. */
Test(paper, every_shipped_config_passes_the_dry_run, .timeout = 300) {
    glob_t g;
    int grc = glob("configs/*.yaml", 0, NULL, &g);
    if (grc == 0 || grc == GLOB_NOMATCH) grc = glob("configs/*/*.yaml", GLOB_APPEND, NULL, &g);
    cr_assert(grc == 0 && g.gl_pathc > 0, "no configs/*.yaml (run from the repository root)");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char args[1024], *out, *err;
        snprintf(args, sizeof args, "run %s --dry-run", g.gl_pathv[i]);
        int st = rbt_run_cli(args, &out, &err);
        cr_expect_eq(st, 0, "%s: exit %d\n%s", g.gl_pathv[i], st, err);
        cr_expect(strstr(out, "every one passes the preflight"), "%s:\n%s", g.gl_pathv[i], out);
        cr_expect_str_empty(err, "%s warns:\n%s", g.gl_pathv[i], err);
        free(out);
        free(err);
    }
    globfree(&g);
}
