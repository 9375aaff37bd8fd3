/* test_cuda_forward.c — the CUDA backend against the CPU on the tiny chat
 * model (Q35_TINY_CHAT): the same prompt through both (a prefill, then the
 * decode path one token at a time) in float32 weights as stored and in the
 * load-time Q8_0 / Q4_0 forms; snapshots and restores on the device (the
 * same bits again); q35_state_eval_snapshots against pieces fed one by
 * one; the device-side greedy step against the argmax of the logits; and a
 * greedy chat turn, token for token.
 *
 * Bounds: both sides multiply float32 activations by the same weight
 * values (the GPU's prefill GEMM in split TF32, which keeps float32
 * precision), so they differ by summation order only: 1e-4 of the largest
 * logit (measured on an H100: 6e-6 prefill, 2e-6 decode in float, 9e-6 /
 * 7e-6 prefill in Q8_0 / Q4_0). See compare_devices for the CPU's
 * quantized decode.
 *
 * Files whose 4-bit weights the GPU keeps in its affine form (A4: Q4_K of
 * a Q4_K_M GGUF, MLX 4-bit in the reference app's and mlx-lm's layouts)
 * are held to the CPU's exact path the same way, and the MLX copy must be
 * held on the device in about its file's size, not widened to float32.
 *
 * Without a CUDA device the test prints "SKIP: no CUDA device" and exits
 * 77 (CTest's SKIP_RETURN_CODE). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward/logits_test_util.h"
#include "q35.h"
#include "runtime/rng.h"
#include "runtime/sampler.h"

#define T_ALL 48
#define T_PRE 32

static q35_model *load_path(const char *path, q35_device dev, q35_weight_format wf, bool exact) {
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2, .weights = wf, .device = dev, .exact_kernels = exact};
    q35_model *m = q35_model_load(path, &lo, &e);
    if (!m) fail_msg("load %s: %s", path, e.msg);
    return m;
}

static q35_model *load_as(q35_device dev, q35_weight_format wf, bool exact) {
    return load_path(Q35_TINY_CHAT, dev, wf, exact);
}

/* The CPU on its exact path (quantized weights times float32 activations,
 * as the GPU multiplies); its default integer path rounds the activations
 * to 8 bits, which the GPU does not. */
static q35_model *load(q35_device dev, q35_weight_format wf) {
    return load_as(dev, wf, dev == Q35_DEVICE_CPU);
}

static void prompt(int32_t *ids, int n, int V) {
    uint32_t x = 12345u;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)((x >> 8) % (uint32_t)V);
    }
}

/* Both sides multiply float32 activations by the same weight values (the
 * CPU on its exact path), prefill and decode alike, so every row is held
 * to the bound; the GPU's own decode (GEMV) rows are held to its prefill
 * (GEMM) over the same tokens too. The CPU's default integer path (8-bit
 * activations) is printed beside, not asserted: on this random tiny model
 * it moves the logits by 0.1-0.3 of the largest (H100 run, 2026-12-07),
 * which is what rounding the activations costs, not a GPU difference. */
static void compare_models(q35_model *cpu, q35_model *gpu, q35_weight_format wf, const char *label);

static void compare_devices(q35_weight_format wf, const char *label) {
    compare_models(load(Q35_DEVICE_CPU, wf), load(Q35_DEVICE_CUDA, wf), wf, label);
}

/* compare_devices for the models cpu and gpu (freed here). */
static void compare_models(q35_model *cpu, q35_model *gpu, q35_weight_format wf,
                           const char *label) {
    const double bound = 1e-4;
    q35_model_info in;
    q35_model_get_info(cpu, &in);
    size_t V = (size_t)in.vocab_size;
    int32_t ids[T_ALL];
    prompt(ids, T_ALL, in.vocab_size);
    float *a = logits_of(cpu, ids, T_ALL, T_PRE), *b = logits_of(gpu, ids, T_ALL, T_PRE);
    float *c = logits_of(gpu, ids, T_ALL, T_ALL); /* all through the prefill path */
    double pre = rel_diff(b, a, T_PRE * V);
    double dec = rel_diff(b + T_PRE * V, a + T_PRE * V, (T_ALL - T_PRE) * V);
    double own = rel_diff(b + T_PRE * V, c + T_PRE * V, (T_ALL - T_PRE) * V);
    printf("%-6s vs CPU: prefill %.2e decode %.2e | GPU decode vs GPU prefill %.2e (bound %.0e)\n",
           label, pre, dec, own, bound);
    if (wf != Q35_WEIGHTS_AS_STORED) { /* beside: the CPU's 8-bit-activation path */
        q35_model *i8 = load_as(Q35_DEVICE_CPU, wf, false);
        float *d = logits_of(i8, ids, T_ALL, T_PRE);
        printf("%-6s vs the CPU's integer path (8-bit activations, not asserted): %.2e\n", label,
               rel_diff(b, d, T_ALL * V));
        free(d);
        q35_model_free(i8);
    }
    assert_true(pre <= bound);
    assert_true(dec <= bound);
    assert_true(own <= bound);
    free(a);
    free(b);
    free(c);
    q35_model_free(cpu);
    q35_model_free(gpu);
}

