/* reply_guard.h — a constraint's part in one reply's token loop, shared by
 * the runtime's loops (generate.c, reply_step.c) so they apply it the same
 * way: with thinking off the matcher starts with the reply; with thinking
 * on the think block is free and the matcher starts where "</think>" ends
 * (fed the rest of that step's answer text; up to two newlines may follow
 * before the document). Before each sampled id the loop masks with
 * q35_reply_guard_mask; after each id (sampled or forced, eos excluded) it
 * calls q35_reply_guard_after; `done` then says the document is complete
 * and cannot go on, so the reply ends there (stop reason eos). */
#ifndef Q35_CONSTRAINT_REPLY_GUARD_H
#define Q35_CONSTRAINT_REPLY_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

typedef struct q35_reply_guard {
    const q35_constraint *c; /* NULL: no constraint, every call is a no-op */
    q35_matcher *m;          /* NULL until the answer starts */
    int32_t eos[16];
    int n_eos;
    bool done;
} q35_reply_guard;

/* `c` may be NULL. `eos`: the reply's end ids (allowed where complete). */
int q35_reply_guard_init(q35_reply_guard *g, const q35_constraint *c, bool thinking,
                         const int32_t *eos, int n_eos, q35_err *e);
void q35_reply_guard_free(q35_reply_guard *g);

/* The matcher to mask the next sampled id with; NULL while the text is
 * free (no constraint, or inside the think block). */
q35_matcher *q35_reply_guard_mask(q35_reply_guard *g);

/* After id `id` went through the thinking split: `was_thinking` /
 * `in_thinking` before and after it, `answer` / `n` the answer text it
 * produced. Fails when the id breaks the document (which the mask rules
 * out) or the matcher hits its limits. */
int q35_reply_guard_after(q35_reply_guard *g, int32_t id, bool was_thinking, bool in_thinking,
                          const char *answer, size_t n, q35_err *e);

#endif
