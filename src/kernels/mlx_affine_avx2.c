/* mlx_affine_avx2.c — AVX2 + FMA float paths for MLX affine and Q5_K
 * weights (built with -mavx2 -mfma -mf16c, run only after the CPU check;
 * the AVX-512 sets use them too).
 *
 * MLX affine: the loop is mlx_affine_rows.h's (NEON's too); what is x86
 * here: eight codes are b bytes for every b, so one shuffle table per b
 * puts code i's two bytes in 32-bit lane i, a variable shift and a mask
 * finish it, and the same five instructions serve 2, 3, 4, 5, 6 and 8
 * bits; scales and biases widened a row at a time (F16C, a bf16 shift).
 *
 * Q5_K: each super-block's weights are decoded in registers with the
 * plain C definition's float operations (so exactly its values), stored to
 * an L1 buffer once per row and multiplied by up to four tokens. */
#include <immintrin.h>
#include <string.h>

#include "kernels/mlx_affine.h"
#include "kernels/quant_block.h"

#define QT 4 /* Q5_K: tokens per pass over a row */

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Per b: the shuffle putting bytes k_i, k_i + 1 (k_i = i*b/8) in lane i,
 * and the shifts i*b mod 8. */
typedef struct unit_tab {
    __m256i shuf, shift, mask;
} unit_tab;

static unit_tab make_tab(int b) {
    int8_t sh[32];
    int32_t s[8];
    for (int i = 0; i < 8; i++) {
        int k = i * b / 8;
        s[i] = i * b % 8;
        for (int h = 0; h < 2; h++) { /* both 128-bit halves hold the same 8 bytes */
            int lane = i - 4 * h;
            if (lane < 0 || lane > 3) continue;
            int8_t *d = sh + 16 * h + 4 * lane;
            d[0] = (int8_t)k;
            d[1] = (int8_t)(k + 1 < 8 ? k + 1 : 0x80);
            d[2] = d[3] = (int8_t)0x80;
        }
    }
    unit_tab t;
    t.shuf = _mm256_loadu_si256((const __m256i *)sh);
    t.shift = _mm256_loadu_si256((const __m256i *)s);
    t.mask = _mm256_set1_epi32((1 << b) - 1);
    return t;
}

/* n values of a scales/biases row (dtype aux) as float32, 8 at a time. */
static void aux_row(const void *p, int aux, size_t at, int64_t n, float *out) {
    int64_t i = 0;
    if (aux == Q35_DT_F16) {
        const uint16_t *h = (const uint16_t *)p + at;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    } else if (aux == Q35_DT_BF16) {
        const uint16_t *h = (const uint16_t *)p + at;
        for (; i + 8 <= n; i += 8) {
            __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
            _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
    }
    for (; i < n; i++)
        out[i] = q35_mlx_aux_f32(p, aux, at + (size_t)i);
}

static inline __m256 unit_codes(const uint8_t *p, const unit_tab *t) {
    long long u;
    memcpy(&u, p, 8);
    __m256i v = _mm256_set1_epi64x(u); /* the 8 bytes in both halves */
    v = _mm256_shuffle_epi8(v, t->shuf);
    v = _mm256_and_si256(_mm256_srlv_epi32(v, t->shift), t->mask);
    return _mm256_cvtepi32_ps(v);
}

/* The float path's one body (mlx_affine_rows.h) on 8-lane AVX vectors. */
typedef __m256 v8;
#define v8_zero() _mm256_setzero_ps()
#define v8_load(p) _mm256_loadu_ps(p)
#define v8_fma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define v8_add(a, b) _mm256_add_ps(a, b)
#define v8_set1(s) _mm256_set1_ps(s)
#define v8_hsum(v) hsum8(v)
#define MLX_ROWS_FN q35_mlx_matmul_avx2
#include "kernels/mlx_affine_rows.h"

/* ------------------------------------------------------------------ Q5_K */

/* The 256 weights of a Q5_K super-block, as quant_block.h computes them. */
static void q5k_decode(const uint8_t *b, float *out) {
    float mul[16], sub[8];
    q35_kblock_scales(Q35_DT_Q4_K, b, mul, sub); /* Q5_K's scale bytes are Q4_K's */
    const uint8_t *qh = b + 16, *qs = b + 48;
    const __m256i m15 = _mm256_set1_epi32(15), one = _mm256_set1_epi32(1);
    for (int j = 0; j < 8; j++) {
        const uint8_t *q = qs + 32 * (j / 2);
        const __m128i sh = _mm_cvtsi32_si128(4 * (j & 1)), hj = _mm_cvtsi32_si128(j);
        const __m256 m = _mm256_set1_ps(mul[j]), s = _mm256_set1_ps(sub[j]);
        for (int l = 0; l < 32; l += 8) {
            __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + l)));
            __m256i hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qh + l)));
            lo = _mm256_and_si256(_mm256_srl_epi32(lo, sh), m15);
            hi = _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(hi, hj), one), 4);
            __m256 v = _mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi));
            _mm256_storeu_ps(out + 32 * j + l, _mm256_sub_ps(_mm256_mul_ps(m, v), s));
        }
    }
}

void q35_q5k_matmul_avx2(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    const int64_t cols = w->shape[1], nb = cols / Q35_KBLOCK, ldx = a->ldx;
    const size_t rb = q35_row_bytes(Q35_DT_Q5_K, cols);
    float wb[Q35_KBLOCK];
    for (int64_t o = r0; o < r1; o++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)o * rb;
        for (int t0 = 0; t0 < a->T; t0 += QT) {
            const int nt = a->T - t0 < QT ? a->T - t0 : QT;
            __m256 acc[QT][2];
            for (int t = 0; t < QT; t++)
                acc[t][0] = acc[t][1] = _mm256_setzero_ps();
            for (int64_t kb = 0; kb < nb; kb++) {
                q5k_decode(row + (size_t)kb * 176, wb);
                for (int t = 0; t < nt; t++) {
                    const float *x = a->x + (int64_t)(t0 + t) * ldx + kb * Q35_KBLOCK;
                    for (int i = 0; i < Q35_KBLOCK; i += 16) {
                        acc[t][0] = _mm256_fmadd_ps(_mm256_loadu_ps(wb + i), _mm256_loadu_ps(x + i),
                                                    acc[t][0]);
                        acc[t][1] = _mm256_fmadd_ps(_mm256_loadu_ps(wb + i + 8),
                                                    _mm256_loadu_ps(x + i + 8), acc[t][1]);
                    }
                }
            }
            for (int t = 0; t < nt; t++)
                y[(int64_t)(t0 + t) * ldy + o] = hsum8(_mm256_add_ps(acc[t][0], acc[t][1]));
        }
    }
}
