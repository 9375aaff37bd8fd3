/* test_int8_mlx_q5k.c — the integer path's MLX affine and Q5_K
 * micro-kernels (kernels/microkernel.h; definitions in int8_generic.c) of
 * every set this machine runs, held to the plain C definitions:
 *  - the definitions themselves against the weights' own values (MLX:
 *    mlx_affine.h's s * q + z; Q5_K: the k-quant decoder) times the q8
 *    rows' values d_b * a, in double: within float32 rounding;
 *  - the integer part: with scales 1 or 2, integer biases / mins and q8
 *    rows of d = 1 every float step is an exact integer (sums kept below
 *    2^24), so each set must give the generic result bit for bit — for
 *    bits 2, 3, 4, 5, 6, 8, groups 32 / 64 / 128, scales and biases in f16,
 *    bf16 and f32, row counts 1..13 (every edge of the register tiles),
 *    1..9 tokens, and rows of 1, 3, 5 or 10 blocks (tails of the 8-block
 *    steps, odd group counts);
 *  - realistic scales (MLX's own quantizer's kind: s ~ range / n, z the
 *    group's edge): within 2e-5 * sum (|s q| + |z|) |d a| of the
 *    definition (the float steps may be ordered differently; float32
 *    summation of the <= 112 terms is ~7e-6 of that at worst);
 *  - the driver: any split of the rows gives the same bits, and
 *    q35_matmul on a float set's integer twin takes these micro-kernels
 *    (its result is the driver's on the q8 rows). Under qemu-aarch64 this
 *    runs for each NEON set (tests/kernels/test_neon_qemu.sh). */
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
#include "kernels/mlx_affine.h"

#define INT8_TEST_SEED 0x9e3779b97f4a7c15ull
#include "int8_test_data.h"

static const q35_i8_kernels *sets[8];
static int n_sets;

static int setup(void **st) {
    (void)st;
    n_sets = 0;
    sets[n_sets++] = q35_i8_kernels_generic();
    if (q35_i8_kernels_avx2()) sets[n_sets++] = q35_i8_kernels_avx2();
    if (q35_i8_kernels_avx512vnni()) sets[n_sets++] = q35_i8_kernels_avx512vnni();
    if (q35_i8_kernels_neon()) sets[n_sets++] = q35_i8_kernels_neon();
    for (int i = 0; i < n_sets; i++)
        printf("integer set: %s\n", sets[i]->name);
    return 0;
}

static const q35_dtype mlx_types[] = {Q35_DT_MLX2, Q35_DT_MLX3, Q35_DT_MLX4,
                                      Q35_DT_MLX5, Q35_DT_MLX6, Q35_DT_MLX8};

/* ---- weights */

typedef struct mlx_w {
    q35_mlx_affine a;
    q35_tensor t;
    uint8_t *q, *s, *z;
} mlx_w;

static void put_aux(uint8_t *p, int aux, size_t i, float v) {
    if (aux == Q35_DT_F32) {
        memcpy(p + 4 * i, &v, 4);
        return;
    }
    uint16_t h = aux == Q35_DT_F16 ? q35_f32_to_f16(v) : q35_f32_to_bf16(v);
    memcpy(p + 2 * i, &h, 2);
}

/* rows x cols of b-bit codes, any bytes (every pattern is a code); unit:
 * scales 1 or 2 and integer biases in -4..4, else MLX-like values. The
 * codes sit at an odd address, as a mapped file may put them. */
static void make_mlx(mlx_w *m, q35_dtype dt, int64_t rows, int64_t cols, int group, int aux,
                     int unit) {
    int b = q35_dtype_mlx_bits(dt), n = (1 << b) - 1;
    size_t qb = (size_t)rows * (size_t)(cols / 8 * b), ng = (size_t)rows * (size_t)(cols / group);
    size_t es = aux == Q35_DT_F32 ? 4 : 2;
    m->q = malloc(qb + 1);
    m->s = malloc(ng * es);
    m->z = malloc(ng * es);
    assert_true(m->q && m->s && m->z);
    for (size_t i = 0; i < qb + 1; i++)
        m->q[i] = (uint8_t)urand();
    for (size_t i = 0; i < ng; i++) {
        if (unit) {
            put_aux(m->s, aux, i, (float)irand(1, 2));
            put_aux(m->z, aux, i, (float)irand(-4, 4));
        } else {
            float range = 0.02f + 0.1f * fabsf(frand()), s = range / (float)n;
            put_aux(m->s, aux, i, urand() & 1 ? s : -s);
            put_aux(m->z, aux, i, (urand() & 1 ? 0.5f : -0.5f) * range);
        }
    }
    m->a = (q35_mlx_affine){m->q + 1, m->s, m->z, aux, group};
    m->t = (q35_tensor){dt, 2, {rows, cols}, &m->a};
}

