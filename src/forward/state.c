/* state.c — q35_state (one sequence: DeltaNet conv windows and recurrent
 * states, attention KV caches, the position, its own thread pool and
 * scratch) and its snapshots.
 *
 * Memory: one block holds the recurrent states and all scratch, sized at
 * creation for chunks of up to max_batch tokens (buffers that are never
 * live at once share their bytes: see layout); the KV caches are a
 * separate zeroed allocation whose pages the OS only backs once written, so
 * a large n_ctx costs what is used. Nothing is allocated per token. The
 * caches hold f16 by default (Q35_KV_CACHE=f32|f16|bf16|q8 picks; q8 only
 * where heads are whole 32-value blocks): half the bytes a position (q8:
 * 0.27), logits within that rounding of the f32 cache's.
 *
 * A snapshot copies the recurrent states and the KV rows below the
 * position: restoring it puts the state back exactly (same bits), which is
 * what prompt caching relies on. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "forward/backend.h"
#include "forward/forward.h"

/* Generous bound on positions per state: far above any Qwen3.5 context,
 * low enough that no size computed from it overflows. */
#define Q35_MAX_CTX (1 << 24)

struct q35_snapshot {
    const q35_model *model;
    unsigned model_generation;
    int pos;
    size_t n_floats;
    float *data;
    const q35_backend *be; /* a device-side copy (backend.h) instead of data */
    void *dev;
};

/* Carves aligned float arrays out of one block; a first pass with base ==
 * NULL only measures. */
typedef struct carver {
    float *base;
    size_t used; /* floats */
} carver;

static float *carve(carver *cv, size_t n) {
    float *p = cv->base ? cv->base + cv->used : NULL;
    cv->used += (n + 15) / 16 * 16; /* keep every array 64-byte aligned */
    return p;
}

static void layout(const q35_model *m, q35_state *s, carver *cv) {
    const q35_config *c = &m->cfg;
    size_t B = (size_t)s->max_batch, nt = (size_t)q35_threadpool_size(s->pool);
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    size_t C = (size_t)q35_config_conv_channels(c), K = (size_t)c->conv_kernel;
    size_t nv = (size_t)c->lin_v_heads, dk = (size_t)c->lin_k_dim, dv = (size_t)c->lin_v_dim;
    size_t nh = (size_t)c->n_heads, d = (size_t)c->head_dim;
    bool any_gdn = false;
    for (int l = 0; l < c->n_layers; l++) {
        q35_layer_state *ls = &s->layers[l];
        if (m->layers[l].full_attn) continue;
        any_gdn = true;
        ls->conv = carve(cv, (K - 1) * C);
        ls->ssm = carve(cv, nv * dk * dv);
    }
    if (!any_gdn) C = K = nv = dv = 0;
    q35_scratch *sc = &s->sc;
    /* live through the whole chunk: the residual stream, a block's input
     * and output, the RoPE angles, the packed matmul input */
    sc->x = carve(cv, B * H);
    sc->h = carve(cv, B * H);
    sc->out = carve(cv, B * H);
    sc->rope_cs = carve(cv, B * (size_t)(c->rotary_dim / 2));
    sc->rope_sn = carve(cv, B * (size_t)(c->rotary_dim / 2));
    /* the widest matmul input: H, I, nv*dv or nh*d columns */
    size_t widest = H > I ? H : I, pb = 0;
    if (nv * dv > widest) widest = nv * dv;
    if (nh * d > widest) widest = nh * d;
    for (int T = 1; T <= s->max_batch; T++) { /* sizes need not grow with T */
        size_t b = q35_acts_bytes_for(s->k, T, (int64_t)widest, s->mm_dtypes);
        if (b > pb) pb = b;
    }
    sc->packed = carve(cv, (pb + 3) / 4);

    /* Live inside one block only: the token mixer's buffers and the MLP's
     * share one region (the MLP runs after the mixer's output is in
     * sc->out), and within the mixers DeltaNet's and attention's share
     * all but o. */
    const size_t region = cv->used;
    sc->o = carve(cv, B * (nv * dv > nh * d ? nv * dv : nh * d));
    const size_t mixers = cv->used;
    sc->win = carve(cv, (K - 1 + B) * C);
    sc->qkv = sc->win; /* the conv runs in place (gdn.c) */
    sc->conv_t = carve(cv, K * C);
    sc->z = carve(cv, B * nv * dv);
    sc->gb = carve(cv, B * nv);
    sc->ga = carve(cv, B * nv);
    sc->gl = carve(cv, B * nv);
    sc->work = carve(cv, nt * dv);
    sc->gdn_work = any_gdn && B >= Q35_GDN_CHUNK_MIN && q35_gdn_chunked_pays(s->k)
                       ? carve(cv, nt * q35_gdn_chunk_work((int)dk, (int)dv))
                       : NULL;
    size_t end = cv->used;
    cv->used = mixers;
    const size_t kvw = (size_t)c->n_kv_heads * d, g = nh / (size_t)c->n_kv_heads;
    sc->q = carve(cv, B * nh * 2 * d);
    sc->kv = carve(cv, 2 * B * kvw);
    sc->scores = carve(cv, nt * (size_t)s->attn_tb * g * (size_t)s->n_ctx);
    sc->kvtmp = carve(cv, nt * (Q35_KV_BLOCK + g) * d);
    if (cv->used > end) end = cv->used;
    cv->used = region;
    sc->gate = carve(cv, B * I);
    sc->up = carve(cv, B * I);
    if (cv->used < end) cv->used = end;
}

