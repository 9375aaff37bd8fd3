/* test_int8_x16.c — the 16-row interleaved Q8_0 / Q4_0 / Q6_K / Q4_K forms
 * (kernels/repack_x16.h) and every kernel that reads them, against the
 * file's layout and the plain C definitions:
 *  - the form holds the file's bytes: back to the file's layout it is the
 *    original matrix byte for byte, and row lookups give the same floats;
 *  - the micro-kernels of the AVX-512 VNNI, AVX2 and AVX-VNNI sets
 *    through the driver (for AVX2 / AVX-VNNI also the packed panels from
 *    min_t): with every scale 1 the definition (q35_i8_dot_ref) bit for
 *    bit, with realistic scales within float32 rounding (2e-5 * sum |w|
 *    |x|), over row counts around the 16-row groups and their 8-row
 *    halves, T = 1 .. 16, 20, 33 (token tile edges), and widths past the
 *    panels' 64-block chunk and with their scalar tail;
 *  - up to a set's max_t one token's result never depends on T, and at
 *    any T never on a split of the rows (batched decode = one-at-a-time
 *    decode);
 *  - the AVX2 set's whole q35_matmul gives for the form what it gives for
 *    the file's matrix, within float32 rounding;
 *  - AMX-INT8 tiles from the form give the bits they give from the file
 *    (Q8_0, Q4_0, Q4_K, and Q6_K where AMX-INT8 reads its form);
 *  - a set that does not read the form (generic) gives, through
 *    q35_matmul, the bits it gives for the original matrix;
 *  - the load's AVX-512 and AVX2 packs write the plain C pack's bytes. */
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
#include "kernels/cpu_features.h"
#include "kernels/int8_amx.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/repack_x16.h"

#define INT8_TEST_SEED 0x3c6ef372fe94f82bull
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

static void test_round_trip(void **st) {
    (void)st;
    const q35_dtype dts[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q6_K, Q35_DT_Q4_K};
    for (int d = 0; d < 4; d++)
        for (int rows = 1; rows <= 40; rows += 13) {
            const int64_t cols = 256;
            pair p = make_pair(dts[d], rows, cols, 0);
            size_t rb = q35_row_bytes(dts[d], cols);
            uint8_t *back = malloc((size_t)rows * rb);
            float *a = malloc(cols * sizeof *a), *b = malloc(cols * sizeof *b);
            assert_true(back && a && b);
            q35_x16_rows(&p.x, 0, rows, back);
            assert_memory_equal(back, p.w.data, (size_t)rows * rb);
            for (int o = 0; o < rows; o++) {
                q35_tensor_row_f32(&p.w, o, a);
                q35_tensor_row_f32(&p.x, o, b);
                assert_memory_equal(a, b, cols * sizeof *a);
            }
            free(back);
            free(a);
            free(b);
            free_pair(&p);
        }
}

/* The load's pack (q35_x16_pack_pick: AVX-512 where it runs) writes the
 * plain C pack's bytes, group ranges in any split, every group and only
 * those asked for; random bytes (every bit pattern of every field). */
static void test_pack_simd(void **st) {
    (void)st;
    const q35_dtype dts[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q6_K, Q35_DT_Q4_K};
    q35_x16_pack_fn fns[3] = {q35_x16_pack_pick(), NULL, NULL};
    int nf = 1;
#if defined(__x86_64__)
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    if (q35_cpu_has_avx512_set(&f)) fns[nf++] = q35_x16_pack_avx512;
    if (q35_cpu_has_avx2_set(&f)) fns[nf++] = q35_x16_pack_avx2;
#endif
    printf("packs tested: %d (the load's, then AVX-512, AVX2 where they run)\n", nf);
    for (int fi = 0; fi < nf; fi++)
        for (int d = 0; d < 4; d++)
            for (int wi = 0; wi < 2; wi++)
                for (int rows = 1; rows <= 50; rows += 7) {
                    const int64_t cols = wi ? 768 : 256, groups = (rows + 15) / 16;
                    const size_t n = q35_x16_bytes(dts[d], rows, cols);
                    const size_t gb = n / (size_t)groups;
                    uint8_t *w = malloc((size_t)rows * q35_row_bytes(dts[d], cols));
                    uint8_t *a = malloc(n), *b = malloc(n);
                    assert_true(w && a && b);
                    for (size_t i = 0; i < (size_t)rows * q35_row_bytes(dts[d], cols); i++)
                        w[i] = (uint8_t)urand();
                    memset(a, 0xa5, n);
                    memset(b, 0xa5, n);
                    q35_x16_pack(dts[d], w, rows, cols, 0, groups, a);
                    /* the last group alone first: the others stay untouched */
                    fns[fi](dts[d], w, rows, cols, groups - 1, groups, b);
                    for (size_t i = 0; i < (groups - 1) * gb; i++)
                        assert_int_equal(b[i], 0xa5);
                    fns[fi](dts[d], w, rows, cols, 0, groups - 1, b);
                    if (memcmp(a, b, n)) {
                        printf("%s rows %d cols %lld: packs differ\n", q35_dtype_name(dts[d]), rows,
                               (long long)cols);
                        fail();
                    }
                    free(w);
                    free(a);
                    free(b);
                }
}

static const q35_i8_kernels *x16_sets[4];
static int n_x16_sets;

/* The sets with micro-kernels for the forms: AVX-512 VNNI (and its twin
 * that hands larger T to AMX-INT8), AVX2 and AVX-VNNI (int8_x86_x16_ymm.h:
 * the two 8-row halves of a group, and from min_t the packed panels packed
 * from the form). */
