/* save_gguf.c — q35_model (HF layout, compute forms) to a GGUF file in
 * llama.cpp's `qwen35` layout, undoing exactly what load_gguf.c does:
 *  - Names: token_embd, output (untied models only), output_norm and
 *    blk.N.{attn_norm, post_attention_norm, ffn_{gate,up,down}, attn_qkv,
 *    attn_gate, ssm_beta, ssm_alpha, ssm_conv1d, ssm_dt.bias, ssm_a,
 *    ssm_norm, ssm_out, attn_{q,k,v,output}, attn_{q,k}_norm}, in the order
 *    convert_hf_to_gguf.py writes them (HF names sorted), so a bf16 file
 *    of a bf16 checkpoint holds the same data section as llama.cpp's.
 *  - Shapes in ggml order (ne[0] = columns); vectors are 1-D, conv taps
 *    [C, K] are ne = {K, C}.
 *  - Values as q35 holds them: norm weights already 1+w, ssm_a already
 *    -exp(A_log), ssm_norm plain (GGUF stores exactly these forms).
 *  - Where value heads outnumber key heads, per-value-head axes go from
 *    HF's grouped order to GGUF's tiled one (GGUF head s*nk + k holds HF
 *    head k*r + s): the v rows of attn_qkv, the rows of attn_gate,
 *    ssm_alpha and ssm_beta, the entries of ssm_a and ssm_dt.bias, the v
 *    channels of ssm_conv1d and the columns of ssm_out.
 *  - Matrices take the requested type; rows whose type does not change are
 *    copied byte for byte (head moves included, a block at a time when
 *    blocks stay whole), others go through float32 and q35_ggml_quantize /
 *    round-to-nearest-even, as llama.cpp's tools do. Everything else is F32.
 * mtp.* tensors are not written (llama.cpp's qwen35 layout has no place
 * for them); the stats count them. */
#include "model/save_gguf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/half.h"
#include "core/mapped_file.h"
#include "formats/gguf_quants.h"
#include "kernels/repack_x16.h"
#include "model/load_gguf.h"

#define MAX_CONFIG_BYTES (4u << 20)

/* ggml's type number of a q35 dtype (all five are ggml types). */
static uint32_t ggml_type_of(q35_dtype d) {
    switch (q35_dtype_x16_base(d)) {
    case Q35_DT_F32: return Q35_GGML_F32;
    case Q35_DT_F16: return Q35_GGML_F16;
    case Q35_DT_BF16: return Q35_GGML_BF16;
    case Q35_DT_Q8_0: return Q35_GGML_Q8_0;
    case Q35_DT_Q4_K: return Q35_GGML_Q4_K;
    case Q35_DT_Q6_K: return Q35_GGML_Q6_K;
    case Q35_DT_Q5_K: return Q35_GGML_Q5_K;
    default: return Q35_GGML_Q4_0;
    }
}

/* llama.cpp's llama_ftype for general.file_type. */
static uint32_t file_type_of(q35_dtype d) {
    switch (q35_dtype_x16_base(d)) {
    case Q35_DT_F32: return 0;
    case Q35_DT_F16: return 1;
    case Q35_DT_Q4_0: return 2;
    case Q35_DT_Q8_0: return 7;
    default: return 32; /* BF16 */
    }
}

/* ---------------------------------------------------------- head order */

/* A run of nv blocks of `unit` rows (or columns) from `start`, one per
 * value head, that GGUF keeps in tiled order. */
typedef struct head_order {
    int64_t start, unit;
    int nk, nv;
} head_order;

static bool moves(const head_order *o) {
    return o && o->nv != o->nk;
}

/* The HF index whose content GGUF index g holds (load_gguf.c's gguf_index
 * inverted). */
static int64_t hf_index(const head_order *o, int64_t g) {
    if (!moves(o) || g < o->start || g >= o->start + (int64_t)o->nv * o->unit) return g;
    int64_t jg = (g - o->start) / o->unit, within = (g - o->start) % o->unit;
    int64_t s = jg / o->nk, k = jg % o->nk, r = o->nv / o->nk;
    return o->start + (k * r + s) * o->unit + within;
}

/* ------------------------------------------------------------- the plan */

/* One tensor of the file: a [rows, cols] source in HF order (a vector is
 * one row) and how it is written. */