/* The dtypes of every matrix the forward pass multiplies. */
static q35_dtype_mask model_dtypes(const q35_model *m) {
    q35_dtype_mask d = 1u << m->lm_head.dtype;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const q35_layer *L = &m->layers[l];
        const q35_tensor *ts[] = {&L->w_gate, &L->w_up,  &L->w_down, &L->w_qkv, &L->w_z, &L->w_b,
                                  &L->w_a,    &L->w_out, &L->w_q,    &L->w_k,   &L->w_v, &L->w_o};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            if (ts[i]->data) d |= 1u << ts[i]->dtype;
    }
    return d;
}

static int model_usable(const q35_model *m, const char *what, q35_err *e) {
    if (!m) return q35_err_set(e, Q35_EINVAL, "%s: no model", what);
    if (!m->loaded) return q35_err_set(e, Q35_ESTATE, "%s: the model is unloaded", what);
    return Q35_OK;
}

q35_state *q35_state_new(const q35_model *m, int n_ctx, q35_err *e) {
    if (model_usable(m, "q35_state_new", e)) return NULL;
    if (n_ctx < 1 || n_ctx > Q35_MAX_CTX) {
        q35_err_set(e, Q35_EINVAL, "q35_state_new: n_ctx %d is outside 1..%d", n_ctx, Q35_MAX_CTX);
        return NULL;
    }
    const q35_config *c = &m->cfg;
    bool missing;
    const q35_backend *be = q35_backend_for(q35_backend_device(m), &missing, e);
    if (missing) return NULL;
    q35_state *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->model = m;
    s->model_generation = m->generation;
    s->n_ctx = n_ctx;
    s->max_batch = n_ctx < Q35_MAX_BATCH ? n_ctx : Q35_MAX_BATCH;
    /* attention items of up to 16 tokens while their score rows stay
     * within 64k floats a query head (4096 positions), fewer beyond */
    s->attn_tb = n_ctx >= 65536 ? 1 : 65536 / n_ctx;
    if (s->attn_tb > 16) s->attn_tb = 16;
    if (s->attn_tb > s->max_batch) s->attn_tb = s->max_batch;
    if (be) { /* the whole state lives on the device */
        s->be = be;
        s->be_state = be->state_new(m, n_ctx, &s->mem_bytes, e);
        if (!s->be_state) {
            free(s);
            return NULL;
        }
        return s;
    }
    s->k = q35_kernels_pick(m->exact_kernels);
    s->mm_dtypes = model_dtypes(m);
    s->pool = q35_threadpool_new(m->n_threads, e);
    if (!s->pool) {
        free(s);
        return NULL;
    }
    s->layers = calloc((size_t)c->n_layers, sizeof *s->layers);
    if (!s->layers) goto oom;

    carver cv = {NULL, 0};
    layout(m, s, &cv);
    s->mem_bytes = cv.used * sizeof(float);
    if (posix_memalign(&s->mem, 64, s->mem_bytes) != 0) {
        s->mem = NULL;
        goto oom;
    }
    cv = (carver){s->mem, 0};
    layout(m, s, &cv);

    size_t kvw = (size_t)c->n_kv_heads * (size_t)c->head_dim, n_attn = 0;
    for (int l = 0; l < c->n_layers; l++)
        n_attn += m->layers[l].full_attn;
    /* 16 bits a cached value unless Q35_KV_CACHE says otherwise ("f32":
     * the exact mode, what the float64 reference is compared with) */
    int kvt = q35_kv_type_parse(getenv("Q35_KV_CACHE"));
    if (kvt < 0 || !q35_kv_type_fits((q35_kv_type)kvt, c->head_dim, (int)kvw)) kvt = Q35_KV_F16;
    s->kv = q35_kv_codec_for((q35_kv_type)kvt);
    const size_t row = q35_kv_bytes(s->kv.type, kvw); /* bytes per cached position */
    s->kv_bytes = n_attn * 2 * (size_t)n_ctx * row;
    if (n_attn) {
        s->kv_mem = calloc(1, s->kv_bytes);
        if (!s->kv_mem) goto oom;
        unsigned char *p = s->kv_mem;
        for (int l = 0; l < c->n_layers; l++) {
            if (!m->layers[l].full_attn) continue;
            s->layers[l].kc = p;
            s->layers[l].vc = p + (size_t)n_ctx * row;
            p += 2 * (size_t)n_ctx * row;
        }
    }
    q35_state_clear(s);
    return s;
oom:
    q35_err_set(e, Q35_ENOMEM, "q35_state_new: out of memory for a state of %d positions", n_ctx);
    q35_state_free(s);
    return NULL;
}

