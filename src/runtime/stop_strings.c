/* stop_strings.c — stop strings over streamed text (see stop_strings.h).
 * The held-back tail is the longest suffix of the text that is a proper
 * prefix of some stop string, so it is shorter than the longest stop
 * string; a match can therefore only end inside the newest piece, and
 * searching held + piece finds the earliest one. */
#include <string.h>

#include "q35.h"
#include "runtime/stop_strings.h"

void q35_stop_init(q35_stop_matcher *m, const char *const *stop) {
    memset(m, 0, sizeof *m);
    m->stop = stop;
}

void q35_stop_free(q35_stop_matcher *m) {
    q35_strbuf_free(&m->held);
}

/* Earliest start of any stop string in [s, s+n), or n. */
static size_t first_match(const char *const *stop, const char *s, size_t n) {
    size_t best = n;
    for (const char *const *p = stop; p && *p; p++) {
        size_t k = strlen(*p);
        if (!k || k > n) continue;
        const char *hit = memmem(s, n, *p, k);
        if (hit && (size_t)(hit - s) < best) best = (size_t)(hit - s);
    }
    return best;
}

/* Where the held-back tail starts: the earliest i such that s[i..n) is a
 * proper prefix of a stop string, moved back to a character boundary. */
static size_t tail_start(const char *const *stop, const char *s, size_t n) {
    size_t start = n;
    for (const char *const *p = stop; p && *p; p++) {
        size_t k = strlen(*p);
        size_t from = n >= k ? n - k + 1 : 0;
        for (size_t i = from; i < start; i++)
            if (!memcmp(s + i, *p, n - i)) {
                start = i;
                break;
            }
    }
    while (start > 0 && start < n && ((unsigned char)s[start] & 0xC0) == 0x80)
        start--;
    return start;
}

int q35_stop_feed(q35_stop_matcher *m, const char *text, size_t len, q35_strbuf *out) {
    if (m->matched) return Q35_OK;
    if (!m->stop || !m->stop[0]) return q35_strbuf_append(out, text, len);
    if (q35_strbuf_append(&m->held, text, len)) return Q35_ENOMEM;
    const char *s = m->held.p;
    size_t n = m->held.n;
    size_t hit = first_match(m->stop, s, n);
    if (hit < n) {
        m->matched = true;
        int rc = q35_strbuf_append(out, s, hit);
        q35_strbuf_clear(&m->held);
        return rc;
    }
    size_t keep_from = tail_start(m->stop, s, n);
    if (q35_strbuf_append(out, s, keep_from)) return Q35_ENOMEM;
    q35_strbuf_consume(&m->held, keep_from);
    return Q35_OK;
}

int q35_stop_finish(q35_stop_matcher *m, q35_strbuf *out) {
    int rc = m->matched ? Q35_OK : q35_strbuf_append(out, m->held.p, m->held.n);
    q35_strbuf_clear(&m->held);
    return rc;
}
