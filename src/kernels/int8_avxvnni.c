/* int8_avxvnni.c — the integer path's micro-kernels for AVX-VNNI
 * (microkernel.h): the x86 bodies of int8_x86_tiles.h with the VEX-encoded
 * vpdpbusd (unsigned x signed bytes, four products summed into each int32
 * lane, 256-bit) as their byte dot product, on CPUs that have it without
 * AVX-512 (Intel Alder Lake and later client cores, Sierra Forest; AMD Zen
 * 5 client parts report AVX-VNNI too). The quantizer is AVX2's. Compiled
 * for AVX2 + FMA + F16C + AVX-VNNI by the target pragma below (the file
 * is not in the build's *_avx2.c / *_avx512.c lists), reached only
 * through q35_i8_kernels_avxvnni() after a CPU check. */
#include "kernels/microkernel.h"

#if defined(__x86_64__)
#include "kernels/cpu_features.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avxvnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")
#endif

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/quant_block.h"

#define MR 4
#define NR 2
#define DOT_U8S8(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
#define DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#include "kernels/int8_x86_tiles.h"

#include "kernels/int8_x86_panel.h" /* after the tiles: uses their helpers */

#include "kernels/int8_x86_mlx.h" /* MLX affine and Q5_K (mlxq5) */

#include "kernels/int8_x86_x16_ymm.h" /* the load-time 16-row forms */

/* The x16 forms' panels from these T (micro-kernels below): where they
 * beat the micro-kernels in bench_int8_x16_ymm on this set (a Xeon with
 * AVX-VNNI, [8192 x 1024] streamed, 1 thread, CPU time, 2026-12-07 15:22,
 * load ~4.5): vtile / vpanel GMAC/s Q4_0 T = 12 76.2 / 74.7, 16 81.9 /
 * 83.7; Q4_K T = 12 66.8 / 65.7, 16 72.5 / 78.7; Q6_K T = 12 53.5 / 52.6,
 * 16 55.7 / 62.1; Q8_0's micro-kernel wins at every T (T = 64: 86.3 /
 * 73.6): no panel. (-D to try others.) */
#ifndef Y16_T8
#define Y16_T8 1000000
#define Y16_T40 16
#define Y16_T4K 16
#define Y16_T6K 16
#endif

const q35_i8_kernels q35_i8_avxvnni_set = {
    .name = "avxvnni",
    .quantize = q35_q8_quantize_avx2,
    .mk =
        {/* max_t and the panels' min_t: as the AVX2 set's (tiles below
          * the panels); not measured on an AVX-VNNI-only CPU. */
         [Q35_DT_Q8_0] = {MR, NR, uk_q8_0, 3},
         [Q35_DT_Q4_0] = {MR, NR, uk_q4_0, 2},
         [Q35_DT_Q4_K] = {MR, NR, uk_q4_K, 5},
         [Q35_DT_Q6_K] = {MR, NR, uk_q6_K, 5},
         Q35_X86_MLX_Q5K_ENTRIES,
         Q35_X86_X16_YMM_ENTRIES(Y16_T8, Y16_T40, Y16_T4K, Y16_T6K)},
    .panel = {Q35_X86_PANEL_FILE(4, 3, 6, 6)
                  Q35_X86_X16_YMM_PANELS(Y16_T8, Y16_T40, Y16_T4K, Y16_T6K)},
};

/* the CPU check below runs on any x86-64: plain code again */
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const q35_i8_kernels *q35_i8_kernels_avxvnni(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    return q35_cpu_has_avx2_set(&f) && f.avx_vnni ? &q35_i8_avxvnni_set : NULL;
}

#else
const q35_i8_kernels *q35_i8_kernels_avxvnni(void) {
    return NULL;
}
#endif
