/* tokenizer_internal.h — the insides of q35_tokenizer, shared by the files
 * that build it (tokenizer.c, tokenizer_json.c, tokenizer_cache.c) and the
 * ones that run it (tokenizer_encode.c, tokenizer_added.c, bpe.c,
 * pretokenizer.c, normalizer.c, decode.c). Not for use outside src/text.
 */
#ifndef Q35_TEXT_TOKENIZER_INTERNAL_H
#define Q35_TEXT_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mapped_file.h"
#include "q35.h"
#include "text/tokenizer.h"

/* Limits that keep a hostile file from asking for absurd memory. */
#define TOK_MAX_TOKENS (1u << 24)
#define TOK_MAX_PIECE 65536u
#define TOK_MAX_PRETOK 8

/* ---------------------------------------------------------------- maps */

/* Piece -> id, open addressing. A slot holds (hash32 << 32 | id + 1); 0 is
 * empty. Keys are not stored: they are the pieces of the ids. */
typedef struct tok_piece_map {
    uint64_t *slots;
    uint32_t mask;
} tok_piece_map;

/* (left id, right id) -> merge rank and merged id. */
typedef struct tok_merge_slot {
    uint64_t key; /* left << 32 | right; TOK_PAIR_EMPTY when free */
    uint32_t rank;
    int32_t merged;
} tok_merge_slot;
#define TOK_PAIR_EMPTY UINT64_MAX

typedef struct tok_merge_map {
    tok_merge_slot *slots;
    uint32_t mask;
} tok_merge_map;

uint32_t tok_hash_bytes(const void *p, size_t n);
/* 64-bit hash of a large buffer (file contents), for the cache. */
uint64_t tok_hash64(const void *p, size_t n, uint64_t seed);

/* ------------------------------------------------------------ tokenizer */

/* An added token as the matcher sees it. */
typedef struct tok_added {
    int32_t id;
    uint8_t attr;
    const char *match; /* content to find: the piece, or its NFC form when NORMALIZED */
    uint32_t match_len;
} tok_added;

/* One matching set (raw text or normalized text): tokens sorted by first
 * byte, then longest first, so the first hit at a position is the longest. */
typedef struct tok_added_set {
    tok_added *tokens;
    uint32_t n;
    uint32_t first[257]; /* tokens[first[b] .. first[b+1]) start with byte b */
} tok_added_set;

struct q35_tokenizer {
    uint32_t n_vocab; /* largest id + 1 */
    uint8_t *attr;    /* [n_vocab] */
    /* Piece of id i: pieces + piece_off[i], NUL-terminated, length
     * piece_off[i+1] - piece_off[i] - 1 (holes: ""). */
    char *pieces;
    uint32_t *piece_off;
    char *bytes; /* decoded bytes of id i, same layout (may also hold NULs) */
    uint32_t *bytes_off;

    tok_piece_map model_map; /* pieces of Q35_TOK_MODEL tokens */
    tok_piece_map added_map; /* contents of Q35_TOK_ADDED tokens */
    tok_merge_map merge_map;
    uint32_t n_merges;
    int32_t *merges; /* [2*n_merges] left, right in rank order (for the cache) */
    int32_t byte_token[256];

    tok_added_set added_raw;  /* matched in the text as given */
    tok_added_set added_norm; /* matched after normalization */
    char *added_norm_text;    /* owns the NFC forms of added_norm's contents */

    q35_tok_normalizer normalizer;
    uint32_t n_pretok;
    char *pretok_src[TOK_MAX_PRETOK];
    pcre2_code *pretok[TOK_MAX_PRETOK];
    bool ignore_merges;
    int32_t eos_id, pad_id, bos_id;

    /* Set when the tables above (attr .. merges) point into a cache file
     * (tokenizer_cache.c) rather than into heap blocks of their own. */
    q35_mapped_file table_map;
};

/* A token attribute byte that can occur (0 for a hole). */
static inline bool tok_attr_valid(uint8_t a) {
    if (a == 0) return true;
    if (a & 0x80) return false;
    if (!(a & (Q35_TOK_MODEL | Q35_TOK_ADDED))) return false;
    return !(a & ~Q35_TOK_MODEL) || (a & Q35_TOK_ADDED);
}

/* The last step of every construction: compiles the pre-tokenizer, indexes
 * the added tokens and checks the eos/pad/bos ids (tokenizer.c). */
int tok_finish(q35_tokenizer *t, const char *const *regex, size_t n_pretok, const char *src,
               q35_err *e);

static inline const char *tok_piece(const q35_tokenizer *t, uint32_t id, uint32_t *len) {
    *len = t->piece_off[id + 1] - t->piece_off[id] - 1;
    return t->pieces + t->piece_off[id];
}

