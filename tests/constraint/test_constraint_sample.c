/* test_constraint_sample.c — documents sampled under JSON mode, a set of
 * JSON Schemas and GBNF grammars, from noise (the hardest case for
 * a constraint: the "model" wants any token at all), 24 documents each;
 * every one must end within the step budget for the bounded languages and
 * every ended one must be valid to Python's json + jsonschema or match the
 * grammar's equivalent regex (check_docs.py). */
#include "constraint/constraint_test_util.h"

typedef struct sample_case {
    q35_constraint_kind kind;
    const char *text;  /* schema or grammar */
    const char *regex; /* grammars: an equivalent Python regex */
    bool bounded;      /* every walk must end within the budget */
} sample_case;

static const sample_case CASES[] = {
    {Q35_CONSTRAINT_JSON, NULL, NULL, false},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":10},"
     "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120},\"tags\":{\"type\":\"array\","
     "\"items\":{\"enum\":[\"red\",\"green\"]},\"maxItems\":3}},\"required\":[\"name\",\"age\"],"
     "\"additionalProperties\":false}",
     NULL, true},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\","
     "\"minimum\":-5,\"maximum\":5},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/"
     "node\"},\"maxItems\":2}},\"required\":[\"v\"],\"additionalProperties\":false}},\"$ref\":"
     "\"#/$defs/node\"}",
     NULL, false},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"],\"maxLength\":3},"
     "\"b\":{\"anyOf\":[{\"type\":\"integer\",\"exclusiveMinimum\":10,\"exclusiveMaximum\":20},"
     "{\"type\":\"boolean\"}]},\"c\":{\"const\":\"fixed\"},\"d\":{\"enum\":[1,\"two\",null,[3],"
     "{\"x\":4}]}},\"required\":[\"a\",\"b\",\"c\",\"d\"]}",
     NULL, false},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"d\":{\"type\":\"string\",\"format\":\"date\"},"
     "\"t\":{\"type\":\"string\",\"format\":\"time\"},\"dt\":{\"type\":\"string\",\"format\":"
     "\"date-time\"},\"u\":{\"type\":\"string\",\"format\":\"uuid\"}},\"required\":[\"d\",\"t\","
     "\"dt\",\"u\"],\"additionalProperties\":false}",
     NULL, true},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"zip\":{\"type\":\"string\",\"pattern\":"
     "\"^[0-9]{5}(-[0-9]{4})?$\"},\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}\\\\d{2}$\"}"
     ","
     "\"q\":{\"type\":\"string\",\"pattern\":\"^\\\"[^\\\"\\\\\\\\]{0,3}\\\"$\"},\"w\":{\"type\":"
     "\"string\",\"pattern\":\"^(cat|dog)s?\\\\.$\"},\"x\":{\"type\":\"string\",\"pattern\":"
     "\"^[\\\\w.-]{1,4}@[^ @]{1,3}$\"}},\"required\":[\"zip\",\"code\",\"q\",\"w\",\"x\"],"
     "\"additionalProperties\":false}",
     NULL, true},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"boolean\"},{\"type\":\"string\","
     "\"minLength\":2,\"maxLength\":4}],\"items\":{\"type\":\"integer\",\"minimum\":-1000,"
     "\"maximum\":1000},\"minItems\":3,\"maxItems\":6}",
     NULL, true},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"null\"},{\"type\":\"number\"}],"
     "\"items\":false}",
     NULL, true},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"ok\":{\"type\":"
     "\"boolean\"}},\"required\":[\"id\"],\"additionalProperties\":{\"type\":\"integer\","
     "\"minimum\":0,\"maximum\":9}}",
     NULL, false},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"array\",\"maxItems\":3,\"items\":{\"oneOf\":[{\"type\":\"object\","
     "\"properties\":{\"kind\":{\"const\":\"a\"},\"n\":{\"type\":\"integer\",\"maximum\":"
     "3}},\"required\":[\"kind\"],\"additionalProperties\":false},{\"type\":\"object\","
     "\"properties\":{\"kind\":{\"enum\":[\"b\",\"c\"]},\"s\":{\"type\":\"string\","
     "\"maxLength\":2}},\"required\":[\"kind\",\"s\"],\"additionalProperties\":false},"
     "{\"type\":[\"null\",\"boolean\"]}]}}",
     NULL, true},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"enum\":[\"\\u00e9\\\"q\\\\\",\"line\\nbreak\",\"\\u65e5\\u672c\","
     "-0.5,1e3,true]}",
     NULL, true},
    {Q35_CONSTRAINT_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"minLength\":3,"
     "\"maxLength\":5},\"n\":{\"type\":\"integer\",\"exclusiveMaximum\":-7},\"p\":{\"type\":"
     "\"number\",\"minimum\":0,\"maximum\":1},\"q\":{\"type\":\"number\",\"exclusiveMinimum\":"
     "-2,\"exclusiveMaximum\":0}},\"required\":[\"s\",\"n\",\"p\",\"q\"],"
     "\"additionalProperties\":false}",
     NULL, true},
    /* llama.cpp's grammars/json.gbnf layout (continuation lines, an empty
     * first alternative, comments after alternatives): documents are JSON
     * objects, checked as JSON mode's are */
    {Q35_CONSTRAINT_GRAMMAR,
     "root   ::= object\n"
     "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n\n"
     "object ::=\n  \"{\" ws (\n            string \":\" ws value\n"
     "    (\",\" ws string \":\" ws value)*\n  )? \"}\" ws\n\n"
     "array  ::=\n  \"[\" ws (\n            value\n    (\",\" ws value)*\n  )? \"]\" ws\n\n"
     "string ::=\n  \"\\\"\" (\n    [^\"\\\\\\x7F\\x00-\\x1F] |\n"
     "    \"\\\\\" ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4}) # escapes\n  )* \"\\\"\" ws\n\n"
     "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9] "
     "[1-9]{0,15})? ws\n\n"
     "# Optional space: by convention, applied in this grammar after literal chars when allowed\n"
     "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n",
     "JSON", false},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= \"yes\" | \"no\" | \"maybe\"", "yes|no|maybe", true},
    {Q35_CONSTRAINT_GRAMMAR,
     "# a list of words or numbers\nroot ::= item (\",\" \" \"? item){0,4}\n"
     "item ::= [a-z]{1,5} | [0-9]{1,3}\n",
     "([a-z]{1,5}|[0-9]{1,3})(, ?([a-z]{1,5}|[0-9]{1,3})){0,4}", true},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= [\\u03b1-\\u03c9]{2,4} \"-\" [^a-z\\x00-\\x1f]{1,3} \".\"",
     "[\\u03b1-\\u03c9]{2,4}-[^a-z\\x00-\\x1f]{1,3}\\.", true},
    {Q35_CONSTRAINT_GRAMMAR,
     "root ::= greeting \" \" name \"!\"   # a comment\n"
     "greeting ::=\n  \"hi\"\n  | \"hello\"\nname ::= [A-Z] [a-z]{0,6}\n",
     "(hi|hello) [A-Z][a-z]{0,6}!", true},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= (\"ab\" | \"c\"){2,} \"x\"?", "(ab|c){2,}x?", false},
    {Q35_CONSTRAINT_GRAMMAR, "root ::= \"\\x41\\u00e9\\n\\t\\\"q\\\\\" [\\]\\[-]",
     "A\\u00e9\\n\\t\"q\\\\[\\]\\[-]", true},
    {Q35_CONSTRAINT_GRAMMAR,
     "root ::= \"(\" e \")\"\ne ::= [0-9] | \"(\" e \")\" | e2\n"
     "e2 ::= [0-9] [+*] [0-9]",
     "\\(+([0-9]|[0-9][+*][0-9])\\)+", false},
};

