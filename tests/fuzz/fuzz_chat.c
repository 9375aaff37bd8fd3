/* fuzz_chat.c — libFuzzer target: any bytes as an OpenAI-style messages
 * JSON (array, or request object with "tools"), parsed, rendered in the
 * Qwen3.5 chat format with every flag combination, and, when
 * Q35_FUZZ_TOKENIZER names a tokenizer.json, encoded with
 * q35_prompt_encode. Not built by CMake: see tests/fuzz/README.md. The
 * deterministic counterpart in ctest is test_mutants in
 * tests/text/test_chat_template_json.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static q35_tokenizer *tok; /* loaded once; read-only afterwards */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("Q35_FUZZ_TOKENIZER");
    if (path) tok = q35_tokenizer_load(path, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    q35_message_list l = {0};
    q35_err e;
    if (q35_messages_from_json((const char *)data, size, &l, &e) != Q35_OK) return 0;
    for (int flags = 0; flags < 4; flags++) {
        q35_chat_opts o = q35_chat_opts_default();
        o.add_generation_prompt = flags & 1;
        o.enable_thinking = flags & 2;
        o.tools_json = l.tools_json;
        q35_prompt p;
        if (q35_chat_render(l.items, l.n, &o, &p, &e) != Q35_OK) continue;
        if (strlen(p.text) != p.len) abort();
        if (tok && flags == 3) {
            q35_tokens ids = {0};
            q35_prompt_encode(tok, &p, &ids, &e);
            q35_tokens_free(&ids);
        }
        q35_prompt_free(&p);
    }
    q35_message_list_free(&l);
    return 0;
}
