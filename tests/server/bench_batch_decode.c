/* bench_batch_decode.c — aggregate decode rate of q35_state_decode_batch
 * with 1, 2, 4, 8 and 16 sequences against one-at-a-time q35_state_eval
 * (not a test; numbers go to BENCHMARKS.md). Each sequence first gets a
 * short prompt, then STEPS decode steps run; the rate is sequences x steps
 * / seconds; ROUNDS rounds alternate the two sides and the medians (of the
 * rates and of the per-round ratios) are printed. Build by hand against a build tree B:
 *   cc -O2 -D_GNU_SOURCE -Iinclude -Isrc tests/server/bench_batch_decode.c \
 *      $B/libq35_forward.a $B/libq35_model.a $B/libq35_kernels.a \
 *      $B/libq35_formats.a $B/libq35_core.a $(pkg-config --libs libcjson libcurl \
 *      libcrypto) -lm -lpthread -o bench_batch_decode
 *   ./bench_batch_decode /tmp/q35-0.8b 2 16 [ROUNDS] [q4|q8|-] [ONLY_N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "q35.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s MODEL [THREADS] [STEPS] [ROUNDS] [q4|q8|-] [ONLY_N]\n", argv0);
    return 2;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(argv[0]);
    int threads = argc > 2 ? atoi(argv[2]) : 2, steps = argc > 3 ? atoi(argv[3]) : 16;
    int rounds = argc > 4 ? atoi(argv[4]) : 1;
    /* one batch size alone (for a profiler); negative: without the single steps */
    int only = argc > 6 ? atoi(argv[6]) : 0;
    if (steps < 1 || rounds < 1 || rounds > 64) return usage(argv[0]);
    q35_err e = {0};
    q35_load_opts o = {.n_threads = threads};
    if (argc > 5 && !strcmp(argv[5], "q4")) o.weights = Q35_WEIGHTS_Q4_0;
    if (argc > 5 && !strcmp(argv[5], "q8")) o.weights = Q35_WEIGHTS_Q8_0;
    q35_model *m = q35_model_load(argv[1], &o, &e);
    if (!m) return fprintf(stderr, "%s\n", e.msg), 1;
    q35_model_info info;
    q35_model_get_info(m, &info);
    enum { MAXN = 16, NS = 5 };
    q35_state *st[MAXN];
    for (int i = 0; i < MAXN; i++) {
        st[i] = q35_state_new(m, 4096, &e);
        int32_t p[8];
        for (int j = 0; j < 8; j++)
            p[j] = 1000 + 37 * i + j;
        if (!st[i] || q35_state_eval(m, st[i], p, 8, NULL, false, &e))
            return fprintf(stderr, "%s\n", e.msg), 1;
    }
    float *logits = malloc((size_t)MAXN * info.vocab_size * sizeof(float));
    q35_batch *b = q35_batch_new(m, MAXN, &e);
    if (!b || !logits) return fprintf(stderr, "%s\n", e.msg), 1;
    int32_t ids[MAXN];
    static const int ns[NS] = {1, 2, 4, 8, 16};
    double single[64], rate[NS][64], x[NS][64];
    /* rounds alternate: one sequence one at a time, then each batch size,
     * so that a change of load hits both sides of a ratio alike */
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int s = 0; s < (only < 0 ? 0 : steps); s++) {
            ids[0] = 2000 + s;
            if (q35_state_eval(m, st[0], ids, 1, logits, false, &e))
                return fprintf(stderr, "%s\n", e.msg), 1;
        }
        single[r] = steps / (now() - t0);
        for (int k = 0; k < NS; k++) {
            int n = ns[k];
            rate[k][r] = x[k][r] = 0;
            if (only && n != only && n != -only) continue;
            t0 = now();
            for (int s = 0; s < steps; s++) {
                for (int i = 0; i < n; i++)
                    ids[i] = 3000 + 11 * s + i;
                if (q35_state_decode_batch(b, st, ids, n, logits, &e))
                    return fprintf(stderr, "%s\n", e.msg), 1;
            }
            rate[k][r] = n * steps / (now() - t0);
            x[k][r] = rate[k][r] / single[r];
        }
        fprintf(stderr, "round %d: single %.2f tok/s, x4 %.2f\n", r, single[r], x[2][r]);
    }
    qsort(single, (size_t)rounds, sizeof(double), cmp_double);
    printf("{\"threads\": %d, \"steps\": %d, \"rounds\": %d, \"single_tok_s\": %.2f", threads,
           steps, rounds, single[rounds / 2]);
    for (int k = 0; k < NS; k++) {
        qsort(rate[k], (size_t)rounds, sizeof(double), cmp_double);
        qsort(x[k], (size_t)rounds, sizeof(double), cmp_double);
        printf(", \"batch%d_tok_s\": %.2f, \"batch%d_x\": %.2f", ns[k], rate[k][rounds / 2], ns[k],
               x[k][rounds / 2]);
    }
    printf("}\n");
    q35_batch_free(b);
    for (int i = 0; i < MAXN; i++)
        q35_state_free(st[i]);
    free(logits);
    q35_model_free(m);
    return 0;
}
