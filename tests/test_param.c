/* Parameter tables: defaults, parsing, range/type/choice errors with the parameter named. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "harness/record.h"
#include "kernels/kernels.h"

static const rb_param_def defs[] = {
    RB_PARAM_INT("bits", "4", 1, 8, "bits per coordinate"),
    RB_PARAM_FLOAT("clip", "1.0", 0.05, 1.0, "clip ratio"),
    RB_PARAM_BOOL("sym", "false", "symmetric"),
    RB_PARAM_ENUM("rotation", "rht", "rht|haar|none", "rotation"),
    RB_PARAM_STRING("tensor", NULL, "tensor name (required)"),
};
enum { NDEFS = sizeof defs / sizeof defs[0] };

Test(param, defaults_set_and_format) {
    rb_params p;
    cr_assert_eq(rb_params_init(&p, defs, NDEFS), 0);
    cr_assert_eq(rb_params_int(&p, "bits"), 4);
    cr_assert_eq(rb_params_float(&p, "clip"), 1.0);
    cr_assert(rb_params_is(&p, "rotation", "rht"));
    cr_assert_eq(rb_params_check_required(&p), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "'tensor' is required"), "%s", rb_error_detail());
    cr_assert_eq(rb_params_set(&p, "bits", "2"), 0);
    cr_assert_eq(rb_params_set(&p, "clip", "0.90"), 0);
    cr_assert_eq(rb_params_set(&p, "sym", "yes"), 0);
    cr_assert_eq(rb_params_set(&p, "rotation", "haar"), 0);
    cr_assert_eq(rb_params_set(&p, "tensor", "k_proj"), 0);
    cr_assert_eq(rb_params_check_required(&p), 0);
    cr_assert_eq(rb_params_int(&p, "bits"), 2);
    cr_assert_eq(rb_params_float(&p, "clip"), 0.9);
    cr_assert(rb_params_bool(&p, "sym"));
    cr_assert_eq(p.num[3], 1.0, "an enum's number is its choice index");
    char buf[256];
    rb_params_format(&p, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "bits=2,clip=0.9,sym=true,rotation=haar,tensor=k_proj");
    rb_params q;
    rb_params_init(&q, defs, NDEFS);
    rb_params_set(&q, "rotation", "none");
    rb_params_format(&q, 1, buf, sizeof buf);
    cr_assert_str_eq(buf, "rotation=none");
}

/* A "name=value,..." spec sets each in order; a malformed entry or a refused value is the error,
 * naming it. */
Test(param, spec_sets_each_name_value) {
    rb_params p;
    cr_assert_eq(rb_params_init(&p, defs, NDEFS), 0);
    cr_assert_eq(rb_params_set_spec(&p, "bits=2,rotation=haar,tensor=k"), 0, "%s",
                 rb_error_detail());
    cr_assert(rb_params_int(&p, "bits") == 2 && rb_params_is(&p, "rotation", "haar") &&
              !strcmp(rb_params_str(&p, "tensor"), "k"));
    cr_assert_eq(rb_params_set_spec(&p, ""), 0, "an empty spec sets nothing");
    cr_assert_eq(rb_params_set_spec(&p, "bits=3,sym"), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "no '=' in 'sym'"), "%s", rb_error_detail());
    cr_assert_eq(rb_params_set_spec(&p, "bits=3,clip=9"), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "'clip': 9 is outside"), "%s", rb_error_detail());
    char big[RB_PARAMS_TEXT_MAX + 8];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cr_assert_eq(rb_params_set_spec(&p, big), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "longer than"), "%s", rb_error_detail());
}

/* Each bad value is rejected, and the message names the parameter and the problem. */
Test(param, errors_name_the_parameter) {
    static const struct {
        const char *name, *text, *msg;
    } cases[] = {
        {"bits", "9", "'bits': 9 is outside 1..8"},
        {"bits", "0", "outside 1..8"},
        {"bits", "2.5", "'bits': '2.5' is not an integer"},
        {"bits", "", "not an integer"},
        {"clip", "nan", "'clip': 'nan' is not a finite number"},
        {"clip", "1.5", "'clip': 1.5 is outside 0.05..1"},
        /* an integer past long long is out of range, not "not an integer"; a double that
         * overflows is no finite number; one that underflows is its rounded value (0 here) */
        {"bits", "9223372036854775808", "'bits': 9223372036854775808 is outside 1..8"},
        {"clip", "1e400", "'clip': '1e400' is not a finite number"},
        {"clip", "1e-400", "'clip': 1e-400 is outside 0.05..1"},
        {"sym", "maybe", "'sym': 'maybe' is not true or false"},
        {"rotation", "hadamard", "'rotation': 'hadamard' is not one of rht|haar|none"},
        {"rotation", "rh", "not one of"},
        {"bitz", "2", "unknown parameter 'bitz' (known: bits, clip, sym, rotation, tensor)"},
        /* text goes into results and reports, which refuse control characters */
        {"tensor", "k\tproj", "'tensor': control character 0x09 at position 2"},
        {"tensor", "\x1b[2J", "'tensor': control character 0x1b at position 1"},
        {"tensor", "k\x7f", "control character 0x7f at position 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rb_params p;
        rb_params_init(&p, defs, NDEFS);
        cr_assert_eq(rb_params_set(&p, cases[i].name, cases[i].text), RB_EINVAL, "case %zu", i);
        cr_assert(strstr(rb_error_detail(), cases[i].msg), "case %zu: got '%s'", i,
                  rb_error_detail());
        cr_assert_eq(p.set[0] + p.set[1] + p.set[2] + p.set[3] + p.set[4], 0,
                     "a failed set changes nothing");
    }
}

Test(param, malformed_table_is_reported) {
    static const rb_param_def bad[] = {RB_PARAM_INT("bits", "12", 1, 8, "bad default")};
    rb_params p;
    cr_assert_eq(rb_params_init(&p, bad, 1), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "default of parameter 'bits'"), "%s", rb_error_detail());
}

