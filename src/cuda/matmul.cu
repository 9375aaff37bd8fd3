/* matmul.cu — y = W x for every device form of W (cuda_internal.cuh).
 *
 * Decode (one token): a GEMV, one warp per output row, each lane reading 16
 * aligned bytes of the row at a time, the input (RMS-normed in the same
 * kernel when asked) in shared memory, the residual add or the SwiGLU gate
 * done in the epilogue, so a decode step is a few launches per layer.
 *
 * Prefill (T > 1): a 64x64-tile GEMM on the tensor cores (wmma, TF32
 * m16n16k8). TF32 keeps 10 mantissa bits, so each float32 operand is split
 * into hi + lo TF32 parts and the product summed as hi*hi + lo*hi + hi*lo
 * (the "3xTF32" scheme): float32-level precision at a third of TF32's
 * rate. bf16 and f16 weights are exact in TF32, so their lo part is zero
 * and skipped (2 products). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_internal.cuh"
#include "cuda/prefill.cuh"
#include "cuda/gemv.cuh"

using namespace nvcuda;

bool cu_matmul_supports(const dmat *W) {
    return W->cols % 32 == 0 && W->cols > 0;
}

__device__ __forceinline__ float bf16f(uint32_t bits16) {
    return __uint_as_float(bits16 << 16);
}

__device__ __forceinline__ float f16f(uint16_t h) {
    return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ float silu(float g) {
    return g / (1.0f + expf(-g));
}

bool cu_pdl_on(void) {
    const char *v = getenv("Q35_CUDA_PDL");
    return !(v && !strcmp(v, "0"));
}

/* ---------------------------------------------------------------- GEMV
 *
 * A lane reads 16 bytes of a row at a time (a "chunk": 4 f32, 8 bf16/f16,
 * 16 Q8 or 32 Q4 weights; chunk c of every row belongs to lane c % 32), for
 * NR rows at once, so NR x 16-byte loads are in flight per lane and the
 * input is read once per NR rows. The input sits in shared memory in a
 * chunk-major order (float4 f of chunk c at xs4[f * NC + c]) so that the
 * lanes of a warp read consecutive float4s: no bank conflicts. Quantized
 * weights become floats exactly: the byte goes into the mantissa of 2^23
 * (one byte permute) and 2^23 + offset is subtracted. */
#define GV_WARPS 4

