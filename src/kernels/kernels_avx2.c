/* kernels_avx2.c — the kernel ops for AVX2 + FMA + F16C CPUs (the x86-64
 * baseline of SPEC §11), compiled with those flags and only reached through
 * q35_kernels_avx2() after a run-time check.
 *
 * Same structure as the AVX-512 set with 8 lanes: matmul register tiles of
 * R rows x C tokens in which every (row, token) accumulator sees the same
 * FMA sequence whatever the tile shape. Column tails are zero-padded through
 * a small stack copy (weights) or masked loads (float32). */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/gdn_mm.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/quant_block.h"

#define TILE_R 4
#define TILE_C 3

static inline __m256 widen(q35_dtype dt, const void *p) {
    switch (dt) {
    case Q35_DT_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)p);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case Q35_DT_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    default: return _mm256_loadu_ps(p);
    }
}

/* Weight vector of the last `left` (< 8) columns, zero-padded. */
static inline __m256 widen_tail(q35_dtype dt, const char *p, int left) {
    _Alignas(32) unsigned char buf[32] = {0};
    memcpy(buf, p, (size_t)left * q35_dtype_size(dt));
    return widen(dt, buf);
}

static inline __m256i lane_mask(int left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), idx);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* R x C tile: y[c*ldy + r] = w_r . x_c over n columns; dt, R and C are
 * constants at each call site, and the unroll pragmas keep acc in
 * registers. */
#define UNROLL _Pragma("GCC unroll 4")
static inline __attribute__((always_inline)) void tile(q35_dtype dt, const char *w, int64_t ldw,
                                                       const float *x, int64_t ldx, int64_t n,
                                                       float *y, int64_t ldy, const int R,
                                                       const int C) {
    __m256 acc[TILE_R][TILE_C];
    size_t es = q35_dtype_size(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 wv[TILE_R];
        UNROLL for (int r = 0; r < R; r++) wv[r] = widen(dt, w + r * ldw + k * es);
        UNROLL for (int c = 0; c < C; c++) {
            __m256 xv = _mm256_loadu_ps(x + c * ldx + k);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    if (k < n) {
        int left = (int)(n - k);
        __m256i m = lane_mask(left);
        __m256 wv[TILE_R];
        UNROLL for (int r = 0; r < R; r++) wv[r] = widen_tail(dt, w + r * ldw + k * es, left);
        UNROLL for (int c = 0; c < C; c++) {
            __m256 xv = _mm256_maskload_ps(x + c * ldx + k, m);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]);
}

/* ------------------------------------------------ quantized weights */

static inline __m256 qblock_scale(const uint8_t *b) {
    return _mm256_cvtph_ps(_mm_set1_epi16((short)q35_qblock_d16(b)));
}

/* Weights i*8 .. i*8+7 of the block at b, as float32 vectors holding the
 * exact products d * q: the numbers the float32 path would read from the
 * dequantized matrix, so with tile()'s FMA order a quantized matmul gives
 * bit for bit this set's float32 matmul over the dequantized matrix. */
static inline __attribute__((always_inline)) __m256 qblock_f32(q35_dtype dt, const uint8_t *b,
                                                               int i, __m256 d) {
    __m256i q;
    if (dt == Q35_DT_Q8_0) {
        q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * i)));
    } else { /* Q4_0: elements 0..15 low nibbles of bytes 0..15, 16..31 high */
        __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * (i & 1))));
        v = i < 2 ? _mm256_and_si256(v, _mm256_set1_epi32(15)) : _mm256_srli_epi32(v, 4);
        q = _mm256_sub_epi32(v, _mm256_set1_epi32(8));
    }
    return _mm256_mul_ps(d, _mm256_cvtepi32_ps(q));
}

/* An address to prefetch, possibly past the matrix (prefetches never
 * fault); computed as an integer, as pointer arithmetic past an object is
 * undefined. */
