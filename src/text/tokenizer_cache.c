/* tokenizer_cache.c — a compact binary copy of a parsed tokenizer, so that
 * loading a 248k-token vocabulary costs a hash of the JSON and a rebuild of
 * the maps instead of a JSON parse (see BENCHMARKS.md, "Tokenizer").
 *
 * Files live in $XDG_CACHE_HOME/q35/tokenizers (else ~/.cache/q35/...),
 * named by a hash of the source files' bytes, so an edited tokenizer.json
 * gets a new entry and identical files share one. A cache file is as
 * untrusted as the JSON it replaces: the header, every size and offset and
 * a hash of the body are checked, and then the parts go through
 * q35_tokenizer_from_parts like any other source.
 *
 * Layout (little-endian):
 *   header (72 bytes): magic "q35tokc\0", u32 version, u32 byte-order mark,
 *     u64 key, u64 source size, u64 body hash, u32 n_vocab, u32 n_merges,
 *     u32 pieces bytes, u32 n_pretok, i32 eos, pad, bos, u8 normalizer,
 *     u8 ignore_merges, u16 zero
 *   body: u32 piece_off[n_vocab + 1]; u8 attr[n_vocab]; pieces (each
 *     NUL-terminated, as the tokenizer holds them); then
 *     i32 merges[2 * n_merges]; then per regex u32 length + bytes. Each
 *     array starts on a 4-byte boundary.
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

#define CACHE_VERSION 1u
#define HEADER_SIZE 72u
static const char cache_magic[8] = {'q', '3', '5', 't', 'o', 'k', 'c', 0};

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

static size_t pad4(size_t n) {
    return (n + 3) & ~(size_t)3;
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

q35_tokenizer *tok_cache_load(const char *file, uint64_t key, uint64_t src_size) {
    q35_mapped_file f;
    if (q35_mapped_file_open(&f, file, NULL)) return NULL;
    const unsigned char *d = f.data;
    size_t size = f.size;
    q35_tokenizer *t = NULL;
    const char **pieces = NULL;
    uint32_t *lens = NULL;
    const char **regex = NULL;
    if (size < HEADER_SIZE || memcmp(d, cache_magic, 8) || rd32(d + 8) != CACHE_VERSION ||
        rd32(d + 12) != 0x01020304u || rd64(d + 16) != key || rd64(d + 24) != src_size ||
        rd64(d + 32) != tok_hash64(d + HEADER_SIZE, size - HEADER_SIZE, key))
        goto done;
    uint32_t n = rd32(d + 40), n_merges = rd32(d + 44), pieces_len = rd32(d + 48),
             n_pretok = rd32(d + 52);
    if (n == 0 || n > TOK_MAX_TOKENS || n_merges > 2 * TOK_MAX_TOKENS || n_pretok > TOK_MAX_PRETOK)
        goto done;
    /* All sizes below are bounded by the checks above: no overflow in 64 bits. */
    uint64_t off_at = HEADER_SIZE, attr_at = off_at + 4ull * (n + 1), pieces_at = pad4(attr_at + n),
             merges_at = pad4(pieces_at + pieces_len), regex_at = merges_at + 8ull * n_merges;
    if (regex_at > size) goto done;
    const unsigned char *offs = d + off_at, *attr = d + attr_at;
    if (rd32(offs) != 0 || rd32(offs + 4ull * n) != pieces_len) goto done;
    pieces = calloc(n, sizeof *pieces);
    lens = calloc(n, sizeof *lens);
    regex = calloc(n_pretok + 1, sizeof *regex);
    if (!pieces || !lens || !regex) goto done;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t a = rd32(offs + 4ull * i), b = rd32(offs + 4ull * i + 4);
        if (b <= a || b > pieces_len || d[pieces_at + b - 1] != 0) goto done;
        lens[i] = b - a - 1;
        pieces[i] = attr[i] ? (const char *)d + pieces_at + a : NULL;
    }
    uint64_t at = regex_at;
    for (uint32_t k = 0; k < n_pretok; k++) {
        if (at + 4 > size) goto done;
        uint32_t len = rd32(d + at);
        if (len > size - at - 4 || memchr(d + at + 4, 0, len) || d + at + 4 + len >= d + size ||
            d[at + 4 + len] != 0)
            goto done;
        regex[k] = (const char *)d + at + 4;
        at = pad4(at + 4 + len + 1);
    }
    if (at != size) goto done;
    /* merge ids are 4-aligned in the map (mmap is page-aligned). */
    q35_tok_parts p = {.n_tokens = n,
                       .pieces = pieces,
                       .piece_len = lens,
                       .attr = attr,
                       .n_merges = n_merges,
                       .merge_ids = (const int32_t *)(const void *)(d + merges_at),
                       .normalizer = d[68],
                       .n_pretok = n_pretok,
                       .pretok_regex = regex,
                       .ignore_merges = d[69] != 0,
                       .eos_id = (int32_t)rd32(d + 56),
                       .pad_id = (int32_t)rd32(d + 60),
                       .bos_id = (int32_t)rd32(d + 64),
                       .source = file};
    t = q35_tokenizer_from_parts(&p, NULL);
