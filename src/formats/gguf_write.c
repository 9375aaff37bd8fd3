/* gguf_write.c — serializing metadata and writing GGUF files atomically
 * (see gguf_write.h; the layout is the one gguf.c reads).
 *
 * The file is written to "<path>.tmp.<pid>.<n>" (created exclusively, mode
 * 0666 less the umask, in the destination's directory so the final rename
 * cannot cross file systems), flushed and fsync'ed, then renamed over
 * <path>. Every tensor, the last included, is followed by zero padding to
 * the alignment, as ggml's own writer does. */
#include "formats/gguf_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "formats/gguf_quants.h"

#define MAX_KEY 65535u
#define MAX_ALIGNMENT (1u << 20)
#define WRITE_BUFFER (1u << 20)

/* ------------------------------------------------------------ byte buffer */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(bytes *b, uint64_t v) {
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 8);
}

static void put_str(bytes *b, const char *s, size_t len) {
    put_u64(b, (uint64_t)len);
    put(b, s, len);
}

/* --------------------------------------------------------------- metadata */

void q35_gguf_kvs_free(q35_gguf_kvs *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static q35_gguf_kv_entry *find_entry(const q35_gguf_kvs *l, const char *key) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key)) return &l->items[i];
    return NULL;
}

const q35_gguf_kv_entry *q35_gguf_kvs_find(const q35_gguf_kvs *l, const char *key) {
    return find_entry(l, key);
}

void q35_gguf_kvs_remove(q35_gguf_kvs *l, const char *key) {
    q35_gguf_kv_entry *it = find_entry(l, key);
    if (!it) return;
    free(it->key);
    free(it->value);
    size_t i = (size_t)(it - l->items);
    memmove(it, it + 1, (l->n - i - 1) * sizeof *it);
    l->n--;
}

/* Stores the serialized value in b (taken over: freed on every path). */
static int set_value(q35_gguf_kvs *l, const char *key, bytes *b, q35_err *e) {
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen > MAX_KEY) {
        free(b->p);
        return q35_err_set(e, Q35_EINVAL, "GGUF metadata key \"%.64s\" is empty or too long",
                           key ? key : "");
    }
    if (b->oom) {
        free(b->p);
        return q35_err_set(e, Q35_ENOMEM, "out of memory for GGUF metadata key %s", key);
    }
    q35_gguf_kv_entry *it = find_entry(l, key);
    if (it) {
        free(it->value);
        it->value = b->p;
        it->value_bytes = b->n;
        return Q35_OK;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        q35_gguf_kv_entry *items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            free(b->p);
            return q35_err_set(e, Q35_ENOMEM, "out of memory for GGUF metadata key %s", key);
        }
        l->items = items;
        l->cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(b->p);
        return q35_err_set(e, Q35_ENOMEM, "out of memory for GGUF metadata key %s", key);
    }
    l->items[l->n++] = (q35_gguf_kv_entry){k, b->p, b->n};
    return Q35_OK;
}

