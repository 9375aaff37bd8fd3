/* prompt_cache.c — the server's byte-bounded LRU of labelled snapshots
 * (see prompt_cache.h). A handful to a few hundred entries: linear scans
 * are cheaper than any index would be next to a forward pass. */
#include <stdlib.h>
#include <string.h>

#include "server/prompt_cache.h"

void srv_cache_init(srv_cache *c, size_t max_bytes) {
    memset(c, 0, sizeof *c);
    c->max_bytes = max_bytes;
}

static void drop(srv_cache *c, int i) {
    c->bytes -= c->items[i].bytes;
    free(c->items[i].ids);
    q35_snapshot_free(c->items[i].snap);
    c->items[i] = c->items[--c->n];
}

void srv_cache_free(srv_cache *c) {
    while (c->n)
        drop(c, c->n - 1);
    free(c->items);
    memset(c, 0, sizeof *c);
}

static bool is_prefix(const srv_cache_entry *x, const int32_t *ids, int n) {
    return x->n <= n && !memcmp(x->ids, ids, (size_t)x->n * sizeof *ids);
}

const srv_cache_entry *srv_cache_best(srv_cache *c, const int32_t *ids, int n, int max_len) {
    int best = -1;
    for (int i = 0; i < c->n; i++) {
        const srv_cache_entry *x = &c->items[i];
        if (x->n < max_len && (best < 0 || x->n > c->items[best].n) && is_prefix(x, ids, n))
            best = i;
    }
    if (best < 0) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    c->items[best].used = ++c->clock;
    return &c->items[best];
}

bool srv_cache_has(const srv_cache *c, const int32_t *ids, int n) {
    for (int i = 0; i < c->n; i++)
        if (c->items[i].n == n && is_prefix(&c->items[i], ids, n)) return true;
    return false;
}

int srv_cache_put(srv_cache *c, const int32_t *ids, int n, q35_snapshot *snap) {
    size_t bytes = q35_snapshot_bytes(snap) + (size_t)n * sizeof *ids;
    if (bytes > c->max_bytes || n < 1) {
        q35_snapshot_free(snap);
        return 0;
    }
    for (int i = 0; i < c->n; i++)
        if (c->items[i].n == n && is_prefix(&c->items[i], ids, n)) {
            drop(c, i);
            break;
        }
    while (c->n && c->bytes + bytes > c->max_bytes) {
        int lru = 0;
        for (int i = 1; i < c->n; i++)
            if (c->items[i].used < c->items[lru].used) lru = i;
        drop(c, lru);
        c->evictions++;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        srv_cache_entry *items = realloc(c->items, (size_t)cap * sizeof *items);
        if (!items) {
            q35_snapshot_free(snap);
            return -1;
        }
        c->items = items;
        c->cap = cap;
    }
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    if (!copy) {
        q35_snapshot_free(snap);
        return -1;
    }
    memcpy(copy, ids, (size_t)n * sizeof *copy);
    c->items[c->n++] = (srv_cache_entry){copy, n, snap, bytes, ++c->clock};
    c->bytes += bytes;
    return 0;
}
