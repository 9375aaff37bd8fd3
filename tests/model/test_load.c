/* test_load.c — loading HF checkpoints: both naming schemes, flat and nested
 * configs, sharded files, and every kind of bad input the loader must turn
 * into a clear error (checked for the words that name the problem). Bad
 * files are made by editing tiny-a's header with cJSON and writing it back
 * in front of the original data. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/mapped_file.h"
#include "formats/safetensors.h"
#include "model/model.h"

#define TINY_A Q35_FIXTURES "/models/tiny-a"
#define TINY_B Q35_FIXTURES "/models/tiny-b"

static char tmpdir[256];

static void write_file(const char *dir, const char *name, const void *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *s) {
    write_file(dir, name, s, strlen(s));
}

static char *slurp(const char *path, size_t *n) {
    q35_err e;
    char *s = q35_read_text_file(path, 64u << 20, n, &e);
    assert_non_null(s);
    return s;
}

/* A fresh empty directory for one case. */
static const char *case_dir(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    mkdir(p, 0700);
    return p;
}

/* tiny-a's safetensors split into header JSON and data. */
typedef struct st_parts {
    cJSON *header;
    const unsigned char *data;
    size_t data_size;
    char *raw;
} st_parts;

static st_parts read_parts(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    size_t n;
    st_parts s = {0};
    s.raw = slurp(p, &n);
    uint64_t hl;
    memcpy(&hl, s.raw, 8);
    s.header = cJSON_ParseWithLength(s.raw + 8, hl);
    assert_non_null(s.header);
    s.data = (const unsigned char *)s.raw + 8 + hl;
    s.data_size = n - 8 - hl;
    return s;
}

static void free_parts(st_parts *s) {
    cJSON_Delete(s->header);
    free(s->raw);
}

/* Writes header + data as `name` in dir. */
static void write_st(const char *dir, const char *name, const cJSON *header, const void *data,
                     size_t n) {
    char *h = cJSON_PrintUnformatted(header);
    uint64_t hl = strlen(h);
    size_t total = 8 + hl + n;
    unsigned char *buf = malloc(total);
    memcpy(buf, &hl, 8);
    memcpy(buf + 8, h, hl);
    if (n) memcpy(buf + 8 + hl, data, n);
    write_file(dir, name, buf, total);
    free(buf);
    free(h);
}

/* Copies tiny-a's config into dir. */
static void copy_config(const char *dir) {
    size_t n;
    char *c = slurp(TINY_A "/config.json", &n);
    write_file(dir, "config.json", c, n);
    free(c);
}

/* Loads dir and expects failure with a message containing each of the
 * NULL-terminated words. */
static void expect_error(const char *dir, ...) {
    q35_err e = {0};
    q35_model *m = q35_model_load(dir, NULL, &e);
    if (m) q35_model_free(m);
    assert_null(m);
    assert_int_not_equal(e.code, Q35_OK);
    printf("    error: %s\n", e.msg);
    va_list ap;
    va_start(ap, dir);
    for (const char *w; (w = va_arg(ap, const char *));) {
        if (!strstr(e.msg, w)) fail_msg("message '%s' lacks '%s'", e.msg, w);
    }
    va_end(ap);
}

/* A case: tiny-a with one header edit. */
static void edited_case(const char *name, void (*edit)(cJSON *h), ...) {
    const char *dir = case_dir(name);
    copy_config(dir);
    st_parts s = read_parts(TINY_A);
    edit(s.header);
    write_st(dir, "model.safetensors", s.header, s.data, s.data_size);
    free_parts(&s);
    q35_err e = {0};
    q35_model *m = q35_model_load(dir, NULL, &e);
    if (m) q35_model_free(m);
    assert_null(m);
    printf("    %s: %s\n", name, e.msg);
    va_list ap;
    va_start(ap, edit);
    for (const char *w; (w = va_arg(ap, const char *));) {
        if (!strstr(e.msg, w)) fail_msg("message '%s' lacks '%s'", e.msg, w);
    }
    va_end(ap);
}

