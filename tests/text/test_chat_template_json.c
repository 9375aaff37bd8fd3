/* test_chat_template_json.c — the JSON side of the chat format:
 *  - Python's repr(float) on 1200 doubles (tests/data/chat/float_repr.json,
 *    made by Python), and json.dumps of a value with repeated keys, odd
 *    number spellings and escapes (expected text printed by Python);
 *  - malformed JSON of every kind refused with a position; nesting, size
 *    and NUL limits; a 10 MB message;
 *  - messages JSON with wrong shapes or types refused naming the field;
 *  - 4000 mutants of a valid request (tools, tool calls, tool responses):
 *    each renders or is refused cleanly (the sanitizer build checks the
 *    "cleanly").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mapped_file.h"
#include "q35.h"
#include "text/pyjson.h"

typedef struct buf {
    char *s;
    size_t n, cap;
} buf;

static int buf_sink(void *ud, const char *s, size_t n) {
    buf *b = ud;
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

static void test_float_repr(void **st) {
    (void)st;
    q35_err e = {0};
    size_t len;
    char *text = q35_read_text_file(Q35_TEST_DATA "/chat/float_repr.json", 1 << 20, &len, &e);
    assert_non_null(text);
    q35_pyjson_doc *d = q35_pyjson_parse(text, len, "float_repr.json", &e);
    assert_non_null(d);
    const q35_pyjson *cases = q35_pyjson_get(q35_pyjson_root(d), "cases");
    assert_true(cases && cases->n >= 1000);
    for (size_t i = 0; i < cases->n; i++) {
        const char *hex = cases->items[i].items[0].str, *want = cases->items[i].items[1].str;
        uint64_t bits = strtoull(hex, NULL, 16);
        double x;
        memcpy(&x, &bits, sizeof x);
        char got[40];
        q35_py_float_repr(x, false, got);
        if (strcmp(got, want) != 0) fail_msg("bits %s: repr %s, Python %s", hex, got, want);
    }
    q35_pyjson_free(d);
    free(text);
}

static void test_python_dumps(void **st) {
    (void)st;
    /* expected: json.dumps(json.loads(src), ensure_ascii=False) in Python */
    const char *src = "{\"b\": 1, \"a\": [1.0, -0, 1E5, \"\\u00e9\\n\\u0001\\/\", true, null, "
                      "-0.0, 1e400, 2.50], \"b\": {\"z\": []}, \"\\u00e9\": {}}";
    const char *want = "{\"b\": {\"z\": []}, \"a\": [1.0, 0, 100000.0, \"\xc3\xa9\\n\\u0001/\", "
                       "true, null, -0.0, Infinity, 2.5], \"\xc3\xa9\": {}}";
    q35_err e = {0};
    q35_pyjson_doc *d = q35_pyjson_parse(src, strlen(src), "dumps", &e);
    assert_non_null(d);
    buf b = {0};
    assert_int_equal(q35_pyjson_dump(q35_pyjson_root(d), buf_sink, &b), 0);
    assert_string_equal(b.s, want);
    /* str() of the scalars, as the template's |string prints arguments */
    const q35_pyjson *a = q35_pyjson_get(q35_pyjson_root(d), "a");
    const char *strs[] = {"1.0",  "0",   "100000.0", "\xc3\xa9\n\x01/", "True", "None",
                          "-0.0", "inf", "2.5"};
    for (size_t i = 0; i < a->n; i++) {
        b.n = 0;
        assert_int_equal(q35_pyjson_str(&a->items[i], buf_sink, &b), 0);
        assert_string_equal(b.s, strs[i]);
    }
    free(b.s);
    q35_pyjson_free(d);
}

static void test_malformed_json(void **st) {
    (void)st;
    static const char *bad[] = {
        "",
        "[",
        "[1,]",
        "{\"a\":}",
        "01",
        "1.",
        "-",
        "1e",
        "tru",
        "nul",
        "[1 2]",
        "{\"a\" 1}",
        "{'a': 1}",
        "[1]x",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"a\nb\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"",
        "\"abc",
        "{\"a\":1,}",
        "[,1]",
        "+1",
        ".5",
        "NaNx",
        "{1: 2}",
        "[\"a\" \"b\"]",
        "\"\\",
        "   ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        q35_err e = {0};
        q35_pyjson_doc *d = q35_pyjson_parse(bad[i], strlen(bad[i]), "bad", &e);
        if (d) fail_msg("accepted malformed JSON #%zu: %s", i, bad[i]);
        assert_int_equal(e.code, Q35_EFORMAT);
        assert_non_null(strstr(e.msg, "byte"));
        q35_message_list l = {0};
        assert_int_not_equal(q35_messages_from_json(bad[i], strlen(bad[i]), &l, &e), 0);
        assert_null(l.items);
    }
    /* Python accepts these; so do we */
    static const char *good[] = {"NaN", "-Infinity", "\xef\xbb\xbf[]", " \t\r\n{} ",
                                 "\"\\ud83d\\ude42\""};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        q35_err e = {0};
        q35_pyjson_doc *d = q35_pyjson_parse(good[i], strlen(good[i]), "good", &e);
        if (!d) fail_msg("refused #%zu: %s", i, e.msg);
        q35_pyjson_free(d);
    }
}

