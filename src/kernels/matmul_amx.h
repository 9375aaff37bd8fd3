/* matmul_amx.h — bf16 matmul on Intel AMX tiles (matmul_amx_avx512.c),
 * used by the "amx" kernel set for inputs of many tokens.
 *
 * Exactness: AMX multiplies bf16 by bf16. Weights are bf16 already; each
 * float32 activation x is split into hi = bf16(x) and lo = bf16(x - hi) and
 * both halves are multiplied, so x is represented to ~2^-17 relative (the
 * rest of the float32 mantissa is below the float32 accumulation error of
 * any long dot product), and accumulation is float32 as everywhere. */
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
/* x -> tiles of bf16 (hi, lo) pairs, zero-padded to 16 tokens x 32 cols. */
void q35_amx_pack(const float *x, int64_t ldx, int T, int64_t cols, void *out);

/* y rows [r0, r1) of a bf16 w whose rows in [r0, r1) all lie in complete
 * 16-row blocks of w; a->packed from q35_amx_pack. */
void q35_amx_matmul_blocks(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy,
                           int64_t r0, int64_t r1);

#endif
