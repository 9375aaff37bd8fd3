/* eos_ids.c — where a reply's end-of-sequence ids come from (see
 * eos_ids.h). generation_config.json is read here rather than by the
 * loader because only generation needs it; it is small and optional, and a
 * malformed one is ignored (the config's eos still applies). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mapped_file.h"
#include "model/model.h"
#include "runtime/eos_ids.h"

#define MAX_GENERATION_CONFIG (1u << 20)

static void add(q35_eos_ids *s, int32_t id, int n_logits) {
    if (id < 0 || id >= n_logits || s->n == Q35_MAX_EOS_IDS || q35_eos_ids_has(s, id)) return;
    s->ids[s->n++] = id;
}

/* eos_token_id of generation_config.json beside the model (a directory, or
 * the directory of a model file): an int or a list of ints. */
static void add_generation_config(q35_eos_ids *s, const char *model_path, int n_logits) {
    if (!model_path) return;
    char path[4096];
    struct stat st;
    if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/generation_config.json", model_path);
    } else {
        const char *slash = strrchr(model_path, '/');
        if (!slash) return;
        snprintf(path, sizeof path, "%.*s/generation_config.json", (int)(slash - model_path),
                 model_path);
    }
    size_t len;
    char *text = q35_read_text_file(path, MAX_GENERATION_CONFIG, &len, NULL);
    if (!text) return;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
    if (cJSON_IsNumber(eos)) {
        add(s, (int32_t)eos->valuedouble, n_logits);
    } else if (cJSON_IsArray(eos)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, eos) if (cJSON_IsNumber(x)) add(s, (int32_t)x->valuedouble, n_logits);
    }
    cJSON_Delete(j);
}

void q35_eos_ids_collect(q35_eos_ids *out, const q35_model *m, const q35_tokenizer *tok,
                         int n_logits) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < m->cfg.n_eos; i++)
        add(out, m->cfg.eos_ids[i], n_logits);
    add_generation_config(out, m->path, n_logits);
    add(out, q35_tokenizer_eos(tok), n_logits);
    add(out, q35_token_id(tok, "<|im_end|>"), n_logits);
    add(out, q35_token_id(tok, "<|endoftext|>"), n_logits);
}
