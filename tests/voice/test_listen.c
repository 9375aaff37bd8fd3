/* test_listen.c — prefill while the user speaks, on the tiny chat model:
 * partial transcripts fed with q35_chat_listen are prefilled in the
 * background; a final transcript that differs from the last partial
 * reuses exactly the longest prefix cached for it (the last partial's
 * whole text, when it is a token prefix of the final) and computes only
 * the rest; a final equal to the last partial hits the speculation and
 * computes nothing before its first id. Every reply is the from-scratch
 * one token for token: when the recognizer revised its words, when a call
 * interrupts the listener, with thinking on or off, greedy or sampled,
 * when the final's settings differ from the expected ones, when a
 * barge-in changed the history after the speculation, and in the turn
 * after a hit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define CHAT_TEST_THREADS 2
#include "runtime/chat_test_util.h"

static const char *SYSTEM = "You are a helpful voice assistant.";

/* Tokens of the next turn's prompt for `user` up to (not including) the
 * <|im_end|> closing it: the prefix a partial `user` caches. */
static int settled_tokens(q35_chat *c, const char *user, int32_t **ids_out) {
    int32_t *ids;
    size_t n;
    assert_int_equal(q35_chat_prompt_ids(c, user, true, &ids, &n, NULL), Q35_OK);
    int32_t im_end = q35_token_id(g_tok, "<|im_end|>");
    int last = -1;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == im_end) last = (int)i;
    *ids_out = ids;
    return last;
}

/* Feeds the partials, then the final transcript; checks the reuse and the
 * reply. `settled` is the text whose prefix the final must reuse (the
 * longest cached text that the final extends). */
static void run_turn(q35_chat *c, const char *const *partials, const char *settled,
                     const char *final, bool thinking) {
    q35_sampling s = greedy(16, thinking);
    q35_reply want = from_scratch(c, SYSTEM, final, &s);
    q35_err e = {0};
    for (int i = 0; partials[i]; i++) {
        assert_int_equal(q35_chat_listen(c, partials[i], &e), Q35_OK);
        q35_chat_listen_wait(c);
    }
    /* the settled prefix must be a token prefix of the final prompt for the
     * reuse to be checkable (it is, on word boundaries, for this tokenizer) */
    int32_t *pre, *fin;
    int n_pre = settled_tokens(c, settled, &pre);
    size_t n_fin;
    assert_int_equal(q35_chat_prompt_ids(c, final, thinking, &fin, &n_fin, NULL), Q35_OK);
    assert_true(n_pre > 0 && (size_t)n_pre < n_fin);
    assert_memory_equal(pre, fin, (size_t)n_pre * sizeof *pre);
    q35_reply got;
    assert_int_equal(q35_chat_generate(c, final, &s, NULL, NULL, &got, &e), Q35_OK);
    assert_int_equal(got.prompt_tokens, (int)n_fin);
    assert_int_equal(got.reused_tokens, n_pre);
    assert_int_equal(got.prefilled_tokens, (int)n_fin - n_pre);
    assert_true(same_ids(&got, &want));
    free(pre);
    free(fin);
    q35_reply_free(&got);
    q35_reply_free(&want);
}

static void test_partials_then_final(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    assert_non_null(c);
    const char *const p1[] = {"What", "What is", "What is the capi", "What is the capital of",
                              NULL};
    run_turn(c, p1, "What is the capital of", "What is the capital of France, please?", true);
    /* a second turn: the listener starts from the re-rendered history */
    const char *const p2[] = {"And", "And how many people", "And how many people live there", NULL};
    run_turn(c, p2, "And how many people live there", "And how many people live there today?",
             false);
    q35_chat_free(c);
}

static void test_revised_partial(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    /* the recognizer changes its mind about earlier words, then about the
     * last one: the settled words are what is left to reuse */
    const char *const p[] = {"Tell me about cats and", "Tell me about dogs and their", NULL};
    run_turn(c, p, "Tell me about dogs and their", "Tell me about dogs and their owners.", true);
    const char *const q[] = {"And what do they", "And what do they eat", NULL};
    run_turn(c, q, "And what do they", "And what do they drink?", false);
    q35_chat_free(c);
}

