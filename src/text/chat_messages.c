/* chat_messages.c — OpenAI-style messages JSON into q35_message values.
 *
 * The CLI (`q35 template --messages`) and the HTTP server receive the
 * conversation as JSON; this turns it into the renderer's data model. JSON
 * is read with pyjson (Python's reading of it: key order, repeated keys,
 * int vs float) because tool-call arguments are printed back by the
 * template, and must come out as transformers prints them.
 *
 * Each field is read the way the template reads it, and where the template
 * would print something meaningless or raise, this refuses with an error
 * naming the message and field (see q35_messages_from_json in q35.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "q35.h"
#include "text/pyjson.h"

/* Every allocation behind a q35_message_list, freed together. */
typedef struct storage {
    void **ptrs;
    size_t n, cap;
} storage;

static void *store(storage *st, void *p) {
    if (!p) return NULL;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        void **t = realloc(st->ptrs, cap * sizeof *t);
        if (!t) {
            free(p);
            return NULL;
        }
        st->ptrs = t;
        st->cap = cap;
    }
    st->ptrs[st->n++] = p;
    return p;
}

static char *store_copy(storage *st, const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return store(st, p);
}

typedef struct reader {
    const char *json;
    storage *st;
    q35_err *e;
} reader;

static int oom(reader *r) {
    return q35_err_set(r->e, Q35_ENOMEM, "messages JSON: out of memory");
}

/* A JSON string as a C string: refused when it holds NUL, which a C string
 * cannot carry (and no real message needs). */
static int take_string(reader *r, const q35_pyjson *v, const char *field, size_t i,
                       const char **out) {
    if (strlen(v->str) != v->len)
        return q35_err_set(r->e, Q35_EINVAL, "messages[%zu].%s: contains a NUL character", i,
                           field);
    *out = store_copy(r->st, v->str, v->len);
    return *out ? 0 : oom(r);
}

/* The template's render_content(): a string as is, null or absent as "",
 * a list of parts concatenated. Images and videos would render as vision
 * placeholders with no pixels behind them in a text-only engine: refused. */
static int read_content(reader *r, const q35_pyjson *c, size_t i, const char **out) {
    *out = NULL;
    if (!c || c->type == Q35_PYJSON_NULL) return 0;
    if (c->type == Q35_PYJSON_STRING) return take_string(r, c, "content", i, out);
    if (c->type != Q35_PYJSON_ARRAY)
        return q35_err_set(r->e, Q35_EINVAL,
                           "messages[%zu].content: expected a string, an array of parts or null, "
                           "got %s",
                           i, q35_pyjson_type_name(c->type));
    size_t total = 0;
    for (size_t k = 0; k < c->n; k++) {
        const q35_pyjson *part = &c->items[k], *type = q35_pyjson_get(part, "type");
        if (part->type != Q35_PYJSON_OBJECT)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].content[%zu]: expected an object, got %s", i, k,
                               q35_pyjson_type_name(part->type));
        bool typed_image = type && type->type == Q35_PYJSON_STRING && !strcmp(type->str, "image");
        bool typed_video = type && type->type == Q35_PYJSON_STRING && !strcmp(type->str, "video");
        if (q35_pyjson_get(part, "image") || q35_pyjson_get(part, "image_url") || typed_image ||
            q35_pyjson_get(part, "video") || typed_video)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].content[%zu]: images and videos are not supported "
                               "(text-only engine)",
                               i, k);
        const q35_pyjson *text = q35_pyjson_get(part, "text");
        if (!text)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].content[%zu]: unexpected part (no \"text\")", i, k);
        if (text->type != Q35_PYJSON_STRING)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].content[%zu].text: expected a string, got %s", i, k,
                               q35_pyjson_type_name(text->type));
        if (strlen(text->str) != text->len)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].content[%zu].text: contains a NUL character", i, k);
        total += text->len;
    }
    char *s = store(r->st, malloc(total + 1));
    if (!s) return oom(r);
    size_t n = 0;
    for (size_t k = 0; k < c->n; k++) {
        const q35_pyjson *text = q35_pyjson_get(&c->items[k], "text");
        memcpy(s + n, text->str, text->len);
        n += text->len;
    }
    s[n] = 0;
    *out = s;
    return 0;
}

