/* response.c — a job's reply in OpenAI's response shapes (see
 * response.h). Everything the formatter needs from the request is copied
 * at attach time, since the client (and its request) may be gone before
 * the engine ends the job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "server/response.h"
#include "server/tool_calls.h"

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

typedef struct call {
    char id[40];
    char *name;
    buf args;
} call;

struct srv_resp {
    srv_job *job;
    srv_kind kind;
    bool stream, include_usage;
    int max_calls; /* parallel_tool_calls false: the first call only */
    char id[48];
    long long created;
    char *model;
    srv_tool_parser *tp;
    buf content, reasoning;
    call *calls;
    int n_calls, cap_calls;
    bool failed; /* out of memory somewhere: the answer ends in an error */
    /* srv_resp_predict_next */
    const q35_tokenizer *tok;
    char *body;
    size_t body_len;
    bool thinking, with_tools;
};

static void random_hex(char *out, int n) {
    unsigned char r[32];
    if (n > 64) n = 64;
    if (getrandom(r, (size_t)(n + 1) / 2, 0) < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (int i = 0; i < 32; i++)
            r[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 8) ^ (uint64_t)(uintptr_t)out >> i);
    }
    for (int i = 0; i < n; i++)
        out[i] = "0123456789abcdef"[(r[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n] = 0;
}

static void resp_free(void *ud) {
    srv_resp *r = ud;
    if (!r) return;
    srv_tool_parser_free(r->tp);
    free(r->body);
    free(r->model);
    free(r->content.p);
    free(r->reasoning.p);
    for (int i = 0; i < r->n_calls; i++) {
        free(r->calls[i].name);
        free(r->calls[i].args.p);
    }
    free(r->calls);
    free(r);
}

/* "data: {json}\n\n" to the client, taking `obj`. */
static void send_event(srv_resp *r, cJSON *obj) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s) {
        r->failed = true;
        return;
    }
    size_t n = strlen(s);
    if (srv_job_write(r->job, "data: ", 6) || srv_job_write(r->job, s, n) ||
        srv_job_write(r->job, "\n\n", 2))
        r->failed = true;
    free(s);
}

static cJSON *chunk_base(srv_resp *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object",
                            r->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->model);
    return o;
}

/* A streamed chunk with one choice: delta (chat, taken) or text. */
static void send_choice(srv_resp *r, cJSON *delta, const char *text, size_t len,
                        const char *finish) {
    cJSON *o = chunk_base(r);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->kind == SRV_CHAT) {
        cJSON_AddItemToObject(c, "delta", delta ? delta : cJSON_CreateObject());
    } else {
        char *t = malloc(len + 1);
        if (t) {
            memcpy(t, text ? text : "", len);
            t[len] = 0;
        }
        cJSON_AddStringToObject(c, "text", t ? t : "");
        free(t);
        cJSON_AddNullToObject(c, "logprobs");
    }
    if (finish)
        cJSON_AddStringToObject(c, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(choices, c);
    send_event(r, o);
}

static cJSON *string_n(const char *s, size_t n) {
    char *t = malloc(n + 1);
    if (!t) return NULL;
    memcpy(t, s, n);
    t[n] = 0;
    cJSON *v = cJSON_CreateString(t);
    free(t);
    return v;
}

static void content_out(void *ud, const char *text, size_t len) {
    srv_resp *r = ud;
    if (!len) return;
    if (!r->stream) {
        if (buf_add(&r->content, text, len)) r->failed = true;
        return;
    }
    if (r->kind == SRV_CHAT) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddItemToObject(d, "content", string_n(text, len));
        send_choice(r, d, NULL, 0, NULL);
    } else {
        send_choice(r, NULL, text, len, NULL);
    }
}

