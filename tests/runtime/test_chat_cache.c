/* test_chat_cache.c — prompt caching on the hybrid tiny-chat model: after
 * q35_chat_prepare, turn 2 prefills only its new user message and the
 * generation prompt (the re-rendered answer was computed by prepare);
 * without prepare it starts from the end of turn 1's message and computes
 * only what is new; the system prompt is computed once per conversation (also
 * across reset); regenerate/edit after undo reuse the snapshot at the start
 * of the last user message; and every cached turn gives exactly the ids of
 * the same history replayed from scratch without any cache (thinking on,
 * off, and switched between turns). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "chat_test_util.h"

#define SYSTEM "You are a helpful voice assistant. Keep answers short."

/* Tokens of the system block: the prompt of an empty first turn up to
 * where the user block starts. */
static int system_len(void) {
    q35_chat *c = new_chat(SYSTEM, 0, 0);
    int32_t *ids;
    size_t n;
    assert_int_equal(q35_chat_prompt_ids(c, "", false, &ids, &n, NULL), Q35_OK);
    int32_t im_start = q35_token_id(g_tok, "<|im_start|>");
    int pos = -1, seen = 0;
    for (size_t i = 0; i < n && pos < 0; i++)
        if (ids[i] == im_start && seen++ == 1) pos = (int)i;
    free(ids);
    q35_chat_free(c);
    assert_true(pos > 0);
    return pos;
}

/* Ids of the text, added tokens matched (template text, as the renderer
 * would emit it). */
static int n_ids(const char *text) {
    int32_t *ids;
    size_t n;
    assert_int_equal(q35_tokenize(g_tok, text, strlen(text), Q35_ADDED_MATCH, &ids, &n, NULL),
                     Q35_OK);
    free(ids);
    return (int)n;
}

/* Where the last user message starts in the prompt of `user` as the next
 * turn: the <|im_start|> before the generation prompt's. */
static int user_start_of(const q35_chat *c, const char *user, bool thinking) {
    int32_t *ids;
    size_t n;
    assert_int_equal(q35_chat_prompt_ids(c, user, thinking, &ids, &n, NULL), Q35_OK);
    int32_t im_start = q35_token_id(g_tok, "<|im_start|>");
    int seen = 0, at = -1;
    for (size_t i = n; i-- > 0 && at < 0;)
        if (ids[i] == im_start && seen++ == 1) at = (int)i;
    free(ids);
    assert_true(at > 0);
    return at;
}

