/* int8_amx.h — the integer matmul path (microkernel.h: quantized weights
 * times q8 token rows, integer part per 32-element block exact, float part
 * per block) on AMX-INT8 tiles, for inputs of many tokens (prefill). The
 * "amx" set's integer twin sends Q8_0, Q4_0, Q4_K and Q6_K matrices here
 * from q35_amx_i8_min_t tokens on (int8_amx_avx512.c).
 *
 * How: a tile product (TDPBSSD) sums 16 tokens x 16 weight rows x K
 * columns of int8 into int32. Every 32-element block has its own weight
 * and token scales, so K is one block (32; for Q6_K one 16-element half,
 * which has its own scale) and each block's int32 tile goes through the
 * AVX-512 units once: converted, times the block's scales, added into
 * float32 accumulators. Weights are unpacked once per panel of rows into
 * the tiles' layout (int8 values, 4 consecutive columns per dword, 16 rows
 * side by side) plus float32 scales, and reused by every 16-token tile;
 * token tiles are read straight from the q8 rows.
 *
 * Per (row, token) the float steps are: per block b in order,
 *   Q8_0, Q4_0: acc += float(I_b) * (dw_b * d_b)
 *   Q4_K:       acc += float(I_b) * (mul_j * d_b);  acc -= sub_j * (d_b * S_b)
 *   Q6_K:       acc += float(H_0) * (mul_2j * d_b); acc += float(H_1) * (mul_2j+1 * d_b)
 * (fused multiply-adds; mul, sub as q35_kblock_scales forms them, S_b the
 * block's q8 sum, H_h the half sums of the definition), the same whatever
 * rows or tokens share a tile, so results never depend on the thread
 * split. With every scale 1 they are the definition's integers exactly. */
#ifndef Q35_KERNELS_INT8_AMX_H
#define Q35_KERNELS_INT8_AMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/tensor.h"

/* Whether this CPU has AMX-INT8 tiles and the OS grants the tile state
 * (the same process-wide permission as q35_amx_enable). */
bool q35_amx_i8_available(void);

/* Token count from which the amx set's integer twin multiplies dt here
 * (0: dt has no AMX-INT8 kernel). Measured crossover against the AVX-512
 * VNNI micro-kernels and the float kernels (int8_amx_avx512.c). */
int q35_amx_i8_min_t(q35_dtype dt);
/* That count for the 16-row repacked Q8_0 / Q4_0 (kernels/repack_x16.h),
 * below which the AVX-512 VNNI micro-kernels read the form instead
 * (int8_x86_x16.h; both tables take it from here). bench_int8_amx with
 * FLUSH_MB=1024 ([65536 x 1024] Q4_0, [32768 x 1024] Q8_0, 1 thread, CPU
 * time, 2026-12-07), x16 VNNI / AMX-INT8 from the form, GMAC/s: Q4_0 T=16
 * 157 / 152, T=24 162 / 166, T=32 167 / 213; Q8_0 T=24 128 / 120, T=32
 * 140 / 163. */
#define Q35_AMX_X16_MIN_T_Q4_0 24
#define Q35_AMX_X16_MIN_T_Q8_0 32
/* Q4_K ([32768 x 1024]): T=12 109 / 93, T=16 117 / 122, T=32 118 / 175. */
#define Q35_AMX_X16_MIN_T_Q4_K 16
/* Q6_K (the layers' of Q4_K_M, and the head), [1024 x 3584]: T=16 98 /
 * 78, T=32 108 / 109, T=40 110 / 106, T=48 114 / 127, T=512 112 / 172
 * (AMX-INT8 from the form = from the file within 2%). */
#define Q35_AMX_X16_MIN_T_Q6_K 48

/* y[t*ldy + o] = the microkernel.h dot product of weight row o of w (Q8_0,
 * Q4_0, Q4_K or Q6_K; cols % 32 == 0, k-quants cols % 256 == 0) and q8 row
 * t (at x + t * ldx), for rows o in [r0, r1) and tokens t < T. Scratch is
 * allocated per call (and freed); when it cannot be had, the same
 * arithmetic runs from stack buffers, slower, same bits. Only on a CPU for
 * which q35_amx_i8_available() was true. */
void q35_amx_i8_matmul(const q35_tensor *w, const uint8_t *x, size_t ldx, int T, float *y,
                       int64_t ldy, int64_t r0, int64_t r1);
/* The stack-buffer path alone (public for the tests, which check that it
 * gives the same bits). */
void q35_amx_i8_matmul_stepwise(const q35_tensor *w, const uint8_t *x, size_t ldx, int T, float *y,
                                int64_t ldy, int64_t r0, int64_t r1);

#endif
