/* tool_call.c — the grammar of Qwen3.5 tool calls (stub). */
#include "constraint/schema.h"
#include "core/err.h"

int q35_tool_call_gbnf(const char *tools_json, size_t len, const char *name, int32_t tool_call,
                       int32_t tool_call_end, char **out, q35_err *e) {
    *out = NULL;
    return q35_err_set(e, Q35_EINVAL, "tool calls: not yet supported");
}
