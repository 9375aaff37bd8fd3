/* test_gguf_logits.c — GGUF models through the forward pass, against the
 * float64 reference logits of the safetensors checkpoints they were
 * converted from (golden/models/tiny-{a,b}/ *.ref64.f32): every prefill case
 * at every position and the decode case (prompt prefilled, then the
 * reference's greedy tokens one at a time through the decode path).
 *  - bf16 files hold exactly the checkpoint's weights: the golden tolerance
 *    applies (max|ours - ref64| / max|ref64| <= 2e-3, same argmax wherever
 *    the reference's top-2 margin exceeds 1e-2).
 *  - Quantized files (Q8_0, Q4_0, Q4_K_M by llama-quantize) change the
 *    weights, so the logits move: their relative error, the mean
 *    correlation of each row of logits with the reference's, and top-1
 *    agreement are printed and held to bounds set from measurement with
 *    margin (see BOUNDS below). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "golden_cases.h"
#include "q35.h"

#define MARGIN 1e-2

typedef struct agreement {
    double worst_rel; /* max over cases of max|ours - ref| / max|ref| */
    double sum_corr;  /* sum over rows of the correlation of ours with ref */
    int rows, top1, decisive, decisive_top1;
} agreement;

static void score(agreement *a, const float *got, const float *ref, int rows, int V) {
    double err = 0, mx = 0;
    for (size_t i = 0; i < (size_t)rows * V; i++) {
        err = fmax(err, fabs((double)got[i] - ref[i]));
        mx = fmax(mx, fabs((double)ref[i]));
    }
    a->worst_rel = fmax(a->worst_rel, err / mx);
    for (int r = 0; r < rows; r++) {
        const float *g = got + (size_t)r * V, *f = ref + (size_t)r * V;
        int ag = 0, af = 0;
        float top = -INFINITY, second = -INFINITY;
        for (int i = 0; i < V; i++) {
            if (g[i] > g[ag]) ag = i;
            if (f[i] > f[af]) af = i;
            if (f[i] > top) {
                second = top;
                top = f[i];
            } else if (f[i] > second) {
                second = f[i];
            }
        }
        double mg = 0, mf = 0, sgg = 0, sff = 0, sgf = 0;
        for (int i = 0; i < V; i++) {
            mg += g[i];
            mf += f[i];
        }
        mg /= V;
        mf /= V;
        for (int i = 0; i < V; i++) {
            sgg += (g[i] - mg) * (g[i] - mg);
            sff += (f[i] - mf) * (f[i] - mf);
            sgf += (g[i] - mg) * (f[i] - mf);
        }
        a->sum_corr += sgf / sqrt(sgg * sff + 1e-300);
        a->rows++;
        a->top1 += ag == af;
        if (top - second > MARGIN) {
            a->decisive++;
            a->decisive_top1 += ag == af;
        }
    }
}

/* Runs the cases of models/<model> on gguf/<model>-<quant>.gguf (all of
 * them, or all but the 200-token prefill when `short_run`, to keep the
 * sanitizer pass of the suite quick). */
static agreement run(const char *model, const char *quant, bool short_run) {
    golden_cases g = golden_open(model);
    char gguf[1024];
    snprintf(gguf, sizeof gguf, "%s/gguf/%s-%s.gguf", Q35_FIXTURES, model, quant);
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2};
    q35_model *m = q35_model_load(gguf, &lo, &e);
    if (!m) fail_msg("load %s: %s", gguf, e.msg);
    q35_model_info info;
    q35_model_get_info(m, &info);
    assert_string_equal(info.format, "gguf");
    int V = info.vocab_size;
    q35_state *s = q35_state_new(m, 256, &e);
    assert_non_null(s);
    agreement a = {0};
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(g.root, "cases")) {
        if (short_run && !strcmp(cJSON_GetObjectItem(cs, "name")->valuestring, "prefill_200"))
            continue;
        int rows;
        float *ref, *got = golden_run_case(m, s, &g, cs, V, &rows, &ref);
        score(&a, got, ref, rows, V);
        free(ref);
        free(got);
    }
    printf("%s-%-6s max|ours-ref64|/max|ref64| %.2e  mean logit correlation %.4f  top-1 "
           "agreement %d/%d (%.1f%%), where decisive %d/%d (%.1f%%)\n",
           model, quant, a.worst_rel, a.sum_corr / a.rows, a.top1, a.rows, 100.0 * a.top1 / a.rows,
           a.decisive_top1, a.decisive, 100.0 * a.decisive_top1 / a.decisive);
    q35_state_free(s);
    golden_close(&g);
    q35_model_free(m);
    return a;
}

static void test_bf16_matches_reference(void **st) {
    (void)st;
    /* tiny-mixed: llama.cpp's layout with layers L,F,L,L,F,L given by
     * recurrent_layers (its full_attention_interval 4 disagrees) */
    const char *models[] = {"tiny-a", "tiny-b", "tiny-mixed"};
    for (int i = 0; i < 3; i++) {
        agreement a = run(models[i], "bf16", false);
        assert_true(a.worst_rel <= 2e-3);
        assert_int_equal(a.decisive_top1, a.decisive);
    }
}

/* BOUNDS, from measurement (Release build, 2 threads; the printed figures,
 * all cases but prefill_200; with it they are within a few points):
 *                 rel err   mean corr   top-1 where decisive
 *   tiny-a Q8_0    0.22      0.9970      89.7%
 *   tiny-b Q8_0    0.84      0.9974      92.5%
 *   tiny-a Q4_0    0.95      0.787       25.3%
 *   tiny-b Q4_0    1.03      0.777       17.9%
 *   tiny-b Q4_K_M  1.18      0.850       23.7%
 * These random tiny models amplify weight noise strongly: a float64 numpy
 * run of the safetensors weights rounded to 8 bits per 32-block (no GGUF,
 * no q35) also lands at rel err 0.45 / top-1 88% on tiny-a prefill_200.
 * A mis-decoded format gives uncorrelated logits (corr ~0, top-1 ~1/V), so
 * the correlation and top-1 floors are the guard; bounds leave about twice
 * the measured error and disagreement. */
typedef struct bound {
    const char *model, *quant;
    double max_rel, min_corr, min_decisive_top1;
} bound;

static void test_quantized_agreement(void **st) {
    (void)st;
    const bound bounds[] = {
        {"tiny-a", "Q8_0", 0.9, 0.985, 0.75}, {"tiny-b", "Q8_0", 1.6, 0.99, 0.80},
        {"tiny-a", "Q4_0", 2.5, 0.6, 0.12},   {"tiny-b", "Q4_0", 2.5, 0.6, 0.08},
        {"tiny-b", "Q4_K_M", 2.5, 0.7, 0.12},
    };
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const bound *b = &bounds[i];
        agreement a = run(b->model, b->quant, true);
        assert_true(a.worst_rel <= b->max_rel);
        assert_true(a.sum_corr / a.rows >= b->min_corr);
        assert_true((double)a.decisive_top1 / a.decisive >= b->min_decisive_top1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_matches_reference),
        cmocka_unit_test(test_quantized_agreement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
