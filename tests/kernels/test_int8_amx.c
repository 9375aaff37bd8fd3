/* test_int8_amx.c — the AMX-INT8 prefill path (kernels/int8_amx.h) against
 * the plain C definition of the integer matmul (q35_i8_dot_ref,
 * int8_generic.c), for Q8_0, Q4_0, Q4_K and Q6_K:
 *  - the integer part: with every scale 1 and sums below 2^24 every float
 *    step is exact, so the result must be the definition's bit for bit —
 *    over row counts around the 16-row tiles and panels, token counts
 *    around the 16-token tiles (partial last tiles), odd block counts;
 *  - realistic scales: within float32 rounding of the definition,
 *    |fast - ref| <= 2e-5 * sum |w| |x| (as test_int8.c: <= 112 block
 *    terms summed in float32 stay far inside it);
 *  - invariants: any split of the rows (threads), any grouping of the
 *    tokens (a token's result does not depend on T) and the stack-buffer
 *    path give the same bits;
 *  - q35_matmul on the amx set's integer twin takes this path from
 *    q35_amx_i8_min_t tokens on (above the VNNI micro-kernels' max_t);
 *  - q35_acts_prepare_for packs the set's float form only where a matrix
 *    of the given dtypes reads it, with the same products.
 * Skipped (with a message) where the CPU has no AMX-INT8. */
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

#define INT8_TEST_SEED 0x9b05688c2b3e6c1full
#include "int8_test_data.h"

static const q35_dtype formats[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K, Q35_DT_Q6_K};

static bool have_amx(void) {
    if (q35_amx_i8_available()) return true;
    printf("no AMX-INT8 on this machine: skipped\n");
    return false;
}

static float *ref_matmul(q35_dtype dt, const uint8_t *w, int rows, int64_t cols, const uint8_t *x,
                         int T) {
    size_t ldx = q35_q8_row_stride(cols), rb = q35_row_bytes(dt, cols);
    float *ref = malloc((size_t)T * rows * sizeof *ref);
    assert_non_null(ref);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < rows; o++)
            ref[t * rows + o] = q35_i8_dot_ref(dt, w + (size_t)o * rb, x + t * ldx, cols);
    return ref;
}

