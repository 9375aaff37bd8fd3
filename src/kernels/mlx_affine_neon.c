/* mlx_affine_neon.c — the NEON float path for MLX affine weights
 * (mlx_affine.h), used by the three NEON sets (q35_mlx_q5k_matmul) where
 * the integer path does not take the matrix (the exact mode). The loop is
 * mlx_affine_rows.h's, shared with mlx_affine_avx2.c; what is NEON here is
 * an 8-float vector as two registers, the code unpacking and the scales'
 * widening.
 *
 * Eight codes are b bytes for every b, so one table lookup per b puts the
 * two bytes holding code i in 16-bit lane i, a per-lane shift and a mask
 * finish it: the same few instructions for 2, 3, 4, 5, 6 and 8 bits. */
#include <arm_neon.h>
#include <string.h>

#include "kernels/kernels_neon.h"
#include "kernels/mlx_affine.h"

typedef struct unit_tab {
    uint8x16_t idx;  /* lane i of 16 bits <- bytes k_i, k_i + 1 (k_i = i*b/8) */
    int16x8_t shift; /* -(i*b mod 8): a right shift */
    uint16x8_t mask;
} unit_tab;

static unit_tab make_tab(int b) {
    uint8_t idx[16];
    int16_t sh[8];
    for (int i = 0; i < 8; i++) {
        int k = i * b / 8;
        idx[2 * i] = (uint8_t)k;
        idx[2 * i + 1] = (uint8_t)(k + 1 < 8 ? k + 1 : 0xff); /* out of range reads 0 */
        sh[i] = (int16_t) - (i * b % 8);
    }
    unit_tab t = {vld1q_u8(idx), vld1q_s16(sh), vdupq_n_u16((uint16_t)((1u << b) - 1))};
    return t;
}

/* 8 float32 lanes as two NEON registers. */
typedef struct v8 {
    float32x4_t lo, hi;
} v8;

/* The eight codes in the 8 bytes at p (the first b of them) as floats. */
static inline v8 unit_codes(const uint8_t *p, const unit_tab *t) {
    uint8x16_t v = vcombine_u8(vld1_u8(p), vld1_u8(p));
    uint16x8_t h = vreinterpretq_u16_u8(vqtbl1q_u8(v, t->idx));
    h = vandq_u16(vshlq_u16(h, t->shift), t->mask);
    v8 r = {vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))), vcvtq_f32_u32(vmovl_high_u16(h))};
    return r;
}

static inline v8 v8_zero(void) {
    v8 r = {vdupq_n_f32(0), vdupq_n_f32(0)};
    return r;
}
static inline v8 v8_load(const float *p) {
    v8 r = {vld1q_f32(p), vld1q_f32(p + 4)};
    return r;
}
static inline v8 v8_fma(v8 a, v8 b, v8 c) { /* a * b + c */
    v8 r = {vfmaq_f32(c.lo, a.lo, b.lo), vfmaq_f32(c.hi, a.hi, b.hi)};
    return r;
}
static inline v8 v8_add(v8 a, v8 b) {
    v8 r = {vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi)};
    return r;
}
static inline v8 v8_set1(float s) {
    v8 r = {vdupq_n_f32(s), vdupq_n_f32(s)};
    return r;
}
static inline float v8_hsum(v8 v) {
    return vaddvq_f32(vaddq_f32(v.lo, v.hi));
}

/* n values of a scales/biases array (dtype aux) from element `at`. */
static void aux_row(const void *p, int aux, size_t at, int64_t n, float *out) {
    int64_t i = 0;
    if (aux == Q35_DT_F16) {
        const uint16_t *h = (const uint16_t *)p + at;
        for (; i + 4 <= n; i += 4)
            vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + i))));
    } else if (aux == Q35_DT_BF16) {
        const uint16_t *h = (const uint16_t *)p + at;
        for (; i + 4 <= n; i += 4)
            vst1q_f32(out + i, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(h + i), 16)));
    }
    for (; i < n; i++)
        out[i] = q35_mlx_aux_f32(p, aux, at + (size_t)i);
}

#define MLX_ROWS_FN q35_mlx_matmul_neon
#include "kernels/mlx_affine_rows.h"
