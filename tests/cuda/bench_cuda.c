/* bench_cuda.c — speed of the CUDA backend on one model (not a test):
 *
 *     bench_cuda MODEL [q8|q4|none] [PP] [TG]
 *
 * pp: a PP-token prompt from an empty state (median of 5); tg: TG greedy
 * tokens one at a time on the device (q35_state_decode_greedy, one graph
 * replay each; median of 3), and the same through q35_state_eval with the
 * logits copied to the host, and sampled on the device with the default
 * settings (q35_state_decode_sample); ttft: a 64-token turn after a 512-token
 * system prompt restored from a snapshot, logits of the last position out.
 * Bytes per token are the device copy of the weights (every matrix is read
 * once per decoded token; the embedding is also the tied output head). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"
#include "q35.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if ((x) != Q35_OK) {                                                                       \
            fprintf(stderr, "%s: %s\n", #x, e.msg);                                                \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_cuda MODEL [q8|q4|none] [PP] [TG]\n");
        return 2;
    }
    q35_weight_format wf = Q35_WEIGHTS_AS_STORED;
    if (argc > 2 && !strcmp(argv[2], "q8")) wf = Q35_WEIGHTS_Q8_0;
    if (argc > 2 && !strcmp(argv[2], "q4")) wf = Q35_WEIGHTS_Q4_0;
    int pp = argc > 3 ? atoi(argv[3]) : 512, tg = argc > 4 ? atoi(argv[4]) : 128;
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 0, .weights = wf, .device = Q35_DEVICE_CUDA};
    q35_model *m = q35_model_load(argv[1], &lo, &e);
    if (!m) {
        fprintf(stderr, "load: %s\n", e.msg);
        return 1;
    }
    q35_model_info in;
    q35_model_get_info(m, &in);
    int V = in.vocab_size, n_ctx = 512 + 64 + pp + tg + 8;
    q35_state *s = q35_state_new(m, n_ctx, &e);
    if (!s) {
        fprintf(stderr, "state: %s\n", e.msg);
        return 1;
    }
    int32_t *ids = malloc((size_t)n_ctx * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    for (int i = 0; i < n_ctx; i++)
        ids[i] = (int32_t)((i * 7919u + 13u) % (unsigned)V);
    /* warm-up: every path once (graphs captured) */
    CHECK(q35_state_eval(m, s, ids, 64, logits, false, &e));
    int32_t next = 0;
    for (int i = 0; i < 4; i++)
        CHECK(q35_state_decode_greedy(m, s, next, V, &next, &e));
    CHECK(q35_state_eval(m, s, &next, 1, logits, false, &e));
    CHECK(q35_state_eval(m, s, &next, 1, NULL, false, &e));

    double t[5];
    for (int r = 0; r < 5; r++) {
        q35_state_clear(s);
        double t0 = now();
        CHECK(q35_state_eval(m, s, ids, pp, logits, false, &e));
        t[r] = now() - t0;
    }
    qsort(t, 5, sizeof *t, cmp);
    double pp_s = pp / t[2];

    double g[3], h[3];
    for (int r = 0; r < 3; r++) {
        q35_state_clear(s);
        CHECK(q35_state_eval(m, s, ids, 1, NULL, false, &e));
        next = ids[1];
        double t0 = now();
        for (int i = 0; i < tg; i++)
            CHECK(q35_state_decode_greedy(m, s, next, V, &next, &e));
        g[r] = now() - t0;
        q35_state_clear(s);
        CHECK(q35_state_eval(m, s, ids, 1, NULL, false, &e));
        t0 = now();
        for (int i = 0; i < tg; i++)
            CHECK(q35_state_eval(m, s, ids + 1 + i, 1, logits, false, &e));
        h[r] = now() - t0;
    }
    qsort(g, 3, sizeof *g, cmp);
    qsort(h, 3, sizeof *h, cmp);
    double tg_s = tg / g[1], tg_host = tg / h[1];

    /* sampled on the device: the default settings (top-k 50, top-p 0.95,
     * temperature 0.6, penalty 1.1 over 64 ids) */
    q35_sampling smp = q35_sampling_default();
    double sm[3];
    int on_dev = 0;
    for (int r = 0; r < 3; r++) {
        q35_state_clear(s);
        CHECK(q35_state_eval(m, s, ids, 1, NULL, false, &e));
        int32_t hist[1024];
        hist[0] = ids[0];
        int nh = 1;
        uint64_t x = 88172645463325252ull;
        double t0 = now();
        for (int i = 0; i < tg; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            double u = (double)(x >> 11) * (1.0 / 9007199254740992.0);
            int32_t nx = -1;
            CHECK(
                q35_state_decode_sample(m, s, hist[nh - 1], &smp, V, hist, nh, u, &nx, logits, &e));
            if (nx < 0)
                nx = 0; /* (the host would sample here) */
            else
                on_dev++;
            if (nh < 1024) hist[nh++] = nx;
        }
        sm[r] = now() - t0;
    }
    qsort(sm, 3, sizeof *sm, cmp);
    double tg_sample = tg / sm[1];

    /* time to first token after a cached system prompt */
    q35_state_clear(s);
    CHECK(q35_state_eval(m, s, ids, 512, NULL, false, &e));
    q35_snapshot *sys = q35_state_snapshot(s, &e);
    double f[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        CHECK(q35_state_restore(s, sys, &e));
        CHECK(q35_state_eval(m, s, ids + 512, 64, logits, false, &e));
        f[r] = now() - t0;
    }
    qsort(f, 5, sizeof *f, cmp);
    q35_snapshot_free(sys);

    /* batched greedy decode (q35_states_decode_greedy): B conversations,
     * each after its own 16-token prompt, TG steps; median of 3 */
    enum { BMAX = 16 };
    q35_state *bs[BMAX];
    double agg[3] = {0, 0, 0};
    int nbs[3] = {1, 4, 16};
    for (int i = 0; i < BMAX; i++) {
        bs[i] = q35_state_new(m, 16 + 3 * tg + 8, &e);
        if (!bs[i]) {
            fprintf(stderr, "state: %s\n", e.msg);
            return 1;
        }
    }
    for (int k = 0; k < 3; k++) {
        int B = nbs[k];
        double bt[3];
        for (int r = 0; r < 3; r++) {
            int32_t cur[BMAX], nx[BMAX];
            for (int i = 0; i < B; i++) {
                q35_state_clear(bs[i]);
                CHECK(q35_state_eval(m, bs[i], ids + 16 * i, 15, NULL, false, &e));
                cur[i] = ids[16 * i + 15];
            }
            CHECK(q35_states_decode_greedy(m, bs, cur, B, V, nx, &e)); /* captured */
            double t0 = now();
            for (int j = 0; j < tg; j++) {
                CHECK(q35_states_decode_greedy(m, bs, nx, B, V, cur, &e));
                memcpy(nx, cur, sizeof cur);
            }
            bt[r] = now() - t0;
        }
        qsort(bt, 3, sizeof *bt, cmp);
        agg[k] = (double)B * tg / bt[1];
    }
    for (int i = 0; i < BMAX; i++)
        q35_state_free(bs[i]);

    double bytes = (double)m->device_bytes;
    printf("model %s  weights %s  device bytes %.1f MiB\n", argv[1],
           wf == Q35_WEIGHTS_Q8_0   ? "q8_0"
           : wf == Q35_WEIGHTS_Q4_0 ? "q4_0"
                                    : "as stored",
           bytes / (1 << 20));
    printf("pp%d %.0f tok/s | tg%d %.1f tok/s (greedy on device; %.2f TB/s) | tg%d with logits "
           "to host %.1f tok/s | tg%d sampled on device %.1f tok/s (%d/%d) | ttft 64 after 512 "
           "cached %.2f ms\n",
           pp, pp_s, tg, tg_s, tg_s * bytes / 1e12, tg, tg_host, tg, tg_sample, on_dev, 3 * tg,
           f[2] * 1e3);
    printf("batched decode (tok/s): 1 stream %.1f | 4 streams %.1f aggregate, %.1f each | 16 "
           "streams %.1f aggregate, %.1f each (%.2fx one stream)\n",
           agg[0], agg[1], agg[1] / 4, agg[2], agg[2] / 16, agg[2] / agg[0]);
    q35_state_free(s);
    q35_model_free(m);
    free(ids);
    free(logits);
    return 0;
}
