/* load.c — builds a q35_model from an HF checkpoint directory: config.json
 * plus safetensors (single or sharded). Matrices are used in place from the
 * file maps; small vectors are converted once to their float32 compute form
 * (see model.h). Every tensor the config implies must be present with the
 * shape the config implies; anything else is an error naming the tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/half.h"
#include "formats/file_kind.h"
#include "formats/safetensors.h"
#include "model/load_gguf.h"
#include "model/load_mlx.h"
#include "model/model.h"
#include "model/quant_spec.h"
#include "q35.h"

#define MAX_CONFIG_BYTES (4u << 20)

void *q35_model_alloc(q35_model *m, size_t bytes) {
    if (m->n_buffers == m->cap_buffers) {
        int cap = m->cap_buffers ? m->cap_buffers * 2 : 64;
        void **nb = realloc(m->buffers, (size_t)cap * sizeof *nb);
        if (!nb) return NULL;
        m->buffers = nb;
        size_t *ns = realloc(m->buffer_bytes, (size_t)cap * sizeof *ns);
        if (!ns) return NULL;
        m->buffer_bytes = ns;
        m->cap_buffers = cap;
    }
    /* 64-byte alignment: SIMD kernels may use aligned loads on owned data. */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? (bytes + 63) / 64 * 64 : 64) != 0) return NULL;
    m->buffers[m->n_buffers] = p;
    m->buffer_bytes[m->n_buffers++] = bytes;
    m->owned_bytes += bytes;
    return p;
}

void q35_model_release(q35_model *m, const void *p) {
    for (int i = 0; i < m->n_buffers; i++) {
        if (m->buffers[i] != p) continue;
        free(m->buffers[i]);
        m->owned_bytes -= m->buffer_bytes[i];
        m->buffers[i] = m->buffers[m->n_buffers - 1];
        m->buffer_bytes[i] = m->buffer_bytes[m->n_buffers - 1];
        m->n_buffers--;
        return;
    }
}

void q35_model_note_stored(q35_model *m, const char *type, size_t bytes) {
    int i = 0;
    while (i < m->n_stored && strcmp(m->stored[i].name, type))
        i++;
    if (i == Q35_MAX_STORED_TYPES) {
        i = Q35_MAX_STORED_TYPES - 1;
        snprintf(m->stored[i].name, sizeof m->stored[i].name, "other");
    } else if (i == m->n_stored) {
        snprintf(m->stored[i].name, sizeof m->stored[i].name, "%s", type);
        m->n_stored++;
    }
    m->stored[i].n_tensors++;
    m->stored[i].bytes += bytes;
}

/* Releases everything a load produced; keeps path, threads, generation. */
static void release_weights(q35_model *m) {
    if (m->device_ctx && m->device_free) m->device_free(m->device_ctx);
    m->device_ctx = NULL;
    m->device_bytes = 0;
    for (int i = 0; i < m->n_buffers; i++)
        free(m->buffers[i]);
    free(m->buffers);
    free(m->buffer_bytes);
    m->buffer_bytes = NULL;
    for (int i = 0; i < m->n_files; i++)
        q35_mapped_file_close(&m->files[i]);
    free(m->files);
    for (int i = 0; i < m->n_extra; i++)
        free(m->extra[i].name);
    free(m->extra);
    free(m->layers);
    m->buffers = NULL;
    m->n_buffers = m->cap_buffers = 0;
    m->owned_bytes = 0;
    m->files = NULL;
    m->n_files = 0;
    m->extra = NULL;
    m->n_extra = 0;
    m->layers = NULL;
    memset(&m->embed, 0, sizeof m->embed);
    memset(&m->lm_head, 0, sizeof m->lm_head);
    m->final_norm = NULL;
    m->format = NULL;
    m->quantization[0] = 0;
    m->n_stored = 0;
    memset(m->stored, 0, sizeof m->stored);
    m->loaded = false;
}

void q35_model_free(q35_model *m) {
    if (!m) return;
    release_weights(m);
    free(m->path);
    free(m);
}

