/* gate.c — the connection gate (gate.h): an accept thread, one short-lived
 * thread per new connection that peeks at its first request head, and the
 * head check itself (a pure function, unit-tested in test_gate.c).
 *
 * Why a gate: libmicrohttpd answers some malformed or oversized requests
 * on its own, before any callback runs, with fixed HTML bodies; OpenAI
 * clients expect {"error": {...}}. Peeking leaves every byte in the socket,
 * so a connection that passes reaches libmicrohttpd exactly as it came. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/err.h"
#include "server/gate.h"
#include "server/response.h"

#define SLICE_MS 100       /* how often waiting threads look at the stop flag */
#define LINGER_MS 200      /* reading what the client still sends after an error */
#define LINGER_BYTES 65536 /* ... at most this much */

/* ------------------------------------------------------- the head check */

static int bad(srv_error *err, int status, const char *code, const char *msg) {
    return srv_error_set(err, status, "invalid_request_error", NULL, code, "%s", msg);
}

static bool is_tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The line starting at p (ending before '\n', a '\r' before it dropped):
 * its length in *len; returns the offset after the '\n', or 0 when there
 * is no '\n' before end. */
static size_t line_at(const char *buf, size_t p, size_t end, size_t *len) {
    const char *nl = memchr(buf + p, '\n', end - p);
    if (!nl) return 0;
    size_t l = (size_t)(nl - (buf + p));
    if (l && buf[p + l - 1] == '\r') l--;
    *len = l;
    return (size_t)(nl - buf) + 1;
}

static void trim(const char **v, size_t *n) {
    while (*n && (**v == ' ' || **v == '\t'))
        (*v)++, (*n)--;
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
        (*n)--;
}

static int check_request_line(const char *l, size_t n, srv_error *err) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i]))
        i++;
    if (i == 0 || i > 32 || i >= n || l[i] != ' ')
        return bad(err, 400, "bad_request", "malformed HTTP request line (method)");
    size_t t0 = ++i;
    while (i < n && (unsigned char)l[i] > 0x20 && l[i] != 0x7f)
        i++;
    if (i == t0 || i >= n || l[i] != ' ')
        return bad(err, 400, "bad_request",
                   "malformed HTTP request line (the target, then 'HTTP/1.1', separated by "
                   "single spaces)");
    const char *v = l + i + 1;
    size_t vn = n - i - 1;
    if (vn != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
        v[7] > '9')
        return bad(err, 400, "bad_request", "malformed HTTP request line (version)");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return bad(err, 505, "http_version_not_supported",
                   "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)");
    return 0;
}

