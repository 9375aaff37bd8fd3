/* tokenizer_json.c — q35_tokenizer_load: HF tokenizer.json (+ the
 * tokenizer_config.json beside it) to parts, parts to a tokenizer, with the
 * binary cache (tokenizer_cache.c) in front so that the JSON of a large
 * vocabulary is parsed once per file content.
 *
 * Supported, as the Qwen family uses them: model BPE over the byte-level
 * alphabet (merges as "a b" strings or ["a","b"] pairs, ignore_merges),
 * normalizer NFC (alone or in a Sequence) or none, pre-tokenizers Split
 * (Regex or String pattern, behavior Isolated, not inverted) and ByteLevel
 * (add_prefix_space false; use_regex adds GPT-2's regex), decoder
 * ByteLevel. Anything else is refused with an error naming it, rather than
 * tokenized differently from HF. The post-processor is not applied (ids
 * equal HF's encode with add_special_tokens=False; Qwen's adds nothing). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/mapped_file.h"
#include "formats/file_kind.h"
#include "text/tokenizer_cache.h"
#include "text/tokenizer_gguf.h"
#include "text/tokenizer_internal.h"

#define CONFIG_MAX_BYTES (64u << 20)

static const char gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
                                 "|\\s+(?!\\S)|\\s+";

/* Everything parts point into, freed together. */
typedef struct json_parts {
    q35_tok_parts p;
    const char **pieces;
    uint32_t *piece_len;
    uint8_t *attr;
    const char **merge_strs;
    uint32_t *merge_lens;
    char *regex[TOK_MAX_PRETOK];
    const char *regex_ptrs[TOK_MAX_PRETOK];
    bool byte_level_pretok;
} json_parts;

static void json_parts_free(json_parts *j) {
    free(j->pieces);
    free(j->piece_len);
    free(j->attr);
    free(j->merge_strs);
    free(j->merge_lens);
    for (int k = 0; k < TOK_MAX_PRETOK; k++)
        free(j->regex[k]);
}

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* An id: a non-negative integer below TOK_MAX_TOKENS; -1 if not. */
static int64_t json_id(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d < TOK_MAX_TOKENS) || floor(d) != d) return -1;
    return (int64_t)d;
}

/* A boolean field: absent or null gives `dflt`; anything but a bool fails. */
static int json_bool(const cJSON *o, const char *name, bool dflt, bool *out, const char *where,
                     q35_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return Q35_OK;
    }
    if (!cJSON_IsBool(v))
        return q35_err_set(e, Q35_EFORMAT, "%s: \"%s\" must be true or false", where, name);
    *out = cJSON_IsTrue(v);
    return Q35_OK;
}

static bool null_or_empty_string(const cJSON *v) {
    return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]);
}

static int add_regex(json_parts *j, const char *re, size_t len, bool literal, const char *src,
                     q35_err *e) {
    if (j->p.n_pretok >= TOK_MAX_PRETOK)
        return q35_err_set(e, Q35_EFORMAT, "%s: more than %d pre-tokenizer splits", src,
                           TOK_MAX_PRETOK);
    char *s = malloc(2 * len + 1);
    if (!s) return q35_err_set(e, Q35_ENOMEM, "%s: out of memory", src);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)re[i];
        /* A String pattern is literal: escape ASCII punctuation (PCRE2 takes
         * "\x" for any non-alphanumeric ASCII x as x itself). */
        if (literal && c < 0x80 && !((c | 32) >= 'a' && (c | 32) <= 'z') && !(c >= '0' && c <= '9'))
            s[o++] = '\\';
        s[o++] = (char)c;
    }
    s[o] = 0;
    j->regex[j->p.n_pretok] = s;
    j->regex_ptrs[j->p.n_pretok] = s;
    j->p.n_pretok++;
    return Q35_OK;
}

