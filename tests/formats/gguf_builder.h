/* gguf_builder.h — writing GGUF images byte by byte in tests, so that every
 * field can be made wrong on purpose. Independent of src/formats/gguf.c:
 * it follows the file layout, not the parser. Header-only (static). */
#ifndef Q35_TESTS_GGUF_BUILDER_H
#define Q35_TESTS_GGUF_BUILDER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gguf_buf {
    unsigned char *p;
    size_t n, cap;
} gguf_buf;

static inline void gb_bytes(gguf_buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) abort(); /* test code */
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static inline void gb_u8(gguf_buf *b, uint8_t v) {
    gb_bytes(b, &v, 1);
}

static inline void gb_u32(gguf_buf *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    gb_bytes(b, x, 4);
}

static inline void gb_u64(gguf_buf *b, uint64_t v) {
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    gb_bytes(b, x, 8);
}

static inline void gb_f32(gguf_buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    gb_u32(b, u);
}

static inline void gb_str(gguf_buf *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}

static inline void gb_pad(gguf_buf *b, size_t align) {
    while (b->n % align)
        gb_u8(b, 0);
}

/* "GGUF", version, tensor count, kv count. */
static inline void gb_header(gguf_buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}

/* Value type numbers of the format. */
enum {
    GB_U8 = 0,
    GB_I8,
    GB_U16,
    GB_I16,
    GB_U32,
    GB_I32,
    GB_F32,
    GB_BOOL,
    GB_STRING,
    GB_ARRAY,
    GB_U64,
    GB_I64,
    GB_F64
};

static inline void gb_kv_u32(gguf_buf *b, const char *k, uint32_t v) {
    gb_str(b, k);
    gb_u32(b, GB_U32);
    gb_u32(b, v);
}

static inline void gb_kv_f32(gguf_buf *b, const char *k, float v) {
    gb_str(b, k);
    gb_u32(b, GB_F32);
    gb_f32(b, v);
}

static inline void gb_kv_str(gguf_buf *b, const char *k, const char *v) {
    gb_str(b, k);
    gb_u32(b, GB_STRING);
    gb_str(b, v);
}

/* One tensor info with up to 4 dims. */
static inline void gb_tensor(gguf_buf *b, const char *name, int n_dims, const uint64_t *ne,
                             uint32_t type, uint64_t offset) {
    gb_str(b, name);
    gb_u32(b, (uint32_t)n_dims);
    for (int i = 0; i < n_dims; i++)
        gb_u64(b, ne[i]);
    gb_u32(b, type);
    gb_u64(b, offset);
}

static inline void gb_free(gguf_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Reads a whole file into memory (test helper); NULL on failure. */
static inline unsigned char *gb_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

#endif
