/* bench_int8_mlx.c — not a test: the same-process A/B of MLX affine
 * matmuls (group 64, f16 scales) on the exact float path and the integer
 * path of each x86 set, next to Q4_0 of the same shape, in process CPU time
 * (other load on a shared machine counts less), best of REPS, 1 thread.
 * Build against a build tree's libraries:
 *   gcc -O2 -Isrc -Iinclude tests/kernels/bench_int8_mlx.c BUILD/libq35_kernels.a \
 *       BUILD/libq35_core.a -lpthread -lm -o bench_int8_mlx
 *   ./bench_int8_mlx ROWS COLS T BITS REPS */
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
        fprintf(stderr, "usage: bench_int8_mlx ROWS COLS T BITS REPS\n");
        return 2;
    }
    int rows = atoi(argv[1]), cols = atoi(argv[2]), T = atoi(argv[3]), bits = atoi(argv[4]);
    int reps = atoi(argv[5]);
    q35_dtype dt = bits == 2   ? Q35_DT_MLX2
                   : bits == 3 ? Q35_DT_MLX3
                   : bits == 4 ? Q35_DT_MLX4
                   : bits == 5 ? Q35_DT_MLX5
                   : bits == 6 ? Q35_DT_MLX6
                               : Q35_DT_MLX8;
    size_t qb = (size_t)rows * (size_t)cols * (size_t)bits / 8, ng = (size_t)rows * cols / 64;
    uint8_t *q = malloc(qb);
    uint16_t *s = malloc(2 * ng), *z = malloc(2 * ng);
    for (size_t i = 0; i < qb; i++)
        q[i] = (uint8_t)rand();
    for (size_t i = 0; i < ng; i++) {
        s[i] = q35_f32_to_f16(0.01f);
        z[i] = q35_f32_to_f16(-0.08f);
    }
    q35_mlx_affine ma = {q, s, z, Q35_DT_F16, 64};
    q35_tensor wm = {dt, 2, {rows, cols}, &ma};
    size_t rb4 = q35_row_bytes(Q35_DT_Q4_0, cols);
    uint8_t *w4 = malloc(rb4 * rows);
    for (size_t i = 0; i < rb4 * rows; i++)
        w4[i] = (uint8_t)rand();
    for (size_t o = 0; o < rb4 * rows; o += 18) {
        uint16_t h = q35_f32_to_f16(0.01f);
        memcpy(w4 + o, &h, 2);
    }
    q35_tensor wq = {Q35_DT_Q4_0, 2, {rows, cols}, w4};
    float *x = malloc(4 * (size_t)T * cols);
    for (int i = 0; i < T * cols; i++)
        x[i] = rand() / (float)RAND_MAX - 0.5f;
    float *y = malloc(4 * (size_t)T * rows);
    const char *names[] = {"avx2", "avx512", "amx"};
    const q35_kernels *ks[] = {q35_kernels_avx2(), q35_kernels_avx512(), q35_kernels_amx()};
    for (int i = 0; i < 3; i++) {
        if (!ks[i]) continue;
        for (int m = 0; m < 3; m++) { /* mlx exact, mlx int8, q4_0 (its own choice) */
            const q35_kernels *k = m ? q35_kernels_int8(ks[i]) : ks[i];
            const q35_tensor *w = m == 2 ? &wq : &wm;
            size_t nb = q35_acts_bytes(k, T, cols);
            void *buf = aligned_alloc(64, (nb + 64) / 64 * 64 + 64);
            double best = 1e9;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                q35_acts a = q35_acts_prepare(k, x, cols, T, cols, buf);
                q35_matmul(k, NULL, w, &a, y, rows);
                double d = now() - t0;
                if (d < best) best = d;
            }
            printf("%-7s %-10s T=%-3d %8.3f ms  %6.2f Gw/s\n", names[i],
                   m == 0   ? "mlx exact"
                   : m == 1 ? "mlx int8"
                            : "q4_0",
                   T, best * 1e3, (double)rows * cols * T / best / 1e9);
            free(buf);
        }
    }
    return 0;
}
