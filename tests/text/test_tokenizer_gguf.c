/* test_tokenizer_gguf.c — tokenizers from GGUF metadata.
 *  - The golden Qwen3.5 tokenizer.json is written into GGUF metadata the
 *    way llama.cpp's converter does (ids in order, token types, "a b"
 *    merges, pre "qwen35", padding fillers, chat template); the tokenizer
 *    built from it must give HF's ids and decodings for every string of
 *    tokenizer/tok_cases.json.
 *  - The golden tiny GGUF files' vocabularies load and round-trip text.
 *  - Metadata a byte-level BPE cannot use fails with a message naming it. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/gguf.h"
#include "formats/gguf_builder.h"
#include "q35.h"
#include "text/tokenizer_gguf.h"

#define TOK_DIR Q35_FIXTURES "/tokenizer/"

static char *read_text(const char *path, size_t *n) {
    char *p = (char *)gb_read_file(path, n);
    assert_non_null(p);
    char *z = realloc(p, *n + 1);
    assert_non_null(z);
    z[*n] = 0;
    return z;
}

/* llama.cpp's test for "looks special" (convert_hf_to_gguf.py marks such
 * added tokens as control whatever HF says). */
static bool looks_special(const char *s) {
    size_t n = strlen(s);
    return n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>");
}

enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };
#define N_PAD 7

typedef struct hf_vocab {
    cJSON *root;
    int n;               /* ids 0..n-1 (real tokens) */
    const char **pieces; /* by id */
    int *types;
    bool *differs; /* HF non-special but control in GGUF */
} hf_vocab;

static void hf_vocab_load(hf_vocab *v) {
    size_t len;
    char *text = read_text(TOK_DIR "tokenizer.qwen35.json", &len);
    v->root = cJSON_ParseWithLength(text, len);
    free(text);
    assert_non_null(v->root);
    const cJSON *model = cJSON_GetObjectItem(v->root, "model");
    const cJSON *vocab = cJSON_GetObjectItem(model, "vocab");
    const cJSON *added = cJSON_GetObjectItem(v->root, "added_tokens");
    int max_id = -1;
    for (const cJSON *it = vocab->child; it; it = it->next)
        if (it->valueint > max_id) max_id = it->valueint;
    for (const cJSON *it = added->child; it; it = it->next) {
        int id = cJSON_GetObjectItem(it, "id")->valueint;
        if (id > max_id) max_id = id;
    }
    v->n = max_id + 1;
    v->pieces = calloc((size_t)v->n, sizeof *v->pieces);
    v->types = calloc((size_t)v->n, sizeof *v->types);
    v->differs = calloc((size_t)v->n, sizeof *v->differs);
    for (const cJSON *it = vocab->child; it; it = it->next) {
        v->pieces[it->valueint] = it->string;
        v->types[it->valueint] = TT_NORMAL;
    }
    for (const cJSON *it = added->child; it; it = it->next) {
        int id = cJSON_GetObjectItem(it, "id")->valueint;
        const char *content = cJSON_GetObjectItem(it, "content")->valuestring;
        bool special = cJSON_IsTrue(cJSON_GetObjectItem(it, "special"));
        v->pieces[id] = content;
        v->types[id] = special || looks_special(content) ? TT_CONTROL : TT_USER_DEFINED;
        v->differs[id] = !special && looks_special(content);
    }
    for (int i = 0; i < v->n; i++)
        assert_non_null(v->pieces[i]);
}

static void hf_vocab_free(hf_vocab *v) {
    cJSON_Delete(v->root);
    free(v->pieces);
    free(v->types);
    free(v->differs);
}

static void gb_kv_i32(gguf_buf *b, const char *k, int32_t v) {
    gb_str(b, k);
    gb_u32(b, GB_I32);
    gb_u32(b, (uint32_t)v);
}

