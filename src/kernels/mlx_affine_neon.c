/* mlx_affine_neon.c — the NEON float path for MLX affine weights
 * (mlx_affine.h), the counterpart of mlx_affine_avx2.c, used by the three
 * NEON sets (q35_mlx_q5k_matmul) whenever the integer path does not take
 * the matrix (the exact mode, and always for now: the integer interface
 * has no MLX micro-kernels).
 *
 * Eight codes are b bytes for every b, so one table lookup per b puts the
 * two bytes holding code i in 16-bit lane i, a per-lane shift and a mask
 * finish it: the same few instructions for 2, 3, 4, 5, 6 and 8 bits. As in
 * the AVX2 path, per group sum(q * x) is formed in float32 and the row's
 * dot is sum_g s_g * that + sum_g z_g * sum(x over g): the real number of
 * the dot over s*q + z, rounded differently (within float32 tolerance of
 * the plain C definition; each token's result is the same whatever tokens
 * share the call, and whatever rows). */
#include <arm_neon.h>
#include <string.h>

#include "kernels/kernels_neon.h"
#include "kernels/mlx_affine.h"

#define TT 4       /* tokens per pass over a row */
#define MAXGR 1024 /* groups per row held for sum(x) (cols <= 32768 at group 32) */

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

/* The eight codes in the 8 bytes at p (the first b of them) as floats. */
static inline void unit_codes(const uint8_t *p, const unit_tab *t, float32x4_t *lo,
                              float32x4_t *hi) {
    uint8x16_t v = vcombine_u8(vld1_u8(p), vld1_u8(p));
    uint16x8_t h = vreinterpretq_u16_u8(vqtbl1q_u8(v, t->idx));
    h = vandq_u16(vshlq_u16(h, t->shift), t->mask);
    *lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(h)));
    *hi = vcvtq_f32_u32(vmovl_high_u16(h));
}

void q35_mlx_matmul_neon(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    const q35_mlx_affine *qa = (const q35_mlx_affine *)w->data;
    const int b = q35_dtype_mlx_bits(w->dtype), gs = qa->group;
    const int64_t cols = w->shape[1], ng = cols / gs, ldx = a->ldx;
    if (ng > MAXGR) {
        q35_mlx_matmul_generic(w, a, y, ldy, r0, r1);
        return;
    }
    const size_t rb = (size_t)(cols / 8 * b), gb = (size_t)(gs / 8 * b);
    const unit_tab tab = make_tab(b);
    float xs[TT][MAXGR];
    /* the last group of a row is read from a copy: 8-byte loads of its last
     * units would run past the row (and past the file for the last row) */
    uint8_t last[128 + 8];
    memset(last, 0, sizeof last);
    for (int t0 = 0; t0 < a->T; t0 += TT) {
        const int nt = a->T - t0 < TT ? a->T - t0 : TT;
        const float *xt[TT];
        for (int t = 0; t < TT; t++)
            xt[t] = a->x + (int64_t)(t0 + (t < nt ? t : 0)) * ldx;
        for (int t = 0; t < nt; t++)
            for (int64_t g = 0; g < ng; g++) {
                float32x4_t s = vdupq_n_f32(0);
                for (int i = 0; i < gs; i += 4)
                    s = vaddq_f32(s, vld1q_f32(xt[t] + g * gs + i));
                xs[t][g] = vaddvq_f32(s);
            }
        for (int64_t o = r0; o < r1; o++) {
            const uint8_t *row = (const uint8_t *)qa->q + (size_t)o * rb;
            float32x4_t tot[TT];
            for (int t = 0; t < TT; t++)
                tot[t] = vdupq_n_f32(0);
            for (int64_t g = 0; g < ng; g++) {
                const uint8_t *p = row + (size_t)g * gb;
                if (g == ng - 1) {
                    memcpy(last, p, gb);
                    p = last;
                }
                float32x4_t acc0[TT], acc1[TT];
                for (int t = 0; t < TT; t++)
                    acc0[t] = acc1[t] = vdupq_n_f32(0);
                for (int u = 0; u < gs / 8; u++) {
                    float32x4_t q0, q1;
                    unit_codes(p + (size_t)u * (size_t)b, &tab, &q0, &q1);
                    for (int t = 0; t < TT; t++) {
                        if (t >= nt) break;
                        const float *x = xt[t] + g * gs + 8 * u;
                        acc0[t] = vfmaq_f32(acc0[t], q0, vld1q_f32(x));
                        acc1[t] = vfmaq_f32(acc1[t], q1, vld1q_f32(x + 4));
                    }
                }
                const float s = q35_mlx_aux_f32(qa->scales, qa->aux, (size_t)(o * ng + g));
                for (int t = 0; t < nt; t++)
                    tot[t] = vfmaq_n_f32(tot[t], vaddq_f32(acc0[t], acc1[t]), s);
            }
            for (int t = 0; t < nt; t++) {
                float bz = 0;
                for (int64_t g = 0; g < ng; g++)
                    bz += q35_mlx_aux_f32(qa->biases, qa->aux, (size_t)(o * ng + g)) * xs[t][g];
                y[(int64_t)(t0 + t) * ldy + o] = vaddvq_f32(tot[t]) + bz;
            }
        }
    }
}
