/* kernels_neon.c — the kernel ops for AArch64 Advanced SIMD (NEON, part of
 * every AArch64 CPU), compiled only on AArch64.
 *
 * Same structure as the x86 sets with 4 lanes: matmul register tiles of
 * R rows x C tokens in which every (row, token) accumulator sees the same
 * FMA sequence whatever the tile shape; column tails go through small
 * zero-padded stack copies. These float ops serve the three AArch64 sets
 * (neon, neon-dotprod, neon-i8mm: kernels_neon.h), which differ only in
 * their integer twins' micro-kernels (int8_*neon*); MLX affine weights go
 * to mlx_affine_neon.c. */
#include <arm_neon.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/gdn_mm.h"
#include "kernels/kernels.h"
#include "kernels/kernels_neon.h"
#include "kernels/quant_block.h"

#define TILE_R 4
#define TILE_C 4
#define UNROLL _Pragma("GCC unroll 8")

static inline float32x4_t widen(q35_dtype dt, const void *p) {
    switch (dt) {
    case Q35_DT_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
    case Q35_DT_F16: return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
    default: return vld1q_f32(p);
    }
}

/* The last `left` (< 4) columns, zero-padded. */
static inline float32x4_t widen_tail(q35_dtype dt, const char *p, int left) {
    _Alignas(16) unsigned char buf[16] = {0};
    memcpy(buf, p, (size_t)left * q35_dtype_size(dt));
    return widen(dt, buf);
}

static inline float32x4_t load_tail(const float *p, int left) {
    float buf[4] = {0, 0, 0, 0};
    memcpy(buf, p, (size_t)left * sizeof(float));
    return vld1q_f32(buf);
}

static inline __attribute__((always_inline)) void tile(q35_dtype dt, const char *w, int64_t ldw,
                                                       const float *x, int64_t ldx, int64_t n,
                                                       float *y, int64_t ldy, const int R,
                                                       const int C) {
    float32x4_t acc[TILE_R][TILE_C];
    size_t es = q35_dtype_size(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        vdupq_n_f32(0);
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        float32x4_t wv[TILE_R];
        UNROLL for (int r = 0; r < R; r++) wv[r] = widen(dt, w + r * ldw + k * es);
        UNROLL for (int c = 0; c < C; c++) {
            float32x4_t xv = vld1q_f32(x + c * ldx + k);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = vfmaq_f32(acc[r][c], wv[r], xv);
        }
    }
    if (k < n) {
        int left = (int)(n - k);
        float32x4_t wv[TILE_R];
        UNROLL for (int r = 0; r < R; r++) wv[r] = widen_tail(dt, w + r * ldw + k * es, left);
        UNROLL for (int c = 0; c < C; c++) {
            float32x4_t xv = load_tail(x + c * ldx + k, left);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = vfmaq_f32(acc[r][c], wv[r], xv);
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        vaddvq_f32(acc[r][c]);
}

/* ------------------------------------------------ quantized weights */

static inline float32x4_t qblock_scale(const uint8_t *b) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(q35_qblock_d16(b))));
}

/* Weights e .. e+7 (e = 0, 8, 16, 24) of the block at b as two float32
 * vectors holding the exact products d * q: the numbers the float32 path
 * would read from the dequantized matrix, so with tile()'s FMA order a
 * quantized matmul gives bit for bit this set's float32 matmul over the
 * dequantized matrix. */
static inline __attribute__((always_inline)) void
qblock_f32(q35_dtype dt, const uint8_t *b, int e, float32x4_t d, float32x4_t *lo, float32x4_t *hi) {
    int8x8_t q;
    if (dt == Q35_DT_Q8_0) {
        q = vld1_s8((const int8_t *)(b + 2 + e));
    } else { /* Q4_0: elements 0..15 low nibbles of bytes 0..15, 16..31 high */
        uint8x8_t u = vld1_u8(b + 2 + (e & 8));
        u = e < 16 ? vand_u8(u, vdup_n_u8(15)) : vshr_n_u8(u, 4);
        q = vsub_s8(vreinterpret_s8_u8(u), vdup_n_s8(8));
    }
    int16x8_t s = vmovl_s8(q);
    *lo = vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(s))));
    *hi = vmulq_f32(d, vcvtq_f32_s32(vmovl_high_s16(s)));
}

