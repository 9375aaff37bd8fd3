/* config.h — the model hyperparameters (SPEC §2), read from config.json
 * (flat, or nested under text_config) or from GGUF metadata. */
#ifndef Q35_MODEL_CONFIG_H
#define Q35_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "q35.h"

#define Q35_MAX_LAYERS 256
#define Q35_MAX_EOS 8

typedef struct q35_config {
    int vocab_size;        /* V: rows of embed_tokens / lm_head */
    int hidden_size;       /* H */
    int intermediate_size; /* I */
    int n_layers;
    bool layer_full[Q35_MAX_LAYERS]; /* true: gated attention, false: DeltaNet */
    /* Where layer_full came from, for `q35 info`: the per-layer list
     * ("layer_types", "qwen35.attention.recurrent_layers") or the interval,
     * and whether an interval given beside the list disagreed with it. */
    char layers_from[160];

    /* gated attention */
    int n_heads;    /* nh */
    int n_kv_heads; /* nkv */
    int head_dim;   /* d */
    int rotary_dim; /* r = d * partial_rotary_factor, even */
    double rope_theta;

    /* Gated DeltaNet */
    int lin_k_heads; /* nk */
    int lin_v_heads; /* nv, a multiple of nk */
    int lin_k_dim;   /* dk */
    int lin_v_dim;   /* dv */
    int conv_kernel; /* K */

    float rms_eps;
    bool tie_embeddings;
    int max_position; /* max_position_embeddings, 0 if absent */
    int n_eos;
    int eos_ids[Q35_MAX_EOS];
} q35_config;

/* Parses config.json text. `where` names the file in error messages.
 * Validates every field (present, positive, consistent); contradictory
 * configs (e.g. layer_types disagreeing with num_hidden_layers) fail. */
int q35_config_parse_json(const char *text, size_t len, const char *where, q35_config *out,
                          q35_err *e);

/* Checks the relations between fields that any source must satisfy. */
int q35_config_validate(const q35_config *c, const char *where, q35_err *e);

/* Derived sizes. */
static inline int q35_config_conv_channels(const q35_config *c) {
    return 2 * c->lin_k_heads * c->lin_k_dim + c->lin_v_heads * c->lin_v_dim;
}

#endif