static int setup(void **st) {
    (void)st;
    n_x16_sets = 0;
#if defined(__x86_64__)
    const q35_i8_kernels *v = q35_i8_kernels_avx512vnni();
    if (v) {
        x16_sets[n_x16_sets++] = v;
        x16_sets[n_x16_sets++] = &q35_i8_avx512vnni_tiles_set;
    }
    const q35_i8_kernels *a = q35_i8_kernels_avx2(), *vn = q35_i8_kernels_avxvnni();
    if (a) x16_sets[n_x16_sets++] = a;
    if (vn) x16_sets[n_x16_sets++] = vn;
#endif
    printf("x16 micro-kernel sets: %d\n", n_x16_sets);
    return 0;
}

static void check_kernels(q35_dtype dt, int unit) {
    /* 96: Q4_0 rows of 3 blocks (the panels' scalar tail); 2304: 72
     * blocks, past one 64-block chunk of the panels' token terms */
    const int64_t widths[] = {256, 1024, 2304, 96};
    const int Ts[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 20, 33};
    for (int s = 0; s < n_x16_sets; s++)
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
                    q35_i8_matmul(x16_sets[s], &p.x, x, ldx, T, got, rows, 0, rows);
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
                                       x16_sets[s]->name, q35_dtype_name(dt), rows, T,
                                       (long long)cols, t, o, g, r);
                                fail();
                            }
                        }
                    }
                    /* each token alone: the same bits (up to max_t: from the
                     * panels' min_t on, a token's floats are rounded as the
                     * panels do) */
                    const int mt = x16_sets[s]->mk[q35_dtype_x16_of(dt)].max_t;
                    for (int t = 0; t < T && (mt == 0 || T <= mt); t++) {
                        q35_i8_matmul(x16_sets[s], &p.x, x + t * ldx, ldx, 1, one, rows, 0, rows);
                        assert_memory_equal(one, got + t * rows, rows * sizeof *one);
                    }
                    /* rows split at group edges (as the threads split them) */
                    for (int cut = 16; cut < rows; cut += 32) {
                        q35_i8_matmul(x16_sets[s], &p.x, x, ldx, T, split, rows, 0, cut);
                        q35_i8_matmul(x16_sets[s], &p.x, x, ldx, T, split, rows, cut, rows);
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

/* AMX-INT8 from the form: the file layout's bits, both paths. */
static void test_amx(void **st) {
    (void)st;
    if (!q35_amx_i8_available()) {
        printf("no AMX-INT8 here: skipped\n");
        return;
    }
    /* Q6_K where AMX-INT8 reads its form (int8_amx.h: the layers' Q6_K) */
    const q35_dtype dts[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K, Q35_DT_Q6_K};
    const int nd = q35_amx_i8_min_t(Q35_DT_Q6_K_X16) > 0 ? 4 : 3;
    printf("AMX-INT8 from the Q6_K form: %s\n", nd == 4 ? "tested" : "not read");
    for (int d = 0; d < nd; d++)
        for (int rows = 7; rows <= 71; rows += 32)
            for (int T = 5; T <= 37; T += 16) {
                const int64_t cols = 512;
                const size_t ldx = q35_q8_row_stride(cols), n = (size_t)T * rows;
                pair p = make_pair(dts[d], rows, cols, 0);
                uint8_t *x = make_q8(T, cols, 0, 0, NULL);
                float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
                assert_true(a && b);
                q35_amx_i8_matmul(&p.w, x, ldx, T, a, rows, 0, rows);
                q35_amx_i8_matmul(&p.x, x, ldx, T, b, rows, 0, rows);
                assert_memory_equal(a, b, n * sizeof *a);
                q35_amx_i8_matmul_stepwise(&p.x, x, ldx, T, b, rows, 0, rows);
                assert_memory_equal(a, b, n * sizeof *a);
                free(a);
                free(b);
                free(x);
                free_pair(&p);
            }
}

/* q35_matmul of the form with sets that do not read it (the plain C
 * definitions, float and integer, and the exact mode's set): each gives
 * the bits it gives for the file's matrix. */
static void test_matmul_sets(void **st) {
    (void)st;
    const q35_kernels *ks[] = {q35_kernels_generic(), q35_kernels_int8(q35_kernels_generic()),
                               q35_kernels_pick(true)};
    const q35_dtype dts[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q6_K, Q35_DT_Q4_K};
    for (size_t k = 0; k < sizeof ks / sizeof *ks; k++)
        for (int d = 0; d < 4; d++)
            for (int T = 1; T <= 40; T += 13) {
                const int rows = 100;
                const int64_t cols = 256;
                const size_t n = (size_t)T * rows;
                pair p = make_pair(dts[d], rows, cols, 0);
                float *xf = malloc((size_t)T * cols * sizeof *xf);
                float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
                assert_true(xf && a && b);
                for (int64_t i = 0; i < T * cols; i++)
                    xf[i] = frand();
                size_t nb = q35_acts_bytes(ks[k], T, cols);
                void *buf = aligned_alloc(64, (nb + 63) / 64 * 64 + 64);
                assert_non_null(buf);
                q35_acts acts = q35_acts_prepare(ks[k], xf, cols, T, cols, buf);
                q35_matmul(ks[k], NULL, &p.w, &acts, a, rows);
                q35_matmul(ks[k], NULL, &p.x, &acts, b, rows);
                assert_memory_equal(a, b, n * sizeof *a);
                free(buf);
                free(xf);
                free(a);
                free(b);
                free_pair(&p);
            }
}

/* The AVX2 integer set's whole path (q35_matmul, any T: register tiles
 * or packed panels) on the form and on the file's matrix: the same
 * products within float32 rounding. */
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
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_kernels_exact),
        cmocka_unit_test(test_kernels_real), cmocka_unit_test(test_amx),
        cmocka_unit_test(test_matmul_sets),  cmocka_unit_test(test_matmul_same),
        cmocka_unit_test(test_pack_simd),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