/* Arguments as the template iterates them (|items): an object. OpenAI
 * sends them as a string holding the object's JSON, which is accepted when
 * it parses to an object. */
static int read_arguments(reader *r, const q35_pyjson *a, size_t i, size_t k, const char **out) {
    *out = NULL;
    if (!a || a->type == Q35_PYJSON_NULL) return 0;
    if (a->type == Q35_PYJSON_OBJECT) {
        *out = store_copy(r->st, r->json + a->src_off, a->src_len);
        return *out ? 0 : oom(r);
    }
    if (a->type == Q35_PYJSON_STRING) {
        char what[96];
        snprintf(what, sizeof what, "messages[%zu].tool_calls[%zu].function.arguments", i, k);
        q35_pyjson_doc *d = q35_pyjson_parse(a->str, a->len, what, r->e);
        if (!d) return r->e ? r->e->code : Q35_EFORMAT;
        q35_pyjson_type t = q35_pyjson_root(d)->type;
        q35_pyjson_free(d);
        if (t != Q35_PYJSON_OBJECT)
            return q35_err_set(r->e, Q35_EINVAL, "%s: the string holds JSON %s, not an object",
                               what, q35_pyjson_type_name(t));
        return take_string(r, a, "tool_calls[].function.arguments", i, out);
    }
    return q35_err_set(r->e, Q35_EINVAL,
                       "messages[%zu].tool_calls[%zu].function.arguments: expected an object or "
                       "a JSON string of one, got %s",
                       i, k, q35_pyjson_type_name(a->type));
}

static int read_tool_calls(reader *r, const q35_pyjson *tcs, size_t i, q35_message *m) {
    if (!tcs || tcs->type == Q35_PYJSON_NULL) return 0;
    if (tcs->type != Q35_PYJSON_ARRAY)
        return q35_err_set(r->e, Q35_EINVAL, "messages[%zu].tool_calls: expected an array, got %s",
                           i, q35_pyjson_type_name(tcs->type));
    if (!tcs->n) return 0;
    q35_tool_call *calls = store(r->st, calloc(tcs->n, sizeof *calls));
    if (!calls) return oom(r);
    for (size_t k = 0; k < tcs->n; k++) {
        const q35_pyjson *tc = &tcs->items[k];
        if (tc->type != Q35_PYJSON_OBJECT)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].tool_calls[%zu]: expected an object, got %s", i, k,
                               q35_pyjson_type_name(tc->type));
        /* {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %} */
        const q35_pyjson *f = q35_pyjson_get(tc, "function");
        if (f && f->type != Q35_PYJSON_OBJECT)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].tool_calls[%zu].function: expected an object, got %s",
                               i, k, q35_pyjson_type_name(f->type));
        if (!f) f = tc;
        const q35_pyjson *name = q35_pyjson_get(f, "name");
        if (!name || name->type != Q35_PYJSON_STRING)
            return q35_err_set(r->e, Q35_EINVAL,
                               "messages[%zu].tool_calls[%zu]: the function name must be a string",
                               i, k);
        int rc = take_string(r, name, "tool_calls[].function.name", i, &calls[k].name);
        if (!rc)
            rc = read_arguments(r, q35_pyjson_get(f, "arguments"), i, k, &calls[k].arguments_json);
        if (rc) return rc;
    }
    m->tool_calls = calls;
    m->n_tool_calls = tcs->n;
    return 0;
}

