/* attn_dec.cuh — attention's one-token step (attn.cu's decode kernel),
 * shared with the one-kernel decode step (mega.cu). See attn.cu. */
#ifndef Q35_CUDA_ATTN_DEC_CUH
#define Q35_CUDA_ATTN_DEC_CUH

#include <math.h>

#include "cuda/cuda_internal.cuh"

#define DMAX 256 /* head_dim */
#define AWARPS 4

__device__ __forceinline__ float wsum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Decode (T = 1): one block per query head, DW warps. The block makes its
 * query and its key head's key and value (norm, RoPE) itself, the first
 * block of each key head writes them into the cache, and the current
 * position uses the block's own copy, so no other kernel is needed between
 * the projection and the output. Positions go in tiles of DTILE: scores
 * into shared memory (a warp per position, several in flight), the tile's
 * softmax, then each warp sums its positions' values; an online rescale
 * joins the tiles. attn_dec_body is query head h's block (blockDim DW *
 * 32, every thread calls it), for attn_dec_kernel or a virtual block of
 * the one-kernel step; activations without __restrict__ (there, other
 * blocks wrote them in the same launch). */
#define DW 16
#define DTILE 1024

__device__ __forceinline__ float rope_at(const float *xs, float y, int i, int r, int p,
                                         double theta) {
    int h = r / 2;
    if (i >= r) return y;
    int fi = i < h ? i : i - h;
    double ang = (double)p * pow(theta, -2.0 * fi / r);
    float cs = (float)cos(ang), sn = (float)sin(ang);
    return i < h ? y * cs - xs[i + h] * sn : y * cs + xs[i - h] * sn;
}

__device__ __forceinline__ void attn_dec_body(int h, const float *qkv, const int *pos, int nh,
                                              int nkv, int d, int r, double theta, float eps,
                                              const float *__restrict__ qw,
                                              const float *__restrict__ kw, float *kc, float *vc,
                                              float *o) {
    __shared__ float sc[DTILE];
    __shared__ float raw[2][DMAX], qs[DMAX], ks[DMAX], vs[DMAX];
    __shared__ float part[DW][DMAX];
    __shared__ float red[2][DW], stat[2];
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    int group = nh / nkv, kvh = h / group, P = *pos, n = P + 1;
    size_t kvw = (size_t)nkv * d;
    const float *qsrc = qkv + (size_t)h * 2 * d, *ksrc = qkv + (size_t)nh * 2 * d + kvh * d;
    /* q (threads 0..d-1) and k (d..2d-1): RMSNorm then RoPE */
    int half = tid / d, i = tid % d;
    float x = 0.0f;
    if (half < 2) x = half ? ksrc[i] : qsrc[i];
    float ss = x * x;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if (lane == 0) red[0][warp] = ss;
    __syncthreads();
    if (half < 2) {
        int wpd = d / 32; /* warps per vector */
        float tot = 0.0f;
        for (int w = 0; w < wpd; w++)
            tot += red[0][half * wpd + w];
        float y = x / sqrtf(tot / (float)d + eps) * (half ? kw[i] : qw[i]);
        raw[half][i] = y;
    }
    __syncthreads();
    if (half < 2) {
        float y = rope_at(raw[half], raw[half][i], i, r, P, theta);
        if (half)
            ks[i] = y;
        else
            qs[i] = y;
    }
    if (tid < d) vs[tid] = qkv[(size_t)nh * 2 * d + kvw + (size_t)kvh * d + tid];
    __syncthreads();
    if (h % group == 0 && tid < d) {
        kc[(size_t)P * kvw + (size_t)kvh * d + tid] = ks[tid];
        vc[(size_t)P * kvw + (size_t)kvh * d + tid] = vs[tid];
    }
    int ne = d / 32;
    float qr[DMAX / 32], acc[DMAX / 32];
#pragma unroll
    for (int e = 0; e < DMAX / 32; e++) {
        qr[e] = e < ne ? qs[lane + 32 * e] : 0.0f;
        acc[e] = 0.0f;
    }
    float scale = 1.0f / sqrtf((float)d), M = -INFINITY, L = 0.0f;
    for (int t0 = 0; t0 < n; t0 += DTILE) {
        int len = n - t0 < DTILE ? n - t0 : DTILE;
        for (int pp = warp; pp < len; pp += DW) {
            int p = t0 + pp;
            const float *k = p == P ? ks : kc + (size_t)p * kvw + (size_t)kvh * d;
            float sv = 0.0f;
#pragma unroll
            for (int e = 0; e < DMAX / 32; e++)
                if (e < ne) sv += qr[e] * k[lane + 32 * e];
            sv = wsum(sv);
            if (lane == 0) sc[pp] = sv * scale;
        }
        __syncthreads();
        float mx = -INFINITY;
        for (int pp = tid; pp < len; pp += blockDim.x)
            mx = fmaxf(mx, sc[pp]);
#pragma unroll
        for (int off = 16; off > 0; off >>= 1)
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        if (lane == 0) red[1][warp] = mx;
        __syncthreads();
        if (tid == 0) {
            float m = M;
            for (int w = 0; w < DW; w++)
                m = fmaxf(m, red[1][w]);
            stat[0] = m;
        }
        __syncthreads();
        float Mn = stat[0], corr = expf(M - Mn), sum = 0.0f;
        for (int pp = tid; pp < len; pp += blockDim.x) {
            float e = expf(sc[pp] - Mn);
            sc[pp] = e;
            sum += e;
        }
        sum = wsum(sum);
        __syncthreads(); /* red[0] reuse after every thread read its max */
        if (lane == 0) red[0][warp] = sum;
        __syncthreads();
        float tsum = 0.0f;
        for (int w = 0; w < DW; w++)
            tsum += red[0][w];
        L = L * corr + tsum;
        M = Mn;
#pragma unroll
        for (int e = 0; e < DMAX / 32; e++)
            acc[e] *= corr;
        for (int pp = warp; pp < len; pp += DW) {
            int p = t0 + pp;
            const float *v = p == P ? vs : vc + (size_t)p * kvw + (size_t)kvh * d;
            float w = sc[pp];
#pragma unroll
            for (int e = 0; e < DMAX / 32; e++)
                if (e < ne) acc[e] += w * v[lane + 32 * e];
        }
        __syncthreads(); /* sc reuse */
    }
#pragma unroll
    for (int e = 0; e < DMAX / 32; e++)
        if (e < ne) part[warp][lane + 32 * e] = acc[e];
    __syncthreads();
    if (tid < d) {
        float v = 0.0f;
        for (int w = 0; w < DW; w++)
            v += part[w][tid];
        v /= L;
        float g = qsrc[d + tid];
        o[(size_t)h * d + tid] = v / (1.0f + expf(-g));
    }
    __syncthreads(); /* the shared memory free for the next call */
}

#endif
