/* tokenizer_gguf.h — the tokenizer (and chat template) a GGUF file carries
 * in its tokenizer.* metadata. */
#ifndef Q35_TEXT_TOKENIZER_GGUF_H
#define Q35_TEXT_TOKENIZER_GGUF_H

#include "formats/gguf.h"
#include "q35.h"

/* Builds the byte-level BPE tokenizer of a parsed GGUF file (llama.cpp's
 * tokenizer.ggml.model "gpt2", pre-tokenizer "qwen2" or "qwen35"). When
 * `chat_template` is not NULL it receives a NUL-terminated copy of
 * tokenizer.chat_template (NULL when the file has none; caller frees with
 * free()). Returns NULL and fills `e` on failure, naming the key or token.
 * Nothing of g is kept. Caller frees the tokenizer with q35_tokenizer_free. */
q35_tokenizer *q35_tokenizer_from_gguf(const q35_gguf *g, char **chat_template, q35_err *e);

/* The same from the GGUF file at `path` (mapped for the call only). */
q35_tokenizer *q35_tokenizer_load_gguf(const char *path, char **chat_template, q35_err *e);

#endif
