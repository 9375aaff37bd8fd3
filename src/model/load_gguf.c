/* load_gguf.c — a qwen35 GGUF file (as written by llama.cpp's
 * convert_hf_to_gguf.py and llama-quantize) to a q35_model in HF layout.
 *
 * What differs from an HF checkpoint, and what this file does about it:
 *  - Names: blk.N.{attn_norm, post_attention_norm, ffn_{gate,up,down},
 *    attn_qkv, attn_gate (= in_proj_z), ssm_beta (= in_proj_b), ssm_alpha
 *    (= in_proj_a), ssm_conv1d, ssm_dt.bias, ssm_a, ssm_norm, ssm_out,
 *    attn_{q,k,v,output}, attn_{q,k}_norm}, token_embd, output_norm, output.
 *  - Shapes are listed fastest dimension first (ne[0] = columns).
 *  - Compute forms are already applied: zero-centred norm weights hold 1+w
 *    and ssm_a holds -exp(A_log), exactly what q35_model keeps, so they are
 *    taken as they are; ssm_norm is the plain weight, also as q35 keeps it.
 *  - Where DeltaNet value heads outnumber key heads (r = nv/nk > 1), every
 *    per-value-head axis is stored in "tiled" order: GGUF head g = s*nk + k
 *    holds HF head j = k*r + s (key head k, sub-head s). The v rows of
 *    attn_qkv, the rows of attn_gate, ssm_alpha, ssm_beta, the entries of
 *    ssm_a and ssm_dt.bias, the v channels of ssm_conv1d and the columns of
 *    ssm_out are permuted back here (checked against the safetensors of the
 *    same model in tests/forward/test_gguf_logits.c). q/k parts and ssm_norm
 *    (shared by all heads) are not reordered.
 *  - Q8_0 and Q4_0 matrices are q35 compute types (model/tensor.h uses
 *    ggml's block layouts): they stay in the file map, or are copied block
 *    by block when heads must be reordered. Other quantized types are
 *    decoded to float32 once at load time; F32/F16/BF16 matrices needing
 *    no permutation stay in the file map.
 */
#include "model/load_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "formats/file_kind.h"
#include "formats/gguf_quants.h"

#define MAX_DIM (1 << 17)
#define MAX_FF (1 << 19)
#define MAX_HEADS 4096
#define MAX_HEAD_DIM 8192
#define MAX_CONV 64
#define MAX_CTX (1 << 30)

bool q35_path_is_gguf(const char *path) {
    q35_file_kind k = q35_file_kind_of(path);
    if (k == Q35_FILE_GGUF) return true;
    /* a file named .gguf that is not one (or is not there) gets the GGUF
     * parser's message */
    size_t n = path ? strlen(path) : 0;
    return (k == Q35_FILE_OTHER || k == Q35_FILE_MISSING) && n >= 5 &&
           !strcasecmp(path + n - 5, ".gguf");
}

/* ---------------------------------------------------------------- config */

typedef struct meta {
    const q35_gguf *g;
    char arch[64]; /* "qwen35" */
    q35_err *e;
} meta;

static const char *key(const meta *mt, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "%s.%s", mt->arch, suffix);
    return buf;
}

/* An integer under the architecture's prefix, in [lo, hi]; absent: dflt
 * when dflt >= lo, else an error. */
static int meta_int(const meta *mt, const char *suffix, int64_t lo, int64_t hi, int64_t dflt,
                    int *out) {
    char k[160];
    int64_t v;
    key(mt, suffix, k, sizeof k);
    if (!q35_gguf_find(mt->g, k)) {
        if (dflt >= lo) {
            *out = (int)dflt;
            return Q35_OK;
        }
        return q35_err_set(mt->e, Q35_EFORMAT, "%s: metadata key %s is missing", mt->g->where, k);
    }
    int rc = q35_gguf_get_int(mt->g, k, lo, hi, &v, mt->e);
    if (rc) return rc;
    *out = (int)v;
    return Q35_OK;
}

static int meta_float(const meta *mt, const char *suffix, double lo, double hi, double dflt,
                      double *out) {
    char k[160];
    key(mt, suffix, k, sizeof k);
    if (!q35_gguf_find(mt->g, k)) {
        *out = dflt;
        return Q35_OK;
    }
    double v;
    int rc = q35_gguf_get_float(mt->g, k, &v, mt->e);
    if (rc) return rc;
    if (!(v >= lo && v <= hi))
        return q35_err_set(mt->e, Q35_EFORMAT, "%s: %s = %g is outside [%g, %g]", mt->g->where, k,
                           v, lo, hi);
    *out = v;
    return Q35_OK;
}

