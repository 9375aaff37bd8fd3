/* chat_template.c — the Qwen3.5 chat format, rendered natively.
 *
 * This is the Jinja template published with Qwen3.5 checkpoints
 * (golden/tokenizer/chat_template.qwen35.jinja) written out in C, one step
 * per conditional of the template and in the template's order, so that any
 * conversation — not only the golden ones — renders to the bytes
 * transformers' apply_chat_template gives. Where the template calls a
 * Python string method (trim, split, lstrip, rstrip) or a filter (tojson,
 * string), the helpers below do what Python does, byte for byte.
 *
 * Besides the text, the renderer records which bytes came from the caller
 * (message content, reasoning, tool names, arguments, tool definitions) and
 * which it wrote itself, so that the prompt encoder can read control tokens
 * in the latter only (SPEC §5 safety).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "q35.h"
#include "text/pyjson.h"

/* ------------------------------------------------------------ output text */

typedef struct render_out {
    char *text;
    size_t len, cap;
    q35_text_span *spans;
    size_t n_spans, cap_spans;
    bool oom;
} render_out;

static void put(render_out *o, q35_text_kind kind, const char *s, size_t n) {
    if (o->oom || n == 0) return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                o->oom = true;
                return;
            }
            cap *= 2;
        }
        char *t = realloc(o->text, cap);
        if (!t) {
            o->oom = true;
            return;
        }
        o->text = t;
        o->cap = cap;
    }
    memcpy(o->text + o->len, s, n);
    if (o->n_spans && o->spans[o->n_spans - 1].kind == kind) {
        o->spans[o->n_spans - 1].len += n;
    } else {
        if (o->n_spans == o->cap_spans) {
            size_t cap = o->cap_spans ? o->cap_spans * 2 : 32;
            q35_text_span *t = realloc(o->spans, cap * sizeof *t);
            if (!t) {
                o->oom = true;
                return;
            }
            o->spans = t;
            o->cap_spans = cap;
        }
        o->spans[o->n_spans++] = (q35_text_span){o->len, n, kind};
    }
    o->len += n;
    o->text[o->len] = 0;
}

/* Template text (a literal of the template). */
static void tpl(render_out *o, const char *s) {
    put(o, Q35_TEXT_TEMPLATE, s, strlen(s));
}

/* A slice of caller-provided text. */
typedef struct slice {
    const char *s;
    size_t n;
} slice;

static void content(render_out *o, slice c) {
    put(o, Q35_TEXT_CONTENT, c.s, c.n);
}

static int content_sink(void *ud, const char *s, size_t n) {
    put(ud, Q35_TEXT_CONTENT, s, n);
    return 0;
}

/* ---------------------------------------------------- Python string methods */

static slice slice_of(const char *s) {
    return (slice){s ? s : "", s ? strlen(s) : 0};
}

/* Bytes of the whitespace character ending at s[n-1] / starting at s[0],
 * 0 if none. Whitespace is Python's str.isspace(): ASCII \t\n\v\f\r, the
 * separators \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000. */
static size_t ws_len_at(const unsigned char *s, size_t n) {
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20))) return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n >= 3) {
        if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;
        if (s[0] == 0xE2 && s[1] == 0x80 &&
            ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
            return 3;
        if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3;
        if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3;
    }
    return 0;
}

static size_t ws_len_before(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (ws_len_at(s + n - k, k) == k) return k;
    return 0;
}

/* Jinja's |trim, i.e. Python's str.strip(). */
static slice py_strip(slice c) {
    const unsigned char *s = (const unsigned char *)c.s;
    size_t a = 0, b = c.n, k;
    while (a < b && (k = ws_len_at(s + a, b - a)))
        a += k;
    while (b > a && (k = ws_len_before(s + a, b - a)))
        b -= k;
    return (slice){c.s + a, b - a};
}

static slice lstrip_newlines(slice c) {
    while (c.n && c.s[0] == '\n')
        c.s++, c.n--;
    return c;
}

