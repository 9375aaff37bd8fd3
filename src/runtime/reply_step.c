/* reply_step.c — q35_reply_step, one reply driven one id at a time by its
 * caller (contract in q35.h): the token loop of generate.c turned inside
 * out, so that a server can sample several replies, feed their ids through
 * one batched forward step (q35_state_decode_batch) and come back with the
 * logits. The per-step rules are generate.c's: a forced id when the
 * thinking budget queued some, else a sampled one; an eos id ends the reply
 * unfed; every other id goes through the detokenizer, the thinking split
 * and the stop strings, and is handed back to be fed only when another id
 * will follow. A constraint in the settings (structured output) masks the
 * sampled ids through reply_guard, as in generate.c. */
#include <stdlib.h>
#include <string.h>

#include "constraint/reply_guard.h"
#include "core/err.h"
#include "runtime/eos_ids.h"
#include "runtime/generate.h"
#include "runtime/id_list.h"
#include "runtime/sampler.h"
#include "runtime/stop_strings.h"
#include "runtime/strbuf.h"
#include "runtime/thinking.h"

#define MAX_THINK_END 16

struct q35_reply_step {
    q35_sampling s;
    char **stop_copy; /* owned copies of the stop strings (s.stop points here) */
    const q35_tokenizer *tok;
    q35_sampler sp;
    q35_detok_stream *detok;
    q35_think_splitter think;
    q35_stop_matcher stop;
    q35_eos_ids eos;
    q35_reply_guard guard;
    int32_t think_end[MAX_THINK_END];
    int n_think_end;
    q35_tokens context; /* prompt ids and every id handed out to be fed */
    q35_strbuf text, thinking, answer, th_piece, an_piece, an_out;
    q35_tokens ids; /* generated ids */
    int *forced;
    int n_forced, cap_forced;
    int forced_next;
    bool forced_once, budget, finished, caller_stopped;
    int n_sampled, n_think;
    q35_stop_reason reason;
};

void q35_reply_step_free(q35_reply_step *r) {
    if (!r) return;
    if (r->stop_copy)
        for (char **p = r->stop_copy; *p; p++)
            free(*p);
    free(r->stop_copy);
    q35_sampler_free(&r->sp);
    q35_reply_guard_free(&r->guard);
    q35_detok_stream_free(r->detok);
    q35_think_free(&r->think);
    q35_stop_free(&r->stop);
    q35_tokens_free(&r->context);
    q35_tokens_free(&r->ids);
    q35_strbuf_free(&r->text);
    q35_strbuf_free(&r->thinking);
    q35_strbuf_free(&r->answer);
    q35_strbuf_free(&r->th_piece);
    q35_strbuf_free(&r->an_piece);
    q35_strbuf_free(&r->an_out);
    free(r->forced);
    free(r);
}

q35_reply_step *q35_reply_step_new(const q35_model *m, const q35_tokenizer *tok,
                                   const q35_sampling *s, const int32_t *prompt, int n_prompt,
                                   q35_err *e) {
    if (!m || !tok || (n_prompt > 0 && !prompt) || n_prompt < 0) {
        q35_err_set(e, Q35_EINVAL, "q35_reply_step_new: NULL argument");
        return NULL;
    }
    q35_sampling def = q35_sampling_default();
    if (!s) s = &def;
    if (q35_sampling_check(s, e)) return NULL;
    q35_reply_step *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->s = *s;
    r->tok = tok;
    if (s->stop) {
        size_t n = 0;
        while (s->stop[n])
            n++;
        r->stop_copy = calloc(n + 1, sizeof *r->stop_copy);
        if (!r->stop_copy) goto oom;
        for (size_t i = 0; i < n; i++)
            if (!(r->stop_copy[i] = strdup(s->stop[i]))) goto oom;
        r->s.stop = (const char *const *)r->stop_copy;
    }
    q35_model_info info;
    q35_model_get_info(m, &info);
    size_t nv = q35_tokenizer_n_vocab(tok);
    int n_valid = nv < (size_t)info.vocab_size ? (int)nv : info.vocab_size;
    if (q35_sampler_init(&r->sp, &r->s, info.vocab_size, n_valid, e)) goto fail;
    r->detok = q35_detok_stream_new(tok, true, e);
    if (!r->detok) goto fail;
    q35_think_init(&r->think, r->s.thinking);
    q35_stop_init(&r->stop, r->s.stop);
    q35_eos_ids_collect(&r->eos, m, tok, info.vocab_size);
    if (q35_reply_guard_init(&r->guard, r->s.constraint, r->s.thinking, r->eos.ids, r->eos.n, e))
        goto fail;
    static const char think_end[] = "\n</think>\n\n";
    int32_t *ids = NULL;
    size_t n = 0;
    if (q35_tokenize(tok, think_end, sizeof think_end - 1, Q35_ADDED_MATCH, &ids, &n, e)) goto fail;
    if (n > MAX_THINK_END) n = 0;
    if (n) memcpy(r->think_end, ids, n * sizeof *ids);
    r->n_think_end = (int)n;
    free(ids);
    if (q35_ids_append(&r->context, prompt, (size_t)n_prompt)) goto oom;
    r->forced_next = -1;
    r->budget = r->s.thinking && r->s.thinking_budget >= 0 && r->n_think_end > 0;
    if (r->budget && r->s.thinking_budget == 0) {
        r->forced_next = 0;
        r->forced_once = true;
    }
    return r;
oom:
    q35_err_set(e, Q35_ENOMEM, "q35_reply_step_new: out of memory");
fail:
    q35_reply_step_free(r);
    return NULL;
}

