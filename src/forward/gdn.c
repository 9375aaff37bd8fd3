/* gdn.c — the Gated DeltaNet token mixer (SPEC §2, "GDN") over a chunk of
 * T tokens: batched projections, the causal depthwise conv over the conv
 * window, then the delta-rule recurrence in float32 — token by token (the
 * recurrent form; T = 1 is the decode step) or, for runs of at least
 * Q35_GDN_CHUNK_MIN tokens where the kernel set makes it pay, in the
 * chunked form of gdn_chunk.c (the same result to float32 rounding) —
 * then the gated RMSNorm and the output projection.
 *
 * The recurrence runs in parallel over value heads; each head's state
 * S [dk, dv] is touched by one thread only. */
#include <math.h>
#include <string.h>

#include "forward/forward.h"

typedef struct gdn_job {
    const q35_model *m;
    q35_state *s;
    const q35_layer *L;
    float *S; /* the layer's [nv, dk, dv] */
    int T;
    /* snapshots inside this chunk: after token cap_t[i] (1..T), S goes to
     * cap_S[i] */
    int n_cap;
    int cap_t[Q35_MAX_CAPTURES];
    float *cap_S[Q35_MAX_CAPTURES];
} gdn_job;

/* Whether runs of Q35_GDN_CHUNK_MIN tokens or more take the chunked form
 * with this kernel set. It does the same multiply-adds on the state as the
 * recurrence (3 dk dv a token) plus the in-chunk products, so it only
 * wins where the set's small products (gdn_mm, dots) run closer to the FMA
 * peak than its gdn_scan. Since gdn_mm (register-blocked) it does on both
 * x86 widths: end to end on an AMD EPYC (Zen 3, AVX2), 2 threads, a
 * 74-token prefill went from 203-219 to 290-296 tok/s and a Q8_0 pp512
 * from 153-160 to 178-199 (BENCHMARKS.md, 2026-12-08). NEON and the
 * generic set are not measured and keep the recurrence. */
bool q35_gdn_chunked_pays(const q35_kernels *k) {
    return !strcmp(k->name, "avx512") || !strcmp(k->name, "amx") || !strcmp(k->name, "avx2");
}

/* For value heads [j0, j1): the recurrence over the chunk's tokens, then
 * o = rms(o) * w_norm * silu(z) per head. */
static void gdn_heads(void *ctx, int64_t j0, int64_t j1, int tid) {
    const gdn_job *g = ctx;
    const q35_config *c = &g->m->cfg;
    q35_scratch *sc = &g->s->sc;
    const q35_kernels *k = g->s->k;
    int nk = c->lin_k_heads, nv = c->lin_v_heads, dk = c->lin_k_dim, dv = c->lin_v_dim;
    int C = q35_config_conv_channels(c), rep = nv / nk;
    float *work = sc->work + (int64_t)tid * dv;
    float *chunk_work = sc->gdn_work ? sc->gdn_work + tid * q35_gdn_chunk_work(dk, dv) : NULL;
    for (int64_t j = j0; j < j1; j++) {
        int kh = (int)(j / rep); /* consecutive value heads share a key head */
        const float *q = sc->qkv + kh * dk, *kk = sc->qkv + nk * dk + kh * dk;
        const float *v = sc->qkv + 2 * nk * dk + j * dv;
        float *o = sc->o + j * dv;
        int64_t ldo = (int64_t)nv * dv;
        /* per token: S = exp(g) S;  u = beta (v - S^T k);  S += k u^T;  o = S^T q
         * (in pieces where a snapshot wants S in between) */
        float *S = g->S + j * dk * dv;
        int t0 = 0;
        for (int i = 0; i <= g->n_cap; i++) {
            int t1 = i < g->n_cap ? g->cap_t[i] : g->T;
            if (t1 - t0 >= Q35_GDN_CHUNK_MIN && chunk_work)
                q35_gdn_chunked(k, S, dk, dv, t1 - t0, q + t0 * C, kk + t0 * C, C, v + t0 * C, C,
                                sc->gl + j + t0 * nv, sc->gb + j + t0 * nv, nv, o + t0 * ldo, ldo,
                                chunk_work);
            else if (t1 > t0)
                k->gdn_scan(S, dk, dv, t1 - t0, q + t0 * C, kk + t0 * C, C, v + t0 * C, C,
                            sc->ga + j + t0 * nv, sc->gb + j + t0 * nv, nv, o + t0 * ldo, ldo,
                            work);
            if (i < g->n_cap) memcpy(g->cap_S[i] + j * dk * dv, S, (size_t)dk * dv * sizeof(float));
            t0 = t1;
        }
        /* o = rms(o) * w_norm * silu(z) */
        for (int t = 0; t < g->T; t++) {
            float *ot = o + t * ldo;
            k->rmsnorm(ot, ot, g->L->gdn_norm, c->rms_eps, dv);
            k->silu_mul(ot, sc->z + t * ldo + j * dv, ot, dv);
        }
    }
}

