/* asr_pocketsphinx.c — speech recognition with CMU pocketsphinx (Debian's
 * libpocketsphinx-dev and its US English model, pocketsphinx-en-us):
 * continuous decoding with the generic language model; the hypothesis is
 * read back after every block of audio, which is what feeds q35's
 * prefill-while-speaking. */
#include <stdio.h>
#include <stdlib.h>

#include <pocketsphinx.h>

#include "speech.h"

#ifndef Q35_PS_MODELDIR
#define Q35_PS_MODELDIR "/usr/share/pocketsphinx/model"
#endif

struct asr {
    cmd_ln_t *config;
    ps_decoder_t *ps;
};

static void ps_close(asr *a) {
    if (!a) return;
    if (a->ps) ps_free(a->ps);
    if (a->config) cmd_ln_free_r(a->config);
    free(a);
}

static asr *ps_open(char *err, size_t errlen) {
    asr *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", Q35_PS_MODELDIR "/en-us/en-us", "-lm",
                            Q35_PS_MODELDIR "/en-us/en-us.lm.bin", "-dict",
                            Q35_PS_MODELDIR "/en-us/cmudict-en-us.dict", "-logfn", "/dev/null",
                            "-fwdflat", "no", "-bestpath", "no", NULL);
    if (a->config) a->ps = ps_init(a->config);
    if (!a->ps || ps_start_utt(a->ps) < 0) {
        snprintf(err, errlen,
                 "pocketsphinx: cannot start the decoder (is pocketsphinx-en-us in %s?)",
                 Q35_PS_MODELDIR);
        ps_close(a);
        return NULL;
    }
    return a;
}

static int ps_feed(asr *a, const int16_t *pcm, size_t n, const char **partial, bool *in_speech) {
    if (ps_process_raw(a->ps, pcm, n, FALSE, FALSE) < 0) return -1;
    int32 score;
    const char *h = ps_get_hyp(a->ps, &score);
    *partial = h ? h : "";
    *in_speech = ps_get_in_speech(a->ps) != 0;
    return 0;
}

static const char *ps_finish(asr *a) {
    ps_end_utt(a->ps);
    int32 score;
    const char *h = ps_get_hyp(a->ps, &score);
    return h ? h : "";
}

const asr_ops asr_pocketsphinx = {"pocketsphinx", ps_open, ps_feed, ps_finish, ps_close};
