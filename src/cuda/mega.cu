/* mega.cu — the layers of a one-token decode step as one persistent
 * kernel: one block of MW warps per multiprocessor, all resident at once
 * (a cooperative launch), stepping through the phases of every layer
 *
 *     GDN:  [norm + in-projection] [conv + delta rule] [norm, gate + out-projection + residual]
 *     attn: [norm + qkv-projection] [norm, RoPE, attention]  [out-projection + residual]
 *     both: [norm + gate|up + SwiGLU] [down-projection + residual]
 *
 * with a grid-wide barrier between phases instead of a kernel boundary.
 * The phases are the same device code as the separate kernels (gemv.cuh,
 * gdn_step.cuh, attn_dec.cuh), so the results are the same bits as the
 * launch-per-phase step. With Q35_CUDA_MEGA_PF=1, before a barrier each
 * warp asks L2 for its first rows of the next phase's matrix. Activations written inside the launch are read with
 * ld.global.cg (L2, never a stale L1 line), after the barrier's
 * acquire. The embedding before and the head after stay separate kernels. */
#include <stdlib.h>
#include <string.h>

#include "cuda/attn_dec.cuh"
#include "cuda/cuda_internal.cuh"
#include "cuda/gdn_step.cuh"
#include "cuda/gemv.cuh"

#define MW DW /* warps per block: attention's decode block */
#define MT (MW * 32)

typedef struct mega_args {
    const cu_mega_layer *layers;
    int n_layers;
    float *x, *proj, *o, *mlp;
    const int *pos;
    unsigned *bar; /* zeroed before each launch */
    int H, I, C, nk, nv, dk, dv, K, nh, nkv, d, r;
    double theta;
    float eps;
    int prefetch; /* L2 prefetch of the next phase's rows (Q35_CUDA_MEGA_PF=1) */
} mega_args;

/* All blocks arrive; the last arrival releases them. *target counts the
 * arrivals expected so far (gridDim.x per barrier, the counter is never
 * reset within a launch). */
__device__ __forceinline__ void grid_sync(unsigned *bar, unsigned *target) {
    __syncthreads();
    *target += gridDim.x;
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(bar, 1u);
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
        } while (v < *target);
        __threadfence();
    }
    __syncthreads();
}

/* Rows per warp for a matrix of nout outputs: the most that still gives
 * about every warp of the grid a row group. */
__device__ __forceinline__ int mega_nr(int nout, bool glu, int warps) {
    for (int nr = 4; nr >= (glu ? 2 : 1); nr /= 2) {
        int per = glu ? nr / 2 : nr;
        if ((nout + per - 1) / per * 4 >= 3 * warps) return nr;
    }
    return glu ? 2 : 1;
}

/* y (op)= W pro(x) over the whole grid, this block's share (gemv_kernel's
 * body with MW warps and coherent activation loads). */
