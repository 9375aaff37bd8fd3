/* test_kernels.c — every SIMD kernel set against the plain C definitions,
 * on odd sizes (tails of every length, sizes below one vector), plus the
 * invariants the forward pass relies on: a matmul result does not depend on
 * how rows are split between threads or how tokens are grouped. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/half.h"
#include "kernels/kernels.h"
#include "kernels/matmul_amx.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 23)) - 1.0);
}

static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++)
        x[i] = frand() * scale;
}

/* The SIMD sets this machine runs (the generic set itself is checked too,
 * against a float64 recomputation). */
static const q35_kernels *variants[5];
static int n_variants;

static int setup(void **st) {
    (void)st;
    n_variants = 0;
    variants[n_variants++] = q35_kernels_generic();
    if (q35_kernels_avx2()) variants[n_variants++] = q35_kernels_avx2();
    if (q35_kernels_avx512()) variants[n_variants++] = q35_kernels_avx512();
    if (q35_kernels_amx()) variants[n_variants++] = q35_kernels_amx();
    if (q35_kernels_neon()) variants[n_variants++] = q35_kernels_neon();
    for (int i = 0; i < n_variants; i++)
        printf("kernel set: %s\n", variants[i]->name);
    return 0;
}

/* Weight matrix of dtype dt holding the values of wf (rounded to dt; wf is
 * updated to the rounded values so a float64 reference sees the same). */
static void *make_weights(q35_dtype dt, float *wf, int64_t n) {
    if (dt == Q35_DT_F32) {
        float *w = malloc((size_t)n * 4);
        memcpy(w, wf, (size_t)n * 4);
        return w;
    }
    uint16_t *w = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        if (dt == Q35_DT_BF16) {
            w[i] = q35_f32_to_bf16(wf[i]);
            wf[i] = q35_bf16_to_f32(w[i]);
        } else {
            w[i] = q35_f32_to_f16(wf[i]);
            wf[i] = q35_f16_to_f32(w[i]);
        }
    }
    return w;
}

/* Whether set k multiplies quantized w over T tokens on AMX tiles: a
 * different float32 summation than its float32 path (so no bit equality
 * with it), checked instead against q35_amx_qmatmul called directly. */
static bool amx_quant_path(const q35_kernels *k, q35_dtype dt, int T) {
    return k == q35_kernels_amx() && (dt == Q35_DT_Q8_0 || dt == Q35_DT_Q4_0) &&
           T >= q35_amx_quant_min_t(dt);
}

/* y = w x by set k, x packed as the set wants it. */
static void run_matmul(const q35_kernels *k, const q35_tensor *w, const float *x, int64_t ldx,
                       int T, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    int64_t cols = w->shape[1];
    size_t pb = q35_acts_bytes(k, T, cols);
    void *buf = pb ? aligned_alloc(64, (pb + 63) / 64 * 64) : NULL;
    q35_acts acts = q35_acts_prepare(k, x, ldx, T, cols, buf);
    k->matmul(w, &acts, y, ldy, r0, r1);
    free(buf);
}

/* Every set's matmul of w (dtype dt, data wd) whose weights are the floats
 * wf: against a float64 recomputation; bit-identical for any row split
 * and, for sets that read x as is, any grouping of tokens. For quantized
 * dtypes also: bit-identical to the same set's float32 matmul over wf (the
 * sets compute d * q exactly and keep their float32 FMA order; for the
 * generic set this is the definition the golden tests rely on). */
static void check_matmul(q35_dtype dt, const void *wd, const float *wf, int rows, int cols, int T) {
    int64_t ldx = cols + 3, ldy = rows + 5; /* strides wider than the rows */
    float *x = malloc((size_t)T * ldx * 4);
    fill(x, (int64_t)T * ldx, 2.0f);
    q35_tensor w = {dt, 2, {rows, cols}, wd}, wf32 = {Q35_DT_F32, 2, {rows, cols}, wf};
    float *y = malloc((size_t)T * ldy * 4), *y2 = malloc((size_t)T * ldy * 4);
    double tol = 4e-6 * (cols > 1000 ? sqrt(cols / 1000.0) : 1.0);
    for (int v = 0; v < n_variants; v++) {
        const q35_kernels *k = variants[v];
        for (int64_t i = 0; i < (int64_t)T * ldy; i++)
            y[i] = y2[i] = 12345.0f;
        run_matmul(k, &w, x, ldx, T, y, ldy, 0, rows);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            for (int o = 0; o < rows; o++) {
                double ref = 0, mag = 0;
                for (int c = 0; c < cols; c++) {
                    double p = (double)wf[(int64_t)o * cols + c] * x[(int64_t)t * ldx + c];
                    ref += p;
                    mag += fabs(p);
                }
                double err = fabs(y[(int64_t)t * ldy + o] - ref) / (mag + 1e-30);
                if (!(err <= worst)) worst = err; /* NaN counts as the worst */
            }
            /* padding between rows of y stays untouched */
            for (int64_t i = rows; i < ldy; i++)
                assert_true(y[(int64_t)t * ldy + i] == 12345.0f);
        }
        if (!(worst <= tol))
            fail_msg("%s matmul %s %dx%d T=%d: rel err %.3g", k->name, q35_dtype_name(dt), rows,
                     cols, T, worst);
        if (amx_quant_path(k, dt, T)) {
#if defined(__x86_64__)
            /* the set took the AMX path; the scratch-less fallback, the same bits */
            size_t pb = q35_acts_bytes(k, T, cols);
            void *buf = aligned_alloc(64, (pb + 63) / 64 * 64);
            q35_acts acts = q35_acts_prepare(k, x, ldx, T, cols, buf);
            for (int pass = 0; pass < 2; pass++) {
                for (int64_t i = 0; i < (int64_t)T * ldy; i++)
                    y2[i] = 12345.0f;
                if (pass == 0)
                    q35_amx_qmatmul(&w, &acts, y2, ldy, 0, rows);
                else
                    q35_amx_qmatmul_stepwise(&w, &acts, y2, ldy, 0, rows);
                if (memcmp(y, y2, (size_t)T * ldy * 4))
                    fail_msg("amx matmul %s %dx%d T=%d: not the AMX quantized path's bits (%s)",
                             q35_dtype_name(dt), rows, cols, T, pass ? "stepwise" : "direct");
            }
            free(buf);
#endif
        } else if (q35_dtype_is_quant(dt)) {
            run_matmul(k, &wf32, x, ldx, T, y2, ldy, 0, rows);
            for (int t = 0; t < T; t++)
                for (int o = 0; o < rows; o++)
                    if (memcmp(&y[(int64_t)t * ldy + o], &y2[(int64_t)t * ldy + o], 4))
                        fail_msg("%s matmul %s %dx%d T=%d: row %d token %d: %.9g, but %.9g over "
                                 "the dequantized float32 matrix",
                                 k->name, q35_dtype_name(dt), rows, cols, T, o, t,
                                 y[(int64_t)t * ldy + o], y2[(int64_t)t * ldy + o]);
        }
        /* Rows split at odd places: bit-identical. */
        for (int64_t r = 0; r < rows;) {
            int64_t e = r + 1 + (r * 7 + 3) % 11;
            if (e > rows) e = rows;
            run_matmul(k, &w, x, ldx, T, y2, ldy, r, e);
            r = e;
        }
        for (int t = 0; t < T; t++)
            for (int o = 0; o < rows; o++)
                if (memcmp(&y[(int64_t)t * ldy + o], &y2[(int64_t)t * ldy + o], 4))
                    fail_msg("%s matmul %s %dx%d T=%d: row %d token %d depends on the split",
                             k->name, q35_dtype_name(dt), rows, cols, T, o, t);
        /* Sets that read x directly also give each token the same bits
         * whatever tokens it is grouped with. */
        if (!q35_acts_bytes(k, T, cols)) {
            for (int t = 0; t < T; t++)
                run_matmul(k, &w, x + (int64_t)t * ldx, ldx, 1, y2 + (int64_t)t * ldy, ldy, 0,
                           rows);
            assert_memory_equal(y, y2, (size_t)T * ldy * 4);
        }
    }
    free(x);
    free(y);
    free(y2);
}

