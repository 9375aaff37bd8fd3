/* tokenizer.c — a q35_tokenizer's construction from validated parts, its
 * release, and the read-only queries of the public API (ids, pieces,
 * bytes, special ids). Every loader (tokenizer.json, the binary cache,
 * GGUF metadata) ends in q35_tokenizer_from_parts, so the checks that keep
 * a hostile file from producing a broken tokenizer live here once. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* Inserts id into m; returns the id already holding the same piece, or -1. */
static int32_t piece_map_insert(const q35_tokenizer *t, tok_piece_map *m, uint32_t id) {
    uint32_t len;
    const char *p = tok_piece(t, id, &len);
    uint32_t h = tok_hash_bytes(p, len);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t s = m->slots[i];
        if (!s) {
            m->slots[i] = (uint64_t)h << 32 | (id + 1);
            return -1;
        }
        if ((uint32_t)(s >> 32) != h) continue;
        uint32_t other = (uint32_t)s - 1, olen;
        const char *op = tok_piece(t, other, &olen);
        if (olen == len && memcmp(op, p, len) == 0) return (int32_t)other;
    }
}

static int piece_map_init(tok_piece_map *m, uint32_t count, q35_err *e) {
    uint32_t cap = pow2_at_least((uint64_t)count * 2);
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) return q35_err_set(e, Q35_ENOMEM, "tokenizer: out of memory for %u keys", count);
    m->mask = cap - 1;
    return Q35_OK;
}

/* Inserts or overwrites (a repeated pair keeps its last rank, as HF's
 * HashMap collect does). */
static void merge_map_put(tok_merge_map *m, int32_t left, int32_t right, uint32_t rank,
                          int32_t merged) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & m->mask;
    while (m->slots[i].key != TOK_PAIR_EMPTY && m->slots[i].key != key)
        i = (i + 1) & m->mask;
    m->slots[i].key = key;
    m->slots[i].rank = rank;
    m->slots[i].merged = merged;
}

static int build_pieces(q35_tokenizer *t, const q35_tok_parts *p, const char *src, q35_err *e) {
    size_t total = 0;
    uint32_t last = 0;
    bool any = false;
    for (size_t i = 0; i < p->n_tokens; i++) {
        uint8_t a = p->attr[i];
        if (!p->pieces[i]) {
            if (a)
                return q35_err_set(e, Q35_EFORMAT, "%s: token %zu has flags but no piece", src, i);
            continue;
        }
        if (!(a & (Q35_TOK_MODEL | Q35_TOK_ADDED)))
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: token %zu is neither in the vocabulary nor added", src, i);
        if ((a & ~Q35_TOK_MODEL) && !(a & Q35_TOK_ADDED))
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: token %zu has added-token flags but is not added", src, i);
        if (!tok_attr_valid(a))
            return q35_err_set(e, Q35_EFORMAT, "%s: token %zu has unknown flags 0x%02x", src, i, a);
        if (p->piece_len[i] > TOK_MAX_PIECE)
            return q35_err_set(e, Q35_EFORMAT, "%s: token %zu is %u bytes long (limit %u)", src, i,
                               p->piece_len[i], TOK_MAX_PIECE);
        if (p->piece_len[i] == 0)
            return q35_err_set(e, Q35_EFORMAT, "%s: token %zu has an empty piece", src, i);
        total += p->piece_len[i] + 1;
        last = (uint32_t)i;
        any = true;
    }
    if (!any) return q35_err_set(e, Q35_EFORMAT, "%s: the vocabulary is empty", src);
    t->n_vocab = last + 1;
    uint32_t n = t->n_vocab;
    total += n; /* every piece, holes too, ends in a NUL */
    if (total > UINT32_MAX - 1)
        return q35_err_set(e, Q35_EFORMAT, "%s: pieces add up to %zu bytes", src, total);
    t->attr = calloc(n, 1);
    t->piece_off = malloc((n + 1) * sizeof *t->piece_off);
    t->bytes_off = malloc((n + 1) * sizeof *t->bytes_off);
    t->pieces = malloc(total);
    t->bytes = malloc(total);
    if (!t->attr || !t->piece_off || !t->bytes_off || !t->pieces || !t->bytes)
        return q35_err_set(e, Q35_ENOMEM, "%s: out of memory for %u tokens", src, n);
    uint32_t po = 0, bo = 0;
    for (uint32_t i = 0; i < n; i++) {
        t->piece_off[i] = po;
        t->bytes_off[i] = bo;
        if (p->pieces[i]) {
            t->attr[i] = p->attr[i];
            memcpy(t->pieces + po, p->pieces[i], p->piece_len[i]);
            bo += (uint32_t)tok_piece_to_bytes(t->pieces + po, p->piece_len[i], t->bytes + bo);
            po += p->piece_len[i];
        }
        t->pieces[po++] = 0;
        t->bytes[bo++] = 0;
    }
    t->piece_off[n] = po;
    t->bytes_off[n] = bo;
    return Q35_OK;
}

