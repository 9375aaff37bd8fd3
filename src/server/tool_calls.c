/* tool_calls.c — the streaming parser of Qwen3.5 XML tool calls (see
 * tool_calls.h): a small state machine over a buffer of text not yet
 * decided. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "server/tool_calls.h"

#define MAX_TAG 512 /* a function or parameter name longer than this is not one */

typedef enum { S_CONTENT, S_CALL, S_FUNC, S_PARAM, S_AFTER } pstate;

struct srv_tool_parser {
    srv_tool_sink sink;
    cJSON *tools;
    pstate st;
    char *buf;
    size_t n, cap;
    char name[MAX_TAG + 1];  /* the current function */
    char param[MAX_TAG + 1]; /* the current parameter */
    int index, n_params, n_calls;
    bool after_call; /* content right after a call: its leading whitespace is dropped */
};

static const char OPEN[] = "<tool_call>", CLOSE[] = "</tool_call>";
static const char FUNC[] = "<function=", FUNC_END[] = "</function>";
static const char PARAM[] = "<parameter=", PARAM_END[] = "</parameter>";

srv_tool_parser *srv_tool_parser_new(const char *tools_json, const srv_tool_sink *sink) {
    srv_tool_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->sink = *sink;
    if (tools_json) p->tools = cJSON_Parse(tools_json);
    return p;
}

void srv_tool_parser_free(srv_tool_parser *p) {
    if (!p) return;
    cJSON_Delete(p->tools);
    free(p->buf);
    free(p);
}

int srv_tool_parser_n_calls(const srv_tool_parser *p) {
    return p->n_calls;
}

static void consume(srv_tool_parser *p, size_t k) {
    if (!k) return; /* buf may still be NULL */
    memmove(p->buf, p->buf + k, p->n - k);
    p->n -= k;
}

static bool starts(const srv_tool_parser *p, const char *tag) {
    size_t t = strlen(tag);
    return p->n >= t && !memcmp(p->buf, tag, t);
}

/* buf is a proper prefix of tag (more text may complete it) */
static bool partial(const srv_tool_parser *p, const char *tag) {
    size_t t = strlen(tag);
    return p->n < t && !memcmp(p->buf, tag, p->n);
}

static void skip_space(srv_tool_parser *p) {
    size_t i = 0;
    while (i < p->n && isspace((unsigned char)p->buf[i]))
        i++;
    consume(p, i);
}

static size_t find(const srv_tool_parser *p, size_t from, const char *tag) {
    size_t t = strlen(tag);
    for (size_t i = from; i + t <= p->n; i++)
        if (!memcmp(p->buf + i, tag, t)) return i;
    return (size_t)-1;
}

/* The schema type of parameter `key` of function `fn`, or NULL. */
static const char *param_type(const srv_tool_parser *p, const char *fn, const char *key) {
    const cJSON *t;
    cJSON_ArrayForEach(t, p->tools) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (!f) f = t;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, fn)) continue;
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(f, "parameters"), "properties");
        const cJSON *type =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(props, key), "type");
        if (cJSON_IsString(type)) return type->valuestring;
        if (cJSON_IsArray(type)) { /* ["integer", "null"]: the first that is not null */
            const cJSON *x;
            cJSON_ArrayForEach(x, type) if (cJSON_IsString(x) &&
                                            strcmp(x->valuestring, "null")) return x->valuestring;
        }
        return NULL;
    }
    return NULL;
}

/* The value text as JSON, by the schema type; caller frees. */
static char *value_json(const char *type, const char *v) {
    cJSON *parsed = NULL;
    if (!type || strcmp(type, "string")) {
        parsed = cJSON_Parse(v);
        bool fits = parsed != NULL;
        if (fits && type) {
            if (!strcmp(type, "integer"))
                fits = cJSON_IsNumber(parsed) && floor(parsed->valuedouble) == parsed->valuedouble;
            else if (!strcmp(type, "number"))
                fits = cJSON_IsNumber(parsed);
            else if (!strcmp(type, "boolean"))
                fits = cJSON_IsBool(parsed);
            else if (!strcmp(type, "object"))
                fits = cJSON_IsObject(parsed);
            else if (!strcmp(type, "array"))
                fits = cJSON_IsArray(parsed);
            else if (!strcmp(type, "null"))
                fits = cJSON_IsNull(parsed);
        }
        if (!fits && type && !strcmp(type, "boolean")) { /* Python's str(True) */
            cJSON_Delete(parsed);
            parsed = !strcasecmp(v, "true")    ? cJSON_CreateTrue()
                     : !strcasecmp(v, "false") ? cJSON_CreateFalse()
                                               : NULL;
            fits = parsed != NULL;
        }
        if (!fits) {
            cJSON_Delete(parsed);
            parsed = NULL;
        }
    }
    if (!parsed) parsed = cJSON_CreateString(v);
    char *out = parsed ? cJSON_PrintUnformatted(parsed) : NULL;
    cJSON_Delete(parsed);
    return out;
}

static int emit_param(srv_tool_parser *p, const char *v, size_t len) {
    /* the template writes "\n" + value + "\n" between the tags */
    if (len && v[0] == '\n') v++, len--;
    if (len && v[len - 1] == '\n') len--;
    char *text = malloc(len + 1);
    cJSON *key = cJSON_CreateString(p->param);
    char *k = key ? cJSON_PrintUnformatted(key) : NULL;
    cJSON_Delete(key);
    if (!text || !k) {
        free(text);
        free(k);
        return -1;
    }
    memcpy(text, v, len);
    text[len] = 0;
    char *val = value_json(param_type(p, p->name, p->param), text);
    free(text);
    if (!val) {
        free(k);
        return -1;
    }
    size_t need = strlen(k) + strlen(val) + 8;
    char *piece = malloc(need);
    if (!piece) {
        free(k);
        free(val);
        return -1;
    }
    int n = snprintf(piece, need, "%s%s: %s", p->n_params ? ", " : "{", k, val);
    p->n_params++;
    if (p->sink.call_args) p->sink.call_args(p->sink.ud, p->index, piece, (size_t)n);
    free(piece);
    free(k);
    free(val);
    return 0;
}

