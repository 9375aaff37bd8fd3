/* gdn_chunk.cu — the Gated DeltaNet recurrence for prefill in the chunked
 * WY / UT form (prefill.cuh), the approach of flash-linear-attention's
 * chunked delta rule, written for this backend's layouts. The math is the
 * CPU's (forward/gdn_chunk.c): per chunk of L tokens from the state S0,
 * with G_t = g_0 + ... + g_t (g = log decay <= 0),
 *
 *     (I + A) X = [beta e^G K | beta V],  A_ts = beta_t e^(G_t-G_s) k_t.k_s (s < t)
 *     W = X's first dk columns, U' = its last dv:  U = U' - W S0
 *     o_t = e^(G_t) S0^T q_t + sum_{s<=t} e^(G_t-G_s) (q_t.k_s) u_s
 *     S   = e^(G_{L-1}) S0 + sum_s e^(G_{L-1}-G_s) k_s u_s^T
 *
 * which is the recurrence S_t = e^(g_t) S_{t-1} + k_t u_t^T, u_t = beta_t
 * (v_t - e^(g_t) S_{t-1}^T k_t), written out. Everything in float32 (FMA),
 * each decay e^(G_t - G_s) formed from the difference of the double
 * prefix sums (never a quotient of two exponentials), so the result equals
 * the recurrence's up to float32 rounding.
 *
 * Two kernels per layer:
 * - wy_kernel, one block per (value head, chunk), all chunks at once (none
 *   depends on the state): q, k normalized, the chunk's A (then solved by
 *   forward substitution, each thread owning columns of X, so the solve
 *   needs no barrier), P = the decayed q.k lower triangle, and the terms
 *   the state pass reads: W, U', e^G q, the decayed k transposed, e^G_{L-1}.
 * - state_kernel, one block per (value head, CS value columns), the chunks
 *   in order: U = U' - W S0, o = e^G Q S0 + P U, S updated, with the CS
 *   columns of S in shared memory (columns of S are independent);
 *   Q35_CUDA_GDN_PREFETCH=1 takes state_db_kernel, which copies the next
 *   chunk's W, e^G q, U' (cp.async) while this one computes.
 * The scratch between them (cu_gdn_chunk_ws_floats) holds per (head,
 * chunk) W [L][dk], e^G q [L][dk], k^T decayed [dk][L], U' [L][dv], P
 * [L][L] and e^G_{L-1}. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/prefill.cuh"

#define CL CU_GDN_CHUNK
#define NT 256
#define DKM 128 /* dk, dv at most */

__device__ __forceinline__ float sigm(float x) {
    return 1.0f / (1.0f + expf(-x));
}

__device__ __forceinline__ float softp(float x) {
    return x > 20.0f ? x : log1pf(expf(x));
}

/* floats per (head, chunk) in the scratch, and the offsets in it */
__host__ __device__ static inline size_t per_chunk(int dk, int dv) {
    return (size_t)3 * CL * dk + (size_t)CL * dv + (size_t)CL * CL + 4;
}
#define OFF_W(dk, dv) 0
#define OFF_QG(dk, dv) ((size_t)CL * (dk))
#define OFF_KT(dk, dv) ((size_t)2 * CL * (dk))
#define OFF_U(dk, dv) ((size_t)3 * CL * (dk))
#define OFF_P(dk, dv) ((size_t)3 * CL * (dk) + (size_t)CL * (dv))
#define OFF_GL(dk, dv) ((size_t)3 * CL * (dk) + (size_t)CL * (dv) + (size_t)CL * CL)

static size_t wy_smem(int dk, int dv) {
    return sizeof(float) * ((size_t)2 * CL * (dk + 4) + (size_t)CL * (dk + dv) +
                            (size_t)CL * (CL + 4) + 4 * CL) +
           sizeof(double) * CL;
}

