/* safetensors.c — header parsing and validation for .safetensors files and
 * sharded checkpoints. The JSON header is parsed with cJSON; everything it
 * says is checked against the file before a tensor is recorded. */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/json_doc.h"

/* Real headers are ~100 KB for a 0.8B model; 100 MB leaves room for huge
 * models while refusing absurd lengths before allocating anything. */
#define MAX_HEADER_BYTES (100u << 20)
#define MAX_INDEX_BYTES (64u << 20)

static const struct {
    const char *name;
    q35_st_dtype dtype;
    size_t size;
} dtype_table[] = {
    {"F32", Q35_ST_F32, 4},   {"F16", Q35_ST_F16, 2},         {"BF16", Q35_ST_BF16, 2},
    {"F64", Q35_ST_F64, 8},   {"I8", Q35_ST_I8, 1},           {"U8", Q35_ST_U8, 1},
    {"I16", Q35_ST_I16, 2},   {"U16", Q35_ST_U16, 2},         {"I32", Q35_ST_I32, 4},
    {"U32", Q35_ST_U32, 4},   {"I64", Q35_ST_I64, 8},         {"U64", Q35_ST_U64, 8},
    {"BOOL", Q35_ST_BOOL, 1}, {"F8_E4M3", Q35_ST_F8_E4M3, 1}, {"F8_E5M2", Q35_ST_F8_E5M2, 1},
};
#define N_DTYPES (sizeof dtype_table / sizeof dtype_table[0])

const char *q35_st_dtype_name(q35_st_dtype d) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtype_table[i].dtype == d) return dtype_table[i].name;
    return "?";
}

size_t q35_st_dtype_size(q35_st_dtype d) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtype_table[i].dtype == d) return dtype_table[i].size;
    return 0;
}

static int lookup_dtype(const char *s, q35_st_dtype *out) {
    for (size_t i = 0; i < N_DTYPES; i++) {
        if (!strcmp(s, dtype_table[i].name)) {
            *out = dtype_table[i].dtype;
            return 1;
        }
    }
    return 0;
}

static int append_tensor(q35_st_set *set, int *cap, const q35_st_tensor *t, q35_err *e) {
    if (set->n_tensors == *cap) {
        int ncap = *cap ? *cap * 2 : 256;
        q35_st_tensor *nt = realloc(set->tensors, (size_t)ncap * sizeof *nt);
        if (!nt) return q35_err_set(e, Q35_ENOMEM, "out of memory for the tensor table");
        set->tensors = nt;
        *cap = ncap;
    }
    set->tensors[set->n_tensors++] = *t;
    return Q35_OK;
}

/* A json integer that is exactly representable and within [0, max]. */
static int json_uint(const cJSON *j, double max, int64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0) || v > max || v != (double)(int64_t)v) return 0;
    *out = (int64_t)v;
    return 1;
}

