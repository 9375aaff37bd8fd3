/* hub.c — q35_hub_pull and q35_hub_resolve: the whole sequence of fetching
 * a model from the hub, and the decision between a local path and a hub id.
 *
 *   listing   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=True
 *   select    the engine's files (or the ones the caller named)
 *   metadata  HEAD .../resolve/{commit}/{file} only for a file the listing
 *             gave no blob id for (a mirror without ?blobs support)
 *   fetch     each file into the cache (hub_fetch.c)
 *   ref       refs/{rev} = commit, written last: a ref only ever points at
 *             a snapshot whose files all arrived
 *
 * Offline (HF_HUB_OFFLINE or opts.offline), and whenever the hub cannot be
 * reached or answers 5xx, a complete cached snapshot of the revision is used
 * instead — as huggingface_hub does — so a model that was pulled once keeps
 * loading without a network. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "formats/hub_internal.h"

enum { LISTING_MAX_BYTES = 64 << 20 };

typedef struct pull {
    hub_spec spec;
    hub_settings settings;
    hub_cache cache;
    const char *const *files; /* named files, NULL-terminated, or NULL */
    const char **file_list;   /* owned: opts->files plus the spec's .gguf */
    hub_progress_sink progress;
    hub_bar *bar;
    q35_hub_stats stats;
} pull;

static int check_named_files(const char *const *files, q35_err *e) {
    for (const char *const *f = files; f && *f; f++)
        if (!hub_filename_valid(*f))
            return q35_err_set(e, Q35_EINVAL, "invalid file path '%.200s'", *f);
    return 0;
}

/* ------------------------------------------------------------ cache only */

/* The named files, or the engine's files the snapshot holds. */
static int count_files(const char *dir, const char *const *files) {
    int n = 0;
    if (files) {
        while (files[n])
            n++;
        return n;
    }
    DIR *d = opendir(dir);
    if (!d) return 0;
    for (struct dirent *ent; (ent = readdir(d));)
        n += hub_listing_engine_file(ent->d_name);
    closedir(d);
    return n;
}

static int from_cache(pull *p, char **snapshot_dir, q35_err *e) {
    char commit[41];
    int rc = hub_cache_read_ref(&p->cache, p->spec.revision, commit, e);
    if (rc) return rc;
    char *dir = hub_cache_snapshot_dir(&p->cache, commit);
    if (!dir) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    rc = hub_cache_snapshot_complete(dir, p->files, e);
    if (rc) {
        free(dir);
        return rc;
    }
    memcpy(p->stats.commit, commit, 41);
    p->stats.cache_only = true;
    p->stats.n_files = count_files(dir, p->files);
    *snapshot_dir = dir;
    return 0;
}

/* ----------------------------------------------------------- from the hub */