/* An address to prefetch, possibly past the matrix (prefetches never
 * fault); computed as an integer, as pointer arithmetic past an object is
 * undefined. */
static inline const void *ahead(const uint8_t *p, int64_t bytes) {
    return (const void *)((uintptr_t)p + (uintptr_t)bytes);
}

/* R x C tile over quantized rows (row stride ldw bytes, n columns): the
 * weights are widened in registers, 8 at a time (16 accumulators leave
 * room for no more), and used for C tokens. */
static inline __attribute__((always_inline)) void qtile(q35_dtype dt, const uint8_t *w, int64_t ldw,
                                                        const float *x, int64_t ldx, int64_t n,
                                                        float *y, int64_t ldy, const int R,
                                                        const int C) {
    float32x4_t acc[TILE_R][TILE_C];
    size_t bb = q35_dtype_block_bytes(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        vdupq_n_f32(0);
    const uint8_t *wk = w;
    for (int64_t k = 0; k < n; k += Q35_QBLOCK, wk += bb) {
        float32x4_t d[TILE_R];
        /* The next tile's rows one tile ahead, as the x86 sets do (there
         * +18-67% from memory); not measured on an AArch64 machine. */
        UNROLL for (int r = 0; r < R; r++) __builtin_prefetch(ahead(wk, (R + r) * ldw));
        UNROLL for (int r = 0; r < R; r++) d[r] = qblock_scale(wk + r * ldw);
        UNROLL for (int e = 0; e < Q35_QBLOCK; e += 8) {
            float32x4_t lo[TILE_R], hi[TILE_R];
            UNROLL for (int r = 0; r < R; r++)
                qblock_f32(dt, wk + r * ldw, e, d[r], &lo[r], &hi[r]);
            UNROLL for (int c = 0; c < C; c++) {
                float32x4_t x0 = vld1q_f32(x + c * ldx + k + e);
                float32x4_t x1 = vld1q_f32(x + c * ldx + k + e + 4);
                UNROLL for (int r = 0; r < R; r++) {
                    acc[r][c] = vfmaq_f32(acc[r][c], lo[r], x0);
                    acc[r][c] = vfmaq_f32(acc[r][c], hi[r], x1);
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        vaddvq_f32(acc[r][c]);
}

/* R x C tile over Q4_K / Q6_K rows: each row's super-block is decoded
 * by the plain C decoder (quant_block.h) into an L1 buffer and multiplied
 * from there in tile()'s FMA order (k ascending by 4), so the bits are
 * this set's float32 matmul over the dequantized matrix. Simpler than
 * widening in registers (what the AVX-512 set does) at some decode cost. */
static inline __attribute__((always_inline)) void ktile(q35_dtype dt, const uint8_t *w, int64_t ldw,
                                                        const float *x, int64_t ldx, int64_t n,
                                                        float *y, int64_t ldy, const int R,
                                                        const int C) {
    float32x4_t acc[TILE_R][TILE_C];
    _Alignas(16) float wb[TILE_R][Q35_KBLOCK];
    size_t bb = q35_dtype_block_bytes(dt);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        vdupq_n_f32(0);
    const uint8_t *wk = w;
    for (int64_t k = 0; k < n; k += Q35_KBLOCK, wk += bb) {
        /* the next tile's rows, one tile ahead, as for Q8_0 / Q4_0 */
        UNROLL for (int r = 0; r < R; r++) for (size_t off = 0; off < bb; off += 64)
            __builtin_prefetch(ahead(wk, (R + r) * ldw + (int64_t)off));
        UNROLL for (int r = 0; r < R; r++) q35_kblock_decode(dt, wk + r * ldw, wb[r]);
        for (int i = 0; i < Q35_KBLOCK; i += 4) {
            float32x4_t wv[TILE_R];
            UNROLL for (int r = 0; r < R; r++) wv[r] = vld1q_f32(wb[r] + i);
            UNROLL for (int c = 0; c < C; c++) {
                float32x4_t xv = vld1q_f32(x + c * ldx + k + i);
                UNROLL for (int r = 0; r < R; r++) acc[r][c] = vfmaq_f32(acc[r][c], wv[r], xv);
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        vaddvq_f32(acc[r][c]);
}

/* Rows per dequantized panel for many tokens (16 rows of 3584 columns are
 * 229 KB of float32, for L2s smaller than x86's), and the token count from
 * which it is used: a guess between the AVX2 set's 6 (Q4_0) and 12 (Q8_0),
 * as 4-lane widening costs more per FMA; not measured on an AArch64
 * machine. */
#define QPANEL 16
#define QPANEL_MIN_T(dt) 5
#define FLOAT_TILES_Q5K

/* One quantized row as float32 for the panel: the values the tiles widen
 * or decode it to. */
static void panel_row(q35_dtype dt, const uint8_t *row, int64_t n, float *dst) {
    size_t bb = q35_dtype_block_bytes(dt);
    if (q35_dtype_block_elems(dt) == Q35_KBLOCK) {
        for (int64_t kb = 0; kb < n / Q35_KBLOCK; kb++)
            q35_kblock_decode(dt, row + kb * bb, dst + kb * Q35_KBLOCK);
        return;
    }
    for (int64_t kb = 0; kb < n / Q35_QBLOCK; kb++) {
        const uint8_t *b = row + kb * bb;
        float32x4_t d = qblock_scale(b), lo, hi;
        UNROLL for (int e = 0; e < Q35_QBLOCK; e += 8) {
            if (dt == Q35_DT_Q8_0)
                qblock_f32(Q35_DT_Q8_0, b, e, d, &lo, &hi);
            else
                qblock_f32(Q35_DT_Q4_0, b, e, d, &lo, &hi);
            vst1q_f32(dst + kb * Q35_QBLOCK + e, lo);
            vst1q_f32(dst + kb * Q35_QBLOCK + e + 4, hi);
        }
    }
}

#include "kernels/float_tiles.h"

static void matmul_neon(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                        int64_t r1) {
    if (q35_dtype_is_mlx(w->dtype))
        q35_mlx_matmul_neon(w, a, y, ldy, r0, r1);
    else
        matmul_float(w, a, y, ldy, r0, r1);
}

/* y_i = sum_p w[i, p] b_p: 4 outputs x 16 columns of accumulators; the last
 * n % 4 columns in scalar form. */
static void wsum_neon(const float *w, int64_t ldw, int na, const float *b, int64_t ldb, int nb,
                      int n, float *y, int64_t ldy) {
    int n4 = n / 4 * 4;
    for (int i0 = 0; i0 < na; i0 += 4) {
        int ni = na - i0 < 4 ? na - i0 : 4;
        for (int j0 = 0; j0 < n4; j0 += 16) {
            int nv = (n4 - j0) / 4 < 4 ? (n4 - j0) / 4 : 4;
            float32x4_t acc[4][4];
            UNROLL for (int i = 0; i < 4; i++) UNROLL for (int v = 0; v < 4; v++) acc[i][v] =
                vdupq_n_f32(0);
            for (int p = 0; p < nb; p++) {
                float32x4_t bv[4];
                UNROLL for (int v = 0; v < 4; v++) bv[v] =
                    v < nv ? vld1q_f32(b + p * ldb + j0 + 4 * v) : vdupq_n_f32(0);
                UNROLL for (int i = 0; i < 4; i++) {
                    if (i >= ni) break;
                    float wi = w[(i0 + i) * ldw + p];
                    UNROLL for (int v = 0; v < 4; v++) acc[i][v] =
                        vfmaq_n_f32(acc[i][v], bv[v], wi);
                }
            }
            UNROLL for (int i = 0; i < 4; i++) {
                if (i >= ni) break;
                UNROLL for (int v = 0; v < 4; v++) if (v < nv)
                    vst1q_f32(y + (i0 + i) * ldy + j0 + 4 * v, acc[i][v]);
            }
        }
        for (int i = i0; i < i0 + ni; i++)
            for (int j = n4; j < n; j++) {
                float s = 0;
                for (int p = 0; p < nb; p++)
                    s += w[i * ldw + p] * b[p * ldb + j];
                y[i * ldy + j] = s;
            }
    }
}

/* ------------------------------------------------------------ vector ops */

static float dot_neon(const float *a, const float *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_neon(float *y, float a, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void mul_add_neon(float *y, const float *a, const float *b, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), vld1q_f32(a + i), vld1q_f32(b + i)));
    for (; i < n; i++)
        y[i] += a[i] * b[i];
}

static void scale_neon(float *x, float a, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), a));
    for (; i < n; i++)
        x[i] *= a;
}

static void rmsnorm_neon(float *out, const float *x, const float *w, float eps, int n) {
    float ss = dot_neon(x, x, n);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), inv), vld1q_f32(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * inv * w[i];
}

/* exp(x) for float32 lanes, as in the AVX2 set: x clamped to 88, and 0 below
 * -87 (where the true value is below float32's normal range anyway). */
static inline float32x4_t exp4(float32x4_t x) {
    uint32x4_t tiny = vcltq_f32(x, vdupq_n_f32(-87.0f));
    x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(88.0f)), vdupq_n_f32(-87.0f));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-06f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vbslq_f32(tiny, vdupq_n_f32(0), vmulq_f32(p, vreinterpretq_f32_s32(e)));
}

static inline float32x4_t silu4(float32x4_t g) {
    return vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g))));
}

