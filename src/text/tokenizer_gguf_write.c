/* tokenizer_gguf_write.c — q35_tokenizer to tokenizer.* GGUF metadata.
 *
 * Written as llama.cpp's convert_hf_to_gguf.py does for Qwen (and as
 * tokenizer_gguf.c reads back):
 *   - every id below the embedding's row count is listed: vocabulary tokens
 *     in their byte-level spelling (type 1, normal), added tokens as their
 *     text (type 3, control, when special or when they look like <|...|>;
 *     else type 4, user-defined), and "[PADn]" (type 5, unused) for ids
 *     no token has;
 *   - merges as "left right" in rank order;
 *   - the pre-tokenizer by name: GGUF has no place for a regex, so the
 *     tokenizer's must be the Qwen2/3 or the Qwen3.5 one.
 * What GGUF cannot express (other normalizers, ignore_merges, added tokens
 * that strip whitespace or match normalized text) is refused rather than
 * written into a file that would tokenize differently. */
#include "text/tokenizer_gguf_write.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mapped_file.h"
#include "formats/json_doc.h"
#include "text/tokenizer_internal.h"

#define MAX_JSON_BYTES (64u << 20)

enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

/* llama.cpp's does_token_look_special, for the Qwen-style markers. */
static bool looks_special(const char *s, size_t n) {
    return n >= 4 && !memcmp(s, "<|", 2) && !memcmp(s + n - 2, "|>", 2);
}

static const char *pre_name(const q35_tokenizer *t, q35_err *e) {
    static const char *const names[] = {"qwen35", "qwen2"};
    if (t->n_pretok == 1)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(t->pretok_src[0], q35_tok_pretok_regex_named(names[i]))) return names[i];
    q35_err_set(e, Q35_EINVAL,
                "the tokenizer's pre-tokenizer (%u regex%s) is neither Qwen2/3's nor Qwen3.5's: "
                "GGUF names a pre-tokenizer and cannot carry another regex",
                t->n_pretok, t->n_pretok == 1 ? "" : "es");
    return NULL;
}

static int check_expressible(const q35_tokenizer *t, size_t n_rows, q35_err *e) {
    if (t->normalizer != Q35_TOK_NORM_NFC)
        return q35_err_set(e, Q35_EINVAL,
                           "the tokenizer does not normalize to NFC; GGUF (llama.cpp's qwen2/"
                           "qwen35 vocabularies) always does");
    if (t->ignore_merges)
        return q35_err_set(e, Q35_EINVAL,
                           "the tokenizer sets ignore_merges, which GGUF metadata cannot carry");
    if (t->n_vocab > n_rows)
        return q35_err_set(e, Q35_EINVAL,
                           "the tokenizer has %u ids but the model's embedding only %zu rows",
                           t->n_vocab, n_rows);
    const uint8_t strip =
        Q35_TOK_LSTRIP | Q35_TOK_RSTRIP | Q35_TOK_NORMALIZED | Q35_TOK_SINGLE_WORD;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (!(t->attr[id] & strip)) continue;
        uint32_t len;
        const char *p = tok_piece(t, id, &len);
        return q35_err_set(e, Q35_EINVAL,
                           "added token %u (\"%.*s\") strips whitespace, matches whole words or "
                           "matches normalized text, which GGUF metadata cannot carry",
                           id, (int)(len > 60 ? 60 : len), p);
    }
    return Q35_OK;
}

typedef struct arrays {
    const char **s;
    size_t *len;
    int32_t *type;
    char *pads; /* "[PADn]" fillers, 24 bytes each */
    char *merges;
} arrays;

static void arrays_free(arrays *a) {
    free(a->s);
    free(a->len);
    free(a->type);
    free(a->pads);
    free(a->merges);
}

static int tokens_kvs(const q35_tokenizer *t, size_t n_rows, arrays *a, q35_gguf_kvs *out,
                      q35_err *e) {
    a->s = malloc(n_rows * sizeof *a->s);
    a->len = malloc(n_rows * sizeof *a->len);
    a->type = malloc(n_rows * sizeof *a->type);
    size_t n_pad = 0;
    for (size_t id = 0; id < n_rows; id++)
        n_pad += id >= t->n_vocab || !t->attr[id];
    a->pads = malloc(n_pad * 24 + 1);
    if (!a->s || !a->len || !a->type || !a->pads)
        return q35_err_set(e, Q35_ENOMEM, "out of memory for %zu tokens", n_rows);
    char *pad = a->pads;
    for (size_t id = 0; id < n_rows; id++) {
        if (id >= t->n_vocab || !t->attr[id]) {
            int n = snprintf(pad, 24, "[PAD%zu]", id);
            a->s[id] = pad;
            a->len[id] = (size_t)n;
            a->type[id] = TT_UNUSED;
            pad += 24;
            continue;
        }
        uint32_t len;
        a->s[id] = tok_piece(t, (uint32_t)id, &len);
        a->len[id] = len;
        uint8_t at = t->attr[id];
        if (!(at & Q35_TOK_ADDED))
            a->type[id] = TT_NORMAL;
        else
            a->type[id] = (at & Q35_TOK_SPECIAL) || looks_special(a->s[id], len) ? TT_CONTROL
                                                                                 : TT_USER_DEFINED;
    }
    int rc = q35_gguf_kvs_set_arr_str(out, "tokenizer.ggml.tokens", a->s, a->len, n_rows, e);
    if (!rc) rc = q35_gguf_kvs_set_arr_i32(out, "tokenizer.ggml.token_type", a->type, n_rows, e);
    return rc;
}

