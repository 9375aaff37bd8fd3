/* cuda_internal.cuh — what the CUDA backend's files share: weight matrices
 * in their device form, the model's device copy, and the kernel launchers
 * (one file per kind of kernel: matmul.cu, gdn.cu, attn.cu, ops.cu).
 *
 * Everything on the device is float32 except the weight matrices, which
 * keep the model's form where a kernel reads it directly (f32, bf16, f16,
 * Q8_0, Q4_0), take the 4-bit affine form A4 (Q4_K and MLX 4-bit: the
 * same values, see weights.cu) and are widened to float32 otherwise
 * (Q6_K, Q5_K, other MLX bit widths): the same values the CPU computes
 * with, so the two paths agree to float32 rounding. Quantized matrices are
 * split on upload into their integers and their per-32 scales, so that a
 * thread reads 16 aligned bytes at a time. */
#ifndef Q35_CUDA_INTERNAL_CUH
#define Q35_CUDA_INTERNAL_CUH

#include <cuda_runtime.h>
#include <stdint.h>

extern "C" { /* the library's C headers */
#include "core/err.h"
#include "model/model.h"
}

/* Device forms of a matrix. */
enum { DF_F32 = 0, DF_BF16, DF_F16, DF_Q8, DF_Q4, DF_A4 };

/* Forms whose 16-byte chunk is 32 nibbles (Q4_0's order: byte b holds
 * weight b in its low nibble and weight 16 + b in its high one). */
#define DF_NIBBLES(f) ((f) == DF_Q4 || (f) == DF_A4)

typedef struct dmat {
    int fmt;
    int rows, cols;
    const void *w;         /* f32/bf16/f16 values, int8 (Q8), nibbles (Q4, A4: 16 bytes a block) */
    const uint16_t *scale; /* Q8/Q4: f16 scale per 32 weights, [rows, cols/32] */
    const float2 *affine;  /* A4: (s, z) per 32 weights, weight = s * q + z, [rows, cols/32] */
} dmat;

typedef struct dlayer {
    bool full_attn;
    const float *attn_norm, *mlp_norm; /* [H], 1+w */
    dmat w_gu;                         /* [2I, H]: gate rows then up rows */
    dmat w_down;                       /* [H, I] */
    /* DeltaNet */
    dmat w_in;  /* [C + nv*dv + 2nv, H]: qkv | z | b | a */
    dmat w_out; /* [H, nv*dv] */
    const float *conv_w, *A, *dt_bias, *gdn_norm;
    /* attention */
    dmat w_qkv; /* [nh*2d + 2*nkv*d, H]: q|gate per head, then k, then v */
    dmat w_o;   /* [H, nh*d] */
    const float *q_norm, *k_norm;
} dlayer;

/* The model's device copy (model->device_ctx). */
typedef struct cuda_model {
    int device;
    q35_config cfg;
    dmat embed, lm_head;
    const float *final_norm;
    dlayer *layers;
    void **allocs; /* every device allocation, freed with the model */
    int n_allocs, cap_allocs;
    size_t bytes;
} cuda_model;

/* Uploads m's weights once (the first call for a model; later calls return
 * that copy). NULL and `e` filled on failure. */
cuda_model *cuda_model_get(const q35_model *m, q35_err *e);

/* Fills e from a failed CUDA call; returns its q35 status. */
int cuda_fail(cudaError_t rc, const char *what, q35_err *e);

/* ------------------------------------------- programmatic dependent launch
 *
 * Every kernel of the forward pass is launched with the programmatic
 * stream serialization attribute (unless Q35_CUDA_PDL=0): it may start
 * while the kernel before it drains, does only work that depends on nothing
 * written before (address arithmetic, prefetching weights into L2), then
 * waits at pdl_wait() for the previous grid to complete and its writes to be
 * visible, and lets the next kernel start at pdl_launch(). No kernel reads
 * or writes device memory another kernel touches before its pdl_wait(). In a
 * captured graph the attribute becomes a programmatic edge. */
__device__ __forceinline__ void pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Whether launches carry the attribute (Q35_CUDA_PDL=0 turns it off). */
bool cu_pdl_on(void);

/* k<<<g, b, smem, st>>>(args...) with the attribute when cu_pdl_on(). */
template <typename... P, typename... A>
static inline void cu_launch(void (*k)(P...), dim3 g, dim3 b, size_t smem, cudaStream_t st,
                             A... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = g;
    cfg.blockDim = b;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = cu_pdl_on() ? 1 : 0;
    cudaLaunchKernelEx(&cfg, k, ((P)args)...);
}

