/* forward.h — the inside of a q35_state and the blocks of the forward pass
 * (SPEC §2). state.c owns the state's memory and the public q35_state_*
 * API; forward.c runs the layers; gdn.c and attn.c are the two token
 * mixers. Nothing here allocates: every buffer is sized when the state is
 * made. */
#ifndef Q35_FORWARD_FORWARD_H
#define Q35_FORWARD_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/kv_convert.h"
#include "model/model.h"
#include "q35.h"

/* Cached positions widened to float32 at a time by the attention over a
 * 16-bit cache. */
#define Q35_KV_BLOCK 64

/* Tokens per forward chunk: a longer prompt is fed in chunks of this many,
 * which bounds the scratch memory while keeping the matmuls wide enough to
 * load each weight once per chunk rather than once per token. */
#define Q35_MAX_BATCH 128

/* The chunked DeltaNet form (gdn_chunk.c): tokens per chunk, and the
 * fewest tokens a run needs to take it rather than the token-by-token
 * recurrence, on the kernel sets where it measured faster (gdn.c;
 * BENCHMARKS.md "Forward: chunked DeltaNet, TTFT, memory"). */
#define Q35_GDN_CHUNK 16
#define Q35_GDN_CHUNK_MIN 16

/* One layer's share of a sequence. */
typedef struct q35_layer_state {
    float *conv; /* DeltaNet: last K-1 inputs of the conv, [K-1, C] */
    float *ssm;  /* DeltaNet: recurrent state S, [nv, dk, dv] */
    void *kc;    /* attention: keys after norm + RoPE, [n_ctx, nkv*d] of kv.type */
    void *vc;    /* attention: values, [n_ctx, nkv*d] of kv.type */
} q35_layer_state;

/* Scratch for one forward chunk of up to max_batch tokens. Row strides are
 * the widths named in the comments. The mixers' buffers and the MLP's
 * (gate, up) overlap, as do DeltaNet's and attention's own (state.c
 * layout): each is only valid inside the block that fills it. */
typedef struct q35_scratch {
    float *x;   /* [B, H]  the residual stream */
    float *h;   /* [B, H]  normed input of a block */
    float *out; /* [B, H]  a block's output before the residual add */
    /* DeltaNet */
    float *win;    /* [K-1+B, C]  conv state rows then this chunk's q|k|v inputs */
    float *conv_t; /* [K, C]  conv taps transposed, per layer call */
    float *qkv;    /* [B, C]  conv + silu output: q | k | v per token (= win: in place) */
    float *z;      /* [B, nv*dv] */
    float *gb;     /* [B, nv]  b, then beta */
    float *ga;     /* [B, nv]  a, then the decay exp(g) */
    float *gl;     /* [B, nv]  the log decay g (the chunked form) */
    float *o;      /* [B, max(nv*dv, nh*d)]  mixer output per head */
    /* attention */
    float *q;                 /* [B, nh*2d]  query | gate per head */
    float *kv;                /* [2, B, nkv*d]  this chunk's k, then v (16-bit caches) */
    float *rope_cs, *rope_sn; /* [B, r/2] */
    /* MLP */
    float *gate;  /* [B, I] */
    float *up;    /* [B, I] */
    void *packed; /* a matmul input in the kernel set's packed form */
    /* per thread */
    float *scores;   /* [n_threads, nh/nkv, n_ctx] */
    float *work;     /* [n_threads, dv] */
    float *gdn_work; /* [n_threads, q35_gdn_chunk_work] where prefill takes the chunked form */
    float *kvtmp;    /* [n_threads, Q35_KV_BLOCK + g, d]  cached rows widened to f32, partial o */
} q35_scratch;

/* A snapshot to fill during an evaluation: the state as it stands after
 * position pos (q35_state_eval_snapshots). */
typedef struct q35_capture {
    int pos;
    q35_snapshot *snap;
} q35_capture;
#define Q35_MAX_CAPTURES 64