static int set_scalar(q35_gguf_kvs *l, const char *key, uint32_t type, const void *v, size_t n,
                      q35_err *e) {
    bytes b = {0};
    put_u32(&b, type);
    put(&b, v, n); /* the host is little-endian (gguf.c reads the same way) */
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_u32(q35_gguf_kvs *l, const char *key, uint32_t v, q35_err *e) {
    bytes b = {0};
    put_u32(&b, Q35_GGUF_U32);
    put_u32(&b, v);
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_i32(q35_gguf_kvs *l, const char *key, int32_t v, q35_err *e) {
    bytes b = {0};
    put_u32(&b, Q35_GGUF_I32);
    put_u32(&b, (uint32_t)v);
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_u64(q35_gguf_kvs *l, const char *key, uint64_t v, q35_err *e) {
    bytes b = {0};
    put_u32(&b, Q35_GGUF_U64);
    put_u64(&b, v);
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_f32(q35_gguf_kvs *l, const char *key, float v, q35_err *e) {
    uint32_t u;
    memcpy(&u, &v, 4);
    bytes b = {0};
    put_u32(&b, Q35_GGUF_F32);
    put_u32(&b, u);
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_bool(q35_gguf_kvs *l, const char *key, bool v, q35_err *e) {
    unsigned char x = v ? 1 : 0;
    return set_scalar(l, key, Q35_GGUF_BOOL, &x, 1, e);
}

int q35_gguf_kvs_set_strn(q35_gguf_kvs *l, const char *key, const char *s, size_t len, q35_err *e) {
    bytes b = {0};
    put_u32(&b, Q35_GGUF_STRING);
    put_str(&b, s, len);
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_str(q35_gguf_kvs *l, const char *key, const char *s, q35_err *e) {
    return q35_gguf_kvs_set_strn(l, key, s, strlen(s), e);
}

int q35_gguf_kvs_set_arr_i32(q35_gguf_kvs *l, const char *key, const int32_t *v, size_t n,
                             q35_err *e) {
    bytes b = {0};
    put_u32(&b, Q35_GGUF_ARRAY);
    put_u32(&b, Q35_GGUF_I32);
    put_u64(&b, (uint64_t)n);
    for (size_t i = 0; i < n; i++)
        put_u32(&b, (uint32_t)v[i]);
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_arr_bool(q35_gguf_kvs *l, const char *key, const bool *v, size_t n,
                              q35_err *e) {
    bytes b = {0};
    put_u32(&b, Q35_GGUF_ARRAY);
    put_u32(&b, Q35_GGUF_BOOL);
    put_u64(&b, (uint64_t)n);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = v[i] ? 1 : 0;
        put(&b, &x, 1);
    }
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_set_arr_str(q35_gguf_kvs *l, const char *key, const char *const *s,
                             const size_t *lens, size_t n, q35_err *e) {
    bytes b = {0};
    put_u32(&b, Q35_GGUF_ARRAY);
    put_u32(&b, Q35_GGUF_STRING);
    put_u64(&b, (uint64_t)n);
    for (size_t i = 0; i < n; i++)
        put_str(&b, s[i], lens ? lens[i] : strlen(s[i]));
    return set_value(l, key, &b, e);
}

int q35_gguf_kvs_merge(q35_gguf_kvs *dst, const q35_gguf_kvs *src, q35_err *e) {
    for (size_t i = 0; src && i < src->n; i++) {
        bytes b = {0};
        put(&b, src->items[i].value, src->items[i].value_bytes);
        int rc = set_value(dst, src->items[i].key, &b, e);
        if (rc) return rc;
    }
    return Q35_OK;
}

int q35_gguf_kvs_set_parsed(q35_gguf_kvs *l, const q35_gguf_kv *kv, q35_err *e) {
    if (kv->key.len == 0 || kv->key.len > MAX_KEY || memchr(kv->key.p, 0, kv->key.len))
        return q35_err_set(e, Q35_EINVAL, "GGUF metadata key of %zu bytes cannot be copied",
                           kv->key.len);
    char *key = malloc(kv->key.len + 1);
    if (!key) return q35_err_set(e, Q35_ENOMEM, "out of memory for GGUF metadata");
    memcpy(key, kv->key.p, kv->key.len);
    key[kv->key.len] = 0;
    bytes b = {0};
    put_u32(&b, kv->type);
    if (kv->type == Q35_GGUF_ARRAY) {
        put_u32(&b, kv->arr_type);
        put_u64(&b, kv->arr_n);
    }
    put(&b, kv->val, kv->val_bytes);
    int rc = set_value(l, key, &b, e);
    free(key);
    return rc;
}

/* ----------------------------------------------------------------- writer */

int q35_gguf_writer_add_tensor(q35_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                               const int64_t *ne, q35_err *e) {
    if (w->f || w->path)
        return q35_err_set(e, Q35_EINVAL, "GGUF writer: tensor %s declared after writing began",
                           name);
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > Q35_GGUF_MAX_NAME)
        return q35_err_set(e, Q35_EINVAL,
                           "GGUF writer: tensor name \"%.64s\" is empty or longer "
                           "than %d bytes",
                           name, Q35_GGUF_MAX_NAME);
    const q35_ggml_type_info *ti = q35_ggml_type_get(type);
    if (!ti)
        return q35_err_set(e, Q35_EINVAL, "GGUF writer: tensor %s: unknown type %u", name, type);
    if (n_dims < 1 || n_dims > Q35_GGUF_MAX_DIMS)
        return q35_err_set(e, Q35_EINVAL, "GGUF writer: tensor %s: %d dimensions", name, n_dims);
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] < 1 || __builtin_mul_overflow(n, ne[i], &n))
            return q35_err_set(e, Q35_EINVAL, "GGUF writer: tensor %s: bad dimension %d (%lld)",
                               name, i, (long long)ne[i]);
    }
    if (ne[0] % ti->block_elems)
        return q35_err_set(e, Q35_EINVAL,
                           "GGUF writer: tensor %s: %lld columns are not whole %s blocks of %d",
                           name, (long long)ne[0], ti->name, ti->block_elems);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return q35_err_set(e, Q35_EINVAL, "GGUF writer: tensor %s declared twice", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        q35_gguf_wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return q35_err_set(e, Q35_ENOMEM, "out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    q35_gguf_wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < Q35_GGUF_MAX_DIMS; i++)
        t->ne[i] = i < n_dims ? ne[i] : 1;
    t->n_bytes = (size_t)(n / ti->block_elems) * (size_t)ti->block_bytes;
    w->n_tensors++;
    return Q35_OK;
}

static uint64_t align_up(uint64_t x, size_t a) {
    return (x + a - 1) / a * a;
}

/* The alignment the list asks for (general.alignment), else 32. */
static int alignment_of(const q35_gguf_kvs *kvs, size_t *out, q35_err *e) {
    *out = Q35_GGUF_DEFAULT_ALIGNMENT;
    const q35_gguf_kv_entry *a = kvs ? q35_gguf_kvs_find(kvs, "general.alignment") : NULL;
    if (!a) return Q35_OK;
    uint32_t type = 0, v = 0;
    if (a->value_bytes == 8) {
        memcpy(&type, a->value, 4);
        memcpy(&v, a->value + 4, 4);
    }
    if (type != Q35_GGUF_U32 || v == 0 || v > MAX_ALIGNMENT || (v & (v - 1)))
        return q35_err_set(e, Q35_EINVAL,
                           "GGUF writer: general.alignment must be a u32 power of two up to %u",
                           MAX_ALIGNMENT);
    *out = v;
    return Q35_OK;
}

static int io_fail(q35_gguf_writer *w, const char *what, int err, q35_err *e) {
    return q35_err_set(e, Q35_EIO, "%s: %s %s: %s", w->path, what, w->tmp_path, strerror(err));
}

static int write_bytes(q35_gguf_writer *w, const void *p, size_t n, q35_err *e) {
    if (n && fwrite(p, 1, n, w->f) != n) return io_fail(w, "cannot write", errno, e);
    w->pos += n;
    return Q35_OK;
}

static int write_zeros(q35_gguf_writer *w, size_t n, q35_err *e) {
    static const unsigned char zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        int rc = write_bytes(w, zeros, k, e);
        if (rc) return rc;
        n -= k;
    }
    return Q35_OK;
}

/* Removes the temporary file and forgets the write in progress. */
static void abandon(q35_gguf_writer *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
    if (w->tmp_path) unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->path);
    w->tmp_path = w->path = NULL;
}

/* Creates the temporary file exclusively; a clash (another writer, a
 * leftover of a killed one) picks another name. */
static int create_temp(q35_gguf_writer *w, q35_err *e) {
    size_t n = strlen(w->path) + 64;
    w->tmp_path = malloc(n);
    if (!w->tmp_path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long salt = (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20);
    for (int attempt = 0; attempt < 64; attempt++) {
        snprintf(w->tmp_path, n, "%s.tmp.%ld.%lx", w->path, (long)getpid(),
                 (salt + (unsigned long)attempt * 0x9e3779b9ul) & 0xfffffffful);
        int fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            int err = errno;
            int rc = q35_err_set(e, Q35_EIO, "%s: cannot create %s: %s", w->path, w->tmp_path,
                                 strerror(err));
            free(w->tmp_path);
            w->tmp_path = NULL; /* nothing was created */
            return rc;
        }
        w->f = fdopen(fd, "wb");
        if (!w->f) {
            close(fd);
            return q35_err_set(e, Q35_ENOMEM, "%s: cannot open a stream", w->path);
        }
        setvbuf(w->f, NULL, _IOFBF, WRITE_BUFFER);
        return Q35_OK;
    }
    free(w->tmp_path);
    w->tmp_path = NULL;
    return q35_err_set(e, Q35_EIO, "%s: cannot find a free temporary name beside it", w->path);
}

static int write_head(q35_gguf_writer *w, const q35_gguf_kvs *kvs, q35_err *e) {
    bytes b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, (uint64_t)w->n_tensors);
    put_u64(&b, (uint64_t)(kvs ? kvs->n : 0));
    for (size_t i = 0; kvs && i < kvs->n; i++) {
        put_str(&b, kvs->items[i].key, strlen(kvs->items[i].key));
        put(&b, kvs->items[i].value, kvs->items[i].value_bytes);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        q35_gguf_wtensor *t = &w->tensors[i];
        t->offset = off;
        off = align_up(off + t->n_bytes, w->alignment);
        put_str(&b, t->name, strlen(t->name));
        put_u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(&b, (uint64_t)t->ne[d]);
        put_u32(&b, t->type);
        put_u64(&b, t->offset);
    }
    if (b.oom) {
        free(b.p);
        return q35_err_set(e, Q35_ENOMEM, "%s: out of memory for the GGUF header", w->path);
    }
    int rc = write_bytes(w, b.p, b.n, e);
    free(b.p);
    if (!rc) rc = write_zeros(w, (size_t)(align_up(w->pos, w->alignment) - w->pos), e);
    return rc;
}

int q35_gguf_writer_begin(q35_gguf_writer *w, const q35_gguf_kvs *kvs, const char *path,
                          q35_err *e) {
    if (w->f || w->path) return q35_err_set(e, Q35_EINVAL, "GGUF writer: already writing");
    int rc = alignment_of(kvs, &w->alignment, e);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return q35_err_set(e, Q35_EIO, "%s: is a directory (give a file name)", path);
    w->path = strdup(path);
    if (!w->path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    w->cur = w->cur_done = 0;
    w->pos = 0;
    rc = create_temp(w, e);
    if (!rc) rc = write_head(w, kvs, e);
    if (rc) abandon(w);
    return rc;
}

const q35_gguf_wtensor *q35_gguf_writer_next(const q35_gguf_writer *w) {
    return w->f && w->cur < w->n_tensors ? &w->tensors[w->cur] : NULL;
}

int q35_gguf_writer_put(q35_gguf_writer *w, const void *data, size_t n, q35_err *e) {
    if (!w->f) return q35_err_set(e, Q35_EINVAL, "GGUF writer: put before begin");
    if (w->cur >= w->n_tensors || n > w->tensors[w->cur].n_bytes - w->cur_done) {
        int rc =
            q35_err_set(e, Q35_EINVAL, "%s: %zu bytes of tensor data past the end of %s", w->path,
                        n, w->cur < w->n_tensors ? w->tensors[w->cur].name : "the last tensor");
        abandon(w);
        return rc;
    }
    int rc = write_bytes(w, data, n, e);
    w->cur_done += n;
    if (!rc && w->cur_done == w->tensors[w->cur].n_bytes) {
        rc = write_zeros(w, (size_t)(align_up(w->pos, w->alignment) - w->pos), e);
        w->cur++;
        w->cur_done = 0;
    }
    if (rc) abandon(w);
    return rc;
}

int q35_gguf_writer_finish(q35_gguf_writer *w, uint64_t *file_bytes, q35_err *e) {
    if (!w->f) return q35_err_set(e, Q35_EINVAL, "GGUF writer: finish before begin");
    if (w->cur < w->n_tensors) {
        int rc = q35_err_set(e, Q35_EINVAL, "%s: tensor %s and %zu more were not written", w->path,
                             w->tensors[w->cur].name, w->n_tensors - w->cur - 1);
        abandon(w);
        return rc;
    }
    int rc = Q35_OK;
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) rc = io_fail(w, "cannot write", errno, e);
    int closed = fclose(w->f);
    w->f = NULL;
    if (!rc && closed != 0) rc = io_fail(w, "cannot close", errno, e);
    if (!rc && rename(w->tmp_path, w->path) != 0)
        rc = q35_err_set(e, Q35_EIO, "%s: cannot rename %s over it: %s", w->path, w->tmp_path,
                         strerror(errno));
    if (rc) {
        abandon(w);
        return rc;
    }
    if (file_bytes) *file_bytes = w->pos;
    free(w->tmp_path);
    free(w->path);
    w->tmp_path = w->path = NULL;
    return Q35_OK;
}

void q35_gguf_writer_free(q35_gguf_writer *w) {
    if (!w) return;
    abandon(w);
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    memset(w, 0, sizeof *w);
}
