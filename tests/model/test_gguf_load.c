/* test_gguf_load.c — GGUF files to q35_model.
 *  - tiny-{a,b}-bf16.gguf (llama.cpp's conversion of models/tiny-{a,b})
 *    give exactly the config and weights that the safetensors checkpoint
 *    gives through the safetensors loader: this is where the undoing of
 *    llama.cpp's layout (tiled value heads, folded norms, -exp(A_log)) is
 *    checked tensor by tensor. tiny-a has 4 value heads on 2 key heads, so
 *    the reordering is exercised; tiny-b has real head sizes and an untied
 *    output.
 *  - The quantized files load with the same config, and their weights lie
 *    within quantization error of the bf16 ones.
 *  - Files patched into inconsistency (wrong architecture, a tensor missing,
 *    a wrong shape, an unsupported type, contradictory metadata) fail with a
 *    message naming the key or tensor. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/half.h"
#include "formats/gguf.h"
#include "formats/gguf_builder.h"
#include "formats/gguf_quants.h"
#include "kernels/repack_x16.h"
#include "model/load_gguf.h"
#include "model/model.h"

#define GOLDEN Q35_FIXTURES "/"

static float elem(const q35_tensor *t, int64_t i) {
    const unsigned char *p = t->data;
    float f;
    const q35_dtype base = q35_dtype_x16_base(t->dtype); /* repacked at load: repack_x16.h */
    if (base == Q35_DT_Q4_K || base == Q35_DT_Q6_K) {    /* super-blocks, in place */
        const int64_t cols = t->shape[t->ndim - 1], c = i % cols;
        const unsigned char *b = p + (size_t)(i / cols) * q35_row_bytes(t->dtype, cols) +
                                 (size_t)(c / 256) * q35_dtype_block_bytes(t->dtype);
        unsigned char sb[210]; /* the file's super-block */
        if (q35_dtype_is_x16(t->dtype)) {
            q35_x16_block(t, i / cols, c / 256, sb);
            b = sb;
        }
        float y[256];
        q35_err e = {0};
        assert_int_equal(
            q35_ggml_dequantize(base == Q35_DT_Q4_K ? Q35_GGML_Q4_K : Q35_GGML_Q6_K, b, y, 256, &e),
            Q35_OK);
        return y[c % 256];
    }
    if (q35_dtype_is_quant(t->dtype) || q35_dtype_is_x16(t->dtype)) { /* Q8_0 / Q4_0 blocks */
        const int64_t cols = t->shape[t->ndim - 1], c = i % cols;
        const unsigned char *b = p + (size_t)(i / cols) * q35_row_bytes(t->dtype, cols) +
                                 (size_t)(c / 32) * q35_dtype_block_bytes(t->dtype);
        unsigned char blk[34]; /* repacked at load (kernels/repack_x16.h): the file's block */
        if (q35_dtype_is_x16(t->dtype)) {
            q35_x16_block(t, i / cols, c / 32, blk);
            b = blk;
        }
        const float d = q35_f16_to_f32((uint16_t)(b[0] | (b[1] << 8)));
        const int j = (int)(c % 32);
        if (q35_dtype_x16_base(t->dtype) == Q35_DT_Q8_0) return d * (float)(int8_t)b[2 + j];
        const int n = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);
        return d * (float)(n - 8);
    }
    switch (t->dtype) {
    case Q35_DT_F32: memcpy(&f, p + 4 * i, 4); return f;
    case Q35_DT_F16: return q35_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
    default: return q35_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
    }
}

typedef struct diff {
    double max_abs; /* max |a - b| over every weight */
    double max_rel; /* max over tensors of rms(a - b) / rms(b) */
    const char *worst;
} diff;

static void cmp_tensor(diff *d, const char *name, const q35_tensor *a, const q35_tensor *b) {
    assert_int_equal(a->ndim, b->ndim);
    for (int i = 0; i < a->ndim; i++)
        assert_int_equal(a->shape[i], b->shape[i]);
    int64_t n = q35_tensor_numel(a);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = elem(a, i), y = elem(b, i);
        se += (x - y) * (x - y);
        sx += y * y;
        if (fabs(x - y) > d->max_abs) {
            d->max_abs = fabs(x - y);
            d->worst = name;
        }
    }
    double rel = sqrt(se / (sx > 0 ? sx : 1));
    if (rel > d->max_rel) d->max_rel = rel;
}