void q35_state_free(q35_state *s) {
    if (!s) return;
    if (s->be) s->be->state_free(s->be_state);
    q35_threadpool_free(s->pool);
    free(s->spare);
    free(s->kv_mem);
    free(s->mem);
    free(s->layers);
    free(s);
}

int q35_state_pos(const q35_state *s) {
    return s ? s->pos : 0;
}

int q35_state_n_ctx(const q35_state *s) {
    return s ? s->n_ctx : 0;
}

void q35_state_clear(q35_state *s) {
    if (!s) return;
    if (s->be) {
        s->be->clear(s->be_state);
        s->pos = 0;
        return;
    }
    const q35_config *c = &s->model->cfg;
    size_t C = (size_t)q35_config_conv_channels(c);
    size_t ssm = (size_t)c->lin_v_heads * c->lin_k_dim * c->lin_v_dim;
    for (int l = 0; l < c->n_layers; l++) {
        q35_layer_state *ls = &s->layers[l];
        if (ls->conv) memset(ls->conv, 0, (size_t)(c->conv_kernel - 1) * C * sizeof(float));
        if (ls->ssm) memset(ls->ssm, 0, ssm * sizeof(float));
    }
    s->pos = 0; /* KV rows at or past pos are never read */
}

static int state_matches(const q35_model *m, const q35_state *s, const char *what, q35_err *e) {
    if (!s) return q35_err_set(e, Q35_EINVAL, "%s: no state", what);
    if (model_usable(m, what, e)) return e ? e->code : Q35_EINVAL;
    if (s->model != m)
        return q35_err_set(e, Q35_EINVAL, "%s: the state belongs to another model", what);
    if (s->model_generation != m->generation)
        return q35_err_set(e, Q35_ESTATE, "%s: the model was reloaded since the state was made",
                           what);
    return Q35_OK;
}

int q35_state_eval(const q35_model *m, q35_state *s, const int32_t *ids, int n, float *logits,
                   bool all_logits, q35_err *e) {
    return q35_state_eval_snapshots(m, s, ids, n, logits, all_logits, NULL, 0, NULL, e);
}

/* ------------------------------------------------------------ snapshots */

/* The flat form of a state at position P: per layer, two parts — the conv
 * window and the recurrent state (DeltaNet) or the keys and values of
 * positions < P (attention). */
