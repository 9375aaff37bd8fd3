/* state.cu — the CUDA backend's state (forward/backend.h): one sequence's
 * DeltaNet conv windows and recurrent states and the attention KV caches,
 * all in device memory, the scratch of a forward chunk, and the forward
 * pass itself as a sequence of launches on the state's own stream:
 *
 *     x = E[token]
 *     per layer:  [norm + in-projections] [mixer] [out-projection + residual]
 *                 [norm + gate|up + SwiGLU] [down + residual]
 *     logits = W_out rms(x)            (or only the argmax, on the device)
 *
 * A one-token step is captured once as a CUDA graph (three variants: no
 * logits, logits copied out, greedy id copied out) and replayed: the token
 * id and position reach the device through pinned host memory that the
 * graph's first copies read, so the host sees only what it asked for.
 * Longer inputs run in chunks of up to CHUNK tokens through the GEMM path. */
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_internal.cuh"
#include "cuda/prefill.cuh"

#define CHUNK 512
#define Q35_BATCH_MAX 64 /* streams in one batched decode step (<= CHUNK) */
#define WS_FLOATS ((size_t)2 << 20)

enum { G_NONE = 0, G_LOGITS = 1, G_GREEDY = 2, G_SAMPLE = 3, G_COUNT };

typedef struct cuda_state {
    const q35_model *m;
    cuda_model *cm;
    int n_ctx, chunk, n_gdn, n_attn, lg_rows;
    cudaStream_t st;
    int *slot; /* per layer: its index among the DeltaNet or the attention layers */
    /* device */
    float *conv, *ssm, *kv; /* [n_gdn][K-1][C], [n_gdn][nv][dk][dv], [n_attn][2][n_ctx][kvw] */
    size_t conv_n, ssm_n, kvw;
    float *x, *proj, *o, *mlp, *tmp, *tmp2, *qkvc, *logits, *part;
    float *ws;     /* split-K partial sums (matmul.cu) */
    float *gdn_ws; /* the chunked DeltaNet's scratch (gdn_chunk.cu) */
    size_t ws_n;
    int *d_pos;
    int32_t *d_ids, *d_next, *d_recent;
    cu_sample_params *d_samp;
    void *d_sscratch;
    /* pinned host */
    int *h_pos;
    int32_t *h_ids, *h_next, *h_recent;
    cu_sample_params *h_samp;
    float *h_logits;
    int greedy_vocab; /* the n_vocab the greedy graph was captured for */
    int sample_valid; /* the n_valid the sampling graph was captured for */
    cudaGraphExec_t graph[G_COUNT];
    /* the one-kernel decode step (mega.cu), when mega_blocks > 0 */
    int mega_blocks;
    int proj_w, o_w;  /* row widths of proj and o (per token, per stream) */
    bool mega_failed; /* a launch of it failed: step_graph retries without */
    cu_mega_layer *d_layers;
    unsigned *d_bar;
    /* batched decode with this state first (decode_batch): the streams'
     * table and chosen ids, a graph per batch size */
    cu_batch_stream *h_tab, *d_tab;
    int32_t *h_bnext, *d_bnext;
    cudaGraphExec_t bgraph[Q35_BATCH_MAX + 1];
    int bgraph_vocab[Q35_BATCH_MAX + 1];
    void *allocs[32];
    int n_allocs;
    size_t bytes;
} cuda_state;

typedef struct cuda_snap {
    void *dev;
    size_t bytes;
    int pos;
} cuda_snap;

extern "C" int q35_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

static void *dalloc(cuda_state *s, size_t n, q35_err *e) {
    void *p = NULL;
    if (s->n_allocs == (int)(sizeof s->allocs / sizeof s->allocs[0])) {
        q35_err_set(e, Q35_ENOMEM, "cuda state: more allocations than allocs[] holds");
        return NULL;
    }
    cudaError_t rc = cudaMalloc(&p, n ? n : 16);
    if (rc != cudaSuccess) {
        cuda_fail(rc, "allocating a state", e);
        return NULL;
    }
    s->allocs[s->n_allocs++] = p;
    s->bytes += n;
    return p;
}

static void state_free(void *bs) {
    cuda_state *s = (cuda_state *)bs;
    if (!s) return;
    if (s->d_bar && cu_mega_prof_on() && cudaStreamSynchronize(s->st) == cudaSuccess)
        cu_mega_prof_report(s->cm, s->mega_blocks, s->d_bar);
    for (int g = 0; g < G_COUNT; g++)
        if (s->graph[g]) cudaGraphExecDestroy(s->graph[g]);
    for (int b = 0; b <= Q35_BATCH_MAX; b++)
        if (s->bgraph[b]) cudaGraphExecDestroy(s->bgraph[b]);
    cudaFreeHost(s->h_tab);
    cudaFreeHost(s->h_bnext);
    for (int i = 0; i < s->n_allocs; i++)
        cudaFree(s->allocs[i]);
    cudaFreeHost(s->h_pos);
    cudaFreeHost(s->h_ids);
    cudaFreeHost(s->h_next);
    cudaFreeHost(s->h_logits);
    cudaFreeHost(s->h_recent);
    cudaFreeHost(s->h_samp);
    if (s->st) cudaStreamDestroy(s->st);
    free(s->slot);
    free(s);
}

