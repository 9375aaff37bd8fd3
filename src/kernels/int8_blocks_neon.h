/* int8_blocks_neon.h — weight blocks read into NEON registers as int8 for
 * the integer micro-kernels of every NEON set (int8_tiles_neon.h for plain
 * NEON and sdot, int8_i8mm_neon.c for smmla): per format, the 32 weights of
 * one 32-element block (one q8 block's worth) and the block's scales, read
 * in place at any byte offset (vld1 needs no alignment). Plain Armv8.0
 * NEON only, so every set's file can include it. */
#ifndef Q35_KERNELS_INT8_BLOCKS_NEON_H
#define Q35_KERNELS_INT8_BLOCKS_NEON_H

#include <arm_neon.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/microkernel.h"
#include "kernels/quant_block.h"

#define NEON_MR 4 /* the register tiles of every NEON set */
#define NEON_NR 4
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

/* Four f16 scales (one per weight row, at p[r] .. p[r]+1; rows past R read
 * as 0) as float32 lanes. */
ALWAYS_INLINE float32x4_t scales4(const uint8_t *const p[NEON_MR], const int R) {
    uint16_t h[4] = {0, 0, 0, 0};
    UNROLL for (int r = 0; r < R; r++) h[r] = q35_qblock_d16(p[r]);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

/* An address to prefetch, possibly past the matrix (prefetches never
 * fault); an integer, as pointer arithmetic past an object is undefined. */
ALWAYS_INLINE const void *ahead(const uint8_t *p, size_t bytes) {
    return (const void *)((uintptr_t)p + bytes);
}

/* The 32 weights of the block at b as int8: Q8_0 as stored, Q4_0 nibbles
 * (elements 0..15 low, 16..31 high) minus 8. */
ALWAYS_INLINE void qblock_s8(q35_dtype dt, const uint8_t *b, int8x16_t *lo, int8x16_t *hi) {
    if (dt == Q35_DT_Q8_0) {
        *lo = vld1q_s8((const int8_t *)b + 2);
        *hi = vld1q_s8((const int8_t *)b + 18);
    } else {
        uint8x16_t u = vld1q_u8(b + 2);
        *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(u, vdupq_n_u8(15))), vdupq_n_s8(8));
        *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(u, 4)), vdupq_n_s8(8));
    }
}

/* Per super-block and row, in block order j = 0..7: d * sc_j into mul[j]
 * and dmin * m_j into sub[j]. */
ALWAYS_INLINE void k45_scales(const uint8_t *sb, float *mul, float *sub) {
    float d = q35_f16_to_f32(q35_qblock_d16(sb)), dmin = q35_f16_to_f32(q35_qblock_d16(sb + 2));
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        q35_k4_scale_min(sb + 4, j, &sc, &mn);
        mul[j] = d * (float)sc;
        sub[j] = dmin * (float)mn;
    }
}

/* Super-block k of R Q4_K / Q5_K rows (bb bytes each): its address per
 * row into sb (the next tile's rows prefetched), d * sc_j lane-wise by row
 * into mul[j][r] (rows past R zero) and dmin * m_j per row into sub[r][j]. */
ALWAYS_INLINE void k45_gather(const uint8_t *w, size_t ldw, const int R, int64_t k, size_t bb,
                              const uint8_t *sb[NEON_MR], float mul[8][NEON_MR],
                              float sub[NEON_MR][8]) {
    UNROLL for (int r = 0; r < R; r++) {
        sb[r] = w + r * ldw + (size_t)k * bb;
        for (size_t off = 0; off < bb; off += 64)
            __builtin_prefetch(ahead(sb[r], R * ldw + off));
        float m[8];
        k45_scales(sb[r], m, sub[r]);
        for (int j = 0; j < 8; j++)
            mul[j][r] = m[j];
    }
}

/* For token row x, super-block k: d_b * (s_2b + s_2b+1) for its 8 blocks
 * b = 8k + j (what each block's min multiplies) as two vectors. */
ALWAYS_INLINE void k45_dsums(const uint8_t *x, int64_t cols, int64_t k, float32x4_t *lo,
                             float32x4_t *hi) {
    const int16_t *s = q35_q8_row_s(x, cols) + 16 * k;
    const float *d = q35_q8_row_d(x, cols) + 8 * k;
    int32x4_t s0 = vpaddlq_s16(vld1q_s16(s)), s1 = vpaddlq_s16(vld1q_s16(s + 8));
    *lo = vmulq_f32(vld1q_f32(d), vcvtq_f32_s32(s0));
    *hi = vmulq_f32(vld1q_f32(d + 4), vcvtq_f32_s32(s1));
}

/* The 32 weights of sub-block j of the Q4_K (fifth = false) or Q5_K
 * super-block sb as int8 (0..15, or 0..31 with the fifth bit). */
ALWAYS_INLINE void k45_block_s8(const uint8_t *sb, int j, const bool fifth, int8x16_t *lo,
                                int8x16_t *hi) {
    const uint8_t *q = sb + (fifth ? 48 : 16) + 32 * (j / 2);
    uint8x16_t u0 = vld1q_u8(q), u1 = vld1q_u8(q + 16);
    if (j & 1) {
        u0 = vshrq_n_u8(u0, 4);
        u1 = vshrq_n_u8(u1, 4);
    } else {
        u0 = vandq_u8(u0, vdupq_n_u8(15));
        u1 = vandq_u8(u1, vdupq_n_u8(15));
    }
    if (fifth) { /* bit j of byte l of sb + 16: 16 added to element 32j + l */
        uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << j)), h0 = vld1q_u8(sb + 16),
                   h1 = vld1q_u8(sb + 32);
        u0 = vorrq_u8(u0, vandq_u8(vtstq_u8(h0, bit), vdupq_n_u8(16)));
        u1 = vorrq_u8(u1, vandq_u8(vtstq_u8(h1, bit), vdupq_n_u8(16)));
    }
    *lo = vreinterpretq_s8_u8(u0);
    *hi = vreinterpretq_s8_u8(u1);
}

