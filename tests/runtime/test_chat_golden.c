/* test_chat_golden.c — every run of golden/chat/chat_runs.json on
 * models/tiny-chat, through the public chat API only: for each turn, the
 * prompt the chat renders (ids), the ids it generates (forced ones and
 * their positions included), the text, the thinking/answer split, the stop
 * at eos, and the streamed pieces (which must add up to the same thinking
 * and answer). Turns after the first run from the prompt cache, so the
 * multi-turn runs also check that a cached turn equals the reference's
 * from-scratch render, token for token. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "q35.h"

#define TINY_CHAT Q35_FIXTURES "/models/tiny-chat"

static q35_model *model;
static q35_tokenizer *tok;
static cJSON *runs_json;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int setup(void **st) {
    (void)st;
    q35_err e = {0};
    model = q35_model_load(TINY_CHAT, NULL, &e);
    if (!model) fprintf(stderr, "load: %s\n", e.msg);
    tok = q35_tokenizer_load(TINY_CHAT, &e);
    if (!tok) fprintf(stderr, "tokenizer: %s\n", e.msg);
    char *s = slurp(Q35_FIXTURES "/chat/chat_runs.json");
    runs_json = s ? cJSON_Parse(s) : NULL;
    free(s);
    return model && tok && runs_json ? 0 : -1;
}

static int teardown(void **st) {
    (void)st;
    cJSON_Delete(runs_json);
    q35_tokenizer_free(tok);
    q35_model_free(model);
    return 0;
}

typedef struct pieces {
    char thinking[8192], answer[8192];
    size_t nt, na;
    int order_ok; /* no thinking piece after an answer piece */
} pieces;

static int on_piece(void *ud, q35_piece_kind kind, const char *text, size_t len) {
    pieces *p = ud;
    assert_true(len > 0);
    if (kind == Q35_PIECE_THINKING) {
        if (p->na) p->order_ok = 0;
        assert_true(p->nt + len < sizeof p->thinking);
        memcpy(p->thinking + p->nt, text, len);
        p->nt += len;
    } else {
        assert_int_equal(kind, Q35_PIECE_ANSWER);
        assert_true(p->na + len < sizeof p->answer);
        memcpy(p->answer + p->na, text, len);
        p->na += len;
    }
    return 0;
}

static void expect_ids(const char *what, const cJSON *want, const int32_t *got, size_t n) {
    int nw = cJSON_GetArraySize(want);
    int same = nw == (int)n;
    for (int i = 0; same && i < nw; i++)
        same = cJSON_GetArrayItem(want, i)->valueint == got[i];
    if (!same) {
        fprintf(stderr, "%s differ:\n  want", what);
        for (int i = 0; i < nw; i++)
            fprintf(stderr, " %d", cJSON_GetArrayItem(want, i)->valueint);
        fprintf(stderr, "\n  got ");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
    }
    assert_true(same);
}

static void expect_text(const char *what, const cJSON *want, const char *got, size_t n) {
    const char *w = cJSON_GetStringValue(want);
    assert_non_null(w);
    if (strlen(w) != n || memcmp(w, got, n)) {
        fprintf(stderr, "%s differs:\n  want '%s'\n  got  '%.*s'\n", what, w, (int)n, got);
        fail();
    }
}