__global__ void __launch_bounds__(NT)
    wy_kernel(const float *__restrict__ qkv, int C, const float *__restrict__ xin, int ldx, int boff,
              int aoff, int T, int nk, int nv, int dk, int dv, const float *__restrict__ Alog,
              const float *__restrict__ dt_bias, float *__restrict__ ws) {
    extern __shared__ __align__(16) float sm[];
    const int ldk = dk + 4, ldt = CL + 4, nx = dk + dv;
    float *Ks = sm, *Qs = Ks + CL * ldk, *X = Qs + CL * ldk, *At = X + CL * nx;
    float *beta = At + CL * ldt, *gl = beta + CL, *eg = gl + CL, *edl = eg + CL;
    double *G = (double *)(edl + CL);
    pdl_wait();
    pdl_launch();
    const int j = blockIdx.x, ci = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int t0 = ci * CL, L = T - t0 < CL ? T - t0 : CL, kh = j / (nv / nk);
    float *out = ws + ((size_t)j * gridDim.y + ci) * per_chunk(dk, dv);
    const int dk4 = dk / 4, dv4 = dv / 4;
#pragma unroll 4
    for (int idx = tid; idx < CL * dk4; idx += NT) { /* 16-byte loads, all issued at once */
        int t = idx / dk4, i = (idx % dk4) * 4;
        float4 q = make_float4(0.f, 0.f, 0.f, 0.f), k = q;
        if (t < L) {
            const float *row = qkv + (size_t)(t0 + t) * C;
            q = __ldg((const float4 *)(row + kh * dk + i));
            k = __ldg((const float4 *)(row + nk * dk + kh * dk + i));
        }
        *(float4 *)(Qs + t * ldk + i) = q;
        *(float4 *)(Ks + t * ldk + i) = k;
    }
    __syncthreads();
    const float qscale = 1.0f / sqrtf((float)dk), Aj = Alog[j], dtb = dt_bias[j];
    __shared__ float qn[CL], kn[CL];
    for (int t = warp; t < CL; t += NT / 32) {
        float sq = 0.0f, sk = 0.0f;
        for (int i = lane; i < dk; i += 32) {
            float q = Qs[t * ldk + i], k = Ks[t * ldk + i];
            sq += q * q;
            sk += k * k;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            sq += __shfl_xor_sync(0xffffffffu, sq, o);
            sk += __shfl_xor_sync(0xffffffffu, sk, o);
        }
        if (lane == 0) {
            qn[t] = qscale / sqrtf(sq + 1e-6f);
            kn[t] = 1.0f / sqrtf(sk + 1e-6f);
            const float *xr = xin + (size_t)(t0 + t) * ldx;
            beta[t] = t < L ? sigm(xr[boff + j]) : 0.0f;
            gl[t] = t < L ? Aj * softp(xr[aoff + j] + dtb) : 0.0f;
        }
    }
    __syncthreads();
    if (tid == 0) {
        double acc = 0.0;
        for (int t = 0; t < CL; t++) {
            acc += (double)gl[t];
            G[t] = acc;
        }
    }
    for (int idx = tid; idx < CL * dk; idx += NT) {
        int t = idx / dk, i = idx % dk;
        Qs[t * ldk + i] *= qn[t];
        Ks[t * ldk + i] *= kn[t];
    }
    __syncthreads();
    if (tid < CL) {
        eg[tid] = expf((float)G[tid]);
        edl[tid] = expf((float)(G[CL - 1] - G[tid]));
    }
    /* k_t.k_s and q_t.k_s: thread (tb, sb) takes t = tb + 16u, s = sb + 16v
     * (rows 16 apart: the 16-byte loads of 8 lanes hit distinct banks) */
    {
        const int tb = tid >> 4, sb = tid & 15;
        float kk[4][4], qk[4][4];
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int v = 0; v < 4; v++)
                kk[u][v] = qk[u][v] = 0.0f;
        for (int i = 0; i < dk; i += 4) {
            float4 kt[4], qt[4], ks[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                kt[u] = *(const float4 *)(Ks + (tb + 16 * u) * ldk + i);
                qt[u] = *(const float4 *)(Qs + (tb + 16 * u) * ldk + i);
                ks[u] = *(const float4 *)(Ks + (sb + 16 * u) * ldk + i);
            }
#pragma unroll
            for (int u = 0; u < 4; u++)
#pragma unroll
                for (int v = 0; v < 4; v++) {
                    kk[u][v] += kt[u].x * ks[v].x + kt[u].y * ks[v].y + kt[u].z * ks[v].z +
                                kt[u].w * ks[v].w;
                    qk[u][v] += qt[u].x * ks[v].x + qt[u].y * ks[v].y + qt[u].z * ks[v].z +
                                qt[u].w * ks[v].w;
                }
        }
        float *P = out + OFF_P(dk, dv);
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int v = 0; v < 4; v++) {
                int t = tb + 16 * u, s = sb + 16 * v;
                float dec = s <= t ? expf((float)(G[t] - G[s])) : 0.0f;
                At[s * ldt + t] = s < t ? beta[t] * dec * kk[u][v] : 0.0f; /* A_ts, transposed */
                P[t * CL + s] = dec * qk[u][v];
            }
    }
    /* B = [beta e^G K | beta V] into X (rows past L zero: beta is) */
    const float *V = qkv + (size_t)t0 * C + 2 * nk * dk + (size_t)j * dv;
