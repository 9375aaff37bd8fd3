/* kernels_avx512.c — the kernel ops for AVX-512 (F/BW/VL/DQ + BF16) CPUs,
 * compiled with AVX-512 flags and only reached through q35_kernels_avx512()
 * or q35_kernels_amx() after a run-time check. Two sets live here: "avx512",
 * and "amx", which is the same but multiplies inputs of many tokens on AMX
 * tiles (matmul_amx_avx512.c).
 *
 * matmul: one register tile of R weight rows x C tokens; each weight vector
 * is loaded and widened to float32 once and used for C tokens, each token
 * vector once for R rows. Every (row, token) accumulator sees the same
 * sequence of FMAs whatever the tile shape, so a result never depends on
 * how rows were split between threads or how tokens were grouped. Tails
 * (columns not a multiple of 16) go through masked loads. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels/cpu_features.h"
#include "kernels/gdn_mm.h"
#include "kernels/int8_amx.h"
#include "kernels/kernels.h"
#include "kernels/matmul_amx.h"
#include "kernels/microkernel.h"
#include "kernels/quant_block.h"
#include "kernels/quant_block_avx512.h"

#define TILE_R 4
#define TILE_C 4

/* An address to prefetch, possibly past the matrix (prefetches never
 * fault); computed as an integer, as pointer arithmetic past an object is
 * undefined. */
static inline const char *ahead(const uint8_t *p, int64_t bytes) {
    return (const char *)((uintptr_t)p + (uintptr_t)bytes);
}

