/* Declared parameter tables: every method and dataset lists its parameters (type, default, range,
 * doc) once; configs are validated against the table and `rotabench list` prints it. */
#ifndef RB_PARAM_H
#define RB_PARAM_H

#include <stddef.h>

typedef enum rb_ptype { RB_PT_INT, RB_PT_FLOAT, RB_PT_BOOL, RB_PT_ENUM, RB_PT_STRING } rb_ptype;

typedef struct rb_param_def {
    const char *name;
    rb_ptype type;
    const char *def;     /* default as written in YAML; NULL means the parameter is required */
    double min, max;     /* inclusive range for INT and FLOAT */
    const char *choices; /* ENUM: the allowed words separated by '|', e.g. "rht|haar|none";
                          * INT (RB_PARAM_INT_OF): the allowed values, e.g. "16|32" */
    const char *doc;     /* one line for `rotabench list` */
    /* INT (RB_PARAM_INT_FRAC): also takes a fraction such as 2.5. Integers keep an INT's text
     * and JSON, so widening a table this way changes no record of the integer values. */
    int frac;
} rb_param_def;

#define RB_PARAM_INT(name, def, lo, hi, doc) \
    { name, RB_PT_INT, def, lo, hi, NULL, doc, 0 }
/* A number in lo..hi that may be fractional (EDEN's bits = 2.5): read it with rb_params_float;
 * rb_params_int truncates. Other methods' integer parameters reject fractions. */
#define RB_PARAM_INT_FRAC(name, def, lo, hi, doc) \
    { name, RB_PT_INT, def, lo, hi, NULL, doc, 1 }
/* An integer that takes only the listed values ("16|32"): checked like an enum, recorded as a
 * number like any integer. */
#define RB_PARAM_INT_OF(name, def, choices, doc) \
    { name, RB_PT_INT, def, -1e18, 1e18, choices, doc, 0 }
#define RB_PARAM_FLOAT(name, def, lo, hi, doc) \
    { name, RB_PT_FLOAT, def, lo, hi, NULL, doc, 0 }
#define RB_PARAM_BOOL(name, def, doc) \
    { name, RB_PT_BOOL, def, 0, 1, NULL, doc, 0 }
#define RB_PARAM_ENUM(name, def, choices, doc) \
    { name, RB_PT_ENUM, def, 0, 0, choices, doc, 0 }
#define RB_PARAM_STRING(name, def, doc) \
    { name, RB_PT_STRING, def, 0, 0, NULL, doc, 0 }

/* A table and its length, for initializers of descriptors. */
#define RB_PARAMS_OF(table) (table), (sizeof(table) / sizeof((table)[0]))

enum { RB_PARAMS_MAX = 32, RB_PARAM_TEXT_MAX = 96 };
/* The longest rb_params_format text of any table: names and values of every entry. */
enum { RB_PARAMS_TEXT_MAX = RB_PARAMS_MAX * (2 * RB_PARAM_TEXT_MAX + 2) };

/* A full assignment of values to a table, by value (no allocation), so cells can copy it. Every
 * value is kept as its canonical text (for records and keys) and, for numbers, bools and enums,
 * as a number (an enum's number is the index of its choice). */
typedef struct rb_params {
    const rb_param_def *defs;
    size_t count;
    unsigned char set[RB_PARAMS_MAX]; /* 1 where the config gave the value, 0 for a default */
    double num[RB_PARAMS_MAX];
    char text[RB_PARAMS_MAX][RB_PARAM_TEXT_MAX];
} rb_params;

/* Fills p with the table's defaults. RB_EINVAL if the table itself is malformed (a default outside
 * its range, too many entries): a programmer error reported with the parameter's name. */
int rb_params_init(rb_params *p, const rb_param_def *defs, size_t count);
/* Parses `text` for parameter `name` and stores it. Errors (RB_EINVAL), with the detail message
 * naming the parameter: unknown name (listing the known ones), wrong type, out of range, not one
 * of the choices. */
int rb_params_set(rb_params *p, const char *name, const char *text);
/* A boolean's text, for parameters and the config's own switches alike: YAML's core-schema
 * forms (true, True, TRUE and false, False, FALSE) and yes / no, 1 / 0. 0 with *out set, or -1. */
int rb_parse_bool(const char *text, int *out);
/* Text that names things (parameters, labels, dataset names, results fields) must be plain: a
 * control character (C0 or DEL: a line break, tab or escape) would garble tables and terminals.
 * rb_text_control_at: the index of the first one in s, or -1. */
static inline int rb_is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}
long rb_text_control_at(const char *s);
/* Sets each "name=value" of a comma-separated spec ("bits=2,rotation=rht") in p, in order;
 * RB_EINVAL for an entry without '=' or a spec of RB_PARAMS_TEXT_MAX or more characters, else
 * the first rb_params_set error. */
int rb_params_set_spec(rb_params *p, const char *spec);
/* RB_EINVAL naming the first required parameter that has no value. */
int rb_params_check_required(const rb_params *p);

/* Lookups by name: the name must be in the table (a programmer error otherwise). */
const rb_param_def *rb_params_def(const rb_params *p, const char *name);
long rb_params_int(const rb_params *p, const char *name);
double rb_params_float(const rb_params *p, const char *name);
int rb_params_bool(const rb_params *p, const char *name);
const char *rb_params_str(const rb_params *p, const char *name); /* ENUM and STRING */
int rb_params_is(const rb_params *p, const char *name, const char *choice);

/* "bits=2,rotation=rht" in table order, all values (set_only = 0) or only those set in the config.
 */
size_t rb_params_format(const rb_params *p, int set_only, char *buf, size_t size);

const char *rb_ptype_name(rb_ptype t);

/* The shortest %.Ng (N <= 17) that reads back as exactly v; "nan"/"inf"/"-inf" for non-finite.
 * The canonical text of FLOAT parameters, and how records and reports print numbers. */
void rb_fmt_double(char *buf, size_t size, double v);

#endif
