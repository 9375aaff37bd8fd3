/* cli_common.c — small parsing and error-printing helpers shared by the
 * subcommands. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "q35 %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_fail_err(const char *cmd, const q35_err *e) {
    return cli_fail(cmd, "%s (%s)", e->msg, q35_status_name(e->code));
}

int32_t *cli_parse_ids(const char *s, int *n_out, char *err, size_t errlen) {
    size_t cap = 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *p = s;
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t')
            p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            snprintf(err, errlen, "bad token id near '%.20s'", p);
            free(ids);
            return NULL;
        }
        if (n == cap) {
            int32_t *t = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!t) {
                free(ids);
                snprintf(err, errlen, "out of memory");
                return NULL;
            }
            ids = t;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    *n_out = (int)n;
    return ids;
}

int cli_parse_int(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) return 0;
    *out = v;
    return 1;
}

int cli_parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno) return 0;
    *out = v;
    return 1;
}

int cli_parse_quant(const char *s, q35_weight_format *out) {
    if (!strcmp(s, "q8") || !strcmp(s, "q8_0"))
        *out = Q35_WEIGHTS_Q8_0;
    else if (!strcmp(s, "q4") || !strcmp(s, "q4_0"))
        *out = Q35_WEIGHTS_Q4_0;
    else if (!strcmp(s, "none"))
        *out = Q35_WEIGHTS_AS_STORED;
    else
        return 0;
    return 1;
}
