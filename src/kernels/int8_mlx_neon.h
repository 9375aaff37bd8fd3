/* int8_mlx_neon.h — the NEON integer micro-kernels for MLX affine weights
 * (microkernel.h's view kernels; definition in int8_generic.c), for every
 * NEON set: the includer defines
 *     static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a)
 * (acc plus the 16 products w_i * a_i spread over its lanes, exactly:
 * smull + sadalp on Armv8.0, sdot on dotprod and i8mm cores) and includes
 * this header after int8_blocks_neon.h. The tile's shape and loop are
 * int8_x86_mlx.h's, the instruction set the only difference:
 *   - per 8 blocks, per row, the blocks' scales s_g and biases z_g widened
 *     to float32 a vector at a time (mlx_aux8); per token d_b * S_b; the
 *     bias part sum z_g (d_b S_b) as two 4-lane fused multiply-adds per
 *     (row, token);
 *   - per block, the 32 codes as int8 (mlx_block_s8; at 4 bits in stored
 *     order, the activations reordered to match, mlx_acts), I_b as dot16's
 *     lanes, converted and added with s_g * d_b.
 * 8-bit codes (0..255) do not fit int8: they are taken as q - 128 and
 * 128 * S_b added back to I_b in the integers. Smaller codes are <= 63. */
#ifndef Q35_KERNELS_INT8_MLX_NEON_H
#define Q35_KERNELS_INT8_MLX_NEON_H

#include "kernels/mlx_affine.h"
#include "kernels/mlx_codes.h"

#define MLX_NEON_NR 3 /* 4 rows x 3 tokens, as the sdot tiles (registers) */

/* The 32 codes of the block at p (4 * B bytes, never read past) as int8
 * in element order: lo elements 0..15, hi 16..31 (8 bits: q - 128); at 4
 * bits the even elements then the odd ones, as stored, and mlx_acts puts
 * the activations in that order (once per token, not once per row). */
ALWAYS_INLINE void mlx_block_s8(const int B, const uint8_t *p, int8x16_t *lo, int8x16_t *hi) {
    if (B == 8) {
        *lo = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80)));
        *hi = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 16), vdupq_n_u8(0x80)));
        return;
    }
    if (B == 4) { /* even elements (low nibbles), odd ones (high): see mlx_acts */
        uint8x16_t u = vld1q_u8(p);
        *lo = vreinterpretq_s8_u8(vandq_u8(u, vdupq_n_u8(15)));
        *hi = vreinterpretq_s8_u8(vshrq_n_u8(u, 4));
        return;
    }
    uint8x16_t a, b; /* mlx_codes.h: codes 0..15 from a, 16..31 from b */
    if (4 * B >= 16) {
        a = vld1q_u8(p);
        b = vld1q_u8(p + 4 * B - 16);
    } else {
        a = vcombine_u8(vld1_u8(p), vld1_u8(p + 4 * B - 8));
        b = a;
    }
    const uint8_t *idx = q35_mlx_codes_idx(B);
    const int16_t *shr = q35_mlx_codes_shr(B);
    const uint16x8_t mask = vdupq_n_u16((uint16_t)((1u << B) - 1));
    uint16x8_t h[4];
    for (int i = 0; i < 4; i++) {
        uint8x16_t t = vqtbl1q_u8(i < 2 ? a : b, vld1q_u8(idx + 16 * i));
        h[i] = vandq_u16(vshlq_u16(vreinterpretq_u16_u8(t), vld1q_s16(shr + 8 * i)), mask);
    }
    *lo = vreinterpretq_s8_u8(vcombine_u8(vmovn_u16(h[0]), vmovn_u16(h[1])));
    *hi = vreinterpretq_s8_u8(vcombine_u8(vmovn_u16(h[2]), vmovn_u16(h[3])));
}

/* Block b's activations of a q8 row in the order of mlx_block_s8(B). */
ALWAYS_INLINE void mlx_acts(const int B, const int8_t *a, int8x16_t *a0, int8x16_t *a1) {
    int8x16_t u = vld1q_s8(a), v = vld1q_s8(a + 16);
    *a0 = B == 4 ? vuzp1q_s8(u, v) : u;
    *a1 = B == 4 ? vuzp2q_s8(u, v) : v;
}

/* The scales (or biases) of blocks k .. k+7 of a row whose array is at p
 * (dtype aux, one per 2^gshift blocks) as two 4-lane vectors: the 8, 4 or
 * 2 values widened at once and spread over their blocks. Only where all 8
 * blocks exist (the loads stay within the row's array). */
