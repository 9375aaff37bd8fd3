/* int8_x86_mlx.h — the x86 integer micro-kernels for MLX affine weights
 * (microkernel.h's view kernels: packed codes, per-group scales and biases
 * in arrays of their own), on 256-bit vectors. Included by int8_avx2.c and
 * int8_avx512.c after int8_x86_tiles.h, so that the byte dot product
 * (DOT_U8S8), the tile shape (MR, NR) and DISPATCH are theirs: the two
 * sets differ only there.
 *
 * Per 32-element block the 32 codes become 32 unsigned bytes in element
 * order, by bit width:
 *   4 bits: 16 bytes, low nibbles then high ones (even then odd elements:
 *     the token's activations are put in that order instead, once per
 *     token and block rather than once per row and block);
 *   8 bits: the 32 bytes as stored;
 *   2, 3, 5, 6 bits: the two bytes holding code j gathered into 16-bit
 *     lane j (pshufb, mlx_codes.h), shifted right (mulhi by 2^(15-s) of
 *     the doubled lane) and masked, then packed to bytes.
 * Then per (row, token) the block's I_b = sum q a is DOT_U8S8's int32
 * lanes, converted and added with the scale s_g * d_b; the bias part
 * sum_b z_g * (d_b * S_b) is one 8-lane product per 8 blocks.
 *
 * vpmaddubsw (AVX2) saturates at int16: codes up to 63 stay below it
 * (63 * 127 * 2), 8-bit codes would not (255 * 127 * 2), so under AVX2 they
 * are taken as q - 128 (signed, |q - 128| <= 128, sign moved onto a as for
 * Q8_0) and 128 * S_b added back in the integers; vpdpbusd (VNNI) has no
 * int16 step and multiplies the codes as they are. */
#ifndef Q35_KERNELS_INT8_X86_MLX_H
#define Q35_KERNELS_INT8_X86_MLX_H

#include "kernels/int8_x86_q5k.h"
#include "kernels/mlx_codes.h"

#if defined(__AVX512VNNI__)
#define MLX8_SIGNED 0 /* vpdpbusd: u8 x s8 straight into int32 */
#else
#define MLX8_SIGNED 1
#endif

/* Scale or bias i of a row's array of dtype aux, as float32 (exact). */
static inline float mlx_aux(const uint8_t *p, int aux, int64_t i) {
    if (aux == Q35_DT_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    if (aux == Q35_DT_F16) return _cvtsh_ss(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The scales (or biases) of blocks k .. k+7 of a row whose array is at p
 * (dtype aux, one per 2^gshift blocks), as 8 float32 lanes: the 8, 4 or 2
 * values widened at once and spread over their blocks. Only where all 8
 * blocks exist (the loads stay within the row's array). */
static inline __m256 mlx_aux8(const uint8_t *p, int aux, int gshift, int64_t k) {
    const int64_t g0 = k >> gshift;
    const __m256i spread =
        _mm256_srlv_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(gshift));
    __m256 v;
    if (aux == Q35_DT_F32) {
        const float *f = (const float *)(const void *)(p + 4 * g0);
        v = gshift == 0 ? _mm256_loadu_ps(f)
            : gshift == 1
                ? _mm256_castps128_ps256(_mm_loadu_ps(f))
                : _mm256_castps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)f)));
    } else {
        const uint8_t *h = p + 2 * g0;
        __m128i u = gshift == 0 ? _mm_loadu_si128((const __m128i *)h)
                    : gshift == 1
                        ? _mm_loadl_epi64((const __m128i *)h)
                        : _mm_cvtsi32_si128((int)((uint32_t)h[0] | (uint32_t)h[1] << 8 |
                                                  (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24));
        v = aux == Q35_DT_F16
                ? _mm256_cvtph_ps(u)
                : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(u), 16));
    }
    return _mm256_permutevar8x32_ps(v, spread);
}

/* The 32 codes of the block at p (4 * B bytes, never read past) as bytes
 * in element order, except at 4 bits: there the even elements (low
 * nibbles) then the odd ones (high), as stored, and mlx_acts reorders the
 * activations the same way (once per token rather than once per row). */
