/* test_gguf.c — the GGUF parser: golden files from llama.cpp parse with the
 * facts llama.cpp wrote into them; hand-built images exercise every value
 * type and getter; malformed images (bad magic, versions, counts past the
 * end, huge strings, unknown types, misaligned / out-of-file / overlapping
 * data, overflowing dims, duplicates, every truncation) each fail with a
 * clear message naming the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "formats/gguf.h"
#include "formats/gguf_builder.h"
#include "formats/gguf_quants.h"

#define GOLDEN_GGUF Q35_FIXTURES "/gguf/"

/* ------------------------------------------------------------ golden files */

static void test_golden_tiny_a(void **state) {
    (void)state;
    q35_gguf g;
    q35_err e = {0};
    assert_int_equal(q35_gguf_open(&g, GOLDEN_GGUF "tiny-a-bf16.gguf", &e), Q35_OK);
    assert_int_equal(g.version, 3);
    assert_int_equal(g.n_tensors, 55);
    assert_int_equal(g.alignment, 32);
    assert_int_equal(g.data_offset % 32, 0);

    q35_gguf_str s;
    assert_int_equal(q35_gguf_get_str(&g, "general.architecture", &s, &e), Q35_OK);
    assert_true(q35_gguf_str_eq(s, "qwen35"));
    int64_t v;
    assert_int_equal(q35_gguf_get_int(&g, "qwen35.block_count", 0, 1000, &v, &e), Q35_OK);
    assert_int_equal(v, 4);
    assert_int_equal(q35_gguf_get_int(&g, "qwen35.ssm.inner_size", 0, 1000, &v, &e), Q35_OK);
    assert_int_equal(v, 96);
    double f;
    assert_int_equal(q35_gguf_get_float(&g, "qwen35.rope.freq_base", &f, &e), Q35_OK);
    assert_true(f == 1e7);

    const q35_gguf_kv *rec = q35_gguf_find(&g, "qwen35.attention.recurrent_layers");
    assert_non_null(rec);
    assert_int_equal(rec->arr_type, Q35_GGUF_BOOL);
    assert_int_equal(rec->arr_n, 4);
    int64_t b3;
    assert_int_equal(q35_gguf_arr_int(rec, 3, &b3, &e), Q35_OK);
    assert_int_equal(b3, 0);
    assert_int_equal(q35_gguf_arr_int(rec, 0, &b3, &e), Q35_OK);
    assert_int_equal(b3, 1);
    assert_int_not_equal(q35_gguf_arr_int(rec, 4, &b3, &e), Q35_OK); /* past the end */

    const q35_gguf_kv *toks = q35_gguf_find(&g, "tokenizer.ggml.tokens");
    assert_non_null(toks);
    assert_int_equal(toks->arr_type, Q35_GGUF_STRING);
    assert_int_equal(toks->arr_n, 512);
    size_t cur = 0;
    q35_gguf_str t0, t1;
    q35_gguf_arr_next_str(toks, &cur, &t0);
    q35_gguf_arr_next_str(toks, &cur, &t1);
    assert_true(q35_gguf_str_eq(t0, "!"));
    assert_true(q35_gguf_str_eq(t1, "\""));

    const q35_gguf_tensor *emb = q35_gguf_find_tensor(&g, "token_embd.weight");
    assert_non_null(emb);
    assert_int_equal(emb->type, Q35_GGML_BF16);
    assert_int_equal(emb->ne[0], 64);
    assert_int_equal(emb->ne[1], 512);
    assert_int_equal(emb->n_bytes, 64 * 512 * 2);
    assert_ptr_equal(emb->data, g.base + g.data_offset + emb->offset);
    const q35_gguf_tensor *conv = q35_gguf_find_tensor(&g, "blk.2.ssm_conv1d.weight");
    assert_non_null(conv);
    assert_int_equal(conv->type, Q35_GGML_F32);
    assert_null(q35_gguf_find_tensor(&g, "blk.3.ssm_a")); /* layer 3 is attention */
    assert_null(q35_gguf_find(&g, "no.such.key"));
    assert_int_equal(q35_gguf_get_int(&g, "no.such.key", 0, 1, &v, &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no.such.key"));
    /* wrong-type getters name the key and the types */
    assert_int_equal(q35_gguf_get_int(&g, "general.architecture", 0, 1, &v, &e), Q35_EFORMAT);
    assert_non_null(strstr(e.msg, "general.architecture"));
    assert_int_equal(q35_gguf_get_int(&g, "qwen35.block_count", 0, 3, &v, &e), Q35_EFORMAT);
    assert_non_null(strstr(e.msg, "outside"));
    q35_gguf_close(&g);
}

static void test_golden_all_parse(void **state) {
    (void)state;
    static const char *const files[] = {
        "tiny-a-Q4_0.gguf",   "tiny-a-Q8_0.gguf", "tiny-a-bf16.gguf", "tiny-b-Q4_0.gguf",
        "tiny-b-Q4_K_M.gguf", "tiny-b-Q8_0.gguf", "tiny-b-bf16.gguf",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", GOLDEN_GGUF, files[i]);
        q35_gguf g;
        q35_err e = {0};
        int rc = q35_gguf_open(&g, path, &e);
        if (rc) fprintf(stderr, "%s: %s\n", files[i], e.msg);
        assert_int_equal(rc, Q35_OK);
        /* every tensor lies inside the file, whatever its type */
        for (int64_t t = 0; t < g.n_tensors; t++) {
            const q35_gguf_tensor *x = &g.tensors[t];
            assert_true(x->data >= g.base + g.data_offset);
            assert_true(x->data + x->n_bytes <= g.base + g.size);
        }
        q35_gguf_close(&g);
    }
}

/* --------------------------------------------------- a small valid image */

/* Two tensors ("a": 32 F32, "b": 2 rows of 32 Q8_0) and five keys. */
static void build_valid(gguf_buf *b) {
    gb_header(b, 3, 2, 5);
    gb_kv_str(b, "general.architecture", "test");
    gb_kv_u32(b, "general.alignment", 32);
    gb_str(b, "test.ints");
    gb_u32(b, GB_ARRAY);
    gb_u32(b, GB_I32);
    gb_u64(b, 3);
    gb_u32(b, 1);
    gb_u32(b, (uint32_t)-2);
    gb_u32(b, 3);
    gb_str(b, "test.strs");
    gb_u32(b, GB_ARRAY);
    gb_u32(b, GB_STRING);
    gb_u64(b, 2);
    gb_str(b, "a");
    gb_str(b, "bc");
    gb_str(b, "test.flag");
    gb_u32(b, GB_BOOL);
    gb_u8(b, 1);
    uint64_t ne_a[1] = {32}, ne_b[2] = {32, 2};
    gb_tensor(b, "a", 1, ne_a, Q35_GGML_F32, 0);
    gb_tensor(b, "b", 2, ne_b, Q35_GGML_Q8_0, 128);
    gb_pad(b, 32);
    for (int i = 0; i < 32; i++)
        gb_f32(b, (float)i);
    for (int i = 0; i < 68; i++)
        gb_u8(b, (uint8_t)i);
}

static void test_valid_image(void **state) {
    (void)state;
    gguf_buf b = {0};
    build_valid(&b);
    q35_gguf g;
    q35_err e = {0};
    assert_int_equal(q35_gguf_parse(&g, b.p, b.n, "mem", &e), Q35_OK);
    assert_int_equal(g.n_kv, 5);
    assert_int_equal(g.n_tensors, 2);
    const q35_gguf_kv *ints = q35_gguf_find(&g, "test.ints");
    int64_t v;
    assert_int_equal(q35_gguf_arr_int(ints, 1, &v, &e), Q35_OK);
    assert_int_equal(v, -2);
    double f;
    assert_int_equal(q35_gguf_arr_float(ints, 2, &f, &e), Q35_OK);
    assert_true(f == 3.0);
    bool flag = false;
    assert_int_equal(q35_gguf_get_bool(&g, "test.flag", &flag, &e), Q35_OK);
    assert_true(flag);
    const q35_gguf_kv *strs = q35_gguf_find(&g, "test.strs");
    size_t cur = 0;
    q35_gguf_str s;
    q35_gguf_arr_next_str(strs, &cur, &s);
    q35_gguf_arr_next_str(strs, &cur, &s);
    assert_true(q35_gguf_str_eq(s, "bc"));
    const q35_gguf_tensor *tb = q35_gguf_find_tensor(&g, "b");
    assert_int_equal(tb->n_bytes, 68);
    assert_int_equal(tb->n_elems, 64);
    float a5;
    memcpy(&a5, q35_gguf_find_tensor(&g, "a")->data + 20, 4);
    assert_true(a5 == 5.0f);
    q35_gguf_close(&g);
    gb_free(&b);
}

/* Every proper prefix of a valid image is an error, never a crash. */
static void test_every_truncation(void **state) {
    (void)state;
    gguf_buf b = {0};
    build_valid(&b);
    for (size_t n = 0; n < b.n; n++) {
        unsigned char *copy = malloc(n ? n : 1); /* exact size: ASan sees overreads */
        memcpy(copy, b.p, n);
        q35_gguf g;
        q35_err e = {0};
        int rc = q35_gguf_parse(&g, copy, n, "cut", &e);
        assert_int_equal(rc, Q35_EFORMAT);
        assert_true(strlen(e.msg) > 10);
        free(copy);
    }
    gb_free(&b);
}

/* ---------------------------------------------------- malformed images */

/* Parses b and checks for a format error whose message holds `want`. */
static void expect_error(gguf_buf *b, const char *want) {
    unsigned char *copy = malloc(b->n ? b->n : 1);
    memcpy(copy, b->p, b->n);
    q35_gguf g;
    q35_err e = {0};
    int rc = q35_gguf_parse(&g, copy, b->n, "bad.gguf", &e);
    if (rc == Q35_OK || !strstr(e.msg, want))
        fprintf(stderr, "expected an error with \"%s\", got rc %d: %s\n", want, rc, e.msg);
    assert_int_equal(rc, Q35_EFORMAT);
    assert_non_null(strstr(e.msg, want));
    assert_non_null(strstr(e.msg, "bad.gguf"));
    free(copy);
    gb_free(b);
}

static void test_bad_header(void **state) {
    (void)state;
    gguf_buf b = {0};
    build_valid(&b);
    memcpy(b.p, "GGML", 4);
    expect_error(&b, "bad magic");

    gb_header(&b, 1, 0, 0);
    expect_error(&b, "version 1");
    gb_header(&b, 7, 0, 0);
    expect_error(&b, "unknown GGUF version 7");
    gb_header(&b, 0x03000000u, 0, 0);
    expect_error(&b, "big-endian");
    gb_bytes(&b, "GGUF\3\0\0\0", 8);
    expect_error(&b, "too short");
    /* counts that cannot fit in the file */
    gb_header(&b, 3, 0, 1000000);
    expect_error(&b, "metadata count 1000000");
    gb_header(&b, 3, UINT64_MAX, 0);
    expect_error(&b, "tensor count");
    gb_header(&b, 3, 0, UINT64_MAX);
    expect_error(&b, "metadata count");
}

static void test_bad_values(void **state) {
    (void)state;
    gguf_buf b = {0};
    /* a key whose length runs past the end */
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, UINT64_MAX);
    gb_bytes(&b, "xxxxxxxxxxxxxxxxxxxxxxxx", 24);
    expect_error(&b, "length 18446744073709551615");
    /* a string value whose length runs past the end (huge string) */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "big.string");
    gb_u32(&b, GB_STRING);
    gb_u64(&b, (uint64_t)1 << 40);
    gb_bytes(&b, "abc", 3);
    expect_error(&b, "big.string");
    /* unknown value type */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "odd.type");
    gb_u32(&b, 99);
    gb_u32(&b, 0);
    expect_error(&b, "unknown value type 99");
    /* bool that is neither 0 nor 1 */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "odd.bool");
    gb_u32(&b, GB_BOOL);
    gb_u8(&b, 2);
    gb_bytes(&b, "padding.", 8);
    expect_error(&b, "not a bool");
    /* array of an unknown type */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "odd.arr");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, 42);
    gb_u64(&b, 1);
    gb_u32(&b, 0);
    expect_error(&b, "unknown element type 42");
    /* array of arrays */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "nested.arr");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, GB_ARRAY);
    gb_u64(&b, 1);
    gb_u32(&b, GB_U8);
    gb_u64(&b, 0);
    expect_error(&b, "holds arrays");
    /* array whose element count cannot fit */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "long.arr");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, GB_U32);
    gb_u64(&b, (uint64_t)1 << 62);
    gb_u32(&b, 0);
    expect_error(&b, "long.arr");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "many.strings");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, GB_STRING);
    gb_u64(&b, 1000);
    gb_str(&b, "one");
    expect_error(&b, "many.strings");
    /* a string element that runs past the end */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "cut.strings");
    gb_u32(&b, GB_ARRAY);
    gb_u32(&b, GB_STRING);
    gb_u64(&b, 2);
    gb_str(&b, "one");
    gb_u64(&b, 100);
    gb_bytes(&b, "two", 3);
    expect_error(&b, "element 1");
    /* the same key twice */
    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "dup.key", 1);
    gb_kv_u32(&b, "dup.key", 2);
    expect_error(&b, "dup.key appears twice");
    /* alignment: not a power of two, zero, wrong type */
    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "general.alignment", 48);
    expect_error(&b, "not a power of two");
    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "general.alignment", 0);
    expect_error(&b, "general.alignment");
    gb_header(&b, 3, 0, 1);
    gb_kv_str(&b, "general.alignment", "32");
    expect_error(&b, "expected an integer");
}

