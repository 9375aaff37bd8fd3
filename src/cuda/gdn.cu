/* gdn.cu — the Gated DeltaNet mixer between its projections (SPEC §2,
 * "GDN"): the causal depthwise conv with its window, then the delta-rule
 * recurrence with the per-head output norm and gate.
 *
 * The conv window is a ring of the last K inputs (position p in slot
 * p % K), so that a step reads positions p-K+1 .. p-1 and writes slot p % K,
 * which no one reads in that step: blocks that share a channel never race.
 *
 * In the recurrence the state S of a head is stored column by column
 * ([dv][dk]); it lives in registers for the whole chunk: column c of S
 * belongs to 8 consecutive lanes, each holding dk/8 of its rows, so S^T k
 * and S^T q are 8-lane shuffles, and the loads of a warp fill whole 32-byte
 * sectors. Columns are independent, so a head spreads over several blocks
 * and a token costs no block-wide step.
 *
 * Decode (one token) is one kernel: each block computes the conv of the
 * channels it needs (q and k of its key head, its own value columns) and
 * the recurrence; the output norm and gate run in the out-projection's
 * prologue (cu_gemv_gated). Prefill stages the q, k, v, b, a of 16 tokens
 * in shared memory at a time (with their norms and gates), then steps
 * through them: one memory round trip per 16 tokens instead of one per
 * token. This is the exact recurrent form, token after token. */
#include "cuda/cuda_internal.cuh"
#include "cuda/prefill.cuh"
#include "cuda/gdn_step.cuh"

__global__ void conv_kernel(const float *__restrict__ xin, int ldx, int T, const int *pos, int C,
                            int K, const float *__restrict__ taps, float *__restrict__ state,
                            float *__restrict__ out) {
    pdl_wait();
    pdl_launch();
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int P = *pos;
    float w[KMAX], h[KMAX];
#pragma unroll
    for (int j = 0; j < KMAX; j++) {
        w[j] = j < K ? taps[(size_t)c * K + j] : 0.0f;
        h[j] = j < K - 1 ? state[(size_t)ring(P - (K - 1) + j, K) * C + c] : 0.0f;
    }
#pragma unroll 4
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
        if (j < K - 1) state[(size_t)ring(P + T - (K - 1) + j, K) * C + c] = h[j];
}

/* Prefill: one block per (value head j, group of cpb columns). o gets the
 * raw S^T q; gdn_norm_kernel gates it. */
__global__ void recur_kernel(const float *__restrict__ qkv, int C, const float *__restrict__ xin,
                             int ldx, int boff, int aoff, int T, int nk, int nv, int dk, int dv,
                             const float *__restrict__ A, const float *__restrict__ dt_bias,
                             float *__restrict__ S, float *__restrict__ o) {
    __shared__ float qs[TT][DKMAX], ks[TT][DKMAX], vs[TT][VMAX];
    __shared__ float qn[TT], kn[TT], beta[TT], decay[TT];
    pdl_wait();
    pdl_launch();
    int j = blockIdx.x, cpb = blockDim.x / LPC, tid = threadIdx.x;
    int c0 = blockIdx.y * cpb, cl = tid / LPC, c = c0 + cl, g = tid % LPC;
    int nr = dk / LPC, kh = j / (nv / nk), lane = tid & 31, warp = tid >> 5;
    int nwarps = blockDim.x >> 5;
    float *Sc = S + (size_t)j * dk * dv + (size_t)c * dk;
    float s[RMAX];
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        s[i] = i < nr ? Sc[g + LPC * i] : 0.0f;
    float qscale = 1.0f / sqrtf((float)dk), Aj = A[j], dtb = dt_bias[j];
    for (int t0 = 0; t0 < T; t0 += TT) {
        int tn = T - t0 < TT ? T - t0 : TT;
        __syncthreads(); /* the previous tile is consumed */
        for (int idx = tid; idx < tn * dk; idx += blockDim.x) {
            int t = idx / dk, i = idx % dk;
            const float *row = qkv + (size_t)(t0 + t) * C;
            qs[t][i] = row[kh * dk + i];
            ks[t][i] = row[nk * dk + kh * dk + i];
        }
        for (int idx = tid; idx < tn * cpb; idx += blockDim.x) {
            int t = idx / cpb, i = idx % cpb;
            vs[t][i] = qkv[(size_t)(t0 + t) * C + 2 * nk * dk + j * dv + c0 + i];
        }
        __syncthreads();
        for (int t = warp; t < tn; t += nwarps) {
            float sq = 0.0f, sk = 0.0f;
            for (int i = lane; i < dk; i += 32) {
                sq += qs[t][i] * qs[t][i];
                sk += ks[t][i] * ks[t][i];
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) {
                sq += __shfl_xor_sync(0xffffffffu, sq, off);
                sk += __shfl_xor_sync(0xffffffffu, sk, off);
            }
            if (lane == 0) {
                const float *xr = xin + (size_t)(t0 + t) * ldx;
                qn[t] = qscale / sqrtf(sq + 1e-6f);
                kn[t] = 1.0f / sqrtf(sk + 1e-6f);
                beta[t] = sigmoidf_(xr[boff + j]);
                decay[t] = expf(Aj * softplusf_(xr[aoff + j] + dtb));
            }
        }
        __syncthreads();
        for (int t = 0; t < tn; t++) {
            float q[RMAX], k[RMAX];
#pragma unroll
            for (int i = 0; i < RMAX; i++) {
                q[i] = i < nr ? qs[t][g + LPC * i] * qn[t] : 0.0f;
                k[i] = i < nr ? ks[t][g + LPC * i] * kn[t] : 0.0f;
            }
            float acc = delta_step(s, k, q, nr, vs[t][cl], beta[t], decay[t]);
            if (g == 0) o[(size_t)(t0 + t) * nv * dv + (size_t)j * dv + c] = acc;
        }
    }
#pragma unroll
    for (int i = 0; i < RMAX; i++)
        if (i < nr) Sc[g + LPC * i] = s[i];
}

