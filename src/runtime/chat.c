/* chat.c — q35_chat, the conversation object of the public API: history,
 * prompt cache, overflow policy, cancel, counters (contract in q35.h).
 *
 * A turn: render the whole conversation to ids P; make room by the overflow
 * policy; bring the state to the longest cached prefix of P (the state
 * itself if it holds one, else the best snapshot, else empty); feed the
 * rest of P; run the token loop (generate.c). Snapshots are taken at cuts
 * on <|im_start|> ids, where the safe prompt encoding starts a new piece,
 * so every render of a longer conversation has exactly the same ids up to
 * them:
 *   - the end of the system prompt's block (pinned: kept for the chat's
 *     life, also across reset);
 *   - the start of the user message (a regenerate or an edit of the turn
 *     starts from here);
 *   - its end, where the generation prompt starts (the next turn starts
 *     from here: after it, the next render differs, since the answer is
 *     re-rendered without its think block).
 * The snapshots are taken inside the prefill's single pass
 * (q35_state_eval_snapshots): splitting the prefill instead would stream
 * every weight once more per cut. q35_chat_prepare goes one step further in
 * idle time: it computes "the conversation so far" (the answer re-rendered
 * into the history) and snapshots it, so that a prepared turn feeds only
 * its new message and the generation prompt.
 *
 * Voice (q35.h "voice"): q35_chat_listen hands partial transcripts to a
 * listener thread of the chat, which prefills the conversation so far and
 * the settled words of the partial (all but the last) on the state's own
 * compute threads, snapshotting each settled prefix (the `partial` cache).
 * The final turn then finds the longest of them like any cached prefix.
 * Every other call first stops the listener at its next chunk and waits
 * for it (fg_enter), so the state has one user at a time.
 *
 * The listener also speculates: after the settled words it feeds the whole
 * last partial as if it were the final transcript — its <|im_end|>, the
 * generation prompt — and keeps the logits of that prompt's last position
 * (`spec`). When the final transcript renders to exactly those ids and the
 * state still holds them, the turn samples its first id from those logits
 * at once: nothing is left to compute. Any other final (different words, a
 * history changed by a barge-in, other sampling settings) takes the exact
 * path. Either way the ids compared are the whole rendered prompt, so the
 * reply is the from-scratch one. The speculative feed also snapshots the
 * end of the partial's text (into `partial`: a final that only adds words
 * starts there) and the start of the generation prompt (the cut where the
 * next turn starts, handed to the prompt cache on a hit). A barge-in
 * (any thread) during a reply is recorded and applied to the turn when the
 * reply ends; after it, it replaces the last answer at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "forward/forward.h"
#include "model/model.h"
#include "runtime/conversation.h"
#include "runtime/eos_ids.h"
#include "runtime/generate.h"
#include "runtime/id_list.h"
#include "runtime/sampler.h"
#include "runtime/snapshot_cache.h"

#define DEFAULT_N_CTX 4096
#define DEFAULT_SNAPSHOTS 3
/* Tokens per evaluation of a long prompt: cancel is checked between them.
 * The forward pass's own chunk, so it adds no weight pass. */
#define PREFILL_CHUNK Q35_MAX_BATCH
#define MAX_THINK_END 16
/* Positions past the state's the spare snapshot block is sized for
 * (q35_state_keep_spare): a next turn's cuts within that many tokens
 * write backed pages. ~12 KB a position for the 0.8B's KV rows. */
#define SPARE_POSITIONS 512
/* The listener's evaluations are smaller than a turn's, so that a final
 * transcript waits at most this many tokens' time for it to stop. */
#define LISTEN_CHUNK 32
/* Prefix snapshots kept for partial transcripts: the latest partial's
 * settled words and its whole text, and one before them for an ASR that
 * revises its last words. */
#define PARTIAL_SNAPSHOTS 3

/* What q35_chat_barge_in* asked for, applied when the reply ends. */
typedef enum cut_mode { CUT_NONE = 0, CUT_TEXT, CUT_BYTES } cut_mode;

struct q35_chat {
    const q35_model *model;
    const q35_tokenizer *tok;
    q35_tokenizer *owned_tok;
    q35_conversation conv;
    q35_chat_settings set;

    q35_state *state;   /* NULL until needed, and after drop_cache */
    unsigned state_gen; /* model->generation the state and snapshots belong to */
    q35_tokens ctx;     /* the ids the state holds */
    q35_snap_cache cache;
    float *logits; /* [n_logits] */
    int n_logits, n_valid;

    q35_eos_ids eos;
    int32_t think_end[MAX_THINK_END];
    int n_think_end;

    atomic_bool cancel;
    q35_chat_stats st;

    /* mu guards the fields below, and the history against a barge-in or
     * the listener while no foreground call runs */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool sync_ok; /* mu and cv initialized */
    pthread_t listener;
    bool listener_started, listener_quit;
    char *pending; /* the newest partial transcript not yet taken (owned) */
    bool fg_busy;  /* a foreground call holds the state */
    bool bg_busy;  /* the listener holds the state */
    atomic_bool bg_stop;
    q35_snap_cache partial; /* settled prefixes of partial transcripts */
    bool generating;        /* inside q35_chat_generate */
    cut_mode cut;
    char *cut_text;
    size_t cut_len;

    /* the speculation (listener): the last partial's whole prompt, fed */
    q35_tokens spec_ids;     /* the prompt; n = 0: none */
    float *spec_logits;      /* [n_logits]: its last position's */
    q35_snapshot *spec_snap; /* at spec_cut (its generation prompt's start) */
    int spec_cut;
    /* the settings the final turn is expected to use (q35_chat_listen_expect) */
    bool expect_on, expect_set, expect_thinking;
    int expect_budget, expect_max_tokens;
};

/* Forgets the speculation (the state may hold it still: harmless). */
static void spec_clear(q35_chat *c) {
    q35_snapshot_free(c->spec_snap);
    c->spec_snap = NULL;
    c->spec_ids.n = 0;
}

