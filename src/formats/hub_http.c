/* hub_http.c — the hub client's HTTP over libcurl: one easy handle per pull
 * (so connections are reused), three kinds of request (a JSON document, a
 * HEAD for file metadata, a file body streamed to a sink), and the mapping
 * of the hub's error answers (status + X-Error-Code) to clear messages.
 *
 * Security decisions kept in this one place:
 *  - only http/https, for the first request and for redirects;
 *  - the token travels in a custom Authorization header, which libcurl
 *    (>= 7.83) sends only to the scheme+host+port of the first request, so a
 *    redirect to the CDN never carries it (tests check this);
 *  - every header value kept is bounded and stripped of control bytes, and
 *    a JSON body over its limit aborts the transfer rather than growing. */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "formats/hub_internal.h"

struct hub_http {
    CURL *curl;
    struct curl_slist *headers; /* Authorization, when there is a token */
    const hub_settings *settings;
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct req_state {
    hub_response *r;
    bool have_linked_size; /* X-Linked-Size wins over Content-Length */
    bool have_linked_etag; /* X-Linked-Etag wins over ETag */
    /* JSON mode */
    bool json;
    size_t max_bytes;
    size_t cap;
    bool too_big;
    /* file mode */
    hub_body_fn sink;
    void *user;
    bool aborted;
} req_state;

hub_http *hub_http_new(const hub_settings *s, q35_err *e) {
    hub_http *h = calloc(1, sizeof *h);
    if (!h) {
        q35_err_set(e, Q35_ENOMEM, "out of memory");
        return NULL;
    }
    h->settings = s;
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        q35_err_set(e, Q35_ENET, "libcurl failed to initialize");
        return NULL;
    }
    if (s->token) {
        size_t n = strlen(s->token) + 32;
        char *line = malloc(n);
        if (!line) {
            hub_http_free(h);
            q35_err_set(e, Q35_ENOMEM, "out of memory");
            return NULL;
        }
        snprintf(line, n, "Authorization: Bearer %s", s->token);
        h->headers = curl_slist_append(NULL, line);
        memset(line, 0, n);
        free(line);
        if (!h->headers) {
            hub_http_free(h);
            q35_err_set(e, Q35_ENOMEM, "out of memory");
            return NULL;
        }
    }
    return h;
}

void hub_http_free(hub_http *h) {
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    free(h);
}

void hub_response_free(hub_response *r) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static void response_reset_headers(hub_response *r) {
    r->status = 0;
    r->error_code[0] = r->error_msg[0] = r->etag[0] = r->commit[0] = r->location[0] = 0;
    r->linked_size = -1;
    r->range_start = -1;
}

/* Copies a header value, trimmed, control bytes replaced, bounded. */
static void copy_value(char *dst, size_t cap, const char *v, size_t n) {
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[n] = 0;
}

static int64_t parse_size(const char *v) {
    if (!*v) return -1;
    int64_t x = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || x > (INT64_MAX - 9) / 10) return -1;
        x = x * 10 + (*p - '0');
    }
    return x;
}