/* The final equals the last partial: the speculation holds its whole
 * prompt, so the turn computes nothing before its first id (prefilled 0),
 * and gives the from-scratch reply. */
static q35_reply hit_turn(q35_chat *c, const char *const *partials, const q35_sampling *s) {
    const char *final = NULL;
    q35_err e = {0};
    for (int i = 0; partials[i]; i++) {
        assert_int_equal(q35_chat_listen(c, partials[i], &e), Q35_OK);
        q35_chat_listen_wait(c);
        final = partials[i];
    }
    q35_reply want = from_scratch(c, SYSTEM, final, s);
    q35_reply got;
    assert_int_equal(q35_chat_generate(c, final, s, NULL, NULL, &got, &e), Q35_OK);
    assert_int_equal(got.prompt_tokens, want.prompt_tokens);
    assert_int_equal(got.prefilled_tokens, 0);
    assert_int_equal(got.reused_tokens, got.prompt_tokens);
    assert_true(same_ids(&got, &want));
    q35_reply_free(&want);
    return got;
}

static void test_final_equals_partial(void **st) {
    (void)st;
    const char *const p1[] = {"What", "What is the", "What is the capital of France", NULL};
    const char *const p2[] = {"And its", "And its population", NULL};
    for (int mode = 0; mode < 4; mode++) {
        bool thinking = mode & 1;
        q35_sampling s = greedy(12, thinking);
        if (mode & 2) { /* sampled: the same seed draws the same ids from the same logits */
            s.temperature = 0.9f;
            s.top_p = 0.95f;
            s.seed = 7 + (uint64_t)mode;
        }
        q35_chat *c = new_chat(SYSTEM, 2048, 0), *twin = new_chat(SYSTEM, 2048, 0);
        q35_err e = {0};
        assert_int_equal(q35_chat_listen_expect(c, &s, &e), Q35_OK);
        q35_reply a = hit_turn(c, p1, &s);
        /* the turn after a hit reuses what an ordinary turn leaves (the
         * snapshot at the start of the reply): the same as a twin chat
         * that never listened */
        q35_reply b = turn(twin, p1[2], &s);
        assert_true(same_ids(&a, &b));
        q35_reply a2 = turn(c, "Thanks. Anything else?", &s);
        q35_reply b2 = turn(twin, "Thanks. Anything else?", &s);
        assert_int_equal(a2.reused_tokens, b2.reused_tokens);
        assert_true(a2.reused_tokens > 0);
        assert_true(same_ids(&a2, &b2));
        /* and a hit in a later turn, on the re-rendered history */
        q35_reply a3 = hit_turn(c, p2, &s);
        q35_reply_free(&a);
        q35_reply_free(&b);
        q35_reply_free(&a2);
        q35_reply_free(&b2);
        q35_reply_free(&a3);
        q35_chat_free(c);
        q35_chat_free(twin);
    }
}

/* Finals the speculation did not foresee take the exact path: other
 * settings than the expected ones, no speculation asked, a barge-in that
 * changed the history after the partial was speculated on. */
