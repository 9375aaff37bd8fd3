/* sample.cu — choosing the next token on the device: the argmax of the
 * logits (greedy decoding), in two passes (blocks, then one block over
 * their winners), ties to the lowest id as on the CPU. Also the position
 * counter a captured decode step advances. */
#include <math.h>

#include "cuda/cuda_internal.cuh"

#define PARTS CU_PARTS

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
    pdl_wait();
    pdl_launch();
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
    pdl_wait();
    pdl_launch();
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
    cu_launch(argmax_parts, dim3(blocks), dim3(256), 0, st, x, n, part);
    cu_argmax_final(part, blocks, out, st);
}

void cu_argmax_final(const float *part, int nparts, int32_t *out, cudaStream_t st) {
    cu_launch(argmax_final, dim3(1), dim3(1024), 0, st, part, nparts, out);
}

__global__ void argmax_rows_kernel(const float *__restrict__ x, int ld, int n,
                                   int32_t *__restrict__ out) {
    pdl_wait();
    pdl_launch();
    const float *row = x + (size_t)blockIdx.x * ld;
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        better(bv, bi, row[i], i);
    block_argmax(bv, bi);
    if (threadIdx.x == 0) out[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;
}

void cu_argmax_rows(const float *x, int ld, int B, int n, int32_t *out, cudaStream_t st) {
    cu_launch(argmax_rows_kernel, dim3(B), dim3(1024), 0, st, x, ld, n, out);
}

__global__ void advance_kernel(int *pos, int n) {
    pdl_wait();
    pdl_launch();
    *pos += n;
}

void cu_advance(int *pos, int n, cudaStream_t st) {
    cu_launch(advance_kernel, dim3(1), dim3(1), 0, st, pos, n);
}

/* ------------------------------------------------------------- sampling
 *
 * Three kernels, the same steps as runtime/sampler.c:
 *  1. penalty: one block; each distinct id of the window (the first of its
 *     copies) gets its logit divided (positive) or multiplied (negative) by
 *     the penalty, the old value kept to be put back at the end;
 *  2. block top-k: SB blocks of SORT_N logits each sort (value desc, id
 *     asc, non-finite-below -inf dropped as the CPU drops them) and keep
 *     their best k;
 *  3. merge: one block sorts the SB * k candidates the same way: the first
 *     k, and every candidate tied with the k-th, are the kept ids in the
 *     CPU's order; then the weights exp((l - top) / T) in double, the top-p
 *     prefix and the draw, sequential in the CPU's order; then the logits
 *     are put back. If a block cut through ids tied at the global k-th,
 *     some may be missing from the candidates: *out = -2 and the caller
 *     samples on the host from the (restored) logits. */
#define SORT_N 4096

typedef struct samp_scratch {
    float cv[SORT_N];
    int ci[SORT_N];
    float last[SORT_N]; /* per block: its k-th value when its (k+1)-th ties it, else NaN */
    double prob[SORT_N];
    float orig[CU_RECENT_MAX];
    int pid[CU_RECENT_MAX]; /* penalized ids, -1 for none */
} samp_scratch;

size_t cu_sample_scratch_bytes(void) {
    return sizeof(samp_scratch);
}

/* a before b: larger value, then smaller id */
__device__ __forceinline__ bool before(float va, int ia, float vb, int ib) {
    return va > vb || (va == vb && ia < ib);
}

/* Sorts v/id[0..SORT_N) in shared memory, best first (blockDim.x threads). */
__device__ void bitonic(float *v, int *id) {
    for (int size = 2; size <= SORT_N; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            for (int t = threadIdx.x; t < SORT_N / 2; t += blockDim.x) {
                int lo = 2 * t - (t & (stride - 1)), hi = lo + stride;
                bool desc = (lo & size) == 0; /* this run sorts best first */
                bool swap = before(v[hi], id[hi], v[lo], id[lo]) == desc;
                if (swap) {
                    float tv = v[lo];
                    v[lo] = v[hi];
                    v[hi] = tv;
                    int ti = id[lo];
                    id[lo] = id[hi];
                    id[hi] = ti;
                }
            }
        }
    __syncthreads();
}

__global__ void penalty_kernel(float *__restrict__ logits, const cu_sample_params *__restrict__ p,
                               const int32_t *__restrict__ recent, samp_scratch *__restrict__ sc) {
    __shared__ int ids[CU_RECENT_MAX];
    pdl_wait();
    pdl_launch();
    int n = p->n_recent < CU_RECENT_MAX ? p->n_recent : CU_RECENT_MAX;
    float r = p->penalty;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        ids[i] = recent[i];
    for (int i = threadIdx.x; i < CU_RECENT_MAX; i += blockDim.x)
        sc->pid[i] = -1;
    __syncthreads();
    if (r == 1.0f) return;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int id = ids[i];
        bool first = id >= 0 && id < p->n_valid;
        for (int j = 0; j < i && first; j++)
            first = ids[j] != id;
        if (!first) continue;
        float l = logits[id];
        sc->orig[i] = l;
        sc->pid[i] = id;
        logits[id] = l < 0 ? l * r : l / r;
    }
}