/* Which layers are full attention: attention.recurrent_layers (one bool per
 * block) or else full_attention_interval. llama.cpp's converter writes the
 * interval from transformers' default next to the array whatever the
 * pattern, so where the two disagree the array is the truth. */
static int read_layer_types(const meta *mt, int n_blocks, q35_config *c) {
    char k[160];
    const q35_gguf_kv *rec =
        q35_gguf_find(mt->g, key(mt, "attention.recurrent_layers", k, sizeof k));
    int every = 0, rc;
    if (q35_gguf_find(mt->g, key(mt, "full_attention_interval", k, sizeof k)) &&
        (rc = meta_int(mt, "full_attention_interval", 1, Q35_MAX_LAYERS, -1, &every)))
        return rc;
    key(mt, "attention.recurrent_layers", k, sizeof k);
    if (!rec && !every)
        return q35_err_set(mt->e, Q35_EFORMAT,
                           "%s: neither %s.attention.recurrent_layers nor "
                           "%s.full_attention_interval is given",
                           mt->g->where, mt->arch, mt->arch);
    if (rec) {
        if (rec->type != Q35_GGUF_ARRAY || rec->arr_n != (uint64_t)n_blocks)
            return q35_err_set(mt->e, Q35_EFORMAT,
                               "%s: %s must be an array of %d entries (one per block)",
                               mt->g->where, k, n_blocks);
    }
    bool disagree = false;
    for (int i = 0; i < c->n_layers; i++) {
        bool full = every && (i + 1) % every == 0;
        if (rec) {
            int64_t v;
            if ((rc = q35_gguf_arr_int(rec, (uint64_t)i, &v, mt->e))) return rc;
            if (every && full != !v) disagree = true;
            full = !v;
        }
        c->layer_full[i] = full;
    }
    if (rec && disagree)
        snprintf(c->layers_from, sizeof c->layers_from,
                 "GGUF %.60s (full_attention_interval %d disagrees, ignored)", k, every);
    else if (rec)
        snprintf(c->layers_from, sizeof c->layers_from, "GGUF %.60s", k);
    else
        snprintf(c->layers_from, sizeof c->layers_from, "GGUF %.40s.full_attention_interval %d",
                 mt->arch, every);
    return Q35_OK;
}

static int read_rope_sections(const meta *mt, const q35_config *c) {
    char k[160];
    const q35_gguf_kv *kv = q35_gguf_find(mt->g, key(mt, "rope.dimension_sections", k, sizeof k));
    if (!kv) return Q35_OK;
    /* Text positions are equal in every section, so the sections only have
     * to cover the rotary half-dims exactly (as config.c demands too). */
    if (kv->type != Q35_GGUF_ARRAY || kv->arr_n > 8)
        return q35_err_set(mt->e, Q35_EFORMAT, "%s: %s must be an array of at most 8 integers",
                           mt->g->where, k);
    int64_t sum = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        int64_t v;
        int rc = q35_gguf_arr_int(kv, i, &v, mt->e);
        if (rc) return rc;
        if (v < 0 || v > MAX_HEAD_DIM)
            return q35_err_set(mt->e, Q35_EFORMAT, "%s: %s[%llu] = %lld is out of range",
                               mt->g->where, k, (unsigned long long)i, (long long)v);
        sum += v;
    }
    if (sum != c->rotary_dim / 2)
        return q35_err_set(mt->e, Q35_EFORMAT,
                           "%s: contradictory metadata: %s sums to %lld but rope.dimension_count "
                           "is %d (expected %d pairs)",
                           mt->g->where, k, (long long)sum, c->rotary_dim, c->rotary_dim / 2);
    return Q35_OK;
}

static int read_eos(const meta *mt, q35_config *c) {
    static const char *const keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                       "tokenizer.ggml.eom_token_id"};
    c->n_eos = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!q35_gguf_find(mt->g, keys[i])) continue;
        int64_t id;
        int rc = q35_gguf_get_int(mt->g, keys[i], 0, c->vocab_size - 1, &id, mt->e);
        if (rc) return rc;
        bool seen = false;
        for (int j = 0; j < c->n_eos; j++)
            seen |= c->eos_ids[j] == id;
        if (!seen && c->n_eos < Q35_MAX_EOS) c->eos_ids[c->n_eos++] = (int)id;
    }
    return Q35_OK;
}

