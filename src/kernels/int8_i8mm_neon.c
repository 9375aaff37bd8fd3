/* int8_i8mm_neon.c — the integer matmul path's micro-kernels for Armv8.6
 * i8mm (smmla: a 2x8 by 8x2 int8 matrix product into a 2x2 int32 tile per
 * instruction, twice sdot's multiplies), the whole file compiled for that
 * target and called only where the CPU reports it (kernels_neon.c).
 *
 * Rows and tokens go in pairs: for weight rows (r, r+1) and q8 rows
 * (c, c+1), 8-byte pieces of each block are interleaved so that four smmla
 * give the four block sums I_b of the pair of pairs, one per int32 lane
 * [r c, r c+1, r+1 c, r+1 c+1]; the lane is converted and added, fused with
 * its scale, to a float32 accumulator of the same layout. An odd last row
 * or token is paired with itself (its twin's lanes are dropped), so each
 * (r, c) result is the same sequence of operations whatever the tile: the
 * whole block sum in one lane, not four partial lanes as with sdot, hence
 * not the sdot set's bits (both are within float32 rounding of the
 * definition, microkernel.h). With one token (decode) the pairing doubles
 * the multiplies but not the instructions: 2 smmla per row and block, as
 * sdot needs. */
#if defined(__clang__)
/* clang gates vmmlaq_s32 on the build's target, not on a pragma: where the
 * target lacks i8mm, mmla() below computes smmla's exact integers with
 * plain NEON (same results, only slower). */
#else
#pragma GCC target("arch=armv8.2-a+dotprod+i8mm")
#endif
#include <arm_neon.h>

#include "kernels/int8_blocks_neon.h"
#include "kernels/kernels_neon.h"
#include "kernels/microkernel.h"

#define PR (NEON_MR / 2) /* row pairs */
#define PC (NEON_NR / 2) /* token pairs */

/* Pieces 0..3 (8 elements each) of a 32-element block of two rows (lo:
 * elements 0..15, hi: 16..31), interleaved as smmla's operands. */
ALWAYS_INLINE void pair_pieces(int8x16_t lo0, int8x16_t hi0, int8x16_t lo1, int8x16_t hi1,
                               int8x16_t p[4]) {
    int64x2_t a = vreinterpretq_s64_s8(lo0), b = vreinterpretq_s64_s8(lo1);
    int64x2_t c = vreinterpretq_s64_s8(hi0), d = vreinterpretq_s64_s8(hi1);
    p[0] = vreinterpretq_s8_s64(vzip1q_s64(a, b));
    p[1] = vreinterpretq_s8_s64(vzip2q_s64(a, b));
    p[2] = vreinterpretq_s8_s64(vzip1q_s64(c, d));
    p[3] = vreinterpretq_s8_s64(vzip2q_s64(c, d));
}

/* The q8 block b of tokens c and c2 as smmla operands. */
ALWAYS_INLINE void token_pieces(const uint8_t *x, size_t ldx, int c, int c2, int64_t b,
                                int8x16_t p[4]) {
    const int8_t *a = (const int8_t *)(x + c * ldx) + b * Q35_Q8_BLOCK;
    const int8_t *a2 = (const int8_t *)(x + c2 * ldx) + b * Q35_Q8_BLOCK;
    pair_pieces(vld1q_s8(a), vld1q_s8(a + 16), vld1q_s8(a2), vld1q_s8(a2 + 16), p);
}

/* Lanes [v_r, v_r, v_r+1, v_r+1] and [u_c, u_c+1, u_c, u_c+1] of per-row and
 * per-token values (v and u hold rows / tokens 0..3 in lanes), for row pair
 * i and token pair j. */
ALWAYS_INLINE float32x4_t rows_lanes(float32x4_t v, const int i) {
    return i == 0 ? vzip1q_f32(v, v) : vzip2q_f32(v, v);
}
ALWAYS_INLINE float32x4_t tokens_lanes(float32x4_t u, const int j) {
    return j == 0 ? vcombine_f32(vget_low_f32(u), vget_low_f32(u))
                  : vcombine_f32(vget_high_f32(u), vget_high_f32(u));
}

/* Rows and tokens of a tile padded to pairs: index k of n, the last one
 * standing in for the missing twin. */