static const hub_file *find_file(const hub_listing *l, const char *name) {
    size_t lo = 0, hi = l->n_files; /* the listing is sorted by name */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(l->files[mid].name, name);
        if (c == 0) return &l->files[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Explains a repo without the engine's files, naming GGUF files if any. */
static int not_loadable(const pull *p, const hub_listing *l, const char *missing, q35_err *e) {
    char ggufs[512] = "";
    size_t o = 0;
    int n = 0;
    for (size_t i = 0; i < l->n_files && o + 8 < sizeof ggufs; i++) {
        if (!ends_with(l->files[i].name, ".gguf")) continue;
        int w = snprintf(ggufs + o, sizeof ggufs - o, "%s%s", n ? ", " : "", l->files[i].name);
        if (w > 0) o += (size_t)w;
        n++;
    }
    if (o >= sizeof ggufs) o = sizeof ggufs - 1;
    ggufs[o] = 0;
    if (n)
        return q35_err_set(e, Q35_ENOTFOUND,
                           "%s@%s has no %s; it holds GGUF files — name one as %s/FILE.gguf "
                           "(%s)",
                           p->spec.repo, p->spec.revision, missing, p->spec.repo, ggufs);
    return q35_err_set(e, Q35_ENOTFOUND, "%s@%s has no %s: not a checkpoint q35 can load",
                       p->spec.repo, p->spec.revision, missing);
}

/* Picks the files to fetch; `out` gets pointers into the listing. */
static int select_files(const pull *p, const hub_listing *l, const hub_file ***out, size_t *n_out,
                        q35_err *e) {
    const hub_file **sel = calloc(l->n_files + 1, sizeof *sel);
    if (!sel) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    size_t n = 0;
    if (p->files) {
        for (const char *const *f = p->files; *f; f++) {
            const hub_file *hf = find_file(l, *f);
            if (!hf) {
                free(sel);
                return q35_err_set(e, Q35_ENOTFOUND,
                                   "file %s not found in %s at revision %s (commit %.12s)", *f,
                                   p->spec.repo, p->spec.revision, l->commit);
            }
            bool dup = false;
            for (size_t i = 0; i < n; i++)
                dup |= sel[i] == hf;
            if (!dup && n < l->n_files) sel[n++] = hf;
        }
    } else {
        bool config = false, weights = false;
        for (size_t i = 0; i < l->n_files; i++) {
            const char *name = l->files[i].name;
            if (!hub_listing_engine_file(name)) continue;
            sel[n++] = &l->files[i];
            config |= !strcmp(name, "config.json");
            weights |= ends_with(name, ".safetensors");
        }
        if (!config || !weights) {
            free(sel);
            return not_loadable(p, l, !config ? "config.json" : "*.safetensors weights", e);
        }
    }
    *out = sel;
    *n_out = n;
    return 0;
}

static char *resolve_url(const pull *p, const char *commit, const char *name) {
    char *q = hub_url_quote(name, "/");
    if (!q) return NULL;
    size_t n =
        strlen(p->settings.endpoint) + strlen(p->spec.repo) + strlen(commit) + strlen(q) + 16;
    char *url = malloc(n);
    if (url) snprintf(url, n, "%s/%s/resolve/%s/%s", p->settings.endpoint, p->spec.repo, commit, q);
    free(q);
    return url;
}

/* A file the listing gave no blob id for: ask as huggingface_hub does, with
 * a HEAD (ETag is git's id or the LFS sha256; X-Linked-* for LFS files). */
static int fill_from_head(pull *p, hub_http *http, const char *commit, hub_file *f, q35_err *e) {
    char *url = resolve_url(p, commit, f->name);
    if (!url) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    hub_response r;
    int rc = hub_http_head(http, url, &r, e);
    free(url);
    if (rc) return rc;
    char what[HUB_FILENAME_MAX + 8];
    snprintf(what, sizeof what, "file %s", f->name);
    if (r.status < 200 || r.status >= 400)
        return hub_http_status_error(&r, &p->settings, p->spec.repo, p->spec.revision, what, e);
    if (!r.etag[0]) return q35_err_set(e, Q35_EFORMAT, "%s: the hub sent no ETag for it", f->name);
    memcpy(f->blob, r.etag, sizeof f->blob);
    bool hex = strspn(r.etag, "0123456789abcdef") == strlen(r.etag);
    if (hex && strlen(r.etag) == 64) memcpy(f->sha256, r.etag, 65);
    if (hex && strlen(r.etag) == 40) memcpy(f->git_oid, r.etag, 41);
    if (!f->has_size && r.linked_size >= 0) {
        f->size = (uint64_t)r.linked_size;
        f->has_size = true;
    }
    return 0;
}

static char *listing_url(const pull *p) {
    char *q = hub_url_quote(p->spec.revision, "");
    if (!q) return NULL;
    size_t n = strlen(p->settings.endpoint) + strlen(p->spec.repo) + strlen(q) + 64;
    char *url = malloc(n);
    if (url)
        snprintf(url, n, "%s/api/models/%s/revision/%s?blobs=True", p->settings.endpoint,
                 p->spec.repo, q);
    free(q);
    return url;
}

/* *unreachable is set when the listing could not be had (no connection,
 * or a 5xx / 429 answer): then, and only then, the cache may answer. */
static int from_hub(pull *p, char **snapshot_dir, bool *unreachable, q35_err *e) {
    *unreachable = false;
    hub_http *http = hub_http_new(&p->settings, e);
    if (!http) return e->code;
    hub_listing l = {0};
    const hub_file **sel = NULL;
    size_t n_sel = 0;
    hub_response r = {0};
    char *url = listing_url(p);
    int rc = 0;
    if (!url) {
        rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
        goto done;
    }
    rc = hub_http_get_json(http, url, LISTING_MAX_BYTES, &r, e);
    if (rc) {
        *unreachable = rc == Q35_ENET;
        goto done;
    }
    if (r.status != 200) {
        *unreachable = r.status >= 500 || r.status == 429;
        char what[HUB_REPO_ID_MAX + 8];
        snprintf(what, sizeof what, "repo %s", p->spec.repo);
        rc = hub_http_status_error(&r, &p->settings, p->spec.repo, p->spec.revision, what, e);
        goto done;
    }
    rc = hub_listing_parse(r.body ? r.body : "", r.body_len, &l, e);
    if (rc) {
        q35_err_prefix(e, "%s", url);
        goto done;
    }
    rc = select_files(p, &l, &sel, &n_sel, e);
    for (size_t i = 0; !rc && i < n_sel; i++)
        if (!sel[i]->blob[0]) rc = fill_from_head(p, http, l.commit, (hub_file *)sel[i], e);
    if (rc) goto done;

    rc = hub_mkdirs(p->cache.repo_dir, e);
    if (rc) goto done;
    hub_cache_tag(&p->cache);
    hub_fetch_ctx ctx = {.http = http,
                         .settings = &p->settings,
                         .cache = &p->cache,
                         .repo = p->spec.repo,
                         .commit = l.commit,
                         .progress = p->progress};
    for (size_t i = 0; i < n_sel; i++) {
        uint64_t got = 0;
        rc = hub_fetch_file(&ctx, sel[i], &got, e);
        p->stats.bytes_downloaded += got;
        if (got) p->stats.n_downloaded++;
        if (rc) goto done;
    }
    rc = hub_cache_write_ref(&p->cache, p->spec.revision, l.commit, e);
    if (rc) goto done;
    *snapshot_dir = hub_cache_snapshot_dir(&p->cache, l.commit);
    if (!*snapshot_dir) {
        rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(p->stats.commit, l.commit, 41);
    p->stats.n_files = (int)n_sel;
done:
    free(url);
    free(sel);
    hub_response_free(&r);
    hub_listing_free(&l);
    hub_http_free(http);
    return rc;
}

/* ------------------------------------------------------------------ API */

int q35_hub_pull(const char *repo, const q35_hub_opts *opts, char **snapshot_dir,
                 q35_hub_stats *stats, q35_err *err) {
    q35_err local;
    q35_err *e = err ? err : &local;
    q35_err_clear(e);
    if (!snapshot_dir) return q35_err_set(e, Q35_EINVAL, "q35_hub_pull: snapshot_dir is NULL");
    *snapshot_dir = NULL;
    if (stats) memset(stats, 0, sizeof *stats);

    pull p;
    memset(&p, 0, sizeof p);
    int rc = hub_spec_parse(repo, &p.spec, e);
    if (rc) return rc;
    rc = hub_settings_load(&p.settings, opts, e);
    if (rc) {
        hub_spec_free(&p.spec);
        return rc;
    }
    /* Named files: the caller's, plus the .gguf written in the id. */
    if (p.spec.file || (opts && opts->files)) {
        size_t n = 0;
        while (opts && opts->files && opts->files[n])
            n++;
        p.file_list = calloc(n + 2, sizeof *p.file_list);
        if (!p.file_list) {
            rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            p.file_list[i] = opts->files[i];
        if (p.spec.file) p.file_list[n] = p.spec.file;
        p.files = p.file_list;
    }
    rc = check_named_files(p.files, e);
    if (!rc) rc = hub_cache_open(&p.cache, p.settings.cache_dir, p.spec.repo, e);
    if (rc) goto done;

    if (opts && opts->progress) {
        p.progress.fn = opts->progress;
        p.progress.user = opts->progress_user;
    } else if (p.settings.progress_bar) {
        p.bar = hub_bar_new();
        if (p.bar) {
            p.progress.fn = hub_bar_update;
            p.progress.user = p.bar;
        }
    }

    if (p.settings.offline) {
        rc = from_cache(&p, snapshot_dir, e);
        if (rc)
            q35_err_prefix(e,
                           "offline mode (HF_HUB_OFFLINE): %s@%s is not usable from the cache %s",
                           p.spec.repo, p.spec.revision, p.settings.cache_dir);
        goto done;
    }
    /* 401, 404, checksum errors are answers and stay errors; only an
     * unreachable hub lets the cache answer, as in huggingface_hub. */
    bool unreachable = false;
    rc = from_hub(&p, snapshot_dir, &unreachable, e);
    if (rc && unreachable) {
        q35_err cache_err;
        char why[sizeof e->msg];
        memcpy(why, e->msg, sizeof why);
        if (from_cache(&p, snapshot_dir, &cache_err) == 0) {
            q35_err_clear(e);
            rc = 0;
        } else {
            q35_err_set(e, (q35_status)rc,
                        "cannot reach the hub (%s), and %s@%s is not in the cache %s", why,
                        p.spec.repo, p.spec.revision, p.settings.cache_dir);
        }
    }
done:
    if (!rc && stats) *stats = p.stats;
    hub_bar_free(p.bar);
    free(p.file_list);
    hub_cache_close(&p.cache);
    hub_settings_free(&p.settings);
    hub_spec_free(&p.spec);
    return rc;
}

int q35_hub_resolve(const char *path_or_repo, const q35_hub_opts *opts, char **local_path,
                    q35_err *err) {
    q35_err local;
    q35_err *e = err ? err : &local;
    q35_err_clear(e);
    if (!local_path) return q35_err_set(e, Q35_EINVAL, "q35_hub_resolve: local_path is NULL");
    *local_path = NULL;
    const char *s = path_or_repo;
    if (!s || !*s) return q35_err_set(e, Q35_EINVAL, "empty model path");
    struct stat st;
    if (stat(s, &st) == 0) {
        *local_path = strdup(s);
        return *local_path ? 0 : q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    /* Spelled like a path: never a hub id. */
    if (s[0] == '/' || s[0] == '.' || s[0] == '~')
        return q35_err_set(e, Q35_ENOTFOUND, "%s: no such file or directory", s);
    hub_spec spec;
    if (hub_spec_parse(s, &spec, NULL) != 0)
        return q35_err_set(e, Q35_ENOTFOUND,
                           "'%.300s' is neither an existing file or directory nor a hub repo id "
                           "(org/name[@revision] or org/name[@revision]/file.gguf)",
                           s);
    char *dir = NULL;
    int rc = q35_hub_pull(s, opts, &dir, NULL, e);
    if (!rc && spec.file) {
        size_t n = strlen(dir) + strlen(spec.file) + 2;
        *local_path = malloc(n);
        if (*local_path)
            snprintf(*local_path, n, "%s/%s", dir, spec.file);
        else
            rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
        free(dir);
    } else if (!rc) {
        *local_path = dir;
    }
    hub_spec_free(&spec);
    return rc;
}