static void test_turn2_prefills_only_new(void **st) {
    (void)st;
    q35_sampling s = greedy(12, false);
    const int sys = system_len();
    const char *u1 = "My name is Alex and I live in Lyon.", *u2 = "Where do I live?";
    q35_chat *c = new_chat(SYSTEM, 0, 0), *lazy = new_chat(SYSTEM, 0, 0);

    int p1 = prompt_len(c, u1, false);
    q35_reply r1 = turn(c, u1, &s), l1 = turn(lazy, u1, &s);
    assert_int_equal(r1.prompt_tokens, p1);
    assert_int_equal(r1.reused_tokens, 0);
    assert_int_equal(r1.prefilled_tokens, p1);
    assert_true(same_ids(&r1, &l1));

    /* prepared: turn 2 prefills its user block and the generation prompt;
     * prepare computed the answer re-rendered, from the end of turn 1's
     * user message (where turn 1's generation prompt starts) */
    int p2 = prompt_len(c, u2, false);
    int start2 = user_start_of(c, u2, false);
    const int end1 = p1 - gen_prompt_len(false);
    q35_chat_stats cs;
    q35_chat_get_stats(c, &cs);
    int64_t before = cs.prefilled_tokens;
    assert_int_equal(q35_chat_prepare(c, NULL), Q35_OK);
    q35_chat_get_stats(c, &cs);
    assert_int_equal(cs.prefilled_tokens - before, start2 - end1);
    assert_int_equal(q35_chat_prepare(c, NULL), Q35_OK); /* nothing new: nothing computed */
    q35_chat_get_stats(c, &cs);
    assert_int_equal(cs.prefilled_tokens - before, start2 - end1);
    q35_reply r2 = turn(c, u2, &s);
    assert_int_equal(r2.prompt_tokens, p2);
    assert_int_equal(r2.reused_tokens, start2);
    char block[256];
    snprintf(block, sizeof block, "<|im_start|>user\n%s<|im_end|>\n", u2);
    assert_int_equal(r2.prefilled_tokens, n_ids(block) + gen_prompt_len(false));
    q35_chat_get_stats(c, &cs);
    assert_int_equal(cs.last_prefilled, r2.prefilled_tokens);
    assert_int_equal(cs.last_reused, start2);

    /* not prepared: turn 2 starts from the end of turn 1's user message and
     * prefills what is new: the re-rendered answer, the new message, the
     * generation prompt */
    q35_reply l2 = turn(lazy, u2, &s);
    assert_int_equal(l2.reused_tokens, end1);
    assert_int_equal(l2.prefilled_tokens, p2 - end1);
    assert_true(end1 > sys);
    assert_true(same_ids(&r2, &l2));

    /* both equal the same history from scratch */
    q35_chat_undo(c, NULL);
    q35_reply f2 = from_scratch(c, SYSTEM, u2, &s);
    assert_true(same_ids(&r2, &f2));

    q35_reply_free(&r1);
    q35_reply_free(&r2);
    q35_reply_free(&l1);
    q35_reply_free(&l2);
    q35_reply_free(&f2);
    q35_chat_free(c);
    q35_chat_free(lazy);
}

static void test_system_prompt_once(void **st) {
    (void)st;
    const int sys = system_len();
    q35_sampling s = greedy(6, false);
    q35_chat *c = new_chat(SYSTEM, 0, 0);
    assert_int_equal(q35_chat_prepare(c, NULL), Q35_OK);
    q35_chat_stats cs;
    q35_chat_get_stats(c, &cs);
    assert_int_equal(cs.prefilled_tokens, sys);
    assert_int_equal(q35_chat_prepare(c, NULL), Q35_OK); /* again: nothing to compute */
    q35_chat_get_stats(c, &cs);
    assert_int_equal(cs.prefilled_tokens, sys);

    q35_reply a = turn(c, "Hello", &s);
    assert_int_equal(a.reused_tokens, sys);
    assert_int_equal(a.prefilled_tokens, a.prompt_tokens - sys);
    q35_reply b = turn(c, "And again", &s);
    q35_chat_reset(c);
    assert_int_equal(q35_chat_n_turns(c), 0);
    q35_reply a2 = turn(c, "Hello", &s);
    assert_int_equal(a2.reused_tokens, sys); /* the system snapshot survives reset */
    assert_true(same_ids(&a, &a2));
    q35_chat_get_stats(c, &cs);
    /* the system prompt was computed exactly once */
    assert_int_equal(cs.prefilled_tokens,
                     sys + a.prefilled_tokens + b.prefilled_tokens + a2.prefilled_tokens);
    q35_reply_free(&a);
    q35_reply_free(&b);
    q35_reply_free(&a2);
    q35_chat_free(c);
}