typedef struct item {
    char name[64];
    q35_tensor src; /* F32 view for float vectors */
    int n_dims;     /* 1 for vectors, else 2 */
    q35_dtype out;
    head_order rows, cols;
    bool has_rows, has_cols;
} item;

typedef struct plan {
    item *items;
    int n, cap;
    q35_err *e;
} plan;

static item *add(plan *p, const char *name) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 128;
        item *it = realloc(p->items, (size_t)cap * sizeof *it);
        if (!it) {
            q35_err_set(p->e, Q35_ENOMEM, "out of memory");
            return NULL;
        }
        p->items = it;
        p->cap = cap;
    }
    item *it = &p->items[p->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    return it;
}

/* The type a matrix is written as: `want`, unless that is a block type its
 * row length cannot take. */
static q35_dtype matrix_type(const q35_tensor *t, q35_dtype want, const char *name,
                             q35_gguf_save_stats *st) {
    if (!q35_dtype_is_quant(want) || t->shape[1] % Q35_QBLOCK == 0) return want;
    q35_dtype fb = t->dtype == Q35_DT_F16 ? Q35_DT_F16 : Q35_DT_BF16;
    if (st->n_fallbacks < Q35_SAVE_MAX_FALLBACKS)
        snprintf(st->fallbacks[st->n_fallbacks], sizeof st->fallbacks[0], "%s -> %s", name,
                 q35_dtype_name(fb));
    st->n_fallbacks++;
    return fb;
}

static int add_matrix(plan *p, const char *name, const q35_tensor *t, q35_dtype want,
                      const head_order *rows, const head_order *cols, q35_gguf_save_stats *st) {
    if (!t->data || t->ndim != 2)
        return q35_err_set(p->e, Q35_EINVAL, "tensor %s: the model holds no 2-D matrix for it",
                           name);
    item *it = add(p, name);
    if (!it) return Q35_ENOMEM;
    it->src = *t;
    it->n_dims = 2;
    it->out = matrix_type(t, want, name, st);
    if (rows) it->rows = *rows, it->has_rows = true;
    if (cols) it->cols = *cols, it->has_cols = true;
    return Q35_OK;
}

/* A float vector [rows, cols] (rows 1: a 1-D tensor), always F32. */
static int add_f32(plan *p, const char *name, const float *v, int64_t rows, int64_t cols,
                   const head_order *row_order, const head_order *col_order) {
    if (!v) return q35_err_set(p->e, Q35_EINVAL, "tensor %s: the model holds no data for it", name);
    item *it = add(p, name);
    if (!it) return Q35_ENOMEM;
    it->src = (q35_tensor){Q35_DT_F32, 2, {rows, cols}, v};
    it->n_dims = rows == 1 ? 1 : 2;
    it->out = Q35_DT_F32;
    if (row_order) it->rows = *row_order, it->has_rows = true;
    if (col_order) it->cols = *col_order, it->has_cols = true;
    return Q35_OK;
}

