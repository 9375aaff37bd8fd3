/* test_gguf_write.c — the GGUF writer, checked through the reader:
 *  - every metadata setter writes a value the parser reads back with its
 *    type; setting a key again replaces it in place; remove, merge, and
 *    verbatim copies of a golden file's pairs (value bytes identical);
 *  - tensors of several types and ranks, data streamed in pieces, land
 *    aligned (32, or general.alignment) with their bytes intact;
 *  - misuse and failures (data past a tensor, tensors left unwritten, a
 *    missing or non-directory parent, a directory as destination, bad
 *    alignment, duplicate or malformed tensors, an abandoned write) fail
 *    with messages naming the file, and never leave a partial file or a
 *    temporary one behind, nor touch an existing destination. */
#include <dirent.h>
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

#include "formats/gguf.h"
#include "formats/gguf_quants.h"
#include "formats/gguf_write.h"

typedef struct tmpdir {
    char path[256];
} tmpdir;

static void tmpdir_make(tmpdir *d) {
    const char *base = getenv("TMPDIR");
    snprintf(d->path, sizeof d->path, "%s/q35-gguf-write-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(d->path));
}

/* Entries in the directory (. and .. excluded). */
static int tmpdir_count(const tmpdir *d) {
    DIR *dir = opendir(d->path);
    assert_non_null(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dir)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(dir);
    return n;
}

static void tmpdir_remove(tmpdir *d) {
    DIR *dir = opendir(d->path);
    assert_non_null(dir);
    struct dirent *de;
    char p[600];
    while ((de = readdir(dir))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", d->path, de->d_name);
        unlink(p);
    }
    closedir(dir);
    rmdir(d->path);
}

static void file_path(const tmpdir *d, const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", d->path, name);
}

/* ---------------------------------------------------------------- metadata */

static void test_kv_values_round_trip(void **state) {
    (void)state;
    tmpdir d;
    tmpdir_make(&d);
    q35_gguf_kvs l = {0};
    q35_err e = {0};
    const int32_t arr[] = {11, -11, 10, 0};
    const bool flags[] = {true, true, false};
    const char *strs[] = {"a", "", "Ġworld"};
    assert_int_equal(q35_gguf_kvs_set_u32(&l, "k.u32", 4000000000u, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_i32(&l, "k.i32", -7, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_u64(&l, "k.u64", 1ull << 40, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_f32(&l, "k.f32", 1e-6f, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_bool(&l, "k.bool", true, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_str(&l, "k.str", "first", &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_strn(&l, "k.nul", "a\0b", 3, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_arr_i32(&l, "k.ai32", arr, 4, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_arr_bool(&l, "k.abool", flags, 3, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_arr_str(&l, "k.astr", strs, NULL, 3, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_str(&l, "k.gone", "x", &e), Q35_OK);
    /* replaced in place, removed */
    assert_int_equal(q35_gguf_kvs_set_str(&l, "k.str", "second", &e), Q35_OK);
    q35_gguf_kvs_remove(&l, "k.gone");
    q35_gguf_kvs_remove(&l, "k.never");
    assert_int_equal(l.n, 10);
    assert_string_equal(l.items[5].key, "k.str");
    assert_null(q35_gguf_kvs_find(&l, "k.gone"));
    /* bad keys */
    assert_int_equal(q35_gguf_kvs_set_u32(&l, "", 1, &e), Q35_EINVAL);

    char path[600];
    file_path(&d, "kv.gguf", path, sizeof path);
    q35_gguf_writer w = {0};
    assert_int_equal(q35_gguf_writer_begin(&w, &l, path, &e), Q35_OK);
    uint64_t size = 0;
    assert_int_equal(q35_gguf_writer_finish(&w, &size, &e), Q35_OK);
    q35_gguf_writer_free(&w);

    q35_gguf g;
    assert_int_equal(q35_gguf_open(&g, path, &e), Q35_OK);
    assert_int_equal(g.size, size);
    assert_int_equal(g.n_kv, 10);
    assert_int_equal(g.n_tensors, 0);
    int64_t v;
    double f;
    bool b;
    q35_gguf_str s;
    assert_int_equal(q35_gguf_find(&g, "k.u32")->type, Q35_GGUF_U32);
    assert_int_equal(q35_gguf_get_int(&g, "k.u32", 0, INT64_MAX, &v, &e), Q35_OK);
    assert_int_equal(v, 4000000000);
    assert_int_equal(q35_gguf_find(&g, "k.i32")->type, Q35_GGUF_I32);
    assert_int_equal(q35_gguf_get_int(&g, "k.i32", INT64_MIN, INT64_MAX, &v, &e), Q35_OK);
    assert_int_equal(v, -7);
    assert_int_equal(q35_gguf_get_int(&g, "k.u64", 0, INT64_MAX, &v, &e), Q35_OK);
    assert_int_equal(v, 1ll << 40);
    assert_int_equal(q35_gguf_find(&g, "k.f32")->type, Q35_GGUF_F32);
    assert_int_equal(q35_gguf_get_float(&g, "k.f32", &f, &e), Q35_OK);
    assert_true((float)f == 1e-6f);
    assert_int_equal(q35_gguf_get_bool(&g, "k.bool", &b, &e), Q35_OK);
    assert_true(b);
    assert_int_equal(q35_gguf_get_str(&g, "k.str", &s, &e), Q35_OK);
    assert_true(q35_gguf_str_eq(s, "second"));
    assert_true(q35_gguf_str_eq(g.kvs[5].key, "k.str")); /* kept its place */
    assert_int_equal(q35_gguf_get_str(&g, "k.nul", &s, &e), Q35_OK);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.p, "a\0b", 3);
    const q35_gguf_kv *a = q35_gguf_find(&g, "k.ai32");
    assert_int_equal(a->arr_type, Q35_GGUF_I32);
    assert_int_equal(a->arr_n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(q35_gguf_arr_int(a, (uint64_t)i, &v, &e), Q35_OK);
        assert_int_equal(v, arr[i]);
    }
    a = q35_gguf_find(&g, "k.abool");
    assert_int_equal(a->arr_type, Q35_GGUF_BOOL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(q35_gguf_arr_int(a, (uint64_t)i, &v, &e), Q35_OK);
        assert_int_equal(v, flags[i]);
    }
    a = q35_gguf_find(&g, "k.astr");
    assert_int_equal(a->arr_type, Q35_GGUF_STRING);
    assert_int_equal(a->arr_n, 3);
    size_t cur = 0;
    for (int i = 0; i < 3; i++) {
        q35_gguf_arr_next_str(a, &cur, &s);
        assert_true(q35_gguf_str_eq(s, strs[i]));
    }
    q35_gguf_close(&g);
    q35_gguf_kvs_free(&l);
    tmpdir_remove(&d);
}

/* Every pair of a golden llama.cpp file, copied verbatim (set_parsed), then
 * merged into another list, is written back with identical value bytes. */
static void test_kv_verbatim_copy(void **state) {
    (void)state;
    tmpdir d;
    tmpdir_make(&d);
    q35_err e = {0};
    q35_gguf src;
    assert_int_equal(q35_gguf_open(&src, Q35_FIXTURES "/gguf/tiny-b-Q4_K_M.gguf", &e), Q35_OK);
    q35_gguf_kvs copy = {0}, merged = {0};
    for (int64_t i = 0; i < src.n_kv; i++)
        assert_int_equal(q35_gguf_kvs_set_parsed(&copy, &src.kvs[i], &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_str(&merged, "general.architecture", "placeholder", &e),
                     Q35_OK);
    assert_int_equal(q35_gguf_kvs_set_u32(&merged, "q35.extra", 1, &e), Q35_OK);
    assert_int_equal(q35_gguf_kvs_merge(&merged, &copy, &e), Q35_OK);
    assert_int_equal(merged.n, (size_t)src.n_kv + 1);
    char path[600];
    file_path(&d, "copy.gguf", path, sizeof path);
    q35_gguf_writer w = {0};
    assert_int_equal(q35_gguf_writer_begin(&w, &merged, path, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_finish(&w, NULL, &e), Q35_OK);
    q35_gguf_writer_free(&w);
    q35_gguf g;
    assert_int_equal(q35_gguf_open(&g, path, &e), Q35_OK);
    assert_int_equal(g.n_kv, src.n_kv + 1);
    for (int64_t i = 0; i < src.n_kv; i++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)src.kvs[i].key.len, src.kvs[i].key.p);
        const q35_gguf_kv *a = &src.kvs[i], *b = q35_gguf_find(&g, key);
        assert_non_null(b);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->arr_type, b->arr_type);
        assert_int_equal(a->arr_n, b->arr_n);
        assert_int_equal(a->val_bytes, b->val_bytes);
        assert_memory_equal(a->val, b->val, a->val_bytes);
    }
    q35_gguf_str s;
    assert_int_equal(q35_gguf_get_str(&g, "general.architecture", &s, &e), Q35_OK);
    assert_true(q35_gguf_str_eq(s, "qwen35"));
    assert_true(q35_gguf_str_eq(g.kvs[0].key, "general.architecture"));
    q35_gguf_close(&g);
    q35_gguf_close(&src);
    q35_gguf_kvs_free(&copy);
    q35_gguf_kvs_free(&merged);
    tmpdir_remove(&d);
}

/* ----------------------------------------------------------------- tensors */

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 131 + seed * 7) >> 1);
}

static void write_tensors(size_t align) {
    tmpdir d;
    tmpdir_make(&d);
    q35_err e = {0};
    q35_gguf_kvs l = {0};
    assert_int_equal(q35_gguf_kvs_set_str(&l, "general.architecture", "test", &e), Q35_OK);
    if (align != 32)
        assert_int_equal(q35_gguf_kvs_set_u32(&l, "general.alignment", (uint32_t)align, &e),
                         Q35_OK);
    q35_gguf_writer w = {0};
    const int64_t ne_a[] = {5}, ne_b[] = {64, 3}, ne_c[] = {2, 3, 4}, ne_d[] = {32, 2};
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "a", Q35_GGML_F32, 1, ne_a, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "b", Q35_GGML_Q8_0, 2, ne_b, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "c", Q35_GGML_BF16, 3, ne_c, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "d", Q35_GGML_Q4_0, 2, ne_d, &e), Q35_OK);
    const size_t sizes[] = {20, 2 * 3 * 34, 48, 2 * 18};
    unsigned char *data[4];
    for (int i = 0; i < 4; i++) {
        data[i] = malloc(sizes[i]);
        fill(data[i], sizes[i], (unsigned)i + 1);
        assert_int_equal(w.tensors[i].n_bytes, sizes[i]);
    }
    char path[600];
    file_path(&d, "t.gguf", path, sizeof path);
    assert_int_equal(q35_gguf_writer_begin(&w, &l, path, &e), Q35_OK);
    assert_int_equal(tmpdir_count(&d), 1); /* the temporary file only */
    assert_int_equal(access(path, F_OK), -1);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(q35_gguf_writer_next(&w)->name, w.tensors[i].name);
        /* in two pieces */
        size_t half = sizes[i] / 2;
        assert_int_equal(q35_gguf_writer_put(&w, data[i], half, &e), Q35_OK);
        assert_int_equal(q35_gguf_writer_put(&w, data[i] + half, sizes[i] - half, &e), Q35_OK);
    }
    assert_null(q35_gguf_writer_next(&w));
    uint64_t size;
    assert_int_equal(q35_gguf_writer_finish(&w, &size, &e), Q35_OK);
    q35_gguf_writer_free(&w);
    assert_int_equal(tmpdir_count(&d), 1);

    q35_gguf g;
    assert_int_equal(q35_gguf_open(&g, path, &e), Q35_OK);
    assert_int_equal(g.size, size);
    assert_int_equal(g.alignment, align);
    assert_int_equal(g.data_offset % align, 0);
    assert_int_equal(g.n_tensors, 4);
    const char *names[] = {"a", "b", "c", "d"};
    const uint32_t types[] = {Q35_GGML_F32, Q35_GGML_Q8_0, Q35_GGML_BF16, Q35_GGML_Q4_0};
    const int dims[] = {1, 2, 3, 2};
    for (int i = 0; i < 4; i++) {
        const q35_gguf_tensor *t = q35_gguf_find_tensor(&g, names[i]);
        assert_non_null(t);
        assert_int_equal(t->type, types[i]);
        assert_int_equal(t->n_dims, dims[i]);
        assert_int_equal(t->offset % align, 0);
        assert_int_equal(t->n_bytes, sizes[i]);
        assert_memory_equal(t->data, data[i], sizes[i]);
        free(data[i]);
    }
    assert_int_equal(q35_gguf_find_tensor(&g, "c")->ne[2], 4);
    /* the file ends padded after the last tensor, as ggml writes it */
    assert_int_equal(g.size % align, 0);
    q35_gguf_close(&g);
    q35_gguf_kvs_free(&l);
    tmpdir_remove(&d);
}

static void test_tensors_round_trip(void **state) {
    (void)state;
    write_tensors(32);
    write_tensors(64);
}

/* ------------------------------------------------------------------ errors */

static void test_declaration_errors(void **state) {
    (void)state;
    q35_err e = {0};
    q35_gguf_writer w = {0};
    const int64_t ok[] = {32, 2}, odd[] = {33, 2}, zero[] = {0};
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "x", Q35_GGML_Q8_0, 2, ok, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "x", Q35_GGML_F32, 2, ok, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "twice"));
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "y", Q35_GGML_Q4_0, 2, odd, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "blocks"));
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "z", Q35_GGML_F32, 1, zero, &e), Q35_EINVAL);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "z", 4, 1, ok, &e), Q35_EINVAL); /* removed */
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "z", Q35_GGML_F32, 5, ok, &e), Q35_EINVAL);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "", Q35_GGML_F32, 1, ok, &e), Q35_EINVAL);
    q35_gguf_writer_free(&w);
}

