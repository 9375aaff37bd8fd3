/* test_convert_gguf.c — q35_model_save_gguf (what `q35 convert` writes)
 * against llama.cpp's own files of the same checkpoints (golden/gguf/):
 *  - bf16: every tensor has the name, shape, type and bytes of
 *    convert_hf_to_gguf.py's file, and the written file's logits equal the
 *    safetensors model's (bit for bit). One exception, allowed and counted:
 *    ssm_a = -exp(A_log) may differ by 1 ulp (q35's loader computes it
 *    correctly rounded with expf; llama.cpp's converter with torch, which
 *    is 1 ulp off on 2 of tiny-b's 16 entries);
 *  - Q8_0 / Q4_0: every tensor llama-quantize also wrote as that type is
 *    byte-identical (q35_ggml_quantize rounds as ggml does); llama-quantize
 *    keeps tiny-a's tied embedding in Q8_0 in its Q4_0 file and writes
 *    tiny-b's output head as Q6_K: those are skipped (and printed), and
 *    tiny-a written as Q4_0 with a Q8_0 head (output_type) matches the whole
 *    llama.cpp file. Logits equal those of the golden file where all
 *    tensors match, and agree to float32 rounding with tiny-b's (ssm_a);
 *  - GGUF to GGUF round-trips: llama.cpp's files, loaded and written again
 *    in their own type with their metadata carried, give the same tensors
 *    and the same metadata values; writing the result again gives the same
 *    file byte for byte;
 *  - a synthetic model whose row lengths are not multiples of 32 (and with
 *    value heads outnumbering key heads, untied head) falls back to BF16
 *    for those matrices, says so in the stats, and loads back to the same
 *    weights in HF order. */
#include <dirent.h>
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
#include "formats/gguf_quants.h"
#include "model/model.h"
#include "model/save_gguf.h"
#include "q35.h"

#define GOLDEN_GGUF Q35_FIXTURES "/gguf/"

static char tmp_dir[256];

static int setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/q35-convert-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(tmp_dir);
    if (!d) return 0;
    struct dirent *de;
    char p[600];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", tmp_dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmp_dir);
    return 0;
}

static q35_model *load(const char *path) {
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 2};
    q35_model *m = q35_model_load(path, &lo, &e);
    if (!m) fail_msg("load %s: %s", path, e.msg);
    return m;
}

/* Writes m (loaded from `src`, whose M-RoPE sections go along). */
static void save(const q35_model *m, const char *src, const char *path, q35_dtype type,
                 q35_dtype head, const q35_gguf_kvs *extra, q35_gguf_save_stats *st) {
    q35_err e = {0};
    q35_gguf_save_opts o = {.type = type,
                            .output_type = head,
                            .embed_type = Q35_DT_SAME,
                            .source = "test",
                            .extra = extra};
    if (q35_rope_sections_of_source(src, o.rope_sections, &o.n_rope_sections, &e))
        fail_msg("%s: %s", src, e.msg);
    assert_int_equal(o.n_rope_sections, 4);
    if (q35_model_save_gguf(m, path, &o, st, &e)) fail_msg("save %s: %s", path, e.msg);
}

static void out_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmp_dir, name);
}

/* ------------------------------------------------------- tensor comparison */

static bool ends_with(q35_gguf_str s, const char *suffix) {
    size_t n = strlen(suffix);
    return s.len >= n && !memcmp(s.p + s.len - n, suffix, n);
}

/* Largest |a - b| in ulps over n float32s. */
static int64_t max_ulps(const unsigned char *a, const unsigned char *b, size_t n) {
    int64_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t x, y;
        memcpy(&x, a + 4 * i, 4);
        memcpy(&y, b + 4 * i, 4);
        int64_t d = llabs((int64_t)x - (int64_t)y);
        if (d > worst) worst = d;
    }
    return worst;
}

typedef struct tensor_diff {
    int same, skipped, ssm_a_ulp;
} tensor_diff;

/* Same tensor names and shapes in both files; bytes equal wherever the
 * types agree (ssm_a: within 1 ulp). */
