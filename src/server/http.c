/* http.c — q35_server: libmicrohttpd (a thread per connection, so a
 * request may wait on its job), routing, the API key, limits, the model
 * loading in the background, the request log and /metrics (see server.h).
 *
 * A generating request waits on its job's condition variable in short
 * slices and looks at its socket between them: a client that hung up
 * cancels its job, which the engine notices before the next token. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "core/err.h"
#include "server/engine.h"
#include "server/gate.h"
#include "server/request.h"
#include "server/response.h"
#include "server/server.h"

#define WAIT_SLICE_MS 50
/* The gate's bounds on a request head (see gate.h); the daemon's memory
 * per connection leaves room for a head that passed, so that its own
 * (HTML) 431 is out of reach on a first request. */
#define MAX_HEAD (32 * 1024)
#define MAX_LINE (8 * 1024)
#define MHD_MEMORY (128 * 1024)
#define MAX_CONNS 256

enum {
    R_CHAT,
    R_COMPLETION,
    R_MODELS,
    R_HEALTH,
    R_METRICS,
    R_TOKENIZE,
    R_DETOKENIZE,
    R_OTHER,
    N_ROUTES
};
static const char *const ROUTE_NAMES[N_ROUTES] = {"chat_completions", "completions", "models",
                                                  "health",           "metrics",     "tokenize",
                                                  "detokenize",       "other"};

struct q35_server {
    q35_server_opts o;
    char *model_path, *model_name, *api_key, *host;
    srv_limits lim;
    struct MHD_Daemon *d;
    srv_gate *gate;
    int port;
    pthread_t loader;
    bool loader_started;
    atomic_int ready; /* 0 loading, 1 ready, -1 failed */
    q35_err load_err;
    q35_model *m;
    q35_tokenizer *tok;
    q35_constraint_vocab *cvocab; /* for response_format and tool_choice */
    srv_engine *eng;
    int32_t im_start;
    atomic_llong requests[N_ROUTES];
    atomic_llong status_4xx, status_5xx, rejected;
    double t_start;
};

typedef struct conn {
    q35_server *srv;
    int route;
    char *body;
    size_t n, cap;
    bool too_large;
    srv_job *job;
    int fd;
    double t0;
} conn;

/* The streamed body's reader: its own job reference, freed by MHD. */
typedef struct stream_ctx {
    srv_job *job;
    int fd;
    size_t sent;
} stream_ctx;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool q35_server_key_equal(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned diff = (unsigned)(na ^ nb);
    for (size_t i = 0; i < na; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[nb ? i % nb : 0];
    return diff == 0 && nb > 0;
}

/* The client closed its end (or the socket failed). */
static bool peer_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    if (p.revents & POLLIN) {
        char b;
        ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
}

static void timed_wait(srv_job *j) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

/* ------------------------------------------------------------ responses */

static enum MHD_Result send_text(struct MHD_Connection *c, conn *x, int status, const char *type,
                                 const char *body, size_t len, const char *retry_after) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (x) {
        if (status >= 500)
            atomic_fetch_add(&x->srv->status_5xx, 1);
        else if (status >= 400)
            atomic_fetch_add(&x->srv->status_4xx, 1);
    }
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, conn *x, int status, cJSON *obj) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s)
        return send_text(c, x, 500, "application/json",
                         "{\"error\":{\"message\":\"out of "
                         "memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}",
                         83, NULL);
    enum MHD_Result rc = send_text(c, x, status, "application/json", s, strlen(s), NULL);
    free(s);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, conn *x, const srv_error *e) {
    char *s = srv_error_json(e);
    if (!s) return MHD_NO;
    const char *retry = e->status == 503 ? "1" : NULL;
    if (e->status == 503 && x) atomic_fetch_add(&x->srv->rejected, 1);
    enum MHD_Result rc = send_text(c, x, e->status, "application/json", s, strlen(s), retry);
    free(s);
    return rc;
}

