/* gguf.h — a validating reader of GGUF files (llama.cpp's model format,
 * versions 2 and 3). Nothing is copied: keys, strings, arrays and tensor
 * data are views into the mapped file. Once q35_gguf_parse succeeds the file
 * is known to be consistent, so consumers need not re-check:
 *   - every count, string and array fits inside the file;
 *   - every value has a known type (arrays of arrays are refused);
 *   - keys and tensor names are unique;
 *   - every tensor has 1..4 dimensions, each >= 1, a known ggml type, a
 *     first dimension that is whole blocks of that type, an element and
 *     byte count that do not overflow, data that starts on the file's
 *     alignment inside the data section, ends inside the file, and overlaps
 *     no other tensor.
 * Strings are NOT NUL-terminated: use their length (print with %.*s). */
#ifndef Q35_FORMATS_GGUF_H
#define Q35_FORMATS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mapped_file.h"
#include "q35.h"

#define Q35_GGUF_MAX_DIMS 4
#define Q35_GGUF_MAX_NAME 256 /* longest tensor name accepted */
#define Q35_GGUF_DEFAULT_ALIGNMENT 32

/* Value types of metadata (the numbering is the file format's). */
typedef enum q35_gguf_vtype {
    Q35_GGUF_U8 = 0,
    Q35_GGUF_I8 = 1,
    Q35_GGUF_U16 = 2,
    Q35_GGUF_I16 = 3,
    Q35_GGUF_U32 = 4,
    Q35_GGUF_I32 = 5,
    Q35_GGUF_F32 = 6,
    Q35_GGUF_BOOL = 7,
    Q35_GGUF_STRING = 8,
    Q35_GGUF_ARRAY = 9,
    Q35_GGUF_U64 = 10,
    Q35_GGUF_I64 = 11,
    Q35_GGUF_F64 = 12,
    Q35_GGUF_VTYPE_COUNT
} q35_gguf_vtype;

/* A string inside the file: `len` bytes at `p`, no terminator. */
typedef struct q35_gguf_str {
    const char *p;
    size_t len;
} q35_gguf_str;

typedef struct q35_gguf_kv {
    q35_gguf_str key;
    q35_gguf_vtype type;
    /* Scalars: `val` points at the value's bytes (little-endian, unaligned).
     * Strings: `val` points at the 8-byte length that precedes the bytes.
     * Arrays: `arr_type` and `arr_n` describe the elements and `val` points
     * at the first one; string elements are walked with
     * q35_gguf_arr_next_str. */
    q35_gguf_vtype arr_type;
    uint64_t arr_n;
    const unsigned char *val;
    size_t val_bytes;   /* bytes of the value (all elements for arrays) */
    size_t file_offset; /* where the key/value pair starts, for messages */
} q35_gguf_kv;

typedef struct q35_gguf_tensor {
    q35_gguf_str name;
    uint32_t type; /* a q35_ggml_type */
    int n_dims;
    int64_t ne[Q35_GGUF_MAX_DIMS]; /* ggml order: ne[0] varies fastest; unused = 1 */
    int64_t n_elems;
    size_t n_bytes;
    uint64_t offset; /* from the start of the data section */
    const unsigned char *data;
    size_t info_offset; /* where the tensor's info starts in the file */
} q35_gguf_tensor;

typedef struct q35_gguf {
    const unsigned char *base; /* the whole file */
    size_t size;
    char *where;          /* owned copy of the file name for messages */
    q35_mapped_file file; /* set by q35_gguf_open; zeroed by parse */
    uint32_t version;
    size_t alignment;
    size_t data_offset; /* start of the data section in the file */
    q35_gguf_kv *kvs;   /* owned array */
    int64_t n_kv;
    q35_gguf_tensor *tensors; /* owned array, in file order */
    int64_t n_tensors;
    /* owned lookup indexes, sorted by name */
    const q35_gguf_kv **kv_by_key;
    const q35_gguf_tensor **tensor_by_name;
} q35_gguf;

/* Maps `path` and parses it. On success the caller owns g and releases it
 * with q35_gguf_close; on failure g is left closed (zeroed). */
int q35_gguf_open(q35_gguf *g, const char *path, q35_err *e);

/* Parses a GGUF image held in memory (the caller keeps `data` alive and
 * unchanged until q35_gguf_close). `where` names it in messages. */
int q35_gguf_parse(q35_gguf *g, const void *data, size_t size, const char *where, q35_err *e);

/* Frees the arrays and unmaps the file if q35_gguf_open mapped it. Safe on a
 * zeroed or already closed struct. */
void q35_gguf_close(q35_gguf *g);

/* Moves the file mapping out of g (the caller then closes it); g stays
 * usable until q35_gguf_close, which will no longer unmap. */
q35_mapped_file q35_gguf_take_file(q35_gguf *g);

/* Lookups by name (NUL-terminated). NULL when absent. */
const q35_gguf_kv *q35_gguf_find(const q35_gguf *g, const char *key);
const q35_gguf_tensor *q35_gguf_find_tensor(const q35_gguf *g, const char *name);

/* Typed getters. Each fails with Q35_ENOTFOUND when the key is absent and
 * Q35_EFORMAT when it has another type or a value out of range, with a
 * message naming the key; on failure *out is unchanged.
 *  - get_int accepts any integer type whose value fits in [min, max];
 *  - get_float accepts F32, F64 and integers;
 *  - get_str returns a view into the file. */
int q35_gguf_get_int(const q35_gguf *g, const char *key, int64_t min, int64_t max, int64_t *out,
                     q35_err *e);
int q35_gguf_get_float(const q35_gguf *g, const char *key, double *out, q35_err *e);
int q35_gguf_get_bool(const q35_gguf *g, const char *key, bool *out, q35_err *e);
int q35_gguf_get_str(const q35_gguf *g, const char *key, q35_gguf_str *out, q35_err *e);

/* Element i (< arr_n) of a numeric or bool array, as an integer or a double.
 * Fails (Q35_EFORMAT) for other element types or i out of range. */
int q35_gguf_arr_int(const q35_gguf_kv *kv, uint64_t i, int64_t *out, q35_err *e);
int q35_gguf_arr_float(const q35_gguf_kv *kv, uint64_t i, double *out, q35_err *e);

/* Walks a string array: start with *cursor = 0 and call arr_n times; each
 * call stores the next element. Valid only on a parsed string array. */
void q35_gguf_arr_next_str(const q35_gguf_kv *kv, size_t *cursor, q35_gguf_str *out);

/* Name of a value type ("u32", "string", ...). */
const char *q35_gguf_vtype_name(uint32_t t);

/* Writes `s` into buf (size n) for a message: at most ~80 characters, with
 * bytes outside printable ASCII escaped as \xNN. Returns buf. */
const char *q35_gguf_str_print(q35_gguf_str s, char *buf, size_t n);

/* True when s equals the NUL-terminated `z`. */
static inline bool q35_gguf_str_eq(q35_gguf_str s, const char *z) {
    size_t i = 0;
    for (; i < s.len; i++)
        if (z[i] == 0 || z[i] != s.p[i]) return false;
    return z[i] == 0;
}

#endif
