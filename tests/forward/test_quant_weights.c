/* test_quant_weights.c — Q8_0 / Q4_0 as compute formats.
 *  - Converting at load (q35_load_opts.weights) rounds exactly as
 *    llama-quantize does: every matrix of golden tiny-a / tiny-b quantized
 *    here is byte-identical to the same matrix of the golden
 *    tiny-*-Q8_0.gguf / -Q4_0.gguf (made by llama-quantize from the same
 *    weights), wherever llama-quantize chose that type. Since the GGUF side
 *    is read in place or block-copied back into HF head order, this also
 *    checks the loader's block reordering (tiny-a has 2 value heads per key
 *    head).
 *  - The two then give identical logits (prefill and decode), and those
 *    logits stay near the float64 reference (agreement printed, guarded).
 *  - A converted model owns its memory: no file stays mapped, the
 *    footprint is the quantized size, unload frees it and reload converts
 *    again to the same bytes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mapped_file.h"
#include "model/model.h"
#include "q35.h"

#include "forward/logits_test_util.h"

#define MODELS Q35_FIXTURES "/models/"
#define GGUF Q35_FIXTURES "/gguf/"

static q35_model *load(const char *path, q35_weight_format wf) {
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2, .weights = wf};
    q35_model *m = q35_model_load(path, &lo, &e);
    if (!m) fail_msg("%s: %s", path, e.msg);
    return m;
}

/* Matrices of `ours` (converted at load) against the GGUF's: identical
 * bytes wherever the GGUF holds `dt`. Returns how many were compared. */
static int compare_bytes(const char *model, const char *gguf, q35_dtype dt) {
    q35_model *a = load(model, dt == Q35_DT_Q8_0 ? Q35_WEIGHTS_Q8_0 : Q35_WEIGHTS_Q4_0);
    q35_model *b = load(gguf, Q35_WEIGHTS_AS_STORED);
    static q35_tensor *ta[Q35_MAX_MATRICES], *tb[Q35_MAX_MATRICES];
    static char na[Q35_MAX_MATRICES][32], nb[Q35_MAX_MATRICES][32];
    int n = q35_model_matrices(a, ta, na), nb_ = q35_model_matrices(b, tb, nb);
    assert_int_equal(n, nb_);
    int compared = 0;
    for (int i = 0; i < n; i++) {
        assert_string_equal(na[i], nb[i]);
        assert_int_equal(ta[i]->shape[0], tb[i]->shape[0]);
        assert_int_equal(ta[i]->shape[1], tb[i]->shape[1]);
        if (tb[i]->dtype != dt) continue; /* llama-quantize chose another type here */
        assert_int_equal(ta[i]->dtype, dt);
        size_t bytes = q35_tensor_bytes(ta[i]);
        if (memcmp(ta[i]->data, tb[i]->data, bytes)) {
            const unsigned char *x = ta[i]->data, *y = tb[i]->data;
            size_t at = 0;
            while (x[at] == y[at])
                at++;
            fail_msg("%s vs %s: %s differs at byte %zu of %zu", model, gguf, na[i], at, bytes);
        }
        compared++;
    }
    fprintf(stderr, "%s: %d of %d matrices byte-identical to %s\n", model, compared, n, gguf);
    q35_model_free(a);
    q35_model_free(b);
    return compared;
}

static void test_same_bytes_as_llama_quantize(void **state) {
    (void)state;
    /* tiny-a: 4 layers (3 DeltaNet x 8 matrices + 1 attention x 7) + embedding = 32,
     * less the 3 DeltaNet out_proj: their value heads are 24 wide, so in
     * llama.cpp's tiled head order a 32-block straddles two heads and the
     * GGUF loader must decode them to float32 to put the columns back (its
     * blocks quantized other values than ours, which are in HF order). */
    assert_int_equal(compare_bytes(MODELS "tiny-a", GGUF "tiny-a-Q8_0.gguf", Q35_DT_Q8_0), 29);
    /* Q4_0 file: llama-quantize kept one more tiny-a matrix at Q8_0 */
    assert_int_equal(compare_bytes(MODELS "tiny-a", GGUF "tiny-a-Q4_0.gguf", Q35_DT_Q4_0), 28);
    assert_int_equal(compare_bytes(MODELS "tiny-b", GGUF "tiny-b-Q8_0.gguf", Q35_DT_Q8_0), 64);
    /* and the untied output head at Q6_K */
    assert_int_equal(compare_bytes(MODELS "tiny-b", GGUF "tiny-b-Q4_0.gguf", Q35_DT_Q4_0), 63);
}

