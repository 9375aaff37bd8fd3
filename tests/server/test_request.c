/* test_request.c — the request parser of q35 serve: fields honoured (with
 * their defaults), each unsupported or malformed field refused with a 400
 * naming it, and a deterministic mutation run (byte flips, cuts,
 * insertions and splices of valid requests, from a fixed seed) in which
 * every input either parses or gets a 4xx error with a message — the
 * libFuzzer target tests/fuzz/fuzz_server_request.c runs the same
 * function open-ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/request.h"

static const srv_limits LIM = {1024, 4, 64};

static int parse(const char *body, srv_kind kind, srv_request *r, srv_error *e) {
    return srv_request_parse(body, strlen(body), kind, &LIM, r, e);
}

static void fields_honoured(void **st) {
    srv_request r;
    srv_error e;
    const char *b =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],\"temperature\":0.2,\"top_p\":0.5,"
        "\"top_k\":7,\"repetition_penalty\":1.3,\"max_completion_tokens\":33,\"stop\":[\"x\","
        "\"yy\"],"
        "\"seed\":42,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"chat_template_kwargs\":{\"enable_thinking\":false},\"thinking_budget\":9,"
        "\"tool_choice\":\"none\",\"n\":1,\"logprobs\":false,\"user\":\"ignored\"}";
    assert_int_equal(parse(b, SRV_CHAT, &r, &e), 0);
    assert_string_equal(r.model, "m");
    assert_int_equal((int)r.messages.n, 2);
    assert_true(r.sampling.temperature > 0.19f && r.sampling.temperature < 0.21f);
    assert_true(r.sampling.top_p == 0.5f);
    assert_int_equal(r.sampling.top_k, 7);
    assert_int_equal(r.sampling.max_tokens, 33);
    assert_true(r.max_tokens_given);
    assert_string_equal(r.sampling.stop[0], "x");
    assert_string_equal(r.sampling.stop[1], "yy");
    assert_null(r.sampling.stop[2]);
    assert_int_equal((int)r.sampling.seed, 42);
    assert_true(r.stream && r.include_usage);
    assert_false(r.sampling.thinking);
    assert_int_equal(r.sampling.thinking_budget, 9);
    assert_int_equal(r.tool_choice, SRV_TOOLS_NONE);
    srv_request_free(&r);

    /* defaults */
    assert_int_equal(
        parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", SRV_CHAT, &r, &e), 0);
    assert_true(r.sampling.thinking);
    assert_int_equal(r.sampling.max_tokens, LIM.max_tokens);
    assert_false(r.max_tokens_given);
    assert_false(r.stream);
    srv_request_free(&r);

    assert_int_equal(parse("{\"prompt\":[\"once upon\"],\"max_tokens\":5,\"stop\":\"\\n\"}",
                           SRV_COMPLETION, &r, &e),
                     0);
    assert_string_equal(r.prompt, "once upon");
    assert_false(r.sampling.thinking);
    srv_request_free(&r);
}