/* The GGUF metadata llama.cpp would write for this vocabulary. */
static void write_gguf(gguf_buf *b, const hf_vocab *v, const char *template_text) {
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(v->root, "model"), "merges");
    gb_header(b, 3, 0, 11);
    gb_kv_str(b, "general.architecture", "qwen35");
    gb_kv_str(b, "tokenizer.ggml.model", "gpt2");
    gb_kv_str(b, "tokenizer.ggml.pre", "qwen35");
    gb_str(b, "tokenizer.ggml.tokens");
    gb_u32(b, GB_ARRAY);
    gb_u32(b, GB_STRING);
    gb_u64(b, (uint64_t)(v->n + N_PAD));
    for (int i = 0; i < v->n; i++)
        gb_str(b, v->pieces[i]);
    for (int i = 0; i < N_PAD; i++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", v->n + i);
        gb_str(b, pad);
    }
    gb_str(b, "tokenizer.ggml.token_type");
    gb_u32(b, GB_ARRAY);
    gb_u32(b, GB_I32);
    gb_u64(b, (uint64_t)(v->n + N_PAD));
    for (int i = 0; i < v->n; i++)
        gb_u32(b, (uint32_t)v->types[i]);
    for (int i = 0; i < N_PAD; i++)
        gb_u32(b, TT_UNUSED);
    gb_str(b, "tokenizer.ggml.merges");
    gb_u32(b, GB_ARRAY);
    gb_u32(b, GB_STRING);
    gb_u64(b, (uint64_t)cJSON_GetArraySize(merges));
    for (const cJSON *m = merges->child; m; m = m->next) {
        char line[1024];
        if (cJSON_IsArray(m))
            snprintf(line, sizeof line, "%s %s", m->child->valuestring,
                     m->child->next->valuestring);
        else
            snprintf(line, sizeof line, "%s", m->valuestring);
        gb_str(b, line);
    }
    gb_kv_i32(b, "tokenizer.ggml.eos_token_id", 151645);     /* <|im_end|> */
    gb_kv_i32(b, "tokenizer.ggml.padding_token_id", 151643); /* <|endoftext|> */
    gb_kv_i32(b, "tokenizer.ggml.bos_token_id", 151643);
    gb_str(b, "tokenizer.ggml.add_bos_token");
    gb_u32(b, GB_BOOL);
    gb_u8(b, 0);
    gb_kv_str(b, "tokenizer.chat_template", template_text);
}

static bool ids_equal(const int32_t *ids, size_t n, const cJSON *want) {
    if ((int)n != cJSON_GetArraySize(want)) return false;
    size_t i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++)
        if (ids[i] != w->valueint) return false;
    return true;
}

static bool mentions_differing_token(const hf_vocab *v, const char *text) {
    for (int i = 0; i < v->n; i++)
        if (v->differs[i] && strstr(text, v->pieces[i])) return true;
    return false;
}

static void test_qwen35_vocab_through_gguf(void **state) {
    (void)state;
    hf_vocab v;
    hf_vocab_load(&v);
    size_t tlen;
    char *tmpl = read_text(TOK_DIR "chat_template.qwen35.jinja", &tlen);
    gguf_buf b = {0};
    write_gguf(&b, &v, tmpl);
    q35_gguf g;
    q35_err e = {0};
    assert_int_equal(q35_gguf_parse(&g, b.p, b.n, "qwen35-vocab.gguf", &e), Q35_OK);
    char *chat = NULL;
    q35_tokenizer *t = q35_tokenizer_from_gguf(&g, &chat, &e);
    if (!t) fprintf(stderr, "%s\n", e.msg);
    assert_non_null(t);
    q35_gguf_close(&g);
    gb_free(&b);

    assert_string_equal(chat, tmpl);
    assert_int_equal(q35_tokenizer_n_vocab(t), (size_t)v.n); /* fillers are not tokens */
    assert_int_equal(q35_tokenizer_eos(t), 151645);
    assert_int_equal(q35_tokenizer_pad(t), 151643);
    assert_int_equal(q35_tokenizer_bos(t), -1);
    assert_int_equal(q35_token_id(t, "<|im_end|>"), 151645);
    assert_true(q35_token_is_special(t, 151645));
    assert_int_equal(q35_token_id(t, "<think>"), 151667);
    assert_false(q35_token_is_special(t, 151667));
    assert_true(q35_token_is_added(t, 151667));

    size_t n_cases;
    char *cases_text = read_text(TOK_DIR "tok_cases.json", &n_cases);
    cJSON *cases = cJSON_Parse(cases_text);
    free(cases_text);
    int checked = 0, checked_nospecial = 0;
    for (const cJSON *c = cJSON_GetObjectItem(cases, "cases")->child; c; c = c->next) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        int32_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(q35_tokenize(t, text, strlen(text), Q35_ADDED_MATCH, &ids, &n, &e),
                         Q35_OK);
        if (!ids_equal(ids, n, cJSON_GetObjectItem(c, "qwen35"))) {
            fprintf(stderr, "ids differ from HF for \"%s\"\n", text);
            fail();
        }
        char *dec = NULL;
        size_t dlen = 0;
        assert_int_equal(q35_detokenize(t, ids, n, false, &dec, &dlen, &e), Q35_OK);
        assert_string_equal(dec, cJSON_GetObjectItem(c, "qwen35_decoded")->valuestring);
        free(dec);
        free(ids);
        checked++;
        if (mentions_differing_token(&v, text)) continue;
        assert_int_equal(
            q35_tokenize(t, text, strlen(text), Q35_ADDED_SPECIAL_AS_TEXT, &ids, &n, &e), Q35_OK);
        if (!ids_equal(ids, n, cJSON_GetObjectItem(c, "qwen35_nospecial"))) {
            fprintf(stderr, "ids (specials as text) differ from HF for \"%s\"\n", text);
            fail();
        }
        free(ids);
        checked_nospecial++;
    }
    printf("%d strings match HF (%d also with specials as text)\n", checked, checked_nospecial);
    assert_true(checked > 40 && checked_nospecial > 40);
    cJSON_Delete(cases);
    free(chat);
    free(tmpl);
    q35_tokenizer_free(t);
    hf_vocab_free(&v);
}

