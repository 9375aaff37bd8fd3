/* int8_dotprod_neon.c — the integer matmul path's micro-kernels for
 * Armv8.2 dotprod (sdot: four 4-byte dot products into int32 lanes per
 * instruction), the whole file compiled for that target; called only where
 * the CPU reports it (kernels_neon.c). The arithmetic per format is
 * int8_tiles_neon.h, shared with the plain NEON set. */
#if defined(__clang__)
/* clang gates these intrinsics on the build's target, not on a pragma: they
 * are used where the target has dotprod (-march=...+dotprod, Apple M1's
 * default), and elsewhere this set takes the plain NEON step (still
 * exact, only slower). */
#else
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#include <arm_neon.h>

#include "kernels/kernels_neon.h"
#include "kernels/microkernel.h"

static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) {
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a));
#else
    return vdotq_s32(acc, w, a);
#endif
}

#include "kernels/int8_tiles_neon.h"

#include "kernels/int8_mlx_neon.h"

NEON_UKERNEL(uk_q8_0, Q8_0_TILE)
NEON_UKERNEL(uk_q4_0, Q4_0_TILE)
NEON_UKERNEL(uk_q4_K, Q4_K_TILE)
NEON_UKERNEL(uk_q5_K, Q5_K_TILE)
NEON_UKERNEL(uk_q6_K, Q6_K_TILE)

const q35_i8_kernels q35_i8_neon_dotprod_set = {
    .name = "neon-dotprod",
    .quantize = q35_q8_quantize_neon,
    .mk =
        {
            [Q35_DT_Q8_0] = {.mr = NEON_MR, .nr = SDOT_NR, .fn = uk_q8_0},
            [Q35_DT_Q4_0] = {.mr = NEON_MR, .nr = SDOT_NR, .fn = uk_q4_0},
            [Q35_DT_Q4_K] = {.mr = NEON_MR, .nr = SDOT_NR, .fn = uk_q4_K},
            [Q35_DT_Q6_K] = {.mr = NEON_MR, .nr = SDOT_NR, .fn = uk_q6_K},
            [Q35_DT_Q5_K] = {.mr = NEON_MR, .nr = SDOT_NR, .fn = uk_q5_K},
            Q35_NEON_MLX_ENTRIES,
        },
};