static cJSON *entry(cJSON *h, const char *name) {
    cJSON *t = cJSON_GetObjectItemCaseSensitive(h, name);
    assert_non_null(t);
    return t;
}

/* ------------------------------------------------------------- good inputs */

static void test_tiny_a(void **st) {
    q35_err e = {0};
    q35_model *m = q35_model_load(TINY_A, NULL, &e);
    if (!m) fail_msg("%s", e.msg);
    const q35_config *c = &m->cfg;
    assert_int_equal(c->vocab_size, 512);
    assert_int_equal(c->hidden_size, 64);
    assert_int_equal(c->n_layers, 4);
    assert_false(c->layer_full[0]);
    assert_true(c->layer_full[3]);
    assert_int_equal(c->rotary_dim, 8);
    assert_int_equal(c->lin_v_heads / c->lin_k_heads, 2);
    assert_true(c->tie_embeddings);
    assert_ptr_equal(m->lm_head.data, m->embed.data);
    assert_int_equal(c->n_eos, 1);
    assert_int_equal(c->eos_ids[0], 511);

    /* Compute forms: 1+w for the zero-centred norm, -exp for A. */
    q35_st_set set;
    assert_int_equal(q35_st_set_open_file(&set, TINY_A "/model.safetensors", &e), Q35_OK);
    const q35_st_tensor *t = q35_st_set_find(&set, "model.layers.0.linear_attn.A_log");
    assert_non_null(t);
    uint16_t h;
    memcpy(&h, t->data, 2);
    uint32_t u = (uint32_t)h << 16;
    float alog;
    memcpy(&alog, &u, 4);
    assert_float_equal(m->layers[0].A[0], -expf(alog), 1e-6 * expf(alog));
    t = q35_st_set_find(&set, "model.norm.weight");
    memcpy(&h, t->data, 2);
    u = (uint32_t)h << 16;
    float w;
    memcpy(&w, &u, 4);
    assert_float_equal(m->final_norm[0], 1.0f + w, 1e-7);
    q35_st_set_close(&set, 0);

    q35_model_info info;
    q35_model_get_info(m, &info);
    assert_int_equal(info.n_full_attn_layers, 1);
    assert_string_equal(info.dtype, "bf16");
    q35_model_free(m);
}

static void test_unload_reload(void **st) {
    q35_err e = {0};
    q35_model *m = q35_model_load(TINY_A, NULL, &e);
    assert_non_null(m);
    assert_true(q35_model_is_loaded(m));
    size_t bytes = q35_model_memory_footprint(m);
    assert_true(bytes >= 526136); /* at least the mapped file */
    q35_model_unload(m);
    assert_false(q35_model_is_loaded(m));
    assert_int_equal(q35_model_memory_footprint(m), 0);
    assert_int_equal(q35_model_reload(m, &e), Q35_OK);
    assert_true(q35_model_is_loaded(m));
    assert_int_equal(q35_model_memory_footprint(m), bytes);
    assert_int_equal(m->cfg.vocab_size, 512);
    q35_model_free(m);
}

static void test_tiny_b_untied(void **st) {
    q35_err e = {0};
    q35_model *m = q35_model_load(TINY_B, NULL, &e);
    if (!m) fail_msg("%s", e.msg);
    assert_false(m->cfg.tie_embeddings);
    assert_ptr_not_equal(m->lm_head.data, m->embed.data);
    assert_int_equal(m->cfg.head_dim, 256);
    assert_int_equal(m->cfg.rotary_dim, 64);
    q35_model_free(m);
}

/* The multimodal layout: nested config with full_attention_interval, names
 * under model.language_model., vision tensors in a shard of their own (never
 * opened: it is garbage here), mtp.* kept, two text shards + index. */
