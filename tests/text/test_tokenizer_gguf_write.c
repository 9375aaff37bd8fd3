/* test_tokenizer_gguf_write.c — tokenizer.* metadata as q35 convert writes
 * it, for the real 151k Qwen3.5 vocabulary of models/tiny-chat:
 *  - checked against tokenizer.json itself (not through q35): every id's
 *    piece and llama.cpp token type, "[PADn]" fillers up to the embedding
 *    size, every merge as "left right", eos/pad from tokenizer_config.json,
 *    the chat template's bytes; the keys and value types are those of
 *    llama.cpp's golden files;
 *  - read back (tokenizer_gguf.c), it encodes every tok_cases.json string
 *    to HF's ids (added tokens matched and as text) and decodes as HF does;
 *  - the chat template is found as transformers finds it;
 *  - what GGUF cannot carry (another regex, no NFC, lstrip tokens, more
 *    tokens than rows) is refused with a message naming it. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "formats/gguf_write.h"
#include "q35.h"
#include "text/tokenizer.h"
#include "text/tokenizer_gguf.h"
#include "text/tokenizer_gguf_write.h"
#include "text/tokenizer_internal.h"

#define CHAT_DIR Q35_FIXTURES "/models/tiny-chat"
#define N_ROWS 151936 /* tiny-chat's vocab_size (embedding rows) */

static char *read_text(const char *path, size_t *n) {
    q35_err e = {0};
    char *t = q35_read_text_file(path, 1u << 26, n, &e);
    if (!t) fail_msg("%s", e.msg);
    return t;
}

/* Writes kvs as a tensor-less GGUF under a fresh temporary name. */
static void write_kvs(const q35_gguf_kvs *kvs, char *path, size_t n) {
    const char *base = getenv("TMPDIR");
    snprintf(path, n, "%s/q35-tokgguf-XXXXXX", base && *base ? base : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    q35_gguf_writer w = {0};
    q35_err e = {0};
    assert_int_equal(q35_gguf_writer_begin(&w, kvs, path, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_finish(&w, NULL, &e), Q35_OK);
    q35_gguf_writer_free(&w);
}

static bool looks_special(const char *s) {
    size_t n = strlen(s);
    return n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>");
}

static bool str_is(q35_gguf_str s, const char *p, size_t n) {
    return s.len == n && !memcmp(s.p, p, n);
}

static bool ids_equal(const int32_t *ids, size_t n, const cJSON *want) {
    if ((int)n != cJSON_GetArraySize(want)) return false;
    size_t i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++)
        if (ids[i] != w->valueint) return false;
    return true;
}

/* The written arrays against tokenizer.json, entry by entry. */
static void check_against_json(const q35_gguf *g) {
    size_t len;
    char *text = read_text(CHAT_DIR "/tokenizer.json", &len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    assert_non_null(root);
    const char **piece = calloc(N_ROWS, sizeof *piece);
    int *type = calloc(N_ROWS, sizeof *type);
    const cJSON *model = cJSON_GetObjectItem(root, "model");
    for (const cJSON *it = cJSON_GetObjectItem(model, "vocab")->child; it; it = it->next) {
        piece[it->valueint] = it->string;
        type[it->valueint] = 1;
    }
    for (const cJSON *it = cJSON_GetObjectItem(root, "added_tokens")->child; it; it = it->next) {
        int id = cJSON_GetObjectItem(it, "id")->valueint;
        piece[id] = cJSON_GetObjectItem(it, "content")->valuestring;
        type[id] =
            cJSON_IsTrue(cJSON_GetObjectItem(it, "special")) || looks_special(piece[id]) ? 3 : 4;
    }
    const q35_gguf_kv *toks = q35_gguf_find(g, "tokenizer.ggml.tokens");
    const q35_gguf_kv *types = q35_gguf_find(g, "tokenizer.ggml.token_type");
    assert_non_null(toks);
    assert_non_null(types);
    assert_int_equal(toks->arr_n, N_ROWS);
    assert_int_equal(types->arr_n, N_ROWS);
    assert_int_equal(types->arr_type, Q35_GGUF_I32);
    size_t cur = 0;
    int n_pad = 0, n_user = 0, n_control = 0;
    q35_err e = {0};
    for (int id = 0; id < N_ROWS; id++) {
        q35_gguf_str s;
        q35_gguf_arr_next_str(toks, &cur, &s);
        int64_t t;
        assert_int_equal(q35_gguf_arr_int(types, (uint64_t)id, &t, &e), Q35_OK);
        if (!piece[id]) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%d]", id);
            if (!str_is(s, pad, strlen(pad)) || t != 5) fail_msg("id %d: not a filler", id);
            n_pad++;
            continue;
        }
        if (!str_is(s, piece[id], strlen(piece[id])) || t != type[id])
            fail_msg("id %d: \"%.*s\" type %lld, want \"%s\" type %d", id, (int)s.len, s.p,
                     (long long)t, piece[id], type[id]);
        n_user += t == 4;
        n_control += t == 3;
    }
    printf("tokens: %d fillers, %d control, %d user-defined\n", n_pad, n_control, n_user);
    assert_true(n_pad > 0 && n_control > 0 && n_user > 0);

    const cJSON *merges = cJSON_GetObjectItem(model, "merges");
    const q35_gguf_kv *gm = q35_gguf_find(g, "tokenizer.ggml.merges");
    assert_non_null(gm);
    assert_int_equal(gm->arr_n, (uint64_t)cJSON_GetArraySize(merges));
    cur = 0;
    char line[1024];
    for (const cJSON *m = merges->child; m; m = m->next) {
        if (cJSON_IsArray(m))
            snprintf(line, sizeof line, "%s %s", m->child->valuestring,
                     m->child->next->valuestring);
        else
            snprintf(line, sizeof line, "%s", m->valuestring);
        q35_gguf_str s;
        q35_gguf_arr_next_str(gm, &cur, &s);
        if (!str_is(s, line, strlen(line)))
            fail_msg("merge \"%s\" written as \"%.*s\"", line, (int)s.len, s.p);
    }
    free(piece);
    free(type);
    cJSON_Delete(root);
}