/* One tensor with the given fields after a minimal header, then `data`
 * bytes of data. */
static void one_tensor(gguf_buf *b, const char *name, int n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data) {
    gb_header(b, 3, 1, 0);
    gb_tensor(b, name, n_dims, ne, type, offset);
    gb_pad(b, 32);
    for (size_t i = 0; i < data; i++)
        gb_u8(b, 0);
}

static void test_bad_tensors(void **state) {
    (void)state;
    gguf_buf b = {0};
    uint64_t ne32[1] = {32};
    one_tensor(&b, "w", 1, ne32, 4, 0, 256); /* type 4 was retired by ggml */
    expect_error(&b, "tensor w: unknown ggml type 4");
    one_tensor(&b, "w", 1, ne32, 77, 0, 256);
    expect_error(&b, "unknown ggml type 77");
    one_tensor(&b, "w", 0, ne32, Q35_GGML_F32, 0, 256);
    expect_error(&b, "0 dimensions");
    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    one_tensor(&b, "w", 5, ne5, Q35_GGML_F32, 0, 256);
    expect_error(&b, "5 dimensions");
    uint64_t ne_zero[2] = {32, 0};
    one_tensor(&b, "w", 2, ne_zero, Q35_GGML_F32, 0, 256);
    expect_error(&b, "dimension 1 is 0");
    uint64_t ne_neg[1] = {UINT64_MAX};
    one_tensor(&b, "w", 1, ne_neg, Q35_GGML_F32, 0, 256);
    expect_error(&b, "dimension 0 is 18446744073709551615");
    uint64_t ne_big[3] = {1u << 22, 1u << 22, 1u << 22};
    one_tensor(&b, "w", 3, ne_big, Q35_GGML_F32, 0, 256);
    expect_error(&b, "overflows 64 bits");
    uint64_t ne_bytes[2] = {(uint64_t)1 << 31, (uint64_t)1 << 31};
    one_tensor(&b, "w", 2, ne_bytes, Q35_GGML_F32, 0, 256);
    expect_error(&b, "byte size overflows");
    uint64_t ne33[1] = {33};
    one_tensor(&b, "w", 1, ne33, Q35_GGML_Q4_0, 0, 256);
    expect_error(&b, "not a multiple of the Q4_0 block size 32");
    one_tensor(&b, "w", 1, ne32, Q35_GGML_F32, 4, 256);
    expect_error(&b, "not a multiple of the alignment 32");
    one_tensor(&b, "w", 1, ne32, Q35_GGML_F32, 0, 127);
    expect_error(&b, "runs past the end");
    one_tensor(&b, "w", 1, ne32, Q35_GGML_F32, (uint64_t)1 << 63, 256);
    expect_error(&b, "runs past the end");
    one_tensor(&b, "", 1, ne32, Q35_GGML_F32, 0, 128);
    expect_error(&b, "name length 0");
    char long_name[400];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    one_tensor(&b, long_name, 1, ne32, Q35_GGML_F32, 0, 128);
    expect_error(&b, "name length 399");
    /* overlap and duplicates need two tensors */
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "first", 1, ne32, Q35_GGML_F32, 0);
    gb_tensor(&b, "second", 1, ne32, Q35_GGML_F32, 96);
    gb_pad(&b, 32);
    for (int i = 0; i < 256; i++)
        gb_u8(&b, 0);
    expect_error(&b, "overlap");
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "same", 1, ne32, Q35_GGML_F32, 0);
    gb_tensor(&b, "same", 1, ne32, Q35_GGML_F32, 128);
    gb_pad(&b, 32);
    for (int i = 0; i < 256; i++)
        gb_u8(&b, 0);
    expect_error(&b, "tensor same appears twice");
    /* a tensor count that fits the file but not what is left after the
     * metadata */
    gb_header(&b, 3, 3, 1);
    gb_kv_str(&b, "general.name",
              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    expect_error(&b, "tensor count 3");
}