template <int FMT, int NR>
__global__ void __launch_bounds__(GV_WARPS * 32) gemv_kernel(dmat W, gv_args a) {
    extern __shared__ float4 xs4[];
    __shared__ float red[32];
    __shared__ float hinv[128];
    __shared__ float bestv[GV_WARPS];
    __shared__ int besti[GV_WARPS];
    constexpr int S = chunk_of<FMT>::n;
    const int cols = W.cols, NC = cols / S;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const bool glu = a.op == MM_GLU;
    const int per = glu ? NR / 2 : NR; /* outputs per row group */
    const int groups = (a.nout + per - 1) / per;
    const int gstride = gridDim.x * GV_WARPS;
    int g0 = blockIdx.x * GV_WARPS + warp;
    /* before the wait: the first row group's weights into L2 */
    if (g0 < groups) {
#pragma unroll
        for (int i = 0; i < NR; i++) {
            int o = g0 * per + (glu ? i % per : i), r = glu && i >= per ? o + a.nout : o;
            r = r < W.rows ? r : W.rows - 1;
            const uint4 *p = row_ptr<FMT>(W, r);
            for (int c = lane; c < NC; c += 32)
                asm volatile("prefetch.global.L2 [%0];" ::"l"(p + c));
        }
    }
    pdl_wait();
    pdl_launch();
    /* the input, made and stored chunk-major */
    float *xsf = (float *)xs4;
    float inv = 1.0f;
    if (a.pro == PRO_RMS) {
        float ss = 0.0f;
        for (int i = tid; i < cols; i += blockDim.x) {
            float v = a.x[i];
            ss += v * v;
        }
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        float tot = 0.0f;
        for (int w = 0; w < GV_WARPS; w++)
            tot += red[w];
        inv = 1.0f / sqrtf(tot / (float)cols + a.eps);
    } else if (a.pro == PRO_GATED) {
        int nh = cols / a.dv;
        for (int h = warp; h < nh; h += GV_WARPS) {
            float ss = 0.0f;
            for (int i = lane; i < a.dv; i += 32) {
                float v = a.x[h * a.dv + i];
                ss += v * v;
            }
            ss = warp_sum(ss);
            if (lane == 0) hinv[h] = 1.0f / sqrtf(ss / (float)a.dv + a.eps);
        }
        __syncthreads();
    }
    for (int i = tid; i < cols; i += blockDim.x) {
        float v = a.x[i];
        if (a.pro == PRO_RMS) v = v * inv * a.norm[i];
        if (a.pro == PRO_GATED) {
            float z = a.z[i];
            v = v * hinv[i / a.dv] * a.norm[i % a.dv] * (z / (1.0f + expf(-z)));
        }
        int c = i / S, f = (i % S) >> 2;
        xsf[(f * NC + c) * 4 + (i & 3)] = v;
    }
    __syncthreads();
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int g = g0; g < groups; g += gstride) {
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
            float d[NR];
            float2 sz[NR];
#pragma unroll
            for (int i = 0; i < NR; i++) {
                q[i] = __ldg(row_ptr<FMT>(W, rows[i]) + c);
                if (FMT == DF_Q8 || FMT == DF_Q4)
                    d[i] = __half2float(__ushort_as_half(__ldg(
                        W.scale + (size_t)rows[i] * (cols / 32) + (FMT == DF_Q8 ? c / 2 : c))));
                if (FMT == DF_A4) sz[i] = __ldg(W.affine + (size_t)rows[i] * (cols / 32) + c);
            }
            float xsum = FMT == DF_A4 ? chunk_xsum(xs4, NC, c) : 0.0f;
#pragma unroll
            for (int i = 0; i < NR; i++) {
                float s = chunk_dot<FMT>(q[i], xs4, NC, c);
                if (FMT == DF_A4)
                    acc[i] += sz[i].x * s + sz[i].y * xsum;
                else
                    acc[i] += (FMT == DF_Q8 || FMT == DF_Q4) ? d[i] * s : s;
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
                if (a.y) {
                    if (a.op == MM_ADD)
                        a.y[o] += v;
                    else
                        a.y[o] = v;
                }
                if (a.part && o < a.n_best && (v > bv || (v == bv && o < bi))) {
                    bv = v;
                    bi = o;
                }
            }
        }
    }
    if (a.part) { /* the block's best row */
        if (lane == 0) {
            bestv[warp] = bv;
            besti[warp] = bi;
        }
        __syncthreads();
        if (tid == 0) {
            for (int w = 1; w < GV_WARPS; w++)
                if (bestv[w] > bv || (bestv[w] == bv && besti[w] < bi)) {
                    bv = bestv[w];
                    bi = besti[w];
                }
            a.part[blockIdx.x] = bv;
            a.part[CU_PARTS + blockIdx.x] = __int_as_float(bi);
        }
    }
}

static int num_sms(void) {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1)
        n = 132;
    return n;
}

template <int FMT, int NR> static void gemv_go(const dmat *W, const gv_args &a, int blocks,
                                               cudaStream_t st) {
    size_t smem = (size_t)W->cols * sizeof(float);
    if (smem > 48 * 1024)
        cudaFuncSetAttribute(gemv_kernel<FMT, NR>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)smem);
    cu_launch(gemv_kernel<FMT, NR>, dim3(blocks), dim3(GV_WARPS * 32), smem, st, *W, a);
}

/* Rows per warp: 4 where that still gives every SM a few blocks, else 2
 * (MM_GLU needs 2 or 4: a gate row and its up row). The argmax keeps the
 * grid within CU_PARTS blocks. */
template <int FMT> static int gemv(const dmat *W, gv_args a, cudaStream_t st) {
    static const int sms = num_sms();
    bool glu = a.op == MM_GLU;
    int nr = 4;
    if ((glu ? 2 * a.nout : a.nout) / (GV_WARPS * 4) < 3 * sms) nr = 2;
    int per = glu ? nr / 2 : nr;
    int groups = (a.nout + per - 1) / per;
    int blocks = (groups + GV_WARPS - 1) / GV_WARPS;
    int cap = a.part ? CU_PARTS : 16 * sms;
    if (blocks > cap) blocks = cap;
    if (nr == 4)
        gemv_go<FMT, 4>(W, a, blocks, st);
    else
        gemv_go<FMT, 2>(W, a, blocks, st);
    return blocks;
}

