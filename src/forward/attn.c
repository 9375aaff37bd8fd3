/* attn.c — the gated full-attention token mixer (SPEC §2, "GATED_ATTN")
 * over a chunk of T tokens at positions pos .. pos+T-1: q/gate, k, v
 * projections (k and v into the KV cache), per-head RMSNorm of q and k,
 * partial NeoX RoPE, causal softmax attention with grouped KV heads, the
 * sigmoid output gate, and the output projection.
 *
 * The cache holds keys after norm and RoPE, so a position is computed once.
 * Scores are computed in full per (token, KV head) into per-thread rows of
 * n_ctx floats, one per query head of the group and token of the block
 * (attn_items): exact two-pass softmax, no online rescaling.
 *
 * The cache's element type is the state's (forward.h): with float32 rows
 * the kernels read the cache as is (the exact mode); with 16-bit rows, k
 * and v are formed in float32 scratch, rounded once into the cache, and
 * read back Q35_KV_BLOCK positions at a time into a per-thread float32
 * buffer, so the same dots / wsum kernels multiply them. The logits then
 * differ from the exact mode's by that one rounding of each cached value
 * (f16: 2^-11 relative). An 8-bit cache (Q8_0 blocks of 32 values along
 * each head) is the same with one scale per block. */
#include <math.h>
#include <string.h>

#include "forward/forward.h"

typedef struct attn_job {
    const q35_model *m;
    q35_state *s;
    const void *kc, *vc;
    int T, first; /* tokens first .. T-1 attend (the others only fill the cache) */
} attn_job;

/* out[p*d + i] = row p's d values at `base` (rows `stride` values apart)
 * for p < n, widened to float32. */
static void widen(const q35_kv_codec *kv, const void *base, int64_t stride, int n, int d,
                  float *out) {
    for (int p = 0; p < n; p++)
        kv->to_f32((const unsigned char *)base + q35_kv_bytes(kv->type, (size_t)(p * stride)),
                   out + (int64_t)p * d, d);
}

/* Items are (KV head, block of up to attn_tb tokens) pairs: item = block *
 * nkv + KV head. The g = nh/nkv query heads that share a KV head, and the
 * block's tokens, are done together, so each cached key and value row is
 * widened once for all of them (a turn's prefill over a cached prefix
 * reads the prefix once per block, not once per token). Each token's own
 * products are the same calls on the same rows as it would get alone, so
 * the blocking changes no bit of the result. */
static void attn_items(void *ctx, int64_t i0, int64_t i1, int tid) {
    const attn_job *a = ctx;
    const q35_config *c = &a->m->cfg;
    q35_scratch *sc = &a->s->sc;
    const q35_kernels *k = a->s->k;
    const q35_kv_codec *kv = &a->s->kv;
    const bool exact = kv->type == Q35_KV_F32;
    int nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim, g = nh / nkv;
    int tb = a->s->attn_tb;
    int64_t kvw = (int64_t)nkv * d, n_ctx = a->s->n_ctx; /* cache row width */
    float inv_sqrt_d = 1.0f / sqrtf((float)d);
    float *scores = sc->scores + (int64_t)tid * tb * g * n_ctx;      /* [tb, g, n_ctx] */
    float *rows = sc->kvtmp + (int64_t)tid * (Q35_KV_BLOCK + g) * d; /* [KV_BLOCK, d] */
    float *part = rows + (int64_t)Q35_KV_BLOCK * d;                  /* [g, d] */
    for (int64_t it = i0; it < i1; it++) {
        int t0 = a->first + (int)(it / nkv) * tb, kvh = (int)(it % nkv);
        int nt = a->T - t0 < tb ? a->T - t0 : tb;
        int max_pos = a->s->pos + t0 + nt; /* the block's last token sees this many */
        const size_t head = q35_kv_bytes(kv->type, (size_t)kvh * d); /* whole blocks */
        const unsigned char *keys = (const unsigned char *)a->kc + head;
        const unsigned char *vals = (const unsigned char *)a->vc + head;
        /* softmax(q . k_p / sqrt(d)) over p <= pos + t, per token and query head */
        for (int p0 = 0; p0 < max_pos; p0 += Q35_KV_BLOCK) {
            int n = max_pos - p0 < Q35_KV_BLOCK ? max_pos - p0 : Q35_KV_BLOCK;
            const float *kr = (const float *)(keys + q35_kv_bytes(kv->type, (size_t)(p0 * kvw)));
            int64_t ldk = kvw;
            if (!exact) {
                widen(kv, kr, kvw, n, d, rows);
                kr = rows;
                ldk = d;
            }
            for (int i = 0; i < nt; i++) {
                int t = t0 + i, n_pos = a->s->pos + t + 1; /* causal: positions 0 .. pos+t */
                if (n_pos <= p0) continue;
                const float *q = sc->q + ((int64_t)t * nh + (int64_t)kvh * g) * 2 * d;
                int m = exact ? n_pos : (n_pos - p0 < n ? n_pos - p0 : n);
                k->dots(kr, ldk, m, q, 2 * d, g, d, scores + (int64_t)i * g * n_ctx + p0, n_ctx);
            }
            if (exact) break; /* the whole row at once, straight from the cache */
        }
        for (int i = 0; i < nt; i++) {
            int n_pos = a->s->pos + t0 + i + 1;
            for (int h = 0; h < g; h++) {
                float *sr = scores + ((int64_t)i * g + h) * n_ctx;
                k->scale(sr, inv_sqrt_d, n_pos);
                k->softmax(sr, n_pos);
            }
        }
        /* o = sum_p softmax_p v_p;  o = o * sigmoid(gate) */
        for (int p0 = 0; p0 < max_pos; p0 += Q35_KV_BLOCK) {
            int n = max_pos - p0 < Q35_KV_BLOCK ? max_pos - p0 : Q35_KV_BLOCK;
            const float *vr = (const float *)(vals + q35_kv_bytes(kv->type, (size_t)(p0 * kvw)));
            int64_t ldv = kvw;
            if (!exact) {
                widen(kv, vr, kvw, n, d, rows);
                vr = rows;
                ldv = d;
            }
            for (int i = 0; i < nt; i++) {
                int t = t0 + i, n_pos = a->s->pos + t + 1;
                if (n_pos <= p0) continue;
                float *o = sc->o + ((int64_t)t * nh + (int64_t)kvh * g) * d;
                const float *sr = scores + (int64_t)i * g * n_ctx;
                if (exact) {
                    k->wsum(sr, n_ctx, g, vr, ldv, n_pos, d, o, d);
                    continue;
                }
                int m = n_pos - p0 < n ? n_pos - p0 : n;
                k->wsum(sr + p0, n_ctx, g, vr, ldv, m, d, p0 ? part : o, d);
                if (p0)
                    for (int h = 0; h < g * d; h++)
                        o[h] += part[h];
            }
            if (exact) break;
        }
        for (int i = 0; i < nt; i++) {
            int t = t0 + i;
            const float *q = sc->q + ((int64_t)t * nh + (int64_t)kvh * g) * 2 * d;
            float *o = sc->o + ((int64_t)t * nh + (int64_t)kvh * g) * d;
            for (int h = 0; h < g; h++)
                q35_sigmoid_mul(o + (int64_t)h * d, q + (int64_t)h * 2 * d + d, d);
        }
    }
}

