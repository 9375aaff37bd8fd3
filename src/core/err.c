/* err.c — error values with messages. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int q35_err_set(q35_err *e, q35_status code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

void q35_err_prefix(q35_err *e, const char *fmt, ...) {
    if (!e) return;
    char prefix[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* Truncation is acceptable: the head of the message carries the context. */
    size_t n = strlen(prefix);
    if (n > sizeof e->msg - 3) n = sizeof e->msg - 3;
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t rest = sizeof e->msg - n - 3;
    size_t m = strnlen(old, rest);
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = 0;
}

const char *q35_status_name(q35_status s) {
    switch (s) {
    case Q35_OK: return "ok";
    case Q35_EINVAL: return "invalid argument";
    case Q35_EIO: return "I/O error";
    case Q35_EFORMAT: return "format error";
    case Q35_ENOMEM: return "out of memory";
    case Q35_ENOTFOUND: return "not found";
    case Q35_ENET: return "network error";
    case Q35_EAUTH: return "not authorized";
    case Q35_ECANCELLED: return "cancelled";
    case Q35_EOVERFLOW: return "overflow";
    case Q35_ESTATE: return "invalid state";
    }
    return "unknown error";
}
