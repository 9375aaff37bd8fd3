/* tokenizer_encode.c — text to ids, the pipeline of HF's encode:
 *   1. added tokens matched in the raw text (tokenizer_added.c);
 *   2. each stretch between them normalized (normalizer.c), then searched
 *      for "normalized" added tokens;
 *   3. what remains split by the pre-tokenizer regexes (pretokenizer.c);
 *   4. each piece merged by BPE over its bytes (bpe.c).
 * HF only sees valid UTF-8. Here a stretch of bytes that is not UTF-8 is
 * kept apart from its neighbours (no normalization, no regex) and BPE'd as
 * one piece of raw bytes, so every input has ids and decoding them gives
 * the input's bytes back. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

int tok_push_ids(tok_encode_ctx *c, const int32_t *ids, size_t n) {
    q35_tokens *v = c->out;
    if (v->n + n > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->n + n)
            cap *= 2;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return q35_err_set(c->e, Q35_ENOMEM, "tokenize: out of memory for %zu ids", cap);
        v->ids = p;
        v->cap = cap;
    }
    memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return Q35_OK;
}

int tok_push_id(tok_encode_ctx *c, int32_t id) {
    if (c->piece_fn) {
        uint32_t len;
        const char *p = tok_piece(c->t, (uint32_t)id, &len);
        return c->piece_fn(c->piece_ud, p, len, id);
    }
    return tok_push_ids(c, &id, 1);
}

static int encode_normalized(tok_encode_ctx *c, const char *s, size_t n) {
    return tok_pretok_encode(c, s, n);
}

/* Valid UTF-8 between raw added tokens: normalize, then look for the
 * added tokens that match in normalized text. */
static int encode_valid(tok_encode_ctx *c, const char *s, size_t n) {
    char *owned;
    size_t len;
    const char *norm = tok_normalize(c->t->normalizer, s, n, &len, &owned, c->e);
    if (!norm) return c->e->code;
    int rc = c->t->added_norm.n
                 ? tok_added_split(c, &c->t->added_norm, c->mode, norm, len, encode_normalized)
                 : encode_normalized(c, norm, len);
    free(owned);
    return rc;
}

/* Any bytes between raw added tokens: valid runs go through the pipeline,
 * runs of invalid bytes straight to BPE. */
static int encode_raw(tok_encode_ctx *c, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    int rc;
    while (i < n) {
        int r = tok_utf8_next(u + i, n - i);
        if (r > 0) {
            i += (size_t)r;
            continue;
        }
        if (i > run && (rc = encode_valid(c, s + run, i - run))) return rc;
        size_t j = i;
        while (j < n && (r = tok_utf8_next(u + j, n - j)) <= 0)
            j += r < 0 ? (size_t)-r : n - j;
        if ((rc = tok_bpe_piece(c, u + i, j - i))) return rc;
        i = run = j;
    }
    if (run < n) return encode_valid(c, s + run, n - run);
    return Q35_OK;
}

int q35_tokenize_append(const q35_tokenizer *t, const char *text, size_t len, q35_added_mode mode,
                        q35_tokens *out, q35_err *e) {
    if (!t || !out || (!text && len))
        return q35_err_set(e, Q35_EINVAL, "tokenize: NULL tokenizer, output or text");
    if (mode != Q35_ADDED_MATCH && mode != Q35_ADDED_SPECIAL_AS_TEXT && mode != Q35_ADDED_AS_TEXT)
        return q35_err_set(e, Q35_EINVAL, "tokenize: unknown added-token mode %d", (int)mode);
    if (len == 0) return Q35_OK;
    size_t n0 = out->n;
    q35_err local;
    if (!e) e = &local; /* errors travel through c.e: give them somewhere to land */
    q35_err_clear(e);
    tok_encode_ctx c = {.t = t, .out = out, .e = e, .mode = mode, .text_len = len};
    int rc = tok_pretok_ctx_init(&c);
    if (!rc) rc = tok_added_split(&c, &t->added_raw, mode, text, len, encode_raw);
    tok_pretok_ctx_free(&c);
    tok_bpe_ctx_free(&c);
    if (rc) out->n = n0;
    return rc;
}

int q35_tok_pretokenize(const q35_tokenizer *t, const char *text, size_t len, q35_added_mode mode,
                        q35_tok_piece_fn fn, void *ud, q35_err *e) {
    if (!t || !fn || (!text && len))
        return q35_err_set(e, Q35_EINVAL, "pretokenize: NULL argument");
    q35_err local;
    if (!e) e = &local;
    q35_err_clear(e);
    q35_tokens unused = {0};
    tok_encode_ctx c = {
        .t = t, .out = &unused, .e = e, .mode = mode, .piece_fn = fn, .piece_ud = ud};
    int rc = tok_pretok_ctx_init(&c);
    if (!rc) rc = tok_added_split(&c, &t->added_raw, mode, text, len, encode_raw);
    tok_pretok_ctx_free(&c);
    tok_bpe_ctx_free(&c);
    return rc;
}

int q35_tokenize(const q35_tokenizer *t, const char *text, size_t len, q35_added_mode mode,
                 int32_t **ids, size_t *n_ids, q35_err *e) {
    if (!ids || !n_ids) return q35_err_set(e, Q35_EINVAL, "tokenize: NULL output");
    q35_tokens v = {0};
    int rc = q35_tokenize_append(t, text, len, mode, &v, e);
    if (rc) {
        q35_tokens_free(&v);
        return rc;
    }
    *ids = v.ids;
    *n_ids = v.n;
    return Q35_OK;
}

void q35_tokens_free(q35_tokens *v) {
    if (!v) return;
    free(v->ids);
    memset(v, 0, sizeof *v);
}
