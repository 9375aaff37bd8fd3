/* hub_internal.h — the pieces of the hub client (hub*.c) and how they fit:
 *
 *   hub_spec      what the user typed: "org/name[@rev][/file.gguf]", and the
 *                 validation of every name that becomes a path or a URL
 *   hub_settings  endpoint, cache dir, token, offline, timeouts (opts + env)
 *   hub_http      libcurl requests: JSON GETs, file GETs with Range, HEADs
 *   hub_listing   the hub API's file list and which files the engine needs
 *   hub_cache     the HF cache layout: paths, refs, symlinks, locks, lookups
 *   hub_digest    sha256 / git blob sha1 over streamed bytes
 *   hub_fetch     one file into the cache: lock, resume, verify, rename, link
 *   hub_progress  the progress bar drawn on a terminal
 *   hub           q35_hub_pull / q35_hub_resolve: the whole sequence
 *
 * Everything a remote server sends (names, hashes, sizes) is validated in
 * hub_listing / hub_http before it reaches a path or a buffer size.
 */
#ifndef Q35_FORMATS_HUB_INTERNAL_H
#define Q35_FORMATS_HUB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

/* ------------------------------------------------------------ hub_spec.c */

enum {
    HUB_REPO_ID_MAX = 96, /* the hub's own limit */
    HUB_REVISION_MAX = 255,
    HUB_FILENAME_MAX = 1024,
    HUB_BLOB_NAME_MAX = 128,
};

typedef struct hub_spec {
    char repo[HUB_REPO_ID_MAX + 1]; /* "org/name" */
    char *revision;                 /* owned; "main" when none was given */
    char *file;                     /* owned; NULL unless "org/name/file.gguf" */
} hub_spec;

/* Parses "org/name", "org/name@rev", "org/name/path/file.gguf" or
 * "org/name@rev/path/file.gguf" (a revision holding '/', e.g. refs/pr/1, is
 * only allowed without a file part). Returns 0 or Q35_EINVAL with a message.
 * Free with hub_spec_free. */
int hub_spec_parse(const char *s, hub_spec *out, q35_err *e);
void hub_spec_free(hub_spec *s);

/* "org/name": two segments of [A-Za-z0-9._-], none starting or ending with
 * '.' or '-', no "--" or "..", at most 96 characters. */
bool hub_repo_id_valid(const char *id);
/* A branch, tag or commit: printable, no "..", no empty or "." segments,
 * no leading '/'. Safe as a relative path under refs/. */
bool hub_revision_valid(const char *rev);
/* A file path inside a repo, safe to join under snapshots/<commit>/. */
bool hub_filename_valid(const char *name);
/* A blob name (sha256, git oid or normalized etag): [A-Za-z0-9_-] only. */
bool hub_blob_name_valid(const char *name);
/* 40 lowercase hex digits. */
bool hub_is_commit(const char *s);
/* Percent-encodes like Python's urllib.parse.quote(s, safe=keep): letters,
 * digits, "_.-~" and the bytes in `keep` stay as they are. Caller frees. */
char *hub_url_quote(const char *s, const char *keep);

/* -------------------------------------------------------- hub_settings.c */

typedef struct hub_settings {
    char *endpoint;  /* no trailing '/' */
    char *cache_dir; /* the hub cache root (where models--* live) */
    char *token;     /* NULL: send no Authorization */
    bool offline;
    long stall_timeout_s; /* a transfer that receives nothing this long fails */
    bool progress_bar;    /* draw the built-in bar (stderr is a terminal) */
} hub_settings;

int hub_settings_load(hub_settings *s, const q35_hub_opts *opts, q35_err *e);
void hub_settings_free(hub_settings *s);

/* ------------------------------------------------------------ hub_http.c */

typedef struct hub_http hub_http;

