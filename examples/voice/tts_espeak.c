/* tts_espeak.c — speech synthesis with espeak-ng (Debian's
 * libespeak-ng-dev) in its synchronous mode: espeak_Synth returns once the
 * text is spoken, and audio comes to the callback in blocks of 20 ms as it
 * is made, so the first samples of a phrase are out long before its end.
 * espeak-ng keeps global state: one synthesizer per process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <espeak-ng/speak_lib.h>

#include "speech.h"

struct tts {
    int rate;
};

/* Where the current espeak_Synth call sends its audio. */
typedef struct sink {
    tts_audio_fn fn;
    void *user;
    int stopped;
} sink;

static int on_audio(short *wav, int n, espeak_EVENT *ev) {
    sink *s = ev ? ev->user_data : NULL;
    if (!s || !wav || n <= 0 || s->stopped) return s && s->stopped;
    if (s->fn(s->user, wav, (size_t)n)) s->stopped = 1;
    return s->stopped;
}

static tts *es_open(int *rate, char *err, size_t errlen) {
    int r = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 20, NULL, 0);
    if (r <= 0) {
        snprintf(err, errlen, "espeak-ng: cannot initialize (espeak-ng-data installed?)");
        return NULL;
    }
    espeak_SetSynthCallback(on_audio);
    espeak_SetVoiceByName("en");
    tts *t = calloc(1, sizeof *t);
    if (!t) {
        espeak_Terminate();
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->rate = *rate = r;
    return t;
}

static int es_speak(tts *t, const char *text, tts_audio_fn fn, void *user) {
    (void)t;
    sink s = {fn, user, 0};
    espeak_ERROR rc =
        espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, &s);
    return rc == EE_OK ? 0 : -1;
}

static void es_close(tts *t) {
    if (!t) return;
    espeak_Terminate();
    free(t);
}

const tts_ops tts_espeak = {"espeak-ng", es_open, es_speak, es_close};
