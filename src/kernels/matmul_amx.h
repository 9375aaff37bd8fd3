/* matmul_amx.h — bf16 matmul on Intel AMX tiles (matmul_amx_avx512.c),
 * used by the "amx" kernel set for inputs of many tokens.
 *
 * Exactness: AMX multiplies bf16 by bf16. Weights are bf16 already; each
 * float32 activation x is split into three bf16 numbers, hi = bf16(x),
 * mid = bf16(x - hi), lo = bf16(x - hi - mid) (the subtractions are exact),
 * which together hold all 24 bits of x's mantissa, and all three are
 * multiplied: the products are those of float32 x, and accumulation is
 * float32 as everywhere. (Two parts leave x at ~2^-17 relative, which
 * measurably loosened the golden match: 1.2e-4 against 4e-6.) */
#ifndef Q35_KERNELS_MATMUL_AMX_H
#define Q35_KERNELS_MATMUL_AMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* Asks the OS (Linux arch_prctl) for the AMX tile state; true when granted
 * (idempotent, process-wide). */
bool q35_amx_enable(void);

/* Packed size of T token rows of `cols`: 0 below the token count where
 * tiles pay off (the AVX-512 path then reads x directly). */
size_t q35_amx_pack_bytes(int T, int64_t cols);
/* x -> tiles of bf16 (hi, mid, lo) pairs, zero-padded to 16 tokens x 32
 * columns; out must be 64-byte aligned. */
void q35_amx_pack(const float *x, int64_t ldx, int T, int64_t cols, void *out);

/* y rows [r0, r1) of a bf16 w whose rows in [r0, r1) all lie in complete
 * 16-row blocks of w; a->packed from q35_amx_pack. */
void q35_amx_matmul_blocks(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy,
                           int64_t r0, int64_t r1);

#endif