static void cmp_vec(diff *d, const char *name, const float *a, const float *b, int64_t n) {
    q35_tensor ta = {Q35_DT_F32, 1, {n}, a}, tb = {Q35_DT_F32, 1, {n}, b};
    cmp_tensor(d, name, &ta, &tb);
}

/* Compares every weight the forward pass uses. */
static diff cmp_models(const q35_model *g, const q35_model *s) {
    diff d = {0, 0, ""};
    const q35_config *c = &s->cfg;
    cmp_tensor(&d, "embed", &g->embed, &s->embed);
    cmp_tensor(&d, "lm_head", &g->lm_head, &s->lm_head);
    cmp_vec(&d, "final_norm", g->final_norm, s->final_norm, c->hidden_size);
    for (int i = 0; i < c->n_layers; i++) {
        const q35_layer *a = &g->layers[i], *b = &s->layers[i];
        assert_int_equal(a->full_attn, b->full_attn);
        cmp_vec(&d, "attn_norm", a->attn_norm, b->attn_norm, c->hidden_size);
        cmp_vec(&d, "mlp_norm", a->mlp_norm, b->mlp_norm, c->hidden_size);
        cmp_tensor(&d, "w_gate", &a->w_gate, &b->w_gate);
        cmp_tensor(&d, "w_up", &a->w_up, &b->w_up);
        cmp_tensor(&d, "w_down", &a->w_down, &b->w_down);
        if (a->full_attn) {
            cmp_tensor(&d, "w_q", &a->w_q, &b->w_q);
            cmp_tensor(&d, "w_k", &a->w_k, &b->w_k);
            cmp_tensor(&d, "w_v", &a->w_v, &b->w_v);
            cmp_tensor(&d, "w_o", &a->w_o, &b->w_o);
            cmp_vec(&d, "q_norm", a->q_norm, b->q_norm, c->head_dim);
            cmp_vec(&d, "k_norm", a->k_norm, b->k_norm, c->head_dim);
        } else {
            int nv = c->lin_v_heads;
            cmp_tensor(&d, "w_qkv", &a->w_qkv, &b->w_qkv);
            cmp_tensor(&d, "w_z", &a->w_z, &b->w_z);
            cmp_tensor(&d, "w_a", &a->w_a, &b->w_a);
            cmp_tensor(&d, "w_b", &a->w_b, &b->w_b);
            cmp_tensor(&d, "w_out", &a->w_out, &b->w_out);
            cmp_vec(&d, "conv_w", a->conv_w, b->conv_w,
                    (int64_t)q35_config_conv_channels(c) * c->conv_kernel);
            cmp_vec(&d, "A", a->A, b->A, nv);
            cmp_vec(&d, "dt_bias", a->dt_bias, b->dt_bias, nv);
            cmp_vec(&d, "gdn_norm", a->gdn_norm, b->gdn_norm, c->lin_v_dim);
        }
    }
    return d;
}

static void cmp_configs(const q35_config *a, const q35_config *b) {
    assert_int_equal(a->vocab_size, b->vocab_size);
    assert_int_equal(a->hidden_size, b->hidden_size);
    assert_int_equal(a->intermediate_size, b->intermediate_size);
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++)
        assert_int_equal(a->layer_full[i], b->layer_full[i]);
    assert_int_equal(a->n_heads, b->n_heads);
    assert_int_equal(a->n_kv_heads, b->n_kv_heads);
    assert_int_equal(a->head_dim, b->head_dim);
    assert_int_equal(a->rotary_dim, b->rotary_dim);
    assert_true(a->rope_theta == b->rope_theta);
    assert_int_equal(a->lin_k_heads, b->lin_k_heads);
    assert_int_equal(a->lin_v_heads, b->lin_v_heads);
    assert_int_equal(a->lin_k_dim, b->lin_k_dim);
    assert_int_equal(a->lin_v_dim, b->lin_v_dim);
    assert_int_equal(a->conv_kernel, b->conv_kernel);
    assert_true(fabsf(a->rms_eps - b->rms_eps) <= 1e-6f * b->rms_eps);
    assert_int_equal(a->tie_embeddings, b->tie_embeddings);
    assert_int_equal(a->max_position, b->max_position);
    assert_true(a->n_eos >= 1);
    assert_int_equal(a->eos_ids[0], b->eos_ids[0]);
}

static q35_model *load(const char *path) {
    q35_err e = {0};
    q35_model *m = q35_model_load(path, NULL, &e);
    if (!m) fprintf(stderr, "%s: %s\n", path, e.msg);
    assert_non_null(m);
    return m;
}

