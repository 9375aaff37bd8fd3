/* request.c — reading an OpenAI request body (see request.h). Every field
 * q35 honours is checked for type and range; a field it cannot honour (n >
 * 1, logprobs, penalties it does not have, echo, ...) is a 400 naming it,
 * never ignored. Fields that change nothing about the output (user,
 * metadata, store, ...) are accepted and ignored, as OpenAI-compatible
 * servers do. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server/request.h"

#define INVALID "invalid_request_error"

int srv_error_set(srv_error *e, int status, const char *type, const char *param, const char *code,
                  const char *fmt, ...) {
    if (!e) return status;
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type ? type : INVALID);
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    free(r->model);
    q35_message_list_free(&r->messages);
    free(r->prompt);
    if (r->stop)
        for (char **p = r->stop; *p; p++)
            free(*p);
    free(r->stop);
    free(r->tool_name);
    free(r->response_format);
    memset(r, 0, sizeof *r);
}

bool srv_request_has_tools(const srv_request *r) {
    return r->kind == SRV_CHAT && r->tool_choice != SRV_TOOLS_NONE && r->messages.tools_json &&
           strcmp(r->messages.tools_json, "[]") != 0;
}

static int bad(srv_error *err, const char *param, const char *fmt, const char *detail) {
    return srv_error_set(err, 400, INVALID, param, NULL, fmt, param, detail ? detail : "");
}

static bool is_null(const cJSON *v) {
    return !v || cJSON_IsNull(v);
}

/* A number field in [lo, hi]; absent or null leaves *out. */
static int get_number(const cJSON *root, const char *name, double lo, double hi, double *out,
                      srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (is_null(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return bad(err, name, "'%s' must be a number%s", NULL);
    if (v->valuedouble < lo || v->valuedouble > hi) {
        char range[96];
        snprintf(range, sizeof range, " (between %g and %g), got %g", lo, hi, v->valuedouble);
        return bad(err, name, "'%s' is out of range%s", range);
    }
    *out = v->valuedouble;
    return 0;
}

static int get_int(const cJSON *root, const char *name, double lo, double hi, long long *out,
                   bool *given, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (is_null(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || floor(v->valuedouble) != v->valuedouble)
        return bad(err, name, "'%s' must be an integer%s", NULL);
    if (v->valuedouble < lo || v->valuedouble > hi) {
        char range[96];
        snprintf(range, sizeof range, " (between %.0f and %.0f), got %g", lo, hi, v->valuedouble);
        return bad(err, name, "'%s' is out of range%s", range);
    }
    *out = (long long)v->valuedouble;
    if (given) *given = true;
    return 0;
}

static int get_bool(const cJSON *root, const char *name, bool *out, bool *given, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (is_null(v)) return 0;
    if (!cJSON_IsBool(v)) return bad(err, name, "'%s' must be a boolean%s", NULL);
    *out = cJSON_IsTrue(v);
    if (given) *given = true;
    return 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

static int oom(srv_error *err) {
    return srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory reading the request");
}

/* A field that must be absent, null, or one harmless value. */
static int refuse(const cJSON *root, const char *name, bool allow_false, double allow_number,
                  const char *why, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (is_null(v)) return 0;
    if (allow_false && cJSON_IsFalse(v)) return 0;
    if (!isnan(allow_number) && cJSON_IsNumber(v) && v->valuedouble == allow_number) return 0;
    return srv_error_set(err, 400, INVALID, name, "unsupported_parameter",
                         "'%s' is not supported: %s", name, why);
}

static int read_stop(const cJSON *root, const srv_limits *lim, srv_request *r, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (is_null(v)) return 0;
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0) return bad(err, "stop", "'%s' must be a string or an array of strings%s", NULL);
    if (n > lim->max_stop) {
        char d[64];
        snprintf(d, sizeof d, " (at most %d)", lim->max_stop);
        return bad(err, "stop", "'%s' has too many strings%s", d);
    }
    r->stop = calloc((size_t)n + 1, sizeof *r->stop);
    if (!r->stop) return oom(err);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsString(v) ? v : cJSON_GetArrayItem(v, i);
        if (!cJSON_IsString(s)) return bad(err, "stop", "'%s' must hold strings only%s", NULL);
        size_t len = strlen(s->valuestring);
        if ((int)len > lim->max_stop_len) {
            char d[64];
            snprintf(d, sizeof d, " (at most %d bytes)", lim->max_stop_len);
            return bad(err, "stop", "a '%s' string is too long%s", d);
        }
        if (!len) continue;
        if (!(r->stop[k++] = dup_str(s->valuestring))) return oom(err);
    }
    r->sampling.stop = (const char *const *)r->stop;
    return 0;
}

static int read_tool_choice(const cJSON *root, srv_request *r, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
    if (is_null(v)) return 0;
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!strcmp(s, "auto"))
            r->tool_choice = SRV_TOOLS_AUTO;
        else if (!strcmp(s, "none"))
            r->tool_choice = SRV_TOOLS_NONE;
        else if (!strcmp(s, "required"))
            r->tool_choice = SRV_TOOLS_REQUIRED;
        else
            return bad(err, "tool_choice",
                       "'%s' must be \"auto\", \"none\", \"required\" or a named function%s", NULL);
        return 0;
    }
    const cJSON *fn = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "function") : NULL;
    const cJSON *name = cJSON_IsObject(fn) ? cJSON_GetObjectItemCaseSensitive(fn, "name") : NULL;
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return bad(err, "tool_choice",
                   "'%s' must be a string or {\"type\": \"function\", \"function\": {\"name\": "
                   "...}}%s",
                   NULL);
    r->tool_choice = SRV_TOOLS_NAMED;
    if (!(r->tool_name = dup_str(name->valuestring))) return oom(err);
    return 0;
}

