/* tool_call.c — the grammar of Qwen3.5 tool calls, as the chat template
 * prints them:
 *   <tool_call>\n<function=NAME>\n
 *   <parameter=KEY>\nVALUE\n</parameter>\n ...
 *   </function>\n</tool_call>
 * one or more, separated by "\n". Parameters come in the order of the
 * function's "parameters" schema, required ones always, optional ones
 * maybe, no others. A string-typed value is raw text, as the template
 * prints strings (no '<' and no control character, so it cannot close the block or
 * be trimmed by a parser; enums and formats as their exact text); any
 * other value is JSON text valid under its schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraint/schema.h"
#include "constraint/schema_conv.h"
#include "core/err.h"

static const char *const PARAM_KEYWORDS[] = {
    "type",    "properties",  "required", "additionalProperties",
    "$defs",   "definitions", "title",    "description",
    "$schema", "$comment",    "strict",   NULL};

static bool listed(const char *const *l, const char *s) {
    for (; *l; l++)
        if (!strcmp(*l, s)) return true;
    return false;
}

static bool is_plain_string_schema(const cJSON *s) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    return cJSON_IsString(t) && !strcmp(t->valuestring, "string");
}

/* The raw-text value of a string parameter into rhs. */
static int raw_string(schema_conv *c, const cJSON *s, const char *path, gtext *rhs, q35_err *e) {
    static const char *const ok[] = {"type",    "minLength", "maxLength", "enum",
                                     "const",   "format",    "title",     "description",
                                     "default", "examples",  NULL};
    const cJSON *it;
    cJSON_ArrayForEach(it, s) {
        if (!listed(ok, it->string))
            return q35_err_set(e, Q35_EINVAL,
                               "tool call: keyword '%s' on a string parameter is not supported "
                               "at %s/%s",
                               it->string, path, it->string);
    }
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (en || cn) {
        int n = 0;
        for (const cJSON *v = en ? en->child : cn; v; v = en ? v->next : NULL) {
            if (!cJSON_IsString(v)) continue;
            if (strchr(v->valuestring, '<') || strchr(v->valuestring, '\n'))
                return q35_err_set(e, Q35_EINVAL,
                                   "tool call: an enum string with '<' or a newline at %s", path);
            if (n++) gt_put(rhs, " | ");
            gt_literal(rhs, v->valuestring, strlen(v->valuestring));
        }
        if (!n)
            return q35_err_set(e, Q35_EINVAL, "tool call: no string enum/const value at %s", path);
        return Q35_OK;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
    if (fmt) {
        const char *rule =
            cJSON_IsString(fmt) ? schema_conv_format_rule(c, fmt->valuestring) : NULL;
        if (!rule)
            return q35_err_set(e, Q35_EINVAL, "tool call: unsupported format at %s/format", path);
        gt_put(rhs, rule);
        return Q35_OK;
    }
    long lo = 0, hi = -1;
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(s, "minLength");
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
    if (cJSON_IsNumber(mn) && mn->valuedouble >= 0 && mn->valuedouble <= 100000)
        lo = (long)mn->valuedouble;
    if (cJSON_IsNumber(mx) && mx->valuedouble >= 0 && mx->valuedouble <= 100000)
        hi = (long)mx->valuedouble;
    if ((mn && !cJSON_IsNumber(mn)) || (mx && !cJSON_IsNumber(mx)) || (hi >= 0 && hi < lo))
        return q35_err_set(e, Q35_EINVAL, "tool call: bad minLength/maxLength at %s", path);
    if (hi < 0)
        gt_printf(rhs, "[^<\\x00-\\x1F]{%ld,}", lo);
    else
        gt_printf(rhs, "[^<\\x00-\\x1F]{%ld,%ld}", lo, hi);
    return Q35_OK;
}

/* The rule of one function's call body into name[32]. */
static int function_rule(schema_conv *c, const cJSON *fn, const char *path, gtext *out, int index,
                         q35_err *e) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    if (!cJSON_IsString(name) || !*name->valuestring)
        return q35_err_set(e, Q35_EINVAL, "tool call: no function name at %s/name", path);
    char ppath[1100];
    snprintf(ppath, sizeof ppath, "%.1000s/parameters", path);
    const cJSON *props = NULL, *req = NULL;
    if (params && !cJSON_IsNull(params)) {
        if (!cJSON_IsObject(params))
            return q35_err_set(e, Q35_EINVAL, "tool call: parameters is not an object at %s",
                               ppath);
        const cJSON *it;
        cJSON_ArrayForEach(it, params) {
            if (!listed(PARAM_KEYWORDS, it->string))
                return q35_err_set(e, Q35_EINVAL, "tool call: unsupported keyword '%s' at %s/%s",
                                   it->string, ppath, it->string);
        }
        props = cJSON_GetObjectItemCaseSensitive(params, "properties");
        req = cJSON_GetObjectItemCaseSensitive(params, "required");
        if (props && !cJSON_IsObject(props))
            return q35_err_set(e, Q35_EINVAL, "tool call: properties is not an object at %s",
                               ppath);
        schema_conv_set_root(c, params);
    }
    gtext body = {0};
    gt_put(&body, "\"<function=\" ");
    gt_literal(&body, name->valuestring, strlen(name->valuestring));
    gt_put(&body, " \">\\n\"");
    const cJSON *p;
    int k = 0;
    if (props) cJSON_ArrayForEach(p, props) {
            bool required = false;
            const cJSON *r;
            if (cJSON_IsArray(req)) cJSON_ArrayForEach(r, req) {
                    if (cJSON_IsString(r) && !strcmp(r->valuestring, p->string)) required = true;
                }
            char vpath[1200];
            snprintf(vpath, sizeof vpath, "%.1000s/properties/%.150s", ppath, p->string);
            gtext val = {0};
            int rc = Q35_OK;
            if (is_plain_string_schema(p)) {
                rc = raw_string(c, p, vpath, &val, e);
            } else {
                char vname[32];
                rc = schema_conv_value(c, p, vpath, vname);
                if (!rc) gt_put(&val, vname);
            }
            if (rc) {
                gt_free(&val);
                gt_free(&body);
                return rc;
            }
            char pname[48];
            snprintf(pname, sizeof pname, "tc%d-p%d", index, k++);
            gtext prhs = {0};
            gt_put(&prhs, "\"<parameter=\" ");
            gt_literal(&prhs, p->string, strlen(p->string));
            gt_printf(&prhs, " \">\\n\" ( %s ) \"\\n</parameter>\\n\"", val.p ? val.p : "\"\"");
            schema_conv_rule(c, pname, prhs.p ? prhs.p : "\"\"");
            gt_free(&prhs);
            gt_free(&val);
            gt_printf(&body, required ? " %s" : " %s?", pname);
        }
    gt_put(&body, " \"</function>\\n\"");
    char fname[32];
    snprintf(fname, sizeof fname, "tc%d", index);
    schema_conv_rule(c, fname, body.p ? body.p : "\"\"");
    bool oom = body.oom;
    gt_free(&body);
    gt_printf(out, index ? " | %s" : "%s", fname);
    return oom ? q35_err_set(e, Q35_ENOMEM, "tool call: out of memory") : Q35_OK;
}

