/* int8_avx512.c — the integer path's micro-kernels for AVX-512 VNNI
 * (microkernel.h): the x86 bodies of int8_x86_tiles.h with vpdpbusd
 * (unsigned x signed bytes, four products summed into each int32 lane, on
 * 256-bit vectors through AVX-512 VL) as their byte dot product, and Q6_K
 * on 512-bit block pairs (its 64-byte runs of low bits load whole; it
 * measured 1.7x the 256-bit Q6_K GEMV). Compiled with the AVX-512 flags,
 * reached only through q35_i8_kernels_avx512vnni() after a CPU check.
 *
 * vpdpbusd wants one operand unsigned: Q8_0 weights give |w| and their sign
 * moves onto a (vpsignb); Q4_0 nibbles and Q6_K 6-bit values are unsigned
 * as stored, and their offsets (8, 32) come off the block's lanes again. In
 * a Q6_K block pair lanes 4g .. 4g+3 are 16-element half g. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/int8_amx.h"
#include "kernels/microkernel.h"
#include "kernels/quant_block.h"

#define MR 4
#define NR 3
#define DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#include "kernels/int8_x86_tiles.h"

#include "kernels/int8_x86_panel.h" /* after the tiles: uses their helpers */

#include "kernels/int8_x86_mlx.h" /* MLX affine and Q5_K (mlxq5) */

#include "kernels/int8_x86_x16.h" /* the load-time repacked Q8_0 / Q4_0 */

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

/* ---- Q6_K: block pair i (blocks 2i, 2i + 1 of the super-block): the low
 * nibbles of both are 64 contiguous bytes of ql (shifted by 4 for odd i),
 * the high pairs one 32-byte run of qh at two shifts */
INLINE void q6k_tile512(const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx, int64_t cols,
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

static void uk_q6_K_512(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
#define CALL(r, c) q6k_tile512(w, ldw, x, ldx, cols, y, ldy, r, c)
    DISPATCH(CALL);
#undef CALL
}

/* max_t: same-process A/B against the AVX-512 float kernels, 2 threads,
 * [1024, 3584] (CPU time): at T = 1 the register tiles are 1.4x (Q8_0),
 * 1.1x (Q4_0), 1.5x (Q4_K), 1.5x (Q6_K); at T = 8 0.84x, 0.68x, 0.92x,
 * 1.0x: above a few tokens the float panels (and AMX tiles) beat them.
 * The AMX sets keep exactly that (q35_i8_avx512vnni_tiles_set: AMX-INT8
 * takes over from q35_amx_i8_min_t); CPUs with AVX-512 VNNI and no AMX
 * get the packed panels (int8_x86_panel.h, vpdpbusd) from PANEL_T_*. */
#define AVX512VNNI_TILES(q6k_max_t)                                                                \
    [Q35_DT_Q8_0] = {MR, NR, uk_q8_0, 4}, [Q35_DT_Q4_0] = {MR, NR, uk_q4_0, 2},                    \
    [Q35_DT_Q4_K] = {MR, NR, uk_q4_K, 4}, [Q35_DT_Q6_K] = {MR, NR, uk_q6_K_512, q6k_max_t},        \
    Q35_X86_MLX_Q5K_ENTRIES

/* (The load-time 16-row forms, int8_x86_x16.h: below AMX-INT8's count in
 * the AMX sets, at every T in the other one, where they beat every other
 * path at each T measured; see int8_amx.h.) */
const q35_i8_kernels q35_i8_avx512vnni_tiles_set = {
    .name = "avx512vnni",
    .quantize = q35_q8_quantize_avx2,
    .mk = {AVX512VNNI_TILES(8),
           Q35_X86_X16_ENTRIES(Q35_AMX_X16_MIN_T_Q8_0 - 1, Q35_AMX_X16_MIN_T_Q4_0 - 1,
                               Q35_AMX_X16_MIN_T_Q4_K - 1)},
};

/* panels from T = 4 (Q4_0), 6 (Q8_0), 8 (Q6_K), 12 (Q4_K): where they beat
 * both the register tiles and the AVX-512 float kernels (which run between
 * max_t and min_t) in bench_int8_panel with the weights streamed from
 * memory ([65536 x 1024] Q4_0, [32768 x 1024] the others; avx512vnni, 1
 * thread, CPU time, this Xeon, 2026-12-07 09:01, load ~9): float / tile /
 * panel GMAC/s Q4_0 T = 4 39.3 / 35.4 / 42.7 (T = 3 a tie), Q8_0 T = 6
 * 33.5 / 28.7 / 35.5, Q6_K T = 8 32.1 / 32.2 / 33.0; Q4_K still loses at
 * T = 8 (45.4 / 36.5 / 43.5; from cache it wins from 8, and at T = 12
 * 72.5 vs 48.3). From cache T = 16: 112.7 (Q4_0), 78.9 (Q8_0), 78.4
 * (Q4_K), 61.2 (Q6_K) against 38-54. (Q6_K's tile max_t 7: tiles below
 * the panel, so a batch of up to max_t tokens gets one token's results.) */
const q35_i8_kernels q35_i8_avx512vnni_set = {
    .name = "avx512vnni",
    .quantize = q35_q8_quantize_avx2,
    .mk = {AVX512VNNI_TILES(7), Q35_X86_X16_ENTRIES(0, 0, 0)},
    Q35_X86_PANEL_ENTRIES(6, 4, 12, 8),
};

const q35_i8_kernels *q35_i8_kernels_avx512vnni(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    return q35_cpu_has_avx512_set(&f) && f.avx512_vnni ? &q35_i8_avx512vnni_set : NULL;
}