static enum MHD_Result fail(struct MHD_Connection *c, conn *x, int status, const char *type,
                            const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static enum MHD_Result fail(struct MHD_Connection *c, conn *x, int status, const char *type,
                            const char *param, const char *code, const char *fmt, ...) {
    srv_error e;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_error_set(&e, status, type, param, code, "%s", msg);
    return send_error(c, x, &e);
}

static enum MHD_Result not_ready(struct MHD_Connection *c, conn *x) {
    q35_server *s = x->srv;
    if (atomic_load(&s->ready) < 0)
        return fail(c, x, 500, "server_error", NULL, NULL, "the model failed to load: %s",
                    s->load_err.msg);
    return fail(c, x, 503, "unavailable_error", NULL, "model_loading", "the model is loading");
}

/* ----------------------------------------------------- small endpoints */

static enum MHD_Result do_health(struct MHD_Connection *c, conn *x) {
    int r = atomic_load(&x->srv->ready);
    if (r <= 0) return not_ready(c, x);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return send_json(c, x, 200, o);
}

static cJSON *model_json(q35_server *s) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)(long long)time(NULL));
    cJSON_AddStringToObject(m, "owned_by", "q35");
    cJSON_AddNumberToObject(m, "context_length", s->o.n_ctx);
    return m;
}

static bool model_matches(const q35_server *s, const char *name) {
    return !name || !name[0] || !strcmp(name, s->model_name) || !strcmp(name, s->model_path);
}

static enum MHD_Result do_models(struct MHD_Connection *c, conn *x, const char *url) {
    q35_server *s = x->srv;
    const char *id = strncmp(url, "/v1/models/", 11) ? NULL : url + 11;
    if (id) {
        if (!model_matches(s, id) || !id[0])
            return fail(c, x, 404, "invalid_request_error", "model", "model_not_found",
                        "the model '%s' does not exist (this server has '%s')", id, s->model_name);
        return send_json(c, x, 200, model_json(s));
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON_AddItemToArray(data, model_json(s));
    return send_json(c, x, 200, o);
}

static void metric(char **p, size_t *left, const char *name, const char *type, const char *help,
                   double v) {
    int n = snprintf(*p, *left, "# HELP %s %s\n# TYPE %s %s\n%s %.6g\n", name, help, name, type,
                     name, v);
    if (n > 0 && (size_t)n < *left) {
        *p += n;
        *left -= (size_t)n;
    }
}

static enum MHD_Result do_metrics(struct MHD_Connection *c, conn *x) {
    q35_server *s = x->srv;
    size_t cap = 8192, left = cap;
    char *buf = malloc(cap), *p = buf;
    if (!buf) return MHD_NO;
    int n = snprintf(p, left,
                     "# HELP q35_requests_total HTTP requests by endpoint\n"
                     "# TYPE q35_requests_total counter\n");
    p += n, left -= (size_t)n;
    for (int i = 0; i < N_ROUTES; i++) {
        n = snprintf(p, left, "q35_requests_total{endpoint=\"%s\"} %lld\n", ROUTE_NAMES[i],
                     (long long)atomic_load(&s->requests[i]));
        if (n > 0 && (size_t)n < left) p += n, left -= (size_t)n;
    }
    metric(&p, &left, "q35_responses_4xx_total", "counter", "answers with a 4xx status",
           (double)atomic_load(&s->status_4xx));
    metric(&p, &left, "q35_responses_5xx_total", "counter", "answers with a 5xx status",
           (double)atomic_load(&s->status_5xx));
    metric(&p, &left, "q35_requests_rejected_total", "counter",
           "requests refused with 503 (queue full or loading)", (double)atomic_load(&s->rejected));
    metric(&p, &left, "q35_model_ready", "gauge", "1 once the model is loaded",
           atomic_load(&s->ready) > 0);
    if (s->eng) {
        srv_engine_stats st;
        srv_engine_get_stats(s->eng, &st);
        metric(&p, &left, "q35_slots_total", "gauge", "generation slots", st.slots);
        metric(&p, &left, "q35_slots_busy", "gauge", "slots prefilling or decoding", st.active);
        metric(&p, &left, "q35_queue_length", "gauge", "requests waiting for a slot", st.queued);
        metric(&p, &left, "q35_jobs_completed_total", "counter", "replies finished",
               (double)st.jobs_done);
        metric(&p, &left, "q35_jobs_cancelled_total", "counter", "replies cancelled (client gone)",
               (double)st.jobs_cancelled);
        metric(&p, &left, "q35_jobs_failed_total", "counter", "replies that failed",
               (double)st.jobs_failed);
        metric(&p, &left, "q35_prompt_tokens_total", "counter", "prompt tokens of all requests",
               (double)st.prompt_tokens);
        metric(&p, &left, "q35_cached_tokens_total", "counter",
               "prompt tokens restored from the prompt cache", (double)st.cached_tokens);
        metric(&p, &left, "q35_prefilled_tokens_total", "counter", "prompt tokens computed",
               (double)st.prefilled_tokens);
        metric(&p, &left, "q35_generated_tokens_total", "counter", "tokens generated",
               (double)st.generated_tokens);
        metric(&p, &left, "q35_prepared_tokens_total", "counter",
               "tokens of next turns computed in idle time", (double)st.prepared_tokens);
        metric(&p, &left, "q35_prefill_tokens_per_second", "gauge",
               "prompt tokens computed per second of prefill",
               st.prefill_s > 0 ? (double)st.prefilled_tokens / st.prefill_s : 0);
        metric(&p, &left, "q35_decode_tokens_per_second", "gauge",
               "tokens decoded per second of decode steps (all streams)",
               st.decode_s > 0 ? (double)st.decode_rows / st.decode_s : 0);
        metric(&p, &left, "q35_prefill_seconds_total", "counter", "time spent in prefill chunks",
               st.prefill_s);
        metric(&p, &left, "q35_decode_seconds_total", "counter", "time spent in decode steps",
               st.decode_s);
        metric(&p, &left, "q35_decode_tokens_total", "counter",
               "tokens fed by decode steps (all streams)", (double)st.decode_rows);
        metric(&p, &left, "q35_decode_steps_total", "counter", "decode steps (batched or not)",
               (double)st.decode_steps);
        metric(&p, &left, "q35_decode_batch_mean", "gauge", "mean sequences per decode step",
               st.decode_steps ? (double)st.decode_rows / (double)st.decode_steps : 0);
        metric(&p, &left, "q35_cache_hits_total", "counter", "prompt cache hits",
               (double)st.cache_hits);
        metric(&p, &left, "q35_cache_misses_total", "counter", "prompt cache misses",
               (double)st.cache_misses);
        metric(&p, &left, "q35_cache_evictions_total", "counter", "prompt cache evictions",
               (double)st.cache_evictions);
        metric(&p, &left, "q35_cache_entries", "gauge", "snapshots in the prompt cache",
               st.cache_entries);
        metric(&p, &left, "q35_cache_bytes", "gauge", "bytes in the prompt cache",
               (double)st.cache_bytes);
    }
    enum MHD_Result rc =
        send_text(c, x, 200, "text/plain; version=0.0.4", buf, (size_t)(p - buf), NULL);
    free(buf);
    return rc;
}

static cJSON *parse_body(struct MHD_Connection *c, conn *x, enum MHD_Result *rc) {
    cJSON *root = x->n ? cJSON_ParseWithLength(x->body, x->n) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        *rc = fail(c, x, 400, "invalid_request_error", NULL, NULL,
                   "the request body must be a JSON object");
        return NULL;
    }
    return root;
}