done:
    free(pieces);
    free(lens);
    free(regex);
    q35_mapped_file_close(&f);
    return t;
}

static void wr32(unsigned char *p, uint32_t v) {
    memcpy(p, &v, 4);
}

static void wr64(unsigned char *p, uint64_t v) {
    memcpy(p, &v, 8);
}

void tok_cache_store(const q35_tokenizer *t, const char *file, uint64_t key, uint64_t src_size) {
    uint32_t n = t->n_vocab, pieces_len = t->piece_off[n];
    size_t attr_at = HEADER_SIZE + 4ull * (n + 1), pieces_at = pad4(attr_at + n),
           merges_at = pad4(pieces_at + pieces_len), size = merges_at + 8ull * t->n_merges;
    for (uint32_t k = 0; k < t->n_pretok; k++)
        size = pad4(size + 4 + strlen(t->pretok_src[k]) + 1);
    unsigned char *d = calloc(1, size);
    if (!d) return;
    memcpy(d, cache_magic, 8);
    wr32(d + 8, CACHE_VERSION);
    wr32(d + 12, 0x01020304u);
    wr64(d + 16, key);
    wr64(d + 24, src_size);
    wr32(d + 40, n);
    wr32(d + 44, t->n_merges);
    wr32(d + 48, pieces_len);
    wr32(d + 52, t->n_pretok);
    wr32(d + 56, (uint32_t)t->eos_id);
    wr32(d + 60, (uint32_t)t->pad_id);
    wr32(d + 64, (uint32_t)t->bos_id);
    d[68] = (unsigned char)t->normalizer;
    d[69] = t->ignore_merges;
    memcpy(d + HEADER_SIZE, t->piece_off, 4ull * (n + 1));
    memcpy(d + attr_at, t->attr, n);
    memcpy(d + pieces_at, t->pieces, pieces_len);
    memcpy(d + merges_at, t->merges, 8ull * t->n_merges);
    size_t at = merges_at + 8ull * t->n_merges;
    for (uint32_t k = 0; k < t->n_pretok; k++) {
        size_t len = strlen(t->pretok_src[k]);
        wr32(d + at, (uint32_t)len);
        memcpy(d + at + 4, t->pretok_src[k], len + 1);
        at = pad4(at + 4 + len + 1);
    }
    wr64(d + 32, tok_hash64(d + HEADER_SIZE, size - HEADER_SIZE, key));
    char tmp[4200];
    int m = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", file);
    if (m > 0 && (size_t)m < sizeof tmp) {
        int fd = mkstemp(tmp);
        if (fd >= 0) {
            size_t w = 0;
            while (w < size) {
                ssize_t r = write(fd, d + w, size - w);
                if (r <= 0) break;
                w += (size_t)r;
            }
            fchmod(fd, 0644);
            if (close(fd) == 0 && w == size)
                rename(tmp, file);
            else
                unlink(tmp);
            if (w != size) unlink(tmp);
        }
    }
    free(d);
}
