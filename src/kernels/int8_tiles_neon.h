/* int8_tiles_neon.h — the NEON micro-kernels of the integer matmul path
 * (microkernel.h) for the sets whose integer step is a 16-byte dot product
 * into four int32 lanes: plain NEON (int8_neon.c: smull + sadalp) and
 * dotprod (int8_dotprod_neon.c: sdot). Each of those files defines
 *     static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a)
 * (acc plus, spread over its lanes, the 16 products w_i * a_i, exactly)
 * and then includes this header, which is all the arithmetic per format:
 * the loops over rows and tokens are the shared driver's (matmul_int8.c).
 *
 * A tile is R <= NEON_MR weight rows x C <= SDOT_NR q8 rows. Per 32-element
 * block b, weight row r and token c, the block's integer sum I_b (as four
 * int32 lane partials) is converted to float32 and added, fused with its
 * float scale, to the (r, c) accumulator; the mins of Q4_K / Q5_K are
 * subtracted from the same accumulator per super-block. Each (r, c)
 * accumulator sees the same operations whatever R and C are, so a result
 * never depends on the tile it was computed in.
 *
 * Weights are read in place at any byte offset (vld1 has no alignment
 * needs); q8 rows are 64-byte aligned (microkernel.h). */
#ifndef Q35_KERNELS_INT8_TILES_NEON_H
#define Q35_KERNELS_INT8_TILES_NEON_H

#include "kernels/int8_blocks_neon.h"

/* The sets' tile: 4 rows x 3 tokens. 4 x 4 (16 accumulators, 8 weight
 * registers, the token's two and the temporaries) does not fit the 32
 * vector registers: GCC 12 spills six accumulators per block. Chosen from
 * the generated code, not timed (no AArch64 machine). */
#define SDOT_NR 3

ALWAYS_INLINE void store_tile(float32x4_t acc[NEON_MR][NEON_NR], const int R, const int C, float *y,
                              int64_t ldy) {
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        vaddvq_f32(acc[r][c]);
}

/* ---- Q8_0 and Q4_0: 32-element blocks with one f16 scale each */

ALWAYS_INLINE void tile_q0(q35_dtype dt, const uint8_t *w, size_t ldw, const int R,
                           const uint8_t *x, size_t ldx, const int C, int64_t cols, float *y,
                           int64_t ldy) {
    size_t bb = q35_dtype_block_bytes(dt);
    float32x4_t acc[NEON_MR][NEON_NR];
    const float *xd[NEON_NR];
    UNROLL for (int c = 0; c < C; c++) xd[c] = q35_q8_row_d(x + c * ldx, cols);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        vdupq_n_f32(0);
    for (int64_t b = 0; b < cols / Q35_Q8_BLOCK; b++) {
        const uint8_t *blk[NEON_MR];
        int8x16_t w0[NEON_MR], w1[NEON_MR];
        UNROLL for (int r = 0; r < R; r++) {
            blk[r] = w + r * ldw + (size_t)b * bb;
            __builtin_prefetch(ahead(blk[r], R * ldw)); /* the next tile's rows */
            qblock_s8(dt, blk[r], &w0[r], &w1[r]);
        }
        float32x4_t dw = scales4(blk, R);
        UNROLL for (int c = 0; c < C; c++) {
            const int8_t *a = (const int8_t *)(x + c * ldx) + b * Q35_Q8_BLOCK;
            int8x16_t a0 = vld1q_s8(a), a1 = vld1q_s8(a + 16);
            float sv[4]; /* lane r: dw_r * d_b */
            vst1q_f32(sv, vmulq_n_f32(dw, xd[c][b]));
            UNROLL for (int r = 0; r < R; r++) {
                int32x4_t i = dot16(dot16(vdupq_n_s32(0), w0[r], a0), w1[r], a1);
                acc[r][c] = vfmaq_n_f32(acc[r][c], vcvtq_f32_s32(i), sv[r]);
            }
        }
    }
    store_tile(acc, R, C, y, ldy);
}

/* ---- Q4_K and Q5_K: 256-element super-blocks, 8 sub-blocks with a scale
 * and a min each, the sub-blocks being the q8 row's blocks */

