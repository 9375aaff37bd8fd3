/* weights.cu — the model's device copy: every matrix uploaded once into its
 * device form (cuda_internal.cuh), the matrices a step multiplies by the
 * same input concatenated (DeltaNet qkv|z|b|a, attention q|k|v, MLP
 * gate|up) so that each is one launch, and the small float32 vectors.
 * Made by the first state of a model; several threads may race to make
 * it: one copy wins, the others are freed. */
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_internal.cuh"
#include "cuda/cuda_weights_test.h"

extern "C" {
#include "kernels/mlx_affine.h"
#include "kernels/quant_block.h"
}

int cuda_fail(cudaError_t rc, const char *what, q35_err *e) {
    return q35_err_set(e, rc == cudaErrorMemoryAllocation ? Q35_ENOMEM : Q35_ESTATE, "cuda: %s: %s",
                       what, cudaGetErrorString(rc));
}

static void model_free(void *ctx) {
    cuda_model *cm = (cuda_model *)ctx;
    if (!cm) return;
    for (int i = 0; i < cm->n_allocs; i++)
        cudaFree(cm->allocs[i]);
    free(cm->allocs);
    free(cm->layers);
    free(cm);
}

/* A device copy of n host bytes (owned by cm). */
static void *upload(cuda_model *cm, const void *src, size_t n, q35_err *e) {
    if (cm->n_allocs == cm->cap_allocs) {
        int cap = cm->cap_allocs ? 2 * cm->cap_allocs : 64;
        void **a = (void **)realloc(cm->allocs, (size_t)cap * sizeof *a);
        if (!a) {
            q35_err_set(e, Q35_ENOMEM, "cuda: out of host memory");
            return NULL;
        }
        cm->allocs = a;
        cm->cap_allocs = cap;
    }
    void *d = NULL;
    cudaError_t rc = cudaMalloc(&d, n ? n : 1);
    if (rc == cudaSuccess && n) rc = cudaMemcpy(d, src, n, cudaMemcpyHostToDevice);
    if (rc != cudaSuccess) {
        if (d) cudaFree(d);
        cuda_fail(rc, "uploading weights", e);
        return NULL;
    }
    cm->allocs[cm->n_allocs++] = d;
    cm->bytes += n;
    return d;
}

static const float *upload_f32(cuda_model *cm, const float *v, size_t n, q35_err *e) {
    return v ? (const float *)upload(cm, v, n * sizeof(float), e) : NULL;
}

/* The device form the matrices `ts` (same column count) share. */
static int form_of(const q35_tensor *const *ts, int n) {
    q35_dtype d = ts[0]->dtype;
    for (int i = 1; i < n; i++)
        if (ts[i]->dtype != d) return DF_F32;
    switch (d) {
    case Q35_DT_F32: return DF_F32;
    case Q35_DT_BF16: return DF_BF16;
    case Q35_DT_F16: return DF_F16;
    case Q35_DT_Q8_0: return DF_Q8;
    case Q35_DT_Q4_0: return DF_Q4;
    case Q35_DT_Q4_K: return DF_A4;
    case Q35_DT_MLX4: return DF_A4; /* groups of 32, 64 or 128: whole 32-blocks */
    default: return DF_F32;         /* widened (Q6_K, Q5_K, MLX other than 4-bit) */
    }
}

/* Row r of t (Q4_K or MLX 4-bit) in the A4 form: per 32 weights, 16 bytes
 * of codes (byte b: weight b in the low nibble, 16 + b in the high one)
 * and (s, z) with weight = s * q + z. Both are the CPU's values: Q4_K's
 * s = d * sc and z = -(dmin * m) are quant_block.h's mul and -sub (its
 * weight is mul * q - sub), MLX's are its scale and bias (mlx_affine.h:
 * s * q + z). The GPU forms s * q + z as one FMA or sums s * (q . x) and
 * z * (sum x): the same values to float32 rounding. */
