/* voice.c — q35-voice: one spoken turn through a real pipeline, speech in
 * to speech out, with each stage's latency printed.
 *
 *   audio (WAV, or raw 16 kHz PCM on stdin: `arecord -r16000 -fS16_LE | ...`)
 *     -> pocketsphinx, block by block; every new partial hypothesis goes to
 *        q35_chat_listen, which prefills it while the user is still speaking
 *     -> end of speech (end of input, or the recognizer's silence detection)
 *     -> the final transcript to q35_chat_generate (thinking off); answer
 *        pieces through the phrase chunker (q35_phraser)
 *     -> each phrase to espeak-ng on a thread of its own as soon as it is
 *        ready, while the reply goes on; audio to a WAV file (or raw to
 *        stdout with --out -) and/or the sound device (--play, PulseAudio)
 *
 * usage: q35-voice -m MODEL --in IN.wav|- (--out OUT.wav|- | --play) [options]
 * Reports go to stderr, one "name value" pair per line ("name none (why)"
 * for a stage the turn never reached). */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "q35.h"
#include "sound_device.h"
#include "speech.h"
#include "wav.h"

#define BLOCK_MS 100
#define BLOCK (ASR_RATE * BLOCK_MS / 1000)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_until(double t) {
    double d = t - now_ms();
    if (d <= 0) return;
    struct timespec ts = {(time_t)(d / 1e3), (long)(((long long)(d * 1e6)) % 1000000000LL)};
    nanosleep(&ts, NULL);
}

/* The reply's phrases on their way to the synthesizer. */
typedef struct pipeline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **queue;
    int n_queued, n_spoken, cap;
    bool done;
    const tts_ops *tts_impl;
    tts *t;
    wav_writer out;     /* when out.f */
    sound_device *dev;  /* --play */
    double dev_latency; /* the device's buffer at the first samples, ms */
    size_t samples;     /* synthesized so far */
    bool out_failed;
    char out_err[256];
    /* times (ms on the monotonic clock; 0 = not yet) */
    double t_first_piece, t_first_phrase, t_first_phrase_tts, t_first_audio;
} pipeline;

static int on_audio(void *ud, const int16_t *pcm, size_t n) {
    pipeline *p = ud;
    bool first = !p->t_first_audio;
    if (first) p->t_first_audio = now_ms();
    p->samples += n;
    if (p->out.f && wav_write(&p->out, pcm, n)) p->out_failed = true;
    if (p->dev) {
        if (sound_device_write(p->dev, pcm, n, p->out_err, sizeof p->out_err))
            p->out_failed = true;
        else if (first)
            p->dev_latency = sound_device_latency_ms(p->dev);
    }
    return 0;
}

