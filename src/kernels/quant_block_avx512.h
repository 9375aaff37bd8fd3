/* quant_block_avx512.h — one Q8_0 / Q4_0 block widened in AVX-512
 * registers to its exact float32 weights d * q. Shared by the FMA kernels
 * (kernels_avx512.c) and the AMX panels (matmul_amx_avx512.c), which must
 * see the same weight values; include only from files compiled with the
 * AVX-512 flags. */
#ifndef Q35_KERNELS_QUANT_BLOCK_AVX512_H
#define Q35_KERNELS_QUANT_BLOCK_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/quant_block.h"
#include "model/tensor.h"

/* The 32 weights of a Q8_0 / Q4_0 block as two float32 vectors holding the
 * exact products d * q (d: the block's scale, broadcast), i.e. the numbers
 * the float32 path would read from the dequantized matrix: with tile()'s
 * FMA order on top, a quantized matmul gives bit for bit this set's float32
 * matmul over the dequantized matrix. Q4_0 goes through a 16-entry table
 * d * (n - 8) indexed by the nibble (vpermps reads only an index's low 4
 * bits, so the low nibble needs no mask). */
static inline __attribute__((always_inline)) void qblock_f32(q35_dtype dt, const uint8_t *b,
                                                             __m512 d, __m512 *w0, __m512 *w1) {
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
    if (dt == Q35_DT_Q8_0) {
        __m128i q1 = _mm_loadu_si128((const __m128i *)(b + 18));
        *w0 = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
        *w1 = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)));
    } else {
        const __m512 n8 = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
        __m512 tbl = _mm512_mul_ps(d, n8);
        __m512i v = _mm512_cvtepu8_epi32(q);
        *w0 = _mm512_permutexvar_ps(v, tbl);
        *w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), tbl);
    }
}

/* Weights 16i .. 16i+15 (i < 16) of the Q4_K / Q6_K super-block at b as
 * float32, from its multipliers (q35_kblock_scales): the products the
 * plain C decoder forms, in its order (a multiply, then for Q4_K a
 * subtract; never fused), so the values are its values. The 16 weights
 * share one multiplier: Q4_K sub-block i/2, Q6_K sub-block i. */
static inline __attribute__((always_inline)) __m512
kblock_f32(q35_dtype dt, const uint8_t *b, int i, const float *mul, const float *sub) {
    const __m512i m15 = _mm512_set1_epi32(15);
    if (dt == Q35_DT_Q4_K) {
        /* a 16-entry table mul * n - sub (n = 0..15, the same two float
         * operations per entry) indexed by the nibble, as Q4_0 does: vpermps
         * reads only an index's low 4 bits, so no mask; the table is the
         * same for both halves of a sub-block (the compiler shares it) */
        const __m512 n16 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        int j = i / 2;
        __m512 tbl =
            _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(mul[j]), n16), _mm512_set1_ps(sub[j]));
        __m512i v = _mm512_cvtepu8_epi32(
            _mm_loadu_si128((const __m128i *)(b + 16 + 32 * (j / 2) + 16 * (i & 1))));
        if (j & 1) v = _mm512_srli_epi32(v, 4);
        return _mm512_permutexvar_ps(v, tbl);
    }
    int h = i / 8, k = (i % 8) / 2, l0 = 16 * (i & 1);
    __m512i lo =
        _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 64 * h + 32 * (k & 1) + l0)));
    __m512i hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 128 + 32 * h + l0)));
    lo = _mm512_and_si512(_mm512_srli_epi32(lo, (unsigned)(4 * (k >> 1))), m15);
    hi = _mm512_slli_epi32(
        _mm512_and_si512(_mm512_srli_epi32(hi, (unsigned)(2 * k)), _mm512_set1_epi32(3)), 4);
    __m512i q = _mm512_sub_epi32(_mm512_or_si512(lo, hi), _mm512_set1_epi32(32));
    return _mm512_mul_ps(_mm512_set1_ps(mul[i]), _mm512_cvtepi32_ps(q));
}

/* The multipliers of q35_kblock_scales, computed 16 at a time: the same
 * products float(d) * float(sc) (one rounding each), so the same values.
 * Q4_K: mul[0..7] and sub[0..7] (in buf[8..15]) from one vector; Q6_K:
 * mul[0..15]. The 6-bit Q4_K fields are unpacked from the 12 bytes as
 * three 32-bit words: bytes j (scale) and j + 4 (min) give fields j < 4;
 * fields j >= 4 are byte j + 4's nibbles under the top bit pairs of bytes
 * j - 4 (scale) and j (min). */
static inline __attribute__((always_inline)) void kblock_scales16(q35_dtype dt, const uint8_t *b,
                                                                  float buf[16]) {
    __m512 f, i;
    if (dt == Q35_DT_Q4_K) {
        uint32_t w0, w1, w2;
        memcpy(&w0, b + 4, 4);
        memcpy(&w1, b + 8, 4);
        memcpy(&w2, b + 12, 4);
        uint32_t sc_lo = w0 & 0x3f3f3f3fu, mn_lo = w1 & 0x3f3f3f3fu;
        uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
        uint32_t mn_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
        __m128i v = _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi);
        __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16((short)q35_qblock_d16(b)));
        __m512 dm = _mm512_cvtph_ps(_mm256_set1_epi16((short)q35_qblock_d16(b + 2)));
        f = _mm512_mask_mov_ps(d, 0xff00, dm);
        i = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v));
    } else {
        f = _mm512_cvtph_ps(_mm256_set1_epi16((short)q35_qblock_d16(b + 208)));
        i = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192))));
    }
    _mm512_storeu_ps(buf, _mm512_mul_ps(f, i));
    /* make the compiler take buf as changed here, so it reads each
     * multiplier back from memory as a broadcast load instead of keeping
     * the vector and extracting lanes (a shuffle per 16 weights: 4% (Q6_K)
     * and 8% (Q4_K) slower at T = 1, 2 threads) */
    __asm__("" : "+m"(*(float(*)[16])buf));
}

/* The 64 Q6_K values q - 32 (int8) of elements 64g .. 64g+63 (g < 4) of
 * the super-block at b, in element order: half h = g/2's low nibbles (64
 * bytes: elements l and l + 32 of the pair, low nibbles for g even, high
 * for g odd) under the bit pairs of its 32 high bytes, broadcast to both
 * 256-bit halves and shifted per qword so that element l + 32k's pair
 * (bits 2k, 2k+1) lands at bits 4-5: left 4, 2 for k = 0, 1, right 0, 2
 * for k = 2, 3 (bits shifted in from a neighbour byte are masked off). */
static inline __attribute__((always_inline)) __m512i q6k_group(const uint8_t *b, int g) {
    int h = g / 2;
    __m512i ql = _mm512_loadu_si512((const void *)(b + 64 * h));
    __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
    __m512i hi;
    if (g & 1) {
        ql = _mm512_srli_epi16(ql, 4);
        hi = _mm512_srlv_epi64(qh, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
    } else {
        hi = _mm512_sllv_epi64(qh, _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2));
    }
    __m512i q = _mm512_or_si512(_mm512_and_si512(ql, _mm512_set1_epi8(0x0f)),
                                _mm512_and_si512(hi, _mm512_set1_epi8(0x30)));
    return _mm512_sub_epi8(q, _mm512_set1_epi8(32));
}

static inline __m512 qblock_scale(const uint8_t *b) {
    return _mm512_cvtph_ps(_mm256_set1_epi16((short)q35_qblock_d16(b)));
}

#endif