static inline __m512 load_w(q35_dtype dt, const void *p, __mmask16 m) {
    switch (dt) {
    case Q35_DT_BF16: {
        __m256i h = _mm256_maskz_loadu_epi16(m, p);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case Q35_DT_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    default: return _mm512_maskz_loadu_ps(m, p);
    }
}

/* R x C tile: y[c*ldy + r] = w_r . x_c over n columns. dt, R and C are
 * constants at each call site; the unroll pragmas make gcc keep acc in
 * registers (it would not at -O2 otherwise). */
#define UNROLL _Pragma("GCC unroll 4")
static inline __attribute__((always_inline)) void tile(q35_dtype dt, const char *w, int64_t ldw,
                                                       const float *x, int64_t ldx, int64_t n,
                                                       float *y, int64_t ldy, const int R,
                                                       const int C) {
    __m512 acc[TILE_R][TILE_C];
    size_t es = q35_dtype_size(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m512 wv[TILE_R];
        /* Few tokens: memory-bound; the hardware prefetcher alone keeps too
         * few of the R row streams in flight. */
        if (C == 1)
            UNROLL for (int r = 0; r < R; r++)
                _mm_prefetch(w + r * ldw + k * es + 512, _MM_HINT_T0);
        UNROLL for (int r = 0; r < R; r++) wv[r] = load_w(dt, w + r * ldw + k * es, 0xffff);
        UNROLL for (int c = 0; c < C; c++) {
            __m512 xv = _mm512_loadu_ps(x + c * ldx + k);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        __m512 wv[TILE_R];
        UNROLL for (int r = 0; r < R; r++) wv[r] = load_w(dt, w + r * ldw + k * es, m);
        UNROLL for (int c = 0; c < C; c++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + c * ldx + k);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        _mm512_reduce_add_ps(acc[r][c]);
}

/* bf16 weights against packed token rows ("even/odd" form: per 32 columns,
 * the 16 even-indexed values of x, then the 16 odd ones). One 64-byte load
 * gives 32 weights; a shift and a mask turn the even and the odd ones into
 * float32 in place, which saves the widening shuffles of the plain path —
 * worth ~10% on the memory-bound single-token GEMV. */
static size_t eo_pack_bytes(int T, int64_t cols) {
    return (size_t)T * (size_t)((cols + 31) / 32) * 32 * sizeof(float);
}

static void eo_pack(const float *x, int64_t ldx, int T, int64_t cols, void *out) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int64_t nkb = (cols + 31) / 32;
    float *dst = out;
    for (int t = 0; t < T; t++) {
        const float *xr = x + t * ldx;
        for (int64_t kb = 0; kb < nkb; kb++) {
            int64_t left = cols - kb * 32;
            __mmask16 m0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 m1 = left >= 32   ? 0xffff
                           : left <= 16 ? 0
                                        : (__mmask16)((1u << (left - 16)) - 1);
            __m512 a = _mm512_maskz_loadu_ps(m0, xr + kb * 32);
            __m512 b = _mm512_maskz_loadu_ps(m1, xr + kb * 32 + 16);
            float *d = dst + (t * nkb + kb) * 32;
            _mm512_storeu_ps(d, _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(a, odd, b));
        }
    }
}

static inline __attribute__((always_inline)) void tile_eo(const uint16_t *w, int64_t ldw,
                                                          const float *xp, int64_t ldxp, int64_t n,
                                                          float *y, int64_t ldy, const int R,
                                                          const int C) {
    const __m512i odd_mask = _mm512_set1_epi32((int)0xffff0000u);
    __m512 acc[TILE_R][TILE_C];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 32) {
        __mmask32 m = n - k >= 32 ? 0xffffffffu : (__mmask32)((1u << (n - k)) - 1);
        __m512 we[TILE_R], wo[TILE_R];
        if (C == 1) /* memory-bound: keep more of the R row streams in flight */
            UNROLL for (int r = 0; r < R; r++) _mm_prefetch(w + r * ldw + k + 256, _MM_HINT_T0);
        else /* the FMAs for C tokens delay each load: fetch the next tile's rows */
            UNROLL for (int r = 0; r < R; r++)
                _mm_prefetch(ahead((const uint8_t *)w, ((R + r) * ldw + k) * 2), _MM_HINT_T0);
        UNROLL for (int r = 0; r < R; r++) {
            __m512i v = _mm512_maskz_loadu_epi16(m, w + r * ldw + k);
            we[r] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            wo[r] = _mm512_castsi512_ps(_mm512_and_si512(v, odd_mask));
        }
        UNROLL for (int c = 0; c < C; c++) {
            __m512 xe = _mm512_loadu_ps(xp + c * ldxp + k),
                   xo = _mm512_loadu_ps(xp + c * ldxp + k + 16);
            UNROLL for (int r = 0; r < R; r++) {
                acc[r][c] = _mm512_fmadd_ps(we[r], xe, acc[r][c]);
                acc[r][c] = _mm512_fmadd_ps(wo[r], xo, acc[r][c]);
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        _mm512_reduce_add_ps(acc[r][c]);
}

static inline __attribute__((always_inline)) void tile_eo_r(const uint16_t *w, int64_t ldw,
                                                            const float *xp, int64_t ldxp,
                                                            int64_t n, float *y, int64_t ldy,
                                                            const int R, int C) {
    switch (C) {
    case 1: tile_eo(w, ldw, xp, ldxp, n, y, ldy, R, 1); break;
    case 2: tile_eo(w, ldw, xp, ldxp, n, y, ldy, R, 2); break;
    case 3: tile_eo(w, ldw, xp, ldxp, n, y, ldy, R, 3); break;
    default: tile_eo(w, ldw, xp, ldxp, n, y, ldy, R, 4); break;
    }
}

static inline __attribute__((always_inline)) void tile_eo_any(const uint16_t *w, int64_t ldw,
                                                              const float *xp, int64_t ldxp,
                                                              int64_t n, float *y, int64_t ldy,
                                                              int R, int C) {
    switch (R) {
    case 1: tile_eo_r(w, ldw, xp, ldxp, n, y, ldy, 1, C); break;
    case 2: tile_eo_r(w, ldw, xp, ldxp, n, y, ldy, 2, C); break;
    case 3: tile_eo_r(w, ldw, xp, ldxp, n, y, ldy, 3, C); break;
    default: tile_eo_r(w, ldw, xp, ldxp, n, y, ldy, 4, C); break;
    }
}

static void matmul_eo(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                      int64_t r1) {
    int64_t n = w->shape[1], ldxp = (n + 31) / 32 * 32;
    const uint16_t *base = w->data;
    const float *xp = a->packed;
    int T = a->T;
    for (int64_t o = r0; o < r1; o += TILE_R) {
        int R = r1 - o < TILE_R ? (int)(r1 - o) : TILE_R;
        const uint16_t *wr = base + o * n;
        for (int t = 0; t < T; t += TILE_C) {
            int C = T - t < TILE_C ? T - t : TILE_C;
            const float *xt = xp + t * ldxp;
            float *yt = y + t * ldy + o;
            tile_eo_any(wr, n, xt, ldxp, n, yt, ldy, R, C);
        }
    }
}

/* ------------------------------------------------ quantized weights */

/* R x C tile over quantized rows (row stride ldw bytes, n columns): the
 * weights are widened in registers and used for C tokens. */
static inline __attribute__((always_inline)) void qtile(q35_dtype dt, const uint8_t *w, int64_t ldw,
                                                        const float *x, int64_t ldx, int64_t n,
                                                        float *y, int64_t ldy, const int R,
                                                        const int C) {
    __m512 acc[TILE_R][TILE_C];
    size_t bb = q35_dtype_block_bytes(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm512_setzero_ps();
    const uint8_t *wk = w;
    for (int64_t k = 0; k < n; k += Q35_QBLOCK, wk += bb) {
        __m512 w0[TILE_R], w1[TILE_R];
        /* Widening keeps the core busy enough that loads issued as the loop
         * reaches them arrive late: fetching the next tile's rows (R rows
         * further) one tile ahead measured +18% (Q8_0) and +27% (Q4_0) over
         * prefetching 512 bytes ahead for one token, +30-65% for 2-8. */
        UNROLL for (int r = 0; r < R; r++) _mm_prefetch(ahead(wk, (R + r) * ldw), _MM_HINT_T0);
        UNROLL for (int r = 0; r < R; r++)
            qblock_f32(dt, wk + r * ldw, qblock_scale(wk + r * ldw), &w0[r], &w1[r]);
        UNROLL for (int c = 0; c < C; c++) {
            __m512 x0 = _mm512_loadu_ps(x + c * ldx + k);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(w0[r], x0, acc[r][c]);
            __m512 x1 = _mm512_loadu_ps(x + c * ldx + k + 16);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(w1[r], x1, acc[r][c]);
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        _mm512_reduce_add_ps(acc[r][c]);
}

/* R x C tile over Q4_K / Q6_K rows: per super-block, each row's float
 * multipliers are computed once (scalar, 8 or 16 products), then its 256
 * weights are widened 16 at a time in registers and used for C tokens, in
 * tile()'s FMA order (k ascending by 16), so the bits are this set's
 * float32 matmul over the dequantized matrix. */
static inline __attribute__((always_inline)) void ktile(q35_dtype dt, const uint8_t *w, int64_t ldw,
                                                        const float *x, int64_t ldx, int64_t n,
                                                        float *y, int64_t ldy, const int R,
                                                        const int C) {
    __m512 acc[TILE_R][TILE_C];
    size_t bb = q35_dtype_block_bytes(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm512_setzero_ps();
    const uint8_t *wk = w;
    for (int64_t k = 0; k < n; k += Q35_KBLOCK, wk += bb) {
        float ms[TILE_R][16];
        /* the next tile's rows, one tile ahead, as for Q8_0 / Q4_0 (a
         * super-block spans 3 or 4 cache lines) */
        UNROLL for (int r = 0; r < R; r++) for (size_t off = 0; off < bb; off += 64)
            _mm_prefetch(ahead(wk, (R + r) * ldw + (int64_t)off), _MM_HINT_T0);
        UNROLL for (int r = 0; r < R; r++) kblock_scales16(dt, wk + r * ldw, ms[r]);
        if (dt == Q35_DT_Q4_K) {
            _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) {
                __m512 wv[TILE_R];
                UNROLL for (int r = 0; r < R; r++) wv[r] =
                    kblock_f32(dt, wk + r * ldw, i, ms[r], ms[r] + 8);
                UNROLL for (int c = 0; c < C; c++) {
                    __m512 xv = _mm512_loadu_ps(x + c * ldx + k + 16 * i);
                    UNROLL for (int r = 0; r < R; r++) acc[r][c] =
                        _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
                }
            }
        } else {
            /* Q6_K: 64 values q - 32 at a time as bytes (q6k_group), then
             * 16 at a time widened, converted and multiplied by their
             * sub-block's multiplier: the decoder's one product */
            _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
                __m512i q[TILE_R];
                UNROLL for (int r = 0; r < R; r++) q[r] = q6k_group(wk + r * ldw, g);
                _Pragma("GCC unroll 4") for (int m = 0; m < 4; m++) {
                    int i = 4 * g + m;
                    __m512 wv[TILE_R];
                    UNROLL for (int r = 0; r < R; r++) {
                        __m128i q16 = m == 0   ? _mm512_castsi512_si128(q[r])
                                      : m == 1 ? _mm512_extracti32x4_epi32(q[r], 1)
                                      : m == 2 ? _mm512_extracti32x4_epi32(q[r], 2)
                                               : _mm512_extracti32x4_epi32(q[r], 3);
                        wv[r] = _mm512_mul_ps(_mm512_set1_ps(ms[r][i]),
                                              _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q16)));
                    }
                    UNROLL for (int c = 0; c < C; c++) {
                        __m512 xv = _mm512_loadu_ps(x + c * ldx + k + 16 * i);
                        UNROLL for (int r = 0; r < R; r++) acc[r][c] =
                            _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
                    }
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        _mm512_reduce_add_ps(acc[r][c]);
}

/* Many tokens: rows per dequantized panel (a multiple of PT_R; 48 rows of
 * 3584 columns are 688 KB of float32, inside L2), the panel's register
 * tile, and the token count from which the panel beats widening in
 * registers (same-process A/B, 2 threads, [1024, 3584], both dtypes: even
 * at 32 tokens, +8% at 40, +12% at 48-64, even again from 128 where both
 * wait on L2; 6 x 4 tiles +14-20% over 4 x 4, 48-row panels +2-7% over 24). */
#define QPANEL 48
#define PT_R 6
#define PT_C 4
#define QPANEL_MIN_T(dt) 32

/* The register tile of the panel path, PT_R rows x PT_C tokens of float32
 * weights (n a multiple of 16): wider than tile()'s, as the panel's
 * weights come from L2 and fewer loads per FMA pay. Each accumulator sees
 * tile()'s FMA sequence, so the bits are the same. */
static inline __attribute__((always_inline)) void ptile(const float *w, int64_t n, const float *x,
                                                        int64_t ldx, float *y, int64_t ldy) {
    __m512 acc[PT_R][PT_C];
    _Pragma("GCC unroll 8") for (int r = 0; r < PT_R; r++)
        _Pragma("GCC unroll 8") for (int c = 0; c < PT_C; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) {
        __m512 wv[PT_R];
        _Pragma("GCC unroll 8") for (int r = 0; r < PT_R; r++) wv[r] =
            _mm512_load_ps(w + r * n + k);
        _Pragma("GCC unroll 8") for (int c = 0; c < PT_C; c++) {
            __m512 xv = _mm512_loadu_ps(x + c * ldx + k);
            _Pragma("GCC unroll 8") for (int r = 0; r < PT_R; r++) acc[r][c] =
                _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    _Pragma("GCC unroll 8") for (int c = 0; c < PT_C; c++)
        _Pragma("GCC unroll 8") for (int r = 0; r < PT_R; r++) y[c * ldy + r] =
            _mm512_reduce_add_ps(acc[r][c]);
}

/* One quantized row as float32 for the panel: the values the tiles widen
 * it to. */
static void panel_row(q35_dtype dt, const uint8_t *row, int64_t n, float *dst) {
    size_t bb = q35_dtype_block_bytes(dt);
    if (dt == Q35_DT_Q4_K || dt == Q35_DT_Q6_K) {
        for (int64_t kb = 0; kb < n / Q35_KBLOCK; kb++) {
            const uint8_t *b = row + kb * bb;
            float mul[16], sub[8];
            q35_kblock_scales(dt, b, mul, sub);
            for (int i = 0; i < 16; i++)
                _mm512_store_ps(dst + kb * Q35_KBLOCK + 16 * i,
                                dt == Q35_DT_Q4_K ? kblock_f32(Q35_DT_Q4_K, b, i, mul, sub)
                                                  : kblock_f32(Q35_DT_Q6_K, b, i, mul, sub));
        }
        return;
    }
    for (int64_t kb = 0; kb < n / Q35_QBLOCK; kb++) {
        __m512 w0, w1, d = qblock_scale(row + kb * bb);
        if (dt == Q35_DT_Q8_0)
            qblock_f32(Q35_DT_Q8_0, row + kb * bb, d, &w0, &w1);
        else
            qblock_f32(Q35_DT_Q4_0, row + kb * bb, d, &w0, &w1);
        _mm512_store_ps(dst + kb * Q35_QBLOCK, w0);
        _mm512_store_ps(dst + kb * Q35_QBLOCK + 16, w1);
    }
}

#include "kernels/float_tiles.h"

/* a->packed is the even/odd form (the "avx512" set packs every input). */
static void matmul_avx512(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                          int64_t r1) {
    if (a->packed && w->dtype == Q35_DT_BF16)
        matmul_eo(w, a, y, ldy, r0, r1);
    else
        matmul_float(w, a, y, ldy, r0, r1);
}

/* y_i = sum_p w[i, p] b_p: 4 outputs x 64 columns of accumulators, each b
 * row loaded once per 4 outputs. */
static void wsum_avx512(const float *w, int64_t ldw, int na, const float *b, int64_t ldb, int nb,
                        int n, float *y, int64_t ldy) {
    for (int i0 = 0; i0 < na; i0 += 4) {
        int ni = na - i0 < 4 ? na - i0 : 4;
        for (int j0 = 0; j0 < n; j0 += 64) {
            __mmask16 m[4];
            __m512 acc[4][4];
            UNROLL for (int v = 0; v < 4; v++) {
                int left = n - j0 - 16 * v;
                m[v] = left <= 0 ? 0 : left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
                UNROLL for (int i = 0; i < 4; i++) acc[i][v] = _mm512_setzero_ps();
            }
            for (int p = 0; p < nb; p++) {
                __m512 bv[4];
                UNROLL for (int v = 0; v < 4; v++) bv[v] =
                    _mm512_maskz_loadu_ps(m[v], b + p * ldb + j0 + 16 * v);
                UNROLL for (int i = 0; i < 4; i++) {
                    if (i >= ni) break;
                    __m512 wi = _mm512_set1_ps(w[(i0 + i) * ldw + p]);
                    UNROLL for (int v = 0; v < 4; v++) acc[i][v] =
                        _mm512_fmadd_ps(wi, bv[v], acc[i][v]);
                }
            }
            UNROLL for (int i = 0; i < 4; i++) {
                if (i >= ni) break;
                UNROLL for (int v = 0; v < 4; v++)
                    _mm512_mask_storeu_ps(y + (i0 + i) * ldy + j0 + 16 * v, m[v], acc[i][v]);
            }
        }
    }
}

/* The AMX set: inputs of many tokens (q35_amx_pack_bytes > 0) are packed
 * as AMX tiles, and bf16 weights times them run on AMX for the rows in
 * whole 16-row blocks, the matrix's last partial block and other dtypes
 * on the plain AVX-512 path; inputs of a few tokens are packed in the
 * even/odd form and go through the AVX-512 set's matmul. Which path a row
 * takes depends only on the matrix and T, never on the [r0, r1) split. */
static size_t amx_set_pack_bytes(int T, int64_t cols) {
    size_t b = q35_amx_pack_bytes(T, cols);
    return b ? b : eo_pack_bytes(T, cols);
}

static void amx_set_pack(const float *x, int64_t ldx, int T, int64_t cols, void *out) {
    if (q35_amx_pack_bytes(T, cols))
        q35_amx_pack(x, ldx, T, cols, out);
    else
        eo_pack(x, ldx, T, cols, out);
}

static void matmul_amx(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                       int64_t r1) {
    if (!a->packed || !q35_amx_pack_bytes(a->T, a->cols)) { /* few tokens: even/odd form */
        matmul_avx512(w, a, y, ldy, r0, r1);
        return;
    }
    /* k-quants have no AMX path: their AVX-512 panels */
    if ((w->dtype == Q35_DT_Q8_0 || w->dtype == Q35_DT_Q4_0) &&
        a->T >= q35_amx_quant_min_t(w->dtype)) {
        q35_amx_qmatmul(w, a, y, ldy, r0, r1);
        return;
    }
    if (w->dtype != Q35_DT_BF16) {
        matmul_float(w, a, y, ldy, r0, r1);
        return;
    }
    int64_t full = w->shape[0] / 16 * 16;
    if (r0 < full) q35_amx_matmul_blocks(w, a, y, ldy, r0, r1 < full ? r1 : full);
    if (r1 > full) matmul_float(w, a, y, ldy, r0 > full ? r0 : full, r1);
}

/* ------------------------------------------------------------ vector ops */

static inline __mmask16 tail_mask(int left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static float dot_avx512(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void axpy_avx512(float *y, float a, const float *x, int n) {
    __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 yv = _mm512_maskz_loadu_ps(m, y + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), yv));
    }
}

static void mul_add_avx512(float *y, const float *a, const float *b, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i),
                                   _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

static void scale_avx512(float *x, float a, int n) {
    __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

static void rmsnorm_avx512(float *out, const float *x, const float *w, float eps, int n) {
    float ss = dot_avx512(x, x, n);
    __m512 inv = _mm512_set1_ps(1.0f / sqrtf(ss / (float)n + eps));
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)));
    }
}

/* exp(x) for float32 lanes: x = n ln2 + r with |r| <= ln2/2, exp(r) by a
 * degree-7 Taylor polynomial (truncation < 1e-8 relative), times 2^n via
 * scalef, which also gives 0 and inf at the ends. Within 2 ulp of expf. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.0f)), _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static void silu_avx512(float *out, const float *x, int n) {
    __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(m, x + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
        _mm512_mask_storeu_ps(out + i, m, _mm512_div_ps(g, _mm512_add_ps(one, e)));
    }
}

static void silu_mul_avx512(float *out, const float *gate, const float *up, int n) {
    __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 s =
            _mm512_div_ps(g, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
    }
}

static void softmax_avx512(float *x, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16)
        mx = _mm512_mask_max_ps(mx, tail_mask(n - i), mx,
                                _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv));
        e = _mm512_maskz_mov_ps(m, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(x + i, m, e);
    }
    scale_avx512(x, 1.0f / _mm512_reduce_add_ps(sum), n);
}

/* Gated DeltaNet scan in column blocks of 64 (columns of S evolve
 * independently), so a block of S (dk x 64 floats, 32 KB for dk = 128)
 * stays in L1 across the tokens. One pass over S per token: the update of
 * token t also accumulates S^T k for token t+1 (the same FMA sequence as a
 * separate pass would do). */
#define GDN_VECS 4
static void gdn_scan_avx512(float *S, int dk, int dv, int T, const float *q, const float *k,
                            int64_t ldqk, const float *v, int64_t ldv, const float *decay,
                            const float *beta, int64_t ldg, float *o, int64_t ldo, float *work) {
    (void)work;
    for (int j0 = 0; j0 < dv; j0 += 16 * GDN_VECS) {
        __mmask16 m[GDN_VECS];
        __m512 u[GDN_VECS];
        UNROLL for (int b = 0; b < GDN_VECS; b++) {
            int left = dv - j0 - 16 * b;
            m[b] = left <= 0 ? 0 : tail_mask(left);
            u[b] = _mm512_setzero_ps();
        }
        float *Sb = S + j0;
        for (int i = 0; i < dk; i++) { /* u = S^T k_0 */
            __m512 ki = _mm512_set1_ps(k[i]);
            UNROLL for (int b = 0; b < GDN_VECS; b++) u[b] = _mm512_fmadd_ps(
                ki, _mm512_maskz_loadu_ps(m[b], Sb + (int64_t)i * dv + 16 * b), u[b]);
        }
        for (int t = 0; t < T; t++) {
            const float *qt = q + t * ldqk, *kt = k + t * ldqk, *vt = v + t * ldv + j0;
            const float *kn = t + 1 < T ? kt + ldqk : kt; /* next token's key */
            __m512 dec = _mm512_set1_ps(decay[t * ldg]), bet = _mm512_set1_ps(beta[t * ldg]);
            __m512 acc[GDN_VECS], un[GDN_VECS];
            UNROLL for (int b = 0; b < GDN_VECS; b++) {
                __m512 vv = _mm512_maskz_loadu_ps(m[b], vt + 16 * b);
                u[b] = _mm512_mul_ps(bet, _mm512_fnmadd_ps(dec, u[b], vv));
                acc[b] = un[b] = _mm512_setzero_ps();
            }
            for (int i = 0; i < dk; i++) {
                float *row = Sb + (int64_t)i * dv;
                __m512 ki = _mm512_set1_ps(kt[i]), qi = _mm512_set1_ps(qt[i]);
                __m512 kni = _mm512_set1_ps(kn[i]);
                UNROLL for (int b = 0; b < GDN_VECS; b++) {
                    __m512 s = _mm512_maskz_loadu_ps(m[b], row + 16 * b);
                    s = _mm512_fmadd_ps(ki, u[b], _mm512_mul_ps(dec, s));
                    _mm512_mask_storeu_ps(row + 16 * b, m[b], s);
                    acc[b] = _mm512_fmadd_ps(qi, s, acc[b]);
                    un[b] = _mm512_fmadd_ps(kni, s, un[b]);
                }
            }
            UNROLL for (int b = 0; b < GDN_VECS; b++) {
                _mm512_mask_storeu_ps(o + t * ldo + j0 + 16 * b, m[b], acc[b]);
                u[b] = un[b];
            }
        }
    }
}

#define AVX512_OPS                                                                                 \
    .dots = float_dots, .wsum = wsum_avx512, .dot = dot_avx512, .axpy = axpy_avx512,               \
    .scale = scale_avx512, .mul_add = mul_add_avx512, .rmsnorm = rmsnorm_avx512,                   \
    .silu = silu_avx512, .silu_mul = silu_mul_avx512, .softmax = softmax_avx512,                   \
    .gdn_scan = gdn_scan_avx512, .gdn_mm = q35_gdn_mm_avx512
#define AVX512_SET                                                                                 \
    .name = "avx512", .pack_bytes = eo_pack_bytes, .pack = eo_pack, .matmul = matmul_avx512
#define AMX_SET                                                                                    \
    .name = "amx", .pack_bytes = amx_set_pack_bytes, .pack = amx_set_pack, .matmul = matmul_amx

static const q35_kernels avx512_set = {AVX512_SET, AVX512_OPS};
static const q35_kernels amx_set = {AMX_SET, AVX512_OPS};
/* the same with the integer path (int8_avx512.c) */
static const q35_kernels avx512_int8_set = {AVX512_SET, AVX512_OPS, .i8 = &q35_i8_avx512vnni_set};
static const q35_kernels amx_int8_set = {AMX_SET, AVX512_OPS, .i8 = &q35_i8_avx512vnni_tiles_set};

/* Where AMX-INT8 tiles exist, the integer twin multiplies quantized
 * weights over many tokens on them (int8_amx.h); the rest as matmul_amx. */
static void matmul_amx_i8(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                          int64_t r1) {
    int min_t = q35_amx_i8_min_t(w->dtype);
    if (a->q8 && min_t && a->T >= min_t)
        q35_amx_i8_matmul(w, a->q8, a->ldq8, a->T, y, ldy, r0, r1);
    else
        matmul_amx(w, a, y, ldy, r0, r1);
}
static const q35_kernels amx_i8tiles_set = {.name = "amx",
                                            .pack_bytes = amx_set_pack_bytes,
                                            .pack = amx_set_pack,
                                            .matmul = matmul_amx_i8,
                                            .q8_only_from = q35_amx_i8_min_t,
                                            AVX512_OPS,
                                            .i8 = &q35_i8_avx512vnni_tiles_set};

const q35_kernels *q35_kernels_avx512_int8(void) {
    return q35_kernels_avx512() && q35_i8_kernels_avx512vnni() ? &avx512_int8_set : NULL;
}

const q35_kernels *q35_kernels_amx_int8(void) {
    if (!q35_kernels_amx() || !q35_i8_kernels_avx512vnni()) return NULL;
    return q35_amx_i8_available() ? &amx_i8tiles_set : &amx_int8_set;
}

const q35_kernels *q35_kernels_avx512(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    return q35_cpu_has_avx512_set(&f) ? &avx512_set : NULL;
}

const q35_kernels *q35_kernels_amx(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    if (!q35_cpu_has_avx512_set(&f) || !f.amx_tile || !f.amx_bf16) return NULL;
    return q35_amx_enable() ? &amx_set : NULL;
}
