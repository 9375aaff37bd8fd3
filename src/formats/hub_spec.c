/* hub_spec.c — the names of the hub: repo ids, revisions, file paths, blob
 * names, and URL quoting. Every one of them ends up in a filesystem path or
 * a URL, so each is checked here against a whitelist before it is used:
 * nothing typed by a user or sent by a server may climb out of the cache
 * ("..", absolute paths) or smuggle bytes into a request line. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/hub_internal.h"

static bool repo_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* One segment of a repo id: [A-Za-z0-9._-]+ not starting or ending with
 * '.' or '-' (the hub's own rule, from huggingface_hub's validate_repo_id). */
static bool repo_segment_valid(const char *s, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!repo_char(s[i])) return false;
    if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-') return false;
    return true;
}

bool hub_repo_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > HUB_REPO_ID_MAX) return false;
    const char *slash = strchr(id, '/');
    if (!slash || strchr(slash + 1, '/')) return false;
    if (strstr(id, "--") || strstr(id, "..")) return false;
    return repo_segment_valid(id, (size_t)(slash - id)) &&
           repo_segment_valid(slash + 1, n - (size_t)(slash - id) - 1);
}

/* A '/'-separated relative path whose segments are neither empty, "." nor
 * "..", with no byte below 0x20, no DEL and no backslash. */
static bool relative_path_valid(const char *p, size_t max) {
    size_t n = strlen(p);
    if (n == 0 || n > max || p[0] == '/') return false;
    const char *seg = p;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '/' || c == 0) {
            size_t len = (size_t)(p + i - seg);
            if (len == 0) return false;
            if (len == 1 && seg[0] == '.') return false;
            if (len == 2 && seg[0] == '.' && seg[1] == '.') return false;
            seg = p + i + 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f || c == '\\') return false;
    }
    return true;
}

bool hub_revision_valid(const char *rev) {
    /* git refuses ".." anywhere in a ref name; so do we. */
    if (!relative_path_valid(rev, HUB_REVISION_MAX) || strstr(rev, "..")) return false;
    for (const char *p = rev; *p; p++)
        if (*p == ' ' || *p == '@') return false;
    return true;
}

bool hub_filename_valid(const char *name) {
    return relative_path_valid(name, HUB_FILENAME_MAX);
}

bool hub_blob_name_valid(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > HUB_BLOB_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool hub_is_commit(const char *s) {
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return i == 40;
}

char *hub_url_quote(const char *s, const char *keep) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    if (!out) return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '.' || c == '-' || c == '~' || (keep && strchr(keep, c));
        if (plain) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = 0;
    return out;
}

void hub_spec_free(hub_spec *s) {
    free(s->revision);
    free(s->file);
    s->revision = s->file = NULL;
}

static char *dup_range(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int hub_spec_parse(const char *s, hub_spec *out, q35_err *e) {
    memset(out, 0, sizeof *out);
    if (!s || !*s) return q35_err_set(e, Q35_EINVAL, "empty hub repo id");
    size_t n = strlen(s);
    if (n > HUB_REPO_ID_MAX + HUB_REVISION_MAX + HUB_FILENAME_MAX + 2)
        return q35_err_set(e, Q35_EINVAL, "hub repo id too long (%zu bytes)", n);

    /* The repo is "org/name": up to the second '/' or the first '@'. */
    const char *slash = strchr(s, '/');
    if (!slash) goto bad;
    size_t repo_len = strcspn(slash + 1, "/@") + (size_t)(slash + 1 - s);
    if (repo_len > HUB_REPO_ID_MAX) goto bad;
    memcpy(out->repo, s, repo_len);
    out->repo[repo_len] = 0;
    if (!hub_repo_id_valid(out->repo)) goto bad;

    const char *rest = s + repo_len;
    const char *rev = NULL;
    size_t rev_len = 0;
    const char *file = NULL;
    if (*rest == '@') {
        rev = rest + 1;
        /* With a .gguf at the end the revision stops at the next '/';
         * otherwise it runs to the end (refs/pr/1 is a revision). */
        rev_len = ends_with(rev, ".gguf") ? strcspn(rev, "/") : strlen(rev);
        rest = rev + rev_len;
    }
    if (*rest == '/') {
        file = rest + 1;
        if (!ends_with(file, ".gguf")) goto bad;
    } else if (*rest) {
        goto bad;
    }
    out->revision = rev ? dup_range(rev, rev_len) : strdup("main");
    out->file = file ? strdup(file) : NULL;
    if (!out->revision || (file && !out->file)) {
        hub_spec_free(out);
        return q35_err_set(e, Q35_ENOMEM, "out of memory parsing '%s'", s);
    }
    if (!hub_revision_valid(out->revision)) {
        q35_err_set(e, Q35_EINVAL, "'%s': invalid revision '%s'", s, out->revision);
        hub_spec_free(out);
        return Q35_EINVAL;
    }
    if (out->file && !hub_filename_valid(out->file)) {
        q35_err_set(e, Q35_EINVAL, "'%s': invalid file path '%s'", s, out->file);
        hub_spec_free(out);
        return Q35_EINVAL;
    }
    return 0;

bad:
    hub_spec_free(out);
    return q35_err_set(e, Q35_EINVAL,
                       "'%.200s' is not a hub repo id (expected org/name, org/name@revision "
                       "or org/name[@revision]/file.gguf)",
                       s);
}