static enum MHD_Result do_tokenize(struct MHD_Connection *c, conn *x) {
    enum MHD_Result rc;
    cJSON *root = parse_body(c, x, &rc);
    if (!root) return rc;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(root, "text");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(root, "parse_special");
    const cJSON *wp = cJSON_GetObjectItemCaseSensitive(root, "with_pieces");
    if (!cJSON_IsString(t) || (ps && !cJSON_IsBool(ps)) || (wp && !cJSON_IsBool(wp))) {
        cJSON_Delete(root);
        return fail(c, x, 400, "invalid_request_error", "content", NULL,
                    "'content' must be a string (parse_special, with_pieces: booleans)");
    }
    q35_added_mode mode = ps && cJSON_IsFalse(ps) ? Q35_ADDED_AS_TEXT : Q35_ADDED_MATCH;
    int32_t *ids = NULL;
    size_t n = 0;
    q35_err e = {0};
    if (q35_tokenize(x->srv->tok, t->valuestring, strlen(t->valuestring), mode, &ids, &n, &e)) {
        cJSON_Delete(root);
        return fail(c, x, 400, "invalid_request_error", "content", NULL, "%s", e.msg);
    }
    bool pieces = wp && cJSON_IsTrue(wp);
    cJSON_Delete(root);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < n; i++) {
        if (!pieces) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
            continue;
        }
        cJSON *it = cJSON_CreateObject();
        cJSON_AddNumberToObject(it, "id", ids[i]);
        size_t len = 0;
        const char *b = q35_token_bytes(x->srv->tok, ids[i], &len);
        char *txt = malloc(len + 1);
        if (txt) {
            memcpy(txt, b ? b : "", len);
            txt[len] = 0;
            cJSON_AddStringToObject(it, "piece", txt);
            free(txt);
        }
        cJSON_AddItemToArray(arr, it);
    }
    free(ids);
    return send_json(c, x, 200, o);
}