static inline const char *ahead(const uint8_t *p, int64_t bytes) {
    return (const char *)((uintptr_t)p + (uintptr_t)bytes);
}

/* R x C tile over quantized rows (row stride ldw bytes, n columns): the
 * weights are widened in registers and used for C tokens. */
static inline __attribute__((always_inline)) void qtile(q35_dtype dt, const uint8_t *w, int64_t ldw,
                                                        const float *x, int64_t ldx, int64_t n,
                                                        float *y, int64_t ldy, const int R,
                                                        const int C) {
    __m256 acc[TILE_R][TILE_C];
    size_t bb = q35_dtype_block_bytes(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm256_setzero_ps();
    const uint8_t *wk = w;
    for (int64_t k = 0; k < n; k += Q35_QBLOCK, wk += bb) {
        __m256 d[TILE_R];
        /* Widening keeps the core busy enough that loads issued as the loop
         * reaches them arrive late; fetching the next tile's rows one tile
         * ahead measured +56% (Q8_0) and +67% (Q4_0) for one token, +30-40%
         * for two (from memory, 2 threads). */
        UNROLL for (int r = 0; r < R; r++) _mm_prefetch(ahead(wk, (R + r) * ldw), _MM_HINT_T0);
        UNROLL for (int r = 0; r < R; r++) d[r] = qblock_scale(wk + r * ldw);
        UNROLL for (int i = 0; i < 4; i++) {
            __m256 wv[TILE_R];
            UNROLL for (int r = 0; r < R; r++) wv[r] = qblock_f32(dt, wk + r * ldw, i, d[r]);
            UNROLL for (int c = 0; c < C; c++) {
                __m256 xv = _mm256_loadu_ps(x + c * ldx + k + 8 * i);
                UNROLL for (int r = 0; r < R; r++) acc[r][c] =
                    _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]);
}

/* Weights 8i .. 8i+7 (i < 32) of the Q4_K / Q6_K super-block at b as
 * float32, from its multipliers (q35_kblock_scales): the plain C decoder's
 * products in its order (a multiply, then for Q4_K a subtract; never
 * fused), so the values are its values. */
static inline __attribute__((always_inline)) __m256
kblock_f32(q35_dtype dt, const uint8_t *b, int i, const float *mul, const float *sub) {
    const __m256i m15 = _mm256_set1_epi32(15);
    if (dt == Q35_DT_Q4_K) {
        int j = i / 4;
        __m256i v = _mm256_cvtepu8_epi32(
            _mm_loadl_epi64((const __m128i *)(b + 16 + 32 * (j / 2) + 8 * (i % 4))));
        v = _mm256_and_si256(_mm256_srli_epi32(v, 4 * (j & 1)), m15);
        __m256 p = _mm256_mul_ps(_mm256_set1_ps(mul[j]), _mm256_cvtepi32_ps(v));
        return _mm256_sub_ps(p, _mm256_set1_ps(sub[j]));
    }
    int h = i / 16, k = (i % 16) / 4, l0 = 8 * (i % 4);
    __m256i lo =
        _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 64 * h + 32 * (k & 1) + l0)));
    __m256i hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 128 + 32 * h + l0)));
    lo = _mm256_and_si256(_mm256_srli_epi32(lo, 4 * (k >> 1)), m15);
    hi = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hi, 2 * k), _mm256_set1_epi32(3)), 4);
    __m256i q = _mm256_sub_epi32(_mm256_or_si256(lo, hi), _mm256_set1_epi32(32));
    return _mm256_mul_ps(_mm256_set1_ps(mul[8 * h + 2 * k + l0 / 16]), _mm256_cvtepi32_ps(q));
}

/* R x C tile over Q4_K / Q6_K rows: per super-block, each row's float
 * multipliers are computed once, then its weights are widened 8 at a time
 * in registers and used for C tokens, in tile()'s FMA order (k ascending
 * by 8), so the bits are this set's float32 matmul over the dequantized
 * matrix. */