static void test_integer_part_exact(void **st) {
    (void)st;
    if (!have_amx()) return;
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        q35_dtype dt = formats[f];
        int kq = dt == Q35_DT_Q4_K || dt == Q35_DT_Q6_K;
        /* 32 and 96 columns: 1 and 3 blocks (an odd block at the end) */
        const int64_t widths[] = {32, 96, 512, 256, 768};
        const int rows_list[] = {1, 15, 16, 17, 47, 50};
        const int T_list[] = {1, 15, 16, 17, 33};
        for (int wi = kq ? 3 : 0; wi < (kq ? 5 : 3); wi++)
            for (int ri = 0; ri < 6; ri++)
                for (int ti = 0; ti < 5; ti++) {
                    int64_t cols = widths[wi];
                    int rows = rows_list[ri], T = T_list[ti];
                    uint8_t *w = make_w(dt, rows, cols, 1);
                    uint8_t *x = make_q8(T, cols, 1, kq ? 15 : 127, NULL);
                    q35_tensor wt = {dt, 2, {rows, cols}, w};
                    float *ref = ref_matmul(dt, w, rows, cols, x, T);
                    float *got = malloc((size_t)T * rows * sizeof *got);
                    assert_non_null(got);
                    for (int path = 0; path < 2; path++) {
                        memset(got, 0xff, (size_t)T * rows * sizeof *got);
                        if (path == 0)
                            q35_amx_i8_matmul(&wt, x, q35_q8_row_stride(cols), T, got, rows, 0,
                                              rows);
                        else
                            q35_amx_i8_matmul_stepwise(&wt, x, q35_q8_row_stride(cols), T, got,
                                                       rows, 0, rows);
                        for (int i = 0; i < T * rows; i++)
                            if (got[i] != ref[i]) {
                                printf("%s path %d rows %d T %d cols %lld: [%d] %.1f vs %.1f\n",
                                       q35_dtype_name(dt), path, rows, T, (long long)cols, i,
                                       got[i], ref[i]);
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

/* Realistic scales and activations; splits, token groupings and the
 * stack-buffer path: the same bits. */
static void test_realistic_and_invariants(void **st) {
    (void)st;
    if (!have_amx()) return;
    const int64_t widths[] = {256, 1024, 3584};
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        q35_dtype dt = formats[f];
        for (int wi = 0; wi < 3; wi++) {
            int64_t cols = widths[wi];
            int rows = wi == 2 ? 37 : 83, T = wi == 2 ? 21 : 40;
            size_t ldx = q35_q8_row_stride(cols);
            uint8_t *w = make_w(dt, rows, cols, 0);
            float *xf = malloc((size_t)T * cols * sizeof *xf);
            float *wf = malloc((size_t)cols * sizeof *wf);
            assert_true(xf && wf);
            uint8_t *x = make_q8(T, cols, 0, 0, xf);
            q35_tensor wt = {dt, 2, {rows, cols}, w};
            float *ref = ref_matmul(dt, w, rows, cols, x, T);
            float *got = malloc((size_t)T * rows * sizeof *got);
            float *other = malloc((size_t)T * rows * sizeof *other);
            assert_true(got && other);
            q35_amx_i8_matmul(&wt, x, ldx, T, got, rows, 0, rows);
            for (int o = 0; o < rows; o++) {
                q35_tensor_row_f32(&wt, o, wf);
                for (int t = 0; t < T; t++) {
                    double m = 0;
                    for (int64_t j = 0; j < cols; j++)
                        m += fabs((double)wf[j] * xf[t * cols + j]);
                    int i = t * rows + o;
                    if (!(fabs((double)got[i] - ref[i]) <= 2e-5 * m)) {
                        printf("%s cols %lld: [%d] %g vs %g (scale %g)\n", q35_dtype_name(dt),
                               (long long)cols, i, got[i], ref[i], m);
                        fail();
                    }
                }
            }
            /* row splits as threads make them, at odd places */
            const int cuts[] = {1, 5, 16, 17, 48};
            for (int ci = 0; ci < 5; ci++) {
                int cut = cuts[ci] < rows ? cuts[ci] : rows - 1;
                memset(other, 0xff, (size_t)T * rows * sizeof *other);
                q35_amx_i8_matmul(&wt, x, ldx, T, other, rows, 0, cut);
                q35_amx_i8_matmul(&wt, x, ldx, T, other, rows, cut, rows);
                assert_memory_equal(other, got, (size_t)T * rows * sizeof *got);
            }
            memset(other, 0xff, (size_t)T * rows * sizeof *other);
            q35_amx_i8_matmul_stepwise(&wt, x, ldx, T, other, rows, 0, rows);
            assert_memory_equal(other, got, (size_t)T * rows * sizeof *got);
            /* tokens from 3 on alone (other tile boundaries, a shorter T) */
            memset(other, 0xff, (size_t)T * rows * sizeof *other);
            q35_amx_i8_matmul(&wt, x + 3 * ldx, ldx, T - 3, other, rows, 0, rows);
            assert_memory_equal(other, got + 3 * rows, (size_t)(T - 3) * rows * sizeof *got);
            free(w);
            free(xf);
            free(wf);
            free(x);
            free(ref);
            free(got);
            free(other);
        }
    }
}

/* q35_matmul on the amx set's integer twin: this path from min_t tokens
 * (and above the VNNI micro-kernels' max_t). */
static void test_twin_takes_it(void **st) {
    (void)st;
    if (!have_amx()) return;
    const q35_kernels *k = q35_kernels_amx();
    assert_non_null(k);
    const q35_kernels *k8 = q35_kernels_int8(k);
    assert_non_null(k8->i8);
    int64_t cols = 512;
    int rows = 97;
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        /* the VNNI micro-kernels up to their max_t, this path above */
        int T = q35_amx_i8_min_t(formats[f]), max_t = k8->i8->mk[formats[f]].max_t;
        assert_true(T > 0);
        if (T <= max_t) T = max_t + 1;
        for (int dT = 0; dT <= 19; dT += 19) {
            int n = T + dT;
            float *x = malloc((size_t)n * cols * sizeof *x);
            float *y = malloc((size_t)n * rows * sizeof *y),
                  *y2 = malloc((size_t)n * rows * sizeof *y2);
            assert_true(x && y && y2);
            for (int64_t i = 0; i < n * cols; i++)
                x[i] = frand();
            size_t nb = q35_acts_bytes(k8, n, cols);
            void *buf = aligned_alloc(64, (nb + 63) / 64 * 64);
            assert_non_null(buf);
            q35_acts a = q35_acts_prepare(k8, x, cols, n, cols, buf);
            assert_non_null(a.q8);
            uint8_t *w = make_w(formats[f], rows, cols, 0);
            q35_tensor wt = {formats[f], 2, {rows, cols}, w};
            q35_matmul(k8, NULL, &wt, &a, y, rows);
            q35_amx_i8_matmul(&wt, a.q8, a.ldq8, n, y2, rows, 0, rows);
            assert_memory_equal(y, y2, (size_t)n * rows * sizeof *y);
            free(w);
            free(buf);
            free(x);
            free(y);
            free(y2);
        }
    }
}

/* q35_acts_prepare_for: where every matrix dtype of the input goes to the
 * integer path at T (AMX-INT8 from min_t, the VNNI tiles up to max_t) the
 * set's float packed form is not made (nor counted in the bytes), and the
 * products are the same bits as with the full preparation; where one of
 * them would read it (Q4_0 between max_t and min_t, or a bf16 matrix) it
 * is made. */
static void test_pack_only_where_read(void **st) {
    (void)st;
    if (!have_amx()) return;
    const q35_kernels *k8 = q35_kernels_int8(q35_kernels_amx());
    int64_t cols = 512;
    int rows = 64;
    const q35_dtype_mask q4 = 1u << Q35_DT_Q4_0, q4bf = q4 | 1u << Q35_DT_BF16;
    int min_t = q35_amx_i8_min_t(Q35_DT_Q4_0), max_t = k8->i8->mk[Q35_DT_Q4_0].max_t;
    assert_true(max_t + 1 < min_t); /* a float-path T exists between them */
    int Ts[] = {1, max_t, max_t + 1, min_t, 40};
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) {
        int T = Ts[i];
        bool reads = q35_matmul_reads_packed(k8, Q35_DT_Q4_0, T, cols);
        assert_int_equal(reads, T > max_t && T < min_t);
        assert_true(q35_matmul_reads_packed(k8, Q35_DT_BF16, T, cols));
        float *x = malloc((size_t)T * cols * sizeof *x);
        float *y = malloc((size_t)T * rows * sizeof *y),
              *y2 = malloc((size_t)T * rows * sizeof *y2);
        assert_true(x && y && y2);
        for (int64_t j = 0; j < T * cols; j++)
            x[j] = frand();
        size_t nb = q35_acts_bytes(k8, T, cols), nb4 = q35_acts_bytes_for(k8, T, cols, q4);
        assert_true(nb4 <= nb);
        assert_int_equal(q35_acts_bytes_for(k8, T, cols, q4bf), nb);
        void *buf = aligned_alloc(64, (nb + 63) / 64 * 64),
             *buf4 = aligned_alloc(64, (nb4 + 63) / 64 * 64);
        assert_true(buf && buf4);
        q35_acts a = q35_acts_prepare(k8, x, cols, T, cols, buf);
        q35_acts a4 = q35_acts_prepare_for(k8, x, cols, T, cols, buf4, q4);
        assert_true(a.packed != NULL);
        assert_true((a4.packed != NULL) == reads);
        q35_acts abf = q35_acts_prepare_for(k8, x, cols, T, cols, buf, q4bf);
        assert_true(abf.packed != NULL);
        uint8_t *w = make_w(Q35_DT_Q4_0, rows, cols, 0);
        q35_tensor wt = {Q35_DT_Q4_0, 2, {rows, cols}, w};
        q35_matmul(k8, NULL, &wt, &abf, y, rows);
        q35_matmul(k8, NULL, &wt, &a4, y2, rows);
        assert_memory_equal(y, y2, (size_t)T * rows * sizeof *y);
        free(w);
        free(buf);
        free(buf4);
        free(x);
        free(y);
        free(y2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integer_part_exact),
        cmocka_unit_test(test_realistic_and_invariants),
        cmocka_unit_test(test_twin_takes_it),
        cmocka_unit_test(test_pack_only_where_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
