/* gguf.c — parsing and validating GGUF files (see gguf.h for the guarantees
 * a successful parse gives).
 *
 * File layout (all little-endian):
 *   "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x (string key, u32 value type, value),
 *   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *                u64 offset),
 *   padding to general.alignment (default 32), then the data section;
 *   a string is u64 length + bytes; an array is u32 element type, u64 count,
 *   elements.
 *
 * Hostile input: every count is checked against the bytes left before
 * anything is allocated (a key/value pair takes at least 13 bytes, a tensor
 * info 32), so allocations are bounded by the file size. Duplicate names are
 * found by sorting, so adversarial files with millions of keys stay
 * O(n log n). */
#include "formats/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/gguf_quants.h"

#define MIN_KV_BYTES 13     /* 8 (key length) + 4 (type) + 1 (smallest value) */
#define MIN_TENSOR_BYTES 32 /* 8 (name length) + 4 + 8 (one dim) + 4 + 8 */
#define MAX_ALIGNMENT (1u << 20)

typedef struct cursor {
    const unsigned char *base;
    size_t size, pos;
    const char *where;
    q35_err *e;
} cursor;

static const char *const vtype_names[Q35_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *q35_gguf_vtype_name(uint32_t t) {
    return t < Q35_GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

/* Bytes of a fixed-size value type; 0 for string/array/unknown. */
static size_t vtype_size(uint32_t t) {
    switch (t) {
    case Q35_GGUF_U8:
    case Q35_GGUF_I8:
    case Q35_GGUF_BOOL: return 1;
    case Q35_GGUF_U16:
    case Q35_GGUF_I16: return 2;
    case Q35_GGUF_U32:
    case Q35_GGUF_I32:
    case Q35_GGUF_F32: return 4;
    case Q35_GGUF_U64:
    case Q35_GGUF_I64:
    case Q35_GGUF_F64: return 8;
    default: return 0;
    }
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

const char *q35_gguf_str_print(q35_gguf_str s, char *buf, size_t n) {
    size_t o = 0;
    if (n == 0) return buf;
    for (size_t i = 0; i < s.len && o + 5 < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (o >= 80) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        }
    }
    buf[o < n ? o : n - 1] = 0;
    return buf;
}

/* ------------------------------------------------------------ raw reading */

static size_t left(const cursor *c) {
    return c->size - c->pos;
}

static int need(cursor *c, size_t n, const char *what) {
    if (n > left(c))
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: %s at offset %zu needs %zu bytes but the file ends at %zu",
                           c->where, what, c->pos, n, c->size);
    return Q35_OK;
}

static int read_u32(cursor *c, uint32_t *v, const char *what) {
    int rc = need(c, 4, what);
    if (rc) return rc;
    *v = le32(c->base + c->pos);
    c->pos += 4;
    return Q35_OK;
}

static int read_u64(cursor *c, uint64_t *v, const char *what) {
    int rc = need(c, 8, what);
    if (rc) return rc;
    *v = le64(c->base + c->pos);
    c->pos += 8;
    return Q35_OK;
}

static int read_str(cursor *c, q35_gguf_str *s, const char *what) {
    size_t at = c->pos;
    uint64_t n;
    int rc = read_u64(c, &n, what);
    if (rc) return rc;
    if (n > left(c))
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: %s at offset %zu has length %llu, past the end of the file (%zu "
                           "bytes left)",
                           c->where, what, at, (unsigned long long)n, left(c));
    s->p = (const char *)c->base + c->pos;
    s->len = (size_t)n;
    c->pos += (size_t)n;
    return Q35_OK;
}

/* ----------------------------------------------------------------- values */

/* Checks one value of type t at the cursor and steps over it. `key` is for
 * messages. Arrays of arrays are refused: no GGUF writer produces them and
 * they would make validation recursive. */
static int skip_value(cursor *c, uint32_t t, const char *key, q35_gguf_kv *kv) {
    size_t at = c->pos;
    if (t == Q35_GGUF_STRING) {
        q35_gguf_str s;
        return read_str(c, &s, key);
    }
    if (t == Q35_GGUF_ARRAY) {
        uint32_t at_type;
        uint64_t n;
        int rc = read_u32(c, &at_type, key);
        if (!rc) rc = read_u64(c, &n, key);
        if (rc) return rc;
        if (at_type >= Q35_GGUF_VTYPE_COUNT)
            return q35_err_set(c->e, Q35_EFORMAT,
                               "%s: key %s: array at offset %zu has unknown element type %u",
                               c->where, key, at, at_type);
        if (at_type == Q35_GGUF_ARRAY)
            return q35_err_set(c->e, Q35_EFORMAT,
                               "%s: key %s: array at offset %zu holds arrays (not supported)",
                               c->where, key, at);
        kv->arr_type = (q35_gguf_vtype)at_type;
        kv->arr_n = n;
        kv->val = c->base + c->pos;
        size_t es = vtype_size(at_type);
        if (es) {
            if (n > left(c) / es)
                return q35_err_set(c->e, Q35_EFORMAT,
                                   "%s: key %s: array at offset %zu claims %llu %s elements, more "
                                   "than the %zu bytes left in the file",
                                   c->where, key, at, (unsigned long long)n,
                                   q35_gguf_vtype_name(at_type), left(c));
            if (at_type == Q35_GGUF_BOOL) {
                for (uint64_t i = 0; i < n; i++)
                    if (c->base[c->pos + i] > 1)
                        return q35_err_set(c->e, Q35_EFORMAT,
                                           "%s: key %s: element %llu is not a bool (%u)", c->where,
                                           key, (unsigned long long)i, c->base[c->pos + i]);
            }
            c->pos += (size_t)n * es;
            return Q35_OK;
        }
        /* strings: at least 8 bytes each, then walk them */
        if (n > left(c) / 8)
            return q35_err_set(c->e, Q35_EFORMAT,
                               "%s: key %s: array at offset %zu claims %llu strings, more than "
                               "the %zu bytes left in the file can hold",
                               c->where, key, at, (unsigned long long)n, left(c));
        for (uint64_t i = 0; i < n; i++) {
            q35_gguf_str s;
            int rc2 = read_str(c, &s, key);
            if (rc2) {
                q35_err_prefix(c->e, "element %llu", (unsigned long long)i);
                return rc2;
            }
        }
        return Q35_OK;
    }
    size_t es = vtype_size(t);
    if (!es)
        return q35_err_set(c->e, Q35_EFORMAT, "%s: key %s at offset %zu has unknown value type %u",
                           c->where, key, at, t);
    int rc = need(c, es, key);
    if (rc) return rc;
    if (t == Q35_GGUF_BOOL && c->base[c->pos] > 1)
        return q35_err_set(c->e, Q35_EFORMAT, "%s: key %s: value %u at offset %zu is not a bool",
                           c->where, key, c->base[c->pos], c->pos);
    c->pos += es;
    return Q35_OK;
}

static int parse_kv(cursor *c, q35_gguf_kv *kv, int64_t index) {
    char name[128];
    kv->file_offset = c->pos;
    int rc = read_str(c, &kv->key, "metadata key");
    if (rc) {
        q35_err_prefix(c->e, "key/value %lld", (long long)index);
        return rc;
    }
    q35_gguf_str_print(kv->key, name, sizeof name);
    uint32_t t;
    rc = read_u32(c, &t, name);
    if (rc) return rc;
    if (t >= Q35_GGUF_VTYPE_COUNT)
        return q35_err_set(c->e, Q35_EFORMAT, "%s: key %s at offset %zu has unknown value type %u",
                           c->where, name, kv->file_offset, t);
    kv->type = (q35_gguf_vtype)t;
    kv->val = c->base + c->pos;
    size_t start = c->pos;
    rc = skip_value(c, t, name, kv);
    if (rc) return rc;
    if (t != Q35_GGUF_ARRAY) kv->val = c->base + start;
    kv->val_bytes = c->pos - (size_t)(kv->val - c->base);
    return Q35_OK;
}

/* ---------------------------------------------------------------- tensors */

static int parse_tensor_info(cursor *c, q35_gguf_tensor *t, int64_t index) {
    char name[128];
    t->info_offset = c->pos;
    int rc = read_str(c, &t->name, "tensor name");
    if (rc) {
        q35_err_prefix(c->e, "tensor info %lld", (long long)index);
        return rc;
    }
    q35_gguf_str_print(t->name, name, sizeof name);
    if (t->name.len == 0 || t->name.len > Q35_GGUF_MAX_NAME)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: tensor info %lld at offset %zu: name length %zu is not in 1..%d",
                           c->where, (long long)index, t->info_offset, t->name.len,
                           Q35_GGUF_MAX_NAME);
    uint32_t nd;
    rc = read_u32(c, &nd, name);
    if (rc) return rc;
    if (nd < 1 || nd > Q35_GGUF_MAX_DIMS)
        return q35_err_set(c->e, Q35_EFORMAT, "%s: tensor %s: %u dimensions (must be 1..%d)",
                           c->where, name, nd, Q35_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    int64_t n_elems = 1;
    for (int i = 0; i < Q35_GGUF_MAX_DIMS; i++)
        t->ne[i] = 1;
    for (uint32_t i = 0; i < nd; i++) {
        uint64_t d;
        rc = read_u64(c, &d, name);
        if (rc) return rc;
        if (d == 0 || d > (uint64_t)INT64_MAX)
            return q35_err_set(c->e, Q35_EFORMAT, "%s: tensor %s: dimension %u is %llu", c->where,
                               name, i, (unsigned long long)d);
        t->ne[i] = (int64_t)d;
        if (__builtin_mul_overflow(n_elems, t->ne[i], &n_elems))
            return q35_err_set(c->e, Q35_EFORMAT,
                               "%s: tensor %s: the element count overflows 64 bits", c->where,
                               name);
    }
    t->n_elems = n_elems;
    uint32_t type;
    rc = read_u32(c, &type, name);
    if (!rc) rc = read_u64(c, &t->offset, name);
    if (rc) return rc;
    const q35_ggml_type_info *ti = q35_ggml_type_get(type);
    if (!ti)
        return q35_err_set(c->e, Q35_EFORMAT, "%s: tensor %s: unknown ggml type %u", c->where, name,
                           type);
    t->type = type;
    if (t->ne[0] % ti->block_elems != 0)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: tensor %s: first dimension %lld is not a multiple of the %s "
                           "block size %d",
                           c->where, name, (long long)t->ne[0], ti->name, ti->block_elems);
    int64_t bytes;
    if (__builtin_mul_overflow(n_elems / ti->block_elems, (int64_t)ti->block_bytes, &bytes) ||
        (uint64_t)bytes > SIZE_MAX)
        return q35_err_set(c->e, Q35_EFORMAT, "%s: tensor %s: the byte size overflows", c->where,
                           name);
    t->n_bytes = (size_t)bytes;
    return Q35_OK;
}