static void check_same_as_safetensors(const char *model, const char *quant, double max_rel) {
    char dir[512], gguf[512];
    snprintf(dir, sizeof dir, GOLDEN "models/%s", model);
    snprintf(gguf, sizeof gguf, GOLDEN "gguf/%s-%s.gguf", model, quant);
    q35_model *s = load(dir), *g = load(gguf);
    q35_model_info info;
    q35_model_get_info(g, &info);
    assert_string_equal(info.format, "gguf");
    cmp_configs(&g->cfg, &s->cfg);
    diff d = cmp_models(g, s);
    printf("%s-%s: max |w - w_hf| %.3g (%s), worst tensor rel rms %.3g, footprint %zu bytes\n",
           model, quant, d.max_abs, d.worst, d.max_rel, q35_model_memory_footprint(g));
    assert_true(d.max_rel <= max_rel);
    /* bf16: identical weights, but for -exp(A_log) rounded in float32 by
     * the converter here and by expf there */
    if (!strcmp(quant, "bf16")) assert_true(d.max_abs <= 1e-6);
    q35_model_free(g);
    q35_model_free(s);
}

static void test_bf16_equals_safetensors(void **state) {
    (void)state;
    check_same_as_safetensors("tiny-a", "bf16", 1e-7);
    check_same_as_safetensors("tiny-b", "bf16", 1e-7);
}

static void test_bf16_in_place(void **state) {
    (void)state;
    /* Unpermuted bf16 matrices are used from the map: the model holds the
     * mapped file and little heap. Permuted ones are copies. */
    q35_model *g = load(GOLDEN "gguf/tiny-b-bf16.gguf");
    assert_int_equal(g->n_files, 1);
    assert_int_equal(g->embed.dtype, Q35_DT_BF16);
    assert_true((const unsigned char *)g->embed.data >= g->files[0].data &&
                (const unsigned char *)g->embed.data < g->files[0].data + g->files[0].size);
    assert_true(g->owned_bytes < g->files[0].size / 4);
    q35_model_free(g);
}

static void test_quantized_close_to_safetensors(void **state) {
    (void)state;
    /* weights within each format's relative RMS error (see
     * tests/formats/test_gguf_quants.c for where the bounds come from) */
    check_same_as_safetensors("tiny-a", "Q8_0", 0.01);
    check_same_as_safetensors("tiny-a", "Q4_0", 0.15);
    check_same_as_safetensors("tiny-b", "Q8_0", 0.01);
    check_same_as_safetensors("tiny-b", "Q4_0", 0.15);
    check_same_as_safetensors("tiny-b", "Q4_K_M", 0.12);
    /* Q4_K / Q6_K matrices are used in place (or repacked, repack_x16.h):
     * the file stays mapped and the model owns little beyond what had to
     * move, be decoded or be repacked */
    q35_model *g = load(GOLDEN "gguf/tiny-b-Q4_K_M.gguf");
    assert_int_equal(g->n_files, 1);
    assert_int_equal(g->embed.dtype, Q35_DT_Q4_K);
    /* (the head may be repacked at load for the CPU kernels, repack_x16.h) */
    assert_int_equal(q35_dtype_x16_base(g->lm_head.dtype), Q35_DT_Q6_K);
    assert_int_equal(q35_dtype_x16_base(g->layers[0].w_gate.dtype), Q35_DT_Q4_K);
    assert_true((const unsigned char *)g->embed.data >= (const unsigned char *)g->files[0].data &&
                (const unsigned char *)g->embed.data <
                    (const unsigned char *)g->files[0].data + g->files[0].size);
    /* (less the matrices repacked at load, which the model owns) */
    size_t repacked = 0;
    q35_tensor *mats[Q35_MAX_MATRICES];
    int n = q35_model_matrices(g, mats, NULL);
    for (int i = 0; i < n; i++)
        if (q35_dtype_is_x16(mats[i]->dtype))
            repacked += q35_x16_bytes(q35_dtype_x16_base(mats[i]->dtype), mats[i]->shape[0],
                                      mats[i]->shape[1]);
    assert_true(g->owned_bytes - repacked < g->files[0].size / 2);
    q35_model_free(g);
}

/* ------------------------------------------------------ inconsistent files */

typedef struct image {
    unsigned char *p;
    size_t n;
    q35_gguf g; /* parse of the unpatched image, to find offsets */
} image;