static size_t part_len(const q35_state *s, int P, int l, int part) {
    const q35_config *c = &s->model->cfg;
    /* in floats: a cached row is a whole number of them (q35_kv_type_fits) */
    if (s->layers[l].kc)
        return (size_t)P * q35_kv_bytes(s->kv.type, (size_t)c->n_kv_heads * c->head_dim) /
               sizeof(float);
    if (part == 0) return (size_t)(c->conv_kernel - 1) * q35_config_conv_channels(c);
    return (size_t)c->lin_v_heads * c->lin_k_dim * c->lin_v_dim;
}

static size_t part_offset(const q35_state *s, int P, int l, int part) {
    size_t off = 0;
    for (int i = 0; i < l; i++)
        off += part_len(s, P, i, 0) + part_len(s, P, i, 1);
    return part ? off + part_len(s, P, l, 0) : off;
}

static float *part_in_state(const q35_state *s, int l, int part) {
    const q35_layer_state *ls = &s->layers[l];
    if (ls->kc) return (float *)(part ? ls->vc : ls->kc); /* copied as bytes */
    return part ? ls->ssm : ls->conv;
}

float *q35_snapshot_part(q35_snapshot *snap, const q35_state *s, int layer, int part) {
    return snap->data + part_offset(s, snap->pos, layer, part);
}

/* Copies between the state and a flat buffer (to_snap: state -> buf);
 * returns the size of the flat form. */
static size_t copy_state(const q35_state *s, float *buf, int pos, bool to_snap) {
    int L = s->model->cfg.n_layers;
    for (int l = 0; l < L && buf; l++)
        for (int part = 0; part < 2; part++) {
            size_t n = part_len(s, pos, l, part);
            float *flat = buf + part_offset(s, pos, l, part), *live = part_in_state(s, l, part);
            if (!n) continue;
            if (to_snap)
                memcpy(flat, live, n * sizeof(float));
            else
                memcpy(live, flat, n * sizeof(float));
        }
    return L ? part_offset(s, pos, L - 1, 1) + part_len(s, pos, L - 1, 1) : 0;
}

/* copy_state from the flat buffer into the state, one (layer, part) per
 * item over the state's threads: a restore moves ~19 MB for the 0.8B
 * (the DeltaNet states), which one thread copies at well below what the
 * memory gives two. */
typedef struct restore_job {
    const q35_state *s;
    const float *buf;
    int pos;
} restore_job;

static void restore_parts(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    const restore_job *j = ctx;
    for (int64_t i = i0; i < i1; i++) {
        int l = (int)(i / 2), part = (int)(i % 2);
        size_t n = part_len(j->s, j->pos, l, part);
        if (n)
            memcpy(part_in_state(j->s, l, part), j->buf + part_offset(j->s, j->pos, l, part),
                   n * sizeof(float));
    }
}

static void restore_state(const q35_state *s, const float *buf, int pos) {
    restore_job j = {s, buf, pos};
    q35_threadpool_for(s->pool, 2 * (int64_t)s->model->cfg.n_layers, 1, restore_parts, &j);
}

/* An empty snapshot of the state at position P (contents to be filled);
 * its data is the state's spare where that is big enough (taker: the
 * state whose spare may be taken, or NULL). */
static q35_snapshot *snapshot_alloc(const q35_state *s, q35_state *taker, int P, q35_err *e) {
    q35_snapshot *snap = calloc(1, sizeof *snap);
    if (!snap) goto oom;
    snap->model = s->model;
    snap->model_generation = s->model_generation;
    snap->pos = P;
    snap->n_floats = copy_state(s, NULL, P, true);
    if (taker && taker->spare && taker->spare_floats >= snap->n_floats) {
        snap->data = taker->spare;
        taker->spare = NULL;
        taker->spare_floats = 0;
    } else {
        snap->data = malloc(snap->n_floats ? snap->n_floats * sizeof(float) : 1);
    }
    if (!snap->data) goto oom;
    return snap;
oom:
    q35_snapshot_free(snap);
    q35_err_set(e, Q35_ENOMEM, "snapshot: out of memory");
    return NULL;
}