int q35_tool_call_gbnf(const char *tools_json, size_t len, const char *name, int32_t tool_call,
                       int32_t tool_call_end, char **out, q35_err *e) {
    *out = NULL;
    cJSON *doc = cJSON_ParseWithLength(tools_json, len);
    if (!doc) return q35_err_set(e, Q35_EFORMAT, "tool call: the tools are not valid JSON");
    int rc = Q35_OK;
    schema_conv *c = NULL;
    gtext fns = {0};
    if (!cJSON_IsArray(doc)) {
        rc = q35_err_set(e, Q35_EINVAL, "tool call: the tools are not a JSON array");
        goto done;
    }
    c = schema_conv_new(doc, e);
    if (!c) {
        rc = Q35_ENOMEM;
        goto done;
    }
    int i = 0, n = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, doc) {
        char path[64];
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (fn)
            snprintf(path, sizeof path, "/%d/function", i);
        else
            snprintf(path, sizeof path, "/%d", i), fn = t;
        i++;
        if (!cJSON_IsObject(fn)) {
            rc = q35_err_set(e, Q35_EINVAL, "tool call: a tool is not an object at %s", path);
            goto done;
        }
        const cJSON *fname = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (name && (!cJSON_IsString(fname) || strcmp(fname->valuestring, name))) continue;
        if ((rc = function_rule(c, fn, path, &fns, n++, e))) goto done;
    }
    if (!n) {
        rc = name ? q35_err_set(e, Q35_EINVAL, "tool call: no tool named '%s'", name)
                  : q35_err_set(e, Q35_EINVAL, "tool call: no tools");
        goto done;
    }
    char open[32], close[32];
    if (tool_call >= 0)
        snprintf(open, sizeof open, "<[%d]>", tool_call);
    else
        snprintf(open, sizeof open, "\"<tool_call>\"");
    if (tool_call_end >= 0)
        snprintf(close, sizeof close, "<[%d]>", tool_call_end);
    else
        snprintf(close, sizeof close, "\"</tool_call>\"");
    gtext call = {0};
    gt_printf(&call, "%s \"\\n\" ( %s ) %s", open, fns.p, close);
    schema_conv_rule(c, "tool-call", call.p ? call.p : "\"\"");
    gt_free(&call);
    *out = schema_conv_finish(c, "tool-call ( \"\\n\" tool-call )*");
    if (!*out) rc = e && e->code ? e->code : Q35_ENOMEM;
done:
    gt_free(&fns);
    schema_conv_free(c);
    cJSON_Delete(doc);
    return rc;
}