static int parse_pretok(json_parts *j, const cJSON *pt, const char *src, int depth, q35_err *e) {
    if (!pt || cJSON_IsNull(pt)) return Q35_OK;
    const char *type = type_of(pt);
    if (!cJSON_IsObject(pt) || !type)
        return q35_err_set(e, Q35_EFORMAT, "%s: pre_tokenizer without a \"type\"", src);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
        if (!cJSON_IsArray(list) || depth > 4)
            return q35_err_set(e, Q35_EFORMAT, "%s: pre_tokenizer Sequence without a list", src);
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            int rc = parse_pretok(j, it, src, depth + 1, e);
            if (rc) return rc;
        }
        return Q35_OK;
    }
    if (!strcmp(type, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(pt, "behavior");
        bool invert;
        int rc = json_bool(pt, "invert", false, &invert, src, e);
        if (rc) return rc;
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") || invert)
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: Split pre-tokenizer: only behavior \"Isolated\", not inverted, "
                               "is supported",
                               src);
        if (cJSON_IsString(re))
            return add_regex(j, re->valuestring, strlen(re->valuestring), false, src, e);
        if (cJSON_IsString(str) && str->valuestring[0])
            return add_regex(j, str->valuestring, strlen(str->valuestring), true, src, e);
        return q35_err_set(e, Q35_EFORMAT, "%s: Split pre-tokenizer without a pattern", src);
    }
    if (!strcmp(type, "ByteLevel")) {
        bool prefix, use_regex;
        int rc = json_bool(pt, "add_prefix_space", true, &prefix, src, e);
        if (!rc) rc = json_bool(pt, "use_regex", true, &use_regex, src, e);
        if (rc) return rc;
        if (prefix)
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: ByteLevel pre-tokenizer with add_prefix_space is not supported",
                               src);
        j->byte_level_pretok = true;
        return use_regex ? add_regex(j, gpt2_regex, strlen(gpt2_regex), false, src, e) : Q35_OK;
    }
    return q35_err_set(e, Q35_EFORMAT, "%s: pre-tokenizer \"%s\" is not supported", src, type);
}

static int parse_normalizer(json_parts *j, const cJSON *n, const char *src, int depth, q35_err *e) {
    if (!n || cJSON_IsNull(n)) return Q35_OK;
    const char *type = type_of(n);
    if (!cJSON_IsObject(n) || !type)
        return q35_err_set(e, Q35_EFORMAT, "%s: normalizer without a \"type\"", src);
    if (!strcmp(type, "NFC")) {
        j->p.normalizer = Q35_TOK_NORM_NFC;
        return Q35_OK;
    }
    if (!strcmp(type, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
        if (!cJSON_IsArray(list))
            return q35_err_set(e, Q35_EFORMAT, "%s: normalizer Sequence without a list", src);
        cJSON_ArrayForEach(it, list) {
            int rc = parse_normalizer(j, it, src, depth + 1, e);
            if (rc) return rc;
        }
        return Q35_OK;
    }
    return q35_err_set(e, Q35_EFORMAT, "%s: normalizer \"%s\" is not supported", src, type);
}

static int parse_decoder(const cJSON *d, const char *src, q35_err *e) {
    const char *type = cJSON_IsObject(d) ? type_of(d) : NULL;
    if (type && !strcmp(type, "ByteLevel")) return Q35_OK;
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
        if (cJSON_GetArraySize(list) == 1)
            return parse_decoder(cJSON_GetArrayItem(list, 0), src, e);
    }
    return q35_err_set(e, Q35_EFORMAT, "%s: decoder \"%s\" is not supported (ByteLevel is)", src,
                       type ? type : "null");
}

/* Largest id named by the vocabulary, added tokens and config. */
static int64_t max_id(const cJSON *vocab, const cJSON *added, const cJSON *decoder_cfg) {
    int64_t m = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int64_t id = json_id(it);
        if (id > m) m = id;
    }
    cJSON_ArrayForEach(it, added) {
        int64_t id = json_id(cJSON_GetObjectItemCaseSensitive(it, "id"));
        if (id > m) m = id;
    }
    cJSON_ArrayForEach(it, decoder_cfg) {
        char *end;
        errno = 0;
        long long id = it->string ? strtoll(it->string, &end, 10) : -1;
        if (it->string && !*end && !errno && id >= 0 && id < TOK_MAX_TOKENS && id > m) m = id;
    }
    return m;
}

