/* cmd_bench.c — `q35 bench`: prefill and decode speed, time to first token
 * and peak memory on a model (SPEC §8, §11), measured the way llama-bench
 * does (pp = a prompt of -p random tokens in one call, tg = -n tokens one at
 * a time), after one untimed warm-up pass so that weights are paged in.
 * Decode is bound by memory: it also reports the weight bytes each token
 * reads, the rate it reads them at, and the machine's own read bandwidth
 * (a plain multi-threaded read of a large buffer) to compare against. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "model/model.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: q35 bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json]\n"
            "  Prefill: one prompt of -p random tokens (tokens/s; time to first token =\n"
            "  the prompt's time until its logits). Decode: -n tokens one at a time, each\n"
            "  the argmax of the last logits (tokens/s). Best of -r runs (default 1),\n"
            "  after an untimed warm-up. Peak memory is the process's maximum RSS.\n"
            "  Also: weight bytes read per decoded token, the GB/s that makes, and the\n"
            "  machine's read bandwidth with the same threads (--no-bw: skip it).\n"
            "  --exact: the exact float-activation path (q35_load_opts.exact_kernels,\n"
            "  as Q35_EXACT=1 does for every program), not the integer kernels.\n" CLI_QUANT_HELP);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Weight bytes one decode step reads: every matrix once (the embedding only
 * as the tied output head; untied, one row of it, not counted). */
static double bytes_per_token(q35_model *m) {
    q35_tensor *mats[Q35_MAX_MATRICES];
    int n = q35_model_matrices(m, mats, NULL);
    bool tied = m->lm_head.data == m->embed.data;
    double b = 0;
    for (int i = tied ? 0 : 1; i < n; i++)
        b += (double)q35_tensor_bytes(mats[i]);
    return b;
}

typedef struct bw_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_job;

