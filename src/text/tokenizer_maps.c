/* tokenizer_maps.c — the hash maps behind every lookup of the tokenizer:
 * piece -> id for the vocabulary and the added tokens, and the 64-bit
 * content hash that keys the binary cache. Open addressing with linear
 * probing at load factor <= 1/2; the piece maps store only ids (the pieces
 * live once, in the tokenizer's arena). */
#include <string.h>

#include "text/tokenizer_internal.h"

uint32_t tok_hash_bytes(const void *p, size_t n) {
    /* FNV-1a with a final avalanche: pieces are short, so byte-at-a-time
     * costs less than a wide hash's setup. */
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    h ^= h >> 15;
    h *= 0x2c1b3c6dU;
    h ^= h >> 12;
    return h;
}

static inline uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint64_t tok_hash64(const void *p, size_t n, uint64_t seed) {
    /* Four independent lanes over 32-byte blocks keep the multiplier busy;
     * used on whole files (megabytes), where a byte loop would cost ms. */
    const uint64_t k1 = 0x9E3779B185EBCA87ull, k2 = 0xC2B2AE3D27D4EB4Full;
    const unsigned char *s = p;
    uint64_t v[4] = {seed + k1 + k2, seed + k2, seed, seed - k1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int l = 0; l < 4; l++)
            v[l] = rotl64(v[l] + load64(s + i + 8 * l) * k2, 31) * k1;
    uint64_t h = rotl64(v[0], 1) + rotl64(v[1], 7) + rotl64(v[2], 12) + rotl64(v[3], 18);
    h += (uint64_t)n;
    for (; i + 8 <= n; i += 8)
        h = rotl64(h ^ (rotl64(load64(s + i) * k2, 31) * k1), 27) * k1 + k2;
    for (; i < n; i++)
        h = rotl64(h ^ (s[i] * k1), 11) * k2;
    h ^= h >> 33;
    h *= k2;
    h ^= h >> 29;
    return h;
}

int32_t tok_piece_map_find(const q35_tokenizer *t, const tok_piece_map *m, const char *key,
                           size_t len) {
    if (!m->slots) return -1;
    uint32_t h = tok_hash_bytes(key, len);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t s = m->slots[i];
        if (!s) return -1;
        if ((uint32_t)(s >> 32) != h) continue;
        uint32_t id = (uint32_t)s - 1, plen;
        const char *p = tok_piece(t, id, &plen);
        if (plen == len && memcmp(p, key, len) == 0) return (int32_t)id;
    }
}