static int read_config(meta *mt, q35_config *c) {
    const q35_gguf *g = mt->g;
    q35_err *e = mt->e;
    q35_gguf_str arch;
    int rc = q35_gguf_get_str(g, "general.architecture", &arch, e);
    if (rc) return rc;
    if (!q35_gguf_str_eq(arch, "qwen35")) {
        char shown[128];
        return q35_err_set(
            e, Q35_EFORMAT,
            "%s: general.architecture is \"%s\"; q35 reads only \"qwen35\" (Qwen3.5)", g->where,
            q35_gguf_str_print(arch, shown, sizeof shown));
    }
    snprintf(mt->arch, sizeof mt->arch, "qwen35");
    memset(c, 0, sizeof *c);

    int n_blocks = 0, nextn = 0;
    if ((rc = meta_int(mt, "block_count", 1, Q35_MAX_LAYERS, -1, &n_blocks)) ||
        (rc = meta_int(mt, "nextn_predict_layers", 0, n_blocks - 1, 0, &nextn)))
        return rc;
    /* Multi-token-prediction blocks, when a converter includes them, come
     * after the model's own blocks and are not part of the forward pass. */
    c->n_layers = n_blocks - nextn;
    if ((rc = meta_int(mt, "embedding_length", 1, MAX_DIM, -1, &c->hidden_size)) ||
        (rc = meta_int(mt, "feed_forward_length", 1, MAX_FF, -1, &c->intermediate_size)) ||
        (rc = meta_int(mt, "attention.head_count", 1, MAX_HEADS, -1, &c->n_heads)) ||
        (rc = meta_int(mt, "attention.head_count_kv", 1, MAX_HEADS, c->n_heads, &c->n_kv_heads)) ||
        (rc = meta_int(mt, "attention.key_length", 1, MAX_HEAD_DIM, c->hidden_size / c->n_heads,
                       &c->head_dim)) ||
        (rc = meta_int(mt, "context_length", 0, MAX_CTX, 0, &c->max_position)))
        return rc;
    int v_len = 0;
    if ((rc = meta_int(mt, "attention.value_length", 1, MAX_HEAD_DIM, c->head_dim, &v_len)))
        return rc;
    if (v_len != c->head_dim)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: attention.value_length %d differs from attention.key_length %d",
                           g->where, v_len, c->head_dim);
    if ((rc = meta_int(mt, "rope.dimension_count", 2, c->head_dim, c->head_dim, &c->rotary_dim)))
        return rc;
    if (c->rotary_dim % 2)
        return q35_err_set(e, Q35_EFORMAT, "%s: rope.dimension_count %d is odd", g->where,
                           c->rotary_dim);
    double theta, eps;
    if ((rc = meta_float(mt, "rope.freq_base", 1.0, 1e12, 10000.0, &theta)) ||
        (rc = meta_float(mt, "attention.layer_norm_rms_epsilon", 1e-30, 1.0, 1e-6, &eps)))
        return rc;
    c->rope_theta = theta;
    c->rms_eps = (float)eps;
    if ((rc = read_layer_types(mt, n_blocks, c)) || (rc = read_rope_sections(mt, c))) return rc;

    bool any_linear = false;
    for (int i = 0; i < c->n_layers; i++)
        any_linear |= !c->layer_full[i];
    if (any_linear) {
        int inner = 0;
        if ((rc = meta_int(mt, "ssm.conv_kernel", 1, MAX_CONV, -1, &c->conv_kernel)) ||
            (rc = meta_int(mt, "ssm.state_size", 1, MAX_HEAD_DIM, -1, &c->lin_k_dim)) ||
            (rc = meta_int(mt, "ssm.group_count", 1, MAX_HEADS, -1, &c->lin_k_heads)) ||
            (rc = meta_int(mt, "ssm.time_step_rank", 1, MAX_HEADS, -1, &c->lin_v_heads)) ||
            (rc = meta_int(mt, "ssm.inner_size", 1, MAX_HEADS * MAX_HEAD_DIM, -1, &inner)))
            return rc;
        if (inner % c->lin_v_heads)
            return q35_err_set(e, Q35_EFORMAT,
                               "%s: ssm.inner_size %d is not a multiple of ssm.time_step_rank %d "
                               "(value heads)",
                               g->where, inner, c->lin_v_heads);
        c->lin_v_dim = inner / c->lin_v_heads;
    } else {
        c->conv_kernel = 4;
        c->lin_k_heads = c->lin_v_heads = c->lin_k_dim = c->lin_v_dim = 1;
    }

    /* The vocabulary is the embedding's row count. */
    const q35_gguf_tensor *emb = q35_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return q35_err_set(e, Q35_EFORMAT, "%s: missing tensor token_embd.weight", g->where);
    if (emb->ne[1] > (1 << 24) || emb->ne[2] != 1 || emb->ne[3] != 1)
        return q35_err_set(e, Q35_EFORMAT, "%s: token_embd.weight has an unusable shape", g->where);
    c->vocab_size = (int)emb->ne[1];
    c->tie_embeddings = q35_gguf_find_tensor(g, "output.weight") == NULL;
    if ((rc = read_eos(mt, c))) return rc;
    return q35_config_validate(c, g->where, e);
}

