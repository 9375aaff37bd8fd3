/* gemm.cu — the prefill GEMM on the bf16 tensor cores (prefill.cuh):
 * Y (op)= X W^T for T > 1 tokens, W bf16 or Q8_0 / Q4_0.
 *
 * Why bf16 and still float32-like: every weight value these forms hold is
 * exact in bf16 (bf16 itself; the int8 of Q8_0 and the nibble - 8 of Q4_0,
 * whose per-32 scale is applied in float32 to the partial sums of each
 * 32-wide k-block), a bf16 x bf16 product is exact in the float32
 * accumulator, so the one rounding is that of the activations. Each
 * activation x is split into hi = bf16(x), mid = bf16(x - hi) and lo =
 * bf16(x - hi - mid), 24 bits of mantissa as float32 has, and the three
 * are multiplied (smallest first): float32 products at three bf16 tensor
 * products each, against matmul.cu's split TF32 (two or three TF32
 * products at half the bf16 rate each). hi + mid alone (16 bits, <= 2^-16
 * relative per product) came out 2-4x further from float64 than float32
 * on the tiny models (test_cuda_forward's Q4_0 bound failed), so the
 * default is the three-part form; Q35_CUDA_PREFILL_GEMM=split2 / bf16 take
 * two / one part for comparisons.
 *
 * Tiles: a block of 4 warps computes 64 tokens x 64 weight rows, each warp
 * a 32 x 32 corner (2 x 4 mma.sync m16n8k16 tiles), k in steps of 32 (one
 * quantized block, so a tile row has one scale). Tiles go global ->
 * registers (converted to bf16 there) -> shared memory, double-buffered:
 * the next tile's loads are in flight while the tensor cores work, one
 * barrier per step. Shared rows are padded to 80 bytes so that the 8
 * addresses of each ldmatrix fall in distinct banks. Too few tiles to fill
 * the GPU (a short prompt): K is split as in matmul.cu, partial sums
 * reduced in a fixed order (the result does not depend on the split's
 * timing, only on the shapes). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/prefill.cuh"

#define GB_M 64
#define GB_N 64
#define GB_K 32
#define GB_LD 40 /* bf16 per shared row: 32 + 8 of padding */

/* The form taken without Q35_CUDA_PREFILL_GEMM (0 off, 1 bf16, 2 hi+lo,
 * 3 hi+mid+lo). */
#define GB_DEFAULT_MODE 3

int cu_gemm_bf16_mode(void) {
    const char *v = getenv("Q35_CUDA_PREFILL_GEMM");
    if (v && !strcmp(v, "off")) return 0;
    if (v && !strcmp(v, "bf16")) return 1;
    if (v && !strcmp(v, "split2")) return 2;
    if (v && !strcmp(v, "split")) return 3;
    return GB_DEFAULT_MODE;
}

__device__ __forceinline__ uint32_t pack_bf16(float a, float b) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b); /* a in the low half */
    return *(uint32_t *)&h;
}

__device__ __forceinline__ void ldsm_x4(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3,
                                        const void *p) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(a));
}