static tensor_diff compare_files(const char *ours_path, const char *ref_path) {
    q35_err e = {0};
    q35_gguf ours, ref;
    assert_int_equal(q35_gguf_open(&ours, ours_path, &e), Q35_OK);
    assert_int_equal(q35_gguf_open(&ref, ref_path, &e), Q35_OK);
    assert_int_equal(ours.n_tensors, ref.n_tensors);
    tensor_diff d = {0};
    for (int64_t i = 0; i < ours.n_tensors; i++) {
        const q35_gguf_tensor *a = &ours.tensors[i];
        char name[300];
        snprintf(name, sizeof name, "%.*s", (int)a->name.len, a->name.p);
        const q35_gguf_tensor *b = q35_gguf_find_tensor(&ref, name);
        if (!b) fail_msg("%s: tensor %s is not in %s", ours_path, name, ref_path);
        assert_int_equal(a->n_dims, b->n_dims);
        for (int k = 0; k < 4; k++)
            assert_int_equal(a->ne[k], b->ne[k]);
        if (a->type != b->type) {
            printf("  %s: skipped (%s here, %s in %s)\n", name, q35_ggml_type_name(a->type),
                   q35_ggml_type_name(b->type), strrchr(ref_path, '/') + 1);
            d.skipped++;
            continue;
        }
        assert_int_equal(a->n_bytes, b->n_bytes);
        if (!memcmp(a->data, b->data, a->n_bytes)) {
            d.same++;
        } else if (ends_with(a->name, ".ssm_a") && a->type == Q35_GGML_F32 &&
                   max_ulps(a->data, b->data, a->n_bytes / 4) <= 1) {
            d.ssm_a_ulp++;
        } else {
            fail_msg("%s: tensor %s differs from %s", ours_path, name, ref_path);
        }
    }
    q35_gguf_close(&ours);
    q35_gguf_close(&ref);
    return d;
}

/* ------------------------------------------------------------------ logits */

#define N_IDS 40

