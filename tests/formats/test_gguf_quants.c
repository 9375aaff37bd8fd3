/* test_gguf_quants.c — dequantization of ggml blocks, checked two ways:
 *  1. Hand-built blocks: random integer quants and scales are packed into
 *     each format by a packer written here from the layout, element by
 *     element (not mirroring the decoder's loops), and the decoded floats
 *     must equal the formula evaluated on those integers.
 *  2. llama.cpp's own quantizations: every Q8_0 / Q4_0 / Q4_K / Q6_K tensor
 *     of the golden GGUF files, decoded, must lie within that format's
 *     quantization error of the same tensor in the bf16 file (errors bounded
 *     by the block scale for Q8_0 / Q4_0, by the relative RMS error the
 *     bit width allows for the k-quants).
 * tests/forward/test_gguf_quant_ref.py adds a third, numpy reading of every
 * format, end to end through the loader and the forward pass. */
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
#include "formats/gguf.h"
#include "formats/gguf_quants.h"

#define GOLDEN_GGUF Q35_FIXTURES "/gguf/"
#define NB 3 /* blocks per test */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) { /* uniform-ish in [0, n) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11) % n;
}

/* A scale exactly representable in f16: (1 + k/16) * 2^-e. */
static float rnd_scale(void) {
    return ldexpf(1.0f + (float)rnd(16) / 16.0f, -(int)(2 + rnd(6)));
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_f16(uint8_t *p, float f) {
    put16(p, q35_f32_to_f16(f));
}

static void put_nibble(uint8_t *byte, int high, int v) {
    if (high)
        *byte = (uint8_t)((*byte & 0x0f) | (v << 4));
    else
        *byte = (uint8_t)((*byte & 0xf0) | (v & 0x0f));
}

static void put_bits(uint8_t *byte, int shift, int width, int v) {
    int mask = ((1 << width) - 1) << shift;
    *byte = (uint8_t)((*byte & ~mask) | ((v << shift) & mask));
}

static void check_decode(uint32_t type, const uint8_t *blocks, int64_t n, const double *want) {
    float *got = malloc((size_t)n * sizeof *got);
    q35_err e = {0};
    assert_int_equal(q35_ggml_dequantize(type, blocks, got, n, &e), Q35_OK);
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-6 * fmax(1.0, fabs(want[i]));
        if (fabs(got[i] - want[i]) > tol) {
            fprintf(stderr, "%s element %lld: got %.9g want %.9g\n", q35_ggml_type_name(type),
                    (long long)i, got[i], want[i]);
            fail();
        }
    }
    free(got);
}

/* ------------------------------------------------ 32-element block formats */

static void test_q4_0_q4_1(void **state) {
    (void)state;
    uint8_t b0[NB * 18] = {0}, b1[NB * 20] = {0};
    double w0[NB * 32], w1[NB * 32];
    for (int k = 0; k < NB; k++) {
        float d = rnd_scale(), m = -rnd_scale();
        uint8_t *x0 = b0 + 18 * k, *x1 = b1 + 20 * k;
        put_f16(x0, d);
        put_f16(x1, d);
        put_f16(x1 + 2, m);
        for (int i = 0; i < 32; i++) {
            int q = (int)rnd(16);
            put_nibble(&x0[2 + i % 16], i >= 16, q);
            put_nibble(&x1[4 + i % 16], i >= 16, q);
            w0[32 * k + i] = (double)d * (q - 8);
            w1[32 * k + i] = (double)d * q + m;
        }
    }
    check_decode(Q35_GGML_Q4_0, b0, NB * 32, w0);
    check_decode(Q35_GGML_Q4_1, b1, NB * 32, w1);
}

static void test_q5_0_q5_1(void **state) {
    (void)state;
    uint8_t b0[NB * 22] = {0}, b1[NB * 24] = {0};
    double w0[NB * 32], w1[NB * 32];
    for (int k = 0; k < NB; k++) {
        float d = rnd_scale(), m = -rnd_scale();
        uint8_t *x0 = b0 + 22 * k, *x1 = b1 + 24 * k;
        put_f16(x0, d);
        put_f16(x1, d);
        put_f16(x1 + 2, m);
        for (int i = 0; i < 32; i++) {
            int q = (int)rnd(32);
            put_nibble(&x0[6 + i % 16], i >= 16, q & 15);
            put_nibble(&x1[8 + i % 16], i >= 16, q & 15);
            /* fifth bit: bit i of the little-endian u32 after the scale(s) */
            put_bits(&x0[2 + i / 8], i % 8, 1, q >> 4);
            put_bits(&x1[4 + i / 8], i % 8, 1, q >> 4);
            w0[32 * k + i] = (double)d * (q - 16);
            w1[32 * k + i] = (double)d * q + m;
        }
    }
    check_decode(Q35_GGML_Q5_0, b0, NB * 32, w0);
    check_decode(Q35_GGML_Q5_1, b1, NB * 32, w1);
}