static void check_matmul_shape(q35_dtype dt, int rows, int cols, int T) {
    float *wf = malloc((size_t)rows * cols * 4);
    fill(wf, (int64_t)rows * cols, 1.0f);
    void *wd = make_weights(dt, wf, (int64_t)rows * cols);
    check_matmul(dt, wd, wf, rows, cols, T);
    free(wf);
    free(wd);
}

static void test_matmul(void **st) {
    (void)st;
    static const int shapes[][3] = {
        {1, 1, 1},   {3, 7, 2},    {5, 15, 5},   {9, 16, 3},   {4, 17, 4},     {13, 31, 7},
        {7, 32, 9},  {33, 33, 1},  {6, 100, 11}, {21, 257, 6}, {64, 128, 8},   {17, 1000, 3},
        {16, 32, 8}, {50, 77, 37}, {64, 96, 16}, {33, 45, 20}, {100, 300, 33}, {48, 64, 9}};
    for (int dt = 0; dt <= Q35_DT_BF16; dt++) /* the plain types; quantized ones below */
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            check_matmul_shape((q35_dtype)dt, shapes[s][0], shapes[s][1], shapes[s][2]);
}

/* ---- quantized weights. The blocks are written here (this test links
 * the kernels layer only, not the formats layer's quantizer) and decoded by
 * a reference that shares no code with the kernels. */

static size_t qblock_bytes(q35_dtype dt) {
    return dt == Q35_DT_Q8_0 ? 34 : 18;
}