bool q35_model_is_loaded(const q35_model *m) {
    return m && m->loaded;
}

size_t q35_model_memory_footprint(const q35_model *m) {
    if (!m || !m->loaded) return 0;
    size_t mapped = 0;
    for (int i = 0; i < m->n_files; i++)
        /* what the map still holds: converted tensors' pages were dropped */
        mapped += m->files[i].size -
                  (m->files[i].dropped < m->files[i].size ? m->files[i].dropped : m->files[i].size);
    return mapped + m->owned_bytes + m->device_bytes;
}

void q35_model_unload(q35_model *m) {
    if (m) release_weights(m);
}

void q35_model_get_info(const q35_model *m, q35_model_info *out) {
    memset(out, 0, sizeof *out);
    out->vocab_size = m->cfg.vocab_size;
    out->hidden_size = m->cfg.hidden_size;
    out->n_layers = m->cfg.n_layers;
    for (int i = 0; i < m->cfg.n_layers; i++)
        out->n_full_attn_layers += m->cfg.layer_full[i];
    out->n_threads = m->n_threads;
    out->path = m->path;
    out->format = m->format;
    out->dtype = q35_dtype_name(q35_dtype_x16_base(m->embed.dtype)); /* the file's type */
    out->quantization = m->quantization;
    out->weight_bytes = q35_model_memory_footprint(m);
}

/* ----------------------------------------------------------- tensor binding */

typedef struct binder {
    q35_model *m;
    const q35_st_set *set;
    const char *prefix; /* "model.language_model.", "model." or "language_model.model." */
    const char *where;  /* the checkpoint, for messages */
    /* MLX conversions store (some) zero-centred norms with the +1 folded
     * in, conv1d channels-last, and may hold affine-quantized matrices
     * (load_mlx.h tells the layouts apart). */
    q35_ckpt_layout layout;
    bool final_norm;             /* binding the final norm (the app layout leaves it unfolded) */
    const q35_quant_spec *quant; /* config's "quantization", or NULL */
    q35_err *e;
} binder;

static const q35_st_tensor *find(const binder *b, const char *name, char *full, size_t fullsz) {
    snprintf(full, fullsz, "%s%s", b->prefix, name);
    const q35_st_tensor *t = q35_st_set_find(b->set, full);
    if (!t) q35_err_set(b->e, Q35_EFORMAT, "%s: missing tensor '%s'", b->where, full);
    return t;
}

static int is_float(q35_st_dtype d) {
    return d == Q35_ST_F32 || d == Q35_ST_F16 || d == Q35_ST_BF16;
}

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int check_shape(const binder *b, const char *full, const q35_st_tensor *t,
                       const int64_t *want, int ndim) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == want[i];
    if (ok) return Q35_OK;
    char have[96], need[96];
    shape_str(t->shape, t->ndim, have, sizeof have);
    shape_str(want, ndim, need, sizeof need);
    return q35_err_set(b->e, Q35_EFORMAT, "%s: tensor '%s' has shape %s but the config needs %s",
                       b->set->files[t->file_index].path, full, have, need);
}

static int check_float(const binder *b, const char *full, const q35_st_tensor *t) {
    if (is_float(t->dtype)) return Q35_OK;
    return q35_err_set(b->e, Q35_EFORMAT, "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16",
                       b->set->files[t->file_index].path, full, q35_st_dtype_name(t->dtype));
}

static float elem_f32(const q35_st_tensor *t, size_t i) {
    const unsigned char *p = t->data;
    uint16_t h;
    float f;
    switch (t->dtype) {
    case Q35_ST_F32: memcpy(&f, p + 4 * i, 4); return f;
    case Q35_ST_F16: memcpy(&h, p + 2 * i, 2); return q35_f16_to_f32(h);
    default: memcpy(&h, p + 2 * i, 2); return q35_bf16_to_f32(h);
    }
}