static void test_q8_0_q8_1(void **state) {
    (void)state;
    uint8_t b0[NB * 34] = {0}, b1[NB * 36] = {0};
    double w[NB * 32];
    for (int k = 0; k < NB; k++) {
        float d = rnd_scale();
        put_f16(b0 + 34 * k, d);
        put_f16(b1 + 36 * k, d);
        put_f16(b1 + 36 * k + 2, 123.0f); /* the sum field is not used */
        for (int i = 0; i < 32; i++) {
            int q = (int)rnd(256) - 128;
            b0[34 * k + 2 + i] = (uint8_t)(int8_t)q;
            b1[36 * k + 4 + i] = (uint8_t)(int8_t)q;
            w[32 * k + i] = (double)d * q;
        }
    }
    check_decode(Q35_GGML_Q8_0, b0, NB * 32, w);
    check_decode(Q35_GGML_Q8_1, b1, NB * 32, w);
}

/* ------------------------------------------------------------ k-quants */

/* In the 2-bit planes of Q2_K / Q3_K, element i of a 256-block sits in byte
 * 32*(i/128) + i%32 of the quants, at bit 2*((i%128)/32). */
static int plane_byte(int i) {
    return 32 * (i / 128) + i % 32;
}
static int plane_shift(int i) {
    return 2 * ((i % 128) / 32);
}

static void test_q2_k(void **state) {
    (void)state;
    uint8_t blk[NB * 84] = {0};
    double w[NB * 256];
    for (int k = 0; k < NB; k++) {
        uint8_t *x = blk + 84 * k;
        float d = rnd_scale(), dmin = rnd_scale();
        put_f16(x + 80, d);
        put_f16(x + 82, dmin);
        int sc[16], mn[16];
        for (int s = 0; s < 16; s++) {
            sc[s] = (int)rnd(16);
            mn[s] = (int)rnd(16);
            x[s] = (uint8_t)(sc[s] | (mn[s] << 4));
        }
        for (int i = 0; i < 256; i++) {
            int q = (int)rnd(4);
            put_bits(&x[16 + plane_byte(i)], plane_shift(i), 2, q);
            w[256 * k + i] = (double)d * sc[i / 16] * q - (double)dmin * mn[i / 16];
        }
    }
    check_decode(Q35_GGML_Q2_K, blk, NB * 256, w);
}

static void test_q3_k(void **state) {
    (void)state;
    uint8_t blk[NB * 110] = {0};
    double w[NB * 256];
    for (int k = 0; k < NB; k++) {
        uint8_t *x = blk + 110 * k;
        float d = rnd_scale();
        put_f16(x + 108, d);
        int sc[16];
        for (int s = 0; s < 16; s++) {
            sc[s] = (int)rnd(64) - 32; /* stored biased by 32, 6 bits */
            int u = sc[s] + 32;
            put_nibble(&x[96 + s % 8], s >= 8, u & 15);
            put_bits(&x[96 + 8 + s % 4], 2 * (s / 4), 2, u >> 4);
        }
        for (int i = 0; i < 256; i++) {
            int q = (int)rnd(8) - 4; /* -4..3: low 2 bits, plus 4 when the mask bit is set */
            int u = q + 4;
            put_bits(&x[32 + plane_byte(i)], plane_shift(i), 2, u & 3);
            put_bits(&x[i % 32], i / 32, 1, u >> 2);
            w[256 * k + i] = (double)d * sc[i / 16] * q;
        }
    }
    check_decode(Q35_GGML_Q3_K, blk, NB * 256, w);
}

/* The twelve scale bytes of Q4_K / Q5_K: eight 6-bit scales and mins. */
static void pack_k4_scales(uint8_t *s, const int *sc, const int *mn) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            put_bits(&s[j], 0, 6, sc[j]);
            put_bits(&s[j + 4], 0, 6, mn[j]);
        } else {
            put_nibble(&s[j + 4], 0, sc[j] & 15);
            put_nibble(&s[j + 4], 1, mn[j] & 15);
            put_bits(&s[j - 4], 6, 2, sc[j] >> 4);
            put_bits(&s[j], 6, 2, mn[j] >> 4);
        }
    }
}

