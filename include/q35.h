/*
 * q35.h — the public API of libq35, an on-device chat engine for the
 * Qwen3.5 hybrid models (Gated DeltaNet + gated attention).
 *
 * Conventions that hold for every function below:
 *  - Errors are values. A function that can fail takes a `q35_err *` (may be
 *    NULL) and returns NULL / a negative q35_status; the q35_err then holds a
 *    code and a message naming the file, tensor, field or offset at fault.
 *    The library never exits or aborts on bad input.
 *  - Ownership is stated per function. "Caller frees with X" means exactly
 *    that; anything else stays owned by the library object it came from.
 *  - Threads: a q35_model is read-only after load and may be shared by any
 *    number of threads, each with its own q35_state / q35_chat. A q35_state,
 *    q35_chat or q35_tokenizer stream decoder is used by one thread at a
 *    time, except where a function says "any thread".
 */
#ifndef Q35_H
#define Q35_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

typedef enum q35_status {
    Q35_OK = 0,
    Q35_EINVAL = -1,    /* bad argument from the caller */
    Q35_EIO = -2,       /* a file could not be opened, read or mapped */
    Q35_EFORMAT = -3,   /* a file's content is malformed or inconsistent */
    Q35_ENOMEM = -4,    /* an allocation failed or would be unreasonable */
    Q35_ENOTFOUND = -5, /* a file, tensor, repo or revision does not exist */
    Q35_ENET = -6,      /* network failure */
    Q35_EAUTH = -7,     /* the hub refused access (401/403) */
    Q35_ECANCELLED = -8,
    Q35_EOVERFLOW = -9, /* a context or buffer limit was reached */
    Q35_ESTATE = -10,   /* the object is not in a state to do this */
} q35_status;

typedef struct q35_err {
    q35_status code;
    char msg[1024];
} q35_err;

/* A static string naming a status ("format error", ...). */
const char *q35_status_name(q35_status s);

/* ------------------------------------------------------------------ models */

typedef struct q35_model q35_model;

typedef struct q35_load_opts {
    int n_threads; /* compute threads for this model; 0 = all cores */
} q35_load_opts;

/* Loads a model from a local checkpoint directory (config.json +
 * safetensors, single or sharded). Weight files are mmapped, not copied.
 * Returns NULL and fills `e` on failure. Caller frees with q35_model_free.
 * `opts` may be NULL (defaults). */
q35_model *q35_model_load(const char *path, const q35_load_opts *opts, q35_err *e);

/* Frees everything the model holds. NULL is a no-op. No q35_state made from
 * the model may be used afterwards. */
void q35_model_free(q35_model *m);

/* Memory management (voice apps free the LLM around TTS):
 * - q35_model_is_loaded: false after q35_model_unload, true after load/reload.
 * - q35_model_memory_footprint: bytes the model holds now (mapped weight
 *   files + heap buffers); 0 once unloaded. States (KV caches) are owned and
 *   counted by their q35_state / q35_chat.
 * - q35_model_unload: releases weights and buffers but keeps the handle
 *   (path, options). No q35_state of the model may run until reload.
 * - q35_model_reload: loads the same path again into the same handle; a
 *   no-op returning Q35_OK when already loaded.
 * None of these may run concurrently with a forward pass on the model. */
bool q35_model_is_loaded(const q35_model *m);
size_t q35_model_memory_footprint(const q35_model *m);
void q35_model_unload(q35_model *m);
int q35_model_reload(q35_model *m, q35_err *e);

/* Static facts about a loaded model, for callers that drive the low-level
 * API. Pointers inside stay owned by the model. */
typedef struct q35_model_info {
    int vocab_size;  /* rows of the output head (logits per position) */
    int hidden_size;
    int n_layers;
    int n_full_attn_layers;
    int n_threads;
    size_t weight_bytes; /* bytes of weights as held in memory */
    const char *path;
    const char *format;  /* "safetensors", ... */
    const char *dtype;   /* dominant weight type: "bf16", "f32", ... */
} q35_model_info;

void q35_model_get_info(const q35_model *m, q35_model_info *out);

/* ------------------------------------------- low-level: tokens in, logits out
 *
 * A q35_state is one sequence: conv windows and recurrent states of every
 * DeltaNet layer, the KV cache of every attention layer, and the position.
 */
typedef struct q35_state q35_state;

/* A state able to hold `n_ctx` positions. Caller frees with q35_state_free. */
q35_state *q35_state_new(const q35_model *m, int n_ctx, q35_err *e);
void q35_state_free(q35_state *s);

/* Number of tokens the state has consumed (its next position). */
int q35_state_pos(const q35_state *s);
int q35_state_n_ctx(const q35_state *s);

/* Empties the state (position 0). */
void q35_state_clear(q35_state *s);

/* Feeds `n` tokens at the state's position and advances it. n > 1 uses the
 * prefill path, n == 1 the single-token decode path. `logits` receives
 * float32 rows of vocab_size: every position's row when `all_logits`, else
 * only the last position's; it may be NULL. Fails (state unchanged) with
 * Q35_EINVAL on an id outside the vocabulary and Q35_EOVERFLOW when the
 * tokens do not fit in n_ctx. */
int q35_state_eval(const q35_model *m, q35_state *s, const int32_t *ids, int n,
                   float *logits, bool all_logits, q35_err *e);

/* A copy of the whole state (cheap: DeltaNet states are fixed-size, the KV
 * cache is copied only up to the position). Caller frees with
 * q35_snapshot_free. */
typedef struct q35_snapshot q35_snapshot;
q35_snapshot *q35_state_snapshot(const q35_state *s, q35_err *e);
/* Puts `s` back exactly as it was when `snap` was taken. The snapshot stays
 * valid and may be restored again. Fails if snap came from another model or
 * a state of a different n_ctx smaller than the snapshot's position. */
int q35_state_restore(q35_state *s, const q35_snapshot *snap, q35_err *e);
int q35_snapshot_pos(const q35_snapshot *snap);
size_t q35_snapshot_bytes(const q35_snapshot *snap);
void q35_snapshot_free(q35_snapshot *snap);

#ifdef __cplusplus
}
#endif
#endif /* Q35_H */