static int read_response_format(const cJSON *root, srv_request *r, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (is_null(v)) return 0;
    const cJSON *type = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "type") : NULL;
    if (!cJSON_IsString(type))
        return bad(err, "response_format", "'%s' must be an object with a \"type\"%s", NULL);
    const char *t = type->valuestring;
    if (!strcmp(t, "text")) return 0;
    if (strcmp(t, "json_object") && strcmp(t, "json_schema"))
        return bad(err, "response_format",
                   "'%s.type' must be \"text\", \"json_object\" or \"json_schema\"%s", NULL);
    if (!strcmp(t, "json_schema")) {
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(v, "json_schema");
        const cJSON *schema =
            cJSON_IsObject(js) ? cJSON_GetObjectItemCaseSensitive(js, "schema") : NULL;
        if (!cJSON_IsObject(js) || (schema && !cJSON_IsObject(schema) && !cJSON_IsBool(schema)))
            return bad(err, "response_format",
                       "'%s.json_schema' must be an object with a \"schema\" object%s", NULL);
    }
    if (!(r->response_format = cJSON_PrintUnformatted(v))) return oom(err);
    return 0;
}

static int read_sampling(const cJSON *root, const srv_limits *lim, srv_request *r, srv_error *err) {
    q35_sampling *s = &r->sampling;
    double d;
    long long ll;
    d = s->temperature;
    if (get_number(root, "temperature", 0, 2, &d, err)) return err->status;
    s->temperature = (float)d;
    d = s->top_p;
    if (get_number(root, "top_p", 0, 1, &d, err)) return err->status;
    if (d <= 0) return bad(err, "top_p", "'%s' must be above 0%s", NULL);
    s->top_p = (float)d;
    ll = s->top_k;
    if (get_int(root, "top_k", -1, 1 << 20, &ll, NULL, err)) return err->status;
    s->top_k = ll < 0 ? 0 : (int)ll;
    d = s->repetition_penalty;
    if (get_number(root, "repetition_penalty", 0.01, 100, &d, err)) return err->status;
    s->repetition_penalty = (float)d;
    d = 0;
    if (get_number(root, "min_p", 0, 1, &d, err)) return err->status;
    if (d != 0) return refuse(root, "min_p", false, 0, "q35 has no min-p cut", err);

    bool given = false;
    ll = lim->max_tokens;
    if (get_int(root, "max_tokens", 1, lim->max_tokens, &ll, &given, err)) return err->status;
    if (r->kind == SRV_CHAT &&
        get_int(root, "max_completion_tokens", 1, lim->max_tokens, &ll, &given, err))
        return err->status;
    s->max_tokens = (int)ll;
    r->max_tokens_given = given;

    ll = 0;
    bool seeded = false;
    if (get_int(root, "seed", -9.2e18, 1.8e19, &ll, &seeded, err)) return err->status;
    if (seeded) s->seed = (uint64_t)ll;
    return read_stop(root, lim, r, err);
}

static int read_thinking(const cJSON *root, srv_request *r, srv_error *err) {
    q35_sampling *s = &r->sampling;
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(root, "chat_template_kwargs");
    if (!is_null(kw)) {
        if (!cJSON_IsObject(kw))
            return bad(err, "chat_template_kwargs", "'%s' must be an object%s", NULL);
        if (get_bool(kw, "enable_thinking", &s->thinking, &r->thinking_given, err)) {
            snprintf(err->param, sizeof err->param, "chat_template_kwargs.enable_thinking");
            return err->status;
        }
    }
    /* extensions: "enable_thinking" at the top level, "thinking_budget" */
    if (get_bool(root, "enable_thinking", &s->thinking, &r->thinking_given, err))
        return err->status;
    long long b = s->thinking_budget;
    if (get_int(root, "thinking_budget", -1, 1 << 24, &b, NULL, err)) return err->status;
    s->thinking_budget = (int)b;
    return 0;
}