static int plan_layer(plan *p, const q35_model *m, int i, q35_dtype type, q35_gguf_save_stats *st) {
    const q35_config *c = &m->cfg;
    const q35_layer *L = &m->layers[i];
    const int64_t H = c->hidden_size;
    char n[64];
    int rc;
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", i, s), n)
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x))) return rc;                                                                 \
    } while (0)
    TRY(add_f32(p, NAME("attn_norm.weight"), L->attn_norm, 1, H, NULL, NULL));
    if (!L->full_attn) {
        const int nk = c->lin_k_heads, nv = c->lin_v_heads;
        const int64_t dk = c->lin_k_dim, dv = c->lin_v_dim;
        const int64_t C = q35_config_conv_channels(c), qk = 2 * nk * dk;
        const head_order v_rows = {qk, dv, nk, nv};  /* v part of qkv / conv channels */
        const head_order heads_dv = {0, dv, nk, nv}; /* z rows, out_proj columns */
        const head_order heads_1 = {0, 1, nk, nv};   /* a, b rows; A, dt entries */
        TRY(add_f32(p, NAME("ssm_a"), L->A, 1, nv, NULL, &heads_1));
        TRY(add_f32(p, NAME("ssm_conv1d.weight"), L->conv_w, C, c->conv_kernel, &v_rows, NULL));
        TRY(add_f32(p, NAME("ssm_dt.bias"), L->dt_bias, 1, nv, NULL, &heads_1));
        TRY(add_matrix(p, NAME("ssm_alpha.weight"), &L->w_a, type, &heads_1, NULL, st));
        TRY(add_matrix(p, NAME("ssm_beta.weight"), &L->w_b, type, &heads_1, NULL, st));
        TRY(add_matrix(p, NAME("attn_qkv.weight"), &L->w_qkv, type, &v_rows, NULL, st));
        TRY(add_matrix(p, NAME("attn_gate.weight"), &L->w_z, type, &heads_dv, NULL, st));
        TRY(add_f32(p, NAME("ssm_norm.weight"), L->gdn_norm, 1, dv, NULL, NULL));
        TRY(add_matrix(p, NAME("ssm_out.weight"), &L->w_out, type, NULL, &heads_dv, st));
    }
    TRY(add_matrix(p, NAME("ffn_down.weight"), &L->w_down, type, NULL, NULL, st));
    TRY(add_matrix(p, NAME("ffn_gate.weight"), &L->w_gate, type, NULL, NULL, st));
    TRY(add_matrix(p, NAME("ffn_up.weight"), &L->w_up, type, NULL, NULL, st));
    TRY(add_f32(p, NAME("post_attention_norm.weight"), L->mlp_norm, 1, H, NULL, NULL));
    if (L->full_attn) {
        const int64_t d = c->head_dim;
        TRY(add_f32(p, NAME("attn_k_norm.weight"), L->k_norm, 1, d, NULL, NULL));
        TRY(add_matrix(p, NAME("attn_k.weight"), &L->w_k, type, NULL, NULL, st));
        TRY(add_matrix(p, NAME("attn_output.weight"), &L->w_o, type, NULL, NULL, st));
        TRY(add_f32(p, NAME("attn_q_norm.weight"), L->q_norm, 1, d, NULL, NULL));
        TRY(add_matrix(p, NAME("attn_q.weight"), &L->w_q, type, NULL, NULL, st));
        TRY(add_matrix(p, NAME("attn_v.weight"), &L->w_v, type, NULL, NULL, st));
    }
#undef TRY
#undef NAME
    return Q35_OK;
}

static q35_dtype resolve(q35_dtype d, q35_dtype dflt) {
    return d == Q35_DT_SAME ? dflt : d;
}

static int make_plan(plan *p, const q35_model *m, const q35_gguf_save_opts *o,
                     q35_gguf_save_stats *st) {
    const q35_config *c = &m->cfg;
    const q35_dtype head = resolve(o->output_type, o->type),
                    embed = resolve(o->embed_type, o->type);
    int rc = Q35_OK;
    if (!c->tie_embeddings) rc = add_matrix(p, "output.weight", &m->lm_head, head, NULL, NULL, st);
    if (!rc)
        rc = add_matrix(p, "token_embd.weight", &m->embed, c->tie_embeddings ? head : embed, NULL,
                        NULL, st);
    for (int i = 0; i < c->n_layers && !rc; i++)
        rc = plan_layer(p, m, i, o->type, st);
    if (!rc) rc = add_f32(p, "output_norm.weight", m->final_norm, 1, c->hidden_size, NULL, NULL);
    return rc;
}

/* ------------------------------------------------------------- metadata */

/* n such that layer i is full attention exactly when (i+1) % n == 0, or 0. */
static int attention_interval(const q35_config *c) {
    for (int n = 1; n <= c->n_layers; n++) {
        bool ok = true;
        for (int i = 0; i < c->n_layers && ok; i++)
            ok = c->layer_full[i] == ((i + 1) % n == 0);
        if (ok) return n;
    }
    return 0;
}

