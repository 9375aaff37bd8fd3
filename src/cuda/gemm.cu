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

/* Q35_CUDA_PREFILL_TILE=128: 128-tiles above 64 tokens. Measured on an H100
 * (test_cuda_prefill, bench_cuda, one call): faster alone with the weights
 * in L2 (the 0.8B's five prefill shapes at T = 512, bf16 0.469 -> 0.389
 * ms), slower in the model, where each layer's weights come from DRAM
 * once (pp512 bf16 28.2k -> 27.0k, Q8_0 28.6k -> 24.0k, Q4_0 28.8k ->
 * 23.5k): its one block per SM of 16 warps leaves the weight loads'
 * latency exposed. Off by default. */
static int gb_tile(void) {
    const char *v = getenv("Q35_CUDA_PREFILL_TILE");
    return v && !strcmp(v, "128") ? 128 : 64;
}

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

/* Tiles of BT x BT (64 or 128): (BT / 32)^2 warps, each a 32 x 32 corner;
 * thread tid stages row tid / TPR of both tiles, EPT = 32 / TPR values from
 * column (tid % TPR) * EPT of the step. */
template <int BT> struct tile {
    static constexpr int WPR = BT / 32, NTH = WPR * WPR * 32, TPR = NTH / BT, EPT = 32 / TPR;
};

template <int EPT> struct stage {
    float4 x[EPT / 4];  /* activations */
    uint32_t w[EPT / 2]; /* bf16 weights (EPT / 2 words), or the quantized bytes (EPT / 4) */
    float d;            /* Q8/Q4: the row's scale for this block */
};

template <int N> __device__ __forceinline__ void ld_words(uint32_t *w, const void *p) {
    if (N == 8) {
        uint4 a = __ldg((const uint4 *)p), b = __ldg((const uint4 *)p + 1);
        w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w;
        w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
    } else if (N == 4) {
        uint4 a = __ldg((const uint4 *)p);
        w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w;
    } else {
        uint2 a = __ldg((const uint2 *)p);
        w[0] = a.x, w[1] = a.y;
    }
}