static void test_float_path(void **st) {
    (void)st;
    compare_devices(Q35_WEIGHTS_AS_STORED, "stored");
}

static void test_q8_path(void **st) {
    (void)st;
    compare_devices(Q35_WEIGHTS_Q8_0, "q8_0");
}

static void test_q4_path(void **st) {
    (void)st;
    compare_devices(Q35_WEIGHTS_Q4_0, "q4_0");
}

/* A file as stored on both devices; returns the bytes its device copy
 * takes (the GPU model's footprint once a state has made the copy, less
 * before) and the CPU's weight bytes in *cpu_bytes. */
static size_t compare_file(const char *path, const char *label, size_t *cpu_bytes) {
    q35_model *cpu = load_path(path, Q35_DEVICE_CPU, Q35_WEIGHTS_AS_STORED, true);
    q35_model *gpu = load_path(path, Q35_DEVICE_CUDA, Q35_WEIGHTS_AS_STORED, false);
    q35_model_info in;
    q35_model_get_info(cpu, &in);
    *cpu_bytes = in.weight_bytes;
    size_t before = q35_model_memory_footprint(gpu);
    q35_err e = {0};
    q35_state *s = q35_state_new(gpu, 8, &e);
    if (!s) fail_msg("%s: state: %s", label, e.msg);
    size_t dev = q35_model_memory_footprint(gpu) - before;
    q35_state_free(s);
    printf("%-6s device copy %zu bytes, CPU weights %zu bytes\n", label, dev, *cpu_bytes);
    compare_models(cpu, gpu, Q35_WEIGHTS_AS_STORED, label);
    return dev;
}

static void test_q4_k_file(void **st) {
    (void)st;
    size_t cpu_bytes;
    compare_file(Q35_FIXTURES "/gguf/tiny-b-Q4_K_M.gguf", "q4_k_m", &cpu_bytes);
}

/* MLX 4-bit files made as each converter writes them (tests/tools/
 * make_mlx.py), in the app's layout (group 64, its default) and mlx-lm's
 * (groups 32 and 128). The device copy holds 16 bytes of codes and 8 of
 * (s, z) per 32 weights (6 bits a weight, against 4.5 in the file with
 * 16-bit scales and biases per 64); the few float vectors are float32
 * there: well under 2x the CPU's bytes, where float32 weights would be
 * about 7x. */
static void test_mlx4_files(void **st) {
    (void)st;
    char dir[] = "/tmp/q35-cuda-mlx-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const struct {
        const char *layout;
        int group;
    } cases[] = {{"app", 64}, {"mlx-lm", 32}, {"mlx-lm", 128}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], q[320], label[32];
        snprintf(q, sizeof q, "%s/q%zu", dir, i);
        snprintf(cmd, sizeof cmd,
                 "%s %s/../tools/make_mlx.py %s/src %s %s/d%zu --bits 4 --group %d --layout %s%s",
                 Q35_PYTHON, Q35_TEST_DATA, dir, q, dir, i, cases[i].group, cases[i].layout,
                 i == 0 ? " --random 3" : "");
        assert_int_equal(system(cmd), 0);
        snprintf(label, sizeof label, "mlx4g%d", cases[i].group);
        size_t cpu_bytes, dev = compare_file(q, label, &cpu_bytes);
        assert_true(dev < 2 * cpu_bytes);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Snapshots are device copies: restoring one and feeding the same tokens
 * gives the same bits; eval_snapshots equals feeding the pieces. */
