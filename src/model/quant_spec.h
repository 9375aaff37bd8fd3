/* quant_spec.h — the "quantization" block of an MLX-style config.json:
 * {"group_size": 64, "bits": 4, "mode": "affine", "<module path>": {...} | false}.
 * The loader checks each quantized tensor against it. */
#ifndef Q35_MODEL_QUANT_SPEC_H
#define Q35_MODEL_QUANT_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "q35.h"

typedef struct q35_quant_spec {
    int bits; /* 0: the config declares no quantization */
    int group_size;
    char **override_paths; /* modules with their own settings (or none) */
    int n_overrides;
} q35_quant_spec;

/* Parses config.json text; absent block -> bits == 0. Caller frees with
 * q35_quant_spec_free (also after a failure). */
int q35_quant_spec_parse_json(const char *text, size_t len, const char *where, q35_quant_spec *out,
                              q35_err *e);
void q35_quant_spec_free(q35_quant_spec *q);

/* True if `tensor_name` ("<module>.weight") belongs to an overridden module. */
bool q35_quant_spec_has_override(const q35_quant_spec *q, const char *tensor_name);

#endif