static void test_regenerate_and_edit(void **st) {
    (void)st;
    q35_sampling s = greedy(8, false);
    q35_chat *c = new_chat(SYSTEM, 0, 0);
    q35_reply r1 = turn(c, "First question", &s);
    int p2 = prompt_len(c, "Second question", false);
    q35_reply r2 = turn(c, "Second question", &s);
    /* where turn 2's user message starts */
    assert_int_equal(q35_chat_undo(c, NULL), Q35_OK);
    const int user_start = user_start_of(c, "Second question", false);

    /* regenerate: same message, same (greedy) reply; the snapshot at the
     * end of the message matches, only the generation prompt is computed */
    q35_reply again = turn(c, "Second question", &s);
    assert_true(same_ids(&r2, &again));
    assert_int_equal(again.reused_tokens, p2 - gen_prompt_len(false));
    assert_int_equal(again.prefilled_tokens, gen_prompt_len(false));

    /* edit: another message; the snapshot at the start of the message
     * matches, only that turn is computed */
    assert_int_equal(q35_chat_undo(c, NULL), Q35_OK);
    q35_reply edit = turn(c, "A different second question", &s);
    assert_int_equal(edit.reused_tokens, user_start);
    q35_chat_undo(c, NULL);
    q35_reply ref = from_scratch(c, SYSTEM, "A different second question", &s);
    assert_true(same_ids(&edit, &ref));

    q35_chat_undo(c, NULL);
    assert_int_equal(q35_chat_undo(c, NULL), Q35_ESTATE); /* empty now */
    q35_reply_free(&r1);
    q35_reply_free(&r2);
    q35_reply_free(&again);
    q35_reply_free(&edit);
    q35_reply_free(&ref);
    q35_chat_free(c);
}

/* Several turns with thinking on, off and switched; each cached turn equals
 * its from-scratch replay. */
static void test_many_turns_equal_scratch(void **st) {
    (void)st;
    const char *users[] = {"Hi", "Tell me about the sea", "Why?", "Thanks", "One more thing"};
    const bool think[] = {true, true, false, true, false};
    for (int with_system = 0; with_system < 2; with_system++) {
        const char *sys = with_system ? SYSTEM : NULL;
        q35_chat *c = new_chat(sys, 0, 0);
        for (int i = 0; i < 5; i++) {
            q35_sampling s = greedy(10, think[i]);
            s.repetition_penalty = 1.1f;
            q35_reply ref = from_scratch(c, sys, users[i], &s);
            q35_reply r = turn(c, users[i], &s);
            assert_true(same_ids(&r, &ref));
            assert_int_equal(r.answer_len, ref.answer_len);
            assert_memory_equal(r.answer, ref.answer, r.answer_len);
            if (i > 0 && (with_system || i > 1)) assert_true(r.reused_tokens > 0);
            if (think[i]) assert_int_equal(r.n_forced, 3); /* budget 5 < 10 tokens */
            if (i % 2) assert_int_equal(q35_chat_prepare(c, NULL), Q35_OK);
            q35_reply_free(&ref);
            q35_reply_free(&r);
        }
        q35_chat_free(c);
    }
}

/* Without snapshots every turn prefills its whole prompt, with the same
 * result. */
static void test_no_cache(void **st) {
    (void)st;
    q35_sampling s = greedy(8, false);
    q35_chat *a = new_chat(SYSTEM, 0, -1), *b = new_chat(SYSTEM, 0, 0);
    const char *users[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        q35_reply ra = turn(a, users[i], &s), rb = turn(b, users[i], &s);
        assert_true(same_ids(&ra, &rb));
        assert_int_equal(ra.reused_tokens, 0);
        assert_int_equal(ra.prefilled_tokens, ra.prompt_tokens);
        if (i) assert_true(rb.prefilled_tokens < rb.prompt_tokens);
        q35_reply_free(&ra);
        q35_reply_free(&rb);
    }
    q35_chat_stats st_a;
    q35_chat_get_stats(a, &st_a);
    assert_int_equal(st_a.n_snapshots, 0);
    q35_chat_free(a);
    q35_chat_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turn2_prefills_only_new),
        cmocka_unit_test(test_system_prompt_once),
        cmocka_unit_test(test_regenerate_and_edit),
        cmocka_unit_test(test_many_turns_equal_scratch),
        cmocka_unit_test(test_no_cache),
    };
    return cmocka_run_group_tests(tests, load_tiny_chat, free_tiny_chat);
}