static int model_kvs(q35_gguf_kvs *l, const q35_model *m, const q35_gguf_save_opts *o, q35_err *e) {
    const q35_config *c = &m->cfg;
    bool recurrent[Q35_MAX_LAYERS];
    for (int i = 0; i < c->n_layers; i++)
        recurrent[i] = !c->layer_full[i];
    const int every = attention_interval(c);
    int rc;
#define U32(k, v)                                                                                  \
    if ((rc = q35_gguf_kvs_set_u32(l, k, (uint32_t)(v), e))) return rc
#define F32(k, v)                                                                                  \
    if ((rc = q35_gguf_kvs_set_f32(l, k, (float)(v), e))) return rc
#define STR(k, v)                                                                                  \
    if ((rc = q35_gguf_kvs_set_str(l, k, v, e))) return rc
    /* llama.cpp's order, then q35's own keys */
    STR("general.architecture", "qwen35");
    STR("general.type", "model");
    if (o->name) STR("general.name", o->name);
    U32("qwen35.block_count", c->n_layers);
    if (c->max_position > 0) U32("qwen35.context_length", c->max_position);
    U32("qwen35.embedding_length", c->hidden_size);
    U32("qwen35.feed_forward_length", c->intermediate_size);
    U32("qwen35.attention.head_count", c->n_heads);
    U32("qwen35.attention.head_count_kv", c->n_kv_heads);
    if (o->n_rope_sections > 0 &&
        (rc = q35_gguf_kvs_set_arr_i32(l, "qwen35.rope.dimension_sections", o->rope_sections,
                                       (size_t)o->n_rope_sections, e)))
        return rc;
    F32("qwen35.rope.freq_base", c->rope_theta);
    F32("qwen35.attention.layer_norm_rms_epsilon", c->rms_eps);
    U32("qwen35.attention.key_length", c->head_dim);
    U32("qwen35.attention.value_length", c->head_dim);
    U32("general.file_type", file_type_of(o->type));
    U32("qwen35.ssm.conv_kernel", c->conv_kernel);
    U32("qwen35.ssm.state_size", c->lin_k_dim);
    U32("qwen35.ssm.group_count", c->lin_k_heads);
    U32("qwen35.ssm.time_step_rank", c->lin_v_heads);
    U32("qwen35.ssm.inner_size", (int64_t)c->lin_v_heads * c->lin_v_dim);
    if ((rc = q35_gguf_kvs_set_arr_bool(l, "qwen35.attention.recurrent_layers", recurrent,
                                        (size_t)c->n_layers, e)))
        return rc;
    if (every) U32("qwen35.full_attention_interval", every);
    U32("qwen35.rope.dimension_count", c->rotary_dim);
    U32("general.quantization_version", 2);
    U32("general.alignment", Q35_GGUF_DEFAULT_ALIGNMENT);
    U32("q35.convert.version", Q35_CONVERT_VERSION);
    if (o->source) STR("q35.convert.source", o->source);
    if ((rc = q35_gguf_kvs_merge(l, o->extra, e))) return rc;
    /* Without a tokenizer the end-of-sequence id still has to travel: it
     * is what q35 (and llama.cpp) stop at. */
    if (c->n_eos > 0 && !q35_gguf_kvs_find(l, "tokenizer.ggml.eos_token_id"))
        U32("tokenizer.ggml.eos_token_id", c->eos_ids[0]);
#undef U32
#undef F32
#undef STR
    return Q35_OK;
}

/* ----------------------------------------------------------------- data */

