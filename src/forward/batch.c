/* batch.c — batched decode: one token for each of several sequences (each a
 * q35_state at its own position) through one pass over the weights.
 *
 * Decoding is bound by reading the weights, so n sequences that each read
 * every matrix once per token cost n passes; here the matrices multiply n
 * rows at once (T = n in every matmul: the DeltaNet projections, the MLP,
 * the output head), and only what is per sequence runs per sequence: the
 * DeltaNet conv window and recurrence (written out here for the T = 1 step,
 * in the same operation order as gdn.c, so each sequence gets what its own
 * decode step gives) and the whole attention mixer, which is called on each
 * sequence's own state (it is a small share of the weights: one layer in
 * four, and its KV cache layout stays attn.c's business).
 *
 * The batch object owns the scratch for max_seqs rows and a thread pool;
 * decoding allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "forward/forward.h"

struct q35_batch {
    const q35_model *m;
    unsigned generation;
    int max_seqs;
    const q35_kernels *k;
    q35_threadpool *pool;
    void *mem;
    float *x, *h, *out; /* [n, H] */
    float *xin, *qkv;   /* [n, C] conv inputs, conv + silu output */
    float *z;           /* [n, nv*dv] */
    float *gb, *ga;     /* [n, nv] */
    float *o;           /* [n, max(nv*dv, nh*d)] */
    float *gate, *up;   /* [n, I] */
    float *conv_t;      /* [K, C] */
    float *work;        /* [threads, dv] */
    void *packed;       /* matmul input in the kernel set's form */
};

typedef struct carver {
    char *base;
    size_t used;
} carver;

static void *carve(carver *cv, size_t bytes) {
    void *p = cv->base ? cv->base + cv->used : NULL;
    cv->used += (bytes + 63) / 64 * 64;
    return p;
}

static void layout(q35_batch *b, carver *cv) {
    const q35_config *c = &b->m->cfg;
    size_t n = (size_t)b->max_seqs, F = sizeof(float);
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    size_t C = (size_t)q35_config_conv_channels(c), K = (size_t)c->conv_kernel;
    size_t nv = (size_t)c->lin_v_heads, dv = (size_t)c->lin_v_dim;
    size_t nh = (size_t)c->n_heads, d = (size_t)c->head_dim;
    size_t ow = nv * dv > nh * d ? nv * dv : nh * d;
    b->x = carve(cv, n * H * F);
    b->h = carve(cv, n * H * F);
    b->out = carve(cv, n * H * F);
    b->xin = carve(cv, n * C * F);
    b->qkv = carve(cv, n * C * F);
    b->z = carve(cv, n * nv * dv * F);
    b->gb = carve(cv, n * nv * F);
    b->ga = carve(cv, n * nv * F);
    b->o = carve(cv, n * ow * F);
    b->gate = carve(cv, n * I * F);
    b->up = carve(cv, n * I * F);
    b->conv_t = carve(cv, K * C * F);
    b->work = carve(cv, (size_t)q35_threadpool_size(b->pool) * (dv ? dv : 1) * F);
    size_t widest = H > I ? H : I, pb = 0;
    if (ow > widest) widest = ow;
    for (int T = 1; T <= b->max_seqs; T++) {
        size_t s = q35_acts_bytes(b->k, T, (int64_t)widest);
        if (s > pb) pb = s;
    }
    b->packed = carve(cv, pb ? pb : 64);
}

q35_batch *q35_batch_new(const q35_model *m, int max_seqs, q35_err *e) {
    if (!m || !m->loaded) {
        q35_err_set(e, m ? Q35_ESTATE : Q35_EINVAL, "q35_batch_new: no loaded model");
        return NULL;
    }
    if (max_seqs < 1 || max_seqs > Q35_MAX_BATCH) {
        q35_err_set(e, Q35_EINVAL, "q35_batch_new: max_seqs %d is outside 1..%d", max_seqs,
                    Q35_MAX_BATCH);
        return NULL;
    }
    q35_batch *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->m = m;
    b->generation = m->generation;
    b->max_seqs = max_seqs;
    b->k = q35_kernels_pick(m->exact_kernels); /* the kernels its states use (state.c) */
    b->pool = q35_threadpool_new(m->n_threads, e);
    if (!b->pool) {
        free(b);
        return NULL;
    }
    carver cv = {NULL, 0};
    layout(b, &cv);
    if (posix_memalign(&b->mem, 64, cv.used) != 0) {
        b->mem = NULL;
        goto oom;
    }
    cv = (carver){b->mem, 0};
    layout(b, &cv);
    return b;
oom:
    q35_batch_free(b);
    q35_err_set(e, Q35_ENOMEM, "q35_batch_new: out of memory for %d sequences", max_seqs);
    return NULL;
}

void q35_batch_free(q35_batch *b) {
    if (!b) return;
    q35_threadpool_free(b->pool);
    free(b->mem);
    free(b);
}