static void test_tiny_chat_vocabulary(void **state) {
    (void)state;
    q35_err e = {0};
    q35_tokenizer *t = q35_tokenizer_load(CHAT_DIR, &e);
    assert_non_null(t);
    char *tmpl = NULL;
    assert_int_equal(q35_chat_template_of_dir(CHAT_DIR, &tmpl, &e), Q35_OK);
    assert_non_null(tmpl);
    size_t tlen;
    char *jinja = read_text(CHAT_DIR "/chat_template.jinja", &tlen);
    assert_string_equal(tmpl, jinja);

    q35_gguf_kvs kvs = {0};
    assert_int_equal(q35_tokenizer_to_gguf_kvs(t, N_ROWS, tmpl, &kvs, &e), Q35_OK);
    char path[512];
    write_kvs(&kvs, path, sizeof path);
    q35_gguf_kvs_free(&kvs);
    q35_gguf g;
    assert_int_equal(q35_gguf_open(&g, path, &e), Q35_OK);
    unlink(path);

    q35_gguf_str s;
    int64_t v;
    bool b;
    assert_int_equal(q35_gguf_get_str(&g, "tokenizer.ggml.model", &s, &e), Q35_OK);
    assert_true(q35_gguf_str_eq(s, "gpt2"));
    assert_int_equal(q35_gguf_get_str(&g, "tokenizer.ggml.pre", &s, &e), Q35_OK);
    assert_true(q35_gguf_str_eq(s, "qwen35"));
    assert_int_equal(q35_gguf_get_int(&g, "tokenizer.ggml.eos_token_id", 0, N_ROWS, &v, &e),
                     Q35_OK);
    assert_int_equal(v, 151645); /* <|im_end|>, tokenizer_config.json's eos_token */
    assert_int_equal(q35_gguf_get_int(&g, "tokenizer.ggml.padding_token_id", 0, N_ROWS, &v, &e),
                     Q35_OK);
    assert_int_equal(v, 151643);                                   /* <|endoftext|> */
    assert_null(q35_gguf_find(&g, "tokenizer.ggml.bos_token_id")); /* Qwen names none */
    assert_int_equal(q35_gguf_get_bool(&g, "tokenizer.ggml.add_bos_token", &b, &e), Q35_OK);
    assert_false(b);
    assert_int_equal(q35_gguf_get_str(&g, "tokenizer.chat_template", &s, &e), Q35_OK);
    assert_true(str_is(s, jinja, tlen));
    check_against_json(&g);

    /* the keys and value types llama.cpp writes (its tiny files' vocab
     * names a bos; this one has none) */
    q35_gguf ref;
    assert_int_equal(q35_gguf_open(&ref, Q35_FIXTURES "/gguf/tiny-a-bf16.gguf", &e), Q35_OK);
    for (int64_t i = 0; i < ref.n_kv; i++) {
        const q35_gguf_kv *a = &ref.kvs[i];
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.p);
        if (strncmp(key, "tokenizer.", 10) || !strcmp(key, "tokenizer.ggml.bos_token_id")) continue;
        const q35_gguf_kv *o = q35_gguf_find(&g, key);
        if (!o) fail_msg("key %s is missing", key);
        assert_int_equal(o->type, a->type);
        assert_int_equal(o->arr_type, a->arr_type);
    }
    q35_gguf_close(&ref);

    /* read back: HF's ids and decodings */
    char *chat = NULL;
    q35_tokenizer *t2 = q35_tokenizer_from_gguf(&g, &chat, &e);
    if (!t2) fail_msg("%s", e.msg);
    assert_string_equal(chat, jinja);
    assert_int_equal(q35_tokenizer_n_vocab(t2), q35_tokenizer_n_vocab(t));
    size_t clen;
    char *cases_text = read_text(Q35_FIXTURES "/tokenizer/tok_cases.json", &clen);
    cJSON *cases = cJSON_Parse(cases_text);
    free(cases_text);
    int checked = 0;
    for (const cJSON *c = cJSON_GetObjectItem(cases, "cases")->child; c; c = c->next) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        int32_t *ids = NULL, *ids2 = NULL;
        size_t n = 0, n2 = 0;
        assert_int_equal(q35_tokenize(t2, text, strlen(text), Q35_ADDED_MATCH, &ids, &n, &e),
                         Q35_OK);
        if (!ids_equal(ids, n, cJSON_GetObjectItem(c, "qwen35")))
            fail_msg("ids differ from HF for \"%s\"", text);
        char *dec = NULL;
        size_t dlen = 0;
        assert_int_equal(q35_detokenize(t2, ids, n, false, &dec, &dlen, &e), Q35_OK);
        assert_string_equal(dec, cJSON_GetObjectItem(c, "qwen35_decoded")->valuestring);
        free(dec);
        free(ids);
        /* specials as text: as the source tokenizer does */
        assert_int_equal(
            q35_tokenize(t2, text, strlen(text), Q35_ADDED_SPECIAL_AS_TEXT, &ids, &n, &e), Q35_OK);
        assert_int_equal(
            q35_tokenize(t, text, strlen(text), Q35_ADDED_SPECIAL_AS_TEXT, &ids2, &n2, &e), Q35_OK);
        assert_int_equal(n, n2);
        assert_memory_equal(ids, ids2, n * sizeof *ids);
        free(ids);
        free(ids2);
        checked++;
    }
    printf("%d strings encode to HF's ids through the written metadata\n", checked);
    assert_true(checked > 40);
    cJSON_Delete(cases);
    free(chat);
    q35_tokenizer_free(t2);
    q35_gguf_close(&g);
    free(jinja);
    free(tmpl);
    q35_tokenizer_free(t);
}