/* ETag: W/"abc" -> abc; kept only when it is safe as a blob file name. */
static void take_etag(hub_response *r, const char *v) {
    if (!strncmp(v, "W/", 2)) v += 2;
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') v++, n -= 2;
    if (n == 0 || n > HUB_BLOB_NAME_MAX) return;
    char tmp[HUB_BLOB_NAME_MAX + 1];
    memcpy(tmp, v, n);
    tmp[n] = 0;
    if (hub_blob_name_valid(tmp)) memcpy(r->etag, tmp, n + 1);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud) {
    req_state *st = ud;
    hub_response *r = st->r;
    size_t n = size * nitems;
    if (n >= 5 && !memcmp(data, "HTTP/", 5)) {
        /* A new response (after a redirect or a 100): forget the last one. */
        response_reset_headers(r);
        st->have_linked_size = st->have_linked_etag = false;
        const char *sp = memchr(data, ' ', n);
        if (sp && (size_t)(sp - data) + 4 <= n) {
            long code = 0;
            for (int i = 1; i <= 3; i++) {
                char c = sp[i];
                if (c < '0' || c > '9') return n;
                code = code * 10 + (c - '0');
            }
            r->status = code;
        }
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon) return n;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vn = n - name_len - 1;
    char val[1024];
    copy_value(val, sizeof val, v, vn);
#define IS(h) (name_len == sizeof(h) - 1 && !strncasecmp(data, h, name_len))
    if (IS("x-error-code")) {
        copy_value(r->error_code, sizeof r->error_code, val, strlen(val));
    } else if (IS("x-error-message")) {
        copy_value(r->error_msg, sizeof r->error_msg, val, strlen(val));
    } else if (IS("x-linked-etag")) {
        r->etag[0] = 0;
        take_etag(r, val);
        st->have_linked_etag = true;
    } else if (IS("etag")) {
        if (!st->have_linked_etag) take_etag(r, val);
    } else if (IS("x-linked-size")) {
        r->linked_size = parse_size(val);
        st->have_linked_size = true;
    } else if (IS("content-length")) {
        if (!st->have_linked_size) r->linked_size = parse_size(val);
    } else if (IS("x-repo-commit")) {
        if (hub_is_commit(val)) memcpy(r->commit, val, 41);
    } else if (IS("content-range")) {
        /* "bytes START-END/TOTAL" */
        if (!strncasecmp(val, "bytes ", 6)) {
            char *dash = strchr(val + 6, '-');
            if (dash) {
                *dash = 0;
                r->range_start = parse_size(val + 6);
            }
        }
    } else if (IS("location")) {
        copy_value(r->location, sizeof r->location, val, strlen(val));
    }
#undef IS
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    req_state *st = ud;
    hub_response *r = st->r;
    size_t n = size * nmemb;
    if (st->json) {
        if (r->body_len + n > st->max_bytes) {
            st->too_big = true;
            return 0;
        }
        if (r->body_len + n + 1 > st->cap) {
            size_t cap = st->cap ? st->cap : 16384;
            while (cap < r->body_len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) {
                st->too_big = true;
                return 0;
            }
            r->body = b;
            st->cap = cap;
        }
        memcpy(r->body + r->body_len, data, n);
        r->body_len += n;
        r->body[r->body_len] = 0;
        return n;
    }
    if (r->status != 200 && r->status != 206) return n; /* an error page */
    if (!st->sink(st->user, r, data, n)) {
        st->aborted = true;
        return 0;
    }
    r->body_bytes += n;
    return n;
}

static void set_common(hub_http *h, const char *url, req_state *st, bool follow) {
    CURL *c = h->curl;
    curl_easy_reset(c);
    h->errbuf[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "q35/0.1.0 (hub client; libcurl)");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->settings->stall_timeout_s);
    /* A stalled transfer (no byte for this long) fails and may be resumed. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->settings->stall_timeout_s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, st);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
    if (h->headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
}

static int transport_error(hub_http *h, CURLcode rc, const char *method, const char *url,
                           q35_err *e) {
    return q35_err_set(e, Q35_ENET, "%s %s: %s", method, url,
                       h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
}

int hub_http_get_json(hub_http *h, const char *url, size_t max_bytes, hub_response *r, q35_err *e) {
    memset(r, 0, sizeof *r);
    response_reset_headers(r);
    req_state st = {.r = r, .json = true, .max_bytes = max_bytes};
    set_common(h, url, &st, true);
    CURLcode rc = curl_easy_perform(h->curl);
    if (st.too_big)
        return q35_err_set(e, Q35_EFORMAT, "GET %s: answer larger than %zu bytes", url, max_bytes);
    if (rc != CURLE_OK) return transport_error(h, rc, "GET", url, e);
    return 0;
}

/* scheme://host[:port] of the endpoint, for relative redirects. */
static size_t origin_len(const char *url) {
    const char *p = strstr(url, "://");
    if (!p) return strlen(url);
    const char *slash = strchr(p + 3, '/');
    return slash ? (size_t)(slash - url) : strlen(url);
}