/* The 32 weights of block j (elements 32j ..) of the Q6_K super-block sb as
 * int8 in -32..31: low nibbles from ql (elements l and l + 64 of a half
 * share byte l, l + 32 and l + 96 byte l + 32), high bit pairs from qh
 * (element l + 32k of a half: bits 2k, 2k+1 of byte l). */
ALWAYS_INLINE void k6_block_s8(const uint8_t *sb, int j, int8x16_t *lo, int8x16_t *hi) {
    int h = j / 4, k = j % 4;
    const uint8_t *ql = sb + 64 * h + 32 * (k & 1), *qh = sb + 128 + 32 * h;
    uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16);
    uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
    uint8x16_t m4 = vdupq_n_u8(15), m2 = vdupq_n_u8(3 << 4);
    if (k >> 1) {
        l0 = vshrq_n_u8(l0, 4);
        l1 = vshrq_n_u8(l1, 4);
    } else {
        l0 = vandq_u8(l0, m4);
        l1 = vandq_u8(l1, m4);
    }
    /* bits 2k, 2k+1 of qh to bits 4, 5 */
    switch (k) {
    case 0:
        h0 = vshlq_n_u8(h0, 4);
        h1 = vshlq_n_u8(h1, 4);
        break;
    case 1:
        h0 = vshlq_n_u8(h0, 2);
        h1 = vshlq_n_u8(h1, 2);
        break;
    case 3:
        h0 = vshrq_n_u8(h0, 2);
        h1 = vshrq_n_u8(h1, 2);
        break;
    default: break;
    }
    *lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l0, vandq_u8(h0, m2))), vdupq_n_s8(32));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l1, vandq_u8(h1, m2))), vdupq_n_s8(32));
}

/* A micro-kernel (microkernel.h) whose tile function tile_call(R, C) gets
 * R and C as constants, so that its loops unroll into registers. */
#define NEON_UKERNEL(fname, tile_call)                                                             \
    static void fname(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,    \
                      int64_t cols, float *y, int64_t ldy) {                                       \
        switch (R * 8 + C) {                                                                       \
        case 1 * 8 + 1: tile_call(1, 1); break;                                                    \
        case 1 * 8 + 2: tile_call(1, 2); break;                                                    \
        case 1 * 8 + 3: tile_call(1, 3); break;                                                    \
        case 1 * 8 + 4: tile_call(1, 4); break;                                                    \
        case 2 * 8 + 1: tile_call(2, 1); break;                                                    \
        case 2 * 8 + 2: tile_call(2, 2); break;                                                    \
        case 2 * 8 + 3: tile_call(2, 3); break;                                                    \
        case 2 * 8 + 4: tile_call(2, 4); break;                                                    \
        case 3 * 8 + 1: tile_call(3, 1); break;                                                    \
        case 3 * 8 + 2: tile_call(3, 2); break;                                                    \
        case 3 * 8 + 3: tile_call(3, 3); break;                                                    \
        case 3 * 8 + 4: tile_call(3, 4); break;                                                    \
        case 4 * 8 + 1: tile_call(4, 1); break;                                                    \
        case 4 * 8 + 2: tile_call(4, 2); break;                                                    \
        case 4 * 8 + 3: tile_call(4, 3); break;                                                    \
        default: tile_call(4, 4); break;                                                           \
        }                                                                                          \
    }

/* The table of a NEON integer set, name NAME, nr tokens a tile, from its
 * five tile macros (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; NEON_UKERNEL's
 * tile_call form) and the MLX entries of int8_mlx_neon.h. */
#define Q35_NEON_I8_SET(var, NAME, NR, Q8_0_T, Q4_0_T, Q4_K_T, Q5_K_T, Q6_K_T)                     \
    NEON_UKERNEL(uk_q8_0, Q8_0_T)                                                                  \
    NEON_UKERNEL(uk_q4_0, Q4_0_T)                                                                  \
    NEON_UKERNEL(uk_q4_K, Q4_K_T)                                                                  \
    NEON_UKERNEL(uk_q5_K, Q5_K_T)                                                                  \
    NEON_UKERNEL(uk_q6_K, Q6_K_T)                                                                  \
    const q35_i8_kernels var = {                                                                   \
        .name = NAME,                                                                              \
        .quantize = q35_q8_quantize_neon,                                                          \
        .mk =                                                                                      \
            {                                                                                      \
                [Q35_DT_Q8_0] = {.mr = NEON_MR, .nr = NR, .fn = uk_q8_0},                          \
                [Q35_DT_Q4_0] = {.mr = NEON_MR, .nr = NR, .fn = uk_q4_0},                          \
                [Q35_DT_Q4_K] = {.mr = NEON_MR, .nr = NR, .fn = uk_q4_K},                          \
                [Q35_DT_Q6_K] = {.mr = NEON_MR, .nr = NR, .fn = uk_q6_K},                          \
                [Q35_DT_Q5_K] = {.mr = NEON_MR, .nr = NR, .fn = uk_q5_K},                          \
                Q35_NEON_MLX_ENTRIES,                                                              \
            },                                                                                     \
    };

#endif
