/* generate.h — the token loop of one reply, once the prompt is in the
 * state: sample (or take a forced id), check the stop conditions, turn ids
 * into text pieces (UTF-8-safe decoding → thinking/answer split → stop
 * strings → the caller's callback), feed the id back, repeat. It knows
 * nothing about conversations; the chat (chat.c) renders and prefills the
 * prompt and keeps the history. */
#ifndef Q35_RUNTIME_GENERATE_H
#define Q35_RUNTIME_GENERATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "q35.h"

typedef struct q35_gen_ctx {
    const q35_model *model;
    q35_state *state; /* holds the prompt; advanced as ids are fed */
    const q35_tokenizer *tok;
    int n_logits;       /* logits row length (model vocabulary) */
    int n_valid;        /* ids that may be sampled (the tokenizer's size) */
    const int32_t *eos; /* ids that end the reply */
    int n_eos;
    const int32_t *think_end; /* the ids forced when the thinking budget runs out */
    int n_think_end;
    atomic_bool *cancel; /* set from any thread to stop */
    q35_tokens *context; /* every id in the state; fed ids are appended */
    float *logits;       /* in: the last prompt position's row; scratch after */
    double t_start;      /* q35_now_ms() when the turn began (for ttft) */
} q35_gen_ctx;

/* Generates one reply with settings `s` (already checked) into `out`
 * (zeroed by the caller; prompt fields are left for the caller). Returns
 * Q35_OK whatever the stop reason; an error only when something failed
 * (allocation, a forward pass), with `out` holding what was generated so
 * far (still to be freed). */
int q35_gen_run(const q35_gen_ctx *g, const q35_sampling *s, q35_piece_fn on_piece, void *ud,
                q35_reply *out, q35_err *e);

/* Milliseconds on a monotonic clock. */
double q35_now_ms(void);

#endif