static void test_speculation_misses(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    q35_err e = {0};
    const char *final = "What is the weather like";
    q35_sampling think = greedy(10, true), plain = greedy(10, false);
    for (int k = 0; k < 2; k++) { /* expected thinking, then no speculation */
        assert_int_equal(q35_chat_listen_expect(c, k ? NULL : &think, &e), Q35_OK);
        assert_int_equal(q35_chat_listen(c, final, &e), Q35_OK);
        q35_chat_listen_wait(c);
        q35_reply want = from_scratch(c, SYSTEM, final, k ? &think : &plain);
        q35_reply got;
        assert_int_equal(q35_chat_generate(c, final, k ? &think : &plain, NULL, NULL, &got, &e),
                         Q35_OK);
        assert_true(got.prefilled_tokens > 0);
        assert_int_equal(got.reused_tokens + got.prefilled_tokens, got.prompt_tokens);
        assert_true(same_ids(&got, &want));
        q35_reply_free(&got);
        q35_reply_free(&want);
    }
    /* speculated on the whole answer; then the speaker turns out to have
     * said only part of it (a barge-in after the reply) */
    assert_int_equal(q35_chat_listen_expect(c, &plain, &e), Q35_OK);
    const char *next = "Tell me more";
    assert_int_equal(q35_chat_listen(c, next, &e), Q35_OK);
    q35_chat_listen_wait(c);
    assert_int_equal(q35_chat_barge_in(c, "Well", 4, &e), Q35_OK);
    q35_reply want = from_scratch(c, SYSTEM, next, &plain);
    q35_reply got;
    assert_int_equal(q35_chat_generate(c, next, &plain, NULL, NULL, &got, &e), Q35_OK);
    assert_true(got.prefilled_tokens > 0);
    assert_true(same_ids(&got, &want));
    q35_reply_free(&got);
    q35_reply_free(&want);
    q35_chat_free(c);
}

/* A barge-in during the reply, then the next turn spoken: its speculation
 * is on the cut history and hits. */
typedef struct cutter {
    q35_chat *c;
    int pieces;
} cutter;

static int cut_at_third(void *ud, q35_piece_kind kind, const char *text, size_t len) {
    (void)text;
    (void)len;
    cutter *k = ud;
    if (kind == Q35_PIECE_ANSWER && ++k->pieces == 3) {
        q35_err e = {0};
        assert_int_equal(q35_chat_barge_in(k->c, "Once", 4, &e), Q35_OK);
    }
    return 0;
}

static void test_hit_after_barge_in(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    q35_err e = {0};
    q35_sampling s = greedy(16, false);
    cutter k = {c, 0};
    q35_reply r;
    assert_int_equal(q35_chat_generate(c, "Tell me a story.", &s, cut_at_third, &k, &r, &e),
                     Q35_OK);
    assert_true(k.pieces >= 3);
    const char *a;
    assert_int_equal(q35_chat_turn(c, 0, NULL, &a), Q35_OK);
    assert_string_equal(a, "Once");
    q35_reply_free(&r);
    const char *const p[] = {"Wait", "Wait, stop", NULL};
    q35_reply got = hit_turn(c, p, &s);
    q35_reply_free(&got);
    q35_chat_free(c);
}

static void test_interrupted(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    q35_err e = {0};
    /* the final transcript comes while the listener is still at work:
     * generate stops it and computes the rest itself */
    char longer[2048] = "Please";
    for (int i = 0; i < 60; i++)
        strcat(longer, " tell me more about the weather");
    assert_int_equal(q35_chat_listen(c, longer, &e), Q35_OK);
    q35_sampling s = greedy(8, true);
    const char *final = "Please tell me the weather.";
    q35_reply want = from_scratch(c, SYSTEM, final, &s);
    q35_reply got;
    assert_int_equal(q35_chat_generate(c, final, &s, NULL, NULL, &got, &e), Q35_OK);
    assert_true(same_ids(&got, &want));
    q35_reply_free(&got);
    q35_reply_free(&want);
    /* a partial followed by reset, cancel and free while it runs */
    assert_int_equal(q35_chat_listen(c, longer, &e), Q35_OK);
    q35_chat_cancel(c);
    q35_chat_reset(c);
    assert_int_equal(q35_chat_n_turns(c), 0);
    assert_int_equal(q35_chat_listen(c, longer, &e), Q35_OK);
    q35_chat_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partials_then_final), cmocka_unit_test(test_revised_partial),
        cmocka_unit_test(test_interrupted),         cmocka_unit_test(test_final_equals_partial),
        cmocka_unit_test(test_speculation_misses),  cmocka_unit_test(test_hit_after_barge_in),
    };
    return cmocka_run_group_tests(tests, load_tiny_chat, free_tiny_chat);
}