__global__ void __launch_bounds__(1024)
    block_topk_kernel(const float *__restrict__ logits, const cu_sample_params *__restrict__ p,
                      samp_scratch *__restrict__ sc) {
    __shared__ float v[SORT_N];
    __shared__ int id[SORT_N];
    pdl_wait();
    pdl_launch();
    int k = p->temperature <= 0.0f ? 1 : p->top_k, base = blockIdx.x * SORT_N; /* k = 1: argmax */
    for (int i = threadIdx.x; i < SORT_N; i += blockDim.x) {
        int e = base + i;
        float l = e < p->n_valid ? logits[e] : -INFINITY;
        bool ok = l > -INFINITY; /* NaN and -inf are never candidates */
        v[i] = ok ? l : -INFINITY;
        id[i] = ok ? e : 0x7fffffff;
    }
    bitonic(v, id);
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        sc->cv[blockIdx.x * k + i] = v[i];
        sc->ci[blockIdx.x * k + i] = id[i];
    }
    if (threadIdx.x == 0) /* a tie across this block's cut: some ties may be left out */
        sc->last[blockIdx.x] = id[k] != 0x7fffffff && v[k] == v[k - 1] ? v[k - 1] : NAN;
}

__global__ void __launch_bounds__(1024)
    merge_kernel(float *__restrict__ logits, const cu_sample_params *__restrict__ p, int nb,
                 samp_scratch *__restrict__ sc, int32_t *__restrict__ out) {
    __shared__ float v[SORT_N];
    __shared__ int id[SORT_N];
    __shared__ int flag;
    double *prob = sc->prob;
    pdl_wait();
    pdl_launch();
    bool greedy = p->temperature <= 0.0f || p->top_k == 1; /* the CPU's argmax cases */
    int k = greedy ? 1 : p->top_k, nc = nb * k;
    for (int i = threadIdx.x; i < SORT_N; i += blockDim.x) {
        v[i] = i < nc ? sc->cv[i] : -INFINITY;
        id[i] = i < nc ? sc->ci[i] : 0x7fffffff;
    }
    if (threadIdx.x == 0) flag = 0;
    bitonic(v, id);
    int valid_k = id[k - 1] != 0x7fffffff; /* at least k finite candidates */
    float kth = v[k - 1];
    int m = 0; /* kept: the first k and every candidate tied with the k-th */
    if (!valid_k) {
        while (m < SORT_N && id[m] != 0x7fffffff)
            m++;
    } else {
        m = k;
        while (m < SORT_N && id[m] != 0x7fffffff && v[m] == kth)
            m++;
        for (int b = threadIdx.x; b < nb; b += blockDim.x)
            if (sc->last[b] == kth) flag = 1; /* ids tied with the k-th may be missing */
    }
    double top = (double)v[0], inv_t = greedy ? 0.0 : 1.0 / (double)p->temperature;
    for (int i = threadIdx.x; i < m; i += blockDim.x)
        prob[i] = exp(((double)v[i] - top) * inv_t);
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t res;
        if (m == 0) {
            res = -1;
        } else if (valid_k && flag && !greedy) {
            res = -2;
        } else if (greedy) {
            res = id[0];
        } else {
            double sum = 0;
            for (int i = 0; i < m; i++)
                sum += prob[i];
            int kept = m;
            if (p->top_p < 1.0f) { /* nucleus: kept while the weight before is below */
                double limit = (double)p->top_p * sum, before_w = 0;
                kept = m;
                for (int i = 0; i < m; i++) {
                    if (before_w >= limit) {
                        kept = i;
                        break;
                    }
                    before_w += prob[i];
                }
            }
            double mass = 0;
            for (int i = 0; i < kept; i++)
                mass += prob[i];
            double target = p->u * mass, cum = 0;
            res = id[kept - 1];
            for (int i = 0; i < kept; i++) {
                cum += prob[i];
                if (cum > target) {
                    res = id[i];
                    break;
                }
            }
        }
        *out = res;
    }
    /* the logits as they were (the window's ids are distinct here) */
    int n = p->n_recent < CU_RECENT_MAX ? p->n_recent : CU_RECENT_MAX;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        if (sc->pid[i] >= 0) logits[sc->pid[i]] = sc->orig[i];
}

/* Host side: nb = ceil(n_valid / SORT_N) blocks; the caller checked
 * nb * k <= SORT_N (cu_sample_fits). */
bool cu_sample_fits(int n_valid, float temperature, int top_k) {
    int nb = (n_valid + SORT_N - 1) / SORT_N;
    int k = temperature <= 0.0f ? 1 : top_k;
    return n_valid > 0 && k >= 1 && k <= CU_TOPK_MAX && k < n_valid && (long)nb * k <= SORT_N;
}

void cu_sample(float *logits, const cu_sample_params *p, int n_valid, const int32_t *recent,
               void *scratch, int32_t *out, cudaStream_t st) {
    samp_scratch *sc = (samp_scratch *)scratch;
    int nb = (n_valid + SORT_N - 1) / SORT_N;
    cu_launch(penalty_kernel, dim3(1), dim3(1024), 0, st, logits, p, recent, sc);
    cu_launch(block_topk_kernel, dim3(nb), dim3(1024), 0, st, (const float *)logits, p, sc);
    cu_launch(merge_kernel, dim3(1), dim3(1024), 0, st, logits, p, nb, sc, out);
}
