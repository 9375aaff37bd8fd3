/* sound_device.h — the sound device as an output of the voice example
 * (--play), through PulseAudio's simple API (libpulse-simple, Debian's
 * libpulse-dev; a PipeWire desktop serves it too). Where q35-voice was
 * built without it, opening fails with a message saying so. Errors come
 * back as a message in `err`. */
#ifndef Q35_VOICE_SOUND_DEVICE_H
#define Q35_VOICE_SOUND_DEVICE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sound_device sound_device;

/* Opens the playback device `name` (NULL: the default one) for mono
 * signed 16-bit samples at `rate`. NULL and `err` when there is no device
 * (no sound server reachable, no such sink) or no support built in.
 * Caller frees with sound_device_close. */
sound_device *sound_device_open(const char *name, int rate, char *err, size_t errlen);

/* Plays n samples (blocks while the device's buffer is full). 0 or -1 and
 * `err`. */
int sound_device_write(sound_device *d, const int16_t *pcm, size_t n, char *err, size_t errlen);

/* Milliseconds between a sample written now and its sound (the buffer), or
 * -1 when unknown. */
double sound_device_latency_ms(sound_device *d);

/* Waits until everything written was played, then closes. NULL is fine. */
void sound_device_close(sound_device *d);

#endif