static void a4_row(const q35_tensor *t, int64_t r, unsigned char *codes, float2 *sz) {
    int64_t cols = t->shape[1];
    unsigned char q[32];
    if (t->dtype == Q35_DT_Q4_K) {
        size_t sb_bytes = q35_dtype_block_bytes(Q35_DT_Q4_K);
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * (size_t)(cols / 256) * sb_bytes;
        for (int64_t sb = 0; sb < cols / 256; sb++) {
            const uint8_t *b = row + (size_t)sb * sb_bytes, *qs = b + 16;
            float mul[16], sub[8];
            q35_kblock_scales(Q35_DT_Q4_K, b, mul, sub);
            for (int j = 0; j < 8; j++) { /* sub-block j: nibble j % 2 of 32 bytes */
                for (int l = 0; l < 32; l++)
                    q[l] = (unsigned char)(j & 1 ? qs[32 * (j / 2) + l] >> 4
                                                 : qs[32 * (j / 2) + l] & 15);
                for (int l = 0; l < 16; l++)
                    codes[l] = (unsigned char)(q[l] | q[16 + l] << 4);
                *sz++ = make_float2(mul[j], -sub[j]);
                codes += 16;
            }
        }
        return;
    }
    const q35_mlx_affine *a = (const q35_mlx_affine *)t->data;
    const uint8_t *row = (const uint8_t *)a->q + (size_t)r * (size_t)(cols / 2);
    size_t g0 = (size_t)(r * (cols / a->group));
    for (int64_t k = 0; k < cols; k += 32) {
        for (int u = 0; u < 4; u++) {
            uint32_t c[8];
            q35_mlx_unit_codes(row + k / 2 + 4 * u, 4, c);
            for (int i = 0; i < 8; i++)
                q[8 * u + i] = (unsigned char)c[i];
        }
        for (int l = 0; l < 16; l++)
            codes[l] = (unsigned char)(q[l] | q[16 + l] << 4);
        size_t gi = g0 + (size_t)(k / a->group);
        *sz++ = make_float2(q35_mlx_aux_f32(a->scales, a->aux, gi),
                            q35_mlx_aux_f32(a->biases, a->aux, gi));
        codes += 16;
    }
}

/* The matrices ts[0..n) stacked by rows into one device matrix. */
bool q35_cuda_a4_row_values(const q35_tensor *t, int64_t r, float *out) {
    if (form_of(&t, 1) != DF_A4 || t->ndim != 2) return false;
    int64_t cols = t->shape[1];
    unsigned char *codes = (unsigned char *)malloc((size_t)cols / 2);
    float2 *sz = (float2 *)malloc((size_t)cols / 32 * sizeof(float2));
    bool ok = codes && sz;
    if (ok) {
        a4_row(t, r, codes, sz);
        for (int64_t k = 0; k < cols; k++) {
            unsigned char b = codes[k / 32 * 16 + k % 16];
            float2 p = sz[k / 32];
            float sq = p.x * (float)(k % 32 < 16 ? b & 15 : b >> 4);
            out[k] = sq + p.y;
        }
    }
    free(codes);
    free(sz);
    return ok;
}

static int upload_cat(cuda_model *cm, const q35_tensor *const *ts, int n, dmat *out, q35_err *e) {
    int64_t cols = ts[0]->shape[ts[0]->ndim - 1], rows = 0;
    for (int i = 0; i < n; i++) {
        if (ts[i]->ndim != 2 || ts[i]->shape[1] != cols)
            return q35_err_set(e, Q35_EFORMAT, "cuda: matrices of different widths to stack");
        rows += ts[i]->shape[0];
    }
    int fmt = form_of(ts, n);
    size_t nw = (size_t)rows * (size_t)cols;
    size_t wbytes = fmt == DF_F32 ? nw * 4 : fmt == DF_Q8 ? nw : DF_NIBBLES(fmt) ? nw / 2 : nw * 2;
    size_t nsc = (fmt == DF_Q8 || fmt == DF_Q4) ? nw / 32 : 0, naf = fmt == DF_A4 ? nw / 32 : 0;
    unsigned char *hw = (unsigned char *)malloc(wbytes ? wbytes : 1);
    uint16_t *hs = (uint16_t *)malloc(nsc ? nsc * 2 : 1);
    float2 *ha = (float2 *)malloc(naf ? naf * sizeof(float2) : 1);
    if (!hw || !hs || !ha) {
        free(hw);
        free(hs);
        free(ha);
        return q35_err_set(e, Q35_ENOMEM, "cuda: out of host memory staging a matrix");
    }
    int rc = Q35_OK;
    size_t wo = 0, so = 0;
    for (int i = 0; i < n && !rc; i++) {
        const q35_tensor *t = ts[i];
        int64_t r = t->shape[0];
        const unsigned char *src = (const unsigned char *)t->data;
        if (fmt == DF_BF16 || fmt == DF_F16 || (fmt == DF_F32 && t->dtype == Q35_DT_F32)) {
            size_t b = q35_tensor_bytes(t);
            memcpy(hw + wo, src, b);
            wo += b;
        } else if (fmt == DF_Q8 || fmt == DF_Q4) {
            size_t bb = fmt == DF_Q8 ? 34 : 18, qb = bb - 2, nb = (size_t)r * (size_t)cols / 32;
            for (size_t b = 0; b < nb; b++) {
                memcpy(&hs[so++], src + b * bb, 2);
                memcpy(hw + wo, src + b * bb + 2, qb);
                wo += qb;
            }
        } else if (fmt == DF_A4) {
            for (int64_t j = 0; j < r; j++) {
                a4_row(t, j, hw + wo, ha + so);
                wo += (size_t)cols / 2;
                so += (size_t)cols / 32;
            }
        } else { /* widened row by row */
            for (int64_t j = 0; j < r && !rc; j++) {
                rc = q35_tensor_row_to_f32(t, j, (float *)(hw + wo), e);
                wo += (size_t)cols * 4;
            }
        }
    }
    if (!rc) {
        out->fmt = fmt;
        out->rows = (int)rows;
        out->cols = (int)cols;
        out->w = upload(cm, hw, wbytes, e);
        out->scale = nsc ? (const uint16_t *)upload(cm, hs, nsc * 2, e) : NULL;
        out->affine = naf ? (const float2 *)upload(cm, ha, naf * sizeof(float2), e) : NULL;
        if (!out->w || (nsc && !out->scale) || (naf && !out->affine)) rc = e ? e->code : Q35_ENOMEM;
    }
    free(hw);
    free(hs);
    free(ha);
    return rc;
}

