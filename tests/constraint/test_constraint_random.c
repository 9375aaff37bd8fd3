/* test_constraint_random.c — a property test: 150 random schemas (nested
 * objects with random required sets and additionalProperties, arrays
 * with prefixItems and bounds, enums and consts of mixed values, string
 * lengths, formats, patterns, integer bounds, unions, anyOf, $ref into
 * $defs), 3 documents sampled from noise under each, every document
 * validated by Python's jsonschema against its schema (check_docs.py). */
#include "constraint/constraint_test_util.h"

static const char *const NAMES[] = {"a", "b", "id", "x y", "\xc3\xa9t\xc3\xa9", "q\"t", "n\\m", ""};
static const char *const PATTERNS[] = {"^[a-c]{1,3}$",  "^x(y|z)?$", "^\\d{2}-\\d{2}$",
                                       "^[^a-z]{0,2}$", "^(ab)+$",   "^.{1,2}$"};
static const char *const FORMATS[] = {"date", "time", "date-time", "uuid"};

static int rnd(uint64_t *r, int n) {
    return (int)(ct_next(r) % (uint64_t)n);
}

static cJSON *rand_value(uint64_t *r) {
    switch (rnd(r, 6)) {
    case 0: return cJSON_CreateNumber(rnd(r, 21) - 10);
    case 1: return cJSON_CreateString(NAMES[rnd(r, 8)]);
    case 2: return cJSON_CreateNull();
    case 3: return cJSON_CreateBool(rnd(r, 2));
    case 4: {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateNumber(rnd(r, 3)));
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "k", cJSON_CreateNumber(1.5));
        return o;
    }
    }
}

static cJSON *rand_schema(uint64_t *r, int depth) {
    cJSON *s = cJSON_CreateObject();
    int kind = rnd(r, depth >= 3 ? 10 : 14);
    switch (kind) {
    case 0: {
        cJSON_AddStringToObject(s, "type", "string");
        int hi = rnd(r, 6);
        cJSON_AddNumberToObject(s, "maxLength", hi);
        if (rnd(r, 2)) cJSON_AddNumberToObject(s, "minLength", rnd(r, hi + 1));
        break;
    }
    case 1: {
        cJSON_AddStringToObject(s, "type", "integer");
        int lo = rnd(r, 101) - 50, hi = lo + rnd(r, 120);
        switch (rnd(r, 4)) {
        case 0:
            cJSON_AddNumberToObject(s, "minimum", lo);
            cJSON_AddNumberToObject(s, "maximum", hi);
            break;
        case 1:
            cJSON_AddNumberToObject(s, "exclusiveMinimum", lo - 1);
            cJSON_AddNumberToObject(s, "exclusiveMaximum", hi + 1);
            break;
        case 2: cJSON_AddNumberToObject(s, "minimum", lo + 0.5); break;
        default: cJSON_AddNumberToObject(s, "maximum", hi); break;
        }
        break;
    }
    case 2:
        if (rnd(r, 3) == 0) {
            cJSON_AddStringToObject(s, "type", "boolean");
            break;
        }
        cJSON_AddStringToObject(s, "type", "number");
        if (rnd(r, 2)) { /* integer bounds, inclusive or exclusive, one side or both */
            int lo = rnd(r, 21) - 10, hi = lo + 1 + rnd(r, 10);
            if (rnd(r, 3))
                cJSON_AddNumberToObject(s, rnd(r, 2) ? "minimum" : "exclusiveMinimum", lo);
            if (rnd(r, 3))
                cJSON_AddNumberToObject(s, rnd(r, 2) ? "maximum" : "exclusiveMaximum", hi);
        }
        break;
    case 3: cJSON_AddStringToObject(s, "type", "null"); break;
    case 4: {
        cJSON *e = cJSON_CreateArray();
        int n = 1 + rnd(r, 4);
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(e, rand_value(r));
        cJSON_AddItemToObject(s, "enum", e);
        break;
    }
    case 5: cJSON_AddItemToObject(s, "const", rand_value(r)); break;
    case 6:
        cJSON_AddStringToObject(s, "type", "string");
        cJSON_AddStringToObject(s, "format", FORMATS[rnd(r, 4)]);
        break;
    case 7: {
        cJSON *t = cJSON_CreateArray();
        cJSON_AddItemToArray(t, cJSON_CreateString("string"));
        cJSON_AddItemToArray(t, cJSON_CreateString(rnd(r, 2) ? "null" : "integer"));
        cJSON_AddItemToObject(s, "type", t);
        cJSON_AddNumberToObject(s, "maxLength", rnd(r, 4));
        cJSON_AddNumberToObject(s, "maximum", 7);
        break;
    }
    case 8:
        cJSON_AddStringToObject(s, "type", "string");
        cJSON_AddStringToObject(s, "pattern", PATTERNS[rnd(r, 6)]);
        break;
    case 9: cJSON_AddStringToObject(s, "$ref", "#/$defs/leaf"); break;
    case 10:
    case 11: {
        cJSON_AddStringToObject(s, "type", "object");
        cJSON *props = cJSON_CreateObject(), *req = cJSON_CreateArray();
        int n = rnd(r, 4);
        for (int i = 0; i < n; i++) {
            const char *name = NAMES[rnd(r, 8)];
            if (cJSON_GetObjectItemCaseSensitive(props, name)) continue;
            cJSON_AddItemToObject(props, name, rand_schema(r, depth + 1));
            if (rnd(r, 2)) cJSON_AddItemToArray(req, cJSON_CreateString(name));
        }
        cJSON_AddItemToObject(s, "properties", props);
        cJSON_AddItemToObject(s, "required", req);
        switch (rnd(r, 3)) {
        case 0: cJSON_AddFalseToObject(s, "additionalProperties"); break;
        case 1: {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "type", "integer");
            cJSON_AddNumberToObject(a, "minimum", 0);
            cJSON_AddNumberToObject(a, "maximum", 3);
            cJSON_AddItemToObject(s, "additionalProperties", a);
            break;
        }
        default: break; /* absent: any extra member (short keys under this walk) */
        }
        break;
    }
    case 12: {
        cJSON_AddStringToObject(s, "type", "array");
        if (rnd(r, 2)) {
            cJSON *p = cJSON_CreateArray();
            int n = 1 + rnd(r, 2);
            for (int i = 0; i < n; i++)
                cJSON_AddItemToArray(p, rand_schema(r, depth + 1));
            cJSON_AddItemToObject(s, "prefixItems", p);
        }
        if (rnd(r, 3))
            cJSON_AddItemToObject(s, "items", rand_schema(r, depth + 1));
        else
            cJSON_AddFalseToObject(s, "items");
        int hi = rnd(r, 4);
        cJSON_AddNumberToObject(s, "maxItems", hi);
        if (rnd(r, 2)) cJSON_AddNumberToObject(s, "minItems", rnd(r, hi + 1));
        break;
    }
    default: {
        cJSON *l = cJSON_CreateArray();
        cJSON_AddItemToArray(l, rand_schema(r, depth + 1));
        cJSON_AddItemToArray(l, rand_schema(r, depth + 1));
        cJSON_AddItemToObject(s, "anyOf", l);
        break;
    }
    }
    return s;
}