static void refused(void **st) {
    struct {
        const char *body, *param;
        srv_kind kind;
    } cases[] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":2}", "n", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":true}", "logprobs",
         SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_logprobs\":2}",
         "top_logprobs", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":\"hot\"}",
         "temperature", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":7}", "temperature",
         SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_p\":0}", "top_p", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1.5}", "max_tokens",
         SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":100000}",
         "max_tokens", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":0}", "max_tokens",
         SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":[1]}", "stop", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\","
         "\"e\"]}",
         "stop", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":1}", "stream",
         SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"presence_penalty\":0.5}",
         "presence_penalty", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"sometimes\"}",
         "tool_choice", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":"
         "\"xml\"}}",
         "response_format", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":{}}", "tools", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"chat_template_kwargs\":{"
         "\"enable_thinking\":\"yes\"}}",
         "chat_template_kwargs.enable_thinking", SRV_CHAT},
        {"{\"messages\":[]}", "messages", SRV_CHAT},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
         "\"url\":\"x\"}}]}]}",
         "messages", SRV_CHAT},
        {"{\"model\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model", SRV_CHAT},
        {"{\"prompt\":5}", "prompt", SRV_COMPLETION},
        {"{\"prompt\":\"x\",\"echo\":true}", "echo", SRV_COMPLETION},
        {"{\"prompt\":\"x\",\"best_of\":3}", "best_of", SRV_COMPLETION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_request r;
        srv_error e;
        int rc = parse(cases[i].body, cases[i].kind, &r, &e);
        if (rc != 400 || strcmp(e.param, cases[i].param))
            fail_msg("case %zu (%s): status %d param '%s' (%s)", i, cases[i].body, rc, e.param,
                     e.message);
        assert_true(e.message[0] != 0);
        assert_string_equal(e.type, "invalid_request_error");
        assert_null(r.model); /* zeroed on failure */
    }
    const char *malformed[] = {"",     "{",
                               "[]",   "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} x",
                               "null", "{\"a\":1}"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        srv_request r;
        srv_error e;
        assert_int_equal(parse(malformed[i], SRV_CHAT, &r, &e), 400);
        assert_true(e.message[0] != 0);
    }
    /* a NUL inside the body */
    srv_request r;
    srv_error e;
    assert_int_equal(srv_request_parse("{\"a\"\0:1}", 8, SRV_CHAT, &LIM, &r, &e), 400);
}

/* xorshift64*, fixed seed: the same mutants on every run */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static void mutation_run(void **st) {
    static const char *seeds[] = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":"
        "\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"
        "\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{"
        "\\\"a\\\""
        ":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}],\"tools\":[{"
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]"
        ","
        "\"temperature\":0.5,\"stop\":[\"\\n\\n\"],\"stream\":true,\"stream_options\":{"
        "\"include_usage\":true},\"max_tokens\":64,\"seed\":7}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{"
        "\"type\""
        ":\"text\",\"text\":\"\\u00e9\\ud83d\\ude00\"}]}],\"response_format\":{\"type\":\"json_"
        "schema\""
        ",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\"}}},\"tool_choice\":{"
        "\"type\":"
        "\"function\",\"function\":{\"name\":\"f\"}}}",
    };
    const char alphabet[] = "{}[]\":,0123456789.-eE+truefalsnl\\u \t\n\x80\xff\x00";
    char buf[4096];
    int parsed = 0, refused = 0;
    for (int iter = 0; iter < 4000; iter++) {
        const char *s = seeds[next() % 2];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(next() % 6);
        for (int k = 0; k < edits && n > 0; k++) {
            size_t at = next() % n;
            switch (next() % 5) {
            case 0: buf[at] = (char)(next() & 0xff); break; /* flip */
            case 1: n = at; break;                          /* cut */
            case 2:                                         /* insert */
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = alphabet[next() % (sizeof alphabet - 1)];
                    n++;
                }
                break;
            case 3: { /* delete a run */
                size_t len = 1 + next() % 8;
                if (at + len > n) len = n - at;
                memmove(buf + at, buf + at + len, n - at - len);
                n -= len;
                break;
            }
            default: { /* splice a piece of the other seed */
                const char *o = seeds[next() % 2];
                size_t on = strlen(o), from = next() % on, len = 1 + next() % 16;
                if (from + len > on) len = on - from;
                if (n + len < sizeof buf) {
                    memmove(buf + at + len, buf + at, n - at);
                    memcpy(buf + at, o + from, len);
                    n += len;
                }
            }
            }
        }
        char *body = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
        memcpy(body, buf, n);
        srv_request r;
        srv_error e;
        int rc = srv_request_parse(body, n, iter % 3 ? SRV_CHAT : SRV_COMPLETION, &LIM, &r, &e);
        if (rc == 0) {
            parsed++;
            srv_request_free(&r);
        } else {
            assert_true(rc >= 400 && rc < 600);
            assert_true(e.message[0] != 0);
            refused++;
        }
        free(body);
    }
    fprintf(stderr, "mutants: %d parsed, %d refused\n", parsed, refused);
    assert_true(refused > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_honoured),
        cmocka_unit_test(refused),
        cmocka_unit_test(mutation_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
