/* tokenizer_added.c — added tokens (<|im_end|>, <think>, ...) found in the
 * text before anything else, as HF's AddedVocabulary does: leftmost match
 * first, the longest one at a position, matches never overlapping. Tokens
 * flagged "normalized" are looked for in the normalized text, the others in
 * the raw text. With Q35_ADDED_SPECIAL_AS_TEXT a special token is still
 * found (so nothing inside it matches) but left as text, like HF's
 * encode_special_tokens.
 *
 * lstrip / rstrip swallow Unicode White_Space next to the token and
 * single_word refuses a match touching a word character (letters, marks,
 * digits, connector punctuation), following HF's \s and \w; none of the
 * Qwen tokens use these flags. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

static int cmp_added(const void *a, const void *b) {
    const tok_added *x = a, *y = b;
    unsigned char fx = (unsigned char)x->match[0], fy = (unsigned char)y->match[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->match_len != y->match_len) return x->match_len > y->match_len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void index_set(tok_added_set *s) {
    qsort(s->tokens, s->n, sizeof *s->tokens, cmp_added);
    uint32_t k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < s->n && (unsigned char)s->tokens[k].match[0] < b)
            k++;
        s->first[b] = k;
    }
}

int tok_added_build(q35_tokenizer *t, q35_err *e) {
    uint32_t n_raw = 0, n_norm = 0;
    size_t norm_bytes = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        if (!(t->attr[i] & Q35_TOK_ADDED)) continue;
        if ((t->attr[i] & Q35_TOK_NORMALIZED) && t->normalizer != Q35_TOK_NORM_NONE) {
            n_norm++;
            norm_bytes += (size_t)(t->piece_off[i + 1] - t->piece_off[i]) * 3 + 1;
        } else {
            n_raw++;
        }
    }
    t->added_raw.tokens = calloc(n_raw + 1, sizeof(tok_added));
    t->added_norm.tokens = calloc(n_norm + 1, sizeof(tok_added));
    t->added_norm_text = malloc(norm_bytes + 1);
    if (!t->added_raw.tokens || !t->added_norm.tokens || !t->added_norm_text)
        return q35_err_set(e, Q35_ENOMEM, "tokenizer: out of memory for added tokens");
    size_t used = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        if (!(t->attr[i] & Q35_TOK_ADDED)) continue;
        uint32_t len;
        const char *p = tok_piece(t, i, &len);
        tok_added a = {.id = (int32_t)i, .attr = t->attr[i], .match = p, .match_len = len};
        if ((t->attr[i] & Q35_TOK_NORMALIZED) && t->normalizer != Q35_TOK_NORM_NONE) {
            /* Matched against normalized text, so it must be normalized too. */
            char *owned;
            size_t nl;
            const char *np = tok_normalize(t->normalizer, p, len, &nl, &owned, e);
            if (!np) return q35_err_set(e, Q35_EFORMAT, "added token %u: cannot normalize", i);
            if (nl == 0 || used + nl > norm_bytes) {
                free(owned);
                return q35_err_set(e, Q35_EFORMAT, "added token %u: normalizes to %zu bytes", i,
                                   nl);
            }
            memcpy(t->added_norm_text + used, np, nl);
            free(owned);
            a.match = t->added_norm_text + used;
            a.match_len = (uint32_t)nl;
            used += nl;
            t->added_norm.tokens[t->added_norm.n++] = a;
        } else {
            t->added_raw.tokens[t->added_raw.n++] = a;
        }
    }
    index_set(&t->added_raw);
    index_set(&t->added_norm);
    return Q35_OK;
}

void tok_added_free(q35_tokenizer *t) {
    free(t->added_raw.tokens);
    free(t->added_norm.tokens);
    free(t->added_norm_text);
    t->added_raw.tokens = t->added_norm.tokens = NULL;
    t->added_norm_text = NULL;
}

/* The code point ending just before s + end (-1 at the start or on bad UTF-8). */
static int32_t cp_before(const char *s, size_t end) {
    if (end == 0) return -1;
    size_t b = end - 1;
    while (b > 0 && end - b < 4 && ((unsigned char)s[b] & 0xC0) == 0x80)
        b--;
    utf8proc_int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s + b, (utf8proc_ssize_t)(end - b), &cp) !=
        (utf8proc_ssize_t)(end - b))
        return -1;
    return cp;
}

static int32_t cp_at(const char *s, size_t n, size_t pos, size_t *len) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t r =
        utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(n - pos), &cp);
    if (r <= 0) return -1;
    *len = (size_t)r;
    return cp;
}

static bool is_word_char(int32_t cp) {
    if (cp < 0) return false;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC: return true;
    default: return cp == 0x200C || cp == 0x200D;
    }
}

/* Unicode White_Space. */
static bool is_space_char(int32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Leftmost-longest match at or after pos; false when none. */
static bool find_next(const tok_added_set *set, const char *s, size_t n, size_t pos,
                      const tok_added **hit, size_t *at) {
    for (size_t i = pos; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        for (uint32_t k = set->first[b]; k < set->first[b + 1]; k++) {
            const tok_added *a = &set->tokens[k];
            if (a->match_len <= n - i && memcmp(s + i, a->match, a->match_len) == 0) {
                *hit = a;
                *at = i;
                return true;
            }
        }
    }
    return false;
}

int tok_added_split(tok_encode_ctx *c, const tok_added_set *set, q35_added_mode mode, const char *s,
                    size_t n, tok_text_fn text_fn) {
    int rc;
    size_t done = 0, pos = 0;
    const tok_added *a;
    size_t at;
    while (mode != Q35_ADDED_AS_TEXT && set->n && pos < n && find_next(set, s, n, pos, &a, &at)) {
        size_t start = at, stop = at + a->match_len;
        pos = stop;
        if (mode == Q35_ADDED_SPECIAL_AS_TEXT && (a->attr & Q35_TOK_SPECIAL)) continue;
        if (a->attr & Q35_TOK_SINGLE_WORD) {
            size_t l = 0;
            int32_t after = stop < n ? cp_at(s, n, stop, &l) : -1;
            if (is_word_char(cp_before(s, start)) || is_word_char(after)) continue;
        }
        if (a->attr & Q35_TOK_LSTRIP) {
            for (int32_t cp; start > done && is_space_char(cp = cp_before(s, start));)
                start -= (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t[4]){0});
        }
        if (a->attr & Q35_TOK_RSTRIP) {
            size_t l = 0;
            for (int32_t cp; stop < n && is_space_char(cp = cp_at(s, n, stop, &l));)
                stop += l;
        }
        if (stop <= done) continue; /* inside whitespace an earlier rstrip took */
        if (start < done) start = done;
        if (start > done && (rc = text_fn(c, s + done, start - done))) return rc;
        if ((rc = tok_push_id(c, a->id))) return rc;
        done = stop;
    }
    if (done < n && (rc = text_fn(c, s + done, n - done))) return rc;
    return Q35_OK;
}
