/* bench_int8_amx.c — not a test: the same-process A/B behind
 * q35_amx_i8_min_t and the AVX-512 VNNI max_t values. For one [rows, cols]
 * matrix of a dtype (q35_dtype number) it times, one thread, best of REPS
 * in process CPU time (other load on a shared machine counts less):
 *   float : q35_matmul on the amx set, exact mode (AMX-BF16 / AVX-512 float)
 *   vnni  : the AVX-512 VNNI micro-kernels (q35_i8_matmul) over the q8 rows
 *   amx8  : q35_amx_i8_matmul over the same q8 rows
 *   panel : the AVX-512 VNNI set without AMX (q35_i8_avx512vnni_set: its
 *           packed panels from their min_t, register tiles below)
 *   x16   : the AVX-512 VNNI micro-kernels of the load-time 16-row form
 *           (repack_x16.h; Q8_0 / Q4_0 / Q6_K, else 0)
 *   amx16 : AMX-INT8 tiles reading that form (not Q6_K's)
 * for each T given, and prints G multiply-adds per CPU-second. With
 * FLUSH_MB=n in the environment, n MB are read before each timed call, so
 * that every variant finds the weights as far from the core as the others
 * (without it, the four variants that read the file's layout in a row find
 * it in the L3 after the first, the x16 form misses there after them).
 * Build against a build tree's libraries:
 *   gcc -O2 -Isrc -Iinclude tests/kernels/bench_int8_amx.c BUILD/libq35_kernels.a \
 *       BUILD/libq35_core.a -lpthread -lm -o bench_int8_amx
 *   ./bench_int8_amx ROWS COLS DTYPE REPS T...  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/half.h"
#include "kernels/int8_amx.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/repack_x16.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Reads `n` bytes (the caches' contents go); returns their sum so the
 * reads stay. */
static unsigned flush(const unsigned char *p, size_t n) {
    unsigned s = 0;
    for (size_t i = 0; i < n; i += 64)
        s += p[i];
    return s;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_int8_amx ROWS COLS DTYPE REPS T...\n");
        return 2;
    }
    int rows = atoi(argv[1]), cols = atoi(argv[2]);
    q35_dtype dt = (q35_dtype)atoi(argv[3]);
    int reps = atoi(argv[4]);
    const q35_kernels *k = q35_kernels_amx();
    if (!k || !q35_amx_i8_available()) {
        fprintf(stderr, "no AMX-INT8 here\n");
        return 1;
    }
    const q35_kernels *k8 = q35_kernels_int8(k);
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
    const q35_dtype xdt = q35_dtype_x16_of(dt);
    uint8_t *wx = NULL;
    if (xdt != Q35_DT_COUNT) {
        wx = malloc(q35_x16_bytes(dt, rows, cols));
        q35_x16_pack(dt, w, rows, cols, 0, (rows + 15) / 16, wx);
    }
    q35_tensor wxt = {xdt, 2, {rows, cols}, wx};
    printf("%s [%d x %d], 1 thread, GMAC per CPU-second (best of %d)\n", q35_dtype_name(dt), rows,
           cols, reps);
    printf("%6s %8s %8s %8s %8s %8s %8s\n", "T", "float", "vnni", "amx8", "panel", "x16", "amx16");
    for (int ai = 5; ai < argc; ai++) {
        int T = atoi(argv[ai]);
        float *x = malloc((size_t)T * cols * sizeof *x);
        float *y = malloc((size_t)T * rows * sizeof *y);
        for (int64_t i = 0; i < (int64_t)T * cols; i++)
            x[i] = (float)rand() / RAND_MAX - 0.5f;
        size_t nb = q35_acts_bytes(k8, T, cols), ne = q35_acts_bytes(k, T, cols);
        void *buf = aligned_alloc(64, (nb + 63) / 64 * 64);
        void *bufe = aligned_alloc(64, (ne + 63) / 64 * 64);
        q35_acts a = q35_acts_prepare(k8, x, cols, T, cols, buf);
        q35_acts ae = q35_acts_prepare(k, x, cols, T, cols, bufe);
        double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < 6; v++) {
                if (v >= 4 && !wx) continue;
                if (v == 5 && dt == Q35_DT_Q6_K) continue; /* the head's form: VNNI only */
                if (fbuf) fsum += flush(fbuf, fbytes);
                double t0 = now();
                if (v == 0)
                    q35_matmul(k, NULL, &wt, &ae, y, rows);
                else if (v == 1)
                    q35_i8_matmul(k8->i8, &wt, a.q8, a.ldq8, T, y, rows, 0, rows);
                else if (v == 2)
                    q35_amx_i8_matmul(&wt, a.q8, a.ldq8, T, y, rows, 0, rows);
                else if (v == 3)
                    q35_i8_matmul(&q35_i8_avx512vnni_set, &wt, a.q8, a.ldq8, T, y, rows, 0, rows);
                else if (v == 4)
                    q35_i8_matmul(&q35_i8_avx512vnni_set, &wxt, a.q8, a.ldq8, T, y, rows, 0, rows);
                else
                    q35_amx_i8_matmul(&wxt, a.q8, a.ldq8, T, y, rows, 0, rows);
                double dtm = now() - t0;
                if (dtm < best[v]) best[v] = dtm;
            }
        double macs = (double)rows * cols * T * 1e-9;
        printf("%6d", T);
        for (int v = 0; v < 6; v++)
            printf(" %8.1f", best[v] < 1e29 ? macs / best[v] : 0.0);
        printf("\n");
        free(x);
        free(y);
        free(buf);
        free(bufe);
    }
    free(w);
    free(wx);
    free(fbuf);
    return fsum == 1 ? 3 : 0; /* keeps the flushes */
}