static int build_maps(q35_tokenizer *t, const char *src, q35_err *e) {
    uint32_t n_model = 0, n_added = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        n_model += !!(t->attr[i] & Q35_TOK_MODEL);
        n_added += !!(t->attr[i] & Q35_TOK_ADDED);
    }
    int rc = piece_map_init(&t->model_map, n_model, e);
    if (rc) return rc;
    if ((rc = piece_map_init(&t->added_map, n_added, e))) return rc;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        tok_piece_map *m = NULL;
        for (int k = 0; k < 2; k++) {
            if (k == 0 && (t->attr[i] & Q35_TOK_MODEL))
                m = &t->model_map;
            else if (k == 1 && (t->attr[i] & Q35_TOK_ADDED))
                m = &t->added_map;
            else
                continue;
            int32_t other = piece_map_insert(t, m, i);
            if (other >= 0) {
                uint32_t len;
                const char *p = tok_piece(t, i, &len);
                return q35_err_set(e, Q35_EFORMAT, "%s: ids %d and %u have the same %s '%.*s'", src,
                                   other, i, k ? "added token" : "piece",
                                   (int)(len > 60 ? 60 : len), p);
            }
        }
    }
    if (!n_model) return q35_err_set(e, Q35_EFORMAT, "%s: the BPE vocabulary is empty", src);
    for (int b = 0; b < 256; b++) {
        char c[2];
        int n = tok_byte_to_char((unsigned char)b, c);
        t->byte_token[b] = tok_piece_map_find(t, &t->model_map, c, (size_t)n);
        if (t->byte_token[b] < 0)
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: no token for byte 0x%02x ('%.*s'): not a byte-level vocabulary",
                               src, b, n, c);
    }
    return Q35_OK;
}

static int resolve_merge_side(const q35_tokenizer *t, const q35_tok_parts *p, size_t k,
                              int32_t *id) {
    if (p->merge_ids) {
        int32_t v = p->merge_ids[k];
        *id = (v >= 0 && (uint32_t)v < t->n_vocab && (t->attr[v] & Q35_TOK_MODEL)) ? v : -1;
    } else {
        *id = tok_piece_map_find(t, &t->model_map, p->merge_strs[k], p->merge_str_lens[k]);
    }
    return *id;
}

