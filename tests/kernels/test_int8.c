/* test_int8.c — the integer matmul path (kernels/microkernel.h) of every
 * set this machine runs against the plain C definitions:
 *  - quantizers: the same q8 bytes as the reference, for every set;
 *  - the integer part: with every scale 1 all float steps are exact
 *    integers (the tests keep every sum below 2^24), so each set must give
 *    the generic result bit for bit — over row counts 1..13 (every edge of
 *    the register tiles), 1..9 tokens and several widths;
 *  - realistic scales: within float32 rounding of the definition (the
 *    float steps may be ordered differently, microkernel.h): |fast - ref|
 *    <= 2e-5 * sum |w| |x|, a bound that float32 summation of the <= 112
 *    block terms meets with room (112 * 2^-24 ~ 7e-6 in the worst case);
 *  - the driver: any split of the rows (threads) gives the same bits, and
 *    q35_matmul on a set's integer twin equals the driver on its q8 rows;
 *  - the activation error of the q8 rows is what 8 bits per block allow. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/half.h"
#include "kernels/int8_amx.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"

#define INT8_TEST_SEED 0x243f6a8885a308d3ull
#include "int8_test_data.h"

static const q35_i8_kernels *sets[8];
static int n_sets;

static int setup(void **st) {
    (void)st;
    n_sets = 0;
    sets[n_sets++] = q35_i8_kernels_generic();
    if (q35_i8_kernels_avx2()) sets[n_sets++] = q35_i8_kernels_avx2();
    if (q35_i8_kernels_avx512vnni()) sets[n_sets++] = q35_i8_kernels_avx512vnni();
    if (q35_i8_kernels_avxvnni()) sets[n_sets++] = q35_i8_kernels_avxvnni();
    if (q35_i8_kernels_neon()) sets[n_sets++] = q35_i8_kernels_neon();
    for (int i = 0; i < n_sets; i++)
        printf("integer set: %s\n", sets[i]->name);
    return 0;
}

static const q35_dtype formats[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K, Q35_DT_Q6_K};

static void test_quantize_bytes(void **st) {
    (void)st;
    const int64_t widths[] = {32, 64, 96, 256, 1024};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
        int64_t cols = widths[wi];
        int T = 5;
        float *x = malloc((size_t)T * cols * sizeof *x);
        assert_non_null(x);
        for (int64_t i = 0; i < T * cols; i++)
            x[i] = frand() * (i % 97 < 5 ? 30.0f : 1.0f);
        for (int64_t i = 0; i < 32 && i < cols; i++) /* a zero block */
            x[i] = 0;
        x[cols + 3] = 1e-30f; /* a tiny one */
        size_t bytes = (size_t)T * q35_q8_row_stride(cols);
        uint8_t *ref = aligned_alloc(64, bytes), *got = aligned_alloc(64, bytes);
        assert_non_null(ref);
        assert_non_null(got);
        memset(ref, 0, bytes);
        q35_q8_quantize_ref(x, cols, T, cols, ref);
        for (int s = 0; s < n_sets; s++) {
            memset(got, 0, bytes);
            sets[s]->quantize(x, cols, T, cols, got);
            for (int t = 0; t < T; t++) {
                size_t used = (size_t)cols + (size_t)cols / 8 + (size_t)cols / 8;
                size_t off = (size_t)t * q35_q8_row_stride(cols);
                if (memcmp(ref + off, got + off, used) != 0) {
                    printf("%s: quantized bytes differ (cols %lld, row %d)\n", sets[s]->name,
                           (long long)cols, t);
                    fail();
                }
            }
        }
        /* the definition's error bound: |x - d q| <= d / 2 per element */
        for (int t = 0; t < T; t++) {
            const uint8_t *row = ref + (size_t)t * q35_q8_row_stride(cols);
            const float *d = q35_q8_row_d(row, cols);
            for (int64_t j = 0; j < cols; j++) {
                float v = d[j / 32] * (float)(int8_t)row[j];
                assert_true(fabsf(v - x[t * cols + j]) <= d[j / 32] * 0.5001f + 1e-37f);
            }
        }
        free(x);
        free(ref);
        free(got);
    }
}