static void run_one(const cJSON *run, bool prepare) {
    const char *name = cJSON_GetObjectItem(run, "name")->valuestring;
    const cJSON *turns = cJSON_GetObjectItem(run, "turns");
    const cJSON *first_msgs = cJSON_GetObjectItem(cJSON_GetArrayItem(turns, 0), "messages");
    const cJSON *m0 = cJSON_GetArrayItem(first_msgs, 0);
    const char *system = NULL;
    if (!strcmp(cJSON_GetObjectItem(m0, "role")->valuestring, "system"))
        system = cJSON_GetObjectItem(m0, "content")->valuestring;

    q35_sampling s = q35_sampling_default();
    s.temperature = 0;
    s.max_tokens = cJSON_GetObjectItem(run, "max_tokens")->valueint;
    s.repetition_penalty = (float)cJSON_GetObjectItem(run, "repetition_penalty")->valuedouble;
    s.repetition_window = 64;
    s.thinking = cJSON_IsTrue(cJSON_GetObjectItem(run, "enable_thinking"));
    const cJSON *budget = cJSON_GetObjectItem(run, "max_thinking_tokens");
    s.thinking_budget = cJSON_IsNumber(budget) ? budget->valueint : -1;

    q35_err e = {0};
    q35_chat *c = q35_chat_new(model, tok, system, NULL, &e);
    if (!c) fprintf(stderr, "%s: %s\n", name, e.msg);
    assert_non_null(c);
    int t = 0;
    const cJSON *turn;
    cJSON_ArrayForEach(turn, turns) {
        fprintf(stderr, "[ run ] %s turn %d\n", name, t);
        const cJSON *msgs = cJSON_GetObjectItem(turn, "messages");
        const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
        assert_string_equal(cJSON_GetObjectItem(last, "role")->valuestring, "user");
        const char *user = cJSON_GetObjectItem(last, "content")->valuestring;

        int32_t *pids;
        size_t np;
        assert_int_equal(q35_chat_prompt_ids(c, user, s.thinking, &pids, &np, &e), Q35_OK);
        expect_ids("prompt ids", cJSON_GetObjectItem(turn, "prompt_ids"), pids, np);
        free(pids);

        pieces p = {.order_ok = 1};
        q35_reply r;
        int rc = q35_chat_generate(c, user, &s, on_piece, &p, &r, &e);
        if (rc) fprintf(stderr, "%s: %s\n", name, e.msg);
        assert_int_equal(rc, Q35_OK);
        expect_ids("generated ids", cJSON_GetObjectItem(turn, "generated_ids"), r.ids,
                   (size_t)r.n_ids);
        const cJSON *fp = cJSON_GetObjectItem(turn, "forced_positions");
        assert_int_equal(cJSON_GetArraySize(fp), r.n_forced);
        for (int i = 0; i < r.n_forced; i++)
            assert_int_equal(cJSON_GetArrayItem(fp, i)->valueint, r.forced_positions[i]);
        expect_text("text", cJSON_GetObjectItem(turn, "text"), r.text, r.text_len);
        expect_text("thinking", cJSON_GetObjectItem(turn, "thinking"), r.thinking, r.thinking_len);
        expect_text("answer", cJSON_GetObjectItem(turn, "answer"), r.answer, r.answer_len);
        assert_int_equal(r.stopped_at_eos,
                         cJSON_IsTrue(cJSON_GetObjectItem(turn, "stopped_at_eos")));
        /* the stream adds up to the reply */
        assert_true(p.order_ok);
        assert_int_equal(p.nt, r.thinking_len);
        assert_memory_equal(p.thinking, r.thinking, p.nt);
        assert_int_equal(p.na, r.answer_len);
        assert_memory_equal(p.answer, r.answer, p.na);
        /* the prompt is what was rendered; a later turn reuses the cache */
        assert_int_equal(r.prompt_tokens, (int)np);
        assert_int_equal(r.prompt_tokens, r.reused_tokens + r.prefilled_tokens);
        if (t > 0) assert_true(r.reused_tokens > 0);
        q35_reply_free(&r);
        /* as an app would while the answer is spoken (every other run, so
         * that both cached paths meet the goldens) */
        if (prepare) assert_int_equal(q35_chat_prepare(c, &e), Q35_OK);
        t++;
    }
    q35_chat_free(c);
}

static void test_golden_runs(void **st) {
    (void)st;
    const cJSON *runs = cJSON_GetObjectItem(runs_json, "runs");
    assert_true(cJSON_GetArraySize(runs) > 0);
    const cJSON *run;
    int i = 0;
    cJSON_ArrayForEach(run, runs) {
        run_one(run, i % 2 == 0);
        run_one(run, i % 2 == 1);
        i++;
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
