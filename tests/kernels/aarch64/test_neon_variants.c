/* test_neon_variants.c — the three AArch64 kernel sets (plain NEON,
 * +dotprod, +i8mm) on the CPU this runs on: test_neon_qemu.sh runs it under
 * several qemu-aarch64 CPU models and says, in Q35_EXPECT_NEON, which set
 * the model's features must give. Checks that run-time detection offers
 * exactly the sets the CPU executes (a set offered on a CPU without its
 * instructions would die of SIGILL here), that Q35_KERNELS picks each by
 * name, that every offered set computes what the others compute, and that
 * each integer set (microkernel.h) is the plain C definition: its
 * quantizer byte for byte (NaN, infinities, ties and tiny blocks
 * included), its micro-kernels called directly at every tile shape
 * R x C <= mr x nr (bit for bit with every scale 1, where all float steps
 * are exact integers; within float32 rounding with real scales, and then
 * the same bits in every tile shape), and through the shared driver. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/half.h"
#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/kernels_neon.h"
#include "kernels/microkernel.h"
#include "kernels/mlx_affine.h"
#include "kernels/quant_block.h"

static const char *const level_names[Q35_NEON_LEVELS] = {"neon", "neon-dotprod", "neon-i8mm"};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 23)) - 1.0);
}

/* The highest level the environment says this CPU model has, or -1 when
 * not told (a native run). */
static int expected_level(void) {
    const char *e = getenv("Q35_EXPECT_NEON");
    if (!e || !*e) return -1;
    for (int l = 0; l < Q35_NEON_LEVELS; l++)
        if (!strcmp(e, level_names[l])) return l;
    fail_msg("Q35_EXPECT_NEON=%s is not a NEON set name", e);
    return -1;
}

static void test_detection(void **st) {
    (void)st;
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    printf("features: neon=%d dotprod=%d i8mm=%d\n", f.neon, f.dotprod, f.i8mm);
    assert_true(f.neon);
    int have = f.i8mm ? Q35_NEON_I8MM : f.dotprod ? Q35_NEON_DOTPROD : Q35_NEON_PLAIN;
    int want = expected_level();
    if (want >= 0 && have != want)
        fail_msg("detected %s, but this CPU model has %s", level_names[have], level_names[want]);
    for (int l = 0; l < Q35_NEON_LEVELS; l++) {
        const q35_kernels *k = q35_kernels_neon_level(l);
        if (l <= have) {
            assert_non_null(k);
            assert_true(!strcmp(k->name, level_names[l]));
        } else {
            assert_null(k);
        }
    }
}

/* Q35_KERNELS names a set; one the CPU lacks gives the best it has. */
static void test_force_by_name(void **st) {
    (void)st;
    const char *saved = getenv("Q35_KERNELS");
    char *keep = saved ? strdup(saved) : NULL;
    const q35_kernels *best = NULL;
    for (int l = 0; l < Q35_NEON_LEVELS; l++)
        if (q35_kernels_neon_level(l)) best = q35_kernels_neon_level(l);
    assert_non_null(best);
    /* by name: q35_kernels_best may give the set's integer twin */
    unsetenv("Q35_KERNELS");
    assert_true(q35_kernels_neon() == best);
    assert_true(!strcmp(q35_kernels_best()->name, best->name));
    for (int l = 0; l < Q35_NEON_LEVELS; l++) {
        setenv("Q35_KERNELS", level_names[l], 1);
        const q35_kernels *k = q35_kernels_neon(), *own = q35_kernels_neon_level(l);
        assert_true(k == (own ? own : best));
        assert_true(!strcmp(q35_kernels_best()->name, k->name));
    }
    setenv("Q35_KERNELS", "generic", 1);
    assert_true(!strcmp(q35_kernels_best()->name, "generic"));
    if (keep)
        setenv("Q35_KERNELS", keep, 1);
    else
        unsetenv("Q35_KERNELS");
    free(keep);
}

/* Float matmuls and vector ops: every offered set gives the plain NEON
 * set's bits (they share these functions; a set that stops sharing them
 * must still agree). */