int srv_gate_check_head(const char *buf, size_t n, const srv_gate_limits *lim, size_t *head_len,
                        srv_error *err) {
    size_t p = 0, len = 0;
    /* empty lines before the request line are ignored (RFC 9112 2.2) */
    while (p < n && (buf[p] == '\r' || buf[p] == '\n'))
        p++;
    size_t next = line_at(buf, p, n, &len);
    if (!next) {
        if (n - p > lim->max_line)
            return bad(err, 414, "uri_too_long", "the request line is too long (URI too long)");
        if (n >= lim->max_head)
            return bad(err, 431, "headers_too_large", "the request head is too large");
        return -1;
    }
    if (len > lim->max_line)
        return bad(err, 414, "uri_too_long", "the request line is too long (URI too long)");
    int rc = check_request_line(buf + p, len, err);
    if (rc) return rc;
    bool have_cl = false, chunked = false, have_te = false, have_header = false;
    unsigned long long cl = 0;
    for (p = next;;) {
        if (p > lim->max_head)
            return bad(err, 431, "headers_too_large", "the request head is too large");
        next = line_at(buf, p, n, &len);
        if (!next) {
            if (n >= lim->max_head)
                return bad(err, 431, "headers_too_large", "the request head is too large");
            return -1;
        }
        const char *l = buf + p;
        if (len == 0) {
            if (next > lim->max_head)
                return bad(err, 431, "headers_too_large", "the request head is too large");
            p = next;
            break;
        }
        if (l[0] == ' ' || l[0] == '\t') { /* obsolete line folding */
            if (!have_header)
                return bad(err, 400, "bad_request", "malformed HTTP header (folded first line)");
            p = next;
            continue;
        }
        const char *colon = memchr(l, ':', len);
        size_t nn = colon ? (size_t)(colon - l) : 0;
        for (size_t i = 0; i < nn; i++)
            if (!is_tchar((unsigned char)l[i])) nn = 0;
        if (!colon || nn == 0)
            return bad(err, 400, "bad_request",
                       "malformed HTTP header line (want 'Name: value', no space before ':')");
        have_header = true;
        const char *v = colon + 1;
        size_t vn = len - nn - 1;
        trim(&v, &vn);
        if (nn == 14 && !strncasecmp(l, "Content-Length", 14)) {
            unsigned long long x = 0;
            if (vn == 0) return bad(err, 400, "bad_request", "malformed Content-Length header");
            for (size_t i = 0; i < vn; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return bad(err, 400, "bad_request", "malformed Content-Length header");
                if (x <= 1000000000000000000ull) x = x * 10 + (unsigned)(v[i] - '0');
            }
            if (have_cl && x != cl)
                return bad(err, 400, "bad_request", "conflicting Content-Length headers");
            have_cl = true;
            cl = x;
        } else if (nn == 17 && !strncasecmp(l, "Transfer-Encoding", 17)) {
            have_te = true;
            if (vn != 7 || strncasecmp(v, "chunked", 7))
                return srv_error_set(err, 501, "invalid_request_error", NULL, "not_implemented",
                                     "Transfer-Encoding '%.*s' is not supported (only chunked)",
                                     vn > 64 ? 64 : (int)vn, v);
            chunked = true;
        }
        p = next;
    }
    if (have_cl && have_te)
        return bad(err, 400, "bad_request", "both Content-Length and Transfer-Encoding");
    if (have_cl && cl > lim->max_body)
        return srv_error_set(err, 413, "invalid_request_error", NULL, "request_too_large",
                             "the request body is larger than %zu bytes", lim->max_body);
    (void)chunked;
    *head_len = p;
    return 0;
}

/* ------------------------------------------------------------ the door */

struct srv_gate {
    int listen_fd;
    struct MHD_Daemon *d;
    srv_gate_limits lim;
    atomic_llong *n_4xx, *n_5xx;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending; /* connection threads alive */
};

typedef struct gate_conn {
    srv_gate *g;
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
} gate_conn;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *reason(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Sends the error, then reads (and drops) what the client still sends for
 * a moment before closing: closing a socket with unread bytes resets the
 * connection, and the client could lose the answer. */
static void answer_and_close(srv_gate *g, int fd, const srv_error *err) {
    char *body = srv_error_json(err);
    char head[256];
    size_t bn = body ? strlen(body) : 0;
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\n%sConnection: close\r\n\r\n",
                      err->status, reason(err->status), bn,
                      err->status == 503 ? "Retry-After: 1\r\n" : "");
    if (hn > 0 && send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn && body)
        (void)!send(fd, body, bn, MSG_NOSIGNAL);
    free(body);
    atomic_fetch_add(err->status >= 500 ? g->n_5xx : g->n_4xx, 1);
    shutdown(fd, SHUT_WR);
    double end = now_ms() + LINGER_MS;
    size_t drained = 0;
    char sink[4096];
    while (drained < LINGER_BYTES) {
        int left = (int)(end - now_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r <= 0) break;
        drained += (size_t)r;
    }
    close(fd);
}

