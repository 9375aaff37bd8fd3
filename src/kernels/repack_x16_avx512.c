/* repack_x16_avx512.c — q35_x16_pack with AVX-512, for the load: the same
 * bytes as the plain C pack (repack_x16.c; test_int8_x16 holds them
 * equal), which ran at about 1 GB/s and added 0.35-0.7 s to a load.
 *
 * Every 64-byte vector of the forms (repack_x16.h) is one dword of each of
 * the group's 16 rows (lane r: row r), all at the same offset in their
 * rows: one masked gather of the rows' dwords (rows past the matrix are
 * masked off and come out zero, as the plain pack's padding). The f16
 * scales are the rows' dwords that hold them, narrowed to 16 bits; Q6_K's
 * 6-bit values are regrouped in the lanes with shifts and masks (each
 * ql / qh dword gathered once per 128-element half, shared by its four
 * blocks). Only called where q35_cpu_has_avx512_set (repack_x16.c). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/repack_x16.h"

/* The 16 rows of a group: row r at p + idx[r], rows at or past the
 * matrix's end masked off. */
typedef struct rows16 {
    const uint8_t *p;
    __m512i idx;
    __mmask16 m;
} rows16;

static inline __m512i gather(const rows16 *s, size_t off) {
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), s->m, s->idx, s->p + off, 1);
}

static inline void put(uint8_t *dst, __m512i v) {
    _mm512_storeu_si512((void *)dst, v);
}

/* The low (or, hi, high) 16 bits of each lane: 16 f16 values. */
static inline void put_halves(uint8_t *dst, __m512i v, int hi) {
    _mm256_storeu_si256((__m256i *)dst, _mm512_cvtepi32_epi16(hi ? _mm512_srli_epi32(v, 16) : v));
}

/* Q8_0 / Q4_0: per block the 16 scales, then 8 / 4 code vectors (Q8_0's
 * codes + 128: ^ 0x80 in the rows present). */
static void pack_q0(const rows16 *s, int q8, int64_t nb, uint8_t *grp) {
    const size_t bb = q8 ? 34 : 18, cb = q8 ? 512 : 256;
    const int dwords = q8 ? 8 : 4;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    uint8_t *codes = grp + 32 * (size_t)nb;
    for (int64_t b = 0; b < nb; b++) {
        const size_t o = (size_t)b * bb;
        put_halves(grp + 32 * b, gather(s, o), 0);
        for (int k = 0; k < dwords; k++) {
            __m512i v = gather(s, o + 2 + 4 * (size_t)k);
            if (q8) v = _mm512_maskz_xor_epi32(s->m, v, flip);
            put(codes + (size_t)b * cb + 64 * (size_t)k, v);
        }
    }
}

/* Q4_K: per super-block the 12 scale bytes as 3 dword vectors, d and
 * dmin, then 4 chunks of 8 code vectors: every piece moves as it is. */
static void pack_q4k(const rows16 *s, int64_t nsb, uint8_t *grp) {
    uint8_t *codes = grp + 256 * (size_t)nsb;
    for (int64_t k = 0; k < nsb; k++) {
        const size_t o = 144 * (size_t)k;
        uint8_t *meta = grp + 256 * (size_t)k;
        for (int i = 0; i < 3; i++)
            put(meta + 64 * i, gather(s, o + 4 + 4 * (size_t)i));
        const __m512i dd = gather(s, o);
        put_halves(meta + 192, dd, 0);
        put_halves(meta + 224, dd, 1);
        for (int c = 0; c < 4; c++)
            for (int g = 0; g < 8; g++)
                put(codes + 2048 * (size_t)k + 512 * c + 64 * g,
                    gather(s, o + 16 + 32 * (size_t)c + 4 * (size_t)g));
    }
}

/* Q6_K: per super-block the 16 int8 scales of each row as 16 bytes a
 * scale index (a 16 x 16 byte transpose: byte i of the dword vectors) and
 * the rows' d; then per 32-element block (half n = jj / 4, quarter
 * q = jj % 4 of ggml's layout: element e's low nibble is nibble q / 2 of
 * ql[64 n + 32 (q & 1) + e], its high bits are bits 2q, 2q+1 of
 * qh[32 n + e]) the form's 4 nibble vectors and 2 high-bit vectors. */
