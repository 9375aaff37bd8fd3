/* test_tokenizer_golden.c — the tokenizer against HF tokenizers' own output
 * (golden/tokenizer): ids of every tok_cases.json string for both the Qwen3
 * and the Qwen3.5 tokenizer.json, with added tokens matched and with
 * special ones as text; decoding of those ids; and the pre-tokenizer pieces
 * of pretok_cases.json (which tell the two regexes apart). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "core/mapped_file.h"
#include "text/tokenizer.h"
#include "text/tokenizer_internal.h"

static const char *const names[2] = {"qwen3", "qwen35"};
static q35_tokenizer *toks[2];

static cJSON *load_json(const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/%s", Q35_FIXTURES, file);
    q35_err e = {0};
    size_t len;
    char *text = q35_read_text_file(path, 64u << 20, &len, &e);
    if (!text) fail_msg("%s", e.msg);
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    assert_non_null(j);
    return j;
}

static int setup(void **state) {
    (void)state;
    setenv("Q35_NO_TOKENIZER_CACHE", "1", 1); /* this test checks the JSON path */
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tokenizer/tokenizer.%s.json", Q35_FIXTURES, names[k]);
        q35_err e = {0};
        toks[k] = q35_tokenizer_load(path, &e);
        if (!toks[k]) {
            fprintf(stderr, "load %s: %s\n", path, e.msg);
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++)
        q35_tokenizer_free(toks[k]);
    return 0;
}

static bool ids_equal(const cJSON *want, const int32_t *ids, size_t n) {
    if ((size_t)cJSON_GetArraySize(want) != n) return false;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, want) if (it->valueint != ids[i++]) return false;
    return true;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* Checks every case of a tok_cases.json-shaped document; returns the number
 * of strings and adds the mismatches to *failures. */
static int check_cases(const cJSON *root, int *failures_out) {
    const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    int n_cases = 0, failures = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        n_cases++;
        for (int k = 0; k < 2; k++) {
            for (int special_as_text = 0; special_as_text < 2; special_as_text++) {
                char key[64];
                snprintf(key, sizeof key, "%s%s", names[k], special_as_text ? "_nospecial" : "");
                const cJSON *want = cJSON_GetObjectItem(c, key);
                assert_non_null(want);
                int32_t *ids = NULL;
                size_t n = 0;
                q35_err e = {0};
                int rc = q35_tokenize(toks[k], text, strlen(text),
                                      special_as_text ? Q35_ADDED_SPECIAL_AS_TEXT : Q35_ADDED_MATCH,
                                      &ids, &n, &e);
                assert_int_equal(rc, 0);
                if (!ids_equal(want, ids, n)) {
                    failures++;
                    fprintf(stderr, "MISMATCH %s on \"%s\"\n", key, text);
                    print_ids("ours", ids, n);
                    char *w = cJSON_PrintUnformatted(want);
                    fprintf(stderr, "  want: %s\n", w);
                    free(w);
                }
                free(ids);
            }
            /* decoding the matched ids gives HF's decoded string */
            char key[64];
            snprintf(key, sizeof key, "%s_decoded", names[k]);
            const cJSON *want_ids = cJSON_GetObjectItem(c, names[k]);
            const char *want = cJSON_GetObjectItem(c, key)->valuestring;
            size_t n = (size_t)cJSON_GetArraySize(want_ids), i = 0;
            int32_t *ids = malloc((n + 1) * sizeof *ids);
            const cJSON *it;
            cJSON_ArrayForEach(it, want_ids) ids[i++] = it->valueint;
            char *out = NULL;
            size_t len = 0;
            q35_err e = {0};
            assert_int_equal(q35_detokenize(toks[k], ids, n, false, &out, &len, &e), 0);
            if (len != strlen(want) || memcmp(out, want, len)) {
                failures++;
                fprintf(stderr, "DECODE MISMATCH %s on \"%s\": got \"%s\"\n", key, text, out);
            }
            free(out);
            free(ids);
        }
    }
    *failures_out += failures;
    return n_cases;
}

static void test_encode_decode(void **state) {
    (void)state;
    cJSON *root = load_json("tok_cases.json");
    int failures = 0, n_cases = check_cases(root, &failures);
    cJSON_Delete(root);
    fprintf(stderr, "tok_cases: %d strings x 2 tokenizers x (2 encodings + decode), %d failures\n",
            n_cases, failures);
    assert_true(n_cases >= 40);
    assert_int_equal(failures, 0);
}

/* Strings and id lists no golden file holds, with HF tokenizers' answers
 * (tests/tools/tok_oracle.py, which first re-derives tok_cases.json by the
 * same method): scripts, marks, emoji sequences, digits, whitespace runs,
 * code, added tokens whole and in pieces, random fragment mixtures, a long
 * text; random id lists whose byte tokens make invalid UTF-8. */