static void test_golden_tiny_vocab(void **state) {
    (void)state;
    q35_err e = {0};
    char *chat = (char *)1;
    q35_tokenizer *t = q35_tokenizer_load_gguf(Q35_FIXTURES "/gguf/tiny-a-Q4_0.gguf", &chat, &e);
    if (!t) fprintf(stderr, "%s\n", e.msg);
    assert_non_null(t);
    assert_null(chat); /* the tiny files carry no template */
    assert_int_equal(q35_tokenizer_n_vocab(t), 512);
    assert_int_equal(q35_tokenizer_eos(t), 511);
    assert_int_equal(q35_token_id(t, "!"), 0);
    const char *texts[] = {"Hello world, this is q35.", "  indented\n\tand tabbed", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(q35_tokenize(t, texts[i], strlen(texts[i]), Q35_ADDED_MATCH, &ids, &n, &e),
                         Q35_OK);
        assert_true(n > 0 && n <= strlen(texts[i]));
        char *dec = NULL;
        size_t dlen;
        assert_int_equal(q35_detokenize(t, ids, n, false, &dec, &dlen, &e), Q35_OK);
        assert_string_equal(dec, texts[i]);
        free(dec);
        free(ids);
    }
    q35_tokenizer_free(t);
    /* q35_tokenizer_load takes a .gguf path too */
    t = q35_tokenizer_load(Q35_FIXTURES "/gguf/tiny-b-Q8_0.gguf", &e);
    assert_non_null(t);
    assert_int_equal(q35_tokenizer_n_vocab(t), 1024);
    q35_tokenizer_free(t);
}

/* The second load of a GGUF vocabulary comes from the binary cache and
 * tokenizes the same. */
static void test_cached_second_load(void **state) {
    (void)state;
    char dir[] = "/tmp/q35_tok_gguf_cache_XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("XDG_CACHE_HOME", dir, 1);
    unsetenv("Q35_NO_TOKENIZER_CACHE");
    const char *file = Q35_FIXTURES "/gguf/tiny-b-bf16.gguf";
    const char *text = "The cache must not change a single id: caf\xc3\xa9 \xf0\x9f\x98\x80!";
    int32_t *ids[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        q35_err e = {0};
        q35_tokenizer *t = q35_tokenizer_load_gguf(file, NULL, &e);
        assert_non_null(t);
        assert_int_equal(q35_tokenizer_n_vocab(t), 1024);
        assert_int_equal(q35_tokenizer_eos(t), 1023);
        assert_int_equal(q35_tokenize(t, text, strlen(text), Q35_ADDED_MATCH, &ids[k], &n[k], &e),
                         Q35_OK);
        q35_tokenizer_free(t);
    }
    assert_int_equal(n[0], n[1]);
    assert_memory_equal(ids[0], ids[1], n[0] * sizeof *ids[0]);
    free(ids[0]);
    free(ids[1]);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "find %s -type f | grep -q .", dir);
    assert_int_equal(system(cmd), 0); /* a cache file was written */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    unsetenv("XDG_CACHE_HOME");
}

/* ------------------------------------------------------------ bad metadata */

