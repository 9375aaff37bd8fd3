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

#include "cuda/attn_dec.cuh"
#include "cuda/cuda_internal.cuh"

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

__global__ void __launch_bounds__(DW * 32)
    attn_dec_kernel(const float *qkv, const int *pos, int nh, int nkv, int d, int r, double theta,
                    float eps, const float *__restrict__ qw, const float *__restrict__ kw,
                    float *kc, float *vc, float *o) {
    pdl_wait();
    pdl_launch();
    attn_dec_body(blockIdx.x, qkv, pos, nh, nkv, d, r, theta, eps, qw, kw, kc, vc, o);
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
