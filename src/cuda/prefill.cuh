/* prefill.cuh — the prefill kernels of the CUDA backend (cudapre's files):
 * the bf16 tensor-core GEMM (gemm.cu) and the chunked exact DeltaNet
 * (gdn_chunk.cu). matmul.cu and state.cu call these; the rest of the
 * backend's shared declarations are in cuda_internal.cuh. */
#ifndef Q35_CUDA_PREFILL_CUH
#define Q35_CUDA_PREFILL_CUH

#include "cuda/cuda_internal.cuh"

/* ------------------------------------------------------------ gemm.cu
 *
 * Y[t, n] (op: MM_STORE / MM_ADD) = sum_k X[t, k] W[n, k] for T > 1 tokens
 * on the bf16 tensor cores (mma.sync m16n8k16, float32 accumulators). The
 * weights' values are exact in bf16 (bf16 weights as stored; Q8_0 / Q4_0
 * as their integers, the per-32 scale applied to each 32-wide k-block's
 * partial sums in float32), so only the activations round: by default each
 * is split into hi + mid + lo bf16 and the three are multiplied (24 bits:
 * float32 products). Q35_CUDA_PREFILL_GEMM=split runs that, =split2 hi + lo
 * (16 bits), =bf16 the hi part alone (~2^-9), =off leaves every matrix to
 * matmul.cu's split-TF32 GEMM; unset: gemm.cu's GB_DEFAULT_MODE. ws (ws_n floats): split-K
 * scratch as matmul.cu's. Returns false (nothing launched) where it does
 * not take W (f32/f16 weights, ldx % 4, the setting off). */
bool cu_gemm_bf16(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op,
                  float *ws, size_t ws_n, cudaStream_t st);

/* The same in the given form (cu_gemm_bf16_mode's values). */
bool cu_gemm_bf16_run(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op,
                      float *ws, size_t ws_n, int mode, cudaStream_t st);

/* Which form cu_gemm_bf16 runs now: 0 off, 1 bf16 activations, 2 hi+lo,
 * 3 hi+mid+lo. */
int cu_gemm_bf16_mode(void);

/* ------------------------------------------------------- gdn_chunk.cu
 *
 * The DeltaNet recurrence of cu_gdn for T > 1 tokens in the chunked WY/UT
 * form (chunks of CU_GDN_CHUNK tokens): from qkv (the conv's output, [T, C],
 * q | k | v raw: normalized here), b and a (xin at boff / aoff, ldx apart),
 * the state S ([nv][dv][dk] as cu_gdn's) is updated and o ([T, nv*dv]) gets
 * the raw S^T q (gdn_norm_kernel's input). ws: cu_gdn_chunk_ws_floats(c, T)
 * floats of device scratch. Exact up to float32 rounding: the same sums as
 * the recurrence in another order (SPEC §2: "any exact reformulation"). */
#define CU_GDN_CHUNK 64
/* Shorter runs take the recurrence (gdn.cu): as fast there, and the result
 * of a short piece does not depend on where a chunk boundary falls (a
 * prompt fed in pieces gives the same bits as fed at once, below this). */
#define CU_GDN_CHUNK_MIN_T 128
size_t cu_gdn_chunk_ws_floats(const q35_config *c, int T);
/* Whether prefill runs the chunked form (Q35_CUDA_GDN=chunk) or the
 * token-by-token kernel of gdn.cu (=recurrent); unset: gdn_chunk.cu's
 * CHUNK_DEFAULT. */
bool cu_gdn_chunk_on(void);
/* Whether the chunked form takes these shapes (dk, dv <= 128, multiples of 4). */
bool cu_gdn_chunk_takes(const q35_config *c);
void cu_gdn_chunk(const q35_config *c, const dlayer *L, const float *qkv, const float *xin,
                  int ldx, int T, float *S, float *o, float *ws, cudaStream_t st);

/* The conv of cu_gdn for T > 1 spread over tokens as well as channels
 * (the same bits as gdn.cu's conv_kernel), when Q35_CUDA_CONV_PAR=1;
 * false (nothing launched) otherwise. Arguments as gdn.cu's conv_kernel:
 * the window `state` is a ring of K inputs (position p in slot p % K). */
bool cu_conv_prefill(const q35_config *c, const float *xin, int ldx, int T, const int *pos,
                     const float *taps, float *state, float *out, cudaStream_t st);

#endif