static float *kc_of(cuda_state *s, int l) {
    return s->kv + (size_t)s->slot[l] * 2 * s->n_ctx * s->kvw;
}

/* What this backend cannot run, as a message; NULL when it can. */
static const char *unsupported(const cuda_model *cm) {
    const q35_config *c = &cm->cfg;
    if (c->head_dim % 32 || c->head_dim > 256) return "head_dim must be a multiple of 32, <= 256";
    if (c->rotary_dim > c->head_dim) return "rotary dims exceed head_dim";
    if (c->lin_k_dim % 8 || c->lin_k_dim > 128) return "linear_key_head_dim must be 8k, <= 128";
    if (c->lin_v_dim % 4 || (c->lin_v_dim % 32 && c->lin_v_dim > 128))
        return "linear_value_head_dim must be 4k, and 32k above 128";
    if (c->conv_kernel < 2 || c->conv_kernel > 8) return "conv kernel must be 2..8";
    if (c->lin_v_heads > 128 || c->lin_v_heads % c->lin_k_heads)
        return "linear value heads must be <= 128 and a multiple of the key heads";
    if (!cu_matmul_supports(&cm->embed) || !cu_matmul_supports(&cm->lm_head))
        return "embedding width must be a multiple of 32";
    for (int l = 0; l < c->n_layers; l++) {
        const dlayer *D = &cm->layers[l];
        const dmat *ms[4] = {&D->w_gu, &D->w_down, D->full_attn ? &D->w_qkv : &D->w_in,
                             D->full_attn ? &D->w_o : &D->w_out};
        for (int i = 0; i < 4; i++)
            if (!cu_matmul_supports(ms[i])) return "a matrix width is not a multiple of 32";
    }
    return NULL;
}

