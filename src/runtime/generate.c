/* generate.c — the token loop of one reply (see generate.h).
 *
 * Per step: a forced id if the thinking budget queued some, else a sampled
 * one (stopping first if max_tokens ids were sampled). An eos id ends the
 * reply unfed. Other ids go through the text pipeline; an id is fed back
 * into the state only when another id will follow, so a reply never pays
 * for a forward pass whose logits nobody reads. The budget: right after the
 * budget-th sampled id inside the think block (at once for a budget of 0),
 * the ids of "\n</think>\n\n" are queued; they count neither as sampled nor
 * towards max_tokens, and are listed in forced_positions. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "constraint/reply_guard.h"
#include "core/err.h"
#include "runtime/generate.h"
#include "runtime/id_list.h"
#include "runtime/sampler.h"
#include "runtime/stop_strings.h"
#include "runtime/strbuf.h"
#include "runtime/thinking.h"

double q35_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *q35_stop_reason_name(q35_stop_reason r) {
    switch (r) {
    case Q35_STOP_NONE: return "none";
    case Q35_STOP_EOS: return "eos";
    case Q35_STOP_MAX_TOKENS: return "max_tokens";
    case Q35_STOP_STRING: return "stop_string";
    case Q35_STOP_CANCELLED: return "cancelled";
    case Q35_STOP_CONTEXT_FULL: return "context_full";
    }
    return "?";
}

void q35_reply_free(q35_reply *r) {
    if (!r) return;
    free(r->text);
    free(r->thinking);
    free(r->answer);
    free(r->ids);
    free(r->forced_positions);
    memset(r, 0, sizeof *r);
}

/* Everything one reply accumulates. */
typedef struct run {
    const q35_gen_ctx *g;
    q35_piece_fn on_piece;
    void *ud;
    q35_detok_stream *detok;
    q35_think_splitter think;
    q35_stop_matcher stop;
    q35_strbuf text, thinking, answer;     /* the whole reply so far */
    q35_strbuf th_piece, an_piece, an_out; /* this step's pieces */
    int32_t *ids;
    int n_ids, cap_ids;
    int *forced;
    int n_forced;
    q35_stop_reason reason;
    bool caller_stopped; /* the callback asked to stop: nothing more is shown */
    q35_err *e;
} run;

static int push_id(run *r, int32_t id, bool forced) {
    if (r->n_ids == r->cap_ids) {
        int cap = r->cap_ids ? r->cap_ids * 2 : 64;
        int32_t *ids = realloc(r->ids, (size_t)cap * sizeof *ids);
        if (!ids) return q35_err_set(r->e, Q35_ENOMEM, "generate: out of memory");
        r->ids = ids;
        int *f = realloc(r->forced, (size_t)cap * sizeof *f);
        if (!f) return q35_err_set(r->e, Q35_ENOMEM, "generate: out of memory");
        r->forced = f;
        r->cap_ids = cap;
    }
    if (forced) r->forced[r->n_forced++] = r->n_ids;
    r->ids[r->n_ids++] = id;
    return Q35_OK;
}

static int oom(run *r) {
    return q35_err_set(r->e, Q35_ENOMEM, "generate: out of memory for the reply text");
}

/* Adds a piece to the reply and hands it to the caller; a non-zero answer
 * from the callback stops the reply, and what comes after it (held-back
 * text included) is neither shown nor kept, so the pieces the caller saw
 * are exactly the reply's thinking and answer. */
static int deliver(run *r, q35_piece_kind kind, const q35_strbuf *piece, q35_strbuf *whole) {
    if (!piece->n || r->caller_stopped) return Q35_OK;
    if (q35_strbuf_append(whole, piece->p, piece->n)) return oom(r);
    if (r->on_piece && r->on_piece(r->ud, kind, piece->p, piece->n)) {
        r->caller_stopped = true;
        if (!r->reason) r->reason = Q35_STOP_CANCELLED;
    }
    return Q35_OK;
}

/* Decoded text of one step through the thinking split and the stop
 * strings, into the reply and out to the callback. `final` releases what
 * was held back. */
static int pipe_text(run *r, const char *s, size_t n, bool final) {
    if (q35_strbuf_append(&r->text, s, n)) return oom(r);
    if (r->stop.matched) return Q35_OK;
    q35_strbuf_clear(&r->th_piece);
    q35_strbuf_clear(&r->an_piece);
    q35_strbuf_clear(&r->an_out);
    if (q35_think_feed(&r->think, s, n, &r->th_piece, &r->an_piece)) return oom(r);
    if (final && q35_think_finish(&r->think, &r->th_piece)) return oom(r);
    if (q35_stop_feed(&r->stop, r->an_piece.p ? r->an_piece.p : "", r->an_piece.n, &r->an_out))
        return oom(r);
    if (final && q35_stop_finish(&r->stop, &r->an_out)) return oom(r);
    int rc = deliver(r, Q35_PIECE_THINKING, &r->th_piece, &r->thinking);
    if (!rc) rc = deliver(r, Q35_PIECE_ANSWER, &r->an_out, &r->answer);
    if (rc) return rc;
    if (r->stop.matched && !r->reason) r->reason = Q35_STOP_STRING;
    return Q35_OK;
}

static bool is_eos(const q35_gen_ctx *g, int32_t id) {
    for (int i = 0; i < g->n_eos; i++)
        if (g->eos[i] == id) return true;
    return false;
}