__device__ __forceinline__ void mma_bf16(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Thread tid stages row tid/2 of both tiles, 16 values from column
 * (tid % 2) * 16 of the step. */
template <int FMT> struct stage {
    float4 x[4];   /* activations */
    uint4 w[2];    /* bf16 weights, or the quantized block (w[0]) */
    float d;       /* Q8/Q4: the row's scale for this block */
};

template <int FMT>
__device__ __forceinline__ void stage_load(stage<FMT> &g, const dmat &W, const float *X, int ldx,
                                           int T, int t, int n, int k) {
    if (t < T) {
        const float4 *p = (const float4 *)(X + (size_t)t * ldx + k);
#pragma unroll
        for (int i = 0; i < 4; i++)
            g.x[i] = __ldg(p + i);
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++)
            g.x[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    g.d = 0.0f;
    if (n >= W.rows) {
        g.w[0] = g.w[1] = make_uint4(0, 0, 0, 0);
        return;
    }
    int cols = W.cols;
    if (FMT == DF_BF16) {
        const uint4 *p = (const uint4 *)((const uint16_t *)W.w + (size_t)n * cols + k);
        g.w[0] = __ldg(p);
        g.w[1] = __ldg(p + 1);
    } else {
        g.d = __half2float(__ushort_as_half(__ldg(W.scale + (size_t)n * (cols / 32) + k / 32)));
        if (FMT == DF_Q8)
            g.w[0] = __ldg((const uint4 *)((const int8_t *)W.w + (size_t)n * cols + k));
        else
            g.w[0] = __ldg(
                (const uint4 *)((const uint8_t *)W.w + (size_t)n * (cols / 2) + (k / 32) * 16));
    }
}

/* 4 signed bytes -> 2 words of 2 bf16 (the integers, exact) */
__device__ __forceinline__ void i8x4_bf16(uint32_t v, uint32_t &lo, uint32_t &hi) {
    lo = pack_bf16((float)(int8_t)(v & 0xff), (float)(int8_t)((v >> 8) & 0xff));
    hi = pack_bf16((float)(int8_t)((v >> 16) & 0xff), (float)(int8_t)(v >> 24));
}

/* The activations' parts: NP = 1: bf16(x); 2: + bf16(x - hi); 3: + the
 * rest again, x = hi + mid + lo to float32's 24 bits. */
template <int NP>
__device__ __forceinline__ void split_parts(float a, float b, uint32_t *p) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    p[0] = *(uint32_t *)&h;
    if (NP == 1) return;
    float2 hf = __bfloat1622float2(h);
    a -= hf.x;
    b -= hf.y;
    __nv_bfloat162 m = __floats2bfloat162_rn(a, b);
    p[1] = *(uint32_t *)&m;
    if (NP == 2) return;
    float2 mf = __bfloat1622float2(m);
    p[2] = pack_bf16(a - mf.x, b - mf.y);
}

template <int FMT, int NP>
__device__ __forceinline__ void stage_store(const stage<FMT> &g, int koff, __nv_bfloat16 *As,
                                            __nv_bfloat16 *Bs, float *Ds, int r) {
    uint32_t h[NP][8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        uint32_t p0[NP], p1[NP];
        split_parts<NP>(g.x[i].x, g.x[i].y, p0);
        split_parts<NP>(g.x[i].z, g.x[i].w, p1);
#pragma unroll
        for (int q = 0; q < NP; q++) {
            h[q][2 * i] = p0[q];
            h[q][2 * i + 1] = p1[q];
        }
    }
#pragma unroll
    for (int q = 0; q < NP; q++) { /* part q's tile follows part q-1's */
        uint4 *ap = (uint4 *)(As + q * GB_M * GB_LD + r * GB_LD + koff);
        ap[0] = make_uint4(h[q][0], h[q][1], h[q][2], h[q][3]);
        ap[1] = make_uint4(h[q][4], h[q][5], h[q][6], h[q][7]);
    }
    uint4 *b = (uint4 *)(Bs + r * GB_LD + koff);
    if (FMT == DF_BF16) {
        b[0] = g.w[0];
        b[1] = g.w[1];
        return;
    }
    uint32_t u[4] = {g.w[0].x, g.w[0].y, g.w[0].z, g.w[0].w}, o[8];
    if (FMT == DF_Q8) {
#pragma unroll
        for (int i = 0; i < 4; i++)
            i8x4_bf16(u[i], o[2 * i], o[2 * i + 1]);
    } else { /* Q4: byte j holds weight j (low nibble) and 16 + j (high) */
        int sh = koff ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t v = (u[i] >> sh) & 0x0f0f0f0fu;
            o[2 * i] = pack_bf16((float)((int)(v & 15) - 8), (float)((int)((v >> 8) & 15) - 8));
            o[2 * i + 1] =
                pack_bf16((float)((int)((v >> 16) & 15) - 8), (float)((int)(v >> 24) - 8));
        }
    }
    b[0] = make_uint4(o[0], o[1], o[2], o[3]);
    b[1] = make_uint4(o[4], o[5], o[6], o[7]);
    if (koff == 0) Ds[r] = g.d;
}