static int gemv_any(const dmat *W, const gv_args &a, cudaStream_t st) {
    switch (W->fmt) {
    case DF_F32: return gemv<DF_F32>(W, a, st);
    case DF_BF16: return gemv<DF_BF16>(W, a, st);
    case DF_F16: return gemv<DF_F16>(W, a, st);
    case DF_Q8: return gemv<DF_Q8>(W, a, st);
    case DF_A4: return gemv<DF_A4>(W, a, st);
    default: return gemv<DF_Q4>(W, a, st);
    }
}

void cu_gemv_gated(const dmat *W, const float *o, const float *z, const float *gnorm, int dv,
                   float eps, float *y, cudaStream_t st) {
    gv_args a = {};
    a.x = o;
    a.norm = gnorm;
    a.z = z;
    a.eps = eps;
    a.pro = PRO_GATED;
    a.dv = dv;
    a.op = MM_ADD;
    a.nout = W->rows;
    a.y = y;
    gemv_any(W, a, st);
}

void cu_gemv_argmax(const dmat *W, const float *x, const float *norm, float eps, float *logits,
                    int n_best, float *part, int32_t *out, cudaStream_t st) {
    gv_args a = {};
    a.x = x;
    a.norm = norm;
    a.eps = eps;
    a.pro = norm ? PRO_RMS : PRO_PLAIN;
    a.op = MM_STORE;
    a.nout = W->rows;
    a.y = logits;
    a.part = part;
    a.n_best = n_best;
    int blocks = gemv_any(W, a, st);
    cu_argmax_final(part, blocks, out, st);
}

/* ---------------------------------------------------------------- GEMM */

#define BM 64
#define BN 64
#define BK 32
#define LDS (BK + 4)

template <int FMT> __device__ __forceinline__ float w_at(const dmat &W, int r, int k) {
    int cols = W.cols;
    if (FMT == DF_F32) return __ldg((const float *)W.w + (size_t)r * cols + k);
    if (FMT == DF_BF16) return bf16f(__ldg((const uint16_t *)W.w + (size_t)r * cols + k));
    if (FMT == DF_F16) return f16f(__ldg((const uint16_t *)W.w + (size_t)r * cols + k));
    int j = k % 32;
    if (FMT == DF_A4) {
        uint8_t b = __ldg((const uint8_t *)W.w + (size_t)r * (cols / 2) + (k / 32) * 16 + (j % 16));
        float2 sz = __ldg(W.affine + (size_t)r * (cols / 32) + k / 32);
        return sz.x * (float)(j < 16 ? (b & 15) : (b >> 4)) + sz.y;
    }
    float d = f16f(__ldg(W.scale + (size_t)r * (cols / 32) + k / 32));
    if (FMT == DF_Q8) return d * (float)__ldg((const int8_t *)W.w + (size_t)r * cols + k);
    uint8_t b = __ldg((const uint8_t *)W.w + (size_t)r * (cols / 2) + (k / 32) * 16 + (j % 16));
    return d * (float)((j < 16 ? (b & 15) : (b >> 4)) - 8);
}

typedef wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa_t;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb_t;
typedef wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc_t;

template <typename F> __device__ __forceinline__ void split_tf32(F &hi, F &lo) {
#pragma unroll
    for (int i = 0; i < hi.num_elements; i++) {
        float v = hi.x[i];
        float h = wmma::__float_to_tf32(v);
        hi.x[i] = h;
        lo.x[i] = wmma::__float_to_tf32(v - h);
    }
}

