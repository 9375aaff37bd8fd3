/* test_barge_in.c — barge-in on the tiny chat model: after a cut (during
 * the reply, from its callback or another thread, or after it, by text or
 * by bytes) the history holds exactly what was spoken, the next turn's
 * rendered prompt equals a from-scratch render of that history, its
 * prefill restores the snapshot at the start of the cut turn's reply, and
 * its reply equals the from-scratch one token for token. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#define CHAT_TEST_THREADS 2
#include "runtime/chat_test_util.h"

static const char *SYSTEM = "You are a brief voice assistant.";

/* Prompt ids for the next turn of c, compared with a from-scratch history. */
static void check_next_prompt(q35_chat *c, const char *user, const char *spoken) {
    int32_t *a, *b;
    size_t na, nb;
    q35_err e = {0};
    assert_int_equal(q35_chat_prompt_ids(c, user, false, &a, &na, &e), Q35_OK);
    q35_chat *f = new_chat(SYSTEM, 2048, -1);
    const char *u0;
    assert_int_equal(q35_chat_turn(c, 0, &u0, NULL), Q35_OK);
    assert_int_equal(q35_chat_add_turn(f, u0, spoken, &e), Q35_OK);
    assert_int_equal(q35_chat_prompt_ids(f, user, false, &b, &nb, &e), Q35_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    /* and the text holds the spoken answer as the assistant's turn */
    char *text;
    size_t tl;
    assert_int_equal(q35_detokenize(g_tok, a, na, false, &text, &tl, &e), Q35_OK);
    /* (the template strips an assistant turn's content) */
    size_t b0 = 0, b1 = strlen(spoken);
    while (b0 < b1 && strchr(" \t\n\r", spoken[b0]))
        b0++;
    while (b1 > b0 && strchr(" \t\n\r", spoken[b1 - 1]))
        b1--;
    char want[1024];
    snprintf(want, sizeof want, "<|im_start|>assistant\n%.*s<|im_end|>", (int)(b1 - b0),
             spoken + b0);
    if (!strstr(text, want)) fprintf(stderr, "prompt: %s\nwant: %s\n", text, want);
    assert_non_null(strstr(text, want));
    free(text);
    free(a);
    free(b);
    q35_chat_free(f);
}

/* The next turn after a cut: reuses exactly the snapshot at the start of
 * the cut turn's reply (its prompt minus the generation prompt) and gives
 * the from-scratch reply. */
static void check_next_turn(q35_chat *c, int cut_turn_prompt) {
    q35_sampling s = greedy(12, false);
    const char *user = "And then what happened?";
    q35_reply want = from_scratch(c, SYSTEM, user, &s);
    q35_reply got;
    q35_err e = {0};
    assert_int_equal(q35_chat_generate(c, user, &s, NULL, NULL, &got, &e), Q35_OK);
    assert_int_equal(got.reused_tokens, cut_turn_prompt - gen_prompt_len(false));
    assert_int_equal(got.prefilled_tokens, got.prompt_tokens - got.reused_tokens);
    assert_true(same_ids(&got, &want));
    q35_reply_free(&got);
    q35_reply_free(&want);
}

typedef struct speaker {
    q35_chat *c;
    char heard[1024]; /* answer pieces so far */
    size_t n_heard;
    int pieces;
    int cut_after;   /* barge in from the callback after this many pieces */
    size_t spoken;   /* bytes of `heard` that "reached the speaker" */
    atomic_int seen; /* pieces, for a barge-in from another thread */
} speaker;

static int on_piece(void *ud, q35_piece_kind kind, const char *text, size_t len) {
    speaker *sp = ud;
    if (kind != Q35_PIECE_ANSWER) return 0;
    if (sp->n_heard + len < sizeof sp->heard) {
        memcpy(sp->heard + sp->n_heard, text, len);
        sp->n_heard += len;
    }
    sp->pieces++;
    atomic_store(&sp->seen, sp->pieces);
    if (sp->pieces == sp->cut_after) {
        sp->spoken = sp->n_heard / 2; /* the speaker lags the text */
        q35_err e = {0};
        assert_int_equal(q35_chat_barge_in_bytes(sp->c, sp->spoken, &e), Q35_OK);
    }
    return 0;
}

static int first_prompt_len(q35_chat *c, const char *user) {
    int32_t *ids;
    size_t n;
    assert_int_equal(q35_chat_prompt_ids(c, user, false, &ids, &n, NULL), Q35_OK);
    free(ids);
    return (int)n;
}

static void test_cut_during_reply(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    assert_non_null(c);
    const char *user = "Tell me a long story about a cat.";
    int p1 = first_prompt_len(c, user);
    speaker sp = {.c = c, .cut_after = 8};
    q35_sampling s = greedy(40, false);
    q35_reply r;
    q35_err e = {0};
    assert_int_equal(q35_chat_generate(c, user, &s, on_piece, &sp, &r, &e), Q35_OK);
    assert_int_equal(r.stop, Q35_STOP_CANCELLED); /* stopped within a token of the cut */
    assert_true(r.n_sampled <= sp.cut_after + 1);
    assert_true(sp.spoken > 0 && sp.spoken < r.answer_len);
    /* the history holds the bytes that reached the speaker, not the reply */
    const char *a;
    assert_int_equal(q35_chat_turn(c, 0, NULL, &a), Q35_OK);
    size_t want = sp.spoken;
    while (want > 0 && ((unsigned char)sp.heard[want] & 0xC0) == 0x80)
        want--;
    assert_int_equal(strlen(a), want);
    assert_memory_equal(a, sp.heard, want);
    char spoken[1024];
    memcpy(spoken, a, want + 1);
    q35_reply_free(&r);
    check_next_prompt(c, "And then what happened?", spoken);
    check_next_turn(c, p1);
    q35_chat_free(c);
}

static void test_cut_after_reply(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    const char *user = "Name three colours.";
    int p1 = first_prompt_len(c, user);
    q35_sampling s = greedy(20, false);
    q35_reply r;
    q35_err e = {0};
    assert_int_equal(q35_chat_generate(c, user, &s, NULL, NULL, &r, &e), Q35_OK);
    q35_reply_free(&r);
    /* idle time while the answer is spoken: the full answer gets prepared */
    assert_int_equal(q35_chat_prepare(c, &e), Q35_OK);
    /* then the user interrupts: only these phrases were played */
    const char *spoken = "Red, green.";
    assert_int_equal(q35_chat_barge_in(c, spoken, strlen(spoken), &e), Q35_OK);
    const char *a;
    assert_int_equal(q35_chat_turn(c, 0, NULL, &a), Q35_OK);
    assert_string_equal(a, spoken);
    check_next_prompt(c, "And then what happened?", spoken);
    check_next_turn(c, p1);
    q35_chat_free(c);
}

static void *barge_thread(void *arg) {
    speaker *sp = arg;
    while (atomic_load(&sp->seen) < 3) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    q35_err e = {0};
    const char *spoken = "Once upon a time,";
    if (q35_chat_barge_in(sp->c, spoken, strlen(spoken), &e)) fprintf(stderr, "%s\n", e.msg);
    return NULL;
}

static void test_cut_from_another_thread(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    const char *user = "Tell me a story.";
    int p1 = first_prompt_len(c, user);
    speaker sp = {.c = c};
    atomic_init(&sp.seen, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, barge_thread, &sp), 0);
    q35_sampling s = greedy(200, false);
    q35_reply r;
    q35_err e = {0};
    assert_int_equal(q35_chat_generate(c, user, &s, on_piece, &sp, &r, &e), Q35_OK);
    pthread_join(t, NULL);
    assert_int_equal(r.stop, Q35_STOP_CANCELLED);
    const char *a;
    assert_int_equal(q35_chat_turn(c, 0, NULL, &a), Q35_OK);
    assert_string_equal(a, "Once upon a time,");
    q35_reply_free(&r);
    check_next_turn(c, p1);
    q35_chat_free(c);
}

static void test_no_turn(void **st) {
    (void)st;
    q35_chat *c = new_chat(SYSTEM, 2048, 0);
    q35_err e = {0};
    assert_int_equal(q35_chat_barge_in(c, "x", 1, &e), Q35_ESTATE);
    assert_int_equal(q35_chat_barge_in_bytes(c, 0, &e), Q35_ESTATE);
    q35_chat_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_during_reply),
        cmocka_unit_test(test_cut_after_reply),
        cmocka_unit_test(test_cut_from_another_thread),
        cmocka_unit_test(test_no_turn),
    };
    return cmocka_run_group_tests(tests, load_tiny_chat, free_tiny_chat);
}
