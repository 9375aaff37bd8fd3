/* prompt_encode.c — token ids of a rendered conversation, safely.
 *
 * HF tokenizes a rendered prompt as one string, cutting out every added
 * token (<|im_start|>, <|im_end|>, <think>, ...) wherever it appears, so a
 * user who types "<|im_end|>\n<|im_start|>system" writes a system turn.
 * Here added tokens are cut out only where the renderer wrote them
 * (template spans); the text between two such cuts — template and content
 * together — is tokenized in one piece with no added token matched. Cutting
 * at the same places as HF and tokenizing the same pieces, the ids equal
 * HF's whenever the content holds no added-token text, and content can
 * never produce a control id (SPEC §5).
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "q35.h"

/* Appends the ids of text[from, to) with no added token matched. */
static int encode_plain(const q35_tokenizer *t, const q35_prompt *p, size_t from, size_t to,
                        q35_tokens *out, q35_err *e) {
    if (to <= from) return 0;
    return q35_tokenize_append(t, p->text + from, to - from, Q35_ADDED_AS_TEXT, out, e);
}

static int push_id(q35_tokens *out, int32_t id, q35_err *e) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 64;
        int32_t *ids = realloc(out->ids, cap * sizeof *ids);
        if (!ids) return q35_err_set(e, Q35_ENOMEM, "prompt encode: out of memory");
        out->ids = ids;
        out->cap = cap;
    }
    out->ids[out->n++] = id;
    return 0;
}

static int check_spans(const q35_prompt *p, q35_err *e) {
    if (!p || (!p->text && p->len)) return q35_err_set(e, Q35_EINVAL, "prompt encode: NULL prompt");
    size_t at = 0;
    for (size_t i = 0; i < p->n_spans; i++) {
        const q35_text_span *s = &p->spans[i];
        if (s->off != at || s->len > p->len - at ||
            (s->kind != Q35_TEXT_TEMPLATE && s->kind != Q35_TEXT_CONTENT))
            return q35_err_set(e, Q35_EINVAL, "prompt encode: span %zu does not continue the text",
                               i);
        at += s->len;
    }
    if (at != p->len)
        return q35_err_set(e, Q35_EINVAL, "prompt encode: spans cover %zu of %zu bytes", at,
                           p->len);
    return 0;
}

/* Finds the added tokens in one template span (tokenizing the span alone
 * with added tokens matched tells which ones the tokenizer's matcher picks
 * there), emits the plain text before each and the token itself. *cursor
 * is the start of text not yet emitted. */
static int encode_template_span(const q35_tokenizer *t, const q35_prompt *p, const q35_text_span *s,
                                size_t *cursor, q35_tokens *out, q35_err *e) {
    q35_tokens found = {0};
    int rc = q35_tokenize_append(t, p->text + s->off, s->len, Q35_ADDED_MATCH, &found, e);
    size_t pos = s->off, end = s->off + s->len;
    for (size_t i = 0; !rc && i < found.n; i++) {
        if (!q35_token_is_added(t, found.ids[i])) continue;
        size_t blen;
        const char *b = q35_token_bytes(t, found.ids[i], &blen);
        const char *at = b && blen ? memmem(p->text + pos, end - pos, b, blen) : NULL;
        if (!at) {
            rc = q35_err_set(e, Q35_ESTATE,
                             "prompt encode: added token %d not found in the template text at "
                             "byte %zu",
                             (int)found.ids[i], pos);
            break;
        }
        size_t off = (size_t)(at - p->text);
        rc = encode_plain(t, p, *cursor, off, out, e);
        if (!rc) rc = push_id(out, found.ids[i], e);
        pos = *cursor = off + blen;
    }
    q35_tokens_free(&found);
    return rc;
}

int q35_prompt_encode(const q35_tokenizer *t, const q35_prompt *p, q35_tokens *out, q35_err *e) {
    if (!t || !out) return q35_err_set(e, Q35_EINVAL, "prompt encode: NULL tokenizer or output");
    int rc = check_spans(p, e);
    if (rc) return rc;
    size_t n0 = out->n, cursor = 0;
    for (size_t i = 0; !rc && i < p->n_spans; i++)
        if (p->spans[i].kind == Q35_TEXT_TEMPLATE)
            rc = encode_template_span(t, p, &p->spans[i], &cursor, out, e);
    if (!rc) rc = encode_plain(t, p, cursor, p->len, out, e);
    if (rc) out->n = n0;
    return rc;
}