INLINE __m256i mlx_codes(const int B, const uint8_t *p) {
    if (B == 8) return _mm256_loadu_si256((const __m256i *)p);
    if (B == 4) { /* [even elements, odd elements]: a is reordered to match */
        const __m128i m15 = _mm_set1_epi8(15);
        __m128i q = _mm_loadu_si128((const __m128i *)p);
        return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m15), _mm_and_si128(q, m15));
    }
    __m128i a, b;
    if (4 * B >= 16) {
        a = _mm_loadu_si128((const __m128i *)p);
        b = _mm_loadu_si128((const __m128i *)(p + 4 * B - 16));
    } else {
        a = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)p),
                               _mm_loadl_epi64((const __m128i *)(p + 4 * B - 8)));
        b = a;
    }
    const uint8_t *idx = q35_mlx_codes_idx(B);
    const uint16_t *mul = q35_mlx_codes_mul(B);
    const __m256i mask = _mm256_set1_epi16((short)((1 << B) - 1));
    __m256i v0 = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(a),
                                     _mm256_loadu_si256((const __m256i *)idx));
    __m256i v1 = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(b),
                                     _mm256_loadu_si256((const __m256i *)(idx + 32)));
    v0 = _mm256_and_si256(
        _mm256_mulhi_epu16(_mm256_add_epi16(v0, v0), _mm256_loadu_si256((const __m256i *)mul)),
        mask);
    v1 = _mm256_and_si256(_mm256_mulhi_epu16(_mm256_add_epi16(v1, v1),
                                             _mm256_loadu_si256((const __m256i *)(mul + 16))),
                          mask);
    /* packus works per 128-bit half: [0-7, 16-23 | 8-15, 24-31] -> order */
    return _mm256_permute4x64_epi64(_mm256_packus_epi16(v0, v1), 0xd8);
}

/* Block b's 32 activations of a q8 row, in the order of mlx_codes(B). */
INLINE __m256i mlx_acts(const int B, const uint8_t *a) {
    __m256i v = _mm256_loadu_si256((const __m256i *)a);
    if (B != 4) return v;
    /* per half: its 8 even elements then its 8 odd ones; then the halves'
     * evens together and their odds together */
    const __m256i evod = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0,
                                          2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    return _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, evod), 0xd8);
}

INLINE void mlx_tile(const int B, const q35_i8_wview *v, const uint8_t *x, size_t ldx, int64_t cols,
                     float *y, int64_t ldy, const int R, const int C) {
    __m256 acc[MR][NR], zacc[MR][NR];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = zacc[r][c] =
        _mm256_setzero_ps();
    const float *da[NR];
    const int16_t *sa[NR];
    UNROLL for (int c = 0; c < C; c++) {
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const int64_t nb = cols / 32;
    const int gshift = v->group == 32 ? 0 : v->group == 64 ? 1 : 2; /* block -> group */
    const size_t bb = (size_t)(4 * B);
    for (int64_t k = 0; k < nb; k += 8) {
        const int n = nb - k < 8 ? (int)(nb - k) : 8;
        float sc[MR][8];
        __m256 zc[MR];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *s = v->s + r * v->lds, *z = v->z + r * v->lds;
            _mm_prefetch(ahead(v->q + r * v->ldq + k * bb, (size_t)R * v->ldq), _MM_HINT_T0);
            if (n == 8) {
                _mm256_storeu_ps(sc[r], mlx_aux8(s, v->aux, gshift, k));
                zc[r] = mlx_aux8(z, v->aux, gshift, k);
            } else { /* the row's last, partial step: one by one */
                float zt[8] = {0};
                for (int j = 0; j < n; j++) {
                    sc[r][j] = mlx_aux(s, v->aux, (k + j) >> gshift);
                    zt[j] = mlx_aux(z, v->aux, (k + j) >> gshift);
                }
                zc[r] = _mm256_loadu_ps(zt);
            }
        }
        /* d_b * S_b of the (up to) 8 blocks, per token */
        UNROLL for (int c = 0; c < C; c++) {
            __m256 dS;
            if (n == 8) {
                __m256i s0 =
                    _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 2 * k)));
                __m256i s1 =
                    _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 2 * k + 8)));
                __m256i S = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s0, s1), 0xd8);
                dS = _mm256_mul_ps(_mm256_loadu_ps(da[c] + k), _mm256_cvtepi32_ps(S));
            } else {
                float t[8] = {0};
                for (int j = 0; j < n; j++)
                    t[j] = da[c][k + j] * (float)(sa[c][2 * (k + j)] + sa[c][2 * (k + j) + 1]);
                dS = _mm256_loadu_ps(t);
            }
            UNROLL for (int r = 0; r < R; r++) zacc[r][c] = _mm256_fmadd_ps(zc[r], dS, zacc[r][c]);
        }
        for (int j = 0; j < n; j++) {
            const int64_t b = k + j;
            __m256i wv[MR], ws[MR];
            UNROLL for (int r = 0; r < R; r++) {
                ws[r] = mlx_codes(B, v->q + r * v->ldq + (size_t)b * bb);
                if (B == 8 && MLX8_SIGNED) { /* q - 128, its sign moved onto a */
                    ws[r] = _mm256_xor_si256(ws[r], _mm256_set1_epi8((char)0x80));
                    wv[r] = _mm256_sign_epi8(ws[r], ws[r]);
                } else
                    wv[r] = ws[r];
            }
            UNROLL for (int c = 0; c < C; c++) {
                __m256i a = mlx_acts(B, x + c * ldx + 32 * b);
                __m256i off = _mm256_setzero_si256();
                if (B == 8 && MLX8_SIGNED)
                    off = _mm256_setr_epi32(128 * (sa[c][2 * b] + sa[c][2 * b + 1]), 0, 0, 0, 0, 0,
                                            0, 0);
                UNROLL for (int r = 0; r < R; r++) {
                    __m256i p;
                    if (B == 8 && MLX8_SIGNED)
                        p = _mm256_add_epi32(DOT_U8S8(wv[r], _mm256_sign_epi8(a, ws[r])), off);
                    else
                        p = DOT_U8S8(wv[r], a);
                    __m256 s = _mm256_set1_ps(sc[r][j] * da[c][b]);
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r][c]);
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]) + hsum(zacc[r][c]);
}