static void *state_new(const q35_model *m, int n_ctx, size_t *bytes, q35_err *e) {
    cuda_model *cm = cuda_model_get(m, e);
    if (!cm) return NULL;
    const char *why = unsupported(cm);
    if (why) {
        q35_err_set(e, Q35_EINVAL, "cuda: this model's shapes are not supported: %s", why);
        return NULL;
    }
    const q35_config *c = &cm->cfg;
    cuda_state *s = (cuda_state *)calloc(1, sizeof *s);
    if (!s || !(s->slot = (int *)calloc((size_t)c->n_layers, sizeof(int)))) {
        free(s);
        q35_err_set(e, Q35_ENOMEM, "cuda: out of host memory");
        return NULL;
    }
    s->m = m;
    s->cm = cm;
    s->n_ctx = n_ctx;
    s->chunk = n_ctx < CHUNK ? n_ctx : CHUNK;
    for (int l = 0; l < c->n_layers; l++)
        s->slot[l] = c->layer_full[l] ? s->n_attn++ : s->n_gdn++;
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, V = (size_t)c->vocab_size;
    size_t C = (size_t)q35_config_conv_channels(c), K = (size_t)c->conv_kernel;
    size_t nv = (size_t)c->lin_v_heads, dk = (size_t)c->lin_k_dim, dv = (size_t)c->lin_v_dim;
    size_t nh = (size_t)c->n_heads, d = (size_t)c->head_dim, nkv = (size_t)c->n_kv_heads;
    size_t B = (size_t)s->chunk;
    s->kvw = nkv * d;
    s->conv_n = K * C; /* a ring of K inputs (gdn.cu) */
    s->ssm_n = nv * dk * dv;
    size_t proj = C + nv * dv + 2 * nv;
    if (nh * 2 * d + 2 * nkv * d > proj) proj = nh * 2 * d + 2 * nkv * d;
    size_t ow = nv * dv > nh * d ? nv * dv : nh * d;
    size_t tw = H > ow ? H : ow;
    s->proj_w = (int)proj;
    s->o_w = (int)ow;
    s->lg_rows = (int)((1u << 24) / V);
    if (s->lg_rows < 1) s->lg_rows = 1;
    if (s->lg_rows > s->chunk) s->lg_rows = s->chunk;
    cudaError_t rc = cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking);
    if (rc != cudaSuccess) {
        cuda_fail(rc, "creating a stream", e);
        s->st = NULL;
        state_free(s);
        return NULL;
    }
    bool ok = (s->conv = (float *)dalloc(s, (size_t)s->n_gdn * s->conv_n * 4, e)) &&
              (s->ssm = (float *)dalloc(s, (size_t)s->n_gdn * s->ssm_n * 4, e)) &&
              (s->kv = (float *)dalloc(s, (size_t)s->n_attn * 2 * n_ctx * s->kvw * 4, e)) &&
              (s->x = (float *)dalloc(s, B * H * 4, e)) &&
              (s->proj = (float *)dalloc(s, B * proj * 4, e)) &&
              (s->o = (float *)dalloc(s, B * ow * 4, e)) &&
              (s->mlp = (float *)dalloc(s, B * I * 4, e)) &&
              (s->tmp = (float *)dalloc(s, B * tw * 4, e)) &&
              (s->tmp2 = (float *)dalloc(s, B * 2 * I * 4, e)) &&
              (s->qkvc = (float *)dalloc(s, B * C * 4, e)) &&
              (s->logits = (float *)dalloc(s, (size_t)s->lg_rows * V * 4, e)) &&
              (s->part = (float *)dalloc(s, 2 * CU_PARTS * 4, e)) &&
              (s->ws = (float *)dalloc(s, (s->ws_n = WS_FLOATS) * 4, e)) &&
              (s->d_pos = (int *)dalloc(s, 16, e)) && (s->d_ids = (int32_t *)dalloc(s, B * 4, e)) &&
              (s->d_next = (int32_t *)dalloc(s, 16, e)) &&
              (s->d_recent = (int32_t *)dalloc(s, CU_RECENT_MAX * 4, e)) &&
              (s->d_samp = (cu_sample_params *)dalloc(s, sizeof(cu_sample_params), e)) &&
              (s->d_sscratch = dalloc(s, cu_sample_scratch_bytes(), e)) &&
              (s->gdn_ws = (float *)dalloc(s, cu_gdn_chunk_ws_floats(c, s->chunk) * 4, e));
    if (ok) {
        rc = cudaMallocHost((void **)&s->h_pos, 16);
        if (rc == cudaSuccess) rc = cudaMallocHost((void **)&s->h_ids, B * 4);
        if (rc == cudaSuccess) rc = cudaMallocHost((void **)&s->h_next, 16);
        if (rc == cudaSuccess) rc = cudaMallocHost((void **)&s->h_logits, V * 4);
        if (rc == cudaSuccess) rc = cudaMallocHost((void **)&s->h_recent, CU_RECENT_MAX * 4);
        if (rc == cudaSuccess) rc = cudaMallocHost((void **)&s->h_samp, sizeof(cu_sample_params));
        if (rc != cudaSuccess) ok = !cuda_fail(rc, "allocating pinned memory", e);
    }
    if (ok) {
        rc = cudaMemsetAsync(s->kv, 0, (size_t)s->n_attn * 2 * n_ctx * s->kvw * 4, s->st);
        if (rc == cudaSuccess)
            rc = cudaMemsetAsync(s->conv, 0, (size_t)s->n_gdn * s->conv_n * 4, s->st);
        if (rc == cudaSuccess)
            rc = cudaMemsetAsync(s->ssm, 0, (size_t)s->n_gdn * s->ssm_n * 4, s->st);
        if (rc == cudaSuccess) rc = cudaStreamSynchronize(s->st);
        if (rc != cudaSuccess) ok = !cuda_fail(rc, "clearing a state", e);
    }
    if (ok && (s->mega_blocks = cu_mega_blocks(cm)) > 0) {
        size_t nl = (size_t)c->n_layers;
        cu_mega_layer *hl = (cu_mega_layer *)calloc(nl, sizeof *hl);
        ok = hl && (s->d_layers = (cu_mega_layer *)dalloc(s, nl * sizeof *hl, e)) &&
             (s->d_bar = (unsigned *)dalloc(s, cu_mega_bar_bytes(), e));
        if (ok && cudaMemset(s->d_bar, 0, cu_mega_bar_bytes()) != cudaSuccess)
            ok = !cuda_fail(cudaGetLastError(), "clearing a state", e);
        if (!hl) q35_err_set(e, Q35_ENOMEM, "cuda: out of host memory");
        if (ok) {
            for (int l = 0; l < c->n_layers; l++) {
                hl[l].D = cm->layers[l];
                hl[l].slot = s->slot[l];
                if (c->layer_full[l]) {
                    hl[l].kc = kc_of(s, l);
                    hl[l].vc = hl[l].kc + (size_t)n_ctx * s->kvw;
                } else {
                    hl[l].conv = s->conv + (size_t)s->slot[l] * s->conv_n;
                    hl[l].ssm = s->ssm + (size_t)s->slot[l] * s->ssm_n;
                }
            }
            rc = cudaMemcpy(s->d_layers, hl, nl * sizeof *hl, cudaMemcpyHostToDevice);
            if (rc != cudaSuccess) ok = !cuda_fail(rc, "uploading the layer table", e);
        }
        free(hl);
    }
    if (!ok) {
        state_free(s);
        return NULL;
    }
    *bytes = s->bytes + V * 4 + B * 4;
    return s;
}