/* Adds (or marks) an added token; `where` names the source in errors. */
static int put_added(json_parts *j, int64_t id, const cJSON *tok, const char *content,
                     bool from_config, const char *where, q35_err *e) {
    bool special, single, lstrip, rstrip, normalized;
    int rc = json_bool(tok, "special", false, &special, where, e);
    if (!rc) rc = json_bool(tok, "single_word", false, &single, where, e);
    if (!rc) rc = json_bool(tok, "lstrip", false, &lstrip, where, e);
    if (!rc) rc = json_bool(tok, "rstrip", false, &rstrip, where, e);
    if (!rc) rc = json_bool(tok, "normalized", !special, &normalized, where, e);
    if (rc) return rc;
    if (!content[0])
        return q35_err_set(e, Q35_EFORMAT, "%s: added token %lld is empty", where, (long long)id);
    uint8_t a = Q35_TOK_ADDED | (special ? Q35_TOK_SPECIAL : 0) |
                (single ? Q35_TOK_SINGLE_WORD : 0) | (lstrip ? Q35_TOK_LSTRIP : 0) |
                (rstrip ? Q35_TOK_RSTRIP : 0) | (normalized ? Q35_TOK_NORMALIZED : 0);
    size_t len = strlen(content);
    if (j->pieces[id]) {
        bool same = j->piece_len[id] == len && !memcmp(j->pieces[id], content, len);
        if (!same)
            return q35_err_set(e, Q35_EFORMAT, "%s: added token %lld '%.60s' collides with '%.*s'",
                               where, (long long)id, content,
                               (int)(j->piece_len[id] > 60 ? 60 : j->piece_len[id]), j->pieces[id]);
        if (j->attr[id] & Q35_TOK_ADDED) {
            if (from_config) return Q35_OK; /* tokenizer.json already said it */
            return q35_err_set(e, Q35_EFORMAT, "%s: added token %lld listed twice", where,
                               (long long)id);
        }
        j->attr[id] |= a; /* a vocabulary entry that is also an added token */
        return Q35_OK;
    }
    j->pieces[id] = content;
    j->piece_len[id] = (uint32_t)len;
    j->attr[id] = a;
    return Q35_OK;
}

static int parse_added(json_parts *j, const cJSON *added, const cJSON *cfg_added, const char *src,
                       q35_err *e) {
    const cJSON *it;
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return q35_err_set(e, Q35_EFORMAT, "%s: \"added_tokens\" is not a list", src);
    cJSON_ArrayForEach(it, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        int64_t id = json_id(cJSON_GetObjectItemCaseSensitive(it, "id"));
        if (id < 0 || !cJSON_IsString(c))
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: an added token lacks an integer \"id\" or a string \"content\"",
                               src);
        int rc = put_added(j, id, it, c->valuestring, false, src, e);
        if (rc) return rc;
    }
    cJSON_ArrayForEach(it, cfg_added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        char *end;
        errno = 0;
        long long id = strtoll(it->string, &end, 10);
        if (*end || errno || id < 0 || id >= TOK_MAX_TOKENS || !cJSON_IsString(c))
            return q35_err_set(e, Q35_EFORMAT,
                               "tokenizer_config.json: added_tokens_decoder entry \"%.40s\" is "
                               "malformed",
                               it->string);
        int rc = put_added(j, id, it, c->valuestring, true, "tokenizer_config.json", e);
        if (rc) return rc;
    }
    return Q35_OK;
}

static int parse_model(json_parts *j, const cJSON *model, const char *src, q35_err *e) {
    const char *type = type_of(model);
    if (type && strcmp(type, "BPE"))
        return q35_err_set(e, Q35_EFORMAT, "%s: model type \"%s\" is not supported (BPE is)", src,
                           type);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) &&
        !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return q35_err_set(e, Q35_EFORMAT, "%s: BPE dropout is not supported", src);
    if (!null_or_empty_string(
            cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix")) ||
        !null_or_empty_string(cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix")))
        return q35_err_set(e, Q35_EFORMAT, "%s: BPE subword prefixes/suffixes are not supported",
                           src);
    int rc = json_bool(model, "ignore_merges", false, &j->p.ignore_merges, src, e);
    if (rc) return rc;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *it;
    size_t k = 0;
    cJSON_ArrayForEach(it, vocab) {
        int64_t id = json_id(it);
        if (id < 0)
            return q35_err_set(e, Q35_EFORMAT, "%s: vocab entry '%.60s' has no valid id", src,
                               it->string);
        if (j->pieces[id])
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: vocab entries '%.60s' and '%.60s' share id %lld", src,
                               j->pieces[id], it->string, (long long)id);
        j->pieces[id] = it->string;
        j->piece_len[id] = (uint32_t)strlen(it->string);
        j->attr[id] = Q35_TOK_MODEL;
        k++;
    }
    (void)k;
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges))
        return q35_err_set(e, Q35_EFORMAT, "%s: model has no \"merges\" list", src);
    size_t n = (size_t)cJSON_GetArraySize(merges);
    j->merge_strs = malloc((2 * n + 1) * sizeof *j->merge_strs);
    j->merge_lens = malloc((2 * n + 1) * sizeof *j->merge_lens);
    if (!j->merge_strs || !j->merge_lens)
        return q35_err_set(e, Q35_ENOMEM, "%s: out of memory", src);
    size_t r = 0;
    cJSON_ArrayForEach(it, merges) {
        const char **s = j->merge_strs + 2 * r;
        uint32_t *l = j->merge_lens + 2 * r;
        if (cJSON_IsString(it)) {
            if (!q35_tok_split_merge_line(it->valuestring, strlen(it->valuestring), &s[0], &l[0],
                                          &s[1], &l[1]))
                return q35_err_set(e, Q35_EFORMAT, "%s: merge %zu \"%.60s\" is not \"left right\"",
                                   src, r, it->valuestring);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
                   cJSON_IsString(it->child->next)) {
            s[0] = it->child->valuestring;
            s[1] = it->child->next->valuestring;
            l[0] = (uint32_t)strlen(s[0]);
            l[1] = (uint32_t)strlen(s[1]);
        } else {
            return q35_err_set(
                e, Q35_EFORMAT,
                "%s: merge %zu is neither a \"left right\" string nor a pair of strings", src, r);
        }
        r++;
    }
    j->p.n_merges = r;
    j->p.merge_strs = j->merge_strs;
    j->p.merge_str_lens = j->merge_lens;
    return Q35_OK;
}