static void free_mlx(mlx_w *m) {
    free(m->q);
    free(m->s);
    free(m->z);
}

/* Q5_K super-blocks: random bytes, d / dmin 1 (unit) or small. */
static uint8_t *make_q5k(int64_t rows, int64_t cols, int unit) {
    size_t bytes = (size_t)rows * q35_row_bytes(Q35_DT_Q5_K, cols);
    uint8_t *w = malloc(bytes);
    assert_non_null(w);
    for (size_t i = 0; i < bytes; i++)
        w[i] = (uint8_t)urand();
    for (size_t o = 0; o < bytes; o += 176) {
        uint16_t d = q35_f32_to_f16(unit ? 1.0f : 0.001f + 0.002f * fabsf(frand()));
        uint16_t dm = q35_f32_to_f16(unit ? 1.0f : 0.001f + 0.002f * fabsf(frand()));
        memcpy(w + o, &d, 2);
        memcpy(w + o + 2, &dm, 2);
    }
    return w;
}

/* ---- activations */

/* The q8 row's value of element j, d_b * a_j. */
static double q8_val(const uint8_t *x, int64_t cols, int64_t j) {
    return (double)q35_q8_row_d(x, cols)[j / 32] * (int8_t)x[j];
}

/* ---- the checks */

/* y (T x rows) of set s through the driver; 0 where s lacks dt. */
static int run_set(const q35_i8_kernels *k, const q35_tensor *w, const uint8_t *x, int T,
                   float *y) {
    if (!q35_i8_has(&k->mk[w->dtype])) return 0;
    int64_t rows = w->shape[0];
    memset(y, 0xff, (size_t)T * (size_t)rows * sizeof *y);
    q35_i8_matmul(k, w, x, q35_q8_row_stride(w->shape[1]), T, y, rows, 0, rows);
    return 1;
}

/* The definition for every (token, row): q35_i8_dot_ref(_mlx). */
static void ref_all(const q35_tensor *w, const uint8_t *x, int T, float *ref) {
    int64_t rows = w->shape[0], cols = w->shape[1];
    size_t ldx = q35_q8_row_stride(cols);
    for (int64_t o = 0; o < rows; o++)
        for (int t = 0; t < T; t++) {
            float v;
            if (q35_dtype_is_mlx(w->dtype)) {
                q35_i8_wview wv = q35_i8_wview_rows(w, o);
                v = q35_i8_dot_ref_mlx(w->dtype, &wv, x + t * ldx, cols);
            } else
                v = q35_i8_dot_ref(w->dtype,
                                   (const uint8_t *)w->data + o * q35_row_bytes(w->dtype, cols),
                                   x + t * ldx, cols);
            ref[t * rows + o] = v;
        }
}

/* Every set bit for bit equal to the definition (unit scales), and each
 * row split the same. */
static void check_exact(const q35_tensor *w, const uint8_t *x, int T, const char *what) {
    int64_t rows = w->shape[0];
    size_t n = (size_t)T * (size_t)rows;
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    assert_true(ref && got);
    ref_all(w, x, T, ref);
    for (int s = 0; s < n_sets; s++) {
        if (!run_set(sets[s], w, x, T, got)) continue;
        for (size_t i = 0; i < n; i++)
            if (got[i] != ref[i]) {
                printf("%s %s T %d: [%zu] %.1f vs %.1f\n", sets[s]->name, what, T, i, got[i],
                       ref[i]);
                fail();
            }
    }
    free(ref);
    free(got);
}

