/* tokenizer_cache.c — a binary image of a built tokenizer's tables, so
 * that loading a 248k-token vocabulary costs a hash of the JSON, a map of
 * the image and a linear check of it, instead of a JSON parse and a rebuild
 * of every hash map (see BENCHMARKS.md, "Tokenizer").
 *
 * Files live in $XDG_CACHE_HOME/q35/tokenizers (else ~/.cache/q35/...),
 * named by a hash of the source files' bytes, so an edited tokenizer.json
 * gets a new entry and identical files share one. Written to a temporary
 * file and renamed into place, so a reader never sees half a file.
 *
 * The tokenizer uses the tables in place, straight from the map, so an
 * image is as untrusted as the JSON it replaces. Before use: the header,
 * every size and offset are checked; a 64-bit hash of the rest must match
 * (damage); and every id anywhere in the tables is range-checked, every
 * piece must end in its NUL, every hash map must have a free slot (lookups
 * end) and name only tokens of the right kind. Lookups compare the piece
 * itself, so a wrong slot can cost a miss but never a wrong id.
 *
 * Layout (little-endian; sections 8-byte aligned, in this order):
 *   header: see the H_* offsets below
 *   u32 piece_off[n+1], u32 bytes_off[n+1], u8 attr[n], pieces, bytes,
 *   i32 byte_token[256], i32 merges[2*n_merges], u64 model_slots[],
 *   u64 added_slots[], merge slots (u64 key, u32 rank, i32 merged)[],
 *   then per pre-tokenizer regex: u32 length, bytes, NUL.
 */
#include "text/tokenizer_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mapped_file.h"
#include "text/tokenizer_internal.h"

#define CACHE_VERSION 2u
static const char cache_magic[8] = {'q', '3', '5', 't', 'o', 'k', 'c', 0};

enum { /* header field offsets */
       H_MAGIC = 0,
       H_VERSION = 8,
       H_BOM = 12,
       H_KEY = 16,
       H_SRC_SIZE = 24,
       H_BODY_HASH = 32,
       H_N_VOCAB = 40,
       H_N_MERGES = 44,
       H_PIECES_LEN = 48,
       H_BYTES_LEN = 52,
       H_MODEL_SLOTS = 56,
       H_ADDED_SLOTS = 60,
       H_MERGE_SLOTS = 64,
       H_N_PRETOK = 68,
       H_EOS = 72,
       H_PAD = 76,
       H_BOS = 80,
       H_NORMALIZER = 84,
       H_IGNORE_MERGES = 85,
       HEADER_SIZE = 96,
};

uint64_t tok_cache_key(const void *json, size_t json_len, const void *cfg, size_t cfg_len) {
    uint64_t h = tok_hash64(json, json_len, 0x71335 + CACHE_VERSION);
    return tok_hash64(cfg, cfg ? cfg_len : 0, h);
}

static bool make_dir(const char *p) {
    return mkdir(p, 0755) == 0 || errno == EEXIST;
}

bool tok_cache_path(uint64_t key, char *out, size_t cap) {
    const char *off = getenv("Q35_NO_TOKENIZER_CACHE");
    if (off && off[0] && strcmp(off, "0")) return false;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[3072];
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(dir, sizeof dir, "%s", xdg);
    else if (home && home[0] == '/')
        n = snprintf(dir, sizeof dir, "%s/.cache", home);
    else
        return false;
    if (n < 0 || (size_t)n >= sizeof dir - 32) return false;
    if (!make_dir(dir)) return false;
    strcat(dir, "/q35");
    if (!make_dir(dir)) return false;
    strcat(dir, "/tokenizers");
    if (!make_dir(dir)) return false;
    n = snprintf(out, cap, "%s/%016llx.bin", dir, (unsigned long long)key);
    return n > 0 && (size_t)n < cap;
}

static uint64_t pad8(uint64_t n) {
    return (n + 7) & ~(uint64_t)7;
}

static uint32_t rd32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Hash of everything after the hash field: the header fields the loader
 * does not compare exactly, then the body. */
