/* tokenizer_gguf_write.h — a tokenizer and chat template as GGUF
 * tokenizer.* metadata, the way llama.cpp's converter writes a Qwen
 * vocabulary (the inverse of tokenizer_gguf.h), for `q35 convert`. */
#ifndef Q35_TEXT_TOKENIZER_GGUF_WRITE_H
#define Q35_TEXT_TOKENIZER_GGUF_WRITE_H

#include <stddef.h>

#include "formats/gguf_write.h"
#include "q35.h"

/* Sets in `out`: tokenizer.ggml.model "gpt2", .pre ("qwen2" or "qwen35",
 * naming the tokenizer's Split regex), .tokens and .token_type for ids
 * 0..n_rows-1 (n_rows: the embedding's rows; ids the tokenizer lacks are
 * "[PADn]" fillers of type unused), .merges ("left right" in rank order),
 * .eos_token_id / .padding_token_id / .bos_token_id where the tokenizer
 * names them, .add_bos_token false, and tokenizer.chat_template when
 * `chat_template` is not NULL.
 * Fails with Q35_EINVAL, naming what GGUF metadata cannot carry so that
 * q35 and llama.cpp would tokenize differently: a pre-tokenizer other than
 * one Qwen regex, a normalizer other than NFC, ignore_merges, an added
 * token with lstrip/rstrip/single_word/normalized, or more tokens than
 * n_rows. */
int q35_tokenizer_to_gguf_kvs(const q35_tokenizer *t, size_t n_rows, const char *chat_template,
                              q35_gguf_kvs *out, q35_err *e);

/* The chat template a checkpoint directory ships: chat_template.jinja
 * (what transformers reads first), else tokenizer_config.json's
 * "chat_template" (a string, or a list of {name, template} of which
 * "default" is used). *out is NULL when there is none (not an error);
 * else the caller frees it with free(). Fails only on a file that exists
 * but cannot be read or parsed. */
int q35_chat_template_of_dir(const char *dir, char **out, q35_err *e);

#endif