static void test_mlx_exact(void **st) {
    (void)st;
    const int groups[] = {32, 64, 128}, auxs[] = {Q35_DT_F16, Q35_DT_BF16, Q35_DT_F32};
    for (size_t f = 0; f < 6; f++)
        for (int gi = 0; gi < 3; gi++) {
            int g = groups[gi];
            /* 1, 3, 5, 10 blocks where the group allows: tails of the
             * kernels' 8-block steps and odd group counts */
            const int64_t widths[] = {g, 3 * g, g == 32 ? 160 : 5 * g, g == 32 ? 320 : 0};
            for (int wi = 0; wi < 4 && widths[wi]; wi++) {
                int64_t cols = widths[wi];
                int aux = auxs[(f + (size_t)gi + (size_t)wi) % 3];
                for (int rows = 1; rows <= 13; rows += 4)
                    for (int T = 1; T <= 9; T += 4) {
                        mlx_w m;
                        make_mlx(&m, mlx_types[f], rows, cols, g, aux, 1);
                        /* 8-bit codes: smaller a, so that sums stay < 2^24 */
                        uint8_t *x = make_unit_q8(T, cols, mlx_types[f] == Q35_DT_MLX8 ? 31 : 127);
                        char what[64];
                        snprintf(what, sizeof what, "%s g%d cols %lld rows %d aux %s",
                                 q35_dtype_name(mlx_types[f]), g, (long long)cols, rows,
                                 q35_dtype_name((q35_dtype)aux));
                        check_exact(&m.t, x, T, what);
                        free(x);
                        free_mlx(&m);
                    }
            }
        }
}

static void test_q5k_exact(void **st) {
    (void)st;
    const int64_t widths[] = {256, 512};
    for (int wi = 0; wi < 2; wi++)
        for (int rows = 1; rows <= 13; rows += 3)
            for (int T = 1; T <= 9; T += 2) {
                int64_t cols = widths[wi];
                uint8_t *w = make_q5k(rows, cols, 1);
                uint8_t *x = make_unit_q8(T, cols, 15);
                q35_tensor wt = {Q35_DT_Q5_K, 2, {rows, cols}, w};
                char what[64];
                snprintf(what, sizeof what, "q5_K cols %lld rows %d", (long long)cols, rows);
                check_exact(&wt, x, T, what);
                free(w);
                free(x);
            }
}

/* The definitions against the weights' values times the q8 rows' values,
 * and each set within rounding of the definitions; any row split gives
 * the same bits. */
static void check_real(const q35_tensor *w, const uint8_t *x, int T, const char *what) {
    int64_t rows = w->shape[0], cols = w->shape[1];
    size_t n = (size_t)T * (size_t)rows, ldx = q35_q8_row_stride(cols);
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got),
          *split = malloc(n * sizeof *split), *wf = malloc((size_t)cols * sizeof *wf);
    double *mag = malloc(n * sizeof *mag);
    assert_true(ref && got && split && wf && mag);
    ref_all(w, x, T, ref);
    for (int64_t o = 0; o < rows; o++) {
        double sabs[2048]; /* |s q| + |z| per element (MLX), |w| (Q5_K) */
        assert_true(cols <= 2048);
        if (q35_dtype_is_mlx(w->dtype)) {
            const q35_mlx_affine *a = (const q35_mlx_affine *)w->data;
            q35_mlx_row_decode(w, o, wf);
            for (int64_t j = 0; j < cols; j++) {
                size_t gi = (size_t)(o * (cols / a->group) + j / a->group);
                float z = q35_mlx_aux_f32(a->biases, a->aux, gi);
                sabs[j] = fabs((double)wf[j] - z) + fabs((double)z);
            }
        } else {
            q35_tensor_row_f32(w, o, wf);
            for (int64_t j = 0; j < cols; j++)
                sabs[j] = fabs((double)wf[j]) * 2; /* the mins' part is as large */
        }
        for (int t = 0; t < T; t++) {
            double dot = 0, m = 0;
            for (int64_t j = 0; j < cols; j++) {
                double xv = q8_val(x + t * ldx, cols, j);
                dot += (double)wf[j] * xv;
                m += sabs[j] * fabs(xv);
            }
            mag[t * rows + o] = m;
            if (!(fabs(dot - ref[t * rows + o]) <= 2e-5 * m + 1e-30)) {
                printf("definition %s: row %lld T %d: %g vs the values' %g (scale %g)\n", what,
                       (long long)o, t, ref[t * rows + o], dot, m);
                fail();
            }
        }
    }
    for (int s = 0; s < n_sets; s++) {
        if (!run_set(sets[s], w, x, T, got)) continue;
        for (size_t i = 0; i < n; i++)
            if (!(fabs((double)got[i] - ref[i]) <= 2e-5 * mag[i])) {
                printf("%s %s: [%zu] %g vs %g (scale %g)\n", sets[s]->name, what, i, got[i], ref[i],
                       mag[i]);
                fail();
            }
        const int cuts[] = {1, 5, 13};
        for (int ci = 0; ci < 3; ci++) {
            int64_t cut = cuts[ci] < rows ? cuts[ci] : rows - 1;
            q35_i8_matmul(sets[s], w, x, ldx, T, split, rows, 0, cut);
            q35_i8_matmul(sets[s], w, x, ldx, T, split, rows, cut, rows);
            assert_memory_equal(split, got, n * sizeof *got);
        }
    }
    free(ref);
    free(got);
    free(split);
    free(wf);
    free(mag);
}