/* q: 32 values, -128..127 (Q8_0) or nibbles 0..15 (Q4_0). */
static void put_block(q35_dtype dt, uint8_t *b, uint16_t d, const int *q) {
    b[0] = (uint8_t)(d & 0xff);
    b[1] = (uint8_t)(d >> 8);
    if (dt == Q35_DT_Q8_0)
        for (int j = 0; j < 32; j++)
            b[2 + j] = (uint8_t)(q[j] & 0xff);
    else
        for (int j = 0; j < 16; j++)
            b[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static double ref_f16(uint16_t h) { /* finite f16 only */
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    return h & 0x8000 ? -v : v;
}

static void ref_decode_row(q35_dtype dt, const uint8_t *row, int cols, float *out) {
    for (int kb = 0; kb < cols / 32; kb++) {
        const uint8_t *b = row + (size_t)kb * qblock_bytes(dt);
        double d = ref_f16((uint16_t)(b[0] | b[1] << 8));
        for (int j = 0; j < 32; j++) {
            int q = dt == Q35_DT_Q8_0 ? (b[2 + j] ^ 0x80) - 0x80
                    : j < 16          ? (b[2 + j] & 15) - 8
                                      : (b[2 + j - 16] >> 4) - 8;
            out[kb * 32 + j] = (float)(d * q); /* exact */
        }
    }
}

/* ggml's reference rounding, near enough: Q8_0 d = max|x| / 127; Q4_0
 * d = (the x of largest |x|) / -8. */
static void quantize_block(q35_dtype dt, const float *x, uint8_t *b) {
    float amax = 0, mx = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            mx = x[j];
        }
    int q[32];
    float d = dt == Q35_DT_Q8_0 ? amax / 127 : mx / -8, id = d != 0 ? 1 / d : 0;
    for (int j = 0; j < 32; j++) {
        if (dt == Q35_DT_Q8_0) {
            q[j] = (int)roundf(x[j] * id);
        } else {
            int n = (int)(x[j] * id + 8.5f);
            q[j] = n > 15 ? 15 : n;
        }
    }
    put_block(dt, b, q35_f32_to_f16(d), q);
}

/* A [rows, cols] quantized matrix at an odd address inside *mem (caller
 * frees *mem): blocks quantized from floats at scales 2^-8..2^2, one in
 * five raw random bytes (every q; d of either sign, subnormal to ~4). wf
 * gets its values. */
static const uint8_t *make_quant(q35_dtype dt, int rows, int cols, float *wf, void **mem) {
    size_t bb = qblock_bytes(dt), n = (size_t)rows * (cols / 32);
    uint8_t *buf = malloc(n * bb + 1), *w = buf + 1;
    float x[32];
    for (size_t i = 0; i < n; i++) {
        uint8_t *b = w + i * bb;
        if (i % 5 == 3) {
            for (size_t j = 0; j < bb; j++)
                b[j] = (uint8_t)(frand() * 128 + 128);
            b[1] &= 0xc7; /* any sign; exponent 0, 1, 16, 17: subnormal, tiny, up to 2^2 */
        } else {
            fill(x, 32, ldexpf(1, (int)(i % 11) - 8));
            quantize_block(dt, x, b);
        }
    }
    for (int r = 0; r < rows; r++)
        ref_decode_row(dt, w + (size_t)r * (cols / 32) * bb, cols, wf + (int64_t)r * cols);
    *mem = buf;
    return w;
}

static void check_quant_shape(q35_dtype dt, int rows, int cols, int T) {
    float *wf = malloc((size_t)rows * cols * 4);
    void *mem;
    const uint8_t *w = make_quant(dt, rows, cols, wf, &mem);
    check_matmul(dt, w, wf, rows, cols, T);
    free(wf);
    free(mem);
}

static void test_matmul_quant(void **st) {
    (void)st;
    static const int shapes[][3] = {{1, 32, 1},   {7, 32, 3},     {3, 64, 1},    {5, 96, 4},
                                    {13, 160, 5}, {33, 256, 8},   {4, 1024, 2},  {17, 3008, 1},
                                    {9, 2976, 7}, {21, 512, 37},  {50, 128, 40}, {65, 320, 12},
                                    {48, 64, 9},  {19, 2048, 17}, {101, 96, 6},  {6, 2912, 33},
                                    {2, 32, 16},  {31, 64, 2},    {101, 64, 13}, {97, 128, 24}};
    for (int dt = Q35_DT_Q8_0; dt <= Q35_DT_Q4_0; dt++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            check_quant_shape((q35_dtype)dt, shapes[s][0], shapes[s][1], shapes[s][2]);
}

/* The amx set's AMX path for quantized weights (from its token threshold
 * up): odd row counts (partial 16-row blocks, panels of 1-3 blocks), 32 to
 * ~3000 columns, against float64 and the split checks of check_matmul,
 * which also checks that the path was taken. */
static void test_matmul_quant_amx(void **st) {
    (void)st;
    if (!q35_kernels_amx()) {
        printf("no AMX on this machine: skipped\n");
        return;
    }
    static const int shapes[][3] = {{1, 32, 0},     {17, 32, 1},  {33, 64, 9},   {47, 3008, 0},
                                    {50, 96, 76},   {7, 2976, 7}, {97, 160, 24}, {16, 512, 1},
                                    {49, 1024, 9},  {3, 288, 40}, {65, 224, 2},  {130, 64, 60},
                                    {23, 2048, 17}, {1, 3008, 3}, {48, 320, 31}, {111, 96, 84}};
    for (int dt = Q35_DT_Q8_0; dt <= Q35_DT_Q4_0; dt++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            /* T: the threshold plus an offset, so both dtypes start at it */
            int T = q35_amx_quant_min_t((q35_dtype)dt) + shapes[s][2];
            check_quant_shape((q35_dtype)dt, shapes[s][0], shapes[s][1], T);
        }
}

/* Hand-made blocks at the edges of the formats: d = +-0, +-1, the f16
 * subnormals, +-65504 (the largest f16); q = -128 and 127, nibbles 0 and
 * 15, ramps, alternations. Matmuls as above, and the embedding lookup
 * decodes them exactly. */
static void test_quant_edges(void **st) {
    (void)st;
    static const uint16_t ds[] = {0x0000, 0x8000, 0x3c00, 0xbc00, 0x0001, 0x83ff,
                                  0x7bff, 0xfbff, 0x2e66, 0x1800, 0xa001};
    enum { ND = sizeof ds / sizeof *ds, NP = 7, ROWS = 7, COLS = 32 * 13 };
    for (int dt = Q35_DT_Q8_0; dt <= Q35_DT_Q4_0; dt++) {
        size_t bb = qblock_bytes((q35_dtype)dt);
        bool q8 = dt == Q35_DT_Q8_0;
        int lo = q8 ? -128 : 0, hi = q8 ? 127 : 15;
        uint8_t *mem = malloc((size_t)ROWS * (COLS / 32) * bb + 3), *w = mem + 3;
        for (int i = 0; i < ROWS * (COLS / 32); i++) {
            int q[32];
            for (int j = 0; j < 32; j++) {
                switch ((i * 3 + i / ND) % NP) {
                case 0: q[j] = lo; break;
                case 1: q[j] = hi; break;
                case 2: q[j] = j % 2 ? lo : hi; break;
                case 3: q[j] = lo + j * (hi - lo) / 31; break;
                case 4: q[j] = q8 ? 0 : 8; break; /* zero weights */
                case 5: q[j] = j == 7 ? lo : q8 ? 1 : 9; break;
                default: q[j] = lo + (int)((frand() + 1) / 2 * (hi - lo + 1)); break;
                }
                if (q[j] > hi) q[j] = hi;
            }
            put_block((q35_dtype)dt, w + (size_t)i * bb, ds[i % ND], q);
        }
        float *wf = malloc((size_t)ROWS * COLS * 4), out[COLS];
        for (int r = 0; r < ROWS; r++)
            ref_decode_row((q35_dtype)dt, w + (size_t)r * (COLS / 32) * bb, COLS, wf + r * COLS);
        q35_tensor t = {(q35_dtype)dt, 2, {ROWS, COLS}, w};
        for (int r = 0; r < ROWS; r++) {
            memset(out, 0x55, sizeof out);
            q35_tensor_row_f32(&t, r, out);
            assert_memory_equal(out, wf + r * COLS, sizeof out);
        }
        for (int T = 1; T <= 33; T += 4)
            check_matmul((q35_dtype)dt, w, wf, ROWS, COLS, T);
        free(wf);
        free(mem);
    }
}

/* ------------------------------------------------ Q4_K / Q6_K weights */

static bool is_kquant(q35_dtype dt) {
    return dt == Q35_DT_Q4_K || dt == Q35_DT_Q6_K;
}

/* The k-quant decoders written from ggml's layout (dequantize_row_q4_K /
 * _q6_K) with formats/gguf_quants.c's float operations, sharing no code
 * with the kernels: per 64 elements of Q4_K two (scale, min) pairs from the
 * 12 packed bytes, y = (d*sc)*q - (dmin*m); Q6_K per 128 elements four
 * quarter-groups, y = (d*sc)*q. */
static void ref_kdecode(q35_dtype dt, const uint8_t *b, float *y) {
    if (dt == Q35_DT_Q4_K) {
        float d = (float)ref_f16((uint16_t)(b[0] | b[1] << 8));
        float dmin = (float)ref_f16((uint16_t)(b[2] | b[3] << 8));
        const uint8_t *sc = b + 4, *q = b + 16;
        for (int is = 0; is < 8; is += 2, q += 32) {
            int s[2], m[2];
            for (int u = 0; u < 2; u++) {
                int j = is + u;
                s[u] = j < 4 ? sc[j] & 63 : (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4);
                m[u] = j < 4 ? sc[j + 4] & 63 : (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
            }
            float d1 = d * (float)s[0], m1 = dmin * (float)m[0];
            float d2 = d * (float)s[1], m2 = dmin * (float)m[1];
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 15) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    } else {
        float d = (float)ref_f16((uint16_t)(b[208] | b[209] << 8));
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
    }
}

static void put_f16(uint8_t *p, uint16_t h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* Packs Q4_K's eight 6-bit (scale, min) pairs into its 12 bytes. */
static void put_k4_scales(uint8_t *s, const int *sc, const int *mn) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
}

/* A [rows, cols] k-quant matrix at an odd address (caller frees *mem):
 * random nibbles / 6-bit values and scales, d (and dmin) ~2^-9..2^-5 of
 * either sign, one super-block in five with d, dmin anywhere from the
 * subnormals to 2^2. wf gets its values. */
static const uint8_t *make_kquant(q35_dtype dt, int rows, int cols, float *wf, void **mem) {
    size_t bb = q35_dtype_block_bytes(dt), n = (size_t)rows * (cols / 256);
    uint8_t *buf = malloc(n * bb + 1), *w = buf + 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t *b = w + i * bb;
        for (size_t j = 0; j < bb; j++)
            b[j] = (uint8_t)(frand() * 128 + 128);
        size_t d = dt == Q35_DT_Q4_K ? 0 : 208;
        for (int k = 0; k < (dt == Q35_DT_Q4_K ? 2 : 1); k++) {
            uint8_t *hi = b + d + 2 * k + 1;
            if (i % 5 == 3)
                *hi &= 0xc7; /* exponent 0, 1, 16, 17 */
            else
                *hi = (uint8_t)((*hi & 0x83) | (0x14 + (int)(i % 5) * 4)); /* 2^-10 .. 2^-6 */
        }
    }
    for (size_t i = 0; i < n; i++)
        ref_kdecode(dt, w + i * bb, wf + i * 256);
    *mem = buf;
    return w;
}

static void check_kquant_shape(q35_dtype dt, int rows, int cols, int T) {
    float *wf = malloc((size_t)rows * cols * 4), *out = malloc((size_t)cols * 4);
    void *mem;
    const uint8_t *w = make_kquant(dt, rows, cols, wf, &mem);
    q35_tensor t = {dt, 2, {rows, cols}, w};
    for (int r = 0; r < rows; r += 3) { /* the embedding lookup: the same bits */
        q35_tensor_row_f32(&t, r, out);
        assert_memory_equal(out, wf + (int64_t)r * cols, (size_t)cols * 4);
    }
    check_matmul(dt, w, wf, rows, cols, T);
    free(wf);
    free(out);
    free(mem);
}

static void test_matmul_kquant(void **st) {
    (void)st;
    static const int shapes[][3] = {{1, 256, 1},    {7, 256, 3},    {3, 512, 1},   {5, 768, 4},
                                    {13, 1024, 5},  {33, 256, 8},   {4, 3584, 2},  {17, 2816, 1},
                                    {9, 3584, 7},   {21, 512, 37},  {50, 256, 40}, {65, 1280, 12},
                                    {19, 2048, 17}, {6, 3072, 33},  {2, 256, 16},  {101, 256, 13},
                                    {97, 512, 24},  {11, 1536, 32}, {3, 3584, 40}, {49, 768, 31}};
    for (int dt = Q35_DT_Q4_K; dt <= Q35_DT_Q6_K; dt++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            check_kquant_shape((q35_dtype)dt, shapes[s][0], shapes[s][1], shapes[s][2]);
}

/* Hand-made super-blocks: d and dmin = +-0, +-1, f16 subnormals, +-65504;
 * every 6-bit scale and min value (0..63) and every int8 Q6_K scale
 * (-128..127) in turn; q all 0, all at the top (15 / 63), alternating,
 * random. Embedding lookup bit-exact, matmuls as above for T up to 40. */
static void test_kquant_edges(void **st) {
    (void)st;
    static const uint16_t ds[] = {0x0000, 0x8000, 0x3c00, 0xbc00, 0x0001, 0x83ff,
                                  0x7bff, 0xfbff, 0x2e66, 0x1800, 0xa001};
    enum { ND = sizeof ds / sizeof *ds, ROWS = 5, KB = 9, COLS = 256 * KB };
    for (int dt = Q35_DT_Q4_K; dt <= Q35_DT_Q6_K; dt++) {
        size_t bb = q35_dtype_block_bytes((q35_dtype)dt);
        uint8_t *mem = malloc((size_t)ROWS * KB * bb + 3), *w = mem + 3;
        for (int i = 0; i < ROWS * KB; i++) {
            uint8_t *b = w + (size_t)i * bb;
            for (size_t j = 0; j < bb; j++) /* q pattern */
                switch (i % 4) {
                case 0: b[j] = 0; break;
                case 1: b[j] = 0xff; break;
                case 2: b[j] = j % 2 ? 0xf0 : 0x0f; break;
                default: b[j] = (uint8_t)(frand() * 128 + 128); break;
                }
            if (dt == Q35_DT_Q4_K) {
                int sc[8], mn[8];
                for (int j = 0; j < 8; j++) { /* 45 blocks x 8: every value 0..63 */
                    sc[j] = (i * 8 + j) % 64;
                    mn[j] = (i * 8 + j * 5 + 63) % 64;
                }
                put_k4_scales(b + 4, sc, mn);
                put_f16(b, ds[i % ND]);
                put_f16(b + 2, ds[(i / ND + i) % ND]);
            } else {
                for (int j = 0; j < 16; j++) /* 45 x 16: every int8 */
                    b[192 + j] = (uint8_t)((i * 16 + j * 7) & 0xff);
                put_f16(b + 208, ds[i % ND]);
            }
        }
        float *wf = malloc((size_t)ROWS * COLS * 4), out[COLS];
        for (int i = 0; i < ROWS * KB; i++)
            ref_kdecode((q35_dtype)dt, w + (size_t)i * bb, wf + i * 256);
        q35_tensor t = {(q35_dtype)dt, 2, {ROWS, COLS}, w};
        for (int r = 0; r < ROWS; r++) {
            memset(out, 0x55, sizeof out);
            q35_tensor_row_f32(&t, r, out);
            assert_memory_equal(out, wf + r * COLS, sizeof out);
        }
        for (int T = 1; T <= 40; T += 3)
            check_matmul((q35_dtype)dt, w, wf, ROWS, COLS, T);
        free(wf);
        free(mem);
    }
}

static void test_matmul_threaded(void **st) {
    (void)st;
    static const struct {
        q35_dtype dt;
        int cols;
    } cases[] = {{Q35_DT_BF16, 77},
                 {Q35_DT_Q8_0, 96},
                 {Q35_DT_Q4_0, 160},
                 {Q35_DT_Q4_K, 512},
                 {Q35_DT_Q6_K, 768}};
    int rows = 301;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        for (int T = 1; T <= 41; T += 20) { /* 41: the amx set's AMX path for both */
            int cols = cases[ci].cols;
            float *wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)T * cols * 4);
            void *mem = NULL, *wd;
            fill(x, (int64_t)T * cols, 1);
            if (is_kquant(cases[ci].dt)) {
                wd = (void *)make_kquant(cases[ci].dt, rows, cols, wf, &mem);
            } else if (q35_dtype_is_quant(cases[ci].dt)) {
                wd = (void *)make_quant(cases[ci].dt, rows, cols, wf, &mem);
            } else {
                fill(wf, (int64_t)rows * cols, 1);
                wd = mem = make_weights(cases[ci].dt, wf, (int64_t)rows * cols);
            }
            q35_tensor w = {cases[ci].dt, 2, {rows, cols}, wd};
            float *y1 = calloc((size_t)T * rows, 4), *y3 = calloc((size_t)T * rows, 4);
            for (int v = 0; v < n_variants; v++) {
                q35_threadpool *p = q35_threadpool_new(3, NULL);
                assert_non_null(p);
                size_t pb = q35_acts_bytes(variants[v], T, cols);
                void *buf = pb ? aligned_alloc(64, (pb + 63) / 64 * 64) : NULL;
                q35_acts a = q35_acts_prepare(variants[v], x, cols, T, cols, buf);
                q35_matmul(variants[v], NULL, &w, &a, y1, rows);
                q35_matmul(variants[v], p, &w, &a, y3, rows);
                assert_memory_equal(y1, y3, (size_t)T * rows * 4);
                q35_threadpool_free(p);
                free(buf);
            }
            free(wf);
            free(x);
            free(mem);
            free(y1);
            free(y3);
        }
    }
}