static void test_float_ops_agree(void **st) {
    (void)st;
    const q35_kernels *plain = q35_kernels_neon_level(Q35_NEON_PLAIN);
    enum { ROWS = 37, COLS = 67, T = 6 };
    static float w[ROWS * COLS], x[T * COLS], y0[T * ROWS], y1[T * ROWS];
    for (int i = 0; i < ROWS * COLS; i++)
        w[i] = frand();
    for (int i = 0; i < T * COLS; i++)
        x[i] = frand();
    q35_tensor wt = {Q35_DT_F32, 2, {ROWS, COLS}, w};
    q35_acts a = q35_acts_prepare(plain, x, COLS, T, COLS, NULL);
    plain->matmul(&wt, &a, y0, ROWS, 0, ROWS);
    for (int l = 1; l < Q35_NEON_LEVELS; l++) {
        const q35_kernels *k = q35_kernels_neon_level(l);
        if (!k) continue;
        q35_acts ak = q35_acts_prepare(k, x, COLS, T, COLS, NULL);
        k->matmul(&wt, &ak, y1, ROWS, 0, ROWS);
        assert_memory_equal(y0, y1, sizeof y0);
        assert_true(k->dot(w, x, COLS) == plain->dot(w, x, COLS));
    }
}

static uint32_t urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static int irand(int lo, int hi) { /* [lo, hi] */
    return lo + (int)(urand() % (uint32_t)(hi - lo + 1));
}

