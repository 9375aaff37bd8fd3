/* hub_fetch.c — one file of a snapshot into the cache. The sequence (the
 * same as huggingface_hub's, so the two tools can run side by side):
 *
 *   1. snapshots/<commit>/<file> already resolves to a blob of the right
 *      size: nothing to do;
 *   2. the blob exists (another snapshot or tool fetched it): link it;
 *   3. otherwise take the blob's lock (.locks/.../<blob>.lock, flock), look
 *      again (a concurrent pull may just have finished it), download into
 *      blobs/<blob>.incomplete — resuming with Range from what a cut
 *      connection or an earlier crash left there — verify size and hash,
 *      rename to blobs/<blob>, release the lock, link.
 *
 * Only verified bytes are ever renamed into blobs/. A checksum mismatch
 * deletes the .incomplete file; a network failure keeps it for the next
 * attempt. A mismatch on a download that had resumed from bytes left by an
 * earlier run is retried once from zero (those old bytes may be the bad
 * ones); on a fresh download it is an error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "formats/hub_internal.h"

enum {
    MAX_STALLED_ATTEMPTS = 3, /* consecutive attempts that received nothing */
    MAX_ATTEMPTS = 30,        /* in all, for a server that trickles and cuts */
};

typedef struct download {
    const hub_fetch_ctx *ctx;
    const hub_file *f;
    const char *path; /* blobs/<blob>.incomplete */
    int fd;
    uint64_t pos; /* bytes in the file */
    hub_digest *digest;
    uint64_t hashed;   /* bytes of the file fed to the digest */
    uint64_t received; /* bytes received in this call, all attempts */
    bool started;      /* the current attempt's first body byte was seen */
    double last_report;
    q35_err *e;
} download;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void report(download *d, bool force) {
    const hub_progress_sink *p = &d->ctx->progress;
    if (!p->fn) return;
    double t = now_s();
    if (!force && t - d->last_report < 0.1) return;
    d->last_report = t;
    p->fn(p->user, d->f->name, d->pos, d->f->has_size ? d->f->size : 0);
}

/* Back to an empty file (the server restarted from byte 0). */
static bool restart_file(download *d) {
    if (ftruncate(d->fd, 0) != 0) {
        q35_err_set(d->e, Q35_EIO, "cannot truncate %s: %s", d->path, strerror(errno));
        return false;
    }
    d->pos = 0;
    d->hashed = 0;
    if (d->digest) hub_digest_reset(d->digest);
    return true;
}

static bool on_body(void *user, const hub_response *r, const void *data, size_t n) {
    download *d = user;
    if (!d->started) {
        d->started = true;
        if (r->status == 206) {
            if (r->range_start != (int64_t)d->pos) {
                q35_err_set(d->e, Q35_EFORMAT,
                            "%s: the server resumed at byte %" PRId64 ", not at %" PRIu64,
                            d->f->name, r->range_start, d->pos);
                return false;
            }
        } else if (d->pos != 0 && !restart_file(d)) { /* 200: Range ignored */
            return false;
        }
    }
    if (d->f->has_size && d->pos + n > d->f->size) {
        q35_err_set(d->e, Q35_EFORMAT,
                    "%s: the server sent more than the %" PRIu64 " bytes the hub lists", d->f->name,
                    d->f->size);
        return false;
    }
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = pwrite(d->fd, p, left, (off_t)(d->pos + (uint64_t)(p - (const char *)data)));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            q35_err_set(d->e, Q35_EIO, "cannot write %s: %s", d->path,
                        w < 0 ? strerror(errno) : "short write");
            return false;
        }
        p += w;
        left -= (size_t)w;
    }
    if (d->digest && d->hashed == d->pos) {
        hub_digest_update(d->digest, data, n);
        d->hashed += n;
    }
    d->pos += n;
    d->received += n;
    report(d, false);
    return true;
}

/* Brings the digest up to the file's current length, reading back bytes
 * written by an earlier run (or rewinding after a truncation). */
static int sync_digest(download *d) {
    if (!d->digest || d->hashed == d->pos) return 0;
    if (d->hashed > d->pos) {
        hub_digest_reset(d->digest);
        d->hashed = 0;
    }
    char *buf = malloc(1 << 20);
    if (!buf) return q35_err_set(d->e, Q35_ENOMEM, "out of memory");
    int rc = 0;
    while (d->hashed < d->pos) {
        uint64_t want = d->pos - d->hashed;
        size_t n = want < (1u << 20) ? (size_t)want : (1u << 20);
        ssize_t got = pread(d->fd, buf, n, (off_t)d->hashed);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            rc = q35_err_set(d->e, Q35_EIO, "cannot read back %s: %s", d->path,
                             got < 0 ? strerror(errno) : "unexpected end of file");
            break;
        }
        hub_digest_update(d->digest, buf, (size_t)got);
        d->hashed += (uint64_t)got;
    }
    free(buf);
    return rc;
}