static inline const char *tok_bytes(const q35_tokenizer *t, uint32_t id, uint32_t *len) {
    *len = t->bytes_off[id + 1] - t->bytes_off[id] - 1;
    return t->bytes + t->bytes_off[id];
}

/* Finds `key` among the ids in map `m` whose pieces are given by t. */
int32_t tok_piece_map_find(const q35_tokenizer *t, const tok_piece_map *m, const char *key,
                           size_t len);

static inline const tok_merge_slot *tok_merge_find(const tok_merge_map *m, int32_t left,
                                                   int32_t right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & m->mask;
    for (;;) {
        const tok_merge_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == TOK_PAIR_EMPTY) return NULL;
        i = (i + 1) & m->mask;
    }
}

/* ----------------------------------------------------- per-call scratch */

/* Everything one encode call needs beyond the (shared, read-only)
 * tokenizer: regex match state, BPE work arrays and a cache of words
 * already merged. Lives for one q35_tokenize_append call. */
typedef struct tok_word_cache {
    uint64_t *slots; /* hash32 << 32 | entry + 1 */
    uint32_t mask, n, max;
    uint32_t *entry_off; /* entry k: key bytes at keys + entry_off[k], ids at ids + id_off[k] */
    uint32_t *id_off;
    char *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
    size_t entries_cap;
} tok_word_cache;

typedef struct tok_encode_ctx {
    const q35_tokenizer *t;
    q35_tokens *out;
    q35_err *e;
    q35_added_mode mode;
    size_t text_len;           /* of the whole call: sizes the word cache */
    q35_tok_piece_fn piece_fn; /* set by q35_tok_pretokenize: pieces go here, not to BPE */
    void *piece_ud;
    pcre2_match_data *md[TOK_MAX_PRETOK];
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    /* BPE work arrays, grown on demand */
    int32_t *sym;
    int32_t *prev;
    int32_t *next;
    uint64_t *heap;
    size_t heap_cap;
    size_t cap;
    char *bl; /* byte-level spelling of a piece (ignore_merges lookups) */
    size_t bl_cap;
    tok_word_cache cache;
} tok_encode_ctx;

/* Appends ids to ctx->out; both return Q35_OK or an error code (ctx->e set). */
int tok_push_id(tok_encode_ctx *c, int32_t id);
int tok_push_ids(tok_encode_ctx *c, const int32_t *ids, size_t n);

/* bpe.c: merges one pre-tokenized piece (raw bytes) into ids. */
int tok_bpe_piece(tok_encode_ctx *c, const unsigned char *s, size_t n);
void tok_bpe_ctx_free(tok_encode_ctx *c);

/* pretokenizer.c */
int tok_pretok_compile(q35_tokenizer *t, const char *const *regex, size_t n, q35_err *e);
void tok_pretok_free(q35_tokenizer *t);
int tok_pretok_ctx_init(tok_encode_ctx *c);
void tok_pretok_ctx_free(tok_encode_ctx *c);
/* Splits valid UTF-8 text with the pre-tokenizer regexes and BPEs every piece. */
int tok_pretok_encode(tok_encode_ctx *c, const char *s, size_t n);

/* normalizer.c: the normalized form of valid UTF-8 text. Returns s itself
 * (*owned NULL) when normalization changes nothing, else a heap buffer in
 * *owned that the caller frees. NULL and ctx error on failure. */
const char *tok_normalize(q35_tok_normalizer norm, const char *s, size_t n, size_t *out_len,
                          char **owned, q35_err *e);

/* True when NFC leaves code point cp alone and never combines it with
 * what precedes it (normalizer.c explains). */
bool tok_nfc_inert(int32_t cp);

/* byte_level.c: the byte-level alphabet (GPT-2's bytes_to_unicode). */
/* Appends the UTF-8 spelling of byte b to dst (2 bytes at most); returns length. */
int tok_byte_to_char(unsigned char b, char *dst);
/* Decodes a piece through the alphabet into dst (capacity >= len): the raw
 * piece bytes when any character is outside it, as HF's ByteLevel decoder
 * does. Returns the decoded length. */
size_t tok_piece_to_bytes(const char *piece, size_t len, char *dst);

/* tokenizer_added.c */
int tok_added_build(q35_tokenizer *t, q35_err *e);
void tok_added_free(q35_tokenizer *t);
/* Calls text_fn for each stretch between matches and pushes matched ids. */
typedef int (*tok_text_fn)(tok_encode_ctx *c, const char *s, size_t n);
int tok_added_split(tok_encode_ctx *c, const tok_added_set *set, q35_added_mode mode, const char *s,
                    size_t n, tok_text_fn text_fn);

/* utf8 (decode.c): length of the UTF-8 sequence at s: > 0 a valid
 * character of that many bytes, < 0 an invalid maximal subpart of -r bytes,
 * 0 a valid but truncated prefix running to the end of s (n bytes). */
int tok_utf8_next(const unsigned char *s, size_t n);

#endif