__global__ void step_kernel(const float *xin, const int *pos, int C, int K,
                            const float *__restrict__ taps, float *state, int boff, int aoff,
                            int nk, int nv, int dk, int dv, const float *__restrict__ A,
                            const float *__restrict__ dt_bias, float *S, float *o) {
    pdl_wait();
    pdl_launch();
    gdn_step_body(blockIdx.x, blockIdx.y, xin, pos, C, K, taps, state, boff, aoff, nk, nv, dk, dv,
                  A, dt_bias, S, o);
}

/* o = rms(o) * w_norm * silu(z) per (token, head): grid (T, nv), dv threads. */
__global__ void gdn_norm_kernel(float *__restrict__ o, int nv, int dv,
                                const float *__restrict__ xin, int ldx, int zoff,
                                const float *__restrict__ w, float eps) {
    __shared__ float red[32];
    pdl_wait();
    pdl_launch();
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

bool cu_gdn_fused(const q35_config *c) {
    return c->lin_k_dim <= DKMAX && c->lin_k_dim % LPC == 0;
}

void cu_gdn(const q35_config *c, const dlayer *L, const float *xin, int ldx, int T, const int *pos,
            float *conv_state, float *qkv_out, float *S, float *o, bool raw, float *chunk_ws,
            cudaStream_t st) {
    int C = q35_config_conv_channels(c), nk = c->lin_k_heads, nv = c->lin_v_heads;
    int dk = c->lin_k_dim, dv = c->lin_v_dim, K = c->conv_kernel;
    int zoff = C, boff = C + nv * dv, aoff = boff + nv;
    int cpb = dv % 32 == 0 ? 32 : dv; /* columns per block */
    if (T == 1 && raw) {
        cu_launch(step_kernel, dim3(nv, dv / cpb), dim3(cpb * LPC), 0, st, xin, pos, C, K,
                  L->conv_w, conv_state, boff, aoff, nk, nv, dk, dv, L->A, L->dt_bias, S, o);
        return;
    }
    if (!cu_conv_prefill(c, xin, ldx, T, pos, L->conv_w, conv_state, qkv_out, st)) /* opt-in */
        cu_launch(conv_kernel, dim3((C + 127) / 128), dim3(128), 0, st, xin, ldx, T, pos, C, K,
                  L->conv_w, conv_state, qkv_out);
    if (chunk_ws && T >= CU_GDN_CHUNK_MIN_T && cu_gdn_chunk_takes(c)) /* gdn_chunk.cu */
        cu_gdn_chunk(c, L, qkv_out, xin, ldx, T, S, o, chunk_ws, st);
    else
        cu_launch(recur_kernel, dim3(nv, dv / cpb), dim3(cpb * LPC), 0, st,
                  (const float *)qkv_out, C, xin, ldx, boff, aoff, T, nk, nv, dk, dv, L->A,
                  L->dt_bias, S, o);
    if (!raw)
        cu_launch(gdn_norm_kernel, dim3(T, nv), dim3((dv + 31) / 32 * 32), 0, st, o, nv, dv, xin,
                  ldx, zoff, L->gdn_norm, c->rms_eps);
}

void cu_gdn_norm(const q35_config *c, const dlayer *L, float *o, int T, const float *xin, int ldx,
                 cudaStream_t st) {
    int nv = c->lin_v_heads, dv = c->lin_v_dim;
    cu_launch(gdn_norm_kernel, dim3(T, nv), dim3((dv + 31) / 32 * 32), 0, st, o, nv, dv, xin, ldx,
              q35_config_conv_channels(c), L->gdn_norm, c->rms_eps);
}