static void conn_done(srv_gate *g) {
    pthread_mutex_lock(&g->mu);
    g->pending--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void *conn_main(void *arg) {
    gate_conn *c = arg;
    srv_gate *g = c->g;
    size_t cap = g->lim.max_head + 4;
    char *buf = malloc(cap);
    srv_error err = {0};
    double deadline = now_ms() + g->lim.timeout_ms;
    size_t seen = 0, head_len = 0;
    int rc = -1;
    while (buf && !atomic_load(&g->stop)) {
        /* wait for more bytes than already seen (peeked bytes stay
         * readable, so poll alone would not wait) */
        int lowat = (int)seen + 1;
        setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            if (seen) {
                srv_error_set(&err, 408, "invalid_request_error", NULL, "request_timeout",
                              "the request head did not arrive within %d s",
                              (g->lim.timeout_ms + 999) / 1000);
                rc = 408;
            }
            break;
        }
        struct pollfd p = {c->fd, POLLIN | POLLRDHUP, 0};
        int pr = poll(&p, 1, left < SLICE_MS ? left : SLICE_MS);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        ssize_t r = recv(c->fd, buf, cap, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break; /* gone */
        if (r < 0) continue;
        if ((size_t)r == seen) {
            if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) { /* half-closed mid-head */
                srv_error_set(&err, 400, "invalid_request_error", NULL, "bad_request",
                              "the connection ended inside the request head");
                rc = 400;
                break;
            }
            struct timespec ts = {0, 2000000}; /* SO_RCVLOWAT ignored: don't spin */
            nanosleep(&ts, NULL);
            continue;
        }
        seen = (size_t)r;
        rc = srv_gate_check_head(buf, seen, &g->lim, &head_len, &err);
        if (rc >= 0) break;
    }
    free(buf);
    if (rc == 0 && !atomic_load(&g->stop)) {
        int one = 1;
        setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
        /* the daemon closes the socket whatever it answers */
        MHD_add_connection(g->d, c->fd, (const struct sockaddr *)&c->addr, c->addr_len);
    } else if (rc > 0 && !atomic_load(&g->stop)) {
        answer_and_close(g, c->fd, &err);
    } else {
        close(c->fd);
    }
    free(c);
    conn_done(g);
    return NULL;
}

static void *accept_main(void *arg) {
    srv_gate *g = arg;
    while (!atomic_load(&g->stop)) {
        struct pollfd p = {g->listen_fd, POLLIN, 0};
        if (poll(&p, 1, SLICE_MS) <= 0) continue;
        gate_conn *c = calloc(1, sizeof *c);
        if (!c) continue;
        c->g = g;
        c->addr_len = sizeof c->addr;
        c->fd = accept4(g->listen_fd, (struct sockaddr *)&c->addr, &c->addr_len, SOCK_CLOEXEC);
        if (c->fd < 0) {
            free(c);
            continue;
        }
        pthread_mutex_lock(&g->mu);
        bool full = g->pending >= g->lim.max_pending;
        if (!full) g->pending++;
        pthread_mutex_unlock(&g->mu);
        pthread_t th;
        pthread_attr_t at;
        bool started = false;
        if (!full && !pthread_attr_init(&at)) {
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            pthread_attr_setstacksize(&at, 256 * 1024);
            started = pthread_create(&th, &at, conn_main, c) == 0;
            pthread_attr_destroy(&at);
        }
        if (!started) {
            if (!full) conn_done(g);
            srv_error err;
            srv_error_set(&err, 503, "unavailable_error", NULL, "server_busy",
                          "too many connections at once; retry shortly");
            answer_and_close(g, c->fd, &err);
            free(c);
        }
    }
    return NULL;
}

srv_gate *srv_gate_start(int listen_fd, struct MHD_Daemon *d, const srv_gate_limits *lim,
                         atomic_llong *n_4xx, atomic_llong *n_5xx, q35_err *e) {
    srv_gate *g = calloc(1, sizeof *g);
    if (!g) {
        q35_err_set(e, Q35_ENOMEM, "serve: out of memory");
        return NULL;
    }
    g->listen_fd = listen_fd;
    g->d = d;
    g->lim = *lim;
    g->n_4xx = n_4xx;
    g->n_5xx = n_5xx;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->th, NULL, accept_main, g)) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g);
        q35_err_set(e, Q35_ENOMEM, "serve: cannot start the accepting thread");
        return NULL;
    }
    return g;
}

void srv_gate_stop(srv_gate *g) {
    if (!g) return;
    atomic_store(&g->stop, true);
    pthread_join(g->th, NULL);
    pthread_mutex_lock(&g->mu);
    while (g->pending > 0) /* each looks at the flag every SLICE_MS */
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    close(g->listen_fd);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}
