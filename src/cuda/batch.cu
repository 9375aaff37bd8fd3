/* batch.cu — the mixers of a batched decode step: one token in each of B
 * conversations (states) at once. The projections of the B tokens are one
 * [B, cols] product (matmul.cu's GEMM, the weights read once for all of
 * them); between them each stream's DeltaNet step or attention runs on its
 * own state, one grid for all streams (blockIdx.z / .y = the stream), with
 * the same device code as the one-token kernels (gdn_step.cuh,
 * attn_dec.cuh). Where each stream's state and position are comes from a
 * table in device memory (cu_batch_stream), filled by the host each step. */
#include "cuda/attn_dec.cuh"
#include "cuda/cuda_internal.cuh"
#include "cuda/gdn_step.cuh"

__global__ void step_batch_kernel(const float *proj, int ldp, const cu_batch_stream *tab, int slot,
                                  size_t conv_n, size_t ssm_n, int C, int K,
                                  const float *__restrict__ taps, int boff, int aoff, int nk,
                                  int nv, int dk, int dv, const float *__restrict__ A,
                                  const float *__restrict__ dt_bias, float *o) {
    pdl_wait();
    pdl_launch();
    int b = blockIdx.z;
    const cu_batch_stream *t = tab + b;
    gdn_step_body(blockIdx.x, blockIdx.y, proj + (size_t)b * ldp, &t->pos, C, K, taps,
                  t->conv + (size_t)slot * conv_n, boff, aoff, nk, nv, dk, dv, A, dt_bias,
                  t->ssm + (size_t)slot * ssm_n, o + (size_t)b * nv * dv);
}

void cu_gdn_step_batch(const q35_config *c, const dlayer *L, int slot, const float *proj, int ldp,
                       const cu_batch_stream *tab, int B, size_t conv_n, size_t ssm_n, float *o,
                       cudaStream_t st) {
    int C = q35_config_conv_channels(c), nk = c->lin_k_heads, nv = c->lin_v_heads;
    int dk = c->lin_k_dim, dv = c->lin_v_dim, K = c->conv_kernel;
    int boff = C + nv * dv, aoff = boff + nv;
    int cpb = dv % 32 == 0 ? 32 : dv; /* as cu_gdn's one-token step */
    cu_launch(step_batch_kernel, dim3(nv, dv / cpb, B), dim3(cpb * LPC), 0, st, proj, ldp, tab,
              slot, conv_n, ssm_n, C, K, L->conv_w, boff, aoff, nk, nv, dk, dv, L->A, L->dt_bias,
              o);
}

__global__ void __launch_bounds__(DW * 32)
    attn_batch_kernel(const float *proj, int ldp, const cu_batch_stream *tab, int slot, size_t kvw,
                      int nh, int nkv, int d, int r, double theta, float eps,
                      const float *__restrict__ qw, const float *__restrict__ kw, float *o) {
    pdl_wait();
    pdl_launch();
    int b = blockIdx.y;
    const cu_batch_stream *t = tab + b;
    float *kc = t->kv + (size_t)slot * 2 * t->n_ctx * kvw, *vc = kc + (size_t)t->n_ctx * kvw;
    attn_dec_body(blockIdx.x, proj + (size_t)b * ldp, &t->pos, nh, nkv, d, r, theta, eps, qw, kw,
                  kc, vc, o + (size_t)b * nh * d);
}

void cu_attn_dec_batch(const q35_config *c, const dlayer *L, int slot, const float *proj, int ldp,
                       const cu_batch_stream *tab, int B, float *o, cudaStream_t st) {
    int nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim;
    cu_launch(attn_batch_kernel, dim3(nh, B), dim3(DW * 32), 0, st, proj, ldp, tab, slot,
              (size_t)nkv * d, nh, nkv, d, c->rotary_dim, c->rope_theta, c->rms_eps, L->q_norm,
              L->k_norm, o);
}

bool cu_batch_supported(const q35_config *c) {
    return cu_gdn_fused(c) && 2 * c->head_dim <= DW * 32;
}
