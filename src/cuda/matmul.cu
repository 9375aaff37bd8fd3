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

/* dot of row r of W with xs (shared), this lane's share. */
template <int FMT>
__device__ __forceinline__ float row_dot(const dmat &W, int r, const float *xs, int lane) {
    float acc = 0.0f;
    int cols = W.cols;
    if (FMT == DF_F32) {
        const float4 *p = (const float4 *)((const float *)W.w + (size_t)r * cols);
        int n = cols / 4;
#pragma unroll 4
        for (int i = lane; i < n; i += 32) {
            float4 v = __ldg(p + i);
            const float *x = xs + i * 4;
            acc += v.x * x[0] + v.y * x[1] + v.z * x[2] + v.w * x[3];
        }
    } else if (FMT == DF_BF16 || FMT == DF_F16) {
        const uint4 *p = (const uint4 *)((const uint16_t *)W.w + (size_t)r * cols);
        int n = cols / 8;
#pragma unroll 4
        for (int i = lane; i < n; i += 32) {
            uint4 v = __ldg(p + i);
            const float *x = xs + i * 8;
            uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int j = 0; j < 4; j++) {
                float a, b;
                if (FMT == DF_BF16) {
                    a = bf16f(u[j] & 0xffffu);
                    b = __uint_as_float(u[j] & 0xffff0000u);
                } else {
                    a = f16f((uint16_t)(u[j] & 0xffffu));
                    b = f16f((uint16_t)(u[j] >> 16));
                }
                acc += a * x[2 * j] + b * x[2 * j + 1];
            }
        }
    } else if (FMT == DF_Q8) {
        const uint4 *p = (const uint4 *)((const int8_t *)W.w + (size_t)r * cols);
        const uint16_t *sc = W.scale + (size_t)r * (cols / 32);
        int n = cols / 16;
#pragma unroll 4
        for (int i = lane; i < n; i += 32) {
            uint4 v = __ldg(p + i);
            float d = f16f(__ldg(sc + i / 2));
            const float *x = xs + i * 16;
            uint32_t u[4] = {v.x, v.y, v.z, v.w};
            float s = 0.0f;
#pragma unroll
            for (int j = 0; j < 4; j++)
#pragma unroll
                for (int b = 0; b < 4; b++)
                    s += (float)(int8_t)(u[j] >> (8 * b)) * x[4 * j + b];
            acc += d * s;
        }
    } else { /* DF_Q4: 16 bytes = one block of 32 */
        const uint4 *p = (const uint4 *)((const uint8_t *)W.w + (size_t)r * (cols / 2));
        const uint16_t *sc = W.scale + (size_t)r * (cols / 32);
        int n = cols / 32;
#pragma unroll 2
        for (int i = lane; i < n; i += 32) {
            uint4 v = __ldg(p + i);
            float d = f16f(__ldg(sc + i));
            const float *x = xs + i * 32;
            uint32_t u[4] = {v.x, v.y, v.z, v.w};
            float s = 0.0f;
#pragma unroll
            for (int j = 0; j < 4; j++)
#pragma unroll
                for (int b = 0; b < 4; b++) {
                    int q = (u[j] >> (8 * b)) & 0xff;
                    s += (float)((q & 15) - 8) * x[4 * j + b] +
                         (float)((q >> 4) - 8) * x[16 + 4 * j + b];
                }
            acc += d * s;
        }
    }
    return acc;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

#define GEMV_WARPS 8

/* x (normed when norm != NULL) into shared memory, then one row per warp.
 * nout: output rows (MM_GLU: W has 2*nout rows). */
template <int FMT, int OP>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    gemv_kernel(dmat W, const float *__restrict__ x, float *__restrict__ y, int nout,
                const float *__restrict__ norm, float eps) {
    extern __shared__ float xs[];
    __shared__ float red[GEMV_WARPS];
    int cols = W.cols, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    float inv = 1.0f;
    if (norm) {
        float ss = 0.0f;
        for (int i = tid; i < cols; i += blockDim.x) {
            float v = x[i];
            ss += v * v;
        }
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        if (warp == 0) {
            float v = lane < GEMV_WARPS ? red[lane] : 0.0f;
            v = warp_sum(v);
            if (lane == 0) red[0] = v;
        }
        __syncthreads();
        inv = 1.0f / sqrtf(red[0] / (float)cols + eps);
        for (int i = tid; i < cols; i += blockDim.x)
            xs[i] = x[i] * inv * norm[i];
    } else {
        for (int i = tid; i < cols; i += blockDim.x)
            xs[i] = x[i];
    }
    __syncthreads();
    for (int r = blockIdx.x * GEMV_WARPS + warp; r < nout; r += gridDim.x * GEMV_WARPS) {
        float a = warp_sum(row_dot<FMT>(W, r, xs, lane));
        if (OP == MM_GLU) {
            float u = warp_sum(row_dot<FMT>(W, r + nout, xs, lane));
            if (lane == 0) y[r] = silu(a) * u;
        } else if (lane == 0) {
            if (OP == MM_ADD)
                y[r] += a;
            else
                y[r] = a;
        }
    }
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
    float d = f16f(__ldg(W.scale + (size_t)r * (cols / 32) + k / 32));
    if (FMT == DF_Q8) return d * (float)__ldg((const int8_t *)W.w + (size_t)r * cols + k);
    int j = k % 32;
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
                     int ldy, int op) {
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
    load(0);
    for (int k0 = 0; k0 < W.cols; k0 += BK) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            *(float4 *)(As + lr * LDS + lk + 4 * i) =
                make_float4(ra[4 * i], ra[4 * i + 1], ra[4 * i + 2], ra[4 * i + 3]);
            *(float4 *)(Bs + lr * LDS + lk + 4 * i) =
                make_float4(rw[4 * i], rw[4 * i + 1], rw[4 * i + 2], rw[4 * i + 3]);
        }
        __syncthreads();
        if (k0 + BK < W.cols) load(k0 + BK); /* in flight during the products */
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