static void *bw_read(void *arg) {
    bw_job *j = arg;
    uint64_t s[8] = {0};
    for (size_t i = 0; i + 8 <= j->n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += j->p[i + k];
    j->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return NULL;
}

/* GB/s of `threads` threads each reading its slice of a 512 MiB buffer
 * (far past every cache), best of 3 passes; 0 when it cannot run. */
static double read_bandwidth(int threads) {
    size_t bytes = (size_t)512 << 20, n = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (!buf || threads < 1 || threads > 256) {
        free(buf);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    pthread_t th[256];
    bw_job jobs[256];
    double best = 0;
    uint64_t check = 0;
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now_s();
        int started = 0;
        for (int t = 0; t < threads; t++) {
            jobs[t] = (bw_job){buf + n / (size_t)threads * (size_t)t, n / (size_t)threads, 0};
            if (pthread_create(&th[t], NULL, bw_read, &jobs[t]) == 0)
                started++;
            else
                break;
        }
        for (int t = 0; t < started; t++) {
            pthread_join(th[t], NULL);
            check += jobs[t].sum;
        }
        double dt = now_s() - t0;
        if (started == threads && dt > 0 && bytes / dt > best) best = (double)bytes / dt;
    }
    free(buf);
    volatile uint64_t sink = check; /* the sums keep the reads */
    (void)sink;
    return best / 1e9;
}

typedef struct run_result {
    double prefill_s, decode_s;
} run_result;

/* One prefill of p tokens then n decode steps, from an empty state. */
static int run_once(q35_model *m, q35_state *s, const int32_t *prompt, int p, int n, float *logits,
                    int V, run_result *r, q35_err *e) {
    q35_state_clear(s);
    double t0 = now_s();
    if (p > 0 && q35_state_eval(m, s, prompt, p, logits, false, e)) return -1;
    double t1 = now_s();
    int32_t tok = p > 0 ? argmax(logits, V) : 0;
    for (int i = 0; i < n; i++) {
        if (q35_state_eval(m, s, &tok, 1, logits, false, e)) return -1;
        tok = argmax(logits, V);
    }
    double t2 = now_s();
    r->prefill_s = t1 - t0;
    r->decode_s = t2 - t1;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL;
    long p = 512, n = 128, threads = 0, reps = 1;
    int json = 0, no_bw = 0;
    bool exact = false;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"prompt", required_argument, 0, 'p'},
                                         {"n-gen", required_argument, 0, 'n'},
                                         {"threads", required_argument, 0, 't'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {"quant", required_argument, 0, 'Q'},
                                         {"exact", no_argument, 0, 'E'},
                                         {"no-bw", no_argument, 0, 'B'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    q35_weight_format quant = Q35_WEIGHTS_AS_STORED;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:t:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'p':
            if (!cli_parse_int(optarg, 0, 1 << 20, &p)) return cli_fail("bench", "bad -p");
            break;
        case 'n':
            if (!cli_parse_int(optarg, 0, 1 << 20, &n)) return cli_fail("bench", "bad -n");
            break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &threads)) return cli_fail("bench", "bad -t");
            break;
        case 'r':
            if (!cli_parse_int(optarg, 1, 1000, &reps)) return cli_fail("bench", "bad -r");
            break;
        case 'j': json = 1; break;
        case 'E': exact = true; break;
        case 'B': no_bw = 1; break;
        case 'Q':
            if (!cli_parse_quant(optarg, &quant))
                return cli_fail("bench", "bad --quant '%s' (q8, q4 or none)", optarg);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model || optind != argc || p + n < 1) {
        usage(stderr);
        return 2;
    }

    int status = 1;
    q35_err e = {0};
    q35_state *s = NULL;
    float *logits = NULL;
    int32_t *prompt = NULL;
    q35_load_opts lo = {.n_threads = (int)threads, .weights = quant, .exact_kernels = exact};
    double t_load = now_s();
    q35_model *m = q35_model_load(model, &lo, &e);
    t_load = now_s() - t_load;
    if (!m || !(s = q35_state_new(m, (int)(p + n), &e))) {
        status = cli_fail_err("bench", &e);
        goto done;
    }
    q35_model_info info;
    q35_model_get_info(m, &info);
    int V = info.vocab_size;
    logits = malloc((size_t)V * sizeof *logits);
    prompt = malloc(((size_t)p + 1) * sizeof *prompt);
    if (!logits || !prompt) {
        status = cli_fail("bench", "out of memory");
        goto done;
    }
    unsigned seed = 12345;
    for (long i = 0; i < p; i++) {
        seed = seed * 1103515245u + 12345u;
        prompt[i] = (int32_t)((seed >> 8) % (unsigned)V);
    }

    /* warm-up: page the weights in, start the workers */
    run_result r, best = {0, 0};
    if (run_once(m, s, prompt, p < 16 ? (int)p : 16, n < 4 ? (int)n : 4, logits, V, &r, &e)) {
        status = cli_fail_err("bench", &e);
        goto done;
    }
    for (long i = 0; i < reps; i++) {
        if (run_once(m, s, prompt, (int)p, (int)n, logits, V, &r, &e)) {
            status = cli_fail_err("bench", &e);
            goto done;
        }
        if (i == 0 || r.prefill_s < best.prefill_s) best.prefill_s = r.prefill_s;
        if (i == 0 || r.decode_s < best.decode_s) best.decode_s = r.decode_s;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak_mb = (double)ru.ru_maxrss / 1024.0;
    double pp = p > 0 ? (double)p / best.prefill_s : 0;
    double tg = n > 0 ? (double)n / best.decode_s : 0;
    double bpt = bytes_per_token(m), gbs = tg * bpt / 1e9;
    double bw = no_bw ? 0 : read_bandwidth(info.n_threads);
    const q35_kernels *ks = q35_kernels_pick(exact);
    const char *kname = ks->name, *iname = ks->i8 ? ks->i8->name : "exact (float)";
    if (json) {
        printf("{\"model\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, \"prompt_tokens\": %ld, "
               "\"gen_tokens\": %ld, \"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, "
               "\"ttft_ms\": %.1f, \"peak_rss_mb\": %.1f, \"load_s\": %.3f, "
               "\"kernels\": \"%s\", \"int8_kernels\": \"%s\", \"bytes_per_token\": %.0f, "
               "\"decode_gb_s\": %.2f, \"read_bw_gb_s\": %.2f}\n",
               info.path, info.dtype, info.n_threads, p, n, pp, tg, best.prefill_s * 1e3, peak_mb,
               t_load, kname, iname, bpt, gbs, bw);
    } else {
        printf("model      %s (%s, %d layers, vocab %d)\n", info.path, info.dtype, info.n_layers,
               V);
        printf("threads    %d\n", info.n_threads);
        if (p > 0)
            printf("prefill    %ld tokens: %.2f tokens/s (time to first token %.1f ms)\n", p, pp,
                   best.prefill_s * 1e3);
        if (n > 0) printf("decode     %ld tokens: %.2f tokens/s\n", n, tg);
        printf("kernels    %s, integer path %s\n", kname, iname);
        printf("per token  %.1f MB of weights read", bpt / 1e6);
        if (n > 0) printf(": %.2f GB/s", gbs);
        if (bw > 0)
            printf(" of %.2f GB/s measured read bandwidth (%.0f%%)", bw,
                   n > 0 ? 100 * gbs / bw : 0.0);
        printf("\n");
        printf("peak RSS   %.1f MB\n", peak_mb);
        printf("load       %.3f s\n", t_load);
    }
    status = 0;
done:
    free(prompt);
    free(logits);
    q35_state_free(s);
    q35_model_free(m);
    return status;
}
