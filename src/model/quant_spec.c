/* quant_spec.c — reads the MLX "quantization" block of config.json (or the
 * reference app's "quantization": "int4" label). */
#include "model/quant_spec.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/json_doc.h"

void q35_quant_spec_free(q35_quant_spec *q) {
    for (int i = 0; i < q->n_overrides; i++)
        free(q->override_paths[i]);
    free(q->override_paths);
    memset(q, 0, sizeof *q);
}

static int valid_int(const cJSON *j, int lo, int hi, int *out) {
    if (!cJSON_IsNumber(j) || j->valuedouble < lo || j->valuedouble > hi ||
        j->valuedouble != (double)(int)j->valuedouble)
        return 0;
    *out = (int)j->valuedouble;
    return 1;
}

int q35_quant_spec_parse_json(const char *text, size_t len, const char *where, q35_quant_spec *out,
                              q35_err *e) {
    memset(out, 0, sizeof *out);
    cJSON *root = q35_json_parse(text, len, where, NULL, e);
    if (!root) return Q35_EFORMAT;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization");
    if (!q) q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    int rc = Q35_OK;
    if (!q || cJSON_IsNull(q)) goto done;
    if (cJSON_IsString(q)) {
        /* The reference app's label, "int4" / "int5" / "int8": group 64
         * unless quantization_bits / quantization_group_size say more. */
        const char *lab = q->valuestring;
        const cJSON *qb = cJSON_GetObjectItemCaseSensitive(root, "quantization_bits");
        const cJSON *qg = cJSON_GetObjectItemCaseSensitive(root, "quantization_group_size");
        out->group_size = 64;
        if (strncmp(lab, "int", 3) || !lab[3] || lab[4] || lab[3] < '2' || lab[3] > '8' ||
            lab[3] == '7' || (qb && !valid_int(qb, 2, 8, &out->bits)) ||
            (qg && !valid_int(qg, 32, 128, &out->group_size))) {
            rc = q35_err_set(e, Q35_EFORMAT,
                             "%s: \"quantization\" label '%s' is not int2..int8 (or its "
                             "quantization_bits / quantization_group_size are not integers)",
                             where, lab);
            goto done;
        }
        int label_bits = lab[3] - '0';
        if (qb && out->bits != label_bits) {
            rc = q35_err_set(e, Q35_EFORMAT,
                             "%s: contradictory config: \"quantization\" says %s but "
                             "quantization_bits says %d",
                             where, lab, out->bits);
            goto done;
        }
        out->bits = label_bits;
        goto done;
    }
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(q, "bits");
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(q, "group_size");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(q, "mode");
    if (!cJSON_IsObject(q) || !bits) {
        /* Not an MLX block (e.g. a transformers quantization_config of
         * another method): refuse rather than misread the weights. */
        rc = q35_err_set(e, Q35_EFORMAT,
                         "%s: \"quantization\" is not an MLX {bits, group_size} block", where);
        goto done;
    }
    if (!valid_int(bits, 1, 8, &out->bits) || !valid_int(gs, 1, 4096, &out->group_size)) {
        rc = q35_err_set(e, Q35_EFORMAT,
                         "%s: quantization bits / group_size are not valid integers", where);
        goto done;
    }
    if (mode && (!cJSON_IsString(mode) || strcmp(mode->valuestring, "affine") != 0)) {
        rc =
            q35_err_set(e, Q35_EFORMAT, "%s: quantization mode '%s' is not supported (affine only)",
                        where, cJSON_IsString(mode) ? mode->valuestring : "?");
        goto done;
    }
    for (const cJSON *it = q->child; it; it = it->next) {
        if (!cJSON_IsObject(it) && !cJSON_IsFalse(it)) continue;
        char **np = realloc(out->override_paths, (size_t)(out->n_overrides + 1) * sizeof *np);
        if (!np || !(np[out->n_overrides] = strdup(it->string))) {
            if (np) out->override_paths = np;
            rc = q35_err_set(e, Q35_ENOMEM, "out of memory");
            goto done;
        }
        out->override_paths = np;
        out->n_overrides++;
    }
done:
    cJSON_Delete(root);
    return rc;
}

bool q35_quant_spec_has_override(const q35_quant_spec *q, const char *tensor_name) {
    for (int i = 0; i < q->n_overrides; i++) {
        size_t n = strlen(q->override_paths[i]);
        if (!strncmp(tensor_name, q->override_paths[i], n) && tensor_name[n] == '.') return true;
    }
    return false;
}