static void put_f16(uint8_t *p, float v) {
    uint16_t h = q35_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static const q35_dtype formats[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K, Q35_DT_Q5_K,
                                    Q35_DT_Q6_K};

/* rows x cols of dt, random bytes; unit: every float scale 1 and integer
 * scales small enough that every sum stays an exact float32 integer (with
 * unit q8 rows, below). */
static uint8_t *make_w(q35_dtype dt, int64_t rows, int64_t cols, bool unit) {
    size_t rb = q35_row_bytes(dt, cols), bb = q35_dtype_block_bytes(dt);
    uint8_t *w = malloc((size_t)rows * rb);
    assert_non_null(w);
    for (size_t i = 0; i < (size_t)rows * rb; i++)
        w[i] = (uint8_t)urand();
    for (size_t o = 0; o < (size_t)rows * rb; o += bb) {
        uint8_t *b = w + o;
        float s1 = unit ? 1.0f : 0.001f + 0.01f * fabsf(frand());
        float s2 = unit ? 1.0f : 0.001f + 0.01f * fabsf(frand());
        switch (dt) {
        case Q35_DT_Q8_0:
        case Q35_DT_Q4_0: put_f16(b, s1); break;
        case Q35_DT_Q4_K:
        case Q35_DT_Q5_K:
            put_f16(b, s1);
            put_f16(b + 2, s2);
            break;
        case Q35_DT_Q6_K: put_f16(b + 208, s1); break;
        default: break;
        }
    }
    return w;
}

/* T q8 rows of `cols`, stride q35_q8_row_stride: unit ones have every
 * d = 1 and q in [-amax, amax] (sums filled in as microkernel.h defines
 * them); others are x (random, some large) through the reference
 * quantizer, x returned in xf when asked. */
static uint8_t *make_q8(int T, int64_t cols, bool unit, int amax, float **xf) {
    size_t st = q35_q8_row_stride(cols);
    uint8_t *x = aligned_alloc(64, (size_t)T * st);
    assert_non_null(x);
    memset(x, 0, (size_t)T * st);
    if (!unit) {
        float *f = malloc((size_t)T * cols * sizeof *f);
        assert_non_null(f);
        for (int64_t i = 0; i < T * cols; i++)
            f[i] = frand() * (i % 61 == 0 ? 20.0f : 1.0f);
        q35_q8_quantize_ref(f, cols, T, cols, x);
        if (xf)
            *xf = f;
        else
            free(f);
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

/* The integer path's definition of a weight row times a q8 row
 * (microkernel.h): q35_i8_dot_ref, and for Q5_K a second writing of
 * int8_generic.c's definition (Q4_K's with the fifth bit), which the
 * micro-kernels must meet as they meet the generic one: per block b,
 * sub-block j of its super-block,
 *     I_b = sum_l (n_l + 16 h_l) a_l,
 *     term_b = (d sc_j d_b) I_b - (dmin m_j d_b) (s_2b + s_2b+1),
 * added in block order; written here from the format (model/tensor.h),
 * apart from the kernels. */
static float dot_ref(q35_dtype dt, const uint8_t *w, const uint8_t *x, int64_t cols) {
    if (dt != Q35_DT_Q5_K) return q35_i8_dot_ref(dt, w, x, cols);
    const int8_t *a = (const int8_t *)x;
    const float *xd = q35_q8_row_d(x, cols);
    const int16_t *xs = q35_q8_row_s(x, cols);
    float y = 0;
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *sb = w + (size_t)(b / 8) * 176;
        int j = (int)(b % 8), sc, mn;
        int32_t I = 0;
        for (int l = 0; l < 32; l++) {
            int n = (sb[48 + 32 * (j / 2) + l] >> (4 * (j & 1))) & 15;
            int h = (sb[16 + l] >> j) & 1;
            I += (n + 16 * h) * a[32 * b + l];
        }
        q35_k4_scale_min(sb + 4, j, &sc, &mn);
        uint16_t h16;
        memcpy(&h16, sb, 2);
        float d = q35_f16_to_f32(h16);
        memcpy(&h16, sb + 2, 2);
        float dmin = q35_f16_to_f32(h16);
        int32_t S = xs[2 * b] + xs[2 * b + 1];
        y += (d * (float)sc * xd[b]) * (float)I - (dmin * (float)mn * xd[b]) * (float)S;
    }
    return y;
}

/* Level l's integer set (a copy in *copy); NULL where the CPU lacks the
 * level. Q5_K is in every set (the plain C definitions have it). */
static const q35_i8_kernels *level_set(int l, q35_i8_kernels *copy) {
    const q35_i8_kernels *k = q35_i8_kernels_neon_level(l);
    if (!k) return NULL;
    assert_non_null(k->mk[Q35_DT_Q5_K].fn);
    *copy = *k;
    return copy;
}

/* The q8 bytes of every set's quantizer are the reference's, on rows with
 * the cases where float32 steps could go another way. */
static void test_quantize_edges(void **st) {
    (void)st;
    const int64_t widths[] = {32, 64, 96, 256, 1056};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
        int64_t cols = widths[wi], ldx = cols + 5;
        int T = 7;
        float *x = malloc((size_t)T * ldx * sizeof *x);
        assert_non_null(x);
        for (int64_t i = 0; i < T * ldx; i++)
            x[i] = frand() * (i % 89 < 4 ? 40.0f : 1.0f);
        float *r1 = x + ldx, *r2 = x + 2 * ldx, *r3 = x + 3 * ldx, *r4 = x + 4 * ldx;
        for (int j = 0; j < 32; j++) {
            x[j] = j % 3 ? 0.0f : -0.0f;                  /* a zero block */
            r1[j] = (float)(j - 16) + 0.5f;               /* ties: x * id = k + 0.5 */
            r2[j] = (j & 1 ? -1 : 1) * 1e-41f * (float)j; /* subnormals: 127 / amax = inf */
            r3[j] = j == 5 ? NAN : frand();               /* a NaN among numbers */
            r4[j] = j == 9 ? INFINITY : j == 10 ? -INFINITY : frand();
        }
        r1[31] = 127.0f; /* amax 127: id = 1, so the ties stay ties */
        if (cols >= 64) {
            for (int j = 32; j < 64; j++)
                r3[j] = j == 40 ? -NAN : 3e38f * frand(); /* near float32's top */
            r4[32] = 1e-30f;
        }
        size_t bytes = (size_t)T * q35_q8_row_stride(cols);
        uint8_t *ref = aligned_alloc(64, bytes), *got = aligned_alloc(64, bytes);
        assert_true(ref && got);
        memset(ref, 0xa5, bytes);
        q35_q8_quantize_ref(x, ldx, T, cols, ref);
        for (int l = 0; l < Q35_NEON_LEVELS; l++) {
            const q35_i8_kernels *k = q35_i8_kernels_neon_level(l);
            if (!k) continue;
            memset(got, 0xa5, bytes);
            k->quantize(x, ldx, T, cols, got);
            for (size_t i = 0; i < bytes; i++)
                if (ref[i] != got[i])
                    fail_msg("%s quantize cols %lld: byte %zu of row %zu: %u, not %u", k->name,
                             (long long)cols, i % q35_q8_row_stride(cols),
                             i / q35_q8_row_stride(cols), got[i], ref[i]);
        }
        free(x);
        free(ref);
        free(got);
    }
}

/* Each micro-kernel called directly on every tile shape R x C <= mr x nr,
 * rows and tokens at odd strides (ldw > a row, q8 rows further apart):
 * unit data, bit for bit the definition; real scales, within float32
 * rounding of it (|got - ref| <= 2e-5 sum |w x|: ~100 block terms of
 * 2^-24 relative error each leave room) and every shape the bits of the
 * full tile. */
static void check_tiles(const q35_i8_kernels *k, q35_dtype dt, int64_t cols, bool unit) {
    const q35_i8_ukernel_desc *d = &k->mk[dt];
    int mr = d->mr, nr = d->nr;
    size_t rb = q35_row_bytes(dt, cols), ldw = rb + 7, st = q35_q8_row_stride(cols);
    size_t ldx = st * 2;
    int kq = q35_dtype_block_elems(dt) == Q35_KBLOCK;
    uint8_t *w0 = make_w(dt, mr, cols, unit), *w = malloc((size_t)mr * ldw);
    float *xf = NULL;
    uint8_t *x0 = make_q8(nr, cols, unit, kq ? 15 : 127, &xf);
    uint8_t *x = aligned_alloc(64, (size_t)nr * ldx);
    assert_true(w && x);
    for (int r = 0; r < mr; r++)
        memcpy(w + r * ldw, w0 + r * rb, rb);
    for (int c = 0; c < nr; c++)
        memcpy(x + c * ldx, x0 + c * st, st);
    enum { MAXT = 16 };
    assert_true(mr <= MAXT && nr <= MAXT);
    float ref[MAXT][MAXT], full[MAXT][MAXT], got[MAXT * MAXT];
    double mag[MAXT][MAXT];
    q35_tensor wt = {dt, 2, {mr, cols}, w0};
    float *wf = malloc((size_t)cols * sizeof *wf);
    assert_non_null(wf);
    for (int r = 0; r < mr; r++) {
        q35_tensor_row_f32(&wt, r, wf);
        for (int c = 0; c < nr; c++) {
            ref[r][c] = dot_ref(dt, w0 + r * rb, x0 + c * st, cols);
            double m = 0;
            for (int64_t j = 0; j < cols; j++) {
                float xv = xf ? xf[c * cols + j] : (float)(int8_t)x0[c * st + j];
                m += fabs((double)wf[j] * xv);
            }
            mag[r][c] = m;
        }
    }
    for (int R = mr; R >= 1; R--)
        for (int C = nr; C >= 1; C--) {
            for (int i = 0; i < MAXT * MAXT; i++)
                got[i] = 12345.0f;
            d->fn(w, ldw, R, x, ldx, C, cols, got, MAXT);
            for (int c = 0; c < MAXT; c++)
                for (int r = 0; r < MAXT; r++) {
                    float v = got[c * MAXT + r];
                    if (r >= R || c >= C) {
                        if (v != 12345.0f)
                            fail_msg("%s %s tile %dx%d wrote y outside it (row %d token %d)",
                                     k->name, q35_dtype_name(dt), R, C, r, c);
                        continue;
                    }
                    if (R == mr && C == nr) full[r][c] = v;
                    bool ok = unit ? v == ref[r][c]
                                   : fabs((double)v - ref[r][c]) <= 2e-5 * mag[r][c] &&
                                         !memcmp(&v, &full[r][c], sizeof v);
                    if (!ok)
                        fail_msg("%s %s cols %lld %s tile %dx%d row %d token %d: %.9g, "
                                 "definition %.9g, full tile %.9g",
                                 k->name, q35_dtype_name(dt), (long long)cols,
                                 unit ? "unit" : "real", R, C, r, c, v, ref[r][c], full[r][c]);
                }
        }
    free(w0);
    free(w);
    free(x0);
    free(x);
    free(xf);
    free(wf);
}

static void test_ukernel_tiles(void **st) {
    (void)st;
    for (int l = 0; l < Q35_NEON_LEVELS; l++) {
        q35_i8_kernels copy;
        const q35_i8_kernels *k = level_set(l, &copy);
        if (!k) continue;
        int n = 0;
        for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
            q35_dtype dt = formats[f];
            if (!k->mk[dt].fn) continue;
            n++;
            bool kq = q35_dtype_block_elems(dt) == Q35_KBLOCK;
            const int64_t widths[] = {32, 96, 256, 512};
            for (int wi = kq ? 2 : 0; wi < 4; wi++) {
                check_tiles(k, dt, widths[wi], true);
                check_tiles(k, dt, widths[wi], false);
            }
        }
        printf("%s: %d formats' micro-kernels checked\n", k->name, n);
        assert_true(k->mk[Q35_DT_Q8_0].fn && k->mk[Q35_DT_Q4_0].fn && k->mk[Q35_DT_Q4_K].fn &&
                    k->mk[Q35_DT_Q5_K].fn && k->mk[Q35_DT_Q6_K].fn);
    }
}