static int merges_kvs(const q35_tokenizer *t, arrays *a, q35_gguf_kvs *out, q35_err *e) {
    size_t n = t->n_merges, total = 0;
    for (size_t r = 0; r < n; r++) {
        uint32_t la, lb;
        tok_piece(t, (uint32_t)t->merges[2 * r], &la);
        tok_piece(t, (uint32_t)t->merges[2 * r + 1], &lb);
        total += (size_t)la + lb + 1;
    }
    /* the token arrays are written: reuse them for the merges */
    free(a->s);
    free(a->len);
    a->s = malloc((n ? n : 1) * sizeof *a->s);
    a->len = malloc((n ? n : 1) * sizeof *a->len);
    a->merges = malloc(total + 1);
    if (!a->s || !a->len || !a->merges)
        return q35_err_set(e, Q35_ENOMEM, "out of memory for %zu merges", n);
    char *p = a->merges;
    for (size_t r = 0; r < n; r++) {
        uint32_t la, lb;
        const char *l = tok_piece(t, (uint32_t)t->merges[2 * r], &la);
        const char *rt = tok_piece(t, (uint32_t)t->merges[2 * r + 1], &lb);
        a->s[r] = p;
        a->len[r] = (size_t)la + lb + 1;
        memcpy(p, l, la);
        p[la] = ' ';
        memcpy(p + la + 1, rt, lb);
        p += a->len[r];
    }
    return q35_gguf_kvs_set_arr_str(out, "tokenizer.ggml.merges", a->s, a->len, n, e);
}

int q35_tokenizer_to_gguf_kvs(const q35_tokenizer *t, size_t n_rows, const char *chat_template,
                              q35_gguf_kvs *out, q35_err *e) {
    int rc = check_expressible(t, n_rows, e);
    if (rc) return rc;
    const char *pre = pre_name(t, e);
    if (!pre) return Q35_EINVAL;
    arrays a = {0};
    if ((rc = q35_gguf_kvs_set_str(out, "tokenizer.ggml.model", "gpt2", e)) ||
        (rc = q35_gguf_kvs_set_str(out, "tokenizer.ggml.pre", pre, e)) ||
        (rc = tokens_kvs(t, n_rows, &a, out, e)) || (rc = merges_kvs(t, &a, out, e)))
        goto done;
    if (t->eos_id >= 0 &&
        (rc = q35_gguf_kvs_set_u32(out, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos_id, e)))
        goto done;
    if (t->pad_id >= 0 &&
        (rc = q35_gguf_kvs_set_u32(out, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad_id, e)))
        goto done;
    if (t->bos_id >= 0 &&
        (rc = q35_gguf_kvs_set_u32(out, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos_id, e)))
        goto done;
    /* q35 never prepends a bos; HF's Qwen tokenizers do not either */
    if ((rc = q35_gguf_kvs_set_bool(out, "tokenizer.ggml.add_bos_token", false, e))) goto done;
    if (chat_template) rc = q35_gguf_kvs_set_str(out, "tokenizer.chat_template", chat_template, e);
done:
    arrays_free(&a);
    return rc;
}

int q35_chat_template_of_dir(const char *dir, char **out, q35_err *e) {
    *out = NULL;
    char path[4200];
    size_t len;
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    q35_err probe = {0};
    *out = q35_read_text_file(path, MAX_JSON_BYTES, &len, &probe);
    if (*out) return Q35_OK;
    if (probe.code != Q35_ENOTFOUND) { /* there, but unreadable */
        if (e) *e = probe;
        return probe.code;
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    q35_err_clear(&probe);
    char *cfg = q35_read_text_file(path, MAX_JSON_BYTES, &len, &probe);
    if (!cfg) { /* no config: no template */
        if (probe.code == Q35_ENOTFOUND) return Q35_OK;
        if (e) *e = probe;
        return probe.code;
    }
    cJSON *root = q35_json_parse(cfg, len, path, NULL, e);
    free(cfg);
    if (!root) return Q35_EFORMAT;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (cJSON_IsArray(t)) {
        const cJSON *item, *pick = NULL;
        cJSON_ArrayForEach(item, t) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
            if (!pick || (cJSON_IsString(name) && !strcmp(name->valuestring, "default")))
                pick = item;
        }
        t = cJSON_GetObjectItemCaseSensitive(pick, "template");
    }
    int rc = Q35_OK;
    if (cJSON_IsString(t) && !(*out = strdup(t->valuestring)))
        rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
    cJSON_Delete(root);
    return rc;
}
