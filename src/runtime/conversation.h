/* conversation.h — the history of a chat as text (system prompt, then
 * turns of user message and answer) and its rendering to prompt ids with
 * the chat template and the safe prompt encoding of the text layer. The
 * history is the truth; ids are always re-derived from it, which is what
 * makes a cached turn equal to a from-scratch render. */
#ifndef Q35_RUNTIME_CONVERSATION_H
#define Q35_RUNTIME_CONVERSATION_H

#include <stdbool.h>
#include <stddef.h>

#include "q35.h"

typedef struct q35_turn {
    char *user;
    char *answer;
} q35_turn;

typedef struct q35_conversation {
    char *system; /* NULL: none */
    q35_turn *turns;
    int n_turns, cap_turns;
} q35_conversation;

/* system may be NULL or "" (none). */
int q35_conv_init(q35_conversation *cv, const char *system, q35_err *e);
void q35_conv_free(q35_conversation *cv);

/* Appends a turn (copies; answer may be NULL for ""). */
int q35_conv_push(q35_conversation *cv, const char *user, const char *answer, size_t answer_len,
                  q35_err *e);
void q35_conv_pop(q35_conversation *cv);
/* Removes the first n turns. */
void q35_conv_drop_oldest(q35_conversation *cv, int n);
void q35_conv_clear(q35_conversation *cv);
int q35_conv_set_answer(q35_conversation *cv, int i, const char *answer, size_t len, q35_err *e);

/* Renders the system prompt, turns [first, n_turns) and, if `user` is not
 * NULL, one more user message; then the generation prompt (thinking on or
 * off) when add_gen. The ids replace the content of `out`. */
int q35_conv_render(const q35_conversation *cv, const q35_tokenizer *tok, int first,
                    const char *user, bool add_gen, bool thinking, q35_tokens *out, q35_err *e);

#endif
