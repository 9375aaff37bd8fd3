/* test_int8_panel.c — the packed-panel micro-kernels (microkernel.h's
 * q35_i8_panel_desc; x86: int8_x86_panel.h) of every set this machine
 * runs, through the driver at token counts where it takes them (T >=
 * min_t), against the plain C definitions (int8_generic.c):
 *  - the integer part: every scale 1 and sums below 2^24, so all float
 *    steps are exact and each set must give the definition bit for bit,
 *    over row counts 1..21 (every edge of the 8-row groups) and token
 *    counts min_t .. min_t + 7 (every edge of the token tiles);
 *  - realistic scales: within float32 rounding, |fast - ref| <= 2e-5 *
 *    sum |w| |x| (as test_int8.c argues for the register tiles);
 *  - any split of the rows (threads) gives the same bits. */
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

#define INT8_TEST_SEED 0x452821e638d01377ull
#include "int8_test_data.h"

static const q35_i8_kernels *sets[8];
static int n_sets;

static int setup(void **st) {
    (void)st;
    const q35_i8_kernels *all[] = {q35_i8_kernels_generic(), q35_i8_kernels_avx2(),
                                   q35_i8_kernels_avxvnni(), q35_i8_kernels_avx512vnni(),
                                   q35_i8_kernels_neon()};
    n_sets = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        if (!all[i]) continue;
        for (int dt = 0; dt < Q35_DT_COUNT; dt++)
            if (all[i]->panel[dt].kernel) {
                sets[n_sets++] = all[i];
                printf("panel set: %s\n", all[i]->name);
                break;
            }
    }
    return 0;
}

static void check(q35_dtype dt, int unit) {
    const int64_t widths[] = {256, 1024};
    for (int s = 0; s < n_sets; s++) {
        const q35_i8_panel_desc *pd = &sets[s]->panel[dt];
        if (!pd->kernel) continue;
        for (int wi = 0; wi < 2; wi++) {
            int64_t cols = widths[wi];
            size_t ldx = q35_q8_row_stride(cols);
            for (int rows = 1; rows <= 21; rows += wi ? 10 : 4) {
                for (int T = pd->min_t; T < pd->min_t + 8; T += wi ? 3 : 1) {
                    float *xf = malloc((size_t)T * cols * sizeof *xf);
                    float *wf = malloc((size_t)cols * sizeof *wf);
                    assert_true(xf && wf);
                    uint8_t *w = make_w(dt, rows, cols, unit);
                    uint8_t *x = make_q8(T, cols, unit, dt == Q35_DT_Q8_0 ? 127 : 15, xf);
                    q35_tensor wt = {dt, 2, {rows, cols}, w};
                    size_t n = (size_t)T * rows;
                    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got),
                          *split = malloc(n * sizeof *split);
                    assert_true(ref && got && split);
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < rows; o++)
                            ref[t * rows + o] = q35_i8_dot_ref(
                                dt, w + (size_t)o * q35_row_bytes(dt, cols), x + t * ldx, cols);
                    memset(got, 0xff, n * sizeof *got);
                    q35_i8_matmul(sets[s], &wt, x, ldx, T, got, rows, 0, rows);
                    for (int o = 0; o < rows; o++) {
                        double m[64] = {0};
                        if (!unit) {
                            q35_tensor_row_f32(&wt, o, wf);
                            for (int t = 0; t < T; t++)
                                for (int64_t j = 0; j < cols; j++)
                                    m[t] += fabs((double)wf[j] * xf[t * cols + j]);
                        }
                        for (int t = 0; t < T; t++) {
                            float g = got[t * rows + o], r = ref[t * rows + o];
                            int ok = unit ? g == r : fabs((double)g - r) <= 2e-5 * m[t];
                            if (!ok) {
                                printf("%s %s rows %d T %d cols %lld: [%d, %d] %g vs %g\n",
                                       sets[s]->name, q35_dtype_name(dt), rows, T, (long long)cols,
                                       t, o, g, r);
                                fail();
                            }
                        }
                    }
                    const int cuts[] = {1, 5, 13};
                    for (int ci = 0; ci < 3; ci++) {
                        if (cuts[ci] >= rows) continue;
                        q35_i8_matmul(sets[s], &wt, x, ldx, T, split, rows, 0, cuts[ci]);
                        q35_i8_matmul(sets[s], &wt, x, ldx, T, split, rows, cuts[ci], rows);
                        assert_memory_equal(split, got, n * sizeof *got);
                    }
                    free(xf);
                    free(wf);
                    free(w);
                    free(x);
                    free(ref);
                    free(got);
                    free(split);
                }
            }
        }
    }
}

static void test_exact(void **st) {
    (void)st;
    const q35_dtype formats[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K, Q35_DT_Q6_K};
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++)
        check(formats[f], 1);
}

static void test_realistic(void **st) {
    (void)st;
    const q35_dtype formats[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K, Q35_DT_Q6_K};
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++)
        check(formats[f], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_realistic),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