void q35_attn_forward(const q35_model *m, q35_state *s, int layer, int T) {
    q35_attn_forward_from(m, s, layer, T, 0);
}

void q35_attn_forward_from(const q35_model *m, q35_state *s, int layer, int T, int first) {
    const q35_config *c = &m->cfg;
    const q35_layer *L = &m->layers[layer];
    q35_layer_state *ls = &s->layers[layer];
    q35_scratch *sc = &s->sc;
    const q35_kernels *k = s->k;
    int H = c->hidden_size, nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim;
    int r = c->rotary_dim;
    int64_t kvw = (int64_t)nkv * d;
    const bool exact = s->kv.type == Q35_KV_F32;
    const size_t row = q35_kv_bytes(s->kv.type, (size_t)kvw);
    /* the exact mode projects straight into the cache; 16-bit caches get
     * float32 rows first, rounded into the cache once they are final */
    float *kc = exact ? (float *)((unsigned char *)ls->kc + (size_t)s->pos * row) : sc->kv;
    float *vc = exact ? (float *)((unsigned char *)ls->vc + (size_t)s->pos * row)
                      : sc->kv + (int64_t)s->max_batch * kvw;

    /* q_proj -> per head [query | gate]; k_proj, v_proj */
    q35_acts h = q35_state_acts(s, sc->h, T, H);
    q35_matmul(k, s->pool, &L->w_k, &h, kc, kvw);
    q35_matmul(k, s->pool, &L->w_v, &h, vc, kvw);
    if (first > 0) /* the queries of tokens first .. T-1 only */
        h = q35_state_acts(s, sc->h + (int64_t)first * H, T - first, H);
    q35_matmul(k, s->pool, &L->w_q, &h, sc->q + (int64_t)first * nh * 2 * d, (int64_t)nh * 2 * d);

    /* q, k: rms(.) * (1 + w) per head, then RoPE on the first r dims */
    for (int t = 0; t < T; t++) {
        const float *cs = sc->rope_cs + (int64_t)t * (r / 2);
        const float *sn = sc->rope_sn + (int64_t)t * (r / 2);
        for (int h = 0; h < nh && t >= first; h++) {
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
    if (!exact) {
        unsigned char *kd = (unsigned char *)ls->kc + (size_t)s->pos * row;
        unsigned char *vd = (unsigned char *)ls->vc + (size_t)s->pos * row;
        s->kv.from_f32(kc, kd, (int)(T * kvw));
        s->kv.from_f32(vc, vd, (int)(T * kvw));
    }

    /* causal attention per (block of tokens, KV head) */
    attn_job job = {m, s, ls->kc, ls->vc, T, first};
    int64_t blocks = (T - first + s->attn_tb - 1) / s->attn_tb;
    q35_threadpool_for(s->pool, blocks * nkv, 1, attn_items, &job);

    /* out = W_o o */
    q35_acts o = q35_state_acts(s, sc->o + (int64_t)first * nh * d, T - first, (int64_t)nh * d);
    q35_matmul(k, s->pool, &L->w_o, &o, sc->out + (int64_t)first * H, H);
}
