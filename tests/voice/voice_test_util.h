/* voice_test_util.h — what the voice tests on the tiny chat model share:
 * the model and tokenizer loaded once per program (Q35_TINY_CHAT), greedy
 * settings, and a reply computed from scratch (no cache, the history added
 * as text) to compare a cached turn with. Header-only: each test program
 * is one file. */
#ifndef Q35_TEST_VOICE_UTIL_H
#define Q35_TEST_VOICE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"

static q35_model *g_model;
static q35_tokenizer *g_tok;

static inline const char *tiny_chat_dir(void) {
    const char *env = getenv("Q35_TINY_CHAT");
    return env && *env ? env : Q35_TINY_CHAT;
}

static inline int load_tiny_chat(void **st) {
    (void)st;
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2};
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

static inline q35_chat *new_chat(const char *system, int max_snapshots) {
    q35_chat_settings st = {.n_ctx = 2048, .max_snapshots = max_snapshots};
    q35_err e = {0};
    q35_chat *c = q35_chat_new(g_model, g_tok, system, &st, &e);
    if (!c) fprintf(stderr, "q35_chat_new: %s\n", e.msg);
    return c;
}

/* The reply the same history gives from scratch. */
static inline q35_reply from_scratch(const q35_chat *c, const char *system, const char *user,
                                     const q35_sampling *s) {
    q35_chat *f = new_chat(system, -1);
    q35_err e = {0};
    if (!f) abort();
    for (int i = 0; i < q35_chat_n_turns(c); i++) {
        const char *u, *a;
        q35_chat_turn(c, i, &u, &a);
        if (q35_chat_add_turn(f, u, a, &e)) abort();
    }
    q35_reply r;
    if (q35_chat_generate(f, user, s, NULL, NULL, &r, &e)) {
        fprintf(stderr, "from scratch: %s\n", e.msg);
        abort();
    }
    if (r.reused_tokens != 0 || r.prefilled_tokens != r.prompt_tokens) abort();
    q35_chat_free(f);
    return r;
}

static inline int same_ids(const q35_reply *a, const q35_reply *b) {
    return a->n_ids == b->n_ids && !memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof *a->ids);
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