/* Y[t, n] (op)= sum_k X[t, k] W[n, k]; 4 warps, each a 32x32 corner. */
template <int FMT>
__global__ void __launch_bounds__(128) gemm_kernel(dmat W, const float *__restrict__ X, int ldx,
                                                   int T, float *__restrict__ Y, int ldy, int op) {
    pdl_wait();
    pdl_launch();
    __shared__ __align__(32) float As[BM * LDS];
    __shared__ __align__(32) float Bs[BN * LDS];
    __shared__ __align__(32) float Cs[BM * (BN + 4)];
    const bool w_exact = FMT == DF_BF16 || FMT == DF_F16;
    int tid = threadIdx.x, warp = tid >> 5;
    int n0 = blockIdx.x * BN, t0 = blockIdx.y * BM;
    int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    fc_t acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::fill_fragment(acc[i][j], 0.0f);
    for (int k0 = 0; k0 < W.cols; k0 += BK) {
        for (int idx = tid; idx < BM * BK; idx += 128) {
            int r = idx / BK, k = idx % BK;
            int t = t0 + r, n = n0 + r;
            As[r * LDS + k] = t < T ? X[(size_t)t * ldx + k0 + k] : 0.0f;
            Bs[r * LDS + k] = n < W.rows ? w_at<FMT>(W, n, k0 + k) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            fa_t ah[2], al[2];
            fb_t bh[2], bl[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                wmma::load_matrix_sync(ah[i], As + (wm + 16 * i) * LDS + kk, LDS);
                split_tf32(ah[i], al[i]);
                wmma::load_matrix_sync(bh[i], Bs + (wn + 16 * i) * LDS + kk, LDS);
                split_tf32(bh[i], bl[i]);
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    wmma::mma_sync(acc[i][j], al[i], bh[j], acc[i][j]);
                    if (!w_exact) wmma::mma_sync(acc[i][j], ah[i], bl[j], acc[i][j]);
                    wmma::mma_sync(acc[i][j], ah[i], bh[j], acc[i][j]);
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(Cs + (wm + 16 * i) * (BN + 4) + wn + 16 * j, acc[i][j], BN + 4,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < BM * BN; idx += 128) {
        int r = idx / BN, cidx = idx % BN;
        int t = t0 + r, n = n0 + cidx;
        if (t >= T || n >= W.rows) continue;
        float v = Cs[r * (BN + 4) + cidx];
        float *out = Y + (size_t)t * ldy + n;
        if (op == MM_ADD)
            *out += v;
        else
            *out = v;
    }
}

/* The same product with 16-byte tile loads and the next tile's loads in
 * flight while the tensor cores work on this one (registers, then shared
 * memory). Thread tid loads row tid/2 of both tiles, 16 values from column
 * (tid%2)*16: BK = 32 is one quantized block, so a Q8/Q4 tile row has one
 * scale. Needs ldx % 4 == 0 (every activation buffer here). */
template <int FMT> __device__ __forceinline__ void load_w16(const dmat &W, int n, int k, float *v) {
    if (n >= W.rows) {
#pragma unroll
        for (int i = 0; i < 16; i++)
            v[i] = 0.0f;
        return;
    }
    int cols = W.cols;
    if (FMT == DF_F32) {
        const float4 *p = (const float4 *)((const float *)W.w + (size_t)n * cols + k);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float4 f = __ldg(p + i);
            v[4 * i] = f.x;
            v[4 * i + 1] = f.y;
            v[4 * i + 2] = f.z;
            v[4 * i + 3] = f.w;
        }
    } else if (FMT == DF_BF16 || FMT == DF_F16) {
        const uint4 *p = (const uint4 *)((const uint16_t *)W.w + (size_t)n * cols + k);
#pragma unroll
        for (int i = 0; i < 2; i++) {
            uint4 q = __ldg(p + i);
            uint32_t u[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
            for (int j = 0; j < 4; j++) {
                if (FMT == DF_BF16) {
                    v[8 * i + 2 * j] = bf16f(u[j] & 0xffffu);
                    v[8 * i + 2 * j + 1] = __uint_as_float(u[j] & 0xffff0000u);
                } else {
                    v[8 * i + 2 * j] = f16f((uint16_t)(u[j] & 0xffffu));
                    v[8 * i + 2 * j + 1] = f16f((uint16_t)(u[j] >> 16));
                }
            }
        }
    } else if (FMT == DF_A4) {
        uint4 q =
            __ldg((const uint4 *)((const uint8_t *)W.w + (size_t)n * (cols / 2) + (k / 32) * 16));
        float2 sz = __ldg(W.affine + (size_t)n * (cols / 32) + k / 32);
        uint32_t u[4] = {q.x, q.y, q.z, q.w};
        int hi = (k % 32) ? 4 : 0;
#pragma unroll
        for (int j = 0; j < 16; j++)
            v[j] = sz.x * (float)((u[j / 4] >> (8 * (j % 4) + hi)) & 15) + sz.y;
    } else {
        float d = f16f(__ldg(W.scale + (size_t)n * (cols / 32) + k / 32));
        if (FMT == DF_Q8) {
            uint4 q = __ldg((const uint4 *)((const int8_t *)W.w + (size_t)n * cols + k));
            uint32_t u[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
            for (int j = 0; j < 16; j++)
                v[j] = d * (float)(int8_t)(u[j / 4] >> (8 * (j % 4)));
        } else {
            uint4 q = __ldg(
                (const uint4 *)((const uint8_t *)W.w + (size_t)n * (cols / 2) + (k / 32) * 16));
            uint32_t u[4] = {q.x, q.y, q.z, q.w};
            int hi = (k % 32) ? 4 : 0;
#pragma unroll
            for (int j = 0; j < 16; j++)
                v[j] = d * (float)((int)((u[j / 4] >> (8 * (j % 4) + hi)) & 15) - 8);
        }
    }
}

template <int FMT>
__global__ void __launch_bounds__(128)
    gemm_fast_kernel(dmat W, const float *__restrict__ X, int ldx, int T, float *__restrict__ Y,
                     int ldy, int op, int kchunk, float *__restrict__ ws) {
    pdl_wait();
    pdl_launch();
    __shared__ __align__(32) float As[BM * LDS];
    __shared__ __align__(32) float Bs[BN * LDS];
    __shared__ __align__(32) float Cs[BM * (BN + 4)];
    const bool w_exact = FMT == DF_BF16 || FMT == DF_F16;
    int tid = threadIdx.x, warp = tid >> 5;
    int n0 = blockIdx.x * BN, t0 = blockIdx.y * BM;
    int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    int lr = tid >> 1, lk = (tid & 1) * 16;
    fc_t acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::fill_fragment(acc[i][j], 0.0f);
    float ra[16], rw[16];
    auto load = [&](int k0) {
        if (t0 + lr < T) {
            const float4 *p = (const float4 *)(X + (size_t)(t0 + lr) * ldx + k0 + lk);
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float4 f = __ldg(p + i);
                ra[4 * i] = f.x;
                ra[4 * i + 1] = f.y;
                ra[4 * i + 2] = f.z;
                ra[4 * i + 3] = f.w;
            }
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++)
                ra[i] = 0.0f;
        }
        load_w16<FMT>(W, n0 + lr, k0 + lk, rw);
    };
    /* split K (blockIdx.z): this block's share of the columns, its sum into
     * ws[z] (reduced in a fixed order by splitk_reduce) */
    int kb = blockIdx.z * kchunk, ke = kb + kchunk < W.cols ? kb + kchunk : W.cols;
    if (ws) {
        Y = ws + (size_t)blockIdx.z * T * W.rows;
        ldy = W.rows;
        op = MM_STORE;
    }
    load(kb);
    for (int k0 = kb; k0 < ke; k0 += BK) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            *(float4 *)(As + lr * LDS + lk + 4 * i) =
                make_float4(ra[4 * i], ra[4 * i + 1], ra[4 * i + 2], ra[4 * i + 3]);
            *(float4 *)(Bs + lr * LDS + lk + 4 * i) =
                make_float4(rw[4 * i], rw[4 * i + 1], rw[4 * i + 2], rw[4 * i + 3]);
        }
        __syncthreads();
        if (k0 + BK < ke) load(k0 + BK); /* in flight during the products */
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            fa_t ah[2], al[2];
            fb_t bh[2], bl[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                wmma::load_matrix_sync(ah[i], As + (wm + 16 * i) * LDS + kk, LDS);
                split_tf32(ah[i], al[i]);
                wmma::load_matrix_sync(bh[i], Bs + (wn + 16 * i) * LDS + kk, LDS);
                split_tf32(bh[i], bl[i]);
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    wmma::mma_sync(acc[i][j], al[i], bh[j], acc[i][j]);
                    if (!w_exact) wmma::mma_sync(acc[i][j], ah[i], bl[j], acc[i][j]);
                    wmma::mma_sync(acc[i][j], ah[i], bh[j], acc[i][j]);
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(Cs + (wm + 16 * i) * (BN + 4) + wn + 16 * j, acc[i][j], BN + 4,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < BM * BN; idx += 128) {
        int r = idx / BN, cidx = idx % BN;
        int t = t0 + r, n = n0 + cidx;
        if (t >= T || n >= W.rows) continue;
        float v = Cs[r * (BN + 4) + cidx];
        float *out = Y + (size_t)t * ldy + n;
        if (op == MM_ADD)
            *out += v;
        else
            *out = v;
    }
}

/* Q35_CUDA_GEMM=simple: the plain-load kernel above (for comparisons). */
static bool gemm_simple(void) {
    const char *v = getenv("Q35_CUDA_GEMM");
    return v && !strcmp(v, "simple");
}

/* y[t, n] (op)= sum over z of ws[z][t][n], z in order (deterministic). */
__global__ void splitk_reduce(const float *__restrict__ ws, int nz, int T, int rows,
                              float *__restrict__ y, int ldy, int op) {
    pdl_wait();
    pdl_launch();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, n = (size_t)T * rows;
    if (i >= n) return;
    float v = 0.0f;
    for (int z = 0; z < nz; z++)
        v += ws[(size_t)z * n + i];
    float *out = y + (i / rows) * ldy + i % rows;
    if (op == MM_ADD)
        *out += v;
    else
        *out = v;
}

template <int FMT>
static void gemm(const dmat *W, const float *x, int ldx, int T, float *y, int ldy, int op,
                 float *ws, size_t ws_n, cudaStream_t st) {
    if (cu_gemm_bf16(W, x, ldx, T, y, ldy, op, ws, ws_n, st)) return; /* gemm.cu */
    static const int sms = num_sms();
    dim3 grid((W->rows + BN - 1) / BN, (T + BM - 1) / BM);
    if (ldx % 4 || gemm_simple()) {
        cu_launch(gemm_kernel<FMT>, grid, dim3(128), 0, st, *W, x, ldx, T, y, ldy, op);
        return;
    }
    /* Too few tiles to fill the GPU (a short prompt, a narrow matrix): split
     * K so that about two blocks run per SM, at least 4 k-steps each. The
     * split depends on the shapes only through the tile counts, so every T
     * of one tile row gets the same sums. */
    int blocks = grid.x * grid.y, ksteps = W->cols / BK, split = 1;
    if (ws && blocks < sms) {
        split = (2 * sms + blocks - 1) / blocks;
        if (split > ksteps / 4) split = ksteps / 4;
        if (split > 16) split = 16;
        while (split > 1 && (size_t)split * T * W->rows > ws_n)
            split--;
        if (split < 1) split = 1;
    }
    int kchunk = (ksteps + split - 1) / split * BK;
    split = (W->cols + kchunk - 1) / kchunk;
    if (split <= 1) {
        cu_launch(gemm_fast_kernel<FMT>, grid, dim3(128), 0, st, *W, x, ldx, T, y, ldy, op,
                  W->cols, (float *)NULL);
        return;
    }
    grid.z = split;
    cu_launch(gemm_fast_kernel<FMT>, grid, dim3(128), 0, st, *W, x, ldx, T, y, ldy, op, kchunk,
              ws);
    size_t n = (size_t)T * W->rows;
    cu_launch(splitk_reduce, dim3((unsigned)((n + 255) / 256)), dim3(256), 0, st,
              (const float *)ws, split, T, W->rows, y, ldy, op);
}

__global__ void rmsnorm_kernel(const float *__restrict__ in, const float *__restrict__ w, float eps,
                               int n, int ldin, float *__restrict__ out, int ldout) {
    pdl_wait();
    pdl_launch();
    __shared__ float red[32];
    const float *x = in + (size_t)blockIdx.x * ldin;
    float *y = out + (size_t)blockIdx.x * ldout;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        ss += x[i] * x[i];
    ss = warp_sum(ss);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) red[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        float v = lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    float inv = 1.0f / sqrtf(red[0] / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        y[i] = x[i] * inv * w[i];
}

void cu_rmsnorm(const float *in, const float *w, float eps, int T, int n, float *out,
                cudaStream_t st) {
    cu_launch(rmsnorm_kernel, dim3(T), dim3(256), 0, st, in, w, eps, n, n, out, n);
}

__global__ void glu_kernel(const float *__restrict__ gu, int n, int T, float *__restrict__ y,
                           int ldy) {
    pdl_wait();
    pdl_launch();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * n) return;
    size_t t = i / n, j = i % n;
    const float *row = gu + t * 2 * n;
    y[t * ldy + j] = silu(row[j]) * row[n + j];
}

template <int FMT>
static void launch(const dmat *W, const float *x, int T, int ldx, float *y, int ldy, int op,
                   const float *norm, float eps, float *tmp, float *tmp2, float *ws, size_t ws_n,
                   cudaStream_t st) {
    if (T == 1) {
        gv_args a = {};
        a.x = x;
        a.norm = norm;
        a.eps = eps;
        a.pro = norm ? PRO_RMS : PRO_PLAIN;
        a.op = op;
        a.nout = op == MM_GLU ? W->rows / 2 : W->rows;
        a.y = y;
        gemv<FMT>(W, a, st);
        return;
    }
    if (norm) {
        cu_launch(rmsnorm_kernel, dim3(T), dim3(256), 0, st, x, norm, eps, W->cols, ldx, tmp, W->cols);
        x = tmp;
        ldx = W->cols;
    }
    if (op == MM_GLU) {
        int n = W->rows / 2;
        gemm<FMT>(W, x, ldx, T, tmp2, W->rows, MM_STORE, ws, ws_n, st);
        size_t total = (size_t)T * n;
        cu_launch(glu_kernel, dim3((unsigned)((total + 255) / 256)), dim3(256), 0, st, (const float *)tmp2, n, T, y, ldy);
    } else {
        gemm<FMT>(W, x, ldx, T, y, ldy, op, ws, ws_n, st);
    }
}

void cu_matmul(const dmat *W, const float *x, int T, int ldx, float *y, int ldy, int op,
               const float *norm, float eps, float *tmp, float *tmp2, float *ws, size_t ws_n,
               cudaStream_t st) {
    switch (W->fmt) {
    case DF_F32: launch<DF_F32>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, ws, ws_n, st); break;
    case DF_BF16: launch<DF_BF16>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, ws, ws_n, st); break;
    case DF_F16: launch<DF_F16>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, ws, ws_n, st); break;
    case DF_Q8: launch<DF_Q8>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, ws, ws_n, st); break;
    case DF_A4: launch<DF_A4>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, ws, ws_n, st); break;
    default: launch<DF_Q4>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, ws, ws_n, st); break;
    }
}

