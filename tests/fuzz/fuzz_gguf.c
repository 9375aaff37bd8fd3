/* fuzz_gguf.c — libFuzzer target: any bytes as a GGUF file, parsed and,
 * when they parse, bound into a q35_model (config checks, tensor lookups,
 * shape checks, dequantization, head reordering) and turned into a
 * tokenizer (tokenizer.ggml.* metadata). Not built by CMake: see
 * tests/fuzz/README.md. The deterministic counterpart that runs in ctest is
 * tests/model/test_gguf_mutate.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "formats/gguf.h"
#include "model/load_gguf.h"
#include "model/model.h"
#include "text/tokenizer_gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    q35_gguf g;
    q35_err e;
    if (q35_gguf_parse(&g, data, size, "fuzz", &e) != Q35_OK) return 0;
    q35_model *m = calloc(1, sizeof *m);
    if (m) {
        q35_model_bind_gguf(m, &g, &e);
        q35_model_free(m);
    }
    char *chat_template = NULL;
    q35_tokenizer_free(q35_tokenizer_from_gguf(&g, &chat_template, &e));
    free(chat_template);
    q35_gguf_close(&g);
    return 0;
}
