/* test_cuda_a4_form.c — the CUDA upload's 4-bit affine form (weights.cu,
 * A4) against the CPU's values of the same weights, on the host (no GPU
 * needed, so CI runs it): every row of every Q4_K matrix of a Q4_K_M GGUF
 * and of every MLX 4-bit matrix of files made as the reference app's and
 * mlx-lm's converters write them (tests/tools/make_mlx.py), decoded from
 * the form as the kernels read it (s * q + z, rounded as the CPU rounds),
 * must equal q35_tensor_row_f32 bit for bit: the form repacks, it does not
 * approximate. Matrices of other dtypes (Q6_K, bf16) must not take it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cuda/cuda_weights_test.h"
#include "kernels/kernels.h"
#include "model/model.h"

static q35_model *load(const char *path) {
    q35_err e = {0};
    q35_model *m = q35_model_load(path, NULL, &e);
    if (!m) fail_msg("load %s: %s", path, e.msg);
    return m;
}

/* Checks t; returns whether it took the form. */
static bool check(const q35_tensor *t, const char *what, int layer) {
    if (!t->data || t->ndim != 2) return false;
    int64_t rows = t->shape[0], cols = t->shape[1];
    float *a = malloc((size_t)cols * sizeof *a), *b = malloc((size_t)cols * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    bool takes = q35_cuda_a4_row_values(t, 0, a);
    bool should = t->dtype == Q35_DT_Q4_K || t->dtype == Q35_DT_MLX4;
    if (takes != should)
        fail_msg("layer %d %s (dtype %d): A4 form %s", layer, what, (int)t->dtype,
                 takes ? "taken" : "not taken");
    for (int64_t r = 0; takes && r < rows; r++) {
        assert_true(q35_cuda_a4_row_values(t, r, a));
        q35_tensor_row_f32(t, r, b);
        for (int64_t c = 0; c < cols; c++)
            if (memcmp(&a[c], &b[c], sizeof(float)))
                fail_msg("layer %d %s [%lld, %lld]: A4 gives %.9g, the CPU %.9g", layer, what,
                         (long long)r, (long long)c, a[c], b[c]);
    }
    free(a);
    free(b);
    return takes;
}

/* Every matrix of m; returns how many took the form. */
static int check_model(const q35_model *m) {
    int n = check(&m->embed, "embed", -1);
    if (m->lm_head.data != m->embed.data) n += check(&m->lm_head, "lm_head", -1);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const q35_layer *L = &m->layers[l];
        const q35_tensor *ts[] = {&L->w_gate, &L->w_up,  &L->w_down, &L->w_qkv, &L->w_z, &L->w_b,
                                  &L->w_a,    &L->w_out, &L->w_q,    &L->w_k,   &L->w_v, &L->w_o};
        const char *names[] = {"gate", "up",  "down", "qkv", "z", "b",
                               "a",    "out", "q",    "k",   "v", "o"};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            n += check(ts[i], names[i], l);
    }
    return n;
}

static void test_q4_k_m(void **st) {
    (void)st;
    q35_model *m = load(Q35_FIXTURES "/gguf/tiny-b-Q4_K_M.gguf");
    int n = check_model(m);
    printf("tiny-b Q4_K_M: %d matrices in the A4 form\n", n);
    assert_true(n > 0);
    q35_model_free(m);
}

static void test_mlx4(void **st) {
    (void)st;
    char dir[] = "/tmp/q35-a4-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const struct {
        const char *layout;
        int group;
    } cases[] = {{"app", 64}, {"mlx-lm", 32}, {"mlx-lm", 128}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], q[320];
        snprintf(q, sizeof q, "%s/q%zu", dir, i);
        snprintf(cmd, sizeof cmd,
                 "%s %s/../tools/make_mlx.py %s/src %s %s/d%zu --bits 4 --group %d --layout %s%s",
                 Q35_PYTHON, Q35_TEST_DATA, dir, q, dir, i, cases[i].group, cases[i].layout,
                 i == 0 ? " --random 3" : "");
        assert_int_equal(system(cmd), 0);
        q35_model *m = load(q);
        int n = check_model(m);
        printf("MLX 4-bit, %s layout, group %d: %d matrices in the A4 form\n", cases[i].layout,
               cases[i].group, n);
        assert_true(n > 0);
        q35_model_free(m);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    setenv("Q35_REPACK", "0", 1); /* the file's own dtypes, not the CPU's 16-row forms */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_k_m),
        cmocka_unit_test(test_mlx4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
