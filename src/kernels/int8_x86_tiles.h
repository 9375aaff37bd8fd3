/* int8_x86_tiles.h — the x86 integer micro-kernels' bodies (microkernel.h)
 * on 256-bit vectors, included by int8_avx2.c and int8_avx512.c, which
 * differ only in the byte dot product (DOT_U8S8): AVX2 multiplies unsigned
 * by signed bytes with vpmaddubsw (pairs summed to int16) then vpmaddwd
 * (pairs to int32); AVX-512 VNNI (VL) does both in one vpdpbusd, without
 * the int16 step. 256-bit, not 512-bit, vectors: on Intel cores with
 * AVX-512 only two ports execute 512-bit operations (three take 256-bit
 * ones), and the per-block scale work of these formats is as much as the
 * dot products; 512-bit block pairs measured slower (Q4_0 GEMV 0.78x).
 *
 * vpmaddubsw saturates at int16: every use stays below it (Q8_0: |w| <=
 * 128 unsigned after the sign trick, |a| <= 127: 2 * 128 * 127 = 32512;
 * Q4_0 / Q4_K nibbles 15 * 127 * 2; Q6_K 63 * 127 * 2 = 16002).
 *
 * The includer defines MR, NR, DOT_U8S8(u, s) (8 int32 lanes: sums of
 * four adjacent u * s products; any grouping within the lane's 4 bytes is
 * the same integer), where the set has vpdpbusd also DPBUSD(acc, u, s)
 * (acc + DOT_U8S8(u, s) in one instruction; AVX-512 VL's is taken from
 * the compiler's target macros unless the includer defines Q35_PLAIN_AVX2,
 * as the AVX2 set does to stay AVX2 whatever -march says), and includes immintrin.h, microkernel.h,
 * quant_block.h. */
#ifndef Q35_KERNELS_INT8_X86_TILES_H
#define Q35_KERNELS_INT8_X86_TILES_H

#include <stdint.h>
#include <string.h>

#if !defined(DPBUSD) && !defined(Q35_PLAIN_AVX2) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define DPBUSD(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#endif

#define UNROLL _Pragma("GCC unroll 8")
#define INLINE static inline __attribute__((always_inline))

static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* int16 pairs -> int32 */
static inline __m256i sum_pairs(__m256i p16) {
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* A Q4_K super-block's multipliers d * sc_j and dmin * m_j (j < 8), the
 * products q35_kblock_scales forms, with the 6-bit fields unpacked four at
 * a time in 32-bit words rather than one by one. */
static inline void k4_scales(const uint8_t *sb, float mul[8], float sub[8]) {
    uint32_t u[3];
    memcpy(u, sb + 4, 12);
    uint32_t sc_lo = u[0] & 0x3f3f3f3fu, mn_lo = u[1] & 0x3f3f3f3fu;
    uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    __m256 sc =
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)sc_lo, (int)sc_hi, 0, 0)));
    __m256 mn =
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)mn_lo, (int)mn_hi, 0, 0)));
    _mm256_storeu_ps(mul, _mm256_mul_ps(_mm256_set1_ps(f16(sb)), sc));
    _mm256_storeu_ps(sub, _mm256_mul_ps(_mm256_set1_ps(f16(sb + 2)), mn));
}

static inline const char *ahead(const uint8_t *p, size_t bytes) {
    return (const char *)((uintptr_t)p + bytes);
}

/* The f16 at p, as float32 in all 8 lanes. */
static inline __m256 f16x8(const uint8_t *p) {
    int16_t h;
    memcpy(&h, p, 2);
    return _mm256_cvtph_ps(_mm_set1_epi16(h));
}

