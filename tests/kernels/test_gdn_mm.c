/* test_gdn_mm.c — every kernel set's gdn_mm (kernels.h, gdn_mm.h), the
 * product of the chunked DeltaNet form, against a float64 evaluation of
 * its definition, and the SIMD sets against the plain C definition
 * (gdn_mm_generic.c):
 *  - shapes around each set's tile (rows 1..13, columns 1..130 across the
 *    16-, 8- and 4-lane vector edges, inner lengths 1..128) with row
 *    strides wider than the rows;
 *  - keep 0 (y never read: it is filled with NaN first), 1 and a decay;
 *  - the elements of y outside [m, n) stay as they were.
 * Bound: each result is keep*y plus kd products summed in order, so in
 * float32 it is within gamma_{kd+1} = (kd+1) u / (1 - (kd+1) u) (u = 2^-24)
 * of the exact value, relative to keep|y| + sum |x b| (the textbook bound
 * of recursive summation, Higham 3.1); the plain C definition rounds each
 * product too, one more u per term, so the test allows 2 (kd+2) u. A
 * wrong index, stride or lost term is off by O(|x b|), far above it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"

static float rnd(uint64_t *s) { /* [-1, 1) */
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 4503599627370496.0 - 1.0);
}

static void check(const q35_kernels *k, int m, int n, int kd, float keep, uint64_t seed) {
    int64_t ldx = kd + 3, ldb = n + 5, ldy = n + 7;
    size_t nx = (size_t)m * ldx, nb = (size_t)kd * ldb, ny = (size_t)(m + 1) * ldy;
    float *x = malloc(sizeof(float) * nx), *b = malloc(sizeof(float) * nb);
    float *y = malloc(sizeof(float) * ny), *y0 = malloc(sizeof(float) * ny);
    float *yg = malloc(sizeof(float) * ny);
    uint64_t s = seed;
    for (size_t i = 0; i < nx; i++)
        x[i] = rnd(&s);
    for (size_t i = 0; i < nb; i++)
        b[i] = rnd(&s);
    for (size_t i = 0; i < ny; i++)
        y0[i] = rnd(&s);
    if (keep == 0)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                y0[i * ldy + j] = NAN;
    memcpy(y, y0, sizeof(float) * ny);
    memcpy(yg, y0, sizeof(float) * ny);
    k->gdn_mm(m, n, kd, x, ldx, b, ldb, y, ldy, keep);
    q35_kernels_generic()->gdn_mm(m, n, kd, x, ldx, b, ldb, yg, ldy, keep);
    const double u = 1.0 / 16777216.0, tol = 2 * (kd + 2) * u;
    for (int i = 0; i <= m; i++)
        for (int j = 0; j < ldy; j++) {
            size_t at = (size_t)i * ldy + j;
            if (i == m || j >= n) { /* outside the product: untouched */
                if (memcmp(&y[at], &y0[at], sizeof(float)))
                    fail_msg("%s m=%d n=%d kd=%d: y[%d][%d] outside written", k->name, m, n, kd, i,
                             j);
                continue;
            }
            double exact = keep == 0 ? 0 : (double)keep * y0[at], mag = fabs(exact);
            for (int p = 0; p < kd; p++) {
                double t = (double)x[i * ldx + p] * b[p * ldb + j];
                exact += t;
                mag += fabs(t);
            }
            if (!(fabs(y[at] - exact) <= tol * mag) || !(fabs(yg[at] - exact) <= tol * mag) ||
                !(fabs(y[at] - yg[at]) <= 2 * tol * mag))
                fail_msg("%s m=%d n=%d kd=%d keep=%g: [%d][%d] = %.9g, generic %.9g, exact %.9g",
                         k->name, m, n, kd, (double)keep, i, j, (double)y[at], (double)yg[at],
                         exact);
        }
    free(x);
    free(b);
    free(y);
    free(y0);
    free(yg);
}

static void shapes(const q35_kernels *k) {
    const int ms[] = {1, 2, 3, 4, 5, 6, 7, 12, 13, 32};
    const int ns[] = {1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 48, 64, 65, 100, 128, 130};
    const int kds[] = {1, 5, 16, 128};
    const float keeps[] = {0, 1, 0.37f};
    uint64_t seed = 1;
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (size_t c = 0; c < sizeof ns / sizeof *ns; c++)
            for (size_t d = 0; d < sizeof kds / sizeof *kds; d++)
                check(k, ms[a], ns[c], kds[d], keeps[(a + c + d) % 3], seed++);
    /* the chunked form's own shapes (dk = dv = 128, chunks of 16) */
    check(k, 32, 128, 128, 0, 101);
    check(k, 16, 32, 128, 0, 102);
    check(k, 128, 128, 16, 0.8f, 103);
    check(k, 16, 128, 16, 1, 104);
}

static void test_sets(void **st) {
    (void)st;
    const q35_kernels *sets[] = {q35_kernels_generic(), q35_kernels_avx2(), q35_kernels_avx512(),
                                 q35_kernels_amx(), q35_kernels_neon()};
    int ran = 0;
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (sets[i]) {
            assert_non_null(sets[i]->gdn_mm);
            shapes(sets[i]);
            print_message("gdn_mm: %s checked\n", sets[i]->name);
            ran++;
        }
    assert_true(ran >= 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sets)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