template <int FMT>
static void gemm(const dmat *W, const float *x, int ldx, int T, float *y, int ldy, int op,
                 cudaStream_t st) {
    dim3 grid((W->rows + BN - 1) / BN, (T + BM - 1) / BM);
    if (ldx % 4 == 0 && !gemm_simple())
        gemm_fast_kernel<FMT><<<grid, 128, 0, st>>>(*W, x, ldx, T, y, ldy, op);
    else
        gemm_kernel<FMT><<<grid, 128, 0, st>>>(*W, x, ldx, T, y, ldy, op);
}

__global__ void rmsnorm_kernel(const float *__restrict__ in, const float *__restrict__ w, float eps,
                               int n, int ldin, float *__restrict__ out, int ldout) {
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
    rmsnorm_kernel<<<T, 256, 0, st>>>(in, w, eps, n, n, out, n);
}

__global__ void glu_kernel(const float *__restrict__ gu, int n, int T, float *__restrict__ y,
                           int ldy) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * n) return;
    size_t t = i / n, j = i % n;
    const float *row = gu + t * 2 * n;
    y[t * ldy + j] = silu(row[j]) * row[n + j];
}

template <int FMT>
static void launch(const dmat *W, const float *x, int T, int ldx, float *y, int ldy, int op,
                   const float *norm, float eps, float *tmp, float *tmp2, cudaStream_t st) {
    if (T == 1) {
        int nout = op == MM_GLU ? W->rows / 2 : W->rows;
        /* enough blocks to fill the GPU; each warp takes rows a grid apart,
         * so a wide matrix (the output head) loads x a few thousand times,
         * not once per 8 rows */
        int blocks = (nout + GEMV_WARPS - 1) / GEMV_WARPS;
        dim3 grid(blocks < 2048 ? blocks : 2048);
        size_t smem = (size_t)W->cols * sizeof(float);
        if (op == MM_GLU)
            gemv_kernel<FMT, MM_GLU>
                <<<grid, GEMV_WARPS * 32, smem, st>>>(*W, x, y, nout, norm, eps);
        else if (op == MM_ADD)
            gemv_kernel<FMT, MM_ADD>
                <<<grid, GEMV_WARPS * 32, smem, st>>>(*W, x, y, nout, norm, eps);
        else
            gemv_kernel<FMT, MM_STORE>
                <<<grid, GEMV_WARPS * 32, smem, st>>>(*W, x, y, nout, norm, eps);
        return;
    }
    if (norm) {
        rmsnorm_kernel<<<T, 256, 0, st>>>(x, norm, eps, W->cols, ldx, tmp, W->cols);
        x = tmp;
        ldx = W->cols;
    }
    if (op == MM_GLU) {
        int n = W->rows / 2;
        gemm<FMT>(W, x, ldx, T, tmp2, W->rows, MM_STORE, st);
        size_t total = (size_t)T * n;
        glu_kernel<<<(unsigned)((total + 255) / 256), 256, 0, st>>>(tmp2, n, T, y, ldy);
    } else {
        gemm<FMT>(W, x, ldx, T, y, ldy, op, st);
    }
}

void cu_matmul(const dmat *W, const float *x, int T, int ldx, float *y, int ldy, int op,
               const float *norm, float eps, float *tmp, float *tmp2, cudaStream_t st) {
    switch (W->fmt) {
    case DF_F32: launch<DF_F32>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, st); break;
    case DF_BF16: launch<DF_BF16>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, st); break;
    case DF_F16: launch<DF_F16>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, st); break;
    case DF_Q8: launch<DF_Q8>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, st); break;
    default: launch<DF_Q4>(W, x, T, ldx, y, ldy, op, norm, eps, tmp, tmp2, st); break;
    }
}

/* ----------------------------------------------------------- embedding */

template <int FMT>
__global__ void embed_kernel(dmat E, const int32_t *__restrict__ ids, int T,
                             float *__restrict__ x) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * E.cols) return;
    int t = (int)(i / E.cols), k = (int)(i % E.cols);
    x[i] = w_at<FMT>(E, ids[t], k);
}

void cu_embed(const dmat *E, const int32_t *ids, int T, float *x, cudaStream_t st) {
    size_t n = (size_t)T * E->cols;
    unsigned blocks = (unsigned)((n + 255) / 256);
    switch (E->fmt) {
    case DF_F32: embed_kernel<DF_F32><<<blocks, 256, 0, st>>>(*E, ids, T, x); break;
    case DF_BF16: embed_kernel<DF_BF16><<<blocks, 256, 0, st>>>(*E, ids, T, x); break;
    case DF_F16: embed_kernel<DF_F16><<<blocks, 256, 0, st>>>(*E, ids, T, x); break;
    case DF_Q8: embed_kernel<DF_Q8><<<blocks, 256, 0, st>>>(*E, ids, T, x); break;
    default: embed_kernel<DF_Q4><<<blocks, 256, 0, st>>>(*E, ids, T, x); break;
    }
}
