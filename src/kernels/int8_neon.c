/* int8_neon.c — the integer matmul path (microkernel.h) on AArch64: the
 * q8 row quantizer every NEON set uses, the plain NEON set (Armv8.0: the
 * integer step is smull + sadalp, for cores without sdot such as
 * Cortex-A53/A72) and the choice among the three NEON sets. The
 * micro-kernels themselves are int8_tiles_neon.h (plain, sdot) and
 * int8_i8mm_neon.c (smmla); MLX affine's, int8_mlx_neon.h. */
#include <arm_neon.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/kernels_neon.h"
#include "kernels/microkernel.h"

/* microkernel.h's quantizer, the same float32 steps 4 lanes at a time:
 * amax by compare-and-select (a NaN never wins, as in the definition),
 * d and 127 / amax in scalar float32, x * id clamped by fmin/fmax (which
 * keep a NaN a NaN) and rounded half to even by fcvtns (NaN -> 0). */
void q35_q8_quantize_neon(const float *x, int64_t ldx, int T, int64_t cols, uint8_t *out) {
    size_t st = q35_q8_row_stride(cols);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (int64_t)t * ldx;
        uint8_t *row = out + (size_t)t * st;
        for (int64_t b = 0; b < cols / Q35_Q8_BLOCK; b++) {
            const float *xb = xt + b * Q35_Q8_BLOCK;
            float32x4_t v[8], m = vdupq_n_f32(0);
            for (int i = 0; i < 8; i++) {
                v[i] = vld1q_f32(xb + 4 * i);
                float32x4_t a = vabsq_f32(v[i]);
                m = vbslq_f32(vcgtq_f32(a, m), a, m);
            }
            float amax = vmaxvq_f32(m);
            float id = amax > 0 ? 127.0f / amax : 0.0f, d = amax / 127.0f;
            int16x8_t h[4];
            for (int i = 0; i < 4; i++) {
                int32x4_t q[2];
                for (int k = 0; k < 2; k++) {
                    float32x4_t s = vmulq_n_f32(v[2 * i + k], id);
                    s = vmaxq_f32(vminq_f32(s, vdupq_n_f32(127.0f)), vdupq_n_f32(-127.0f));
                    q[k] = vcvtnq_s32_f32(s);
                }
                h[i] = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            }
            int8x16_t q0 = vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1]));
            int8x16_t q1 = vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3]));
            vst1q_s8((int8_t *)row + b * Q35_Q8_BLOCK, q0);
            vst1q_s8((int8_t *)row + b * Q35_Q8_BLOCK + 16, q1);
            int16_t s[2] = {vaddlvq_s8(q0), vaddlvq_s8(q1)};
            memcpy(row + cols + 4 * b, &d, 4);
            memcpy(row + cols + cols / 8 + 4 * b, s, 4);
        }
    }
}

/* Armv8.0's 16-byte dot product: two widening multiplies summed in int16
 * (|w a| <= 128 * 127, so two fit) and added pairwise into the lanes. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) {
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(a));
    p = vmlal_high_s8(p, w, a);
    return vpadalq_s16(acc, p);
}

#include "kernels/int8_tiles_neon.h"

#include "kernels/int8_mlx_neon.h"

Q35_NEON_I8_SET(q35_i8_neon_set, "neon", SDOT_NR, Q8_0_TILE, Q4_0_TILE, Q4_K_TILE, Q5_K_TILE,
                Q6_K_TILE)

const q35_i8_kernels *q35_i8_kernels_neon_level(q35_neon_level l) {
    if (!q35_kernels_neon_level(l)) return NULL; /* the CPU lacks its instructions */
    switch (l) {
    case Q35_NEON_PLAIN: return &q35_i8_neon_set;
    case Q35_NEON_DOTPROD: return &q35_i8_neon_dotprod_set;
    case Q35_NEON_I8MM: return &q35_i8_neon_i8mm_set;
    default: return NULL;
    }
}

/* The integer set of the level of q35_kernels_neon's float set (so that
 * Q35_KERNELS=neon-dotprod picks both). */
const q35_i8_kernels *q35_i8_kernels_neon(void) {
    const q35_kernels *k = q35_kernels_neon();
    for (int l = 0; k && l < Q35_NEON_LEVELS; l++)
        if (q35_kernels_neon_level(l) == k) return q35_i8_kernels_neon_level(l);
    return NULL;
}

/* x86's integer sets where this AArch64 build has none (test_int8.c asks
 * for them); weak, so an architecture-neutral stub elsewhere wins. */
__attribute__((weak)) const q35_i8_kernels *q35_i8_kernels_avx2(void) {
    return NULL;
}
__attribute__((weak)) const q35_i8_kernels *q35_i8_kernels_avx512vnni(void) {
    return NULL;
}
