/* tokenizer_gguf.c — tokenizer.ggml.* metadata to q35_tok_parts.
 *
 * llama.cpp's converter writes a Qwen vocabulary as:
 *   tokenizer.ggml.model       "gpt2" (byte-level BPE)
 *   tokenizer.ggml.pre         "qwen2" / "qwen35": names the Split regex
 *   tokenizer.ggml.tokens      every id in order: vocabulary entries in
 *                              their byte-level spelling ("Ġworld"), added
 *                              tokens as their text ("<|im_end|>"), and
 *                              "[PADn]" fillers up to the embedding size
 *   tokenizer.ggml.token_type  1 normal, 3 control (special added token),
 *                              4 user-defined (non-special added token),
 *                              5 unused (the fillers); 2 unknown and 6 byte
 *                              belong to other tokenizer kinds
 *   tokenizer.ggml.merges      "left right" in rank order
 *   tokenizer.ggml.{eos,padding,bos}_token_id, add_bos_token
 *   tokenizer.chat_template    the Jinja template
 * What GGUF does not record is taken as Qwen's tokenizer.json has it: NFC
 * normalization, added tokens with no lstrip/rstrip/single_word and matched
 * in the raw text. The converter marks any added token that looks like
 * <|...|> as control even where HF calls it non-special: GGUF cannot tell
 * the difference, so such tokens are special here.
 * Unused fillers become holes: they never decode or encode, and the
 * tokenizer's size ends at the last real token, as HF's does. */
#include "text/tokenizer_gguf.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/tokenizer.h"
#include "text/tokenizer_cache.h"

enum { TT_UNDEFINED = 0, TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE };

typedef struct gguf_vocab {
    const char **pieces;
    uint32_t *piece_len;
    uint8_t *attr;
    const char **merge_strs;
    uint32_t *merge_lens;
} gguf_vocab;

static void vocab_free(gguf_vocab *v) {
    free(v->pieces);
    free(v->piece_len);
    free(v->attr);
    free(v->merge_strs);
    free(v->merge_lens);
}

static const q35_gguf_kv *string_array(const q35_gguf *g, const char *key, bool required,
                                       q35_err *e) {
    const q35_gguf_kv *kv = q35_gguf_find(g, key);
    if (!kv) {
        if (required) q35_err_set(e, Q35_EFORMAT, "%s: metadata key %s is missing", g->where, key);
        return NULL;
    }
    if (kv->type != Q35_GGUF_ARRAY || kv->arr_type != Q35_GGUF_STRING) {
        q35_err_set(e, Q35_EFORMAT, "%s: %s is not an array of strings", g->where, key);
        return NULL;
    }
    return kv;
}

/* An optional token id in [0, n); -1 when absent. */
static int optional_id(const q35_gguf *g, const char *key, size_t n, int32_t *out, q35_err *e) {
    *out = -1;
    if (!q35_gguf_find(g, key)) return Q35_OK;
    int64_t v;
    int rc = q35_gguf_get_int(g, key, 0, (int64_t)n - 1, &v, e);
    if (!rc) *out = (int32_t)v;
    return rc;
}