static void test_snapshots(void **st) {
    (void)st;
    q35_model *m = load(Q35_DEVICE_CUDA, Q35_WEIGHTS_AS_STORED);
    q35_model_info in;
    q35_model_get_info(m, &in);
    int V = in.vocab_size;
    int32_t ids[T_ALL];
    prompt(ids, T_ALL, V);
    q35_err e = {0};
    q35_state *s = q35_state_new(m, 64, &e);
    assert_non_null(s);
    float *l1 = malloc((size_t)V * 4), *l2 = malloc((size_t)V * 4), *l3 = malloc((size_t)V * 4);
    assert_int_equal(q35_state_eval(m, s, ids, 20, NULL, false, &e), Q35_OK);
    q35_snapshot *snap = q35_state_snapshot(s, &e);
    assert_non_null(snap);
    assert_true(q35_snapshot_bytes(snap) > 0);
    assert_int_equal(q35_state_eval(m, s, ids + 20, 7, l1, false, &e), Q35_OK);
    assert_int_equal(q35_state_pos(s), 27);
    assert_int_equal(q35_state_restore(s, snap, &e), Q35_OK);
    assert_int_equal(q35_state_pos(s), 20);
    assert_int_equal(q35_state_eval(m, s, ids + 20, 7, l2, false, &e), Q35_OK);
    assert_memory_equal(l1, l2, (size_t)V * 4);

    /* eval_snapshots: snapshots after 5 and 12 of 27 tokens */
    q35_state_clear(s);
    int at[2] = {5, 12};
    q35_snapshot *snaps[2] = {NULL, NULL};
    assert_int_equal(q35_state_eval_snapshots(m, s, ids, 27, l3, false, at, 2, snaps, &e), Q35_OK);
    assert_int_equal(q35_snapshot_pos(snaps[1]), 12);
    /* the same 27 tokens in other pieces: each piece takes the GEMM path,
     * whose result per token does not depend on the piece */
    assert_true(rel_diff(l3, l1, (size_t)V) <= 1e-6);
    assert_int_equal(q35_state_restore(s, snaps[1], &e), Q35_OK);
    assert_int_equal(q35_state_eval(m, s, ids + 12, 15, l2, false, &e), Q35_OK);
    assert_true(rel_diff(l2, l1, (size_t)V) <= 1e-6);
    q35_snapshot_free(snaps[0]);
    q35_snapshot_free(snaps[1]);
    q35_snapshot_free(snap);

    /* the greedy step on the device picks the logits' argmax */
    q35_state_clear(s);
    assert_int_equal(q35_state_eval(m, s, ids, 10, NULL, false, &e), Q35_OK);
    q35_snapshot *at10 = q35_state_snapshot(s, &e);
    assert_int_equal(q35_state_eval(m, s, ids + 10, 1, l1, false, &e), Q35_OK);
    int best = 0;
    for (int i = 1; i < V; i++)
        if (l1[i] > l1[best]) best = i;
    assert_int_equal(q35_state_restore(s, at10, &e), Q35_OK);
    int32_t next = -1;
    assert_int_equal(q35_state_decode_greedy(m, s, ids[10], V, &next, &e), Q35_OK);
    assert_int_equal(next, best);
    assert_int_equal(q35_state_pos(s), 11);
    /* out of range ids are refused, the state unchanged */
    assert_int_not_equal(q35_state_decode_greedy(m, s, V, V, &next, &e), Q35_OK);
    assert_int_equal(q35_state_pos(s), 11);
    q35_snapshot_free(at10);
    assert_true(q35_model_memory_footprint(m) > 0);
    q35_state_free(s);
    free(l1);
    free(l2);
    free(l3);
    q35_model_free(m);
}

