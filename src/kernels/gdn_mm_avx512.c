/* gdn_mm_avx512.c — gdn_mm (gdn_mm.h) with AVX-512: tiles of 4 rows x 4
 * vectors (64 columns) of accumulators; per p, 4 loads of b and 4
 * broadcasts of x feed 16 FMAs (6 rows spill with GCC 12 and ran at
 * 54 GFMA/s against 76 on this Xeon VM). The column block of b
 * (kd x 64 floats, 32 KB at kd = 128) stays in L1 while every row tile
 * passes over it; y is read (where keep != 0) and written once. */
#include <immintrin.h>

#include "kernels/gdn_mm.h"

/* full unrolling keeps the tile in registers */
#define UNROLL _Pragma("GCC unroll 8")
#define MR 4
#define NV 4

static inline __attribute__((always_inline)) void tile(int mr, int nv, __mmask16 last, int kd,
                                                       const float *x, int64_t ldx, const float *b,
                                                       int64_t ldb, float *y, int64_t ldy,
                                                       float keep) {
    __m512 acc[MR][NV];
    __mmask16 mk[NV];
    UNROLL for (int v = 0; v < NV; v++) mk[v] = v < nv - 1 ? (__mmask16)0xffff : last;
    __m512 kv = _mm512_set1_ps(keep);
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int v = 0; v < NV; v++) acc[i][v] =
        _mm512_setzero_ps();
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) if (i < mr && v < nv && keep != 0) acc[i][v] =
            _mm512_mul_ps(kv, _mm512_maskz_loadu_ps(mk[v], y + i * ldy + 16 * v));
    for (int p = 0; p < kd; p++) {
        __m512 bv[NV] = {0};
        UNROLL for (int v = 0; v < NV; v++) if (v < nv) bv[v] =
            _mm512_maskz_loadu_ps(mk[v], b + p * ldb + 16 * v);
        UNROLL for (int i = 0; i < MR; i++) {
            if (i >= mr) break;
            __m512 xi = _mm512_set1_ps(x[i * ldx + p]);
            UNROLL for (int v = 0; v < NV; v++) if (v < nv) acc[i][v] =
                _mm512_fmadd_ps(xi, bv[v], acc[i][v]);
        }
    }
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int v = 0; v < NV; v++) if (i < mr && v < nv)
        _mm512_mask_storeu_ps(y + i * ldy + 16 * v, mk[v], acc[i][v]);
}

#define TILE(R, V)                                                                                 \
    case (R)*8 + (V):                                                                              \
        tile(R, V, last, kd, xr, ldx, bj, ldb, yr, ldy, keep);                                     \
        break;
#define TILES(R) TILE(R, 1) TILE(R, 2) TILE(R, 3) TILE(R, 4)

void q35_gdn_mm_avx512(int m, int n, int kd, const float *x, int64_t ldx, const float *b,
                       int64_t ldb, float *y, int64_t ldy, float keep) {
    for (int j0 = 0; j0 < n; j0 += 16 * NV) {
        int left = n - j0, nv = left >= 16 * NV ? NV : (left + 15) / 16;
        int r = left - 16 * (nv - 1);
        __mmask16 last = r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1);
        const float *bj = b + j0;
        for (int i0 = 0; i0 < m; i0 += MR) {
            int mr = m - i0 < MR ? m - i0 : MR;
            const float *xr = x + i0 * ldx;
            float *yr = y + i0 * ldy + j0;
            switch (mr * 8 + nv) { TILES(1) TILES(2) TILES(3) TILES(4) TILES(5) TILES(6) }
        }
    }
}