/* ---- Q8_0 and Q4_0: per 32-element block, per (row, token), 8 int32
 * lanes of partial sums, converted and scaled by dw * da (two broadcasts,
 * one per row and one per token, multiplied in the vector unit). Q8_0
 * takes |w| and moves w's sign onto a (vpsignb). Q4_0 multiplies the
 * nibbles n (unsigned; the block's 16 bytes broadcast to both 128-bit
 * lanes, the high lane shifted by 4) and takes 8 * (a_2i + a_2i+1) off
 * each int16 pair sum (|n a pairs| <= 3810, |8 a pairs| <= 2032: no
 * overflow), one vpmaddubsw per token shared by the rows. */
INLINE void q40_q80_tile(q35_dtype dt, const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx,
                         int64_t cols, float *y, int64_t ldy, const int R, const int C) {
    __m256 acc[MR][NR];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm256_setzero_ps();
    const size_t bb = q35_dtype_block_bytes(dt);
    const float *da[NR];
    UNROLL for (int c = 0; c < C; c++) da[c] = q35_q8_row_d(x + c * ldx, cols);
    const __m256i m15 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    const __m256i hsh = _mm256_setr_epi64x(0, 0, 4, 4);
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *wb = w + b * bb;
        __m256i wv[MR], ws[MR];
        __m256 dw[MR];
        UNROLL for (int r = 0; r < R; r++) {
            _mm_prefetch(ahead(wb + r * ldw, 2 * (size_t)R * ldw), _MM_HINT_T0);
            dw[r] = f16x8(wb + r * ldw);
            if (dt == Q35_DT_Q8_0) {
                ws[r] = _mm256_loadu_si256((const __m256i *)(wb + r * ldw + 2));
                wv[r] = _mm256_sign_epi8(ws[r], ws[r]);
            } else {
                __m256i q = _mm256_broadcastsi128_si256(
                    _mm_loadu_si128((const __m128i *)(wb + r * ldw + 2)));
                wv[r] = _mm256_and_si256(_mm256_srlv_epi64(q, hsh), m15);
            }
        }
        UNROLL for (int c = 0; c < C; c++) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(x + c * ldx + 32 * b));
            __m256 dab = _mm256_broadcast_ss(da[c] + b);
            __m256i a8 = _mm256_setzero_si256();
#ifdef DPBUSD /* -8 sum(a) per lane group, which vpdpbusd then adds to */
            if (dt == Q35_DT_Q4_0) a8 = _mm256_sub_epi32(a8, DOT_U8S8(eight, a));
#else
            if (dt == Q35_DT_Q4_0) a8 = _mm256_maddubs_epi16(eight, a);
#endif
            UNROLL for (int r = 0; r < R; r++) {
                __m256i p;
                if (dt == Q35_DT_Q8_0)
                    p = DOT_U8S8(wv[r], _mm256_sign_epi8(a, ws[r]));
                else
#ifdef DPBUSD
                    p = DPBUSD(a8, wv[r], a);
#else
                    p = sum_pairs(_mm256_sub_epi16(_mm256_maddubs_epi16(wv[r], a), a8));
#endif
                acc[r][c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dab), acc[r][c]);
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]);
}

/* ---- Q4_K: per super-block, sub-block j's nibbles times block 8k+j of a;
 * the mins' part sum_j (dmin m_j d_j) S_j as one 8-lane product per
 * super-block. */