static enum MHD_Result do_detokenize(struct MHD_Connection *c, conn *x) {
    enum MHD_Result rc;
    cJSON *root = parse_body(c, x, &rc);
    if (!root) return rc;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    int n = cJSON_IsArray(t) ? cJSON_GetArraySize(t) : -1;
    int32_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    bool ok = n >= 0 && (n == 0 || ids);
    for (int i = 0; ok && i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(t, i);
        ok = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 2147483647.0 &&
             (double)(int32_t)v->valuedouble == v->valuedouble;
        if (ok) ids[i] = (int32_t)v->valuedouble;
    }
    cJSON_Delete(root);
    if (!ok) {
        free(ids);
        return fail(c, x, 400, "invalid_request_error", "tokens", NULL,
                    "'tokens' must be an array of token ids (non-negative integers)");
    }
    char *text = NULL;
    size_t len = 0;
    q35_err e = {0};
    int r = q35_detokenize(x->srv->tok, ids, (size_t)n, false, &text, &len, &e);
    free(ids);
    if (r) return fail(c, x, 400, "invalid_request_error", "tokens", NULL, "%s", e.msg);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "content", text);
    free(text);
    return send_json(c, x, 200, o);
}

/* ------------------------------------------------------------ generation */

/* Positions of <|im_start|> worth a snapshot: after the system block, the
 * start of the last message, the start of the generation prompt. */
static void prompt_cuts(const q35_server *s, const q35_tokens *p, bool has_system, srv_job *j) {
    if (s->im_start < 0) return;
    int first[2] = {-1, -1}, last[2] = {-1, -1}, seen = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->ids[i] == s->im_start) {
            if (seen < 2) first[seen] = (int)i;
            seen++;
            last[0] = last[1];
            last[1] = (int)i;
        }
    j->n_cuts = 0;
    if (has_system && first[1] > 0) j->cuts[j->n_cuts++] = first[1];
    if (last[0] > 0) j->cuts[j->n_cuts++] = last[0];
    if (last[1] > 0) j->cuts[j->n_cuts++] = last[1];
}