static int read_tokens(const q35_gguf *g, const q35_gguf_kv *toks, gguf_vocab *v, q35_err *e) {
    size_t n = (size_t)toks->arr_n;
    v->pieces = calloc(n, sizeof *v->pieces);
    v->piece_len = calloc(n, sizeof *v->piece_len);
    v->attr = calloc(n, 1);
    if (!v->pieces || !v->piece_len || !v->attr)
        return q35_err_set(e, Q35_ENOMEM, "%s: out of memory for %zu tokens", g->where, n);
    const q35_gguf_kv *types = q35_gguf_find(g, "tokenizer.ggml.token_type");
    if (types && (types->type != Q35_GGUF_ARRAY || types->arr_n != toks->arr_n))
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: tokenizer.ggml.token_type must be an array of %zu entries (one "
                           "per token)",
                           g->where, n);
    size_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        q35_gguf_str s;
        q35_gguf_arr_next_str(toks, &cur, &s);
        int64_t type = TT_NORMAL;
        if (types) {
            int rc = q35_gguf_arr_int(types, i, &type, e);
            if (rc) return rc;
        }
        if (s.len > UINT32_MAX)
            return q35_err_set(e, Q35_EFORMAT, "%s: token %zu is too long", g->where, i);
        switch (type) {
        case TT_UNDEFINED:
        case TT_NORMAL: v->attr[i] = Q35_TOK_MODEL; break;
        case TT_CONTROL: v->attr[i] = Q35_TOK_ADDED | Q35_TOK_SPECIAL; break;
        case TT_USER_DEFINED: v->attr[i] = Q35_TOK_ADDED; break;
        case TT_UNUSED: continue; /* a hole */
        default:
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: token %zu has tokenizer.ggml.token_type %lld, which a "
                               "byte-level BPE vocabulary does not use",
                               g->where, i, (long long)type);
        }
        v->pieces[i] = s.p;
        v->piece_len[i] = (uint32_t)s.len;
    }
    return Q35_OK;
}

static int read_merges(const q35_gguf *g, const q35_gguf_kv *merges, gguf_vocab *v, q35_err *e) {
    size_t n = (size_t)merges->arr_n;
    v->merge_strs = calloc(2 * n + 1, sizeof *v->merge_strs);
    v->merge_lens = calloc(2 * n + 1, sizeof *v->merge_lens);
    if (!v->merge_strs || !v->merge_lens)
        return q35_err_set(e, Q35_ENOMEM, "%s: out of memory for %zu merges", g->where, n);
    size_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        q35_gguf_str s;
        q35_gguf_arr_next_str(merges, &cur, &s);
        if (s.len > UINT32_MAX ||
            !q35_tok_split_merge_line(s.p, s.len, &v->merge_strs[2 * i], &v->merge_lens[2 * i],
                                      &v->merge_strs[2 * i + 1], &v->merge_lens[2 * i + 1]))
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: tokenizer.ggml.merges[%zu] is not \"left right\"", g->where, i);
    }
    return Q35_OK;
}

static int copy_template(const q35_gguf *g, char **out, q35_err *e) {
    *out = NULL;
    if (!q35_gguf_find(g, "tokenizer.chat_template")) return Q35_OK;
    q35_gguf_str s;
    int rc = q35_gguf_get_str(g, "tokenizer.chat_template", &s, e);
    if (rc) return rc;
    *out = malloc(s.len + 1);
    if (!*out) return q35_err_set(e, Q35_ENOMEM, "%s: out of memory", g->where);
    memcpy(*out, s.p, s.len);
    (*out)[s.len] = 0;
    return Q35_OK;
}

