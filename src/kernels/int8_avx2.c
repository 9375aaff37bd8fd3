/* int8_avx2.c — the integer path's micro-kernels and quantizer for AVX2
 * (microkernel.h): weights' integers times int8 activations with
 * vpmaddubsw (unsigned x signed bytes, pairs summed to int16) and vpmaddwd
 * (pairs summed to int32), then each block's int32 lanes converted to float
 * and scaled. Compiled with -mavx2 -mfma -mf16c, reached only through
 * q35_i8_kernels_avx2() after a CPU check.
 *
 * vpmaddubsw saturates at int16: every use here stays below it (Q8_0: |w|
 * <= 128 unsigned after the sign trick, |a| <= 127: 2 * 128 * 127 = 32512;
 * Q4_0 / Q4_K nibbles 15 * 127 * 2; Q6_K 63 * 127 * 2 = 16002). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/microkernel.h"
#include "kernels/quant_block.h"

#define MR 4
#define NR 2
#define DOT_U8S8(u, s) sum_pairs(_mm256_maddubs_epi16(u, s))
#define Q35_PLAIN_AVX2 /* no vpdpbusd here: this set models Zen 3 and older */
#include "kernels/int8_x86_tiles.h"

/* Panels of 3 tokens here (int8_x86_panel.h's default 4 spills the
 * accumulators with AVX2's 16 vector registers): bench_int8_x16_ymm
 * ([8192 x 1024] streamed, 1 thread, alternating, load ~5, 2026-12-07
 * 15:40) GMAC/s 3 vs 4 tokens, file layout / x16 form, T = 128: Q4_0
 * 76.6-76.9 / 77.4-77.8 vs 71.6-72.0 / 72.9-74.7; T = 74: Q4_K 69.6-71.8 /
 * 75.1-76.0 vs 70.5-71.2 / 73.7-73.8, Q6_K 67.8-70.3 / 72.2-76.6 vs
 * 67.5-68.3 / 70.8-73.0, Q8_0 55.6-56.8 / 54.6-54.8 vs 53.4-53.8 /
 * 52.7-53.7. (AVX-VNNI: no clear difference; it keeps 4.) */
#define PANEL_NT 3
#ifndef PANEL_NT_Q4
#define PANEL_NT_Q4 4
#endif
#include "kernels/int8_x86_panel.h" /* after the tiles: uses their helpers */

#include "kernels/int8_x86_mlx.h" /* MLX affine and Q5_K (mlxq5) */

#include "kernels/int8_x86_x16_ymm.h" /* the load-time 16-row forms */

/* The x16 forms' panels from these T (micro-kernels below): where they
 * beat the micro-kernels in bench_int8_x16_ymm ([8192 x 1024] streamed,
 * 1 thread, CPU time, 2026-12-07 15:22, load ~4.5): xtile / xpanel GMAC/s
 * Q8_0 T = 12 40.8 / 39.0, 16 41.6 / 42.7; Q4_0 T = 4 47.8 / 40.5, 8
 * 50.1 / 53.1; Q4_K T = 4 44.4 / 35.2, 8 48.4 / 49.3, 12 50.2 / 54.9; Q6_K
 * T = 4 34.6 / 28.8, 8 42.6 / 45.0. Against the file's layout (its tiles
 * and panels) at T = 1 / 4: Q8_0 8.2 / 23.1 -> 8.5 / 29.9, Q4_0 17.5 /
 * 44.0 -> 17.3 / 47.8, Q4_K 15.4 / 27.0 -> 19.4 / 44.4, Q6_K 10.2 / 21.0
 * -> 11.4 / 34.6; T = 64 within 5% either way. (-D to try others.) */
#ifndef Y16_T8
#define Y16_T8 16
#define Y16_T40 8
#define Y16_T4K 8
#define Y16_T6K 8
#endif

