/* engine.c — slots, queue, prompt cache and the continuous-batching loop
 * (see engine.h). Everything model-side (states, snapshots, the cache, the
 * batch) belongs to the engine's one thread; the HTTP threads only queue
 * jobs, set cancel flags and read the bytes jobs write. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "server/engine.h"
#include "server/prompt_cache.h"

/* Prefill tokens per loop turn: small while others decode (they wait for
 * it), larger when nobody does. */
#define CHUNK_SHARED 64
#define CHUNK_ALONE 256
#define PREP_MAX 4 /* next-turn prefixes waiting for idle time */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ----------------------------------------------------------------- jobs */

srv_job *srv_job_new(void) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancel, false);
    j->refs = 1;
    j->status = 200;
    j->sampling = q35_sampling_default();
    return j;
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    if (j->free_ud) j->free_ud(j->ud);
    q35_tokens_free(&j->prompt);
    q35_tokens_free(&j->next_prefix);
    if (j->stop)
        for (char **p = j->stop; *p; p++)
            free(*p);
    free(j->stop);
    q35_constraint_free(j->constraint);
    free(j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

int srv_job_write(srv_job *j, const char *s, size_t n) {
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    if (j->out_n + n + 1 > j->out_cap) {
        size_t cap = j->out_cap ? j->out_cap : 1024;
        while (cap < j->out_n + n + 1)
            cap *= 2;
        char *p = realloc(j->out, cap);
        if (!p)
            rc = -1;
        else {
            j->out = p;
            j->out_cap = cap;
        }
    }
    if (!rc) {
        memcpy(j->out + j->out_n, s, n);
        j->out_n += n;
        j->out[j->out_n] = 0;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void srv_job_cancel(srv_job *j) {
    atomic_store(&j->cancel, true);
}

/* --------------------------------------------------------------- engine */

typedef enum { SLOT_IDLE, SLOT_PREFILL, SLOT_DECODE } slot_phase;

typedef struct slot {
    srv_job *job;
    q35_state *st;
    slot_phase phase;
    int fed; /* prompt ids in the state; -1 before the prefill starts */
    int cuts[4], n_cuts;
    q35_reply_step *rs;
    float *logits; /* [V] the last fed position's row */
    int32_t next;
    bool pending; /* `next` waits to be fed */
} slot;

struct srv_engine {
    const q35_model *m;
    const q35_tokenizer *tok;
    srv_engine_opts o;
    int V;
    slot *slots;
    q35_batch *batch;
    float *blogits; /* [parallel, V] */
    q35_state **bstates;
    int32_t *bids;
    int *bslot;
    srv_cache cache;

    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, closing;
    srv_job **queue; /* ring of o.queue + parallel */
    int qcap, qhead, qn;
    int n_active;
    q35_tokens prep[PREP_MAX]; /* next-turn prefixes to compute when idle, newest last */
    int n_prep;
    srv_engine_stats st;
    int rr;
};

int srv_engine_n_ctx(const srv_engine *g) {
    return g->o.n_ctx;
}

static int on_piece(void *ud, q35_piece_kind kind, const char *text, size_t len) {
    slot *s = ud;
    if (atomic_load(&s->job->cancel)) return 1;
    return s->job->on_piece ? s->job->on_piece(s->job, kind, text, len) : 0;
}

static void signal_done(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Ends a job that never got a slot, or whose slot failed before a reply. */
static void end_without_reply(srv_engine *g, srv_job *j, int rc, const char *why) {
    q35_err e = {0};
    q35_err_set(&e, rc ? rc : Q35_ECANCELLED, "%s", why);
    q35_reply empty = {0};
    empty.stop = Q35_STOP_CANCELLED;
    j->t_end = now_ms();
    pthread_mutex_lock(&g->mu);
    if (rc)
        g->st.jobs_failed++;
    else
        g->st.jobs_cancelled++;
    pthread_mutex_unlock(&g->mu);
    if (j->on_end) j->on_end(j, rc, &empty, &e);
    signal_done(j);
    srv_job_release(j);
}

/* The reply is over (any reason): report it, cache the final state, free
 * the slot. */
static void finish_slot(srv_engine *g, slot *s, int rc, const q35_err *err) {
    srv_job *j = s->job;
    q35_reply reply = {0};
    q35_err e = err ? *err : (q35_err){0};
    if (s->rs) {
        int frc = q35_reply_step_finish(s->rs, on_piece, s, &reply, rc ? NULL : &e);
        if (!rc) rc = frc;
        int n;
        const int32_t *ctx = q35_reply_step_context(s->rs, &n);
        /* the state after the reply: a client that sends it back verbatim
         * (thinking off, the same ids) continues from here */
        if (!rc && n == q35_state_pos(s->st) && n > 0) {
            q35_snapshot *snap = q35_state_snapshot(s->st, NULL);
            if (snap) srv_cache_put(&g->cache, ctx, n, snap);
        }
    } else {
        reply.stop = Q35_STOP_CANCELLED;
    }
    j->completion_tokens = reply.n_ids;
    j->t_end = now_ms();
    pthread_mutex_lock(&g->mu); /* counted before the client can see the end */
    g->st.generated_tokens += reply.n_ids;
    if (rc)
        g->st.jobs_failed++;
    else if (reply.stop == Q35_STOP_CANCELLED)
        g->st.jobs_cancelled++;
    else
        g->st.jobs_done++;
    pthread_mutex_unlock(&g->mu);
    if (j->on_end) j->on_end(j, rc, &reply, &e);
    if (!rc && j->next_prefix.n > 1) { /* this thread's list: no lock needed */
        if (g->n_prep == PREP_MAX) {
            q35_tokens_free(&g->prep[0]);
            memmove(g->prep, g->prep + 1, (PREP_MAX - 1) * sizeof *g->prep);
            g->n_prep--;
        }
        g->prep[g->n_prep++] = j->next_prefix;
        j->next_prefix = (q35_tokens){0};
    }
    signal_done(j);
    pthread_mutex_lock(&g->mu);
    g->n_active--;
    s->job = NULL; /* under the lock: srv_engine_shutdown reads it */
    s->phase = SLOT_IDLE;
    pthread_mutex_unlock(&g->mu);
    q35_reply_free(&reply);
    q35_reply_step_free(s->rs);
    s->rs = NULL;
    s->pending = false;
    srv_job_release(j);
}

/* One chunk of a slot's prompt (the first restores the best snapshot). */
static void prefill_step(srv_engine *g, slot *s, int chunk) {
    srv_job *j = s->job;
    const int32_t *P = j->prompt.ids;
    int n = (int)j->prompt.n;
    q35_err e = {0};
    if (s->fed < 0) {
        const srv_cache_entry *x = srv_cache_best(&g->cache, P, n, n);
        s->fed = 0;
        if (x && q35_state_restore(s->st, x->snap, NULL) == Q35_OK)
            s->fed = x->n;
        else
            q35_state_clear(s->st);
        j->prompt_tokens = n;
        j->cached_tokens = s->fed;
        s->n_cuts = 0;
        for (int i = 0; i < j->n_cuts && i < 4; i++) {
            int c = j->cuts[i];
            if (c > s->fed && c < n && !srv_cache_has(&g->cache, P, c)) s->cuts[s->n_cuts++] = c;
        }
        for (int a = 1; a < s->n_cuts; a++) /* ascending, distinct */
            for (int b = a; b > 0 && s->cuts[b - 1] > s->cuts[b]; b--) {
                int t = s->cuts[b];
                s->cuts[b] = s->cuts[b - 1];
                s->cuts[b - 1] = t;
            }
        pthread_mutex_lock(&g->mu);
        g->st.prompt_tokens += n;
        g->st.cached_tokens += s->fed;
        pthread_mutex_unlock(&g->mu);
    }
    int k = n - s->fed < chunk ? n - s->fed : chunk;
    bool last = s->fed + k == n;
    int at[4], na = 0;
    for (int i = 0; i < s->n_cuts; i++)
        if (s->cuts[i] > s->fed && s->cuts[i] <= s->fed + k &&
            (na == 0 || at[na - 1] < s->cuts[i] - s->fed))
            at[na++] = s->cuts[i] - s->fed;
    q35_snapshot *snaps[4];
    double t0 = now_ms();
    int rc = q35_state_eval_snapshots(g->m, s->st, P + s->fed, k, last ? s->logits : NULL, false,
                                      at, na, snaps, &e);
    double dt = now_ms() - t0;
    if (rc) {
        finish_slot(g, s, rc, &e);
        return;
    }
    for (int i = 0; i < na; i++)
        srv_cache_put(&g->cache, P, s->fed + at[i], snaps[i]);
    s->fed += k;
    pthread_mutex_lock(&g->mu);
    g->st.prefilled_tokens += k;
    g->st.prefill_s += dt / 1e3;
    pthread_mutex_unlock(&g->mu);
    if (!last) return;
    s->rs = q35_reply_step_new(g->m, g->tok, &j->sampling, P, n, &e);
    if (!s->rs) {
        finish_slot(g, s, e.code ? e.code : Q35_ENOMEM, &e);
        return;
    }
    s->phase = SLOT_DECODE;
}

/* Idle time: the newest next-turn prefix, computed on an idle slot's state
 * from its best cached prefix and cached whole. Gives way (stops between
 * chunks, keeping nothing) as soon as a job waits. */
static void prepare_next(srv_engine *g, slot *s) {
    q35_tokens p = g->prep[--g->n_prep];
    const int32_t *ids = p.ids;
    int n = (int)p.n;
    if (n > q35_state_n_ctx(s->st) || srv_cache_has(&g->cache, ids, n)) goto done;
    const srv_cache_entry *x = srv_cache_best(&g->cache, ids, n, n);
    int fed = 0;
    if (x && q35_state_restore(s->st, x->snap, NULL) == Q35_OK)
        fed = x->n;
    else
        q35_state_clear(s->st);
    while (fed < n) {
        pthread_mutex_lock(&g->mu);
        bool waiting = g->qn > 0 || g->stop || g->closing;
        pthread_mutex_unlock(&g->mu);
        if (waiting) goto done;
        int k = n - fed < CHUNK_ALONE ? n - fed : CHUNK_ALONE;
        double t0 = now_ms();
        if (q35_state_eval(g->m, s->st, ids + fed, k, NULL, false, NULL)) goto done;
        double dt = now_ms() - t0;
        fed += k;
        pthread_mutex_lock(&g->mu);
        g->st.prepared_tokens += k;
        g->st.prefill_s += dt / 1e3;
        pthread_mutex_unlock(&g->mu);
    }
    q35_snapshot *snap = q35_state_snapshot(s->st, NULL);
    if (snap) srv_cache_put(&g->cache, ids, n, snap);
done:
    q35_tokens_free(&p);
}

static int count_active(const srv_engine *g) {
    int n = 0;
    for (int i = 0; i < g->o.parallel; i++)
        n += g->slots[i].phase != SLOT_IDLE;
    return n;
}

static void *engine_main(void *arg) {
    srv_engine *g = arg;
    for (;;) {
        pthread_mutex_lock(&g->mu);
        g->st.cache_hits = g->cache.hits; /* the cache is this thread's: copied for readers */
        g->st.cache_misses = g->cache.misses;
        g->st.cache_evictions = g->cache.evictions;
        g->st.cache_entries = g->cache.n;
        g->st.cache_bytes = g->cache.bytes;
        while (!g->stop && !count_active(g) && !g->qn && !g->n_prep)
            pthread_cond_wait(&g->cv, &g->mu);
        if (g->stop) {
            pthread_mutex_unlock(&g->mu);
            break;
        }
        srv_job *cancelled[64];
        int n_cancelled = 0;
        for (int i = 0; i < g->o.parallel && g->qn; i++) {
            slot *s = &g->slots[i];
            if (s->phase != SLOT_IDLE) continue;
            srv_job *j = g->queue[g->qhead];
            g->qhead = (g->qhead + 1) % g->qcap;
            g->qn--;
            if (atomic_load(&j->cancel) && n_cancelled < 64) {
                cancelled[n_cancelled++] = j;
                i--;
                continue;
            }
            s->job = j;
            s->phase = SLOT_PREFILL;
            s->fed = -1;
            s->pending = false;
            g->n_active++;
        }
        g->st.queued = g->qn;
        pthread_mutex_unlock(&g->mu);
        for (int i = 0; i < n_cancelled; i++)
            end_without_reply(g, cancelled[i], 0, "cancelled while queued");
        if (g->n_prep && !count_active(g)) { /* nothing else to do: next turns */
            pthread_mutex_lock(&g->mu);
            bool idle = !g->qn;
            pthread_mutex_unlock(&g->mu);
            if (idle) {
                prepare_next(g, &g->slots[0]);
                continue;
            }
        }

        /* cancels: a hung-up client frees its slot now */
        for (int i = 0; i < g->o.parallel; i++) {
            slot *s = &g->slots[i];
            if (s->phase == SLOT_IDLE || !atomic_load(&s->job->cancel)) continue;
            if (s->rs) q35_reply_step_cancel(s->rs);
            finish_slot(g, s, 0, NULL);
        }

        /* one prefill chunk, round robin over the slots that need one */
        bool decoding = false;
        for (int i = 0; i < g->o.parallel; i++)
            decoding |= g->slots[i].phase == SLOT_DECODE;
        for (int k = 0; k < g->o.parallel; k++) {
            int i = (g->rr + k) % g->o.parallel;
            if (g->slots[i].phase != SLOT_PREFILL) continue;
            g->rr = i + 1;
            prefill_step(g, &g->slots[i], decoding ? CHUNK_SHARED : CHUNK_ALONE);
            break;
        }

        /* the next id of every decoding slot, then one batched step */
        int nb = 0;
        for (int i = 0; i < g->o.parallel; i++) {
            slot *s = &g->slots[i];
            if (s->phase != SLOT_DECODE || s->pending) continue;
            q35_err e = {0};
            int room = q35_state_n_ctx(s->st) - q35_state_pos(s->st);
            int rc = q35_reply_step_next(s->rs, s->logits, room, on_piece, s, &s->next, &e);
            if (!s->job->t_first) s->job->t_first = now_ms();
            if (rc < 0) {
                finish_slot(g, s, rc, &e);
            } else if (rc == 0) {
                finish_slot(g, s, 0, NULL);
            } else {
                s->pending = true;
            }
        }
        for (int i = 0; i < g->o.parallel; i++) {
            slot *s = &g->slots[i];
            if (s->phase != SLOT_DECODE || !s->pending) continue;
            g->bstates[nb] = s->st;
            g->bids[nb] = s->next;
            g->bslot[nb++] = i;
        }
        if (!nb) continue;
        q35_err e = {0};
        double t0 = now_ms();
        int rc;
        if (nb == 1)
            rc = q35_state_eval(g->m, g->bstates[0], g->bids, 1, g->slots[g->bslot[0]].logits,
                                false, &e);
        else
            rc = q35_state_decode_batch(g->batch, g->bstates, g->bids, nb, g->blogits, &e);
        double dt = now_ms() - t0;
        for (int b = 0; b < nb; b++) {
            slot *s = &g->slots[g->bslot[b]];
            s->pending = false;
            if (rc) {
                finish_slot(g, s, rc, &e);
                continue;
            }
            if (nb > 1)
                memcpy(s->logits, g->blogits + (size_t)b * g->V, (size_t)g->V * sizeof(float));
        }
        pthread_mutex_lock(&g->mu);
        g->st.decode_s += dt / 1e3;
        g->st.decode_steps++;
        g->st.decode_rows += nb;
        pthread_mutex_unlock(&g->mu);
    }
    return NULL;
}

srv_engine *srv_engine_new(const q35_model *m, const q35_tokenizer *tok, const srv_engine_opts *o,
                           q35_err *e) {
    if (!m || !tok || !o || o->parallel < 1 || o->parallel > 128 || o->queue < 0 || o->n_ctx < 16) {
        q35_err_set(e, Q35_EINVAL, "server: bad engine settings (parallel 1..128, ctx >= 16)");
        return NULL;
    }
    srv_engine *g = calloc(1, sizeof *g);
    if (!g) goto oom;
    g->m = m;
    g->tok = tok;
    g->o = *o;
    q35_model_info info;
    q35_model_get_info(m, &info);
    g->V = info.vocab_size;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    srv_cache_init(&g->cache, o->cache_bytes);
    g->qcap = o->queue + o->parallel;
    g->queue = calloc((size_t)g->qcap, sizeof *g->queue);
    g->slots = calloc((size_t)o->parallel, sizeof *g->slots);
    g->bstates = calloc((size_t)o->parallel, sizeof *g->bstates);
    g->bids = calloc((size_t)o->parallel, sizeof *g->bids);
    g->bslot = calloc((size_t)o->parallel, sizeof *g->bslot);
    if (!g->queue || !g->slots || !g->bstates || !g->bids || !g->bslot) goto oom;
    if (o->parallel > 1) {
        g->blogits = malloc((size_t)o->parallel * g->V * sizeof(float));
        if (!g->blogits) goto oom;
        g->batch = q35_batch_new(m, o->parallel, e);
        if (!g->batch) goto fail;
    }
    for (int i = 0; i < o->parallel; i++) {
        slot *s = &g->slots[i];
        s->st = q35_state_new(m, o->n_ctx, e);
        if (!s->st) goto fail;
        s->logits = malloc((size_t)g->V * sizeof(float));
        if (!s->logits) goto oom;
    }
    g->st.slots = o->parallel;
    if (pthread_create(&g->th, NULL, engine_main, g)) {
        q35_err_set(e, Q35_ENOMEM, "server: cannot start the engine thread");
        goto fail;
    }
    g->started = true;
    return g;
oom:
    q35_err_set(e, Q35_ENOMEM, "server: out of memory for %d slots of %d positions", o->parallel,
                o->n_ctx);
fail:
    srv_engine_free(g);
    return NULL;
}

void srv_engine_free(srv_engine *g) {
    if (!g) return;
    if (g->started) {
        pthread_mutex_lock(&g->mu);
        g->stop = true;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->th, NULL);
    }
    for (int i = 0; g->slots && i < g->o.parallel; i++) {
        slot *s = &g->slots[i];
        if (s->job) {
            if (s->rs) q35_reply_step_cancel(s->rs);
            finish_slot(g, s, 0, NULL);
        }
        q35_state_free(s->st);
        free(s->logits);
    }
    while (g->queue && g->qn) {
        srv_job *j = g->queue[g->qhead];
        g->qhead = (g->qhead + 1) % g->qcap;
        g->qn--;
        end_without_reply(g, j, 0, "the server is shutting down");
    }
    for (int i = 0; i < g->n_prep; i++)
        q35_tokens_free(&g->prep[i]);
    srv_cache_free(&g->cache);
    q35_batch_free(g->batch);
    free(g->blogits);
    free(g->bstates);
    free(g->bids);
    free(g->bslot);
    free(g->slots);
    free(g->queue);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

int srv_engine_submit(srv_engine *g, srv_job *j) {
    pthread_mutex_lock(&g->mu);
    int rc = -1;
    if (!g->stop && !g->closing && g->n_active + g->qn < g->o.parallel + g->o.queue &&
        g->qn < g->qcap) {
        pthread_mutex_lock(&j->mu);
        j->refs++;
        pthread_mutex_unlock(&j->mu);
        j->t_submit = j->t_submit ? j->t_submit : now_ms();
        g->queue[(g->qhead + g->qn) % g->qcap] = j;
        g->qn++;
        g->st.queued = g->qn;
        pthread_cond_broadcast(&g->cv);
        rc = 0;
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void srv_engine_shutdown(srv_engine *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->closing = true;
    for (int i = 0; i < g->qn; i++)
        srv_job_cancel(g->queue[(g->qhead + i) % g->qcap]);
    for (int i = 0; i < g->o.parallel; i++)
        if (g->slots[i].job) srv_job_cancel(g->slots[i].job);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void srv_engine_get_stats(srv_engine *g, srv_engine_stats *out) {
    pthread_mutex_lock(&g->mu);
    *out = g->st;
    out->active = g->n_active;
    out->queued = g->qn;
    pthread_mutex_unlock(&g->mu);
}
