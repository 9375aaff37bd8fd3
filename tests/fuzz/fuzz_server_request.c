/* fuzz_server_request.c — libFuzzer target for q35 serve's input parsing:
 * any bytes as a /v1/chat/completions or /v1/completions body
 * (srv_request_parse, a pure function), and the same bytes as model output
 * through the streaming tool-call parser, fed in pieces whose sizes come
 * from the input. Checks: no crash, no leak, no read past the buffer; an
 * error always has a 4xx/5xx status and a message; the tool-call parser
 * never lets "<tool_call>" into the content. The deterministic
 * counterpart in ctest is mutation_run in tests/server/test_request.c.
 * Not built by CMake. Build (Debian's clang has libFuzzer; only the parser's
 * layers are compiled, instrumented, straight from the sources):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -D_GNU_SOURCE -Iinclude -Isrc tests/fuzz/fuzz_server_request.c \
 *         src/server/request.c src/server/tool_calls.c src/text/[a-z]*.c src/core/[a-z]*.c \
 *         src/formats/[a-z]*.c src/constraint/[a-z]*.c src/runtime/sampler.c src/runtime/rng.c \
 *         $(pkg-config --libs libcjson libcurl libcrypto libpcre2-8 libutf8proc) \
 *         -lm -lpthread -o fuzz_server_request
 *   mkdir -p corpus && ./fuzz_server_request -max_total_time=600 -timeout=10 \
 *         -rss_limit_mb=2000 -dict=tests/fuzz/chat.dict corpus
 *
 * (2026-12-06: 756k runs in 150 s from three seeds, no failure.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"
#include "server/tool_calls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    char *content;
    size_t n;
} seen;

static void on_content(void *ud, const char *t, size_t n) {
    seen *s = ud;
    char *p = realloc(s->content, s->n + n + 1);
    if (!p) abort();
    memcpy(p + s->n, t, n);
    s->n += n;
    p[s->n] = 0;
    s->content = p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const srv_limits lim = {4096, 16, 256};
    srv_request r;
    srv_error e;
    for (int kind = 0; kind < 2; kind++) {
        int rc = srv_request_parse((const char *)data, size, (srv_kind)kind, &lim, &r, &e);
        if (rc == 0)
            srv_request_free(&r);
        else if (rc < 400 || rc > 599 || !e.message[0])
            abort();
    }
    seen s = {0};
    srv_tool_sink sink = {&s, on_content, NULL, NULL, NULL};
    srv_tool_parser *p = srv_tool_parser_new(
        "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"properties\":"
        "{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"object\"}}}}}]",
        &sink);
    if (!p) return 0;
    size_t step = size ? 1 + data[0] % 7 : 1;
    for (size_t i = 0; i < size; i += step)
        srv_tool_parser_feed(p, (const char *)data + i, i + step > size ? size - i : step);
    srv_tool_parser_finish(p);
    srv_tool_parser_free(p);
    if (s.content && memmem(s.content, s.n, "<tool_call>", 11)) abort();
    free(s.content);
    return 0;
}