static void test_nested_sharded(void **st) {
    const char *dir = case_dir("nested");
    write_text(dir, "config.json",
               "{\"architectures\":[\"Qwen3_5ForConditionalGeneration\"],"
               "\"tie_word_embeddings\":true,\"text_config\":{"
               "\"vocab_size\":512,\"hidden_size\":64,\"intermediate_size\":160,"
               "\"num_hidden_layers\":4,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
               "\"head_dim\":32,\"linear_num_key_heads\":2,\"linear_num_value_heads\":4,"
               "\"linear_key_head_dim\":16,\"linear_value_head_dim\":24,"
               "\"linear_conv_kernel_dim\":4,\"rms_norm_eps\":1e-6,\"full_attention_interval\":4,"
               "\"eos_token_id\":[511,510],\"rope_parameters\":{\"rope_theta\":10000000.0,"
               "\"partial_rotary_factor\":0.25,\"mrope_section\":[2,2,0]}}}");
    st_parts s = read_parts(TINY_A);
    cJSON *h1 = cJSON_CreateObject(), *h2 = cJSON_CreateObject(), *map = cJSON_CreateObject();
    int i = 0;
    for (cJSON *t = s.header->child; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) continue;
        char name[256];
        snprintf(name, sizeof name, "model.language_model.%s", t->string + strlen("model."));
        cJSON *target = (i++ % 2) ? h2 : h1;
        cJSON_AddItemToObject(target, name, cJSON_Duplicate(t, 1));
        cJSON_AddStringToObject(map, name,
                                target == h1 ? "model-00001-of-00003.safetensors"
                                             : "model-00002-of-00003.safetensors");
    }
    /* An mtp tensor reusing bytes of the first shard's data. */
    cJSON *mtp = cJSON_Duplicate(entry(s.header, "model.norm.weight"), 1);
    cJSON_AddItemToObject(h1, "mtp.norm.weight", mtp);
    cJSON_AddStringToObject(map, "mtp.norm.weight", "model-00001-of-00003.safetensors");
    cJSON_AddStringToObject(map, "model.visual.blocks.0.weight",
                            "model-00003-of-00003.safetensors");
    /* Shards carry the full data blob; only header offsets matter. The mtp
     * tensor overlaps model.norm.weight's bytes, which would be refused, so
     * give it a private copy at the end. */
    size_t n = s.data_size;
    unsigned char *data = malloc(n + 128);
    memcpy(data, s.data, n);
    cJSON *off = cJSON_GetObjectItemCaseSensitive(mtp, "data_offsets");
    double b = cJSON_GetArrayItem(off, 0)->valuedouble,
           en = cJSON_GetArrayItem(off, 1)->valuedouble;
    memcpy(data + n, s.data + (size_t)b, (size_t)(en - b));
    cJSON_ReplaceItemInArray(off, 0, cJSON_CreateNumber((double)n));
    cJSON_ReplaceItemInArray(off, 1, cJSON_CreateNumber((double)n + (en - b)));
    write_st(dir, "model-00001-of-00003.safetensors", h1, data, n + (size_t)(en - b));
    write_st(dir, "model-00002-of-00003.safetensors", h2, s.data, n);
    write_text(dir, "model-00003-of-00003.safetensors", "garbage");
    cJSON *index = cJSON_CreateObject();
    cJSON_AddItemToObject(index, "weight_map", map);
    char *itext = cJSON_Print(index);
    write_text(dir, "model.safetensors.index.json", itext);
    free(itext);
    cJSON_Delete(index);
    cJSON_Delete(h1);
    cJSON_Delete(h2);
    free(data);

    q35_err e = {0};
    q35_model *m = q35_model_load(dir, NULL, &e);
    if (!m) fail_msg("%s", e.msg);
    q35_model *ref = q35_model_load(TINY_A, NULL, &e);
    assert_non_null(ref);
    assert_true(m->cfg.layer_full[3] && !m->cfg.layer_full[2]);
    assert_int_equal(m->cfg.n_eos, 2);
    assert_int_equal(m->n_files, 2);
    assert_int_equal(m->n_extra, 1);
    assert_string_equal(m->extra[0].name, "mtp.norm.weight");
    /* Same weights, bit for bit. */
    for (int l = 0; l < 4; l++) {
        assert_memory_equal(m->layers[l].w_gate.data, ref->layers[l].w_gate.data, 160 * 64 * 2);
        assert_memory_equal(m->layers[l].attn_norm, ref->layers[l].attn_norm, 64 * 4);
    }
    assert_memory_equal(m->layers[0].conv_w, ref->layers[0].conv_w, 4 * 4);
    assert_memory_equal(m->layers[3].w_q.data, ref->layers[3].w_q.data, 256 * 64 * 2);
    q35_model_free(ref);
    q35_model_free(m);
    free_parts(&s);
}