static int upload_one(cuda_model *cm, const q35_tensor *t, dmat *out, q35_err *e) {
    return upload_cat(cm, &t, 1, out, e);
}

static cuda_model *model_make(const q35_model *m, q35_err *e) {
    const q35_config *c = &m->cfg;
    cuda_model *cm = (cuda_model *)calloc(1, sizeof *cm);
    if (!cm || !(cm->layers = (dlayer *)calloc((size_t)c->n_layers, sizeof(dlayer)))) {
        free(cm);
        q35_err_set(e, Q35_ENOMEM, "cuda: out of host memory");
        return NULL;
    }
    cm->cfg = *c;
    cudaGetDevice(&cm->device);
    int H = c->hidden_size, C = q35_config_conv_channels(c), K = c->conv_kernel;
    int rc = upload_one(cm, &m->embed, &cm->embed, e);
    if (!rc && m->lm_head.data == m->embed.data && m->lm_head.dtype == m->embed.dtype)
        cm->lm_head = cm->embed;
    else if (!rc)
        rc = upload_one(cm, &m->lm_head, &cm->lm_head, e);
    if (!rc && !(cm->final_norm = upload_f32(cm, m->final_norm, (size_t)H, e))) rc = Q35_ENOMEM;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const q35_layer *L = &m->layers[l];
        dlayer *D = &cm->layers[l];
        D->full_attn = L->full_attn;
        const q35_tensor *gu[2] = {&L->w_gate, &L->w_up};
        rc = upload_cat(cm, gu, 2, &D->w_gu, e);
        if (!rc) rc = upload_one(cm, &L->w_down, &D->w_down, e);
        if (!rc) {
            D->attn_norm = upload_f32(cm, L->attn_norm, (size_t)H, e);
            D->mlp_norm = upload_f32(cm, L->mlp_norm, (size_t)H, e);
            if (!D->attn_norm || !D->mlp_norm) rc = Q35_ENOMEM;
        }
        if (rc) break;
        if (L->full_attn) {
            const q35_tensor *qkv[3] = {&L->w_q, &L->w_k, &L->w_v};
            rc = upload_cat(cm, qkv, 3, &D->w_qkv, e);
            if (!rc) rc = upload_one(cm, &L->w_o, &D->w_o, e);
            if (!rc) {
                D->q_norm = upload_f32(cm, L->q_norm, (size_t)c->head_dim, e);
                D->k_norm = upload_f32(cm, L->k_norm, (size_t)c->head_dim, e);
                if (!D->q_norm || !D->k_norm) rc = Q35_ENOMEM;
            }
        } else {
            const q35_tensor *in[4] = {&L->w_qkv, &L->w_z, &L->w_b, &L->w_a};
            rc = upload_cat(cm, in, 4, &D->w_in, e);
            if (!rc) rc = upload_one(cm, &L->w_out, &D->w_out, e);
            if (!rc) {
                int nv = c->lin_v_heads;
                D->conv_w = upload_f32(cm, L->conv_w, (size_t)C * K, e);
                D->A = upload_f32(cm, L->A, (size_t)nv, e);
                D->dt_bias = upload_f32(cm, L->dt_bias, (size_t)nv, e);
                D->gdn_norm = upload_f32(cm, L->gdn_norm, (size_t)c->lin_v_dim, e);
                if (!D->conv_w || !D->A || !D->dt_bias || !D->gdn_norm) rc = Q35_ENOMEM;
            }
        }
    }
    if (rc) {
        model_free(cm);
        return NULL;
    }
    return cm;
}

cuda_model *cuda_model_get(const q35_model *m, q35_err *e) {
    q35_model *mm = (q35_model *)m; /* the device copy is a cache of the weights */
    void *have = __atomic_load_n(&mm->device_ctx, __ATOMIC_ACQUIRE);
    if (have) return (cuda_model *)have;
    cuda_model *cm = model_make(m, e);
    if (!cm) return NULL;
    void *expected = NULL;
    mm->device_free = model_free;
    if (!__atomic_compare_exchange_n(&mm->device_ctx, &expected, (void *)cm, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        model_free(cm); /* another state made it first */
        return (cuda_model *)expected;
    }
    __atomic_store_n(&mm->device_bytes, cm->bytes, __ATOMIC_RELEASE);
    return cm;
}