/* Attention-shaped ops: dot products of strided rows and weighted sums of
 * strided rows, against float64, on odd counts and widths. */
static void test_dots_wsum(void **st) {
    (void)st;
    static const int shapes[][3] = {{1, 1, 1},   {4, 37, 256}, {3, 5, 17},
                                    {7, 66, 33}, {2, 129, 8},  {5, 200, 70}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int na = shapes[si][0], nb = shapes[si][1], n = shapes[si][2];
        int64_t lda = n + 5, ldb = 2 * n + 1, ldy = nb + 3, ldo = n + 2;
        float *a = malloc((size_t)na * lda * 4), *b = malloc((size_t)nb * ldb * 4);
        float *y = malloc((size_t)na * ldy * 4), *o = malloc((size_t)na * ldo * 4);
        fill(a, (int64_t)na * lda, 1);
        fill(b, (int64_t)nb * ldb, 1);
        for (int v = 0; v < n_variants; v++) {
            const q35_kernels *k = variants[v];
            for (int64_t i = 0; i < (int64_t)na * ldy; i++)
                y[i] = 55;
            for (int64_t i = 0; i < (int64_t)na * ldo; i++)
                o[i] = 66;
            k->dots(b, ldb, nb, a, lda, na, n, y, ldy);
            for (int t = 0; t < na; t++) {
                for (int p = 0; p < nb; p++) {
                    double ref = 0, mag = 0;
                    for (int j = 0; j < n; j++) {
                        ref += (double)a[t * lda + j] * b[p * ldb + j];
                        mag += fabs((double)a[t * lda + j] * b[p * ldb + j]);
                    }
                    if (fabs(y[t * ldy + p] - ref) > 1e-6 * mag + 1e-30)
                        fail_msg("%s dots %dx%dx%d [%d,%d]: %g vs %g", k->name, na, nb, n, t, p,
                                 y[t * ldy + p], ref);
                }
                for (int64_t p = nb; p < ldy; p++)
                    assert_true(y[t * ldy + p] == 55);
            }
            /* weights: the scores just computed, as attention would use them */
            k->wsum(y, ldy, na, b, ldb, nb, n, o, ldo);
            for (int i = 0; i < na; i++) {
                for (int j = 0; j < n; j++) {
                    double ref = 0, mag = 0;
                    for (int p = 0; p < nb; p++) {
                        ref += (double)y[i * ldy + p] * b[p * ldb + j];
                        mag += fabs((double)y[i * ldy + p] * b[p * ldb + j]);
                    }
                    if (fabs(o[i * ldo + j] - ref) > 1e-6 * mag + 1e-30)
                        fail_msg("%s wsum %dx%dx%d [%d,%d]: %g vs %g", k->name, na, nb, n, i, j,
                                 o[i * ldo + j], ref);
                }
                for (int64_t j = n; j < ldo; j++)
                    assert_true(o[i * ldo + j] == 66);
            }
        }
        free(a);
        free(b);
        free(y);
        free(o);
    }
}