/* -------------------------------------------------------- head reordering */

/* A range of `nv * unit` rows (or columns) starting at `start`, holding nv
 * value-head blocks of `unit` in GGUF's tiled order; HF (and q35) want them
 * grouped by key head. */
typedef struct head_order {
    int64_t start, unit;
    int nk, nv;
} head_order;

/* Where HF index i lives in the GGUF tensor. */
static int64_t gguf_index(const head_order *o, int64_t i) {
    if (!o || i < o->start || i >= o->start + (int64_t)o->nv * o->unit) return i;
    int64_t j = (i - o->start) / o->unit, within = (i - o->start) % o->unit;
    int r = o->nv / o->nk;
    int64_t k = j / r, s = j % r;
    return o->start + (s * o->nk + k) * o->unit + within;
}

static bool is_identity(const head_order *o) {
    return !o || o->nv == o->nk;
}

/* --------------------------------------------------------------- binding */

typedef struct binder {
    q35_model *m;
    const q35_gguf *g;
    q35_err *e;
    bool uses_map;  /* some weight points into the file */
    size_t dropped; /* bytes of converted tensors whose pages were dropped */
} binder;

static const q35_gguf_tensor *find(binder *b, const char *name, int64_t rows, int64_t cols) {
    const q35_gguf_tensor *t = q35_gguf_find_tensor(b->g, name);
    if (!t) {
        q35_err_set(b->e, Q35_EFORMAT, "%s: missing tensor %s", b->g->where, name);
        return NULL;
    }
    /* [rows, cols] row-major is ne = {cols, rows, 1, 1} */
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1) {
        q35_err_set(b->e, Q35_EFORMAT,
                    "%s: tensor %s has shape ne=[%lld, %lld, %lld, %lld] but the metadata needs "
                    "ne=[%lld, %lld] (%lld rows of %lld)",
                    b->g->where, name, (long long)t->ne[0], (long long)t->ne[1],
                    (long long)t->ne[2], (long long)t->ne[3], (long long)cols, (long long)rows,
                    (long long)rows, (long long)cols);
        return NULL;
    }
    const q35_ggml_type_info *ti = q35_ggml_type_get(t->type);
    if (!ti->dequantizable) {
        q35_err_set(b->e, Q35_EFORMAT,
                    "%s: tensor %s has type %s, which q35 cannot read (supported: F32, F16, "
                    "BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, "
                    "IQ4_NL, IQ4_XS)",
                    b->g->where, name, ti->name);
        return NULL;
    }
    return t;
}

static void *alloc_or_fail(binder *b, size_t bytes, const char *name) {
    void *p = q35_model_alloc(b->m, bytes);
    if (!p)
        q35_err_set(b->e, Q35_ENOMEM, "%s: out of memory (%zu bytes) for tensor %s", b->g->where,
                    bytes, name);
    return p;
}

/* The compute dtype of a GGUF quantized type the kernels work on in
 * place, or Q35_DT_F32 for one they do not. */