static int oom(q35_err *e) {
    return q35_err_set(e, Q35_ENOMEM, "reply step: out of memory");
}

static int deliver(q35_reply_step *r, q35_piece_kind kind, const q35_strbuf *piece,
                   q35_strbuf *whole, q35_piece_fn fn, void *ud, q35_err *e) {
    if (!piece->n || r->caller_stopped) return Q35_OK;
    if (q35_strbuf_append(whole, piece->p, piece->n)) return oom(e);
    if (fn && fn(ud, kind, piece->p, piece->n)) {
        r->caller_stopped = true;
        if (!r->reason) r->reason = Q35_STOP_CANCELLED;
    }
    return Q35_OK;
}

static int pipe_text(q35_reply_step *r, const char *s, size_t n, bool final, q35_piece_fn fn,
                     void *ud, q35_err *e) {
    if (q35_strbuf_append(&r->text, s, n)) return oom(e);
    if (r->stop.matched) return Q35_OK;
    q35_strbuf_clear(&r->th_piece);
    q35_strbuf_clear(&r->an_piece);
    q35_strbuf_clear(&r->an_out);
    if (q35_think_feed(&r->think, s, n, &r->th_piece, &r->an_piece)) return oom(e);
    if (final && q35_think_finish(&r->think, &r->th_piece)) return oom(e);
    if (q35_stop_feed(&r->stop, r->an_piece.p ? r->an_piece.p : "", r->an_piece.n, &r->an_out))
        return oom(e);
    if (final && q35_stop_finish(&r->stop, &r->an_out)) return oom(e);
    int rc = deliver(r, Q35_PIECE_THINKING, &r->th_piece, &r->thinking, fn, ud, e);
    if (!rc) rc = deliver(r, Q35_PIECE_ANSWER, &r->an_out, &r->answer, fn, ud, e);
    if (rc) return rc;
    if (r->stop.matched && !r->reason) r->reason = Q35_STOP_STRING;
    return Q35_OK;
}

static int push_id(q35_reply_step *r, int32_t id, bool forced, q35_err *e) {
    if (forced) {
        if (r->n_forced == r->cap_forced) {
            int cap = r->cap_forced ? r->cap_forced * 2 : 16;
            int *f = realloc(r->forced, (size_t)cap * sizeof *f);
            if (!f) return oom(e);
            r->forced = f;
            r->cap_forced = cap;
        }
        r->forced[r->n_forced++] = (int)r->ids.n;
    }
    return q35_ids_append(&r->ids, &id, 1) ? oom(e) : Q35_OK;
}

