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

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* 64x64 -> 128-bit multiply, folded: one instruction mixes 16 bytes. */
static inline uint64_t mul_fold(uint64_t a, uint64_t b) {
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t tok_hash64(const void *p, size_t n, uint64_t seed) {
    /* Four chained lanes over 64-byte blocks: each lane's next state
     * depends on its last (order matters), the lanes run in parallel. Used
     * on whole files (tens of MB) to key and check the cache: it detects
     * change and damage, it is not meant to resist an adversary (the cache
     * is validated structurally for that). */
    static const uint64_t k[4] = {0xa0761d6478bd642full, 0xe7037ed1a0b428dbull,
                                  0x8ebc6af09c88c6e3ull, 0x589965cc75374cc3ull};
    const unsigned char *s = p;
    uint64_t a = seed ^ k[0], b = seed ^ k[1], c = seed ^ k[2], d = seed ^ k[3];
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a = mul_fold(a ^ load64(s + i), load64(s + i + 8) ^ k[1]);
        b = mul_fold(b ^ load64(s + i + 16), load64(s + i + 24) ^ k[2]);
        c = mul_fold(c ^ load64(s + i + 32), load64(s + i + 40) ^ k[3]);
        d = mul_fold(d ^ load64(s + i + 48), load64(s + i + 56) ^ k[0]);
    }
    uint64_t h = mul_fold(a ^ k[2], b ^ k[3]) ^ mul_fold(c ^ k[0], d ^ k[1]) ^ (uint64_t)n;
    for (; i + 8 <= n; i += 8)
        h = mul_fold(h ^ load64(s + i), k[1]);
    if (i < n) {
        uint64_t t = 0;
        memcpy(&t, s + i, n - i);
        h = mul_fold(h ^ t, k[2]);
    }
    return mul_fold(h ^ k[3], h ^ k[0]) ^ h;
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