static void test_q4_k_q5_k(void **state) {
    (void)state;
    uint8_t b4[NB * 144] = {0}, b5[NB * 176] = {0};
    double w4[NB * 256], w5[NB * 256];
    for (int k = 0; k < NB; k++) {
        uint8_t *x4 = b4 + 144 * k, *x5 = b5 + 176 * k;
        float d = rnd_scale(), dmin = rnd_scale();
        put_f16(x4, d);
        put_f16(x4 + 2, dmin);
        put_f16(x5, d);
        put_f16(x5 + 2, dmin);
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = (int)rnd(64);
            mn[j] = (int)rnd(64);
        }
        pack_k4_scales(x4 + 4, sc, mn);
        pack_k4_scales(x5 + 4, sc, mn);
        for (int i = 0; i < 256; i++) {
            /* 64 elements per 32 bytes: first 32 in low nibbles, next 32 high */
            int byte = 32 * (i / 64) + i % 32, high = (i % 64) >= 32;
            int q4 = (int)rnd(16), q5 = (int)rnd(32);
            put_nibble(&x4[16 + byte], high, q4);
            put_nibble(&x5[48 + byte], high, q5 & 15);
            put_bits(&x5[16 + i % 32], i / 32, 1, q5 >> 4);
            int j = i / 32;
            w4[256 * k + i] = (double)d * sc[j] * q4 - (double)dmin * mn[j];
            w5[256 * k + i] = (double)d * sc[j] * q5 - (double)dmin * mn[j];
        }
    }
    check_decode(Q35_GGML_Q4_K, b4, NB * 256, w4);
    check_decode(Q35_GGML_Q5_K, b5, NB * 256, w5);
}

static void test_q6_k(void **state) {
    (void)state;
    uint8_t blk[NB * 210] = {0};
    double w[NB * 256];
    for (int k = 0; k < NB; k++) {
        uint8_t *x = blk + 210 * k;
        float d = rnd_scale();
        put_f16(x + 208, d);
        int sc[16];
        for (int s = 0; s < 16; s++) {
            sc[s] = (int)rnd(256) - 128;
            x[192 + s] = (uint8_t)(int8_t)sc[s];
        }
        for (int i = 0; i < 256; i++) {
            int half = i / 128, quad = (i % 128) / 32, l = i % 32;
            int q = (int)rnd(64); /* stored; the value is q - 32 */
            put_nibble(&x[64 * half + 32 * (quad & 1) + l], quad >= 2, q & 15);
            put_bits(&x[128 + 32 * half + l], 2 * quad, 2, q >> 4);
            w[256 * k + i] = (double)d * sc[i / 16] * (q - 32);
        }
    }
    check_decode(Q35_GGML_Q6_K, blk, NB * 256, w);
}

static void test_q8_k(void **state) {
    (void)state;
    uint8_t blk[NB * 292] = {0};
    double w[NB * 256];
    for (int k = 0; k < NB; k++) {
        uint8_t *x = blk + 292 * k;
        float d = 0.00123f * (float)(k + 1); /* float32 scale */
        uint32_t u;
        memcpy(&u, &d, 4);
        for (int b = 0; b < 4; b++)
            x[b] = (uint8_t)(u >> (8 * b));
        for (int i = 0; i < 256; i++) {
            int q = (int)rnd(256) - 128;
            x[4 + i] = (uint8_t)(int8_t)q;
            w[256 * k + i] = (double)d * q;
        }
    }
    check_decode(Q35_GGML_Q8_K, blk, NB * 256, w);
}

/* ggml's non-linear levels, as published (kvalues_iq4nl) */
static const int iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};