/* ----------------------------------------------------------- embedding */

template <int FMT>
__global__ void embed_kernel(dmat E, const int32_t *__restrict__ ids, int T,
                             float *__restrict__ x) {
    pdl_wait();
    pdl_launch();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * E.cols) return;
    int t = (int)(i / E.cols), k = (int)(i % E.cols);
    x[i] = w_at<FMT>(E, ids[t], k);
}

void cu_embed(const dmat *E, const int32_t *ids, int T, float *x, cudaStream_t st) {
    size_t n = (size_t)T * E->cols;
    unsigned blocks = (unsigned)((n + 255) / 256);
    switch (E->fmt) {
    case DF_F32: cu_launch(embed_kernel<DF_F32>, dim3(blocks), dim3(256), 0, st, *E, ids, T, x); break;
    case DF_BF16: cu_launch(embed_kernel<DF_BF16>, dim3(blocks), dim3(256), 0, st, *E, ids, T, x); break;
    case DF_F16: cu_launch(embed_kernel<DF_F16>, dim3(blocks), dim3(256), 0, st, *E, ids, T, x); break;
    case DF_Q8: cu_launch(embed_kernel<DF_Q8>, dim3(blocks), dim3(256), 0, st, *E, ids, T, x); break;
    case DF_A4: cu_launch(embed_kernel<DF_A4>, dim3(blocks), dim3(256), 0, st, *E, ids, T, x); break;
    default: cu_launch(embed_kernel<DF_Q4>, dim3(blocks), dim3(256), 0, st, *E, ids, T, x); break;
    }
}