static void test_samples(void **state) {
    (void)state;
    ct_env *env = ct_env_open();
    char path[] = "/tmp/q35-constraint-samples-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    int total = 0;
    for (size_t k = 0; k < sizeof CASES / sizeof *CASES; k++) {
        const sample_case *c = &CASES[k];
        q35_err e = {0};
        q35_constraint *con =
            q35_constraint_compile(env->vocab, c->kind, c->text, c->text ? strlen(c->text) : 0, &e);
        if (!con) fail_msg("case %zu: %s", k, e.msg);
        q35_matcher *m = q35_matcher_new(con, false, &env->eos, 1, &e);
        if (!m) fail_msg("case %zu: %s", k, e.msg);
        uint64_t rng = 1000 + k;
        int ended = 0;
        for (int d = 0; d < 24; d++) {
            if (q35_matcher_reset(m, d % 2 == 1, &e)) fail_msg("reset: %s", e.msg);
            char *doc;
            size_t len;
            int ok = ct_sample(env, m, &rng, 300, &doc, &len);
            /* after_think walks may start with newlines: the answer drops them */
            const char *start = doc;
            while (*start == '\n')
                start++;
            if (c->bounded && !ok) fail_msg("case %zu: a bounded document did not end: %s", k, doc);
            if (ok) {
                ended++;
                bool json_doc =
                    c->kind == Q35_CONSTRAINT_JSON || (c->regex && !strcmp(c->regex, "JSON"));
                ct_write(f,
                         json_doc                            ? "json"
                         : c->kind == Q35_CONSTRAINT_GRAMMAR ? "regex"
                                                             : "schema",
                         c->kind == Q35_CONSTRAINT_JSON_SCHEMA ? c->text : NULL,
                         json_doc ? NULL : c->regex, start, strlen(start));
            }
            free(doc);
        }
        /* the unbounded languages still end often under this walk */
        if (ended < 6) fail_msg("case %zu: only %d of 24 walks ended", k, ended);
        total += ended;
        q35_matcher_free(m);
        q35_constraint_free(con);
    }
    fclose(f);
    print_message("%d documents sampled\n", total);
    ct_check(path);
    unlink(path);
    ct_env_close(env);
}

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"w\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
    "\"maxLength\":12},\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]},\"days\":{"
    "\"type\":\"integer\",\"minimum\":1,\"maximum\":7},\"when\":{\"type\":\"string\","
    "\"format\":\"date\"},\"opts\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":"
    "\"boolean\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\","
    "\"maxLength\":3},\"maxItems\":2}},\"additionalProperties\":false}},\"required\":"
    "[\"city\",\"days\"]}}},{\"type\":\"function\",\"function\":{\"name\":\"ping\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{}}}},{\"name\":\"add\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"},"
    "\"b\":{\"type\":[\"integer\",\"null\"],\"maximum\":9}},\"required\":[\"a\",\"b\"]}}]";

