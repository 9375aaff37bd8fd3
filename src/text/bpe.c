/* bpe.c — byte-pair merging of one pre-tokenized piece. The piece starts as
 * one symbol per byte (the byte-level tokens); the adjacent pair with the
 * lowest merge rank (leftmost on ties) is merged until no pair has a rank,
 * as HF's BPE does. Symbols form a linked list over arrays and candidate
 * pairs wait in a binary min-heap keyed (rank, position), so a word of n
 * bytes costs O(n log n) whatever its shape; a heap entry whose pair has
 * changed since it was pushed is recognized by its rank and skipped.
 * Words up to WORD_CACHE_KEY bytes are remembered for the rest of the call:
 * running text repeats its words. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

#define WORD_CACHE_KEY 64
#define WORD_CACHE_MAX (1u << 16)

static int grow_work(tok_encode_ctx *c, size_t n) {
    if (n <= c->cap) return Q35_OK;
    size_t cap = c->cap ? c->cap : 256;
    while (cap < n)
        cap *= 2;
    int32_t *sym = realloc(c->sym, cap * sizeof *sym);
    if (sym) c->sym = sym;
    int32_t *prev = realloc(c->prev, cap * sizeof *prev);
    if (prev) c->prev = prev;
    int32_t *next = realloc(c->next, cap * sizeof *next);
    if (next) c->next = next;
    if (!sym || !prev || !next)
        return q35_err_set(c->e, Q35_ENOMEM, "tokenize: out of memory for a %zu-byte word", n);
    c->cap = cap;
    return Q35_OK;
}

/* ------------------------------------------------------------ the heap */

typedef struct heap {
    uint64_t *v;
    size_t n, cap;
} heap;

static int heap_push(tok_encode_ctx *c, heap *h, uint64_t x) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        uint64_t *v = realloc(h->v, cap * sizeof *v);
        if (!v) return q35_err_set(c->e, Q35_ENOMEM, "tokenize: out of memory (merge queue)");
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p] <= x) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
    return Q35_OK;
}

static uint64_t heap_pop(heap *h) {
    uint64_t top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n) break;
        if (l + 1 < h->n && h->v[l + 1] < h->v[l]) l++;
        if (x <= h->v[l]) break;
        h->v[i] = h->v[l];
        i = l;
    }
    if (h->n) h->v[i] = x;
    return top;
}

/* -------------------------------------------------------- word cache */

static const int32_t *cache_find(const tok_word_cache *wc, const unsigned char *s, size_t n,
                                 uint32_t h, size_t *count) {
    if (!wc->slots) return NULL;
    for (uint32_t i = h & wc->mask;; i = (i + 1) & wc->mask) {
        uint64_t v = wc->slots[i];
        if (!v) return NULL;
        if ((uint32_t)(v >> 32) != h) continue;
        uint32_t k = (uint32_t)v - 1;
        uint32_t klen = wc->entry_off[k + 1] - wc->entry_off[k];
        if (klen == n && memcmp(wc->keys + wc->entry_off[k], s, n) == 0) {
            *count = wc->id_off[k + 1] - wc->id_off[k];
            return wc->ids + wc->id_off[k];
        }
    }
}

static void *grow_buf(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * elem);
    if (q) *cap = c;
    return q;
}

/* Remembering is an optimization: running out of memory here only means
 * the word is not remembered. */
static void cache_put(tok_word_cache *wc, size_t text_len, const unsigned char *s, size_t n,
                      uint32_t h, const int32_t *ids, size_t count) {
    if (!wc->slots) {
        /* Sized by the text: a short call must not pay for a big table. */
        uint32_t cap = 64;
        while (cap < 2 * WORD_CACHE_MAX && cap < text_len / 2)
            cap *= 2;
        wc->slots = calloc(cap, sizeof *wc->slots);
        if (!wc->slots) return;
        wc->mask = cap - 1;
        wc->max = cap / 2;
    }
    if (wc->n >= wc->max) return;
    void *p;
    if (!(p = grow_buf(wc->entry_off, &wc->entries_cap, wc->n + 2, sizeof(uint32_t)))) return;
    wc->entry_off = p;
    size_t cap2 = wc->entries_cap;
    /* id_off shares entries_cap: grow it to the same size. */
    if (!(p = realloc(wc->id_off, cap2 * sizeof(uint32_t)))) return;
    wc->id_off = p;
    if (!(p = grow_buf(wc->keys, &wc->keys_cap, wc->keys_len + n, 1))) return;
    wc->keys = p;
    if (!(p = grow_buf(wc->ids, &wc->ids_cap, wc->ids_len + count, sizeof(int32_t)))) return;
    wc->ids = p;
    if (wc->n == 0) wc->entry_off[0] = wc->id_off[0] = 0;
    memcpy(wc->keys + wc->keys_len, s, n);
    memcpy(wc->ids + wc->ids_len, ids, count * sizeof *ids);
    wc->keys_len += n;
    wc->ids_len += count;
    uint32_t k = wc->n++;
    wc->entry_off[k + 1] = (uint32_t)wc->keys_len;
    wc->id_off[k + 1] = (uint32_t)wc->ids_len;
    uint32_t i = h & wc->mask;
    while (wc->slots[i])
        i = (i + 1) & wc->mask;
    wc->slots[i] = (uint64_t)h << 32 | (k + 1);
}