static void *tts_thread(void *arg) {
    pipeline *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->n_spoken == p->n_queued && !p->done)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->n_spoken == p->n_queued) break;
        char *text = p->queue[p->n_spoken];
        int i = p->n_spoken;
        pthread_mutex_unlock(&p->mu);
        if (i == 0) p->t_first_phrase_tts = now_ms();
        fprintf(stderr, "say[%d] %s\n", i, text);
        if (p->tts_impl->speak(p->t, text, on_audio, p))
            fprintf(stderr, "tts: failed on a phrase\n");
        pthread_mutex_lock(&p->mu);
        p->n_spoken++;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int on_phrase(void *ud, const q35_phrase *ph) {
    pipeline *p = ud;
    char *copy = malloc(ph->len + 1);
    if (!copy) return 1;
    memcpy(copy, ph->text, ph->len + 1);
    pthread_mutex_lock(&p->mu);
    if (p->n_queued == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        char **q = realloc(p->queue, (size_t)cap * sizeof *q);
        if (!q) {
            pthread_mutex_unlock(&p->mu);
            free(copy);
            return 1;
        }
        p->queue = q;
        p->cap = cap;
    }
    if (!p->t_first_phrase) p->t_first_phrase = now_ms();
    p->queue[p->n_queued++] = copy;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

typedef struct piece_ctx {
    pipeline *p;
    q35_phraser *phraser;
} piece_ctx;

static int on_piece(void *ud, q35_piece_kind kind, const char *text, size_t len) {
    piece_ctx *pc = ud;
    if (!pc->p->t_first_piece) pc->p->t_first_piece = now_ms();
    return q35_phraser_on_piece(pc->phraser, kind, text, len);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --bench N with --text: the LLM stage alone, N times each way, taken
 * alternately in one process (no ASR or TTS in the figures): time from the
 * final transcript to the first token
 *   - "speculated": the partials prefilled and the last one speculated on
 *     as the final (q35_chat_listen_expect with the turn's settings);
 *   - "prefilled": the partials' settled prefixes only (no speculation);
 *   - "without": nothing prefilled but the system prompt.
 * Each partial is waited for, as a recognizer slower than the prefill
 * allows. With --lag 0 the final equals the last partial. */
static int bench_listen(q35_chat *c, const char *text, int lag, int n, q35_sampling s) {
    char words[4096];
    snprintf(words, sizeof words, "%s", text);
    int starts[512], nw = 0;
    for (char *p = words; *p && nw < 512;) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        starts[nw++] = (int)(p - words);
        while (*p && *p != ' ')
            p++;
    }
    s.max_tokens = 1;
    enum { MODES = 3 };
    static const char *const names[MODES] = {"speculated", "prefilled", "without"};
    double *t[MODES];
    for (int mode = 0; mode < MODES; mode++)
        t[mode] = calloc((size_t)n, sizeof(double));
    int pre[MODES] = {0}, reu[MODES] = {0};
    q35_err e = {0};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        for (int mode = 0; mode < MODES && !rc; mode++) {
            q35_chat_reset(c);
            q35_chat_listen_expect(c, mode == 0 ? &s : NULL, &e);
            if (mode < 2)
                for (int k = 1; k <= nw - lag; k++) {
                    char part[4096];
                    int end = k < nw ? starts[k] : (int)strlen(words);
                    snprintf(part, sizeof part, "%.*s", end, words);
                    q35_chat_listen(c, part, &e);
                    q35_chat_listen_wait(c);
                }
            q35_reply r;
            rc = q35_chat_generate(c, text, &s, NULL, NULL, &r, &e);
            t[mode][i] = r.ttft_ms;
            pre[mode] = r.prefilled_tokens;
            reu[mode] = r.reused_tokens;
            q35_reply_free(&r);
        }
    if (rc) fprintf(stderr, "q35-voice: %s\n", e.msg);
    for (int mode = 0; mode < MODES && !rc; mode++) {
        qsort(t[mode], (size_t)n, sizeof(double), cmp_double);
        fprintf(stderr,
                "bench_%s_first_token_ms min %.1f median %.1f max %.1f (prefilled %d, reused "
                "%d)\n",
                names[mode], t[mode][0], t[mode][n / 2], t[mode][n - 1], pre[mode], reu[mode]);
    }
    if (!rc)
        fprintf(stderr, "bench_median_ratio speculated/without %.3f prefilled/without %.3f\n",
                t[0][n / 2] / t[2][n / 2], t[1][n / 2] / t[2][n / 2]);
    for (int mode = 0; mode < MODES; mode++)
        free(t[mode]);
    return rc ? 1 : 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: q35-voice -m MODEL --in IN.wav|- (--out OUT.wav|- | --play) [options]\n"
               "  One spoken turn: pocketsphinx -> q35 -> espeak-ng, with each stage's latency.\n"
               "  --in -   reads raw 16 kHz mono s16le PCM on stdin (e.g. from arecord);\n"
               "  --out -  writes raw s16le PCM at the synthesizer's rate to stdout.\n"
               "      --play            plays the answer on the sound device (PulseAudio or\n"
               "                        PipeWire's pulse server), with or without --out\n"
               "      --device NAME     the sink to play on (implies --play; default: the\n"
               "                        server's default)\n"
               "  -s, --system S        system prompt (a concise voice assistant)\n"
               "  -t, --threads N       compute threads (2)\n"
               "      --quant q4|q8     weights converted at load\n"
               "  -n, --max-tokens N    (64)\n"
               "      --temp T          (0.6)   --seed S (1)\n"
               "      --no-prefill      no prefill while the user speaks (baseline)\n"
               "      --no-speculate    prefill the partials' settled words only, not the last\n"
               "                        partial as the final\n"
               "      --unload-for-tts  unload the model while the rest is spoken, reload after\n"
               "      --fast            feed a WAV as fast as possible, not in real time\n"
               "      --first-max N     longest first phrase (60)\n"
               "      --text T          no audio in: a simulated recognizer \"hears\" T at --wpm\n"
               "                        words a minute, its partials --lag words behind (the\n"
               "                        LLM stages measured without ASR noise); --in not needed\n"
               "      --wpm N (150)  --lag N (3)\n"
               "      --bench N         with --text: final transcript -> first token, N times\n"
               "                        each: partials speculated on, partials prefilled only,\n"
               "                        nothing prefilled (no audio; --lag 0: final = last\n"
               "                        partial)\n");
}

int main(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *text_in = NULL, *device = NULL;
    bool play = false;
    int wpm = 150, lag = 3, bench = 0;
    const char *system = "You are a concise voice assistant. Answer in one or two sentences.";
    int threads = 2, first_max = 0;
    bool prefill = true, speculate = true, unload = false, fast = false;
    q35_load_opts lo = {0};
    q35_sampling s = q35_sampling_default();
    s.thinking = false; /* speak at once */
    s.max_tokens = 64;
    s.seed = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"in", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},     {"system", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"max-tokens", required_argument, 0, 'n'},
        {"quant", required_argument, 0, 'Q'},   {"temp", required_argument, 0, 'T'},
        {"seed", required_argument, 0, 'S'},    {"no-prefill", no_argument, 0, 'P'},
        {"no-speculate", no_argument, 0, 'N'},  {"unload-for-tts", no_argument, 0, 'U'},
        {"fast", no_argument, 0, 'F'},          {"first-max", required_argument, 0, 'X'},
        {"help", no_argument, 0, 'h'},          {"text", required_argument, 0, 'W'},
        {"wpm", required_argument, 0, 'R'},     {"lag", required_argument, 0, 'L'},
        {"bench", required_argument, 0, 'B'},   {"play", no_argument, 0, 'A'},
        {"device", required_argument, 0, 'D'},  {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "m:s:t:n:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 's': system = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'n': s.max_tokens = atoi(optarg); break;
        case 'T': s.temperature = (float)atof(optarg); break;
        case 'S': s.seed = strtoull(optarg, NULL, 0); break;
        case 'P': prefill = false; break;
        case 'N': speculate = false; break;
        case 'U': unload = true; break;
        case 'F': fast = true; break;
        case 'X': first_max = atoi(optarg); break;
        case 'W': text_in = optarg; break;
        case 'R': wpm = atoi(optarg); break;
        case 'L': lag = atoi(optarg); break;
        case 'B': bench = atoi(optarg); break;
        case 'A': play = true; break;
        case 'D':
            device = optarg;
            play = true;
            break;
        case 'Q':
            if (!strcmp(optarg, "q4"))
                lo.weights = Q35_WEIGHTS_Q4_0;
            else if (!strcmp(optarg, "q8"))
                lo.weights = Q35_WEIGHTS_Q8_0;
            else if (strcmp(optarg, "none")) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    bool bench_only = bench > 0 && text_in;
    if (!model || (!in && !text_in) || (!out && !play && !bench_only) || optind != argc ||
        threads < 1 || s.max_tokens < 1 || wpm < 1 || lag < 0) {
        usage(stderr);
        return 2;
    }
    lo.n_threads = threads;

    char err[512];
    q35_err e = {0};
    /* the outputs first: a missing sound device is reported at once, not
     * after the model's load */
    pipeline p = {.tts_impl = &tts_espeak};
    int rate = 0;
    if (!bench_only) {
        p.t = p.tts_impl->open(&rate, err, sizeof err);
        if (p.t && play) p.dev = sound_device_open(device, rate, err, sizeof err);
        bool file_failed = p.t && (!play || p.dev) && out && wav_open(&p.out, out, rate);
        if (!p.t || (play && !p.dev) || file_failed) {
            if (file_failed) snprintf(err, sizeof err, "cannot write %s", out);
            fprintf(stderr, "q35-voice: %s\n", err);
            sound_device_close(p.dev);
            if (p.t) p.tts_impl->close(p.t);
            return 1;
        }
        fprintf(stderr, "output %s%s%s\n", out ? out : "", out && play ? " and " : "",
                play ? "the sound device" : "");
    }
    double t = now_ms();
    q35_model *m = q35_model_load(model, &lo, &e);
    if (!m) {
        fprintf(stderr, "q35-voice: %s\n", e.msg);
        return 1;
    }
    q35_chat *c = q35_chat_new(m, NULL, system, NULL, &e);
    if (!c || q35_chat_prepare(c, &e)) { /* the system prompt, once, before anyone speaks */
        fprintf(stderr, "q35-voice: %s\n", e.msg);
        q35_chat_free(c);
        q35_model_free(m);
        return 1;
    }
    fprintf(stderr, "startup_ms %.1f\n", now_ms() - t);
    /* the final turn's settings, for the listener's speculation */
    q35_chat_listen_expect(c, prefill && speculate ? &s : NULL, &e);
    if (bench_only) {
        int brc = bench_listen(c, text_in, lag, bench, s);
        q35_chat_free(c);
        q35_model_free(m);
        return brc;
    }

    const asr_ops *asr_impl = text_in ? &asr_text : &asr_pocketsphinx;
    asr_text_set(text_in, wpm, lag);
    asr *a = asr_impl->open(err, sizeof err);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    if (!a) {
        fprintf(stderr, "q35-voice: %s\n", err);
        sound_device_close(p.dev);
        wav_close(&p.out);
        p.tts_impl->close(p.t);
        q35_chat_free(c);
        q35_model_free(m);
        return 1;
    }

    /* ---------------------------------------------- listening */
    int16_t *pcm = NULL;
    size_t n_pcm = 0;
    bool from_stdin = !text_in && !strcmp(in, "-");
    if (text_in) { /* silence as long as the text takes to say */
        n_pcm = asr_text_samples();
        pcm = calloc(n_pcm ? n_pcm : 1, sizeof *pcm);
    } else if (!from_stdin && wav_read_16k(in, &pcm, &n_pcm, err, sizeof err)) {
        fprintf(stderr, "q35-voice: %s\n", err);
        return 1;
    }
    char last_partial[4096] = "";
    int n_partials = 0;
    bool heard = false;
    double t_start = now_ms();
    int16_t block[BLOCK];
    for (size_t at = 0;; at += BLOCK) {
        size_t n;
        const int16_t *b;
        if (from_stdin) {
            n = fread(block, 2, BLOCK, stdin);
            b = block;
        } else {
            n = at < n_pcm ? (n_pcm - at < BLOCK ? n_pcm - at : BLOCK) : 0;
            b = pcm + at;
            if (!fast) sleep_until(t_start + (double)(at + n) * 1e3 / ASR_RATE);
        }
        if (!n) break;
        const char *partial;
        bool in_speech;
        if (asr_impl->feed(a, b, n, &partial, &in_speech)) {
            fprintf(stderr, "q35-voice: recognition failed\n");
            break;
        }
        if (in_speech) heard = true;
        if (*partial && strcmp(partial, last_partial)) {
            snprintf(last_partial, sizeof last_partial, "%s", partial);
            fprintf(stderr, "partial %s\n", partial);
            n_partials++;
            if (prefill && q35_chat_listen(c, partial, &e))
                fprintf(stderr, "q35-voice: listen: %s\n", e.msg);
        }
        if (heard && !in_speech && from_stdin) break; /* live input: the recognizer's endpoint */
    }
    double t_eos = now_ms(); /* end of speech */
    free(pcm);
    char final_text[4096];
    snprintf(final_text, sizeof final_text, "%s", asr_impl->finish(a));
    double t_final = now_ms();
    fprintf(stderr, "heard %s\n", final_text);
    fprintf(stderr, "partials %d\n", n_partials);
    fprintf(stderr, "prefill_while_speaking %s\n",
            !prefill    ? "off"
            : speculate ? "on, speculating"
                        : "on, settled words only");
    asr_impl->close(a);

    /* ---------------------------------------------- answering */
    pthread_t th;
    pthread_create(&th, NULL, tts_thread, &p);
    q35_phrase_opts po = q35_phrase_opts_default();
    if (first_max > 0) po.first_max_chars = first_max;
    if (po.first_min_chars > po.first_max_chars) po.first_min_chars = po.first_max_chars;
    q35_phraser *ph = q35_phraser_new(&po, on_phrase, &p, &e);
    piece_ctx pc = {&p, ph};
    q35_reply r = {0};
    int rc =
        ph ? q35_chat_generate(c, *final_text ? final_text : "Hello.", &s, on_piece, &pc, &r, &e)
           : -1;
    double t_reply_end = now_ms();
    if (!rc) rc = q35_phraser_flush(ph, &e);
    pthread_mutex_lock(&p.mu);
    p.done = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    double unload_ms = -1, reload_ms = -1;
    if (unload && !rc) { /* the rest of the answer is spoken without the model in memory */
        size_t held = q35_model_memory_footprint(m);
        double t0 = now_ms();
        q35_model_unload(m);
        unload_ms = now_ms() - t0;
        fprintf(stderr, "unloaded_bytes %zu\n", held);
    }
    pthread_join(th, NULL);
    sound_device_close(p.dev); /* waits until the device has played it all */
    p.dev = NULL;
    double t_tts_end = now_ms();
    if (unload && !rc) {
        double t0 = now_ms();
        rc = q35_model_reload(m, &e);
        reload_ms = now_ms() - t0;
    }
    if (rc) fprintf(stderr, "q35-voice: %s\n", e.msg);

    /* ---------------------------------------------- report */
    fprintf(stderr, "reply_tokens %d\n", r.n_ids);
    fprintf(stderr, "reply_prompt_tokens %d reused %d prefilled %d\n", r.prompt_tokens,
            r.reused_tokens, r.prefilled_tokens);
    fprintf(stderr, "phrases %d\n", p.n_queued);
    /* every stage of the list, each from the one before; a stage
     * the turn never reached says why */
    double first_tok = r.n_sampled ? t_final + r.ttft_ms : 0;
    const char *no_phrase =
        r.n_sampled ? "none (the reply held no speakable text)" : "none (no token was sampled)";
    fprintf(stderr, "latency_asr_final_ms %.1f\n", t_final - t_eos);
    if (first_tok)
        fprintf(stderr, "latency_llm_first_token_ms %.1f\n", first_tok - t_final);
    else
        fprintf(stderr, "latency_llm_first_token_ms %s\n", no_phrase);
    if (first_tok) fprintf(stderr, "latency_eos_to_first_token_ms %.1f\n", first_tok - t_eos);
    if (p.t_first_phrase && first_tok)
        fprintf(stderr, "latency_first_phrase_ms %.1f\n", p.t_first_phrase - first_tok);
    else
        fprintf(stderr, "latency_first_phrase_ms %s\n", no_phrase);
    if (p.t_first_audio && p.t_first_phrase)
        fprintf(stderr, "latency_first_audio_ms %.1f\n", p.t_first_audio - p.t_first_phrase);
    else
        fprintf(stderr, "latency_first_audio_ms %s\n", no_phrase);
    if (p.t_first_audio)
        fprintf(stderr, "latency_eos_to_first_audio_ms %.1f\n", p.t_first_audio - t_eos);
    else
        fprintf(stderr, "latency_eos_to_first_audio_ms %s\n", no_phrase);
    if (p.dev_latency > 0) fprintf(stderr, "sound_device_buffer_ms %.1f\n", p.dev_latency);
    if (p.t_first_phrase_tts)
        fprintf(stderr, "first_phrase_tts_at_ms %.1f\n", p.t_first_phrase_tts - t_eos);
    fprintf(stderr, "reply_end_at_ms %.1f\n", t_reply_end - t_eos);
    fprintf(stderr, "speech_end_at_ms %.1f\n", t_tts_end - t_eos);
    if (unload_ms >= 0) fprintf(stderr, "unload_ms %.1f\nreload_ms %.1f\n", unload_ms, reload_ms);
    fprintf(stderr, "output_samples %zu\noutput_rate %d\n", p.samples, rate);

    if (wav_close(&p.out) || p.out_failed) {
        fprintf(stderr, "q35-voice: writing the answer to %s failed%s%s\n",
                out ? out : "the sound device", *p.out_err ? ": " : "", p.out_err);
        rc = -1;
    }
    for (int i = 0; i < p.n_queued; i++)
        free(p.queue[i]);
    free(p.queue);
    p.tts_impl->close(p.t);
    q35_phraser_free(ph);
    q35_reply_free(&r);
    q35_chat_free(c);
    q35_model_free(m);
    return rc ? 1 : 0;
}