static void pack_q6k(const rows16 *s, int64_t nsb, uint8_t *grp) {
    const __m512i m0f = _mm512_set1_epi8(0x0f), mf0 = _mm512_set1_epi8((char)0xf0),
                  m03 = _mm512_set1_epi8(3);
    uint8_t *codes = grp + 288 * (size_t)nsb;
    for (int64_t k = 0; k < nsb; k++) {
        const size_t o = 210 * (size_t)k;
        uint8_t *meta = grp + 288 * (size_t)k;
        for (int q = 0; q < 4; q++) {
            const __m512i v = gather(s, o + 192 + 4 * (size_t)q);
            for (int i = 0; i < 4; i++)
                _mm_storeu_si128((__m128i *)(meta + 16 * (4 * q + i)),
                                 _mm512_cvtepi32_epi8(_mm512_srli_epi32(v, 8 * i)));
        }
        put_halves(meta + 256, gather(s, o + 206), 1); /* d: bytes 208, 209 */
        for (int n = 0; n < 2; n++) {
            __m512i ql[16], qh[8];
            for (int i = 0; i < 16; i++)
                ql[i] = gather(s, o + 64 * (size_t)n + 4 * (size_t)i);
            for (int i = 0; i < 8; i++)
                qh[i] = gather(s, o + 128 + 32 * (size_t)n + 4 * (size_t)i);
            for (int q = 0; q < 4; q++) {
                uint8_t *c = codes + 384 * (size_t)(8 * k + 4 * n + q);
                const __m512i *l = ql + 8 * (q & 1); /* dwords of ql[64 n + 32 (q & 1) ..] */
                for (int g = 0; g < 4; g++) {
                    const __m512i a = l[g], b = l[4 + g]; /* elements 4g.., 16+4g.. */
                    /* low nibbles of a's elements, b's above them */
                    const __m512i v =
                        q < 2 ? _mm512_ternarylogic_epi32(_mm512_and_si512(a, m0f),
                                                          _mm512_slli_epi32(b, 4), mf0, 0xF8)
                              : _mm512_ternarylogic_epi32(
                                    _mm512_and_si512(_mm512_srli_epi32(a, 4), m0f), b, mf0, 0xF8);
                    put(c + 64 * g, v);
                }
                for (int h = 0; h < 2; h++) {
                    __m512i hb = _mm512_setzero_si512();
                    for (int g = 0; g < 4; g++) {
                        const __m512i bits =
                            _mm512_and_si512(_mm512_srli_epi32(qh[4 * h + g], 2 * q), m03);
                        hb = _mm512_or_si512(hb, _mm512_slli_epi32(bits, 2 * g));
                    }
                    put(c + 256 + 64 * h, hb);
                }
            }
        }
    }
}

void q35_x16_pack_avx512(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols, int64_t g0,
                         int64_t g1, uint8_t *dst) {
    const size_t ldw = q35_row_bytes(base, cols);
    const int64_t nb = cols / q35_dtype_block_elems(base);
    /* the gathers' row offsets are int32: rows too long for them (no real
     * model's) take the plain pack */
    if (ldw > (size_t)INT32_MAX / Q35_X16_ROWS) {
        q35_x16_pack(base, src, rows, cols, g0, g1, dst);
        return;
    }
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32((int)ldw));
    for (int64_t g = g0; g < g1; g++) {
        const int64_t left = rows - g * Q35_X16_ROWS;
        rows16 s = {src + (size_t)g * Q35_X16_ROWS * ldw, idx,
                    left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1)};
        uint8_t *grp = dst + (size_t)g * Q35_X16_ROWS * ldw;
        if (base == Q35_DT_Q6_K)
            pack_q6k(&s, nb, grp);
        else if (base == Q35_DT_Q4_K)
            pack_q4k(&s, nb, grp);
        else
            pack_q0(&s, base == Q35_DT_Q8_0, nb, grp);
    }
}