struct q35_state {
    const q35_model *model;
    unsigned model_generation; /* the load this state was made for */
    int n_ctx, pos, max_batch;
    int attn_tb; /* tokens per attention work item (attn.c; sized in state.c) */
    const q35_kernels *k;
    /* the dtypes of the model's matrices: inputs are packed in the set's
     * float form only where one of them reads it (q35_acts_prepare_for) */
    q35_dtype_mask mm_dtypes;
    q35_threadpool *pool;
    q35_layer_state *layers; /* [n_layers] */
    q35_scratch sc;
    void *mem; /* one block holding recurrent states and scratch */
    size_t mem_bytes;
    void *kv_mem; /* the KV caches, [n_attn_layers, 2, n_ctx, nkv*d] of kv.type */
    size_t kv_bytes;
    q35_kv_codec kv;         /* the caches' element type (Q35_KV_CACHE; f16 unless set) */
    const q35_capture *caps; /* during q35_state_eval_snapshots only */
    int n_caps;
    /* a snapshot's data block whose pages are already backed
     * (q35_state_keep_spare): the next snapshot allocated takes it */
    float *spare;
    size_t spare_floats;
    /* a state on another device (backend.h): everything above but the
     * model, position and sizes stays empty */
    const struct q35_backend *be;
    void *be_state;
};

/* Keeps a spare snapshot data block for a snapshot at up to pos + extra
 * positions, its pages written now: a snapshot taken inside the next pass
 * (a turn's cut) then copies ~20 MB (the 0.8B's DeltaNet states) into
 * backed pages instead of ~5000 fresh ones faulted in before the first
 * token. For idle time (after a turn); no-op on a device state or when
 * the spare is big enough; an allocation failure leaves no spare. */
void q35_state_keep_spare(q35_state *s, int extra);

/* Where layer `layer`'s part (0: conv window or keys, 1: recurrent state or
 * values) sits in a snapshot's flat data. */
float *q35_snapshot_part(q35_snapshot *snap, const q35_state *s, int layer, int part);

/* Runs T (1 <= T <= max_batch) tokens, already validated, at s->pos, and
 * advances s->pos by T. logits: [T, V] rows when all_logits, else the last
 * position's row only; may be NULL. */
void q35_forward(const q35_model *m, q35_state *s, const int32_t *ids, int T, float *logits,
                 bool all_logits);

/* x ([T, cols]) as the input of the matmuls that follow, packed into the
 * state's buffer when the kernel set wants that (one input at a time;
 * spread.c: the q8 rows of a long chunk a row range per thread). */
q35_acts q35_state_acts(q35_state *s, const float *x, int T, int64_t cols);
/* Elementwise work over n floats, spread over the state's threads where n
 * is large, the same bits as the kernel set's one call (spread.c):
 * out = silu(gate) * up;  y += a * x. */
void q35_spread_silu_mul(q35_state *s, float *out, const float *gate, const float *up, int64_t n);
void q35_spread_axpy(q35_state *s, float *y, float a, const float *x, int64_t n);

/* The token mixers: read s->sc.h ([T, H]), write s->sc.out ([T, H]), update
 * the layer's state for positions s->pos .. s->pos+T-1. */
void q35_gdn_forward(const q35_model *m, q35_state *s, int layer, int T);
void q35_attn_forward(const q35_model *m, q35_state *s, int layer, int T);
/* The same where only rows first .. T-1 (first < T) of the output are
 * wanted: every token's key and value still go into the cache, but only
 * those tokens' queries, attention and output rows are computed (the
 * other rows of s->sc.out are left as they were). */
void q35_attn_forward_from(const q35_model *m, q35_state *s, int layer, int T, int first);

/* The DeltaNet recurrence of one value head over T tokens in the chunked
 * form: the same arguments and result as kernels.h gdn_scan (to float32
 * rounding), but with the log decay g_t (<= 0) where gdn_scan takes
 * exp(g_t), and `work` of q35_gdn_chunk_work(dk, dv) floats. */
void q35_gdn_chunked(const q35_kernels *k, float *S, int dk, int dv, int T, const float *q,
                     const float *kk, int64_t ldqk, const float *v, int64_t ldv, const float *g,
                     const float *beta, int64_t ldg, float *o, int64_t ldo, float *work);
size_t q35_gdn_chunk_work(int dk, int dv);
/* Whether prefill takes the chunked form with kernel set k (gdn.c). */
bool q35_gdn_chunked_pays(const q35_kernels *k);

#endif