int q35_reply_step_next(q35_reply_step *r, float *logits, int room, q35_piece_fn on_piece, void *ud,
                        int32_t *id_out, q35_err *e) {
    if (!r || !id_out) return q35_err_set(e, Q35_EINVAL, "q35_reply_step_next: NULL argument");
    if (r->finished || r->reason) return 0;
    int32_t id;
    bool forced = r->forced_next >= 0;
    if (forced) {
        id = r->think_end[r->forced_next++];
        if (r->forced_next == r->n_think_end) r->forced_next = -1;
    } else {
        if (r->n_sampled >= r->s.max_tokens) {
            r->reason = Q35_STOP_MAX_TOKENS;
            return 0;
        }
        if (!logits) return q35_err_set(e, Q35_EINVAL, "q35_reply_step_next: no logits");
        r->sp.matcher = q35_reply_guard_mask(&r->guard);
        id = q35_sampler_sample(&r->sp, logits, r->context.ids, (int)r->context.n);
        if (id < 0 && r->sp.matcher && r->sp.mask_err.code)
            return q35_err_set(e, r->sp.mask_err.code, "reply step: %s", r->sp.mask_err.msg);
        if (id < 0) return q35_err_set(e, Q35_EFORMAT, "reply step: no finite logit to sample");
        r->n_sampled++;
        if (r->think.in_thinking) r->n_think++;
    }
    int rc = push_id(r, id, forced, e);
    if (rc) return rc;
    if (!forced && q35_eos_ids_has(&r->eos, id)) {
        r->reason = Q35_STOP_EOS;
        return 0;
    }
    const char *piece;
    size_t plen;
    bool was_thinking = r->think.in_thinking;
    if ((rc = q35_detok_stream_push(r->detok, id, &piece, &plen, e))) return rc;
    if ((rc = pipe_text(r, piece, plen, false, on_piece, ud, e))) return rc;
    if ((rc = q35_reply_guard_after(&r->guard, id, was_thinking, r->think.in_thinking,
                                    r->an_piece.p, r->an_piece.n, e)))
        return rc;
    if (r->guard.done && !r->reason) r->reason = Q35_STOP_EOS; /* the document is complete */
    if (r->reason) return 0;
    if (!forced && r->budget && !r->forced_once && r->think.in_thinking &&
        r->n_think >= r->s.thinking_budget) {
        r->forced_next = 0;
        r->forced_once = true;
    }
    if (r->forced_next < 0 && r->n_sampled >= r->s.max_tokens) {
        r->reason = Q35_STOP_MAX_TOKENS;
        return 0;
    }
    if (room < 1) {
        r->reason = Q35_STOP_CONTEXT_FULL;
        return 0;
    }
    if (q35_ids_append(&r->context, &id, 1)) return oom(e);
    *id_out = id;
    return 1;
}

bool q35_reply_step_forcing(const q35_reply_step *r) {
    return r && r->forced_next >= 0;
}

void q35_reply_step_cancel(q35_reply_step *r) {
    if (r && !r->reason) r->reason = Q35_STOP_CANCELLED;
}

int q35_reply_step_finish(q35_reply_step *r, q35_piece_fn on_piece, void *ud, q35_reply *out,
                          q35_err *e) {
    if (!r || !out) return q35_err_set(e, Q35_EINVAL, "q35_reply_step_finish: NULL argument");
    int rc = Q35_OK;
    if (!r->finished) {
        r->finished = true;
        const char *piece;
        size_t plen;
        q35_detok_stream_flush(r->detok, &piece, &plen);
        rc = pipe_text(r, piece, plen, true, on_piece, ud, e);
    }
    memset(out, 0, sizeof *out);
    out->text = q35_strbuf_take(&r->text, &out->text_len);
    out->thinking = q35_strbuf_take(&r->thinking, &out->thinking_len);
    out->answer = q35_strbuf_take(&r->answer, &out->answer_len);
    out->ids = r->ids.ids;
    out->n_ids = (int)r->ids.n;
    r->ids = (q35_tokens){0};
    out->forced_positions = r->forced;
    out->n_forced = r->n_forced;
    r->forced = NULL;
    r->n_forced = r->cap_forced = 0;
    out->n_sampled = out->n_ids - out->n_forced;
    out->stop = r->reason;
    out->stopped_at_eos = r->reason == Q35_STOP_EOS;
    if (!out->text || !out->thinking || !out->answer) {
        q35_reply_free(out);
        return oom(e);
    }
    return rc;
}

const int32_t *q35_reply_step_context(const q35_reply_step *r, int *n) {
    *n = r ? (int)r->context.n : 0;
    return r ? r->context.ids : NULL;
}
