/* int8_x86_q5k.h — the x86 integer micro-kernel for Q5_K (microkernel.h,
 * int8_generic.c's definition), included by int8_avx2.c and int8_avx512.c
 * after int8_x86_tiles.h, whose DOT_U8S8, MR, NR, k4_scales and DISPATCH
 * it uses: Q4_K's loop (q4k_tile) with each sub-block's fifth bit OR-ed in
 * as 16 (n = 0..31: vpmaddubsw's pairs stay below int16, 31 * 127 * 2).
 * The fifth bits of sub-block j are bit j of the 32 qh bytes: a 16-bit
 * shift by j and a mask of 1 per byte take them for every byte at once. */
#ifndef Q35_KERNELS_INT8_X86_Q5K_H
#define Q35_KERNELS_INT8_X86_Q5K_H

INLINE void q5k_tile(const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx, int64_t cols,
                     float *y, int64_t ldy, const int R, const int C) {
    __m256 acc[MR][NR], macc[MR][NR];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = macc[r][c] =
        _mm256_setzero_ps();
    const float *da[NR];
    const int16_t *sa[NR];
    UNROLL for (int c = 0; c < C; c++) {
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const __m256i m15 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    for (int64_t k = 0; k < cols / 256; k++) {
        float mul[MR][8], sub[MR][8];
        __m256i qh[MR];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *sb = w + r * ldw + k * 176;
            for (int i = 0; i < 176; i += 64)
                _mm_prefetch(ahead(sb, (size_t)R * ldw + (size_t)i), _MM_HINT_T0);
            k4_scales(sb, mul[r], sub[r]);
            qh[r] = _mm256_loadu_si256((const __m256i *)(sb + 16));
        }
        __m256 dS[NR]; /* d_j * S_j for the 8 blocks, per token */
        UNROLL for (int c = 0; c < C; c++) {
            __m256i s0 = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 16 * k)));
            __m256i s1 =
                _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 16 * k + 8)));
            __m256i S = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s0, s1), 0xd8);
            dS[c] = _mm256_mul_ps(_mm256_loadu_ps(da[c] + 8 * k), _mm256_cvtepi32_ps(S));
        }
        UNROLL for (int r = 0; r < R; r++) {
            __m256 subv = _mm256_loadu_ps(sub[r]);
            UNROLL for (int c = 0; c < C; c++) macc[r][c] =
                _mm256_fmadd_ps(subv, dS[c], macc[r][c]);
        }
        for (int h = 0; h < 4; h++) { /* 32 bytes: sub-blocks 2h (low), 2h+1 (high) */
            __m256i n[MR][2];
            UNROLL for (int r = 0; r < R; r++) {
                __m256i q =
                    _mm256_loadu_si256((const __m256i *)(w + r * ldw + k * 176 + 48 + 32 * h));
                __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh[r], 2 * h), one);
                __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh[r], 2 * h + 1), one);
                n[r][0] = _mm256_or_si256(_mm256_and_si256(q, m15), _mm256_slli_epi16(h0, 4));
                n[r][1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m15),
                                          _mm256_slli_epi16(h1, 4));
            }
            UNROLL for (int c = 0; c < C; c++) {
                UNROLL for (int e = 0; e < 2; e++) {
                    int64_t b = 8 * k + 2 * h + e;
                    __m256i a = _mm256_loadu_si256((const __m256i *)(x + c * ldx + 32 * b));
                    UNROLL for (int r = 0; r < R; r++) {
                        __m256i p = DOT_U8S8(n[r][e], a);
                        __m256 s = _mm256_set1_ps(mul[r][2 * h + e] * da[c][b]);
                        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r][c]);
                    }
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]) - hsum(macc[r][c]);
}

#define Q5K_CALL(r, c) q5k_tile(w, ldw, x, ldx, cols, y, ldy, r, c)
static void uk_q5_K(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                    int64_t cols, float *y, int64_t ldy) {
    DISPATCH(Q5K_CALL);
}

/* The set tables' entry (one line in each set file): any token count (the
 * float path it would fall back to decodes every weight to float32). */
#define Q35_X86_Q5K_ENTRY [Q35_DT_Q5_K] = {.mr = MR, .nr = NR, .fn = uk_q5_K},

#endif
