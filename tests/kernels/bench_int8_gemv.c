/* bench_int8_gemv.c — not a test: the same-process A/B behind the max_t
 * thresholds in int8_avx2.c / int8_avx512.c. For one [rows, cols] matrix of
 * dtype (a q35_dtype number) it times q35_matmul of T tokens on each x86
 * float set (exact) and its integer twin, 2 threads, best of REPS, in
 * process CPU time (so that other load on a shared machine counts less).
 * Build against a build tree's libraries:
 *   gcc -O2 -Isrc -Iinclude tests/kernels/bench_int8_gemv.c BUILD/libq35_kernels.a \
 *       BUILD/libq35_core.a -lpthread -lm -o bench_int8_gemv
 *   ./bench_int8_gemv ROWS COLS T DTYPE REPS */
#include "core/half.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_int8_gemv ROWS COLS T DTYPE REPS\n");
        return 2;
    }
    int rows = atoi(argv[1]), cols = atoi(argv[2]), T = atoi(argv[3]);
    q35_dtype dt = (q35_dtype)atoi(argv[4]);
    int reps = atoi(argv[5]);
    size_t rb = q35_row_bytes(dt, cols);
    uint8_t *w = malloc(rb * rows);
    for (size_t i = 0; i < rb * rows; i++)
        w[i] = rand();
    size_t bb = q35_dtype_block_bytes(dt);
    for (size_t o = 0; o < rb * rows; o += bb) {
        uint16_t h = q35_f32_to_f16(0.01f);
        if (dt == Q35_DT_Q6_K)
            memcpy(w + o + 208, &h, 2);
        else {
            memcpy(w + o, &h, 2);
            if (dt == Q35_DT_Q4_K) memcpy(w + o + 2, &h, 2);
        }
    }
    q35_tensor wt = {dt, 2, {rows, cols}, w};
    float *x = malloc(4 * T * cols);
    for (int i = 0; i < T * cols; i++)
        x[i] = rand() / (float)RAND_MAX - 0.5f;
    float *y = malloc(4 * T * rows);
    const char *names[] = {"generic", "avx2", "avx512", "amx"};
    const q35_kernels *ks[] = {q35_kernels_generic(), q35_kernels_avx2(), q35_kernels_avx512(),
                               q35_kernels_amx()};
    q35_threadpool *pool = q35_threadpool_new(2, NULL);
    for (int i = 1; i < 4; i++)
        for (int m = 0; m < 2; m++) {
            const q35_kernels *k = m ? q35_kernels_int8(ks[i]) : ks[i];
            size_t nb = q35_acts_bytes(k, T, cols);
            void *buf = aligned_alloc(64, (nb + 64) / 64 * 64 + 64);
            double best = 1e9;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                q35_acts a = q35_acts_prepare(k, x, cols, T, cols, buf);
                q35_matmul(k, pool, &wt, &a, y, rows);
                double dt2 = now() - t0;
                if (dt2 < best) best = dt2;
            }
            printf("%-7s %-5s T=%d: %.3f ms  %.1f GB/s  %.1f GMAC/s\n", names[i],
                   m ? "int8" : "exact", T, best * 1e3, rb * rows / best / 1e9,
                   (double)rows * cols * T / best / 1e9);
            free(buf);
        }
    return 0;
}