q35_snapshot *q35_state_snapshot(const q35_state *s, q35_err *e) {
    if (!s) {
        q35_err_set(e, Q35_EINVAL, "q35_state_snapshot: no state");
        return NULL;
    }
    if (s->be) {
        q35_snapshot *snap = calloc(1, sizeof *snap);
        size_t bytes = 0;
        if (!snap || !(snap->dev = s->be->snapshot(s->be_state, s->pos, &bytes, e))) {
            if (!snap) q35_err_set(e, Q35_ENOMEM, "snapshot: out of memory");
            free(snap);
            return NULL;
        }
        *snap = (q35_snapshot){
            s->model, s->model_generation, s->pos, bytes / sizeof(float), NULL, s->be, snap->dev};
        return snap;
    }
    q35_snapshot *snap = snapshot_alloc(s, NULL, s->pos, e);
    if (snap) copy_state(s, snap->data, s->pos, true);
    return snap;
}

int q35_state_restore(q35_state *s, const q35_snapshot *snap, q35_err *e) {
    if (!s || !snap) return q35_err_set(e, Q35_EINVAL, "q35_state_restore: no state or snapshot");
    if (snap->model != s->model || snap->model_generation != s->model_generation)
        return q35_err_set(e, Q35_EINVAL,
                           "q35_state_restore: the snapshot comes from another model or load");
    if (snap->pos > s->n_ctx)
        return q35_err_set(e, Q35_EOVERFLOW,
                           "q35_state_restore: snapshot at position %d does not fit in %d "
                           "positions",
                           snap->pos, s->n_ctx);
    if (s->be || snap->dev) {
        int rc = s->be && snap->be == s->be
                     ? s->be->restore(s->be_state, snap->dev, snap->pos, e)
                     : q35_err_set(e, Q35_EINVAL, "q35_state_restore: snapshot of another device");
        if (rc) return rc;
    } else {
        restore_state(s, snap->data, snap->pos);
    }
    s->pos = snap->pos;
    return Q35_OK;
}

void q35_state_keep_spare(q35_state *s, int extra) {
    if (!s || s->be || extra < 0) return;
    int P = extra > s->n_ctx - s->pos ? s->n_ctx : s->pos + extra;
    size_t n = copy_state(s, NULL, P, true);
    if (!n || (s->spare && s->spare_floats >= n)) return;
    free(s->spare);
    s->spare_floats = 0;
    s->spare = malloc(n * sizeof(float));
    if (!s->spare) return;
    /* one write a page backs it (not zeros: malloc + memset 0 may become
     * calloc, whose fresh pages stay unbacked) */
    volatile unsigned char *b = (volatile unsigned char *)s->spare;
    for (size_t o = 0; o < n * sizeof(float); o += 4096)
        b[o] = 1;
    s->spare_floats = n;
}

int q35_snapshot_pos(const q35_snapshot *snap) {
    return snap ? snap->pos : 0;
}

size_t q35_snapshot_bytes(const q35_snapshot *snap) {
    return snap ? sizeof *snap + snap->n_floats * sizeof(float) : 0;
}

void q35_snapshot_free(q35_snapshot *snap) {
    if (!snap) return;
    if (snap->dev) snap->be->snapshot_free(snap->dev);
    free(snap->data);
    free(snap);
}

/* ------------------------------------- evaluation with snapshots inside */

static q35_snapshot *snapshot_alloc(const q35_state *s, q35_state *taker, int P, q35_err *e);

/* q35_state_eval_snapshots on a device state: the pieces between snapshot
 * points go through one after the other, each snapshot a device copy. On
 * failure the snapshots taken are freed and the state is put back. */