template <int FMT, int NR>
__device__ __forceinline__ void mega_gemv_nr(const dmat &W, const gv_args &a, float4 *xs4) {
    __shared__ float red[MW];
    __shared__ float hinv[128];
    constexpr int S = chunk_of<FMT>::n;
    const int cols = W.cols, NC = cols / S;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const bool glu = a.op == MM_GLU;
    const int per = glu ? NR / 2 : NR;
    const int groups = (a.nout + per - 1) / per;
    const int gstride = gridDim.x * MW;
    float *xsf = (float *)xs4;
    float inv = 1.0f;
    if (a.pro == PRO_RMS) {
        float ss = 0.0f;
        for (int i = tid; i < cols; i += MT) {
            float v = __ldcg(a.x + i);
            ss += v * v;
        }
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        float tot = 0.0f;
        for (int w = 0; w < MW; w++)
            tot += red[w];
        inv = 1.0f / sqrtf(tot / (float)cols + a.eps);
    } else if (a.pro == PRO_GATED) {
        int nh = cols / a.dv;
        for (int h = warp; h < nh; h += MW) {
            float ss = 0.0f;
            for (int i = lane; i < a.dv; i += 32) {
                float v = __ldcg(a.x + h * a.dv + i);
                ss += v * v;
            }
            ss = warp_sum(ss);
            if (lane == 0) hinv[h] = 1.0f / sqrtf(ss / (float)a.dv + a.eps);
        }
        __syncthreads();
    }
    for (int i = tid; i < cols; i += MT) {
        float v = __ldcg(a.x + i);
        if (a.pro == PRO_RMS) v = v * inv * a.norm[i];
        if (a.pro == PRO_GATED) {
            float z = __ldcg(a.z + i);
            v = v * hinv[i / a.dv] * a.norm[i % a.dv] * (z / (1.0f + expf(-z)));
        }
        int c = i / S, f = (i % S) >> 2;
        xsf[(f * NC + c) * 4 + (i & 3)] = v;
    }
    __syncthreads();
    for (int g = blockIdx.x * MW + warp; g < groups; g += gstride) {
        int rows[NR];
#pragma unroll
        for (int i = 0; i < NR; i++) {
            int o = g * per + (glu ? i % per : i), r = glu && i >= per ? o + a.nout : o;
            rows[i] = r < W.rows ? r : W.rows - 1;
        }
        float acc[NR];
#pragma unroll
        for (int i = 0; i < NR; i++)
            acc[i] = 0.0f;
#pragma unroll 2
        for (int c = lane; c < NC; c += 32) {
            uint4 q[NR];
            float dq[NR];
#pragma unroll
            for (int i = 0; i < NR; i++) {
                q[i] = __ldg(row_ptr<FMT>(W, rows[i]) + c);
                if (FMT == DF_Q8 || FMT == DF_Q4)
                    dq[i] = __half2float(__ushort_as_half(__ldg(
                        W.scale + (size_t)rows[i] * (cols / 32) + (FMT == DF_Q8 ? c / 2 : c))));
            }
#pragma unroll
            for (int i = 0; i < NR; i++) {
                float s = chunk_dot<FMT>(q[i], xs4, NC, c);
                acc[i] += (FMT == DF_Q8 || FMT == DF_Q4) ? dq[i] * s : s;
            }
        }
#pragma unroll
        for (int i = 0; i < NR; i++)
            acc[i] = warp_sum(acc[i]);
        if (lane == 0) {
#pragma unroll
            for (int i = 0; i < NR; i++) {
                if (i >= per) break;
                int o = g * per + i;
                if (o >= a.nout) break;
                float v = glu ? acc[i] / (1.0f + expf(-acc[i])) * acc[i + per] : acc[i];
                if (a.op == MM_ADD)
                    a.y[o] = __ldcg(a.y + o) + v;
                else
                    a.y[o] = v;
            }
        }
    }
    __syncthreads(); /* xs4 is free for the next phase */
}

template <int FMT>
__device__ __forceinline__ void mega_gemv(const dmat &W, const gv_args &a, float4 *xs4) {
    int nr = mega_nr(a.nout, a.op == MM_GLU, gridDim.x * MW);
    if (nr == 4)
        mega_gemv_nr<FMT, 4>(W, a, xs4);
    else if (nr == 2)
        mega_gemv_nr<FMT, 2>(W, a, xs4);
    else
        mega_gemv_nr<FMT, 1>(W, a, xs4);
}

/* L2 prefetch of this warp's first row group of W (as mega_gemv will
 * split it), issued before a barrier. */
template <int FMT>
__device__ __forceinline__ void mega_prefetch(const dmat &W, int nout, bool glu, int on) {
    constexpr int S = chunk_of<FMT>::n;
    if (!on) return;
    int nr = mega_nr(nout, glu, gridDim.x * MW), per = glu ? nr / 2 : nr;
    int lane = threadIdx.x & 31, g = blockIdx.x * MW + (threadIdx.x >> 5);
    if (g * per >= nout) return;
    int NC = W.cols / S;
    for (int i = 0; i < nr; i++) {
        int o = g * per + (glu ? i % per : i), r = glu && i >= per ? o + nout : o;
        r = r < W.rows ? r : W.rows - 1;
        const uint4 *p = row_ptr<FMT>(W, r);
        for (int c = lane; c < NC; c += 32)
            asm volatile("prefetch.global.L2 [%0];" ::"l"(p + c));
    }
}

static __device__ __forceinline__ gv_args gv(const float *x, const float *norm, float eps, int pro,
                                             int op, int nout, float *y) {
    gv_args a = {};
    a.x = x;
    a.norm = norm;
    a.eps = eps;
    a.pro = pro;
    a.op = op;
    a.nout = nout;
    a.y = y;
    return a;
}

