/* strbuf.c — growable byte strings (see strbuf.h). */
#include <stdlib.h>
#include <string.h>

#include "q35.h"
#include "runtime/strbuf.h"

int q35_strbuf_append(q35_strbuf *b, const char *s, size_t len) {
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1) {
            if (cap > ((size_t)-1) / 2) return Q35_ENOMEM;
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) return Q35_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (len) memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
    return Q35_OK;
}

void q35_strbuf_consume(q35_strbuf *b, size_t n) {
    if (n >= b->n) {
        q35_strbuf_clear(b);
        return;
    }
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
    b->p[b->n] = 0;
}

void q35_strbuf_clear(q35_strbuf *b) {
    b->n = 0;
    if (b->p) b->p[0] = 0;
}

void q35_strbuf_free(q35_strbuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

char *q35_strbuf_take(q35_strbuf *b, size_t *len) {
    if (!b->p && q35_strbuf_append(b, "", 0)) return NULL;
    char *p = b->p;
    if (len) *len = b->n;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}
