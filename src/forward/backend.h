/* backend.h — a state that evaluates tokens somewhere other than the CPU.
 *
 * A q35_state made for a model whose device is not the CPU (q35_load_opts
 * .device, or Q35_DEVICE=cuda in the environment) carries a backend and the
 * backend's own state; state.c hands eval, clear, snapshot and restore to
 * it and keeps only the bookkeeping (position, n_ctx, the checks). The
 * backend owns everything it allocates: its state, its snapshots and the
 * model's device copy of the weights (model->device_ctx, freed through
 * model->device_free with the weights). */
#ifndef Q35_FORWARD_BACKEND_H
#define Q35_FORWARD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "q35.h"

/* What a sampling decode step samples with (q35_sampling's settings, SPEC
 * §6, and the draw). */
typedef struct q35_backend_sampling {
    float temperature, top_p, penalty;
    int top_k, n_valid;
    const int32_t *recent; /* the last repetition_window context ids */
    int n_recent;
    double u; /* the uniform draw in [0, 1) */
} q35_backend_sampling;

typedef struct q35_backend {
    const char *name;
    /* The backend's part of a state of n_ctx positions, at position 0;
     * *bytes: device memory it holds. NULL and `e` filled on failure.
     * Freed with state_free. */
    void *(*state_new)(const q35_model *m, int n_ctx, size_t *bytes, q35_err *e);
    void (*state_free)(void *bs);
    void (*clear)(void *bs);
    /* Feeds n validated tokens at position pos (pos + n <= n_ctx); logits
     * as q35_state_eval (may be NULL). */
    int (*eval)(void *bs, int pos, const int32_t *ids, int n, float *logits, bool all_logits,
                q35_err *e);
    /* A copy of the state at position pos (device memory, *bytes of it);
     * freed with snapshot_free. */
    void *(*snapshot)(void *bs, int pos, size_t *bytes, q35_err *e);
    /* Puts a snapshot taken at `pos` back. */
    int (*restore)(void *bs, const void *snap, int pos, q35_err *e);
    void (*snapshot_free)(void *snap);
    /* q35_state_decode_greedy at position pos (validated). */
    int (*decode_greedy)(void *bs, int pos, int32_t id, int n_vocab, int32_t *next, q35_err *e);
    /* q35_state_decode_sample at position pos (validated): *next = -1 when
     * the host must sample, from the row then in logits (vocab_size). */
    int (*decode_sample)(void *bs, int pos, int32_t id, const q35_backend_sampling *smp,
                         int32_t *next, float *logits, q35_err *e);
    /* q35_states_decode_greedy over n distinct states of this backend and
     * one model (validated), bs[i] at pos[i]; NULL where the backend has no
     * batched step. */
    int (*decode_batch)(void **bs, const int *pos, const int32_t *ids, int n, int n_vocab,
                        int32_t *next, q35_err *e);
} q35_backend;

/* The backend for `device`, NULL for the CPU; fills `e` and returns NULL
 * with *missing set when this build or machine lacks it. */
const q35_backend *q35_backend_for(q35_device device, bool *missing, q35_err *e);

/* The device a new state of `m` evaluates on: the model's, unless the
 * environment says Q35_DEVICE=cuda (or cpu). */
q35_device q35_backend_device(const q35_model *m);

#endif