static q35_dtype to_dtype(q35_st_dtype d) {
    return d == Q35_ST_F32 ? Q35_DT_F32 : d == Q35_ST_F16 ? Q35_DT_F16 : Q35_DT_BF16;
}

/* Binds a [rows, cols] matrix in place (copied only if misaligned for its
 * element type, which a hand-made file may be). */
static int bind_matrix(binder *b, const char *name, int64_t rows, int64_t cols, q35_tensor *out) {
    char full[256];
    const q35_st_tensor *t = find(b, name, full, sizeof full);
    if (!t) return Q35_EFORMAT;
    if (t->dtype == Q35_ST_U32)
        return q35_mlx_bind(b->m, b->set, full, t, rows, cols, b->quant, out, b->e);
    int64_t want[2] = {rows, cols};
    int rc = check_float(b, full, t);
    if (!rc) rc = check_shape(b, full, t, want, 2);
    if (rc) return rc;
    out->dtype = to_dtype(t->dtype);
    q35_model_note_stored(b->m, q35_dtype_name(out->dtype), t->nbytes);
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = cols;
    out->data = t->data;
    if ((uintptr_t)t->data % q35_dtype_size(out->dtype)) {
        void *copy = q35_model_alloc(b->m, t->nbytes);
        if (!copy) return q35_err_set(b->e, Q35_ENOMEM, "out of memory copying '%s'", full);
        memcpy(copy, t->data, t->nbytes);
        out->data = copy;
    }
    return Q35_OK;
}

typedef enum vec_form { AS_IS, PLUS_ONE, NEG_EXP } vec_form;

/* Converts a small tensor of `n` elements (any shape with that many, as
 * checked by `want`) to float32 in its compute form. */
static int bind_vector(binder *b, const char *name, const int64_t *want, int ndim, vec_form form,
                       const float **out) {
    char full[256];
    const q35_st_tensor *t = find(b, name, full, sizeof full);
    if (!t) return Q35_EFORMAT;
    int rc = check_float(b, full, t);
    if (!rc) rc = check_shape(b, full, t, want, ndim);
    if (rc) return rc;
    if (form == PLUS_ONE && b->layout == Q35_LAYOUT_MLX_LM) form = AS_IS;
    size_t n = t->nbytes / q35_st_dtype_size(t->dtype);
    float *v = q35_model_alloc(b->m, n * sizeof *v);
    if (!v) return q35_err_set(b->e, Q35_ENOMEM, "out of memory for '%s'", full);
    for (size_t i = 0; i < n; i++)
        v[i] = elem_f32(t, i);
    /* The app's converter folds the layers' norms but not the final one
     * (its own model then gets the final norm wrong); which ones a file
     * has folded is told from their values (load_mlx.h). */
    if (form == PLUS_ONE && b->layout == Q35_LAYOUT_APP && !b->final_norm &&
        q35_norm_looks_folded(v, (int64_t)n))
        form = AS_IS;
    for (size_t i = 0; i < n; i++)
        v[i] = form == PLUS_ONE ? 1.0f + v[i] : form == NEG_EXP ? -expf(v[i]) : v[i];
    *out = v;
    return Q35_OK;
}