static void test_limits(void **st) {
    (void)st;
    q35_err e = {0};
    /* nesting far deeper than any real message: refused, no stack overflow */
    size_t depth = 200000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = 0;
    assert_null(q35_pyjson_parse(deep, 2 * depth, "deep", &e));
    assert_non_null(strstr(e.msg, "deep"));
    free(deep);

    /* millions of tiny values: refused before they cost ~100 bytes each */
    size_t nv = (size_t)1 << 21;
    char *many = malloc(2 * nv + 2);
    many[0] = '[';
    for (size_t i = 0; i < nv; i++)
        memcpy(many + 1 + 2 * i, "0,", 2);
    many[2 * nv] = ']';
    assert_null(q35_pyjson_parse(many, 2 * nv + 1, "many", &e));
    assert_int_equal(e.code, Q35_ENOMEM);
    assert_non_null(strstr(e.msg, "JSON values"));
    free(many);

    /* a 10 MB message renders whole */
    size_t big = 10u << 20;
    char *json = malloc(big + 64);
    int k = snprintf(json, 64, "[{\"role\": \"user\", \"content\": \"");
    memset(json + k, 'a', big);
    strcpy(json + k + big, "\"}]");
    q35_message_list l = {0};
    assert_int_equal(q35_messages_from_json(json, strlen(json), &l, &e), 0);
    q35_prompt p;
    assert_int_equal(q35_chat_render(l.items, l.n, NULL, &p, &e), 0);
    assert_int_equal(p.len, big + strlen("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"
                                         "<think>\n"));
    q35_prompt_free(&p);
    q35_message_list_free(&l);
    free(json);

    /* NUL cannot reach a C string: refused, naming the field */
    const char *nul = "[{\"role\": \"user\", \"content\": \"a\\u0000b\"}]";
    assert_int_equal(q35_messages_from_json(nul, strlen(nul), &l, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "messages[0].content"));
    /* ... but is printed escaped inside tools, as Python does */
    q35_message u = {.role = "user", .content = "q"};
    q35_chat_opts o = q35_chat_opts_default();
    o.tools_json = "[\"a\\u0000b\"]";
    assert_int_equal(q35_chat_render(&u, 1, &o, &p, &e), 0);
    assert_non_null(strstr(p.text, "\n\"a\\u0000b\"\n</tools>"));
    q35_prompt_free(&p);
}

static void expect_refused(const char *json, const char *needle) {
    q35_message_list l = {0};
    q35_err e = {0};
    int rc = q35_messages_from_json(json, strlen(json), &l, &e);
    if (rc == 0) fail_msg("accepted: %s", json);
    if (!strstr(e.msg, needle)) fail_msg("'%s': error '%s' lacks '%s'", json, e.msg, needle);
    assert_null(l.items);
}

