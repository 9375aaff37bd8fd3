/* hub_cache.c — the Hugging Face cache layout, exactly as huggingface_hub
 * writes it, so either tool reuses what the other fetched:
 *
 *   {root}/models--org--name/blobs/<blob>            the bytes (immutable)
 *   {root}/models--org--name/snapshots/<commit>/<f>  -> ../../blobs/<blob>
 *   {root}/models--org--name/refs/<revision>         the commit, no newline
 *   {root}/.locks/models--org--name/<blob>.lock      flock while fetching
 *
 * Every change here is atomic (write a temporary name, then rename), so a
 * reader — or a crash — never sees half a ref or a dangling replacement. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/err.h"
#include "core/mapped_file.h"
#include "formats/hub_internal.h"

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

int hub_cache_open(hub_cache *c, const char *root, const char *repo, q35_err *e) {
    memset(c, 0, sizeof *c);
    char folder[HUB_REPO_ID_MAX + 16];
    size_t o = (size_t)snprintf(folder, sizeof folder, "models--");
    for (const char *p = repo; *p && o + 3 < sizeof folder; p++) {
        if (*p == '/') {
            folder[o++] = '-';
            folder[o++] = '-';
        } else {
            folder[o++] = *p;
        }
    }
    folder[o] = 0;
    c->root = strdup(root);
    c->repo_dir = path_join(root, folder);
    char *locks = path_join(root, ".locks");
    c->lock_dir = locks ? path_join(locks, folder) : NULL;
    free(locks);
    if (!c->root || !c->repo_dir || !c->lock_dir) {
        hub_cache_close(c);
        return q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    return 0;
}

void hub_cache_close(hub_cache *c) {
    free(c->root);
    free(c->repo_dir);
    free(c->lock_dir);
    memset(c, 0, sizeof *c);
}

int hub_mkdirs(const char *path, q35_err *e) {
    char *p = strdup(path);
    if (!p) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = q35_err_set(e, Q35_EIO, "cannot create directory %s: %s", p, strerror(errno));
            break;
        }
        *s = c;
        if (!c) break;
    }
    if (!rc) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = q35_err_set(e, Q35_EIO, "%s is not a directory", path);
    }
    free(p);
    return rc;
}

/* mkdir -p of the directory holding `path`. */
static int mkdirs_parent(const char *path, q35_err *e) {
    char *d = strdup(path);
    if (!d) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    char *slash = strrchr(d, '/');
    int rc = 0;
    if (slash && slash != d) {
        *slash = 0;
        rc = hub_mkdirs(d, e);
    }
    free(d);
    return rc;
}

char *hub_cache_snapshot_dir(const hub_cache *c, const char *commit) {
    size_t n = strlen(c->repo_dir) + strlen(commit) + 16;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/snapshots/%s", c->repo_dir, commit);
    return s;
}

static char *ref_path(const hub_cache *c, const char *rev) {
    size_t n = strlen(c->repo_dir) + strlen(rev) + 8;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/refs/%s", c->repo_dir, rev);
    return s;
}

int hub_cache_read_ref(const hub_cache *c, const char *rev, char commit[41], q35_err *e) {
    if (hub_is_commit(rev)) {
        memcpy(commit, rev, 41);
        return 0;
    }
    char *path = ref_path(c, rev);
    if (!path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        q35_err_set(e, Q35_ENOTFOUND, "revision '%s' is not in the cache (no %s)", rev, path);
        free(path);
        return Q35_ENOTFOUND;
    }
    char *text = q35_read_text_file(path, 4096, NULL, e);
    int rc = 0;
    if (!text) {
        rc = e ? e->code : Q35_EIO;
    } else {
        /* huggingface_hub writes the bare commit; tolerate a newline. */
        size_t n = strlen(text);
        while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
            n--;
        text[n] = 0;
        if (!hub_is_commit(text))
            rc = q35_err_set(e, Q35_EFORMAT, "%s does not hold a 40-hex commit", path);
        else
            memcpy(commit, text, 41);
    }
    free(text);
    free(path);
    return rc;
}

/* A name no other process or thread uses at the same moment. */
static void unique_suffix(char *buf, size_t n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* pid + clock + a stack address: distinct across processes and threads. */
    snprintf(buf, n, ".q35tmp-%ld-%lx-%lx", (long)getpid(), (unsigned long)ts.tv_nsec,
             (unsigned long)(uintptr_t)&ts);
}