static void call_begin(void *ud, int index, const char *name) {
    srv_resp *r = ud;
    if (index >= r->max_calls) return;
    if (r->n_calls == r->cap_calls) {
        int cap = r->cap_calls ? r->cap_calls * 2 : 4;
        call *c = realloc(r->calls, (size_t)cap * sizeof *c);
        if (!c) {
            r->failed = true;
            return;
        }
        r->calls = c;
        r->cap_calls = cap;
    }
    call *c = &r->calls[r->n_calls++];
    memset(c, 0, sizeof *c);
    memcpy(c->id, "call_", 5);
    random_hex(c->id + 5, 24);
    c->name = strdup(name);
    if (!c->name) r->failed = true;
    if (!r->stream) return;
    cJSON *d = cJSON_CreateObject();
    cJSON *tcs = cJSON_AddArrayToObject(d, "tool_calls");
    cJSON *tc = cJSON_CreateObject();
    cJSON_AddNumberToObject(tc, "index", index);
    cJSON_AddStringToObject(tc, "id", c->id);
    cJSON_AddStringToObject(tc, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(tc, "function");
    cJSON_AddStringToObject(fn, "name", name);
    cJSON_AddStringToObject(fn, "arguments", "");
    cJSON_AddItemToArray(tcs, tc);
    send_choice(r, d, NULL, 0, NULL);
}

static void call_args(void *ud, int index, const char *json, size_t len) {
    srv_resp *r = ud;
    if (index >= r->n_calls || index >= r->max_calls) return;
    if (buf_add(&r->calls[index].args, json, len)) r->failed = true;
    if (!r->stream) return;
    cJSON *d = cJSON_CreateObject();
    cJSON *tcs = cJSON_AddArrayToObject(d, "tool_calls");
    cJSON *tc = cJSON_CreateObject();
    cJSON_AddNumberToObject(tc, "index", index);
    cJSON *fn = cJSON_AddObjectToObject(tc, "function");
    cJSON_AddItemToObject(fn, "arguments", string_n(json, len));
    cJSON_AddItemToArray(tcs, tc);
    send_choice(r, d, NULL, 0, NULL);
}

static int on_piece(srv_job *j, q35_piece_kind kind, const char *text, size_t len) {
    srv_resp *r = j->ud;
    if (kind == Q35_PIECE_THINKING && r->kind == SRV_CHAT) {
        if (!r->stream) {
            if (buf_add(&r->reasoning, text, len)) r->failed = true;
        } else {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddItemToObject(d, "reasoning_content", string_n(text, len));
            send_choice(r, d, NULL, 0, NULL);
        }
    } else if (r->tp) {
        if (srv_tool_parser_feed(r->tp, text, len)) r->failed = true;
    } else {
        content_out(r, text, len);
    }
    return r->failed ? 1 : 0;
}

static cJSON *usage_json(const srv_job *j) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", j->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", j->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", j->prompt_tokens + j->completion_tokens);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", j->cached_tokens);
    return u;
}

/* q35's extension: where the time went (ms). */
static cJSON *timings_json(const srv_job *j) {
    cJSON *t = cJSON_CreateObject();
    double first = j->t_first ? j->t_first : j->t_end;
    cJSON_AddNumberToObject(t, "ttft_ms", first - j->t_submit);
    cJSON_AddNumberToObject(t, "total_ms", j->t_end - j->t_submit);
    double dec = j->t_end - first;
    cJSON_AddNumberToObject(
        t, "decode_tok_s",
        dec > 0 && j->completion_tokens > 1 ? (j->completion_tokens - 1) / (dec / 1e3) : 0);
    return t;
}

static const char *finish_reason(const srv_resp *r, const q35_reply *reply) {
    if (r->tp && srv_tool_parser_n_calls(r->tp) > 0) return "tool_calls";
    if (reply->stop == Q35_STOP_MAX_TOKENS || reply->stop == Q35_STOP_CONTEXT_FULL) return "length";
    return "stop";
}

