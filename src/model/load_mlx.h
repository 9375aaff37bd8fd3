/* load_mlx.h — MLX affine-quantized safetensors (mlx-lm's conversions and
 * the reference app's files): which layout a checkpoint has, and binding
 * one quantized matrix in place. load.c does the rest of the binding. */
#ifndef Q35_MODEL_LOAD_MLX_H
#define Q35_MODEL_LOAD_MLX_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/safetensors.h"
#include "model/model.h"
#include "model/quant_spec.h"

/* How the names and norms of a checkpoint are laid out:
 *   HF:  transformers' names (model.language_model.* or model.*), every
 *        zero-centred norm weight w as is (the math uses 1 + w);
 *   MLX_LM: mlx-lm's conversion: language_model.model.*, every zero-centred
 *        norm (the final one included) stored as 1 + w, conv1d [C, K, 1];
 *   APP: the reference app's converter (aufklarer/Qwen3.5-0.8B-Chat-MLX):
 *        no prefix, no lm_head (tied), conv1d [C, K, 1], the layers'
 *        zero-centred norms stored as 1 + w but the final norm as w. */
typedef enum q35_ckpt_layout { Q35_LAYOUT_HF, Q35_LAYOUT_MLX_LM, Q35_LAYOUT_APP } q35_ckpt_layout;

/* The layout of an opened set of safetensors files, from its names. */
q35_ckpt_layout q35_ckpt_layout_of(const q35_st_set *set);

/* For the app layout: true if the zero-centred norm weight w (n values)
 * has the +1 already added. The app's converters differ (the published
 * int4/int8 files fold it, the int5 exporter is unknown), so the values
 * tell: the original weights are small (mean ~0.1-0.5 in the 0.8B), a
 * folded one is 1 more. */
bool q35_norm_looks_folded(const float *w, int64_t n);

/* Binds the MLX affine matrix whose codes are `w` (U32, full name `full`,
 * its `.scales` / `.biases` beside it in `set`) as a [rows, cols] tensor
 * of dtype Q35_DT_MLX<b>, in place: out->data is a q35_mlx_affine owned by
 * m pointing into the maps (the parts are copied only when misaligned for
 * their element type). `quant` (may be NULL) is config.json's declaration,
 * checked against what the tensor shows. */
int q35_mlx_bind(q35_model *m, const q35_st_set *set, const char *full, const q35_st_tensor *w,
                 int64_t rows, int64_t cols, const q35_quant_spec *quant, q35_tensor *out,
                 q35_err *e);

#endif
