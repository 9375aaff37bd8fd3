/* gtext.c — the growable string the GBNF writers (schema.c, tool_call.c)
 * build their text in; a failed allocation is remembered and reported
 * once at the end rather than checked at every append. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraint/schema_conv.h"

static bool reserve(gtext *t, size_t add) {
    if (t->oom) return false;
    if (t->n + add + 1 <= t->cap) return true;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->n + add + 1)
        cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) {
        t->oom = true;
        return false;
    }
    t->p = p;
    t->cap = cap;
    return true;
}

void gt_putn(gtext *t, const char *s, size_t n) {
    if (!reserve(t, n)) return;
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = 0;
}

void gt_put(gtext *t, const char *s) {
    gt_putn(t, s, strlen(s));
}

void gt_printf(gtext *t, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof buf) {
        gt_putn(t, buf, (size_t)n);
        return;
    }
    if (!reserve(t, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->n += (size_t)n;
}

void gt_literal(gtext *t, const char *s, size_t n) {
    gt_put(t, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            gt_put(t, "\\\"");
        else if (c == '\\')
            gt_put(t, "\\\\");
        else if (c == '\n')
            gt_put(t, "\\n");
        else if (c == '\r')
            gt_put(t, "\\r");
        else if (c == '\t')
            gt_put(t, "\\t");
        else if (c < 0x20 || c == 0x7F)
            gt_printf(t, "\\x%02X", c);
        else
            gt_putn(t, (const char *)&s[i], 1);
    }
    gt_put(t, "\"");
}

void gt_free(gtext *t) {
    free(t->p);
    memset(t, 0, sizeof *t);
}
