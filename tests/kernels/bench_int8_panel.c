/* bench_int8_panel.c — not a test: the same-process A/B behind the
 * packed panels' min_t and the register tiles' max_t (int8_avx2.c,
 * int8_avxvnni.c, int8_avx512.c). For one [rows, cols] matrix of a dtype
 * (q35_dtype number) and an integer set (avx2, avxvnni, avx512vnni) it
 * times, one thread, best of REPS in process CPU time:
 *   float : q35_matmul on that set's float kernels, exact mode
 *   tile  : the set's register tiles (q35_i8_matmul with the panel off)
 *   panel : the set's packed panels (q35_i8_matmul with min_t 1)
 * for each T given, and prints G multiply-adds per CPU-second.
 * Build against a build tree's libraries:
 *   gcc -O2 -Isrc -Iinclude tests/kernels/bench_int8_panel.c BUILD/libq35_kernels.a \
 *       BUILD/libq35_core.a -lpthread -lm -o bench_int8_panel
 *   ./bench_int8_panel SET ROWS COLS DTYPE REPS T...  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/half.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: bench_int8_panel SET ROWS COLS DTYPE REPS T...\n");
        return 2;
    }
    const q35_i8_kernels *set = !strcmp(argv[1], "avx2")      ? q35_i8_kernels_avx2()
                                : !strcmp(argv[1], "avxvnni") ? q35_i8_kernels_avxvnni()
                                                              : q35_i8_kernels_avx512vnni();
    const q35_kernels *k =
        !strcmp(argv[1], "avx512vnni") ? q35_kernels_avx512() : q35_kernels_avx2();
    if (!set || !k) {
        fprintf(stderr, "set %s not on this CPU\n", argv[1]);
        return 1;
    }
    int rows = atoi(argv[2]), cols = atoi(argv[3]);
    q35_dtype dt = (q35_dtype)atoi(argv[4]);
    int reps = atoi(argv[5]);
    q35_i8_kernels tiles = *set, panels = *set;
    memset(&tiles.panel[dt], 0, sizeof tiles.panel[dt]);
    tiles.mk[dt].max_t = 0;
    panels.panel[dt].min_t = 1;
    size_t rb = q35_row_bytes(dt, cols);
    uint8_t *w = malloc((size_t)rows * rb);
    srand(1);
    for (size_t i = 0; i < (size_t)rows * rb; i++)
        w[i] = (uint8_t)rand();
    size_t bb = q35_dtype_block_bytes(dt);
    for (size_t o = 0; o < (size_t)rows * rb; o += bb) { /* sane f16 scales */
        uint16_t h = q35_f32_to_f16(0.01f);
        size_t at = dt == Q35_DT_Q6_K ? 208 : 0;
        memcpy(w + o + at, &h, 2);
        if (dt == Q35_DT_Q4_K) memcpy(w + o + 2, &h, 2);
    }
    q35_tensor wt = {dt, 2, {rows, cols}, w};
    printf("%s %s [%d x %d], 1 thread, GMAC per CPU-second (best of %d)\n", set->name,
           q35_dtype_name(dt), rows, cols, reps);
    printf("%6s %8s %8s %8s\n", "T", "float", "tile", "panel");
    for (int ai = 6; ai < argc; ai++) {
        int T = atoi(argv[ai]);
        float *x = malloc((size_t)T * cols * sizeof *x);
        float *y = malloc((size_t)T * rows * sizeof *y);
        for (int64_t i = 0; i < (int64_t)T * cols; i++)
            x[i] = (float)rand() / RAND_MAX - 0.5f;
        size_t ne = q35_acts_bytes(k, T, cols), ldq = q35_q8_row_stride(cols);
        void *bufe = aligned_alloc(64, (ne + 63) / 64 * 64);
        uint8_t *q8 = aligned_alloc(64, (size_t)T * ldq);
        set->quantize(x, cols, T, cols, q8);
        q35_acts ae = q35_acts_prepare(k, x, cols, T, cols, bufe);
        double best[3] = {1e30, 1e30, 1e30};
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < 3; v++) {
                if (v == 2 && !panels.panel[dt].kernel) continue;
                double t0 = now();
                if (v == 0)
                    q35_matmul(k, NULL, &wt, &ae, y, rows);
                else
                    q35_i8_matmul(v == 1 ? &tiles : &panels, &wt, q8, ldq, T, y, rows, 0, rows);
                double dtm = now() - t0;
                if (dtm < best[v]) best[v] = dtm;
            }
        double macs = (double)rows * cols * T * 1e-9;
        printf("%6d %8.1f %8.1f %8.1f\n", T, macs / best[0], macs / best[1], macs / best[2]);
        free(x);
        free(y);
        free(bufe);
        free(q8);
    }
    free(w);
    return 0;
}