template <int FMT, int EPT>
__device__ __forceinline__ void stage_load(stage<EPT> &g, const dmat &W, const float *X, int ldx,
                                           int T, int t, int n, int k) {
    if (t < T) {
        const float4 *p = (const float4 *)(X + (size_t)t * ldx + k);
#pragma unroll
        for (int i = 0; i < EPT / 4; i++)
            g.x[i] = __ldg(p + i);
    } else {
#pragma unroll
        for (int i = 0; i < EPT / 4; i++)
            g.x[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    g.d = 0.0f;
    if (n >= W.rows) {
#pragma unroll
        for (int i = 0; i < EPT / 2; i++)
            g.w[i] = 0;
        return;
    }
    int cols = W.cols;
    if (FMT == DF_BF16) {
        ld_words<EPT / 2>(g.w, (const uint16_t *)W.w + (size_t)n * cols + k);
    } else {
        g.d = __half2float(__ushort_as_half(__ldg(W.scale + (size_t)n * (cols / 32) + k / 32)));
        if (FMT == DF_Q8)
            ld_words<EPT / 4>(g.w, (const int8_t *)W.w + (size_t)n * cols + k);
        else /* the bytes holding weights k .. k + EPT - 1 of the block (nibbles) */
            ld_words<EPT / 4>(g.w, (const uint8_t *)W.w + (size_t)n * (cols / 2) +
                                       (k / 32) * 16 + (k % 16));
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

template <int N> __device__ __forceinline__ void st_words(void *p, const uint32_t *w) {
    uint4 *q = (uint4 *)p;
#pragma unroll
    for (int i = 0; i < N / 4; i++)
        q[i] = make_uint4(w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]);
}

template <int FMT, int NP, int BT, int EPT>
__device__ __forceinline__ void stage_store(const stage<EPT> &g, int koff, __nv_bfloat16 *As,
                                            __nv_bfloat16 *Bs, float *Ds, int r) {
    uint32_t h[NP][EPT / 2];
#pragma unroll
    for (int i = 0; i < EPT / 4; i++) {
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
    for (int q = 0; q < NP; q++) /* part q's tile follows part q-1's */
        st_words<EPT / 2>(As + q * BT * GB_LD + r * GB_LD + koff, h[q]);
    __nv_bfloat16 *b = Bs + r * GB_LD + koff;
    if (FMT == DF_BF16) {
        st_words<EPT / 2>(b, g.w);
        return;
    }
    uint32_t o[EPT / 2];
    if (FMT == DF_Q8) {
#pragma unroll
        for (int i = 0; i < EPT / 4; i++)
            i8x4_bf16(g.w[i], o[2 * i], o[2 * i + 1]);
    } else { /* Q4: byte j holds weight j (low nibble) and 16 + j (high) */
        int sh = koff >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < EPT / 4; i++) {
            uint32_t v = (g.w[i] >> sh) & 0x0f0f0f0fu;
            o[2 * i] = pack_bf16((float)((int)(v & 15) - 8), (float)((int)((v >> 8) & 15) - 8));
            o[2 * i + 1] =
                pack_bf16((float)((int)((v >> 16) & 15) - 8), (float)((int)(v >> 24) - 8));
        }
    }
    st_words<EPT / 2>(b, o);
    if (koff == 0) Ds[r] = g.d;
}

template <int NP, int BT> static constexpr size_t smem_bytes() {
    return (size_t)2 * NP * BT * GB_LD * 2 + (size_t)2 * BT * GB_LD * 2 + (size_t)2 * BT * 4;
}

template <int FMT, int NP, int BT>
__global__ void __launch_bounds__(tile<BT>::NTH)
    gemm_bf16_kernel(dmat W, const float *__restrict__ X, int ldx, int T, float *__restrict__ Y,
                     int ldy, int op, int kchunk, float *__restrict__ ws) {
    typedef tile<BT> TL;
    constexpr int EPT = TL::EPT, TPR = TL::TPR, WPR = TL::WPR;
    extern __shared__ __align__(16) unsigned char gsm[];
    __nv_bfloat16 *As0 = (__nv_bfloat16 *)gsm; /* [2][NP][BT][GB_LD] */
    __nv_bfloat16 *Bs0 = As0 + 2 * NP * BT * GB_LD; /* [2][BT][GB_LD] */
    float *Ds0 = (float *)(Bs0 + 2 * BT * GB_LD);  /* [2][BT] */
    constexpr bool QUANT = FMT != DF_BF16;
    pdl_wait();
    pdl_launch();
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int n0 = blockIdx.x * BT, t0 = blockIdx.y * BT;
    const int wm = (warp / WPR) * 32, wn = (warp % WPR) * 32;
    const int lr = tid / TPR, lk = (tid % TPR) * EPT;
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
    stage<EPT> g;
    stage_load<FMT, EPT>(g, W, X, ldx, T, t0 + lr, n0 + lr, kb + lk);
    stage_store<FMT, NP, BT, EPT>(g, lk, As0, Bs0, Ds0, lr);
    __syncthreads();
    /* ldmatrix lane addresses: A (row-major 16 x 16): rows lane % 16, k
     * (lane / 16) * 8; B (stored [n][k]): matrix lane / 8 is (n half, k
     * half) = ((lane / 16), (lane / 8) % 2) */
    const int a_row = lane & 15, a_k = (lane >> 4) * 8;
    const int b_row = (lane & 7) + ((lane >> 4) << 3), b_k = ((lane >> 3) & 1) * 8;
    int buf = 0;
    for (int k0 = kb; k0 < ke; k0 += GB_K) {
        bool more = k0 + GB_K < ke;
        if (more) stage_load<FMT, EPT>(g, W, X, ldx, T, t0 + lr, n0 + lr, k0 + GB_K + lk);
        const __nv_bfloat16 *As = As0 + buf * NP * BT * GB_LD, *Bs = Bs0 + buf * BT * GB_LD;
        const float *Ds = Ds0 + buf * BT;
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
                        Bs + off);
            }
            /* the smallest part first, so that the large products add last */
#pragma unroll
            for (int q = NP - 1; q >= 0; q--) {
                uint32_t a[2][4];
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    int off = q * BT * GB_LD + (wm + 16 * i + a_row) * GB_LD + kk + a_k;
                    ldsm_x4(a[i][0], a[i][1], a[i][2], a[i][3], As + off);
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
                float d0 = Ds[col], d1 = Ds[col + 1];
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    acc[i][j][0] += d0 * part[i][j][0];
                    acc[i][j][1] += d1 * part[i][j][1];
                    acc[i][j][2] += d0 * part[i][j][2];
                    acc[i][j][3] += d1 * part[i][j][3];
                }
            }
        }
        if (more)
            stage_store<FMT, NP, BT, EPT>(g, lk, As0 + (buf ^ 1) * NP * BT * GB_LD,
                                          Bs0 + (buf ^ 1) * BT * GB_LD, Ds0 + (buf ^ 1) * BT, lr);
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

template <int FMT, int NP, int BT>
static void go_bt(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op,
                  float *ws, size_t ws_n, cudaStream_t st) {
    static const int sms = sm_count();
    constexpr size_t smem = smem_bytes<NP, BT>();
    if (smem > 48 * 1024)
        cudaFuncSetAttribute(gemm_bf16_kernel<FMT, NP, BT>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    dim3 grid((W->rows + BT - 1) / BT, (T + BT - 1) / BT), block(tile<BT>::NTH);
    /* too few tiles: split K for about two waves of blocks, at least 4
     * k-steps each (as matmul.cu); the split depends on the shapes only */
    int per_sm = BT == 64 ? 2 : 1;
    int blocks = grid.x * grid.y, ksteps = W->cols / GB_K, split = 1;
    if (ws && blocks < 2 * per_sm * sms) {
        split = (2 * per_sm * sms + blocks - 1) / blocks;
        if (split > ksteps / 4) split = ksteps / 4;
        if (split > 16) split = 16;
        while (split > 1 && (size_t)split * T * W->rows > ws_n)
            split--;
        if (split < 1) split = 1;
    }
    int kchunk = (ksteps + split - 1) / split * GB_K;
    split = (W->cols + kchunk - 1) / kchunk;
    if (split <= 1) {
        cu_launch(gemm_bf16_kernel<FMT, NP, BT>, grid, block, smem, st, *W, X, ldx, T, Y, ldy,
                  op, W->cols, (float *)NULL);
        return;
    }
    grid.z = split;
    cu_launch(gemm_bf16_kernel<FMT, NP, BT>, grid, block, smem, st, *W, X, ldx, T, Y, ldy, op,
              kchunk, ws);
    size_t n = (size_t)T * W->rows;
    cu_launch(gemm_bf16_reduce, dim3((unsigned)((n + 255) / 256)), dim3(256), 0, st,
              (const float *)ws, split, T, W->rows, Y, ldy, op);
}

/* Tiles of 64, or of 128 above 64 tokens when gb_tile() says so (half the
 * L2 traffic per product). */
template <int FMT, int NP>
static void go(const dmat *W, const float *X, int ldx, int T, float *Y, int ldy, int op, float *ws,
               size_t ws_n, cudaStream_t st) {
    if (T > 64 && gb_tile() == 128)
        go_bt<FMT, NP, 128>(W, X, ldx, T, Y, ldy, op, ws, ws_n, st);
    else
        go_bt<FMT, NP, 64>(W, X, ldx, T, Y, ldy, op, ws, ws_n, st);
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
