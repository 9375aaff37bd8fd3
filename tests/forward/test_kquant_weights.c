/* test_kquant_weights.c — Q4_K / Q6_K as compute formats, end to end, on
 * golden tiny-b-Q4_K_M.gguf (llama-quantize's Q4_K_M: Q4_K matrices, some
 * Q6_K):
 *  - loaded as stored, its k-quant matrices stay in the file map, and the
 *    model's footprint is about the file's size (decoding them to float32,
 *    as q35 did before, takes several times that);
 *  - its logits (a prefill long enough for every kernel set's many-token
 *    path, then decode steps) are those of the same file with each k-quant
 *    matrix replaced, here in the test, by its float32 decode
 *    (q35_tensor_row_to_f32, i.e. formats/gguf_quants.c's decoder): the
 *    kernels compute on the weights that decoder defines;
 *  - the best kernel set agrees with the plain C definition
 *    (Q35_KERNELS=generic) up to float32 summation order. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "q35.h"

#include "forward/logits_test_util.h"

#define GGUF_FILE Q35_FIXTURES "/gguf/tiny-b-Q4_K_M.gguf"

static q35_model *load(const char *path) {
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2, .weights = Q35_WEIGHTS_AS_STORED};
    q35_model *m = q35_model_load(path, &lo, &e);
    if (!m) fail_msg("%s: %s", path, e.msg);
    return m;
}

/* Every matrix of m, embedding and head first. */
static bool is_kquant(q35_dtype dt) {
    return dt == Q35_DT_Q4_K || dt == Q35_DT_Q6_K;
}

/* Replaces every k-quant matrix of m by its float32 decode (in buffers m
 * owns). Returns how many were replaced. */
static int decode_kquants(q35_model *m) {
    q35_tensor *t[Q35_MAX_MATRICES];
    int n = q35_model_matrices(m, t, NULL), done = 0;
    const void *embed = m->embed.data;
    for (int i = 0; i < n; i++) {
        if (!is_kquant(t[i]->dtype)) continue;
        int64_t rows = t[i]->shape[0], cols = t[i]->shape[1];
        float *f = q35_model_alloc(m, (size_t)(rows * cols) * sizeof *f);
        assert_non_null(f);
        q35_err e = {0};
        for (int64_t r = 0; r < rows; r++)
            assert_int_equal(q35_tensor_row_to_f32(t[i], r, f + r * cols, &e), Q35_OK);
        t[i]->data = f;
        t[i]->dtype = Q35_DT_F32;
        done++;
    }
    if (m->lm_head.data == embed) m->lm_head = m->embed; /* tied */
    return done;
}

enum { T = 56, P = 48 };

static void prompt(int32_t *ids, int vocab) {
    for (int t = 0; t < T; t++)
        ids[t] = (int32_t)((t * 613 + 29) % vocab);
}

static void test_in_place_and_small(void **state) {
    (void)state;
    q35_model *m = load(GGUF_FILE), *d = load(GGUF_FILE);
    q35_tensor *t[Q35_MAX_MATRICES];
    int n = q35_model_matrices(m, t, NULL), nk = 0;
    for (int i = 0; i < n; i++)
        nk += is_kquant(t[i]->dtype);
    assert_int_equal(m->n_files, 1);
    assert_true(nk >= n / 2); /* most matrices; those whose heads move stay float32 */
    assert_int_equal(decode_kquants(d), nk);
    size_t file = m->files[0].size, fp = q35_model_memory_footprint(m);
    size_t fp_dec = q35_model_memory_footprint(d);
    fprintf(stderr,
            "tiny-b Q4_K_M: %d of %d matrices k-quant in place; footprint %zu (file %zu); "
            "with them decoded to float32 %zu\n",
            nk, n, fp, file, fp_dec);
    assert_true(fp < file + file / 2);
    assert_true(fp_dec > 3 * fp);
    q35_model_free(m);
    q35_model_free(d);
}

static void test_logits_as_decoded(void **state) {
    (void)state;
    q35_model *m = load(GGUF_FILE), *d = load(GGUF_FILE);
    decode_kquants(d);
    q35_model_info in;
    q35_model_get_info(m, &in);
    int32_t ids[T];
    prompt(ids, in.vocab_size);
    float *lm = logits_of(m, ids, T, P), *ld = logits_of(d, ids, T, P);
    size_t n = (size_t)T * in.vocab_size;
    double rel = rel_diff(lm, ld, n);
    fprintf(stderr,
            "tiny-b Q4_K_M, %d-token prefill + %d decode: in place vs float32 decode %.3g\n", P,
            T - P, rel);
    assert_true(rel <= 1e-5);
    free(lm);
    free(ld);
    q35_model_free(m);
    q35_model_free(d);
}

static void test_best_vs_generic(void **state) {
    (void)state;
    q35_model *m = load(GGUF_FILE);
    q35_model_info in;
    q35_model_get_info(m, &in);
    int32_t ids[T];
    prompt(ids, in.vocab_size);
    float *ref = logits_with_kernels(m, ids, T, P, "generic");
    float *got = logits_of(m, ids, T, P);
    double rel = rel_diff(got, ref, (size_t)T * in.vocab_size);
    fprintf(stderr, "tiny-b Q4_K_M: best set vs generic %.3g\n", rel);
    assert_true(rel <= 1e-5);
    free(ref);
    free(got);
    q35_model_free(m);
}

int main(void) {
    /* exact comparisons (1e-5): the f32 KV cache, not the 16-bit default
     * whose rounding alone moves logits ~1e-5 (test_kv_cache.py) */
    setenv("Q35_KV_CACHE", "f32", 1);
    /* These tests hold the exact float path (the reference mode): weights
     * times float32 activations, equal to 1e-5 across sets and files. The
     * integer path (8-bit activations) has its own tests in tests/kernels. */
    setenv("Q35_EXACT", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_place_and_small),
        cmocka_unit_test(test_logits_as_decoded),
        cmocka_unit_test(test_best_vs_generic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