static int feed(run *r, int32_t id) {
    const q35_gen_ctx *g = r->g;
    if (q35_state_pos(g->state) >= q35_state_n_ctx(g->state)) {
        r->reason = Q35_STOP_CONTEXT_FULL;
        return Q35_OK;
    }
    int rc = q35_state_eval(g->model, g->state, &id, 1, g->logits, false, r->e);
    if (rc) return rc;
    if (q35_ids_append(g->context, &id, 1)) return oom(r);
    return Q35_OK;
}

static void finish(run *r, q35_reply *out) {
    out->text = q35_strbuf_take(&r->text, &out->text_len);
    out->thinking = q35_strbuf_take(&r->thinking, &out->thinking_len);
    out->answer = q35_strbuf_take(&r->answer, &out->answer_len);
    out->ids = r->ids;
    out->n_ids = r->n_ids;
    out->forced_positions = r->forced;
    out->n_forced = r->n_forced;
    out->n_sampled = r->n_ids - r->n_forced;
    out->stop = r->reason;
    out->stopped_at_eos = r->reason == Q35_STOP_EOS;
    r->ids = NULL;
    r->forced = NULL;
}

int q35_gen_run(const q35_gen_ctx *g, const q35_sampling *s, q35_piece_fn on_piece, void *ud,
                q35_reply *out, q35_err *e) {
    run r = {0};
    r.g = g;
    r.on_piece = on_piece;
    r.ud = ud;
    r.e = e;
    q35_think_init(&r.think, s->thinking);
    q35_stop_init(&r.stop, s->stop);
    q35_sampler sp;
    q35_reply_guard guard = {0};
    int rc = q35_sampler_init(&sp, s, g->n_logits, g->n_valid, e);
    if (!rc) rc = q35_reply_guard_init(&guard, s->constraint, s->thinking, g->eos, g->n_eos, e);
    if (!rc) {
        r.detok = q35_detok_stream_new(g->tok, true, e);
        if (!r.detok) rc = e && e->code ? e->code : Q35_ENOMEM;
    }

    int forced_next = -1; /* index into think_end while forcing */
    bool forced_once = false;
    int n_sampled = 0, n_think = 0;
    double t_first = 0;
    const bool budget = s->thinking && s->thinking_budget >= 0 && g->n_think_end > 0;
    if (budget && s->thinking_budget == 0) {
        forced_next = 0;
        forced_once = true;
    }

    while (!rc && !r.reason) {
        if (atomic_load(g->cancel)) {
            r.reason = Q35_STOP_CANCELLED;
            break;
        }
        int32_t id;
        bool forced = forced_next >= 0;
        if (forced) {
            id = g->think_end[forced_next++];
            if (forced_next == g->n_think_end) forced_next = -1;
        } else {
            if (n_sampled >= s->max_tokens) {
                r.reason = Q35_STOP_MAX_TOKENS;
                break;
            }
            const q35_tokens *c = g->context;
            sp.matcher = q35_reply_guard_mask(&guard);
            id = q35_sampler_sample(&sp, g->logits, c->ids, (int)c->n);
            if (id < 0 && sp.matcher && sp.mask_err.code) {
                rc = q35_err_set(e, sp.mask_err.code, "generate: %s", sp.mask_err.msg);
                break;
            }
            if (id < 0) {
                rc = q35_err_set(e, Q35_EFORMAT, "generate: no finite logit to sample from");
                break;
            }
            if (!n_sampled) t_first = q35_now_ms();
            n_sampled++;
            if (r.think.in_thinking) n_think++;
        }
        if ((rc = push_id(&r, id, forced))) break;
        if (!forced && is_eos(g, id)) {
            r.reason = Q35_STOP_EOS;
            break;
        }
        const char *piece;
        size_t plen;
        bool was_thinking = r.think.in_thinking;
        if ((rc = q35_detok_stream_push(r.detok, id, &piece, &plen, e))) break;
        if ((rc = pipe_text(&r, piece, plen, false))) break;
        if ((rc = q35_reply_guard_after(&guard, id, was_thinking, r.think.in_thinking, r.an_piece.p,
                                        r.an_piece.n, e)))
            break;
        if (guard.done && !r.reason) r.reason = Q35_STOP_EOS; /* the document is complete */
        if (r.reason) break;
        if (!forced && budget && !forced_once && r.think.in_thinking &&
            n_think >= s->thinking_budget) {
            forced_next = 0;
            forced_once = true;
        }
        if (forced_next < 0 && n_sampled >= s->max_tokens) {
            r.reason = Q35_STOP_MAX_TOKENS;
            break;
        }
        rc = feed(&r, id);
    }
    if (!rc && r.detok) {
        const char *piece;
        size_t plen;
        q35_detok_stream_flush(r.detok, &piece, &plen);
        rc = pipe_text(&r, piece, plen, true);
    }
    double t_end = q35_now_ms();
    finish(&r, out);
    if (n_sampled) {
        out->ttft_ms = t_first - g->t_start;
        out->decode_ms = t_end - t_first;
        out->tok_s = out->decode_ms > 0 ? (out->n_ids - 1) / (out->decode_ms / 1e3) : 0;
    }
    q35_detok_stream_free(r.detok);
    q35_think_free(&r.think);
    q35_stop_free(&r.stop);
    q35_strbuf_free(&r.text);
    q35_strbuf_free(&r.thinking);
    q35_strbuf_free(&r.answer);
    q35_strbuf_free(&r.th_piece);
    q35_strbuf_free(&r.an_piece);
    q35_strbuf_free(&r.an_out);
    q35_sampler_free(&sp);
    q35_reply_guard_free(&guard);
    return rc;
}
