/* engine.h — the server's scheduler: N slots (one q35_state each), a
 * bounded queue of jobs beyond them, the shared prompt cache, and one
 * thread that runs them all with continuous batching. Each turn of its
 * loop it feeds one prefill chunk (of one slot, round robin), then takes
 * the next id of every decoding slot and feeds them all through one
 * batched forward step (q35_state_decode_batch), so one pass over the
 * weights serves every stream. A job is cancelled (its slot freed) at the
 * next step once its cancel flag is set, e.g. when its client hangs up. */
#ifndef Q35_SERVER_ENGINE_H
#define Q35_SERVER_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

typedef struct srv_job srv_job;

/* One request's work and its way back to the HTTP side. Made with
 * srv_job_new; the submitter fills the inputs, then srv_engine_submit. */
struct srv_job {
    /* inputs (owned by the job) */
    q35_tokens prompt;
    q35_sampling sampling;      /* .stop may point into `stop` */
    char **stop;                /* NULL-terminated, owned (freed with the job) */
    q35_constraint *constraint; /* structured output, owned; sampling.constraint points here */
    int cuts[4];                /* prompt positions worth a snapshot (turn boundaries) */
    int n_cuts;
    /* called on the engine's thread */
    void *ud;
    int (*on_piece)(srv_job *j, q35_piece_kind kind, const char *text, size_t len);
    /* the end: rc 0 and the reply, or rc < 0 and err */
    void (*on_end)(srv_job *j, int rc, const q35_reply *reply, const q35_err *err);
    void (*free_ud)(void *ud); /* called when the job is freed */

    /* the conversation as the client will send it next turn (on_end may
     * fill it): computed and cached by the engine when idle */
    q35_tokens next_prefix;

    /* results, written by the engine before `done` */
    int prompt_tokens, cached_tokens, completion_tokens;
    double t_submit, t_first, t_end; /* ms, q35_now-style monotonic clock */

    /* the bytes for the client (written with srv_job_write) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *out;
    size_t out_n, out_cap;
    int status; /* HTTP status of a non-streamed answer */
    bool done;
    atomic_bool cancel;
    int refs;
};

srv_job *srv_job_new(void);
/* Drops one reference (the submitter's or the engine's); frees at zero. */
void srv_job_release(srv_job *j);
/* Appends bytes for the client and wakes the waiter (any thread). */
int srv_job_write(srv_job *j, const char *s, size_t n);
/* Asks the engine to stop the job (any thread). */
void srv_job_cancel(srv_job *j);

typedef struct srv_engine_opts {
    int parallel;       /* slots */
    int queue;          /* jobs waiting beyond the slots */
    int n_ctx;          /* positions per slot */
    size_t cache_bytes; /* prompt cache bound */
} srv_engine_opts;

typedef struct srv_engine srv_engine;

/* Borrows m and tok (they outlive the engine). Starts its thread. */
srv_engine *srv_engine_new(const q35_model *m, const q35_tokenizer *tok, const srv_engine_opts *o,
                           q35_err *e);
/* Cancels every job, stops the thread, frees. */
void srv_engine_free(srv_engine *g);

/* Queues the job (the engine takes a reference). -1 when the slots and the
 * queue are full (answer 503). */
int srv_engine_submit(srv_engine *g, srv_job *j);
int srv_engine_n_ctx(const srv_engine *g);
/* Refuses new jobs and cancels every queued and running one (any thread);
 * the engine ends them at its next step. */
void srv_engine_shutdown(srv_engine *g);

typedef struct srv_engine_stats {
    int slots, active, queued;
    int64_t jobs_done, jobs_cancelled, jobs_failed;
    int64_t prompt_tokens, cached_tokens, prefilled_tokens, generated_tokens;
    double prefill_s, decode_s;        /* time spent in prefill chunks and decode steps */
    int64_t decode_steps, decode_rows; /* batched steps and the sequences in them */
    int64_t prepared_tokens;           /* computed in idle time for the next turns */
    int64_t cache_hits, cache_misses, cache_evictions;
    int cache_entries;
    size_t cache_bytes;
} srv_engine_stats;

void srv_engine_get_stats(srv_engine *g, srv_engine_stats *out);

#endif
