/* Parsing and validating parameter values against their declared table. */
#include "kernels/param.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

const char *rb_ptype_name(rb_ptype t) {
    static const char *const names[] = {"int", "float", "bool", "enum", "string"};
    return (unsigned) t < 5 ? names[t] : "?";
}

void rb_fmt_double(char *buf, size_t size, double v) {
    if (!isfinite(v)) {
        snprintf(buf, size, "%s", isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static long find(const rb_params *p, const char *name) {
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->defs[i].name, name) == 0) return (long) i;
    return -1;
}

/* Index of `word` among the '|'-separated choices, or -1. */
static int choice_index(const char *choices, const char *word) {
    size_t len = strlen(word);
    int idx = 0;
    for (const char *c = choices; c && *c; idx++) {
        const char *bar = strchr(c, '|');
        size_t clen = bar ? (size_t) (bar - c) : strlen(c);
        if (clen == len && strncmp(c, word, len) == 0) return idx;
        if (!bar) break;
        c = bar + 1;
    }
    return -1;
}

int rb_params_set_spec(rb_params *p, const char *spec) {
    char buf[RB_PARAMS_TEXT_MAX];
    if (strlen(spec) >= sizeof buf)
        return rb_error_set(RB_EINVAL, "parameters '%.40s...': longer than %d characters", spec,
                            RB_PARAMS_TEXT_MAX - 1);
    snprintf(buf, sizeof buf, "%s", spec);
    int rc = RB_OK;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); !rc && tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return rb_error_set(RB_EINVAL, "parameters '%s': no '=' in '%s'", spec, tok);
        *eq = 0;
        rc = rb_params_set(p, tok, eq + 1);
    }
    return rc;
}

long rb_text_control_at(const char *s) {
    for (long i = 0; s[i]; i++)
        if (rb_is_control((unsigned char) s[i])) return i;
    return -1;
}

int rb_parse_bool(const char *text, int *out) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "1"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcmp(text, yes[i])) return *out = 1, 0;
        if (!strcmp(text, no[i])) return *out = 0, 0;
    }
    return -1;
}

/* A number's whole text as a double: 0, or -1 when it is not one or overflows. An underflow
 * (ERANGE with a subnormal or zero result, "1e-310") is the value strtod rounded it to. */
static int text_double(const char *text, double *v) {
    char *end;
    errno = 0;
    *v = strtod(text, &end);
    if (end == text || *end || !isfinite(*v)) return -1;
    return errno == ERANGE && fabs(*v) > DBL_MIN ? -1 : 0;
}

/* "%s is outside LO..HI" with the bounds in their shortest exact text (not %g's 2.14748e+09). */
static int outside(const rb_param_def *d, const char *value) {
    char lo[32], hi[32];
    rb_fmt_double(lo, sizeof lo, d->min);
    rb_fmt_double(hi, sizeof hi, d->max);
    return rb_error_set(RB_EINVAL, "parameter '%s': %s is outside %s..%s", d->name, value, lo, hi);
}

static int parse_value(const rb_param_def *d, const char *text, double *num, char *canon) {
    char *end;
    switch (d->type) {
    case RB_PT_INT: {
        if (d->frac) {
            double f;
            if (text_double(text, &f))
                return rb_error_set(RB_EINVAL, "parameter '%s': '%s' is not a finite number",
                                    d->name, text);
            if (f < d->min || f > d->max) return outside(d, text);
            /* "2.0" is the integer 2: the same text and JSON as "2" (rb_params_to_json). */
            *num = f;
            if (f == floor(f))
                snprintf(canon, RB_PARAM_TEXT_MAX, "%lld", (long long) f);
            else
                rb_fmt_double(canon, RB_PARAM_TEXT_MAX, f);
            return RB_OK;
        }
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end)
            return rb_error_set(RB_EINVAL, "parameter '%s': '%s' is not an integer", d->name, text);
        if (errno == ERANGE || (double) v < d->min || (double) v > d->max) return outside(d, text);
        *num = (double) v;
        snprintf(canon, RB_PARAM_TEXT_MAX, "%lld", v);
        if (d->choices && choice_index(d->choices, canon) < 0)
            return rb_error_set(RB_EINVAL, "parameter '%s': '%s' is not one of %s", d->name, text,
                                d->choices);
        return RB_OK;
    }
    case RB_PT_FLOAT: {
        double v;
        if (text_double(text, &v))
            return rb_error_set(RB_EINVAL, "parameter '%s': '%s' is not a finite number", d->name,
                                text);
        if (v < d->min || v > d->max) return outside(d, text);
        *num = v;
        rb_fmt_double(canon, RB_PARAM_TEXT_MAX, v);
        return RB_OK;
    }
    case RB_PT_BOOL: {
        int b;
        if (rb_parse_bool(text, &b))
            return rb_error_set(RB_EINVAL, "parameter '%s': '%s' is not true or false", d->name,
                                text);
        *num = b;
        snprintf(canon, RB_PARAM_TEXT_MAX, "%s", b ? "true" : "false");
        return RB_OK;
    }
    case RB_PT_ENUM: {
        int idx = choice_index(d->choices, text);
        if (idx < 0)
            return rb_error_set(RB_EINVAL, "parameter '%s': '%s' is not one of %s", d->name, text,
                                d->choices);
        *num = idx;
        snprintf(canon, RB_PARAM_TEXT_MAX, "%s", text);
        return RB_OK;
    }
    case RB_PT_STRING:
        if (strlen(text) >= RB_PARAM_TEXT_MAX)
            return rb_error_set(RB_EINVAL, "parameter '%s': value longer than %d characters",
                                d->name, RB_PARAM_TEXT_MAX - 1);
        /* Values are written into results and printed in reports, which refuse control
         * characters on reading; a path with a line break or an escape is refused here. */
        long at = rb_text_control_at(text);
        if (at >= 0)
            return rb_error_set(RB_EINVAL,
                                "parameter '%s': control character 0x%02x at position %ld (a "
                                "line break, tab or escape); give plain text",
                                d->name, (unsigned) (unsigned char) text[at], at + 1);
        *num = 0;
        snprintf(canon, RB_PARAM_TEXT_MAX, "%s", text);
        return RB_OK;
    }
    return rb_error_set(RB_EINVAL, "parameter '%s': unknown type", d->name);
}