/* A greedy chat turn gives the same tokens on both devices. */
static void test_chat_greedy(void **st) {
    (void)st;
    q35_model *cpu = load(Q35_DEVICE_CPU, Q35_WEIGHTS_AS_STORED);
    q35_model *gpu = load(Q35_DEVICE_CUDA, Q35_WEIGHTS_AS_STORED);
    q35_model_info in;
    q35_model_get_info(cpu, &in);
    int32_t ids[64];
    prompt(ids, 16, in.vocab_size);
    q35_err e = {0};
    q35_state *a = q35_state_new(cpu, 64, &e), *b = q35_state_new(gpu, 64, &e);
    assert_non_null(a);
    assert_non_null(b);
    float *la = malloc((size_t)in.vocab_size * 4), *lb = malloc((size_t)in.vocab_size * 4);
    assert_int_equal(q35_state_eval(cpu, a, ids, 16, la, false, &e), Q35_OK);
    assert_int_equal(q35_state_eval(gpu, b, ids, 16, lb, false, &e), Q35_OK);
    int32_t ta = 0, tb = 0;
    for (int i = 1; i < in.vocab_size; i++) {
        if (la[i] > la[ta]) ta = i;
        if (lb[i] > lb[tb]) tb = i;
    }
    for (int step = 0; step < 40; step++) {
        assert_int_equal(ta, tb);
        int32_t na, nb;
        assert_int_equal(q35_state_decode_greedy(cpu, a, ta, in.vocab_size, &na, &e), Q35_OK);
        assert_int_equal(q35_state_decode_greedy(gpu, b, tb, in.vocab_size, &nb, &e), Q35_OK);
        ta = na;
        tb = nb;
    }
    q35_state_free(a);
    q35_state_free(b);
    free(la);
    free(lb);
    q35_model_free(cpu);
    q35_model_free(gpu);
}

/* Sampling on the device picks the id the runtime's sampler picks from the
 * same logits with the same draw: two GPU states fed the same ids give the
 * same logits bits (same kernels), one samples on the device, the other's
 * logits go through q35_sampler_sample with a generator of the same seed. */
static void sample_run(const q35_sampling *smp, int steps, bool expect_device) {
    /* Q35_CUDA_TEST_QUICK=1: 6 steps a setting (for racecheck's slow replay) */
    const char *quick = getenv("Q35_CUDA_TEST_QUICK");
    if (quick && *quick == '1' && steps > 6) steps = 6;
    q35_model *m = load(Q35_DEVICE_CUDA, Q35_WEIGHTS_AS_STORED);
    q35_model_info in;
    q35_model_get_info(m, &in);
    int V = in.vocab_size;
    q35_err e = {0};
    q35_state *a = q35_state_new(m, 128, &e), *b = q35_state_new(m, 128, &e);
    assert_non_null(a);
    assert_non_null(b);
    int32_t ctx[128];
    prompt(ctx, 16, V);
    int n = 16;
    float *la = malloc((size_t)V * 4), *lb = malloc((size_t)V * 4);
    assert_int_equal(q35_state_eval(m, a, ctx, 15, NULL, false, &e), Q35_OK);
    assert_int_equal(q35_state_eval(m, b, ctx, 15, NULL, false, &e), Q35_OK);
    q35_sampler sp;
    assert_int_equal(q35_sampler_init(&sp, smp, V, V, &e), Q35_OK);
    q35_rng rng;
    q35_rng_seed(&rng, smp->seed);
    int on_device = 0, distinct = 0;
    for (int step = 0; step < steps; step++) {
        double u = q35_rng_uniform(&rng);
        int32_t got = -5;
        assert_int_equal(q35_state_decode_sample(m, a, ctx[n - 1], smp, V, ctx, n, u, &got, la, &e),
                         Q35_OK);
        assert_int_equal(q35_state_eval(m, b, &ctx[n - 1], 1, lb, false, &e), Q35_OK);
        if (got < 0) { /* the host's turn: the row came back as computed */
            assert_int_equal(got, -1);
            assert_memory_equal(la, lb, (size_t)V * 4);
        }
        int w = smp->repetition_window < n ? smp->repetition_window : n;
        int32_t want = q35_sampler_sample(&sp, lb, ctx + n - w, w);
        if (got >= 0) {
            on_device++;
            assert_int_equal(got, want);
        } else {
            got = want;
        }
        distinct += got != ctx[n - 1];
        ctx[n++] = got;
    }
    printf("sampling T=%.2f k=%d p=%.2f pen=%.2f: %d of %d steps on the device\n",
           (double)smp->temperature, smp->top_k, (double)smp->top_p,
           (double)smp->repetition_penalty, on_device, steps);
    if (expect_device)
        assert_true(on_device >= steps - 2);
    else
        assert_int_equal(on_device, 0);
    assert_true(distinct > 0);
    q35_sampler_free(&sp);
    q35_state_free(a);
    q35_state_free(b);
    free(la);
    free(lb);
    q35_model_free(m);
}