INLINE void q4k_tile(const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx, int64_t cols,
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
    const __m256i m15 = _mm256_set1_epi8(15);
    for (int64_t k = 0; k < cols / 256; k++) {
        float mul[MR][8], sub[MR][8];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *sb = w + r * ldw + k * 144;
            for (int i = 0; i < 144; i += 64)
                _mm_prefetch(ahead(sb, (size_t)R * ldw + (size_t)i), _MM_HINT_T0);
            k4_scales(sb, mul[r], sub[r]);
        }
        /* d_j * S_j for the 8 blocks, per token */
        __m256 dS[NR];
        UNROLL for (int c = 0; c < C; c++) {
            __m256i s16 = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 16 * k)));
            __m256i s16b =
                _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 16 * k + 8)));
            /* pairs (2j, 2j+1) -> S_j, in order */
            __m256i S = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s16, s16b), 0xd8);
            dS[c] = _mm256_mul_ps(_mm256_loadu_ps(da[c] + 8 * k), _mm256_cvtepi32_ps(S));
        }
        UNROLL for (int r = 0; r < R; r++) {
            __m256 subv = _mm256_loadu_ps(sub[r]);
            UNROLL for (int c = 0; c < C; c++) macc[r][c] =
                _mm256_fmadd_ps(subv, dS[c], macc[r][c]);
        }
        UNROLL for (int h = 0; h < 4; h++) { /* 32 bytes: sub-blocks 2h (low), 2h+1 (high) */
            __m256i n[MR][2];
            UNROLL for (int r = 0; r < R; r++) {
                __m256i q =
                    _mm256_loadu_si256((const __m256i *)(w + r * ldw + k * 144 + 16 + 32 * h));
                n[r][0] = _mm256_and_si256(q, m15);
                n[r][1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
            }
            UNROLL for (int c = 0; c < C; c++) {
                UNROLL for (int e = 0; e < 2; e++) {
                    int64_t b = 8 * k + 2 * h + e;
                    __m256i a = _mm256_loadu_si256((const __m256i *)(x + c * ldx + 32 * b));
                    __m256 dab = _mm256_broadcast_ss(da[c] + b);
                    UNROLL for (int r = 0; r < R; r++) {
                        __m256i p = DOT_U8S8(n[r][e], a);
                        __m256 s = _mm256_mul_ps(_mm256_broadcast_ss(&mul[r][2 * h + e]), dab);
                        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r][c]);
                    }
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]) - hsum(macc[r][c]);
}

/* ---- Q6_K: 6-bit values q (0..63) unsigned times a; both 16-element
 * halves' int16 pair sums multiplied by their scale (sc_0 in the low
 * 128-bit lane, sc_1 in the high one) with vpmaddwd, which also sums the
 * pairs. The -32 offset is one vpmaddwd per super-block: the 16 scales
 * times the 16 half-sums of a give the 8 blocks' sc_0 s_0 + sc_1 s_1,
 * subtracted as floats scaled by 32 d d_b, 8 blocks at once. A block's
 * scale pair comes from the 16 scale bytes (one 128-bit broadcast load) by
 * a byte shuffle into the high bytes of the int16 lanes and an arithmetic
 * shift (the sign extension). */
INLINE __m256i q6k_scale_pair(const uint8_t *sc16, const int j) {
    /* int16 lanes 0-7: sc[2j], 8-15: sc[2j+1], each in its high byte */
    const char lo = (char)(2 * j), hi = (char)(2 * j + 1), z = (char)0x80;
    const __m256i m = _mm256_setr_epi8(z, lo, z, lo, z, lo, z, lo, z, lo, z, lo, z, lo, z, lo, z,
                                       hi, z, hi, z, hi, z, hi, z, hi, z, hi, z, hi, z, hi);
    __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sc16));
    return _mm256_srai_epi16(_mm256_shuffle_epi8(b, m), 8);
}