static slice rstrip_newlines(slice c) {
    while (c.n && c.s[c.n - 1] == '\n')
        c.n--;
    return c;
}

/* Offset of the first / last occurrence of `w` in c, or -1. */
static long find_first(slice c, const char *w) {
    size_t m = strlen(w);
    for (size_t i = 0; i + m <= c.n; i++)
        if (memcmp(c.s + i, w, m) == 0) return (long)i;
    return -1;
}

static long find_last(slice c, const char *w) {
    size_t m = strlen(w);
    for (size_t i = c.n; i >= m; i--)
        if (memcmp(c.s + i - m, w, m) == 0) return (long)(i - m);
    return -1;
}

static bool starts_with(slice c, const char *w) {
    size_t m = strlen(w);
    return c.n >= m && memcmp(c.s, w, m) == 0;
}

static bool ends_with(slice c, const char *w) {
    size_t m = strlen(w);
    return c.n >= m && memcmp(c.s + c.n - m, w, m) == 0;
}

static bool role_is(const q35_message *m, const char *role) {
    return m->role && strcmp(m->role, role) == 0;
}

/* ------------------------------------------------------------ the template */

static const char TOOLS_HEAD[] = "<|im_start|>system\n# Tools\n\nYou have access to the following "
                                 "functions:\n\n<tools>";

static const char TOOLS_TAIL[] =
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO "
    "suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\n"
    "value_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second "
    "parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n"
    "<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner "
    "<function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- "
    "Required parameters MUST be specified\n- You may provide optional reasoning for your "
    "function call in natural language BEFORE the function call, but NOT after\n- If there is "
    "no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>";

/* {%- if tools and tools is iterable and tools is not mapping %} ... the
 * system turn with the tool list, the system message appended when it is
 * first and not empty after trimming. */
static void render_tools_system(render_out *o, const q35_pyjson *tools, const q35_message *msgs) {
    tpl(o, TOOLS_HEAD);
    for (size_t i = 0; i < tools->n; i++) {
        tpl(o, "\n");
        q35_pyjson_dump(&tools->items[i], content_sink, o); /* tool | tojson */
    }
    tpl(o, TOOLS_TAIL);
    if (role_is(&msgs[0], "system")) {
        slice c = py_strip(slice_of(msgs[0].content));
        if (c.n) {
            tpl(o, "\n\n");
            content(o, c);
        }
    }
    tpl(o, "<|im_end|>\n");
}

/* The index of the last user message that is a real query, not a wrapped
 * tool response (the template's ns.last_query_index); -1 when none. */
