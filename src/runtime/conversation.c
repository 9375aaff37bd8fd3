/* conversation.c — chat history as text, rendered through the text layer's
 * template (see conversation.h). */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "runtime/conversation.h"

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

int q35_conv_init(q35_conversation *cv, const char *system, q35_err *e) {
    memset(cv, 0, sizeof *cv);
    if (system && *system) {
        cv->system = dup_n(system, strlen(system));
        if (!cv->system) return q35_err_set(e, Q35_ENOMEM, "chat: out of memory");
    }
    return Q35_OK;
}

void q35_conv_clear(q35_conversation *cv) {
    for (int i = 0; i < cv->n_turns; i++) {
        free(cv->turns[i].user);
        free(cv->turns[i].answer);
    }
    cv->n_turns = 0;
}

void q35_conv_free(q35_conversation *cv) {
    q35_conv_clear(cv);
    free(cv->turns);
    free(cv->system);
    memset(cv, 0, sizeof *cv);
}

int q35_conv_push(q35_conversation *cv, const char *user, const char *answer, size_t answer_len,
                  q35_err *e) {
    if (cv->n_turns == cv->cap_turns) {
        int cap = cv->cap_turns ? cv->cap_turns * 2 : 8;
        q35_turn *t = realloc(cv->turns, (size_t)cap * sizeof *t);
        if (!t) return q35_err_set(e, Q35_ENOMEM, "chat: out of memory for the history");
        cv->turns = t;
        cv->cap_turns = cap;
    }
    q35_turn t = {dup_n(user, strlen(user)), dup_n(answer ? answer : "", answer ? answer_len : 0)};
    if (!t.user || !t.answer) {
        free(t.user);
        free(t.answer);
        return q35_err_set(e, Q35_ENOMEM, "chat: out of memory for the history");
    }
    cv->turns[cv->n_turns++] = t;
    return Q35_OK;
}

void q35_conv_pop(q35_conversation *cv) {
    if (!cv->n_turns) return;
    q35_turn *t = &cv->turns[--cv->n_turns];
    free(t->user);
    free(t->answer);
}

void q35_conv_drop_oldest(q35_conversation *cv, int n) {
    if (n <= 0) return;
    if (n > cv->n_turns) n = cv->n_turns;
    for (int i = 0; i < n; i++) {
        free(cv->turns[i].user);
        free(cv->turns[i].answer);
    }
    memmove(cv->turns, cv->turns + n, (size_t)(cv->n_turns - n) * sizeof *cv->turns);
    cv->n_turns -= n;
}

int q35_conv_set_answer(q35_conversation *cv, int i, const char *answer, size_t len, q35_err *e) {
    char *a = dup_n(answer ? answer : "", answer ? len : 0);
    if (!a) return q35_err_set(e, Q35_ENOMEM, "chat: out of memory for the history");
    free(cv->turns[i].answer);
    cv->turns[i].answer = a;
    return Q35_OK;
}

int q35_conv_render(const q35_conversation *cv, const q35_tokenizer *tok, int first,
                    const char *user, bool add_gen, bool thinking, q35_tokens *out, q35_err *e) {
    size_t n = (cv->system ? 1 : 0) + 2 * (size_t)(cv->n_turns - first) + (user ? 1 : 0);
    q35_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    if (!msgs) return q35_err_set(e, Q35_ENOMEM, "chat: out of memory rendering the history");
    size_t k = 0;
    if (cv->system) msgs[k++] = (q35_message){.role = "system", .content = cv->system};
    for (int i = first; i < cv->n_turns; i++) {
        msgs[k++] = (q35_message){.role = "user", .content = cv->turns[i].user};
        msgs[k++] = (q35_message){.role = "assistant", .content = cv->turns[i].answer};
    }
    if (user) msgs[k++] = (q35_message){.role = "user", .content = user};
    q35_chat_opts o = q35_chat_opts_default();
    o.add_generation_prompt = add_gen;
    o.enable_thinking = thinking;
    o.tools_json = NULL;
    q35_prompt p = {0};
    int rc = q35_chat_render(msgs, k, &o, &p, e);
    free(msgs);
    if (rc) return rc;
    out->n = 0;
    rc = q35_prompt_encode(tok, &p, out, e);
    q35_prompt_free(&p);
    return rc;
}