/* -------------------------------------------------------------- bad inputs */

static void test_missing_dir_and_files(void **st) {
    expect_error(Q35_TEST_DATA "/no/such/dir", "no such file", NULL);
    const char *dir = case_dir("empty");
    expect_error(dir, "config.json", NULL);
    copy_config(dir);
    expect_error(dir, "no model.safetensors", NULL);
}

static void test_truncated(void **st) {
    const char *dir = case_dir("truncated");
    copy_config(dir);
    size_t n;
    char *raw = slurp(TINY_A "/model.safetensors", &n);
    write_file(dir, "model.safetensors", raw, n / 2);
    expect_error(dir, "model.safetensors", "out of range", NULL);
    write_file(dir, "model.safetensors", raw, 5);
    expect_error(dir, "truncated", NULL);
    /* header length pointing past the end */
    uint64_t big = n;
    memcpy(raw, &big, 8);
    write_file(dir, "model.safetensors", raw, n);
    expect_error(dir, "header length", "past the end", NULL);
    big = (uint64_t)1 << 62;
    memcpy(raw, &big, 8);
    write_file(dir, "model.safetensors", raw, n);
    expect_error(dir, "header length", NULL);
    /* header that is not JSON */
    big = 16;
    memcpy(raw, &big, 8);
    memcpy(raw + 8, "{\"a\": [1, 2, 3 ", 16);
    write_file(dir, "model.safetensors", raw, 24);
    expect_error(dir, "header is not valid JSON at line 1, column", NULL);
    free(raw);
}

static void edit_offsets_out_of_range(cJSON *h) {
    cJSON *off = cJSON_GetObjectItemCaseSensitive(entry(h, "model.norm.weight"), "data_offsets");
    cJSON_ReplaceItemInArray(off, 1, cJSON_CreateNumber(1e9));
}
static void edit_offsets_reversed(cJSON *h) {
    cJSON *off = cJSON_GetObjectItemCaseSensitive(entry(h, "model.norm.weight"), "data_offsets");
    cJSON_ReplaceItemInArray(off, 0,
                             cJSON_CreateNumber(cJSON_GetArrayItem(off, 1)->valuedouble + 2));
}
static void edit_overlap(cJSON *h) {
    /* Point the final norm at the bytes of layer 0's input norm. */
    cJSON *a = cJSON_GetObjectItemCaseSensitive(entry(h, "model.layers.0.input_layernorm.weight"),
                                                "data_offsets");
    cJSON_ReplaceItemInObject(entry(h, "model.norm.weight"), "data_offsets", cJSON_Duplicate(a, 1));
}
static void edit_unknown_dtype(cJSON *h) {
    cJSON_ReplaceItemInObject(entry(h, "model.norm.weight"), "dtype", cJSON_CreateString("Q7_X"));
}
static void edit_int_dtype(cJSON *h) {
    cJSON_ReplaceItemInObject(entry(h, "model.norm.weight"), "dtype", cJSON_CreateString("I16"));
}
static void edit_size_mismatch(cJSON *h) {
    cJSON_ReplaceItemInObject(entry(h, "model.norm.weight"), "dtype", cJSON_CreateString("F32"));
}
static void edit_wrong_shape(cJSON *h) {
    /* Same byte count, shape transposed: [4, 1, C] instead of [C, 1, 4]. */
    cJSON *t = entry(h, "model.layers.0.linear_attn.conv1d.weight");
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    double c = cJSON_GetArrayItem(shape, 0)->valuedouble;
    cJSON_ReplaceItemInArray(shape, 0, cJSON_CreateNumber(4));
    cJSON_ReplaceItemInArray(shape, 2, cJSON_CreateNumber(c));
}
static void edit_missing_tensor(cJSON *h) {
    cJSON_DeleteItemFromObject(h, "model.layers.2.linear_attn.dt_bias");
}
static void edit_bad_shape_value(cJSON *h) {
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry(h, "model.norm.weight"), "shape");
    cJSON_ReplaceItemInArray(shape, 0, cJSON_CreateNumber(-64));
}
static void edit_entry_not_object(cJSON *h) {
    cJSON_ReplaceItemInObject(h, "model.norm.weight", cJSON_CreateString("x"));
}