static void test_iq4_nl_iq4_xs(void **state) {
    (void)state;
    uint8_t nl[NB * 18] = {0}, xs[NB * 136] = {0};
    double wnl[NB * 32], wxs[NB * 256];
    for (int k = 0; k < NB; k++) {
        float d = rnd_scale();
        uint8_t *x = nl + 18 * k;
        put_f16(x, d);
        for (int i = 0; i < 32; i++) {
            int q = (int)rnd(16);
            put_nibble(&x[2 + i % 16], i >= 16, q);
            wnl[32 * k + i] = (double)d * iq4_levels[q];
        }
        x = xs + 136 * k;
        put_f16(x, d);
        int sc[8];
        for (int s = 0; s < 8; s++) {
            sc[s] = (int)rnd(64); /* 6 bits, biased by 32: low 4 in scales_l, high 2 in scales_h */
            put_nibble(&x[4 + s / 2], s % 2, sc[s] & 15);
            put_bits(&x[2 + s / 4], 2 * (s % 4), 2, sc[s] >> 4);
        }
        for (int i = 0; i < 256; i++) {
            int q = (int)rnd(16), j = i % 32;
            put_nibble(&x[8 + 16 * (i / 32) + j % 16], j >= 16, q);
            wxs[256 * k + i] = (double)d * (sc[i / 32] - 32) * iq4_levels[q];
        }
    }
    check_decode(Q35_GGML_IQ4_NL, nl, NB * 32, wnl);
    check_decode(Q35_GGML_IQ4_XS, xs, NB * 256, wxs);
}

static void test_plain_types(void **state) {
    (void)state;
    /* f16 1.0, -2.0, 65504, smallest subnormal; bf16 1.0, -0.5, 3.140625 */
    const uint8_t f16[8] = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00};
    const double wf16[4] = {1.0, -2.0, 65504.0, 5.9604644775390625e-08};
    check_decode(Q35_GGML_F16, f16, 4, wf16);
    const uint8_t bf16[6] = {0x80, 0x3f, 0x00, 0xbf, 0x49, 0x40};
    const double wbf16[3] = {1.0, -0.5, 3.140625};
    check_decode(Q35_GGML_BF16, bf16, 3, wbf16);
    float f32[3] = {1.5f, -0.25f, 1e-3f};
    const double wf32[3] = {1.5, -0.25, (double)1e-3f};
    check_decode(Q35_GGML_F32, (const uint8_t *)f32, 3, wf32);
}

static void test_refusals(void **state) {
    (void)state;
    uint8_t blk[256] = {0};
    float out[256];
    q35_err e = {0};
    assert_int_equal(q35_ggml_dequantize(Q35_GGML_IQ2_XXS, blk, out, 256, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "IQ2_XXS"));
    assert_int_equal(q35_ggml_dequantize(Q35_GGML_Q4_0, blk, out, 31, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "not whole Q4_0 blocks"));
    assert_int_equal(q35_ggml_dequantize(4, blk, out, 32, &e), Q35_EINVAL);
    assert_null(q35_ggml_type_get(4));
    assert_null(q35_ggml_type_get(31));
    assert_null(q35_ggml_type_get(1000));
    assert_string_equal(q35_ggml_type_get(Q35_GGML_Q6_K)->name, "Q6_K");
    assert_int_equal(q35_ggml_type_get(Q35_GGML_Q6_K)->block_bytes, 210);
}

/* ---------------------------------------------- llama.cpp's quantizations */

typedef struct stats {
    double worst_rel_rms;     /* k-quants: max over tensors of rms(err)/rms(x) */
    double worst_scale_ratio; /* Q8_0/Q4_0: max |err| / |block scale| */
    int n_tensors;
} stats;

/* Compares every tensor of `qfile` of type `type` with the bf16 file. */
static void compare_with_bf16(const char *qfile, const char *bf16file, uint32_t type, stats *st) {
    q35_gguf q, r;
    q35_err e = {0};
    assert_int_equal(q35_gguf_open(&q, qfile, &e), Q35_OK);
    assert_int_equal(q35_gguf_open(&r, bf16file, &e), Q35_OK);
    const q35_ggml_type_info *ti = q35_ggml_type_get(type);
    for (int64_t i = 0; i < q.n_tensors; i++) {
        const q35_gguf_tensor *t = &q.tensors[i];
        if (t->type != type) continue;
        char name[300];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.p);
        const q35_gguf_tensor *u = q35_gguf_find_tensor(&r, name);
        assert_non_null(u);
        assert_int_equal(u->n_elems, t->n_elems);
        float *a = malloc((size_t)t->n_elems * 4), *b = malloc((size_t)t->n_elems * 4);
        assert_int_equal(q35_ggml_dequantize(t->type, t->data, a, t->n_elems, &e), Q35_OK);
        assert_int_equal(q35_ggml_dequantize(u->type, u->data, b, u->n_elems, &e), Q35_OK);
        double se = 0, sx = 0;
        for (int64_t j = 0; j < t->n_elems; j++) {
            double d = (double)a[j] - b[j];
            se += d * d;
            sx += (double)b[j] * b[j];
            if (ti->block_elems == 32) {
                /* the block's scale is its first two bytes */
                const uint8_t *blk = t->data + (j / 32) * ti->block_bytes;
                double scale = fabs(q35_f16_to_f32((uint16_t)(blk[0] | (blk[1] << 8))));
                double ratio = fabs(d) / fmax(scale, 1e-30);
                if (ratio > st->worst_scale_ratio) st->worst_scale_ratio = ratio;
            }
        }
        double rel = sqrt(se / sx);
        if (rel > st->worst_rel_rms) st->worst_rel_rms = rel;
        st->n_tensors++;
        free(a);
        free(b);
    }
    q35_gguf_close(&q);
    q35_gguf_close(&r);
}