/* The GPT-2 byte-level alphabet: byte b's one-character piece, as UTF-8. */
static void byte_piece(int byte, char *out) {
    int cp;
    if ((byte >= '!' && byte <= '~') || (byte >= 0xa1 && byte <= 0xac) ||
        (byte >= 0xae && byte <= 0xff)) {
        cp = byte;
    } else {
        int k = 0; /* rank among the bytes that are remapped */
        for (int c = 0; c < byte; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff)))
                k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

typedef struct small_opts {
    const char *model, *pre, *merge;
    int bad_type;    /* token type for token 5, 0 = normal */
    int types_count; /* 0 = one per token */
} small_opts;

/* 256 byte tokens + "ab" + an added "<|x|>", with one merge. */
static int build_small(const small_opts *o, q35_err *e) {
    gguf_buf b = {0};
    const int n = 258;
    gb_header(&b, 3, 0, 5);
    gb_kv_str(&b, "tokenizer.ggml.model", o->model ? o->model : "gpt2");
    gb_kv_str(&b, "tokenizer.ggml.pre", o->pre ? o->pre : "qwen2");
    gb_str(&b, "tokenizer.ggml.tokens");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, GB_STRING);
    gb_u64(&b, (uint64_t)n);
    for (int i = 0; i < 256; i++) {
        char p[4];
        byte_piece(i, p);
        gb_str(&b, p);
    }
    gb_str(&b, "ab");
    gb_str(&b, "<|x|>");
    int nt = o->types_count ? o->types_count : n;
    gb_str(&b, "tokenizer.ggml.token_type");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, GB_I32);
    gb_u64(&b, (uint64_t)nt);
    for (int i = 0; i < nt; i++)
        gb_u32(&b, i == 5 && o->bad_type ? (uint32_t)o->bad_type
                   : i == 257            ? TT_CONTROL
                                         : TT_NORMAL);
    gb_str(&b, "tokenizer.ggml.merges");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, GB_STRING);
    gb_u64(&b, 1);
    gb_str(&b, o->merge ? o->merge : "a b");
    q35_gguf g;
    int rc = q35_gguf_parse(&g, b.p, b.n, "small.gguf", e);
    if (!rc) {
        q35_tokenizer *t = q35_tokenizer_from_gguf(&g, NULL, e);
        rc = t ? Q35_OK : (e->code ? e->code : Q35_EFORMAT);
        if (t) {
            int32_t *ids = NULL;
            size_t k = 0;
            assert_int_equal(q35_tokenize(t, "ab<|x|>", 7, Q35_ADDED_MATCH, &ids, &k, e), Q35_OK);
            assert_int_equal(k, 2);
            assert_int_equal(ids[0], 256);
            assert_int_equal(ids[1], 257);
            free(ids);
        }
        q35_tokenizer_free(t);
        q35_gguf_close(&g);
    }
    gb_free(&b);
    return rc;
}

static void expect_small_error(const small_opts *o, const char *want) {
    q35_err e = {0};
    int rc = build_small(o, &e);
    if (rc == Q35_OK || !strstr(e.msg, want))
        fprintf(stderr, "expected \"%s\", got %d: %s\n", want, rc, e.msg);
    assert_int_not_equal(rc, Q35_OK);
    assert_non_null(strstr(e.msg, want));
}

static void test_bad_metadata(void **state) {
    (void)state;
    q35_err e = {0};
    small_opts ok = {0};
    assert_int_equal(build_small(&ok, &e), Q35_OK); /* the base is valid */
    small_opts o = {.model = "llama"};
    expect_small_error(&o, "tokenizer.ggml.model is \"llama\"");
    o = (small_opts){.pre = "falcon"};
    expect_small_error(&o, "tokenizer.ggml.pre \"falcon\"");
    o = (small_opts){.merge = "ab"};
    expect_small_error(&o, "tokenizer.ggml.merges[0]");
    o = (small_opts){.merge = "a z"};
    expect_small_error(&o, "merge 0");
    o = (small_opts){.bad_type = 6};
    expect_small_error(&o, "token 5 has tokenizer.ggml.token_type 6");
    o = (small_opts){.types_count = 10};
    expect_small_error(&o, "tokenizer.ggml.token_type must be an array of 258");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen35_vocab_through_gguf),
        cmocka_unit_test(test_golden_tiny_vocab),
        cmocka_unit_test(test_cached_second_load),
        cmocka_unit_test(test_bad_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