int q35_batch_max_seqs(const q35_batch *b) {
    return b ? b->max_seqs : 0;
}

static q35_acts batch_acts(q35_batch *b, const float *x, int n, int64_t cols) {
    return q35_acts_prepare(b->k, x, cols, n, cols, b->packed);
}

/* ------------------------------------------------------------- DeltaNet */

typedef struct gdn_batch_job {
    q35_batch *b;
    q35_state *const *states;
    const q35_layer *L;
    int layer;
} gdn_batch_job;

/* Items are (sequence, value head) pairs: the recurrence step and the
 * output gate, as gdn_heads in gdn.c does them for T = 1. */
static void gdn_items(void *ctx, int64_t i0, int64_t i1, int tid) {
    const gdn_batch_job *g = ctx;
    q35_batch *b = g->b;
    const q35_config *c = &b->m->cfg;
    const q35_kernels *k = b->k;
    int nk = c->lin_k_heads, nv = c->lin_v_heads, dk = c->lin_k_dim, dv = c->lin_v_dim;
    int C = q35_config_conv_channels(c), rep = nv / nk;
    int64_t ldo = (int64_t)nv * dv;
    float *work = b->work + (int64_t)tid * dv;
    for (int64_t it = i0; it < i1; it++) {
        int i = (int)(it / nv), j = (int)(it % nv), kh = j / rep;
        const float *row = b->qkv + (int64_t)i * C;
        const float *q = row + kh * dk, *kk = row + nk * dk + kh * dk;
        const float *v = row + 2 * nk * dk + (int64_t)j * dv;
        float *o = b->o + (int64_t)i * ldo + (int64_t)j * dv;
        float *S = g->states[i]->layers[g->layer].ssm + (int64_t)j * dk * dv;
        k->gdn_scan(S, dk, dv, 1, q, kk, C, v, C, b->ga + (int64_t)i * nv + j,
                    b->gb + (int64_t)i * nv + j, nv, o, ldo, work);
        k->rmsnorm(o, o, g->L->gdn_norm, c->rms_eps, dv);
        k->silu_mul(o, b->z + (int64_t)i * ldo + (int64_t)j * dv, o, dv);
    }
}

static void gdn_batch(q35_batch *b, q35_state *const *states, int n, int layer) {
    const q35_model *m = b->m;
    const q35_config *c = &m->cfg;
    const q35_layer *L = &m->layers[layer];
    const q35_kernels *k = b->k;
    int H = c->hidden_size, nk = c->lin_k_heads, nv = c->lin_v_heads;
    int dk = c->lin_k_dim, dv = c->lin_v_dim, K = c->conv_kernel;
    int C = q35_config_conv_channels(c);

    q35_acts h = batch_acts(b, b->h, n, H);
    q35_matmul(k, b->pool, &L->w_qkv, &h, b->xin, C);
    q35_matmul(k, b->pool, &L->w_z, &h, b->z, (int64_t)nv * dv);
    q35_matmul(k, b->pool, &L->w_b, &h, b->gb, nv);
    q35_matmul(k, b->pool, &L->w_a, &h, b->ga, nv);

    for (int j = 0; j < K; j++)
        for (int ch = 0; ch < C; ch++)
            b->conv_t[(int64_t)j * C + ch] = L->conv_w[(int64_t)ch * K + j];
    float qscale = 1.0f / sqrtf((float)dk);
    for (int i = 0; i < n; i++) {
        float *conv = states[i]->layers[layer].conv; /* [K-1, C] */
        const float *xin = b->xin + (int64_t)i * C;
        float *y = b->qkv + (int64_t)i * C;
        /* the window is [conv rows | this input]; taps applied in order */
        memset(y, 0, (size_t)C * sizeof *y);
        for (int j = 0; j < K; j++)
            k->mul_add(y, b->conv_t + (int64_t)j * C, j < K - 1 ? conv + (int64_t)j * C : xin, C);
        if (K > 1) {
            memmove(conv, conv + C, (size_t)(K - 2) * C * sizeof(float));
            memcpy(conv + (int64_t)(K - 2) * C, xin, (size_t)C * sizeof(float));
        }
        k->silu(y, y, C);
        for (int hh = 0; hh < 2 * nk; hh++)
            q35_l2norm(y + (int64_t)hh * dk, 1e-6f, dk);
        k->scale(y, qscale, nk * dk);
        for (int j = 0; j < nv; j++) {
            int64_t tj = (int64_t)i * nv + j;
            b->gb[tj] = q35_sigmoidf(b->gb[tj]);
            b->ga[tj] = expf(L->A[j] * q35_softplusf(b->ga[tj] + L->dt_bias[j]));
        }
    }
    gdn_batch_job job = {b, states, L, layer};
    q35_threadpool_for(b->pool, (int64_t)n * nv, 1, gdn_items, &job);

    q35_acts o = batch_acts(b, b->o, n, (int64_t)nv * dv);
    q35_matmul(k, b->pool, &L->w_out, &o, b->out, H);
}