/* ------------------------------------------------------ what GGUF can't hold */

/* A small byte-level tokenizer.json: the 256 byte tokens, one merge, one
 * added token, with the given pre-tokenizer regex and normalizer. */
static char *small_json(const char *regex, const char *normalizer, const char *added_extra) {
    cJSON *root = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0; b < 256; b++) {
        char ch[4] = {0};
        tok_byte_to_char((unsigned char)b, ch);
        cJSON_AddNumberToObject(vocab, ch, b);
    }
    cJSON_AddNumberToObject(vocab, "ab", 256);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("a b"));
    char added[512];
    snprintf(added, sizeof added,
             "[{\"id\":257,\"content\":\"<x>\",\"special\":true,\"lstrip\":%s,\"rstrip\":false,"
             "\"single_word\":false,\"normalized\":false}]",
             added_extra);
    cJSON_AddItemToObject(root, "added_tokens", cJSON_Parse(added));
    if (normalizer) cJSON_AddItemToObject(root, "normalizer", cJSON_Parse(normalizer));
    char pre[1024];
    snprintf(pre, sizeof pre,
             "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
             "{\"Regex\":\"%s\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":"
             "\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":"
             "false}]}",
             regex);
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\":\"ByteLevel\"}"));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static int kvs_of(const char *json, size_t rows, q35_err *e) {
    q35_tokenizer *t = q35_tokenizer_from_json(json, strlen(json), NULL, 0, e);
    if (!t) fail_msg("small tokenizer: %s", e->msg);
    q35_gguf_kvs kvs = {0};
    int rc = q35_tokenizer_to_gguf_kvs(t, rows, NULL, &kvs, e);
    q35_gguf_kvs_free(&kvs);
    q35_tokenizer_free(t);
    return rc;
}

