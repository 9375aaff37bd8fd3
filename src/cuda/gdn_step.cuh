/* gdn_step.cuh — the Gated DeltaNet pieces that gdn.cu's kernels and the
 * one-kernel decode step (mega.cu) share: the state layout's helpers and
 * the one-token step (conv window, then the delta rule). See gdn.cu. */
#ifndef Q35_CUDA_GDN_STEP_CUH
#define Q35_CUDA_GDN_STEP_CUH

#include "cuda/cuda_internal.cuh"

#define KMAX 8  /* conv taps */
#define RMAX 16 /* state rows per lane: dk <= 128 */
#define LPC 8   /* lanes per state column */
#define TT 16   /* prefill tokens staged at a time */
#define DKMAX 128
#define VMAX 128 /* value columns per block */

__device__ __forceinline__ float sigmoidf_(float x) {
    return 1.0f / (1.0f + expf(-x));
}

__device__ __forceinline__ float softplusf_(float x) {
    return x > 20.0f ? x : log1pf(expf(x));
}

__device__ __forceinline__ int ring(int p, int K) {
    int m = p % K;
    return m < 0 ? m + K : m;
}

/* sum over the LPC lanes of a column (consecutive lanes) */
__device__ __forceinline__ float col_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    v += __shfl_xor_sync(0xffffffffu, v, 4);
    return v;
}

/* One delta-rule step of this lane's part of column c: s (nr rows) updated;
 * returns the column's S^T q (all LPC lanes). k, q already normalized. */
__device__ __forceinline__ float delta_step(float *s, const float *k, const float *q, int nr,
                                            float v, float beta, float decay) {
    float kv = 0.0f;
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        if (i < nr) kv += s[i] * k[i];
    kv = col_sum(kv);
    float u = beta * (v - decay * kv);
    float acc = 0.0f;
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        if (i < nr) {
            s[i] = decay * s[i] + k[i] * u;
            acc += s[i] * q[i];
        }
    return col_sum(acc);
}

/* Decode: the conv of the channels this block needs, then one step, for
 * value head j and column group `by` (the grid (nv, dv / cpb) of
 * step_kernel, or a virtual block of the one-kernel step), cpb * LPC
 * threads; o gets the raw S^T q. Every thread of the block calls it; its
 * shared memory is free again when it returns. Activations are read
 * without __restrict__: in the one-kernel step other blocks wrote them in
 * the same launch. */
__device__ __forceinline__ void gdn_step_body(int j, int by, const float *xin, const int *pos,
                                              int C, int K, const float *__restrict__ taps,
                                              float *state, int boff, int aoff, int nk, int nv,
                                              int dk, int dv, const float *__restrict__ A,
                                              const float *__restrict__ dt_bias, float *S,
                                              float *o) {
    __shared__ float qs[DKMAX], ks[DKMAX], vs[VMAX], nrm[2];
    int cpb = blockDim.x / LPC, tid = threadIdx.x;
    int c0 = by * cpb, cl = tid / LPC, c = c0 + cl, g = tid % LPC;
    int nr = dk / LPC, ratio = nv / nk, kh = j / ratio;
    float *Sc = S + (size_t)j * dk * dv + (size_t)c * dk;
    float s[RMAX];
#pragma unroll
    for (int i = 0; i < RMAX; i++) /* issued first: the longest loads */
        s[i] = i < nr ? Sc[g + LPC * i] : 0.0f;
    int P = *pos;
    bool owner_qk = by == 0 && j % ratio == 0;
    for (int idx = tid; idx < 2 * dk + cpb; idx += blockDim.x) {
        int ch = idx < dk ? kh * dk + idx
                 : idx < 2 * dk ? nk * dk + kh * dk + idx - dk
                                : 2 * nk * dk + j * dv + c0 + idx - 2 * dk;
        const float *w = taps + (size_t)ch * K;
        float xt = xin[ch], y = w[K - 1] * xt;
        for (int jj = 0; jj < K - 1; jj++)
            y += w[jj] * state[(size_t)ring(P - (K - 1) + jj, K) * C + ch];
        if (idx >= 2 * dk || owner_qk) state[(size_t)ring(P, K) * C + ch] = xt;
        y = y * sigmoidf_(y);
        if (idx < dk)
            qs[idx] = y;
        else if (idx < 2 * dk)
            ks[idx - dk] = y;
        else
            vs[idx - 2 * dk] = y;
    }
    __syncthreads();
    if (tid < 32) {
        float sq = 0.0f, sk = 0.0f;
        for (int i = tid; i < dk; i += 32) {
            sq += qs[i] * qs[i];
            sk += ks[i] * ks[i];
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            sq += __shfl_xor_sync(0xffffffffu, sq, off);
            sk += __shfl_xor_sync(0xffffffffu, sk, off);
        }
        if (tid == 0) {
            nrm[0] = 1.0f / sqrtf((float)dk) / sqrtf(sq + 1e-6f);
            nrm[1] = 1.0f / sqrtf(sk + 1e-6f);
        }
    }
    __syncthreads();
    float q[RMAX], k[RMAX];
#pragma unroll
    for (int i = 0; i < RMAX; i++) {
        q[i] = i < nr ? qs[g + LPC * i] * nrm[0] : 0.0f;
        k[i] = i < nr ? ks[g + LPC * i] * nrm[1] : 0.0f;
    }
    float beta = sigmoidf_(xin[boff + j]);
    float decay = expf(A[j] * softplusf_(xin[aoff + j] + dt_bias[j]));
    float acc = delta_step(s, k, q, nr, vs[cl], beta, decay);
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        if (i < nr) Sc[g + LPC * i] = s[i];
    if (g == 0) o[(size_t)j * dv + c] = acc;
    __syncthreads();
}

#endif
