/* int8_avx512.c — the integer path's micro-kernels for AVX-512 VNNI
 * (microkernel.h): vpdpbusd (unsigned x signed bytes, four products summed
 * into each int32 lane) on two 32-element blocks per 512-bit vector, then
 * each block's lanes converted to float and scaled. Compiled with the
 * AVX-512 flags, reached only through q35_i8_kernels_avx512vnni() after a
 * CPU check.
 *
 * vpdpbusd wants one operand unsigned: Q8_0 weights are offset by 128
 * (w ^ 0x80) and 128 * sum(a) comes off the block's lane 0 again; Q4_0's
 * nibbles and Q6_K's 6-bit values are unsigned as stored, their offsets
 * (8, 32) come off the same way; Q4_K's mins are a float term per
 * super-block. Lane layout of a block pair: lanes 0-7 block b, 8-15 block
 * b + 1 (for Q6_K, lanes 4g .. 4g+3 are 16-element half g). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/microkernel.h"
#include "kernels/quant_block.h"

#define MR 4
#define NR 3
#define UNROLL _Pragma("GCC unroll 8")
#define INLINE static inline __attribute__((always_inline))

static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline const char *ahead(const uint8_t *p, size_t bytes) {
    return (const char *)((uintptr_t)p + bytes);
}

/* [u ×8, v ×8] */
static inline __m512 pair_ps(float u, float v) {
    return _mm512_insertf32x8(_mm512_set1_ps(u), _mm256_set1_ps(v), 1);
}

/* int32 o0 in lane 0, o1 in lane 8, zeros elsewhere */
static inline __m512i pair_off(int32_t o0, int32_t o1) {
    return _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, o0), 0x0100, o1);
}

/* lane l -> element (l < 8 ? i0 : i0 + 1) of an 8-float vector */
static inline __m512i pair_idx(int i0) {
    return _mm512_inserti64x4(_mm512_set1_epi32(i0), _mm256_set1_epi32(i0 + 1), 1);
}

/* ---- Q8_0 / Q4_0: blocks b, b + 1 per step (one block at an odd end,
 * the other half zero) */
INLINE void q40_q80_tile(q35_dtype dt, const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx,
                         int64_t cols, float *y, int64_t ldy, const int R, const int C) {
    __m512 acc[MR][NR];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm512_setzero_ps();
    const size_t bb = q35_dtype_block_bytes(dt);
    const int32_t offm = dt == Q35_DT_Q8_0 ? 128 : 8;
    const float *da[NR];
    const int16_t *sa[NR];
    UNROLL for (int c = 0; c < C; c++) {
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const int64_t nb = cols / 32;
    for (int64_t b = 0; b < nb; b += 2) {
        const int two = b + 1 < nb;
        const uint8_t *wb = w + b * bb;
        __m512i u[MR];
        __m512 dw[MR];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *p = wb + r * ldw;
            _mm_prefetch(ahead(p, (size_t)R * ldw), _MM_HINT_T0);
            _mm_prefetch(ahead(p, (size_t)R * ldw + 64), _MM_HINT_T0);
            if (dt == Q35_DT_Q8_0) {
                const __m256i s = _mm256_set1_epi8((char)0x80);
                __m256i w0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), s);
                __m256i w1 =
                    two ? _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + bb + 2)), s)
                        : _mm256_setzero_si256();
                u[r] = _mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1);
            } else {
                __m128i q0 = _mm_loadu_si128((const __m128i *)(p + 2));
                __m128i q1 = two ? _mm_loadu_si128((const __m128i *)(p + bb + 2)) : q0;
                __m256i q = _mm256_set_m128i(q1, q0);
                const __m256i m15 = _mm256_set1_epi8(15);
                __m256i lo = _mm256_and_si256(q, m15);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
                __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                u[r] = _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
            }
            dw[r] = pair_ps(f16(p), two ? f16(p + bb) : 0.0f);
        }
        UNROLL for (int c = 0; c < C; c++) {
            const uint8_t *xa = x + c * ldx + 32 * b;
            __m512i a = two ? _mm512_loadu_si512((const void *)xa)
                            : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)xa));
            int32_t s0 = sa[c][2 * b] + sa[c][2 * b + 1];
            int32_t s1 = two ? sa[c][2 * b + 2] + sa[c][2 * b + 3] : 0;
            __m512i off = pair_off(offm * s0, offm * s1);
            __m512 dav = pair_ps(da[c][b], two ? da[c][b + 1] : 0.0f);
            UNROLL for (int r = 0; r < R; r++) {
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[r], a);
                p = _mm512_sub_epi32(p, off);
                acc[r][c] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dav), acc[r][c]);
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        _mm512_reduce_add_ps(acc[r][c]);
}