/* Qwen3.5 tool calls (tool_choice "required", then a named function):
 * each sampled reply parses as calls whose arguments satisfy the
 * function's schema; <tool_call> and </tool_call> are their added tokens. */
static void test_tool_calls(void **state) {
    (void)state;
    ct_env *env = ct_env_open();
    char path[] = "/tmp/q35-constraint-tools-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    const char *names[] = {NULL, "get_weather", "add"};
    int32_t open = q35_token_id(env->tok, "<tool_call>");
    for (int k = 0; k < 3; k++) {
        q35_err e = {0};
        q35_constraint *con =
            q35_constraint_tool_call(env->vocab, TOOLS, strlen(TOOLS), names[k], &e);
        if (!con) fail_msg("%s", e.msg);
        q35_matcher *m = q35_matcher_new(con, false, &env->eos, 1, &e);
        assert_non_null(m);
        assert_true(q35_matcher_allows(m, open));
        uint64_t rng = 99 + k;
        int ended = 0;
        for (int d = 0; d < 24; d++) {
            assert_int_equal(q35_matcher_reset(m, false, &e), Q35_OK);
            char *doc;
            size_t len;
            if (ct_sample(env, m, &rng, 400, &doc, &len)) {
                ct_write(f, "tools", TOOLS, names[k], doc, len);
                ended++;
            }
            free(doc);
        }
        if (ended < 12) fail_msg("tools %d: only %d of 24 walks ended", k, ended);
        q35_matcher_free(m);
        q35_constraint_free(con);
    }
    fclose(f);
    ct_check(path);
    unlink(path);
    /* errors name what is wrong */
    q35_err e = {0};
    assert_null(q35_constraint_tool_call(env->vocab, TOOLS, strlen(TOOLS), "nope", &e));
    assert_non_null(strstr(e.msg, "no tool named 'nope'"));
    const char *bad = "[{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":"
                      "{\"s\":{\"type\":\"string\",\"pattern\":\"a+\"}}}}]";
    assert_null(q35_constraint_tool_call(env->vocab, bad, strlen(bad), NULL, &e));
    assert_non_null(strstr(e.msg, "'pattern'"));
    assert_non_null(strstr(e.msg, "/0/parameters/properties/s"));
    const char *bad2 = "[{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":"
                       "{\"n\":{\"type\":\"number\",\"multipleOf\":3}}}}]";
    assert_null(q35_constraint_tool_call(env->vocab, bad2, strlen(bad2), NULL, &e));
    assert_non_null(strstr(e.msg, "unsupported keyword 'multipleOf'"));
    assert_non_null(strstr(e.msg, "/0/parameters/properties/n/multipleOf"));
    ct_env_close(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_tool_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
