/* attn.cu — the gated attention mixer between its projections (SPEC §2,
 * "GATED_ATTN"): per-head RMSNorm and partial NeoX RoPE of q and k (the
 * keys, and the values, go straight into the device KV cache), then causal
 * attention over the cache with the sigmoid output gate.
 *
 * Attention is one block per (query head, token), four warps taking every
 * fourth position with an online softmax each, merged at the end: any
 * context length in one pass, exact up to float32 rounding. Positions come
 * from device memory so that a captured decode step replays at the next
 * position. */
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

/* grid (T, nh + nkv), d threads: slot < nh normalizes and rotates query
 * head `slot` in place; the others key head slot - nh into the cache (and
 * copy its value row). */
__global__ void prep_kernel(float *__restrict__ qkv, int ldq, const int *__restrict__ pos, int nh,
                            int nkv, int d, int r, double theta, float eps,
                            const float *__restrict__ qw, const float *__restrict__ kw,
                            float *__restrict__ kc, float *__restrict__ vc) {
    pdl_wait();
    pdl_launch();
    __shared__ float red[32];
    __shared__ float xs[DMAX];
    int t = blockIdx.x, slot = blockIdx.y, i = threadIdx.x;
    int p = *pos + t;
    size_t kvw = (size_t)nkv * d;
    float *row = qkv + (size_t)t * ldq;
    const float *src =
        slot < nh ? row + (size_t)slot * 2 * d : row + (size_t)nh * 2 * d + (size_t)(slot - nh) * d;
    const float *w = slot < nh ? qw : kw;
    float x = src[i];
    float ss = wsum(x * x);
    if ((i & 31) == 0) red[i >> 5] = ss;
    __syncthreads();
    float tot = 0.0f;
    for (int k = 0; k < (int)(blockDim.x >> 5); k++)
        tot += red[k];
    float y = x / sqrtf(tot / (float)d + eps) * w[i];
    xs[i] = y;
    __syncthreads();
    int h = r / 2;
    if (i < r) {
        int fi = i < h ? i : i - h;
        double ang = (double)p * pow(theta, -2.0 * fi / r);
        float cs = (float)cos(ang), sn = (float)sin(ang);
        y = i < h ? y * cs - xs[i + h] * sn : y * cs + xs[i - h] * sn;
    }
    if (slot < nh) {
        row[(size_t)slot * 2 * d + i] = y;
    } else {
        int kh = slot - nh;
        kc[(size_t)p * kvw + (size_t)kh * d + i] = y;
        vc[(size_t)p * kvw + (size_t)kh * d + i] =
            row[(size_t)nh * 2 * d + kvw + (size_t)kh * d + i];
    }
}

/* grid (nh, T), AWARPS warps. */
__global__ void __launch_bounds__(AWARPS * 32)
    attn_kernel(const float *__restrict__ qkv, int ldq, const int *__restrict__ pos, int nh,
                int nkv, int d, const float *__restrict__ kc, const float *__restrict__ vc,
                float *__restrict__ o) {
    pdl_wait();
    pdl_launch();
    __shared__ float sm[AWARPS], sl[AWARPS];
    __shared__ float sacc[AWARPS][DMAX];
    int h = blockIdx.x, t = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int kvh = h / (nh / nkv), n = *pos + t + 1, ne = d / 32;
    size_t kvw = (size_t)nkv * d;
    const float *q = qkv + (size_t)t * ldq + (size_t)h * 2 * d;
    float scale = 1.0f / sqrtf((float)d);
    float qr[DMAX / 32], acc[DMAX / 32];
#pragma unroll
    for (int e = 0; e < DMAX / 32; e++) {
        qr[e] = e < ne ? q[lane + 32 * e] : 0.0f;
        acc[e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int p = warp; p < n; p += AWARPS) {
        const float *k = kc + (size_t)p * kvw + (size_t)kvh * d;
        const float *v = vc + (size_t)p * kvw + (size_t)kvh * d;
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < DMAX / 32; e++)
            if (e < ne) s += qr[e] * k[lane + 32 * e];
        s = wsum(s) * scale;
        float mn = fmaxf(m, s), corr = expf(m - mn), pe = expf(s - mn);
        l = l * corr + pe;
#pragma unroll
        for (int e = 0; e < DMAX / 32; e++)
            if (e < ne) acc[e] = acc[e] * corr + pe * v[lane + 32 * e];
        m = mn;
    }
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
#pragma unroll
    for (int e = 0; e < DMAX / 32; e++)
        if (e < ne) sacc[warp][lane + 32 * e] = acc[e];
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < AWARPS; w++)
        M = fmaxf(M, sm[w]);
    float L = 0.0f, f[AWARPS];
    for (int w = 0; w < AWARPS; w++) {
        f[w] = sl[w] > 0.0f ? expf(sm[w] - M) : 0.0f;
        L += sl[w] * f[w];
    }
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
        float v = 0.0f;
        for (int w = 0; w < AWARPS; w++)
            v += sacc[w][e] * f[w];
        v /= L;
        float g = q[d + e];
        o[(size_t)t * nh * d + (size_t)h * d + e] = v / (1.0f + expf(-g));
    }
}

/* Decode (T = 1): one block per query head, DW warps. The block makes its
 * query and its key head's key and value (norm, RoPE) itself, the first
 * block of each key head writes them into the cache, and the current
 * position uses the block's own copy, so no other kernel is needed between
 * the projection and the output. Positions go in tiles of DTILE: scores
 * into shared memory (a warp per position, several in flight), the tile's
 * softmax, then each warp sums its positions' values; an online rescale
 * joins the tiles. */
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

__global__ void __launch_bounds__(DW * 32)
    attn_dec_kernel(const float *__restrict__ qkv, const int *__restrict__ pos, int nh, int nkv,
                    int d, int r, double theta, float eps, const float *__restrict__ qw,
                    const float *__restrict__ kw, float *__restrict__ kc, float *__restrict__ vc,
                    float *__restrict__ o) {
    __shared__ float sc[DTILE];
    __shared__ float raw[2][DMAX], qs[DMAX], ks[DMAX], vs[DMAX];
    __shared__ float part[DW][DMAX];
    __shared__ float red[2][DW], stat[2];
    pdl_wait();
    pdl_launch();
    int h = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
}

void cu_attn(const q35_config *c, const dlayer *L, float *qkv, int ldq, int T, const int *pos,
             float *kc, float *vc, float *o, cudaStream_t st) {
    int nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim;
    if (T == 1 && 2 * d <= DW * 32) {
        cu_launch(attn_dec_kernel, dim3(nh), dim3(DW * 32), 0, st, (const float *)qkv, pos, nh,
                  nkv, d, c->rotary_dim, c->rope_theta, c->rms_eps, L->q_norm, L->k_norm, kc, vc,
                  o);
        return;
    }
    cu_launch(prep_kernel, dim3(T, nh + nkv), dim3(d), 0, st, qkv, ldq, pos, nh, nkv, d,
              c->rotary_dim, c->rope_theta, c->rms_eps, L->q_norm, L->k_norm, kc, vc);
    cu_launch(attn_kernel, dim3(nh, T), dim3(AWARPS * 32), 0, st, (const float *)qkv, ldq, pos, nh,
              nkv, d, (const float *)kc, (const float *)vc, o);
}
