/* test_listen.c — prefill while the user speaks, on the tiny chat model:
 * partial transcripts fed with q35_chat_listen are prefilled in the
 * background; the final turn reuses the longest settled prefix (exactly
 * the tokens before the partial's last word), computes only the rest, and
 * gives the from-scratch reply token for token — also when the recognizer
 * revised its words, when a call interrupts the listener, and with
 * thinking on or off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "voice/voice_test_util.h"

static const char *SYSTEM = "You are a helpful voice assistant.";

/* Tokens of the next turn's prompt for `user` up to (not including) the
 * <|im_end|> closing it: what a partial settled on `user` prefills. */
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
 * reply. `settled` is the text the last useful partial settles on. */
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
    q35_chat *c = new_chat(SYSTEM, 0);
    assert_non_null(c);
    const char *const p1[] = {"What", "What is", "What is the capi", "What is the capital of",
                              NULL};
    run_turn(c, p1, "What is the capital", "What is the capital of France, please?", true);
    /* a second turn: the listener starts from the re-rendered history */
    const char *const p2[] = {"And", "And how many people", "And how many people live there", NULL};
    run_turn(c, p2, "And how many people live", "And how many people live there today?", false);
    q35_chat_free(c);
}

static void test_revised_partial(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 0);
    /* the recognizer changes its mind about earlier words */
    const char *const p[] = {"Tell me about cats and", "Tell me about dogs and their", NULL};
    run_turn(c, p, "Tell me about dogs and", "Tell me about dogs and their owners.", true);
    q35_chat_free(c);
}

static void test_interrupted(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 0);
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
        cmocka_unit_test(test_partials_then_final),
        cmocka_unit_test(test_revised_partial),
        cmocka_unit_test(test_interrupted),
    };
    return cmocka_run_group_tests(tests, load_tiny_chat, free_tiny_chat);
}
