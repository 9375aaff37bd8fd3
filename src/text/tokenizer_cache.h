/* tokenizer_cache.h — the binary cache of parsed tokenizers (see
 * tokenizer_cache.c). Every function here is best effort: a cache that is
 * missing, unwritable, stale or corrupt only means the JSON is parsed. */
#ifndef Q35_TEXT_TOKENIZER_CACHE_H
#define Q35_TEXT_TOKENIZER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

/* The key of a tokenizer.json + tokenizer_config.json pair (config may be
 * NULL): a hash of their bytes and of the cache format's version. */
uint64_t tok_cache_key(const void *json, size_t json_len, const void *cfg, size_t cfg_len);

/* The cache file for `key`, creating its directory. False when caching is
 * off (Q35_NO_TOKENIZER_CACHE set non-empty and not "0") or there is no
 * usable directory. */
bool tok_cache_path(uint64_t key, char *out, size_t cap);

/* The tokenizer stored in `file` if it exists, carries `key` and
 * `src_size`, and passes every check; else NULL. */
q35_tokenizer *tok_cache_load(const char *file, uint64_t key, uint64_t src_size);

/* Recomputes the integrity hash of an image in memory (tests use it to
 * make damaged images that pass the hash and must fail the other checks). */
void tok_cache_seal(unsigned char *image, size_t size);

/* Writes t to `file` atomically (temporary file + rename). */
void tok_cache_store(const q35_tokenizer *t, const char *file, uint64_t key, uint64_t src_size);

#endif
