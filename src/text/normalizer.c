/* normalizer.c — Unicode normalization of the text before pre-tokenizing
 * (tokenizer.json's "normalizer"; NFC for the Qwen family), by utf8proc.
 *
 * Most text is NFC already, and utf8proc's full pass (decompose to UTF-32,
 * reorder, compose, re-encode) would dominate encoding. So the text is
 * scanned for characters NFC could touch, and only the stretches around
 * them go through utf8proc. A character is inert when utf8proc's own
 * properties say NFC leaves it and its neighbours alone: combining class 0,
 * no canonical decomposition, never the second half of a composition, and
 * not a conjoining Hangul jamo (composed by rule, not by table): that is
 * Unicode's NFC_Quick_Check=Yes with ccc 0, narrowed. Before an inert character
 * NFC has a boundary, so NFC(text) is the text with each maximal non-inert
 * stretch, plus the inert character just before it (its possible starter),
 * replaced by that stretch's NFC. test_tokenizer_text checks this against
 * utf8proc's whole-text NFC on every code point and on random text. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

bool tok_nfc_inert(int32_t cp) {
    if (cp < 0x300) return true; /* Latin-1 and friends: nothing below U+0300 combines */
    if (cp >= 0x1100 && cp <= 0x11FF) return false;
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->combining_class != 0) return false;
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return false; /* a second half */
    /* Any canonical decomposition, even a primary composite's (й) that NFC
     * rebuilds: those stretches take the slow path, which is always right. */
    return p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0;
}

/* Decodes the (valid) UTF-8 character at s[i]. */
static int32_t next_cp(const unsigned char *s, size_t i, size_t *len) {
    unsigned char b = s[i];
    if (b < 0x80) return *len = 1, b;
    if (b < 0xE0) return *len = 2, (int32_t)(b & 0x1F) << 6 | (s[i + 1] & 0x3F);
    if (b < 0xF0)
        return *len = 3,
               (int32_t)(b & 0x0F) << 12 | (int32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
    return *len = 4, (int32_t)(b & 0x07) << 18 | (int32_t)(s[i + 1] & 0x3F) << 12 |
                         (int32_t)(s[i + 2] & 0x3F) << 6 | (s[i + 3] & 0x3F);
}

typedef struct out_buf {
    char *p;
    size_t n, cap;
} out_buf;

static bool out_put(out_buf *o, const void *s, size_t n) {
    if (n == 0) return true;
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + n)
            cap *= 2;
        char *q = realloc(o->p, cap);
        if (!q) return false;
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    return true;
}

const char *tok_normalize(q35_tok_normalizer norm, const char *s, size_t n, size_t *out_len,
                          char **owned, q35_err *e) {
    *owned = NULL;
    *out_len = n;
    if (norm == Q35_TOK_NORM_NONE) return s;
    const unsigned char *u = (const unsigned char *)s;
    out_buf o = {0};
    size_t copied = 0; /* s[0..copied) is in o (only once o is in use) */
    size_t prev = 0;   /* start of the character before i */
    size_t i = 0, len;
    while (i < n) {
        if (u[i] < 0xCC) { /* below U+0300: inert, the common case */
            prev = i;
            i += u[i] < 0x80 ? 1 : 2;
            continue;
        }
        int32_t cp = next_cp(u, i, &len);
        if (tok_nfc_inert(cp)) {
            prev = i;
            i += len;
            continue;
        }
        /* A stretch NFC may change: from the starter before it to the next
         * inert character. */
        size_t a = i > copied && prev >= copied ? prev : i, b = i + len;
        while (b < n && !tok_nfc_inert(next_cp(u, b, &len)))
            b += len;
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t r = utf8proc_map(u + a, (utf8proc_ssize_t)(b - a), &dst,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0 || !out_put(&o, s + copied, a - copied) || !out_put(&o, dst, (size_t)r)) {
            free(dst);
            free(o.p);
            q35_err_set(e, r == UTF8PROC_ERROR_NOMEM || r >= 0 ? Q35_ENOMEM : Q35_EINVAL,
                        "tokenize: NFC normalization failed%s%s", r < 0 ? ": " : "",
                        r < 0 ? utf8proc_errmsg(r) : "");
            return NULL;
        }
        free(dst);
        copied = prev = i = b;
    }
    if (!o.p) return s; /* nothing to change */
    if (!out_put(&o, s + copied, n - copied)) {
        free(o.p);
        q35_err_set(e, Q35_ENOMEM, "tokenize: out of memory normalizing %zu bytes", n);
        return NULL;
    }
    *owned = o.p;
    *out_len = o.n;
    return o.p;
}
