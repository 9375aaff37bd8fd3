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
 * warp asks L2 for its first rows of the next phase's matrix. Activations written inside the launch
 * are read with ld.global.cg (L2, never a stale L1 line), after the barrier's acquire. The
 * embedding before and the head after stay separate kernels. */
#include <stdio.h>
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
    /* batched (B > 1): stream b's rows at x + b * H, proj + b * ldp,
     * o + b * ldo, mlp + b * I, its state and position in tab[b] */
    const cu_batch_stream *tab;
    int B, ldp, ldo;
    size_t conv_n, ssm_n, kvw;
    unsigned *bar; /* zeroed before each launch */
    int H, I, C, nk, nv, dk, dv, K, nh, nkv, d, r;
    double theta;
    float eps;
    int prefetch; /* L2 prefetch of the next phase's rows (Q35_CUDA_MEGA_PF=1) */
    int spin_ns;  /* a pause between a barrier's polls (Q35_CUDA_MEGA_SPIN=ns; 0: none) */
    int ks;       /* split-K for the few-row matrices (Q35_CUDA_MEGA_KS=1) */
    unsigned long long *prof; /* phase clocks (Q35_CUDA_MEGA_PROF=1), else NULL */
    int bar_ra; /* barrier by release / acquire alone, no full fences (Q35_CUDA_MEGA_BAR=ra) */
} mega_args;

/* Phase profile (Q35_CUDA_MEGA_PROF=1): after bar's 16 bytes, a header
 * (launches, block 0's cycles a launch) and per phase and block two words
 * summed over launches: work cycles (arrival - previous release) and the
 * barrier wait (release - arrival). Each block's thread 0 owns its words
 * (no atomics in the way of the barrier). SM clocks: differences within
 * one block only. */
#define PROF_PHASES 160
#define PROF_BLOCKS 256
#define PROF_WORDS (8 + 2 * PROF_PHASES * PROF_BLOCKS)

__device__ __forceinline__ void prof_mark(unsigned long long *prof, int ph, long long arr,
                                          long long rel, long long now) {
    if (ph >= PROF_PHASES || blockIdx.x >= PROF_BLOCKS) return;
    unsigned long long *p = prof + 8 + 2 * ((size_t)ph * PROF_BLOCKS + blockIdx.x);
    p[0] += (unsigned long long)(arr - rel);
    p[1] += (unsigned long long)(now - arr);
}

/* All blocks arrive; the last arrival releases them. *target counts the
 * arrivals expected so far (gridDim.x per barrier, the counter is never
 * reset within a launch). */
__device__ __forceinline__ void grid_sync(unsigned *bar, unsigned *target, int spin_ns, int bar_ra,
                                          unsigned long long *prof = NULL, int *ph = NULL,
                                          long long *rel = NULL) {
    __syncthreads();
    *target += gridDim.x;
    if (threadIdx.x == 0) {
        long long arr = prof ? clock64() : 0;
        /* bar_ra: the release orders the block's writes (made visible to
         * this thread by __syncthreads) before the arrival, the acquire
         * the other blocks' writes before what follows: no fence.sc */
        if (bar_ra) {
            asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(bar) : "memory");
        } else {
            __threadfence();
            atomicAdd(bar, 1u);
        }
        unsigned v;
        for (;;) {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
            if (v >= *target) break;
            if (spin_ns) __nanosleep(spin_ns);
        }
        if (!bar_ra) __threadfence();
        if (prof) {
            long long now = clock64();
            prof_mark(prof, *ph, arr, *rel, now);
            *rel = now;
        }
    }
    if (ph) (*ph)++;
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

/* Per-stream strides of a phase's input, gate and output (floats). */
typedef struct mstride {
    int nb;
    size_t x, z, y;
    int ks; /* 1: split a row's columns over warps where rows are few (Q35_CUDA_MEGA_KS=1) */
} mstride;

/* y (op)= W pro(x) over the whole grid, this block's share (gemv_kernel's
 * body with MW warps and coherent activation loads), for nb streams, NBS
 * at a time: their inputs side by side in shared memory, each weight chunk
 * loaded once for the NBS of them (the next NBS re-read it, from L2). */
