/* forward.c — the Qwen3.5 text forward pass over a chunk of tokens, read top
 * to bottom as SPEC §2:
 *
 *     x = E[token]
 *     for each layer:
 *         h = rms(x) * (1 + w_input_layernorm)
 *         x = x + (linear_attention ? GDN(h) : GATED_ATTN(h))
 *         h = rms(x) * (1 + w_post_attention_layernorm)
 *         x = x + W_down( silu(W_gate h) * (W_up h) )
 *     logits = W_out( rms(x) * (1 + w_norm) )
 *
 * The (1 + w) forms come precomputed from the loader. */
#include "forward/forward.h"

/* out[t] = rms(in[t]) * w for each of T rows of n. */
static void rmsnorm_rows(const q35_state *s, float *out, const float *in, const float *w, int T,
                         int n, float eps) {
    for (int t = 0; t < T; t++)
        s->k->rmsnorm(out + (int64_t)t * n, in + (int64_t)t * n, w, eps, n);
}

/* x += y over n floats. */
static void add_into(q35_state *s, float *x, const float *y, int64_t n) {
    q35_spread_axpy(s, x, 1.0f, y, n);
}

/* out = W_down( silu(W_gate h) * (W_up h) ) */
static void mlp_forward(const q35_model *m, q35_state *s, const q35_layer *L, int T) {
    const q35_config *c = &m->cfg;
    q35_scratch *sc = &s->sc;
    int H = c->hidden_size, I = c->intermediate_size;
    q35_acts h = q35_state_acts(s, sc->h, T, H);
    q35_matmul(s->k, s->pool, &L->w_gate, &h, sc->gate, I);
    q35_matmul(s->k, s->pool, &L->w_up, &h, sc->up, I);
    q35_spread_silu_mul(s, sc->gate, sc->gate, sc->up, (int64_t)T * I);
    q35_acts g = q35_state_acts(s, sc->gate, T, I);
    q35_matmul(s->k, s->pool, &L->w_down, &g, sc->out, H);
}

void q35_forward(const q35_model *m, q35_state *s, const int32_t *ids, int T, float *logits,
                 bool all_logits) {
    const q35_config *c = &m->cfg;
    q35_scratch *sc = &s->sc;
    int H = c->hidden_size, V = c->vocab_size;
    float eps = c->rms_eps;

    /* x = E[token] */
    for (int t = 0; t < T; t++)
        q35_tensor_row_f32(&m->embed, ids[t], sc->x + (int64_t)t * H);
    /* the RoPE angles of these positions, shared by every attention layer */
    int half = c->rotary_dim / 2;
    for (int t = 0; t < T; t++)
        q35_rope_angles(sc->rope_cs + (int64_t)t * half, sc->rope_sn + (int64_t)t * half,
                        s->pos + t, c->rope_theta, c->rotary_dim);

    /* the rows whose logits are asked for: the last layer's MLP runs on
     * those only (no other row of its output is ever read; the mixers
     * still run on every row, for the caches and states they update) */
    int first = !logits ? T : all_logits ? 0 : T - 1;
    int rows = T - first;
    for (int l = 0; l < c->n_layers; l++) {
        const q35_layer *L = &m->layers[l];
        /* h = rms(x) * (1 + w_input_layernorm) */
        rmsnorm_rows(s, sc->h, sc->x, L->attn_norm, T, H, eps);
        /* x = x + mixer(h) */
        int r0 = l + 1 < c->n_layers ? 0 : first, n = T - r0;
        float *x = sc->x + (int64_t)r0 * H;
        if (L->full_attn && n > 0)
            q35_attn_forward_from(m, s, l, T, r0);
        else if (L->full_attn)
            q35_attn_forward_from(m, s, l, T, T - 1); /* the cache, one row of no use */
        else
            q35_gdn_forward(m, s, l, T);
        if (n == 0) break;
        add_into(s, x, sc->out + (int64_t)r0 * H, (int64_t)n * H);
        /* h = rms(x) * (1 + w_post_attention_layernorm) */
        rmsnorm_rows(s, sc->h, x, L->mlp_norm, n, H, eps);
        /* x = x + W_down( silu(W_gate h) * (W_up h) ) */
        mlp_forward(m, s, L, n);
        add_into(s, x, sc->out, (int64_t)n * H);
    }
    s->pos += T;

    /* logits = W_out( rms(x) * (1 + w_norm) ), for the rows asked for */
    if (!logits) return;
    rmsnorm_rows(s, sc->h, sc->x + (int64_t)first * H, m->final_norm, rows, H, eps);
    q35_acts h = q35_state_acts(s, sc->h, rows, H);
    q35_matmul(s->k, s->pool, &m->lm_head, &h, logits, V);
}