static int build_prompt(q35_server *s, const srv_request *req, q35_tokens *ids, srv_error *err) {
    q35_err e = {0};
    if (req->kind == SRV_COMPLETION) {
        if (q35_tokenize_append(s->tok, req->prompt, strlen(req->prompt), Q35_ADDED_MATCH, ids, &e))
            return srv_error_set(err, 400, "invalid_request_error", "prompt", NULL, "%s", e.msg);
        if (!ids->n)
            return srv_error_set(err, 400, "invalid_request_error", "prompt", NULL,
                                 "the prompt is empty");
        return 0;
    }
    q35_chat_opts o = q35_chat_opts_default();
    o.add_generation_prompt = true;
    o.enable_thinking = req->sampling.thinking;
    o.tools_json = srv_request_has_tools(req) ? req->messages.tools_json : NULL;
    q35_prompt p = {0};
    if (q35_chat_render(req->messages.items, req->messages.n, &o, &p, &e))
        return srv_error_set(err, 400, "invalid_request_error", "messages", NULL, "%s", e.msg);
    int rc = q35_prompt_encode(s->tok, &p, ids, &e);
    q35_prompt_free(&p);
    if (rc) return srv_error_set(err, 400, "invalid_request_error", "messages", NULL, "%s", e.msg);
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *sc = cls;
    srv_job *j = sc->job;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (sc->sent < j->out_n) {
            size_t n = j->out_n - sc->sent < max ? j->out_n - sc->sent : max;
            memcpy(buf, j->out + sc->sent, n);
            sc->sent += n;
            pthread_mutex_unlock(&j->mu);
            return (ssize_t)n;
        }
        if (j->done) {
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        timed_wait(j);
        if (!j->done && peer_gone(sc->fd)) {
            pthread_mutex_unlock(&j->mu);
            srv_job_cancel(j);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls) {
    stream_ctx *sc = cls;
    pthread_mutex_lock(&sc->job->mu);
    bool done = sc->job->done;
    pthread_mutex_unlock(&sc->job->mu);
    if (!done) srv_job_cancel(sc->job); /* the connection ended before the reply */
    srv_job_release(sc->job);
    free(sc);
}

static void log_request(q35_server *s, const char *route, int status, const srv_job *j, double t0) {
    if (s->o.quiet) return;
    if (j)
        fprintf(stderr,
                "q35 serve: %s %d prompt=%d cached=%d completion=%d ttft=%.0fms total=%.0fms\n",
                route, status, j->prompt_tokens, j->cached_tokens, j->completion_tokens,
                (j->t_first ? j->t_first : j->t_end) - j->t_submit, j->t_end - j->t_submit);
    else
        fprintf(stderr, "q35 serve: %s %d %.0fms\n", route, status, now_ms() - t0);
}

/* The constraint a request asks for: response_format json_object /
 * json_schema (JSON mode, a schema), tool_choice "required" / a named
 * function (Qwen3.5 tool-call syntax over the offered tools). */
static int make_constraint(q35_server *s, const srv_request *req, q35_constraint **out,
                           srv_error *err) {
    *out = NULL;
    bool tools_forced =
        req->tool_choice == SRV_TOOLS_REQUIRED || req->tool_choice == SRV_TOOLS_NAMED;
    if (!req->response_format && !tools_forced) return 0;
    if (req->response_format && tools_forced)
        return srv_error_set(err, 400, "invalid_request_error", "response_format", NULL,
                             "response_format and a forced tool_choice cannot be combined");
    q35_err e = {0};
    if (tools_forced) {
        if (!srv_request_has_tools(req))
            return srv_error_set(err, 400, "invalid_request_error", "tool_choice", NULL,
                                 "tool_choice \"required\" or a named function needs 'tools'");
        const char *tj = req->messages.tools_json;
        if (req->tool_name && !strstr(tj, req->tool_name))
            return srv_error_set(err, 400, "invalid_request_error", "tool_choice", NULL,
                                 "tool_choice names '%s', which is not among the tools",
                                 req->tool_name);
        *out = q35_constraint_tool_call(s->cvocab, tj, strlen(tj), req->tool_name, &e);
        if (!*out) /* an unsupported schema in the tools, or no tool-call grammar yet */
            return srv_error_set(err, 400, "invalid_request_error", "tool_choice", NULL,
                                 "tool_choice needs a constraint over the tools: %s", e.msg);
        return 0;
    }
    cJSON *rf = cJSON_Parse(req->response_format);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rf, "json_schema"), "schema");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "json_schema") && schema) {
        char *text = cJSON_PrintUnformatted(schema);
        if (text)
            *out = q35_constraint_compile(s->cvocab, Q35_CONSTRAINT_JSON_SCHEMA, text, strlen(text),
                                          &e);
        free(text);
    } else {
        *out = q35_constraint_compile(s->cvocab, Q35_CONSTRAINT_JSON, NULL, 0, &e);
    }
    cJSON_Delete(rf);
    if (!*out)
        return srv_error_set(err, 400, "invalid_request_error", "response_format", NULL, "%s",
                             e.msg[0] ? e.msg : "out of memory compiling the schema");
    return 0;
}

