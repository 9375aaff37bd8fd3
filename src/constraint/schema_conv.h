/* schema_conv.h — JSON Schema to GBNF rules, shared by the schema entry
 * point (schema.c) and the tool-call grammar (tool_call.c). A converter
 * writes one GBNF rule per schema node it visits (rules named s<N>), with
 * the JSON pieces of json_mode.c appended once; $ref targets are visited
 * once, so recursive schemas become recursive rules. Every keyword is
 * either handled exactly, ignored as a pure annotation, or an error
 * naming it and its JSON pointer. */
#ifndef Q35_CONSTRAINT_SCHEMA_CONV_H
#define Q35_CONSTRAINT_SCHEMA_CONV_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "q35.h"

/* A growable NUL-terminated string. */
typedef struct gtext {
    char *p;
    size_t n, cap;
    bool oom;
} gtext;
void gt_put(gtext *t, const char *s);
void gt_putn(gtext *t, const char *s, size_t n);
void gt_printf(gtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a GBNF string literal (quotes included). */
void gt_literal(gtext *t, const char *s, size_t n);
void gt_free(gtext *t);

typedef struct schema_conv schema_conv;

/* `root`: the document $ref "#..." pointers resolve in (borrowed). */
schema_conv *schema_conv_new(const cJSON *root, q35_err *e);
void schema_conv_free(schema_conv *c);

/* The rule matching JSON values valid under `schema` (at JSON pointer
 * `path`); its name into name[32]. */
int schema_conv_value(schema_conv *c, const cJSON *schema, const char *path, char name[32]);

/* Makes `root` the document later $refs resolve in (references already
 * made keep their rules). */
void schema_conv_set_root(schema_conv *c, const cJSON *root);

/* The rule of a string format's text (no quotes): "fmt-date" for "date",
 * ...; NULL for a format not supported. */
const char *schema_conv_format_rule(schema_conv *c, const char *format);

/* Appends a rule "name ::= rhs" of the caller's own. */
void schema_conv_rule(schema_conv *c, const char *name, const char *rhs);

/* The whole grammar: "root ::= <root_rhs>", every rule, the JSON pieces.
 * Caller frees with free(). NULL (with the error) on failure. */
char *schema_conv_finish(schema_conv *c, const char *root_rhs);

/* The JSON rules every schema grammar uses (value, string, char, ws...). */
extern const char q35_json_common_gbnf[];

#endif