template <int FMT, int NR, int NBS, int KS = 1>
__device__ __forceinline__ void mega_gemv_nr(const dmat &W, const gv_args &a, const mstride &ms,
                                             float4 *xs4) {
    __shared__ float red[MW];
    __shared__ float hinv[NBS][128];
    __shared__ float sinv[NBS];
    constexpr int S = chunk_of<FMT>::n;
    const int cols = W.cols, NC = cols / S;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const bool glu = a.op == MM_GLU;
    const int per = glu ? NR / 2 : NR;
    const int groups = (a.nout + per - 1) / per;
    const int gstride = gridDim.x * MW;
    for (int b0 = 0; b0 < ms.nb; b0 += NBS) {
        const int nbh = ms.nb - b0 < NBS ? ms.nb - b0 : NBS;
        for (int j = 0; j < nbh; j++) {
            const float *x = a.x + (size_t)(b0 + j) * ms.x;
            if (a.pro == PRO_RMS) {
                float ss = 0.0f;
                for (int i = tid; i < cols; i += MT) {
                    float v = __ldcg(x + i);
                    ss += v * v;
                }
                ss = warp_sum(ss);
                if (lane == 0) red[warp] = ss;
                __syncthreads();
                if (tid == 0) {
                    float tot = 0.0f;
                    for (int w = 0; w < MW; w++)
                        tot += red[w];
                    sinv[j] = 1.0f / sqrtf(tot / (float)cols + a.eps);
                }
                __syncthreads();
            } else if (a.pro == PRO_GATED) {
                int nh = cols / a.dv;
                for (int h = warp; h < nh; h += MW) {
                    float ss = 0.0f;
                    for (int i = lane; i < a.dv; i += 32) {
                        float v = __ldcg(x + h * a.dv + i);
                        ss += v * v;
                    }
                    ss = warp_sum(ss);
                    if (lane == 0) hinv[j][h] = 1.0f / sqrtf(ss / (float)a.dv + a.eps);
                }
                __syncthreads();
            }
            float *xsf = (float *)xs4 + (size_t)j * cols;
            const float *z = a.pro == PRO_GATED ? a.z + (size_t)(b0 + j) * ms.z : NULL;
            for (int i = tid; i < cols; i += MT) {
                float v = __ldcg(x + i);
                if (a.pro == PRO_RMS) v = v * sinv[j] * a.norm[i];
                if (a.pro == PRO_GATED) {
                    float zv = __ldcg(z + i);
                    v = v * hinv[j][i / a.dv] * a.norm[i % a.dv] * (zv / (1.0f + expf(-zv)));
                }
                int c = i / S, f = (i % S) >> 2;
                xsf[(f * NC + c) * 4 + (i & 3)] = v;
            }
        }
        __syncthreads();
        if constexpr (KS > 1) { /* one row (NR = NBS = 1, no GLU) over KS warps of a block */
            __shared__ float kpart[MW];
            const int vw = MW / KS, part = warp % KS, per_round = gridDim.x * vw;
            const int rounds = (groups + per_round - 1) / per_round;
            float *y = a.y;
            for (int rd = 0; rd < rounds; rd++) { /* the same count in every warp: syncs are safe */
                int g = rd * per_round + blockIdx.x * vw + warp / KS;
                float acc = 0.0f;
                if (g < groups) {
                    int r = g < W.rows ? g : W.rows - 1;
#pragma unroll 2
                    for (int c = lane + 32 * part; c < NC; c += 32 * KS) {
                        uint4 q = __ldg(row_ptr<FMT>(W, r) + c);
                        float sd = chunk_dot<FMT>(q, xs4, NC, c);
                        if (FMT == DF_Q8 || FMT == DF_Q4)
                            sd *= __half2float(__ushort_as_half(__ldg(
                                W.scale + (size_t)r * (cols / 32) + (FMT == DF_Q8 ? c / 2 : c))));
                        acc += sd;
                    }
                }
                acc = warp_sum(acc);
                if (lane == 0) kpart[warp] = acc;
                __syncthreads();
                if (part == 0 && lane == 0 && g < a.nout) {
                    float v = 0.0f;
                    for (int p = 0; p < KS; p++) /* in order: the same bits every run */
                        v += kpart[warp + p];
                    if (a.op == MM_ADD)
                        y[g] = __ldcg(y + g) + v;
                    else
                        y[g] = v;
                }
                __syncthreads();
            }
        } else {
            for (int g = blockIdx.x * MW + warp; g < groups; g += gstride) {
                int rows[NR];
#pragma unroll
                for (int i = 0; i < NR; i++) {
                    int o = g * per + (glu ? i % per : i), r = glu && i >= per ? o + a.nout : o;
                    rows[i] = r < W.rows ? r : W.rows - 1;
                }
                float acc[NR][NBS];
#pragma unroll
                for (int i = 0; i < NR; i++)
#pragma unroll
                    for (int j = 0; j < NBS; j++)
                        acc[i][j] = 0.0f;
#pragma unroll 2
                for (int c = lane; c < NC; c += 32) {
                    uint4 q[NR];
                    float dq[NR];
#pragma unroll
                    for (int i = 0; i < NR; i++) {
                        q[i] = __ldg(row_ptr<FMT>(W, rows[i]) + c);
                        if (FMT == DF_Q8 || FMT == DF_Q4)
                            dq[i] = __half2float(
                                __ushort_as_half(__ldg(W.scale + (size_t)rows[i] * (cols / 32) +
                                                       (FMT == DF_Q8 ? c / 2 : c))));
                    }
#pragma unroll
                    for (int j = 0; j < NBS; j++) {
                        if (j >= nbh) break;
                        const float4 *xj = xs4 + (size_t)j * (cols / 4);
#pragma unroll
                        for (int i = 0; i < NR; i++) {
                            float sd = chunk_dot<FMT>(q[i], xj, NC, c);
                            acc[i][j] += (FMT == DF_Q8 || FMT == DF_Q4) ? dq[i] * sd : sd;
                        }
                    }
                }
#pragma unroll
                for (int j = 0; j < NBS; j++) {
                    if (j >= nbh) break;
                    float *y = a.y + (size_t)(b0 + j) * ms.y;
#pragma unroll
                    for (int i = 0; i < NR; i++)
                        acc[i][j] = warp_sum(acc[i][j]);
                    if (lane == 0) {
#pragma unroll
                        for (int i = 0; i < NR; i++) {
                            if (i >= per) break;
                            int o = g * per + i;
                            if (o >= a.nout) break;
                            float v = glu ? acc[i][j] / (1.0f + expf(-acc[i][j])) * acc[i + per][j]
                                          : acc[i][j];
                            if (a.op == MM_ADD)
                                y[o] = __ldcg(y + o) + v;
                            else
                                y[o] = v;
                        }
                    }
                }
            }
        }
        __syncthreads(); /* xs4 is free for the next streams, or phase */
    }
}