static enum MHD_Result do_generate(struct MHD_Connection *c, conn *x, srv_kind kind) {
    q35_server *s = x->srv;
    srv_request req;
    srv_error err;
    if (srv_request_parse(x->body, x->n, kind, &s->lim, &req, &err)) return send_error(c, x, &err);
    enum MHD_Result rc;
    if (!model_matches(s, req.model)) {
        rc = fail(c, x, 404, "invalid_request_error", "model", "model_not_found",
                  "the model '%s' does not exist (this server has '%s')", req.model, s->model_name);
        goto out;
    }
    q35_constraint *con = NULL;
    if (make_constraint(s, &req, &con, &err)) {
        rc = send_error(c, x, &err);
        goto out;
    }
    srv_job *j = srv_job_new();
    if (!j) {
        q35_constraint_free(con);
        rc = MHD_NO;
        goto out;
    }
    j->constraint = con; /* the job owns it from here */
    if (build_prompt(s, &req, &j->prompt, &err)) {
        srv_job_release(j);
        rc = send_error(c, x, &err);
        goto out;
    }
    int n = (int)j->prompt.n, n_ctx = srv_engine_n_ctx(s->eng);
    if (n > s->o.max_prompt_tokens || n + 1 > n_ctx) {
        srv_job_release(j);
        rc = fail(c, x, 400, "invalid_request_error", "messages", "context_length_exceeded",
                  "the prompt is %d tokens; this server takes at most %d (context %d)", n,
                  s->o.max_prompt_tokens < n_ctx - 1 ? s->o.max_prompt_tokens : n_ctx - 1, n_ctx);
        goto out;
    }
    if (req.max_tokens_given && n + req.sampling.max_tokens > n_ctx) {
        srv_job_release(j);
        rc = fail(c, x, 400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                  "the prompt (%d tokens) and max_tokens (%d) do not fit in the context of %d", n,
                  req.sampling.max_tokens, n_ctx);
        goto out;
    }
    j->sampling = req.sampling;
    if (!req.max_tokens_given && j->sampling.max_tokens > n_ctx - n)
        j->sampling.max_tokens = n_ctx - n;
    j->stop = req.stop; /* the job owns the stop strings from here */
    req.stop = NULL;
    j->sampling.stop = (const char *const *)j->stop;
    j->sampling.constraint = j->constraint;
    bool has_system = kind == SRV_CHAT && req.messages.n && req.messages.items[0].role &&
                      !strcmp(req.messages.items[0].role, "system");
    prompt_cuts(s, &j->prompt, has_system, j);
    srv_resp *resp = srv_resp_attach(j, &req, s->model_name);
    if (!resp || (kind == SRV_CHAT && s->o.cache_bytes > 1 &&
                  srv_resp_predict_next(resp, s->tok, x->body, x->n, req.sampling.thinking))) {
        srv_job_release(j);
        rc = MHD_NO;
        goto out;
    }
    j->t_submit = x->t0;
    if (srv_engine_submit(s->eng, j)) {
        srv_job_release(j);
        rc = fail(c, x, 503, "unavailable_error", NULL, "server_busy",
                  "every slot is busy and the queue is full; retry later");
        goto out;
    }
    x->job = j; /* the connection's reference */
    if (req.stream) {
        stream_ctx *sc = calloc(1, sizeof *sc);
        if (!sc) {
            rc = MHD_NO;
            goto out;
        }
        pthread_mutex_lock(&j->mu);
        j->refs++;
        pthread_mutex_unlock(&j->mu);
        sc->job = j;
        sc->fd = x->fd;
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, sc, stream_free);
        if (!r) {
            stream_free(sc);
            rc = MHD_NO;
            goto out;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        rc = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        goto out;
    }
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        timed_wait(j);
        if (!j->done && peer_gone(x->fd)) {
            srv_job_cancel(j);
            while (!j->done) /* the engine lets go of it within a step */
                timed_wait(j);
        }
    }
    pthread_mutex_unlock(&j->mu);
    rc = send_text(c, x, j->status, "application/json", j->out ? j->out : "{}",
                   j->out ? j->out_n : 2, NULL);
out:
    srv_request_free(&req);
    return rc;
}

/* --------------------------------------------------------------- routing */

static int route_of(const char *url) {
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) return R_CHAT;
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")) return R_COMPLETION;
    if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11) || !strcmp(url, "/models"))
        return R_MODELS;
    if (!strcmp(url, "/health") || !strcmp(url, "/v1/health")) return R_HEALTH;
    if (!strcmp(url, "/metrics")) return R_METRICS;
    if (!strcmp(url, "/tokenize")) return R_TOKENIZE;
    if (!strcmp(url, "/detokenize")) return R_DETOKENIZE;
    return R_OTHER;
}