static int encode_row(q35_dtype d, const float *x, int64_t n, unsigned char *dst, q35_err *e) {
    switch (d) {
    case Q35_DT_F32: memcpy(dst, x, (size_t)n * sizeof *x); return Q35_OK;
    case Q35_DT_F16:
    case Q35_DT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = d == Q35_DT_BF16 ? q35_f32_to_bf16(x[i]) : q35_f32_to_f16(x[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
        return Q35_OK;
    default: return q35_ggml_quantize(ggml_type_of(d), x, dst, n, e);
    }
}

/* Writes one tensor row by row into the writer. */
static int write_item(q35_gguf_writer *w, const item *it, unsigned char *row, float *f, float *g,
                      q35_err *e) {
    const q35_tensor *t = &it->src;
    const int64_t rows = t->shape[0], cols = t->shape[1];
    /* a matrix repacked at load (repack_x16.h) is its file type, a row
     * back in the file's layout at a time (into g, unused on that path) */
    const q35_dtype sdt = q35_dtype_x16_base(t->dtype);
    const bool x16 = q35_dtype_is_x16(t->dtype);
    const size_t src_rb = q35_row_bytes(sdt, cols), out_rb = q35_row_bytes(it->out, cols);
    const head_order *ro = it->has_rows ? &it->rows : NULL, *co = it->has_cols ? &it->cols : NULL;
    const int bel = q35_dtype_block_elems(sdt);
    const size_t bb = q35_dtype_block_bytes(sdt);
    /* same type: bytes move as they are, whole blocks at a time */
    const bool raw =
        it->out == sdt && (!moves(co) || (co->start % bel == 0 && co->unit % bel == 0));
    for (int64_t r = 0; r < rows; r++) {
        const unsigned char *src =
            (const unsigned char *)t->data + (size_t)hf_index(ro, r) * src_rb;
        if (raw && x16) {
            q35_x16_rows(t, hf_index(ro, r), 1, (uint8_t *)g);
            src = (const unsigned char *)g;
        }
        const unsigned char *out = src;
        int rc = Q35_OK;
        if (raw && moves(co)) {
            for (int64_t j = 0; j < cols / bel; j++)
                memcpy(row + (size_t)j * bb, src + (size_t)(hf_index(co, j * bel) / bel) * bb, bb);
            out = row;
        } else if (!raw) {
            rc = q35_tensor_row_to_f32(t, hf_index(ro, r), f, e);
            const float *x = f;
            if (!rc && moves(co)) {
                for (int64_t c = 0; c < cols; c++)
                    g[c] = f[hf_index(co, c)];
                x = g;
            }
            if (!rc) rc = encode_row(it->out, x, cols, row, e);
            out = row;
        }
        if (!rc) rc = q35_gguf_writer_put(w, out, out_rb, e);
        if (rc) {
            q35_err_prefix(e, "tensor %s", it->name);
            return rc;
        }
    }
    return Q35_OK;
}

static bool is_matrix_type(q35_dtype d) {
    return d >= Q35_DT_F32 && d < Q35_DT_COUNT;
}

int q35_model_save_gguf(const q35_model *m, const char *path, const q35_gguf_save_opts *o,
                        q35_gguf_save_stats *stats, q35_err *e) {
    q35_gguf_save_stats local;
    q35_gguf_save_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!m || !m->loaded || !m->layers)
        return q35_err_set(e, Q35_ESTATE, "%s: the model is not loaded", path);
    if (!is_matrix_type(o->type) || !is_matrix_type(resolve(o->output_type, o->type)) ||
        !is_matrix_type(resolve(o->embed_type, o->type)))
        return q35_err_set(e, Q35_EINVAL, "%s: bad matrix type", path);
    if (o->n_rope_sections < 0 || o->n_rope_sections > 4)
        return q35_err_set(e, Q35_EINVAL, "%s: %d rope sections (at most 4)", path,
                           o->n_rope_sections);
    plan p = {.e = e};
    q35_gguf_kvs kvs = {0};
    q35_gguf_writer w = {0};
    unsigned char *row = NULL;
    float *f = NULL, *g = NULL;
    int rc = make_plan(&p, m, o, st);
    if (!rc) rc = model_kvs(&kvs, m, o, e);
    int64_t max_cols = 1;
    for (int i = 0; i < p.n && !rc; i++) {
        const item *it = &p.items[i];
        const int64_t ne[2] = {it->src.shape[1], it->src.shape[0]};
        rc = q35_gguf_writer_add_tensor(&w, it->name, ggml_type_of(it->out), it->n_dims, ne, e);
        if (it->src.shape[1] > max_cols) max_cols = it->src.shape[1];
    }
    if (rc) q35_err_prefix(e, "%s", path); /* the writer's own messages name it already */
    if (!rc) {
        row = malloc((size_t)max_cols * 4);
        f = malloc((size_t)max_cols * sizeof *f);
        g = malloc((size_t)max_cols * sizeof *g);
        if (!row || !f || !g) rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    if (!rc) rc = q35_gguf_writer_begin(&w, &kvs, path, e);
    for (int i = 0; i < p.n && !rc; i++) {
        rc = write_item(&w, &p.items[i], row, f, g, e);
        if (rc) break;
        const q35_dtype d = p.items[i].out;
        st->n_by_type[d]++;
        st->bytes_by_type[d] += w.tensors[i].n_bytes;
        if (o->progress) o->progress(o->progress_user, i + 1, p.n);
    }
    if (!rc) rc = q35_gguf_writer_finish(&w, &st->file_bytes, e);
    if (!rc) {
        st->n_tensors = p.n;
        st->n_dropped = m->n_extra;
    }
    q35_gguf_writer_free(&w);
    q35_gguf_kvs_free(&kvs);
    free(p.items);
    free(row);
    free(f);
    free(g);
    return rc;
}

/* -------------------------------------------------------- source helpers */

static int sections_from_json(const cJSON *arr, const char *where, int32_t s[4], int *n,
                              q35_err *e) {
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 65536 ||
            x->valuedouble != (int32_t)x->valuedouble)
            return q35_err_set(e, Q35_EFORMAT, "%s: mrope_section holds a bad value", where);
        if (k == 4)
            return q35_err_set(e, Q35_EFORMAT, "%s: mrope_section has more than 4 entries", where);
        s[k++] = (int32_t)x->valuedouble;
    }
    *n = k ? 4 : 0;
    return Q35_OK;
}