static void close_or_fail(const char *what, const char *name, int n, const float *a,
                          const double *ref, int len, double tol) {
    double mx = 0, err = 0;
    for (int i = 0; i < len; i++) {
        if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
        if (fabs(a[i] - ref[i]) > err) err = fabs(a[i] - ref[i]);
    }
    if (err > tol * (mx > 1 ? mx : 1))
        fail_msg("%s %s n=%d: max err %.3g (max |ref| %.3g)", name, what, n, err, mx);
}

static void test_vector_ops(void **st) {
    (void)st;
    enum { N = 300 };
    /* zeroed: the checks that nothing is written past n compare a[n], w[n] */
    float a[N] = {0}, b[N] = {0}, w[N] = {0}, y[N], out[N];
    double ref[N];
    for (int v = 0; v < n_variants; v++) {
        const q35_kernels *k = variants[v];
        for (int n = 1; n <= 261; n += (n < 40 ? 1 : 37)) {
            fill(a, n, 3);
            fill(b, n, 3);
            fill(w, n, 1);
            double d = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                d += (double)a[i] * b[i];
                mag += fabs((double)a[i] * b[i]);
            }
            double dr = k->dot(a, b, n);
            if (fabs(dr - d) > 1e-6 * mag) fail_msg("%s dot n=%d: %g vs %g", k->name, n, dr, d);

            memcpy(y, b, sizeof y);
            k->axpy(y, 0.37f, a, n);
            for (int i = 0; i < n; i++)
                ref[i] = b[i] + 0.37 * a[i];
            close_or_fail("axpy", k->name, n, y, ref, n, 1e-6);
            assert_true(y[n] == b[n]); /* nothing written past n */

            memcpy(y, w, sizeof y);
            k->mul_add(y, a, b, n);
            for (int i = 0; i < n; i++)
                ref[i] = w[i] + (double)a[i] * b[i];
            close_or_fail("mul_add", k->name, n, y, ref, n, 1e-6);
            assert_true(y[n] == w[n]);

            memcpy(y, a, sizeof y);
            k->scale(y, -1.7f, n);
            for (int i = 0; i < n; i++)
                ref[i] = a[i] * -1.7;
            close_or_fail("scale", k->name, n, y, ref, n, 1e-6);
            assert_true(y[n] == a[n]);

            double ss = 0;
            for (int i = 0; i < n; i++)
                ss += (double)a[i] * a[i];
            for (int i = 0; i < n; i++)
                ref[i] = a[i] / sqrt(ss / n + 1e-6) * w[i];
            k->rmsnorm(out, a, w, 1e-6f, n);
            close_or_fail("rmsnorm", k->name, n, out, ref, n, 2e-6);
            memcpy(y, a, sizeof y);
            k->rmsnorm(y, y, w, 1e-6f, n); /* in place */
            close_or_fail("rmsnorm in place", k->name, n, y, ref, n, 2e-6);

            /* silu over a wide range, including where exp over/underflows */
            for (int i = 0; i < n; i++)
                y[i] = a[i] * (i % 3 == 0 ? 40 : 5);
            for (int i = 0; i < n; i++)
                ref[i] = y[i] / (1 + exp(-(double)y[i])) * b[i];
            k->silu_mul(out, y, b, n);
            float *sv = malloc(sizeof(float) * (size_t)(n + 1));
            sv[n] = 5;
            k->silu(sv, y, n);
            for (int i = 0; i < n; i++) {
                double s = y[i] / (1 + exp(-(double)y[i]));
                if (fabs(sv[i] - s) > 2e-6 * fabs(s) + 1e-30)
                    fail_msg("%s silu n=%d i=%d x=%g: %.9g vs %.9g", k->name, n, i, y[i], sv[i], s);
            }
            assert_true(sv[n] == 5);
            free(sv);
            for (int i = 0; i < n; i++)
                if (fabs(out[i] - ref[i]) > 2e-6 * fabs(ref[i]) + 1e-30)
                    fail_msg("%s silu_mul n=%d i=%d x=%g: %.9g vs %.9g", k->name, n, i, y[i],
                             out[i], ref[i]);

            for (int i = 0; i < n; i++)
                y[i] = a[i] * 30;
            double mx = -1e300, sum = 0;
            for (int i = 0; i < n; i++)
                mx = y[i] > mx ? y[i] : mx;
            for (int i = 0; i < n; i++)
                sum += exp(y[i] - mx);
            for (int i = 0; i < n; i++)
                ref[i] = exp(y[i] - mx) / sum;
            k->softmax(y, n);
            for (int i = 0; i < n; i++)
                if (fabs(y[i] - ref[i]) > 3e-6 * ref[i] + 1e-30)
                    fail_msg("%s softmax n=%d i=%d: %.9g vs %.9g", k->name, n, i, y[i], ref[i]);
        }
        /* softmax with a -inf entry (a masked position) */
        float z[37];
        for (int n = 5; n <= 37; n += 16) {
            for (int i = 0; i < n; i++)
                z[i] = i % 3 == 1 ? -INFINITY : (float)(i % 5) - 2.0f;
            k->softmax(z, n);
            double total = 0;
            for (int i = 0; i < n; i++) {
                if (i % 3 == 1) assert_true(z[i] == 0);
                total += z[i];
            }
            assert_true(fabs(total - 1) < 1e-6);
        }
    }
}

