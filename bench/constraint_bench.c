/* constraint_bench.c — the figures of BENCHMARKS.md "Structured output":
 * what constrained decoding costs per token next to a decode step, and
 * what a schema costs to compile. Uses only the public API.
 *
 * usage: constraint_bench MODEL_DIR TOKENIZER_PATH SCHEMA.json [N_TOKENS] [THREADS]
 *
 * It loads the model and the tokenizer, builds the constraint vocabulary
 * (timed), compiles the schema 20 times (median), then decodes N tokens
 * one at a time from a short prompt (greedy on masked logits, so the
 * reply follows the schema), timing separately each decode step
 * (q35_state_eval of one id) and each mask (q35_matcher_mask on the
 * 248k-row logits, where a new state walks the vocabulary trie and a state
 * seen before copies its cached mask), and after a document ends starts
 * the next one (q35_matcher_reset). Prints medians, p90, max and means;
 * the mask also in thread CPU time, which a shared machine inflates less
 * than wall time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "q35.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *v, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    printf("%s: median %.3f ms, p90 %.3f, max %.3f, mean %.3f (%d samples)\n", what, v[n / 2],
           v[n * 9 / 10], v[n - 1], sum / n, n);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_DIR TOKENIZER SCHEMA.json [N] [THREADS]\n", argv[0]);
        return 2;
    }
    int n_tok = argc > 4 ? atoi(argv[4]) : 128, threads = argc > 5 ? atoi(argv[5]) : 2;
    q35_err e = {0};
    FILE *f = fopen(argv[3], "rb");
    if (!f) return fprintf(stderr, "cannot open %s\n", argv[3]), 1;
    static char schema[1 << 20];
    size_t slen = fread(schema, 1, sizeof schema - 1, f);
    fclose(f);
    q35_load_opts lo = {.n_threads = threads};
    q35_model *m = q35_model_load(argv[1], &lo, &e);
    if (!m) return fprintf(stderr, "%s\n", e.msg), 1;
    q35_tokenizer *tok = q35_tokenizer_load(argv[2], &e);
    if (!tok) return fprintf(stderr, "%s\n", e.msg), 1;
    q35_model_info info;
    q35_model_get_info(m, &info);
    double t0 = now_ms();
    q35_constraint_vocab *v = q35_constraint_vocab_new(tok, &e);
    double t_vocab = now_ms() - t0;
    if (!v) return fprintf(stderr, "%s\n", e.msg), 1;
    double comp[20];
    q35_constraint *c = NULL;
    for (int i = 0; i < 20; i++) {
        q35_constraint_free(c);
        t0 = now_ms();
        c = q35_constraint_compile(v, Q35_CONSTRAINT_JSON_SCHEMA, schema, slen, &e);
        comp[i] = now_ms() - t0;
        if (!c) return fprintf(stderr, "%s\n", e.msg), 1;
    }
    printf("vocabulary: %zu tokens (model rows %d); trie built in %.1f ms\n",
           q35_tokenizer_n_vocab(tok), info.vocab_size, t_vocab);
    report("schema compile", comp, 20);

    q35_state *st = q35_state_new(m, 4096, &e);
    if (!st) return fprintf(stderr, "%s\n", e.msg), 1;
    float *logits = malloc((size_t)info.vocab_size * sizeof *logits);
    double *t_mask = malloc((size_t)n_tok * sizeof *t_mask);
    double *t_step = malloc((size_t)n_tok * sizeof *t_step);
    double *c_mask = malloc((size_t)n_tok * sizeof *c_mask);
    int32_t *prompt;
    size_t n_prompt;
    const char *p = "<|im_start|>user\nTurn on the lights in the kitchen.<|im_end|>\n"
                    "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    if (q35_tokenize(tok, p, strlen(p), Q35_ADDED_MATCH, &prompt, &n_prompt, &e)) return 1;
    if (q35_state_eval(m, st, prompt, (int)n_prompt, logits, false, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    int32_t eos = q35_token_id(tok, "<|im_end|>");
    q35_matcher *mt = q35_matcher_new(c, false, &eos, 1, &e);
    if (!mt) return fprintf(stderr, "%s\n", e.msg), 1;
    int docs = 0, steps = 0;
    for (int i = 0; i < n_tok; i++) {
        t0 = now_ms();
        double c0 = cpu_ms();
        if (q35_matcher_mask(mt, logits, info.vocab_size, &e))
            return fprintf(stderr, "%s\n", e.msg), 1;
        c_mask[i] = cpu_ms() - c0;
        t_mask[i] = now_ms() - t0;
        int32_t id = 0;
        for (int k = 1; k < info.vocab_size; k++)
            if (logits[k] > logits[id]) id = k;
        if (id == eos || (q35_matcher_is_complete(mt) && !q35_matcher_can_continue(mt))) {
            docs++;
            q35_matcher_reset(mt, false, &e); /* the next document */
            id = eos;
        } else if (q35_matcher_accept(mt, id, &e)) {
            return fprintf(stderr, "%s\n", e.msg), 1;
        }
        t0 = now_ms();
        if (q35_state_eval(m, st, &id, 1, logits, false, &e))
            return fprintf(stderr, "%s\n", e.msg), 1;
        t_step[i] = now_ms() - t0;
        steps++;
    }
    q35_matcher_stats ms;
    q35_matcher_get_stats(mt, &ms);
    printf("%d tokens decoded, %d documents ended; matcher: %d states, %d trie walks, %d cache "
           "hits, %.1f MiB\n",
           steps, docs, ms.n_states, ms.n_masks, ms.n_mask_hits,
           (double)ms.memory_bytes / (1 << 20));
    double mask_med, step_med;
    {
        double *a = malloc((size_t)steps * sizeof *a), *b = malloc((size_t)steps * sizeof *b);
        memcpy(a, t_mask, (size_t)steps * sizeof *a);
        memcpy(b, t_step, (size_t)steps * sizeof *b);
        qsort(a, (size_t)steps, sizeof *a, cmp_d);
        qsort(b, (size_t)steps, sizeof *b, cmp_d);
        mask_med = a[steps / 2];
        step_med = b[steps / 2];
        free(a);
        free(b);
    }
    report("mask per token (wall)", t_mask, steps);
    report("mask per token (thread CPU time)", c_mask, steps);
    report("decode step", t_step, steps);
    printf("median mask / median decode step = %.2f%%\n", 100.0 * mask_med / step_med);
    q35_matcher_free(mt);
    q35_constraint_free(c);
    q35_constraint_vocab_free(v);
    free(prompt);
    free(logits);
    free(t_mask);
    free(t_step);
    free(c_mask);
    q35_state_free(st);
    q35_tokenizer_free(tok);
    q35_model_free(m);
    return 0;
}