static int write_file_atomic(const char *path, const char *text, q35_err *e) {
    char suffix[96];
    unique_suffix(suffix, sizeof suffix);
    size_t n = strlen(path) + sizeof suffix + 1;
    char *tmp = malloc(n);
    if (!tmp) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    snprintf(tmp, n, "%s%s", path, suffix);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        rc = q35_err_set(e, Q35_EIO, "cannot write %s: %s", tmp, strerror(errno));
    } else if (close(fd) != 0) {
        fd = -1;
        rc = q35_err_set(e, Q35_EIO, "cannot write %s: %s", tmp, strerror(errno));
    } else {
        fd = -1;
        if (rename(tmp, path) != 0)
            rc = q35_err_set(e, Q35_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    if (fd >= 0) close(fd);
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

int hub_cache_write_ref(const hub_cache *c, const char *rev, const char *commit, q35_err *e) {
    if (!strcmp(rev, commit)) return 0;
    char *path = ref_path(c, rev);
    if (!path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    char old[41];
    q35_err ignored;
    int rc = 0;
    /* Unchanged refs are not rewritten: a read-only shared cache stays usable. */
    if (hub_cache_read_ref(c, rev, old, &ignored) != 0 || strcmp(old, commit) != 0) {
        rc = mkdirs_parent(path, e);
        if (!rc) rc = write_file_atomic(path, commit, e);
    }
    free(path);
    return rc;
}

int hub_cache_link(const hub_cache *c, const char *commit, const char *name, const char *blob,
                   q35_err *e) {
    size_t n = strlen(c->repo_dir) + strlen(commit) + strlen(name) + 16;
    char *pointer = malloc(n);
    if (!pointer) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    snprintf(pointer, n, "%s/snapshots/%s/%s", c->repo_dir, commit, name);

    /* snapshots/<commit>/a/b.json -> ../../../blobs/<blob>: one "../" per
     * directory between the link and the repo folder. */
    int depth = 2;
    for (const char *p = name; *p; p++)
        depth += *p == '/';
    size_t tn = (size_t)depth * 3 + strlen(blob) + 8;
    char *target = malloc(tn);
    char *tmp = malloc(n + 96);
    int rc = 0;
    if (!target || !tmp) {
        rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
        goto done;
    }
    target[0] = 0;
    for (int i = 0; i < depth; i++)
        strcat(target, "../");
    strcat(target, "blobs/");
    strcat(target, blob);

    char have[512];
    ssize_t hn = readlink(pointer, have, sizeof have - 1);
    if (hn >= 0) {
        have[hn] = 0;
        if (!strcmp(have, target)) goto done; /* already right */
    }
    rc = mkdirs_parent(pointer, e);
    if (rc) goto done;
    char suffix[96];
    unique_suffix(suffix, sizeof suffix);
    snprintf(tmp, n + 96, "%s%s", pointer, suffix);
    if (symlink(target, tmp) != 0) {
        rc = q35_err_set(e, Q35_EIO, "cannot create symlink %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, pointer) != 0) {
        rc = q35_err_set(e, Q35_EIO, "cannot rename %s to %s: %s", tmp, pointer, strerror(errno));
        unlink(tmp);
    }
done:
    free(pointer);
    free(target);
    free(tmp);
    return rc;
}

int hub_cache_lock_blob(const hub_cache *c, const char *blob, q35_err *e) {
    int rc = hub_mkdirs(c->lock_dir, e);
    if (rc) return rc;
    size_t n = strlen(c->lock_dir) + strlen(blob) + 8;
    char *path = malloc(n);
    if (!path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    snprintf(path, n, "%s/%s.lock", c->lock_dir, blob);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = q35_err_set(e, Q35_EIO, "cannot open lock %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        rc = q35_err_set(e, Q35_EIO, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return rc;
    }
    free(path);
    return fd;
}

void hub_cache_unlock(int fd) {
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

int hub_cache_tag(const hub_cache *c) {
    char *path = path_join(c->root, "CACHEDIR.TAG");
    if (!path) return Q35_ENOMEM;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
        static const char tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
                                  "# This file is a cache directory tag (the Hugging Face hub "
                                  "cache, also used by q35).\n"
                                  "# For information about cache directory tags, see:\n"
                                  "#\thttps://bford.info/cachedir/\n";
        ssize_t w = write(fd, tag, sizeof tag - 1);
        (void)w; /* a best-effort marker for backup tools */
        close(fd);
    }
    free(path);
    return 0;
}

static bool regular_file_at(const char *dir, const char *name) {
    char *p = path_join(dir, name);
    struct stat st;
    bool ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Every shard named by the index's weight_map must be present. */
static int check_index_shards(const char *dir, q35_err *e) {
    char *path = path_join(dir, "model.safetensors.index.json");
    if (!path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    char *text = q35_read_text_file(path, 64u << 20, NULL, e);
    free(path);
    if (!text) return e ? e->code : Q35_EIO;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = 0;
    if (!cJSON_IsObject(map)) {
        rc = q35_err_set(e, Q35_EFORMAT, "%s/model.safetensors.index.json has no weight_map", dir);
    } else {
        for (const cJSON *it = map->child; it && !rc; it = it->next) {
            if (!cJSON_IsString(it) || !hub_filename_valid(it->valuestring))
                rc = q35_err_set(e, Q35_EFORMAT, "%s/model.safetensors.index.json: bad shard name",
                                 dir);
            else if (!regular_file_at(dir, it->valuestring))
                rc = q35_err_set(e, Q35_ENOTFOUND, "the cached snapshot %s lacks the shard %s", dir,
                                 it->valuestring);
        }
    }
    cJSON_Delete(root);
    return rc;
}

int hub_cache_snapshot_complete(const char *dir, const char *const *files, q35_err *e) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return q35_err_set(e, Q35_ENOTFOUND, "no cached snapshot %s", dir);
    if (files) {
        for (const char *const *f = files; *f; f++)
            if (!regular_file_at(dir, *f))
                return q35_err_set(e, Q35_ENOTFOUND, "the cached snapshot %s lacks %s", dir, *f);
        return 0;
    }
    if (!regular_file_at(dir, "config.json"))
        return q35_err_set(e, Q35_ENOTFOUND, "the cached snapshot %s lacks config.json", dir);
    if (regular_file_at(dir, "model.safetensors.index.json")) return check_index_shards(dir, e);
    DIR *d = opendir(dir);
    if (!d) return q35_err_set(e, Q35_EIO, "cannot list %s: %s", dir, strerror(errno));
    bool found = false;
    for (struct dirent *ent; !found && (ent = readdir(d));)
        found = ends_with(ent->d_name, ".safetensors") && regular_file_at(dir, ent->d_name);
    closedir(d);
    if (!found)
        return q35_err_set(e, Q35_ENOTFOUND, "the cached snapshot %s holds no *.safetensors", dir);
    return 0;
}