#define TWIN(k, n) ((k) < (n) ? (k) : (n)-1)

/* The q8 scales d_b of tokens 0..C-1 (the last repeated) in lanes. */
ALWAYS_INLINE float32x4_t token_scales(const float *const xd[NEON_NR], const int C, int64_t b) {
    float u[4];
    UNROLL for (int c = 0; c < 4; c++) u[c] = xd[TWIN(c, C)][b];
    return vld1q_f32(u);
}

ALWAYS_INLINE void store_pairs(float32x4_t acc[PR][PC], const int R, const int C, float *y,
                               int64_t ldy) {
    UNROLL for (int i = 0; i < PR; i++) UNROLL for (int j = 0; j < PC; j++) {
        float v[4];
        vst1q_f32(v, acc[i][j]);
        UNROLL for (int l = 0; l < 4; l++) {
            int r = 2 * i + l / 2, c = 2 * j + l % 2;
            if (r < R && c < C) y[c * ldy + r] = v[l];
        }
    }
}

/* smmla: r + [a0 . b0, a0 . b1, a1 . b0, a1 . b1] for the 8-byte halves
 * a0, a1 of a and b0, b1 of b. */
static inline int32x4_t mmla(int32x4_t r, int8x16_t a, int8x16_t b) {
#if defined(__clang__) && !defined(__ARM_FEATURE_MATMUL_INT8)
    int16x8_t p00 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t p01 = vmull_s8(vget_low_s8(a), vget_high_s8(b));
    int16x8_t p10 = vmull_s8(vget_high_s8(a), vget_low_s8(b));
    int16x8_t p11 = vmull_s8(vget_high_s8(a), vget_high_s8(b));
    int32x4_t t0 = vpaddq_s32(vpaddlq_s16(p00), vpaddlq_s16(p01));
    int32x4_t t1 = vpaddq_s32(vpaddlq_s16(p10), vpaddlq_s16(p11));
    return vaddq_s32(r, vpaddq_s32(t0, t1));
#else
    return vmmlaq_s32(r, a, b);
#endif
}

/* The four block sums of row pair i and token pair j: four smmla. */
ALWAYS_INLINE int32x4_t mmla4(const int8x16_t wp[4], const int8x16_t xp[4]) {
    int32x4_t s = mmla(vdupq_n_s32(0), wp[0], xp[0]);
    s = mmla(s, wp[1], xp[1]);
    s = mmla(s, wp[2], xp[2]);
    return mmla(s, wp[3], xp[3]);
}

/* ---- Q8_0 and Q4_0 */

ALWAYS_INLINE void mtile_q0(q35_dtype dt, const uint8_t *w, size_t ldw, const int R,
                            const uint8_t *x, size_t ldx, const int C, int64_t cols, float *y,
                            int64_t ldy) {
    const int P = (R + 1) / 2, Q = (C + 1) / 2;
    size_t bb = q35_dtype_block_bytes(dt);
    float32x4_t acc[PR][PC];
    const float *xd[NEON_NR];
    UNROLL for (int c = 0; c < C; c++) xd[c] = q35_q8_row_d(x + c * ldx, cols);
    UNROLL for (int i = 0; i < P; i++) UNROLL for (int j = 0; j < Q; j++) acc[i][j] =
        vdupq_n_f32(0);
    for (int64_t b = 0; b < cols / Q35_Q8_BLOCK; b++) {
        const uint8_t *blk[NEON_MR];
        int8x16_t w0[NEON_MR], w1[NEON_MR], wp[PR][4];
        UNROLL for (int r = 0; r < R; r++) {
            blk[r] = w + r * ldw + (size_t)b * bb;
            __builtin_prefetch(ahead(blk[r], R * ldw)); /* the next tile's rows */
            qblock_s8(dt, blk[r], &w0[r], &w1[r]);
        }
        UNROLL for (int i = 0; i < P; i++) {
            int r0 = 2 * i, r1 = TWIN(2 * i + 1, R);
            pair_pieces(w0[r0], w1[r0], w0[r1], w1[r1], wp[i]);
        }
        float32x4_t dw = scales4(blk, R), db = token_scales(xd, C, b);
        UNROLL for (int j = 0; j < Q; j++) {
            int8x16_t xp[4];
            token_pieces(x, ldx, 2 * j, TWIN(2 * j + 1, C), b, xp);
            float32x4_t dbj = tokens_lanes(db, j);
            UNROLL for (int i = 0; i < P; i++) {
                float32x4_t s = vmulq_f32(rows_lanes(dw, i), dbj);
                acc[i][j] = vfmaq_f32(acc[i][j], vcvtq_f32_s32(mmla4(wp[i], xp)), s);
            }
        }
    }
    store_pairs(acc, R, C, y, ldy);
}

