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

static uint64_t rng = 0x452821e638d01377ull;

static uint32_t urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static float frand(void) { /* [-1, 1) */
    return (float)((urand() >> 8) * (1.0 / (1 << 23)) - 1.0);
}

static int irand(int lo, int hi) { /* [lo, hi] */
    return lo + (int)(urand() % (uint32_t)(hi - lo + 1));
}

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

static void put_f16(uint8_t *p, float v) {
    uint16_t h = q35_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static uint8_t *make_w(q35_dtype dt, int64_t rows, int64_t cols, int unit) {
    size_t rb = q35_row_bytes(dt, cols), bb = q35_dtype_block_bytes(dt);
    uint8_t *w = malloc((size_t)rows * rb);
    assert_non_null(w);
    for (size_t i = 0; i < (size_t)rows * rb; i++)
        w[i] = (uint8_t)urand();
    for (size_t o = 0; o < (size_t)rows * rb; o += bb) {
        uint8_t *b = w + o;
        switch (dt) {
        case Q35_DT_Q8_0:
        case Q35_DT_Q4_0: put_f16(b, unit ? 1.0f : 0.002f + 0.01f * fabsf(frand())); break;
        case Q35_DT_Q4_K:
            put_f16(b, unit ? 1.0f : 0.001f + 0.002f * fabsf(frand()));
            put_f16(b + 2, unit ? 1.0f : 0.001f + 0.002f * fabsf(frand()));
            break;
        case Q35_DT_Q6_K:
            put_f16(b + 208, unit ? 1.0f : 0.001f + 0.002f * fabsf(frand()));
            if (unit)
                for (int j = 0; j < 16; j++)
                    b[192 + j] = (uint8_t)(int8_t)irand(-31, 31);
            break;
        default: break;
        }
    }
    return w;
}

/* T q8 rows: unit: every d = 1 and q in [-amax, amax]; else quantized
 * from random floats by the reference quantizer. */
static uint8_t *make_q8(int T, int64_t cols, int unit, int amax, float *xf) {
    size_t st = q35_q8_row_stride(cols);
    uint8_t *x = aligned_alloc(64, (size_t)T * st);
    assert_non_null(x);
    memset(x, 0, (size_t)T * st);
    if (!unit) {
        for (int64_t i = 0; i < T * cols; i++)
            xf[i] = frand() * (i % 61 == 0 ? 20.0f : 1.0f);
        q35_q8_quantize_ref(xf, cols, T, cols, x);
        return x;
    }
    for (int t = 0; t < T; t++) {
        uint8_t *row = x + (size_t)t * st;
        for (int64_t i = 0; i < cols / 16; i++) {
            int16_t s = 0;
            for (int j = 0; j < 16; j++) {
                int8_t q = (int8_t)irand(-amax, amax);
                row[16 * i + j] = (uint8_t)q;
                s = (int16_t)(s + q);
            }
            memcpy(row + cols + cols / 8 + 2 * i, &s, 2);
        }
        for (int64_t b = 0; b < cols / 32; b++) {
            float one = 1.0f;
            memcpy(row + cols + 4 * b, &one, 4);
        }
    }
    return x;
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