static int sections_from_config(const char *dir, int32_t s[4], int *n, q35_err *e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *text = q35_read_text_file(path, MAX_CONFIG_BYTES, &len, e);
    if (!text) return e ? e->code : Q35_EIO;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return q35_err_set(e, Q35_EFORMAT, "%s: not valid JSON", path);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (!cJSON_IsObject(c)) c = root;
    static const char *const holders[] = {"rope_parameters", "rope_scaling"};
    int rc = Q35_OK;
    for (int i = 0; i < 2; i++) {
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(c, holders[i]);
        const cJSON *sec =
            cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "mrope_section") : NULL;
        if (cJSON_IsArray(sec)) {
            rc = sections_from_json(sec, path, s, n, e);
            break;
        }
    }
    cJSON_Delete(root);
    return rc;
}

static int sections_from_gguf(const char *file, int32_t s[4], int *n, q35_err *e) {
    q35_gguf g;
    int rc = q35_gguf_open(&g, file, e);
    if (rc) return rc;
    const q35_gguf_kv *kv = q35_gguf_find(&g, "qwen35.rope.dimension_sections");
    if (kv && (kv->type != Q35_GGUF_ARRAY || kv->arr_n > 8))
        rc = q35_err_set(e, Q35_EFORMAT, "%s: qwen35.rope.dimension_sections is not a short array",
                         file);
    for (uint64_t i = 0; kv && !rc && i < kv->arr_n; i++) {
        int64_t v;
        rc = q35_gguf_arr_int(kv, i, &v, e);
        if (rc) break;
        if (i < 4 && v >= 0 && v <= 65536)
            s[i] = (int32_t)v;
        else if (v != 0)
            rc = q35_err_set(e, Q35_EFORMAT,
                             "%s: qwen35.rope.dimension_sections[%llu] = %lld cannot be kept", file,
                             (unsigned long long)i, (long long)v);
    }
    if (!rc && kv) *n = 4;
    q35_gguf_close(&g);
    return rc;
}

int q35_rope_sections_of_source(const char *src, int32_t sections[4], int *n, q35_err *e) {
    memset(sections, 0, 4 * sizeof *sections);
    *n = 0;
    struct stat st;
    if (stat(src, &st) != 0) return q35_err_set(e, Q35_ENOTFOUND, "%s: no such file", src);
    if (S_ISDIR(st.st_mode)) return sections_from_config(src, sections, n, e);
    return sections_from_gguf(src, sections, n, e);
}

int q35_gguf_kvs_carry_source(q35_gguf_kvs *out, const q35_gguf *src, q35_err *e) {
    static const char *const own[] = {"general.architecture", "general.file_type",
                                      "general.alignment", "general.quantization_version",
                                      "general.type"};
    for (int64_t i = 0; i < src->n_kv; i++) {
        const q35_gguf_kv *kv = &src->kvs[i];
        const q35_gguf_str k = kv->key;
        bool tok = k.len > 10 && !memcmp(k.p, "tokenizer.", 10);
        bool gen = k.len > 8 && !memcmp(k.p, "general.", 8);
        for (size_t j = 0; gen && j < sizeof own / sizeof own[0]; j++)
            gen = !q35_gguf_str_eq(k, own[j]);
        if (!tok && !gen) continue;
        int rc = q35_gguf_kvs_set_parsed(out, kv, e);
        if (rc) return rc;
    }
    return Q35_OK;
}