int rb_params_init(rb_params *p, const rb_param_def *defs, size_t count) {
    memset(p, 0, sizeof *p);
    if (count > RB_PARAMS_MAX)
        return rb_error_set(RB_EINVAL, "parameter table has %zu entries (at most %d)", count,
                            RB_PARAMS_MAX);
    p->defs = defs;
    p->count = count;
    for (size_t i = 0; i < count; i++) {
        if (!defs[i].def) continue;
        int rc = parse_value(&defs[i], defs[i].def, &p->num[i], p->text[i]);
        if (rc) return rb_error_set(rc, "default of %s", rb_error_detail());
    }
    return RB_OK;
}

int rb_params_set(rb_params *p, const char *name, const char *text) {
    long i = find(p, name);
    if (i < 0) {
        char known[512] = "";
        size_t used = 0;
        for (size_t j = 0; j < p->count && used < sizeof known; j++)
            used += (size_t) snprintf(known + used, sizeof known - used, "%s%s", j ? ", " : "",
                                      p->defs[j].name);
        return rb_error_set(RB_EINVAL, "unknown parameter '%s' (known: %s)", name,
                            p->count ? known : "none");
    }
    double num;
    char canon[RB_PARAM_TEXT_MAX];
    int rc = parse_value(&p->defs[i], text, &num, canon);
    if (rc) return rc;
    p->num[i] = num;
    memcpy(p->text[i], canon, sizeof canon);
    p->set[i] = 1;
    return RB_OK;
}

int rb_params_check_required(const rb_params *p) {
    for (size_t i = 0; i < p->count; i++)
        if (!p->defs[i].def && !p->set[i])
            return rb_error_set(RB_EINVAL, "parameter '%s' is required (%s)", p->defs[i].name,
                                p->defs[i].doc);
    return RB_OK;
}

const rb_param_def *rb_params_def(const rb_params *p, const char *name) {
    long i = find(p, name);
    if (i < 0) {
        fprintf(stderr, "rb_params: no parameter named '%s' in this table\n", name);
        RB_ASSERT(i >= 0);
    }
    return &p->defs[i];
}

static long must_find(const rb_params *p, const char *name) {
    return (long) (rb_params_def(p, name) - p->defs);
}

long rb_params_int(const rb_params *p, const char *name) {
    return (long) p->num[must_find(p, name)];
}
double rb_params_float(const rb_params *p, const char *name) {
    return p->num[must_find(p, name)];
}
int rb_params_bool(const rb_params *p, const char *name) {
    return p->num[must_find(p, name)] != 0;
}
const char *rb_params_str(const rb_params *p, const char *name) {
    return p->text[must_find(p, name)];
}

int rb_params_is(const rb_params *p, const char *name, const char *choice) {
    return strcmp(rb_params_str(p, name), choice) == 0;
}

size_t rb_params_format(const rb_params *p, int set_only, char *buf, size_t size) {
    size_t used = 0;
    if (size) buf[0] = '\0';
    for (size_t i = 0; i < p->count; i++) {
        if (set_only && !p->set[i]) continue;
        /* Past the end of buf, keep counting (the return value is the full length) without
         * forming a pointer beyond it. */
        int n = snprintf(used < size ? buf + used : NULL, used < size ? size - used : 0, "%s%s=%s",
                         used ? "," : "", p->defs[i].name, p->text[i]);
        if (n > 0) used += (size_t) n;
    }
    return used;
}