static void silu_neon(float *out, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, silu4(vld1q_f32(x + i)));
    for (; i < n; i++)
        out[i] = x[i] / (1.0f + expf(-x[i]));
}

static void silu_mul_neon(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(silu4(vld1q_f32(gate + i)), vld1q_f32(up + i)));
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void softmax_neon(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float32x4_t mv = vdupq_n_f32(mx), sv = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), mv));
        sv = vaddq_f32(sv, e);
        vst1q_f32(x + i, e);
    }
    float sum = vaddvq_f32(sv);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    scale_neon(x, 1.0f / sum, n);
}

/* Gated DeltaNet scan in column blocks of 32 (8 vectors each for u, o and
 * the next token's S^T k); one pass over S per token, as in the x86 sets.
 * The last dv % 4 columns go through a scalar loop. */
#define GDN_VECS 8
static void gdn_scan_neon(float *S, int dk, int dv, int T, const float *q, const float *k,
                          int64_t ldqk, const float *v, int64_t ldv, const float *decay,
                          const float *beta, int64_t ldg, float *o, int64_t ldo, float *work) {
    int j0 = 0, nvec;
    for (; j0 + 4 <= dv; j0 += 4 * nvec) {
        nvec = (dv - j0) / 4 < GDN_VECS ? (dv - j0) / 4 : GDN_VECS;
        float32x4_t u[GDN_VECS];
        UNROLL for (int b = 0; b < GDN_VECS; b++) u[b] = vdupq_n_f32(0);
        float *Sb = S + j0;
        for (int i = 0; i < dk; i++)
            UNROLL for (int b = 0; b < GDN_VECS; b++) if (b < nvec) u[b] =
                vfmaq_n_f32(u[b], vld1q_f32(Sb + (int64_t)i * dv + 4 * b), k[i]);
        for (int t = 0; t < T; t++) {
            const float *qt = q + t * ldqk, *kt = k + t * ldqk, *vt = v + t * ldv + j0;
            const float *kn = t + 1 < T ? kt + ldqk : kt;
            float dec = decay[t * ldg], bet = beta[t * ldg];
            float32x4_t acc[GDN_VECS], un[GDN_VECS];
            UNROLL for (int b = 0; b < GDN_VECS; b++) {
                if (b < nvec)
                    u[b] = vmulq_n_f32(vfmsq_n_f32(vld1q_f32(vt + 4 * b), u[b], dec), bet);
                acc[b] = un[b] = vdupq_n_f32(0);
            }
            for (int i = 0; i < dk; i++) {
                float *row = Sb + (int64_t)i * dv;
                UNROLL for (int b = 0; b < GDN_VECS; b++) {
                    if (b >= nvec) continue;
                    float32x4_t s =
                        vfmaq_n_f32(vmulq_n_f32(vld1q_f32(row + 4 * b), dec), u[b], kt[i]);
                    vst1q_f32(row + 4 * b, s);
                    acc[b] = vfmaq_n_f32(acc[b], s, qt[i]);
                    un[b] = vfmaq_n_f32(un[b], s, kn[i]);
                }
            }
            UNROLL for (int b = 0; b < GDN_VECS; b++) {
                if (b < nvec) vst1q_f32(o + t * ldo + j0 + 4 * b, acc[b]);
                u[b] = un[b];
            }
        }
    }
    if (j0 < dv) { /* the last dv % 4 columns */
        int w = dv - j0;
        float *u = work;
        for (int t = 0; t < T; t++) {
            const float *qt = q + t * ldqk, *kt = k + t * ldqk, *vt = v + t * ldv + j0;
            float *ot = o + t * ldo + j0;
            float dec = decay[t * ldg], bet = beta[t * ldg];
            for (int j = 0; j < w; j++)
                u[j] = 0;
            for (int i = 0; i < dk; i++)
                for (int j = 0; j < w; j++)
                    u[j] += kt[i] * S[(int64_t)i * dv + j0 + j];
            for (int j = 0; j < w; j++)
                u[j] = bet * (vt[j] - dec * u[j]);
            for (int j = 0; j < w; j++)
                ot[j] = 0;
            for (int i = 0; i < dk; i++) {
                float *row = S + (int64_t)i * dv + j0;
                for (int j = 0; j < w; j++) {
                    row[j] = dec * row[j] + kt[i] * u[j];
                    ot[j] += qt[i] * row[j];
                }
            }
        }
    }
}

