/* golden_cases.h — the golden models' cases (Q35_FIXTURES/models/<name>/
 * cases.json and its *.ref64.f32 logits) run through the forward pass the
 * way the goldens were made: a prefill case gives the logits of every
 * position in one prefill; the decode case prefills the prompt, then feeds
 * the reference's greedy tokens one at a time through the decode path (row
 * 0: the last prompt position; row i: after greedy[i-1]). The tests that
 * hold a model file to those logits share this and differ only in how
 * they judge the distance. Header-only; needs cmocka.h and cJSON.h. */
#ifndef Q35_TEST_GOLDEN_CASES_H
#define Q35_TEST_GOLDEN_CASES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mapped_file.h"
#include "q35.h"

typedef struct golden_cases {
    char dir[1024]; /* models/<name> */
    char *text;     /* cases.json */
    cJSON *root;
} golden_cases;

static inline float *golden_read_f32(const char *dir, const char *name, size_t n) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    if (fread(x, sizeof *x, n, f) != n) fail_msg("short read on %s", path);
    fclose(f);
    return x;
}

static inline int32_t *golden_json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc((size_t)*n * sizeof *ids + 1);
    assert_non_null(ids);
    for (int i = 0; i < *n; i++)
        ids[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    return ids;
}

/* Reads models/<name>/cases.json of the fixtures; free with golden_close. */
static inline golden_cases golden_open(const char *name) {
    golden_cases g = {0};
    snprintf(g.dir, sizeof g.dir, "%s/models/%s", Q35_FIXTURES, name);
    char path[1200];
    snprintf(path, sizeof path, "%s/cases.json", g.dir);
    q35_err e = {0};
    size_t len;
    g.text = q35_read_text_file(path, 1 << 24, &len, &e);
    if (!g.text) fail_msg("%s: %s", path, e.msg);
    g.root = cJSON_Parse(g.text);
    assert_non_null(g.root);
    return g;
}

static inline void golden_close(golden_cases *g) {
    cJSON_Delete(g->root);
    free(g->text);
}

/* Runs case `cs` on s (cleared first) and returns its logits [*rows, V];
 * *ref gets the reference's. The caller frees both. */
static inline float *golden_run_case(q35_model *m, q35_state *s, const golden_cases *g,
                                     const cJSON *cs, int V, int *rows, float **ref) {
    const cJSON *shape = cJSON_GetObjectItem(cs, "shape");
    int n_rows = cJSON_GetArrayItem(shape, 0)->valueint;
    assert_int_equal(cJSON_GetArrayItem(shape, 1)->valueint, V);
    *ref = golden_read_f32(g->dir, cJSON_GetObjectItem(cs, "logits_f64")->valuestring,
                           (size_t)n_rows * V);
    float *got = malloc((size_t)n_rows * V * sizeof *got);
    assert_non_null(got);
    q35_err e = {0};
    q35_state_clear(s);
    if (!strcmp(cJSON_GetObjectItem(cs, "kind")->valuestring, "prefill")) {
        int n;
        int32_t *ids = golden_json_ids(cJSON_GetObjectItem(cs, "input_ids"), &n);
        assert_int_equal(n, n_rows);
        assert_int_equal(q35_state_eval(m, s, ids, n, got, true, &e), Q35_OK);
        assert_int_equal(q35_state_pos(s), n);
        free(ids);
    } else {
        int np, ng;
        int32_t *prompt = golden_json_ids(cJSON_GetObjectItem(cs, "prompt_ids"), &np);
        int32_t *greedy = golden_json_ids(cJSON_GetObjectItem(cs, "greedy_ids"), &ng);
        assert_int_equal(ng, n_rows);
        assert_int_equal(q35_state_eval(m, s, prompt, np, got, false, &e), Q35_OK);
        for (int i = 1; i < n_rows; i++)
            assert_int_equal(
                q35_state_eval(m, s, &greedy[i - 1], 1, got + (size_t)i * V, false, &e), Q35_OK);
        free(prompt);
        free(greedy);
    }
    *rows = n_rows;
    return got;
}

#endif
