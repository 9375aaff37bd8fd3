/* eos_ids.h — the ids that end a reply (SPEC §5): the model config's
 * eos_token_id, generation_config.json's (what transformers' generate
 * stops at, which may list more), the tokenizer's eos_token, and the chat
 * format's own <|im_end|> and <|endoftext|>. */
#ifndef Q35_RUNTIME_EOS_IDS_H
#define Q35_RUNTIME_EOS_IDS_H

#include <stdint.h>

#include "q35.h"

#define Q35_MAX_EOS_IDS 16

typedef struct q35_eos_ids {
    int32_t ids[Q35_MAX_EOS_IDS];
    int n;
} q35_eos_ids;

/* Collects the eos ids of model `m` with tokenizer `tok`, keeping those
 * below n_logits. A missing or unreadable generation_config.json is not an
 * error (the file is optional); nothing else can fail. */
void q35_eos_ids_collect(q35_eos_ids *out, const q35_model *m, const q35_tokenizer *tok,
                         int n_logits);

/* True when id is one of them. */
static inline int q35_eos_ids_has(const q35_eos_ids *s, int32_t id) {
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] == id) return 1;
    return 0;
}

#endif