/* The scan over T tokens (strided inputs as the forward pass lays them
 * out) against a float64 recurrence; also T tokens in one call == the same
 * tokens one call each (the decode path), within float32 rounding. */
static void test_gdn_scan(void **st) {
    (void)st;
    static const int dims[][2] = {{16, 24}, {1, 1},   {3, 130}, {128, 128},
                                  {40, 17}, {7, 257}, {5, 66}};
    enum { T = 5, PAD = 3 };
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        int dk = dims[di][0], dv = dims[di][1];
        int64_t ldqk = 2 * dk + PAD, ldv = dv + PAD, ldo = dv + PAD, ldg = 2;
        size_t ns = (size_t)dk * dv;
        float *S0 = malloc(ns * 4), *S = malloc(ns * 4), *S1 = malloc(ns * 4);
        float *qk = malloc((size_t)T * ldqk * 4), *v = malloc((size_t)T * ldv * 4);
        float *o = malloc((size_t)T * ldo * 4), *o1 = malloc((size_t)T * ldo * 4);
        float *work = malloc((size_t)dv * 4), g[T * 2], b[T * 2];
        double *Sd = malloc(ns * 8), *u = malloc((size_t)dv * 8), *od = malloc((size_t)T * dv * 8);
        fill(S0, (int64_t)ns, 0.5f);
        fill(qk, (int64_t)T * ldqk, 0.3f);
        fill(v, (int64_t)T * ldv, 1);
        for (int t = 0; t < T; t++) {
            g[t * ldg] = 0.55f + 0.08f * t;
            b[t * ldg] = 0.9f - 0.15f * t;
        }
        const float *q = qk, *kk = qk + dk;
        for (size_t i = 0; i < ns; i++)
            Sd[i] = S0[i];
        for (int t = 0; t < T; t++) {
            const float *qt = q + t * ldqk, *kt = kk + t * ldqk, *vt = v + t * ldv;
            for (size_t i = 0; i < ns; i++)
                Sd[i] *= g[t * ldg];
            for (int j = 0; j < dv; j++) {
                double s = 0;
                for (int i = 0; i < dk; i++)
                    s += Sd[(int64_t)i * dv + j] * kt[i];
                u[j] = b[t * ldg] * (vt[j] - s);
            }
            for (int i = 0; i < dk; i++)
                for (int j = 0; j < dv; j++)
                    Sd[(int64_t)i * dv + j] += kt[i] * u[j];
            for (int j = 0; j < dv; j++) {
                double s = 0;
                for (int i = 0; i < dk; i++)
                    s += Sd[(int64_t)i * dv + j] * qt[i];
                od[t * dv + j] = s;
            }
        }
        for (int vi = 0; vi < n_variants; vi++) {
            const q35_kernels *k = variants[vi];
            for (int64_t i = 0; i < (int64_t)T * ldo; i++)
                o[i] = o1[i] = 777;
            memcpy(S, S0, ns * 4);
            k->gdn_scan(S, dk, dv, T, q, kk, ldqk, v, ldv, g, b, ldg, o, ldo, work);
            char what[64];
            for (int t = 0; t < T; t++) {
                snprintf(what, sizeof what, "gdn_scan o dk=%d dv=%d token %d", dk, dv, t);
                close_or_fail(what, k->name, dv, o + t * ldo, od + t * dv, dv, 2e-6);
                for (int64_t i = dv; i < ldo; i++)
                    assert_true(o[t * ldo + i] == 777);
            }
            snprintf(what, sizeof what, "gdn_scan S dk=%d dv=%d", dk, dv);
            close_or_fail(what, k->name, (int)ns, S, Sd, (int)ns, 2e-6);
            /* one token per call */
            memcpy(S1, S0, ns * 4);
            for (int t = 0; t < T; t++)
                k->gdn_scan(S1, dk, dv, 1, q + t * ldqk, kk + t * ldqk, ldqk, v + t * ldv, ldv,
                            g + t * ldg, b + t * ldg, ldg, o1 + t * ldo, ldo, work);
            for (size_t i = 0; i < ns; i++)
                if (fabsf(S1[i] - S[i]) > 1e-6f * (1 + fabsf(S[i])))
                    fail_msg("%s gdn_scan dk=%d dv=%d: one call vs %d calls differ", k->name, dk,
                             dv, T);
        }
        free(S0);
        free(S);
        free(S1);
        free(qk);
        free(v);
        free(o);
        free(o1);
        free(work);
        free(Sd);
        free(u);
        free(od);
    }
}

