/* test_golden.c — the forward pass against the float64 reference logits of
 * the golden models (Q35_FIXTURES/models/tiny-a, tiny-b, and the generated
 * tiny-mixed with an irregular layer pattern): every prefill case
 * at every position, and the decode case (prompt prefilled, then the greedy
 * tokens one at a time through the decode path). Tolerance as the goldens
 * state: max|ours - ref64| / max|ref64| <= 2e-3, and the same argmax wherever
 * the reference's top-2 margin exceeds 1e-2. The worst error of each case
 * is printed. */
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

#include "core/mapped_file.h"
#include "model/model.h"
#include "q35.h"

#define TOL 2e-3
#define MARGIN 1e-2

static float *read_f32(const char *dir, const char *name, size_t n) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    float *x = malloc(n * sizeof *x);
    if (fread(x, sizeof *x, n, f) != n) fail_msg("short read on %s", path);
    fclose(f);
    return x;
}

static int32_t *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc((size_t)*n * sizeof *ids);
    for (int i = 0; i < *n; i++)
        ids[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    return ids;
}

/* Compares rows x V and returns the relative error; fails on an argmax that
 * differs where the reference is decisive. */
static double compare(const char *label, const float *got, const float *ref, int rows, int V) {
    double err = 0, mx = 0;
    for (size_t i = 0; i < (size_t)rows * V; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d > err) err = d;
        if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
    }
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
        if (top - second > MARGIN && ag != af)
            fail_msg("%s row %d: argmax %d, reference %d (margin %.3g)", label, r, ag, af,
                     top - second);
    }
    double rel = err / mx;
    printf("%-22s rows %3d  max|ours-ref64|/max|ref64| = %.2e\n", label, rows, rel);
    if (!(rel <= TOL)) fail_msg("%s: relative error %.3g > %.3g", label, rel, TOL);
    return rel;
}

static void run_model(const char *name) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/models/%s", Q35_FIXTURES, name);
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2};
    q35_model *m = q35_model_load(dir, &lo, &e);
    if (!m) fail_msg("load %s: %s", dir, e.msg);
    q35_model_info info;
    q35_model_get_info(m, &info);
    int V = info.vocab_size;

    snprintf(path, sizeof path, "%s/cases.json", dir);
    size_t len;
    char *text = q35_read_text_file(path, 1 << 24, &len, &e);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    q35_state *s = q35_state_new(m, 256, &e);
    assert_non_null(s);
    double worst = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cases) {
        const char *kind = cJSON_GetObjectItem(cs, "kind")->valuestring;
        const char *cname = cJSON_GetObjectItem(cs, "name")->valuestring;
        const cJSON *shape = cJSON_GetObjectItem(cs, "shape");
        int rows = cJSON_GetArrayItem(shape, 0)->valueint;
        assert_int_equal(cJSON_GetArrayItem(shape, 1)->valueint, V);
        float *ref =
            read_f32(dir, cJSON_GetObjectItem(cs, "logits_f64")->valuestring, (size_t)rows * V);
        float *got = malloc((size_t)rows * V * sizeof *got);
        char label[128];
        snprintf(label, sizeof label, "%s %s", name, cname);
        q35_state_clear(s);
        if (!strcmp(kind, "prefill")) {
            int n;
            int32_t *ids = json_ids(cJSON_GetObjectItem(cs, "input_ids"), &n);
            assert_int_equal(n, rows);
            assert_int_equal(q35_state_eval(m, s, ids, n, got, true, &e), 0);
            assert_int_equal(q35_state_pos(s), n);
            free(ids);
        } else {
            int np, ng;
            int32_t *prompt = json_ids(cJSON_GetObjectItem(cs, "prompt_ids"), &np);
            int32_t *greedy = json_ids(cJSON_GetObjectItem(cs, "greedy_ids"), &ng);
            assert_int_equal(ng, rows);
            /* row 0: the last prompt position; row i: after greedy[i-1] */
            assert_int_equal(q35_state_eval(m, s, prompt, np, got, false, &e), 0);
            for (int i = 1; i < rows; i++)
                assert_int_equal(
                    q35_state_eval(m, s, &greedy[i - 1], 1, got + (size_t)i * V, false, &e), 0);
            free(prompt);
            free(greedy);
        }
        double rel = compare(label, got, ref, rows, V);
        if (rel > worst) worst = rel;
        free(ref);
        free(got);
    }
    printf("%s: worst %.2e\n", name, worst);
    q35_state_free(s);
    cJSON_Delete(root);
    free(text);
    q35_model_free(m);
}

static void test_tiny_a(void **st) {
    (void)st;
    run_model("tiny-a");
}

static void test_tiny_b(void **st) {
    (void)st;
    run_model("tiny-b");
}

/* tiny-mixed (generated by tests/data/materialize.py, logits from the
 * float64 numpy reading): layers L,F,L,L,F,L, which no interval gives. Its
 * config.json says full_attention_interval 4 beside layer_types, and its
 * GGUF form (llama.cpp's layout) recurrent_layers beside
 * full_attention_interval 4, as llama.cpp's converter writes them: the
 * per-layer lists are the truth in both, and the model says so. */
static void expect_mixed_pattern(const char *path, const char *source) {
    q35_err e = {0};
    q35_model *m = q35_model_load(path, NULL, &e);
    if (!m) fail_msg("load %s: %s", path, e.msg);
    char pattern[Q35_MAX_LAYERS + 1];
    for (int i = 0; i < m->cfg.n_layers; i++)
        pattern[i] = m->cfg.layer_full[i] ? 'F' : 'L';
    pattern[m->cfg.n_layers] = 0;
    printf("%s: %s, from %s\n", path, pattern, m->cfg.layers_from);
    assert_string_equal(pattern, "LFLLFL");
    assert_non_null(strstr(m->cfg.layers_from, source));
    assert_non_null(strstr(m->cfg.layers_from, "full_attention_interval 4 disagrees"));
    q35_model_free(m);
}

static void test_tiny_mixed(void **st) {
    (void)st;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/tiny-mixed", Q35_FIXTURES);
    expect_mixed_pattern(path, "config.json layer_types");
    snprintf(path, sizeof path, "%s/gguf/tiny-mixed-bf16.gguf", Q35_FIXTURES);
    expect_mixed_pattern(path, "GGUF qwen35.attention.recurrent_layers");
    run_model("tiny-mixed");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_a),
        cmocka_unit_test(test_tiny_b),
        cmocka_unit_test(test_tiny_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