static void image_load(image *im, const char *file) {
    char path[512];
    snprintf(path, sizeof path, GOLDEN "gguf/%s", file);
    im->p = gb_read_file(path, &im->n);
    assert_non_null(im->p);
    q35_err e = {0};
    assert_int_equal(q35_gguf_parse(&im->g, im->p, im->n, file, &e), Q35_OK);
}

static void image_free(image *im) {
    q35_gguf_close(&im->g);
    free(im->p);
}

/* Binds a model from the (patched) image; expects failure naming `want`. */
static void expect_bind_error(const image *im, const char *want) {
    q35_gguf g;
    q35_err e = {0};
    int rc = q35_gguf_parse(&g, im->p, im->n, "patched.gguf", &e);
    if (rc == Q35_OK) {
        q35_model *m = calloc(1, sizeof *m);
        rc = q35_model_bind_gguf(m, &g, &e);
        q35_model_free(m);
        q35_gguf_close(&g);
    }
    if (rc == Q35_OK || !strstr(e.msg, want))
        fprintf(stderr, "expected an error with \"%s\", got %d: %s\n", want, rc, e.msg);
    assert_int_not_equal(rc, Q35_OK);
    assert_non_null(strstr(e.msg, want));
}

/* Binds a model from the (patched) image; expects success with tiny-a's
 * layer pattern (L, L, L, F). */
static void expect_bind_ok(const image *im) {
    q35_gguf g;
    q35_err e = {0};
    assert_int_equal(q35_gguf_parse(&g, im->p, im->n, "patched.gguf", &e), Q35_OK);
    q35_model *m = calloc(1, sizeof *m);
    int rc = q35_model_bind_gguf(m, &g, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, Q35_OK);
    assert_false(m->cfg.layer_full[0] || m->cfg.layer_full[1] || m->cfg.layer_full[2]);
    assert_true(m->cfg.layer_full[3]);
    q35_model_free(m);
    q35_gguf_close(&g);
}

