/* bench_int8_x16_ymm.c — not a test: the same-process A/B behind the AVX2
 * / AVX-VNNI kernels of the load-time 16-row forms (int8_x86_x16_ymm.h).
 * For one [rows, cols] matrix of a dtype (q35_dtype number) it times, one
 * thread, best of REPS in process CPU time (other load on a shared machine
 * counts less), q35_i8_matmul with
 *   file  : the AVX2 set on the file's layout (register tiles, packed
 *           panels from their min_t)
 *   x16   : the AVX2 set on the x16 form (as the set is: micro-kernels,
 *           panels from their min_t)
 *   xtile : the x16 micro-kernels at every T
 *   xpanel: the x16 panels at every T
 *   vfile, vx16, vtile, vpanel : the same with the AVX-VNNI set (0 where
 *           the CPU lacks it)
 * for each T given, and prints G multiply-adds per CPU-second. FLUSH_MB=n
 * reads n MB before each timed call (the weights then come from memory).
 *   gcc -O2 -Isrc -Iinclude tests/kernels/bench_int8_x16_ymm.c \
 *       BUILD/libq35_kernels.a BUILD/libq35_core.a -lpthread -lm -o bench
 *   ./bench ROWS COLS DTYPE REPS T...  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/half.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/repack_x16.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned flush(const unsigned char *p, size_t n) {
    unsigned s = 0;
    for (size_t i = 0; i < n; i += 64)
        s += p[i];
    return s;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_int8_x16_ymm ROWS COLS DTYPE REPS T...\n");
        return 2;
    }
    int rows = atoi(argv[1]), cols = atoi(argv[2]);
    q35_dtype dt = (q35_dtype)atoi(argv[3]);
    int reps = atoi(argv[4]);
    const q35_i8_kernels *base[2] = {q35_i8_kernels_avx2(), q35_i8_kernels_avxvnni()};
    const q35_dtype xdt = q35_dtype_x16_of(dt);
    if (!base[0] || xdt == Q35_DT_COUNT) {
        fprintf(stderr, "no AVX2 here, or no x16 form of that dtype\n");
        return 1;
    }
    const char *fm = getenv("FLUSH_MB");
    size_t fbytes = fm ? (size_t)atol(fm) << 20 : 0;
    unsigned char *fbuf = fbytes ? malloc(fbytes) : NULL;
    if (fbuf) memset(fbuf, 1, fbytes);
    unsigned fsum = 0;
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
    uint8_t *wx = malloc(q35_x16_bytes(dt, rows, cols));
    q35_x16_pack(dt, w, rows, cols, 0, (rows + 15) / 16, wx);
    q35_tensor wxt = {xdt, 2, {rows, cols}, wx};
    /* per set: as it is, tiles only, panels only */
    q35_i8_kernels var[2][3];
    for (int s = 0; s < 2; s++) {
        if (!base[s]) continue;
        for (int v = 0; v < 3; v++)
            var[s][v] = *base[s];
        var[s][1].mk[xdt].max_t = 0;
        var[s][1].panel[xdt].kernel = NULL;
        var[s][2].panel[xdt].min_t = 1;
    }
    printf("%s [%d x %d], 1 thread, GMAC per CPU-second (best of %d)\n", q35_dtype_name(dt), rows,
           cols, reps);
    printf("%6s %8s %8s %8s %8s %8s %8s %8s %8s\n", "T", "file", "x16", "xtile", "xpanel", "vfile",
           "vx16", "vtile", "vpanel");
    for (int ai = 5; ai < argc; ai++) {
        int T = atoi(argv[ai]);
        float *x = malloc((size_t)T * cols * sizeof *x);
        float *y = malloc((size_t)T * rows * sizeof *y);
        for (int64_t i = 0; i < (int64_t)T * cols; i++)
            x[i] = (float)rand() / RAND_MAX - 0.5f;
        size_t st = q35_q8_row_stride(cols);
        uint8_t *q8 = aligned_alloc(64, (size_t)T * st);
        base[0]->quantize(x, cols, T, cols, q8);
        double best[8];
        for (int v = 0; v < 8; v++)
            best[v] = 1e30;
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < 8; v++) {
                if (!base[v / 4]) continue;
                if (fbuf) fsum += flush(fbuf, fbytes);
                const int i = v % 4;
                double t0 = now();
                q35_i8_matmul(&var[v / 4][i ? i - 1 : 0], i ? &wxt : &wt, q8, st, T, y, rows, 0,
                              rows);
                double dtm = now() - t0;
                if (dtm < best[v]) best[v] = dtm;
            }
        double macs = (double)rows * cols * T * 1e-9;
        printf("%6d", T);
        for (int v = 0; v < 8; v++)
            printf(" %8.1f", best[v] < 1e29 ? macs / best[v] : 0.0);
        printf("\n");
        free(x);
        free(y);
        free(q8);
    }
    free(w);
    free(wx);
    free(fbuf);
    return fsum == 1 ? 3 : 0; /* keeps the flushes */
}
