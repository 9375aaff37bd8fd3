/* gdn_mm_avx2.c — gdn_mm (gdn_mm.h) with AVX2 + FMA: tiles of 6 rows x 2
 * vectors (16 columns) of accumulators, 12 of the 16 registers; per p, 2
 * loads of b and 6 broadcasts of x feed 12 FMAs. The column block of b
 * (kd x 16 floats, 8 KB at kd = 128) stays in L1 while every row tile
 * passes over it; y is read (where keep != 0) and written once. Columns
 * past the last whole vector go through masked loads and stores. */
#include <immintrin.h>

#include "kernels/gdn_mm.h"

/* full unrolling keeps the tile in registers */
#define UNROLL _Pragma("GCC unroll 8")
#define MR 6
#define NV 2

static inline __attribute__((always_inline)) __m256 load(const float *p, int cols, __m256i m) {
    return cols >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

static inline __attribute__((always_inline)) void tile(int mr, int nv, int full, int rest,
                                                       __m256i last, int kd, const float *x,
                                                       int64_t ldx, const float *b, int64_t ldb,
                                                       float *y, int64_t ldy, float keep) {
    __m256 acc[MR][NV];
    int cols[NV];
    UNROLL for (int v = 0; v < NV; v++) cols[v] = v < nv - 1 || full ? 8 : rest;
    __m256 kv = _mm256_set1_ps(keep);
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int v = 0; v < NV; v++) acc[i][v] =
        _mm256_setzero_ps();
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) if (i < mr && v < nv && keep != 0) acc[i][v] =
            _mm256_mul_ps(kv, load(y + i * ldy + 8 * v, cols[v], last));
    for (int p = 0; p < kd; p++) {
        __m256 bv[NV] = {0};
        UNROLL for (int v = 0; v < NV; v++) if (v < nv) bv[v] =
            load(b + p * ldb + 8 * v, cols[v], last);
        UNROLL for (int i = 0; i < MR; i++) {
            if (i >= mr) break;
            __m256 xi = _mm256_broadcast_ss(x + i * ldx + p);
            UNROLL for (int v = 0; v < NV; v++) if (v < nv) acc[i][v] =
                _mm256_fmadd_ps(xi, bv[v], acc[i][v]);
        }
    }
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int v = 0; v < NV; v++) {
        if (i >= mr || v >= nv) continue;
        if (cols[v] >= 8)
            _mm256_storeu_ps(y + i * ldy + 8 * v, acc[i][v]);
        else
            _mm256_maskstore_ps(y + i * ldy + 8 * v, last, acc[i][v]);
    }
}

#define TILE(R, V)                                                                                 \
    case ((R)*4 + (V)) * 2: tile(R, V, 0, rest, last, kd, xr, ldx, bj, ldb, yr, ldy, keep); break; \
    case ((R)*4 + (V)) * 2 + 1:                                                                    \
        tile(R, V, 1, rest, last, kd, xr, ldx, bj, ldb, yr, ldy, keep);                            \
        break;
#define TILES(R) TILE(R, 1) TILE(R, 2)

void q35_gdn_mm_avx2(int m, int n, int kd, const float *x, int64_t ldx, const float *b, int64_t ldb,
                     float *y, int64_t ldy, float keep) {
    for (int j0 = 0; j0 < n; j0 += 8 * NV) {
        int left = n - j0, nv = left >= 8 * NV ? NV : (left + 7) / 8;
        int rest = left - 8 * (nv - 1);
        __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest > 8 ? 8 : rest),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const float *bj = b + j0;
        for (int i0 = 0; i0 < m; i0 += MR) {
            int mr = m - i0 < MR ? m - i0 : MR;
            const float *xr = x + i0 * ldx;
            float *yr = y + i0 * ldy + j0;
            switch ((mr * 4 + nv) * 2 + (rest >= 8)) {
                TILES(1) TILES(2) TILES(3) TILES(4) TILES(5) TILES(6)
            }
        }
    }
}