static void test_golden_quantizations(void **state) {
    (void)state;
    stats q8 = {0}, q4 = {0}, q4k = {0}, q6k = {0};
    compare_with_bf16(GOLDEN_GGUF "tiny-a-Q8_0.gguf", GOLDEN_GGUF "tiny-a-bf16.gguf", Q35_GGML_Q8_0,
                      &q8);
    compare_with_bf16(GOLDEN_GGUF "tiny-b-Q8_0.gguf", GOLDEN_GGUF "tiny-b-bf16.gguf", Q35_GGML_Q8_0,
                      &q8);
    compare_with_bf16(GOLDEN_GGUF "tiny-a-Q4_0.gguf", GOLDEN_GGUF "tiny-a-bf16.gguf", Q35_GGML_Q4_0,
                      &q4);
    compare_with_bf16(GOLDEN_GGUF "tiny-b-Q4_0.gguf", GOLDEN_GGUF "tiny-b-bf16.gguf", Q35_GGML_Q4_0,
                      &q4);
    compare_with_bf16(GOLDEN_GGUF "tiny-b-Q4_K_M.gguf", GOLDEN_GGUF "tiny-b-bf16.gguf",
                      Q35_GGML_Q4_K, &q4k);
    compare_with_bf16(GOLDEN_GGUF "tiny-b-Q4_K_M.gguf", GOLDEN_GGUF "tiny-b-bf16.gguf",
                      Q35_GGML_Q6_K, &q6k);
    compare_with_bf16(GOLDEN_GGUF "tiny-b-Q4_0.gguf", GOLDEN_GGUF "tiny-b-bf16.gguf", Q35_GGML_Q6_K,
                      &q6k);
    printf("Q8_0: %d tensors, max |err|/scale %.3f, rel rms %.4f\n", q8.n_tensors,
           q8.worst_scale_ratio, q8.worst_rel_rms);
    printf("Q4_0: %d tensors, max |err|/scale %.3f, rel rms %.4f\n", q4.n_tensors,
           q4.worst_scale_ratio, q4.worst_rel_rms);
    printf("Q4_K: %d tensors, rel rms %.4f\n", q4k.n_tensors, q4k.worst_rel_rms);
    printf("Q6_K: %d tensors, rel rms %.4f\n", q6k.n_tensors, q6k.worst_rel_rms);
    assert_true(q8.n_tensors > 60 && q4.n_tensors > 60 && q4k.n_tensors > 40 && q6k.n_tensors > 5);
    /* Rounding to the nearest step: |err| <= scale/2 (plus the f16 rounding
     * of the scale). Q4_0 also clips the one end of the range by a step. */
    assert_true(q8.worst_scale_ratio <= 0.6);
    assert_true(q4.worst_scale_ratio <= 1.1);
    /* Gaussian-like weights: a uniform step over ~4-6 sigma gives relative
     * RMS error ~ range / (levels * sqrt(12) * sigma): about 0.08 at 4 bits,
     * 0.02 at 6, 0.005 at 8. A mis-decoded layout gives ~1. */
    assert_true(q8.worst_rel_rms < 0.01);
    assert_true(q4.worst_rel_rms < 0.15);
    assert_true(q4k.worst_rel_rms < 0.12);
    assert_true(q6k.worst_rel_rms < 0.035);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_0_q4_1),     cmocka_unit_test(test_q5_0_q5_1),
        cmocka_unit_test(test_q8_0_q8_1),     cmocka_unit_test(test_q2_k),
        cmocka_unit_test(test_q3_k),          cmocka_unit_test(test_q4_k_q5_k),
        cmocka_unit_test(test_q6_k),          cmocka_unit_test(test_q8_k),
        cmocka_unit_test(test_iq4_nl_iq4_xs), cmocka_unit_test(test_plain_types),
        cmocka_unit_test(test_refusals),      cmocka_unit_test(test_golden_quantizations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
