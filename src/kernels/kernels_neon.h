/* kernels_neon.h — the AArch64 kernel sets by integer capability, for the
 * tests and for Q35_KERNELS (q35_kernels_neon in kernels.h picks the best
 * one this CPU runs), float (kernels.h) and integer (microkernel.h). Built
 * on AArch64 only; elsewhere nothing defines these. */
#ifndef Q35_KERNELS_KERNELS_NEON_H
#define Q35_KERNELS_KERNELS_NEON_H

#include "kernels/kernels.h"
#include "kernels/microkernel.h"

typedef enum q35_neon_level {
    Q35_NEON_PLAIN = 0, /* "neon": Armv8.0 Advanced SIMD */
    Q35_NEON_DOTPROD,   /* "neon-dotprod": + sdot (HWCAP_ASIMDDP) */
    Q35_NEON_I8MM,      /* "neon-i8mm": + sdot + smmla (HWCAP2_I8MM) */
    Q35_NEON_LEVELS
} q35_neon_level;

/* The set of level l, or NULL where this CPU lacks its instructions. A
 * static table: nothing to free. */
const q35_kernels *q35_kernels_neon_level(q35_neon_level l);
/* The integer set of level l (microkernel.h), or NULL as above. Static. */
const q35_i8_kernels *q35_i8_kernels_neon_level(q35_neon_level l);

/* kernels->matmul's contract for MLX affine weights in every NEON set
 * (mlx_affine_neon.c; q35_mlx_q5k_matmul calls it): within float32
 * rounding of q35_mlx_matmul_generic. */
void q35_mlx_matmul_neon(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1);

/* ---- between the NEON files (not for callers) */

/* microkernel.h's q8 row quantizer for every NEON set (its bytes are
 * q35_q8_quantize_ref's). */
void q35_q8_quantize_neon(const float *x, int64_t ldx, int T, int64_t cols, uint8_t *out);
/* The integer sets' tables, without the CPU check (each NEON file has
 * one); the float sets' integer twins point at them. */
extern const q35_i8_kernels q35_i8_neon_set, q35_i8_neon_dotprod_set, q35_i8_neon_i8mm_set;
/* The integer twin of NEON set k (kernels.c's q35_kernels_int8), or NULL
 * where k is no NEON set. */
const q35_kernels *q35_kernels_neon_int8(const q35_kernels *k);

#endif
