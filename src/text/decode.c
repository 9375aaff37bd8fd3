/* decode.c — ids to text. A token decodes to bytes (tokenizer.c keeps each
 * token's bytes), the bytes of consecutive tokens are concatenated, and the
 * result is made valid UTF-8 the way Rust's String::from_utf8_lossy (which
 * HF uses) does: each maximal subpart of an ill-formed sequence becomes one
 * U+FFFD (Unicode's "substitution of maximal subparts"), and so does a
 * truncated sequence at the very end.
 *
 * The streaming decoder applies the same rule incrementally: it holds back
 * a sequence that is valid so far but incomplete, and emits it once it
 * completes or proves invalid, so its output is the same text cut at
 * character boundaries. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

int tok_utf8_next(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b >= 0xC2 && b <= 0xDF)
        len = 2;
    else if (b == 0xE0)
        len = 3, lo = 0xA0;
    else if (b >= 0xE1 && b <= 0xEF)
        len = 3, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b == 0xF0)
        len = 4, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3)
        len = 4;
    else if (b == 0xF4)
        len = 4, hi = 0x8F;
    else
        return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return 0;
        unsigned char x = s[i];
        bool ok = i == 1 ? (x >= lo && x <= hi) : (x >= 0x80 && x <= 0xBF);
        if (!ok) return -i;
    }
    return len;
}

/* A growable byte buffer. */
typedef struct bytes_buf {
    char *p;
    size_t n, cap;
} bytes_buf;

static bool buf_reserve(bytes_buf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

/* Appends s[0..n) to out with invalid sequences replaced. With `hold`, a
 * valid-but-truncated tail is not consumed: returns how many bytes were
 * (the rest must be offered again with more bytes). Without, the tail
 * becomes one U+FFFD. False when out of memory. */
static bool append_lossy(bytes_buf *out, const unsigned char *s, size_t n, bool hold,
                         size_t *consumed) {
    /* Worst case: every byte becomes three. */
    if (!buf_reserve(out, 3 * n)) return false;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] < 0x80)
            j++; /* ASCII runs in bulk */
        memcpy(out->p + out->n, s + i, j - i);
        out->n += j - i;
        i = j;
        if (i >= n) break;
        int r = tok_utf8_next(s + i, n - i);
        if (r > 0) {
            memcpy(out->p + out->n, s + i, (size_t)r);
            out->n += (size_t)r;
            i += (size_t)r;
            continue;
        }
        if (r == 0 && hold) break;
        memcpy(out->p + out->n, replacement, 3);
        out->n += 3;
        i += r < 0 ? (size_t)-r : n - i;
    }
    if (consumed) *consumed = i;
    out->p[out->n] = 0;
    return true;
}

static int check_id(const q35_tokenizer *t, int32_t id, size_t at, q35_err *e) {
    if (id >= 0 && (uint32_t)id < t->n_vocab && t->attr[id]) return Q35_OK;
    return q35_err_set(e, Q35_EINVAL, "detokenize: id %d (position %zu) is not in the vocabulary",
                       id, at);
}

int q35_detokenize(const q35_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                   char **out, size_t *len, q35_err *e) {
    if (!t || !out || !len || (!ids && n))
        return q35_err_set(e, Q35_EINVAL, "detokenize: NULL argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = check_id(t, ids[i], i, e);
        if (rc) return rc;
        total += t->bytes_off[ids[i] + 1] - t->bytes_off[ids[i]] - 1;
    }
    char *raw = malloc(total + 1);
    if (!raw) return q35_err_set(e, Q35_ENOMEM, "detokenize: out of memory for %zu bytes", total);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && (t->attr[ids[i]] & Q35_TOK_SPECIAL)) continue;
        uint32_t l;
        const char *b = tok_bytes(t, (uint32_t)ids[i], &l);
        memcpy(raw + k, b, l);
        k += l;
    }
    bytes_buf res = {0};
    bool ok = append_lossy(&res, (const unsigned char *)raw, k, false, NULL);
    free(raw);
    if (!ok) {
        free(res.p);
        return q35_err_set(e, Q35_ENOMEM, "detokenize: out of memory for %zu bytes", 3 * k);
    }
    *out = res.p;
    *len = res.n;
    return Q35_OK;
}

/* ------------------------------------------------------------ streaming */

struct q35_detok_stream {
    const q35_tokenizer *t;
    bool skip_special;
    unsigned char pending[4]; /* a valid prefix of a character, at most 3 bytes */
    size_t n_pending;
    bytes_buf out;
    unsigned char *work;
    size_t work_cap;
};

q35_detok_stream *q35_detok_stream_new(const q35_tokenizer *t, bool skip_special, q35_err *e) {
    if (!t) {
        q35_err_set(e, Q35_EINVAL, "detok stream: NULL tokenizer");
        return NULL;
    }
    q35_detok_stream *s = calloc(1, sizeof *s);
    if (!s) {
        q35_err_set(e, Q35_ENOMEM, "detok stream: out of memory");
        return NULL;
    }
    s->t = t;
    s->skip_special = skip_special;
    return s;
}

int q35_detok_stream_push(q35_detok_stream *s, int32_t id, const char **text, size_t *len,
                          q35_err *e) {
    if (!s || !text || !len) return q35_err_set(e, Q35_EINVAL, "detok stream: NULL argument");
    *text = "";
    *len = 0;
    const q35_tokenizer *t = s->t;
    int rc = check_id(t, id, 0, e);
    if (rc) return rc;
    s->out.n = 0;
    if (s->skip_special && (t->attr[id] & Q35_TOK_SPECIAL)) return Q35_OK;
    uint32_t l;
    const char *b = tok_bytes(t, (uint32_t)id, &l);
    size_t need = s->n_pending + l;
    if (need > s->work_cap) {
        unsigned char *w = realloc(s->work, need);
        if (!w) return q35_err_set(e, Q35_ENOMEM, "detok stream: out of memory");
        s->work = w;
        s->work_cap = need;
    }
    memcpy(s->work, s->pending, s->n_pending);
    memcpy(s->work + s->n_pending, b, l);
    size_t used;
    if (!append_lossy(&s->out, s->work, need, true, &used))
        return q35_err_set(e, Q35_ENOMEM, "detok stream: out of memory");
    /* What was held back is a truncated valid prefix: fewer than 4 bytes. */
    s->n_pending = need - used;
    memcpy(s->pending, s->work + used, s->n_pending);
    *text = s->out.p ? s->out.p : "";
    *len = s->out.n;
    return Q35_OK;
}

void q35_detok_stream_flush(q35_detok_stream *s, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    if (!s || !s->n_pending) {
        if (s) s->out.n = 0;
        return;
    }
    s->out.n = 0;
    if (buf_reserve(&s->out, 3)) {
        memcpy(s->out.p, replacement, 3);
        s->out.n = 3;
        s->out.p[3] = 0;
        *text = s->out.p;
        *len = 3;
    }
    s->n_pending = 0;
}

void q35_detok_stream_reset(q35_detok_stream *s) {
    if (s) s->n_pending = 0;
}

void q35_detok_stream_free(q35_detok_stream *s) {
    if (!s) return;
    free(s->out.p);
    free(s->work);
    free(s);
}