static int backend_eval(q35_state *s, const int32_t *ids, int n, float *logits, bool all_logits,
                        const int *at, int n_at, q35_snapshot **snaps, q35_err *e) {
    int V = s->model->cfg.vocab_size, pos0 = s->pos, done = 0, rc = Q35_OK;
    q35_snapshot *start = n_at ? q35_state_snapshot(s, e) : NULL;
    if (n_at && !start) return e ? e->code : Q35_ENOMEM;
    for (int i = 0; i <= n_at && !rc; i++) {
        int end = i < n_at ? at[i] : n;
        if (end > done) {
            bool last = end == n;
            float *out = logits && all_logits ? logits + (size_t)done * V
                         : logits && last     ? logits
                                              : NULL;
            rc = s->be->eval(s->be_state, s->pos, ids + done, end - done, out, all_logits, e);
            if (!rc) s->pos += end - done;
            done = end;
        }
        if (!rc && i < n_at && !(snaps[i] = q35_state_snapshot(s, e)))
            rc = e ? e->code : Q35_ENOMEM;
        if (rc) {
            for (int j = 0; j < i; j++) /* the ones taken before the failure */
                q35_snapshot_free(snaps[j]);
            if (start) q35_state_restore(s, start, NULL);
            s->pos = pos0;
        }
    }
    q35_snapshot_free(start);
    return rc;
}

int q35_state_eval_snapshots(const q35_model *m, q35_state *s, const int32_t *ids, int n,
                             float *logits, bool all_logits, const int *at, int n_at,
                             q35_snapshot **snaps, q35_err *e) {
    const char *what = n_at ? "q35_state_eval_snapshots" : "q35_state_eval";
    int rc = state_matches(m, s, what, e);
    if (rc) return rc;
    if (n < 1 || !ids) return q35_err_set(e, Q35_EINVAL, "%s: no tokens", what);
    int V = m->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return q35_err_set(e, Q35_EINVAL,
                               "%s: token %d (id %d) is outside the vocabulary 0..%d", what, i,
                               ids[i], V - 1);
    if (n > s->n_ctx - s->pos)
        return q35_err_set(e, Q35_EOVERFLOW,
                           "%s: %d tokens at position %d do not fit in %d positions", what, n,
                           s->pos, s->n_ctx);
    if (n_at < 0 || n_at > n || (n_at > 0 && (!at || !snaps)))
        return q35_err_set(e, Q35_EINVAL, "%s: bad snapshot list", what);
    for (int i = 0; i < n_at; i++)
        if (at[i] < 1 || at[i] > n || (i > 0 && at[i] <= at[i - 1]))
            return q35_err_set(e, Q35_EINVAL,
                               "%s: snapshot point %d (%d) is not in 1..%d or not increasing", what,
                               i, at[i], n);

    if (s->be) return backend_eval(s, ids, n, logits, all_logits, at, n_at, snaps, e);
    /* every snapshot is allocated before anything runs, so a failure leaves
     * the state as it was */
    q35_capture caps[Q35_MAX_CAPTURES];
    if (n_at > Q35_MAX_CAPTURES)
        return q35_err_set(e, Q35_EINVAL, "%s: more than %d snapshot points", what,
                           Q35_MAX_CAPTURES);
    for (int i = 0; i < n_at; i++) {
        caps[i].pos = s->pos + at[i];
        caps[i].snap = snapshot_alloc(s, s, caps[i].pos, e);
        if (!caps[i].snap) {
            for (int j = 0; j < i; j++)
                q35_snapshot_free(caps[j].snap);
            return e ? e->code : Q35_ENOMEM;
        }
    }
    s->caps = caps;
    s->n_caps = n_at;
    for (int off = 0; off < n; off += s->max_batch) {
        int T = n - off < s->max_batch ? n - off : s->max_batch;
        bool last = off + T == n;
        float *out = NULL;
        if (logits && all_logits)
            out = logits + (size_t)off * V;
        else if (logits && last)
            out = logits;
        q35_forward(m, s, ids + off, T, out, all_logits);
    }
    s->caps = NULL;
    s->n_caps = 0;
    /* DeltaNet parts were captured during the pass; the attention parts are
     * the cache rows below each point, untouched since */
    for (int i = 0; i < n_at; i++) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            if (!s->layers[l].kc) continue;
            for (int part = 0; part < 2; part++)
                memcpy(q35_snapshot_part(caps[i].snap, s, l, part), part_in_state(s, l, part),
                       part_len(s, caps[i].pos, l, part) * sizeof(float));
        }
        snaps[i] = caps[i].snap;
    }
    return Q35_OK;
}