static int bind_layer(binder *b, int i) {
    const q35_config *c = &b->m->cfg;
    q35_layer *L = &b->m->layers[i];
    char n[128];
    int rc = Q35_OK;
    const int64_t H = c->hidden_size, I = c->intermediate_size;
    const int64_t vH[1] = {H};
#define NAME(s) (snprintf(n, sizeof n, "layers.%d.%s", i, s), n)
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x))) return rc;                                                                 \
    } while (0)
    L->full_attn = c->layer_full[i];
    TRY(bind_vector(b, NAME("input_layernorm.weight"), vH, 1, PLUS_ONE, &L->attn_norm));
    TRY(bind_vector(b, NAME("post_attention_layernorm.weight"), vH, 1, PLUS_ONE, &L->mlp_norm));
    TRY(bind_matrix(b, NAME("mlp.gate_proj.weight"), I, H, &L->w_gate));
    TRY(bind_matrix(b, NAME("mlp.up_proj.weight"), I, H, &L->w_up));
    TRY(bind_matrix(b, NAME("mlp.down_proj.weight"), H, I, &L->w_down));
    if (L->full_attn) {
        const int64_t nh = c->n_heads, nkv = c->n_kv_heads, d = c->head_dim;
        const int64_t vd[1] = {d};
        TRY(bind_matrix(b, NAME("self_attn.q_proj.weight"), nh * 2 * d, H, &L->w_q));
        TRY(bind_matrix(b, NAME("self_attn.k_proj.weight"), nkv * d, H, &L->w_k));
        TRY(bind_matrix(b, NAME("self_attn.v_proj.weight"), nkv * d, H, &L->w_v));
        TRY(bind_matrix(b, NAME("self_attn.o_proj.weight"), H, nh * d, &L->w_o));
        TRY(bind_vector(b, NAME("self_attn.q_norm.weight"), vd, 1, PLUS_ONE, &L->q_norm));
        TRY(bind_vector(b, NAME("self_attn.k_norm.weight"), vd, 1, PLUS_ONE, &L->k_norm));
    } else {
        const int64_t nv = c->lin_v_heads, dv = c->lin_v_dim;
        const int64_t C = q35_config_conv_channels(c);
        const int64_t vnv[1] = {nv}, vdv[1] = {dv};
        /* MLX keeps conv weights channels-last, [C, K, 1]: the same bytes. */
        const bool mlx = b->layout != Q35_LAYOUT_HF;
        const int64_t vconv[3] = {C, mlx ? c->conv_kernel : 1, mlx ? 1 : c->conv_kernel};
        TRY(bind_matrix(b, NAME("linear_attn.in_proj_qkv.weight"), C, H, &L->w_qkv));
        TRY(bind_matrix(b, NAME("linear_attn.in_proj_z.weight"), nv * dv, H, &L->w_z));
        TRY(bind_matrix(b, NAME("linear_attn.in_proj_b.weight"), nv, H, &L->w_b));
        TRY(bind_matrix(b, NAME("linear_attn.in_proj_a.weight"), nv, H, &L->w_a));
        TRY(bind_matrix(b, NAME("linear_attn.out_proj.weight"), H, nv * dv, &L->w_out));
        TRY(bind_vector(b, NAME("linear_attn.conv1d.weight"), vconv, 3, AS_IS, &L->conv_w));
        TRY(bind_vector(b, NAME("linear_attn.A_log"), vnv, 1, NEG_EXP, &L->A));
        TRY(bind_vector(b, NAME("linear_attn.dt_bias"), vnv, 1, AS_IS, &L->dt_bias));
        TRY(bind_vector(b, NAME("linear_attn.norm.weight"), vdv, 1, AS_IS, &L->gdn_norm));
    }
#undef TRY
#undef NAME
    return rc;
}

