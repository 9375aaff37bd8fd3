/* vocab.c — q35_constraint_vocab: token bytes copied out of the tokenizer
 * and the preorder byte trie of the vocabulary (see vocab.h). Built by
 * sorting the ids by their bytes: each token then adds nodes only past its
 * common prefix with the one before. */
#include <stdlib.h>
#include <string.h>

#include "constraint/vocab.h"
#include "core/err.h"

static int cmp_tok(const void *a, const void *b, void *ud) {
    const q35_constraint_vocab *v = ud;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = v->off[x + 1] - v->off[x], ly = v->off[y + 1] - v->off[y];
    int c = memcmp(v->bytes + v->off[x], v->bytes + v->off[y], lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void trie_free(q35_vtrie *t) {
    free(t->byte);
    free(t->depth);
    free(t->end);
    free(t->tok);
}

void q35_constraint_vocab_free(q35_constraint_vocab *v) {
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1) return;
    free(v->bytes);
    free(v->off);
    free(v->added);
    free(v->next_dup);
    trie_free(&v->trie);
    trie_free(&v->long_trie);
    free(v->long_ids);
    free(v);
}

int32_t q35_vocab_added_id(const q35_constraint_vocab *v, const char *s, size_t n) {
    for (int i = 0; i < v->n_vocab; i++)
        if (v->added[i] && v->off[i + 1] - v->off[i] == n && !memcmp(v->bytes + v->off[i], s, n))
            return i;
    return -1;
}

static void add_eos(q35_constraint_vocab *v, int32_t id) {
    if (id < 0 || id >= v->n_vocab || v->n_eos == Q35_VOCAB_MAX_EOS) return;
    for (int i = 0; i < v->n_eos; i++)
        if (v->eos[i] == id) return;
    v->eos[v->n_eos++] = id;
}

/* The preorder trie of tokens order[0..n) (sorted here by their bytes). */
static int build_trie(q35_constraint_vocab *v, int32_t *order, size_t n_order, q35_vtrie *t,
                      q35_err *e) {
    qsort_r(order, n_order, sizeof *order, cmp_tok, v);
    size_t cap = 0;
    int max_len = 1;
    for (size_t k = 0; k < n_order; k++) {
        int len = (int)(v->off[order[k] + 1] - v->off[order[k]]);
        cap += (size_t)len;
        if (len > max_len) max_len = len;
    }
    if (max_len > 65535)
        return q35_err_set(e, Q35_EINVAL, "constraint vocab: a token of %d bytes", max_len);
    t->byte = malloc(cap + 1);
    t->depth = malloc((cap + 1) * sizeof *t->depth);
    t->end = malloc((cap + 1) * sizeof *t->end);
    t->tok = malloc((cap + 1) * sizeof *t->tok);
    int *path = malloc(((size_t)max_len + 1) * sizeof *path);
    if (!t->byte || !t->depth || !t->end || !t->tok || !path) {
        free(path);
        return q35_err_set(e, Q35_ENOMEM, "constraint vocab: out of memory");
    }
    int n = 0, path_len = 0;
    const char *prev = NULL;
    int prev_len = 0;
    for (size_t k = 0; k < n_order; k++) {
        int32_t id = order[k];
        const char *s = v->bytes + v->off[id];
        int len = (int)(v->off[id + 1] - v->off[id]);
        int lcp = 0;
        while (prev && lcp < len && lcp < prev_len && s[lcp] == prev[lcp])
            lcp++;
        while (path_len > lcp) /* close the subtrees we leave */
            t->end[path[--path_len]] = n;
        if (lcp == len) { /* same bytes as the previous token */
            int node = path[len - 1];
            v->next_dup[id] = t->tok[node];
            t->tok[node] = id;
        }
        for (int d = lcp; d < len; d++) {
            t->byte[n] = (uint8_t)s[d];
            t->depth[n] = (uint16_t)(d + 1);
            t->tok[n] = d == len - 1 ? id : -1;
            path[path_len++] = n++;
        }
        prev = s;
        prev_len = len;
    }
    while (path_len > 0)
        t->end[path[--path_len]] = n;
    t->n_nodes = n;
    t->max_depth = max_len;
    free(path);
    return Q35_OK;
}

q35_constraint_vocab *q35_constraint_vocab_new(const q35_tokenizer *t, q35_err *e) {
    q35_constraint_vocab *v = calloc(1, sizeof *v);
    int32_t *order = NULL;
    if (!v) goto oom;
    atomic_init(&v->refs, 1);
    size_t nv = q35_tokenizer_n_vocab(t);
    if (!nv || nv > (1u << 24)) {
        q35_err_set(e, Q35_EINVAL, "constraint vocab: %zu tokens", nv);
        goto fail;
    }
    v->n_vocab = (int)nv;
    size_t total = 0;
    for (size_t i = 0; i < nv; i++) {
        size_t len = 0;
        if (q35_token_bytes(t, (int32_t)i, &len)) total += len;
    }
    v->bytes = malloc(total + 1);
    v->off = malloc((nv + 1) * sizeof *v->off);
    v->added = calloc(nv, 1);
    v->next_dup = malloc(nv * sizeof *v->next_dup);
    order = malloc(nv * sizeof *order);
    v->long_ids = malloc(nv * sizeof *v->long_ids);
    if (!v->bytes || !v->off || !v->added || !v->next_dup || !order || !v->long_ids) goto oom;
    size_t at = 0, n_order = 0;
    for (size_t i = 0; i < nv; i++) {
        size_t len = 0;
        const char *b = q35_token_bytes(t, (int32_t)i, &len);
        v->off[i] = (uint32_t)at;
        if (b && len) memcpy(v->bytes + at, b, len);
        at += b ? len : 0;
        v->next_dup[i] = -1;
        v->added[i] = q35_token_is_added(t, (int32_t)i);
        if (b && len && !v->added[i]) {
            if (len > Q35_MASK_SAT)
                v->long_ids[v->n_long++] = (int32_t)i;
            else
                order[n_order++] = (int32_t)i;
        }
    }
    v->off[nv] = (uint32_t)at;
    if (build_trie(v, order, n_order, &v->trie, e) ||
        build_trie(v, v->long_ids, (size_t)v->n_long, &v->long_trie, e))
        goto fail;
    v->max_depth =
        v->trie.max_depth > v->long_trie.max_depth ? v->trie.max_depth : v->long_trie.max_depth;
    add_eos(v, q35_tokenizer_eos(t));
    add_eos(v, q35_token_id(t, "<|im_end|>"));
    add_eos(v, q35_token_id(t, "<|endoftext|>"));
    free(order);
    return v;
oom:
    q35_err_set(e, Q35_ENOMEM, "constraint vocab: out of memory");
fail:
    free(order);
    q35_constraint_vocab_free(v);
    return NULL;
}
