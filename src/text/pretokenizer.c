/* pretokenizer.c — the Split pre-tokenizer: the regexes named by the
 * tokenizer file cut normalized text into pieces before BPE. Every match is
 * a piece and so is every stretch between matches (HF's "Isolated"
 * behaviour); with several regexes each one splits the pieces of the one
 * before. PCRE2 in UTF + UCP mode gives the Unicode classes (\p{L},
 * \p{N}, \s) of the Oniguruma patterns HF runs; JIT makes it fast. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

/* Qwen2/Qwen3 and Qwen3.5 patterns (the latter lets letter runs absorb
 * combining marks), as their tokenizer.json files give them. */
static const char qwen2_regex[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
                                  "N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                                  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char qwen35_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char *q35_tok_pretok_regex_named(const char *pre) {
    if (!pre) return NULL;
    if (!strcmp(pre, "qwen2")) return qwen2_regex;
    if (!strcmp(pre, "qwen35")) return qwen35_regex;
    return NULL;
}

/* The pattern in PCRE2's terms where the dialects differ. HF compiles with
 * Oniguruma, whose \s (Unicode: tab..CR, NEL, Zs, Zl, Zp) is exactly the
 * White_Space property; PCRE2's own \s also takes U+180E (Mongolian vowel
 * separator, a space before Unicode 6.3), which would split differently.
 * Caller frees. */
static char *to_pcre2(const char *re) {
    size_t n = strlen(re), extra = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (re[i] == '\\') extra += 16, i++;
    char *out = malloc(n + extra + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '\\' && i + 1 < n && (re[i + 1] == 's' || re[i + 1] == 'S')) {
            const char *p = re[i + 1] == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
            memcpy(out + o, p, strlen(p));
            o += strlen(p);
            i++;
            continue;
        }
        out[o++] = re[i];
        if (re[i] == '\\' && i + 1 < n) out[o++] = re[++i]; /* keep other escapes whole */
    }
    out[o] = 0;
    return out;
}

int tok_pretok_compile(q35_tokenizer *t, const char *const *regex, size_t n, q35_err *e) {
    for (size_t k = 0; k < n; k++) {
        int err;
        PCRE2_SIZE off;
        t->pretok_src[k] = strdup(regex[k]);
        char *pattern = to_pcre2(regex[k]);
        if (!t->pretok_src[k] || !pattern) {
            free(pattern);
            return q35_err_set(e, Q35_ENOMEM, "pre-tokenizer: out of memory");
        }
        t->pretok[k] = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
        free(pattern);
        t->n_pretok = (uint32_t)k + 1;
        if (!t->pretok[k]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            return q35_err_set(e, Q35_EFORMAT, "pre-tokenizer regex %zu: %s at offset %zu", k,
                               (const char *)msg, (size_t)off);
        }
        /* Without JIT (unsupported CPU) the interpreter gives the same matches. */
        (void)pcre2_jit_compile(t->pretok[k], PCRE2_JIT_COMPLETE);
    }
    return Q35_OK;
}

void tok_pretok_free(q35_tokenizer *t) {
    for (uint32_t k = 0; k < t->n_pretok; k++) {
        pcre2_code_free(t->pretok[k]);
        free(t->pretok_src[k]);
    }
    t->n_pretok = 0;
}

int tok_pretok_ctx_init(tok_encode_ctx *c) {
    const q35_tokenizer *t = c->t;
    if (!t->n_pretok) return Q35_OK;
    /* The JIT starts on its default 32 KB stack; a larger one is mapped
     * only for a match that needs it (short calls stay cheap). */
    c->mctx = pcre2_match_context_create(NULL);
    if (!c->mctx) return q35_err_set(c->e, Q35_ENOMEM, "tokenize: out of memory");
    for (uint32_t k = 0; k < t->n_pretok; k++) {
        c->md[k] = pcre2_match_data_create_from_pattern(t->pretok[k], NULL);
        if (!c->md[k]) return q35_err_set(c->e, Q35_ENOMEM, "tokenize: out of memory");
    }
    return Q35_OK;
}

void tok_pretok_ctx_free(tok_encode_ctx *c) {
    for (int k = 0; k < TOK_MAX_PRETOK; k++) {
        pcre2_match_data_free(c->md[k]);
        c->md[k] = NULL;
    }
    pcre2_match_context_free(c->mctx);
    pcre2_jit_stack_free(c->jit_stack);
    c->mctx = NULL;
    c->jit_stack = NULL;
}

static int split_level(tok_encode_ctx *c, uint32_t k, const char *s, size_t n) {
    const q35_tokenizer *t = c->t;
    if (k == t->n_pretok) return tok_bpe_piece(c, (const unsigned char *)s, n);
    pcre2_match_data *md = c->md[k];
    size_t pos = 0, last = 0;
    int rc;
    /* PCRE2's default budget (10M steps per match) is too small for the
     * Qwen patterns on a long whitespace run: "\s*[\r\n]+" walks the run
     * and back before "\s+(?!\S)" takes it. Legitimate patterns need steps
     * in proportion to the text; the budget grows with it and still stops a
     * pathological regex from a hostile file. */
    uint64_t limit = 10000000u + 64u * (uint64_t)n;
    pcre2_set_match_limit(c->mctx, limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit);
    while (pos < n) {
        int m = pcre2_match(t->pretok[k], (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, c->mctx);
        if (m == PCRE2_ERROR_JIT_STACKLIMIT && !c->jit_stack) {
            c->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
            if (!c->jit_stack) return q35_err_set(c->e, Q35_ENOMEM, "tokenize: out of memory");
            pcre2_jit_stack_assign(c->mctx, NULL, c->jit_stack);
            continue; /* the same match again, with room */
        }
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            return q35_err_set(c->e, Q35_EOVERFLOW, "tokenize: pre-tokenizer regex %u: %s", k,
                               (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) { /* an empty match cuts nothing: step over one character */
            pos = ms + 1;
            while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        if (ms > last && (rc = split_level(c, k + 1, s + last, ms - last))) return rc;
        if ((rc = split_level(c, k + 1, s + ms, me - ms))) return rc;
        last = pos = me;
    }
    if (last < n && (rc = split_level(c, k + 1, s + last, n - last))) return rc;
    return Q35_OK;
}

int tok_pretok_encode(tok_encode_ctx *c, const char *s, size_t n) {
    return split_level(c, 0, s, n);
}
