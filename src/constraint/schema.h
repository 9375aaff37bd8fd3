/* schema.h — JSON Schema (and JSON mode, and Qwen3.5 tool calls) to GBNF
 * text, which gbnf.c then compiles. */
#ifndef Q35_CONSTRAINT_SCHEMA_H
#define Q35_CONSTRAINT_SCHEMA_H

#include <stddef.h>

#include "q35.h"

/* The GBNF of JSON mode: any JSON object (root ::= object). Static. */
extern const char q35_json_mode_gbnf[];

/* GBNF for documents valid under the schema `text`. *out: caller frees. */
int q35_schema_gbnf(const char *text, size_t len, char **out, q35_err *e);

/* GBNF for Qwen3.5 tool calls of the tools in `tools_json` (an OpenAI
 * tools array): one or more, of function `name` (NULL: any). `tool_call`
 * / `tool_call_end`: the ids of <tool_call> and </tool_call>, or -1 to
 * spell them as text. *out: caller frees. */
int q35_tool_call_gbnf(const char *tools_json, size_t len, const char *name, int32_t tool_call,
                       int32_t tool_call_end, char **out, q35_err *e);

#endif
