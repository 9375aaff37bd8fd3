/* speech.h — the two speech components of the voice example behind small
 * interfaces, so that another recognizer (whisper.cpp) or synthesizer
 * (Piper) can replace pocketsphinx or espeak-ng without touching the
 * pipeline in voice.c. Each has one implementation here
 * (asr_pocketsphinx.c, tts_espeak.c). Errors come back as a message in
 * `err`. */
#ifndef Q35_VOICE_SPEECH_H
#define Q35_VOICE_SPEECH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------ speech recognition */

/* Audio in: 16 kHz mono signed 16-bit samples. */
#define ASR_RATE 16000

typedef struct asr asr;

typedef struct asr_ops {
    const char *name;
    /* A recognizer ready for one utterance; NULL and `err` on failure. */
    asr *(*open)(char *err, size_t errlen);
    /* Feeds samples; afterwards `partial` is the hypothesis so far (NUL-
     * terminated, owned by the recognizer, valid until the next call; ""
     * when nothing yet) and *in_speech whether speech is going on now. */
    int (*feed)(asr *a, const int16_t *pcm, size_t n, const char **partial, bool *in_speech);
    /* The utterance is over: the final hypothesis (owned, as above). */
    const char *(*finish)(asr *a);
    void (*close)(asr *a);
} asr_ops;

extern const asr_ops asr_pocketsphinx;

/* A stand-in recognizer for measuring the LLM side alone: it "hears" a
 * given text at `wpm` words a minute (one word per 60/wpm s of audio fed),
 * its partials trailing `lag` words behind, and returns the whole text as
 * the final hypothesis. asr_text_set configures it before open;
 * asr_text_samples is the audio length (16 kHz samples) the text takes. */
extern const asr_ops asr_text;
void asr_text_set(const char *text, int wpm, int lag);
size_t asr_text_samples(void);

/* ------------------------------------------------- speech synthesis */

/* Receives synthesized samples (mono signed 16-bit at the synthesizer's
 * rate) as they are made. Return non-zero to stop. */
typedef int (*tts_audio_fn)(void *user, const int16_t *pcm, size_t n);

typedef struct tts tts;

typedef struct tts_ops {
    const char *name;
    /* A synthesizer; *rate receives its sample rate. NULL and `err` on
     * failure. */
    tts *(*open)(int *rate, char *err, size_t errlen);
    /* Speaks `text` (UTF-8), handing audio to fn as it is made; returns
     * when the text is done. */
    int (*speak)(tts *t, const char *text, tts_audio_fn fn, void *user);
    void (*close)(tts *t);
} tts_ops;

extern const tts_ops tts_espeak;

#endif