static q35_dtype block_dtype(uint32_t type) {
    switch (type) {
    case Q35_GGML_Q8_0: return Q35_DT_Q8_0;
    case Q35_GGML_Q4_0: return Q35_DT_Q4_0;
    case Q35_GGML_Q4_K: return Q35_DT_Q4_K;
    case Q35_GGML_Q6_K: return Q35_DT_Q6_K;
    case Q35_GGML_Q5_K: return Q35_DT_Q5_K;
    default: return Q35_DT_F32;
    }
}

/* True if putting columns back in head order moves whole blocks of
 * `block` elements (each moved run starts and ends on a block boundary). */
static bool blocks_stay_whole(const head_order *col_order, int64_t block) {
    return is_identity(col_order) ||
           (col_order->start % block == 0 && col_order->unit % block == 0);
}

/* A Q8_0 / Q4_0 / Q4_K / Q6_K matrix in the compute form q35 shares with
 * ggml: in place when nothing moves, else its blocks copied into head
 * order (rows whole, columns a block at a time). */
static int bind_blocks(binder *b, const q35_gguf_tensor *t, const char *name, int64_t rows,
                       int64_t cols, const head_order *row_order, const head_order *col_order,
                       q35_tensor *out) {
    const q35_dtype dt = block_dtype(t->type);
    const int64_t be = q35_dtype_block_elems(dt);
    out->dtype = dt;
    if (is_identity(row_order) && is_identity(col_order)) {
        out->data = t->data; /* blocks need no alignment */
        b->uses_map = true;
        return Q35_OK;
    }
    const size_t rb = q35_row_bytes(dt, cols), bb = q35_dtype_block_bytes(dt);
    unsigned char *dst = alloc_or_fail(b, (size_t)rows * rb, name);
    if (!dst) return Q35_ENOMEM;
    for (int64_t r = 0; r < rows; r++) {
        const unsigned char *src = t->data + (size_t)gguf_index(row_order, r) * rb;
        unsigned char *drow = dst + (size_t)r * rb;
        if (is_identity(col_order)) {
            memcpy(drow, src, rb);
            continue;
        }
        for (int64_t j = 0; j < cols / be; j++)
            memcpy(drow + (size_t)j * bb, src + (size_t)(gguf_index(col_order, j * be) / be) * bb,
                   bb);
    }
    out->data = dst;
    return Q35_OK;
}

/* A quantized matrix of a type other than the target, when the model is to
 * be converted at load anyway (q35_load_opts.weights; Q5_K, IQ4_NL, ... and
 * also Q4_K / Q6_K then): decoded a row at a time and encoded straight into
 * the target type, so the whole float32 matrix never exists (the 0.8B's
 * Q6_K embedding would take 1 GB), and the file pages read are dropped
 * after. */
static int bind_requantized(binder *b, const q35_gguf_tensor *t, const char *name, int64_t rows,
                            int64_t cols, const head_order *row_order, const head_order *col_order,
                            q35_tensor *out) {
    const q35_dtype dt = b->m->requant;
    const q35_ggml_type_info *ti = q35_ggml_type_get(t->type);
    const size_t src_rb = (size_t)(cols / ti->block_elems) * (size_t)ti->block_bytes;
    const size_t rb = q35_row_bytes(dt, cols);
    unsigned char *dst = alloc_or_fail(b, (size_t)rows * rb, name);
    float *row = malloc(2 * (size_t)cols * sizeof *row);
    if (!dst || !row) {
        free(row);
        return dst ? q35_err_set(b->e, Q35_ENOMEM, "%s: out of memory for tensor %s", b->g->where,
                                 name)
                   : Q35_ENOMEM;
    }
    float *moved = row + cols;
    int rc = Q35_OK;
    for (int64_t r = 0; r < rows && !rc; r++) {
        const unsigned char *src = t->data + (size_t)gguf_index(row_order, r) * src_rb;
        rc = q35_ggml_dequantize(t->type, src, row, cols, b->e);
        if (rc) break;
        const float *use = row;
        if (!is_identity(col_order)) {
            for (int64_t c = 0; c < cols; c++)
                moved[c] = row[gguf_index(col_order, c)];
            use = moved;
        }
        rc = q35_ggml_quantize(dt == Q35_DT_Q8_0 ? Q35_GGML_Q8_0 : Q35_GGML_Q4_0, use,
                               dst + (size_t)r * rb, cols, b->e);
    }
    free(row);
    if (rc) return rc;
    q35_mapped_file_drop_pages(t->data, t->n_bytes);
    b->dropped += t->n_bytes;
    out->dtype = dt;
    out->data = dst;
    return Q35_OK;
}