ALWAYS_INLINE void mlx_aux8(const uint8_t *p, int aux, int gshift, int64_t k, float32x4_t *lo,
                            float32x4_t *hi) {
    const int64_t g0 = k >> gshift;
    float32x4_t v0, v1 = vdupq_n_f32(0);
    if (aux == Q35_DT_F32) {
        float f[4] = {0, 0, 0, 0};
        memcpy(f, p + 4 * g0, (size_t)(4 * (gshift == 2 ? 2 : 4)));
        v0 = vld1q_f32(f);
        if (gshift == 0) v1 = vld1q_f32((const float *)(const void *)(p + 4 * g0) + 4);
    } else {
        uint16_t h[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(h, p + 2 * g0, (size_t)(2 * (8 >> gshift)));
        uint16x4_t u0 = vld1_u16(h), u1 = vld1_u16(h + 4);
        if (aux == Q35_DT_F16) {
            v0 = vcvt_f32_f16(vreinterpret_f16_u16(u0));
            v1 = vcvt_f32_f16(vreinterpret_f16_u16(u1));
        } else {
            v0 = vreinterpretq_f32_u32(vshll_n_u16(u0, 16));
            v1 = vreinterpretq_f32_u32(vshll_n_u16(u1, 16));
        }
    }
    if (gshift == 0) {
        *lo = v0;
        *hi = v1;
    } else if (gshift == 1) {
        *lo = vzip1q_f32(v0, v0);
        *hi = vzip2q_f32(v0, v0);
    } else {
        *lo = vdupq_laneq_f32(v0, 0);
        *hi = vdupq_laneq_f32(v0, 1);
    }
}

ALWAYS_INLINE void tile_mlx(const int B, const q35_i8_wview *v, const int R, const uint8_t *x,
                            size_t ldx, const int C, int64_t cols, float *y, int64_t ldy) {
    float32x4_t acc[NEON_MR][MLX_NEON_NR];
    const float *xd[MLX_NEON_NR];
    const int16_t *xs[MLX_NEON_NR];
    UNROLL for (int c = 0; c < C; c++) {
        xd[c] = q35_q8_row_d(x + c * ldx, cols);
        xs[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        vdupq_n_f32(0);
    const int64_t nb = cols / Q35_Q8_BLOCK;
    const int gshift = v->group == 32 ? 0 : v->group == 64 ? 1 : 2; /* block -> group */
    const size_t bb = (size_t)(4 * B);
    for (int64_t k = 0; k < nb; k += 8) {
        const int n = nb - k < 8 ? (int)(nb - k) : 8;
        _Alignas(16) float sc[NEON_MR][8];
        float32x4_t zc[NEON_MR][2];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *s = v->s + r * v->lds, *z = v->z + r * v->lds;
            __builtin_prefetch(ahead(v->q + r * v->ldq + k * bb, R * v->ldq));
            if (n == 8) {
                float32x4_t s0, s1;
                mlx_aux8(s, v->aux, gshift, k, &s0, &s1);
                vst1q_f32(sc[r], s0);
                vst1q_f32(sc[r] + 4, s1);
                mlx_aux8(z, v->aux, gshift, k, &zc[r][0], &zc[r][1]);
            } else { /* the row's last, partial step: one by one */
                _Alignas(16) float zt[8] = {0};
                for (int j = 0; j < n; j++) {
                    sc[r][j] = q35_mlx_aux_f32(s, v->aux, (size_t)((k + j) >> gshift));
                    zt[j] = q35_mlx_aux_f32(z, v->aux, (size_t)((k + j) >> gshift));
                }
                zc[r][0] = vld1q_f32(zt);
                zc[r][1] = vld1q_f32(zt + 4);
            }
        }
        /* the biases: sum over the blocks of z_g * (d_b * S_b), lane-wise */
        UNROLL for (int c = 0; c < C; c++) {
            float32x4_t ds0, ds1;
            if (n == 8)
                k45_dsums(x + c * ldx, cols, k / 8, &ds0, &ds1);
            else {
                _Alignas(16) float t[8] = {0};
                for (int j = 0; j < n; j++)
                    t[j] = xd[c][k + j] * (float)(xs[c][2 * (k + j)] + xs[c][2 * (k + j) + 1]);
                ds0 = vld1q_f32(t);
                ds1 = vld1q_f32(t + 4);
            }
            UNROLL for (int r = 0; r < R; r++) {
                acc[r][c] = vfmaq_f32(acc[r][c], zc[r][0], ds0);
                acc[r][c] = vfmaq_f32(acc[r][c], zc[r][1], ds1);
            }
        }
        for (int j = 0; j < n; j++) {
            const int64_t b = k + j;
            int8x16_t w0[NEON_MR], w1[NEON_MR];
            UNROLL for (int r = 0; r < R; r++)
                mlx_block_s8(B, v->q + r * v->ldq + (size_t)b * bb, &w0[r], &w1[r]);
            UNROLL for (int c = 0; c < C; c++) {
                int8x16_t a0, a1;
                mlx_acts(B, (const int8_t *)(x + c * ldx) + b * Q35_Q8_BLOCK, &a0, &a1);
                int32x4_t off = vdupq_n_s32(0);
                if (B == 8) off = vsetq_lane_s32(128 * (xs[c][2 * b] + xs[c][2 * b + 1]), off, 0);
                UNROLL for (int r = 0; r < R; r++) {
                    int32x4_t i = dot16(dot16(off, w0[r], a0), w1[r], a1);
                    acc[r][c] = vfmaq_n_f32(acc[r][c], vcvtq_f32_s32(i), sc[r][j] * xd[c][b]);
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        vaddvq_f32(acc[r][c]);
}

/* A view micro-kernel whose tile function gets R and C as constants. */
#define MLX_NEON_UKERNEL(fname, B)                                                                 \
    static void fname(const q35_i8_wview *v, int R, const uint8_t *x, size_t ldx, int C,           \
                      int64_t cols, float *y, int64_t ldy) {                                       \
        switch (R * 8 + C) {                                                                       \
        case 1 * 8 + 1: tile_mlx(B, v, 1, x, ldx, 1, cols, y, ldy); break;                         \
        case 1 * 8 + 2: tile_mlx(B, v, 1, x, ldx, 2, cols, y, ldy); break;                         \
        case 1 * 8 + 3: tile_mlx(B, v, 1, x, ldx, 3, cols, y, ldy); break;                         \
        case 2 * 8 + 1: tile_mlx(B, v, 2, x, ldx, 1, cols, y, ldy); break;                         \
        case 2 * 8 + 2: tile_mlx(B, v, 2, x, ldx, 2, cols, y, ldy); break;                         \
        case 2 * 8 + 3: tile_mlx(B, v, 2, x, ldx, 3, cols, y, ldy); break;                         \
        case 3 * 8 + 1: tile_mlx(B, v, 3, x, ldx, 1, cols, y, ldy); break;                         \
        case 3 * 8 + 2: tile_mlx(B, v, 3, x, ldx, 2, cols, y, ldy); break;                         \
        case 3 * 8 + 3: tile_mlx(B, v, 3, x, ldx, 3, cols, y, ldy); break;                         \
        case 4 * 8 + 1: tile_mlx(B, v, 4, x, ldx, 1, cols, y, ldy); break;                         \
        case 4 * 8 + 2: tile_mlx(B, v, 4, x, ldx, 2, cols, y, ldy); break;                         \
        default: tile_mlx(B, v, 4, x, ldx, 3, cols, y, ldy); break;                                \
        }                                                                                          \
    }
MLX_NEON_UKERNEL(uk_mlx2, 2)
MLX_NEON_UKERNEL(uk_mlx3, 3)
MLX_NEON_UKERNEL(uk_mlx4, 4)
MLX_NEON_UKERNEL(uk_mlx5, 5)
MLX_NEON_UKERNEL(uk_mlx6, 6)
MLX_NEON_UKERNEL(uk_mlx8, 8)

/* The sets' table entries (one line in each NEON set file). */
#define Q35_NEON_MLX_ENTRIES                                                                       \
    [Q35_DT_MLX2] = {.mr = NEON_MR, .nr = MLX_NEON_NR, .fnv = uk_mlx2},                            \
    [Q35_DT_MLX3] = {.mr = NEON_MR, .nr = MLX_NEON_NR, .fnv = uk_mlx3},                            \
    [Q35_DT_MLX4] = {.mr = NEON_MR, .nr = MLX_NEON_NR, .fnv = uk_mlx4},                            \
    [Q35_DT_MLX5] = {.mr = NEON_MR, .nr = MLX_NEON_NR, .fnv = uk_mlx5},                            \
    [Q35_DT_MLX6] = {.mr = NEON_MR, .nr = MLX_NEON_NR, .fnv = uk_mlx6},                            \
    [Q35_DT_MLX8] = {.mr = NEON_MR, .nr = MLX_NEON_NR, .fnv = uk_mlx8}

#endif