static bool authorized(struct MHD_Connection *c, const q35_server *s) {
    if (!s->api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    while (*h == ' ')
        h++;
    return q35_server_key_equal(h, s->api_key);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    q35_server *s = cls;
    conn *x = *con_cls;
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x) return MHD_NO;
        x->srv = s;
        x->t0 = now_ms();
        x->route = route_of(url);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        x->fd = ci ? ci->connect_fd : -1;
        *con_cls = x;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (x->too_large || x->n + n > s->o.max_body) {
            x->too_large = true;
            return MHD_YES;
        }
        if (x->n + n + 1 > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < x->n + n + 1)
                cap *= 2;
            char *b = realloc(x->body, cap);
            if (!b) return MHD_NO;
            x->body = b;
            x->cap = cap;
        }
        memcpy(x->body + x->n, upload, n);
        x->n += n;
        x->body[x->n] = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&s->requests[x->route], 1);
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (x->route != R_HEALTH && !authorized(c, s))
        return fail(c, x, 401, "authentication_error", NULL, "invalid_api_key",
                    "a valid API key is required (Authorization: Bearer KEY)");
    if (x->too_large)
        return fail(c, x, 413, "invalid_request_error", NULL, "request_too_large",
                    "the request body is larger than %zu bytes", s->o.max_body);
    bool want_post = x->route == R_CHAT || x->route == R_COMPLETION || x->route == R_TOKENIZE ||
                     x->route == R_DETOKENIZE;
    if (x->route == R_OTHER)
        return fail(c, x, 404, "invalid_request_error", NULL, "not_found",
                    "no endpoint %s %s (see /v1/chat/completions, /v1/completions, /v1/models, "
                    "/health, /metrics, /tokenize, /detokenize)",
                    method, url);
    if ((want_post && !post) || (!want_post && !get))
        return fail(c, x, 405, "invalid_request_error", NULL, "method_not_allowed",
                    "%s wants %s, not %s", url, want_post ? "POST" : "GET", method);
    switch (x->route) {
    case R_HEALTH: return do_health(c, x);
    case R_METRICS: return do_metrics(c, x);
    default: break;
    }
    if (atomic_load(&s->ready) <= 0) return not_ready(c, x);
    switch (x->route) {
    case R_MODELS: return do_models(c, x, url);
    case R_TOKENIZE: return do_tokenize(c, x);
    case R_DETOKENIZE: return do_detokenize(c, x);
    case R_CHAT: return do_generate(c, x, SRV_CHAT);
    case R_COMPLETION: return do_generate(c, x, SRV_COMPLETION);
    default: return MHD_NO;
    }
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    conn *x = *con_cls;
    if (!x) return;
    if (x->job) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) srv_job_cancel(x->job);
        log_request(x->srv, ROUTE_NAMES[x->route], x->job->status, x->job, x->t0);
        srv_job_release(x->job);
    } else if (x->route == R_CHAT || x->route == R_COMPLETION) {
        log_request(x->srv, ROUTE_NAMES[x->route], 0, NULL, x->t0);
    }
    free(x->body);
    free(x);
    *con_cls = NULL;
}

/* ------------------------------------------------------------- lifecycle */

static void *load_main(void *arg) {
    q35_server *s = arg;
    q35_load_opts lo = {.n_threads = s->o.n_threads, .weights = s->o.weights};
    q35_err e = {0};
    s->m = q35_model_load(s->model_path, &lo, &e);
    if (s->m) {
        q35_model_info info;
        q35_model_get_info(s->m, &info);
        s->tok = q35_tokenizer_load(info.path, &e);
        if (!s->tok) { /* a .gguf's tokenizer.json may sit beside it */
            char dir[4096];
            const char *slash = strrchr(info.path, '/');
            snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - info.path) : 1,
                     slash ? info.path : ".");
            q35_err e2 = {0};
            s->tok = q35_tokenizer_load(dir, &e2);
        }
    }
    if (s->tok) s->cvocab = q35_constraint_vocab_new(s->tok, &e);
    if (s->cvocab) {
        s->im_start = q35_token_id(s->tok, "<|im_start|>");
        int n_ctx = s->o.n_ctx;
        srv_engine_opts eo = {s->o.parallel, s->o.queue, n_ctx, s->o.cache_bytes};
        s->eng = srv_engine_new(s->m, s->tok, &eo, &e);
    }
    if (!s->eng) {
        s->load_err = e;
        atomic_store(&s->ready, -1);
        if (!s->o.quiet) fprintf(stderr, "q35 serve: loading failed: %s\n", e.msg);
        return NULL;
    }
    if (!s->o.quiet)
        fprintf(stderr, "q35 serve: model '%s' ready (%d slots, context %d) in %.1f s\n",
                s->model_name, s->o.parallel, s->o.n_ctx, (now_ms() - s->t_start) / 1e3);
    atomic_store(&s->ready, 1);
    return NULL;
}

static char *dup_or_null(const char *s) {
    return s && s[0] ? strdup(s) : NULL;
}

