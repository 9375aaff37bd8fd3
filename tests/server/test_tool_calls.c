/* test_tool_calls.c — Qwen3.5 XML tool calls out of a streamed answer: the
 * parser alone (content vs calls, arguments typed by the tool's schema,
 * any split of the text into pieces giving the same result, a cut-off call
 * never leaking into the content) and through the response formatter (SSE
 * tool_calls deltas, finish_reason tool_calls, the non-streamed message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "server/engine.h"
#include "server/request.h"
#include "server/response.h"
#include "server/tool_calls.h"

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":"
    "\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},"
    "\"metric\":{\"type\":\"boolean\"},\"zip\":{\"type\":\"string\"},\"opts\":{\"type\":"
    "\"object\"}}}}}]";

static const char ANSWER[] = "Let me look.\n\n<tool_call>\n<function=get_weather>\n"
                             "<parameter=city>\nParis\n</parameter>\n"
                             "<parameter=days>\n3\n</parameter>\n"
                             "<parameter=metric>\nTrue\n</parameter>\n"
                             "<parameter=zip>\n75001\n</parameter>\n"
                             "<parameter=opts>\n{\"a\": [1, 2]}\n</parameter>\n"
                             "</function>\n</tool_call>\n<tool_call>\n<function=get_weather>\n"
                             "<parameter=city>\nRome\n</parameter>\n</function>\n</tool_call>";

typedef struct got {
    char content[4096];
    char names[4][64];
    char args[4][1024];
    int begun, ended;
} got;

static void on_content(void *ud, const char *t, size_t n) {
    got *g = ud;
    strncat(g->content, t, n);
}
static void on_begin(void *ud, int i, const char *name) {
    got *g = ud;
    assert_int_equal(i, g->begun);
    snprintf(g->names[i], sizeof g->names[i], "%s", name);
    g->begun++;
}
static void on_args(void *ud, int i, const char *j, size_t n) {
    got *g = ud;
    strncat(g->args[i], j, n);
}
static void on_end(void *ud, int i) {
    got *g = ud;
    g->ended++;
}

static void parse_in_pieces(const char *text, size_t piece, got *g) {
    memset(g, 0, sizeof *g);
    srv_tool_sink sink = {g, on_content, on_begin, on_args, on_end};
    srv_tool_parser *p = srv_tool_parser_new(TOOLS, &sink);
    assert_non_null(p);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += piece)
        assert_int_equal(srv_tool_parser_feed(p, text + i, i + piece > n ? n - i : piece), 0);
    assert_int_equal(srv_tool_parser_finish(p), 0);
    srv_tool_parser_free(p);
}

static void calls_parsed_and_typed(void **st) {
    got g;
    parse_in_pieces(ANSWER, 1000, &g);
    assert_string_equal(g.content, "Let me look.\n\n");
    assert_int_equal(g.begun, 2);
    assert_int_equal(g.ended, 2);
    assert_string_equal(g.names[0], "get_weather");
    cJSON *a = cJSON_Parse(g.args[0]);
    assert_non_null(a);
    assert_string_equal(cJSON_GetObjectItem(a, "city")->valuestring, "Paris");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(a, "days")));
    assert_int_equal(cJSON_GetObjectItem(a, "days")->valueint, 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "metric")));
    /* a string by the schema, although it looks like a number */
    assert_true(cJSON_IsString(cJSON_GetObjectItem(a, "zip")));
    assert_string_equal(cJSON_GetObjectItem(a, "zip")->valuestring, "75001");
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "opts"), "a")));
    cJSON_Delete(a);
    a = cJSON_Parse(g.args[1]);
    assert_non_null(a);
    assert_string_equal(cJSON_GetObjectItem(a, "city")->valuestring, "Rome");
    cJSON_Delete(a);
}