q35_tokenizer *q35_tokenizer_from_gguf(const q35_gguf *g, char **chat_template, q35_err *e) {
    if (chat_template) *chat_template = NULL;
    q35_gguf_str model, pre;
    char shown[128], pre_name[64];
    if (q35_gguf_get_str(g, "tokenizer.ggml.model", &model, e)) return NULL;
    if (!q35_gguf_str_eq(model, "gpt2")) {
        q35_err_set(e, Q35_EFORMAT,
                    "%s: tokenizer.ggml.model is \"%s\"; q35 reads byte-level BPE (\"gpt2\")",
                    g->where, q35_gguf_str_print(model, shown, sizeof shown));
        return NULL;
    }
    if (q35_gguf_get_str(g, "tokenizer.ggml.pre", &pre, e)) return NULL;
    const char *regex = NULL;
    if (pre.len < sizeof pre_name) {
        memcpy(pre_name, pre.p, pre.len);
        pre_name[pre.len] = 0;
        if (strlen(pre_name) == pre.len) regex = q35_tok_pretok_regex_named(pre_name);
    }
    if (!regex) {
        q35_err_set(e, Q35_EFORMAT,
                    "%s: tokenizer.ggml.pre \"%s\" is not a pre-tokenizer q35 knows (qwen2, "
                    "qwen35)",
                    g->where, q35_gguf_str_print(pre, shown, sizeof shown));
        return NULL;
    }
    const q35_gguf_kv *toks = string_array(g, "tokenizer.ggml.tokens", true, e);
    if (!toks) return NULL;
    q35_err probe = {0};
    const q35_gguf_kv *merges = string_array(g, "tokenizer.ggml.merges", false, &probe);
    if (!merges && probe.code) {
        if (e) *e = probe;
        return NULL;
    }
    bool add_bos = false;
    if (q35_gguf_find(g, "tokenizer.ggml.add_bos_token") &&
        q35_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, e))
        return NULL;

    gguf_vocab v = {0};
    q35_tok_parts p = {0};
    q35_tokenizer *t = NULL;
    size_t n = (size_t)toks->arr_n;
    int32_t bos;
    if (read_tokens(g, toks, &v, e) || (merges && read_merges(g, merges, &v, e)) ||
        optional_id(g, "tokenizer.ggml.eos_token_id", n, &p.eos_id, e) ||
        optional_id(g, "tokenizer.ggml.padding_token_id", n, &p.pad_id, e) ||
        optional_id(g, "tokenizer.ggml.bos_token_id", n, &bos, e))
        goto done;
    /* HF names a bos only when it is added; Qwen's is null. */
    p.bos_id = add_bos ? bos : -1;
    p.n_tokens = n;
    p.pieces = v.pieces;
    p.piece_len = v.piece_len;
    p.attr = v.attr;
    p.n_merges = merges ? (size_t)merges->arr_n : 0;
    p.merge_strs = v.merge_strs;
    p.merge_str_lens = v.merge_lens;
    p.normalizer = Q35_TOK_NORM_NFC;
    p.n_pretok = 1;
    p.pretok_regex = &regex;
    p.ignore_merges = false;
    p.source = g->where;
    t = q35_tokenizer_from_parts(&p, e);
    if (t && chat_template && copy_template(g, chat_template, e)) {
        q35_tokenizer_free(t);
        t = NULL;
    }
done:
    vocab_free(&v);
    return t;
}

/* The metadata section (every key/value pair) of g: what the tokenizer is
 * built from, so what the binary cache is keyed on. */
static void metadata_bytes(const q35_gguf *g, const unsigned char **p, size_t *n) {
    *p = g->base + 24;
    *n = 0;
    if (g->n_kv == 0) return;
    const q35_gguf_kv *last = &g->kvs[g->n_kv - 1];
    *n = (size_t)(last->val - *p) + last->val_bytes;
}

q35_tokenizer *q35_tokenizer_load_gguf(const char *path, char **chat_template, q35_err *e) {
    q35_gguf g;
    if (chat_template) *chat_template = NULL;
    if (q35_gguf_open(&g, path, e)) return NULL;
    /* Building a 248k-token vocabulary from parts takes a few hundred ms;
     * the binary cache of tokenizer_cache.c brings a second load to a few.
     * The "gguf" tag keeps these keys apart from tokenizer.json ones. */
    const unsigned char *meta;
    size_t meta_len;
    metadata_bytes(&g, &meta, &meta_len);
    uint64_t key = tok_cache_key(meta, meta_len, "gguf", 4);
    char cache_file[4096];
    bool cached = tok_cache_path(key, cache_file, sizeof cache_file);
    q35_tokenizer *t = cached ? tok_cache_load(cache_file, key, meta_len) : NULL;
    if (t) {
        if (chat_template && copy_template(&g, chat_template, e)) {
            q35_tokenizer_free(t);
            t = NULL;
        }
    } else {
        t = q35_tokenizer_from_gguf(&g, chat_template, e);
        if (t && cached) tok_cache_store(t, cache_file, key, meta_len);
    }
    q35_gguf_close(&g);
    return t;
}