static void test_bad_headers(void **st) {
    edited_case("offsets", edit_offsets_out_of_range, "model.norm.weight", "out of range", NULL);
    edited_case("reversed", edit_offsets_reversed, "model.norm.weight", "end before begin", NULL);
    edited_case("overlap", edit_overlap, "overlap", "model.norm.weight", NULL);
    edited_case("dtype", edit_unknown_dtype, "model.norm.weight", "unknown dtype", NULL);
    edited_case("intdtype", edit_int_dtype, "model.norm.weight", "I16", NULL);
    edited_case("size", edit_size_mismatch, "model.norm.weight", "bytes of data", NULL);
    edited_case("shape", edit_wrong_shape, "conv1d.weight", "has shape", "[4, 1, 160]", NULL);
    edited_case("missing", edit_missing_tensor, "missing tensor", "layers.2.linear_attn.dt_bias",
                NULL);
    edited_case("negdim", edit_bad_shape_value, "model.norm.weight", "dimension", NULL);
    edited_case("notobj", edit_entry_not_object, "model.norm.weight", "not an object", NULL);
}

/* Config edits: each is tiny-a's config with one change. */
static void config_case(const char *name, const char *from, const char *to, ...) {
    const char *dir = case_dir(name);
    size_t n;
    char *c = slurp(TINY_A "/config.json", &n);
    char *at = strstr(c, from);
    assert_non_null(at);
    size_t out_n = n - strlen(from) + strlen(to);
    char *out = malloc(out_n + 1);
    size_t pre = (size_t)(at - c);
    memcpy(out, c, pre);
    memcpy(out + pre, to, strlen(to));
    strcpy(out + pre + strlen(to), at + strlen(from));
    write_text(dir, "config.json", out);
    free(out);
    free(c);
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/model.safetensors", TINY_A);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    unlink(dst);
    assert_int_equal(symlink(src, dst), 0);
    q35_err e = {0};
    q35_model *m = q35_model_load(dir, NULL, &e);
    if (m) q35_model_free(m);
    assert_null(m);
    printf("    %s: %s\n", name, e.msg);
    va_list ap;
    va_start(ap, to);
    for (const char *w; (w = va_arg(ap, const char *));) {
        if (!strstr(e.msg, w)) fail_msg("message '%s' lacks '%s'", e.msg, w);
    }
    va_end(ap);
}

