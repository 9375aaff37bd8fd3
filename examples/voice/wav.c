/* wav.c — WAV reading and writing for the voice example (see wav.h). */
#include <stdlib.h>
#include <string.h>

#include "wav.h"

static uint32_t u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t u16(const unsigned char *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

int wav_read_16k(const char *path, int16_t **pcm, size_t *n, char *err, size_t errlen) {
    *pcm = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    unsigned char h[12], ch[8];
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) {
        snprintf(err, errlen, "%s: not a RIFF/WAVE file", path);
        fclose(f);
        return -1;
    }
    int channels = 0, rate = 0, bits = 0;
    unsigned char *data = NULL;
    size_t data_len = 0;
    while (fread(ch, 1, 8, f) == 8) {
        uint32_t len = u32(ch + 4);
        if (!memcmp(ch, "fmt ", 4) && len >= 16 && len < 1024) {
            unsigned char fmt[1024];
            if (fread(fmt, 1, len, f) != len) break;
            if (u16(fmt) != 1 && u16(fmt) != 0xFFFE) {
                snprintf(err, errlen, "%s: not integer PCM (format %u)", path, u16(fmt));
                fclose(f);
                return -1;
            }
            channels = u16(fmt + 2);
            rate = (int)u32(fmt + 4);
            bits = u16(fmt + 14);
            if (len & 1) fgetc(f);
        } else if (!memcmp(ch, "data", 4)) {
            if (len == 0xFFFFFFFFu || len > (1u << 30)) len = 1u << 30; /* streamed: to the end */
            data = malloc(len ? len : 1);
            if (!data) break;
            data_len = fread(data, 1, len, f);
            break;
        } else if (fseek(f, (long)len + (len & 1), SEEK_CUR)) {
            break;
        }
    }
    fclose(f);
    if (!data || bits != 16 || channels < 1 || channels > 8 || rate < 4000 || rate > 192000) {
        snprintf(err, errlen, "%s: need 16-bit PCM with a data chunk (%d channels, %d Hz, %d bits)",
                 path, channels, rate, bits);
        free(data);
        return -1;
    }
    size_t frames = data_len / (size_t)(2 * channels);
    /* mono, then linear interpolation to 16 kHz */
    double *mono = malloc((frames ? frames : 1) * sizeof *mono);
    size_t out_n = (size_t)((double)frames * 16000 / rate);
    int16_t *out = malloc((out_n ? out_n : 1) * sizeof *out);
    if (!mono || !out) {
        free(mono);
        free(out);
        free(data);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < frames; i++) {
        double s = 0;
        for (int c = 0; c < channels; c++)
            s += (int16_t)u16(data + (i * (size_t)channels + (size_t)c) * 2);
        mono[i] = s / channels;
    }
    for (size_t i = 0; i < out_n; i++) {
        double x = (double)i * rate / 16000;
        size_t k = (size_t)x;
        double fr = x - (double)k, a = mono[k], b = k + 1 < frames ? mono[k + 1] : a;
        double v = a + (b - a) * fr;
        out[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
    free(mono);
    free(data);
    *pcm = out;
    *n = out_n;
    return 0;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static int write_header(wav_writer *w) {
    unsigned char h[44] =
        "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\0\0\0\0\0\0\0\0\x02\0\x10\0data";
    uint32_t bytes = (uint32_t)(w->samples * 2);
    put32(h + 4, 36 + bytes);
    put32(h + 24, (uint32_t)w->rate);
    put32(h + 28, (uint32_t)w->rate * 2);
    put32(h + 40, bytes);
    return fwrite(h, 1, 44, w->f) == 44 ? 0 : -1;
}

int wav_open(wav_writer *w, const char *path, int rate) {
    memset(w, 0, sizeof *w);
    w->rate = rate;
    if (!strcmp(path, "-")) {
        w->f = stdout;
        w->raw = 1;
        return 0;
    }
    w->f = fopen(path, "wb");
    if (!w->f) return -1;
    return write_header(w);
}

int wav_write(wav_writer *w, const int16_t *pcm, size_t n) {
    w->samples += n;
    return fwrite(pcm, 2, n, w->f) == n ? 0 : -1;
}

int wav_close(wav_writer *w) {
    if (!w->f) return 0;
    int rc = 0;
    if (w->raw) {
        rc = fflush(w->f);
    } else {
        if (fseek(w->f, 0, SEEK_SET) || write_header(w)) rc = -1;
        if (fclose(w->f)) rc = -1;
    }
    w->f = NULL;
    return rc;
}