/* ----------------------------------------------------------- launchers */

/* What a matmul does with its result y = W x. */
enum { MM_STORE = 0, MM_ADD = 1, MM_GLU = 2 };

/* y[t, :] (op)= W x[t, :] for T tokens: x rows of W.cols floats, ldx apart;
 * y rows ldy apart. norm != NULL: x is first RMS-normed with weight norm
 * (eps) -- fused for T == 1, through `tmp` ([T, W.cols]) otherwise.
 * MM_GLU: W holds 2n rows (gate then up) and y gets silu(gate) * up, n per
 * token (T > 1: through `tmp2`, [T, 2n]). ws (ws_n floats, may be NULL):
 * scratch for splitting K when the GEMM has too few tiles to fill the GPU.
 * T == 1 runs a GEMV (float32
 * products), T > 1 a tensor-core GEMM in split TF32 (each operand as a sum
 * of two TF32 numbers, so products keep float32 precision). */
void cu_matmul(const dmat *W, const float *x, int T, int ldx, float *y, int ldy, int op,
               const float *norm, float eps, float *tmp, float *tmp2, float *ws, size_t ws_n,
               cudaStream_t st);

/* Decode GEMVs with other prologues (T = 1):
 * - cu_gemv_gated: y += W g where g is the DeltaNet output o ([nv, dv]) after
 *   its per-head RMSNorm (weight gnorm [dv], eps) and the gate silu(z).
 * - cu_gemv_argmax: logits = W rms(x) (stored when logits != NULL) and the
 *   per-block best (value, first index) of rows below n_best into part, for
 *   cu_argmax_final. */
void cu_gemv_gated(const dmat *W, const float *o, const float *z, const float *gnorm, int dv,
                   float eps, float *y, cudaStream_t st);
void cu_gemv_argmax(const dmat *W, const float *x, const float *norm, float eps, float *logits,
                    int n_best, float *part, int32_t *out, cudaStream_t st);

/* Whether the matmul kernels take W (column count a multiple of 32). */
bool cu_matmul_supports(const dmat *W);

/* x[t] = E[ids[t]] as float32. */
void cu_embed(const dmat *E, const int32_t *ids, int T, float *x, cudaStream_t st);

/* out[t] = rms(in[t]) * w, T rows of n. */
void cu_rmsnorm(const float *in, const float *w, float eps, int T, int n, float *out,
                cudaStream_t st);

/* GDN, T tokens at *pos (device). xin: [T, ldx] projections (qkv first, z
 * at zoff, b at boff, a at aoff); conv_state [K, C] a ring of the last
 * inputs (position p in slot p % K) updated; qkv_out [T, C] scratch; S [nv]
 * [dv][dk] (each value column's dk rows contiguous) updated; o [T, nv*dv]
 * the output, gated and normed unless raw (then cu_gemv_gated does it).
 * chunk_ws (may be NULL): T > 1 runs the chunked form there (gdn_chunk.cu,
 * cu_gdn_chunk_ws_floats(c, T) floats), else the recurrence token by token. */
void cu_gdn(const q35_config *c, const dlayer *L, const float *xin, int ldx, int T, const int *pos,
            float *conv_state, float *qkv_out, float *S, float *o, bool raw, float *chunk_ws,
            cudaStream_t st);
/* Whether cu_gdn fuses a one-token step into one kernel (raw output). */
bool cu_gdn_fused(const q35_config *c);

/* Attention, T tokens at *pos (device): qkv [T, ldq] projections; the keys
 * and values go into kc/vc ([n_ctx, nkv*d]) at pos..pos+T-1; o [T, nh*d]. */
void cu_attn(const q35_config *c, const dlayer *L, float *qkv, int ldq, int T, const int *pos,
             float *kc, float *vc, float *o, cudaStream_t st);

/* *out = argmax of x[0..n) (first index of the largest), via part
 * ([2 * 1024] floats of scratch). */
void cu_argmax(const float *x, int n, float *part, int32_t *out, cudaStream_t st);
/* The second pass over nparts (value, index) pairs in part. */
void cu_argmax_final(const float *part, int nparts, int32_t *out, cudaStream_t st);
#define CU_PARTS 1024

/* Sampling on the device (SPEC section 6, as runtime/sampler.c): the
 * repetition penalty over the distinct ids of recent[0..n_recent), then
 * temperature (<= 0: the argmax), top-k (1..CU_TOPK_MAX, ties with the k-th
 * kept), top-p and the draw with the uniform u, over logits[0..n_valid).
 * *out = the id; -1 when no logit is finite; -2 when ids tied with the k-th
 * may be missing from the candidates (the caller then samples on the host;
 * the logits are left as they came in). scratch: cu_sample_scratch_bytes().
 * cu_sample_fits says which settings it takes. */