static uint64_t image_hash(const unsigned char *d, uint64_t size, uint64_t key) {
    uint64_t h = tok_hash64(d + H_N_VOCAB, HEADER_SIZE - H_N_VOCAB, key);
    return tok_hash64(d + HEADER_SIZE, size - HEADER_SIZE, h);
}

/* Where each section starts, from the counts in the header. */
typedef struct layout {
    uint64_t piece_off, bytes_off, attr, pieces, bytes, byte_token, merges, model_slots,
        added_slots, merge_slots, regex;
} layout;

static layout make_layout(uint64_t n, uint64_t n_merges, uint64_t pieces_len, uint64_t bytes_len,
                          uint64_t model_slots, uint64_t added_slots, uint64_t merge_slots) {
    layout l;
    l.piece_off = HEADER_SIZE;
    l.bytes_off = pad8(l.piece_off + 4 * (n + 1));
    l.attr = pad8(l.bytes_off + 4 * (n + 1));
    l.pieces = pad8(l.attr + n);
    l.bytes = pad8(l.pieces + pieces_len);
    l.byte_token = pad8(l.bytes + bytes_len);
    l.merges = pad8(l.byte_token + 4 * 256);
    l.model_slots = pad8(l.merges + 8 * n_merges);
    l.added_slots = l.model_slots + 8 * model_slots;
    l.merge_slots = l.added_slots + 8 * added_slots;
    l.regex = l.merge_slots + sizeof(tok_merge_slot) * merge_slots;
    return l;
}

/* An arena of n NUL-terminated strings with offsets off[0..n]. */
static bool arena_ok(const uint32_t *off, uint32_t n, const char *arena, uint32_t len,
                     const uint8_t *attr) {
    if (off[0] != 0 || off[n] != len) return false;
    for (uint32_t i = 0; i < n; i++) {
        if (off[i + 1] <= off[i] || off[i + 1] > len || arena[off[i + 1] - 1] != 0) return false;
        if (!attr[i] && off[i + 1] - off[i] != 1) return false; /* holes are "" */
    }
    return true;
}

static bool slots_pow2(uint32_t n) {
    return n >= 16 && (n & (n - 1)) == 0;
}

static bool is_model(const q35_tokenizer *t, int64_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & Q35_TOK_MODEL);
}

static bool piece_slots_ok(const q35_tokenizer *t, const uint64_t *slots, uint32_t n,
                           uint8_t kind) {
    bool free_slot = false;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)slots[i];
        if (!slots[i])
            free_slot = true;
        else if (v == 0 || v > t->n_vocab || !(t->attr[v - 1] & kind))
            return false;
    }
    return free_slot;
}

static bool merge_slots_ok(const q35_tokenizer *t, const tok_merge_slot *s, uint32_t n) {
    bool free_slot = false;
    for (uint32_t i = 0; i < n; i++) {
        if (s[i].key == TOK_PAIR_EMPTY) {
            free_slot = true;
            continue;
        }
        if (!is_model(t, (int64_t)(s[i].key >> 32)) || !is_model(t, (int64_t)(uint32_t)s[i].key) ||
            !is_model(t, s[i].merged) || s[i].rank >= t->n_merges)
            return false;
    }
    return free_slot;
}