static int parse_fields(const cJSON *root, const char *body, size_t len, srv_kind kind,
                        const srv_limits *lim, srv_request *r, srv_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!is_null(model)) {
        if (!cJSON_IsString(model)) return bad(err, "model", "'%s' must be a string%s", NULL);
        if (!(r->model = dup_str(model->valuestring))) return oom(err);
    }
    const double NONE = NAN;
    if (refuse(root, "n", false, 1, "q35 makes one choice per request (n = 1)", err) ||
        refuse(root, "best_of", false, 1, "q35 makes one choice per request", err) ||
        refuse(root, "presence_penalty", false, 0, "use repetition_penalty (an extension)", err) ||
        refuse(root, "frequency_penalty", false, 0, "use repetition_penalty (an extension)", err) ||
        refuse(root, "logit_bias", false, NONE, "q35 does not bias logits", err) ||
        refuse(root, "top_logprobs", false, NONE, "log probabilities are not returned", err) ||
        refuse(root, "audio", false, NONE, "q35 is a text model", err) ||
        refuse(root, "prediction", false, NONE, "predicted outputs are not supported", err))
        return err->status;
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "logprobs");
    if (!is_null(lp) && !cJSON_IsFalse(lp) && !(cJSON_IsNumber(lp) && lp->valuedouble == 0))
        return srv_error_set(err, 400, INVALID, "logprobs", "unsupported_parameter",
                             "'logprobs' is not supported: log probabilities are not returned");
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(root, "modalities");
    if (cJSON_IsArray(mods)) {
        const cJSON *m;
        cJSON_ArrayForEach(
            m,
            mods) if (!cJSON_IsString(m) ||
                      strcmp(m->valuestring,
                             "text")) return srv_error_set(err, 400, INVALID, "modalities",
                                                           "unsupported_parameter",
                                                           "'modalities' may only hold \"text\"");
    }

    if (get_bool(root, "stream", &r->stream, NULL, err)) return err->status;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (!is_null(so)) {
        if (!cJSON_IsObject(so))
            return bad(err, "stream_options", "'%s' must be an object%s", NULL);
        if (get_bool(so, "include_usage", &r->include_usage, NULL, err)) {
            snprintf(err->param, sizeof err->param, "stream_options.include_usage");
            return err->status;
        }
    }
    if (read_sampling(root, lim, r, err)) return err->status;
    if (read_thinking(root, r, err)) return err->status;

    if (kind == SRV_COMPLETION) {
        if (refuse(root, "echo", true, NONE, "the prompt is not echoed", err) ||
            refuse(root, "suffix", false, NONE, "no fill-in-the-middle", err))
            return err->status;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1) p = cJSON_GetArrayItem(p, 0);
        if (!cJSON_IsString(p))
            return bad(err, "prompt", "'%s' must be a string (or an array of one string)%s", NULL);
        if (!(r->prompt = dup_str(p->valuestring))) return oom(err);
        r->sampling.thinking = false; /* a raw prompt: no think block is opened */
        return 0;
    }

    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) < 1)
        return bad(err, "messages", "'%s' must be a non-empty array of messages%s", NULL);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (!is_null(tools) && !cJSON_IsArray(tools))
        return bad(err, "tools", "'%s' must be an array%s", NULL);
    if (cJSON_IsArray(tools)) {
        const cJSON *t;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
            const cJSON *name =
                cJSON_IsObject(fn) ? cJSON_GetObjectItemCaseSensitive(fn, "name") : NULL;
            if (!cJSON_IsString(name) || !name->valuestring[0])
                return bad(err, "tools",
                           "each of '%s' must be {\"type\": \"function\", \"function\": {\"name\": "
                           "...}}%s",
                           NULL);
        }
    }
    if (read_tool_choice(root, r, err)) return err->status;
    r->parallel_tool_calls = true;
    if (get_bool(root, "parallel_tool_calls", &r->parallel_tool_calls, NULL, err))
        return err->status;
    if (read_response_format(root, r, err)) return err->status;
    q35_err qe = {0};
    if (q35_messages_from_json(body, len, &r->messages, &qe))
        return srv_error_set(err, 400, INVALID, "messages", NULL, "%s", qe.msg);
    return 0;
}

int srv_request_parse(const char *body, size_t len, srv_kind kind, const srv_limits *lim,
                      srv_request *out, srv_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    out->kind = kind;
    out->sampling = q35_sampling_default();
    out->sampling.thinking_budget = -1;
    if (!body || !len)
        return srv_error_set(err, 400, INVALID, NULL, NULL,
                             "the request has no body (JSON expected)");
    if (memchr(body, 0, len))
        return srv_error_set(err, 400, INVALID, NULL, NULL, "the request body holds a NUL byte");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t off = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return srv_error_set(err, 400, INVALID, NULL, NULL,
                             "the request body is not valid JSON (near byte %zu)", off);
    }
    int rc = 0;
    size_t used = end && end >= body && end <= body + len ? (size_t)(end - body) : len;
    while (used < len && strchr(" \t\r\n", body[used]))
        used++;
    if (used < len)
        rc = srv_error_set(err, 400, INVALID, NULL, NULL,
                           "the request body has bytes after its JSON value (at byte %zu)", used);
    else if (!cJSON_IsObject(root))
        rc = srv_error_set(err, 400, INVALID, NULL, NULL, "the request body must be a JSON object");
    else
        rc = parse_fields(root, body, len, kind, lim, out, err);
    cJSON_Delete(root);
    if (rc) srv_request_free(out);
    return rc;
}
