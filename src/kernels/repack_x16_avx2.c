/* repack_x16_avx2.c — q35_x16_pack with AVX2, for the load where there is
 * no AVX-512: the same bytes as the plain C pack (repack_x16.c;
 * test_int8_x16 holds them equal). repack_x16_avx512.c's method on two
 * 8-row halves: each 64-byte vector of the form (one dword of each of the
 * 16 rows) is two masked gathers of 8 rows' dwords, stored as its two
 * 32-byte halves; the f16 scales and Q6_K's int8 scales are narrowed with
 * byte shuffles (AVX2 has no vpmovdw / vpmovdb). Only called where the CPU
 * has AVX2 (repack_x16.c). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/repack_x16.h"

/* One form vector as two halves: lanes of rows 0-7, rows 8-15. */
typedef struct v2 {
    __m256i h[2];
} v2;

/* The group's rows: row r at p + 8 h ldw + idx[r % 8], h = r / 8; rows
 * past the matrix's end have their mask lane 0. */
typedef struct rows16 {
    const uint8_t *p;
    size_t half;
    __m256i idx, m[2];
} rows16;

static inline v2 gather(const rows16 *s, size_t off) {
    v2 v;
    for (int h = 0; h < 2; h++)
        v.h[h] = _mm256_mask_i32gather_epi32(
            _mm256_setzero_si256(), (const int *)(s->p + h * s->half + off), s->idx, s->m[h], 1);
    return v;
}

static inline void put(uint8_t *dst, v2 v) {
    _mm256_storeu_si256((__m256i *)dst, v.h[0]);
    _mm256_storeu_si256((__m256i *)(dst + 32), v.h[1]);
}

/* The low (hi: high) 16 bits of each of the 16 lanes: 16 f16 values. */
static inline void put_halves(uint8_t *dst, v2 v, int hi) {
    const __m256i pick =
        hi ? _mm256_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, 2, 3, 6,
                              7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1)
           : _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5,
                              8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v.h[h], pick), 0x08);
        _mm_storeu_si128((__m128i *)(dst + 16 * h), _mm256_castsi256_si128(q));
    }
}

static inline v2 v2_and(v2 a, __m256i m) {
    return (v2){{_mm256_and_si256(a.h[0], m), _mm256_and_si256(a.h[1], m)}};
}
static inline v2 v2_or(v2 a, v2 b) {
    return (v2){{_mm256_or_si256(a.h[0], b.h[0]), _mm256_or_si256(a.h[1], b.h[1])}};
}
static inline v2 v2_srli(v2 a, int n) {
    return (v2){{_mm256_srli_epi32(a.h[0], n), _mm256_srli_epi32(a.h[1], n)}};
}
static inline v2 v2_slli(v2 a, int n) {
    return (v2){{_mm256_slli_epi32(a.h[0], n), _mm256_slli_epi32(a.h[1], n)}};
}

static void pack_q0(const rows16 *s, int q8, int64_t nb, uint8_t *grp) {
    const size_t bb = q8 ? 34 : 18, cb = q8 ? 512 : 256;
    const int dwords = q8 ? 8 : 4;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    /* ^ 0x80 only in the rows present (the padding stays zero) */
    const __m256i f0 = _mm256_and_si256(flip, s->m[0]), f1 = _mm256_and_si256(flip, s->m[1]);
    uint8_t *codes = grp + 32 * (size_t)nb;
    for (int64_t b = 0; b < nb; b++) {
        const size_t o = (size_t)b * bb;
        put_halves(grp + 32 * b, gather(s, o), 0);
        for (int k = 0; k < dwords; k++) {
            v2 v = gather(s, o + 2 + 4 * (size_t)k);
            if (q8) v = (v2){{_mm256_xor_si256(v.h[0], f0), _mm256_xor_si256(v.h[1], f1)}};
            put(codes + (size_t)b * cb + 64 * (size_t)k, v);
        }
    }
}

static void pack_q4k(const rows16 *s, int64_t nsb, uint8_t *grp) {
    uint8_t *codes = grp + 256 * (size_t)nsb;
    for (int64_t k = 0; k < nsb; k++) {
        const size_t o = 144 * (size_t)k;
        uint8_t *meta = grp + 256 * (size_t)k;
        for (int i = 0; i < 3; i++)
            put(meta + 64 * i, gather(s, o + 4 + 4 * (size_t)i));
        const v2 dd = gather(s, o);
        put_halves(meta + 192, dd, 0);
        put_halves(meta + 224, dd, 1);
        for (int c = 0; c < 4; c++)
            for (int g = 0; g < 8; g++)
                put(codes + 2048 * (size_t)k + 512 * c + 64 * g,
                    gather(s, o + 16 + 32 * (size_t)c + 4 * (size_t)g));
    }
}

