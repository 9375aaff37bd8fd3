/* tokenizer.h — building a q35_tokenizer from parts, for loaders inside the
 * library other than tokenizer.json (GGUF metadata, the binary cache).
 *
 * A tokenizer is a flat table of ids 0..n_tokens-1, each with a piece and
 * attributes, plus merges in rank order, a normalizer and a list of
 * pre-tokenizer regexes applied one after another ("Isolated" splits).
 * Everything here is validated by q35_tokenizer_from_parts exactly as a
 * tokenizer.json would be: parts may come from a hostile file.
 */
#ifndef Q35_TEXT_TOKENIZER_H
#define Q35_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

/* Token attributes (bit flags). A token with no attribute is a hole: the id
 * exists in the numbering but decodes to nothing and is never produced. */
enum {
    Q35_TOK_MODEL = 1 << 0,       /* in the BPE vocabulary (looked up by piece) */
    Q35_TOK_ADDED = 1 << 1,       /* an added token: matched in the text by content */
    Q35_TOK_SPECIAL = 1 << 2,     /* special added token (control: <|im_end|>) */
    Q35_TOK_LSTRIP = 1 << 3,      /* added token swallows whitespace on its left */
    Q35_TOK_RSTRIP = 1 << 4,      /* ... and on its right */
    Q35_TOK_NORMALIZED = 1 << 5,  /* matched in the normalized text, not the raw one */
    Q35_TOK_SINGLE_WORD = 1 << 6, /* matched only when not inside a word */
};

typedef enum q35_tok_normalizer {
    Q35_TOK_NORM_NONE = 0,
    Q35_TOK_NORM_NFC = 1,
} q35_tok_normalizer;

typedef struct q35_tok_parts {
    size_t n_tokens;
    const char *const *pieces; /* [n_tokens]; NULL for a hole */
    const uint32_t *piece_len; /* [n_tokens] byte lengths */
    const uint8_t *attr;       /* [n_tokens] Q35_TOK_* flags */

    /* Merges in rank order (rank = index), in one of two forms: */
    size_t n_merges;
    const int32_t *merge_ids;       /* [2*n_merges] left, right ids; or */
    const char *const *merge_strs;  /* [2*n_merges] left, right pieces */
    const uint32_t *merge_str_lens; /* [2*n_merges] */

    q35_tok_normalizer normalizer;
    size_t n_pretok;
    const char *const *pretok_regex; /* [n_pretok] PCRE2-compatible patterns */
    bool ignore_merges;              /* a piece found whole in the vocabulary skips BPE */

    int32_t eos_id, pad_id, bos_id; /* -1 when unknown */
    const char *source;             /* names the origin in error messages */
} q35_tok_parts;

/* Builds a tokenizer (byte-level BPE) from parts; nothing in `parts` is kept.
 * Returns NULL and fills `e` when the parts are inconsistent (duplicate
 * pieces, merges naming unknown tokens or whose result is not in the
 * vocabulary, a byte with no token, a regex that does not compile, ...).
 * Caller frees with q35_tokenizer_free. */
q35_tokenizer *q35_tokenizer_from_parts(const q35_tok_parts *parts, q35_err *e);

/* Builds a tokenizer from the text of a tokenizer.json and, optionally
 * (config may be NULL), of a tokenizer_config.json; no files, no cache.
 * Caller frees with q35_tokenizer_free. */
q35_tokenizer *q35_tokenizer_from_json(const char *json, size_t json_len, const char *config,
                                       size_t config_len, q35_err *e);

/* What BPE would be given, for tests and tools: calls fn once per piece
 * (normalized, pre-tokenized raw bytes, added_id -1) or matched added token
 * (its content, added_id >= 0), in order. A non-zero return from fn stops
 * the walk and is returned. */
typedef int (*q35_tok_piece_fn)(void *ud, const char *piece, size_t len, int32_t added_id);
int q35_tok_pretokenize(const q35_tokenizer *t, const char *text, size_t len, q35_added_mode mode,
                        q35_tok_piece_fn fn, void *ud, q35_err *e);

/* The pre-tokenizer regex llama.cpp's GGUF `tokenizer.ggml.pre` names:
 * "qwen2" (Qwen2/Qwen3) and "qwen35" (Qwen3.5). NULL for other names. */
const char *q35_tok_pretok_regex_named(const char *pre);

/* Splits a merge written as one "left right" string (tokenizer.json's
 * legacy form, GGUF's tokenizer.ggml.merges) at its first space. False
 * when there is no space. */
bool q35_tok_split_merge_line(const char *s, size_t len, const char **left, uint32_t *left_len,
                              const char **right, uint32_t *right_len);

#endif
