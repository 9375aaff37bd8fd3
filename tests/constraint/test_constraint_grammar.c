/* test_constraint_grammar.c — compile errors and the mask against the
 * recognizer:
 *  - unsupported schema keywords fail with the keyword and its JSON
 *    pointer; malformed schemas and GBNF name what and where;
 *  - the mask (one walk of the vocabulary trie) equals, token by token,
 *    asking the recognizer about each of the 151k tokens alone, at every
 *    step of random walks through several grammars (brute force);
 *  - added tokens enter only through token terminals; eos only where
 *    complete; a finished document ends the walk;
 *  - one compiled constraint serves several threads at once. */
#include <pthread.h>

#include "constraint/constraint_test_util.h"
#include "constraint/reply_guard.h"

typedef struct err_case {
    q35_constraint_kind kind;
    const char *text;
    q35_status code;
    const char *want[3]; /* substrings of the message */
} err_case;

static const err_case ERRS[] = {
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"patternProperties\":{}}",
     Q35_EINVAL,
     {"unsupported keyword 'patternProperties'", "at /patternProperties"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"properties\":{\"a~b/c\":{\"not\":{}}}}",
     Q35_EINVAL,
     {"unsupported keyword 'not'", "at /properties/a~0b~1c/not"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"items\":{\"type\":\"integer\",\"multipleOf\":2}}",
     Q35_EINVAL,
     {"'multipleOf'", "at /items/multipleOf"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"properties\":{\"e\":{\"type\":\"string\",\"format\":\"email\"}}}",
     Q35_EINVAL,
     {"unsupported format 'email'", "at /properties/e/format"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"number\",\"minimum\":0.5}",
     Q35_EINVAL,
     {"'minimum' on a number must be an integer", "at /minimum"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"number\",\"minimum\":2,\"exclusiveMaximum\":2}",
     Q35_EINVAL,
     {"no number satisfies the bounds"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"array\",\"uniqueItems\":true}",
     Q35_EINVAL,
     {"uniqueItems", "at /uniqueItems"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"$ref\":\"https://example.com/s.json\"}",
     Q35_EINVAL,
     {"only local references", "at /$ref"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"$ref\":\"#/$defs/missing\"}",
     Q35_EINVAL,
     {"names nothing", "at /$ref"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"allOf\":[{},{}]}",
     Q35_EINVAL,
     {"'allOf' with more than one schema", "at /allOf"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"oneOf\":[{\"type\":\"string\",\"maxLength\":2},{\"type\":\"string\"}]}",
     Q35_EINVAL,
     {"'oneOf' branches 0 and 1 may both match", "at /oneOf"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"anyOf\":[{}]}",
     Q35_EINVAL,
     {"keyword 'type' beside 'anyOf'", "at /type"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"properties\":{\"p\":{\"type\":\"string\",\"pattern\":"
     "\"a(?=b)\"}}}",
     Q35_EINVAL,
     {"pattern: lookaround", "at /properties/p/pattern"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}",
     Q35_EINVAL,
     {"back-references", "at /pattern"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"string\",\"pattern\":\"a^b\"}",
     Q35_EINVAL,
     {"anchors", "at /pattern"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"string\",\"minLength\":-1}",
     Q35_EINVAL,
     {"'minLength' must be a non-negative integer", "at /minLength"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}",
     Q35_EINVAL,
     {"no integer satisfies the bounds", "at / (the root)"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"strin\"}",
     Q35_EINVAL,
     {"unknown type 'strin'", "at /type"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"prefixItems\":[true,false]}",
     Q35_EINVAL,
     {"the schema false matches nothing", "at /prefixItems/1"}},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"required\":[\"x\"],\"additionalProperties\":false}",
     Q35_EINVAL,
     {"required property 'x'", "at /required/0"}},
    {Q35_CONSTRAINT_JSON_SCHEMA, "{\"type\":", Q35_EFORMAT, {"not valid JSON"}},
    {Q35_CONSTRAINT_GRAMMAR,
     "root ::= foo",
     Q35_EINVAL,
     {"rule 'foo' is used at 1:10 but not defined"}},
    {Q35_CONSTRAINT_GRAMMAR,
     "root ::= \"a\"\nexpr ::= expr \"+\" \"1\" | \"1\"",
     Q35_EINVAL,
     {"rule 'expr' is left-recursive"}},
    {Q35_CONSTRAINT_GRAMMAR, "start ::= \"a\"", Q35_EINVAL, {"no rule 'root'"}},
    {Q35_CONSTRAINT_GRAMMAR,
     "root ::= \"a\"\n  \"b",
     Q35_EINVAL,
     {"grammar 2:3", "unterminated string literal"}},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= \"\\q\"", Q35_EINVAL, {"grammar 1:11", "unknown escape"}},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= [z-a]", Q35_EINVAL, {"end before its start"}},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= \"a\"{3,2}", Q35_EINVAL, {"n < m"}},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= (\"a\"", Q35_EINVAL, {"unclosed '('"}},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= \"a\"\nroot ::= \"b\"", Q35_EINVAL, {"rule defined twice"}},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= <nosuchtoken>", Q35_EINVAL, {"no added token"}},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= (\"\" | \"a\")* \"b\"", Q35_EINVAL, {"left-recursive"}},
};

static ct_env *ENV;

static int setup(void **state) {
    (void)state;
    ENV = ct_env_open();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ct_env_close(ENV);
    return 0;
}

static void test_errors(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof ERRS / sizeof *ERRS; k++) {
        const err_case *c = &ERRS[k];
        q35_err e = {0};
        q35_constraint *con =
            q35_constraint_compile(ENV->vocab, c->kind, c->text, strlen(c->text), &e);
        if (con) fail_msg("case %zu (%s) compiled", k, c->text);
        if (e.code != c->code) fail_msg("case %zu: status %d, message %s", k, e.code, e.msg);
        for (int i = 0; i < 3 && c->want[i]; i++)
            if (!strstr(e.msg, c->want[i]))
                fail_msg("case %zu: message '%s' lacks '%s'", k, e.msg, c->want[i]);
    }
}

static const char *const BRUTE[] = {
    "root ::= \"{\" ws (\"\\\"k\\\"\" ws \":\" ws [0-9]{1,3} ws)? \"}\"\nws ::= \" \"?",
    "root ::= [^\\x00-\\x1f\"]{0,4} \"\\\"\" | \"\\u00e9t\\u00e9\" [a-z]*",
    "root ::= <tool_call> \"\\n\" [a-z]+ \"\\n\" <[151658]>",
    "root ::= (\"ab\" | \"a\" \"b\"? \"c\")+ (\" \" | \"\\n\")",
    /* bounded repetitions longer than the counters' saturation (mask keys
     * shared) with the vocabulary's long tokens (checked alone) */
    "root ::= \"\\\"\" [^\"\\\\\\x00-\\x1f]{0,90} \"\\\"\" [0-9]{0,3}",
    "root ::= ([a-z ] | \"\\n\" | \"--\"){2,70} \".\"",
    "root ::= (\" \"{0,40} \"x\"){1,40} \"!\"",
};

static void brute_walk(q35_constraint *con, uint64_t seed, int steps, bool any_token) {
    q35_err e = {0};
    q35_matcher *m = q35_matcher_new(con, false, &ENV->eos, 1, &e);
    if (!m) fail_msg("%s", e.msg);
    float *l = ENV->logits;
    uint64_t rng = seed;
    for (int s = 0; s < steps; s++) {
        memset(l, 0, (size_t)ENV->n_vocab * sizeof *l);
        if (q35_matcher_mask(m, l, ENV->n_vocab, &e)) fail_msg("%s", e.msg);
        int n_allowed = 0;
        for (int32_t id = 0; id < ENV->n_vocab; id++) {
            bool in_mask = isfinite(l[id]);
            bool alone = q35_matcher_allows(m, id);
            if (in_mask != alone)
                fail_msg("step %d: token %d is %s by the mask but %s alone", s, id,
                         in_mask ? "admitted" : "refused", alone ? "admitted" : "refused");
            if (in_mask && q35_token_is_added(ENV->tok, id) && id != ENV->eos) {
                /* only through a token terminal: the grammar names it */
                size_t bl;
                const char *b = q35_token_bytes(ENV->tok, id, &bl);
                assert_true(strstr(BRUTE[2], "tool_call") && (strstr(b, "tool_call") != NULL));
            }
            n_allowed += in_mask;
        }
        bool done = q35_matcher_is_complete(m) && !q35_matcher_can_continue(m);
        if (done) break;
        assert_true(n_allowed > 0);
        /* next: an admitted non-eos token, preferring short ones */
        int32_t pick = -1;
        for (int tries = 0; tries < 1000 && pick < 0; tries++) {
            int32_t id = (int32_t)(ct_next(&rng) %
                                   (uint64_t)(tries < 500 && !any_token ? 600 : ENV->n_vocab));
            if (id != ENV->eos && isfinite(l[id])) pick = id;
        }
        if (pick < 0)
            for (int32_t id = 0; id < ENV->n_vocab && pick < 0; id++)
                if (id != ENV->eos && isfinite(l[id])) pick = id;
        if (pick < 0) break; /* only eos left */
        if (q35_matcher_accept(m, pick, &e)) fail_msg("%s", e.msg);
    }
    q35_matcher_free(m);
}

static void test_mask_equals_brute_force(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof BRUTE / sizeof *BRUTE; k++) {
        q35_err e = {0};
        q35_constraint *con = q35_constraint_compile(ENV->vocab, Q35_CONSTRAINT_GRAMMAR, BRUTE[k],
                                                     strlen(BRUTE[k]), &e);
        if (!con) fail_msg("grammar %zu: %s", k, e.msg);
        brute_walk(con, 77 + k, k < 4 ? 6 : 30, k >= 4);
        q35_constraint_free(con);
    }
    q35_err e = {0};
    q35_constraint *con = q35_constraint_compile(ENV->vocab, Q35_CONSTRAINT_JSON, NULL, 0, &e);
    assert_non_null(con);
    brute_walk(con, 5, 6, false);
    q35_constraint_free(con);
}

static void test_tokens_and_bytes(void **state) {
    (void)state;
    q35_err e = {0};
    const char *g = "root ::= <tool_call> \"x\" </tool_call>";
    q35_constraint *con =
        q35_constraint_compile(ENV->vocab, Q35_CONSTRAINT_GRAMMAR, g, strlen(g), &e);
    if (!con) fail_msg("%s", e.msg);
    q35_matcher *m = q35_matcher_new(con, false, NULL, 0, &e);
    assert_non_null(m);
    int32_t open = q35_token_id(ENV->tok, "<tool_call>"),
            close = q35_token_id(ENV->tok, "</tool_call>");
    assert_true(q35_matcher_allows(m, open));
    /* the text "<tool_call>" spelled by other tokens is not the token */
    assert_int_not_equal(q35_matcher_accept_bytes(m, "<tool_call>", 11, &e), Q35_OK);
    assert_int_equal(q35_matcher_accept(m, open, &e), Q35_OK);
    assert_false(q35_matcher_allows(m, open));
    assert_false(q35_matcher_is_complete(m));
    assert_false(q35_matcher_allows(m, ENV->eos));
    assert_int_equal(q35_matcher_accept_bytes(m, "x", 1, &e), Q35_OK);
    assert_int_equal(q35_matcher_accept(m, close, &e), Q35_OK);
    assert_true(q35_matcher_is_complete(m));
    assert_false(q35_matcher_can_continue(m));
    assert_true(q35_matcher_allows(m, ENV->eos));
    /* after_think: up to two newlines may come first */
    assert_int_equal(q35_matcher_reset(m, true, &e), Q35_OK);
    assert_int_equal(q35_matcher_accept_bytes(m, "\n\n", 2, &e), Q35_OK);
    assert_int_not_equal(q35_matcher_accept_bytes(m, "\n", 1, &e), Q35_OK);
    assert_true(q35_matcher_allows(m, open));
    q35_matcher_free(m);
    q35_constraint_free(con);
}

/* One compiled constraint used by four threads at once, each with its own
 * matcher: the same walk gives the same document as on one thread. */
typedef struct thread_job {
    const q35_constraint *con;
    uint64_t seed;
    char doc[4096];
    int rc;
} thread_job;

static void *thread_walk(void *p) {
    thread_job *j = p;
    q35_err e = {0};
    q35_matcher *m = q35_matcher_new(j->con, false, &ENV->eos, 1, &e);
    float *l = malloc((size_t)ENV->n_vocab * sizeof *l);
    if (!m || !l) {
        j->rc = -1;
        return NULL;
    }
    uint64_t rng = j->seed;
    size_t n = 0;
    for (int s = 0; s < 60 && !(q35_matcher_is_complete(m) && !q35_matcher_can_continue(m)); s++) {
        memset(l, 0, (size_t)ENV->n_vocab * sizeof *l);
        if (q35_matcher_mask(m, l, ENV->n_vocab, &e)) {
            j->rc = -2;
            break;
        }
        int32_t pick = -1;
        for (int tries = 0; tries < 2000 && pick < 0; tries++) {
            int32_t id = (int32_t)(ct_next(&rng) % 600);
            if (id != ENV->eos && isfinite(l[id])) pick = id;
        }
        if (pick < 0) break;
        size_t bl;
        const char *b = q35_token_bytes(ENV->tok, pick, &bl);
        if (n + bl >= sizeof j->doc) break;
        memcpy(j->doc + n, b, bl);
        n += bl;
        if (q35_matcher_accept(m, pick, &e)) {
            j->rc = -3;
            break;
        }
    }
    j->doc[n] = 0;
    q35_matcher_free(m);
    free(l);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    q35_err e = {0};
    q35_constraint *con = q35_constraint_compile(ENV->vocab, Q35_CONSTRAINT_JSON, NULL, 0, &e);
    assert_non_null(con);
    thread_job jobs[4], alone[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){.con = con, .seed = 500 + (uint64_t)i};
        alone[i] = jobs[i];
        thread_walk(&alone[i]);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_walk, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_string_equal(jobs[i].doc, alone[i].doc);
    }
    q35_constraint_free(con);
}

/* The reply loop's side (reply_guard): free text while thinking, the
 * document from the end of </think>, done when it cannot go on, and a
 * token that ends the think block with text breaking the document is an
 * error, never an accepted reply. */
static void test_reply_guard(void **state) {
    (void)state;
    q35_err e = {0};
    const char *g = "root ::= \"ok\"";
    q35_constraint *con =
        q35_constraint_compile(ENV->vocab, Q35_CONSTRAINT_GRAMMAR, g, strlen(g), &e);
    assert_non_null(con);
    int32_t think_end = q35_token_id(ENV->tok, "</think>");
    q35_reply_guard rg;
    /* thinking off: masked from the first token */
    assert_int_equal(q35_reply_guard_init(&rg, con, false, &ENV->eos, 1, &e), Q35_OK);
    assert_non_null(q35_reply_guard_mask(&rg));
    int32_t ok = q35_token_id(ENV->tok, "ok");
    assert_true(ok >= 0);
    assert_int_equal(q35_reply_guard_after(&rg, ok, false, false, "ok", 2, &e), Q35_OK);
    assert_true(rg.done);
    q35_reply_guard_free(&rg);
    /* thinking on: free until </think>, then the answer text of that step */
    assert_int_equal(q35_reply_guard_init(&rg, con, true, &ENV->eos, 1, &e), Q35_OK);
    assert_null(q35_reply_guard_mask(&rg));
    assert_int_equal(q35_reply_guard_after(&rg, 42, true, true, "", 0, &e), Q35_OK);
    assert_null(q35_reply_guard_mask(&rg));
    assert_int_equal(q35_reply_guard_after(&rg, think_end, true, false, "", 0, &e), Q35_OK);
    assert_non_null(q35_reply_guard_mask(&rg));
    assert_false(rg.done);
    q35_reply_guard_free(&rg);
    assert_int_equal(q35_reply_guard_init(&rg, con, true, &ENV->eos, 1, &e), Q35_OK);
    assert_int_equal(q35_reply_guard_after(&rg, 7, true, false, "ok", 2, &e), Q35_OK);
    assert_true(rg.done);
    q35_reply_guard_free(&rg);
    assert_int_equal(q35_reply_guard_init(&rg, con, true, &ENV->eos, 1, &e), Q35_OK);
    assert_int_not_equal(q35_reply_guard_after(&rg, 7, true, false, "no", 2, &e), Q35_OK);
    assert_non_null(strstr(e.msg, "after </think>"));
    q35_reply_guard_free(&rg);
    /* no constraint: every call a no-op */
    assert_int_equal(q35_reply_guard_init(&rg, NULL, true, NULL, 0, &e), Q35_OK);
    assert_null(q35_reply_guard_mask(&rg));
    assert_int_equal(q35_reply_guard_after(&rg, 7, true, false, "zz", 2, &e), Q35_OK);
    assert_false(rg.done);
    q35_reply_guard_free(&rg);
    q35_constraint_free(con);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_guard),      cmocka_unit_test(test_threads),
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_mask_equals_brute_force),
        cmocka_unit_test(test_tokens_and_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