typedef struct span {
    size_t begin, end;
    int tensor;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* Parses the header of set->files[fi] and appends its tensors. */
static int parse_file(q35_st_set *set, int fi, int *cap, q35_err *e) {
    const q35_mapped_file *f = &set->files[fi];
    const char *path = f->path;
    if (f->size < 8)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: truncated: %zu bytes, no room for the 8-byte header length", path,
                           f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->data[i];
    if (hlen > MAX_HEADER_BYTES)
        return q35_err_set(e, Q35_EFORMAT, "%s: header length %llu is larger than the %u allowed",
                           path, (unsigned long long)hlen, MAX_HEADER_BYTES);
    if (hlen > f->size - 8)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                           (unsigned long long)hlen, f->size);
    const char *htext = (const char *)f->data + 8;
    size_t data_start = 8 + (size_t)hlen;
    size_t data_size = f->size - data_start;

    cJSON *root = q35_json_parse(htext, (size_t)hlen, path, "header", e);
    if (!root) return Q35_EFORMAT;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return q35_err_set(e, Q35_EFORMAT, "%s: header is not a JSON object", path);
    }
    int first = set->n_tensors;
    int rc = Q35_OK;
    for (const cJSON *it = root->child; it && rc == Q35_OK; it = it->next) {
        const char *name = it->string;
        if (!strcmp(name, "__metadata__")) continue;
        if (!cJSON_IsObject(it)) {
            rc = q35_err_set(e, Q35_EFORMAT, "%s: tensor '%s': entry is not an object", path, name);
            break;
        }
        q35_st_tensor t = {0};
        t.file_index = fi;
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(jd)) {
            rc = q35_err_set(e, Q35_EFORMAT, "%s: tensor '%s': missing or non-string dtype", path,
                             name);
            break;
        }
        if (!lookup_dtype(jd->valuestring, &t.dtype)) {
            rc = q35_err_set(e, Q35_EFORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, name,
                             jd->valuestring);
            break;
        }
        if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > Q35_ST_MAX_DIMS) {
            rc = q35_err_set(e, Q35_EFORMAT,
                             "%s: tensor '%s': shape is not an array of at most %d dims", path,
                             name, Q35_ST_MAX_DIMS);
            break;
        }
        /* numel * size must not overflow: each dim below 2^40, product checked. */
        unsigned __int128 bytes = q35_st_dtype_size(t.dtype);
        for (const cJSON *d = js->child; d; d = d->next) {
            int64_t v;
            if (!json_uint(d, 1099511627776.0, &v)) {
                rc = q35_err_set(e, Q35_EFORMAT, "%s: tensor '%s': bad dimension in shape", path,
                                 name);
                break;
            }
            t.shape[t.ndim++] = v;
            bytes *= (uint64_t)v;
            if (bytes > (unsigned __int128)SIZE_MAX) bytes = (unsigned __int128)SIZE_MAX;
        }
        if (rc) break;
        int64_t b, en;
        if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 ||
            !json_uint(cJSON_GetArrayItem(jo, 0), 9007199254740992.0, &b) ||
            !json_uint(cJSON_GetArrayItem(jo, 1), 9007199254740992.0, &en)) {
            rc = q35_err_set(e, Q35_EFORMAT, "%s: tensor '%s': data_offsets is not [begin, end]",
                             path, name);
            break;
        }
        if (b > en) {
            rc = q35_err_set(e, Q35_EFORMAT,
                             "%s: tensor '%s': data_offsets [%lld, %lld] end before begin", path,
                             name, (long long)b, (long long)en);
            break;
        }
        if ((uint64_t)en > data_size) {
            rc = q35_err_set(
                e, Q35_EFORMAT,
                "%s: tensor '%s': data_offsets [%lld, %lld] out of range: the data section "
                "has %zu bytes (file offset %zu)",
                path, name, (long long)b, (long long)en, data_size, data_start + (size_t)b);
            break;
        }
        if ((unsigned __int128)(en - b) != bytes) {
            rc = q35_err_set(
                e, Q35_EFORMAT,
                "%s: tensor '%s': %lld bytes of data but dtype %s and its shape need %llu", path,
                name, (long long)(en - b), jd->valuestring, (unsigned long long)bytes);
            break;
        }
        t.nbytes = (size_t)(en - b);
        t.file_offset = data_start + (size_t)b;
        t.data = f->data + t.file_offset;
        t.name = strdup(name);
        if (!t.name) {
            rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
            break;
        }
        rc = append_tensor(set, cap, &t, e);
        if (rc) free(t.name);
    }
    cJSON_Delete(root);
    if (rc) return rc;

    /* No two tensors of this file may share bytes. */
    int n = set->n_tensors - first;
    if (n > 1) {
        span *sp = malloc((size_t)n * sizeof *sp);
        if (!sp) return q35_err_set(e, Q35_ENOMEM, "out of memory");
        for (int i = 0; i < n; i++) {
            const q35_st_tensor *t = &set->tensors[first + i];
            sp[i] = (span){t->file_offset, t->file_offset + t->nbytes, first + i};
        }
        qsort(sp, (size_t)n, sizeof *sp, cmp_span);
        for (int i = 1; i < n && !rc; i++) {
            if (sp[i].begin < sp[i - 1].end) {
                rc = q35_err_set(e, Q35_EFORMAT,
                                 "%s: tensors '%s' and '%s' overlap (bytes %zu..%zu and %zu..%zu)",
                                 path, set->tensors[sp[i - 1].tensor].name,
                                 set->tensors[sp[i].tensor].name, sp[i - 1].begin, sp[i - 1].end,
                                 sp[i].begin, sp[i].end);
            }
        }
        free(sp);
    }
    return rc;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const q35_st_tensor *)a)->name, ((const q35_st_tensor *)b)->name);
}

static int finish_set(q35_st_set *set, q35_err *e) {
    qsort(set->tensors, (size_t)set->n_tensors, sizeof *set->tensors, cmp_tensor_name);
    for (int i = 1; i < set->n_tensors; i++) {
        if (!strcmp(set->tensors[i].name, set->tensors[i - 1].name))
            return q35_err_set(e, Q35_EFORMAT, "tensor '%s' appears twice (in %s and %s)",
                               set->tensors[i].name,
                               set->files[set->tensors[i - 1].file_index].path,
                               set->files[set->tensors[i].file_index].path);
    }
    return Q35_OK;
}

void q35_st_set_close(q35_st_set *set, int keep_files) {
    if (!set) return;
    for (int i = 0; i < set->n_tensors; i++)
        free(set->tensors[i].name);
    free(set->tensors);
    if (!keep_files) {
        for (int i = 0; i < set->n_files; i++)
            q35_mapped_file_close(&set->files[i]);
        free(set->files);
    }
    memset(set, 0, sizeof *set);
}