q35_server *q35_server_start(const q35_server_opts *o, q35_err *e) {
    if (!o || !o->model_path) {
        q35_err_set(e, Q35_EINVAL, "serve: no model (-m)");
        return NULL;
    }
    q35_server *s = calloc(1, sizeof *s);
    if (!s) {
        q35_err_set(e, Q35_ENOMEM, "serve: out of memory");
        return NULL;
    }
    s->t_start = now_ms();
    s->o = *o;
    if (s->o.parallel <= 0) s->o.parallel = 4;
    if (s->o.queue < 0) s->o.queue = 0;
    if (!o->queue) s->o.queue = 16;
    if (s->o.n_ctx <= 0) s->o.n_ctx = 4096;
    if (!s->o.cache_bytes) s->o.cache_bytes = (size_t)1 << 30;
    if (!s->o.max_body) s->o.max_body = (size_t)4 << 20;
    if (s->o.max_prompt_tokens <= 0 || s->o.max_prompt_tokens > s->o.n_ctx - 1)
        s->o.max_prompt_tokens = s->o.n_ctx - 1;
    if (s->o.max_tokens <= 0) s->o.max_tokens = 4096;
    if (s->o.timeout_s <= 0) s->o.timeout_s = 600;
    s->lim = (srv_limits){s->o.max_tokens, 16, 256};
    s->model_path = strdup(o->model_path);
    s->api_key = dup_or_null(o->api_key);
    s->host = strdup(o->host && o->host[0] ? o->host : "127.0.0.1");
    if (o->model_name && o->model_name[0]) {
        s->model_name = strdup(o->model_name);
    } else {
        const char *p = o->model_path;
        size_t n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
            n--;
        size_t b = n;
        while (b > 0 && p[b - 1] != '/')
            b--;
        s->model_name = strndup(p + b, n - b);
    }
    s->im_start = -1;
    if (!s->model_path || !s->host || !s->model_name) {
        q35_err_set(e, Q35_ENOMEM, "serve: out of memory");
        goto fail;
    }

    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    const char *host = !strcmp(s->host, "localhost") ? "127.0.0.1" : s->host;
    /* The gate (gate.c) accepts and checks each connection's first request
     * head, then hands it to the daemon, which has no socket of its own. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    const struct sockaddr *addr;
    socklen_t addr_len;
    int family;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)o->port);
        addr = (const struct sockaddr *)&a4;
        addr_len = sizeof a4;
        family = AF_INET;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)o->port);
        addr = (const struct sockaddr *)&a6;
        addr_len = sizeof a6;
        family = AF_INET6;
    } else {
        q35_err_set(e, Q35_EINVAL, "serve: --host '%s' is not an IPv4 or IPv6 address", s->host);
        goto fail;
    }
    if (o->port < 0 || o->port > 65535) {
        q35_err_set(e, Q35_EINVAL, "serve: --port %d is outside 0..65535", o->port);
        goto fail;
    }
    int lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (lfd >= 0) setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, addr, addr_len) || listen(lfd, 128)) {
        q35_err_set(e, Q35_EIO, "serve: cannot listen on %s:%d (%s)", s->host, o->port,
                    strerror(errno));
        if (lfd >= 0) close(lfd);
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    s->port = o->port;
    if (!getsockname(lfd, (struct sockaddr *)&bound, &bl))
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)s->o.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)MHD_MEMORY, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNS,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!s->d) {
        q35_err_set(e, Q35_EIO, "serve: cannot start the HTTP daemon (%s)", strerror(errno));
        close(lfd);
        goto fail;
    }
    srv_gate_limits gl = {.max_head = MAX_HEAD,
                          .max_line = MAX_LINE,
                          .max_body = s->o.max_body,
                          .timeout_ms = s->o.timeout_s * 1000,
                          .max_pending = MAX_CONNS};
    s->gate = srv_gate_start(lfd, s->d, &gl, &s->status_4xx, &s->status_5xx, e);
    if (!s->gate) {
        close(lfd);
        goto fail;
    }
    if (pthread_create(&s->loader, NULL, load_main, s)) {
        q35_err_set(e, Q35_ENOMEM, "serve: cannot start the loading thread");
        goto fail;
    }
    s->loader_started = true;
    return s;
fail:
    q35_server_stop(s);
    return NULL;
}

int q35_server_port(const q35_server *s) {
    return s ? s->port : 0;
}

int q35_server_ready(q35_server *s, q35_err *e) {
    int r = atomic_load(&s->ready);
    if (r < 0 && e) *e = s->load_err;
    return r;
}

void q35_server_stop(q35_server *s) {
    if (!s) return;
    if (s->loader_started) pthread_join(s->loader, NULL);
    atomic_store(&s->ready, 0);
    srv_gate_stop(s->gate);      /* no new connections reach the daemon */
    srv_engine_shutdown(s->eng); /* every job ends: waiting connections return */
    if (s->d) MHD_stop_daemon(s->d);
    srv_engine_free(s->eng);
    s->eng = NULL;
    q35_constraint_vocab_free(s->cvocab);
    q35_tokenizer_free(s->tok);
    q35_model_free(s->m);
    free(s->model_path);
    free(s->model_name);
    free(s->api_key);
    free(s->host);
    free(s);
}