template <int FMT, int NP>
__global__ void __launch_bounds__(128)
    gemm_bf16_kernel(dmat W, const float *__restrict__ X, int ldx, int T, float *__restrict__ Y,
                     int ldy, int op, int kchunk, float *__restrict__ ws) {
    __shared__ __align__(16) __nv_bfloat16 As[2][NP * GB_M * GB_LD];
    __shared__ __align__(16) __nv_bfloat16 Bs[2][GB_N * GB_LD];
    __shared__ float Ds[2][GB_N];
    constexpr bool QUANT = FMT != DF_BF16;
    pdl_wait();
    pdl_launch();
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int n0 = blockIdx.x * GB_N, t0 = blockIdx.y * GB_M;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    const int lr = tid >> 1, lk = (tid & 1) * 16;
    int kb = blockIdx.z * kchunk, ke = kb + kchunk < W.cols ? kb + kchunk : W.cols;
    if (ws) { /* split K: this block's sum into ws[z] */
        Y = ws + (size_t)blockIdx.z * T * W.rows;
        ldy = W.rows;
        op = MM_STORE;
    }
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[i][j][e] = 0.0f;
    stage<FMT> g;
    stage_load<FMT>(g, W, X, ldx, T, t0 + lr, n0 + lr, kb + lk);
    stage_store<FMT, NP>(g, lk, As[0], Bs[0], Ds[0], lr);
    __syncthreads();
    /* ldmatrix lane addresses: A (row-major 16 x 16): rows lane % 16, k
     * (lane / 16) * 8; B (stored [n][k]): matrix lane / 8 is (n half, k
     * half) = ((lane / 16), (lane / 8) % 2) */
    const int a_row = lane & 15, a_k = (lane >> 4) * 8;
    const int b_row = (lane & 7) + ((lane >> 4) << 3), b_k = ((lane >> 3) & 1) * 8;
    int buf = 0;
    for (int k0 = kb; k0 < ke; k0 += GB_K) {
        bool more = k0 + GB_K < ke;
        if (more) stage_load<FMT>(g, W, X, ldx, T, t0 + lr, n0 + lr, k0 + GB_K + lk);
        float part[2][4][4];
        if (QUANT) {
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        part[i][j][e] = 0.0f;
        }
#pragma unroll
        for (int kk = 0; kk < GB_K; kk += 16) {
            uint32_t b[4][2];
#pragma unroll
            for (int jj = 0; jj < 2; jj++) {
                int off = (wn + 16 * jj + b_row) * GB_LD + kk + b_k;
                ldsm_x4(b[2 * jj][0], b[2 * jj][1], b[2 * jj + 1][0], b[2 * jj + 1][1],
                        Bs[buf] + off);
            }
            /* the smallest part first, so that the large products add last */
#pragma unroll
            for (int q = NP - 1; q >= 0; q--) {
                uint32_t a[2][4];
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    int off = q * GB_M * GB_LD + (wm + 16 * i + a_row) * GB_LD + kk + a_k;
                    ldsm_x4(a[i][0], a[i][1], a[i][2], a[i][3], As[buf] + off);
                }
#pragma unroll
                for (int i = 0; i < 2; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        if (QUANT)
                            mma_bf16(part[i][j], a[i], b[j][0], b[j][1]);
                        else
                            mma_bf16(acc[i][j], a[i], b[j][0], b[j][1]);
                    }
            }
        }
        if (QUANT) { /* the block's scale per column */
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int col = wn + 8 * j + (lane & 3) * 2;
                float d0 = Ds[buf][col], d1 = Ds[buf][col + 1];
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    acc[i][j][0] += d0 * part[i][j][0];
                    acc[i][j][1] += d1 * part[i][j][1];
                    acc[i][j][2] += d0 * part[i][j][2];
                    acc[i][j][3] += d1 * part[i][j][3];
                }
            }
        }
        if (more) stage_store<FMT, NP>(g, lk, As[buf ^ 1], Bs[buf ^ 1], Ds[buf ^ 1], lr);
        __syncthreads();
        buf ^= 1;
    }
    /* accumulator (i, j): rows lane / 4 (+ 8), columns (lane % 4) * 2 (+ 1) */
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int t = t0 + wm + 16 * i + (lane >> 2) + (e >> 1) * 8;
                int n = n0 + wn + 8 * j + (lane & 3) * 2 + (e & 1);
                if (t >= T || n >= W.rows) continue;
                float *out = Y + (size_t)t * ldy + n;
                if (op == MM_ADD)
                    *out += acc[i][j][e];
                else
                    *out = acc[i][j][e];
            }
}

