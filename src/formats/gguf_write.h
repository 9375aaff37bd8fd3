/* gguf_write.h — writing GGUF files (version 3, little-endian), the inverse
 * of gguf.h's reader. Two parts:
 *   - q35_gguf_kvs: an ordered list of metadata key/value pairs, each kept
 *     already serialized (type + value, as in the file). Setting a key that
 *     is there replaces its value in place, so a caller can override what a
 *     builder put in.
 *   - q35_gguf_writer: tensor infos declared up front (name, ggml type,
 *     shape), then the file is written in one pass: header, metadata, infos,
 *     and each tensor's data streamed in declaration order, every tensor
 *     starting on the alignment (general.alignment if the list sets it,
 *     else 32). The bytes go to a temporary file beside the destination,
 *     which is renamed over it only when complete: a failed or abandoned
 *     write leaves no partial file behind and an existing file untouched.
 * Errors are values naming the file and what failed. */
#ifndef Q35_FORMATS_GGUF_WRITE_H
#define Q35_FORMATS_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "formats/gguf.h"
#include "q35.h"

/* ------------------------------------------------------------- metadata */

typedef struct q35_gguf_kv_entry {
    char *key;            /* owned, NUL-terminated */
    unsigned char *value; /* owned: u32 value type, then the value as in the file */
    size_t value_bytes;
} q35_gguf_kv_entry;

/* Zero-initialize; release with q35_gguf_kvs_free. */
typedef struct q35_gguf_kvs {
    q35_gguf_kv_entry *items; /* owned, in file order */
    size_t n, cap;
} q35_gguf_kvs;

/* Frees every entry and zeroes *l. Safe on a zeroed list. */
void q35_gguf_kvs_free(q35_gguf_kvs *l);

/* The entry for `key`, or NULL. The pointer is valid until the list changes. */
const q35_gguf_kv_entry *q35_gguf_kvs_find(const q35_gguf_kvs *l, const char *key);

/* Removes `key` if present (later entries move up). */
void q35_gguf_kvs_remove(q35_gguf_kvs *l, const char *key);

/* Setters: each copies what it is given; a key already in the list gets the
 * new value in its old place. Keys must be non-empty and at most 65535
 * bytes; strings may hold any bytes (GGUF strings carry their length).
 * Fail with Q35_EINVAL (bad key) or Q35_ENOMEM. */
int q35_gguf_kvs_set_u32(q35_gguf_kvs *l, const char *key, uint32_t v, q35_err *e);
int q35_gguf_kvs_set_i32(q35_gguf_kvs *l, const char *key, int32_t v, q35_err *e);
int q35_gguf_kvs_set_u64(q35_gguf_kvs *l, const char *key, uint64_t v, q35_err *e);
int q35_gguf_kvs_set_f32(q35_gguf_kvs *l, const char *key, float v, q35_err *e);
int q35_gguf_kvs_set_bool(q35_gguf_kvs *l, const char *key, bool v, q35_err *e);
int q35_gguf_kvs_set_str(q35_gguf_kvs *l, const char *key, const char *s, q35_err *e);
int q35_gguf_kvs_set_strn(q35_gguf_kvs *l, const char *key, const char *s, size_t len, q35_err *e);
int q35_gguf_kvs_set_arr_i32(q35_gguf_kvs *l, const char *key, const int32_t *v, size_t n,
                             q35_err *e);
int q35_gguf_kvs_set_arr_bool(q35_gguf_kvs *l, const char *key, const bool *v, size_t n,
                              q35_err *e);
/* n strings: s[i] of lens[i] bytes (lens NULL: NUL-terminated strings). */
int q35_gguf_kvs_set_arr_str(q35_gguf_kvs *l, const char *key, const char *const *s,
                             const size_t *lens, size_t n, q35_err *e);

/* Sets every entry of `src` in `dst` (in src's order; keys dst has keep
 * their place and take src's value). */
int q35_gguf_kvs_merge(q35_gguf_kvs *dst, const q35_gguf_kvs *src, q35_err *e);

/* Sets `kv` (a pair of a parsed file) under its own key, value bytes
 * copied verbatim, whatever its type. */
int q35_gguf_kvs_set_parsed(q35_gguf_kvs *l, const q35_gguf_kv *kv, q35_err *e);

/* ---------------------------------------------------------------- writer */

typedef struct q35_gguf_wtensor {
    char *name; /* owned */
    uint32_t type;
    int n_dims;
    int64_t ne[Q35_GGUF_MAX_DIMS]; /* ggml order: ne[0] varies fastest; unused = 1 */
    size_t n_bytes;
    uint64_t offset; /* in the data section; set by q35_gguf_writer_begin */
} q35_gguf_wtensor;

/* Zero-initialize; release with q35_gguf_writer_free. */
typedef struct q35_gguf_writer {
    q35_gguf_wtensor *tensors; /* owned, in file order */
    size_t n_tensors, cap_tensors;
    size_t alignment;
    /* while writing (between begin and finish) */
    FILE *f;
    char *path;     /* owned: the destination */
    char *tmp_path; /* owned: the file being written */
    size_t cur;     /* tensor whose data comes next */
    size_t cur_done;
    uint64_t pos; /* bytes written so far */
} q35_gguf_writer;

/* Declares the next tensor: `n_dims` (1..4) dimensions in ggml order, a
 * ggml type q35_ggml_type_get knows, ne[0] a whole number of its blocks.
 * Fails with Q35_EINVAL (bad shape/type, duplicate name, name longer than
 * Q35_GGUF_MAX_NAME) or Q35_ENOMEM. Not allowed once writing began. */
int q35_gguf_writer_add_tensor(q35_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                               const int64_t *ne, q35_err *e);

/* Creates the temporary file beside `path` and writes the header, the
 * metadata of `kvs` (not kept) and the tensor infos. Fails with Q35_EIO
 * naming `path` when the directory cannot be written, or Q35_EINVAL on a
 * bad general.alignment in kvs (must be a u32 power of two). */
int q35_gguf_writer_begin(q35_gguf_writer *w, const q35_gguf_kvs *kvs, const char *path,
                          q35_err *e);

/* Appends `n` bytes of tensor data, in declaration order: a tensor may come
 * in several pieces, but a piece never runs past the tensor it belongs to
 * (Q35_EINVAL). Alignment padding is written between tensors. */
int q35_gguf_writer_put(q35_gguf_writer *w, const void *data, size_t n, q35_err *e);

/* The tensor whose data the next put writes, or NULL when all are done. */
const q35_gguf_wtensor *q35_gguf_writer_next(const q35_gguf_writer *w);

/* Checks every tensor was written, flushes the file to disk and renames it
 * over `path`. On failure the temporary file is removed. *file_bytes (may
 * be NULL) gets the file's size. */
int q35_gguf_writer_finish(q35_gguf_writer *w, uint64_t *file_bytes, q35_err *e);

/* Frees everything; a write that began and did not finish is abandoned
 * (its temporary file removed, `path` untouched). Zeroes *w. */
void q35_gguf_writer_free(q35_gguf_writer *w);

#endif
