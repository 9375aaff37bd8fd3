/* server.h — `q35 serve`: the OpenAI-compatible HTTP server (libmicrohttpd,
 * one thread per connection) in front of the engine (engine.h).
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/completions, GET
 * /v1/models[/ID], GET /health (503 while the model loads), GET /metrics
 * (Prometheus text), POST /tokenize, POST /detokenize. Every error is
 * OpenAI's {"error": {"message", "type", "param", "code"}} with a 4xx/5xx
 * status. With an API key every endpoint but /health wants
 * "Authorization: Bearer KEY" (compared in constant time; 401 otherwise). */
#ifndef Q35_SERVER_SERVER_H
#define Q35_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "q35.h"

typedef struct q35_server_opts {
    const char *model_path; /* -m: directory, .gguf or hub id */
    const char *model_name; /* the id /v1/models lists; NULL: the path's last part */
    const char *host;       /* NULL: 127.0.0.1 */
    int port;               /* 0: any free port (see q35_server_port) */
    const char *api_key;    /* NULL or "": no key */
    int parallel;           /* slots decoding at once (default 4) */
    int queue;              /* requests waiting beyond them (default 16) */
    int n_ctx;              /* positions per slot (default 4096) */
    size_t cache_bytes;     /* prompt cache bound (default 1 GiB) */
    int n_threads;          /* compute threads (0: all cores) */
    q35_weight_format weights;
    size_t max_body;       /* request body bytes (default 4 MiB) */
    int max_prompt_tokens; /* default: n_ctx - 1 */
    int max_tokens;        /* largest max_tokens (default 4096) */
    int timeout_s;         /* idle connection timeout (default 600) */
    bool quiet;            /* no request log on stderr */
} q35_server_opts;

typedef struct q35_server q35_server;

/* Binds and starts serving at once (/health answers 503 until the model is
 * loaded, which happens on a thread of its own). Returns NULL and fills e
 * when it cannot bind. Caller stops with q35_server_stop. */
q35_server *q35_server_start(const q35_server_opts *o, q35_err *e);
int q35_server_port(const q35_server *s);
/* 0 while loading, 1 when ready, -1 when the load failed (message in e). */
int q35_server_ready(q35_server *s, q35_err *e);
/* Stops accepting, cancels running requests, frees everything. */
void q35_server_stop(q35_server *s);

/* Constant-time equality of two NUL-terminated strings (time depends on
 * the lengths only). */
bool q35_server_key_equal(const char *a, const char *b);

#endif