/* The three AArch64 sets. Their float ops are the same functions; they
 * differ in the integer dot products their quantized matmuls may use: plain
 * NEON (every AArch64 core), sdot (Armv8.2 dotprod: Cortex-A55/A76 and
 * later, Apple M1) and smmla (Armv8.6 i8mm: Cortex-A510/A710, Neoverse
 * V1/N2, Apple M2). */
#define NEON_OPS                                                                                   \
    .matmul = matmul_neon, .dots = float_dots, .wsum = wsum_neon, .dot = dot_neon,                 \
    .axpy = axpy_neon, .scale = scale_neon, .mul_add = mul_add_neon, .rmsnorm = rmsnorm_neon,      \
    .silu = silu_neon, .silu_mul = silu_mul_neon, .softmax = softmax_neon,                         \
    .gdn_scan = gdn_scan_neon, .gdn_mm = q35_gdn_mm_neon
static const q35_kernels neon_sets[Q35_NEON_LEVELS] = {
    [Q35_NEON_PLAIN] = {.name = "neon", NEON_OPS},
    [Q35_NEON_DOTPROD] = {.name = "neon-dotprod", NEON_OPS},
    [Q35_NEON_I8MM] = {.name = "neon-i8mm", NEON_OPS},
};
/* The same with their integer paths (microkernel.h; int8_*_neon.c). */
static const q35_kernels neon_int8_sets[Q35_NEON_LEVELS] = {
    [Q35_NEON_PLAIN] = {.name = "neon", .i8 = &q35_i8_neon_set, NEON_OPS},
    [Q35_NEON_DOTPROD] = {.name = "neon-dotprod", .i8 = &q35_i8_neon_dotprod_set, NEON_OPS},
    [Q35_NEON_I8MM] = {.name = "neon-i8mm", .i8 = &q35_i8_neon_i8mm_set, NEON_OPS},
};