/* Through the driver: unit data over row counts and token counts past
 * every tile edge, bit for bit the definition; real data, any row split
 * the same bits. */
static void test_driver(void **st) {
    (void)st;
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        q35_dtype dt = formats[f];
        bool kq = q35_dtype_block_elems(dt) == Q35_KBLOCK;
        int64_t cols = kq ? 512 : 160;
        size_t ldx = q35_q8_row_stride(cols);
        for (int unit = 1; unit >= 0; unit--)
            for (int rows = 1; rows <= 13; rows += unit ? 2 : 6) {
                int T = unit ? 1 + rows % 9 : 11;
                uint8_t *w = make_w(dt, rows, cols, unit);
                uint8_t *x = make_q8(T, cols, unit, kq ? 15 : 127, NULL);
                q35_tensor wt = {dt, 2, {rows, cols}, w};
                int64_t ldy = rows + 3;
                float *ref = malloc((size_t)T * ldy * sizeof *ref);
                float *got = malloc((size_t)T * ldy * sizeof *got);
                float *split = malloc((size_t)T * ldy * sizeof *split);
                assert_true(ref && got && split);
                memset(ref, 0, (size_t)T * ldy * sizeof *ref);
                for (int t = 0; t < T; t++)
                    for (int o = 0; o < rows; o++)
                        ref[t * ldy + o] =
                            dot_ref(dt, w + (size_t)o * q35_row_bytes(dt, cols), x + t * ldx, cols);
                for (int l = 0; l < Q35_NEON_LEVELS; l++) {
                    q35_i8_kernels copy;
                    const q35_i8_kernels *k = level_set(l, &copy);
                    if (!k || !k->mk[dt].fn) continue;
                    memcpy(got, ref, (size_t)T * ldy * sizeof *got);
                    memcpy(split, ref, (size_t)T * ldy * sizeof *got);
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < rows; o++)
                            got[t * ldy + o] = split[t * ldy + o] = -1.0f;
                    q35_i8_matmul(k, &wt, x, ldx, T, got, ldy, 0, rows);
                    if (unit && memcmp(got, ref, (size_t)T * ldy * sizeof *got))
                        fail_msg("%s %s rows %d T %d: not the definition's bits", k->name,
                                 q35_dtype_name(dt), rows, T);
                    for (int r = 0; r < rows;) {
                        int e = r + 1 + (r * 5 + 2) % 7;
                        e = e > rows ? rows : e;
                        q35_i8_matmul(k, &wt, x, ldx, T, split, ldy, r, e);
                        r = e;
                    }
                    if (memcmp(got, split, (size_t)T * ldy * sizeof *got))
                        fail_msg("%s %s rows %d T %d: depends on the row split", k->name,
                                 q35_dtype_name(dt), rows, T);
                }
                free(w);
                free(x);
                free(ref);
                free(got);
                free(split);
            }
    }
}

