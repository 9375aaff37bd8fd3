/* int8_test_data.h — the random weights and q8 rows the integer-kernel
 * tests share (test_int8*.c): an xorshift generator seeded by the includer
 * (INT8_TEST_SEED, so each test keeps its own inputs), Q8_0/Q4_0/Q4_K/Q6_K
 * rows with unit or realistic scales, and q8 token rows. Every buffer is
 * the caller's to free (free for weights, free for aligned_alloc'd rows). */
#ifndef Q35_TESTS_INT8_TEST_DATA_H
#define Q35_TESTS_INT8_TEST_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "kernels/microkernel.h"

static uint64_t rng = INT8_TEST_SEED;

static inline uint32_t urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static inline float frand(void) { /* [-1, 1) */
    return (float)((urand() >> 8) * (1.0 / (1 << 23)) - 1.0);
}

static inline int irand(int lo, int hi) { /* [lo, hi] */
    return lo + (int)(urand() % (uint32_t)(hi - lo + 1));
}

static inline void put_f16(uint8_t *p, float v) {
    uint16_t h = q35_f32_to_f16(v);
    memcpy(p, &h, 2);
}

/* rows x cols of dt, random bytes; unit: every scale 1 (Q6_K's int8
 * sub-scales small) so that all sums stay exact integers. */
static inline uint8_t *make_w(q35_dtype dt, int64_t rows, int64_t cols, int unit) {
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

/* T q8 rows with every d = 1 and random q in [-amax, amax] (the sums
 * filled in as the format defines them). */
static inline uint8_t *make_unit_q8(int T, int64_t cols, int amax) {
    size_t st = q35_q8_row_stride(cols);
    uint8_t *x = aligned_alloc(64, (size_t)T * st);
    assert_non_null(x);
    memset(x, 0, (size_t)T * st);
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

/* T q8 rows from random floats (a few 20x outliers) by the reference
 * quantizer; xf ([T, cols]) receives the floats, or NULL. */
static inline uint8_t *make_real_q8(int T, int64_t cols, float *xf) {
    float *f = xf ? xf : malloc((size_t)T * (size_t)cols * sizeof *f);
    assert_non_null(f);
    size_t st = q35_q8_row_stride(cols);
    uint8_t *x = aligned_alloc(64, (size_t)T * st);
    assert_non_null(x);
    memset(x, 0, (size_t)T * st);
    for (int64_t i = 0; i < T * cols; i++)
        f[i] = frand() * (i % 61 == 0 ? 20.0f : 1.0f);
    q35_q8_quantize_ref(f, cols, T, cols, x);
    if (!xf) free(f);
    return x;
}

/* unit: make_unit_q8's rows; else make_real_q8's, their floats in xf. */
static inline uint8_t *make_q8(int T, int64_t cols, int unit, int amax, float *xf) {
    return unit ? make_unit_q8(T, cols, amax) : make_real_q8(T, cols, xf);
}

#endif
