/* stop_strings.h — finding stop strings in streamed text. Text that could
 * be the start of a stop string is held back until the next piece decides
 * it, so a reply never shows part of a stop string and the streamed pieces
 * always equal the final text. */
#ifndef Q35_RUNTIME_STOP_STRINGS_H
#define Q35_RUNTIME_STOP_STRINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/strbuf.h"

typedef struct q35_stop_matcher {
    const char *const *stop; /* borrowed, NULL-terminated; empty strings ignored */
    q35_strbuf held;         /* text not yet released */
    bool matched;
} q35_stop_matcher;

void q35_stop_init(q35_stop_matcher *m, const char *const *stop);
void q35_stop_free(q35_stop_matcher *m);

/* Adds `len` bytes of complete UTF-8 text. Appends to `out` the text that
 * is now known not to belong to a stop string; on a match, the text up to
 * the match, and sets m->matched (later calls add nothing). Q35_OK or
 * Q35_ENOMEM. */
int q35_stop_feed(q35_stop_matcher *m, const char *text, size_t len, q35_strbuf *out);

/* At the end of the reply: releases the held-back text into `out`. */
int q35_stop_finish(q35_stop_matcher *m, q35_strbuf *out);

#endif
