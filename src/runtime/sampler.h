/* sampler.h — turning one row of logits into one token id, in the order of
 * SPEC §6 (documented on q35_sampling in q35.h). A sampler belongs to one
 * reply: it owns the PRNG, seeded when the reply starts, and scratch sized
 * for the vocabulary, so sampling allocates nothing per token. */
#ifndef Q35_RUNTIME_SAMPLER_H
#define Q35_RUNTIME_SAMPLER_H

#include <stdint.h>

#include "q35.h"
#include "runtime/rng.h"

typedef struct q35_sampler {
    q35_sampling s;
    q35_rng rng;
    int n_logits;    /* length of a logits row (model vocabulary, padding included) */
    int n_valid;     /* ids below this may be drawn (the tokenizer's size) */
    int32_t *cand;   /* [n_valid] candidate ids */
    double *prob;    /* [n_valid] their weights */
    int32_t *window; /* [repetition_window] sorted copy of the recent ids */
    /* Structured output: when set (by the reply's loop, per step), ids the
     * matcher rules out are masked after the repetition penalty, before
     * temperature; if the mask fails, q35_sampler_sample returns -1 with
     * the reason in mask_err. */
    q35_matcher *matcher;
    q35_err mask_err;
} q35_sampler;

/* Checks the settings (finite, in range) and allocates. Free with
 * q35_sampler_free (also after a failed init). */
int q35_sampler_init(q35_sampler *sp, const q35_sampling *s, int n_logits, int n_valid, q35_err *e);
void q35_sampler_free(q35_sampler *sp);

/* Validates sampling settings alone (no allocation). */
int q35_sampling_check(const q35_sampling *s, q35_err *e);

/* Applies the repetition penalty to `logits` in place, over the distinct ids
 * among the last `n_recent` of `recent` (the caller passes the window). */
void q35_sampler_penalize(q35_sampler *sp, float *logits, const int32_t *recent, int n_recent);

/* The id chosen from `logits` (modified in place: penalty applied) given the
 * context tail `recent` (the last n_recent context ids, at most the window
 * is used). Returns -1 when no id has a finite logit. */
int32_t q35_sampler_sample(q35_sampler *sp, float *logits, const int32_t *recent, int n_recent);

#endif