static void test_bad_configs(void **st) {
    config_case("cfg_json", "{", "{{", "config.json", "not valid JSON at line 1, column", NULL);
    config_case("cfg_layers", "\"num_hidden_layers\": 4", "\"num_hidden_layers\": 5",
                "contradictory", "layer_types", NULL);
    config_case("cfg_missing", "\"hidden_size\": 64,", "", "missing field", "hidden_size", NULL);
    config_case("cfg_negative", "\"hidden_size\": 64", "\"hidden_size\": -64", "hidden_size", NULL);
    config_case("cfg_type", "\"hidden_size\": 64", "\"hidden_size\": \"64\"", "hidden_size", NULL);
    config_case("cfg_heads", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3",
                "num_key_value_heads", NULL);
    config_case("cfg_rope", "\"partial_rotary_factor\": 0.25,\n  \"rms",
                "\"partial_rotary_factor\": 0.5,\n  \"rms", "contradictory",
                "partial_rotary_factor", NULL);
    config_case("cfg_ltype", "\"full_attention\"", "\"sliding_attention\"", "layer_types[3]", NULL);
    /* A config that disagrees with the tensors: a wrong hidden size. */
    config_case("cfg_shape", "\"intermediate_size\": 160", "\"intermediate_size\": 128",
                "has shape", "mlp", NULL);
    config_case("cfg_untied", "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false",
                "missing tensor", "lm_head.weight", NULL);
    config_case("cfg_eos", "\"eos_token_id\": 511", "\"eos_token_id\": 100000", "eos_token_id",
                NULL);
}

/* layer_types lists every layer; a full_attention_interval beside it that
 * disagrees (transformers writes its default 4 whatever the list says) is
 * ignored, and the config says which source gave the pattern. */
static void test_layer_types_win(void **st) {
    size_t n;
    char *c = slurp(TINY_A "/config.json", &n);
    char *at = strstr(c, "\"max_position_embeddings\"");
    assert_non_null(at);
    const char *extra = "\"full_attention_interval\": 2, ";
    char *edited = malloc(n + strlen(extra) + 1);
    size_t pre = (size_t)(at - c);
    memcpy(edited, c, pre);
    strcpy(edited + pre, extra);
    strcat(edited, at);
    q35_config cf;
    q35_err e = {0};
    assert_int_equal(q35_config_parse_json(edited, strlen(edited), "edited", &cf, &e), Q35_OK);
    /* tiny-a's list is L,L,L,F; interval 2 would say L,F,L,F */
    assert_false(cf.layer_full[0] || cf.layer_full[1] || cf.layer_full[2]);
    assert_true(cf.layer_full[3]);
    assert_non_null(strstr(cf.layers_from, "layer_types"));
    assert_non_null(strstr(cf.layers_from, "interval 2 disagrees"));
    assert_int_equal(q35_config_parse_json(c, n, "tiny-a", &cf, &e), Q35_OK);
    assert_string_equal(cf.layers_from, "config.json layer_types");
    free(edited);
    free(c);
}

static void test_bad_index(void **st) {
    const char *dir = case_dir("badindex");
    copy_config(dir);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd.safetensors\"}}");
    expect_error(dir, "not a .safetensors file name", NULL);
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": 3}");
    expect_error(dir, "weight_map", NULL);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"missing.safetensors\"}}");
    expect_error(dir, "missing.safetensors", NULL);
    /* Duplicate across shards. */
    st_parts s = read_parts(TINY_A);
    write_st(dir, "a.safetensors", s.header, s.data, s.data_size);
    write_st(dir, "b.safetensors", s.header, s.data, s.data_size);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"a.safetensors\","
               "\"model.embed_tokens.weight\": \"b.safetensors\"}}");
    expect_error(dir, "appears twice", NULL);
    free_parts(&s);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/q35_test_load_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_a),
        cmocka_unit_test(test_tiny_b_untied),
        cmocka_unit_test(test_unload_reload),
        cmocka_unit_test(test_nested_sharded),
        cmocka_unit_test(test_missing_dir_and_files),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_layer_types_win),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_bad_index),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    return rc;
}
