/* gemv.cuh — the GEMV's pieces that the one-kernel decode step (mega.cu)
 * shares with matmul.cu's GEMV kernels: a row's 16-byte chunks in each
 * device form and their dot product with the chunk-major input in shared
 * memory, and what comes before (the input's norm) and after (residual,
 * SwiGLU) the product. See matmul.cu for the layout. */
#ifndef Q35_CUDA_GEMV_CUH
#define Q35_CUDA_GEMV_CUH

#include <cuda_fp16.h>

#include "cuda/cuda_internal.cuh"

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int FMT> struct chunk_of {
    static constexpr int n = FMT == DF_F32 ? 4 : FMT == DF_Q8 ? 16 : DF_NIBBLES(FMT) ? 32 : 8;
};

template <int FMT>
__device__ __forceinline__ const uint4 *row_ptr(const dmat &W, int r) {
    size_t b = FMT == DF_F32 ? 4 : DF_NIBBLES(FMT) ? 0 : FMT == DF_Q8 ? 1 : 2;
    size_t bytes = DF_NIBBLES(FMT) ? (size_t)W.cols / 2 : (size_t)W.cols * b;
    return (const uint4 *)((const unsigned char *)W.w + (size_t)r * bytes);
}

__device__ __forceinline__ float byte_f(uint32_t v, int k) { /* byte k of v as a float */
    return __uint_as_float(__byte_perm(v, 0x4B000000u, 0x7440 + k)) - 8388608.0f;
}

/* The chunk's weights (16 bytes in u) times the input, without the scale
 * (Q4: the codes less 8; A4: the codes as they are, its z term apart). */
template <int FMT>
__device__ __forceinline__ float chunk_dot(uint4 q, const float4 *xs4, int NC, int c) {
    uint32_t u[4] = {q.x, q.y, q.z, q.w};
    float s = 0.0f;
    if (FMT == DF_F32) {
        float4 x = xs4[c];
        s = __uint_as_float(u[0]) * x.x + __uint_as_float(u[1]) * x.y +
            __uint_as_float(u[2]) * x.z + __uint_as_float(u[3]) * x.w;
    } else if (FMT == DF_BF16 || FMT == DF_F16) {
#pragma unroll
        for (int f = 0; f < 2; f++) {
            float4 x = xs4[f * NC + c];
            float w[4];
#pragma unroll
            for (int j = 0; j < 2; j++) {
                uint32_t v = u[2 * f + j];
                if (FMT == DF_BF16) {
                    w[2 * j] = __uint_as_float(v << 16);
                    w[2 * j + 1] = __uint_as_float(v & 0xffff0000u);
                } else {
                    float2 h = __half22float2(*(const __half2 *)&v);
                    w[2 * j] = h.x;
                    w[2 * j + 1] = h.y;
                }
            }
            s += w[0] * x.x + w[1] * x.y + w[2] * x.z + w[3] * x.w;
        }
    } else if (FMT == DF_Q8) { /* bytes + 128 via the sign flip */
#pragma unroll
        for (int f = 0; f < 4; f++) {
            float4 x = xs4[f * NC + c];
            uint32_t v = u[f] ^ 0x80808080u;
            s += (byte_f(v, 0) - 128.0f) * x.x + (byte_f(v, 1) - 128.0f) * x.y +
                 (byte_f(v, 2) - 128.0f) * x.z + (byte_f(v, 3) - 128.0f) * x.w;
        }
    } else { /* Q4, A4: byte b holds weight b (low nibble) and 16 + b (high) */
        const float off = FMT == DF_A4 ? 0.0f : 8.0f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            uint32_t lo = u[j] & 0x0f0f0f0fu, hi = (u[j] >> 4) & 0x0f0f0f0fu;
            float4 xa = xs4[j * NC + c], xb = xs4[(4 + j) * NC + c];
            s += (byte_f(lo, 0) - off) * xa.x + (byte_f(lo, 1) - off) * xa.y +
                 (byte_f(lo, 2) - off) * xa.z + (byte_f(lo, 3) - off) * xa.w;
            s += (byte_f(hi, 0) - off) * xb.x + (byte_f(hi, 1) - off) * xb.y +
                 (byte_f(hi, 2) - off) * xb.z + (byte_f(hi, 3) - off) * xb.w;
        }
    }
    return s;
}

/* The sum of chunk c's 32 inputs (A4's z term). */
__device__ __forceinline__ float chunk_xsum(const float4 *xs4, int NC, int c) {
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float4 x = xs4[j * NC + c];
        s += (x.x + x.y) + (x.z + x.w);
    }
    return s;
}

/* What comes before the product (how x is made) and after it. */
enum { PRO_PLAIN = 0, PRO_RMS = 1, PRO_GATED = 2 };

typedef struct gv_args {
    const float *x;    /* [cols] input */
    const float *norm; /* PRO_RMS: [cols]; PRO_GATED: [dv] */
    const float *z;    /* PRO_GATED: [cols] gate */
    float eps;
    int pro, dv;
    int op;    /* MM_STORE / MM_ADD / MM_GLU */
    int nout;  /* outputs (MM_GLU: W has 2 nout rows) */
    float *y;  /* [nout]; may be NULL with part */
    float *part; /* argmax partials ([2 * CU_PARTS]) or NULL */
    int n_best;  /* rows taking part in the argmax */
} gv_args;

#endif