static void test_oracle_cases(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/oracle_cases.json", Q35_TEST_DATA);
    q35_err e = {0};
    size_t len;
    char *text = q35_read_text_file(path, 16u << 20, &len, &e);
    if (!text) fail_msg("%s", e.msg);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    assert_non_null(root);
    int failures = 0, n_cases = check_cases(root, &failures), n_dec = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "decode_cases")) {
        const cJSON *jids = cJSON_GetObjectItem(c, "ids"), *it;
        size_t n = (size_t)cJSON_GetArraySize(jids), i = 0;
        int32_t *ids = malloc((n + 1) * sizeof *ids);
        assert_non_null(ids);
        cJSON_ArrayForEach(it, jids) ids[i++] = it->valueint;
        for (int k = 0; k < 2; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s_decoded_hex", names[k]);
            const char *hex = cJSON_GetObjectItem(c, key)->valuestring;
            char *out = NULL;
            size_t olen = 0;
            assert_int_equal(q35_detokenize(toks[k], ids, n, false, &out, &olen, &e), 0);
            bool same = strlen(hex) == 2 * olen;
            for (size_t j = 0; same && j < olen; j++) {
                unsigned v;
                same = sscanf(hex + 2 * j, "%2x", &v) == 1 && v == (unsigned char)out[j];
            }
            if (!same) {
                failures++;
                char *w = cJSON_PrintUnformatted(jids);
                fprintf(stderr, "DECODE MISMATCH %s on ids %s\n", key, w);
                free(w);
            }
            free(out);
        }
        free(ids);
        n_dec++;
    }
    cJSON_Delete(root);
    fprintf(stderr, "oracle: %d strings, %d id lists, %d failures\n", n_cases, n_dec, failures);
    assert_true(n_cases >= 300 && n_dec >= 100);
    assert_int_equal(failures, 0);
}

/* Collects the byte-level spelling of each piece. */
typedef struct pieces {
    char buf[8192];
    size_t len;
    int n;
} pieces;

static int collect_piece(void *ud, const char *p, size_t len, int32_t added_id) {
    pieces *ps = ud;
    if (ps->len + 2 * len + 2 >= sizeof ps->buf) return -1;
    for (size_t i = 0; i < len; i++) {
        if (added_id >= 0)
            ps->buf[ps->len++] = p[i];
        else
            ps->len += (size_t)tok_byte_to_char((unsigned char)p[i], ps->buf + ps->len);
    }
    ps->buf[ps->len++] = '\x1f';
    ps->n++;
    return 0;
}

static void test_pretok_pieces(void **state) {
    (void)state;
    cJSON *root = load_json("pretok_cases.json");
    const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    int n_cases = 0, failures = 0, differ = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        n_cases++;
        pieces got[2];
        for (int k = 0; k < 2; k++) {
            const cJSON *want = cJSON_GetObjectItem(c, names[k]), *it;
            pieces w = {0};
            cJSON_ArrayForEach(it, want) {
                size_t l = strlen(it->valuestring);
                assert_true(w.len + l + 1 < sizeof w.buf);
                memcpy(w.buf + w.len, it->valuestring, l);
                w.len += l;
                w.buf[w.len++] = '\x1f';
                w.n++;
            }
            memset(&got[k], 0, sizeof got[k]);
            q35_err e = {0};
            /* HF's pre_tokenize_str sees no added tokens: everything is text */
            assert_int_equal(q35_tok_pretokenize(toks[k], text, strlen(text), Q35_ADDED_AS_TEXT,
                                                 collect_piece, &got[k], &e),
                             0);
            if (got[k].len != w.len || memcmp(got[k].buf, w.buf, w.len)) {
                failures++;
                fprintf(stderr, "PIECES MISMATCH %s on \"%s\"\n  ours: %.*s\n  want: %.*s\n",
                        names[k], text, (int)got[k].len, got[k].buf, (int)w.len, w.buf);
            }
        }
        differ += got[0].len != got[1].len || memcmp(got[0].buf, got[1].buf, got[0].len);
    }
    cJSON_Delete(root);
    fprintf(stderr, "pretok_cases: %d strings x 2 regexes, %d failures, %d split differently\n",
            n_cases, failures, differ);
    assert_true(n_cases >= 50);
    assert_int_equal(failures, 0);
    assert_true(differ >= 1); /* the two regexes are really both exercised */
}

/* The regex compiled is the one in the file, and the GGUF name table gives
 * the same patterns. */
static void test_regex_from_file(void **state) {
    (void)state;
    const char *pre[2] = {"qwen2", "qwen35"};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(toks[k]->n_pretok, 1);
        assert_string_equal(toks[k]->pretok_src[0], q35_tok_pretok_regex_named(pre[k]));
    }
    assert_string_not_equal(toks[0]->pretok_src[0], toks[1]->pretok_src[0]);
    assert_null(q35_tok_pretok_regex_named("llama3"));
}

static void test_vocab_facts(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        const q35_tokenizer *t = toks[k];
        assert_int_equal(q35_tokenizer_n_vocab(t), 151669); /* 151643 + 26 added */
        assert_int_equal(q35_token_id(t, "<|im_end|>"), 151645);
        assert_int_equal(q35_token_id(t, "<|endoftext|>"), 151643);
        assert_int_equal(q35_token_id(t, "<think>"), 151667);
        assert_int_equal(q35_token_id(t, "Hello"), 9707);
        assert_int_equal(q35_token_id(t, "no such piece"), -1);
        assert_true(q35_token_is_special(t, 151645));
        assert_false(q35_token_is_special(t, 151667)); /* <think> is added, not special */
        assert_true(q35_token_is_added(t, 151667));
        assert_false(q35_token_is_added(t, 9707));
        size_t len;
        assert_string_equal(q35_token_piece(t, 1879, &len), "Ġworld");
        const char *b = q35_token_bytes(t, 1879, &len);
        assert_int_equal(len, 6);
        assert_memory_equal(b, " world", 6);
        assert_null(q35_token_piece(t, 151669, &len));
        assert_null(q35_token_piece(t, -1, &len));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode), cmocka_unit_test(test_oracle_cases),
        cmocka_unit_test(test_pretok_pieces), cmocka_unit_test(test_regex_from_file),
        cmocka_unit_test(test_vocab_facts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
