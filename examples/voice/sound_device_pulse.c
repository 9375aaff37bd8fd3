/* sound_device_pulse.c — sound_device.h on PulseAudio's simple API, built
 * when CMake finds libpulse-simple (Q35_VOICE_PULSE); otherwise every open
 * fails with a message naming the package. */
#include "sound_device.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef Q35_VOICE_PULSE
#include <pulse/error.h>
#include <pulse/simple.h>

struct sound_device {
    pa_simple *s;
};

sound_device *sound_device_open(const char *name, int rate, char *err, size_t errlen) {
    if (rate <= 0) {
        snprintf(err, errlen, "sound device: bad sample rate %d", rate);
        return NULL;
    }
    pa_sample_spec ss = {.format = PA_SAMPLE_S16LE, .rate = (uint32_t)rate, .channels = 1};
    int code = 0;
    pa_simple *s = pa_simple_new(NULL, "q35-voice", PA_STREAM_PLAYBACK, name, "answer", &ss, NULL,
                                 NULL, &code);
    if (!s) {
        snprintf(err, errlen,
                 "no sound device: PulseAudio could not open %s%s%s: %s (no sound server is "
                 "running or reachable; write a file with --out FILE.wav instead)",
                 name ? "sink '" : "the default output", name ? name : "", name ? "'" : "",
                 pa_strerror(code));
        return NULL;
    }
    sound_device *d = malloc(sizeof *d);
    if (!d) {
        pa_simple_free(s);
        snprintf(err, errlen, "sound device: out of memory");
        return NULL;
    }
    d->s = s;
    return d;
}

int sound_device_write(sound_device *d, const int16_t *pcm, size_t n, char *err, size_t errlen) {
    int code = 0;
    if (n && pa_simple_write(d->s, pcm, n * sizeof *pcm, &code) < 0) {
        snprintf(err, errlen, "sound device: writing failed: %s", pa_strerror(code));
        return -1;
    }
    return 0;
}

double sound_device_latency_ms(sound_device *d) {
    int code = 0;
    pa_usec_t us = pa_simple_get_latency(d->s, &code);
    return us == (pa_usec_t)-1 ? -1 : (double)us / 1e3;
}

void sound_device_close(sound_device *d) {
    if (!d) return;
    int code = 0;
    pa_simple_drain(d->s, &code);
    pa_simple_free(d->s);
    free(d);
}

#else /* built without libpulse-simple */

struct sound_device {
    int unused;
};

sound_device *sound_device_open(const char *name, int rate, char *err, size_t errlen) {
    (void)name;
    (void)rate;
    snprintf(err, errlen,
             "no sound device: q35-voice was built without PulseAudio's libpulse-simple "
             "(install libpulse-dev, scripts/setup does, and rebuild); write a file with --out");
    return NULL;
}

int sound_device_write(sound_device *d, const int16_t *pcm, size_t n, char *err, size_t errlen) {
    (void)d;
    (void)pcm;
    (void)n;
    snprintf(err, errlen, "no sound device");
    return -1;
}

double sound_device_latency_ms(sound_device *d) {
    (void)d;
    return -1;
}

void sound_device_close(sound_device *d) {
    (void)d;
}

#endif