static long last_query_index(const q35_message *msgs, size_t n) {
    for (size_t k = n; k-- > 0;) {
        if (!role_is(&msgs[k], "user")) continue;
        slice c = py_strip(slice_of(msgs[k].content));
        if (!(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>")))
            return (long)k;
    }
    return -1;
}

/* One tool call of an assistant message: the <tool_call> block with one
 * <parameter=...> block per member of the arguments object. */
static int render_tool_call(render_out *o, const q35_tool_call *tc, size_t msg_i, size_t call_i,
                            bool first, slice answer, q35_err *e) {
    if (!tc->name)
        return q35_err_set(e, Q35_EINVAL, "message %zu: tool call %zu has no function name", msg_i,
                           call_i);
    if (first)
        tpl(o, py_strip(answer).n ? "\n\n<tool_call>\n<function=" : "<tool_call>\n<function=");
    else
        tpl(o, "\n<tool_call>\n<function=");
    content(o, slice_of(tc->name));
    tpl(o, ">\n");
    if (tc->arguments_json) {
        char what[96];
        snprintf(what, sizeof what, "message %zu: tool call %zu arguments", msg_i, call_i);
        q35_pyjson_doc *d =
            q35_pyjson_parse(tc->arguments_json, strlen(tc->arguments_json), what, e);
        if (!d) return e ? e->code : Q35_EFORMAT;
        const q35_pyjson *args = q35_pyjson_root(d);
        if (args->type != Q35_PYJSON_OBJECT) {
            const char *type = q35_pyjson_type_name(args->type);
            q35_pyjson_free(d);
            return q35_err_set(e, Q35_EINVAL, "%s: expected a JSON object, got %s", what, type);
        }
        for (size_t k = 0; k < args->n; k++) {
            const q35_pyjson *v = &args->items[k];
            tpl(o, "<parameter=");
            content(o, (slice){args->keys[k].s, args->keys[k].len});
            tpl(o, ">\n");
            /* mapping or non-string sequence: tojson; anything else: |string */
            if (v->type == Q35_PYJSON_OBJECT || v->type == Q35_PYJSON_ARRAY)
                q35_pyjson_dump(v, content_sink, o);
            else
                q35_pyjson_str(v, content_sink, o);
            tpl(o, "\n</parameter>\n");
        }
        q35_pyjson_free(d);
    }
    tpl(o, "</function>\n</tool_call>");
    return 0;
}

static int render_assistant(render_out *o, const q35_message *m, size_t i, long last_query,
                            q35_err *e) {
    slice answer = py_strip(slice_of(m->content));
    slice reasoning = {"", 0};
    if (m->reasoning_content) {
        reasoning = slice_of(m->reasoning_content);
    } else if (find_first(answer, "</think>") >= 0) {
        /* content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
        slice before = {answer.s, (size_t)find_first(answer, "</think>")};
        before = rstrip_newlines(before);
        long open = find_last(before, "<think>");
        if (open >= 0) {
            size_t skip = (size_t)open + strlen("<think>");
            before = (slice){before.s + skip, before.n - skip};
        }
        reasoning = lstrip_newlines(before);
        /* content.split('</think>')[-1].lstrip('\n') */
        size_t after = (size_t)find_last(answer, "</think>") + strlen("</think>");
        answer = lstrip_newlines((slice){answer.s + after, answer.n - after});
    }
    reasoning = py_strip(reasoning);

    if ((long)i > last_query) {
        tpl(o, "<|im_start|>assistant\n<think>\n");
        content(o, reasoning);
        tpl(o, "\n</think>\n\n");
    } else {
        tpl(o, "<|im_start|>assistant\n");
    }
    content(o, answer);
    if (m->n_tool_calls && !m->tool_calls)
        return q35_err_set(e, Q35_EINVAL, "message %zu: n_tool_calls is %zu but tool_calls is NULL",
                           i, m->n_tool_calls);
    for (size_t k = 0; k < m->n_tool_calls; k++) {
        int rc = render_tool_call(o, &m->tool_calls[k], i, k, k == 0, answer, e);
        if (rc) return rc;
    }
    tpl(o, "<|im_end|>\n");
    return 0;
}

/* Consecutive tool messages share one user turn, each in its own
 * <tool_response> block. */
static void render_tool(render_out *o, const q35_message *msgs, size_t n, size_t i) {
    if (i > 0 && !role_is(&msgs[i - 1], "tool")) tpl(o, "<|im_start|>user");
    tpl(o, "\n<tool_response>\n");
    content(o, py_strip(slice_of(msgs[i].content)));
    tpl(o, "\n</tool_response>");
    if (i + 1 == n || !role_is(&msgs[i + 1], "tool")) tpl(o, "<|im_end|>\n");
}

q35_chat_opts q35_chat_opts_default(void) {
    return (q35_chat_opts){.add_generation_prompt = true, .enable_thinking = true};
}

static int render(render_out *o, const q35_message *msgs, size_t n, const q35_chat_opts *opts,
                  const q35_pyjson *tools, q35_err *e) {
    if (n == 0) return q35_err_set(e, Q35_EINVAL, "chat template: no messages provided");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role) return q35_err_set(e, Q35_EINVAL, "message %zu: no role", i);

    if (tools && tools->n) {
        render_tools_system(o, tools, msgs);
    } else if (role_is(&msgs[0], "system")) {
        tpl(o, "<|im_start|>system\n");
        content(o, py_strip(slice_of(msgs[0].content)));
        tpl(o, "<|im_end|>\n");
    }

    long last_query = last_query_index(msgs, n);
    if (last_query < 0)
        return q35_err_set(e, Q35_EINVAL,
                           "chat template: no user query found in messages (the template needs "
                           "a user message that is not only a <tool_response>)");

    for (size_t i = 0; i < n; i++) {
        const q35_message *m = &msgs[i];
        if (role_is(m, "system")) {
            if (i != 0)
                return q35_err_set(e, Q35_EINVAL,
                                   "message %zu: a system message must be the first message", i);
        } else if (role_is(m, "user")) {
            tpl(o, "<|im_start|>user\n");
            content(o, py_strip(slice_of(m->content)));
            tpl(o, "<|im_end|>\n");
        } else if (role_is(m, "assistant")) {
            int rc = render_assistant(o, m, i, last_query, e);
            if (rc) return rc;
        } else if (role_is(m, "tool")) {
            render_tool(o, msgs, n, i);
        } else {
            return q35_err_set(e, Q35_EINVAL,
                               "message %zu: unexpected role '%.64s' (expected system, user, "
                               "assistant or tool)",
                               i, m->role);
        }
    }

    if (opts->add_generation_prompt) {
        tpl(o, "<|im_start|>assistant\n");
        tpl(o, opts->enable_thinking ? "<think>\n" : "<think>\n\n</think>\n\n");
    }
    return 0;
}

int q35_chat_render(const q35_message *msgs, size_t n, const q35_chat_opts *opts, q35_prompt *out,
                    q35_err *e) {
    if (!out) return q35_err_set(e, Q35_EINVAL, "q35_chat_render: NULL output");
    memset(out, 0, sizeof *out);
    if (!msgs && n) return q35_err_set(e, Q35_EINVAL, "q35_chat_render: NULL messages");
    q35_chat_opts defaults = q35_chat_opts_default();
    if (!opts) opts = &defaults;

    q35_pyjson_doc *tools_doc = NULL;
    const q35_pyjson *tools = NULL;
    if (opts->tools_json) {
        tools_doc = q35_pyjson_parse(opts->tools_json, strlen(opts->tools_json), "tools", e);
        if (!tools_doc) return e ? e->code : Q35_EFORMAT;
        tools = q35_pyjson_root(tools_doc);
        if (tools->type == Q35_PYJSON_NULL) {
            tools = NULL;
        } else if (tools->type != Q35_PYJSON_ARRAY) {
            const char *type = q35_pyjson_type_name(tools->type);
            q35_pyjson_free(tools_doc);
            return q35_err_set(e, Q35_EINVAL, "tools: expected a JSON array, got %s", type);
        }
    }

    render_out o = {0};
    int rc = render(&o, msgs, n, opts, tools, e);
    q35_pyjson_free(tools_doc);
    if (!rc && o.oom) rc = q35_err_set(e, Q35_ENOMEM, "chat template: out of memory");
    if (!rc && !o.text) { /* cannot happen: every conversation renders something */
        o.text = calloc(1, 1);
        if (!o.text) rc = q35_err_set(e, Q35_ENOMEM, "chat template: out of memory");
    }
    if (rc) {
        free(o.text);
        free(o.spans);
        return rc;
    }
    out->text = o.text;
    out->len = o.len;
    out->spans = o.spans;
    out->n_spans = o.n_spans;
    return 0;
}

void q35_prompt_free(q35_prompt *p) {
    if (!p) return;
    free(p->text);
    free(p->spans);
    memset(p, 0, sizeof *p);
}

bool q35_chat_template_is_native(const char *jinja, size_t len) {
    static const char *const markers[] = {"<|im_start|>", "<|im_end|>", "<think>",
                                          "<tool_call>",  "<function=", "<parameter="};
    if (!jinja) return false;
    slice t = {jinja, len};
    for (size_t i = 0; i < sizeof markers / sizeof *markers; i++)
        if (find_first(t, markers[i]) < 0) return false;
    return true;
}