static void test_mlx_realistic(void **st) {
    (void)st;
    const int groups[] = {32, 64, 128}, auxs[] = {Q35_DT_F16, Q35_DT_BF16, Q35_DT_F32};
    for (size_t f = 0; f < 6; f++)
        for (int gi = 0; gi < 3; gi++) {
            int64_t cols = gi == 1 ? 1024 : 384; /* 12 / 3 / 16 / 3 groups */
            int rows = 19, T = 1 + (int)(f + (size_t)gi) % 4;
            mlx_w m;
            make_mlx(&m, mlx_types[f], rows, cols, groups[gi], auxs[(f + (size_t)gi) % 3], 0);
            uint8_t *x = make_real_q8(T, cols, NULL);
            char what[64];
            snprintf(what, sizeof what, "%s g%d cols %lld", q35_dtype_name(mlx_types[f]),
                     groups[gi], (long long)cols);
            check_real(&m.t, x, T, what);
            free(x);
            free_mlx(&m);
        }
}

static void test_q5k_realistic(void **st) {
    (void)st;
    const int64_t widths[] = {256, 1024};
    for (int wi = 0; wi < 2; wi++) {
        int64_t cols = widths[wi];
        int rows = 21, T = 3 + wi * 4;
        uint8_t *w = make_q5k(rows, cols, 0);
        uint8_t *x = make_real_q8(T, cols, NULL);
        q35_tensor wt = {Q35_DT_Q5_K, 2, {rows, cols}, w};
        check_real(&wt, x, T, "q5_K");
        free(w);
        free(x);
    }
}

/* q35_matmul on each float set's integer twin sends MLX and Q5_K matrices
 * through the integer path (the driver's bits on the q8 rows
 * q35_acts_prepare made); the exact sets keep their float path. */
static void test_twins(void **st) {
    (void)st;
    const q35_kernels *floats[] = {q35_kernels_generic(), q35_kernels_avx2(), q35_kernels_avx512(),
                                   q35_kernels_amx(), q35_kernels_neon()};
    const int64_t cols = 512;
    const int rows = 97;
    for (int T = 1; T <= 20; T += 19) {
        float *x = malloc((size_t)T * cols * sizeof *x);
        float *y = malloc((size_t)T * rows * sizeof *y),
              *y2 = malloc((size_t)T * rows * sizeof *y2);
        assert_true(x && y && y2);
        for (int64_t i = 0; i < T * cols; i++)
            x[i] = frand();
        for (int fi = 0; fi < 5; fi++) {
            const q35_kernels *k = floats[fi];
            if (!k) continue;
            const q35_kernels *k8 = q35_kernels_int8(k);
            if (!k8->i8) continue;
            size_t nb = q35_acts_bytes(k8, T, cols);
            void *buf = aligned_alloc(64, (nb + 63) / 64 * 64);
            assert_non_null(buf);
            q35_acts a = q35_acts_prepare(k8, x, cols, T, cols, buf);
            assert_non_null(a.q8);
            for (int f = 0; f < 7; f++) {
                mlx_w m;
                uint8_t *q5 = NULL;
                q35_tensor wt;
                if (f < 6) {
                    make_mlx(&m, mlx_types[f], rows, cols, 64, Q35_DT_F16, 0);
                    wt = m.t;
                } else {
                    q5 = make_q5k(rows, cols, 0);
                    wt = (q35_tensor){Q35_DT_Q5_K, 2, {rows, cols}, q5};
                }
                const q35_i8_ukernel_desc *d = &k8->i8->mk[wt.dtype];
                assert_true(q35_i8_has(d)); /* every set has them */
                assert_int_equal(d->max_t, 0);
                q35_matmul(k8, NULL, &wt, &a, y, rows);
                q35_i8_matmul(k8->i8, &wt, a.q8, a.ldq8, T, y2, rows, 0, rows);
                assert_memory_equal(y, y2, (size_t)T * rows * sizeof *y);
                if (f < 6)
                    free_mlx(&m);
                else
                    free(q5);
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
        cmocka_unit_test(test_mlx_exact),     cmocka_unit_test(test_q5k_exact),
        cmocka_unit_test(test_mlx_realistic), cmocka_unit_test(test_q5k_realistic),
        cmocka_unit_test(test_twins),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
