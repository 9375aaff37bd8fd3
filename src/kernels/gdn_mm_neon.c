/* gdn_mm_neon.c — gdn_mm (gdn_mm.h) with NEON: tiles of 6 rows x 4
 * vectors (16 columns) of accumulators, 24 of the 32 registers; per p, 4
 * loads of b and 6 scalars of x feed 24 FMAs. The column block of b
 * (kd x 16 floats) stays in L1 while every row tile passes over it; y is
 * read (where keep != 0) and written once. Columns past the last whole
 * vector take the plain C definition's loop (the same order of terms). */
#include <arm_neon.h>

#include "kernels/gdn_mm.h"

/* full unrolling keeps the tile in registers */
#define UNROLL _Pragma("GCC unroll 8")
#define MR 6
#define NV 4

static inline __attribute__((always_inline)) void tile(int mr, int nv, int kd, const float *x,
                                                       int64_t ldx, const float *b, int64_t ldb,
                                                       float *y, int64_t ldy, float keep) {
    float32x4_t acc[MR][NV];
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int v = 0; v < NV; v++) acc[i][v] =
        vdupq_n_f32(0);
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) if (i < mr && v < nv && keep != 0) acc[i][v] =
            vmulq_n_f32(vld1q_f32(y + i * ldy + 4 * v), keep);
    for (int p = 0; p < kd; p++) {
        float32x4_t bv[NV] = {0};
        UNROLL for (int v = 0; v < NV; v++) if (v < nv) bv[v] = vld1q_f32(b + p * ldb + 4 * v);
        UNROLL for (int i = 0; i < MR; i++) {
            if (i >= mr) break;
            float xi = x[i * ldx + p];
            UNROLL for (int v = 0; v < NV; v++) if (v < nv) acc[i][v] =
                vfmaq_n_f32(acc[i][v], bv[v], xi);
        }
    }
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int v = 0; v < NV; v++) if (i < mr && v < nv)
        vst1q_f32(y + i * ldy + 4 * v, acc[i][v]);
}

#define TILE(R, V)                                                                                 \
    case (R)*8 + (V):                                                                              \
        tile(R, V, kd, xr, ldx, bj, ldb, yr, ldy, keep);                                           \
        break;
#define TILES(R) TILE(R, 1) TILE(R, 2) TILE(R, 3) TILE(R, 4)

void q35_gdn_mm_neon(int m, int n, int kd, const float *x, int64_t ldx, const float *b, int64_t ldb,
                     float *y, int64_t ldy, float keep) {
    int nvec = n / 4 * 4;
    for (int j0 = 0; j0 < nvec; j0 += 4 * NV) {
        int left = nvec - j0, nv = left >= 4 * NV ? NV : left / 4;
        const float *bj = b + j0;
        for (int i0 = 0; i0 < m; i0 += MR) {
            int mr = m - i0 < MR ? m - i0 : MR;
            const float *xr = x + i0 * ldx;
            float *yr = y + i0 * ldy + j0;
            switch (mr * 8 + nv) { TILES(1) TILES(2) TILES(3) TILES(4) TILES(5) TILES(6) }
        }
    }
    if (nvec < n) q35_gdn_mm_generic(m, n - nvec, kd, x, ldx, b + nvec, ldb, y + nvec, ldy, keep);
}
