/* gdn.cu — the Gated DeltaNet mixer between its projections (SPEC §2,
 * "GDN"): the causal depthwise conv with its window, then the delta-rule
 * recurrence with the per-head output norm and gate.
 *
 * The conv runs one thread per channel, stepping through the chunk's
 * tokens with the K-tap window in registers (so the window update has no
 * race with its reads). In the recurrence the state S [dk, dv] lives in
 * registers for the whole chunk: column c of S belongs to 8 consecutive
 * lanes, each holding dk/8 of its rows, so S^T k and S^T q are 8-lane
 * shuffles; columns are independent, so a head spreads over several
 * blocks and a token costs no block-wide step. The output norm and gate
 * follow in their own kernel. This is the exact recurrent form, token
 * after token (prefill included). */
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

/* sum over the LPC lanes of a column (consecutive lanes) */
#define LPC 8
__device__ __forceinline__ float col_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    v += __shfl_xor_sync(0xffffffffu, v, 4);
    return v;
}

__device__ __forceinline__ float softplusf_(float x) {
    return x > 20.0f ? x : log1pf(expf(x));
}

/* One block per (value head j, group of cpb columns), LPC lanes a column.
 * Columns of S evolve independently (u_c and the update of column c use
 * column c only), so the recurrence needs no block-wide step: per token,
 * three LPC-lane sums. o gets the raw S^T q; gdn_norm_kernel gates it. */
__global__ void recur_kernel(const float *__restrict__ qkv, int C, const float *__restrict__ xin,
                             int ldx, int boff, int aoff, int T, int nk, int nv, int dk, int dv,
                             const float *__restrict__ A, const float *__restrict__ dt_bias,
                             float *__restrict__ S, float *__restrict__ o) {
    int j = blockIdx.x, cpb = blockDim.x / LPC;
    int c = blockIdx.y * cpb + threadIdx.x / LPC, g = threadIdx.x % LPC;
    int nr = dk / LPC, kh = j / (nv / nk);
    float *Sj = S + (size_t)j * dk * dv;
    float s[RMAX];
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        s[i] = i < nr ? Sj[(size_t)(g + LPC * i) * dv + c] : 0.0f;
    float qscale = 1.0f / sqrtf((float)dk), Aj = A[j], dtb = dt_bias[j];
    for (int t = 0; t < T; t++) {
        const float *row = qkv + (size_t)t * C;
        const float *qr = row + kh * dk, *kr = row + nk * dk + kh * dk;
        const float *xr = xin + (size_t)t * ldx;
        float q[RMAX], k[RMAX], sq = 0.0f, sk = 0.0f;
#pragma unroll
        for (int i = 0; i < RMAX; i++) {
            q[i] = i < nr ? qr[g + LPC * i] : 0.0f;
            k[i] = i < nr ? kr[g + LPC * i] : 0.0f;
        }
        float v = row[2 * nk * dk + j * dv + c], b = xr[boff + j], a = xr[aoff + j];
#pragma unroll
        for (int i = 0; i < RMAX; i++) {
            sq += q[i] * q[i];
            sk += k[i] * k[i];
        }
        sq = col_sum(sq);
        sk = col_sum(sk);
        float qn = qscale / sqrtf(sq + 1e-6f), kn = 1.0f / sqrtf(sk + 1e-6f);
        float beta = sigmoidf_(b), decay = expf(Aj * softplusf_(a + dtb));
        float kv = 0.0f;
#pragma unroll
        for (int i = 0; i < RMAX; i++) {
            k[i] *= kn;
            kv += s[i] * k[i];
        }
        kv = col_sum(kv);
        float u = beta * (v - decay * kv);
        float acc = 0.0f;
#pragma unroll
        for (int i = 0; i < RMAX; i++) {
            s[i] = decay * s[i] + k[i] * u;
            acc += s[i] * (q[i] * qn);
        }
        acc = col_sum(acc);
        if (g == 0) o[(size_t)t * nv * dv + (size_t)j * dv + c] = acc;
    }
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        if (i < nr) Sj[(size_t)(g + LPC * i) * dv + c] = s[i];
}

/* o = rms(o) * w_norm * silu(z) per (token, head): grid (T, nv), dv threads. */
__global__ void gdn_norm_kernel(float *__restrict__ o, int nv, int dv,
                                const float *__restrict__ xin, int ldx, int zoff,
                                const float *__restrict__ w, float eps) {
    __shared__ float red[32];
    int t = blockIdx.x, j = blockIdx.y, c = threadIdx.x;
    float *oj = o + (size_t)t * nv * dv + (size_t)j * dv;
    float v = c < dv ? oj[c] : 0.0f, ss = v * v;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if ((c & 31) == 0) red[c >> 5] = ss;
    __syncthreads();
    float tot = 0.0f;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++)
        tot += red[i];
    if (c >= dv) return;
    float z = xin[(size_t)t * ldx + zoff + (size_t)j * dv + c];
    oj[c] = v / sqrtf(tot / (float)dv + eps) * w[c] * (z * sigmoidf_(z));
}

void cu_gdn(const q35_config *c, const dlayer *L, const float *xin, int ldx, int T,
            float *conv_state, float *qkv_out, float *S, float *o, cudaStream_t st) {
    int C = q35_config_conv_channels(c), nk = c->lin_k_heads, nv = c->lin_v_heads;
    int dk = c->lin_k_dim, dv = c->lin_v_dim;
    conv_kernel<<<(C + 127) / 128, 128, 0, st>>>(xin, ldx, T, C, c->conv_kernel, L->conv_w,
                                                 conv_state, qkv_out);
    int zoff = C, boff = C + nv * dv, aoff = boff + nv;
    int cpb = dv % 32 == 0 ? 32 : dv; /* columns per block */
    recur_kernel<<<dim3(nv, dv / cpb), cpb * LPC, 0, st>>>(qkv_out, C, xin, ldx, boff, aoff, T, nk,
                                                           nv, dk, dv, L->A, L->dt_bias, S, o);
    gdn_norm_kernel<<<dim3(T, nv), (dv + 31) / 32 * 32, 0, st>>>(o, nv, dv, xin, ldx, zoff,
                                                                 L->gdn_norm, c->rms_eps);
}
