/* snapshot_cache.c — labelled state snapshots (see snapshot_cache.h). A
 * conversation holds a handful of entries, so lookups are linear scans. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "runtime/snapshot_cache.h"

void q35_snap_cache_init(q35_snap_cache *c, int max_unpinned) {
    memset(c, 0, sizeof *c);
    c->max_unpinned = max_unpinned;
}

static void drop(q35_snap_cache *c, int i) {
    free(c->items[i].ids);
    q35_snapshot_free(c->items[i].snap);
    c->items[i] = c->items[--c->n];
}

void q35_snap_cache_clear(q35_snap_cache *c, bool keep_pinned) {
    for (int i = c->n - 1; i >= 0; i--)
        if (!keep_pinned || !c->items[i].pinned) drop(c, i);
}

void q35_snap_cache_free(q35_snap_cache *c) {
    q35_snap_cache_clear(c, false);
    free(c->items);
    memset(c, 0, sizeof *c);
}

static bool is_prefix(const q35_snap_entry *x, const int32_t *ids, int n) {
    return x->n <= n && !memcmp(x->ids, ids, (size_t)x->n * sizeof *ids);
}

int q35_snap_cache_best(const q35_snap_cache *c, const int32_t *ids, int n, int max_len) {
    int best = -1;
    for (int i = 0; i < c->n; i++) {
        const q35_snap_entry *x = &c->items[i];
        if (x->n >= max_len || !is_prefix(x, ids, n)) continue;
        if (best < 0 || x->n > c->items[best].n) best = i;
    }
    return best;
}

bool q35_snap_cache_has(const q35_snap_cache *c, const int32_t *ids, int n) {
    for (int i = 0; i < c->n; i++)
        if (c->items[i].n == n && is_prefix(&c->items[i], ids, n)) return true;
    return false;
}

int q35_snap_cache_put(q35_snap_cache *c, const int32_t *ids, int n, q35_snapshot *snap,
                       bool pinned, q35_err *e) {
    if (c->max_unpinned < 0 || (!pinned && c->max_unpinned == 0)) {
        q35_snapshot_free(snap);
        return Q35_OK;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 4;
        q35_snap_entry *p = realloc(c->items, (size_t)cap * sizeof *p);
        if (!p) {
            q35_snapshot_free(snap);
            return q35_err_set(e, Q35_ENOMEM, "prompt cache: out of memory");
        }
        c->items = p;
        c->cap = cap;
    }
    int32_t *copy = malloc(((size_t)n + 1) * sizeof *copy);
    if (!copy) {
        q35_snapshot_free(snap);
        return q35_err_set(e, Q35_ENOMEM, "prompt cache: out of memory for %d ids", n);
    }
    if (n) memcpy(copy, ids, (size_t)n * sizeof *ids);
    c->items[c->n++] = (q35_snap_entry){copy, n, snap, pinned, ++c->clock};
    if (!pinned) {
        int unpinned = 0, oldest = -1;
        for (int i = 0; i < c->n; i++) {
            if (c->items[i].pinned) continue;
            unpinned++;
            if (oldest < 0 || c->items[i].stamp < c->items[oldest].stamp) oldest = i;
        }
        if (unpinned > c->max_unpinned) drop(c, oldest);
    }
    return Q35_OK;
}

size_t q35_snap_cache_bytes(const q35_snap_cache *c) {
    size_t b = 0;
    for (int i = 0; i < c->n; i++)
        b += q35_snapshot_bytes(c->items[i].snap) + (size_t)c->items[i].n * sizeof(int32_t);
    return b;
}
