/* chat_test_util.h — what the chat and voice tests share: the tiny-chat
 * model and its tokenizer loaded once per test program, greedy settings,
 * and a chat replayed from scratch (no cache, history added as text) to
 * compare a cached turn with. Header-only: each test program is one file.
 * A program may define CHAT_TEST_THREADS (compute threads, 1 unless set:
 * the voice tests use 2, so that the listener and barge-in run on a chat
 * with more than one compute thread) before including it. The model
 * directory is $Q35_TINY_CHAT when set, else the build's Q35_TINY_CHAT. */
#ifndef Q35_TEST_CHAT_UTIL_H
#define Q35_TEST_CHAT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"

#define TINY_CHAT Q35_TINY_CHAT
#ifndef CHAT_TEST_THREADS
#define CHAT_TEST_THREADS 1
#endif

static q35_model *g_model;
static q35_tokenizer *g_tok;

static inline const char *tiny_chat_dir(void) {
    const char *env = getenv("Q35_TINY_CHAT");
    return env && *env ? env : TINY_CHAT;
}

static inline int load_tiny_chat(void **st) {
    (void)st;
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = CHAT_TEST_THREADS};
    g_model = q35_model_load(tiny_chat_dir(), &lo, &e);
    if (!g_model) fprintf(stderr, "load %s: %s\n", tiny_chat_dir(), e.msg);
    g_tok = g_model ? q35_tokenizer_load(tiny_chat_dir(), &e) : NULL;
    if (g_model && !g_tok) fprintf(stderr, "tokenizer: %s\n", e.msg);
    return g_model && g_tok ? 0 : -1;
}

static inline int free_tiny_chat(void **st) {
    (void)st;
    q35_tokenizer_free(g_tok);
    q35_model_free(g_model);
    return 0;
}

static inline q35_sampling greedy(int max_tokens, bool thinking) {
    q35_sampling s = q35_sampling_default();
    s.temperature = 0;
    s.max_tokens = max_tokens;
    s.thinking = thinking;
    s.thinking_budget = 5;
    return s;
}

static inline q35_chat *new_chat(const char *system, int n_ctx, int max_snapshots) {
    q35_chat_settings st = {.n_ctx = n_ctx, .max_snapshots = max_snapshots};
    q35_err e = {0};
    q35_chat *c = q35_chat_new(g_model, g_tok, system, &st, &e);
    if (!c) fprintf(stderr, "q35_chat_new: %s\n", e.msg);
    return c;
}

/* Generates and returns the reply; fails the test on an error. */
static inline q35_reply turn(q35_chat *c, const char *user, const q35_sampling *s) {
    q35_reply r;
    q35_err e = {0};
    int rc = q35_chat_generate(c, user, s, NULL, NULL, &r, &e);
    if (rc) fprintf(stderr, "generate '%s': %s\n", user, e.msg);
    if (rc) abort();
    return r;
}

/* The reply the same history gives from scratch: a chat without prompt
 * cache whose history is added as text, then `user`; nothing reused. */
static inline q35_reply from_scratch(const q35_chat *c, const char *system, const char *user,
                                     const q35_sampling *s) {
    q35_chat *f = new_chat(system, 0, -1);
    q35_err e = {0};
    for (int i = 0; i < q35_chat_n_turns(c); i++) {
        const char *u, *a;
        q35_chat_turn(c, i, &u, &a);
        if (q35_chat_add_turn(f, u, a, &e)) abort();
    }
    q35_reply r = turn(f, user, s);
    q35_chat_stats st;
    q35_chat_get_stats(f, &st);
    if (st.reused_tokens != 0 || r.prefilled_tokens != r.prompt_tokens) abort();
    q35_chat_free(f);
    return r;
}

static inline int same_ids(const q35_reply *a, const q35_reply *b) {
    return a->n_ids == b->n_ids && !memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof *a->ids);
}

/* Length of ids rendered for `user` as the next turn. */
static inline int prompt_len(const q35_chat *c, const char *user, bool thinking) {
    int32_t *ids;
    size_t n;
    q35_err e;
    if (q35_chat_prompt_ids(c, user, thinking, &ids, &n, &e)) abort();
    free(ids);
    return (int)n;
}

/* Ids of the generation prompt alone. */
static inline int gen_prompt_len(bool thinking) {
    const char *gp = thinking ? "<|im_start|>assistant\n<think>\n"
                              : "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    int32_t *ids;
    size_t n;
    if (q35_tokenize(g_tok, gp, strlen(gp), Q35_ADDED_MATCH, &ids, &n, NULL)) abort();
    free(ids);
    return (int)n;
}

#endif