static void test_write_errors_leave_nothing(void **state) {
    (void)state;
    tmpdir d;
    tmpdir_make(&d);
    q35_err e = {0};
    char path[600], bad[700];
    file_path(&d, "out.gguf", path, sizeof path);
    const int64_t ne[] = {8};
    float x[8] = {0};

    /* data past the tensor */
    q35_gguf_writer w = {0};
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "v", Q35_GGML_F32, 1, ne, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_begin(&w, NULL, path, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_put(&w, x, 16, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_put(&w, x, 20, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(tmpdir_count(&d), 0);
    q35_gguf_writer_free(&w);

    /* tensors left unwritten */
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "v", Q35_GGML_F32, 1, ne, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "u", Q35_GGML_F32, 1, ne, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_begin(&w, NULL, path, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_put(&w, x, 32, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_finish(&w, NULL, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "tensor u"));
    assert_int_equal(tmpdir_count(&d), 0);
    q35_gguf_writer_free(&w);

    /* an existing destination survives an abandoned write untouched */
    FILE *f = fopen(path, "wb");
    fputs("keep", f);
    fclose(f);
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "v", Q35_GGML_F32, 1, ne, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_begin(&w, NULL, path, &e), Q35_OK);
    assert_int_equal(tmpdir_count(&d), 2);
    q35_gguf_writer_free(&w); /* abandoned */
    assert_int_equal(tmpdir_count(&d), 1);
    char buf[8] = {0};
    f = fopen(path, "rb");
    assert_int_equal(fread(buf, 1, sizeof buf, f), 4);
    fclose(f);
    assert_string_equal(buf, "keep");
    /* ... and is replaced by a completed one */
    assert_int_equal(q35_gguf_writer_add_tensor(&w, "v", Q35_GGML_F32, 1, ne, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_begin(&w, NULL, path, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_put(&w, x, 32, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_finish(&w, NULL, &e), Q35_OK);
    q35_gguf_writer_free(&w);
    q35_gguf g;
    assert_int_equal(q35_gguf_open(&g, path, &e), Q35_OK);
    assert_int_equal(g.n_tensors, 1);
    q35_gguf_close(&g);
    assert_int_equal(tmpdir_count(&d), 1);

    /* a missing directory; a regular file as the directory; a directory
     * as the destination */
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.gguf", d.path);
    assert_int_equal(q35_gguf_writer_begin(&w, NULL, bad, &e), Q35_EIO);
    assert_non_null(strstr(e.msg, bad));
    q35_gguf_writer_free(&w);
    snprintf(bad, sizeof bad, "%s/x.gguf", path);
    assert_int_equal(q35_gguf_writer_begin(&w, NULL, bad, &e), Q35_EIO);
    assert_non_null(strstr(e.msg, bad));
    q35_gguf_writer_free(&w);
    assert_int_equal(q35_gguf_writer_begin(&w, NULL, d.path, &e), Q35_EIO);
    assert_non_null(strstr(e.msg, "directory"));
    q35_gguf_writer_free(&w);

    /* an alignment that is not a power of two */
    q35_gguf_kvs l = {0};
    assert_int_equal(q35_gguf_kvs_set_u32(&l, "general.alignment", 48, &e), Q35_OK);
    assert_int_equal(q35_gguf_writer_begin(&w, &l, path, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "general.alignment"));
    q35_gguf_writer_free(&w);
    q35_gguf_kvs_free(&l);
    assert_int_equal(tmpdir_count(&d), 1);

    /* put / finish without begin */
    assert_int_equal(q35_gguf_writer_put(&w, x, 4, &e), Q35_EINVAL);
    assert_int_equal(q35_gguf_writer_finish(&w, NULL, &e), Q35_EINVAL);
    q35_gguf_writer_free(&w);
    tmpdir_remove(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_values_round_trip),
        cmocka_unit_test(test_kv_verbatim_copy),
        cmocka_unit_test(test_tensors_round_trip),
        cmocka_unit_test(test_declaration_errors),
        cmocka_unit_test(test_write_errors_leave_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
