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

Q35_NEON_I8_SET(q35_i8_neon_dotprod_set, "neon-dotprod", SDOT_NR, Q8_0_TILE, Q4_0_TILE, Q4_K_TILE,
                Q5_K_TILE, Q6_K_TILE)
