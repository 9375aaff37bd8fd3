/* thinking.h — splitting a reply's text into thinking and answer as it
 * streams (SPEC §5). With thinking on, the prompt ends inside "<think>\n",
 * so the reply starts as thinking; the text "</think>" (one added token, or
 * several tokens spelling it) ends the think block. The thinking keeps no
 * newlines at its ends and the answer none at its start, as the chat
 * template strips them when the answer is rendered back into the history.
 * Newlines and a possible start of "</think>" are held back until the next
 * piece shows where they belong, so the pieces handed out concatenate to
 * exactly the final thinking and answer. */
#ifndef Q35_RUNTIME_THINKING_H
#define Q35_RUNTIME_THINKING_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/strbuf.h"

typedef struct q35_think_splitter {
    bool in_thinking;   /* still inside the think block */
    bool at_start;      /* nothing emitted yet in the current part */
    q35_strbuf pending; /* held-back thinking text */
} q35_think_splitter;

/* thinking: whether the reply starts inside a think block. */
void q35_think_init(q35_think_splitter *t, bool thinking);
void q35_think_free(q35_think_splitter *t);

/* Adds a piece of complete UTF-8 text; appends what is now known to be
 * thinking to `thinking` and answer to `answer`. Q35_OK or Q35_ENOMEM. */
int q35_think_feed(q35_think_splitter *t, const char *text, size_t len, q35_strbuf *thinking,
                   q35_strbuf *answer);

/* At the end of the reply: releases held-back thinking text (trailing
 * newlines are dropped, a dangling start of "</think>" is kept as text). */
int q35_think_finish(q35_think_splitter *t, q35_strbuf *thinking);

#endif