#pragma unroll 4
    for (int idx = tid; idx < CL * dv4; idx += NT) {
        int t = idx / dv4, c = (idx % dv4) * 4;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (t < L) v = __ldg((const float4 *)(V + (size_t)t * C + c));
        float b = beta[t];
        float *x = X + t * nx + dk + c;
        x[0] = b * v.x;
        x[1] = b * v.y;
        x[2] = b * v.z;
        x[3] = b * v.w;
    }
    __syncthreads(); /* At, eg complete */
    for (int idx = tid; idx < CL * dk; idx += NT) {
        int t = idx / dk, i = idx % dk;
        X[t * nx + i] = beta[t] * eg[t] * Ks[t * ldk + i];
    }
    __syncthreads();
    /* (I + A) X = B, column by column (no barrier: a column is one
     * thread's), 4 rows at a time */
    for (int col = tid; col < nx; col += NT) {
        float *xc = X + col;
        for (int tg = 0; tg < CL; tg += 4) {
            float x[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
                x[u] = xc[(tg + u) * nx];
#pragma unroll 4
            for (int r = 0; r < tg; r++) {
                float xr = xc[r * nx];
                float4 a = *(const float4 *)(At + r * ldt + tg);
                x[0] -= a.x * xr;
                x[1] -= a.y * xr;
                x[2] -= a.z * xr;
                x[3] -= a.w * xr;
            }
#pragma unroll
            for (int u = 1; u < 4; u++)
#pragma unroll
                for (int r = 0; r < u; r++)
                    x[u] -= At[(tg + r) * ldt + tg + u] * x[r];
#pragma unroll
            for (int u = 0; u < 4; u++)
                xc[(tg + u) * nx] = x[u];
        }
    }
    __syncthreads();
    float *W = out + OFF_W(dk, dv), *Qg = out + OFF_QG(dk, dv), *KT = out + OFF_KT(dk, dv);
    float *Up = out + OFF_U(dk, dv);
    for (int idx = tid; idx < CL * dk; idx += NT) {
        int t = idx / dk, i = idx % dk;
        W[idx] = X[t * nx + i];
        Qg[idx] = eg[t] * Qs[t * ldk + i];
        int ii = idx / CL, s = idx % CL; /* transposed: [dk][CL] */
        KT[idx] = edl[s] * Ks[s * ldk + ii];
    }
    for (int idx = tid; idx < CL * dv; idx += NT)
        Up[idx] = X[(idx / dv) * nx + dk + idx % dv];
    if (tid == 0) out[OFF_GL(dk, dv)] = eg[CL - 1];
}

/* 16 bytes global -> shared without a register round trip */
__device__ __forceinline__ void cp16(float *smem, const float *g) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(a), "l"(g) : "memory");
}