/* Binds a [rows, cols] matrix whose rows (and/or columns) may need putting
 * back in HF head order. Plain float types keep their dtype (in place when
 * nothing moves and the data is aligned), as do Q8_0 and Q4_0 (the kernels
 * compute on their blocks) and Q4_K, Q5_K and Q6_K unless the model is being
 * converted to Q8_0 / Q4_0 at load (their columns must then move in whole
 * 256-element runs); other quantized types become float32. */
static int bind_matrix(binder *b, const char *name, int64_t rows, int64_t cols,
                       const head_order *row_order, const head_order *col_order, q35_tensor *out) {
    const q35_gguf_tensor *t = find(b, name, rows, cols);
    if (!t) return Q35_EFORMAT;
    const q35_ggml_type_info *ti = q35_ggml_type_get(t->type);
    q35_model_note_stored(b->m, q35_ggml_type_name(t->type), t->n_bytes);
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = cols;
    if ((t->type == Q35_GGML_Q8_0 || t->type == Q35_GGML_Q4_0) &&
        blocks_stay_whole(col_order, Q35_QBLOCK))
        return bind_blocks(b, t, name, rows, cols, row_order, col_order, out);
    if ((t->type == Q35_GGML_Q4_K || t->type == Q35_GGML_Q6_K || t->type == Q35_GGML_Q5_K) &&
        !q35_dtype_is_quant(b->m->requant) && blocks_stay_whole(col_order, Q35_KBLOCK))
        return bind_blocks(b, t, name, rows, cols, row_order, col_order, out);
    bool plain = t->type == Q35_GGML_F32 || t->type == Q35_GGML_F16 || t->type == Q35_GGML_BF16;
    if (!plain && q35_dtype_is_quant(b->m->requant) && cols % Q35_QBLOCK == 0)
        return bind_requantized(b, t, name, rows, cols, row_order, col_order, out);
    out->dtype = t->type == Q35_GGML_F16    ? Q35_DT_F16
                 : t->type == Q35_GGML_BF16 ? Q35_DT_BF16
                                            : Q35_DT_F32;
    size_t es = q35_dtype_size(out->dtype);
    bool moves = !is_identity(row_order) || !is_identity(col_order);
    if (plain && !moves && (uintptr_t)t->data % es == 0) {
        out->data = t->data;
        b->uses_map = true;
        return Q35_OK;
    }
    unsigned char *dst = alloc_or_fail(b, (size_t)(rows * cols) * es, name);
    if (!dst) return Q35_ENOMEM;
    size_t src_row_bytes = (size_t)(cols / ti->block_elems) * (size_t)ti->block_bytes;
    float *tmp = NULL;
    if (!plain && !is_identity(col_order)) {
        tmp = malloc((size_t)cols * sizeof *tmp);
        if (!tmp)
            return q35_err_set(b->e, Q35_ENOMEM, "%s: out of memory for tensor %s", b->g->where,
                               name);
    }
    for (int64_t r = 0; r < rows; r++) {
        const unsigned char *src = t->data + (size_t)gguf_index(row_order, r) * src_row_bytes;
        unsigned char *drow = dst + (size_t)r * (size_t)cols * es;
        if (plain) {
            if (is_identity(col_order)) {
                memcpy(drow, src, (size_t)cols * es);
            } else {
                for (int64_t c = 0; c < cols; c++)
                    memcpy(drow + (size_t)c * es, src + (size_t)gguf_index(col_order, c) * es, es);
            }
            continue;
        }
        float *frow = (float *)drow;
        int rc = q35_ggml_dequantize(t->type, src, tmp ? tmp : frow, cols, b->e);
        if (rc) {
            free(tmp);
            return rc;
        }
        if (tmp)
            for (int64_t c = 0; c < cols; c++)
                frow[c] = tmp[gguf_index(col_order, c)];
    }
    free(tmp);
    out->data = dst;
    return Q35_OK;
}

/* Converts a small tensor of [rows, cols] to float32. With an `order`, its
 * items of `item` consecutive floats (a conv channel's taps, or single
 * entries) are put back in HF head order. Values are taken as stored: GGUF
 * already holds q35's compute forms (1+w, -exp(A_log)). */