/* y[t, n] (op)= sum over z of ws[z][t][n], z in order */
__global__ void gemm_bf16_reduce(const float *__restrict__ ws, int nz, int T, int rows,
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

static int sm_count(void) {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1)
        n = 132;
    return n;
}

template <int FMT, int NP>
static void go(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op, float *ws,
               size_t ws_n, cudaStream_t st) {
    static const int sms = sm_count();
    dim3 grid((W->rows + GB_N - 1) / GB_N, (T + GB_M - 1) / GB_M);
    /* about two blocks per SM, at least 4 k-steps each (as matmul.cu) */
    int blocks = grid.x * grid.y, ksteps = W->cols / GB_K, split = 1;
    if (ws && blocks < 2 * sms) {
        split = (2 * sms + blocks - 1) / blocks;
        if (split > ksteps / 4) split = ksteps / 4;
        if (split > 16) split = 16;
        while (split > 1 && (size_t)split * T * W->rows > ws_n)
            split--;
        if (split < 1) split = 1;
    }
    int kchunk = (ksteps + split - 1) / split * GB_K;
    split = (W->cols + kchunk - 1) / kchunk;
    if (split <= 1) {
        cu_launch(gemm_bf16_kernel<FMT, NP>, grid, dim3(128), 0, st, *W, X, ldx, T, Y, ldy, op,
                  W->cols, (float *)NULL);
        return;
    }
    grid.z = split;
    cu_launch(gemm_bf16_kernel<FMT, NP>, grid, dim3(128), 0, st, *W, X, ldx, T, Y, ldy, op,
              kchunk, ws);
    size_t n = (size_t)T * W->rows;
    cu_launch(gemm_bf16_reduce, dim3((unsigned)((n + 255) / 256)), dim3(256), 0, st,
              (const float *)ws, split, T, W->rows, Y, ldy, op);
}

template <int FMT>
static void go_np(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op,
                  float *ws, size_t ws_n, int mode, cudaStream_t st) {
    if (mode == 1)
        go<FMT, 1>(W, X, ldx, T, Y, ldy, op, ws, ws_n, st);
    else if (mode == 2)
        go<FMT, 2>(W, X, ldx, T, Y, ldy, op, ws, ws_n, st);
    else
        go<FMT, 3>(W, X, ldx, T, Y, ldy, op, ws, ws_n, st);
}

bool cu_gemm_bf16(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op,
                  float *ws, size_t ws_n, cudaStream_t st) {
    return cu_gemm_bf16_run(W, X, ldx, T, Y, ldy, op, ws, ws_n, cu_gemm_bf16_mode(), st);
}

bool cu_gemm_bf16_run(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op,
                      float *ws, size_t ws_n, int mode, cudaStream_t st) {
    if (mode == 0 || T < 2 || ldx % 4 || W->cols % GB_K || W->cols <= 0) return false;
    if (op != MM_STORE && op != MM_ADD) return false;
    switch (W->fmt) {
    case DF_BF16: go_np<DF_BF16>(W, X, ldx, T, Y, ldy, op, ws, ws_n, mode, st); return true;
    case DF_Q8: go_np<DF_Q8>(W, X, ldx, T, Y, ldy, op, ws, ws_n, mode, st); return true;
    case DF_Q4: go_np<DF_Q4>(W, X, ldx, T, Y, ldy, op, ws, ws_n, mode, st); return true;
    default: return false;
    }
}