static char *file_url(const hub_fetch_ctx *ctx, const char *name) {
    char *q = hub_url_quote(name, "/");
    if (!q) return NULL;
    size_t n =
        strlen(ctx->settings->endpoint) + strlen(ctx->repo) + strlen(ctx->commit) + strlen(q) + 16;
    char *url = malloc(n);
    if (url)
        snprintf(url, n, "%s/%s/resolve/%s/%s", ctx->settings->endpoint, ctx->repo, ctx->commit, q);
    free(q);
    return url;
}

static int check_space(download *d) {
    if (!d->f->has_size || d->pos >= d->f->size) return 0;
    struct statvfs vs;
    if (fstatvfs(d->fd, &vs) != 0) return 0; /* unknown: let write() tell */
    uint64_t avail = (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize;
    uint64_t need = d->f->size - d->pos;
    if (avail < need)
        return q35_err_set(d->e, Q35_EIO,
                           "%s: %" PRIu64 " bytes to download but only %" PRIu64 " free in %s",
                           d->f->name, need, avail, d->ctx->cache->repo_dir);
    return 0;
}

/* Runs GETs until the file is whole, retrying cut or failed transfers from
 * where they stopped. */
static int transfer(download *d, const char *url) {
    int stalled = 0;
    for (int attempt = 1;; attempt++) {
        if (d->f->has_size && d->pos > d->f->size && !restart_file(d)) return d->e->code;
        if (d->f->has_size && d->pos == d->f->size) return 0; /* nothing left to fetch */
        int rc = sync_digest(d);
        if (!rc) rc = check_space(d);
        if (rc) return rc;
        report(d, true);

        uint64_t before = d->pos;
        d->started = false;
        hub_response r;
        q35_err net;
        rc = hub_http_get_file(d->ctx->http, url, d->pos, on_body, d, &r, &net);
        hub_response_free(&r);
        if (rc == Q35_ECANCELLED) return d->e->code; /* the sink said why */
        bool progressed = d->pos > before;
        bool body = r.status == 200 || r.status == 206;
        if (rc == 0 && body) {
            if (!d->f->has_size || d->pos == d->f->size) return 0;
            /* A clean end short of the size: as good as a cut. */
            q35_err_set(&net, Q35_ENET,
                        "GET %s: the transfer ended at byte %" PRIu64 " of %" PRIu64, url, d->pos,
                        d->f->size);
        } else if (rc == 0 && r.status == 416) {
            /* What we hold is not a prefix the server can continue. */
            if (!restart_file(d)) return d->e->code;
            q35_err_set(&net, Q35_ENET, "GET %s: 416 Range Not Satisfiable", url);
        } else if (rc == 0 && r.status != 429 && r.status < 500) {
            char what[HUB_FILENAME_MAX + 8];
            snprintf(what, sizeof what, "file %s", d->f->name);
            return hub_http_status_error(&r, d->ctx->settings, d->ctx->repo, d->ctx->commit, what,
                                         d->e);
        } else if (rc == 0) {
            char what[HUB_FILENAME_MAX + 8];
            snprintf(what, sizeof what, "file %s", d->f->name);
            hub_http_status_error(&r, d->ctx->settings, d->ctx->repo, d->ctx->commit, what, &net);
        }
        stalled = progressed ? 0 : stalled + 1;
        if (stalled >= MAX_STALLED_ATTEMPTS || attempt >= MAX_ATTEMPTS)
            return q35_err_set(d->e, Q35_ENET,
                               "downloading %s: %s (after %d attempts; the %" PRIu64
                               " bytes received are kept in %s and the next pull resumes "
                               "from there)",
                               d->f->name, net.msg, attempt, d->pos, d->path);
        if (!progressed) sleep_s(0.25 * (double)(1 << (stalled - 1)));
    }
}

/* Compares the finished file with the listing: size, then the hash. */
static int verify(download *d) {
    const hub_file *f = d->f;
    if (f->has_size && d->pos != f->size)
        return q35_err_set(d->e, Q35_EFORMAT, "%s: got %" PRIu64 " bytes, the hub lists %" PRIu64,
                           f->name, d->pos, f->size);
    if (!d->digest) return 0;
    int rc = sync_digest(d);
    if (rc) return rc;
    char got[65];
    hub_digest_final_hex(d->digest, got);
    d->hashed = 0;
    const char *want = f->sha256[0] ? f->sha256 : f->git_oid;
    if (strcmp(got, want) != 0)
        return q35_err_set(d->e, Q35_EFORMAT,
                           "checksum mismatch for %s: the hub lists %s %s, the download has %s; "
                           "the download was deleted and nothing was added to the cache",
                           f->name, f->sha256[0] ? "sha256" : "git blob id", want, got);
    return 0;
}

/* Downloads, verifies and renames into blob_path. Caller holds the lock. */
static int download_blob(const hub_fetch_ctx *ctx, const hub_file *f, const char *blob_path,
                         uint64_t *received, q35_err *e) {
    size_t pn = strlen(blob_path) + 16;
    char *part = malloc(pn);
    char *url = file_url(ctx, f->name);
    if (!part || !url) {
        free(part);
        free(url);
        return q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    snprintf(part, pn, "%s.incomplete", blob_path);
    download d = {.ctx = ctx, .f = f, .path = part, .fd = -1, .e = e};
    int rc = 0;
    /* Verify with what the listing offers: LFS sha256, else the git id
     * (which needs the size up front, for git's "blob <size>" header). */
    if (f->sha256[0])
        d.digest = hub_digest_new(HUB_DIGEST_SHA256, 0, e);
    else if (f->git_oid[0] && f->has_size)
        d.digest = hub_digest_new(HUB_DIGEST_GIT_BLOB, f->size, e);
    if ((f->sha256[0] || (f->git_oid[0] && f->has_size)) && !d.digest) {
        rc = e->code;
        goto done;
    }
    for (int round = 0;; round++) {
        d.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        struct stat st;
        if (d.fd < 0 || fstat(d.fd, &st) != 0) {
            rc = q35_err_set(e, Q35_EIO, "cannot open %s: %s", part, strerror(errno));
            goto done;
        }
        d.pos = (uint64_t)st.st_size;
        d.hashed = 0;
        if (d.digest) hub_digest_reset(d.digest);
        bool resumed_old_bytes = d.pos > 0;
        rc = transfer(&d, url);
        if (!rc) rc = verify(&d);
        if (rc == Q35_EFORMAT) {
            /* Unverifiable bytes never stay: drop them. */
            close(d.fd);
            d.fd = -1;
            unlink(part);
            if (round == 0 && resumed_old_bytes) continue; /* retry once, from zero */
        }
        if (rc) goto done;
        break;
    }
    report(&d, true);
    if (fsync(d.fd) != 0) {
        rc = q35_err_set(e, Q35_EIO, "cannot sync %s: %s", part, strerror(errno));
        goto done;
    }
    close(d.fd);
    d.fd = -1;
    if (rename(part, blob_path) != 0)
        rc =
            q35_err_set(e, Q35_EIO, "cannot rename %s to %s: %s", part, blob_path, strerror(errno));
done:
    *received = d.received;
    if (d.fd >= 0) {
        close(d.fd);
        /* An empty leftover (e.g. the hub answered 404) is no resume state. */
        if (rc && d.pos == 0) unlink(part);
    }
    hub_digest_free(d.digest);
    free(part);
    free(url);
    return rc;
}

/* A regular file (through symlinks) of the listed size, if one is listed. */
static bool present(const char *path, const hub_file *f) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    return !f->has_size || (uint64_t)st.st_size == f->size;
}

int hub_fetch_file(const hub_fetch_ctx *ctx, const hub_file *f, uint64_t *downloaded, q35_err *e) {
    *downloaded = 0;
    if (!hub_blob_name_valid(f->blob))
        return q35_err_set(e, Q35_EFORMAT, "%s: the hub gave no usable blob id or ETag", f->name);
    const char *dir = ctx->cache->repo_dir;
    size_t n = strlen(dir) + strlen(ctx->commit) + strlen(f->name) + strlen(f->blob) + 32;
    char *pointer = malloc(n), *blobs = malloc(n), *blob = malloc(n);
    int rc = 0;
    if (!pointer || !blobs || !blob) {
        rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(pointer, n, "%s/snapshots/%s/%s", dir, ctx->commit, f->name);
    snprintf(blobs, n, "%s/blobs", dir);
    snprintf(blob, n, "%s/blobs/%s", dir, f->blob);
    if (present(pointer, f)) goto done;
    rc = hub_mkdirs(blobs, e);
    if (rc) goto done;
    if (!present(blob, f)) {
        int lock = hub_cache_lock_blob(ctx->cache, f->blob, e);
        if (lock < 0) {
            rc = lock;
            goto done;
        }
        /* A concurrent pull may have finished it while we waited. */
        if (!present(blob, f)) rc = download_blob(ctx, f, blob, downloaded, e);
        hub_cache_unlock(lock);
        if (rc) goto done;
    }
    rc = hub_cache_link(ctx->cache, ctx->commit, f->name, f->blob, e);
done:
    free(pointer);
    free(blobs);
    free(blob);
    return rc;
}