/* y[t] = sum_j w[j] * win[t + j] per channel, over the K-tap window, in
 * place: y[t] replaces win[t], which no later output reads (t ascending). */
static void causal_conv(const q35_kernels *k, float *win, const float *taps, int T, int K, int C) {
    for (int t = 0; t < T; t++) {
        float *yt = win + (int64_t)t * C;
        for (int ch = 0; ch < C; ch++)
            yt[ch] *= taps[ch];
        for (int j = 1; j < K; j++)
            k->mul_add(yt, taps + (int64_t)j * C, win + (int64_t)(t + j) * C, C);
    }
}

/* The conv, silu, q/k norms and q scale of channels [c0, c0 + w) over the
 * chunk's T tokens: one q or k head (w = dk) or a run of v channels. The
 * same operations per element as causal_conv, silu over [T, C] and the
 * per-token norms, in a different order across channels only. */
typedef struct conv_job {
    const q35_kernels *k;
    float *win;
    const float *taps;
    int T, K, C, nk, dk, dv;
    float qscale;
} conv_job;

static void conv_block(const conv_job *j, int64_t c0, int w, int head) {
    const q35_kernels *k = j->k;
    int C = j->C;
    for (int t = 0; t < j->T; t++) {
        float *yt = j->win + (int64_t)t * C + c0;
        for (int ch = 0; ch < w; ch++)
            yt[ch] *= j->taps[c0 + ch];
        for (int i = 1; i < j->K; i++)
            k->mul_add(yt, j->taps + (int64_t)i * C + c0, j->win + (int64_t)(t + i) * C + c0, w);
    }
    for (int t = 0; t < j->T; t++) {
        float *row = j->win + (int64_t)t * C + c0;
        k->silu(row, row, w);
        if (head < 0) continue;
        q35_l2norm(row, 1e-6f, w);
        if (head < j->nk) k->scale(row, j->qscale, w);
    }
}

/* blocks: 2 nk heads of dk channels, then the v channels dv at a time */
static void conv_blocks(void *ctx, int64_t b0, int64_t b1, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    for (int64_t b = b0; b < b1; b++) {
        if (b < 2 * j->nk)
            conv_block(j, b * j->dk, j->dk, (int)b);
        else
            conv_block(j, (int64_t)2 * j->nk * j->dk + (b - 2 * j->nk) * j->dv, j->dv, -1);
    }
}

