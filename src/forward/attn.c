/* attn.c — the gated full-attention token mixer (SPEC §2, "GATED_ATTN")
 * over a chunk of T tokens at positions pos .. pos+T-1: q/gate, k, v
 * projections (k and v straight into the KV cache), per-head RMSNorm of q
 * and k, partial NeoX RoPE, causal softmax attention with grouped KV heads,
 * the sigmoid output gate, and the output projection.
 *
 * The cache holds keys after norm and RoPE, so a position is computed once.
 * Scores are computed in full per (token, head) into a per-thread row of
 * n_ctx floats: exact two-pass softmax, no online rescaling. */
#include <math.h>
#include <string.h>

#include "forward/forward.h"

typedef struct attn_job {
    const q35_model *m;
    q35_state *s;
    const float *kc, *vc;
    int T;
} attn_job;

/* Items are (token, query head) pairs: item = t * nh + head. */
static void attn_items(void *ctx, int64_t i0, int64_t i1, int tid) {
    const attn_job *a = ctx;
    const q35_config *c = &a->m->cfg;
    q35_scratch *sc = &a->s->sc;
    const q35_kernels *k = a->s->k;
    int nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim;
    int64_t kvw = (int64_t)nkv * d; /* cache row width */
    float inv_sqrt_d = 1.0f / sqrtf((float)d);
    float *scores = sc->scores + (int64_t)tid * a->s->n_ctx;
    for (int64_t it = i0; it < i1; it++) {
        int t = (int)(it / nh), head = (int)(it % nh);
        int kvh = head / (nh / nkv);
        int n_pos = a->s->pos + t + 1; /* causal: positions 0 .. pos+t */
        const float *q = sc->q + ((int64_t)t * nh + head) * 2 * d;
        const float *gate = q + d;
        /* softmax(q . k_p / sqrt(d)) over p */
        for (int p = 0; p < n_pos; p++)
            scores[p] = k->dot(q, a->kc + p * kvw + (int64_t)kvh * d, d) * inv_sqrt_d;
        k->softmax(scores, n_pos);
        /* o = sum_p softmax_p v_p;  o = o * sigmoid(gate) */
        float *o = sc->o + ((int64_t)t * nh + head) * d;
        memset(o, 0, (size_t)d * sizeof *o);
        for (int p = 0; p < n_pos; p++)
            k->axpy(o, scores[p], a->vc + p * kvw + (int64_t)kvh * d, d);
        q35_sigmoid_mul(o, gate, d);
    }
}

void q35_attn_forward(const q35_model *m, q35_state *s, int layer, int T) {
    const q35_config *c = &m->cfg;
    const q35_layer *L = &m->layers[layer];
    q35_layer_state *ls = &s->layers[layer];
    q35_scratch *sc = &s->sc;
    const q35_kernels *k = s->k;
    int H = c->hidden_size, nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim;
    int r = c->rotary_dim;
    int64_t kvw = (int64_t)nkv * d;
    float *kc = ls->kc + (int64_t)s->pos * kvw, *vc = ls->vc + (int64_t)s->pos * kvw;

    /* q_proj -> per head [query | gate]; k_proj, v_proj -> the cache */
    q35_acts h = q35_state_acts(s, sc->h, T, H);
    q35_matmul(k, s->pool, &L->w_q, &h, sc->q, (int64_t)nh * 2 * d);
    q35_matmul(k, s->pool, &L->w_k, &h, kc, kvw);
    q35_matmul(k, s->pool, &L->w_v, &h, vc, kvw);

    /* q, k: rms(.) * (1 + w) per head, then RoPE on the first r dims */
    for (int t = 0; t < T; t++) {
        const float *cs = sc->rope_cs + (int64_t)t * (r / 2);
        const float *sn = sc->rope_sn + (int64_t)t * (r / 2);
        for (int h = 0; h < nh; h++) {
            float *q = sc->q + ((int64_t)t * nh + h) * 2 * d;
            k->rmsnorm(q, q, L->q_norm, c->rms_eps, d);
            q35_rope_neox(q, cs, sn, r);
        }
        for (int h = 0; h < nkv; h++) {
            float *kh = kc + t * kvw + (int64_t)h * d;
            k->rmsnorm(kh, kh, L->k_norm, c->rms_eps, d);
            q35_rope_neox(kh, cs, sn, r);
        }
    }

    /* causal attention per (token, head) */
    attn_job job = {m, s, ls->kc, ls->vc, T};
    q35_threadpool_for(s->pool, (int64_t)T * nh, 1, attn_items, &job);

    /* out = W_o o */
    q35_acts o = q35_state_acts(s, sc->o, T, (int64_t)nh * d);
    q35_matmul(k, s->pool, &L->w_o, &o, sc->out, H);
}