/* ---------------------------------------------------------- duplicates */

static int cmp_str(q35_gguf_str a, q35_gguf_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int r = n ? memcmp(a.p, b.p, n) : 0;
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_kv_ptr(const void *a, const void *b) {
    return cmp_str((*(const q35_gguf_kv *const *)a)->key, (*(const q35_gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return cmp_str((*(const q35_gguf_tensor *const *)a)->name,
                   (*(const q35_gguf_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    uint64_t x = (*(const q35_gguf_tensor *const *)a)->offset;
    uint64_t y = (*(const q35_gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------- top level */

static int check_alignment(q35_gguf *g, cursor *c) {
    g->alignment = Q35_GGUF_DEFAULT_ALIGNMENT;
    const q35_gguf_kv *kv = q35_gguf_find(g, "general.alignment");
    if (!kv) return Q35_OK;
    int64_t a;
    int rc = q35_gguf_get_int(g, "general.alignment", 1, MAX_ALIGNMENT, &a, c->e);
    if (rc) return rc;
    if ((a & (a - 1)) != 0)
        return q35_err_set(c->e, Q35_EFORMAT, "%s: general.alignment %lld is not a power of two",
                           c->where, (long long)a);
    g->alignment = (size_t)a;
    return Q35_OK;
}

static int check_tensor_data(q35_gguf *g, cursor *c) {
    size_t data_size = g->data_offset <= g->size ? g->size - g->data_offset : 0;
    char name[128];
    for (int64_t i = 0; i < g->n_tensors; i++) {
        q35_gguf_tensor *t = &g->tensors[i];
        q35_gguf_str_print(t->name, name, sizeof name);
        if (t->offset % g->alignment != 0)
            return q35_err_set(c->e, Q35_EFORMAT,
                               "%s: tensor %s: data offset %llu is not a multiple of the "
                               "alignment %zu",
                               c->where, name, (unsigned long long)t->offset, g->alignment);
        if (g->data_offset > g->size || t->offset > data_size || t->n_bytes > data_size - t->offset)
            return q35_err_set(c->e, Q35_EFORMAT,
                               "%s: tensor %s: data [%llu, +%zu) at file offset %zu runs past "
                               "the end of the file (%zu bytes)",
                               c->where, name, (unsigned long long)t->offset, t->n_bytes,
                               g->data_offset, g->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    if (g->n_tensors < 2) return Q35_OK;
    const q35_gguf_tensor **by_off = malloc((size_t)g->n_tensors * sizeof *by_off);
    if (!by_off) return q35_err_set(c->e, Q35_ENOMEM, "%s: out of memory", c->where);
    for (int64_t i = 0; i < g->n_tensors; i++)
        by_off[i] = &g->tensors[i];
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, cmp_tensor_offset);
    int rc = Q35_OK;
    for (int64_t i = 0; i + 1 < g->n_tensors; i++) {
        const q35_gguf_tensor *a = by_off[i], *b = by_off[i + 1];
        if (a->offset + a->n_bytes > b->offset) {
            char bname[128];
            q35_gguf_str_print(a->name, name, sizeof name);
            q35_gguf_str_print(b->name, bname, sizeof bname);
            rc = q35_err_set(c->e, Q35_EFORMAT,
                             "%s: tensors %s [%llu, +%zu) and %s [%llu, ...) overlap", c->where,
                             name, (unsigned long long)a->offset, a->n_bytes, bname,
                             (unsigned long long)b->offset);
            break;
        }
    }
    free(by_off);
    return rc;
}

static int build_indexes(q35_gguf *g, cursor *c) {
    char name[128];
    if (g->n_kv) {
        g->kv_by_key = malloc((size_t)g->n_kv * sizeof *g->kv_by_key);
        if (!g->kv_by_key) return q35_err_set(c->e, Q35_ENOMEM, "%s: out of memory", c->where);
        for (int64_t i = 0; i < g->n_kv; i++)
            g->kv_by_key[i] = &g->kvs[i];
        qsort(g->kv_by_key, (size_t)g->n_kv, sizeof *g->kv_by_key, cmp_kv_ptr);
        for (int64_t i = 0; i + 1 < g->n_kv; i++)
            if (!cmp_str(g->kv_by_key[i]->key, g->kv_by_key[i + 1]->key))
                return q35_err_set(c->e, Q35_EFORMAT, "%s: key %s appears twice (offsets %zu, %zu)",
                                   c->where,
                                   q35_gguf_str_print(g->kv_by_key[i]->key, name, sizeof name),
                                   g->kv_by_key[i]->file_offset, g->kv_by_key[i + 1]->file_offset);
    }
    if (g->n_tensors) {
        g->tensor_by_name = malloc((size_t)g->n_tensors * sizeof *g->tensor_by_name);
        if (!g->tensor_by_name) return q35_err_set(c->e, Q35_ENOMEM, "%s: out of memory", c->where);
        for (int64_t i = 0; i < g->n_tensors; i++)
            g->tensor_by_name[i] = &g->tensors[i];
        qsort(g->tensor_by_name, (size_t)g->n_tensors, sizeof *g->tensor_by_name, cmp_tensor_name);
        for (int64_t i = 0; i + 1 < g->n_tensors; i++)
            if (!cmp_str(g->tensor_by_name[i]->name, g->tensor_by_name[i + 1]->name))
                return q35_err_set(
                    c->e, Q35_EFORMAT, "%s: tensor %s appears twice", c->where,
                    q35_gguf_str_print(g->tensor_by_name[i]->name, name, sizeof name));
    }
    return Q35_OK;
}

static int parse_all(q35_gguf *g, cursor *c) {
    if (c->size < 24)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: %zu bytes is too short for a GGUF header (24 bytes)", c->where,
                           c->size);
    if (memcmp(c->base, "GGUF", 4) != 0) {
        char shown[32];
        q35_gguf_str s = {(const char *)c->base, 4};
        return q35_err_set(c->e, Q35_EFORMAT, "%s: bad magic \"%s\" (a GGUF file starts with GGUF)",
                           c->where, q35_gguf_str_print(s, shown, sizeof shown));
    }
    c->pos = 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    read_u32(c, &version, "version");
    read_u64(c, &n_tensors, "tensor count");
    read_u64(c, &n_kv, "metadata count");
    if (version == 1)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: GGUF version 1 is not supported (only versions 2 and 3)", c->where);
    if (version == 0x02000000u || version == 0x03000000u)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: this GGUF file is big-endian; only little-endian files are "
                           "supported",
                           c->where);
    if (version != 2 && version != 3)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: unknown GGUF version %u (only versions 2 and 3 are supported)",
                           c->where, version);
    g->version = version;
    if (n_kv > left(c) / MIN_KV_BYTES)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: metadata count %llu at offset 16 cannot fit in the %zu bytes of "
                           "the file",
                           c->where, (unsigned long long)n_kv, c->size);
    if (n_tensors > left(c) / MIN_TENSOR_BYTES)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: tensor count %llu at offset 8 cannot fit in the %zu bytes of "
                           "the file",
                           c->where, (unsigned long long)n_tensors, c->size);
    g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
    if (!g->kvs) return q35_err_set(c->e, Q35_ENOMEM, "%s: out of memory", c->where);
    for (uint64_t i = 0; i < n_kv; i++) {
        int rc = parse_kv(c, &g->kvs[i], (int64_t)i);
        if (rc) return rc;
        g->n_kv = (int64_t)i + 1;
    }
    if (n_tensors > left(c) / MIN_TENSOR_BYTES)
        return q35_err_set(c->e, Q35_EFORMAT,
                           "%s: tensor count %llu cannot fit in the %zu bytes left after the "
                           "metadata (offset %zu)",
                           c->where, (unsigned long long)n_tensors, left(c), c->pos);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors) return q35_err_set(c->e, Q35_ENOMEM, "%s: out of memory", c->where);
    for (uint64_t i = 0; i < n_tensors; i++) {
        int rc = parse_tensor_info(c, &g->tensors[i], (int64_t)i);
        if (rc) return rc;
        g->n_tensors = (int64_t)i + 1;
    }
    int rc = build_indexes(g, c);
    if (!rc) rc = check_alignment(g, c);
    if (rc) return rc;
    g->data_offset = c->pos + (g->alignment - c->pos % g->alignment) % g->alignment;
    return check_tensor_data(g, c);
}

int q35_gguf_parse(q35_gguf *g, const void *data, size_t size, const char *where, q35_err *e) {
    memset(g, 0, sizeof *g);
    g->where = strdup(where ? where : "gguf");
    if (!g->where) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    g->base = data;
    g->size = size;
    cursor c = {data, size, 0, g->where, e};
    int rc = parse_all(g, &c);
    if (rc) q35_gguf_close(g);
    return rc;
}

int q35_gguf_open(q35_gguf *g, const char *path, q35_err *e) {
    q35_mapped_file f;
    int rc = q35_mapped_file_open(&f, path, e);
    if (rc) {
        memset(g, 0, sizeof *g);
        return rc;
    }
    rc = q35_gguf_parse(g, f.data, f.size, path, e);
    if (rc) {
        q35_mapped_file_close(&f);
        return rc;
    }
    g->file = f;
    return Q35_OK;
}

void q35_gguf_close(q35_gguf *g) {
    if (!g) return;
    free(g->kvs);
    free(g->tensors);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    free(g->where);
    q35_mapped_file_close(&g->file);
    memset(g, 0, sizeof *g);
}

q35_mapped_file q35_gguf_take_file(q35_gguf *g) {
    q35_mapped_file f = g->file;
    memset(&g->file, 0, sizeof g->file);
    return f;
}

/* ---------------------------------------------------------------- lookups */

static int cmp_key_with(const char *z, q35_gguf_str s) {
    q35_gguf_str zs = {z, strlen(z)};
    return cmp_str(zs, s);
}

const q35_gguf_kv *q35_gguf_find(const q35_gguf *g, const char *key) {
    int64_t lo = 0, hi = g->n_kv - 1;
    if (!g->kv_by_key) return NULL;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = cmp_key_with(key, g->kv_by_key[mid]->key);
        if (r == 0) return g->kv_by_key[mid];
        if (r < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const q35_gguf_tensor *q35_gguf_find_tensor(const q35_gguf *g, const char *name) {
    int64_t lo = 0, hi = g->n_tensors - 1;
    if (!g->tensor_by_name) return NULL;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = cmp_key_with(name, g->tensor_by_name[mid]->name);
        if (r == 0) return g->tensor_by_name[mid];
        if (r < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Reads a scalar of numeric type t at p. is_int tells integers from floats;
 * unsigned 64-bit values above INT64_MAX are reported through *too_big. */
static void read_number(uint32_t t, const unsigned char *p, bool *is_int, int64_t *iv, double *fv,
                        bool *too_big) {
    *is_int = true;
    *too_big = false;
    switch (t) {
    case Q35_GGUF_U8:
    case Q35_GGUF_BOOL: *iv = p[0]; break;
    case Q35_GGUF_I8: *iv = (int8_t)p[0]; break;
    case Q35_GGUF_U16: *iv = (uint16_t)(p[0] | (p[1] << 8)); break;
    case Q35_GGUF_I16: *iv = (int16_t)(uint16_t)(p[0] | (p[1] << 8)); break;
    case Q35_GGUF_U32: *iv = le32(p); break;
    case Q35_GGUF_I32: *iv = (int32_t)le32(p); break;
    case Q35_GGUF_U64: {
        uint64_t u = le64(p);
        *too_big = u > (uint64_t)INT64_MAX;
        *iv = (int64_t)(u & (uint64_t)INT64_MAX);
        break;
    }
    case Q35_GGUF_I64: *iv = (int64_t)le64(p); break;
    case Q35_GGUF_F32: {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, 4);
        *is_int = false;
        *fv = f;
        break;
    }
    case Q35_GGUF_F64: {
        uint64_t u = le64(p);
        double d;
        memcpy(&d, &u, 8);
        *is_int = false;
        *fv = d;
        break;
    }
    default:
        *is_int = false;
        *fv = 0;
        break;
    }
}

static bool is_numeric(uint32_t t) {
    return vtype_size(t) != 0;
}

static const q35_gguf_kv *find_or_fail(const q35_gguf *g, const char *key, q35_err *e) {
    const q35_gguf_kv *kv = q35_gguf_find(g, key);
    if (!kv) q35_err_set(e, Q35_ENOTFOUND, "%s: metadata key %s is missing", g->where, key);
    return kv;
}

int q35_gguf_get_int(const q35_gguf *g, const char *key, int64_t min, int64_t max, int64_t *out,
                     q35_err *e) {
    const q35_gguf_kv *kv = find_or_fail(g, key, e);
    if (!kv) return Q35_ENOTFOUND;
    bool is_int = false, too_big = false;
    int64_t v = 0;
    double f;
    if (is_numeric(kv->type) && kv->type != Q35_GGUF_BOOL)
        read_number(kv->type, kv->val, &is_int, &v, &f, &too_big);
    if (!is_int)
        return q35_err_set(e, Q35_EFORMAT, "%s: %s is a %s, expected an integer", g->where, key,
                           q35_gguf_vtype_name(kv->type));
    if (too_big || v < min || v > max)
        return q35_err_set(e, Q35_EFORMAT, "%s: %s = %s%lld is outside [%lld, %lld]", g->where, key,
                           too_big ? "huge " : "", (long long)v, (long long)min, (long long)max);
    *out = v;
    return Q35_OK;
}

int q35_gguf_get_float(const q35_gguf *g, const char *key, double *out, q35_err *e) {
    const q35_gguf_kv *kv = find_or_fail(g, key, e);
    if (!kv) return Q35_ENOTFOUND;
    if (!is_numeric(kv->type) || kv->type == Q35_GGUF_BOOL)
        return q35_err_set(e, Q35_EFORMAT, "%s: %s is a %s, expected a number", g->where, key,
                           q35_gguf_vtype_name(kv->type));
    bool is_int, too_big;
    int64_t v = 0;
    double f = 0;
    read_number(kv->type, kv->val, &is_int, &v, &f, &too_big);
    *out = is_int ? (double)v : f;
    return Q35_OK;
}

int q35_gguf_get_bool(const q35_gguf *g, const char *key, bool *out, q35_err *e) {
    const q35_gguf_kv *kv = find_or_fail(g, key, e);
    if (!kv) return Q35_ENOTFOUND;
    if (kv->type != Q35_GGUF_BOOL)
        return q35_err_set(e, Q35_EFORMAT, "%s: %s is a %s, expected a bool", g->where, key,
                           q35_gguf_vtype_name(kv->type));
    *out = kv->val[0] != 0;
    return Q35_OK;
}

int q35_gguf_get_str(const q35_gguf *g, const char *key, q35_gguf_str *out, q35_err *e) {
    const q35_gguf_kv *kv = find_or_fail(g, key, e);
    if (!kv) return Q35_ENOTFOUND;
    if (kv->type != Q35_GGUF_STRING)
        return q35_err_set(e, Q35_EFORMAT, "%s: %s is a %s, expected a string", g->where, key,
                           q35_gguf_vtype_name(kv->type));
    out->p = (const char *)kv->val + 8;
    out->len = kv->val_bytes - 8;
    return Q35_OK;
}

static int arr_number(const q35_gguf_kv *kv, uint64_t i, bool *is_int, int64_t *iv, double *fv,
                      q35_err *e) {
    char name[128];
    if (kv->type != Q35_GGUF_ARRAY || !is_numeric(kv->arr_type))
        return q35_err_set(e, Q35_EFORMAT, "%s is not an array of numbers",
                           q35_gguf_str_print(kv->key, name, sizeof name));
    if (i >= kv->arr_n)
        return q35_err_set(e, Q35_EFORMAT, "%s has %llu elements, element %llu is missing",
                           q35_gguf_str_print(kv->key, name, sizeof name),
                           (unsigned long long)kv->arr_n, (unsigned long long)i);
    bool too_big;
    read_number(kv->arr_type, kv->val + i * vtype_size(kv->arr_type), is_int, iv, fv, &too_big);
    if (too_big)
        return q35_err_set(e, Q35_EFORMAT, "%s: element %llu is too large",
                           q35_gguf_str_print(kv->key, name, sizeof name), (unsigned long long)i);
    return Q35_OK;
}

int q35_gguf_arr_int(const q35_gguf_kv *kv, uint64_t i, int64_t *out, q35_err *e) {
    bool is_int;
    int64_t v;
    double f;
    int rc = arr_number(kv, i, &is_int, &v, &f, e);
    if (rc) return rc;
    if (!is_int) {
        char name[128];
        return q35_err_set(e, Q35_EFORMAT, "%s holds %s values, expected integers",
                           q35_gguf_str_print(kv->key, name, sizeof name),
                           q35_gguf_vtype_name(kv->arr_type));
    }
    *out = v;
    return Q35_OK;
}

int q35_gguf_arr_float(const q35_gguf_kv *kv, uint64_t i, double *out, q35_err *e) {
    bool is_int;
    int64_t v;
    double f;
    int rc = arr_number(kv, i, &is_int, &v, &f, e);
    if (rc) return rc;
    *out = is_int ? (double)v : f;
    return Q35_OK;
}

void q35_gguf_arr_next_str(const q35_gguf_kv *kv, size_t *cursor, q35_gguf_str *out) {
    const unsigned char *p = kv->val + *cursor;
    size_t n = (size_t)le64(p);
    out->p = (const char *)p + 8;
    out->len = n;
    *cursor += 8 + n;
}
