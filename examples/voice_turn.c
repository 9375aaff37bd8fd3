/* voice_turn.c — the smallest complete use of the library, as a voice app
 * would make it: load a model once (a hub id is downloaded on first use),
 * keep a conversation, and stream each answer piece by piece to the speech
 * synthesizer (here: stdout) as it is generated, thinking off.
 *
 * usage: voice_turn [MODEL] [QUESTION]
 * Build: part of the CMake build (target voice_turn, linked with `q35`). */
#include <stdio.h>

#include "q35.h"

/* Called for every piece of text as soon as it is whole UTF-8. */
static int speak(void *user, q35_piece_kind kind, const char *text, size_t len) {
    (void)user;
    if (kind == Q35_PIECE_ANSWER) {
        fwrite(text, 1, len, stdout); /* hand to TTS */
        fflush(stdout);
    }
    return 0; /* non-zero would stop the reply (e.g. the user barged in) */
}

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1] : Q35_DEFAULT_MODEL;
    const char *question = argc > 2 ? argv[2] : "What is the capital of France?";
    q35_err e = {0};
    q35_load_opts lo = {.weights = Q35_WEIGHTS_Q4_0}; /* 4-bit weights: ~0.4 GB for 0.8B */
    q35_model *m = q35_model_load(model, &lo, &e);
    if (!m) {
        fprintf(stderr, "voice_turn: %s\n", e.msg);
        return 1;
    }
    q35_chat *c = q35_chat_new(m, NULL, "You are a concise voice assistant.", NULL, &e);
    if (!c) {
        fprintf(stderr, "voice_turn: %s\n", e.msg);
        q35_model_free(m);
        return 1;
    }
    q35_sampling s = q35_sampling_default();
    s.thinking = false; /* speak at once */
    s.max_tokens = 64;
    q35_reply r;
    int rc = q35_chat_generate(c, question, &s, speak, NULL, &r, &e);
    if (rc)
        fprintf(stderr, "voice_turn: %s\n", e.msg);
    else
        printf("\n[%d tokens, %.0f ms to first token, stop: %s]\n", r.n_ids, r.ttft_ms,
               q35_stop_reason_name(r.stop));
    q35_reply_free(&r);
    q35_chat_free(c); /* the chat before the model it uses */
    q35_model_free(m);
    return rc ? 1 : 0;
}