/* ---- Q4_K: per 32 bytes of nibbles, sub-blocks 2h (low) and 2h + 1
 * (high) against blocks 8k + 2h, 8k + 2h + 1 of a, which are adjacent */
INLINE void q4k_tile(const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx, int64_t cols,
                     float *y, int64_t ldy, const int R, const int C) {
    __m512 acc[MR][NR];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm512_setzero_ps();
    const float *da[NR];
    const int16_t *sa[NR];
    UNROLL for (int c = 0; c < C; c++) {
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const __m256i m15 = _mm256_set1_epi8(15);
    for (int64_t k = 0; k < cols / 256; k++) {
        __m256 mul[MR], sub[MR];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *sb = w + r * ldw + k * 144;
            _mm_prefetch(ahead(sb, (size_t)R * ldw), _MM_HINT_T0);
            _mm_prefetch(ahead(sb, (size_t)R * ldw + 64), _MM_HINT_T0);
            _mm_prefetch(ahead(sb, (size_t)R * ldw + 128), _MM_HINT_T0);
            float m16[16], s8[8];
            q35_kblock_scales(Q35_DT_Q4_K, sb, m16, s8);
            mul[r] = _mm256_loadu_ps(m16);
            sub[r] = _mm256_loadu_ps(s8);
        }
        __m256 da8[NR];
        UNROLL for (int c = 0; c < C; c++) {
            da8[c] = _mm256_loadu_ps(da[c] + 8 * k);
            /* the mins: sum_j (dmin m_j) (d_j S_j) off the accumulator */
            __m256i s16 = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 16 * k)));
            __m256i s16b =
                _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(sa[c] + 16 * k + 8)));
            __m256i S = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s16, s16b), 0xd8);
            __m256 dS = _mm256_mul_ps(da8[c], _mm256_cvtepi32_ps(S));
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm512_fnmadd_ps(
                _mm512_zextps256_ps512(sub[r]), _mm512_zextps256_ps512(dS), acc[r][c]);
        }
        for (int h = 0; h < 4; h++) {
            const __m512i idx = pair_idx(2 * h);
            __m512i n[MR];
            __m512 ms[MR];
            UNROLL for (int r = 0; r < R; r++) {
                __m256i q =
                    _mm256_loadu_si256((const __m256i *)(w + r * ldw + k * 144 + 16 + 32 * h));
                __m256i lo = _mm256_and_si256(q, m15);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
                n[r] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                ms[r] = _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(mul[r]));
            }
            UNROLL for (int c = 0; c < C; c++) {
                __m512i a = _mm512_loadu_si512((const void *)(x + c * ldx + 256 * k + 64 * h));
                __m512 dav = _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(da8[c]));
                UNROLL for (int r = 0; r < R; r++) {
                    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), n[r], a);
                    acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(ms[r], dav),
                                                acc[r][c]);
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        _mm512_reduce_add_ps(acc[r][c]);
}

/* ---- Q6_K: block pair i (blocks 2i, 2i + 1 of the super-block): the low
 * nibbles of both are 64 contiguous bytes of ql (shifted by 4 for odd i),
 * the high pairs one 32-byte run of qh at two shifts */