static void test_integer_part_exact(void **st) {
    (void)st;
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        q35_dtype dt = formats[f];
        int kq = dt == Q35_DT_Q4_K || dt == Q35_DT_Q6_K;
        const int64_t widths[] = {32, 160, 512, 256, 512};
        for (int wi = kq ? 3 : 0; wi < (kq ? 5 : 3); wi++) {
            int64_t cols = widths[wi];
            for (int rows = 1; rows <= 13; rows += 3) {
                for (int T = 1; T <= 9; T += 2) {
                    uint8_t *w = make_w(dt, rows, cols, 1);
                    uint8_t *x = make_unit_q8(T, cols, kq ? 15 : 127);
                    q35_tensor wt = {dt, 2, {rows, cols}, w};
                    size_t ldx = q35_q8_row_stride(cols);
                    float *ref = malloc((size_t)T * rows * sizeof *ref);
                    float *got = malloc((size_t)T * rows * sizeof *got);
                    assert_non_null(ref);
                    assert_non_null(got);
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < rows; o++)
                            ref[t * rows + o] = q35_i8_dot_ref(
                                dt, w + (size_t)o * q35_row_bytes(dt, cols), x + t * ldx, cols);
                    for (int s = 0; s < n_sets; s++) {
                        if (!sets[s]->mk[dt].fn) continue;
                        memset(got, 0xff, (size_t)T * rows * sizeof *got);
                        q35_i8_matmul(sets[s], &wt, x, ldx, T, got, rows, 0, rows);
                        for (int i = 0; i < T * rows; i++)
                            if (got[i] != ref[i]) {
                                printf("%s %s rows %d T %d cols %lld: [%d] %.1f vs %.1f\n",
                                       sets[s]->name, q35_dtype_name(dt), rows, T, (long long)cols,
                                       i, got[i], ref[i]);
                                fail();
                            }
                    }
                    free(ref);
                    free(got);
                    free(w);
                    free(x);
                }
            }
        }
    }
}

/* Realistic scales and activations: each set within float32 rounding of
 * the definition; any row split gives the same bits. */
static void test_realistic_and_splits(void **st) {
    (void)st;
    const int64_t widths[] = {256, 1024, 3584};
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        q35_dtype dt = formats[f];
        for (int wi = 0; wi < 3; wi++) {
            int64_t cols = widths[wi];
            int rows = wi == 2 ? 21 : 50, T = wi == 2 ? 3 : 7;
            uint8_t *w = make_w(dt, rows, cols, 0);
            float *xf = malloc((size_t)T * cols * sizeof *xf);
            float *wf = malloc((size_t)cols * sizeof *wf);
            assert_non_null(xf);
            assert_non_null(wf);
            for (int64_t i = 0; i < T * cols; i++)
                xf[i] = frand() * (i % 61 == 0 ? 20.0f : 1.0f);
            size_t ldx = q35_q8_row_stride(cols);
            uint8_t *x = aligned_alloc(64, (size_t)T * ldx);
            assert_non_null(x);
            q35_q8_quantize_ref(xf, cols, T, cols, x);
            q35_tensor wt = {dt, 2, {rows, cols}, w};
            float *ref = malloc((size_t)T * rows * sizeof *ref);
            float *got = malloc((size_t)T * rows * sizeof *got);
            float *split = malloc((size_t)T * rows * sizeof *split);
            double *mag = malloc((size_t)T * rows * sizeof *mag);
            assert_true(ref && got && split && mag);
            for (int o = 0; o < rows; o++) {
                q35_tensor_row_f32(&wt, o, wf);
                for (int t = 0; t < T; t++) {
                    double m = 0;
                    for (int64_t j = 0; j < cols; j++)
                        m += fabs((double)wf[j] * xf[t * cols + j]);
                    mag[t * rows + o] = m;
                    ref[t * rows + o] = q35_i8_dot_ref(dt, w + (size_t)o * q35_row_bytes(dt, cols),
                                                       x + t * ldx, cols);
                }
            }
            for (int s = 0; s < n_sets; s++) {
                if (!sets[s]->mk[dt].fn) continue;
                q35_i8_matmul(sets[s], &wt, x, ldx, T, got, rows, 0, rows);
                for (int i = 0; i < T * rows; i++)
                    if (!(fabs((double)got[i] - ref[i]) <= 2e-5 * mag[i])) {
                        printf("%s %s cols %lld: [%d] %g vs %g (scale %g)\n", sets[s]->name,
                               q35_dtype_name(dt), (long long)cols, i, got[i], ref[i], mag[i]);
                        fail();
                    }
                /* splits as threads would make them, at odd row counts */
                const int cuts[] = {1, 5, 13, 48};
                for (int ci = 0; ci < 4; ci++) {
                    int cut = cuts[ci] < rows ? cuts[ci] : rows - 1;
                    q35_i8_matmul(sets[s], &wt, x, ldx, T, split, rows, 0, cut);
                    q35_i8_matmul(sets[s], &wt, x, ldx, T, split, rows, cut, rows);
                    assert_memory_equal(split, got, (size_t)T * rows * sizeof *got);
                }
            }
            free(w);
            free(xf);
            free(wf);
            free(x);
            free(ref);
            free(got);
            free(split);
            free(mag);
        }
    }
}