static void expect_from(q35_chat *c, const q35_sampling *s) {
    c->expect_thinking = s->thinking;
    c->expect_budget = s->thinking_budget;
    c->expect_max_tokens = s->max_tokens;
}

/* ---------------------------------------------------- foreground calls */

/* A foreground call takes the state: the listener stops at its next chunk
 * and waits until fg_leave. */
static void fg_enter(q35_chat *c) {
    if (!c->sync_ok) return;
    pthread_mutex_lock(&c->mu);
    c->fg_busy = true;
    atomic_store(&c->bg_stop, true);
    while (c->bg_busy)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void apply_cut(q35_chat *c);

static void fg_leave(q35_chat *c) {
    if (!c->sync_ok) return;
    pthread_mutex_lock(&c->mu);
    if (!c->generating) apply_cut(c); /* a barge-in that came during this call */
    c->fg_busy = false;
    atomic_store(&c->bg_stop, false);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ creation */

static q35_tokenizer *load_model_tokenizer(const q35_model *m, q35_err *e) {
    q35_model_info info;
    q35_model_get_info(m, &info);
    if (!info.path) {
        q35_err_set(e, Q35_EINVAL, "chat: the model has no path to load a tokenizer from");
        return NULL;
    }
    q35_tokenizer *t = q35_tokenizer_load(info.path, e);
    if (!t) {
        /* a model given as a file (.gguf): its tokenizer.json sits beside it */
        const char *slash = strrchr(info.path, '/');
        char dir[4096];
        int n = slash ? (int)(slash - info.path) : 1;
        snprintf(dir, sizeof dir, "%.*s", n, slash ? info.path : ".");
        q35_err e2;
        t = q35_tokenizer_load(dir, &e2);
        if (t) q35_err_clear(e);
    }
    if (!t) q35_err_prefix(e, "chat: loading the model's tokenizer");
    return t;
}

q35_chat *q35_chat_new(const q35_model *m, const q35_tokenizer *tok, const char *system_prompt,
                       const q35_chat_settings *settings, q35_err *e) {
    if (!m) {
        q35_err_set(e, Q35_EINVAL, "q35_chat_new: NULL model");
        return NULL;
    }
    if (!q35_model_is_loaded(m)) {
        q35_err_set(e, Q35_ESTATE, "q35_chat_new: the model is unloaded");
        return NULL;
    }
    q35_chat *c = calloc(1, sizeof *c);
    if (!c) {
        q35_err_set(e, Q35_ENOMEM, "q35_chat_new: out of memory");
        return NULL;
    }
    atomic_init(&c->cancel, false);
    atomic_init(&c->bg_stop, false);
    c->model = m;
    if (pthread_mutex_init(&c->mu, NULL)) {
        free(c);
        q35_err_set(e, Q35_ENOMEM, "q35_chat_new: cannot make a mutex");
        return NULL;
    }
    if (pthread_cond_init(&c->cv, NULL)) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        q35_err_set(e, Q35_ENOMEM, "q35_chat_new: cannot make a condition variable");
        return NULL;
    }
    c->sync_ok = true;
    q35_snap_cache_init(&c->partial, PARTIAL_SNAPSHOTS);
    q35_sampling def = q35_sampling_default();
    expect_from(c, &def);
    c->expect_on = true;
    if (settings) c->set = *settings;
    if (c->set.n_ctx < 0) {
        q35_err_set(e, Q35_EINVAL, "q35_chat_new: n_ctx %d must be >= 0", c->set.n_ctx);
        goto fail;
    }
    if (!c->set.n_ctx) {
        c->set.n_ctx = DEFAULT_N_CTX;
        if (m->cfg.max_position > 0 && m->cfg.max_position < c->set.n_ctx)
            c->set.n_ctx = m->cfg.max_position;
    }
    if (c->set.max_snapshots == 0) c->set.max_snapshots = DEFAULT_SNAPSHOTS;
    if (c->set.overflow != Q35_OVERFLOW_DROP_OLDEST && c->set.overflow != Q35_OVERFLOW_ERROR) {
        q35_err_set(e, Q35_EINVAL, "q35_chat_new: unknown overflow policy %d",
                    (int)c->set.overflow);
        goto fail;
    }
    q35_snap_cache_init(&c->cache, c->set.max_snapshots);
    if (q35_conv_init(&c->conv, system_prompt, e)) goto fail;
    if (tok) {
        c->tok = tok;
    } else {
        c->owned_tok = load_model_tokenizer(m, e);
        if (!c->owned_tok) goto fail;
        c->tok = c->owned_tok;
    }

    q35_model_info info;
    q35_model_get_info(m, &info);
    c->n_logits = info.vocab_size;
    size_t nv = q35_tokenizer_n_vocab(c->tok);
    c->n_valid = nv < (size_t)c->n_logits ? (int)nv : c->n_logits;
    c->logits = malloc((size_t)c->n_logits * sizeof *c->logits);
    if (!c->logits) {
        q35_err_set(e, Q35_ENOMEM, "q35_chat_new: out of memory for logits");
        goto fail;
    }
    q35_eos_ids_collect(&c->eos, m, c->tok, c->n_logits);

    static const char think_end[] = "\n</think>\n\n";
    int32_t *ids = NULL;
    size_t n = 0;
    if (q35_tokenize(c->tok, think_end, sizeof think_end - 1, Q35_ADDED_MATCH, &ids, &n, e))
        goto fail;
    if (n > MAX_THINK_END) n = 0; /* not a Qwen-style vocabulary: no forcing */
    if (n) memcpy(c->think_end, ids, n * sizeof *ids);
    c->n_think_end = (int)n;
    free(ids);
    c->st.n_ctx = c->set.n_ctx;
    return c;
fail:
    q35_chat_free(c);
    return NULL;
}

static void drop_cache(q35_chat *c) {
    q35_state_free(c->state);
    c->state = NULL;
    c->ctx.n = 0;
    q35_snap_cache_clear(&c->cache, false);
    q35_snap_cache_clear(&c->partial, false);
    spec_clear(c);
}

void q35_chat_drop_cache(q35_chat *c) {
    if (!c) return;
    fg_enter(c);
    drop_cache(c);
    fg_leave(c);
}

void q35_chat_free(q35_chat *c) {
    if (!c) return;
    if (c->sync_ok) {
        pthread_mutex_lock(&c->mu);
        c->listener_quit = true;
        atomic_store(&c->bg_stop, true);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        if (c->listener_started) pthread_join(c->listener, NULL);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
    }
    free(c->pending);
    free(c->cut_text);
    drop_cache(c);
    q35_snap_cache_free(&c->cache);
    q35_snap_cache_free(&c->partial);
    q35_tokens_free(&c->ctx);
    q35_tokens_free(&c->spec_ids);
    free(c->spec_logits);
    q35_conv_free(&c->conv);
    q35_tokenizer_free(c->owned_tok);
    free(c->logits);
    free(c);
}

const q35_tokenizer *q35_chat_tokenizer(const q35_chat *c) {
    return c->tok;
}

/* -------------------------------------------------------------- state */

/* A state for the model as loaded now: a reload invalidates the state and
 * every snapshot (their weights-derived content is that of the old load). */
static int ensure_state(q35_chat *c, q35_err *e) {
    if (!q35_model_is_loaded(c->model))
        return q35_err_set(e, Q35_ESTATE, "chat: the model is unloaded (q35_model_reload it)");
    if (c->state && c->state_gen != c->model->generation) drop_cache(c);
    if (!c->state) {
        c->state = q35_state_new(c->model, c->set.n_ctx, e);
        if (!c->state) return e ? e->code : Q35_ENOMEM;
        c->state_gen = c->model->generation;
        c->ctx.n = 0;
    }
    return Q35_OK;
}

static bool ids_prefix(const q35_tokens *a, const int32_t *ids, int n) {
    return (int)a->n <= n && (!a->n || !memcmp(a->ids, ids, a->n * sizeof *ids));
}

/* Brings the state to the longest cached prefix of ids[0..n) shorter than
 * max_len; returns its length (the reused tokens) or a negative error. */
static int restore_best(q35_chat *c, const int32_t *ids, int n, int max_len, q35_err *e) {
    if (c->set.max_snapshots < 0) { /* no caching: every turn starts empty */
        q35_state_clear(c->state);
        c->ctx.n = 0;
        return 0;
    }
    int have = ((int)c->ctx.n < max_len && ids_prefix(&c->ctx, ids, n)) ? (int)c->ctx.n : -1;
    const q35_snap_cache *from = &c->cache;
    int best = q35_snap_cache_best(&c->cache, ids, n, max_len);
    int best_partial = q35_snap_cache_best(&c->partial, ids, n, max_len);
    if (best_partial >= 0 &&
        (best < 0 || c->partial.items[best_partial].n > c->cache.items[best].n)) {
        from = &c->partial;
        best = best_partial;
    }
    if (best >= 0 && from->items[best].n > have) {
        const q35_snap_entry *x = &from->items[best];
        int rc = q35_state_restore(c->state, x->snap, e);
        if (rc) return rc;
        if (q35_ids_assign(&c->ctx, x->ids, (size_t)x->n))
            return q35_err_set(e, Q35_ENOMEM, "chat: out of memory");
        return x->n;
    }
    if (have >= 0) return have;
    q35_state_clear(c->state);
    c->ctx.n = 0;
    return 0;
}

/* Feeds ids[from..to) (from == the state's position) in chunks of
 * PREFILL_CHUNK, checking cancel between them; snapshots the state after
 * each of the cuts (ascending, inside (from, to]) within the same pass and
 * caches them (pinned[i] for the system prompt's). With want_logits the
 * last position's logits land in c->logits. */
static int feed_range(q35_chat *c, const int32_t *ids, int from, int to, const int *cuts,
                      const bool *pinned, int n_cuts, bool want_logits, atomic_bool *stop,
                      int chunk, bool *cancelled, q35_err *e) {
    int next_cut = 0;
    while (from < to) {
        if (atomic_load(stop)) {
            *cancelled = true;
            return Q35_OK;
        }
        int n = to - from < chunk ? to - from : chunk;
        bool last = from + n == to;
        int at[8], k = 0;
        bool pin[8];
        q35_snapshot *snaps[8];
        while (next_cut < n_cuts && cuts[next_cut] <= from + n && k < 8) {
            pin[k] = pinned[next_cut];
            at[k++] = cuts[next_cut++] - from;
        }
        int rc = q35_state_eval_snapshots(c->model, c->state, ids + from, n,
                                          last && want_logits ? c->logits : NULL, false, at, k,
                                          snaps, e);
        if (rc) return rc;
        if (q35_ids_append(&c->ctx, ids + from, (size_t)n)) { /* keep state and ids in step */
            q35_state_clear(c->state);
            c->ctx.n = 0;
            rc = q35_err_set(e, Q35_ENOMEM, "chat: out of memory");
        }
        for (int i = 0; i < k; i++) { /* the cache takes each snapshot (or frees it) */
            if (rc)
                q35_snapshot_free(snaps[i]);
            else
                rc = q35_snap_cache_put(&c->cache, ids, from + at[i], snaps[i], pin[i], e);
        }
        if (rc) return rc;
        c->st.prefilled_tokens += n;
        from += n;
    }
    return Q35_OK;
}

/* Feeds ids[0..n) into the state from the best cached prefix, snapshotting
 * at the cut points not cached yet (cut[i] < n; pinned[i] marks the system
 * prompt's) within the same pass. Returns the reused length in *reused. */
static int prefill(q35_chat *c, const int32_t *ids, int n, const int *cuts, const bool *pinned,
                   int n_cuts, bool want_logits, atomic_bool *stop, int chunk, int *reused,
                   bool *cancelled, q35_err *e) {
    int from = restore_best(c, ids, n, want_logits ? n : n + 1, e);
    if (from < 0) return from;
    *reused = from;
    c->st.reused_tokens += from;
    /* the cuts still to take, ascending, each once */
    int order[8], k = 0;
    bool pin[8];
    for (int i = 0; i < n_cuts && k < 8; i++) {
        if (cuts[i] <= from || cuts[i] >= n || q35_snap_cache_has(&c->cache, ids, cuts[i]))
            continue;
        order[k] = cuts[i];
        pin[k++] = pinned[i];
    }
    for (int i = 1; i < k; i++) /* insertion sort of a handful */
        for (int j = i; j > 0 && order[j - 1] > order[j]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
            bool b = pin[j];
            pin[j] = pin[j - 1];
            pin[j - 1] = b;
        }
    int m = 0;
    for (int i = 0; i < k; i++) {
        if (m && order[m - 1] == order[i]) {
            pin[m - 1] |= pin[i];
            continue;
        }
        order[m] = order[i];
        pin[m++] = pin[i];
    }
    k = m;
    return feed_range(c, ids, from, n, order, pin, k, want_logits, stop, chunk, cancelled, e);
}

/* Index of the k-th <|im_start|> in p (0-based), or with from_end of the
 * k-th counted from the end (0 = the last); -1 when there is none. */
static int block_start(const q35_chat *c, const q35_tokens *p, int k, bool from_end) {
    int32_t im_start = q35_token_id(c->tok, "<|im_start|>");
    if (im_start < 0) return -1;
    int seen = 0;
    for (size_t j = 0; j < p->n; j++) {
        size_t i = from_end ? p->n - 1 - j : j;
        if (p->ids[i] == im_start && seen++ == k) return (int)i;
    }
    return -1;
}

/* Where the system prompt's block ends in a render (0: no system prompt). */
static int system_end(const q35_chat *c, const q35_tokens *p) {
    if (!c->conv.system) return 0;
    int i = block_start(c, p, 1, false);
    return i > 0 ? i : 0;
}

static int chat_prepare(q35_chat *c, q35_err *e);

int q35_chat_prepare(q35_chat *c, q35_err *e) {
    if (!c) return q35_err_set(e, Q35_EINVAL, "q35_chat_prepare: NULL chat");
    fg_enter(c);
    int rc = chat_prepare(c, e);
    fg_leave(c);
    return rc;
}

static int chat_prepare(q35_chat *c, q35_err *e) {
    int rc = ensure_state(c, e);
    if (rc || c->set.max_snapshots < 0 || (!c->conv.system && !c->conv.n_turns)) return rc;
    atomic_store(&c->cancel, false);
    /* the conversation so far: everything before the next user message */
    q35_tokens p = {0};
    rc = q35_conv_render(&c->conv, c->tok, 0, "", false, true, &p, e);
    int cut = rc ? -1 : block_start(c, &p, 0, true);
    bool ready = cut <= 0 || cut >= c->set.n_ctx || /* the next turn drops turns anyway */
                 ((int)c->ctx.n == cut && ids_prefix(&c->ctx, p.ids, cut)) ||
                 q35_snap_cache_has(&c->cache, p.ids, cut);
    if (!rc && !ready) {
        int sys_end = system_end(c, &p), reused;
        bool pin = true, cancelled = false;
        rc = prefill(c, p.ids, cut, &sys_end, &pin, sys_end > 0 ? 1 : 0, false, &c->cancel,
                     PREFILL_CHUNK, &reused, &cancelled, e);
        if (!rc && cancelled) rc = q35_err_set(e, Q35_ECANCELLED, "q35_chat_prepare: cancelled");
        if (!rc) {
            q35_snapshot *snap = q35_state_snapshot(c->state, e);
            rc = snap ? q35_snap_cache_put(&c->cache, p.ids, cut, snap, cut == sys_end, e)
                      : (e ? e->code : Q35_ENOMEM);
        }
    }
    if (!rc) q35_state_keep_spare(c->state, SPARE_POSITIONS); /* for the turn's cut */
    q35_tokens_free(&p);
    return rc;
}

/* ------------------------------------------------------------- a turn */

/* The overflow policy (q35.h): how many of the oldest turns to leave out so
 * that the prompt and the reply fit; renders p accordingly. */
static int fit_context(q35_chat *c, const char *user, const q35_sampling *s, q35_tokens *p,
                       int *dropped, q35_err *e) {
    const int n_ctx = c->set.n_ctx;
    const long reserve =
        (long)s->max_tokens + (s->thinking && s->thinking_budget >= 0 ? c->n_think_end : 0);
    int drop = 0, rc;
    for (;;) {
        if ((rc = q35_conv_render(&c->conv, c->tok, drop, user, true, s->thinking, p, e)))
            return rc;
        if ((long)p->n + reserve <= n_ctx) break;
        if (c->set.overflow == Q35_OVERFLOW_ERROR)
            return q35_err_set(e, Q35_EOVERFLOW,
                               "chat: the prompt (%zu tokens) and max_tokens (%d) do not fit in "
                               "the context of %d",
                               p->n, s->max_tokens, n_ctx);
        if (drop == c->conv.n_turns) break;
        drop++;
    }
    if ((long)p->n + 1 > n_ctx)
        return q35_err_set(e, Q35_EOVERFLOW,
                           "chat: the prompt is %zu tokens (system prompt and this message), "
                           "more than the context of %d leaves room for",
                           p->n, n_ctx);
    *dropped = drop;
    return Q35_OK;
}

static int chat_generate(q35_chat *c, const char *user, const q35_sampling *s,
                         q35_piece_fn on_piece, void *ud, q35_reply *reply, double t0, q35_err *e);

static bool ids_equal(const q35_tokens *a, const q35_tokens *b) {
    return a->n == b->n && (!a->n || !memcmp(a->ids, b->ids, a->n * sizeof *a->ids));
}

/* A hit of the listener's speculation: it fed exactly the prompt p and
 * the state still holds it. Its logits become the turn's, and its snapshot
 * at the generation prompt's start goes to the prompt cache, as the
 * turn's own prefill would have taken it. */
static bool use_spec(q35_chat *c, const q35_tokens *p) {
    if (!p->n || c->set.max_snapshots < 0 || !ids_equal(&c->spec_ids, p) || !ids_equal(&c->ctx, p))
        return false;
    memcpy(c->logits, c->spec_logits, (size_t)c->n_logits * sizeof *c->logits);
    if (c->spec_snap) {
        q35_snapshot *x = c->spec_snap;
        c->spec_snap = NULL;
        q35_err e2;
        if (q35_snap_cache_has(&c->cache, p->ids, c->spec_cut))
            q35_snapshot_free(x);
        else /* on failure only the next turn's reuse is lost */
            q35_snap_cache_put(&c->cache, p->ids, c->spec_cut, x, false, &e2);
    }
    c->st.reused_tokens += (int64_t)p->n;
    return true;
}

/* A barge-in's cut applied to the last turn (mu held). */
static void apply_cut(q35_chat *c) {
    if (c->cut != CUT_NONE && c->conv.n_turns) {
        int last = c->conv.n_turns - 1;
        if (c->cut == CUT_TEXT) {
            q35_err e2;
            if (q35_conv_set_answer(&c->conv, last, c->cut_text, c->cut_len, &e2))
                c->conv.turns[last].answer[0] = 0; /* out of memory: keep nothing unspoken */
        } else {
            char *a = c->conv.turns[last].answer;
            size_t n = strlen(a);
            size_t k = c->cut_len < n ? c->cut_len : n;
            while (k > 0 && k < n && ((unsigned char)a[k] & 0xC0) == 0x80)
                k--; /* not inside a UTF-8 character */
            a[k] = 0;
        }
    }
    free(c->cut_text);
    c->cut_text = NULL;
    c->cut = CUT_NONE;
}

int q35_chat_generate(q35_chat *c, const char *user, const q35_sampling *s, q35_piece_fn on_piece,
                      void *ud, q35_reply *reply, q35_err *e) {
    double t0 = q35_now_ms();
    if (reply) memset(reply, 0, sizeof *reply);
    if (!c || !user) return q35_err_set(e, Q35_EINVAL, "q35_chat_generate: NULL argument");
    fg_enter(c);
    pthread_mutex_lock(&c->mu);
    free(c->pending); /* the final transcript supersedes any partial */
    c->pending = NULL;
    atomic_store(&c->cancel, false);
    c->generating = true;
    c->cut = CUT_NONE;
    if (!c->expect_set) { /* the next turn's listener expects these settings */
        q35_sampling def = q35_sampling_default();
        expect_from(c, s ? s : &def);
    }
    pthread_mutex_unlock(&c->mu);
    int rc = chat_generate(c, user, s, on_piece, ud, reply, t0, e);
    spec_clear(c); /* it was for this turn only */
    pthread_mutex_lock(&c->mu);
    if (rc) { /* the turn was not added: nothing to cut */
        free(c->cut_text);
        c->cut_text = NULL;
        c->cut = CUT_NONE;
    }
    apply_cut(c);
    c->generating = false;
    pthread_mutex_unlock(&c->mu);
    fg_leave(c);
    return rc;
}

static int chat_generate(q35_chat *c, const char *user, const q35_sampling *s,
                         q35_piece_fn on_piece, void *ud, q35_reply *reply, double t0, q35_err *e) {
    q35_reply local = {0};
    q35_reply *out = reply ? reply : &local;
    memset(out, 0, sizeof *out);
    q35_sampling def = q35_sampling_default();
    if (!s) s = &def;
    int rc = q35_sampling_check(s, e);
    if (!rc) rc = ensure_state(c, e);
    if (rc) return rc;

    q35_tokens p = {0};
    int dropped = 0;
    if ((rc = fit_context(c, user, s, &p, &dropped, e))) goto done;

    /* cut points: after the system prompt (pinned), at the start of this
     * user message (the block before the generation prompt's) and at its
     * end (where the generation prompt starts) */
    int cuts[3], n_cuts = 0;
    bool pinned[3];
    int sys_end = system_end(c, &p);
    if (sys_end > 0) {
        cuts[n_cuts] = sys_end;
        pinned[n_cuts++] = true;
    }
    int user_start = block_start(c, &p, 1, true), user_end = block_start(c, &p, 0, true);
    if (user_start > 0) {
        cuts[n_cuts] = user_start;
        pinned[n_cuts++] = false;
    }
    if (user_end > 0) {
        cuts[n_cuts] = user_end;
        pinned[n_cuts++] = false;
    }
    int reused = 0;
    bool cancelled = false;
    int64_t before = c->st.prefilled_tokens;
    if (!dropped && use_spec(c, &p))
        reused = (int)p.n;
    else
        rc = prefill(c, p.ids, (int)p.n, cuts, pinned, n_cuts, true, &c->cancel, PREFILL_CHUNK,
                     &reused, &cancelled, e);
    if (rc) goto done;
    q35_snap_cache_clear(&c->partial, false); /* this turn's partial transcripts are done */
    out->prompt_tokens = (int)p.n;
    out->reused_tokens = reused;
    out->prefilled_tokens = (int)(c->st.prefilled_tokens - before);
    out->prefill_ms = q35_now_ms() - t0;

    /* the turn is committed from here on: dropped turns go, the user
     * message stays whatever happens to the reply */
    if (dropped) {
        q35_conv_drop_oldest(&c->conv, dropped);
        c->st.dropped_turns += dropped;
        out->dropped_turns = dropped;
    }
    if ((rc = q35_conv_push(&c->conv, user, "", 0, e))) goto done;
    if (cancelled) {
        out->stop = Q35_STOP_CANCELLED;
    } else {
        q35_gen_ctx g = {
            .model = c->model,
            .state = c->state,
            .tok = c->tok,
            .n_logits = c->n_logits,
            .n_valid = c->n_valid,
            .eos = c->eos.ids,
            .n_eos = c->eos.n,
            .think_end = c->think_end,
            .n_think_end = c->n_think_end,
            .cancel = &c->cancel,
            .context = &c->ctx,
            .logits = c->logits,
            .t_start = t0,
        };
        int prompt_tokens = out->prompt_tokens, reused_tokens = out->reused_tokens;
        int prefilled = out->prefilled_tokens, drop_n = out->dropped_turns;
        double prefill_ms = out->prefill_ms;
        rc = q35_gen_run(&g, s, on_piece, ud, out, e);
        out->prompt_tokens = prompt_tokens;
        out->reused_tokens = reused_tokens;
        out->prefilled_tokens = prefilled;
        out->dropped_turns = drop_n;
        out->prefill_ms = prefill_ms;
        c->st.generated_tokens += out->n_ids;
        if (rc)
            q35_conv_pop(&c->conv); /* a failed turn is not added */
        else
            rc =
                q35_conv_set_answer(&c->conv, c->conv.n_turns - 1, out->answer, out->answer_len, e);
    }
    c->st.last_prefilled = out->prefilled_tokens;
    c->st.last_reused = out->reused_tokens;
    /* after the reply, not before its first token: the next turn's cut */
    if (!rc && c->set.max_snapshots >= 0) q35_state_keep_spare(c->state, SPARE_POSITIONS);
done:
    q35_tokens_free(&p);
    if (!reply) q35_reply_free(&local);
    return rc;
}

/* -------------------------------------------------------------- the rest */

void q35_chat_cancel(q35_chat *c) {
    if (!c) return;
    atomic_store(&c->cancel, true);
    atomic_store(&c->bg_stop, true); /* a prefill of a partial transcript too */
}

void q35_chat_reset(q35_chat *c) {
    if (!c) return;
    fg_enter(c);
    q35_conv_clear(&c->conv);
    q35_snap_cache_clear(&c->cache, true);
    q35_snap_cache_clear(&c->partial, false);
    fg_leave(c);
}

int q35_chat_add_turn(q35_chat *c, const char *user, const char *answer, q35_err *e) {
    if (!c || !user) return q35_err_set(e, Q35_EINVAL, "q35_chat_add_turn: NULL argument");
    fg_enter(c);
    int rc = q35_conv_push(&c->conv, user, answer, answer ? strlen(answer) : 0, e);
    fg_leave(c);
    return rc;
}

int q35_chat_undo(q35_chat *c, q35_err *e) {
    if (!c) return q35_err_set(e, Q35_ESTATE, "q35_chat_undo: no turn to undo");
    fg_enter(c);
    int rc = Q35_OK;
    if (c->conv.n_turns)
        q35_conv_pop(&c->conv);
    else
        rc = q35_err_set(e, Q35_ESTATE, "q35_chat_undo: no turn to undo");
    fg_leave(c);
    return rc;
}

int q35_chat_set_last_answer(q35_chat *c, const char *answer, size_t len, q35_err *e) {
    if (!c) return q35_err_set(e, Q35_ESTATE, "q35_chat_set_last_answer: no turn yet");
    fg_enter(c);
    int rc = c->conv.n_turns ? q35_conv_set_answer(&c->conv, c->conv.n_turns - 1, answer, len, e)
                             : q35_err_set(e, Q35_ESTATE, "q35_chat_set_last_answer: no turn yet");
    fg_leave(c);
    return rc;
}

int q35_chat_n_turns(const q35_chat *c) {
    return c ? c->conv.n_turns : 0;
}

int q35_chat_turn(const q35_chat *c, int i, const char **user, const char **answer) {
    if (!c || i < 0 || i >= c->conv.n_turns) return Q35_EINVAL;
    if (user) *user = c->conv.turns[i].user;
    if (answer) *answer = c->conv.turns[i].answer;
    return Q35_OK;
}

void q35_chat_get_stats(const q35_chat *cc, q35_chat_stats *out) {
    q35_chat *c = (q35_chat *)cc; /* waits for the listener: its counters move */
    fg_enter(c);
    *out = c->st;
    out->n_turns = c->conv.n_turns;
    out->n_ctx = c->set.n_ctx;
    out->context_tokens = c->state ? q35_state_pos(c->state) : 0;
    out->n_snapshots = c->cache.n + c->partial.n;
    size_t state = 0;
    if (c->state) /* its fixed part, and the KV cache rows written so far */
        state = c->state->mem_bytes +
                c->state->kv_bytes / (size_t)c->state->n_ctx * (size_t)c->state->pos +
                c->state->spare_floats * sizeof(float);
    out->memory_bytes = state + q35_snap_cache_bytes(&c->cache) +
                        q35_snap_cache_bytes(&c->partial) + (size_t)c->n_logits * sizeof(float) +
                        c->ctx.cap * sizeof(int32_t);
    fg_leave(c);
}

int q35_chat_prompt_ids(const q35_chat *cc, const char *user, bool thinking, int32_t **ids,
                        size_t *n_ids, q35_err *e) {
    q35_chat *c = (q35_chat *)cc; /* the history is read while no barge-in writes it */
    *ids = NULL;
    *n_ids = 0;
    q35_tokens p = {0};
    fg_enter(c);
    int rc = q35_conv_render(&c->conv, c->tok, 0, user, user != NULL, thinking, &p, e);
    fg_leave(c);
    if (rc) {
        q35_tokens_free(&p);
        return rc;
    }
    *ids = p.ids;
    *n_ids = p.n;
    return Q35_OK;
}

/* ------------------------------------------------------------ barge-in */

static int barge_in(q35_chat *c, cut_mode mode, const char *text, size_t len, q35_err *e) {
    if (!c || (mode == CUT_TEXT && !text && len))
        return q35_err_set(e, Q35_EINVAL, "q35_chat_barge_in: NULL argument");
    char *copy = NULL;
    if (mode == CUT_TEXT) {
        copy = malloc(len + 1);
        if (!copy) return q35_err_set(e, Q35_ENOMEM, "q35_chat_barge_in: out of memory");
        if (len) memcpy(copy, text, len);
        copy[len] = 0;
    }
    pthread_mutex_lock(&c->mu);
    if (!c->generating && !c->fg_busy && !c->conv.n_turns) {
        pthread_mutex_unlock(&c->mu);
        free(copy);
        return q35_err_set(e, Q35_ESTATE, "q35_chat_barge_in: no reply to cut");
    }
    free(c->cut_text);
    c->cut = mode;
    c->cut_text = copy;
    c->cut_len = len;
    if (c->generating || c->fg_busy)
        atomic_store(&c->cancel, true); /* applied when that call ends */
    else
        apply_cut(c);
    pthread_mutex_unlock(&c->mu);
    return Q35_OK;
}

int q35_chat_barge_in(q35_chat *c, const char *spoken, size_t len, q35_err *e) {
    return barge_in(c, CUT_TEXT, spoken, len, e);
}

int q35_chat_barge_in_bytes(q35_chat *c, size_t n_bytes, q35_err *e) {
    return barge_in(c, CUT_BYTES, NULL, n_bytes, e);
}

/* ----------------------------------------------- listening (partials) */

/* The settled part of a partial transcript: all but its last word (the
 * recognizer may still extend or change it), trailing whitespace off. */
static size_t settled_len(const char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        n--;
    while (n && s[n - 1] != ' ' && s[n - 1] != '\t' && s[n - 1] != '\n')
        n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        n--;
    return n;
}

/* Prefills what the partial `text` settles (mu not held, bg_busy set):
 * the history and the user message's settled words, up to just before
 * the <|im_end|> that would close them, and snapshots that prefix. */
static void listen_prefill(q35_chat *c, const q35_tokens *q, int len, int user_start, int sys_end) {
    q35_err e;
    if (ensure_state(c, &e) || c->set.max_snapshots < 0) return;
    if (len + 1 >= c->set.n_ctx || q35_snap_cache_has(&c->partial, q->ids, len)) return;
    int cuts[2], n_cuts = 0;
    bool pin[2];
    if (sys_end > 0) {
        cuts[n_cuts] = sys_end;
        pin[n_cuts++] = true;
    }
    if (user_start > 0 && user_start < len) {
        cuts[n_cuts] = user_start;
        pin[n_cuts++] = false;
    }
    int reused;
    bool cancelled = false;
    int rc = prefill(c, q->ids, len, cuts, pin, n_cuts, false, &c->bg_stop, LISTEN_CHUNK, &reused,
                     &cancelled, &e);
    if (rc || cancelled || (int)c->ctx.n != len) return;
    q35_snapshot *snap = q35_state_snapshot(c->state, &e);
    if (snap) q35_snap_cache_put(&c->partial, q->ids, len, snap, false, &e);
}

/* Where a snapshot taken while speculating goes. */
typedef enum snap_dest { TO_CACHE, TO_PINNED, TO_PARTIAL, TO_SPEC } snap_dest;

static bool dest_has(const q35_chat *c, snap_dest d, const int32_t *ids, int n) {
    return d == TO_SPEC ? false
                        : q35_snap_cache_has(d == TO_PARTIAL ? &c->partial : &c->cache, ids, n);
}

/* The speculation (mu not held, bg_busy set): feeds the whole prompt sp of
 * the partial taken as final, from the best cached prefix, in one pass,
 * keeping the last position's logits and a snapshot after each of
 * cuts[0..n_cuts) (ascending, distinct) where dest[i] says: the prompt
 * cache (pinned or not), `partial`, or the speculation's own (the
 * generation prompt's start, handed to the turn on a hit). Stops at
 * bg_stop with no speculation kept. */
static void speculate(q35_chat *c, const q35_tokens *sp, const int *cuts, const snap_dest *dest,
                      int n_cuts) {
    const int n = (int)sp->n;
    if (ids_equal(&c->spec_ids, sp) && ids_equal(&c->ctx, sp)) return; /* still held */
    spec_clear(c);
    q35_err e;
    if (ensure_state(c, &e) || n + 1 >= c->set.n_ctx) return;
    if (!c->spec_logits && !(c->spec_logits = malloc((size_t)c->n_logits * sizeof(float)))) return;
    int from = restore_best(c, sp->ids, n, n, &e);
    if (from < 0) return;
    int next = 0;
    while (next < n_cuts && cuts[next] <= from)
        next++;
    while (from < n) {
        if (atomic_load(&c->bg_stop)) return;
        int k = n - from < LISTEN_CHUNK ? n - from : LISTEN_CHUNK;
        int at[8], which[8], n_at = 0;
        for (; next < n_cuts && cuts[next] <= from + k && n_at < 8; next++)
            if (!dest_has(c, dest[next], sp->ids, cuts[next])) {
                at[n_at] = cuts[next] - from;
                which[n_at++] = next;
            }
        q35_snapshot *snaps[8];
        if (q35_state_eval_snapshots(c->model, c->state, sp->ids + from, k,
                                     from + k == n ? c->spec_logits : NULL, false, at, n_at, snaps,
                                     &e))
            return;
        bool oom = q35_ids_append(&c->ctx, sp->ids + from, (size_t)k) != Q35_OK;
        if (oom) { /* keep state and ids in step */
            q35_state_clear(c->state);
            c->ctx.n = 0;
        }
        for (int i = 0; i < n_at; i++) {
            snap_dest d = dest[which[i]];
            int at_n = cuts[which[i]];
            if (oom) {
                q35_snapshot_free(snaps[i]);
            } else if (d == TO_SPEC) {
                q35_snapshot_free(c->spec_snap);
                c->spec_snap = snaps[i];
                c->spec_cut = at_n;
            } else { /* the cache takes it (or frees it) */
                q35_snap_cache_put(d == TO_PARTIAL ? &c->partial : &c->cache, sp->ids, at_n,
                                   snaps[i], d == TO_PINNED, &e);
            }
        }
        if (oom) {
            spec_clear(c);
            return;
        }
        c->st.prefilled_tokens += k;
        from += k;
    }
    if (q35_ids_assign(&c->spec_ids, sp->ids, (size_t)n)) spec_clear(c);
}

/* The prompt the final turn would have if the partial `text` were final,
 * with the settings expected (mu held); sp->n = 0 when there is none to
 * speculate on. *text_end: where the user's text ends in it; *cut: where
 * the generation prompt starts. */
static void spec_render(q35_chat *c, const char *text, q35_tokens *sp, int *text_end, int *cut) {
    sp->n = 0;
    q35_err e;
    if (!c->expect_on || c->set.max_snapshots < 0 ||
        q35_conv_render(&c->conv, c->tok, 0, text, true, c->expect_thinking, sp, &e)) {
        sp->n = 0;
        return;
    }
    const long reserve = (long)c->expect_max_tokens +
                         (c->expect_thinking && c->expect_budget >= 0 ? c->n_think_end : 0);
    *cut = block_start(c, sp, 0, true);
    *text_end = -1;
    int32_t im_end = q35_token_id(c->tok, "<|im_end|>");
    for (int i = *cut - 1; i > 0; i--)
        if (sp->ids[i] == im_end) {
            *text_end = i;
            break;
        }
    /* a final that drops turns renders otherwise: nothing to speculate on */
    if (*cut <= 0 || *text_end <= 0 || (long)sp->n + reserve > c->set.n_ctx) sp->n = 0;
}

static void *listener_main(void *arg) {
    q35_chat *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->listener_quit && (!c->pending || c->fg_busy))
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->listener_quit) break;
        char *text = c->pending;
        c->pending = NULL;
        c->bg_busy = true;
        atomic_store(&c->bg_stop, false); /* a cancel stopped the one before, not this */
        /* rendered under mu: a barge-in may change the history meanwhile */
        q35_tokens q = {0}, sp = {0};
        q35_err e;
        int text_end = -1, cut = -1;
        spec_render(c, text, &sp, &text_end, &cut);
        char *settled = text;
        settled[settled_len(text)] = 0;
        int len = -1, user_start = -1, sys_end = 0;
        if (!q35_conv_render(&c->conv, c->tok, 0, settled, false, false, &q, &e)) {
            int32_t im_end = q35_token_id(c->tok, "<|im_end|>");
            for (size_t i = q.n; i-- > 0;)
                if (q.ids[i] == im_end) {
                    len = (int)i;
                    break;
                }
            user_start = block_start(c, &q, 0, true);
            sys_end = system_end(c, &q);
        }
        pthread_mutex_unlock(&c->mu);
        free(text);
        /* errors here are not reported: the final turn computes whatever
         * the listener did not. Where the settled words are a token prefix
         * of the speculated prompt (usual: words end at a token boundary),
         * one pass takes both, and every snapshot on the way. */
        bool one_pass = sp.n && len > 0 && len < text_end && (size_t)len <= q.n &&
                        !memcmp(q.ids, sp.ids, (size_t)len * sizeof *q.ids);
        if (one_pass) {
            int cuts[5], n_cuts = 0;
            snap_dest dest[5];
            if (sys_end > 0) {
                cuts[n_cuts] = sys_end;
                dest[n_cuts++] = TO_PINNED;
            }
            if (user_start > sys_end && user_start < len) {
                cuts[n_cuts] = user_start;
                dest[n_cuts++] = TO_CACHE;
            }
            cuts[n_cuts] = len;
            dest[n_cuts++] = TO_PARTIAL;
            cuts[n_cuts] = text_end;
            dest[n_cuts++] = TO_PARTIAL;
            cuts[n_cuts] = cut;
            dest[n_cuts++] = TO_SPEC;
            speculate(c, &sp, cuts, dest, n_cuts);
        } else {
            if (len > 0) listen_prefill(c, &q, len, user_start, sys_end);
            pthread_mutex_lock(&c->mu);
            bool newer = c->pending || c->fg_busy; /* speculate on the newest partial only */
            pthread_mutex_unlock(&c->mu);
            if (sp.n && !newer && !atomic_load(&c->bg_stop)) {
                const int cuts[2] = {text_end, cut};
                const snap_dest dest[2] = {TO_PARTIAL, TO_SPEC};
                speculate(c, &sp, cuts, dest, 2);
            }
        }
        q35_tokens_free(&q);
        q35_tokens_free(&sp);
        pthread_mutex_lock(&c->mu);
        c->bg_busy = false;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int q35_chat_listen(q35_chat *c, const char *partial, q35_err *e) {
    if (!c || !partial) return q35_err_set(e, Q35_EINVAL, "q35_chat_listen: NULL argument");
    size_t n = strlen(partial);
    char *copy = malloc(n + 1);
    if (!copy) return q35_err_set(e, Q35_ENOMEM, "q35_chat_listen: out of memory");
    memcpy(copy, partial, n + 1);
    pthread_mutex_lock(&c->mu);
    if (!c->listener_started) {
        if (pthread_create(&c->listener, NULL, listener_main, c)) {
            pthread_mutex_unlock(&c->mu);
            free(copy);
            return q35_err_set(e, Q35_ENOMEM, "q35_chat_listen: cannot start the listener thread");
        }
        c->listener_started = true;
    }
    free(c->pending);
    c->pending = copy;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return Q35_OK;
}