typedef struct cu_sample_params {
    float temperature, top_p, penalty;
    int top_k, n_valid, n_recent;
    double u;
} cu_sample_params;
#define CU_TOPK_MAX 64
#define CU_RECENT_MAX 1024
size_t cu_sample_scratch_bytes(void);
/* Whether these settings sample on the device (else the host does). */
bool cu_sample_fits(int n_valid, float temperature, int top_k);
/* p, recent: device memory; n_valid as in *p. *out = -2: see sample.cu. */
void cu_sample(float *logits, const cu_sample_params *p, int n_valid, const int32_t *recent,
               void *scratch, int32_t *out, cudaStream_t st);

/* The one-kernel decode step (mega.cu): a layer's weights and its part of
 * the state (conv window and DeltaNet state, or its KV cache), in device
 * memory for the kernel to walk. */
typedef struct cu_mega_layer {
    dlayer D;
    float *conv, *ssm, *kc, *vc;
    int slot; /* its index among the DeltaNet or the attention layers */
} cu_mega_layer;
/* Blocks the kernel runs with for this model (one per multiprocessor), 0
 * where it does not take the model (mixed matrix forms, shapes) or
 * Q35_CUDA_MEGA=0. */
int cu_mega_blocks(const cuda_model *cm);
/* Bytes of device memory bar needs (16; more with Q35_CUDA_MEGA_PROF=1,
 * where the kernel sums its phases' clocks after the counter: zero it
 * once, print with cu_mega_prof_report, to stderr). */
size_t cu_mega_bar_bytes(void);
bool cu_mega_prof_on(void);
void cu_mega_prof_report(const cuda_model *cm, int blocks, const unsigned *bar);
/* x = the layers applied to x (one token at *pos): layers [n_layers] in
 * device memory, proj/o/mlp the forward pass's scratch, bar one unsigned
 * of device memory (zeroed here, on the stream). A cooperative launch.
 * B > 1: one token in each of B streams (see cu_batch_stream, declared
 * below): stream b's rows at x + b * hidden, proj + b * ldp, o + b * ldo,
 * mlp + b * intermediate, its position and state in tab[b] (layer slot i
 * at conv + i * conv_n ...); pos and the layers' own state pointers are
 * then unused. */
struct cu_batch_stream;
cudaError_t cu_mega_layers(const cuda_model *cm, int blocks, const cu_mega_layer *layers,
                           const struct cu_batch_stream *tab, int B, float *x, float *proj, int ldp,
                           float *o, int ldo, float *mlp, const int *pos, size_t conv_n,
                           size_t ssm_n, unsigned *bar, cudaStream_t st);

/* Batched decode (batch.cu): one token in each of B states. A stream's
 * row of the table: its position, its n_ctx and the bases of its conv
 * windows, DeltaNet states and KV cache (state.cu's layout: layer slot i
 * at conv + i * conv_n, ssm + i * ssm_n, kv + i * 2 * n_ctx * kvw). proj
 * rows ldp apart, one a stream; o [B, nv * dv] (raw, for gdn_norm) or
 * [B, nh * d] (gated). */
typedef struct cu_batch_stream {
    int pos, n_ctx;
    float *conv, *ssm, *kv;
} cu_batch_stream;
void cu_gdn_step_batch(const q35_config *c, const dlayer *L, int slot, const float *proj, int ldp,
                       const cu_batch_stream *tab, int B, size_t conv_n, size_t ssm_n, float *o,
                       cudaStream_t st);
void cu_attn_dec_batch(const q35_config *c, const dlayer *L, int slot, const float *proj, int ldp,
                       const cu_batch_stream *tab, int B, float *o, cudaStream_t st);
/* Whether the batched mixers take these shapes. */
bool cu_batch_supported(const q35_config *c);
/* o[t, :] = rms(o[t, :]) * w * silu(z) per head for T rows (gdn.cu's
 * output norm and gate; z at xin + t * ldx + zoff). */
void cu_gdn_norm(const q35_config *c, const dlayer *L, float *o, int T, const float *xin, int ldx,
                 cudaStream_t st);
/* out[b] = argmax of x[b * ld .. b * ld + n) (first index of the largest)
 * for B rows. */
void cu_argmax_rows(const float *x, int ld, int B, int n, int32_t *out, cudaStream_t st);

/* *pos += n (device-side, for graphs). */
void cu_advance(int *pos, int n, cudaStream_t st);

#endif
