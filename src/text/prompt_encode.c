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

/* Short pieces recur in every turn ("\n" between <|im_end|> and
 * <|im_start|>, "\n\n" after </think>); a tokenizer call has a fixed cost,
 * so their ids are remembered for the duration of one q35_prompt_encode. The
 * same bytes always give the same ids, so this changes nothing else. */
#define MEMO_SLOTS 16
#define MEMO_MAX_BYTES 32
#define MEMO_MAX_IDS 32

typedef struct memo {
    struct {
        char text[MEMO_MAX_BYTES];
        size_t len, n_ids;
        int32_t ids[MEMO_MAX_IDS];
    } slot[MEMO_SLOTS];
    int n;
} memo;

/* Appends the ids of text[from, to) with no added token matched. */
static int encode_plain(const q35_tokenizer *t, const q35_prompt *p, size_t from, size_t to,
                        memo *m, q35_tokens *out, q35_err *e) {
    if (to <= from) return 0;
    const char *s = p->text + from;
    size_t n = to - from;
    if (n > MEMO_MAX_BYTES) return q35_tokenize_append(t, s, n, Q35_ADDED_AS_TEXT, out, e);
    for (int k = 0; k < m->n; k++) {
        if (m->slot[k].len != n || memcmp(m->slot[k].text, s, n) != 0) continue;
        for (size_t i = 0; i < m->slot[k].n_ids; i++)
            if (push_id(out, m->slot[k].ids[i], e)) return Q35_ENOMEM;
        return 0;
    }
    size_t n0 = out->n;
    int rc = q35_tokenize_append(t, s, n, Q35_ADDED_AS_TEXT, out, e);
    if (!rc && m->n < MEMO_SLOTS && out->n - n0 <= MEMO_MAX_IDS) {
        memcpy(m->slot[m->n].text, s, n);
        m->slot[m->n].len = n;
        m->slot[m->n].n_ids = out->n - n0;
        memcpy(m->slot[m->n].ids, out->ids + n0, (out->n - n0) * sizeof *out->ids);
        m->n++;
    }
    return rc;
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

/* The template spans laid end to end, each followed by a NUL (no added
 * token holds one, so no match can run from one span into the next). */
typedef struct template_text {
    char *s;
    size_t len;
    size_t *start; /* per span of the prompt: where its text starts in s */
} template_text;

static int join_template_spans(const q35_prompt *p, template_text *tt, q35_err *e) {
    size_t n = 0;
    for (size_t i = 0; i < p->n_spans; i++)
        if (p->spans[i].kind == Q35_TEXT_TEMPLATE) n += p->spans[i].len + 1;
    tt->s = malloc(n + 1);
    tt->start = malloc((p->n_spans + 1) * sizeof *tt->start);
    if (!tt->s || !tt->start) return q35_err_set(e, Q35_ENOMEM, "prompt encode: out of memory");
    tt->len = 0;
    for (size_t i = 0; i < p->n_spans; i++) {
        tt->start[i] = tt->len;
        if (p->spans[i].kind != Q35_TEXT_TEMPLATE) continue;
        memcpy(tt->s + tt->len, p->text + p->spans[i].off, p->spans[i].len);
        tt->len += p->spans[i].len;
        tt->s[tt->len++] = 0;
    }
    return 0;
}

/* Tokenizing all template text with added tokens matched tells which added
 * tokens the tokenizer's own matcher picks there (whatever its rules); each
 * is then located in the prompt, and the plain text before it and the token
 * itself are emitted. One tokenizer call for all of them: calls have a
 * fixed cost. */
static int encode_with_template_tokens(const q35_tokenizer *t, const q35_prompt *p, q35_tokens *out,
                                       q35_err *e) {
    template_text tt = {0};
    q35_tokens found = {0};
    int rc = join_template_spans(p, &tt, e);
    if (!rc) rc = q35_tokenize_append(t, tt.s, tt.len, Q35_ADDED_MATCH, &found, e);
    size_t pos = 0, span = 0, cursor = 0;
    memo *m = calloc(1, sizeof *m);
    if (!rc && !m) rc = q35_err_set(e, Q35_ENOMEM, "prompt encode: out of memory");
    for (size_t i = 0; !rc && i < found.n; i++) {
        if (!q35_token_is_added(t, found.ids[i])) continue;
        size_t blen;
        const char *b = q35_token_bytes(t, found.ids[i], &blen);
        const char *at = b && blen ? memmem(tt.s + pos, tt.len - pos, b, blen) : NULL;
        if (!at) {
            rc = q35_err_set(e, Q35_ESTATE,
                             "prompt encode: added token %d not found in the "
                             "template text",
                             (int)found.ids[i]);
            break;
        }
        size_t jo = (size_t)(at - tt.s);
        while (span + 1 < p->n_spans && tt.start[span + 1] <= jo)
            span++;
        const q35_text_span *s = &p->spans[span];
        if (s->kind != Q35_TEXT_TEMPLATE || jo + blen > tt.start[span] + s->len) {
            rc = q35_err_set(e, Q35_ESTATE, "prompt encode: added token %d crosses a span",
                             (int)found.ids[i]);
            break;
        }
        size_t off = s->off + (jo - tt.start[span]);
        rc = encode_plain(t, p, cursor, off, m, out, e);
        if (!rc) rc = push_id(out, found.ids[i], e);
        cursor = off + blen;
        pos = jo + blen;
    }
    if (!rc) rc = encode_plain(t, p, cursor, p->len, m, out, e);
    free(m);
    q35_tokens_free(&found);
    free(tt.s);
    free(tt.start);
    return rc;
}

int q35_prompt_encode(const q35_tokenizer *t, const q35_prompt *p, q35_tokens *out, q35_err *e) {
    if (!t || !out) return q35_err_set(e, Q35_EINVAL, "prompt encode: NULL tokenizer or output");
    int rc = check_spans(p, e);
    if (rc) return rc;
    size_t n0 = out->n;
    rc = encode_with_template_tokens(t, p, out, e);
    if (rc) out->n = n0;
    return rc;
}
