/* tool_calls.h — Qwen3.5's XML tool calls in a streamed answer, turned into
 * OpenAI tool calls as the text arrives:
 *
 *     <tool_call>
 *     <function=NAME>
 *     <parameter=KEY>
 *     VALUE
 *     </parameter>
 *     </function>
 *     </tool_call>
 *
 * Text outside calls is content; text that might be the start of
 * "<tool_call>" is held back until the next piece decides it. Inside a call
 * nothing reaches the content, also when the answer is cut off: a call cut
 * off after its name is closed with the complete parameters so far (valid
 * JSON arguments), one cut off before its name is dropped, and so is a
 * final "<t", "<to", ... "<tool_call" (a call cut off as it began). Each parameter's
 * value becomes JSON by the type the tool's schema gives it (string;
 * number/integer/boolean/null, object/array when the text parses as such;
 * without a schema type, JSON when it parses, else a string). */
#ifndef Q35_SERVER_TOOL_CALLS_H
#define Q35_SERVER_TOOL_CALLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct srv_tool_sink {
    void *ud;
    void (*content)(void *ud, const char *text, size_t len);
    void (*call_begin)(void *ud, int index, const char *name);
    /* a piece of the call's arguments JSON; the pieces concatenate to it */
    void (*call_args)(void *ud, int index, const char *json, size_t len);
    void (*call_end)(void *ud, int index);
} srv_tool_sink;

typedef struct srv_tool_parser srv_tool_parser;

/* tools_json: the request's "tools" array (for the parameter types), may be
 * NULL. Returns NULL when out of memory. Free with srv_tool_parser_free. */
srv_tool_parser *srv_tool_parser_new(const char *tools_json, const srv_tool_sink *sink);
void srv_tool_parser_free(srv_tool_parser *p);

/* Adds answer text; returns 0, or -1 when out of memory. */
int srv_tool_parser_feed(srv_tool_parser *p, const char *text, size_t len);
/* End of the answer: held-back content comes out; an open call is closed
 * or dropped (see above). */
int srv_tool_parser_finish(srv_tool_parser *p);
/* Calls completed (call_end sent). */
int srv_tool_parser_n_calls(const srv_tool_parser *p);

#endif
