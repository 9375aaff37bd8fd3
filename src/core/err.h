/* err.h — filling q35_err values. Every failing path in the library ends in
 * q35_err_set so that the message always names what went wrong. */
#ifndef Q35_CORE_ERR_H
#define Q35_CORE_ERR_H

#include "q35.h"

/* Sets e (if non-NULL) to `code` with a printf-style message; returns code so
 * callers can write `return q35_err_set(e, Q35_EFORMAT, "...")`. */
int q35_err_set(q35_err *e, q35_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an already set message (adds context as an error
 * travels up: "model.safetensors: tensor x: ..."). */
void q35_err_prefix(q35_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void q35_err_clear(q35_err *e) {
    if (e) {
        e->code = Q35_OK;
        e->msg[0] = 0;
    }
}

#endif