/* ---- quantizer: the reference's float ops, 8 lanes at a time */
void q35_q8_quantize_avx2(const float *x, int64_t ldx, int T, int64_t cols, uint8_t *out) {
    size_t st = q35_q8_row_stride(cols);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int t = 0; t < T; t++) {
        const float *xt = x + (int64_t)t * ldx;
        uint8_t *row = out + (size_t)t * st;
        for (int64_t b = 0; b < cols / 32; b++) {
            __m256 v[4], m = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                v[i] = _mm256_loadu_ps(xt + 32 * b + 8 * i);
                m = _mm256_max_ps(m, _mm256_and_ps(v[i], absmask));
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            float amax = _mm_cvtss_f32(m4);
            float id = amax > 0 ? 127.0f / amax : 0.0f, d = amax / 127.0f;
            memcpy(row + cols + 4 * b, &d, 4);
            __m256 idv = _mm256_set1_ps(id);
            __m256i q[4];
            for (int i = 0; i < 4; i++) {
                __m256 s = _mm256_mul_ps(v[i], idv);
                s = _mm256_min_ps(_mm256_max_ps(s, _mm256_set1_ps(-127.0f)),
                                  _mm256_set1_ps(127.0f));
                q[i] = _mm256_cvtps_epi32(s); /* round half to even (MXCSR default) */
            }
            /* 32 int32 -> 32 int8 in order (packs work within 128-bit lanes) */
            __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
            __m256i p = _mm256_packs_epi16(p01, p23);
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(row + 32 * b), p);
            /* sums of the two halves */
            __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p);
            __m256i s32 = sum_pairs(s16);
            __m128i h =
                _mm_hadd_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
            h = _mm_hadd_epi32(h, h); /* lanes 0, 1: elements 0-15, 16-31 */
            int16_t s[2] = {(int16_t)_mm_extract_epi32(h, 0), (int16_t)_mm_extract_epi32(h, 1)};
            memcpy(row + cols + cols / 8 + 4 * b, s, 4);
        }
    }
}

const q35_i8_kernels q35_i8_avx2_set = {
    .name = "avx2",
    .quantize = q35_q8_quantize_avx2,
    .mk =
        {/* max_t: the register tiles run below the panels' min_t (so
          * that a batch of up to max_t tokens gives each token exactly
          * what one token alone gets; test_batch_decode relies on it).
          * Against the AVX2 float kernels (2 threads, [1024, 3584], CPU
          * time) they were 1.7x (Q8_0), 1.9x (Q4_0), 3.8x (Q4_K), 2.0x
          * (Q6_K) at T = 1. */
         [Q35_DT_Q8_0] = {MR, NR, uk_q8_0, 3},
         [Q35_DT_Q4_0] = {MR, NR, uk_q4_0, 2},
         [Q35_DT_Q4_K] = {MR, NR, uk_q4_K, 5},
         [Q35_DT_Q6_K] = {MR, NR, uk_q6_K, 5},
         Q35_X86_MLX_Q5K_ENTRIES,
         Q35_X86_X16_YMM_ENTRIES(Y16_T8, Y16_T40, Y16_T4K, Y16_T6K)},
    /* panels from T = 4 (Q8_0), 3 (Q4_0), 6 (Q4_K, Q6_K): where they beat
     * the register tiles and the float kernels in bench_int8_panel with
     * the weights streamed from memory ([65536 x 1024] Q4_0, [32768 x
     * 1024] the others; 1 thread, CPU time, 2026-12-07 09:01, load ~9):
     * float / tile / panel GMAC/s Q4_0 T = 3 16.7 / 26.6 / 32.8 (T = 2
     * 16.1 / 26.7 / 25.8), Q8_0 T = 4 19.5 / 19.6 / 23.2, Q4_K T = 6 13.2 /
     * 26.1 / 31.6 (T = 4 a tie), Q6_K T = 6 10.7 / 20.4 / 24.9 (T = 4 a
     * tie). From cache ([1024 x 3584]) T = 16: 83.3, 50.3, 67.2, 54.8
     * against tiles of 28-35 and floats of 21-37. */
    .panel = {Q35_X86_PANEL_FILE(4, 3, 6, 6)
                  Q35_X86_X16_YMM_PANELS(Y16_T8, Y16_T40, Y16_T4K, Y16_T6K)},
};

const q35_i8_kernels *q35_i8_kernels_avx2(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    return q35_cpu_has_avx2_set(&f) ? &q35_i8_avx2_set : NULL;
}
