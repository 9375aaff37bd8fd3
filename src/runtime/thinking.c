/* thinking.c — the thinking/answer splitter (see thinking.h). */
#include <string.h>

#include "q35.h"
#include "runtime/thinking.h"

static const char END_TAG[] = "</think>";
#define END_LEN (sizeof END_TAG - 1)

void q35_think_init(q35_think_splitter *t, bool thinking) {
    memset(t, 0, sizeof *t);
    t->in_thinking = thinking;
    t->at_start = true;
}

void q35_think_free(q35_think_splitter *t) {
    q35_strbuf_free(&t->pending);
}

/* Appends s to out, dropping leading newlines while *at_start. */
static int emit(bool *at_start, const char *s, size_t n, q35_strbuf *out) {
    if (*at_start) {
        while (n && *s == '\n') {
            s++;
            n--;
        }
        if (!n) return Q35_OK;
        *at_start = false;
    }
    return q35_strbuf_append(out, s, n);
}

/* Length of the suffix of s[0..n) to hold back: newlines followed by a
 * proper prefix of "</think>" (possibly empty). */
static size_t held_suffix(const char *s, size_t n) {
    size_t p = 0; /* length of the "</think>" prefix ending s */
    for (size_t k = END_LEN - 1; k > 0; k--)
        if (k <= n && !memcmp(s + n - k, END_TAG, k)) {
            p = k;
            break;
        }
    size_t i = n - p;
    while (i > 0 && s[i - 1] == '\n')
        i--;
    return n - i;
}

int q35_think_feed(q35_think_splitter *t, const char *text, size_t len, q35_strbuf *thinking,
                   q35_strbuf *answer) {
    if (!t->in_thinking) return emit(&t->at_start, text, len, answer);
    if (q35_strbuf_append(&t->pending, text, len)) return Q35_ENOMEM;
    const char *s = t->pending.p;
    size_t n = t->pending.n;
    const char *end = memmem(s, n, END_TAG, END_LEN);
    if (end) {
        size_t before = (size_t)(end - s);
        while (before && s[before - 1] == '\n')
            before--; /* rstrip('\n') */
        if (emit(&t->at_start, s, before, thinking)) return Q35_ENOMEM;
        t->in_thinking = false;
        t->at_start = true;
        size_t after = (size_t)(end - s) + END_LEN;
        int rc = emit(&t->at_start, s + after, n - after, answer);
        q35_strbuf_clear(&t->pending);
        return rc;
    }
    size_t hold = held_suffix(s, n);
    if (emit(&t->at_start, s, n - hold, thinking)) return Q35_ENOMEM;
    q35_strbuf_consume(&t->pending, n - hold);
    return Q35_OK;
}

int q35_think_finish(q35_think_splitter *t, q35_strbuf *thinking) {
    if (!t->in_thinking) return Q35_OK;
    size_t n = t->pending.n;
    while (n && t->pending.p[n - 1] == '\n')
        n--;
    int rc = emit(&t->at_start, t->pending.p, n, thinking);
    q35_strbuf_clear(&t->pending);
    return rc;
}