#define MLX_UKERNEL(name, B)                                                                       \
    static void name(const q35_i8_wview *v, int R, const uint8_t *x, size_t ldx, int C,            \
                     int64_t cols, float *y, int64_t ldy) {                                        \
        DISPATCH(MLX_CALL_##B);                                                                    \
    }
#define MLX_CALL_2(r, c) mlx_tile(2, v, x, ldx, cols, y, ldy, r, c)
#define MLX_CALL_3(r, c) mlx_tile(3, v, x, ldx, cols, y, ldy, r, c)
#define MLX_CALL_4(r, c) mlx_tile(4, v, x, ldx, cols, y, ldy, r, c)
#define MLX_CALL_5(r, c) mlx_tile(5, v, x, ldx, cols, y, ldy, r, c)
#define MLX_CALL_6(r, c) mlx_tile(6, v, x, ldx, cols, y, ldy, r, c)
#define MLX_CALL_8(r, c) mlx_tile(8, v, x, ldx, cols, y, ldy, r, c)

/* The set tables' entries (one line in each set file): Q5_K and MLX of
 * every width, for any token count (the float paths they would fall back
 * to decode every weight to float32 and are several times slower). */
#define Q35_X86_MLX_Q5K_ENTRIES                                                                    \
    Q35_X86_Q5K_ENTRY                                                                              \
    [Q35_DT_MLX2] = {.mr = MR, .nr = NR, .fnv = uk_mlx2},                                          \
    [Q35_DT_MLX3] = {.mr = MR, .nr = NR, .fnv = uk_mlx3},                                          \
    [Q35_DT_MLX4] = {.mr = MR, .nr = NR, .fnv = uk_mlx4},                                          \
    [Q35_DT_MLX5] = {.mr = MR, .nr = NR, .fnv = uk_mlx5},                                          \
    [Q35_DT_MLX6] = {.mr = MR, .nr = NR, .fnv = uk_mlx6},                                          \
    [Q35_DT_MLX8] = {.mr = MR, .nr = NR, .fnv = uk_mlx8}
MLX_UKERNEL(uk_mlx2, 2)
MLX_UKERNEL(uk_mlx3, 3)
MLX_UKERNEL(uk_mlx4, 4)
MLX_UKERNEL(uk_mlx5, 5)
MLX_UKERNEL(uk_mlx6, 6)
MLX_UKERNEL(uk_mlx8, 8)

#endif
