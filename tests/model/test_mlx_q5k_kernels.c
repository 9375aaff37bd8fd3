/* test_mlx_q5k_kernels.c — the matmul and row lookup of MLX affine and Q5_K
 * matrices, on random bytes (every byte pattern is a valid matrix):
 *   - rows decode to the values of an independent reading: MLX codes read
 *     bit by bit from the stream, s * q + z in float32; Q5_K through
 *     formats/gguf_quants.c's decoder;
 *   - the plain C matmul gives exactly the generic float32 matmul over those
 *     decoded rows (same float32 order);
 *   - the fastest float set (q35_kernels_pick(true), the exact mode; the
 *     integer path is tests/kernels/test_int8_mlx_q5k.c's) is within float32
 *     rounding of a float64 dot over the decoded rows: |err| <= 1e-5 of the
 *     sum of |w x| terms (the factored MLX form rounds s * sum(q x) and
 *     z * sum(x) separately; 1e-5 is ~100 ulp of that scale);
 *   - any alignment (codes at odd addresses), odd row counts, 1..9 tokens. */
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
#include "formats/gguf_quants.h"
#include "kernels/kernels.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float frnd(float lo, float hi) {
    return lo + (hi - lo) * (float)(rnd() % 100000) / 100000.0f;
}

static void store_aux(void *p, int aux, size_t i, float v) {
    if (aux == Q35_DT_F32) {
        memcpy((char *)p + 4 * i, &v, 4);
    } else {
        uint16_t h = aux == Q35_DT_BF16 ? q35_f32_to_bf16(v) : q35_f32_to_f16(v);
        memcpy((char *)p + 2 * i, &h, 2);
    }
}
static float load_aux(const void *p, int aux, size_t i) {
    if (aux == Q35_DT_F32) {
        float f;
        memcpy(&f, (const char *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return aux == Q35_DT_BF16 ? q35_bf16_to_f32(h) : q35_f16_to_f32(h);
}

/* y = w x with the given set over all rows, and the checks above against
 * the decoded rows `dec` ([rows, cols] float32). */
static void check_matmul(const q35_tensor *w, const float *dec, int64_t rows, int64_t cols,
                         const char *what) {
    const int Ts[] = {1, 3, 9};
    q35_tensor wf = {Q35_DT_F32, 2, {rows, cols}, dec};
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        int T = Ts[ti];
        float *x = malloc((size_t)T * (size_t)cols * sizeof *x);
        float *y = malloc((size_t)T * (size_t)rows * sizeof *y);
        float *yf = malloc((size_t)T * (size_t)rows * sizeof *yf);
        assert_true(x && y && yf);
        for (int64_t i = 0; i < T * cols; i++)
            x[i] = frnd(-1, 1);
        const q35_kernels *g = q35_kernels_generic();
        q35_acts a = q35_acts_prepare(g, x, cols, T, cols, NULL);
        q35_matmul(g, NULL, w, &a, y, rows);
        q35_matmul(g, NULL, &wf, &a, yf, rows);
        if (memcmp(y, yf, (size_t)T * (size_t)rows * sizeof *y))
            fail_msg("%s T=%d: generic in place != generic over the decoded rows", what, T);
        /* the fastest float set: the integer path (8-bit activations, another
         * computation) is held to its own definition in tests/kernels */
        const q35_kernels *k = q35_kernels_pick(true);
        void *buf = NULL;
        size_t pb = q35_acts_bytes(k, T, cols);
        if (pb) assert_int_equal(posix_memalign(&buf, 64, pb), 0);
        a = q35_acts_prepare(k, x, cols, T, cols, buf);
        q35_matmul(k, NULL, w, &a, y, rows);
        for (int t = 0; t < T; t++)
            for (int64_t o = 0; o < rows; o++) {
                double ref = 0, mag = 0;
                for (int64_t c = 0; c < cols; c++) {
                    ref += (double)dec[o * cols + c] * x[t * cols + c];
                    mag += fabs((double)dec[o * cols + c] * x[t * cols + c]);
                }
                double err = fabs(y[t * rows + o] - ref);
                if (err > 1e-5 * mag + 1e-30)
                    fail_msg("%s set %s T=%d row %lld: %g vs %g (|terms| %g)", what, k->name, T,
                             (long long)o, y[t * rows + o], ref, mag);
            }
        free(buf);
        free(x);
        free(y);
        free(yf);
    }
}

static void mlx_case(int bits, int group, int aux, int64_t rows, int64_t cols) {
    const int64_t ng = cols / group;
    const size_t cb = (size_t)(rows * cols * bits / 8), ab = aux == Q35_DT_F32 ? 4 : 2;
    uint8_t *codes = malloc(cb + 1); /* codes at an odd address */
    uint8_t *sc = malloc((size_t)(rows * ng) * ab), *bi = malloc((size_t)(rows * ng) * ab);
    float *dec = malloc((size_t)(rows * cols) * sizeof *dec), *row = malloc((size_t)cols * 4);
    assert_true(codes && sc && bi && dec && row);
    for (size_t i = 0; i < cb + 1; i++)
        codes[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < rows * ng; i++) {
        store_aux(sc, aux, (size_t)i, frnd(-0.05f, 0.05f));
        store_aux(bi, aux, (size_t)i, frnd(-0.3f, 0.3f));
    }
    /* the independent reading: bit j*b + i of the row's stream, one by one */
    const uint8_t *q = codes + 1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            uint32_t v = 0;
            for (int i = 0; i < bits; i++) {
                int64_t bit = r * cols * bits + c * bits + i;
                v |= (uint32_t)((q[bit / 8] >> (bit % 8)) & 1) << i;
            }
            size_t gi = (size_t)(r * ng + c / group);
            float s = load_aux(sc, aux, gi), z = load_aux(bi, aux, gi);
            float sq = s * (float)v;
            dec[r * cols + c] = sq + z;
        }
    q35_mlx_affine ma = {q, sc, bi, aux, group};
    static const q35_dtype dts[] = {0,           0,           Q35_DT_MLX2, Q35_DT_MLX3, Q35_DT_MLX4,
                                    Q35_DT_MLX5, Q35_DT_MLX6, 0,           Q35_DT_MLX8};
    q35_tensor w = {dts[bits], 2, {rows, cols}, &ma};
    assert_int_equal(q35_dtype_mlx_bits(w.dtype), bits);
    char what[96];
    snprintf(what, sizeof what, "mlx%d/g%d %s [%lld, %lld]", bits, group,
             aux == Q35_DT_F32   ? "f32"
             : aux == Q35_DT_F16 ? "f16"
                                 : "bf16",
             (long long)rows, (long long)cols);
    for (int64_t r = 0; r < rows; r++) {
        q35_tensor_row_f32(&w, r, row);
        if (memcmp(row, dec + r * cols, (size_t)cols * 4))
            fail_msg("%s: row %lld decodes differently", what, (long long)r);
    }
    check_matmul(&w, dec, rows, cols, what);
    free(codes);
    free(sc);
    free(bi);
    free(dec);
    free(row);
}

static void test_mlx_every_width(void **st) {
    (void)st;
    const int bits[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
    const int auxes[] = {Q35_DT_F16, Q35_DT_BF16, Q35_DT_F32};
    for (int b = 0; b < 6; b++)
        for (int g = 0; g < 3; g++)
            mlx_case(bits[b], groups[g], auxes[(b + g) % 3], 7, 384);
    mlx_case(4, 64, Q35_DT_F16, 53, 1024); /* several chunks, many groups */
    mlx_case(3, 32, Q35_DT_BF16, 1, 128);  /* one row: the last group is the only one */
}

static void test_q5k(void **st) {
    (void)st;
    const int64_t rows = 13, cols = 768; /* 3 super-blocks a row */
    const size_t bytes = (size_t)rows * q35_row_bytes(Q35_DT_Q5_K, cols);
    uint8_t *raw = malloc(bytes + 1), *blk = raw + 1;
    float *dec = malloc((size_t)(rows * cols) * 4), *row = malloc((size_t)cols * 4);
    assert_true(raw && dec && row);
    for (size_t i = 0; i < bytes + 1; i++)
        raw[i] = (uint8_t)rnd();
    for (size_t b = 0; b < bytes / 176; b++) { /* sane d, dmin */
        uint16_t d = q35_f32_to_f16(frnd(0.0005f, 0.002f)), m = q35_f32_to_f16(frnd(0, 0.004f));
        memcpy(blk + 176 * b, &d, 2);
        memcpy(blk + 176 * b + 2, &m, 2);
    }
    q35_err e = {0};
    assert_int_equal(q35_ggml_dequantize(Q35_GGML_Q5_K, blk, dec, rows * cols, &e), 0);
    q35_tensor w = {Q35_DT_Q5_K, 2, {rows, cols}, blk};
    for (int64_t r = 0; r < rows; r++) {
        q35_tensor_row_f32(&w, r, row);
        if (memcmp(row, dec + r * cols, (size_t)cols * 4))
            fail_msg("q5_K row %lld decodes differently from gguf_quants.c", (long long)r);
    }
    check_matmul(&w, dec, rows, cols, "q5_K");
    free(raw);
    free(dec);
    free(row);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlx_every_width),
        cmocka_unit_test(test_q5k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