static void end_error(srv_resp *r, int rc, const q35_err *err) {
    srv_error e;
    int status = rc == Q35_EOVERFLOW || rc == Q35_EINVAL ? 400 : 500;
    srv_error_set(&e, status, status == 400 ? "invalid_request_error" : "server_error", NULL, NULL,
                  "%s", err && err->msg[0] ? err->msg : "generation failed");
    char *s = srv_error_json(&e);
    if (r->stream) {
        if (s) {
            srv_job_write(r->job, "data: ", 6);
            srv_job_write(r->job, s, strlen(s));
            srv_job_write(r->job, "\n\n", 2);
        }
        srv_job_write(r->job, "data: [DONE]\n\n", 14);
    } else {
        r->job->status = status;
        if (s) srv_job_write(r->job, s, strlen(s));
    }
    free(s);
}

/* The next turn's prefix: the request's messages and this answer (content
 * and tool calls as the client gets them), rendered as the next turn will
 * render them — with a user message after the answer (so the answer is an
 * earlier turn: no think block), cut where that message starts. Failures
 * only lose the idle-time precompute. */
static void predict_next(srv_resp *r) {
    q35_message_list l = {0};
    q35_err e = {0};
    if (q35_messages_from_json(r->body, r->body_len, &l, &e)) return;
    q35_message *msgs = calloc(l.n + 2, sizeof *msgs);
    q35_tool_call *calls = r->n_calls ? calloc((size_t)r->n_calls, sizeof *calls) : NULL;
    if (!msgs || (r->n_calls && !calls)) goto done;
    if (l.n) memcpy(msgs, l.items, l.n * sizeof *msgs);
    for (int i = 0; i < r->n_calls; i++) {
        calls[i].name = r->calls[i].name;
        calls[i].arguments_json = r->calls[i].args.p ? r->calls[i].args.p : "{}";
    }
    msgs[l.n] = (q35_message){.role = "assistant",
                              .content = r->content.p ? r->content.p : "",
                              .tool_calls = calls,
                              .n_tool_calls = (size_t)r->n_calls};
    msgs[l.n + 1] = (q35_message){.role = "user", .content = ""};
    q35_chat_opts o = q35_chat_opts_default();
    o.add_generation_prompt = false;
    o.enable_thinking = r->thinking;
    o.tools_json = r->with_tools ? l.tools_json : NULL;
    q35_prompt p = {0};
    q35_tokens *t = &r->job->next_prefix;
    if (!q35_chat_render(msgs, l.n + 2, &o, &p, &e)) {
        t->n = 0;
        if (q35_prompt_encode(r->tok, &p, t, &e)) t->n = 0;
        int32_t im_start = q35_token_id(r->tok, "<|im_start|>");
        size_t cut = 0;
        for (size_t i = 0; i < t->n; i++)
            if (t->ids[i] == im_start) cut = i;
        t->n = im_start >= 0 ? cut : 0; /* up to the dummy user message */
    }
    q35_prompt_free(&p);
done:
    free(msgs);
    free(calls);
    q35_message_list_free(&l);
}

int srv_resp_predict_next(srv_resp *r, const q35_tokenizer *tok, const char *body, size_t len,
                          bool thinking) {
    r->body = malloc(len + 1);
    if (!r->body) return -1;
    memcpy(r->body, body, len);
    r->body[len] = 0;
    r->body_len = len;
    r->tok = tok;
    r->thinking = thinking;
    return 0;
}

