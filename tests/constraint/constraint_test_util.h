/* constraint_test_util.h — what the constraint tests share: the tiny chat
 * model's tokenizer (a real 151k vocabulary), a seeded generator, a
 * random walk that samples one document under a constraint from noise
 * logits (checking at every step that the mask leaves something to pick
 * while the document is incomplete, and that every admitted token is
 * accepted), and the JSON-lines file that check_docs.py validates with
 * Python's json and jsonschema. */
#ifndef Q35_TEST_CONSTRAINT_UTIL_H
#define Q35_TEST_CONSTRAINT_UTIL_H

#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "q35.h"

typedef struct ct_env {
    q35_tokenizer *tok;
    q35_constraint_vocab *vocab;
    int n_vocab;
    float *logits;
    int32_t eos;
} ct_env;

static inline ct_env *ct_env_open(void) {
    ct_env *env = calloc(1, sizeof *env);
    assert_non_null(env);
    q35_err e = {0};
    env->tok = q35_tokenizer_load(Q35_TINY_CHAT, &e);
    if (!env->tok) fail_msg("tokenizer: %s", e.msg);
    env->vocab = q35_constraint_vocab_new(env->tok, &e);
    if (!env->vocab) fail_msg("vocab: %s", e.msg);
    env->n_vocab = (int)q35_tokenizer_n_vocab(env->tok);
    env->logits = malloc((size_t)env->n_vocab * sizeof *env->logits);
    assert_non_null(env->logits);
    env->eos = q35_token_id(env->tok, "<|im_end|>");
    assert_true(env->eos >= 0);
    return env;
}

static inline void ct_env_close(ct_env *env) {
    q35_constraint_vocab_free(env->vocab);
    q35_tokenizer_free(env->tok);
    free(env->logits);
    free(env);
}

static inline uint64_t ct_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Samples one document from noise: each step draws uniformly among the
 * admitted ids below 512 (short tokens, so walks finish) with probability
 * 6/7, else among all admitted ids (so the whole vocabulary is exercised);
 * where the document is complete, eos a quarter of the time.
 * Returns 1 when the document ended (eos drawn, or complete with nothing
 * that may follow), 0 when max_steps ran out. *doc holds its bytes
 * (caller frees). */
static inline int ct_sample(ct_env *env, q35_matcher *m, uint64_t *rng, int max_steps, char **doc,
                            size_t *len) {
    size_t cap = 256, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    int ended = 0;
    q35_err e = {0};
    for (int step = 0; step < max_steps; step++) {
        if (q35_matcher_is_complete(m) && !q35_matcher_can_continue(m)) {
            ended = 1;
            break;
        }
        float *l = env->logits;
        memset(l, 0, (size_t)env->n_vocab * sizeof *l);
        if (q35_matcher_mask(m, l, env->n_vocab, &e)) fail_msg("mask: %s", e.msg);
        int allowed = 0, low = 0;
        for (int i = 0; i < env->n_vocab; i++)
            if (l[i] == 0) {
                allowed++;
                low += i < 512;
            }
        if (!allowed) fail_msg("the mask excludes every token while the document is incomplete");
        assert_int_equal(q35_matcher_is_complete(m), l[env->eos] == 0);
        if (l[env->eos] == 0 && ct_next(rng) % 4 == 0) { /* complete: end a quarter of the time */
            ended = 1;
            break;
        }
        bool from_low = low > 0 && ct_next(rng) % 7 != 0;
        int pick = (int)(ct_next(rng) % (uint64_t)(from_low ? low : allowed));
        int32_t id = -1;
        for (int i = 0; i < (from_low ? 512 : env->n_vocab) && id < 0; i++)
            if (l[i] == 0 && pick-- == 0) id = i;
        assert_true(id >= 0);
        if (id == env->eos) {
            assert_true(q35_matcher_is_complete(m));
            ended = 1;
            break;
        }
        size_t bl;
        const char *b = q35_token_bytes(env->tok, id, &bl);
        assert_non_null(b);
        if (n + bl + 1 > cap) {
            while (n + bl + 1 > cap)
                cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        memcpy(out + n, b, bl);
        n += bl;
        if (q35_matcher_accept(m, id, &e)) fail_msg("admitted token %d refused: %s", id, e.msg);
    }
    out[n] = 0;
    *doc = out;
    *len = n;
    return ended;
}

/* Appends {"kind":..., "schema"/"regex": ..., "doc": ...} to f. */
static inline void ct_write(FILE *f, const char *kind, const char *schema, const char *regex,
                            const char *doc, size_t len) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    if (schema) {
        cJSON *s = cJSON_Parse(schema);
        assert_non_null(s);
        cJSON_AddItemToObject(o, "schema", s);
    }
    if (regex) cJSON_AddStringToObject(o, "regex", regex);
    if (!strcmp(kind, "tools")) { /* schema holds the tools array, regex the function name */
        cJSON_AddItemToObject(o, "tools", cJSON_DetachItemFromObject(o, "schema"));
        if (regex) cJSON_AddItemToObject(o, "name", cJSON_DetachItemFromObject(o, "regex"));
    }
    assert_int_equal(strlen(doc), len); /* no NUL inside */
    cJSON_AddStringToObject(o, "doc", doc);
    char *txt = cJSON_PrintUnformatted(o);
    assert_non_null(txt);
    fprintf(f, "%s\n", txt);
    cJSON_free(txt);
    cJSON_Delete(o);
}

/* Runs check_docs.py on the file; asserts every document is valid. */
static inline void ct_check(const char *path) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s/../constraint/check_docs.py %s", Q35_PYTHON, Q35_TEST_DATA,
             path);
    int rc = system(cmd);
    assert_int_equal(rc, 0);
}

#endif
