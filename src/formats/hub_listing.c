/* hub_listing.c — the hub's answer to GET /api/models/{repo}/revision/{rev}
 * ?blobs=True: the commit ("sha") and one entry per file ("siblings") with
 * rfilename, size, blobId (git's object id) and, for LFS files, lfs.sha256
 * and lfs.size. The answer is untrusted input: each name, hash and size is
 * validated before anything downstream turns it into a path or a length.
 * Also here: which of a repo's files the engine needs. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/hub_internal.h"

enum { LISTING_MAX_FILES = 1000000 };

static bool is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* A JSON number that is a whole byte count below 2^53. */
static bool json_size(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return false;
    *out = (uint64_t)d;
    return true;
}

void hub_listing_free(hub_listing *l) {
    for (size_t i = 0; i < l->n_files; i++)
        free(l->files[i].name);
    free(l->files);
    memset(l, 0, sizeof *l);
}

static int parse_sibling(const cJSON *item, size_t i, hub_file *f, q35_err *e) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "rfilename");
    if (!cJSON_IsString(name))
        return q35_err_set(e, Q35_EFORMAT, "hub listing: siblings[%zu] has no rfilename", i);
    if (!hub_filename_valid(name->valuestring))
        return q35_err_set(e, Q35_EFORMAT, "hub listing: siblings[%zu]: unsafe file name '%.200s'",
                           i, name->valuestring);
    f->name = strdup(name->valuestring);
    if (!f->name) return q35_err_set(e, Q35_ENOMEM, "out of memory");

    const cJSON *size = cJSON_GetObjectItemCaseSensitive(item, "size");
    if (size) {
        if (!json_size(size, &f->size))
            return q35_err_set(e, Q35_EFORMAT, "hub listing: %s: bad size", f->name);
        f->has_size = true;
    }
    const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(item, "lfs");
    if (cJSON_IsObject(lfs)) {
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(lfs, "sha256");
        if (!cJSON_IsString(sha) || !is_hex(sha->valuestring, 64))
            return q35_err_set(e, Q35_EFORMAT, "hub listing: %s: lfs.sha256 is not 64 hex digits",
                               f->name);
        memcpy(f->sha256, sha->valuestring, 65);
        memcpy(f->blob, sha->valuestring, 65); /* LFS blobs are named by sha256 */
        uint64_t lsize;
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(lfs, "size");
        if (ls) {
            if (!json_size(ls, &lsize))
                return q35_err_set(e, Q35_EFORMAT, "hub listing: %s: bad lfs.size", f->name);
            if (f->has_size && lsize != f->size)
                return q35_err_set(e, Q35_EFORMAT,
                                   "hub listing: %s: size %llu and lfs.size %llu disagree", f->name,
                                   (unsigned long long)f->size, (unsigned long long)lsize);
            f->size = lsize;
            f->has_size = true;
        }
    } else if (lfs && !cJSON_IsNull(lfs)) {
        return q35_err_set(e, Q35_EFORMAT, "hub listing: %s: lfs is not an object", f->name);
    } else {
        const cJSON *oid = cJSON_GetObjectItemCaseSensitive(item, "blobId");
        if (cJSON_IsString(oid)) {
            if (!is_hex(oid->valuestring, 40))
                return q35_err_set(e, Q35_EFORMAT, "hub listing: %s: blobId is not 40 hex digits",
                                   f->name);
            memcpy(f->git_oid, oid->valuestring, 41);
            memcpy(f->blob, oid->valuestring, 41); /* others by their git id */
        }
    }
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const hub_file *)a)->name, ((const hub_file *)b)->name);
}

int hub_listing_parse(const char *json, size_t len, hub_listing *out, q35_err *e) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return q35_err_set(e, Q35_EFORMAT, "hub listing: not valid JSON");
    int rc = 0;
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(root, "sha");
    const cJSON *sib = cJSON_GetObjectItemCaseSensitive(root, "siblings");
    if (!cJSON_IsObject(root) || !cJSON_IsString(sha) || !hub_is_commit(sha->valuestring)) {
        rc = q35_err_set(e, Q35_EFORMAT, "hub listing: no 40-hex commit in \"sha\"");
        goto done;
    }
    memcpy(out->commit, sha->valuestring, 41);
    if (!cJSON_IsArray(sib)) {
        rc = q35_err_set(e, Q35_EFORMAT, "hub listing: no \"siblings\" array");
        goto done;
    }
    int n = cJSON_GetArraySize(sib);
    if (n > LISTING_MAX_FILES) {
        rc = q35_err_set(e, Q35_EFORMAT, "hub listing: %d files is more than the %d accepted", n,
                         LISTING_MAX_FILES);
        goto done;
    }
    out->files = calloc(n ? (size_t)n : 1, sizeof *out->files);
    if (!out->files) {
        rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
        goto done;
    }
    size_t i = 0;
    for (const cJSON *item = sib->child; item; item = item->next, i++) {
        out->n_files = i + 1;
        if (!cJSON_IsObject(item)) {
            rc = q35_err_set(e, Q35_EFORMAT, "hub listing: siblings[%zu] is not an object", i);
            goto done;
        }
        rc = parse_sibling(item, i, &out->files[i], e);
        if (rc) goto done;
    }
    /* Sorted by name: a stable download order, and duplicates side by side. */
    qsort(out->files, out->n_files, sizeof *out->files, by_name);
    for (size_t j = 1; j < out->n_files; j++) {
        if (!strcmp(out->files[j - 1].name, out->files[j].name)) {
            rc = q35_err_set(e, Q35_EFORMAT, "hub listing: %s is listed twice", out->files[j].name);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    if (rc) hub_listing_free(out);
    return rc;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool hub_listing_engine_file(const char *name) {
    static const char *const exact[] = {
        "config.json",           "generation_config.json", "tokenizer.json",
        "tokenizer_config.json", "chat_template.jinja",    "model.safetensors.index.json",
    };
    if (strchr(name, '/')) return false;
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (!strcmp(name, exact[i])) return true;
    return ends_with(name, ".safetensors");
}