/* Maps `paths` and parses each; the set is left closed on failure. */
static int open_files(q35_st_set *set, char **paths, int n, q35_err *e) {
    memset(set, 0, sizeof *set);
    set->files = calloc((size_t)n, sizeof *set->files);
    if (!set->files) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    int cap = 0, rc = Q35_OK;
    for (int i = 0; i < n && !rc; i++) {
        rc = q35_mapped_file_open(&set->files[i], paths[i], e);
        if (!rc) set->n_files++;
        if (!rc) rc = parse_file(set, i, &cap, e);
    }
    if (!rc) rc = finish_set(set, e);
    if (rc) q35_st_set_close(set, 0);
    return rc;
}

int q35_st_set_open_file(q35_st_set *set, const char *path, q35_err *e) {
    char *p = (char *)path;
    return open_files(set, &p, 1, e);
}

const q35_st_tensor *q35_st_set_find(const q35_st_set *set, const char *name) {
    size_t lo = 0, hi = (size_t)set->n_tensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(set->tensors[mid].name, name);
        if (c == 0) return &set->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* A shard name from an index must be a plain file name in the same dir. */
static int valid_shard_name(const char *s) {
    size_t n = strlen(s);
    return n > 12 && n < 256 && !strchr(s, '/') && !strchr(s, '\\') && s[0] != '.' &&
           !strcmp(s + n - 12, ".safetensors");
}

static int open_index(q35_st_set *set, const char *dir, const char *index_path,
                      int (*skip)(const char *), q35_err *e) {
    char *text = q35_read_text_file(index_path, MAX_INDEX_BYTES, NULL, e);
    if (!text) return e ? e->code : Q35_EIO;
    cJSON *root = q35_json_parse(text, strlen(text), index_path, NULL, e);
    free(text);
    if (!root) return Q35_EFORMAT;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = Q35_OK;
    char **names = NULL;
    int n_names = 0, cap = 0;
    if (!cJSON_IsObject(map)) {
        rc = q35_err_set(e, Q35_EFORMAT, "%s: no \"weight_map\" object", index_path);
        goto out;
    }
    for (const cJSON *it = map->child; it && !rc; it = it->next) {
        if (!cJSON_IsString(it) || !valid_shard_name(it->valuestring)) {
            rc = q35_err_set(e, Q35_EFORMAT,
                             "%s: weight_map entry '%s' is not a .safetensors file name",
                             index_path, it->string);
            break;
        }
        if (skip && skip(it->string)) continue;
        int seen = 0;
        for (int i = 0; i < n_names && !seen; i++)
            seen = !strcmp(names[i] + strlen(dir) + 1, it->valuestring);
        if (seen) continue;
        if (n_names == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) {
                rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        names[n_names] = path_join(dir, it->valuestring);
        if (!names[n_names]) {
            rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
            break;
        }
        n_names++;
    }
    if (!rc && n_names == 0)
        rc = q35_err_set(e, Q35_EFORMAT, "%s: weight_map names no shard", index_path);
    if (!rc) rc = open_files(set, names, n_names, e);
    /* Every tensor the index places in a shard we opened must be there. */
    for (const cJSON *it = map->child; it && !rc; it = it->next) {
        if (skip && skip(it->string)) continue;
        const q35_st_tensor *t = q35_st_set_find(set, it->string);
        if (!t) {
            rc = q35_err_set(e, Q35_EFORMAT, "%s: tensor '%s' is listed in %s but missing from it",
                             index_path, it->string, it->valuestring);
        } else {
            const char *fp = set->files[t->file_index].path;
            size_t fl = strlen(fp), sl = strlen(it->valuestring);
            if (fl < sl || strcmp(fp + fl - sl, it->valuestring) != 0)
                rc = q35_err_set(e, Q35_EFORMAT, "%s: tensor '%s' is listed in %s but found in %s",
                                 index_path, it->string, it->valuestring, fp);
        }
        if (rc) q35_st_set_close(set, 0);
    }
out:
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    cJSON_Delete(root);
    return rc;
}

int q35_st_set_open_dir(q35_st_set *set, const char *dir, int (*skip)(const char *name),
                        q35_err *e) {
    memset(set, 0, sizeof *set);
    char *index = path_join(dir, "model.safetensors.index.json");
    char *single = path_join(dir, "model.safetensors");
    int rc;
    if (!index || !single) {
        rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
    } else {
        FILE *fp = fopen(index, "rb");
        if (fp) {
            fclose(fp);
            rc = open_index(set, dir, index, skip, e);
        } else {
            rc = q35_st_set_open_file(set, single, e);
            if (rc == Q35_ENOTFOUND)
                q35_err_set(e, Q35_ENOTFOUND,
                            "%s: no model.safetensors or model.safetensors.index.json", dir);
        }
    }
    free(index);
    free(single);
    return rc;
}