void q35_gdn_forward(const q35_model *m, q35_state *s, int layer, int T) {
    const q35_config *c = &m->cfg;
    const q35_layer *L = &m->layers[layer];
    q35_layer_state *ls = &s->layers[layer];
    q35_scratch *sc = &s->sc;
    const q35_kernels *k = s->k;
    int H = c->hidden_size, nk = c->lin_k_heads, nv = c->lin_v_heads;
    int dk = c->lin_k_dim, dv = c->lin_v_dim, K = c->conv_kernel;
    int C = q35_config_conv_channels(c);
    float *xin = sc->win + (int64_t)(K - 1) * C; /* this chunk's conv inputs */

    /* in_proj_qkv -> conv inputs, in_proj_z, in_proj_b, in_proj_a */
    q35_acts h = q35_state_acts(s, sc->h, T, H);
    q35_matmul(k, s->pool, &L->w_qkv, &h, xin, C);
    q35_matmul(k, s->pool, &L->w_z, &h, sc->z, (int64_t)nv * dv);
    q35_matmul(k, s->pool, &L->w_b, &h, sc->gb, nv);
    q35_matmul(k, s->pool, &L->w_a, &h, sc->ga, nv);

    /* causal depthwise conv over [conv state | inputs], then silu; the last
     * K-1 inputs become the conv state */
    memcpy(sc->win, ls->conv, (size_t)(K - 1) * C * sizeof(float));
    for (int j = 0; j < K; j++)
        for (int ch = 0; ch < C; ch++)
            sc->conv_t[(int64_t)j * C + ch] = L->conv_w[(int64_t)ch * K + j];
    gdn_job job = {m, s, L, ls->ssm, T, 0, {0}, {0}};
    for (int i = 0; i < s->n_caps; i++) { /* snapshots after token p of this chunk */
        int p = s->caps[i].pos - s->pos;
        if (p < 1 || p > T) continue;
        memcpy(q35_snapshot_part(s->caps[i].snap, s, layer, 0), sc->win + (int64_t)p * C,
               (size_t)(K - 1) * C * sizeof(float));
        job.cap_t[job.n_cap] = p;
        job.cap_S[job.n_cap++] = q35_snapshot_part(s->caps[i].snap, s, layer, 1);
    }
    memcpy(ls->conv, sc->win + (int64_t)T * C, (size_t)(K - 1) * C * sizeof(float));
    /* q, k: L2-normalized per head, q scaled by 1/sqrt(dk);
     * beta = sigmoid(b); decay = exp(g), g = A * softplus(a + dt_bias)
     * (g kept too: the chunked form works with it) */
    float qscale = 1.0f / sqrtf((float)dk);
    int threads = s->pool ? q35_threadpool_size(s->pool) : 1;
    if (threads > 1 && T > 1 && dk % 64 == 0 && dv % 64 == 0) {
        /* the conv, silu and norms per head / v block, over the threads */
        conv_job cj = {k, sc->win, sc->conv_t, T, K, C, nk, dk, dv, qscale};
        q35_threadpool_for(s->pool, 2 * nk + nv, 1, conv_blocks, &cj);
    } else {
        causal_conv(k, sc->win, sc->conv_t, T, K, C); /* sc->qkv = sc->win from here */
        k->silu(sc->qkv, sc->qkv, T * C);
        for (int t = 0; t < T; t++) {
            float *row = sc->qkv + (int64_t)t * C;
            for (int h = 0; h < 2 * nk; h++)
                q35_l2norm(row + (int64_t)h * dk, 1e-6f, dk);
            k->scale(row, qscale, nk * dk);
        }
    }
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < nv; j++) {
            int64_t tj = (int64_t)t * nv + j;
            sc->gb[tj] = q35_sigmoidf(sc->gb[tj]);
            sc->gl[tj] = L->A[j] * q35_softplusf(sc->ga[tj] + L->dt_bias[j]);
            sc->ga[tj] = expf(sc->gl[tj]);
        }
    }

    /* the recurrence and output gate, per value head */
    q35_threadpool_for(s->pool, nv, 1, gdn_heads, &job);

    /* out = W_out_proj o */
    q35_acts o = q35_state_acts(s, sc->o, T, (int64_t)nv * dv);
    q35_matmul(k, s->pool, &L->w_out, &o, sc->out, H);
}