static void on_end(srv_job *j, int rc, const q35_reply *reply, const q35_err *err) {
    srv_resp *r = j->ud;
    if (!rc && r->tp) srv_tool_parser_finish(r->tp);
    if (!rc && r->failed) {
        q35_err e = {Q35_ENOMEM, "out of memory formatting the answer"};
        end_error(r, Q35_ENOMEM, &e);
        return;
    }
    if (rc) {
        end_error(r, rc, err);
        return;
    }
    const char *finish = finish_reason(r, reply);
    if (r->stream) {
        send_choice(r, NULL, "", 0, finish);
        if (r->include_usage) {
            cJSON *o = chunk_base(r);
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "usage", usage_json(j));
            cJSON_AddItemToObject(o, "timings", timings_json(j));
            send_event(r, o);
        }
        srv_job_write(j, "data: [DONE]\n\n", 14);
        if (r->body && reply->stop != Q35_STOP_CANCELLED) predict_next(r);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object",
                            r->kind == SRV_CHAT ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->kind == SRV_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        if (r->content.n || !r->n_calls)
            cJSON_AddItemToObject(m, "content",
                                  string_n(r->content.p ? r->content.p : "", r->content.n));
        else
            cJSON_AddNullToObject(m, "content");
        if (r->reasoning.n)
            cJSON_AddItemToObject(m, "reasoning_content", string_n(r->reasoning.p, r->reasoning.n));
        if (r->n_calls) {
            cJSON *tcs = cJSON_AddArrayToObject(m, "tool_calls");
            for (int i = 0; i < r->n_calls; i++) {
                cJSON *tc = cJSON_CreateObject();
                cJSON_AddStringToObject(tc, "id", r->calls[i].id);
                cJSON_AddStringToObject(tc, "type", "function");
                cJSON *fn = cJSON_AddObjectToObject(tc, "function");
                cJSON_AddStringToObject(fn, "name", r->calls[i].name ? r->calls[i].name : "");
                cJSON_AddStringToObject(fn, "arguments",
                                        r->calls[i].args.p ? r->calls[i].args.p : "{}");
                cJSON_AddItemToArray(tcs, tc);
            }
        }
    } else {
        cJSON_AddItemToObject(c, "text", string_n(r->content.p ? r->content.p : "", r->content.n));
        cJSON_AddNullToObject(c, "logprobs");
    }
    cJSON_AddStringToObject(c, "finish_reason", finish);
    cJSON_AddItemToArray(choices, c);
    cJSON_AddItemToObject(o, "usage", usage_json(j));
    cJSON_AddItemToObject(o, "timings", timings_json(j));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) {
        q35_err e = {Q35_ENOMEM, "out of memory formatting the answer"};
        end_error(r, Q35_ENOMEM, &e);
        return;
    }
    srv_job_write(j, s, strlen(s));
    free(s);
    if (r->body && reply->stop != Q35_STOP_CANCELLED) predict_next(r);
}

srv_resp *srv_resp_attach(srv_job *j, const srv_request *req, const char *model) {
    srv_resp *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->job = j;
    r->kind = req->kind;
    r->stream = req->stream;
    r->include_usage = req->include_usage;
    r->max_calls = req->parallel_tool_calls ? 1 << 30 : 1;
    r->created = (long long)time(NULL);
    r->model = strdup(model ? model : "");
    memcpy(r->id, req->kind == SRV_CHAT ? "chatcmpl-" : "cmpl-", req->kind == SRV_CHAT ? 9 : 5);
    random_hex(r->id + (req->kind == SRV_CHAT ? 9 : 5), 24);
    r->with_tools = srv_request_has_tools(req);
    if (r->with_tools) {
        srv_tool_sink sink = {r, content_out, call_begin, call_args, NULL};
        r->tp = srv_tool_parser_new(req->messages.tools_json, &sink);
        if (!r->tp) {
            resp_free(r);
            return NULL;
        }
    }
    if (!r->model) {
        resp_free(r);
        return NULL;
    }
    j->ud = r;
    j->on_piece = on_piece;
    j->on_end = on_end;
    j->free_ud = resp_free;
    if (r->stream && r->kind == SRV_CHAT) { /* the role first, as OpenAI sends it */
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "role", "assistant");
        cJSON_AddStringToObject(d, "content", "");
        send_choice(r, d, NULL, 0, NULL);
    }
    return r;
}

char *srv_error_json(const srv_error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON *x = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(x, "message", e->message);
    cJSON_AddStringToObject(x, "type", e->type[0] ? e->type : "invalid_request_error");
    if (e->param[0])
        cJSON_AddStringToObject(x, "param", e->param);
    else
        cJSON_AddNullToObject(x, "param");
    if (e->code[0])
        cJSON_AddStringToObject(x, "code", e->code);
    else
        cJSON_AddNullToObject(x, "code");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