static int bind_f32(binder *b, const char *name, int64_t rows, int64_t cols, int64_t item,
                    const head_order *order, const float **out) {
    const q35_gguf_tensor *t = find(b, name, rows, cols);
    if (!t) return Q35_EFORMAT;
    size_t n = (size_t)(rows * cols);
    float *dst = alloc_or_fail(b, n * sizeof *dst, name);
    if (!dst) return Q35_ENOMEM;
    float *all = malloc(n * sizeof *all);
    if (!all) return q35_err_set(b->e, Q35_ENOMEM, "%s: out of memory", b->g->where);
    int rc = q35_ggml_dequantize(t->type, t->data, all, (int64_t)n, b->e);
    if (!rc)
        for (int64_t i = 0; i < (int64_t)n / item; i++)
            memcpy(dst + i * item, all + gguf_index(order, i) * item, (size_t)item * sizeof *dst);
    free(all);
    *out = dst;
    return rc;
}

static int bind_layer(binder *b, int i) {
    const q35_config *c = &b->m->cfg;
    q35_layer *L = &b->m->layers[i];
    const int64_t H = c->hidden_size, I = c->intermediate_size;
    char n[96];
    int rc;
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", i, s), n)
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x))) return rc;                                                                 \
    } while (0)
    L->full_attn = c->layer_full[i];
    TRY(bind_f32(b, NAME("attn_norm.weight"), 1, H, H, NULL, &L->attn_norm));
    TRY(bind_f32(b, NAME("post_attention_norm.weight"), 1, H, H, NULL, &L->mlp_norm));
    TRY(bind_matrix(b, NAME("ffn_gate.weight"), I, H, NULL, NULL, &L->w_gate));
    TRY(bind_matrix(b, NAME("ffn_up.weight"), I, H, NULL, NULL, &L->w_up));
    TRY(bind_matrix(b, NAME("ffn_down.weight"), H, I, NULL, NULL, &L->w_down));
    if (L->full_attn) {
        const int64_t nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim;
        TRY(bind_matrix(b, NAME("attn_q.weight"), nh * 2 * d, H, NULL, NULL, &L->w_q));
        TRY(bind_matrix(b, NAME("attn_k.weight"), nkv * d, H, NULL, NULL, &L->w_k));
        TRY(bind_matrix(b, NAME("attn_v.weight"), nkv * d, H, NULL, NULL, &L->w_v));
        TRY(bind_matrix(b, NAME("attn_output.weight"), H, nh * d, NULL, NULL, &L->w_o));
        TRY(bind_f32(b, NAME("attn_q_norm.weight"), 1, d, d, NULL, &L->q_norm));
        TRY(bind_f32(b, NAME("attn_k_norm.weight"), 1, d, d, NULL, &L->k_norm));
    } else {
        const int nk = c->lin_k_heads, nv = c->lin_v_heads;
        const int64_t dk = c->lin_k_dim, dv = c->lin_v_dim;
        const int64_t C = q35_config_conv_channels(c), qk = 2 * nk * dk;
        const head_order v_rows = {qk, dv, nk, nv};  /* v part of qkv / conv channels */
        const head_order heads_dv = {0, dv, nk, nv}; /* z rows, out_proj columns */
        const head_order heads_1 = {0, 1, nk, nv};   /* a, b rows; A, dt entries */
        TRY(bind_matrix(b, NAME("attn_qkv.weight"), C, H, &v_rows, NULL, &L->w_qkv));
        TRY(bind_matrix(b, NAME("attn_gate.weight"), nv * dv, H, &heads_dv, NULL, &L->w_z));
        TRY(bind_matrix(b, NAME("ssm_beta.weight"), nv, H, &heads_1, NULL, &L->w_b));
        TRY(bind_matrix(b, NAME("ssm_alpha.weight"), nv, H, &heads_1, NULL, &L->w_a));
        TRY(bind_matrix(b, NAME("ssm_out.weight"), H, nv * dv, NULL, &heads_dv, &L->w_out));
        TRY(bind_f32(b, NAME("ssm_conv1d.weight"), C, c->conv_kernel, c->conv_kernel, &v_rows,
                     &L->conv_w));
        TRY(bind_f32(b, NAME("ssm_a"), 1, nv, 1, &heads_1, &L->A));
        TRY(bind_f32(b, NAME("ssm_dt.bias"), 1, nv, 1, &heads_1, &L->dt_bias));
        TRY(bind_f32(b, NAME("ssm_norm.weight"), 1, dv, dv, NULL, &L->gdn_norm));
    }