template <int FMT> __global__ void __launch_bounds__(MT, 1) mega_kernel(mega_args A) {
    extern __shared__ float4 xs4[];
    unsigned target = 0;
    const int H = A.H, I = A.I, C = A.C, nv = A.nv, dv = A.dv;
    const int zoff = C, boff = C + nv * dv, aoff = boff + nv;
    const int cpb = MT / LPC, vblocks = nv * (dv / cpb);
    for (int l = 0; l < A.n_layers; l++) {
        const cu_mega_layer &ML = A.layers[l];
        const dlayer &D = ML.D;
        if (!D.full_attn) {
            mega_gemv<FMT>(D.w_in, gv(A.x, D.attn_norm, A.eps, PRO_RMS, MM_STORE, D.w_in.rows, A.proj),
                           xs4);
            grid_sync(A.bar, &target);
            for (int vb = blockIdx.x; vb < vblocks; vb += gridDim.x)
                gdn_step_body(vb % nv, vb / nv, A.proj, A.pos, C, A.K, D.conv_w, ML.conv, boff,
                              aoff, A.nk, nv, A.dk, dv, D.A, D.dt_bias, ML.ssm, A.o);
            mega_prefetch<FMT>(D.w_out, D.w_out.rows, false, A.prefetch);
            grid_sync(A.bar, &target);
            gv_args g = gv(A.o, D.gdn_norm, A.eps, PRO_GATED, MM_ADD, D.w_out.rows, A.x);
            g.z = A.proj + zoff;
            g.dv = dv;
            mega_gemv<FMT>(D.w_out, g, xs4);
        } else {
            mega_gemv<FMT>(D.w_qkv,
                           gv(A.x, D.attn_norm, A.eps, PRO_RMS, MM_STORE, D.w_qkv.rows, A.proj), xs4);
            grid_sync(A.bar, &target);
            for (int h = blockIdx.x; h < A.nh; h += gridDim.x)
                attn_dec_body(h, A.proj, A.pos, A.nh, A.nkv, A.d, A.r, A.theta, A.eps, D.q_norm,
                              D.k_norm, ML.kc, ML.vc, A.o);
            mega_prefetch<FMT>(D.w_o, D.w_o.rows, false, A.prefetch);
            grid_sync(A.bar, &target);
            mega_gemv<FMT>(D.w_o, gv(A.o, NULL, A.eps, PRO_PLAIN, MM_ADD, D.w_o.rows, A.x), xs4);
        }
        mega_prefetch<FMT>(D.w_gu, D.w_gu.rows / 2, true, A.prefetch);
        grid_sync(A.bar, &target);
        mega_gemv<FMT>(D.w_gu, gv(A.x, D.mlp_norm, A.eps, PRO_RMS, MM_GLU, I, A.mlp), xs4);
        mega_prefetch<FMT>(D.w_down, D.w_down.rows, false, A.prefetch);
        grid_sync(A.bar, &target);
        mega_gemv<FMT>(D.w_down, gv(A.mlp, NULL, A.eps, PRO_PLAIN, MM_ADD, H, A.x), xs4);
        if (l + 1 < A.n_layers) {
            const dlayer &N = A.layers[l + 1].D;
            const dmat &Wn = N.full_attn ? N.w_qkv : N.w_in;
            mega_prefetch<FMT>(Wn, Wn.rows, false, A.prefetch);
            grid_sync(A.bar, &target);
        }
    }
}

/* ------------------------------------------------------------------ host */

/* The layers' matrices' one form (-1: mixed, or one the kernel lacks). */
static int layers_fmt(const cuda_model *cm) {
    int f = -1;
    for (int l = 0; l < cm->cfg.n_layers; l++) {
        const dlayer *D = &cm->layers[l];
        const dmat *ms[4] = {&D->w_gu, &D->w_down, D->full_attn ? &D->w_qkv : &D->w_in,
                             D->full_attn ? &D->w_o : &D->w_out};
        for (int i = 0; i < 4; i++) {
            if (f == -1) f = ms[i]->fmt;
            if (ms[i]->fmt != f) return -1;
        }
    }
    return f == DF_BF16 || f == DF_Q8 || f == DF_Q4 || f == DF_F32 || f == DF_F16 ? f : -1;
}

