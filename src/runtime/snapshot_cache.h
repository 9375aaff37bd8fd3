/* snapshot_cache.h — the prompt cache of one conversation: snapshots of its
 * q35_state, each labelled with the exact token prefix it holds. A new turn
 * asks for the longest labelled prefix of its prompt, restores it and feeds
 * only the rest. The system prompt's snapshot is pinned (it survives
 * eviction and reset); the others are evicted oldest first beyond a limit,
 * since a DeltaNet state is megabytes and only the latest turn boundaries
 * are useful (the next turn, or a regenerate of the last one). */
#ifndef Q35_RUNTIME_SNAPSHOT_CACHE_H
#define Q35_RUNTIME_SNAPSHOT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "q35.h"

typedef struct q35_snap_entry {
    int32_t *ids; /* the prefix the snapshot holds (its length = snapshot position) */
    int n;
    q35_snapshot *snap;
    bool pinned;
    uint64_t stamp; /* insertion order */
} q35_snap_entry;

typedef struct q35_snap_cache {
    q35_snap_entry *items;
    int n, cap;
    int max_unpinned; /* 0: only pinned entries are kept; < 0: nothing is */
    uint64_t clock;
} q35_snap_cache;

void q35_snap_cache_init(q35_snap_cache *c, int max_unpinned);
void q35_snap_cache_free(q35_snap_cache *c);

/* Index of the entry holding the longest prefix of ids[0..n) among those
 * shorter than max_len, or -1. */
int q35_snap_cache_best(const q35_snap_cache *c, const int32_t *ids, int n, int max_len);

/* True when an entry holds exactly ids[0..n). */
bool q35_snap_cache_has(const q35_snap_cache *c, const int32_t *ids, int n);

/* Takes ownership of `snap` (freed on failure too) as the state after
 * ids[0..n). An unpinned entry beyond the limit evicts the oldest unpinned
 * one; with a limit of 0 only pinned entries are kept, below 0 none. */
int q35_snap_cache_put(q35_snap_cache *c, const int32_t *ids, int n, q35_snapshot *snap,
                       bool pinned, q35_err *e);

/* Drops every entry, or every unpinned one. */
void q35_snap_cache_clear(q35_snap_cache *c, bool keep_pinned);

size_t q35_snap_cache_bytes(const q35_snap_cache *c);

#endif