static void test_small_ops(void **st) {
    (void)st;
    assert_true(fabsf(q35_sigmoidf(0) - 0.5f) < 1e-7f);
    assert_true(q35_sigmoidf(-200) == 0 && q35_sigmoidf(200) == 1);
    assert_true(fabs(q35_softplusf(0) - log(2.0)) < 1e-7);
    assert_true(q35_softplusf(100) == 100.0f && q35_softplusf(-100) > 0);
    assert_true(fabs(q35_softplusf(-30) - exp(-30.0)) < 1e-6 * exp(-30.0));
    float x[5] = {3, 4, 0, 0, 0};
    q35_l2norm(x, 0, 5);
    assert_true(fabsf(x[0] - 0.6f) < 1e-7f && fabsf(x[1] - 0.8f) < 1e-7f);
    /* rope: dims 0..3 rotated in NeoX pairs (0,2), (1,3); 4, 5 pass through */
    float cs[2], sn[2], r[6] = {1, 2, 3, 4, 5, 6};
    q35_rope_angles(cs, sn, 3, 10000.0, 4);
    double a0 = 3.0, a1 = 3.0 * pow(10000.0, -0.5);
    assert_true(fabs(cs[0] - cos(a0)) < 1e-7 && fabs(sn[1] - sin(a1)) < 1e-7);
    q35_rope_neox(r, cs, sn, 4);
    assert_true(fabs(r[0] - (1 * cos(a0) - 3 * sin(a0))) < 1e-6);
    assert_true(fabs(r[2] - (3 * cos(a0) + 1 * sin(a0))) < 1e-6);
    assert_true(fabs(r[1] - (2 * cos(a1) - 4 * sin(a1))) < 1e-6);
    assert_true(fabs(r[3] - (4 * cos(a1) + 2 * sin(a1))) < 1e-6);
    assert_true(r[4] == 5 && r[5] == 6);
    /* embedding row lookup in each dtype */
    uint16_t bf[6], hf[6];
    float f[6] = {1, -2, 0.5f, 3, 4, -0.25f}, out[3];
    for (int i = 0; i < 6; i++) {
        bf[i] = q35_f32_to_bf16(f[i]);
        hf[i] = q35_f32_to_f16(f[i]);
    }
    q35_tensor tb = {Q35_DT_BF16, 2, {2, 3}, bf}, th = {Q35_DT_F16, 2, {2, 3}, hf},
               tf = {Q35_DT_F32, 2, {2, 3}, f};
    q35_tensor_row_f32(&tb, 1, out);
    assert_true(out[0] == 3 && out[2] == -0.25f);
    q35_tensor_row_f32(&th, 1, out);
    assert_true(out[1] == 4);
    q35_tensor_row_f32(&tf, 0, out);
    assert_true(out[1] == -2);
}