/* The generator can write unsatisfiable schemas (minItems above what
 * prefixItems + items:false allow, an enum with no value of the type, a
 * $ref that leads only to itself): the compile must refuse exactly
 * those, and the test skips them. */
static void test_random_schemas(void **state) {
    (void)state;
    ct_env *env = ct_env_open();
    char path[] = "/tmp/q35-constraint-random-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    uint64_t r = 12345;
    int compiled = 0, refused = 0, docs = 0, unfinished = 0;
    for (int k = 0; k < 150; k++) {
        cJSON *root = rand_schema(&r, 0);
        cJSON *defs = cJSON_CreateObject();
        cJSON_AddItemToObject(defs, "leaf", rand_schema(&r, 3));
        cJSON_AddItemToObject(root, "$defs", defs);
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        q35_err e = {0};
        q35_constraint *con =
            q35_constraint_compile(env->vocab, Q35_CONSTRAINT_JSON_SCHEMA, text, strlen(text), &e);
        if (!con) {
            /* only the unsatisfiable combinations the generator can make */
            if (!strstr(e.msg, "no array length") && !strstr(e.msg, "no enum/const value") &&
                !strstr(e.msg, "left-recursive")) /* a $ref cycle that consumes nothing */
                fail_msg("schema %d refused: %s\n%s", k, e.msg, text);
            refused++;
            cJSON_free(text);
            continue;
        }
        compiled++;
        q35_matcher *m = q35_matcher_new(con, false, &env->eos, 1, &e);
        if (!m) fail_msg("%s", e.msg);
        for (int d = 0; d < 3; d++) {
            assert_int_equal(q35_matcher_reset(m, false, &e), Q35_OK);
            char *doc;
            size_t len;
            if (ct_sample(env, m, &r, 300, &doc, &len)) {
                ct_write(f, "schema", text, NULL, doc, len);
                docs++;
            } else {
                unfinished++;
            }
            free(doc);
        }
        q35_matcher_free(m);
        q35_constraint_free(con);
        cJSON_free(text);
    }
    fclose(f);
    print_message("%d schemas compiled, %d refused as unsatisfiable, %d documents, %d unfinished\n",
                  compiled, refused, docs, unfinished);
    assert_true(compiled >= 120);
    assert_true(docs >= 3 * compiled * 8 / 10);
    ct_check(path);
    unlink(path);
    ct_env_close(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_schemas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
