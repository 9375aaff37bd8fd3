/* kernels_neon.h — the AArch64 kernel sets by integer capability, for the
 * tests and for Q35_KERNELS (q35_kernels_neon in kernels.h picks the best
 * one this CPU runs). Built on AArch64 only; elsewhere nothing defines
 * these. */
#ifndef Q35_KERNELS_KERNELS_NEON_H
#define Q35_KERNELS_KERNELS_NEON_H

#include "kernels/kernels.h"

typedef enum q35_neon_level {
    Q35_NEON_PLAIN = 0, /* "neon": Armv8.0 Advanced SIMD */
    Q35_NEON_DOTPROD,   /* "neon-dotprod": + sdot (HWCAP_ASIMDDP) */
    Q35_NEON_I8MM,      /* "neon-i8mm": + sdot + smmla (HWCAP2_I8MM) */
    Q35_NEON_LEVELS
} q35_neon_level;

/* The set of level l, or NULL where this CPU lacks its instructions. A
 * static table: nothing to free. */
const q35_kernels *q35_kernels_neon_level(q35_neon_level l);

#endif
