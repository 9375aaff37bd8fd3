/* gate.h — the server's front door: it accepts each connection itself and
 * reads (without consuming: MSG_PEEK) the head of its first request before
 * libmicrohttpd sees the socket. A head that libmicrohttpd would refuse
 * with its own HTML page (too large, a URI too long, a malformed request
 * line or header, an HTTP version other than 1.0/1.1, a bad or too large
 * Content-Length, an unknown Transfer-Encoding), or that does not arrive
 * within the timeout, is answered here in OpenAI's error shape with the
 * same 4xx/5xx status and the connection is closed; any other connection
 * is handed to libmicrohttpd untouched (MHD_add_connection), which reads
 * the request from the start.
 *
 * Only the first request of a connection passes the gate: a later request
 * on a kept-alive connection that breaks these rules gets
 * libmicrohttpd's own answer (same status, HTML body). */
#ifndef Q35_SERVER_GATE_H
#define Q35_SERVER_GATE_H

#include <stdatomic.h>
#include <stddef.h>

#include "q35.h"
#include "server/request.h"

typedef struct srv_gate_limits {
    size_t max_head; /* request line + headers, bytes */
    size_t max_line; /* request line (the URI's bound), bytes */
    size_t max_body; /* Content-Length */
    int timeout_ms;  /* for the whole head to arrive */
    int max_pending; /* connections waiting on their head at once */
} srv_gate_limits;

/* Checks the first n bytes a client sent (n may hold more than the head).
 * Returns 0 when they hold a whole head libmicrohttpd accepts (*head_len
 * set to its length), -1 when more bytes are needed (and n is within the
 * limits), or the HTTP status of the error, filled in *err. Pure; never
 * reads past n. */
int srv_gate_check_head(const char *buf, size_t n, const srv_gate_limits *lim, size_t *head_len,
                        srv_error *err);

typedef struct srv_gate srv_gate;
struct MHD_Daemon;

/* Starts accepting on listen_fd (bound and listening; the gate closes it
 * when stopped) and hands good connections to d (started with
 * MHD_USE_NO_LISTEN_SOCKET). Error answers count into *n_4xx / *n_5xx.
 * Returns NULL (e filled) when its thread cannot start; stop with
 * srv_gate_stop, before MHD_stop_daemon. */
srv_gate *srv_gate_start(int listen_fd, struct MHD_Daemon *d, const srv_gate_limits *lim,
                         atomic_llong *n_4xx, atomic_llong *n_5xx, q35_err *e);
/* Stops accepting, closes the connections still at the gate, waits for
 * its threads, frees. */
void srv_gate_stop(srv_gate *g);

#endif