INLINE void q6k_tile(const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx, int64_t cols,
                     float *y, int64_t ldy, const int R, const int C) {
    __m512 acc[MR][NR];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] =
        _mm512_setzero_ps();
    const float *da[NR];
    const int16_t *sa[NR];
    UNROLL for (int c = 0; c < C; c++) {
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const __m512i m15 = _mm512_set1_epi8(15), m3 = _mm512_set1_epi8(3);
    for (int64_t k = 0; k < cols / 256; k++) {
        __m512 wsc[MR]; /* d * sc_g, g = 0..15 */
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *sb = w + r * ldw + k * 210;
            _mm_prefetch(ahead(sb, (size_t)R * ldw), _MM_HINT_T0);
            _mm_prefetch(ahead(sb, (size_t)R * ldw + 64), _MM_HINT_T0);
            _mm_prefetch(ahead(sb, (size_t)R * ldw + 128), _MM_HINT_T0);
            _mm_prefetch(ahead(sb, (size_t)R * ldw + 192), _MM_HINT_T0);
            __m512 sc = _mm512_cvtepi32_ps(
                _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(sb + 192))));
            wsc[r] = _mm512_mul_ps(_mm512_set1_ps(f16(sb + 208)), sc);
        }
        __m256 da8[NR];
        UNROLL for (int c = 0; c < C; c++) da8[c] = _mm256_loadu_ps(da[c] + 8 * k);
        for (int i = 0; i < 4; i++) {
            const int h = i / 2, kk0 = 2 * (i % 2);
            const __m512i idx = pair_idx(2 * i);
            /* lane l -> scale 4i + l / 4 */
            const __m512i sidx = _mm512_add_epi32(
                _mm512_set1_epi32(4 * i),
                _mm512_srli_epi32(
                    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2));
            const __m512i hsh = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * kk0)),
                                                   _mm256_set1_epi16((short)(2 * kk0 + 2)), 1);
            __m512i q[MR];
            __m512 scv[MR];
            UNROLL for (int r = 0; r < R; r++) {
                const uint8_t *sb = w + r * ldw + k * 210;
                __m512i lo = _mm512_loadu_si512((const void *)(sb + 64 * h));
                if (i % 2) lo = _mm512_srli_epi16(lo, 4);
                lo = _mm512_and_si512(lo, m15);
                __m256i qh = _mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * h));
                __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
                hi = _mm512_and_si512(_mm512_srlv_epi16(hi, hsh), m3);
                q[r] = _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
                scv[r] = _mm512_permutexvar_ps(sidx, wsc[r]);
            }
            UNROLL for (int c = 0; c < C; c++) {
                __m512i a = _mm512_loadu_si512((const void *)(x + c * ldx + 256 * k + 64 * i));
                __m512 dav = _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(da8[c]));
                /* 32 * s over the four halves, to lanes 0, 4, 8, 12 */
                __m128i s4 =
                    _mm_cvtepi16_epi32(_mm_loadl_epi64((const __m128i *)(sa[c] + 16 * k + 4 * i)));
                __m512i off = _mm512_maskz_expand_epi32(
                    0x1111, _mm512_castsi128_si512(_mm_slli_epi32(s4, 5)));
                UNROLL for (int r = 0; r < R; r++) {
                    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[r], a);
                    p = _mm512_sub_epi32(p, off);
                    acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(scv[r], dav),
                                                acc[r][c]);
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) UNROLL for (int r = 0; r < R; r++) y[c * ldy + r] =
        _mm512_reduce_add_ps(acc[r][c]);
}

/* Run-time (R, C) onto the compile-time tile shapes. */
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
        } else if (C == 2) {                                                                       \
            DISPATCH_R(call, 2)                                                                    \
        } else {                                                                                   \
            DISPATCH_R(call, NR)                                                                   \
        }                                                                                          \
    } while (0)

static void uk_q8_0(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                    int64_t cols, float *y, int64_t ldy) {
#define CALL(r, c) q40_q80_tile(Q35_DT_Q8_0, w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

static void uk_q4_0(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                    int64_t cols, float *y, int64_t ldy) {
#define CALL(r, c) q40_q80_tile(Q35_DT_Q4_0, w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

static void uk_q4_K(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                    int64_t cols, float *y, int64_t ldy) {
#define CALL(r, c) q4k_tile(w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

static void uk_q6_K(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                    int64_t cols, float *y, int64_t ldy) {
#define CALL(r, c) q6k_tile(w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

const q35_i8_kernels q35_i8_avx512vnni_set = {
    .name = "avx512vnni",
    .quantize = q35_q8_quantize_avx2,
    .mk =
        {
            [Q35_DT_Q8_0] = {MR, NR, uk_q8_0},
            [Q35_DT_Q4_0] = {MR, NR, uk_q4_0},
            [Q35_DT_Q4_K] = {MR, NR, uk_q4_K},
            [Q35_DT_Q6_K] = {MR, NR, uk_q6_K},
        },
};

const q35_i8_kernels *q35_i8_kernels_avx512vnni(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    return q35_cpu_has_avx512_set(&f) && f.avx512_vnni ? &q35_i8_avx512vnni_set : NULL;
}