/* Logits of a 40-token prefill followed by 3 decode steps. */
static float *logits_of(q35_model *m, int *rows, int *V) {
    q35_err e = {0};
    q35_model_info in;
    q35_model_get_info(m, &in);
    *V = in.vocab_size;
    *rows = N_IDS + 3;
    int32_t ids[N_IDS + 3];
    for (int i = 0; i < N_IDS + 3; i++)
        ids[i] = (int32_t)((i * 37 + 11) % *V);
    float *out = malloc((size_t)*rows * (size_t)*V * sizeof *out);
    q35_state *s = q35_state_new(m, 64, &e);
    assert_non_null(s);
    assert_int_equal(q35_state_eval(m, s, ids, N_IDS, out, true, &e), Q35_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(q35_state_eval(m, s, &ids[N_IDS + i], 1,
                                        out + (size_t)(N_IDS + i) * (size_t)*V, false, &e),
                         Q35_OK);
    q35_state_free(s);
    return out;
}

/* max |a - b| / max |b| over two models' logits. */
static double logits_rel_diff(q35_model *a, q35_model *b) {
    int ra, va, rb, vb;
    float *x = logits_of(a, &ra, &va), *y = logits_of(b, &rb, &vb);
    assert_int_equal(va, vb);
    double err = 0, mx = 0;
    for (size_t i = 0; i < (size_t)ra * (size_t)va; i++) {
        err = fmax(err, fabs((double)x[i] - y[i]));
        mx = fmax(mx, fabs((double)y[i]));
    }
    free(x);
    free(y);
    return err / mx;
}

/* -------------------------------------------------------------------- tests */

static void test_bf16_equals_llama_cpp(void **state) {
    (void)state;
    const char *models[] = {"tiny-a", "tiny-b"};
    for (int i = 0; i < 2; i++) {
        char src[512], ref[512], out[512];
        snprintf(src, sizeof src, "%s/models/%s", Q35_FIXTURES, models[i]);
        snprintf(ref, sizeof ref, GOLDEN_GGUF "%s-bf16.gguf", models[i]);
        out_path(out, sizeof out, "bf16.gguf");
        q35_model *m = load(src);
        q35_gguf_save_stats st;
        save(m, src, out, Q35_DT_BF16, Q35_DT_SAME, NULL, &st);
        assert_int_equal(st.n_fallbacks, 0);
        assert_int_equal(st.n_by_type[Q35_DT_BF16] + st.n_by_type[Q35_DT_F32], st.n_tensors);
        tensor_diff d = compare_files(out, ref);
        printf("%s bf16: %d tensors byte-identical to llama.cpp's, %d ssm_a within 1 ulp\n",
               models[i], d.same, d.ssm_a_ulp);
        assert_int_equal(d.skipped, 0);
        assert_true(d.ssm_a_ulp <= 2);
        q35_model *g = load(out);
        double rel = logits_rel_diff(g, m);
        printf("%s bf16: logits vs safetensors max rel diff %.3g\n", models[i], rel);
        assert_true(rel <= 1e-6);
        q35_model_free(g);
        q35_model_free(m);
    }
}

typedef struct quant_case {
    const char *model, *golden;
    q35_dtype type, head;
    int expect_skipped;
    bool logits_exact; /* every tensor the same bytes as the golden file */
} quant_case;

static void test_quantized_equals_llama_quantize(void **state) {
    (void)state;
    const quant_case cases[] = {
        {"tiny-a", "Q8_0", Q35_DT_Q8_0, Q35_DT_SAME, 0, true},
        {"tiny-b", "Q8_0", Q35_DT_Q8_0, Q35_DT_SAME, 0, false},
        {"tiny-a", "Q4_0", Q35_DT_Q4_0, Q35_DT_SAME, 1, false}, /* token_embd Q8_0 there */
        {"tiny-a", "Q4_0", Q35_DT_Q4_0, Q35_DT_Q8_0, 0, true},
        {"tiny-b", "Q4_0", Q35_DT_Q4_0, Q35_DT_SAME, 1, false}, /* output Q6_K there */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const quant_case *c = &cases[i];
        char src[512], ref[512], out[512];
        snprintf(src, sizeof src, "%s/models/%s", Q35_FIXTURES, c->model);
        snprintf(ref, sizeof ref, GOLDEN_GGUF "%s-%s.gguf", c->model, c->golden);
        out_path(out, sizeof out, "quant.gguf");
        q35_model *m = load(src);
        q35_gguf_save_stats st;
        save(m, src, out, c->type, c->head, NULL, &st);
        q35_model_free(m);
        tensor_diff d = compare_files(out, ref);
        printf("%s %s%s: %d tensors byte-identical to llama-quantize's, %d skipped, %d ssm_a "
               "within 1 ulp\n",
               c->model, c->golden, c->head == Q35_DT_Q8_0 ? " (head Q8_0)" : "", d.same, d.skipped,
               d.ssm_a_ulp);
        assert_int_equal(d.skipped, c->expect_skipped);
        q35_model *ours = load(out), *gold = load(ref);
        if (!strcmp(c->model, "tiny-b") && c->type == Q35_DT_Q4_0) {
            printf("  logits not compared (the golden head is Q6_K)\n");
        } else if (c->expect_skipped == 0) {
            double rel = logits_rel_diff(ours, gold);
            printf("  logits vs the golden file: max rel diff %.3g\n", rel);
            if (c->logits_exact)
                assert_true(rel == 0);
            else
                assert_true(rel <= 1e-5); /* ssm_a's ulps only */
        }
        q35_model_free(ours);
        q35_model_free(gold);
    }
}

static bool own_key(q35_gguf_str k) {
    return q35_gguf_str_eq(k, "general.alignment") || q35_gguf_str_eq(k, "q35.convert.version") ||
           q35_gguf_str_eq(k, "q35.convert.source");
}

/* llama.cpp's file -> q35 -> GGUF of the same type: same tensors, same
 * metadata; and once more: the same file. */
static void round_trip(const char *golden, q35_dtype type, q35_dtype head) {
    char ref[512], out[512], out2[512];
    snprintf(ref, sizeof ref, GOLDEN_GGUF "%s", golden);
    out_path(out, sizeof out, "rt1.gguf");
    out_path(out2, sizeof out2, "rt2.gguf");
    q35_err e = {0};
    q35_gguf src;
    assert_int_equal(q35_gguf_open(&src, ref, &e), Q35_OK);
    q35_gguf_kvs carried = {0};
    assert_int_equal(q35_gguf_kvs_carry_source(&carried, &src, &e), Q35_OK);
    q35_model *m = load(ref);
    save(m, ref, out, type, head, &carried, NULL);
    q35_model_free(m);
    tensor_diff d = compare_files(out, ref);
    printf("%s round trip: %d tensors identical\n", golden, d.same);
    assert_int_equal(d.same, src.n_tensors);

    q35_gguf got;
    assert_int_equal(q35_gguf_open(&got, out, &e), Q35_OK);
    for (int64_t i = 0; i < src.n_kv; i++) {
        const q35_gguf_kv *a = &src.kvs[i];
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.p);
        const q35_gguf_kv *b = q35_gguf_find(&got, key);
        if (!b) fail_msg("%s: key %s was lost", golden, key);
        bool same = a->type == b->type && a->arr_type == b->arr_type && a->arr_n == b->arr_n &&
                    a->val_bytes == b->val_bytes && !memcmp(a->val, b->val, a->val_bytes);
        if (!same) fail_msg("%s: key %s changed", golden, key);
    }
    for (int64_t i = 0; i < got.n_kv; i++)
        if (!own_key(got.kvs[i].key)) {
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)got.kvs[i].key.len, got.kvs[i].key.p);
            if (!q35_gguf_find(&src, key)) fail_msg("%s: key %s appeared", golden, key);
        }
    q35_gguf_close(&got);

    /* again, from our own file: identical bytes */
    q35_gguf_kvs carried2 = {0};
    assert_int_equal(q35_gguf_open(&got, out, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_carry_source(&carried2, &got, &e), Q35_OK);
    q35_gguf_close(&got);
    m = load(out);
    save(m, out, out2, type, head, &carried2, NULL);
    q35_model_free(m);
    q35_mapped_file f1, f2;
    assert_int_equal(q35_mapped_file_open(&f1, out, &e), Q35_OK);
    assert_int_equal(q35_mapped_file_open(&f2, out2, &e), Q35_OK);
    assert_int_equal(f1.size, f2.size);
    assert_memory_equal(f1.data, f2.data, f1.size);
    q35_mapped_file_close(&f1);
    q35_mapped_file_close(&f2);
    q35_gguf_kvs_free(&carried);
    q35_gguf_kvs_free(&carried2);
    q35_gguf_close(&src);
}