/* What a request learned about the final response (after redirects). */
typedef struct hub_response {
    long status;                      /* 0 when no response arrived */
    char error_code[64];              /* X-Error-Code (RepoNotFound, ...) */
    char error_msg[256];              /* X-Error-Message */
    char etag[HUB_BLOB_NAME_MAX + 1]; /* X-Linked-Etag or ETag, normalized */
    char commit[41];                  /* X-Repo-Commit */
    int64_t linked_size;              /* X-Linked-Size or Content-Length, -1 if none */
    int64_t range_start;              /* first byte of a 206 body (Content-Range), -1 */
    char location[1024];              /* Location of a redirect that was not followed */
    char *body;                       /* JSON requests: NUL-terminated body, owned */
    size_t body_len;
    uint64_t body_bytes; /* file requests: bytes handed to the sink */
} hub_response;

/* Frees the body; the header fields stay readable. */
void hub_response_free(hub_response *r);

/* Receives the body of a 200/206 file response; returns false to abort
 * the transfer (the sink then has set its own error). */
typedef bool (*hub_body_fn)(void *user, const hub_response *r, const void *data, size_t n);

hub_http *hub_http_new(const hub_settings *s, q35_err *e);
void hub_http_free(hub_http *h);

/* GET a JSON document of at most max_bytes into r->body. Returns 0 when a
 * response arrived (any status), Q35_ENET on a transport failure. */
int hub_http_get_json(hub_http *h, const char *url, size_t max_bytes, hub_response *r, q35_err *e);
/* HEAD without following redirects to other hosts (a relative Location is
 * followed, as huggingface_hub does), for the ETag / size / commit. */
int hub_http_head(hub_http *h, const char *url, hub_response *r, q35_err *e);
/* GET a file, following redirects (Authorization is only sent to the
 * endpoint's own host), from byte `offset` (Range) when offset > 0. Body
 * bytes of a 200/206 answer go to `sink`. Returns 0 when the transfer
 * completed, Q35_ENET on a transport failure (partial bodies included),
 * Q35_ECANCELLED when the sink aborted. */
int hub_http_get_file(hub_http *h, const char *url, uint64_t offset, hub_body_fn sink, void *user,
                      hub_response *r, q35_err *e);

/* Turns a non-2xx answer about `what` ("repo org/name", "file x") into an
 * error: 401 (with or without a token), 403, 404 (repo, revision, file), 5xx. */
int hub_http_status_error(const hub_response *r, const hub_settings *s, const char *repo,
                          const char *revision, const char *what, q35_err *e);

/* --------------------------------------------------------- hub_listing.c */

typedef struct hub_file {
    char *name;                       /* rfilename, validated */
    char blob[HUB_BLOB_NAME_MAX + 1]; /* blob name in the cache; "" until known */
    bool has_size;
    uint64_t size;
    char sha256[65];  /* lfs.sha256: the content's sha256, "" if not LFS */
    char git_oid[41]; /* blobId of a non-LFS file: git's sha1 of it, or "" */
} hub_file;

typedef struct hub_listing {
    char commit[41];
    hub_file *files;
    size_t n_files;
} hub_listing;

/* Parses the body of GET /api/models/{repo}/revision/{rev}. */
int hub_listing_parse(const char *json, size_t len, hub_listing *out, q35_err *e);
void hub_listing_free(hub_listing *l);

/* True for the files the engine loads: config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json, chat_template.jinja,
 * model.safetensors.index.json and *.safetensors, at the repo's top level. */
bool hub_listing_engine_file(const char *name);

/* ----------------------------------------------------------- hub_cache.c */

typedef struct hub_cache {
    char *root;     /* the hub cache dir */
    char *repo_dir; /* {root}/models--org--name */
    char *lock_dir; /* {root}/.locks/models--org--name */
} hub_cache;

int hub_cache_open(hub_cache *c, const char *root, const char *repo, q35_err *e);
void hub_cache_close(hub_cache *c);