static void end_call(srv_tool_parser *p) {
    const char *close = p->n_params ? "}" : "{}";
    if (p->sink.call_args) p->sink.call_args(p->sink.ud, p->index, close, strlen(close));
    if (p->sink.call_end) p->sink.call_end(p->sink.ud, p->index);
    p->index++;
    p->n_calls++;
    p->after_call = true;
}

static void content(srv_tool_parser *p, size_t k) {
    size_t i = 0;
    if (p->after_call) {
        while (i < k && isspace((unsigned char)p->buf[i]))
            i++;
        if (i < k) p->after_call = false;
    }
    if (k > i && p->sink.content) p->sink.content(p->sink.ud, p->buf + i, k - i);
    consume(p, k);
}

/* Reads a "<tag=NAME>" at the start of buf into out: 1 done, 0 need more,
 * -1 not one. */
static int read_named(srv_tool_parser *p, const char *tag, char *out) {
    size_t t = strlen(tag);
    size_t gt = find(p, t, ">");
    if (gt == (size_t)-1) return p->n - t > MAX_TAG ? -1 : 0;
    if (gt - t > MAX_TAG || gt == t) return -1;
    memcpy(out, p->buf + t, gt - t);
    out[gt - t] = 0;
    consume(p, gt + 1);
    return 1;
}

/* Runs the machine over what is buffered; `final` when no text will come. */
static int step(srv_tool_parser *p, bool final) {
    for (;;) {
        switch (p->st) {
        case S_CONTENT: {
            size_t i = find(p, 0, OPEN);
            if (i != (size_t)-1) {
                content(p, i);
                consume(p, strlen(OPEN));
                p->st = S_CALL;
                continue;
            }
            size_t keep = 0; /* the longest tail that may start "<tool_call>" */
            for (size_t k = strlen(OPEN) - 1; k > 0; k--)
                if (p->n >= k && !memcmp(p->buf + p->n - k, OPEN, k)) {
                    keep = k;
                    break;
                }
            /* at the end, a tail of two or more bytes of the tag is taken
             * for a call cut off as it began: dropped, not shown */
            if (final && keep < 2) keep = 0;
            content(p, p->n - keep);
            if (final) p->n = 0;
            return 0;
        }
        case S_CALL:
            skip_space(p);
            if (!p->n) return 0;
            if (starts(p, FUNC)) {
                int r = read_named(p, FUNC, p->name);
                if (r == 0) return 0;
                if (r < 0) {
                    consume(p, 1);
                    continue;
                }
                p->n_params = 0;
                if (p->sink.call_begin) p->sink.call_begin(p->sink.ud, p->index, p->name);
                p->st = S_FUNC;
                continue;
            }
            if (starts(p, CLOSE)) { /* an empty call */
                consume(p, strlen(CLOSE));
                p->st = S_CONTENT;
                continue;
            }
            if (partial(p, FUNC) || partial(p, CLOSE)) return 0;
            consume(p, 1); /* not a call's syntax: dropped, never shown */
            continue;
        case S_FUNC:
            skip_space(p);
            if (!p->n) return 0;
            if (starts(p, PARAM)) {
                int r = read_named(p, PARAM, p->param);
                if (r == 0) return 0;
                if (r < 0) {
                    consume(p, 1);
                    continue;
                }
                p->st = S_PARAM;
                continue;
            }
            if (starts(p, FUNC_END)) {
                consume(p, strlen(FUNC_END));
                end_call(p);
                p->st = S_AFTER;
                continue;
            }
            if (starts(p, CLOSE)) { /* </function> left out */
                end_call(p);
                consume(p, strlen(CLOSE));
                p->st = S_CONTENT;
                continue;
            }
            if (partial(p, PARAM) || partial(p, FUNC_END) || partial(p, CLOSE)) return 0;
            consume(p, 1);
            continue;
        case S_PARAM: {
            size_t a = find(p, 0, PARAM_END), b = find(p, 0, FUNC_END);
            size_t i = a < b ? a : b;
            if (i == (size_t)-1) return 0;
            if (emit_param(p, p->buf, i)) return -1;
            consume(p, i == a ? i + strlen(PARAM_END) : i);
            p->st = S_FUNC;
            continue;
        }
        case S_AFTER:
            skip_space(p);
            if (!p->n) return 0;
            if (starts(p, CLOSE)) {
                consume(p, strlen(CLOSE));
                p->st = S_CONTENT;
                continue;
            }
            if (partial(p, CLOSE)) return 0;
            p->st = S_CONTENT;
            continue;
        }
    }
}

int srv_tool_parser_feed(srv_tool_parser *p, const char *text, size_t len) {
    if (p->n + len + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->n + len + 1)
            cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b) return -1;
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->n, text, len);
    p->n += len;
    return step(p, false);
}

int srv_tool_parser_finish(srv_tool_parser *p) {
    int rc = step(p, true);
    switch (p->st) {
    case S_FUNC:
    case S_PARAM: /* cut off: the complete parameters so far, closed */ end_call(p); break;
    default: break;
    }
    p->n = 0;
    p->st = S_CONTENT;
    return rc;
}