/* A batched greedy step (q35_states_decode_greedy) picks, for each of
 * three conversations at different positions, the token that stepping
 * each alone picks: 12 steps, token for token (the batch multiplies the
 * three tokens as one [3, cols] GEMM, the lone step as a GEMV: the same
 * values up to float32 summation order, and this model's greedy tokens
 * are far from ties, as test_chat_greedy's 40 equal steps show). */
static void test_batch(void **st) {
    (void)st;
    q35_model *m = load(Q35_DEVICE_CUDA, Q35_WEIGHTS_AS_STORED);
    q35_model_info in;
    q35_model_get_info(m, &in);
    int V = in.vocab_size;
    q35_err e = {0};
    enum { NS = 3 };
    q35_state *bat[NS], *one[NS];
    int32_t ids[NS][16], cur[NS], want[NS], got[NS];
    int len[NS] = {5, 9, 14};
    for (int i = 0; i < NS; i++) {
        bat[i] = q35_state_new(m, 64, &e);
        one[i] = q35_state_new(m, 64, &e);
        assert_non_null(bat[i]);
        assert_non_null(one[i]);
        prompt(ids[i], 16, V);
        ids[i][0] = (int32_t)(i * 97 + 3); /* three different prompts */
        assert_int_equal(q35_state_eval(m, bat[i], ids[i], len[i] - 1, NULL, false, &e), Q35_OK);
        assert_int_equal(q35_state_eval(m, one[i], ids[i], len[i] - 1, NULL, false, &e), Q35_OK);
        cur[i] = ids[i][len[i] - 1];
    }
    for (int step = 0; step < 12; step++) {
        assert_int_equal(q35_states_decode_greedy(m, bat, cur, NS, V, got, &e), Q35_OK);
        for (int i = 0; i < NS; i++) {
            assert_int_equal(q35_state_decode_greedy(m, one[i], cur[i], V, &want[i], &e), Q35_OK);
            assert_int_equal(got[i], want[i]);
            assert_int_equal(q35_state_pos(bat[i]), len[i] + step);
            cur[i] = got[i];
        }
    }
    /* the same state twice is refused, nothing moves */
    q35_state *dup[2] = {bat[0], bat[0]};
    assert_int_not_equal(q35_states_decode_greedy(m, dup, cur, 2, V, got, &e), Q35_OK);
    assert_int_equal(q35_state_pos(bat[0]), len[0] + 11);
    for (int i = 0; i < NS; i++) {
        q35_state_free(bat[i]);
        q35_state_free(one[i]);
    }
    q35_model_free(m);
}

static void test_sampling(void **st) {
    (void)st;
    q35_sampling smp = q35_sampling_default();
    smp.temperature = 1.5f; /* a random model's logits are flat: spread the draws */
    smp.top_k = 40;
    smp.top_p = 0.9f;
    smp.repetition_penalty = 1.5f;
    smp.repetition_window = 24;
    smp.seed = 7;
    sample_run(&smp, 48, true);
    smp.top_p = 1.0f; /* top-k alone */
    smp.top_k = 64;
    smp.seed = 11;
    sample_run(&smp, 24, true);
    smp.temperature = 0.0f; /* greedy after the penalty */
    sample_run(&smp, 16, true);
    smp.temperature = 1.0f; /* no top-k: the host samples */
    smp.top_k = 0;
    smp.top_p = 0.9f;
    sample_run(&smp, 4, false);
}

int main(void) {
    /* the CPU side exact (its default 16-bit KV cache rounds by ~2e-5) */
    setenv("Q35_KV_CACHE", "f32", 1);
    if (q35_cuda_device_count() < 1) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_path),  cmocka_unit_test(test_q8_path),
        cmocka_unit_test(test_q4_path),     cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_chat_greedy), cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_batch),       cmocka_unit_test(test_q4_k_file),
        cmocka_unit_test(test_mlx4_files),
    };
    /* Q35_CUDA_TEST_FILTER: a cmocka pattern (e.g. "test_float*"), so that
     * the slow sanitizer tools can take the tests in parts */
    const char *filter = getenv("Q35_CUDA_TEST_FILTER");
    if (filter && *filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
