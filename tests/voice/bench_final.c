/* bench_final.c — where the time from a final transcript to the first token
 * goes when the final differs from the last partial by a few words (issue
 * 13 point 3; not a test, numbers go to BENCHMARKS.md "Voice latency").
 * On a state of its own, through the public API, each piece of the turn
 * after the divergence, ROUNDS times in turn (medians printed):
 *   - restore: the snapshot at the divergence point (q35_state_restore);
 *   - rest+snap: the rest of the prompt (the differing words and the
 *     template's suffix) with the last position's logits and the one
 *     snapshot the chat takes at the generation prompt's start;
 *   - rest: the same without the snapshot; rest-nologits: without logits;
 *   - decode: one token with logits (a weight pass at T = 1);
 *   - head: the output head alone is rest minus rest-nologits.
 * usage: bench_final MODEL THREADS ROUNDS FINAL_TEXT DIVERGE_WORDS [q4|q8]
 * (DIVERGE_WORDS: how many of the final's words the last partial lacked)
 * build against a build tree B (static libraries, CUDA off):
 *   cc -O2 -D_GNU_SOURCE -Iinclude tests/voice/bench_final.c \
 *     $B/libq35_runtime.a $B/libq35_constraint.a $B/libq35_forward.a \
 *     $B/libq35_text.a $B/libq35_model.a $B/libq35_kernels.a \
 *     $B/libq35_formats.a $B/libq35_core.a $(pkg-config --libs libcjson \
 *     libpcre2-8 libutf8proc libcurl libcrypto) -lm -lpthread -o bench_final */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "q35.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return x[n / 2];
}

enum { PIECES = 6, MAX_ROUNDS = 200 };

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_final MODEL THREADS ROUNDS FINAL_TEXT DIVERGE_WORDS "
                        "[q4|q8]\n");
        return 2;
    }
    int rounds = atoi(argv[3]), lag = atoi(argv[5]);
    if (rounds < 1 || rounds > MAX_ROUNDS || lag < 0) return 2;
    q35_load_opts lo = {0};
    lo.n_threads = atoi(argv[2]);
    if (argc > 6 && !strcmp(argv[6], "q4")) lo.weights = Q35_WEIGHTS_Q4_0;
    if (argc > 6 && !strcmp(argv[6], "q8")) lo.weights = Q35_WEIGHTS_Q8_0;
    q35_err e = {0};
    q35_model *m = q35_model_load(argv[1], &lo, &e);
    if (!m) return fprintf(stderr, "bench_final: %s\n", e.msg), 1;
    q35_chat *c = q35_chat_new(m, NULL, "You are a helpful voice assistant.", NULL, &e);
    if (!c) return fprintf(stderr, "bench_final: %s\n", e.msg), 1;
    /* the partial: the final's words but the last `lag` */
    const char *fin = argv[4];
    char partial[4096];
    snprintf(partial, sizeof partial, "%s", fin);
    for (int k = 0; k < lag; k++) {
        char *sp = strrchr(partial, ' ');
        if (!sp) break;
        *sp = 0;
    }
    int32_t *ids = NULL, *pids = NULL;
    size_t n = 0, pn = 0;
    if (q35_chat_prompt_ids(c, fin, false, &ids, &n, &e) ||
        q35_chat_prompt_ids(c, partial, false, &pids, &pn, &e))
        return fprintf(stderr, "bench_final: %s\n", e.msg), 1;
    int div = 0;
    while ((size_t)div < n && (size_t)div < pn && ids[div] == pids[div])
        div++;
    int rest = (int)n - div;
    q35_model_info info;
    q35_model_get_info(m, &info);
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    q35_state *s = q35_state_new(m, 4096, &e);
    if (!s || !logits || q35_state_eval(m, s, ids, div, NULL, false, &e))
        return fprintf(stderr, "bench_final: %s\n", e.msg), 1;
    q35_snapshot *at_div = q35_state_snapshot(s, &e);
    if (!at_div) return fprintf(stderr, "bench_final: %s\n", e.msg), 1;
    static double t[PIECES][MAX_ROUNDS];
    static const char *const names[PIECES] = {"restore",       "rest+snap", "rest",
                                              "rest-nologits", "decode",    "snapshot"};
    int cut = rest - 4; /* the generation prompt's start: <|im_start|>assistant\n<think>... */
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ms();
        int rc = q35_state_restore(s, at_div, &e);
        double t1 = now_ms();
        q35_snapshot *snap = NULL;
        if (!rc)
            rc = q35_state_eval_snapshots(m, s, ids + div, rest, logits, false, &cut, 1, &snap, &e);
        double t2 = now_ms();
        q35_snapshot_free(snap);
        if (!rc) rc = q35_state_restore(s, at_div, &e);
        double t3 = now_ms();
        if (!rc) rc = q35_state_eval(m, s, ids + div, rest, logits, false, &e);
        double t4 = now_ms();
        if (!rc) rc = q35_state_restore(s, at_div, &e);
        double t5 = now_ms();
        if (!rc) rc = q35_state_eval(m, s, ids + div, rest, NULL, false, &e);
        double t6 = now_ms();
        if (!rc) rc = q35_state_eval(m, s, ids, 1, logits, false, &e);
        double t7 = now_ms();
        q35_snapshot *x = rc ? NULL : q35_state_snapshot(s, &e);
        double t8 = now_ms();
        q35_snapshot_free(x);
        if (rc) return fprintf(stderr, "bench_final: %s\n", e.msg), 1;
        t[0][r] = t1 - t0;
        t[1][r] = t2 - t1;
        t[2][r] = t4 - t3;
        t[3][r] = t6 - t5;
        t[4][r] = t7 - t6;
        t[5][r] = t8 - t7;
        (void)t5;
    }
    printf("prompt %zu ids, partial %zu, divergence at %d: %d tokens after it\n", n, pn, div, rest);
    for (int p = 0; p < PIECES; p++)
        printf("%s %.2f ms\n", names[p], median(t[p], rounds));
    q35_snapshot_free(at_div);
    q35_state_free(s);
    free(logits);
    free(ids);
    free(pids);
    q35_chat_free(c);
    q35_model_free(m);
    return 0;
}