/* Each NEON set's integer twin (q35_kernels_int8): same name and float
 * ops, its level's integer set; q35_matmul through it is the driver on
 * the q8 rows q35_acts_prepare made (quantized with that set's quantizer),
 * for every format with a micro-kernel; the exact mode has no integer
 * path. */
static void test_twins(void **st) {
    (void)st;
    int64_t cols = 512;
    int rows = 45, T = 6;
    float *x = malloc((size_t)T * cols * sizeof *x);
    float *y = malloc((size_t)T * rows * sizeof *y), *y2 = malloc((size_t)T * rows * sizeof *y2);
    assert_true(x && y && y2);
    for (int64_t i = 0; i < T * cols; i++)
        x[i] = frand();
    for (int l = 0; l < Q35_NEON_LEVELS; l++) {
        const q35_kernels *k = q35_kernels_neon_level(l);
        if (!k) continue;
        assert_null(k->i8);
        const q35_kernels *k8 = q35_kernels_int8(k);
        assert_true(k8 != k && !strcmp(k8->name, k->name) && k8->matmul == k->matmul);
        assert_true(k8->i8 == q35_i8_kernels_neon_level(l));
        assert_true(q35_kernels_int8(k8) == k8);
        size_t nb = q35_acts_bytes(k8, T, cols);
        void *buf = aligned_alloc(64, (nb + 63) / 64 * 64);
        assert_non_null(buf);
        q35_acts a = q35_acts_prepare(k8, x, cols, T, cols, buf);
        assert_non_null(a.q8);
        for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
            if (!k8->i8->mk[formats[f]].fn) continue;
            uint8_t *w = make_w(formats[f], rows, cols, false);
            q35_tensor wt = {formats[f], 2, {rows, cols}, w};
            q35_matmul(k8, NULL, &wt, &a, y, rows);
            q35_i8_matmul(k8->i8, &wt, a.q8, a.ldq8, T, y2, rows, 0, rows);
            assert_memory_equal(y, y2, (size_t)T * rows * sizeof *y);
            free(w);
        }
        free(buf);
    }
    setenv("Q35_EXACT", "1", 1);
    assert_null(q35_kernels_best()->i8);
    unsetenv("Q35_EXACT");
    assert_non_null(q35_kernels_best()->i8);
    free(x);
    free(y);
    free(y2);
}