static size_t mega_smem(const q35_config *c) {
    size_t w = (size_t)c->hidden_size;
    size_t cand[3] = {(size_t)c->intermediate_size, (size_t)c->lin_v_heads * c->lin_v_dim,
                      (size_t)c->n_heads * c->head_dim};
    for (int i = 0; i < 3; i++)
        if (cand[i] > w) w = cand[i];
    return w * sizeof(float);
}

template <int FMT> static int resident_blocks(size_t smem) {
    int dev = 0, sms = 0, per = 0;
    cudaGetDevice(&dev);
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per, mega_kernel<FMT>, MT, smem) !=
            cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return per >= 1 ? sms : 0; /* one block per multiprocessor */
}

static int blocks_for(int fmt, size_t smem) {
    switch (fmt) {
    case DF_F32: return resident_blocks<DF_F32>(smem);
    case DF_BF16: return resident_blocks<DF_BF16>(smem);
    case DF_F16: return resident_blocks<DF_F16>(smem);
    case DF_Q8: return resident_blocks<DF_Q8>(smem);
    default: return resident_blocks<DF_Q4>(smem);
    }
}

int cu_mega_blocks(const cuda_model *cm) {
    const char *v = getenv("Q35_CUDA_MEGA");
    if (v && !strcmp(v, "0")) return 0;
    const q35_config *c = &cm->cfg;
    int cpb = MT / LPC, fmt = layers_fmt(cm);
    bool shapes = fmt >= 0 && c->lin_v_dim % cpb == 0 && c->lin_k_dim <= DKMAX &&
                  c->lin_k_dim % LPC == 0 && 2 * c->head_dim <= MT && c->head_dim % 32 == 0 &&
                  c->head_dim <= DMAX && c->lin_v_heads <= 128 && mega_smem(c) <= 16 * 1024;
    return shapes ? blocks_for(fmt, mega_smem(c)) : 0;
}

template <int FMT>
static cudaError_t go(const mega_args &a, int blocks, size_t smem, cudaStream_t st) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(MT);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeCooperative;
    at[0].val.cooperative = 1;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, mega_kernel<FMT>, a);
}

cudaError_t cu_mega_layers(const cuda_model *cm, int blocks, const cu_mega_layer *layers, float *x,
                           float *proj, float *o, float *mlp, const int *pos, unsigned *bar,
                           cudaStream_t st) {
    const q35_config *c = &cm->cfg;
    mega_args a = {};
    a.layers = layers;
    a.n_layers = c->n_layers;
    a.x = x;
    a.proj = proj;
    a.o = o;
    a.mlp = mlp;
    a.pos = pos;
    a.bar = bar;
    a.H = c->hidden_size;
    a.I = c->intermediate_size;
    a.C = q35_config_conv_channels(c);
    a.nk = c->lin_k_heads;
    a.nv = c->lin_v_heads;
    a.dk = c->lin_k_dim;
    a.dv = c->lin_v_dim;
    a.K = c->conv_kernel;
    a.nh = c->n_heads;
    a.nkv = c->n_kv_heads;
    a.d = c->head_dim;
    a.r = c->rotary_dim;
    a.theta = c->rope_theta;
    a.eps = c->rms_eps;
    /* off by default: on an H100 it gained nothing (q4 tg128 996 with it,
     * 1019 without, same run) */
    const char *pf = getenv("Q35_CUDA_MEGA_PF");
    a.prefetch = pf && !strcmp(pf, "1");
    cudaError_t rc = cudaMemsetAsync(bar, 0, sizeof(unsigned), st);
    if (rc != cudaSuccess) return rc;
    size_t smem = mega_smem(c);
    switch (layers_fmt(cm)) {
    case DF_F32: return go<DF_F32>(a, blocks, smem, st);
    case DF_BF16: return go<DF_BF16>(a, blocks, smem, st);
    case DF_F16: return go<DF_F16>(a, blocks, smem, st);
    case DF_Q8: return go<DF_Q8>(a, blocks, smem, st);
    default: return go<DF_Q4>(a, blocks, smem, st);
    }
}