static int build_merges(q35_tokenizer *t, const q35_tok_parts *p, const char *src, q35_err *e) {
    if (p->n_merges > TOK_MAX_TOKENS * 2ull)
        return q35_err_set(e, Q35_EFORMAT, "%s: %zu merges (limit %u)", src, p->n_merges,
                           TOK_MAX_TOKENS * 2);
    if (p->n_merges && !p->merge_ids && !(p->merge_strs && p->merge_str_lens))
        return q35_err_set(e, Q35_EINVAL, "%s: merges given without ids or strings", src);
    t->n_merges = (uint32_t)p->n_merges;
    uint32_t cap = pow2_at_least((uint64_t)p->n_merges * 2);
    t->merge_map.slots = malloc((size_t)cap * sizeof *t->merge_map.slots);
    t->merges = malloc((p->n_merges ? p->n_merges : 1) * 2 * sizeof *t->merges);
    char *buf = malloc(2 * (size_t)TOK_MAX_PIECE);
    if (!t->merge_map.slots || !t->merges || !buf) {
        free(buf);
        return q35_err_set(e, Q35_ENOMEM, "%s: out of memory for %zu merges", src, p->n_merges);
    }
    memset(t->merge_map.slots, 0xff, (size_t)cap * sizeof *t->merge_map.slots);
    t->merge_map.mask = cap - 1;
    for (size_t r = 0; r < p->n_merges; r++) {
        int32_t lr[2];
        for (int s = 0; s < 2; s++) {
            if (resolve_merge_side(t, p, 2 * r + s, &lr[s]) >= 0) continue;
            free(buf);
            if (p->merge_ids)
                return q35_err_set(e, Q35_EFORMAT,
                                   "%s: merge %zu names id %d, not a vocabulary token", src, r,
                                   p->merge_ids[2 * r + s]);
            uint32_t len = p->merge_str_lens[2 * r + s];
            return q35_err_set(e, Q35_EFORMAT, "%s: merge %zu names '%.*s', not in the vocabulary",
                               src, r, (int)(len > 60 ? 60 : len), p->merge_strs[2 * r + s]);
        }
        uint32_t la, lb;
        const char *a = tok_piece(t, (uint32_t)lr[0], &la), *b = tok_piece(t, (uint32_t)lr[1], &lb);
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        int32_t merged = tok_piece_map_find(t, &t->model_map, buf, la + lb);
        if (merged < 0) {
            q35_err_set(e, Q35_EFORMAT,
                        "%s: merge %zu ('%.*s' '%.*s'): '%.*s' is not in the vocabulary", src, r,
                        (int)(la > 40 ? 40 : la), a, (int)(lb > 40 ? 40 : lb), b,
                        (int)(la + lb > 80 ? 80 : la + lb), buf);
            free(buf);
            return Q35_EFORMAT;
        }
        merge_map_put(&t->merge_map, lr[0], lr[1], (uint32_t)r, merged);
        t->merges[2 * r] = lr[0];
        t->merges[2 * r + 1] = lr[1];
    }
    free(buf);
    return Q35_OK;
}

static int check_special_id(const q35_tokenizer *t, int32_t id, const char *what, const char *src,
                            q35_err *e) {
    if (id == -1 || (id >= 0 && (uint32_t)id < t->n_vocab && t->attr[id])) return Q35_OK;
    return q35_err_set(e, Q35_EFORMAT, "%s: %s id %d is not a token", src, what, id);
}

int tok_finish(q35_tokenizer *t, const char *const *regex, size_t n_pretok, const char *src,
               q35_err *e) {
    int rc = tok_pretok_compile(t, regex, n_pretok, e);
    if (!rc) rc = tok_added_build(t, e);
    if (!rc) rc = check_special_id(t, t->eos_id, "eos", src, e);
    if (!rc) rc = check_special_id(t, t->pad_id, "pad", src, e);
    if (!rc) rc = check_special_id(t, t->bos_id, "bos", src, e);
    return rc;
}