__device__ __forceinline__ void cp_commit(void) {
    asm volatile("cp.async.commit_group;" ::: "memory");
}

__device__ __forceinline__ void cp_wait_all(void) {
    asm volatile("cp.async.commit_group;\n\tcp.async.wait_group 0;" ::: "memory");
}

/* until at most N of this thread's committed groups are pending */
template <int N> __device__ __forceinline__ void cp_wait(void) {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

static size_t st_smem(int dk, int cs) { /* S, W, e^G q, k^T, P, U */
    return sizeof(float) * ((size_t)dk * cs + (size_t)2 * CL * (dk + 4) + (size_t)dk * (CL + 4) +
                            (size_t)CL * (CL + 4) + (size_t)CL * cs);
}

static size_t st_db_smem(int dk, int cs) { /* S, 2 x (W, e^G q, U'), k^T, P */
    return sizeof(float) * ((size_t)dk * cs + 2 * ((size_t)2 * CL * (dk + 4) + (size_t)CL * cs) +
                            (size_t)dk * (CL + 4) + (size_t)CL * (CL + 4));
}

static bool prefetch_on(void) {
    const char *v = getenv("Q35_CUDA_GDN_PREFETCH");
    return v && !strcmp(v, "1");
}

/* One block per (value head, CS columns); NT / CS row groups. */
template <int CS>
__global__ void __launch_bounds__(NT)
    state_kernel(const float *__restrict__ ws, int nch, int T, int nv, int dk, int dv,
                 float *__restrict__ S, float *__restrict__ o) {
    extern __shared__ __align__(16) float sm[];
    constexpr int NRG = NT / CS, TU = (CL + NRG - 1) / NRG, IU = (DKM + NRG - 1) / NRG;
    const int ldk = dk + 4, ldt = CL + 4;
    float *Ss = sm, *Ws = Ss + dk * CS, *Qs = Ws + CL * ldk, *KTs = Qs + CL * ldk;
    float *Ps = KTs + dk * ldt, *Us = Ps + CL * ldt;
    pdl_wait();
    pdl_launch();
    const int j = blockIdx.x, c0 = blockIdx.y * CS, tid = threadIdx.x;
    const int c = tid % CS, rg = tid / CS;
    float *Sj = S + (size_t)j * dk * dv;
    for (int idx = tid; idx < dk * CS; idx += NT) {
        int cc = idx / dk, i = idx % dk;
        Ss[i * CS + cc] = Sj[(size_t)(c0 + cc) * dk + i];
    }
    for (int ci = 0; ci < nch; ci++) {
        const int t0 = ci * CL, L = T - t0 < CL ? T - t0 : CL;
        const float *in = ws + ((size_t)j * nch + ci) * per_chunk(dk, dv);
        /* the chunk's terms, every copy in flight at once (cp.async) */
        const int dk4 = dk / 4;
        for (int idx = tid; idx < CL * dk4; idx += NT) {
            int t = idx / dk4, i = (idx % dk4) * 4;
            cp16(Ws + t * ldk + i, in + OFF_W(dk, dv) + t * dk + i);
            cp16(Qs + t * ldk + i, in + OFF_QG(dk, dv) + t * dk + i);
        }
        for (int idx = tid; idx < dk * (CL / 4); idx += NT) {
            int i = idx / (CL / 4), s = (idx % (CL / 4)) * 4;
            cp16(KTs + i * ldt + s, in + OFF_KT(dk, dv) + i * CL + s);
        }
        for (int idx = tid; idx < CL * (CL / 4); idx += NT) {
            int t = idx / (CL / 4), s = (idx % (CL / 4)) * 4;
            cp16(Ps + t * ldt + s, in + OFF_P(dk, dv) + t * CL + s);
        }
        for (int idx = tid; idx < CL * (CS / 4); idx += NT) {
            int t = idx / (CS / 4), cc = (idx % (CS / 4)) * 4;
            cp16(Us + t * CS + cc, in + OFF_U(dk, dv) + (size_t)t * dv + c0 + cc);
        }
        const float gL = in[OFF_GL(dk, dv)];
        cp_wait_all();
        __syncthreads();
        /* U = U' - W S0 and e^G Q S0, rows t = rg + NRG u */
        float ao[TU];
#pragma unroll
        for (int u = 0; u < TU; u++) {
            int t = rg + NRG * u;
            float au = 0.0f, aq = 0.0f;
            if (t < L) {
                for (int i = 0; i < dk; i += 4) {
                    float4 w = *(const float4 *)(Ws + t * ldk + i);
                    float4 q = *(const float4 *)(Qs + t * ldk + i);
                    float s0 = Ss[i * CS + c], s1 = Ss[(i + 1) * CS + c];
                    float s2 = Ss[(i + 2) * CS + c], s3 = Ss[(i + 3) * CS + c];
                    au += w.x * s0 + w.y * s1 + w.z * s2 + w.w * s3;
                    aq += q.x * s0 + q.y * s1 + q.z * s2 + q.w * s3;
                }
                Us[t * CS + c] -= au;
            }
            ao[u] = aq;
        }
        __syncthreads();
        /* o = e^G Q S0 + P U (P is zero above the diagonal) */
#pragma unroll
        for (int u = 0; u < TU; u++) {
            int t = rg + NRG * u;
            if (t >= L) continue;
            float acc = ao[u];
            int se = (t / 4 + 1) * 4;
            for (int s = 0; s < se; s += 4) {
                float4 p = *(const float4 *)(Ps + t * ldt + s);
                acc += p.x * Us[s * CS + c] + p.y * Us[(s + 1) * CS + c] +
                       p.z * Us[(s + 2) * CS + c] + p.w * Us[(s + 3) * CS + c];
            }
            o[(size_t)(t0 + t) * nv * dv + (size_t)j * dv + c0 + c] = acc;
        }
        /* S = e^G_{L-1} S0 + (decayed K)^T U; rows of U past L are zero */
#pragma unroll
        for (int u = 0; u < IU; u++) {
            int i = rg + NRG * u;
            if (i >= dk) continue;
            float acc = 0.0f;
            for (int s = 0; s < CL; s += 4) {
                float4 k = *(const float4 *)(KTs + i * ldt + s);
                acc += k.x * Us[s * CS + c] + k.y * Us[(s + 1) * CS + c] +
                       k.z * Us[(s + 2) * CS + c] + k.w * Us[(s + 3) * CS + c];
            }
            Ss[i * CS + c] = gL * Ss[i * CS + c] + acc;
        }
        __syncthreads();
    }
    for (int idx = tid; idx < dk * CS; idx += NT) {
        int cc = idx / dk, i = idx % dk;
        Sj[(size_t)(c0 + cc) * dk + i] = Ss[i * CS + cc];
    }
}

/* The same with the next chunk's W, e^G q, U' copied (cp.async, two
 * buffers) while this chunk computes, k^T and P while U is formed
 * (Q35_CUDA_GDN_PREFETCH=1; not yet the default: see gdn_chunk.cu's notes). */
template <int CS>
__global__ void __launch_bounds__(NT)
    state_db_kernel(const float *__restrict__ ws, int nch, int T, int nv, int dk, int dv,
                 float *__restrict__ S, float *__restrict__ o) {
    extern __shared__ __align__(16) float sm[];
    constexpr int NRG = NT / CS, TU = (CL + NRG - 1) / NRG, IU = (DKM + NRG - 1) / NRG;
    const int ldk = dk + 4, ldt = CL + 4, wq = 2 * CL * ldk + CL * CS; /* W, e^G q, U' */
    float *Ss = sm, *WQ0 = Ss + dk * CS, *KTs = WQ0 + 2 * wq, *Ps = KTs + dk * ldt;
    pdl_wait();
    pdl_launch();
    const int j = blockIdx.x, c0 = blockIdx.y * CS, tid = threadIdx.x;
    const int c = tid % CS, rg = tid / CS, dk4 = dk / 4;
    float *Sj = S + (size_t)j * dk * dv;
    /* W, e^G q and U' of chunk ci into buffer ci % 2: the next chunk's are
     * in flight while this one computes */
    auto load_wq = [&](int ci) {
        const float *in = ws + ((size_t)j * nch + ci) * per_chunk(dk, dv);
        float *Ws = WQ0 + (ci & 1) * wq, *Qs = Ws + CL * ldk, *Us = Qs + CL * ldk;
        for (int idx = tid; idx < CL * dk4; idx += NT) {
            int t = idx / dk4, i = (idx % dk4) * 4;
            cp16(Ws + t * ldk + i, in + OFF_W(dk, dv) + t * dk + i);
            cp16(Qs + t * ldk + i, in + OFF_QG(dk, dv) + t * dk + i);
        }
        for (int idx = tid; idx < CL * (CS / 4); idx += NT) {
            int t = idx / (CS / 4), cc = (idx % (CS / 4)) * 4;
            cp16(Us + t * CS + cc, in + OFF_U(dk, dv) + (size_t)t * dv + c0 + cc);
        }
        cp_commit();
    };
    load_wq(0);
    for (int idx = tid; idx < dk * CS; idx += NT) {
        int cc = idx / dk, i = idx % dk;
        Ss[i * CS + cc] = Sj[(size_t)(c0 + cc) * dk + i];
    }
    for (int ci = 0; ci < nch; ci++) {
        const int t0 = ci * CL, L = T - t0 < CL ? T - t0 : CL;
        const float *in = ws + ((size_t)j * nch + ci) * per_chunk(dk, dv);
        float *Ws = WQ0 + (ci & 1) * wq, *Qs = Ws + CL * ldk, *Us = Qs + CL * ldk;
        /* this chunk's k^T and P (read after the first products) */
        for (int idx = tid; idx < dk * (CL / 4); idx += NT) {
            int i = idx / (CL / 4), s = (idx % (CL / 4)) * 4;
            cp16(KTs + i * ldt + s, in + OFF_KT(dk, dv) + i * CL + s);
        }
        for (int idx = tid; idx < CL * (CL / 4); idx += NT) {
            int t = idx / (CL / 4), s = (idx % (CL / 4)) * 4;
            cp16(Ps + t * ldt + s, in + OFF_P(dk, dv) + t * CL + s);
        }
        cp_commit();
        const bool next = ci + 1 < nch;
        if (next) load_wq(ci + 1);
        const float gL = in[OFF_GL(dk, dv)];
        /* pending, oldest first: this chunk's W (done here), k^T/P, the next W */
        if (next)
            cp_wait<2>();
        else
            cp_wait<1>();
        __syncthreads();
        /* U = U' - W S0 and e^G Q S0, rows t = rg + NRG u */
        float ao[TU];
#pragma unroll
        for (int u = 0; u < TU; u++) {
            int t = rg + NRG * u;
            float au = 0.0f, aq = 0.0f;
            if (t < L) {
                for (int i = 0; i < dk; i += 4) {
                    float4 w = *(const float4 *)(Ws + t * ldk + i);
                    float4 q = *(const float4 *)(Qs + t * ldk + i);
                    float s0 = Ss[i * CS + c], s1 = Ss[(i + 1) * CS + c];
                    float s2 = Ss[(i + 2) * CS + c], s3 = Ss[(i + 3) * CS + c];
                    au += w.x * s0 + w.y * s1 + w.z * s2 + w.w * s3;
                    aq += q.x * s0 + q.y * s1 + q.z * s2 + q.w * s3;
                }
                Us[t * CS + c] -= au;
            }
            ao[u] = aq;
        }
        if (next) /* k^T and P */
            cp_wait<1>();
        else
            cp_wait<0>();
        __syncthreads();
        /* o = e^G Q S0 + P U (P is zero above the diagonal) */
#pragma unroll
        for (int u = 0; u < TU; u++) {
            int t = rg + NRG * u;
            if (t >= L) continue;
            float acc = ao[u];
            int se = (t / 4 + 1) * 4;
            for (int s = 0; s < se; s += 4) {
                float4 p = *(const float4 *)(Ps + t * ldt + s);
                acc += p.x * Us[s * CS + c] + p.y * Us[(s + 1) * CS + c] +
                       p.z * Us[(s + 2) * CS + c] + p.w * Us[(s + 3) * CS + c];
            }
            o[(size_t)(t0 + t) * nv * dv + (size_t)j * dv + c0 + c] = acc;
        }
        /* S = e^G_{L-1} S0 + (decayed K)^T U; rows of U past L are zero */
#pragma unroll
        for (int u = 0; u < IU; u++) {
            int i = rg + NRG * u;
            if (i >= dk) continue;
            float acc = 0.0f;
            for (int s = 0; s < CL; s += 4) {
                float4 k = *(const float4 *)(KTs + i * ldt + s);
                acc += k.x * Us[s * CS + c] + k.y * Us[(s + 1) * CS + c] +
                       k.z * Us[(s + 2) * CS + c] + k.w * Us[(s + 3) * CS + c];
            }
            Ss[i * CS + c] = gL * Ss[i * CS + c] + acc;
        }
        __syncthreads();
    }
    for (int idx = tid; idx < dk * CS; idx += NT) {
        int cc = idx / dk, i = idx % dk;
        Sj[(size_t)(c0 + cc) * dk + i] = Ss[i * CS + cc];
    }
}

/* ------------------------------------------------------ the conv, T > 1
 *
 * gdn.cu's conv_kernel walks a channel's tokens in order in one thread (48
 * blocks for the 0.8B's 6144 channels, one L2 round trip per 4 tokens);
 * here a thread takes CT tokens of a channel, the K - 1 inputs before them
 * from the projection or (before the prompt) from the window, and the
 * window is written by a second kernel once every reader is done. The same
 * sum in the same order: the same bits. */
#define CT 16
#define KMAXC 8

__global__ void conv_par_kernel(const float *__restrict__ xin, int ldx, int T,
                                const int *__restrict__ pos, int C, int K,
                                const float *__restrict__ taps, const float *__restrict__ state,
                                float *__restrict__ out) {
    pdl_wait();
    pdl_launch();
    int c = blockIdx.x * blockDim.x + threadIdx.x, t0 = blockIdx.y * CT;
    if (c >= C) return;
    int P = *pos;
    float w[KMAXC], h[KMAXC];
#pragma unroll
    for (int j = 0; j < KMAXC; j++) {
        w[j] = j < K ? taps[(size_t)c * K + j] : 0.0f;
        int t = t0 - (K - 1) + j; /* the inputs before t0 */
        int p = P + t, m = p % K;
        h[j] = j >= K - 1 ? 0.0f
               : t >= 0   ? xin[(size_t)t * ldx + c]
                          : state[(size_t)(m < 0 ? m + K : m) * C + c];
    }
    int te = t0 + CT < T ? t0 + CT : T;
#pragma unroll 4
    for (int t = t0; t < te; t++) {
        float xt = xin[(size_t)t * ldx + c];
        float y = 0.0f;
#pragma unroll
        for (int j = 0; j < KMAXC; j++)
            y += w[j] * (j < K - 1 ? h[j] : j == K - 1 ? xt : 0.0f);
#pragma unroll
        for (int j = 0; j < KMAXC - 1; j++)
            h[j] = j < K - 2 ? h[j + 1] : j == K - 2 ? xt : h[j];
        out[(size_t)t * C + c] = y * sigm(y);
    }
}

/* The window after the prompt: positions P + t for t >= T - (K - 1), t >= 0
 * (older ones keep their slots). */
__global__ void conv_state_kernel(const float *__restrict__ xin, int ldx, int T,
                                  const int *__restrict__ pos, int C, int K,
                                  float *__restrict__ state) {
    pdl_wait();
    pdl_launch();
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int P = *pos;
    for (int t = T - (K - 1) > 0 ? T - (K - 1) : 0; t < T; t++)
        state[(size_t)((P + t) % K) * C + c] = xin[(size_t)t * ldx + c];
}

bool cu_conv_prefill(const q35_config *c, const float *xin, int ldx, int T, const int *pos,
                     const float *taps, float *state, float *out, cudaStream_t st) {
    const char *v = getenv("Q35_CUDA_CONV_PAR");
    int C = q35_config_conv_channels(c), K = c->conv_kernel;
    if (!(v && !strcmp(v, "1")) || T < 2 || K > KMAXC || K < 2) return false;
    cu_launch(conv_par_kernel, dim3((C + 127) / 128, (T + CT - 1) / CT), dim3(128), 0, st, xin,
              ldx, T, pos, C, K, taps, (const float *)state, out);
    cu_launch(conv_state_kernel, dim3((C + 127) / 128), dim3(128), 0, st, xin, ldx, T, pos, C, K,
              state);
    return true;
}

size_t cu_gdn_chunk_ws_floats(const q35_config *c, int T) {
    size_t nch = (size_t)(T + CL - 1) / CL;
    return (size_t)c->lin_v_heads * nch * per_chunk(c->lin_k_dim, c->lin_v_dim);
}

/* Whether prefill takes the chunked form without Q35_CUDA_GDN. */
#define CHUNK_DEFAULT true

bool cu_gdn_chunk_on(void) {
    const char *v = getenv("Q35_CUDA_GDN");
    if (v && !strcmp(v, "recurrent")) return false;
    if (v && !strcmp(v, "chunk")) return true;
    return CHUNK_DEFAULT;
}

bool cu_gdn_chunk_takes(const q35_config *c) {
    return c->lin_k_dim <= DKM && c->lin_v_dim <= DKM && c->lin_k_dim % 4 == 0 &&
           c->lin_v_dim % 4 == 0 && c->lin_k_heads > 0 && c->lin_v_heads % c->lin_k_heads == 0;
}

template <int CS>
static void state_go(const q35_config *c, int nch, int T, float *ws, float *S, float *o,
                     cudaStream_t st) {
    int dk = c->lin_k_dim, dv = c->lin_v_dim, nv = c->lin_v_heads;
    if (prefetch_on() && nch > 1) {
        size_t smem = st_db_smem(dk, CS);
        cudaFuncSetAttribute(state_db_kernel<CS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)smem);
        cu_launch(state_db_kernel<CS>, dim3(nv, dv / CS), dim3(NT), smem, st, (const float *)ws,
                  nch, T, nv, dk, dv, S, o);
        return;
    }
    size_t smem = st_smem(dk, CS);
    cudaFuncSetAttribute(state_kernel<CS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         (int)smem);
    cu_launch(state_kernel<CS>, dim3(nv, dv / CS), dim3(NT), smem, st, (const float *)ws, nch, T,
              nv, dk, dv, S, o);
}

void cu_gdn_chunk(const q35_config *c, const dlayer *L, const float *qkv, const float *xin,
                  int ldx, int T, float *S, float *o, float *ws, cudaStream_t st) {
    int C = q35_config_conv_channels(c), nk = c->lin_k_heads, nv = c->lin_v_heads;
    int dk = c->lin_k_dim, dv = c->lin_v_dim;
    int boff = C + nv * dv, aoff = boff + nv, nch = (T + CL - 1) / CL;
    size_t smem = wy_smem(dk, dv);
    cudaFuncSetAttribute(wy_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    cu_launch(wy_kernel, dim3(nv, nch), dim3(NT), smem, st, qkv, C, xin, ldx, boff, aoff, T, nk,
              nv, dk, dv, L->A, L->dt_bias, ws);
    if (dv % 16 == 0)
        state_go<16>(c, nch, T, ws, S, o, st);
    else if (dv % 8 == 0)
        state_go<8>(c, nch, T, ws, S, o, st);
    else
        state_go<4>(c, nch, T, ws, S, o, st);
}