int hub_http_head(hub_http *h, const char *url, hub_response *r, q35_err *e) {
    char *cur = strdup(url);
    if (!cur) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    int rc = 0;
    for (int hop = 0;; hop++) {
        memset(r, 0, sizeof *r);
        response_reset_headers(r);
        req_state st = {.r = r, .json = true, .max_bytes = 0};
        set_common(h, cur, &st, false);
        curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
        CURLcode cc = curl_easy_perform(h->curl);
        if (cc != CURLE_OK) {
            rc = transport_error(h, cc, "HEAD", cur, e);
            break;
        }
        /* Follow only a relative redirect (a renamed repo on the hub
         * itself); a redirect elsewhere is the CDN, whose headers are not
         * the hub's metadata. */
        bool relative = r->status >= 300 && r->status < 400 && r->location[0] == '/';
        if (!relative) break;
        if (hop == 5) {
            rc = q35_err_set(e, Q35_ENET, "HEAD %s: too many redirects", url);
            break;
        }
        size_t o = origin_len(h->settings->endpoint);
        size_t n = o + strlen(r->location) + 1;
        char *next = malloc(n);
        if (!next) {
            rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
            break;
        }
        snprintf(next, n, "%.*s%s", (int)o, h->settings->endpoint, r->location);
        free(cur);
        cur = next;
    }
    free(cur);
    return rc;
}

int hub_http_get_file(hub_http *h, const char *url, uint64_t offset, hub_body_fn sink, void *user,
                      hub_response *r, q35_err *e) {
    memset(r, 0, sizeof *r);
    response_reset_headers(r);
    req_state st = {.r = r, .sink = sink, .user = user};
    set_common(h, url, &st, true);
    char range[32];
    if (offset > 0) {
        snprintf(range, sizeof range, "%" PRIu64 "-", offset);
        curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
    }
    CURLcode rc = curl_easy_perform(h->curl);
    if (st.aborted) return Q35_ECANCELLED;
    if (rc != CURLE_OK) return transport_error(h, rc, "GET", url, e);
    return 0;
}

int hub_http_status_error(const hub_response *r, const hub_settings *s, const char *repo,
                          const char *revision, const char *what, q35_err *e) {
    const char *code = r->error_code;
    char detail[300] = "";
    if (r->error_msg[0]) snprintf(detail, sizeof detail, " (hub: %s)", r->error_msg);
    long st = r->status;
    if (st == 401 || st == 403) {
        if (!strcmp(code, "GatedRepo"))
            return q35_err_set(e, Q35_EAUTH,
                               "%s: %s is a gated repo%s: accept its conditions at %s/%s and set "
                               "HF_TOKEN to a token of that account",
                               what, repo, detail, s->endpoint, repo);
        if (!s->token)
            return q35_err_set(e, Q35_EAUTH,
                               "%s: the hub answered %ld %s%s: %s is private or gated, or does "
                               "not exist. If it exists, set HF_TOKEN to an access token that "
                               "can read it (https://huggingface.co/settings/tokens)",
                               what, st, st == 401 ? "Unauthorized" : "Forbidden", detail, repo);
        return q35_err_set(e, Q35_EAUTH,
                           "%s: the hub refused HF_TOKEN (%ld %s)%s: the token is invalid or "
                           "expired, or cannot read %s",
                           what, st, st == 401 ? "Unauthorized" : "Forbidden", detail, repo);
    }
    if (st == 404) {
        if (!strcmp(code, "RepoNotFound"))
            return q35_err_set(e, Q35_ENOTFOUND, "repository %s not found on %s%s", repo,
                               s->endpoint, detail);
        if (!strcmp(code, "RevisionNotFound"))
            return q35_err_set(e, Q35_ENOTFOUND, "revision '%s' not found in %s%s", revision, repo,
                               detail);
        if (!strcmp(code, "EntryNotFound"))
            return q35_err_set(e, Q35_ENOTFOUND, "%s not found in %s at revision %s%s", what, repo,
                               revision, detail);
        return q35_err_set(e, Q35_ENOTFOUND, "%s (%s@%s): 404 Not Found%s", what, repo, revision,
                           detail);
    }
    if (st >= 500)
        return q35_err_set(e, Q35_ENET, "%s (%s@%s): the hub answered HTTP %ld%s; try again later",
                           what, repo, revision, st, detail);
    return q35_err_set(e, Q35_ENET, "%s (%s@%s): unexpected HTTP status %ld%s", what, repo,
                       revision, st, detail);
}