/* The id a config field (eos_token, ...) names: a string or {"content": s}. */
static int config_token(q35_tokenizer *t, const cJSON *cfg, const char *name, int32_t *out,
                        q35_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, name);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!v || cJSON_IsNull(v)) return Q35_OK;
    if (!cJSON_IsString(v))
        return q35_err_set(e, Q35_EFORMAT, "tokenizer_config.json: \"%s\" is not a string", name);
    int32_t id = q35_token_id(t, v->valuestring);
    if (id < 0)
        return q35_err_set(e, Q35_EFORMAT, "tokenizer_config.json: %s '%.60s' is not a token", name,
                           v->valuestring);
    *out = id;
    return Q35_OK;
}

static q35_tokenizer *from_json(const char *json, size_t json_len, const char *cfg_text,
                                size_t cfg_len, const char *src, q35_err *e) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, json_len, &end, false);
    if (!root || !cJSON_IsObject(root)) {
        q35_err_set(e, Q35_EFORMAT, "%s: not a JSON object (error near byte %zu)", src,
                    end ? (size_t)(end - json) : (size_t)0);
        cJSON_Delete(root);
        return NULL;
    }
    cJSON *cfg = NULL;
    if (cfg_text) {
        cfg = cJSON_ParseWithLengthOpts(cfg_text, cfg_len, &end, false);
        if (!cfg || !cJSON_IsObject(cfg)) {
            q35_err_set(e, Q35_EFORMAT, "tokenizer_config.json: not a JSON object (near byte %zu)",
                        end ? (size_t)(end - cfg_text) : (size_t)0);
            cJSON_Delete(root);
            cJSON_Delete(cfg);
            return NULL;
        }
    }
    json_parts j = {0};
    q35_tokenizer *t = NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    const cJSON *cfg_added = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder");
    if (!cJSON_IsObject(model) || !cJSON_IsObject(vocab)) {
        q35_err_set(e, Q35_EFORMAT, "%s: no \"model\" object with a \"vocab\" object", src);
        goto done;
    }
    if (cfg_added && !cJSON_IsObject(cfg_added)) {
        q35_err_set(e, Q35_EFORMAT, "tokenizer_config.json: added_tokens_decoder is not an object");
        goto done;
    }
    int64_t m = max_id(vocab, cJSON_IsArray(added) ? added : NULL, cfg_added);
    if (m < 0) {
        q35_err_set(e, Q35_EFORMAT, "%s: the vocabulary is empty", src);
        goto done;
    }
    size_t n = (size_t)m + 1;
    j.pieces = calloc(n, sizeof *j.pieces);
    j.piece_len = calloc(n, sizeof *j.piece_len);
    j.attr = calloc(n, 1);
    if (!j.pieces || !j.piece_len || !j.attr) {
        q35_err_set(e, Q35_ENOMEM, "%s: out of memory for %zu tokens", src, n);
        goto done;
    }
    j.p = (q35_tok_parts){.n_tokens = n,
                          .pieces = j.pieces,
                          .piece_len = j.piece_len,
                          .attr = j.attr,
                          .eos_id = -1,
                          .pad_id = -1,
                          .bos_id = -1,
                          .source = src};
    if (parse_model(&j, model, src, e) || parse_added(&j, added, cfg_added, src, e) ||
        parse_normalizer(&j, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), src, 0, e) ||
        parse_pretok(&j, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), src, 0, e) ||
        parse_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"), src, e))
        goto done;
    if (!j.byte_level_pretok) {
        q35_err_set(e, Q35_EFORMAT,
                    "%s: no ByteLevel pre-tokenizer: only byte-level BPE is supported", src);
        goto done;
    }
    j.p.pretok_regex = j.regex_ptrs;
    t = q35_tokenizer_from_parts(&j.p, e);
    if (t && cfg &&
        (config_token(t, cfg, "eos_token", &t->eos_id, e) ||
         config_token(t, cfg, "pad_token", &t->pad_id, e) ||
         config_token(t, cfg, "bos_token", &t->bos_id, e))) {
        q35_tokenizer_free(t);
        t = NULL;
    }