/* q35_matmul on a float set's integer twin = the driver on the q8 rows that
 * q35_acts_prepare made, for quantized weights; the exact sets make none. */
static void test_twins(void **st) {
    (void)st;
    const q35_kernels *floats[] = {q35_kernels_generic(), q35_kernels_avx2(), q35_kernels_avx512(),
                                   q35_kernels_amx()};
    int64_t cols = 512;
    int rows = 97;
    for (int T = 1; T <= 20; T += 19) {
        float *x = malloc((size_t)T * cols * sizeof *x);
        float *y = malloc((size_t)T * rows * sizeof *y),
              *y2 = malloc((size_t)T * rows * sizeof *y2);
        assert_true(x && y && y2);
        for (int64_t i = 0; i < T * cols; i++)
            x[i] = frand();
        for (int fi = 0; fi < 4; fi++) {
            const q35_kernels *k = floats[fi];
            if (!k) continue;
            assert_null(k->i8);
            const q35_kernels *k8 = q35_kernels_int8(k);
            assert_string_equal(k8->name, k->name);
            if (!k8->i8) continue;
            size_t nb = q35_acts_bytes(k8, T, cols);
            void *buf = aligned_alloc(64, (nb + 63) / 64 * 64);
            assert_non_null(buf);
            q35_acts a = q35_acts_prepare(k8, x, cols, T, cols, buf);
            assert_non_null(a.q8);
            for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
                uint8_t *w = make_w(formats[f], rows, cols, 0);
                q35_tensor wt = {formats[f], 2, {rows, cols}, w};
                q35_matmul(k8, NULL, &wt, &a, y, rows);
                if (q35_i8_takes(k8->i8, formats[f], T)) /* the integer path */
                    q35_i8_matmul(k8->i8, &wt, a.q8, a.ldq8, T, y2, rows, 0, rows);
#if defined(__x86_64__) /* int8_amx_avx512.c is built for x86 only */
                else if (!strcmp(k->name, "amx") && q35_amx_i8_available() &&
                         T >= q35_amx_i8_min_t(formats[f])) /* AMX-INT8 tiles */
                    q35_amx_i8_matmul(&wt, a.q8, a.ldq8, T, y2, rows, 0, rows);
#endif
                else { /* beyond the integer path: the float kernels, as the exact set */
                    q35_acts ae = q35_acts_prepare(k, x, cols, T, cols, buf);
                    q35_matmul(k, NULL, &wt, &ae, y2, rows);
                }
                assert_memory_equal(y, y2, (size_t)T * rows * sizeof *y);
                free(w);
            }
            free(buf);
        }
        free(x);
        free(y);
        free(y2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_bytes),
        cmocka_unit_test(test_integer_part_exact),
        cmocka_unit_test(test_realistic_and_splits),
        cmocka_unit_test(test_twins),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