static void test_messages_shapes(void **st) {
    (void)st;
    expect_refused("{\"role\": \"user\"}", "\"messages\"");
    expect_refused("7", "expected an array");
    expect_refused("[1]", "messages[0]: expected an object");
    expect_refused("[{\"content\": \"x\"}]", "no \"role\"");
    expect_refused("[{\"role\": 1}]", "messages[0].role");
    expect_refused("[{\"role\": \"user\", \"content\": 5}]", "messages[0].content");
    expect_refused("[{\"role\": \"user\", \"content\": {\"text\": \"x\"}}]", "content");
    expect_refused("[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": "
                   "{\"url\": \"x\"}}]}]",
                   "images");
    expect_refused("[{\"role\": \"user\", \"content\": [\"x\"]}]", "content[0]");
    expect_refused("[{\"role\": \"user\", \"content\": [{\"type\": \"audio\"}]}]", "content[0]");
    expect_refused("[{\"role\": \"user\", \"content\": [{\"text\": 3}]}]", "content[0].text");
    expect_refused("[{\"role\": \"assistant\", \"tool_calls\": {\"name\": \"f\"}}]",
                   "tool_calls: expected an array");
    expect_refused("[{\"role\": \"assistant\", \"tool_calls\": [3]}]", "tool_calls[0]");
    expect_refused("[{\"role\": \"assistant\", \"tool_calls\": [{\"function\": null}]}]",
                   "function: expected an object");
    expect_refused("[{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {}}]}]", "name");
    expect_refused("[{\"role\": \"assistant\", \"tool_calls\": [{\"name\": \"f\", "
                   "\"arguments\": 3}]}]",
                   "arguments");
    expect_refused("[{\"role\": \"assistant\", \"tool_calls\": [{\"name\": \"f\", "
                   "\"arguments\": \"{oops\"}]}]",
                   "arguments");
    expect_refused("[{\"role\": \"assistant\", \"tool_calls\": [{\"name\": \"f\", "
                   "\"arguments\": \"[1]\"}]}]",
                   "not an object");
    expect_refused("{\"messages\": [], \"tools\": {}}", "\"tools\" must be an array");

    /* accepted shapes: OpenAI string arguments, parts, request objects */
    const char *ok = "{\"model\": \"m\", \"tools\": [{\"type\": \"function\"}], \"messages\": ["
                     "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, "
                     "{\"type\": \"text\", \"text\": \"b\"}]},"
                     "{\"role\": \"assistant\", \"content\": null, \"reasoning_content\": 5, "
                     "\"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": "
                     "{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}}]}]}";
    q35_message_list l = {0};
    q35_err e = {0};
    assert_int_equal(q35_messages_from_json(ok, strlen(ok), &l, &e), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].content, "ab");
    assert_null(l.items[1].content);
    assert_null(l.items[1].reasoning_content);
    assert_int_equal(l.items[1].n_tool_calls, 1);
    assert_string_equal(l.items[1].tool_calls[0].name, "f");
    assert_string_equal(l.items[1].tool_calls[0].arguments_json, "{\"x\": 1}");
    assert_string_equal(l.tools_json, "[{\"type\": \"function\"}]");
    q35_message_list_free(&l);
    q35_message_list_free(&l);
}

/* A small deterministic generator (no global state, same on every run). */
static uint64_t next_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static void test_mutants(void **st) {
    (void)st;
    const char *seed_json =
        "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
        "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": "
        "\"string\"}}, \"minimum\": 1.5e3}}}], \"messages\": [{\"role\": \"system\", \"content\": "
        "\" Be brief. \"}, {\"role\": \"user\", \"content\": \"Weather in \\u00c9vry?\"}, "
        "{\"role\": \"assistant\", \"content\": \"<think>\\nhm\\n</think>\\n\\nChecking.\", "
        "\"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
        "\"arguments\": {\"city\": \"\\u00c9vry\", \"n\": [1, 2.0, {\"u\": null}]}}}]}, "
        "{\"role\": \"tool\", \"content\": \"{\\\"temp_c\\\": 18}\"}, {\"role\": \"tool\", "
        "\"content\": \"ok\"}]}";
    size_t n0 = strlen(seed_json);
    static const char alphabet[] = "{}[]\":,\\ \n0123456789.eE-+tfnu\"<>|/\xc3\xa9\xff";
    uint64_t rs = 35;
    size_t rendered = 0;
    char *m = malloc(n0 + 16);
    for (int it = 0; it < 4000; it++) {
        memcpy(m, seed_json, n0 + 1);
        size_t n = n0;
        int edits = 1 + (int)(next_rand(&rs) % 3);
        for (int k = 0; k < edits && n > 1; k++) {
            size_t at = next_rand(&rs) % n;
            char c = alphabet[next_rand(&rs) % (sizeof alphabet - 1)];
            switch (next_rand(&rs) % 4) {
            case 0: m[at] = c; break; /* replace */
            case 1:
                memmove(m + at, m + at + 1, n - at);
                n--;
                break; /* delete */
            case 2:    /* insert */
                if (n < n0 + 8) {
                    memmove(m + at + 1, m + at, n - at + 1);
                    m[at] = c;
                    n++;
                }
                break;
            default:
                n = at;
                m[n] = 0;
                break; /* truncate */
            }
        }
        q35_message_list l = {0};
        q35_err e = {0};
        if (q35_messages_from_json(m, n, &l, &e) != 0) {
            assert_true(e.msg[0] != 0);
            continue;
        }
        q35_chat_opts o = q35_chat_opts_default();
        o.tools_json = l.tools_json;
        q35_prompt p;
        if (q35_chat_render(l.items, l.n, &o, &p, &e) == 0) {
            assert_int_equal(strlen(p.text), p.len);
            rendered++;
            q35_prompt_free(&p);
        } else {
            assert_true(e.msg[0] != 0);
        }
        q35_message_list_free(&l);
    }
    free(m);
    assert_true(rendered > 0); /* the mutants are not all trivially broken */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_repr),      cmocka_unit_test(test_python_dumps),
        cmocka_unit_test(test_malformed_json),  cmocka_unit_test(test_limits),
        cmocka_unit_test(test_messages_shapes), cmocka_unit_test(test_mutants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
