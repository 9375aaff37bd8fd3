/* bench_batch_decode.c — aggregate decode rate of q35_state_decode_batch
 * with 1, 2, 4, 8 and 16 sequences against one-at-a-time q35_state_eval
 * (not a test; numbers go to BENCHMARKS.md). Each sequence first gets a
 * short prompt, then STEPS decode steps run; the rate is sequences x steps
 * / seconds. Build by hand against a build tree B:
 *   cc -O2 -D_GNU_SOURCE -Iinclude -Isrc tests/server/bench_batch_decode.c \
 *      $B/libq35_forward.a $B/libq35_model.a $B/libq35_kernels.a \
 *      $B/libq35_formats.a $B/libq35_core.a $(pkg-config --libs libcjson libcurl \
 *      libcrypto) -lm -lpthread -o bench_batch_decode
 *   ./bench_batch_decode /tmp/q35-0.8b 2 16 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "q35.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s MODEL [THREADS] [STEPS]\n", argv[0]), 2;
    int threads = argc > 2 ? atoi(argv[2]) : 2, steps = argc > 3 ? atoi(argv[3]) : 16;
    q35_err e = {0};
    q35_load_opts o = {.n_threads = threads};
    q35_model *m = q35_model_load(argv[1], &o, &e);
    if (!m) return fprintf(stderr, "%s\n", e.msg), 1;
    q35_model_info info;
    q35_model_get_info(m, &info);
    enum { MAXN = 16 };
    q35_state *st[MAXN];
    for (int i = 0; i < MAXN; i++) {
        st[i] = q35_state_new(m, 512, &e);
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
    /* one at a time, one sequence */
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        ids[0] = 2000 + s;
        q35_state_eval(m, st[0], ids, 1, logits, false, &e);
    }
    double single = steps / (now() - t0);
    printf("{\"threads\": %d, \"steps\": %d, \"single_tok_s\": %.2f", threads, steps, single);
    int ns[] = {1, 2, 4, 8, 16};
    for (int k = 0; k < 5; k++) {
        int n = ns[k];
        t0 = now();
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < n; i++)
                ids[i] = 3000 + 11 * s + i;
            if (q35_state_decode_batch(b, st, ids, n, logits, &e))
                return fprintf(stderr, "%s\n", e.msg), 1;
        }
        double rate = n * steps / (now() - t0);
        printf(", \"batch%d_tok_s\": %.2f, \"batch%d_x\": %.2f", n, rate, n, rate / single);
        fflush(stdout);
    }
    printf("}\n");
    q35_batch_free(b);
    for (int i = 0; i < MAXN; i++)
        q35_state_free(st[i]);
    free(logits);
    q35_model_free(m);
    return 0;
}