/* ---- Q4_K and Q5_K */

/* Lane l of the pair (i, j): sum over the 8 blocks of sub[r] * ds[c]. */
ALWAYS_INLINE float32x4_t mins_lanes(const float sub[NEON_MR][8], const float32x4_t ds[NEON_NR][2],
                                     const int i, const int j, const int R, const int C) {
    float32x4_t m[4];
    UNROLL for (int l = 0; l < 4; l++) {
        int r = TWIN(2 * i + l / 2, R), c = TWIN(2 * j + l % 2, C);
        m[l] = vmulq_f32(vld1q_f32(sub[r]), ds[c][0]);
        m[l] = vfmaq_f32(m[l], vld1q_f32(sub[r] + 4), ds[c][1]);
    }
    return vpaddq_f32(vpaddq_f32(m[0], m[1]), vpaddq_f32(m[2], m[3]));
}

ALWAYS_INLINE void mtile_k45(const bool fifth, const uint8_t *w, size_t ldw, const int R,
                             const uint8_t *x, size_t ldx, const int C, int64_t cols, float *y,
                             int64_t ldy) {
    const int P = (R + 1) / 2, Q = (C + 1) / 2;
    size_t bb = fifth ? 176 : 144;
    float32x4_t acc[PR][PC];
    const float *xd[NEON_NR];
    UNROLL for (int c = 0; c < C; c++) xd[c] = q35_q8_row_d(x + c * ldx, cols);
    UNROLL for (int i = 0; i < P; i++) UNROLL for (int j = 0; j < Q; j++) acc[i][j] =
        vdupq_n_f32(0);
    for (int64_t k = 0; k < cols / Q35_KBLOCK; k++) {
        const uint8_t *sb[NEON_MR];
        _Alignas(16) float mul[8][NEON_MR] = {{0}}, sub[NEON_MR][8];
        k45_gather(w, ldw, R, k, bb, sb, mul, sub);
        float32x4_t ds[NEON_NR][2];
        UNROLL for (int c = 0; c < C; c++) k45_dsums(x + c * ldx, cols, k, &ds[c][0], &ds[c][1]);
        UNROLL for (int i = 0; i < P; i++) UNROLL for (int j = 0; j < Q; j++) acc[i][j] =
            vsubq_f32(acc[i][j], mins_lanes(sub, ds, i, j, R, C));
        for (int jb = 0; jb < 8; jb++) {
            int64_t b = 8 * k + jb;
            int8x16_t w0[NEON_MR], w1[NEON_MR], wp[PR][4];
            UNROLL for (int r = 0; r < R; r++) k45_block_s8(sb[r], jb, fifth, &w0[r], &w1[r]);
            UNROLL for (int i = 0; i < P; i++) {
                int r0 = 2 * i, r1 = TWIN(2 * i + 1, R);
                pair_pieces(w0[r0], w1[r0], w0[r1], w1[r1], wp[i]);
            }
            float32x4_t dm = vld1q_f32(mul[jb]), db = token_scales(xd, C, b);
            UNROLL for (int j = 0; j < Q; j++) {
                int8x16_t xp[4];
                token_pieces(x, ldx, 2 * j, TWIN(2 * j + 1, C), b, xp);
                float32x4_t dbj = tokens_lanes(db, j);
                UNROLL for (int i = 0; i < P; i++) {
                    float32x4_t s = vmulq_f32(rows_lanes(dm, i), dbj);
                    acc[i][j] = vfmaq_f32(acc[i][j], vcvtq_f32_s32(mmla4(wp[i], xp)), s);
                }
            }
        }
    }
    store_pairs(acc, R, C, y, ldy);
}

/* ---- Q6_K: the block's two 16-element halves have their own int8
 * scales, so each half's sums (two smmla) are scaled in int32 first */

