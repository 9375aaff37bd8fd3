/* wav.h — audio files for the voice example: reading a PCM WAV (16-bit
 * integer, any rate and channel count) as 16 kHz mono for the recognizer,
 * and writing the synthesizer's samples as a 16-bit mono WAV, streamed
 * (the sizes are filled in when the file is closed). */
#ifndef Q35_VOICE_WAV_H
#define Q35_VOICE_WAV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Reads `path` into *pcm (16 kHz mono; caller frees with free()). Returns
 * 0, or -1 with a message in err. */
int wav_read_16k(const char *path, int16_t **pcm, size_t *n, char *err, size_t errlen);

typedef struct wav_writer {
    FILE *f;
    int rate;
    size_t samples;
    int raw; /* raw samples, no header (stdout) */
} wav_writer;

/* "-" writes raw samples to stdout. Returns 0 or -1 (errno). */
int wav_open(wav_writer *w, const char *path, int rate);
int wav_write(wav_writer *w, const int16_t *pcm, size_t n);
int wav_close(wav_writer *w);

#endif
