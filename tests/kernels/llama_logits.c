/* llama_logits: the logits llama.cpp computes for every position of a prompt
 * (one batch), float32 [T, vocab] to a file. usage: MODEL ids,comma OUT */
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int32_t ids[4096];
    int T = 0;
    for (char *p = strtok(argv[2], ","); p && T < 4096; p = strtok(NULL, ","))
        ids[T++] = atoi(p);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *m = llama_model_load_from_file(argv[1], mp);
    if (!m) return 1;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = T + 8;
    cp.n_batch = T;
    cp.n_ubatch = T;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    struct llama_context *c = llama_init_from_model(m, cp);
    struct llama_batch b = llama_batch_init(T, 0, 1);
    for (int i = 0; i < T; i++) {
        b.token[i] = ids[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = T;
    if (llama_decode(c, b)) return 1;
    int V = llama_vocab_n_tokens(llama_model_get_vocab(m));
    FILE *f = fopen(argv[3], "wb");
    for (int i = 0; i < T; i++)
        fwrite(llama_get_logits_ith(c, i), 4, V, f);
    fclose(f);
    llama_batch_free(b);
    llama_free(c);
    llama_model_free(m);
    return 0;
}
