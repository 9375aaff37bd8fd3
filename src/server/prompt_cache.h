/* prompt_cache.h — the server's prompt cache: snapshots of sequence states,
 * each labelled with the exact ids it holds, shared by every slot and
 * request. A request restores the longest labelled prefix of its prompt
 * and computes only the rest, so a client that resends its conversation
 * each turn, or many clients with one system prompt, reuse what was
 * computed. Bounded in bytes; the least recently used entry goes first.
 * Used by the engine's thread only (no locking). */
#ifndef Q35_SERVER_PROMPT_CACHE_H
#define Q35_SERVER_PROMPT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "q35.h"

typedef struct srv_cache_entry {
    int32_t *ids;
    int n;
    q35_snapshot *snap;
    size_t bytes;
    uint64_t used; /* clock of the last use */
} srv_cache_entry;

typedef struct srv_cache {
    srv_cache_entry *items;
    int n, cap;
    size_t bytes, max_bytes;
    uint64_t clock;
    int64_t hits, misses, evictions;
} srv_cache;

void srv_cache_init(srv_cache *c, size_t max_bytes);
void srv_cache_free(srv_cache *c);

/* The entry holding the longest prefix of ids[0..n) among those shorter
 * than max_len (marked used), or NULL. Counts a hit or a miss. */
const srv_cache_entry *srv_cache_best(srv_cache *c, const int32_t *ids, int n, int max_len);

/* True when an entry holds exactly ids[0..n). */
bool srv_cache_has(const srv_cache *c, const int32_t *ids, int n);

/* Takes `snap` (freed on any failure, and when it alone is larger than
 * the bound) as the state after ids[0..n); replaces an entry with the same
 * ids; evicts least recently used entries to stay within the bound.
 * Returns 0, or -1 when out of memory. */
int srv_cache_put(srv_cache *c, const int32_t *ids, int n, q35_snapshot *snap);

#endif
