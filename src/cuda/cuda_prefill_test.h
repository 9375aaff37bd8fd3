/* cuda_prefill_test.h — test hooks for the prefill kernels (gemm.cu,
 * gdn_chunk.cu), for tests/cuda/test_cuda_prefill.c: each builds random
 * inputs of the given shape, runs the kernels on the device, compares with
 * a float64 reference on the host and times the launches (CUDA events).
 * They allocate and free everything they use; the library's forward pass
 * never calls them. Each returns 0, or -1 with msg filled (no device, a
 * failed CUDA call). */
#ifndef Q35_CUDA_PREFILL_TEST_H
#define Q35_CUDA_PREFILL_TEST_H

#ifdef __cplusplus
extern "C" {
#endif

/* The DeltaNet mixer of T tokens from a random nonzero state, by the
 * recurrent kernel (gdn.cu) and by the chunked one, on the same conv
 * output. Fills: rel_* = ||x - ref|| / ||ref|| against float64 (o and the
 * final state), rel_o_cr = chunked against recurrent; ms_* the mean time of
 * one launch sequence (the recurrent one includes the conv). */
typedef struct q35_cuda_gdn_test {
    double rel_o_chunk, rel_o_recur, rel_s_chunk, rel_s_recur, rel_o_cr, rel_s_cr;
    double ms_recur, ms_chunk;
    /* the conv spread over tokens (Q35_CUDA_CONV_PAR=1) against gdn.cu's:
     * the largest difference of its outputs and of the window after it, and
     * the recurrent mixer's time with it */
    double conv_diff, conv_state_diff, ms_recur_parconv;
} q35_cuda_gdn_test;
int q35_cuda_prefill_test_gdn(int T, int nk, int nv, int dk, int dv, unsigned seed, int reps,
                              q35_cuda_gdn_test *out, char *msg, int msg_len);

/* Y (op)= X W^T, X [T, K] random floats, W [N, K] random in form fmt
 * (0 bf16, 1 Q8_0, 2 Q4_0), op 0 store / 1 add (onto random Y).
 * path: 0 = cu_matmul (what the forward pass runs: the bf16 GEMM unless
 * Q35_CUDA_PREFILL_GEMM=off, then matmul.cu's split-TF32 GEMM); 1 = the
 * bf16 GEMM with hi+mid+lo activations; 2 = bf16 activations; 3 = hi+lo. rel: against
 * float64 over every 8th output column (rel NULL: not checked); ms: mean of reps launches. */
int q35_cuda_prefill_test_gemm(int fmt, int T, int N, int K, int op, int path, unsigned seed,
                               int reps, double *rel, double *ms, char *msg, int msg_len);

#ifdef __cplusplus
}
#endif

#endif