static void clear(void *bs) {
    cuda_state *s = (cuda_state *)bs;
    cudaMemsetAsync(s->conv, 0, (size_t)s->n_gdn * s->conv_n * 4, s->st);
    cudaMemsetAsync(s->ssm, 0, (size_t)s->n_gdn * s->ssm_n * 4, s->st);
    cudaStreamSynchronize(s->st);
}

/* Launches a chunk of T tokens (ids in d_ids, position in d_pos); logits
 * rows [first, T) into s->logits when want_logits (T - first <= lg_rows). */
static void forward(cuda_state *s, int T, bool want_logits, int first) {
    const cuda_model *cm = s->cm;
    const q35_config *c = &cm->cfg;
    cudaStream_t st = s->st;
    int H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    int nv = c->lin_v_heads, dv = c->lin_v_dim, nh = c->n_heads, d = c->head_dim;
    float eps = c->rms_eps;
    cu_embed(&cm->embed, s->d_ids, T, s->x, st);
    bool mega = T == 1 && s->mega_blocks > 0; /* every layer in one launch */
    if (mega && cu_mega_layers(cm, s->mega_blocks, s->d_layers, NULL, 1, s->x, s->proj, s->proj_w,
                               s->o, s->o_w, s->mlp, s->d_pos, s->conv_n, s->ssm_n, s->d_bar,
                               st) != cudaSuccess) {
        s->mega_failed = true; /* the launch-per-phase step from now on */
        mega = false;
    }
    for (int l = 0; l < c->n_layers && !mega; l++) {
        const dlayer *D = &cm->layers[l];
        if (!D->full_attn) {
            int ld = D->w_in.rows;
            cu_matmul(&D->w_in, s->x, T, H, s->proj, ld, MM_STORE, D->attn_norm, eps, s->tmp, NULL,
                      s->ws, s->ws_n, st);
            bool fused = T == 1 && cu_gdn_fused(c);
            cu_gdn(c, D, s->proj, ld, T, s->d_pos, s->conv + (size_t)s->slot[l] * s->conv_n,
                   s->qkvc, s->ssm + (size_t)s->slot[l] * s->ssm_n, s->o, fused,
                   T > 1 && cu_gdn_chunk_on() ? s->gdn_ws : NULL, st);
            if (fused) /* the output norm and gate in the projection's prologue */
                cu_gemv_gated(&D->w_out, s->o, s->proj + q35_config_conv_channels(c), D->gdn_norm,
                              dv, eps, s->x, st);
            else
                cu_matmul(&D->w_out, s->o, T, nv * dv, s->x, H, MM_ADD, NULL, eps, NULL, NULL,
                          s->ws, s->ws_n, st);
        } else {
            int ld = D->w_qkv.rows;
            float *kc = kc_of(s, l), *vc = kc + (size_t)s->n_ctx * s->kvw;
            cu_matmul(&D->w_qkv, s->x, T, H, s->proj, ld, MM_STORE, D->attn_norm, eps, s->tmp, NULL,
                      s->ws, s->ws_n, st);
            cu_attn(c, D, s->proj, ld, T, s->d_pos, kc, vc, s->o, st);
            cu_matmul(&D->w_o, s->o, T, nh * d, s->x, H, MM_ADD, NULL, eps, NULL, NULL, s->ws,
                      s->ws_n, st);
        }
        cu_matmul(&D->w_gu, s->x, T, H, s->mlp, I, MM_GLU, D->mlp_norm, eps, s->tmp, s->tmp2, s->ws,
                  s->ws_n, st);
        cu_matmul(&D->w_down, s->mlp, T, I, s->x, H, MM_ADD, NULL, eps, NULL, NULL, s->ws, s->ws_n,
                  st);
    }
    if (want_logits)
        cu_matmul(&cm->lm_head, s->x + (size_t)first * H, T - first, H, s->logits, V, MM_STORE,
                  cm->final_norm, eps, s->tmp, NULL, s->ws, s->ws_n, st);
}

/* The greedy step's head: the argmax of the logits (below n_vocab) in the
 * GEMV's epilogue, without storing the logits. */
static void head_greedy(cuda_state *s, int n_vocab) {
    const cuda_model *cm = s->cm;
    cu_gemv_argmax(&cm->lm_head, s->x, cm->final_norm, cm->cfg.rms_eps, NULL, n_vocab, s->part,
                   s->d_next, s->st);
}