#undef TRY
#undef NAME
    return Q35_OK;
}

/* llama.cpp's llama_ftype (general.file_type): what llama-quantize was
 * asked for; individual tensors may differ (the _M/_S mixes). */
static const char *file_type_name(int64_t ft) {
    static const char *const names[] = {
        [0] = "F32",      [1] = "F16",      [2] = "Q4_0",      [3] = "Q4_1",    [7] = "Q8_0",
        [8] = "Q5_0",     [9] = "Q5_1",     [10] = "Q2_K",     [11] = "Q3_K_S", [12] = "Q3_K_M",
        [13] = "Q3_K_L",  [14] = "Q4_K_S",  [15] = "Q4_K_M",   [16] = "Q5_K_S", [17] = "Q5_K_M",
        [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS",   [21] = "Q2_K_S", [22] = "IQ3_XS",
        [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL",   [26] = "IQ3_S",  [27] = "IQ3_M",
        [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS",   [31] = "IQ1_M",  [32] = "BF16",
        [36] = "TQ1_0",   [37] = "TQ2_0",   [38] = "MXFP4_MOE"};
    if (ft >= 0 && ft < (int64_t)(sizeof names / sizeof names[0]) && names[ft]) return names[ft];
    return NULL;
}

/* Sets m->quantization from general.file_type, or says it is absent. */
static void note_file_type(q35_model *m, const q35_gguf *g) {
    int64_t ft;
    if (!q35_gguf_find(g, "general.file_type") ||
        q35_gguf_get_int(g, "general.file_type", 0, 1 << 20, &ft, NULL) != Q35_OK) {
        snprintf(m->quantization, sizeof m->quantization, "unspecified (no general.file_type)");
        return;
    }
    const char *name = file_type_name(ft);
    if (name)
        snprintf(m->quantization, sizeof m->quantization, "%s", name);
    else
        snprintf(m->quantization, sizeof m->quantization, "file type %lld", (long long)ft);
}

/* Binds everything; *uses_map tells whether some weight points into g. */
static int bind_all(q35_model *m, const q35_gguf *g, bool *uses_map, size_t *dropped, q35_err *e) {
    meta mt = {g, "", e};
    int rc = read_config(&mt, &m->cfg);
    if (rc) return rc;
    const q35_config *c = &m->cfg;
    binder b = {m, g, e, false, 0};
    m->format = "gguf";
    note_file_type(m, g);
    rc = bind_matrix(&b, "token_embd.weight", c->vocab_size, c->hidden_size, NULL, NULL, &m->embed);
    if (!rc)
        rc = bind_f32(&b, "output_norm.weight", 1, c->hidden_size, c->hidden_size, NULL,
                      &m->final_norm);
    if (!rc) {
        m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
        if (!m->layers) rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    for (int i = 0; i < c->n_layers && !rc; i++)
        rc = bind_layer(&b, i);
    if (!rc) {
        if (c->tie_embeddings)
            m->lm_head = m->embed;
        else
            rc = bind_matrix(&b, "output.weight", c->vocab_size, c->hidden_size, NULL, NULL,
                             &m->lm_head);
    }
    *uses_map = b.uses_map;
    *dropped = b.dropped;
    return rc;
}

int q35_model_bind_gguf(q35_model *m, const q35_gguf *g, q35_err *e) {
    bool uses_map;
    size_t dropped;
    return bind_all(m, g, &uses_map, &dropped, e);
}

int q35_model_load_gguf(q35_model *m, const char *path, q35_err *e) {
    q35_gguf g;
    int rc = q35_gguf_open(&g, path, e);
    if (rc) return rc;
    bool uses_map = false;
    size_t dropped = 0;
    rc = bind_all(m, &g, &uses_map, &dropped, e);
    if (!rc && uses_map) { /* weights point into the map: the model keeps it */
        m->files = calloc(1, sizeof *m->files);
        if (!m->files) {
            rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
        } else {
            m->files[0] = q35_gguf_take_file(&g);
            m->files[0].dropped = dropped;
            m->n_files = 1;
        }
    }
    q35_gguf_close(&g);
    return rc;
}