static void test_owns_its_memory(void **state) {
    (void)state;
    q35_model *bf = load(MODELS "tiny-b", Q35_WEIGHTS_AS_STORED);
    size_t bf_bytes = q35_model_memory_footprint(bf);
    q35_model_free(bf);
    q35_model *m = load(MODELS "tiny-b", Q35_WEIGHTS_Q4_0);
    assert_int_equal(m->n_files, 0);
    size_t q_bytes = q35_model_memory_footprint(m);
    fprintf(stderr, "tiny-b footprint: bf16 mapped %zu, q4_0 converted %zu\n", bf_bytes, q_bytes);
    /* 4.5 bits against 16 per weight, plus the f32 vectors */
    assert_true(q_bytes < bf_bytes / 3);
    q35_model_info in;
    q35_model_get_info(m, &in);
    assert_string_equal(in.dtype, "q4_0");
    assert_non_null(strstr(in.quantization, "q4_0"));
    /* unload frees; reload converts again, to the same bytes */
    static q35_tensor *t[Q35_MAX_MATRICES];
    int n = q35_model_matrices(m, t, NULL);
    unsigned char **copy = calloc((size_t)n, sizeof *copy);
    for (int i = 0; i < n; i++) {
        copy[i] = malloc(q35_tensor_bytes(t[i]));
        memcpy(copy[i], t[i]->data, q35_tensor_bytes(t[i]));
    }
    q35_model_unload(m);
    assert_int_equal(q35_model_memory_footprint(m), 0);
    q35_err e = {0};
    assert_int_equal(q35_model_reload(m, &e), Q35_OK);
    assert_int_equal(q35_model_memory_footprint(m), q_bytes);
    assert_int_equal(q35_model_matrices(m, t, NULL), n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(t[i]->dtype, Q35_DT_Q4_0);
        assert_memory_equal(copy[i], t[i]->data, q35_tensor_bytes(t[i]));
        free(copy[i]);
    }
    free(copy);
    q35_model_free(m);
}

static void test_bad_option(void **state) {
    (void)state;
    q35_err e = {0};
    q35_load_opts lo = {.weights = (q35_weight_format)42};
    assert_null(q35_model_load(MODELS "tiny-a", &lo, &e));
    assert_non_null(strstr(e.msg, "weight format"));
}

static void same_logits(const char *model, const char *gguf, q35_weight_format wf, double guard) {
    q35_model *a = load(model, wf), *b = load(gguf, Q35_WEIGHTS_AS_STORED);
    q35_model *ref = load(model, Q35_WEIGHTS_AS_STORED);
    q35_model_info in;
    q35_model_get_info(a, &in);
    enum { T = 24 };
    int32_t ids[T];
    for (int t = 0; t < T; t++)
        ids[t] = (int32_t)((t * 7919 + 13) % in.vocab_size);
    float *la = logits_of(a, ids, T, 16), *lb = logits_of(b, ids, T, 16);
    float *lr = logits_of(ref, ids, T, 16);
    size_t n = (size_t)T * in.vocab_size;
    double diff = rel_diff(la, lb, n), err = rel_diff(la, lr, n);
    fprintf(stderr, "%s as %s: converted vs gguf %.3g; vs the bf16 model %.3g (relative)\n", model,
            wf == Q35_WEIGHTS_Q8_0 ? "q8_0" : "q4_0", diff, err);
    /* The same weights through the same kernels: the same numbers, up to
     * the vectors the GGUF holds precomputed by llama.cpp's converter
     * (-exp(A_log) in its float32 rounding). */
    assert_true(diff <= 1e-5);
    assert_true(err <= guard);
    free(la);
    free(lb);
    free(lr);
    q35_model_free(a);
    q35_model_free(b);
    q35_model_free(ref);
}