template <int FMT, int NBS>
__device__ __forceinline__ void mega_gemv(const dmat &W, const gv_args &a, const mstride &ms,
                                          float4 *xs4) {
    int nr = mega_nr(a.nout, a.op == MM_GLU, gridDim.x * MW);
    if constexpr (NBS == 1) { /* several streams: 2 rows at most, acc[][] stays in registers */
        int warps = gridDim.x * MW;
        if (ms.ks && nr == 1 && a.op != MM_GLU && warps >= 2 * a.nout) {
            if (warps >= 4 * a.nout)
                mega_gemv_nr<FMT, 1, 1, 4>(W, a, ms, xs4);
            else
                mega_gemv_nr<FMT, 1, 1, 2>(W, a, ms, xs4);
            return;
        }
        if (nr == 4) {
            mega_gemv_nr<FMT, 4, NBS>(W, a, ms, xs4);
            return;
        }
    } else if (nr == 4) {
        nr = 2;
    }
    if (nr == 2)
        mega_gemv_nr<FMT, 2, NBS>(W, a, ms, xs4);
    else
        mega_gemv_nr<FMT, 1, NBS>(W, a, ms, xs4);
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

template <int FMT, int NBS> __global__ void __launch_bounds__(MT, 1) mega_kernel(mega_args A) {
    extern __shared__ float4 xs4[];
    unsigned target = 0;
    int ph = 0;
    long long rel = clock64(), t0 = rel;
    const int H = A.H, I = A.I, C = A.C, nv = A.nv, dv = A.dv, B = A.B;
    const int zoff = C, boff = C + nv * dv, aoff = boff + nv;
    const int cpb = MT / LPC, vblocks = nv * (dv / cpb);
    const mstride s_in = {B, (size_t)H, 0, (size_t)A.ldp, A.ks};              /* x -> proj */
    const mstride s_out = {B, (size_t)A.ldo, (size_t)A.ldp, (size_t)H, A.ks}; /* o -> x */
    const mstride s_gu = {B, (size_t)H, 0, (size_t)I, A.ks};                  /* x -> mlp */
    const mstride s_dn = {B, (size_t)I, 0, (size_t)H, A.ks};                  /* mlp -> x */
    for (int l = 0; l < A.n_layers; l++) {
        const cu_mega_layer &ML = A.layers[l];
        const dlayer &D = ML.D;
        if (!D.full_attn) {
            mega_gemv<FMT, NBS>(D.w_in,
                                gv(A.x, D.attn_norm, A.eps, PRO_RMS, MM_STORE, D.w_in.rows, A.proj),
                                s_in, xs4);
            grid_sync(A.bar, &target, A.spin_ns, A.bar_ra, A.prof, &ph, &rel);
            for (int vb = blockIdx.x; vb < B * vblocks; vb += gridDim.x) {
                int b = vb / vblocks, v = vb % vblocks;
                const cu_batch_stream *t = A.tab ? A.tab + b : NULL;
                float *conv = t ? t->conv + (size_t)ML.slot * A.conv_n : ML.conv;
                float *ssm = t ? t->ssm + (size_t)ML.slot * A.ssm_n : ML.ssm;
                gdn_step_body(v % nv, v / nv, A.proj + (size_t)b * A.ldp, t ? &t->pos : A.pos, C,
                              A.K, D.conv_w, conv, boff, aoff, A.nk, nv, A.dk, dv, D.A, D.dt_bias,
                              ssm, A.o + (size_t)b * A.ldo);
            }
            mega_prefetch<FMT>(D.w_out, D.w_out.rows, false, A.prefetch);
            grid_sync(A.bar, &target, A.spin_ns, A.bar_ra, A.prof, &ph, &rel);
            gv_args g = gv(A.o, D.gdn_norm, A.eps, PRO_GATED, MM_ADD, D.w_out.rows, A.x);
            g.z = A.proj + zoff;
            g.dv = dv;
            mega_gemv<FMT, NBS>(D.w_out, g, s_out, xs4);
        } else {
            mega_gemv<FMT, NBS>(
                D.w_qkv, gv(A.x, D.attn_norm, A.eps, PRO_RMS, MM_STORE, D.w_qkv.rows, A.proj), s_in,
                xs4);
            grid_sync(A.bar, &target, A.spin_ns, A.bar_ra, A.prof, &ph, &rel);
            for (int w = blockIdx.x; w < B * A.nh; w += gridDim.x) {
                int b = w / A.nh, h = w % A.nh;
                const cu_batch_stream *t = A.tab ? A.tab + b : NULL;
                float *kc = t ? t->kv + (size_t)ML.slot * 2 * t->n_ctx * A.kvw : ML.kc;
                float *vc = t ? kc + (size_t)t->n_ctx * A.kvw : ML.vc;
                attn_dec_body(h, A.proj + (size_t)b * A.ldp, t ? &t->pos : A.pos, A.nh, A.nkv, A.d,
                              A.r, A.theta, A.eps, D.q_norm, D.k_norm, kc, vc,
                              A.o + (size_t)b * A.ldo);
            }
            mega_prefetch<FMT>(D.w_o, D.w_o.rows, false, A.prefetch);
            grid_sync(A.bar, &target, A.spin_ns, A.bar_ra, A.prof, &ph, &rel);
            mega_gemv<FMT, NBS>(D.w_o, gv(A.o, NULL, A.eps, PRO_PLAIN, MM_ADD, D.w_o.rows, A.x),
                                s_out, xs4);
        }
        mega_prefetch<FMT>(D.w_gu, D.w_gu.rows / 2, true, A.prefetch);
        grid_sync(A.bar, &target, A.spin_ns, A.bar_ra, A.prof, &ph, &rel);
        mega_gemv<FMT, NBS>(D.w_gu, gv(A.x, D.mlp_norm, A.eps, PRO_RMS, MM_GLU, I, A.mlp), s_gu,
                            xs4);
        mega_prefetch<FMT>(D.w_down, D.w_down.rows, false, A.prefetch);
        grid_sync(A.bar, &target, A.spin_ns, A.bar_ra, A.prof, &ph, &rel);
        mega_gemv<FMT, NBS>(D.w_down, gv(A.mlp, NULL, A.eps, PRO_PLAIN, MM_ADD, H, A.x), s_dn, xs4);
        if (l + 1 < A.n_layers) {
            const dlayer &N = A.layers[l + 1].D;
            const dmat &Wn = N.full_attn ? N.w_qkv : N.w_in;
            mega_prefetch<FMT>(Wn, Wn.rows, false, A.prefetch);
            grid_sync(A.bar, &target, A.spin_ns, A.bar_ra, A.prof, &ph, &rel);
        }
    }
    if (A.prof) { /* the last phase: its work, no barrier after it */
        __syncthreads();
        if (threadIdx.x == 0) {
            long long now = clock64();
            prof_mark(A.prof, ph, now, rel, now);
            if (blockIdx.x == 0) {
                atomicAdd(A.prof, 1ull);
                atomicAdd(A.prof + 1, (unsigned long long)(now - t0));
            }
        }
    }
}

/* ------------------------------------------------------------------ host */

bool cu_mega_prof_on(void) {
    const char *v = getenv("Q35_CUDA_MEGA_PROF");
    return v && !strcmp(v, "1");
}

size_t cu_mega_bar_bytes(void) {
    return 16 + (cu_mega_prof_on() ? PROF_WORDS * sizeof(unsigned long long) : 0);
}

/* Names of a layer's phases, in the kernel's order (barrier to barrier). */
static const char *const prof_names[2][5] = {
    {"gdn in-proj", "gdn step", "gdn out-proj", "gate|up", "down"},
    {"attn qkv-proj", "attention", "attn o-proj", "gate|up", "down"}};

void cu_mega_prof_report(const cuda_model *cm, int blocks, const unsigned *bar) {
    size_t n_words = PROF_WORDS;
    unsigned long long *h = (unsigned long long *)malloc(n_words * sizeof *h);
    if (!h) return;
    if (!bar || blocks <= 0 ||
        cudaMemcpy(h, bar + 4, n_words * sizeof *h, cudaMemcpyDeviceToHost) != cudaSuccess ||
        h[0] == 0) {
        cudaGetLastError();
        free(h);
        return;
    }
    int nb = blocks < PROF_BLOCKS ? blocks : PROF_BLOCKS;
    double n = (double)h[0];
    /* per phase kind (DeltaNet / attention layer x 5 phases), summed over layers */
    double work[2][5] = {}, most[2][5] = {}, wait[2][5] = {}, least[2][5] = {};
    int cnt[2][5] = {};
    const q35_config *c = &cm->cfg;
    for (int l = 0, ph = 0; l < c->n_layers; l++)
        for (int k = 0; k < 5 && ph < PROF_PHASES; k++, ph++) {
            const unsigned long long *p = h + 8 + 2 * (size_t)ph * PROF_BLOCKS;
            double sw = 0, mw = 0, sq = 0, mq = 1e300;
            for (int b = 0; b < nb; b++) {
                double w = (double)p[2 * b] / n, q = (double)p[2 * b + 1] / n;
                sw += w;
                sq += q;
                mw = w > mw ? w : mw;
                mq = q < mq ? q : mq;
            }
            int f = c->layer_full[l] ? 1 : 0;
            work[f][k] += sw / nb;
            most[f][k] += mw;
            wait[f][k] += sq / nb;
            least[f][k] += mq;
            cnt[f][k]++;
        }
    int clk = 0, dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev); /* kHz */
    double us = clk > 0 ? 1e3 / clk : 1.0 / 1.98e3;          /* microseconds a cycle */
    fprintf(stderr,
            "mega prof: %llu launches, %d blocks, block 0 %.1f us a launch (SM clock %d MHz)\n"
            "mega prof: phase          layers work-mean work-max wait-mean wait-min"
            " (us a layer, a launch; over blocks)\n",
            h[0], blocks, (double)h[1] / n * us, clk / 1000);
    double tw = 0, tm = 0, tq = 0, tl = 0;
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < 5; k++) {
            if (!cnt[f][k]) continue;
            double m = cnt[f][k];
            fprintf(stderr, "mega prof: %-14s %6d %9.2f %8.2f %9.2f %8.2f\n", prof_names[f][k],
                    cnt[f][k], work[f][k] / m * us, most[f][k] / m * us, wait[f][k] / m * us,
                    least[f][k] / m * us);
            tw += work[f][k] * us;
            tm += most[f][k] * us;
            tq += wait[f][k] * us;
            tl += least[f][k] * us;
        }
    fprintf(stderr,
            "mega prof: all phases: work mean %.1f max %.1f, wait mean %.1f min %.1f us a launch\n",
            tw, tm, tq, tl);
    free(h);
}

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