/* ---- `test_kernels bench [threads] [reps]`: matmul speed by dtype, not a
 * test (no assertions, never run by ctest). Decode (T = 1) streams a
 * model's worth of matrices (NMAT x [1024, 3584], 1.5 GB in bf16, like
 * Qwen3.5-0.8B) so weights come from memory, not cache; prefill (T = 64,
 * 512) reuses a few. Best of `reps`, dtypes interleaved in each rep so a
 * busy moment of this shared machine hits all of them alike. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *bench_matrix(q35_dtype dt, int rows, int cols) {
    size_t bytes = q35_row_bytes(dt, cols) * (size_t)rows;
    uint8_t *w = malloc(bytes + 1), *p = w + 1; /* odd address, like a mapped GGUF */
    if (!w) return NULL;
    for (size_t i = 0; i < bytes; i += 8) {
        frand();
        memcpy(p + i, &rng_state, bytes - i < 8 ? bytes - i : 8);
    }
    if (dt == Q35_DT_BF16) /* keep exponents sane: values in +-[2^-8, 2^0) */
        for (size_t i = 1; i < bytes; i += 2)
            p[i] = (uint8_t)((p[i] & 0x80) | 0x3b | (p[i] & 0x04));
    else if (dt == Q35_DT_Q4_K)
        for (size_t b = 0; b < bytes; b += 144) { /* d, dmin ~ 2^-12 */
            p[b + 1] = (uint8_t)((p[b + 1] & 0x83) | 0x0c);
            p[b + 3] = (uint8_t)((p[b + 3] & 0x83) | 0x0c);
        }
    else if (dt == Q35_DT_Q6_K)
        for (size_t b = 0; b < bytes; b += 210) /* d ~ 2^-14 */
            p[b + 209] = (uint8_t)((p[b + 209] & 0x83) | 0x04);
    else
        for (size_t b = 0; b < bytes; b += qblock_bytes(dt))
            p[b + 1] = (uint8_t)((p[b + 1] & 0x83) | 0x1c); /* d ~ 2^-8 */
    return w;
}

static int bench(int argc, char **argv) {
    enum { ROWS = 1024, COLS = 3584, NMAT = 204, NPRE = 4, MAXT = 512 };
    int nthreads = argc > 0 ? atoi(argv[0]) : 2, reps = argc > 1 ? atoi(argv[1]) : 5;
    /* fewer decode matrices (a third argument) measure from cache */
    int ndec = argc > 2 ? atoi(argv[2]) : NMAT;
    const char *only = getenv("Q35_BENCH_SET");
    static const q35_dtype dts[] = {Q35_DT_BF16, Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K,
                                    Q35_DT_Q6_K};
    enum { ND = sizeof dts / sizeof *dts };
    static const int Ts[] = {1, 2, 4, 8, 64, 512};
    int nT = argc > 3 ? atoi(argv[3]) : (int)(sizeof Ts / sizeof *Ts);
    void *mats[ND][NMAT];
    for (int d = 0; d < ND; d++)
        for (int m = 0; m < NMAT; m++)
            if (!(mats[d][m] = bench_matrix(dts[d], ROWS, COLS))) return 1;
    float *x = malloc((size_t)MAXT * COLS * 4), *y = malloc((size_t)MAXT * ROWS * 4);
    void *buf = aligned_alloc(64, 64u << 20);
    fill(x, (int64_t)MAXT * COLS, 1);
    q35_threadpool *pool = q35_threadpool_new(nthreads, NULL);
    printf("matmul [%d x %d], %d thread(s), best of %d\n", ROWS, COLS, nthreads, reps);
    printf("%-7s %4s %-5s %10s %9s %9s %8s\n", "set", "T", "dtype", "GB/s", "Gw/s", "tok/s",
           "vs bf16");
    for (int v = 1; v < n_variants; v++) { /* the SIMD sets */
        const q35_kernels *k = variants[v];
        if (only && strcmp(only, k->name)) continue;
        for (int ti = 0; ti < nT; ti++) {
            int T = Ts[ti], nm = T < 8 ? ndec : NPRE;
            q35_acts a = q35_acts_prepare(k, x, COLS, T, COLS, buf);
            double best[ND];
            for (int d = 0; d < ND; d++)
                best[d] = 1e30;
            for (int r = 0; r < reps; r++)
                for (int d = 0; d < ND; d++) {
                    double t0 = now_s();
                    for (int m = 0; m < nm; m++) {
                        q35_tensor w = {dts[d], 2, {ROWS, COLS}, (uint8_t *)mats[d][m] + 1};
                        q35_matmul(k, pool, &w, &a, y, ROWS);
                    }
                    double dt = now_s() - t0;
                    if (dt < best[d]) best[d] = dt;
                }
            for (int d = 0; d < ND; d++) {
                double bytes = (double)q35_row_bytes(dts[d], COLS) * ROWS * nm;
                double weights = (double)ROWS * COLS * nm;
                /* tok/s: tokens through all NMAT matrices (a model's worth) */
                double tps = T * (double)nm / NMAT / best[d];
                printf("%-7s %4d %-5s %10.2f %9.2f %9.2f %7.2fx\n", k->name, T,
                       q35_dtype_name(dts[d]), bytes / best[d] * 1e-9, weights / best[d] * 1e-9,
                       tps, best[0] / best[d]);
            }
        }
    }
    q35_threadpool_free(pool);
    for (int d = 0; d < ND; d++)
        for (int m = 0; m < NMAT; m++)
            free(mats[d][m]);
    free(x);
    free(y);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "bench")) {
        setup(NULL);
        return bench(argc - 2, argv + 2);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),           cmocka_unit_test(test_matmul_quant),
        cmocka_unit_test(test_matmul_quant_amx), cmocka_unit_test(test_quant_edges),
        cmocka_unit_test(test_matmul_threaded),  cmocka_unit_test(test_dots_wsum),
        cmocka_unit_test(test_vector_ops),       cmocka_unit_test(test_gdn_scan),
        cmocka_unit_test(test_small_ops),        cmocka_unit_test(test_matmul_kquant),
        cmocka_unit_test(test_kquant_edges),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
