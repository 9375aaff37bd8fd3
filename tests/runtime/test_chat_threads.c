/* test_chat_threads.c — one loaded model serving several conversations at
 * once: four chats (different system prompts, messages, thinking, greedy
 * and seeded sampling, three turns each) run first one after the other,
 * then all at once on four threads sharing the model and the tokenizer;
 * every reply of the concurrent run must equal its sequential twin, id for
 * id. Run under ASan in CI (shared read-only data, per-chat state). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "chat_test_util.h"

#define N_CHATS 4
#define N_TURNS 3

typedef struct convo {
    const char *system;
    const char *users[N_TURNS];
    q35_sampling s;
    q35_reply out[N_TURNS];
    int rc;
} convo;

static void *run_convo(void *arg) {
    convo *v = arg;
    q35_chat *c = new_chat(v->system, 0, 0);
    v->rc = c ? Q35_OK : -1;
    for (int t = 0; c && t < N_TURNS && !v->rc; t++)
        v->rc = q35_chat_generate(c, v->users[t], &v->s, NULL, NULL, &v->out[t], NULL);
    q35_chat_free(c);
    return NULL;
}

static void make_convos(convo *v) {
    memset(v, 0, N_CHATS * sizeof *v);
    const char *sys[N_CHATS] = {"You are terse.", NULL, "Speak like a pirate.", "Count things."};
    for (int i = 0; i < N_CHATS; i++) {
        v[i].system = sys[i];
        v[i].users[0] = i % 2 ? "Hello there" : "What is the capital of France?";
        v[i].users[1] = "Why is that?";
        v[i].users[2] = i == 3 ? "One, two, three" : "Thanks, bye";
        v[i].s = q35_sampling_default();
        v[i].s.max_tokens = 12;
        v[i].s.thinking = i != 1;
        v[i].s.thinking_budget = 6;
        v[i].s.seed = 1000 + (uint64_t)i;
        if (i == 0) v[i].s.temperature = 0;
    }
}

static void free_convos(convo *v) {
    for (int i = 0; i < N_CHATS; i++)
        for (int t = 0; t < N_TURNS; t++)
            q35_reply_free(&v[i].out[t]);
}

static void test_concurrent_chats(void **st) {
    (void)st;
    convo seq[N_CHATS], par[N_CHATS];
    make_convos(seq);
    make_convos(par);
    for (int i = 0; i < N_CHATS; i++) {
        run_convo(&seq[i]);
        assert_int_equal(seq[i].rc, Q35_OK);
    }
    pthread_t th[N_CHATS];
    for (int i = 0; i < N_CHATS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, run_convo, &par[i]), 0);
    for (int i = 0; i < N_CHATS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N_CHATS; i++) {
        assert_int_equal(par[i].rc, Q35_OK);
        for (int t = 0; t < N_TURNS; t++) {
            assert_true(par[i].out[t].n_ids > 0);
            assert_true(same_ids(&seq[i].out[t], &par[i].out[t]));
            assert_int_equal(seq[i].out[t].answer_len, par[i].out[t].answer_len);
            assert_int_equal(seq[i].out[t].reused_tokens, par[i].out[t].reused_tokens);
        }
    }
    /* the conversations really differ from one another */
    assert_false(same_ids(&seq[0].out[0], &seq[2].out[0]));
    free_convos(seq);
    free_convos(par);
}

static int load_two_threads(void **st) {
    (void)st;
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2}; /* each chat's state computes on 2 threads too */
    g_model = q35_model_load(TINY_CHAT, &lo, &e);
    g_tok = g_model ? q35_tokenizer_load(TINY_CHAT, &e) : NULL;
    if (!g_tok) fprintf(stderr, "load: %s\n", e.msg);
    return g_model && g_tok ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_chats),
    };
    return cmocka_run_group_tests(tests, load_two_threads, free_tiny_chat);
}