static int check(cuda_state *s, const char *what, q35_err *e) {
    if (s->mega_failed && s->mega_blocks > 0) { /* not a step's error: retried without */
        cudaGetLastError();
        s->mega_blocks = 0;
    }
    cudaError_t rc = cudaGetLastError();
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(s->st);
    return rc == cudaSuccess ? Q35_OK : cuda_fail(rc, what, e);
}

/* One token through the captured graph of kind g (captured on first use). */
static int step_graph(cuda_state *s, int g, q35_err *e) {
    if (!s->graph[g]) {
        cudaGraph_t graph = NULL;
        cudaError_t rc = cudaStreamBeginCapture(s->st, cudaStreamCaptureModeThreadLocal);
        if (rc != cudaSuccess) return cuda_fail(rc, "capturing the decode step", e);
        cudaMemcpyAsync(s->d_pos, s->h_pos, sizeof(int), cudaMemcpyHostToDevice, s->st);
        cudaMemcpyAsync(s->d_ids, s->h_ids, sizeof(int32_t), cudaMemcpyHostToDevice, s->st);
        if (g != G_SAMPLE) forward(s, 1, g == G_LOGITS, 0);
        if (g == G_LOGITS)
            cudaMemcpyAsync(s->h_logits, s->logits, (size_t)s->cm->cfg.vocab_size * 4,
                            cudaMemcpyDeviceToHost, s->st);
        if (g == G_GREEDY) {
            head_greedy(s, s->greedy_vocab);
            cudaMemcpyAsync(s->h_next, s->d_next, sizeof(int32_t), cudaMemcpyDeviceToHost, s->st);
        }
        if (g == G_SAMPLE) {
            cudaMemcpyAsync(s->d_samp, s->h_samp, sizeof(cu_sample_params), cudaMemcpyHostToDevice,
                            s->st);
            cudaMemcpyAsync(s->d_recent, s->h_recent, CU_RECENT_MAX * 4, cudaMemcpyHostToDevice,
                            s->st);
            forward(s, 1, true, 0);
            cu_sample(s->logits, s->d_samp, s->sample_valid, s->d_recent, s->d_sscratch, s->d_next,
                      s->st);
            cudaMemcpyAsync(s->h_next, s->d_next, sizeof(int32_t), cudaMemcpyDeviceToHost, s->st);
        }
        rc = cudaStreamEndCapture(s->st, &graph);
        if (rc == cudaSuccess) rc = cudaGraphInstantiate(&s->graph[g], graph, 0);
        if (graph) cudaGraphDestroy(graph);
        if (rc != cudaSuccess) {
            s->graph[g] = NULL;
            if (s->mega_failed && s->mega_blocks > 0) { /* once more, a launch per phase */
                cudaGetLastError();
                s->mega_blocks = 0;
                return step_graph(s, g, e);
            }
            return cuda_fail(rc, "capturing the decode step", e);
        }
    }
    cudaError_t rc = cudaGraphLaunch(s->graph[g], s->st);
    if (rc != cudaSuccess) return cuda_fail(rc, "running the decode step", e);
    return check(s, "the decode step", e);
}

static bool graphs_off(void) {
    const char *v = getenv("Q35_CUDA_GRAPH");
    return v && !strcmp(v, "0");
}

static int eval(void *bs, int pos, const int32_t *ids, int n, float *logits, bool all_logits,
                q35_err *e) {
    cuda_state *s = (cuda_state *)bs;
    int V = s->cm->cfg.vocab_size, H = s->cm->cfg.hidden_size;
    for (int off = 0; off < n;) {
        int T = n - off < s->chunk ? n - off : s->chunk;
        bool last = off + T == n;
        bool want = logits && (all_logits || last);
        *s->h_pos = pos + off;
        memcpy(s->h_ids, ids + off, (size_t)T * sizeof(int32_t));
        if (T == 1 && !graphs_off()) {
            int rc = step_graph(s, want ? G_LOGITS : G_NONE, e);
            if (rc) return rc;
            if (want)
                memcpy(logits + (all_logits ? (size_t)off * V : 0), s->h_logits, (size_t)V * 4);
            off += T;
            continue;
        }
        cudaMemcpyAsync(s->d_pos, s->h_pos, sizeof(int), cudaMemcpyHostToDevice, s->st);
        cudaMemcpyAsync(s->d_ids, s->h_ids, (size_t)T * 4, cudaMemcpyHostToDevice, s->st);
        int first = all_logits ? 0 : T - 1;
        bool fits = T - first <= s->lg_rows;
        forward(s, T, want && fits, first);
        if (want && !fits) /* all rows asked for: the head in groups of lg_rows */
            for (int r = first; r < T; r += s->lg_rows) {
                int rows = T - r < s->lg_rows ? T - r : s->lg_rows;
                cu_matmul(&s->cm->lm_head, s->x + (size_t)r * H, rows, H, s->logits, V, MM_STORE,
                          s->cm->final_norm, s->cm->cfg.rms_eps, s->tmp, NULL, s->ws, s->ws_n,
                          s->st);
                cudaMemcpyAsync(logits + (size_t)(off + r) * V, s->logits, (size_t)rows * V * 4,
                                cudaMemcpyDeviceToHost, s->st);
            }
        else if (want)
            cudaMemcpyAsync(logits + (all_logits ? (size_t)off * V : 0), s->logits,
                            (size_t)(T - first) * V * 4, cudaMemcpyDeviceToHost, s->st);
        int rc = check(s, "a forward chunk", e);
        if (rc) return rc;
        off += T;
    }
    return Q35_OK;
}