/* Q6_K: as repack_x16_avx512.c's pack_q6k (the layout of ggml's ql / qh
 * there); the scale transpose by a 4 x 4 byte shuffle in each 128-bit
 * lane and a dword permute: qword i of the result is byte i of the 8
 * rows' dwords. */
static void pack_q6k(const rows16 *s, int64_t nsb, uint8_t *grp) {
    const __m256i m0f = _mm256_set1_epi8(0x0f), mf0 = _mm256_set1_epi8((char)0xf0),
                  m03 = _mm256_set1_epi8(3);
    const __m256i tr = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4,
                                        8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m256i lanes = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    uint8_t *codes = grp + 288 * (size_t)nsb;
    for (int64_t k = 0; k < nsb; k++) {
        const size_t o = 210 * (size_t)k;
        uint8_t *meta = grp + 288 * (size_t)k;
        for (int q = 0; q < 4; q++) {
            const v2 v = gather(s, o + 192 + 4 * (size_t)q);
            for (int h = 0; h < 2; h++) {
                _Alignas(32) uint8_t t[32];
                _mm256_store_si256((__m256i *)t, _mm256_permutevar8x32_epi32(
                                                     _mm256_shuffle_epi8(v.h[h], tr), lanes));
                for (int i = 0; i < 4; i++)
                    memcpy(meta + 16 * (4 * q + i) + 8 * h, t + 8 * i, 8);
            }
        }
        put_halves(meta + 256, gather(s, o + 206), 1); /* d: bytes 208, 209 */
        for (int n = 0; n < 2; n++) {
            v2 ql[16], qh[8];
            for (int i = 0; i < 16; i++)
                ql[i] = gather(s, o + 64 * (size_t)n + 4 * (size_t)i);
            for (int i = 0; i < 8; i++)
                qh[i] = gather(s, o + 128 + 32 * (size_t)n + 4 * (size_t)i);
            for (int q = 0; q < 4; q++) {
                uint8_t *c = codes + 384 * (size_t)(8 * k + 4 * n + q);
                const v2 *l = ql + 8 * (q & 1);
                for (int g = 0; g < 4; g++) {
                    const v2 a = l[g], b = l[4 + g];
                    put(c + 64 * g, q < 2 ? v2_or(v2_and(a, m0f), v2_and(v2_slli(b, 4), mf0))
                                          : v2_or(v2_and(v2_srli(a, 4), m0f), v2_and(b, mf0)));
                }
                for (int h = 0; h < 2; h++) {
                    v2 hb = {{_mm256_setzero_si256(), _mm256_setzero_si256()}};
                    for (int g = 0; g < 4; g++)
                        hb = v2_or(hb, v2_slli(v2_and(v2_srli(qh[4 * h + g], 2 * q), m03), 2 * g));
                    put(c + 256 + 64 * h, hb);
                }
            }
        }
    }
}

void q35_x16_pack_avx2(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols, int64_t g0,
                       int64_t g1, uint8_t *dst) {
    const size_t ldw = q35_row_bytes(base, cols);
    const int64_t nb = cols / q35_dtype_block_elems(base);
    /* the gathers' row offsets are int32: rows too long for them (no real
     * model's) take the plain pack */
    if (ldw > (size_t)INT32_MAX / Q35_X16_ROWS) {
        q35_x16_pack(base, src, rows, cols, g0, g1, dst);
        return;
    }
    const __m256i idx =
        _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)ldw));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t g = g0; g < g1; g++) {
        const int64_t left = rows - g * Q35_X16_ROWS;
        const int l0 = left >= 8 ? 8 : (int)left, l1 = left >= 16 ? 8
                                                       : left > 8 ? (int)left - 8
                                                                  : 0;
        rows16 s = {src + (size_t)g * Q35_X16_ROWS * ldw,
                    8 * ldw,
                    idx,
                    {_mm256_cmpgt_epi32(_mm256_set1_epi32(l0), lane),
                     _mm256_cmpgt_epi32(_mm256_set1_epi32(l1), lane)}};
        uint8_t *grp = dst + (size_t)g * Q35_X16_ROWS * ldw;
        if (base == Q35_DT_Q6_K)
            pack_q6k(&s, nb, grp);
        else if (base == Q35_DT_Q4_K)
            pack_q4k(&s, nb, grp);
        else
            pack_q0(&s, base == Q35_DT_Q8_0, nb, grp);
    }
}