static void test_gguf_round_trips(void **state) {
    (void)state;
    round_trip("tiny-a-bf16.gguf", Q35_DT_BF16, Q35_DT_SAME);
    round_trip("tiny-b-bf16.gguf", Q35_DT_BF16, Q35_DT_SAME);
    round_trip("tiny-a-Q8_0.gguf", Q35_DT_Q8_0, Q35_DT_SAME);
    round_trip("tiny-b-Q8_0.gguf", Q35_DT_Q8_0, Q35_DT_SAME);
    round_trip("tiny-a-Q4_0.gguf", Q35_DT_Q4_0, Q35_DT_Q8_0);
}

/* ------------------------------------------------- synthetic odd-sized model */

typedef struct synth {
    q35_model m;
    void *blocks[64];
    int n_blocks;
    unsigned seed;
} synth;

static float rnd(synth *s) {
    s->seed = s->seed * 1103515245u + 12345u;
    return (float)((s->seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *floats(synth *s, int64_t n) {
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = rnd(s);
    s->blocks[s->n_blocks++] = p;
    return p;
}

static q35_tensor mat(synth *s, int64_t rows, int64_t cols) {
    return (q35_tensor){Q35_DT_F32, 2, {rows, cols}, floats(s, rows * cols)};
}

/* H = 48, I = 80: no row length of the embedding, head, q/k/v/o, gate/up,
 * down or DeltaNet input projections is a multiple of 32; value heads (2)
 * outnumber key heads (1); untied head. */
static void synth_make(synth *s) {
    memset(s, 0, sizeof *s);
    s->seed = 7;
    q35_config *c = &s->m.cfg;
    *c = (q35_config){.vocab_size = 64,
                      .hidden_size = 48,
                      .intermediate_size = 80,
                      .n_layers = 2,
                      .n_heads = 2,
                      .n_kv_heads = 1,
                      .head_dim = 16,
                      .rotary_dim = 8,
                      .rope_theta = 1e6,
                      .lin_k_heads = 1,
                      .lin_v_heads = 2,
                      .lin_k_dim = 16,
                      .lin_v_dim = 24,
                      .conv_kernel = 4,
                      .rms_eps = 1e-6f,
                      .tie_embeddings = false,
                      .max_position = 128,
                      .n_eos = 1,
                      .eos_ids = {63}};
    c->layer_full[1] = true;
    const int64_t H = 48, I = 80, C = q35_config_conv_channels(c);
    s->m.embed = mat(s, 64, H);
    s->m.lm_head = mat(s, 64, H);
    s->m.final_norm = floats(s, H);
    s->m.layers = calloc(2, sizeof *s->m.layers);
    s->blocks[s->n_blocks++] = s->m.layers;
    for (int i = 0; i < 2; i++) {
        q35_layer *L = &s->m.layers[i];
        L->full_attn = i == 1;
        L->attn_norm = floats(s, H);
        L->mlp_norm = floats(s, H);
        L->w_gate = mat(s, I, H);
        L->w_up = mat(s, I, H);
        L->w_down = mat(s, H, I);
        if (L->full_attn) {
            L->w_q = mat(s, 2 * 2 * 16, H);
            L->w_k = mat(s, 16, H);
            L->w_v = mat(s, 16, H);
            L->w_o = mat(s, H, 2 * 16);
            L->q_norm = floats(s, 16);
            L->k_norm = floats(s, 16);
        } else {
            L->w_qkv = mat(s, C, H);
            L->w_z = mat(s, 48, H);
            L->w_b = mat(s, 2, H);
            L->w_a = mat(s, 2, H);
            L->w_out = mat(s, H, 48);
            L->conv_w = floats(s, C * 4);
            L->A = floats(s, 2);
            L->dt_bias = floats(s, 2);
            L->gdn_norm = floats(s, 24);
        }
    }
    s->m.loaded = true;
}

static void synth_free(synth *s) {
    for (int i = 0; i < s->n_blocks; i++)
        free(s->blocks[i]);
}

/* Loaded tensor b holds a's values rounded to `as`. */
static void check_matrix(const q35_tensor *a, const q35_tensor *b, q35_dtype as) {
    assert_int_equal(b->shape[0], a->shape[0]);
    assert_int_equal(b->shape[1], a->shape[1]);
    const int64_t rows = a->shape[0], cols = a->shape[1];
    const float *x = a->data;
    float *want = malloc((size_t)cols * sizeof *want);
    unsigned char *q = malloc((size_t)cols * 4);
    for (int64_t r = 0; r < rows; r++) {
        q35_err e = {0};
        const float *xr = x + r * cols;
        if (as == Q35_DT_Q8_0) {
            assert_int_equal(q35_ggml_quantize(Q35_GGML_Q8_0, xr, q, cols, &e), Q35_OK);
            assert_int_equal(q35_ggml_dequantize(Q35_GGML_Q8_0, q, want, cols, &e), Q35_OK);
        } else {
            for (int64_t c = 0; c < cols; c++)
                want[c] = q35_bf16_to_f32(q35_f32_to_bf16(xr[c]));
        }
        for (int64_t c = 0; c < cols; c++) {
            float got;
            if (b->dtype == Q35_DT_BF16) {
                uint16_t h;
                memcpy(&h, (const unsigned char *)b->data + 2 * (r * cols + c), 2);
                got = q35_bf16_to_f32(h);
            } else if (b->dtype == Q35_DT_Q8_0) {
                float row[1024];
                assert_int_equal(q35_ggml_dequantize(Q35_GGML_Q8_0,
                                                     (const unsigned char *)b->data +
                                                         r * (int64_t)q35_row_bytes(b->dtype, cols),
                                                     row, cols, &e),
                                 Q35_OK);
                got = row[c];
            } else {
                assert_int_equal(b->dtype, Q35_DT_F32);
                got = ((const float *)b->data)[r * cols + c];
            }
            if (got != want[c])
                fail_msg("row %lld col %lld: %g != %g", (long long)r, (long long)c, got, want[c]);
        }
    }
    free(want);
    free(q);
}

static void check_vec(const float *a, const float *b, int64_t n) {
    assert_memory_equal(a, b, (size_t)n * sizeof *a);
}

static void test_odd_sizes_fall_back_to_bf16(void **state) {
    (void)state;
    synth s;
    synth_make(&s);
    char out[512];
    out_path(out, sizeof out, "odd.gguf");
    q35_err e = {0};
    q35_gguf_save_opts o = {.type = Q35_DT_Q8_0,
                            .output_type = Q35_DT_SAME,
                            .embed_type = Q35_DT_SAME,
                            .rope_sections = {2, 1, 1, 0},
                            .n_rope_sections = 4};
    q35_gguf_save_stats st;
    assert_int_equal(q35_model_save_gguf(&s.m, out, &o, &st, &e), Q35_OK);
    printf("odd sizes: %d fallbacks, first %s; %d q8_0, %d bf16, %d f32\n", st.n_fallbacks,
           st.fallbacks[0], st.n_by_type[Q35_DT_Q8_0], st.n_by_type[Q35_DT_BF16],
           st.n_by_type[Q35_DT_F32]);
    /* columns: embed/head/gate/up/qkv/z/a/b/q/k/v 48, down 80, out_proj 48,
     * o_proj 32: only attn_output (32 columns) takes Q8_0; the other 16
     * matrices (head, embedding, 8 DeltaNet-layer and 6 attention-layer
     * ones) fall back */
    assert_int_equal(st.n_by_type[Q35_DT_Q8_0], 1);
    assert_int_equal(st.n_fallbacks, 16);
    assert_int_equal(st.n_by_type[Q35_DT_BF16], st.n_fallbacks);
    assert_non_null(strstr(st.fallbacks[0], "output.weight -> bf16"));

    q35_model *g = load(out);
    const q35_model *m = &s.m;
    assert_int_equal(g->cfg.lin_v_heads, 2);
    assert_false(g->cfg.tie_embeddings);
    check_matrix(&m->embed, &g->embed, Q35_DT_BF16);
    check_matrix(&m->lm_head, &g->lm_head, Q35_DT_BF16);
    check_vec(m->final_norm, g->final_norm, 48);
    for (int i = 0; i < 2; i++) {
        const q35_layer *a = &m->layers[i], *b = &g->layers[i];
        assert_int_equal(a->full_attn, b->full_attn);
        check_vec(a->attn_norm, b->attn_norm, 48);
        check_vec(a->mlp_norm, b->mlp_norm, 48);
        check_matrix(&a->w_gate, &b->w_gate, Q35_DT_BF16);
        check_matrix(&a->w_up, &b->w_up, Q35_DT_BF16);
        check_matrix(&a->w_down, &b->w_down, Q35_DT_BF16);
        if (a->full_attn) {
            check_matrix(&a->w_q, &b->w_q, Q35_DT_BF16);
            check_matrix(&a->w_k, &b->w_k, Q35_DT_BF16);
            check_matrix(&a->w_v, &b->w_v, Q35_DT_BF16);
            check_matrix(&a->w_o, &b->w_o, Q35_DT_Q8_0);
            check_vec(a->q_norm, b->q_norm, 16);
            check_vec(a->k_norm, b->k_norm, 16);
        } else {
            check_matrix(&a->w_qkv, &b->w_qkv, Q35_DT_BF16);
            check_matrix(&a->w_z, &b->w_z, Q35_DT_BF16);
            check_matrix(&a->w_a, &b->w_a, Q35_DT_BF16);
            check_matrix(&a->w_b, &b->w_b, Q35_DT_BF16);
            check_matrix(&a->w_out, &b->w_out, Q35_DT_BF16);
            check_vec(a->conv_w, b->conv_w, q35_config_conv_channels(&m->cfg) * 4);
            check_vec(a->A, b->A, 2);
            check_vec(a->dt_bias, b->dt_bias, 2);
            check_vec(a->gdn_norm, b->gdn_norm, 24);
        }
    }
    q35_model_free(g);

    /* a type that is not a matrix type */
    o.type = Q35_DT_COUNT;
    out_path(out, sizeof out, "never.gguf");
    assert_int_equal(q35_model_save_gguf(&s.m, out, &o, NULL, &e), Q35_EINVAL);
    assert_int_equal(access(out, F_OK), -1);
    synth_free(&s);
}

int main(void) {
    /* These tests hold the exact float path (the reference mode): weights
     * times float32 activations, equal to 1e-5 across sets and files. The
     * integer path (8-bit activations) has its own tests in tests/kernels. */
    setenv("Q35_EXACT", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_equals_llama_cpp),
        cmocka_unit_test(test_quantized_equals_llama_quantize),
        cmocka_unit_test(test_gguf_round_trips),
        cmocka_unit_test(test_odd_sizes_fall_back_to_bf16),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
