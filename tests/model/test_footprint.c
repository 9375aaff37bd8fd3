/* test_footprint.c — q35_model_memory_footprint counts what the model
 * holds: heap buffers plus the mapped files minus the pages of tensors that
 * were converted and dropped (issue 10, point 6).
 *   - A bf16 checkpoint converted to Q8_0 at load whose down_proj cannot be
 *     converted (its input size, 144, is not a multiple of 32) keeps its
 *     file mapped for that matrix: the footprint is the converted buffers
 *     plus what still points into the file (down_proj, norms, conv taps,
 *     the header), not the whole file.
 *   - An MLX 4-bit checkpoint is computed in place: its footprint is its
 *     file plus small vectors (norms, the matrix descriptors), about the
 *     file size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "model/model.h"

static char tmpdir[256];

static size_t file_size(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (size_t)st.st_size;
}

/* Bytes of the model's matrices that point into its mapped files. */
static size_t in_file_bytes(q35_model *m) {
    q35_tensor *mats[Q35_MAX_MATRICES];
    int n = q35_model_matrices(m, mats, NULL);
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        for (int f = 0; f < m->n_files; f++) {
            const unsigned char *b = m->files[f].data, *p = mats[i]->data;
            if (p >= b && p < b + m->files[f].size) bytes += q35_tensor_bytes(mats[i]);
        }
    return bytes;
}

static void test_converted_pages_not_counted(void **st) {
    (void)st;
    char cmd[1024], src[300];
    snprintf(src, sizeof src, "%s/src", tmpdir);
    snprintf(cmd, sizeof cmd,
             "%s %s/../tools/make_mlx.py %s %s/q %s/d --bits 4 --group 64 --random 5 "
             "--intermediate 144",
             Q35_PYTHON, Q35_TEST_DATA, src, tmpdir, tmpdir);
    assert_int_equal(system(cmd), 0);
    q35_err e = {0};
    q35_load_opts o = {.n_threads = 1, .weights = Q35_WEIGHTS_Q8_0};
    q35_model *m = q35_model_load(src, &o, &e);
    if (!m) fail_msg("%s", e.msg);
    assert_int_equal(m->n_files, 1); /* down_proj stayed in the file */
    assert_int_equal(m->layers[0].w_down.dtype, Q35_DT_BF16);
    /* (or its 16-row form, kernels/repack_x16.h, where the CPU's kernels read that) */
    assert_int_equal(q35_dtype_x16_base(m->layers[0].w_gate.dtype), Q35_DT_Q8_0);
    size_t fp = q35_model_memory_footprint(m), fsz = file_size(src), kept = in_file_bytes(m);
    size_t mapped = fp - m->owned_bytes;
    printf("    file %zu, held in it %zu (matrices %zu), owned %zu\n", fsz, mapped, kept,
           m->owned_bytes);
    assert_true(mapped >= kept);
    /* the rest of what the file holds (norms, conv taps, gates, header) is
     * a few KB here; the converted matrices were most of the file */
    assert_true(mapped <= kept + 32 * 1024);
    assert_true(mapped < fsz / 2);
    q35_model_free(m);
}

static void test_mlx_in_place_about_file_size(void **st) {
    (void)st;
    char q[300];
    snprintf(q, sizeof q, "%s/q", tmpdir);
    q35_err e = {0};
    q35_model *m = q35_model_load(q, NULL, &e);
    if (!m) fail_msg("%s", e.msg);
    assert_true(q35_dtype_is_mlx(m->embed.dtype));
    size_t fp = q35_model_memory_footprint(m), fsz = file_size(q);
    printf("    MLX 4-bit: footprint %zu, file %zu\n", fp, fsz);
    assert_true(fp >= fsz);
    assert_true(fp <= fsz + fsz / 20); /* small vectors and descriptors only */
    q35_model_free(m);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/q35_test_footprint_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_converted_pages_not_counted),
        cmocka_unit_test(test_mlx_in_place_about_file_size),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    return rc;
}
