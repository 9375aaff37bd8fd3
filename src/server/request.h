/* request.h — an OpenAI request body (POST /v1/chat/completions or
 * /v1/completions) read into the settings q35 runs it with, or an error in
 * OpenAI's shape. A pure function of its input (no model, no globals), so
 * that it can be fuzzed on its own (tests/fuzz/fuzz_server_request.c). */
#ifndef Q35_SERVER_REQUEST_H
#define Q35_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

/* An error as OpenAI returns it: HTTP status and
 * {"error": {"message", "type", "param", "code"}}. */
typedef struct srv_error {
    int status;     /* 400, 401, 404, 413, 503, ... */
    char type[40];  /* "invalid_request_error", "authentication_error", ... */
    char param[64]; /* the field at fault, "" for none */
    char code[40];  /* e.g. "model_not_found", "" for none */
    char message[512];
} srv_error;

/* Fills e; returns e->status. */
int srv_error_set(srv_error *e, int status, const char *type, const char *param, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

typedef enum srv_kind {
    SRV_CHAT = 0,       /* /v1/chat/completions */
    SRV_COMPLETION = 1, /* /v1/completions */
} srv_kind;

typedef enum srv_tool_choice {
    SRV_TOOLS_AUTO = 0,
    SRV_TOOLS_NONE,     /* tools are left out of the prompt */
    SRV_TOOLS_REQUIRED, /* needs constrained decoding */
    SRV_TOOLS_NAMED,    /* needs constrained decoding */
} srv_tool_choice;

typedef struct srv_limits {
    int max_tokens;   /* largest max_tokens a request may ask for */
    int max_stop;     /* stop strings per request */
    int max_stop_len; /* bytes per stop string */
} srv_limits;

typedef struct srv_request {
    srv_kind kind;
    char *model;               /* "model" or NULL */
    q35_message_list messages; /* chat: the messages (and tools) */
    char *prompt;              /* completion: the raw prompt */
    bool stream, include_usage;
    q35_sampling sampling; /* stop points into `stop` */
    bool max_tokens_given;
    char **stop; /* NULL-terminated, or NULL */
    srv_tool_choice tool_choice;
    char *tool_name; /* SRV_TOOLS_NAMED */
    bool parallel_tool_calls;
    char *response_format; /* JSON of a json_object/json_schema response_format, or NULL */
    bool thinking_given;   /* enable_thinking was in the request */
} srv_request;

/* Reads `len` bytes of `body`. Defaults: q35_sampling_default() with
 * thinking on and no thinking budget, max_tokens = lim->max_tokens.
 * Returns 0 and fills *out (free with srv_request_free), or the HTTP status
 * of the error in *err (then *out is zeroed). Never reads past len. */
int srv_request_parse(const char *body, size_t len, srv_kind kind, const srv_limits *lim,
                      srv_request *out, srv_error *err);
void srv_request_free(srv_request *r);

/* True when the request's messages offer tools (and tool_choice allows them). */
bool srv_request_has_tools(const srv_request *r);

#endif
