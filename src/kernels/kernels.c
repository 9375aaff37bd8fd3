/* kernels.c — picking a kernel set for the running CPU, and the threaded
 * matmul that every projection in the forward pass goes through. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"

const q35_kernels *q35_kernels_best(void) {
    const char *force = getenv("Q35_KERNELS");
    const q35_kernels *k = NULL;
    if (force && *force) {
        if (!strcmp(force, "generic"))
            k = q35_kernels_generic();
        else if (!strcmp(force, "avx2"))
            k = q35_kernels_avx2();
        else if (!strcmp(force, "avx512"))
            k = q35_kernels_avx512();
        else if (!strcmp(force, "neon"))
            k = q35_kernels_neon();
        if (k) return k;
    }
    if ((k = q35_kernels_amx())) return k;
    if ((k = q35_kernels_avx512())) return k;
    if ((k = q35_kernels_avx2())) return k;
    if ((k = q35_kernels_neon())) return k;
    return q35_kernels_generic();
}

size_t q35_acts_bytes(const q35_kernels *k, int T, int64_t cols) {
    return k->pack_bytes ? k->pack_bytes(T, cols) : 0;
}

q35_acts q35_acts_prepare(const q35_kernels *k, const float *x, int64_t ldx, int T, int64_t cols,
                          void *buf) {
    q35_acts a = {x, ldx, cols, T, NULL};
    if (q35_acts_bytes(k, T, cols) > 0) {
        k->pack(x, ldx, T, cols, buf);
        a.packed = buf;
    }
    return a;
}

typedef struct matmul_job {
    const q35_kernels *k;
    const q35_tensor *w;
    const q35_acts *a;
    float *y;
    int64_t ldy;
} matmul_job;

static void matmul_range(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const matmul_job *j = ctx;
    j->k->matmul(j->w, j->a, j->y, j->ldy, begin, end);
}

void q35_matmul(const q35_kernels *k, q35_threadpool *pool, const q35_tensor *w, const q35_acts *a,
                float *y, int64_t ldy) {
    matmul_job j = {k, w, a, y, ldy};
    int64_t rows = w->shape[0];
    /* Enough chunks to balance two to a few dozen threads, each big enough
     * (>= ~64 KB of weights) that handing it out costs nothing; a multiple
     * of 32 rows so that tiled kernels see whole tiles. */
    int64_t row_bytes = w->shape[1] * (int64_t)q35_dtype_size(w->dtype);
    int64_t chunk = (65536 + row_bytes - 1) / row_bytes;
    if (chunk < 32) chunk = 32;
    if (chunk > 256) chunk = 256;
    chunk = (chunk + 31) / 32 * 32;
    q35_threadpool_for(pool, rows, chunk, matmul_range, &j);
}

/* Variants this architecture cannot build (their files are compiled only
 * for their own architecture). */
#if !defined(__x86_64__)
const q35_kernels *q35_kernels_avx2(void) {
    return NULL;
}
const q35_kernels *q35_kernels_avx512(void) {
    return NULL;
}
const q35_kernels *q35_kernels_amx(void) {
    return NULL;
}
#endif
#if !defined(__aarch64__)
const q35_kernels *q35_kernels_neon(void) {
    return NULL;
}
#endif