/* ------------------------------------------------------------- the pass */

static int check(q35_batch *b, q35_state *const *states, const int32_t *ids, int n, q35_err *e) {
    const char *what = "q35_state_decode_batch";
    if (!b || !states || !ids) return q35_err_set(e, Q35_EINVAL, "%s: NULL argument", what);
    const q35_model *m = b->m;
    if (!m->loaded || m->generation != b->generation)
        return q35_err_set(e, Q35_ESTATE, "%s: the model was unloaded or reloaded", what);
    if (n < 1 || n > b->max_seqs)
        return q35_err_set(e, Q35_EINVAL, "%s: %d sequences, the batch holds 1..%d", what, n,
                           b->max_seqs);
    for (int i = 0; i < n; i++) {
        const q35_state *s = states[i];
        if (!s) return q35_err_set(e, Q35_EINVAL, "%s: sequence %d has no state", what, i);
        if (s->model != m || s->model_generation != m->generation)
            return q35_err_set(e, Q35_EINVAL,
                               "%s: sequence %d's state belongs to another model "
                               "or load",
                               what, i);
        if (s->pos >= s->n_ctx)
            return q35_err_set(e, Q35_EOVERFLOW, "%s: sequence %d is full (%d positions)", what, i,
                               s->n_ctx);
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return q35_err_set(e, Q35_EINVAL, "%s: sequence %d's id %d is outside 0..%d", what, i,
                               ids[i], m->cfg.vocab_size - 1);
        for (int j = 0; j < i; j++)
            if (states[j] == s)
                return q35_err_set(e, Q35_EINVAL, "%s: sequences %d and %d share a state", what, j,
                                   i);
    }
    return Q35_OK;
}

int q35_state_decode_batch(q35_batch *b, q35_state *const *states, const int32_t *ids, int n,
                           float *logits, q35_err *e) {
    int rc = check(b, states, ids, n, e);
    if (rc) return rc;
    const q35_model *m = b->m;
    const q35_config *c = &m->cfg;
    const q35_kernels *k = b->k;
    int H = c->hidden_size, I = c->intermediate_size;
    float eps = c->rms_eps;

    for (int i = 0; i < n; i++) {
        q35_tensor_row_f32(&m->embed, ids[i], b->x + (int64_t)i * H);
        q35_state *s = states[i];
        q35_rope_angles(s->sc.rope_cs, s->sc.rope_sn, s->pos, c->rope_theta, c->rotary_dim);
    }
    for (int l = 0; l < c->n_layers; l++) {
        const q35_layer *L = &m->layers[l];
        for (int i = 0; i < n; i++)
            k->rmsnorm(b->h + (int64_t)i * H, b->x + (int64_t)i * H, L->attn_norm, eps, H);
        if (L->full_attn) {
            for (int i = 0; i < n; i++) { /* on the sequence's own state, T = 1 */
                q35_state *s = states[i];
                memcpy(s->sc.h, b->h + (int64_t)i * H, (size_t)H * sizeof(float));
                /* on the batch's threads: every state has a pool of its own,
                 * whose workers would otherwise wake for this one mixer and
                 * then poll (spin, yield) beside the batch's workers through
                 * the next matmuls. Its per-thread scratch is sized by its
                 * own pool, hence the same-size check. */
                q35_threadpool *own = s->pool;
                if (q35_threadpool_size(b->pool) == q35_threadpool_size(own)) s->pool = b->pool;
                q35_attn_forward(m, s, l, 1);
                s->pool = own;
                memcpy(b->out + (int64_t)i * H, s->sc.out, (size_t)H * sizeof(float));
            }
        } else {
            gdn_batch(b, states, n, l);
        }
        k->axpy(b->x, 1.0f, b->out, n * H);
        for (int i = 0; i < n; i++)
            k->rmsnorm(b->h + (int64_t)i * H, b->x + (int64_t)i * H, L->mlp_norm, eps, H);
        q35_acts h = batch_acts(b, b->h, n, H);
        q35_matmul(k, b->pool, &L->w_gate, &h, b->gate, I);
        q35_matmul(k, b->pool, &L->w_up, &h, b->up, I);
        k->silu_mul(b->gate, b->gate, b->up, n * I);
        q35_acts g = batch_acts(b, b->gate, n, I);
        q35_matmul(k, b->pool, &L->w_down, &g, b->out, H);
        k->axpy(b->x, 1.0f, b->out, n * H);
    }
    for (int i = 0; i < n; i++)
        states[i]->pos++;
    if (!logits) return Q35_OK;
    for (int i = 0; i < n; i++)
        k->rmsnorm(b->h + (int64_t)i * H, b->x + (int64_t)i * H, m->final_norm, eps, H);
    q35_acts h = batch_acts(b, b->h, n, H);
    q35_matmul(k, b->pool, &m->lm_head, &h, logits, c->vocab_size);
    return Q35_OK;
}