static int decode_greedy(void *bs, int pos, int32_t id, int n_vocab, int32_t *next, q35_err *e) {
    cuda_state *s = (cuda_state *)bs;
    if (s->graph[G_GREEDY] && s->greedy_vocab != n_vocab) {
        cudaGraphExecDestroy(s->graph[G_GREEDY]);
        s->graph[G_GREEDY] = NULL;
    }
    s->greedy_vocab = n_vocab;
    *s->h_pos = pos;
    s->h_ids[0] = id;
    int rc = step_graph(s, G_GREEDY, e);
    if (!rc) *next = *s->h_next;
    return rc;
}

static int decode_sample(void *bs, int pos, int32_t id, const q35_backend_sampling *smp,
                         int32_t *next, float *logits, q35_err *e) {
    cuda_state *s = (cuda_state *)bs;
    int V = s->cm->cfg.vocab_size;
    if (!cu_sample_fits(smp->n_valid, smp->temperature, smp->top_k) ||
        smp->n_recent > CU_RECENT_MAX) { /* the host samples */
        int rc = eval(bs, pos, &id, 1, logits, false, e);
        if (!rc) *next = -1;
        return rc;
    }
    if (s->graph[G_SAMPLE] && s->sample_valid != smp->n_valid) {
        cudaGraphExecDestroy(s->graph[G_SAMPLE]);
        s->graph[G_SAMPLE] = NULL;
    }
    s->sample_valid = smp->n_valid;
    cu_sample_params *p = s->h_samp;
    p->temperature = smp->temperature;
    p->top_p = smp->top_p;
    p->penalty = smp->penalty;
    p->top_k = smp->top_k;
    p->n_valid = smp->n_valid;
    p->n_recent = smp->n_recent;
    p->u = smp->u;
    if (smp->n_recent > 0) memcpy(s->h_recent, smp->recent, (size_t)smp->n_recent * 4);
    *s->h_pos = pos;
    s->h_ids[0] = id;
    int rc = step_graph(s, G_SAMPLE, e);
    if (rc) return rc;
    *next = *s->h_next;
    if (*next == -2) { /* ties the device could not settle: the row to the host */
        cudaError_t cr = cudaMemcpy(logits, s->logits, (size_t)V * 4, cudaMemcpyDeviceToHost);
        if (cr != cudaSuccess) return cuda_fail(cr, "copying logits", e);
        *next = -1;
    }
    return Q35_OK;
}

/* ---------------------------------------------------------- batched decode
 *
 * One token in each of B states (s first, its scratch used for all): the
 * projections as [B, cols] GEMMs (matmul.cu, T = B rows, one a stream),
 * the mixers per stream in one grid each (batch.cu) over the states'
 * own windows, DeltaNet states and KV caches, then the head over the B
 * rows and each row's argmax. Captured once per B as a graph whose first
 * copies bring the streams' table and ids from pinned memory, so any set
 * of B states replays it. */