/* An aux (scales / biases) value v stored as dtype aux at p[i]; returns
 * the value as stored. */
static float put_aux(void *p, int aux, size_t i, float v) {
    if (aux == Q35_DT_F32) {
        memcpy((char *)p + 4 * i, &v, 4);
        return v;
    }
    uint16_t h = aux == Q35_DT_BF16 ? q35_f32_to_bf16(v) : q35_f32_to_f16(v);
    memcpy((char *)p + 2 * i, &h, 2);
    return aux == Q35_DT_BF16 ? q35_bf16_to_f32(h) : q35_f16_to_f32(h);
}

/* MLX affine on the NEON float path (every width, group and aux dtype,
 * codes at an odd address): within float32 rounding of a float64 dot over
 * the decoded rows (1e-5 of sum |w x|, as for the x86 path), the same bits
 * for any row split and any grouping of tokens. */
static void test_mlx_float(void **st) {
    (void)st;
    const q35_dtype dts[] = {Q35_DT_MLX2, Q35_DT_MLX3, Q35_DT_MLX4,
                             Q35_DT_MLX5, Q35_DT_MLX6, Q35_DT_MLX8};
    const int groups[] = {32, 64, 128}, auxs[] = {Q35_DT_F16, Q35_DT_BF16, Q35_DT_F32};
    const q35_kernels *k = q35_kernels_neon_level(Q35_NEON_PLAIN);
    int n = 0;
    for (int di = 0; di < 6; di++)
        for (int gi = 0; gi < 3; gi++) {
            q35_dtype dt = dts[di];
            int b = q35_dtype_mlx_bits(dt), gs = groups[gi], aux = auxs[(di + gi) % 3];
            int rows = 7 + gi, T = 5;
            int64_t cols = 384, ng = cols / gs, ldx = cols + 3;
            size_t qb = (size_t)rows * (size_t)(cols / 8 * b);
            uint8_t *mem = malloc(qb + 1), *q = mem + 1;
            void *sc = malloc((size_t)rows * ng * 4), *bi = malloc((size_t)rows * ng * 4);
            float *x = malloc((size_t)T * ldx * 4), *wf = malloc((size_t)cols * 4);
            float *y = malloc((size_t)T * rows * 4), *y2 = malloc((size_t)T * rows * 4);
            assert_true(mem && sc && bi && x && wf && y && y2);
            for (size_t i = 0; i < qb; i++)
                q[i] = (uint8_t)urand();
            for (size_t i = 0; i < (size_t)rows * ng; i++) {
                put_aux(sc, aux, i, 0.01f + 0.05f * fabsf(frand()));
                put_aux(bi, aux, i, 0.05f * frand());
            }
            for (int64_t i = 0; i < T * ldx; i++)
                x[i] = frand();
            q35_mlx_affine ma = {q, sc, bi, aux, gs};
            q35_tensor w = {dt, 2, {rows, cols}, &ma};
            q35_acts a = q35_acts_prepare(k, x, ldx, T, cols, NULL);
            memset(y, 0, (size_t)T * rows * 4);
            k->matmul(&w, &a, y, rows, 0, rows);
            for (int o = 0; o < rows; o++) {
                q35_tensor_row_f32(&w, o, wf);
                for (int t = 0; t < T; t++) {
                    double ref = 0, mag = 0;
                    for (int64_t j = 0; j < cols; j++) {
                        ref += (double)wf[j] * x[t * ldx + j];
                        mag += fabs((double)wf[j] * x[t * ldx + j]);
                    }
                    double err = fabs(y[t * rows + o] - ref);
                    if (!(err <= 1e-5 * mag))
                        fail_msg("neon mlx %d-bit group %d aux %d row %d token %d: %.9g, "
                                 "float64 %.9g (sum |w x| %.3g)",
                                 b, gs, aux, o, t, y[t * rows + o], ref, mag);
                }
            }
            /* any row split, one token at a time: the same bits */
            for (int r = 0; r < rows;) {
                int e = r + 1 + r % 3;
                e = e > rows ? rows : e;
                for (int t = 0; t < T; t++) {
                    q35_acts at = q35_acts_prepare(k, x + t * ldx, ldx, 1, cols, NULL);
                    k->matmul(&w, &at, y2 + t * rows, rows, r, e);
                }
                r = e;
            }
            assert_memory_equal(y, y2, (size_t)T * rows * 4);
            /* what q35_matmul does with it: the same function */
            q35_matmul(k, NULL, &w, &a, y2, rows);
            assert_memory_equal(y, y2, (size_t)T * rows * 4);
            n++;
            free(mem);
            free(sc);
            free(bi);
            free(x);
            free(wf);
            free(y);
            free(y2);
        }
    printf("neon mlx: %d width x group cases\n", n);
}