/* Streams a batched launch takes in shared memory at a time. */
#define MEGA_NBS 4

template <int FMT, int NBS> static int resident(size_t smem) {
    int per = 0;
    if (cudaFuncSetAttribute(mega_kernel<FMT, NBS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)smem) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per, mega_kernel<FMT, NBS>, MT, smem) !=
            cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return per;
}

/* One block per multiprocessor where both forms fit one (0: they don't). */
template <int FMT> static int resident_blocks(size_t smem1) {
    int dev = 0, sms = 0;
    cudaGetDevice(&dev);
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    bool ok = resident<FMT, 1>(smem1) >= 1 && resident<FMT, MEGA_NBS>(MEGA_NBS * smem1) >= 1;
    return ok ? sms : 0;
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
static cudaError_t go(const mega_args &a, int blocks, size_t smem1, cudaStream_t st) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(MT);
    cfg.dynamicSmemBytes = a.B > 1 ? MEGA_NBS * smem1 : smem1;
    cfg.stream = st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeCooperative;
    at[0].val.cooperative = 1;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    if (a.B > 1) return cudaLaunchKernelEx(&cfg, mega_kernel<FMT, MEGA_NBS>, a);
    return cudaLaunchKernelEx(&cfg, mega_kernel<FMT, 1>, a);
}

