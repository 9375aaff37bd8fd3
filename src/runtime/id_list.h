/* id_list.h — appending to a q35_tokens list (the tokenizer's growable id
 * array, whose storage q35_tokens_free releases with free()). */
#ifndef Q35_RUNTIME_ID_LIST_H
#define Q35_RUNTIME_ID_LIST_H

#include <stdlib.h>
#include <string.h>

#include "q35.h"

/* Makes room for `extra` more ids; Q35_OK or Q35_ENOMEM (list unchanged). */
static inline int q35_ids_reserve(q35_tokens *v, size_t extra) {
    if (v->n + extra <= v->cap) return Q35_OK;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->n + extra)
        cap *= 2;
    int32_t *p = realloc(v->ids, cap * sizeof *p);
    if (!p) return Q35_ENOMEM;
    v->ids = p;
    v->cap = cap;
    return Q35_OK;
}

static inline int q35_ids_append(q35_tokens *v, const int32_t *ids, size_t n) {
    if (q35_ids_reserve(v, n)) return Q35_ENOMEM;
    if (n) memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return Q35_OK;
}

/* Replaces the content with ids[0..n). */
static inline int q35_ids_assign(q35_tokens *v, const int32_t *ids, size_t n) {
    v->n = 0;
    return q35_ids_append(v, ids, n);
}

#endif