static void any_split_same_result(void **st) {
    got whole, g;
    parse_in_pieces(ANSWER, 100000, &whole);
    for (size_t piece = 1; piece < 40; piece++) {
        parse_in_pieces(ANSWER, piece, &g);
        assert_string_equal(g.content, whole.content);
        assert_int_equal(g.begun, whole.begun);
        for (int i = 0; i < g.begun; i++) {
            assert_string_equal(g.names[i], whole.names[i]);
            assert_string_equal(g.args[i], whole.args[i]);
        }
    }
}

static void cut_off_never_leaks(void **st) {
    size_t n = strlen(ANSWER);
    for (size_t cut = 0; cut <= n; cut++) {
        char text[2048];
        memcpy(text, ANSWER, cut);
        text[cut] = 0;
        got g;
        parse_in_pieces(text, 3, &g);
        assert_null(strstr(g.content, "<tool"));
        assert_null(strstr(g.content, "<function"));
        assert_null(strstr(g.content, "<parameter"));
        assert_int_equal(g.begun, g.ended);
        for (int i = 0; i < g.begun; i++) {
            cJSON *a = cJSON_Parse(g.args[i]);
            assert_non_null(a); /* a closed, valid arguments object */
            assert_true(cJSON_IsObject(a));
            cJSON_Delete(a);
        }
        if (cut < 12) /* "Let me look." and the start of a tag: all content */
            assert_true(strncmp(g.content, ANSWER, strlen(g.content)) == 0);
    }
}

static void plain_text_untouched(void **st) {
    got g;
    const char *t = "a < b and <tool but not a call; x <tool_cal";
    parse_in_pieces(t, 2, &g);
    /* a "<" in text is text; a tag start at the very end is a cut-off call */
    assert_string_equal(g.content, "a < b and <tool but not a call; x ");
    assert_int_equal(g.begun, 0);
}

/* ---------------------------------------------------- the formatter */

static srv_job *job_for(const char *body, bool stream, srv_request *req) {
    srv_limits lim = {512, 16, 256};
    srv_error err;
    char buf[4096];
    snprintf(buf, sizeof buf, body, stream ? "true" : "false");
    assert_int_equal(srv_request_parse(buf, strlen(buf), SRV_CHAT, &lim, req, &err), 0);
    srv_job *j = srv_job_new();
    assert_non_null(j);
    assert_non_null(srv_resp_attach(j, req, "m"));
    return j;
}

static const char BODY[] = "{\"model\":\"m\",\"stream\":%s,\"messages\":[{\"role\":\"user\","
                           "\"content\":\"weather?\"}],\"tools\":[{\"type\":\"function\","
                           "\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":"
                           "\"object\",\"properties\":{\"days\":{\"type\":\"integer\"}}}}}]}";

static void feed_reply(srv_job *j, const char *think, const char *answer, q35_stop_reason stop) {
    j->on_piece(j, Q35_PIECE_THINKING, think, strlen(think));
    size_t len = strlen(answer);
    for (size_t i = 0; i < len; i += 5)
        j->on_piece(j, Q35_PIECE_ANSWER, answer + i, len - i < 5 ? len - i : 5);
    q35_reply r = {0};
    r.stop = stop;
    j->prompt_tokens = 10;
    j->cached_tokens = 4;
    j->completion_tokens = 20;
    j->on_end(j, 0, &r, NULL);
}

static const char CALL[] = "Sure.<tool_call>\n<function=get_weather>\n<parameter=days>\n2\n"
                           "</parameter>\n</function>\n</tool_call>";