/* Q5_K on the NEON float path (the exact mode): the bits of the set's
 * float32 matmul over the dequantized matrix, as for Q4_K / Q6_K
 * (test_kernels.c), for few tokens (in registers) and many (panels). */
static void test_q5k_float(void **st) {
    (void)st;
    const q35_kernels *k = q35_kernels_neon_level(Q35_NEON_PLAIN);
    const int Ts[] = {1, 3, 9};
    for (int ti = 0; ti < 3; ti++) {
        int rows = 13, T = Ts[ti];
        int64_t cols = 512, ldx = cols + 1;
        uint8_t *w = make_w(Q35_DT_Q5_K, rows, cols, false);
        float *wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)T * ldx * 4);
        float *y = malloc((size_t)T * rows * 4), *y2 = malloc((size_t)T * rows * 4);
        assert_true(wf && x && y && y2);
        q35_tensor wq = {Q35_DT_Q5_K, 2, {rows, cols}, w}, w32 = {Q35_DT_F32, 2, {rows, cols}, wf};
        for (int o = 0; o < rows; o++)
            q35_tensor_row_f32(&wq, o, wf + (int64_t)o * cols);
        for (int64_t i = 0; i < T * ldx; i++)
            x[i] = frand();
        q35_acts a = q35_acts_prepare(k, x, ldx, T, cols, NULL);
        q35_matmul(k, NULL, &wq, &a, y, rows);
        q35_matmul(k, NULL, &w32, &a, y2, rows);
        assert_memory_equal(y, y2, (size_t)T * rows * 4);
        free(w);
        free(wf);
        free(x);
        free(y);
        free(y2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection),       cmocka_unit_test(test_force_by_name),
        cmocka_unit_test(test_float_ops_agree), cmocka_unit_test(test_quantize_edges),
        cmocka_unit_test(test_ukernel_tiles),   cmocka_unit_test(test_driver),
        cmocka_unit_test(test_twins),           cmocka_unit_test(test_mlx_float),
        cmocka_unit_test(test_q5k_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