/* A GGUF already in Q4_0, converted with --quant q4: its Q4_0 matrices stay
 * in the file map (which must then stay mapped), the rest is converted; it
 * runs and gives what the safetensors model converted to Q4_0 gives, but
 * for the blocks the GGUF quantized in another order (tiny-a's out_proj)
 * and the one matrix llama-quantize kept at Q8_0. */
static void test_gguf_partly_converted(void **state) {
    (void)state;
    q35_model *g = load(GGUF "tiny-b-Q4_0.gguf", Q35_WEIGHTS_Q4_0);
    assert_int_equal(g->n_files, 1);                 /* its Q4_0 blocks are used in place */
    assert_int_equal(g->lm_head.dtype, Q35_DT_Q4_0); /* the Q6_K head, converted */
    q35_model *s = load(MODELS "tiny-b", Q35_WEIGHTS_Q4_0);
    enum { T = 12 };
    int32_t ids[T];
    for (int t = 0; t < T; t++)
        ids[t] = (int32_t)((t * 31 + 5) % 1024);
    float *lg = logits_of(g, ids, T, 8), *ls = logits_of(s, ids, T, 8);
    double diff = rel_diff(lg, ls, (size_t)T * 1024);
    /* The head: ours is Q4_0 of the bf16 values, the GGUF's of its Q6_K
     * values; everything else is the same bytes. */
    fprintf(stderr, "tiny-b Q4_0 GGUF --quant q4 vs safetensors --quant q4: %.3g (relative)\n",
            diff);
    assert_true(diff < 0.2);
    free(lg);
    free(ls);
    q35_model_free(g);
    q35_model_free(s);
}

/* A prompt long enough for every kernel set's many-token path (AMX tiles
 * from 16/24 tokens, float32 panels): the best set against the plain C
 * definition, which sums d*q times x in float32. Only rounding may differ. */
static void best_vs_generic(q35_weight_format wf) {
    q35_model *m = load(MODELS "tiny-b", wf);
    enum { T = 72, P = 64 };
    int32_t ids[T];
    for (int t = 0; t < T; t++)
        ids[t] = (int32_t)((t * 613 + 29) % 1024);
    float *ref = logits_with_kernels(m, ids, T, P, "generic");
    float *got = logits_of(m, ids, T, P);
    double rel = rel_diff(got, ref, (size_t)T * 1024);
    fprintf(stderr, "tiny-b %s, %d-token prefill + %d decode: best set vs generic %.3g\n",
            wf == Q35_WEIGHTS_Q8_0 ? "q8_0" : "q4_0", P, T - P, rel);
    assert_true(rel <= 1e-4);
    free(ref);
    free(got);
    q35_model_free(m);
}

static void test_long_prompt_best_vs_generic(void **state) {
    (void)state;
    best_vs_generic(Q35_WEIGHTS_Q8_0);
    best_vs_generic(Q35_WEIGHTS_Q4_0);
}

static void test_same_logits_as_gguf(void **state) {
    (void)state;
    /* tiny-b: heads of 128, every block the same on both sides (tiny-a's
     * out_proj blocks differ, see above) */
    /* The guard against the bf16 model is loose on purpose: these random
     * tiny models amplify weight rounding (test_gguf_logits measures Q8_0
     * files at 0.2-0.8 over longer runs); garbage would be ~1. */
    same_logits(MODELS "tiny-b", GGUF "tiny-b-Q8_0.gguf", Q35_WEIGHTS_Q8_0, 0.3);
}

int main(void) {
    /* These tests hold the exact float path (the reference mode): weights
     * times float32 activations, equal to 1e-5 across sets and files. The
     * integer path (8-bit activations) has its own tests in tests/kernels. */
    setenv("Q35_EXACT", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_llama_quantize),
        cmocka_unit_test(test_owns_its_memory),
        cmocka_unit_test(test_bad_option),
        cmocka_unit_test(test_same_logits_as_gguf),
        cmocka_unit_test(test_gguf_partly_converted),
        cmocka_unit_test(test_long_prompt_best_vs_generic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