ALWAYS_INLINE void tile_k45(const bool fifth, const uint8_t *w, size_t ldw, const int R,
                            const uint8_t *x, size_t ldx, const int C, int64_t cols, float *y,
                            int64_t ldy) {
    size_t bb = fifth ? 176 : 144;
    float32x4_t acc[NEON_MR][NEON_NR];
    const float *xd[NEON_NR];
    UNROLL for (int c = 0; c < C; c++) xd[c] = q35_q8_row_d(x + c * ldx, cols);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        vdupq_n_f32(0);
    for (int64_t k = 0; k < cols / Q35_KBLOCK; k++) {
        const uint8_t *sb[NEON_MR];
        _Alignas(16) float mul[8][NEON_MR] = {{0}}, sub[NEON_MR][8];
        k45_gather(w, ldw, R, k, bb, sb, mul, sub);
        /* the mins: sum over j of (dmin m_j) (d_b s_b), lane-wise */
        UNROLL for (int c = 0; c < C; c++) {
            float32x4_t ds0, ds1;
            k45_dsums(x + c * ldx, cols, k, &ds0, &ds1);
            UNROLL for (int r = 0; r < R; r++) {
                acc[r][c] = vfmsq_f32(acc[r][c], vld1q_f32(sub[r]), ds0);
                acc[r][c] = vfmsq_f32(acc[r][c], vld1q_f32(sub[r] + 4), ds1);
            }
        }
        for (int j = 0; j < 8; j++) {
            int64_t b = 8 * k + j;
            int8x16_t w0[NEON_MR], w1[NEON_MR];
            UNROLL for (int r = 0; r < R; r++) k45_block_s8(sb[r], j, fifth, &w0[r], &w1[r]);
            float32x4_t dm = vld1q_f32(mul[j]);
            UNROLL for (int c = 0; c < C; c++) {
                const int8_t *a = (const int8_t *)(x + c * ldx) + b * Q35_Q8_BLOCK;
                int8x16_t a0 = vld1q_s8(a), a1 = vld1q_s8(a + 16);
                float sv[4]; /* lane r: d sc_j d_b */
                vst1q_f32(sv, vmulq_n_f32(dm, xd[c][b]));
                UNROLL for (int r = 0; r < R; r++) {
                    int32x4_t i = dot16(dot16(vdupq_n_s32(0), w0[r], a0), w1[r], a1);
                    acc[r][c] = vfmaq_n_f32(acc[r][c], vcvtq_f32_s32(i), sv[r]);
                }
            }
        }
    }
    store_tile(acc, R, C, y, ldy);
}

/* ---- Q6_K: 256-element super-blocks, sixteen int8 scales of 16 elements */

ALWAYS_INLINE void tile_k6(const uint8_t *w, size_t ldw, const int R, const uint8_t *x, size_t ldx,
                           const int C, int64_t cols, float *y, int64_t ldy) {
    float32x4_t acc[NEON_MR][NEON_NR];
    const float *xd[NEON_NR];
    UNROLL for (int c = 0; c < C; c++) xd[c] = q35_q8_row_d(x + c * ldx, cols);
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
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
        for (int j = 0; j < 8; j++) {
            int64_t b = 8 * k + j;
            int8x16_t w0[NEON_MR], w1[NEON_MR];
            UNROLL for (int r = 0; r < R; r++) k6_block_s8(sb[r], j, &w0[r], &w1[r]);
            UNROLL for (int c = 0; c < C; c++) {
                const int8_t *a = (const int8_t *)(x + c * ldx) + b * Q35_Q8_BLOCK;
                int8x16_t a0 = vld1q_s8(a), a1 = vld1q_s8(a + 16);
                float sv[4]; /* lane r: d_r * d_b */
                vst1q_f32(sv, vmulq_n_f32(d, xd[c][b]));
                UNROLL for (int r = 0; r < R; r++) {
                    const int8_t *sc = (const int8_t *)sb[r] + 192 + 2 * j;
                    int32x4_t i = vmulq_n_s32(dot16(vdupq_n_s32(0), w0[r], a0), sc[0]);
                    i = vmlaq_n_s32(i, dot16(vdupq_n_s32(0), w1[r], a1), sc[1]);
                    acc[r][c] = vfmaq_n_f32(acc[r][c], vcvtq_f32_s32(i), sv[r]);
                }
            }
        }
    }
    store_tile(acc, R, C, y, ldy);
}

/* ---- the tile functions for NEON_UKERNEL */

#define Q8_0_TILE(r, c) tile_q0(Q35_DT_Q8_0, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q4_0_TILE(r, c) tile_q0(Q35_DT_Q4_0, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q4_K_TILE(r, c) tile_k45(false, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q5_K_TILE(r, c) tile_k45(true, w, ldw, r, x, ldx, c, cols, y, ldy)
#define Q6_K_TILE(r, c) tile_k6(w, ldw, r, x, ldx, c, cols, y, ldy)

#endif
