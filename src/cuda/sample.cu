/* sample.cu — choosing the next token on the device: the argmax of the
 * logits (greedy decoding), in two passes (blocks, then one block over
 * their winners), ties to the lowest id as on the CPU. Also the position
 * counter a captured decode step advances. */
#include <math.h>

#include "cuda/cuda_internal.cuh"

#define PARTS 1024

__device__ __forceinline__ void better(float &bv, int &bi, float v, int i) {
    if (v > bv || (v == bv && i < bi)) {
        bv = v;
        bi = i;
    }
}

__device__ void block_argmax(float &bv, int &bi) {
    __shared__ float sv[32];
    __shared__ int si[32];
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, bv, o);
        int i = __shfl_xor_sync(0xffffffffu, bi, o);
        better(bv, bi, v, i);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        sv[warp] = bv;
        si[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            better(bv, bi, sv[w], si[w]);
    }
}

__global__ void argmax_parts(const float *__restrict__ x, int n, float *__restrict__ part) {
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        better(bv, bi, x[i], i);
    block_argmax(bv, bi);
    if (threadIdx.x == 0) {
        part[blockIdx.x] = bv;
        part[PARTS + blockIdx.x] = __int_as_float(bi);
    }
}

__global__ void argmax_final(const float *__restrict__ part, int nparts,
                             int32_t *__restrict__ out) {
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x)
        better(bv, bi, part[i], __float_as_int(part[PARTS + i]));
    block_argmax(bv, bi);
    if (threadIdx.x == 0) *out = bi == 0x7fffffff ? 0 : bi;
}

void cu_argmax(const float *x, int n, float *part, int32_t *out, cudaStream_t st) {
    int blocks = (n + 255) / 256;
    if (blocks > PARTS) blocks = PARTS;
    argmax_parts<<<blocks, 256, 0, st>>>(x, n, part);
    argmax_final<<<1, 1024, 0, st>>>(part, blocks, out);
}

__global__ void advance_kernel(int *pos, int n) {
    *pos += n;
}

void cu_advance(int *pos, int n, cudaStream_t st) {
    advance_kernel<<<1, 1, 0, st>>>(pos, n);
}