ALWAYS_INLINE void mtile_k6(const uint8_t *w, size_t ldw, const int R, const uint8_t *x, size_t ldx,
                            const int C, int64_t cols, float *y, int64_t ldy) {
    const int P = (R + 1) / 2, Q = (C + 1) / 2;
    float32x4_t acc[PR][PC];
    const float *xd[NEON_NR];
    UNROLL for (int c = 0; c < C; c++) xd[c] = q35_q8_row_d(x + c * ldx, cols);
    UNROLL for (int i = 0; i < P; i++) UNROLL for (int j = 0; j < Q; j++) acc[i][j] =
        vdupq_n_f32(0);
    for (int64_t k = 0; k < cols / Q35_KBLOCK; k++) {
        const uint8_t *sb[NEON_MR], *dp[NEON_MR];
        UNROLL for (int r = 0; r < R; r++) {
            sb[r] = w + r * ldw + (size_t)k * 210;
            dp[r] = sb[r] + 208;
            for (size_t off = 0; off < 210; off += 64)
                __builtin_prefetch(ahead(sb[r], R * ldw + off));
        }
        float32x4_t d = scales4(dp, R);
        for (int jb = 0; jb < 8; jb++) {
            int64_t b = 8 * k + jb;
            int8x16_t w0[NEON_MR], w1[NEON_MR], wp[PR][4];
            int32x4_t sc0[PR], sc1[PR];
            UNROLL for (int r = 0; r < R; r++) k6_block_s8(sb[r], jb, &w0[r], &w1[r]);
            UNROLL for (int i = 0; i < P; i++) {
                int r0 = 2 * i, r1 = TWIN(2 * i + 1, R);
                pair_pieces(w0[r0], w1[r0], w0[r1], w1[r1], wp[i]);
                const int8_t *s0 = (const int8_t *)sb[r0] + 192 + 2 * jb;
                const int8_t *s1 = (const int8_t *)sb[r1] + 192 + 2 * jb;
                int32_t a[4] = {s0[0], s0[0], s1[0], s1[0]}, h[4] = {s0[1], s0[1], s1[1], s1[1]};
                sc0[i] = vld1q_s32(a);
                sc1[i] = vld1q_s32(h);
            }
            float32x4_t db = token_scales(xd, C, b);
            UNROLL for (int j = 0; j < Q; j++) {
                int8x16_t xp[4];
                token_pieces(x, ldx, 2 * j, TWIN(2 * j + 1, C), b, xp);
                float32x4_t dbj = tokens_lanes(db, j);
                UNROLL for (int i = 0; i < P; i++) {
                    int32x4_t h0 = mmla(vdupq_n_s32(0), wp[i][0], xp[0]);
                    h0 = mmla(h0, wp[i][1], xp[1]);
                    int32x4_t h1 = mmla(vdupq_n_s32(0), wp[i][2], xp[2]);
                    h1 = mmla(h1, wp[i][3], xp[3]);
                    int32x4_t I = vmlaq_s32(vmulq_s32(h0, sc0[i]), h1, sc1[i]);
                    float32x4_t s = vmulq_f32(rows_lanes(d, i), dbj);
                    acc[i][j] = vfmaq_f32(acc[i][j], vcvtq_f32_s32(I), s);
                }
            }
        }
    }
    store_pairs(acc, R, C, y, ldy);
}

/* MLX affine: sdot's tiles (int8_mlx_neon.h), every i8mm core has sdot */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) {
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a));
#else
    return vdotq_s32(acc, w, a);
#endif
}
#include "kernels/int8_mlx_neon.h"

#define Q8_0_MTILE(r, c) mtile_q0(Q35_DT_Q8_0, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q4_0_MTILE(r, c) mtile_q0(Q35_DT_Q4_0, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q4_K_MTILE(r, c) mtile_k45(false, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q5_K_MTILE(r, c) mtile_k45(true, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q6_K_MTILE(r, c) mtile_k6(w, ldw, r, x, ldx, c, cols, y, ldy)

Q35_NEON_I8_SET(q35_i8_neon_i8mm_set, "neon-i8mm", NEON_NR, Q8_0_MTILE, Q4_0_MTILE, Q4_K_MTILE,
                Q5_K_MTILE, Q6_K_MTILE)
