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

/* Quantized weights on AMX. A Q8_0 weight d * q (f16 d times int8 q: at
 * most 18 significant bits) is the exact sum of 3 bf16 parts, a Q4_0 one
 * (at most 14 bits) of 2, split as x is (each part = bf16 of what the parts
 * before it leave, exact subtractions); part products that cannot reach
 * float32 resolution are left out (see matmul_amx_avx512.c). Rows are
 * dequantized and split into bf16 tiles once per 48-row panel, in per-call
 * scratch, and reused for every token block. */

/* Token count from which the "amx" set sends Q8_0 / Q4_0 weights here
 * (below it, the AVX-512 code; at least the packing threshold). Splitting
 * costs about as much as multiplying 16-20 (Q8_0) / 12 (Q4_0) tokens on the
 * FMA path: same-process A/B, 2 threads, [1024, 3584] from cache, AMX vs
 * AVX-512 at T = 16: 0.99x / 1.19x, 20: 0.94x / 1.18x, 24: 1.12x / 1.34x,
 * 32: 1.36x / 1.80x, 64: 1.60x / 2.10x. */
static inline int q35_amx_quant_min_t(q35_dtype dt) {
    return dt == Q35_DT_Q8_0 ? 24 : 16;
}
/* y rows [r0, r1) of a Q8_0 / Q4_0 w (any rows: a partial last 16-row block
 * is zero-padded); a->packed from q35_amx_pack. Each y element gets the same
 * value whatever [r0, r1) it sits in, also when scratch cannot be had (a
 * slower path then splits each 32-column step as it goes, same
 * arithmetic). */
void q35_amx_qmatmul(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                     int64_t r1);
/* The same without the panel scratch: each step split again for every
 * token block (the fallback when malloc fails; public for the tests, which
 * check that it gives the same bits). */
void q35_amx_qmatmul_stepwise(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy,
                              int64_t r0, int64_t r1);

#endif