static int read_message(reader *r, const q35_pyjson *v, size_t i, q35_message *m) {
    if (v->type != Q35_PYJSON_OBJECT)
        return q35_err_set(r->e, Q35_EINVAL, "messages[%zu]: expected an object, got %s", i,
                           q35_pyjson_type_name(v->type));
    const q35_pyjson *role = q35_pyjson_get(v, "role");
    if (!role) return q35_err_set(r->e, Q35_EINVAL, "messages[%zu]: no \"role\"", i);
    if (role->type != Q35_PYJSON_STRING)
        return q35_err_set(r->e, Q35_EINVAL, "messages[%zu].role: expected a string, got %s", i,
                           q35_pyjson_type_name(role->type));
    int rc = take_string(r, role, "role", i, &m->role);
    if (!rc) rc = read_content(r, q35_pyjson_get(v, "content"), i, &m->content);
    if (rc) return rc;
    /* {%- if message.reasoning_content is string %}: anything else is ignored */
    const q35_pyjson *rc_v = q35_pyjson_get(v, "reasoning_content");
    if (rc_v && rc_v->type == Q35_PYJSON_STRING)
        if ((rc = take_string(r, rc_v, "reasoning_content", i, &m->reasoning_content))) return rc;
    return read_tool_calls(r, q35_pyjson_get(v, "tool_calls"), i, m);
}

void q35_message_list_free(q35_message_list *l) {
    if (!l) return;
    storage *st = l->priv;
    if (st) {
        for (size_t i = 0; i < st->n; i++)
            free(st->ptrs[i]);
        free(st->ptrs);
        free(st);
    }
    memset(l, 0, sizeof *l);
}

int q35_messages_from_json(const char *json, size_t len, q35_message_list *out, q35_err *e) {
    if (!out) return q35_err_set(e, Q35_EINVAL, "q35_messages_from_json: NULL output");
    memset(out, 0, sizeof *out);
    q35_pyjson_doc *doc = q35_pyjson_parse(json, len, "messages JSON", e);
    if (!doc) return e ? e->code : Q35_EFORMAT;
    storage *st = calloc(1, sizeof *st);
    if (!st) {
        q35_pyjson_free(doc);
        return q35_err_set(e, Q35_ENOMEM, "messages JSON: out of memory");
    }
    out->priv = st;
    reader r = {json, st, e};
    const q35_pyjson *root = q35_pyjson_root(doc), *msgs = root;
    int rc = 0;
    if (root->type == Q35_PYJSON_OBJECT) {
        msgs = q35_pyjson_get(root, "messages");
        const q35_pyjson *tools = q35_pyjson_get(root, "tools");
        if (!msgs || msgs->type != Q35_PYJSON_ARRAY) {
            rc = q35_err_set(e, Q35_EINVAL, "messages JSON: the object has no \"messages\" array");
        } else if (tools && tools->type != Q35_PYJSON_NULL) {
            if (tools->type != Q35_PYJSON_ARRAY)
                rc = q35_err_set(e, Q35_EINVAL, "messages JSON: \"tools\" must be an array, got %s",
                                 q35_pyjson_type_name(tools->type));
            else if (!(out->tools_json = store_copy(st, json + tools->src_off, tools->src_len)))
                rc = oom(&r);
        }
    } else if (root->type != Q35_PYJSON_ARRAY) {
        rc = q35_err_set(e, Q35_EINVAL,
                         "messages JSON: expected an array of messages or an object with "
                         "\"messages\", got %s",
                         q35_pyjson_type_name(root->type));
    }
    if (!rc && msgs->n) {
        out->items = store(st, calloc(msgs->n, sizeof *out->items));
        if (!out->items) rc = oom(&r);
    }
    for (size_t i = 0; !rc && i < msgs->n; i++)
        rc = read_message(&r, &msgs->items[i], i, &out->items[i]);
    if (!rc) out->n = msgs->n;
    q35_pyjson_free(doc);
    if (rc) q35_message_list_free(out);
    return rc;
}
