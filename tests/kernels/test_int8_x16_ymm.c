/* test_int8_x16_ymm.c — the AVX2 and AVX-VNNI micro-kernels of the
 * 16-row interleaved forms (kernels/int8_x86_x16_ymm.h reading
 * kernels/repack_x16.h's Q8_0 / Q4_0 / Q6_K / Q4_K forms), through the
 * driver (the micro-kernels, and from min_t the packed panels packed from
 * the form), against the plain C definitions:
 *  - with every scale 1 the definition (q35_i8_dot_ref on the file's rows)
 *    bit for bit, with realistic scales within float32 rounding (2e-5 *
 *    sum |w| |x|), over row counts around the two 8-row halves of a group
 *    and T = 1 .. 16, 20, 33 (token tile edges);
 *  - below the panels' min_t one token's result never depends on T
 *    (batched decode = one-at-a-time decode), and at any T never on a
 *    split of the rows at group edges;
 *  - q35_matmul with the AVX2 integer set gives for the form what the set
 *    gives for the file's matrix within float32 rounding (another path:
 *    the register tiles or the packed panels). */
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
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/repack_x16.h"

#define INT8_TEST_SEED 0x6a09e667f3bcc908ull
#include "int8_test_data.h"

typedef struct pair {
    q35_tensor w, x; /* the file's layout, the x16 form */
    uint8_t *buf;
} pair;

static pair make_pair(q35_dtype dt, int rows, int64_t cols, int unit) {
    pair p;
    uint8_t *w = make_w(dt, rows, cols, unit);
    p.buf = malloc(q35_x16_bytes(dt, rows, cols));
    assert_non_null(p.buf);
    q35_x16_pack(dt, w, rows, cols, 0, (rows + 15) / 16, p.buf);
    p.w = (q35_tensor){dt, 2, {rows, cols}, w};
    p.x = (q35_tensor){q35_dtype_x16_of(dt), 2, {rows, cols}, p.buf};
    return p;
}

static void free_pair(pair *p) {
    free((void *)p->w.data);
    free(p->buf);
}

static const q35_i8_kernels *sets[2];
static int n_sets;

static int setup(void **st) {
    (void)st;
    n_sets = 0;
#if defined(__x86_64__)
    const q35_i8_kernels *a = q35_i8_kernels_avx2(), *v = q35_i8_kernels_avxvnni();
    if (a) sets[n_sets++] = a;
    if (v) sets[n_sets++] = v;
#endif
    printf("x16 ymm micro-kernel sets: %d\n", n_sets);
    return 0;
}

static void check_kernels(q35_dtype dt, int unit) {
    /* 96: Q4_0 rows of 3 blocks (the panels' scalar tail); 2304: 72
     * blocks, past one 64-block chunk of the panels' token terms */
    const int64_t widths[] = {256, 1024, 2304, 96};
    const int Ts[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 20, 33};
    for (int s = 0; s < n_sets; s++)
        for (int wi = 0; wi < 4; wi++) {
            const int64_t cols = widths[wi];
            if (cols % 256 && dt != Q35_DT_Q4_0 && dt != Q35_DT_Q8_0) continue;
            const size_t ldx = q35_q8_row_stride(cols), rb = q35_row_bytes(dt, cols);
            for (int rows = 1; rows <= 49; rows += wi ? 16 : 4) {
                for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
                    const int T = Ts[ti];
                    if (wi && T % 4 != 1 && T != 16) continue;
                    float *xf = malloc((size_t)T * cols * sizeof *xf);
                    float *wf = malloc((size_t)cols * sizeof *wf);
                    assert_true(xf && wf);
                    pair p = make_pair(dt, rows, cols, unit);
                    uint8_t *x = make_q8(T, cols, unit, dt == Q35_DT_Q8_0 ? 127 : 15, xf);
                    size_t n = (size_t)T * rows;
                    float *got = malloc(n * sizeof *got), *one = malloc(rows * sizeof *one),
                          *split = malloc(n * sizeof *split);
                    assert_true(got && one && split);
                    memset(got, 0xff, n * sizeof *got);
                    q35_i8_matmul(sets[s], &p.x, x, ldx, T, got, rows, 0, rows);
                    for (int o = 0; o < rows; o++) {
                        double m[64] = {0};
                        if (!unit) {
                            q35_tensor_row_f32(&p.w, o, wf);
                            for (int t = 0; t < T; t++)
                                for (int64_t j = 0; j < cols; j++)
                                    m[t] += fabs((double)wf[j] * xf[t * cols + j]);
                        }
                        for (int t = 0; t < T; t++) {
                            const uint8_t *wr = (const uint8_t *)p.w.data + (size_t)o * rb;
                            float g = got[t * rows + o],
                                  r = q35_i8_dot_ref(dt, wr, x + t * ldx, cols);
                            int ok = unit ? g == r : fabs((double)g - r) <= 2e-5 * m[t];
                            if (!ok) {
                                printf("%s %s rows %d T %d cols %lld: [%d, %d] %g vs %g\n",
                                       sets[s]->name, q35_dtype_name(dt), rows, T, (long long)cols,
                                       t, o, g, r);
                                fail();
                            }
                        }
                    }
                    /* each token alone: the same bits (below the panels' min_t: from
                     * there a token's floats are rounded as the panels do) */
                    const q35_dtype xd = q35_dtype_x16_of(dt);
                    for (int t = 0; t < T && T <= sets[s]->mk[xd].max_t; t++) {
                        q35_i8_matmul(sets[s], &p.x, x + t * ldx, ldx, 1, one, rows, 0, rows);
                        assert_memory_equal(one, got + t * rows, rows * sizeof *one);
                    }
                    /* rows split at group edges (as the threads split them) */
                    for (int cut = 16; cut < rows; cut += 32) {
                        q35_i8_matmul(sets[s], &p.x, x, ldx, T, split, rows, 0, cut);
                        q35_i8_matmul(sets[s], &p.x, x, ldx, T, split, rows, cut, rows);
                        assert_memory_equal(split, got, n * sizeof *got);
                    }
                    free(xf);
                    free(wf);
                    free(x);
                    free(got);
                    free(one);
                    free(split);
                    free_pair(&p);
                }
            }
        }
}