/* mtp.* tensors are kept (by pointer) for speculative decoding later. */
static int keep_extras(q35_model *m, const q35_st_set *set, q35_err *e) {
    int n = 0;
    for (int i = 0; i < set->n_tensors; i++)
        n += !strncmp(set->tensors[i].name, "mtp.", 4);
    if (!n) return Q35_OK;
    m->extra = calloc((size_t)n, sizeof *m->extra);
    if (!m->extra) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    for (int i = 0; i < set->n_tensors; i++) {
        const q35_st_tensor *t = &set->tensors[i];
        if (strncmp(t->name, "mtp.", 4) || !is_float(t->dtype) || t->ndim > 4) continue;
        q35_named_tensor *x = &m->extra[m->n_extra];
        x->name = strdup(t->name);
        if (!x->name) return q35_err_set(e, Q35_ENOMEM, "out of memory");
        x->t.dtype = to_dtype(t->dtype);
        x->t.ndim = t->ndim;
        memcpy(x->t.shape, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
        x->t.data = t->data;
        m->n_extra++;
    }
    return Q35_OK;
}

static int bind_all(q35_model *m, const q35_st_set *set, const char *where,
                    const q35_quant_spec *quant, q35_err *e) {
    binder b = {m, set, "model.language_model.", where, q35_ckpt_layout_of(set), false, quant, e};
    if (b.layout == Q35_LAYOUT_MLX_LM)
        b.prefix = "language_model.model.";
    else if (b.layout == Q35_LAYOUT_APP)
        b.prefix = "";
    else if (!q35_st_set_find(set, "model.language_model.embed_tokens.weight"))
        b.prefix = "model.";
    /* the app drops lm_head: its embedding is the output head */
    if (b.layout == Q35_LAYOUT_APP && !q35_st_set_find(set, "lm_head.weight"))
        m->cfg.tie_embeddings = true;
    const q35_config *c = &m->cfg;
    int rc = bind_matrix(&b, "embed_tokens.weight", c->vocab_size, c->hidden_size, &m->embed);
    const int64_t vH[1] = {c->hidden_size};
    b.final_norm = true;
    if (!rc) rc = bind_vector(&b, "norm.weight", vH, 1, PLUS_ONE, &m->final_norm);
    b.final_norm = false;
    if (!rc) {
        m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
        if (!m->layers) rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    for (int i = 0; i < c->n_layers && !rc; i++)
        rc = bind_layer(&b, i);
    if (!rc) {
        if (c->tie_embeddings) {
            m->lm_head = m->embed;
        } else {
            /* lm_head sits outside the model. prefix (under language_model. in MLX). */
            b.prefix = b.layout == Q35_LAYOUT_MLX_LM ? "language_model." : "";
            rc = bind_matrix(&b, "lm_head.weight", c->vocab_size, c->hidden_size, &m->lm_head);
        }
    }
    if (!rc) rc = keep_extras(m, set, e);
    return rc;
}

static int skip_vision(const char *name) {
    return !strncmp(name, "model.visual.", 13) || !strncmp(name, "visual.", 7);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* `file`: one safetensors file to read instead of the directory's
 * model.safetensors (or index), NULL for the directory's. */
static int load_hf_dir(q35_model *m, const char *dir, const char *file, q35_err *e) {
    char *cfg_path = join(dir, "config.json");
    if (!cfg_path) return q35_err_set(e, Q35_ENOMEM, "out of memory");
    size_t len;
    char *text = q35_read_text_file(cfg_path, MAX_CONFIG_BYTES, &len, e);
    int rc =
        text ? q35_config_parse_json(text, len, cfg_path, &m->cfg, e) : (e ? e->code : Q35_EIO);
    q35_quant_spec quant = {0};
    if (!rc) rc = q35_quant_spec_parse_json(text, len, cfg_path, &quant, e);
    free(text);
    free(cfg_path);
    if (rc) {
        q35_quant_spec_free(&quant);
        return rc;
    }

    q35_st_set set;
    if ((rc = file ? q35_st_set_open_file(&set, file, e)
                   : q35_st_set_open_dir(&set, dir, skip_vision, e))) {
        q35_quant_spec_free(&quant);
        return rc;
    }
    rc = bind_all(m, &set, dir, quant.bits ? &quant : NULL, e);
    q35_ckpt_layout layout = q35_ckpt_layout_of(&set);
    if (!rc && (quant.bits || layout != Q35_LAYOUT_HF))
        m->format = layout == Q35_LAYOUT_APP      ? "mlx-quantized (reference-app layout)"
                    : layout == Q35_LAYOUT_MLX_LM ? "mlx-quantized (mlx-lm layout)"
                                                  : "mlx-quantized (transformers names)";
    if (!rc && quant.bits) {
        snprintf(m->quantization, sizeof m->quantization, "MLX affine %d-bit, group %d%s",
                 quant.bits, quant.group_size, quant.n_overrides ? " (some modules differ)" : "");
    } else if (!rc) {
        bool affine = false;
        for (int i = 0; i < m->n_stored; i++)
            affine |= !strncmp(m->stored[i].name, "mlx", 3);
        snprintf(m->quantization, sizeof m->quantization, "%s",
                 affine ? "MLX affine (per tensor, no config block)" : "none");
    }
    q35_quant_spec_free(&quant);
    /* The model takes the maps; the name table is no longer needed. */
    m->files = set.files;
    m->n_files = set.n_files;
    q35_st_set_close(&set, 1);
    if (!m->format) m->format = "safetensors";
    return rc;
}

/* Loads m->path into m (which holds no weights). */
static int load_into(q35_model *m, q35_err *e) {
    const char *path = m->path;
    struct stat st;
    int rc;
    if (stat(path, &st) != 0) {
        rc = q35_err_set(e, Q35_ENOTFOUND, "%s: no such file or directory", path);
    } else if (S_ISDIR(st.st_mode)) {
        rc = load_hf_dir(m, path, NULL, e);
    } else if (q35_path_is_gguf(path)) {
        rc = q35_model_load_gguf(m, path, e);
    } else if (q35_file_kind_of(path) == Q35_FILE_SAFETENSORS) {
        /* one safetensors file, whatever its name: the config beside it */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir] = 0;
        else
            snprintf(dir, sizeof dir, ".");
        rc = load_hf_dir(m, dir, path, e);
    } else {
        rc = q35_err_set(e, Q35_EINVAL,
                         "%s: not a model directory, GGUF file or safetensors file (by content)",
                         path);
    }
    if (!rc && m->requant != Q35_DT_F32) {
        rc = q35_model_requantize(m, m->requant, e);
        if (!rc)
            snprintf(m->quantization + strlen(m->quantization),
                     sizeof m->quantization - strlen(m->quantization), ", computed as %s",
                     q35_dtype_name(m->requant));
    }
    if (!rc) rc = q35_model_repack(m, e);
    if (rc) {
        release_weights(m);
        return rc;
    }
    m->loaded = true;
    m->generation++;
    return Q35_OK;
}

int q35_model_reload(q35_model *m, q35_err *e) {
    if (!m) return q35_err_set(e, Q35_EINVAL, "no model");
    if (m->loaded) return Q35_OK;
    return load_into(m, e);
}

q35_model *q35_model_load(const char *path, const q35_load_opts *opts, q35_err *e) {
    if (!path || !*path) {
        q35_err_set(e, Q35_EINVAL, "no model path given");
        return NULL;
    }
    q35_model *m = calloc(1, sizeof *m);
    if (!m) {
        q35_err_set(e, Q35_ENOMEM, "out of memory");
        return NULL;
    }
    /* A hub id becomes its snapshot directory in the HF cache (downloaded
     * once); reloads then use that directory and need no network. */
    if (q35_hub_resolve(path, opts ? opts->hub : NULL, &m->path, e)) {
        free(m);
        return NULL;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    m->n_threads = opts && opts->n_threads > 0 ? opts->n_threads : (ncpu > 0 ? (int)ncpu : 1);
    q35_weight_format wf = opts ? opts->weights : Q35_WEIGHTS_AS_STORED;
    m->device = opts ? opts->device : Q35_DEVICE_CPU;
    m->exact_kernels = opts && opts->exact_kernels;
    if (wf != Q35_WEIGHTS_AS_STORED && wf != Q35_WEIGHTS_Q8_0 && wf != Q35_WEIGHTS_Q4_0) {
        q35_err_set(e, Q35_EINVAL, "load options: unknown weight format %d", (int)wf);
        q35_model_free(m);
        return NULL;
    }
    m->requant = wf == Q35_WEIGHTS_Q8_0   ? Q35_DT_Q8_0
                 : wf == Q35_WEIGHTS_Q4_0 ? Q35_DT_Q4_0
                                          : Q35_DT_F32;
    if (load_into(m, e)) {
        q35_model_free(m);
        return NULL;
    }
    return m;
}