done:
    json_parts_free(&j);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return t;
}

q35_tokenizer *q35_tokenizer_from_json(const char *json, size_t json_len, const char *config,
                                       size_t config_len, q35_err *e) {
    if (!json) {
        q35_err_set(e, Q35_EINVAL, "tokenizer: NULL JSON");
        return NULL;
    }
    return from_json(json, json_len, config, config_len, "tokenizer.json", e);
}

static bool is_regular_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

q35_tokenizer *q35_tokenizer_load(const char *path, q35_err *e) {
    if (!path) {
        q35_err_set(e, Q35_EINVAL, "tokenizer: NULL path");
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        q35_err_set(e, errno == ENOENT ? Q35_ENOTFOUND : Q35_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t plen = strlen(path);
    /* the vocabulary in a GGUF model file, told by content (or by a .gguf
     * name, so that a broken one gets the GGUF parser's message) */
    q35_file_kind kind = q35_file_kind_of(path);
    if (kind == Q35_FILE_GGUF ||
        (kind == Q35_FILE_OTHER && plen >= 5 && !strcasecmp(path + plen - 5, ".gguf")))
        return q35_tokenizer_load_gguf(path, NULL, e);
    char *json_path = malloc(plen + 32), *cfg_path = malloc(plen + 32);
    q35_tokenizer *t = NULL;
    q35_mapped_file jf = {0};
    char *cfg = NULL;
    size_t cfg_len = 0;
    if (!json_path || !cfg_path) {
        q35_err_set(e, Q35_ENOMEM, "tokenizer: out of memory");
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(json_path, plen + 32, "%s/tokenizer.json", path);
        snprintf(cfg_path, plen + 32, "%s/tokenizer_config.json", path);
    } else if (kind == Q35_FILE_SAFETENSORS) { /* a checkpoint file: its directory's */
        const char *slash = strrchr(path, '/');
        size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
        memcpy(json_path, path, dlen);
        memcpy(json_path + dlen, "tokenizer.json", sizeof "tokenizer.json");
        memcpy(cfg_path, path, dlen);
        memcpy(cfg_path + dlen, "tokenizer_config.json", sizeof "tokenizer_config.json");
    } else {
        memcpy(json_path, path, plen + 1);
        const char *slash = strrchr(path, '/');
        size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
        memcpy(cfg_path, path, dlen);
        memcpy(cfg_path + dlen, "tokenizer_config.json", sizeof "tokenizer_config.json");
    }
    if (q35_mapped_file_open(&jf, json_path, e)) goto done;
    if (is_regular_file(cfg_path) &&
        !(cfg = q35_read_text_file(cfg_path, CONFIG_MAX_BYTES, &cfg_len, e)))
        goto done;
    uint64_t key = tok_cache_key(jf.data, jf.size, cfg, cfg_len);
    char cache_file[4096];
    bool cached = tok_cache_path(key, cache_file, sizeof cache_file);
    if (cached && (t = tok_cache_load(cache_file, key, (uint64_t)jf.size + cfg_len))) goto done;
    t = from_json((const char *)jf.data, jf.size, cfg, cfg_len, json_path, e);
    if (t && cached) tok_cache_store(t, cache_file, key, (uint64_t)jf.size + cfg_len);
done:
    if (!t && e && e->code == Q35_OK) q35_err_set(e, Q35_EFORMAT, "%s: cannot load", path);
    q35_mapped_file_close(&jf);
    free(cfg);
    free(json_path);
    free(cfg_path);
    return t;
}