static bool level_runs(const q35_cpu_features *f, q35_neon_level l) {
    switch (l) {
    case Q35_NEON_PLAIN: return f->neon;
    case Q35_NEON_DOTPROD: return f->neon && f->dotprod;
    case Q35_NEON_I8MM: return f->neon && f->dotprod && f->i8mm;
    default: return false;
    }
}

const q35_kernels *q35_kernels_neon_level(q35_neon_level l) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    return level_runs(&f, l) ? &neon_sets[l] : NULL;
}

const q35_kernels *q35_kernels_neon(void) {
    /* Q35_KERNELS=neon|neon-dotprod|neon-i8mm asks for one of the three
     * (q35_kernels_best hands every name it does not know on to here). */
    const char *force = getenv("Q35_KERNELS");
    if (force && *force)
        for (int l = 0; l < Q35_NEON_LEVELS; l++)
            if (!strcmp(force, neon_sets[l].name) && q35_kernels_neon_level(l))
                return &neon_sets[l];
    for (int l = Q35_NEON_LEVELS - 1; l >= 0; l--)
        if (q35_kernels_neon_level(l)) return &neon_sets[l];
    return NULL;
}

const q35_kernels *q35_kernels_neon_int8(const q35_kernels *k) {
    for (int l = 0; l < Q35_NEON_LEVELS; l++)
        if (k == &neon_sets[l] || k == &neon_int8_sets[l]) return &neon_int8_sets[l];
    return NULL;
}