/* Byte offset in the image of the value of key `k` (after its type). */
static size_t value_offset(const image *im, const char *k) {
    const q35_gguf_kv *kv = q35_gguf_find(&im->g, k);
    assert_non_null(kv);
    return kv->file_offset + 8 + kv->key.len + 4;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void test_inconsistent_files(void **state) {
    (void)state;
    image im;
    image_load(&im, "tiny-a-bf16.gguf");
    const size_t n = im.n;
    unsigned char *orig = malloc(n);
    memcpy(orig, im.p, n);

    /* another architecture: same length, so the file stays well formed */
    size_t at = value_offset(&im, "general.architecture") + 8;
    memcpy(im.p + at, "llama5", 6);
    expect_bind_error(&im, "general.architecture is \"llama5\"");
    memcpy(im.p, orig, n);

    /* a tensor renamed: blk.0.ssm_a -> blk.0.ssm_b */
    const q35_gguf_tensor *a = q35_gguf_find_tensor(&im.g, "blk.0.ssm_a");
    im.p[a->info_offset + 8 + a->name.len - 1] = 'b';
    expect_bind_error(&im, "missing tensor blk.0.ssm_a");
    memcpy(im.p, orig, n);

    /* a shape that disagrees with the metadata: ffn_up [64, 160] -> [64, 80] */
    const q35_gguf_tensor *up = q35_gguf_find_tensor(&im.g, "blk.1.ffn_up.weight");
    size_t dims = up->info_offset + 8 + up->name.len + 4;
    im.p[dims + 8] = 80;
    expect_bind_error(&im, "blk.1.ffn_up.weight has shape");
    memcpy(im.p, orig, n);

    /* a type q35 cannot decode: the bf16 attn_qkv as MXFP4 (smaller, so the
     * file stays well formed) */
    const q35_gguf_tensor *qkv = q35_gguf_find_tensor(&im.g, "blk.0.attn_qkv.weight");
    size_t type_at = qkv->info_offset + 8 + qkv->name.len + 4 + 8 * (size_t)qkv->n_dims;
    put_u32(im.p + type_at, Q35_GGML_MXFP4);
    expect_bind_error(&im, "blk.0.attn_qkv.weight has type MXFP4");
    memcpy(im.p, orig, n);

    /* full_attention_interval 3 beside recurrent_layers: the per-block
     * array wins (llama.cpp writes transformers' default interval next to
     * any pattern), and the model says where its pattern came from */
    put_u32(im.p + value_offset(&im, "qwen35.full_attention_interval"), 3);
    {
        q35_gguf g;
        q35_err e = {0};
        assert_int_equal(q35_gguf_parse(&g, im.p, im.n, "patched.gguf", &e), Q35_OK);
        q35_model *m = calloc(1, sizeof *m);
        assert_int_equal(q35_model_bind_gguf(m, &g, &e), Q35_OK);
        assert_false(m->cfg.layer_full[0] || m->cfg.layer_full[1] || m->cfg.layer_full[2]);
        assert_true(m->cfg.layer_full[3]);
        assert_non_null(strstr(m->cfg.layers_from, "qwen35.attention.recurrent_layers"));
        assert_non_null(strstr(m->cfg.layers_from, "interval 3 disagrees"));
        q35_model_free(m);
        q35_gguf_close(&g);
    }
    memcpy(im.p, orig, n);

    /* the layer pattern from either key alone, an error without both */
    const q35_gguf_kv *every = q35_gguf_find(&im.g, "qwen35.full_attention_interval");
    const q35_gguf_kv *rec = q35_gguf_find(&im.g, "qwen35.attention.recurrent_layers");
    size_t every_name = every->file_offset + 8, rec_name = rec->file_offset + 8;
    im.p[every_name + every->key.len - 1] = 'X';
    expect_bind_ok(&im);
    memcpy(im.p, orig, n);
    im.p[rec_name + rec->key.len - 1] = 'X';
    expect_bind_ok(&im);
    im.p[every_name + every->key.len - 1] = 'X';
    expect_bind_error(&im, "neither qwen35.attention.recurrent_layers nor");
    memcpy(im.p, orig, n);

    /* ssm.inner_size not a multiple of the value heads */
    put_u32(im.p + value_offset(&im, "qwen35.ssm.inner_size"), 97);
    expect_bind_error(&im, "ssm.inner_size 97");
    memcpy(im.p, orig, n);

    /* a metadata value out of range */
    put_u32(im.p + value_offset(&im, "qwen35.block_count"), 100000);
    expect_bind_error(&im, "qwen35.block_count");
    memcpy(im.p, orig, n);

    /* rope sections that do not cover the rotary dims */
    const q35_gguf_kv *sec = q35_gguf_find(&im.g, "qwen35.rope.dimension_sections");
    put_u32(im.p + (sec->val - im.g.base), 3);
    expect_bind_error(&im, "dimension_sections sums to 5");
    memcpy(im.p, orig, n);

    /* an eos id outside the vocabulary */
    put_u32(im.p + value_offset(&im, "tokenizer.ggml.eos_token_id"), 512);
    expect_bind_error(&im, "tokenizer.ggml.eos_token_id");
    memcpy(im.p, orig, n);

    free(orig);
    image_free(&im);
}

static void test_load_errors(void **state) {
    (void)state;
    q35_err e = {0};
    assert_null(q35_model_load("/nonexistent/x.gguf", NULL, &e));
    assert_non_null(strstr(e.msg, "/nonexistent/x.gguf"));
    assert_true(q35_path_is_gguf("a/b/model-Q4_K_M.GGUF"));
    assert_false(q35_path_is_gguf("model.safetensors"));
    assert_false(q35_path_is_gguf(".gguf/dir/x"));
    /* by content: a GGUF whatever its name, a safetensors file or a
     * directory never, even when named .gguf */
    assert_true(q35_path_is_gguf(GOLDEN "gguf/tiny-a-bf16.gguf"));
    assert_false(q35_path_is_gguf(GOLDEN "models/tiny-a/model.safetensors"));
    assert_false(q35_path_is_gguf(GOLDEN "models/tiny-a"));
    char tmpl[] = "/tmp/q35-sniff-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    FILE *src = fopen(GOLDEN "gguf/tiny-a-Q4_0.gguf", "rb");
    assert_non_null(src);
    unsigned char buf[4096];
    size_t got = fread(buf, 1, sizeof buf, src);
    fclose(src);
    assert_int_equal(write(fd, buf, got), (ssize_t)got);
    close(fd);
    assert_true(q35_path_is_gguf(tmpl)); /* no extension, GGUF magic */
    unlink(tmpl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_equals_safetensors),
        cmocka_unit_test(test_bf16_in_place),
        cmocka_unit_test(test_quantized_close_to_safetensors),
        cmocka_unit_test(test_inconsistent_files),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