static void test_kernels_exact(void **st) {
    (void)st;
    check_kernels(Q35_DT_Q8_0, 1);
    check_kernels(Q35_DT_Q4_0, 1);
    check_kernels(Q35_DT_Q6_K, 1);
    check_kernels(Q35_DT_Q4_K, 1);
}

static void test_kernels_real(void **st) {
    (void)st;
    check_kernels(Q35_DT_Q8_0, 0);
    check_kernels(Q35_DT_Q4_0, 0);
    check_kernels(Q35_DT_Q6_K, 0);
    check_kernels(Q35_DT_Q4_K, 0);
}

/* The set's whole path (q35_matmul, any T) on the form and on the file's
 * matrix: the same products within float32 rounding. */
static void test_matmul_same(void **st) {
    (void)st;
    const q35_kernels *k = q35_kernels_avx2() ? q35_kernels_int8(q35_kernels_avx2()) : NULL;
    if (!k) {
        printf("no AVX2 here: skipped\n");
        return;
    }
    const q35_dtype dts[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q6_K, Q35_DT_Q4_K};
    for (int d = 0; d < 4; d++)
        for (int T = 1; T <= 40; T += 13) {
            const int rows = 100;
            const int64_t cols = 512;
            const size_t n = (size_t)T * rows;
            pair p = make_pair(dts[d], rows, cols, 0);
            float *xf = malloc((size_t)T * cols * sizeof *xf);
            float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
            float *wf = malloc(cols * sizeof *wf);
            assert_true(xf && a && b && wf);
            for (int64_t i = 0; i < T * cols; i++)
                xf[i] = frand();
            size_t nb = q35_acts_bytes(k, T, cols);
            void *buf = aligned_alloc(64, (nb + 63) / 64 * 64 + 64);
            assert_non_null(buf);
            q35_acts acts = q35_acts_prepare(k, xf, cols, T, cols, buf);
            q35_matmul(k, NULL, &p.w, &acts, a, rows);
            q35_matmul(k, NULL, &p.x, &acts, b, rows);
            for (int o = 0; o < rows; o++) {
                q35_tensor_row_f32(&p.w, o, wf);
                for (int t = 0; t < T; t++) {
                    double m = 0;
                    for (int64_t j = 0; j < cols; j++)
                        m += fabs((double)wf[j] * xf[t * cols + j]);
                    assert_true(fabs((double)a[t * rows + o] - b[t * rows + o]) <= 2e-5 * m);
                }
            }
            free(buf);
            free(xf);
            free(wf);
            free(a);
            free(b);
            free_pair(&p);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_exact),
        cmocka_unit_test(test_kernels_real),
        cmocka_unit_test(test_matmul_same),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
