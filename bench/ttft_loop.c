/* ttft_loop.c — the time to first token of BENCHMARKS.md "Forward: chunked
 * DeltaNet, TTFT, memory", repeated in one process so that a profiler
 * (perf record) sees mostly the turn: one chat with a system prompt, a
 * warm-up turn, then N turns of q35_chat_reset + q35_chat_generate of one
 * token (thinking on, greedy). After a reset the system prompt's snapshot
 * stays, so each turn restores it and prefills the user block and the
 * generation prompt, as bench/chat_ttft.py's "cached" case does (which
 * runs fresh processes instead). Prints each turn's ttft_ms and the
 * median. Uses only the public API.
 *
 * usage: ttft_loop MODEL THREADS N SYSTEM_TEXT USER_TEXT [q4|q8]
 * build: bench/ttft_loop.sh (against a build's static libraries) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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
    double *ms = calloc((size_t)n, sizeof *ms);
    int rc = ms ? 0 : 1;
    for (int i = -1; i < n && !rc; i++) { /* i = -1: the warm-up turn */
        q35_reply r;
        rc = q35_chat_generate(c, i < 0 ? "Hello" : argv[5], &s, NULL, NULL, &r, &e);
        if (rc) {
            fprintf(stderr, "ttft_loop: %s\n", e.msg);
            break;
        }
        if (i >= 0) {
            ms[i] = r.ttft_ms;
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
    }
    free(ms);
    q35_chat_free(c);
    q35_model_free(m);
    return rc;
}