/* Wrapping the previous message (the usual way to add context) keeps it intact. */
Test(param, error_detail_can_wrap_itself) {
    rb_error_set(RB_ESIZE, "n = %d is not supported; nearest supported sizes: 96, 104", 100);
    rb_error_set(RB_ESIZE, "cell %s: %s", "a|b|c", rb_error_detail());
    rb_error_set(RB_ESIZE, "run: %s", rb_error_detail());
    cr_assert_str_eq(rb_error_detail(),
                     "run: cell a|b|c: n = 100 is not supported; nearest supported sizes: 96, 104");
}

/* RB_PARAM_INT_FRAC: fractions where a method takes them (eden's bits), while its integers keep
 * an INT's canonical text and JSON integer, so records of integer runs do not change; a plain
 * INT still refuses the fraction. */
Test(param, fractional_int_keeps_integers_as_they_were) {
    static const rb_param_def fdefs[] = {
        RB_PARAM_INT_FRAC("bits", "4", 1, 8, "bits, fractions allowed"),
        RB_PARAM_INT("plain", "4", 1, 8, "bits, integers only"),
    };
    static const struct {
        const char *text, *canon;
        double num;
        int json_int; /* 1: recorded as a JSON integer; 0: as a real */
    } ok[] = {
        {"2", "2", 2.0, 1},           {"2.0", "2", 2.0, 1}, {"2.5", "2.5", 2.5, 0},
        {"2.333", "2.333", 2.333, 0}, {"1", "1", 1.0, 1},   {"7.75", "7.75", 7.75, 0},
        {"8", "8", 8.0, 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rb_params p;
        cr_assert_eq(rb_params_init(&p, fdefs, 2), 0);
        cr_assert_eq(rb_params_set(&p, "bits", ok[i].text), 0, "%s: %s", ok[i].text,
                     rb_error_detail());
        cr_assert_str_eq(p.text[0], ok[i].canon, "%s", ok[i].text);
        cr_assert_eq(rb_params_float(&p, "bits"), ok[i].num, "%s", ok[i].text);
        json_t *o = rb_params_to_json(&p), *v = json_object_get(o, "bits");
        cr_assert(ok[i].json_int ? json_is_integer(v) : json_is_real(v), "%s", ok[i].text);
        cr_assert_eq(json_number_value(v), ok[i].num, "%s", ok[i].text);
        json_decref(o);
    }
    static const struct {
        const char *name, *text, *msg;
    } bad[] = {
        {"bits", "0.5", "'bits': 0.5 is outside 1..8"},
        {"bits", "8.5", "'bits': 8.5 is outside 1..8"},
        {"bits", "two", "'bits': 'two' is not a finite number"},
        {"bits", "2.5x", "not a finite number"},
        {"bits", "inf", "not a finite number"},
        {"bits", "", "not a finite number"},
        {"plain", "2.5", "'plain': '2.5' is not an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rb_params p;
        rb_params_init(&p, fdefs, 2);
        cr_assert_eq(rb_params_set(&p, bad[i].name, bad[i].text), RB_EINVAL, "%s", bad[i].text);
        cr_assert(strstr(rb_error_detail(), bad[i].msg), "%s: got '%s'", bad[i].text,
                  rb_error_detail());
    }
}

/* A bool's text: YAML's core-schema spellings and yes / no, 1 / 0; nothing else (YAML 1.1's on /
 * off and y / n, other capitalizations). The same function reads the config's own switches. */
Test(param, bool_spellings) {
    static const struct {
        const char *text;
        int want; /* -1: refused */
    } cases[] = {
        {"true", 1},  {"True", 1},  {"TRUE", 1}, {"yes", 1}, {"1", 1},      {"false", 0},
        {"False", 0}, {"FALSE", 0}, {"no", 0},   {"0", 0},   {"tRUE", -1},  {"on", -1},
        {"off", -1},  {"y", -1},    {"", -1},    {"2", -1},  {"true ", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = -7;
        int rc = rb_parse_bool(cases[i].text, &got);
        if (cases[i].want < 0) {
            cr_assert_eq(rc, -1, "'%s' was taken as %d", cases[i].text, got);
        } else {
            cr_assert_eq(rc, 0, "'%s' was refused", cases[i].text);
            cr_assert_eq(got, cases[i].want, "'%s'", cases[i].text);
        }
    }
    rb_params p;
    cr_assert_eq(rb_params_init(&p, defs, NDEFS), 0);
    cr_assert_eq(rb_params_set(&p, "sym", "False"), 0, "%s", rb_error_detail());
    cr_assert(!rb_params_bool(&p, "sym"));
    cr_assert_str_eq(p.text[2], "false", "the canonical text");
}

/* Range errors print the bounds exactly, not in %g (1..2.14748e+09). */
Test(param, range_errors_print_exact_bounds) {
    static const rb_param_def big[] = {
        RB_PARAM_INT("count", "1", 1, 2147483648.0, "vectors"),
        RB_PARAM_FLOAT("scale", "1", 0.001, 123456789.5, "scale"),
    };
    rb_params p;
    rb_params_init(&p, big, 2);
    cr_assert_eq(rb_params_set(&p, "count", "0"), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "'count': 0 is outside 1..2147483648"), "%s",
              rb_error_detail());
    cr_assert_eq(rb_params_set(&p, "scale", "2e9"), RB_EINVAL);
    cr_assert(strstr(rb_error_detail(), "'scale': 2e9 is outside 0.001..123456789.5"), "%s",
              rb_error_detail());
}