cudaError_t cu_mega_layers(const cuda_model *cm, int blocks, const cu_mega_layer *layers,
                           const cu_batch_stream *tab, int B, float *x, float *proj, int ldp,
                           float *o, int ldo, float *mlp, const int *pos, size_t conv_n,
                           size_t ssm_n, unsigned *bar, cudaStream_t st) {
    const q35_config *c = &cm->cfg;
    mega_args a = {};
    a.layers = layers;
    a.n_layers = c->n_layers;
    a.x = x;
    a.proj = proj;
    a.o = o;
    a.mlp = mlp;
    a.pos = pos;
    a.tab = B > 1 ? tab : NULL;
    a.B = B > 1 ? B : 1;
    a.ldp = ldp;
    a.ldo = ldo;
    a.conv_n = conv_n;
    a.ssm_n = ssm_n;
    a.kvw = (size_t)c->n_kv_heads * c->head_dim;
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
    const char *ks = getenv("Q35_CUDA_MEGA_KS");
    a.ks = ks && !strcmp(ks, "1");
    const char *sp = getenv("Q35_CUDA_MEGA_SPIN");
    a.spin_ns = sp ? atoi(sp) : 0;
    if (a.spin_ns < 0 || a.spin_ns > 10000) a.spin_ns = 0;
    const char *br = getenv("Q35_CUDA_MEGA_BAR");
    a.bar_ra = br && !strcmp(br, "ra");
    if (cu_mega_prof_on()) a.prof = (unsigned long long *)(bar + 4);
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