q35_tokenizer *tok_cache_load(const char *file, uint64_t key, uint64_t src_size) {
    q35_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (q35_mapped_file_open(&t->table_map, file, NULL)) {
        free(t);
        return NULL;
    }
    const unsigned char *d = t->table_map.data;
    uint64_t size = t->table_map.size;
    const char *regex[TOK_MAX_PRETOK] = {0};
    if (size < HEADER_SIZE || memcmp(d + H_MAGIC, cache_magic, 8) ||
        rd32(d + H_VERSION) != CACHE_VERSION || rd32(d + H_BOM) != 0x01020304u ||
        rd64(d + H_KEY) != key || rd64(d + H_SRC_SIZE) != src_size)
        goto fail;
    uint32_t n = rd32(d + H_N_VOCAB), n_merges = rd32(d + H_N_MERGES);
    uint32_t pieces_len = rd32(d + H_PIECES_LEN), bytes_len = rd32(d + H_BYTES_LEN);
    uint32_t model_slots = rd32(d + H_MODEL_SLOTS), added_slots = rd32(d + H_ADDED_SLOTS);
    uint32_t merge_slots = rd32(d + H_MERGE_SLOTS), n_pretok = rd32(d + H_N_PRETOK);
    if (n == 0 || n > TOK_MAX_TOKENS || n_merges > 2 * TOK_MAX_TOKENS ||
        n_pretok > TOK_MAX_PRETOK || !slots_pow2(model_slots) || !slots_pow2(added_slots) ||
        !slots_pow2(merge_slots) || d[H_NORMALIZER] > Q35_TOK_NORM_NFC)
        goto fail;
    /* every count is below 2^32: no section end overflows 64 bits */
    layout l =
        make_layout(n, n_merges, pieces_len, bytes_len, model_slots, added_slots, merge_slots);
    if (l.regex > size || rd64(d + H_BODY_HASH) != image_hash(d, size, key)) goto fail;
    t->n_vocab = n;
    t->n_merges = n_merges;
    t->attr = (uint8_t *)(d + l.attr);
    t->piece_off = (uint32_t *)(const void *)(d + l.piece_off);
    t->bytes_off = (uint32_t *)(const void *)(d + l.bytes_off);
    t->pieces = (char *)(d + l.pieces);
    t->bytes = (char *)(d + l.bytes);
    t->merges = (int32_t *)(const void *)(d + l.merges);
    t->model_map = (tok_piece_map){(uint64_t *)(const void *)(d + l.model_slots), model_slots - 1};
    t->added_map = (tok_piece_map){(uint64_t *)(const void *)(d + l.added_slots), added_slots - 1};
    t->merge_map =
        (tok_merge_map){(tok_merge_slot *)(const void *)(d + l.merge_slots), merge_slots - 1};
    memcpy(t->byte_token, d + l.byte_token, sizeof t->byte_token);
    t->normalizer = d[H_NORMALIZER];
    t->ignore_merges = d[H_IGNORE_MERGES] != 0;
    t->eos_id = (int32_t)rd32(d + H_EOS);
    t->pad_id = (int32_t)rd32(d + H_PAD);
    t->bos_id = (int32_t)rd32(d + H_BOS);
    for (uint32_t i = 0; i < n; i++)
        if (!tok_attr_valid(t->attr[i])) goto fail;
    if (!arena_ok(t->piece_off, n, t->pieces, pieces_len, t->attr) ||
        !arena_ok(t->bytes_off, n, t->bytes, bytes_len, t->attr) || !t->attr[n - 1])
        goto fail;
    for (int b = 0; b < 256; b++)
        if (!is_model(t, t->byte_token[b])) goto fail;
    for (uint64_t i = 0; i < 2ull * n_merges; i++)
        if (!is_model(t, t->merges[i])) goto fail;
    if (!piece_slots_ok(t, t->model_map.slots, model_slots, Q35_TOK_MODEL) ||
        !piece_slots_ok(t, t->added_map.slots, added_slots, Q35_TOK_ADDED) ||
        !merge_slots_ok(t, t->merge_map.slots, merge_slots))
        goto fail;
    uint64_t at = l.regex;
    for (uint32_t k = 0; k < n_pretok; k++) {
        if (at + 4 > size) goto fail;
        uint32_t len = rd32(d + at);
        if (len > size - at - 5 || memchr(d + at + 4, 0, len) || d[at + 4 + len] != 0) goto fail;
        regex[k] = (const char *)d + at + 4;
        at = pad8(at + 4 + len + 1);
    }
    if (at != size || tok_finish(t, regex, n_pretok, file, NULL)) goto fail;
    return t;
fail:
    q35_tokenizer_free(t);
    return NULL;
}

void tok_cache_seal(unsigned char *d, size_t size) {
    if (size < HEADER_SIZE) return;
    uint64_t h = image_hash(d, size, rd64(d + H_KEY));
    memcpy(d + H_BODY_HASH, &h, 8);
}