void tok_bpe_ctx_free(tok_encode_ctx *c) {
    free(c->sym);
    free(c->prev);
    free(c->next);
    free(c->heap);
    free(c->bl);
    tok_word_cache *wc = &c->cache;
    free(wc->slots);
    free(wc->entry_off);
    free(wc->id_off);
    free(wc->keys);
    free(wc->ids);
    memset(wc, 0, sizeof *wc);
    c->sym = c->prev = c->next = NULL;
    c->heap = NULL;
    c->bl = NULL;
    c->cap = c->bl_cap = 0;
}

/* ---------------------------------------------------------- merging */

/* ignore_merges: a piece that is itself in the vocabulary is one token. */
static int32_t whole_piece_id(tok_encode_ctx *c, const unsigned char *s, size_t n) {
    if (n > TOK_MAX_PIECE) return -1;
    char *p = grow_buf(c->bl, &c->bl_cap, 2 * n, 1);
    if (!p) return -1;
    c->bl = p;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)tok_byte_to_char(s[i], p + len);
    return tok_piece_map_find(c->t, &c->t->model_map, p, len);
}

static int push_pair(tok_encode_ctx *c, heap *h, int32_t pos) {
    int32_t nx = c->next[pos];
    if (nx < 0) return Q35_OK;
    const tok_merge_slot *m = tok_merge_find(&c->t->merge_map, c->sym[pos], c->sym[nx]);
    return m ? heap_push(c, h, (uint64_t)m->rank << 32 | (uint32_t)pos) : Q35_OK;
}

int tok_bpe_piece(tok_encode_ctx *c, const unsigned char *s, size_t n) {
    const q35_tokenizer *t = c->t;
    if (n == 0) return Q35_OK;
    if (c->piece_fn) return c->piece_fn(c->piece_ud, (const char *)s, n, -1);
    if (n == 1) return tok_push_id(c, t->byte_token[s[0]]);
    if (n > INT32_MAX - 1)
        return q35_err_set(c->e, Q35_EOVERFLOW, "tokenize: a %zu-byte word is too long", n);
    uint32_t h = 0;
    if (n <= WORD_CACHE_KEY) {
        h = tok_hash_bytes(s, n);
        size_t count;
        const int32_t *ids = cache_find(&c->cache, s, n, h, &count);
        if (ids) return tok_push_ids(c, ids, count);
    }
    if (t->ignore_merges) {
        int32_t id = whole_piece_id(c, s, n);
        if (id >= 0) return tok_push_id(c, id);
    }
    int rc = grow_work(c, n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        c->sym[i] = t->byte_token[s[i]];
        c->prev[i] = (int32_t)i - 1;
        c->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    heap hp = {c->heap, 0, c->heap_cap};
    for (size_t i = 0; i + 1 < n && !rc; i++)
        rc = push_pair(c, &hp, (int32_t)i);
    while (!rc && hp.n) {
        uint64_t top = heap_pop(&hp);
        int32_t pos = (int32_t)(uint32_t)top, nx;
        if (c->sym[pos] < 0 || (nx = c->next[pos]) < 0) continue;
        const tok_merge_slot *m = tok_merge_find(&t->merge_map, c->sym[pos], c->sym[nx]);
        if (!m || m->rank != (uint32_t)(top >> 32)) continue; /* stale entry */
        c->sym[pos] = m->merged;
        c->sym[nx] = -1;
        c->next[pos] = c->next[nx];
        if (c->next[nx] >= 0) c->prev[c->next[nx]] = pos;
        if (c->prev[pos] >= 0) rc = push_pair(c, &hp, c->prev[pos]);
        if (!rc) rc = push_pair(c, &hp, pos);
    }
    c->heap = hp.v;
    c->heap_cap = hp.cap;
    if (rc) return rc;
    /* Compact the surviving symbols in place (sym[] is free to reuse). */
    size_t k = 0;
    for (int32_t p = 0; p >= 0; p = c->next[p])
        c->sym[k++] = c->sym[p];
    if (n <= WORD_CACHE_KEY) cache_put(&c->cache, c->text_len, s, n, h, c->sym, k);
    return tok_push_ids(c, c->sym, k);
}