q35_tokenizer *q35_tokenizer_from_parts(const q35_tok_parts *p, q35_err *e) {
    const char *src = p->source ? p->source : "tokenizer";
    if (p->n_tokens == 0 || p->n_tokens > TOK_MAX_TOKENS) {
        q35_err_set(e, Q35_EFORMAT, "%s: %zu tokens (expected 1..%u)", src, p->n_tokens,
                    TOK_MAX_TOKENS);
        return NULL;
    }
    if (!p->pieces || !p->piece_len || !p->attr) {
        q35_err_set(e, Q35_EINVAL, "%s: token arrays missing", src);
        return NULL;
    }
    if (p->n_pretok > TOK_MAX_PRETOK) {
        q35_err_set(e, Q35_EFORMAT, "%s: %zu pre-tokenizer regexes (limit %d)", src, p->n_pretok,
                    TOK_MAX_PRETOK);
        return NULL;
    }
    if (p->normalizer != Q35_TOK_NORM_NONE && p->normalizer != Q35_TOK_NORM_NFC) {
        q35_err_set(e, Q35_EINVAL, "%s: unknown normalizer %d", src, (int)p->normalizer);
        return NULL;
    }
    q35_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        q35_err_set(e, Q35_ENOMEM, "%s: out of memory", src);
        return NULL;
    }
    t->normalizer = p->normalizer;
    t->ignore_merges = p->ignore_merges;
    t->eos_id = p->eos_id;
    t->pad_id = p->pad_id;
    t->bos_id = p->bos_id;
    if (build_pieces(t, p, src, e) || build_maps(t, src, e) || build_merges(t, p, src, e) ||
        tok_finish(t, p->pretok_regex, p->n_pretok, src, e)) {
        if (e && e->code == Q35_OK) q35_err_set(e, Q35_EFORMAT, "%s: invalid tokenizer", src);
        q35_tokenizer_free(t);
        return NULL;
    }
    return t;
}

void q35_tokenizer_free(q35_tokenizer *t) {
    if (!t) return;
    tok_pretok_free(t);
    tok_added_free(t);
    if (t->table_map.data) {
        q35_mapped_file_close(&t->table_map);
        free(t);
        return;
    }
    free(t->attr);
    free(t->pieces);
    free(t->piece_off);
    free(t->bytes);
    free(t->bytes_off);
    free(t->model_map.slots);
    free(t->added_map.slots);
    free(t->merge_map.slots);
    free(t->merges);
    free(t);
}

size_t q35_tokenizer_n_vocab(const q35_tokenizer *t) {
    return t ? t->n_vocab : 0;
}

int32_t q35_token_id(const q35_tokenizer *t, const char *piece) {
    if (!t || !piece) return -1;
    size_t n = strlen(piece);
    int32_t id = tok_piece_map_find(t, &t->added_map, piece, n);
    return id >= 0 ? id : tok_piece_map_find(t, &t->model_map, piece, n);
}

static bool id_ok(const q35_tokenizer *t, int32_t id) {
    return t && id >= 0 && (uint32_t)id < t->n_vocab && t->attr[id];
}

const char *q35_token_piece(const q35_tokenizer *t, int32_t id, size_t *len) {
    if (!id_ok(t, id)) return NULL;
    uint32_t n;
    const char *p = tok_piece(t, (uint32_t)id, &n);
    if (len) *len = n;
    return p;
}

const char *q35_token_bytes(const q35_tokenizer *t, int32_t id, size_t *len) {
    if (!id_ok(t, id)) return NULL;
    if (len) *len = t->bytes_off[id + 1] - t->bytes_off[id] - 1;
    return t->bytes + t->bytes_off[id];
}

bool q35_token_is_special(const q35_tokenizer *t, int32_t id) {
    return id_ok(t, id) && (t->attr[id] & Q35_TOK_SPECIAL);
}

bool q35_token_is_added(const q35_tokenizer *t, int32_t id) {
    return id_ok(t, id) && (t->attr[id] & Q35_TOK_ADDED);
}

int32_t q35_tokenizer_eos(const q35_tokenizer *t) {
    return t ? t->eos_id : -1;
}
int32_t q35_tokenizer_pad(const q35_tokenizer *t) {
    return t ? t->pad_id : -1;
}
int32_t q35_tokenizer_bos(const q35_tokenizer *t) {
    return t ? t->bos_id : -1;
}

bool q35_tok_split_merge_line(const char *s, size_t len, const char **left, uint32_t *left_len,
                              const char **right, uint32_t *right_len) {
    const char *sp = memchr(s, ' ', len);
    if (!sp) return false;
    *left = s;
    *left_len = (uint32_t)(sp - s);
    *right = sp + 1;
    *right_len = (uint32_t)(len - (size_t)(sp - s) - 1);
    return true;
}