static inline __attribute__((always_inline)) void ktile(q35_dtype dt, const uint8_t *w, int64_t ldw,
                                                        const float *x, int64_t ldx, int64_t n,
                                                        float *y, int64_t ldy, const int R,
                                                        const int C) {
    __m256 acc[TILE_R][TILE_C];
    size_t bb = q35_dtype_block_bytes(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm256_setzero_ps();
    const uint8_t *wk = w;
    for (int64_t k = 0; k < n; k += Q35_KBLOCK, wk += bb) {
        /* the next tile's rows, one tile ahead, as for Q8_0 / Q4_0 */
        UNROLL for (int r = 0; r < R; r++) for (size_t off = 0; off < bb; off += 64)
            _mm_prefetch(ahead(wk, (R + r) * ldw + (int64_t)off), _MM_HINT_T0);
        float mul[TILE_R][16], sub[TILE_R][8];
        UNROLL for (int r = 0; r < R; r++) q35_kblock_scales(dt, wk + r * ldw, mul[r], sub[r]);
        _Pragma("GCC unroll 32") for (int i = 0; i < 32; i++) {
            __m256 wv[TILE_R];
            UNROLL for (int r = 0; r < R; r++) wv[r] =
                kblock_f32(dt, wk + r * ldw, i, mul[r], sub[r]);
            UNROLL for (int c = 0; c < C; c++) {
                __m256 xv = _mm256_loadu_ps(x + c * ldx + k + 8 * i);
                UNROLL for (int r = 0; r < R; r++) acc[r][c] =
                    _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]);
}

/* Many tokens: rows per dequantized panel (48 rows of 3584 columns are
 * 688 KB of float32, inside L2), and the token counts from which the panel
 * beats widening in registers (same-process A/B, 2 threads, [1024, 3584]:
 * Q8_0 equal at 12 tokens, ahead from 16; Q4_0, whose widening costs
 * more, equal at 6, ahead from 8; k-quants, whose decoding costs more
 * still, at least Q4_0's, not measured separately). */
#define QPANEL 48
#define QPANEL_MIN_T(dt) ((dt) == Q35_DT_Q8_0 ? 12 : 6)

/* One quantized row as float32 for the panel: the values the tiles widen
 * it to. */
static void panel_row(q35_dtype dt, const uint8_t *row, int64_t n, float *dst) {
    size_t bb = q35_dtype_block_bytes(dt);
    if (dt == Q35_DT_Q4_K || dt == Q35_DT_Q6_K) {
        for (int64_t kb = 0; kb < n / Q35_KBLOCK; kb++) {
            const uint8_t *b = row + kb * bb;
            float mul[16], sub[8];
            q35_kblock_scales(dt, b, mul, sub);
            for (int i = 0; i < 32; i++)
                _mm256_store_ps(dst + kb * Q35_KBLOCK + 8 * i,
                                dt == Q35_DT_Q4_K ? kblock_f32(Q35_DT_Q4_K, b, i, mul, sub)
                                                  : kblock_f32(Q35_DT_Q6_K, b, i, mul, sub));
        }
        return;
    }
    for (int64_t kb = 0; kb < n / Q35_QBLOCK; kb++) {
        const uint8_t *b = row + kb * bb;
        __m256 d = qblock_scale(b);
        UNROLL for (int j = 0; j < 4; j++) _mm256_store_ps(
            dst + kb * Q35_QBLOCK + 8 * j, dt == Q35_DT_Q8_0 ? qblock_f32(Q35_DT_Q8_0, b, j, d)
                                                             : qblock_f32(Q35_DT_Q4_0, b, j, d));
    }
}

#include "kernels/float_tiles.h"

/* y_i = sum_p w[i, p] b_p: 3 outputs x 32 columns of accumulators. */
static void wsum_avx2(const float *w, int64_t ldw, int na, const float *b, int64_t ldb, int nb,
                      int n, float *y, int64_t ldy) {
    for (int i0 = 0; i0 < na; i0 += 3) {
        int ni = na - i0 < 3 ? na - i0 : 3;
        for (int j0 = 0; j0 < n; j0 += 32) {
            __m256i m[4];
            __m256 acc[3][4];
            UNROLL for (int v = 0; v < 4; v++) {
                m[v] = lane_mask(n - j0 - 8 * v);
                UNROLL for (int i = 0; i < 3; i++) acc[i][v] = _mm256_setzero_ps();
            }
            for (int p = 0; p < nb; p++) {
                __m256 bv[4];
                UNROLL for (int v = 0; v < 4; v++) bv[v] =
                    _mm256_maskload_ps(b + p * ldb + j0 + 8 * v, m[v]);
                UNROLL for (int i = 0; i < 3; i++) {
                    if (i >= ni) break;
                    __m256 wi = _mm256_set1_ps(w[(i0 + i) * ldw + p]);
                    UNROLL for (int v = 0; v < 4; v++) acc[i][v] =
                        _mm256_fmadd_ps(wi, bv[v], acc[i][v]);
                }
            }
            UNROLL for (int i = 0; i < 3; i++) {
                if (i >= ni) break;
                UNROLL for (int v = 0; v < 4; v++)
                    _mm256_maskstore_ps(y + (i0 + i) * ldy + j0 + 8 * v, m[v], acc[i][v]);
            }
        }
    }
}

/* ------------------------------------------------------------ vector ops */

static float dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i < n; i += 8) {
        __m256i m = lane_mask(n - i);
        s0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s0);
    }
    return hsum(_mm256_add_ps(s0, s1));
}

