/* tensor_row.c — walking a model's weight matrices, and one row of a matrix
 * as float32 whatever its dtype: what converting (requant.c), saving
 * (save_gguf.c) and reporting (q35 info) go through. The kernels have their
 * own, faster, row lookup for the forward pass; this one is for load-time
 * work and says what went wrong. */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/half.h"
#include "formats/gguf_quants.h"
#include "kernels/kernels.h"
#include "model/model.h"

int q35_tensor_row_to_f32(const q35_tensor *t, int64_t r, float *out, q35_err *e) {
    const int64_t cols = t->shape[1];
    if (q35_dtype_is_mlx(t->dtype) || q35_dtype_is_x16(t->dtype)) { /* the kernels' own reader */
        q35_tensor_row_f32(t, r, out);
        return Q35_OK;
    }
    const unsigned char *p =
        (const unsigned char *)t->data + (size_t)r * q35_row_bytes(t->dtype, cols);
    switch (t->dtype) {
    case Q35_DT_F32: memcpy(out, p, (size_t)cols * sizeof *out); return Q35_OK;
    case Q35_DT_BF16:
    case Q35_DT_F16:
        for (int64_t c = 0; c < cols; c++) {
            uint16_t h;
            memcpy(&h, p + 2 * c, 2);
            out[c] = t->dtype == Q35_DT_BF16 ? q35_bf16_to_f32(h) : q35_f16_to_f32(h);
        }
        return Q35_OK;
    case Q35_DT_Q8_0: return q35_ggml_dequantize(Q35_GGML_Q8_0, p, out, cols, e);
    case Q35_DT_Q4_0: return q35_ggml_dequantize(Q35_GGML_Q4_0, p, out, cols, e);
    case Q35_DT_Q4_K: return q35_ggml_dequantize(Q35_GGML_Q4_K, p, out, cols, e);
    case Q35_DT_Q6_K: return q35_ggml_dequantize(Q35_GGML_Q6_K, p, out, cols, e);
    case Q35_DT_Q5_K: return q35_ggml_dequantize(Q35_GGML_Q5_K, p, out, cols, e);
    default: return q35_err_set(e, Q35_EINVAL, "unknown weight dtype %d", (int)t->dtype);
    }
}

int q35_model_matrices(q35_model *m, q35_tensor **out, char (*names)[32]) {
    static const char *const kind[12] = {"gate", "up",  "down", "qkv", "z", "b",
                                         "a",    "out", "q",    "k",   "v", "o"};
    int n = 0;
    out[n] = &m->embed;
    if (names) snprintf(names[n], 32, "embedding");
    n++;
    if (m->lm_head.data != m->embed.data) {
        out[n] = &m->lm_head;
        if (names) snprintf(names[n], 32, "output head");
        n++;
    }
    for (int i = 0; i < m->cfg.n_layers; i++) {
        q35_layer *L = &m->layers[i];
        q35_tensor *ts[12] = {&L->w_gate, &L->w_up,  &L->w_down, &L->w_qkv, &L->w_z, &L->w_b,
                              &L->w_a,    &L->w_out, &L->w_q,    &L->w_k,   &L->w_v, &L->w_o};
        for (int k = 0; k < 12; k++) {
            if (!ts[k]->data) continue;
            out[n] = ts[k];
            if (names) snprintf(names[n], 32, "layer %d %s", i, kind[k]);
            n++;
        }
    }
    return n;
}