static void forward_batch(cuda_state *s, int B, int n_vocab) {
    const cuda_model *cm = s->cm;
    const q35_config *c = &cm->cfg;
    cudaStream_t st = s->st;
    int H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    int nv = c->lin_v_heads, dv = c->lin_v_dim, nh = c->n_heads, d = c->head_dim;
    float eps = c->rms_eps;
    cu_embed(&cm->embed, s->d_ids, B, s->x, st);
    /* the one-kernel step over the B streams with Q35_CUDA_MEGA_BATCH=1
     * (off by default: on an H100, 16 streams ran 2836 tok/s through it
     * (bf16) against 5863 through the GEMMs below, same run; 4 streams 1702
     * against 1780) */
    const char *mb = getenv("Q35_CUDA_MEGA_BATCH");
    bool mega =
        mb && !strcmp(mb, "1") && s->mega_blocks > 0 && !s->mega_failed &&
        cu_mega_layers(cm, s->mega_blocks, s->d_layers, s->d_tab, B, s->x, s->proj, s->proj_w, s->o,
                       s->o_w, s->mlp, s->d_pos, s->conv_n, s->ssm_n, s->d_bar, st) == cudaSuccess;
    if (mb && !strcmp(mb, "1") && s->mega_blocks > 0 && !mega) s->mega_failed = true;
    for (int l = 0; l < c->n_layers && !mega; l++) {
        const dlayer *D = &cm->layers[l];
        if (!D->full_attn) {
            int ld = D->w_in.rows;
            cu_matmul(&D->w_in, s->x, B, H, s->proj, ld, MM_STORE, D->attn_norm, eps, s->tmp, NULL,
                      s->ws, s->ws_n, st);
            cu_gdn_step_batch(c, D, s->slot[l], s->proj, ld, s->d_tab, B, s->conv_n, s->ssm_n, s->o,
                              st);
            cu_gdn_norm(c, D, s->o, B, s->proj, ld, st);
            cu_matmul(&D->w_out, s->o, B, nv * dv, s->x, H, MM_ADD, NULL, eps, NULL, NULL, s->ws,
                      s->ws_n, st);
        } else {
            int ld = D->w_qkv.rows;
            cu_matmul(&D->w_qkv, s->x, B, H, s->proj, ld, MM_STORE, D->attn_norm, eps, s->tmp, NULL,
                      s->ws, s->ws_n, st);
            cu_attn_dec_batch(c, D, s->slot[l], s->proj, ld, s->d_tab, B, s->o, st);
            cu_matmul(&D->w_o, s->o, B, nh * d, s->x, H, MM_ADD, NULL, eps, NULL, NULL, s->ws,
                      s->ws_n, st);
        }
        cu_matmul(&D->w_gu, s->x, B, H, s->mlp, I, MM_GLU, D->mlp_norm, eps, s->tmp, s->tmp2, s->ws,
                  s->ws_n, st);
        cu_matmul(&D->w_down, s->mlp, B, I, s->x, H, MM_ADD, NULL, eps, NULL, NULL, s->ws, s->ws_n,
                  st);
    }
    cu_matmul(&cm->lm_head, s->x, B, H, s->logits, V, MM_STORE, cm->final_norm, eps, s->tmp, NULL,
              s->ws, s->ws_n, st);
    cu_argmax_rows(s->logits, V, B, n_vocab, s->d_bnext, st);
}

static int decode_batch(void **bss, const int *pos, const int32_t *ids, int B, int n_vocab,
                        int32_t *next, q35_err *e) {
    cuda_state *s = (cuda_state *)bss[0];
    if (B == 1) return decode_greedy(s, pos[0], ids[0], n_vocab, next, e);
    if (B > Q35_BATCH_MAX || B > s->chunk || B > s->lg_rows || !cu_batch_supported(&s->cm->cfg))
        return q35_err_set(e, Q35_EINVAL,
                           "cuda batched decode: %d streams (at most %d here, the first state's "
                           "n_ctx permitting)",
                           B, s->chunk < s->lg_rows ? s->chunk : s->lg_rows);
    if (!s->h_tab || !s->h_bnext || !s->d_tab || !s->d_bnext) { /* the first batch it leads */
        cudaError_t rc = cudaSuccess;
        if (!s->h_tab)
            rc = cudaMallocHost((void **)&s->h_tab, Q35_BATCH_MAX * sizeof(cu_batch_stream));
        if (rc == cudaSuccess && !s->h_bnext)
            rc = cudaMallocHost((void **)&s->h_bnext, Q35_BATCH_MAX * 4);
        if (rc != cudaSuccess) return cuda_fail(rc, "allocating the batch tables", e);
        if (!s->d_tab &&
            !(s->d_tab = (cu_batch_stream *)dalloc(s, Q35_BATCH_MAX * sizeof(cu_batch_stream), e)))
            return Q35_ENOMEM;
        if (!s->d_bnext && !(s->d_bnext = (int32_t *)dalloc(s, Q35_BATCH_MAX * 4, e)))
            return Q35_ENOMEM;
    }
    for (int b = 0; b < B; b++) {
        cuda_state *t = (cuda_state *)bss[b];
        if (t->cm != s->cm)
            return q35_err_set(e, Q35_EINVAL, "cuda batched decode: states of other models");
        s->h_tab[b].pos = pos[b];
        s->h_tab[b].n_ctx = t->n_ctx;
        s->h_tab[b].conv = t->conv;
        s->h_tab[b].ssm = t->ssm;
        s->h_tab[b].kv = t->kv;
        s->h_ids[b] = ids[b];
    }
    if (s->bgraph[B] && s->bgraph_vocab[B] != n_vocab) {
        cudaGraphExecDestroy(s->bgraph[B]);
        s->bgraph[B] = NULL;
    }
    if (!s->bgraph[B]) {
        cudaGraph_t graph = NULL;
        cudaError_t rc = cudaStreamBeginCapture(s->st, cudaStreamCaptureModeThreadLocal);
        if (rc != cudaSuccess) return cuda_fail(rc, "capturing the batched step", e);
        cudaMemcpyAsync(s->d_tab, s->h_tab, (size_t)B * sizeof(cu_batch_stream),
                        cudaMemcpyHostToDevice, s->st);
        cudaMemcpyAsync(s->d_ids, s->h_ids, (size_t)B * 4, cudaMemcpyHostToDevice, s->st);
        forward_batch(s, B, n_vocab);
        cudaMemcpyAsync(s->h_bnext, s->d_bnext, (size_t)B * 4, cudaMemcpyDeviceToHost, s->st);
        rc = cudaStreamEndCapture(s->st, &graph);
        if (rc == cudaSuccess) rc = cudaGraphInstantiate(&s->bgraph[B], graph, 0);
        if (graph) cudaGraphDestroy(graph);
        if (rc != cudaSuccess) {
            s->bgraph[B] = NULL;
            if (s->mega_failed && s->mega_blocks > 0) { /* once more, a launch per phase */
                cudaGetLastError();
                s->mega_blocks = 0;
                return decode_batch(bss, pos, ids, B, n_vocab, next, e);
            }
            return cuda_fail(rc, "capturing the batched step", e);
        }
        s->bgraph_vocab[B] = n_vocab;
    }
    cudaError_t rc = cudaGraphLaunch(s->bgraph[B], s->st);
    if (rc != cudaSuccess) return cuda_fail(rc, "running the batched step", e);
    int r = check(s, "the batched step", e);
    if (!r) memcpy(next, s->h_bnext, (size_t)B * sizeof(int32_t));
    return r;
}