/* "{repo_dir}/snapshots/{commit}" (caller frees). */
char *hub_cache_snapshot_dir(const hub_cache *c, const char *commit);
/* The commit a revision points to in the cache: itself when it is a full
 * commit hash, else the content of refs/{rev}. 0, or Q35_ENOTFOUND. */
int hub_cache_read_ref(const hub_cache *c, const char *rev, char commit[41], q35_err *e);
/* Writes refs/{rev} = commit atomically (no-op when rev is the commit). */
int hub_cache_write_ref(const hub_cache *c, const char *rev, const char *commit, q35_err *e);
/* Makes snapshots/{commit}/{name} a relative symlink to blobs/{blob},
 * atomically replacing whatever was there. */
int hub_cache_link(const hub_cache *c, const char *commit, const char *name, const char *blob,
                   q35_err *e);
/* Creates every missing directory of `path` (like mkdir -p). */
int hub_mkdirs(const char *path, q35_err *e);
/* Takes an exclusive flock on .locks/models--org--name/{blob}.lock (the
 * path huggingface_hub locks, so Python and q35 exclude each other).
 * Returns the fd (>= 0) to pass to hub_cache_unlock, or a negative status. */
int hub_cache_lock_blob(const hub_cache *c, const char *blob, q35_err *e);
void hub_cache_unlock(int fd);
/* Writes {root}/CACHEDIR.TAG once (best effort), as huggingface_hub does,
 * so backup tools skip the cache. */
int hub_cache_tag(const hub_cache *c);
/* Checks that a cached snapshot holds what a load needs: the `files` named
 * (NULL-terminated) or, when files is NULL, config.json and the weights
 * (every shard of model.safetensors.index.json, else some *.safetensors). */
int hub_cache_snapshot_complete(const char *snapshot_dir, const char *const *files, q35_err *e);

/* ---------------------------------------------------------- hub_digest.c */

typedef struct hub_digest hub_digest;

typedef enum { HUB_DIGEST_SHA256, HUB_DIGEST_GIT_BLOB } hub_digest_kind;

/* A streaming hash. HUB_DIGEST_GIT_BLOB is git's object id of a blob of
 * `size` bytes: sha1("blob <size>\0" + content). */
hub_digest *hub_digest_new(hub_digest_kind kind, uint64_t size, q35_err *e);
void hub_digest_update(hub_digest *d, const void *data, size_t n);
/* Writes the lowercase hex digest (65 bytes suffice) and resets the hash to
 * its initial state. */
void hub_digest_final_hex(hub_digest *d, char *hex);
void hub_digest_reset(hub_digest *d);
void hub_digest_free(hub_digest *d);

/* ------------------------------------------------------------ hub_fetch.c */

typedef struct hub_progress_sink {
    q35_hub_progress_fn fn; /* may be NULL */
    void *user;
} hub_progress_sink;

typedef struct hub_fetch_ctx {
    hub_http *http;
    const hub_settings *settings;
    const hub_cache *cache;
    const char *repo;
    const char *commit;
    hub_progress_sink progress;
} hub_fetch_ctx;

/* Makes snapshots/{commit}/{f->name} present and verified, downloading its
 * blob unless the cache has it. *downloaded gets the bytes fetched now. */
int hub_fetch_file(const hub_fetch_ctx *ctx, const hub_file *f, uint64_t *downloaded, q35_err *e);

/* --------------------------------------------------------- hub_progress.c */

typedef struct hub_bar hub_bar;

/* A progress bar drawn on stderr; pass hub_bar_update as a
 * q35_hub_progress_fn with the bar as its user pointer. */
hub_bar *hub_bar_new(void);
void hub_bar_update(void *bar, const char *file, uint64_t done, uint64_t total);
void hub_bar_free(hub_bar *b);

/* "1.5 GB", "230 kB", "12 B" (SI units, as huggingface_hub's tqdm shows). */
void hub_format_bytes(double bytes, char *buf, size_t len);

#endif
