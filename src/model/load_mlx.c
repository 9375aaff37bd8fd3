/* load_mlx.c — MLX affine-quantized checkpoints: telling mlx-lm's layout
 * from the reference app's, and binding a quantized matrix in place as a
 * Q35_DT_MLX<b> tensor (model/tensor.h) whose codes, scales and biases stay
 * in the file maps. Nothing is decoded at load: the kernels compute on the
 * packed codes (kernels/mlx_affine.h). */
#include "model/load_mlx.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

q35_ckpt_layout q35_ckpt_layout_of(const q35_st_set *set) {
    if (q35_st_set_find(set, "language_model.model.embed_tokens.weight")) return Q35_LAYOUT_MLX_LM;
    if (!q35_st_set_find(set, "model.language_model.embed_tokens.weight") &&
        !q35_st_set_find(set, "model.embed_tokens.weight") &&
        q35_st_set_find(set, "embed_tokens.weight"))
        return Q35_LAYOUT_APP;
    return Q35_LAYOUT_HF;
}

bool q35_norm_looks_folded(const float *w, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += w[i];
    /* halfway between the two populations (mean ~0.3 vs ~1.3) */
    return n > 0 && s / (double)n > 0.75;
}

static int is_float(q35_st_dtype d) {
    return d == Q35_ST_F32 || d == Q35_ST_F16 || d == Q35_ST_BF16;
}

static q35_dtype aux_dtype(q35_st_dtype d) {
    return d == Q35_ST_F32 ? Q35_DT_F32 : d == Q35_ST_F16 ? Q35_DT_F16 : Q35_DT_BF16;
}

/* p, or an aligned copy of its n bytes owned by m (NULL: out of memory). */
static const void *aligned(q35_model *m, const void *p, size_t n, size_t align) {
    if ((uintptr_t)p % align == 0) return p;
    void *c = q35_model_alloc(m, n);
    if (c) memcpy(c, p, n);
    return c;
}

int q35_mlx_bind(q35_model *m, const q35_st_set *set, const char *full, const q35_st_tensor *w,
                 int64_t rows, int64_t cols, const q35_quant_spec *quant, q35_tensor *out,
                 q35_err *e) {
    char sname[300], bname[300];
    size_t stem = strlen(full) - strlen(".weight");
    snprintf(sname, sizeof sname, "%.*s.scales", (int)stem, full);
    snprintf(bname, sizeof bname, "%.*s.biases", (int)stem, full);
    const q35_st_tensor *sc = q35_st_set_find(set, sname);
    const q35_st_tensor *bi = q35_st_set_find(set, bname);
    const char *path = set->files[w->file_index].path;
    if (!sc || !bi)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: tensor '%s' is U32 (quantized) but '%s' or '%s' is missing", path,
                           full, sname, bname);
    if (w->ndim != 2 || w->shape[0] != rows || w->shape[1] < 1 || (w->shape[1] * 32) % cols)
        return q35_err_set(
            e, Q35_EFORMAT,
            "%s: quantized tensor '%s' has %d dims [%lld, %lld]; the config needs %lld "
            "rows of %lld values",
            path, full, w->ndim, (long long)w->shape[0], (long long)(w->ndim > 1 ? w->shape[1] : 0),
            (long long)rows, (long long)cols);
    int bits = (int)(w->shape[1] * 32 / cols);
    if (bits < 2 || bits > 8 || bits == 7)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: tensor '%s' packs %d bits per value; 2, 3, 4, 5, 6 or 8 supported",
                           path, full, bits);
    if (sc->ndim != 2 || sc->shape[0] != rows || sc->shape[1] < 1 || cols % sc->shape[1] ||
        !is_float(sc->dtype) || bi->ndim != 2 || bi->shape[0] != rows ||
        bi->shape[1] != sc->shape[1] || bi->dtype != sc->dtype)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: scales/biases of '%s' do not match its [%lld, %lld] shape (or "
                           "each other's dtype)",
                           path, full, (long long)rows, (long long)cols);
    int group = (int)(cols / sc->shape[1]);
    if (group != 32 && group != 64 && group != 128)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: tensor '%s': group size %d; 32, 64 or 128 supported", path, full,
                           group);
    if (quant && (quant->bits != bits || quant->group_size != group) &&
        !q35_quant_spec_has_override(quant, full))
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: contradictory quantization: tensor '%s' has %d bits, group %d but "
                           "config.json says %d bits, group %d",
                           path, full, bits, group, quant->bits, quant->group_size);
    q35_mlx_affine *a = q35_model_alloc(m, sizeof *a);
    if (!a) return q35_err_set(e, Q35_ENOMEM, "out of memory binding '%s'", full);
    const size_t es = q35_st_dtype_size(sc->dtype);
    a->q = w->data; /* read a byte at a time or with unaligned loads */
    a->scales = aligned(m, sc->data, sc->nbytes, es);
    a->biases = aligned(m, bi->data, bi->nbytes, es);
    if (!a->scales || !a->biases)
        return q35_err_set(e, Q35_ENOMEM, "out of memory copying the scales of '%s'", full);
    a->aux = (int)aux_dtype(sc->dtype);
    a->group = group;
    char type[24];
    snprintf(type, sizeof type, "mlx%d/g%d", bits, group);
    q35_model_note_stored(m, type, w->nbytes + sc->nbytes + bi->nbytes);
    out->dtype = (q35_dtype)(Q35_DT_MLX2 + (bits == 8 ? 5 : bits - 2));
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = cols;
    out->data = a;
    return Q35_OK;
}