/* -------------------------------------------------------------- snapshots */

/* Copies between the state and a snapshot's flat device form: the DeltaNet
 * windows and states, then per attention layer the keys and values of the
 * positions below pos. */
static size_t snap_copy(cuda_state *s, char *flat, int pos, bool to_snap) {
    size_t off = 0, n;
    struct {
        void *live;
        size_t bytes;
    } parts[2] = {{s->conv, (size_t)s->n_gdn * s->conv_n * 4},
                  {s->ssm, (size_t)s->n_gdn * s->ssm_n * 4}};
    for (int i = 0; i < 2; i++) {
        if (flat && parts[i].bytes)
            cudaMemcpyAsync(to_snap ? flat + off : parts[i].live,
                            to_snap ? parts[i].live : flat + off, parts[i].bytes,
                            cudaMemcpyDeviceToDevice, s->st);
        off += parts[i].bytes;
    }
    n = (size_t)pos * s->kvw * 4;
    for (int a = 0; a < 2 * s->n_attn; a++) { /* keys, values of each layer */
        char *live = (char *)(s->kv + (size_t)a * s->n_ctx * s->kvw);
        if (flat && n)
            cudaMemcpyAsync(to_snap ? flat + off : live, to_snap ? live : flat + off, n,
                            cudaMemcpyDeviceToDevice, s->st);
        off += n;
    }
    return off;
}

static void *snapshot(void *bs, int pos, size_t *bytes, q35_err *e) {
    cuda_state *s = (cuda_state *)bs;
    cuda_snap *snap = (cuda_snap *)calloc(1, sizeof *snap);
    if (!snap) {
        q35_err_set(e, Q35_ENOMEM, "cuda snapshot: out of host memory");
        return NULL;
    }
    snap->pos = pos;
    snap->bytes = snap_copy(s, NULL, pos, true);
    cudaError_t rc = cudaMalloc(&snap->dev, snap->bytes ? snap->bytes : 16);
    if (rc != cudaSuccess) {
        free(snap);
        cuda_fail(rc, "allocating a snapshot", e);
        return NULL;
    }
    snap_copy(s, (char *)snap->dev, pos, true);
    if (check(s, "taking a snapshot", e)) {
        cudaFree(snap->dev);
        free(snap);
        return NULL;
    }
    *bytes = snap->bytes;
    return snap;
}

static int restore(void *bs, const void *sp, int pos, q35_err *e) {
    cuda_state *s = (cuda_state *)bs;
    const cuda_snap *snap = (const cuda_snap *)sp;
    snap_copy(s, (char *)snap->dev, snap->pos, false);
    return check(s, "restoring a snapshot", e);
}

static void snapshot_free(void *sp) {
    cuda_snap *snap = (cuda_snap *)sp;
    if (!snap) return;
    cudaFree(snap->dev);
    free(snap);
}

extern "C" const q35_backend q35_cuda_backend = {
    "cuda",  state_new,     state_free,    clear,         eval,         snapshot,
    restore, snapshot_free, decode_greedy, decode_sample, decode_batch,
};