static void wr32(unsigned char *p, uint32_t v) {
    memcpy(p, &v, 4);
}

static void wr64(unsigned char *p, uint64_t v) {
    memcpy(p, &v, 8);
}

static bool write_all(int fd, const unsigned char *d, size_t n) {
    while (n) {
        ssize_t r = write(fd, d, n);
        if (r <= 0) return false;
        d += r;
        n -= (size_t)r;
    }
    return true;
}

void tok_cache_store(const q35_tokenizer *t, const char *file, uint64_t key, uint64_t src_size) {
    uint32_t n = t->n_vocab;
    uint32_t model_slots = t->model_map.mask + 1, added_slots = t->added_map.mask + 1,
             merge_slots = t->merge_map.mask + 1;
    layout l = make_layout(n, t->n_merges, t->piece_off[n], t->bytes_off[n], model_slots,
                           added_slots, merge_slots);
    uint64_t size = l.regex;
    for (uint32_t k = 0; k < t->n_pretok; k++)
        size = pad8(size + 4 + strlen(t->pretok_src[k]) + 1);
    unsigned char *d = calloc(1, size);
    if (!d) return;
    memcpy(d + H_MAGIC, cache_magic, 8);
    wr32(d + H_VERSION, CACHE_VERSION);
    wr32(d + H_BOM, 0x01020304u);
    wr64(d + H_KEY, key);
    wr64(d + H_SRC_SIZE, src_size);
    wr32(d + H_N_VOCAB, n);
    wr32(d + H_N_MERGES, t->n_merges);
    wr32(d + H_PIECES_LEN, t->piece_off[n]);
    wr32(d + H_BYTES_LEN, t->bytes_off[n]);
    wr32(d + H_MODEL_SLOTS, model_slots);
    wr32(d + H_ADDED_SLOTS, added_slots);
    wr32(d + H_MERGE_SLOTS, merge_slots);
    wr32(d + H_N_PRETOK, t->n_pretok);
    wr32(d + H_EOS, (uint32_t)t->eos_id);
    wr32(d + H_PAD, (uint32_t)t->pad_id);
    wr32(d + H_BOS, (uint32_t)t->bos_id);
    d[H_NORMALIZER] = (unsigned char)t->normalizer;
    d[H_IGNORE_MERGES] = t->ignore_merges;
    memcpy(d + l.piece_off, t->piece_off, 4ull * (n + 1));
    memcpy(d + l.bytes_off, t->bytes_off, 4ull * (n + 1));
    memcpy(d + l.attr, t->attr, n);
    memcpy(d + l.pieces, t->pieces, t->piece_off[n]);
    memcpy(d + l.bytes, t->bytes, t->bytes_off[n]);
    memcpy(d + l.byte_token, t->byte_token, sizeof t->byte_token);
    memcpy(d + l.merges, t->merges, 8ull * t->n_merges);
    memcpy(d + l.model_slots, t->model_map.slots, 8ull * model_slots);
    memcpy(d + l.added_slots, t->added_map.slots, 8ull * added_slots);
    memcpy(d + l.merge_slots, t->merge_map.slots, sizeof(tok_merge_slot) * merge_slots);
    uint64_t at = l.regex;
    for (uint32_t k = 0; k < t->n_pretok; k++) {
        size_t len = strlen(t->pretok_src[k]);
        wr32(d + at, (uint32_t)len);
        memcpy(d + at + 4, t->pretok_src[k], len + 1);
        at = pad8(at + 4 + len + 1);
    }
    tok_cache_seal(d, size);
    char tmp[4200];
    int m = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", file);
    int fd = m > 0 && (size_t)m < sizeof tmp ? mkstemp(tmp) : -1;
    if (fd >= 0) {
        bool ok = write_all(fd, d, size) && fchmod(fd, 0644) == 0;
        ok = close(fd) == 0 && ok;
        if (!ok || rename(tmp, file) != 0) unlink(tmp);
    }
    free(d);
}