INLINE void q6k_tile(const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx, int64_t cols,
                     float *y, int64_t ldy, const int R, const int C) {
    __m256 acc[MR][NR];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm256_setzero_ps();
    const float *da[NR];
    const int16_t *sa[NR];
    UNROLL for (int c = 0; c < C; c++) {
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const __m256i m15 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    for (int64_t k = 0; k < cols / 256; k++) {
        __m256 dv[MR];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *sb = w + r * ldw + k * 210;
            for (int i = 0; i < 210; i += 64)
                _mm_prefetch(ahead(sb, (size_t)R * ldw + (size_t)i), _MM_HINT_T0);
            dv[r] = _mm256_set1_ps(f16(sb + 208));
        }
        /* the offsets: 32 d (sum over blocks of d_b (sc_0 s_0 + sc_1 s_1)) */
        UNROLL for (int c = 0; c < C; c++) {
            __m256i s16 = _mm256_loadu_si256((const __m256i *)(sa[c] + 16 * k));
            __m256 d32 = _mm256_mul_ps(_mm256_loadu_ps(da[c] + 8 * k), _mm256_set1_ps(-32.0f));
            UNROLL for (int r = 0; r < R; r++) {
                const uint8_t *sb = w + r * ldw + k * 210;
                __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(sb + 192)));
                __m256 o = _mm256_cvtepi32_ps(_mm256_madd_epi16(sc, s16));
                acc[r][c] = _mm256_fmadd_ps(o, _mm256_mul_ps(d32, dv[r]), acc[r][c]);
            }
        }
        UNROLL for (int j = 0; j < 8; j++) { /* block j: half h = j / 4, kk = j % 4 */
            const int h = j / 4, kk = j % 4;
            __m256i qv[MR];
            UNROLL for (int r = 0; r < R; r++) {
                const uint8_t *sb = w + r * ldw + k * 210;
                __m256i lo = _mm256_loadu_si256((const __m256i *)(sb + 64 * h + 32 * (kk & 1)));
                __m256i hi = _mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * h));
                if (kk >> 1) lo = _mm256_srli_epi16(lo, 4);
                lo = _mm256_and_si256(lo, m15);
                hi = _mm256_and_si256(kk ? _mm256_srli_epi16(hi, 2 * kk) : hi, m3);
                qv[r] = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
            }
            UNROLL for (int c = 0; c < C; c++) {
                const int64_t b = 8 * k + j;
                __m256i a = _mm256_loadu_si256((const __m256i *)(x + c * ldx + 32 * b));
                __m256 dab = _mm256_broadcast_ss(da[c] + b);
                UNROLL for (int r = 0; r < R; r++) {
                    const uint8_t *sb = w + r * ldw + k * 210;
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(qv[r], a),
                                                  q6k_scale_pair(sb + 192, j));
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dv[r], dab),
                                                acc[r][c]);
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        hsum(acc[r][c]);
}

/* Run-time (R, C) onto the compile-time tile shapes (NR is 2 or 3). */
#define DISPATCH_R(call, c)                                                                        \
    switch (R) {                                                                                   \
    case 1: call(1, c); break;                                                                     \
    case 2: call(2, c); break;                                                                     \
    case 3: call(3, c); break;                                                                     \
    default: call(MR, c); break;                                                                   \
    }
#define DISPATCH(call)                                                                             \
    do {                                                                                           \
        if (C == 1) {                                                                              \
            DISPATCH_R(call, 1)                                                                    \
        } else if (C == 2 || NR == 2) {                                                            \
            DISPATCH_R(call, 2)                                                                    \
        } else {                                                                                   \
            DISPATCH_R(call, NR)                                                                   \
        }                                                                                          \
    } while (0)

__attribute__((unused)) static void uk_q8_0(const uint8_t *w, size_t ldw, int R, const uint8_t *x,
                                            size_t ldx, int C, int64_t cols, float *y,
                                            int64_t ldy) {
#define CALL(r, c) q40_q80_tile(Q35_DT_Q8_0, w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

__attribute__((unused)) static void uk_q4_0(const uint8_t *w, size_t ldw, int R, const uint8_t *x,
                                            size_t ldx, int C, int64_t cols, float *y,
                                            int64_t ldy) {
#define CALL(r, c) q40_q80_tile(Q35_DT_Q4_0, w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

__attribute__((unused)) static void uk_q4_K(const uint8_t *w, size_t ldw, int R, const uint8_t *x,
                                            size_t ldx, int C, int64_t cols, float *y,
                                            int64_t ldy) {
#define CALL(r, c) q4k_tile(w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

__attribute__((unused)) static void uk_q6_K(const uint8_t *w, size_t ldw, int R, const uint8_t *x,
                                            size_t ldx, int C, int64_t cols, float *y,
                                            int64_t ldy) {
#define CALL(r, c) q6k_tile(w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

#endif