static void streamed_tool_calls(void **st) {
    srv_request req;
    srv_job *j = job_for(BODY, true, &req);
    feed_reply(j, "hmm", CALL, Q35_STOP_EOS);
    /* walk the SSE events */
    char *p = j->out, args[256] = "", content[256] = "", reasoning[256] = "";
    const char *finish = NULL;
    bool done = false, named = false;
    char fin[32] = "";
    while (p && *p) {
        assert_true(strncmp(p, "data: ", 6) == 0);
        char *end = strstr(p, "\n\n");
        assert_non_null(end);
        *end = 0;
        if (!strcmp(p + 6, "[DONE]")) {
            done = true;
        } else {
            cJSON *o = cJSON_Parse(p + 6);
            assert_non_null(o);
            assert_string_equal(cJSON_GetObjectItem(o, "object")->valuestring,
                                "chat.completion.chunk");
            cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
            cJSON *d = cJSON_GetObjectItem(c, "delta");
            cJSON *v;
            if ((v = cJSON_GetObjectItem(d, "content"))) strcat(content, v->valuestring);
            if ((v = cJSON_GetObjectItem(d, "reasoning_content")))
                strcat(reasoning, v->valuestring);
            cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "tool_calls"), 0);
            if (tc) {
                cJSON *fn = cJSON_GetObjectItem(tc, "function");
                if (cJSON_GetObjectItem(fn, "name")) {
                    named = true;
                    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring,
                                        "get_weather");
                    assert_non_null(cJSON_GetObjectItem(tc, "id"));
                }
                strcat(args, cJSON_GetObjectItem(fn, "arguments")->valuestring);
            }
            cJSON *f = cJSON_GetObjectItem(c, "finish_reason");
            if (cJSON_IsString(f)) snprintf(fin, sizeof fin, "%s", f->valuestring), finish = fin;
            cJSON_Delete(o);
        }
        p = end + 2;
    }
    assert_true(done);
    assert_true(named);
    assert_string_equal(content, "Sure.");
    assert_string_equal(reasoning, "hmm");
    assert_string_equal(args, "{\"days\": 2}");
    assert_non_null(finish);
    assert_string_equal(finish, "tool_calls");
    srv_job_release(j);
    srv_request_free(&req);
}

static void whole_message_with_tool_calls(void **st) {
    srv_request req;
    srv_job *j = job_for(BODY, false, &req);
    feed_reply(j, "", CALL, Q35_STOP_EOS);
    cJSON *o = cJSON_Parse(j->out);
    assert_non_null(o);
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(c, "finish_reason")->valuestring, "tool_calls");
    cJSON *m = cJSON_GetObjectItem(c, "message");
    assert_string_equal(cJSON_GetObjectItem(m, "content")->valuestring, "Sure.");
    cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "tool_calls"), 0);
    cJSON *fn = cJSON_GetObjectItem(tc, "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "get_weather");
    cJSON *args = cJSON_Parse(cJSON_GetObjectItem(fn, "arguments")->valuestring);
    assert_int_equal(cJSON_GetObjectItem(args, "days")->valueint, 2);
    cJSON *u = cJSON_GetObjectItem(o, "usage");
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(u, "prompt_tokens_details"), "cached_tokens")
            ->valueint,
        4);
    cJSON_Delete(args);
    cJSON_Delete(o);
    srv_job_release(j);
    srv_request_free(&req);

    /* cut off inside the call: length, no XML in the content */
    j = job_for(BODY, false, &req);
    feed_reply(j, "", "Sure.<tool_call>\n<function=get_weather>\n<parameter=da",
               Q35_STOP_MAX_TOKENS);
    o = cJSON_Parse(j->out);
    c = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
    m = cJSON_GetObjectItem(c, "message");
    assert_string_equal(cJSON_GetObjectItem(m, "content")->valuestring, "Sure.");
    tc = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "tool_calls"), 0);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "arguments")->valuestring, "{}");
    cJSON_Delete(o);
    srv_job_release(j);
    srv_request_free(&req);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calls_parsed_and_typed), cmocka_unit_test(any_split_same_result),
        cmocka_unit_test(cut_off_never_leaks),    cmocka_unit_test(plain_text_untouched),
        cmocka_unit_test(streamed_tool_calls),    cmocka_unit_test(whole_message_with_tool_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
