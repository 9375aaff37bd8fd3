/* reply_guard.c — the constraint inside a reply's token loop (see
 * reply_guard.h). */
#include <string.h>

#include "constraint/reply_guard.h"
#include "core/err.h"

static void update_done(q35_reply_guard *g) {
    g->done = g->m && q35_matcher_is_complete(g->m) && !q35_matcher_can_continue(g->m);
}

int q35_reply_guard_init(q35_reply_guard *g, const q35_constraint *c, bool thinking,
                         const int32_t *eos, int n_eos, q35_err *e) {
    memset(g, 0, sizeof *g);
    g->c = c;
    if (!c) return Q35_OK;
    for (int i = 0; i < n_eos && g->n_eos < 16; i++)
        g->eos[g->n_eos++] = eos[i];
    if (!thinking) {
        g->m = q35_matcher_new(c, false, g->n_eos ? g->eos : NULL, g->n_eos, e);
        if (!g->m) return e && e->code ? e->code : Q35_ENOMEM;
        update_done(g);
    }
    return Q35_OK;
}

void q35_reply_guard_free(q35_reply_guard *g) {
    q35_matcher_free(g->m);
    memset(g, 0, sizeof *g);
}

q35_matcher *q35_reply_guard_mask(q35_reply_guard *g) {
    return g->c ? g->m : NULL;
}

int q35_reply_guard_after(q35_reply_guard *g, int32_t id, bool was_thinking, bool in_thinking,
                          const char *answer, size_t n, q35_err *e) {
    if (!g->c || in_thinking) return Q35_OK;
    int rc = Q35_OK;
    if (!g->m) { /* the think block ended with this id: the document starts */
        g->m = q35_matcher_new(g->c, true, g->n_eos ? g->eos : NULL, g->n_eos, e);
        if (!g->m) return e && e->code ? e->code : Q35_ENOMEM;
        if (n) rc = q35_matcher_accept_bytes(g->m, answer, n, e);
        if (rc) q35_err_prefix(e, "the text after </think> in the same token");
    } else if (!was_thinking) {
        rc = q35_matcher_accept(g->m, id, e);
    }
    update_done(g);
    return rc;
}
