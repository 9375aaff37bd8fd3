/* gdn_bench.c — the DeltaNet recurrence alone, A/B in one process: the
 * kernel set's token-by-token gdn_scan against the chunked form
 * (forward/gdn_chunk.c) on the 0.8B's head shape (dk = dv = 128), 16 value
 * heads, one thread, runs of T tokens; the figures of BENCHMARKS.md
 * "Forward: chunked DeltaNet, TTFT, memory". Alternates the two forms REPS
 * times and prints the best of each in microseconds per token (all heads).
 *
 * usage: gdn_bench [T] [REPS]      (Q35_KERNELS picks the set)
 * build: cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/gdn_bench.c \
 *        BUILD/libq35_forward.a BUILD/libq35_model.a BUILD/libq35_kernels.a \
 *        BUILD/libq35_formats.a BUILD/libq35_core.a -lm -lpthread
 *        (plus BUILD/src/cuda/libq35_cuda.a, libcudart_static.a, -lstdc++
 *        -ldl -lrt where the CUDA backend is built) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward/forward.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 128, reps = argc > 2 ? atoi(argv[2]) : 20;
    if (T < 1 || T > 4096) T = 128;
    const int nv = 16, dk = 128, dv = 128, C = 2 * nv * dk + nv * dv;
    const q35_kernels *k = q35_kernels_best();
    float *qkv = malloc(sizeof(float) * (size_t)T * C),
          *o = malloc(sizeof(float) * (size_t)T * nv * dv);
    float *g = malloc(sizeof(float) * (size_t)T * nv),
          *dec = malloc(sizeof(float) * (size_t)T * nv);
    float *beta = malloc(sizeof(float) * (size_t)T * nv);
    float *S = calloc((size_t)nv * dk * dv, sizeof(float)), *u = malloc(sizeof(float) * dv);
    float *work = malloc(sizeof(float) * q35_gdn_chunk_work(dk, dv));
    unsigned x = 1;
    for (size_t i = 0; i < (size_t)T * C; i++)
        qkv[i] = (float)((x = x * 1103515245u + 12345u) >> 16) / 65536.0f * 0.02f - 0.01f;
    for (int i = 0; i < T * nv; i++) {
        g[i] = -0.05f - 0.5f * (float)(i % 7) / 7;
        dec[i] = expf(g[i]);
        beta[i] = 0.5f;
    }
    double best_scan = 1e30, best_chunk = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_us();
        for (int j = 0; j < nv; j++)
            k->gdn_scan(S + (size_t)j * dk * dv, dk, dv, T, qkv + j * dk, qkv + nv * dk + j * dk, C,
                        qkv + 2 * nv * dk + j * dv, C, dec + j, beta + j, nv, o + j * dv, nv * dv,
                        u);
        double t1 = now_us();
        for (int j = 0; j < nv; j++)
            q35_gdn_chunked(k, S + (size_t)j * dk * dv, dk, dv, T, qkv + j * dk,
                            qkv + nv * dk + j * dk, C, qkv + 2 * nv * dk + j * dv, C, g + j,
                            beta + j, nv, o + j * dv, nv * dv, work);
        double t2 = now_us();
        if (t1 - t0 < best_scan) best_scan = t1 - t0;
        if (t2 - t1 < best_chunk) best_chunk = t2 - t1;
    }
    printf("%s T=%d: recurrent %.2f us/token, chunked (%d) %.2f us/token (%.2fx)\n", k->name, T,
           best_scan / T, Q35_GDN_CHUNK, best_chunk / T, best_scan / best_chunk);
    free(qkv), free(o), free(g), free(dec), free(beta), free(S), free(u), free(work);
    return 0;
}
