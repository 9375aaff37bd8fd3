/* test_mlx.c — MLX-format quantized checkpoints (mlx-lm layout). A python
 * script (tests/tools/make_mlx.py, numpy) makes a small random checkpoint,
 * quantizes it into MLX files and
 * writes, beside them, the float32 checkpoint their dequantization must give;
 * the loaded matrices (computed in place, decoded here a row at a time)
 * and vectors must equal it exactly. Logits, both layouts and every bit
 * width are checked by test_mlx_layouts.py. Also: malformed quantized
 * checkpoints are clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mapped_file.h"
#include "kernels/kernels.h"
#include "model/model.h"

static char tmpdir[256];

static void make(const char *name, int bits, int group) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s %s/../tools/make_mlx.py %s/src %s/%s-q %s/%s-d --bits %d --group %d --random 3",
             Q35_PYTHON, Q35_TEST_DATA, tmpdir, tmpdir, name, tmpdir, name, bits, group);
    assert_int_equal(system(cmd), 0);
}

static q35_model *load(const char *name, const char *suffix) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s-%s", tmpdir, name, suffix);
    q35_err e = {0};
    q35_model *m = q35_model_load(p, NULL, &e);
    if (!m) fail_msg("%s", e.msg);
    return m;
}

static void same_matrix(const q35_tensor *a, const q35_tensor *b, const char *what, int layer) {
    assert_int_equal(a->shape[0], b->shape[0]);
    assert_int_equal(a->shape[1], b->shape[1]);
    /* Quantized matrices stay MLX affine (computed in place); the ones MLX
     * left unquantized (input size not a multiple of the group) stay bf16.
     * Either way each row's float32 values equal the dequantized file's. */
    assert_true(q35_dtype_is_mlx(a->dtype) || a->dtype == Q35_DT_BF16);
    assert_int_equal(b->dtype, Q35_DT_F32);
    int64_t cols = a->shape[1];
    float *row = malloc((size_t)cols * sizeof *row);
    assert_non_null(row);
    for (int64_t r = 0; r < a->shape[0]; r++) {
        q35_tensor_row_f32(a, r, row);
        const float *fb = (const float *)b->data + r * cols;
        for (int64_t c = 0; c < cols; c++)
            if (row[c] != fb[c])
                fail_msg("layer %d %s differs at [%lld, %lld]: %g vs %g", layer, what, (long long)r,
                         (long long)c, row[c], fb[c]);
    }
    free(row);
}

static void same_vec(const float *a, const float *b, int n, const char *what, int layer) {
    if (memcmp(a, b, (size_t)n * 4)) fail_msg("layer %d %s differs", layer, what);
}

static void compare(const char *name) {
    q35_model *q = load(name, "q"), *d = load(name, "d");
    const q35_config *c = &q->cfg;
    assert_string_equal(q->format, "mlx-quantized (mlx-lm layout)");
    assert_string_equal(d->format, "safetensors");
    same_matrix(&q->embed, &d->embed, "embed", -1);
    same_vec(q->final_norm, d->final_norm, c->hidden_size, "final norm", -1);
    for (int i = 0; i < c->n_layers; i++) {
        const q35_layer *a = &q->layers[i], *b = &d->layers[i];
        same_vec(a->attn_norm, b->attn_norm, c->hidden_size, "input norm", i);
        same_vec(a->mlp_norm, b->mlp_norm, c->hidden_size, "post norm", i);
        same_matrix(&a->w_gate, &b->w_gate, "gate", i);
        same_matrix(&a->w_up, &b->w_up, "up", i);
        same_matrix(&a->w_down, &b->w_down, "down", i);
        if (a->full_attn) {
            same_matrix(&a->w_q, &b->w_q, "q", i);
            same_matrix(&a->w_k, &b->w_k, "k", i);
            same_matrix(&a->w_v, &b->w_v, "v", i);
            same_matrix(&a->w_o, &b->w_o, "o", i);
            same_vec(a->q_norm, b->q_norm, c->head_dim, "q norm", i);
            same_vec(a->k_norm, b->k_norm, c->head_dim, "k norm", i);
        } else {
            same_matrix(&a->w_qkv, &b->w_qkv, "qkv", i);
            same_matrix(&a->w_z, &b->w_z, "z", i);
            same_matrix(&a->w_a, &b->w_a, "a", i);
            same_matrix(&a->w_b, &b->w_b, "b", i);
            same_matrix(&a->w_out, &b->w_out, "out", i);
            int C = q35_config_conv_channels(c);
            same_vec(a->conv_w, b->conv_w, C * c->conv_kernel, "conv", i);
            same_vec(a->A, b->A, c->lin_v_heads, "A", i);
            same_vec(a->dt_bias, b->dt_bias, c->lin_v_heads, "dt_bias", i);
            same_vec(a->gdn_norm, b->gdn_norm, c->lin_v_dim, "gated norm", i);
        }
    }
    q35_model_free(q);
    q35_model_free(d);
}

static void test_int4_group32(void **st) {
    make("q4", 4, 32);
    compare("q4");
}

static void test_int8_group64(void **st) {
    make("q8", 8, 64);
    compare("q8");
}

/* codes that straddle bytes and words */
static void test_int3_group128(void **st) {
    make("q3", 3, 128);
    compare("q3");
}

static void test_int5_group64(void **st) {
    make("q5", 5, 64);
    compare("q5");
}

static void test_int6_group32(void **st) {
    make("q6", 6, 32);
    compare("q6");
}

/* Rewrites the MLX config with one substitution and expects an error. */
static void bad_config(const char *from, const char *to, const char *word) {
    char p[512];
    snprintf(p, sizeof p, "%s/q4-q/config.json", tmpdir);
    q35_err e = {0};
    size_t n;
    char *text = q35_read_text_file(p, 1 << 20, &n, &e);
    assert_non_null(text);
    char *at = strstr(text, from);
    assert_non_null(at);
    FILE *f = fopen(p, "wb");
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    snprintf(p, sizeof p, "%s/q4-q", tmpdir);
    q35_model *m = q35_model_load(p, NULL, &e);
    assert_null(m);
    printf("    %s\n", e.msg);
    if (!strstr(e.msg, word)) fail_msg("'%s' lacks '%s'", e.msg, word);
    /* put the original back */
    snprintf(p, sizeof p, "%s/q4-q/config.json", tmpdir);
    f = fopen(p, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
    free(text);
}

static void test_bad_quant_configs(void **st) {
    make("q4", 4, 32);
    bad_config("\"bits\": 4", "\"bits\": 8", "contradictory quantization");
    bad_config("\"bits\": 4", "\"bits\": 4, \"mode\": \"mxfp4\"", "mode");
    bad_config("\"bits\": 4", "\"nobits\": 4", "quantization");
    /* the reference app's label form */
    bad_config("\"quantization\": {", "\"quantization\": \"int7\", \"x\": {", "label");
    bad_config("\"quantization\": {", "\"quantization\": \"int8\", \"x\": {",
               "contradictory quantization");
    bad_config("\"quantization\": {",
               "\"quantization\": \"int4\", \"quantization_bits\": 5, \"x\": {",
               "contradictory config");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/q35_test_mlx_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int4_group32),  cmocka_unit_test(test_int8_group64),
        cmocka_unit_test(test_int3_group128), cmocka_unit_test(test_int5_group64),
        cmocka_unit_test(test_int6_group32),  cmocka_unit_test(test_bad_quant_configs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    return rc;
}