static void test_refuses_what_gguf_cannot_hold(void **state) {
    (void)state;
    /* the Qwen3.5 regex, JSON-escaped */
    char qwen35[512] = {0};
    const char *re = q35_tok_pretok_regex_named("qwen35");
    for (size_t i = 0, o = 0; re[i]; i++) {
        if (re[i] == '\\') qwen35[o++] = '\\';
        qwen35[o++] = re[i];
    }
    const char *nfc = "{\"type\":\"NFC\"}";
    q35_err e = {0};
    char *j = small_json(qwen35, nfc, "false");
    assert_int_equal(kvs_of(j, 300, &e), Q35_OK);
    assert_int_equal(kvs_of(j, 100, &e), Q35_EINVAL); /* 258 ids, 100 rows */
    assert_non_null(strstr(e.msg, "100 rows"));
    free(j);
    j = small_json("\\\\s+", nfc, "false");
    assert_int_equal(kvs_of(j, 300, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "pre-tokenizer"));
    free(j);
    j = small_json(qwen35, NULL, "false");
    assert_int_equal(kvs_of(j, 300, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "NFC"));
    free(j);
    j = small_json(qwen35, nfc, "true");
    assert_int_equal(kvs_of(j, 300, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "<x>"));
    free(j);
}

/* ------------------------------------------------------------ chat template */

static void write_file(const char *dir, const char *name, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_template_lookup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    char dir[256], p[600];
    snprintf(dir, sizeof dir, "%s/q35-tmpl-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    q35_err e = {0};
    char *t = (char *)1;
    assert_int_equal(q35_chat_template_of_dir(dir, &t, &e), Q35_OK); /* none */
    assert_null(t);
    write_file(dir, "tokenizer_config.json",
               "{\"chat_template\":[{\"name\":\"tool_use\",\"template\":\"T\"},"
               "{\"name\":\"default\",\"template\":\"D\"}]}");
    assert_int_equal(q35_chat_template_of_dir(dir, &t, &e), Q35_OK);
    assert_string_equal(t, "D");
    free(t);
    write_file(dir, "chat_template.jinja", "J"); /* read first, as transformers does */
    assert_int_equal(q35_chat_template_of_dir(dir, &t, &e), Q35_OK);
    assert_string_equal(t, "J");
    free(t);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    unlink(p);
    write_file(dir, "tokenizer_config.json", "{\"chat_template\": ");
    assert_int_equal(q35_chat_template_of_dir(dir, &t, &e), Q35_EFORMAT);
    assert_non_null(strstr(e.msg, "tokenizer_config.json"));
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_chat_vocabulary),
        cmocka_unit_test(test_refuses_what_gguf_cannot_hold),
        cmocka_unit_test(test_template_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