static void axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i m = lane_mask(n - i);
        __m256 r = _mm256_fmadd_ps(av, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m));
        _mm256_maskstore_ps(y + i, m, r);
    }
}

static void mul_add_avx2(float *y, const float *a, const float *b, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a[i] * b[i];
}

static void scale_avx2(float *x, float a, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(av, _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = lane_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(av, _mm256_maskload_ps(x + i, m)));
    }
}

static void rmsnorm_avx2(float *out, const float *x, const float *w, float eps, int n) {
    float ss = dot_avx2(x, x, n);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    __m256 iv = _mm256_set1_ps(inv);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), iv),
                                                _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * inv * w[i];
}

/* exp(x) for float32 lanes, as in the AVX-512 set; x is clamped to 88 so
 * that 2^n stays a normal float, and results for x < -87 are 0 (the true
 * value is below float32's normal range there). */
static inline __m256 exp256(__m256 x) {
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static void silu_avx2(float *out, const float *x, int n) {
    __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(x + i);
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_storeu_ps(out + i, _mm256_div_ps(g, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++)
        out[i] = x[i] / (1.0f + expf(-x[i]));
}

static void silu_mul_avx2(float *out, const float *gate, const float *up, int n) {
    __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 s =
            _mm256_div_ps(g, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void softmax_avx2(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    __m256 mv = _mm256_set1_ps(mx), sv = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        sv = _mm256_add_ps(sv, e);
        _mm256_storeu_ps(x + i, e);
    }
    float sum = hsum(sv);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    scale_avx2(x, 1.0f / sum, n);
}

/* Gated DeltaNet scan in column blocks of 32 (u, o and the next token's
 * S^T k of a block fit the 16 registers); one pass over S per token, as in
 * the AVX-512 set. */
#define GDN_VECS 4
static void gdn_scan_avx2(float *S, int dk, int dv, int T, const float *q, const float *k,
                          int64_t ldqk, const float *v, int64_t ldv, const float *decay,
                          const float *beta, int64_t ldg, float *o, int64_t ldo, float *work) {
    (void)work;
    for (int j0 = 0; j0 < dv; j0 += 8 * GDN_VECS) {
        __m256i m[GDN_VECS];
        __m256 u[GDN_VECS];
        UNROLL for (int b = 0; b < GDN_VECS; b++) {
            m[b] = lane_mask(dv - j0 - 8 * b);
            u[b] = _mm256_setzero_ps();
        }
        float *Sb = S + j0;
        for (int i = 0; i < dk; i++) {
            __m256 ki = _mm256_set1_ps(k[i]);
            UNROLL for (int b = 0; b < GDN_VECS; b++) u[b] =
                _mm256_fmadd_ps(ki, _mm256_maskload_ps(Sb + (int64_t)i * dv + 8 * b, m[b]), u[b]);
        }
        for (int t = 0; t < T; t++) {
            const float *qt = q + t * ldqk, *kt = k + t * ldqk, *vt = v + t * ldv + j0;
            const float *kn = t + 1 < T ? kt + ldqk : kt;
            __m256 dec = _mm256_set1_ps(decay[t * ldg]), bet = _mm256_set1_ps(beta[t * ldg]);
            __m256 acc[GDN_VECS], un[GDN_VECS];
            UNROLL for (int b = 0; b < GDN_VECS; b++) {
                __m256 vv = _mm256_maskload_ps(vt + 8 * b, m[b]);
                u[b] = _mm256_mul_ps(bet, _mm256_fnmadd_ps(dec, u[b], vv));
                acc[b] = un[b] = _mm256_setzero_ps();
            }
            for (int i = 0; i < dk; i++) {
                float *row = Sb + (int64_t)i * dv;
                __m256 ki = _mm256_set1_ps(kt[i]), qi = _mm256_set1_ps(qt[i]);
                __m256 kni = _mm256_set1_ps(kn[i]);
                UNROLL for (int b = 0; b < GDN_VECS; b++) {
                    __m256 s = _mm256_maskload_ps(row + 8 * b, m[b]);
                    s = _mm256_fmadd_ps(ki, u[b], _mm256_mul_ps(dec, s));
                    _mm256_maskstore_ps(row + 8 * b, m[b], s);
                    acc[b] = _mm256_fmadd_ps(qi, s, acc[b]);
                    un[b] = _mm256_fmadd_ps(kni, s, un[b]);
                }
            }
            UNROLL for (int b = 0; b < GDN_VECS; b++) {
                _mm256_maskstore_ps(o + t * ldo + j0 + 8 * b, m[b], acc[b]);
                u[b] = un[b];
            }
        }
    }
}

#define AVX2_OPS                                                                                   \
    .name = "avx2", .matmul = matmul_float, .dots = float_dots, .wsum = wsum_avx2,                 \
    .dot = dot_avx2, .axpy = axpy_avx2, .scale = scale_avx2, .mul_add = mul_add_avx2,              \
    .rmsnorm = rmsnorm_avx2, .silu = silu_avx2, .silu_mul = silu_mul_avx2,                         \
    .softmax = softmax_avx2, .gdn_scan = gdn_scan_avx2, .gdn_mm = q35_gdn_mm_avx2

static const q35_kernels avx2_set = {AVX2_OPS};
/* the same with the integer path (int8_avx2.c) */
static const q35_kernels avx2_int8_set = {AVX2_OPS, .i8 = &q35_i8_avx2_set};

const q35_kernels *q35_kernels_avx2_int8(void) {
    return q35_kernels_avx2() ? &avx2_int8_set : NULL;
}

/* ... and with AVX-VNNI's integer path (int8_avxvnni.c); kernels.c picks */
static const q35_kernels avx2_vnni_set = {AVX2_OPS, .i8 = &q35_i8_avxvnni_set};

const q35_kernels *q35_kernels_avx2_vnni(void) {
    return q35_kernels_avx2() && q35_i8_kernels_avxvnni() ? &avx2_vnni_set : NULL;
}

const q35_kernels *q35_kernels_avx2(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    return q35_cpu_has_avx2_set(&f) ? &avx2_set : NULL;
}
