/* hub_settings.c — where the hub client's settings come from: the caller's
 * q35_hub_opts first, then the same environment variables huggingface_hub
 * reads (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE, ...),
 * with the same defaults, so q35 and the Python tools agree on one cache. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mapped_file.h"
#include "formats/hub_internal.h"

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* huggingface_hub's truthy values for boolean variables. */
static bool env_true(const char *name) {
    const char *v = env(name);
    if (!v) return false;
    return !strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
           !strcasecmp(v, "true");
}

static char *join2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface;
 * NULL when none of them is set (or out of memory). */
static char *hf_home(void) {
    const char *v = env("HF_HOME");
    if (v) return strdup(v);
    v = env("XDG_CACHE_HOME");
    if (v) return join2(v, "huggingface");
    v = env("HOME");
    return v ? join2(v, ".cache/huggingface") : NULL;
}

/* Trims a token read from a file or the environment; refuses one holding
 * bytes that could break out of the Authorization header. */
static int take_token(hub_settings *s, const char *raw, const char *where, q35_err *e) {
    while (*raw && isspace((unsigned char)*raw))
        raw++;
    size_t n = strlen(raw);
    while (n && isspace((unsigned char)raw[n - 1]))
        n--;
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c < 0x21 || c == 0x7f)
            return q35_err_set(e, Q35_EINVAL, "%s: the token holds a control or space character",
                               where);
    }
    s->token = malloc(n + 1);
    if (!s->token) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    memcpy(s->token, raw, n);
    s->token[n] = 0;
    return 0;
}

static int load_token(hub_settings *s, const q35_hub_opts *o, const char *home, q35_err *e) {
    if (o && o->token) return take_token(s, o->token, "q35_hub_opts.token", e);
    const char *v = env("HF_TOKEN");
    if (v) return take_token(s, v, "HF_TOKEN", e);
    v = env("HUGGING_FACE_HUB_TOKEN"); /* the older name, still honoured */
    if (v) return take_token(s, v, "HUGGING_FACE_HUB_TOKEN", e);
    if (!env("HF_TOKEN_PATH") && !home) return 0;
    char *path = env("HF_TOKEN_PATH") ? strdup(env("HF_TOKEN_PATH")) : join2(home, "token");
    if (!path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    int rc = 0;
    if (access(path, R_OK) == 0) {
        q35_err fe;
        char *text = q35_read_text_file(path, 4096, NULL, &fe);
        if (text) rc = take_token(s, text, path, e);
        free(text);
    }
    free(path);
    return rc;
}

int hub_settings_load(hub_settings *s, const q35_hub_opts *o, q35_err *e) {
    memset(s, 0, sizeof *s);
    int rc = Q35_ENOMEM;
    char *home = NULL;

    const char *ep = o && o->endpoint ? o->endpoint : env("HF_ENDPOINT");
    s->endpoint = strdup(ep ? ep : "https://huggingface.co");
    if (!s->endpoint) goto oom;
    size_t n = strlen(s->endpoint);
    while (n && s->endpoint[n - 1] == '/')
        s->endpoint[--n] = 0;
    if (strncmp(s->endpoint, "http://", 7) && strncmp(s->endpoint, "https://", 8)) {
        rc = q35_err_set(e, Q35_EINVAL, "hub endpoint '%s' is not an http(s) URL", s->endpoint);
        goto fail;
    }
    for (const char *p = s->endpoint; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            rc = q35_err_set(e, Q35_EINVAL, "hub endpoint holds a space or control character");
            goto fail;
        }
    }

    home = hf_home();
    if (o && o->cache_dir)
        s->cache_dir = strdup(o->cache_dir);
    else if (env("HF_HUB_CACHE"))
        s->cache_dir = strdup(env("HF_HUB_CACHE"));
    else if (env("HUGGINGFACE_HUB_CACHE"))
        s->cache_dir = strdup(env("HUGGINGFACE_HUB_CACHE"));
    else if (home)
        s->cache_dir = join2(home, "hub");
    else {
        rc = q35_err_set(e, Q35_EINVAL,
                         "cannot locate the HF cache: HOME is not set; set "
                         "HF_HOME or HF_HUB_CACHE");
        goto fail;
    }
    if (!s->cache_dir) goto oom;

    rc = load_token(s, o, home, e);
    if (rc) goto fail;

    s->offline =
        (o && o->offline) || env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
    s->stall_timeout_s = 10;
    const char *t = env("HF_HUB_DOWNLOAD_TIMEOUT");
    if (t) {
        char *end;
        errno = 0;
        double v = strtod(t, &end);
        if (!*end && !errno && v >= 1 && v <= 86400) s->stall_timeout_s = (long)v;
    }
    bool quiet = (o && o->quiet) || env_true("HF_HUB_DISABLE_PROGRESS_BARS");
    s->progress_bar = !quiet && isatty(STDERR_FILENO);
    free(home);
    return 0;

oom:
    rc = q35_err_set(e, Q35_ENOMEM, "out of memory reading hub settings");
fail:
    free(home);
    hub_settings_free(s);
    return rc;
}

void hub_settings_free(hub_settings *s) {
    free(s->endpoint);
    free(s->cache_dir);
    if (s->token) {
        /* The token is a secret: do not leave it in freed memory. */
        volatile char *p = s->token;
        while (*p)
            *p++ = 0;
        free(s->token);
    }
    memset(s, 0, sizeof *s);
}
