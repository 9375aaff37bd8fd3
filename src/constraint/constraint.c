/* constraint.c — the public compile entry points: JSON mode, JSON Schema
 * and tool calls go through GBNF text (schema.c, tool_call.c), GBNF
 * through the parser (gbnf.c), and the grammar is bound to a vocabulary. */
#include <stdlib.h>
#include <string.h>

#include "constraint/constraint.h"
#include "constraint/schema.h"
#include "core/err.h"

q35_constraint *q35_constraint_from_grammar(const q35_constraint_vocab *v, q35_grammar *g,
                                            q35_err *e) {
    q35_constraint *c = calloc(1, sizeof *c);
    if (!c) {
        q35_grammar_free(g);
        q35_err_set(e, Q35_ENOMEM, "constraint: out of memory");
        return NULL;
    }
    c->g = g;
    c->v = v;
    q35_vocab_ref(v);
    return c;
}

void q35_constraint_free(q35_constraint *c) {
    if (!c) return;
    q35_grammar_free(c->g);
    q35_constraint_vocab_free((q35_constraint_vocab *)c->v);
    free(c);
}

int q35_constraint_to_gbnf(q35_constraint_kind kind, const char *text, size_t len, char **gbnf,
                           q35_err *e) {
    *gbnf = NULL;
    if (kind == Q35_CONSTRAINT_JSON) {
        *gbnf = strdup(q35_json_mode_gbnf);
        return *gbnf ? Q35_OK : q35_err_set(e, Q35_ENOMEM, "constraint: out of memory");
    }
    if (kind == Q35_CONSTRAINT_JSON_SCHEMA) {
        if (!text) return q35_err_set(e, Q35_EINVAL, "constraint: no schema text");
        return q35_schema_gbnf(text, len, gbnf, e);
    }
    return q35_err_set(e, Q35_EINVAL, "constraint: kind %d has no GBNF form to derive", (int)kind);
}

q35_constraint *q35_constraint_compile(const q35_constraint_vocab *v, q35_constraint_kind kind,
                                       const char *text, size_t len, q35_err *e) {
    if (!v) {
        q35_err_set(e, Q35_EINVAL, "constraint: no vocabulary");
        return NULL;
    }
    q35_grammar *g = NULL;
    if (kind == Q35_CONSTRAINT_GRAMMAR) {
        if (!text) {
            q35_err_set(e, Q35_EINVAL, "constraint: no grammar text");
            return NULL;
        }
        g = q35_gbnf_parse(text, len, v, e);
    } else if (kind == Q35_CONSTRAINT_JSON || kind == Q35_CONSTRAINT_JSON_SCHEMA) {
        char *gbnf;
        if (q35_constraint_to_gbnf(kind, text, len, &gbnf, e)) return NULL;
        g = q35_gbnf_parse(gbnf, strlen(gbnf), v, e);
        if (!g) q35_err_prefix(e, "constraint (derived grammar)");
        free(gbnf);
    } else {
        q35_err_set(e, Q35_EINVAL, "constraint: unknown kind %d", (int)kind);
        return NULL;
    }
    return g ? q35_constraint_from_grammar(v, g, e) : NULL;
}

q35_constraint *q35_constraint_tool_call(const q35_constraint_vocab *v, const char *tools_json,
                                         size_t len, const char *name, q35_err *e) {
    if (!v || !tools_json) {
        q35_err_set(e, Q35_EINVAL, "tool call constraint: no vocabulary or no tools");
        return NULL;
    }
    int32_t open = q35_vocab_added_id(v, "<tool_call>", 11);
    int32_t close = q35_vocab_added_id(v, "</tool_call>", 12);
    char *gbnf;
    if (q35_tool_call_gbnf(tools_json, len, name, open, close, &gbnf, e)) return NULL;
    q35_grammar *g = q35_gbnf_parse(gbnf, strlen(gbnf), v, e);
    if (!g) q35_err_prefix(e, "tool call constraint (derived grammar)");
    free(gbnf);
    return g ? q35_constraint_from_grammar(v, g, e) : NULL;
}