int q35_chat_listen_expect(q35_chat *c, const q35_sampling *s, q35_err *e) {
    if (!c) return q35_err_set(e, Q35_EINVAL, "q35_chat_listen_expect: NULL chat");
    int rc = s ? q35_sampling_check(s, e) : Q35_OK;
    if (rc) return rc;
    pthread_mutex_lock(&c->mu);
    c->expect_set = true;
    c->expect_on = s != NULL;
    if (s) expect_from(c, s);
    pthread_mutex_unlock(&c->mu);
    return Q35_OK;
}

void q35_chat_listen_wait(q35_chat *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    while ((c->pending && !c->fg_busy && !c->listener_quit) || c->bg_busy)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

int q35_generate(const q35_model *m, const q35_tokenizer *tok, const char *system_prompt,
                 const char *user, const q35_sampling *s, q35_piece_fn on_piece, void *ud,
                 q35_reply *reply, q35_err *e) {
    if (reply) memset(reply, 0, sizeof *reply);
    q35_chat_settings set = {.max_snapshots = -1}; /* one turn: nothing to cache */
    q35_chat *c = q35_chat_new(m, tok, system_prompt, &set, e);
    if (!c) return e ? e->code : Q35_ENOMEM;
    int rc = q35_chat_generate(c, user, s, on_piece, ud, reply, e);
    q35_chat_free(c);
    return rc;
}