/* A name with bytes that are not printable is escaped in messages. */
static void test_unprintable_names_are_escaped(void **state) {
    (void)state;
    gguf_buf b = {0};
    uint64_t ne32[1] = {32};
    one_tensor(&b, "w\x1b[31m", 1, ne32, 99, 0, 128);
    unsigned char *copy = malloc(b.n);
    memcpy(copy, b.p, b.n);
    q35_gguf g;
    q35_err e = {0};
    assert_int_equal(q35_gguf_parse(&g, copy, b.n, "x", &e), Q35_EFORMAT);
    assert_non_null(strstr(e.msg, "w\\x1b[31m"));
    assert_null(strchr(e.msg, 0x1b));
    free(copy);
    gb_free(&b);
}

static void test_open_errors(void **state) {
    (void)state;
    q35_gguf g;
    q35_err e = {0};
    assert_int_equal(q35_gguf_open(&g, "/nonexistent/model.gguf", &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent/model.gguf"));
    /* an empty file */
    char path[] = "/tmp/q35_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(q35_gguf_open(&g, path, &e), Q35_EFORMAT);
    assert_non_null(strstr(e.msg, "too short"));
    close(fd);
    unlink(path);
    q35_gguf_close(&g); /* safe on a closed struct */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_tiny_a), cmocka_unit_test(test_golden_all_parse),
        cmocka_unit_test(test_valid_image),   cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_bad_header),    cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_tensors),   cmocka_unit_test(test_unprintable_names_are_escaped),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
