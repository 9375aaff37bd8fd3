/* asr_text.c — a recognizer that "hears" a known text (speech.h): for
 * measuring what happens after speech recognition without its noise. The
 * text's words come out as partial hypotheses at a speaking rate, `lag`
 * words behind the audio, as a streaming recognizer's do; the final
 * hypothesis is the whole text. One text per process (the example's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speech.h"

static struct {
    const char *text;
    int wpm, lag;
} g_cfg;

struct asr {
    char words[4096];
    int n_words;
    int word_start[512];
    size_t fed; /* samples */
    char partial[4096];
};

void asr_text_set(const char *text, int wpm, int lag) {
    g_cfg.text = text;
    g_cfg.wpm = wpm;
    g_cfg.lag = lag;
}

static size_t samples_per_word(void) {
    return (size_t)ASR_RATE * 60 / (size_t)(g_cfg.wpm > 0 ? g_cfg.wpm : 150);
}

static int count_words(const char *s) {
    int n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

size_t asr_text_samples(void) {
    return g_cfg.text ? (size_t)count_words(g_cfg.text) * samples_per_word() : 0;
}

static asr *tx_open(char *err, size_t errlen) {
    if (!g_cfg.text) {
        snprintf(err, errlen, "no text to hear");
        return NULL;
    }
    asr *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(a->words, sizeof a->words, "%s", g_cfg.text);
    for (char *p = a->words; *p && a->n_words < 512;) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        a->word_start[a->n_words++] = (int)(p - a->words);
        while (*p && *p != ' ')
            p++;
    }
    return a;
}

static int tx_feed(asr *a, const int16_t *pcm, size_t n, const char **partial, bool *in_speech) {
    (void)pcm;
    a->fed += n;
    int heard = (int)(a->fed / samples_per_word()) - g_cfg.lag;
    if (heard > a->n_words) heard = a->n_words;
    a->partial[0] = 0;
    if (heard > 0) {
        int end = heard < a->n_words ? a->word_start[heard] : (int)strlen(a->words);
        snprintf(a->partial, sizeof a->partial, "%.*s", end, a->words);
        size_t k = strlen(a->partial);
        while (k && a->partial[k - 1] == ' ')
            a->partial[--k] = 0;
    }
    *partial = a->partial;
    *in_speech = true;
    return 0;
}

static const char *tx_finish(asr *a) {
    return a->words;
}

static void tx_close(asr *a) {
    free(a);
}

const asr_ops asr_text = {"text", tx_open, tx_feed, tx_finish, tx_close};
