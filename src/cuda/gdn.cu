/* gdn.cu — the Gated DeltaNet mixer between its projections (SPEC §2,
 * "GDN"): the causal depthwise conv with its window, then the delta-rule
 * recurrence with the per-head output norm and gate.
 *
 * The conv runs one thread per channel, stepping through the chunk's
 * tokens with the K-tap window in registers (so the window update has no
 * race with its reads). The recurrence runs one block per value head;
 * the head's state S [dk, dv] lives in registers for the whole chunk:
 * column c of S belongs to 4 consecutive lanes, each holding dk/4 of its
 * rows, so S^T k and S^T q are 4-lane shuffles and every token costs two
 * block-wide sums (the output RMSNorm) and nothing else. This is the exact
 * recurrent form, token after token (prefill included). */
#include "cuda/cuda_internal.cuh"

#define KMAX 8  /* conv taps */
#define RMAX 32 /* state rows per lane: dk <= 128 */

__device__ __forceinline__ float sigmoidf_(float x) {
    return 1.0f / (1.0f + expf(-x));
}

__global__ void conv_kernel(const float *__restrict__ xin, int ldx, int T, int C, int K,
                            const float *__restrict__ taps, float *__restrict__ state,
                            float *__restrict__ out) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float w[KMAX], h[KMAX];
#pragma unroll
    for (int j = 0; j < KMAX; j++) {
        w[j] = j < K ? taps[(size_t)c * K + j] : 0.0f;
        h[j] = j < K - 1 ? state[(size_t)j * C + c] : 0.0f;
    }
    for (int t = 0; t < T; t++) {
        float xt = xin[(size_t)t * ldx + c];
        float y = 0.0f;
#pragma unroll
        for (int j = 0; j < KMAX; j++) /* constant indices only: h stays in registers */
            y += w[j] * (j < K - 1 ? h[j] : j == K - 1 ? xt : 0.0f);
#pragma unroll
        for (int j = 0; j < KMAX - 1; j++)
            h[j] = j < K - 2 ? h[j + 1] : j == K - 2 ? xt : h[j];
        out[(size_t)t * C + c] = y * sigmoidf_(y);
    }
#pragma unroll
    for (int j = 0; j < KMAX; j++)
        if (j < K - 1) state[(size_t)j * C + c] = h[j];
}

__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    return v;
}

__device__ __forceinline__ float softplusf_(float x) {
    return x > 20.0f ? x : log1pf(expf(x));
}

/* One block per value head j, 4*dv threads. */
__global__ void recur_kernel(const float *__restrict__ qkv, int C, const float *__restrict__ xin,
                             int ldx, int zoff, int boff, int aoff, int T, int nk, int nv, int dk,
                             int dv, const float *__restrict__ A, const float *__restrict__ dt_bias,
                             const float *__restrict__ wnorm, float eps, float *__restrict__ S,
                             float *__restrict__ o) {
    __shared__ float red[2][32];
    int j = blockIdx.x, tid = threadIdx.x, c = tid >> 2, g = tid & 3;
    int nr = dk / 4, kh = j / (nv / nk), lane = tid & 31, warp = tid >> 5;
    int nwarps = blockDim.x >> 5;
    float *Sj = S + (size_t)j * dk * dv;
    float s[RMAX];
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        s[i] = i < nr ? Sj[(size_t)(g + 4 * i) * dv + c] : 0.0f;
    float qscale = 1.0f / sqrtf((float)dk), Aj = A[j], dtb = dt_bias[j], wn = wnorm[c];
    for (int t = 0; t < T; t++) {
        const float *row = qkv + (size_t)t * C;
        const float *qr = row + kh * dk, *kr = row + nk * dk + kh * dk;
        float q[RMAX], k[RMAX], sq = 0.0f, sk = 0.0f;
#pragma unroll
        for (int i = 0; i < RMAX; i++) {
            q[i] = i < nr ? qr[g + 4 * i] : 0.0f;
            k[i] = i < nr ? kr[g + 4 * i] : 0.0f;
            sq += q[i] * q[i];
            sk += k[i] * k[i];
        }
        sq = quad_sum(sq);
        sk = quad_sum(sk);
        float qn = qscale / sqrtf(sq + 1e-6f), kn = 1.0f / sqrtf(sk + 1e-6f);
        const float *xr = xin + (size_t)t * ldx;
        float beta = sigmoidf_(xr[boff + j]);
        float decay = expf(Aj * softplusf_(xr[aoff + j] + dtb));
        float v = row[2 * nk * dk + j * dv + c];
        float kv = 0.0f;
#pragma unroll
        for (int i = 0; i < RMAX; i++) {
            k[i] *= kn;
            kv += s[i] * k[i];
        }
        kv = quad_sum(kv);
        float u = beta * (v - decay * kv);
        float acc = 0.0f;
#pragma unroll
        for (int i = 0; i < RMAX; i++) {
            s[i] = decay * s[i] + k[i] * u;
            acc += s[i] * (q[i] * qn);
        }
        acc = quad_sum(acc);
        /* o = rms(o) * w_norm * silu(z) over the head's dv columns */
        float part = g == 0 ? acc * acc : 0.0f;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1)
            part += __shfl_xor_sync(0xffffffffu, part, off);
        if (lane == 0) red[t & 1][warp] = part;
        __syncthreads();
        float ss = 0.0f;
        for (int w = 0; w < nwarps; w++)
            ss += red[t & 1][w];
        float z = xr[zoff + j * dv + c];
        float on = acc / sqrtf(ss / (float)dv + eps) * wn * (z * sigmoidf_(z));
        if (g == 0) o[(size_t)t * nv * dv + (size_t)j * dv + c] = on;
    }
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        if (i < nr) Sj[(size_t)(g + 4 * i) * dv + c] = s[i];
}

void cu_gdn(const q35_config *c, const dlayer *L, const float *xin, int ldx, int T,
            float *conv_state, float *qkv_out, float *S, float *o, cudaStream_t st) {
    int C = q35_config_conv_channels(c), nk = c->lin_k_heads, nv = c->lin_v_heads;
    int dk = c->lin_k_dim, dv = c->lin_v_dim;
    conv_kernel<<<(C + 127) / 128, 128, 0, st>>>(xin, ldx, T, C, c->conv_kernel, L->conv_w,
                                                 conv_state, qkv_out);
    int zoff = C, boff = C + nv * dv, aoff = boff + nv;
    recur_kernel<<<nv, 4 * dv, 0, st>>>(qkv_out, C, xin, ldx, zoff, boff, aoff, T, nk, nv, dk, dv,
                                        L->A, L->dt_bias, L->gdn_norm, c->rms_eps, S, o);
}
