/* ttft_loop.c — the time to first token of BENCHMARKS.md "Forward: chunked
 * DeltaNet, TTFT, memory", repeated in one process so that a profiler
 * (perf record) sees mostly the turn: one chat with a system prompt, a
 * warm-up turn, then N turns of q35_chat_reset + q35_chat_generate of one
 * token (thinking on, greedy). After a reset the system prompt's snapshot
 * stays, so each turn restores it and prefills the user block and the
 * generation prompt, as bench/chat_ttft.py's "cached" case does (which
 * runs fresh processes instead). Prints each turn's ttft_ms and the
 * median, then times the turn's pieces one by one (see phases). Uses only
 * the public API.
 *
 * usage: ttft_loop MODEL THREADS N SYSTEM_TEXT USER_TEXT [q4|q8]
 * build: bench/ttft_loop.sh (against a build's static libraries) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "q35.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return x[n / 2];
}

/* The turn's pieces through the public API on a state of its own, n
 * times each: the render + tokenize of the whole prompt
 * (q35_chat_prompt_ids), the restore of the system prompt's snapshot, the
 * prefill of the rest with the last position's logits (as the chat does,
 * with the one snapshot it takes at the start of the generation prompt,
 * and without it). */
static int phases(q35_model *m, q35_chat *c, const char *user, int reused, int n) {
    q35_err e = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    q35_model_info info;
    q35_model_get_info(m, &info);
    q35_state *s = q35_state_new(m, 4096, &e);
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    double *t_tok = calloc((size_t)n, sizeof(double)), *t_res = calloc((size_t)n, sizeof(double));
    double *t_snap = calloc((size_t)n, sizeof(double)), *t_eval = calloc((size_t)n, sizeof(double));
    q35_snapshot *sys = NULL;
    int rc = s && logits && t_tok && t_res && t_snap && t_eval ? 0 : 1;
    if (!rc) rc = q35_chat_prompt_ids(c, user, true, &ids, &n_ids, &e);
    if (!rc && (reused < 1 || reused >= (int)n_ids - 1)) rc = 1;
    if (!rc) rc = q35_state_eval(m, s, ids, reused, NULL, false, &e);
    if (!rc && !(sys = q35_state_snapshot(s, &e))) rc = 1;
    int rest = (int)n_ids - reused;
    for (int i = 0; i < n && !rc; i++) {
        int32_t *again = NULL;
        size_t n_again = 0;
        double t0 = now_ms();
        rc = q35_chat_prompt_ids(c, user, true, &again, &n_again, &e);
        double t1 = now_ms();
        free(again);
        if (!rc) rc = q35_state_restore(s, sys, &e);
        double t2 = now_ms();
        int at = rest - 4; /* where the generation prompt starts */
        q35_snapshot *snap = NULL;
        if (!rc)
            rc = q35_state_eval_snapshots(m, s, ids + reused, rest, logits, false, &at, 1, &snap,
                                          &e);
        double t3 = now_ms();
        q35_snapshot_free(snap);
        if (!rc) rc = q35_state_restore(s, sys, &e);
        double t4 = now_ms();
        if (!rc) rc = q35_state_eval(m, s, ids + reused, rest, logits, false, &e);
        double t5 = now_ms();
        t_tok[i] = t1 - t0;
        t_res[i] = t2 - t1;
        t_snap[i] = t3 - t2;
        t_eval[i] = t5 - t4;
    }
    if (!rc)
        printf("pieces (median of %d): render + tokenize %d ids %.2f ms; restore %d positions "
               "%.2f ms; prefill %d tokens with a snapshot %.1f ms, without %.1f ms\n",
               n, (int)n_ids, median(t_tok, n), reused, median(t_res, n), rest, median(t_snap, n),
               median(t_eval, n));
    if (rc) fprintf(stderr, "ttft_loop: pieces: %s\n", e.msg);
    free(ids);
    q35_snapshot_free(sys);
    q35_state_free(s);
    free(logits);
    free(t_tok);
    free(t_res);
    free(t_snap);
    free(t_eval);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: ttft_loop MODEL THREADS N SYSTEM_TEXT USER_TEXT [q4|q8]\n");
        return 2;
    }
    int n = atoi(argv[3]);
    if (n < 1 || n > 10000) n = 10;
    q35_load_opts lo = {0};
    lo.n_threads = atoi(argv[2]);
    if (argc > 6 && !strcmp(argv[6], "q4")) lo.weights = Q35_WEIGHTS_Q4_0;
    if (argc > 6 && !strcmp(argv[6], "q8")) lo.weights = Q35_WEIGHTS_Q8_0;
    q35_err e = {0};
    q35_model *m = q35_model_load(argv[1], &lo, &e);
    if (!m) {
        fprintf(stderr, "ttft_loop: %s\n", e.msg);
        return 1;
    }
    q35_chat *c = q35_chat_new(m, NULL, argv[4], NULL, &e);
    if (!c) {
        fprintf(stderr, "ttft_loop: %s\n", e.msg);
        q35_model_free(m);
        return 1;
    }
    q35_sampling s = q35_sampling_default();
    s.temperature = 0;
    s.max_tokens = 1;
    double *ms = calloc((size_t)n, sizeof *ms), *pre = calloc((size_t)n, sizeof *pre);
    double *rest = calloc((size_t)n, sizeof *rest);
    int rc = ms && pre && rest ? 0 : 1, reused = 0;
    for (int i = -1; i < n && !rc; i++) { /* i = -1: the warm-up turn */
        q35_reply r;
        rc = q35_chat_generate(c, i < 0 ? "Hello" : argv[5], &s, NULL, NULL, &r, &e);
        if (rc) {
            fprintf(stderr, "ttft_loop: %s\n", e.msg);
            break;
        }
        if (i >= 0) {
            ms[i] = r.ttft_ms;
            pre[i] = r.prefill_ms;
            rest[i] = r.ttft_ms - r.prefill_ms;
            reused = r.reused_tokens;
            printf("turn %d ttft %.1f ms (prefilled %d, reused %d)\n", i, r.ttft_ms,
                   r.prefilled_tokens, r.reused_tokens);
        }
        q35_reply_free(&r);
        q35_chat_reset(c);
    }
    if (!rc) {
        qsort(ms, (size_t)n, sizeof *ms, cmp_double);
        printf("median ttft %.1f ms, min %.1f, max %.1f over %d turns\n", ms[n / 2], ms[0],
               ms[n - 1], n);
        printf("median of the turn's pieces: prefill_ms (render, tokenize, restore, "
               "prefill) %.1f, the rest (logits to the first id) %.2f ms\n",
               median(pre, n), median(rest, n));
        rc = phases(m, c, argv[5], reused, n);
    }
    free(ms);
    free(pre);
    free(rest);
    q35_chat_free(c);
    q35_model_free(m);
    return rc;
}
